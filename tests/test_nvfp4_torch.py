"""The staged torch NVFP4 kernel (refarith.fast.nvfp4._quantize_torch): the scale-code thresholds against the
exact model's scale rule, their search, the bucket lookup, the integer redo of element products a float unit
could get wrong, and flush-to-zero; codes against the exact model."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError
from refarith.exact import nvfp4 as env
from refarith.fast import nvfp4 as fnv

torch = pytest.importorskip("torch")

NP = fnv.ops("numpy")


def _bits(v: float) -> int:
    return int(np.array(v, np.float32).view(np.int32))


def _exact_code(amax: int, st: int | None, zero_scale: str, global_scale: str) -> int:
    """The exact model's UE4M3 scale code of a block whose largest magnitude has the bits ``amax``."""
    q = env.quantize_blocks([[amax]], "reciprocal", 1 if st is None else 2, zero_scale, tensor_scale=st,
                            global_scale=global_scale)
    return q.scales[0]


# (s_t or g bits, zero_scale, global_scale): one level, typical and extreme two-level scales, a subnormal s_t
SETTINGS = [
    (None, "eps", "decode"), (None, "zero", "decode"),
    (_bits(5.2 / 2688), "eps", "decode"), (_bits(3.0e-41), "zero", "decode"), (_bits(1.0e30), "eps", "decode"),
    (_bits(2688 / 7.5), "zero", "reciprocal"), (_bits(1.0e-30), "eps", "reciprocal"),
]


@pytest.mark.parametrize("st,zero_scale,global_scale", SETTINGS)
def test_thresholds_are_the_exact_models_steps(st, zero_scale, global_scale):
    """Each threshold T_c is where the exact model's scale code first reaches c: code(T_c) >= c > code(T_c - 1);
    T_c = 0 where code(0) >= c already, 0x7F800000 where no finite magnitude reaches c."""
    t = fnv._scale_thresholds(None if st is None else np.array(st, np.int32), zero_scale, global_scale)
    assert t.shape == (126,) and np.all(np.diff(t.astype(np.int64)) >= 0)
    for c, a in enumerate(t.tolist(), start=1):
        if a == 0:
            assert _exact_code(0, st, zero_scale, global_scale) >= c
        elif a == 0x7F800000:
            assert _exact_code(0x7F7FFFFF, st, zero_scale, global_scale) < c
        else:
            assert _exact_code(a, st, zero_scale, global_scale) >= c > _exact_code(a - 1, st, zero_scale,
                                                                                  global_scale)


@pytest.mark.parametrize("st,zero_scale,global_scale", SETTINGS[1::2])
def test_thresholds_do_not_depend_on_the_guess(st, zero_scale, global_scale):
    """The search's result is the same from the float64 guesses, from random patterns, from all 0 and from all
    max finite (the last three need the binary search for most codes)."""
    sb = None if st is None else np.array(st, np.int32)

    def code_of(a):
        return fnv._block_scales(a, sb, zero_scale, NP, global_scale, a, integer=True)[0]

    want = fnv._scale_thresholds(sb, zero_scale, global_scale)
    rng = np.random.default_rng(5)
    for guess in (rng.integers(0, 0x7F7FFFFF, 126), np.zeros(126), np.full(126, 0x7F7FFFFF)):
        assert np.array_equal(fnv._code_thresholds(code_of, guess.astype(np.int32)), want)


@pytest.mark.parametrize("compares", [0, 1, fnv.STEP_COMPARES])
def test_step_codes_counts_the_thresholds(monkeypatch, compares):
    """step_codes = #{c : T_c <= a} (numpy's searchsorted) for sparse and crowded thresholds (up to 40 in one
    bucket: the searchsorted path), at the thresholds, one below and above, 0, the largest finite and the
    infinity and NaN patterns."""
    monkeypatch.setattr(fnv, "STEP_COMPARES", compares)
    rng = np.random.default_rng(7)
    xp = fnv.ops("torch")
    sparse = np.sort(rng.integers(0, 0x7F800001, 126)).astype(np.int32)
    crowded = np.sort(np.concatenate([np.zeros(8, np.int64), 0x3F800000 + rng.integers(0, 1 << 17, 40),
                                      rng.integers(0, 0x7F800000, 70), np.full(8, 0x7F800000)])).astype(np.int32)
    for t in (sparse, crowded, fnv._scale_thresholds(np.array(_bits(5.2 / 2688), np.int32), "eps", "decode")):
        near = (t.astype(np.int64)[:, None] + np.array([-1, 0, 1])).reshape(-1)
        a = np.concatenate([near, rng.integers(0, 1 << 31, 4096), [0, 0x7F7FFFFF, 0x7F800000, 0x7FC00000,
                                                                   0x7FFFFFFF]])
        a = np.clip(a, 0, 0x7FFFFFFF).astype(np.int32)
        got = fnv.step_codes(t, torch.from_numpy(a), xp).numpy()
        assert np.array_equal(got, np.searchsorted(t, a, side="right"))


