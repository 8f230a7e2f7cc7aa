"""OCP MX block quantization, vectorized with integer bit manipulation (numpy and torch).

Same bits as :mod:`refarith.exact.mx` (its docstring states the semantics and the
sources).  The scale exponent comes from the binary32 exponent field of the
block's largest magnitude (an integer max over the magnitude bits, which also
finds NaN and infinity: their bit patterns are the largest); a subnormal amax
is normalized through the exact integer-to-binary32 conversion of its
mantissa.  Elements are never divided in floating point.  Float elements
(numpy and torch): V/X is the binary32 pattern of V with e subtracted from its
exponent field, so its code is one gather from the binary32 -> element
sticky-key table built by the proved cast kernel (:func:`key_codes`; the key
of V/X is key(V) - (e << 8)); the arithmetic path below serves MXINT8 and
the rare chunks with a binary32 subnormal in a block of exponent <= 0: each
binary32 significand N (24 bits) is shifted right by the exact number of bits
the element keeps below its quantum, and the dropped bits decide the rounding
(round bit and sticky), so V/X is rounded exactly once even when it is a
binary32 subnormal.  The only floating operation is ``rceil``'s
fl32(amax / max_elem), an IEEE binary32 division, which numpy and torch round
to nearest even (the exact model rounds it with round_value(..., "binary32")).

The element encoder :func:`encode_scaled` is shared with NVFP4 and the integer
quantizers: it rounds V * 2^-e into any element format of at most 8 bits.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import mx as _mx
from refarith.formats import FloatFormat, IntFormat, get_format

CHUNK = 1 << 16  # numpy elements per pass: keeps the intermediates of a chunk in cache
TORCH_CHUNK = 1 << 22  # torch on a device: fewer, larger passes (per-call overhead dominates small chunks)
TORCH_CPU_CHUNK = 1 << 20  # torch on CPU: intermediates stay in cache and their allocations are reused


def chunk_elements(xp, like) -> int:
    """Elements per pass of the block kernels: numpy CHUNK, torch TORCH_CPU_CHUNK on CPU, TORCH_CHUNK on a
    device."""
    if xp.name == "numpy":
        return CHUNK
    return TORCH_CPU_CHUNK if like.device.type == "cpu" else TORCH_CHUNK


# ------------------------------------------------------------------ backend shim
class _NumpyOps:
    name = "numpy"

    @staticmethod
    def i32(x):
        return x.view(np.int32) if x.dtype == np.float32 else x.astype(np.int32)

    @staticmethod
    def float_bits(x):
        return np.ascontiguousarray(x, dtype=np.float32).view(np.int32)

    @staticmethod
    def to_f32(i):
        return i.astype(np.float32)

    @staticmethod
    def f32_from_bits(i):
        return i.astype(np.int32).view(np.float32)

    where = staticmethod(np.where)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)

    @staticmethod
    def amax(x, axis):
        return x.max(axis=axis)

    @staticmethod
    def u8(x):
        return x.astype(np.uint8, copy=False)

    @staticmethod
    def take(table, idx):
        return np.take(table, idx)

    @staticmethod
    def anyof(m) -> bool:
        return bool(m.any())


class _TorchOps:
    name = "torch"

    def __init__(self) -> None:
        import torch

        self.t = torch

    def i32(self, x):
        return x.view(self.t.int32) if x.dtype == self.t.float32 else x.to(self.t.int32)

    def float_bits(self, x):
        return x.to(self.t.float32).contiguous().view(self.t.int32)

    def to_f32(self, i):
        return i.to(self.t.float32)

    def f32_from_bits(self, i):
        return i.to(self.t.int32).view(self.t.float32)

    def where(self, c, a, b):
        t = self.t
        if not isinstance(a, t.Tensor):
            a = t.tensor(a, dtype=t.int32, device=c.device)
        if not isinstance(b, t.Tensor):
            b = t.tensor(b, dtype=t.int32, device=c.device)
        return t.where(c, a, b)

    def maximum(self, a, b):
        t = self.t
        return t.maximum(a, b if isinstance(b, t.Tensor) else t.tensor(b, dtype=a.dtype, device=a.device))

    def minimum(self, a, b):
        t = self.t
        return t.minimum(a, b if isinstance(b, t.Tensor) else t.tensor(b, dtype=a.dtype, device=a.device))

    def amax(self, x, axis):
        return self.t.amax(x, dim=axis)

    def u8(self, x):
        return x.to(self.t.uint8)

    def take(self, table, idx):
        t = self.t
        return t.index_select(table, 0, idx.reshape(-1)).reshape(idx.shape)

    def anyof(self, m) -> bool:
        return bool(m.any())


_OPS: dict[str, object] = {"numpy": _NumpyOps()}


def ops(backend: str):
    """The bit-operation shim of a backend (``numpy`` or ``torch``)."""
    if backend not in ("numpy", "torch"):
        raise UnknownModeError(f"unknown fast backend {backend!r}; expected numpy or torch")
    if backend not in _OPS:
        _OPS[backend] = _TorchOps()
    return _OPS[backend]


# ------------------------------------------------------------------ binary32 fields
def split_f32(bits, xp):
    """(sign, exponent field E', significand N) of binary32 bit patterns (int32), value = N * 2^(E' - 150).

    Normals: N = 2^23 | f.  Subnormals are normalized exactly (N in [2^23, 2^24),
    E' <= 0) using the exact conversion of the 23-bit mantissa to binary32.
    Zeros give N = 0, E' = 0.
    """
    sign = (bits >> 31) & 1
    mag = bits & 0x7FFFFFFF
    ef = mag >> 23
    f = mag & 0x7FFFFF
    n = f | 0x800000
    sub = (ef == 0) & (f != 0)
    if xp.anyof(sub):
        fl = (xp.i32(xp.to_f32(f)) >> 23) - 127  # floor(log2 f), exact: f < 2^24 converts exactly
        fl = xp.maximum(fl, 0)
        n = xp.where(sub, f << (23 - fl), n)
        ef = xp.where(sub, fl - 22, ef)
    n = xp.where((ef == 0) & (f == 0), 0, n)
    return sign, ef, n


def floor_log2_f32(mag_bits, xp):
    """floor(log2 |x|) of non-negative finite binary32 magnitudes (int32 bits); -1000 for zero."""
    _, ef, n = split_f32(mag_bits, xp)
    return xp.where(n == 0, -1000, ef - 127)


# ------------------------------------------------------------------ binary32 arithmetic on integers
# Single binary32 operations (x * y, x / y, x + y, n * y), correctly rounded to nearest even with IEEE 754
# special cases, computed with 64-bit integer and bit operations only.  numpy's float32 operations are IEEE
# operations and give the same bits (the tests compare the two on random, boundary, subnormal and special
# operands); the torch kernels use these so that they never depend on a device's float unit (flush-to-zero,
# fast-math division), except NVFP4's element products on chunks where every IEEE 754 multiply agrees
# (:func:`refarith.fast.nvfp4._scale_elements`).
F32_INF, F32_QNAN = 0x7F800000, 0x7FC00000


def _i64(x, xp):
    if xp.name == "numpy":
        return np.asarray(x).astype(np.int64)
    return x.to(xp.t.int64)


def _to_i32(x, xp):
    """int64 values in [-2^31, 2^31) as int32 (exact)."""
    if xp.name == "numpy":
        return x.astype(np.int32)
    return x.to(xp.t.int32)


def bit_length64(n, xp):
    """Bit length of non-negative int64 values below 2^62 (0 for 0), by a binary search over shifts."""
    length = n * 0
    for s in (32, 16, 8, 4, 2, 1):
        length = xp.where((n >> (length + s)) != 0, length + s, length)
    return xp.where(n != 0, length + 1, 0)


def f32_round(sign, n, e, sticky, xp, top: int | None = None):
    """binary32 bits (int32) of (-1)^sign * (n + t) * 2^e, 0 <= t < 1, sticky = (t > 0): round to nearest even,
    overflow to infinity, ±0 when the result rounds to zero.

    Requires 0 <= n < 2^61 (int64) and, wherever ``sticky`` is set, at least one bit of n below the binary32
    quantum of the result (the callers keep guard bits), so that t only breaks ties.  ``top``: the caller knows
    that every n that matters is 0 or in [2^(top-1), 2^(top+1)), so its bit length is found by one comparison.
    """
    length = bit_length64(n, xp) if top is None else xp.where((n >> top) != 0, top + 1, top)
    d = xp.maximum(length - 24, -149 - e)  # bits of n below the quantum (negative: n needs no rounding)
    dn = xp.minimum(xp.maximum(d, 0), 62)
    m = xp.where(d < 0, n << xp.maximum(-d, 0), n >> dn)
    rem = n & ((n * 0 + 1 << dn) - 1)
    half = (n * 0 + 1 << dn) >> 1
    up = (dn > 0) & ((rem > half) | ((rem == half) & ((sticky != 0) | ((m & 1) == 1))))
    m = m + up
    # value m * 2^(e + d): a subnormal has e + d = -149; a normal m in [2^23, 2^24] carries into the exponent
    bits = ((e + xp.minimum(d, 62) + 149) << 23) + m
    bits = xp.where(m == 0, 0, xp.minimum(bits, F32_INF))
    return _to_i32(bits - (_i64(sign, xp) << 31), xp)


def _f32_parts(bits, xp):
    """(sign, exponent, significand, nan, inf, zero) of binary32 bits: value = n * 2^(e - 150), n in [2^23, 2^24)
    for finite non-zero values (subnormals normalized), int64."""
    mag = bits & 0x7FFFFFFF
    sign, ef, n = split_f32(bits, xp)
    nan = mag > F32_INF
    inf = mag == F32_INF
    zero = mag == 0
    return _i64(sign, xp), _i64(ef, xp), _i64(n, xp), nan, inf, zero


def _f32_special(out, sign, nan, inf, xp):
    out = xp.where(inf, _to_i32(F32_INF - (_i64(sign, xp) << 31), xp), out)
    return xp.where(nan, F32_QNAN, out)


def f32_mul(a, b, xp, known_length: bool = False):
    """Bits of the binary32 product fl(a * b) of binary32 bit patterns (int32), with integer operations only.

    ``known_length``: the significand product (0 or in [2^46, 2^48)) gets its bit length from one comparison
    instead of a binary search; the same bits in fewer operations."""
    sa, ea, na, nana, infa, zeroa = _f32_parts(a, xp)
    sb, eb, nb, nanb, infb, zerob = _f32_parts(b, xp)
    sign = sa ^ sb
    out = f32_round(sign, na * nb, ea + eb - 300, sign * 0, xp, 47 if known_length else None)
    nan = nana | nanb | (infa & zerob) | (zeroa & infb)
    return _f32_special(out, sign, nan, infa | infb, xp)


def f32_div(a, b, xp, known_length: bool = False):
    """Bits of the binary32 quotient fl(a / b) of binary32 bit patterns (int32), with integer operations only.

    ``known_length``: the integer quotient (0 or in (2^25, 2^27) wherever the result is not overridden by a
    special case) gets its bit length from one comparison instead of a binary search; the same bits."""
    sa, ea, na, nana, infa, zeroa = _f32_parts(a, xp)
    sb, eb, nb, nanb, infb, zerob = _f32_parts(b, xp)
    sign = sa ^ sb
    num = na << 26
    den = xp.where(nb == 0, 1, nb)
    q = num // den
    r = num - q * den
    # q >= 2^25: two guard bits above the sticky remainder
    out = f32_round(sign, q, ea - eb - 26, r, xp, 26 if known_length else None)
    out = xp.where(zeroa | infb, _to_i32(-(sign << 31), xp), out)
    nan = nana | nanb | (zeroa & zerob) | (infa & infb)
    return _f32_special(out, sign, nan, infa | zerob, xp)


def f32_add_magnitudes(a, b, xp):
    """Bits of fl(|a| + |b|) for finite binary32 bit patterns (int32), with integer operations only."""
    _, ea, na, _, _, _ = _f32_parts(a & 0x7FFFFFFF, xp)
    _, eb, nb, _, _, _ = _f32_parts(b & 0x7FFFFFFF, xp)
    ea = xp.where(na == 0, -1000, ea)
    eb = xp.where(nb == 0, -1000, eb)
    swap = eb > ea
    hi_e, lo_e = xp.where(swap, eb, ea), xp.where(swap, ea, eb)
    hi_n, lo_n = xp.where(swap, nb, na), xp.where(swap, na, nb)
    sh = xp.minimum(hi_e - lo_e, 40)
    big = hi_n << 3
    small = lo_n << 3
    part = small >> sh
    sticky = (part << sh) != small
    return f32_round(hi_n * 0, big + part, hi_e - 153, sticky, xp)


def f32_scale_int(k, s_bits, xp):
    """Bits of fl(k * s) for integers |k| < 2^37 (int64) and finite binary32 s (int32), integer operations only."""
    ss, es, ns, _, _, _ = _f32_parts(s_bits, xp)
    k = _i64(k, xp)
    sign = (k < 0) ^ (ss == 1)
    mag = xp.where(k < 0, -k, k)
    return f32_round(_i64(sign, xp), mag * ns, es - 150, mag * 0, xp)


# ------------------------------------------------------------------ the element encoder
def _round_up(n, rem, half, sign, rounding: str, xp):
    if rounding == "rne":
        return (rem > half) | ((rem == half) & (half > 0) & ((n & 1) == 1))
    if rounding == "rna":
        return (rem >= half) & (half > 0)
    if rounding == "rtz":
        return rem < 0
    if rounding == "rup":
        return (rem > 0) & (sign == 0)
    if rounding == "rdn":
        return (rem > 0) & (sign == 1)
    if rounding == "rto":
        return (rem > 0) & ((n & 1) == 0)
    raise UnknownModeError(f"unknown element rounding {rounding!r}")


SR_MAX_BITS = 60
"""Largest k of the stochastic element rounding of the block kernels: the decision's integers stay below 2^(k+2)
in int64 words."""


def _floor_frac64(rem, d, kk, xp):
    """floor(rem * 2^kk / 2^d) (int64, 0 <= rem < 2^min(d, 24), d >= 0 unclamped, kk an int or int64 array)."""
    right = rem >> xp.minimum(xp.maximum(d - kk, 0), 62)
    return xp.where(d >= kk, right, rem << xp.maximum(kk - d, 0))


def sr_round_up(n_sig, d, sr, c_lo, xp):
    """Stochastic round-up decision (:func:`refarith.exact.stochastic.round_up`) of the magnitude n_sig * 2^-d
    (n_sig < 2^24, d the unclamped number of dropped bits; d <= 0: exact, never up), with ``sr`` = (r, k,
    variant), r int64 words below 2^k, one per element.  ``c_lo``: the element code below (``te_e2m1_8``
    only: its binary32 offset 2^-j, j = 17, 16, 15 for the neighbours 0.5, 1 and above)."""
    r, k, variant = sr
    n = _i64(n_sig, xp)
    d = xp.maximum(_i64(d, xp), 0)
    dc = xp.minimum(d, 62)
    rem = n - ((n >> dc) << dc)
    if variant == "a":  # floor(frac * 2^k) + r >= 2^k
        up = _floor_frac64(rem, d, k, xp) + r >= 1 << k
    elif variant == "b":  # floor(frac * 2^(k+1)) + 2r + 1 >= 2^(k+1)
        up = _floor_frac64(rem, d, k + 1, xp) + 2 * r + 1 >= 1 << (k + 1)
    elif variant in ("c", "c_odd"):  # RNITE / RNITO(frac * 2^k) + r >= 2^k
        t = _floor_frac64(rem, d, k, xp)
        sh = xp.minimum(xp.maximum(d - k, 0), 62)
        below = rem - (t << sh)
        half = (rem * 0 + 1) << xp.maximum(sh - 1, 0)
        tie_up = (t & 1) == (1 if variant == "c" else 0)
        inc = (d > k) & ((below > half) | ((below == half) & tie_up))
        up = t + inc + r >= 1 << k
    elif variant == "te_e2m1_8":  # floor(frac * 2^(k+j)) + r * 2^j + 1 >= 2^(k+j)
        c_lo = _i64(c_lo, xp)
        j = xp.where(c_lo == 0, 17, xp.where(c_lo == 1, 16, 15))
        up = _floor_frac64(rem, d, j + k, xp) + (r << j) + 1 >= (rem * 0 + 1) << (j + k)
    else:
        raise UnknownModeError(f"unknown stochastic rounding variant {variant!r}")
    return up & (rem != 0)


def encode_scaled(sign, ef, n_sig, shift, fmt: FloatFormat | IntFormat, rounding: str, xp, neg_limit=None,
                  sr=None):
    """Codes of round(V * 2^-shift) in ``fmt`` (saturating), V = (-1)^sign * N * 2^(E' - 150).

    ``fmt`` is a float format of at most 8 bits without special handling of
    inf/NaN inputs (the callers route those), or an integer format (the
    integer counts units of 1).  ``shift`` broadcasts against the elements.
    ``rounding="sr"``: stochastic rounding of the magnitude with ``sr`` = (r, k, variant)
    (:func:`sr_round_up`), r broadcasting against the elements.
    """
    if isinstance(fmt, IntFormat):
        qe = 0
        d_raw = qe - ef + 150 + shift
    else:
        emin, mb = fmt.emin, fmt.mbits
        fl = ef - 127 - shift
        qe = xp.maximum(fl, emin) - mb
        d_raw = qe - ef + 150 + shift
    d = xp.minimum(xp.maximum(d_raw, 0), 26)
    n = n_sig >> d
    if rounding == "sr":
        c_lo = None if isinstance(fmt, IntFormat) else ((qe + mb - emin) << mb) + n
        up = sr_round_up(n_sig, d_raw, sr, c_lo, xp)
    else:
        rem = n_sig & ((1 << d) - 1)
        half = xp.where(d > 0, 1 << xp.maximum(d - 1, 0), 0)
        up = _round_up(n, rem, half, sign, rounding, xp)
    n = n + up
    if isinstance(fmt, IntFormat):
        pos_lim = fmt.max
        neg_lim = -fmt.min if neg_limit is None else neg_limit
        lim = xp.where(sign == 1, neg_lim, pos_lim)
        mag = xp.minimum(n, lim)
        return xp.where(sign == 1, (-mag) & ((1 << fmt.bits) - 1), mag)
    code = ((qe + mb - emin) << mb) + n
    code = xp.where(n == 0, 0, code)
    code = xp.minimum(code, fmt.max_code)
    if fmt.signed:
        code = code | (sign << (fmt.nbits - 1))
    return code


# ------------------------------------------------------------------ block scale
def scale_exponent(mag_bits, fmt, rule: str, xp):
    """Clamped E8M0 exponents from per-block amax magnitude bits (finite blocks)."""
    em = _mx.emax_elem(fmt)
    _, ef, n = split_f32(mag_bits, xp)
    zero = n == 0
    fl = ef - 127
    if rule == "floor":
        e = fl - em
    elif rule == "floor_half":
        e = fl - em - 1
    elif rule == "ceil":
        e = fl + (n != 0x800000) - em
    elif rule == "even":
        p = 7 if isinstance(fmt, IntFormat) else fmt.mbits + 1
        e = fl + (n >= (1 << 24) - (1 << (23 - p))) - em
    elif rule == "rceil":
        mx = _mx.elem_max(fmt)
        amax = xp.f32_from_bits(mag_bits)
        d = amax / _f32_const(mx, xp, amax)
        _, efd, nd = split_f32(xp.i32(d), xp)
        e = (efd - 127) + (nd != 0x800000)
        zero = zero | (nd == 0)
    else:
        raise UnknownModeError(f"unknown MX scale rule {rule!r}; expected one of {', '.join(_mx.SCALE_RULES)}")
    e = xp.minimum(xp.maximum(e, _mx.E8M0_MIN), _mx.E8M0_MAX)
    return xp.where(zero, _mx.E8M0_MIN, e)


def _f32_const(v: Fraction, xp, like):
    f = np.float32(float(v))
    assert Fraction(float(f)) == v
    if xp.name == "numpy":
        return f
    return xp.t.tensor(float(f), dtype=xp.t.float32, device=like.device)


# ------------------------------------------------------------------ array front end
def _to_blocks(x, axis: int, block: int, xp, dtype: str = "float32"):
    """Move ``axis`` last, pad it with zeros to a multiple of ``block``: (rows, nblocks, block) view (of
    ``dtype``: float32, or int64 for random integers)."""
    if xp.name == "numpy":
        a = np.moveaxis(np.asarray(x, dtype=dtype), axis, -1)
        shape = a.shape
        n = shape[-1]
        nb = -(-n // block)
        a2 = a.reshape(-1, n)
        if nb * block != n:
            a2 = np.concatenate([a2, np.zeros((a2.shape[0], nb * block - n), dtype)], axis=1)
        return np.ascontiguousarray(a2).reshape(-1, nb, block), shape
    t = xp.t
    tdt = getattr(t, dtype)
    a = t.movedim(x.to(tdt), axis, -1)
    shape = tuple(a.shape)
    n = shape[-1]
    nb = -(-n // block)
    a2 = a.reshape(-1, n)
    if nb * block != n:
        a2 = t.cat([a2, t.zeros((a2.shape[0], nb * block - n), dtype=tdt, device=a2.device)], dim=1)
    return a2.contiguous().reshape(-1, nb, block), shape


def _from_blocks(c, shape, axis: int, xp):
    n = shape[-1]
    if xp.name == "numpy":
        c = c.reshape(c.shape[0], -1)[:, :n].reshape(shape)
        return np.moveaxis(c, -1, axis)
    c = c.reshape(c.shape[0], -1)[:, :n].reshape(shape)
    return xp.t.movedim(c, -1, axis)


def _scales_shape(s, shape, axis: int, xp):
    s = s.reshape(*shape[:-1], s.shape[-1])
    if xp.name == "numpy":
        return np.moveaxis(s, -1, axis)
    return xp.t.movedim(s, -1, axis)


def _normalize_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise BadValueError(f"axis {axis} out of range for an array of {ndim} dimensions")
    return axis % ndim


def quantize_blocks(blocks_bits, fmt, scale: str, rounding: str, xp, sr=None):
    """(scale codes (rows, nb), element codes (rows, nb, block)) from int32 bits (rows, nb, block); ``sr`` = (r,
    k, variant) for ``rounding="sr"``, r int64 of the shape of the bits (:func:`sr_round_up`)."""
    mag = blocks_bits & 0x7FFFFFFF
    amax = xp.amax(mag, -1)
    special = amax >= 0x7F800000
    e = scale_exponent(xp.where(special, 0, amax), fmt, scale, xp)
    if isinstance(fmt, FloatFormat) and rounding != "sr":
        codes = key_codes(blocks_bits, mag, e, fmt, rounding, xp)
        if codes is not None:
            if xp.anyof(special):
                codes = xp.where(special[..., None], 0, codes)
            scodes = xp.where(special, _mx.E8M0_NAN, e + _mx.E8M0_BIAS)
            return xp.u8(scodes), xp.u8(codes)
    sign, ef, n = split_f32(blocks_bits, xp)
    shift = e[..., None]
    if isinstance(fmt, IntFormat):
        shift = shift - _mx.MXINT_FRAC_BITS
    codes = encode_scaled(sign, ef, n, shift, fmt, rounding, xp, sr=sr)
    codes = xp.where(special[..., None], 0, codes)
    scodes = xp.where(special, _mx.E8M0_NAN, e + _mx.E8M0_BIAS)
    return xp.u8(scodes), xp.u8(codes)


# ------------------------------------------------------------------ element codes by the sticky-key table
def _elem_table(fmt: FloatFormat, rounding: str, xp, like):
    """Codes of round_value(binary32 key representative, fmt, rounding, "saturate") for every binary32 sticky key
    (:func:`refarith.fast.cast.key_table`, built by the proved cast kernel; NaN keys give code 0), as a numpy array
    or a torch tensor on the device of ``like``."""
    from refarith.exact.rounding import default_negative
    from refarith.fast.cast import key_table

    tab = key_table(fmt, rounding, "saturate", "zero", default_negative(fmt))[0]
    if xp.name == "numpy":
        return tab
    from refarith.fast.cast import _torch_code_table

    return _torch_code_table(tab, str(like.device))


def sticky_key32(bits):
    """The binary32 sticky key (bits >> 16) << 1 | (low 16 bits != 0) of int32 patterns (numpy or torch), as in
    :func:`refarith.fast.cast.sticky_keys`; the mask undoes the sign copies of the arithmetic shift."""
    k = bits & 0x7FFF
    k += 0x7FFF
    k |= bits
    k >>= 15
    k &= 0x1FFFF
    return k


def key_codes(bits, mag, e, fmt: FloatFormat, rounding: str, xp):
    """Element codes round(V / 2^e) in ``fmt`` (saturating) of binary32 bits (int32, shape (..., block)) with
    magnitude bits ``mag`` and block exponents ``e`` (shape (...)), by one gather from the binary32 -> ``fmt``
    sticky-key table; None when a block with e <= 0 holds a nonzero binary32 subnormal (the arithmetic path).

    V / 2^e is the binary32 pattern bits - (e << 23) when its exponent field stays >= 1 (the block's amax bounds it
    above, so it never overflows); the sticky key of that pattern is key(bits) - (e << 8), since e << 23 has no
    bits below bit 23.  Otherwise |V / 2^e| < 2^-126, below half the smallest subnormal of every MX element
    format, so V / 2^e rounds as any nonzero value of its sign below 2^-126 does (the pattern sign | 1), and a
    zero stays the zero of its sign.
    """
    ee = e if xp.name == "numpy" else e.to(xp.t.int32)
    if xp.name == "numpy":
        ee = ee.astype(np.int32, copy=False)
    thresh = (xp.maximum(ee, 0) << 23) + 0x800000
    under = mag < thresh[..., None]
    if xp.anyof(under):
        if xp.anyof(under & (mag != 0) & (ee <= 0)[..., None]):
            return None
        tiny = (bits & -0x80000000) | (mag != 0)
        src = xp.where(under, tiny, bits - (ee << 23)[..., None])
        key = sticky_key32(src)
    else:
        key = sticky_key32(bits)
        key -= (ee << 8)[..., None]
    return xp.take(_elem_table(fmt, rounding, xp, bits), key)


def check_mx_args(element: str, block: int, scale: str, rounding: str) -> FloatFormat | IntFormat:
    """The element format of an MX setting; a bad element, block size, scale rule or element rounding is one
    :class:`~refarith.errors.BadValueError` / :class:`~refarith.errors.UnknownModeError` naming it."""
    fmt = _mx.mx_element(element)
    if not isinstance(block, int) or isinstance(block, bool) or block < 1:
        raise BadValueError(f"block size must be a positive integer, got {block!r}")
    if scale not in _mx.SCALE_RULES:
        raise UnknownModeError(f"unknown MX scale rule {scale!r}; expected one of {', '.join(_mx.SCALE_RULES)}")
    if rounding not in _mx.ELEMENT_ROUNDING:
        raise UnknownModeError(f"unknown element rounding {rounding!r}; expected one of "
                               f"{', '.join(_mx.ELEMENT_ROUNDING)}")
    return fmt


def mx_quantize(x, element: str, axis: int = -1, block: int = 32, scale: str = "floor", rounding: str = "rne",
                backend: str = "numpy", *, rand=None, rand_bits: int | None = None, sr_variant: str = "a"):
    """(scales uint8 E8M0 codes, element codes uint8) of a float32 array quantized along ``axis``.

    ``scales`` has the shape of ``x`` with ``axis`` replaced by the number of
    blocks ceil(n / block); ``codes`` has the shape of ``x``.  ``backend="triton"`` runs
    :func:`refarith.fast.triton_blocks.mx_quantize` (torch tensors in and out; the same bits).
    ``rounding="sr"``: :func:`refarith.fast.blocksr.mx_quantize_sr` with ``rand`` (one integer of ``rand_bits``
    bits per element) and ``sr_variant``; random bits given to another rounding are an error.
    """
    if rounding == "sr":
        from refarith.fast.blocksr import mx_quantize_sr

        return mx_quantize_sr(x, element, rand, rand_bits, sr_variant, axis, block, scale, backend)
    if rand is not None:
        raise UnknownModeError(f"rand is given but rounding={rounding!r} is not stochastic (rounding='sr')")
    fmt = check_mx_args(element, block, scale, rounding)
    if backend == "triton":
        from refarith.fast import triton_blocks

        return triton_blocks.mx_quantize(x, element, axis, block, scale, rounding)
    xp = ops(backend)
    ndim = len(x.shape)
    if ndim == 0:
        raise BadValueError("mx_quantize needs an array with at least one dimension")
    axis = _normalize_axis(axis, ndim)
    blocks, shape = _to_blocks(x, axis, block, xp)
    bits = xp.i32(blocks)
    s, c = blockwise(lambda b: quantize_blocks(b, fmt, scale, rounding, xp), bits, xp)
    return _scales_shape(s, shape, axis, xp), _from_blocks(c, shape, axis, xp)


def blockwise(fn, bits, xp, aux=None):
    """(scales (rows, nb), codes (rows, nb, block)) of ``fn`` applied to chunks of whole blocks of ``bits``
    (rows, nb, block), :func:`chunk_elements` at a time, written into preallocated uint8 results: a long row
    is split too, so no temporary grows with the input beyond the results.  ``aux``: an array of the shape of
    ``bits`` (the random integers of stochastic rounding) whose matching chunk ``fn`` takes second."""
    rows, nb, bs = bits.shape
    total = rows * nb
    step = max(1, chunk_elements(xp, bits) // max(1, bs))
    if total <= step:
        return fn(bits) if aux is None else fn(bits, aux)
    flat = bits.reshape(total, 1, bs)
    if aux is not None:
        aux = aux.reshape(total, 1, bs)
    if xp.name == "numpy":
        s_out, c_out = np.empty((total, 1), np.uint8), np.empty((total, 1, bs), np.uint8)
    else:
        s_out = xp.t.empty((total, 1), dtype=xp.t.uint8, device=bits.device)
        c_out = xp.t.empty((total, 1, bs), dtype=xp.t.uint8, device=bits.device)
    for i in range(0, total, step):
        s, c = fn(flat[i:i + step]) if aux is None else fn(flat[i:i + step], aux[i:i + step])
        s_out[i:i + step] = s
        c_out[i:i + step] = c
    return s_out.reshape(rows, nb), c_out.reshape(rows, nb, bs)


def element_lut(fmt) -> np.ndarray:
    """float32 value of every element code (MXINT8: integer / 64); exact."""
    from refarith.exact.ops import decode

    if isinstance(fmt, IntFormat):
        return np.array([fmt.value(c) / 64.0 for c in range(256)], dtype=np.float32)
    return np.array([decode(c, fmt).to_float() for c in range(fmt.ncodes)], dtype=np.float32)


def scale_values_f32(scodes, xp):
    """binary32 value 2^(s-127) of E8M0 codes (s = 0 gives the subnormal 2^-127; 0xFF gives NaN)."""
    s = xp.i32(scodes)
    bits = xp.where(s == 0, 0x00400000, s << 23)
    bits = xp.where(s == 0xFF, 0x7FC00000, bits)
    return xp.f32_from_bits(bits)


def mx_dequantize(scales, codes, element: str, axis: int = -1, block: int = 32, backend: str = "numpy"):
    """float32 values X * P_i (exact: every such product is a binary32 number).  ``backend="triton"`` runs
    :func:`refarith.fast.triton_blocks.mx_dequantize` (torch tensors in and out; the same bits)."""
    fmt = _mx.mx_element(element)
    if backend == "triton":
        from refarith.fast import triton_blocks

        return triton_blocks.mx_dequantize(scales, codes, element, axis, block)
    xp = ops(backend)
    ndim = len(codes.shape)
    axis = _normalize_axis(axis, ndim)
    lut = element_lut(fmt)
    if xp.name == "numpy":
        vals = lut[np.asarray(codes)]
        v = np.moveaxis(vals, axis, -1)
        s = np.moveaxis(np.asarray(scales), axis, -1)
        sv = np.repeat(scale_values_f32(s, xp), block, axis=-1)[..., :v.shape[-1]]
        return np.moveaxis(v * sv, -1, axis)
    t = xp.t
    vals = xp.take(t.as_tensor(lut, device=codes.device), codes.to(t.int32))
    v = t.movedim(vals, axis, -1)
    s = t.movedim(scales, axis, -1)
    sv = t.repeat_interleave(scale_values_f32(s, xp), block, dim=-1)[..., :v.shape[-1]]
    return t.movedim(v * sv, -1, axis)


def element_format(element: str) -> FloatFormat | IntFormat:
    return _mx.mx_element(element)


__all__ = ["check_mx_args", "encode_scaled", "get_format", "mx_dequantize", "mx_quantize", "ops", "scale_exponent",
           "split_f32"]
