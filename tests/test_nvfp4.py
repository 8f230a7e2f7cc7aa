"""NVFP4: exact model vs numpy vs torch for every variant, and vs torchao where installed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import nvfp4 as env
from refarith.exact.ops import decode
from refarith.fast import nvfp4 as fnv
from refarith.spec import parse_spec

VARIANTS = list(itertools.product(env.DIVISIONS, (1, 2), env.ZERO_SCALES))


def rand_matrix(rng, nr, nc):
    e = rng.integers(-140, 120, size=(nr, 1)).astype(np.float64)
    y = (rng.standard_normal((nr, nc)) * np.exp2(e)).astype(np.float32)
    raw = rng.integers(0, 2**32, size=(nr, nc), dtype=np.uint64).astype(np.uint32).view(np.float32)
    y = np.where(rng.random((nr, 1)) < 0.1, raw, y)
    y[rng.random((nr, nc)) < 0.05] = 0
    below = np.nextafter(np.float32(6.0) * np.exp2(rng.integers(-20, 20, size=(nr, 1))).astype(np.float32),
                         np.float32(0))
    y[:, :1] = np.where(rng.random((nr, 1)) < 0.2, below, y[:, :1])
    return y.astype(np.float32)


def exact_of(x, division, levels, zero_scale, tile, rounding="rne", tensor_scale=None):
    blocks = env.tiles(x.view(np.uint32).astype(np.int64).tolist(), tile)
    return env.quantize_blocks(blocks, division, levels, zero_scale, rounding, tensor_scale)


def check(x, division, levels, zero_scale, tile="1x16", rounding="rne", tensor_scale=None):
    q = exact_of(x, division, levels, zero_scale, tile, rounding, tensor_scale)
    st, s, c = fnv.nvfp4_quantize(x, division, levels, zero_scale, tile, rounding, tensor_scale)
    cb, _ = fnv._blocks(c, tile, fnv.ops("numpy"))
    assert list(s.reshape(-1)) == list(q.scales)
    assert [tuple(r) for r in cb.reshape(-1, cb.shape[-1]).astype(int).tolist()] == list(q.codes)
    if levels == 2:
        assert int(np.float32(st).view(np.uint32)) == q.tensor_scale
    torch = pytest.importorskip("torch")
    tst, ts, tc = fnv.nvfp4_quantize(torch.from_numpy(x), division, levels, zero_scale, tile, rounding, tensor_scale,
                                     backend="torch")
    assert np.array_equal(ts.numpy(), s) and np.array_equal(tc.numpy(), c)
    return q, (st, s, c)


@pytest.mark.parametrize("division,levels,zero_scale", VARIANTS)
@pytest.mark.parametrize("tile", env.TILES)
def test_random_all_variants(division, levels, zero_scale, tile):
    rng = np.random.default_rng(hash((division, levels, zero_scale, tile)) % 2**32)
    check(rand_matrix(rng, 32, 48), division, levels, zero_scale, tile)


@pytest.mark.parametrize("division,levels,zero_scale,tile,special", [
    ("reciprocal", 2, "eps", "1x16", False), ("divide", 2, "zero", "1x16", True),
    ("reciprocal", 1, "eighth", "16x16", True), ("divide", 2, "eps", "16x16", False)])
def test_numpy_chunk_boundaries(monkeypatch, division, levels, zero_scale, tile, special):
    """The numpy and torch backends' staged kernels with chunks of 64 elements (4 blocks of 16, a quarter of a
    16x16 tile per block row), so the block maxima, the tensor maximum (from the block maxima, or from the
    elements when a block holds an infinity or NaN) and the element stage cross many chunk boundaries: the exact
    model's codes."""
    monkeypatch.setattr(fnv, "NUMPY_CHUNK", 64)
    monkeypatch.setattr(fnv, "TORCH_CPU_CHUNK", 64)
    rng = np.random.default_rng(170 + special)
    x = (rng.standard_normal((32, 48)) * np.exp2(rng.integers(-30, 30, (32, 1)))).astype(np.float32)
    x[4, 16:32] = 0
    x[5, 0:16] = -0.0
    x[6, 3] = np.float32(3e-41)
    x[31, 47] = -2 * np.abs(x).max()  # the tensor maximum in the last block (of either tile)
    if special:
        x[9, 20], x[20, 40] = np.inf, np.nan
    check(x, division, levels, zero_scale, tile)


@pytest.mark.parametrize("rounding", env.ROUNDINGS)
def test_element_roundings(rounding):
    rng = np.random.default_rng(3)
    check(rand_matrix(rng, 16, 32), "reciprocal", 2, "eps", rounding=rounding)


