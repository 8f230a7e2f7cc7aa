"""fpy2's MX contexts: ``ctx.encode(ctx.round(x))`` per element (fpy2 rounds exactly from the binary64 value).

Target ``fpy2:<context>[+<mode>]``: ``<context>`` one of ``MX_E4M3`` (into ``ocp_e4m3``), ``MX_E5M2``
(``ocp_e5m2``), ``MX_E3M2`` (``ocp_e3m2``), ``MX_E2M3`` (``ocp_e2m3``), ``MX_E2M1`` (``ocp_e2m1``), ``MX_E8M0``
(``e8m0``: its ExpContext(8, 0), the MX scale) and ``MX_INT8`` (``int8``: its FixedContext(signed, scale 2^-6, 8
bits), the MX element k/64 with k in [-128, 127], overflow wrapping): these are all of fpy2 0.3.0's MX contexts,
per element (it has no block-scale API).  ``MX_INT8``'s grid is k/64, so the adapter rounds x * 2^-6 (exact in
binary64 for binary16/32 inputs) and its code k is int8's code of the integer x rounds to; fpy2 raises on an
infinite or NaN input there, reported as NaN, off the int8 grid (a values kernel: the value k, refarith doing
the value -> code step; the other contexts are codes kernels).  ``<mode>``
a refarith rounding name mapped to fpy2's RoundingMode (rne default, rna, rtz, rup, rdn, rto).  A codes kernel,
scalar (a Python loop): the golden stage of 16-bit sources is exhaustive, binary32 sources are sampled.
"""

from __future__ import annotations

import numpy as np

from refarith.certify.deployed._common import Library, as_float32, cast_check, codes_kernel, require, values_kernel
from refarith.errors import KernelError

LIBRARY = Library("fpy2", "fpy2", ("0.3.0",), ("fpy2==0.3.0", "titanfp==0.1.2", "antlr4-python3-runtime==4.9.3"))
CONTEXTS = {"MX_E4M3": "ocp_e4m3", "MX_E5M2": "ocp_e5m2", "MX_E3M2": "ocp_e3m2", "MX_E2M3": "ocp_e2m3",
            "MX_E2M1": "ocp_e2m1", "MX_E8M0": "e8m0", "MX_INT8": "int8"}
MODES = {"rne": "RNE", "rna": "RNA", "rtz": "RTZ", "rup": "RTP", "rdn": "RTN", "rto": "RTO"}


def load(name: str):
    target = f"fpy2:{name}"
    ctx_name, _, mode = name.partition("+")
    mode = mode or "rne"
    if ctx_name not in CONTEXTS:
        raise KernelError(f"adapter {target}: unknown context {ctx_name!r}; fpy2 targets: {', '.join(CONTEXTS)}")
    if mode not in MODES:
        raise KernelError(f"adapter {target}: unknown rounding {mode!r}; modes: {', '.join(MODES)}")
    fpy2, version = require(LIBRARY, target)
    ctx = getattr(fpy2, ctx_name).with_params(rm=getattr(fpy2.RoundingMode, MODES[mode]))

    def fn(spec, operands):
        x = as_float32(operands[0], spec.formats[0]).astype(np.float64)
        return np.array([ctx.encode(ctx.round(float(v))) for v in x], dtype=np.uint64)

    def int8_values(spec, operands):
        x = as_float32(operands[0], spec.formats[0]).astype(np.float64)
        fin = np.isfinite(x)
        out = np.where(fin, 0.0, np.nan)
        out[fin] = [float(ctx.round(float(v) * 2.0 ** -6)) * 64 for v in x[fin]]
        return out

    check = cast_check(target, CONTEXTS[ctx_name])
    if ctx_name == "MX_INT8":
        return values_kernel(target, int8_values, LIBRARY, version, check)
    return codes_kernel(target, fn, LIBRARY, version, check)
