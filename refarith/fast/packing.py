"""Bit packing of w-bit codes into bytes with numpy; same bytes as :mod:`refarith.exact.packing`."""

from __future__ import annotations

import numpy as np

from refarith.errors import BadValueError, BitPatternError
from refarith.exact.packing import _check, packed_size


def pack(codes, width: int, order: str = "lsb") -> np.ndarray:
    """uint8 array of the packed bit stream of the (flattened) codes."""
    _check(width, order)
    c = np.asarray(codes).reshape(-1)
    if c.size and (c.min() < 0 or c.max() >= (1 << width)):
        raise BitPatternError(f"codes do not fit in {width} bits")
    c = c.astype(np.uint8)
    if width == 4 and c.size % 2 == 0:
        lo, hi = (c[0::2], c[1::2]) if order == "lsb" else (c[1::2], c[0::2])
        return (lo | (hi << 4)).astype(np.uint8)
    shifts = np.arange(width, dtype=np.uint8) if order == "lsb" else np.arange(width - 1, -1, -1, dtype=np.uint8)
    bits = ((c[:, None] >> shifts[None, :]) & 1).astype(np.uint8).reshape(-1)
    return np.packbits(bits, bitorder="little" if order == "lsb" else "big")


def unpack(data, count: int, width: int, order: str = "lsb") -> np.ndarray:
    """uint8 codes: the first ``count`` codes of a packed stream."""
    _check(width, order)
    d = np.asarray(data, dtype=np.uint8).reshape(-1)
    if count < 0 or packed_size(count, width) > d.size:
        raise BadValueError(f"{d.size} bytes cannot hold {count} codes of {width} bits")
    if width == 4 and count % 2 == 0:
        d = d[:count // 2]
        lo, hi = d & 0xF, d >> 4
        out = np.empty(count, np.uint8)
        out[0::2], out[1::2] = (lo, hi) if order == "lsb" else (hi, lo)
        return out
    bits = np.unpackbits(d, bitorder="little" if order == "lsb" else "big")[:count * width].reshape(count, width)
    shifts = np.arange(width, dtype=np.uint8) if order == "lsb" else np.arange(width - 1, -1, -1, dtype=np.uint8)
    return (bits << shifts[None, :]).sum(axis=1, dtype=np.uint16).astype(np.uint8)
