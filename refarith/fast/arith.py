"""add, sub, mul, div of two codes of one float format, vectorized (numpy and torch), single rounding.

Semantics are :mod:`refarith.exact.ops` (IEEE 754 correctly rounded, the format's overflow and NaN policy).
The operands are decoded to binary64 and combined with one IEEE binary64 operation, whose result is then cast
into the format by :func:`refarith.fast.encode` (the bit kernel the cast theorems prove).  That is one rounding
of the exact result because, for the formats accepted here (signed, p = mbits + 1 <= 25 significand bits and
every value between 2^(emin - mbits) and 2^(emax + 1)):

* sums, differences and products are exact in binary64 (the operands span at most 52 bits; 2p <= 53);
* quotients are rounded twice, to binary64 and then to the format, and that is still one rounding: if q = a/b
  is not itself a number with p + 1 significant bits (a value or a midpoint of the format), then
  |q - g| >= 2^-(2p+1) |q| for every such number g, because a - g*b is a non-zero multiple of a quantum of
  a and g*b; with 2p + 2 <= 53 that gap exceeds binary64's half ulp, so fl64(q) lies strictly on the same side
  of every value and midpoint of the format as q, and every rounding mode (directed, to nearest, to odd) gives
  the same code for fl64(q) as for q.  If q is such a number, fl64(q) = q.
* an exact zero sum of operands of opposite sign is -0 under ``rdn`` and +0 otherwise (IEEE 754 6.3), where
  binary64 arithmetic (round to nearest) always gives +0; the kernel applies the rule.
* a NaN result is the format's NaN with the sign of the first NaN operand (``b`` negated for ``sub``), or
  positive for an invalid operation (0/0, inf - inf, 0 * inf), as in the exact model; hardware NaN signs and
  payloads are not used.

``backend="triton"`` (torch tensors): the same results from the traced integer kernel of
:mod:`refarith.fast.arithbits` (:func:`refarith.fast.triton_backend.arith`).

Unsigned formats (the P3109 ``u`` formats, ``ue4m3``): the same argument; a negative result is cast by the
format's ``negative`` rule and a NaN result is the format's one NaN.  Formats outside that class (bfloat16,
binary32, e8m0) raise BadValueError: they have the exact model only.

Stochastic rounding (``rounding="sr"``, one ``rand_bits``-bit integer per element in ``rand``, the rule
``sr_variant``): sums and products are exact in binary64, so the stochastic cast of the binary64 result is the
exact model's.  A stochastic decision reads K = :func:`refarith.fast.castkernel.sr_fraction_bits` fraction bits
below the ulp plus a tie bit, i.e. where q lies among the numbers of p + K + 1 significant bits; the argument
above with p + K + 1 in place of p + 1 holds when 2p + K + 2 <= 53, which :func:`arith` checks for ``div``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refarith.errors import BadValueError, UnknownModeError
from refarith.formats import FloatFormat, get_format

OPS = ("add", "sub", "mul", "div")


def check_format(fmt: FloatFormat | str) -> FloatFormat:
    """The format, if the binary64 formulation above is a single rounding for it; else BadValueError."""
    f = get_format(fmt) if isinstance(fmt, str) else fmt
    if not isinstance(f, FloatFormat):
        raise BadValueError(f"{f}: the fast add/sub/mul/div kernel needs a float format")
    p = f.mbits + 1
    span = f.emax + 1 - (f.emin - f.mbits)  # bits from 2^(emax+1) down to the smallest subnormal
    if span > 52 or 2 * p + 2 > 53:
        raise BadValueError(f"{f}: sums are not exact in binary64 (span {span} bits) or 2p + 2 > 53; "
                            "exact model only")
    return f


def check_args(op: str, fmt: FloatFormat | str, rounding: str, rand_bits: Any, sr_variant: str) -> FloatFormat:
    """The format of ``a <op> b`` if the fast kernels take the op, the format and (stochastic div) k; else
    UnknownModeError or BadValueError (every backend checks the same way)."""
    if op not in OPS:
        raise UnknownModeError(f"unknown arithmetic op {op!r}; expected one of {', '.join(OPS)}")
    f = check_format(fmt)
    if rounding == "sr" and op == "div" and isinstance(rand_bits, int):
        from refarith.fast.castkernel import sr_fraction_bits

        kb = sr_fraction_bits(rand_bits, sr_variant)
        if 2 * (f.mbits + 1) + kb + 2 > 53:
            raise BadValueError(f"{f}: stochastic div with {kb} fraction bits is not one rounding through binary64 "
                                "(2p + K + 2 > 53); exact model only")
    return f


def _nan_sign(op: str, a, b, x_nan, y_nan, nbits: int, xp, signed: bool = True):
    """Sign bit of a NaN result: the first NaN operand's (b's flipped for sub), else 0 (invalid operation)."""
    if not signed:  # an unsigned format has one NaN; the sign is dropped as the exact model drops it
        return 0 * a
    top = nbits - 1
    sa = (a >> top) & 1
    sb = ((b >> top) & 1) ^ (1 if op == "sub" else 0)
    return xp.where(x_nan, sa, xp.where(y_nan, sb, 0 * sa))


def _combine(op: str, x: Any, y: Any, rounding: str, xp: Any) -> Any:
    """One binary64 operation on decoded operands (``xp`` the numpy or torch module), with IEEE 754's sign of
    an exact zero sum under ``rdn``."""
    if op == "add":
        r = x + y
    elif op == "sub":
        r = x - y
    elif op == "mul":
        r = x * y
    else:
        r = x / y
    if op in ("add", "sub") and rounding == "rdn":
        yy = -y if op == "sub" else y
        both_pos_zero = (x == 0) & (yy == 0) & ~xp.signbit(x) & ~xp.signbit(yy)
        r = xp.where((r == 0) & ~both_pos_zero, -0.0, r)
    return r


def arith(op: str, a: Any, b: Any, fmt: FloatFormat | str, rounding: str = "rne", overflow: str | None = None,
          nan_policy: str = "error", backend: str = "numpy", rand: Any = None, rand_bits: int | None = None,
          sr_variant: str = "a", negative: str | None = None) -> Any:
    """Codes of ``a <op> b`` for code arrays ``a``, ``b`` of ``fmt`` (broadcast), rounded once (``rounding="sr"``:
    ``rand`` the random integers of ``rand_bits`` bits, one per element, ``sr_variant`` the rule).

    Raises SpecialValueError where the exact model raises (an invalid result such as 0/0 or inf - inf into a
    format without NaN under ``nan_policy='error'``); BitPatternError for codes outside the format.
    """
    from refarith import fast

    f = check_args(op, fmt, rounding, rand_bits, sr_variant)
    if backend == "triton":
        from refarith.fast import triton_backend

        return triton_backend.arith(op, a, b, f, rounding, overflow, nan_policy, rand, rand_bits, sr_variant,
                                    negative)
    if backend == "numpy":
        ai, bi = np.broadcast_arrays(np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64))
        x = np.asarray(fast.decode(ai, f), dtype=np.float64)
        y = np.asarray(fast.decode(bi, f), dtype=np.float64)
        with np.errstate(all="ignore"):
            r = _combine(op, x, y, rounding, np)
        nan = np.isnan(r)
        if nan.any():
            neg = _nan_sign(op, ai, bi, np.isnan(x), np.isnan(y), f.nbits, np, f.signed) == 1
            r = np.where(nan, np.where(neg, -np.nan, np.nan), r)
    elif backend == "torch":
        import torch

        ai, bi = torch.broadcast_tensors(torch.as_tensor(a).to(torch.int64), torch.as_tensor(b).to(torch.int64))
        x = fast.decode(ai, f, backend="torch").to(torch.float64)
        y = fast.decode(bi, f, backend="torch").to(torch.float64)
        r = _combine(op, x, y, rounding, torch)
        nan = torch.isnan(r)
        if bool(nan.any()):
            neg = _nan_sign(op, ai, bi, torch.isnan(x), torch.isnan(y), f.nbits, torch, f.signed) == 1
            qnan = torch.full_like(r, float("nan"))
            r = torch.where(nan, torch.where(neg, -qnan, qnan), r)
    else:
        raise UnknownModeError(f"unknown backend {backend!r}; expected numpy, torch or triton")
    from refarith.fast.cast import encode

    return encode(r, f, rounding=rounding, overflow=overflow, nan_policy=nan_policy, negative=negative,
                  backend=backend, rand=rand, rand_bits=rand_bits, sr_variant=sr_variant)


__all__ = ["OPS", "arith", "check_args", "check_format"]
