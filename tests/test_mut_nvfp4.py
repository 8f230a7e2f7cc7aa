"""fast/nvfp4.py with torch absent, against the exact model (refarith.exact.nvfp4 / refarith.exact.ops): the numpy
tables the torch stages read (UE4M3 values, the dequantize table, the bucket codes, the product floors and quotient
limits, the scale thresholds and their search), the generic and stochastic paths through ``_quantize_chunk``,
``global_scale="reciprocal"``, a given tensor scale and the refusals with their texts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import nvfp4 as env
from refarith.exact.ops import decode, mul
from refarith.fast import nvfp4 as fnv

F32_MAX = 0x7F7FFFFF
NO_CODE = 0x7F800000


def _bits(v) -> int:
    return int(np.array(v, np.float32).view(np.int32))


def _blocks_of(x, tile="1x16"):
    return env.tiles(x.view(np.uint32).astype(np.int64).tolist(), tile)


def _positions(shape, tile):
    """Per block of the exact model (env.tiles), flat position + 1 of each element in the input, 0 for padding."""
    return env.tiles((np.arange(int(np.prod(shape))).reshape(shape) + 1).tolist(), tile)


def _check(x, division, levels, zero_scale, tile="1x16", rounding="rne", tensor_scale=None,
           global_scale="decode", rand=None, rand_bits=None, sr_variant="a"):
    """numpy kernel == exact model (tensor scale bits, scale codes, element codes)."""
    st, s, c = fnv.nvfp4_quantize(x, division, levels, zero_scale, tile, rounding, tensor_scale,
                                  global_scale=global_scale, rand=rand, rand_bits=rand_bits, sr_variant=sr_variant)
    rb = None if rand is None else env.tiles(np.asarray(rand).astype(np.int64).tolist(), tile)
    ts = None if tensor_scale is None else _bits(tensor_scale)
    q = env.quantize_blocks(_blocks_of(x, tile), division, levels, zero_scale, rounding, ts, rand=rb,
                            rand_bits=rand_bits, sr_variant=sr_variant, global_scale=global_scale)
    assert s.dtype == np.uint8 and c.dtype == np.uint8 and c.shape == x.shape
    assert s.reshape(-1).tolist() == list(q.scales)
    flat = c.reshape(-1).tolist()
    for blk, want in zip(_positions(x.shape, tile), q.codes, strict=True):
        assert [flat[p - 1] for p in blk if p] == [w for p, w in zip(blk, want) if p]
    if int(levels) == 2:
        assert isinstance(st, np.float32) and _bits(st) == q.tensor_scale
    else:
        assert st is None and q.tensor_scale is None
    return st, s, c


def _matrix(seed, rows=16, cols=40, spread=12):
    """Rows of mixed magnitudes with a zero block, a -0 block, subnormals and values just below 6 * 2^k."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, cols)) * np.exp2(rng.integers(-spread, spread, (rows, 1)))).astype(np.float32)
    x[1, :16] = 0
    x[2, :16] = -0.0
    x[3, 5] = np.float32(3e-41)
    x[4, 0] = np.nextafter(np.float32(6 * 2.0 ** 5), np.float32(0))
    x[5, 0:3] = np.float32(2.0 ** -140), np.float32(-2.0 ** -130), np.float32(2.0 ** -127)
    return x


# ------------------------------------------------------------------ constant tables
def test_ue4m3_lut_is_the_exact_decoding():
    lut = fnv._lut_ue4m3()
    assert lut.dtype == np.float32 and lut.shape == (128,)
    for c in range(128):
        v = decode(c, "ue4m3")
        if v.is_nan:
            assert np.isnan(lut[c]) and c == 0x7F
        else:
            assert float(lut[c]) == v.to_float(), c
    assert np.array_equal(fnv._UE4M3_LUT.view(np.int32), lut.view(np.int32))


