"""add, sub, mul, div and fma of float codes, written once against :class:`~refarith.fast.bitops.BitOps`.

The numpy/torch kernels (:mod:`refarith.fast.arith`, :mod:`refarith.fast.oddsum`) decode the codes to binary64,
combine them with one binary64 float operation and cast the result with the cast kernel.  Neither tracer takes
binary64 float operations, so this module states the same step in 64-bit integer words: it computes the binary64
bit pattern y of the result and hands y to :func:`refarith.fast.castkernel.cast_bits` (the kernel the cast
theorems prove), in one traced graph per spec (:func:`arith_graph`, :func:`fma_graph`) that the Triton backend
emits.  y is:

* for add, sub and mul: the exact result (the formats of :func:`refarith.fast.arith.check_format` have every sum
  and product exact in binary64), so y is the binary64 value the numpy kernel computes;
* for div and fma: the exact result **rounded to odd** at 53 bits (or at the quotient's own precision of at least
  62 - mbits bits, if that is less).  Rounding to odd at m bits keeps the first m - 1 bits and makes the m-th bit
  sticky, so every rounding that reads at most m - 2 bits below the leading bit -- every deterministic mode at the
  format's precision, and a stochastic decision of p + K + 1 bits plus a sticky bit -- gives the same code for y
  as for the exact result (Boldo and Melquiond, IEEE Trans. Computers 57(4), 2008).  The numpy kernels' k bounds
  (2p + K + 2 <= 53 for div; :func:`refarith.fast.oddsum.fma_sr_max_bits` for fma) keep p + K + 2 within those m
  bits, so y and the numpy kernel's binary64 value round to the same code.

Operands are decoded by the cast kernel's own decode (sign, NaN/inf/zero class, significand normalized to bit
mbits, biased exponent).  Sums align the two significands at bit 61 of a word and shift the smaller one right
with a sticky bit; a difference with a sticky bit subtracts one more (the floor of the exact difference), and the
sticky bit marks it inexact.  A quotient is the integer division of the dividend's significand shifted to bit 62
by the divisor's, its remainder the sticky bit.  Zeros, infinities and NaNs follow IEEE 754 as in the numpy
kernels: an exact zero sum is +0 unless both addends are -0 (``rdn``: -0 unless both are +0); a NaN result has
the sign of the first NaN operand (``b`` negated for sub), or + for an invalid operation (0/0, inf - inf,
0 * inf); a format without signs has one NaN.
"""

from __future__ import annotations

from functools import lru_cache

from refarith.fast.bitops import BitOps
from refarith.fast.castkernel import _decode_float, _plan, cast_bits
from refarith.fast.trace import Graph, trace
from refarith.formats import FloatFormat, get_format

_EOFF = 1 << 12
"""Offset that keeps every exponent word of this module non-negative."""
_NAN64 = 0x7FF8_0000_0000_0000
_INF64 = 0x7FF0_0000_0000_0000


class _Num:
    """A decoded operand or intermediate result: |value| = m * 2^(e - scale), with its sign and class masks."""

    def __init__(self, sign, m, e, nan, inf, zero) -> None:
        self.sign, self.m, self.e, self.nan, self.inf, self.zero = sign, m, e, nan, inf, zero


def _decode(ops: BitOps, x, f: FloatFormat) -> tuple[_Num, int]:
    """The operand codes ``x`` of ``f`` and the scale of their exponent words."""
    p = _plan(f, f, ops.width)
    sign, nan, inf, zero, sig, eb = _decode_float(ops, x, f, p)
    return _Num(sign, sig, eb, nan, inf, zero), p.a + p.top


def _at61(ops: BitOps, m, e):
    """(m, e) with m's leading bit moved to bit 61 and e lowered to match (m < 2^62; zero stays zero)."""
    c = lambda v: ops.const(v, m)  # noqa: E731
    sh = ops.sub(ops.umin(ops.clz(m), c(63)), c(2))
    return ops.shl(m, sh), ops.sub(e, sh)


