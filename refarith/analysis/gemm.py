"""GEMM accumulator models (scaled_mm): worst-case error at K = 2 by enumeration, and the tensor-core claims.

Two parts.  (1) For every pair of OCP E2M1 vectors of length 2 (65536 cases, all of them), each accumulator
model summing into an E5M2 accumulator (u = 2^-3) against the exact sum S: relative error |D - S| / |S| over the
cases with S != 0 (the same enumeration as the ``gemm.bound.*`` theorems, which check the classical bounds).
(2) The DeepSeek-V3 claim (arXiv 2412.19437 §3.3.2, "maximum relative error of nearly 2%" at K = 4096 on H800
FP8 GEMMs, restored by promotion to FP32 every 128): E4M3 operands M x 4096 by 4096 x N (M = N = 64; quick: 16),
U[0, 1) and N(0, 1) inputs rounded to E4M3 (seed 0), binary32 output of each model against the exact sum.
Every output comes from refarith's numpy GEMM kernel, bit-exact with the exact model (tests/test_gemm.py); the
errors are computed from exact sums, so they are exact to the printed digits.
"""

from __future__ import annotations

import numpy as np

from refarith.smt.theorems import gemm as T

_REF_BOUND = "Higham, ASNA 2nd ed. §4.2-4.3 (classical bounds checked by gemm.bound.*)"
_REF_DSV3 = "DeepSeek-V3 technical report, arXiv 2412.19437 §3.3.2"


def rows(quick: bool = False) -> list[dict]:
    """One row per accumulator model at K = 2, then one per (distribution, model) of the tensor-core claims."""
    out = []
    for name, model in T.MODELS.items():
        d, s, _, _, _ = T.enumerate_model(model)
        nz = s != 0
        rel = np.abs(d - s)[nz] / np.abs(s[nz])
        out.append({"operator": "scaled_mm accumulator", "variant": model,
                    "domain": f"all 65536 pairs of {T.IN} vectors, K = {T.K}, acc {T.ACC}",
                    "metric": "|D - S| / |S| (S exact, != 0)", "max_err": float(rel.max()),
                    "mean_err": float(rel.mean()), "reference": _REF_BOUND,
                    "note": "exact-then-round: one rounding" if name == "exact" else "enumerated"})
    m = 16 if quick else 64
    for r in T.tensor_core_claims(m=m, n=m, k=4096):
        note = {"hopper_fp8": "g=32, b=13 truncation, no promotion (our reading of 'about 14 bits')",
                "deepseek_v3": "hopper_fp8 + promotion to binary32 every 128"}.get(r["model"], "binary32")
        out.append({"operator": "scaled_mm ocp_e4m3->binary32", "variant": r["model"],
                    "domain": f"{m}x4096x{m}, {r['distribution']} inputs rounded to E4M3, seed 0",
                    "metric": "|D - S| / |S| (S exact, != 0)", "max_err": r["max_rel_error"],
                    "mean_err": r["mean_rel_error"], "reference": _REF_DSV3,
                    "note": note + "; claim: max rel. error nearly 2% without promotion"})
    return out
