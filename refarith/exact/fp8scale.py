"""Per-tensor FP8 scaling recipes of Transformer Engine, exactly, every binary32 operation rounded as its kernels
round it (``fl`` = binary32 round to nearest even).

Sources: Transformer Engine ``common/recipe/recipe_common.cuh`` (``compute_scale_from_amax``, current scaling),
``common/recipe/delayed_scaling.cu`` (``amax_and_scale_update``, delayed scaling) and the ``Float8CurrentScaling``
/ ``DelayedScaling`` recipes of ``common/recipe/__init__.py``; Micikevicius et al., "FP8 formats for deep
learning" (arXiv 2209.05433) for per-tensor scaling.  The scale multiplies: q = cast_F(fl(x * scale)), x ~ q *
scale_inv with scale_inv = fl(1 / scale).  F is ocp_e4m3 (max 448) or ocp_e5m2 (max 57344); the cast is RNE and
saturating (``cvt.rn.satfinite``: finite overflow and +-inf give +-max, NaN stays NaN).

``fp8_current_scale(F,eps=..,pow2=..)`` (``Float8CurrentScaling``): amax = max |x_i| with fmaxf semantics (a NaN
element is ignored, an infinity counts); a = max(amax, eps) (``amax_epsilon``, default 0); scale = 1 when a is
0, inf or NaN, else fl(F_max / a), replaced by the binary32 maximum when that is inf (``value_for_inf``: the
input type's largest finite value, binary32 here); ``pow2=true`` (``power_2_scale``, the default of
Transformer Engine's blockwise recipes) then clears the significand bits (scale & 0xFF800000: the power of two
at or below the scale).

``fp8_delayed_scale(F,h=..,algo=..,margin=..,bad_history=..)`` (``DelayedScaling``): from an amax history of h
binary32 values (index 0 the most recent) and the previous scale: amax = the most recent entry (``most_recent``)
or fmaxf over every entry starting from 0 (``max``: NaN entries ignored); scale = fl(fl(F_max * 2^-margin) /
amax) when amax is finite and > 0, else the previous scale; x is quantized with that scale.
``bad_history=error`` (default): a history holding NaN or an infinity, or a previous scale that is not a positive
finite binary32, is outside the spec (BadValueError naming the entry), never a silent fallback;
``bad_history=te``: Transformer Engine's kernel behaviour above.  An empty history (h = 0) is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from refarith.errors import BadValueError, SpecError
from refarith.exact.ops import decode, div, mul
from refarith.exact.rounding import round_value
from refarith.exact.value import Value
from refarith.spec import OpSchema, Param, Spec, make_spec, register_op

F32 = "binary32"
FP8 = ("ocp_e4m3", "ocp_e5m2")
ALGOS = ("max", "most_recent")
BAD_HISTORY = ("error", "te")
F32_ONE = 0x3F800000
F32_MAX = 0x7F7FFFFF


@dataclass(frozen=True)
class Scaled:
    """binary32 codes of amax, scale and scale_inv, and the FP8 codes of the tensor."""

    amax: int
    scale: int
    scale_inv: int
    codes: tuple[int, ...]


def _special(c: int) -> bool:
    return (c & 0x7F800000) == 0x7F800000


def _is_nan(c: int) -> bool:
    return _special(c) and (c & 0x7FFFFF) != 0


def fmax_amax(codes: list[int], start: int = 0) -> int:
    """fmaxf(...fmaxf(start, |c_0|)..., |c_n|) on binary32 codes: NaN operands are ignored."""
    best = start
    for c in codes:
        m = c & 0x7FFFFFFF
        if _is_nan(m):
            continue
        if m > best:  # non-negative binary32 values order as their codes
            best = m
    return best


def fmaxf_signed(codes: list[int]) -> int:
    """fmaxf over signed binary32 codes starting from +0 (NaN ignored): the history reduction of delayed scaling."""
    best, bv = 0, Fraction(0)
    for c in codes:
        v = decode(c, F32)
        if v.is_nan:
            continue
        if v.is_inf:
            if not v.sign:
                return c
            continue
        if v.fraction > bv:
            best, bv = c, v.fraction
    return best


def fp8_max_bits(fmt: str) -> int:
    """binary32 code of the FP8 format's largest finite value (448 or 57344)."""
    from refarith.formats import get_format

    return round_value(Value.of(get_format(fmt).max), F32).code


