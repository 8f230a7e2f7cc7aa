"""Theorems of the fast stochastic fused multiply-add (:func:`refarith.fast.oddsum.fma_rto`, ``rounding="sr"``,
numpy), by exhaustive enumeration.

The kernel is binary64 arithmetic followed by the stochastic cast kernel, not a recorded ``BitOps`` word graph, so
Z3 has nothing to read: these theorems enumerate the kernel over a stated domain instead.

* ``sr.fma.V.exact.e2m1`` (V = a, b, c, c_odd; k = 2): for every triple (a, b, c) of the 16 E2M1 codes and every
  2-bit r, the kernel's code equals the exact model's (:func:`refarith.exact.ops.fma`, the exact a * b + c
  rounded once); it is the toward-zero neighbour t or the away-from-zero neighbour u of the exact value; the
  result is monotone in r (away at r implies away at every larger r); and where u is finite the number of r
  giving u equals :func:`refarith.exact.stochastic.up_count` of the exact fraction (a * b + c - t) / (u - t).
* ``sr.fma.a.past_budget.binary8p2se`` (expected verdict **counterexample**): the claim "the round-to-odd binary64
  path is exact at k = 51 = 52 - p + 1 for P3109 binary8p2se" is false; with the bound lifted the kernel rounds
  1 + 2^-64 (the product of the smallest value with itself, plus one) up at r = 2^51 - 1, where the exact model
  does not.  It shows that :func:`refarith.fast.oddsum.fma_sr_max_bits` is needed.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from refarith.exact import ops as _ops
from refarith.exact.stochastic import up_count
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, theorem

K = 2


def check_fma_sr_e2m1(variant: str, k: int = K) -> Outcome:
    """The check of ``sr.fma.<variant>.exact.e2m1`` (module docstring)."""
    from refarith.fast.oddsum import fma_rto

    f = "ocp_e2m1"
    codes = np.arange(16)
    a, b, c = (t.reshape(-1) for t in np.meshgrid(codes, codes, codes, indexing="ij"))
    rs = np.arange(1 << k)
    got = np.stack([np.asarray(fma_rto(a, b, c, f, "sr", nan_policy="max", rand=np.full(a.shape, r), rand_bits=k,
                                       sr_variant=variant)) for r in rs], axis=1)
    for i in range(len(a)):
        x, y, z = int(a[i]), int(b[i]), int(c[i])
        exp = [_ops.fma(x, y, z, f, "sr", rand=int(r), rand_bits=k, sr_variant=variant, nan_policy="max").code
               for r in rs]
        g = [int(v) for v in got[i]]
        if g != exp:
            j = next(j for j in range(len(rs)) if g[j] != exp[j])
            return Outcome(COUNTEREXAMPLE, {"a": x, "b": y, "c": z, "r": j, "kernel": g[j], "exact": exp[j]}, True,
                           detail="kernel differs from the exact model", method="enumeration")
        t = _ops.fma(x, y, z, f, "rtz", nan_policy="max").code
        v = _ops.exact_add(_ops.exact_mul(_ops.decode(x, f), _ops.decode(y, f)), _ops.decode(z, f))
        u = _ops.fma(x, y, z, f, "rup" if not v.sign else "rdn", overflow="saturate", nan_policy="max").code
        away = [e != t for e in g]
        if not set(g) <= {t, u} or any(away[j] and not away[j + 1] for j in range(len(rs) - 1)):
            return Outcome(COUNTEREXAMPLE, {"a": x, "b": y, "c": z, "codes": g}, True,
                           detail="not a neighbour, or not monotone in r", method="enumeration")
        tv, uv = _ops.decode(t, f), _ops.decode(u, f)
        if v.is_finite and tv.is_finite and uv.is_finite and tv.mag != uv.mag:
            frac = (v.mag - tv.mag) / (uv.mag - tv.mag)
            if sum(away) != up_count(variant, Fraction(frac), k):
                return Outcome(COUNTEREXAMPLE, {"a": x, "b": y, "c": z, "ups": sum(away)}, True,
                               detail="round-up count differs from up_count", method="enumeration")
    return Outcome(PROVED, detail=f"{len(a)} triples x {1 << k} values of r enumerated", method="enumeration")


def _register(variant: str) -> None:
    @theorem(f"sr.fma.{variant}.exact.e2m1",
             f"(enumeration of the numpy kernel) every E2M1 triple (a, b, c) and every {K}-bit r: "
             f"fma(ocp_e2m1,rounding=sr,sr={variant},k={K},nan=max) of refarith.fast.oddsum.fma_rto equals the "
             "exact model, is one of the two neighbours of a * b + c, is monotone in r, and rounds away for "
             "exactly up_count(frac) values of r", budget=30, tags=("sr", "kernel", "fma", variant))
    def exact():
        return check_fma_sr_e2m1(variant)


for _v in ("a", "b", "c", "c_odd"):
    _register(_v)


@theorem("sr.fma.a.past_budget.binary8p2se",
         "(enumeration) the round-to-odd binary64 fma path is exact at k = 51 (one past 52 - p) for binary8p2se: "
         "false, 1 + 2^-64 at r = 2^51 - 1", expect=COUNTEREXAMPLE, budget=10, tags=("sr", "kernel", "fma"))
def past_budget():
    from unittest import mock

    from refarith.fast import oddsum

    f = "binary8p2se"
    tiny, one = _ops.encode(Fraction(1, 1 << 32), f).code, _ops.encode(1, f).code
    k = 51
    r = (1 << k) - 1
    exp = _ops.fma(tiny, tiny, one, f, "sr", rand=r, rand_bits=k, sr_variant="a").code
    with mock.patch.object(oddsum, "fma_sr_max_bits", lambda fmt, variant: None):
        got = int(oddsum.fma_rto(np.array([tiny]), np.array([tiny]), np.array([one]), f, "sr",
                                 rand=np.array([r], dtype=np.uint64), rand_bits=k, sr_variant="a")[0])
    if got != exp:
        return Outcome(COUNTEREXAMPLE, {"a": tiny, "b": tiny, "c": one, "r": r, "kernel": got, "exact": exp}, True,
                       detail="the round-to-odd value decides differently one bit past the budget",
                       method="enumeration")
    return Outcome(PROVED, detail="equal at k = 51", method="enumeration")