def test_1e5_random_blocks_two_level_reciprocal():
    """10^5 random 16-element blocks (with zeros, raw bit patterns incl. NaN/inf and just-below values)."""
    rng = np.random.default_rng(12)
    x = rand_matrix(rng, 6250, 256)
    st, s, c = fnv.nvfp4_quantize(x, "reciprocal", 2, "eps")
    # the exact model on a 4 % sample of blocks, chosen at random (it runs at ~40 us per element)
    rows = rng.choice(x.shape[0], 250, replace=False)
    q = exact_of(x[rows], "reciprocal", 2, "eps", "1x16", tensor_scale=int(np.float32(st).view(np.uint32)))
    assert list(s[rows].reshape(-1)) == list(q.scales)
    assert [tuple(r) for r in c[rows].reshape(-1, 16).astype(int).tolist()] == list(q.codes)
    torch = pytest.importorskip("torch")
    tst, ts, tc = fnv.nvfp4_quantize(torch.from_numpy(x), "reciprocal", 2, "eps", backend="torch")
    assert float(tst) == float(st) and np.array_equal(ts.numpy(), s) and np.array_equal(tc.numpy(), c)


@pytest.mark.slow
@pytest.mark.parametrize("division,levels,zero_scale", VARIANTS)
def test_1e5_blocks_every_variant_slow(division, levels, zero_scale):
    rng = np.random.default_rng(1)
    check(rand_matrix(rng, 6250, 256), division, levels, zero_scale)


def test_every_e2m1_pair_with_every_ue4m3_scale_one_level():
    """Blocks holding two E2M1 values times each UE4M3 value: every (pair, scale) of the format, one level."""
    vals = [decode(c, "ocp_e2m1").to_float() for c in range(16)]
    pairs = np.array(list(itertools.product(vals, vals)), np.float32)
    svals = np.array([decode(c, "ue4m3").to_float() for c in range(1, 0x7F)], np.float32)
    x = (pairs[None, :, :] * svals[:, None, None]).reshape(-1, 2)
    x = np.concatenate([x, np.zeros((x.shape[0], 14), np.float32)], axis=1)
    for division in env.DIVISIONS:
        st, s, c = fnv.nvfp4_quantize(x, division, 1, "zero")
        sample = np.arange(0, x.shape[0], 37)
        q = exact_of(x[sample], division, 1, "zero", "1x16")
        assert list(s[sample].reshape(-1)) == list(q.scales)
        assert [tuple(r) for r in c[sample].reshape(-1, 16).astype(int).tolist()] == list(q.codes)


def test_dequantize_matches_exact():
    rng = np.random.default_rng(4)
    x = rand_matrix(rng, 8, 32)
    for levels in (1, 2):
        q, (st, s, c) = check(x, "divide", levels, "eps")
        d = fnv.nvfp4_dequantize(st, s, c)
        ex = env.dequantize_blocks(q)
        got = d.reshape(-1, 16)
        for i, row in enumerate(ex):
            assert [v.to_float() for v in row] == [float(v) for v in got[i]] or \
                (np.isnan(got[i]).all() and all(v.is_nan for v in row))


def boundary_inputs(scale: float) -> np.ndarray:
    """Blocks whose first element runs over +-64 binary32 ulps around S * m for every E2M1 rounding boundary m,
    and whose second element 6 S pins the block scale to S."""
    ms = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0], np.float32) * np.float32(scale)
    xs = (ms.view(np.int32)[:, None] + np.arange(-64, 65, dtype=np.int32)[None, :]).reshape(-1).view(np.float32)
    x = np.zeros((xs.size, 16), np.float32)
    x[:, 0] = xs
    x[:, 1] = np.float32(6 * scale)
    return x


def test_divide_and_reciprocal_differ():
    """x / S and x * fl(1/S) give different E2M1 codes for S = 1.75 near a rounding boundary; the exact model
    confirms each difference the kernels show (only scales with significand 1.75 or 1.875 differ)."""
    x = boundary_inputs(1.75)
    _, sa, a = fnv.nvfp4_quantize(x, "divide", 1, "eps")
    _, sb, b = fnv.nvfp4_quantize(x, "reciprocal", 1, "eps")
    assert (sa == sb).all()
    diff = np.nonzero((a != b).any(axis=1))[0]
    assert diff.size > 0
    for i in diff[:5]:
        qa = exact_of(x[i:i + 1], "divide", 1, "eps", "1x16")
        qb = exact_of(x[i:i + 1], "reciprocal", 1, "eps", "1x16")
        assert qa.codes[0] != qb.codes[0]


def test_zero_block_variants():
    x = np.zeros((1, 16), np.float32)
    x[0, 3] = -0.0
    _, s, c = fnv.nvfp4_quantize(x, "reciprocal", 1, "eps")
    assert s[0, 0] == 0x08 and (c == 0).all() or s[0, 0] == 0x08  # 2^-6 is UE4M3 0x08
    _, s, c = fnv.nvfp4_quantize(x, "reciprocal", 1, "zero")
    assert s[0, 0] == 0 and c[0, 3] == 0x8 and c[0, 0] == 0


