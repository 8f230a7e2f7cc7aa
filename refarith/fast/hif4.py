"""HiFloat4 quantization, vectorized (numpy and torch): the same codes and values as :mod:`refarith.exact.hif4`.

The kernel computes in binary64, and every binary64 operation in it is exact or a rounding the format defines:

* |x| of binary32 inputs, the maxima, and the products Vmax * C, V * R (24-bit times 8-bit significands) and the
  powers of two are exact in binary64;
* the bfloat16 roundings (SF and R) and the E6M2 rounding are done explicitly on the binary64 significand
  (``np.frexp``, ``np.rint`` or ``floor(v + 0.5)``, ``np.ldexp``): they round a value that is exact;
* 1/S is rounded twice (binary64, then bfloat16); the exact model's docstring shows why that is one rounding of
  the exact reciprocal;
* the element quotient a * R * 2^(2 - d) is exact, and below 2^52 the + 0.5 of the ties-away rounding is exact.

The torch kernel is the same computation in float64 tensor operations (``torch.frexp``, ``torch.round`` (ties to
even), ``torch.floor``, multiplications by exact powers of two).
"""

from __future__ import annotations

import numpy as np

from refarith.errors import BadValueError
from refarith.exact.hif4 import SCALE_NAN, UNIT, _check_ties

_C7 = 73 / 512  # bf16(1/7), exactly


def _round_sig(v: np.ndarray, bits: int, ties: str) -> np.ndarray:
    """Positive finite binary64 values rounded to ``bits`` significant bits (unbounded exponent)."""
    m, e = np.frexp(v)  # v = m * 2^e, m in [0.5, 1)
    t = np.ldexp(m, bits)  # in [2^(bits-1), 2^bits), exact
    n = np.floor(t + 0.5) if ties == "away" else np.rint(t)
    return np.ldexp(n, e - bits)


def _bf16(v: np.ndarray) -> np.ndarray:
    """Non-negative binary64 values rounded to nearest even into bfloat16 (normal range; smaller values are only
    ever clamped up to 2^-48 afterwards, so their subnormal rounding does not matter)."""
    out = np.zeros_like(v)
    nz = v > 0
    out[nz] = _round_sig(v[nz], 8, "even")
    return out


def _check(x, scale_ties: str, elem_ties: str, axis: int):
    _check_ties(scale_ties, elem_ties)
    a = np.asarray(x)
    if a.dtype != np.float32:
        raise BadValueError(f"HiF4 quantization takes a float32 array, got dtype {a.dtype}")
    if a.ndim == 0:
        raise BadValueError("HiF4 quantization needs an array with at least one dimension")
    a = np.moveaxis(a, axis, -1)
    if a.shape[-1] % UNIT:
        raise BadValueError(f"HiF4 quantizes units of {UNIT} elements along the axis; its length {a.shape[-1]} "
                            f"is not a multiple of {UNIT}")
    return a


