"""Vector drivers of the block and integer quantization ops: MX, NVFP4, INTn, block floating point, LLM.int8().

What one vector is:

* ``mx_quantize(E,block=k)``: a block of k binary32 values -> the E8M0 scale and k element codes.
* ``nvfp4_quantize``: a small tensor of binary32 values, 4 x 16 for ``tile=1x16`` (four blocks) and 16 x 32 for
  ``tile=16x16`` (two tiles), row-major -> the binary32 per-tensor scale (1.0 for ``levels=1``), the UE4M3
  block scales in block order and the E2M1 codes in the input's row-major order.
* ``int_quantize(intN,granularity=...)``: ``tensor``: 16 binary32 values (one scale); ``channel``: a 4 x 8
  matrix quantized per row (4 scales); ``group=g``: a row of min(2g, 256) values (groups of g, the last one
  possibly shorter) -> binary32 scales, int32 zero points, intN codes.
* ``bfp_quantize(intP_sym,block=k)``: k binary32 values -> the shared exponent (int32) and k P-bit mantissas.
* ``llmint8_matmul``: X (4 x 8) and W (8 x 4) binary16, row-major -> the 4 x 4 binary16 product.

Boundary vectors put the block maximum on every power of two of the relevant range, just below and just above
it, on the element format's largest value times a power of two and its neighbours, on subnormal binary32 values,
and add NaN/infinity, all-zero and signed-zero blocks; random vectors draw the elements of a block around one
random exponent, so scales and elements both vary (uniform binary32 codes would make almost every element of a
block round to zero).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable
from fractions import Fraction

import numpy as np

from refarith.exact import bfp as _bfp
from refarith.exact import intquant as _iq
from refarith.exact import llmint8 as _l8
from refarith.exact import mx as _mx
from refarith.exact import nvfp4 as _nv
from refarith.formats import get_format
from refarith.golden.drivers import Driver, Operand, register_driver, schema_variants
from refarith.golden.opdrivers import (
    F16,
    F32,
    as_backend,
    exact_or_none,
    f32_float,
    fixed_rng,
    float_view,
    icodes,
    pow2_code,
    random_f32,
    to_numpy,
)
from refarith.spec import Spec

E8M0 = get_format("e8m0")
UE4M3 = get_format("ue4m3")
E2M1 = get_format("ocp_e2m1")
INT32 = get_format("int32")


def _f32_block_boundaries(spec: Spec, k: int, elem_max: Fraction | None, exps: Iterable[int]
                           ) -> list[tuple[int, ...]]:
    """Blocks of k binary32 codes around every boundary of a block maximum (see the module docstring)."""
    rng = fixed_rng(spec, "blocks")
    out: list[tuple[int, ...]] = []

    def fill(amax_code: int) -> tuple[int, ...]:
        e = ((amax_code >> 23) & 0xFF) - 127
        rest = [random_f32(rng, e, spread=6, p_zero=0.1) for _ in range(k - 1)]
        blk = [amax_code] + rest
        rng.shuffle(blk)
        return tuple(blk)

    cands: set[int] = set()
    for e in exps:
        c = pow2_code(e)
        if c is None:
            continue
        cands.update({c, c - 1, c + 1} - {-1})
        if elem_max is not None:
            from refarith.golden.opdrivers import f32_code

            v = elem_max * Fraction(2) ** e
            if Fraction(2) ** -149 <= v < Fraction(2) ** 128:
                m = f32_code(v)
                cands.update({m - 1, m, m + 1})
    cands.update({0x00000001, 0x00400000, 0x00400001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0x7F7FFFFE})
    for c in sorted(cands):
        if 0 < c < 0x7F800000:
            out.append(fill(c))
            out.append(tuple(x ^ 0x80000000 for x in fill(c)))
    out.append(tuple(0 for _ in range(k)))
    out.append(tuple((i & 1) << 31 for i in range(k)))
    for special in (0x7FC00000, 0xFFC00001, 0x7F800000, 0xFF800000):
        blk = list(fill(0x3F800000))
        blk[k // 2] = special
        out.append(tuple(blk))
    return out


def _f32_block_random(k: int, p_special: float = 0.01):
    def random_blocks(spec: Spec, n: int, seed: int) -> list[tuple[int, ...]]:
        rng = random.Random(seed)
        out = []
        for _ in range(n):
            e0 = rng.randint(-150, 127)
            special = rng.random() < p_special * 10
            out.append(tuple(random_f32(rng, e0, spread=rng.choice((2, 6, 12, 30)), p_zero=0.05,
                                        p_special=p_special if special else 0.0) for _ in range(k)))
        return out
    return random_blocks


# ------------------------------------------------------------------ MX
def _mx_block(spec: Spec) -> int:
    return int(spec.param["block"])


def _mx_exact(spec: Spec, ins: tuple[int, ...], sr_kw: dict | None = None) -> tuple[int, ...] | None:
    p = spec.param
    vals = [_fv(c) for c in ins]
    blk = exact_or_none(functools.partial(_mx.quantize_block, **(sr_kw or {})), vals, spec.formats[0], p["scale"],
                        p["rounding"])
    return None if blk is None else (blk.scale, *blk.codes)


def _fv(code: int):
    from refarith.exact.ops import decode

    return decode(code, F32)


def _mx_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast.mx import mx_quantize

    p = spec.param
    kw = dict(axis=-1, block=_mx_block(spec), scale=p["scale"], rounding=p["rounding"])
    if backend == "triton":  # the traced block kernel, on the operands' device
        from refarith.fast import triton_blocks as tbk

        s, c = tbk.mx_quantize(tbk.like_device(float_view(to_numpy(inputs[0]), F32), inputs[0]), spec.formats[0], **kw)
        return to_numpy(s)[:, 0], to_numpy(c)
    s, c = mx_quantize(as_backend(float_view(inputs[0], F32), backend), spec.formats[0], backend=backend, **kw)
    return to_numpy(s)[:, 0], to_numpy(c)


_MX_THIN = {"int8": (8, 128)}
"""Element formats whose deterministic MX files are thinned to about 200 KB: (exponent step of the block maxima
between 2^-119 and 2^119, random vectors).  The ends stay dense (binary32 subnormals, the smallest E8M0 scales,
overflow of the largest), and every kind of maximum stays at every exponent kept (a power of two, its binary32
neighbours, the element's largest value times it and its neighbours; negated blocks put MXINT8's -128 code
0x80 at each maximum just below a power of two)."""


def _mx_thin(spec: Spec) -> tuple[int, int] | None:
    return _MX_THIN.get(spec.formats[0]) if spec.param["rounding"] != "sr" else None


def _mx_boundary(spec: Spec) -> list[tuple[int, ...]]:
    fmt = spec.fmt(0)
    em = _mx.elem_max(fmt)
    thin = _mx_thin(spec)
    if thin is None:
        return _f32_block_boundaries(spec, _mx_block(spec), em, range(-150, 128))
    exps = [*range(-150, -119), *range(-119, 120, thin[0]), *range(120, 128)]
    return _f32_block_boundaries(spec, _mx_block(spec), em, exps)


register_driver(Driver(
    "mx_quantize",
    inputs=lambda s: (Operand("x", F32, _mx_block(s)),),
    outputs=lambda s: (Operand("scale", E8M0), Operand("elements", s.fmt(0), _mx_block(s))),
    exact=_mx_exact,
    boundary=_mx_boundary,
    variant_params=schema_variants,
    random=lambda s, n, seed: _f32_block_random(_mx_block(s))(s, n, seed),
    random_count=lambda s: 1024 if _mx_thin(s) is None else _mx_thin(s)[1],
    fast=_mx_fast,
    backends=("numpy", "torch", "triton"),
    doc="a block of binary32 values -> E8M0 scale, element codes",
))


# ------------------------------------------------------------------ NVFP4
def _nv_shape(spec: Spec) -> tuple[int, int]:
    return (4, 16) if spec.param["tile"] == "1x16" else (16, 32)


def _nv_nblocks(spec: Spec) -> int:
    r, c = _nv_shape(spec)
    return r * c // (16 if spec.param["tile"] == "1x16" else 256)


def _nv_exact(spec: Spec, ins: tuple[int, ...], sr_kw: dict | None = None) -> tuple[int, ...] | None:
    """``sr_kw``: the exact model's rand (one list per block, in block order), rand_bits and sr_variant."""
    p = spec.param
    r, c = _nv_shape(spec)
    matrix = [list(ins[i * c:(i + 1) * c]) for i in range(r)]
    blocks = _nv.tiles(matrix, p["tile"])
    q = exact_or_none(functools.partial(_nv.quantize_blocks, global_scale=p.get("global_scale", "decode"),
                                        **(sr_kw or {})), blocks,
                      p["division"], int(p["levels"]), p["zero_scale"], p["rounding"])
    if q is None:
        return None
    ts = q.tensor_scale if q.tensor_scale is not None else 0x3F800000
    elems = [0] * (r * c)
    if p["tile"] == "1x16":
        flat = [x for blk in q.codes for x in blk]
        elems = flat
    else:
        for t, blk in enumerate(q.codes):
            ti, tj = divmod(t, c // 16)
            for idx, code in enumerate(blk):
                ii, jj = divmod(idx, 16)
                elems[(ti * 16 + ii) * c + tj * 16 + jj] = code
    return (ts, *q.scales, *elems)


def _nv_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast.nvfp4 import nvfp4_quantize

    p = spec.param
    r, c = _nv_shape(spec)
    x = float_view(to_numpy(inputs[0]), F32).reshape(-1, r, c)
    n = x.shape[0]
    if backend == "triton":  # every vector its own tensor, in one launch, on the operands' device
        from refarith.fast import triton_blocks as tbk

        ts, s, q = tbk.nvfp4_quantize_many(tbk.like_device(x, inputs[0]), p["division"], int(p["levels"]),
                                           p["zero_scale"], p["tile"], p["rounding"],
                                           p.get("global_scale", "decode"))
        return to_numpy(ts).astype(np.int64) & 0xFFFFFFFF, to_numpy(s), to_numpy(q).reshape(n, -1)
    kw = dict(division=p["division"], levels=int(p["levels"]), zero_scale=p["zero_scale"], tile=p["tile"],
              rounding=p["rounding"], backend=backend, global_scale=p.get("global_scale", "decode"))
    if p["levels"] == "1":
        _, s, q = nvfp4_quantize(as_backend(x, backend), **kw)
        ts = np.full(n, 0x3F800000, dtype=np.uint32)
        return ts, to_numpy(s).reshape(n, -1), to_numpy(q).reshape(n, -1)
    ts = np.empty(n, dtype=np.uint32)
    ss, qs = [], []
    for i in range(n):  # the per-tensor scale is per vector: one call per vector
        t, s, q = nvfp4_quantize(as_backend(x[i], backend), **kw)
        ts[i] = np.array([float(to_numpy(t))], dtype=np.float32).view(np.uint32)[0]
        ss.append(to_numpy(s).reshape(-1))
        qs.append(to_numpy(q).reshape(-1))
    return ts, np.stack(ss), np.stack(qs)


def _division_blocks() -> list[list[int]]:
    """16-element blocks that separate ``divide`` from ``reciprocal``: the block maximum 6 S pins the block scale
    to S (significand 1.75 or 1.875, where fl(1/S) is inexact), and the first element runs over +-4 binary32
    ulps around S m for every E2M1 rounding boundary m."""
    out = []
    for scale in (1.75, 1.875, 1.75 * 2.0 ** -5, 1.875 * 2.0 ** 7):
        pin = int(np.array(6 * scale, np.float32).view(np.uint32))
        for m in (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0):
            centre = int(np.array(m * scale, np.float32).view(np.uint32))
            for d in range(-4, 5):
                for sign in (0, 1 << 31):
                    out.append([(centre + d) | sign, pin] + [0] * 14)
    return out


def _nv_boundary(spec: Spec) -> list[tuple[int, ...]]:
    r, c = _nv_shape(spec)
    k = r * c
    if k <= 64:
        vecs = _f32_block_boundaries(spec, k, Fraction(6 * 448), range(-150, 128, 1))
    else:
        vecs = _f32_block_boundaries(spec, k, Fraction(6 * 448), range(-150, 128, 7))
    if spec.param["tile"] == "1x16":  # r rows of c // 16 blocks each: r * c // 16 blocks per vector
        per = k // 16
        one, three = 0x3F800000, 0xC0400000  # 1.0 and -3.0
        # all-zero blocks next to non-zero ones: the zero_scale variants differ there
        blocks = [[0] * 16, [one] + [0] * 15, [0] * 16, [three] * 16] * 2 + [[0x80000000] * 16, [0] * 16,
                                                                         [0] * 15 + [one], [0] * 16]
        blocks += _division_blocks()
        for i in range(0, len(blocks) - per + 1, per):
            vecs.append(tuple(x for b in blocks[i:i + per] for x in b))
    return vecs


register_driver(Driver(
    "nvfp4_quantize",
    inputs=lambda s: (Operand("x", F32, _nv_shape(s)[0] * _nv_shape(s)[1]),),
    outputs=lambda s: (Operand("tensor_scale", F32), Operand("scales", UE4M3, _nv_nblocks(s)),
                       Operand("elements", E2M1, _nv_shape(s)[0] * _nv_shape(s)[1])),
    exact=_nv_exact,
    boundary=_nv_boundary,
    # global_scale is absent from the id at its default (decode), so it is listed here: identify tries both
    variant_params=lambda s: {**schema_variants(s, exclude=("tile",)), "global_scale": _nv.GLOBAL_SCALES},
    random=lambda s, n, seed: _f32_block_random(_nv_shape(s)[0] * _nv_shape(s)[1], 0.002)(s, n, seed),
    random_count=lambda s: 512 if s.param["tile"] == "1x16" else 64,
    fast=_nv_fast,
    backends=("numpy", "torch", "triton"),
    doc="a 4x16 (1x16 tiles) or 16x32 (16x16 tiles) binary32 tensor -> per-tensor scale, block scales, elements",
))


# ------------------------------------------------------------------ integer quantization
def _iq_layout(spec: Spec) -> tuple[int, int, int]:
    """(values per vector, number of scale groups, group length) of an int_quantize vector."""
    g = spec.param["granularity"]
    if g == "tensor":
        return 16, 1, 16
    if g == "channel":
        return 32, 4, 8
    size = int(spec.param["group"])
    n = min(2 * size, 256)
    return n, -(-n // size), size


def _iq_exact(spec: Spec, ins: tuple[int, ...], sr_kw: dict | None = None) -> tuple[int, ...] | None:
    """``sr_kw``: rand (one integer per value), rand_bits and sr_variant of a stochastic spec."""
    p = spec.param
    fmt = spec.fmt(0)
    n, ng, size = _iq_layout(spec)
    vals = [f32_float(c) for c in ins]
    scales, zps, codes = [], [], []
    for g in range(ng):
        kw = {} if sr_kw is None else {**sr_kw, "rand": sr_kw["rand"][g * size:(g + 1) * size]}
        grp = exact_or_none(functools.partial(_iq.quantize_group, **kw), vals[g * size:(g + 1) * size], fmt.bits,
                            p["scheme"], p["clip"], p["rounding"])
        if grp is None:
            return None
        from refarith.golden.opdrivers import f32_code

        scales.append(f32_code(grp.scale))
        zps.append(grp.zero_point & 0xFFFFFFFF)
        codes.extend(grp.q)
    qc = icodes(fmt, codes)
    return None if qc is None else (*scales, *zps, *qc)


def _iq_fast(spec: Spec, inputs: tuple, backend: str, sr_kw: dict | None = None) -> tuple:
    """``sr_kw``: rand (numpy, of the input's shape), rand_bits and sr_variant of a stochastic spec."""
    from refarith.fast import intquant

    p = spec.param
    fmt = spec.fmt(0)
    n, ng, size = _iq_layout(spec)
    x = float_view(inputs[0], F32).reshape(-1, n)
    rows = x.shape[0]
    # The kernel raises for a whole call when one group holds NaN/inf or (asymmetric) a range that overflows
    # binary32; those vectors are outside the spec (the exact model raises too), so they run as zeros here and
    # their outputs are not compared.
    g = x.reshape(rows * ng, -1) if ng * size == n else x
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~np.isfinite(g).all(axis=1)
        if p["scheme"] == "asymmetric":
            bad |= ~np.isfinite(np.maximum(g.max(axis=1), 0) - np.minimum(g.min(axis=1), 0))
    if bad.any():
        x = x.copy()
        rb = bad.reshape(rows, -1).any(axis=1)
        x[rb] = 0
    # Per-vector scales: group granularity over each vector's own groups gives exactly the vector's semantics.
    args = (fmt.bits, p["scheme"], "group", size, p["clip"], p["rounding"], -1)
    arr = x.reshape(rows * ng, -1) if ng * size == n else x
    if backend == "triton":  # the traced kernel, on the operands' device
        from refarith.fast.triton_blocks import int_quantize, like_device

        kw = {} if sr_kw is None else {**sr_kw, "rand": like_device(sr_kw["rand"].reshape(arr.shape), inputs[0])}
        s, z, q = (to_numpy(v) for v in int_quantize(like_device(arr, inputs[0]), *args, **kw))
    elif backend == "torch":
        kw = {} if sr_kw is None else {**sr_kw, "rand": as_backend(sr_kw["rand"].reshape(arr.shape), backend)}
        s, z, q = (to_numpy(v) for v in intquant.quantize_torch(as_backend(arr, "torch"), *args, **kw))
    else:
        kw = {} if sr_kw is None else {**sr_kw, "rand": as_backend(sr_kw["rand"].reshape(arr.shape), backend)}
        s, z, q = intquant.quantize(arr, *args, **kw)
    s = np.asarray(s, dtype=np.float32).view(np.uint32).reshape(rows, ng)
    z = np.asarray(z).astype(np.int64).reshape(rows, ng) & 0xFFFFFFFF
    q = np.asarray(q).astype(np.int64).reshape(rows, n) & ((1 << fmt.bits) - 1)
    return s, z, q


def _iq_boundary(spec: Spec) -> list[tuple[int, ...]]:
    n, _, _ = _iq_layout(spec)
    return [b for b in _f32_block_boundaries(spec, n, None, range(-149, 128, 3))]


register_driver(Driver(
    "int_quantize",
    inputs=lambda s: (Operand("x", F32, _iq_layout(s)[0]),),
    outputs=lambda s: (Operand("scales", F32, _iq_layout(s)[1]), Operand("zero_points", INT32, _iq_layout(s)[1]),
                       Operand("codes", s.fmt(0), _iq_layout(s)[0])),
    exact=_iq_exact,
    boundary=_iq_boundary,
    variant_params=lambda s: schema_variants(s, exclude=("granularity",)),
    random=lambda s, n, seed: _f32_block_random(_iq_layout(s)[0], 0.0)(s, n, seed),
    random_count=lambda s: 1024 if _iq_layout(s)[0] <= 32 else 128,
    fast=_iq_fast,
    backends=("numpy", "torch", "triton"),
    doc="16 values (tensor), a 4x8 matrix per row (channel) or a row of groups -> scales, zero points, codes",
))


# ------------------------------------------------------------------ block floating point
def _bfp_block(spec: Spec) -> int:
    return int(spec.param["block"])


def _bfp_exact(spec: Spec, ins: tuple[int, ...], sr_kw: dict | None = None) -> tuple[int, ...] | None:
    fmt = spec.fmt(0)
    blk = exact_or_none(functools.partial(_bfp.quantize_block, **(sr_kw or {})), [f32_float(c) for c in ins],
                        fmt.bits, spec.param["rounding"])
    if blk is None:
        return None
    m = icodes(fmt, blk.m)
    return None if m is None else (blk.exp & 0xFFFFFFFF, *m)


def _bfp_fast(spec: Spec, inputs: tuple, backend: str, sr_kw: dict | None = None) -> tuple:
    from refarith.fast import bfp

    fmt = spec.fmt(0)
    if backend == "triton":  # on the operands' device
        from refarith.fast.triton_blocks import like_device

        x = like_device(float_view(to_numpy(inputs[0]), F32), inputs[0])
    else:
        x = as_backend(float_view(inputs[0], F32), backend)
    e, m = bfp.quantize(x, fmt.bits, block=_bfp_block(spec), rounding=spec.param["rounding"], axis=-1,
                        backend=backend, **(sr_kw or {}))
    e = to_numpy(e).astype(np.int64)[:, 0] & 0xFFFFFFFF
    m = to_numpy(m).astype(np.int64) & ((1 << fmt.bits) - 1)
    return e, m


register_driver(Driver(
    "bfp_quantize",
    inputs=lambda s: (Operand("x", F32, _bfp_block(s)),),
    outputs=lambda s: (Operand("exponent", INT32), Operand("mantissas", s.fmt(0), _bfp_block(s))),
    exact=_bfp_exact,
    boundary=lambda s: _f32_block_boundaries(s, _bfp_block(s), None, range(-149, 128)),
    variant_params=lambda s: schema_variants(s, exclude=("align",)),
    random=lambda s, n, seed: _f32_block_random(_bfp_block(s), 0.0)(s, n, seed),
    random_count=1024,
    fast=_bfp_fast,
    backends=("numpy", "torch", "triton"),
    doc="a block of binary32 values -> shared exponent (int32), P-bit mantissas",
))


# ------------------------------------------------------------------ LLM.int8()
L8_M, L8_K, L8_N = 4, 8, 4


def _l8_exact(spec: Spec, ins: tuple[int, ...]) -> tuple[int, ...] | None:
    p = spec.param
    xs = [F16.finite_value(c) if F16.is_finite_code(c) else None for c in ins]
    if any(v is None for v in xs):
        return None
    x = [xs[i * L8_K:(i + 1) * L8_K] for i in range(L8_M)]
    off = L8_M * L8_K
    w = [xs[off + i * L8_N: off + (i + 1) * L8_N] for i in range(L8_K)]
    r = exact_or_none(_l8.matmul, x, w, Fraction(p["threshold"]), p["accumulate"])
    return None if r is None else tuple(c for row in r.out for c in row)


def _l8_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast import llmint8

    p = spec.param
    x = float_view(inputs[0], F16).reshape(-1, L8_M, L8_K)
    w = float_view(inputs[1], F16).reshape(-1, L8_K, L8_N)
    out = np.empty((x.shape[0], L8_M * L8_N), dtype=np.uint16)
    thr = float(Fraction(p["threshold"]))
    for i in range(x.shape[0]):
        if backend == "torch":
            r = llmint8.matmul_torch(as_backend(x[i], "torch"), as_backend(w[i], "torch"), thr, p["accumulate"])
        else:
            r = llmint8.matmul(x[i], w[i], thr, p["accumulate"])
        out[i] = r[4].view(np.uint16).reshape(-1)
    return (out,)


def _f16_random(rng: random.Random, outlier: float) -> int:
    """A binary16 code: mostly |x| < 4 (normal range), sometimes an outlier in [6, 64), sometimes zero."""
    u = rng.random()
    if u < 0.05:
        return rng.randrange(2) << 15
    if u < 0.05 + outlier:
        v = rng.uniform(6, 64)
    else:
        v = rng.uniform(0, 4)
    c = int(np.array([v], dtype=np.float16).view(np.uint16)[0])
    return c | (rng.randrange(2) << 15)


def _l8_random(spec: Spec, n: int, seed: int) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        p = rng.choice((0.0, 0.02, 0.1))
        out.append(tuple(_f16_random(rng, p) for _ in range(L8_M * L8_K)) +
                   tuple(_f16_random(rng, 0.0) for _ in range(L8_K * L8_N)))
    return out


def _l8_boundary(spec: Spec) -> list[tuple[int, ...]]:
    rng = fixed_rng(spec, "llmint8")
    thr = Fraction(spec.param["threshold"])
    from refarith.exact.ops import encode
    from refarith.exact.value import Value

    near = []
    for v in (thr, thr * (1 - Fraction(1, 1024)), thr * (1 + Fraction(1, 1024))):
        try:
            near.append(encode(Value.of(v), F16, "rne", "saturate").code)
        except Exception:  # noqa: BLE001 - a threshold outside binary16 has no neighbours to test
            continue
    out = []
    base = _l8_random(spec, 64, rng.randrange(1 << 30))
    for b in base:
        for c in near:
            v = list(b)
            v[rng.randrange(L8_M * L8_K)] = c
            out.append(tuple(v))
    out.append(tuple([0] * (L8_M * L8_K + L8_K * L8_N)))
    big = F16.max_code
    out.append(tuple([big] * (L8_M * L8_K + L8_K * L8_N)))
    out.append(tuple([0x3C00] * (L8_M * L8_K) + [big] * (L8_K * L8_N)))
    return out


register_driver(Driver(
    "llmint8_matmul",
    inputs=lambda s: (Operand("x", F16, L8_M * L8_K), Operand("w", F16, L8_K * L8_N)),
    outputs=lambda s: (Operand("y", F16, L8_M * L8_N),),
    exact=_l8_exact,
    boundary=_l8_boundary,
    variant_params=schema_variants,
    random=_l8_random,
    random_count=1024,
    fast=_l8_fast,
    doc="X (4x8) and W (8x4) binary16, row-major -> the 4x4 binary16 product",
))

