"""Scaled GEMMs with named accumulator models, vectorized in numpy, bit-exact with :mod:`refarith.exact.gemm`.

Every value is carried in binary64 only where it is exact there:

* Decoded operands and scales: every code of a format of 16 bits or fewer, every binary32, E8M0 and UE4M3 scale is
  a binary64 value, and a * s (at most 11 + 24 significant bits, exponents within [-300, 300]) is exact.
* ``accum=exact``: A' = A * scales and B' = B * scales hold integer multiples of 2^La and 2^Lb (La, Lb: the
  smallest lsb exponents present).  If T = max_ij sum_k |A'_ik B'_kj| < 2^51 * 2^(La + Lb), every partial sum of
  any evaluation order of A' @ B' is an integer multiple of 2^(La + Lb) of magnitude below 2^53 * 2^(La + Lb),
  hence exact in binary64: the BLAS matmul computes the exact sum, whatever its order and blocking (T itself
  is computed in binary64 with a relative error far below the factor 4 of margin).  For FP8 E4M3 without scales,
  La = Lb = -9 and |a b| <= 448^2 < 2^17.7, so T < 2^51 - 36 holds for every K <= 2^15.  Where the bound fails
  (scales or subnormals spanning a wide range) the affected outputs are summed exactly from limbs: a' 2^-La and
  b' 2^-Lb are integers (exact in binary64), split into w-bit limbs with K (2^w - 1)^2 < 2^53 so that every
  limb-product matmul is exact in any order (:func:`_integer_sums`), combined in Python integers.
* Other models need each product p = a' b' exact in binary64: at most 53 significant bits together, checked
  up front (always true for FP8/FP6/FP4 operands with power-of-two or UE4M3 block scales); otherwise
  KernelError.  Each addition is rounded once: s = RN(x + y) and its error (TwoSum) give x + y rounded to odd
  at 53 bits, and rounding that to a format of at most 51 bits equals rounding x + y directly (Boldo and
  Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms using rounding to odd", 2008).
  The epilogue e * S uses Dekker's exact product the same way.
"""

from __future__ import annotations

import contextlib
import math
from fractions import Fraction
from functools import cache

import numpy as np

from refarith.errors import BadValueError, KernelError
from refarith.exact.gemm import block_of, check_operands, model_params, scale_format
from refarith.exact.ops import decode, exact_mul
from refarith.exact.rounding import default_overflow, round_value
from refarith.exact.value import Value
from refarith.formats import FloatFormat, get_format
from refarith.spec import Spec, parse_spec


def _exact_float(v: Value) -> float:
    if v.is_nan:
        return float("nan")
    if v.is_inf:
        return float("-inf") if v.sign else float("inf")
    return -float(v.mag) if v.sign else float(v.mag)  # exact: every value here is a binary64 value


@cache
def _table(name: str) -> np.ndarray:
    """Every code's exact value: from the exact model for 8-bit formats; for wider ones from the fields (sign,
    biased exponent, trailing significand) and the format's NaN/inf codes, spot-checked against the exact
    model."""
    fmt = get_format(name)
    if fmt.nbits <= 8:
        return np.array([_exact_float(decode(c, fmt)) for c in range(fmt.ncodes)], dtype=np.float64)
    c = np.arange(fmt.ncodes, dtype=np.int64)
    m = (c & fmt.mmask).astype(np.float64)
    e = (c >> fmt.mbits) & ((1 << fmt.ebits) - 1)
    sub = (e == 0) if fmt.subnormals else np.zeros(c.shape, bool)
    mag = np.where(sub, np.ldexp(m, 1 - fmt.bias - fmt.mbits),
                   np.ldexp(m + 2.0 ** fmt.mbits, e - fmt.bias - fmt.mbits))
    v = np.where((c & fmt.sign_mask) != 0, -mag, mag) if fmt.signed else mag
    for code in fmt.nan_codes:
        v[code] = np.nan
    pinf, ninf = fmt.inf_codes
    if pinf is not None:
        v[pinf] = np.inf
    if ninf is not None:
        v[ninf] = -np.inf
    for code in list(range(0, fmt.ncodes, 97)) + [fmt.ncodes - 1, fmt.sign_mask, fmt.max_code]:
        x = _exact_float(decode(code, fmt))
        if not (x == v[code] or (np.isnan(x) and np.isnan(v[code]))) or np.signbit(x) != np.signbit(v[code]):
            raise KernelError(f"{fmt.name}: field decoding of code {code:#x} disagrees with the exact model")
    return v


def decode_array(codes: np.ndarray, fmt: FloatFormat | str) -> np.ndarray:
    """Exact binary64 values of codes of a format of at most 16 bits, or of binary32.  Codes must be integers
    in [0, 2^nbits) (BadValueError otherwise: a float array is not truncated, a binary32 code does not wrap)."""
    fmt = get_format(fmt)
    codes = np.asarray(codes)
    if codes.size and codes.dtype.kind not in "iu":
        raise BadValueError(f"{fmt.name} codes must be integers, got an array of dtype {codes.dtype}")
    if fmt.nbits > 16 and fmt.name != "binary32":
        raise BadValueError(f"{fmt.name}: decode_array takes formats of at most 16 bits and binary32")
    if codes.size and (codes.min() < 0 or codes.max() >= fmt.ncodes):
        raise BadValueError(f"codes out of range for {fmt.name}")
    if fmt.name == "binary32":
        return codes.astype(np.uint32).view(np.float32).astype(np.float64)
    return _table(fmt.name)[codes.astype(np.int64)]


