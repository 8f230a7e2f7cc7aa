"""Error of the gemmlowp/TFLite fixed-point nonlinearities against mpmath, over whole integer input domains.

Inputs are the int16 raws of each template's TFLite configuration placed in the high half of the int32 raw
(raw = v * 2^16, the exact int16 -> int32 widening of a FixedPoint value): exp on [-32768, 0] with 5 integer bits
(the softmax configuration), logistic and tanh on all 65536 values with 3 integer bits (the LSTM gate
configuration), 1/(1+x) and (1-x)/(1+x) on x in [0, 1) (raw v * 2^16, v in [0, 32767]); int8 softmax on all
65536 rows of two int8 values with beta = 1 and input scale 1/16.  Results are computed by the numpy kernels
(bit-identical to the exact model by exhaustive test) and compared with mpmath at 40 significant digits, far
beyond the 2^-31 output resolution, so the reported errors are exact to the printed digits.  These are the
int32 templates (FixedPoint<int32, IB>); the int16 instantiations (16-bit SRDHM) are not modelled.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np

from refarith.exact import fixedpoint as ex
from refarith.fast import fixedpoint as fx

LSB = mpmath.mpf(2) ** -31
_REF = "gemmlowp fixedpoint.h / TFLite reference softmax vs mpmath (40 digits)"


def _stats(got_raw: np.ndarray, xs: list, f, out_scale=LSB, unit=LSB) -> tuple[float, float]:
    """max and mean of |got*out_scale - f(x)| / unit."""
    mx = mpmath.mpf(0)
    tot = mpmath.mpf(0)
    for g, x in zip(got_raw.tolist(), xs):
        e = abs(mpmath.mpf(g) * out_scale - f(x)) / unit
        tot += e
        if e > mx:
            mx = e
    return float(mx), float(tot / len(xs))


def _row(op, variant, domain, metric, mx, mean, note) -> dict:
    return {"operator": op, "variant": variant, "domain": domain, "metric": metric, "max_err": mx,
            "mean_err": mean, "reference": _REF, "note": note}


def rows(quick: bool = False) -> list[dict]:
    """One row per nonlinearity: exact max/mean error in output LSBs; quick=True takes every 64th input."""
    step = 64 if quick else 1
    sub = f"every {step}th of " if quick else "all "
    metric = "|fixed - exact| in output LSBs (2^-31)"
    out = []
    with mpmath.workdps(40):
        ib = ex.SCALED_DIFF_INTEGER_BITS
        v = np.arange(-32768, 1, step, dtype=np.int64)
        raws = v << 16
        xs = [mpmath.mpf(int(r)) / mpmath.mpf(2) ** (31 - ib) for r in raws.tolist()]
        mx, mean = _stats(fx.exp_on_negative_values(raws, ib), xs, mpmath.exp)
        out.append(_row("exp_on_negative_values", f"gemmlowp,integer_bits={ib}",
                        f"{sub}int16 raws v*2^16, v in [-32768, 0] (x in [-32, 0])", metric, mx, mean,
                        "x < -32 would clamp to 0 (integer_bits > 5 only)"))
        for name, f in (("logistic", lambda x: 1 / (1 + mpmath.exp(-x))), ("tanh", mpmath.tanh)):
            ib = 3
            v = np.arange(-32768, 32768, step, dtype=np.int64)
            raws = v << 16
            xs = [mpmath.mpf(int(r)) / mpmath.mpf(2) ** (31 - ib) for r in raws.tolist()]
            mx, mean = _stats(getattr(fx, name)(raws, ib), xs, f)
            out.append(_row(name, f"gemmlowp,integer_bits={ib}", f"{sub}int16 raws v*2^16, v in [-32768, 32767] "
                            "(x in [-8, 8))", metric, mx, mean, "output FixedPoint<int32,0>; 1.0 saturates to "
                            "2^31-1"))
        v = np.arange(0, 32768, step, dtype=np.int64)
        raws = v << 16
        xs = [mpmath.mpf(int(r)) * LSB for r in raws.tolist()]
        mx, mean = _stats(fx.one_over_one_plus_x_for_x_in_0_1(raws), xs, lambda x: 1 / (1 + x))
        out.append(_row("one_over_one_plus_x_for_x_in_0_1", "gemmlowp", f"{sub}raws v*2^16, v in [0, 32767] "
                        "(x in [0, 1))", metric, mx, mean, "3 Newton-Raphson steps from 48/17 - 32/17*d"))
        mx, mean = _stats(fx.one_minus_x_over_one_plus_x_for_x_in_0_1(raws), xs, lambda x: (1 - x) / (1 + x))
        out.append(_row("one_minus_x_over_one_plus_x_for_x_in_0_1", "gemmlowp", f"{sub}raws v*2^16, v in "
                        "[0, 32767] (x in [0, 1))", metric, mx, mean, "used by tanh"))
        beta, scale = 1, Fraction(1, 16)
        params = ex.softmax_params(beta, scale)
        a = np.arange(-128, 128, dtype=np.int64)
        pairs = np.stack(np.meshgrid(a, a, indexing="ij"), -1).reshape(-1, 2)[::step]
        got = fx.softmax_int8(pairs, *params)[:, 0].astype(np.int64)
        sc = mpmath.mpf(1) / 16

        def sm(p):
            x0, x1 = p
            return 1 / (1 + mpmath.exp(sc * (x1 - x0)))

        mx, mean = _stats(got + 128, [tuple(int(t) for t in p) for p in pairs], sm, mpmath.mpf(1) / 256,
                          mpmath.mpf(1) / 256)
        out.append(_row("softmax_int8", "tflite_reference", f"{sub}rows of two int8 values (65536 rows), "
                        f"beta=1, input_scale=1/16, params (multiplier, left_shift, diff_min)={params}",
                        "|out - softmax| in output LSBs (1/256, zero point -128)", mx, mean,
                        "error includes the final rounding to 8 bits (>= 0.5 LSB is unavoidable)"))
    return out
