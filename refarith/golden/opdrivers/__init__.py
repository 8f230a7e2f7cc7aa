"""Vector drivers of the block, integer and approximate ops, one module per op family.

Each module registers its drivers with :func:`refarith.golden.drivers.register_driver` on import;
:func:`refarith.golden.drivers.load_all` imports them all.  A driver fixes what one vector of its op is (a
block of 32 binary32 values, a row of 8 int8 values, an accumulator with its scale and zero point, ...), so
that golden files, certification, fuzzing and ``identify`` work on every op through one interface.  This
package holds the helpers the modules share.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from refarith.errors import RefarithError, SpecError
from refarith.exact import ops as _ops
from refarith.exact.value import Value
from refarith.formats import FloatFormat, IntFormat, get_format

F32 = get_format("binary32")
F16 = get_format("binary16")


# ------------------------------------------------------------------ codes <-> numbers
def ival(fmt: IntFormat, code: int) -> int:
    """Signed (or unsigned) integer value of an integer-format code."""
    return fmt.value(code)


def icode(fmt: IntFormat, v: int) -> int | None:
    """Code of the integer ``v`` in ``fmt``, or None when ``v`` is outside the format's storage range."""
    lo = -(1 << (fmt.bits - 1)) if fmt.signed else 0
    if not lo <= v <= fmt.max:
        return None
    return v & ((1 << fmt.bits) - 1)


def icodes(fmt: IntFormat, vs: Sequence[int]) -> tuple[int, ...] | None:
    """Codes of a sequence of integers, or None when any is out of range."""
    out = []
    for v in vs:
        c = icode(fmt, int(v))
        if c is None:
            return None
        out.append(c)
    return tuple(out)


def fvalue(fmt: FloatFormat, code: int) -> Value:
    return _ops.decode(code, fmt)


def f32_float(code: int) -> float:
    """The Python float (exact) of a binary32 code; NaN/inf included."""
    return float(np.array([code], dtype=np.uint32).view(np.float32)[0])


def f32_code(x: Fraction | int) -> int:
    """binary32 code of an exact number rounded to nearest even (saturating never needed here: callers keep
    values in range)."""
    return _ops.encode(Value.of(Fraction(x)), F32, "rne", "inf").code


# ------------------------------------------------------------------ operand arrays for kernels
def signed_array(codes: np.ndarray, fmt: IntFormat) -> np.ndarray:
    """int64 values of integer-format codes (two's complement decoded)."""
    c = np.asarray(codes).astype(np.int64)
    if fmt.signed:
        c = np.where(c >> (fmt.bits - 1) != 0, c - (1 << fmt.bits), c)
    return c


def as_backend(a: np.ndarray, backend: str):
    """A numpy array as the backend's array type (torch: a CPU tensor, int64 for integers, float32 kept)."""
    if backend == "numpy":
        return a
    if backend != "torch":
        raise SpecError(f"unknown backend {backend!r}")
    import torch

    if a.dtype == np.float32 or a.dtype == np.float16:
        return torch.from_numpy(np.ascontiguousarray(a))
    return torch.from_numpy(np.ascontiguousarray(a.astype(np.int64)))


def to_numpy(a) -> np.ndarray:
    """A kernel result (numpy array or torch tensor) as a numpy array."""
    if isinstance(a, np.ndarray):
        return a
    try:
        import torch

        if isinstance(a, torch.Tensor):
            return a.detach().cpu().numpy()
    except ImportError:
        pass
    return np.asarray(a)


def float_view(codes: np.ndarray, fmt) -> np.ndarray:
    """binary32/binary16 codes as the matching numpy float array (exact reinterpretation)."""
    if fmt.name == "binary32":
        return np.asarray(codes).astype(np.uint32).view(np.float32)
    if fmt.name == "binary16":
        return np.asarray(codes).astype(np.uint16).view(np.float16)
    raise SpecError(f"no numpy float type for {fmt.name}")


def int_codes(values, fmt: IntFormat) -> np.ndarray:
    """Codes (two's complement bit patterns) of integer values; the values must be in the storage range."""
    v = to_numpy(values).astype(np.int64)
    return v & np.int64((1 << fmt.bits) - 1) if fmt.bits < 64 else v


def exact_or_none(fn, *args):
    """``fn(*args)``, or None when the exact model raises a refarith error (the input is outside the spec)."""
    try:
        return fn(*args)
    except SpecError:
        raise
    except RefarithError:
        return None


# ------------------------------------------------------------------ boundary and random binary32 values
def f32_bits(sign: int, exp: int, frac: int) -> int:
    """binary32 code from fields (biased exponent ``exp``)."""
    return (sign << 31) | (exp << 23) | frac


def pow2_code(e: int, sign: int = 0) -> int | None:
    """binary32 code of +-2^e (subnormal powers included), None outside the range."""
    if -149 <= e < -126:
        return (sign << 31) | (1 << (e + 149))
    if -126 <= e <= 127:
        return (sign << 31) | ((e + 127) << 23)
    return None


def random_f32(rng: random.Random, e_center: int, spread: int = 8, p_zero: float = 0.03,
               p_special: float = 0.0) -> int:
    """A binary32 code with unbiased exponent near ``e_center`` (down to ``spread`` below), random sign and
    mantissa; occasionally zero (either sign) or, with ``p_special``, NaN/inf."""
    u = rng.random()
    s = rng.randrange(2)
    if u < p_zero:
        return s << 31
    if u < p_zero + p_special:
        return rng.choice([0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001])
    e = e_center - rng.randrange(spread + 1)
    frac = rng.getrandbits(23)
    if e < -126:
        sh = min(-126 - e, 24)
        return (s << 31) | (((1 << 23) | frac) >> sh)
    e = min(e, 127)
    return f32_bits(s, e + 127, frac)


def random_int(rng: random.Random, fmt: IntFormat, small: int | None = None) -> int:
    """A random code of ``fmt``: uniform over the format, or (``small``) a value in [-small, small]."""
    if small is None:
        return rng.randrange(fmt.ncodes)
    lo = max(fmt.min, -small)
    hi = min(fmt.max, small)
    return icode(fmt, rng.randint(lo, hi))


def int_boundary_values(fmt: IntFormat, dense: int = 64) -> list[int]:
    """Integer boundary values: a dense range around 0, the extremes and their neighbours, +-2^k and +-2^k+-1."""
    vals = set(range(max(fmt.min, -dense), min(fmt.max, dense) + 1))
    vals |= {fmt.min, fmt.min + 1, fmt.max, fmt.max - 1}
    for k in range(fmt.bits):
        for d in (-1, 0, 1):
            for s in (1, -1):
                v = s * (1 << k) + d
                if fmt.min <= v <= fmt.max:
                    vals.add(v)
    if fmt.signed and fmt.bits > 1:
        vals.add(-(1 << (fmt.bits - 1)))
    return sorted(vals)


def fixed_rng(spec, salt: str) -> random.Random:
    """A deterministic generator for boundary construction (seeded by the spec id and a salt)."""
    import hashlib

    return random.Random(int(hashlib.sha256(f"{spec}|{salt}".encode()).hexdigest()[:16], 16))


__all__ = ["F16", "F32", "as_backend", "exact_or_none", "f32_bits", "f32_code", "f32_float", "fixed_rng",
           "float_view", "fvalue", "icode", "icodes", "int_boundary_values", "int_codes", "ival", "pow2_code",
           "random_f32", "random_int", "signed_array", "to_numpy"]
