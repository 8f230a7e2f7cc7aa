"""Integer quantization, vectorized with numpy; same codes as :mod:`refarith.exact.intquant`.

Scales: single binary32 operations (numpy rounds them to nearest even, as the
exact model's ``fl``).  Codes: the quotient x / s is formed in binary64 and
rounded to an integer there.  That decides the rounding of the EXACT quotient:
with x = X 2^a and s = S 2^b (X, S < 2^24), a non-zero distance from x / s to a
half-integer k + 1/2 is at least 2^(min(a, b-1) - b - 24) >= 2^-25 when
|x / s| >= 1/2 (then a >= b - 25), far above the binary64 error |q| 2^-53 for
|q| < 2^20, and an exact half-integer quotient (|q| < 2^20) is a binary64
number, so the division returns it exactly; quotients beyond 2^20 saturate for
every width here.  For |x / s| < 1/2 no rounding boundary is near.
"""

from __future__ import annotations

import numpy as np

from refarith.errors import BadValueError, SpecialValueError
from refarith.exact.intquant import GRANULARITIES, check_params


def _round(q: np.ndarray, rounding: str) -> np.ndarray:
    q = np.clip(q, -(2.0 ** 20), 2.0 ** 20)
    if rounding == "rne":
        return np.rint(q)
    return np.sign(q) * np.floor(np.abs(q) + 0.5)


def check_layout(ndim: int, granularity: str, axis: int, group: int) -> int:
    """The normalized axis; BadValueError for an unknown granularity, a 0-d input, an axis out of range or (group
    granularity) a group size that is not a positive integer."""
    if granularity not in GRANULARITIES:
        raise BadValueError(f"unknown granularity {granularity!r}; expected one of {', '.join(GRANULARITIES)}")
    if ndim == 0:
        raise BadValueError("integer quantization needs an array with at least one dimension")
    if not -ndim <= axis < ndim:
        raise BadValueError(f"axis {axis} out of range for an array of {ndim} dimensions")
    if granularity == "group" and (isinstance(group, bool) or not isinstance(group, int) or group < 1):
        raise BadValueError(f"group size must be a positive integer, got {group!r}")
    return axis % ndim


