"""fast/packing.py against the exact model where the round-trip tests do not look: arrays of more than one
dimension (the codes are flattened, as the docstrings say), Python sequences as input, the uint8 result
dtype of ``unpack`` and the error texts."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError, BitPatternError
from refarith.exact import packing as ep
from refarith.fast import packing as fp


@pytest.mark.parametrize("width", [3, 4])
@pytest.mark.parametrize("order", ep.ORDERS)
def test_pack_flattens_a_matrix_of_codes(width, order):
    codes = [[1, 2, 3], [4, 5, 6]] if width == 3 else [[1, 2], [3, 0xA]]
    flat = [c for row in codes for c in row]
    assert bytes(fp.pack(np.array(codes), width, order)) == ep.pack(flat, width, order)
    assert fp.pack(np.array(codes), width, order).shape == (ep.packed_size(len(flat), width),)


@pytest.mark.parametrize("order", ep.ORDERS)
def test_unpack_reads_a_matrix_of_bytes_in_order(order):
    data = bytes([0x21, 0x43])
    got = fp.unpack(np.frombuffer(data, np.uint8).reshape(2, 1), 4, 4, order)
    assert got.tolist() == ep.unpack(data, 4, 4, order)


@pytest.mark.parametrize("width", [3, 4, 6])
def test_unpack_of_a_list_of_ints_gives_uint8_codes(width):
    codes = [(5 * i + 1) % (1 << width) for i in range(8)]
    data = ep.pack(codes, width)
    for src in (list(data), np.frombuffer(data, np.uint8)):
        got = fp.unpack(src, len(codes), width)
        assert got.dtype == np.uint8
        assert got.tolist() == codes


def test_error_texts():
    with pytest.raises(BitPatternError, match="fit in 2 bits"):
        fp.pack(np.array([4]), 2)
    with pytest.raises(BadValueError) as exact_err:
        ep.unpack(bytes(1), 3, 4)
    with pytest.raises(BadValueError) as fast_err:
        fp.unpack(np.zeros(1, np.uint8), 3, 4)
    assert str(fast_err.value) == str(exact_err.value) == "1 bytes cannot hold 3 codes of 4 bits"
