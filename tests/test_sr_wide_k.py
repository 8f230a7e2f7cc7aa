"""Stochastic casts with more than 31 random bits: the binary32 table path reads at most 31 fraction bits, so a
larger k must run the bit kernel on 64-bit words (before, k = 40 sent 2^-133 to the smallest E4M3 subnormal with
probability ~1 instead of ~2^-124), and the random-integer operand r:uint<k> exists for every k up to 64.

Expected codes: worked by hand from the rule of variant a (round up iff floor(frac * 2^k) + r >= 2^k, frac the
fraction of an ulp below the kept bits) and, for random inputs, the exact model."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from refarith.errors import BadValueError
from refarith.exact import ops
from refarith.fast.cast import encode
from refarith.formats import get_format

K = 40
# (binary32 bits, r, expected E4M3 code)
HAND = [
    (0x00010000, (1 << K) - 1, 0x00),  # 2^-133: floor(2^-124 * 2^40) = 0, so r < 2^40 never rounds up
    (0x3F880000, (1 << (K - 1)) - 1, 0x38),  # 1 + 2^-4, half an ulp above 1: 2^39 + r < 2^40 -> 1.0
    (0x3F880000, 1 << (K - 1), 0x39),  # 2^39 + 2^39 = 2^40 -> 1.125
    (0x3F800001, (1 << K) - (1 << 19), 0x39),  # 1 + 2^-23, 2^-20 ulp above 1: 2^20 + 2^40 - 2^19 >= 2^40 -> up
]


def _backends():
    try:
        found = importlib.util.find_spec("torch")
    except ImportError:  # REFARITH_NO_TORCH=1 (tests/conftest.py)
        found = None
    return ["numpy"] + (["torch"] if found else [])


@pytest.mark.parametrize("backend", _backends())
def test_hand_worked_k40(backend):
    bits = np.array([h[0] for h in HAND], dtype=np.uint32)
    r = np.array([h[1] for h in HAND], dtype=np.uint64)
    got = encode(bits.view(np.float32), "ocp_e4m3", "sr", rand=r, rand_bits=K, backend=backend)
    assert [int(c) for c in np.asarray(got)] == [h[2] for h in HAND]


@pytest.mark.parametrize("k,variant", [(33, "a"), (40, "c"), (62, "a"), (48, "b")])
def test_random_inputs_equal_exact_model(k, variant):
    rng = np.random.default_rng(k)
    # small magnitudes, E4M3's subnormals and its normal range, and binary32 subnormals
    bits = np.concatenate([rng.integers(0, 1 << 24, 40), rng.integers(0x3A000000, 0x43E00000, 80),
                           rng.integers(0x80000000, 0x80800000, 20)]).astype(np.uint32)
    r = rng.integers(0, 1 << k, bits.size, dtype=np.uint64)
    want = [ops.cast(int(b), "binary32", "ocp_e4m3", "sr", rand=int(rr), rand_bits=k, sr_variant=variant).code
            for b, rr in zip(bits, r)]
    for backend in _backends():
        got = encode(bits.view(np.float32), "ocp_e4m3", "sr", rand=r, rand_bits=k, sr_variant=variant,
                     backend=backend)
        assert [int(c) for c in np.asarray(got)] == want, backend


def test_uint_operands_of_every_width_and_the_word_limit():
    assert [get_format(f"uint{n}").nbits for n in (33, 45, 63, 64)] == [33, 45, 63, 64]
    with pytest.raises(BadValueError, match="does not fit 64-bit words"):
        encode(np.ones(1, np.float32), "ocp_e4m3", "sr", rand=np.zeros(1, np.uint64), rand_bits=63)
