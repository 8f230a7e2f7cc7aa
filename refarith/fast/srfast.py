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
is ``away`` where the value is inexact and the decision is up, else ``down``.  Binary32 subnormals are read in
the target binade they fall in (for E8M0, [2^-127, 2^-126) has ulp 2^-127).  Variants a, b, c and c_odd, where
every exponent of the target's normal range reads the fraction the same way, take F from two integer operations (the
table only for the elements below that range) and gather the code at key << 1 | up from one interleaved table.
Faster still, where the target's ulp sits at one bit d0 of the pattern (its normal range), the decision is the
carry of (bits + add) into bit d0 and the code one gather at (bits + add) >> d0 (:func:`_carry_plan`,
:func:`_encode_sr_carry`); the few elements outside that range take the keyed reading.  For targets of 6 bits or
fewer (E2M1, FP6) whose overflow saturates, the code is computed with no gather at all: the magnitude read in one
fixed-point scale (the pattern in the normal range, a float32 product below it) plus the carry of r, and the sign
(:func:`_scaled_plan`, :func:`_encode_sr_scaled`).
Tested equal to ``cast_bits`` and to the exact model (tests/test_sr_fast.py, tests/test_sr_scaled.py).
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np

from refarith.fast.bitops import NumpyBitOps
from refarith.fast.castkernel import cast_bits, key_representative, sticky_key_suffices
from refarith.formats import FloatFormat

_BLOCK = 1 << 16


@lru_cache(maxsize=256)
def applies(dst: FloatFormat, overflow: str, negative: str) -> bool:
    """Whether :func:`encode_sr` handles this binary32 target (else the caller runs the bit kernel)."""
    return (sticky_key_suffices(dst) and overflow in ("saturate", "inf", "nan") and negative in ("error", "clamp")
            and (dst.emin >= -126 or (dst.emin == -127 and not dst.subnormals)))


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
    # d is clamped where every reading of the fraction is 0 anyway: the significand is below 2^24 and K is at
    # most 32 (k + 1 <= 31 for 32-bit words, k + 17 <= 25 for te_e2m1_8), so any d >= 56 reads F = 0; a smaller
    # clamp would read significand bits as fraction bits for large k
    d = np.minimum(d, 56).astype(np.int64)
    mask = np.where(d >= 24, 0xFFFFFF, (1 << np.minimum(d, 24)) - 1)
    if dst.emin == -127:
        # binary32 subnormals span the target binade [2^-127, 2^-126), where the ulp is 2^(-127 - mbits): d = 22 -
        # mbits, the leading bit 22 excluded; the ones below 2^-127 are under the range of a target without
        # subnormals, whose down and away codes are the same (applies() admits no other target below -126)
        d[0] = 22 - dst.mbits
    mask[0] = (1 << min(int(d[0]), 23)) - 1  # no implicit bit: a binary32 subnormal's significand is below 2^23
    out = []
    for a in (packed, err, d, mask.astype(np.uint32)):
        a = np.ascontiguousarray(a)
        a.setflags(write=False)
        out.append(a)
    return tuple(out)


def _shift_table(d: np.ndarray, kk: int) -> np.ndarray | None:
    """Right shifts d - K per exponent (clamped to 31: the fraction is below 2^24), None where some d < K."""
    if int(d.min()) < kk:
        return None
    return np.minimum(d - kk, 31).astype(np.uint32)


def encode_sr(bits: np.ndarray, dst: FloatFormat, overflow: str, nan_policy: str, negative: str, r: np.ndarray,
              k: int, variant: str, out_dtype: type = np.uint32) -> tuple[np.ndarray, np.ndarray]:
    """(codes as ``out_dtype``, error mask) of binary32 patterns ``bits`` (uint32) with random integers ``r``.

    A zero fraction never rounds up under any variant (the comparisons stay below their bound), so no separate
    inexact test is needed.  Every gather index is in range (a 17-bit key, an 8-bit exponent), so ``take`` runs
    with mode='clip' (no per-element bounds check); the per-exponent mask and shift come from one packed
    table."""
    if variant in ("a", "b", "c", "c_odd", "te_e2m1_8"):
        # the fixed-point reading for targets of 6 bits or fewer, whose normal range starts near 1, so that the carry
        # reading sends much of ordinary data to its fixed-point words; 8-bit targets keep the carry reading, as fast
        # or faster there (docs/benchmarks.md)
        scaled = _scaled_plan(dst, overflow, nan_policy, negative, variant, k) if dst.nbits <= 6 else None
        if scaled is not None:
            return _encode_sr_scaled(bits, dst, overflow, nan_policy, negative, r, k, variant, out_dtype, scaled)
        carry = _carry_plan(dst, overflow, nan_policy, negative, variant, k, np.dtype(out_dtype).str)
        if carry is not None:
            return _encode_sr_carry(bits, dst, overflow, nan_policy, negative, r, k, variant, out_dtype, carry)
    return _encode_sr_keyed(bits, dst, overflow, nan_policy, negative, r, k, variant, out_dtype)


