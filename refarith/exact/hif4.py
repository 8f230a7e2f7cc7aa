"""HiFloat4 (HiF4) block quantization, exactly.

A HiF4 unit is 64 elements with 32 bits of shared metadata (Luo et al., "HiFloat4 Format for Language Model
Inference", arXiv:2602.11287; the conversion is the authors' published reference ``To_HiFX``):

* level 1: one E6M2 scale S: an unsigned 8-bit code ``(E + 48) << 2 | M``, value 2^E * (1 + M/4) with E in
  [-48, 15]; no zero, no subnormals; the all-ones code (2^15 * 1.75) is NaN, so the largest scale is
  1.5 * 2^15 = 49152 and the smallest 2^-48.  Here: format ``ue6m2b48_fn_nosub``.
* level 2: 8 one-bit exponents d8[k], one per 8 consecutive elements;
* level 3: 16 one-bit exponents d16[j], one per 4 consecutive elements;
* elements: S1P2, sign and a 3-bit magnitude q in 0..7 meaning q/4 (format ``e1m2b1_none``: the code's low three
  bits are q; the sign bit is bit 3).

Element i of a unit is (-1)^s * S * 2^(d8[i/8] + d16[i/4]) * q/4, so the largest magnitude is 7 * S.

Conversion of 64 binary32 values x_i (magnitudes a_i); every step is exact except the four roundings named:

1. V16[j] = max of a over subgroup j (4 elements), V8[k] = max over group k (8), Vmax = max over the unit.
2. SF = bf16(Vmax * C) with C = bf16(1/7) = 73/512 (bf16: round to nearest even into bfloat16).
3. S = e6m2(clamp(SF, 2^-48, 49152)): SF rounded to 3 significant bits, ties to even (``scale_ties=even``, the
   reference's ``np.round``) or away (``scale_ties=away``, the alternative the reference names).
4. R = bf16(1/S), the reciprocal the hardware reads from a 4-entry table (significands 1, 1 + 77/128,
   1 + 43/128, 1 + 18/128 for M = 0..3).
5. d8[k] = 1 if V8[k] * R >= 4 else 0;  d16[j] = 1 if V16[j] * R * 2^-d8[j/2] >= 2 else 0.
6. q_i = min(7, round(a_i * R * 2^(2 - d8 - d16))), ties away from zero (``elem_ties=away``, the reference's
   ``floor(v + 0.5)``) or to even (``elem_ties=even``); a result of 8 or more saturates to 7.
7. The sign bit is set iff x_i < 0: -0.0 gives the +0 code, a negative value that rounds to magnitude 0 gives
   the -0 code (0x8) and, dequantized, -0.0 (the reference's S * ... * 0 in binary64).

The reference computes steps 1-6 in binary64 on binary32 (or bfloat16) inputs: every product there has at most
24 + 8 significant bits, so binary64 holds it exactly, and this model (Fractions) is that computation.  The
reference's two reciprocal roundings (binary64, then bfloat16) equal one rounding of the exact 1/S, since none of
the four significands of 1/S lies within 2^-40 of a bfloat16 midpoint.

A unit holding a NaN or an infinity quantizes to the NaN scale code 0xFF with every level bit and element code 0;
dequantized, all 64 values are NaN (the reference's arithmetic propagates NaN through SF to every element).
Dequantized values S * 2^d * q/4 have at most 6 significant bits and lie between 2^-50 and 7 * 49152 = 344064, so
they are binary32 numbers exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from refarith.errors import BadValueError, SpecError
from refarith.exact.ops import decode
from refarith.exact.rounding import floor_log2, pow2, round_value
from refarith.exact.value import Value, parse_value
from refarith.formats import get_format
from refarith.spec import OpSchema, Param, Spec, make_spec, register_op

UNIT = 64
"""Elements per HiF4 unit."""
SCALE_FMT = get_format("ue6m2b48_fn_nosub")
ELEM_FMT = get_format("e1m2b1_none")
BF16 = get_format("bfloat16")
F32 = get_format("binary32")
SCALE_NAN = 0xFF
SCALE_MIN = pow2(-48)
SCALE_MAX = Fraction(49152)
TIES = ("even", "away")
F32_QNAN = 0x7FC00000


def bf16(x: Fraction) -> Fraction:
    """x >= 0 rounded to nearest even into bfloat16 (no overflow occurs for the values this module rounds)."""
    if x == 0:
        return Fraction(0)
    return decode(round_value(Value.of(x), BF16, "rne", "inf").code, BF16).mag


C7 = bf16(Fraction(1, 7))
"""bf16(1/7) = 73/512: the constant the level-1 scale multiplies the unit maximum by."""


def _round_sig(x: Fraction, bits: int, ties: str) -> Fraction:
    """x > 0 rounded to ``bits`` significant bits (unbounded exponent), ties to even or away."""
    e = floor_log2(x)
    q = pow2(e - bits + 1)
    n, r = divmod(x, q)
    n = int(n)
    half = q / 2
    if r > half or (r == half and (ties == "away" or n & 1)):
        n += 1
    return n * q


def scale_of(sf: Fraction, scale_ties: str = "even") -> tuple[int, Fraction]:
    """(E6M2 code, value) of the level-1 scale for SF = bf16(Vmax * C): SF clamped to [2^-48, 49152], rounded to
    3 significant bits."""
    x = min(max(sf, SCALE_MIN), SCALE_MAX)
    s = _round_sig(x, 3, scale_ties)
    e = floor_log2(s)
    m = int(s / pow2(e) * 4) - 4
    return ((e + 48) << 2) | m, s


def reciprocal(s: Fraction) -> Fraction:
    """R = bf16(1/S) for a scale value S."""
    return bf16(1 / s)


def _round_int(v: Fraction, ties: str) -> int:
    n = v.numerator // v.denominator
    r = v - n
    if r > Fraction(1, 2) or (r == Fraction(1, 2) and (ties == "away" or n & 1)):
        n += 1
    return n


@dataclass(frozen=True)
class HiF4Unit:
    """One quantized unit: the E6M2 scale code, 8 level-2 bits, 16 level-3 bits and 64 S1P2 element codes."""

    scale: int
    d8: tuple[int, ...]
    d16: tuple[int, ...]
    codes: tuple[int, ...]

    @property
    def d8_word(self) -> int:
        """The 8 level-2 bits as one byte, group 0 in the most significant bit."""
        return sum(b << (7 - k) for k, b in enumerate(self.d8))

    @property
    def d16_word(self) -> int:
        """The 16 level-3 bits as one 16-bit word, subgroup 0 in the most significant bit."""
        return sum(b << (15 - j) for j, b in enumerate(self.d16))


def _values(values: list) -> list[Value]:
    vals = [v if isinstance(v, Value) else parse_value(v) for v in values]
    if len(vals) != UNIT:
        raise BadValueError(f"a HiF4 unit has {UNIT} elements, got {len(vals)}")
    return vals


def _check_ties(scale_ties: str, elem_ties: str) -> None:
    for name, t in (("scale_ties", scale_ties), ("elem_ties", elem_ties)):
        if t not in TIES:
            raise BadValueError(f"{name} must be one of {', '.join(TIES)}, got {t!r}")


def quantize_unit(values: list, scale_ties: str = "even", elem_ties: str = "away") -> HiF4Unit:
    """Quantize 64 values (anything :func:`refarith.exact.value.parse_value` accepts) to one HiF4 unit."""
    _check_ties(scale_ties, elem_ties)
    vals = _values(values)
    if any(not v.is_finite for v in vals):
        return HiF4Unit(SCALE_NAN, (0,) * 8, (0,) * 16, (0,) * UNIT)
    a = [v.mag for v in vals]
    v16 = [max(a[4 * j:4 * j + 4]) for j in range(16)]
    v8 = [max(v16[2 * k], v16[2 * k + 1]) for k in range(8)]
    sf = bf16(max(v8) * C7)
    code, s = scale_of(sf, scale_ties)
    r = reciprocal(s)
    d8 = tuple(1 if v8[k] * r >= 4 else 0 for k in range(8))
    d16 = tuple(1 if v16[j] * r / (1 << d8[j // 2]) >= 2 else 0 for j in range(16))
    codes = []
    for i, v in enumerate(vals):
        d = d8[i // 8] + d16[i // 4]
        q = min(7, _round_int(a[i] * r * pow2(2 - d), elem_ties))
        neg = v.sign == 1 and not v.is_zero
        codes.append((8 if neg else 0) | q)
    return HiF4Unit(code, d8, d16, tuple(codes))


def unit_values(u: HiF4Unit) -> list[Value]:
    """The 64 exact values of a unit: (-1)^s * S * 2^(d8 + d16) * q/4; NaN for a unit with the NaN scale."""
    if u.scale == SCALE_NAN:
        return [Value.nan() for _ in range(UNIT)]
    e, m = (u.scale >> 2) - 48, u.scale & 3
    s = (4 + m) * pow2(e - 2)
    out = []
    for i, c in enumerate(u.codes):
        mag = s * pow2(u.d8[i // 8] + u.d16[i // 4]) * (c & 7) / 4
        out.append(Value("finite", c >> 3, mag))
    return out


def fake_quantize_unit(values: list, scale_ties: str = "even", elem_ties: str = "away") -> tuple[int, ...]:
    """binary32 codes of the 64 dequantized values of one unit (exact: module docstring); quiet NaN 0x7FC00000
    for every element of a unit holding a NaN or an infinity."""
    out = []
    for v in unit_values(quantize_unit(values, scale_ties, elem_ties)):
        if v.is_nan:
            out.append(F32_QNAN)
            continue
        rr = round_value(v, F32, "rne", "inf")
        if rr.flags:
            raise BadValueError(f"HiF4: the dequantized value {v} is not a binary32 number")
        out.append(rr.code)
    return tuple(out)


def quantize(values: list, scale_ties: str = "even", elem_ties: str = "away") -> list[HiF4Unit]:
    """A 1-D sequence whose length is a multiple of 64, unit by unit."""
    vals = list(values)
    if len(vals) % UNIT:
        raise BadValueError(f"HiF4 quantizes units of {UNIT} elements; got a length of {len(vals)}, "
                            f"not a multiple of {UNIT}")
    return [quantize_unit(vals[i:i + UNIT], scale_ties, elem_ties) for i in range(0, len(vals), UNIT)]


def hif4_spec(scale_ties: str = "even", elem_ties: str = "away", fake: bool = False) -> Spec:
    """The canonical spec, e.g. ``hif4_quantize(scale_ties=even,elem_ties=away)``."""
    return make_spec("hif4_fake_quantize" if fake else "hif4_quantize", (), scale_ties=scale_ties,
                     elem_ties=elem_ties)


def _validate(spec: Spec) -> None:
    if spec.formats:
        raise SpecError(f"{spec}: HiF4 takes no format (binary32 in; E6M2 scale and S1P2 elements out)")


_PARAMS = (
    Param("scale_ties", "even", TIES, "ties of the E6M2 scale rounding (reference: even)"),
    Param("elem_ties", "away", TIES, "ties of the S1P2 element rounding (reference: away, floor(v + 0.5))"),
)
register_op(OpSchema("hif4_quantize", 0, _PARAMS,
                     "HiFloat4: 64 binary32 values -> E6M2 scale, 8 + 16 one-bit exponents, 64 S1P2 codes",
                     _validate))
register_op(OpSchema("hif4_fake_quantize", 0, _PARAMS,
                     "HiFloat4 fake quantization: hif4_quantize then the 64 values as binary32 (exact)",
                     _validate))

__all__ = ["C7", "ELEM_FMT", "SCALE_FMT", "SCALE_NAN", "UNIT", "HiF4Unit", "bf16", "fake_quantize_unit",
           "hif4_spec", "quantize", "quantize_unit", "reciprocal", "scale_of", "unit_values"]