@cache
def _encoder(name: str) -> tuple[np.ndarray, np.ndarray, int, int | None, int | None, int | None]:
    fmt = get_format(name)
    tab = _table(name)
    fin = np.isfinite(tab)
    negzero = None
    nz = np.nonzero((tab == 0) & np.signbit(tab))[0]
    if nz.size:
        negzero = int(nz[0])
    keep = fin & ~((tab == 0) & np.signbit(tab))
    all_codes = np.nonzero(keep)[0]
    vals_u, first = np.unique(tab[all_codes], return_index=True)  # one code per value (the smallest)
    vals, codes = list(vals_u), list(all_codes[first])
    order = np.argsort(vals, kind="stable")
    pinf, ninf = fmt.inf_codes if fmt.has_inf else (None, None)
    nan = round_value(Value.nan(0), fmt).code if fmt.has_nan else -1
    return np.array(vals)[order], np.array(codes, dtype=np.int64)[order], nan, pinf, ninf, negzero


def encode_array(x: np.ndarray, fmt: FloatFormat | str) -> np.ndarray:
    """Codes of binary64 values that are values of ``fmt`` (NaN: the canonical NaN of round_value)."""
    fmt = get_format(fmt)
    if fmt.name == "binary32":
        out = x.astype(np.float32).view(np.uint32).astype(np.int64)
        out[np.isnan(x)] = round_value(Value.nan(0), fmt).code
        return out
    vals, codes, nan, pinf, ninf, negzero = _encoder(fmt.name)
    fin = np.isfinite(x)
    idx = np.clip(np.searchsorted(vals, np.where(fin, x, 0.0)), 0, len(vals) - 1)
    out = codes[idx].copy()
    if negzero is not None:
        out[(x == 0) & np.signbit(x)] = negzero
    out[np.isnan(x)] = nan
    if fmt.has_nan:
        out[np.isnan(x) & np.signbit(x)] = fmt.nan_code_with_sign(1)
    if pinf is not None:
        out[x == np.inf] = pinf
        out[x == -np.inf] = ninf
    return out


class _TorchNS:
    """The numpy functions of :func:`round_to`, :func:`round_odd` and :func:`two_sum` on float64 torch tensors:
    the same IEEE 754 binary64 operations, so the same results on any device."""

    def __init__(self) -> None:
        import torch

        self.t = torch
        self.inf = math.inf

    def where(self, c, x, y):
        def tensor(v):
            return v if isinstance(v, self.t.Tensor) else self.t.tensor(float(v), dtype=self.t.float64, device=c.device)

        return self.t.where(c, tensor(x), tensor(y))

    def __getattr__(self, name: str):  # signbit, abs, isfinite, isnan, isinf, frexp, trunc, floor, ceil
        return getattr(self.t, name)

    def rint(self, x):
        return self.t.round(x)  # half to even, as np.rint

    def maximum(self, x, c: int):
        return self.t.clamp(x, min=c)

    def ldexp(self, x, e):
        """x 2^e by a power of two built from its bit fields (exact; 2^e normal here, unlike torch.ldexp's
        integer pow for int32 e)."""
        return x * ((e.to(self.t.int64) + 1023) << 52).view(self.t.float64)

    def full_like(self, x, v: bool, dtype: type = bool):
        return self.t.full_like(x, v, dtype=self.t.bool)

    def copy(self, x):
        return x.clone()

    def errstate(self, **_: str):
        return contextlib.nullcontext()

    def view64(self, x):
        return x.view(self.t.int64)


def _ns(x) -> object:
    """numpy, or the torch shim for a torch tensor."""
    return np if isinstance(x, np.ndarray) else _torch_ns()


@cache
def _torch_ns() -> _TorchNS:
    return _TorchNS()


def round_odd(s: np.ndarray, err: np.ndarray) -> np.ndarray:
    """s + err (s = RN(s + err)) rounded to odd at 53 bits (numpy arrays or float64 torch tensors)."""
    xp = _ns(s)
    with xp.errstate(invalid="ignore"):
        fix = (err != 0) & xp.isfinite(s) & (((s.view(np.int64) if xp is np else xp.view64(s)) & 1) == 0)
    if fix.any():
        s = s.copy() if xp is np else xp.copy(s)
        s[fix] = xp.nextafter(s[fix], xp.where(err[fix] > 0, xp.inf, -xp.inf))
    return s


def two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s = RN(a + b) and the exact error a + b - s (Knuth's TwoSum; err 0 for non-finite s; numpy arrays or float64
    torch tensors)."""
    xp = _ns(a)
    with xp.errstate(invalid="ignore", over="ignore"):
        s = a + b
        bb = s - a
        err = (a - (s - bb)) + (b - bb)
    err = xp.where(xp.isfinite(s), err, 0.0)
    return s, err


def two_prod(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p = RN(a * b) and the exact error (Dekker's product with Veltkamp's splitting; no overflow here)."""
    with np.errstate(invalid="ignore", over="ignore"):
        p = a * b
        c = 134217729.0 * a
        ah = c - (c - a)
        al = a - ah
        c = 134217729.0 * b
        bh = c - (c - b)
        bl = b - bh
        err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    err = np.where(np.isfinite(p), err, 0.0)
    return p, err


