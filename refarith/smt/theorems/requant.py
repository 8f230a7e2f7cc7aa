"""Requantization theorems: gemmlowp SRDHM / RDBPOT, TFLite double vs single rounding, CMSIS-NN single rounding,
HAWQ-V3 dyadic error.

The C code of each primitive is encoded on 64-bit Z3 bit-vectors operation by operation (C division truncates:
``bvsdiv``; ``>>`` on signed values is arithmetic: ``bvashr``; casts to int32 keep the low 32 bits); the claimed
closed forms are independent formulations.  Every counterexample is replayed through
:mod:`refarith.exact.requant` and reported as concrete integers.
"""

from __future__ import annotations

import z3

from refarith.exact import requant as rq
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, prove, theorem

W = 64
MIN32, MAX32 = rq.INT32_MIN, rq.INT32_MAX


def _c(v: int) -> z3.BitVecNumRef:
    return z3.BitVecVal(v, W)


def _s32(name: str) -> tuple[z3.BitVecRef, z3.BitVecRef]:
    """A symbolic int32 and its sign extension to 64 bits."""
    v = z3.BitVec(name, 32)
    return v, z3.SignExt(32, v)


def _signed(v: int, bits: int = 32) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


def _wrap32(v: z3.BitVecRef) -> z3.BitVecRef:
    return z3.SignExt(32, z3.Extract(31, 0, v))


def z3_srdhm(a: z3.BitVecRef, b: z3.BitVecRef) -> z3.BitVecRef:
    """gemmlowp SRDHM on 64-bit values holding int32: nudge, truncating division, INT32_MIN^2 saturates."""
    ab = a * b
    nudge = z3.If(ab >= 0, _c(1 << 30), _c(1 - (1 << 30)))
    q = ab + nudge
    q = z3.If(q >= 0, z3.UDiv(q, _c(1 << 31)), -z3.UDiv(-q, _c(1 << 31)))  # C division: toward zero
    return z3.If(z3.And(a == _c(MIN32), b == _c(MIN32)), _c(MAX32), q)


def z3_rdbpot(x: z3.BitVecRef, e: z3.BitVecRef) -> z3.BitVecRef:
    """gemmlowp RoundingDivideByPOT on 64-bit values holding an int32 x and an exponent e in [0, 31]."""
    mask = (_c(1) << e) - 1
    rem = x & mask
    th = z3.LShR(mask, 1) + z3.If(x < 0, _c(1), _c(0))
    return (x >> e) + z3.If(rem > th, _c(1), _c(0))


def z3_double(x: z3.BitVecRef, m: z3.BitVecRef, shift: z3.BitVecRef) -> z3.BitVecRef:
    ls = z3.If(shift > 0, shift, _c(0))
    rs = z3.If(shift > 0, _c(0), -shift)
    return z3_rdbpot(z3_srdhm(_wrap32(x << ls), m), rs)


def z3_single_unwrapped(x: z3.BitVecRef, m: z3.BitVecRef, shift: z3.BitVecRef) -> z3.BitVecRef:
    total = _c(31) - shift
    return (x * m + (_c(1) << (total - 1))) >> total


def z3_cmsis(x: z3.BitVecRef, m: z3.BitVecRef, shift: z3.BitVecRef) -> z3.BitVecRef:
    r = _wrap32((x * m) >> (_c(30) - shift))
    return _wrap32(r + 1) >> 1


# --------------------------------------------------------------------------- SRDHM, RDBPOT
@theorem("requant.srdhm_floor_form",
         "for all int32 a, b: gemmlowp SaturatingRoundingDoublingHighMul(a, b) == floor((a*b + 2^30) / 2^31) "
         "unless a = b = INT32_MIN, where it saturates to INT32_MAX (the floor form would give 2^31); "
         "this is also the floor form the numpy/torch kernels use",
         expect=PROVED, budget=120, tags=("requant", "srdhm"))