@pytest.mark.parametrize("tensor_scale", [None, 0.75, 2.0 ** -130, 2.0 ** 120])
def test_dequantize_table_is_the_exact_products(tensor_scale):
    tab = fnv.dequantize_table(tensor_scale)
    assert tab.dtype == np.int32 and tab.shape == (2048,)
    e2m1 = [_bits(decode(p, "ocp_e2m1").to_float()) & 0xFFFFFFFF for p in range(16)]
    for s in range(128):
        sv = fnv._UE4M3_LUT.view(np.int32)[s]
        for p in range(16):
            want = mul(e2m1[p], int(sv), "binary32")
            if tensor_scale is not None:
                want = mul(want.code, _bits(tensor_scale) & 0xFFFFFFFF, "binary32")
            got = int(tab[(s << 4) | p])
            if (want.code & 0x7FFFFFFF) > 0x7F800000:  # NaN (scale code 0x7F)
                assert (got & 0x7FFFFFFF) > 0x7F800000 and s == 0x7F, (s, p)
            else:
                assert got & 0xFFFFFFFF == want.code, (s, p)


@pytest.mark.parametrize("rounding", env.ROUNDINGS)
def test_bucket_codes_are_the_exact_roundings(rounding):
    out = fnv.bucket_codes(rounding)
    assert out.dtype == np.uint8 and out.shape == (2048,) and not out.flags.writeable
    offsets = (1, 1 << 20, (1 << 21) - 1) if rounding == "rne" else (1 << 20,)
    for h in range(2048):
        if h in (0, 1024):
            assert out[h] == env._e2m1(h << 21, rounding), h  # +0 and -0
            continue
        for o in offsets:
            assert out[h] == env._e2m1((h << 21) | o, rounding), (h, o)


def _floor_ref(r: int, zero_scale: str, code: int) -> int:
    """The documented product floor: (max(1, 129 - E(r)) << 23) - 1 for normal r, else 0x7FFFFFFF; code 0 with
    zero_scale="zero" is -2^31."""
    if zero_scale == "zero" and code == 0:
        return -(1 << 31)
    if 0x00800000 <= r < 0x7F800000:
        return (max(1, 129 - (r >> 23)) << 23) - 1
    return 0x7FFFFFFF


PER_CODE = np.array([0x3F800000, 0, 1, 0x007FFFFF, 0x00800000, 0x01000000, 0x3E000000, 0x40800000, 0x7F000000,
                     0x7F7FFFFF, 0x7F800000, 0x7FC00000] * 10 + [0x3F800000] * 8, np.int32)


@pytest.mark.parametrize("zero_scale", env.ZERO_SCALES)
def test_product_floor_and_quotient_limit(zero_scale):
    for order in (PER_CODE, PER_CODE[::-1].copy(), np.roll(PER_CODE, 1)):
        floor = fnv._product_floor(order, zero_scale)
        lim = fnv._quotient_limit(order, zero_scale)
        assert floor.dtype == np.int32 and lim.dtype == np.int32 and floor.shape == lim.shape == (128,)
        for i, r in enumerate(order.tolist()):
            f = _floor_ref(r, zero_scale, i)
            assert floor[i] == f, (i, r)
            if zero_scale == "zero" and i == 0:
                assert lim[i] == -1
            elif 0x00800000 <= r < 0x7F800000:
                assert lim[i] == f - 1, (i, r)
            else:
                assert lim[i] == 0x7FFFFFFF, (i, r)


# ------------------------------------------------------------------ scale thresholds
def _synthetic_thresholds():
    rng = np.random.default_rng(5)
    mid = np.sort(rng.choice(np.arange(1 << 10, F32_MAX - 16, 9973, dtype=np.int64), 106, replace=False))
    mid[40] = mid[41]  # two codes starting at the same pattern (a step of 2)
    t = np.concatenate([np.zeros(5, np.int64), [7], mid, [F32_MAX], np.full(13, NO_CODE, np.int64)])
    assert t.size == 126
    return t.astype(np.int32)


