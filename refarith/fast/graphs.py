"""The traced graphs of refarith's bit-level kernels, one per spec (cached).

Each function traces a kernel written against :class:`~refarith.fast.bitops.BitOps`
with its static parameters fixed and returns the :class:`~refarith.fast.trace.Graph`
that both the Z3 theorems and the Triton backend read.
"""

from __future__ import annotations

from functools import lru_cache

from refarith.exact.rounding import default_overflow
from refarith.fast.castkernel import cast_bits, required_width
from refarith.fast.trace import Graph, trace
from refarith.formats import get_format


@lru_cache(maxsize=256)
def cast_graph(src: str, dst: str, rounding: str = "rne", overflow: str | None = None, nan_policy: str = "error",
               negative: str = "error", rand_bits: int | None = None, width: int | None = None,
               sr_variant: str = "a") -> Graph:
    """Graph of :func:`refarith.fast.castkernel.cast_bits` for one cast spec.

    Inputs ``x`` (source bit patterns) and, for ``rounding='sr'``, ``r`` (the k-bit random integers); outputs
    ``(code, error_mask)``.  ``width`` defaults to :func:`~refarith.fast.castkernel.required_width`;
    ``sr_variant`` is the stochastic rule (:mod:`refarith.exact.stochastic`)."""
    sf, df = get_format(src), get_format(dst)
    if overflow is None:
        overflow = default_overflow(df)
    k = rand_bits if rounding == "sr" else None
    v = sr_variant if rounding == "sr" else "a"
    w = width if width is not None else required_width(sf, df, k, v)
    name = f"cast({sf.name}->{df.name},rounding={rounding},overflow={overflow},nan={nan_policy},negative={negative}" \
           + (f",sr={v}" if v != "a" else "") + (f",k={k}" if k is not None else "") + f")@{w}"
    if rounding == "sr":
        return trace(lambda ops, x, r: cast_bits(ops, x, sf, df, rounding, overflow, nan_policy, negative, r, k, v),
                     w, ("x", "r"), name)
    return trace(lambda ops, x: cast_bits(ops, x, sf, df, rounding, overflow, nan_policy, negative), w, ("x",), name)


__all__ = ["cast_graph"]
