"""mx_fake_quantize: the binary32 values X * P_i of an MX block (exact model, numpy, torch).

The independent reference recomputes OCP MX v1.0 FLOOR for MXFP4 with ``math.frexp`` (the scale) and ml_dtypes'
float4_e2m1fn cast (the elements, round to nearest even, saturating), in float64, where V / X is exact."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refarith.errors import SpecError
from refarith.exact import mxfake as emf
from refarith.fast.mxfake import mx_fake_quantize
from refarith.golden.drivers import get_driver
from refarith.spec import parse_spec


def _blocks(spec_id: str, step: int) -> np.ndarray:
    sp = parse_spec(spec_id)
    return np.array(get_driver(sp).boundary(sp)[::step], dtype=np.uint32)


def _exact(bits: np.ndarray, element: str, scale: str) -> np.ndarray:
    vals = bits.view(np.float32).astype(np.float64)
    return np.array([emf.fake_quantize_block([float(v) for v in row], element, scale) for row in vals], np.uint32)


def test_mxfp4_floor_equals_an_independent_recomputation():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bits = _blocks("mx_fake_quantize(ocp_e2m1,block=4)", 5)
    x = bits.view(np.float32).astype(np.float64)
    finite = np.isfinite(x).all(axis=1)
    x, bits = x[finite], bits[finite]
    amax = np.abs(x).max(axis=1)
    e = np.array([max(-127, min(127, math.frexp(a)[1] - 1 - 2)) if a > 0 else -127 for a in amax])
    X = np.ldexp(1.0, e)[:, None]
    p = (x / X).astype(ml_dtypes.float4_e2m1fn).astype(np.float64)
    want = (p * X).astype(np.float32)
    got = _exact(bits, "ocp_e2m1", "floor").view(np.float32)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("element, scale", [("ocp_e2m1", "floor"), ("ocp_e4m3", "ceil"), ("int8", "floor")])
def test_numpy_and_torch_equal_the_exact_model(element, scale):
    bits = _blocks(f"mx_fake_quantize({element},block=4,scale={scale})", 12)
    want = _exact(bits, element, scale)
    x = bits.view(np.float32)
    assert np.array_equal(mx_fake_quantize(x, element, block=4, scale=scale).view(np.uint32), want)
    torch = pytest.importorskip("torch")
    y = mx_fake_quantize(torch.from_numpy(x.copy()), element, block=4, scale=scale, backend="torch")
    assert np.array_equal(y.numpy().view(np.uint32), want)


def test_edges_nan_block_signed_zero_and_the_2_pow_128_overflow():
    top = float(np.finfo(np.float32).max)
    assert emf.fake_quantize_block([top, 1.0], "ocp_e4m3", "ceil") == (0x7F800000, 0)  # 2^120 * 256 = 2^128
    assert emf.fake_quantize_block([top, 1.0], "ocp_e4m3", "floor") == (0x7F600000, 0)  # 448 * 2^119
    assert emf.fake_quantize_block([-top], "int8", "floor") == (0xFF800000,)  # -128/64 * 2^127
    assert emf.fake_quantize_block([1.0, float("nan")], "ocp_e2m1") == (0x7FC00000, 0x7FC00000)
    assert emf.fake_quantize_block([-0.0, 1.0], "ocp_e2m1") == (0x80000000, 0x3F800000)
    assert emf.fake_quantize_block([-0.0, 1.0], "int8") == (0, 0x3F800000)
    # 1.9: X = 2^(0 - 2), 7.6 saturates to 6 -> 1.5; 0.3: X = 2^-4, 4.8 -> 4 -> 0.25
    assert emf.fake_quantize([1.9, -1.9, 0.3], "ocp_e2m1", block=2) == [0x3FC00000, 0xBFC00000, 0x3E800000]


def test_spec_grammar():
    want = "mx_fake_quantize(ocp_e2m1,block=32,scale=floor,rounding=rne)"
    assert str(parse_spec("mx_fake_quantize(ocp_e2m1)")) == want
    assert str(emf.mx_fake_spec("mxint8", scale="floor_half")) == \
        "mx_fake_quantize(int8,block=32,scale=floor_half,rounding=rne)"
    with pytest.raises(SpecError, match="not an MX element format"):
        parse_spec("mx_fake_quantize(binary16)")
    with pytest.raises(SpecError):
        parse_spec("mx_fake_quantize(ocp_e2m1,scale=round)")