def quantize_with_scale(codes: list[int], scale: int, fmt: str) -> tuple[int, ...]:
    """cast_F(fl(x * scale)) for every binary32 code (RNE, saturating; NaN -> NaN)."""
    return tuple(round_value(decode(mul(c, scale, F32).code, F32), fmt, "rne", "saturate").code for c in codes)


def current_scale_bits(amax: int, fmt: str, eps: int = 0, pow2: bool = False) -> int:
    """Transformer Engine's compute_scale_from_amax on binary32 codes (see the module docstring)."""
    a = amax
    if not _is_nan(a) and (a & 0x7FFFFFFF) < eps:  # amax < eps (amax >= 0 here)
        a = eps
    if _special(a) or a & 0x7FFFFFFF == 0:
        return F32_ONE
    s = div(fp8_max_bits(fmt), a, F32).code
    if _special(s):
        s = F32_MAX
    if pow2:
        s &= 0xFF800000
    return s


def current_scaling(codes: list[int], fmt: str, eps: int = 0, pow2: bool = False) -> Scaled:
    """``fp8_current_scale``: amax, scale, scale_inv and the FP8 codes of one tensor of binary32 codes."""
    amax = fmax_amax(codes)
    s = current_scale_bits(amax, fmt, eps, pow2)
    return Scaled(amax, s, div(F32_ONE, s, F32).code, quantize_with_scale(codes, s, fmt))


def check_history(history: list[int], prev_scale: int) -> None:
    """BadValueError naming the first bad entry: an empty history, NaN or infinity in it, or a previous scale that
    is not a positive finite binary32."""
    if not history:
        raise BadValueError("amax history is empty; delayed scaling needs at least one recorded amax")
    for i, c in enumerate(history):
        if c & 0x80000000 and c & 0x7FFFFFFF and not _is_nan(c):
            raise BadValueError(f"amax history entry {i} is negative; an amax is a magnitude")
        if _special(c):
            raise BadValueError(f"amax history entry {i} is {'NaN' if _is_nan(c) else 'an infinity'}; delayed "
                                "scaling is undefined on it (bad_history=te models Transformer Engine's fallback)")
    if _special(prev_scale) or prev_scale & 0x80000000 or prev_scale == 0:
        raise BadValueError(f"previous scale {prev_scale:#010x} is not a positive finite binary32")


def delayed_scale_bits(history: list[int], prev_scale: int, fmt: str, algo: str = "max", margin: int = 0,
                       bad_history: str = "error") -> int:
    """The scale of Transformer Engine's amax_and_scale_update (see the module docstring)."""
    if algo not in ALGOS:
        raise BadValueError(f"unknown amax algorithm {algo!r}; expected one of {', '.join(ALGOS)}")
    if bad_history not in BAD_HISTORY:
        raise BadValueError(f"unknown bad_history {bad_history!r}; expected one of {', '.join(BAD_HISTORY)}")
    if not history:
        raise BadValueError("amax history is empty; delayed scaling needs at least one recorded amax")
    if bad_history == "error":
        check_history(history, prev_scale)
    amax = history[0] if algo == "most_recent" else fmaxf_signed(history)
    if _special(amax) or amax & 0x80000000 or amax & 0x7FFFFFFF == 0:
        return prev_scale
    scaled_max = round_value(Value.of(decode(fp8_max_bits(fmt), F32).mag * Fraction(1, 1 << margin)), F32).code
    return div(scaled_max, amax, F32).code


