"""numpy MX kernels (refarith.fast.mx) on small inputs that decide every branch, torch absent or present.

Block codes come from refarith.exact.mx; the integer binary32 arithmetic (f32_mul/div/add/scale) is compared
with numpy's IEEE binary32 operations, an independent implementation of the same correctly rounded operations.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import mx as emx
from refarith.exact.ops import decode
from refarith.fast import mx as fmx

NP = fmx.ops("numpy")
EDGE_BITS = np.array([0, 1, 2, 0x3FFFFF, 0x400000, 0x7FFFFF, 0x800000, 0x800001, 0xFFFFFF, 0x1000000, 0x3F800000,
                      0x3F800001, 0x3FFFFFFF, 0x40000000, 0x7F000000, 0x7F7FFFFF, 0x7F800000, 0x7FC00000,
                      0x33800000, 0x34000000, 0x00000003], dtype=np.uint32)


def _f32_operands(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    sub = rng.integers(0, 1 << 23, n // 4).astype(np.uint32)
    near1 = (0x3F800000 + rng.integers(-64, 64, n // 4)).astype(np.uint32)
    signs = (rng.integers(0, 2, EDGE_BITS.size).astype(np.uint32) << 31)
    return np.concatenate([EDGE_BITS, EDGE_BITS | np.uint32(1 << 31), EDGE_BITS ^ signs, raw, sub, near1])


def _same_bits(got_i32, want_f32) -> None:
    got = np.asarray(got_i32).astype(np.int64) & 0xFFFFFFFF
    want = want_f32.view(np.uint32).astype(np.int64)
    nan_w = np.isnan(want_f32)
    assert np.array_equal(got[~nan_w], want[~nan_w])
    assert np.all((got[nan_w] & 0x7FFFFFFF) == 0x7FC00000)


@pytest.mark.parametrize("known_length", [False, True])
@pytest.mark.parametrize("op", ["mul", "div"])
def test_f32_mul_div_match_ieee_binary32(op, known_length):
    a = _f32_operands(1, 3000)
    b = np.random.default_rng(2).permutation(_f32_operands(3, 3000))
    ai, bi = a.view(np.int32), b.view(np.int32)
    with np.errstate(all="ignore"):
        want = a.view(np.float32) * b.view(np.float32) if op == "mul" else a.view(np.float32) / b.view(np.float32)
    got = fmx.f32_mul(ai, bi, NP, known_length) if op == "mul" else fmx.f32_div(ai, bi, NP, known_length)
    _same_bits(got, want)


def test_f32_add_magnitudes_and_scale_int_match_ieee():
    a = _f32_operands(4, 3000)
    b = np.random.default_rng(5).permutation(_f32_operands(6, 3000))
    fin = np.isfinite(a.view(np.float32)) & np.isfinite(b.view(np.float32))
    a, b = a[fin], b[fin]
    with np.errstate(all="ignore"):
        want = np.abs(a.view(np.float32)) + np.abs(b.view(np.float32))
    _same_bits(fmx.f32_add_magnitudes(a.view(np.int32), b.view(np.int32), NP), want)
    rng = np.random.default_rng(7)
    k = rng.integers(-(1 << 20), 1 << 20, a.size)
    k[:6] = [0, 1, -1, (1 << 20) - 1, -(1 << 20), 3]
    with np.errstate(all="ignore"):
        # |k| < 2^24 converts to binary32 exactly, so numpy's single product is the one rounding
        want = k.astype(np.float32) * a.view(np.float32)
    _same_bits(fmx.f32_scale_int(k, a.view(np.int32), NP), want)


def test_bit_length_and_split():
    n = np.array([0, 1, 2, 3, 255, 256, (1 << 32) - 1, 1 << 32, (1 << 61) + 5, (1 << 62) - 1], dtype=np.int64)
    assert fmx.bit_length64(n, NP).tolist() == [int(v).bit_length() for v in n]
    bits = EDGE_BITS.view(np.int32)
    sign, ef, sig = fmx.split_f32(bits | np.int32(-(1 << 31)), NP)
    assert sign.tolist() == [1] * bits.size
    for b, e, s in zip(EDGE_BITS.tolist(), ef.tolist(), sig.tolist()):
        if b & 0x7F800000 == 0x7F800000:
            continue
        v = decode(b, "binary32")
        assert v.mag == Fraction(s) * Fraction(2) ** (e - 150), b
        assert s == 0 or (1 << 23) <= s < (1 << 24)
    lg = fmx.floor_log2_f32(EDGE_BITS[:8].view(np.int32), NP).tolist()
    assert lg == [-1000, -149, -148, -128, -127, -127, -126, -126]


ELEMENTS = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8", "mxint8_sym"]


def _blocks(seed: int, nblocks: int, bs: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.integers(-140, 126, (nblocks, 1))
    y = (rng.standard_normal((nblocks, bs)) * np.exp2(e.astype(np.float64))).astype(np.float32)
    grid = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0],
                    np.float32)
    tie = rng.choice(grid, (nblocks, bs)) * rng.choice(np.array([1, -1], np.float32), (nblocks, bs))
    tie = tie * np.exp2(rng.integers(-3, 3, (nblocks, 1))).astype(np.float32)
    kind = rng.random((nblocks, 1))
    y = np.where(kind < 0.5, tie, y)
    y[0] = 0.0
    y[1, 0] = -0.0
    y[2] = np.float32(1e-44)
    return y.astype(np.float32)


def _exact(x, element, scale, rounding):
    ss, cc = [], []
    for row in x:
        b = emx.quantize_block([float(v) for v in row], element, scale, rounding)
        ss.append(b.scale)
        cc.append(b.codes)
    return np.array(ss), np.array(cc)


@pytest.mark.parametrize("element", ELEMENTS)
def test_every_scale_rule_and_rounding(element):
    x = _blocks(hash(element) % 1000, 24, 4)
    for scale in emx.SCALE_RULES:
        for rounding in emx.ELEMENT_ROUNDING:
            es, ec = _exact(x, element, scale, rounding)
            s, c = fmx.mx_quantize(x, element, block=4, scale=scale, rounding=rounding)
            assert s.dtype == np.uint8 and c.dtype == np.uint8
            assert np.array_equal(s[:, 0], es), (scale, rounding)
            assert np.array_equal(c, ec), (scale, rounding)
    # the arithmetic path (a binary32 subnormal in the block) agrees with the table path
    y = x.copy()
    y[:, 3] = np.float32(1e-40)
    for rounding in ("rne", "rna", "rtz"):
        es, ec = _exact(y, element, "floor", rounding)
        s, c = fmx.mx_quantize(y, element, block=4, rounding=rounding)
        assert np.array_equal(s[:, 0], es) and np.array_equal(c, ec), rounding


def test_special_blocks_and_clamped_scales():
    x = np.array([[1.0, np.nan, 2.0, 3.0], [1.0, -np.inf, 0, 0], [3e38, 1, 2, 3], [1e-45, 0, 0, 0],
                  [0, 0, 0, 0], [-0.0, 0, 0, 0]], np.float32)
    for element in ELEMENTS:
        for scale in emx.SCALE_RULES:
            es, ec = _exact(x, element, scale, "rne")
            s, c = fmx.mx_quantize(x, element, block=4, scale=scale)
            assert s[:, 0].tolist() == es.tolist() and c.tolist() == ec.tolist(), (element, scale)
    s, _ = fmx.mx_quantize(x, "mxfp4", block=4)
    assert s[0, 0] == 0xFF and s[1, 0] == 0xFF and s[4, 0] == 0


def test_axis_padding_and_chunks():
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((3, 70)) * 10).astype(np.float32)
    es = [emx.quantize(row.tolist(), "mxfp8_e4m3", block=32) for row in x]
    s, c = fmx.mx_quantize(x, "mxfp8_e4m3")
    assert s.shape == (3, 3) and c.shape == (3, 70)
    assert s.tolist() == [[b.scale for b in row] for row in es]
    assert c.tolist() == [[v for b in row for v in b.codes] for row in es]
    s0, c0 = fmx.mx_quantize(x.T.copy(), "mxfp8_e4m3", axis=0)
    assert s0.shape == (3, 3) and np.array_equal(s0, s.T) and np.array_equal(c0, c.T)
    s1, c1 = fmx.mx_quantize(x.T.copy(), "mxfp8_e4m3", axis=-2)
    assert np.array_equal(s1, s.T) and np.array_equal(c1, c.T)
    # more rows than one chunk holds: the chunked loop must give the same codes as row by row
    big = (rng.standard_normal((5000, 32)) * np.exp2(rng.integers(-20, 20, (5000, 1)))).astype(np.float32)
    big[4321, 5] = np.float32(1e-40)
    sb, cb = fmx.mx_quantize(big, "mxfp4")
    for i in (0, 2047, 2048, 4095, 4096, 4321, 4999):
        b = emx.quantize_block([float(v) for v in big[i]], "mxfp4")
        assert sb[i, 0] == b.scale and tuple(cb[i]) == b.codes, i
    vals = fmx.mx_dequantize(sb, cb, "mxfp4")
    assert vals.shape == big.shape


def test_input_checks():
    x = np.ones((2, 4), np.float32)
    with pytest.raises(BadValueError, match=r"^block size must be a positive integer, got 0$"):
        fmx.mx_quantize(x, "mxfp4", block=0)
    with pytest.raises(BadValueError, match=r"^block size must be a positive integer, got 2.0$"):
        fmx.mx_quantize(x, "mxfp4", block=2.0)
    with pytest.raises(UnknownModeError, match=r"^unknown MX scale rule 'round'; expected one of floor, ceil, even, "
                                               r"rceil, floor_half$"):
        fmx.mx_quantize(x, "mxfp4", scale="round")
    with pytest.raises(UnknownModeError, match=r"^unknown element rounding 'zz'; expected one of rne, rna, rtz, rup, "
                                               r"rdn, rto$"):
        fmx.mx_quantize(x, "mxfp4", rounding="zz")
    # stochastic rounding is a mode of its own: it takes the random integers, one per element
    with pytest.raises(UnknownModeError, match=r"^stochastic rounding needs rand: one integer of rand_bits bits per "
                                               r"element \(shape \(2, 4\)\)$"):
        fmx.mx_quantize(x, "mxfp4", rounding="sr")
    with pytest.raises(BadValueError, match=r"^mx_quantize needs an array with at least one dimension$"):
        fmx.mx_quantize(np.float32(1.0), "mxfp4")
    with pytest.raises(BadValueError, match=r"^axis 2 out of range for an array of 2 dimensions$"):
        fmx.mx_quantize(x, "mxfp4", axis=2)
    with pytest.raises(BadValueError, match=r"^axis -3 out of range for an array of 2 dimensions$"):
        fmx.mx_quantize(x, "mxfp4", axis=-3)
    with pytest.raises(UnknownModeError, match=r"^unknown fast backend 'jax'; expected numpy or torch$"):
        fmx.ops("jax")
    with pytest.raises(UnknownModeError, match=r"^unknown element rounding 'x'$"):
        fmx._round_up(np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), "x", NP)
    with pytest.raises(UnknownModeError, match=r"^unknown MX scale rule 'x'; expected one of floor, ceil, even, "
                                               r"rceil, floor_half$"):
        fmx.scale_exponent(np.zeros(1, np.int32), fmx.element_format("mxfp4"), "x", NP)
    assert fmx.mx_quantize(x, "mxfp4", block=1)[0].shape == (2, 4)
    assert fmx.ops("numpy") is NP


@pytest.mark.parametrize("element", ELEMENTS)
def test_dequantize_exact(element):
    fmt = fmx.element_format(element)
    ncodes = 256 if element.startswith("mxint") else fmt.ncodes
    codes = np.arange(ncodes, dtype=np.uint8).reshape(1, -1)
    lut = fmx.element_lut(fmt)
    assert lut.dtype == np.float32 and lut.size == ncodes
    for s in (0, 1, 100, 127, 200, 254):
        got = fmx.mx_dequantize(np.array([[s] * -(-ncodes // 32)], np.uint8), codes, element)
        want = [v for i in range(0, ncodes, 32)
                for v in emx.dequantize_block(emx.MXBlock(s, tuple(range(i, min(i + 32, ncodes)))), element)]
        for g, w in zip(got[0].tolist(), want):
            if w.is_nan:
                assert np.isnan(g)
            elif w.is_finite:
                with np.errstate(over="ignore"):  # beyond binary32's range the float32 product is infinite
                    want32 = float(np.float32(float(w.mag))) * (-1 if w.sign else 1)
                assert g == want32 and (np.signbit(g) == bool(w.sign)), (s, g)
            else:
                assert g == (-np.inf if w.sign else np.inf)
    nan = fmx.mx_dequantize(np.array([[0xFF]], np.uint8), codes[:, :4], element, block=4)
    assert np.isnan(nan).all()
    sv = fmx.scale_values_f32(np.array([0, 1, 127, 254, 255], np.uint8), NP)
    assert sv.view(np.uint32).tolist() == [0x00400000, 0x00800000, 0x3F800000, 0x7F000000, 0x7FC00000]
    t = fmx.mx_dequantize(np.array([[127, 128, 126]], np.uint8), np.full((2, 3), 2, np.uint8), "mxfp4", axis=0)
    assert t.tolist() == [[1.0, 2.0, 0.5], [1.0, 2.0, 0.5]]


def test_numpy_shim():
    f = np.array([1.5, -2.0], np.float32)
    assert NP.i32(f).tolist() == f.view(np.int32).tolist()
    assert NP.i32(np.array([3, 4], np.int64)).dtype == np.int32
    assert NP.float_bits([1.0]).tolist() == [0x3F800000]
    assert NP.to_f32(np.array([3])).dtype == np.float32
    assert NP.f32_from_bits(np.array([0x3F800000], np.int64)).tolist() == [1.0]
    assert NP.amax(np.array([[1, 5], [7, 2]]), -1).tolist() == [5, 7]
    assert NP.u8(np.array([255, 3])).dtype == np.uint8
    assert NP.anyof(np.array([False, True])) is True and NP.anyof(np.array([False])) is False


def test_f32_special_pairs_and_single_bit_roundings():
    sp = np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x3F800000, 0x00000001, 0x7F7FFFFF],
                  np.uint32)
    a, b = (v.ravel() for v in np.meshgrid(sp, sp))
    with np.errstate(all="ignore"):
        _same_bits(fmx.f32_mul(a.view(np.int32), b.view(np.int32), NP), a.view(np.float32) * b.view(np.float32))
        _same_bits(fmx.f32_div(a.view(np.int32), b.view(np.int32), NP), a.view(np.float32) / b.view(np.float32))
    # k * s with a 25- or 26-bit exact product: one or two bits dropped, ties to even decided by the last bit
    s = np.concatenate([np.arange(0x3F800000, 0x3F800000 + 2000, dtype=np.uint32),
                        np.arange(0x00000001, 0x00000400, dtype=np.uint32)])
    for k in (3, 5, 7, -3, 11):
        kk = np.full(s.size, k, dtype=np.int64)
        with np.errstate(all="ignore"):
            want = np.float32(k) * s.view(np.float32)
        _same_bits(fmx.f32_scale_int(kk, s.view(np.int32), NP), want)


@pytest.mark.parametrize("element,big", [("mxfp8_e4m3", 500.0), ("mxfp8_e5m2", 65000.0), ("mxfp6_e3m2", 31.0),
                                         ("mxfp4", 7.5)])
def test_elements_above_the_largest_saturate(element, big):
    """floor scale: amax / X can exceed the element's largest value; the table path saturates like the exact model."""
    x = np.array([[big, -big, 1.0, 0.0], [big * 2 ** -20, 3.0 * 2 ** -20, 0, 0]], np.float32)
    for rounding in ("rne", "rna", "rtz", "rup", "rdn"):
        es, ec = _exact(x, element, "floor", rounding)
        s, c = fmx.mx_quantize(x, element, block=4, rounding=rounding)
        assert s[:, 0].tolist() == es.tolist() and c.tolist() == ec.tolist(), rounding


