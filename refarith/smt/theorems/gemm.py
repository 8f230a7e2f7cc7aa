"""GEMM accumulator error theorems (by enumeration) and the tensor-core claims, measured exactly.

``gemm.bound.<model>``: for every pair of OCP E2M1 vectors of length K = 2 (16^4 = 65536 cases, all of them, as
one 256 x 2 by 2 x 256 product of the numpy kernel), ``scaled_mm(ocp_e2m1->ocp_e5m2,acc=ocp_e5m2,accum=...)``
(E5M2: precision p = 3, u = 2^-3, so the accumulator rounds visibly) satisfies the classical bound
(Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., §4.2 and §4.3):

* exact-then-round: |D - S| <= u |S| (one rounding);
* sequential, fma_chain, pairwise, blocked, split_k, kahan: |D - S| <= gamma_K sum |p_k|, gamma_K = K u / (1 - K u);
* tensor_core (g, b, truncation, binary32-style normalisation toward zero into acc): |D - S| <=
  (K + 1) 2^-b max|p_k| + 2^(1 - p) |S| + 2^(1-p) * K 2^-b max|p_k| (alignment truncation of each term, one ulp
  of the normalisation, itself of the perturbed sum).

The worst relative error found is reported, and its case is replayed through the exact model
(:mod:`refarith.exact.gemm`), which must give the same code.  ``method="enumeration"``: no SMT query.

``gemm.tc_align_bound.<preset>`` (Z3): one group step of the truncating tensor-core presets (volta_tc = turing_tc,
ampere_tc, hopper_fp8: the accumulator t and g products aligned to the largest exponent E, truncated to multiples
of 2^(E - b), summed exactly, the sum truncated into binary32) satisfies |t' - S| <= 2^-23 |S| + (1 + 2^-23) n 2^-b M
with n = g + 1 terms, S their exact sum and M the largest |term|, for all terms that are integer multiples of a
unit 2^L below 2^(L + 80) with binary32-normal sums.  E4M3 products are multiples of 2^-18 below 2^18
(``gemm.int_sum_bound.ocp_e4m3``), and every accumulator value stays a multiple of 2^-18 (truncation to a grid of
2^-18 or coarser) below K 448^2 < 2^32 for K <= 2^14, so the theorem covers every group step of these presets on
E4M3 inputs; summed over the K / g steps it bounds the whole accumulation.  The proof has three Z3 queries: (A) per
term, (B) the binary32 truncation, (C) their sum in linear integer arithmetic; the Z3 terms of (A) and (B) are
evaluated against the exact model's steps on sampled values first.  ``gemm.tc_align_constant_tight.<preset>``: the
constant n cannot be lowered to n - 1 (a replayed group reaches n (2^(E-b) - 1) units of alignment loss).

``gemm.tc_align_sharp_bound.<preset>`` (Z3) sharpens the step bound to |t' - S| <= n U + max(0, 2^-23 (|S| + n U)
- (U + 1)), U = 2^max(E - b, 0) - 1 units: the aligned sum y lies on the 2^sh grid, so its binary32 truncation loses
nothing or at most 2^-23 |y| - 2^sh (lemma B').  With U > 0, 2^-b M >= U + 1, so this is below the first bound by
at least U + 1 >= 2^-(b+1) M: the first bound is not tight.  ``gemm.tc_align_sharp_tight.<preset>`` replays a group
that reaches the sharpened bound (exactly at b = 13; within 2^-20 at b = 23, where the same group reaches 8/9
(volta_tc) and 16/17 (ampere_tc) of the first bound).  The witnesses are multiples of the unit, inside the
theorems' scope, not E4M3 products (8 significant bits) or binary32 accumulators.  Real E4M3 groups:
:func:`tc_e4m3_group_max` enumerates hopper_fp8's largest group-step error per E over every pair of E4M3 codes (equal
to the sharpened bound for E = 14..19, 0.985 of it for E = 24..40), and ``gemm.tc_e4m3_sharp_tight.hopper_fp8``
is a 1 x 64 E4M3 GEMM whose error is the bound exactly.  For b = 23 (volta_tc, ampere_tc)
``gemm.tc_e4m3_sharp_ratio.<preset>`` (Z3 and an enumeration) proves that E4M3 groups err by at most
sharp / (1 + 2^-23), so they never reach the sharpened bound exactly, and ``gemm.tc_e4m3_sharp_tight.<preset>`` is
a 1 x 2g E4M3 GEMM whose error is sharp / (1 + 2^-23) exactly: that factor is attained.

``gemm.tc_align_whole_k.<preset>`` (Z3 over the reals): for the presets without promotion, the whole accumulation
satisfies |D - S| <= ((1 + w)^ceil(K/g) - 1) sum |p_k|, w = 2^-23 + (1 + 2^-23) n 2^-b.  Route: induction over the
groups; Z3 proves the step (from the group-step theorem, |t_j - S_j| <= R and |S_j| <= Sigma_j give
|t_{j+1} - S_{j+1}| <= (1 + w) R + w Sigma_{j+1}, then R <= ((1 + w)^j - 1) Sigma_j gives the next bound); the base
(t_0 = S_0 = 0) and the induction itself are the argument, not a query.  Every step must be in the group-step
theorem's scope (E4M3 inputs: K <= 2^14).  Factors at K = 4096: 7.3e-4 (volta_tc), 6.1e-4 (ampere_tc), 0.673
(hopper_fp8).  ``gemm.tc_align_whole_k.deepseek_v3``: with promotion every 128 the factor is
(1 + 2^-24)^ceil(K/128) (1 + rho) - 1, rho = (1 + w)^4 - 1 (0.0162 at K = 4096): the chunks by the same induction,
the binary32 promotions by the standard model of RNE addition (assumed, Higham ASNA Thm 2.2), composed in Z3.

``gemm.tc_align_bound.rne_*`` and ``gemm.tc_align_whole_k.rne_*`` (:data:`TC_ROUND`): the same two results for
rounding tensor cores (terms and sum rounded to nearest even): the step |t' - S| <= 2^-24 |S| + (1 + 2^-24) n
2^-(b+1) M (three Z3 queries, the terms checked against the exact model first), and the whole-K factor
(1 + w)^ceil(K/g) - 1 with w = 2^-24 + (1 + 2^-24) n 2^-(b+1).

:func:`tensor_core_claims` measures the DeepSeek-V3 claim (arXiv 2412.19437 §3.3.2: with K = 4096 the limited
accumulation precision of H800 FP8 GEMMs gives "a maximum relative error of nearly 2%"; promotion every
N_C = 128 elements restores precision) exactly under stated input distributions.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from refarith.errors import BadValueError
from refarith.exact import gemm as X
from refarith.fast import gemm as F
from refarith.formats import get_format
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, theorem

K = 2
IN, ACC = "ocp_e2m1", "ocp_e5m2"
P_ACC = 3
U = Fraction(1, 2 ** P_ACC)
MODELS = {
    "exact": "exact", "sequential": "sequential", "fma_chain": "fma_chain", "pairwise": "pairwise",
    "blocked": "blocked,nb=1", "split_k": "split_k,splits=2", "kahan": "kahan",
    "tensor_core": "tensor_core,g=2,b=2,tc_round=rtz,n_c=0",
}


def _operands() -> tuple[np.ndarray, np.ndarray]:
    codes = np.arange(16)
    a = np.array([(x, y) for x in codes for y in codes])
    return a, a.T.copy()


def enumerate_model(model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """(D values, exact sums S, sum |p_k|, max |p_k|, spec) of every E2M1 vector pair at K = 2."""
    spec = f"scaled_mm({IN}->{ACC},acc={ACC},accum={model})"
    a, b = _operands()
    d = F.scaled_mm(spec, a, b)
    av, bv = F.decode_array(a, IN), F.decode_array(b, IN)
    prods = av[:, None, :] * bv.T[None, :, :]  # exact: products of E2M1 values
    s = prods.sum(axis=2)  # exact: sums of two such products
    return F.decode_array(d, ACC), s, np.abs(prods).sum(axis=2), np.abs(prods).max(axis=2), spec


def _bound(name: str, s: np.ndarray, sabs: np.ndarray, pmax: np.ndarray) -> np.ndarray:
    u = float(U)
    if name == "exact":
        return u * np.abs(s)
    if name == "tensor_core":
        b = 2
        ulp = 2.0 ** (1 - P_ACC)
        return (K + 1) * 2.0 ** -b * pmax * (1 + ulp) + ulp * np.abs(s)
    return K * u / (1 - K * u) * sabs


def _check(name: str) -> Outcome:
    d, s, sabs, pmax, spec = enumerate_model(MODELS[name])
    err = np.abs(d - s)
    bound = _bound(name, s, sabs, pmax)
    bad = err > bound
    a, b = _operands()
    if bad.any():
        i, j = (int(x[0]) for x in np.nonzero(bad))
        ex = X.scaled_mm(spec, a[i:i + 1].tolist(), b[:, j:j + 1].tolist())[0][0]
        return Outcome(COUNTEREXAMPLE, {"a": a[i].tolist(), "b": b[:, j].tolist(), "D": float(d[i, j]),
                                        "S": float(s[i, j]), "bound": float(bound[i, j])},
                       bool(F.decode_array(np.array([ex]), ACC)[0] == d[i, j]), method="enumeration")
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(s != 0, err / np.abs(s), 0.0)
    i, j = (int(x) for x in np.unravel_index(np.argmax(rel), rel.shape))
    ex = X.scaled_mm(spec, a[i:i + 1].tolist(), b[:, j:j + 1].tolist())[0][0]
    same = F.decode_array(np.array([ex]), ACC)[0] == d[i, j]
    if not same:
        return Outcome("error", detail=f"exact model disagrees with the kernel at a={a[i].tolist()}, "
                                       f"b={b[:, j].tolist()}", method="enumeration")
    return Outcome(PROVED, detail=f"65536 cases; worst relative error {rel[i, j]:.6g} at a={a[i].tolist()} "
                                  f"b={b[:, j].tolist()} (S={float(s[i, j])!r}, D={float(d[i, j])!r}; "
                                  "exact model agrees)",
                   method="enumeration")


def _register(name: str) -> None:
    what = "u |S|" if name == "exact" else ("the alignment/normalisation bound" if name == "tensor_core"
                                            else "gamma_K sum |p_k|")

    @theorem(f"gemm.bound.{name}",
             f"for all E2M1 vectors of length {K}, accum={MODELS[name]} into E5M2 (u = 2^-3) errs by at most "
             f"{what} (enumerated)", expect=PROVED, budget=60, tags=("gemm",))
    def check() -> Outcome:
        return _check(name)


for _name in MODELS:
    _register(_name)


# ------------------------------------------------------------------ the binary64-exact sum bound (Z3)
INT_SUM_FORMATS = {"ocp_e4m3": 15, "ocp_e2m1": 40, "ocp_e3m2": 30, "ocp_e2m3": 36}
"""Format -> log2 of the largest K the theorem covers (E4M3: the bound the fast kernel's docstring states)."""


def _units(c, fmt):
    """(finite, U): a code's magnitude in units of the format's smallest lsb 2^(emin - mbits), from the fields:
    U = m for a zero exponent field, (2^mbits + m) * 2^(e - 1) otherwise (32-bit words)."""
    import z3

    n, mb = fmt.nbits, fmt.mbits
    e = z3.ZeroExt(32 - (n - 1 - mb), z3.Extract(n - 2, mb, c))
    m = z3.ZeroExt(32 - mb, z3.Extract(mb - 1, 0, c))
    u = z3.If(e == 0, m, (m | (1 << mb)) << (e - 1))
    bad = [*fmt.nan_codes, *(x for x in fmt.inf_codes if x is not None)]
    return z3.And(*[c != x for x in bad]) if bad else z3.BoolVal(True), u


def _int_sum_bound(name: str) -> Outcome:
    import z3

    from refarith.exact.ops import decode
    from refarith.formats import get_format
    from refarith.smt.registry import prove

    fmt = get_format(name)
    lk = INT_SUM_FORMATS[name]
    unit = Fraction(2) ** (fmt.emin - fmt.mbits)
    for code in range(fmt.ncodes):  # the units formula is the exact model's value (all codes, enumerated)
        v = decode(code, fmt)
        if v.is_finite and v.mag != int(v.mag / unit) * unit:
            return Outcome("error", detail=f"{name} code {code:#x} is not an integer multiple of {unit}")
    ca, cb = z3.BitVec("a", fmt.nbits), z3.BitVec("b", fmt.nbits)
    fa, ua = _units(ca, fmt)
    fb, ub = _units(cb, fmt)
    prod = z3.ZeroExt(32, ua) * z3.ZeroExt(32, ub)
    claim = z3.Implies(z3.And(fa, fb), z3.ULT(prod, z3.BitVecVal(1 << (51 - lk), 64)))

    def confirm(asg: dict[str, int]) -> tuple[dict, bool]:
        x, y = decode(asg["a"], fmt), decode(asg["b"], fmt)
        p = (x.mag * y.mag) / unit ** 2 if x.is_finite and y.is_finite else None
        return {"a": hex(asg["a"]), "b": hex(asg["b"]), "product_units": str(p)}, p is not None and p >= 2 ** (51 - lk)

    out = prove(claim, {"a": ca, "b": cb}, 30, confirm)
    if out.verdict == PROVED:
        out.detail = (f"every finite {name} product is an integer multiple of 2^{2 * (fmt.emin - fmt.mbits)} below "
                      f"2^{51 - lk} units; K <= 2^{lk} terms and every partial sum stay below 2^51 units")
    return out


def _register_int_sum(name: str) -> None:
    lk = INT_SUM_FORMATS[name]

    @theorem(f"gemm.int_sum_bound.{name}",
             f"for all finite {name} codes a, b: |a b| < 2^{51 - lk} units of 2^(2 (emin - mbits)), so a sum of at "
             f"most 2^{lk} products, in any order, is an integer number of units below 2^51: exact in binary64 "
             "(the fast scaled_mm's BLAS path) and in int64 (Z3 on the bit fields; the units formula enumerated "
             "against the exact model)", expect=PROVED, budget=30, tags=("gemm", "z3"))
    def check() -> Outcome:
        return _int_sum_bound(name)


for _f in INT_SUM_FORMATS:
    _register_int_sum(_f)


LIMB_MAX_LOG2_K = 30


@theorem("gemm.limb_sum_exact",
         f"for every K in [2, 2^{LIMB_MAX_LOG2_K}] and w = refarith.fast.gemm.limb_width(K): K (2^w - 1)^2 < 2^53, so "
         "every partial sum of a limb-product matmul (K terms, limbs |x|, |y| <= 2^w - 1) is an integer below 2^53, "
         "exact in binary64 whatever the BLAS order (Z3, nonlinear integer arithmetic, one case per bit length of "
         "K - 1)", expect=PROVED, budget=30, tags=("gemm", "z3"))
def limb_sum_exact() -> Outcome:
    import z3

    from refarith.fast.gemm import limb_width
    from refarith.smt.registry import prove

    k, x, y = z3.Ints("K x y")
    cases = []
    for bl in range(1, LIMB_MAX_LOG2_K + 1):  # K - 1 of bit length bl: 2^(bl-1) < K <= 2^bl
        w = limb_width(2 ** bl)
        lim = 2 ** w - 1
        cases.append(z3.Implies(z3.And(2 ** (bl - 1) < k, k <= 2 ** bl, z3.Abs(x) <= lim, z3.Abs(y) <= lim),
                                z3.Abs(k * x * y) < 2 ** 53))
    claim = z3.Implies(k >= 2, z3.And(*cases))

    def confirm(asg: dict[str, int]) -> tuple[dict, bool]:
        kk = asg["K"]
        w = limb_width(kk)
        return {"K": kk, "w": w, "x": asg["x"], "y": asg["y"]}, abs(kk * asg["x"] * asg["y"]) >= 2 ** 53 and max(
            abs(asg["x"]), abs(asg["y"])) < 2 ** w

    return prove(claim, {"K": k, "x": x, "y": y}, 30, confirm)


# ------------------------------------------------------------------ the alignment-truncation bound (Z3)
TC_ALIGN = {"volta_tc": (4, 23), "ampere_tc": (8, 23), "hopper_fp8": (32, 13)}
"""Preset -> (g, b) of the group-step theorems (turing_tc has volta_tc's parameters; every preset truncates, rtz,
into a binary32 accumulator, p = 24)."""
TC_UNITS = 80
"""The theorems' terms are integer multiples of a unit 2^L of magnitude below 2^(L + 80)."""
_P32 = 24


def _tc_align_term(m, e, b: int, w: int):
    """Z3 terms of one aligned magnitude in units: sh = max(E - b, 0), a = (m >> sh) << sh (as a mask of the low sh
    bits, which the solver handles far better than a variable shift), and U = 2^sh - 1 (m, E bit-vectors of width
    w; the aligned term carries the sign of the term, so magnitudes are all the lemma needs)."""
    import z3

    sh = z3.If(z3.UGE(e, b), e - b, z3.BitVecVal(0, w))
    u = (z3.BitVecVal(1, w) << sh) - 1
    return m & ~u, u


def _tc_rtz_term(m, f, p: int, w: int):
    """Z3 term of a magnitude m (in units, f = floor(log2 m)) rounded toward zero to p significant bits: the
    rounding of a multiple of the unit into a binary32 accumulator whose normal range holds it (grid
    max(2^(f - p + 1), 1) units)."""
    import z3

    sh = z3.If(z3.UGE(f, p - 1), f - (p - 1), z3.BitVecVal(0, w))
    return m & ~((z3.BitVecVal(1, w) << sh) - 1)


def _tc_rne_term(m, e, b: int, w: int):
    """Z3 terms of one magnitude m (in units) rounded to nearest even to a multiple of 2^sh, sh = max(E - b, 0)
    (E = floor(log2 M) of the group for an alignment; for a rounding to b + 1 significant bits pass m's own
    floor(log2 m)): (the rounded magnitude, U = 2^sh - 1).  Masks again, no variable shift of m."""
    import z3

    sh = z3.If(z3.UGE(e, b), e - b, z3.BitVecVal(0, w))
    one = z3.BitVecVal(1, w)
    u = (one << sh) - 1
    low, half = m & u, (one << sh) >> 1
    up = z3.And(sh != 0, z3.Or(z3.UGT(low, half), z3.And(low == half, m & (one << sh) != 0)))
    return (m & ~u) + z3.If(up, one << sh, z3.BitVecVal(0, w)), u


def _tc_encoding_matches_model(b: int, samples: int = 200, seed: int = 0, mode: str = "rtz") -> str | None:
    """Evaluate the Z3 alignment and rounding terms on sampled values (unit 2^-18, the E4M3 product unit) and
    compare them with the exact model's steps (:func:`refarith.exact.gemm._align`, rounding into binary32 with
    ``mode``, rtz or rne); a description of the first disagreement, or None."""
    import random

    import z3

    from refarith.exact.value import Value

    w = 2 * TC_UNITS
    rng = random.Random(seed)
    unit = Fraction(1, 2 ** 18)
    xv, ev = z3.BitVec("x", w), z3.BitVec("E", w)
    if mode == "rtz":
        al, _ = _tc_align_term(xv, ev, b, w)
        rz = _tc_rtz_term(xv, ev, _P32, w)
    else:
        al, _ = _tc_rne_term(xv, ev, b, w)
        rz = _tc_rne_term(xv, ev, _P32 - 1, w)[0]
    for i in range(samples):
        e = rng.randrange(TC_UNITS) if i % 4 else rng.randrange(b + 2)
        x = rng.randrange(1, 2 ** (e + 1))
        sign = i % 2
        v = Value("finite", sign, x * unit)
        sub = [(xv, z3.BitVecVal(x, w)), (ev, z3.BitVecVal(e, w))]
        got = z3.simplify(z3.substitute(al, *sub)).as_long()
        want = X._align(v, e - 18, b, mode)
        if got * unit != want.mag or (got and want.sign != sign):
            return f"alignment of {x} units at E = {e}: Z3 term {got}, exact model {want}"
        sub = [(xv, z3.BitVecVal(x, w)), (ev, z3.BitVecVal(x.bit_length() - 1, w))]
        got = z3.simplify(z3.substitute(rz, *sub)).as_long()
        want = X._rnd(v, get_format("binary32"), mode)
        if got * unit != want.mag or want.sign != sign:
            return f"binary32 {mode} of {x} units: Z3 term {got}, exact model {want}"
    return None


def _tc_lemma_a(b: int) -> Outcome:
    """The encoding check, then lemma (A): one term's magnitude m < 2^(E+1) aligned to a = m with its low
    sh = max(E - b, 0) bits cleared satisfies a <= m, m - a <= U = 2^sh - 1, and U = 0 or 2^b (U + 1) = 2^E."""
    import z3

    from refarith.smt.registry import prove

    bad = _tc_encoding_matches_model(b)
    if bad:
        return Outcome("error", detail=f"the Z3 encoding is not the exact model's step: {bad}")
    w = 2 * TC_UNITS
    one = z3.BitVecVal(1, w)
    m, e = z3.BitVec("m", w), z3.BitVec("E", w)
    a, u = _tc_align_term(m, e, b, w)
    lemma_a = z3.Implies(z3.And(z3.ULT(e, TC_UNITS), z3.ULT(m, one << (e + 1))),
                         z3.And(z3.ULE(a, m), z3.ULE(m - a, u), z3.Or(u == 0, (u + 1) << b == one << e)))
    return prove(lemma_a, {"m": m, "E": e}, 30)


def _tc_align_bound(preset: str) -> Outcome:
    import z3

    from refarith.smt.registry import prove

    g, b = TC_ALIGN[preset]
    n = g + 1
    out_a = _tc_lemma_a(b)
    if out_a.verdict != PROVED:
        return out_a
    w = 2 * TC_UNITS
    one = z3.BitVecVal(1, w)
    # (B) the rounding of the aligned sum's magnitude, 2^F <= |y| < 2^(F+1) (|y| < n 2^80 units): r <= |y| and
    # 2^(p-1) (|y| - r) < |y|.
    y, f = z3.BitVec("y", w), z3.BitVec("F", w)
    r = _tc_rtz_term(y, f, _P32, w)
    lemma_b = z3.Implies(z3.And(z3.ULT(f, TC_UNITS + n.bit_length()), z3.ULE(one << f, y), z3.ULT(y, one << (f + 1))),
                         z3.And(z3.ULE(r, y), z3.ULT((y - r) << (_P32 - 1), y)))
    out_b = prove(lemma_b, {"y": y, "F": f}, 30)
    if out_b.verdict != PROVED:
        return out_b
    # (C) the sum (linear integer arithmetic): from (A) for every term with the group's E, M = max |x_i| >= 2^E,
    # and (B) for the aligned sum y = sum a_i, the group's error is bounded.
    xs, es = z3.Ints(" ".join(f"x{i}" for i in range(n))), z3.Ints(" ".join(f"d{i}" for i in range(n)))
    uu, mm, dd = z3.Ints("U M D")
    s, yy = z3.Sum(xs), z3.Sum([xi - di for xi, di in zip(xs, es)])

    def ab(t):
        return z3.If(t < 0, -t, t)

    hyp = [uu >= 0, z3.Or(uu == 0, (uu + 1) * 2 ** b <= mm), *[z3.And(-uu <= di, di <= uu) for di in es],
           *[ab(xi) <= mm for xi in xs], ab(dd - yy) * 2 ** (_P32 - 1) <= ab(yy)]
    claim = z3.Implies(z3.And(*hyp),
                       ab(dd - s) * 2 ** (b + _P32 - 1) <= 2 ** b * ab(s) + (2 ** (_P32 - 1) + 1) * n * mm)
    out_c = prove(claim, {"D": dd, "M": mm}, 30)
    if out_c.verdict == PROVED:
        out_c.detail = (f"{preset} group step (g = {g}, b = {b}, rtz, binary32): (A) per term |x - a| <= 2^sh - 1 "
                        f"and 2^(b + sh) = 2^E when sh > 0, (B) 2^23 |y - rtz(y)| < |y|, (C) the sum of {n} terms, "
                        "each proved by Z3; the Z3 terms agree with the exact model's _align and binary32 rtz on "
                        "200 sampled values")
    return out_c


def _tc_tight(preset: str) -> Outcome:
    """The group t = x_0, p_1..p_g with every term 2^E + 2^(E-b) - 1 units (E = 35, unit 2^-18) through the exact
    model's group step: its error n (2^(E-b) - 1) exceeds (n - 1) 2^-b M, a smaller bound than the proved one."""
    from refarith.exact.value import Value

    g, b = TC_ALIGN[preset]
    n = g + 1
    unit = Fraction(1, 2 ** 18)
    e = 35
    x = (2 ** e + 2 ** (e - b) - 1) * unit
    t = Value("finite", 0, x)
    dval = X._tc_group(t, [Value("finite", 0, x)] * g, get_format("binary32"), b, "rtz").mag
    s = n * x
    err = abs(dval - s)
    u32 = Fraction(1, 2 ** (_P32 - 1))
    smaller = (n - 1) * Fraction(1, 2 ** b) * x
    proved = u32 * s + (1 + u32) * n * Fraction(1, 2 ** b) * x
    return Outcome(COUNTEREXAMPLE, {"terms": f"{n} x (2^{e} + 2^{e - b} - 1) * 2^-18", "S": str(s), "D": str(dval),
                                    "error": str(err), "smaller_bound": str(smaller), "proved_bound": str(proved),
                                    "error_over_proved_bound": f"{float(err / proved):.6f}"},
                   confirmed=smaller < err <= proved, method="enumeration")


def tc_sharp_bound(n: int, b: int, e: int, s_abs: Fraction) -> Fraction:
    """The sharpened group-step bound in units: n U + max(0, 2^-23 (|S| + n U) - (U + 1)), U = 2^max(E - b, 0) - 1
    (E = floor(log2 M) in units, |S| the terms' exact sum in units)."""
    u = 2 ** max(e - b, 0) - 1
    return n * u + max(Fraction(0), (s_abs + n * u) / 2 ** (_P32 - 1) - (u + 1))


def _tc_lemma_b_sharp(n: int, plus_r: bool = False) -> Outcome:
    """Lemma (B'): an aligned sum y of n terms (a multiple of 2^sh, 2^F <= y < 2^(F+1), below n 2^80 units)
    truncated to binary32 loses r = 0 or r with 2^23 (r + 2^sh) <= y (Z3, bit-vectors).  ``plus_r``: the
    stronger (B''), 2^23 (r + 2^sh) + r <= y (y = 2^F + q 2^(F-23) + r with r <= 2^(F-23) - 2^sh)."""
    import z3

    from refarith.smt.registry import prove

    w = 2 * TC_UNITS
    one = z3.BitVecVal(1, w)
    y, f, sh = z3.BitVec("y", w), z3.BitVec("F", w), z3.BitVec("sh", w)
    r = y - _tc_rtz_term(y, f, _P32, w)
    u = (one << sh) - 1
    lemma = z3.Implies(z3.And(z3.ULE(sh, TC_UNITS), z3.ULT(f, TC_UNITS + n.bit_length()), z3.ULE(one << f, y),
                              z3.ULT(y, one << (f + 1)), y & u == 0),
                       z3.Or(r == 0, z3.ULE(((r + u + 1) << (_P32 - 1)) + (r if plus_r else 0), y)))
    return prove(lemma, {"y": y, "F": f, "sh": sh}, 30)


def _tc_sum_terms(n: int):
    """Z3 integer terms of a group step's sum: (the per-term alignment losses d_i, S = sum x_i, the aligned sum
    y = sum (x_i - d_i), U, D the result, R its truncation loss, abs)."""
    import z3

    xs, ds = z3.Ints(" ".join(f"x{i}" for i in range(n))), z3.Ints(" ".join(f"d{i}" for i in range(n)))
    uu, dd, rr = z3.Ints("U D R")

    def ab(t):
        return z3.If(t < 0, -t, t)

    return ds, z3.Sum(xs), z3.Sum([xi - di for xi, di in zip(xs, ds)]), uu, dd, rr, ab


def _tc_sharp_bound(preset: str) -> Outcome:
    """Lemma (A), then (B') the binary32 truncation of an aligned sum y (a multiple of 2^sh) loses r = 0 or
    r <= 2^-23 |y| - 2^sh, then (C') the sum: |t' - S| <= :func:`tc_sharp_bound` (Z3, three queries)."""
    import z3

    from refarith.smt.registry import prove

    g, b = TC_ALIGN[preset]
    n = g + 1
    out = _tc_lemma_a(b)
    if out.verdict != PROVED:
        return out
    out = _tc_lemma_b_sharp(n)
    if out.verdict != PROVED:
        return out
    ds, s, yy, uu, dd, rr, ab = _tc_sum_terms(n)
    hyp = [uu >= 0, *[z3.And(-uu <= di, di <= uu) for di in ds], rr == ab(dd - yy),
           z3.Or(rr == 0, (rr + uu + 1) * 2 ** (_P32 - 1) <= ab(yy))]
    err = ab(dd - s)
    claim = z3.Implies(z3.And(*hyp), z3.Or(err <= n * uu, err * 2 ** (_P32 - 1) <= ab(s) + n * uu - (
        uu + 1) * 2 ** (_P32 - 1) + n * uu * 2 ** (_P32 - 1)))
    out = prove(claim, {"D": dd, "U": uu}, 30)
    if out.verdict == PROVED:
        out.detail = (f"{preset} group step (g = {g}, b = {b}, rtz, binary32): (A) per term |x - a| <= U = 2^sh - 1, "
                      "(B') r = |y - rtz(y)| is 0 or 2^23 (r + U + 1) <= |y| for y on the 2^sh grid, (C') the sum of "
                      f"{n} terms: |t' - S| <= {n} U + max(0, 2^-23 (|S| + {n} U) - (U + 1)); each Z3")
    return out


def _tc_sharp_witness(preset: str, e: int = 40) -> tuple[list[int], int]:
    """n terms (units 2^-18) at the sharpened bound: the first 2^E + 2^sh - 1, the others a_i + 2^sh - 1 with a_i
    multiples of 2^sh at most 2^E, every term losing 2^sh - 1 in the alignment; when the binary32 truncation can
    lose anything (2^(F - 23) > 2^sh, F = E + floor(log2 n)) the aligned sum is 2^F + 2^(F - 23) - 2^sh, which
    loses 2^(F - 23) - 2^sh, else it is n 2^E; returns (terms, E)."""
    g, b = TC_ALIGN[preset]
    n = g + 1
    sh = e - b
    big = 2 ** sh
    top = e + n.bit_length() - 1
    y = 2 ** top + 2 ** (top - _P32 + 1) - big if top - _P32 + 1 > sh else n * 2 ** e
    q = (y - 2 ** e) // big
    aligned = [2 ** e] + [(q // g + (i < q % g)) * big for i in range(g)]
    assert sum(aligned) == y and max(aligned) == 2 ** e
    return [x + big - 1 for x in aligned], e


def _tc_sharp_tight(preset: str) -> Outcome:
    """The claim ``|t' - S| <= (1 - 2^-20) x the sharpened bound`` refuted by :func:`_tc_sharp_witness`, replayed
    through the exact model's group step (also given: its share of the original bound)."""
    from refarith.exact.value import Value

    g, b = TC_ALIGN[preset]
    n = g + 1
    terms, e = _tc_sharp_witness(preset)
    unit = Fraction(1, 2 ** 18)
    vals = [Value("finite", 0, x * unit) for x in terms]
    dval = X._tc_group(vals[0], vals[1:], get_format("binary32"), b, "rtz").mag / unit
    s = sum(terms)
    err = abs(dval - s)
    sharp = tc_sharp_bound(n, b, e, Fraction(s))
    big = max(terms)
    orig = Fraction(s, 2 ** (_P32 - 1)) + (1 + Fraction(1, 2 ** (_P32 - 1))) * n * Fraction(big, 2 ** b)
    smaller = (1 - Fraction(1, 2 ** 20)) * sharp
    return Outcome(COUNTEREXAMPLE, {"terms_units_2^-18": " ".join(map(str, terms)), "E": e, "S": str(s),
                                    "D": str(dval), "error": str(err), "sharp_bound": str(sharp),
                                    "error_over_sharp_bound": f"{float(err / sharp):.9f}",
                                    "error_over_proved_bound": f"{float(err / orig):.6f}"},
                   confirmed=smaller < err <= sharp, method="enumeration")


def tc_whole_k_rate(preset: str) -> Fraction:
    """w = 2^-23 + (1 + 2^-23) (g + 1) 2^-b: the per-group growth rate of the whole-K bound."""
    g, b = TC_ALIGN[preset]
    u = Fraction(1, 2 ** (_P32 - 1))
    return u + (1 + u) * (g + 1) / Fraction(2 ** b)


def _induction_step(u: Fraction, c: Fraction, w: Fraction) -> Outcome:
    """The induction step of a whole-K bound, two Z3 queries over the reals: (D1) from a step bound
    |t' - (t + P)| <= u |t + P| + c max(|t|, max|p|), |t - S| <= R and |S| <= Sigma:
    |t' - (S + P)| <= (1 + w) R + w (Sigma + Pabs), with P the step's exact sum and Pabs its sum of |p|; (D2) with
    R <= (X - 1) Sigma and X >= 1 that is at most ((1 + w) X - 1)(Sigma + Pabs)."""
    import z3

    from refarith.smt.registry import prove

    t, s, sig, p, pabs, pm, x, t2, r = z3.Reals("t S Sigma P Pabs pm X t2 R")

    def ab(v):
        return z3.If(v < 0, -v, v)

    big = z3.If(ab(t) >= pm, ab(t), pm)
    hyp = [sig >= 0, ab(t - s) <= r, ab(s) <= sig, ab(p) <= pabs, 0 <= pm, pm <= pabs,
           ab(t2 - (t + p)) <= u * ab(t + p) + c * big]
    out = prove(z3.Implies(z3.And(*hyp), ab(t2 - (s + p)) <= (1 + w) * r + w * (sig + pabs)),
                {"t": t, "S": s, "Sigma": sig, "P": p, "Pabs": pabs, "pm": pm, "t2": t2, "R": r}, 30)
    if out.verdict != PROVED:
        return out
    return prove(z3.Implies(z3.And(x >= 1, sig >= 0, pabs >= 0, r <= (x - 1) * sig),
                            (1 + w) * r + w * (sig + pabs) <= ((1 + w) * x - 1) * (sig + pabs)), {"X": x}, 30)


def _tc_whole_k(preset: str, rate: Fraction | None = None, rounding: bool = False) -> Outcome:
    """:func:`_induction_step` for the group step of a truncating preset (:data:`TC_ALIGN`: u = 2^-23,
    c = (1 + 2^-23) n 2^-b) or, with ``rounding``, of a rounding one (:data:`TC_ROUND`: u = 2^-24,
    c = (1 + 2^-24) n 2^-(b+1)); w = u + c.  ``rate``: w to use in the claim (the tests pass a smaller one to see
    the query fail)."""
    g, b = (TC_ROUND if rounding else TC_ALIGN)[preset]
    u = Fraction(1, 2 ** (_P32 if rounding else _P32 - 1))
    c = (1 + u) * (g + 1) / Fraction(2 ** (b + rounding))
    w = u + c if rate is None else rate
    out = _induction_step(u, c, w)
    if out.verdict == PROVED:
        fk = {k: float((1 + w) ** -(-k // g) - 1) for k in (4096, 2 ** 14)}
        out.detail = (f"{preset}: by induction over the groups, |D - S| <= ((1 + w)^ceil(K/{g}) - 1) sum |p_k|, "
                      f"w = {float(w):.6g}; (D1) and (D2) each Z3.  Factor at K = 4096: {fk[4096]:.4g}, at "
                      f"K = 2^14: {fk[2 ** 14]:.4g}")
    return out


TC_ROUND = {"rne_g4_b23": (4, 23), "rne_g32_b13": (32, 13)}
"""Rounding tensor cores (tc_round = rne into binary32) of the group-step and whole-K theorems: volta_tc's and
hopper_fp8's g and b with rounding instead of truncation (no hardware preset rounds; the parameter sets
``tensor_core,g=4,b=23,tc_round=rne,n_c=0`` and ``tensor_core,g=32,b=13,tc_round=rne,n_c=0``)."""


def tc_round_rate(name: str) -> Fraction:
    """w = 2^-24 + (1 + 2^-24) (g + 1) 2^-(b + 1): the per-group growth rate of a rounding tensor core's bound."""
    g, b = TC_ROUND[name]
    u = Fraction(1, 2 ** _P32)
    return u + (1 + u) * (g + 1) / Fraction(2 ** (b + 1))


def _tc_round_bound(name: str) -> Outcome:
    """The rounding group step in three Z3 queries: (A) per term, RNE to a multiple of 2^sh loses at most 2^(sh-1)
    (nothing for sh = 0) and 2^(b + sh) = 2^E when sh > 0; (B) the binary32 RNE of the aligned sum loses at most
    2^-24 |y|; (C) the sum: |t' - S| <= 2^-24 |S| + (1 + 2^-24) n 2^-(b+1) M.  The Z3 terms are first evaluated
    against the exact model's _align and binary32 rne on 200 sampled values."""
    import z3

    from refarith.smt.registry import prove

    g, b = TC_ROUND[name]
    n = g + 1
    bad = _tc_encoding_matches_model(b, mode="rne")
    if bad:
        return Outcome("error", detail=f"the Z3 encoding is not the exact model's step: {bad}")
    w = 2 * TC_UNITS
    one = z3.BitVecVal(1, w)
    m, e = z3.BitVec("m", w), z3.BitVec("E", w)
    a, u = _tc_rne_term(m, e, b, w)
    d = z3.If(z3.UGE(a, m), a - m, m - a)
    lemma_a = z3.Implies(z3.And(z3.ULT(e, TC_UNITS), z3.ULT(m, one << (e + 1))),
                         z3.And(z3.ULE(d << 1, u + 1), z3.Or(u == 0, (u + 1) << b == one << e),
                                z3.Implies(u == 0, d == 0)))
    out = prove(lemma_a, {"m": m, "E": e}, 30)
    if out.verdict != PROVED:
        return out
    y, f = z3.BitVec("y", w), z3.BitVec("F", w)
    r = _tc_rne_term(y, f, _P32 - 1, w)[0]
    lemma_b = z3.Implies(z3.And(z3.ULT(f, TC_UNITS + n.bit_length()), z3.ULE(one << f, y), z3.ULT(y, one << (f + 1))),
                         z3.ULE(z3.If(z3.UGE(r, y), r - y, y - r) << _P32, y))
    out = prove(lemma_b, {"y": y, "F": f}, 30)
    if out.verdict != PROVED:
        return out
    xs, ds = z3.Ints(" ".join(f"x{i}" for i in range(n))), z3.Ints(" ".join(f"d{i}" for i in range(n)))
    uu, mm, dd = z3.Ints("U M D")
    s_, yy = z3.Sum(xs), z3.Sum([xi - di for xi, di in zip(xs, ds)])

    def ab(t):
        return z3.If(t < 0, -t, t)

    hyp = [uu >= 0, z3.Or(uu == 0, (uu + 1) * 2 ** b <= mm), *[2 * ab(di) <= uu + 1 for di in ds],
           *[z3.Implies(uu == 0, di == 0) for di in ds], *[ab(xi) <= mm for xi in xs],
           ab(dd - yy) * 2 ** _P32 <= ab(yy)]
    claim = z3.Implies(z3.And(*hyp),
                       ab(dd - s_) * 2 ** (b + _P32 + 1) <= 2 ** (b + 1) * ab(s_) + (2 ** _P32 + 1) * n * mm)
    out = prove(claim, {"D": dd, "M": mm}, 30)
    if out.verdict == PROVED:
        out.detail = (f"{name} group step (g = {g}, b = {b}, rne, binary32): (A) per term 2 |x - a| <= 2^sh and "
                      f"2^(b + sh) = 2^E when sh > 0, (B) 2^24 |y - rne(y)| <= |y|, (C) the sum of {n} terms, each "
                      "Z3; the Z3 terms agree with the exact model's _align and binary32 rne on 200 sampled values")
    return out


def _register_tc_round(name: str) -> None:
    g, b = TC_ROUND[name]
    n = g + 1

    @theorem(f"gemm.tc_align_bound.{name}",
             f"tensor_core,g={g},b={b},tc_round=rne: one group step (t and {g} products aligned to the largest "
             f"exponent E, rounded to nearest even to multiples of 2^(E - {b}), summed exactly, the sum rounded to "
             f"nearest even into binary32) gives |t' - S| <= 2^-24 |S| + (1 + 2^-24) {n} 2^-{b + 1} M, in the scope "
             "of gemm.tc_align_bound.volta_tc; Z3, in three lemmas",
             expect=PROVED, budget=30, tags=("gemm", "z3", "tensor_core"))
    def check() -> Outcome:
        return _tc_round_bound(name)

    @theorem(f"gemm.tc_align_whole_k.{name}",
             f"tensor_core,g={g},b={b},tc_round=rne,n_c=0: the whole accumulation of K products, each group step in "
             f"the scope of gemm.tc_align_bound.{name}, gives |D - S| <= ((1 + w)^ceil(K/{g}) - 1) sum |p_k|, "
             f"w = 2^-24 + (1 + 2^-24) {n} 2^-{b + 1}: induction over the groups, the step's two inequalities each "
             "Z3 over the reals", expect=PROVED, budget=30, tags=("gemm", "z3", "tensor_core"))
    def whole_k() -> Outcome:
        return _tc_whole_k(name, rounding=True)


for _r in TC_ROUND:
    _register_tc_round(_r)


def tc_promoted_factor(k: int, g: int = 32, n_c: int = 128, preset: str = "hopper_fp8") -> float:
    """((1 + 2^-24)^ceil(K/n_c) (1 + rho) - 1), rho = (1 + w)^(n_c/g) - 1: the whole-K factor with promotion."""
    rho = (1 + tc_whole_k_rate(preset)) ** (n_c // g) - 1
    return float((1 + Fraction(1, 2 ** _P32)) ** -(-k // n_c) * (1 + rho) - 1)


def _tc_whole_k_promoted() -> Outcome:
    """deepseek_v3 (hopper_fp8 groups, promotion every n_c = 128): each chunk obeys the hopper_fp8 whole-K bound
    with ceil(128/32) = 4 groups, |t_c - S_c| <= rho Sigma_c; the chunks are added into f with binary32 RNE
    additions, each within 2^-24 |x + y| (the standard model of a rounded addition without overflow, Higham ASNA
    Thm 2.2; assumed, not proved here), the same induction with u = w = 2^-24, c = 0; (D3) composes them:
    |D - T| <= (Y - 1) sum |t_c|, |T - S| <= rho Sigma, sum |t_c| <= (1 + rho) Sigma give
    |D - S| <= (Y (1 + rho) - 1) Sigma."""
    import z3

    from refarith.smt.registry import prove

    for u, c, w in ((Fraction(1, 2 ** (_P32 - 1)), (1 + Fraction(1, 2 ** (_P32 - 1))) * 33 / Fraction(2 ** 13),
                     tc_whole_k_rate("hopper_fp8")), (Fraction(1, 2 ** _P32), Fraction(0), Fraction(1, 2 ** _P32))):
        out = _induction_step(u, c, w)
        if out.verdict != PROVED:
            return out
    d, t, s, sig, sigt, rho, y = z3.Reals("D T S Sigma Sigma_t rho Y")

    def ab(v):
        return z3.If(v < 0, -v, v)

    hyp = [y >= 1, rho >= 0, sig >= 0, ab(d - t) <= (y - 1) * sigt, ab(t - s) <= rho * sig, sigt <= (1 + rho) * sig]
    out = prove(z3.Implies(z3.And(*hyp), ab(d - s) <= (y * (1 + rho) - 1) * sig), {"D": d, "Y": y, "rho": rho}, 30)
    if out.verdict == PROVED:
        out.detail = ("deepseek_v3: |D - S| <= ((1 + 2^-24)^ceil(K/128) (1 + rho) - 1) sum |p_k|, rho = "
                      f"(1 + w)^4 - 1 = {tc_promoted_factor(0):.6g}; factor at K = 4096: "
                      f"{tc_promoted_factor(4096):.6g} "
                      f"(hopper_fp8 without promotion: {float((1 + tc_whole_k_rate('hopper_fp8')) ** 128 - 1):.4g})")
    return out


@theorem("gemm.tc_align_whole_k.deepseek_v3",
         "deepseek_v3 (hopper_fp8 groups, promotion into binary32 every 128): the whole accumulation of K products, "
         "each group step in the scope of gemm.tc_align_bound.hopper_fp8, gives |D - S| <= ((1 + 2^-24)^ceil(K/128) "
         "(1 + rho) - 1) sum |p_k|, rho = (1 + w)^4 - 1 with hopper_fp8's w: the chunk bound by induction, the "
         "binary32 promotions by the standard model of RNE addition (assumed), the steps and the composition Z3 over "
         "the reals", expect=PROVED, budget=30, tags=("gemm", "z3", "tensor_core"))
def tc_whole_k_promoted() -> Outcome:
    return _tc_whole_k_promoted()


def _register_tc(preset: str) -> None:
    g, b = TC_ALIGN[preset]
    n = g + 1
    also = " (turing_tc has the same parameters)" if preset == "volta_tc" else ""

    @theorem(f"gemm.tc_align_bound.{preset}",
             f"{preset}{also}: one tensor-core group step (the accumulator t and g = {g} products aligned to the "
             f"largest exponent E, truncated to multiples of 2^(E - {b}), summed exactly, the sum truncated into "
             f"binary32) gives t' with |t' - S| <= 2^-23 |S| + (1 + 2^-23) {n} 2^-{b} M, S = t + sum p_k, M the "
             f"largest |term|, for every t and p_k that are integer multiples of a unit 2^L below 2^(L + {TC_UNITS})"
             " with binary32-normal sums (E4M3 and E5M2 products and their partial sums); Z3, in three lemmas",
             expect=PROVED, budget=30, tags=("gemm", "z3", "tensor_core"))
    def check() -> Outcome:
        return _tc_align_bound(preset)

    @theorem(f"gemm.tc_align_constant_tight.{preset}",
             f"{preset}: one group step errs by at most {n - 1} 2^-{b} M (the alignment term with {n - 1} in place "
             f"of {n}).  False: {n} equal terms 2^E + 2^(E - {b}) - 1 units (E = 35, unit 2^-18) lose "
             f"{n} (2^(E - {b}) - 1) units in the alignment (the exact model's step), so the constant {n} of the "
             "alignment term cannot be lowered",
             expect=COUNTEREXAMPLE, budget=30, tags=("gemm", "tensor_core"))
    def tight() -> Outcome:
        return _tc_tight(preset)

    @theorem(f"gemm.tc_align_sharp_bound.{preset}",
             f"{preset}: the group step of gemm.tc_align_bound.{preset} (same scope) satisfies the sharper "
             f"|t' - S| <= {n} U + max(0, 2^-23 (|S| + {n} U) - (U + 1)), U = 2^max(E - {b}, 0) - 1 units, E = "
             f"floor(log2 M); below the first bound by at least U + 1 >= 2^-{b + 1} M when U > 0; Z3, in three lemmas",
             expect=PROVED, budget=30, tags=("gemm", "z3", "tensor_core"))
    def sharp() -> Outcome:
        return _tc_sharp_bound(preset)

    @theorem(f"gemm.tc_align_sharp_tight.{preset}",
             f"{preset}: one group step errs by at most (1 - 2^-20) times the sharpened bound.  False: a group of "
             f"{n} terms (units 2^-18, E = 40) each losing 2^sh - 1 in the alignment, whose aligned sum loses the "
             "most the binary32 truncation can, replayed through the exact model's step, reaches the sharpened "
             "bound to within 2^-20 (within the theorem's scope: multiples of the unit, not E4M3 products)",
             expect=COUNTEREXAMPLE, budget=30, tags=("gemm", "tensor_core"))
    def sharp_tight() -> Outcome:
        return _tc_sharp_tight(preset)

    @theorem(f"gemm.tc_align_whole_k.{preset}",
             f"{preset}: the whole accumulation (no promotion) of K products, each group step within the scope of "
             f"gemm.tc_align_bound.{preset}, gives |D - S| <= ((1 + w)^ceil(K/{g}) - 1) sum |p_k|, w = 2^-23 + "
             f"(1 + 2^-23) {n} 2^-{b}: induction over the groups (a partial last group is padded with zero "
             "products, which align to zero), the step's two inequalities each Z3 over the reals",
             expect=PROVED, budget=30, tags=("gemm", "z3", "tensor_core"))
    def whole_k() -> Outcome:
        return _tc_whole_k(preset)


for _p in TC_ALIGN:
    _register_tc(_p)


def tc_e4m3_group_max(preset: str = "hopper_fp8", es: range = range(14, 62)) -> list[tuple[int, int, int, Fraction]]:
    """The largest error of one group step on E4M3 products, by enumeration: for each E = floor(log2 M) (units
    2^-18, sh = E - b >= 1), (E, the largest error in units, the sharpened bound n U, their ratio).

    The step (rtz) loses x mod 2^sh on each positive term x (negative terms lose the opposite), and for b = 13 the
    aligned sum (a multiple of 2^sh below n 2^(E + 1), so at most b + 1 + bitlen(n) <= 24 significant bits) is a
    binary32 value: the truncation into binary32 loses nothing, and the error is |sum of the losses|.  Each
    product loses at most L = max (p mod 2^sh) over the positive E4M3 products p < 2^(E + 1) (all 126^2 pairs of
    positive finite codes); t, a binary32 value on the grid, at most 2^sh - 2^max(sh - 24, 0), or, when it is the
    largest term (in [2^E, 2^(E + 1))), 2^sh - 2^max(E - 23, 0); some term lies in [2^E, 2^(E + 1)): either t or
    a product, whose loss is then at most the largest over the products in that range.  The maximum is attained
    by the positive group with those terms, so the figure is exact (over every t of the step theorem's scope, not
    only the accumulator values earlier groups can produce)."""
    g, b = TC_ALIGN[preset]
    n = g + 1
    if n << (b + 1) > 1 << _P32:
        raise BadValueError(f"{preset}: the aligned sum can exceed binary32 precision, which the enumeration excludes")
    v = F.decode_array(np.arange(1, 0x7F), "ocp_e4m3") * 512  # positive finite E4M3 values in units 2^-9
    prods = np.unique(np.outer(v.astype(np.int64), v.astype(np.int64)).ravel())
    out = []
    for e in es:
        sh = e - b
        m = 1 << sh
        below = prods[prods < (1 << (e + 1))]
        loss = below % m
        top = loss[below >= (1 << e)]
        best = (m - (1 << max(e - 23, 0))) + g * int(loss.max())  # t is the largest term
        if top.size:  # a product is the largest term
            best = max(best, (m - (1 << max(sh - 24, 0))) + (g - 1) * int(loss.max()) + int(top.max()))
        out.append((e, best, n * (m - 1), Fraction(best, n * (m - 1))))
    return out


TC_E4M3_WITNESS = ([0x28, 0x28, 0x01] + [0] * 29 + [0x01] * 32, [0x20, 0x20, 0x01] + [0] * 29 + [0x01] * 32)
"""A (1 x 64) and B (64 x 1) E4M3 codes: the first group sums 2^-5 + 2^-5 + 2^-18 exactly (E = 13 in units 2^-18,
no alignment loss) into t = 2^14 + 1 units; the second aligns t and 32 products of 2^-18 (one unit each) to
2^(14 - 13) = 2 units, so each of the 33 terms loses one unit: 33 units, the sharpened bound n U with U = 1."""


def _tc_e4m3_tight(preset: str = "hopper_fp8") -> Outcome:
    """The claim ``|t' - S| <= (1 - 2^-20) x the sharpened bound`` for E4M3 groups, refuted by the GEMM
    :data:`TC_E4M3_WITNESS` through the exact model (and the numpy kernel): its error is the sharpened bound of its
    second group, and the first group loses nothing."""
    cx, err, sharp, same = _e4m3_witness(preset, *TC_E4M3_WITNESS, 14)
    return Outcome(COUNTEREXAMPLE, cx, confirmed=err == sharp and same and (1 - Fraction(1, 2 ** 20)) * sharp < err,
                   method="enumeration")


def _e4m3_witness(preset: str, a: list[int], bb: list[int], e: int) -> tuple[dict, Fraction, Fraction, bool]:
    """The 1 x K by K x 1 E4M3 GEMM (codes ``a``, ``bb``) through the exact model and the numpy kernel: (its
    counterexample record, the error in units 2^-18, the sharpened bound of a group at E = ``e`` whose terms sum
    to S (every earlier group exact), whether the kernel's code equals the exact model's)."""
    g, b = TC_ALIGN[preset]
    spec = f"scaled_mm(ocp_e4m3->binary32,accum={preset})"
    d = X.scaled_mm(spec, [a], [[x] for x in bb])[0][0]
    dval = Fraction(float(F.decode_array(np.array([d]), "binary32")[0]))
    fast = int(F.scaled_mm(spec, np.array([a]), np.array([bb]).T)[0, 0])
    tab = F.decode_array(np.arange(256), "ocp_e4m3")
    s = sum(Fraction(float(tab[x])) * Fraction(float(tab[y])) for x, y in zip(a, bb))
    unit = Fraction(1, 2 ** 18)
    err = abs(dval - s) / unit
    sharp = tc_sharp_bound(g + 1, b, e, s / unit)
    cx = {"a": " ".join(f"{x:#04x}" for x in a), "b": " ".join(f"{x:#04x}" for x in bb), "S": str(s),
          "D": str(dval), "error_units": str(err), "sharp_bound_units": str(sharp), "fast_kernel_code": f"{fast:#010x}"}
    return cx, err, sharp, fast == d


@theorem("gemm.tc_e4m3_sharp_tight.hopper_fp8",
         "hopper_fp8 on E4M3 products (a real FP8 GEMM, binary32 accumulator): one group step errs by at most "
         "(1 - 2^-20) times the sharpened bound of gemm.tc_align_sharp_bound.hopper_fp8.  False: the 1 x 64 by "
         "64 x 1 E4M3 GEMM of TC_E4M3_WITNESS (t = 2^-4 + 2^-18 from an exact first group, then 32 products of "
         "2^-18 aligned to 2^-17) loses 33 units of 2^-18, the bound n U exactly (exact model and numpy kernel)",
         expect=COUNTEREXAMPLE, budget=30, tags=("gemm", "tensor_core"))
def _tc_e4m3_sharp_tight() -> Outcome:
    return _tc_e4m3_tight()


# ------------------------------------------------------------------ E4M3 groups at b = 23: the ratio reached
TC_E4M3_RATIO = ("volta_tc", "ampere_tc")
"""The b = 23 presets of :func:`_tc_e4m3_ratio` and :func:`_tc_e4m3_ratio_tight`."""


def _e4m3_large_products_grid() -> str | None:
    """Enumeration over every pair of positive finite E4M3 codes (126^2): each product (units 2^-18) of at least
    2^24 units is a multiple of 2^17 units, and every product is below 2^36 units; a description of the first
    product that is not, or None.  (A product m1 m2 2^j of 4-bit significands has m1 m2 <= 225 < 2^8.)"""
    v = (F.decode_array(np.arange(1, 0x7F), "ocp_e4m3") * 512).astype(np.int64)
    prods = np.unique(np.outer(v, v).ravel())
    big = prods[prods >= 1 << 24]
    if (big % (1 << 17)).any():
        return f"the product {int(big[(big % (1 << 17)) != 0][0])} units is not a multiple of 2^17"
    if int(prods.max()) >= 1 << 36:
        return f"the product {int(prods.max())} units is not below 2^36"
    return None


def _tc_lemma_t32(b: int) -> Outcome:
    """Lemma (T): a binary32 magnitude t (t = rtz24(m), floor(log2 t) = E < 80, units) is aligned exactly at its
    own E when E >= b + 1 = 24: align(t, E, b) = t (Z3, bit-vectors)."""
    import z3

    from refarith.smt.registry import prove

    w = 2 * TC_UNITS
    one = z3.BitVecVal(1, w)
    m, e = z3.BitVec("m", w), z3.BitVec("E", w)
    t = _tc_rtz_term(m, e, _P32, w)
    a, _ = _tc_align_term(t, e, b, w)
    lemma = z3.Implies(z3.And(z3.ULT(e, TC_UNITS), z3.ULE(one << e, m), z3.ULT(m, one << (e + 1))), a == t)
    return prove(lemma, {"m": m, "E": e}, 30)


def _tc_e4m3_ratio(preset: str, largest_exact: bool = True) -> Outcome:
    """E4M3 groups of a b = 23 preset (products of E4M3 codes, t a binary32 value, in the scope of the step theorem)
    err by at most sharp / (1 + 2^-23), sharp the bound of :func:`tc_sharp_bound`.  (E) enumeration
    (:func:`_e4m3_large_products_grid`) and (T) :func:`_tc_lemma_t32`: when U > 0 (E >= 24) the largest term, a
    product of at least 2^24 units (a multiple of 2^17 >= 2^sh, sh = E - 23 <= 12) or t, loses nothing in the
    alignment; (A) :func:`_tc_lemma_a` every other term loses at most U; (B'') the binary32 truncation loses r = 0
    or r with 2^23 (r + U + 1) + r <= |y|; (C'') the sum: (1 + 2^-23) |t' - S| <= sharp (Z3, integers).
    ``largest_exact=False`` leaves out of (C'') that the largest term loses nothing (the tests see it fail)."""
    import z3

    from refarith.smt.registry import prove

    g, b = TC_ALIGN[preset]
    if b != _P32 - 1:
        raise BadValueError(f"{preset}: the ratio theorem takes the b = 23 presets ({', '.join(TC_E4M3_RATIO)})")
    n = g + 1
    bad = _e4m3_large_products_grid()
    if bad:
        return Outcome("error", detail=f"lemma (E) fails: {bad}")
    for out in (_tc_lemma_t32(b), _tc_lemma_a(b), _tc_lemma_b_sharp(n, plus_r=True)):
        if out.verdict != PROVED:
            return out
    ds, s, yy, uu, dd, rr, ab = _tc_sum_terms(n)
    hyp = [uu >= 0, ds[0] == 0 if largest_exact else True, *[z3.And(-uu <= di, di <= uu) for di in ds],
           rr == ab(dd - yy),
           z3.Or(rr == 0, (rr + uu + 1) * 2 ** (_P32 - 1) + rr <= ab(yy))]
    over = ab(s) + n * uu - (uu + 1) * 2 ** (_P32 - 1)  # 2^23 (2^-23 (|S| + n U) - (U + 1))
    claim = z3.Implies(z3.And(*hyp), ab(dd - s) * (2 ** (_P32 - 1) + 1)
                       <= n * uu * 2 ** (_P32 - 1) + z3.If(over > 0, over, 0))
    out = prove(claim, {"D": dd, "U": uu, "S": s}, 30)
    if out.verdict == PROVED:
        out.detail = (f"{preset} on E4M3 groups (g = {g}, b = {b}, rtz, binary32 t): (E) every E4M3 product of at "
                      "least 2^24 units is a multiple of 2^17 (enumeration of 126^2 pairs), (T) a binary32 t is "
                      "aligned exactly at its own E >= 24, so the largest term loses nothing when U > 0; (A) the "
                      "other terms lose at most U; (B'') r = 0 or 2^23 (r + U + 1) + r <= |y|; (C'') "
                      f"|t' - S| <= sharp / (1 + 2^-23); (T), (A), (B''), (C'') each Z3")
    return out


def tc_e4m3_ratio_witness(g: int) -> tuple[list[int], list[int]]:
    """A (1 x 2g) and B (2g x 1) E4M3 codes: the first group gives t = (g - 1) units (2^-9 times (g - 1) 2^-9,
    exact); the second aligns t and g products 4 x 8 = 2^23 units at E = 23 (U = 0: nothing lost) to the sum
    g 2^23 + g - 1, whose binary32 truncation (grid g units, g = 4 or 8) loses g - 1 units: the sharpened bound is
    2^-23 S - 1 = (g - 1)(1 + 2^-23), so the error is sharp / (1 + 2^-23) exactly."""
    if g not in (4, 8):
        raise BadValueError(f"g={g}: the witness takes g = 4 or 8 (g - 1 a subnormal E4M3 significand)")
    return [0x01] + [0] * (g - 1) + [0x48] * g, [g - 1] + [0] * (g - 1) + [0x50] * g


def _tc_e4m3_ratio_tight(preset: str) -> Outcome:
    """The claim ``|t' - S| < sharp / (1 + 2^-23)`` for E4M3 groups, refuted by :func:`tc_e4m3_ratio_witness`
    through the exact model and the numpy kernel: the error equals sharp / (1 + 2^-23), more than (1 - 2^-20) sharp
    (the claim hopper_fp8's witness refutes)."""
    cx, err, sharp, same = _e4m3_witness(preset, *tc_e4m3_ratio_witness(TC_ALIGN[preset][0]), 23)
    cx["error_over_sharp_bound"] = str(err / sharp)
    ratio = Fraction(2 ** (_P32 - 1), 2 ** (_P32 - 1) + 1)
    return Outcome(COUNTEREXAMPLE, cx, confirmed=err == ratio * sharp and err > 0 and same
                   and err > (1 - Fraction(1, 2 ** 20)) * sharp, method="enumeration")


def _register_tc_e4m3_ratio(preset: str) -> None:
    g, _ = TC_ALIGN[preset]

    @theorem(f"gemm.tc_e4m3_sharp_ratio.{preset}",
             f"{preset} on E4M3 products (a binary32 accumulator t, in the scope of gemm.tc_align_sharp_bound."
             f"{preset}): one group step errs by at most sharp / (1 + 2^-23), sharp the bound of gemm.tc_align_sharp_"
             f"bound.{preset}, so the sharpened bound is never reached exactly there (a zero bound aside): when "
             "U > 0 the largest term (an E4M3 product of at least 2^24 units, a multiple of 2^17 by enumeration, or "
             "t, binary32) loses nothing in the alignment; Z3 for the other lemmas and the sum",
             expect=PROVED, budget=30, tags=("gemm", "z3", "tensor_core"))
    def ratio() -> Outcome:
        return _tc_e4m3_ratio(preset)

    @theorem(f"gemm.tc_e4m3_sharp_tight.{preset}",
             f"{preset} on E4M3 products (a real FP8 GEMM, binary32 accumulator): one group step errs by less than "
             f"sharp / (1 + 2^-23).  False: the 1 x {2 * g} by {2 * g} x 1 E4M3 GEMM of tc_e4m3_ratio_witness({g}) "
             f"(t = {g - 1} units of 2^-18 from an exact first group, then {g} products 4 x 8) loses {g - 1} units "
             f"in the binary32 truncation, sharp / (1 + 2^-23) exactly and more than (1 - 2^-20) sharp (exact model "
             "and numpy kernel), so the factor of gemm.tc_e4m3_sharp_ratio is attained",
             expect=COUNTEREXAMPLE, budget=30, tags=("gemm", "tensor_core"))
    def ratio_tight() -> Outcome:
        return _tc_e4m3_ratio_tight(preset)


for _p in TC_E4M3_RATIO:
    _register_tc_e4m3_ratio(_p)


def _fp8_codes(x: np.ndarray) -> np.ndarray:
    """E4M3 codes of binary64 values (RNE, saturating), through the exact value table."""
    tab = F.decode_array(np.arange(256), "ocp_e4m3")
    pos = np.arange(0, 0x7F)  # finite non-negative codes, ascending values
    vals = tab[pos]
    ax = np.clip(np.abs(x), 0, 448.0)
    idx = np.clip(np.searchsorted(vals, ax), 1, len(vals) - 1)
    lo, hi = vals[idx - 1], vals[idx]
    pick_hi = (ax - lo > hi - ax) | ((ax - lo == hi - ax) & (pos[idx] % 2 == 0))
    c = np.where(pick_hi, pos[idx], pos[idx - 1])
    return np.where(x < 0, c | 0x80, c)


def tensor_core_claims(m: int = 64, n: int = 64, k: int = 4096, seed: int = 0) -> list[dict]:
    """Maximum and median relative error of each model's binary32 output against the exact sum (E4M3 inputs,
    M x K by K x N), for two input distributions: ``uniform01`` (i.i.d. U[0, 1) cast to E4M3 with RNE: positive
    products, the sum grows like K, the swamping case) and ``normal`` (i.i.d. N(0, 1) cast to E4M3)."""
    rng = np.random.default_rng(seed)
    rows = []
    for dist in ("uniform01", "normal"):
        if dist == "uniform01":
            xa, xb = rng.random((m, k)), rng.random((k, n))
        else:
            xa, xb = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        a, b = _fp8_codes(xa), _fp8_codes(xb)
        s = F.decode_array(a, "ocp_e4m3") @ F.decode_array(b, "ocp_e4m3")  # exact: integers * 2^-18 < 2^53
        for model in ("sequential", "pairwise", "hopper_fp8", "deepseek_v3"):
            d = F.decode_array(F.scaled_mm(f"scaled_mm(ocp_e4m3->binary32,accum={model})", a, b), "binary32")
            with np.errstate(invalid="ignore", divide="ignore"):
                rel = np.abs(d - s) / np.abs(s)
            rel = rel[s != 0]
            rows.append({"distribution": dist, "model": model, "m": m, "n": n, "k": k,
                         "max_rel_error": float(rel.max()), "median_rel_error": float(np.median(rel)),
                         "mean_rel_error": float(rel.mean())})
    return rows


__all__ = ["INT_SUM_FORMATS", "MODELS", "enumerate_model", "tensor_core_claims"]