def test_code_thresholds_of_a_step_function_for_any_guess():
    want = _synthetic_thresholds()
    calls = []

    def code_of(a):
        assert a.dtype == np.int32
        calls.append(a.size)
        return np.searchsorted(want, a, side="right").astype(np.int32)

    guesses = {"exact": np.minimum(want, F32_MAX), "zeros": np.zeros(126, np.int32),
               "max": np.full(126, F32_MAX, np.int32), "random": np.random.default_rng(1).integers(0, F32_MAX, 126),
               "up3": np.minimum(want.astype(np.int64) + 3, F32_MAX), "down4": np.maximum(want.astype(np.int64) - 4, 0)}
    for name, g in guesses.items():
        calls.clear()
        got = fnv._code_thresholds(code_of, np.asarray(g).astype(np.int32))
        assert got.dtype == np.int32 and got.tolist() == want.tolist(), name
        # the window of 4 patterns either side of a guess decides it with one evaluation (the documented search)
        if name in ("exact", "up3", "down4"):
            assert calls == [126 * 9 + 2], name
        else:
            assert len(calls) > 1, name
    for shift in (5, -5):  # just outside the window: the binary search
        calls.clear()
        g = np.clip(want.astype(np.int64) + shift, 0, F32_MAX).astype(np.int32)
        assert fnv._code_thresholds(code_of, g).tolist() == want.tolist()
        assert len(calls) > 1
    calls.clear()
    g = np.minimum(want, F32_MAX)
    assert fnv._code_thresholds(code_of, g, width=1).tolist() == want.tolist() and calls == [126 * 3 + 2]
    calls.clear()
    g = np.minimum(want.astype(np.int64) + 2, F32_MAX).astype(np.int32)
    assert fnv._code_thresholds(code_of, g, width=1).tolist() == want.tolist() and len(calls) > 1


def _exact_scale(a: int, st, zero_scale: str, global_scale: str) -> int:
    levels = 1 if st is None else 2
    return env.quantize_blocks([[int(a)]], "reciprocal", levels, zero_scale, "rne",
                               None if st is None else int(st), global_scale=global_scale).scales[0]


@pytest.mark.parametrize("st,zero_scale,global_scale", [
    (None, "eps", "decode"), (None, "zero", "decode"), (None, "eighth", "decode"), (0.37, "zero", "decode"),
    (2.0 ** -20, "eps", "decode"), (2.0 ** 127, "zero", "decode"), (1e-30, "eps", "decode"),
    (1000.0, "eps", "reciprocal"), (2.0 ** -100, "zero", "reciprocal"), (2.0 ** 100, "zero", "reciprocal")])
def test_scale_thresholds_are_the_exact_code_steps(monkeypatch, st, zero_scale, global_scale):
    """T[c] is the least finite pattern A whose block scale code (exact model, "eighth" before its replacement,
    i.e. as "zero") is at least c; 0 where A = 0 reaches it, 0x7F800000 where no finite A does.  The guesses
    are good enough that one evaluation of the code function decides every code."""
    stb = None if st is None else _bits(st)
    zs = "eps" if zero_scale == "eps" else "zero"
    n = []
    real = fnv._block_scales

    def counted(*a, **k):
        n.append(1)
        return real(*a, **k)

    monkeypatch.setattr(fnv, "_block_scales", counted)
    t = fnv._scale_thresholds(None if stb is None else np.int32(stb), zero_scale, global_scale)
    monkeypatch.undo()
    assert t.dtype == np.int32 and t.shape == (126,) and len(n) == 1
    lo, hi = _exact_scale(0, stb, zs, global_scale), _exact_scale(F32_MAX, stb, zs, global_scale)
    for c in range(1, 127):
        a = int(t[c - 1])
        if c <= lo:
            assert a == 0, c
        elif c > hi:
            assert a == NO_CODE, c
        else:
            assert 0 < a <= F32_MAX
            assert _exact_scale(a - 1, stb, zs, global_scale) < c <= _exact_scale(a, stb, zs, global_scale), c


# ------------------------------------------------------------------ quantize paths
@pytest.mark.parametrize("division,levels,zero_scale", list(itertools.product(env.DIVISIONS, (1, 2),
                                                                               env.ZERO_SCALES)))
@pytest.mark.parametrize("tile", env.TILES)
def test_stochastic_rounding_every_variant(division, levels, zero_scale, tile):
    """rounding="sr" runs _quantize_chunk on numpy (with the random integers) for every variant."""
    x = _matrix(hash((division, levels, zero_scale, tile)) % 1000, 18, 34)
    if tile == "16x16":
        x[17, 33] = np.inf if levels == 2 else np.nan
    r = np.random.default_rng(2).integers(0, 256, x.shape)
    r[0, :8] = 0
    r[0, 8:16] = 255
    _check(x, division, levels, zero_scale, tile, "sr", rand=r, rand_bits=8, sr_variant="te_e2m1_8")


