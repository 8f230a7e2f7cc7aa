"""Theorems about the I-ViT integer operators (shift-exp, Shiftmax, I-LayerNorm square root).

Each counterexample is re-run through :mod:`refarith.exact.ivit` before it is reported.
"""

from __future__ import annotations

import math

from refarith.exact import ivit as ex
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, prove, theorem

INT32_MAX = (1 << 31) - 1


@theorem(
    "ivit.log2e_shift_exact_relation",
    "For every int32 x: 16*(x + (x>>1) - (x>>4)) - 23*x = (x mod 16) - 8*(x mod 2), hence lies in [-7, 14], and "
    "x + (x>>1) - (x>>4) = 23x/16 exactly iff x = 0 (mod 16). (Z3, 32-bit x, arithmetic shifts, 40-bit sums.)",
    expect=PROVED, budget=30, tags=("ivit", "z3"))
def log2e_shift_exact_relation() -> Outcome:
    import z3

    x = z3.BitVec("x", 32)
    w = 40
    X = z3.SignExt(w - 32, x)
    s = X + z3.SignExt(w - 32, x >> 1) - z3.SignExt(w - 32, x >> 4)
    d = 16 * s - 23 * X
    m16 = z3.ZeroExt(w - 4, z3.Extract(3, 0, x))
    m2 = z3.ZeroExt(w - 1, z3.Extract(0, 0, x))
    claim = z3.And(d == m16 - 8 * m2, d >= -7, d <= 14, (d == 0) == (m16 == 0))
    return prove(claim, {"x": x}, 30)


@theorem(
    "ivit.shift_exp_int32_tvm",
    "The TVM shift-exp ((r>>1) - x0) << (16 - q) never overflows int32 (n = 16, every scale). False: at x = 0 the "
    "result is -x0 * 2^16, which wraps once x0 <= -2^15, i.e. for scales s <= 1/32767.5 (enumeration over x0).",
    expect=COUNTEREXAMPLE, budget=30, tags=("ivit", "overflow"))
def shift_exp_int32_tvm() -> Outcome:
    for m in range(1, 1 << 20):
        scale = 1 / (m + 0.5)
        x0 = ex.x0_int(scale, "ivit_tvm")
        true = -x0 << 16
        if true > INT32_MAX:
            got = ex.shift_exp(0, x0, 16, "ivit_tvm")
            return Outcome(COUNTEREXAMPLE, {"x": 0, "x0": x0, "scale_fl32": repr(float(ex.parse_scale(scale))),
                                            "int32_result": got,
                                            "exact_result": true}, confirmed=got != true, method="enumeration")
    return Outcome(PROVED, method="enumeration")


@theorem(
    "ivit.shift_exp_int32_torch_bound",
    "ivit_torch shift-exp for x <= 0 is at most -x0 * 2^n (its value at x = 0): r <= 0 and q >= 0 give "
    "t = r - 2*x0 <= -2*x0 and n - q <= n.  Checked by enumerating every x in [n*x0*16/23 - 32, 0] (below that "
    "the clamp makes the result constant) for every x0 in [-1024, -1] and n in {15, 23}.",
    expect=PROVED, budget=120, tags=("ivit", "overflow"))
