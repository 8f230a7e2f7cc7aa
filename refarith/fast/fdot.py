"""Dot-product kernels (numpy and torch) with a stated accumulator format and order.

Same semantics as :mod:`refarith.exact.fdot`, vectorised over the leading axes (the last axis is
the reduction axis).  Values are held as binary64, where every input, product and accumulator value
of a supported spec is exact:

* products: x_i * y_i in binary64 is exact when the input format has at most 26 significand bits
  and a product range inside the binary64 normal range (checked); a product format P is applied by
  the integer rounding :func:`refarith.fast.lmul.round_scaled` from that exact product; L-Mul
  products are assembled exactly from integers (ldexp of an integer below 2^25);
* each addition: (s, e) = TwoSum(acc, p) in binary64 gives the exact sum s + e; s is then made
  round-to-odd (stepped one ulp towards e when e != 0 and s is even), and rounded into the
  accumulator by the integer rounding.  Rounding to odd at 53 bits followed by one rounding to at
  most 51 bits equals the single rounding of the exact sum (Boldo & Melquiond, "Emulation of FMA and
  correctly rounded sums: proved algorithms using rounding to odd", IEEE TC 2008), so there is no
  double rounding.  A binary64 accumulator (numpy only, rne only) uses s = RN(acc + p) directly.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from refarith.errors import BadValueError, SpecialValueError
from refarith.exact.fdot import MULS, ORDERS
from refarith.exact.rounding import check_modes, default_overflow
from refarith.fast.lmul import Backend, lmul_parts, round_scaled, special_codes
from refarith.formats import FloatFormat, get_format

_B32 = get_format("binary32")
_B64 = get_format("binary64")


@lru_cache(maxsize=64)
def value_table(fmt: FloatFormat) -> np.ndarray:
    """binary64 value of every code of a format of at most 16 bits (exact)."""
    from refarith.exact.ops import decode

    return np.array([decode(c, fmt).to_float() for c in range(fmt.ncodes)], dtype=np.float64)


def _products_exact_in_f64(fmt: FloatFormat) -> bool:
    return 2 * fmt.precision <= 53 and 2 * (fmt.emin - fmt.mbits) >= -1000 and 2 * (fmt.emax + 1) <= 1000


def _check(fmt: FloatFormat, acc: FloatFormat, product: str, rounding: str, backend: str) -> None:
    if not (fmt.nbits <= 16 or fmt == _B32) or not _products_exact_in_f64(fmt):
        raise BadValueError(f"fast fdot: input format {fmt.name} not supported (formats of at most 16 bits and "
                            "binary32); use the exact model")
    if acc == _B64:
        if backend != "numpy" or rounding != "rne":
            raise BadValueError("fast fdot: a binary64 accumulator is supported with numpy and rounding=rne only")
    elif not (acc.nbits <= 16 or acc == _B32):
        raise BadValueError(f"fast fdot: accumulator {acc.name} not supported; use the exact model")
    if product != "exact":
        pf = get_format(product)
        if not (pf.nbits <= 16 or pf == _B32):
            raise BadValueError(f"fast fdot: product format {pf.name} not supported; use the exact model")


class _F64:
    """binary64 helpers for one backend."""

    def __init__(self, b: Backend) -> None:
        self.b = b

    def decode(self, codes, fmt: FloatFormat):
        b = self.b
        if fmt.nbits <= 16:
            return b.take(b.table(value_table(fmt)), codes)
        if fmt == _B32:
            if b.name == "numpy":
                return codes.astype(np.uint32).view(np.float32).astype(np.float64)
            t = b.t
            c = codes - (codes >= (1 << 31)).to(t.int64) * (1 << 32)
            return c.to(t.int32).view(t.float32).to(t.float64)
        if b.name == "numpy":
            return codes.astype(np.uint64).view(np.float64)
        raise BadValueError(f"cannot decode {fmt.name} in the {b.name} backend")

    def bits(self, v):
        if self.b.name == "numpy":
            return v.view(np.int64)
        return v.view(self.b.t.int64)

    def nextafter(self, s, toward):
        if self.b.name == "numpy":
            return np.nextafter(s, toward)
        return self.b.t.nextafter(s, toward)

    def isnan(self, v):
        return np.isnan(v) if self.b.name == "numpy" else self.b.t.isnan(v)

    def isinf(self, v):
        return np.isinf(v) if self.b.name == "numpy" else self.b.t.isinf(v)

    def signbit(self, v):
        return np.signbit(v) if self.b.name == "numpy" else self.b.t.signbit(v)

    def ldexp(self, n, k):
        if self.b.name == "numpy":
            return np.ldexp(n.astype(np.float64), k.astype(np.int32))
        t = self.b.t
        return n.to(t.float64) * t.pow(t.tensor(2.0, dtype=t.float64), k.to(t.float64))

    def encode_exactish(self, z, fmt: FloatFormat, rounding: str, overflow: str, zero_sign):
        """Codes of binary64 values z (already round-to-odd where needed) rounded once into fmt."""
        b = self.b
        u = self.bits(z)
        sign = (u >> 63) & 1
        e = (u >> 52) & 0x7FF
        n = (u & ((1 << 52) - 1)) | (1 << 52)
        k = e - 1075
        safe_k = b.where(e == 0, 0, k)
        out = round_scaled(b, sign, n, safe_k, 52, fmt, rounding, overflow, "gradual")
        sc = special_codes(fmt, overflow)
        zero = b.where(zero_sign == 1, sc["neg0"], 0)
        out = b.where(z == 0, zero, out)
        inf = self.isinf(z)
        if bool(inf.any()):
            maxc = b.where(sign == 1, fmt.max_code | fmt.sign_mask, fmt.max_code)
            if overflow == "saturate":
                ic = maxc
            elif overflow == "inf":
                ic = b.where(sign == 1, sc["inf1"], sc["inf0"])
            else:
                ic = b.where(sign == 1, sc["nan1"], sc["nan0"])
            out = b.where(inf, ic, out)
        nan = self.isnan(z)
        if bool(nan.any()):
            if not fmt.has_nan:
                raise SpecialValueError(f"NaN cannot be encoded in {fmt.name}, which has no NaN")
            out = b.where(nan, sc["nan0"], out)
        return out


def _add_round(f: _F64, a, p, acc: FloatFormat, rounding: str, overflow: str):
    """(code, value) of round_acc(a + p) for binary64 arrays holding exact values."""
    b = f.b
    s = a + p
    if acc == _B64:
        return f.bits(s), s
    bb = s - a
    e = (a - (s - bb)) + (p - bb)
    fin = ~(f.isnan(s) | f.isinf(s))
    e = b.where(fin, e, 0.0) if b.name == "numpy" else b.t.where(fin, e, b.t.zeros_like(e))
    even = (f.bits(s) & 1) == 0
    step = (e != 0) & even
    toward = b.t.where(e > 0, b.t.full_like(s, float("inf")), b.t.full_like(s, float("-inf"))) \
        if b.name == "torch" else np.where(e > 0, np.inf, -np.inf)
    z = b.t.where(step, f.nextafter(s, toward), s) if b.name == "torch" else np.where(step, f.nextafter(s, toward), s)
    exact_zero = (z == 0) & (e == 0)
    both_zero = (a == 0) & (p == 0)
    sa = f.signbit(a)
    sp = f.signbit(p)
    if rounding == "rdn":
        zs = ~(both_zero & ~sa & ~sp)
    else:
        zs = both_zero & sa & sp
    zero_sign = b.where(exact_zero & zs, 1, 0)
    code = f.encode_exactish(z, acc, rounding, overflow, zero_sign)
    return code, f.decode(code, acc)


def _products(f: _F64, x, y, fmt: FloatFormat, product: str, mul: str, rounding: str):
    b = f.b
    if mul == "exact":
        p = f.decode(x, fmt) * f.decode(y, fmt)
        if product != "exact":
            pf = get_format(product)
            po = default_overflow(pf)
            zs = b.where(f.signbit(p), 1, 0)
            pc = f.encode_exactish(p, pf, rounding, po, zs)
            p = f.decode(pc, pf)
        return p
    sign, n, k, pp, cx, cy, sx, sy = lmul_parts(b, x, y, fmt, mul.removeprefix("lmul_"))
    k = b.where((cx == 1) & (cy == 1), k, 0)
    mag = f.ldexp(n, k)
    val = b.t.where(sign == 1, -mag, mag) if b.name == "torch" else np.where(sign == 1, -mag, mag)
    zero = (cx == 0) | (cy == 0)
    inf = (cx == 2) | (cy == 2)
    nan = (cx == 3) | (cy == 3) | (inf & zero)
    if b.name == "numpy":
        val = np.where(zero, np.where(sign == 1, -0.0, 0.0), val)
        val = np.where(inf, np.where(sign == 1, -np.inf, np.inf), val)
        return np.where(nan, np.nan, val)
    t = b.t
    val = t.where(zero, t.where(sign == 1, t.full_like(val, -0.0), t.zeros_like(val)), val)
    val = t.where(inf, t.where(sign == 1, t.full_like(val, -float("inf")), t.full_like(val, float("inf"))), val)
    return t.where(nan, t.full_like(val, float("nan")), val)


def fdot(x, y, fmt: FloatFormat | str, acc: FloatFormat | str = "binary32", order: str = "sequential",
         product: str = "exact", mul: str = "exact", rounding: str = "rne", overflow: str | None = None,
         backend: str = "numpy"):
    """Dot products over the last axis of two code arrays of ``fmt``, accumulated in ``acc``.

    Returns the accumulator codes (numpy: unsigned integers; torch: int64 tensor).
    """
    fmt, acc = get_format(fmt), get_format(acc)
    if order not in ORDERS:
        raise BadValueError(f"unknown summation order {order!r}; expected one of {', '.join(ORDERS)}")
    if mul not in MULS:
        raise BadValueError(f"unknown product kind mul={mul!r}; expected one of {', '.join(MULS)}")
    overflow = overflow or default_overflow(acc)
    check_modes(acc, rounding, overflow)
    _check(fmt, acc, product, rounding, backend)
    with np.errstate(invalid="ignore", over="ignore"):
        return _fdot(x, y, fmt, acc, order, product, mul, rounding, overflow, backend)


def _fdot(x, y, fmt: FloatFormat, acc: FloatFormat, order: str, product: str, mul: str, rounding: str, overflow: str,
          backend: str):
    b = Backend(backend)
    f = _F64(b)
    x, y = b.int64(x), b.int64(y)
    if tuple(x.shape) != tuple(y.shape):
        raise BadValueError(f"dot product operands differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if bool(((x < 0) | (x >= fmt.ncodes) | (y < 0) | (y >= fmt.ncodes)).any()):
        raise BadValueError(f"{fmt.name}: bit patterns must lie in 0..{fmt.ncodes - 1}")
    p = _products(f, x, y, fmt, product, mul, rounding)
    kdim = p.shape[-1]
    zero = np.zeros(p.shape[:-1]) if backend == "numpy" else b.t.zeros(tuple(p.shape[:-1]), dtype=b.t.float64)
    if kdim == 0:
        code, _ = _add_round(f, zero, zero, acc, rounding, overflow)
    elif order == "sequential":
        a = zero
        code = None
        for i in range(kdim):
            code, a = _add_round(f, a, p[..., i], acc, rounding, overflow)
    else:
        def tree(lo: int, hi: int):
            if hi - lo == 1:
                return None, p[..., lo]
            mid = lo + (hi - lo) // 2
            _, left = tree(lo, mid)
            _, right = tree(mid, hi)
            return _add_round(f, left, right, acc, rounding, overflow)

        code, _ = _add_round(f, zero, p[..., 0], acc, rounding, overflow) if kdim == 1 else tree(0, kdim)
    if backend == "numpy":
        from refarith.fast.lmul import _code_dtype

        return np.asarray(code).astype(np.int64).astype(_code_dtype(acc.nbits)) if acc != _B64 else \
            np.asarray(code).view(np.uint64)
    return code


def fdot_spec(spec, x, y, backend: str = "numpy"):
    """Evaluate an ``fdot(F->A,...)`` spec over the last axis of two code arrays."""
    from refarith.spec import parse_spec

    spec = parse_spec(spec)
    if spec.op != "fdot":
        raise BadValueError(f"expected an fdot spec, got {spec}")
    q = spec.param
    return fdot(x, y, spec.fmt(0), spec.fmt(1), q["order"], q["product"], q["mul"], q["rounding"], q["overflow"],
                backend=backend)


__all__ = ["fdot", "fdot_spec", "value_table"]
