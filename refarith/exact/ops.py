"""Decode, encode, cast and correctly rounded arithmetic in any float format, exactly.

Every operation computes the exact real result (Fractions; square root by an
integer square root with a sticky bit) and rounds it once with
:func:`refarith.exact.rounding.round_value`.  IEEE 754 special cases:
x - x = +0 (-0 under rdn), (±0) + (±0) keeps a common sign, 0 * inf, inf - inf,
0/0, inf/inf and sqrt(negative) are invalid (canonical NaN, positive), x/0 =
±inf; a NaN operand gives the canonical NaN with the first NaN operand's sign.
For formats without NaN an invalid result follows ``nan_policy``.

Flags (IEEE 754-2019 clause 7, default exception handling) are those of the
one rounding (:mod:`refarith.exact.rounding`: inexact, overflow, underflow with
``tininess="before"`` or ``"after"``) plus:

* ``invalid`` (7.2) for every invalid operation: inf - inf (add/sub, and fma's
  product against an opposite infinity), 0 * inf (mul, and fma whatever c is:
  with a quiet NaN c, where 7.2 leaves it to the implementation, it is flagged,
  as Berkeley SoftFloat and x86 do), 0/0, inf/inf, sqrt of a value below zero
  (sqrt(-0) = -0 is valid); and for any signalling NaN operand (7.2 a).  A
  signalling NaN is a NaN code of an IEEE-specials format whose first trailing
  significand bit is 0 (the 6.2.1 convention); the canonical NaN it gives is
  quiet.  A quiet NaN operand raises no flag.  ``cast`` flags a signalling NaN
  source the same way (5.4.2 convertFormat is a general-computational op).
* ``divide_by_zero`` (7.3): a finite non-zero divided by ±0 (the exact result
  is ±inf; inf / 0 and 0 / 0 are not divisions by zero in this sense).
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from math import isqrt

from refarith.errors import BadValueError
from refarith.exact.rounding import Rounded, floor_log2, flush_code, flush_input, pow2, round_value
from refarith.exact.value import Value, parse_value
from refarith.formats import FloatFormat, IntFormat, get_format


def decode(code: int, fmt: FloatFormat | IntFormat | str) -> Value:
    """The exact value of a bit pattern."""
    fmt = get_format(fmt)
    if isinstance(fmt, IntFormat):
        return Value.of(fmt.value(code))
    if getattr(fmt, "kind", None) == "tapered":  # HiFloat8: one zero, so every finite code has its own sign
        fmt.check_code(code)
        if fmt.is_nan_code(code):
            return Value.nan(0)
        if code in fmt.inf_codes:
            return Value.inf(code >> 7)
        v = fmt.finite_value(code)
        return Value("finite", 1 if v < 0 else 0, abs(v))
    if type(code) is int:  # Values are immutable: small formats remember all theirs, wide ones the recent
        return _decode_small(code, fmt) if fmt.nbits <= 16 else _decode_wide(code, fmt)
    return _decode_float(code, fmt)


@lru_cache(maxsize=1 << 18)
def _decode_small(code: int, fmt: FloatFormat) -> Value:
    return _decode_float(code, fmt)


@lru_cache(maxsize=1 << 16)
def _decode_wide(code: int, fmt: FloatFormat) -> Value:
    return _decode_float(code, fmt)


def _decode_float(code: int, fmt: FloatFormat) -> Value:
    s, _, _ = fmt.fields(code)
    if fmt.is_nan_code(code):
        return Value.nan(s)
    pos, neg = fmt.inf_codes
    if code == pos:
        return Value.inf(0)
    if code == neg:
        return Value.inf(1)
    return Value("finite", s, abs(fmt.finite_value(code)))


def encode(x: object, fmt: FloatFormat | IntFormat | str, rounding: str = "rne", overflow: str | None = None,
           nan_policy: str = "error", negative: str | None = None, rand: int | None = None,
           rand_bits: int | None = None, *, tininess: str = "before", sr_variant: str = "a") -> Rounded:
    """Round a number (int, float, Fraction, Decimal, string, Value) into ``fmt`` once, with its flags
    (``sr_variant``: the stochastic rule of :mod:`refarith.exact.stochastic` for ``rounding="sr"``)."""
    return round_value(parse_value(x), fmt, rounding, overflow, nan_policy, negative, rand, rand_bits,
                       tininess=tininess, sr_variant=sr_variant)


def is_signaling_nan(code: int, fmt: FloatFormat | IntFormat | str) -> bool:
    """True for a signalling NaN code: an IEEE-specials format's NaN whose first trailing significand bit is 0
    (IEEE 754-2019 6.2.1).  Other formats (OCP fn, fnuz, P3109) have quiet NaNs only."""
    fmt = get_format(fmt)
    if isinstance(fmt, IntFormat) or fmt.specials != "ieee" or not fmt.is_nan_code(code):
        return False
    return not (code >> (fmt.mbits - 1)) & 1


def cast(code: int, src: FloatFormat | IntFormat | str, dst: FloatFormat | IntFormat | str, rounding: str = "rne",
         overflow: str | None = None, nan_policy: str = "error", negative: str | None = None, rand: int | None = None,
         rand_bits: int | None = None, *, tininess: str = "before", subnormal: str | None = None,
         sr_variant: str = "a") -> Rounded:
    """Convert a bit pattern of ``src`` into ``dst`` with a single rounding; a signalling NaN source is also
    flagged ``invalid``.  ``subnormal``: a flush-to-zero variant (``daz``, ``ftz``, ``daz_ftz``; see
    :data:`refarith.exact.rounding.SUBNORMAL_MODES`), None for gradual underflow."""
    src_f, dst_f = get_format(src), get_format(dst)
    if rand is None and type(code) is int:  # deterministic: a pure function of its arguments, remembered
        return _cast_memo(code, src_f, dst_f, rounding, overflow, nan_policy, negative, rand_bits, tininess,
                          subnormal, sr_variant)
    return _cast(code, src_f, dst_f, rounding, overflow, nan_policy, negative, rand, rand_bits, tininess, subnormal,
                 sr_variant)


def _cast(code: int, src_f: FloatFormat | IntFormat, dst_f: FloatFormat | IntFormat, rounding: str,
          overflow: str | None, nan_policy: str, negative: str | None, rand: int | None, rand_bits: int | None,
          tininess: str, subnormal: str | None, sr_variant: str) -> Rounded:
    r = round_value(flush_input(decode(code, src_f), src_f, subnormal), dst_f, rounding, overflow, nan_policy,
                    negative, rand, rand_bits, tininess=tininess, sr_variant=sr_variant)
    flushed = flush_code(r.code, dst_f, subnormal)
    if flushed != r.code:
        r = Rounded(flushed, r.flags | {"underflow", "inexact"})
    return _flag(r, "invalid") if is_signaling_nan(code, src_f) else r


@lru_cache(maxsize=1 << 17)
def _cast_memo(code: int, src_f: FloatFormat | IntFormat, dst_f: FloatFormat | IntFormat, rounding: str,
               overflow: str | None, nan_policy: str, negative: str | None, rand_bits: int | None, tininess: str,
               subnormal: str | None, sr_variant: str) -> Rounded:
    return _cast(code, src_f, dst_f, rounding, overflow, nan_policy, negative, None, rand_bits, tininess, subnormal,
                 sr_variant)


def value_table(fmt: FloatFormat | IntFormat | str) -> list[tuple[int, Value]]:
    """Every (code, exact value) of a format of at most 16 bits, in code order."""
    fmt = get_format(fmt)
    if fmt.nbits > 16:
        raise BadValueError(f"{fmt.name} has {fmt.nbits} bits; value tables are for formats of 16 bits or fewer")
    return [(c, decode(c, fmt)) for c in range(fmt.ncodes)]


# ------------------------------------------------------------------ arithmetic
def _nan_result(*vals: Value) -> Value:
    for v in vals:
        if v.is_nan:
            return Value.nan(v.sign)
    return Value.nan(0)


def exact_add(a: Value, b: Value, rounding: str = "rne") -> Value:
    """Exact a + b with IEEE 754 signed-zero and special rules (``rounding`` decides the sign of an exact 0)."""
    if a.is_nan or b.is_nan:
        return _nan_result(a, b)
    if a.is_inf and b.is_inf:
        return a if a.sign == b.sign else Value.nan(0)
    if a.is_inf:
        return a
    if b.is_inf:
        return b
    s = a.fraction + b.fraction
    if s == 0:
        if a.is_zero and b.is_zero and a.sign == b.sign:
            return Value.zero(a.sign)
        return Value.zero(1 if rounding == "rdn" else 0)
    return Value.of(s)


def exact_mul(a: Value, b: Value) -> Value:
    if a.is_nan or b.is_nan:
        return _nan_result(a, b)
    sign = a.sign ^ b.sign
    if a.is_inf or b.is_inf:
        if a.is_zero or b.is_zero:
            return Value.nan(0)
        return Value.inf(sign)
    return Value("finite", sign, a.mag * b.mag)


def exact_div(a: Value, b: Value) -> Value:
    if a.is_nan or b.is_nan:
        return _nan_result(a, b)
    sign = a.sign ^ b.sign
    if a.is_inf:
        return Value.nan(0) if b.is_inf else Value.inf(sign)
    if b.is_inf:
        return Value.zero(sign)
    if b.is_zero:
        return Value.nan(0) if a.is_zero else Value.inf(sign)
    return Value("finite", sign, a.mag / b.mag)


def _decode_all(fmt: FloatFormat, *codes: int) -> list[Value]:
    return [decode(c, fmt) for c in codes]


def _flag(r: Rounded, *names: str) -> Rounded:
    return Rounded(r.code, r.flags | frozenset(names))


def _finish(v: Value, fmt: FloatFormat, kw: dict, codes: tuple[int, ...], operands: list[Value],
            invalid: bool = False, divide_by_zero: bool = False) -> Rounded:
    """Round the exact result once; add ``invalid`` for an invalid operation (a NaN made from operands that are
    not NaN, or ``invalid`` forced) or a signalling NaN operand, and ``divide_by_zero``."""
    r = round_value(v, fmt, **kw)
    extra = []
    # operands[i] is the decoded codes[i]: only a NaN operand can be a signalling one
    if invalid or (v.is_nan and not any(o.is_nan for o in operands)) or any(
            o.is_nan and is_signaling_nan(c, fmt) for c, o in zip(codes, operands, strict=True)):
        extra.append("invalid")
    if divide_by_zero:
        extra.append("divide_by_zero")
    return _flag(r, *extra) if extra else r


def add(a: int, b: int, fmt: FloatFormat | str, rounding: str = "rne", **kw) -> Rounded:
    """Correctly rounded a + b of two codes of ``fmt``, with its flags (``invalid`` for inf - inf)."""
    fmt = get_format(fmt)
    va, vb = _decode_all(fmt, a, b)
    return _finish(exact_add(va, vb, rounding), fmt, dict(rounding=rounding, **kw), (a, b), [va, vb])


def sub(a: int, b: int, fmt: FloatFormat | str, rounding: str = "rne", **kw) -> Rounded:
    """Correctly rounded a - b, with its flags (``invalid`` for inf - inf)."""
    fmt = get_format(fmt)
    va, vb = _decode_all(fmt, a, b)
    return _finish(exact_add(va, -vb, rounding), fmt, dict(rounding=rounding, **kw), (a, b), [va, vb])


def mul(a: int, b: int, fmt: FloatFormat | str, rounding: str = "rne", **kw) -> Rounded:
    """Correctly rounded a * b, with its flags (``invalid`` for 0 * inf)."""
    fmt = get_format(fmt)
    va, vb = _decode_all(fmt, a, b)
    return _finish(exact_mul(va, vb), fmt, dict(rounding=rounding, **kw), (a, b), [va, vb])


def div(a: int, b: int, fmt: FloatFormat | str, rounding: str = "rne", **kw) -> Rounded:
    """Correctly rounded a / b, with its flags (``invalid`` for 0/0 and inf/inf, ``divide_by_zero`` for
    finite non-zero / 0)."""
    fmt = get_format(fmt)
    va, vb = _decode_all(fmt, a, b)
    dbz = va.is_finite and not va.is_zero and vb.is_zero
    return _finish(exact_div(va, vb), fmt, dict(rounding=rounding, **kw), (a, b), [va, vb], divide_by_zero=dbz)


def fma(a: int, b: int, c: int, fmt: FloatFormat | str, rounding: str = "rne", **kw) -> Rounded:
    """Correctly rounded a * b + c with a single rounding (IEEE 754 fusedMultiplyAdd), with its flags
    (``invalid`` for 0 * inf, even with a quiet NaN c, and for an infinite product against an opposite inf)."""
    fmt = get_format(fmt)
    va, vb, vc = _decode_all(fmt, a, b, c)
    p = exact_mul(va, vb)
    if (va.is_inf or vb.is_inf) and (va.is_zero or vb.is_zero):
        return _finish(Value.nan(0), fmt, dict(rounding=rounding, **kw), (a, b, c), [va, vb, vc], invalid=True)
    return _finish(exact_add(p, vc, rounding), fmt, dict(rounding=rounding, **kw), (a, b, c), [va, vb, vc])


def exact_sqrt(a: Value, fmt: FloatFormat, rand_bits: int | None = None) -> Value:
    """sqrt(a), exactly when it is rational, else a stand-in that rounds identically in every mode.

    With s = mbits - emin + k + 21 (k = stochastic random bits; mbits - emin + 4 without) the
    truncation t = floor(sqrt(a) * 2^s) / 2^s is computed by an integer square
    root; an irrational or inexact root is replaced by t + 2^-(s+1), which lies in
    the same 2^-s cell.  Every rounding decision (floor, tie, sticky, the top k
    fraction bits, up to k + 17 of them for the stochastic variants of
    :mod:`refarith.exact.stochastic`) depends only on that cell because 2^-s
    divides ulp * 2^-(k+17) for every ulp of the format, so the single rounding
    is exact.
    """
    if a.is_nan:
        return a
    if a.is_zero:
        return a
    if a.sign:
        return Value.nan(0)
    if a.is_inf:
        return a
    s = fmt.mbits - fmt.emin + (rand_bits + 17 if rand_bits else 0) + 4
    s = max(s, 4)
    num = a.mag.numerator << (2 * s)
    t = isqrt(num // a.mag.denominator)
    exact = t * t * a.mag.denominator == num
    root = Fraction(t, 1 << s)
    if not exact:
        root += Fraction(1, 1 << (s + 1))
    return Value("finite", 0, root)


def sqrt(a: int, fmt: FloatFormat | str, rounding: str = "rne", **kw) -> Rounded:
    """Correctly rounded square root, with its flags (sqrt(-0) = -0; sqrt(x < 0) and sqrt(-inf) invalid)."""
    fmt = get_format(fmt)
    (va,) = _decode_all(fmt, a)
    return _finish(exact_sqrt(va, fmt, kw.get("rand_bits")), fmt, dict(rounding=rounding, **kw), (a,), [va])


__all__ = ["add", "cast", "decode", "div", "encode", "exact_add", "exact_div", "exact_mul", "exact_sqrt",
           "floor_log2", "fma", "is_signaling_nan", "mul", "pow2", "sqrt", "sub", "value_table"]
