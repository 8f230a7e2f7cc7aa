"""Blockwise FP8 quantization (DeepSeek-V3 1x128 activation tiles and 128x128 weight tiles), exactly, every
binary32 operation rounded to nearest even as the reference kernels round it (``fl``).

Sources: DeepSeek-V3 technical report (arXiv 2412.19437, §3.3.1, "fine-grained quantization": 1x128 tiles for
activations, 128x128 blocks for weights, one scale per tile from its amax); DeepSeek-V3 ``inference/kernel.py``
(``act_quant``: s = amax / 448, y = x / s) and DeepGEMM ``deep_gemm/utils/math.py`` (``per_token_cast_to_fp8``,
``per_block_cast_to_fp8``: amax clamped below at 1e-4, sf = amax / 448, ``ceil_to_ue8m0`` for the UE8M0 scales of
DeepSeek-V3.1 and later, y = x * (1 / sf)).  The scale is the dequantization multiplier, x ~ q * sf, as
:mod:`refarith.exact.gemm` (``scaled_mm(scale=block)``) consumes it.

For one tile (a row of B values for ``tile=1x<B>``, a B x B block for ``tile=<B>x<B>``; B = 128 in the sources):

* a = max |x_i| over the tile (a NaN element makes a NaN, as torch's ``amax``); ``eps=deepgemm``: a = max(a,
  fl(1e-4)) (torch clamps a binary32 tensor with the Python float 1e-4, i.e. the binary32 0x38D1B717);
  ``eps=none`` (DeepSeek-V3's first ``act_quant``): no floor, so an all-zero tile has sf = 0 and NaN codes.
* sf = fl(a / 448) (F = ocp_e4m3; F_max for ocp_e5m2).  ``scale=fp32``: the scale is sf (binary32 code).
  ``scale=ue8m0``: sf' = 2^ceil(log2 sf), with ceil(log2) computed exactly from the bits (DeepGEMM's reference
  evaluates a binary32 ``log2``, which rounds to the integer just above a power of two and then under-scales:
  that is a different, library-specific rule); the scale is the E8M0 code of sf'.  When sf' has no E8M0 code (sf
  zero, NaN or infinite, or 2^ceil below 2^-127) the scale is 0xFF (NaN) and every element is NaN, as an MX NaN
  scale makes its block NaN.
* elements: ``division=reciprocal`` (DeepGEMM): q = cast_F(fl(x * fl(1 / sf))); ``division=divide``
  (DeepSeek-V3 ``act_quant``): q = cast_F(fl(x / sf)); the cast is RNE and saturating (torch's CPU float8
  conversion and ``cvt.rn.satfinite``; no element exceeds F_max except by the last binary32 rounding of x * r,
  which rounds back to F_max).  Every NaN element is F's NaN code 0x7F (payloads are not modelled).
* ``division=scale`` with ``eps=torchao`` (torchao ``prototype/blockwise_fp8_training/kernels.py``,
  ``torch_blockwise_scale_act_quant_lhs`` / ``torch_blockwise_scale_weight_quant``): a multiplicative scale
  s = fl(fl64(F_max / max(a, 1e-12))) computed in binary64 and rounded to binary32, q = cast_F(fl(x * s)) (clamped,
  so saturating), and the reported dequantization scale fl(1 / s).  (For a >= 1e-12 the two roundings equal one:
  53 >= 2 * 24 + 2 bits.)  ``scale=ue8m0`` does not combine with ``division=scale``.
"""

from __future__ import annotations

from fractions import Fraction

from refarith.errors import BadValueError, SpecError
from refarith.exact.ops import decode, div, mul
from refarith.exact.rounding import floor_log2, round_value
from refarith.exact.value import Value
from refarith.spec import OpSchema, Param, Spec, make_spec, register_op