def shift_exp_int32_torch_bound() -> Outcome:
    for n in (15, 23):
        for x0 in range(-1, -1025, -1):
            top = -x0 << n
            for x in range(n * x0 * 16 // 23 - 32, 1):
                v = ex.shift_exp(x, x0, n, "ivit_torch")
                if v > top:
                    return Outcome(COUNTEREXAMPLE, {"x": x, "x0": x0, "n": n, "value": v, "bound": top},
                                   confirmed=True, method="enumeration")
    return Outcome(PROVED, method="enumeration")


@theorem(
    "ivit.softmax_sum_no_wrap_tvm",
    "The int32 row sum of the TVM Shiftmax never wraps for rows of at most 4096 int8 inputs at scale 2^-7. False: "
    "255 equal inputs give 255 * 129 * 2^16 = 2155806720 > 2^31 - 1; the sum wraps negative and every output "
    "becomes -1 (the true softmax is 1/255, i.e. 0 at scale 2^-7).",
    expect=COUNTEREXAMPLE, budget=30, tags=("ivit", "overflow"))
def softmax_sum_no_wrap_tvm() -> Outcome:
    scale = "0.0078125"
    x0 = ex.x0_int(scale, "ivit_tvm")
    e0 = ex.shift_exp(0, x0, 16, "ivit_tvm")
    for length in range(1, 4097):
        if length * e0 > INT32_MAX:
            row = [0] * length
            out = ex.shiftmax(row, scale, "ivit_tvm")
            torch_out = ex.shiftmax(row, scale, "ivit_torch")
            return Outcome(COUNTEREXAMPLE, {"row": f"[0] * {length}", "scale": scale, "exp_each": e0,
                                            "exact_sum": length * e0, "int32_sum": ex.wrap32(length * e0),
                                            "tvm_output": out[0], "torch_output": torch_out[0]},
                           confirmed=ex.wrap32(length * e0) != length * e0 and out[0] < 0, method="enumeration")
    return Outcome(PROVED, method="enumeration")


@theorem(
    "ivit.softmax_output_range_torch_lemma",
    "ivit_torch Shiftmax outputs lie in [0, 2^(b-1) - 1] whenever every exp is at most 2^31 - 1 (true when "
    "-x0 * 2^n < 2^31): with S' = min(S, 2^31-1) >= e >= 0, S' >= 1, e * floor((2^31-1)/S') <= 2^31 - 1. "
    "(Z3 nonlinear integer arithmetic, floor division given by its defining inequalities; the 64-bit "
    "bit-vector form of the same claim does not finish within a minute.)",
    expect=PROVED, budget=60, tags=("ivit", "range", "z3"))
def softmax_output_range_torch_lemma() -> Outcome:
    import z3

    e, s, f = z3.Ints("e s f")
    c = INT32_MAX
    pre = z3.And(e >= 0, e <= s, s >= 1, s <= c, f >= 0, f * s <= c, c < (f + 1) * s)
    return prove(z3.Implies(pre, e * f <= c), {"e": e, "s": s, "f": f}, 60)


@theorem(
    "ivit.softmax_output_range_torch",
    "ivit_torch Shiftmax (n = 15, b = 8) always fits int8 [0, 127], whatever the scale. False: when one exp "
    "exceeds 2^31 - 1 the clamped sum gives factor 1 and the output is exp >> 24 (enumeration over x0).",
    expect=COUNTEREXAMPLE, budget=30, tags=("ivit", "range"))
def softmax_output_range_torch() -> Outcome:
    for m in range(1, 1 << 20):
        scale = 1 / (m + 0.5)
        x0 = ex.x0_int(scale, "ivit_torch")
        if -x0 << 15 > INT32_MAX:
            out = ex.shiftmax([0], scale, "ivit_torch")
            return Outcome(COUNTEREXAMPLE, {"row": [0], "scale_fl32": repr(float(ex.parse_scale(scale))), "x0": x0,
                                            "output": out[0]},
                           confirmed=out[0] > 127, method="enumeration")
    return Outcome(PROVED, method="enumeration")


@theorem(
    "ivit.softmax_nonnegative_tvm",
    "ivit_tvm Shiftmax outputs are never negative. False: see ivit.softmax_sum_no_wrap_tvm (a wrapped, negative "
    "row sum makes the truncating factor negative).",
    expect=COUNTEREXAMPLE, budget=30, tags=("ivit", "range"))
def softmax_nonnegative_tvm() -> Outcome:
    row = [0] * 256
    out = ex.shiftmax(row, "0.0078125", "ivit_tvm")
    return Outcome(COUNTEREXAMPLE, {"row": "[0] * 256", "scale": "0.0078125", "output": out[0]},
                   confirmed=min(out) < 0, method="enumeration")


def _isqrt_mismatches(variant: str, lo: int, hi: int) -> list[int]:
    import numpy as np

    from refarith.fast.ivit import newton_sqrt

    bad: list[int] = []
    step = 1 << 22
    for a in range(lo, hi, step):
        v = np.arange(a, min(a + step, hi), dtype=np.int64)
        r = newton_sqrt(v, variant)
        iq = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)  # exact isqrt for v < 2^52
        bad.extend(int(x) for x in v[r != iq])
    return bad