def round_to(x: np.ndarray, fmt: FloatFormat | str, rounding: str = "rne", overflow: str | None = None) -> np.ndarray:
    """Round binary64 values (rounded to odd where inexact) into ``fmt`` (precision <= 51 bits, with
    subnormals); binary64 results, the rules of :func:`refarith.exact.rounding.round_value` (numpy arrays, or
    float64 torch tensors on any device)."""
    fmt = get_format(fmt)
    overflow = overflow or default_overflow(fmt)
    if fmt.precision > 51 or not fmt.subnormals:
        raise BadValueError(f"{fmt.name}: the fast GEMM rounds into formats of at most 51 bits with subnormals")
    xp = _ns(x)
    if xp is np and fmt.name == "binary32" and rounding in ("rne", "rtz") and overflow == "inf":
        with np.errstate(over="ignore", invalid="ignore"):
            x32 = x.astype(np.float32)
            if rounding == "rtz":  # RNE went away from zero: step back (inf -> max only for finite x)
                back = (np.abs(x32) > np.abs(x)) & (np.isfinite(x) | np.isnan(x))
                if back.any():
                    x32[back] = np.nextafter(x32[back], np.float32(0))
            return x32.astype(np.float64)
    fmax = float(fmt.max)
    sign = xp.signbit(x)
    ax = xp.abs(x)
    fin = xp.isfinite(x) & (ax > 0)
    _, ex = xp.frexp(xp.where(fin, ax, 1.0))
    qe = xp.maximum(ex - 1 - fmt.mbits, fmt.emin - fmt.mbits)
    y = xp.ldexp(xp.where(fin, ax, 0.0), -qe)
    up = (rounding == "rup") & ~sign | (rounding == "rdn") & sign
    if rounding == "rne":
        n = xp.rint(y)
    elif rounding == "rna":
        n = xp.floor(y + 0.5)
    elif rounding == "rtz":
        n = xp.trunc(y)
    else:
        n = xp.where(up, xp.ceil(y), xp.floor(y))
    r = xp.ldexp(n, qe)
    away = {"rne": True, "rna": True, "rtz": False}.get(rounding)
    away_arr = xp.full_like(x, away, dtype=bool) if away is not None else up
    big = math.inf if overflow == "inf" else (math.nan if overflow == "nan" else fmax)
    ovf = fin & (r > fmax)
    r = xp.where(ovf, xp.where(away_arr, big, fmax), r)
    if overflow == "saturate":
        r = xp.where(xp.isinf(x), fmax, r)
    elif overflow == "nan" or not fmt.has_inf:
        r = xp.where(xp.isinf(x), math.nan if fmt.has_nan else fmax, r)
    else:
        r = xp.where(xp.isinf(x), math.inf, r)
    r = xp.where(ax == 0, 0.0, xp.abs(r))
    r = xp.where(sign, -r, r)  # an overflow NaN keeps the value's sign (round_value's NaN code with that sign)
    return xp.where(xp.isnan(x), math.nan, r)


def _exp_and_trailing_zeros(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the non-zero finite binary64 values of ``x``: frexp's exponent e and the number of trailing zero bits
    of the 53-bit significand (value = odd integer * 2^(e - 53 + tz))."""
    v = x[np.isfinite(x) & (x != 0)]
    m, e = np.frexp(np.abs(v))
    mi = np.ldexp(m, 53).astype(np.int64)
    return e, np.log2((mi & -mi).astype(np.float64)).astype(np.int64)


def _lsb_exp(x: np.ndarray) -> int:
    """Smallest exponent of a lowest set bit among the non-zero finite values (0 if none)."""
    e, tz = _exp_and_trailing_zeros(x)
    return int((e - 53 + tz).min()) if e.size else 0


def _sig_bits(x: np.ndarray) -> int:
    """Largest significand width (bits from the leading to the lowest set bit) among the non-zero finite values."""
    e, tz = _exp_and_trailing_zeros(x)
    return int((53 - tz).max()) if e.size else 0


def _specials(ap: np.ndarray, bp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output: (a NaN product or +inf meets -inf, a +inf product, a -inf product)."""
    f = np.float64
    na, nb = np.isnan(ap), np.isnan(bp)
    ia, ib = np.isinf(ap), np.isinf(bp)
    za, zb = ap == 0, bp == 0
    pa, pb = (ap > 0), (bp > 0)
    ma, mb = (ap < 0), (bp < 0)
    ones_b = np.ones(bp.shape, f)
    ones_a = np.ones(ap.shape, f)
    nan = (na.astype(f) @ ones_b + ones_a @ nb.astype(f) + (ia & True).astype(f) @ zb.astype(f)
           + za.astype(f) @ ib.astype(f)) > 0
    pinf = ((ia & pa).astype(f) @ pb.astype(f) + (ia & ma).astype(f) @ mb.astype(f)
            + pa.astype(f) @ (ib & pb).astype(f) + ma.astype(f) @ (ib & mb).astype(f)) > 0
    ninf = ((ia & pa).astype(f) @ mb.astype(f) + (ia & ma).astype(f) @ pb.astype(f)
            + pa.astype(f) @ (ib & mb).astype(f) + ma.astype(f) @ (ib & pb).astype(f)) > 0
    return nan | (pinf & ninf), pinf, ninf


def _scaled_operands(spec: Spec, a: np.ndarray, b: np.ndarray, scale_a: object, scale_b: object):
    fa, fb = spec.fmt(0), spec.fmt(len(spec.formats) - 2)
    ap = decode_array(a, fa)
    bp = decode_array(b, fb)
    gr = spec.param["scale"]
    if gr in ("block", "mx", "nvfp4"):
        bk = block_of(spec)
        sf = scale_format(spec)
        assert bk is not None and sf is not None
        sa = decode_array(np.asarray(scale_a), sf)
        sb = decode_array(np.asarray(scale_b), sf)
        with np.errstate(invalid="ignore"):
            ap = ap * np.repeat(sa, bk, axis=1)
            sbk = np.repeat(sb, bk, axis=0)
            if gr == "block" and spec.param.get("bscale", "square") == "square":
                sbk = np.repeat(sbk, bk, axis=1)[:, : b.shape[1]]
            bp = bp * sbk
    return ap, bp


def _epilogue(spec: Spec, m: int, n: int, scale_a: object, scale_b: object, tsa: int | None,
              tsb: int | None) -> np.ndarray | None:
    gr = spec.param["scale"]
    if gr == "tensor":
        sf = scale_format(spec)
        e = decode_array(np.asarray([scale_a]), sf)[0] * decode_array(np.asarray([scale_b]), sf)[0]
        return np.full((m, n), e)
    if gr == "row":
        sf = scale_format(spec)
        return np.outer(decode_array(np.asarray(scale_a), sf), decode_array(np.asarray(scale_b), sf))
    if gr == "nvfp4":
        e = decode_array(np.asarray([tsa]), "binary32")[0] * decode_array(np.asarray([tsb]), "binary32")[0]
        return np.full((m, n), e)
    return None


class _Acc:
    """Roundings into the accumulator format, each one exact-then-round.  On numpy arrays, for the formats
    :func:`refarith.fast.gemm_steps.acc_format` takes (at most 32 bits, subnormals) and RNE/RTZ, these are the
    steps :func:`~refarith.fast.gemm_steps.acc_round` and :func:`~refarith.fast.gemm_steps.acc_add`, the code the
    Triton kernels are traced from; otherwise :func:`round_to` after TwoSum and rounding to odd."""

    def __init__(self, fmt: FloatFormat) -> None:
        from refarith.fast import gemm_steps

        self.fmt = fmt
        try:
            self.q: gemm_steps.AccFormat | None = gemm_steps.acc_format(fmt.name)
        except KernelError:
            self.q = None

    def _steps(self, x: object, mode: str) -> bool:
        return self.q is not None and isinstance(x, np.ndarray) and mode in ("rne", "rtz")

    def rnd(self, x: np.ndarray, mode: str = "rne") -> np.ndarray:
        if self._steps(x, mode):
            from refarith.fast.gemm_steps import NP, acc_round

            with np.errstate(all="ignore"):
                return acc_round(NP, x, self.q, mode == "rtz")
        return round_to(x, self.fmt, mode)

    def add(self, x: np.ndarray, y: np.ndarray, mode: str = "rne") -> np.ndarray:
        if mode == "rne" and self._steps(x, mode) and isinstance(y, np.ndarray):
            from refarith.fast.gemm_steps import NP, acc_add

            with np.errstate(all="ignore"):
                return acc_add(NP, x, y, self.q)
        s, e = two_sum(x, y)
        return self.rnd(round_odd(s, e), mode)


class _Acc32:
    """binary32 accumulation of binary32 values: numpy's float32 addition is the IEEE 754 RNE addition."""

    def rnd(self, x: np.ndarray, mode: str = "rne") -> np.ndarray:
        return x

    def add(self, x: np.ndarray, y: np.ndarray, mode: str = "rne") -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):
            return x + y


