"""I-BERT integer-only operators: i-exp, integer softmax, i-erf / i-GELU, i-sqrt, integer LayerNorm (exact models).

Source: S. Kim, A. Gholami, Z. Yao, M. W. Mahoney, K. Keutzer, "I-BERT: Integer-only BERT Quantization"
(ICML 2021), Algorithms 1-4, and its public code (``IntSoftmax``, ``IntGELU``, ``IntLayerNorm`` of the I-BERT
repository and of the HuggingFace ``ibert`` model).

Integer constants are derived from float coefficients and the input scale exactly as the reference does it:
the coefficients are Python floats (binary64; ``coef[1] /= coef[0]`` and ``coef[2] /= coef[0]`` are binary64
divisions), the scale is a float32 tensor, and every expression mixing them is a float32 tensor operation
(the binary64 scalar is first rounded to float32).  Each such step is modelled as the exact operation followed
by round-to-nearest-even to binary32 (``fl32``) or binary64 (``fl64``); then ``floor`` gives the integer.
``scalar / tensor`` is evaluated by torch as ``reciprocal(tensor) * scalar`` (``rdiv32``: two float32
roundings, confirmed against torch 2.13 on 20000 scales; a single rounded division differs in 10 of them):

* i-exp (softmax): x0 = floor(rdiv32(-0.6931, s)); b = floor(rdiv32(c1, s)), c = floor(rdiv32(c2, fl32(s*s)))
  with c1 = fl64(0.96963238/0.35815147), c2 = fl64(1/0.35815147);
  x <- max(x, n*x0), q = floor(x/x0), r = x - q*x0, z = (r + b)*r + c, exp = max(z * 2^(n-q), 0), n = 30.
  Output scale fl32(0.35815147 * fl32(s*s)) / 2^n.
* i-erf at scale t = fl32(s / fl32(1.4142)) (tensor / scalar: a true float32 division):
  b = floor(rdiv32(-1.769, t)), c = floor(rdiv32(c2, fl32(t*t))) with c2 = fl64(1/-0.2888);
  erf_int = floor(sign(x) * ((min(|x|, -b) + b)^2 + c) / 2^14); scale S_erf = fl32(fl32(t*t) * fl32(-0.2888)) * 2^14.
* i-GELU: one = floor(1 / S_erf) (the reference's ``1.0 // S_erf``; torch's float floor division returns the
  floor of the exact quotient except in rare near-integer cases, not modelled), out = x * (erf_int + one),
  scale s * S_erf / 2.
* integer softmax: e_i = i-exp(x_i - max); the reference requantizes e to 16 bits with a calibrated activation
  quantizer before summing.  Modelled (``act_bits`` = 16) as round-half-even(e * (2^15 - 1) / E0) with E0 = the
  i-exp of 0 (the value for exp(0) = 1, i.e. the calibrated range); ``act_bits=0`` skips it (the paper's
  Algorithm 3).  Then out = floor(e * floor(2^32 / sum) / 2^(32 - b)), scale 2^-b.
* i-sqrt (Algorithm 4): 0 -> 0; k = 2^ceil(bitlen(v)/2); repeat k' = floor((k + floor(v/k))/2) until k' >= k.
* LayerNorm: mean = round-half-even of the exact mean, y = x - mean, var = sum(floor(y/2^shift)^2),
  std = isqrt(var) * 2^shift, out = floor(y * floor(2^31/std) / 2); scale sqrt(dim)/2^30.

``q = floor(x/x0)`` and the floors of integer quotients are exact here; the reference evaluates them in float32
tensors, which agrees whenever the operands are below 2^24.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache

from refarith.errors import BadValueError
from refarith.exact.rounding import floor_log2
from refarith.exact.value import approx

EXP_X0 = -0.6931
EXP_N = 30
EXP_COEF = (0.35815147, 0.96963238, 1.0)
ERF_COEF = (-0.2888, -1.769, 1.0)
ERF_N = 14
GELU_K = 1.4142


def fl(x: Fraction, p: int) -> Fraction:
    """Round a rational to the nearest p-bit-significand binary float, ties to even (normal range assumed)."""
    if x == 0:
        return Fraction(0)
    sign = -1 if x < 0 else 1
    a = abs(x)
    e = floor_log2(a) - (p - 1)
    m = a / Fraction(2) ** e  # in [2^(p-1), 2^p)
    q, rem = divmod(m.numerator, m.denominator)
    half = Fraction(rem, m.denominator)
    if half > Fraction(1, 2) or (half == Fraction(1, 2) and q & 1):
        q += 1
    return sign * q * Fraction(2) ** e


def fl32(x: Fraction) -> Fraction:
    if x != 0 and not (Fraction(2) ** -126 <= abs(x) < Fraction(2) ** 128):
        raise BadValueError(f"value {approx(x)} outside the normal binary32 range")
    return fl(x, 24)


def fl64(x: Fraction) -> Fraction:
    return fl(x, 53)


def f(x: float) -> Fraction:
    return Fraction(x)


def rdiv32(c: Fraction, t: Fraction) -> Fraction:
    """A Python scalar divided by a float32 tensor, as torch evaluates it: reciprocal(t) * c, both in float32."""
    return fl32(fl32(1 / t) * fl32(c))


def parse_scale(scale: object) -> Fraction:
    """The input scale as the references hold it: a float32 tensor made from a Python float.

    A decimal string is that Python float literal: the decimal rounded to nearest-even binary64, then to
    binary32 (the two roundings torch.tensor(0.05) performs); a float is its exact value rounded to binary32;
    an int or Fraction is rounded to binary32 directly.  All roundings are exact-rational (:func:`fl`).
    """
    if isinstance(scale, bool):
        raise BadValueError(f"scale {scale!r} is not a number")
    try:
        if isinstance(scale, str):
            s = Fraction(scale.strip())
            s = fl64(s) if s else s
        else:
            s = Fraction(scale)
    except (TypeError, ValueError, OverflowError, ZeroDivisionError):
        raise BadValueError(f"scale {scale!r} is not a number") from None
    if s <= 0:
        raise BadValueError(f"scale must be positive, got {scale!r}")
    return fl32(s)


def _floor(x: Fraction) -> int:
    return x.__floor__()


@lru_cache(maxsize=256)
def exp_constants(scale: object) -> tuple[int, int, int, Fraction]:
    """(x0, b, c, output scale before the 2^-n) of i-exp at input scale s, derived as the reference does."""
    s = parse_scale(scale)
    c1 = fl64(f(EXP_COEF[1]) / f(EXP_COEF[0]))
    c2 = fl64(f(EXP_COEF[2]) / f(EXP_COEF[0]))
    s2 = fl32(s * s)
    x0 = _floor(rdiv32(f(EXP_X0), s))
    b = _floor(rdiv32(c1, s))
    c = _floor(rdiv32(c2, s2))
    if x0 >= 0:
        raise BadValueError(f"scale {approx(s)} too large: x0 = {x0} is not negative")
    return x0, b, c, fl32(fl32(f(EXP_COEF[0])) * s2)


def i_exp_int(x: int, x0: int, b: int, c: int, n: int = EXP_N) -> int:
    """I-BERT i-exp core from precomputed constants: clamp, range-reduce by x0 (~ -ln2), polynomial, shift."""
    y = max(x, n * x0)
    q = y // x0
    r = y - q * x0
    z = (r + b) * r + c
    k = n - q  # q <= n after the clamp (x <= 0 assumed by callers; q < 0 for x > 0)
    v = z << k if k >= 0 else z >> -k
    return max(v, 0)


def i_exp(x: int, scale: object, n: int = EXP_N) -> int:
    """i-exp of one integer x <= 0 at input scale s; the result times the output scale approximates exp(s*x)."""
    x0, b, c, _ = exp_constants(scale)
    return i_exp_int(x, x0, b, c, n)


def ibert_softmax(row: Sequence[int], scale: object, n: int = EXP_N, out_bits: int = 8,
                  act_bits: int = 16) -> list[int]:
    """Integer softmax of one row at input scale s: output integers at scale 2^-out_bits (see module doc)."""
    if not row:
        raise BadValueError("softmax of an empty row")
    if not 1 <= out_bits <= 32:
        raise BadValueError(f"out_bits must be in [1, 32], got {out_bits}")
    x0, b, c, _ = exp_constants(scale)
    m = max(row)
    e = [i_exp_int(x - m, x0, b, c, n) for x in row]
    if act_bits:
        e0 = i_exp_int(0, x0, b, c, n)
        if e0 <= 0:
            raise BadValueError("i-exp(0) is not positive at this scale")
        e = [requant_half_even(v, (1 << (act_bits - 1)) - 1, e0) for v in e]
    total = sum(e)
    if total == 0:
        raise BadValueError("softmax row sum is zero")
    fct = (1 << 32) // total
    return [(v * fct) >> (32 - out_bits) for v in e]


def requant_half_even(v: int, num: int, den: int) -> int:
    """round(v * num / den), ties to even, clamped to [0, num] (the 16-bit activation requantization)."""
    q, r = divmod(v * num, den)
    if 2 * r > den or (2 * r == den and q & 1):
        q += 1
    return min(max(q, 0), num)


@lru_cache(maxsize=256)
def erf_constants(scale: object) -> tuple[int, int, Fraction]:
    """(b, c, S_erf) of i-erf for a GELU input scale s (t = s/1.4142 in float32)."""
    s = parse_scale(scale)
    t = fl32(s / fl32(f(GELU_K)))
    c2 = fl64(f(ERF_COEF[2]) / f(ERF_COEF[0]))
    b = _floor(rdiv32(f(ERF_COEF[1]), t))
    c = _floor(rdiv32(c2, fl32(t * t)))
    s_erf = fl32(fl32(t * t) * fl32(f(ERF_COEF[0]))) * (1 << ERF_N)
    return b, c, s_erf


def i_erf_int(x: int, b: int, c: int, n: int = ERF_N) -> int:
    """floor(sign(x) * ((min(|x|, -b) + b)^2 + c) / 2^n)."""
    sg = (x > 0) - (x < 0)
    a = min(abs(x), -b)
    return (sg * ((a + b) ** 2 + c)) >> n


def i_gelu(x: int, scale: object) -> int:
    """i-GELU of one integer at input scale s: x * (i-erf(x) + floor(1/S_erf)), scale s*S_erf/2."""
    b, c, s_erf = erf_constants(scale)
    one = _floor(1 / s_erf)
    return x * (i_erf_int(x, b, c) + one)


def i_sqrt(v: int) -> int:
    """I-BERT Algorithm 4: Newton iteration from 2^ceil(bits/2), stopping when the iterate stops decreasing."""
    if v < 0:
        raise BadValueError(f"i-sqrt of a negative value {v}")
    if v == 0:
        return 0
    k = 1 << ((v.bit_length() + 1) // 2)
    while True:
        k1 = (k + v // k) >> 1
        if k1 >= k:
            return k
        k = k1


def ibert_layernorm(row: Sequence[int], shift: int = 0) -> list[int]:
    """Integer LayerNorm core of one row (before the bias): floor(y * floor(2^31/std) / 2), scale sqrt(dim)/2^30."""
    if not row:
        raise BadValueError("layernorm of an empty row")
    mean = round(Fraction(sum(row), len(row)))
    ys = [x - mean for x in row]
    var = sum((y >> shift) ** 2 for y in ys)
    std = i_sqrt(var) << shift
    if std == 0:
        raise BadValueError("layernorm of a constant row (std = 0)")
    fct = (1 << 31) // std
    return [(y * fct) >> 1 for y in ys]


# ------------------------------------------------------------------ spec ops
def run_spec(spec, data):
    """Evaluate one registered I-BERT spec on ``data`` (an int or a row of ints)."""
    from refarith.spec import parse_spec

    spec = parse_spec(spec)
    p = spec.param
    if spec.op == "ibert_exp":
        return i_exp(int(data), p["scale"], int(p["n"]))
    if spec.op == "ibert_softmax":
        return ibert_softmax(data, p["scale"], int(p["n"]), int(p["out_bits"]), int(p["act_bits"]))
    if spec.op == "ibert_erf":
        b, c, _ = erf_constants(p["scale"])
        return i_erf_int(int(data), b, c)
    if spec.op == "ibert_gelu":
        return i_gelu(int(data), p["scale"])
    if spec.op == "ibert_sqrt":
        return i_sqrt(int(data))
    if spec.op == "ibert_layernorm":
        return ibert_layernorm(data, int(p["shift"]))
    raise BadValueError(f"not an I-BERT op: {spec.op}")


def need_scale(spec) -> None:
    """Spec validation of ops with a ``scale`` parameter: present, and a positive binary32-normal number."""
    from refarith.errors import SpecError

    if "scale" not in spec.param:
        raise SpecError(f"{spec.op} needs an explicit scale=<positive decimal> parameter")
    try:
        parse_scale(spec.param["scale"])
    except BadValueError as e:
        raise SpecError(f"{spec}: {e}") from None


def _register() -> None:
    from refarith.spec import OpSchema, Param, register_op

    scale = Param("scale", lambda f: None, None, "input scale s (required; held as float32 like the reference)")
    n_exp = Param("n", str(EXP_N), None, "i-exp output shift")
    register_op(OpSchema("ibert_exp", 0, (scale, n_exp), "I-BERT i-exp of one integer", need_scale))
    register_op(OpSchema("ibert_softmax", 0, (scale, n_exp, Param("out_bits", "8", None, "output scale 2^-b"),
                                              Param("act_bits", "16", None, "requantization of exp; 0: none")),
                         "I-BERT integer softmax of one row", need_scale))
    register_op(OpSchema("ibert_erf", 0, (scale,), "I-BERT i-erf of one integer (GELU input scale)", need_scale))
    register_op(OpSchema("ibert_gelu", 0, (scale,), "I-BERT i-GELU of one integer", need_scale))
    register_op(OpSchema("ibert_sqrt", 0, (), "I-BERT i-sqrt (Algorithm 4)"))
    register_op(OpSchema("ibert_layernorm", 0, (Param("shift", "0", None, "pre-square right shift"),),
                         "I-BERT integer LayerNorm core of one row"))


_register()
