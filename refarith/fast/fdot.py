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
* ``rounding="sr"`` (stochastic rounding of the accumulator, exact products only): addition i, in
  the exact model's evaluation order, takes the k-bit random integer ``rand[..., i]`` (one per
  addition, :func:`refarith.exact.fdot.additions` of them) and rounds the exact sum with the
  variant's rule (:func:`refarith.fast.mx.sr_round_up` on the 53-bit round-to-odd significand).
  Round-to-odd keeps the dropped bits above its last bit exact and that bit sticky, so the rule
  reads exact bits while it needs at most 52 - p bits below the accumulator's p-bit precision:
  k <= 52 - p for variant ``a``, k <= 51 - p for ``b``, ``c`` and ``c_odd`` (one more bit and a
  sticky tie), k = 8 for ``te_e2m1_8`` (E2M1 accumulators).  binary32 accumulators: k <= 28 / 27;
  larger k is refused (the exact model has no bound).

``backend="triton"`` (torch tensors; exact products, vectors of at least one element): the same codes from the
traced graph of :func:`refarith.fast.arithbits.fdot_graph` -- the sum rounded to odd in integer words, then this
module's accumulator rounding (:func:`refarith.fast.lmul.round_scaled` and the stochastic rule) traced as numpy
runs it; the same checks and k bounds.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from refarith.errors import BadValueError, SpecialValueError
from refarith.exact.fdot import MULS, ORDERS, additions
from refarith.exact.rounding import check_modes, default_overflow
from refarith.fast.lmul import Backend, lmul_parts, round_scaled, special_codes
from refarith.formats import FloatFormat, get_format

_B32 = get_format("binary32")
_B64 = get_format("binary64")


@lru_cache(maxsize=64)
def value_table(fmt: FloatFormat) -> np.ndarray:
    """binary64 value of every code of a format of at most 16 bits (exact; binary16 and bfloat16 by numpy's
    exact widening of their bit patterns, the others by the exact model's decode)."""
    from refarith.exact.ops import decode

    if fmt.name in ("binary16", "bfloat16"):
        codes = np.arange(1 << 16, dtype=np.uint32)
        with np.errstate(invalid="ignore"):
            v = codes.astype(np.uint16).view(np.float16).astype(np.float64) if fmt.name == "binary16" else \
                (codes << 16).view(np.float32).astype(np.float64)
        return np.where(np.isnan(v), np.nan, v)  # the exact decode's NaN: sign 0

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
        # _check admits operand and product formats of at most 16 bits or binary32; a binary64 accumulator
        # returns from _add_round before any decode
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

    def encode_exactish(self, z, fmt: FloatFormat, rounding: str, overflow: str, zero_sign, sr_up=None):
        """Codes of binary64 values z (already round-to-odd where needed) rounded once into fmt (``sr_up``: the
        stochastic round-up rule of :func:`refarith.fast.lmul.round_scaled`)."""
        b = self.b
        u = self.bits(z)
        sign = (u >> 63) & 1
        e = (u >> 52) & 0x7FF
        n = (u & ((1 << 52) - 1)) | (1 << 52)
        k = e - 1075
        safe_k = b.where(e == 0, 0, k)
        out = round_scaled(b, sign, n, safe_k, 52, fmt, rounding, overflow, "gradual", sr_up)
        sc = special_codes(fmt)
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


def _add_round(f: _F64, a, p, acc: FloatFormat, rounding: str, overflow: str, sr_up=None):
    """(code, value) of round_acc(a + p) for binary64 arrays holding exact values (``sr_up``: the stochastic
    round-up rule of this addition, :func:`_sr_rule`)."""
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
    code = f.encode_exactish(z, acc, rounding, overflow, zero_sign, sr_up)
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


def sr_max_bits(acc: FloatFormat, variant: str) -> int:
    """Largest k the binary64 path rounds exactly into ``acc`` under ``variant`` (module docstring)."""
    return 52 - acc.precision - (0 if variant == "a" else 1)


def _sr_check(acc: FloatFormat, product: str, rand_bits, sr_variant: str) -> None:
    from refarith.errors import UnknownModeError

    if product != "exact":
        raise UnknownModeError("fast fdot: stochastic rounding applies to the accumulator; use product=exact")
    if acc == _B64:
        raise UnknownModeError("fast fdot: stochastic rounding into binary64 is not supported; use the exact model")
    if isinstance(rand_bits, int) and not isinstance(rand_bits, bool) and sr_variant != "te_e2m1_8" \
            and rand_bits > sr_max_bits(acc, sr_variant):
        raise UnknownModeError(f"fast fdot: rand_bits={rand_bits} exceeds {sr_max_bits(acc, sr_variant)}, the "
                               f"most the binary64 path rounds exactly into {acc.name} under sr variant "
                               f"{sr_variant!r}; use the exact model")