def srdhm_floor_form() -> Outcome:
    a, A = _s32("a")
    b, B = _s32("b")
    code = z3_srdhm(A, B)
    both_min = z3.And(A == _c(MIN32), B == _c(MIN32))
    claim = z3.If(both_min, code == _c(MAX32), code == ((A * B + _c(1 << 30)) >> 31))

    def confirm(asg):
        av, bv = _signed(asg["a"]), _signed(asg["b"])
        got = rq.srdhm(av, bv)
        want = rq.INT32_MAX if av == bv == MIN32 else (av * bv + (1 << 30)) >> 31
        return {"a": av, "b": bv, "srdhm": got, "floor_form": want}, got != want

    return prove(claim, {"a": a, "b": b}, 110, confirm)


@theorem("requant.rdbpot_half_away",
         "for all int32 x and exponent e in [0, 31]: gemmlowp RoundingDivideByPOT(x, e) == "
         "sign(x) * floor((|x| + 2^e / 2) / 2^e), i.e. x / 2^e rounded to nearest, ties away from zero",
         expect=PROVED, budget=60, tags=("requant", "rdbpot"))
def rdbpot_half_away() -> Outcome:
    x, X = _s32("x")
    e = z3.BitVec("e", 64)
    code = z3_rdbpot(X, e)
    ax = z3.If(X < 0, -X, X)
    mag = z3.LShR(ax + z3.LShR(_c(1) << e, 1), e)
    want = z3.If(X < 0, -mag, mag)
    claim = z3.Implies(z3.ULE(e, 31), code == want)

    def confirm(asg):
        xv, ev = _signed(asg["x"]), asg["e"]
        got = rq.rdbpot(xv, ev)
        ax_ = abs(xv)
        mg = (ax_ + ((1 << ev) >> 1)) >> ev
        return {"x": xv, "e": ev, "rdbpot": got, "half_away": mg if xv >= 0 else -mg}, got != (mg if xv >= 0 else -mg)

    return prove(claim, {"x": x, "e": e}, 55, confirm)


# --------------------------------------------------------------------------- TFLite double vs single rounding
def _mult_vars(shift_lo: int, shift_hi: int):
    x, X = _s32("x")
    m, M = _s32("m")
    s, S = _s32("shift")
    dom = z3.And(M >= 0, S >= _c(shift_lo), S <= _c(shift_hi))
    return (x, X), (m, M), (s, S), dom


def _confirm_pair(fa, fb, relation):
    def confirm(asg):
        xv, mv, sv = _signed(asg["x"]), _signed(asg["m"]), _signed(asg["shift"])
        a, b = fa(xv, mv, sv), fb(xv, mv, sv)
        return ({"x": xv, "multiplier": mv, "shift": sv, fa.__name__: a, fb.__name__: b},
                not relation(a, b))

    return confirm


@theorem("requant.tflite_double_eq_single_left_shift",
         "for int32 x, multiplier M in [0, 2^31-1], shift in [0, 30] with x*2^shift in int32: TFLite double rounding "
         "RDBPOT(SRDHM(x*2^shift, M), 0) == single rounding (x*M + 2^(30-shift)) >> (31-shift) (right shift 0). "
         "Product abstracted: x*M is any 64-bit P with |P*2^shift| <= 2^62 (true of the real product on this "
         "domain), SRDHM's product is P*2^shift, and SRDHM's INT32_MIN^2 case cannot occur (M >= 0)",
         expect=PROVED, budget=120, tags=("requant", "tflite"))
def tflite_double_eq_single_left_shift() -> Outcome:
    p = z3.BitVec("P", W)
    s = z3.BitVec("shift", W)
    ab = p << s
    dom = z3.And(s >= 0, s <= 30, (ab >> s) == p, ab >= _c(-(1 << 62)), ab <= _c(1 << 62))
    nudge = z3.If(ab >= 0, _c(1 << 30), _c(1 - (1 << 30)))
    q = ab + nudge
    dbl = z3.If(q >= 0, z3.UDiv(q, _c(1 << 31)), -z3.UDiv(-q, _c(1 << 31)))
    total = _c(31) - s
    single = (p + (_c(1) << (total - 1))) >> total
    claim = z3.Implies(dom, dbl == single)
    return prove(claim, {"P": p, "shift": s}, 110, None)


