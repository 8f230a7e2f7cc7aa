"""fast/nvfp4_recipe.py (numpy path) against refarith.exact.nvfp4_recipe with torch absent: the stochastic
rounding parameters (k and the variant) and the NVFP4 keyword arguments reach the kernel for every kind of role,
the default random bits are the recipe's, and the refusals carry their texts."""

from __future__ import annotations

import re

import numpy as np
import pytest

from refarith.errors import UnknownModeError
from refarith.exact import nvfp4 as nv
from refarith.exact import nvfp4_recipe as erec
from refarith.fast import nvfp4_recipe as frec


def _same(x: np.ndarray, role: str, rand=None, **kw) -> None:
    q = erec.quantize_role(x.view(np.uint32).astype(np.int64).tolist(), role,
                           None if rand is None else rand.tolist(), **kw)
    st, s, c = frec.quantize_role(x, role, rand, **kw)
    assert (st is None and q.tensor_scale is None) or int(np.float32(st).view(np.uint32)) == q.tensor_scale
    assert np.asarray(s).reshape(-1).tolist() == list(q.scales)
    tile = "16x16" if role == "weight" else "1x16"
    assert [tuple(b) for b in nv.tiles(np.asarray(c).astype(np.uint32).tolist(), tile)] == list(q.codes)


def _x(shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * np.exp2(rng.integers(-6, 6, shape))).astype(np.float32)


@pytest.mark.parametrize("role", ["gradient", "wgrad_gradient"])
def test_sr_parameters_reach_the_kernel(role):
    x = _x((16, 16) if role == "wgrad_gradient" else (16, 32), 3)
    rng = np.random.default_rng(4)
    for variant, k in (("a", 5), ("c", 6), ("b", 3)):
        rand = rng.integers(0, 1 << k, x.shape)
        _same(x, role, rand, rand_bits=k, sr_variant=variant)
    # the defaults are the recipe's (te_e2m1_8, k = 8): all-ones random bytes differ from all-zero ones
    for r in (np.zeros(x.shape, np.int64), np.full(x.shape, 255)):
        _same(x, role, r)
    a = frec.quantize_role(x, role, np.zeros(x.shape, np.int64))[2]
    b = frec.quantize_role(x, role, np.full(x.shape, 255))[2]
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("role", ["weight", "activation", "wgrad_activation", "gradient"])
def test_nvfp4_keywords_reach_the_kernel(role):
    x = _x((16, 16) if role.startswith("wgrad") else (16, 32), 5)  # the exact rotation is the slow part
    x[0, :16] = 0.0  # an all-zero block: zero_scale decides its scale
    rand = np.random.default_rng(6).integers(0, 256, x.shape) if role == "gradient" else None
    sets = ({"division": "divide", "levels": 1, "zero_scale": "zero"}, {"global_scale": "reciprocal"}, {"levels": 1})
    for kw in sets[:1] if role.startswith("wgrad") else sets:
        _same(x, role, rand, **kw)


def test_refusals():
    x = np.zeros((1, 16), np.float32)
    with pytest.raises(UnknownModeError, match="^" + re.escape(
            "unknown rht format 'float16'; expected one of binary32, bfloat16") + "$"):
        frec.quantize_role(x, "wgrad_activation", rht="float16")
    with pytest.raises(UnknownModeError, match="^" + re.escape(
            "rht=bfloat16 applies to the rotated roles only, not activation") + "$"):
        frec.quantize_role(x, "activation", rht="bfloat16")
    with pytest.raises(UnknownModeError, match="unknown NVFP4 recipe role 'bias'"):
        frec.quantize_role(x, "bias")
