"""Bit-level Z3 encodings of IEEE source formats and of the cast spec (refarith.exact.rounding).

Written independently of the fast kernels: this module restates
:func:`refarith.exact.rounding.round_value` over bit-vectors, and the theorems
in :mod:`refarith.smt.theorems.casts` prove the kernels equal to it.

Encoding (words of 32 bits, 64 for binary64 and integer sources of more than
30 bits; exponents are two's-complement integers of the same width):

* A finite source pattern is x = (-1)^s * sig * 2^es with an integer
  significand ``sig`` (implicit bit included for normals) and
  es = max(E, 1) - bias - m.  floor(log2 |x|) = es + bitlen(sig) - 1.
* Rounding into a target with m mantissa bits: e_eff = max(floor(log2|x|), emin),
  ulp = 2^(e_eff - m), n = floor(|x| / ulp) (so n < 2^(m+1)), and the bits of
  |x| below the ulp give the guard bit (the 1/2 ulp bit) and the sticky bit
  (anything below).  These come from shifting ``sig`` by e_eff - m - es, a
  shift, never a multiplication.
* Magnitude codes of consecutive grid values are consecutive integers (also
  across the subnormal/normal boundary and a carry into the exponent), so the
  code of n * ulp in the *unbounded* exponent range is
  U0 = ((e_eff + bias - 1) << m) + n for every format (with or without
  subnormals), and rounding up adds one: U = U0 + up.  This is exactly the
  "unbounded exponent, then overflow" rule: overflow iff U > max_code.
* Ties to even are decided on the code: parity = U0 & 1, which is the
  significand's LSB when m > 0 and the biased exponent's LSB for E8M0-like
  formats (m = 0), as in the exact model.
* Overflow, infinities, NaN (nan_code_with_sign), zero without -0, formats
  without zero, unsigned targets, ``nan_policy`` and ``negative`` follow the
  docstring of refarith.exact.rounding verbatim; the ``error`` policies give
  an error flag instead of a code.

The FloatingPoint sort of Z3 is used only to decode IEEE *sources* (for the
monotonicity theorem) and to cross-check IEEE-like targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from refarith.errors import UnknownModeError
from refarith.exact.rounding import DETERMINISTIC_MODES, check_modes, default_overflow
from refarith.formats import FloatFormat, IntFormat, get_format

W = 32  # word width of the spec encoding's intermediates for sources of at most 32 bits (64 above)


def _c(v: int, w: int = W) -> z3.BitVecRef:
    return z3.BitVecVal(v & ((1 << w) - 1), w)


def spec_width(src: FloatFormat | IntFormat | str) -> int:
    """Word width of the spec's intermediates for a source: 32 when the significand (or integer magnitude)
    and the exponent range fit with room to spare, else 64."""
    src = get_format(src)
    if isinstance(src, IntFormat):
        return W if src.bits <= 30 else 64
    return W if src.mbits + 1 <= 30 and src.ebits <= 10 else 64


@dataclass
class Decoded:
    """A symbolic source pattern: flags and x = (-1)^sign * sig * 2^es (sig, es: words of one width)."""

    sign: z3.BoolRef
    is_nan: z3.BoolRef
    is_inf: z3.BoolRef
    is_zero: z3.BoolRef
    sig: z3.BitVecRef
    es: z3.BitVecRef


def decode_ieee(bits: z3.BitVecRef, fmt: FloatFormat | str) -> Decoded:
    """Decode a bit pattern of an IEEE-layout source (binary32/binary16/bfloat16 or any ``ieee`` format)."""
    fmt = get_format(fmt)
    if fmt.specials != "ieee" or not fmt.signed or not fmt.subnormals:
        raise UnknownModeError(f"decode_ieee: {fmt.name} is not an IEEE-layout source format")
    n = fmt.nbits
    if bits.size() != n:
        raise UnknownModeError(f"decode_ieee: {fmt.name} needs a {n}-bit vector, got {bits.size()}")
    m = fmt.mbits
    w = spec_width(fmt)
    sign = z3.Extract(n - 1, n - 1, bits) == 1
    ef = z3.ZeroExt(w - fmt.ebits, z3.Extract(n - 2, m, bits))
    mf = z3.ZeroExt(w - m, z3.Extract(m - 1, 0, bits)) if m else _c(0, w)
    all_ones = ef == fmt.emask
    is_nan = z3.And(all_ones, mf != 0)
    is_inf = z3.And(all_ones, mf == 0)
    is_zero = z3.And(ef == 0, mf == 0)
    sig = z3.If(ef == 0, mf, mf | (1 << m))
    es = z3.If(ef == 0, _c(1, w), ef) - (fmt.bias + m)
    return Decoded(sign, is_nan, is_inf, is_zero, sig, es)


def decode_int(bits: z3.BitVecRef, fmt: IntFormat | str) -> Decoded:
    """Decode an integer source pattern (two's complement when signed): x = (-1)^sign * |x| * 2^0."""
    fmt = get_format(fmt)
    if not isinstance(fmt, IntFormat):
        raise UnknownModeError(f"decode_int: {fmt.name} is not an integer format")
    n = fmt.bits
    if bits.size() != n:
        raise UnknownModeError(f"decode_int: {fmt.name} needs a {n}-bit vector, got {bits.size()}")
    w = spec_width(fmt)
    if fmt.signed:
        sign = z3.Extract(n - 1, n - 1, bits) == 1
        sig = z3.If(sign, 0 - z3.SignExt(w - n, bits), z3.ZeroExt(w - n, bits))
    else:
        sign = z3.BoolVal(False)
        sig = z3.ZeroExt(w - n, bits)
    f = z3.BoolVal(False)
    return Decoded(sign, f, f, bits == 0, sig, _c(0, w))


def bitlen(x: z3.BitVecRef) -> z3.BitVecRef:
    """Number of significant bits of a 32- or 64-bit word (0 for 0), by binary search with shifts."""
    w = x.size()
    n = _c(0, w)
    v = x
    for k in ((32,) if w == 64 else ()) + (16, 8, 4, 2, 1):
        big = z3.UGE(v, _c(1 << k, w))
        v = z3.If(big, z3.LShR(v, k), v)
        n = z3.If(big, n + k, n)
    return z3.If(v == 0, n, n + 1)


def _smax(a: z3.BitVecRef, b: z3.BitVecRef) -> z3.BitVecRef:
    return z3.If(a > b, a, b)  # signed comparison on BitVecs


@dataclass
class SpecResult:
    """The spec's output: ``code`` (target-width word) and ``error`` (the input is rejected by an error policy)."""

    code: z3.BitVecRef
    error: z3.BoolRef


def round_decoded(d: Decoded, dst: FloatFormat | str, rounding: str = "rne", overflow: str | None = None,
                  nan_policy: str = "error", negative: str = "error", rand: z3.BitVecRef | None = None,
                  rand_bits: int | None = None) -> SpecResult:
    """The code of round_value(decoded value, dst, ...) as a Z3 term.

    ``sr`` needs ``rand`` (a word of the decoded width holding r < 2^k; the caller constrains it) and
    ``rand_bits`` = k: with t the k bits just below the ulp (t = floor(frac * 2^k)), the magnitude rounds up
    iff inexact and t + r >= 2^k.
    """
    dst = get_format(dst)
    if not isinstance(dst, FloatFormat):
        raise UnknownModeError(f"round_decoded: {dst.name} is not a float format")
    if overflow is None:
        overflow = default_overflow(dst)
    check_modes(dst, rounding, overflow, nan_policy, negative)
    if rounding not in DETERMINISTIC_MODES and (rounding != "sr" or rand is None or not rand_bits):
        raise UnknownModeError("round_decoded: rounding 'sr' needs rand and rand_bits >= 1")
    nb = dst.nbits
    m = dst.mbits
    sm = dst.sign_mask
    s = d.sign if dst.signed else z3.BoolVal(False)
    w = d.sig.size()

    def cv(v: int) -> z3.BitVecRef:
        return _c(v, w)

    def cw(v: int) -> z3.BitVecRef:
        return _c(v, nb)

    def with_sign(mag: z3.BitVecRef) -> z3.BitVecRef:
        return z3.If(s, mag | sm, mag) if sm else mag

    max_signed = with_sign(cw(dst.max_code))

    def overflow_code(away: z3.BoolRef, inf_input: bool = False) -> z3.BitVecRef:
        if overflow == "saturate" or (overflow == "saturate_inf_nan" and not inf_input):
            return max_signed
        if overflow in ("inf", "inf_always"):
            pos, neg = dst.inf_codes
            big = z3.If(s, cw(neg), cw(pos)) if dst.signed else cw(pos)
        else:
            big = z3.If(s, cw(dst.nan_code_with_sign(1)), cw(dst.nan_code_with_sign(0)))
        if overflow == "inf_always" or (overflow == "nan_rto" and rounding == "rto"):
            return big
        return z3.If(away, big, max_signed)

    # ---- finite non-zero magnitudes
    lg = d.es + bitlen(d.sig) - 1  # floor(log2 |x|)
    e_eff = _smax(lg, cv(dst.emin))
    sh = e_eff - m - d.es  # bits of sig below the target ulp (may be <= 0: exact)
    pos_sh = sh > 0
    n = z3.If(pos_sh, z3.LShR(d.sig, sh), d.sig << (0 - sh))
    guard = z3.If(pos_sh, z3.Extract(0, 0, z3.LShR(d.sig, sh - 1)) == 1, False)
    below = (cv(1) << (sh - 1)) - 1  # shifts >= the width give 0, so the mask is all ones then
    sticky = z3.If(pos_sh, (d.sig & below) != 0, False)
    inexact = z3.Or(guard, sticky)
    u0 = ((e_eff + (dst.bias - 1)) << m) + n
    odd = z3.Extract(0, 0, u0) == 1
    up = {
        "rne": z3.And(guard, z3.Or(sticky, odd)),
        "rna": guard,
        "rtz": z3.BoolVal(False),
        "rup": z3.And(inexact, z3.Not(s)),
        "rdn": z3.And(inexact, s),
        "rto": z3.And(inexact, z3.Not(odd)),
    }.get(rounding)
    if rounding == "sr":
        k = rand_bits
        t = z3.If(sh >= k, z3.LShR(d.sig, sh - k), d.sig << (k - sh)) & cv((1 << k) - 1)
        up = z3.And(inexact, z3.UGE(t + rand, cv(1 << k)))
    u = u0 + z3.If(up, cv(1), cv(0))
    away = {"rne": True, "rna": True, "sr": True, "rtz": False, "rto": False}.get(rounding)
    away_b = z3.BoolVal(away) if away is not None else (z3.Not(s) if rounding == "rup" else s)
    zero_code = with_sign(cw(0)) if dst.has_negative_zero else cw(0)
    finite = z3.If(z3.UGT(u, cv(dst.max_code)), overflow_code(away_b),
                   z3.If(u == 0, zero_code, with_sign(z3.Extract(nb - 1, 0, u))))
    if not dst.subnormals:
        finite = z3.If(lg < dst.emin, with_sign(cw(0)), finite)

    # ---- specials, in the order of the exact model
    if dst.has_zero:
        zero = zero_code
    else:
        zero = cw(0)
    out = z3.If(d.is_zero, zero, finite)
    out = z3.If(d.is_inf, overflow_code(z3.BoolVal(True), inf_input=True), out)
    error = z3.BoolVal(False)
    neg_nonzero = z3.And(d.sign, z3.Not(d.is_zero), z3.Not(d.is_nan))
    if not dst.signed:
        if negative == "error":
            error = z3.Or(error, neg_nonzero)
        out = z3.If(neg_nonzero, cw(0), out)
    if dst.has_nan:
        nan_out = z3.If(d.sign, cw(dst.nan_code_with_sign(1)), cw(dst.nan_code_with_sign(0)))
    elif nan_policy == "error":
        nan_out = cw(0)
        error = z3.Or(error, d.is_nan)
    elif nan_policy == "zero":
        nan_out = cw(0)
    else:
        nan_out = z3.If(d.sign, cw(dst.max_code | sm), cw(dst.max_code)) if sm else cw(dst.max_code)
    out = z3.If(d.is_nan, nan_out, out)
    return SpecResult(out, error)


def cast_spec(bits: z3.BitVecRef, src: FloatFormat | str, dst: FloatFormat | str, rounding: str = "rne",
              overflow: str | None = None, nan_policy: str = "error", negative: str = "error",
              rand: z3.BitVecRef | None = None, rand_bits: int | None = None) -> SpecResult:
    """Spec of cast(src->dst) on a symbolic source pattern ``bits`` of an IEEE-layout float or an integer format
    (``rand``/``rand_bits`` for ``sr``; ``rand`` may be narrower than the spec's words: it is zero-extended)."""
    src = get_format(src)
    d = decode_int(bits, src) if isinstance(src, IntFormat) else decode_ieee(bits, src)
    if rand is not None and rand.size() < d.sig.size():
        rand = z3.ZeroExt(d.sig.size() - rand.size(), rand)
    return round_decoded(d, dst, rounding, overflow, nan_policy, negative, rand, rand_bits)


def value_key(code: z3.BitVecRef, dst: FloatFormat) -> z3.BitVecRef:
    """A signed 32-bit integer ordered like the values of non-NaN codes (+0 and -0 both 0, inf beyond max)."""
    nb = dst.nbits
    mag = z3.ZeroExt(W - nb, code & _c((1 << nb) - 1 - dst.sign_mask, nb))
    if not dst.signed:
        return mag
    neg = z3.Extract(nb - 1, nb - 1, code) == 1
    return z3.If(neg, 0 - mag, mag)


def negate_code(code: z3.BitVecRef, dst: FloatFormat) -> z3.BitVecRef:
    """The code of -v(code) for a non-NaN code of a signed format (zero stays +0 where there is no -0)."""
    nb = dst.nbits
    flipped = code ^ _c(dst.sign_mask, nb)
    if dst.has_negative_zero:
        return flipped
    return z3.If((code & _c(dst.sign_mask - 1 if dst.sign_mask else 0, nb)) == 0, code, flipped)


def is_nan_code(code: z3.BitVecRef, dst: FloatFormat) -> z3.BoolRef:
    """Whether a target code is a NaN."""
    nb = dst.nbits
    if dst.specials == "ieee":
        ef = z3.Extract(dst.ebits + dst.mbits - 1, dst.mbits, code)
        mf = z3.Extract(dst.mbits - 1, 0, code) if dst.mbits else _c(0, 1)
        return z3.And(ef == dst.emask, mf != 0) if dst.mbits else z3.BoolVal(False)
    return z3.Or(*[code == _c(c, nb) for c in sorted(dst.nan_codes)]) if dst.nan_codes else z3.BoolVal(False)


Z3_ROUNDING = {"rne": z3.RNE, "rna": z3.RNA, "rtz": z3.RTZ, "rup": z3.RTP, "rdn": z3.RTN}


def fp_sort(fmt: FloatFormat) -> z3.FPSortRef:
    """Z3's FloatingPoint sort with the layout of an IEEE-like format."""
    return z3.FPSort(fmt.ebits, fmt.mbits + 1)


def fp_cast(bits: z3.BitVecRef, src: FloatFormat, dst: FloatFormat, rounding: str) -> z3.BitVecRef:
    """Z3's own IEEE 754 conversion (fpToFP) of a source pattern, as target bits (meaningless for NaN)."""
    x = z3.fpBVToFP(bits, fp_sort(src))
    return z3.fpToIEEEBV(z3.fpFPToFP(Z3_ROUNDING[rounding](), x, fp_sort(dst)))


__all__ = ["Decoded", "SpecResult", "W", "Z3_ROUNDING", "bitlen", "cast_spec", "decode_ieee", "decode_int", "fp_cast",
           "fp_sort", "is_nan_code", "negate_code", "round_decoded", "spec_width", "value_key"]
