"""Integer formats: two's complement or unsigned, any width, optional symmetric clipping."""

from __future__ import annotations

from dataclasses import dataclass, field

from refarith.errors import BitPatternError, UnknownModeError


@dataclass(frozen=True)
class IntFormat:
    """An n-bit integer.  Codes are the two's complement (or unsigned) bit patterns.

    ``symmetric`` restricts the *encodable* range to [-(2^(n-1)-1), 2^(n-1)-1]
    (the "symmetric clipping" quantization variant); decoding the pattern of
    -2^(n-1) still yields -2^(n-1), because the storage type holds it.
    """

    name: str
    bits: int
    signed: bool = True
    symmetric: bool = False
    doc: str = field(default="", compare=False)

    kind = "int"

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 64:
            raise UnknownModeError(f"integer format {self.name}: width {self.bits} outside 1..64")
        if self.symmetric and not self.signed:
            raise UnknownModeError(f"integer format {self.name}: symmetric clipping needs a signed format")
        if self.signed and self.bits < 2:
            raise UnknownModeError(f"integer format {self.name}: a signed integer needs 2 bits or more")

    @property
    def nbits(self) -> int:
        return self.bits

    @property
    def ncodes(self) -> int:
        return 1 << self.bits

    @property
    def min(self) -> int:
        if not self.signed:
            return 0
        return -(1 << (self.bits - 1)) + (1 if self.symmetric else 0)

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def check_code(self, code: int) -> None:
        if not isinstance(code, int) or isinstance(code, bool):
            raise BitPatternError(f"{self.name}: bit pattern must be an int, got {type(code).__name__}")
        if code < 0 or code >= self.ncodes:
            raise BitPatternError(f"{self.name}: bit pattern {code:#x} does not fit in {self.bits} bits")

    def value(self, code: int) -> int:
        """Integer value of a bit pattern."""
        self.check_code(code)
        if self.signed and code >> (self.bits - 1):
            return code - (1 << self.bits)
        return code

    def code(self, value: int) -> int:
        """Bit pattern of an in-range integer (no rounding, no clamping)."""
        lo = -(1 << (self.bits - 1)) if self.signed else 0
        if not lo <= value <= (self.max):
            raise BitPatternError(f"{self.name}: {value} out of range")
        return value & ((1 << self.bits) - 1)

    def layout(self) -> str:
        return f"{'s' if self.signed else 'u'}{self.bits}{' sym' if self.symmetric else ''}"

    def __str__(self) -> str:
        return self.name
