"""Integer quantization (INT2..INT8, INT16): symmetric / asymmetric, per tensor / channel / group, exactly.

Inputs are binary32 values; scales are binary32 numbers computed by single
binary32 operations rounded to nearest even (``fl``), as the common PyTorch /
torchao ``choose_qparams`` recipes do; the code is the EXACT quotient x / s
rounded once to an integer (``rne`` or ``rna``), then clamped.  n-bit signed
storage, qmin = -2^(n-1), qmax = 2^(n-1) - 1.

* ``scheme=symmetric``, ``clip=symmetric`` (restricted range): s = fl(amax / qmax),
  q = clamp(round(x / s), -qmax, qmax).
* ``scheme=symmetric``, ``clip=full`` (torchao MappingType.SYMMETRIC):
  s = fl(amax / ((qmax - qmin) / 2)) = fl(amax / (2^(n-1) - 1/2)),
  q = clamp(round(x / s), qmin, qmax).
* ``scheme=asymmetric`` (affine): lo = min(min x, 0), hi = max(max x, 0),
  s = fl(fl(hi - lo) / (qmax - qmin)), zero point z = clamp(qmin - round(lo / s),
  qmin, qmax), q = clamp(round(x / s) + z, qmin, qmax).  (``clip`` is ignored.)
  A range hi - lo that overflows binary32 (an infinite scale in float32
  arithmetic) raises BadValueError.
* A zero range (an all-zero group) gives s = 1; asymmetric then has z = qmin
  and every code qmin (which dequantizes to 0).
* Dequantization: fl((q - z) * s) (z = 0 for symmetric).
* NaN or infinity in the input raises SpecialValueError.

Granularity (``granularity``): ``tensor`` (one scale), ``channel`` (one scale per
index along ``axis``, reducing over every other axis), ``group`` (runs of
``group`` consecutive elements along ``axis``, the last run possibly shorter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from refarith.errors import BadValueError, SpecError, SpecialValueError, UnknownModeError
from refarith.exact.rounding import round_value
from refarith.exact.stochastic import rand_list, round_up
from refarith.exact.value import Value, approx
from refarith.formats import get_format
from refarith.spec import SR_PARAMS, OpSchema, Param, Spec, check_sr_params, make_spec, register_op

SCHEMES = ("symmetric", "asymmetric")
CLIPS = ("symmetric", "full")
GRANULARITIES = ("tensor", "channel", "group")
ROUNDINGS = ("rne", "rna")
BITS = (2, 3, 4, 5, 6, 7, 8, 16)


def fl32(x: Fraction) -> Fraction:
    """x rounded to nearest even binary32 (finite result expected)."""
    f = get_format("binary32")
    r = round_value(Value.of(x), f, "rne", "saturate").code
    return f.finite_value(r)


def round_int(q: Fraction, rounding: str, rand: int | None = None, rand_bits: int | None = None,
              sr_variant: str = "a") -> int:
    """Round an exact rational to an integer: ``rne`` ties to even, ``rna`` ties away from zero, ``sr`` the
    magnitude stochastically with random integer ``rand`` (:func:`refarith.exact.stochastic.round_up`)."""
    if rounding == "sr":
        m = abs(q)
        n = m.numerator // m.denominator
        n += round_up(sr_variant, m - n, rand, rand_bits, n, Fraction(1))
        return -n if q < 0 else n
    n = q.numerator // q.denominator
    frac = q - n
    if frac > Fraction(1, 2) or (frac == Fraction(1, 2) and (rounding == "rna" and q > 0 or
                                                              rounding == "rne" and n % 2 == 1)):
        return n + 1
    return n


def check_params(bits: int, scheme: str, clip: str, rounding: str) -> None:
    if bits not in BITS:
        raise BadValueError(f"integer width must be one of {BITS}, got {bits!r}")
    if scheme not in SCHEMES:
        raise UnknownModeError(f"unknown scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if clip not in CLIPS:
        raise UnknownModeError(f"unknown clip {clip!r}; expected one of {', '.join(CLIPS)}")
    if rounding not in ROUNDINGS:
        raise UnknownModeError(f"unknown rounding {rounding!r}; expected one of {', '.join(ROUNDINGS)}")


@dataclass(frozen=True)
class IntGroup:
    """One quantized group: binary32 scale (exact value), zero point, integer codes (signed values)."""

    scale: Fraction
    zero_point: int
    q: tuple[int, ...]


def quantize_group(values: list[float], bits: int, scheme: str = "symmetric", clip: str = "symmetric",
                   rounding: str = "rne", *, rand: list[int] | None = None, rand_bits: int | None = None,
                   sr_variant: str = "a") -> IntGroup:
    """Quantize one group of binary32 values (Python floats) as the module docstring says.  ``rounding="sr"``:
    value i is rounded stochastically with ``rand[i]`` (k = ``rand_bits``, rule ``sr_variant``); the
    asymmetric zero point is rounded to nearest even."""
    check_params(bits, scheme, clip, "rne" if rounding == "sr" else rounding)
    xs = []
    for v in values:
        if not math.isfinite(v):  # the input is a binary32 value held as a Python float
            raise SpecialValueError(f"integer quantization of {v!r}: NaN and infinity have no integer code")
        xs.append(Fraction(v))
    rs = rand_list(rand, len(xs), rand_bits, "an integer quantization group") if rounding == "sr" else \
        [None] * len(xs)
    rq = lambda q, r: round_int(q, rounding, r, rand_bits, sr_variant)  # noqa: E731
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if scheme == "symmetric":
        amax = max((abs(x) for x in xs), default=Fraction(0))
        den = Fraction(qmax) if clip == "symmetric" else Fraction(qmax - qmin, 2)
        s = fl32(amax / den) if amax else Fraction(1)
        if s == 0:
            s = Fraction(1)
        lo = -qmax if clip == "symmetric" else qmin
        return IntGroup(s, 0, tuple(max(lo, min(qmax, rq(x / s, r))) for x, r in zip(xs, rs)))
    lo_v = min(min(xs, default=Fraction(0)), Fraction(0))
    hi_v = max(max(xs, default=Fraction(0)), Fraction(0))
    f32 = get_format("binary32")
    if round_value(Value.of(hi_v - lo_v), f32, "rne", "inf").code == f32.inf_codes[0]:
        raise BadValueError(f"asymmetric quantization: the range max - min = {approx(hi_v - lo_v, 6)} overflows "
                            "binary32 (the scale would be infinite)")
    s = fl32(fl32(hi_v - lo_v) / (qmax - qmin))
    if s == 0:
        s = Fraction(1)
    z = max(qmin, min(qmax, qmin - round_int(lo_v / s, "rne" if rounding == "sr" else rounding)))
    return IntGroup(s, z, tuple(max(qmin, min(qmax, rq(x / s, r) + z)) for x, r in zip(xs, rs)))


def dequantize_group(g: IntGroup) -> list[Fraction | float]:
    """fl((q - z) * s) for every code: the exact product rounded once to nearest even binary32, as an IEEE 754
    binary32 multiply does, so a product beyond FLT_MAX by half an ulp or more is ``math.inf`` / ``-math.inf``
    (e.g. the codes +-127 of an int8 tensor whose amax is FLT_MAX: 127 fl(FLT_MAX / 127) > FLT_MAX); every
    other result is its exact Fraction."""
    f = get_format("binary32")
    out: list[Fraction | float] = []
    for q in g.q:
        r = round_value(Value.of((q - g.zero_point) * g.scale), f, "rne", "inf")
        out.append(f.finite_value(r.code) if f.is_finite_code(r.code) else Value.inf(r.code >> 31).to_float())
    return out


def intquant_spec(bits: int, scheme: str = "symmetric", granularity: str = "tensor", group: int = 128,
                  clip: str = "symmetric", rounding: str = "rne") -> Spec:
    """Canonical id, e.g.
    ``int_quantize(int8,scheme=symmetric,granularity=group,group=128,clip=symmetric,rounding=rne)``."""
    return make_spec("int_quantize", (f"int{bits}",), scheme=scheme, granularity=granularity, group=group, clip=clip,
                     rounding=rounding)


def _validate(spec: Spec) -> None:
    f = spec.fmt(0)
    if f.kind != "int" or not f.signed or f.bits not in BITS or f.symmetric:
        raise SpecError(f"{spec}: the format must be one of int2..int8, int16")
    g = spec.param["group"]
    if not g.isdigit() or int(g) < 1:
        raise SpecError(f"{spec}: group must be a positive integer")
    check_sr_params(spec)


register_op(OpSchema(
    "int_quantize", 1,
    (
        Param("scheme", "symmetric", SCHEMES, "symmetric (zero point 0) or asymmetric (affine, zero point)"),
        Param("granularity", "tensor", GRANULARITIES, "one scale per tensor, per channel along axis, or per group"),
        Param("group", "128", None, "group size for granularity=group"),
        Param("clip", "symmetric", CLIPS, "symmetric: codes in +-qmax, s = amax/qmax; full: s = amax/(qmax+1/2)"),
        Param("rounding", "rne", ROUNDINGS + ("sr",), "rounding of the exact quotient x/s (sr: stochastic, one "
              "k-bit random integer per element; the zero point rounds to nearest even)"),
        *SR_PARAMS,
    ),
    "integer quantization with binary32 scales; the exact quotient x/s rounded once and clamped",
    _validate,
))