@theorem("requant.tflite_double_single_within_one",
         "for int32 x, multiplier M in [0, 2^31-1], shift in [-31, 0]: |TFLite double rounding - single rounding| "
         "<= 1 (double rounding rounds twice, the second time half away from zero; single rounds once, half up)",
         expect=PROVED, budget=300, tags=("requant", "tflite"))
def tflite_double_single_within_one() -> Outcome:
    (x, X), (m, M), (s, S), dom = _mult_vars(-31, 0)
    d = z3_double(X, M, S) - _wrap32(z3_single_unwrapped(X, M, S))
    claim = z3.Implies(dom, z3.And(d >= _c(-1), d <= _c(1)))
    return prove(claim, {"x": x, "m": m, "shift": s}, 290,
                 _confirm_pair(rq.tflite_double_rounding, rq.tflite_single_rounding, lambda a, b: abs(a - b) <= 1))


@theorem("requant.tflite_double_ne_single_right_shift",
         "claim (false): for int32 x, M in [0, 2^31-1], shift in [-31, -1], TFLite double rounding == single "
         "rounding; expected counterexample: they differ by one LSB",
         expect=COUNTEREXAMPLE, budget=300, tags=("requant", "tflite"))
def tflite_double_ne_single_right_shift() -> Outcome:
    (x, X), (m, M), (s, S), dom = _mult_vars(-31, -1)
    claim = z3.Implies(dom, z3_double(X, M, S) == _wrap32(z3_single_unwrapped(X, M, S)))
    return prove(claim, {"x": x, "m": m, "shift": s}, 290,
                 _confirm_pair(rq.tflite_double_rounding, rq.tflite_single_rounding, lambda a, b: a == b))


@theorem("requant.tflite_left_shift_overflow",
         "claim (false): for int32 x, M in [2^30, 2^31-1] (QuantizeMultiplier's range), shift in [1, 30], with the "
         "exact single-rounding result in int32, TFLite double and single rounding differ by at most 1; expected "
         "counterexample: x*2^shift overflows int32 (wraps) in double rounding",
         expect=COUNTEREXAMPLE, budget=120, tags=("requant", "tflite"))
def tflite_left_shift_overflow() -> Outcome:
    (x, X), (m, M), (s, S), dom = _mult_vars(1, 30)
    su = z3_single_unwrapped(X, M, S)
    fits = z3.And(su >= _c(MIN32), su <= _c(MAX32), M >= _c(1 << 30))
    d = z3_double(X, M, S) - su
    claim = z3.Implies(z3.And(dom, fits), z3.And(d >= _c(-1), d <= _c(1)))
    return prove(claim, {"x": x, "m": m, "shift": s}, 110,
                 _confirm_pair(rq.tflite_double_rounding, rq.tflite_single_rounding, lambda a, b: abs(a - b) <= 1))


# --------------------------------------------------------------------------- CMSIS-NN single rounding
@theorem("requant.cmsis_single_eq_tflite_single",
         "for int32 x, M in [0, 2^31-1], shift in [-31, 30] with t = (x*M) >> (30-shift) in [INT32_MIN, "
         "INT32_MAX-1] (equivalently the rounded result in [-2^30, 2^30-1]): CMSIS-NN single rounding "
         "((int32)t + 1) >> 1 == TFLite single rounding (int32)((x*M + 2^(30-shift)) >> (31-shift)). "
         "Product abstracted: x*M is any 64-bit P with |P| <= 2^62 (true of every int32 x, M)",
         expect=PROVED, budget=120, tags=("requant", "cmsis"))
def cmsis_single_eq_tflite_single() -> Outcome:
    p = z3.BitVec("P", W)
    s = z3.BitVec("shift", W)
    t = p >> (_c(30) - s)
    dom = z3.And(s >= _c(-31), s <= _c(30), p >= _c(-(1 << 62)), p <= _c(1 << 62))
    valid = z3.And(t >= _c(MIN32), t <= _c(MAX32 - 1))
    cmsis = _wrap32(_wrap32(t) + 1) >> 1
    total = _c(31) - s
    single = _wrap32((p + (_c(1) << (total - 1))) >> total)
    claim = z3.Implies(z3.And(dom, valid), cmsis == single)
    return prove(claim, {"P": p, "shift": s}, 110, None)


