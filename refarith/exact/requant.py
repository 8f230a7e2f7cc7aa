"""Requantization: fixed-point multipliers of int32 accumulators, exactly as deployed integer kernels compute them.

All functions are exact over Python ints and follow the cited C sources operation by operation, including
where the C code wraps (a signed int32 overflow is undefined behaviour in C; compiled code on two's complement
targets wraps, and that is what is modelled, marked "wraps" below).

Sources:
* gemmlowp ``fixedpoint/fixedpoint.h``: SaturatingRoundingDoublingHighMul, RoundingDivideByPOT,
  SaturatingRoundingMultiplyByPOT.
* TensorFlow Lite ``kernels/internal/common.h`` / ``quantization_util.cc``: MultiplyByQuantizedMultiplier
  (double rounding when TFLITE_SINGLE_ROUNDING is 0, single rounding when it is 1) and QuantizeMultiplier.
* CMSIS-NN ``arm_nnsupportfunctions.h``: arm_nn_requantize with CMSIS_NN_USE_SINGLE_ROUNDING.
* HAWQ-V3 (Yao et al., ICML 2021) dyadic requantization: ``batch_frexp`` (frexp, mantissa scaled to 31 bits
  rounded half up, no renormalisation) then round(acc * b / 2^c) (simulation, torch.round = half to even) or an
  arithmetic right shift (deployed integer kernel, i.e. floor).

Multiplier conventions: TFLite/CMSIS use (M, shift) with real multiplier M * 2^(shift - 31), M < 2^31;
HAWQ-V3 uses (b, c) with real multiplier b / 2^c, b in [2^30, 2^31].
"""

from __future__ import annotations

import math
from fractions import Fraction

from refarith.errors import BadValueError, UnknownModeError

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

VARIANTS = ("tflite_double_rounding", "tflite_single_rounding", "cmsis_single_rounding", "hawq_sim",
            "hawq_deployed")
DEFAULT_VARIANT = "tflite_double_rounding"


def wrap(x: int, bits: int = 32) -> int:
    """Two's complement wrap of an integer to ``bits`` bits."""
    m = 1 << bits
    return ((x + (m >> 1)) % m) - (m >> 1)


def _check_int(name: str, x: int, lo: int, hi: int) -> None:
    if not isinstance(x, int) or isinstance(x, bool):
        raise BadValueError(f"{name} must be an int, got {type(x).__name__}")
    if not lo <= x <= hi:
        raise BadValueError(f"{name}={x} outside [{lo}, {hi}]")


def _check_i32(name: str, x: int) -> None:
    _check_int(name, x, INT32_MIN, INT32_MAX)


def _trunc_div(n: int, d: int) -> int:
    """C integer division (truncates toward zero), d > 0."""
    q = abs(n) // d
    return q if n >= 0 else -q


# --------------------------------------------------------------------------- gemmlowp primitives
def srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul(a, b) on int32.

    The 64-bit product plus a nudge of 2^30 (1 - 2^30 when negative), divided by 2^31 truncating toward zero;
    a = b = INT32_MIN (the only overflow) saturates to INT32_MAX.  Equal to floor((a*b + 2^30) / 2^31)
    elsewhere (theorem ``srdhm_floor_form``).
    """
    _check_i32("a", a)
    _check_i32("b", b)
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _trunc_div(ab + nudge, 1 << 31)


def rdbpot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT(x, exponent): x / 2^exponent rounded half away from zero, exponent in [0, 31].

    mask = 2^e - 1; remainder = x & mask; threshold = (mask >> 1) + (x < 0); (x >> e) + (remainder > threshold).
    """
    _check_i32("x", x)
    _check_int("exponent", exponent, 0, 31)
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def saturating_rounding_mul_by_pot(x: int, exponent: int) -> int:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent>(x) on int32.

    exponent > 0: x * 2^exponent saturated (x > 2^(31-e) - 1 gives INT32_MAX, x < -(2^(31-e) - 1) gives
    INT32_MIN); exponent < 0: RoundingDivideByPOT(x, -exponent); exponent 0: x.
    """
    _check_i32("x", x)
    _check_int("exponent", exponent, -31, 31)
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x << exponent


# --------------------------------------------------------------------------- multipliers
def _as_fraction(scale: object) -> Fraction:
    if isinstance(scale, bool):
        raise BadValueError("scale must be a number, got bool")
    if isinstance(scale, Fraction):
        f = scale
    elif isinstance(scale, int):
        f = Fraction(scale)
    elif isinstance(scale, float):
        if not math.isfinite(scale):
            raise BadValueError(f"scale must be finite, got {scale!r}")
        f = Fraction(scale)  # exact: every binary64 value is a dyadic rational
    else:
        try:
            f = Fraction(str(scale))
        except (ValueError, ZeroDivisionError):
            raise BadValueError(f"cannot read scale {scale!r}") from None
    return f


def frexp_exact(x: Fraction) -> tuple[Fraction, int]:
    """Exact frexp of a positive rational: x = q * 2^e with q in [1/2, 1)."""
    if x <= 0:
        raise BadValueError(f"frexp_exact needs a positive value, got {x}")
    e = x.numerator.bit_length() - x.denominator.bit_length()
    # now 2^(e-1) < x < 2^(e+1); fix so that 2^(e-1) <= x < 2^e
    if x >= Fraction(2) ** e:
        e += 1
    elif x < Fraction(2) ** (e - 1):
        e -= 1
    return x / Fraction(2) ** e, e


def _round_half_away(x: Fraction) -> int:
    n = math.floor(abs(x) + Fraction(1, 2))
    return n if x >= 0 else -n


def quantize_multiplier(scale: object, single_rounding: bool = False) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: a positive real scale -> (M, shift) with scale ~ M * 2^(shift - 31).

    q, shift = frexp(scale); M = round_half_away(q * 2^31); M == 2^31 renormalises to (2^30, shift + 1);
    shift < -31 gives (0, 0); under single rounding shift > 30 clamps to (2^31 - 1, 30).  Scale 0 gives (0, 0).
    Exact for a Fraction; a float is taken at its exact binary64 value (what the C code sees).
    """
    s = _as_fraction(scale)
    if s < 0:
        raise BadValueError(f"quantize_multiplier needs a non-negative scale, got {scale!r}")
    if s == 0:
        return 0, 0
    q, shift = frexp_exact(s)
    m = _round_half_away(q * (1 << 31))
    if m == 1 << 31:
        m //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if single_rounding and shift > 30:
        return (1 << 31) - 1, 30
    return m, shift


