"""Vectorized integer dot products with a fixed-width accumulator (numpy or torch), integer operations only.

Bit-for-bit equal to :func:`refarith.exact.intdot.int_dot` over the last axis.  ``wrap``: the int64 sum wrapped
once to the accumulator width -- equal to wrapping after every add because two's complement addition is addition
modulo 2^w.  numpy's int64 sum wraps modulo 2^64 (its documented integer overflow) and 2^w divides 2^64 (w <= 62),
so with numpy every length is exact; torch's int64 sum is C++ signed arithmetic, whose overflow the language leaves
undefined, so with torch the length is checked (K * max|product| + |init| < 2^63, a BadValueError beyond).
The sign extension ((s mod 2^w) xor 2^(w-1)) - 2^(w-1) cannot overflow either.
``saturate``: a sequential loop over the K products, clamping after each add, vectorized over the leading axes.
An ``init`` outside the accumulator's range is refused, as by the exact model.
"""

from __future__ import annotations

from typing import Any

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact.intdot import OVERFLOW, _fmt
from refarith.fast.requant import backend, check_range

Array = Any


def int_dot(a: Array, b: Array, in_fmt: Any = "int8", acc_fmt: Any = "int32", overflow: str = "wrap",
            init: int = 0) -> Array:
    """Dot products along the last axis of a and b (same shape) into an accumulator format; int64 result."""
    fi, fa = _fmt(in_fmt), _fmt(acc_fmt)
    if overflow not in OVERFLOW:
        raise UnknownModeError(f"unknown accumulator overflow {overflow!r}; known: wrap, saturate")
    if fi.bits > 32 or fa.bits > 62:
        raise BadValueError(f"fast int_dot supports inputs up to 32 bits and accumulators up to 62 bits, got "
                            f"{fi} -> {fa}")
    if not fa.min - (1 if fa.symmetric else 0) <= init <= fa.max:
        raise BadValueError(f"int_dot: init {init} does not fit {fa}")
    xp = backend(a, b)
    check_range(xp, "a", a, fi.min, fi.max)
    check_range(xp, "b", b, fi.min, fi.max)
    a64, b64 = xp.i64(a), xp.i64(b)
    if tuple(a64.shape) != tuple(b64.shape):
        raise BadValueError(f"int_dot: shapes {tuple(a64.shape)} and {tuple(b64.shape)} differ")
    p = a64 * b64
    k = int(p.shape[-1])
    if overflow == "wrap":
        if xp.name != "numpy":  # see the module docstring: no int64 overflow outside numpy
            pmax = max(abs(fi.min), abs(fi.max)) ** 2
            if k * pmax + abs(init) >= 1 << 63:  # every partial sum, and the sum with init, stays in int64
                raise BadValueError(f"int_dot: length {k} too long for an exact int64 sum ({xp.name})")
        s = p.sum(-1) + init
        m = (1 << fa.bits) - 1
        if fa.signed:
            h = 1 << (fa.bits - 1)
            return ((s & m) ^ h) - h
        return s & m
    lo, hi = fa.min, fa.max
    acc = p[..., 0] * 0 + init
    for i in range(k):
        acc = xp.clip(acc + p[..., i], lo, hi)
    return acc
