"""Integer quantization, vectorized; same scales, zero points and codes as :mod:`refarith.exact.intquant`.

One integer kernel, :func:`quantize_words`, on the binary32 bit patterns, written against the array shim of
:mod:`refarith.fast.mx`: numpy runs it (in cache-sized tiles), torch runs it on the tensor's device, and
:mod:`refarith.fast.triton_blocks` traces it into the graph its Triton kernel computes (the Z3 theorems
:mod:`refarith.smt.theorems.intquant` read that graph). Scales: single binary32
operations on integers, rounded to nearest even as the exact model's ``fl``. Codes: the exact quotient x / s split
by integer division into its integer part, half bit and sticky bit (and for stochastic rounding the first fraction
bits), rounded once, then clamped. No float arithmetic is involved, so no double rounding can occur.
"""

from __future__ import annotations

import numpy as np

from refarith.errors import BadValueError, SpecialValueError, UnknownModeError
from refarith.exact.intquant import GRANULARITIES, check_params
from refarith.fast.mx import CHUNK, _i64, _to_i32, ops, split_f32


def check_layout(ndim: int, granularity: str, axis: int, group: int) -> int:
    """The normalized axis; BadValueError for an unknown granularity, a 0-d input, an axis out of range or (group
    granularity) a group size that is not a positive integer."""
    if granularity not in GRANULARITIES:
        raise BadValueError(f"unknown granularity {granularity!r}; expected one of {', '.join(GRANULARITIES)}")
    if ndim == 0:
        raise BadValueError("integer quantization needs an array with at least one dimension")
    if not -ndim <= axis < ndim:
        raise BadValueError(f"axis {axis} out of range for an array of {ndim} dimensions")
    if granularity == "group" and (isinstance(group, bool) or not isinstance(group, int) or group < 1):
        raise BadValueError(f"group size must be a positive integer, got {group!r}")
    return axis % ndim


