"""MX scale rule ``floor_half`` (brevitas' MXINT8): e = floor(log2 amax) - emax_elem - 1, half the OCP floor scale.

Expected exponents come from ``math.frexp`` of the block maximum (an independent exact decomposition of a double),
not from the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refarith.exact import mx as emx
from refarith.fast import mx as fmx
from refarith.spec import parse_spec


def _amaxes() -> list[float]:
    out = []
    for k in range(-149, 128):
        a = np.float32(2.0 ** k)
        for v in (a, np.nextafter(a, np.float32(0)), np.nextafter(a, np.float32(np.inf))):
            if np.isfinite(v) and v > 0:
                out.append(float(v))
    return out


@pytest.mark.parametrize("element, emax", [("mxint8", 0), ("mxfp8_e4m3", 8), ("mxfp4", 2)])
def test_floor_half_scale_is_one_binade_below_floor(element, emax):
    amax = _amaxes()
    x = np.array([[a, -a / 3, 0.0, a / 7] for a in amax], np.float32)
    s, _ = fmx.mx_quantize(x, element, block=4, scale="floor_half")
    for a, code in zip(amax, s[:, 0]):
        fl = math.frexp(a)[1] - 1  # a = m * 2^(fl + 1), 0.5 <= m < 1
        want = max(-127, min(127, fl - emax - 1))
        assert int(code) - 127 == want, (a, int(code))
        assert emx.quantize_block([a], element, "floor_half").scale - 127 == want


def test_floor_half_mxint8_clips_the_block_maximum_and_uses_minus_128():
    """amax 1.9: scale 2^-1, elements 1.9 / 2^-7 = 243.2 -> 127 and -243.2 -> -128 (full int8 range); the values
    127 * 2^-7 = 0.9921875 and -1.0, as brevitas 0.13.4's MXInt8Act returns them."""
    x = np.zeros((1, 32), np.float32)
    x[0, 0], x[0, 1], x[0, 2] = 1.9, -1.9, 0.5
    for backend in ("numpy", "torch"):
        if backend == "torch":
            torch = pytest.importorskip("torch")
            s, c = fmx.mx_quantize(torch.from_numpy(x), "mxint8", scale="floor_half", backend="torch")
            s, c = s.numpy(), c.numpy()
        else:
            s, c = fmx.mx_quantize(x, "mxint8", scale="floor_half")
        assert int(s[0, 0]) == 127 - 1
        assert [int(v) for v in c[0, :3]] == [127, 0x80, 64]
        d = fmx.mx_dequantize(s, c, "mxint8")
        assert d[0, :3].tolist() == [0.9921875, -1.0, 0.5]
    blk = emx.quantize_block([1.9, -1.9, 0.5], "mxint8", "floor_half")
    assert (blk.scale, blk.codes) == (126, (127, 0x80, 64))


@pytest.mark.parametrize("element", ["mxint8", "mxfp4"])
def test_floor_half_random_blocks_equal_the_exact_model(element):
    rng = np.random.default_rng(7)
    e = rng.integers(-150, 128, size=(300, 1)).astype(np.float64)
    with np.errstate(over="ignore"):
        x = (rng.standard_normal((300, 4)) * np.exp2(e)).astype(np.float32)
    x[::17, 1] = np.nan
    x[::23, 2] = -0.0
    want = [emx.quantize_block([float(v) for v in row], element, "floor_half") for row in x]
    s, c = fmx.mx_quantize(x, element, block=4, scale="floor_half")
    assert [int(v) for v in s[:, 0]] == [b.scale for b in want]
    assert [tuple(int(v) for v in row) for row in c] == [b.codes for b in want]
    torch = pytest.importorskip("torch")
    ts, tc = fmx.mx_quantize(torch.from_numpy(x), element, block=4, scale="floor_half", backend="torch")
    assert np.array_equal(ts.numpy(), s) and np.array_equal(tc.numpy(), c)


def test_floor_half_spec_id():
    sp = parse_spec("mx_quantize(int8,scale=floor_half)")
    assert str(sp) == "mx_quantize(int8,block=32,scale=floor_half,rounding=rne)"
