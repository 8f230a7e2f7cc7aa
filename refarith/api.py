"""The public encode/decode entry points, dispatching to a backend."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import ops as _exact
from refarith.exact.value import Value
from refarith.formats import FloatFormat, IntFormat, get_format

BACKENDS = ("exact", "numpy", "torch")


def _code_dtype(nbits: int):
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if nbits <= np.dtype(dt).itemsize * 8:
            return dt
    raise BadValueError(f"{nbits}-bit codes do not fit a numpy integer")


def encode(x, fmt: FloatFormat | IntFormat | str, rounding: str = "rne", overflow: str | None = None, *,
           nan_policy: str = "error", negative: str = "error", rand=None, rand_bits: int | None = None,
           backend: str = "exact"):
    """Round numbers into ``fmt`` once and return their codes.

    A scalar (int, float, Fraction, Decimal, str) gives an int; an array-like
    gives a numpy array of the smallest unsigned dtype that holds the codes.
    Floats are taken at their exact binary64 (or array dtype) value.  For
    ``rounding="sr"`` pass ``rand`` (int or array of k-bit integers) and
    ``rand_bits`` = k.  Rules: :mod:`refarith.exact.rounding`.
    """
    fmt = get_format(fmt)
    if backend not in BACKENDS:
        raise UnknownModeError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    kw = dict(rounding=rounding, overflow=overflow, nan_policy=nan_policy, negative=negative, rand_bits=rand_bits)
    if backend != "exact":
        from refarith import fast

        return fast.encode(x, fmt, rand=rand, backend=backend, **kw)
    if _is_scalar(x):
        return _exact.encode(x, fmt, rand=rand, **kw).code
    arr = np.asarray(x)
    if arr.dtype == object:
        flat = list(arr.ravel())
    else:
        flat = arr.ravel().tolist() if arr.dtype.kind in "iu" else [v for v in arr.ravel()]
    rands = None
    if rand is not None:
        rands = np.broadcast_to(np.asarray(rand), arr.shape).ravel().tolist()
    out = np.empty(len(flat), dtype=_code_dtype(fmt.nbits))
    for i, v in enumerate(flat):
        out[i] = _exact.encode(v, fmt, rand=None if rands is None else int(rands[i]), **kw).code
    return out.reshape(arr.shape)


def decode(codes, fmt: FloatFormat | IntFormat | str, *, backend: str = "exact"):
    """Exact value of codes: a :class:`Value` for a scalar; for arrays a float64 array (exact for
    every format whose values binary64 holds, which :func:`decode` checks) or int64 for integer formats."""
    fmt = get_format(fmt)
    if backend not in BACKENDS:
        raise UnknownModeError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend != "exact":
        from refarith import fast

        return fast.decode(codes, fmt, backend=backend)
    if _is_scalar(codes):
        return _exact.decode(int(codes), fmt)
    arr = np.asarray(codes)
    if arr.dtype.kind not in "iu":
        raise BadValueError(f"codes must be integers, got dtype {arr.dtype}")
    if isinstance(fmt, IntFormat):
        return np.array([fmt.value(int(c)) for c in arr.ravel()], dtype=np.int64).reshape(arr.shape)
    if fmt.ebits > 11 or fmt.mbits > 52 or fmt.emin - fmt.mbits < -1074:
        raise BadValueError(f"{fmt.name} values are not all exact in float64; use refarith.exact.decode")
    vals = [_exact.decode(int(c), fmt).to_float() for c in arr.ravel()]
    return np.array(vals, dtype=np.float64).reshape(arr.shape)


def _is_scalar(x) -> bool:
    return isinstance(x, (int, float, str, Fraction, Value)) or np.ndim(x) == 0 and not isinstance(x, np.ndarray)
