"""NVFP4 variants of deployed code: the reciprocal global scale g = fl(fl(1 / max(amax, 2^-126)) * 2688) with block
scales fl(b * g) and elements fl(x / fl(S / g)) (compressed-tensors 0.20.1), and the 0.125 scale of a block whose
scale rounds to zero (``zero_scale=eighth``).  The exact model against the recipe recomputed with numpy binary32
operations and ml_dtypes' E4M3 / E2M1 casts, the numpy and torch kernels against the exact model, the spec rules,
and identify naming the variant for that independent kernel."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from refarith.certify.adapters import Kernel
from refarith.certify.identify import identify
from refarith.errors import SpecError, UnknownModeError
from refarith.exact import nvfp4 as env
from refarith.fast import nvfp4 as fnv
from refarith.spec import parse_spec

F32 = np.float32


def _tensors() -> list[np.ndarray]:
    """4 x 16 binary32 tensors: normal ranges, an all-zero block, a tiny block next to a large one, subnormal and
    all-zero tensors (g overflows there), the FP8 scale overflowing (b * g > 448 cannot happen: g is chosen for it,
    so a given g is not needed)."""
    rng = np.random.default_rng(21)
    out = []
    for e in (-3, 0, 4, 11, -20, -60, -110, -126, -140):
        x = (rng.standard_normal((4, 16)) * 2.0 ** e).astype(F32)
        out.append(x)
        z = x.copy()
        z[1] = 0
        z[2] *= F32(2.0 ** -24)
        out.append(z)
    out.append(np.zeros((4, 16), F32))
    t = np.zeros((4, 16), F32)
    t[0, 3] = F32(2.0 ** -149)
    out.append(t)
    return out


def _blocks(x: np.ndarray) -> list[list[int]]:
    return [[int(c) for c in row] for row in x.reshape(-1, 16).view(np.uint32)]


def recipe(x: np.ndarray, eighth: bool = True) -> tuple[F32, np.ndarray, np.ndarray]:
    """compressed-tensors' NVFP4 recipe, written from its source with numpy float32 operations (IEEE RNE) and
    ml_dtypes' casts (RNE): g, the block scales and the element values of a 4 x 16 tensor."""
    ml = pytest.importorskip("ml_dtypes")
    with np.errstate(all="ignore"):
        amax = F32(np.abs(x).max())
        g = (F32(1) / max(amax, F32(2.0 ** -126))) * F32(2688)  # its 2688 / t: torch runs t.reciprocal() * 2688
        if not np.isfinite(g):
            g = F32(1)
        blk = x.reshape(-1, 16)
        b = (np.abs(blk).max(axis=1) / F32(6)).astype(F32) * g
        s = np.minimum(b, F32(448)).astype(ml.float8_e4m3fn).astype(F32)
        if eighth:
            s = np.where(s == 0, F32(0.125), s)
        d = (s / g).astype(F32)
        y = (blk / d[:, None]).astype(F32)
        p = np.clip(y, -6, 6).astype(ml.float4_e2m1fn).astype(F32)
    return g, s, p


def test_exact_model_is_the_recipe():
    for x in _tensors():
        g, s, p = recipe(x)
        q = env.quantize_blocks(_blocks(x), "divide", 2, "eighth", global_scale="reciprocal")
        assert q.tensor_scale == int(np.array(g, F32).view(np.uint32))
        assert [float(env.decode(c, "ue4m3").mag) for c in q.scales] == [float(v) for v in s]
        vals = [float(env.decode(c, "ocp_e2m1").to_float()) for blk in q.codes for c in blk]
        assert vals == [float(v) for v in p.reshape(-1)]  # equal as floats: -0 == 0 (the sign is kept here)


