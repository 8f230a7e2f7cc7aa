"""Integer accumulation length theorems: the exact maximum K of products summed into an accumulator.

For input format I and accumulator A: every product x*y of I values lies in [pmin, pmax] (x*y is bilinear, so
its extremes are at the corners of the input box; cross-checked by enumerating all pairs for inputs of at most
8 bits), hence every partial sum of k products lies in [k*pmin, k*pmax] (induction on k).  ``intdot.safe.*``:
Z3 (linear integer arithmetic) proves that for every k <= K every such sum fits A -- no overflow at any step, in
any order.  ``intdot.overflow.*``: the claim for K+1 is false; the counterexample (K+1 copies of the extreme
product) is replayed through the exact accumulator model :mod:`refarith.exact.intdot`.
"""

from __future__ import annotations

import z3

from refarith.exact.intdot import accumulate, int_dot, max_safe_length
from refarith.formats import get_format
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, prove, theorem

CASES = (
    ("int8_sym", "int32", "symmetric int8 x int8 into int32: floor((2^31-1)/127^2)"),
    ("int8", "int32", "full-range int8 (with -128) into int32: floor((2^31-1)/128^2)"),
    ("int4_sym", "int32", "symmetric int4 products into int32"),
    ("int4", "int32", "full-range int4 products into int32"),
    ("int8_sym", "int16", "symmetric int8 products into an int16 accumulator"),
    ("int8", "int16", "full-range int8 products into an int16 accumulator"),
    ("int16_sym", "int32", "symmetric int16 pair products into int32"),
    ("int16", "int32", "int16 pair-FMA into int32: (-32768)^2 + (-32768)^2 = 2^31 > INT32_MAX"),
)


def product_range(in_fmt: str) -> tuple[int, int]:
    """(pmin, pmax) of x*y over the format's value range: corners, cross-checked by enumeration for <= 8 bits."""
    f = get_format(in_fmt)
    corners = [x * y for x in (f.min, f.max) for y in (f.min, f.max)]
    lo, hi = min(corners), max(corners)
    if f.bits <= 8:
        vals = range(f.min, f.max + 1)
        prods = {x * y for x in vals for y in vals}
        if (min(prods), max(prods)) != (lo, hi):
            raise AssertionError(f"{in_fmt}: corner products {lo, hi} disagree with enumeration")
    return lo, hi


def _all_sums_fit(in_fmt: str, acc_fmt: str, k_max: int) -> tuple[z3.BoolRef, z3.ArithRef, z3.ArithRef]:
    a = get_format(acc_fmt)
    pmin, pmax = product_range(in_fmt)
    k, s = z3.Ints("k s")
    claim = z3.Implies(z3.And(k >= 0, k <= k_max, s >= k * pmin, s <= k * pmax),
                       z3.And(s >= a.min - (1 if a.symmetric else 0), s <= a.max))
    return claim, k, s


def _extreme_pair(in_fmt: str, acc_fmt: str, s_val: int, k_val: int) -> tuple[int, int]:
    f = get_format(in_fmt)
    pmin, pmax = product_range(in_fmt)
    target = pmax if s_val > 0 else pmin
    for x in (f.min, f.max):
        for y in (f.min, f.max):
            if x * y == target:
                return x, y
    raise AssertionError("no corner attains the extreme product")


def _safe(in_fmt: str, acc_fmt: str, why: str) -> None:
    kmax = max_safe_length(in_fmt, acc_fmt)

    @theorem(f"intdot.safe.{in_fmt}->{acc_fmt}",
             f"{why}: every sequence of at most K = {kmax} products of {in_fmt} values accumulates into {acc_fmt} "
             f"without overflow at any step (wrap and saturate then equal the exact sum)",
             expect=PROVED, budget=30, tags=("intdot",))
    def check() -> Outcome:
        claim, k, sv = _all_sums_fit(in_fmt, acc_fmt, kmax)
        out = prove(claim, {"k": k, "s": sv}, 25)
        if out.verdict == PROVED:
            out.detail = f"K = {kmax}"
        return out


def _overflow(in_fmt: str, acc_fmt: str, why: str) -> None:
    kmax = max_safe_length(in_fmt, acc_fmt)

    @theorem(f"intdot.overflow.{in_fmt}->{acc_fmt}",
             f"claim (false): K = {kmax + 1} products of {in_fmt} values always fit {acc_fmt}; expected "
             f"counterexample: {kmax + 1} copies of the extreme product overflow, so K = {kmax} is the exact maximum",
             expect=COUNTEREXAMPLE, budget=60, tags=("intdot",))
    def check() -> Outcome:
        claim, k, sv = _all_sums_fit(in_fmt, acc_fmt, kmax + 1)
        return prove(claim, {"k": k, "s": sv}, 25, lambda a: _replay(in_fmt, acc_fmt, kmax, a["k"], a["s"]))


def _replay(in_fmt: str, acc_fmt: str, kmax: int, kk: int, ss: int) -> tuple[dict, bool]:
    """A solver's overflowing (length, sum) replayed through the exact model as kmax + 1 copies of the extreme
    product."""
    x, y = _extreme_pair(in_fmt, acc_fmt, ss, kk)
    n = kmax + 1
    exact_sum = n * x * y
    if n <= 200_000:  # replay the whole sequence through the exact model
        wrapped = int_dot([x] * n, [y] * n, in_fmt, acc_fmt, "wrap")
        saturated = int_dot([x] * n, [y] * n, in_fmt, acc_fmt, "saturate")
    else:  # the first kmax steps are exact (intdot.safe); replay the overflowing last step
        wrapped = accumulate(kmax * x * y, x * y, acc_fmt, "wrap")
        saturated = accumulate(kmax * x * y, x * y, acc_fmt, "saturate")
    shown = {"length": n, "x": x, "y": y, "exact_sum": exact_sum, "wrap": wrapped, "saturate": saturated,
             "solver_k": kk, "solver_sum": ss}
    return shown, wrapped != exact_sum and saturated != exact_sum


for _i, _a, _why in CASES:
    _safe(_i, _a, _why)
    _overflow(_i, _a, _why)