@theorem("requant.cmsis_single_outside_domain",
         "claim (false): CMSIS-NN single rounding == TFLite single rounding for every int32 x, M in [0, 2^31-1], "
         "shift in [-31, 0] (no left shift) whose exact result fits int32; expected counterexample: the 32-bit "
         "truncation of (x*M) >> (30-shift) loses high bits when the result exceeds 2^30 in magnitude",
         expect=COUNTEREXAMPLE, budget=180, tags=("requant", "cmsis"))
def cmsis_single_outside_domain() -> Outcome:
    (x, X), (m, M), (s, S), dom = _mult_vars(-31, 0)
    su = z3_single_unwrapped(X, M, S)
    fits = z3.And(su >= _c(MIN32), su <= _c(MAX32))
    claim = z3.Implies(z3.And(dom, fits), z3_cmsis(X, M, S) == su)
    return prove(claim, {"x": x, "m": m, "shift": s}, 170,
                 _confirm_pair(rq.cmsis_single_rounding, rq.tflite_single_rounding, lambda a, b: a == b))


# --------------------------------------------------------------------------- HAWQ-V3 dyadic
@theorem("requant.dyadic_within_one_lsb",
         "for int32 acc and a real scale s = m * 2^e with m in [1/2, 1), e in [-31, 0] (s in [2^-32, 1)): with "
         "b = round_half_up(m * 2^31) in [2^30, 2^31] and c = 31 - e, both round_half_even(acc*b / 2^c) (hawq_sim) "
         "and floor(acc*b / 2^c) (hawq_deployed) are within 1 of round(acc*s) (any tie rule); proved over the "
         "reals with 2^e relaxed to any p in (0, 1]",
         expect=PROVED, budget=120, tags=("requant", "hawq"))
def dyadic_within_one_lsb() -> Outcome:
    acc = z3.Int("acc")
    b = z3.Int("b")
    qs, qd, r = z3.Ints("q_sim q_dep r")
    m, p = z3.Reals("m p")
    two31 = z3.RealVal(1 << 31)
    u = z3.ToReal(acc) * z3.ToReal(b) * p / two31
    v = z3.ToReal(acc) * m * p
    half = z3.RealVal("1/2")
    hyp = z3.And(acc >= MIN32, acc <= MAX32, m >= half, m < 1, p > 0, p <= 1,
                 z3.ToReal(b) <= m * two31 + half, m * two31 + half < z3.ToReal(b) + 1,
                 z3.ToReal(qs) - u <= half, u - z3.ToReal(qs) <= half,
                 z3.ToReal(qd) <= u, u < z3.ToReal(qd) + 1,
                 z3.ToReal(r) - v <= half, v - z3.ToReal(r) <= half)
    concl = z3.And(qs - r <= 1, r - qs <= 1, qd - r <= 1, r - qd <= 1)
    out = prove(z3.Implies(hyp, concl), {"acc": acc, "b": b, "m": m, "p": p, "q_sim": qs, "q_dep": qd, "r": r},
                110, lambda a: ({k: str(v) for k, v in a.items()}, None))
    if out.verdict == PROVED:
        out.detail = "nonlinear real arithmetic"
    elif out.verdict == COUNTEREXAMPLE:
        out.detail = "relaxed real model; not replayable as a dyadic scale"
    return out


@theorem("requant.dyadic_no_int64_overflow",
         "for int32 acc and b in [0, 2^31]: the HAWQ-V3 product acc*b neither overflows nor underflows int64 "
         "(|acc*b| <= 2^62)",
         expect=PROVED, budget=60, tags=("requant", "hawq"))
def dyadic_no_int64_overflow() -> Outcome:
    acc, A = _s32("acc")
    b = z3.BitVec("b", 64)
    claim = z3.Implies(z3.ULE(b, 1 << 31),
                       z3.And(z3.BVMulNoOverflow(A, b, True), z3.BVMulNoUnderflow(A, b)))

    def confirm(asg):
        av, bv = _signed(asg["acc"]), asg["b"]
        prod = av * bv
        return {"acc": av, "b": bv, "product": prod}, not (rq.INT64_MIN <= prod <= rq.INT64_MAX)

    return prove(claim, {"acc": acc, "b": b}, 55, confirm)