def groups(x: np.ndarray, granularity: str, axis: int, group: int, dtype=np.float32):
    """(G, n) groups of ``dtype`` (float32 by default; zero padded) and the information to undo it."""
    x = np.asarray(x, dtype=dtype)
    axis = check_layout(x.ndim, granularity, axis, group)
    if granularity == "tensor":
        return x.reshape(1, -1), (x.shape, axis)
    a = np.moveaxis(x, axis, -1 if granularity == "group" else 0)
    if granularity == "channel":
        return a.reshape(a.shape[0], -1), (a.shape, axis)
    n = a.shape[-1]
    ng = -(-n // group)
    a2 = a.reshape(-1, n)
    if ng * group != n:
        a2 = np.concatenate([a2, np.zeros((a2.shape[0], ng * group - n), dtype)], axis=1)
    return a2.reshape(-1, group), (a.shape, axis)


def ungroup(q: np.ndarray, info, granularity: str, group: int) -> np.ndarray:
    shape, axis = info
    if granularity == "tensor":
        return q.reshape(shape)
    if granularity == "channel":
        return np.moveaxis(q.reshape(shape), 0, axis)
    n = shape[-1]
    return np.moveaxis(q.reshape(-1, q.size // int(np.prod(shape[:-1], dtype=np.int64)))[:, :n].reshape(shape),
                       -1, axis)


def quantize(x, bits: int, scheme: str = "symmetric", granularity: str = "tensor", group: int = 128,
             clip: str = "symmetric", rounding: str = "rne", axis: int = -1, *, rand=None,
             rand_bits: int | None = None, sr_variant: str = "a", backend: str = "numpy"):
    """(scales float32 per group, zero points int32 per group, codes int8/int16 shaped like x), computed by
    :func:`quantize_words` on the binary32 bit patterns (``backend`` numpy; ``torch`` is :func:`quantize_torch`,
    ``triton`` :func:`refarith.fast.triton_blocks.int_quantize`, both on torch tensors).
    ``rounding="sr"``: the quotient x[i] / s rounded stochastically with ``rand[i]`` (``rand`` of the shape of
    ``x``, k = ``rand_bits`` in 1..60, rule ``sr_variant``), as :func:`refarith.exact.intquant.quantize_group`
    rounds it (:func:`round_magnitude`); the asymmetric zero point is rounded to nearest even."""
    kw = dict(rand=rand, rand_bits=rand_bits, sr_variant=sr_variant)
    if backend == "torch":
        return quantize_torch(x, bits, scheme, granularity, group, clip, rounding, axis, **kw)
    if backend == "triton":
        from refarith.fast.triton_blocks import int_quantize

        return int_quantize(x, bits, scheme, granularity, group, clip, rounding, axis, **kw)
    if backend != "numpy":
        raise UnknownModeError(f"unknown backend {backend!r}; expected numpy, torch or triton")
    _check_rounding(bits, scheme, clip, rounding, rand)
    g, info = groups(x, granularity, axis, group)
    xp = ops("numpy")
    b = np.ascontiguousarray(g).view(np.int32)
    hi, lo = group_words(b, xp)
    if not finite_words(hi, lo, xp):
        raise SpecialValueError(NONFINITE)
    sr = _sr_groups(x, rand, rand_bits, sr_variant, granularity, axis, group, "numpy") if rounding == "sr" else None
    sb, z = group_params(hi, lo, bits, scheme, clip, rounding, xp)
    check_scales(sb, xp)
    q = np.empty(b.shape, np.int16 if bits == 16 else np.int8)
    # the codes in tiles of about CHUNK elements (whole groups, or pieces of a long group): intermediates in cache
    rows = max(1, CHUNK // b.shape[1])
    cols = min(b.shape[1], CHUNK)
    for i in range(0, b.shape[0], rows):
        for j in range(0, b.shape[1], cols):
            t = (slice(i, i + rows), slice(j, j + cols))
            srt = None if sr is None else (sr[0][t], *sr[1:])
            q[t] = group_codes(b[t], sb[t[0]], z[t[0]], bits, scheme, clip, rounding, xp, srt)
    return sb.view(np.float32), np.asarray(z, np.int32), ungroup(q, info, granularity, group)


F32_ONE = 0x3F800000
SIGN32 = -(1 << 31)  # the int32 pattern 0x80000000
NONFINITE = "integer quantization: NaN and infinity have no integer code"


def group_words(bits, xp):
    """(hi, lo) per group (the last axis) of binary32 bit patterns (int32): the bits of max(max x, 0) and of
    |min(min x, 0)| (-0 and +0 are both 0).

    Two integer maxima of the patterns, no elementwise temporary but one: as int32, a non-negative x's pattern is
    its magnitude's and a negative x's is negative, so max(max b, 0) is hi; b ^ 0x80000000 swaps the roles (a
    negative x gives its magnitude, a non-negative one a negative int32), so max(max(b ^ 0x80000000), 0) is lo.
    A non-finite element makes max(hi, lo) >= 0x7F800000 (:func:`finite_words`)."""
    return xp.maximum(xp.amax(bits, -1), 0), xp.maximum(xp.amax(bits ^ SIGN32, -1), 0)


def finite_words(hi, lo, xp) -> bool:
    """Whether every element of every group is finite, from its group words (:func:`group_words`): NaN and
    infinity have the largest magnitudes' patterns."""
    return not xp.anyof(xp.maximum(hi, lo) >= 0x7F800000)


def f32_bits(v: float) -> int:
    """The binary32 bit pattern of a Python float that binary32 holds exactly."""
    b = int(np.array(v, np.float32).view(np.int32))
    assert float(np.array(b, np.int32).view(np.float32)) == v
    return b


def quantize_words(bits, hi, lo, nbits: int, scheme: str, clip: str, rounding: str, xp, sr=None):
    """(scale bits int32 per group, zero points per group, codes per element) of finite binary32 bit patterns
    ``bits`` (int32, groups along the last axis) with the group words ``hi``, ``lo`` of :func:`group_words`:
    :func:`group_params`, then :func:`group_codes`.  Integer and bit operations only, branch-free (the Triton
    kernel is traced from it; the Z3 theorems read that graph)."""
    s, z = group_params(hi, lo, nbits, scheme, clip, rounding, xp)
    return s, z, group_codes(bits, s, z, nbits, scheme, clip, rounding, xp, sr)


def group_params(hi, lo, nbits: int, scheme: str, clip: str, rounding: str, xp):
    """(scale bits int32, zero point) per group from its words ``hi``, ``lo``.

    The scale is single binary32 operations on integers (:func:`refarith.fast.mx.f32_div`,
    :func:`refarith.fast.mx.f32_add_magnitudes`: IEEE division and addition rounded to nearest even), 1 where it
    is 0; the asymmetric zero point qmin + round(|lo| / s) (:func:`round_magnitude`, nearest even under
    ``rounding="sr"``) clamped to [qmin, qmax], the symmetric one 0.  An asymmetric range that overflows binary32
    gives an infinite scale: the callers refuse it (:func:`check_scales`)."""
    from refarith.fast.mx import f32_add_magnitudes, f32_div

    qmin, qmax = -(1 << (nbits - 1)), (1 << (nbits - 1)) - 1
    zero = hi * 0
    if scheme == "symmetric":
        den = float(qmax) if clip == "symmetric" else qmax + 0.5
        s = f32_div(xp.maximum(hi, lo), zero + f32_bits(den), xp)
    else:
        s = f32_div(f32_add_magnitudes(hi, lo, xp), zero + f32_bits(float(qmax - qmin)), xp)
    s = xp.where(s == 0, F32_ONE, s)
    if scheme == "symmetric":
        return s, zero
    return s, _clamp(round_magnitude(lo, s, "rne" if rounding == "sr" else rounding, xp) + qmin, qmin, qmax, xp)


def group_codes(bits, s, z, nbits: int, scheme: str, clip: str, rounding: str, xp, sr=None):
    """Codes of the binary32 bit patterns ``bits`` (groups along the last axis) with their group's scale bits
    ``s`` and zero point ``z``: the exact quotient x / s rounded once by :func:`round_magnitude` (the magnitude,
    then the sign), plus z, clamped to [-qmax, qmax] (symmetric clip) or [qmin, qmax].

    The sign is applied as (m ^ n) - n with n = bits >> 31 (0, or -1 for a negative x: two's complement
    negation); symmetric schemes clamp the magnitude first, to qmax, or to qmax - n = qmax + 1 = -qmin for a
    negative x under the full clip, which is the clamp of the signed code."""
    qmin, qmax = -(1 << (nbits - 1)), (1 << (nbits - 1)) - 1
    m = round_magnitude(bits & 0x7FFFFFFF, s[..., None], rounding, xp, sr)
    neg = bits >> 31
    if scheme == "symmetric":
        m = xp.minimum(m, qmax if clip == "symmetric" else qmax - neg)
        return (m ^ neg) - neg
    return _clamp(((m ^ neg) - neg) + z[..., None], qmin, qmax, xp)


def _clamp(v, lo: int, hi: int, xp):
    return xp.minimum(xp.maximum(v, lo), hi)


def check_scales(sb, xp) -> None:
    """BadValueError where a scale is infinite: an asymmetric range max - min that overflows binary32."""
    if xp.anyof((sb & 0x7FFFFFFF) >= 0x7F800000):
        raise BadValueError("asymmetric quantization: the range max - min of a group overflows binary32 "
                            "(the scale would be infinite)")


def _check_rounding(bits: int, scheme: str, clip: str, rounding: str, rand) -> None:
    check_params(bits, scheme, clip, "rne" if rounding == "sr" else rounding)
    if rounding != "sr" and rand is not None:
        raise UnknownModeError(f"rand is given but rounding={rounding!r} is not stochastic (rounding='sr')")


def _sr_groups(x, rand, rand_bits, sr_variant: str, granularity: str, axis: int, group: int, backend: str):
    """(r grouped as the values, k, variant), the random bits checked by :func:`refarith.fast.blocksr.random_bits`."""
    from refarith.fast.blocksr import random_bits

    xp = ops(backend)
    r = random_bits(rand, tuple(x.shape), rand_bits, sr_variant, None, xp, x)
    if backend == "numpy":
        return groups(r, granularity, axis, group, np.int64)[0], rand_bits, sr_variant
    return _torch_groups(r, granularity, axis, group, xp.t.int64)[0], rand_bits, sr_variant


def dequantize(scales, zero_points, codes, granularity: str = "tensor", group: int = 128, axis: int = -1):
    """float32 fl((q - z) * s): the product is exact in binary64, then rounded once to nearest even binary32; a
    product at or beyond FLT_MAX + half an ulp is +-inf, as an IEEE 754 binary32 multiply gives (no warning)."""
    c = np.asarray(codes)
    g, info = groups(c.astype(np.float32), granularity, axis, group)
    v = (g.astype(np.float64) - np.asarray(zero_points, np.float64)[:, None]) * \
        np.asarray(scales, np.float64)[:, None]
    with np.errstate(over="ignore"):
        v32 = v.astype(np.float32)
    return ungroup(v32, info, granularity, group)


# ------------------------------------------------------------------ torch
def _torch_groups(x, granularity: str, axis: int, group: int, dtype=None):
    """The torch form of :func:`groups`: (G, n) groups of ``dtype`` (float32 by default; zero padded) and what
    undoes it."""
    import torch

    axis = check_layout(x.dim(), granularity, axis, group)
    x = x.to(torch.float32 if dtype is None else dtype)
    if granularity == "tensor":
        return x.reshape(1, -1), (tuple(x.shape), axis)
    a = torch.movedim(x, axis, -1 if granularity == "group" else 0)
    if granularity == "channel":
        return a.reshape(a.shape[0], -1), (tuple(a.shape), axis)
    n = a.shape[-1]
    ng = -(-n // group)
    a2 = a.reshape(-1, n)
    if ng * group != n:
        a2 = torch.nn.functional.pad(a2, (0, ng * group - n))
    return a2.reshape(-1, group), (tuple(a.shape), axis)


def _torch_ungroup(q, info, granularity: str):
    import torch

    shape, axis = info
    if granularity == "tensor":
        return q.reshape(shape)
    if granularity == "channel":
        return torch.movedim(q.reshape(shape), 0, axis)
    n = shape[-1]
    rows = q.numel() // (int(np.prod(shape[:-1], dtype=np.int64)) or 1)
    return torch.movedim(q.reshape(-1, rows)[:, :n].reshape(shape), -1, axis)


def quantize_torch(x, bits: int, scheme: str = "symmetric", granularity: str = "tensor", group: int = 128,
                   clip: str = "symmetric", rounding: str = "rne", axis: int = -1, *, rand=None,
                   rand_bits: int | None = None, sr_variant: str = "a"):
    """:func:`quantize` on a torch tensor, on its device: the same scales, zero points and codes (also under
    ``rounding="sr"``, with ``rand`` a tensor or array of the input's shape), by the same integer kernel
    :func:`quantize_words` on the torch array shim, so nothing depends on a device's float unit."""
    import torch

    _check_rounding(bits, scheme, clip, rounding, rand)
    xp = ops("torch")
    g, info = _torch_groups(x, granularity, axis, group)
    b = g.contiguous().view(torch.int32)
    hi, lo = group_words(b, xp)
    if not finite_words(hi, lo, xp):
        raise SpecialValueError(NONFINITE)
    sr = _sr_groups(x, rand, rand_bits, sr_variant, granularity, axis, group, "torch") if rounding == "sr" else None
    sb, z, q = quantize_words(b, hi, lo, bits, scheme, clip, rounding, xp, sr)
    check_scales(sb, xp)
    dt = torch.int16 if bits == 16 else torch.int8
    return (sb.to(torch.int32).view(torch.float32), torch.broadcast_to(z, sb.shape).to(torch.int32),
            _torch_ungroup(q.to(dt), info, granularity))


# ------------------------------------------------------------------ the rounded quotient
def _frac_bits(rem, den, u, xp, steps: int = 2):
    """(floor(rem * 2^u / den), whether a remainder is left) for 0 <= rem < den < 2^24 and 0 <= u <= 32 * steps
    (per element), by long division in 32-bit steps (int64 words)."""
    out = rem * 0
    for i in range(steps):
        c = xp.minimum(xp.maximum(u - 32 * i, 0), 32)
        rem = rem << c
        d = rem // den
        out = (out << c) + d
        rem = rem - d * den
    return out, rem != 0


def round_magnitude(xbits, sbits, rounding: str, xp, sr=None):
    """Rounded magnitudes round(|x / s|) (int64, int32 for ``rne``/``rna``;
    :func:`refarith.exact.intquant.round_int` of the magnitude) from the binary32 bit patterns (int32) of x >= 0
    (magnitudes) and of the positive scale s broadcasting against them: ``rne`` ties to even, ``rna`` ties away,
    ``sr`` stochastically with ``sr`` = (r, k, variant), r int64 below 2^k of x's shape.

    With x = X 2^a and s = S 2^b (X, S in [2^23, 2^24)) the quotient X 2^(a-b) / S is split exactly into
    n + (I + R/S) / 2^t with integers (n, I < 2^t, R < S); floor(frac * 2^L) and whether bits remain below it
    come from long division, L = k + 1 (k + j for ``te_e2m1_8``, j = 17 - bit length of n: half the binary32
    spacing below n + 1 is 2^-j / 256).  ``rne``/``rna`` need only n, the half bit and a sticky bit: one integer
    division of X 2^(e+1) by S, e = a - b (quotients below 1/2, e < -1, give 0; :func:`_round_nearest`).
    A quotient of 2^17 or more comes back as a value of at least 2^17 (int32 for ``rne``/``rna``): every width
    here saturates there, with any zero point.
    """
    if rounding != "sr":
        return _round_nearest(xbits, sbits, rounding == "rne", xp)
    _, ex, xn = split_f32(xbits, xp)
    _, es, sn = split_f32(sbits, xp)
    xn, sn = _i64(xn, xp), _i64(sn, xp)
    e = _i64(ex, xp) - _i64(es, xp)
    big = (e > 17) & (xn != 0)  # X / S > 1/2, so the quotient is at least 2^17
    e = xp.minimum(e, 17)
    one = xn * 0 + 1
    ep = xp.maximum(e, 0)
    t = xp.minimum(xp.maximum(-e, 0), 63)  # t > L + 1 leaves floor(frac 2^L) = 0
    num = xn << ep
    q0 = num // sn
    rem = num - q0 * sn
    n = q0 >> t
    imod = q0 - (n << t)  # e < 0: q0 = X // S is 0 or 1, its bits below 2^t belong to the fraction
    r, k, variant = sr
    if variant == "te_e2m1_8":
        nbits = n * 0
        for b in range(17):
            nbits = nbits + xp.where(n >= (1 << b), one, n * 0)
        L = k + xp.maximum(17 - nbits, 1)
        widest = k + 17
    else:
        L = n * 0 + (k + 1)
        widest = k + 1
    f, sticky = _fraction(imod, rem, sn, t, L, xp, 1 if widest <= 32 else 2)
    nonzero = (f != 0) | sticky
    if variant == "a":  # floor(frac 2^k) + r >= 2^k
        up = (f >> 1) + r >= 1 << k
    elif variant == "b":  # floor(frac 2^(k+1)) + 2r + 1 >= 2^(k+1)
        up = f + 2 * r + 1 >= 1 << (k + 1)
    elif variant in ("c", "c_odd"):  # RNITE / RNITO(frac 2^k) + r >= 2^k
        tk, half = f >> 1, (f & 1) == 1
        odd = (tk & 1) == (1 if variant == "c" else 0)
        up = tk + (half & (sticky | odd)) + r >= 1 << k
    elif variant == "te_e2m1_8":  # floor(frac 2^(k+j)) + r 2^j + 1 >= 2^(k+j)
        up = f + (r << (L - k)) + 1 >= one << L
    else:
        raise UnknownModeError(f"unknown stochastic rounding variant {variant!r}")
    m = n + (up & nonzero)
    return xp.where(big, one << 17, m)


def _round_nearest(xbits, sbits, even: bool, xp):
    """round(|x / s|) (int32; ties to even, or away from zero) of binary32 patterns x >= 0 and s > 0, for
    quotients below 2^17; a quotient of 2^17 or more gives a value in [2^17, 2^24].

    x = X 2^(E - 150) with E = max(field, 1) and X = x - ((E - 1) << 23) (2^23 + fraction, or the fraction of a
    subnormal, not normalized); s = S 2^(es - 150) with S in [2^23, 2^24) (:func:`refarith.fast.mx.split_f32`,
    es >= -22).  So 2 |x / s| = X 2^u / S, u = E - es + 1, and one integer division gives n and the half bit
    (q2 = 2n + h) and its remainder the sticky bit: round = (q2 + ((n | sticky) & 1)) >> 1 ties to even,
    (q2 + 1) >> 1 ties away.  u < 0 leaves |x / s| < 1/2 (X / S < 2): X is taken as 0.  The shift is capped at
    24 (numerator below 2^48, q2 below 2^25): a subnormal x has u <= 24, and a normal x with u > 24 has
    X 2^24 / S > 2^23 either way."""
    big_e = xp.maximum(xbits >> 23, 1)
    _, es, sn = split_f32(sbits, xp)
    u = big_e - (es - 1)
    sn = _i64(sn, xp)
    num = _i64(xp.where(u < 0, 0, xbits - ((big_e - 1) << 23)), xp) << xp.minimum(xp.maximum(u, 0), 24)
    q2 = num // sn
    if even:
        sticky = num != q2 * sn
        q2 = _to_i32(q2, xp)
        return (q2 + (((q2 >> 1) | sticky) & 1)) >> 1
    return (_to_i32(q2, xp) + 1) >> 1


def _fraction(imod, rem, sn, t, L, xp, steps: int):
    """(floor(frac * 2^L), whether bits of frac remain below it) of frac = (imod + rem / sn) / 2^t."""
    u = L - t
    f_hi, rest = _frac_bits(rem, sn, xp.maximum(u, 0), xp, steps)
    drop = xp.minimum(xp.maximum(-u, 0), 40)
    f = xp.where(u >= 0, (imod << xp.maximum(u, 0)) + f_hi, imod >> drop)
    sticky = rest | ((imod & ((f * 0 + 1 << drop) - 1)) != 0)
    return f, sticky
