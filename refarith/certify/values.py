"""Kernels that return values: refarith does the value -> code step.

Most deployed quantizers are *fake* quantizers: they return float values that lie on the target format's grid
(``x_q = round(x / s) * s`` with ``s = 1``, a chop, a simulate call) rather than the format's bit patterns.  A
kernel marked ``outputs="values"`` (an adapter, or a user callable with the attribute
``refarith_outputs = "values"``) returns float arrays (numpy float16/32/64, ml_dtypes.bfloat16, or torch float
tensors); every element is mapped to the code of the result's format that has exactly that value:

* a finite value that the format represents -> its code (-0.0 -> the negative zero where the format has one,
  +0 otherwise);
* ±inf -> the format's ±inf; NaN -> the format's NaN code of that sign (a values kernel cannot say which NaN,
  so NaN codes differ from the spec's only as ``nan_payload``);
* anything else -- a value between two grid points, beyond the format's range, an inf or NaN that the format
  lacks, zero in a format without zero -- is off the grid, counted as the mismatch class ``off_grid``.  Its
  code column holds ``0xFFFFFFFF << 32 | binary32 bits`` of the value where binary32 holds it exactly (so reports
  show the value), else :data:`OFF_GRID`; no format under 32 bits has such codes.

Integer outputs from a values kernel, a shape that is not the result's, or a non-array are KernelErrors (one
line naming the kernel, the result and what was expected).
"""

from __future__ import annotations

import sys

import numpy as np

from refarith.errors import KernelError
from refarith.exact import ops as _ops
from refarith.formats import FloatFormat

OFF_GRID = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
"""The code column value of an off-grid output value that binary32 does not hold exactly."""
_TAG = 0xFFFF_FFFF
"""The top 32 bits of every off-grid code column value."""


def off_grid_mask(codes) -> np.ndarray:
    """Mask of the off-grid entries of a code array."""
    return (np.asarray(codes, dtype=np.uint64) >> np.uint64(32)) == np.uint64(_TAG)


def is_off_grid_code(code: int) -> bool:
    """Whether one code column value is off the grid."""
    return code >> 32 == _TAG


def off_grid_value(code: int) -> str:
    """The exact value (``p/q``, ``inf``, ``nan``) of an off-grid code column value ('nan' when not kept)."""
    from fractions import Fraction

    if code == int(OFF_GRID):
        return "nan"
    v = float(np.array([code & 0xFFFF_FFFF], dtype=np.uint32).view(np.float32)[0])
    if v != v:
        return "nan"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    return "-0" if v == 0 and np.signbit(v) else str(Fraction(v))

_IEEE_DT = {"binary16": np.float16, "binary32": np.float32, "binary64": np.float64}
_TABLES: dict[str, tuple[np.ndarray, np.ndarray, int | None, int | None, tuple, tuple]] = {}


def _table(fmt) -> tuple[np.ndarray, np.ndarray, int | None, int | None, tuple, tuple]:
    """(sorted finite non-zero values as float64, their codes, +0 code, -0 code, (+inf, -inf) codes,
    (+NaN, -NaN) codes) of a format of at most 16 bits, from the exact model's decoding of every code."""
    if fmt.name in _TABLES:
        return _TABLES[fmt.name]
    vals, codes, pz, nz = [], [], None, None
    for c in range(fmt.ncodes):
        v = _ops.decode(c, fmt)
        if not v.is_finite:
            continue
        if v.mag == 0:
            if v.sign:
                nz = c if nz is None else nz
            else:
                pz = c if pz is None else pz
            continue
        vals.append(float(-v.mag if v.sign else v.mag))  # exact: at most 16-bit formats fit float64
        codes.append(c)
    order = np.argsort(np.array(vals, dtype=np.float64), kind="stable")
    v_arr = np.array(vals, dtype=np.float64)[order]
    c_arr = np.array(codes, dtype=np.uint64)[order]
    if isinstance(fmt, FloatFormat):
        infs = fmt.inf_codes
        nans = (fmt.nan_code_with_sign(0), fmt.nan_code_with_sign(1)) if fmt.has_nan else (None, None)
    else:
        infs, nans = (None, None), (None, None)
    out = (v_arr, c_arr, pz, nz, infs, nans)
    _TABLES[fmt.name] = out
    return out


