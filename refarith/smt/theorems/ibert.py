"""Theorems about the I-BERT integer operators (i-sqrt, integer softmax ranges, i-exp width).

Each counterexample is re-run through :mod:`refarith.exact.ibert` before it is reported.
"""

from __future__ import annotations

import math

from refarith.exact import ibert as ex
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, prove, theorem


@theorem(
    "ibert.i_sqrt_newton_step",
    "Newton step of i-sqrt, k' = floor((k + floor(v/k))/2), for integers v >= 1, k >= 1: (a) if k*k > v then "
    "k' < k and (k'+1)^2 > v (the iterate decreases and stays >= isqrt v); (b) if k = isqrt v then k' >= k (the "
    "loop stops).  With the start 2^ceil(bits(v)/2), whose square exceeds v, this proves i-sqrt = isqrt for "
    "every v >= 0 (v = 0 returns 0 directly).  Nonlinear integer arithmetic, floors by their inequalities, as a "
    "chain of lemmas each small enough for every solver: q = floor(v/k) < k when k*k > v; then k' < k; "
    "(k'+1)^2 > v from 2k'+2 >= k+q+1 >= 0 (squares are monotone on non-negatives), (k+q+1)^2 - 4k(q+1) = "
    "(k-q-1)^2 >= 0 and 4k(q+1) > 4v; for (b), q >= k when k*k <= v, then k' >= k.  Lemmas over fresh variables "
    "are proved for all integers and used instantiated.",
    expect=PROVED, budget=60, tags=("ibert", "sqrt", "z3"))
def i_sqrt_newton_step() -> Outcome:
    import z3

    v, k, q, k1 = z3.Ints("v k q k1")
    x, y, z = z3.Ints("x y z")
    names = {"v": v, "k": k, "q": q, "k1": k1}
    step = z3.And(v >= 1, k >= 1, q * k <= v, v < (q + 1) * k, 2 * k1 <= k + q, k + q <= 2 * k1 + 1)
    # lemmas valid for all integers, instantiated below
    square_monotone = z3.Implies(z3.And(x >= y, y >= 0), x * x >= y * y)
    square_nonneg = z * z >= 0
    amgm = (k + q + 1) * (k + q + 1) - 4 * k * (q + 1) == (k - q - 1) * (k - q - 1)
    four_squares = (2 * k1 + 2) * (2 * k1 + 2) == 4 * ((k1 + 1) * (k1 + 1))
    instances = z3.And(
        z3.Implies(z3.And(2 * k1 + 2 >= k + q + 1, k + q + 1 >= 0), (2 * k1 + 2) * (2 * k1 + 2) >= (k + q + 1) *
                   (k + q + 1)),
        (k - q - 1) * (k - q - 1) >= 0, amgm, four_squares, z3.Implies(step, q >= 0))
    chain = [
        (square_monotone, {"x": x, "y": y}),
        (square_nonneg, {"z": z}),
        (amgm, names),
        (four_squares, names),
        (z3.Implies(step, q >= 0), names),
        (z3.Implies(z3.And(step, k * k > v), q < k), names),
        (z3.Implies(z3.And(step, q < k), k1 < k), names),
        (z3.Implies(z3.And(step, instances), (k1 + 1) * (k1 + 1) > v), names),
        (z3.Implies(z3.And(step, k * k <= v, v < (k + 1) * (k + 1)), q >= k), names),
        (z3.Implies(z3.And(step, q >= k), k1 >= k), names),
    ]
    for claim, variables in chain:
        out = prove(claim, variables, 30)
        if out.verdict != PROVED:
            if out.counterexample is not None and "v" in out.counterexample:
                c = {n: int(w, 16) if isinstance(w, str) else w for n, w in out.counterexample.items()}
                out.confirmed = ex.i_sqrt(c["v"]) != math.isqrt(c["v"])
            return out
    return Outcome(PROVED)


@theorem(
    "ibert.i_sqrt_is_isqrt_enumerated",
    "i-sqrt (I-BERT Algorithm 4) equals isqrt for every v in [0, 2^24): enumeration with the numpy kernel "
    "(tied to the exact model by tests) against floor(sqrt(v)) in binary64, exact for v < 2^52; plus the exact "
    "model against math.isqrt on [0, 2^16) and at 2^k - 1, 2^k, 2^k + 1 for k < 128.",
    expect=PROVED, budget=120, tags=("ibert", "sqrt", "enumeration"))
