"""A user's float32 -> OCP E4M3 kernel (round to nearest even, saturating), written against refarith's BitOps.

``e4m3_rne_sat`` is correct: ``refarith prove --kernel e4m3_kernel:e4m3_rne_sat
--spec 'cast(binary32->ocp_e4m3,overflow=saturate)'`` proves it for all 2^32 inputs, and the same code runs on
numpy, torch and Triton.  ``e4m3_round_half_up`` has the classic tie bug (``rem >= half``): the prover returns a
halfway input as its counterexample, confirmed by the exact model.
"""


def _e4m3(ops, x, ties_even: bool):
    c = lambda v: ops.const(v, x)  # noqa: E731
    sign = ops.shr(x, 31)
    exp = ops.and_(ops.shr(x, 23), c(0xFF))
    man = ops.and_(x, c(0x7FFFFF))
    is_nan = ops.band(ops.eq(exp, c(0xFF)), ops.ne(man, c(0)))
    is_inf = ops.band(ops.eq(exp, c(0xFF)), ops.eq(man, c(0)))
    normal = ops.ne(exp, c(0))
    sig = ops.or_(man, ops.where(normal, c(1 << 23), c(0)))
    es = ops.umax(exp, c(1))
    # E4M3's smallest normal 2^-6 has binary32 biased exponent 121; below it the code is a subnormal one
    d = ops.add(c(20), ops.sub(ops.umax(es, c(121)), es))
    d = ops.umin(d, c(31))  # sig < 2^24 < 2^30 = half at d = 31: clamping changes nothing
    n = ops.shr(sig, d)
    rem = ops.sub(sig, ops.shl(n, d))
    half = ops.shl(c(1), ops.sub(d, c(1)))
    c_lo = ops.add(ops.shl(ops.sub(ops.umax(es, c(121)), c(121)), 3), n)
    if ties_even:
        odd = ops.eq(ops.and_(c_lo, c(1)), c(1))
        up = ops.bor(ops.ugt(rem, half), ops.band(ops.eq(rem, half), odd))
    else:
        up = ops.uge(rem, half)
    c_r = ops.where(up, ops.add(c_lo, c(1)), c_lo)
    mag = ops.umin(c_r, c(0x7E))  # saturate at 448
    mag = ops.where(is_inf, c(0x7E), mag)
    mag = ops.where(is_nan, c(0x7F), mag)
    return ops.or_(ops.shl(sign, 7), mag)


def e4m3_rne_sat(ops, x):
    """binary32 bit patterns -> E4M3 codes, ties to even, overflow and infinities saturate to +-448."""
    return _e4m3(ops, x, ties_even=True)


def e4m3_round_half_up(ops, x):
    """The same with ties rounded away from zero (a bug for an RNE kernel)."""
    return _e4m3(ops, x, ties_even=False)


def never_nan_unless_nan_in(ops, x, code):
    """Property: the output is the NaN code only for NaN inputs."""
    c = lambda v: ops.const(v, x)  # noqa: E731
    nan_in = ops.ugt(ops.and_(x, c(0x7FFFFFFF)), c(0x7F800000))
    nan_out = ops.eq(ops.and_(code, c(0x7F)), c(0x7F))
    return ops.bor(ops.bnot(nan_out), nan_in)
