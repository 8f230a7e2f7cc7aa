"""HiFloat8 theorems: the properties :mod:`refarith.exact.hifloat` and :mod:`refarith.fast.hifloat` rely on.

* ``hifloat8.ties_to_even_well_defined`` (exhaustive): sorted by magnitude, the 128 finite non-negative HiF8 codes
  and the overflow step (the value 1.5 * 2^15 the inf code 0x6F would have) alternate in their last bit, so of any
  two neighbours exactly one code ends in 0: "ties to the code whose last bit is 0" names one result for every tie,
  inside a binade and across the edges where the mantissa width changes.  The negative codes are the positive ones
  with bit 7 set, so the same holds for them.
* ``hifloat8.midpoints_exact_in_binary64`` (exhaustive): every HiF8 magnitude, and the midpoint of every pair of
  neighbours, is a binary64 number exactly (compared as fractions), so the fast encoder's binary search over binary64
  midpoints compares the widened input exactly and returns the exact model's result.
"""

from __future__ import annotations

from fractions import Fraction

from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, theorem


def _neighbours() -> list[tuple[Fraction, int]]:
    from refarith.formats import get_format

    f = get_format("hifloat8")
    return list(f.positive_grid) + [(f.overflow_step, f.inf_codes[0])]


@theorem("hifloat8.ties_to_even_well_defined",
         "HiFloat8: neighbouring magnitudes (including the overflow step 1.5 * 2^15 at the inf code) always differ "
         "in the code's last bit, so ties-to-even by the last bit is defined for every tie (exhaustive)",
         budget=5, tags=("hifloat8", "formats"))
def _ties() -> Outcome:
    g = _neighbours()
    if len({v for v, _ in g}) != len(g):
        return Outcome(COUNTEREXAMPLE, {"repeated magnitude": True}, True, method="enumeration")
    for (a, ca), (b, cb) in zip(g, g[1:]):
        if (ca ^ cb) & 1 == 0:
            return Outcome(COUNTEREXAMPLE, {"lo": str(a), "lo_code": hex(ca), "hi": str(b), "hi_code": hex(cb)}, True,
                           method="enumeration")
    return Outcome(PROVED, detail=f"{len(g) - 1} neighbouring pairs from 0 to 1.5 * 2^15 alternate in the last code "
                                  "bit", method="enumeration")


@theorem("hifloat8.midpoints_exact_in_binary64",
         "HiFloat8: every magnitude and every midpoint of neighbouring magnitudes is exact in binary64, so the fast "
         "encoder's binary64 search is exact (exhaustive)",
         budget=5, tags=("hifloat8", "formats"))
def _midpoints() -> Outcome:
    g = _neighbours()
    pts = [v for v, _ in g] + [(a + b) / 2 for (a, _), (b, _) in zip(g, g[1:])]
    for p in pts:
        if Fraction(float(p)) != p:
            return Outcome(COUNTEREXAMPLE, {"value": str(p), "binary64": float(p)}, True, method="enumeration")
    return Outcome(PROVED, detail=f"{len(pts)} magnitudes and midpoints, each exact in binary64",
                   method="enumeration")
