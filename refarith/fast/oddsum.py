"""add, sub, mul, div of two codes of a float format whose sums binary64 cannot hold exactly (bfloat16), vectorized.

Semantics are :mod:`refarith.exact.ops` (IEEE 754 correctly rounded, the format's overflow and NaN policy), as in
:mod:`refarith.fast.arith`, which needs every sum to be exact in binary64.  Here the operands are decoded to
binary64 and combined once; a sum that binary64 rounds is replaced by its **round-to-odd** value: TwoSum gives the
exact error e of s = fl64(x + y) (exact without overflow), and when e != 0 and s has an even last significand bit,
s is moved one binary64 ulp towards e.  That is the binary64 number with an odd last bit next to the exact sum,
on the same side of it as every number of 51 or fewer significant bits.  Rounding to odd at p + k bits followed
by rounding to p bits gives the direct rounding to p bits in every mode (RNE, RNA, RTZ, RUP, RDN, round to odd)
when k >= 2 (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms using rounding
to odd", IEEE Trans. Computers 57(4), 2008); here p <= 24 and 53 bits hold p + 2.  In the target's subnormal
range the target's quantum (2^-133 for bfloat16) is far coarser than binary64's there, so the same holds.
Products are exact in binary64 (2p <= 53) and quotients are one rounding by the argument of
:mod:`refarith.fast.arith` (2p + 2 <= 53).  The result is cast into the format by :func:`refarith.fast.encode`.
The sign of an exact zero sum under ``rdn`` and NaN signs follow :mod:`refarith.fast.arith`.

:func:`fma_rto` is the fused multiply-add a * b + c by the same argument: the product is exact in binary64
(2p <= 53 and the check below keeps it in the normal range), the sum is rounded to odd, the result is encoded
once.  NaN results: the first NaN operand's sign (a, b, then c), and a positive NaN for an invalid 0 * inf or
inf - inf, as :func:`refarith.exact.ops.fma`.

Accepted formats: signed floats with p = mbits + 1 <= 24 whose values lie within binary64's normal range
(bfloat16, binary16, the 8-bit formats); BadValueError otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refarith.errors import BadValueError, UnknownModeError
from refarith.fast.arith import OPS, _combine, _nan_sign
from refarith.formats import FloatFormat, get_format


def check_format(fmt: FloatFormat | str) -> FloatFormat:
    """The format if the round-to-odd formulation above applies to it; else BadValueError."""
    f = get_format(fmt) if isinstance(fmt, str) else fmt
    if not isinstance(f, FloatFormat) or not f.signed:
        raise BadValueError(f"{f}: the round-to-odd add/sub/mul/div kernel needs a signed float format")
    if f.mbits + 1 > 24 or 2 * (f.emax + 1) > 1023 or 2 * (f.emin - f.mbits) < -1022:
        raise BadValueError(f"{f}: p > 24, or products leave binary64's normal range; exact model only")
    return f


def two_sum(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(s, e): s = fl64(x + y) and the exact error e = (x + y) - s (Knuth's TwoSum; finite x, y, no overflow)."""
    s = x + y
    bb = s - x
    return s, (x - (s - bb)) + (y - bb)


def odd_sum(x: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``s`` (= fl64(x + y), its zero sign already decided) replaced by the round-to-odd binary64 value of x + y
    where the sum is inexact."""
    _, e = two_sum(x, y)
    inexact = np.isfinite(s) & (e != 0)
    even = (s.view(np.int64) & 1) == 0
    toward = np.where(e > 0, np.inf, -np.inf)
    return np.where(inexact & even, np.nextafter(s, toward), s)


def arith_rto(op: str, a: Any, b: Any, fmt: FloatFormat | str, rounding: str = "rne", overflow: str | None = None,
              nan_policy: str = "error") -> np.ndarray:
    """Codes of ``a <op> b`` for code arrays ``a``, ``b`` of ``fmt`` (numpy), rounded once (deterministic modes).

    Raises SpecialValueError where the exact model raises; BitPatternError for codes outside the format."""
    from refarith import fast
    from refarith.fast.cast import encode

    if op not in OPS:
        raise UnknownModeError(f"unknown arithmetic op {op!r}; expected one of {', '.join(OPS)}")
    if rounding == "sr":
        raise BadValueError("arith_rto: stochastic rounding is not covered by the round-to-odd argument")
    f = check_format(fmt)
    ai, bi = np.broadcast_arrays(np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64))
    x = np.asarray(fast.decode(ai, f), dtype=np.float64)
    y = np.asarray(fast.decode(bi, f), dtype=np.float64)
    with np.errstate(all="ignore"):
        r = _combine(op, x, y, rounding, np)
        if op in ("add", "sub"):
            r = odd_sum(x, -y if op == "sub" else y, r)
    nan = np.isnan(r)
    if nan.any():
        neg = _nan_sign(op, ai, bi, np.isnan(x), np.isnan(y), f.nbits, np) == 1
        r = np.where(nan, np.where(neg, -np.nan, np.nan), r)
    return encode(r, f, rounding=rounding, overflow=overflow, nan_policy=nan_policy)


def fma_rto(a: Any, b: Any, c: Any, fmt: FloatFormat | str, rounding: str = "rne", overflow: str | None = None,
            nan_policy: str = "error") -> np.ndarray:
    """Codes of ``a * b + c`` for code arrays of ``fmt`` (numpy), rounded once (deterministic modes): IEEE 754
    fusedMultiplyAdd.  Raises where the exact model raises; BitPatternError for codes outside the format."""
    from refarith import fast
    from refarith.fast.cast import encode

    if rounding == "sr":
        raise BadValueError("fma_rto: stochastic rounding is not covered by the round-to-odd argument")
    f = check_format(fmt)
    ai, bi, ci = np.broadcast_arrays(*(np.asarray(v).astype(np.int64) for v in (a, b, c)))
    x, y, z = (np.asarray(fast.decode(v, f), dtype=np.float64) for v in (ai, bi, ci))
    with np.errstate(all="ignore"):
        p = x * y
        r = odd_sum(p, z, _combine("add", p, z, rounding, np))
    nan = np.isnan(r)
    if nan.any():
        top = f.nbits - 1
        sign = np.where(np.isnan(x), ai >> top, np.where(np.isnan(y), bi >> top,
                                                         np.where(np.isnan(z) & ~np.isnan(p), ci >> top, 0))) & 1
        r = np.where(nan, np.where(sign == 1, -np.nan, np.nan), r)
    return encode(r, f, rounding=rounding, overflow=overflow, nan_policy=nan_policy)


__all__ = ["arith_rto", "check_format", "fma_rto", "odd_sum", "two_sum"]
