"""L-Mul theorems (Luo & Sun, arXiv:2410.00907): the bitwise kernel is an offset Mitchell
antilogarithm, and where the printed formula and the kernel differ.

The kernel is encoded on Z3 bit-vectors from the paper's description (sign-less patterns added as
integers, (bias << m) - 2^(m - l(m)) subtracted); the Mitchell form is an independent formulation
from the fields.  Counterexamples are replayed through :mod:`refarith.exact.lmul`.  Claims over
mantissa pairs of small formats are checked by exhaustive enumeration, as each statement says.
"""

from __future__ import annotations

from fractions import Fraction

import z3

from refarith.exact.lmul import exact_value, l_of_m, lmul, offset_units
from refarith.formats import get_format
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, prove, satisfiable, theorem

MITCHELL_FORMATS = ("ocp_e4m3", "ocp_e5m2", "binary16", "bfloat16", "binary32")


def _kernel_vs_mitchell(name: str) -> Outcome:
    fmt = get_format(name)
    m, eb, bias = fmt.mbits, fmt.ebits, fmt.bias
    w = eb + m + 4
    ex, ey = z3.BitVec("ex", w), z3.BitVec("ey", w)
    mx, my = z3.BitVec("mx", w), z3.BitVec("my", w)
    c = lambda v: z3.BitVecVal(v, w)  # noqa: E731
    fields_ok = z3.And(z3.ULE(c(1), ex), z3.ULE(ex, c(fmt.emask)), z3.ULE(c(1), ey), z3.ULE(ey, c(fmt.emask)),
                       z3.ULT(mx, c(1 << m)), z3.ULT(my, c(1 << m)))
    kernel = ((ex << m) | mx) + ((ey << m) | my) - c((bias << m) - offset_units(m))
    s = mx + my + c(offset_units(m))
    carry = z3.LShR(s, m)  # floor(t) with t = x_m + y_m + 2^-l(m)
    e_res = ex + ey - c(bias) + carry  # exponent field of 2^(x_e + y_e + floor t)
    in_range = z3.And(z3.ULE(c(1), e_res), z3.ULE(e_res, c(fmt.emask)), z3.ULE(ex + ey + carry, c(bias + fmt.emask)),
                      z3.UGE(ex + ey + carry, c(bias + 1)))
    claim = z3.Implies(z3.And(fields_ok, in_range),
                       z3.And(z3.LShR(kernel, m) == e_res, kernel & c((1 << m) - 1) == s - (carry << m)))
    for k in (0, 1, 2):  # not vacuous: every carry value the statement names occurs under the hypotheses
        if k == 2 and offset_units(m) == 1:
            continue  # m <= 3: s <= 2^(m+1) - 1, a double carry is impossible
        if not satisfiable(fields_ok, in_range, carry == c(k), timeout_s=20):
            return Outcome("error", detail=f"hypotheses admit no case with carry {k}")

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        x, y = (a["ex"] << m) | a["mx"], (a["ey"] << m) | a["my"]
        v = exact_value(x, y, fmt, "bitwise")
        t = Fraction(a["mx"] + a["my"] + offset_units(m), 1 << m)
        cc = int(t)
        want = (1 + t - cc) * Fraction(2) ** (a["ex"] + a["ey"] - 2 * bias + cc)
        return {"x": hex(x), "y": hex(y), "exact_model": str(v), "mitchell": str(want)}, v.mag != want

    return prove(claim, {"ex": ex, "ey": ey, "mx": mx, "my": my}, timeout_s=60, confirm=confirm)


for _name in MITCHELL_FORMATS:
    _f = get_format(_name)
    theorem(
        f"lmul.bitwise_is_offset_mitchell.{_name}",
        f"for all {_name} exponent fields ex, ey in [1, {_f.emask}] and mantissa fields mx, my (m={_f.mbits}, "
        f"l(m)={l_of_m(_f.mbits)}) whose result exponent field stays in [1, {_f.emask}]: the paper's kernel "
        f"K = (ex*2^m + mx) + (ey*2^m + my) - (bias*2^m - 2^(m-l(m))) has exponent field ex + ey - bias + c and "
        f"mantissa field s - c*2^m, s = mx + my + 2^(m-l(m)), c = floor(s/2^m) in {{0, 1, 2}}; i.e. its value is "
        f"Mitchell's antilog 2^(x_e + y_e + c) * (1 + t - c) of the offset log sum t = x_m + y_m + 2^-l(m) "
        f"(Z3 bit-vectors, addition only)",
        expect=PROVED, budget=60, tags=("lmul",),
    )(lambda _n=_name: _kernel_vs_mitchell(_n))


