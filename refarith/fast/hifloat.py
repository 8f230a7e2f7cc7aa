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
from refarith.exact.hifloat import TAPERED_OVERFLOW
from refarith.formats.hifloat import TaperedFormat

HIF8_ROUNDING = ("rne", "rna", "rtz", "rup", "rdn", "rto")
HIF8_OVERFLOW = TAPERED_OVERFLOW


@lru_cache(maxsize=4)
def _tables(fmt: TaperedFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(magnitudes incl. the overflow step, codes, midpoints), ascending.  ``codes`` is one longer than the
    magnitudes: -1 for the overflow step and -1 for beyond it, so every index a rounding gives has a code, and a
    negative code marks an overflow."""
    mags = [float(g) for g, _ in fmt.positive_grid] + [float(fmt.overflow_step)]
    codes = [c for _, c in fmt.positive_grid] + [-1, -1]
    mids = [(a + b) / 2 for a, b in zip(mags, mags[1:])]
    return np.array(mags), np.array(codes, np.int64), np.array(mids)


def _index(a, mags, codes, mids, rounding: str, neg, ss, where):
    """Index into ``codes`` of each magnitude ``a`` rounded: ``ss(sorted, v)`` is the backend's searchsorted on the
    right (the count of entries <= v; NaN and inf count them all), ``where`` its select."""
    lo = ss(mags, a) - 1  # largest magnitude <= a: mags[0] = 0 <= a, so lo >= 0; inf and NaN give the step's index
    if rounding == "rtz":
        return lo
    hi = where(mags[lo] == a, lo, lo + 1)
    if rounding == "rup":
        return where(neg, lo, hi)
    if rounding == "rdn":
        return where(neg, hi, lo)
    if rounding == "rto":
        return where(codes[lo] & 1 == 1, lo, hi)  # exact: hi is lo
    right = ss(mids, a)  # the nearest magnitude, a tie taken upward; a tie lies on mids[right - 1]
    if rounding == "rna":
        return right
    # rne: a tie whose upper code is odd goes down (right = 0 reads mids[-1], the largest midpoint, above any such a)
    return where((mids[right - 1] == a) & (codes[right] & 1 == 1), right - 1, right)


def encode(x: Any, fmt: TaperedFormat, rounding: str, overflow: str, backend: str) -> Any:
    """HiF8 codes (uint8) of the float array or tensor ``x`` (rounding and overflow as in
    :func:`refarith.exact.hifloat.round_tapered`)."""
    if rounding not in HIF8_ROUNDING:
        raise UnknownModeError(f"rounding {rounding!r} into {fmt.name} is not modelled; use one of "
                               f"{', '.join(HIF8_ROUNDING)}")
    if overflow not in HIF8_OVERFLOW:
        raise UnknownModeError(f"overflow mode {overflow!r} into {fmt.name} is not modelled; use one of "
                               f"{', '.join(HIF8_OVERFLOW)}")
    mags, codes, mids = _tables(fmt)
    if backend == "torch":
        import torch

        t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
        dev = t.device
        xd = t.to(torch.float64)
        m, c, d = (torch.from_numpy(v).to(dev) for v in (mags, codes, mids))
        a, neg, nan, inf = xd.abs(), torch.signbit(xd), torch.isnan(xd), torch.isinf(xd)
        idx = _index(a, m, c, d, rounding, neg, lambda s, v: torch.searchsorted(s, v, right=True), torch.where)
        res = _finish(c[idx], neg, nan, inf, fmt, rounding, overflow, torch.where)
        return res.to(torch.uint8)
    arr = np.asarray(x)
    if arr.dtype.kind not in ("f", "i", "u") and arr.dtype.name != "bfloat16":
        raise UnknownModeError(f"{fmt.name} encode takes a float or integer array, got dtype {arr.dtype}")
    with np.errstate(invalid="ignore"):  # a signalling NaN widens quietly
        xd = arr.astype("float64")
    a, neg, nan, inf = np.abs(xd), np.signbit(xd), np.isnan(xd), np.isinf(xd)
    idx = _index(a, mags, codes, mids, rounding, neg, lambda s, v: np.searchsorted(s, v, "right"), np.where)
    return _finish(codes[idx], neg, nan, inf, fmt, rounding, overflow, np.where).astype(np.uint8)


def _finish(base, neg, nan, inf, fmt: TaperedFormat, rounding: str, overflow: str, where):
    """The sign, overflow and NaN rules on the magnitude codes ``base`` (negative where the magnitude overflowed):
    ``nan`` gives the NaN code; ``inf_always``, and ``inf`` when the rounding goes away from zero or the input is
    infinite, give the infinity; every other overflow saturates."""
    over = base < 0
    if overflow == "nan":
        nan = nan | over
    elif overflow == "inf_always" or (overflow == "inf" and rounding in ("rne", "rna")):
        base = where(over, fmt.inf_codes[0], base)
    elif overflow == "inf":
        to_inf = inf
        if rounding == "rup":
            to_inf = inf | ~neg
        if rounding == "rdn":
            to_inf = inf | neg
        base = where(over & to_inf, fmt.inf_codes[0], base)
    base = where(base < 0, fmt.max_code, base)
    code = where(neg & (base != 0), base | 0x80, base)  # the sign bit; 0x80 is NaN, so -0 and underflows give 0x00
    return where(nan, fmt.nan_code, code)