def as_float64(target: str, raw, shape, what: str) -> np.ndarray:
    """A values kernel's result as a float64 array of ``shape`` (exact for every float dtype it may use)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(raw, getattr(torch, "Tensor", ())):
        raw = raw.detach().cpu()
        if not raw.dtype.is_floating_point:
            raise KernelError(f"kernel {target} ({what}) returned a torch {raw.dtype} tensor; a values kernel "
                              "returns float values")
        raw = raw.to(torch.float64).numpy()
    if not isinstance(raw, np.ndarray):
        raise KernelError(f"kernel {target} ({what}) returned {type(raw).__name__}, expected an array of values")
    if raw.dtype.kind != "f" and raw.dtype.name != "bfloat16":
        raise KernelError(f"kernel {target} ({what}) returned dtype {raw.dtype}; a values kernel returns float "
                          "values (float16, bfloat16, float32 or float64)")
    if raw.shape != tuple(shape):
        if len(shape) == 1 and raw.shape == (shape[0], 1):
            raw = raw.reshape(shape)
        else:
            raise KernelError(f"kernel {target} ({what}) returned shape {raw.shape}, expected {tuple(shape)}")
    return raw.astype(np.float64)


def values_to_codes(values: np.ndarray, fmt) -> np.ndarray:
    """Codes of ``fmt`` with exactly the given float64 values (see the module docstring); an off-grid code
    column value where there is none."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(all="ignore"):
        f32 = v.astype(np.float32)
    held = (f32.astype(np.float64) == v) | np.isnan(v)
    out = np.where(held, np.uint64(_TAG << 32) | f32.view(np.uint32).astype(np.uint64), OFF_GRID)
    if fmt.name in _IEEE_DT:  # wide IEEE results (a per-tensor binary32 scale): exact round trip through the dtype
        dt = np.dtype(_IEEE_DT[fmt.name])
        with np.errstate(all="ignore"):
            n = v.astype(dt)
        ok = (n.astype(np.float64) == v) | np.isnan(v)
        udt = {2: np.uint16, 4: np.uint32, 8: np.uint64}[dt.itemsize]
        ucodes = n.view(udt).astype(np.uint64)
        if np.isnan(v).any():  # a values kernel cannot say which NaN: the quiet NaN of that sign
            s = 1 << (fmt.nbits - 1)
            q = int(np.array([np.nan], dtype=dt).view(udt)[0]) & ~s
            ucodes = np.where(np.isnan(v), np.where(np.signbit(v), np.uint64(q | s), np.uint64(q)), ucodes)
        out[ok] = ucodes[ok]
        return out
    if fmt.nbits > 16:
        raise KernelError(f"values output into {fmt.name}: refarith maps values to codes for formats of at most "
                          "16 bits and binary16/32/64")
    vals, codes, pz, nz, infs, nans = _table(fmt)
    fin = np.isfinite(v) & (v != 0)
    if vals.size and fin.any():
        i = np.clip(np.searchsorted(vals, v[fin]), 0, vals.size - 1)
        hit = vals[i] == v[fin]
        sub = out[fin]
        sub[hit] = codes[i[hit]]
        out[fin] = sub
    zero = v == 0
    neg = np.signbit(v)
    for mask, code in ((zero & ~neg, pz), (zero & neg, nz if nz is not None else pz),
                       (np.isposinf(v), infs[0]), (np.isneginf(v), infs[1]),
                       (np.isnan(v) & ~neg, nans[0]), (np.isnan(v) & neg, nans[1] if nans[1] is not None
                                                         else nans[0])):
        if code is not None:
            out[mask] = np.uint64(code)
    return out


def values_outputs(target: str, raw, n: int, outputs) -> np.ndarray:
    """A values kernel's results (one float array per result operand, or one array for one result) as an
    (n, columns) uint64 array of codes, :data:`OFF_GRID` where a value is not one of its format."""
    parts = list(raw) if isinstance(raw, (tuple, list)) else [raw]
    if len(parts) != len(outputs):
        names = ", ".join(o.name for o in outputs)
        raise KernelError(f"kernel {target} returned {len(parts)} results, expected {len(outputs)} ({names})")
    cols = []
    for o, r in zip(outputs, parts):
        shape = (n,) if o.width == 1 else (n, o.width)
        v = as_float64(target, r, shape, o.name)
        cols.append(values_to_codes(v, o.fmt).reshape(n, o.width))
    return np.concatenate(cols, axis=1) if len(cols) > 1 else cols[0]





class Coded:
    """Codes refarith computed from a values kernel's results; :func:`refarith.certify.adapters.as_outputs`
    passes them through."""

    def __init__(self, codes: np.ndarray) -> None:
        self.codes = codes


def coded(target: str, raw, spec, n: int) -> Coded:
    """The results of a values kernel on ``n`` vectors of ``spec``, mapped to codes."""
    from refarith.golden.drivers import get_driver

    return Coded(values_outputs(target, raw, n, get_driver(spec).outputs(spec)))
__all__ = ["OFF_GRID", "Coded", "as_float64", "coded", "is_off_grid_code", "off_grid_mask", "off_grid_value",
           "values_outputs", "values_to_codes"]
