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


# ------------------------------------------------------------------ division="divide": fl(x * fl(1 / d)) and its edges
def _exact_e2m1(bits: int, rounding: str) -> int:
    from refarith.exact import ops as exact_ops
    from refarith.exact.rounding import round_value

    v = exact_ops.decode(bits & 0xFFFFFFFF, "binary32")
    if v.is_nan:
        return 0
    return round_value(v, "ocp_e2m1", rounding, "saturate").code


@pytest.mark.parametrize("rounding", env.ROUNDINGS)
def test_bucket_codes_are_the_exact_models_codes(rounding):
    """Every bucket's code is the exact model's E2M1 code of the patterns strictly inside it (both ends and one at
    random, both signs); buckets 0 and 1024 give the codes of +0 and -0."""
    tab = fnv.bucket_codes(rounding)
    rng = np.random.default_rng(3)
    assert tab.shape == (2048,)
    assert (int(tab[0]), int(tab[1024])) == (_exact_e2m1(0, rounding), _exact_e2m1(0x80000000, rounding))
    for h in range(2048):
        if h in (0, 1024):
            continue
        for p in (h << 21 | 1, ((h + 1) << 21) - 1, h << 21 | int(rng.integers(1, 1 << 21))):
            assert int(tab[h]) == _exact_e2m1(p, rounding), (hex(p), rounding)


def _edge_blocks(d: np.ndarray, points: list[float], reach: int) -> np.ndarray:
    """Blocks of 16 (float32, one row of blocks per divisor): a first element A that keeps the block's scale code
    (A = 6 d (1 + 2^-10), above every other element), then the patterns within ``reach`` of m * d for every point
    m, both signs."""
    rows = []
    off = np.arange(-reach, reach + 1)
    for dv in d.astype(np.float64):
        a = np.float32(6 * dv * (1 + 2.0 ** -10))
        cand = (np.array([np.float32(m * dv) for m in points]).view(np.int32)[:, None] + off).reshape(-1)
        cand = cand.astype(np.int32).view(np.float32)
        cand = cand[np.abs(cand) <= a]
        cand = np.where(np.arange(cand.size) % 2 == 1, -cand, cand).astype(np.float32)
        pad = -cand.size % 15
        cand = np.concatenate([cand, np.zeros(pad, np.float32)]).reshape(-1, 15)
        rows.append(np.concatenate([np.full((cand.shape[0], 1), a, np.float32), cand], axis=1))
    return np.concatenate(rows).reshape(1, -1)


_MIDPOINTS = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0]
_VALUES = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]


@pytest.mark.parametrize("levels,tensor_scale,rounding", [(1, None, "rne"), (1, None, "rup"),
                                                          (2, 5.2 / 2688, "rne"), (2, 3.3e-3, "rto")])
def test_divide_at_the_rounding_edges(monkeypatch, levels, tensor_scale, rounding):
    """Quotients within WINDOW + 6 patterns of every E2M1 decision point (ties x = m * d included) of every scale
    code's divisor d: the torch kernel gives the exact model's codes, and the elements near an edge took the
    integer f32_div (seen by a spy)."""
    calls = []
    real = fnv.f32_div
    monkeypatch.setattr(fnv, "f32_div", lambda *a, **k: calls.append(tuple(a[0].shape)) or real(*a, **k))
    ts = None if tensor_scale is None else float(np.float32(tensor_scale))
    s = fnv._UE4M3_LUT[1:127].astype(np.float32)[::3]
    d = s if ts is None else s * np.float32(ts)  # fl(S * s_t): numpy's IEEE binary32 multiply
    x = _edge_blocks(d, _MIDPOINTS if rounding in ("rne", "rna") else _VALUES, fnv.WINDOW + 6)
    st = None if ts is None else _bits(ts)
    q = env.quantize_blocks(x.view(np.uint32).reshape(-1, 16).astype(np.int64).tolist(), "divide", levels, "eps",
                            rounding, tensor_scale=st)
    calls.clear()
    _, sc, c = fnv.nvfp4_quantize(torch.from_numpy(x), "divide", levels, "eps", rounding=rounding,
                                  tensor_scale=ts, backend="torch")
    assert sc.reshape(-1).tolist() == list(q.scales)
    assert [tuple(r) for r in c.reshape(-1, 16).tolist()] == list(q.codes)
    assert any(len(sh) == 1 and sh[0] > 0 for sh in calls), "no element near an edge took the integer quotient"