def _odd_add(ops: BitOps, a: _Num, b: _Num):
    """(sign, m, e, sticky) of the finite a + b (both aligned at bit 61, exponents in one scale): m the floor of
    the exact magnitude, sticky set when it is inexact; zero operands must have e = 0."""
    c = lambda v: ops.const(v, a.m)  # noqa: E731
    a_big = ops.bor(ops.ugt(a.e, b.e), ops.band(ops.eq(a.e, b.e), ops.uge(a.m, b.m)))
    mb, eb, sb = ops.where(a_big, a.m, b.m), ops.where(a_big, a.e, b.e), ops.where(a_big, a.sign, b.sign)
    ms, es = ops.where(a_big, b.m, a.m), ops.where(a_big, b.e, a.e)
    d = ops.umin(ops.sub(eb, es), c(63))
    sh = ops.shr(ms, d)
    sticky = ops.ne(ops.sub(ms, ops.shl(sh, d)), c(0))
    same = ops.eq(a.sign, b.sign)
    diff = ops.sub(ops.sub(mb, sh), ops.where(sticky, c(1), c(0)))
    return sb, ops.where(same, ops.add(mb, sh), diff), eb, sticky


def _pack(ops: BitOps, sign, m, e, scale: int, sticky):
    """binary64 bits of (-1)^sign * m * 2^(e - scale) for m > 0, rounded to odd at 53 bits (``sticky``: m is the
    floor of an inexact magnitude, which is rounded to odd at its own precision first)."""
    c = lambda v: ops.const(v, m)  # noqa: E731
    m1 = ops.or_(m, ops.where(sticky, c(1), c(0)))
    top = ops.sub(c(63), ops.clz(m1))
    wide = ops.ugt(top, c(52))
    sr = ops.where(wide, ops.sub(top, c(52)), c(0))
    sl = ops.where(wide, c(0), ops.sub(c(52), top))
    q = ops.shr(m1, sr)
    lost = ops.ne(ops.sub(m1, ops.shl(q, sr)), c(0))
    q = ops.or_(ops.shl(q, sl), ops.where(lost, c(1), c(0)))
    lead = ops.add(top, e)  # the leading bit's exponent plus scale
    field = ops.add(lead, c(1023 - scale)) if scale <= 1023 else ops.sub(lead, c(scale - 1023))
    return ops.or_(ops.or_(ops.shl(sign, 63), ops.shl(field, 52)), ops.and_(q, c((1 << 52) - 1)))


def _special(ops: BitOps, finite, nan, nan_sign, inf, inf_sign, zero, zero_sign):
    """The finite bits with NaN, infinity and zero results put in (NaN over infinity over zero)."""
    c = lambda v: ops.const(v, finite)  # noqa: E731
    out = ops.where(zero, ops.shl(zero_sign, 63), finite)
    out = ops.where(inf, ops.or_(ops.shl(inf_sign, 63), c(_INF64)), out)
    return ops.where(nan, ops.or_(ops.shl(nan_sign, 63), c(_NAN64)), out)


def _first_nan_sign(ops: BitOps, nums: list[_Num], signed: bool):
    """Sign of the first NaN among ``nums`` (0 where none is a NaN, and always 0 for an unsigned format)."""
    zero = ops.const(0, nums[0].m)
    if not signed:
        return zero
    s = zero
    for n in reversed(nums):
        s = ops.where(n.nan, n.sign, s)
    return s


def _zero_e(ops: BitOps, n: _Num) -> _Num:
    return _Num(n.sign, n.m, ops.where(n.zero, ops.const(0, n.m), n.e), n.nan, n.inf, n.zero)


def _sum_bits(ops: BitOps, a: _Num, b: _Num, scale: int, rounding: str):
    """binary64 bits of a + b (rounded to odd), a and b aligned at bit 61 with zero exponents for zeros."""
    c = lambda v: ops.const(v, a.m)  # noqa: E731
    s, m, e, sticky = _odd_add(ops, _zero_e(ops, a), _zero_e(ops, b))
    exact_zero = ops.band(ops.eq(m, c(0)), ops.bnot(sticky))
    both_neg = ops.band(ops.eq(a.sign, c(1)), ops.eq(b.sign, c(1)))
    both_pos = ops.band(ops.eq(a.sign, c(0)), ops.eq(b.sign, c(0)))
    both_zero = ops.band(a.zero, b.zero)
    if rounding == "rdn":  # IEEE 754 6.3: an exact zero sum is -0 under roundTowardNegative
        neg0 = ops.bnot(ops.band(both_zero, both_pos))
    else:
        neg0 = ops.band(both_zero, both_neg)
    finite = _pack(ops, s, ops.where(exact_zero, c(1), m), e, scale, sticky)
    return finite, exact_zero, ops.where(neg0, c(1), c(0))