def hif4_quantize(x, axis: int = -1, scale_ties: str = "even", elem_ties: str = "away", backend: str = "numpy"):
    """HiF4 units of a float32 array along ``axis`` (length a multiple of 64).

    Returns (scale, d8, d16, codes): uint8 E6M2 scale codes, uint8 level-2 words (group 0 in the top bit),
    uint16 level-3 words (subgroup 0 in the top bit), one per unit, with the unit index along ``axis``; and the
    uint8 S1P2 element codes in the shape of ``x``.  A unit holding a NaN or an infinity gets scale 0xFF and
    zero bits and codes."""
    if backend == "torch":
        return _torch_quantize(x, axis, scale_ties, elem_ties)
    if backend != "numpy":
        raise BadValueError(f"hif4_quantize has numpy and torch kernels, not {backend!r}")
    a = _check(x, scale_ties, elem_ties, axis)
    lead = a.shape[:-1]
    nu = a.shape[-1] // UNIT
    xs = a.reshape(-1, UNIT)
    mag = np.abs(xs.astype(np.float64))
    bad = ~np.isfinite(mag).all(axis=1)
    mag = np.where(bad[:, None], 0.0, mag)
    v16 = mag.reshape(-1, 16, 4).max(axis=2)
    v8 = v16.reshape(-1, 8, 2).max(axis=2)
    vmax = v8.max(axis=1)
    sf = _bf16(vmax * _C7)
    s = _round_sig(np.clip(sf, 2.0 ** -48, 49152.0), 3, scale_ties)
    m, e = np.frexp(s)  # s = (2m) * 2^(e-1), 2m in {1, 1.25, 1.5, 1.75}
    scode = ((e - 1 + 48) << 2) | (np.ldexp(m, 3).astype(np.int64) - 4)
    r = _round_sig(1.0 / s, 8, "even")  # 1/s is far from 2^-1074 and 2^1024: normal binary64
    d8 = (v8 * r[:, None] >= 4).astype(np.int64)
    d8x = np.repeat(d8, 2, axis=1)
    d16 = (np.ldexp(v16 * r[:, None], -d8x) >= 2).astype(np.int64)
    d = np.repeat(d16 + d8x, 4, axis=1)
    t = np.ldexp(mag * r[:, None], 2 - d)
    q = np.floor(t + 0.5) if elem_ties == "away" else np.rint(t)
    q = np.minimum(q, 7).astype(np.uint8)
    neg = (xs < 0) & ~bad[:, None]
    codes = np.where(neg, q | 8, q).astype(np.uint8)
    codes[bad] = 0
    scode = np.where(bad, SCALE_NAN, scode).astype(np.uint8)
    w8 = (d8 << np.arange(7, -1, -1)).sum(axis=1)
    w16 = (d16 << np.arange(15, -1, -1)).sum(axis=1)
    w8 = np.where(bad, 0, w8).astype(np.uint8)
    w16 = np.where(bad, 0, w16).astype(np.uint16)

    def per_unit(v):
        return np.moveaxis(v.reshape(*lead, nu), -1, axis)

    return (per_unit(scode), per_unit(w8), per_unit(w16),
            np.moveaxis(codes.reshape(*lead, nu * UNIT), -1, axis))


def _torch_quantize(x, axis: int, scale_ties: str, elem_ties: str):
    """:func:`hif4_quantize` on a torch float32 tensor (results as torch tensors: uint8, uint8, int32 words of 16
    bits, uint8 codes)."""
    import torch

    _check_ties(scale_ties, elem_ties)
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float32:
        raise BadValueError("the torch HiF4 kernel takes a float32 tensor")
    if x.dim() == 0:
        raise BadValueError("HiF4 quantization needs an array with at least one dimension")
    a = torch.movedim(x, axis, -1)
    if a.shape[-1] % UNIT:
        raise BadValueError(f"HiF4 quantizes units of {UNIT} elements along the axis; its length {a.shape[-1]} "
                            f"is not a multiple of {UNIT}")
    lead = tuple(a.shape[:-1])
    nu = a.shape[-1] // UNIT
    xs = a.reshape(-1, UNIT)
    mag = xs.to(torch.float64).abs()
    bad = ~torch.isfinite(mag).all(dim=1)
    mag = torch.where(bad[:, None], torch.zeros_like(mag), mag)

    def rsig(v, bits, ties):
        m, e = torch.frexp(v)
        t = m * float(1 << bits)
        n = torch.floor(t + 0.5) if ties == "away" else torch.round(t)
        return n * torch.pow(2.0, (e - bits).to(torch.float64))

    v16 = mag.reshape(-1, 16, 4).amax(dim=2)
    v8 = v16.reshape(-1, 8, 2).amax(dim=2)
    vmax = v8.amax(dim=1)
    p = vmax * _C7
    sf = torch.where(p > 0, rsig(torch.where(p > 0, p, torch.ones_like(p)), 8, "even"), torch.zeros_like(p))
    s = rsig(sf.clamp(2.0 ** -48, 49152.0), 3, scale_ties)
    m, e = torch.frexp(s)
    scode = ((e.to(torch.int64) - 1 + 48) << 2) | ((m * 8).to(torch.int64) - 4)
    r = rsig(1.0 / s, 8, "even")
    d8 = (v8 * r[:, None] >= 4).to(torch.int64)
    d8x = d8.repeat_interleave(2, dim=1)
    d16 = (v16 * r[:, None] * torch.pow(2.0, -d8x.to(torch.float64)) >= 2).to(torch.int64)
    d = (d16 + d8x).repeat_interleave(4, dim=1)
    t = mag * r[:, None] * torch.pow(2.0, (2 - d).to(torch.float64))
    q = torch.floor(t + 0.5) if elem_ties == "away" else torch.round(t)
    q = q.clamp(max=7).to(torch.int64)
    neg = (xs < 0) & ~bad[:, None]
    codes = torch.where(neg, q | 8, q)
    codes = torch.where(bad[:, None], torch.zeros_like(codes), codes).to(torch.uint8)
    scode = torch.where(bad, torch.full_like(scode, SCALE_NAN), scode).to(torch.uint8)
    w8 = (d8 << torch.arange(7, -1, -1)).sum(dim=1)
    w16 = (d16 << torch.arange(15, -1, -1)).sum(dim=1)
    w8 = torch.where(bad, torch.zeros_like(w8), w8).to(torch.uint8)
    w16 = torch.where(bad, torch.zeros_like(w16), w16).to(torch.int32)

    def per_unit(v):
        return torch.movedim(v.reshape(*lead, nu), -1, axis)

    return per_unit(scode), per_unit(w8), per_unit(w16), torch.movedim(codes.reshape(*lead, nu * UNIT), -1, axis)


