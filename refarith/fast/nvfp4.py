"""NVFP4 block quantization, vectorized (numpy and torch); same bits as :mod:`refarith.exact.nvfp4`.

The binary32 operations of the recipe (A/6, b/s_t, 1/S, x*r, x/S, S*s_t) are
single IEEE binary32 operations, which numpy rounds to nearest even exactly as
the exact model's round_value(..., "binary32") does (numpy never flushes
subnormals).  The torch backend computes them with integer operations
(:func:`refarith.fast.mx.f32_div`, :func:`refarith.fast.mx.f32_mul`), except
the element products x*r in blocks where every IEEE 754 multiply gives the same
bits, flush-to-zero and denormals-are-zero included (``divide``: x * fl(1/d),
whose E2M1 code is that of fl(x/d) away from the rounding edges; the elements
near one take the integer f32_div).  Roundings into UE4M3 and
E2M1 are done on the bits (the cast kernel's key tables, or
:func:`refarith.fast.mx.encode_scaled`).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import nvfp4 as _nv
from refarith.fast.mx import (
    _elem_table,
    chunk_elements,
    encode_scaled,
    f32_div,
    f32_mul,
    ops,
    split_f32,
    sticky_key32,
)
from refarith.formats import get_format

_UE4M3 = get_format("ue4m3")
_E2M1 = get_format("ocp_e2m1")


def _lut_ue4m3() -> np.ndarray:
    from refarith.exact.ops import decode

    return np.array([decode(c, _UE4M3).to_float() for c in range(128)], dtype=np.float32)


_UE4M3_LUT = _lut_ue4m3()
_UE4M3_BITS = _UE4M3_LUT.view(np.int32)
_E2M1_LUT = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0.0, -.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float32)


def _blocks(x, tile: str, xp, keep_dtype: bool = False):
    """(rows, nblocks, blocksize) blocks (float32, or the input dtype with ``keep_dtype``), zero padded, and the
    shape to undo it."""
    if xp.name == "numpy":
        a = np.asarray(x) if keep_dtype else np.asarray(x, dtype=np.float32)
    else:
        a = x if keep_dtype else x.to(xp.t.float32)

    def zeros(shape):
        if xp.name == "numpy":
            return np.zeros(shape, a.dtype)
        return xp.t.zeros(shape, dtype=a.dtype, device=a.device)

    shape = tuple(a.shape)  # no zero-size axis (the caller returns before)
    if tile == "1x16":
        n = shape[-1]
        nb = -(-n // 16)
        rows = math.prod(shape[:-1])
        a2 = a.reshape(rows, n)
        if nb * 16 != n:
            z = zeros((rows, nb * 16))
            z[:, :n] = a2
            a2 = z
        return a2.reshape(rows, nb, 16), shape
    if len(shape) < 2:
        raise BadValueError("tile=16x16 needs an array with at least two dimensions")
    r, c = shape[-2], shape[-1]
    rp, cp = -(-r // 16) * 16, -(-c // 16) * 16
    lead = math.prod(shape[:-2])
    a3 = a.reshape(lead, r, c)
    if (rp, cp) != (r, c):
        z = zeros((lead, rp, cp))
        z[:, :r, :c] = a3
        a3 = z
    t = a3.reshape(lead, rp // 16, 16, cp // 16, 16)
    t = t.transpose(0, 1, 3, 2, 4) if xp.name == "numpy" else t.permute(0, 1, 3, 2, 4)
    return t.reshape(lead, (rp // 16) * (cp // 16), 256), shape


def _unblocks(c, shape, tile: str, xp):
    if tile == "1x16":
        n = shape[-1]
        return c.reshape(c.shape[0], c.shape[1] * c.shape[2])[:, :n].reshape(shape)
    r, cc = shape[-2], shape[-1]
    rp, cp = -(-r // 16) * 16, -(-cc // 16) * 16
    t = c.reshape(c.shape[0], rp // 16, cp // 16, 16, 16)
    t = t.transpose(0, 1, 3, 2, 4) if xp.name == "numpy" else t.permute(0, 1, 3, 2, 4)
    return t.reshape(c.shape[0], rp, cp)[:, :r, :cc].reshape(shape)


def _scale_shape(s, shape, tile: str):
    if tile == "1x16":
        return s.reshape(*shape[:-1], s.shape[-1])
    r, cc = shape[-2], shape[-1]
    return s.reshape(*shape[:-2], -(-r // 16), -(-cc // 16))


def _const_bits(v: float, xp, like):
    """int32 bits of the binary32 value v (exact), as a 0-d array / tensor."""
    b = np.array(v, dtype=np.float32).view(np.int32)
    if xp.name == "numpy":
        return b
    return xp.t.tensor(int(b), dtype=xp.t.int32, device=like.device)


def _f32_ops(xp, integer: bool = False):
    """(fdiv, fmul) on binary32 bit patterns (int32): numpy's IEEE float32 operations, or for torch (and numpy
    with ``integer``) the integer-only :func:`refarith.fast.mx.f32_div` / :func:`refarith.fast.mx.f32_mul` (same
    bits)."""
    if xp.name == "numpy" and not integer:
        def fdiv(a, b):
            with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
                return (a.view(np.float32) / b.view(np.float32)).view(np.int32)

        def fmul(a, b):
            with np.errstate(invalid="ignore", over="ignore", under="ignore"):
                return (a.view(np.float32) * b.view(np.float32)).view(np.int32)

        return fdiv, fmul
    return (lambda a, b: f32_div(a, b, xp, True)), (lambda a, b: f32_mul(a, b, xp, True))


def check_nvfp4_args(division: str, levels, zero_scale: str, tile: str, global_scale: str) -> None:
    """UnknownModeError naming a bad NVFP4 division, level count, zero_scale, tile or global_scale."""
    if division not in _nv.DIVISIONS:
        raise UnknownModeError(f"unknown NVFP4 division {division!r}; expected one of {', '.join(_nv.DIVISIONS)}")
    if str(levels) not in _nv.LEVELS:
        raise UnknownModeError(f"NVFP4 levels must be 1 or 2, got {levels!r}")
    if zero_scale not in _nv.ZERO_SCALES:
        raise UnknownModeError(f"unknown zero_scale {zero_scale!r}; expected one of {', '.join(_nv.ZERO_SCALES)}")
    if tile not in _nv.TILES:
        raise UnknownModeError(f"unknown NVFP4 tile {tile!r}; expected one of {', '.join(_nv.TILES)}")
    if global_scale not in _nv.GLOBAL_SCALES:
        raise UnknownModeError(f"unknown NVFP4 global_scale {global_scale!r}; expected one of "
                               f"{', '.join(_nv.GLOBAL_SCALES)}")
    if global_scale == "reciprocal" and str(levels) != "2":
        raise UnknownModeError("NVFP4 global_scale=reciprocal needs levels=2 (one level has no global scale)")


def nvfp4_quantize(x, division: str = "reciprocal", levels: int = 2, zero_scale: str = "eps", tile: str = "1x16",
                   rounding: str = "rne", tensor_scale=None, backend: str = "numpy", global_scale: str = "decode", *,
                   rand=None, rand_bits: int | None = None, sr_variant: str = "a"):
    """(tensor scale binary32 or None, UE4M3 scale codes uint8, E2M1 codes uint8) of a float32 array.
    ``rounding="sr"``: :func:`refarith.fast.blocksr.nvfp4_quantize_sr` with ``rand`` (one integer of ``rand_bits``
    bits per element) and ``sr_variant``; random bits given to another rounding are an error.

    The tensor scale is a numpy float32 scalar (numpy) or a 0-d float32 tensor (torch): s_t, or the encode
    scale g for ``global_scale="reciprocal"`` (:mod:`refarith.exact.nvfp4`).  Blocks are runs of
    16 along the last axis (a shorter last run is its own block) or 16x16 tiles of the last two axes.
    ``backend="triton"`` runs :func:`refarith.fast.triton_blocks.nvfp4_quantize` (torch tensors in and out; the
    same bits).
    """
    if rounding == "sr":
        from refarith.fast.blocksr import nvfp4_quantize_sr

        return nvfp4_quantize_sr(x, rand, rand_bits, sr_variant, division, levels, zero_scale, tile, tensor_scale,
                                 backend, global_scale)
    if rand is not None:
        raise UnknownModeError(f"rand is given but rounding={rounding!r} is not stochastic (rounding='sr')")
    check_nvfp4_args(division, levels, zero_scale, tile, global_scale)
    if rounding not in _nv.ROUNDINGS:
        raise UnknownModeError(f"unknown element rounding {rounding!r}; expected one of {', '.join(_nv.ROUNDINGS)}")
    if backend == "triton":
        from refarith.fast import triton_blocks

        return triton_blocks.nvfp4_quantize(x, division, levels, zero_scale, tile, rounding, tensor_scale,
                                            global_scale)
    xp = ops(backend)
    if len(x.shape) == 0:
        raise BadValueError("nvfp4_quantize needs an array with at least one dimension")
    if tile == "16x16" and len(x.shape) < 2:
        raise BadValueError("tile=16x16 needs an array with at least two dimensions")
    if 0 in tuple(x.shape):
        return _quantize_empty(x, levels, tile, tensor_scale, xp, global_scale)
    blocks, shape = _blocks(x, tile, xp)
    bits = xp.i32(blocks)
    if xp.name == "numpy":
        st, s, codes = _quantize_numpy(bits, division, levels, zero_scale, rounding, tensor_scale, global_scale)
        st_out = None if st is None else np.float32(xp.f32_from_bits(st))
        return st_out, _scale_shape(s, shape, tile), _unblocks(codes, shape, tile, xp)
    st, s, codes = _quantize_torch(bits, division, levels, zero_scale, rounding, tensor_scale, global_scale)
    return (None if st is None else xp.f32_from_bits(st)), _scale_shape(s, shape, tile), \
        _unblocks(codes, shape, tile, xp)


def _quantize_empty(x, levels, tile: str, tensor_scale, xp, global_scale: str):
    """An input with no elements: no blocks, scale and code arrays of the blocked shapes with no entries, and the
    tensor scale of :func:`tensor_scale_bits` with amax 0 (s_t = 1.0; g = 1.0, its fl(2^126 * 2688) overflowing),
    or the given one, checked; as :func:`refarith.exact.nvfp4.quantize_blocks` of no blocks."""
    shape = tuple(x.shape)
    if tile == "1x16":
        sshape = shape[:-1] + (-(-shape[-1] // 16),)
    else:
        sshape = shape[:-2] + (-(-shape[-2] // 16), -(-shape[-1] // 16))
    like = xp.i32(xp.float_bits(x).reshape(-1)[:1]) if xp.name == "torch" else None
    st = None if int(levels) != 2 else \
        _const_bits(1.0, xp, like) if tensor_scale is None else given_scale_bits(tensor_scale, xp, like)
    if xp.name == "numpy":
        return (None if st is None else np.float32(xp.f32_from_bits(st))), np.zeros(sshape, np.uint8), \
            np.zeros(shape, np.uint8)
    t = xp.t
    return (None if st is None else xp.f32_from_bits(st)), t.zeros(sshape, dtype=t.uint8, device=x.device), \
        t.zeros(shape, dtype=t.uint8, device=x.device)


def given_scale_bits(tensor_scale, xp, like):
    """binary32 bits (0-d int32) of a given per-tensor scale, refused unless it is a positive finite binary32
    value (compared in binary64: 0.1 is refused, float(np.float32(0.1)) accepted)."""
    sb = int(np.array(float(tensor_scale), dtype=np.float32).view(np.int32))
    if not (0 < sb < 0x7F800000) or float(np.float32(tensor_scale)) != float(tensor_scale):
        raise BadValueError(f"per-tensor scale {tensor_scale!r} must be a positive finite binary32 value")
    return _const_bits(float(tensor_scale), xp, like)


def tensor_scale_bits(bits, levels, tensor_scale, xp, global_scale: str):
    """binary32 bits of s_t (0-d, int32) for two levels: the given ``tensor_scale`` (checked positive finite
    binary32) or fl(amax / 2688) over the finite elements of ``bits`` (1.0 when that is 0); None for one level.
    ``global_scale="reciprocal"``: g = fl(fl(1 / max(amax, 2^-126)) * 2688) instead (1.0 where that overflows)."""
    if int(levels) != 2:
        return None
    if tensor_scale is not None:
        return given_scale_bits(tensor_scale, xp, bits)
    mag = bits & 0x7FFFFFFF
    at = mag.max()
    if int(at) >= 0x7F800000:  # infinities and NaNs do not count
        at = xp.where(mag >= 0x7F800000, 0, mag).max()
    return tensor_scale_from_amax(at, xp, global_scale)


def tensor_scale_from_amax(at, xp, global_scale: str, integer: bool = False):
    """s_t = fl(A / 2688), 1.0 where that is 0, from the bits ``at`` of the largest finite magnitude A (int32);
    ``global_scale="reciprocal"``: g = fl(fl(1 / max(A, 2^-126)) * 2688) (torch's ``2688 / t``), 1.0 where that
    overflows.  Branch-free: the
    Triton backend traces it (:func:`refarith.fast.triton_blocks.nvfp4_quantize_graph`).  ``integer``: numpy
    with integer operations only (:func:`_f32_ops`)."""
    fdiv, fmul = _f32_ops(xp, integer)
    one, c2688 = _const_bits(1.0, xp, at), _const_bits(2688.0, xp, at)
    if global_scale == "reciprocal":
        g = fmul(fdiv(one, xp.maximum(at, _nv.F32_TINY)), c2688)
        return xp.where(g >= 0x7F800000, one, g)
    st = fdiv(at, c2688)
    return xp.where(st == 0, one, st)


def _per_code(st, division: str, global_scale: str, xp, like, integer: bool = False):
    """Per UE4M3 scale code S (128 entries, binary32 bits): the block divisor fl(S * s_t) (``divide``; S / g with
    ``global_scale="reciprocal"``, S with one level) or the multiplier fl(fl(1 / s_t) / S) (``reciprocal``; g / S,
    1 / S): it depends on the scale code only, so blocks gather it.  ``integer``: as in :func:`_f32_ops`."""
    fdiv, fmul = _f32_ops(xp, integer)
    recip = global_scale == "reciprocal" and st is not None  # st holds g: S / g, g / S
    s32 = _UE4M3_BITS if xp.name == "numpy" else xp.t.as_tensor(_UE4M3_BITS, device=like.device)
    if division == "divide":
        return s32 if st is None else (fdiv(s32, st) if recip else fmul(s32, st))
    one = _const_bits(1.0, xp, like)
    return fdiv(one, s32) if st is None else (fdiv(st, s32) if recip else fdiv(fdiv(one, st), s32))


def _ue4m3_key_table() -> np.ndarray:
    """UE4M3 codes (int32) of round_value(key representative, ue4m3, "rne", "saturate") per binary32 sticky key
    (:func:`refarith.fast.cast.key_table`, built by the proved cast kernel)."""
    from refarith.exact.rounding import default_negative
    from refarith.fast.cast import key_table

    return key_table(_UE4M3, "rne", "saturate", "zero", default_negative(_UE4M3))[0]


def _block_scales(amax, st, zero_scale: str, xp, global_scale: str, like=None, integer: bool = False):
    """(UE4M3 scale codes, special) of blocks with largest magnitude bits ``amax`` (int32): the code of
    fl(fl(amax / 6) / s_t) (``global_scale="reciprocal"``: fl(fl(amax / 6) * g); one level: fl(amax / 6)), at least
    2^-6 with ``zero_scale="eps"``, rounded to nearest even and saturating; ``special`` marks blocks holding an
    infinity or NaN (their amax counts as 0 here; the caller overwrites their codes).  ``integer``: as in
    :func:`_f32_ops`."""
    fdiv, fmul = _f32_ops(xp, integer)
    recip = global_scale == "reciprocal" and st is not None  # st holds g: b * g
    special = amax >= 0x7F800000
    amax = xp.where(special, 0, amax)
    b = fdiv(amax, _const_bits(6.0, xp, like))
    if st is not None:
        b = fmul(b, st) if recip else fdiv(b, st)
    if zero_scale == "eps":
        b = xp.maximum(b, 0x3C800000)  # 2^-6; positive binary32 values are ordered as their bit patterns
    if xp.name == "numpy":  # the UE4M3 code of b >= 0 (inf saturates) by one gather from the cast kernel's key table
        s = np.take(_ue4m3_key_table(), sticky_key32(b), mode="clip")
    else:
        bs, be, bn = split_f32(b, xp)
        s = encode_scaled(bs, be, bn, 0, _UE4M3, "rne", xp)
    if zero_scale == "eighth":
        s = xp.where(s == 0, _nv.UE4M3_EIGHTH, s)
    return s, special


NUMPY_CHUNK = 1 << 15  # elements per pass of the numpy element stage: its two int32 buffers stay in L2 cache


def _amax_pairs(mag, out, tmp) -> None:
    """``out`` = the largest value of each block (the last axis, a power of two long) of ``mag`` (int32, 2-d):
    maxima of neighbouring pairs, halving the width each time (strided pairs vectorize where a running maximum
    over 16 strided columns does not: about half the time).  ``tmp``: a buffer of ``mag.size`` int32, whose
    successive halves, quarters, ... hold the levels (no level overlaps the one it reads)."""
    v, width, at = mag.reshape(mag.size // 2, 2), mag.shape[-1], 0
    while width > 2:
        level = tmp[at:at + v.shape[0]]
        np.maximum(v[:, 0], v[:, 1], out=level)
        at += v.shape[0]
        v, width = level.reshape(level.size // 2, 2), width // 2
    np.maximum(v[:, 0], v[:, 1], out=out)


def _quantize_numpy(bits, division: str, levels, zero_scale: str, rounding: str, tensor_scale, global_scale: str):
    """(s_t bits or None, UE4M3 scale codes (rows, nb) uint8, E2M1 codes (rows, nb, bs) uint8) of the numpy
    backend: the operations of :func:`_quantize_chunk` in three stages with the same bits.  (1) Block maxima,
    NUMPY_CHUNK elements at a time (:func:`_amax_pairs`); :func:`tensor_scale_bits` of the block maxima (the
    tensor's largest finite magnitude is the largest of them) when no block holds an infinity or NaN, else of the
    elements.
    (2) :func:`_block_scales` and the per-code divisor or multiplier, on all blocks at once.  (3) fl(x * r) or
    fl(x / d) into a reused buffer, its sticky key in place and the E2M1 gather straight into the result, chunk by
    chunk; then the zero-scale and special blocks are overwritten as in :func:`_quantize_chunk`."""
    xp = ops("numpy")
    rows, nb, bs = bits.shape
    total = rows * nb
    flat = bits.reshape(total, bs)
    step = max(1, NUMPY_CHUNK // bs)
    amax = np.empty(total, np.int32)
    mag = np.empty((min(step, total), bs), np.int32)
    tmp = np.empty(mag.size, np.int32)
    for i in range(0, total, step):
        m = mag[:min(step, total - i)]
        np.bitwise_and(flat[i:i + step], 0x7FFFFFFF, out=m)
        _amax_pairs(m, amax[i:i + step], tmp)
    # s_t from the block maxima, or from the elements where a block holds an infinity or NaN (its maximum then
    # hides the block's finite elements)
    st = tensor_scale_bits(bits if int(amax.max()) >= 0x7F800000 else amax, levels, tensor_scale, xp, global_scale)
    s, special = _block_scales(amax, st, zero_scale, xp, global_scale, bits)
    pc = np.take(_per_code(st, division, global_scale, xp, bits), s).view(np.float32)
    table = _elem_table(_E2M1, rounding, xp, bits)
    codes = np.empty((total, bs), np.uint8)
    y = mag.view(np.float32)  # mag's buffer is free again
    key = tmp.reshape(mag.shape)
    xf = flat.view(np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        for i in range(0, total, step):
            n = min(step, total - i)
            yc, kc = y[:n], key[:n]
            if division == "divide":
                np.divide(xf[i:i + n], pc[i:i + n, None], out=yc)
            else:
                np.multiply(xf[i:i + n], pc[i:i + n, None], out=yc)
            yi = yc.view(np.int32)
            np.bitwise_and(yi, 0x7FFF, out=kc)  # the sticky key of sticky_key32, in place, shifted logically
            kc += 0x7FFF
            kc |= yi
            np.right_shift(kc.view(np.uint32), 15, out=kc.view(np.uint32))
            np.take(table, kc, out=codes[i:i + n], mode="clip")
    zero = np.flatnonzero(s == 0)
    if zero.size:
        codes[zero] = (((flat[zero] >> 31) & 1) << 3).astype(np.uint8)  # zero scale: signed zero codes
    if special.any():
        codes[special] = 0
        s = np.where(special, _nv.UE4M3_NAN, s)
    return st, s.astype(np.uint8).reshape(rows, nb), codes.reshape(rows, nb, bs)


F32_MAX_FINITE = 0x7F7FFFFF
_NO_CODE = 0x7F800000  # threshold of a scale code no finite magnitude reaches: above every finite pattern
# the value halfway between UE4M3 codes c - 1 and c (c = 1 .. 126): the start of code c's rounding interval
_UE4M3_MIDS = (_UE4M3_LUT[:-2].astype(np.float64) + _UE4M3_LUT[1:-1].astype(np.float64)) / 2


def _code_thresholds(code_of, guess, width: int = 4) -> np.ndarray:
    """T (int32, one entry per scale code c = 1 .. 126): the smallest finite non-negative binary32 pattern A with
    ``code_of(A) >= c`` (0x7F800000 where no finite A reaches c), for a nondecreasing ``code_of`` (int32
    patterns, numpy, to codes in 0 .. 126).  Then code_of(A) = #{c : T[c] <= A} for every finite A >= 0.

    ``guess`` (int32, per c) only steers the search: code_of is evaluated once on the ``width`` patterns either
    side of each guess, and where that window does not hold the step (code_of below c at its start, at least c
    at its end), a binary search over all finite patterns decides it.  The result never depends on the guess."""
    c = np.arange(1, 127)
    win = np.clip(guess.astype(np.int64)[:, None] + np.arange(-width, width + 1), 0, F32_MAX_FINITE)
    f = code_of(np.concatenate([win.ravel(), [0, F32_MAX_FINITE]]).astype(np.int32)).astype(np.int64)
    f_lo, f_hi, f = f[-2], f[-1], f[:-2].reshape(win.shape)
    t = np.where(c <= f_lo, 0, _NO_CODE).astype(np.int64)
    inner = (c > f_lo) & (c <= f_hi)
    held = inner & (f[:, 0] < c) & (f[:, -1] >= c)
    t[held] = win[held, np.argmax(f[held] >= c[held, None], axis=1)]
    miss = np.flatnonzero(inner & ~held)
    if miss.size:  # code_of(lo) < c <= code_of(hi) throughout
        lo, hi = np.zeros_like(miss), np.full_like(miss, F32_MAX_FINITE)
        while (hi - lo > 1).any():
            mid = (lo + hi) // 2
            up = code_of(mid.astype(np.int32)).astype(np.int64) >= c[miss]
            hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
        t[miss] = hi
    return t.astype(np.int32)


def _scale_thresholds(st, zero_scale: str, global_scale: str) -> np.ndarray:
    """The :func:`_code_thresholds` (numpy int32) of the block scale code of :func:`_block_scales` (before the
    ``eighth`` replacement) as a function of the block's largest magnitude, for s_t (or g) bits ``st`` (a numpy
    int32 scalar, or None for one level).

    That function is nondecreasing: fl(A / 6), fl(b / s_t), fl(b * g) (s_t, g > 0), the 2^-6 floor and the
    rounding into UE4M3 (rne, saturating) each are.  It is evaluated by :func:`_block_scales` itself in numpy with
    integer operations only; the guesses are fl(6 * m * s_t) (fl(6 * m / g), fl(6 * m)) for the start m of each
    code's rounding interval, in float64, which only steers the search."""
    zs = "eps" if zero_scale == "eps" else "zero"
    xp = ops("numpy")

    def code_of(a: np.ndarray) -> np.ndarray:
        return _block_scales(a, st, zs, xp, global_scale, integer=True)[0]

    factor = 6.0
    if st is not None:
        sv = float(np.asarray(st, np.int32).view(np.float32))
        factor = 6.0 / sv if global_scale == "reciprocal" else 6.0 * sv
    with np.errstate(over="ignore"):
        guess = np.minimum(np.float32(_UE4M3_MIDS * factor).view(np.int32), F32_MAX_FINITE)
    return _code_thresholds(code_of, guess)


BUCKET_SHIFT = 17  # step_codes' buckets: a binary32 magnitude's exponent field and top 6 fraction bits
STEP_COMPARES = 4  # at most this many thresholds in one bucket for the bucket lookup, else searchsorted


def step_codes(thresholds: np.ndarray, a, xp):
    """#{c : thresholds[c] <= a} (int32) for non-negative int32 ``a`` (torch) and nondecreasing non-negative
    int32 ``thresholds``: for the :func:`_code_thresholds` of a nondecreasing step function, its code at every
    finite non-negative binary32 pattern a.  Integer operations only: the thresholds up to the start of a's
    bucket (a >> BUCKET_SHIFT) are counted in advance, so a is compared only with the ones inside its bucket, at
    most STEP_COMPARES of them (else ``searchsorted``), each comparison as the sign of threshold - 1 - a."""
    t = xp.t
    dev = a.device
    starts = np.arange((0x7FFFFFFF >> BUCKET_SHIFT) + 1, dtype=np.int64) << BUCKET_SHIFT
    base = np.searchsorted(thresholds, starts, side="right")  # thresholds <= the bucket's first pattern
    k = int((np.searchsorted(thresholds, starts + (1 << BUCKET_SHIFT) - 1, side="right") - base).max())
    if k > STEP_COMPARES:
        return t.searchsorted(t.as_tensor(thresholds, device=dev), a, right=True).to(t.int32)
    # beyond a bucket's own thresholds, padded[base + j] lies above every pattern of the bucket
    padded = np.concatenate([thresholds.astype(np.int64), np.full(k, 1 << 31, np.int64)])
    key = t.bitwise_right_shift(a, BUCKET_SHIFT)
    s = t.index_select(t.as_tensor(base.astype(np.int32), device=dev), 0, key)
    for j in range(k):
        d = t.index_select(t.as_tensor((padded[base + j] - 1).astype(np.int32), device=dev), 0, key)
        s.sub_(d.sub_(a).bitwise_right_shift_(31))  # threshold - 1 - a < 0: a reaches the threshold
    return s


TORCH_CPU_CHUNK = 1 << 18  # elements per pass of the torch stages on CPU (their buffers about the L2 cache)


def _product_floor(per_code: np.ndarray, zero_scale: str) -> np.ndarray:
    """Per scale code (int32, 128 entries): the least value of (smallest nonzero magnitude of a block) - 1 (all
    bits of a block of zeros: 0x7FFFFFFF) for which every product fl(x * r) of the block, r = ``per_code[code]``,
    is the same on every IEEE 754 binary32 multiply, flush-to-zero and denormals-are-zero included.

    Sufficient: r normal, every nonzero |x| normal and |x| * r >= 2^-125, i.e. exponent fields E(x) + E(r) >= 129
    (|x| >= 2^(E(x) - 127)), so that no operand or product is subnormal: |x| >= 2^(max(1, 129 - E(r)) - 127).
    Zeros alone give ±0 or, with r infinite, NaN (E2M1 code 0) on every such multiply; code 0 with
    ``zero_scale="zero"`` is overwritten, so any block passes there."""
    e = per_code.astype(np.int64) >> 23
    normal = (per_code >= 0x00800000) & (per_code < 0x7F800000)
    floor = np.where(normal, (np.maximum(1, 129 - e) << 23) - 1, 0x7FFFFFFF)
    if zero_scale == "zero":
        floor[0] = -(1 << 31)
    return floor.astype(np.int32)


WINDOW = 4  # quotient patterns within this many of a multiple of 2^21 are recomputed exactly (the bound is 2)
NEAR_GROUP = 1024  # elements per minimum when the divide kernel looks for them


def _quotient_limit(r: np.ndarray, zero_scale: str) -> np.ndarray:
    """Per scale code (int32, 128 entries), for ``division="divide"`` with the multipliers r = fl(1 / d): blocks
    whose (smallest nonzero magnitude - 1) is at most this value are recomputed.  :func:`_product_floor` - 1 where r
    is normal; every block, blocks of zeros included (±0 * inf is NaN where ±0 / d is ±0), where r is not (d = 0,
    or 1 / d outside the normal range); none for code 0 with ``zero_scale="zero"`` (overwritten)."""
    lim = _product_floor(r, zero_scale).astype(np.int64) - 1
    lim[(r < 0x00800000) | (r >= 0x7F800000)] = 0x7FFFFFFF
    if zero_scale == "zero":
        lim[0] = -1
    return lim.astype(np.int32)


@cache
def bucket_codes(rounding: str) -> np.ndarray:
    """E2M1 codes (uint8, 2048 entries) per bucket h = the top 11 bits of a binary32 pattern (sign included): the
    code every pattern strictly between h * 2^21 and (h + 1) * 2^21 rounds to (round_value(..., ocp_e2m1,
    rounding, "saturate", nan_policy="zero")), read from the proved sticky-key table, which is checked constant
    over those patterns' keys (keys (h << 6) | 1 .. ((h + 1) << 6) - 1).  Every decision point of E2M1 rounding
    (the midpoints 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5 and the E2M1 values for the directed roundings) and the
    zero, infinity and NaN boundaries are multiples of 2^21 as patterns.  Buckets 0 and 1024 (±0 and magnitudes
    below 2^-128) give the codes of +0 and -0: the quantize kernel meets no other pattern there (its products are
    zero or at least 2^-125 outside the blocks it recomputes)."""
    tab = _elem_table(_E2M1, rounding, ops("numpy"), None)
    inner = tab.reshape(2048, 64)[:, 1:]
    if not (inner == inner[:, :1]).all():
        raise AssertionError(f"E2M1 {rounding} codes are not constant between multiples of 2^21")
    out = np.ascontiguousarray(inner[:, 0])
    out[0], out[1024] = tab[0], tab[0x10000]  # buckets 0 hold ±0 and products below 2^-125, never outside redo
    out.setflags(write=False)
    return out


def _near_edges(a, low, size: int, start: int) -> list:
    """Flat positions (``start`` + offset) of the nonzero elements whose pattern y lies within WINDOW of a multiple
    of 2^21, from ``a`` = y + WINDOW (int32, destroyed); ``low`` is a buffer of the same shape.  The nonzero
    elements sit in buckets 1 .. 1023 and 1025 .. 2047 (:func:`bucket_codes`), ±0 in buckets 0 and 1024.  A
    minimum over each group of NEAR_GROUP elements finds the few groups holding any; where most groups hold one
    (zeros, whose offset WINDOW counts as near), the zeros are first lifted out of reach."""
    import torch as t

    t.bitwise_and(a, 0x1FFFFF, out=low)  # the offset in y + WINDOW's bucket: at most 2 * WINDOW near an edge
    g = NEAR_GROUP if size % NEAR_GROUP == 0 else size
    groups = low.view(-1, g)
    hot = t.nonzero(t.amin(groups, 1) <= 2 * WINDOW).reshape(-1)
    lifted = 4 * hot.numel() > groups.shape[0]
    if lifted:  # low += 2^30 where |y + WINDOW| < 2^21 (±0)
        low.bitwise_or_(a.bitwise_and_(0x7FFFFFFF).sub_(1 << 21).bitwise_right_shift_(31).bitwise_and_(1 << 30))
        hot = t.nonzero(t.amin(groups, 1) <= 2 * WINDOW).reshape(-1)
    if not hot.numel():
        return []
    close = groups[hot] <= 2 * WINDOW
    if not lifted:
        close.logical_and_(a.view(-1, g)[hot].bitwise_and_(0x7FFFFFFF) >= 1 << 21)
    at = t.nonzero(close)
    return [at[:, 1].add_(hot[at[:, 0]] * g).add_(start)]


def _quantize_torch(bits, division: str, levels, zero_scale: str, rounding: str, tensor_scale, global_scale: str):
    """(s_t bits or None, UE4M3 scale codes (rows, nb) uint8, E2M1 codes (rows, nb, bs) uint8) of the torch
    backend, the bits of :func:`_quantize_chunk` in three stages (as :func:`_quantize_numpy`), with integer
    operations except the element products below.  (1) Chunk by chunk (TORCH_CPU_CHUNK elements on CPU, else
    :func:`refarith.fast.mx.chunk_elements`), each block's largest magnitude and smallest nonzero one; the
    tensor's largest finite magnitude is the largest block maximum when no block holds an infinity or NaN.  (2)
    The scale codes of all blocks at once: :func:`step_codes` on the 126 thresholds of :func:`_scale_thresholds`
    (the code is a nondecreasing function of the block maximum), then the per-code multiplier or divisor.  (3)
    Chunk by chunk, y = fl(x * r) by torch's float32 multiply; the product is the same on every IEEE 754 multiply
    (flush-to-zero and denormals-are-zero included) in blocks whose elements are zero or normal, r normal and the
    smallest nonzero |x| * r at least 2^-125 (exponent fields summing to at least 129; the products are then
    normal), and blocks outside that are recomputed with the integer :func:`refarith.fast.mx.f32_mul`
    (``divide``: :func:`refarith.fast.mx.f32_div`).  ``reciprocal``: the E2M1 code of y by its sticky key and one
    gather of the uint8 E2M1 table.  ``divide``: r = fl(1 / d) (integer f32_div on the host), and y is within 2
    patterns of q = fl(x / d) (x * r = (x / d)(1 + e), |e| <= 2^-24, is within one unit in the last place of x /
    d, and each rounding moves half of one), so where y's pattern lies more than WINDOW from every multiple of
    2^21, y and q lie strictly between the same two multiples and the E2M1 code of q is that of y's bucket
    (:func:`bucket_codes`: one gather indexed by the top 11 bits of y + WINDOW); the other nonzero elements
    (about 9 in 2^21) are recomputed from q by the integer f32_div.  Zero-scale and special blocks are overwritten
    as in :func:`_quantize_chunk`."""
    xp = ops("torch")
    t = xp.t
    dev = bits.device
    rows, nb, bs = bits.shape
    total = rows * nb
    flat = bits.reshape(total, bs)
    step = max(1, (TORCH_CPU_CHUNK if dev.type == "cpu" else chunk_elements(xp, bits)) // bs)
    recip = division != "divide"
    amax = t.empty(total, dtype=t.int32, device=dev)
    nzm = t.empty(total, dtype=t.int32, device=dev)  # smallest nonzero magnitude - 1
    mag = t.empty((min(step, total), bs), dtype=t.int32, device=dev)
    for i in range(0, total, step):
        n = min(step, total - i)
        m = mag[:n]
        t.bitwise_and(flat[i:i + n], 0x7FFFFFFF, out=m)
        t.amax(m, -1, out=amax[i:i + n])
        # magnitude - 1, with 0 -> 0x7FFFFFFF (none): the block minimum is the smallest nonzero - 1
        m.sub_(1).bitwise_and_(0x7FFFFFFF)
        t.amin(m, -1, out=nzm[i:i + n])
    # s_t (or g), the per-code multipliers and the scale thresholds: a few hundred values, in numpy on the host
    # with integer operations only (the same bits as the torch integer operations, without their per-call cost)
    host = ops("numpy")
    top = int(t.amax(amax, 0))
    if int(levels) == 2 and tensor_scale is None and top < 0x7F800000:
        st = tensor_scale_from_amax(np.array(top, np.int32), host, global_scale, integer=True)
    else:
        st = tensor_scale_bits(bits, levels, tensor_scale, xp, global_scale)
        st = None if st is None else np.array(int(st), np.int32)
    special = amax >= 0x7F800000
    s = step_codes(_scale_thresholds(st, zero_scale, global_scale), amax, xp)  # special blocks: overwritten
    if zero_scale == "eighth":
        s = xp.where(s == 0, _nv.UE4M3_EIGHTH, s)
    zero = s == 0 if zero_scale == "zero" else None  # the other rules give no zero scale code
    per_code = _per_code(st, division, global_scale, host, None, integer=True)
    if recip:
        mult = per_code
        redo = nzm < t.index_select(t.as_tensor(_product_floor(per_code, zero_scale), device=dev), 0, s)
    else:
        mult = f32_div(np.full(128, 0x3F800000, np.int32), per_code, host, True)
        redo = nzm <= t.index_select(t.as_tensor(_quotient_limit(mult, zero_scale), device=dev), 0, s)
    pc = t.index_select(t.as_tensor(mult, device=dev), 0, s)
    table = _elem_table(_E2M1, rounding, xp, bits)
    codes = t.empty((total, bs), dtype=t.uint8, device=dev)
    key = mag  # mag's buffer is free again

    def gather(y, out) -> None:  # E2M1 codes of binary32 patterns y: the sticky key of sticky_key32, one gather
        k = key[:y.shape[0]]
        t.bitwise_and(y, 0x7FFF, out=k)
        k.add_(0x7FFF).bitwise_or_(y).bitwise_right_shift_(15).bitwise_and_(0x1FFFF)
        t.index_select(table, 0, k.reshape(-1), out=out.reshape(-1))

    xf, rf = flat.view(t.float32), pc.view(t.float32)
    y = t.empty((min(step, total), bs), dtype=t.float32, device=dev)
    if not recip:
        from refarith.fast.cast import _torch_code_table

        buckets = _torch_code_table(bucket_codes(rounding), str(dev))
    near = []  # divide: flat positions of the elements whose quotient is recomputed
    for i in range(0, total, step):
        n = min(step, total - i)
        t.mul(xf[i:i + n], rf[i:i + n, None], out=y[:n])
        if recip:
            gather(y[:n].view(t.int32), codes[i:i + n])
            continue
        a, k = y[:n].view(t.int32), key[:n]
        a.add_(WINDOW)
        t.bitwise_right_shift(a, 21, out=k).bitwise_and_(0x7FF)
        t.index_select(buckets, 0, k.reshape(-1), out=codes[i:i + n].reshape(-1))
        near += _near_edges(a, k, n * bs, i * bs)
    redo = t.nonzero(redo).reshape(-1)
    redo = redo[~special[redo]]
    if recip:
        for i in range(0, redo.numel(), step):  # the integer product where a float unit could differ
            b = redo[i:i + step]
            out = codes[b]
            gather(f32_mul(flat[b], pc[b][:, None], xp, True), out)
            codes[b] = out
    else:  # the integer quotient near bucket edges and where a float unit could differ, in one pass
        blocks = (redo[:, None] * bs + t.arange(bs, device=dev)).reshape(-1)
        pos = t.cat(near + [blocks])
        if pos.numel():
            d = t.index_select(t.as_tensor(per_code, device=dev), 0, s[pos // bs])
            q = f32_div(flat.reshape(-1)[pos], d, xp, True)
            codes.reshape(-1)[pos] = t.index_select(table, 0, sticky_key32(q))
    if zero is not None and xp.anyof(zero):
        codes[zero] = (((flat[zero] >> 31) & 1) << 3).to(t.uint8)  # zero scale: signed zero codes
    if xp.anyof(special):
        codes[special] = 0
        s = xp.where(special, _nv.UE4M3_NAN, s)
    st = None if st is None else t.tensor(int(st), dtype=t.int32, device=dev)
    return st, xp.u8(s).reshape(rows, nb), codes.reshape(rows, nb, bs)


def _quantize_chunk(bits, st, division: str, zero_scale: str, rounding: str, xp, sr=None,
                    global_scale: str = "decode"):
    """(UE4M3 scale codes, E2M1 codes) of a chunk of whole blocks."""
    fdiv, fmul = _f32_ops(xp)
    s, special = _block_scales(xp.amax(bits & 0x7FFFFFFF, -1), st, zero_scale, xp, global_scale, bits)
    # the block's divisor S * s_t or multiplier fl(fl(1 / s_t) / S) (one level: S, 1 / S) depends only on the scale
    # code: computed for the 128 codes, then gathered per block
    r = xp.take(_per_code(st, division, global_scale, xp, bits), s)
    if division == "divide":
        y = fdiv(bits, r[..., None])
    elif xp.name == "torch":
        y = _scale_elements(bits, r, special | (s == 0), xp)
    else:  # numpy's multiply, or the traced kernel's f32_mul
        y = fmul(bits, r[..., None])
    codes = _e2m1_codes(y, rounding, xp) if rounding != "sr" else _e2m1_sr_codes(y, sr, xp)
    # The full-size fix-ups below change nothing when their block-level condition holds nowhere: skipped then.
    zero = s == 0
    if xp.anyof(zero):
        codes = xp.where(zero[..., None], ((bits >> 31) & 1) << 3, codes)  # zero scale: signed zero codes
    if xp.anyof(special):
        codes = xp.where(special[..., None], 0, codes)
        s = xp.where(special, _nv.UE4M3_NAN, s)
    return xp.u8(s), xp.u8(codes)


def _scale_elements(bits, r, overwritten, xp):
    """Bits of fl(x * r) for the elements x of each block and the block's r (binary32 bits, int32), torch.

    The device's float32 multiply when every element of the chunk is zero or normal, every r normal and every
    nonzero product at least 2^-125 in magnitude (blocks whose codes are overwritten, ``overwritten``, aside):
    there every IEEE 754 binary32 multiply gives the same bits, with or without flush-to-zero or
    denormals-are-zero (they act on subnormals only), and the integer-only :func:`refarith.fast.mx.f32_mul`
    otherwise.  The smallest product of a block is fl(min |x| * r) (rounding is monotone), computed per block
    with f32_mul.
    """
    t = xp.t
    mag = bits & 0x7FFFFFFF
    nz = t.amin(t.where(mag == 0, 0x7F7FFFFF, mag), -1)  # smallest nonzero magnitude (max finite: none)
    ymin = f32_mul(nz, r, xp, True)
    fine = (r >= 0x00800000) & (r < 0x7F800000) & (nz >= 0x00800000) & ((ymin >= 0x01000000) | (nz == 0x7F7FFFFF))
    if bool((fine | overwritten).all()):
        return (bits.view(t.float32) * r.view(t.float32)[..., None]).view(t.int32)
    return f32_mul(bits, r[..., None], xp, True)


def _e2m1_codes(y, rounding: str, xp):
    """E2M1 codes round_value(y, ocp_e2m1, rounding, "saturate", nan_policy="zero") of binary32 bit patterns y
    (int32): one gather from the binary32 -> E2M1 sticky-key table built by the proved cast kernel (every
    binary32 pattern, subnormals, infinities and NaN included; :func:`refarith.fast.mx.key_codes`).  A traced
    kernel (:mod:`refarith.fast.xptrace`) rounds with :func:`refarith.fast.mx.encode_scaled` instead: the same
    codes (infinities saturate to ±6, NaN gives 0) without a 2^17-entry table."""
    if xp.name == "trace":
        sign, ef, n = split_f32(y, xp)
        return xp.where((y & 0x7FFFFFFF) > 0x7F800000, 0, encode_scaled(sign, ef, n, 0, _E2M1, rounding, xp))
    if xp.name == "numpy":  # every key is below 2^17, the table's length: no per-element bounds check
        return np.take(_elem_table(_E2M1, rounding, xp, y), sticky_key32(y), mode="clip")
    return xp.take(_elem_table(_E2M1, rounding, xp, y), sticky_key32(y))


def _e2m1_sr_codes(y, sr, xp):
    """E2M1 codes round_value(y, ocp_e2m1, "sr", "saturate", nan_policy="zero") of binary32 bit patterns y (int32)
    with ``sr`` = (r, k, variant) (:func:`refarith.fast.mx.sr_round_up`): infinities saturate to ±6, NaN gives
    code 0."""
    sign, ef, n = split_f32(y, xp)
    codes = encode_scaled(sign, ef, n, 0, _E2M1, "sr", xp, sr=sr)
    return xp.where((y & 0x7FFFFFFF) > 0x7F800000, 0, codes)


def nvfp4_dequantize(tensor_scale, scales, codes, tile: str = "1x16", backend: str = "numpy"):
    """float32 values fl(P * S * s_t) (NaN for NaN-scaled blocks); ``tensor_scale`` None for one level.

    P * S is exact in binary32 (2 and 4 significant bits, no subnormal products); the product with s_t is one
    binary32 multiplication (torch: :func:`refarith.fast.mx.f32_mul`, integer operations only, tabulated per
    pair of codes by :func:`dequantize_table`).
    ``backend="triton"`` runs :func:`refarith.fast.triton_blocks.nvfp4_dequantize` (torch tensors; the same bits).
    """
    if tile not in _nv.TILES:
        raise UnknownModeError(f"unknown NVFP4 tile {tile!r}; expected one of {', '.join(_nv.TILES)}")
    if backend == "triton":
        from refarith.fast import triton_blocks

        return triton_blocks.nvfp4_dequantize(tensor_scale, scales, codes, tile)
    xp = ops(backend)
    if xp.name == "torch":
        return _dequantize_torch(tensor_scale, scales, codes, tile)
    _, fmul = _f32_ops(xp)  # numpy from here on (ops() has no other backend)
    shape = tuple(codes.shape)
    vals = _E2M1_LUT.view(np.int32)[np.asarray(codes)]
    sv = _UE4M3_BITS[np.asarray(scales)]
    vb, _ = _blocks(vals, tile, xp, keep_dtype=True)
    svb = sv.reshape(vb.shape[0], vb.shape[1])[..., None]
    out = fmul(vb, svb)
    if tensor_scale is not None:
        out = fmul(out, np.array(float(tensor_scale), dtype=np.float32).view(np.int32))
    return xp.f32_from_bits(_unblocks(out, shape, tile, xp))


def dequantize_table(tensor_scale) -> np.ndarray:
    """binary32 bits (int32, 2048 entries) of fl(fl(P * S) * s_t) at index (S code << 4) | P code, for every UE4M3
    scale code S (NaN for 0x7F) and E2M1 code P, by the integer :func:`refarith.fast.mx.f32_mul` (numpy);
    ``tensor_scale`` None for one level (fl(P * S))."""
    host = ops("numpy")
    out = f32_mul(np.tile(_E2M1_LUT.view(np.int32), 128), np.repeat(_UE4M3_BITS, 16), host)
    if tensor_scale is not None:
        out = f32_mul(out, np.array(float(tensor_scale), dtype=np.float32).view(np.int32), host)
    return out


def _dequantize_torch(tensor_scale, scales, codes, tile: str):
    """The torch backend of :func:`nvfp4_dequantize`: every value depends on its scale code and its E2M1 code only,
    so it is one gather from :func:`dequantize_table` at (S << 4) | P, TORCH_CPU_CHUNK elements at a time on CPU
    (the same integer products the recipe states, computed once per pair of codes)."""
    xp = ops("torch")
    t = xp.t
    dev = codes.device
    if codes.numel() and int(codes.max()) > 15:
        raise BadValueError(f"E2M1 codes must be below 16, got {int(codes.max())}")
    if scales.numel() and int(scales.max()) > 127:
        raise BadValueError(f"UE4M3 scale codes must be below 128, got {int(scales.max())}")
    table = t.as_tensor(dequantize_table(tensor_scale), device=dev)
    shape = tuple(codes.shape)
    cb, _ = _blocks(codes, tile, xp, keep_dtype=True)
    rows, nb, bs = cb.shape
    flat = cb.reshape(-1, bs)
    s4 = t.bitwise_left_shift(scales.reshape(-1).to(t.int32), 4)
    total = flat.shape[0]
    step = max(1, (TORCH_CPU_CHUNK if dev.type == "cpu" else chunk_elements(xp, cb)) // bs)
    out = t.empty((total, bs), dtype=t.int32, device=dev)
    idx = t.empty((min(step, total), bs), dtype=t.int32, device=dev)
    for i in range(0, total, step):
        n = min(step, total - i)
        k = idx[:n]
        k.copy_(flat[i:i + n])
        k.bitwise_or_(s4[i:i + n, None])
        t.index_select(table, 0, k.reshape(-1), out=out[i:i + n].reshape(-1))
    return _unblocks(out.reshape(rows, nb, bs), shape, tile, xp).view(t.float32)