def binary_bits(ops: BitOps, op: str, xa, xb, f: FloatFormat, rounding: str = "rne"):
    """binary64 bits of ``xa <op> xb`` for codes of ``f``: exact for add, sub and mul, rounded to odd for div
    (module docstring); ``rounding`` decides only the sign of an exact zero sum."""
    a, scale = _decode(ops, xa, f)
    b, _ = _decode(ops, xb, f)
    c = lambda v: ops.const(v, a.m)  # noqa: E731
    one = c(1)
    if op == "sub":
        b = _Num(ops.xor(b.sign, one), b.m, b.e, b.nan, b.inf, b.zero)
    nan_sign = _first_nan_sign(ops, [a, b], f.signed)
    anynan = ops.bor(a.nan, b.nan)
    xsign = ops.xor(a.sign, b.sign)
    if op in ("add", "sub"):
        nan = ops.bor(anynan, ops.band(ops.band(a.inf, b.inf), ops.ne(a.sign, b.sign)))
        ma, ea = _at61(ops, a.m, ops.add(a.e, c(_EOFF)))
        mb, eb = _at61(ops, b.m, ops.add(b.e, c(_EOFF)))
        finite, zero, zsign = _sum_bits(ops, _Num(a.sign, ma, ea, a.nan, a.inf, a.zero),
                                        _Num(b.sign, mb, eb, b.nan, b.inf, b.zero), scale + _EOFF, rounding)
        inf = ops.bor(a.inf, b.inf)
        return _special(ops, finite, nan, nan_sign, inf, ops.where(a.inf, a.sign, b.sign), zero, zsign)
    if op == "mul":
        nan = ops.bor(anynan, ops.bor(ops.band(a.inf, b.zero), ops.band(a.zero, b.inf)))
        inf, zero = ops.bor(a.inf, b.inf), ops.bor(a.zero, b.zero)
        finite = _pack(ops, xsign, ops.where(zero, one, ops.mul(a.m, b.m)), ops.add(a.e, b.e), 2 * scale,
                       ops.mfalse(a.m))
    else:  # div: the dividend's significand (below 2^(top+1)) shifted to bit 62, floor-divided
        top = f.mbits
        nan = ops.bor(anynan, ops.bor(ops.band(a.zero, b.zero), ops.band(a.inf, b.inf)))
        inf, zero = ops.bor(a.inf, b.zero), ops.bor(a.zero, b.inf)
        bm = ops.where(b.zero, one, b.m)
        num = ops.shl(a.m, 62 - top)
        q = ops.udiv(num, bm)
        sticky = ops.ne(ops.sub(num, ops.mul(q, bm)), c(0))
        finite = _pack(ops, xsign, ops.where(a.zero, one, q), ops.sub(ops.add(a.e, c(_EOFF)), b.e),
                       _EOFF + 62 - top, sticky)
    return _special(ops, finite, nan, nan_sign, inf, xsign, zero, xsign)