def _products_fit_binary32(ap: np.ndarray, bp: np.ndarray) -> bool:
    """Every product a' b' is a binary32 value: at most 24 significant bits, lsb at least 2^-149 and magnitude
    below 2^127."""
    fa, fb = np.abs(ap[np.isfinite(ap)]), np.abs(bp[np.isfinite(bp)])
    if not fa.size or not fb.size or not (fa.max() > 0 and fb.max() > 0):
        return True
    return (_sig_bits(ap) + _sig_bits(bp) <= 24 and _lsb_exp(ap) + _lsb_exp(bp) >= -149
            and float(fa.max()) * float(fb.max()) < 2.0 ** 127)


TORCH_MODELS = ("sequential", "fma_chain", "pairwise", "blocked", "split_k", "kahan")
"""Models the torch backend runs into any accumulator format the numpy kernel takes: in float32 arithmetic when the
accumulator is binary32 and the products are binary32 values, otherwise in float64 torch tensors with the numpy
kernel's steps (TwoSum, rounding to odd, :func:`round_to`: the same IEEE binary64 operations).  Besides them it
runs exact, and tensor_core (and its presets) into every accumulator the steps of :mod:`refarith.fast.gemm_steps`
take (binary32, bfloat16, binary16, E5M2, ...), with finite binary64-normal products (:func:`_tensor_core_torch`)."""


def _accumulate(ap: np.ndarray, bp: np.ndarray, model: str, acc: FloatFormat, mp: dict,
                device: str | None = None, triton: bool = False) -> np.ndarray:
    """The accumulator model's sums (binary64 arrays of acc values).  ``device``: run the loop in torch on that
    device (the same code: float32 and float64 + and * are IEEE 754 RNE operations in numpy and torch alike)."""
    A: _Acc | _Acc32 = _Acc(acc)
    f32 = _Acc(get_format("binary32"))
    zero = np.zeros((ap.shape[0], bp.shape[1]))
    fits = model != "tensor_core" and acc.name == "binary32" and _products_fit_binary32(ap, bp)
    if triton:
        if not fits and model != "tensor_core" and acc.name == "binary32":
            raise KernelError("the triton backend needs products that are binary32 values (at most 24 significant "
                              "bits, lsb at least 2^-149); use the numpy or torch backend")
        from refarith.fast.gemm_triton import accumulate

        assert device is not None
        return accumulate(ap, bp, model, mp, device, acc.name)
    if device is not None and model == "tensor_core":
        return _tensor_core_torch(ap, bp, acc, mp, device)
    if device is not None:
        if model not in TORCH_MODELS:
            raise KernelError(f"accum={model}, acc={acc.name}: the torch backend runs {', '.join(TORCH_MODELS)}, "
                              "exact and tensor_core; use the numpy backend")
        import torch

        if fits:
            ta, tb = (torch.from_numpy(x.astype(np.float32)).to(device) for x in (ap, bp))
            out = _accumulate_loops(ta, tb, model, mp, torch.zeros((ap.shape[0], bp.shape[1]), device=device),
                                    _Acc32(), f32)
            return out.cpu().numpy().astype(np.float64)
        ta, tb = (torch.from_numpy(np.ascontiguousarray(x)).to(device) for x in (ap, bp))
        zt = torch.zeros((ap.shape[0], bp.shape[1]), dtype=torch.float64, device=device)
        return _accumulate_loops(ta, tb, model, mp, zt, A, f32).cpu().numpy()
    if fits:
        ap, bp, zero, A = ap.astype(np.float32), bp.astype(np.float32), zero.astype(np.float32), _Acc32()
    return _accumulate_loops(ap, bp, model, mp, zero, A, f32)


