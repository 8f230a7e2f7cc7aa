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
from refarith.fast.mx import CHUNK, TORCH_CHUNK, encode_scaled, ops, split_f32
from refarith.formats import get_format

_UE4M3 = get_format("ue4m3")
_E2M1 = get_format("ocp_e2m1")


def _lut_ue4m3() -> np.ndarray:
    from refarith.exact.ops import decode

    return np.array([decode(c, _UE4M3).to_float() for c in range(128)], dtype=np.float32)


_UE4M3_LUT = _lut_ue4m3()
_E2M1_LUT = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0.0, -.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float32)


def _blocks(x, tile: str, xp):
    """(rows, nblocks, blocksize) float32 blocks and the information to undo it."""
    if tile == "1x16":
        if xp.name == "numpy":
            a = np.asarray(x, dtype=np.float32)
        else:
            a = x.to(xp.t.float32)
        shape = tuple(a.shape)
        n = shape[-1]
        nb = -(-n // 16)
        a2 = a.reshape(-1, n)
        if nb * 16 != n:
            pad = nb * 16 - n
            if xp.name == "numpy":
                a2 = np.concatenate([a2, np.zeros((a2.shape[0], pad), np.float32)], axis=1)
            else:
                a2 = xp.t.cat([a2, xp.t.zeros((a2.shape[0], pad), dtype=xp.t.float32, device=a2.device)], dim=1)
        return a2.reshape(-1, nb, 16), shape
    if len(x.shape) < 2:
        raise BadValueError("tile=16x16 needs an array with at least two dimensions")
    if xp.name == "numpy":
        a = np.asarray(x, dtype=np.float32)
    else:
        a = x.to(xp.t.float32)
    shape = tuple(a.shape)
    r, c = shape[-2], shape[-1]
    rp, cp = -(-r // 16) * 16, -(-c // 16) * 16
    a3 = a.reshape(-1, r, c)
    if (rp, cp) != (r, c):
        if xp.name == "numpy":
            z = np.zeros((a3.shape[0], rp, cp), np.float32)
        else:
            z = xp.t.zeros((a3.shape[0], rp, cp), dtype=xp.t.float32, device=a3.device)
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


def _f32(v, xp, like):
    if xp.name == "numpy":
        return np.float32(v)
    return xp.t.tensor(v, dtype=xp.t.float32, device=like.device)


def nvfp4_quantize(x, division: str = "reciprocal", levels: int = 2, zero_scale: str = "eps", tile: str = "1x16",
                   rounding: str = "rne", tensor_scale=None, backend: str = "numpy"):
    """(tensor scale binary32 or None, UE4M3 scale codes uint8, E2M1 codes uint8) of a float32 array."""
    if division not in _nv.DIVISIONS:
        raise UnknownModeError(f"unknown NVFP4 division {division!r}; expected one of {', '.join(_nv.DIVISIONS)}")
    if str(levels) not in _nv.LEVELS:
        raise UnknownModeError(f"NVFP4 levels must be 1 or 2, got {levels!r}")
    if zero_scale not in _nv.ZERO_SCALES:
        raise UnknownModeError(f"unknown zero_scale {zero_scale!r}; expected one of {', '.join(_nv.ZERO_SCALES)}")
    if tile not in _nv.TILES:
        raise UnknownModeError(f"unknown NVFP4 tile {tile!r}; expected one of {', '.join(_nv.TILES)}")
    if rounding not in _nv.ROUNDINGS:
        raise UnknownModeError(f"unknown element rounding {rounding!r}")
    xp = ops(backend)
    if len(x.shape) == 0:
        raise BadValueError("nvfp4_quantize needs an array with at least one dimension")
    blocks, shape = _blocks(x, tile, xp)
    bits = xp.i32(blocks)
    st = None
    if int(levels) == 2:
        if tensor_scale is not None:
            st = _f32(float(tensor_scale), xp, blocks)
            sb = int(np.float32(float(tensor_scale)).view(np.int32))
            if not (0 < sb < 0x7F800000):
                raise BadValueError(f"per-tensor scale {tensor_scale!r} must be a positive finite binary32")
        else:
            mag = bits & 0x7FFFFFFF
            fin = xp.where(mag >= 0x7F800000, 0, mag)
            at = xp.f32_from_bits(xp.amax(fin.reshape(-1), 0))
            st = at / _f32(2688.0, xp, blocks)
            if float(st) == 0.0:
                st = _f32(1.0, xp, blocks)
    rows = bits.shape[0]
    chunk = CHUNK if xp.name == "numpy" else TORCH_CHUNK
    step = max(1, chunk // max(1, bits.shape[1] * bits.shape[2]))
    parts = [_quantize_chunk(blocks[i:i + step], bits[i:i + step], st, division, zero_scale, rounding, xp)
             for i in range(0, rows, step)]
    if len(parts) == 1:
        s, codes = parts[0]
    elif xp.name == "numpy":
        s, codes = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    else:
        s, codes = xp.t.cat([p[0] for p in parts]), xp.t.cat([p[1] for p in parts])
    return st, _scale_shape(s, shape, tile), _unblocks(codes, shape, tile, xp)


def _quantize_chunk(blocks, bits, st, division: str, zero_scale: str, rounding: str, xp):
    mag = bits & 0x7FFFFFFF
    amax = xp.amax(mag, -1)
    special = amax >= 0x7F800000
    amax = xp.where(special, 0, amax)
    b = xp.f32_from_bits(amax) / _f32(6.0, xp, blocks)
    if st is not None:
        b = b / st
    if zero_scale == "eps":
        b = np.maximum(b, np.float32(1 / 64)) if xp.name == "numpy" else xp.t.clamp_min(b, 1 / 64)
    bs, be, bn = split_f32(xp.i32(b), xp)
    s = encode_scaled(bs, be, bn, 0, _UE4M3, "rne", xp)
    if xp.name == "numpy":
        s32 = _UE4M3_LUT[s]
    else:
        s32 = xp.t.as_tensor(_UE4M3_LUT, device=s.device)[s.to(xp.t.int64)]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if division == "divide":
            d = s32 if st is None else s32 * st
            y = blocks / d[..., None]
        else:
            one = _f32(1.0, xp, blocks)
            r = one / s32 if st is None else (one / st) / s32
            y = blocks * r[..., None]
    ybits = xp.i32(y)
    ys, ye, yn = split_f32(ybits, xp)
    codes = encode_scaled(ys, ye, yn, 0, _E2M1, rounding, xp)
    ymag = ybits & 0x7FFFFFFF
    codes = xp.where(ymag > 0x7F800000, 0, codes)
    sign = (bits >> 31) & 1
    codes = xp.where((s == 0)[..., None], sign << 3, codes)
    codes = xp.where(special[..., None], 0, codes)
    s = xp.where(special, _nv.UE4M3_NAN, s)
    return xp.u8(s), xp.u8(codes)


def nvfp4_dequantize(tensor_scale, scales, codes, tile: str = "1x16", backend: str = "numpy"):
    """float32 values fl(P * S * s_t) (NaN for NaN-scaled blocks)."""
    xp = ops(backend)
    shape = tuple(codes.shape)
    if xp.name == "numpy":
        vals = _E2M1_LUT[np.asarray(codes)]
        sv = _UE4M3_LUT[np.asarray(scales)]
    else:
        vals = xp.t.as_tensor(_E2M1_LUT, device=codes.device)[codes.to(xp.t.int64)]
        sv = xp.t.as_tensor(_UE4M3_LUT, device=codes.device)[scales.to(xp.t.int64)]
    vb, _ = _blocks(vals, tile, xp)
    svb = sv.reshape(vb.shape[0], vb.shape[1])[..., None]
    out = vb * svb  # exact: P has 2 significant bits, S 4
    if tensor_scale is not None:
        out = out * tensor_scale
    return _unblocks(out, shape, tile, xp)
