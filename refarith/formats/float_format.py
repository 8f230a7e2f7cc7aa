"""The parametric floating-point format record.

A format is one immutable record; every derived property (max finite, min
normal, special codes, ...) is computed once from its parameters.

Encoding of a code with sign s, exponent field E and mantissa field M (m bits):

* E >= 1, or any E when ``subnormals`` is False: (-1)^s * 2^(E - bias) * (1 + M/2^m)
* E == 0 with ``subnormals``: (-1)^s * 2^(1 - bias) * M/2^m (so M == 0 is a zero)

A format without subnormals therefore has no zero (this is E8M0's rule: code 0
is 2^-127).  ``specials`` then overrides some codes:

* ``ieee``: E all ones is inf (M == 0) or NaN (M != 0); signed zeros.
* ``fn`` (OCP "finite + NaN"): no inf; E and M all ones is NaN (each sign).
* ``fnuz``: no inf, no -0; the code with only the sign bit set is the one NaN.
* ``p3109e`` / ``p3109f`` (IEEE P3109 extended / finite domain): no -0; signed
  formats have NaN at the sign-bit-only code and, when extended, +inf at the
  all-ones-but-sign code and -inf at all ones.  Unsigned formats have NaN at
  all ones and, when extended, +inf just below it.
* ``none``: no inf, no NaN (OCP FP6/FP4); signed zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property

from refarith.errors import BitPatternError, UnknownModeError

SPECIALS = ("ieee", "fn", "fnuz", "p3109e", "p3109f", "none")


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format: sign (optional), ``ebits`` exponent bits, ``mbits`` mantissa bits."""

    name: str
    ebits: int
    mbits: int
    bias: int
    signed: bool = True
    subnormals: bool = True
    specials: str = "ieee"
    doc: str = field(default="", compare=False)

    kind = "float"

    def __post_init__(self) -> None:
        if self.specials not in SPECIALS:
            raise UnknownModeError(f"unknown specials policy {self.specials!r}; expected one of {', '.join(SPECIALS)}")
        if self.ebits < 1 or self.mbits < 0:
            raise UnknownModeError(f"format {self.name}: need ebits >= 1 and mbits >= 0")
        if self.nbits < 2 or self.nbits > 80:
            raise UnknownModeError(f"format {self.name}: width {self.nbits} bits outside 2..80")
        if self.specials == "ieee" and self.ebits < 2:
            raise UnknownModeError(f"format {self.name}: IEEE specials need at least 2 exponent bits")
        if self.specials == "fnuz" and not self.signed:
            raise UnknownModeError(f"format {self.name}: fnuz needs a sign bit")

    # ----------------------------------------------------------- layout
    @property
    def nbits(self) -> int:
        return self.ebits + self.mbits + (1 if self.signed else 0)

    @property
    def ncodes(self) -> int:
        return 1 << self.nbits

    @property
    def sign_mask(self) -> int:
        return (1 << (self.ebits + self.mbits)) if self.signed else 0

    @property
    def emask(self) -> int:
        return (1 << self.ebits) - 1

    @property
    def mmask(self) -> int:
        return (1 << self.mbits) - 1

    @property
    def precision(self) -> int:
        """Significand bits including the implicit bit."""
        return self.mbits + 1

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal binade (subnormal spacing is 2^(emin - mbits))."""
        return 1 - self.bias if self.subnormals else -self.bias

    def fields(self, code: int) -> tuple[int, int, int]:
        """Split a code into (sign, exponent field, mantissa field)."""
        self.check_code(code)
        s = (code >> (self.ebits + self.mbits)) & 1 if self.signed else 0
        return s, (code >> self.mbits) & self.emask, code & self.mmask

    def check_code(self, code: int) -> None:
        if not isinstance(code, int) or isinstance(code, bool):
            raise BitPatternError(f"{self.name}: bit pattern must be an int, got {type(code).__name__}")
        if code < 0 or code >= self.ncodes:
            raise BitPatternError(f"{self.name}: bit pattern {code:#x} does not fit in {self.nbits} bits")

    # ----------------------------------------------------------- specials
    @cached_property
    def nan_codes(self) -> frozenset[int]:
        sp, n = self.specials, self.nbits
        top = self.sign_mask
        if sp == "ieee":
            out = set()
            for m in range(1, 1 << self.mbits) if self.mbits <= 16 else ():
                out.add((self.emask << self.mbits) | m)
                if self.signed:
                    out.add(top | (self.emask << self.mbits) | m)
            return frozenset(out)
        if sp == "fn":
            c = (self.emask << self.mbits) | self.mmask
            return frozenset({c, top | c} if self.signed else {c})
        if sp == "fnuz":
            return frozenset({top})
        if sp in ("p3109e", "p3109f"):
            return frozenset({top} if self.signed else {(1 << n) - 1})
        return frozenset()

    def is_nan_code(self, code: int) -> bool:
        if self.specials == "ieee":
            _, e, m = self.fields(code)
            return e == self.emask and m != 0
        return code in self.nan_codes

    @cached_property
    def inf_codes(self) -> tuple[int | None, int | None]:
        """(+inf code, -inf code); None where the format has none."""
        sp, n = self.specials, self.nbits
        if sp == "ieee":
            pos = self.emask << self.mbits
            return pos, (self.sign_mask | pos) if self.signed else None
        if sp == "p3109e":
            if self.signed:
                return (1 << (n - 1)) - 1, (1 << n) - 1
            return (1 << n) - 2, None
        return None, None

    @property
    def has_nan(self) -> bool:
        return self.specials != "none"

    @property
    def has_inf(self) -> bool:
        return self.inf_codes[0] is not None

    @property
    def has_negative_zero(self) -> bool:
        return self.signed and self.subnormals and self.specials in ("ieee", "fn", "none")

    @property
    def has_zero(self) -> bool:
        return self.subnormals

    @cached_property
    def nan_code(self) -> int | None:
        """The canonical NaN produced by operations: quiet NaN (IEEE: top mantissa bit) with sign 0."""
        if not self.has_nan:
            return None
        if self.specials == "ieee":
            return (self.emask << self.mbits) | (1 << (self.mbits - 1) if self.mbits else 0)
        if self.specials == "fn":
            return (self.emask << self.mbits) | self.mmask
        return min(self.nan_codes)

    def nan_code_with_sign(self, sign: int) -> int | None:
        """Canonical NaN carrying ``sign`` where the format has signed NaNs."""
        c = self.nan_code
        if c is None:
            return None
        if sign and self.signed and self.specials in ("ieee", "fn"):
            return c | self.sign_mask
        return c

    # ----------------------------------------------------------- values
    def finite_value(self, code: int) -> Fraction:
        """Exact value of a code as if it were finite (ignores specials).  Formats of 16 bits or fewer remember
        the values they computed (Fractions are immutable; a bad code still raises every time)."""
        if self.nbits > 16 or type(code) is not int:
            return self._finite_value(code)
        memo = self._finite_memo
        v = memo.get(code)
        if v is None:
            v = memo[code] = self._finite_value(code)
        return v

    @cached_property
    def _finite_memo(self) -> dict[int, Fraction]:
        return {}

    def _finite_value(self, code: int) -> Fraction:
        """(-1)^s * significand * 2^(exponent - mbits), built as one Fraction of coprime integers: the power of
        two's share of the significand's trailing zeros is shifted out first."""
        s, e, m = self.fields(code)
        if e == 0 and self.subnormals:
            sig, exp = m, 1 - self.bias - self.mbits
        else:
            sig, exp = (1 << self.mbits) + m, e - self.bias - self.mbits
        if s:
            sig = -sig
        if exp >= 0:
            return Fraction(sig << exp)
        t = min((sig & -sig).bit_length() - 1, -exp) if sig else 0
        return Fraction(sig >> t, 1 << (-exp - t))

    def is_finite_code(self, code: int) -> bool:
        if self.is_nan_code(code):
            return False
        return code not in self.inf_codes

    @cached_property
    def max_code(self) -> int:
        """Code of the largest finite positive value."""
        top = (1 << (self.ebits + self.mbits)) - 1  # all exponent and mantissa bits set, sign 0
        c = top
        if self.specials == "ieee":  # skip the 2^mbits inf/NaN codes of the top binade in one step
            c = ((self.emask - 1) << self.mbits) | self.mmask
        while not self.is_finite_code(c):
            c -= 1
        return c

    @cached_property
    def max(self) -> Fraction:
        return self.finite_value(self.max_code)

    @cached_property
    def min_normal(self) -> Fraction:
        return _pow2(self.emin)

    @cached_property
    def min_subnormal(self) -> Fraction:
        """Smallest positive value (equals min_normal for formats without subnormals)."""
        if not self.subnormals or self.mbits == 0:
            return self.min_normal
        return _pow2(self.emin - self.mbits)

    @cached_property
    def emax(self) -> int:
        """Exponent of the largest finite binade."""
        v = self.max
        return v.numerator.bit_length() - v.denominator.bit_length() - (1 if _below_pow2(v) else 0)

    def layout(self) -> str:
        s = "1" if self.signed else "0"
        return f"{s}-{self.ebits}-{self.mbits}"

    def describe_specials(self) -> str:
        parts = []
        parts.append("inf" if self.has_inf else "no inf")
        parts.append(f"{len(self.nan_codes) if self.specials != 'ieee' else 'many'} NaN" if self.has_nan else "no NaN")
        if self.signed and not self.has_negative_zero:
            parts.append("no -0")
        if not self.has_zero:
            parts.append("no zero")
        if not self.signed:
            parts.append("unsigned")
        return ", ".join(parts)

    def __str__(self) -> str:
        return self.name


def _pow2(e: int) -> Fraction:
    return Fraction(1 << e) if e >= 0 else Fraction(1, 1 << -e)


def _below_pow2(v: Fraction) -> bool:
    """True when v < 2^(bitlen(num) - bitlen(den)), i.e. the naive exponent estimate is one too high."""
    d = v.numerator.bit_length() - v.denominator.bit_length()
    return v < _pow2(d)
