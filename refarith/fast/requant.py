"""Vectorized requantization kernels (numpy arrays or torch tensors), integer operations only.

Each function matches its exact counterpart in :mod:`refarith.exact.requant` bit for bit (tests compare them
exhaustively or on >= 10^6 seeded inputs; the floor form of SRDHM used here is the theorem
``srdhm_floor_form``).  Computation is in int64 (every intermediate is bounded by 2^62 + 2^61); results are
int32.  A torch input stays on its device; multipliers and shifts may be Python ints or broadcastable arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact.requant import INT32_MAX, INT32_MIN, VARIANTS

Array = Any


class _Numpy:
    name = "numpy"

    def i64(self, x: Array) -> Array:
        return np.asarray(x).astype(np.int64)

    def where(self, c: Array, a: Array, b: Array) -> Array:
        return np.where(c, a, b)

    def pow2(self, e: Array) -> Array:
        return np.left_shift(np.int64(1), np.asarray(e, dtype=np.int64))

    def i32(self, x: Array) -> Array:
        return np.asarray(x).astype(np.int32)

    def clip(self, x: Array, lo: int, hi: int) -> Array:
        return np.clip(x, lo, hi)

    def amin(self, x: Array) -> int:
        return int(np.min(x))

    def amax(self, x: Array) -> int:
        return int(np.max(x))

    def is_int(self, x: Array) -> bool:
        return np.issubdtype(np.asarray(x).dtype, np.integer)


class _Torch:
    name = "torch"

    def __init__(self, torch: Any, device: Any) -> None:
        self.t = torch
        self.device = device

    def i64(self, x: Array) -> Array:
        if isinstance(x, self.t.Tensor):
            return x.to(self.t.int64)
        return self.t.as_tensor(np.asarray(x, dtype=np.int64), device=self.device)

    def where(self, c: Array, a: Array, b: Array) -> Array:
        a = a if isinstance(a, self.t.Tensor) else self.t.tensor(a, dtype=self.t.int64, device=self.device)
        b = b if isinstance(b, self.t.Tensor) else self.t.tensor(b, dtype=self.t.int64, device=self.device)
        return self.t.where(c, a, b)

    def pow2(self, e: Array) -> Array:
        e = self.i64(e)
        return self.t.bitwise_left_shift(self.t.ones_like(e), e)

    def i32(self, x: Array) -> Array:
        return x.to(self.t.int32)

    def clip(self, x: Array, lo: int, hi: int) -> Array:
        return self.t.clamp(x, lo, hi)

    def amin(self, x: Array) -> int:
        return int(x.min()) if isinstance(x, self.t.Tensor) else int(np.min(x))

    def amax(self, x: Array) -> int:
        return int(x.max()) if isinstance(x, self.t.Tensor) else int(np.max(x))

    def is_int(self, x: Array) -> bool:
        if isinstance(x, self.t.Tensor):
            return not (x.is_floating_point() or x.is_complex())
        return np.issubdtype(np.asarray(x).dtype, np.integer)


_NP = _Numpy()


def backend(*xs: Array) -> _Numpy | _Torch:
    """numpy unless one of the arguments is a torch tensor (then torch on that tensor's device)."""
    for x in xs:
        if type(x).__module__.startswith("torch"):
            import torch

            return _Torch(torch, x.device)
    return _NP


def check_range(xp: _Numpy | _Torch, name: str, x: Array, lo: int, hi: int) -> None:
    """Raise BadValueError unless every element of x is an integer in [lo, hi]."""
    if isinstance(x, bool) or (not isinstance(x, int) and not xp.is_int(x)):
        raise BadValueError(f"{name} must hold integers")
    if isinstance(x, int):
        bad = not lo <= x <= hi
    else:
        bad = xp.amin(x) < lo or xp.amax(x) > hi
    if bad:
        raise BadValueError(f"{name} outside [{lo}, {hi}]")


def wrap32(v: Array) -> Array:
    """Two's complement wrap of int64 values to the int32 range (still int64)."""
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


# --------------------------------------------------------------------------- int64-in, int64-out cores
def srdhm64(a: Array, b: Array, xp: _Numpy | _Torch) -> Array:
    """SRDHM on int64 arrays holding int32 values: floor((ab + 2^30) / 2^31), INT32_MIN^2 -> INT32_MAX."""
    r = (a * b + (1 << 30)) >> 31
    return xp.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, r)


def rdbpot64(x: Array, e: Array, xp: _Numpy | _Torch) -> Array:
    """RoundingDivideByPOT on int64 arrays holding int32 values; e an int in [0, 31] or an array of them."""
    if isinstance(e, int):
        return _rdbpot_int(x, e, xp)
    p = xp.pow2(e)
    mask = p - 1
    threshold = (mask >> 1) + xp.where(x < 0, 1, 0)
    return (x >> xp.i64(e)) + xp.where((x & mask) > threshold, 1, 0)


def _rdbpot_int(x: Array, e: int, xp: _Numpy | _Torch) -> Array:
    mask = (1 << e) - 1
    threshold = (mask >> 1) + xp.where(x < 0, 1, 0)
    return (x >> e) + xp.where((x & mask) > threshold, 1, 0)


def srmbp64(x: Array, e: int, xp: _Numpy | _Torch) -> Array:
    """SaturatingRoundingMultiplyByPOT<e> on int64 arrays holding int32 values (e a Python int)."""
    if e == 0:
        return x
    if e < 0:
        return _rdbpot_int(x, -e, xp)
    th = (1 << (31 - e)) - 1
    return xp.where(x > th, INT32_MAX, xp.where(x < -th, INT32_MIN, x << e))