def hif4_dequantize(scale, d8, d16, codes, axis: int = -1) -> np.ndarray:
    """float32 values of HiF4 units (as :func:`hif4_quantize` returns them): S * 2^(d8 + d16) * q/4 with the
    code's sign (exact in binary32); NaN for every element of a unit with the NaN scale."""
    c = np.moveaxis(np.asarray(codes), axis, -1)
    lead = c.shape[:-1]
    cu = c.reshape(-1, UNIT).astype(np.int64)
    sc = np.moveaxis(np.asarray(scale), axis, -1).reshape(-1).astype(np.int64)
    w8 = np.moveaxis(np.asarray(d8), axis, -1).reshape(-1).astype(np.int64)
    w16 = np.moveaxis(np.asarray(d16), axis, -1).reshape(-1).astype(np.int64)
    b8 = (w8[:, None] >> np.arange(7, -1, -1)) & 1
    b16 = (w16[:, None] >> np.arange(15, -1, -1)) & 1
    d = np.repeat(b16 + np.repeat(b8, 2, axis=1), 4, axis=1)
    s = np.ldexp((4 + (sc & 3)).astype(np.float64), (sc >> 2) - 48 - 2)
    mag = np.ldexp(s[:, None] * (cu & 7), d - 2)
    v = np.where((cu & 8) != 0, -mag, mag)
    v = np.where((sc == SCALE_NAN)[:, None], np.nan, v).astype(np.float32)
    return np.moveaxis(v.reshape(*lead, c.shape[-1]), -1, axis)


def hif4_fake_quantize(x, axis: int = -1, scale_ties: str = "even", elem_ties: str = "away",
                       backend: str = "numpy") -> np.ndarray:
    """float32 values of ``x`` HiF4-quantized along ``axis`` and dequantized (the reference's quant-dequant); a
    torch tensor for ``backend="torch"``."""
    parts = hif4_quantize(x, axis, scale_ties, elem_ties, backend)
    if backend == "torch":
        return _torch_dequantize(*parts, axis=axis)
    return hif4_dequantize(*parts, axis=axis)


def _torch_dequantize(scale, d8, d16, codes, axis: int = -1):
    """:func:`hif4_dequantize` in torch operations (float32 tensor)."""
    import torch

    c = torch.movedim(codes, axis, -1)
    lead = tuple(c.shape[:-1])
    cu = c.reshape(-1, UNIT).to(torch.int64)
    sc = torch.movedim(scale, axis, -1).reshape(-1).to(torch.int64)
    w8 = torch.movedim(d8, axis, -1).reshape(-1).to(torch.int64)
    w16 = torch.movedim(d16, axis, -1).reshape(-1).to(torch.int64)
    b8 = (w8[:, None] >> torch.arange(7, -1, -1)) & 1
    b16 = (w16[:, None] >> torch.arange(15, -1, -1)) & 1
    d = (b16 + b8.repeat_interleave(2, dim=1)).repeat_interleave(4, dim=1)
    s = (4 + (sc & 3)).to(torch.float64) * torch.pow(2.0, ((sc >> 2) - 50).to(torch.float64))
    mag = s[:, None] * (cu & 7).to(torch.float64) * torch.pow(2.0, (d - 2).to(torch.float64))
    v = torch.where((cu & 8) != 0, -mag, mag)
    v = torch.where((sc == SCALE_NAN)[:, None], torch.full_like(v, float("nan")), v).to(torch.float32)
    return torch.movedim(v.reshape(*lead, c.shape[-1]), -1, axis)


__all__ = ["hif4_dequantize", "hif4_fake_quantize", "hif4_quantize"]
