"""Vectorized I-ViT operators (numpy and torch), bit-for-bit equal to :mod:`refarith.exact.ivit`.

Integer operations only, on int64 arrays/tensors; rows on the last axis.  The ``ivit_tvm`` variant emulates
int32 wrap-around in int64 (every product of two int32 values fits).  ``ivit_torch`` is exact as long as no
intermediate leaves int64; inputs whose intermediates would leave it raise BadValueError instead of wrapping
silently.  One generic implementation per operator runs on either backend (``np`` or ``torch``); the torch
path keeps the device of its input.
"""

from __future__ import annotations

import numpy as np

from refarith.errors import BadValueError
from refarith.exact import ivit as ex

_M32 = 0xFFFFFFFF
_LIMIT = 1 << 40  # inputs beyond this magnitude are rejected (keeps every torch-variant intermediate in int64)


class _Numpy:
    name = "numpy"

    @staticmethod
    def asint(x, like=None):
        return np.asarray(x, dtype=np.int64)

    where = staticmethod(np.where)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    sign = staticmethod(np.sign)

    @staticmethod
    def rowmax(a):
        return a.max(axis=-1, keepdims=True)

    @staticmethod
    def rowsum(a):
        return a.sum(axis=-1, keepdims=True)

    @staticmethod
    def anytrue(m) -> bool:
        return bool(np.any(m))

    @staticmethod
    def amax(a) -> int:
        return int(a.max()) if a.size else 0

    @staticmethod
    def operands(a, b):
        return a, b  # numpy broadcasts Python ints itself


class _Torch:
    name = "torch"

    def __init__(self):
        import torch

        self.t = torch

    def asint(self, x, like=None):
        t = self.t
        dev = x.device if isinstance(x, t.Tensor) else (like.device if like is not None else None)
        return t.as_tensor(x, dtype=t.int64, device=dev)

    def where(self, c, a, b):
        t = self.t
        a = a if isinstance(a, t.Tensor) else t.tensor(a, dtype=t.int64, device=c.device)
        b = b if isinstance(b, t.Tensor) else t.tensor(b, dtype=t.int64, device=c.device)
        return t.where(c, a, b)

    def maximum(self, a, b):
        if not isinstance(b, self.t.Tensor):
            return self.t.clamp(a, min=int(b))
        return self.t.maximum(a, b)

    def minimum(self, a, b):
        if not isinstance(b, self.t.Tensor):
            return self.t.clamp(a, max=int(b))
        return self.t.minimum(a, b)

    def sign(self, a):
        return self.t.sign(a)

    def rowmax(self, a):
        return a.amax(dim=-1, keepdim=True)

    def rowsum(self, a):
        return a.sum(dim=-1, keepdim=True)

    def anytrue(self, m) -> bool:
        return bool(m.any().item())

    def amax(self, a) -> int:
        return int(a.max().item()) if a.numel() else 0

    def operands(self, a, b):
        t = self.t
        dev = (a if isinstance(a, t.Tensor) else b).device
        return tuple(v if isinstance(v, t.Tensor) else t.tensor(v, dtype=t.int64, device=dev) for v in (a, b))


NP = _Numpy()
_TORCH: _Torch | None = None


def torch_backend() -> _Torch:
    global _TORCH
    if _TORCH is None:
        _TORCH = _Torch()
    return _TORCH


def backend_of(x):
    """numpy backend for arrays/lists, torch backend for torch tensors."""
    mod = type(x).__module__
    if mod.startswith("torch"):
        return torch_backend()
    return NP


# ------------------------------------------------------------------ helpers
def wrap32(v):
    """v read as int32 (two's complement wrap of int64 lanes)."""
    return ((v + (1 << 31)) & _M32) - (1 << 31)


def tdiv(B, a, b):
    """Truncating division (C semantics), elementwise; a zero divisor raises BadValueError.  Either operand may
    be a Python int (broadcast; on the other operand's device for torch)."""
    a, b = B.operands(a, b)
    if B.anytrue(b == 0):
        raise BadValueError("integer division by zero")
    q = abs(a) // abs(b)
    return B.where((a >= 0) == (b > 0), q, -q)