def groups(x: np.ndarray, granularity: str, axis: int, group: int):
    """(G, n) float32 groups (zero padded) and the information to undo it."""
    x = np.asarray(x, dtype=np.float32)
    axis = check_layout(x.ndim, granularity, axis, group)
    if granularity == "tensor":
        return x.reshape(1, -1), (x.shape, axis)
    a = np.moveaxis(x, axis, -1 if granularity == "group" else 0)
    if granularity == "channel":
        return a.reshape(a.shape[0], -1), (a.shape, axis)
    n = a.shape[-1]
    ng = -(-n // group)
    a2 = a.reshape(-1, n)
    if ng * group != n:
        a2 = np.concatenate([a2, np.zeros((a2.shape[0], ng * group - n), np.float32)], axis=1)
    return a2.reshape(-1, group), (a.shape, axis)


def ungroup(q: np.ndarray, info, granularity: str, group: int) -> np.ndarray:
    shape, axis = info
    if granularity == "tensor":
        return q.reshape(shape)
    if granularity == "channel":
        return np.moveaxis(q.reshape(shape), 0, axis)
    n = shape[-1]
    return np.moveaxis(q.reshape(-1, q.size // int(np.prod(shape[:-1], dtype=np.int64)))[:, :n].reshape(shape),
                       -1, axis)


def quantize(x, bits: int, scheme: str = "symmetric", granularity: str = "tensor", group: int = 128,
             clip: str = "symmetric", rounding: str = "rne", axis: int = -1):
    """(scales float32 per group, zero points int32 per group, codes int8/int16 shaped like x)."""
    check_params(bits, scheme, clip, rounding)
    g, info = groups(x, granularity, axis, group)
    if not np.isfinite(g).all():
        raise SpecialValueError("integer quantization: NaN and infinity have no integer code")
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if scheme == "symmetric":
        amax = np.abs(g).max(axis=1)
        den = np.float32(qmax) if clip == "symmetric" else np.float32(qmax + 0.5)
        s = amax / den
        s = np.where(s == 0, np.float32(1), s).astype(np.float32)
        q = _round(g.astype(np.float64) / s.astype(np.float64)[:, None], rounding)
        lo = -qmax if clip == "symmetric" else qmin
        q = np.clip(q, lo, qmax)
        z = np.zeros(s.shape, np.int32)
    else:
        lo_v = np.minimum(g.min(axis=1), np.float32(0))
        hi_v = np.maximum(g.max(axis=1), np.float32(0))
        with np.errstate(over="ignore"):
            rng = hi_v - lo_v
        if not np.isfinite(rng).all():
            raise BadValueError("asymmetric quantization: the range max - min of a group overflows binary32 "
                                "(the scale would be infinite)")
        s = rng / np.float32(qmax - qmin)
        s = np.where(s == 0, np.float32(1), s).astype(np.float32)
        s64 = s.astype(np.float64)
        z = np.clip(qmin - _round(lo_v.astype(np.float64) / s64, rounding), qmin, qmax).astype(np.int32)
        q = np.clip(_round(g.astype(np.float64) / s64[:, None], rounding) + z[:, None], qmin, qmax)
    dt = np.int16 if bits == 16 else np.int8
    return s, z, ungroup(q.astype(dt), info, granularity, group)


def dequantize(scales, zero_points, codes, granularity: str = "tensor", group: int = 128, axis: int = -1):
    """float32 fl((q - z) * s): the product is exact in binary64, then rounded once."""
    c = np.asarray(codes)
    g, info = groups(c.astype(np.float32), granularity, axis, group)
    v = (g.astype(np.float64) - np.asarray(zero_points, np.float64)[:, None]) * \
        np.asarray(scales, np.float64)[:, None]
    return ungroup(v.astype(np.float32), info, granularity, group)


# ------------------------------------------------------------------ torch
def _torch_groups(x, granularity: str, axis: int, group: int):
    """The torch form of :func:`groups`: (G, n) float32 groups (zero padded) and what undoes it."""
    import torch

    axis = check_layout(x.dim(), granularity, axis, group)
    x = x.to(torch.float32)
    if granularity == "tensor":
        return x.reshape(1, -1), (tuple(x.shape), axis)
    a = torch.movedim(x, axis, -1 if granularity == "group" else 0)
    if granularity == "channel":
        return a.reshape(a.shape[0], -1), (tuple(a.shape), axis)
    n = a.shape[-1]
    ng = -(-n // group)
    a2 = a.reshape(-1, n)
    if ng * group != n:
        a2 = torch.nn.functional.pad(a2, (0, ng * group - n))
    return a2.reshape(-1, group), (tuple(a.shape), axis)


def _torch_ungroup(q, info, granularity: str):
    import torch

    shape, axis = info
    if granularity == "tensor":
        return q.reshape(shape)
    if granularity == "channel":
        return torch.movedim(q.reshape(shape), 0, axis)
    n = shape[-1]
    rows = q.numel() // (int(np.prod(shape[:-1], dtype=np.int64)) or 1)
    return torch.movedim(q.reshape(-1, rows)[:, :n].reshape(shape), -1, axis)


def _torch_round(q, rounding: str):
    import torch

    q = torch.clamp(q, -(2.0 ** 20), 2.0 ** 20)
    if rounding == "rne":
        return torch.round(q)  # half to even
    return torch.sign(q) * torch.floor(torch.abs(q) + 0.5)


def quantize_torch(x, bits: int, scheme: str = "symmetric", granularity: str = "tensor", group: int = 128,
                   clip: str = "symmetric", rounding: str = "rne", axis: int = -1):
    """:func:`quantize` on a torch tensor, on its device: the same scales, zero points and codes.

    The binary32 scale operations run on integers (:func:`refarith.fast.mx.f32_div` and friends), so they do
    not depend on a device's float unit; the quotient x / s is formed in binary64 (IEEE division on every
    torch device) and rounded there, as in the numpy kernel.
    """
    import torch

    from refarith.fast.mx import f32_div, ops

    check_params(bits, scheme, clip, rounding)
    xp = ops("torch")
    g, info = _torch_groups(x, granularity, axis, group)
    if not torch.isfinite(g).all():
        raise SpecialValueError("integer quantization: NaN and infinity have no integer code")
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def bits_of(v: float):
        return torch.tensor(int(np.array(v, np.float32).view(np.int32)), dtype=torch.int32, device=g.device)

    def as_f32(b):
        return b.view(torch.float32)

    if scheme == "symmetric":
        amax = torch.amax(torch.abs(g), dim=1)
        den = float(qmax) if clip == "symmetric" else qmax + 0.5
        sb = f32_div(amax.contiguous().view(torch.int32), bits_of(den), xp)
        sb = torch.where(sb == 0, bits_of(1.0), sb)
        s = as_f32(sb)
        q = _torch_round(g.to(torch.float64) / s.to(torch.float64)[:, None], rounding)
        lo = -qmax if clip == "symmetric" else qmin
        q = torch.clamp(q, lo, qmax)
        z = torch.zeros(s.shape, dtype=torch.int32, device=g.device)
    else:
        lo_v = torch.clamp(torch.amin(g, dim=1), max=0.0)
        hi_v = torch.clamp(torch.amax(g, dim=1), min=0.0)
        # hi - lo = |hi| + |lo| (signs differ or one is zero): one correctly rounded binary32 addition
        from refarith.fast.mx import f32_add_magnitudes

        rb = f32_add_magnitudes(hi_v.contiguous().view(torch.int32), lo_v.contiguous().view(torch.int32), xp)
        if ((rb & 0x7FFFFFFF) >= 0x7F800000).any():
            raise BadValueError("asymmetric quantization: the range max - min of a group overflows binary32 "
                                "(the scale would be infinite)")
        sb = f32_div(rb, bits_of(float(qmax - qmin)), xp)
        sb = torch.where(sb == 0, bits_of(1.0), sb)
        s = as_f32(sb)
        s64 = s.to(torch.float64)
        z = torch.clamp(qmin - _torch_round(lo_v.to(torch.float64) / s64, rounding), qmin, qmax).to(torch.int32)
        q = torch.clamp(_torch_round(g.to(torch.float64) / s64[:, None], rounding) + z[:, None], qmin, qmax)
    dt = torch.int16 if bits == 16 else torch.int8
    return s, z, _torch_ungroup(q.to(dt), info, granularity)