@pytest.mark.parametrize("division", env.DIVISIONS)
@pytest.mark.parametrize("zero_scale", env.ZERO_SCALES)
def test_stochastic_rounding_reciprocal_global_scale(division, zero_scale):
    x = _matrix(31, 8, 48, spread=40)
    x[6, 20] = -np.nan
    r = np.random.default_rng(3).integers(0, 1 << 5, x.shape)
    _check(x, division, 2, zero_scale, "1x16", "sr", global_scale="reciprocal", rand=r, rand_bits=5)
    _check(x, division, 2, zero_scale, "16x16", "sr", tensor_scale=2.0 ** -3, global_scale="reciprocal", rand=r,
           rand_bits=5, sr_variant="b")


@pytest.mark.parametrize("division", env.DIVISIONS)
@pytest.mark.parametrize("zero_scale", env.ZERO_SCALES)
@pytest.mark.parametrize("tile", env.TILES)
def test_reciprocal_global_scale(division, zero_scale, tile):
    """global_scale="reciprocal" (g = fl(fl(1 / amax) * 2688), blocks b * g, divisors S / g, multipliers g / S)."""
    x = _matrix(7, 20, 36, spread=30)
    _check(x, division, 2, zero_scale, tile, global_scale="reciprocal")
    _check(x * np.float32(2.0 ** -100), division, 2, zero_scale, tile, global_scale="reciprocal")
    _check(x, division, 2, zero_scale, tile, "rtz", tensor_scale=2.0 ** 90, global_scale="reciprocal")


def test_reciprocal_global_scale_overflow_and_tiny_tensors():
    """g overflows for amax below 2688 * 2^-128 (then 1.0); amax 0 takes 2^-126; a NaN does not count."""
    for scale in (2.0 ** -140, 2.0 ** -125, 0.0):
        x = np.full((2, 16), scale, np.float32)
        x[1, 3] = np.nan
        st, _, _ = _check(x, "reciprocal", 2, "eps", global_scale="reciprocal")
        _check(x, "divide", 2, "zero", global_scale="reciprocal")
    assert float(fnv.nvfp4_quantize(np.zeros((1, 16), np.float32), global_scale="reciprocal")[0]) == 1.0


@pytest.mark.parametrize("tensor_scale", [1.0, 0.1875, 2.0 ** -149, 3.4e38, 2.0 ** 60])
@pytest.mark.parametrize("division", env.DIVISIONS)
def test_given_tensor_scale(tensor_scale, division):
    x = _matrix(11, 8, 32, spread=60)
    ts = float(np.float32(tensor_scale))
    st, _, _ = _check(x, division, 2, "eps", tensor_scale=ts)
    assert float(st) == ts
    x[2, 2] = np.inf  # the given scale, with a special block
    _check(x, division, 2, "zero", "16x16", tensor_scale=ts)


@pytest.mark.parametrize("bad", [0.0, -1.0, -0.0, float("inf"), float("nan"), 1e39, 1e-50, -3.0e-45])
def test_bad_tensor_scale_refused(bad):
    with pytest.raises(BadValueError, match="per-tensor scale .* must be a positive finite binary32 value"):
        fnv.nvfp4_quantize(np.ones((1, 16), np.float32), tensor_scale=bad)


def test_tensor_scale_with_infinities_reads_the_finite_elements():
    x = _matrix(13, 6, 32, spread=5)
    x[0, 0], x[3, 7], x[5, 31] = np.inf, -np.inf, np.nan
    x[4, 4] = np.float32(-3.0e5)  # the largest finite magnitude, beside the specials
    st, s, c = _check(x, "reciprocal", 2, "eps")
    assert float(st) == float(np.float32(3.0e5) / np.float32(2688))
    _check(x, "divide", 2, "zero", global_scale="reciprocal")


def test_all_special_tensor():
    x = np.full((1, 32), np.inf, np.float32)
    x[0, 20] = np.nan
    st, s, c = _check(x, "reciprocal", 2, "eps")
    assert float(st) == 1.0 and s.tolist() == [[0x7F, 0x7F]] and not c.any()


