"""Vectorized I-BERT operators (numpy and torch), bit-for-bit equal to :mod:`refarith.exact.ibert`.

Integer operations only, on int64 arrays/tensors (rows on the last axis); the integer constants come from the
exact derivation in :mod:`refarith.exact.ibert`.  Inputs whose intermediates would leave int64 raise
BadValueError.  The torch path keeps the device of its input.
"""

from __future__ import annotations

from refarith.errors import BadValueError
from refarith.exact import ibert as ex
from refarith.fast.ivit import backend_of, centered_rows


def _i_exp_parts(B, x, x0: int, b: int, c: int, n: int):
    """(z, k): i-exp(x) = max(z * 2^k, 0) (k < 0 meaning a floor shift right)."""
    y = B.maximum(x, n * x0)
    q = y // x0
    r = y - q * x0
    return (r + b) * r + c, n - q


def _i_exp(B, x, x0: int, b: int, c: int, n: int):
    z, k = _i_exp_parts(B, x, x0, b, c, n)
    zmax = max((abs(x0) + abs(b)) * abs(x0) + abs(c), 1)
    if zmax.bit_length() + max(B.amax(k), 0) > 62:
        raise BadValueError("i-exp result exceeds int64; outside the fast kernels' domain")
    v = B.where(k >= 0, z << B.maximum(k, 0), z >> B.maximum(-k, 0))
    return B.maximum(v, 0)


def i_exp(x, scale, n: int = ex.EXP_N):
    """i-exp of every element (x <= 0 expected, as after the softmax max subtraction)."""
    B = backend_of(x)
    xi = B.asint(x)
    if B.anytrue(abs(xi) > (1 << 40)):
        raise BadValueError("input magnitude above 2^40 is outside the fast kernels' domain")
    x0, b, c, _ = ex.exp_constants(scale)
    return _i_exp(B, xi, x0, b, c, n)


def ibert_softmax(x, scale, n: int = ex.EXP_N, out_bits: int = 8, act_bits: int = 16):
    """Integer softmax over the last axis, bit for bit :func:`refarith.exact.ibert.ibert_softmax`."""
    B = backend_of(x)
    if not 1 <= out_bits <= 32:
        raise BadValueError(f"out_bits must be in [1, 32], got {out_bits}")
    xi = B.asint(x)
    if xi.shape[-1] == 0:
        raise BadValueError("softmax of an empty row")
    if B.anytrue(abs(xi) > (1 << 40)):
        raise BadValueError("input magnitude above 2^40 is outside the fast kernels' domain")
    x0, b, c, _ = ex.exp_constants(scale)
    xr = xi - B.rowmax(xi)
    if act_bits:
        # e * num / e0 with e = max(z * 2^(n-q), 0) (q <= n since x <= 0) and e0 = c * 2^n: the powers of two
        # cancel, so the quotient is z * num / (c * 2^q), computed without forming e.
        e0 = ex.i_exp_int(0, x0, b, c, n)
        if e0 <= 0:
            raise BadValueError("i-exp(0) is not positive at this scale")
        num = (1 << (act_bits - 1)) - 1
        zmax = max((abs(x0) + abs(b)) * abs(x0) + abs(c), 1)
        if zmax.bit_length() + num.bit_length() > 62 or c.bit_length() + n > 62:
            raise BadValueError("exp requantization exceeds int64; outside the fast kernels' domain")
        z, k = _i_exp_parts(B, xr, x0, b, c, n)
        p = B.maximum(z, 0) * num
        d = c << (n - k)
        q, r = p // d, p % d
        q = q + B.where((2 * r > d) | ((2 * r == d) & ((q & 1) == 1)), 1, 0)
        e = B.minimum(q, num)
    else:
        e = _i_exp(B, xr, x0, b, c, n)
    if B.amax(e).bit_length() + xi.shape[-1].bit_length() > 62:
        raise BadValueError("softmax row sum exceeds int64; outside the fast kernels' domain")
    total = B.rowsum(e)
    if B.anytrue(total == 0):
        raise BadValueError("softmax row sum is zero")
    f = (1 << 32) // total
    return (e * f) >> (32 - out_bits)


def i_erf(x, scale):
    """i-erf of every element at GELU input scale s (integer result at scale S_erf)."""
    B = backend_of(x)
    xi = B.asint(x)
    b, c, _ = ex.erf_constants(scale)
    a = B.minimum(abs(xi), -b)
    return (B.sign(xi) * ((a + b) * (a + b) + c)) >> ex.ERF_N


def i_gelu(x, scale):
    """i-GELU of every element, bit for bit :func:`refarith.exact.ibert.i_gelu`."""
    B = backend_of(x)
    xi = B.asint(x)
    if B.anytrue(abs(xi) > (1 << 31)):
        raise BadValueError("i-GELU input outside int32")
    b, c, s_erf = ex.erf_constants(scale)
    one = (1 / s_erf).__floor__()
    return xi * (i_erf(xi, scale) + one)


def bit_length(B, v):
    """Elementwise bit length of non-negative int64 values (shifts and compares only)."""
    bl = v * 0
    t = v
    for s in (32, 16, 8, 4, 2, 1):
        m = (t >> s) > 0
        bl = bl + B.where(m, s, 0)
        t = B.where(m, t >> s, t)
    return bl + B.where(t > 0, 1, 0)


def i_sqrt(v):
    """Elementwise I-BERT i-sqrt (Algorithm 4), bit for bit :func:`refarith.exact.ibert.i_sqrt`."""
    B = backend_of(v)
    vi = B.asint(v)
    if B.anytrue(vi < 0):
        raise BadValueError("i-sqrt of a negative value")
    one = vi * 0 + 1
    k = one << ((bit_length(B, vi) + 1) >> 1)
    active = vi > 0
    while B.anytrue(active):
        k1 = (k + vi // k) >> 1
        stop = k1 >= k
        k = B.where(active & ~stop, k1, k)
        active = active & ~stop
    return B.where(vi > 0, k, 0)


def ibert_layernorm(x, shift: int = 0):
    """Integer LayerNorm core over the last axis, bit for bit :func:`refarith.exact.ibert.ibert_layernorm`."""
    B = backend_of(x)
    xi = B.asint(x)
    d = xi.shape[-1]
    if d == 0:
        raise BadValueError("layernorm of an empty row")
    y = centered_rows(B, xi)
    ys = y >> shift
    std = i_sqrt(B.rowsum(ys * ys)) << shift
    if B.anytrue(std == 0):
        raise BadValueError("layernorm of a constant row (std = 0)")
    f = (1 << 31) // std
    return (y * f) >> 1
