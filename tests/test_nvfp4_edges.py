"""NVFP4 quantize at its edges, numpy (and torch when present): inputs with no elements, as the exact model's
quantize_blocks of no blocks, and a per-tensor scale that is not a binary32 value, refused."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError
from refarith.exact import nvfp4 as E
from refarith.fast import nvfp4 as F

SHAPES = [((0, 16), "1x16", (0, 1)), ((3, 0), "1x16", (3, 0)), ((2, 0, 17), "1x16", (2, 0, 2)),
          ((0, 20), "16x16", (0, 2)), ((4, 0, 5), "16x16", (4, 0, 1)), ((17, 0), "16x16", (2, 0))]


def _backends():
    out = ["numpy"]
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        out.append("torch")
    return out


def _array(shape, backend):
    if backend == "numpy":
        return np.zeros(shape, np.float32)
    import torch

    return torch.zeros(shape, dtype=torch.float32)


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("shape,tile,sshape", SHAPES)
@pytest.mark.parametrize("levels,global_scale", [(1, "decode"), (2, "decode"), (2, "reciprocal")])
def test_empty_input_is_no_blocks(backend, shape, tile, sshape, levels, global_scale):
    st, s, c = F.nvfp4_quantize(_array(shape, backend), levels=levels, tile=tile, global_scale=global_scale,
                                backend=backend)
    want = E.quantize_blocks([], levels=levels, global_scale=global_scale)
    if levels == 1:
        assert st is None
    else:  # the exact model's tensor scale (bits) of no blocks
        assert int(np.float32(float(st)).view(np.uint32)) == want.tensor_scale == 0x3F800000
    assert tuple(s.shape) == sshape and tuple(c.shape) == shape
    assert str(s.dtype).endswith("uint8") and str(c.dtype).endswith("uint8")
    assert want.scales == () and want.codes == ()


@pytest.mark.parametrize("backend", _backends())
def test_tensor_scale_must_be_a_binary32_value(backend):
    x = _array((1, 16), backend) + 1
    for bad in (0.1, 1 + 2.0 ** -30, 2.0 ** -150 * 3, 0.0, -0.5, float("inf"), float("nan")):
        with pytest.raises(BadValueError, match=r"must be a positive finite binary32 value$"):
            F.nvfp4_quantize(x, tensor_scale=bad, backend=backend)
    for good in (float(np.float32(0.1)), 0.5, 2.0 ** -149, float(np.finfo(np.float32).max)):
        assert float(F.nvfp4_quantize(x, tensor_scale=good, backend=backend)[0]) == good


def test_sixteen_by_sixteen_tiles_need_two_axes():
    with pytest.raises(BadValueError, match=r"^tile=16x16 needs an array with at least two dimensions$"):
        F.nvfp4_quantize(np.zeros(16, np.float32), tile="16x16")
