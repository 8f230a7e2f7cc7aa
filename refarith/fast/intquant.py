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

from refarith.errors import BadValueError, SpecialValueError, UnknownModeError
from refarith.exact.intquant import GRANULARITIES, check_params
from refarith.fast.mx import _i64, ops, split_f32


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


def groups(x: np.ndarray, granularity: str, axis: int, group: int, dtype=np.float32):
    """(G, n) groups of ``dtype`` (float32 by default; zero padded) and the information to undo it."""
    x = np.asarray(x, dtype=dtype)
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
        a2 = np.concatenate([a2, np.zeros((a2.shape[0], ng * group - n), dtype)], axis=1)
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
             clip: str = "symmetric", rounding: str = "rne", axis: int = -1, *, rand=None,
             rand_bits: int | None = None, sr_variant: str = "a"):
    """(scales float32 per group, zero points int32 per group, codes int8/int16 shaped like x).
    ``rounding="sr"``: the quotient x[i] / s rounded stochastically with ``rand[i]`` (``rand`` of the shape of
    ``x``, k = ``rand_bits`` in 1..60, rule ``sr_variant``), as :func:`refarith.exact.intquant.quantize_group`
    rounds it (:func:`sr_magnitude`); the asymmetric zero point is rounded to nearest even."""
    _check_rounding(bits, scheme, clip, rounding, rand)
    g, info = groups(x, granularity, axis, group)
    if not np.isfinite(g).all():
        raise SpecialValueError("integer quantization: NaN and infinity have no integer code")
    sr = _sr_groups(x, rand, rand_bits, sr_variant, granularity, axis, group, "numpy") if rounding == "sr" else None
    if sr is not None:
        rounding = "rne"  # the zero point
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if scheme == "symmetric":
        amax = np.abs(g).max(axis=1)
        den = np.float32(qmax) if clip == "symmetric" else np.float32(qmax + 0.5)
        s = amax / den
        s = np.where(s == 0, np.float32(1), s).astype(np.float32)
        q = _quotient(g, s, rounding, sr)
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
        q = np.clip(_quotient(g, s, rounding, sr) + z[:, None], qmin, qmax)
    dt = np.int16 if bits == 16 else np.int8
    return s, z, ungroup(q.astype(dt), info, granularity, group)


def _check_rounding(bits: int, scheme: str, clip: str, rounding: str, rand) -> None:
    check_params(bits, scheme, clip, "rne" if rounding == "sr" else rounding)
    if rounding != "sr" and rand is not None:
        raise UnknownModeError(f"rand is given but rounding={rounding!r} is not stochastic (rounding='sr')")


def _sr_groups(x, rand, rand_bits, sr_variant: str, granularity: str, axis: int, group: int, backend: str):
    """(r grouped as the values, k, variant), the random bits checked by :func:`refarith.fast.blocksr.random_bits`."""
    from refarith.fast.blocksr import random_bits

    xp = ops(backend)
    r = random_bits(rand, tuple(x.shape), rand_bits, sr_variant, None, xp, x)
    if backend == "numpy":
        return groups(r, granularity, axis, group, np.int64)[0], rand_bits, sr_variant
    return _torch_groups(r, granularity, axis, group, xp.t.int64)[0], rand_bits, sr_variant


def _quotient(g, s, rounding: str, sr):
    """round(g / s) as float64 (numpy) with the per-group scales s; ``sr``: stochastically (:func:`sr_magnitude`)."""
    if sr is None:
        return _round(g.astype(np.float64) / s.astype(np.float64)[:, None], rounding)
    sb = np.ascontiguousarray(s, np.float32).view(np.int32)[:, None]
    m = sr_magnitude(np.ascontiguousarray(g).view(np.int32), sb, sr, ops("numpy"))
    return np.where(np.signbit(g), -m, m).astype(np.float64)


def dequantize(scales, zero_points, codes, granularity: str = "tensor", group: int = 128, axis: int = -1):
    """float32 fl((q - z) * s): the product is exact in binary64, then rounded once."""
    c = np.asarray(codes)
    g, info = groups(c.astype(np.float32), granularity, axis, group)
    v = (g.astype(np.float64) - np.asarray(zero_points, np.float64)[:, None]) * \
        np.asarray(scales, np.float64)[:, None]
    return ungroup(v.astype(np.float32), info, granularity, group)


