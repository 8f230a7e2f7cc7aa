"""Vector driver of ``scaled_mm``: A (M x K codes), B (K x N codes) and the spec's scale codes -> D (M x N codes).

M = N = 2; K = 16 without K-blocks (scale none/tensor/row), else two K-blocks (MX 64, NVFP4 32, scale=block
2 * block, so the DeepSeek 1 x 128 and 128 x 128 specs have K = 256).  Columns: A row-major, B row-major, then
scale_a and scale_b row-major in the shapes of :func:`refarith.exact.gemm.scale_shapes`, then (NVFP4) the binary32
tensor scales tensor_scale_a, tensor_scale_b.

Boundary vectors (unit scales unless said): all-zero blocks, exact cancellation (x, -x pairs), accumulator
overflow (the input format's largest products), one NaN or infinity, subnormal products, signed zeros; with
scales also the largest and smallest scale codes, distinct scales per block or row, and for MX/NVFP4 a NaN block
scale (its block's products NaN).  Random vectors draw finite codes with a narrowed exponent range in half of
them so that rounding and cancellation in the accumulator happen, and scales near 1 (binary32: values
0.375 .. 3 and random codes with exponents within 2^+-4; E8M0 2^+-6; UE4M3 codes 0x20 .. 0x4F), now and then
an extreme one.
"""

from __future__ import annotations

import random

import numpy as np

from refarith.errors import RefarithError, SpecError
from refarith.exact import gemm as _gemm
from refarith.formats import get_format
from refarith.golden.drivers import Driver, Operand, register_driver
from refarith.spec import Spec, parse_spec

M, K, N = 2, 16, 2
GEMM_GOLDEN_SPECS = (
    "scaled_mm(ocp_e4m3->bfloat16,scale=tensor)",
    "scaled_mm(ocp_e4m3->binary32,scale=tensor,scale_fmt=ue8m0,accum=sequential)",
    "scaled_mm(ocp_e4m3->bfloat16,scale=row)",
    "scaled_mm(ocp_e4m3->bfloat16,scale=block,bscale=col)",
    "scaled_mm(ocp_e4m3->bfloat16,scale=block)",
    "scaled_mm(ocp_e4m3->bfloat16,scale=block,bscale=col,scale_fmt=ue8m0)",
    "scaled_mm(ocp_e4m3->bfloat16,scale=block,scale_fmt=ue8m0,accum=deepseek_v3)",
    "scaled_mm(ocp_e4m3->binary32,scale=mx)",
    "scaled_mm(ocp_e2m1->bfloat16,scale=mx,accum=fma_chain)",
    "scaled_mm(ocp_e2m1->bfloat16,scale=nvfp4)",
)
"""Scaled specs of the committed golden set: per-tensor (binary32, UE8M0), per-row/column, DeepSeek 1 x 128 and
128 x 128 blocks (binary32, UE8M0), MX (E4M3, E2M1) and NVFP4."""
GEMM_MODEL_GOLDEN_SPECS = (
    "scaled_mm(ocp_e4m3->bfloat16,accum=pairwise,acc=bfloat16)",
    "scaled_mm(ocp_e4m3->bfloat16,accum=kahan,acc=bfloat16)",
    "scaled_mm(ocp_e4m3->binary16,accum=blocked,acc=binary16,nb=4)",
    "scaled_mm(ocp_e4m3->binary32,accum=split_k,splits=4)",
    "scaled_mm(ocp_e4m3->binary32,accum=volta_tc)",
    "scaled_mm(ocp_e4m3->binary32,accum=turing_tc)",
    "scaled_mm(ocp_e4m3->binary32,accum=ampere_tc)",
    "scaled_mm(ocp_e4m3->binary32,accum=hopper_fp8)",
    "scaled_mm(ocp_e4m3->bfloat16,accum=tensor_core,g=4,b=3,tc_round=rne,n_c=8)",
    "scaled_mm(binary16->binary32,accum=pairwise)",
    "scaled_mm(ocp_e4m3->binary16,accum=tensor_core,acc=binary16,g=4,b=11,tc_round=rne,n_c=0)",
    "scaled_mm(ocp_e4m3->bfloat16,accum=tensor_core,acc=bfloat16,g=8,b=9,tc_round=rtz,n_c=8)",
)
"""One committed golden file per accumulator model and preset not covered above (narrow accumulators where the
model's roundings would be invisible in binary32), pairwise into binary32 on binary16 inputs (22-bit products,
binary32 values, whose sums round), and tensor_core into two narrow accumulators (binary16 with rne, whose
groups overflow to inf and stay there; bfloat16 with rtz and promotion after every group); 64 random vectors
each."""


def dims(spec: Spec) -> tuple[int, int, int]:
    """(M, K, N) of one golden vector's multiply."""
    bk = _gemm.block_of(spec)
    return M, (K if bk is None else 2 * bk), N