def test_global_scale_and_zero_scale_rules():
    one = 0x3F800000
    # all zero and a lone subnormal: 2688 / max(amax, 2^-126) overflows, g = 1; zero blocks get S = 0.125
    for x in (np.zeros((1, 16), F32), np.array([[2.0 ** -149] + [0.0] * 15], F32)):
        q = env.quantize_blocks(_blocks(x), "divide", 2, "eighth", global_scale="reciprocal")
        assert q.tensor_scale == one and q.scales == (env.UE4M3_EIGHTH,)
    # amax 1: g = 2688, fl(fl(1/6) * 2688) = 448 (the product 448.0000133 rounds to it), S = 448 (0x7E)
    x = np.array([[1.0, -0.5] + [0.0] * 14, [0.0] * 16], F32)
    q = env.quantize_blocks(_blocks(x), "divide", 2, "eighth", global_scale="reciprocal")
    assert q.tensor_scale == int(np.array(2688, F32).view(np.uint32))
    assert q.scales == (0x7E, 0x20)
    assert q.codes[0][:2] == (0x7, 0xD)  # x / fl(448/2688): 1 -> 5.9999998 -> 6, -0.5 -> -3
    # zero_scale=zero keeps the zero scale and signed zero elements; eps clamps b' below at 2^-6 first
    z = env.quantize_blocks(_blocks(x), "divide", 2, "zero", global_scale="reciprocal")
    assert z.scales == (0x7E, 0x00)
    e = env.quantize_blocks(_blocks(x), "divide", 2, "eps", global_scale="reciprocal")
    assert e.scales == (0x7E, 0x08)  # 2^-6
    # dequantization: fl(P * fl(S / g))
    dq = env.dequantize_blocks(q)
    assert dq[0][0].to_float() == float(F32(6) * (F32(448) / F32(2688)))


def test_spec_rules():
    assert str(parse_spec("nvfp4_quantize(global_scale=decode)")) == str(parse_spec("nvfp4_quantize()"))
    assert str(parse_spec(env.COMPRESSED_TENSORS_SPEC)) == (
        "nvfp4_quantize(division=divide,levels=2,global_scale=reciprocal,zero_scale=eighth,tile=1x16,rounding=rne)")
    with pytest.raises(SpecError, match="global_scale=reciprocal needs levels=2"):
        parse_spec("nvfp4_quantize(levels=1,global_scale=reciprocal)")
    with pytest.raises(SpecError, match="global_scale"):
        parse_spec("nvfp4_quantize(global_scale=inverse)")
    with pytest.raises(UnknownModeError, match="needs levels=2"):
        fnv.nvfp4_quantize(np.ones((1, 16), F32), levels=1, global_scale="reciprocal")
    with pytest.raises(UnknownModeError, match="global_scale"):
        fnv.nvfp4_quantize(np.ones((1, 16), F32), global_scale="inverse")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_kernels_equal_the_exact_model(backend):
    if backend == "torch":
        torch = pytest.importorskip("torch")
    xs = _tensors()
    for division, zs, gs in itertools.product(env.DIVISIONS, env.ZERO_SCALES, env.GLOBAL_SCALES):
        for x in xs[::2] + xs[-2:]:
            q = env.quantize_blocks(_blocks(x), division, 2, zs, global_scale=gs)
            xx = x if backend == "numpy" else torch.from_numpy(x)
            st, s, c = fnv.nvfp4_quantize(xx, division, 2, zs, backend=backend, global_scale=gs)
            assert int(np.array(float(st), F32).view(np.uint32)) == q.tensor_scale, (division, zs, gs)
            assert [int(v) for v in np.asarray(s).reshape(-1)] == list(q.scales), (division, zs, gs)
            assert [tuple(int(v) for v in r) for r in np.asarray(c).reshape(-1, 16)] == list(q.codes)
    # one level: eighth only
    x = xs[1]
    q = env.quantize_blocks(_blocks(x), "divide", 1, "eighth")
    _, s, c = fnv.nvfp4_quantize(x if backend == "numpy" else torch.from_numpy(x), "divide", 1, "eighth",
                                 backend=backend)
    assert [int(v) for v in np.asarray(s).reshape(-1)] == list(q.scales) and env.UE4M3_EIGHTH in q.scales


def test_identify_names_the_reciprocal_global_scale_and_the_eighth():
    """identify, varying global_scale and zero_scale, names the compressed-tensors variant for the numpy/ml_dtypes
    recipe above (the values kernel form: refarith maps its values to codes)."""
    from refarith.certify.values import coded

    def fn(spec, operands):
        x = np.asarray(operands[0]).astype(np.uint32).view(F32).reshape(-1, 4, 16)
        gs, ss, ps = zip(*(recipe(t) for t in x))
        return coded("test:recipe", (np.array(gs, F32), np.stack(ss), np.stack([p.reshape(-1) for p in ps])), spec,
                     len(x))

    vecs = [tuple(int(c) for c in x.reshape(-1).view(np.uint32)) for x in _tensors()]
    scores = identify(Kernel("test:recipe", fn), "nvfp4_quantize(division=divide,levels=2)",
                      vary=("global_scale", "zero_scale"), vectors=vecs, signed_zero_ok=True)
    assert [s.spec for s in scores if s.matches] == [str(parse_spec(env.COMPRESSED_TENSORS_SPEC))]
