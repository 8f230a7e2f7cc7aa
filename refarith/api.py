"""The public encode/decode entry points, dispatching to a backend."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from refarith.errors import BadValueError, BitPatternError, UnknownModeError
from refarith.exact import ops as _exact
from refarith.exact.value import Value
from refarith.formats import FloatFormat, IntFormat, get_format

BACKENDS = ("exact", "numpy", "torch")


def _code_dtype(nbits: int):
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if nbits <= np.dtype(dt).itemsize * 8:
            return dt
    raise BadValueError(f"{nbits}-bit codes do not fit a numpy integer")


def encode(x, fmt: FloatFormat | IntFormat | str | object, rounding: str = "rne", overflow: str | None = None, *,
           nan_policy: str = "error", negative: str = "error", rand=None, rand_bits: int | None = None,
           backend: str = "exact", sr_variant: str = "a"):
    """Round numbers into ``fmt`` once and return their codes.

    A scalar (int, float, Fraction, Decimal, str) gives an int; an array-like
    gives a numpy array of the smallest unsigned dtype that holds the codes.
    Floats are taken at their exact binary64 (or array dtype) value; an ml_dtypes array (bfloat16, float8_*,
    int4, ...) by its bit patterns (:func:`ml_dtypes_codes`).  ``fmt``: a name, a format record or a dtype
    (``np.float16``, ``ml_dtypes.float8_e4m3fn``, ``torch.float8_e5m2``, see :func:`refarith.get_format`).  For
    ``rounding="sr"`` pass ``rand`` (int or array of k-bit integers, one per element; never drawn for you) and
    ``rand_bits`` = k, and optionally ``sr_variant`` (a, b, c, c_odd, te_e2m1_8; :mod:`refarith.exact.stochastic`).
    Rules: :mod:`refarith.exact.rounding`.
    """
    fmt = get_format(fmt)
    if backend not in BACKENDS:
        raise UnknownModeError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    kw = dict(rounding=rounding, overflow=overflow, nan_policy=nan_policy, negative=negative, rand_bits=rand_bits)
    if rounding == "sr":
        from refarith.exact.stochastic import canonical_variant

        kw["sr_variant"] = canonical_variant(sr_variant)
    if backend == "torch" and _torch_bits_dtype(x) is not None:  # float8 tensors: their bits, on their device
        import torch

        from refarith import fast

        src = get_format(x.dtype)
        bits = x.view(torch.uint8).to(torch.int32) if x.element_size() == 1 else \
            x.view(torch.int16).to(torch.int32) & 0xFFFF
        return fast.encode(bits, fmt, rand=rand, backend=backend, src=src, **kw)
    ml = ml_dtypes_codes(x)
    if ml is not None:
        codes, src, scalar = ml
        if isinstance(src, IntFormat):
            x = exact_values(codes, src)
        elif backend != "exact":
            from refarith import fast

            out = fast.encode(codes, fmt, rand=rand, backend=backend, src=src, **kw)
            return int(out.reshape(())) if scalar else out
        else:
            x = exact_values(codes, src)
        if scalar:
            x = x.reshape(()).item() if x.dtype != object else x.reshape(())[()]
    if backend != "exact":
        from refarith import fast

        return fast.encode(x, fmt, rand=rand, backend=backend, **kw)
    if _is_scalar(x):
        return _exact.encode(x, fmt, rand=_rand_scalar(rand), **kw).code
    arr = as_exact_array(x)
    if arr.dtype == object:
        flat = list(arr.ravel())
    else:
        flat = arr.ravel().tolist() if arr.dtype.kind in "iu" else [v for v in arr.ravel()]
    rands = None
    if rand is not None:
        rands = _rand_list(rand, arr.shape)
    out = np.empty(len(flat), dtype=_code_dtype(fmt.nbits))
    for i, v in enumerate(flat):
        out[i] = _exact.encode(v, fmt, rand=None if rands is None else rands[i], **kw).code
    return out.reshape(arr.shape)


def _torch_bits_dtype(x) -> str | None:
    """The dtype name of a torch tensor whose dtype numpy lacks (bfloat16, float8_*), else None."""
    if not type(x).__module__.startswith("torch") or not hasattr(x, "dtype"):
        return None
    name = str(x.dtype).removeprefix("torch.")
    return name if name == "bfloat16" or name.startswith("float8_") else None


def ml_dtypes_codes(x) -> tuple[np.ndarray, FloatFormat | IntFormat, bool] | None:
    """(bit patterns, format, is_scalar) of an ml_dtypes array or scalar (``bfloat16``, ``float8_*``, ``float6_*``,
    ``float4_e2m1fn``, ``int4``, ...) or of a torch tensor of a dtype numpy lacks (bfloat16, float8_*): the codes
    are read from its storage bytes (masked to the format's width), never through the library's own conversions.
    None for any other input."""
    if _torch_bits_dtype(x) is not None:
        import torch

        fmt = get_format(x.dtype)
        t = x.detach().cpu().contiguous()
        codes = t.view(torch.uint8).numpy() if t.element_size() == 1 else t.view(torch.int16).numpy().view(np.uint16)
        return codes.copy(), fmt, t.dim() == 0
    if not isinstance(x, (np.ndarray, np.generic)) or not x.dtype.type.__module__.startswith("ml_dtypes"):
        return None
    fmt = get_format(x.dtype)
    view = {1: np.uint8, 2: np.uint16, 4: np.uint32}.get(x.dtype.itemsize)
    if view is None or fmt.nbits > 8 * x.dtype.itemsize:
        raise BadValueError(f"cannot read the bits of ml_dtypes dtype {x.dtype.name} ({x.dtype.itemsize} bytes)")
    a = np.ascontiguousarray(np.asarray(x))
    return a.view(view) & view(fmt.ncodes - 1), fmt, isinstance(x, np.generic) or a.ndim == 0


def exact_values(codes: np.ndarray, fmt: FloatFormat | IntFormat) -> np.ndarray:
    """The exact values of an array of ``fmt`` codes: int64 for integer formats, else an object array of
    :class:`Value` (each distinct code decoded once by the exact model)."""
    uniq, inv = np.unique(codes.ravel(), return_inverse=True)
    if isinstance(fmt, IntFormat):
        return np.array([fmt.value(int(c)) for c in uniq], dtype=np.int64)[inv].reshape(codes.shape)
    vals = np.empty(len(uniq), dtype=object)
    vals[:] = [_exact.decode(int(c), fmt) for c in uniq]
    return vals[inv].reshape(codes.shape)


def as_exact_array(x) -> np.ndarray:
    """``x`` as a numpy array without changing any element's value.

    A numpy array is taken as it is.  A list or tuple becomes an object array, so
    every element keeps its own exact value: ``np.asarray`` would turn
    ``[0.5, 2**60 + 2**52 + 1]`` into float64 and round the integer.
    """
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple)):
        try:
            return np.array(x, dtype=object)
        except ValueError as e:
            raise BadValueError(f"malformed nested sequence: {e}") from None
    return np.asarray(x)


def _rand_scalar(rand):
    """numpy integer scalars are integers; anything else goes to the exact model's check unchanged."""
    if isinstance(rand, np.integer):
        return int(rand)
    return rand


def _rand_list(rand, shape: tuple) -> list:
    """The random integers of stochastic rounding, broadcast to ``shape``, as Python ints (never truncated)."""
    r = as_exact_array(rand)
    if r.dtype == object:
        for v in r.ravel():
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise UnknownModeError(f"rand must hold integers, got {v!r}")
    elif r.dtype.kind not in "iu":
        raise UnknownModeError(f"rand must hold integers, got dtype {r.dtype}")
    try:
        b = np.broadcast_to(r, shape)
    except ValueError:
        raise BadValueError(f"rand of shape {r.shape} does not broadcast to the input shape {shape}") from None
    return [int(v) for v in b.ravel().tolist()]


def decode(codes, fmt: FloatFormat | IntFormat | str | object, *, backend: str = "exact"):
    """Exact value of codes: a :class:`Value` for a scalar; for arrays a float64 array (exact for
    every format whose values binary64 holds, which :func:`decode` checks; a NaN keeps its sign) or int64
    for integer formats (uint64 for uint64).  Codes must be integers: a bool, float or string code raises
    BitPatternError (a float array BadValueError), never a truncated code."""
    fmt = get_format(fmt)
    if backend not in BACKENDS:
        raise UnknownModeError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend != "exact":
        from refarith import fast

        return fast.decode(codes, fmt, backend=backend)
    if _is_scalar(codes):
        return _exact.decode(_code_int(codes, fmt), fmt)
    arr = as_exact_array(codes)
    if arr.dtype == object:
        flat = [_code_int(c, fmt) for c in arr.ravel()]
    elif arr.dtype.kind in "iu":
        flat = arr.ravel().tolist()
    else:
        raise BadValueError(f"codes must be integers, got dtype {arr.dtype}")
    if isinstance(fmt, IntFormat):
        dt = np.int64 if fmt.signed or fmt.bits < 64 else np.uint64
        return np.array([fmt.value(c) for c in flat], dtype=dt).reshape(arr.shape)
    if fmt.ebits > 11 or fmt.mbits > 52 or fmt.emin - fmt.mbits < -1074:
        raise BadValueError(f"{fmt.name} values are not all exact in float64; use refarith.exact.decode")
    vals = []
    for c in flat:
        v = _exact.decode(c, fmt)
        f = v.to_float()
        vals.append(math.copysign(f, -1.0) if v.is_nan and v.sign else f)  # keep the sign of a NaN
    return np.array(vals, dtype=np.float64).reshape(arr.shape)


def _code_int(c, fmt) -> int:
    """A bit pattern as a Python int: ints and numpy integers only (no bool, no float, no string)."""
    if isinstance(c, np.integer):
        return int(c)
    if isinstance(c, int) and not isinstance(c, bool):
        return c
    raise BitPatternError(f"{fmt.name}: a bit pattern must be an integer, got {c!r} ({type(c).__name__})")


def _is_scalar(x) -> bool:
    if isinstance(x, (int, float, str, Fraction, Value)):
        return True
    if isinstance(x, (list, tuple, np.ndarray)):
        return False
    return np.ndim(x) == 0