def scale_operands(spec: Spec) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """(name, format, shape) of the scale operands after A and B, in column order."""
    gr = spec.param["scale"]
    if gr == "none":
        return ()
    m, k, n = dims(spec)
    sa, sb = _gemm.scale_shapes(spec, m, k, n)
    sf = _gemm.scale_format(spec)
    assert sa is not None and sb is not None and sf is not None
    out = [("scale_a", sf, sa), ("scale_b", sf, sb)]
    if gr == "nvfp4":
        out += [("tensor_scale_a", "binary32", ()), ("tensor_scale_b", "binary32", ())]
    return tuple(out)


def _inputs(spec: Spec) -> tuple[Operand, ...]:
    m, k, n = dims(spec)
    ops = [Operand("a", spec.fmt(0), m * k), Operand("b", spec.fmt(len(spec.formats) - 2), k * n)]
    for name, fmt, shape in scale_operands(spec):
        ops.append(Operand(name, get_format(fmt), int(np.prod(shape)) if shape else 1))
    return tuple(ops)


def unpack(spec: Spec, operands: tuple[np.ndarray, ...], v: int) -> tuple:
    """Vector v of grouped operand arrays as (A, B, scale_a, scale_b, tensor_scale_a, tensor_scale_b): code
    matrices, scale arrays of their shapes (an int for a scalar), None where the spec takes no scale."""
    m, k, n = dims(spec)
    a = np.asarray(operands[0])[v].reshape(m, k)
    b = np.asarray(operands[1])[v].reshape(k, n)
    named = {}
    for (name, _, shape), col in zip(scale_operands(spec), operands[2:]):
        x = np.asarray(col)[v]
        named[name] = int(np.asarray(x).reshape(-1)[0]) if not shape else x.reshape(shape)
    return (a, b, *(named.get(x) for x in ("scale_a", "scale_b", "tensor_scale_a", "tensor_scale_b")))


def _split(spec: Spec, codes: tuple[int, ...]) -> tuple:
    """One flat vector as the exact model's arguments (lists)."""
    cols = []
    pos = 0
    for o in _inputs(spec):
        cols.append(np.asarray(codes[pos:pos + o.width], dtype=np.int64)[None])
        pos += o.width
    a, b, *sc = unpack(spec, tuple(cols), 0)
    return a.tolist(), b.tolist(), *(x.tolist() if isinstance(x, np.ndarray) else x for x in sc)


def _exact(spec: Spec, codes: tuple[int, ...]) -> tuple[int, ...] | None:
    a, b, *sc = _split(spec, codes)
    try:
        d = _gemm.scaled_mm(spec, a, b, *sc)
    except SpecError:
        raise
    except RefarithError:
        return None
    return tuple(c for row in d for c in row)


def _fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast import gemm

    m, _, n = dims(spec)
    nvec = int(np.asarray(inputs[0]).shape[0])
    out = np.zeros((nvec, m * n), np.int64)
    for v in range(nvec):
        a, b, *sc = unpack(spec, inputs, v)
        out[v] = gemm.scaled_mm(spec, a, b, *sc, backend=backend).reshape(m * n)
    return (out,)


def _one(fmt) -> int:
    """The code of 1 (formats of at most 16 bits, and binary32)."""
    if fmt.name == "binary32":
        return _f32(1.0)
    return [c for c in _finite(fmt) if fmt.finite_value(c) == 1][0]


def _scale_codes(spec: Spec, rng: random.Random, kind: str) -> list[int]:
    """Flat scale columns: ``unit`` (every scale 1), ``max``/``min`` (the largest/smallest positive finite
    code), ``mixed`` (distinct per block or row), ``nan`` (one NaN block scale, MX/NVFP4), ``random``."""
    out: list[int] = []
    for name, fname, shape in scale_operands(spec):
        f = get_format(fname)
        w = int(np.prod(shape)) if shape else 1
        pos = [c for c in _finite(f) if f.finite_value(c) > 0] if f.nbits <= 8 else None
        if name.startswith("tensor_scale"):
            vals = [_one(f)] * w if kind != "random" else [_f32(rng.choice([0.25, 0.5, 1.5, 3.0]))]
        elif kind == "unit":
            vals = [_one(f)] * w
        elif kind in ("max", "min"):
            if pos is None:
                vals = [_f32(2.0 ** 100 if kind == "max" else 2.0 ** -100)] * w
            else:
                vals = [pos[-1] if kind == "max" else pos[0]] * w
        elif kind == "nan":
            vals = [_one(f)] * w
            if f.nan_code is not None and spec.param["scale"] in ("mx", "nvfp4"):
                vals[0] = f.nan_code
        elif kind == "mixed":
            vals = [_scale_random(f, rng, narrow=True) for _ in range(w)]
        else:
            vals = [_scale_random(f, rng, narrow=rng.random() < 0.9) for _ in range(w)]
        out += vals
    return out


def _f32(x: float) -> int:
    return int(np.array([x], np.float32).view(np.uint32)[0])