def delayed_scaling(history: list[int], prev_scale: int, codes: list[int], fmt: str, algo: str = "max",
                    margin: int = 0, bad_history: str = "error") -> Scaled:
    """``fp8_delayed_scale``: the scale from the history, its inverse and the FP8 codes of the tensor; amax is the
    tensor's own fmaxf amax (what the step records into the next history)."""
    s = delayed_scale_bits(history, prev_scale, fmt, algo, margin, bad_history)
    return Scaled(fmax_amax(codes), s, div(F32_ONE, s, F32).code, quantize_with_scale(codes, s, fmt))


def parse_eps(v: str) -> int:
    """binary32 code of a non-negative decimal ``eps`` that is a binary32 value (SpecError otherwise)."""
    try:
        f = Fraction(v)
    except (ValueError, ZeroDivisionError):
        raise SpecError(f"eps={v!r} is not a number") from None
    if f < 0:
        raise SpecError(f"eps={v!r} must be non-negative")
    r = round_value(Value.of(f), F32)
    if not decode(r.code, F32).is_finite:
        raise SpecError(f"eps={v!r} exceeds the binary32 range")
    if decode(r.code, F32).mag != f:
        raise SpecError(f"eps={v!r} is not a binary32 value (nearest: {decode(r.code, F32).mag})")
    return r.code


def current_spec(fmt: str = "ocp_e4m3", eps: str = "0", pow2: bool = False) -> Spec:
    """Canonical id, e.g. ``fp8_current_scale(ocp_e4m3,eps=0,pow2=false)``."""
    return make_spec("fp8_current_scale", (fmt,), eps=eps, pow2="true" if pow2 else "false")


def delayed_spec(fmt: str = "ocp_e4m3", h: int = 16, algo: str = "max", margin: int = 0,
                 bad_history: str = "error") -> Spec:
    """Canonical id, e.g. ``fp8_delayed_scale(ocp_e4m3,h=16,algo=max,margin=0,bad_history=error)``."""
    return make_spec("fp8_delayed_scale", (fmt,), h=h, algo=algo, margin=margin, bad_history=bad_history)


MAX_HISTORY = 1 << 16
"""The longest amax history a spec may name (Transformer Engine's default length is 1024)."""


def _check_fmt(spec: Spec) -> None:
    if spec.formats[0] not in FP8:
        raise SpecError(f"{spec}: the FP8 format must be ocp_e4m3 or ocp_e5m2")


def _validate_current(spec: Spec) -> None:
    _check_fmt(spec)
    parse_eps(spec.param["eps"])


def _validate_delayed(spec: Spec) -> None:
    _check_fmt(spec)
    p = spec.param
    if not p["h"].isdigit() or int(p["h"]) < 1:
        raise SpecError(f"{spec}: the amax history length h must be a positive integer (an empty history has no "
                        "amax)")
    if int(p["h"]) > MAX_HISTORY:
        raise SpecError(f"{spec}: the amax history length h must be at most {MAX_HISTORY}")
    if not p["margin"].isdigit() or int(p["margin"]) > 64:
        raise SpecError(f"{spec}: margin must be an integer in 0..64")


register_op(OpSchema(
    "fp8_current_scale", 1,
    (
        Param("eps", "0", None, "amax_epsilon: amax is raised to at least eps (a binary32 value)"),
        Param("pow2", "false", ("false", "true"), "power_2_scale: clear the scale's significand bits"),
    ),
    "Transformer Engine current scaling: scale = fl(F_max / amax) of the tensor, q = cast_F(fl(x * scale))",
    _validate_current,
))

register_op(OpSchema(
    "fp8_delayed_scale", 1,
    (
        Param("h", "16", None, "amax history length (Transformer Engine's default is 1024)"),
        Param("algo", "max", ALGOS, "amax_compute_algo: max over the history or the most recent entry"),
        Param("margin", "0", None, "scale = fl(fl(F_max * 2^-margin) / amax)"),
        Param("bad_history", "error", BAD_HISTORY, "NaN/inf in the history: error (outside the spec) or te "
              "(Transformer Engine: NaN ignored by max, non-finite amax keeps the previous scale)"),
    ),
    "Transformer Engine delayed scaling: the scale from an amax history (and the previous scale), q = "
    "cast_F(fl(x * scale))",
    _validate_delayed,
))
