"""Theorems of the stochastic rounding variants (:mod:`refarith.exact.stochastic`).

Per variant V (a, b, c, c_odd on binary16 -> ocp_e4m3 with k = 4; te_e2m1_8 on binary16 -> ocp_e2m1 with k = 8):

* ``sr.V.neighbours.SRC->DST`` (Z3, on the traced cast graph -- the code the Triton backend emits): for every
  source pattern x and every k-bit r, the stochastic code is the toward-zero code or the away-from-zero code of
  x (the rtz and the rup/rdn kernels, themselves proved equal to the spec by the ``cast.*`` theorems).
* ``sr.V.monotone_r.SRC->DST`` (Z3, same graph): r1 <= r2 and x rounds away from zero at r1 imply it does at r2.
* ``sr.V.expectation.FMT`` (exhaustive enumeration with the exact model, k = 1..4, every grid point
  (n + j / 2^(k+3)) ulp of every binade of FMT, both signs; for te_e2m1_8, k = 8 and every 61st j of the
  positive grid, a sample): the number of r that round up equals
  :func:`~refarith.exact.stochastic.up_count`; the mean of the results equals the value when the fraction has
  at most k bits; otherwise the bias lies within :func:`~refarith.exact.stochastic.bias_bounds`.
* ``sr.V.unbiased_beyond_k.FMT`` (enumeration; expected verdict **counterexample**): "V is unbiased for every
  fraction, also with more than k bits" is false: the first biased grid point is the counterexample.
"""

from __future__ import annotations

from fractions import Fraction

import z3

from refarith.errors import RefarithError
from refarith.exact.ops import cast as exact_cast
from refarith.exact.ops import decode
from refarith.exact.rounding import pow2, round_value
from refarith.exact.stochastic import bias_bounds, up_count
from refarith.exact.value import Value
from refarith.fast.graphs import cast_graph
from refarith.fast.trace import evaluate
from refarith.formats import get_format
from refarith.smt.bitops_z3 import Z3BitOps
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, prove, theorem

CASES = (("a", "binary16", "ocp_e4m3", 4), ("b", "binary16", "ocp_e4m3", 4), ("c", "binary16", "ocp_e4m3", 4),
         ("c_odd", "binary16", "ocp_e4m3", 4), ("te_e2m1_8", "binary16", "ocp_e2m1", 8))
ENUM_FORMAT = {"a": "ocp_e3m2", "b": "ocp_e3m2", "c": "ocp_e3m2", "c_odd": "ocp_e3m2", "te_e2m1_8": "ocp_e2m1"}


def _policy(dst: str) -> tuple[str, str]:
    f = get_format(dst)
    return "saturate", ("error" if f.has_nan else "max")


def _codes(src: str, dst: str, rounding: str, x, r=None, k: int | None = None, variant: str = "a"):
    ov, nan = _policy(dst)
    g = cast_graph(src, dst, rounding, ov, nan, "error", k if rounding == "sr" else None, sr_variant=variant)
    ops = Z3BitOps(g.width)
    ins = [ops.word(x)] + ([ops.word(r)] if rounding == "sr" else [])
    codes, _err = evaluate(g, ops, ins)
    return ops.word(codes), g.digest


def _exact(x: int, src: str, dst: str, rounding: str, r: int | None = None, k: int | None = None,
           variant: str = "a") -> int | None:
    ov, nan = _policy(dst)
    try:
        return exact_cast(x, src, dst, rounding, ov, nan, rand=r, rand_bits=k, sr_variant=variant).code
    except RefarithError:
        return None


def _away(src: str, x: int) -> str:
    return "rdn" if (x >> (get_format(src).nbits - 1)) & 1 else "rup"