def _accumulate_loops(ap, bp, model: str, mp: dict, zero, A, f32):
    """The models' loops over K, on numpy arrays (or, for the binary32 models, torch tensors)."""
    k = ap.shape[1]

    def prod(i: int) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return ap[:, i:i + 1] * bp[i:i + 1, :]

    def chain(lo: int, hi: int, leaves: bool = False) -> np.ndarray:
        s = zero
        for i in range(lo, hi):
            p = prod(i)
            s = A.add(s, A.rnd(p) if leaves else p)
        return s

    if model == "fma_chain":
        return chain(0, k)
    if model == "sequential":
        return chain(0, k, leaves=True)
    if model == "pairwise":
        def tree(lo: int, hi: int) -> np.ndarray:
            if hi - lo == 1:
                return A.rnd(prod(lo))
            mid = lo + (hi - lo) // 2
            return A.add(tree(lo, mid), tree(mid, hi))

        return A.add(zero, tree(0, k))
    if model in ("blocked", "split_k"):
        size = int(mp["nb"]) if model == "blocked" else k // int(mp["splits"])
        total = zero
        for lo in range(0, k, size):
            total = A.add(total, chain(lo, min(lo + size, k)))
        return total
    if model == "kahan":
        s = c = zero
        for i in range(k):
            y = A.add(A.rnd(prod(i)), -c)
            t = A.add(s, y)
            c = A.add(A.add(t, -s), -y)
            s = t
        return s
    if model == "tensor_core":
        g, b, mode, n_c = int(mp["g"]), int(mp["b"]), str(mp["tc_round"]), int(mp["n_c"])
        if (g + 1) << (b + 1) > 1 << 53:
            raise KernelError(f"tensor_core g={g}, b={b}: the fast kernel sums the g + 1 aligned terms exactly in "
                              "binary64 only for (g + 1) 2^(b + 1) <= 2^53")
        normal = _products_normal(ap, bp)
        unit_normal = normal and _units_normal(ap, bp, A, b)
        m, n = zero.shape
        if m * n <= TC_TILE:
            return _tensor_core_tile(ap, bp, zero, A, f32, g, b, mode, n_c, normal, unit_normal)
        # the outputs are independent: the K loop runs per tile of outputs, so that every temporary stays small
        out = np.empty_like(zero)
        tn = min(n, TC_TILE)
        tm = max(1, TC_TILE // tn)
        for r in range(0, m, tm):
            for c in range(0, n, tn):
                out[r:r + tm, c:c + tn] = _tensor_core_tile(ap[r:r + tm], bp[:, c:c + tn], zero[r:r + tm, c:c + tn],
                                                            A, f32, g, b, mode, n_c, normal, unit_normal)
        return out
    raise BadValueError(f"unknown accumulator model {model!r}")


def _units_normal(ap: np.ndarray, bp: np.ndarray, A: _Acc, b: int) -> bool:
    """Every tensor-core group's unit 2^(E - b) is binary64-normal, whatever the group: each non-zero largest
    magnitude is at least the smallest non-zero product |a| |b| or the accumulator's smallest positive value
    (t is an accumulator value), so it suffices that both are at least 2^(b + 1 - 1023).  (Operands finite.)"""
    if A.q is None:
        return False
    xa, xb = np.abs(ap[ap != 0]), np.abs(bp[bp != 0])
    least = 2.0 ** (b + 1 - 1023)
    tiny = math.ldexp(1.0, A.q.emin - A.q.mbits)
    return tiny >= least and (not xa.size or not xb.size or float(xa.min()) * float(xb.min()) >= least)


TC_TILE = 1 << 14
"""Outputs per tile of the numpy tensor-core loop (M x N is cut into tiles of at most this many outputs): every
temporary of a group step is then a few tens of KiB, which the allocator serves from its heap and the cache holds;
temporaries of M x N words for large M x N were mapped and unmapped from the system at every group."""


def _tensor_core_tile(ap: np.ndarray, bp: np.ndarray, zero: np.ndarray, A: _Acc, f32: _Acc, g: int, b: int,
                      mode: str, n_c: int, normal: bool, unit_normal: bool) -> np.ndarray:
    """The tensor_core K loop for the outputs of A' (M x K) times B' (K x N): groups of g products, each by
    :func:`_tc_group_normal` (``normal``: every product binary64-normal or zero; ``unit_normal``: every group's
    alignment unit too) or :func:`_tc_group`; with n_c, the promotion into binary32.  The group's products are
    computed into one buffer, reused."""
    k = ap.shape[1]
    t = f = zero
    buf = np.empty((min(g, k),) + zero.shape)
    for lo in range(0, k, g):
        hi = min(lo + g, k)
        prods = buf[:hi - lo]
        with np.errstate(invalid="ignore"):
            np.multiply(ap[:, lo:hi].T[:, :, None], bp[lo:hi, None, :], out=prods)
        got = _tc_group_normal(t, prods, A, b, mode, unit_normal) if normal else None
        t = got if got is not None else _tc_group(np.concatenate([t[None], prods]), A, b, mode)
        if n_c and (lo + g) % n_c == 0:
            f = f32.add(f, t)
            t = zero
    return f32.add(f, t) if n_c else t


def _tensor_core_torch(ap: np.ndarray, bp: np.ndarray, acc: FloatFormat, mp: dict, device: str) -> np.ndarray:
    """The tensor_core model in torch on ``device``: per group the steps of :mod:`refarith.fast.gemm_steps` that the
    numpy group and the Triton kernel run (tc_max on the products' largest magnitude, tc_unit, tc_term, the exact
    integer sum, tc_finish; acc_add into binary32 for the promotion), on the torch shim, into every accumulator
    :func:`~refarith.fast.gemm_steps.acc_format` takes.  An accumulator that overflows to inf or NaN stays so, as
    in the numpy kernel's general path.  A group with a NaN or infinite product sums its terms in IEEE arithmetic
    instead (the exact model's rule; the finite products, below 2^1000, cannot overflow that sum), and the steps
    run on its finite products.  KernelError for other accumulators and for what
    :func:`~refarith.fast.gemm_steps.tensor_core_fits` names of the finite operands (b < 2, products outside the
    binary64-normal range)."""
    import torch

    from refarith.fast import gemm_steps as S

    g, b, rtz, n_c = int(mp["g"]), int(mp["b"]), mp["tc_round"] == "rtz", int(mp["n_c"])
    q, q32 = S.acc_format(acc.name), S.acc_format("binary32")
    fa, fb = np.isfinite(ap), np.isfinite(bp)
    specials = not (fa.all() and fb.all())
    why = S.tensor_core_fits(np.where(fa, ap, 0.0), np.where(fb, bp, 0.0), g, b)
    if why:
        raise KernelError(f"tensor_core on the torch backend: {why}; use the numpy backend")
    X = S.torch_shim()
    ta, tb = (torch.from_numpy(np.ascontiguousarray(x)).to(device) for x in (ap, bp))
    zero = torch.zeros((ta.shape[0], tb.shape[1]), dtype=torch.float64, device=ta.device)
    t = f = zero
    for lo in range(0, ta.shape[1], g):
        prods = ta[:, lo:lo + g].T[:, :, None] * tb[lo:lo + g, None, :]
        if specials:
            fin = torch.isfinite(prods)
            ieee, nonfinite = t + prods.sum(0), ~fin.all(0)
            prods = torch.where(fin, prods, 0.0)
        scale, inv = S.tc_unit(X, S.tc_max(X, t.abs(), torch.maximum(prods.amax(0), -prods.amin(0))), b)
        # integers below 2^53 ((g + 1) 2^(b + 1) <= 2^53, tensor_core_fits): the sum is exact in any order
        s = S.tc_term(X, t, scale, rtz) + S.tc_term(X, prods, scale[None], rtz).sum(0)
        if specials:
            s = torch.where(nonfinite, ieee, s)  # tc_finish keeps NaN and rounds an infinity as the format does
        t = S.tc_finish(X, s, inv, q, rtz)
        if n_c and (lo + g) % n_c == 0:
            f, t = S.acc_add(X, f, t, q32), zero
    return (S.acc_add(X, f, t, q32) if n_c else t).cpu().numpy()


def _products_normal(ap: np.ndarray, bp: np.ndarray) -> bool:
    """Every product a' b' is finite and zero or binary64-normal (so a group's exponents come from its largest
    magnitude's exponent field)."""
    if not (np.isfinite(ap).all() and np.isfinite(bp).all()):
        return False
    xa, xb = np.abs(ap[ap != 0]), np.abs(bp[bp != 0])
    if not xa.size or not xb.size:
        return True
    return float(xa.min()) * float(xb.min()) >= 2.0 ** -1000 and float(xa.max()) * float(xb.max()) < 2.0 ** 1000


TC_SLICE = 1 << 13
"""Elements (products of a tensor-core group, M x N each) aligned and summed per pass of the numpy kernel: two
temporaries of 64 KiB (with tiles of TC_TILE outputs, one product at a time)."""


def _tc_group_normal(t: np.ndarray, prods: np.ndarray, A: _Acc, b: int, mode: str,
                     unit_normal: bool = False) -> np.ndarray | None:
    """:func:`_tc_group` for finite binary64-normal products and a finite accumulator t (None otherwise): E is the
    exponent field of the largest magnitude; each term times 2^(b - E) is rounded to an integer (exact: a power
    of two scaling), the integers summed exactly (below 2^53), scaled back by 2^(E - b).  Accumulators that
    :func:`refarith.fast.gemm_steps.acc_format` takes run the steps of :func:`refarith.fast.gemm_steps.tc_group`
    (:func:`_tc_group_steps`).  ``unit_normal``: the caller has shown that every group's unit 2^(E - b) is
    binary64-normal.  ``prods`` is overwritten (a temporary of the caller) once the group takes this path."""
    if not np.isfinite(t).all():
        return None
    mx, mn = prods.max(axis=0), prods.min(axis=0)
    np.negative(mn, out=mn)
    np.maximum(mx, mn, out=mx)
    if A.q is not None:
        return _tc_group_steps(t, prods, mx, A.q, b, mode == "rtz", unit_normal)
    np.maximum(mx, np.abs(t), out=mx)
    e = mx.view(np.int64)  # in place: the exponent field of the largest magnitude
    e >>= 52
    e &= 0x7FF
    if not unit_normal and _low_unit(e, b):
        return None
    scale = 2046 + b - e
    np.minimum(scale, 2046, out=scale)
    scale <<= 52
    inv = e - b
    np.maximum(inv, 1, out=inv)
    inv <<= 52
    y = prods  # the caller's temporary: scaled and rounded in place
    y *= scale.view(np.float64)[None]
    yt = t * scale.view(np.float64)
    rint = np.trunc if mode == "rtz" else np.rint
    rint(y, out=y)
    rint(yt, out=yt)
    s = y.sum(axis=0)
    s += yt
    s *= inv.view(np.float64)
    s += 0.0
    return A.rnd(s, mode)


def _low_unit(e: np.ndarray, b: int) -> bool:
    """Some non-zero group maximum (exponent fields ``e``; 0 for an all-zero group) has a binary64-subnormal unit
    2^(E - b)."""
    nz = e != 0
    return bool(nz.any()) and int(e[nz].min()) - b < 1


def _tc_group_steps(t: np.ndarray, prods: np.ndarray, mx: np.ndarray, q: object, b: int, rtz: bool,
                    unit_normal: bool) -> np.ndarray | None:
    """One group by the steps the Triton kernel is traced from (:mod:`refarith.fast.gemm_steps`), on the whole group
    at once: tc_max of |t| and the products' largest magnitude ``mx`` (reduced by the caller; the running maximum
    of tc_group gives the same value), tc_unit, tc_term of t and of each product, their sum (integers below
    2^53: exact in any order, so numpy's reduction gives the chain's value), tc_finish.  None where a unit is
    binary64-subnormal."""
    from refarith.fast.gemm_steps import NP, tc_finish, tc_max, tc_term, tc_unit

    big = tc_max(NP, np.abs(t), mx)
    if not unit_normal and _low_unit(big.view(np.int64) >> 52, b):  # big >= +0: no sign bit
        return None
    scale, inv = tc_unit(NP, big, b)
    with np.errstate(all="ignore"):
        s = tc_term(NP, t, scale, rtz)
        step = TC_SLICE // max(t.size, 1)  # slices of the group: their temporaries stay small
        if step <= 1:
            for p in prods:
                s += tc_term(NP, p, scale, rtz)
        else:
            for i in range(0, len(prods), step):
                s += tc_term(NP, prods[i:i + step], scale[None], rtz).sum(axis=0)
        return tc_finish(NP, s, inv, q, rtz)


def _tc_group(terms: np.ndarray, A: _Acc, b: int, mode: str) -> np.ndarray:
    """One tensor-core group: align to the largest exponent, round to 2^(E - b), sum exactly, round into acc.
    Fast path (every term finite, binary64-normal or zero): exponents and powers of two from the bit fields."""
    if np.isfinite(terms).all():
        ef = (terms.view(np.int64) >> 52) & 0x7FF
        if not ((ef == 0) & (terms != 0)).any():
            e = ef.max(axis=0)
            if int(e[e > 0].min(initial=2047)) - b >= 1:
                scale = (np.minimum(2046 + b - e, 2046) << 52).view(np.float64)
                inv = (np.maximum(e - b, 1) << 52).view(np.float64)
                y = terms * scale[None]
                n = np.trunc(y) if mode == "rtz" else np.rint(y)
                return A.rnd(n.sum(axis=0) * inv + 0.0, mode)
    fin = np.isfinite(terms).all(axis=0)
    nz = np.isfinite(terms) & (terms != 0)
    _, ex = np.frexp(np.where(nz, np.abs(terms), 0.0))
    e = np.where(nz, ex - 1, np.iinfo(np.int32).min // 2).max(axis=0)
    e = np.where(nz.any(axis=0), e, 0)
    y = np.ldexp(np.where(np.isfinite(terms), terms, 0.0), -(e - b)[None])
    n = np.trunc(y) if mode == "rtz" else np.rint(y)
    s = np.ldexp(n.sum(axis=0), e - b) + 0.0
    with np.errstate(invalid="ignore"):
        s = np.where(fin, s, terms.sum(axis=0))
    return A.rnd(s, mode)


def scaled_mm(spec: Spec | str, a: np.ndarray, b: np.ndarray, scale_a: object = None, scale_b: object = None,
              tensor_scale_a: int | None = None, tensor_scale_b: int | None = None, backend: str = "numpy",
              device: str | None = None) -> np.ndarray:
    """D = A @ B under a ``scaled_mm`` spec: int64 codes of the output format, bit-exact with
    :func:`refarith.exact.gemm.scaled_mm` (module docstring: where binary64 is exact).  ``backend="torch"``
    (on ``device``, default cpu) runs the accumulation in torch: the exact sum's binary64 matmul, and the
    :data:`TORCH_MODELS` into any accumulator format, and tensor_core into any accumulator of at most 32 bits with
    subnormals, from the numpy kernel's steps (others: KernelError);
    ``backend="triton"`` runs :data:`refarith.fast.gemm_triton.TRITON_MODELS` (the chain models and pairwise
    into binary32 with products that are binary32 values, or into other formats of at most 32 bits with
    subnormals; tensor_core into any of these with finite products in the binary64-normal range; a cuda device
    compiled, cpu interpreted), its steps traced from :mod:`refarith.fast.gemm_steps`; decoding, scales and the
    output rounding stay numpy."""
    spec = parse_spec(spec)
    if spec.op != "scaled_mm":
        raise BadValueError(f"expected a scaled_mm spec, got {spec}")
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 2 or b.ndim != 2:
        raise BadValueError(f"operands A and B must be 2-D, got shapes {a.shape} and {b.shape}")
    _check_shapes(spec, a, b, scale_a, scale_b, tensor_scale_a, tensor_scale_b)
    m, k = a.shape
    n = b.shape[1]
    out = spec.fmt(len(spec.formats) - 1)
    p = spec.param
    overflow = p.get("overflow") or default_overflow(out)
    model, mp = model_params(spec)
    if backend not in ("numpy", "torch", "triton"):
        raise BadValueError(f"backend {backend!r}: expected numpy, torch or triton")
    dev = (device or "cpu") if backend != "numpy" else None
    if backend == "triton":
        try:
            from refarith.fast.gemm_triton import TRITON_MODELS
        except ImportError as e:
            raise KernelError(f"the triton backend needs Triton and torch ({e})") from None

        if model not in TRITON_MODELS:
            raise KernelError(f"accum={model}: the triton backend runs {', '.join(TRITON_MODELS)}; use the numpy "
                              "or torch backend")
    ap, bp = _scaled_operands(spec, a, b, scale_a, scale_b)
    exact: dict = {}
    if model == "exact":
        s, exact = _exact_sum(ap, bp, _epilogue_scaled(spec), dev)
    else:
        if _sig_bits(ap) + _sig_bits(bp) > 53:
            raise KernelError(f"{spec}: scaled products exceed 53 significant bits; the fast kernel needs them "
                              "exact in binary64 (use refarith.exact.gemm)")
        s = _accumulate(ap, bp, model, get_format(p["acc"]), mp, dev, backend == "triton").astype(np.float64)
    e = _epilogue(spec, m, n, scale_a, scale_b, tensor_scale_a, tensor_scale_b)
    if e is not None:
        hi, lo = two_prod(e, s)
        s = round_odd(hi, lo)
    codes = encode_array(round_to(s, out, p["rounding"], overflow), out)
    if e is not None:  # a rounded-to-odd sum times e is not e times the sum rounded to odd: round e * S exactly
        for (i, j), v in exact.items():
            codes[i, j] = round_value(exact_mul(Value.of(_frac(e[i, j])), v), out, p["rounding"], overflow).code
    return codes


def _exact_sum(ap: np.ndarray, bp: np.ndarray, need_exact: bool = True,
               device: str | None = None) -> tuple[np.ndarray, dict]:
    """The exact sums: binary64 values (rounded to odd where not representable) and, for the outputs that are
    not binary64-exact, their exact Values (for an epilogue scale; only with ``need_exact``).  ``device``: the
    binary64 matmul in torch there (exact in any order where the bound holds)."""
    fa, fb = np.isfinite(ap), np.isfinite(bp)
    a0, b0 = np.where(fa, ap, 0.0), np.where(fb, bp, 0.0)
    la, lb = _lsb_exp(a0), _lsb_exp(b0)
    t = np.abs(a0) @ np.abs(b0)
    if device is None:
        s = a0 @ b0 + 0.0
    else:
        import torch

        s = (torch.from_numpy(a0).to(device) @ torch.from_numpy(b0).to(device)).cpu().numpy() + 0.0
    bad = np.ldexp(t, -(la + lb)) >= 2.0 ** 51
    exact: dict = {}
    if bad.any():
        # outside the binary64-exact range: a0 * 2^-la and b0 * 2^-lb are integers (their binary64 values are
        # exact: only the exponent changes), so each sum is an exact integer times 2^(la + lb), computed from
        # limbs (_integer_sums) and rounded to odd at 53 bits
        rows, cols = np.nonzero(bad)
        ri, ci = np.unique(rows), np.unique(cols)
        pos_r = np.searchsorted(ri, rows)
        pos_c = np.searchsorted(ci, cols)
        ints = _integer_sums(np.ldexp(a0[ri], -la), np.ldexp(b0[:, ci], -lb), pos_r, pos_c)
        unit = Fraction(2) ** (la + lb)
        for i, j, v in zip(rows.tolist(), cols.tolist(), ints):
            s[i, j] = _int_to_odd64(v, la + lb)
            if need_exact:
                exact[(i, j)] = Value.of(v * unit)
    if not (fa.all() and fb.all()):
        nan, pinf, ninf = _specials(ap, bp)
        s = np.where(nan, np.nan, np.where(pinf, np.inf, np.where(ninf, -np.inf, s)))
        exact = {ij: v for ij, v in exact.items() if np.isfinite(s[ij])}
    return s, exact


def _epilogue_scaled(spec: Spec) -> bool:
    return spec.param["scale"] in ("tensor", "row", "nvfp4")


def _limbs(x: np.ndarray, w: int) -> list[np.ndarray]:
    """Integer-valued binary64 ``x`` as signed limbs: x = sum_s limb_s 2^(w s), |limb_s| < 2^w (each step exact:
    floor of a power-of-two multiple, and a difference that is representable)."""
    ax = np.abs(x)
    sgn = np.sign(x)
    top = float(ax.max()) if ax.size else 0.0
    nl = max(1, -(-(int(np.frexp(top)[1]) if top else 1) // w))
    out = []
    for t in range(nl):
        q = np.floor(np.ldexp(ax, -w * t))
        out.append(sgn * (q - np.ldexp(np.floor(np.ldexp(q, -w)), w)))
    return out


def limb_width(k: int) -> int:
    """Limb bits w for sums of k limb products: w = (53 - bitlen(k - 1)) // 2, so k (2^w - 1)^2 < 2^53 (theorem
    gemm.limb_sum_exact)."""
    return (53 - max(k - 1, 1).bit_length()) // 2


def _integer_sums(ai: np.ndarray, bi: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> list[int]:
    """The exact integers sum_k ai[r, k] bi[k, c] for the pairs (rows, cols), ``ai``/``bi`` integer-valued.

    Each operand is split into limbs of w bits with K 2^(2w) <= 2^53, so every partial sum of a limb product
    matmul is an integer below 2^53: the BLAS matmul is exact whatever its order.  Limb products of one weight
    2^(w u) are added in int64 (below 2^63 for fewer than 1024 limbs), and the weights combined in Python
    integers per output."""
    w = limb_width(ai.shape[1])
    la, lb = _limbs(ai, w), _limbs(bi, w)
    if len(la) + len(lb) > 1024:
        raise KernelError("exact GEMM sum: operands span more than 20000 bits")
    qs = [np.zeros(len(rows), np.int64) for _ in range(len(la) + len(lb) - 1)]
    for s_, x in enumerate(la):
        for t, y in enumerate(lb):
            qs[s_ + t] += (x @ y)[rows, cols].astype(np.int64)
    total = qs[-1].tolist()
    for q in reversed(qs[:-1]):
        total = [(acc << w) + v for acc, v in zip(total, q.tolist())]
    return total


def _int_to_odd64(v: int, e: int) -> float:
    """v * 2^e rounded to odd at binary64 precision (exact when it fits)."""
    if v == 0:
        return 0.0
    m = abs(v)
    n = m.bit_length()
    if n > 53:
        sh = n - 53
        q = (m >> sh) | (1 if m & ((1 << sh) - 1) else 0)
    else:
        sh, q = 0, m
    if n + e < -1021:  # below binary64's normal range: the exact model's rounding
        return _to_odd64(Value.of(Fraction(v) * Fraction(2) ** e))
    x = math.ldexp(float(q), sh + e)
    return -x if v < 0 else x


def _frac(x: float) -> Fraction:
    return Fraction(x)


def _to_odd64(v: Value) -> float:
    """An exact value rounded to odd at binary64 precision (so one later rounding to <= 51 bits is exact)."""
    code = round_value(v, "binary64", "rto", "inf").code
    return float(np.array([code], dtype=np.uint64).view(np.float64)[0])


def _check_shapes(spec: Spec, a: np.ndarray, b: np.ndarray, scale_a: object, scale_b: object,
                  tsa: int | None, tsb: int | None) -> None:
    """The exact model's operand checks, on shapes and scale codes only (cheap)."""
    m, k = a.shape
    k2, n = b.shape
    stub_a = [[0] * k] * m if m else []
    stub_b = [[0] * n] * k2 if k2 else []

    def tolist(s: object) -> object:
        return None if s is None else np.asarray(s).tolist()

    check_operands(spec, stub_a, stub_b, tolist(scale_a), tolist(scale_b), tsa, tsb)


__all__ = ["TORCH_MODELS", "decode_array", "encode_array", "limb_width", "round_odd", "round_to", "scaled_mm",
           "two_prod", "two_sum"]