def log2e_shift(x):
    return x + (x >> 1) - (x >> 4)


def _check_input(B, x) -> None:
    if B.anytrue(abs(x) > _LIMIT):
        raise BadValueError("input magnitude above 2^40 is outside the fast kernels' domain")


def shift_exp(B, x, x0: int, n: int, variant: str):
    """Elementwise :func:`refarith.exact.ivit.shift_exp` (x an int64 array/tensor, x0 < 0)."""
    if variant == "ivit_torch":
        y = B.maximum(log2e_shift(x), n * x0)
        q = y // x0
        r = y - q * x0
        t = r - 2 * x0
        k = n - q
        top = B.amax(k)
        if top - 1 + (2 * abs(x0)).bit_length() > 62:
            raise BadValueError(f"shift-exp result exceeds int64 (shift {top}); outside the fast kernels' domain")
        up = t << B.maximum(k - 1, 0)
        down = t >> B.maximum(1 - k, 0)
        return B.maximum(B.where(k >= 1, up, down), 0)
    y = wrap32(log2e_shift(wrap32(x)))
    y = B.maximum(y, wrap32(n * x0))
    q = tdiv(B, y, x0)
    r = wrap32(y - wrap32(q * x0))
    e = wrap32((r >> 1) - x0)
    k = n - q
    if B.anytrue((k < 0) | (k > 31)):
        raise BadValueError("shift count outside [0, 31] in the int32 kernel")
    return wrap32(e << k)


def _variant_n(variant: str, n: int | None) -> int:
    ex.check_variant(variant)
    return ex.SOFTMAX_N[variant] if n is None else n


def shift_exp_array(x, scale, variant: str, n: int | None = None):
    """I-ViT shift-exp of every element of x (numpy array or torch tensor)."""
    B = backend_of(x)
    n = _variant_n(variant, n)
    xi = B.asint(x)
    _check_input(B, xi)
    return shift_exp(B, xi, ex.x0_int(scale, variant), n, variant)


def shiftmax(x, scale, variant: str, n: int | None = None, out_bits: int = 8):
    """Shiftmax over the last axis; equal bit for bit to :func:`refarith.exact.ivit.shiftmax` on every row."""
    B = backend_of(x)
    n = _variant_n(variant, n)
    if not 2 <= out_bits <= 31:
        raise BadValueError(f"out_bits must be in [2, 31], got {out_bits}")
    xi = B.asint(x)
    _check_input(B, xi)
    if xi.shape[-1] == 0:
        raise BadValueError("shiftmax of an empty row")
    x0 = ex.x0_int(scale, variant)
    if variant == "ivit_torch":
        e = shift_exp(B, xi - B.rowmax(xi), x0, n, variant)
        if B.amax(e).bit_length() + xi.shape[-1].bit_length() > 62:
            raise BadValueError("shiftmax row sum exceeds int64; outside the fast kernels' domain")
        total = B.minimum(B.rowsum(e), ex.INT32_MAX)
        if B.anytrue(total == 0):
            raise BadValueError("shiftmax row sum is zero")
        f = ex.INT32_MAX // total
        return (e * f) >> (32 - out_bits)
    xw = wrap32(xi)
    e = shift_exp(B, wrap32(xw - B.rowmax(xw)), x0, n, variant)
    total = wrap32(B.rowsum(e))
    f = tdiv(B, ex.INT32_MAX, total)
    v = wrap32(f * e) >> (32 - out_bits)
    h = 1 << (out_bits - 1)
    return ((v + h) & ((1 << out_bits) - 1)) - h


