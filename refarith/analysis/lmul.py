"""Error analysis of L-Mul (Luo & Sun, arXiv:2410.00907) next to round-to-nearest-even multiplication.

Two metrics, both relative errors |approx - exact| / exact of one multiplication:

* ``operator`` (exact enumeration, Fractions): operands are the normal values 1 + M/2^m of an
  m-bit format, every one of the 4^m mantissa pairs once, exponent 0.  For normal operands and an
  in-range result the relative error does not depend on the exponents (every variant scales by
  2^(x_e + y_e)), so this is the error over all normal operand pairs.  L-Mul results come from
  :func:`refarith.exact.lmul.lmul` on the format e5m<m> (bias 15, so [1, 4) is in range); RNE
  products from :func:`refarith.exact.ops.mul` in ocp_e4m3 / ocp_e5m2.
* ``end_to_end`` (exact integers, one binary64 division per pair): operands 1 + i/2^g, every pair
  of i in [0, 2^g) (g = 10, quick: 7), are first rounded (RNE) to the operator's m-bit operand
  format, then multiplied by the operator; the reference is the exact product of the unrounded
  operands.  This is the setting of the paper's claims (a low-precision multiplier replacing an
  exact one).
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import numpy as np

from refarith.exact.lmul import l_of_m, lmul, offset_units
from refarith.exact.ops import decode, mul
from refarith.formats import get_format

PAPER = "Luo & Sun 2024, arXiv:2410.00907"


def _lmul_fmt(m: int):
    return get_format(f"e5m{m}")


@cache
def operator_errors(m: int, variant: str | None) -> tuple[Fraction, Fraction]:
    """(max, mean) relative error over all 4^m mantissa pairs: L-Mul ``variant``, or RNE product (variant None)."""
    fmt = _lmul_fmt(m) if variant else get_format({3: "ocp_e4m3", 2: "ocp_e5m2"}[m])
    one = fmt.bias << m
    worst, total = Fraction(0), Fraction(0)
    for mx in range(1 << m):
        for my in range(1 << m):
            x, y = one | mx, one | my
            exact = Fraction((1 << m) + mx, 1 << m) * Fraction((1 << m) + my, 1 << m)
            code = lmul(x, y, fmt, variant).code if variant else mul(x, y, fmt).code
            err = abs(decode(code, fmt).fraction - exact) / exact
            worst = max(worst, err)
            total += err
    return worst, total / (1 << (2 * m))


def _rne_shift(n: np.ndarray, sh: int) -> np.ndarray:
    if sh <= 0:
        return n << -sh
    q = n >> sh
    rem = n - (q << sh)
    half = 1 << (sh - 1)
    return q + ((rem > half) | ((rem == half) & ((q & 1) == 1)))


def _quantize(n: np.ndarray, g: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """RNE of n / 2^g (n in [2^g, 2^(g+1))) to m mantissa bits: (significand Q in [2^m, 2^(m+1)), exponent e)."""
    q = _rne_shift(n, g - m)
    carry = q >> (m + 1)
    return np.where(carry == 1, 1 << m, q), carry


@cache
def end_to_end_errors(op: str, m: int, g: int) -> tuple[float, float]:
    """(max, mean) relative error of ``op`` with m-bit operands: 'rne' (product rounded to m bits),
    'exact_product' (product of the rounded operands kept exact, as in a wide accumulator), 'lmul_formula',
    'lmul_bitwise'."""
    i = np.arange(1 << g, dtype=np.int64)
    xs = (1 << g) + i
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    qx, ex = _quantize(X.ravel(), g, m)
    qy, ey = _quantize(Y.ravel(), g, m)
    e = ex + ey
    if op == "exact_product":
        val = (qx * qy).astype(np.float64) * np.exp2((e - 2 * m).astype(np.float64))
    elif op == "rne":
        prod = qx * qy  # value prod * 2^(e - 2m), prod in [2^(2m), 2^(2m+2))
        top = np.where(prod >= (1 << (2 * m + 1)), 2 * m + 1, 2 * m)
        sig = np.where(top == 2 * m + 1, _rne_shift(prod, m + 1), _rne_shift(prod, m))
        val = sig.astype(np.float64) * np.exp2((e + top - 2 * m - m).astype(np.float64))
    else:
        s = (qx - (1 << m)) + (qy - (1 << m)) + offset_units(m)
        if op == "lmul_bitwise":
            val = ((1 << m) + (s & ((1 << m) - 1))).astype(np.float64) * np.exp2((e + (s >> m) - m).astype(np.float64))
        else:
            n = (1 << m) + s
            big = n >= (1 << (m + 1))
            sig = np.where(big, _rne_shift(n, 1), n)
            val = sig.astype(np.float64) * np.exp2((e + big - m).astype(np.float64))
    ref = (X.ravel() * Y.ravel()).astype(np.float64) * 2.0 ** (-2 * g)
    err = np.abs(val - ref) / ref
    return float(err.max()), float(err.mean())


def _row(operator: str, variant: str, domain: str, metric: str, mx, mean, note: str) -> dict:
    return {"operator": operator, "variant": variant, "domain": domain, "metric": metric,
            "max_err": float(mx), "mean_err": float(mean), "reference": PAPER if operator == "lmul" else
            "IEEE 754 / OCP OFP8 round-to-nearest-even", "note": note}


def rows(quick: bool = False) -> list[dict]:
    """L-Mul (both variants, m = 1..7) and RNE multiplication (ocp_e4m3, ocp_e5m2) relative errors."""
    out = []
    for m in range(1, 8):
        for variant in ("formula", "bitwise"):
            mx, mean = operator_errors(m, variant)
            out.append(_row("lmul", variant, f"m={m} (l={l_of_m(m)}), all {4 ** m} mantissa pairs",
                            "relative error, operator", mx, mean, "exact enumeration"))
    for name, m in (("ocp_e4m3", 3), ("ocp_e5m2", 2)):
        mx, mean = operator_errors(m, None)
        out.append(_row("mul_rne", name, f"m={m}, all {4 ** m} mantissa pairs", "relative error, operator",
                        mx, mean, "exact product rounded by the exact model"))
    g = 7 if quick else 10
    for op, m, label in (("lmul_bitwise", 4, "bitwise"), ("lmul_formula", 4, "formula"),
                         ("lmul_bitwise", 3, "bitwise"), ("lmul_formula", 3, "formula"),
                         ("rne", 3, "ocp_e4m3"), ("rne", 2, "ocp_e5m2"),
                         ("exact_product", 3, "ocp_e4m3 operands"), ("exact_product", 2, "ocp_e5m2 operands")):
        mx, mean = end_to_end_errors(op, m, g)
        operator = {"rne": "mul_rne", "exact_product": "mul_exact"}.get(op, "lmul")
        out.append(_row(operator, label,
                        f"m={m}, operands 1+i/2^{g} rounded to m bits, all {4 ** g} pairs",
                        "relative error, end to end", mx, mean, "vs exact product of unrounded operands"))
    return out


def claims(quick: bool = False) -> list[dict]:
    """Each L-Mul paper claim, the metric it was checked under, and whether it reproduces."""
    g = 7 if quick else 10
    op_l4 = operator_errors(4, "bitwise")[1]
    op_l4f = operator_errors(4, "formula")[1]
    op_e4 = operator_errors(3, None)[1]
    op_l3 = operator_errors(3, "bitwise")[1]
    op_l3f = operator_errors(3, "formula")[1]
    op_e5 = operator_errors(2, None)[1]
    ee = {k: end_to_end_errors(*k, g)[1] for k in (("lmul_bitwise", 4), ("lmul_formula", 4), ("rne", 3),
                                                   ("lmul_bitwise", 3), ("lmul_formula", 3), ("rne", 2),
                                                   ("exact_product", 3), ("exact_product", 2))}
    out = []

    def comparable(a: float, b: float) -> bool:
        return 0.8 <= a / b <= 1.25

    c1 = (f"operator: bitwise {float(op_l4):.4g}, formula {float(op_l4f):.4g} vs e4m3 {float(op_e4):.4g}; "
          f"end to end: bitwise {ee[('lmul_bitwise', 4)]:.4g}, formula {ee[('lmul_formula', 4)]:.4g} vs e4m3 "
          f"{ee[('rne', 3)]:.4g} (e4m3 operands, exact product: {ee[('exact_product', 3)]:.4g})")
    ok1 = [comparable(float(op_l4), float(op_e4)), comparable(ee[("lmul_bitwise", 4)], ee[("rne", 3)]),
           comparable(ee[("lmul_bitwise", 4)], ee[("exact_product", 3)])]
    out.append({"claim": "L-Mul with a 4-bit mantissa has precision comparable to float8_e4m3 multiplication",
                "metric": "mean relative error of L-Mul bitwise vs the fp8 pipeline; 'comparable' taken as a ratio "
                          "within [0.8, 1.25]",
                "measured": c1, "reproduces": _verdict(ok1), "reference": PAPER})
    c2 = (f"operator: bitwise {float(op_l3):.4g}, formula {float(op_l3f):.4g} vs e5m2 {float(op_e5):.4g}; "
          f"end to end: bitwise {ee[('lmul_bitwise', 3)]:.4g}, formula {ee[('lmul_formula', 3)]:.4g} vs e5m2 "
          f"{ee[('rne', 2)]:.4g} (e5m2 operands, exact product: {ee[('exact_product', 2)]:.4g})")
    ok2 = [op_l3 < op_e5, ee[("lmul_bitwise", 3)] < ee[("rne", 2)], ee[("lmul_bitwise", 3)] < ee[("exact_product", 2)]]
    out.append({"claim": "L-Mul with a 3-bit mantissa outperforms float8_e5m2 multiplication",
                "metric": "mean relative error, L-Mul (bitwise) strictly lower",
                "measured": c2, "reproduces": _verdict(ok2), "reference": PAPER})
    parts = []
    for m in range(1, 8):
        mean_xy = Fraction((1 << m) - 1, 1 << (m + 1)) ** 2
        parts.append(f"m={m}: {float(mean_xy - Fraction(1, 1 << l_of_m(m))):+.4g}")
    out.append({"claim": "expected error of L-Mul: E[x_m*y_m] - 2^-l(m) in units of 2^(x_e+y_e) (the x_m*y_m term "
                         "dropped, the offset added; 1/4 - 2^-l(m) for continuous uniform mantissas)",
                "metric": "mean signed error of the unrounded formula over all m-bit mantissa pairs "
                          "(exact: ((2^m-1)/2^(m+1))^2 - 2^-l(m))",
                "measured": "; ".join(parts),
                "reproduces": "not checked: the paper's printed figure was not available to compare; "
                              "values derived from the printed definition",
                "reference": PAPER})
    return out


def _verdict(oks: list[bool]) -> str:
    names = ("operator", "end to end, product rounded to the fp8 format", "end to end, fp8 operands, exact product")
    yes = [n for n, ok in zip(names, oks) if ok]
    no = [n for n, ok in zip(names, oks) if not ok]
    if not no:
        return "yes, under every metric"
    if not yes:
        return "no, under every metric (" + "; ".join(no) + ")"
    return "only under: " + "; ".join(yes) + " -- not under: " + "; ".join(no)


__all__ = ["claims", "end_to_end_errors", "operator_errors", "rows"]
