"""Stochastic rounding of binary32 into narrow targets by table lookup plus the decision on the fraction bits.

For targets where :func:`refarith.fast.castkernel.sticky_key_suffices` holds, every code the stochastic cast can
give is one of two per sticky key: ``down`` (the magnitude truncated, with stochastic rounding's overflow rule:
:func:`~refarith.fast.castkernel.cast_bits` with ``sr_variant='a'`` and r = 0, which never rounds up) and
``away`` (rup for positive keys, rdn for negative ones: the next code away from zero, with the same overflow
rule).  Both tables come from ``cast_bits`` on one representative per key.  The decision needs the fraction
below the kept bits: with E the biased binary32 exponent, the target ulp is 2^(max(E' - 127, emin) - mbits)
(E' = max(E, 1); binary32 subnormals lie below every such target's emin) and the source's last bit 2^(E' - 150),
so frac = (sig mod 2^d) / 2^d with d = max(E' - 127, emin) - mbits - E' + 150 -- a table of E.  Then
F = floor(frac * 2^K) and the variant's comparison (:func:`refarith.fast.castkernel._sr_up`) decide; the result
is ``away`` where the value is inexact and the decision is up, else ``down``.  Tested equal to ``cast_bits``
(tests/test_sr_fast.py).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from refarith.fast.bitops import NumpyBitOps
from refarith.fast.castkernel import cast_bits, key_representative, sticky_key_suffices
from refarith.formats import FloatFormat

_BLOCK = 1 << 16


def applies(dst: FloatFormat, overflow: str, negative: str) -> bool:
    """Whether :func:`encode_sr` handles this binary32 target (else the caller runs the bit kernel)."""
    return sticky_key_suffices(dst) and overflow in ("saturate", "inf", "nan") and negative in ("error", "clamp")


@lru_cache(maxsize=64)
def tables(dst: FloatFormat, overflow: str, nan_policy: str, negative: str):
    """(down | away << 16 per 17-bit sticky key, error per key, d per biased binary32 exponent, fraction mask
    per exponent over (bits | 2^23): the bits of the significand below the target's ulp, the implicit bit
    included where it lies below and excluded for binary32 subnormals)."""
    ops = NumpyBitOps(32)
    keys = np.arange(1 << 17, dtype=np.uint32)
    reps = key_representative(ops, keys)
    zero = np.zeros(keys.size, dtype=np.uint32)
    down, err = cast_bits(ops, reps, "binary32", dst, "sr", overflow, nan_policy, negative, zero, 1, "a")
    up, _ = cast_bits(ops, reps, "binary32", dst, "rup", overflow, nan_policy, negative)
    dn, _ = cast_bits(ops, reps, "binary32", dst, "rdn", overflow, nan_policy, negative)
    neg = (keys >> 16) & 1 == 1
    away = np.where(neg, dn, up).astype(np.uint32)
    packed = down.astype(np.uint32) | (away << np.uint32(16))
    err = np.broadcast_to(err, down.shape).copy()
    e = np.maximum(np.arange(256), 1)
    d = np.maximum(e - 127, dst.emin) - dst.mbits - e + 150
    d = np.minimum(d, 40).astype(np.int64)
    mask = np.where(d >= 24, 0xFFFFFF, (1 << np.minimum(d, 24)) - 1)
    mask[0] = 0x7FFFFF
    out = []
    for a in (packed, err, d, mask.astype(np.uint32)):
        a = np.ascontiguousarray(a)
        a.setflags(write=False)
        out.append(a)
    return tuple(out)


def _shift_table(d: np.ndarray, kk: int) -> np.ndarray | None:
    """Right shifts d - K per exponent (clamped to 31: the fraction is below 2^24), None where some d < K."""
    if int(d[1:].min()) < kk:
        return None
    return np.minimum(d - kk, 31).astype(np.uint32)


def encode_sr(bits: np.ndarray, dst: FloatFormat, overflow: str, nan_policy: str, negative: str, r: np.ndarray,
              k: int, variant: str, out_dtype: type = np.uint32) -> tuple[np.ndarray, np.ndarray]:
    """(codes as ``out_dtype``, error mask) of binary32 patterns ``bits`` (uint32) with random integers ``r``.

    A zero fraction never rounds up under any variant (the comparisons stay below their bound), so no separate
    inexact test is needed.  Every gather index is in range (a 17-bit key, an 8-bit exponent), so ``take`` runs
    with mode='clip' (no per-element bounds check); the per-exponent mask and shift come from one packed
    table."""
    packed_t, err_t, d_t, mask_t = tables(dst, overflow, nan_policy, negative)
    n = bits.size
    codes = np.empty(n, dtype=out_dtype)
    any_err = bool(err_t.any())
    errs = np.empty(n, dtype=bool) if any_err else np.zeros(n, dtype=bool)
    kk = k + 1 if variant in ("b", "c", "c_odd") else k
    sh_t = None if variant == "te_e2m1_8" else _shift_table(d_t, kk)
    ex_t = None if sh_t is None else _packed_ex_table(mask_t, sh_t)
    c15 = np.uint32(0x7FFF)
    for a in range(0, n, _BLOCK):
        x = bits[a:a + _BLOCK]
        key = x & c15
        key += c15
        key |= x
        key >>= np.uint32(15)
        pk = np.take(packed_t, key, mode="clip")
        if any_err:
            np.take(err_t, key, out=errs[a:a + x.size], mode="clip")
        ex = x >> np.uint32(23)  # sign and biased exponent: the packed table repeats itself for the sign
        if sh_t is None:
            ex &= np.uint32(0xFF)  # general: per-element K (te_e2m1_8) or d < K somewhere, in int64
            low = (x | np.uint32(0x800000)) & mask_t[ex]
            low64 = low.astype(np.int64)
            d = d_t[ex]
            rr = r[a:a + _BLOCK].astype(np.int64)
            if variant == "te_e2m1_8":
                mag = pk & np.uint32(0x7FFF) & np.uint32((dst.sign_mask - 1) if dst.signed else dst.ncodes - 1)
                j = np.where(mag == 0, 17, np.where(mag == 1, 16, 15)).astype(np.int64)
                kv = j + k
                f = np.where(kv >= d, low64 << np.maximum(kv - d, 0), low64 >> np.maximum(d - kv, 0))
                up = f + (rr << j) + 1 >= (np.int64(1) << kv)
            else:
                f = np.where(kk >= d, low64 << np.maximum(kk - d, 0), low64 >> np.maximum(d - kk, 0))
                up = _decide(variant, f, low64 & ((np.int64(1) << np.maximum(d - kk, 0)) - 1), rr, k)
        else:
            t = np.take(ex_t, ex, mode="clip")
            sh = t >> np.uint32(24)
            t &= np.uint32(0xFFFFFF)
            low = x | np.uint32(0x800000)
            low &= t
            f = low >> sh
            rb = r[a:a + _BLOCK]
            if variant == "a":  # up = (f + r) >> k, which is 0 or 1 (f, r < 2^k); the shift below is 16 * up
                np.add(f, rb, out=f, casting="unsafe")
                f >>= np.uint32(k)
                f <<= np.uint32(4)
                up = None
            else:
                below = low - (f << sh) if variant in ("c", "c_odd") else None  # low mod 2^sh
                up = _decide(variant, f, below, rb.astype(np.uint32), k)
        # away (bits 16..31) where up, else down (bits 0..15): shift by 16 * up, keep the low 16 bits (the store
        # into a narrower code dtype drops the rest: numpy's unsigned casts are modular)
        np.right_shift(pk, f if up is None else np.left_shift(up, 4, dtype=np.uint32), out=pk)
        if codes.dtype.itemsize > 2:
            pk &= np.uint32(0xFFFF)
        codes[a:a + x.size] = pk
    return codes, errs


def _packed_ex_table(mask_t: np.ndarray, sh_t: np.ndarray) -> np.ndarray:
    """Per binary32 sign and biased exponent (bits >> 23, 512 entries): the fraction mask (24 bits) | the shift
    d - K << 24 (at most 31)."""
    t = (mask_t.astype(np.uint32) | (sh_t.astype(np.uint32) << np.uint32(24))).astype(np.uint32)
    return np.concatenate([t, t])


def _decide(variant: str, f, below, r, k: int):
    """The round-up decision from f = floor(frac * 2^K) (K = k, or k + 1 for b, c, c_odd), the bits ``below``
    (c, c_odd) and the random integers r."""
    if variant == "a":
        return (f + r) >> k != 0
    if variant == "b":
        return (f + (r << 1) + 1) >> (k + 1) != 0
    t = f >> 1
    half = (f & 1) == 1
    odd = (t & 1) == 1
    inc = half & ((below != 0) | (odd if variant == "c" else ~odd))
    return (t + inc + r) >> k != 0


__all__ = ["applies", "encode_sr", "tables"]
