"""Theorems of the fast stochastic add, sub, mul, div (:func:`refarith.fast.arith.arith`, ``rounding="sr"``) and
of the fast dot product's stochastic accumulator (:func:`refarith.fast.fdot.fdot`), numpy, by exhaustive
enumeration.

Both kernels are binary64 arithmetic followed by a stochastic rounding, not a recorded ``BitOps`` word graph, so
Z3 has nothing to read: these theorems enumerate the kernel over a stated domain instead (as
:mod:`refarith.smt.theorems.fmasr` does for fma).

* ``sr.arith.OP.V.exact.FMT`` (OP = add, sub, mul, div; V = a, b, c, c_odd with k = 2 on E2M1 and E3M2 -- E2M1
  sums and products have fractions of at most 2 bits, where the variants agree, so E3M2 and div tell them apart;
  V = te_e2m1_8 with k = 8 on E2M1 only, where it applies): enumeration of every operand pair (a, b) of the
  format's codes (256 pairs of E2M1, 4096 of E3M2) and every k-bit r, ``nan=max``:

  - the kernel's code equals the exact model's (:func:`refarith.exact.ops.add` ... ``div`` with ``rand=r``);
  - it is the toward-zero neighbour t or the away-from-zero neighbour u of the exact value v (the exact model's
    ``rtz`` and ``rup``/``rdn`` codes, overflow saturated);
  - the result is monotone in r (away at r implies away at every larger r);
  - where t and u are distinct finite values, the number of r giving u equals
    :func:`refarith.exact.stochastic.up_count` of the fraction (|v| - |t|) / (|u| - |t|), and the mean over r
    of the kernel's values equals v exactly when that fraction has at most k bits (unbiased), and otherwise
    lies within :func:`refarith.exact.stochastic.bias_bounds` ulps of it.
* ``sr.arith.mul.a.unbiased_beyond_k.e3m2`` (enumeration; expected verdict **counterexample**): the claim "the
  mean over every 2-bit r of the kernel's E3M2 product equals the exact product for every pair" is false where
  the fraction has more than k bits (the first: the smallest subnormal squared, 1/16 of an ulp, never rounds up);
  the first biased pair is returned.
* ``sr.fdot.V.exact.e2m1x2->ACC`` (V = a, b, c, c_odd into ``ocp_e3m2`` with k = 2; te_e2m1_8 into ``ocp_e2m1``
  with k = 8), enumeration over E2M1 two-element vectors, sequential order (two roundings: 0 + x0 y0 with r0,
  then + x1 y1 with r1):

  - every pair of vectors (x, y) (65,536 pairs) and every (r0, r1) (te_e2m1_8: a sample of 8 pairs, (0, 0),
    (0, 255), (255, 0), (255, 255), (127, 128), (128, 127), (1, 1), (254, 254)): the kernel's code equals the
    exact model's (:func:`refarith.exact.fdot.accumulate` of the exact products; it is called once per distinct
    product vector and (r0, r1), since the products are all it reads);
  - the first addition, every (x0, y0) and every r0: the neighbour, monotonicity, up_count and expectation
    statements above for 0 + x0 y0;
  - the second addition, one vector pair per distinct product vector, every r1 with each r0 (te_e2m1_8: r0 in
    {0, 255}): with a = the exact model's first result at r0, the same statements for a + x1 y1 over r1.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from refarith.exact import fdot as _efd
from refarith.exact import ops as _ops
from refarith.exact.rounding import round_value
from refarith.exact.stochastic import bias_bounds, up_count
from refarith.exact.value import Value
from refarith.formats import get_format
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, theorem

OPS = ("add", "sub", "mul", "div")
VARIANTS = ("a", "b", "c", "c_odd")
ARITH_CASES = (("ocp_e2m1", 2), ("ocp_e3m2", 2))
TE_K = 8
FDOT_ACC, FDOT_K = "ocp_e3m2", 2


def _short(fmt: str) -> str:
    return fmt.removeprefix("ocp_")


def judge(codes: np.ndarray, lo: np.ndarray, hi: np.ndarray, values: list, fmt: str, variant: str, k: int,
          where, claim_unbiased: bool = False) -> Outcome | None:
    """The neighbour, monotonicity, up_count and expectation statements for elements i with the kernel's codes
    ``codes[i, r]`` over every r (ascending), the exact toward-zero and away codes ``lo``, ``hi`` and the exact
    values ``values[i]`` (:class:`~refarith.exact.value.Value`); a counterexample Outcome (``where(i)`` names the
    element) or None.  ``claim_unbiased``: the false claim that every mean over r equals the value."""
    f = get_format(fmt)
    codes = np.asarray(codes, dtype=np.int64)
    lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    away = (codes == hi[:, None]) & (lo != hi)[:, None]
    member = (codes == lo[:, None]) | (codes == hi[:, None])
    mono = ~(away[:, :-1] & ~away[:, 1:])
    bad = np.flatnonzero(~member.all(axis=1) | ~mono.all(axis=1))
    if bad.size:
        i = int(bad[0])
        return Outcome(COUNTEREXAMPLE, dict(where(i), codes=codes[i].tolist(), toward_zero=int(lo[i]),
                                            away=int(hi[i])), True,
                       detail="not one of the two neighbours, or not monotone in r", method="enumeration")
    ups = away.sum(axis=1)
    bl, bh, bl_in, bh_in = bias_bounds(variant, k)
    dec: dict[int, object] = {}
    done: set = set()  # (|v|, |t|, |u|, ups) already judged: both signs of one magnitude are judged once
    for i in np.flatnonzero(lo != hi).tolist():
        v = values[i]
        if not v.is_finite:
            continue
        for c in (int(lo[i]), int(hi[i])):
            if c not in dec:
                dec[c] = _ops.decode(c, f)
        t, u = dec[int(lo[i])], dec[int(hi[i])]
        if not (t.is_finite and u.is_finite) or t.mag == u.mag:
            continue
        n_up = int(ups[i])
        key = (v.mag, t.mag, u.mag, n_up)
        if key in done:
            continue
        done.add(key)
        ulp = u.mag - t.mag
        frac = (v.mag - t.mag) / ulp
        mean = t.mag + Fraction(n_up, 1 << k) * ulp  # the mean magnitude of the kernel's results over r
        bias = (mean - v.mag) / ulp
        point = dict(where(i), frac_ulps=str(frac), round_up_probability=f"{n_up}/{1 << k}", bias_ulps=str(bias))
        if claim_unbiased:
            if bias != 0:
                return Outcome(COUNTEREXAMPLE, point, True, detail="biased where frac has more than k bits",
                               method="enumeration")
            continue
        closed = up_count(variant, frac, k, int(t.mag / ulp), ulp)
        if n_up != closed:
            return Outcome(COUNTEREXAMPLE, dict(point, closed_form=closed), True,
                           detail="round-up count differs from up_count", method="enumeration")
        if (frac * (1 << k)).denominator == 1 and bias != 0:
            return Outcome(COUNTEREXAMPLE, point, True, detail="biased with at most k fraction bits",
                           method="enumeration")
        if not ((bl <= bias if bl_in else bl < bias) and (bias <= bh if bh_in else bias < bh)):
            return Outcome(COUNTEREXAMPLE, dict(point, bounds=[str(bl), str(bh)]), True,
                           detail="bias outside the stated bound", method="enumeration")
    return None


def _exact_value(op: str, x: int, y: int, f) -> object:
    va, vb = _ops.decode(x, f), _ops.decode(y, f)
    if op == "add":
        return _ops.exact_add(va, vb)
    if op == "sub":
        return _ops.exact_add(va, -vb)
    if op == "mul":
        return _ops.exact_mul(va, vb)
    return _ops.exact_div(va, vb)


_NEIGHBOURS: dict[tuple[str, str], tuple] = {}


def _neighbours(op: str, fmt: str) -> tuple:
    """(a, b, toward-zero codes, away codes, exact values) of every operand pair, from the exact model."""
    if (op, fmt) not in _NEIGHBOURS:
        f = get_format(fmt)
        codes = np.arange(f.ncodes)
        a, b = (t.reshape(-1) for t in np.meshgrid(codes, codes, indexing="ij"))
        fn = getattr(_ops, op)
        lo, hi, vals = [], [], []
        for x, y in zip(a.tolist(), b.tolist()):
            v = _exact_value(op, x, y, f)
            vals.append(v)
            lo.append(fn(x, y, f, "rtz", nan_policy="max").code)
            hi.append(fn(x, y, f, "rdn" if v.sign else "rup", overflow="saturate", nan_policy="max").code)
        _NEIGHBOURS[op, fmt] = (a, b, np.array(lo), np.array(hi), vals)
    return _NEIGHBOURS[op, fmt]


def check_arith_sr(op: str, variant: str, fmt: str, k: int, claim_unbiased: bool = False) -> Outcome:
    """The check of ``sr.arith.<op>.<variant>.exact.<fmt>`` (module docstring); ``claim_unbiased``: the false
    claim of ``unbiased_beyond_k`` (the kernel-equals-exact part is checked first either way)."""
    from refarith.fast.arith import arith

    a, b, lo, hi, vals = _neighbours(op, fmt)
    f = get_format(fmt)
    rs = range(1 << k)
    got = np.stack([np.asarray(arith(op, a, b, f, "sr", nan_policy="max", rand=np.full(a.shape, r), rand_bits=k,
                                     sr_variant=variant)).astype(np.int64) for r in rs], axis=1)
    fn = getattr(_ops, op)
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        for r in rs:
            e = fn(x, y, f, "sr", rand=r, rand_bits=k, sr_variant=variant, nan_policy="max").code
            if int(got[i, r]) != e:
                return Outcome(COUNTEREXAMPLE, {"op": op, "a": x, "b": y, "r": r, "kernel": int(got[i, r]),
                                                "exact": e}, True,
                               detail="kernel differs from the exact model", method="enumeration")
    out = judge(got, lo, hi, vals, fmt, variant, k,
                lambda i: {"op": op, "format": fmt, "k": k, "a": int(a[i]), "b": int(b[i]), "exact": str(vals[i])},
                claim_unbiased)
    if out is not None:
        return out
    return Outcome(PROVED, detail=f"{len(a)} pairs x {1 << k} values of r enumerated", method="enumeration")


def _register_arith(op: str, variant: str, fmt: str, k: int) -> None:
    @theorem(f"sr.arith.{op}.{variant}.exact.{_short(fmt)}",
             f"(enumeration of the numpy kernel) every {fmt} pair (a, b) and every {k}-bit r: "
             f"{op}({fmt},rounding=sr,sr={variant},k={k},nan=max) of refarith.fast.arith equals the exact model, is "
             "one of the two neighbours of the exact result, is monotone in r, rounds away for exactly "
             "up_count(frac) values of r, and its mean over r is the exact result when frac has at most k bits",
             budget=30, tags=("sr", "kernel", "arith", op, variant))
    def exact():
        return check_arith_sr(op, variant, fmt, k)


for _op in OPS:
    for _fmt, _k in ARITH_CASES:
        for _v in VARIANTS:
            _register_arith(_op, _v, _fmt, _k)
    _register_arith(_op, "te_e2m1_8", "ocp_e2m1", TE_K)


@theorem("sr.arith.mul.a.unbiased_beyond_k.e3m2",
         "(enumeration of the numpy kernel) claim: the mean over every 2-bit r of mul(ocp_e3m2,rounding=sr,sr=a,k=2) "
         "equals the exact product for every pair -- false where the fraction has more than k bits (expected "
         "verdict: counterexample)", expect=COUNTEREXAMPLE, budget=20, tags=("sr", "kernel", "arith", "mul", "a"))
def _unbiased_beyond_k():
    return check_arith_sr("mul", "a", "ocp_e3m2", 2, claim_unbiased=True)


# ------------------------------------------------------------------ fdot accumulator

def _fdot_r_pairs(variant: str, k: int) -> list[tuple[int, int]]:
    """The (r0, r1) of the kernel-equals-exact stage: all of them, or for te_e2m1_8 the stated sample."""
    top = (1 << k) - 1
    if variant != "te_e2m1_8":
        return [(r0, r1) for r0 in range(top + 1) for r1 in range(top + 1)]
    return sorted({(0, 0), (0, top), (top, 0), (top, top), (top >> 1, (top >> 1) + 1), ((top >> 1) + 1, top >> 1),
                   (1, 1), (top - 1, top - 1)})


def _fdot_r0s(variant: str, k: int) -> list[int]:
    """The r0 of the counting stage (every r1 with each): all of them, or for te_e2m1_8 the stated sample."""
    top = (1 << k) - 1
    return [0, top] if variant == "te_e2m1_8" else list(range(top + 1))


def _vkey(v) -> tuple:
    return v.kind, v.sign, v.mag


def _directed(v, af) -> tuple[int | None, int | None]:
    """The exact model's toward-zero and away-from-zero codes of a finite v in ``af`` (overflow saturated)."""
    if not v.is_finite:
        return None, None
    return (round_value(v, af, "rtz", "saturate").code,
            round_value(v, af, "rdn" if v.sign else "rup", "saturate").code)