F32 = "binary32"
FP8 = ("ocp_e4m3", "ocp_e5m2")
SCALES = ("fp32", "ue8m0")
DIVISIONS = ("reciprocal", "divide", "scale")
EPS = ("deepgemm", "none", "torchao")
EPS_DEEPGEMM = 0x38D1B717  # fl(1e-4)
EPS_TORCHAO = Fraction(1e-12)  # the binary64 value torchao's blockwise reference clamps a binary64 amax with
F32_ONE = 0x3F800000
F32_NAN = 0x7FC00000


def _special(c: int) -> bool:
    return (c & 0x7F800000) == 0x7F800000


def _is_nan(c: int) -> bool:
    return _special(c) and (c & 0x7FFFFF) != 0


def tile_amax(codes: list[int]) -> int:
    """max |x| of binary32 codes; NaN when any element is NaN (torch ``amax``)."""
    best = 0
    for c in codes:
        m = c & 0x7FFFFFFF
        if _is_nan(m):
            return F32_NAN
        best = max(best, m)
    return best


def ceil_pow2_e8m0(sf: int) -> int:
    """E8M0 code of 2^ceil(log2 sf) for a positive finite binary32 code (0xFF for NaN, inf or 2^128)."""
    if _special(sf) or sf & 0x80000000 or sf == 0:
        return 0xFF
    v = decode(sf, F32).mag
    k = floor_log2(v)
    if v != Fraction(2) ** k:
        k += 1
    return k + 127 if -127 <= k <= 127 else 0xFF


def e8m0_f32(code: int) -> int:
    """binary32 code of the E8M0 value 2^(code - 127) (NaN for 0xFF)."""
    if code == 0xFF:
        return F32_NAN
    return round_value(Value.of(Fraction(2) ** (code - 127)), F32).code


def quantize_tile(codes: list[int], fmt: str = "ocp_e4m3", scale: str = "fp32", division: str = "reciprocal",
                  eps: str = "deepgemm") -> tuple[int, tuple[int, ...]]:
    """(scale code, FP8 codes) of one tile of binary32 codes (see the module docstring); the scale code is
    binary32 (``scale=fp32``) or E8M0 (``scale=ue8m0``)."""
    from refarith.formats import get_format

    if scale not in SCALES or division not in DIVISIONS or eps not in EPS:
        raise BadValueError(f"unknown blockwise FP8 variant scale={scale}, division={division}, eps={eps}")
    a = tile_amax(codes)
    if division == "scale" or eps == "torchao":
        if division != "scale" or eps != "torchao" or scale != "fp32":
            raise BadValueError("division=scale goes with eps=torchao and scale=fp32 (torchao's blockwise rule)")
        return _torchao_tile(codes, a, fmt)
    if eps == "deepgemm" and not _is_nan(a) and a < EPS_DEEPGEMM:
        a = EPS_DEEPGEMM
    fmax = round_value(Value.of(get_format(fmt).max), F32).code
    sf = div(a, fmax, F32).code
    if scale == "ue8m0":
        code = ceil_pow2_e8m0(sf)
        if code == 0xFF:  # no E8M0 scale (sf zero, NaN, inf or beyond 2^-127): the block is NaN
            return code, tuple(0x7F for _ in codes)
        s_used = e8m0_f32(code)
    else:
        code = s_used = sf
    if division == "reciprocal":
        r = div(F32_ONE, s_used, F32).code
        ys = [mul(c, r, F32).code for c in codes]
    else:
        ys = [div(c, s_used, F32).code for c in codes]
    out = []
    for y in ys:
        v = decode(y, F32)
        out.append(0x7F if v.is_nan else round_value(v, fmt, "rne", "saturate").code)
    return code, tuple(out)