def test_zero_elements_under_directed_rounding():
    x = np.array([[0.0, 1.0, -0.0, 2.0 ** -30], [0.0, 0.0, 0.0, 0.0]], np.float32)
    for element in ("mxfp4", "mxfp8_e4m3"):
        for rounding in emx.ELEMENT_ROUNDING:
            es, ec = _exact(x, element, "floor", rounding)
            s, c = fmx.mx_quantize(x, element, block=4, rounding=rounding)
            assert s[:, 0].tolist() == es.tolist() and c.tolist() == ec.tolist(), (element, rounding)


def test_dequantize_three_dimensions():
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((2, 3, 40)) * 4).astype(np.float32)
    s, c = fmx.mx_quantize(x, "mxfp8_e4m3", axis=-1)
    assert s.shape == (2, 3, 2)
    got = fmx.mx_dequantize(s, c, "mxfp8_e4m3")
    for i in range(2):
        for j in range(3):
            blocks = [emx.MXBlock(int(s[i, j, k]), tuple(int(v) for v in c[i, j, 32 * k:32 * k + 32]))
                      for k in range(2)]
            want = [float(v.mag) * (-1 if v.sign else 1) for b in blocks
                    for v in emx.dequantize_block(b, "mxfp8_e4m3")]
            assert got[i, j].tolist() == want
    s1, c1 = fmx.mx_quantize(np.moveaxis(x, -1, 1).copy(), "mxfp8_e4m3", axis=1)
    assert np.array_equal(np.moveaxis(fmx.mx_dequantize(s1, c1, "mxfp8_e4m3", axis=1), 1, -1), got)
