"""Independent formulations used by the acceptance tests of the format catalogue and the exact model.

Nothing here calls refarith.exact: the decoder is written from the field
formulas and the specials rules of the specifications, the rounding is a
bracketing search over the enumerated value table of the target.

Why float64 is exact here: every value of a format of at most 16 bits has at
most 11 significant bits and a binary exponent in [-150, 128]; a midpoint of
two adjacent values has at most one more significant bit.  binary64 has 53
significant bits and exponents down to -1074, so all target values, all
midpoints, all binary16/bfloat16/binary32 inputs and every comparison between
them are exact in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

NAN_POS = -1  # reference result: a NaN code with sign bit 0 (or the format's only NaN)
NAN_NEG = -2  # reference result: a NaN code with the sign bit set where the format has such a NaN
NAN_ANY = -3  # reference result: any NaN code (IEEE 754 leaves the sign of a NaN result unspecified)


def ref_decode(fmt, code: int) -> tuple[str, float]:
    """(kind, value) of a code: kind is 'nan', 'inf' or 'num'; value a float64 (signed; -0.0 for -0).

    Written from the specifications: IEEE 754 (E all ones: inf/NaN), OCP OFP8 E4M3 'fn' (S.1111.111 NaN),
    'fnuz' (1000...0 is the one NaN, no -0, no inf), IEEE P3109 (signed: 0x80 NaN, 0x7F/0xFF +/-inf in the
    extended domain; unsigned: all ones NaN, all ones minus one +inf in the extended domain), OCP MX FP6/FP4
    (no specials), E8M0 (2^(E-127), 0xFF NaN).
    """
    m, e, n = fmt.mbits, fmt.ebits, fmt.nbits
    s = (code >> (n - 1)) & 1 if fmt.signed else 0
    body = code & ((1 << (e + m)) - 1)
    E = body >> m
    M = body & ((1 << m) - 1)
    ones_e = E == (1 << e) - 1
    ones_m = M == (1 << m) - 1
    sp = fmt.specials
    if sp == "ieee" and ones_e:
        return ("inf", -math.inf if s else math.inf) if M == 0 else ("nan", math.nan)
    if sp == "fn" and ones_e and ones_m:
        return "nan", math.nan
    if sp == "fnuz" and code == 1 << (n - 1):
        return "nan", math.nan
    if sp in ("p3109e", "p3109f"):
        if fmt.signed:
            if code == 0x80 << (n - 8):
                return "nan", math.nan
            if sp == "p3109e" and body == (1 << (n - 1)) - 1:
                return "inf", -math.inf if s else math.inf
        else:
            if code == (1 << n) - 1:
                return "nan", math.nan
            if sp == "p3109e" and code == (1 << n) - 2:
                return "inf", math.inf
    if E == 0 and fmt.subnormals:
        mag = math.ldexp(M, 1 - fmt.bias - m)
    else:
        mag = math.ldexp((1 << m) | M, E - fmt.bias - m)
    return "num", -mag if s else mag


@dataclass
class Grid:
    """The enumerated finite grid of a target format plus its special codes."""

    fmt: object
    pos_vals: np.ndarray  # ascending non-negative finite values (+0 included when the format has zero)
    pos_codes: np.ndarray
    virt_val: float  # the next grid value above max (exponent range unbounded above)
    virt_parity: int
    max_code: int
    sign_bit: int
    neg_zero: int | None
    nan_codes: frozenset
    signed_nans: bool  # NaN codes exist with both sign bits
    pos_inf: int | None
    neg_inf: int | None


_GRIDS: dict = {}


def grid(fmt) -> Grid:
    if fmt.name in _GRIDS:
        return _GRIDS[fmt.name]
    n = fmt.nbits
    sign_bit = 1 << (n - 1) if fmt.signed else 0
    pos, nans, neg_zero, pinf, ninf = [], set(), None, None, None
    for c in range(1 << n):
        kind, v = ref_decode(fmt, c)
        if kind == "nan":
            nans.add(c)
        elif kind == "inf":
            if v > 0:
                pinf = c
            else:
                ninf = c
        elif v == 0 and math.copysign(1.0, v) < 0:
            neg_zero = c
        elif v >= 0:
            pos.append((v, c))
    pos.sort()
    vals = np.array([v for v, _ in pos])
    codes = np.array([c for _, c in pos], dtype=np.int64)
    assert np.all(np.diff(codes) > 0), "positive values must grow with the code"
    max_code = int(codes[-1])
    m = fmt.mbits
    E, M = max_code >> m & ((1 << fmt.ebits) - 1), max_code & ((1 << m) - 1)
    M += 1
    if M == 1 << m:
        E, M = E + 1, 0
    virt = math.ldexp((1 << m) | M, E - fmt.bias - m)
    g = Grid(fmt, vals, codes, virt, (max_code + 1) & 1, max_code, sign_bit, neg_zero, frozenset(nans),
             any(c & sign_bit for c in nans) and any(not c & sign_bit for c in nans) if sign_bit else False,
             pinf, ninf)
    _GRIDS[fmt.name] = g
    return g


def _away(mode: str, neg: np.ndarray) -> np.ndarray:
    if mode in ("rne", "rna"):
        return np.ones_like(neg)
    if mode == "rup":
        return ~neg
    if mode == "rdn":
        return neg.copy()
    return np.zeros_like(neg)


def ref_round(x: np.ndarray, fmt, mode: str, overflow: str) -> np.ndarray:
    """Round finite float64 values (signed zeros kept) into ``fmt``; NaN results are NAN_POS / NAN_NEG.

    Rules (refarith's rounding rules restated): bracket |x| between adjacent grid values lo <= |x| < hi,
    the grid extended by one virtual value above max; rtz keeps lo, rup/rdn go towards +/-inf, rne/rna go
    to the nearer one with ties to the even code / away, rto to the odd code unless exact.  A result above
    max overflows: saturate, or (when the mode rounds away from zero for that sign) inf/NaN.  Negative
    non-zero values into unsigned formats are clamped to code 0 (negative='clamp').  Formats without zero
    give their smallest value for anything below it.
    """
    g = grid(fmt)
    x = np.asarray(x, dtype=np.float64)
    neg = np.signbit(x)
    a = np.abs(x)
    ext = np.append(g.pos_vals, g.virt_val)
    par = np.append(g.pos_codes & 1, g.virt_parity)
    idx = np.searchsorted(ext, a, side="right") - 1
    below = idx < 0
    beyond = idx >= len(ext) - 1
    i = np.clip(idx, 0, len(ext) - 2)
    lo, hi = ext[i], ext[i + 1]
    mid = (lo + hi) / 2
    if mode == "rtz":
        up = np.zeros_like(neg)
    elif mode == "rup":
        up = ~neg
    elif mode == "rdn":
        up = neg.copy()
    elif mode == "rne":
        up = (a > mid) | ((a == mid) & (par[i] == 1))
    elif mode == "rna":
        up = a >= mid
    elif mode == "rto":
        up = par[i] == 0
    else:
        raise ValueError(mode)
    up &= a != lo
    ri = i + up
    over = (ri == len(ext) - 1) | beyond
    ri = np.minimum(ri, len(ext) - 2)
    ri[below] = 0
    mag_code = g.pos_codes[ri]
    is_zero = g.pos_vals[ri] == 0
    out = mag_code.copy()
    if g.sign_bit:
        negnz = neg & ~is_zero
        out[negnz] |= g.sign_bit
        if g.neg_zero is not None:
            out[neg & is_zero] = g.neg_zero
    else:
        out[neg & (a != 0)] = int(g.pos_codes[0])  # negative='clamp': the smallest value
        over &= ~neg
    away = _away(mode, neg)
    ovf = over & (overflow != "saturate") & away
    sat = over & ~ovf
    out[sat] = g.max_code | np.where(neg[sat], g.sign_bit, 0)
    if overflow == "inf":
        out[ovf & ~neg] = g.pos_inf
        if g.neg_inf is not None:
            out[ovf & neg] = g.neg_inf
    elif overflow == "nan":
        out[ovf & ~neg] = NAN_POS
        out[ovf & neg] = NAN_NEG if g.signed_nans else NAN_POS
    return out


def ref_special(kind: str, neg: bool, fmt, overflow: str, nan_policy: str) -> int:
    """Reference code for a NaN or infinite input (kind 'nan' / 'inf')."""
    g = grid(fmt)
    if kind == "nan":
        if g.nan_codes:
            return NAN_NEG if neg and g.signed_nans else NAN_POS
        if nan_policy == "zero":
            return 0
        return g.max_code | (g.sign_bit if neg else 0)
    if neg and not fmt.signed:
        return int(g.pos_codes[0])
    if overflow == "saturate":
        return g.max_code | (g.sign_bit if neg else 0)
    if overflow == "inf":
        return g.neg_inf if neg else g.pos_inf
    return NAN_NEG if neg and g.signed_nans else NAN_POS


def matches(model: np.ndarray, ref: np.ndarray, fmt) -> np.ndarray:
    """Elementwise agreement; the NaN sentinels accept any NaN code of the right sign."""
    g = grid(fmt)
    model = np.asarray(model, dtype=np.int64)
    ok = model == ref
    isnan = np.isin(model, np.array(sorted(g.nan_codes), dtype=np.int64)) if g.nan_codes else np.zeros_like(ok)
    sgn = (model & g.sign_bit) != 0 if g.sign_bit else np.zeros_like(ok)
    ok |= (ref == NAN_POS) & isnan & (~sgn | ~np.bool_(g.signed_nans))
    ok |= (ref == NAN_NEG) & isnan & sgn
    ok |= (ref == NAN_ANY) & isnan
    return ok


def source_floats(src_name: str) -> np.ndarray:
    """All 2^16 codes of binary16 / bfloat16 as float64, via numpy's own float16 / a bit shift to float32."""
    codes = np.arange(1 << 16, dtype=np.uint32)
    if src_name == "binary16":
        return codes.astype(np.uint16).view(np.float16).astype(np.float64)
    if src_name == "bfloat16":
        with np.errstate(invalid="ignore"):
            return (codes << 16).view(np.float32).astype(np.float64)
    raise ValueError(src_name)


_FRAC_GRIDS: dict = {}


def _frac_ext(fmt) -> list[Fraction]:
    if fmt.name not in _FRAC_GRIDS:
        g = grid(fmt)
        _FRAC_GRIDS[fmt.name] = [Fraction(float(v)) for v in g.pos_vals] + [Fraction(g.virt_val)]
    return _FRAC_GRIDS[fmt.name]


def ref_round_fraction(neg: bool, mag: Fraction, fmt, mode: str, overflow: str, sqrt: bool = False) -> int:
    """Scalar exact version of :func:`ref_round` for a magnitude given as a Fraction (or its square root when
    ``sqrt``: then every comparison is made between squares, so the irrational root is never formed)."""
    g = grid(fmt)
    ext = _frac_ext(fmt)

    def cmp(v: Fraction) -> int:  # sign of (target - v)
        d = mag - (v * v if sqrt else v)
        return (d > 0) - (d < 0)

    lo_i, hi_i = -1, len(ext)  # invariant: ext[lo_i] <= target < ext[hi_i]
    while hi_i - lo_i > 1:
        m = (lo_i + hi_i) // 2
        if cmp(ext[m]) >= 0:
            lo_i = m
        else:
            hi_i = m
    n = len(ext)
    if lo_i < 0:  # below the smallest value of a format without zero
        ri, over = 0, False
    elif lo_i >= n - 1:
        ri, over = n - 1, True
    else:
        lo, hi = ext[lo_i], ext[lo_i + 1]
        exact = cmp(lo) == 0
        c_mid = cmp((lo + hi) / 2)
        par_lo = int(g.pos_codes[lo_i]) & 1
        up = {"rtz": False, "rup": not neg, "rdn": neg, "rne": c_mid > 0 or (c_mid == 0 and par_lo == 1),
              "rna": c_mid >= 0, "rto": par_lo == 0}[mode] and not exact
        ri = lo_i + int(up)
        over = ri == n - 1
    if not fmt.signed and neg:
        return int(g.pos_codes[0])
    sb = g.sign_bit if neg else 0
    if over:
        away = mode in ("rne", "rna") or (mode == "rup" and not neg) or (mode == "rdn" and neg)
        if overflow == "saturate" or not away:
            return g.max_code | sb
        if overflow == "inf":
            return g.neg_inf if neg else g.pos_inf
        return NAN_NEG if neg and g.signed_nans else NAN_POS
    code = int(g.pos_codes[ri])
    if ext[ri] == 0:
        if neg:
            return g.neg_zero if g.neg_zero is not None else code
        return code
    return code | sb


def ref_round_ratio(num: np.ndarray, den: np.ndarray, neg: np.ndarray, fmt, mode: str, overflow: str,
                    square: bool = False) -> np.ndarray:
    """Vectorized :func:`ref_round_fraction` for the magnitude num/den (num >= 0, den > 0), or for its square
    root when ``square``.  The bracketing compares grid values v through v*den <= num (v*v*den when
    ``square``): exact in float64 as long as those products have at most 53 significant bits, which holds for
    the 8-bit operands the arithmetic tests use (significands of at most 4 bits, exponents within +-80)."""
    g = grid(fmt)
    ext = np.append(g.pos_vals, g.virt_val)
    par = np.append(g.pos_codes & 1, g.virt_parity)
    n = len(ext)
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    neg = np.asarray(neg, dtype=bool)

    def le(v):  # v <= target
        return (v * v if square else v) * den <= num

    lo = np.full(num.shape, -1)
    hi = np.full(num.shape, n)
    while np.any(hi - lo > 1):
        m = (lo + hi) // 2
        active = hi - lo > 1
        c = le(ext[np.clip(m, 0, n - 1)])
        lo = np.where(active & c, m, lo)
        hi = np.where(active & ~c, m, hi)
    below = lo < 0
    beyond = lo >= n - 1
    i = np.clip(lo, 0, n - 2)
    lo_v, hi_v = ext[i], ext[i + 1]
    mid = (lo_v + hi_v) / 2
    t_mid = (mid * mid if square else mid) * den
    t_lo = (lo_v * lo_v if square else lo_v) * den
    above_mid, at_mid = num > t_mid, num == t_mid
    if mode == "rtz":
        up = np.zeros(num.shape, dtype=bool)
    elif mode == "rup":
        up = ~neg
    elif mode == "rdn":
        up = neg.copy()
    elif mode == "rne":
        up = above_mid | (at_mid & (par[i] == 1))
    elif mode == "rna":
        up = above_mid | at_mid
    elif mode == "rto":
        up = par[i] == 0
    else:
        raise ValueError(mode)
    up &= num != t_lo
    ri = i + up
    over = (ri == n - 1) | beyond
    ri = np.minimum(ri, n - 2)
    ri[below] = 0
    over &= ~below
    mag_code = g.pos_codes[ri]
    is_zero = g.pos_vals[ri] == 0
    out = mag_code.copy()
    if g.sign_bit:
        out[neg & ~is_zero] |= g.sign_bit
        if g.neg_zero is not None:
            out[neg & is_zero] = g.neg_zero
    else:
        out[neg & ~below & (num != 0)] = int(g.pos_codes[0])
        over &= ~neg
    away = _away(mode, neg)
    ovf = over & (overflow != "saturate") & away
    sat = over & ~ovf
    out[sat] = g.max_code | np.where(neg[sat], g.sign_bit, 0)
    if overflow == "inf":
        out[ovf & ~neg] = g.pos_inf
        if g.neg_inf is not None:
            out[ovf & neg] = g.neg_inf
    elif overflow == "nan":
        out[ovf & ~neg] = NAN_POS
        out[ovf & neg] = NAN_NEG if g.signed_nans else NAN_POS
    return out
