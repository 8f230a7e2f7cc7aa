"""NVFP4 block quantization, vectorized (numpy and torch); same bits as :mod:`refarith.exact.nvfp4`.

The binary32 operations of the recipe (A/6, b/s_t, 1/S, x*r, x/S, S*s_t) are
single IEEE binary32 operations, which numpy and torch round to nearest even
exactly as the exact model's round_value(..., "binary32") does (numpy never
flushes subnormals; torch does not unless ``torch.set_flush_denormal(True)``
has been called, which these kernels require not to be).  Every rounding into UE4M3 and E2M1 is done on the
bits by :func:`refarith.fast.mx.encode_scaled`.
"""

from __future__ import annotations

import numpy as np

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import nvfp4 as _nv
from refarith.fast.mx import (
    _elem_table,
    blockwise,
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

    shape = tuple(a.shape)
    if tile == "1x16":
        n = shape[-1]
        nb = -(-n // 16)
        a2 = a.reshape(-1, n)
        if nb * 16 != n:
            z = zeros((a2.shape[0], nb * 16))
            z[:, :n] = a2
            a2 = z
        return a2.reshape(-1, nb, 16), shape
    if len(shape) < 2:
        raise BadValueError("tile=16x16 needs an array with at least two dimensions")
    r, c = shape[-2], shape[-1]
    rp, cp = -(-r // 16) * 16, -(-c // 16) * 16
    a3 = a.reshape(-1, r, c)
    if (rp, cp) != (r, c):
        z = zeros((a3.shape[0], rp, cp))
        z[:, :r, :c] = a3
        a3 = z
    t = a3.reshape(-1, rp // 16, 16, cp // 16, 16)
    t = t.transpose(0, 1, 3, 2, 4) if xp.name == "numpy" else t.permute(0, 1, 3, 2, 4)
    return t.reshape(-1, (rp // 16) * (cp // 16), 256), shape


def _unblocks(c, shape, tile: str, xp):
    if tile == "1x16":
        n = shape[-1]
        return c.reshape(c.shape[0], -1)[:, :n].reshape(shape)
    r, cc = shape[-2], shape[-1]
    rp, cp = -(-r // 16) * 16, -(-cc // 16) * 16
    t = c.reshape(-1, rp // 16, cp // 16, 16, 16)
    t = t.transpose(0, 1, 3, 2, 4) if xp.name == "numpy" else t.permute(0, 1, 3, 2, 4)
    return t.reshape(-1, rp, cp)[:, :r, :cc].reshape(shape)


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


def _f32_ops(xp):
    """(fdiv, fmul) on binary32 bit patterns (int32): numpy's IEEE float32 operations, or for torch the
    integer-only :func:`refarith.fast.mx.f32_div` / :func:`refarith.fast.mx.f32_mul` (same bits)."""
    if xp.name == "numpy":
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
    blocks, shape = _blocks(x, tile, xp)
    bits = xp.i32(blocks)
    if xp.name == "numpy" and bits.size:
        st, s, codes = _quantize_numpy(bits, division, levels, zero_scale, rounding, tensor_scale, global_scale)
        st_out = None if st is None else np.float32(xp.f32_from_bits(st))
        return st_out, _scale_shape(s, shape, tile), _unblocks(codes, shape, tile, xp)
    st = tensor_scale_bits(bits, levels, tensor_scale, xp, global_scale)
    per_code = _per_code(st, division, global_scale, xp, bits)  # once per call, not per chunk
    s, codes = blockwise(lambda b: _quantize_chunk(b, st, division, zero_scale, rounding, xp,
                                                   global_scale=global_scale, per_code=per_code), bits, xp)
    st_out = None if st is None else xp.f32_from_bits(st)
    if st_out is not None and xp.name == "numpy":
        st_out = np.float32(st_out)
    return st_out, _scale_shape(s, shape, tile), _unblocks(codes, shape, tile, xp)


def tensor_scale_bits(bits, levels, tensor_scale, xp, global_scale: str = "decode"):
    """binary32 bits of s_t (0-d, int32) for two levels: the given ``tensor_scale`` (checked positive finite
    binary32) or fl(amax / 2688) over the finite elements of ``bits`` (1.0 when that is 0); None for one level.
    ``global_scale="reciprocal"``: g = fl(fl(1 / max(amax, 2^-126)) * 2688) instead (1.0 where that overflows)."""
    if int(levels) != 2:
        return None
    if tensor_scale is not None:
        sb = int(np.array(float(tensor_scale), dtype=np.float32).view(np.int32))
        if not (0 < sb < 0x7F800000) or np.float32(float(tensor_scale)) != float(tensor_scale):
            raise BadValueError(f"per-tensor scale {tensor_scale!r} must be a positive finite binary32 value")
        return _const_bits(float(tensor_scale), xp, bits)
    mag = (bits & 0x7FFFFFFF).reshape(-1)
    at = xp.amax(mag, 0)
    if int(at) >= 0x7F800000:  # infinities and NaNs do not count
        at = xp.amax(xp.where(mag >= 0x7F800000, 0, mag), 0)
    return tensor_scale_from_amax(at, xp, global_scale)


def tensor_scale_from_amax(at, xp, global_scale: str = "decode"):
    """s_t = fl(A / 2688), 1.0 where that is 0, from the bits ``at`` of the largest finite magnitude A (int32);
    ``global_scale="reciprocal"``: g = fl(fl(1 / max(A, 2^-126)) * 2688) (torch's ``2688 / t``), 1.0 where that
    overflows.  Branch-free: the
    Triton backend traces it (:func:`refarith.fast.triton_blocks.nvfp4_quantize_graph`)."""
    fdiv, fmul = _f32_ops(xp)
    one, c2688 = _const_bits(1.0, xp, at), _const_bits(2688.0, xp, at)
    if global_scale == "reciprocal":
        g = fmul(fdiv(one, xp.maximum(at, _nv.F32_TINY)), c2688)
        return xp.where(g >= 0x7F800000, one, g)
    st = fdiv(at, c2688)
    return xp.where(st == 0, one, st)


def _per_code(st, division: str, global_scale: str, xp, like):
    """Per UE4M3 scale code S (128 entries, binary32 bits): the block divisor fl(S * s_t) (``divide``; S / g with
    ``global_scale="reciprocal"``, S with one level) or the multiplier fl(fl(1 / s_t) / S) (``reciprocal``; g / S,
    1 / S): it depends on the scale code only, so blocks gather it."""
    fdiv, fmul = _f32_ops(xp)
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


def _block_amax(mag, xp):
    """The largest magnitude bits of each block (the last axis).  numpy with blocks of 16: a running maximum
    over the 16 strided columns, about twice as fast as numpy's reduction over a short last axis (the same
    values: max is exact)."""
    if xp.name != "numpy" or mag.shape[-1] != 16:
        return xp.amax(mag, -1)
    a = mag[..., 0].copy()
    for j in range(1, 16):
        np.maximum(a, mag[..., j], out=a)
    return a


def _block_scales(amax, st, zero_scale: str, xp, global_scale: str, like):
    """(UE4M3 scale codes, special) of blocks with largest magnitude bits ``amax`` (int32): the code of
    fl(fl(amax / 6) / s_t) (``global_scale="reciprocal"``: fl(fl(amax / 6) * g); one level: fl(amax / 6)), at least
    2^-6 with ``zero_scale="eps"``, rounded to nearest even and saturating; ``special`` marks blocks holding an
    infinity or NaN (their amax counts as 0 here; the caller overwrites their codes)."""
    fdiv, fmul = _f32_ops(xp)
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
    v, width, at = mag.reshape(-1, 2), mag.shape[-1], 0
    while width > 2:
        level = tmp[at:at + v.shape[0]]
        np.maximum(v[:, 0], v[:, 1], out=level)
        at += v.shape[0]
        v, width = level.reshape(-1, 2), width // 2
    np.maximum(v[:, 0], v[:, 1], out=out)


def _quantize_numpy(bits, division: str, levels, zero_scale: str, rounding: str, tensor_scale, global_scale: str):
    """(s_t bits or None, UE4M3 scale codes (rows, nb) uint8, E2M1 codes (rows, nb, bs) uint8) of the numpy
    backend: the operations of :func:`_quantize_chunk` in three stages with the same bits.  (1) Block maxima,
    NUMPY_CHUNK elements at a time (:func:`_amax_pairs`); the tensor's largest finite magnitude is the largest
    block maximum when no block holds an infinity or NaN (else :func:`tensor_scale_bits` scans the elements).
    (2) :func:`_block_scales` and the per-code divisor or multiplier, on all blocks at once.  (3) fl(x * r) or
    fl(x / d) into a reused buffer, its sticky key in place and the E2M1 gather straight into the result, chunk by
    chunk; then the zero-scale and special blocks are overwritten as in :func:`_quantize_chunk`."""
    xp = ops("numpy")
    rows, nb, bs = bits.shape
    flat = bits.reshape(-1, bs)
    total = flat.shape[0]
    step = max(1, NUMPY_CHUNK // bs)
    pairs = bs >= 2 and bs & (bs - 1) == 0
    amax = np.empty(total, np.int32)
    mag = np.empty((min(step, total), bs), np.int32)
    tmp = np.empty(mag.size, np.int32)
    for i in range(0, total, step):
        m = mag[:min(step, total - i)]
        np.bitwise_and(flat[i:i + step], 0x7FFFFFFF, out=m)
        if pairs:
            _amax_pairs(m, amax[i:i + step], tmp)
        else:
            np.max(m, axis=-1, out=amax[i:i + step])
    top = amax.max()
    if int(levels) == 2 and tensor_scale is None and int(top) < 0x7F800000:
        st = tensor_scale_from_amax(top, xp, global_scale)
    else:
        st = tensor_scale_bits(bits, levels, tensor_scale, xp, global_scale)
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


def _quantize_chunk(bits, st, division: str, zero_scale: str, rounding: str, xp, sr=None,
                    global_scale: str = "decode", per_code=None):
    """(UE4M3 scale codes, E2M1 codes) of a chunk of whole blocks; ``per_code``: :func:`_per_code` of the same
    arguments when the caller computed it once (else computed here)."""
    fdiv, fmul = _f32_ops(xp)
    mag = bits & 0x7FFFFFFF
    s, special = _block_scales(_block_amax(mag, xp), st, zero_scale, xp, global_scale, bits)
    # the block's divisor S * s_t or multiplier fl(fl(1 / s_t) / S) (one level: S, 1 / S) depends only on the scale
    # code: computed for the 128 codes, then gathered per block
    pc = _per_code(st, division, global_scale, xp, bits) if per_code is None else per_code
    if division == "divide":
        y = fdiv(bits, xp.take(pc, s)[..., None])
    else:
        y = _scale_elements(bits, mag, xp.take(pc, s), special | (s == 0), fmul, xp)
    codes = _e2m1_codes(y, rounding, xp) if rounding != "sr" else _e2m1_sr_codes(y, sr, xp)
    numpy = xp.name == "numpy"
    # The full-size fix-ups below change nothing when their block-level condition holds nowhere: skipped then.
    zero = s == 0
    if xp.anyof(zero):
        codes = xp.where(zero[..., None], ((bits >> 31) & 1) << 3, codes)  # zero scale: signed zero codes
    if xp.anyof(special):
        codes = xp.where(special[..., None], 0, codes)
        s = xp.where(special, _nv.UE4M3_NAN, s)
    return xp.u8(s), (codes.astype(np.uint8, copy=False) if numpy else xp.u8(codes))


def _scale_elements(bits, mag, r, overwritten, fmul, xp):
    """Bits of fl(x * r) for the elements x of each block and the block's r (binary32 bits, int32).

    numpy: numpy's float32 multiply.  torch: the device's float32 multiply when every element of the chunk is
    zero or normal, every r normal and every nonzero product at least 2^-125 in magnitude (blocks whose codes are
    overwritten, ``overwritten``, aside): there every IEEE 754 binary32 multiply gives the same bits, with or
    without flush-to-zero or denormals-are-zero (they act on subnormals only), and the integer-only
    :func:`refarith.fast.mx.f32_mul` otherwise.  The smallest product of a block is fl(min |x| * r) (rounding
    is monotone), computed per block with f32_mul.
    """
    if xp.name != "torch":  # numpy's multiply, or the traced kernel's f32_mul
        return fmul(bits, r[..., None])
    t = xp.t
    nz = t.amin(t.where(mag == 0, 0x7F7FFFFF, mag), -1)  # smallest nonzero magnitude (max finite: none)
    ymin = f32_mul(nz, r, xp, True)
    fine = (r >= 0x00800000) & (r < 0x7F800000) & (nz >= 0x00800000) & ((ymin >= 0x01000000) | (nz == 0x7F7FFFFF))
    if bool((fine | overwritten).all()):
        return (bits.view(t.float32) * r.view(t.float32)[..., None]).view(t.int32)
    return fmul(bits, r[..., None])


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
    binary32 multiplication (torch: :func:`refarith.fast.mx.f32_mul`, integer operations only).
    ``backend="triton"`` runs :func:`refarith.fast.triton_blocks.nvfp4_dequantize` (torch tensors; the same bits).
    """
    if tile not in _nv.TILES:
        raise UnknownModeError(f"unknown NVFP4 tile {tile!r}; expected one of {', '.join(_nv.TILES)}")
    if backend == "triton":
        from refarith.fast import triton_blocks

        return triton_blocks.nvfp4_dequantize(tensor_scale, scales, codes, tile)
    xp = ops(backend)
    _, fmul = _f32_ops(xp)
    shape = tuple(codes.shape)
    if xp.name == "numpy":
        vals = _E2M1_LUT.view(np.int32)[np.asarray(codes)]
        sv = _UE4M3_BITS[np.asarray(scales)]
    else:
        vals = xp.take(xp.t.as_tensor(_E2M1_LUT.view(np.int32), device=codes.device), codes.to(xp.t.int32))
        sv = xp.take(xp.t.as_tensor(_UE4M3_BITS, device=codes.device), scales.to(xp.t.int32))
    vb, _ = _blocks(vals, tile, xp, keep_dtype=True)
    svb = sv.reshape(vb.shape[0], vb.shape[1])[..., None]
    out = fmul(vb, svb)
    if tensor_scale is not None:
        tb = np.array(float(tensor_scale), dtype=np.float32).view(np.int32)
        out = fmul(out, tb if xp.name == "numpy" else xp.t.tensor(int(tb), dtype=xp.t.int32, device=out.device))
    return xp.f32_from_bits(_unblocks(out, shape, tile, xp))