def i_sqrt_is_isqrt_enumerated() -> Outcome:
    import numpy as np

    from refarith.fast.ibert import i_sqrt

    step = 1 << 22
    for a in range(0, 1 << 24, step):
        v = np.arange(a, a + step, dtype=np.int64)
        bad = np.nonzero(i_sqrt(v) != np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64))[0]
        if bad.size:
            x = int(v[bad[0]])
            return Outcome(COUNTEREXAMPLE, {"v": x, "i_sqrt": ex.i_sqrt(x), "isqrt": math.isqrt(x)},
                           confirmed=ex.i_sqrt(x) != math.isqrt(x), method="enumeration")
    edge = list(range(1 << 16)) + [(1 << k) + d for k in range(128) for d in (-1, 0, 1) if (1 << k) + d >= 0]
    for x in edge:
        if ex.i_sqrt(x) != math.isqrt(x):
            return Outcome(COUNTEREXAMPLE, {"v": x, "i_sqrt": ex.i_sqrt(x), "isqrt": math.isqrt(x)},
                           confirmed=True, method="enumeration")
    return Outcome(PROVED, method="enumeration")


@theorem(
    "ibert.softmax_output_range_act16",
    "With the 16-bit requantization (act_bits = 16, b = 8) every output fits uint8 [0, 255]: each requantized "
    "exp e <= 32767, the row maximum contributes exactly 32767 so the sum S >= 32767 and e <= S, and "
    "f = floor(2^32/S) gives e*f <= 2^32 - 1, i.e. (e*f) >> 24 <= 255.  Z3, nonlinear integer arithmetic.",
    expect=PROVED, budget=60, tags=("ibert", "range", "z3"))
def softmax_output_range_act16() -> Outcome:
    import z3

    e, s, f = z3.Ints("e s f")
    p = 1 << 32
    pre = z3.And(e >= 0, e <= 32767, e <= s, s >= 32767, f >= 0, f * s <= p, p < (f + 1) * s)
    return prove(z3.Implies(pre, e * f <= p - 1), {"e": e, "s": s, "f": f}, 60)


@theorem(
    "ibert.softmax_output_range_no_act",
    "Without the requantization (act_bits = 0, the paper's Algorithm 3) outputs fit uint8 for every scale. "
    "False: at s = 1.0, c = floor(fl32(1/0.35815147)) = 2, i-exp(0) = 2^31, a one-element row gives "
    "factor 2 and output 2^32 >> 24 = 256.",
    expect=COUNTEREXAMPLE, budget=30, tags=("ibert", "range"))
def softmax_output_range_no_act() -> Outcome:
    out = ex.ibert_softmax([0], "1.0", act_bits=0)
    return Outcome(COUNTEREXAMPLE, {"row": [0], "scale": "1.0", "i_exp_0": ex.i_exp(0, "1.0"), "output": out[0]},
                   confirmed=out[0] > 255, method="enumeration")


@theorem(
    "ibert.softmax_no_act_sums_to_one",
    "Without the requantization the outputs of a row are not all zero at ordinary scales. False: at s = 0.01, "
    "i-exp(0) = 27921 * 2^30 > 2^32, so floor(2^32 / sum) = 0 and every output is 0 (why the reference "
    "requantizes exp to 16 bits before summing).",
    expect=COUNTEREXAMPLE, budget=30, tags=("ibert", "range"))
def softmax_no_act_sums_to_one() -> Outcome:
    row = [0, -5]
    out = ex.ibert_softmax(row, "0.01", act_bits=0)
    return Outcome(COUNTEREXAMPLE, {"row": row, "scale": "0.01", "i_exp_0": ex.i_exp(0, "0.01"), "output": out},
                   confirmed=sum(out) == 0, method="enumeration")


@theorem(
    "ibert.i_exp_fits_int32",
    "i-exp with n = 30 fits int32 at every scale s <= 1/2. False: i-exp(0) = c * 2^30 with c = floor(fl32(c2)/s^2) "
    ">= 11 for s <= 1/2 (enumeration over s = 2^-k, k = 1..16; the first scale is reported).",
    expect=COUNTEREXAMPLE, budget=30, tags=("ibert", "overflow"))
def i_exp_fits_int32() -> Outcome:
    for k in range(1, 17):
        s = repr(2.0 ** -k)
        v = ex.i_exp(0, s)
        if v > (1 << 31) - 1:
            return Outcome(COUNTEREXAMPLE, {"x": 0, "scale": s, "i_exp": v}, confirmed=True, method="enumeration")
    return Outcome(PROVED, method="enumeration")