def prove_neighbours(variant: str, src: str, dst: str, k: int, timeout_s: float = 110.0) -> Outcome:
    """Z3: the stochastic kernel's code is the rtz kernel's or the away-from-zero kernel's, for all (x, r)."""
    sf = get_format(src)
    x = z3.BitVec("x", sf.nbits)
    r = z3.BitVec("r", k)
    sr, d1 = _codes(src, dst, "sr", x, r, k, variant)
    lo, d2 = _codes(src, dst, "rtz", x)
    up, d3 = _codes(src, dst, "rup", x)
    dn, d4 = _codes(src, dst, "rdn", x)
    neg = z3.Extract(sf.nbits - 1, sf.nbits - 1, x) == 1
    away = z3.If(neg, dn, up)
    claim = z3.Or(sr == lo, sr == away)

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        xv, rv = a["x"], a["r"]
        ex = _exact(xv, src, dst, "sr", rv, k, variant)
        ok = ex in (_exact(xv, src, dst, "rtz"), _exact(xv, src, dst, _away(src, xv)))
        return {"source_bits": f"{xv:#x}", "source_value": str(decode(xv, sf)), "r": rv, "k": k,
                "kernel": a.get("sr"), "exact_model": ex}, not ok

    out = prove(claim, {"x": x, "r": r}, timeout_s, confirm, observe={"sr": sr})
    out.detail = (out.detail + " " if out.detail else "") + "graphs " + ",".join((d1, d2, d3, d4))
    return out


def prove_monotone_r(variant: str, src: str, dst: str, k: int, timeout_s: float = 110.0) -> Outcome:
    """Z3: r1 <= r2 and a round-away result at r1 imply a round-away result at r2 (where rtz != away)."""
    sf = get_format(src)
    x = z3.BitVec("x", sf.nbits)
    r1, r2 = z3.BitVec("r1", k), z3.BitVec("r2", k)
    s1, d1 = _codes(src, dst, "sr", x, r1, k, variant)
    s2, _ = _codes(src, dst, "sr", x, r2, k, variant)
    lo, _ = _codes(src, dst, "rtz", x)
    claim = z3.Implies(z3.And(z3.ULE(r1, r2), s1 != lo), s2 == s1)

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        xv, a1, a2 = a["x"], a["r1"], a["r2"]
        e1, e2 = _exact(xv, src, dst, "sr", a1, k, variant), _exact(xv, src, dst, "sr", a2, k, variant)
        lo_e = _exact(xv, src, dst, "rtz")
        return {"source_bits": f"{xv:#x}", "r1": a1, "r2": a2, "exact_r1": e1, "exact_r2": e2}, \
            e1 != lo_e and e2 != e1

    out = prove(claim, {"x": x, "r1": r1, "r2": r2}, timeout_s, confirm)
    out.detail = (out.detail + " " if out.detail else "") + "graph " + d1
    return out


def _grid(fmt_name: str, k: int, stride: int = 1):
    """(sign, n, j, ulp): every point (n + j/2^(k+3)) * ulp between two finite neighbours of the format (every
    ``stride``-th j, and for stride > 1 the positive sign only)."""
    f = get_format(fmt_name)
    for e in range(f.emin, f.emax + 1):
        ulp = pow2(e - f.mbits)
        n_lo = 0 if (e == f.emin and f.subnormals) else (1 << f.mbits)
        for n in range(n_lo, 1 << (f.mbits + 1)):
            if (n + 1) * ulp > f.max:
                return
            for j in range(1, 1 << (k + 3), stride):
                for s in ((0, 1) if f.signed and stride == 1 else (0,)):
                    yield s, n, j, ulp


