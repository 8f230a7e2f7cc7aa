"""Walsh-Hadamard rotations, vectorized (numpy and torch); the same bits as :mod:`refarith.exact.rotation`.

Values travel as binary32 arrays (bfloat16 values widened exactly; the torch kernel also takes and returns
``torch.bfloat16`` tensors).  Tiles of n consecutive elements of the last axis are rotated; a last axis that is
not a multiple of n is an error.

* ``order=sequential|butterfly``, ``acc=binary32``: every step is one IEEE binary32 operation, which numpy and
  torch round to nearest even as the exact model does (no flush to zero: torch kernels require
  ``torch.set_flush_denormal(False)``, the default).
* ``acc=bfloat16``: each binary32 sum is rounded to bfloat16 (RNE).  That equals one rounding of the exact sum:
  binary32 has 24 >= 2 * 8 + 2 significand bits, so double rounding is innocuous for + and - of bfloat16 values
  (Figueroa, "When is double rounding innocuous?", SIGNUM Newsletter 30(3), 1995), and below 2^-126 the sum of
  two multiples of 2^-133 is exact in binary32.  Products x * c are exact in binary32: x is a multiple of
  2^-133, c = fl_bf16(1/sqrt n) >= 2^-6 a multiple of 2^-13 with 8 significant bits.
* ``order=exact``: the butterfly in binary64 with a proven error bound E = (k + 3) 2^-53 (1 + 2^-50)
  sum_j |x_j| / sqrt n (k = log2 n stages, the product by fl64(1/sqrt n)); an element whose bracket
  [y - E, y + E] rounds to one code of F has that code (rounding is monotone); every other tile (zero and
  near-tie results, NaN/inf inputs) is computed by the exact model.  The torch kernel runs this on the CPU.
"""

from __future__ import annotations

import functools

import numpy as np

from refarith.errors import BadValueError
from refarith.exact import rotation as _rot


