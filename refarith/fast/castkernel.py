"""The cast kernel: source bit patterns -> destination codes, written once over :mod:`refarith.fast.bitops`.

Status: complete for every rounding mode (rne rna rtz rup rdn rto sr, with every
stochastic variant of :mod:`refarith.exact.stochastic`), overflow
mode (IEEE/OCP saturate, inf, nan and P3109 satnone, satfinite, satpropagate),
NaN policy and negative policy (error, clamp, nan, project) of
:mod:`refarith.exact.rounding`, from any
FloatFormat source whose normalized significand fits the word (binary64 in
64-bit words; binary32, tf32 and every format of 16 bits or fewer in 32-bit
words) and from IntFormat sources (two's complement / unsigned, 64-bit words),
into any FloatFormat destination of 16 bits or fewer.  Tested equal to the exact
model exhaustively for 16-bit sources and on boundary + random binary32 inputs
(tests/test_fast_cast.py); the Z3 equivalence proof runs the same code on
bit-vectors.

Semantics are those of :func:`refarith.exact.rounding.round_value` (its
docstring is the specification).  Algorithm, in words: decode the source into
(sign, class, significand, exponent); normalize the significand so its leading
1 sits at bit ``TOP``; with e = floor(log2 |x|) and e_eff = max(e, emin) of the
destination, shift right by d = TOP - mbits + (e_eff - e), keeping the removed
bits ``rem``; the truncated code is ((e_eff - emin) << mbits) + n (minus the
implicit bit for formats without subnormals), which is the destination's code
ordering extended with an unbounded exponent, so "+1" rounds up across binades
and "code > max_code" is exactly "rounded value > max".  Ties-to-even and
round-to-odd look at the truncated code's LSB (this is E8M0's even exponent).
Shift counts are clamped to width-1, which is exact because the normalized
significand is below 2^(width-2) (every removed value then stays below half).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact.rounding import NAN_PROJECTING_MODES, cast_default_overflow, check_modes, default_negative
from refarith.exact.stochastic import DEFAULT_SR_VARIANT, check_variant
from refarith.fast.bitops import BitOps
from refarith.formats import FloatFormat, IntFormat, get_format

MAX_DST_BITS = 16


@dataclass(frozen=True)
class _Plan:
    """Static constants of one (src, dst, k) kernel instance."""

    top: int  # bit position of the normalized significand's leading 1
    off: int  # exponent offset: eb = e + a
    a: int
    emin_b: int  # destination emin in the eb scale
    eb_max: int  # largest eb of any finite nonzero source value


def _plan(src: FloatFormat | IntFormat, dst: FloatFormat, width: int) -> _Plan:
    md = dst.mbits
    if isinstance(src, IntFormat):
        top = width - 3
        off = max(0, -dst.emin)
        a = off
        eb_max = src.bits - 1 + off + 1
        return _Plan(top, off, a, dst.emin + a, eb_max)
    ms = src.mbits
    g = max(0, md - ms)
    off = max(0, -(dst.emin + ms + src.bias))
    a = ms + off + src.bias
    eb_max = src.emask + ms + off
    return _Plan(ms + g, off, a, dst.emin + a, eb_max)


def sr_fraction_bits(rand_bits: int | None, sr_variant: str = DEFAULT_SR_VARIANT) -> int | None:
    """Fraction bits the stochastic decision of ``sr_variant`` reads with k = ``rand_bits`` (k + 1 for ``b``,
    8 + 17 for ``te_e2m1_8``); None for deterministic rounding."""
    if rand_bits is None:
        return None
    if sr_variant == "b":
        return rand_bits + 1
    if sr_variant == "te_e2m1_8":
        return rand_bits + 17
    return rand_bits


def required_width(src: FloatFormat | IntFormat | str, dst: FloatFormat | str, rand_bits: int | None = None,
                   sr_variant: str = DEFAULT_SR_VARIANT) -> int:
    """Smallest word width (32 or 64) for which :func:`cast_bits` is exact for this pair."""
    src, dst = get_format(src), get_format(dst)
    kb = sr_fraction_bits(rand_bits, sr_variant)
    for w in (32, 64):
        if _fits(src, dst, w, kb):
            return w
    raise BadValueError(f"cast {src.name}->{dst.name} (rand_bits={rand_bits}, sr={sr_variant}) does not fit "
                        "64-bit words")


def _fits(src: FloatFormat | IntFormat, dst: FloatFormat, width: int, rand_bits: int | None) -> bool:
    if isinstance(src, IntFormat):
        if width != 64:
            return False
    elif src.mbits + max(0, dst.mbits - src.mbits) > width - 3:
        return False
    p = _plan(src, dst, width)
    hi = (max(0, p.eb_max - p.emin_b) << dst.mbits) + (1 << (dst.mbits + 1))
    if hi >= 1 << (width - 1):
        return False
    if rand_bits is not None:
        if rand_bits > width - 2:
            return False
        if isinstance(src, IntFormat) and rand_bits > p.top - dst.mbits - 2:
            return False
    return True


def _check(src, dst, rounding, overflow, nan_policy, negative, rand_bits, width, sr_variant=DEFAULT_SR_VARIANT):
    src, dst = get_format(src), get_format(dst)
    if not isinstance(dst, FloatFormat) or dst.nbits > MAX_DST_BITS:
        raise BadValueError(f"cast kernel targets float formats of at most {MAX_DST_BITS} bits, not {dst.name}")
    if overflow is None:
        overflow = cast_default_overflow(dst)
    check_modes(dst, rounding, overflow, nan_policy, negative)
    if rounding == "sr":
        if not isinstance(rand_bits, int) or rand_bits < 1:
            raise UnknownModeError(f"stochastic rounding needs rand_bits >= 1, got {rand_bits!r}")
        check_variant(sr_variant, rand_bits, dst.name)
    else:
        rand_bits = None
    if not _fits(src, dst, width, sr_fraction_bits(rand_bits, sr_variant)):
        raise BadValueError(f"cast {src.name}->{dst.name} (rand_bits={rand_bits}) needs wider than {width}-bit words")
    return src, dst, overflow, rand_bits


def _decode_float(ops: BitOps, x, src: FloatFormat, p: _Plan):
    """(sign, nan, inf, zero, sig normalized to bit p.top, eb) of source codes."""
    c = lambda v: ops.const(v, x)  # noqa: E731
    ms = src.mbits
    if src.signed:
        sign = ops.and_(ops.shr(x, src.ebits + ms), c(1))
    else:
        sign = c(0)
    e_f = ops.and_(ops.shr(x, ms), c(src.emask))
    m_f = ops.and_(x, c(src.mmask))
    if src.specials == "ieee":
        e_all = ops.eq(e_f, c(src.emask))
        nan = ops.band(e_all, ops.ne(m_f, c(0)))
        inf = ops.band(e_all, ops.eq(m_f, c(0)))
    else:
        nan = ops.mfalse(x)
        for code in sorted(src.nan_codes):
            nan = ops.bor(nan, ops.eq(x, c(code)))
        inf = ops.mfalse(x)
        for code in src.inf_codes:
            if code is not None:
                inf = ops.bor(inf, ops.eq(x, c(code)))
    implicit = c(1 << ms)
    if src.subnormals:
        sub = ops.eq(e_f, c(0))
        sig = ops.where(sub, m_f, ops.or_(m_f, implicit))
        es = ops.where(sub, c(1), e_f)
        zero = ops.band(sub, ops.eq(m_f, c(0)))
    else:
        sig = ops.or_(m_f, implicit)
        es = e_f
        zero = ops.mfalse(x)
    # leading zeros inside the (ms+1)-bit significand field; ms+1 for a zero significand
    lz = ops.sub(ops.clz(sig), c(ops.width - ms - 1))
    lz = ops.umin(lz, c(ms + 1))
    sig_n = ops.shl(sig, ops.umin(lz, c(ops.width - 1)))
    sig_w = ops.shl(sig_n, p.top - ms) if p.top > ms else sig_n
    eb = ops.sub(ops.add(es, c(ms + p.off)), lz)
    return sign, nan, inf, zero, sig_w, eb


def _decode_int(ops: BitOps, x, src: IntFormat, p: _Plan):
    """Integer source codes: sign and magnitude, normalized to bit p.top with a sticky bit."""
    c = lambda v: ops.const(v, x)  # noqa: E731
    n = src.bits
    nmask = (1 << n) - 1
    x = ops.and_(x, c(nmask))
    if src.signed:
        sign = ops.and_(ops.shr(x, n - 1), c(1))
        neg_mag = ops.and_(ops.sub(c(0), x), c(nmask))
        mag = ops.where(ops.eq(sign, c(1)), neg_mag, x)
    else:
        sign = c(0)
        mag = x
    zero = ops.eq(mag, c(0))
    lz = ops.clz(mag)
    sig_n = ops.shl(mag, ops.umin(lz, c(ops.width - 1)))  # leading 1 at bit width-1
    drop = ops.width - 1 - p.top
    sticky = ops.ne(ops.and_(sig_n, c((1 << drop) - 1)), c(0))
    sig_w = ops.or_(ops.shr(sig_n, drop), ops.where(sticky, c(1), c(0)))
    eb = ops.sub(c(ops.width - 1 + p.off), lz)
    f = ops.mfalse(x)
    return sign, f, f, zero, sig_w, eb


def cast_bits(ops: BitOps, x, src: FloatFormat | IntFormat | str, dst: FloatFormat | str, rounding: str = "rne",
              overflow: str | None = None, nan_policy: str = "error", negative: str | None = None, r=None,
              rand_bits: int | None = None, sr_variant: str = DEFAULT_SR_VARIANT):
    """Cast source bit patterns ``x`` (words of ``ops``) into ``dst``; return ``(codes, error_mask)``.

    ``codes`` are destination codes (words); ``error_mask`` marks the elements
    for which :func:`refarith.exact.rounding.round_value` raises
    SpecialValueError (NaN under ``nan_policy='error'`` into a format without
    NaN, a negative non-zero value under ``negative='error'`` into an unsigned
    format); their code is 0.  ``overflow`` and ``negative`` default to the target's own rules, as in the exact
    model (P3109 targets: satnone and project).  For ``rounding='sr'``, ``r`` holds the k-bit
    random integers (words, k = ``rand_bits``; the caller guarantees r < 2^k) and ``sr_variant`` the rule
    (:mod:`refarith.exact.stochastic`).
    """
    if negative is None:
        negative = default_negative(get_format(dst))
    src, dst, overflow, k = _check(src, dst, rounding, overflow, nan_policy, negative, rand_bits, ops.width,
                                   sr_variant)
    if rounding == "sr" and r is None:
        raise UnknownModeError("stochastic rounding needs r (the random integers)")
    w = ops.width
    p = _plan(src, dst, w)
    c = lambda v: ops.const(v, x)  # noqa: E731
    if isinstance(src, IntFormat):
        sign, nan, inf, zero, sig_w, eb = _decode_int(ops, x, src, p)
    else:
        sign, nan, inf, zero, sig_w, eb = _decode_float(ops, x, src, p)

    md = dst.mbits
    one = c(1)
    negative_in = None
    s_nan = sign
    # the rounding direction of rup/rdn: a negative into an unsigned target under negative='project' is rounded
    # with its sign (P3109 §4.7.3) before the sign is dropped
    dir_neg = ops.eq(sign, one) if (not dst.signed and negative == "project") else None
    if not dst.signed:
        if src.signed:
            negative_in = ops.band(ops.eq(sign, one), ops.bnot(ops.bor(zero, nan)))
        sign = c(0)
    is_neg = ops.eq(sign, one)
    rnd_neg = dir_neg if dir_neg is not None else is_neg
    sbits = ops.shl(sign, dst.ebits + md) if dst.signed else c(0)

    # ---- rounding with an unbounded exponent above
    emin_b = c(p.emin_b)
    tiny = ops.ult(eb, emin_b)
    e_eff = ops.umax(eb, emin_b)
    d = ops.add(c(p.top - md), ops.sub(e_eff, eb))
    d_c = ops.umin(d, c(w - 1))
    n = ops.shr(sig_w, d_c)
    rem = ops.sub(sig_w, ops.shl(n, d_c))
    c_lo = ops.add(ops.shl(ops.sub(e_eff, emin_b), md), n)
    if not dst.subnormals:
        c_lo = ops.sub(c_lo, c(1 << md))
    inexact = ops.ne(rem, c(0))
    half = ops.shl(one, ops.sub(ops.umax(d_c, one), one))
    odd = ops.eq(ops.and_(c_lo, one), one)
    if rounding == "rne":
        up = ops.bor(ops.ugt(rem, half), ops.band(ops.eq(rem, half), odd))
    elif rounding == "rna":
        up = ops.uge(rem, half)
    elif rounding == "rtz":
        up = ops.mfalse(x)
    elif rounding == "rup":
        up = ops.band(inexact, ops.bnot(rnd_neg))
    elif rounding == "rdn":
        up = ops.band(inexact, rnd_neg)
    elif rounding == "rto":
        up = ops.band(inexact, ops.bnot(odd))
    else:
        up = ops.band(inexact, _sr_up(ops, rem, d, r, k, sr_variant, c_lo, c))
    c_r = ops.where(up, ops.add(c_lo, one), c_lo)

    zero_code = sbits if dst.has_negative_zero else c(0)
    res = ops.or_(sbits, c_r)
    if dst.has_zero:  # a rounded zero; without subnormals code 0 is the smallest normal instead
        res = ops.where(ops.eq(c_r, c(0)), zero_code, res)

    # ---- overflow (IEEE 754 7.4 direction rule; P3109 §4.7.5 for the saturation modes)
    max_signed = ops.or_(sbits, c(dst.max_code))
    pos_inf, neg_inf = dst.inf_codes
    if overflow in ("satnone", "satfinite", "satpropagate"):
        if pos_inf is not None:
            inf_code = ops.where(is_neg, c(neg_inf if neg_inf is not None else pos_inf), c(pos_inf))
        big = inf_code if (overflow != "satfinite" and pos_inf is not None) else max_signed
        if overflow != "satnone" or pos_inf is None or rounding == "rtz" or (rounding == "rto" and not dst.signed):
            ovf_code = max_signed
        elif rounding == "rup":
            ovf_code = ops.where(is_neg, max_signed, inf_code)
        elif rounding == "rdn":
            ovf_code = ops.where(is_neg, inf_code, max_signed)
        else:
            ovf_code = inf_code
    elif overflow in ("inf", "inf_always"):
        pos, neg = dst.inf_codes
        big = ops.where(is_neg, c(neg if neg is not None else pos), c(pos))
    elif overflow in ("nan", "nan_rto", "saturate_inf_nan"):  # saturate_inf_nan: NaN for infinite inputs only
        big = ops.where(is_neg, c(dst.nan_code_with_sign(1)), c(dst.nan_code_with_sign(0)))
    else:
        big = max_signed
    if overflow in ("satnone", "satfinite", "satpropagate"):
        pass
    elif overflow == "inf_always" or (overflow == "nan_rto" and rounding == "rto"):
        ovf_code = big
    elif overflow in ("saturate", "saturate_inf_nan") or rounding in ("rtz", "rto"):
        ovf_code = max_signed
    elif rounding in ("rne", "rna", "sr"):
        ovf_code = big
    elif rounding == "rup":
        ovf_code = ops.where(is_neg, max_signed, big)
    else:  # rdn
        ovf_code = ops.where(is_neg, big, max_signed)
    res = ops.where(ops.ugt(c_r, c(dst.max_code)), ovf_code, res)

    # ---- below the range of a format without subnormals (no zero): the smallest magnitude
    if not dst.subnormals:
        res = ops.where(tiny, sbits, res)
    # ---- zero input
    if dst.has_zero:
        res = ops.where(zero, zero_code, res)
    else:
        res = ops.where(zero, c(0), res)
    # ---- infinite input
    res = ops.where(inf, big, res)
    # ---- negative into unsigned
    err = ops.mfalse(x)
    if negative_in is not None:
        if negative == "nan":
            neg_code = c(dst.nan_code)
        elif negative == "project":
            # below M_lo = 0: NaN or 0 by the saturation mode; a result that rounded to zero is +0
            nan_mode = overflow in NAN_PROJECTING_MODES
            neg_code = c(dst.nan_code if (nan_mode and rounding not in ("rtz", "rup")) else 0)
            if nan_mode:  # -inf: NaN in every rounding mode (§4.7.5: its rule precedes the directed ones)
                neg_code = ops.where(inf, c(dst.nan_code), neg_code)
            if dst.subnormals:
                neg_code = ops.where(ops.band(ops.eq(c_r, c(0)), ops.bnot(inf)), c(0), neg_code)
        else:
            neg_code = c(0)
        res = ops.where(negative_in, neg_code, res)
        if negative == "error":
            err = negative_in
    # ---- NaN
    if dst.has_nan:
        if dst.signed:
            nan_code = ops.where(ops.eq(s_nan, one), c(dst.nan_code_with_sign(1)), c(dst.nan_code_with_sign(0)))
        else:
            nan_code = c(dst.nan_code)
    elif nan_policy == "max":
        nan_code = ops.or_(ops.shl(s_nan, dst.ebits + md), c(dst.max_code)) if dst.signed else c(dst.max_code)
    else:
        nan_code = c(0)
        if nan_policy == "error":
            err = ops.bor(err, nan)
    res = ops.where(nan, nan_code, res)
    return res, err


def _floor_frac(ops: BitOps, rem, d, kk, c):
    """floor(frac * 2^K) for frac = rem / 2^d (K = ``kk``, a word).  With the unclamped d: rem (= sig_w when
    d >= width) is below 2^(width-2), so a shift clamped to width-1 gives 0 exactly when the true quotient is 0."""
    w = ops.width
    ge = ops.uge(d, kk)
    t_right = ops.shr(rem, ops.umin(ops.sub(d, kk), c(w - 1)))
    t_left = ops.shl(rem, ops.umin(ops.sub(kk, d), c(w - 1)))
    return ops.where(ge, t_right, t_left)


def _sr_up(ops: BitOps, rem, d, r, k: int, variant: str, c_lo, c):
    """The round-up decision of stochastic variant ``variant`` (:func:`refarith.exact.stochastic.round_up`) for
    frac = rem / 2^d > 0 and random words r < 2^k."""
    w = ops.width
    one = c(1)
    if variant == "a":  # floor(frac * 2^k) + r >= 2^k
        return ops.uge(ops.add(_floor_frac(ops, rem, d, c(k), c), r), c(1 << k))
    if variant == "b":  # floor(frac * 2^(k+1)) + 2r + 1 >= 2^(k+1)
        t2 = _floor_frac(ops, rem, d, c(k + 1), c)
        return ops.uge(ops.add(ops.add(t2, ops.shl(r, 1)), one), c(1 << (k + 1)))
    if variant in ("c", "c_odd"):  # RNITE / RNITO(frac * 2^k) + r >= 2^k
        kk = c(k)
        t = _floor_frac(ops, rem, d, kk, c)
        gt = ops.ugt(d, kk)
        sh = ops.umin(ops.sub(d, kk), c(w - 1))
        rr = ops.sub(rem, ops.shl(t, sh))  # the bits of frac below the k kept ones (when d > k)
        half = ops.shl(one, ops.umin(ops.sub(sh, one), c(w - 1)))
        t_odd = ops.eq(ops.and_(t, one), one)
        tie_up = t_odd if variant == "c" else ops.bnot(t_odd)
        inc = ops.band(gt, ops.bor(ops.ugt(rr, half), ops.band(ops.eq(rr, half), tie_up)))
        t = ops.where(inc, ops.add(t, one), t)
        return ops.uge(ops.add(t, r), c(1 << k))
    if variant == "te_e2m1_8":
        # RNE_binary32(|x| + r * ulp / 256) >= (n + 1) * ulp  <=>  256 * frac + r >= 256 - 2^-j, with j = 17, 16, 15
        # for the neighbour 0.5, 1 and above (half the binary32 spacing below it, in ulp / 256):
        # floor(frac * 2^(8+j)) + r * 2^j + 1 >= 2^(8+j)
        j = ops.where(ops.eq(c_lo, c(0)), c(17), ops.where(ops.eq(c_lo, one), c(16), c(15)))
        kk = ops.add(j, c(k))
        t = _floor_frac(ops, rem, d, kk, c)
        return ops.uge(ops.add(ops.add(t, ops.shl(r, j)), one), ops.shl(one, kk))
    raise UnknownModeError(f"unknown stochastic rounding variant {variant!r}")


def sticky_key(ops: BitOps, bits):
    """binary32 table key: (bits >> 16) << 1 | (low 16 bits != 0), a 17-bit word."""
    c = lambda v: ops.const(v, bits)  # noqa: E731
    low = ops.ne(ops.and_(bits, c(0xFFFF)), c(0))
    return ops.or_(ops.shl(ops.shr(bits, 16), 1), ops.where(low, c(1), c(0)))


def key_representative(ops: BitOps, key):
    """A binary32 pattern with the given sticky key: top 16 bits from the key, low 16 bits 0 or 1."""
    c = lambda v: ops.const(v, key)  # noqa: E731
    return ops.or_(ops.shl(ops.shr(key, 1), 16), ops.and_(key, c(1)))


def sticky_key_suffices(dst: FloatFormat | str) -> bool:
    """True when a binary32 -> ``dst`` cast (deterministic modes) depends only on :func:`sticky_key`.

    Sufficient condition, checked for every source binade: the destination's
    rounding bit sits at bit 16 or above of the binary32 pattern, so the low 16
    bits act only as a sticky bit.
    """
    dst = get_format(dst)
    if not isinstance(dst, FloatFormat) or dst.nbits > MAX_DST_BITS:
        return False
    return _sticky_key_suffices(dst)


@lru_cache(maxsize=64)
def _sticky_key_suffices(dst: FloatFormat) -> bool:
    """The binade loop of :func:`sticky_key_suffices` (277 binades; cached: every cast call asks it)."""
    for e in range(-149, 128):
        lsb = max(e - 23, -149)  # weight of the source's last bit
        round_bit = max(e, dst.emin) - dst.mbits - 1
        if round_bit - lsb < 16:
            return False
    return True


__all__ = ["cast_bits", "key_representative", "required_width", "sr_fraction_bits", "sticky_key",
           "sticky_key_suffices"]
