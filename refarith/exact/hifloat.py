"""Rounding into HiFloat8 (:mod:`refarith.formats.hifloat`), exactly.

A finite value x rounds once on the grid of HiF8 magnitudes, extended by one step beyond the maximum (1.5 * 2^15,
the value the inf code would have), exactly as an IEEE format rounds with an unbounded exponent:

* ``rne``: nearest, ties to the code whose last bit is 0 (the even mantissa; 0x00 for ties between 0 and 2^-22).
  The paper's own rounding is ``rna`` (its "TA", ties away from zero); ``rne`` is kept as the IEEE-style variant.
* ``rna``, ``rtz``, ``rup``, ``rdn``, ``rto`` (ties and inexact results to the odd last bit) as for every format.
* A result on the step beyond the maximum, or a magnitude at or above it, overflows: ``inf`` gives +-inf (0x6F/0xEF)
  when the rounding goes away from zero and +-32768 otherwise (IEEE 754 7.4); ``saturate`` gives +-32768; ``nan``
  gives 0x80.
* HiF8 has one zero: -0, and negative values that round to zero, give 0x00.  NaN gives 0x80; +-inf gives +-inf
  (``saturate``: +-32768; ``nan``: 0x80).
* Flags: ``inexact``; ``overflow``; ``underflow`` when an inexact result is tiny, below 2^-15 (the smallest
  normal, before rounding).  Stochastic rounding into HiF8 is not modelled (one line, UnknownModeError), nor
  are the overflow modes other than these four (the P3109 saturation modes and the library modes ``nan_rto``
  and ``saturate_inf_nan``): they are refused with UnknownModeError rather than read as ``saturate``.
"""

from __future__ import annotations

from bisect import bisect_left
from fractions import Fraction

from refarith.errors import UnknownModeError
from refarith.exact.value import Value
from refarith.formats.hifloat import TaperedFormat

TAPERED_OVERFLOW = ("inf", "inf_always", "nan", "saturate")
"""The overflow modes modelled for HiFloat8 (module docstring)."""


def _result(code: int, flags: set[str]):
    from refarith.exact.rounding import Rounded

    return Rounded(code, frozenset(flags))


def _away(rounding: str, sign: int) -> bool:
    return rounding in ("rne", "rna") or (rounding == "rup" and sign == 0) or (rounding == "rdn" and sign == 1)


def _overflow(fmt: TaperedFormat, sign: int, rounding: str, overflow: str, flags: set[str]):
    flags |= {"overflow", "inexact"}
    if overflow == "nan":
        return _result(fmt.nan_code, flags)
    if overflow in ("inf", "inf_always") and (overflow == "inf_always" or _away(rounding, sign)):
        return _result(fmt.inf_codes[sign], flags)
    return _result(fmt.max_code | (0x80 if sign else 0), flags)


def round_tapered(v: Value, fmt: TaperedFormat, rounding: str, overflow: str):
    """The HiF8 code of the exact value ``v`` (module docstring), with its flags."""
    if rounding == "sr":
        raise UnknownModeError(f"stochastic rounding into {fmt.name} is not modelled; use rne, rna, rtz, rup, rdn "
                               "or rto")
    if overflow not in TAPERED_OVERFLOW:
        raise UnknownModeError(f"overflow mode {overflow!r} into {fmt.name} is not modelled; use one of "
                               f"{', '.join(TAPERED_OVERFLOW)}")
    if v.is_nan:
        return _result(fmt.nan_code, set())
    if v.is_inf:
        if overflow in ("inf", "inf_always"):
            return _result(fmt.inf_codes[v.sign], set())
        return _result(fmt.nan_code if overflow == "nan" else fmt.max_code | (0x80 if v.sign else 0), set())
    x, sign = v.mag, v.sign
    if x == 0:
        return _result(0, set())
    grid = fmt.positive_grid
    mags = [g for g, _ in grid] + [fmt.overflow_step]
    i = bisect_left(mags, x)
    if i < len(mags) and mags[i] == x:
        if i == len(mags) - 1:
            return _overflow(fmt, sign, rounding, overflow, set())
        return _result(grid[i][1] | (0x80 if sign and grid[i][1] else 0), set())
    flags = {"inexact"}
    if x < fmt.min_normal:
        flags.add("underflow")
    if i == len(mags):  # beyond the step past the maximum
        return _overflow(fmt, sign, rounding, overflow, flags)
    lo, hi = i - 1, i
    lo_code = grid[lo][1]
    hi_code = grid[hi][1] if hi < len(grid) else fmt.inf_codes[0]
    up = _round_up(x, mags[lo], mags[hi], lo_code, hi_code, rounding, sign)
    if up and hi == len(mags) - 1:
        return _overflow(fmt, sign, rounding, overflow, flags)
    code = hi_code if up else lo_code
    return _result(code | (0x80 if sign and code else 0), flags)


def _round_up(x: Fraction, lo: Fraction, hi: Fraction, lo_code: int, hi_code: int, rounding: str, sign: int) -> bool:
    """Whether the magnitude x strictly between lo and hi rounds to hi."""
    if rounding == "rtz":
        return False
    if rounding == "rup":
        return sign == 0
    if rounding == "rdn":
        return sign == 1
    if rounding == "rto":
        return lo_code & 1 == 0
    mid = (lo + hi) / 2
    if x != mid:
        return x > mid
    if rounding == "rna":
        return True
    if rounding == "rne":
        return hi_code & 1 == 0
    raise UnknownModeError(f"unknown rounding mode {rounding!r}")


HIFLOAT8_GOLDEN_SPECS = ("cast(binary16->hifloat8,rounding=rna)", "cast(binary32->hifloat8,rounding=rna)")
"""HiFloat8 casts of the committed golden set, under the paper's rounding (TA: ties away from zero): every binary16
code, and the binary32 boundaries with seeded random values."""
