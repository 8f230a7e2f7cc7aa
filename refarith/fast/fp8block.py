"""Blockwise FP8 quantization (1xB / BxB tiles), vectorized (numpy and torch); the same bits as
:mod:`refarith.exact.fp8block`.

The binary32 steps (amax / F_max, 1 / sf, x * r, x / sf) are single IEEE binary32 operations in numpy and torch
(round to nearest even, no flush to zero); ceil(log2 sf) for UE8M0 scales is taken from the bits (exponent field,
plus one unless the significand is zero), never from a floating log2; the FP8 cast is :func:`refarith.fast.encode`
(RNE, saturating).  The numpy kernel takes the tile amax from the bits (:func:`refarith.fast.fp8scale.tile_amax`)
and fuses the product and the cast on cache-sized blocks (:func:`refarith.fast.fp8scale.scaled_codes`, encode's
own table), every NaN product mapped to the code 0x7F.
"""

from __future__ import annotations

import numpy as np

from refarith.errors import BadValueError
from refarith.exact import fp8block as _e
from refarith.fast import fp8scale as _fs


def _f32(bits: int) -> float:
    return float(np.array([bits], np.uint32).view(np.float32)[0])


def _check_tiles(shape: tuple[int, ...], tr: int, tc: int) -> None:
    if len(shape) != 2 or shape[0] % tr or shape[1] % tc or shape[0] == 0:
        dims = "x".join(map(str, shape)) or "0-d"
        raise BadValueError(f"a {dims} tensor does not tile into {tr}x{tc} blocks (a 2-D shape, multiples of the "
                            "tile, is needed; no padding)")