def newton_pieces(lo: int, hi: int, iters: int = ex.NEWTON_ITERS, start: int = ex.NEWTON_START):
    """The ivit_torch Newton root on every v in [lo, hi] as intervals: arrays (L, H, K), sorted and disjoint,
    covering [lo, hi], with newton_sqrt(v) == K[i] for every v in [L[i], H[i]].

    Exact: each step k <- (k + v // k) >> 1 splits an interval of constant k where v // k changes (at multiples of
    k), and joins neighbours that reach the same next k; every value is an int64 below 2^34 (hi < 2^32).  About
    sqrt(hi) intervals remain, so [2^24, 2^32) takes well under a second instead of 2^32 kernel evaluations."""
    import numpy as np

    if not 1 <= lo <= hi < 1 << 32:
        raise ValueError("newton_pieces: need 1 <= lo <= hi < 2^32")
    L, H, K = (np.array([x], dtype=np.int64) for x in (lo, hi, start))
    for _ in range(iters):
        if (K <= 0).any():
            raise ValueError("newton_pieces: an iterate reached 0")
        qlo, qhi = L // K, H // K
        n = qhi - qlo + 1
        parent = np.repeat(np.arange(len(L)), n)
        q = qlo[parent] + (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n))
        k = K[parent]
        nl, nh, nk = np.maximum(L[parent], q * k), np.minimum(H[parent], q * k + k - 1), (k + q) >> 1
        first = np.ones(len(nk), dtype=bool)
        first[1:] = (nk[1:] != nk[:-1]) | (nl[1:] != nh[:-1] + 1)
        starts = np.flatnonzero(first)
        L, K, H = nl[starts], nk[starts], nh[np.append(starts[1:] - 1, len(nk) - 1)]
    return L, H, K


def _interval_mismatches(lo: int, hi: int, limit: int = 1 << 20) -> list[int] | None:
    """Every v in [lo, hi] where the ivit_torch Newton root differs from isqrt(v) (from :func:`newton_pieces`:
    v mismatches iff it lies outside [K^2, (K+1)^2 - 1]), sorted; None when there are more than ``limit``."""
    import numpy as np

    L, H, K = newton_pieces(lo, hi)
    below = (L, np.minimum(H, K * K - 1))  # v < K^2: the root is too large
    above = (np.maximum(L, (K + 1) * (K + 1)), H)  # v >= (K + 1)^2: too small
    runs = [(int(a), int(b)) for a_, b_ in (below, above) for a, b in zip(a_, b_) if a <= b]
    if sum(b - a + 1 for a, b in runs) > limit:
        return None
    return sorted(v for a, b in runs for v in range(a, b + 1))


def _oscillating_roots() -> set[int]:
    """m in [4097, 65536] with newton(m^2 - 1) = m instead of m - 1 (the iteration alternates m-1, m)."""
    return {m for m in range(4097, 65537) if ex.newton_sqrt(m * m - 1, "ivit_torch") != m - 1}


@theorem(
    "ivit.newton_sqrt_exact_domain",
    "I-LayerNorm's 10-step Newton root from 2^16 equals isqrt(v) on [0, 2^24) exactly for v >= 4549689 "
    "(v = 4549688 = 2133^2 - 1 fails, and so does every v < 4096, e.g. 0 -> 64); on [2^24, 2^32) it fails exactly "
    "at v = m^2 - 1 for the 30550 values m in [4667, 65536] where the iteration ends on m instead of m - 1 (it "
    "alternates between the two), e.g. 4667^2 - 1 and 2^32 - 1.  Enumeration of all v < 2^24 (numpy kernel, "
    "tied to the exact model by tests; floor(sqrt) in binary64 is exact isqrt here) and of every m^2 - 1 with the "
    "exact model; the claim that no other v in [2^24, 2^32) fails is ivit.newton_sqrt_exact_domain_2_32.  Both "
    "variants agree below 2^32: every iterate after the first is >= isqrt(v), so no uint32 sum wraps.",
    expect=PROVED, budget=300, tags=("ivit", "sqrt", "enumeration"))
def newton_sqrt_exact_domain() -> Outcome:
    for variant in ex.VARIANTS:
        bad = set(_isqrt_mismatches(variant, 0, 1 << 24))
        if not bad or max(bad) != 4549688 or not set(range(4096)) <= bad:
            return Outcome("error", detail=f"{variant}: mismatch set changed (largest {max(bad) if bad else None})")
        for v in (0, 4549688):
            if ex.newton_sqrt(v, variant) == math.isqrt(v):
                return Outcome("error", detail=f"exact model disagrees at {v}")
    osc = _oscillating_roots()
    if len(osc) != 30550 or min(osc) != 4667 or 65536 not in osc:
        return Outcome("error", detail=f"oscillating set changed: {len(osc)} values")
    return Outcome(PROVED, method="enumeration")


