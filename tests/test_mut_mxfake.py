"""fast/mxfake.py (numpy path) against refarith.exact.mxfake with torch absent: the axis, block, scale and
rounding arguments each reach the kernel, the default block of 32, and the one overflow (|X * P| = 2^128) gives
±inf even where the caller has numpy raise on overflow."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.exact import mxfake as emf
from refarith.fast.mxfake import mx_fake_quantize


def _rows(x: np.ndarray, element: str, block: int, scale: str = "floor", rounding: str = "rne") -> np.ndarray:
    """The exact model along the last axis of a 2-D float32 array."""
    return np.array([emf.fake_quantize([float(v) for v in r], element, block, scale, rounding) for r in x],
                    dtype=np.uint32)


def _data(shape, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * np.exp2(rng.integers(-6, 7, shape))).astype(np.float32)
    x.reshape(-1)[::7] = 0.0
    return x


@pytest.mark.parametrize("rounding", ["rne", "rtz", "rna"])
@pytest.mark.parametrize("element,scale", [("ocp_e2m1", "floor"), ("ocp_e4m3", "ceil"), ("int8", "floor_half")])
def test_axis_block_scale_and_rounding_reach_the_kernel(element, scale, rounding):
    x = _data((6, 8), len(element) + len(rounding))
    got = mx_fake_quantize(x, element, axis=-1, block=4, scale=scale, rounding=rounding)
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), _rows(x, element, 4, scale, rounding))
    got0 = mx_fake_quantize(x, element, axis=0, block=3, scale=scale, rounding=rounding)
    assert np.array_equal(got0.view(np.uint32), _rows(x.T, element, 3, scale, rounding).T)


def test_default_block_is_32():
    x = _data((2, 64), 1)
    x[0, 32] = 300.0  # the first element of the second block of 32: its scale is that block's alone
    x[1, 31] = 300.0  # the last element of the first block
    want = _rows(x, "ocp_e2m1", 32)
    assert np.array_equal(mx_fake_quantize(x, "ocp_e2m1").view(np.uint32), want)
    for other in (31, 33, 64):
        assert not np.array_equal(want, _rows(x, "ocp_e2m1", other)), other


def test_the_2_pow_128_product_is_inf_without_a_floating_point_error():
    top = float(np.finfo(np.float32).max)
    x = np.array([[top, 1.0], [-top, 1.0]], dtype=np.float32)
    with np.errstate(over="raise"):
        got = mx_fake_quantize(x, "ocp_e4m3", block=2, scale="ceil")
    assert got.view(np.uint32).tolist() == [list(emf.fake_quantize_block([top, 1.0], "ocp_e4m3", "ceil")),
                                            list(emf.fake_quantize_block([-top, 1.0], "ocp_e4m3", "ceil"))]
    assert got[0, 0] == np.inf and got[1, 0] == -np.inf
