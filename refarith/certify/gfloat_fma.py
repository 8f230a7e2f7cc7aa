"""gfloat's rounding as an fma kernel of ocp_e4m3 in every deterministic mode it has, as certification targets.

``fma_ocp_e4m3_<mode>`` (mode rne, rna, rtz, rup, rdn) takes three arrays of ocp_e4m3 codes, decodes them with
gfloat (``decode_ndarray``), computes a * b + c in binary64, and rounds that once with
``gfloat.round_ndarray(format_info_ocp_e4m3, v, <RoundMode>, sat=True)``, then ``encode_ndarray``.  The binary64
step is exact for e4m3: every value is a multiple of 2^-9 below 2^9, so a product is a multiple of 2^-18 below
2^18 and the sum a multiple of 2^-18 below 2^19, at most 37 significant bits.  The rounding is therefore gfloat's
alone: an fma kernel independent of refarith's, certified against ``fma(ocp_e4m3,rounding=<mode>,
overflow=saturate)``.  gfloat has no round-to-odd mode, so ``rto`` has no target here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MODES = {"rne": "TiesToEven", "rna": "TiesToAway", "rtz": "TowardZero", "rup": "TowardPositive",
         "rdn": "TowardNegative"}


def _fma(mode: str) -> Callable:
    def fn(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        import gfloat
        from gfloat.formats import format_info_ocp_e4m3 as fi

        x, y, z = (gfloat.decode_ndarray(fi, np.asarray(v, dtype=np.int64)) for v in (a, b, c))
        with np.errstate(all="ignore"):
            r = gfloat.round_ndarray(fi, x * y + z, getattr(gfloat.RoundMode, MODES[mode]), sat=True)
        return np.asarray(gfloat.encode_ndarray(fi, r), dtype=np.uint8)

    fn.refarith_inputs = "codes"  # type: ignore[attr-defined]
    fn.__name__ = fn.__qualname__ = f"fma_ocp_e4m3_{mode}"
    fn.__doc__ = f"a * b + c of ocp_e4m3 codes: binary64 (exact), gfloat RoundMode.{MODES[mode]}, sat=True; codes."
    return fn


fma_ocp_e4m3_rne = _fma("rne")
fma_ocp_e4m3_rna = _fma("rna")
fma_ocp_e4m3_rtz = _fma("rtz")
fma_ocp_e4m3_rup = _fma("rup")
fma_ocp_e4m3_rdn = _fma("rdn")

__all__ = ["MODES", "fma_ocp_e4m3_rdn", "fma_ocp_e4m3_rna", "fma_ocp_e4m3_rne", "fma_ocp_e4m3_rtz",
           "fma_ocp_e4m3_rup"]
