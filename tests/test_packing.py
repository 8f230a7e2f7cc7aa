"""Bit packing: exact model vs numpy, exhaustive small cases, round trips, peer layouts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from refarith.errors import BadValueError, BitPatternError, UnknownModeError
from refarith.exact import packing as ep
from refarith.fast import packing as fp


@pytest.mark.parametrize("width", [2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("order", ep.ORDERS)
def test_exact_vs_numpy_random_and_round_trip(width, order):
    rng = np.random.default_rng(width * 7 + len(order))
    for n in list(range(0, 20)) + [31, 32, 33, 100]:
        c = rng.integers(0, 1 << width, size=n)
        b = ep.pack([int(v) for v in c], width, order)
        f = fp.pack(c, width, order)
        assert bytes(f) == b and len(b) == ep.packed_size(n, width)
        assert ep.unpack(b, n, width, order) == [int(v) for v in c]
        assert np.array_equal(fp.unpack(f, n, width, order), c.astype(np.uint8))


@pytest.mark.parametrize("width", [2, 3, 4])
def test_every_pair_and_triple_of_codes(width):
    """Every sequence of 3 codes (2^(3w) cases) round-trips and the two implementations agree."""
    for order in ep.ORDERS:
        for c in itertools.product(range(1 << width), repeat=3):
            b = ep.pack(list(c), width, order)
            assert bytes(fp.pack(np.array(c), width, order)) == b
            assert ep.unpack(b, 3, width, order) == list(c)


def test_fp4_nibble_orders():
    assert ep.pack([0x1, 0xA], 4, "lsb") == bytes([0xA1])  # element 0 in the low nibble
    assert ep.pack([0x1, 0xA], 4, "msb") == bytes([0x1A])


def test_fp6_four_codes_in_three_bytes():
    c = [0b000001, 0b000010, 0b000011, 0b111111]
    assert ep.pack(c, 6, "lsb") == bytes([0b10000001, 0b00110000, 0b11111100])
    assert ep.pack(c, 6, "msb") == bytes([0b00000100, 0b00100000, 0b11111111])
    big = np.random.default_rng(0).integers(0, 64, size=4000)
    assert fp.pack(big, 6).size == 3000
    assert np.array_equal(fp.unpack(fp.pack(big, 6), 4000, 6), big)


def test_torchao_pack_uint4_is_lsb():
    pytest.importorskip("torch")
    kernels = pytest.importorskip("torchao.prototype.mx_formats.kernels")
    import torch

    c = np.random.default_rng(1).integers(0, 16, size=64).astype(np.uint8)
    t = kernels.pack_uint4(torch.from_numpy(c.reshape(4, 16))).numpy().reshape(-1)
    assert np.array_equal(t, fp.pack(c, 4, "lsb"))
    assert not np.array_equal(t, fp.pack(c, 4, "msb"))


def test_bad_input():
    with pytest.raises(BitPatternError):
        ep.pack([16], 4)
    with pytest.raises(BitPatternError):
        fp.pack(np.array([4]), 2)
    with pytest.raises(BadValueError):
        ep.pack([1], 9)
    with pytest.raises(UnknownModeError):
        fp.pack(np.array([1]), 4, "middle")
    with pytest.raises(BadValueError):
        fp.unpack(np.zeros(1, np.uint8), 3, 4)