def fma_bits(ops: BitOps, xa, xb, xc, f: FloatFormat, rounding: str = "rne"):
    """binary64 bits of ``xa * xb + xc`` for codes of ``f``, the exact result rounded to odd (module docstring);
    ``rounding`` decides only the sign of an exact zero sum."""
    a, scale = _decode(ops, xa, f)
    b, _ = _decode(ops, xb, f)
    z, _ = _decode(ops, xc, f)
    c = lambda v: ops.const(v, a.m)  # noqa: E731
    pnan = ops.bor(ops.bor(a.nan, b.nan), ops.bor(ops.band(a.inf, b.zero), ops.band(a.zero, b.inf)))
    pinf = ops.band(ops.bor(a.inf, b.inf), ops.bnot(pnan))
    ps = ops.xor(a.sign, b.sign)
    mp, ep = _at61(ops, ops.mul(a.m, b.m), ops.add(ops.add(a.e, b.e), c(_EOFF)))
    mz, ez = _at61(ops, z.m, ops.add(z.e, c(scale + _EOFF)))
    p = _Num(ps, mp, ep, pnan, pinf, ops.bor(a.zero, b.zero))
    zz = _Num(z.sign, mz, ez, z.nan, z.inf, z.zero)
    finite, zero, zsign = _sum_bits(ops, p, zz, 2 * scale + _EOFF, rounding)
    # NaN sign: a's, b's, then c's unless the product is itself invalid (0 * inf); + for any other invalid case
    nan_sign = ops.where(a.nan, a.sign, ops.where(b.nan, b.sign, ops.where(ops.band(z.nan, ops.bnot(pnan)), z.sign,
                                                                               c(0))))
    if not f.signed:
        nan_sign = c(0)
    nan = ops.bor(ops.bor(pnan, z.nan), ops.band(ops.band(pinf, z.inf), ops.ne(ps, z.sign)))
    inf = ops.bor(pinf, z.inf)
    return _special(ops, finite, nan, nan_sign, inf, ops.where(pinf, ps, z.sign), zero, zsign)


def _cast(ops: BitOps, y, f: FloatFormat, rounding: str, overflow: str, nan_policy: str, negative: str | None,
          r, rand_bits: int | None, sr_variant: str):
    """(code, error_mask, y): the binary64 bits ``y`` cast into ``f`` by the cast kernel, and ``y`` itself (the
    error message names it, as the numpy kernel's names its binary64 value)."""
    code, err = cast_bits(ops, y, "binary64", f, rounding, overflow, nan_policy, negative, r,
                          rand_bits if rounding == "sr" else None, sr_variant)
    return code, err, y


def _name(op: str, f: FloatFormat, rounding: str, overflow: str, nan_policy: str, negative: str | None,
          rand_bits: int | None, sr_variant: str) -> str:
    sr = f",sr={sr_variant},k={rand_bits}" if rounding == "sr" else ""
    return f"{op}({f.name},rounding={rounding},overflow={overflow},nan={nan_policy},negative={negative}{sr})@64"


@lru_cache(maxsize=128)
def arith_graph(op: str, fmt: str, rounding: str, overflow: str, nan_policy: str = "error",
                negative: str | None = None, rand_bits: int | None = None, sr_variant: str = "a") -> Graph:
    """Graph of ``a <op> b`` into ``fmt`` (64-bit words): inputs ``a``, ``b`` (codes) and for ``rounding='sr'``
    ``r`` (the k-bit random integers); outputs ``(code, error_mask)`` as :func:`refarith.fast.castkernel.cast_bits`
    (the mask marks where the exact model raises) and the binary64 bits of the unrounded result."""
    f = get_format(fmt)
    name = _name(op, f, rounding, overflow, nan_policy, negative, rand_bits, sr_variant)

    def kernel(ops, a, b, r=None):
        return _cast(ops, binary_bits(ops, op, a, b, f, rounding), f, rounding, overflow, nan_policy, negative, r,
                     rand_bits, sr_variant)

    return trace(kernel, 64, ("a", "b", "r") if rounding == "sr" else ("a", "b"), name)


@lru_cache(maxsize=64)
def fma_graph(fmt: str, rounding: str, overflow: str, nan_policy: str = "error", rand_bits: int | None = None,
              sr_variant: str = "a") -> Graph:
    """Graph of ``a * b + c`` into ``fmt`` (64-bit words): inputs ``a``, ``b``, ``c`` and for ``rounding='sr'``
    ``r``; outputs ``(code, error_mask, binary64 bits)`` as :func:`arith_graph`."""
    f = get_format(fmt)
    name = _name("fma", f, rounding, overflow, nan_policy, None, rand_bits, sr_variant)

    def kernel(ops, a, b, z, r=None):
        return _cast(ops, fma_bits(ops, a, b, z, f, rounding), f, rounding, overflow, nan_policy, None, r,
                     rand_bits, sr_variant)

    return trace(kernel, 64, ("a", "b", "c", "r") if rounding == "sr" else ("a", "b", "c"), name)


