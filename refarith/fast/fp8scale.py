"""Per-tensor FP8 scaling (Transformer Engine current and delayed scaling), vectorized (numpy and torch); the
same bits as :mod:`refarith.exact.fp8scale`.

Every scale operation is one IEEE binary32 operation (numpy and torch round it to nearest even, no flush to zero);
the FP8 cast is :func:`refarith.fast.encode` (RNE, saturating).  Each row of a 2-D input is one tensor.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from refarith.errors import BadValueError
from refarith.exact import fp8scale as _e

_BLOCK = 1 << 16  # elements per block of scaled_codes: the product (keyed in place) and its low halves stay in L2


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


def tile_amax(a: np.ndarray, tr: int, tc: int) -> np.ndarray:
    """max |x| per tr x tc tile of a 2-D binary32 array (shape (rows / tr, cols / tc)), the quiet NaN 0x7fc00000
    when the tile holds a NaN, +0 for a tile of zeros.

    |x| as its bits u & 0x7fffffff, maximized as unsigned integers: on non-negative patterns the integer order is
    the order of the values, and every NaN pattern lies above +inf (0x7f800000), so a tile with a NaN has a NaN
    maximum, which becomes the quiet NaN (as the exact model's and the torch path's; the maximum's payload
    depends on the tile).  The bits are formed on cache-sized blocks (one pass over x, integer reductions); a
    tile larger than a block is reduced in column chunks."""
    rows, cols = a.shape
    u = a.view(np.uint32)
    mx = np.zeros((rows // tr, cols // tc), np.uint32)
    if tr * tc > _BLOCK:  # chunks of one tile's columns, tr rows at a time
        rs, cs = tr, max(1, _BLOCK // tr)
    else:
        cs = cols if cols * tr <= _BLOCK else tc * (_BLOCK // (tr * tc))
        rs = tr * max(1, _BLOCK // (cs * tr))
    buf = np.empty(rs * min(cs, cols), np.uint32)
    for r0 in range(0, rows, rs):
        r1 = min(r0 + rs, rows)
        kr = (r1 - r0) // tr
        c1 = 0
        while c1 < cols:
            c0, c1 = c1, min(c1 + cs, cols if cs >= tc else (c1 // tc + 1) * tc)
            w = c1 - c0
            b = buf[:(r1 - r0) * w].reshape(r1 - r0, w)
            np.bitwise_and(u[r0:r1, c0:c1], np.uint32(0x7FFFFFFF), out=b)
            if cs < tc:  # part of one tile column
                j = c0 // tc
                m = np.maximum.reduce(b.reshape(kr, tr * w), axis=1)
                np.maximum(mx[r0 // tr:r1 // tr, j], m, out=mx[r0 // tr:r1 // tr, j])
                continue
            m = np.maximum.reduce(b.reshape(kr, tr, w // tc, tc), axis=3)  # (kr, tr, kc)
            mx[r0 // tr:r1 // tr, c0 // tc:c1 // tc] = np.maximum.reduce(m, axis=1) if tr > 1 else m[:, 0, :]
    return np.where(mx > np.uint32(0x7F800000), np.uint32(0x7FC00000), mx).view(np.float32)


def fmax_amax(x, backend: str = "numpy"):
    """Per row: max |x| with NaN ignored, from +0 (fmaxf)."""
    t = _xp(backend)
    if t is None:
        a = np.asarray(x, dtype=np.float32)
        if a.ndim != 2:  # the rows of any other shape as one 2-D array
            return fmax_amax(a.reshape(math.prod(a.shape[:-1]), a.shape[-1])).reshape(a.shape[:-1])
        if a.shape[1] == 0:
            return np.zeros(a.shape[0], np.float32)
        # one pass (tile_amax: |x| bits, integer maxima); a row holding a NaN (a NaN maximum) is redone with its NaN
        # bits replaced by +0.  (numpy's fmax/fmin reductions do not ignore a signaling NaN: the reduction drops
        # what it had accumulated before it, so they are not used.)
        amax = tile_amax(a, 1, a.shape[1])[:, 0]
        nan = np.isnan(amax)
        if nan.any():
            b = a[nan].view(np.uint32) & np.uint32(0x7FFFFFFF)
            b[b > np.uint32(0x7F800000)] = 0
            amax[nan] = np.maximum.reduce(b, axis=1).view(np.float32)
        return amax
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
        # fmaxf from +0, NaN ignored: NaN entries as +0 and a propagating maximum (numpy's fmax reduction does not
        # ignore a signaling NaN)
        amax = history[:, 0] if algo == "most_recent" else np.maximum.reduce(
            np.where(np.isnan(history), np.float32(0), history), axis=-1, initial=np.float32(0))
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
    if backend == "numpy" and _rows_with_scales(x, scale):
        # every scale finite and nonzero: fl(x * s) is NaN only where x is, so the product and the cast fuse
        # blockwise
        return scaled_codes(x, scale.reshape(-1, 1), fmt)
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


def _rows_with_scales(x, scale) -> bool:
    """x a 2-D binary32 array and scale one finite nonzero binary32 per row (no 0 * inf in the product)."""
    return (isinstance(x, np.ndarray) and isinstance(scale, np.ndarray) and x.dtype == np.float32
            and scale.dtype == np.float32 and x.ndim == 2 and scale.shape == (x.shape[0],)
            and bool((np.isfinite(scale) & (scale != 0)).all()))


@functools.lru_cache(maxsize=8)
def _key_codes(fmt: str, nan_code: int | None) -> np.ndarray:
    """The sticky-key table :func:`refarith.fast.encode` casts binary32 into ``fmt`` with (RNE, saturating): the
    same table, so the same codes; with ``nan_code``, every NaN key maps to that code instead."""
    from refarith.exact.rounding import default_negative
    from refarith.fast.bitops import NumpyBitOps
    from refarith.fast.cast import key_table
    from refarith.fast.castkernel import key_representative
    from refarith.formats import get_format

    dst = get_format(fmt)
    tab, _, has_err = key_table(dst, "rne", "saturate", "error", default_negative(dst))
    if has_err:  # a saturating cast into an FP8 format with NaN has no error entry
        raise BadValueError(f"{fmt}: the saturating RNE cast has error entries; scaled_codes needs a total cast")
    if nan_code is None:
        return tab
    reps = key_representative(NumpyBitOps(32), np.arange(1 << 17, dtype=np.uint32))
    out = tab.copy()
    out[np.isnan(reps.astype(np.uint32).view(np.float32))] = nan_code
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=8)
def _cast_table(fmt: str, nan_code: int | None) -> tuple[np.ndarray, np.uint32, int]:
    """(table, c, shift): the codes are table[(u | ((u & c) + c)) >> shift] for binary32 patterns u.  The 2^16-entry
    table of :func:`refarith.fast.cast._key16_table` (key hi16 | [lo16 != 0], c = 0xFFFF, shift 16) where the cast is
    a function of that key (every FP8 format: the rounding bit lies at bit 17 or above), else the sticky-key table
    of :func:`_key_codes` (c = 0x7FFF, shift 15)."""
    from refarith.fast.cast import _key16_table

    tab = _key_codes(fmt, nan_code)
    t16 = _key16_table(tab)
    if t16 is not None:
        return t16, np.uint32(0xFFFF), 16
    return tab, np.uint32(0x7FFF), 15


def scaled_codes(x: np.ndarray, mult: np.ndarray, fmt: str, tile: tuple[int, int] = (1, 1), divide: bool = False,
                 nan_code: int | None = None) -> np.ndarray:
    """uint8 codes of cast_fmt(fl(x * m)) (``divide``: fl(x / m)) for a 2-D binary32 array ``x``, every operation
    one binary32 operation (RNE), the cast RNE and saturating, i.e. :func:`refarith.fast.encode` of the product.

    ``mult`` holds one binary32 multiplier per ``tile`` = (tr, tc) block of x, shape (rows / tr, cols / tc), or
    (rows / tr, 1) for one per row block.  ``nan_code``: the code of every NaN product (else NaN keeps its sign,
    as the cast gives it).  The product, its key and the table lookup run on cache-sized blocks of x, so no
    temporary grows with x; the key is computed in place in the product's buffer and indexes encode's own table
    (:func:`_cast_table`; ``take`` reads the uint32 keys directly, as fast as intp ones in numpy 2).
    """
    rows, cols = x.shape
    tr, tc = tile
    per_row = mult.shape[1] == 1
    out = np.empty((rows, cols), np.uint8)
    if out.size == 0:
        return out
    if cols * tr <= _BLOCK:
        rs, cs = tr * max(1, _BLOCK // (cols * tr)), cols
    else:
        rs, cs = tr, max(1, _BLOCK // tr) if per_row else tc * max(1, _BLOCK // (tr * tc))
    tab, c, sh = _cast_table(fmt, nan_code)
    size = rs * cs
    y = np.empty(size, np.float32)
    key = np.empty(size, np.uint32)
    op = np.divide if divide else np.multiply
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for r0 in range(0, rows, rs):
            r1 = min(r0 + rs, rows)
            for c0 in range(0, cols, cs):
                c1 = min(c0 + cs, cols)
                n = (r1 - r0) * (c1 - c0)
                kr, kc = (r1 - r0) // tr, (1 if per_row else (c1 - c0) // tc)
                m = mult[r0 // tr:r1 // tr, :] if per_row else mult[r0 // tr:r1 // tr, c0 // tc:c1 // tc]
                yb = y[:n]
                op(x[r0:r1, c0:c1].reshape(kr, tr, kc, -1), m[:, None, :, None], out=yb.reshape(kr, tr, kc, -1))
                lookup_codes(yb, key[:n], tab, c, sh, out[r0:r1, c0:c1])
    return out


def lookup_codes(y: np.ndarray, key: np.ndarray, tab: np.ndarray, c: np.uint32, sh: int, out: np.ndarray) -> None:
    """out = the codes of the binary32 products ``y`` (1-D, overwritten) by :func:`_cast_table`'s (tab, c, sh):
    the key (u | ((u & c) + c)) >> sh computed in y's own buffer (``key``: scratch of y's size), then one
    lookup into ``out`` (a 2-D block of y's size: in place where it is contiguous, else numpy copies back)."""
    u = y.view(np.uint32)
    np.bitwise_and(u, c, out=key)
    np.add(key, c, out=key)
    np.bitwise_or(u, key, out=u)
    np.right_shift(u, sh, out=u)
    np.take(tab, u.reshape(out.shape), out=out, mode="clip")
