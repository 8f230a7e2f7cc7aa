"""How refarith prints numbers to people: a code in hex, then its value as a hex float and a short decimal.

``show_code(0x7e, ocp_e4m3)`` is ``0x7e +0x1.cp+8 (448)``; a power of two reads ``+0x1p-9 (2^-9, 0.00195312)``;
a decimal that is not exact in six significant digits is marked ``~``.  The hex float is always exact (every
value of a binary format is a dyadic rational); values that are not dyadic (integer-only ops' rationals) print as
a decimal alone.  Machine-readable outputs keep the exact fraction (``str(Value)``); these strings are for eyes.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

from refarith.errors import BadValueError
from refarith.exact.value import Value

DIGITS = 6
"""Significant digits of the short decimal."""


def _is_dyadic(x: Fraction) -> bool:
    d = x.denominator
    return d & (d - 1) == 0


def _floor_log2(x: Fraction) -> int:
    e = x.numerator.bit_length() - x.denominator.bit_length()
    if (Fraction(2) ** e) > x:
        e -= 1
    return e


def hex_float(x: Fraction) -> str:
    """A dyadic rational as an exact C99 hex float with an explicit sign, e.g. ``+0x1.cp+8``; ``+0x0p+0`` for 0."""
    if not _is_dyadic(x):
        raise BadValueError(f"{x} is not a dyadic rational; it has no finite hex float")
    sign = "-" if x < 0 else "+"
    m = abs(x)
    if m == 0:
        return f"{sign}0x0p+0"
    e = _floor_log2(m)
    f = m / Fraction(2) ** e - 1  # in [0, 1)
    digits = ""
    while f:
        f *= 16
        d = int(f)
        digits += "0123456789abcdef"[d]
        f -= d
    return f"{sign}0x1{'.' + digits if digits else ''}p{e:+d}"


def short_decimal(x: Fraction, digits: int = DIGITS) -> str:
    """``x`` with at most ``digits`` significant digits (%g-style), exact when that is enough, else prefixed ``~``
    (rounded half to even from the exact value; no float involved)."""
    if x == 0:
        return "0"
    with localcontext() as ctx:
        ctx.prec = digits
        d = Decimal(x.numerator) / Decimal(x.denominator)
        exact = Fraction(d) == x
        t = f"{d:.{digits}g}"
    if "e" in t:
        mant, _, ex = t.partition("e")
        if "." in mant:
            mant = mant.rstrip("0").rstrip(".")
        t = f"{mant}e{ex}"
    elif "." in t:
        t = t.rstrip("0").rstrip(".")
    return t if exact else "~" + t


def power_of_two(x: Fraction) -> int | None:
    """k when |x| is 2^k, else None."""
    m = abs(x)
    if m == 0 or m.numerator & (m.numerator - 1) or m.denominator & (m.denominator - 1):
        return None
    return m.numerator.bit_length() - m.denominator.bit_length()


def show_value(v: Value | Fraction | int | str) -> str:
    """A value for people: ``+0x1.cp+8 (448)``, ``-0x1p-9 (-2^-9, -0.00195312)``, ``+inf``, ``nan``, ``-0``.

    Accepts a Value, a Fraction/int, or the exact text of a Value (``str(Value)``: ``p/q``, ``-0``, ``inf``,
    ``nan``)."""
    if isinstance(v, str):
        v = _parse_exact(v)
    if not isinstance(v, Value):
        v = Value.of(Fraction(v))
    if v.is_nan:
        return "-nan" if v.sign else "nan"
    if v.is_inf:
        return "-inf" if v.sign else "+inf"
    if v.is_zero:
        return "-0" if v.sign else "+0"
    x = v.fraction
    if not _is_dyadic(x):
        return short_decimal(x)
    sign = "-" if x < 0 else ""
    k = power_of_two(x)
    dec = short_decimal(x)
    if k is not None and not (-4 <= k <= 16):
        return f"{hex_float(x)} ({sign}2^{k}, {dec})"
    if k is not None and dec.startswith(("~", "-~")):
        return f"{hex_float(x)} ({sign}2^{k})"
    return f"{hex_float(x)} ({dec})"


def _parse_exact(s: str) -> Value:
    t = s.strip()
    if t in ("nan", "-nan", "+nan"):
        return Value.nan(1 if t.startswith("-") else 0)
    if t in ("inf", "+inf", "-inf"):
        return Value.inf(1 if t.startswith("-") else 0)
    if t == "-0":
        return Value.zero(1)
    try:
        return Value.of(Fraction(t))
    except (ValueError, ZeroDivisionError):
        raise BadValueError(f"not an exact value: {s!r} (expected p/q, an integer, -0, inf or nan)") from None


def show_code(code: int, fmt, width: int | None = None) -> str:
    """A code of ``fmt`` and its value: ``0x7e +0x1.cp+8 (448)``; ``width``: hex digits (default: the format's)."""
    from refarith.exact import ops

    w = width if width is not None else max(1, -(-fmt.nbits // 4))
    return f"{code:#0{w + 2}x}  {show_value(ops.decode(code, fmt))}"


def show_pair(code_hex: str, value: str) -> str:
    """An already hex-formatted code and the exact text of its value, as :func:`show_code` prints them."""
    return f"{code_hex}  {show_value(value)}"


__all__ = ["DIGITS", "hex_float", "power_of_two", "short_decimal", "show_code", "show_pair", "show_value"]
