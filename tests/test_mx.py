"""OCP MX quantization: exact model vs numpy vs torch kernels, and vs torchao / gfloat where installed."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import BadValueError, SpecError, UnknownModeError
from refarith.exact import mx as emx
from refarith.exact.ops import decode
from refarith.fast import mx as fmx
from refarith.spec import parse_spec

MXS = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8", "mxint8_sym"]


def special_blocks(rng: np.random.Generator, nblocks: int, bs: int) -> np.ndarray:
    """Random float32 blocks: normal values at random block magnitudes, with NaN, inf, zeros, subnormals,
    values just below powers of two and raw random bit patterns mixed in."""
    e = rng.integers(-160, 128, size=(nblocks, 1))
    y = (rng.standard_normal((nblocks, bs)) * np.exp2(np.clip(e, -149, 127).astype(np.float64)))
    with np.errstate(over="ignore"):
        y = y.astype(np.float32)
    raw = rng.integers(0, 2**32, size=(nblocks, bs), dtype=np.uint64).astype(np.uint32).view(np.float32)
    below = np.exp2(rng.integers(-149, 128, size=(nblocks, bs)).astype(np.float64)).astype(np.float32)
    below = np.nextafter(below, np.float32(0)) * np.where(rng.random((nblocks, bs)) < 0.5, 1, -1).astype(np.float32)
    sub = (rng.integers(1, 1 << 23, size=(nblocks, bs)).astype(np.uint32)).view(np.float32)
    kind = rng.random((nblocks, bs))
    y = np.where(kind < 0.1, raw, y)
    y = np.where((kind >= 0.1) & (kind < 0.2), below, y)
    y = np.where((kind >= 0.2) & (kind < 0.27), sub, y)
    y = np.where((kind >= 0.27) & (kind < 0.32), np.float32(0) * np.sign(rng.standard_normal((nblocks, bs))), y)
    y = np.where((kind >= 0.32) & (kind < 0.325), np.float32(np.inf), y)
    y = np.where((kind >= 0.325) & (kind < 0.33), np.float32(np.nan), y)
    return y.astype(np.float32)


def exact_codes(x: np.ndarray, element: str, scale: str, rounding: str):
    ss, cc = [], []
    for row in x:
        b = emx.quantize_block([float(v) for v in row], element, scale, rounding)
        ss.append(b.scale)
        cc.append(b.codes)
    return np.array(ss), np.array(cc)


def check_agree(x: np.ndarray, element: str, scale: str = "floor", rounding: str = "rne", torch_too: bool = True):
    bs = x.shape[1]
    es, ec = exact_codes(x, element, scale, rounding)
    s, c = fmx.mx_quantize(x, element, block=bs, scale=scale, rounding=rounding)
    bad = np.nonzero((s[:, 0] != es) | (c != ec).any(axis=1))[0]
    assert bad.size == 0, f"{element} {scale} {rounding}: first mismatch {x[bad[0]]!r}: exact {es[bad[0]]} " \
                          f"{ec[bad[0]]}, numpy {s[bad[0]]} {c[bad[0]]}"
    if torch_too:
        torch = pytest.importorskip("torch")
        ts, tc = fmx.mx_quantize(torch.from_numpy(x), element, block=bs, scale=scale, rounding=rounding,
                                 backend="torch")
        assert np.array_equal(ts.numpy(), s) and np.array_equal(tc.numpy(), c)


# ------------------------------------------------------------------ exhaustive small cases
def test_every_e2m1_pair_block_of_two():
    """Every block of two E2M1 values (256 blocks), at several block magnitudes, all scale rules."""
    vals = [decode(c, "ocp_e2m1").to_float() for c in range(16)]
    pairs = np.array(list(itertools.product(vals, vals)), dtype=np.float32)
    x = np.concatenate([pairs * np.float32(2.0 ** k) for k in (-140, -127, -3, 0, 5, 120)])
    for scale in emx.SCALE_RULES:
        check_agree(x, "mxfp4", scale)


def test_every_amax_exponent():
    """Every binary32 exponent field (subnormals included) with mantissas 0, 1, half, all-ones, below the
    element rounding threshold: the scale of each rule and every element format agree with the exact model."""
    mants = [0, 1, (1 << 23) - 1, (1 << 23) - (1 << 19), (1 << 23) - (1 << 20) - 1]
    bits = [(e << 23) | m for e in range(255) for m in mants if (e, m) != (0, 0)]
    amax = np.array(bits, dtype=np.uint32).view(np.float32)
    x = np.stack([amax, -amax / np.float32(3), amax / np.float32(7), np.zeros_like(amax)], axis=1).astype(np.float32)
    for el in MXS:
        for scale in emx.SCALE_RULES:
            check_agree(x, el, scale, torch_too=scale == "floor")


def test_floor_scale_is_floor_log2_minus_emax():
    """FLOOR: the E8M0 exponent equals floor(log2 amax) - emax_elem, clamped (just-below-powers-of-two included)."""
    for k in range(-149, 128):
        a = np.float32(2.0 ** k)
        for v in (a, np.nextafter(a, np.float32(0)), np.nextafter(a, np.float32(np.inf))):
            if not np.isfinite(v) or v == 0:
                continue
            fl = emx.floor_log2(Fraction(float(v)))
            s, _ = fmx.mx_quantize(np.array([v], np.float32), "mxfp4")
            assert int(s[0]) - 127 == max(-127, min(127, fl - 2))


# ------------------------------------------------------------------ random blocks
def test_random_2e4_blocks_mxfp4_floor():
    """Default run: 2 * 10^4 random blocks; the 10^5-block runs of every format and scale rule are under slow."""
    rng = np.random.default_rng(1234)
    check_agree(special_blocks(rng, 20_000, 2), "mxfp4")


@pytest.mark.parametrize("element", MXS)
@pytest.mark.parametrize("scale", [s for s in emx.SCALE_RULES if s != "floor_half"])  # floor - 1: test_mx_floor_half
def test_random_blocks_every_format_and_scale(element, scale):
    rng = np.random.default_rng(hash((element, scale)) % 2**32)
    check_agree(special_blocks(rng, 300, 4), element, scale)


@pytest.mark.parametrize("element", ["mxfp4", "mxfp8_e4m3", "mxfp8_e5m2", "mxint8"])
@pytest.mark.parametrize("rounding", emx.ELEMENT_ROUNDING)
def test_random_blocks_every_rounding(element, rounding):
    rng = np.random.default_rng(hash((element, rounding)) % 2**32)
    check_agree(special_blocks(rng, 300, 4), element, "floor", rounding)


@pytest.mark.slow
@pytest.mark.parametrize("element", MXS)
@pytest.mark.parametrize("scale", emx.SCALE_RULES)
def test_random_1e5_blocks_every_variant(element, scale):
    rng = np.random.default_rng(99)
    check_agree(special_blocks(rng, 100_000, 2), element, scale, "rne")
    for rounding in emx.ELEMENT_ROUNDING[1:]:
        check_agree(special_blocks(rng, 20_000, 2), element, scale, rounding)


# ------------------------------------------------------------------ declared behaviour
def test_nan_or_inf_block_gets_nan_scale_and_dequantizes_to_nan():
    x = np.array([[1.0, np.nan, 2.0, 3.0], [1.0, -np.inf, 0, 0], [1.0, 2.0, 3.0, 4.0]], np.float32)
    s, c = fmx.mx_quantize(x, "mxfp8_e4m3", block=4)
    assert list(s[:, 0]) == [0xFF, 0xFF, 127 + 2 - 8]
    assert (c[:2] == 0).all()
    d = fmx.mx_dequantize(s, c, "mxfp8_e4m3", block=4)
    assert np.isnan(d[:2]).all() and np.array_equal(d[2], x[2])


def test_all_zero_block_gets_smallest_scale_and_keeps_signed_zeros():
    x = np.array([0.0, -0.0, 0.0, -0.0], np.float32)
    s, c = fmx.mx_quantize(x, "mxfp4", block=4)
    assert s[0] == 0 and list(c) == [0, 8, 0, 8]
    b = emx.quantize_block([0.0, -0.0], "mxfp4")
    assert b.scale == 0 and b.codes == (0, 8)


def test_scale_clamps_at_e8m0_range():
    # amax 2^-149 -> floor(log2) - 2 = -151 clamps to -127; the element 2^-149 / 2^-127 = 2^-22 rounds to 0
    b = emx.quantize_block([2.0 ** -149], "mxfp4")
    assert b.scale == 0 and b.codes == (0,)
    # MXINT8 with ceil: amax above 2^127 needs e = 128, clamps to 127; the binary32 max then saturates at 127
    big = float(np.finfo(np.float32).max)
    b = emx.quantize_block([big], "mxint8", "ceil")
    assert b.scale == 254 and b.codes == (127,)


def test_mxint8_minus_128_variants():
    # amax 1.999 -> X = 1; -1.999 * 64 = -127.94 rounds to -128 (full two's complement range) or clamps to -127
    b = emx.quantize_block([-1.999, 1.0], "mxint8")
    assert b.codes[0] == 0x80
    b = emx.quantize_block([-1.999, 1.0], "mxint8_sym")
    assert b.codes[0] == (-127) & 0xFF


def test_ragged_last_block_and_axis():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 70, 5)).astype(np.float32)
    s, c = fmx.mx_quantize(x, "mxfp6_e2m3", axis=1, block=32)
    assert s.shape == (3, 3, 5) and c.shape == x.shape
    for i in range(3):
        for j in range(5):
            blocks = emx.quantize([float(v) for v in x[i, :, j]], "mxfp6_e2m3", 32)
            assert [b.scale for b in blocks] == list(s[i, :, j])
            assert sum((list(b.codes) for b in blocks), []) == list(c[i, :, j])
    d = fmx.mx_dequantize(s, c, "mxfp6_e2m3", axis=1, block=32)
    for i, j in [(0, 0), (2, 4)]:
        blocks = emx.quantize([float(v) for v in x[i, :, j]], "mxfp6_e2m3", 32)
        ex = [v.to_float() for b in blocks for v in emx.dequantize_block(b, "mxfp6_e2m3")]
        assert list(d[i, :, j].astype(np.float64)) == ex


def test_dequantize_exact_including_subnormal_scale():
    x = np.array([2.0 ** -130, -(2.0 ** -128), 2.0 ** -135, 0.0], np.float32)
    for el in MXS:
        s, c = fmx.mx_quantize(x, el, block=4)
        d = fmx.mx_dequantize(s, c, el, block=4)
        b = emx.quantize_block([float(v) for v in x], el)
        assert [float(v) for v in d] == [v.to_float() for v in emx.dequantize_block(b, el)]


def test_bad_input():
    with pytest.raises(UnknownModeError):
        fmx.mx_quantize(np.zeros(4, np.float32), "mxfp4", scale="round")
    with pytest.raises(BadValueError):
        fmx.mx_quantize(np.zeros(4, np.float32), "mxfp4", block=0)
    with pytest.raises(UnknownModeError):
        emx.mx_element("binary16")
    with pytest.raises(SpecError):
        parse_spec("mx_quantize(binary16)")


def test_spec_ids():
    assert str(emx.mx_spec("mxfp4")) == "mx_quantize(ocp_e2m1,block=32,scale=floor,rounding=rne)"
    assert str(parse_spec("mx_quantize(e4m3,scale=rceil)")) == "mx_quantize(ocp_e4m3,block=32,scale=rceil,rounding=rne)"


# ------------------------------------------------------------------ peers
def _torchao():
    pytest.importorskip("torch")
    mt = pytest.importorskip("torchao.prototype.mx_formats.mx_tensor")
    return mt


TAO_ELEMS = {"mxfp8_e4m3": "float8_e4m3fn", "mxfp8_e5m2": "float8_e5m2", "mxfp4": "float4_e2m1fn_x2"}


def _tao_codes(mt, x, element, mode):
    import torch

    from refarith.fast.packing import unpack

    dt = getattr(torch, TAO_ELEMS[element])
    s, c = mt.to_mx(torch.from_numpy(x.copy()), dt, 32, scaling_mode=getattr(mt.ScaleCalculationMode, mode))
    s = s.view(torch.uint8).numpy()
    c = c.view(torch.uint8).numpy()
    if element == "mxfp4":
        c = unpack(c, x.size, 4).reshape(x.shape)
    return s, c


@pytest.mark.parametrize("element", list(TAO_ELEMS))
@pytest.mark.parametrize("scale", ["floor", "ceil", "even", "rceil"])
def test_torchao_agrees_on_normal_range_blocks(element, scale):
    """torchao to_mx agrees with the matching variant on finite blocks whose scale is a normal binary32 and
    whose elements stay normal in binary32 (the differences outside that range are the named tests below)."""
    mt = _torchao()
    rng = np.random.default_rng(7)
    e = rng.integers(-90, 90, size=(512, 1)).astype(np.float64)
    x = (rng.standard_normal((512, 32)) * np.exp2(e)).astype(np.float32)
    x[::7, 3] = np.float32(0)
    ts, tc = _tao_codes(mt, x, element, scale.upper())
    s, c = fmx.mx_quantize(x, element, block=32, scale=scale)
    if scale == "rceil":
        # keep blocks whose amax/max_elem is not within float32 log2 resolution of a power of two
        keep = ts[:, 0] == s[:, 0]
        assert keep.mean() > 0.99
        assert np.array_equal(tc[keep], c[keep])
        return
    assert np.array_equal(ts, s) and np.array_equal(tc, c)


def test_torchao_difference_subnormal_scale_clamped_to_min_normal():
    """torchao FLOOR divides by max(X, 2^-126): for the E8M0 scale 2^-127 its elements come out half as large
    (it stores scale code 0 but scales by 2^-126).  refarith divides by 2^-127 exactly, as the spec says."""
    mt = _torchao()
    x = np.zeros((1, 32), np.float32)
    x[0, 0], x[0, 1] = np.float32(2.0 ** -126), np.float32(2.0 ** -127)
    ts, tc = _tao_codes(mt, x, "mxfp8_e4m3", "FLOOR")
    s, c = fmx.mx_quantize(x, "mxfp8_e4m3")
    assert ts[0, 0] == s[0, 0] == 0
    assert (decode(int(tc[0, 0]), "ocp_e4m3").fraction, decode(int(c[0, 0]), "ocp_e4m3").fraction) == (1, 2)


def test_torchao_difference_rceil_float_log2_just_above_power_of_two():
    """torchao's eager RCEIL takes ceil(torch.log2(d)) in binary32: for d = 2^k (1 + 2^-23) with |k| >= 4
    log2 rounds to k and the scale comes out one binade too small (an element then saturates).  refarith
    computes ceil(log2 d) exactly from the bits: 2^(k+1)."""
    mt = _torchao()
    for k in (-20, 10):
        d = np.float32(2.0 ** k) * np.float32(1 + 2 ** -23)
        x = np.zeros((1, 32), np.float32)
        x[0, 0] = d * np.float32(6)
        assert x[0, 0] / np.float32(6) == d
        ts, _ = _tao_codes(mt, x, "mxfp4", "RCEIL")
        s, _ = fmx.mx_quantize(x, "mxfp4", scale="rceil")
        assert (int(ts[0, 0]) - 127, int(s[0, 0]) - 127) == (k, k + 1)


def test_torchao_difference_inf_block():
    """torchao gives an infinite amax a finite scale (FLOOR: 2^(128 - emax)) and saturates the infinity; the OCP
    rule used here makes the whole block NaN (scale 0xFF)."""
    mt = _torchao()
    x = np.ones((1, 32), np.float32)
    x[0, 0] = np.inf
    ts, tc = _tao_codes(mt, x, "mxfp8_e4m3", "FLOOR")
    s, c = fmx.mx_quantize(x, "mxfp8_e4m3")
    assert ts[0, 0] == 128 - 8 + 127 and tc[0, 0] == 0x7E
    assert s[0, 0] == 0xFF and (c == 0).all()


@pytest.mark.parametrize("element,gname", [("mxfp8_e4m3", "mxfp8_e4m3"), ("mxfp8_e5m2", "mxfp8_e5m2"),
                                           ("mxfp6_e3m2", "mxfp6_e3m2"), ("mxfp6_e2m3", "mxfp6_e2m3"),
                                           ("mxfp4", "mxfp4_e2m1"), ("mxint8", "mxint8")])
def test_gfloat_quantize_block_agrees(element, gname):
    """gfloat quantize_block (FLOOR scale from a float64 log2, RNE, saturation) gives the same dequantized
    values for finite blocks (float64 log2 of a binary32 amax is exact enough just below powers of two)."""
    gfloat = pytest.importorskip("gfloat")
    import gfloat.formats as gf

    fi = getattr(gf, f"format_info_{gname}")
    rng = np.random.default_rng(11)
    e = rng.integers(-120, 120, size=(150, 1)).astype(np.float64)
    x = (rng.standard_normal((150, 32)) * np.exp2(e)).astype(np.float32)
    x[0, :] = 0
    x[1, 0] = np.nextafter(np.float32(4.0), np.float32(0))
    s, c = fmx.mx_quantize(x, element)
    d = fmx.mx_dequantize(s, c, element)
    for i in range(x.shape[0]):
        g = gfloat.quantize_block(fi, x[i].astype(np.float64), gfloat.compute_scale_amax)
        assert np.array_equal(g, d[i].astype(np.float64)), (element, i)


# ------------------------------------------------------------------ the sticky-key table path
@pytest.mark.parametrize("element", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4"])
@pytest.mark.parametrize("rounding", [r if r in ("rne", "rna", "rtz", "rup") else
                                      pytest.param(r, marks=pytest.mark.slow) for r in emx.ELEMENT_ROUNDING])
def test_key_path_matches_exact_and_bit_path(element, rounding):
    """Chunks without binary32 subnormals in blocks of scale exponent <= 0 take the sticky-key table path:
    compare it with the exact model (sample) and with the arithmetic bit path (every element of 2*10^5 blocks,
    block exponents from -127 to 125, subnormals only where the block exponent is positive)."""
    rng = np.random.default_rng(hash((element, rounding)) % 2**32)
    x = special_blocks(rng, 50_000, 4)
    mag = x.view(np.uint32) & 0x7FFFFFFF
    fmt = emx.mx_element(element)
    bits = x.reshape(-1, 1, 4).view(np.int32)
    xp = fmx.ops("numpy")
    amax = (bits & 0x7FFFFFFF).max(axis=-1)
    special = amax >= 0x7F800000
    e = fmx.scale_exponent(np.where(special, 0, amax), fmt, "floor", xp)
    sub = ((mag < 0x00800000) & (mag != 0)).reshape(-1, 1, 4) & (e <= 0)[..., None]
    x.reshape(-1, 1, 4)[sub] = np.float32(0)
    x[:2000].reshape(-1)[::3] *= -1
    mag = bits & 0x7FFFFFFF
    assert ((mag < 0x00800000) & (mag != 0)).any()  # subnormals remain (in blocks with e > 0)
    table = fmx.key_codes(bits, mag, e, fmt, rounding, xp)
    sign, ef, n = fmx.split_f32(bits, xp)
    arith = fmx.encode_scaled(sign, ef, n, e[..., None], fmt, rounding, xp)
    ok = ~special[..., 0]
    assert np.array_equal(table[ok], arith[ok].astype(np.uint8))
    check_agree(x[:500], element, "floor", rounding, torch_too=False)
    torch = pytest.importorskip("torch")
    tt = fmx.key_codes(torch.from_numpy(bits), torch.from_numpy(mag), torch.from_numpy(e.astype(np.int32)), fmt,
                       rounding, fmx.ops("torch"))
    assert np.array_equal(tt.numpy(), table)


@pytest.mark.parametrize("element", MXS)
def test_torch_dequantize_equals_numpy(element):
    """The torch dequantize gives numpy's bits (numpy's are tied to the exact model by test_kill_mx)."""
    torch = pytest.importorskip("torch")
    x = special_blocks(np.random.default_rng(17), 300, 32)
    s, c = fmx.mx_quantize(x, element)
    d = fmx.mx_dequantize(s, c, element)
    with np.errstate(over="ignore"):
        dt = fmx.mx_dequantize(torch.from_numpy(s), torch.from_numpy(c), element, backend="torch").numpy()
    nan = np.isnan(d)
    assert np.array_equal(nan, np.isnan(dt))
    assert np.array_equal(d.view(np.uint32)[~nan], dt.view(np.uint32)[~nan])
