"""LLM.int8() matmul with numpy: vectorized int8 quantization and int32 GEMM; same results as
:mod:`refarith.exact.llmint8`.

Codes: 127 * x is exact in binary64 (11 + 7 bits) and the binary64 quotient by
the absmax decides the RNE rounding of the exact quotient (|q| <= 127; the
argument of :mod:`refarith.fast.intquant`).  The int8 GEMM runs in int64 and is
then wrapped to int32 (``accumulate=int32``).  The final combination
C * a * b / 127^2 + outlier part is rounded to binary16 exactly: it is formed
with Python integers (binary16 values read from their bits as multiples of
2^-24; the outlier part an object-array product over the few outlier
dimensions) and rounded by the exact model, one output at a time.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact.llmint8 import ACCUMULATE
from refarith.exact.rounding import round_value
from refarith.exact.value import Value
from refarith.formats import get_format

_BINARY16 = get_format("binary16")


def quantize_rows(a: np.ndarray):
    """(absmax per row as float16, int8 codes RNE(127 x / absmax)) of a binary16 matrix.  A zero row (or a row
    with no columns) has absmax 0 and codes 0: its divisor is the least positive binary16, which every nonzero
    absmax reaches."""
    a64 = np.asarray(a, dtype=np.float64)
    am = np.abs(a64).max(axis=1, initial=0.0)  # a row with no columns (every dimension an outlier) has absmax 0
    safe = np.fmax(am, np.finfo(np.float16).smallest_subnormal)
    q = np.rint(127.0 * a64 / safe[:, None])
    return am.astype(np.float16), q.astype(np.int8)


def _units(a: np.ndarray) -> np.ndarray:
    """The binary16 values ``a`` (a finite float16 array) as int64 multiples of 2^-24, read from their bits:
    subnormal field 0 gives the mantissa m, field e >= 1 gives (1024 + m) << (e - 1)."""
    b = a.view(np.uint16).astype(np.int64)
    e = (b >> 10) & 31
    normal = e != 0
    mag = ((b & 1023) + normal * 1024) << (e - normal)
    return np.where(b >> 15, -mag, mag)


def matmul(x, w, threshold: float = 6.0, accumulate: str = "int32"):
    """(outlier dims, row absmax, col absmax, int32 accumulators, binary16 output) of X (m x k) @ W (k x n)."""
    if accumulate not in ACCUMULATE:
        raise UnknownModeError(f"unknown accumulation {accumulate!r}; expected one of {', '.join(ACCUMULATE)}")
    x = np.asarray(x)
    w = np.asarray(w)
    if x.dtype != np.float16 or w.dtype != np.float16:
        raise BadValueError("LLM.int8() operands must be float16 arrays")
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise BadValueError(f"shapes {x.shape} and {w.shape} do not multiply")
    if not (np.isfinite(x).all() and np.isfinite(w).all()):
        raise BadValueError("LLM.int8() operands must be finite")
    outl = np.nonzero((np.abs(x) >= np.float32(threshold)).any(axis=0))[0]  # compared in float32
    keep = np.setdiff1d(np.arange(x.shape[1]), outl)
    ax, qx = quantize_rows(x[:, keep])
    aw, qw = quantize_rows(w[keep, :].T)
    acc = qx.astype(np.int64) @ qw.T.astype(np.int64)
    return _combine(x, w, outl, ax, aw, acc, accumulate)


def _combine(x, w, outl, ax, aw, acc, accumulate: str):
    """The exact binary16 outputs from the int8 part (row/column absmax, int64 accumulators) and the outlier
    columns of X / rows of W (numpy arrays on the host): C * a * b / 127^2 + X_o W_o formed with Python integers
    in units of 2^-48 (binary16 values are integers times 2^-24), rounded RNE by the exact model."""
    if accumulate == "int32":
        acc = acc.astype(np.int32)  # numpy's integer cast keeps the low 32 bits: the int32 wrap
    outp = _units(x[:, outl]).astype(object) @ _units(w[outl, :]).astype(object)  # zeros when no outliers
    axi, awi = _units(ax).tolist(), _units(aw).tolist()
    out = np.empty(acc.shape, np.uint16)
    for (i, j), c in np.ndenumerate(acc):
        num = int(c) * axi[i] * awi[j] + 16129 * outp[i, j]
        out[i, j] = round_value(Value.of(Fraction(num, 16129 << 48)), _BINARY16).code
    return outl, ax, aw, acc, out.view(np.float16)


def matmul_torch(x, w, threshold: float = 6.0, accumulate: str = "int32"):
    """:func:`matmul` for torch float16 tensors: outlier detection, row-wise int8 quantization and the int8 GEMM
    run on the tensors' device (the GEMM in binary64, exact for inner dimensions below 2^53 / 127^2); the final
    combination is rounded to binary16 exactly on the host, as in :func:`matmul`.  Returns numpy arrays."""
    import torch

    if accumulate not in ACCUMULATE:
        raise UnknownModeError(f"unknown accumulation {accumulate!r}; expected one of {', '.join(ACCUMULATE)}")
    if x.dtype != torch.float16 or w.dtype != torch.float16:
        raise BadValueError("LLM.int8() operands must be float16 tensors")
    if x.dim() != 2 or w.dim() != 2 or x.shape[1] != w.shape[0]:
        raise BadValueError(f"shapes {tuple(x.shape)} and {tuple(w.shape)} do not multiply")
    if not (torch.isfinite(x).all() and torch.isfinite(w).all()):
        raise BadValueError("LLM.int8() operands must be finite")
    is_out = (torch.abs(x.to(torch.float32)) >= threshold).any(dim=0)
    keep = torch.nonzero(~is_out).reshape(-1)

    def rows(a):
        a64 = a.to(torch.float64)
        am = torch.abs(a64).amax(dim=1) if a64.shape[1] else torch.zeros(a64.shape[0], dtype=torch.float64,
                                                                          device=a64.device)
        safe = torch.where(am == 0, torch.ones_like(am), am)
        return am.to(torch.float16), torch.round(127.0 * a64 / safe[:, None])  # round: half to even

    ax, qx = rows(x[:, keep])
    aw, qw = rows(w[keep, :].T)
    acc = (qx @ qw.T).to(torch.int64)  # |sum| <= K * 127^2: exact in binary64
    outl = torch.nonzero(is_out).reshape(-1).cpu().numpy()
    return _combine(x.cpu().numpy(), w.cpu().numpy(), outl, ax.cpu().numpy(), aw.cpu().numpy(), acc.cpu().numpy(),
                    accumulate)