def _tiles(x, tr: int, tc: int):
    """A torch tensor's tiles as rows: (rows / tr, cols / tc, tr * tc)."""
    shape = tuple(x.shape)
    _check_tiles(shape, tr, tc)
    r, c = shape
    return x.reshape(r // tr, tr, c // tc, tc).permute(0, 2, 1, 3).reshape(r // tr, c // tc, tr * tc), shape


def _untile(q, shape, tr: int, tc: int):
    r, c = shape
    return q.reshape(r // tr, c // tc, tr, tc).permute(0, 2, 1, 3).reshape(r, c)


def _ceil_e8m0_np(sf: np.ndarray) -> np.ndarray:
    """E8M0 codes of 2^ceil(log2 sf) from the bits (0xFF where there is none)."""
    b = sf.view(np.uint32).astype(np.int64)
    e = (b >> 23) & 0xFF
    f = b & 0x7FFFFF
    bl = np.zeros_like(b)
    for i in range(23):  # bit length of a subnormal's significand
        bl = np.where((f >> i) & 1 == 1, i + 1, bl)
    k = np.where(e > 0, e - 127 + (f != 0), bl - 150 + ((f & (f - 1)) != 0))
    ok = (e < 255) & (b > 0) & (b < 0x80000000) & (k >= -127) & (k <= 127)
    return np.where(ok, k + 127, 255).astype(np.int64)


def _e8m0_to_f32_np(code: np.ndarray) -> np.ndarray:
    k = code.astype(np.int64) - 127
    bits = np.where(k >= -126, (k + 127) << 23, 1 << np.clip(k + 149, 0, 22))
    return np.where(code == 255, 0x7FC00000, bits).astype(np.uint32).view(np.float32)


def fp8_block_quantize(x, fmt: str = "ocp_e4m3", tile: str = "1x128", scale: str = "fp32",
                       division: str = "reciprocal", eps: str = "deepgemm", backend: str = "numpy"):
    """(scales, codes) of a 2-D binary32 array: scales of shape (rows/tr, cols/tc), binary32 (``scale=fp32``) or
    E8M0 codes (``ue8m0``); codes (uint8 / int64 for torch) shaped like x.  BadValueError for a shape that does
    not tile."""
    from refarith.formats import get_format

    if scale not in _e.SCALES or division not in _e.DIVISIONS or eps not in _e.EPS:
        raise BadValueError(f"unknown blockwise FP8 variant scale={scale}, division={division}, eps={eps}")
    if fmt not in _e.FP8:
        raise BadValueError(f"blockwise FP8 quantizes into ocp_e4m3 or ocp_e5m2, not {fmt}")
    from refarith.errors import SpecError

    try:
        tr, tc = _e.parse_tile(tile)
    except SpecError as e:
        raise BadValueError(str(e)) from None
    fmax = _f32(round_value_bits(get_format(fmt).max))
    if backend == "torch":
        return _torch(x, fmt, tr, tc, scale, division, eps, fmax)
    if backend != "numpy":
        raise BadValueError(f"unknown backend {backend!r}; expected numpy or torch")
    if (division == "scale") != (eps == "torchao") or (division == "scale" and scale != "fp32"):
        raise BadValueError("division=scale goes with eps=torchao and scale=fp32 (torchao's blockwise rule)")
    a = np.ascontiguousarray(x, dtype=np.float32)
    _check_tiles(tuple(a.shape), tr, tc)
    if tr == 1 and scale == "fp32":
        return _fused_rows(a, fmt, tc, division, eps, fmax)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        amax = _fs.tile_amax(a, tr, tc)
        if division == "scale":  # torchao: binary64 quotient rounded to binary32, x * s, report fl(1/s)
            s = _torchao_scale(amax, fmax)
            q = _fs.scaled_codes(a, s, fmt, (tr, tc), nan_code=0x7F)
            return (np.float32(1) / s).astype(np.float32), q
        sf = _fp32_scale(amax, eps, fmax)
        if scale == "ue8m0":
            code = _ceil_e8m0_np(sf)
            s_used = _e8m0_to_f32_np(code)  # the NaN scale 0xFF: s_used NaN, so every element's product is NaN
        else:
            s_used = sf
        if division == "reciprocal":
            q = _fs.scaled_codes(a, (np.float32(1) / s_used).astype(np.float32), fmt, (tr, tc), nan_code=0x7F)
        else:
            q = _fs.scaled_codes(a, s_used, fmt, (tr, tc), divide=True, nan_code=0x7F)
    scales = code.astype(np.uint8) if scale == "ue8m0" else sf
    return scales, q


def _torchao_scale(amax: np.ndarray, fmax: float) -> np.ndarray:
    """torchao's multiplier per tile: fl32(F_max / max(amax, 1e-12)) from a binary64 quotient, NaN for a NaN tile."""
    s = (fmax / np.maximum(amax.astype(np.float64), 1e-12)).astype(np.float32)
    return np.where(np.isnan(amax), np.float32(np.nan), s)


_EPS_DEEPGEMM = np.array([_e.EPS_DEEPGEMM], np.uint32).view(np.float32)[0]  # fl(1e-4) as a binary32 scalar


def _fp32_scale(amax: np.ndarray, eps: str, fmax: float) -> np.ndarray:
    """The binary32 scale fl(max(amax, fl(1e-4)) / F_max) (``eps=deepgemm``; else fl(amax / F_max)) per tile (a
    NaN amax gives a NaN scale)."""
    if eps == "deepgemm":
        amax = np.where(amax < _EPS_DEEPGEMM, _EPS_DEEPGEMM, amax)
    return np.divide(amax, np.float32(fmax), dtype=np.float32)


_FUSED_BLOCK = 1 << 17  # elements of x per block of _fused_rows (its amax, scales and cast run on one block)


def _fused_rows(a: np.ndarray, fmt: str, tc: int, division: str, eps: str, fmax: float):
    """fp8_block_quantize of a C-contiguous 2-D binary32 array in 1 x tc tiles with binary32 scales: the same
    binary32 operations, element for element, as tile_amax, the scale formulas and scaled_codes, run on one
    block of x at a time (rows, or tile columns of a row longer than the block) while it is in cache: the tile
    amax from the |x| bits (integer maxima, a NaN maximum as the quiet NaN), the block's scales, then the
    product, its key and the table lookup (:func:`refarith.fast.fp8scale.scaled_codes`'s key and table, every
    NaN product the code 0x7F)."""
    rows, cols = a.shape
    kt = cols // tc
    cs = cols if cols <= _FUSED_BLOCK else tc * max(1, _FUSED_BLOCK // tc)
    rs = max(1, _FUSED_BLOCK // cs)
    tab, c, sh = _fs._cast_table(fmt, 0x7F)
    u = a.view(np.uint32)
    out = np.empty((rows, cols), np.uint8)
    scales = np.empty((rows, kt), np.float32)
    size = rs * cs
    y = np.empty(size, np.float32)
    key = np.empty(size, np.uint32)
    op = np.divide if division == "divide" else np.multiply
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for r0 in range(0, rows, rs):
            r1 = min(r0 + rs, rows)
            for c0 in range(0, cols, cs):
                c1 = min(c0 + cs, cols)
                n, nt = (r1 - r0) * (c1 - c0), (r1 - r0) * ((c1 - c0) // tc)
                k = key[:n].reshape(r1 - r0, c1 - c0)
                np.bitwise_and(u[r0:r1, c0:c1], np.uint32(0x7FFFFFFF), out=k)
                mx = np.maximum.reduce(k.reshape(nt, tc), axis=1)
                amax = np.where(mx > np.uint32(0x7F800000), np.uint32(0x7FC00000), mx).view(np.float32)
                if division == "scale":
                    m = _torchao_scale(amax, fmax)
                    scales[r0:r1, c0 // tc:c1 // tc] = (np.float32(1) / m).reshape(r1 - r0, -1)
                else:
                    sf = _fp32_scale(amax, eps, fmax)
                    scales[r0:r1, c0 // tc:c1 // tc] = sf.reshape(r1 - r0, -1)
                    m = np.divide(np.float32(1), sf, dtype=np.float32) if division == "reciprocal" else sf
                yb = y[:n]
                op(a[r0:r1, c0:c1].reshape(nt, tc), m[:, None], out=yb.reshape(nt, tc))
                _fs.lookup_codes(yb, key[:n], tab, c, sh, out[r0:r1, c0:c1])  # rows, or one row
    return scales, out


def round_value_bits(v) -> int:
    """binary32 code of an exact value (F_max)."""
    from refarith.exact.rounding import round_value
    from refarith.exact.value import Value

    return round_value(Value.of(v), "binary32").code


def _torch(x, fmt, tr, tc, scale, division, eps, fmax):
    import torch

    from refarith import fast

    a = x.to(torch.float32)
    t, shape = _tiles(a, tr, tc)
    amax = t.abs().amax(dim=-1)
    amax = torch.where(torch.isnan(t).any(dim=-1), torch.full_like(amax, float("nan")), amax)
    if division == "scale":
        s = (fmax / amax.to(torch.float64).clamp(min=1e-12)).to(torch.float32)
        y = t * s[..., None]
        q = fast.encode(y, fmt, "rne", "saturate", backend="torch").to(torch.int64)
        q = torch.where(torch.isnan(y), torch.full_like(q, 0x7F), q)
        return 1 / s, _untile(q, shape, tr, tc)
    if eps == "deepgemm":
        e = torch.tensor(_f32(_e.EPS_DEEPGEMM), dtype=torch.float32, device=a.device)
        amax = torch.where(amax < e, e, amax)
    sf = amax / torch.tensor(fmax, dtype=torch.float32, device=a.device)
    if scale == "ue8m0":
        code = torch.from_numpy(_ceil_e8m0_np(sf.cpu().numpy())).to(a.device)
        s_used = torch.from_numpy(_e8m0_to_f32_np(code.cpu().numpy())).to(a.device)
        nan_block = code == 255
    else:
        s_used, nan_block = sf, torch.zeros(sf.shape, dtype=torch.bool, device=a.device)
    y = t * (1 / s_used)[..., None] if division == "reciprocal" else t / s_used[..., None]
    q = fast.encode(y, fmt, "rne", "saturate", backend="torch").to(torch.int64)
    q = torch.where(torch.isnan(y) | nan_block[..., None], torch.full_like(q, 0x7F), q)
    scales = code if scale == "ue8m0" else sf
    return scales, _untile(q, shape, tr, tc)