def enumerate_expectation(variant: str, fmt_name: str, ks: tuple[int, ...] = (1, 2, 3, 4),
                          claim_unbiased_always: bool = False) -> Outcome:
    """Enumeration with the exact model (see the module docstring).  With ``claim_unbiased_always`` the claim is
    that every grid point is unbiased, and the first biased one is returned as the counterexample."""
    f = get_format(fmt_name)
    checked = 0
    for k in ks if variant != "te_e2m1_8" else (8,):
        lo, hi, lo_in, hi_in = bias_bounds(variant, k)
        # te_e2m1_8 (k = 8): every 61st j of the 2^11, positive values (about 10^5 roundings)
        for s, n, j, ulp in _grid(fmt_name, k, 61 if variant == "te_e2m1_8" else 1):
            frac = Fraction(j, 1 << (k + 3))
            mag = (n + frac) * ulp
            base = n * ulp
            ups = 0
            for r in range(1 << k):
                c = round_value(Value("finite", s, mag), f, "sr", "saturate", "max" if not f.has_nan else "error",
                                rand=r, rand_bits=k, sr_variant=variant).code
                got = decode(c, f).mag
                if got not in (base, base + ulp):
                    return Outcome(COUNTEREXAMPLE, {"k": k, "x": str(mag), "r": r, "result": str(got)}, True,
                                   detail="not a neighbour", method="enumeration")
                ups += got != base
            checked += 1
            bias = Fraction(ups, 1 << k) - frac
            point = {"variant": variant, "format": fmt_name, "k": k, "x": str(-mag if s else mag),
                     "frac_ulps": str(frac), "round_up_probability": f"{ups}/{1 << k}", "bias_ulps": str(bias)}
            if claim_unbiased_always:
                if bias != 0:
                    return Outcome(COUNTEREXAMPLE, point, True, detail="biased where frac has more than k bits",
                                   method="enumeration")
                continue
            if ups != up_count(variant, frac, k, n, ulp):
                return Outcome(COUNTEREXAMPLE, dict(point, closed_form=up_count(variant, frac, k, n, ulp)), True,
                               detail="round-up count differs from the closed form", method="enumeration")
            if (frac * (1 << k)).denominator == 1 and bias != 0:
                return Outcome(COUNTEREXAMPLE, point, True, detail="biased with at most k fraction bits",
                               method="enumeration")
            if not ((lo <= bias if lo_in else lo < bias) and (bias <= hi if hi_in else bias < hi)):
                return Outcome(COUNTEREXAMPLE, dict(point, bounds=[str(lo), str(hi)]), True,
                               detail="bias outside the stated bound", method="enumeration")
    return Outcome(PROVED, detail=f"{checked} grid points x every r enumerated", method="enumeration")


def _register(variant: str, src: str, dst: str, k: int) -> None:
    pair = f"{src}->{dst}"

    @theorem(f"sr.{variant}.neighbours.{pair}",
             f"(Z3, traced cast graph) for all {src} x and all {k}-bit r: cast(rounding=sr,sr={variant},k={k}) "
             f"gives the rtz code or the away-from-zero (rup/rdn) code of x (overflow=saturate)",
             budget=120, tags=("sr", "kernel", variant))
    def neighbours():
        return prove_neighbours(variant, src, dst, k)

    @theorem(f"sr.{variant}.monotone_r.{pair}",
             f"(Z3, traced cast graph) for all {src} x and {k}-bit r1 <= r2: if sr={variant} rounds x away from "
             "zero at r1 it does at r2", budget=120, tags=("sr", "kernel", variant))
    def monotone():
        return prove_monotone_r(variant, src, dst, k)

    fmt = ENUM_FORMAT[variant]

    @theorem(f"sr.{variant}.expectation.{fmt}",
             f"(exhaustive enumeration, exact model) every grid point (n + j/2^(k+3)) ulp of {fmt}, k = "
             f"{'8 (every 61st j, positive)' if variant == 'te_e2m1_8' else '1..4'}, every r: sr={variant} gives a "
             "neighbour, rounds up for "
             "exactly up_count(frac) values of r, is unbiased when frac has at most k bits and within bias_bounds "
             "otherwise", budget=120, tags=("sr", "exact", variant))
    def expectation():
        return enumerate_expectation(variant, fmt)

    if variant != "te_e2m1_8":
        @theorem(f"sr.{variant}.unbiased_beyond_k.{fmt}",
                 f"(exhaustive enumeration, exact model) claim: sr={variant} is unbiased at every grid point of {fmt},"
                 " also where frac has more than k bits -- false (expected verdict: counterexample)",
                 expect=COUNTEREXAMPLE, budget=60, tags=("sr", "exact", variant))
        def unbiased_always():
            return enumerate_expectation(variant, fmt, (2,), claim_unbiased_always=True)


for _case in CASES:
    _register(*_case)