def _encode_sr_keyed(bits: np.ndarray, dst: FloatFormat, overflow: str, nan_policy: str, negative: str,
                     r: np.ndarray, k: int, variant: str, out_dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """:func:`encode_sr` from the sticky key and the fraction read through the per-exponent tables (every
    element, every variant)."""
    packed_t, err_t, d_t, mask_t = tables(dst, overflow, nan_policy, negative)
    if variant in ("a", "b", "c", "c_odd"):
        plan = _regular_plan(dst, overflow, nan_policy, negative, k + (variant != "a"))
        if plan is not None:
            return _encode_sr_regular(bits, dst, overflow, nan_policy, negative, r, k, variant, out_dtype, plan)
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


@lru_cache(maxsize=64)
def _regular_plan(dst: FloatFormat, overflow: str, nan_policy: str, negative: str, kk: int) -> tuple[int, int] | None:
    """(E_reg, c0) when every biased binary32 exponent E >= E_reg, and no other, reads the fraction the same way:
    the mask of :func:`tables` is 2^d0 - 1 and the shift d0 - K = c0 >= 0, with d0 = 23 - mbits (the target's
    normal range).  There F = (bits >> c0) & (2^K - 1), two integer operations instead of a table gather; None
    where that does not hold (then :func:`encode_sr` runs the per-exponent table for every element)."""
    _, _, d_t, mask_t = tables(dst, overflow, nan_policy, negative)
    sh_t = _shift_table(d_t, kk)
    if sh_t is None:
        return None
    d0 = 23 - dst.mbits
    c0 = d0 - kk
    if c0 < 0:
        return None
    regular = (mask_t == (1 << d0) - 1) & (sh_t == c0)
    e_reg = int(np.argmax(regular)) if regular.any() else 256
    if e_reg == 256 or not regular[e_reg:].all() or regular[:e_reg].any():
        return None
    return e_reg, c0


@lru_cache(maxsize=64)
def _clamp_plan(dst: FloatFormat, overflow: str, nan_policy: str, negative: str,
                kk: int) -> tuple[int, int, int] | None:
    """(E_lo, E_hi, c) such that, for every biased binary32 exponent E and significand, the per-exponent table of
    :func:`tables` reads the same F and the same bits below it as the arithmetic G = sig >> s, F = G & (2^K - 1),
    below = sig - (G << s), with sig = (bits & 0x7FFFFF) | 2^23 and s = c - clip(E, E_lo, E_hi); None where that
    fails.  Both readings are bit wirings of the significand (each result bit is one significand bit or 0, plus
    constants), so the check on the significand 0 and on each single bit, for all 256 exponents, covers every
    input.  The bits below F are compared only where F can be nonzero: :func:`_decide` reads them only for an
    odd F."""
    _, _, d_t, mask_t = tables(dst, overflow, nan_policy, negative)
    sh_t = _shift_table(d_t, kk)
    if sh_t is None or dst.emin < -126:
        return None
    e_hi = dst.emin + 127
    c = 23 - dst.mbits - kk + e_hi
    if c - e_hi < 0:
        return None
    e_lo = max(c - 31, 0)
    if e_lo > e_hi:
        return None
    m = np.concatenate([[0], 1 << np.arange(23)]).astype(np.uint32)
    kmask = np.uint32((1 << kk) - 1)
    for e in range(256):
        x = m | np.uint32(e << 23)
        low = (x | np.uint32(0x800000)) & mask_t[e]
        f_t = low >> sh_t[e]
        b_t = low - (f_t << sh_t[e])
        sig = (x & np.uint32(0x7FFFFF)) | np.uint32(0x800000)
        sh = np.uint32(c - min(max(e, e_lo), e_hi))
        g = sig >> sh
        # the bits below F decide only where F is odd (variants c, c_odd), so an exponent whose F is 0 for every
        # significand (binary32 subnormals: the implicit bit of sig is not theirs) needs equal F only
        if not (np.array_equal(g & kmask, f_t) and (np.array_equal(sig - (g << sh), b_t) or not f_t.any())):
            return None
    return e_lo, e_hi, c


@lru_cache(maxsize=64)
def _pair_codes(dst: FloatFormat, overflow: str, nan_policy: str, negative: str,
                dtype: str) -> tuple[np.ndarray, np.ndarray | None, int | None]:
    """(codes, errors, limit) indexed by key << 1 | up: entry 2 key is the key's ``down`` code, 2 key + 1 its
    ``away`` code (:func:`tables`), in ``dtype``.  Error keys hold a sentinel above every code (limit = the largest
    code) when ``dtype`` has a spare value, and errors is None; else errors is the error flag per index and limit
    None.  Without errors both are None."""
    packed_t, err_t, _, _ = tables(dst, overflow, nan_policy, negative)
    dt = np.dtype(dtype)
    pair = np.empty(2 * packed_t.size, dtype=dt)
    pair[0::2] = packed_t & np.uint32(0xFFFF)
    pair[1::2] = packed_t >> np.uint32(16)
    errs, limit = None, None
    if err_t.any():
        if dst.ncodes - 1 < np.iinfo(dt).max:
            limit = dst.ncodes - 1
            pair[np.repeat(err_t, 2)] = np.iinfo(dt).max
        else:
            errs = np.ascontiguousarray(np.repeat(err_t, 2))
            errs.setflags(write=False)
    pair.setflags(write=False)
    return pair, errs, limit


def _encode_sr_regular(bits: np.ndarray, dst: FloatFormat, overflow: str, nan_policy: str, negative: str,
                       r: np.ndarray, k: int, variant: str, out_dtype: type,
                       plan: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`encode_sr` for variants a, b, c and c_odd where :func:`_regular_plan` holds.  Per element: the key,
    F from two operations (the per-exponent table only for the few elements below 2^(E_reg - 127)), up = (F + r)
    >> k for a, (F + 2r + 1) >> (k + 1) for b (0 or 1: F, r < 2^K), :func:`_decide` for c and c_odd (with the
    bits below F, bits & (2^c0 - 1)), then one gather at key << 1 | up, straight into the codes.  Bit for bit the
    same as the general loop of :func:`encode_sr`."""
    e_reg, c0 = plan
    kk = k if variant == "a" else k + 1
    rounds_half = variant in ("c", "c_odd")
    pair, perr, limit = _pair_codes(dst, overflow, nan_policy, negative, np.dtype(out_dtype).str)
    _, _, d_t, mask_t = tables(dst, overflow, nan_policy, negative)
    ex_t = _packed_ex_table(mask_t, _shift_table(d_t, kk))
    clamp = _clamp_plan(dst, overflow, nan_policy, negative, kk)
    n = bits.size
    codes = np.empty(n, dtype=out_dtype)
    errs = np.zeros(n, dtype=bool)
    m0 = min(_BLOCK, n)
    y = np.empty(m0, dtype=np.uint32)
    f = np.empty(m0, dtype=np.uint32)
    e = np.empty(m0, dtype=np.uint32)
    small = np.empty(m0, dtype=bool)
    below = np.empty(m0, dtype=np.uint32) if rounds_half else None
    if rounds_half:
        half = np.empty(m0, dtype=np.uint32)
        odd = np.empty(m0, dtype=np.uint32)
        nz = np.empty(m0, dtype=bool)
    c15 = np.uint32(0x7FFF)
    kmask = np.uint32((1 << kk) - 1)
    e_lim = np.uint32(e_reg << 23)
    for a in range(0, n, _BLOCK):
        x = bits[a:a + _BLOCK]
        m = x.size
        yb, fb, eb, sb = y[:m], f[:m], e[:m], small[:m]
        np.bitwise_and(x, c15, out=yb)  # the sticky key (castkernel.sticky_key), then << 1
        yb += c15
        yb |= x
        yb >>= np.uint32(15)
        yb <<= np.uint32(1)
        bl = below[:m] if below is not None else None
        # below the target's normal range (E < E_reg) the fraction sits elsewhere: where such elements are few,
        # they are patched from the per-exponent table; where they are many, every element takes its shift from
        # the clamped exponent (_clamp_plan).  Both give the table's bits.
        n_small = 0
        if e_reg > 0:
            np.bitwise_and(x, np.uint32(0x7F800000), out=eb)
            np.less(eb, e_lim, out=sb)
            n_small = int(np.count_nonzero(sb))
        if clamp is not None and 16 * n_small > m:
            np.right_shift(x, np.uint32(23), out=eb)
            eb &= np.uint32(0xFF)
            np.clip(eb, np.uint32(clamp[0]), np.uint32(clamp[1]), out=eb)
            np.subtract(np.uint32(clamp[2]), eb, out=eb)
            np.bitwise_and(x, np.uint32(0x7FFFFF), out=fb)
            fb |= np.uint32(0x800000)
            if bl is not None:
                bl[...] = fb
            fb >>= eb
            if bl is not None:
                bl -= fb << eb
            fb &= kmask
        else:
            np.right_shift(x, np.uint32(c0), out=fb)
            fb &= kmask
            if bl is not None:
                np.bitwise_and(x, np.uint32((1 << c0) - 1), out=bl)
            if n_small:
                j = np.flatnonzero(sb)
                xs = x[j]
                t = ex_t[xs >> np.uint32(23)]
                sh = t >> np.uint32(24)
                low = (xs | np.uint32(0x800000)) & (t & np.uint32(0xFFFFFF))
                fj = low >> sh
                fb[j] = fj
                if bl is not None:
                    bl[j] = low - (fj << sh)
        rb = r[a:a + m]
        if rounds_half:  # _decide for c and c_odd, in the block buffers
            hb, gb, zb = half[:m], odd[:m], nz[:m]
            np.bitwise_and(fb, np.uint32(1), out=hb)  # the bit below t: a half
            fb >>= np.uint32(1)  # t = floor(frac * 2^k)
            np.bitwise_and(fb, np.uint32(1), out=gb)  # t odd
            if variant == "c_odd":
                gb ^= np.uint32(1)
            np.not_equal(bl, 0, out=zb)  # more below the half
            np.bitwise_or(gb, zb, out=gb)
            hb &= gb  # inc: above the half, or a tie with t odd (c) / even (c_odd)
            fb += hb
            np.add(fb, rb, out=fb, casting="unsafe")
            fb >>= np.uint32(k)  # t + inc + r < 2^(k+1): up is 0 or 1
            yb |= fb
        else:
            np.add(fb, rb, out=fb, casting="unsafe")
            if variant == "b":
                np.add(fb, rb, out=fb, casting="unsafe")
                fb += np.uint32(1)
            fb >>= np.uint32(kk)
            yb |= fb
        cb = codes[a:a + m]
        np.take(pair, yb, out=cb, mode="clip")  # every index is below 2^18, the table's length
        if perr is not None:
            np.take(perr, yb, out=errs[a:a + m], mode="clip")
        elif limit is not None and int(cb.max()) > limit:
            bad = cb > limit
            errs[a:a + m] = bad
            cb[bad] = 0
    return codes, errs


@lru_cache(maxsize=64)
def _carry_plan(dst: FloatFormat, overflow: str, nan_policy: str, negative: str, variant: str, k: int,
                dtype: str) -> tuple[np.ndarray, int, int, np.ndarray | None, int] | None:
    """(table, d0, p, small table or None, E_reg) for the carry reading of :func:`_encode_sr_carry`, or None where
    it does not hold.

    In the target's normal range (biased binary32 exponent E_reg <= E <= 254, :func:`_regular_plan`) the target's
    ulp is bit d0 = 23 - mbits of the pattern and the variant's fraction F the bits just below it, so adding the
    random integer at bit p = d0 - k (with the variant's constants) carries into bit d0 exactly when the variant
    rounds up: (bits + add) >> d0 = (bits >> d0) + up, and add < 2^d0.  The table maps that index h to the
    ``down`` code of the pattern h << d0 (:func:`_pair_codes`), or to S, the largest value of the code dtype,
    which sends the element to the keyed path: every h outside the range (E < E_reg, E = 255: infinities, NaNs,
    and the carry out of E = 254), the lowest h of E_reg (which a carry out of E_reg - 1 also reaches), and the
    error keys.  So S marks every element outside the range, a NaN whose sum wraps included (it lands at E = 0,
    below E_reg >= 1).  Checked here on every sticky key of the range: table[h] is S or the key's ``down`` code,
    and, for an inexact key (the only ones that can round up), table[h + 1] is S or its ``away`` code.
    te_e2m1_8 reads the fraction as variant a with k = 8 there: with d = d0 = 22 and j = 15, floor(frac * 2^23) +
    r * 2^15 + 1 >= 2^23 is rem + r * 2^14 >= 2^22 - 1/2, that is floor(rem / 2^14) + r >= 2^8
    (:func:`refarith.fast.castkernel._sr_up`)."""
    if variant == "te_e2m1_8" and (dst.name != "ocp_e2m1" or k != 8):
        return None
    kk = k if variant in ("a", "te_e2m1_8") else k + 1
    plan = _regular_plan(dst, overflow, nan_policy, negative, kk)
    d0 = 23 - dst.mbits
    if plan is None or d0 < 16:
        return None
    e_reg, c0 = plan
    if not 1 <= e_reg <= 254 or c0 + kk != d0:
        return None
    pair, perr, _ = _pair_codes(dst, overflow, nan_policy, negative, dtype)
    s_code = np.iinfo(pair.dtype).max
    if perr is not None:
        pair = np.where(perr, s_code, pair).astype(pair.dtype)
    sh = d0 - 15  # key bits below the ulp (the sticky bit included)
    h = np.arange(1 << (32 - d0), dtype=np.int64)
    e = (h >> (23 - d0)) & 0xFF
    lowest = (h & ((1 << (31 - d0)) - 1)) == e_reg << (23 - d0)  # E_reg and a zero significand, either sign
    inside = (e >= e_reg) & (e <= 254) & ~lowest
    table = np.full(h.size, s_code, dtype=pair.dtype)
    table[inside] = pair[2 * (h[inside] << sh)]
    if not _range_ok(table, pair, s_code, e_reg, d0):
        return None
    table.setflags(write=False)
    return table, d0, d0 - k, _small_table(table, pair, s_code, dst, e_reg, d0, d0 - k, variant), e_reg


def _range_ok(table: np.ndarray, pair: np.ndarray, s_code: int, e_reg: int, d0: int) -> bool:
    """Whether, on every sticky key of the range E_reg <= E <= 254, table[h] is S or the key's ``down`` code and,
    for an inexact key, table[h + 1] is S or its ``away`` code (h = key >> (d0 - 15))."""
    sh = d0 - 15  # key bits below the ulp (the sticky bit included)
    keys = np.arange(1 << 17, dtype=np.int64)
    ek = (keys >> 8) & 0xFF
    keys = keys[(ek >= e_reg) & (ek <= 254)]
    hk = keys >> sh
    inexact = keys & ((1 << sh) - 1) != 0
    down, away = table[hk], table[hk[inexact] + 1]
    return bool(np.all((down == s_code) | (down == pair[2 * keys]))
                and np.all((away == s_code) | (away == pair[2 * keys[inexact] + 1])))


def _small_table(table: np.ndarray, pair: np.ndarray, s_code: int, dst: FloatFormat, e_reg: int, d0: int, p: int,
                 variant: str) -> np.ndarray | None:
    """The table of :func:`_carry_plan` for blocks whose elements below the range are read in fixed point: an
    element of biased exponent E < E_reg becomes sign | (C + sig'), C = (E_reg - 1) << 23, sig' = floor(|x| /
    2^(E_reg - 150)) (the significand shifted right by t = E_reg - E, clamped at 24: E_reg >= 25 makes every value
    of E <= 1 read 0), with a sticky bit at bit 0 for c and c_odd (the bits shifted out, nonzero: p >= 2 keeps it
    below the half).  Then bits [p, d0) of sig' are floor(frac * 2^k) at the target's ulp 2^(E_reg - 150 + d0),
    so the same add carries as in the range, and the index lands at sign | ((E_reg - 1) << (23 - d0)) + m, m the
    magnitude in ulps (m = 2^mbits: the lowest h of E_reg, the smallest normal).  Those entries get the codes of
    the pair table, checked on every sticky key below the range: ``down`` at m = floor(|x| / ulp), and for an
    inexact key ``away`` at m + 1.  None where E_reg < 25, p < 2, or the check fails."""
    if e_reg < 25 or p < 2 or variant == "te_e2m1_8":
        return None
    small = table.copy()
    sb = 31 - d0  # the sign's bit in h
    hc = (e_reg - 1) << (23 - d0)
    keys = np.arange(1 << 17, dtype=np.int64)
    ek = (keys >> 8) & 0xFF
    keys = keys[ek < e_reg]
    ek = ek[ek < e_reg]
    rep = (keys >> 1) << 16 | (keys & 1)  # castkernel.key_representative
    sig = np.where(ek > 0, (rep & 0x7FFFFF) | 0x800000, rep & 0x7FFFFF)
    drop = e_reg - np.maximum(ek, 1) + d0  # |x| / ulp = sig / 2^drop
    mag = np.where(drop >= 40, 0, sig >> np.minimum(drop, 40))
    inexact = sig != mag << np.minimum(drop, 40)
    if int(mag.max()) >= 1 << dst.mbits:
        return None
    hk = (keys >> 16) << sb | (hc + mag)
    small[hk] = pair[2 * keys]
    hi = hk[inexact] + 1
    small[hi] = pair[2 * keys[inexact] + 1]
    if not (np.array_equal(small[hk], pair[2 * keys]) and np.array_equal(small[hi], pair[2 * keys[inexact] + 1])
            and _range_ok(small, pair, s_code, e_reg, d0)):
        return None
    small.setflags(write=False)
    return small


def _encode_sr_carry(bits: np.ndarray, dst: FloatFormat, overflow: str, nan_policy: str, negative: str,
                     r: np.ndarray, k: int, variant: str, out_dtype: type,
                     carry: tuple[np.ndarray, int, int, np.ndarray | None, int]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`encode_sr` by the carry reading of :func:`_carry_plan`: per element, idx = (bits + add) >> d0 and
    one gather from a table of 2^(32 - d0) codes, with add, for r at bit p = d0 - k:

    * a (and te_e2m1_8 in the target's normal range): r << p, so the carry is (F + r) >> k;
    * b: (r << p) + 2^(p-1) = (2r + 1) << (p - 1), so the carry is (F + 2r + 1) >> (k + 1);
    * c, c_odd: (r << p) + 2^(p-1) - 1 + o (c) or 2^(p-1) - o (c_odd), o = bit p of the pattern: the fraction is
      first rounded to k bits, ties to even t (c) or odd t (c_odd), at bit p -- the carry out of the bits below p
      is half & (below != 0 | t odd) (c), half & (below != 0 | t even) (c_odd), the bits left below p stay under
      2^p -- and then r is added to t, so the carry is (t + inc + r) >> k.

    The sum stays below 2^32 in the range (the carry into bit d0 is 0 or 1, E <= 254).  The elements whose gather
    gives S (the table's marker: every element outside the range, and a few inside it) are computed by
    :func:`_encode_sr_keyed` afterwards, in one call, which also gives the error flags."""
    table, d0, p, small_t, e_reg = carry
    n = bits.size
    codes = np.empty(n, dtype=out_dtype)
    errs = np.zeros(n, dtype=bool)
    m0 = min(_BLOCK, n)
    y = np.empty(m0, dtype=np.uint32)
    rounds_half = variant in ("c", "c_odd")
    w = np.empty(m0, dtype=np.uint32) if rounds_half else None
    marked = np.empty(m0, dtype=bool)
    const = 0 if variant in ("a", "te_e2m1_8") else (1 << (p - 1)) - (1 if variant == "c" else 0)
    sp, sd, one = np.uint32(p), np.uint32(d0), np.uint32(1)
    s_code = int(np.iinfo(table.dtype).max)
    patch = []
    fixed = None  # the fixed-point reading below the range, switched on by a block with many marked elements
    a = 0
    while a < n:
        x = bits[a:a + _BLOCK]
        m = x.size
        yb = y[:m]
        src, tab = x, table
        if fixed is not None:
            src, tab = _fixed_point_words(x, fixed, e_reg, rounds_half), small_t
        np.left_shift(r[a:a + m], sp, out=yb, dtype=np.uint32, casting="unsafe")
        yb += src
        if const:
            yb += np.uint32(const)
        if w is not None:
            wb = w[:m]
            np.right_shift(src, sp, out=wb)
            wb &= one
            if variant == "c":
                yb += wb
            else:
                yb -= wb
        yb >>= sd
        cb = codes[a:a + m]
        np.take(tab, yb, out=cb, mode="clip")  # every index is below 2^(32 - d0), the table's length
        if int(cb.max()) == s_code:
            mb = marked[:m]
            np.equal(cb, s_code, out=mb)
            if fixed is None and small_t is not None and 16 * int(np.count_nonzero(mb)) > m:
                fixed = tuple(np.empty(m0, dtype=np.uint32) for _ in range(4))
                continue  # this block again, in fixed point
            patch.append(np.flatnonzero(mb) + a)
        a += m
    if patch:
        j = np.concatenate(patch)
        codes[j], errs[j] = _encode_sr_keyed(bits[j], dst, overflow, nan_policy, negative, r[j], k, variant,
                                             out_dtype)
    return codes, errs


@lru_cache(maxsize=64)
def _scaled_plan(dst: FloatFormat, overflow: str, nan_policy: str, negative: str, variant: str,
                 k: int) -> tuple[int, int, int, int, int, str] | None:
    """(C, s, d0, p, S, tail dtype) for the arithmetic reading of :func:`_encode_sr_scaled`, or None where it does
    not hold.

    With the sign cleared and the magnitude clamped at the target's largest finite value (A = min(bits &
    0x7FFFFFFF, S), S its binary32 pattern), let V = A - A' + q, A' = min(A, E_reg << 23) and q = floor(A' * 2^s)
    (A' read as binary32, s = 150 - E_reg; E_reg: the lowest biased binary32 exponent of the target's normal
    range, :func:`_regular_plan`).  In that range q = 2^23 and V = A - C, C = (E_reg - 1) << 23, which is
    ((E - E_reg + 1) << 23) | mantissa with the target's ulp at bit d0 = 23 - mbits; below it V = q, |x| in units
    of 2^-s, where the target's ulp (its subnormal spacing) is again bit d0.  So V reads |x| in fixed point with
    the ulp at bit d0 everywhere, V >> d0 is the magnitude code, and the variant rounds up where the random
    integer added at bit p = d0 - k carries into bit d0: up = ((V >> p) + r) >> k, r << p having no bits below p.
    The code is ((V >> d0) + up) | sign; the clamped S is exact, so a value above it gives the largest code.

    Checked here on every sticky key below E = 255, both signs (the patterns of one key share V >> d0 and their
    exactness, the ulp being at bit 16 or above, and S has no bits below 16): (V >> d0) | sign is the key's
    ``down`` code and, for an inexact key (:func:`tables`' fraction mask), the code one up, or the largest code
    from S up, is its ``away`` code, and no such key is an error.  That is where the overflow rule enters (it holds
    where it saturates); infinities and NaNs, where the NaN policy acts, go to the keyed path.  The tail, (V >> p)
    + r and what follows, runs in int16 where it fits.  None for unsigned targets, for p < 2, where the check
    fails, and for te_e2m1_8 on targets other than E2M1 with k = 8."""
    if not dst.signed or dst.sign_mask != 1 << (dst.nbits - 1):
        return None
    if variant == "te_e2m1_8" and (dst.name != "ocp_e2m1" or k != 8):
        return None
    plan = _regular_plan(dst, overflow, nan_policy, negative, k if variant in ("a", "te_e2m1_8") else k + 1)
    d0 = 23 - dst.mbits
    if plan is None or d0 - k < 2 or d0 < 16 or not 2 <= plan[0] <= 200:
        return None
    e_reg = plan[0]
    c_off, s = (e_reg - 1) << 23, 150 - e_reg
    sat = int(np.float32(float(dst.max)).view(np.uint32))
    if Fraction(float(np.uint32(sat).view(np.float32))) != dst.max or sat & 0xFFFF or sat < e_reg << 23:
        return None
    pair, perr, limit = _pair_codes(dst, overflow, nan_policy, negative, "<u4")
    _, _, _, mask_t = tables(dst, overflow, nan_policy, negative)
    keys = np.arange(1 << 17, dtype=np.int64)
    keys = keys[(keys >> 8) & 0xFF < 255]
    rep = ((keys >> 1) << 16 | (keys & 1)).astype(np.uint32)  # castkernel.key_representative
    a = np.minimum(rep & np.uint32(0x7FFFFFFF), np.uint32(sat))
    ac = np.minimum(a, np.uint32(e_reg << 23))
    q = (ac.view(np.float32) * np.float32(2.0 ** s)).astype(np.int64)
    mag = (a.astype(np.int64) - ac + q) >> d0
    sign = (rep.astype(np.int64) >> 31) << (dst.nbits - 1)
    inexact = ((rep | np.uint32(0x800000)) & mask_t[(rep >> 23) & 0xFF]) != 0
    up = mag + (a < sat)
    down, away = pair[2 * keys].astype(np.int64), pair[2 * keys + 1].astype(np.int64)
    if perr is not None and perr[2 * keys].any() or limit is not None and int(np.maximum(down, away).max()) > limit:
        return None
    if not (np.array_equal(mag | sign, down) and np.array_equal((up | sign)[inexact], away[inexact])):
        return None
    tail = "<i2" if ((sat - c_off) >> (d0 - k)) + (1 << k) < 1 << 15 else "<i4"
    return c_off, s, d0, d0 - k, sat, tail


def _encode_sr_scaled(bits: np.ndarray, dst: FloatFormat, overflow: str, nan_policy: str, negative: str,
                      r: np.ndarray, k: int, variant: str, out_dtype: type,
                      plan: tuple[int, int, int, int, int, str]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`encode_sr` by the fixed-point reading of :func:`_scaled_plan`, in int32, float32 and int16 element
    operations (no gather).  Per element, with V = A - A' + q and p = d0 - k:

    * a: up = ((V >> p) + r) >> k;
    * b: V + 2^(p-1) first, so up = (F + 2r + 1) >> (k + 1), F the k + 1 bits below the ulp (ties round up);
    * c, c_odd: as b, except at an exact tie (the bits of V below p are 2^(p-1) and q lost no bits: the product
      A' * 2^s is an integer) with t = bit p of V even (c) or odd (c_odd), where V - 1 + 2^(p-1) does not carry:
      such ties stay at t, every other value rounds to its nearest, so up = (t + inc + r) >> k with t rounded to
      k bits, ties to even (odd) t.  A value of V with those low bits that is not an exact tie (q dropped
      nonzero bits) lies above the half and keeps b's carry;
    * te_e2m1_8 (E2M1, k = 8, s = 23): q = (floor(A' * 2^26) + 1) >> 3.  TE's rule rounds up where floor(frac *
      2^(8+j)) + r * 2^j + 1 >= 2^(8+j) (:func:`refarith.fast.castkernel._sr_up`), j = 17 for the magnitude 0,
      16 for 0.5 and 15 above.  Below 2^-2 (n = 0, frac = 2|x|) that is floor(|x| * 2^26) + 1 + r * 2^17 >= 2^25,
      i.e. ((floor(|x| * 2^26) + 1) >> 3) + r * 2^14 >= 2^22 (2^25 and r * 2^17 are multiples of 8): the carry of
      a.  In [2^-2, 1) |x| * 2^26 is a multiple of 2 or 4, so the + 1 changes nothing and q is a's; there, and
      from 1 up (:func:`_carry_plan`), binary32 has no bits that far below the ulp and TE's decision is a's.

    The products are exact (a power of two times a binary32 value of at most 2^(E_reg - 127); a binary32
    subnormal gives q = 0 and is no tie, so flushing subnormals in the floating-point unit would change nothing),
    and the conversion truncates, so q is exact.  The sign comes back as 2^(nbits - 1) where the pattern is
    negative as int32.  The NaN and infinity patterns (A >= 0x7F800000 before the clamp) are taken by
    :func:`_encode_sr_keyed` afterwards, in one call, which gives their codes and error flags."""
    c_off, s, d0, p, sat, tail = plan
    e_one = c_off + (1 << 23)
    n = bits.size
    codes = np.empty(n, dtype=out_dtype)
    errs = np.zeros(n, dtype=bool)
    m0 = min(_BLOCK, n)
    v, q = np.empty(m0, dtype=np.int32), np.empty(m0, dtype=np.int32)
    fl = np.empty(m0, dtype=np.float32)
    u = np.empty(m0, dtype=np.dtype(tail))
    neg = np.empty(m0, dtype=bool)
    s8 = np.empty(m0, dtype=np.uint8)
    sat_a, one_a = np.full(m0, sat, dtype=np.int32), np.full(m0, e_one, dtype=np.int32)  # array operands: numpy's
    # minimum of an int32 array and a scalar runs about twice as long as of two arrays
    te = variant == "te_e2m1_8"
    tie = {"c": 1 << (p - 1), "c_odd": 3 << (p - 1)}.get(variant)
    if tie is not None:
        tb = np.empty(m0, dtype=np.int32)
        hit = np.empty(m0, dtype=bool)
    const = np.int32(1 << (p - 1)) if variant in ("b", "c", "c_odd") else None
    scale = np.float32(2.0 ** (s + 3 if te else s))
    sp, sk, sign_code = np.int32(p), u.dtype.type(k), np.uint8(dst.sign_mask)
    special = np.int32(0x7F800000)
    patch = []
    for a in range(0, n, _BLOCK):
        x = bits[a:a + _BLOCK]
        m = x.size
        vb, qb, fb, ub, nb, sb = v[:m], q[:m], fl[:m], u[:m], neg[:m], s8[:m]
        np.bitwise_and(x, np.uint32(0x7FFFFFFF), out=vb.view(np.uint32))
        if int(vb.max()) >= special:
            patch.append(np.flatnonzero(vb >= special) + a)
        np.less(x.view(np.int32), np.int32(0), out=nb)
        np.minimum(vb, sat_a[:m], out=vb)  # A
        np.minimum(vb, one_a[:m], out=qb)  # A'
        np.multiply(qb.view(np.float32), scale, out=fb)
        vb -= qb
        np.copyto(qb, fb, casting="unsafe")  # truncation: the floor of a nonnegative product
        if te:
            qb += np.int32(1)
            qb >>= np.int32(3)
        vb += qb  # V
        if tie is not None:
            tt, hb = tb[:m], hit[:m]
            np.bitwise_and(vb, np.int32((2 << p) - 1), out=tt)
            np.equal(tt, np.int32(tie), out=hb)
            if hb.any():
                j = np.flatnonzero(hb)
                vb[j] -= fb[j] == qb[j]  # exact ties only
        if const is not None:
            vb += const
        np.right_shift(vb, sp, out=ub, casting="unsafe")  # < 2^15 where the tail is int16 (A <= S)
        np.add(ub, r[a:a + m], out=ub, casting="unsafe")
        ub >>= sk
        cb = codes[a:a + m]
        np.copyto(cb, ub, casting="unsafe")
        np.multiply(nb.view(np.uint8), sign_code, out=sb)
        np.bitwise_or(cb, sb, out=cb, casting="unsafe")
    if patch:
        j = np.concatenate(patch)
        codes[j], errs[j] = _encode_sr_keyed(bits[j], dst, overflow, nan_policy, negative, r[j], k, variant,
                                             out_dtype)
    return codes, errs


def _fixed_point_words(x: np.ndarray, bufs: tuple, e_reg: int, sticky: bool) -> np.ndarray:
    """The words of :func:`_small_table`'s reading, with no select: W = x - sig + (t << 23) + (sig >> t) modulo
    2^32, t = E_reg - clip(E, E_reg - 24, E_reg), sig = (x & 0x7FFFFF) | 2^23.  For E >= E_reg (t = 0) that is x;
    for 1 <= E < E_reg, since x - sig = sign | (E - 1) << 23, it is sign | (C + sig'); below E_reg - 24 it is
    sign | (E + 23) << 23, and for binary32 subnormals (E = 0) sign | 23 << 23: indices of the marker S.  With
    ``sticky``, bit 0 is set where the shift dropped nonzero bits ((sig >> t) << t != sig; never for t = 0)."""
    m = x.size
    t, sig, w, q = (b[:m] for b in bufs)
    np.bitwise_and(x, np.uint32(0x7F800000), out=t)
    np.clip(t, np.uint32((e_reg - 24) << 23), np.uint32(e_reg << 23), out=t)
    np.subtract(np.uint32(e_reg << 23), t, out=t)  # t << 23
    np.bitwise_and(x, np.uint32(0x7FFFFF), out=sig)
    sig |= np.uint32(0x800000)
    np.subtract(x, sig, out=w)
    w += t
    t >>= np.uint32(23)
    np.right_shift(sig, t, out=q)
    w += q
    if sticky:
        q <<= t
        np.not_equal(q, sig, out=q)  # 0 or 1
        w |= q
    return w


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
