"""Vector drivers of the quantization recipes: Walsh-Hadamard rotations, per-tensor and blockwise FP8 scaling.

What one vector is:

* ``hadamard_rotate(F,n=..)``: one tile of n codes of F (binary32 or bfloat16) -> the n rotated codes of F.
* ``fp8_current_scale(F)``: a tensor of 32 binary32 values -> amax, scale, scale_inv (binary32), 32 codes of F.
* ``fp8_delayed_scale(F,h=..)``: an amax history of h binary32 values (index 0 the most recent), the previous
  binary32 scale and a tensor of 32 binary32 values -> the tensor's amax, the new scale, scale_inv, 32 codes of F.
* ``fp8_block_quantize(F,tile=..)``: one tile (a 1xB row or a BxB block, row-major) of binary32 values -> its scale
  (binary32, or E8M0 for ``scale=ue8m0``) and the tile's codes of F.

Rotation boundary vectors: zeros of both signs, every basis vector scaled by powers of two over the whole exponent range
(an unnormalised result that is one value times +-1, a normalised one that is that value over sqrt n, where the
irrational 1/sqrt n of odd log2 n must round correctly), all-maximum tiles with both sign patterns (overflow in
the sums, exact cancellation), subnormal tiles, one NaN or infinity in a tile and both infinities in one tile
(inf - inf is NaN); random vectors draw a tile around one random exponent.
"""

from __future__ import annotations

import random

import numpy as np

from refarith.exact import fp8block as _fb
from refarith.exact import fp8scale as _fs
from refarith.exact import rotation as _rot
from refarith.formats import get_format
from refarith.golden.drivers import Driver, Operand, register_driver, schema_variants
from refarith.golden.opdrivers import as_backend, exact_or_none, fixed_rng, random_f32, to_numpy
from refarith.spec import Spec

RECIPE_GOLDEN_SPECS = (
    "hadamard_rotate(binary32,n=16)",
    "hadamard_rotate(binary32,n=32,signs=seed,seed=1)",
    "hadamard_rotate(binary32,n=128,order=butterfly)",
    "hadamard_rotate(bfloat16,n=16,signs=te_wgrad,order=sequential,norm=matrix)",
    "fp8_current_scale(ocp_e4m3)", "fp8_current_scale(ocp_e5m2,pow2=true)",
    "fp8_delayed_scale(ocp_e4m3,h=16)", "fp8_delayed_scale(ocp_e5m2,h=4,algo=most_recent,margin=1,bad_history=te)",
    "fp8_block_quantize(ocp_e4m3)", "fp8_block_quantize(ocp_e4m3,scale=ue8m0)",
    "fp8_block_quantize(ocp_e4m3,tile=8x8,division=divide,eps=none)",
    "fp8_block_quantize(ocp_e4m3,division=scale,eps=torchao)",
)
"""The recipe specs of the committed golden set (referenced by :func:`refarith.golden.generate.committed_specs`)."""


def _n(spec: Spec) -> int:
    return int(spec.param["n"])


def _to_fmt(codes32: list[int], fmt: str) -> tuple[int, ...]:
    """binary32 codes as codes of ``fmt`` (bfloat16: the top half, i.e. binary32 values truncated)."""
    if fmt == "bfloat16":
        return tuple(c >> 16 for c in codes32)
    return tuple(codes32)


def _rot_exact(spec: Spec, ins: tuple[int, ...]) -> tuple[int, ...] | None:
    out = exact_or_none(_rot.rotate, spec, list(ins))
    return None if out is None else tuple(out)


def _rot_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast.rotation import hadamard_rotate

    p = spec.param
    fmt = spec.formats[0]
    c = np.asarray(inputs[0]).astype(np.uint32)
    x = (c << 16 if fmt == "bfloat16" else c).view(np.float32)
    y = hadamard_rotate(as_backend(x, backend), _n(spec), p["signs"], int(p.get("seed", "0")), p["order"],
                        p.get("acc", "binary32"), p["norm"], fmt, backend)
    yb = np.ascontiguousarray(to_numpy(y), dtype=np.float32).view(np.uint32)
    return (yb >> 16 if fmt == "bfloat16" else yb,)


