"""Per-tensor FP8 scaling (Transformer Engine current and delayed scaling), vectorized (numpy and torch); the
same bits as :mod:`refarith.exact.fp8scale`.

Every scale operation is one IEEE binary32 operation (numpy and torch round it to nearest even, no flush to zero);
the FP8 cast is :func:`refarith.fast.encode` (RNE, saturating).  Each row of a 2-D input is one tensor.
"""

from __future__ import annotations

import numpy as np

from refarith.errors import BadValueError
from refarith.exact import fp8scale as _e


def _xp(backend: str):
    if backend == "numpy":
        return None
    if backend == "torch":
        import torch

        return torch
    raise BadValueError(f"unknown backend {backend!r}; expected numpy or torch")


def _f32(bits: int) -> float:
    return float(np.array([bits], np.uint32).view(np.float32)[0])


def _pow2(s, t):
    if t is None:
        return (s.view(np.uint32) & np.uint32(0xFF800000)).view(np.float32)
    return (s.view(t.int32) & t.tensor(-8388608, dtype=t.int32)).view(t.float32)  # 0xFF800000 as int32


def fmax_amax(x, backend: str = "numpy"):
    """Per row: max |x| with NaN ignored, from +0 (fmaxf)."""
    t = _xp(backend)
    if t is None:
        return np.fmax.reduce(np.abs(x), axis=-1, initial=np.float32(0)).astype(np.float32)
    a = x.abs()
    return t.where(t.isnan(a), t.zeros_like(a), a).amax(dim=-1)


def current_scale(amax, fmt: str, eps: float = 0.0, pow2: bool = False, backend: str = "numpy"):
    """compute_scale_from_amax per element of ``amax`` (binary32)."""
    t = _xp(backend)
    fmax = _f32(_e.fp8_max_bits(fmt))
    if t is None:
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            a = np.where(amax < np.float32(eps), np.float32(eps), amax).astype(np.float32)
            s = np.float32(fmax) / a
            s = np.where(np.isinf(s), np.float32(_f32(_e.F32_MAX)), s)
            s = np.where(np.isinf(a) | (a == 0) | np.isnan(a), np.float32(1), s).astype(np.float32)
        return _pow2(s, None) if pow2 else s
    e = t.tensor(eps, dtype=t.float32, device=amax.device)
    a = t.where(amax < e, e, amax)
    s = t.tensor(fmax, dtype=t.float32, device=amax.device) / a
    s = t.where(t.isinf(s), t.tensor(_f32(_e.F32_MAX), dtype=t.float32, device=a.device), s)
    s = t.where(t.isinf(a) | (a == 0) | t.isnan(a), t.ones_like(s), s)
    return _pow2(s, t) if pow2 else s


def delayed_scale(history, prev_scale, fmt: str, algo: str = "max", margin: int = 0, bad_history: str = "error",
                  backend: str = "numpy"):
    """amax_and_scale_update's scale per row of ``history`` (rows, h), index 0 the most recent entry."""
    t = _xp(backend)
    if algo not in _e.ALGOS:
        raise BadValueError(f"unknown amax algorithm {algo!r}; expected one of {', '.join(_e.ALGOS)}")
    hn = history if t is None else history.cpu().numpy()
    pn = prev_scale if t is None else prev_scale.cpu().numpy()
    if hn.shape[-1] == 0:
        raise BadValueError("amax history is empty; delayed scaling needs at least one recorded amax")
    if bad_history == "error":
        bad = ~np.isfinite(hn) | (hn < 0)
        if bad.any():
            r, i = map(int, np.argwhere(bad)[0])
            _e.check_history(hn[r].view(np.uint32).tolist(), int(np.float32(pn[r]).view(np.uint32)))
        badp = ~np.isfinite(pn) | ~(pn > 0)
        if badp.any():
            r = int(np.flatnonzero(badp)[0])
            _e.check_history([0], int(np.float32(pn[r]).view(np.uint32)))
    scaled_max = _f32(_e.fp8_max_bits(fmt)) * 2.0 ** -margin  # exact in binary64; rounded once below
    if t is None:
        sm = np.float32(scaled_max)
        amax = history[:, 0] if algo == "most_recent" else np.fmax.reduce(history, axis=-1, initial=np.float32(0))
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            s = (sm / amax).astype(np.float32)
        return np.where(np.isfinite(amax) & (amax > 0), s, prev_scale).astype(np.float32)
    sm = t.tensor(scaled_max, dtype=t.float64).to(t.float32).to(history.device)
    if algo == "most_recent":
        amax = history[:, 0]
    else:
        amax = t.where(t.isnan(history), t.zeros_like(history), history).amax(dim=-1).clamp_min(0)
    s = sm / amax
    return t.where(t.isfinite(amax) & (amax > 0), s, prev_scale)


def quantize_with_scale(x, scale, fmt: str, backend: str = "numpy"):
    """cast_F(fl(x * scale)) per row (scale: one binary32 per row)."""
    from refarith import fast

    # an invalid product (0 * inf, when the scale overflowed) is the positive default NaN of IEEE 754 / CUDA
    # (x86 would give a negative one); a NaN x keeps its sign
    if backend == "numpy":
        with np.errstate(over="ignore", invalid="ignore"):
            y = (x * scale[..., None]).astype(np.float32)
        y = np.where(np.isnan(y) & ~np.isnan(x), np.float32(np.nan), y)
    else:
        import torch

        y = x * scale[..., None]
        y = torch.where(torch.isnan(y) & ~torch.isnan(x), torch.tensor(float("nan"), device=y.device).abs(), y)
    return fast.encode(y, fmt, "rne", "saturate", backend=backend)


def reciprocal(s, backend: str = "numpy"):
    """fl(1 / s)."""
    if backend == "numpy":
        with np.errstate(divide="ignore"):
            return (np.float32(1) / s).astype(np.float32)
    return 1 / s
