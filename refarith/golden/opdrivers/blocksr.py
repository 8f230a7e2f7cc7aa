"""Stochastic element rounding of the block drivers: ``mx_quantize``, ``nvfp4_quantize``, ``bfp_quantize`` and
``int_quantize`` with ``rounding=sr``.

A vector of a stochastic block spec is the deterministic vector (a block of binary32 values; a small NVFP4
tensor) followed by one k-bit random integer per element, the operand ``r:uint<k>*n`` in the elements' order; the
results are those of the deterministic driver.  The exact model takes the same integers
(:func:`refarith.exact.mx.quantize_block`, :func:`refarith.exact.nvfp4.quantize_blocks`,
:func:`refarith.exact.bfp.quantize_block`, :func:`refarith.exact.intquant.quantize_group` with ``rand``), the fast
kernels are :mod:`refarith.fast.blocksr`, :func:`refarith.fast.bfp.quantize` and
:func:`refarith.fast.intquant.quantize` (numpy and torch; all four also on Triton,
:mod:`refarith.fast.triton_blocks`).

Boundary vectors: every third deterministic boundary vector (NVFP4: every eighth), and for blocks of 8 (MX,
BFP) and NVFP4 1x16 tiles the blocks of :func:`hard_mx_blocks` / :func:`hard_blocks` (elements at the grid's
neighbours, at fractions of exactly k and k + 1 bits, far below the quantum; ``int_quantize`` per tensor:
:func:`hard_int_rows`), each with random integers from one
of four patterns: uniform per element, all 2^k - 1, all 2^(k-1), all 0.  Random vectors: the deterministic
driver's, with uniform random integers.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np

from refarith.errors import UnknownModeError
from refarith.exact import mx as _mx
from refarith.exact.ops import decode
from refarith.exact.stochastic import SR_VARIANTS
from refarith.formats import get_format
from refarith.golden.drivers import Operand, drivers, get_driver, is_sr, register_driver, schema_variants
from refarith.golden.opdrivers import F32, as_backend, fixed_rng, float_view, to_numpy
from refarith.golden.opdrivers import blocks as _blocks  # registers the deterministic drivers first
from refarith.spec import Spec

BLOCK_SR_GOLDEN_SPECS = (
    "mx_quantize(ocp_e4m3,block=8,rounding=sr,k=3)",
    "mx_quantize(int8,block=8,rounding=sr,sr=b,k=5)",
    "mx_quantize(ocp_e2m1,block=8,rounding=sr,sr=c,k=4)",
    "mx_quantize(ocp_e5m2,block=8,scale=rceil,rounding=sr,sr=c_odd,k=6)",
    "mx_quantize(ocp_e2m1,block=8,rounding=sr,sr=te_e2m1_8,k=8)",
    "nvfp4_quantize(rounding=sr,sr=te_e2m1_8,k=8)",
    "nvfp4_quantize(division=divide,levels=1,rounding=sr,sr=c,k=4)",
    "bfp_quantize(int8_sym,block=8,rounding=sr,sr=c,k=4)",
    "int_quantize(int4,scheme=asymmetric,rounding=sr,sr=c,k=4)",
)
"""Stochastic block specs of the committed golden set: every variant at least once, small blocks (block=8)."""


def _k(spec: Spec) -> int:
    return int(spec.param["k"])


def _n_elements(spec: Spec) -> int:
    return get_driver(spec).inputs(spec)[0].width


def _sr_kw(spec: Spec, rand) -> dict:
    return dict(rand=rand, rand_bits=_k(spec), sr_variant=spec.param.get("sr", "a"))


def hard_mx_blocks(element: str, k: int, seed: int) -> np.ndarray:
    """Blocks of 8 binary32 values at the hard places of stochastic element rounding: the block maximum (the
    element's largest value) pins the scale to 1, so the other elements sit at known grid positions: at fractions
    2^-k, 1 - 2^-k, 1/2, 1/2 + 2^-(k+1), 3 2^-(k+1), 2^-(k+1) and 2^-(k+30) of an element ulp above each grid value
    (c/c_odd ties, bits beyond 24 + k), one and two binary32 ulps below each grid value (te_e2m1_8's offset),
    just above the largest value, binary32 subnormals, signed zeros; plus random blocks over a wide exponent
    range and blocks of binary32 subnormals (the path without the binary32 -> element table)."""
    fmt = _mx.mx_element(element)
    if fmt.kind == "int":
        grid = [i / 64 for i in range(128)]
    else:
        grid = sorted({abs(decode(c, fmt).to_float()) for c in range(fmt.ncodes) if decode(c, fmt).is_finite})
    return hard_blocks(grid, float(_mx.elem_max(fmt)), k, seed)


def hard_blocks(grid: list[float], top: float, k: int, seed: int) -> np.ndarray:
    """The blocks of :func:`hard_mx_blocks` for the element magnitudes ``grid`` (ascending) of a format whose
    largest one, ``top``, makes the block scale 1 (BFP with P bits: the integers below 2^(P-1))."""
    rng = np.random.default_rng(seed)
    vals: list[float] = []
    for lo, hi in zip(grid, grid[1:]):
        ulp = hi - lo
        for f in (2.0 ** -k, 1 - 2.0 ** -k, 0.5, 0.5 + 2.0 ** -(k + 1), 3 * 2.0 ** -(k + 1), 2.0 ** -(k + 1),
                  2.0 ** -(k + 30)):
            vals.append(lo + f * ulp)
        below = np.nextafter(np.float32(hi), np.float32(0))
        vals += [float(below), float(np.nextafter(below, np.float32(0)))]
    vals += [top * 1.0000001, 2.0 ** -140, 2.0 ** -149, 1e-30, 0.0, -0.0]
    v = np.asarray(vals, dtype=np.float32)
    v = v * np.where(rng.random(v.shape) < 0.5, -1, 1).astype(np.float32)
    v = np.concatenate([v, rng.standard_normal((-len(v)) % 7).astype(np.float32)])
    body = v.reshape(-1, 7)
    pinned = np.concatenate([np.full((len(body), 1), top, dtype=np.float32), body], axis=1)
    wide = (rng.standard_normal((24, 8)) * np.exp2(rng.integers(-135, 120, (24, 1)))).astype(np.float32)
    tiny = rng.integers(1, 1 << 23, (4, 8)).astype(np.uint32).view(np.float32)
    return np.concatenate([pinned, wide, tiny]).astype(np.float32)


def hard_int_rows(spec: Spec, k: int) -> np.ndarray:
    """16-value groups of an ``int_quantize`` spec whose quotients x / s sit at the hard places: the group maximum
    makes s = 2^p exactly, the other values are n + f for integers n at the bottom, the middle and the top of the
    range and fractions f of exactly k and k + 1 bits (the c / c_odd ties), of many more bits, just below an
    integer, and 2^-8 - 2^-24, 2^-8 - 2^-25 (te_e2m1_8's binary32 sum at and below its tie), at p = -3 and
    p = -140 (subnormal scales); symmetric specs negate every other value."""
    bits, p = spec.fmt(0).bits, spec.param
    qmax = (1 << (bits - 1)) - 1
    top = (1 << bits) - 1 if p["scheme"] == "asymmetric" else qmax + (0.5 if p["clip"] == "full" else 0)
    fr = [0.5, 2.0 ** -k, 1 - 2.0 ** -k, 2.0 ** -(k + 1), 3 * 2.0 ** -(k + 1), 1 + 2.0 ** -(k + 1), 2.0 ** -24,
          1 - 2.0 ** -20, 0.5 + 2.0 ** -(k + 9), 2.0 ** -8 - 2.0 ** -24, 2.0 ** -8 - 2.0 ** -25, 0.0, 0.75, 0.375,
          1 - 2.0 ** -(k + 1)]
    sign = 1.0 if p["scheme"] == "asymmetric" else -1.0
    rows = []
    for e in (-3, -140):
        for n in (0, int(top) // 2, int(top) - 2):
            vals = [min(n + f, top) * (sign if i % 2 else 1.0) for i, f in enumerate(fr)]
            rows.append(np.float32(np.array([top] + vals) * 2.0 ** e))
    return np.repeat(np.array(rows), 4, axis=0)


def rand_patterns(shape: tuple, k: int, seed: int) -> list[np.ndarray]:
    """Random integers for vectors of ``shape``: uniform, all 2^k - 1 (rounds up wherever the variant can), all
    2^(k-1), all 0 (rounds up nowhere but at te_e2m1_8's offset)."""
    rng = np.random.default_rng(seed)
    top = (1 << k) - 1
    return [rng.integers(0, top + 1, shape, dtype=np.int64), np.full(shape, top, np.int64),
            np.full(shape, top >> 1, np.int64), np.zeros(shape, np.int64)]


def _with_rand(spec: Spec, vecs: list[tuple[int, ...]], seed: int, patterns: bool) -> list[tuple[int, ...]]:
    n, k = _n_elements(spec), _k(spec)
    rng = random.Random(seed)
    out = []
    for i, v in enumerate(vecs):
        p = i % 4 if patterns else 0
        if p == 0:
            r = [rng.randrange(1 << k) for _ in range(n)]
        else:
            r = [((1 << k) - 1, ((1 << k) - 1) >> 1, 0)[p - 1]] * n
        out.append(tuple(v) + tuple(r))
    return out


def _wrap(base):
    """The driver ``base`` extended by the stochastic specs of its op (the deterministic ones unchanged)."""
    op = base.op

    def inputs(spec: Spec):
        ins = base.inputs(spec)
        if not is_sr(spec):
            return ins
        return (*ins, Operand("r", get_format(f"uint{_k(spec)}"), ins[0].width))

    def exact(spec: Spec, vec):
        if not is_sr(spec):
            return base.exact(spec, vec)
        n = _n_elements(spec)
        x, r = vec[:n], list(vec[n:])
        if op == "mx_quantize":
            return _blocks._mx_exact(spec, x, _sr_kw(spec, r))
        if op == "bfp_quantize":
            return _blocks._bfp_exact(spec, x, _sr_kw(spec, r))
        if op == "int_quantize":
            return _blocks._iq_exact(spec, x, _sr_kw(spec, r))
        rows, cols = _blocks._nv_shape(spec)
        rmatrix = [r[i * cols:(i + 1) * cols] for i in range(rows)]
        from refarith.exact import nvfp4 as _nv

        return _blocks._nv_exact(spec, x, _sr_kw(spec, _nv.tiles(rmatrix, spec.param["tile"])))

    def boundary(spec: Spec):
        if not is_sr(spec):
            return base.boundary(spec)
        vecs = base.boundary(spec)[::3 if op == "mx_quantize" else 8]
        seed = fixed_rng(spec, "sr").randrange(1 << 30)
        hard = None
        if op == "mx_quantize" and _n_elements(spec) == 8:
            hard = hard_mx_blocks(spec.formats[0], _k(spec), seed)
        elif op == "bfp_quantize" and _n_elements(spec) == 8:  # scale 1: the integers below 2^(P-1)
            half = 1 << (spec.fmt(0).bits - 1)
            hard = hard_blocks([float(i) for i in range(half)], float(half - 1), _k(spec), seed)
        elif op == "nvfp4_quantize" and spec.param["tile"] == "1x16":
            # 16-blocks of two hard E2M1 rows (block maximum 6: scale 1), four blocks a vector, each vector with
            # every random-integer pattern
            rows = hard_mx_blocks("ocp_e2m1", _k(spec), seed)
            rows = rows[:len(rows) // 8 * 8].reshape(-1, 64)
            hard = np.repeat(rows, 4, axis=0)
        elif op == "int_quantize" and spec.param["granularity"] == "tensor":
            hard = hard_int_rows(spec, _k(spec))
        if hard is not None:
            vecs = [tuple(int(t) for t in row) for row in hard.view(np.uint32)] + vecs
        return _with_rand(spec, vecs, fixed_rng(spec, "rand").randrange(1 << 30), patterns=True)

    def random_vectors(spec: Spec, count: int, seed: int):
        vecs = base.random_inputs(spec, count, seed)
        return vecs if not is_sr(spec) else _with_rand(spec, vecs, seed + 1, patterns=False)

    def variants(spec: Spec):
        if not is_sr(spec):
            return base.variant_params(spec)
        out = schema_variants(spec, exclude=("rounding", "tile", "granularity"))
        out["sr"] = SR_VARIANTS
        return out

    def fast(spec: Spec, operands: tuple, backend: str):
        if not is_sr(spec):
            return base.fast(spec, operands, backend)
        if backend == "triton" and op in ("mx_quantize", "nvfp4_quantize", "bfp_quantize"):
            return _triton_sr(spec, operands)
        if backend not in ("numpy", "torch", "triton"):
            raise UnknownModeError(f"{spec}: stochastic block rounding has fast kernels on numpy, torch and triton "
                                   f"only, not {backend}")
        return _fast_sr(spec, operands, backend)

    def random_count(spec: Spec):
        if is_sr(spec):
            return 96 if op == "nvfp4_quantize" else 512
        rc = base.random_count
        return rc(spec) if callable(rc) else rc

    return dataclasses.replace(base, inputs=inputs, exact=exact, boundary=boundary, random=random_vectors,
                               variant_params=variants, fast=fast, random_count=random_count)


def _triton_sr(spec: Spec, operands: tuple) -> tuple:
    """The Triton kernels of :mod:`refarith.fast.triton_blocks` on the operands' device (torch tensors): MX and BFP
    over the vectors' blocks, NVFP4 every vector its own tensor, all in one launch."""
    from refarith.fast import triton_blocks as tbk

    p, k, v = spec.param, _k(spec), spec.param.get("sr", "a")
    x = float_view(to_numpy(operands[0]), F32)
    r = to_numpy(operands[1]).astype(np.int64)
    sr = dict(rand_bits=k, sr_variant=v)
    if spec.op == "bfp_quantize":
        bits = spec.fmt(0).bits
        e, m = tbk.bfp_quantize(tbk.like_device(x, operands[0]), bits, _blocks._bfp_block(spec), "sr",
                                rand=tbk.like_device(r, operands[0]), **sr)
        return to_numpy(e).astype(np.int64)[:, 0] & 0xFFFFFFFF, to_numpy(m).astype(np.int64) & ((1 << bits) - 1)
    if spec.op == "mx_quantize":
        s, c = tbk.mx_quantize(tbk.like_device(x, operands[0]), spec.formats[0], block=int(p["block"]),
                               scale=p["scale"], rounding="sr", rand=tbk.like_device(r, operands[0]), **sr)
        return to_numpy(s)[:, 0], to_numpy(c)
    rows, cols = _blocks._nv_shape(spec)
    x, r = x.reshape(-1, rows, cols), r.reshape(-1, rows, cols)
    ts, s, q = tbk.nvfp4_quantize_many(tbk.like_device(x, operands[0]), p["division"], int(p["levels"]),
                                       p["zero_scale"], p["tile"], "sr", p.get("global_scale", "decode"),
                                       rand=tbk.like_device(r, operands[0]), **sr)
    return to_numpy(ts).astype(np.int64) & 0xFFFFFFFF, to_numpy(s), to_numpy(q).reshape(len(x), -1)


def _fast_sr(spec: Spec, operands: tuple, backend: str) -> tuple:
    from refarith.fast.blocksr import mx_quantize_sr, nvfp4_quantize_sr

    p, k, v = spec.param, _k(spec), spec.param.get("sr", "a")
    x = float_view(to_numpy(operands[0]), F32)
    r = to_numpy(operands[1]).astype(np.int64)
    if spec.op == "bfp_quantize":
        return _blocks._bfp_fast(spec, operands[:1], backend, _sr_kw(spec, as_backend(r, backend)))
    if spec.op == "int_quantize":
        return _blocks._iq_fast(spec, operands[:1], backend, _sr_kw(spec, r))
    if spec.op == "mx_quantize":
        s, c = mx_quantize_sr(as_backend(x, backend), spec.formats[0], as_backend(r, backend), k, v,
                              block=int(p["block"]), scale=p["scale"], backend=backend)
        return to_numpy(s)[:, 0], to_numpy(c)
    rows, cols = _blocks._nv_shape(spec)
    x, r = x.reshape(-1, rows, cols), r.reshape(-1, rows, cols)
    kw = dict(division=p["division"], levels=int(p["levels"]), zero_scale=p["zero_scale"], tile=p["tile"],
              global_scale=p.get("global_scale", "decode"), backend=backend)
    n = x.shape[0]
    if p["levels"] == "1":
        _, s, q = nvfp4_quantize_sr(as_backend(x, backend), as_backend(r, backend), k, v, **kw)
        return np.full(n, 0x3F800000, dtype=np.uint32), to_numpy(s).reshape(n, -1), to_numpy(q).reshape(n, -1)
    ts = np.empty(n, dtype=np.uint32)
    ss, qs = [], []
    for i in range(n):  # the per-tensor scale is per vector: one call per vector
        t, s, q = nvfp4_quantize_sr(as_backend(x[i], backend), as_backend(r[i], backend), k, v, **kw)
        ts[i] = np.array([float(to_numpy(t))], dtype=np.float32).view(np.uint32)[0]
        ss.append(to_numpy(s).reshape(-1))
        qs.append(to_numpy(q).reshape(-1))
    return ts, np.stack(ss), np.stack(qs)


for _op in ("mx_quantize", "nvfp4_quantize", "bfp_quantize", "int_quantize"):
    register_driver(_wrap(drivers()[_op]))