# ------------------------------------------------------------------ the floating dot product's accumulator
class _TraceBackend:
    """The array primitives of :class:`refarith.fast.lmul.Backend` on the tracing shim (``xp``,
    :class:`refarith.fast.xptrace.XpTrace`), so that the numpy kernel's accumulator rounding
    (:func:`refarith.fast.lmul.round_scaled`) is traced as it runs on numpy."""

    name = "trace"

    def __init__(self, xp) -> None:
        self.xp = xp

    def where(self, c, a, b):
        # Python ints are int64 constants here, as numpy's int64 arrays hold them (a sign mask of 2^31 included)
        a, b = (self.xp.const(v, 64) if isinstance(v, int) else v for v in (a, b))
        return self.xp.where(c, a, b)

    def ones_like(self, a):
        return a * 0 + 1

    def at_most(self, a, hi: int):
        return self.xp.minimum(a, hi)


def _rescale(ops: BitOps, n: _Num, scale: int, to: int) -> _Num:
    """``n`` with its exponent words in scale ``to`` >= ``scale``."""
    return _Num(n.sign, n.m, ops.add(n.e, ops.const(to - scale, n.m)), n.nan, n.inf, n.zero)


def _dot_step(xp, a: _Num, p: _Num, scale: int, acc: FloatFormat, rounding: str, overflow: str, sr_up):
    """(code, NaN-without-NaN mask) of round_acc(a + p), as ``refarith.fast.fdot._add_round`` computes it from
    the binary64 value of the sum rounded to odd: the decomposition of ``FdotF64.encode_exactish`` and the traced
    :func:`refarith.fast.lmul.round_scaled` (with the stochastic rule ``sr_up``)."""
    from refarith.fast.lmul import round_scaled, special_codes
    from refarith.fast.xptrace import SInt

    ops = xp.tr
    c = lambda v: ops.const(v, a.m)  # noqa: E731
    ma, ea = _at61(ops, a.m, a.e)
    mp, ep = _at61(ops, p.m, p.e)
    fin, zero, zsign = _sum_bits(ops, _Num(a.sign, ma, ea, a.nan, a.inf, a.zero),
                                 _Num(p.sign, mp, ep, p.nan, p.inf, p.zero), scale, rounding)
    nan = ops.bor(ops.bor(a.nan, p.nan), ops.band(ops.band(a.inf, p.inf), ops.ne(a.sign, p.sign)))
    inf = ops.band(ops.bor(a.inf, p.inf), ops.bnot(nan))
    isign = ops.where(a.inf, a.sign, p.sign)
    word = lambda w: SInt(xp, w, 64, 0)  # noqa: E731
    sign = word(ops.shr(fin, 63))
    field = ops.and_(ops.shr(fin, 52), c(0x7FF))
    n = word(ops.or_(ops.and_(fin, c((1 << 52) - 1)), c(1 << 52)))
    out = round_scaled(_TraceBackend(xp), sign, n, word(ops.sub(field, c(1075))), 52, acc, rounding, overflow,
                       "gradual", sr_up)
    sc = special_codes(acc)
    out = xp.word(xp.lift(out, 64)).w
    out = ops.where(zero, ops.where(ops.eq(zsign, c(1)), c(sc["neg0"]), c(0)), out)
    maxc = ops.where(ops.eq(isign, c(1)), c(acc.max_code | acc.sign_mask), c(acc.max_code))
    if overflow == "saturate":
        ic = maxc
    else:
        key = "inf" if overflow == "inf" else "nan"
        ic = ops.where(ops.eq(isign, c(1)), c(sc[key + "1"] & ops.mask), c(sc[key + "0"] & ops.mask))
    out = ops.where(inf, ic, out)
    if acc.has_nan:
        return ops.where(nan, c(sc["nan0"]), out), ops.mfalse(out)
    return out, nan