def _rot_boundary(spec: Spec) -> list[tuple[int, ...]]:
    n, fmt = _n(spec), spec.formats[0]
    rng = fixed_rng(spec, "hadamard")
    f32max = 0x7F7FFFFF if fmt == "binary32" else 0x7F7F0000
    out: list[list[int]] = [[0] * n, [0x80000000] * n, [(j & 1) << 31 for j in range(n)]]
    step = 13 if n > 32 else (7 if spec.param["order"] == "sequential" else 3)  # sequential: n^2 roundings
    for e in range(-149, 128, step):
        j = rng.randrange(n)
        v = [0] * n
        v[j] = (e + 127) << 23 if e >= -126 else 1 << (e + 149)
        out.append(v)
        w = [random_f32(rng, e, spread=3, p_zero=0.2) for _ in range(n)]
        out.append(w)
    out.append([f32max] * n)
    out.append([f32max | ((j & 1) << 31) for j in range(n)])
    out.append([f32max | (((j >> 1) & 1) << 31) for j in range(n)])
    out.append([rng.randrange(1, 1 << 23) | (rng.randrange(2) << 31) for _ in range(n)])  # subnormals
    for special in (0x7FC00000, 0x7F800000, 0xFF800000):
        v = [random_f32(rng, 0, spread=4) for _ in range(n)]
        v[rng.randrange(n)] = special
        out.append(v)
    v = [0x3F800000] * n
    v[0], v[n - 1] = 0x7F800000, 0xFF800000
    out.append(v)
    return [_to_fmt(v, fmt) for v in out]


def _rot_random(spec: Spec, count: int, seed: int) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    n, fmt = _n(spec), spec.formats[0]
    out = []
    for _ in range(count):
        e0 = rng.randint(-140, 120)
        sp = rng.choice((1, 4, 12))
        out.append(_to_fmt([random_f32(rng, e0, spread=sp, p_zero=0.05) for _ in range(n)], fmt))
    return out