def _sr_rule(xp, r, k: int, variant: str):
    """The round-up rule of one addition with random integers ``r`` for :func:`refarith.fast.lmul.round_scaled`."""
    from refarith.fast.mx import sr_round_up

    return lambda n, d, lo: sr_round_up(n, d, (r, k, variant), lo, xp)


def fdot(x, y, fmt: FloatFormat | str, acc: FloatFormat | str = "binary32", order: str = "sequential",
         product: str = "exact", mul: str = "exact", rounding: str = "rne", overflow: str | None = None,
         backend: str = "numpy", *, rand=None, rand_bits: int | None = None, sr_variant: str = "a"):
    """Dot products over the last axis of two code arrays of ``fmt``, accumulated in ``acc``.

    ``rounding="sr"``: every addition of the accumulator is rounded stochastically, addition i (in evaluation
    order) with ``rand[..., i]`` (k = ``rand_bits``, rule ``sr_variant``); ``rand`` has the shape of x with the
    last axis :func:`refarith.exact.fdot.additions` long.  Returns the accumulator codes (numpy: unsigned
    integers; torch: int64 tensor).
    """
    fmt, acc = get_format(fmt), get_format(acc)
    if order not in ORDERS:
        raise BadValueError(f"unknown summation order {order!r}; expected one of {', '.join(ORDERS)}")
    if mul not in MULS:
        raise BadValueError(f"unknown product kind mul={mul!r}; expected one of {', '.join(MULS)}")
    overflow = overflow or default_overflow(acc)
    check_modes(acc, rounding, overflow)
    _check(fmt, acc, product, "rne" if rounding == "sr" else rounding, backend)
    if rounding == "sr":
        _sr_check(acc, product, rand_bits, sr_variant)
    elif rand is not None:
        from refarith.errors import UnknownModeError

        raise UnknownModeError(f"rand is given but rounding={rounding!r}; random bits apply to rounding='sr' only")
    if backend == "triton":
        if product != "exact" or mul != "exact":
            raise BadValueError("fast fdot on triton: exact products only (product=exact, mul=exact); use numpy "
                                "or torch")
        from refarith.fast import triton_backend

        return triton_backend.fdot(x, y, fmt, acc, order, rounding, overflow, rand, rand_bits, sr_variant)
    with np.errstate(invalid="ignore", over="ignore"):
        return _fdot(x, y, fmt, acc, order, product, mul, rounding, overflow, backend,
                     (rand, rand_bits, sr_variant) if rounding == "sr" else None)


def _fdot(x, y, fmt: FloatFormat, acc: FloatFormat, order: str, product: str, mul: str, rounding: str, overflow: str,
          backend: str, sr: tuple | None = None):
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
    rules = iter(())
    if sr is not None:
        from refarith.fast import blocksr
        from refarith.fast import mx as fmx

        xp = fmx.ops(backend)
        shape = (*tuple(x.shape[:-1]), additions(kdim, order))
        r = blocksr.random_bits(sr[0], shape, sr[1], sr[2], acc.name, xp, x)
        rules = iter([_sr_rule(xp, r[..., i], sr[1], sr[2]) for i in range(shape[-1])])

    def add(a, q, mode=rounding):
        return _add_round(f, a, q, acc, mode, overflow, next(rules, None))

    if kdim == 0:
        code, _ = add(zero, zero, "rne" if sr is not None else rounding)  # an exact +0: no rounding happens
    elif order == "sequential":
        a = zero
        code = None
        for i in range(kdim):
            code, a = add(a, p[..., i])
    else:
        def tree(lo: int, hi: int):
            if hi - lo == 1:
                return None, p[..., lo]
            mid = lo + (hi - lo) // 2
            _, left = tree(lo, mid)
            _, right = tree(mid, hi)
            return add(left, right)

        code, _ = add(zero, p[..., 0]) if kdim == 1 else tree(0, kdim)
    if backend == "numpy":
        from refarith.fast.lmul import _code_dtype

        return np.asarray(code).astype(np.int64).astype(_code_dtype(acc.nbits)) if acc != _B64 else \
            np.asarray(code).view(np.uint64)
    return code


def fdot_spec(spec, x, y, backend: str = "numpy", rand=None):
    """Evaluate an ``fdot(F->A,...)`` spec over the last axis of two code arrays (``rounding=sr``: ``rand``, the
    random integers of :func:`fdot`)."""
    from refarith.spec import parse_spec

    spec = parse_spec(spec)
    if spec.op != "fdot":
        raise BadValueError(f"expected an fdot spec, got {spec}")
    q = spec.param
    sr = dict(rand=rand, rand_bits=int(q["k"]), sr_variant=q.get("sr", "a")) if q["rounding"] == "sr" else {}
    return fdot(x, y, spec.fmt(0), spec.fmt(1), q["order"], q["product"], q["mul"], q["rounding"], q["overflow"],
                backend=backend, **sr)


__all__ = ["fdot", "fdot_spec", "sr_max_bits", "value_table"]