@theorem(
    "ivit.newton_sqrt_exact_domain_2_32",
    "On [2^24, 2^32) I-LayerNorm's Newton root (ivit_torch) differs from isqrt exactly at the 30550 values "
    "m^2 - 1 of ivit.newton_sqrt_exact_domain.  Exhaustive over all 2^32 - 2^24 inputs by interval propagation "
    "of the exact recurrence (newton_pieces: about 61441 intervals of constant result, each compared with "
    "[K^2, (K+1)^2 - 1]); the numpy kernel gives the same mismatches on the first and last 2^22 inputs, and the "
    "exact model gives each mismatch and the result of every 64th interval at both ends.  (The numpy kernel on "
    "every input: tests/test_ivit.py, slow.)",
    expect=PROVED, budget=60, tags=("ivit", "sqrt", "enumeration"))
def newton_sqrt_exact_domain_2_32() -> Outcome:
    lo, hi = 1 << 24, 1 << 32
    bad = _interval_mismatches(lo, hi - 1)
    want = {m * m - 1 for m in _oscillating_roots()}
    if bad is None:
        return Outcome("error", detail="more than 2^20 mismatches on [2^24, 2^32)")
    if set(bad) != want:
        v = min(set(bad) ^ want)
        return Outcome(COUNTEREXAMPLE, {"v": v, "newton": ex.newton_sqrt(v, "ivit_torch"), "isqrt": math.isqrt(v)},
                       confirmed=(ex.newton_sqrt(v, "ivit_torch") != math.isqrt(v)) == (v in want),
                       method="enumeration")
    for a, b in ((lo, lo + (1 << 22)), (hi - (1 << 22), hi)):
        if _isqrt_mismatches("ivit_torch", a, b) != [v for v in bad if a <= v < b]:
            return Outcome("error", detail=f"numpy kernel and interval propagation differ on [{a}, {b})")
    if any(ex.newton_sqrt(v, "ivit_torch") == math.isqrt(v) for v in bad):
        return Outcome("error", detail="the exact model does not confirm a mismatch")
    L, H, K = newton_pieces(lo, hi - 1)
    for i in range(0, len(L), 64):
        if ex.newton_sqrt(int(L[i]), "ivit_torch") != K[i] or ex.newton_sqrt(int(H[i]), "ivit_torch") != K[i]:
            return Outcome("error", detail=f"exact model differs from interval propagation on [{L[i]}, {H[i]}]")
    return Outcome(PROVED, method="enumeration")


@theorem(
    "ivit.newton_sqrt_is_isqrt",
    "I-LayerNorm's 10-step Newton root from 2^16 is isqrt on all of [0, 2^24). False (smallest counterexample "
    "v = 0 -> 64).",
    expect=COUNTEREXAMPLE, budget=30, tags=("ivit", "sqrt"))
def newton_sqrt_is_isqrt() -> Outcome:
    for v in range(1 << 24):
        got = ex.newton_sqrt(v, "ivit_torch")
        if got != math.isqrt(v):
            return Outcome(COUNTEREXAMPLE, {"v": v, "newton": got, "isqrt": math.isqrt(v)},
                           confirmed=True, method="enumeration")
    return Outcome(PROVED, method="enumeration")


@theorem(
    "ivit.shiftgelu_denominator_int32_tvm",
    "The TVM ShiftGELU sigmoid denominator shift_exp(x - max) + shift_exp(-max) (n = 23) fits int32 for every "
    "input scale s >= 0.001. False: for a row whose maximum is 0 both terms are -x0 * 2^23 at x = max, and "
    "2 * (-x0) * 2^23 >= 2^31 once -x0 >= 128 (enumeration over s = 0.001 * k, k = 1..1000; the largest "
    "failing scale is reported with the wrapped sigmoid it produces).",
    expect=COUNTEREXAMPLE, budget=60, tags=("ivit", "overflow"))
def shiftgelu_denominator_int32_tvm() -> Outcome:
    for k in range(1000, 0, -1):
        scale = repr(0.001 * k)
        x0 = ex.gelu_x0(scale, "ivit_tvm")
        e = -x0 << 23
        if 2 * e > INT32_MAX:
            row = [0, -1]
            got = ex.shiftgelu(row, scale, "ivit_tvm")
            ref = ex.shiftgelu(row, scale, "ivit_torch")
            return Outcome(COUNTEREXAMPLE, {"row": row, "scale": scale, "x0": x0, "exact_denominator": 2 * e,
                                            "int32_denominator": ex.wrap32(2 * e), "tvm_output": got,
                                            "torch_output": ref},
                           confirmed=ex.wrap32(2 * e) != 2 * e, method="enumeration")
    return Outcome(PROVED, method="enumeration")
