"""HiFloat8 encode, vectorized for numpy and torch (the rules of :mod:`refarith.exact.hifloat`).

The input is widened to binary64 exactly (binary32, binary16, bfloat16 and binary64 sources), and its magnitude is
placed by a binary search among the HiF8 magnitudes and their midpoints.  Every HiF8 value has at most 4
significant bits between 2^-23 and 2^16, so each midpoint is exact in binary64 and every comparison is exact: the
result is the exact model's, with no double rounding.  Decoding needs no code here: the table lookup of
:func:`refarith.fast.cast.decode` serves every 8-bit format.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from refarith.errors import UnknownModeError
from refarith.formats.hifloat import TaperedFormat

HIF8_ROUNDING = ("rne", "rna", "rtz", "rup", "rdn", "rto")


@lru_cache(maxsize=4)
def _tables(fmt: TaperedFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(magnitudes incl. the overflow step, their codes (the step's is -1), midpoints), all ascending."""
    mags = [float(g) for g, _ in fmt.positive_grid] + [float(fmt.overflow_step)]
    codes = [c for _, c in fmt.positive_grid] + [-1]
    mids = [(a + b) / 2 for a, b in zip(mags, mags[1:])]
    return np.array(mags), np.array(codes, np.int64), np.array(mids)


def _index(a, mags, codes, mids, rounding: str, neg, ss, where):
    """Index into ``mags`` of each magnitude ``a`` (inf beyond the table gives len(mags)); ``ss(sorted, v, right)``
    is the backend's searchsorted, ``where`` its select."""
    lo = ss(mags, a, True) - 1  # largest magnitude <= a
    n = len(codes)
    exact = mags[lo.clip(0, n - 1)] == a
    hi = where(exact, lo, lo + 1)
    if rounding == "rtz":
        return lo
    if rounding in ("rup", "rdn"):
        up = ~neg if rounding == "rup" else neg
        return where(up, hi, lo)
    if rounding == "rto":
        return where(exact | (codes[lo.clip(0, n - 1)] & 1 == 1), lo, hi)
    left, right = ss(mids, a, False), ss(mids, a, True)
    if rounding == "rna":
        return right
    even_right = codes[right.clip(0, n - 1)] & 1 == 0
    return where(left == right, left, where(even_right, right, left))


def encode(x: Any, fmt: TaperedFormat, rounding: str, overflow: str, backend: str) -> Any:
    """HiF8 codes (uint8) of the float array or tensor ``x``."""
    if rounding not in HIF8_ROUNDING:
        raise UnknownModeError(f"rounding {rounding!r} into {fmt.name} is not modelled; use one of "
                               f"{', '.join(HIF8_ROUNDING)}")
    mags, codes, mids = _tables(fmt)
    if backend == "torch":
        import torch

        t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
        dev = t.device
        xd = t.to(torch.float64)
        m, c, d = (torch.from_numpy(v).to(dev) for v in (mags, codes, mids))
        a, neg, nan = xd.abs(), torch.signbit(xd), torch.isnan(xd)
        idx = _index(a, m, c, d, rounding, neg, lambda s, v, r: torch.searchsorted(s, v, right=r), torch.where)
        base = c[idx.clamp(0, len(c) - 1)]
        over = idx >= len(c) - 1
        res = _finish(base, over, neg, nan, a, fmt, rounding, overflow, torch.where)
        return res.to(torch.uint8)
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu" and arr.dtype.name != "bfloat16":
        raise UnknownModeError(f"{fmt.name} encode takes a float or integer array, got dtype {arr.dtype}")
    with np.errstate(invalid="ignore"):  # a signalling NaN widens quietly
        xd = arr.astype(np.float64)
    a, neg, nan = np.abs(xd), np.signbit(xd), np.isnan(xd)
    idx = _index(a, mags, codes, mids, rounding, neg, lambda s, v, r: np.searchsorted(s, v, "right" if r else "left"),
                 np.where)
    base = codes[idx.clip(0, len(codes) - 1)]
    over = idx >= len(codes) - 1
    return _finish(base, over, neg, nan, a, fmt, rounding, overflow, np.where).astype(np.uint8)


def _finish(base, over, neg, nan, a, fmt: TaperedFormat, rounding: str, overflow: str, where):
    """Apply the sign, overflow and NaN rules to the magnitude codes ``base``."""
    code = where(neg & (base != 0), base | 0x80, base)
    if overflow == "nan":
        ov = base * 0 + fmt.nan_code
    else:
        sat = where(neg, base * 0 + (fmt.max_code | 0x80), base * 0 + fmt.max_code)
        inf = where(neg, base * 0 + fmt.inf_codes[1], base * 0 + fmt.inf_codes[0])
        if overflow == "inf_always":
            ov = inf
        elif overflow == "inf":
            away = (neg == neg) if rounding in ("rne", "rna") else (~neg if rounding == "rup" else neg)
            if rounding in ("rtz", "rto"):
                away = neg & ~neg
            ov = where(away, inf, sat)
        else:
            ov = sat
        isinf = a == float("inf")
        if overflow in ("inf", "inf_always"):
            ov = where(isinf, inf, ov)
    code = where(over, ov, code)
    return where(nan, base * 0 + fmt.nan_code, code)
