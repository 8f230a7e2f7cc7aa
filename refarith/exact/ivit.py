"""I-ViT integer-only operators: shift-based exp, Shiftmax, ShiftGELU, I-LayerNorm (exact integer models).

Source: Z. Li and Q. Gu, "I-ViT: Integer-only Quantization for Efficient Vision Transformer Inference"
(ICCV 2023), and its public code: the PyTorch model (``models/quantization_utils/quant_modules.py``:
``IntSoftmax``, ``IntGELU``, ``IntLayerNorm``) and the released TVM kernels (``TVM_benchmark/models/layers.py``:
``shift_exp``, ``quantized_softmax``, ``quantized_gelu``, ``quantized_layernorm``).

Two named variants, each an override of one generic algorithm:

=================  ==========================================  ============================================
step               ``ivit_torch`` (PyTorch model)              ``ivit_tvm`` (TVM kernels)
=================  ==========================================  ============================================
x0                 floor(-1/s)                                 int32(-1/s - 1), i.e. truncated toward zero
2^r ~ 1 + r/2      (r/2 - x0) * 2^(n-q), exact half, floored   ((r >> 1) - x0) << (n-q), int32 wrapping
softmax n          15                                          16
row sum            exact, clamped to 2^31 - 1                  int32, wrapping
normalisation      floor(e * floor((2^31-1)/sum) / 2^(32-b))   ((2^31-1) / sum * e) >> (32-b), int32 wrapping,
                                                               cast to int b (wrapping)
LayerNorm mean     round half to even of the exact mean        int32 sum / dim truncated toward zero
LayerNorm var      exact sum of squares                        uint32 wrapping sum of squares
LayerNorm output   floor(y * floor((2^31-1)/std) / 2)          (2^31-1)/std * y / 2, int32, truncating
=================  ==========================================  ============================================

In both, x * log2(e) ~ x + floor(x/2) - floor(x/16) (arithmetic shifts), the input is clamped to x >= n*x0,
q = x / x0 (x <= 0 so q = floor(x/x0) >= 0; truncation and floor agree), r = x - q*x0 in (x0, 0].
TVM integer division truncates toward zero (C semantics); a division by zero raises BadValueError.

Scales: ``scale`` is the positive input scale s (x = s * x_int), held as float32 like the trained model's
scaling factors (a spec's decimal token is rounded to binary32).  x0 is derived with the reference's own float
steps, each modelled as the exact operation followed by round-to-nearest-even: ivit_torch floor(-fl32(1/s))
(torch computes -1.0 / tensor as reciprocal(tensor) * -1.0 in float32: for s = fl32(0.04) this gives -25 where
the exact floor(-1/s) is -26); ivit_tvm
trunc(fl64(fl64(-1/s) - 1)) (Python/numpy binary64 arithmetic, then the int32 constant).  ShiftGELU's scale
s*1.702 is fl32(s * fl32(1.702)) resp. fl64(s * 1.702).  The PyTorch model also evaluates its integer
expressions in float32 tensors; ``ivit_torch`` is the exact-integer meaning of those expressions (the float32
evaluation agrees whenever every intermediate is below 2^24; products and sums above that are not modelled).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact.ibert import fl32, fl64, need_scale, parse_scale

VARIANTS = ("ivit_torch", "ivit_tvm")
SOFTMAX_N = {"ivit_torch": 15, "ivit_tvm": 16}
GELU_N = 23
GELU_K = Fraction(1.702)  # exact binary64 value of the 1.702 in both references
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
NEWTON_START = 1 << 16
NEWTON_ITERS = 10


def check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise UnknownModeError(f"unknown I-ViT variant {variant!r}; known: {', '.join(VARIANTS)}")


def wrap32(v: int) -> int:
    """Two's complement int32 wrap-around of an integer."""
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def wrap_bits(v: int, bits: int) -> int:
    """Two's complement wrap-around to a signed ``bits``-bit integer."""
    h = 1 << (bits - 1)
    return ((v + h) & ((1 << bits) - 1)) - h