def dyadic_multiplier(scale: object, bits: int = 31) -> tuple[int, int]:
    """HAWQ-V3 batch_frexp: a positive real scale -> (b, c) with scale ~ b / 2^c.

    m, e = frexp(scale); b = round_half_up(m * 2^bits) (Decimal ROUND_HALF_UP, i.e. half away from zero), which
    lies in [2^(bits-1), 2^bits] -- no renormalisation, so b = 2^bits can occur; c = bits - e.
    """
    s = _as_fraction(scale)
    if s <= 0:
        raise BadValueError(f"dyadic_multiplier needs a positive scale, got {scale!r}")
    _check_int("bits", bits, 1, 62)
    m, e = frexp_exact(s)
    return _round_half_away(m * (1 << bits)), bits - e


# --------------------------------------------------------------------------- multiply by a quantized multiplier
def _check_mult(multiplier: int, shift: int) -> None:
    _check_i32("multiplier", multiplier)
    _check_int("shift", shift, -31, 30)


def tflite_double_rounding(x: int, multiplier: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier, TFLITE_SINGLE_ROUNDING=0 (the default build).

    RoundingDivideByPOT(SRDHM(x * 2^max(shift,0), M), max(-shift,0)); the left shift x * 2^ls wraps to int32.
    """
    _check_i32("x", x)
    _check_mult(multiplier, shift)
    ls = max(shift, 0)
    rs = max(-shift, 0)
    return rdbpot(srdhm(wrap(x << ls), multiplier), rs)


def single_rounding_unwrapped(x: int, multiplier: int, shift: int) -> int:
    """floor((x*M + 2^(30-shift)) / 2^(31-shift)): single rounding, half toward +inf, before the int32 cast."""
    total = 31 - shift
    return (x * multiplier + (1 << (total - 1))) >> total


def tflite_single_rounding(x: int, multiplier: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier, TFLITE_SINGLE_ROUNDING=1.

    (x*M + 2^(30-shift)) >> (31-shift) in int64 (rounds half toward +inf), then static_cast to int32 (wraps;
    TFLite only DCHECKs the range).  Requires M >= 0 and shift in [-31, 30] as the source DCHECKs.
    """
    _check_i32("x", x)
    _check_mult(multiplier, shift)
    if multiplier < 0:
        raise BadValueError(f"tflite single rounding needs multiplier >= 0, got {multiplier}")
    return wrap(single_rounding_unwrapped(x, multiplier, shift))


def cmsis_single_rounding(x: int, multiplier: int, shift: int) -> int:
    """CMSIS-NN arm_nn_requantize with CMSIS_NN_USE_SINGLE_ROUNDING.

    new_val = x*M (int64); result = int32(new_val >> (30-shift)) (truncated to 32 bits: wraps);
    result = (result + 1) >> 1 in int32 (the +1 wraps at INT32_MAX).  Equals TFLite single rounding exactly when
    new_val >> (30-shift) lies in [INT32_MIN, INT32_MAX - 1] (theorem ``cmsis_single_eq_tflite_single``).
    """
    _check_i32("x", x)
    _check_mult(multiplier, shift)
    r = wrap((x * multiplier) >> (30 - shift))
    return wrap(r + 1) >> 1


def _check_dyadic(b: int, c: int) -> None:
    _check_int("b", b, 0, 1 << 31)
    _check_int("c", c, 1, 62)


def hawq_sim(acc: int, b: int, c: int) -> int:
    """HAWQ-V3 simulation: round(acc * b / 2^c), ties to even (torch.round), computed exactly.

    (The published simulation evaluates this in float64, which is exact only while |acc*b| < 2^53; this model is
    the exact rational definition.)  acc int32, b in [0, 2^31], c in [1, 62]; |acc*b| <= 2^62 fits int64.
    """
    _check_i32("acc", acc)
    _check_dyadic(b, c)
    v = acc * b
    q = v >> c
    r = v - (q << c)
    half = 1 << (c - 1)
    if r > half or (r == half and q & 1):
        q += 1
    return q


def hawq_deployed(acc: int, b: int, c: int) -> int:
    """HAWQ-V3 deployed integer kernel: (acc * b) >> c, an arithmetic shift of the int64 product.

    The shift "truncates" the dropped bits, i.e. rounds toward -inf (floor); for negative products this is not
    truncation toward zero.
    """
    _check_i32("acc", acc)
    _check_dyadic(b, c)
    return (acc * b) >> c


_MULTIPLY = {
    "tflite_double_rounding": tflite_double_rounding,
    "tflite_single_rounding": tflite_single_rounding,
    "cmsis_single_rounding": cmsis_single_rounding,
    "hawq_sim": hawq_sim,
    "hawq_deployed": hawq_deployed,
}


def check_variant(variant: str) -> str:
    if variant not in _MULTIPLY:
        raise UnknownModeError(f"unknown requantization variant {variant!r}; known: {', '.join(VARIANTS)}")
    return variant


_MULTIPLIER_MEMO: dict[tuple[type, object, str], tuple[int, int]] = {}


def multiplier_for(scale: object, variant: str) -> tuple[int, int]:
    """The integer multiplier pair a variant derives from a real scale: (M, shift) for TFLite/CMSIS, (b, c) HAWQ.

    A pure function of (scale, variant); results for hashable scales are remembered (keyed on the scale's type as
    well, so ``"0.1"`` and the binary64 ``0.1`` stay distinct).
    """
    check_variant(variant)
    try:
        key = (type(scale), scale, variant)
        return _MULTIPLIER_MEMO[key]
    except TypeError:
        key = None
    except KeyError:
        pass
    if variant.startswith("hawq"):
        pair = dyadic_multiplier(scale)
    else:
        pair = quantize_multiplier(scale, single_rounding=variant != "tflite_double_rounding")
    if key is not None and len(_MULTIPLIER_MEMO) < 1 << 16:
        _MULTIPLIER_MEMO[key] = pair
    return pair


def multiply(acc: int, m: int, shift: int, variant: str = DEFAULT_VARIANT) -> int:
    """Apply a variant's integer multiply to an int32 accumulator (no zero point, no clamp)."""
    return _MULTIPLY[check_variant(variant)](acc, m, shift)


def requantize(acc: int, scale: object, variant: str = DEFAULT_VARIANT, zero_point: int = 0,
               out_min: int = -128, out_max: int = 127) -> int:
    """Requantize an int32 accumulator by a real scale: variant multiply, + zero_point (exact), clamp to the output.

    The multiplier pair is derived from ``scale`` by :func:`multiplier_for`.
    """
    m, sh = multiplier_for(scale, variant)
    if not variant.startswith("hawq"):
        _check_mult(m, sh)
    return min(max(multiply(acc, m, sh, variant) + zero_point, out_min), out_max)


# --------------------------------------------------------------------------- spec op
def _validate_requant(spec) -> None:
    from refarith.errors import SpecError

    if spec.formats:
        src, dst = spec.fmt(0), spec.fmt(1)
        if src.kind != "int" or not src.signed or src.bits > 32:
            raise SpecError(f"{spec}: the accumulator must be a signed integer format of at most 32 bits")
        if dst.kind != "int":
            raise SpecError(f"{spec}: the output must be an integer format")


def _register() -> None:
    from refarith.spec import OpSchema, Param, register_op

    register_op(OpSchema(
        "requantize", (0, 2),
        (Param("variant", DEFAULT_VARIANT, VARIANTS,
               "integer multiply: tflite_double_rounding (TFLite default build), tflite_single_rounding, "
               "cmsis_single_rounding, hawq_sim (round half even), hawq_deployed (arithmetic shift)"),),
        "int32 accumulator * real scale (as an integer multiplier) + zero point, clamped to the output format; "
        "no formats means int32->int8",
        _validate_requant,
    ))


_register()


def requantize_spec(spec: object, acc: int, scale: object, zero_point: int = 0) -> int:
    """Requantize under a ``requantize(...)`` spec id (output range from its second format, default int8)."""
    from refarith.formats import get_format
    from refarith.spec import parse_spec

    sp = parse_spec(spec) if not hasattr(spec, "op") else spec
    if sp.op != "requantize":
        from refarith.errors import SpecError

        raise SpecError(f"expected a requantize spec, got {sp}")
    dst = sp.fmt(1) if sp.formats else get_format("int8")
    if sp.formats:
        src = sp.fmt(0)
        _check_int("acc", acc, src.min if not src.symmetric else src.min - 1, src.max)
    return requantize(acc, scale, sp.param["variant"], zero_point, dst.min, dst.max)
