"""Vectorized gemmlowp/TFLite fixed-point nonlinearities (numpy or torch), integer operations only.

Bit-for-bit equal to :mod:`refarith.exact.fixedpoint` (exhaustive tests over int16-scaled inputs, seeded
random int32 raws otherwise).  Raws are held in int64 and wrapped to int32 where the C++ adds wrap.
"""

from __future__ import annotations

from typing import Any

from refarith.errors import BadValueError
from refarith.exact import fixedpoint as ex
from refarith.exact.requant import INT32_MAX, INT32_MIN
from refarith.fast.requant import _rdbpot_int, backend, check_range, rdbpot64, srdhm64, srmbp64, wrap32

Array = Any


def _exp_quarter(a, xp):
    x = wrap32(a + (1 << 28))
    x2 = srdhm64(x, x, xp)
    x3 = srdhm64(x2, x, xp)
    x4 = srdhm64(x2, x2, xp)
    x4_over_4 = _rdbpot_int(x4, 2, xp)
    poly = _rdbpot_int(wrap32(srdhm64(wrap32(x4_over_4 + x3), ex.ONE_THIRD, xp) + x2), 1, xp)
    return wrap32(ex.EXP_MINUS_ONE_EIGHTH + srdhm64(ex.EXP_MINUS_ONE_EIGHTH, wrap32(x + poly), xp))


def _exp_neg(a, ib, xp):
    frac = 31 - ib
    quarter = 1 << (frac - 2)
    a_mod = wrap32((a & (quarter - 1)) - quarter)
    result = _exp_quarter(srmbp64(a_mod, ib, xp), xp)
    remainder = wrap32(a_mod - a)
    for k, mult in ex.EXP_BARREL:
        if ib > k:
            result = xp.where((remainder & (1 << (frac + k))) != 0, srdhm64(result, mult, xp), result)
    if ib > 5:
        result = xp.where(a < -(1 << (36 - ib)), 0, result)
    return xp.where(a == 0, ex.ONE_F0, result)


def _recip_half(a, xp):
    s = a + ex.ONE_F0
    n = s + xp.where(s >= 0, 1, -1)
    half_den = xp.where(n >= 0, n >> 1, -((-n) >> 1))
    x = wrap32(ex.C_48_OVER_17 + srdhm64(half_den, ex.C_NEG_32_OVER_17, xp))
    for _ in range(3):
        one_minus = wrap32(ex.ONE_F2 - srdhm64(half_den, x, xp))
        x = wrap32(x + srmbp64(srdhm64(x, one_minus, xp), 2, xp))
    return x


def _one_over(a, xp):
    return srmbp64(_recip_half(a, xp), 1, xp)


def _one_minus_over(a, xp):
    return srmbp64(wrap32(_recip_half(a, xp) - ex.ONE_F2), 2, xp)


def _prep(a, ib, hi):
    xp = backend(a)
    check_range(xp, "a", a, INT32_MIN, INT32_MAX)
    if not isinstance(ib, int) or not 0 <= ib <= hi:
        raise BadValueError(f"integer_bits={ib!r} outside [0, {hi}]")
    return xp, xp.i64(a)


def exp_on_negative_values(a: Array, integer_bits: int) -> Array:
    """gemmlowp exp_on_negative_values on FixedPoint<int32, integer_bits> raws; int32 raws with 0 integer bits."""
    xp, a = _prep(a, integer_bits, 29)
    return xp.i32(_exp_neg(a, integer_bits, xp))


def one_over_one_plus_x_for_x_in_0_1(a: Array) -> Array:
    xp, a = _prep(a, 0, 0)
    return xp.i32(_one_over(a, xp))


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: Array) -> Array:
    xp, a = _prep(a, 0, 0)
    return xp.i32(_one_minus_over(a, xp))


def logistic(a: Array, integer_bits: int) -> Array:
    """gemmlowp logistic on FixedPoint<int32, integer_bits> raws."""
    xp, a = _prep(a, integer_bits, 29)
    abs_in = xp.where(a > 0, a, wrap32(-a))
    pos = _one_over(_exp_neg(wrap32(-abs_in), integer_bits, xp), xp)
    r = xp.where(a > 0, pos, wrap32(ex.ONE_F0 - pos))
    return xp.i32(xp.where(a == 0, 1 << 30, r))


def tanh(a: Array, integer_bits: int) -> Array:
    """gemmlowp tanh on FixedPoint<int32, integer_bits> raws."""
    xp, a = _prep(a, integer_bits, 28)
    n = xp.where(a < 0, a, wrap32(-a))
    t = _one_minus_over(_exp_neg(n, integer_bits + 1, xp), xp)
    r = xp.where(a < 0, wrap32(-t), t)
    return xp.i32(xp.where(a == 0, 0, r))


def _bit_length32(x, xp):
    v = x
    bl = xp.where(x < 0, 0, 0)
    for s in (16, 8, 4, 2, 1):
        big = v >= (1 << s)
        v = xp.where(big, v >> s, v)
        bl = bl + xp.where(big, s, 0)
    return bl + v


def softmax_int8(x: Array, input_multiplier: int, input_left_shift: int, diff_min: int) -> Array:
    """TFLite reference integer Softmax int8 -> int8 along the last axis (see the exact model for semantics)."""
    xp = backend(x)
    check_range(xp, "input", x, -128, 127)
    check_range(xp, "input_multiplier", input_multiplier, INT32_MIN, INT32_MAX)
    check_range(xp, "input_left_shift", input_left_shift, 0, 31)
    a = xp.i64(x)
    if xp.name == "numpy":
        mx = a.max(axis=-1, keepdims=True)
    else:
        mx = a.amax(dim=-1, keepdim=True)
    diff = a - mx
    valid = diff >= diff_min
    e = _exp_neg(srdhm64(wrap32(diff << input_left_shift), input_multiplier, xp), ex.SCALED_DIFF_INTEGER_BITS, xp)
    terms = xp.where(valid, _rdbpot_int(e, ex.ACCUMULATION_INTEGER_BITS, xp), 0)
    total = wrap32(terms.sum(-1, keepdims=True) if xp.name == "numpy" else terms.sum(-1, keepdim=True))
    if xp.amin(total) <= 0:
        raise BadValueError("softmax: int32 sum of exponentials is not positive (row too long)")
    h = 32 - _bit_length32(total, xp)
    shifted = wrap32((total << h) - (1 << 31))
    recip = _one_over(shifted, xp)
    sh = (ex.ACCUMULATION_INTEGER_BITS - h) + 31 - 8
    if xp.amin(sh) < 0 or xp.amax(sh) > 31:
        raise BadValueError("softmax: output shift outside [0, 31] (row too long)")
    out = xp.clip(rdbpot64(srdhm64(recip, e, xp), sh, xp) - 128, -128, 127)
    res = xp.where(valid, out, -128)
    return res.astype("int8") if xp.name == "numpy" else res.to(xp.t.int8)
