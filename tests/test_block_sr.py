"""Stochastic element rounding of the fast MX and NVFP4 kernels (refarith.fast.blocksr) against the exact model.

Expected codes come from refarith.exact.mx.quantize_block / refarith.exact.nvfp4.quantize_blocks with
rounding="sr" and the same random integers; never from the kernels.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from refarith.errors import RefarithError, UnknownModeError
from refarith.exact import mx as emx
from refarith.exact import nvfp4 as env
from refarith.exact.ops import decode
from refarith.fast.blocksr import mx_quantize_sr, nvfp4_quantize_sr
from refarith.golden.opdrivers.blocksr import hard_mx_blocks, rand_patterns

MX_ELEMENTS = ("ocp_e4m3", "ocp_e5m2", "ocp_e3m2", "ocp_e2m3", "ocp_e2m1", "int8", "int8_sym")
VARIANTS = ("a", "b", "c", "c_odd")


def _f32(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float32)


def _mx_exact(x: np.ndarray, r: np.ndarray, elem: str, k: int, variant: str, scale: str = "floor"):
    """(scales, codes) of the exact model, blocks along the last axis of a 2-D (nblocks, block) array."""
    scales, codes = [], []
    for row, rr in zip(x.view(np.uint32), r):
        blk = emx.quantize_block([decode(int(b), "binary32") for b in row], elem, scale, "sr",
                                 rand=[int(t) for t in rr], rand_bits=k, sr_variant=variant)
        scales.append(blk.scale)
        codes.append(blk.codes)
    return np.array(scales), np.array(codes)


def _backends():
    out = ["numpy"]
    try:
        import torch  # noqa: F401

        out.append("torch")
    except ImportError:
        pass
    return out


def _as(backend: str, a: np.ndarray):
    if backend == "numpy":
        return a
    import torch

    return torch.from_numpy(np.ascontiguousarray(a))


_QUICK = {("ocp_e4m3", "a", 3), ("ocp_e4m3", "c", 3), ("ocp_e2m1", "b", 3), ("ocp_e2m1", "c_odd", 3),
          ("int8", "c", 3), ("ocp_e5m2", "a", 40), ("int8_sym", "c", 1)}
_MX_CASES = [pytest.param(e, v, k, marks=() if (e, v, k) in _QUICK else pytest.mark.slow)
             for e in MX_ELEMENTS for v, k in [(v, 3) for v in VARIANTS] + [("a", 40), ("c", 1)]]


@pytest.mark.parametrize("elem,variant,k", _MX_CASES)
def test_mx_sr_equals_exact_model(elem, variant, k):
    x = hard_mx_blocks(elem, k, seed=len(elem) * 7 + k)
    for r in rand_patterns(x.shape, k, seed=k)[:2]:
        want_s, want_c = _mx_exact(x, r, elem, k, variant)
        for backend in _backends():
            s, c = mx_quantize_sr(_as(backend, x), elem, _as(backend, r), k, variant, block=8, backend=backend)
            assert np.array_equal(np.asarray(s)[:, 0], want_s), (elem, variant, k, backend)
            assert np.array_equal(np.asarray(c), want_c), (elem, variant, k, backend)


@pytest.mark.parametrize("k", [8])
def test_mx_fp4_te_e2m1_8(k):
    """Transformer Engine's rule: an element up to 2^-j ulp below a neighbour rounds up for every r (the binary32
    rounding of |x| + r ulp / 256); the pinned blocks put elements one and two binary32 ulps below each one."""
    x = hard_mx_blocks("ocp_e2m1", k, seed=5)
    for r in rand_patterns(x.shape, k, seed=3)[:2]:
        want_s, want_c = _mx_exact(x, r, "ocp_e2m1", k, "te_e2m1_8")
        for backend in _backends():
            s, c = mx_quantize_sr(_as(backend, x), "ocp_e2m1", _as(backend, r), k, "te_e2m1_8", block=8,
                                  backend=backend)
            assert np.array_equal(np.asarray(s)[:, 0], want_s), backend
            assert np.array_equal(np.asarray(c), want_c), backend


def test_mx_sr_axis_ragged_and_chunked():
    """The random integers follow their elements through a non-last axis, a ragged last block and the chunked
    path (more blocks than one chunk holds)."""
    rng = np.random.default_rng(11)
    x = _f32(rng.standard_normal((5, 3, 37)) * 4)
    r = rng.integers(0, 32, x.shape, dtype=np.int64)
    s, c = mx_quantize_sr(np.moveaxis(x, -1, 1), "ocp_e2m1", np.moveaxis(r, -1, 1), 5, "c", axis=1, block=16)
    s, c = np.moveaxis(s, 1, -1), np.moveaxis(c, 1, -1)
    for i in range(5):
        for j in range(3):
            for b0 in range(0, 37, 16):
                blk = emx.quantize_block([decode(int(t), "binary32") for t in x[i, j, b0:b0 + 16].view(np.uint32)],
                                         "ocp_e2m1", "floor", "sr", rand=[int(t) for t in r[i, j, b0:b0 + 16]],
                                         rand_bits=5, sr_variant="c")
                assert s[i, j, b0 // 16] == blk.scale
                assert tuple(int(t) for t in c[i, j, b0:b0 + 16]) == blk.codes
    big = _f32(rng.standard_normal((1, 70000)))
    rb = rng.integers(0, 8, big.shape, dtype=np.int64)
    s, c = mx_quantize_sr(big, "ocp_e4m3", rb, 3, "a", block=32)
    for b0 in (0, 65536 - 32, 65536, 69984):  # blocks on both sides of the chunk boundary (65536 elements)
        blk = emx.quantize_block([decode(int(t), "binary32") for t in big[0, b0:b0 + 32].view(np.uint32)],
                                 "ocp_e4m3", "floor", "sr", rand=[int(t) for t in rb[0, b0:b0 + 32]], rand_bits=3)
        assert s[0, b0 // 32] == blk.scale and tuple(int(t) for t in c[0, b0:b0 + 32]) == blk.codes


@pytest.mark.parametrize("scale", ["ceil", "even", "rceil"])
def test_mx_sr_scale_rules(scale):
    rng = np.random.default_rng(2)
    x = _f32(rng.standard_normal((16, 8)) * np.exp2(rng.integers(-20, 20, (16, 1))))
    r = rng.integers(0, 16, x.shape, dtype=np.int64)
    want_s, want_c = _mx_exact(x, r, "ocp_e2m3", 4, "b", scale)
    s, c = mx_quantize_sr(x, "ocp_e2m3", r, 4, "b", block=8, scale=scale)
    assert np.array_equal(s[:, 0], want_s) and np.array_equal(c, want_c)


def _nv_exact(x: np.ndarray, r: np.ndarray, k: int, variant: str, **kw):
    blocks = env.tiles([[int(t) for t in row] for row in x.view(np.uint32)], kw.get("tile", "1x16"))
    rb = env.tiles([[int(t) for t in row] for row in r], kw.get("tile", "1x16"))
    return env.quantize_blocks(blocks, kw.get("division", "reciprocal"), kw.get("levels", 2),
                               kw.get("zero_scale", "eps"), "sr", rand=rb, rand_bits=k, sr_variant=variant,
                               global_scale=kw.get("global_scale", "decode"))


def _nv_inputs(seed: int) -> np.ndarray:
    """A 16 x 32 tensor: blocks of wide and narrow exponent ranges, E2M1 boundaries times a block scale, an
    all-zero block, binary32 subnormals."""
    rng = np.random.default_rng(seed)
    x = _f32(rng.standard_normal((16, 32)) * np.exp2(rng.integers(-30, 12, (16, 1))))
    grid = np.array([0, .5, 1, 1.5, 2, 3, 4, 6], np.float32)
    mids = np.concatenate([(grid[1:] + grid[:-1]) / 2, grid[1:] - np.float32(2.0 ** -20)])
    x[0, :16] = np.concatenate([[6.0, 2.0 ** -30], mids]).astype(np.float32) * np.float32(1.75)
    x[1, :16] = 0
    x[2, :16] = rng.integers(1, 1 << 23, 16).astype(np.uint32).view(np.float32)
    return x


_NV_KW = [{}, {"division": "divide"}, {"levels": 1}, {"levels": 1, "zero_scale": "zero"}, {"tile": "16x16"},
          {"division": "divide", "global_scale": "reciprocal", "zero_scale": "eighth"}]
_NV_CASES = [pytest.param(v, k, kw, marks=() if (not kw or v == "te_e2m1_8") else pytest.mark.slow)
             for kw in _NV_KW for v, k in [(v, 3) for v in VARIANTS] + [("te_e2m1_8", 8), ("a", 12)]]


@pytest.mark.parametrize("variant,k,kw", _NV_CASES)
def test_nvfp4_sr_equals_exact_model(variant, k, kw):
    x = _nv_inputs(seed=k)
    for r in rand_patterns(x.shape, k, seed=k + 1)[:2]:
        q = _nv_exact(x, r, k, variant, **kw)
        for backend in _backends():
            ts, s, c = nvfp4_quantize_sr(_as(backend, x), _as(backend, r), k, variant, backend=backend, **kw)
            got_blocks = env.tiles([[int(t) for t in row] for row in np.asarray(c)], kw.get("tile", "1x16"))
            assert tuple(int(t) for t in np.asarray(s).reshape(-1)) == q.scales, (backend, kw)
            assert tuple(tuple(b) for b in got_blocks) == q.codes, (backend, kw)
            if q.tensor_scale is not None:
                assert int(np.array(float(np.asarray(ts)), np.float32).view(np.uint32)) == q.tensor_scale


def test_nvfp4_divide_underflow_nan_and_inf_elements():
    """division=divide with a given tiny s_t: fl(S * s_t) underflows to 0, so y = x / 0 is ±inf (saturates to ±6)
    or 0 / 0 = NaN (code 0), as in the exact model."""
    x = _f32([[0.0, 1.0, -2.0, 0.5] + [0.25] * 12])
    r = np.arange(16, dtype=np.int64).reshape(1, 16) % 8
    q = env.quantize_blocks([[int(t) for t in x[0].view(np.uint32)]], "divide", 2, "eps", "sr", 1,
                            rand=[[int(t) for t in r[0]]], rand_bits=3)
    for backend in _backends():
        _, s, c = nvfp4_quantize_sr(_as(backend, x), _as(backend, r), 3, "a", division="divide",
                                    tensor_scale=float(np.float32(2.0 ** -149)), backend=backend)
        assert tuple(int(t) for t in np.asarray(c).reshape(-1)) == q.codes[0], backend
        assert int(np.asarray(s).reshape(-1)[0]) == q.scales[0]


def test_bad_random_bits():
    x = _f32(np.ones((2, 32)))
    ok = np.zeros((2, 32), np.int64)
    cases = [
        (None, 3, "a", "needs rand"),
        (ok[:1], 3, "a", "shape"),
        (ok.astype(np.float64), 3, "a", "integers"),
        (ok + 8, 3, "a", r"\[0, 2\^3\)"),
        (ok - 1, 3, "a", r"\[0, 2\^3\)"),
        (ok, 0, "a", "rand_bits"),
        (ok, 61, "a", "rand_bits"),
        (ok, 3, "te_e2m1_8", "k=8"),
        (ok, 3, "zz", "unknown stochastic"),
    ]
    for rand, k, v, msg in cases:
        with pytest.raises(UnknownModeError, match=msg):
            mx_quantize_sr(x, "ocp_e2m1", rand, k, v)
        with pytest.raises(UnknownModeError, match=msg):
            nvfp4_quantize_sr(x, rand, k, v)
    with pytest.raises(UnknownModeError, match="E2M1 grid only"):
        mx_quantize_sr(x, "ocp_e4m3", ok, 8, "te_e2m1_8")
    with pytest.raises(RefarithError, match="backends"):
        mx_quantize_sr(x, "ocp_e2m1", ok, 3, "a", backend="jax")


def test_numpy_path_without_torch():
    """The numpy block SR path in a process where ``import torch`` fails."""
    code = (
        "import sys\n"
        "for m in ('torch', 'torchao', 'triton'): sys.modules[m] = None\n"
        "import numpy as np\n"
        "from refarith.fast.blocksr import mx_quantize_sr, nvfp4_quantize_sr\n"
        "from refarith.exact import mx, nvfp4\n"
        "from refarith.exact.ops import decode\n"
        "x = (np.arange(32, dtype=np.float32) - 13) * np.float32(0.37); r = (np.arange(32) * 5) % 16\n"
        "s, c = mx_quantize_sr(x, 'ocp_e2m1', r, 4, 'c', block=32)\n"
        "b = mx.quantize_block([decode(int(t), 'binary32') for t in x.view(np.uint32)], 'ocp_e2m1', 'floor', 'sr',\n"
        "                      rand=[int(t) for t in r], rand_bits=4, sr_variant='c')\n"
        "assert int(s[0]) == b.scale and tuple(int(t) for t in c) == b.codes\n"
        "_, s, c = nvfp4_quantize_sr(x, r, 4, 'b')\n"
        "blocks = [[int(t) for t in x[i:i + 16].view(np.uint32)] for i in (0, 16)]\n"
        "q = nvfp4.quantize_blocks(blocks, rounding='sr', rand=[[int(t) for t in r[i:i + 16]] for i in (0, 16)],\n"
        "                          rand_bits=4, sr_variant='b')\n"
        "assert tuple(int(t) for t in c) == q.codes[0] + q.codes[1]\n"
        "try:\n"
        "    import torch  # noqa: F401\n"
        "    raise SystemExit('torch imported')\n"
        "except ImportError:\n"
        "    print('ok')\n"
    )
    env_vars = dict(os.environ, REFARITH_NO_TORCH="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_vars, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_spec_parameters():
    """rounding=sr with k (and sr=) on mx_quantize / nvfp4_quantize; the deterministic ids are unchanged."""
    from refarith.errors import SpecError
    from refarith.spec import parse_spec

    assert str(parse_spec("mx_quantize(ocp_e2m1)")) == "mx_quantize(ocp_e2m1,block=32,scale=floor,rounding=rne)"
    s = parse_spec("mx_quantize(ocp_e4m3,block=8,rounding=sr,sr=gfloat,k=3)")
    assert s.param["sr"] == "c" and s.param["k"] == "3"
    assert "sr=" not in str(parse_spec("nvfp4_quantize(rounding=sr,sr=a,k=3)"))
    for bad, msg in [("mx_quantize(ocp_e4m3,rounding=sr)", "needs k"),
                     ("mx_quantize(ocp_e4m3,k=3)", "rounding=sr only"),
                     ("mx_quantize(ocp_e4m3,rounding=sr,sr=te_e2m1_8,k=8)", "E2M1 grid only"),
                     ("mx_quantize(int8,rounding=sr,sr=te_e2m1_8,k=8)", "E2M1 grid only"),
                     ("nvfp4_quantize(rounding=sr,sr=te_e2m1_8,k=4)", "k=8"),
                     ("nvfp4_quantize(rounding=sr,sr=zz,k=4)", "unknown stochastic"),
                     ("bfp_quantize(int8_sym,rounding=sr,sr=te_e2m1_8,k=8)", "E2M1 grid only")]:
        with pytest.raises(SpecError, match=msg):
            parse_spec(bad)


@pytest.mark.parametrize("spec", ["mx_quantize(ocp_e2m1,block=8,rounding=sr,sr=te_e2m1_8,k=8)",
                                  "nvfp4_quantize(levels=1,rounding=sr,sr=b,k=3)",
                                  "bfp_quantize(int4_sym,block=8,rounding=sr,sr=c_odd,k=3)"])
def test_driver_vectors_carry_the_random_bits(spec):
    """The golden driver's stochastic vectors: x then one r per element; its fast kernels equal its exact model
    (the exact model with the vector's random integers, as refarith.exact computes it)."""
    from refarith.golden.drivers import get_driver
    from refarith.spec import parse_spec

    sp = parse_spec(spec)
    d = get_driver(sp)
    ins = d.inputs(sp)
    assert [o.name for o in ins] == ["x", "r"] and ins[1].width == ins[0].width
    vecs = d.boundary(sp)[::40] + d.random_inputs(sp, 8, 1)
    want = [d.exact(sp, v) for v in vecs]
    arr = np.array(vecs, dtype=np.int64)
    n = ins[0].width
    for backend in _backends():
        got = d.fast(sp, (arr[:, :n], arr[:, n:]), backend)
        flat = np.concatenate([np.asarray(g).reshape(len(vecs), -1) for g in got], axis=1)
        assert [tuple(int(t) for t in row) for row in flat] == want, backend
    # the same block with other random integers gives other elements somewhere (the r column is used)
    flipped = [v[:n] + tuple(((1 << int(sp.param["k"])) - 1 - t) for t in v[n:]) for v in vecs]
    assert [d.exact(sp, v) for v in flipped] != want
    assert "sr" in d.variant_params(sp) and "rounding" not in d.variant_params(sp)


def _mxfp4_c4(x, r):
    """A kernel of MXFP4 blocks of 8 with stochastic variant c and 4 random bits, called as fn(x, r)."""
    s, c = mx_quantize_sr(np.asarray(x, np.float32), "ocp_e2m1", np.asarray(r).astype(np.int64), 4, "c", block=8)
    return s[:, 0], c


@pytest.mark.slow
def test_identify_names_the_block_sr_variant():
    """identify compares a block SR kernel with every sr= variant on the driver's (x, r) vectors (the expected
    codes from the exact model) and names c, although the spec asked for a."""
    from refarith.certify.identify import identify

    scores = identify(_mxfp4_c4, "mx_quantize(ocp_e2m1,block=8,rounding=sr,sr=a,k=4)", vary=("sr",))
    matching = [s.spec for s in scores if s.matches]
    assert matching == ["mx_quantize(ocp_e2m1,block=8,scale=floor,rounding=sr,sr=c,k=4)"]
    assert all(s.mismatches > 0 for s in scores if not s.matches)


def test_front_ends_take_rounding_sr():
    """fast.mx.mx_quantize / fast.nvfp4.nvfp4_quantize with rounding="sr" round as the exact model does; random
    bits given to a deterministic rounding are an error, never ignored."""
    from refarith.fast.mx import mx_quantize
    from refarith.fast.nvfp4 import nvfp4_quantize

    x = _nv_inputs(seed=9)
    r = rand_patterns(x.shape, 5, seed=9)[0]
    s, c = mx_quantize(x, "ocp_e2m1", block=16, rounding="sr", rand=r, rand_bits=5, sr_variant="b")
    want_s, want_c = _mx_exact(x.reshape(-1, 16), r.reshape(-1, 16), "ocp_e2m1", 5, "b")
    assert np.array_equal(s.reshape(-1), want_s) and np.array_equal(c.reshape(-1, 16), want_c)
    _, s, c = nvfp4_quantize(x, rounding="sr", rand=r, rand_bits=5, sr_variant="b")
    q = _nv_exact(x, r, 5, "b")
    assert tuple(int(t) for t in s.reshape(-1)) == q.scales
    assert tuple(int(t) for t in c.reshape(-1)) == tuple(t for b in q.codes for t in b)
    with pytest.raises(UnknownModeError, match="not stochastic"):
        mx_quantize(x, "ocp_e2m1", rand=r)
    with pytest.raises(UnknownModeError, match="not stochastic"):
        nvfp4_quantize(x, rand=r)
    with pytest.raises(UnknownModeError, match="needs rand"):
        nvfp4_quantize(x, rounding="sr", rand_bits=5)


@pytest.mark.parametrize("variant,k,p", [("a", 3, 8), ("c_odd", 2, 4)] + [pytest.param(*c, marks=pytest.mark.slow)
                                          for c in (("b", 3, 4), ("c", 5, 8), ("a", 40, 8))])
def test_bfp_sr_equals_exact_model(variant, k, p):
    """Block floating point with stochastic mantissas (fast.bfp.quantize, rounding="sr") against
    refarith.exact.bfp.quantize_block with the same random integers: wide and narrow blocks, zeros, a binary32
    subnormal next to normal values, a ragged last block along a non-last axis."""
    from refarith.exact import bfp as ebfp
    from refarith.fast.bfp import quantize

    rng = np.random.default_rng(k * 10 + p)
    x = _f32(rng.standard_normal((16, 24)) * np.exp2(rng.integers(-30, 30, (16, 1))))
    x[0, :8] = 0
    x[1, 3] = 2.0 ** -140
    x[2] = _f32(np.arange(24) * 0.37 - 3)
    for r in rand_patterns(x.shape, k, seed=p)[:2]:
        for backend in _backends():
            e, m = quantize(_as(backend, x.T.copy()), p, block=10, rounding="sr", rand=_as(backend, r.T.copy()),
                            rand_bits=k, sr_variant=variant, axis=0, backend=backend)
            e, m = np.asarray(e).T, np.asarray(m).T
            for i in range(len(x)):
                for j, b0 in enumerate(range(0, 24, 10)):
                    want = ebfp.quantize_block([float(t) for t in x[i, b0:b0 + 10]], p, "sr",
                                               rand=[int(t) for t in r[i, b0:b0 + 10]], rand_bits=k,
                                               sr_variant=variant)
                    assert e[i, j] == want.exp and tuple(int(t) for t in m[i, b0:b0 + 10]) == want.m, backend
