"""Exact values: a sign, a kind (finite / inf / nan) and a non-negative Fraction magnitude."""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

from refarith.errors import BadValueError


@dataclass(frozen=True)
class Value:
    """An exact extended real: ±finite Fraction (including ±0), ±inf, or NaN (sign kept for payload-free NaNs)."""

    kind: str  # "finite" | "inf" | "nan"
    sign: int  # 0 or 1
    mag: Fraction = Fraction(0)

    @staticmethod
    def of(x: Fraction | int) -> Value:
        """A finite value from a Fraction/int (zero is +0)."""
        x = Fraction(x)
        return Value("finite", 1 if x < 0 else 0, abs(x))

    @staticmethod
    def zero(sign: int = 0) -> Value:
        return Value("finite", sign, Fraction(0))

    @staticmethod
    def inf(sign: int = 0) -> Value:
        return Value("inf", sign)

    @staticmethod
    def nan(sign: int = 0) -> Value:
        return Value("nan", sign)

    @property
    def is_nan(self) -> bool:
        return self.kind == "nan"

    @property
    def is_inf(self) -> bool:
        return self.kind == "inf"

    @property
    def is_finite(self) -> bool:
        return self.kind == "finite"

    @property
    def is_zero(self) -> bool:
        return self.kind == "finite" and self.mag == 0

    @property
    def fraction(self) -> Fraction:
        """The signed exact value; raises for inf and NaN."""
        if self.kind != "finite":
            raise BadValueError(f"{self} has no finite value")
        return -self.mag if self.sign else self.mag

    def __neg__(self) -> Value:
        return Value(self.kind, 1 - self.sign, self.mag)

    def __str__(self) -> str:
        if self.kind == "nan":
            return "nan"
        if self.kind == "inf":
            return "-inf" if self.sign else "inf"
        if self.mag == 0:
            return "-0" if self.sign else "0"
        return str(self.fraction)

    def to_float(self) -> float:
        """Nearest binary64, ties to even, ±inf beyond its range (exact for every value of a format of 16 bits or
        fewer); rounded by the exact model and built from its bit pattern."""
        if self.kind == "nan":
            return math.nan
        if self.kind == "inf":
            return -math.inf if self.sign else math.inf
        from refarith.exact.rounding import round_value  # rounding imports this module

        code = round_value(self, "binary64", "rne", "inf").code  # ties to even, beyond binary64 max -> inf
        return struct.unpack("<d", struct.pack("<Q", code))[0]


# Inputs whose exact value would need more than about a million bits are refused (BadValueError) rather than
# computed for minutes: every format's range is far inside these bounds, so nothing representable is lost.
MAX_BINARY_EXPONENT = 1 << 20  # |e| in a hex float 0x...p<e>
MAX_DECIMAL_EXPONENT = 300_000  # |adjusted exponent| of a decimal, about 10^6 bits


def _check_decimal(d: Decimal, text: object) -> None:
    if d.is_finite() and d != 0 and abs(d.adjusted()) > MAX_DECIMAL_EXPONENT:
        raise BadValueError(f"{text!r}: decimal exponent beyond +-{MAX_DECIMAL_EXPONENT} is not supported")


_HEXFLOAT = re.compile(r"^([+-]?)0x([0-9a-f]*)(?:\.([0-9a-f]*))?p([+-]?\d+)$", re.I)
_DECIMAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$", re.I)
_RATIO = re.compile(r"^[+-]?\d+/\d+$")