def dot_accumulate(xp, xs, ys, rs, fmt: FloatFormat, acc: FloatFormat, order: str, rounding: str, overflow: str,
                   k: int | None, sr_variant: str):
    """(accumulator code, error mask) of the dot product of the code words ``xs``, ``ys`` (exact products) in
    ``order``, addition i rounded with ``rs[i]`` for ``rounding='sr'``: :func:`refarith.fast.fdot.fdot`'s
    evaluation order and zero/inf/NaN rules; the error mask marks a NaN into an accumulator without NaN."""
    from refarith.fast.mx import sr_round_up

    ops = xp.tr
    c = lambda v: ops.const(v, xs[0])  # noqa: E731
    c_in = _decode(ops, xs[0], fmt)[1] if xs else 0
    c_acc = _decode(ops, c(0), acc)[1]
    scale = max(2 * c_in, c_acc) + _EOFF
    prods = []
    for x, y in zip(xs, ys, strict=True):
        a, _ = _decode(ops, x, fmt)
        b, _ = _decode(ops, y, fmt)
        nan = ops.bor(ops.bor(a.nan, b.nan), ops.bor(ops.band(a.inf, b.zero), ops.band(a.zero, b.inf)))
        prods.append(_rescale(ops, _Num(ops.xor(a.sign, b.sign), ops.mul(a.m, b.m), ops.add(a.e, b.e), nan,
                                        ops.band(ops.bor(a.inf, b.inf), ops.bnot(nan)), ops.bor(a.zero, b.zero)),
                              2 * c_in, scale))
    rules = iter(rs)
    err = ops.mfalse(c(0))
    zero_num = _rescale(ops, _decode(ops, c(0), acc)[0], c_acc, scale)

    def add(a: _Num, p: _Num, mode: str = rounding):
        nonlocal err
        r = next(rules, None)
        sr_up = None if r is None else (lambda n, d, lo, r=r: sr_round_up(n, d, (r, k, sr_variant), lo, xp))
        code, e = _dot_step(xp, a, p, scale, acc, mode, overflow, sr_up)
        err = ops.bor(err, e)
        return code, _rescale(ops, _decode(ops, code, acc)[0], c_acc, scale)

    if not prods:
        code, _ = add(zero_num, zero_num, "rne" if rounding == "sr" else rounding)
    elif order == "sequential":
        a = zero_num
        for p in prods:
            code, a = add(a, p)
    else:
        def tree(lo: int, hi: int):
            if hi - lo == 1:
                return None, prods[lo]
            mid = lo + (hi - lo) // 2
            return add(tree(lo, mid)[1], tree(mid, hi)[1])

        code, _ = add(zero_num, prods[0]) if len(prods) == 1 else tree(0, len(prods))
    return code, err


@lru_cache(maxsize=64)
def fdot_graph(fmt: str, acc: str, n: int, order: str, rounding: str, overflow: str, rand_bits: int | None = None,
               sr_variant: str = "a") -> Graph:
    """Graph of the dot product of two vectors of ``n`` codes of ``fmt`` accumulated in ``acc`` (exact products,
    64-bit words): inputs ``x0..x{n-1}``, ``y0..``, and for ``rounding='sr'`` one random integer per addition
    (``r0..``); outputs ``(code, error_mask)``."""
    from refarith.exact.fdot import additions
    from refarith.fast.xptrace import trace_xp

    f, a = get_format(fmt), get_format(acc)
    m = additions(n, order) if rounding == "sr" else 0
    names = [f"x{i}" for i in range(n)] + [f"y{i}" for i in range(n)] + [f"r{i}" for i in range(m)]
    sr = f",sr={sr_variant},k={rand_bits}" if rounding == "sr" else ""

    def kernel(xp, *ins):
        xs = [v.w for v in ins[:n]]
        code, err = dot_accumulate(xp, xs, [v.w for v in ins[n:2 * n]], list(ins[2 * n:]), f, a, order, rounding,
                                   overflow, rand_bits, sr_variant)
        return SInt(xp, code, 64, 0), SInt(xp, err, 1, 0, True)

    from refarith.fast.xptrace import SInt

    return trace_xp(kernel, [(nm, 0, 64) for nm in names],
                    f"fdot({f.name}->{a.name},n={n},order={order},rounding={rounding},overflow={overflow}{sr})",
                    width=64)


__all__ = ["arith_graph", "binary_bits", "dot_accumulate", "fdot_graph", "fma_bits", "fma_graph"]