def test_amax_pairs_every_position():
    rows = 16 * 16
    for w in (2, 4, 16, 256):
        mag = np.zeros((rows, w), np.int32)
        for i in range(rows):
            mag[i] = np.arange(w, dtype=np.int32) + 1
            mag[i, i % w] = 1 << 30
        out = np.empty(rows, np.int32)
        fnv._amax_pairs(mag, out, np.empty(mag.size, np.int32))
        assert out.tolist() == [1 << 30] * rows
        assert mag[:, :].max() == 1 << 30  # the input is left as it was
        assert (mag == 1 << 30).sum() == rows


@pytest.mark.parametrize("tile", env.TILES)
def test_shapes_rows_and_padding(tile):
    """Leading axes, a last axis not a multiple of 16 (and for 16x16 rows too): codes of the input's shape."""
    x = _matrix(17, 40, 19).reshape(2, 20, 19)
    st, s, c = fnv.nvfp4_quantize(x, "reciprocal", 2, "eps", tile)
    if tile == "1x16":
        assert s.shape == (2, 20, 2)
    else:
        assert s.shape == (2, 2, 2)
    assert c.shape == x.shape
    flat = x.reshape(-1, 19) if tile == "1x16" else x
    for i in range(2):
        part = x[i]
        st2, s2, c2 = _check(part, "reciprocal", 2, "eps", tile, tensor_scale=float(st))
        assert np.array_equal(c2, c[i]) and np.array_equal(s2, s[i])
    assert flat.size == x.size
    with pytest.raises(BadValueError, match="nvfp4_quantize needs an array with at least one dimension"):
        fnv.nvfp4_quantize(np.float32(1.0))
    with pytest.raises(BadValueError, match="tile=16x16 needs an array with at least two dimensions"):
        fnv.nvfp4_quantize(np.ones(16, np.float32), tile="16x16")


# ------------------------------------------------------------------ dequantize
@pytest.mark.parametrize("tile", env.TILES)
@pytest.mark.parametrize("levels", [1, 2])
def test_dequantize_tiles_against_exact(tile, levels):
    x = _matrix(23, 20, 36, spread=20)
    x[18, 34] = np.nan
    st, s, c = fnv.nvfp4_quantize(x, "divide", levels, "zero", tile)
    q = env.quantize_blocks(_blocks_of(x, tile), "divide", levels, "zero", "rne",
                            None if st is None else _bits(st))
    d = fnv.nvfp4_dequantize(st, s, c, tile)
    assert d.dtype == np.float32 and d.shape == x.shape
    want = np.zeros(x.size, np.float32)
    for blk, row in zip(_positions(x.shape, tile), env.dequantize_blocks(q), strict=True):
        for p, v in zip(blk, row):
            if p:
                want[p - 1] = np.nan if v.is_nan else v.to_float()
    got = d.reshape(-1)
    nan = np.isnan(want)
    assert nan.any() and np.array_equal(nan, np.isnan(got))
    assert np.array_equal(want.view(np.int32)[~nan], got.view(np.int32)[~nan])


def test_dequantize_refusals():
    with pytest.raises(UnknownModeError, match="unknown NVFP4 tile '4x4'; expected one of 1x16, 16x16"):
        fnv.nvfp4_dequantize(None, np.zeros((1, 1), np.uint8), np.zeros((1, 16), np.uint8), tile="4x4")


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("kw,msg", [
    ({"division": "mul"}, "unknown NVFP4 division 'mul'; expected one of reciprocal, divide"),
    ({"levels": 3}, "NVFP4 levels must be 1 or 2, got 3"),
    ({"zero_scale": "one"}, "unknown zero_scale 'one'; expected one of eps, zero, eighth"),
    ({"tile": "2x8"}, "unknown NVFP4 tile '2x8'; expected one of 1x16, 16x16"),
    ({"global_scale": "g"}, "unknown NVFP4 global_scale 'g'; expected one of decode, reciprocal"),
    ({"global_scale": "reciprocal", "levels": 1},
     r"NVFP4 global_scale=reciprocal needs levels=2 \(one level has no global scale\)"),
    ({"rounding": "rnz"}, "unknown element rounding 'rnz'; expected one of rne, rna, rtz, rup, rdn, rto"),
    ({"rand": np.zeros((1, 16), np.int64)}, r"rand is given but rounding='rne' is not stochastic \(rounding='sr'\)"),
])
def test_refusals(kw, msg):
    with pytest.raises(UnknownModeError, match=f"^{msg}$"):
        fnv.nvfp4_quantize(np.ones((1, 16), np.float32), **kw)


