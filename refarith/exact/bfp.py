"""Dynamic fixed point / block floating point (BFP) with a shared exponent, exactly.

Source: the dynamic fixed point of Courbariaux, Bengio & David ("Training deep
neural networks with low precision multiplications", 2014) and block floating
point as in Drumond et al. ("Training DNNs with Hybrid Block Floating Point",
NeurIPS 2018): a block of P-bit signed integers m_i shares one exponent Es and
represents m_i * 2^Es.

* Quantization of binary32 values: E_fmax = floor(log2 max |x_i|) (exact, from
  the binary32 exponent bits); Es = E_fmax - (P - 2), so the largest magnitude
  uses the top magnitude bit; m_i = round(x_i / 2^Es) (``rounding``: any mode of
  round_value, default rne), clamped to +-(2^(P-1) - 1) (only a round-up of the
  largest element can reach 2^(P-1)).  An all-zero block has Es = -(P - 2) and
  m = 0.  NaN / infinity raise SpecialValueError.
* Products add exponents: (m_a, Ea) * (m_b, Eb) = (m_a m_b, Ea + Eb), exact
  (2P-bit mantissas).
* Sums align by shifts: (m_a, Ea) + (m_b, Eb) with Ea >= Eb is
  (m_a + shift(m_b, Ea - Eb), Ea) where ``shift`` is an arithmetic right shift
  (``align=floor``, the hardware default) or a right shift rounded to nearest
  even (``align=rne``); the result keeps P + 1 bits (no renormalization).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from refarith.errors import BadValueError, SpecError, SpecialValueError, UnknownModeError
from refarith.exact.rounding import floor_log2, pow2, round_value
from refarith.exact.stochastic import rand_list
from refarith.exact.value import Value
from refarith.spec import SR_PARAMS, OpSchema, Param, Spec, check_sr_params, make_spec, register_op

ALIGN = ("floor", "rne")
ROUNDINGS = ("rne", "rna", "rtz", "rup", "rdn", "rto")


@dataclass(frozen=True)
class BFPBlock:
    """P-bit mantissas sharing the exponent ``exp``: value_i = m_i * 2^exp."""

    exp: int
    m: tuple[int, ...]

    def values(self) -> list[Fraction]:
        return [mi * pow2(self.exp) for mi in self.m]


def _check_p(p: int) -> None:
    if not isinstance(p, int) or not 2 <= p <= 24:
        raise BadValueError(f"BFP mantissa width P must be an integer in 2..24, got {p!r}")


def quantize_block(values: list[float], p: int, rounding: str = "rne", *, rand: list[int] | None = None,
                   rand_bits: int | None = None, sr_variant: str = "a") -> BFPBlock:
    """Quantize binary32 values (Python floats) into one BFP block of P-bit mantissas (``rounding="sr"``:
    mantissa i rounded stochastically with ``rand[i]``, k = ``rand_bits``, rule ``sr_variant``)."""
    _check_p(p)
    if rounding != "sr" and rounding not in ROUNDINGS:
        raise UnknownModeError(f"unknown rounding {rounding!r}; expected one of {', '.join(ROUNDINGS)}")
    xs = []
    for v in values:
        if not math.isfinite(v):  # the input is a binary32 value held as a Python float
            raise SpecialValueError(f"BFP quantization of {v!r}: NaN and infinity have no fixed-point code")
        xs.append(Fraction(v))
    amax = max((abs(x) for x in xs), default=Fraction(0))
    e = (floor_log2(amax) if amax else 0) - (p - 2)
    fmt = f"int{p}_sym"
    rs = rand_list(rand, len(xs), rand_bits, "a BFP block") if rounding == "sr" else [None] * len(xs)
    ms = []
    for x, r in zip(xs, rs):
        c = round_value(Value.of(x / pow2(e)), fmt, rounding, "saturate", rand=r,
                        rand_bits=rand_bits if r is not None else None, sr_variant=sr_variant).code
        ms.append(c - (1 << p) if c >> (p - 1) else c)
    return BFPBlock(e, tuple(ms))


def mul(a: BFPBlock, b: BFPBlock) -> BFPBlock:
    """Elementwise product: mantissas multiply, exponents add (exact)."""
    if len(a.m) != len(b.m):
        raise BadValueError("BFP blocks of different lengths")
    return BFPBlock(a.exp + b.exp, tuple(x * y for x, y in zip(a.m, b.m)))


def shift_right(m: int, d: int, align: str) -> int:
    """m / 2^d rounded down (``floor``, an arithmetic shift) or to nearest even (``rne``)."""
    if align not in ALIGN:
        raise UnknownModeError(f"unknown alignment {align!r}; expected one of {', '.join(ALIGN)}")
    if d <= 0:
        return m << -d
    q = m >> d
    if align == "floor":
        return q
    r = m - (q << d)
    half = 1 << (d - 1)
    return q + 1 if r > half or (r == half and q & 1) else q


def add(a: BFPBlock, b: BFPBlock, align: str = "floor") -> BFPBlock:
    """Elementwise sum: the block with the smaller exponent is shifted right to the larger one."""
    if len(a.m) != len(b.m):
        raise BadValueError("BFP blocks of different lengths")
    if a.exp < b.exp:
        a, b = b, a
    d = a.exp - b.exp
    return BFPBlock(a.exp, tuple(x + shift_right(y, d, align) for x, y in zip(a.m, b.m)))


def dot(a: BFPBlock, b: BFPBlock) -> tuple[int, int]:
    """(sum m_a m_b, Ea + Eb): the exact dot product of two blocks."""
    p = mul(a, b)
    return sum(p.m), p.exp


def bfp_spec(p: int, block: int = 32, rounding: str = "rne", align: str = "floor") -> Spec:
    """Canonical id, e.g. ``bfp_quantize(int8_sym,block=32,rounding=rne,align=floor)``."""
    return make_spec("bfp_quantize", (f"int{p}_sym",), block=block, rounding=rounding, align=align)


def _validate(spec: Spec) -> None:
    f = spec.fmt(0)
    if f.kind != "int" or not f.symmetric or not 2 <= f.bits <= 24:
        raise SpecError(f"{spec}: the mantissa format must be int2_sym..int24_sym")
    if not spec.param["block"].isdigit() or int(spec.param["block"]) < 1:
        raise SpecError(f"{spec}: block must be a positive integer")
    check_sr_params(spec, spec.formats[0])


register_op(OpSchema(
    "bfp_quantize", 1,
    (
        Param("block", "32", None, "elements sharing one exponent"),
        Param("rounding", "rne", ROUNDINGS + ("sr",), "rounding of x / 2^Es (sr: stochastic, one k-bit random "
              "integer per element)"),
        Param("align", "floor", ALIGN, "rounding of the alignment shift in sums"),
        *SR_PARAMS,
    ),
    "block floating point: P-bit mantissas, shared exponent Es = floor(log2 amax) - (P-2)",
    _validate,
))