def check_fdot_sr(variant: str, acc: str, k: int) -> Outcome:
    """The check of ``sr.fdot.<variant>.exact.e2m1x2-><acc>`` (module docstring)."""
    from refarith.fast.fdot import fdot

    fmt = "ocp_e2m1"
    f, af = get_format(fmt), get_format(acc)
    codes = np.arange(f.ncodes)
    g = [t.reshape(-1) for t in np.meshgrid(codes, codes, codes, codes, indexing="ij")]
    x, y = np.stack([g[0], g[1]], axis=1), np.stack([g[2], g[3]], axis=1)
    n = len(x)
    table = [[_efd.products([c], [d], fmt)[0] for d in range(f.ncodes)] for c in range(f.ncodes)]
    p0 = [table[c][d] for c, d in zip(g[0].tolist(), g[2].tolist())]
    p1 = [table[c][d] for c, d in zip(g[1].tolist(), g[3].tolist())]
    kw = dict(rounding="sr", rand_bits=k, sr_variant=variant)

    def kernel(xs, ys, r):
        return np.asarray(fdot(xs, ys, fmt, acc, rand=r, **kw)).astype(np.int64)

    # stage A: every vector pair, the kernel against the exact model (called once per distinct product vector)
    groups: dict = {}
    gid = np.array([groups.setdefault((_vkey(p0[i]), _vkey(p1[i])), len(groups)) for i in range(n)])
    reps = np.unique(gid, return_index=True)[1]  # the first vector pair of each group (ids in order of appearance)
    rpairs = _fdot_r_pairs(variant, k)
    for r0, r1 in rpairs:
        got = kernel(x, y, np.tile(np.array([[r0, r1]]), (n, 1)))
        want = np.array([_efd.accumulate([p0[i], p1[i]], af, rounding="sr", rand=[r0, r1], rand_bits=k,
                                         sr_variant=variant).code for i in reps.tolist()])
        bad = np.flatnonzero(got != want[gid])
        if bad.size:
            i = int(bad[0])
            return Outcome(COUNTEREXAMPLE, {"x": x[i].tolist(), "y": y[i].tolist(), "r": [r0, r1],
                                            "kernel": int(got[i]), "exact": int(want[gid[i]])}, True,
                           detail="kernel differs from the exact model", method="enumeration")
    rs = np.arange(1 << k)
    # stage B, first addition: every one-element vector (x0, y0) and every r0
    c0, d0 = (t.reshape(-1) for t in np.meshgrid(codes, codes, indexing="ij"))
    m = len(c0)
    first = kernel(np.repeat(c0, len(rs))[:, None], np.repeat(d0, len(rs))[:, None],
                   np.tile(rs, m)[:, None]).reshape(m, len(rs))
    v0 = [_ops.exact_add(Value.zero(0), table[c][d]) for c, d in zip(c0.tolist(), d0.tolist())]  # 0 + x0 y0
    lo, hi = zip(*[_directed(v, af) for v in v0])
    lo = [a if a is not None else int(first[i, 0]) for i, a in enumerate(lo)]
    hi = [a if a is not None else int(first[i, 0]) for i, a in enumerate(hi)]
    out = judge(first, np.array(lo), np.array(hi), v0, acc, variant, k,
                lambda i: {"x0": int(c0[i]), "y0": int(d0[i]), "addition": 0})
    if out is not None:
        return out
    # stage B, second addition: one vector pair per distinct product vector, each r0 of the stage, every r1
    reps = reps.tolist()
    a1 = {(c, d): [_efd.accumulate([table[c][d]], af, rounding="sr", rand=[int(r)], rand_bits=k,
                                   sr_variant=variant).code for r in rs] for c, d in zip(c0.tolist(), d0.tolist())}
    for r0 in _fdot_r0s(variant, k):
        xs, ys = np.repeat(x[reps], len(rs), axis=0), np.repeat(y[reps], len(rs), axis=0)
        rr = np.stack([np.full(len(xs), r0), np.tile(rs, len(reps))], axis=1)
        got = kernel(xs, ys, rr).reshape(len(reps), len(rs))
        vals, lo, hi = [], [], []
        for j, i in enumerate(reps):
            acc1 = _ops.decode(a1[int(x[i, 0]), int(y[i, 0])][r0], af)
            s = _ops.exact_add(acc1, p1[i])
            t, u = _directed(s, af)
            vals.append(s)
            lo.append(t if t is not None else int(got[j, 0]))
            hi.append(u if u is not None else int(got[j, 0]))
        out = judge(got, np.array(lo), np.array(hi), vals, acc, variant, k,
                    lambda j, r0=r0: {"x": x[reps[j]].tolist(), "y": y[reps[j]].tolist(), "r0": r0, "addition": 1})
        if out is not None:
            return out
    return Outcome(PROVED, detail=f"{n} vector pairs x {len(rpairs)} (r0, r1) against the exact model "
                                  f"({len(reps) * len(rpairs)} exact accumulations); neighbours and counts on "
                                  f"{len(reps)} distinct product vectors", method="enumeration")


def _register_fdot(variant: str, acc: str, k: int) -> None:
    sample = (" (r sampled: 8 (r0, r1) pairs against the exact model; the neighbour and count statements over every "
              "r0, and over every r1 with r0 in {0, 255})") if variant == "te_e2m1_8" else ""

    @theorem(f"sr.fdot.{variant}.exact.e2m1x2->{_short(acc)}",
             f"(enumeration of the numpy kernel) every pair of E2M1 two-element vectors and every {k}-bit (r0, r1)"
             f"{sample}: fdot(ocp_e2m1->{acc},rounding=sr,sr={variant},k={k}) of refarith.fast.fdot equals the "
             "exact model, and each addition's result is one of the two neighbours of its exact sum, monotone in "
             "its r, rounding away for exactly up_count(frac) values of it", budget=60,
             tags=("sr", "kernel", "fdot", variant))
    def exact():
        return check_fdot_sr(variant, acc, k)


for _v in VARIANTS:
    _register_fdot(_v, FDOT_ACC, FDOT_K)
_register_fdot("te_e2m1_8", "ocp_e2m1", TE_K)