def _torchao_tile(codes: list[int], a: int, fmt: str) -> tuple[int, tuple[int, ...]]:
    """division=scale, eps=torchao (see the module docstring)."""
    from refarith.formats import get_format

    av = decode(a, F32)
    if av.is_nan:
        s = F32_NAN
    elif av.is_inf:
        s = 0
    else:
        q = Fraction(get_format(fmt).max) / max(av.mag, EPS_TORCHAO)
        s = round_value(decode(round_value(Value.of(q), "binary64").code, "binary64"), F32).code
    out = []
    for c in codes:
        v = decode(mul(c, s, F32).code, F32)
        out.append(0x7F if v.is_nan else round_value(v, fmt, "rne", "saturate").code)
    return div(F32_ONE, s, F32).code, tuple(out)


def parse_tile(tile: str) -> tuple[int, int]:
    """(rows, cols) of a tile name ``1xB`` or ``BxB``; SpecError otherwise."""
    r, sep, c = tile.partition("x")
    if not sep or not r.isdigit() or not c.isdigit() or int(c) < 1 or int(r) not in (1, int(c)):
        raise SpecError(f"tile={tile!r}: expected 1xB (activation tiles) or BxB (weight blocks), B >= 1")
    if int(c) > MAX_TILE:
        raise SpecError(f"tile={tile!r}: B must be at most {MAX_TILE} (recipes use 128)")
    return int(r), int(c)


MAX_TILE = 4096
"""The largest tile side B a spec may name (golden vectors hold whole tiles)."""


def tiles_of(matrix: list[list[int]], tile: str) -> list[list[int]]:
    """The tiles of a 2-D list of codes in row-major tile order (elements row-major within a tile);
    BadValueError when the shape does not tile (no padding)."""
    tr, tc = parse_tile(tile)
    rows = len(matrix)
    cols = len(matrix[0]) if rows else 0
    if rows % tr or cols % tc or not rows:
        raise BadValueError(f"a {rows}x{cols} tensor does not tile into {tr}x{tc} blocks")
    out = []
    for i in range(0, rows, tr):
        for j in range(0, cols, tc):
            out.append([matrix[ii][jj] for ii in range(i, i + tr) for jj in range(j, j + tc)])
    return out


def block_spec(fmt: str = "ocp_e4m3", tile: str = "1x128", scale: str = "fp32", division: str = "reciprocal",
               eps: str = "deepgemm") -> Spec:
    """Canonical id, e.g. ``fp8_block_quantize(ocp_e4m3,tile=1x128,scale=fp32,division=reciprocal,eps=deepgemm)``."""
    return make_spec("fp8_block_quantize", (fmt,), tile=tile, scale=scale, division=division, eps=eps)


def _validate(spec: Spec) -> None:
    if spec.formats[0] not in FP8:
        raise SpecError(f"{spec}: the FP8 format must be ocp_e4m3 or ocp_e5m2")
    try:
        parse_tile(spec.param["tile"])
    except SpecError as e:
        raise SpecError(f"{spec}: {e}") from None
    p = spec.param
    if (p["division"] == "scale") != (p["eps"] == "torchao") or (p["division"] == "scale" and p["scale"] != "fp32"):
        raise SpecError(f"{spec}: division=scale goes with eps=torchao and scale=fp32 (torchao's blockwise rule)")


register_op(OpSchema(
    "fp8_block_quantize", 1,
    (
        Param("tile", "1x128", None, "1xB activation tiles or BxB weight blocks (DeepSeek-V3: B = 128)"),
        Param("scale", "fp32", SCALES, "fp32: sf = fl(amax / F_max); ue8m0: 2^ceil(log2 sf) as an E8M0 code"),
        Param("division", "reciprocal", DIVISIONS, "x * fl(1/sf) (DeepGEMM), x / sf (DeepSeek-V3 act_quant) or "
              "x * s with s = F_max / amax in binary64 (torchao; reports fl(1/s))"),
        Param("eps", "deepgemm", EPS, "amax floor: fl(1e-4) (DeepGEMM), none, or torchao (1e-12 in binary64)"),
    ),
    "blockwise FP8: one scale per tile from its amax, elements cast_F(x / sf) RNE saturating",
    _validate,
))
