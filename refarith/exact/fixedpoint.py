"""gemmlowp / TFLite fixed-point nonlinearities on int32 raw values, exactly as the C++ templates compute them.

A ``FixedPoint<int32, IB>`` value is a raw int32 r meaning r / 2^(31 - IB).  Multiplication of fixed-point
values is SaturatingRoundingDoublingHighMul of the raws (integer bits add); ``+``/``-`` are plain int32 adds
(they wrap, as the compiled C++ does); Rescale is SaturatingRoundingMultiplyByPOT.  The results are
``FixedPoint<int32, 0>`` raws (value r / 2^31, with 1.0 saturated to INT32_MAX).

Sources: gemmlowp ``fixedpoint/fixedpoint.h`` (exp_on_interval_between_negative_one_quarter_and_0_excl,
exp_on_negative_values, one_over_one_plus_x_for_x_in_0_1, one_minus_x_over_one_plus_x_for_x_in_0_1, logistic,
tanh); TensorFlow Lite ``kernels/internal/reference/softmax.h`` (integer Softmax), ``common.h`` (GetReciprocal,
MultiplyByQuantizedMultiplierGreaterThanOne) and ``quantization_util.cc`` (PreprocessSoftmaxScaling,
CalculateInputRadius).  Integer only; no floats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from refarith.errors import BadValueError
from refarith.exact.requant import (
    INT32_MAX,
    INT32_MIN,
    _as_fraction,
    _check_i32,
    _check_int,
    quantize_multiplier,
    rdbpot,
    saturating_rounding_mul_by_pot,
    srdhm,
    wrap,
)
from refarith.exact.value import approx

# Published constants of fixedpoint.h (raw int32, FixedPoint<int32, 0> unless stated).
EXP_MINUS_ONE_EIGHTH = 1895147668          # exp(-1/8)
ONE_THIRD = 715827883                      # 1/3
EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
              (3, 720401), (4, 242))       # (k, exp(-2^k))
C_48_OVER_17 = 1515870810                  # 48/17 as FixedPoint<int32, 2>
C_NEG_32_OVER_17 = -1010580540             # -32/17 as FixedPoint<int32, 2>
ONE_F0 = INT32_MAX                         # FixedPoint<int32, 0>::One()
ONE_F2 = 1 << 29                           # FixedPoint<int32, 2>::One()


def _add(a: int, b: int) -> int:
    return wrap(a + b)


def _sub(a: int, b: int) -> int:
    return wrap(a - b)


def _check_ib(integer_bits: int, hi: int) -> None:
    _check_int("integer_bits", integer_bits, 0, hi)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    """exp(a) for a in [-1/4, 0): 4th-order Taylor expansion around -1/8 (raws with 0 integer bits)."""
    _check_i32("a", a)
    x = _add(a, 1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(_add(srdhm(_add(x4_over_4, x3), ONE_THIRD), x2), 1)
    return _add(EXP_MINUS_ONE_EIGHTH, srdhm(EXP_MINUS_ONE_EIGHTH, _add(x, poly)))


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """gemmlowp exp_on_negative_values for a FixedPoint<int32, integer_bits> raw a (meant for a <= 0).

    a mod 1/4 (minus 1/4) goes through the Taylor kernel; each set bit of the remaining multiple of 1/4
    multiplies by exp(-2^k) (k = -2..4, only for k < integer_bits); inputs below -32 give 0 when
    integer_bits > 5; a = 0 gives One (INT32_MAX).  integer_bits in [0, 29].  Positive inputs get the code's
    result (no meaning).
    """
    _check_i32("a", a)
    _check_ib(integer_bits, 29)
    frac_bits = 31 - integer_bits
    quarter = 1 << (frac_bits - 2)
    a_mod = _sub(a & (quarter - 1), quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(saturating_rounding_mul_by_pot(a_mod,
                                                                                                     integer_bits))
    remainder = _sub(a_mod, a)
    for k, mult in EXP_BARREL:
        if integer_bits > k and remainder & (1 << (frac_bits + k)):
            result = srdhm(result, mult)
    if integer_bits > 5 and a < -(1 << (36 - integer_bits)):
        result = 0
    if a == 0:
        result = ONE_F0
    return result


def _newton_reciprocal_half(a: int) -> int:
    """x ~ 1 / ((1 + a) / 2) as FixedPoint<int32, 2>: three Newton-Raphson steps from 48/17 - 32/17 * d."""
    half_denominator = rounding_half_sum(a, ONE_F0)
    x = _add(C_48_OVER_17, srdhm(half_denominator, C_NEG_32_OVER_17))
    for _ in range(3):
        hdx = srdhm(half_denominator, x)
        one_minus = _sub(ONE_F2, hdx)
        x = _add(x, saturating_rounding_mul_by_pot(srdhm(x, one_minus), 2))
    return x


def rounding_half_sum(a: int, b: int) -> int:
    """gemmlowp RoundingHalfSum for int32: (a + b + sign(a + b)) / 2 in int64, C division (toward zero)."""
    _check_i32("a", a)
    _check_i32("b", b)
    s = a + b
    n = s + (1 if s >= 0 else -1)
    q = abs(n) // 2
    return q if n >= 0 else -q


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """1 / (1 + a) for a FixedPoint<int32, 0> raw a in [0, 1): Newton-Raphson division, result 0 integer bits."""
    _check_i32("a", a)
    x = _newton_reciprocal_half(a)
    return saturating_rounding_mul_by_pot(x, 1)  # ExactMulByPot<-1> then Rescale<0>


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """(1 - a) / (1 + a) for a FixedPoint<int32, 0> raw a in [0, 1): the same Newton iteration, minus one."""
    _check_i32("a", a)
    x = _newton_reciprocal_half(a)
    return saturating_rounding_mul_by_pot(_sub(x, ONE_F2), 2)


def logistic(a: int, integer_bits: int) -> int:
    """gemmlowp logistic for a FixedPoint<int32, integer_bits> raw: 1/(1+exp(-|a|)), mirrored for a < 0.

    a = 0 gives 2^30 (one half); for a < 0 the result is One - logistic(|a|) (|INT32_MIN| wraps to itself).
    integer_bits in [0, 29].
    """
    _check_i32("a", a)
    _check_ib(integer_bits, 29)
    if a == 0:
        return 1 << 30
    abs_input = a if a > 0 else wrap(-a)
    pos = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap(-abs_input), integer_bits))
    return pos if a > 0 else _sub(ONE_F0, pos)


def tanh(a: int, integer_bits: int) -> int:
    """gemmlowp tanh for a FixedPoint<int32, integer_bits> raw: (1 - exp(2n)) / (1 + exp(2n)) with n = -|a|.

    exp is evaluated with integer_bits + 1 (ExactMulByPot<1>); a = 0 gives 0; the sign is restored by negation.
    integer_bits in [0, 28].
    """
    _check_i32("a", a)
    _check_ib(integer_bits, 28)
    if a == 0:
        return 0
    n = a if a < 0 else wrap(-a)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return wrap(-t) if a < 0 else t


# --------------------------------------------------------------------------- TFLite integer softmax
SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12


def count_leading_zeros_u32(x: int) -> int:
    x &= 0xFFFFFFFF
    return 32 - x.bit_length()


def get_reciprocal(x: int, x_integer_digits: int) -> tuple[int, int]:
    """TFLite GetReciprocal: (raw of 1/x' with 0 integer bits, num_bits_over_unit) for a positive int32 x.

    headroom = clz(x); x' = (x << headroom) - 2^31 as uint32 reinterpreted as int32; num_bits_over_unit =
    x_integer_digits - headroom.
    """
    _check_int("x", x, 1, INT32_MAX)
    h = count_leading_zeros_u32(x)
    shifted_minus_one = wrap(((x << h) - (1 << 31)) & 0xFFFFFFFF)
    return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), x_integer_digits - h


def softmax_params(beta: object, input_scale: object) -> tuple[int, int, int]:
    """TFLite PreprocessSoftmaxScaling + CalculateInputRadius for 5 integer bits, computed exactly.

    real = min(beta * input_scale * 2^26, 2^31 - 1); (multiplier, left_shift) = QuantizeMultiplierGreaterThanOne
    (QuantizeMultiplier with shift >= 0); diff_min = -floor(31 * 2^26 / 2^left_shift).  TFLite evaluates the
    product in double; this is the exact rational value (identical whenever that double product is exact).
    """
    b = _as_fraction(beta)
    s = _as_fraction(input_scale)
    real = min(b * s * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), Fraction((1 << 31) - 1))
    if real <= 1:
        raise BadValueError(f"softmax: beta * input_scale * 2^26 = {approx(real)} must exceed 1")
    m, shift = quantize_multiplier(real)
    if shift < 0:
        raise BadValueError(f"softmax: multiplier shift {shift} is negative")
    radius = math.floor(Fraction(((1 << SCALED_DIFF_INTEGER_BITS) - 1) << (31 - SCALED_DIFF_INTEGER_BITS),
                                 1 << shift))
    return m, shift, -radius


def softmax_int8(row: Sequence[int], input_multiplier: int, input_left_shift: int, diff_min: int) -> list[int]:
    """TFLite reference integer Softmax, int8 -> int8 (output scale 1/256, zero point -128), one row.

    diff = x - max(row); entries with diff < diff_min give -128; others: e = exp_on_negative_values(
    SRDHM(diff * 2^left_shift, multiplier), 5); sum of RoundingDivideByPOT(e, 12) (12 integer bits, int32
    adds wrap); reciprocal by GetReciprocal; out = RDBPOT(SRDHM(recip, e), num_bits_over_unit + 23) - 128,
    clamped to [-128, 127].  The exponent must stay <= 31 (gemmlowp asserts), which bounds the row length.
    """
    if not row:
        raise BadValueError("softmax of an empty row")
    for v in row:
        _check_int("input", v, -128, 127)
    _check_i32("input_multiplier", input_multiplier)
    _check_int("input_left_shift", input_left_shift, 0, 31)
    _check_i32("diff_min", diff_min)
    mx = max(row)

    def exp_of(v: int) -> int:
        scaled = srdhm(wrap((v - mx) << input_left_shift), input_multiplier)
        return exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS)

    total = 0
    for v in row:
        if v - mx >= diff_min:
            total = wrap(total + rdbpot(exp_of(v), ACCUMULATION_INTEGER_BITS))
    if total <= 0:
        raise BadValueError(f"softmax: int32 sum of exponentials {total} is not positive (row too long)")
    recip, nbou = get_reciprocal(total, ACCUMULATION_INTEGER_BITS)
    sh = nbou + 31 - 8
    if not 0 <= sh <= 31:
        raise BadValueError(f"softmax: output shift {sh} outside [0, 31] (row too long)")
    out = []
    for v in row:
        if v - mx >= diff_min:
            u = rdbpot(srdhm(recip, exp_of(v)), sh) - 128
            out.append(min(max(u, -128), 127))
        else:
            out.append(-128)
    return out


__all__ = ["INT32_MAX", "INT32_MIN", "exp_on_interval_between_negative_one_quarter_and_0_excl",
           "exp_on_negative_values", "get_reciprocal", "logistic", "one_minus_x_over_one_plus_x_for_x_in_0_1",
           "one_over_one_plus_x_for_x_in_0_1", "rounding_half_sum", "softmax_int8", "softmax_params", "tanh"]


# --------------------------------------------------------------------------- spec ops
_UNARY = {
    "gemmlowp_exp": (exp_on_negative_values, 5, 29, "exp_on_negative_values"),
    "gemmlowp_logistic": (logistic, 3, 29, "logistic"),
    "gemmlowp_tanh": (tanh, 3, 28, "tanh"),
}
_RECIP = {
    "gemmlowp_one_over_one_plus_x": one_over_one_plus_x_for_x_in_0_1,
    "gemmlowp_one_minus_x_over_one_plus_x": one_minus_x_over_one_plus_x_for_x_in_0_1,
}
_SOFTMAX_PARAMS = ("multiplier", "left_shift", "diff_min")


def _int_param(spec, name: str, lo: int, hi: int) -> int:
    from refarith.errors import SpecError

    v = spec.param.get(name)
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise SpecError(f"{spec}: {name} must be an integer, got {v!r}") from None
    if not lo <= n <= hi:
        raise SpecError(f"{spec}: {name}={n} outside [{lo}, {hi}]")
    return n


def _register() -> None:
    from refarith.errors import SpecError
    from refarith.spec import OpSchema, Param, register_op

    for op, (_, default, hi, cname) in _UNARY.items():
        register_op(OpSchema(
            op, 0, (Param("integer_bits", str(default), None, f"integer bits of the int32 input raw, 0..{hi}"),),
            f"gemmlowp {cname} on FixedPoint<int32, integer_bits> raws; result FixedPoint<int32, 0>",
            lambda spec, hi=hi: _int_param(spec, "integer_bits", 0, hi) and None,
        ))
    for op in _RECIP:
        register_op(OpSchema(op, 0, (), f"gemmlowp {_RECIP[op].__name__} on FixedPoint<int32, 0> raws"))

    def _validate_softmax(spec) -> None:
        for p in _SOFTMAX_PARAMS:
            if p not in spec.param:
                raise SpecError(f"{spec}: tflite_softmax needs explicit {', '.join(_SOFTMAX_PARAMS)}")
        _int_param(spec, "multiplier", INT32_MIN, INT32_MAX)
        _int_param(spec, "left_shift", 0, 31)
        _int_param(spec, "diff_min", INT32_MIN, INT32_MAX)
        if spec.formats and spec.formats != ("int8", "int8"):
            raise SpecError(f"{spec}: only int8->int8 is modelled")

    register_op(OpSchema(
        "tflite_softmax", (0, 2),
        tuple(Param(p, lambda f: None, None, doc) for p, doc in zip(
            _SOFTMAX_PARAMS, ("input_multiplier (softmax_params)", "input_left_shift", "diff_min")))
        + (Param("variant", "reference", ("reference",), "TFLite reference_ops integer Softmax"),),
        "TFLite reference integer softmax over one row, int8 -> int8 (scale 1/256, zero point -128)",
        _validate_softmax,
    ))


_register()


def apply_spec(spec: object, x: int | Sequence[int]) -> int | list[int]:
    """Evaluate a gemmlowp_* spec on one raw, or a tflite_softmax spec on one row."""
    from refarith.errors import SpecError
    from refarith.spec import parse_spec

    sp = parse_spec(spec) if not hasattr(spec, "op") else spec
    if sp.op in _UNARY:
        return _UNARY[sp.op][0](x, int(sp.param["integer_bits"]))
    if sp.op in _RECIP:
        return _RECIP[sp.op](x)
    if sp.op == "tflite_softmax":
        return softmax_int8(x, *(int(sp.param[p]) for p in _SOFTMAX_PARAMS))
    raise SpecError(f"{sp} is not a fixed-point nonlinearity spec")