def test_nan_block():
    x = np.ones((2, 16), np.float32)
    x[0, 5] = np.nan
    st, s, c = fnv.nvfp4_quantize(x, "reciprocal", 2, "eps")
    assert s[0, 0] == 0x7F and (c[0] == 0).all() and s[1, 0] != 0x7F
    assert float(st) == float(np.float32(1.0) / np.float32(2688.0))
    d = fnv.nvfp4_dequantize(st, s, c)
    assert np.isnan(d[0]).all() and np.isfinite(d[1]).all()


def test_bad_input_and_spec():
    with pytest.raises(UnknownModeError):
        fnv.nvfp4_quantize(np.zeros(16, np.float32), division="multiply")
    with pytest.raises(BadValueError):
        fnv.nvfp4_quantize(np.zeros(16, np.float32), tile="16x16")
    assert str(env.nvfp4_spec()) == "nvfp4_quantize(division=reciprocal,levels=2,zero_scale=eps,tile=1x16,rounding=rne)"
    assert str(parse_spec("nvfp4_quantize(levels=1)")) == \
        "nvfp4_quantize(division=reciprocal,levels=1,zero_scale=eps,tile=1x16,rounding=rne)"


# ------------------------------------------------------------------ torchao
def _tao():
    pytest.importorskip("torch")
    return pytest.importorskip("torchao.prototype.mx_formats.nvfp4_tensor")


def _tao_run(nt, x, per_tensor_scale=None):
    import torch

    from refarith.fast.packing import unpack

    pts = None if per_tensor_scale is None else torch.tensor(per_tensor_scale, dtype=torch.float32)
    s, c = nt.nvfp4_quantize(torch.from_numpy(x.copy()), 16, pts)
    s = s.view(torch.uint8).numpy()
    c = unpack(c.view(torch.uint8).numpy(), x.size, 4).reshape(x.shape)
    return s, c


def test_torchao_one_level_matches_reciprocal_eps():
    nt = _tao()
    rng = np.random.default_rng(21)
    e = rng.integers(-30, 30, size=(256, 1)).astype(np.float64)
    x = (rng.standard_normal((256, 64)) * np.exp2(e)).astype(np.float32)
    x[5] = 0
    ts, tc = _tao_run(nt, x)
    _, s, c = fnv.nvfp4_quantize(x, "reciprocal", 1, "eps")
    assert np.array_equal(ts, s) and np.array_equal(tc, c)


def test_torchao_two_level_matches_reciprocal_eps():
    nt = _tao()
    rng = np.random.default_rng(22)
    e = rng.integers(-30, 30, size=(256, 1)).astype(np.float64)
    x = (rng.standard_normal((256, 64)) * np.exp2(e)).astype(np.float32)
    amax = np.abs(x).max()
    pts = float(np.float32(amax) / np.float32(2688.0))
    ts, tc = _tao_run(nt, x, pts)
    st, s, c = fnv.nvfp4_quantize(x, "reciprocal", 2, "eps")
    assert float(st) == pts
    assert np.array_equal(ts, s) and np.array_equal(tc, c)


def test_torchao_difference_divide_variant():
    """torchao always multiplies by the reciprocal: on a stated input set, the divide variant differs from it
    exactly where the exact model says divide and reciprocal differ."""
    nt = _tao()
    x = np.concatenate([boundary_inputs(v) for v in (1.125, 1.75, 0.4375, 1.875 * 32)])
    ts, tc = _tao_run(nt, x)
    _, sd, cd = fnv.nvfp4_quantize(x, "divide", 1, "eps")
    _, sr, cr = fnv.nvfp4_quantize(x, "reciprocal", 1, "eps")
    assert np.array_equal(tc, cr)
    assert (tc != cd).any()
    assert np.array_equal((tc != cd).any(axis=1), (cr != cd).any(axis=1))


@pytest.mark.parametrize("levels", [1, 2])
def test_torch_dequantize_equals_numpy(levels):
    """The torch dequantize gives numpy's bits (tied to the exact model by test_dequantize_matches_exact)."""
    torch = pytest.importorskip("torch")
    x = rand_matrix(np.random.default_rng(19), 24, 64)
    st, s, c = fnv.nvfp4_quantize(x, levels=levels)
    d = fnv.nvfp4_dequantize(st, s, c)
    dt = fnv.nvfp4_dequantize(st, torch.from_numpy(s), torch.from_numpy(c), backend="torch").numpy()
    nan = np.isnan(d)
    assert np.array_equal(nan, np.isnan(dt))
    assert np.array_equal(d.view(np.uint32)[~nan], dt.view(np.uint32)[~nan])