def parse_value(x: object) -> Value:
    """Turn a Python number or a string into an exact Value.

    Accepted: int, Fraction, Decimal, float (taken as the exact binary64 value,
    never rounded through binary32), numpy floating scalars (their exact value),
    strings holding a decimal ("0.1" is exactly 1/10), a ratio "p/q", a C99 hex
    float ("0x1.8p3"), "inf", "-inf", "nan", "-0".
    """
    if isinstance(x, Value):
        return x
    if isinstance(x, bool):
        raise BadValueError("a bool is not a number")
    if isinstance(x, int):
        return Value.of(x)
    if isinstance(x, Fraction):
        return Value.of(x)
    if isinstance(x, Decimal):
        if x.is_nan():
            return Value.nan()
        if x.is_infinite():
            return Value.inf(1 if x < 0 else 0)
        _check_decimal(x, x)
        return Value("finite", 1 if x.is_signed() else 0, abs(Fraction(x)))
    if isinstance(x, float):
        return _from_float(x)
    mod = type(x).__module__
    if mod == "numpy" or mod.startswith("numpy"):
        import numpy as np

        if isinstance(x, np.integer):
            return Value.of(int(x))
        if isinstance(x, np.floating):
            if x.dtype.itemsize > 8:
                raise BadValueError("numpy long double input is not supported; pass a Fraction")
            bits = {"float16": ("binary16", np.uint16), "float32": ("binary32", np.uint32),
                    "float64": ("binary64", np.uint64)}.get(x.dtype.name)
            if bits is None:
                raise BadValueError(f"numpy {x.dtype.name} input is not supported; pass a Fraction")
            from refarith.exact.ops import decode  # ops imports this module

            return decode(int(x.view(bits[1])), bits[0])  # the value of the IEEE bit pattern
    if isinstance(x, str):
        return _parse_string(x)
    raise BadValueError(f"cannot interpret {x!r} ({type(x).__name__}) as a number")


def _from_float(x: float) -> Value:
    if math.isnan(x):
        sign = struct.unpack("<Q", struct.pack("<d", x))[0] >> 63
        return Value.nan(sign)
    if math.isinf(x):
        return Value.inf(1 if x < 0 else 0)
    sign = 1 if math.copysign(1.0, x) < 0 else 0
    return Value("finite", sign, abs(Fraction(x)))


def _parse_string(s: str) -> Value:
    t = s.strip().replace("_", "")
    low = t.lower()
    if low in ("nan", "+nan", "-nan"):
        return Value.nan(1 if low.startswith("-") else 0)
    if low in ("inf", "+inf", "infinity", "+infinity"):
        return Value.inf(0)
    if low in ("-inf", "-infinity"):
        return Value.inf(1)
    m = _HEXFLOAT.match(t)
    if m:
        sign, ip, fp, ex = m.groups()
        fp = fp or ""
        if not ip and not fp:
            raise BadValueError(f"malformed hex float {s!r}")
        if len(ex.lstrip("+-")) > 9 or abs(int(ex)) > MAX_BINARY_EXPONENT:
            raise BadValueError(f"hex float {s!r}: binary exponent beyond +-{MAX_BINARY_EXPONENT} is not supported")
        try:
            mant = int((ip or "0") + fp, 16)
        except ValueError as err:  # more digits than Python converts
            raise BadValueError(f"hex float {s!r}: {err}") from None
        e = int(ex) - 4 * len(fp)
        mag = Fraction(mant) * (Fraction(2) ** e)
        return Value("finite", 1 if sign == "-" else 0, mag)
    if _DECIMAL.match(t):
        d = Decimal(t)
        _check_decimal(d, s)
        return Value("finite", 1 if t.startswith("-") else 0, abs(Fraction(d)))
    if _RATIO.match(t):
        try:
            num, den = (int(part) for part in t.split("/"))
        except ValueError as err:  # more digits than Python converts
            raise BadValueError(f"ratio {s!r}: {err}") from None
        if den == 0:
            raise BadValueError(f"zero denominator in {s!r}")
        f = Fraction(num, den)
        return Value("finite", 1 if t.startswith("-") else 0, abs(f))
    raise BadValueError(f"cannot parse {s!r} as a number "
                        "(expected a decimal, p/q, a hex float like 0x1.8p3, inf or nan)")


def approx(x: Fraction, digits: int = 8) -> str:
    """``x`` as a decimal with ``digits`` significant digits, rounded exactly (for messages; no float involved)."""
    with localcontext() as ctx:
        ctx.prec = digits
        return str(Decimal(x.numerator) / Decimal(x.denominator))