def test_levels_as_strings():
    x = _matrix(29, 6, 32)
    st1, s1, c1 = fnv.nvfp4_quantize(x, levels="1")
    assert st1 is None
    st2, s2, c2 = fnv.nvfp4_quantize(x, levels="2")
    _check(x, "reciprocal", 2, "eps")
    assert float(st2) == float(fnv.nvfp4_quantize(x, levels=2)[0])
    _, s1e, c1e = _check(x, "reciprocal", 1, "eps")
    assert np.array_equal(s1, s1e) and np.array_equal(c1, c1e)


def test_float64_input_is_rounded_to_binary32_first():
    """A float64 array is read as binary32 (round to nearest even) before any block arithmetic."""
    rng = np.random.default_rng(37)
    x64 = rng.standard_normal((4, 32)) * np.exp2(rng.integers(-10, 10, (4, 1)))
    x64[0, 0] = 1 + 2.0 ** -24 + 2.0 ** -40  # rounds up to 1 + 2^-23 in binary32
    x32 = x64.astype(np.float32)
    _check(x32, "divide", 2, "eps")
    for tile in env.TILES:
        a, b = fnv.nvfp4_quantize(x64, tile=tile), fnv.nvfp4_quantize(x32, tile=tile)
        assert _bits(a[0]) == _bits(b[0]) and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])


def _patterns(seed, count=1500):
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 1 << 32, count, dtype=np.int64)
    edges = np.array([0, 1, 0x007FFFFF, 0x00800000, 0x3E800000, 0x3F400000, 0x40A00000, 0x40C00000, 0x7F7FFFFF,
                      0x7F800000, 0x7F800001, 0x7FC00000], np.int64)
    p[:24] = np.concatenate([edges, edges | (1 << 31)])
    p[24:200] = (rng.integers(0, 2048, 176) << 21) + rng.integers(-2, 3, 176)  # next to the E2M1 decision points
    return (p & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


@pytest.mark.parametrize("rounding", env.ROUNDINGS)
def test_e2m1_codes_of_binary32_patterns(rounding):
    """_e2m1_codes (the element rounding of _quantize_chunk): round_value(y, ocp_e2m1, rounding, saturate,
    nan_policy=zero) of every kind of binary32 pattern."""
    y = _patterns(41).reshape(30, 50)
    got = fnv._e2m1_codes(y, rounding, fnv.ops("numpy"))
    assert got.shape == y.shape
    assert got.reshape(-1).tolist() == [env._e2m1(int(v) & 0xFFFFFFFF, rounding) for v in y.reshape(-1).tolist()]


@pytest.mark.parametrize("division,levels,zero_scale,global_scale", [
    ("reciprocal", 2, "eps", "decode"), ("divide", 2, "zero", "decode"), ("reciprocal", 1, "eighth", "decode"),
    ("divide", 1, "eps", "decode"), ("reciprocal", 2, "zero", "reciprocal"), ("divide", 2, "eighth", "reciprocal")])
@pytest.mark.parametrize("rounding", ["rne", "rtz", "rup"])
def test_quantize_chunk_direct(division, levels, zero_scale, global_scale, rounding):
    """_quantize_chunk on numpy blocks (the chunk kernel blockwise and the stochastic path run): the exact
    model's scale and element codes."""
    xp = fnv.ops("numpy")
    x = _matrix(43, 12, 48, spread=30)
    x[7, 40] = np.nan
    x[8, 3] = -np.inf
    for tile in env.TILES:
        blocks, _ = fnv._blocks(x, tile, xp)
        bits = xp.i32(blocks)
        st = fnv.tensor_scale_bits(bits, levels, None, xp, global_scale)
        q = env.quantize_blocks(_blocks_of(x, tile), division, levels, zero_scale, rounding,
                                None if st is None else int(st) & 0xFFFFFFFF, global_scale=global_scale)
        s, c = fnv._quantize_chunk(bits, st, division, zero_scale, rounding, xp, global_scale=global_scale)
        assert s.dtype == np.uint8 and c.dtype == np.uint8
        assert s.reshape(-1).tolist() == list(q.scales)
        assert [tuple(r) for r in c.reshape(-1, c.shape[-1]).tolist()] == list(q.codes)