def _tiny_products():
    """Blocks where fl(x * r) is subnormal or below 2^-125 for some elements (large and tiny magnitudes in one
    block), blocks of subnormal elements, zeros among them, and ordinary blocks."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((8, 64)).astype(np.float32)
    x[0, :16] = np.float32(2.0 ** -120) * rng.standard_normal(16).astype(np.float32)
    x[0, 0] = 1.0e4
    x[1, 16:32] = np.float32(1e-40) * (1 + np.arange(16, dtype=np.float32))  # subnormal elements only
    x[2, 32:48] = np.array([3e3, -1.2e-38, 1.1755e-38, 0, -0.0, 2.0 ** -126, 2.0 ** -125, -(2.0 ** -124)] * 2,
                           np.float32)
    x[3, 48:64] = np.float32(5e-42)
    x[3, 48] = np.float32(-2.0 ** -100)
    return x


@pytest.mark.parametrize("levels,zero_scale,global_scale", [(1, "zero", "decode"), (1, "eps", "decode"),
                                                            (2, "eps", "decode"), (2, "eighth", "reciprocal")])
def test_integer_redo_where_products_are_tiny(monkeypatch, levels, zero_scale, global_scale):
    """Blocks failing the product floor get the integer f32_mul (the spy sees it called) and the exact model's
    codes."""
    calls = []
    real = fnv.f32_mul
    monkeypatch.setattr(fnv, "f32_mul", lambda *a, **k: calls.append(a[0].shape) or real(*a, **k))
    x = _tiny_products()
    blocks = env.tiles(x.view(np.uint32).astype(np.int64).tolist(), "1x16")
    q = env.quantize_blocks(blocks, "reciprocal", levels, zero_scale, global_scale=global_scale)
    st, s, c = fnv.nvfp4_quantize(torch.from_numpy(x), "reciprocal", levels, zero_scale,
                                  global_scale=global_scale, backend="torch")
    assert calls, "no block took the integer product"
    assert s.reshape(-1).tolist() == list(q.scales)
    assert [tuple(r) for r in c.reshape(-1, 16).tolist()] == list(q.codes)
    if levels == 2:
        assert int(st.view(torch.int32)) & 0xFFFFFFFF == q.tensor_scale


@pytest.mark.parametrize("tensor_scale,zero_scale", [(None, "eps"), (2.0 ** -126, "zero")])
def test_flush_to_zero_does_not_change_the_codes(tensor_scale, zero_scale):
    """With torch's flush-to-zero and denormals-are-zero switched on, the torch kernel still gives the exact
    model's codes (computed before switching), for both divisions.  With s_t = 2^-126 the block of subnormal
    elements gets r = 2^132, so its products are 0.1 to 7 where denormals-are-zero would make them 0."""
    x = _tiny_products()
    blocks = env.tiles(x.view(np.uint32).astype(np.int64).tolist(), "1x16")
    ts = None if tensor_scale is None else _bits(tensor_scale)
    want = {d: env.quantize_blocks(blocks, d, 2, zero_scale, tensor_scale=ts) for d in env.DIVISIONS}
    xt = torch.from_numpy(x)
    if not torch.set_flush_denormal(True):
        pytest.fail("this CPU cannot flush denormals (torch.set_flush_denormal returned False)")
    try:
        assert float(torch.tensor(1e-40, dtype=torch.float32) * 1.0) == 0.0  # the switch acts
        got = {d: fnv.nvfp4_quantize(xt, d, 2, zero_scale, tensor_scale=tensor_scale, backend="torch")
               for d in env.DIVISIONS}
    finally:
        torch.set_flush_denormal(False)
    for d, q in want.items():
        st, s, c = got[d]
        assert s.reshape(-1).tolist() == list(q.scales)
        assert [tuple(r) for r in c.reshape(-1, 16).tolist()] == list(q.codes)
        assert int(st.view(torch.int32)) & 0xFFFFFFFF == q.tensor_scale


@pytest.mark.slow
@pytest.mark.parametrize("st,zero_scale,global_scale", [SETTINGS[2], SETTINGS[5]])
def test_step_codes_on_every_finite_magnitude_slow(st, zero_scale, global_scale):
    """Every finite non-negative binary32 pattern as a block maximum: the bucket lookup in the thresholds gives
    the code of _block_scales (numpy, the numpy kernel's scale stage)."""
    sb = np.array(st, np.int32)
    t = fnv._scale_thresholds(sb, zero_scale, global_scale)
    xp = fnv.ops("torch")
    step = 1 << 24
    for lo in range(0, 0x7F800000, step):
        a = np.arange(lo, min(lo + step, 0x7F800000), dtype=np.int32)
        want = fnv._block_scales(a, sb, zero_scale, NP, global_scale, a)[0]
        got = fnv.step_codes(t, torch.from_numpy(a), xp).numpy()
        assert np.array_equal(got, want), hex(lo + int(np.flatnonzero(got != want)[0]))


@pytest.mark.parametrize("tensor_scale", [None, 5.2 / 2688, 1.0e-40, 3.0e36])
def test_dequantize_every_pair_of_codes(tensor_scale):
    """Every (UE4M3 scale code, E2M1 code) pair, NaN scale included, in a 16x16-tiled array with padded edges and
    in 1x16 blocks: the torch dequantize gives the exact model's fl(fl(P * S) * s_t)."""
    ts = None if tensor_scale is None else float(np.float32(tensor_scale))
    st = None if ts is None else _bits(ts)
    codes = np.tile(np.arange(16, dtype=np.uint8), 128).reshape(128, 16)  # block i: scale i, codes 0 .. 15
    q = env.NVFP4Blocks(st, tuple(range(128)), tuple(map(tuple, codes.tolist())))
    want = np.array([[np.float32(v.to_float()) for v in row] for row in env.dequantize_blocks(q)], np.float32)
    got = fnv.nvfp4_dequantize(ts, torch.arange(128, dtype=torch.uint8).reshape(128, 1),
                               torch.from_numpy(codes), backend="torch").numpy()
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan) and nan[127].all() and not nan[:127].any()
    assert np.array_equal(got.view(np.uint32)[~nan], want.view(np.uint32)[~nan])
    # 16x16 tiles of a 40x24 array (padded to 48x32: 3x2 tiles), scale codes and codes at random
    rng = np.random.default_rng(23)
    c2 = rng.integers(0, 16, (40, 24)).astype(np.uint8)
    s2 = rng.integers(0, 128, (3, 2)).astype(np.uint8)
    tiles = env.tiles(np.pad(c2, ((0, 8), (0, 8))).astype(np.int64).tolist(), "16x16")
    q2 = env.NVFP4Blocks(st, tuple(s2.reshape(-1).tolist()), tuple(map(tuple, tiles)))
    vals = [[np.float32(v.to_float()) for v in row] for row in env.dequantize_blocks(q2)]
    want2 = np.array(vals, np.float32).reshape(3, 2, 16, 16).transpose(0, 2, 1, 3).reshape(48, 32)[:40, :24]
    got2 = fnv.nvfp4_dequantize(ts, torch.from_numpy(s2), torch.from_numpy(c2), tile="16x16", backend="torch")
    nan2 = np.isnan(want2)
    assert np.array_equal(np.isnan(got2.numpy()), nan2)
    assert np.array_equal(got2.numpy().view(np.uint32)[~nan2], want2.view(np.uint32)[~nan2])


def test_dequantize_rejects_codes_out_of_range():
    s, c = torch.zeros((1, 1), dtype=torch.uint8), torch.zeros((1, 16), dtype=torch.uint8)
    with pytest.raises(BadValueError, match="E2M1 codes must be below 16"):
        fnv.nvfp4_dequantize(None, s, c + 16, backend="torch")
    with pytest.raises(BadValueError, match="UE4M3 scale codes must be below 128"):
        fnv.nvfp4_dequantize(None, s + 128, c, backend="torch")
