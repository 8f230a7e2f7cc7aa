"""Blockwise FP8 (DeepSeek-V3 / DeepGEMM): the exact model against the reference formulas written out in torch
(DeepGEMM's ``per_token_cast_to_fp8`` / ``per_block_cast_to_fp8``) and numpy + ml_dtypes (DeepSeek-V3's
``act_quant``), the kernels against the exact model, shapes that do not tile."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from refarith.errors import BadValueError, SpecError
from refarith.exact import fp8block as fb
from refarith.fast import fp8block as ffb
from refarith.spec import parse_spec

torch = pytest.importorskip("torch")


def _x(rng, r, c):
    x = (rng.standard_normal((r, c)) * 2.0 ** rng.integers(-12, 12, (r, 1))).astype(np.float32)
    x[0, :] = 0  # an all-zero tile: amax floored at 1e-4
    return x


def _exact_ceil_pow2(v: float) -> float:
    m, e = math.frexp(v)  # v = m 2^e, 0.5 <= m < 1
    return 2.0 ** (e - 1) if m == 0.5 else 2.0 ** e


def deepgemm_per_token(x: torch.Tensor, ue8m0: bool):
    """DeepGEMM per_token_cast_to_fp8 (deep_gemm/utils/math.py) with an exact power-of-two ceiling."""
    m, n = x.shape
    xv = x.view(m, -1, 128)
    amax = xv.abs().float().amax(dim=2).clamp(1e-4)
    sf = amax / 448.0
    if ue8m0:
        sf = torch.tensor([[_exact_ceil_pow2(float(v)) for v in row] for row in sf], dtype=torch.float32)
    q = (xv * (1.0 / sf.unsqueeze(2))).to(torch.float8_e4m3fn).view(torch.uint8).view(m, n)
    return sf, q


@pytest.mark.parametrize("ue8m0", [False, True])
def test_1x128_matches_deepgemm_reference(ue8m0):
    rng = np.random.default_rng(int(ue8m0))
    x = _x(rng, 4, 256)
    sf, q = deepgemm_per_token(torch.from_numpy(x), ue8m0)
    for i in range(4):
        for j in range(2):
            code, codes = fb.quantize_tile(x[i, j * 128:(j + 1) * 128].view(np.uint32).tolist(), "ocp_e4m3",
                                           "ue8m0" if ue8m0 else "fp32")
            want = float(sf[i, j])
            got = 2.0 ** (code - 127) if ue8m0 else float(np.array([code], np.uint32).view(np.float32)[0])
            assert got == want
            assert list(codes) == q[i, j * 128:(j + 1) * 128].tolist()


@pytest.mark.parametrize("b", [16, pytest.param(128, marks=pytest.mark.slow)])
def test_bxb_matches_deepgemm_block_reference(b):
    rng = np.random.default_rng(3)
    x = _x(rng, b, 2 * b)
    xt = torch.from_numpy(x).view(1, b, 2, b)
    amax = xt.abs().float().amax(dim=(1, 3), keepdim=True).clamp(1e-4)
    sf = amax / 448.0
    q = (xt * (1.0 / sf)).to(torch.float8_e4m3fn).view(torch.uint8).view(b, 2 * b).numpy()
    tiles = fb.tiles_of(x.view(np.uint32).tolist(), f"{b}x{b}")
    for j, t in enumerate(tiles):
        code, codes = fb.quantize_tile(t, "ocp_e4m3")
        assert np.array([code], np.uint32).view(np.float32)[0] == float(sf.view(-1)[j])
        assert list(codes) == q[:, j * b:(j + 1) * b].reshape(-1).tolist()


def test_divide_matches_deepseek_v3_act_quant():
    """act_quant (DeepSeek-V3 inference/kernel.py): s = amax / 448, y = x / s, no amax floor (a zero tile is NaN)."""
    rng = np.random.default_rng(5)
    x = _x(rng, 3, 128)
    for row in x:
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.float32(np.abs(row).max() / np.float32(448))
            y = (row / s).astype(np.float32)
        want = np.clip(y, -448, 448).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
        want = np.where(np.isnan(y), 0x7F, want)
        code, codes = fb.quantize_tile(row.view(np.uint32).tolist(), "ocp_e4m3", "fp32", "divide", "none")
        assert code == int(s.view(np.uint32)) and list(codes) == want.tolist()


def test_float_log2_ceiling_underscales_just_above_powers_of_two():
    """The finding behind scale=ue8m0 computing ceil(log2) from the bits: torch's binary32 log2 (DeepGEMM's
    ceil_to_ue8m0) returns the integer k for 2^k (1 + 2^-23) in most binades, so its scale is half the exact one."""
    v = np.nextafter(np.float32(2.0 ** 29), np.float32(np.inf))
    assert fb.ceil_pow2_e8m0(int(v.view(np.uint32))) == 30 + 127
    peer = torch.pow(2.0, torch.ceil(torch.log2(torch.tensor([float(v)], dtype=torch.float32))))
    assert float(peer[0]) in (2.0 ** 29, 2.0 ** 30)  # documents the peer's rule without depending on its libm


# the committed golden specs (tests/test_opdrivers.py certifies both kernels on them) under slow
@pytest.mark.parametrize("spec", [pytest.param("fp8_block_quantize(ocp_e4m3)", marks=pytest.mark.slow),
                                  pytest.param("fp8_block_quantize(ocp_e4m3,scale=ue8m0)", marks=pytest.mark.slow),
                                  "fp8_block_quantize(ocp_e5m2,tile=4x4,scale=ue8m0,eps=none)",
                                  "fp8_block_quantize(ocp_e4m3,tile=8x8,division=divide,eps=none)"])
def test_kernels_match_exact_model(spec):
    from refarith.golden.drivers import get_driver

    sp = parse_spec(spec)
    d = get_driver(sp)
    ins = d.boundary(sp)[::24] + d.random_inputs(sp, 3, 9)
    arr = np.array(ins, dtype=np.int64)
    want = [d.exact(sp, v) for v in ins]
    for backend in ("numpy", "torch"):
        s, q = d.fast(sp, (arr,), backend)
        got = np.concatenate([np.asarray(s).reshape(-1, 1), np.asarray(q)], axis=1).astype(np.int64)
        for i, w in enumerate(want):
            assert tuple(got[i]) == w, (backend, i)


def test_shapes_that_do_not_tile(capsys):
    with pytest.raises(BadValueError, match="does not tile"):
        ffb.fp8_block_quantize(np.zeros((2, 100), np.float32))
    with pytest.raises(BadValueError, match="does not tile"):
        ffb.fp8_block_quantize(np.zeros((100, 128), np.float32), tile="128x128")
    with pytest.raises(BadValueError, match="does not tile"):
        fb.tiles_of([[0] * 130], "1x128")
    with pytest.raises(SpecError, match="1xB"):
        parse_spec("fp8_block_quantize(ocp_e4m3,tile=2x128)")
    with pytest.raises(SpecError, match="at most 4096"):  # a huge tile ran until killed
        parse_spec("fp8_block_quantize(ocp_e4m3,tile=1x99999999999999)")
    from refarith.cli import main

    assert main(["certify", "refarith:numpy", "--spec", "fp8_block_quantize(ocp_e4m3,tile=128x64)"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "tile" in err


@pytest.mark.slow  # importing torchao costs about 10 s of CPU
def test_torchao_rule_and_adapter():
    """torchao's blockwise reference on CPU is the division=scale,eps=torchao rule (up to NaN payloads); a torchao
    version the adapter was not written for is one KernelError line."""
    pytest.importorskip("torchao")
    from refarith.certify import recipe_peers
    from refarith.errors import KernelError

    rng = np.random.default_rng(2)
    x = _x(rng, 6, 128)
    x[1, 0] = 1e-30
    s, q = recipe_peers.torchao_blockwise_act(x)
    for i in range(6):
        code, codes = fb.quantize_tile(x[i].view(np.uint32).tolist(), "ocp_e4m3", "fp32", "scale", "torchao")
        assert code == int(s[i:i + 1].view(np.uint32)[0]) and list(codes) == q[i].tolist()
    import torchao

    old = torchao.__version__
    try:
        torchao.__version__ = "0.99.0"
        with pytest.raises(KernelError, match="written for torchao 0.18"):
            recipe_peers.torchao_blockwise_act(x)
    finally:
        torchao.__version__ = old


@pytest.mark.parametrize("division", ["divide", "reciprocal"])
@pytest.mark.parametrize("shape,tile,pos", [((8, 8), "8x8", (6, 3)), ((1, 64), "1x64", (0, 51)),
                                            ((1, 128), "1x128", (0, 77))])
def test_nan_tile_scale_is_the_quiet_nan_whatever_payloads_the_tile_holds(division, shape, tile, pos):
    """A NaN element makes the tile's binary32 scale NaN; the exact model's NaN is 0x7fc00000, and the numpy
    kernel must give that one, not the payload of the input NaN its max reduction may return: which one it
    returns depends on the NaN's lane in numpy's SIMD loop (a tile whose one NaN, 0xffc00001, sat in the tail
    gave the scale 0x7fc00001)."""
    bits = np.full(shape, 0x3F800000, dtype=np.uint32)
    bits[pos] = 0xFFC00001  # a negative quiet NaN with a payload: |x| is 0x7fc00001
    x = bits.view(np.float32)
    s, q = ffb.fp8_block_quantize(x, "ocp_e4m3", tile, "fp32", division, "none")
    assert np.asarray(s, dtype=np.float32).view(np.uint32).ravel().tolist() == [0x7FC00000]
    assert int(np.asarray(q)[0, 0]) == 0x7F
    torch = pytest.importorskip("torch")
    s, q = ffb.fp8_block_quantize(torch.from_numpy(x.copy()), "ocp_e4m3", tile, "fp32", division, "none",
                                  backend="torch")
    assert s.numpy().view(np.uint32).ravel().tolist() == [0x7FC00000]
    assert int(q[0, 0]) == 0x7F


@pytest.mark.parametrize("block", [16, 40])
@pytest.mark.parametrize("tile,shape", [("1x8", (3, 48)), ("4x4", (8, 12))])
def test_fused_tiles_match_exact_model_across_block_splits(monkeypatch, block, tile, shape):
    """The numpy kernel reads tiles in place and casts blockwise (refarith.fast.fp8scale.scaled_codes): blocks
    of rows, or of tile columns when a row of tiles exceeds the block, or one tile when a tile does; every split
    gives the exact model's scales and codes, NaN and infinite elements included."""
    from refarith.fast import fp8scale as ffs

    monkeypatch.setattr(ffs, "_BLOCK", block)
    rng = np.random.default_rng(29)
    x = (rng.standard_normal(shape) * 2.0 ** rng.integers(-30, 30, shape)).astype(np.float32)
    x[0, 1], x[-1, -2], x[1, 5] = np.nan, np.inf, 0.0
    x[-1, :4] = 1e-42  # a tile (or part of one) of subnormals
    bits = x.view(np.uint32).tolist()
    tr, tc = fb.parse_tile(tile)
    for scale, division, eps in [("fp32", "reciprocal", "deepgemm"), ("ue8m0", "divide", "none"),
                                 ("fp32", "scale", "torchao")]:
        s, q = ffb.fp8_block_quantize(x, "ocp_e5m2", tile, scale, division, eps)
        sv = np.asarray(s).view(np.uint32) if scale == "fp32" else np.asarray(s)
        for k, t in enumerate(fb.tiles_of(bits, tile)):
            i, j = divmod(k, shape[1] // tc)
            code, codes = fb.quantize_tile(t, "ocp_e5m2", scale, division, eps)
            assert int(sv[i, j]) == code, (scale, division, k)
            assert q[i * tr:(i + 1) * tr, j * tc:(j + 1) * tc].ravel().tolist() == list(codes), (scale, division, k)


@pytest.mark.parametrize("block", [5, 16, 40, 1 << 17])
@pytest.mark.parametrize("fmt", ["ocp_e4m3", "ocp_e5m2"])
def test_fused_rows_match_exact_model_across_block_splits(monkeypatch, block, fmt):
    """1xB tiles with binary32 scales run amax, scales and cast on one block of x at a time
    (refarith.fast.fp8block._fused_rows): blocks of rows, of tile columns when a row exceeds the block, or one
    tile when a tile does; every split gives the exact model's scales and codes, for every rule."""
    monkeypatch.setattr(ffb, "_FUSED_BLOCK", block)
    rng = np.random.default_rng(31)
    shape, tile = (5, 48), "1x8"
    x = (rng.standard_normal(shape) * 2.0 ** rng.integers(-30, 30, shape)).astype(np.float32)
    x[0, 1], x[-1, -2], x[1, 5], x[2, 9] = np.nan, np.inf, 0.0, -np.inf
    x[3, 16:24] = 0.0  # a zero tile: the eps floor, or a NaN scale without one
    x[-1, :8] = 1e-42  # a tile of subnormals
    x[2, 40:48] = np.float32(448.0) * np.float32(1.0000001)  # a tile whose elements round back to F_max
    x.view(np.uint32)[4, 24] = 0xFFC00001  # a NaN with a payload
    bits = x.view(np.uint32).tolist()
    for division, eps in [("reciprocal", "deepgemm"), ("reciprocal", "none"), ("divide", "deepgemm"),
                          ("divide", "none"), ("scale", "torchao")]:
        s, q = ffb.fp8_block_quantize(x, fmt, tile, "fp32", division, eps)
        assert s.dtype == np.float32 and s.shape == (5, 6) and q.dtype == np.uint8 and q.shape == shape
        for k, t in enumerate(fb.tiles_of(bits, tile)):
            i, j = divmod(k, 6)
            code, codes = fb.quantize_tile(t, fmt, "fp32", division, eps)
            assert int(s.view(np.uint32)[i, j]) == code, (division, eps, k)
            assert q[i, j * 8:(j + 1) * 8].tolist() == list(codes), (division, eps, k)
