"""Bit packing of w-bit codes into bytes with numpy; same bytes as :mod:`refarith.exact.packing`."""

from __future__ import annotations

import numpy as np

from refarith.errors import BadValueError, BitPatternError
from refarith.exact.packing import _check, packed_size

_SHIFTS = np.arange(8, dtype=np.uint8)
"""Bit positions 0..7 as uint8, so that shifting uint8 codes keeps them uint8."""


def _shifts(width: int, order: str) -> np.ndarray:
    """Shift of each bit of a code in stream order: 0, 1, .. (lsb first) or width - 1, .., 0 (msb first)."""
    return _SHIFTS[:width] if order == "lsb" else _SHIFTS[width - 1::-1]


def pack(codes, width: int, order: str = "lsb") -> np.ndarray:
    """uint8 array of the packed bit stream of the (flattened) codes."""
    _check(width, order)
    c = np.asarray(codes).ravel()
    if c.size and (c.min() < 0 or c.max() >= (1 << width)):
        raise BitPatternError(f"codes do not fit in {width} bits")
    c = c.astype(np.uint8)
    if width == 4 and not c.size & 1:
        lo, hi = (c[0::2], c[1::2]) if order == "lsb" else (c[1::2], c[0::2])
        return lo | (hi << 4)
    bits = ((c[:, None] >> _shifts(width, order)[None, :]) & 1).ravel()
    return np.packbits(bits, bitorder="little" if order == "lsb" else "big")


def unpack(data, count: int, width: int, order: str = "lsb") -> np.ndarray:
    """uint8 codes: the first ``count`` codes of a packed stream."""
    _check(width, order)
    d = np.asarray(data, dtype=np.uint8).ravel()
    if count < 0 or packed_size(count, width) > d.size:
        raise BadValueError(f"{d.size} bytes cannot hold {count} codes of {width} bits")
    if width == 4 and not count & 1:
        d = d[:count // 2]
        lo, hi = d & 0xF, d >> 4
        out = np.empty(count, np.uint8)
        out[0::2], out[1::2] = (lo, hi) if order == "lsb" else (hi, lo)
        return out
    bits = np.unpackbits(d, bitorder="little" if order == "lsb" else "big")[:count * width].reshape(count, width)
    return np.bitwise_or.reduce(bits << _shifts(width, order)[None, :], axis=1)  # distinct bits: OR = sum
