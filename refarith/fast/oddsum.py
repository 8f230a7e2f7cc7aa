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

Stochastic fma (``rounding="sr"``, numpy or torch): the same binary64 value y, the round-to-odd sum, is cast by
the stochastic cast kernel, one random integer per element.  y and the exact sum x agree in their first 52
significant bits, and y's 53rd bit is 1 exactly when some bit of x from the 53rd on is.  A variant's decision
reads n = floor(|x| / ulp), the first K fraction bits below the ulp (K = k, k + 1 for ``b``) and whether the rest
is zero (``a``, ``b``), or the first k + 1 and a sticky bit (the tie of ``c``, ``c_odd``), so the decision on y is
the decision on x when p + k <= 52 (``a``) or p + k + 1 <= 52 (``b``, ``c``, ``c_odd``); in the format's
subnormal range fewer bits lie between x's leading bit and the ulp.  Where every a * b + c is exact in binary64
(:func:`fma_exact_in_binary64`; E2M1, E4M3 and E5M2 among them) there is no bound on k; elsewhere (binary16:
k <= 41 for ``a``, 40 for the others; bfloat16: 44, 43; P3109 formats of wide range) a larger k is refused with
one line (:func:`fma_sr_max_bits`).  ``te_e2m1_8`` is for E2M1, where the sum is exact.

``backend="triton"`` (torch tensors): the same results from the traced integer kernel of
:mod:`refarith.fast.arithbits` (:func:`refarith.fast.triton_backend.fma`), with the same k bound.
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


def fma_exact_in_binary64(f: FloatFormat) -> bool:
    """Whether binary64 holds every a * b + c of ``f`` exactly.  With q = emin - mbits (the last bit of every
    value), a product P has its bits between 2^(2 q) and 2^(2 emax + 1) and c between 2^q and 2^emax.  A sum with a
    product above 2^(emax + 1) has its bits from 2^(2 emax + 2) (the carry) down to 2^q at worst, one with a
    smaller product from 2^(emax + 2) down to 2^(2 q); both spans must be at most 53 bits."""
    q = f.emin - f.mbits
    return max(2 * f.emax + 2 - q, f.emax + 2 - 2 * q) + 1 <= 53


def fma_sr_max_bits(f: FloatFormat, variant: str) -> int | None:
    """Largest k for which the stochastic fma of ``f`` is exact (module docstring); None: no bound."""
    if fma_exact_in_binary64(f):
        return None
    return 52 - (f.mbits + 1) - (0 if variant == "a" else 1)


def check_fma_args(fmt: FloatFormat | str, rounding: str, rand_bits: Any, sr_variant: str) -> FloatFormat:
    """The format of a fast fma if the kernels take it and (stochastic rounding) k; else BadValueError or
    UnknownModeError (every backend checks the same way)."""
    f = check_format(fmt)
    if rounding == "sr" and isinstance(rand_bits, int) and not isinstance(rand_bits, bool):
        cap = fma_sr_max_bits(f, sr_variant)
        if cap is not None and rand_bits > cap:
            raise UnknownModeError(f"fast fma: rand_bits={rand_bits} exceeds {cap}, the most the round-to-odd "
                                   f"binary64 sum rounds exactly into {f.name} under sr variant {sr_variant!r}; "
                                   "use the exact model")
    return f


def _odd_sum_torch(x, y, s):
    """:func:`odd_sum` on torch float64 tensors."""
    import torch

    _, e = two_sum(x, y)
    inexact = torch.isfinite(s) & (e != 0)
    even = (s.view(torch.int64) & 1) == 0
    toward = torch.where(e > 0, torch.full_like(s, float("inf")), torch.full_like(s, float("-inf")))
    return torch.where(inexact & even, torch.nextafter(s, toward), s)


def fma_rto(a: Any, b: Any, c: Any, fmt: FloatFormat | str, rounding: str = "rne", overflow: str | None = None,
            nan_policy: str = "error", *, backend: str = "numpy", rand: Any = None, rand_bits: int | None = None,
            sr_variant: str = "a") -> Any:
    """Codes of ``a * b + c`` for code arrays of ``fmt`` (numpy, or torch with ``backend="torch"``), rounded once:
    IEEE 754 fusedMultiplyAdd; ``rounding="sr"``: ``rand`` one ``rand_bits``-bit integer per element (broadcast
    with the codes), ``sr_variant`` the rule.  Raises where the exact model raises; BitPatternError for codes
    outside the format; UnknownModeError for a k beyond :func:`fma_sr_max_bits`."""
    from refarith import fast
    from refarith.fast.cast import encode

    f = check_fma_args(fmt, rounding, rand_bits, sr_variant)
    if backend == "triton":
        from refarith.fast import triton_backend

        return triton_backend.fma(a, b, c, f, rounding, overflow, nan_policy, rand, rand_bits, sr_variant)
    if backend == "numpy":
        xp = np
        ai, bi, ci = np.broadcast_arrays(*(np.asarray(v).astype(np.int64) for v in (a, b, c)))
        x, y, z = (np.asarray(fast.decode(v, f), dtype=np.float64) for v in (ai, bi, ci))
        with np.errstate(all="ignore"):
            p = x * y
            r = odd_sum(p, z, _combine("add", p, z, rounding, np))
    elif backend == "torch":
        import torch

        xp = torch
        ai, bi, ci = torch.broadcast_tensors(*(torch.as_tensor(v).to(torch.int64) for v in (a, b, c)))
        x, y, z = (fast.decode(v, f, backend="torch").to(torch.float64) for v in (ai, bi, ci))
        p = x * y
        r = _odd_sum_torch(p, z, _combine("add", p, z, rounding, torch))
    else:
        raise UnknownModeError(f"unknown backend {backend!r}; expected numpy, torch or triton")
    nan = xp.isnan(r)
    if bool(nan.any()):
        top = f.nbits - 1
        zero = 0 * ai
        sign = xp.where(xp.isnan(x), ai >> top, xp.where(xp.isnan(y), bi >> top,
                                                         xp.where(xp.isnan(z) & ~xp.isnan(p), ci >> top, zero))) & 1
        qnan = xp.full_like(r, float("nan"))
        r = xp.where(nan, xp.where(sign == 1, -qnan, qnan), r)
    if rounding != "sr":
        return encode(r, f, rounding=rounding, overflow=overflow, nan_policy=nan_policy, backend=backend)
    if backend == "torch" and rand is not None:
        rand = torch.broadcast_to(torch.as_tensor(rand).to(torch.int64), tuple(r.shape))
    elif rand is not None:
        rand = np.broadcast_to(np.asarray(rand), r.shape)
    return encode(r, f, rounding="sr", overflow=overflow, nan_policy=nan_policy, backend=backend, rand=rand,
                  rand_bits=rand_bits, sr_variant=sr_variant)


__all__ = ["arith_rto", "check_fma_args", "check_format", "fma_exact_in_binary64", "fma_rto", "fma_sr_max_bits",
           "odd_sum", "two_sum"]
