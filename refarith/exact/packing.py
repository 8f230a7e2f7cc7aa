"""Bit packing of w-bit codes (w = 2..7, and 8 as the identity) into bytes, exactly.

Layouts (named by ``order``):

* ``lsb`` (default): a little-endian bit stream.  Code i occupies stream bits
  i*w .. i*w+w-1, least significant bit first; stream bit j is bit (j mod 8) of
  byte j // 8.  For w = 4 this puts element 0 in the LOW nibble of byte 0, the
  layout of torchao ``pack_uint4`` and PyTorch ``float4_e2m1fn_x2`` (and of
  ModelOpt NVFP4 checkpoints: even column in the low nibble).  For w = 6 four
  codes fill three bytes exactly: byte0 = c0 | c1<<6, byte1 = c1>>2 | c2<<4,
  byte2 = c2>>4 | c3<<2.
* ``msb``: a big-endian bit stream: code i occupies stream bits i*w .. i*w+w-1,
  most significant bit first, and stream bit j is bit 7 - (j mod 8) of byte
  j // 8.  For w = 4, element 0 is the HIGH nibble.

A count that does not fill the last byte is padded with zero bits; unpacking
needs the element count.  (The OCP MX specification does not prescribe a
physical layout; FP6 kernels such as FP6-LLM use their own split 2+4-bit
layouts, which are not modelled here.)
"""

from __future__ import annotations

from refarith.errors import BadValueError, BitPatternError, UnknownModeError

ORDERS = ("lsb", "msb")
WIDTHS = (2, 3, 4, 5, 6, 7, 8)


def _check(width: int, order: str) -> None:
    if width not in WIDTHS:
        raise BadValueError(f"packing width must be one of {WIDTHS}, got {width!r}")
    if order not in ORDERS:
        raise UnknownModeError(f"unknown bit order {order!r}; expected one of {', '.join(ORDERS)}")


def packed_size(count: int, width: int) -> int:
    """Bytes needed for ``count`` codes of ``width`` bits."""
    return -(-count * width // 8)


def pack(codes: list[int], width: int, order: str = "lsb") -> bytes:
    """Pack codes (each 0 <= c < 2^width) into bytes."""
    _check(width, order)
    stream = 0  # stream bit j is bit j of this integer
    nbits = len(codes) * width
    for i, c in enumerate(codes):
        if not isinstance(c, int) or not 0 <= c < (1 << width):
            raise BitPatternError(f"code {c!r} at index {i} does not fit in {width} bits")
        for k in range(width):
            bit = (c >> (k if order == "lsb" else width - 1 - k)) & 1
            stream |= bit << (i * width + k)
    out = bytearray(packed_size(len(codes), width))
    for j in range(nbits):
        if (stream >> j) & 1:
            pos = j % 8 if order == "lsb" else 7 - j % 8
            out[j // 8] |= 1 << pos
    return bytes(out)


def unpack(data: bytes, count: int, width: int, order: str = "lsb") -> list[int]:
    """Inverse of :func:`pack`: the first ``count`` codes."""
    _check(width, order)
    if count < 0 or packed_size(count, width) > len(data):
        raise BadValueError(f"{len(data)} bytes cannot hold {count} codes of {width} bits")
    out = []
    for i in range(count):
        c = 0
        for k in range(width):
            j = i * width + k
            pos = j % 8 if order == "lsb" else 7 - j % 8
            bit = (data[j // 8] >> pos) & 1
            c |= bit << (k if order == "lsb" else width - 1 - k)
        out.append(c)
    return out