# ------------------------------------------------------------------ torch
def _torch_groups(x, granularity: str, axis: int, group: int, dtype=None):
    """The torch form of :func:`groups`: (G, n) groups of ``dtype`` (float32 by default; zero padded) and what
    undoes it."""
    import torch

    axis = check_layout(x.dim(), granularity, axis, group)
    x = x.to(torch.float32 if dtype is None else dtype)
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
                   clip: str = "symmetric", rounding: str = "rne", axis: int = -1, *, rand=None,
                   rand_bits: int | None = None, sr_variant: str = "a"):
    """:func:`quantize` on a torch tensor, on its device: the same scales, zero points and codes (also under
    ``rounding="sr"``, with ``rand`` a tensor or array of the input's shape).

    The binary32 scale operations run on integers (:func:`refarith.fast.mx.f32_div` and friends), so they do
    not depend on a device's float unit; the quotient x / s is formed in binary64 (IEEE division on every
    torch device) and rounded there, as in the numpy kernel.
    """
    import torch

    from refarith.fast.mx import f32_div, ops

    _check_rounding(bits, scheme, clip, rounding, rand)
    xp = ops("torch")
    g, info = _torch_groups(x, granularity, axis, group)
    if not torch.isfinite(g).all():
        raise SpecialValueError("integer quantization: NaN and infinity have no integer code")
    sr = _sr_groups(x, rand, rand_bits, sr_variant, granularity, axis, group, "torch") if rounding == "sr" else None
    if sr is not None:
        rounding = "rne"  # the zero point

    def quotient(s):
        if sr is None:
            return _torch_round(g.to(torch.float64) / s.to(torch.float64)[:, None], rounding)
        m = sr_magnitude(g.contiguous().view(torch.int32), s.contiguous().view(torch.int32)[:, None], sr, xp)
        return torch.where(torch.signbit(g), -m, m).to(torch.float64)
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
        q = quotient(s)
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
        q = torch.clamp(quotient(s) + z[:, None], qmin, qmax)
    dt = torch.int16 if bits == 16 else torch.int8
    return s, z, _torch_ungroup(q.to(dt), info, granularity)


# ------------------------------------------------------------------ stochastic rounding
def _frac_bits(rem, den, u, xp):
    """(floor(rem * 2^u / den), whether a remainder is left) for 0 <= rem < den < 2^24 and 0 <= u <= 64
    (per element), by long division in 32-bit steps (int64 words)."""
    out = rem * 0
    for i in range(2):
        c = xp.minimum(xp.maximum(u - 32 * i, 0), 32)
        rem = rem << c
        out = (out << c) + rem // den
        rem = rem % den
    return out, rem != 0


def sr_magnitude(xbits, sbits, sr, xp):
    """Stochastically rounded magnitudes round_sr(|x / s|) (int64; :func:`refarith.exact.intquant.round_int`
    with ``rounding="sr"``) from binary32 bit patterns (int32) of x and of the positive scale s broadcasting
    against them, ``sr`` = (r, k, variant), r int64 below 2^k of x's shape.

    With x = X 2^a and s = S 2^b (X, S in [2^23, 2^24)) the quotient X 2^(a-b) / S is split exactly into
    n + (I + R/S) / 2^t with integers (n, I < 2^t, R < S); floor(frac * 2^L) and whether bits remain below it
    come from long division, L = k + 1 (k + j for ``te_e2m1_8``, j = 17 - bit length of n: half the binary32
    spacing below n + 1 is 2^-j / 256).  Quotients of 2^17 or more come back as 2^17: every width here
    saturates there, with any zero point.
    """
    r, k, variant = sr
    _, ex, xn = split_f32(xbits, xp)
    _, es, sn = split_f32(sbits, xp)
    xn, sn = _i64(xn, xp), _i64(sn, xp)
    e = _i64(ex, xp) - _i64(es, xp)
    big = (e > 17) & (xn != 0)  # X / S > 1/2, so the quotient is at least 2^17
    e = xp.minimum(e, 17)
    ep = xp.maximum(e, 0)
    t = xp.minimum(xp.maximum(-e, 0), 63)  # t > L + 1 leaves floor(frac 2^L) = 0
    num = xn << ep
    q0 = num // sn
    rem = num - q0 * sn
    n = q0 >> t
    imod = q0 - (n << t)  # e < 0: q0 = X // S is 0 or 1, its bits below 2^t belong to the fraction
    if variant == "te_e2m1_8":
        nbits = n * 0
        for b in range(17):
            nbits = nbits + xp.where(n >= (1 << b), n * 0 + 1, n * 0)
        L = k + xp.maximum(17 - nbits, 1)
    else:
        L = n * 0 + (k + 1)
    u = L - t
    f_hi, rest = _frac_bits(rem, sn, xp.maximum(u, 0), xp)
    drop = xp.minimum(xp.maximum(-u, 0), 40)
    f = xp.where(u >= 0, (imod << xp.maximum(u, 0)) + f_hi, imod >> drop)
    sticky = rest | ((imod & ((f * 0 + 1 << drop) - 1)) != 0)
    nonzero = (f != 0) | sticky
    one = f * 0 + 1
    if variant == "a":  # floor(frac 2^k) + r >= 2^k
        up = (f >> 1) + r >= 1 << k
    elif variant == "b":  # floor(frac 2^(k+1)) + 2r + 1 >= 2^(k+1)
        up = f + 2 * r + 1 >= 1 << (k + 1)
    elif variant in ("c", "c_odd"):  # RNITE / RNITO(frac 2^k) + r >= 2^k
        tk, half = f >> 1, (f & 1) == 1
        odd = (tk & 1) == (1 if variant == "c" else 0)
        up = tk + (half & (sticky | odd)) + r >= 1 << k
    elif variant == "te_e2m1_8":  # floor(frac 2^(k+j)) + r 2^j + 1 >= 2^(k+j)
        up = f + (r << (L - k)) + 1 >= one << L
    else:
        raise UnknownModeError(f"unknown stochastic rounding variant {variant!r}")
    m = n + (up & nonzero)
    return xp.where(big, one << 17, m)
