"""Error analysis of the I-ViT integer operators (shift-exp, Shiftmax, ShiftGELU, I-LayerNorm square root).

Errors are computed from the exact integer outputs (:mod:`refarith.exact.ivit` via the bit-identical numpy
kernels) against mpmath references at 80-bit precision; the reported figures are binary64 roundings of those
differences, so the reference error (< 2^-70 relative) is far below every figure reported.  Domains:

* shift-exp: every x in [-2^15, 0] (all int16 inputs after the max subtraction), scales 2^-3, 0.05, 2^-7, 0.003;
  output value = e / (-x0 * 2^n) (the scale at which e at x = 0 means 1).  Absolute error vs exp(s*x), and
  relative error on the part of the domain where s*x >= -4.
* Shiftmax: seeded random int8 rows (seed 7; lengths 8, 64, 197; 256 rows each, 32 in quick mode) at the same
  scales; output * 2^-7 vs the softmax of s*x.
* ShiftGELU: every int8 x, each in the row [x, 0] (so the row maximum is max(x, 0)); output * s * 2^-7 vs
  GELU(s*x) = s*x * Phi(s*x).
* Newton square root: every v in [2^12, 2^20); |newton(v) - sqrt(v)|.
quick=True subsamples every 16th point of the exhaustive domains and uses fewer rows (stated in the row).
"""

from __future__ import annotations

import mpmath
import numpy as np

from refarith.exact import ivit as ex
from refarith.fast import ivit as fa

PAPER = "Li & Gu, I-ViT, ICCV 2023 (PyTorch model and TVM kernels)"
SCALES = ("0.125", "0.05", "0.0078125", "0.003")
_CTX = mpmath.MPContext()
_CTX.prec = 80


def _row(operator, variant, domain, metric, errs, note="") -> dict:
    errs = np.asarray(errs, dtype=np.float64)
    return {"operator": operator, "variant": variant, "domain": domain, "metric": metric,
            "max_err": float(errs.max()), "mean_err": float(errs.mean()), "reference": "mpmath (80-bit)",
            "note": (note + "; " if note else "") + PAPER}


def _exp_rows(quick: bool) -> list[dict]:
    out = []
    step = 16 if quick else 1
    xs = np.arange(-(1 << 15), 1, step, dtype=np.int64)
    for variant in ex.VARIANTS:
        n = ex.SOFTMAX_N[variant]
        for scale in SCALES:
            s = ex.parse_scale(scale)
            x0 = ex.x0_int(scale, variant)
            e = fa.shift_exp_array(xs, scale, variant, n)
            unit = _CTX.mpf(-x0 * 2**n)
            ref = [_CTX.exp(_CTX.mpf(s.numerator) / s.denominator * int(x)) for x in xs]
            abs_err = [float(abs(_CTX.mpf(int(v)) / unit - r)) for v, r in zip(e, ref)]
            rel = [a / float(r) for a, r, x in zip(abs_err, ref, xs) if float(s) * int(x) >= -4]
            dom = f"x in [-2^15, 0]{' step 16' if quick else ''}, s={scale}, n={n}, x0={x0}"
            out.append(_row("shift_exp", variant, dom, "abs error vs exp(s*x)", abs_err))
            out.append(_row("shift_exp", variant, dom + ", s*x >= -4", "rel error vs exp(s*x)", rel))
    return out


def _softmax_rows(quick: bool) -> list[dict]:
    out = []
    rng = np.random.default_rng(7)
    count = 32 if quick else 256
    for variant in ex.VARIANTS:
        for scale in SCALES:
            s = ex.parse_scale(scale)
            errs = []
            for length in (8, 64, 197):
                X = rng.integers(-128, 128, size=(count, length))
                Y = fa.shiftmax(X, scale, variant)
                for xrow, yrow in zip(X, Y):
                    ex_ = [_CTX.exp(_CTX.mpf(s.numerator) / s.denominator * int(v)) for v in xrow]
                    tot = _CTX.fsum(ex_)
                    errs.extend(float(abs(_CTX.mpf(int(y)) / 128 - t / tot)) for y, t in zip(yrow, ex_))
            out.append(_row("shiftmax", variant, f"random int8 rows (seed 7, lengths 8/64/197, {count} each), "
                            f"s={scale}", "abs error of output*2^-7 vs softmax(s*x)", errs))
    return out


def _gelu_rows(quick: bool) -> list[dict]:
    out = []
    xs = list(range(-128, 128, 16 if quick else 1))
    for variant in ex.VARIANTS:
        for scale in SCALES:
            s = ex.parse_scale(scale)
            sm = _CTX.mpf(s.numerator) / s.denominator
            errs = []
            for x in xs:
                y = ex.shiftgelu([x, 0], scale, variant)[0]
                t = sm * x
                ref = t * _CTX.ncdf(t)
                errs.append(float(abs(_CTX.mpf(y) * sm / 128 - ref)))
            note = ("int32 sigmoid denominator wraps when -x0 >= 128 (theorem ivit.shiftgelu_denominator_int32_tvm)"
                    if variant == "ivit_tvm" else "sigmoid denominator clamped to 2^31 - 1 when -x0 >= 128")
            out.append(_row("shiftgelu", variant, f"x in int8{' step 16' if quick else ''} in row [x, 0], s={scale}",
                            "abs error of output*s*2^-7 vs GELU(s*x)", errs, note))
    return out


def _sqrt_rows(quick: bool) -> list[dict]:
    out = []
    v = np.arange(1 << 12, 1 << 20, 16 if quick else 1, dtype=np.int64)
    for variant in ex.VARIANTS:
        k = fa.newton_sqrt(v, variant).astype(np.float64)
        err = np.abs(k - np.sqrt(v.astype(np.float64)))  # binary64 sqrt: error < 2^-42 here
        out.append(_row("ivit_sqrt", variant, f"v in [2^12, 2^20){' step 16' if quick else ''}",
                        "abs error vs sqrt(v)", err, "10 Newton steps from 2^16; isqrt itself has error < 1"))
    return out


def rows(quick: bool = False) -> list[dict]:
    """Error rows of every I-ViT approximation (see the module docstring for domains and references)."""
    return _exp_rows(quick) + _softmax_rows(quick) + _gelu_rows(quick) + _sqrt_rows(quick)