# --------------------------------------------------------------------------- public kernels (int32 results)
def srdhm(a: Array, b: Array) -> Array:
    """gemmlowp SaturatingRoundingDoublingHighMul, elementwise."""
    xp = backend(a, b)
    check_range(xp, "a", a, INT32_MIN, INT32_MAX)
    check_range(xp, "b", b, INT32_MIN, INT32_MAX)
    return xp.i32(srdhm64(xp.i64(a), xp.i64(b), xp))


def rdbpot(x: Array, exponent: Array) -> Array:
    """gemmlowp RoundingDivideByPOT (half away from zero), exponent in [0, 31]."""
    xp = backend(x, exponent)
    check_range(xp, "x", x, INT32_MIN, INT32_MAX)
    check_range(xp, "exponent", exponent, 0, 31)
    e = exponent if isinstance(exponent, int) else xp.i64(exponent)
    return xp.i32(rdbpot64(xp.i64(x), e, xp))


def saturating_rounding_mul_by_pot(x: Array, exponent: int) -> Array:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent>, elementwise; exponent a Python int in [-31, 31]."""
    xp = backend(x)
    check_range(xp, "x", x, INT32_MIN, INT32_MAX)
    if isinstance(exponent, bool) or not isinstance(exponent, int) or not -31 <= exponent <= 31:
        raise BadValueError(f"exponent must be an int in [-31, 31], got {exponent!r}")
    return xp.i32(srmbp64(xp.i64(x), exponent, xp))


def _mult_args(xp, x, m, shift, mlo=INT32_MIN):
    check_range(xp, "x", x, INT32_MIN, INT32_MAX)
    check_range(xp, "multiplier", m, mlo, INT32_MAX)
    check_range(xp, "shift", shift, -31, 30)
    m = m if isinstance(m, int) else xp.i64(m)
    shift = shift if isinstance(shift, int) else xp.i64(shift)
    return xp.i64(x), m, shift


def _max0(xp, s):
    return max(s, 0) if isinstance(s, int) else xp.where(s > 0, s, 0)


def tflite_double_rounding64(x, m, shift, xp):
    ls = _max0(xp, shift)
    rs = _max0(xp, -shift)
    return rdbpot64(srdhm64(wrap32(x << ls), m, xp), rs, xp)


def tflite_single_rounding64(x, m, shift, xp):
    total = 31 - shift
    rnd = (1 << (total - 1)) if isinstance(total, int) else xp.pow2(total - 1)
    return wrap32((x * m + rnd) >> total)


def cmsis_single_rounding64(x, m, shift, xp):
    r = wrap32((x * m) >> (30 - shift))
    return wrap32(r + 1) >> 1


def hawq_sim64(acc, b, c, xp):
    v = acc * b
    q = v >> c
    p = (1 << c) if isinstance(c, int) else xp.pow2(c)
    r = v & (p - 1)
    half = p >> 1
    return q + xp.where((r > half) | ((r == half) & ((q & 1) == 1)), 1, 0)


def hawq_deployed64(acc, b, c, xp):
    return (acc * b) >> c


_K64 = {
    "tflite_double_rounding": tflite_double_rounding64,
    "tflite_single_rounding": tflite_single_rounding64,
    "cmsis_single_rounding": cmsis_single_rounding64,
    "hawq_sim": hawq_sim64,
    "hawq_deployed": hawq_deployed64,
}


def multiply(acc: Array, m: Array, shift: Array, variant: str = "tflite_double_rounding") -> Array:
    """A variant's integer multiply, elementwise: (M, shift) for TFLite/CMSIS, (b, c) for HAWQ; int64 result."""
    if variant not in _K64:
        raise UnknownModeError(f"unknown requantization variant {variant!r}; known: {', '.join(VARIANTS)}")
    xp = backend(acc, m, shift)
    if variant.startswith("hawq"):
        check_range(xp, "acc", acc, INT32_MIN, INT32_MAX)
        check_range(xp, "b", m, 0, 1 << 31)
        check_range(xp, "c", shift, 1, 62)
        m = m if isinstance(m, int) else xp.i64(m)
        shift = shift if isinstance(shift, int) else xp.i64(shift)
        return _K64[variant](xp.i64(acc), m, shift, xp)
    mlo = 0 if variant == "tflite_single_rounding" else INT32_MIN
    x, m, shift = _mult_args(xp, acc, m, shift, mlo)
    return _K64[variant](x, m, shift, xp)


def tflite_double_rounding(x: Array, multiplier: Array, shift: Array) -> Array:
    return backend(x).i32(multiply(x, multiplier, shift, "tflite_double_rounding"))


def tflite_single_rounding(x: Array, multiplier: Array, shift: Array) -> Array:
    return backend(x).i32(multiply(x, multiplier, shift, "tflite_single_rounding"))


def cmsis_single_rounding(x: Array, multiplier: Array, shift: Array) -> Array:
    return backend(x).i32(multiply(x, multiplier, shift, "cmsis_single_rounding"))


def requantize(acc: Array, m: Array, shift: Array, variant: str = "tflite_double_rounding", zero_point: int = 0,
               out_min: int = -128, out_max: int = 127) -> Array:
    """Variant multiply + zero point, clamped to [out_min, out_max]; int32 result (int64 if the range needs it)."""
    xp = backend(acc, m, shift)
    r = xp.clip(multiply(acc, m, shift, variant) + zero_point, out_min, out_max)
    return xp.i32(r) if INT32_MIN <= out_min and out_max <= INT32_MAX else r