def _f32_to_bf16_np(x: np.ndarray) -> np.ndarray:
    """binary32 values rounded to bfloat16 (RNE, overflow to inf, NaN kept quiet), as binary32 values."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    r = (b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    r = np.where(np.isnan(x), (b | np.uint32(0x00400000)) & np.uint32(0xFFFF0000), r)
    return r.view(np.float32)


class _Np:
    name = "numpy"

    @staticmethod
    def bf16(x):
        return _f32_to_bf16_np(x)

    @staticmethod
    def stack(xs, axis):
        return np.stack(xs, axis=axis)

    @staticmethod
    def const(v, like):
        return np.float32(v)

    @staticmethod
    def isnan(x):
        return np.isnan(x)

    @staticmethod
    def where(c, a, b):
        return np.where(c, a, b)


class _Torch:
    name = "torch"

    def __init__(self) -> None:
        import torch

        self.t = torch

    def bf16(self, x):
        return x.to(self.t.bfloat16).to(self.t.float32)

    def stack(self, xs, axis):
        return self.t.stack(xs, dim=axis)

    def const(self, v, like):
        return self.t.tensor(v, dtype=self.t.float32, device=like.device)

    def isnan(self, x):
        return self.t.isnan(x)

    def where(self, c, a, b):
        return self.t.where(c, a, b)


def _xp(backend: str):
    if backend == "numpy":
        return _Np()
    if backend == "torch":
        return _Torch()
    raise BadValueError(f"unknown backend {backend!r}; expected numpy or torch")


@functools.lru_cache(maxsize=64)
def _matrix(n: int, d: tuple[int, ...]) -> np.ndarray:
    """H diag(d) as float32 +-1 entries: row i, column j = H_ij d_j (read-only, cached)."""
    h = np.array(_rot.sylvester(n), dtype=np.float32)
    m = h * np.array(d, dtype=np.float32)[None, :]
    m.setflags(write=False)
    return m


def _canonical_nan(y, fmt: str, xp):
    nan = np.uint32(0x7FC00000).view(np.float32)  # binary32 and bfloat16 canonical quiet NaN (0x7FC0 << 16)
    return xp.where(xp.isnan(y), xp.const(float(nan), y), y)


def _float_order(t, n: int, d, order: str, acc: str, norm: str, fmt: str, xp):
    """t: (rows, n) binary32 values; returns (rows, n)."""
    rnd = xp.bf16 if acc == "bfloat16" else (lambda v: v)
    c_code = _rot.round_q2(_rot.inv_sqrt(n), acc)
    c = float(np.array([c_code], np.uint32).view(np.float32)[0]) if acc == "binary32" else \
        float(np.array([c_code << 16], np.uint32).view(np.float32)[0])
    m = _matrix(n, d)
    if xp.name == "torch":
        m = xp.t.tensor(m, device=t.device)  # a copy: the cached matrix is read-only
    if order == "butterfly" and xp.name == "numpy" and acc == "binary32" and n >= 4:
        v = _butterfly_f32_np(t, n, d, c if norm == "after" else None)
        return _canonical_nan(xp.bf16(v), fmt, xp) if fmt == "bfloat16" else v
    if order == "butterfly":
        signs = m[0]  # row 0 of H diag(d) is d
        v = t * signs
        rows = v.shape[0]
        h = 1
        while h < n:
            v4 = v.reshape(rows, n // (2 * h), 2, h)
            a, b = v4[:, :, 0, :], v4[:, :, 1, :]
            v = xp.stack([rnd(a + b), rnd(a - b)], 2).reshape(rows, n)
            h *= 2
    else:
        cols = m if norm != "matrix" else m * xp.const(c, t)  # +-c exactly: c is a value of acc
        terms = [t[:, j:j + 1] * cols[:, j][None, :] for j in range(n)]
        if norm == "matrix":
            terms = [rnd(p) for p in terms]
        v = terms[0]
        for p in terms[1:]:
            v = rnd(v + p)
    if norm == "after":
        v = rnd(v * xp.const(c, v))
    if fmt == "bfloat16":
        v = xp.bf16(v)
    return _canonical_nan(v, fmt, xp)


_BUTTERFLY_BLOCK = 1 << 17  # elements of x per chunk of the numpy binary32 butterfly
_PANEL = 1 << 15  # elements per transposing copy


def _butterfly_f32_np(t: np.ndarray, n: int, d, c: float | None) -> np.ndarray:
    """The binary32 butterfly of every row of ``t`` (rows, n), n >= 4: y = H (d (.) x), times fl(c) at the end
    unless ``c`` is None; every NaN result the canonical quiet NaN.  The same binary32 operations, operand for
    operand, as the stage loop (pairs (i, i + h) for h = 1, 2, .., n/2: a + b into i, a - b into i + h).

    Rows are rotated C = _BUTTERFLY_BLOCK / n at a time in a buffer W[q, r, l] = x[r, 4q + l], filled by
    transposing 16-byte units (four values; complex128 copies, half the cost of moving single values).  Stage
    h = 1 pairs the even and odd values of W (two strided binary32 ufunc calls), h = 2 the even and odd complex64
    pairs (complex + and - are the binary32 + and - of the parts), and every h >= 4 the rows q and q + h/4 of W:
    contiguous runs of C * 4 values, where row-major order has runs of h.  The rows of W hold C + 4 units, so a
    transposing copy does not stride by a power of two (which maps every access to one set of the L1 cache)."""
    rows = t.shape[0]
    out = np.empty((rows, n), np.float32)
    if rows == 0:
        return out
    t = np.ascontiguousarray(t)
    q = n // 4
    cap = min(rows, max(1, _BUTTERFLY_BLOCK // n))
    pad = cap + 4
    bufs = (np.zeros(q * pad * 4, np.float32), np.zeros(q * pad * 4, np.float32))
    signs = None
    if any(v != 1 for v in d):  # d laid out as W: the value of row q, lane l on every unit of the row
        signs = np.ascontiguousarray(np.broadcast_to(np.array(d, np.float32).reshape(q, 1, 4), (q, pad, 4)))
        signs = signs.reshape(-1)
    nan = np.uint32(0x7FC00000).view(np.float32)
    tr = max(8, _PANEL // n)
    tu, ou = t.view(np.complex128), out.view(np.complex128)

    a, b = bufs  # the stages of a chunk of cap rows (a shorter last chunk leaves its tail columns unused)
    ac, bc = b.view(np.complex64), a.view(np.complex64)
    stages = [(a[0::2], a[1::2], b[0::2], b[1::2]), (ac[0::2], ac[1::2], bc[0::2], bc[1::2])]
    src, h = 0, 4
    while h < n:
        v4, w4 = (w.reshape(q, pad * 4)[:, :cap * 4].reshape(n // (2 * h), 2, h // 4, cap * 4)
                  for w in (bufs[src], bufs[1 - src]))
        stages.append((v4[:, 0], v4[:, 1], w4[:, 0], w4[:, 1]))
        src, h = 1 - src, h * 2
    res = bufs[src]
    res_units = res.view(np.complex128).reshape(q, pad)
    units = bufs[0].view(np.complex128).reshape(q, pad)
    for r0 in range(0, rows, cap):
        m = min(cap, rows - r0)
        for j in range(0, m, tr):
            k = min(j + tr, m)
            np.copyto(units[:, j:k], tu[r0 + j:r0 + k].T)
        if signs is not None:
            np.multiply(bufs[0], signs, out=bufs[0])
        for lo, hi, s, e in stages:
            np.add(lo, hi, out=s)
            np.subtract(lo, hi, out=e)
        if c is not None:
            np.multiply(res, np.float32(c), out=res)
        o = ou[r0:r0 + m]
        for j in range(0, m, tr):
            k = min(j + tr, m)
            np.copyto(o[j:k], res_units[:, j:k].T)
        of = out[r0:r0 + m]
        if not np.isfinite(np.add.reduce(of, axis=None)):  # a NaN (or an infinity) somewhere in the chunk
            np.copyto(of, nan, where=np.isnan(of))
    return out


def _exact_order_np(t: np.ndarray, n: int, d, norm: str, fmt: str, signs: str, seed: int) -> np.ndarray:
    from refarith.fast.gemm import round_to

    k = n.bit_length() - 1
    x = t.astype(np.float64) * np.array(d, np.float64)[None, :]
    v = x
    rows = v.shape[0]
    h = 1
    with np.errstate(invalid="ignore", over="ignore"):
        while h < n:
            v4 = v.reshape(rows, n // (2 * h), 2, h)
            v = np.stack([v4[:, :, 0, :] + v4[:, :, 1, :], v4[:, :, 0, :] - v4[:, :, 1, :]], 2).reshape(rows, n)
            h *= 2
        mass = np.abs(x).sum(axis=1, keepdims=True)
        c = 1.0 if norm == "fold" else 1.0 / np.sqrt(float(n))
        y = v * c
        e = (k + 3) * 2.0 ** -53 * (1 + 2.0 ** -50) * mass * c
        lo = np.nextafter(y - e, -np.inf)
        hi = np.nextafter(y + e, np.inf)
        if fmt == "binary32":
            rlo, rhi = lo.astype(np.float32), hi.astype(np.float32)
            ok = rlo.view(np.uint32) == rhi.view(np.uint32)
            out = rlo
        else:
            rlo, rhi = round_to(lo, "bfloat16"), round_to(hi, "bfloat16")
            ok = (rlo == rhi) & (np.signbit(rlo) == np.signbit(rhi))
            out = rlo.astype(np.float32)
    ok &= np.isfinite(y) & (y != 0)
    bad = np.flatnonzero(~ok.all(axis=1) | ~np.isfinite(mass[:, 0]))
    if bad.size:
        out = out.copy()
        for r in bad:
            if fmt == "binary32":
                codes = t[r].astype(np.float32).view(np.uint32).tolist()
                ys = _rot.rotate_exact(codes, fmt, n, signs, seed, norm)
                out[r] = np.array(ys, np.uint32).view(np.float32)
            else:
                codes = (t[r].astype(np.float32).view(np.uint32) >> 16).tolist()
                ys = _rot.rotate_exact(codes, fmt, n, signs, seed, norm)
                out[r] = (np.array(ys, np.uint32) << 16).view(np.float32)
    return out.astype(np.float32)


def hadamard_rotate(x, n: int = 16, signs: str = "none", seed: int = 0, order: str = "butterfly",
                    acc: str = "binary32", norm: str = "after", fmt: str = "binary32", backend: str = "numpy"):
    """Rotate every tile of ``n`` elements of the last axis of ``x`` (see the module docstring); the result has
    x's shape (numpy: float32; torch: the input dtype, float32 or bfloat16).  BadValueError for a size that is
    not a power of two, a last axis that does not tile, or an undefined combination of variants."""
    from refarith.errors import SpecError

    _rot.check_n(n)
    try:
        _rot.check_orders(order, norm, fmt, None if order == "exact" else acc)
    except SpecError as e:
        raise BadValueError(str(e)) from None
    if order == "exact" and norm == "matrix":
        raise BadValueError("order=exact takes norm=after or norm=fold")
    if fmt not in _rot.FORMATS:
        raise BadValueError(f"hadamard_rotate rotates binary32 or bfloat16 values, not {fmt}")
    d = _rot.sign_vector(n, signs, seed)
    xp = _xp(backend)
    if backend == "torch":
        in_dtype = x.dtype
        a = x.to(xp.t.float32)
    else:
        in_dtype = None
        a = np.asarray(x, dtype=np.float32)
    shape = tuple(a.shape)
    if not shape or shape[-1] % n:
        raise BadValueError(f"last axis of length {shape[-1] if shape else 0} does not tile into Hadamard blocks "
                            f"of {n}")
    if fmt == "bfloat16":
        chk = a if backend == "numpy" else a.cpu().numpy()
        if (np.ascontiguousarray(chk).view(np.uint32) & 0xFFFF).any():
            raise BadValueError("fmt=bfloat16: the input holds values that are not bfloat16 numbers")
    t = a.reshape(-1, n)
    if order == "exact":
        tn = t if backend == "numpy" else t.cpu().numpy()
        y = _exact_order_np(np.asarray(tn), n, d, norm, fmt, signs, seed)
        if backend == "torch":
            y = xp.t.from_numpy(y).to(a.device)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            y = _float_order(t, n, d, order, acc, norm, fmt, xp)
    y = y.reshape(shape)
    if backend == "torch" and in_dtype == xp.t.bfloat16:
        y = y.to(xp.t.bfloat16)
    return y
