"""Block floating point with numpy (and torch for quantization); same integers as :mod:`refarith.exact.bfp`.

The shared exponent comes from the binary32 exponent bits (:func:`refarith.fast.mx.floor_log2_f32`), the
mantissas from the exact shift-and-round encoder :func:`refarith.fast.mx.encode_scaled`.
"""

from __future__ import annotations

import numpy as np

from refarith.errors import BadValueError, SpecialValueError, UnknownModeError
from refarith.exact.bfp import ALIGN, ROUNDINGS, _check_p
from refarith.fast.mx import _from_blocks, _normalize_axis, _scales_shape, _to_blocks, encode_scaled, ops, split_f32
from refarith.formats import get_format


def quantize(x, p: int, block: int = 32, rounding: str = "rne", axis: int = -1, backend: str = "numpy", *,
             rand=None, rand_bits: int | None = None, sr_variant: str = "a"):
    """(shared exponents int32 per block, mantissas int32 shaped like x; ``backend`` numpy, torch or triton).
    ``rounding="sr"``: mantissa i rounded
    stochastically with ``rand[i]`` (``rand`` of the shape of ``x``, k = ``rand_bits``, rule ``sr_variant``), as
    :func:`refarith.exact.bfp.quantize_block` rounds it."""
    if backend == "triton":  # the graph traced from quantize_blocks (torch tensors in and out)
        from refarith.fast.triton_blocks import bfp_quantize

        return bfp_quantize(x, p, block, rounding, axis, rand=rand, rand_bits=rand_bits, sr_variant=sr_variant)
    _check_p(p)
    if rounding != "sr" and rounding not in ROUNDINGS:
        raise UnknownModeError(f"unknown rounding {rounding!r}; expected one of {', '.join(ROUNDINGS + ('sr',))}")
    if rounding != "sr" and rand is not None:
        raise UnknownModeError(f"rand is given but rounding={rounding!r} is not stochastic (rounding='sr')")
    if not isinstance(block, int) or block < 1:
        raise BadValueError(f"block size must be a positive integer, got {block!r}")
    xp = ops(backend)
    axis = _normalize_axis(axis, len(x.shape))
    blocks, shape = _to_blocks(x, axis, block, xp)
    bits = xp.i32(blocks)
    mag = bits & 0x7FFFFFFF
    if xp.anyof(mag >= 0x7F800000):
        raise SpecialValueError("BFP quantization: NaN and infinity have no fixed-point code")
    sr = None
    if rounding == "sr":
        from refarith.fast.blocksr import random_bits

        r = random_bits(rand, tuple(x.shape), rand_bits, sr_variant, f"int{p}_sym", xp, bits)
        sr = (_to_blocks(r, axis, block, xp, dtype="int64")[0], rand_bits, sr_variant)
    e, m = quantize_blocks(bits, p, rounding, xp, sr)
    return _scales_shape(e, shape, axis, xp), _from_blocks(m, shape, axis, xp)


def quantize_blocks(bits, p: int, rounding: str, xp, sr=None):
    """(shared exponents, mantissas) of finite binary32 bits (int32, blocks along the last axis): the block's
    exponent floor(log2 amax) - (P - 2) (0 - (P - 2) for an all-zero block), every mantissa rounded by
    :func:`refarith.fast.mx.encode_scaled` onto int<P>_sym; ``sr`` = (r, k, variant) for ``rounding="sr"``, r
    int64 of the shape of the bits.  Branch-free (the Triton kernel is traced from it)."""
    mag = bits & 0x7FFFFFFF
    amax = xp.amax(mag, -1)
    _, ef, n = split_f32(amax, xp)
    e = xp.where(n == 0, 0, ef - 127) - (p - 2)
    sign, efe, ne = split_f32(bits, xp)
    c = encode_scaled(sign, efe, ne, e[..., None], get_format(f"int{p}_sym"), rounding, xp, sr=sr)
    return e, xp.where(c >= (1 << (p - 1)), c - (1 << p), c)


def mul(ma, ea, mb, eb):
    """Elementwise products of two quantized blocks (mantissas int64, exponents add)."""
    return np.asarray(ma, np.int64) * np.asarray(mb, np.int64), np.asarray(ea) + np.asarray(eb)


def add(ma, ea, mb, eb, align: str = "floor"):
    """Elementwise sums of two quantized blocks with per-element exponents (broadcast): align by shifts."""
    if align not in ALIGN:
        raise UnknownModeError(f"unknown alignment {align!r}; expected one of {', '.join(ALIGN)}")
    ma, mb = np.asarray(ma, np.int64), np.asarray(mb, np.int64)
    ea, eb = np.broadcast_arrays(np.asarray(ea, np.int64), np.asarray(eb, np.int64))
    swap = ea < eb
    hi_m, lo_m = np.where(swap, mb, ma), np.where(swap, ma, mb)
    e = np.maximum(ea, eb)
    gap = np.abs(ea - eb)
    d = np.minimum(gap, 63)  # an int64 shifted right by 63 or more is 0 or -1: the floor of m / 2^gap
    q = lo_m >> d
    if align == "rne":
        r = lo_m - (q << d)  # in [0, 2^63): q << 63 is -2^63 when q = -1
        half = np.where(d > 0, np.int64(1) << np.maximum(d - 1, 0), 0)
        q = q + ((d > 0) & ((r > half) | ((r == half) & ((q & 1) == 1))))
        q = np.where(gap > 63, 0, q)  # |m| <= 2^63 <= 2^(gap - 1): nearest is 0 (-2^63 at gap 64 a tie to even 0)
    return hi_m + q, e
