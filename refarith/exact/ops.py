"""Decode, encode, cast and correctly rounded arithmetic in any float format, exactly.

Every operation computes the exact real result (Fractions; square root by an
integer square root with a sticky bit) and rounds it once with
:func:`refarith.exact.rounding.round_value`.  IEEE 754 special cases:
x - x = +0 (-0 under rdn), (±0) + (±0) keeps a common sign, 0 * inf, inf - inf,
0/0, inf/inf and sqrt(negative) are invalid (canonical NaN, positive), x/0 =
±inf; a NaN operand gives the canonical NaN with the first NaN operand's sign.
For formats without NaN an invalid result follows ``nan_policy``.
"""

from __future__ import annotations

from fractions import Fraction
from math import isqrt

from refarith.errors import BadValueError
from refarith.exact.rounding import Rounded, floor_log2, pow2, round_value
from refarith.exact.value import Value, parse_value
from refarith.formats import FloatFormat, IntFormat, get_format


def decode(code: int, fmt: FloatFormat | IntFormat | str) -> Value:
    """The exact value of a bit pattern."""
    fmt = get_format(fmt)
    if isinstance(fmt, IntFormat):
        return Value.of(fmt.value(code))
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
           nan_policy: str = "error", negative: str = "error", rand: int | None = None,
           rand_bits: int | None = None) -> Rounded:
    """Round a number (int, float, Fraction, Decimal, string, Value) into ``fmt`` once."""
    return round_value(parse_value(x), fmt, rounding, overflow, nan_policy, negative, rand, rand_bits)


def cast(code: int, src: FloatFormat | IntFormat | str, dst: FloatFormat | IntFormat | str, rounding: str = "rne",
         overflow: str | None = None, nan_policy: str = "error", negative: str = "error", rand: int | None = None,
         rand_bits: int | None = None) -> Rounded:
    """Convert a bit pattern of ``src`` into ``dst`` with a single rounding."""
    return round_value(decode(code, src), dst, rounding, overflow, nan_policy, negative, rand, rand_bits)


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


def _finish(v: Value, fmt: FloatFormat, kw: dict) -> Rounded:
    return round_value(v, fmt, **kw)


def add(a: int, b: int, fmt: FloatFormat | str, rounding: str = "rne", **kw) -> Rounded:
    """Correctly rounded a + b of two codes of ``fmt``."""
    fmt = get_format(fmt)
    va, vb = _decode_all(fmt, a, b)
    return _finish(exact_add(va, vb, rounding), fmt, dict(rounding=rounding, **kw))


def sub(a: int, b: int, fmt: FloatFormat | str, rounding: str = "rne", **kw) -> Rounded:
    """Correctly rounded a - b."""
    fmt = get_format(fmt)
    va, vb = _decode_all(fmt, a, b)
    return _finish(exact_add(va, -vb, rounding), fmt, dict(rounding=rounding, **kw))


def mul(a: int, b: int, fmt: FloatFormat | str, rounding: str = "rne", **kw) -> Rounded:
    """Correctly rounded a * b."""
    fmt = get_format(fmt)
    va, vb = _decode_all(fmt, a, b)
    return _finish(exact_mul(va, vb), fmt, dict(rounding=rounding, **kw))


def div(a: int, b: int, fmt: FloatFormat | str, rounding: str = "rne", **kw) -> Rounded:
    """Correctly rounded a / b."""
    fmt = get_format(fmt)
    va, vb = _decode_all(fmt, a, b)
    return _finish(exact_div(va, vb), fmt, dict(rounding=rounding, **kw))


def fma(a: int, b: int, c: int, fmt: FloatFormat | str, rounding: str = "rne", **kw) -> Rounded:
    """Correctly rounded a * b + c with a single rounding (IEEE 754 fusedMultiplyAdd)."""
    fmt = get_format(fmt)
    va, vb, vc = _decode_all(fmt, a, b, c)
    p = exact_mul(va, vb)
    if (va.is_inf or vb.is_inf) and (va.is_zero or vb.is_zero):
        return _finish(Value.nan(0), fmt, dict(rounding=rounding, **kw))
    return _finish(exact_add(p, vc, rounding), fmt, dict(rounding=rounding, **kw))


def exact_sqrt(a: Value, fmt: FloatFormat, rand_bits: int | None = None) -> Value:
    """sqrt(a), exactly when it is rational, else a stand-in that rounds identically in every mode.

    With s = mbits - emin + k + 4 (k = stochastic random bits, 0 otherwise) the
    truncation t = floor(sqrt(a) * 2^s) / 2^s is computed by an integer square
    root; an irrational or inexact root is replaced by t + 2^-(s+1), which lies in
    the same 2^-s cell.  Every rounding decision (floor, tie, sticky, the top k
    fraction bits) depends only on that cell because 2^-s divides ulp * 2^-k for
    every ulp of the format, so the single rounding is exact.
    """
    if a.is_nan:
        return a
    if a.is_zero:
        return a
    if a.sign:
        return Value.nan(0)
    if a.is_inf:
        return a
    s = fmt.mbits - fmt.emin + (rand_bits or 0) + 4
    s = max(s, 4)
    num = a.mag.numerator << (2 * s)
    t = isqrt(num // a.mag.denominator)
    exact = t * t * a.mag.denominator == num
    root = Fraction(t, 1 << s)
    if not exact:
        root += Fraction(1, 1 << (s + 1))
    return Value("finite", 0, root)


def sqrt(a: int, fmt: FloatFormat | str, rounding: str = "rne", **kw) -> Rounded:
    """Correctly rounded square root (sqrt(-0) = -0, sqrt(x<0) invalid)."""
    fmt = get_format(fmt)
    (va,) = _decode_all(fmt, a)
    return _finish(exact_sqrt(va, fmt, kw.get("rand_bits")), fmt, dict(rounding=rounding, **kw))


__all__ = ["add", "cast", "decode", "div", "encode", "exact_add", "exact_div", "exact_mul", "exact_sqrt",
           "floor_log2", "fma", "mul", "pow2", "sqrt", "sub", "value_table"]