register_driver(Driver(
    "hadamard_rotate",
    inputs=lambda s: (Operand("x", get_format(s.formats[0]), _n(s)),),
    outputs=lambda s: (Operand("y", get_format(s.formats[0]), _n(s)),),
    exact=_rot_exact,
    boundary=_rot_boundary,
    variant_params=lambda s: schema_variants(s, exclude=("n", "signs", "seed")),
    random=_rot_random,
    random_count=lambda s: max(8, (512 if s.param["order"] == "sequential" else 2048) // _n(s)),
    fast=_rot_fast,
    doc="one tile of n binary32 / bfloat16 codes -> the n rotated codes",
))


# ------------------------------------------------------------------ per-tensor FP8 scaling
FP8_K = 32
"""Elements of the tensor in one per-tensor scaling vector."""


def _cur_exact(spec: Spec, ins: tuple[int, ...]) -> tuple[int, ...] | None:
    p = spec.param
    r = exact_or_none(_fs.current_scaling, list(ins), spec.formats[0], _fs.parse_eps(p["eps"]), p["pow2"] == "true")
    return None if r is None else (r.amax, r.scale, r.scale_inv, *r.codes)


def _bits(a) -> np.ndarray:
    return np.ascontiguousarray(to_numpy(a), dtype=np.float32).view(np.uint32)


def _cur_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast import fp8scale as ffs

    p = spec.param
    x = as_backend(np.asarray(inputs[0]).astype(np.uint32).view(np.float32), backend)
    eps = float(np.array([_fs.parse_eps(p["eps"])], np.uint32).view(np.float32)[0])
    amax = ffs.fmax_amax(x, backend)
    s = ffs.current_scale(amax, spec.formats[0], eps, p["pow2"] == "true", backend)
    q = ffs.quantize_with_scale(x, s, spec.formats[0], backend)
    return _bits(amax), _bits(s), _bits(ffs.reciprocal(s, backend)), to_numpy(q)


def _cur_boundary(spec: Spec) -> list[tuple[int, ...]]:
    from fractions import Fraction

    from refarith.golden.opdrivers.blocks import _f32_block_boundaries

    fmax = spec.fmt(0).max
    vs = _f32_block_boundaries(spec, FP8_K, Fraction(fmax), range(-150, 128, 7))
    rng = fixed_rng(spec, "fp8scale")
    # amax where fl(F_max / amax) overflows binary32 (amax below F_max * 2^-128) and its neighbours
    for c in (0x00000001, 0x00000002, 0x00000100, 0x00010000, 0x00100000):
        v = [random_f32(rng, -149, spread=0, p_zero=0.3) & 0x807FFFFF for _ in range(FP8_K)]
        v[rng.randrange(FP8_K)] = c
        vs.append(tuple(v))
    return vs


_SCALE_OUT = (Operand("amax", get_format("binary32")), Operand("scale", get_format("binary32")),
              Operand("scale_inv", get_format("binary32")))

register_driver(Driver(
    "fp8_current_scale",
    inputs=lambda s: (Operand("x", get_format("binary32"), FP8_K),),
    outputs=lambda s: (*_SCALE_OUT, Operand("codes", s.fmt(0), FP8_K)),
    exact=_cur_exact,
    boundary=_cur_boundary,
    variant_params=lambda s: schema_variants(s),
    random=lambda s, n, seed: _f32_tensors(n, seed, FP8_K),
    random_count=256,
    fast=_cur_fast,
    doc="a tensor of 32 binary32 values -> amax, scale, scale_inv (binary32) and 32 FP8 codes",
))


def _f32_tensors(n: int, seed: int, k: int, p_special: float = 0.003) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        e0 = rng.randint(-150, 127)
        out.append(tuple(random_f32(rng, e0, spread=rng.choice((2, 8, 30)), p_zero=0.05, p_special=p_special)
                         for _ in range(k)))
    return out


def _h(spec: Spec) -> int:
    return int(spec.param["h"])


def _del_split(spec: Spec, ins: tuple[int, ...]) -> tuple[list[int], int, list[int]]:
    h = _h(spec)
    return list(ins[:h]), ins[h], list(ins[h + 1:])


def _del_exact(spec: Spec, ins: tuple[int, ...]) -> tuple[int, ...] | None:
    p = spec.param
    hist, prev, x = _del_split(spec, ins)
    r = exact_or_none(_fs.delayed_scaling, hist, prev, x, spec.formats[0], p["algo"], int(p["margin"]),
                      p["bad_history"])
    return None if r is None else (r.amax, r.scale, r.scale_inv, *r.codes)


def _del_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast import fp8scale as ffs

    p = spec.param
    f = [np.asarray(a).astype(np.uint32).view(np.float32) for a in inputs]
    hist, prev, x = f[0].reshape(len(f[2]), -1), f[1], f[2]
    if p["bad_history"] == "error":  # rows outside the spec run as a good history; their outputs are not compared
        bad = ~np.isfinite(hist).all(axis=1) | (hist < 0).any(axis=1) | ~np.isfinite(prev) | ~(prev > 0)
        if bad.any():
            hist, prev = hist.copy(), prev.copy()
            hist[bad], prev[bad] = 1, 1
    hb, pb, xb = (as_backend(a, backend) for a in (hist, prev, x))
    s = ffs.delayed_scale(hb, pb, spec.formats[0], p["algo"], int(p["margin"]), p["bad_history"], backend)
    q = ffs.quantize_with_scale(xb, s, spec.formats[0], backend)
    return _bits(ffs.fmax_amax(xb, backend)), _bits(s), _bits(ffs.reciprocal(s, backend)), to_numpy(q)


def _history(rng: random.Random, h: int, e0: int) -> list[int]:
    return [random_f32(rng, e0, spread=4, p_zero=0.1) & 0x7FFFFFFF for _ in range(h)]


def _del_boundary(spec: Spec) -> list[tuple[int, ...]]:
    h = _h(spec)
    rng = fixed_rng(spec, "delayed")
    prevs = (0x3F800000, 0x3A800000, 0x45000000)
    out = []
    for e0 in range(-149, 128, 4):
        x = [random_f32(rng, e0 + rng.randint(-3, 1), spread=6, p_zero=0.05) for _ in range(FP8_K)]
        out.append(tuple(_history(rng, h, e0)) + (rng.choice(prevs),) + tuple(x))
    x = [random_f32(rng, 0, spread=6) for _ in range(FP8_K)]
    for hist in ([0] * h, [0x00000001] * h, [0x7F7FFFFF] * h):
        out.append(tuple(hist) + (prevs[1],) + tuple(x))
    for special in (0x7FC00000, 0x7F800000, 0xFF800000, 0xBF800000):
        for pos in sorted({0, h - 1}):
            hist = _history(rng, h, 3)
            hist[pos] = special
            out.append(tuple(hist) + (prevs[0],) + tuple(x))
    out.append(tuple(_history(rng, h, 3)) + (0x7FC00000,) + tuple(x))  # a NaN previous scale
    return out


def _del_random(spec: Spec, n: int, seed: int) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    h = _h(spec)
    out = []
    for _ in range(n):
        e0 = rng.randint(-140, 120)
        hist = _history(rng, h, e0)
        if rng.random() < 0.05:
            hist[rng.randrange(h)] = rng.choice((0x7FC00000, 0x7F800000, 0))
        x = [random_f32(rng, e0 + rng.randint(-4, 2), spread=rng.choice((2, 8)), p_zero=0.05) for _ in range(FP8_K)]
        out.append(tuple(hist) + (random_f32(rng, rng.randint(-20, 20), spread=0) & 0x7FFFFFFF or 0x3F800000,)
                   + tuple(x))
    return out


register_driver(Driver(
    "fp8_delayed_scale",
    inputs=lambda s: (Operand("history", get_format("binary32"), _h(s)), Operand("prev_scale", get_format("binary32")),
                      Operand("x", get_format("binary32"), FP8_K)),
    outputs=lambda s: (*_SCALE_OUT, Operand("codes", s.fmt(0), FP8_K)),
    exact=_del_exact,
    boundary=_del_boundary,
    variant_params=lambda s: schema_variants(s),
    random=_del_random,
    random_count=256,
    fast=_del_fast,
    doc="an amax history of h binary32 values (index 0 the most recent), the previous scale and 32 binary32 values "
        "-> amax of x, the new scale, scale_inv and 32 FP8 codes",
))


# ------------------------------------------------------------------ blockwise FP8
def _tile_shape(spec: Spec) -> tuple[int, int]:
    return _fb.parse_tile(spec.param["tile"])


def _tile_n(spec: Spec) -> int:
    r, c = _tile_shape(spec)
    return r * c


def _blk_exact(spec: Spec, ins: tuple[int, ...]) -> tuple[int, ...] | None:
    p = spec.param
    r = exact_or_none(_fb.quantize_tile, list(ins), spec.formats[0], p["scale"], p["division"], p["eps"])
    return None if r is None else (r[0], *r[1])


def _blk_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast.fp8block import fp8_block_quantize

    p = spec.param
    tr, tc = _tile_shape(spec)
    x = np.asarray(inputs[0]).astype(np.uint32).view(np.float32).reshape(-1, tc)  # tiles stacked vertically
    s, q = fp8_block_quantize(as_backend(x, backend), spec.formats[0], p["tile"], p["scale"], p["division"],
                              p["eps"], backend)
    s = to_numpy(s).reshape(-1)
    s = s.astype(np.int64) if p["scale"] == "ue8m0" else np.ascontiguousarray(s, np.float32).view(np.uint32)
    return s, to_numpy(q).reshape(len(s), -1)


def _blk_boundary(spec: Spec) -> list[tuple[int, ...]]:
    from fractions import Fraction

    from refarith.golden.opdrivers.blocks import _f32_block_boundaries

    n = _tile_n(spec)
    step = 11 if n <= 256 else 41
    return _f32_block_boundaries(spec, n, Fraction(spec.fmt(0).max), range(-150, 128, step))


register_driver(Driver(
    "fp8_block_quantize",
    inputs=lambda s: (Operand("x", get_format("binary32"), _tile_n(s)),),
    outputs=lambda s: (Operand("scale", get_format("e8m0" if s.param["scale"] == "ue8m0" else "binary32")),
                       Operand("codes", s.fmt(0), _tile_n(s))),
    exact=_blk_exact,
    boundary=_blk_boundary,
    variant_params=lambda s: schema_variants(s),
    random=lambda s, n, seed: _f32_tensors(n, seed, _tile_n(s)),
    random_count=lambda s: max(4, 4096 // _tile_n(s)),
    fast=_blk_fast,
    doc="one tile (1xB row or BxB block, row-major) of binary32 values -> its scale (binary32 or E8M0) and FP8 "
        "codes",
))
