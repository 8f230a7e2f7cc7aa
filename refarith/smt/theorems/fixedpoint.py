"""Theorems about TFLite's reference int8 softmax (gemmlowp fixed point): row-sum width, output shift, range.

The reference sums RoundingDivideByPOT(exp_i, 12) (each exp a Q0.31 raw, the sum a Q12.19 raw) in wrapping
int32, then divides by 2^(num_bits_over_unit + 23) with num_bits_over_unit = 12 - clz(sum), and clamps
RDBPOT(...) - 128 to [-128, 127].  gemmlowp asserts RoundingDivideByPOT's exponent <= 31.  Each counterexample
is re-run through :mod:`refarith.exact.fixedpoint`, which rejects a wrapped sum or an exponent above 31.
"""

from __future__ import annotations

from fractions import Fraction

import z3

from refarith.errors import BadValueError
from refarith.exact import fixedpoint as ex
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, prove, theorem
from refarith.smt.theorems.requant import z3_rdbpot

ACC = ex.ACCUMULATION_INTEGER_BITS  # 12
TERM_MAX = 1 << (31 - ACC)  # 2^19: RDBPOT(2^31 - 1, 12), the term of exp(0) = 1
PARAMS = ex.softmax_params(1, Fraction(1, 16))  # beta = 1, input scale 1/16: (2^30, 23, -248)


def _term_bound() -> Outcome:
    """Z3: |RoundingDivideByPOT(e, 12)| <= 2^19 for every int32 e."""
    e = z3.BitVec("e", 32)
    r = z3_rdbpot(z3.SignExt(32, e), z3.BitVecVal(ACC, 64))
    claim = z3.And(r <= z3.BitVecVal(TERM_MAX, 64), r >= z3.BitVecVal(-TERM_MAX, 64))

    def confirm(asg):
        v = asg["e"] - (1 << 32) if asg["e"] >> 31 else asg["e"]
        t = ex.rdbpot(v, ACC)
        return {"e": v, "term": t}, abs(t) > TERM_MAX

    return prove(claim, {"e": e}, 30, confirm)


def _output_exponent(total: int) -> int:
    """RoundingDivideByPOT exponent of the final division for a Q12.19 sum: num_bits_over_unit + 31 - 8."""
    return ACC - ex.count_leading_zeros_u32(total) + 31 - 8


def _equal_row(n: int) -> tuple[list[int], str | list[int]]:
    row = [0] * n
    try:
        return row, ex.softmax_int8(row, *PARAMS)
    except BadValueError as err:
        return row, str(err)


@theorem(
    "fixedpoint.softmax_sum_no_wrap_below_4096",
    "TFLite int8 softmax: for rows of at most 4095 entries the wrapping int32 sum of exponentials (Q12.19) never "
    "wraps.  Z3 proves |RoundingDivideByPOT(e, 12)| <= 2^19 for every int32 e; then |sum| <= 4095 * 2^19 < 2^31.",
    expect=PROVED, budget=60, tags=("fixedpoint", "softmax", "overflow", "z3"))
def softmax_sum_no_wrap_below_4096() -> Outcome:
    out = _term_bound()
    if out.verdict == PROVED and not 4095 * TERM_MAX <= ex.INT32_MAX:
        return Outcome(COUNTEREXAMPLE, {"n": 4095, "bound": 4095 * TERM_MAX}, confirmed=True)
    return out


@theorem(
    "fixedpoint.softmax_sum_wraps_at_4096",
    "TFLite int8 softmax: the int32 sum of exponentials never wraps.  False: 4096 equal entries each contribute "
    "RDBPOT(2^31 - 1, 12) = 2^19, and the sum 2^31 wraps to -2^31 (the exact model rejects the row).",
    expect=COUNTEREXAMPLE, budget=30, tags=("fixedpoint", "softmax", "overflow"))
def softmax_sum_wraps_at_4096() -> Outcome:
    term = ex.rdbpot(ex.exp_on_negative_values(0, ex.SCALED_DIFF_INTEGER_BITS), ACC)
    total = (4096 * term + (1 << 31)) % (1 << 32) - (1 << 31)
    _, res = _equal_row(4096)
    return Outcome(COUNTEREXAMPLE, {"row": "4096 x [0]", "params": PARAMS, "term": term, "int32_sum": total,
                                    "exact_model": res},
                   confirmed=term == TERM_MAX and total < 0 and isinstance(res, str), method="enumeration")


@theorem(
    "fixedpoint.softmax_output_shift_le_31_below_512",
    "TFLite int8 softmax: for rows of at most 511 entries the output exponent num_bits_over_unit + 23 is at most "
    "31 (gemmlowp's RoundingDivideByPOT assertion holds).  From the Z3 term bound: sum <= 511 * 2^19 < 2^28, so "
    "clz(sum) >= 4 and num_bits_over_unit = 12 - clz(sum) <= 8.",
    expect=PROVED, budget=60, tags=("fixedpoint", "softmax", "overflow", "z3"))
def softmax_output_shift_le_31_below_512() -> Outcome:
    out = _term_bound()
    top = 511 * TERM_MAX
    exponent = _output_exponent(top)
    if out.verdict == PROVED and exponent > 31:
        return Outcome(COUNTEREXAMPLE, {"n": 511, "sum": top, "exponent": exponent}, confirmed=True)
    return out


@theorem(
    "fixedpoint.softmax_output_shift_le_31",
    "TFLite int8 softmax: the output exponent num_bits_over_unit + 23 is at most 31 for every row.  False: 512 "
    "equal entries give the sum 512 * 2^19 = 2^28, clz = 3, exponent 32 (gemmlowp asserts exponent <= 31; the "
    "exact model rejects the row).  511 equal entries give 256/511 rounded, i.e. -127.",
    expect=COUNTEREXAMPLE, budget=30, tags=("fixedpoint", "softmax", "overflow"))
def softmax_output_shift_le_31() -> Outcome:
    total = 512 * TERM_MAX
    exponent = _output_exponent(total)
    _, res = _equal_row(512)
    _, ok = _equal_row(511)
    return Outcome(COUNTEREXAMPLE, {"row": "512 x [0]", "params": PARAMS, "sum": total, "exponent": exponent,
                                    "exact_model": res, "511_equal_entries": sorted(set(ok))},
                   confirmed=exponent == 32 and isinstance(res, str) and ok == [-127] * 511, method="enumeration")


@theorem(
    "fixedpoint.softmax_unclamped_output_fits_int8",
    "TFLite int8 softmax: RDBPOT(SRDHM(reciprocal, exp), exponent) - 128 lies in [-128, 127] before the final "
    "clamp.  False: a one-element row (probability 1) gives 128; the clamp returns 127, i.e. 255/256.",
    expect=COUNTEREXAMPLE, budget=30, tags=("fixedpoint", "softmax", "range"))
def softmax_unclamped_output_fits_int8() -> Outcome:
    e = ex.exp_on_negative_values(0, ex.SCALED_DIFF_INTEGER_BITS)
    total = ex.rdbpot(e, ACC)
    recip, nbou = ex.get_reciprocal(total, ACC)
    unclamped = ex.rdbpot(ex.srdhm(recip, e), nbou + 31 - 8) - 128
    out = ex.softmax_int8([5], *PARAMS)
    return Outcome(COUNTEREXAMPLE, {"row": [5], "params": PARAMS, "exp": e, "sum": total, "reciprocal": recip,
                                    "num_bits_over_unit": nbou, "unclamped": unclamped, "output": out},
                   confirmed=unclamped == 128 and out == [127], method="enumeration")
