"""Peer implementations of HiFloat8 as certification targets (``package.module:function``).

* ``refarith.certify.hifloat_peers:en_dtypes_hifloat8``: en_dtypes' numpy dtype ``hifloat8`` (written for en_dtypes
  0.0.4), the conversion ``x.astype(en_dtypes.hifloat8)`` of binary16 or binary32 values (binary16 widened to
  binary32 first, exactly).  Spec: ``cast(binary32->hifloat8,rounding=rna)`` (or from binary16): en_dtypes rounds
  half away from zero, the paper's "TA" rounding, and overflows to inf.

An en_dtypes version the adapter was not written for is a KernelError (one line, exit 2), never a silent run.
"""

from __future__ import annotations

import numpy as np

from refarith.errors import KernelError

EN_DTYPES_VERSIONS = ("0.0.4",)
"""en_dtypes releases whose hifloat8 conversion this adapter follows."""


def _en_dtypes():
    try:
        import en_dtypes
    except Exception as e:  # noqa: BLE001 - any import failure of the peer is reported as one line
        raise KernelError(f"en_dtypes is not importable: {type(e).__name__}: {e}") from None
    v = getattr(en_dtypes, "__version__", "?")
    if v not in EN_DTYPES_VERSIONS:
        raise KernelError(f"en_dtypes {v}: the hifloat8 adapter was written for en_dtypes "
                          f"{', '.join(EN_DTYPES_VERSIONS)}")
    return en_dtypes


def en_dtypes_hifloat8(x: np.ndarray) -> np.ndarray:
    """binary16/binary32 values -> HiFloat8 codes (uint8) by en_dtypes' ``astype``."""
    en = _en_dtypes()
    with np.errstate(invalid="ignore"):
        return np.asarray(x).astype(np.float32).astype(en.hifloat8).view(np.uint8)