def _scale_random(f, rng: random.Random, narrow: bool) -> int:
    if f.name == "binary32":
        if rng.random() < 0.5:
            return _f32(rng.choice([0.375, 0.5, 0.75, 1.0, 1.25, 2.0, 3.0]))
        e = rng.randint(-4, 4) if narrow else rng.randint(-60, 60)
        return ((127 + e) << 23) | rng.getrandbits(23)
    if f.name == "e8m0":
        return 127 + rng.randint(-6, 6) if narrow else rng.randint(0, 254)
    return rng.randint(0x20, 0x4F) if narrow else rng.randint(0, 0x7E)


def _finite(fmt) -> list[int]:
    return [c for c in range(fmt.ncodes) if fmt.is_finite_code(c)]


def _boundary(spec: Spec) -> list[tuple[int, ...]]:
    rng = random.Random(16)
    unit = tuple(_scale_codes(spec, rng, "unit"))
    out = [v + unit for v in _boundary_ab(spec)]
    if scale_operands(spec):
        ab = _boundary_ab(spec)
        for kind in ("max", "min", "mixed", "nan"):
            for v in (ab[1], ab[-1], _random_ab(spec, 1, 17)[0]):  # largest products, -0 * +0, random
                out.append(v + tuple(_scale_codes(spec, rng, kind)))
    return out


def _boundary_ab(spec: Spec) -> list[tuple[int, ...]]:
    fa, fb = spec.fmt(0), spec.fmt(len(spec.formats) - 2)
    M, K, N = dims(spec)  # noqa: N806
    rng = random.Random(16)
    out = []
    za, zb = [0] * (M * K), [0] * (K * N)
    out.append(tuple(za + zb))
    for f, g in ((fa, fb),):
        big_a, big_b = f.max_code, g.max_code
        out.append(tuple([big_a] * (M * K) + [big_b] * (K * N)))  # accumulator overflow for narrow accumulators
        sub_a, sub_b = 1, 1
        out.append(tuple([sub_a] * (M * K) + [sub_b] * (K * N)))  # subnormal products
        fin_a, fin_b = _finite(f), _finite(g)  # once: 65536 codes each for 16-bit formats
        one_a = [c for c in fin_a if f.finite_value(c) == 1][0]
        one_b = [c for c in fin_b if g.finite_value(c) == 1][0]
        canc_a = [big_a if k % 2 == 0 else big_a for k in range(K)] * M
        canc_b = [(big_b if r % 2 == 0 else big_b | g.sign_mask) for r in range(K) for _ in range(N)]
        out.append(tuple(canc_a + canc_b))  # exact cancellation of the largest products
        mixed = [big_a, big_a, one_a, one_a] * (M * K // 4)
        mixed_b = [(big_b, big_b | g.sign_mask, one_b, one_b)[r % 4] for r in range(K) for _ in range(N)]
        out.append(tuple(mixed + mixed_b))  # cancellation with small terms in between
        for special in (f.nan_code, *(c for c in f.inf_codes if c is not None)):
            if special is None:
                continue
            a = [rng.choice(fin_a) for _ in range(M * K)]
            a[3] = special
            out.append(tuple(a + [rng.choice(fin_b) for _ in range(K * N)]))
        out.append(tuple([f.sign_mask] * (M * K) + [0] * (K * N)))  # -0 * +0 products: the sum is +0
    return out


def _random(spec: Spec, n: int, seed: int) -> list[tuple[int, ...]]:
    rng = random.Random(seed + 1)
    return [v + tuple(_scale_codes(spec, rng, "random")) for v in _random_ab(spec, n, seed)]


def _random_ab(spec: Spec, n: int, seed: int) -> list[tuple[int, ...]]:
    fa, fb = spec.fmt(0), spec.fmt(len(spec.formats) - 2)
    M, K, N = dims(spec)  # noqa: N806
    rng = random.Random(seed)
    ca, cb = _finite(fa), _finite(fb)
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            out.append(tuple([rng.choice(ca) for _ in range(M * K)] + [rng.choice(cb) for _ in range(K * N)]))
        else:
            ma, mb = rng.choice(ca), rng.choice(cb)
            a = [min(max((ma & ~fa.sign_mask) + rng.randint(-12, 12), 0), fa.max_code) ^ (rng.randrange(2) *
                 fa.sign_mask) for _ in range(M * K)]
            b = [min(max((mb & ~fb.sign_mask) + rng.randint(-12, 12), 0), fb.max_code) ^ (rng.randrange(2) *
                 fb.sign_mask) for _ in range(K * N)]
            out.append(tuple(a + b))
    return out


_MODEL_IDS = frozenset(str(parse_spec(x)) for x in GEMM_MODEL_GOLDEN_SPECS)


register_driver(Driver(
    "scaled_mm",
    inputs=_inputs,
    outputs=lambda s: (Operand("d", s.fmt(len(s.formats) - 1), M * N),),
    exact=_exact,
    boundary=_boundary,
    random=_random,
    random_count=lambda s: 48 if _gemm.block_of(s) is not None else 64 if str(s) in _MODEL_IDS else 256,
    fast=_fast,
    backends=("numpy", "torch", "triton"),
    doc="A (2xK) and B (Kx2) codes, scale codes -> D (2x2) codes",
))
