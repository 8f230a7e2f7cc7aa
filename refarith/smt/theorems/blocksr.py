"""Theorems of the fast stochastic MX element rounding (:func:`refarith.fast.blocksr.mx_quantize_sr`, numpy).

Per variant V (a, b, c, c_odd with k = 4; te_e2m1_8 with k = 8), on MXFP4 (E2M1 elements):

* ``sr.block.V.neighbours.mxfp4`` (exhaustive enumeration of the kernel over a stated domain): for every binary16
  value x with |x| <= 6, both signs, placed in a block whose largest magnitude is 6 * 2^s (so the scale is 2^s)
  for s = 0 and s = -20, and every k-bit r:

  - the block scale is that of the deterministic kernel (``rounding=rne``);
  - the element code is the toward-zero code or the away-from-zero code of x / 2^s (the deterministic kernel's
    ``rtz`` and ``rup``/``rdn`` codes), i.e. one of the two neighbours of the exact scaled value, with the rne
    code among the two;
  - the round-up decision is monotone in r (r1 <= r2 and away at r1 imply away at r2);
  - the number of r giving the away code equals :func:`refarith.exact.stochastic.up_count` of x's fraction (the
    closed form whose expectation the ``sr.V.expectation`` theorems enumerate: unbiased when the fraction has at
    most k bits, within the stated bound otherwise).

  The domain is every binary16 value, not every binary32 one: a sample of the kernel's inputs, stated as such.
* ``sr.block.V.equals_rne.mxfp4`` (enumeration; expected verdict **counterexample**): the claim "the stochastic
  block result equals the rne one for every r" is false; the first x and r where it differs is returned.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from refarith.exact.stochastic import up_count
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, theorem

CASES = (("a", 4), ("b", 4), ("c", 4), ("c_odd", 4), ("te_e2m1_8", 8))
SHIFTS = (0, -20)
_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def _domain() -> np.ndarray:
    """Every binary16 value x with |x| <= 6, both signs, as float32."""
    codes = np.arange(0, 0x4601, dtype=np.uint16)
    pos = codes.view(np.float16).astype(np.float32)
    return np.concatenate([pos, -pos])


def _blocks(x: np.ndarray, s: int) -> np.ndarray:
    """(n, 2) blocks [6 * 2^s, x * 2^s]: the block scale is 2^s (floor rule, E2M1 emax 2)."""
    pin = np.full_like(x, np.float32(6.0 * 2.0 ** s))
    return np.stack([pin, (x * np.float32(2.0 ** s)).astype(np.float32)], axis=1)


def _frac_parts(v: float) -> tuple[int, Fraction, Fraction]:
    """(n, frac, ulp) of |v| on the E2M1 grid: |v| = (n + frac) * ulp below 6."""
    a = Fraction(abs(v))
    lo = max(i for i, g in enumerate(_GRID) if Fraction(g) <= a)
    if lo == len(_GRID) - 1:
        return lo, Fraction(0), Fraction(2)
    ulp = Fraction(_GRID[lo + 1]) - Fraction(_GRID[lo])
    n = Fraction(_GRID[lo]) / ulp
    return int(n), (a - Fraction(_GRID[lo])) / ulp, ulp


def check_block_sr(variant: str, k: int, claim_equals_rne: bool = False) -> Outcome:
    """The enumeration of the module docstring (``claim_equals_rne``: the false claim, first counterexample)."""
    from refarith.fast.blocksr import mx_quantize_sr
    from refarith.fast.mx import mx_quantize

    x = _domain()
    checked = 0
    for s in SHIFTS:
        b = _blocks(x, s)
        s_rne, c_rne = mx_quantize(b, "ocp_e2m1", block=2)
        _, c_rtz = mx_quantize(b, "ocp_e2m1", block=2, rounding="rtz")
        _, c_up = mx_quantize(b, "ocp_e2m1", block=2, rounding="rup")
        _, c_dn = mx_quantize(b, "ocp_e2m1", block=2, rounding="rdn")
        away = np.where(x < 0, c_dn[:, 1], c_up[:, 1])
        ups = np.zeros(len(x), dtype=np.int64)
        prev = np.zeros(len(x), dtype=bool)
        for r in range(1 << k):
            rr = np.full(b.shape, r, dtype=np.int64)
            sc, c = mx_quantize_sr(b, "ocp_e2m1", rr, k, variant, block=2)
            el = c[:, 1]
            if claim_equals_rne:
                bad = np.flatnonzero(el != c_rne[:, 1])
                if bad.size:
                    i = int(bad[0])
                    return Outcome(COUNTEREXAMPLE, {"x": float(x[i]), "scale": f"2^{s}", "r": r, "k": k,
                                                    "sr_code": int(el[i]), "rne_code": int(c_rne[i, 1])}, True,
                                   detail="the stochastic result differs from rne", method="enumeration")
                continue
            if not np.array_equal(sc, s_rne):
                i = int(np.flatnonzero((sc != s_rne).any(axis=1))[0])
                return Outcome(COUNTEREXAMPLE, {"x": float(x[i]), "scale": f"2^{s}", "r": r}, True,
                               detail="block scale differs from the deterministic kernel's", method="enumeration")
            up = el == away
            bad = np.flatnonzero(~(up | (el == c_rtz[:, 1])) | (prev & ~up))
            if bad.size:
                i = int(bad[0])
                return Outcome(COUNTEREXAMPLE, {"x": float(x[i]), "scale": f"2^{s}", "r": r, "code": int(el[i]),
                                                "rtz": int(c_rtz[i, 1]), "away": int(away[i])}, True,
                               detail="not a neighbour, or not monotone in r", method="enumeration")
            inexact = c_rtz[:, 1] != away
            ups += up & inexact
            prev = up & inexact
        if claim_equals_rne:
            continue
        if not np.all((c_rne[:, 1] == c_rtz[:, 1]) | (c_rne[:, 1] == away)):
            return Outcome(COUNTEREXAMPLE, {"scale": f"2^{s}"}, True, detail="rne outside the two neighbours",
                           method="enumeration")
        memo: dict[float, int] = {}
        for v, u in zip(np.abs(x).tolist(), ups.tolist()):
            if v not in memo:
                n, frac, ulp = _frac_parts(v)
                memo[v] = up_count(variant, frac, k, n, ulp) if v < 6 else 0
            if memo[v] != u:
                return Outcome(COUNTEREXAMPLE, {"x": v, "scale": f"2^{s}", "k": k, "round_ups": u,
                                                "closed_form": memo[v]}, True,
                               detail="round-up count differs from up_count", method="enumeration")
        checked += len(x)
    if claim_equals_rne:
        return Outcome(PROVED, detail="equal to rne everywhere", method="enumeration")
    return Outcome(PROVED, detail=f"{checked} elements x {1 << k} values of r enumerated", method="enumeration")


def _register(variant: str, k: int) -> None:
    @theorem(f"sr.block.{variant}.neighbours.mxfp4",
             f"(enumeration of the numpy kernel) every binary16 x with |x| <= 6, both signs, in an MXFP4 block of "
             f"scale 2^0 and 2^-20, every {k}-bit r: mx_quantize(ocp_e2m1,rounding=sr,sr={variant},k={k}) keeps the "
             "rne block scale, gives the rtz or the away-from-zero code of the scaled value (monotone in r), and "
             "rounds away for exactly up_count(frac) values of r", budget=60, tags=("sr", "kernel", "block", variant))
    def neighbours():
        return check_block_sr(variant, k)


for _case in CASES:
    _register(*_case)


@theorem("sr.block.c.equals_rne.mxfp4",
         "(enumeration of the numpy kernel) claim: mx_quantize(ocp_e2m1,rounding=sr,sr=c,k=4) equals the rne result "
         "for every x and r -- false (expected verdict: counterexample)",
         expect=COUNTEREXAMPLE, budget=30, tags=("sr", "kernel", "block", "c"))
def _equals_rne():
    return check_block_sr("c", 4, claim_equals_rne=True)
