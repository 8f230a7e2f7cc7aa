"""The same operations as refarith.exact, vectorized: numpy, and torch (imported only when asked for).

``encode`` / ``decode`` cast arrays into and out of float formats of at most 16
bits with exactly the semantics of :mod:`refarith.exact.rounding`; see
:mod:`refarith.fast.cast` for the paths and :mod:`refarith.fast.castkernel` for
the bit kernel shared with the Z3 proofs.
"""

from __future__ import annotations

from typing import Any


def encode(x: Any, fmt: Any, rounding: str = "rne", overflow: str | None = None, nan_policy: str = "error",
           negative: str | None = None, rand: Any = None, rand_bits: int | None = None, backend: str = "numpy",
           src: Any = None, subnormal: str | None = None, sr_variant: str = "a") -> Any:
    """Round every element of ``x`` into ``fmt`` once and return the codes (see :func:`refarith.fast.cast.encode`)."""
    from refarith.fast.cast import encode as _encode

    return _encode(x, fmt, rounding=rounding, overflow=overflow, nan_policy=nan_policy, negative=negative, rand=rand,
                   rand_bits=rand_bits, backend=backend, src=src, subnormal=subnormal,
                   sr_variant=sr_variant)


def decode(codes: Any, fmt: Any, backend: str = "numpy", dtype: Any = None) -> Any:
    """Values of ``codes`` of ``fmt`` by table lookup (see :func:`refarith.fast.cast.decode`)."""
    from refarith.fast.cast import decode as _decode

    return _decode(codes, fmt, backend=backend, dtype=dtype)


__all__ = ["decode", "encode"]
