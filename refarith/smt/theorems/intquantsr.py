"""Theorems of the fast stochastic integer quantization (:func:`refarith.fast.intquant.quantize`, ``rounding="sr"``,
numpy).

The kernel's rounding (:func:`refarith.fast.intquant.round_magnitude`) is traced into the Triton graph, whose
deterministic roundings the Z3 theorems of :mod:`refarith.smt.theorems.intquant` read; the stochastic statements
here (counts of r, monotonicity) enumerate the numpy kernel exhaustively over a stated domain instead.

Per variant V (a, b, c, c_odd with k = 4; te_e2m1_8 with k = 8), on ``int_quantize(int8)`` (symmetric scheme and
clip, one scale per group of two values [amax, x]):

* ``sr.intquant.V.neighbours.int8`` (enumeration): for every binary16 value x with |x| < 127, both signs, in
  groups of scale s = 1 (amax = 127), s = fl(100 / 127) (a scale that is not a power of two, so x / s has an
  infinite binary expansion and the kernel's long division and sticky bit decide) and s = 2^-140 (a binary32
  subnormal scale; x is fl(x 2^-140)), and every k-bit r:

  - the scale and zero point are those of the deterministic kernel (``rounding=rne``);
  - the code is one of the two integer neighbours of the exact quotient q = x / s (trunc(q), or trunc(q) + sign
    when q is not an integer; an integer q is delivered exactly), clipped to [-127, 127];
  - the result is monotone in r (r1 <= r2 and away from zero at r1 imply away at r2);
  - the number of r rounding away from zero equals :func:`refarith.exact.stochastic.up_count` of q's fraction
    (ulp 1), so it is frac * 2^k exactly when frac has at most k bits (unbiased), and the closed form with its
    bias bound otherwise (checked on every element whose upper neighbour is in range).

  The domain is every binary16 value at three scales, not every binary32 pair: a sample, stated as such.
* ``sr.intquant.c.equals_rne.int8`` (enumeration; expected verdict **counterexample**): the claim "the stochastic
  result equals the rne one for every r" is false; the first x and r where it differs is returned.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from refarith.exact.stochastic import up_count
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, theorem

CASES = (("a", 4), ("b", 4), ("c", 4), ("c_odd", 4), ("te_e2m1_8", 8))
QMAX = 127
AMAX = (("1", np.float32(127.0), 0), ("fl(100/127)", np.float32(100.0), 0), ("2^-140", np.float32(127.0), -140))


def _hard() -> np.ndarray:
    """The binary32 values 0..8 ulps below n + 2^-8 and 1..8 ulps below n + 1, n = 0..126 (where the binary32
    sum of ``te_e2m1_8`` decides, :func:`refarith.exact.stochastic.te_e2m1_offset_bits`)."""
    out = []
    for n in range(QMAX):
        for top, first in ((np.float32(n + 2.0 ** -8), 0), (np.float32(n + 1), 1)):
            v = top
            for i in range(9):
                if i >= first:
                    out.append(v)
                v = np.nextafter(v, np.float32(0))
    return np.array(out, dtype=np.float32)


def _domain(amax: np.float32, p: int, binary16: bool = True) -> np.ndarray:
    """Every binary16 x with |x| < amax (``binary16``), with the values of :func:`_hard` at scale 1, both signs,
    times 2^p rounded to binary32."""
    pos = np.arange(0, 0x7C00, dtype=np.uint16).view(np.float16).astype(np.float32)
    pos = pos[pos < amax] if binary16 else pos[:0]
    if p == 0 and amax == np.float32(QMAX):
        pos = np.concatenate([pos, _hard()])
    x = np.concatenate([pos, -pos])
    return (x.astype(np.float64) * 2.0 ** p).astype(np.float32)


def _groups(x: np.ndarray, top: np.float32) -> np.ndarray:
    """(n, 2) groups [top, x]: per-channel groups whose scale is fl(top / 127)."""
    return np.stack([np.full_like(x, top), x], axis=1)


_NEIGHBOURS: dict[tuple[str, float, bytes], tuple] = {}


def _neighbours(label: str, x: np.ndarray, s: np.float32) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """(toward-zero code, away code, fraction (rem, den) of |q|) of the exact quotients q = x / s (integer
    arithmetic on the exact ratios of the binary32 values), codes clipped; kept per scale for the next variant."""
    key = (label, float(s), x.tobytes())
    if key not in _NEIGHBOURS:
        sn, sd = float(s).as_integer_ratio()
        lo, hi, fr = [], [], []
        for v in x.tolist():
            xn, xd = v.as_integer_ratio()
            num, den = abs(xn) * sd, xd * sn
            n, rem = divmod(num, den)
            sg = -1 if xn < 0 else 1
            lo.append(sg * min(n, QMAX))
            hi.append(sg * min(n + (1 if rem else 0), QMAX))
            fr.append((rem, den))
        _NEIGHBOURS[key] = (np.array(lo), np.array(hi), fr)
    return _NEIGHBOURS[key]


def check_intquant_sr(variant: str, k: int, claim_equals_rne: bool = False) -> Outcome:
    """The enumeration of the module docstring (``claim_equals_rne``: the false claim, first counterexample)."""
    from refarith.fast.intquant import quantize

    checked = 0
    for label, amax, p in AMAX:
        if variant == "te_e2m1_8" and p != 0:  # k = 8: 256 values of r; the subnormal scale is left out
            continue
        top = np.float32(float(amax) * 2.0 ** p)
        x = _domain(amax, p, variant != "te_e2m1_8" or label != "1")
        g = _groups(x, top)
        s_rne, z_rne, c_rne = quantize(g, 8, granularity="channel", axis=0)
        s = np.float32(s_rne[0])
        lo, hi, fr = _neighbours(label, x, s)
        ups = np.zeros(len(x), dtype=np.int64)
        prev = np.zeros(len(x), dtype=bool)
        for r in range(1 << k):
            rr = np.full(g.shape, r, dtype=np.int64)
            sc, z, c = quantize(g, 8, granularity="channel", axis=0, rounding="sr", rand=rr, rand_bits=k,
                                sr_variant=variant)
            el = c[:, 1].astype(np.int64)
            where = {"x": None, "scale": label, "r": r, "k": k}
            if claim_equals_rne:
                bad = np.flatnonzero(el != c_rne[:, 1])
                if bad.size:
                    i = int(bad[0])
                    return Outcome(COUNTEREXAMPLE, dict(where, x=float(x[i]), sr_code=int(el[i]),
                                                        rne_code=int(c_rne[i, 1])), True,
                                   detail="the stochastic result differs from rne", method="enumeration")
                continue
            if not (np.array_equal(sc, s_rne) and np.array_equal(z, z_rne)):
                return Outcome(COUNTEREXAMPLE, dict(where, x=float(x[0])), True,
                               detail="scale or zero point differs from the deterministic kernel's",
                               method="enumeration")
            up = (el == hi) & (hi != lo)
            bad = np.flatnonzero(~((el == lo) | (el == hi)) | (prev & ~up))
            if bad.size:
                i = int(bad[0])
                return Outcome(COUNTEREXAMPLE, dict(where, x=float(x[i]), code=int(el[i]), toward_zero=int(lo[i]),
                                                    away=int(hi[i])), True,
                               detail="not one of the two neighbours, or not monotone in r", method="enumeration")
            ups += up
            prev = up
        if claim_equals_rne:
            continue
        memo: dict[tuple[int, int, int], int] = {}
        for i in np.flatnonzero(hi != lo).tolist():
            rem, den = fr[i]
            n = abs(int(lo[i]))
            key = (rem, den, n if variant == "te_e2m1_8" else 0)
            if key not in memo:
                memo[key] = up_count(variant, Fraction(rem, den), k, n, Fraction(1))
            if memo[key] != ups[i]:
                return Outcome(COUNTEREXAMPLE, {"x": float(x[i]), "scale": label, "k": k, "round_ups": int(ups[i]),
                                                "closed_form": memo[key]}, True,
                               detail="round-up count differs from up_count", method="enumeration")
            if (rem << k) % den == 0 and ups[i] != (rem << k) // den:
                return Outcome(COUNTEREXAMPLE, {"x": float(x[i]), "scale": label, "k": k}, True,
                               detail="biased on a fraction of at most k bits", method="enumeration")
        checked += len(x)
    if claim_equals_rne:
        return Outcome(PROVED, detail="equal to rne everywhere", method="enumeration")
    return Outcome(PROVED, detail=f"{checked} elements x {1 << k} values of r enumerated", method="enumeration")


def _register(variant: str, k: int) -> None:
    @theorem(f"sr.intquant.{variant}.neighbours.int8",
             f"(enumeration of the numpy kernel) every binary16 x with |x| < 127, both signs, in int8 symmetric "
             f"groups of scale 1, fl(100/127) and 2^-140, every {k}-bit r: int_quantize(int8,rounding=sr,"
             f"sr={variant},k={k}) keeps the rne scale and zero point, gives one of the two integer neighbours of "
             "x/s (monotone in r), and rounds away for exactly up_count(frac) values of r (frac * 2^k when frac "
             "has at most k bits)", budget=90, tags=("sr", "kernel", "intquant", variant))
    def neighbours():
        return check_intquant_sr(variant, k)


for _case in CASES:
    _register(*_case)


@theorem("sr.intquant.c.equals_rne.int8",
         "(enumeration of the numpy kernel) claim: int_quantize(int8,rounding=sr,sr=c,k=4) equals the rne result "
         "for every x and r -- false (expected verdict: counterexample)",
         expect=COUNTEREXAMPLE, budget=10, tags=("sr", "kernel", "intquant", "c"))
def _equals_rne():
    return check_intquant_sr("c", 4, claim_equals_rne=True)