def shiftgelu(x, scale, variant: str, n: int = ex.GELU_N, out_bits: int = 8):
    """ShiftGELU over the last axis (row max subtracted per row), bit for bit :func:`refarith.exact.ivit.shiftgelu`."""
    B = backend_of(x)
    ex.check_variant(variant)
    xi = B.asint(x)
    _check_input(B, xi)
    if xi.shape[-1] == 0:
        raise BadValueError("shiftgelu of an empty row")
    x0 = ex.gelu_x0(scale, variant)
    if variant == "ivit_torch":
        m = B.rowmax(xi)
        e = shift_exp(B, xi - m, x0, n, variant)
        em = shift_exp(B, -m, x0, n, variant)
        if B.amax(em).bit_length() > 61:
            raise BadValueError("shiftgelu sigmoid denominator exceeds int64; outside the fast kernels' domain")
        total = B.minimum(e + em, ex.INT32_MAX)
        if B.anytrue(total == 0):
            raise BadValueError("shiftgelu sigmoid denominator is zero")
        sig = (e * (ex.INT32_MAX // total)) >> (32 - out_bits)
        return xi * sig
    xw = wrap32(xi)
    m = B.rowmax(xw)
    e = shift_exp(B, wrap32(xw - m), x0, n, variant)
    em = shift_exp(B, wrap32(-m), x0, n, variant)
    den = wrap32(e + em)
    f = tdiv(B, ex.INT32_MAX, den)
    sig = wrap32(f * e) >> (32 - out_bits)
    return wrap32(xw * sig)


def newton_sqrt(v, variant: str, iters: int = ex.NEWTON_ITERS, start: int = ex.NEWTON_START):
    """Elementwise I-LayerNorm Newton square root (fixed iterations from 2^16), bit for bit
    :func:`refarith.exact.ivit.newton_sqrt`; an iterate of 0 in any element raises BadValueError as there."""
    B = backend_of(v)
    ex.check_variant(variant)
    vi = B.asint(v)
    if start <= 0:
        raise BadValueError(f"Newton square root: the start must be positive, got {start}")
    k = vi * 0 + start
    if variant == "ivit_torch":
        if B.anytrue(vi < 0):
            raise BadValueError("square root of a negative value")
    else:
        vi = vi & _M32
    for i in range(iters):
        if B.anytrue(k == 0):
            raise BadValueError(ex.zero_iterate("of an element", i, iters))
        k = (k + vi // k) >> 1 if variant == "ivit_torch" else ((k + vi // k) & _M32) >> 1
    return k


def centered_rows(B, xi):
    """xi minus its row mean rounded half to even (the torch-model LayerNorms of I-ViT and I-BERT), in int64;
    BadValueError outside the domain where that is exact (|x| <= 2^28, row length <= 2^20)."""
    d = xi.shape[-1]
    if B.anytrue(abs(xi) > (1 << 28)) or d > (1 << 20):
        raise BadValueError("layernorm input outside the fast kernels' domain (|x| <= 2^28, dim <= 2^20)")
    s = B.rowsum(xi)
    q, r = s // d, s % d
    return xi - (q + B.where((2 * r > d) | ((2 * r == d) & ((q & 1) == 1)), 1, 0))


def ilayernorm(x, variant: str):
    """I-LayerNorm core over the last axis, bit for bit :func:`refarith.exact.ivit.ilayernorm`."""
    B = backend_of(x)
    ex.check_variant(variant)
    xi = B.asint(x)
    d = xi.shape[-1]
    if d == 0:
        raise BadValueError("layernorm of an empty row")
    if variant == "ivit_torch":
        y = centered_rows(B, xi)
        var = B.rowsum(y * y)
        std = newton_sqrt(var, variant)
        f = ex.INT32_MAX // std
        return (y * f) >> 1
    xw = wrap32(xi)
    mean = tdiv(B, wrap32(B.rowsum(xw)), d)
    y = wrap32(xw - mean)
    var = B.rowsum(wrap32(y * y) & _M32) & _M32
    std = wrap32(newton_sqrt(var, variant))
    f = tdiv(B, ex.INT32_MAX, std)
    return tdiv(B, wrap32(f * y), 2)
