"""HiFloat4 quantization, vectorized: the same codes and values as :mod:`refarith.exact.hif4`.

One kernel, :func:`quantize_units`, computes a unit's scale code, level bits and element codes from the binary32
bit patterns with integer operations only, written against the array shim of :mod:`refarith.fast.mx` (``xp``):
numpy runs it on int64 arrays, torch on int64 tensors, and :func:`refarith.fast.xptrace.trace_xp` traces it into
the block graph of the Triton backend (:func:`hif4_quantize_graph`, one unit of 64 elements per row).  Every step
is the exact model's, on integers (a magnitude is N * 2^E, N the 24-bit significand of its bit pattern):

* V16, V8, Vmax: maxima of the magnitude bit patterns (binary32 patterns of non-negative values are ordered as
  the values);
* SF = bf16(Vmax * 73/512): the integer N * 73 (below 2^31) rounded to 8 significant bits, ties to even;
* S: SF clamped to [2^-48, 49152] (compared by binade and significand) and its 8-bit significand rounded to 3
  bits with the ``scale_ties`` rule;
* R = bf16(1/S) = R_sig * 2^(-E - 7 - [M > 0]), R_sig the exact model's reciprocal of the four E6M2 significands
  (128, 205, 171, 146);
* d8 = [V8 * R >= 4], d16 = [V16 * R * 2^-d8 >= 2], compared exactly as N * R_sig * 2^k >= 1;
* q = min(7, round(N * R_sig * 2^k)) for the element's k = E - E_R + 2 - d8 - d16, by an integer shift with the
  ``elem_ties`` rule (products below 2^32, shifts below 48 bits: int64 is exact).

The layout is the only part that differs by backend: numpy and torch take the level-3 maxima with a reshape and
spread the per-subgroup exponents with a repeat; the traced kernel has one row per unit and no lane positions, so
it takes the lane's subgroup (lane // 4) as a second element input and forms each level-3 maximum as the block
maximum of the magnitudes masked to one subgroup, and each element's exponent by selecting on its subgroup.
Dequantization (:func:`hif4_dequantize`) is exact in binary64 (products of at most 6 significant bits by powers of
two); the Triton backend dequantizes with the torch operations on the device.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np

from refarith.errors import BadValueError
from refarith.exact.hif4 import SCALE_NAN, UNIT, _check_ties, reciprocal

_REC_SIG = tuple(int(reciprocal(Fraction(4 + m, 4)) * (256 if m else 128)) for m in range(4))
"""The 8-bit significand of bf16(1/S) for the E6M2 significands 1 + M/4 (the exact model's reciprocal): 1/S is
R_sig * 2^(-E - 7 - [M > 0]) for S = 2^E (1 + M/4)."""
BACKENDS = ("numpy", "torch", "triton")


def _flag(m, xp):
    """A boolean array as 0/1 integers."""
    return xp.where(m, 1, 0)


def _split(mag, xp):
    """(N, E) of non-negative finite binary32 patterns (int64): the value N * 2^E, N < 2^24."""
    ef = mag >> 23
    frac = mag & 0x7FFFFF
    return xp.where(ef == 0, frac, frac | 0x800000), xp.where(ef == 0, 1, ef) - 150


def _round_shift(p, n, ties: str, xp):
    """round(p / 2^n) for integers 0 <= p < 2^40 and 1 <= n <= 48, ties to even or away from zero: p plus half
    the step (less one, plus the quotient's last bit, for even), shifted right."""
    half = 1 << (n - 1)
    if ties == "away":
        return (p + half) >> n
    return (p + (half - 1) + ((p >> n) & 1)) >> n


def _at_least_one(t, k, xp):
    """[t * 2^k >= 1] for integers 0 <= t < 2^40 and any integer k, as 0/1."""
    n = xp.minimum(xp.maximum(0 - k, 0), 48)
    return xp.where(k >= 0, _flag(t > 0, xp), _flag((t >> n) > 0, xp))


def _bit_length(p, xp):
    """floor(log2 p) + 1 for integers 1 <= p < 2^31."""
    n = 1
    for j in range(1, 31):
        n = n + _flag(p >= (1 << j), xp)
    return n


def _subgroup_maxima(mag, sub, xp) -> list:
    """The 16 level-3 maxima of each unit (unit values): a reshape of the 64 lanes into 16 x 4 (numpy, torch), or
    the block maximum of the magnitudes masked to one subgroup (``sub``: each lane's subgroup, traced kernel)."""
    if xp.name == "trace":
        return [xp.amax(xp.where(sub == j, mag, 0), -1) for j in range(16)]
    m4 = mag.reshape(*mag.shape[:-1], 16, 4)
    if xp.name == "numpy":  # two elementwise maxima of strided lanes: faster than a reduction over 4
        m4 = np.maximum(np.maximum(m4[..., 0], m4[..., 1]), np.maximum(m4[..., 2], m4[..., 3]))
    else:
        m4 = xp.amax(m4, -1)
    return [m4[..., j] for j in range(16)]


def _unit_max(mag, v16: list, xp):
    """The unit maximum of the magnitudes: the maximum of the 16 level-3 maxima (numpy, torch), or its own block
    maximum (traced kernel), so that the scale output reads the unit through one block maximum only (the
    structure the theorems ``traced.hif4.scale.*`` rely on)."""
    if xp.name == "trace":
        return xp.amax(mag, -1)
    out = v16[0]
    for v in v16[1:]:
        out = xp.maximum(out, v)
    return out


def _spread(vals: list, sub, xp):
    """Per lane, the value of its subgroup (``vals``: 16 unit values)."""
    if xp.name == "trace":
        out = 0
        for j, v in enumerate(vals):
            out = out + xp.where(sub == j, v[..., None], 0)
        return out
    if xp.name == "numpy":
        return np.repeat(np.stack(vals, -1), 4, axis=-1)
    return xp.t.stack(vals, -1).repeat_interleave(4, dim=-1)


def quantize_units(bits, sub, scale_ties: str, elem_ties: str, xp) -> tuple[Any, Any, Any, Any]:
    """(E6M2 scale code, level-2 byte, level-3 word, S1P2 codes) of HiF4 units: ``bits`` the binary32 patterns
    of the 64 elements of each unit (int64, last axis; one unit per row for the traced kernel),
    ``sub`` each lane's subgroup lane // 4 (traced kernel only; None otherwise).  A unit holding a NaN or an
    infinity gets the NaN scale 0xFF and zero level bits and codes."""
    b = bits
    mag = b & 0x7FFFFFFF
    v16 = _subgroup_maxima(mag, sub, xp)
    vmax = _unit_max(mag, v16, xp)
    bad = vmax >= 0x7F800000  # a NaN or an infinity in the unit: its magnitude is above every finite one
    if xp.anyof(bad):  # always taken by the traced kernel; skipped on arrays without NaN or infinity
        mag = xp.where(bad[..., None], 0, mag)
        v16 = [xp.where(bad, 0, v) for v in v16]
        vmax = xp.where(bad, 0, vmax)
    v8 = [xp.maximum(v16[2 * g], v16[2 * g + 1]) for g in range(8)]
    # SF = bf16(Vmax * 73 / 512) = q8 * 2^(k - 7), q8 in [128, 256), k its binade
    nm, em = _split(vmax, xp)
    p = nm * 73
    sh = _bit_length(xp.maximum(p, 1), xp) - 8
    q8 = xp.where(sh > 0, _round_shift(p, xp.minimum(xp.maximum(sh, 1), 23), "even", xp),
                  p << xp.minimum(xp.maximum(0 - sh, 0), 7))
    carry = q8 == 256
    q8 = xp.where(carry, 128, q8)
    k = em - 9 + sh + _flag(carry, xp) + 7
    # S = e6m2(clamp(SF, 2^-48, 49152)) = q3 * 2^(k - 2), q3 in 4..7
    low = (nm == 0) | (k < -48)
    high = (k > 15) | ((k == 15) & (q8 > 192))
    q8 = xp.where(low, 128, xp.where(high, 192, q8))
    k = xp.where(low, -48, xp.where(high, 15, k))
    q3 = _round_shift(q8, 5, scale_ties, xp)
    k = k + _flag(q3 == 8, xp)
    m2 = xp.where(q3 == 8, 0, q3 - 4)
    scode = ((k + 48) << 2) | m2
    rsig = xp.where(m2 == 0, _REC_SIG[0], xp.where(m2 == 1, _REC_SIG[1], xp.where(m2 == 2, _REC_SIG[2],
                                                                                      _REC_SIG[3])))
    rexp = 0 - k - 7 - _flag(m2 > 0, xp)
    d8, d16 = [], []
    for g in range(8):
        n8, e8 = _split(v8[g], xp)
        d8.append(_at_least_one(n8 * rsig, e8 + rexp - 2, xp))  # V8 * R >= 4
    for j in range(16):
        n16, e16 = _split(v16[j], xp)
        d16.append(_at_least_one(n16 * rsig, e16 + rexp - 1 - d8[j // 2], xp))  # V16 * R * 2^-d8 >= 2
    d = _spread([d16[j] + d8[j // 2] for j in range(16)], sub, xp)
    # q = round(t / 2^sh), t = N * R_sig, sh = -(E + E_R + 2 - d) with E = max(E', 1) - 150 (as in _split); a
    # shift clamped up to 1 where sh <= 0 still saturates (t >= 128 there unless t = 0)
    ef = mag >> 23
    frac = mag & 0x7FFFFF
    t = xp.where(ef == 0, frac, frac | 0x800000) * rsig[..., None]
    sh = d + (148 - rexp)[..., None] - xp.maximum(ef, 1)
    q = xp.minimum(_round_shift(t, xp.minimum(xp.maximum(sh, 1), 48), elem_ties, xp), 7)
    codes = xp.where((b < 0) & (mag > 0), q | 8, q)
    if xp.anyof(bad):
        codes = xp.where(bad[..., None], 0, codes)
    w8, w16 = d8[0] << 7, d16[0] << 15
    for g in range(1, 8):
        w8 = w8 | (d8[g] << (7 - g))
    for j in range(1, 16):
        w16 = w16 | (d16[j] << (15 - j))
    return (xp.where(bad, SCALE_NAN, scode), xp.where(bad, 0, w8), xp.where(bad, 0, w16), codes)


def _check(x, scale_ties: str, elem_ties: str, axis: int):
    _check_ties(scale_ties, elem_ties)
    a = np.asarray(x)
    if a.dtype != np.float32:
        raise BadValueError(f"HiF4 quantization takes a float32 array, got dtype {a.dtype}")
    if a.ndim == 0:
        raise BadValueError("HiF4 quantization needs an array with at least one dimension")
    a = np.moveaxis(a, axis, -1)
    if a.shape[-1] % UNIT:
        raise BadValueError(f"HiF4 quantizes units of {UNIT} elements along the axis; its length {a.shape[-1]} "
                            f"is not a multiple of {UNIT}")
    return a


def hif4_quantize(x, axis: int = -1, scale_ties: str = "even", elem_ties: str = "away", backend: str = "numpy"):
    """HiF4 units of a float32 array along ``axis`` (length a multiple of 64), by :func:`quantize_units`.

    Returns (scale, d8, d16, codes): uint8 E6M2 scale codes, uint8 level-2 words (group 0 in the top bit),
    uint16 level-3 words (subgroup 0 in the top bit), one per unit, with the unit index along ``axis``; and the
    uint8 S1P2 element codes in the shape of ``x``.  A unit holding a NaN or an infinity gets scale 0xFF and
    zero bits and codes.  ``backend="torch"`` and ``"triton"`` take a float32 torch tensor and return tensors
    (the level-3 words as int32); triton runs the traced graph (:func:`hif4_quantize_graph`) on the tensor's
    device, compiled on CUDA, interpreted on CPU."""
    if backend not in BACKENDS:
        raise BadValueError(f"hif4_quantize has {', '.join(BACKENDS)} kernels, not {backend!r}")
    if backend != "numpy":
        return _torch_quantize(x, axis, scale_ties, elem_ties, backend)
    from refarith.fast.mx import ops

    a = _check(x, scale_ties, elem_ties, axis)
    lead = a.shape[:-1]
    nu = a.shape[-1] // UNIT
    bits = np.ascontiguousarray(a).reshape(-1, UNIT).view(np.int32).astype(np.int64)
    s, w8, w16, codes = quantize_units(bits, None, scale_ties, elem_ties, ops("numpy"))

    def per_unit(v, dtype):
        return np.moveaxis(v.astype(dtype).reshape(*lead, nu), -1, axis)

    return (per_unit(s, np.uint8), per_unit(w8, np.uint8), per_unit(w16, np.uint16),
            np.moveaxis(codes.astype(np.uint8).reshape(*lead, nu * UNIT), -1, axis))


@lru_cache(maxsize=8)
def hif4_quantize_graph(scale_ties: str = "even", elem_ties: str = "away"):
    """Block graph of :func:`quantize_units` for one unit per row: inputs the binary32 bits of the 64 elements and
    each lane's subgroup (lane // 4), outputs (scale code, level-2 byte, level-3 word per unit, element codes)."""
    from refarith.fast.xptrace import trace_xp

    _check_ties(scale_ties, elem_ties)
    return trace_xp(lambda xp, b, sub: quantize_units(xp.i64(b), sub, scale_ties, elem_ties, xp),
                    [("x", 0, 32), ("subgroup", 0, 32)],
                    f"hif4_quantize(scale_ties={scale_ties},elem_ties={elem_ties})")


def _torch_quantize(x, axis: int, scale_ties: str, elem_ties: str, backend: str):
    """:func:`hif4_quantize` on a torch float32 tensor with the torch shim or the Triton graph (results as torch
    tensors: uint8, uint8, int32 words of 16 bits, uint8 codes)."""
    import torch

    _check_ties(scale_ties, elem_ties)
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float32:
        raise BadValueError(f"the {backend} HiF4 kernel takes a float32 tensor")
    if x.dim() == 0:
        raise BadValueError("HiF4 quantization needs an array with at least one dimension")
    a = torch.movedim(x, axis, -1)
    if a.shape[-1] % UNIT:
        raise BadValueError(f"HiF4 quantizes units of {UNIT} elements along the axis; its length {a.shape[-1]} "
                            f"is not a multiple of {UNIT}")
    lead = tuple(a.shape[:-1])
    nu = a.shape[-1] // UNIT
    bits = a.contiguous().reshape(-1, UNIT).view(torch.int32)
    if backend == "triton":
        from refarith.fast.triton_blocks import run_blocks

        n = bits.shape[0]
        sub = (torch.arange(UNIT, dtype=torch.int32, device=bits.device) >> 2).repeat(n)
        s, w8, w16, codes = run_blocks(hif4_quantize_graph(scale_ties, elem_ties), [bits.reshape(-1), sub],
                                       ["int32", "int32"], [torch.uint8, torch.uint8, torch.int32, torch.uint8],
                                       n, UNIT)
    else:
        from refarith.fast.mx import ops

        s, w8, w16, codes = quantize_units(bits.to(torch.int64), None, scale_ties, elem_ties, ops("torch"))

    def per_unit(v, dtype):
        return torch.movedim(v.to(dtype).reshape(*lead, nu), -1, axis)

    return (per_unit(s, torch.uint8), per_unit(w8, torch.uint8), per_unit(w16, torch.int32),
            torch.movedim(codes.to(torch.uint8).reshape(*lead, nu * UNIT), -1, axis))


def hif4_dequantize(scale, d8, d16, codes, axis: int = -1) -> np.ndarray:
    """float32 values of HiF4 units (as :func:`hif4_quantize` returns them): S * 2^(d8 + d16) * q/4 with the
    code's sign (exact in binary32); NaN for every element of a unit with the NaN scale."""
    c = np.moveaxis(np.asarray(codes), axis, -1)
    lead = c.shape[:-1]
    cu = c.reshape(-1, UNIT).astype(np.int64)
    sc = np.moveaxis(np.asarray(scale), axis, -1).reshape(-1).astype(np.int64)
    w8 = np.moveaxis(np.asarray(d8), axis, -1).reshape(-1).astype(np.int64)
    w16 = np.moveaxis(np.asarray(d16), axis, -1).reshape(-1).astype(np.int64)
    b8 = (w8[:, None] >> np.arange(7, -1, -1)) & 1
    b16 = (w16[:, None] >> np.arange(15, -1, -1)) & 1
    d = np.repeat(b16 + np.repeat(b8, 2, axis=1), 4, axis=1)
    s = np.ldexp((4 + (sc & 3)).astype(np.float64), (sc >> 2) - 48 - 2)
    mag = np.ldexp(s[:, None] * (cu & 7), d - 2)
    v = np.where((cu & 8) != 0, -mag, mag)
    v = np.where((sc == SCALE_NAN)[:, None], np.nan, v).astype(np.float32)
    return np.moveaxis(v.reshape(*lead, c.shape[-1]), -1, axis)


def hif4_fake_quantize(x, axis: int = -1, scale_ties: str = "even", elem_ties: str = "away",
                       backend: str = "numpy") -> np.ndarray:
    """float32 values of ``x`` HiF4-quantized along ``axis`` and dequantized (the reference's quant-dequant); a
    torch tensor for ``backend="torch"`` and ``"triton"`` (dequantized by torch operations on its device)."""
    parts = hif4_quantize(x, axis, scale_ties, elem_ties, backend)
    if backend != "numpy":
        return _torch_dequantize(*parts, axis=axis)
    return hif4_dequantize(*parts, axis=axis)


def _torch_dequantize(scale, d8, d16, codes, axis: int = -1):
    """:func:`hif4_dequantize` in torch operations (float32 tensor)."""
    import torch

    c = torch.movedim(codes, axis, -1)
    lead = tuple(c.shape[:-1])
    cu = c.reshape(-1, UNIT).to(torch.int64)
    sc = torch.movedim(scale, axis, -1).reshape(-1).to(torch.int64)
    w8 = torch.movedim(d8, axis, -1).reshape(-1).to(torch.int64)
    w16 = torch.movedim(d16, axis, -1).reshape(-1).to(torch.int64)
    b8 = (w8[:, None] >> torch.arange(7, -1, -1, device=w8.device)) & 1
    b16 = (w16[:, None] >> torch.arange(15, -1, -1, device=w16.device)) & 1
    d = (b16 + b8.repeat_interleave(2, dim=1)).repeat_interleave(4, dim=1)
    s = (4 + (sc & 3)).to(torch.float64) * torch.pow(2.0, ((sc >> 2) - 50).to(torch.float64))
    mag = s[:, None] * (cu & 7).to(torch.float64) * torch.pow(2.0, (d - 2).to(torch.float64))
    v = torch.where((cu & 8) != 0, -mag, mag)
    v = torch.where((sc == SCALE_NAN)[:, None], torch.full_like(v, float("nan")), v).to(torch.float32)
    return torch.movedim(v.reshape(*lead, c.shape[-1]), -1, axis)


__all__ = ["BACKENDS", "hif4_dequantize", "hif4_fake_quantize", "hif4_quantize", "hif4_quantize_graph",
           "quantize_units"]