def _z3_formula_code(ex, ey, mx, my, fmt, w):
    """Code (no sign) of the printed formula rounded RNE into fmt, for in-range normal results."""
    m = fmt.mbits
    c = lambda v: z3.BitVecVal(v, w)  # noqa: E731
    big = c(1 << m) + mx + my + c(offset_units(m))  # (1 + t) * 2^m
    two = z3.UGE(big, c(1 << (m + 1)))
    q = z3.LShR(big, 1)
    up = z3.And((big & c(1)) == c(1), (q & c(1)) == c(1))
    sig = z3.If(two, q + z3.If(up, c(1), c(0)), big)  # may reach 2^(m+1): carries into the exponent below
    e = ex + ey - c(fmt.bias) + z3.If(two, c(1), c(0))
    return (e << m) + sig - c(1 << m), e


@theorem("lmul.formula_equals_bitwise.ocp_e4m3",
         "for all ocp_e4m3 normal operands with in-range results, L-Mul 'formula' (printed formula, rounded "
         "to nearest even) equals L-Mul 'bitwise' (the paper's kernel) -- expected FALSE: they differ whenever "
         "x_M + y_M + 2^(m-l(m)) > 2^m (a mantissa carry); Z3 bit-vectors, the counterexample replayed through the "
         "exact model",
         expect=COUNTEREXAMPLE, budget=60, tags=("lmul",))
def formula_equals_bitwise_e4m3() -> Outcome:
    fmt = get_format("ocp_e4m3")
    m, w = fmt.mbits, 16
    ex, ey, mx, my = (z3.BitVec(n, w) for n in ("ex", "ey", "mx", "my"))
    c = lambda v: z3.BitVecVal(v, w)  # noqa: E731
    dom = z3.And(z3.ULE(c(1), ex), z3.ULE(ex, c(14)), z3.ULE(c(1), ey), z3.ULE(ey, c(14)),
                 z3.ULT(mx, c(1 << m)), z3.ULT(my, c(1 << m)), z3.ULE(ex + ey, c(fmt.bias + 12)),
                 z3.UGE(ex + ey, c(fmt.bias + 1)))
    fcode, _ = _z3_formula_code(ex, ey, mx, my, fmt, w)
    kernel = ((ex << m) | mx) + ((ey << m) | my) - c((fmt.bias << m) - offset_units(m))
    claim = z3.Implies(dom, fcode == kernel)

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        x, y = (a["ex"] << m) | a["mx"], (a["ey"] << m) | a["my"]
        f = lmul(x, y, fmt, "formula").code
        b = lmul(x, y, fmt, "bitwise").code
        return {"x": hex(x), "y": hex(y), "formula": hex(f), "bitwise": hex(b),
                "carry": a["mx"] + a["my"] + offset_units(m) > (1 << m)}, f != b

    return prove(claim, {"ex": ex, "ey": ey, "mx": mx, "my": my}, timeout_s=60, confirm=confirm)


def _differ_iff_carry(m: int) -> Outcome:
    fmt = get_format(f"e5m{m}")
    one = fmt.bias << m
    count = 0
    for mx in range(1 << m):
        for my in range(1 << m):
            f = lmul(one | mx, one | my, fmt, "formula").code
            b = lmul(one | mx, one | my, fmt, "bitwise").code
            carry = mx + my + offset_units(m) > (1 << m)
            if (f != b) != carry:
                return Outcome(COUNTEREXAMPLE, {"m": m, "x": hex(one | mx), "y": hex(one | my), "formula": hex(f),
                                                "bitwise": hex(b), "carry": carry}, True, method="enumeration")
            count += f != b
    total = 1 << (2 * m)
    return Outcome(PROVED, detail=f"m={m}: formula != bitwise on {count} of {total} mantissa pairs "
                                  f"({100 * count / total:.1f}%)", method="enumeration")


for _m in range(1, 8):
    theorem(
        f"lmul.formula_bitwise_differ_iff_carry.m{_m}",
        f"for m={_m} and every one of the {4 ** _m} mantissa pairs (operands in [1, 2), format e5m{_m}): "
        f"L-Mul formula (rne) != bitwise iff x_M + y_M + 2^(m-l(m)) > 2^m, i.e. exactly on the pairs with a "
        f"mantissa carry (exhaustive enumeration of the exact model; the count is in the detail)",
        expect=PROVED, budget=60, tags=("lmul",),
    )(lambda _mm=_m: _differ_iff_carry(_mm))
