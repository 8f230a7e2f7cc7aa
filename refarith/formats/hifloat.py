"""HiFloat8 (HiF8), the tapered 8-bit format of Luo et al., "Ascend HiFloat8 Format for Deep Learning"
(arXiv 2409.16626).

A code is sign S (bit 7), then a prefix-coded dot field, then D exponent bits, then the mantissa:

=========  ===  ========  ========  ================================================
dot field  D    exponent  mantissa  exponents E
=========  ===  ========  ========  ================================================
``11``     4    4 bits    1 bit     +-8 .. +-15
``10``     3    3 bits    2 bits    +-4 .. +-7
``01``     2    2 bits    3 bits    +-2, +-3
``001``    1    1 bit     3 bits    +-1
``0001``   0    none      3 bits    0
``0000``   -    none      3 bits    denormal: 2^(M - 23), M = 1..7
=========  ===  ========  ========  ================================================

The exponent is sign-magnitude with an implicit leading magnitude bit: its first stored bit is the exponent's sign,
the other D - 1 bits follow an implicit 1 (so D bits give |E| in [2^(D-1), 2^D - 1]).  A normal value is
(-1)^S * 2^E * (1 + M / 2^m).  That gives 7 exponents with a 3-bit mantissa, 8 with 2 bits, 16 with 1 bit, and the
denormal mode 7 more binades, 2^-22 .. 2^-16: 38 binades in all, as the paper's abstract states.

Specials: 0x00 is the only zero (no -0), 0x80 the only NaN, and the code of the largest D = 4 value, S.11.0111.1
(it would be 1.5 * 2^15), is +-inf (0x6F, 0xEF), so the largest finite value is 2^15 = 32768 (0x6E).  The special
codes are also those of en_dtypes' ``hifloat8``.

Every code's mantissa is its least significant bits, and neighbouring values of one sign always differ in the code's
last bit, so "ties to even" is ties to the code whose last bit is 0, in every binade and across binade edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property

from refarith.errors import BitPatternError

#: (dot field bits, its width, D) in prefix order; D = None is the denormal mode
_DOTS = ((0b11, 2, 4), (0b10, 2, 3), (0b01, 2, 2), (0b001, 3, 1), (0b0001, 4, 0), (0b0000, 4, None))


def _fields(code: int) -> tuple[int, int | None, int, int, int]:
    """(sign, D or None for denormal, exponent E, mantissa field M, mantissa width m) of a HiF8 code."""
    s, rest = code >> 7, code & 0x7F
    for bits, width, d in _DOTS:
        if rest >> (7 - width) == bits:
            tail = rest & ((1 << (7 - width)) - 1)
            if d is None:
                return s, None, 0, tail, 7 - width
            m = 7 - width - d
            ef, mf = tail >> m, tail & ((1 << m) - 1)
            if d == 0:
                return s, 0, 0, mf, m
            mag = (1 << (d - 1)) | (ef & ((1 << (d - 1)) - 1))
            return s, d, -mag if ef >> (d - 1) else mag, mf, m
    raise AssertionError("the dot prefixes cover every code")  # pragma: no cover


@dataclass(frozen=True)
class TaperedFormat:
    """An 8-bit tapered format given by its decoding rule (HiFloat8).  Codes are the raw bytes."""

    name: str
    doc: str = field(default="", compare=False)

    kind = "tapered"
    nbits = 8
    ncodes = 256
    signed = True
    sign_mask = 0x80
    nan_code = 0x80
    inf_codes = (0x6F, 0xEF)
    nan_codes = frozenset({0x80})
    has_nan = True
    has_inf = True
    has_zero = True
    has_negative_zero = False
    subnormals = True
    specials = "hif8"
    bias = None

    def check_code(self, code: int) -> None:
        if not isinstance(code, int) or isinstance(code, bool):
            raise BitPatternError(f"{self.name}: bit pattern must be an int, got {type(code).__name__}")
        if not 0 <= code < 256:
            raise BitPatternError(f"{self.name}: bit pattern {code:#x} does not fit in 8 bits")

    def fields(self, code: int) -> tuple[int, int | None, int, int, int]:
        """(sign, D (None in the denormal mode), exponent, mantissa field, mantissa width) of a code."""
        self.check_code(code)
        return _fields(code)

    def is_nan_code(self, code: int) -> bool:
        return code == 0x80

    def is_finite_code(self, code: int) -> bool:
        return code not in (0x80, 0x6F, 0xEF)

    def finite_value(self, code: int) -> Fraction:
        """Exact value of a finite code (the rule above); BitPatternError for NaN and inf."""
        if not self.is_finite_code(code):
            raise BitPatternError(f"{self.name}: code {code:#x} is not finite")
        s, d, e, mf, m = self.fields(code)
        if d is None:
            mag = Fraction(0) if mf == 0 else Fraction(2) ** (mf - 23)
        else:
            mag = Fraction((1 << m) + mf, 1 << m) * Fraction(2) ** e
        return -mag if s else mag

    @cached_property
    def positive_grid(self) -> tuple[tuple[Fraction, int], ...]:
        """Every finite magnitude >= 0 with its code (sign 0), ascending."""
        return tuple(sorted((self.finite_value(c), c) for c in range(0x80) if self.is_finite_code(c)))

    max_code = 0x6E

    @cached_property
    def max(self) -> Fraction:
        return self.finite_value(self.max_code)

    @cached_property
    def min_normal(self) -> Fraction:
        return Fraction(1, 1 << 15)

    @cached_property
    def min_subnormal(self) -> Fraction:
        return Fraction(1, 1 << 22)

    #: the value code 0x6F would have (1.5 * 2^15): the first step beyond max, where rounding overflows
    overflow_step = Fraction(3 << 14)

    def layout(self) -> str:
        return "1-dot-E-M"

    def describe_specials(self) -> str:
        return "inf, 1 NaN, no -0, tapered"

    def __str__(self) -> str:
        return self.name


hifloat8 = TaperedFormat("hifloat8", doc="HiFloat8 (Ascend HiF8, arXiv 2409.16626): tapered, dot field, max 32768, "
                                         "min 2^-22, one zero, NaN 0x80, inf 0x6F/0xEF")