def tdiv(a: int, b: int) -> int:
    """Integer division truncated toward zero (C/TVM semantics); b == 0 raises BadValueError."""
    if b == 0:
        raise BadValueError("integer division by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def x0_from_value(s: Fraction, variant: str) -> int:
    """x0 for an exact scale value s: floor(-fl32(1/s)) (ivit_torch: torch evaluates -1.0 / tensor as
    reciprocal(tensor) * -1.0 in float32) or trunc(fl64(fl64(-1/s) - 1)) (ivit_tvm: binary64 arithmetic, then
    the int32 constant truncates)."""
    check_variant(variant)
    if variant == "ivit_torch":
        return (-fl32(1 / s)).__floor__()
    t = fl64(fl64(-1 / s) - 1)
    return -((-t).__floor__())  # trunc toward zero of a negative value


def x0_int(scale: object, variant: str) -> int:
    """The integer for -1 at input scale s (s held as float32, see :func:`parse_scale`)."""
    return x0_from_value(parse_scale(scale), variant)


def gelu_x0(scale: object, variant: str) -> int:
    """x0 of ShiftGELU's exp, at scale s*1.702: fl32(s * fl32(1.702)) (torch) or fl64(s * 1.702) (tvm)."""
    check_variant(variant)
    s = parse_scale(scale)
    sg = fl32(s * fl32(GELU_K)) if variant == "ivit_torch" else fl64(s * GELU_K)
    return x0_from_value(sg, variant)


def log2e_shift(x: int) -> int:
    """x + (x >> 1) - (x >> 4): I-ViT's shift approximation of x * log2(e) (arithmetic shifts = floor)."""
    return x + (x >> 1) - (x >> 4)


def shift_exp(x: int, x0: int, n: int, variant: str) -> int:
    """I-ViT shift-exp of one integer x (x0 < 0 from :func:`x0_int`, n the output shift).

    Result ~ exp(s*x) * 2^n * (-x0).  ivit_torch: exact integers, clamp at 0 (never active); ivit_tvm: every
    step in wrapping int32, shift counts outside [0, 31] raise BadValueError (undefined in the kernel).
    """
    check_variant(variant)
    if x0 >= 0:
        raise BadValueError(f"x0 must be negative, got {x0}")
    if variant == "ivit_torch":
        y = max(log2e_shift(x), n * x0)
        q = y // x0
        r = y - q * x0
        t = r - 2 * x0  # 2 * (r/2 - x0)
        k = n - q
        v = t << (k - 1) if k >= 1 else t >> (1 - k)
        return max(v, 0)
    y = wrap32(log2e_shift(wrap32(x)))
    y = max(y, wrap32(n * x0))
    q = tdiv(y, x0)
    r = wrap32(y - wrap32(q * x0))
    e = wrap32((r >> 1) - x0)
    k = n - q
    if not 0 <= k <= 31:
        raise BadValueError(f"shift count {k} outside [0, 31] in the int32 kernel (x={x}, x0={x0})")
    return wrap32(e << k)


def shiftmax(row: Sequence[int], scale: object, variant: str, n: int | None = None, out_bits: int = 8) -> list[int]:
    """Shiftmax of one row of integers at input scale s; output integers at scale 2^-(out_bits-1).

    ivit_torch: e_i = shift_exp(x_i - max), sum clamped to 2^31-1, out = floor(e*floor((2^31-1)/sum)/2^(32-b)).
    ivit_tvm: the same in wrapping int32 with a truncating division, ``>> (32-b)``, then a wrapping cast to
    int b.  n defaults to 15 (torch) / 16 (tvm).
    """
    check_variant(variant)
    if not row:
        raise BadValueError("shiftmax of an empty row")
    if not 2 <= out_bits <= 31:
        raise BadValueError(f"out_bits must be in [2, 31], got {out_bits}")
    n = SOFTMAX_N[variant] if n is None else n
    x0 = x0_int(scale, variant)
    if variant == "ivit_torch":
        m = max(row)
        e = [shift_exp(x - m, x0, n, variant) for x in row]
        total = min(sum(e), INT32_MAX)
        if total == 0:
            raise BadValueError("shiftmax row sum is zero")
        f = INT32_MAX // total
        return [(v * f) >> (32 - out_bits) for v in e]
    xs = [wrap32(x) for x in row]
    m = max(xs)
    e = [shift_exp(wrap32(x - m), x0, n, variant) for x in xs]
    total = 0
    for v in e:
        total = wrap32(total + v)
    f = tdiv(INT32_MAX, total)
    return [wrap_bits(wrap32(f * v) >> (32 - out_bits), out_bits) for v in e]


def shiftgelu(row: Sequence[int], scale: object, variant: str, n: int = GELU_N, out_bits: int = 8) -> list[int]:
    """ShiftGELU of one row: x * sigmoid(1.702 s x) from the shift-exp at scale s*1.702; output scale s*2^-(b-1).

    sigmoid_i = e_i/(e_i + e_max) with e_i = shift_exp(x_i - max), e_max = shift_exp(-max); the sigmoid integer is
    floor(e*floor((2^31-1)/sum)/2^(32-b)) (torch: sum clamped to 2^31-1) or the wrapping int32 form (tvm, whose
    kernel hard-codes b = 8); the result is x_i * sigmoid_i (exact in torch, int32 wrapping in tvm).
    """
    check_variant(variant)
    if not row:
        raise BadValueError("shiftgelu of an empty row")
    x0 = gelu_x0(scale, variant)
    if variant == "ivit_torch":
        m = max(row)
        em = shift_exp(-m, x0, n, variant)
        out = []
        for x in row:
            e = shift_exp(x - m, x0, n, variant)
            total = min(e + em, INT32_MAX)
            if total == 0:
                raise BadValueError("shiftgelu sigmoid denominator is zero")
            sig = (e * (INT32_MAX // total)) >> (32 - out_bits)
            out.append(x * sig)
        return out
    xs = [wrap32(x) for x in row]
    m = max(xs)
    em = shift_exp(wrap32(-m), x0, n, variant)
    out = []
    for x in xs:
        e = shift_exp(wrap32(x - m), x0, n, variant)
        f = tdiv(INT32_MAX, wrap32(e + em))
        sig = wrap32(f * e) >> (32 - out_bits)
        out.append(wrap32(x * sig))
    return out


def newton_sqrt(v: int, variant: str, iters: int = NEWTON_ITERS, start: int = NEWTON_START) -> int:
    """I-LayerNorm's integer square root: k <- floor((k + floor(v/k))/2), a fixed number of times from 2^16.

    ivit_tvm computes in uint32 (v is taken modulo 2^32 and each sum wraps); ivit_torch in exact integers.
    Not isqrt in general: too few iterations for large v, and for small v the halving from 2^16 never
    reaches sqrt(v) (see the theorem ``ivit.newton_sqrt_exact_domain``).  An iterate of 0 (v = 0, or v = 0 mod
    2^32 for ivit_tvm, after 17 or more iterations; or a start <= 0) raises BadValueError: the next step would
    divide by zero.
    """
    check_variant(variant)
    if v < 0 and variant == "ivit_torch":
        raise BadValueError(f"square root of a negative value {v}")
    if start <= 0:
        raise BadValueError(f"Newton square root: the start must be positive, got {start}")
    k = start
    if variant != "ivit_torch":
        v &= 0xFFFFFFFF
    for i in range(iters):
        if k == 0:
            raise BadValueError(zero_iterate(f"of {v}", i, iters))
        k = (k + v // k) >> 1 if variant == "ivit_torch" else ((k + v // k) & 0xFFFFFFFF) >> 1
    return k


def zero_iterate(what: str, i: int, iters: int) -> str:
    """The refusal of a Newton square root whose iterate reached 0 before step i + 1 of ``iters``."""
    return (f"Newton square root {what}: the iterate is 0 before step {i + 1} of {iters}, and the step would "
            f"divide by zero (at most {i} steps are defined here)")


def ilayernorm(row: Sequence[int], variant: str) -> list[int]:
    """I-LayerNorm core of one row (before the per-channel bias): y_i * floor((2^31-1)/std) / 2.

    Output scale sqrt(dim)/2^30 (times the LayerNorm weight).  ivit_torch: mean = round-half-even of the exact
    mean, var = exact sum of squared deviations, std = :func:`newton_sqrt`, out = floor(y*factor/2).  ivit_tvm:
    mean = int32 sum / dim (truncating), squares in int32, var in uint32 (wrapping), factor and product in
    wrapping int32, final division by 2 truncating toward zero.
    """
    check_variant(variant)
    if not row:
        raise BadValueError("layernorm of an empty row")
    d = len(row)
    if variant == "ivit_torch":
        mean = round(Fraction(sum(row), d))  # Fraction.__round__ rounds half to even
        ys = [x - mean for x in row]
        var = sum(y * y for y in ys)
        std = newton_sqrt(var, variant)
        f = INT32_MAX // std
        return [(y * f) >> 1 for y in ys]
    xs = [wrap32(x) for x in row]
    total = 0
    for x in xs:
        total = wrap32(total + x)
    mean = tdiv(total, d)
    ys = [wrap32(x - mean) for x in xs]
    var = 0
    for y in ys:
        var = (var + wrap32(y * y)) & 0xFFFFFFFF
    std = newton_sqrt(var, variant)
    std = wrap32(std)
    f = tdiv(INT32_MAX, std)
    return [tdiv(wrap32(f * y), 2) for y in ys]


# ------------------------------------------------------------------ spec ops
def _int_param(spec, key: str, default: int | None = None) -> int | None:
    v = spec.param.get(key)
    if v is None or v == "default":
        return default
    try:
        return int(v)
    except ValueError:
        raise BadValueError(f"{spec.op}: {key}={v!r} is not an integer") from None


def run_spec(spec, data):
    """Evaluate one registered I-ViT spec on ``data`` (a row of ints; an int for ivit_shift_exp / ivit_sqrt)."""
    from refarith.spec import parse_spec

    spec = parse_spec(spec)
    p = spec.param
    var = p.get("variant", "ivit_torch")
    if spec.op == "ivit_shift_exp":
        return shift_exp(int(data), x0_int(p["scale"], var), _int_param(spec, "n", SOFTMAX_N[var]), var)
    if spec.op == "shiftmax":
        return shiftmax(data, p["scale"], var, _int_param(spec, "n", SOFTMAX_N[var]), _int_param(spec, "out_bits"))
    if spec.op == "shiftgelu":
        return shiftgelu(data, p["scale"], var, _int_param(spec, "n", GELU_N), _int_param(spec, "out_bits"))
    if spec.op == "ivit_sqrt":
        return newton_sqrt(int(data), var, _int_param(spec, "iters"))
    if spec.op == "ivit_layernorm":
        return ilayernorm(data, var)
    raise BadValueError(f"not an I-ViT op: {spec.op}")


def _register() -> None:
    from refarith.spec import OpSchema, Param, register_op

    variant = Param("variant", "ivit_torch", VARIANTS, "ivit_torch: the PyTorch model; ivit_tvm: the TVM kernels")
    scale = Param("scale", lambda f: None, None, "input scale s (required; exact binary64 value of the decimal)")
    n_soft = Param("n", "default", None, "exp output shift; default 15 (ivit_torch) or 16 (ivit_tvm)")
    out_bits = Param("out_bits", "8", None, "output bits b: scale 2^-(b-1)")
    register_op(OpSchema("ivit_shift_exp", 0, (variant, scale, n_soft),
                         "I-ViT shift-based exp of one integer", need_scale))
    register_op(OpSchema("shiftmax", 0, (variant, scale, n_soft, out_bits),
                         "I-ViT Shiftmax of one row of integers", need_scale))
    register_op(OpSchema("shiftgelu", 0, (variant, scale, Param("n", "23", None, "exp output shift"), out_bits),
                         "I-ViT ShiftGELU of one row of integers", need_scale))
    register_op(OpSchema("ivit_sqrt", 0, (variant, Param("iters", "10", None, "Newton iterations from 2^16")),
                         "I-LayerNorm integer Newton square root"))
    register_op(OpSchema("ivit_layernorm", 0, (variant,), "I-LayerNorm core of one row of integers"))


_register()
