"""NVFP4 block quantization, exactly, with every binary32 operation rounded as the kernels round it.

Format (NVIDIA NVFP4, as documented for TensorRT-LLM / Transformer Engine and
implemented by torchao ``nvfp4_quantize``): E2M1 elements, blocks of 16
consecutive elements, one UE4M3 scale per block (unsigned E4M3, 0x7F NaN, max
448), and optionally one binary32 per-tensor scale s_t = amax_tensor / (448 * 6)
(torchao ``per_tensor_amax_to_scale``), so that a value decodes as
P_i * S * s_t.

The recipe, every binary32 operation rounded to nearest even
(``fl`` = round_value(..., "binary32")), A = max |x_i| of the block:

* block scale b = fl(A / 6); two-level: s_t = fl(amax_tensor / 2688) (or a given
  binary32 s_t; s_t = 1 when amax_tensor = 0 or the quotient underflows to 0) and b' = fl(b / s_t);
  one-level: b' = b.
* ``global_scale=reciprocal`` (two-level only; compressed-tensors 0.20.1
  ``generate_gparam`` / ``calculate_qparams`` / ``_quantize`` in
  quantization/utils/helpers.py and quantization/lifecycle/forward_helpers.py, the
  global scale vLLM's NVFP4 tests pass to ``scaled_fp4_quant``): the per-tensor
  column holds the encode scale g = fl(fl(1 / max(amax_tensor, 2^-126)) * 2688),
  g = 1 where that overflows to infinity (amax_tensor below about 2^-114.6, zero
  included), and b' = fl(b * g).  The source writes ``2688 / amax``, a Python
  number divided by a tensor, which torch evaluates as ``amax.reciprocal() *
  2688`` (``torch.Tensor.__rdiv__``): two roundings, one ulp away from
  fl(2688 / amax) on about a quarter of the amax values.  The default
  ``global_scale=decode`` is the s_t above.
* ``zero_scale=eps`` (torchao): b' clamped to [2^-6, 448] (2^-6 =
  torch.finfo(float8_e4m3fn).tiny), then RNE into UE4M3 -> S.
  ``zero_scale=zero``: only the upper clamp; a scale that rounds to 0 (all-zero
  or tiny blocks) makes every element ±0 (sign kept).
  ``zero_scale=eighth`` (compressed-tensors ``_get_dtype_eps`` of float8_e4m3fn):
  only the upper clamp; a scale that rounds to 0 becomes S = 0.125 (code 0x20),
  and the elements are quantized with it.
* elements: ``division=divide``: y = fl(x / S) (one-level), fl(x / fl(S * s_t))
  (two-level), fl(x / fl(S / g)) (``global_scale=reciprocal``, compressed-tensors).
  ``division=reciprocal`` (torchao, to match the MSLK Triton
  kernel): y = fl(x * fl(1 / S)) (one-level), fl(x * fl(fl(1 / s_t) / S))
  (two-level), fl(x * fl(g / S)) (``global_scale=reciprocal``: the multiply form
  of the same recipe).  Then P = E2M1(y) rounded (default RNE), saturating at ±6
  (torchao clamps to ±6 before the cast: the same codes); a NaN y (0/0 when
  fl(S * s_t) underflows to 0) gives code 0.
* A block holding a NaN or an infinity gets the UE4M3 NaN scale 0x7F and
  element codes 0; the per-tensor amax is taken over the finite elements.
* ``tile=1x16``: blocks of 16 along the last axis; ``tile=16x16``: one scale per
  16x16 tile of the last two axes (2-D weight blocks).
* Dequantization: fl(P * S * s_t) (P * S is exact in binary32); for
  ``global_scale=reciprocal`` fl(P * fl(S / g)) (compressed-tensors ``_dequantize``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from refarith.errors import BadValueError, SpecError, UnknownModeError
from refarith.exact.ops import decode, div, mul
from refarith.exact.rounding import round_value
from refarith.exact.stochastic import rand_list
from refarith.exact.value import Value
from refarith.spec import SR_PARAMS, OpSchema, Param, Spec, check_sr_params, make_spec, register_op

DIVISIONS = ("reciprocal", "divide")
LEVELS = ("2", "1")
ZERO_SCALES = ("eps", "zero", "eighth")
GLOBAL_SCALES = ("decode", "reciprocal")
TILES = ("1x16", "16x16")
ROUNDINGS = ("rne", "rna", "rtz", "rup", "rdn", "rto")
F32 = "binary32"
UE4M3_NAN = 0x7F
EPS = Fraction(1, 64)
F32_ONE = 0x3F800000
F32_SIX = 0x40C00000
F32_2688 = 0x45280000
F32_TINY = 0x00800000  # 2^-126, torch.finfo(torch.float32).tiny
UE4M3_EIGHTH = 0x20  # 0.125


def f32_bits(x: float) -> int:
    """binary32 bit pattern of a Python float that is a binary32 value (raises otherwise)."""
    b = struct.unpack("<I", struct.pack("<f", x))[0]
    back = struct.unpack("<f", struct.pack("<I", b))[0]
    if not (back == x or (x != x and back != back)):
        raise BadValueError(f"{x!r} is not a binary32 value")
    return b


def _val(code: int) -> Value:
    return decode(code, F32)


@lru_cache(maxsize=1 << 17)
def _fl(a: int, op: str, b: int) -> int:
    """fl(a / b) or fl(a * b) of two binary32 codes (rne; the code).  Remembered: the variants of a recipe that
    differ only in their zero-block rule or tensor scale repeat the same operations on the same block."""
    return (div if op == "/" else mul)(a, b, F32).code


@lru_cache(maxsize=1 << 16)
def _e2m1(y: int, rounding: str) -> int:
    """E2M1 code of the binary32 code y under a deterministic rounding, saturating, NaN -> 0 (remembered)."""
    return round_value(_val(y), "ocp_e2m1", rounding, "saturate", nan_policy="zero").code


def _is_special(code: int) -> bool:
    return (code & 0x7F800000) == 0x7F800000


@dataclass(frozen=True)
class NVFP4Blocks:
    """Quantized blocks: binary32 bits of s_t (g for ``global_scale="reciprocal"``; None for one-level), UE4M3
    scale codes, E2M1 codes per block."""

    tensor_scale: int | None
    scales: tuple[int, ...]
    codes: tuple[tuple[int, ...], ...]
    global_scale: str = "decode"


def tensor_scale_bits(blocks: list[list[int]], global_scale: str = "decode") -> int:
    """s_t = fl(amax / 2688) over the finite elements (binary32 bits in and out), 1.0 for amax 0; or, for
    ``global_scale="reciprocal"``, g = fl(fl(1 / max(amax, 2^-126)) * 2688), 1.0 where that overflows."""
    finite = [c & 0x7FFFFFFF for blk in blocks for c in blk if not _is_special(c)]
    amax = max(finite, default=0)
    if global_scale == "reciprocal":
        g = mul(div(F32_ONE, max(amax, F32_TINY), F32).code, F32_2688, F32).code
        return F32_ONE if _is_special(g) else g
    st = div(amax, F32_2688, F32).code if amax else 0
    return st if st else F32_ONE


def quantize_blocks(blocks: list[list[int]], division: str = "reciprocal", levels: int = 2, zero_scale: str = "eps",
                    rounding: str = "rne", tensor_scale: int | None = None, *, rand: list[list[int]] | None = None,
                    rand_bits: int | None = None, sr_variant: str = "a", global_scale: str = "decode") -> NVFP4Blocks:
    """Quantize blocks of binary32 bit patterns (see the module docstring).  ``rounding="sr"``: element j of
    block i is rounded into E2M1 stochastically with ``rand[i][j]`` (k = ``rand_bits``, rule ``sr_variant``,
    e.g. ``te_e2m1_8`` with k = 8); the scales stay rne.  ``global_scale``: ``decode`` (s_t) or ``reciprocal``
    (g, two-level only); a given ``tensor_scale`` is s_t or g accordingly."""
    if division not in DIVISIONS:
        raise UnknownModeError(f"unknown NVFP4 division {division!r}; expected one of {', '.join(DIVISIONS)}")
    if str(levels) not in LEVELS:
        raise UnknownModeError(f"NVFP4 levels must be 1 or 2, got {levels!r}")
    if zero_scale not in ZERO_SCALES:
        raise UnknownModeError(f"unknown zero_scale {zero_scale!r}; expected one of {', '.join(ZERO_SCALES)}")
    if global_scale not in GLOBAL_SCALES:
        raise UnknownModeError(f"unknown NVFP4 global_scale {global_scale!r}; expected one of "
                               f"{', '.join(GLOBAL_SCALES)}")
    if global_scale == "reciprocal" and str(levels) != "2":
        raise UnknownModeError("NVFP4 global_scale=reciprocal needs levels=2 (one level has no global scale)")
    if rounding != "sr" and rounding not in ROUNDINGS:
        raise UnknownModeError(f"unknown element rounding {rounding!r}; expected one of {', '.join(ROUNDINGS)}")
    if rounding == "sr":
        if rand is None or len(rand) != len(blocks):
            raise UnknownModeError(f"stochastic NVFP4 rounding needs rand: one list of random integers per block "
                                   f"({len(blocks)} blocks)")
        rands = [rand_list(rb, len(b), rand_bits, f"NVFP4 block {i}") for i, (rb, b) in enumerate(zip(rand, blocks))]
    else:
        rands = [[None] * len(b) for b in blocks]
    levels = int(levels)
    recip = global_scale == "reciprocal"
    st = None
    if levels == 2:
        st = tensor_scale if tensor_scale is not None else tensor_scale_bits(blocks, global_scale)
        if _is_special(st) or st & 0x80000000 or (st & 0x7FFFFFFF) == 0:
            raise BadValueError(f"per-tensor scale {st:#010x} must be a positive finite binary32")
    scales, codes = [], []
    for blk, rblk in zip(blocks, rands):
        if any(_is_special(c) for c in blk):
            scales.append(UE4M3_NAN)
            codes.append(tuple(0 for _ in blk))
            continue
        amax = max(c & 0x7FFFFFFF for c in blk)
        b = _fl(amax, "/", F32_SIX)
        if st is not None:
            b = _fl(b, "*" if recip else "/", st)
        bv = _val(b).mag if not _is_special(b) else Fraction(448)  # fl(b / s_t), fl(b * g) overflowed: 448
        if zero_scale == "eps" and bv < EPS:
            bv = EPS
        s = round_value(Value.of(bv), "ue4m3", "rne", "saturate").code
        if zero_scale == "eighth" and s == 0:
            s = UE4M3_EIGHTH
        scales.append(s)
        sv = decode(s, "ue4m3").mag
        if sv == 0:
            codes.append(tuple(0x8 if c >> 31 else 0 for c in blk))
            continue
        s32 = round_value(Value.of(sv), F32).code  # exact: every UE4M3 value is a binary32 value
        if division == "divide":
            d = s32 if st is None else _fl(s32, "/" if recip else "*", st)
            ys = [_fl(c, "/", d) for c in blk]
        else:
            if st is None:
                r = _fl(F32_ONE, "/", s32)
            elif recip:
                r = _fl(st, "/", s32)
            else:
                r = _fl(_fl(F32_ONE, "/", st), "/", s32)
            ys = [_fl(c, "*", r) for c in blk]
        codes.append(tuple(_e2m1(y, rounding) if r is None else
                           round_value(_val(y), "ocp_e2m1", rounding, "saturate", nan_policy="zero", rand=r,
                                       rand_bits=rand_bits, sr_variant=sr_variant).code
                           for y, r in zip(ys, rblk)))
    return NVFP4Blocks(st, tuple(scales), tuple(codes), global_scale)


def dequantize_blocks(q: NVFP4Blocks) -> list[list[Value]]:
    """fl(P * S * s_t) per element (NaN for a NaN-scaled block); fl(P * fl(S / g)) for a reciprocal global
    scale g."""
    out = []
    for s, blk in zip(q.scales, q.codes):
        if s == UE4M3_NAN:
            out.append([Value.nan() for _ in blk])
            continue
        sv = decode(s, "ue4m3").mag
        if q.global_scale == "reciprocal" and q.tensor_scale is not None:
            d = div(round_value(Value.of(sv), F32).code, q.tensor_scale, F32).code
            out.append([_val(mul(c32, d, F32).code) for c32 in (_E2M1_F32[c] for c in blk)])
            continue
        row = []
        for c in blk:
            pv = decode(c, "ocp_e2m1")
            v = pv.mag * sv
            if q.tensor_scale is not None:
                v = v * _val(q.tensor_scale).mag
            r = round_value(Value("finite", pv.sign, v), F32).code
            row.append(_val(r))
        out.append(row)
    return out


_E2M1_F32 = tuple(round_value(decode(c, "ocp_e2m1"), F32).code for c in range(16))


def tiles(matrix: list[list[int]], tile: str) -> list[list[int]]:
    """Blocks of a 2-D list in row-major block order: runs of 16 per row (1x16) or 16x16 tiles (zero padded)."""
    if tile not in TILES:
        raise UnknownModeError(f"unknown NVFP4 tile {tile!r}; expected one of {', '.join(TILES)}")
    rows = len(matrix)
    cols = len(matrix[0]) if rows else 0
    if tile == "1x16":
        return [list(r[j:j + 16]) for r in matrix for j in range(0, cols, 16)]
    out = []
    for i in range(0, rows, 16):
        for j in range(0, cols, 16):
            blk = []
            for ii in range(i, i + 16):
                for jj in range(j, j + 16):
                    blk.append(matrix[ii][jj] if ii < rows and jj < cols else 0)
            out.append(blk)
    return out


def nvfp4_spec(division: str = "reciprocal", levels: int = 2, zero_scale: str = "eps", tile: str = "1x16",
               rounding: str = "rne", global_scale: str = "decode") -> Spec:
    """Canonical spec id, e.g.
    ``nvfp4_quantize(division=reciprocal,levels=2,zero_scale=eps,tile=1x16,rounding=rne)``
    (``global_scale`` appears only when it is ``reciprocal``)."""
    return make_spec("nvfp4_quantize", (), division=division, levels=levels, global_scale=global_scale,
                     zero_scale=zero_scale, tile=tile, rounding=rounding)


def _validate(spec: Spec) -> None:
    if spec.formats:
        raise SpecError(f"{spec}: nvfp4_quantize takes no formats")
    if spec.param.get("global_scale") == "reciprocal" and spec.param["levels"] != "2":
        raise SpecError(f"{spec}: global_scale=reciprocal needs levels=2 (one level has no global scale)")
    check_sr_params(spec, "ocp_e2m1")


COMPRESSED_TENSORS_SPEC = "nvfp4_quantize(division=divide,levels=2,global_scale=reciprocal,zero_scale=eighth)"
"""The NVFP4 recipe of compressed-tensors (and the checkpoints vLLM loads): reciprocal global scale, division
by fl(S / g), 0.125 for a zero block scale."""


register_op(OpSchema(
    "nvfp4_quantize", 0,
    (
        Param("division", "reciprocal", DIVISIONS, "x * fl(1/S) (torchao, MSLK) or x / S"),
        Param("levels", "2", LEVELS, "2: per-tensor binary32 scale amax/2688 and UE4M3 block scales; 1: block only"),
        Param("global_scale", lambda f: None, GLOBAL_SCALES, "levels=2: decode (s_t = amax/2688, default) or "
              "reciprocal (g = 2688/amax, compressed-tensors)", normalize=lambda v: None if v == "decode" else v),
        Param("zero_scale", "eps", ZERO_SCALES, "eps: block scale clamped below at 2^-6 (torchao); zero: may be 0; "
              "eighth: a zero scale becomes 0.125 (compressed-tensors)"),
        Param("tile", "1x16", TILES, "1x16 blocks along the last axis, or 16x16 2-D weight tiles"),
        Param("rounding", "rne", ROUNDINGS + ("sr",), "E2M1 element rounding (sr: stochastic, one k-bit random "
              "integer per element; the scales stay rne)"),
        *SR_PARAMS,
    ),
    "NVFP4: E2M1 elements, UE4M3 block scales, binary32 per-tensor scale; each binary32 op rounded RNE",
    _validate,
))