@pytest.mark.parametrize("group", [fnv.NEAR_GROUP, 48])
def test_divide_with_many_zeros(monkeypatch, group):
    """ReLU-like data (half zeros, -0 among them), where most groups hold an element at a bucket edge (the zeros)
    and the kernel lifts the zeros out of reach first; groups that do not divide the chunk; several chunks."""
    monkeypatch.setattr(fnv, "NEAR_GROUP", group)
    monkeypatch.setattr(fnv, "TORCH_CPU_CHUNK", 1024)
    rng = np.random.default_rng(13)
    x = np.maximum(rng.standard_normal((6, 400)), 0).astype(np.float32)
    x[1, ::7] = -0.0
    x[2, :16] = 0.0
    blocks = env.tiles(x.view(np.uint32).astype(np.int64).tolist(), "1x16")
    for levels, rounding in ((2, "rne"), (1, "rdn")):
        q = env.quantize_blocks(blocks, "divide", levels, "eps", rounding)
        _, s, c = fnv.nvfp4_quantize(torch.from_numpy(x), "divide", levels, "eps", rounding=rounding,
                                     backend="torch")
        assert s.reshape(-1).tolist() == list(q.scales)
        assert [tuple(r) for r in c.reshape(-1, 16).tolist()] == list(q.codes)


def test_divide_where_the_reciprocal_overflows():
    """s_t = 2^-140 makes the divisor of a block of zeros 2^-6 * 2^-140 = 2^-146, whose reciprocal overflows: the
    block is recomputed with the integer quotient, so -0 / d keeps its code -0 (8), where -0 * inf would be NaN
    (code 0)."""
    x = np.zeros((2, 32), np.float32)
    x[0, 1::2] = -0.0
    x[1] = np.float32(2.0 ** -130) * np.arange(32, dtype=np.float32)
    blocks = env.tiles(x.view(np.uint32).astype(np.int64).tolist(), "1x16")
    q = env.quantize_blocks(blocks, "divide", 2, "eps", tensor_scale=_bits(2.0 ** -140))
    _, s, c = fnv.nvfp4_quantize(torch.from_numpy(x), "divide", 2, "eps", tensor_scale=2.0 ** -140,
                                 backend="torch")
    assert 8 in q.codes[0]
    assert s.reshape(-1).tolist() == list(q.scales)
    assert [tuple(r) for r in c.reshape(-1, 16).tolist()] == list(q.codes)


def test_quotient_limit_recomputes_every_block_where_the_reciprocal_is_not_normal():
    """Codes whose r = fl(1 / d) is infinite, zero or subnormal recompute every block, blocks of zeros included
    (limit 0x7FFFFFFF, the largest (smallest nonzero magnitude - 1)): a device's NaN for ±0 * inf need not be the
    pattern that the bucket search happens to recompute on this CPU.  Normal r: the product floor - 1; code 0 with
    zero_scale="zero" never (overwritten)."""
    r = np.array([_bits(3.0), 0x7F800000, 0, 0x00400000, _bits(2.0 ** 100)] + [_bits(1.0)] * 123, np.int32)
    for zs in ("eps", "zero"):
        lim = fnv._quotient_limit(r, zs)
        assert lim.dtype == np.int32
        assert lim[1:4].tolist() == [0x7FFFFFFF] * 3
        assert lim[4] == (1 << 23) - 1 - 1  # E(r) = 227: |x| >= 2^-126 suffices
        assert lim[5] == (2 << 23) - 1 - 1  # E(r) = 127: |x| >= 2^-125
        assert lim[0] == (-1 if zs == "zero" else (1 << 23) - 2)


@pytest.mark.slow
@pytest.mark.parametrize("levels,tensor_scale", [(1, None), (2, 5.2 / 2688)])
def test_divide_on_every_magnitude_of_one_block_scale_slow(levels, tensor_scale):
    """Every binary32 magnitude up to a block maximum A whose scale code is that of 1.0 (levels 1) or 40 (levels 2),
    with alternating signs, 15 to a block after A: the torch kernel's codes equal numpy's (IEEE binary32 division
    fl(x / d) and the sticky-key table)."""
    if tensor_scale is None:
        a = np.float32(6.0 * (1 + 2.0 ** -10))
    else:
        a = np.float32(6 * float(fnv._UE4M3_LUT[40]) * float(np.float32(tensor_scale)) * (1 + 2.0 ** -10))
    top = int(np.array(a).view(np.int32))
    step = 15 << 20
    for lo in range(0, top + 1, step):
        m = np.arange(lo, min(lo + step, top + 1), dtype=np.int64)
        m = np.concatenate([m, np.zeros(-m.size % 15, np.int64)]).astype(np.int32).view(np.float32)
        m = np.where(np.arange(m.size) % 2 == 1, -m, m).astype(np.float32).reshape(-1, 15)
        x = np.concatenate([np.full((m.shape[0], 1), a, np.float32), m], axis=1).reshape(1, -1)
        want = fnv.nvfp4_quantize(x, "divide", levels, "eps", tensor_scale=tensor_scale)
        got = fnv.nvfp4_quantize(torch.from_numpy(x), "divide", levels, "eps", tensor_scale=tensor_scale,
                                 backend="torch")
        assert np.array_equal(got[1].numpy(), want[1])
        assert np.array_equal(got[2].numpy(), want[2]), hex(lo)
