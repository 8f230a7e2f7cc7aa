"""The one rounding function: exact value -> (rounding mode, overflow mode, format) -> bits.

Everything here is exact (Python ints and Fractions).  Semantics:

* The value is first rounded to the format's precision with an *unbounded*
  exponent range above (so E4M3's 464 ties to 448, the even neighbour of the
  virtual 480) and the format's subnormal spacing below.
* Ties to even are decided on the *code*: of the two neighbours, the one whose
  encoding has a 0 in its least significant bit.  For formats with mantissa bits
  this is the even significand of IEEE 754; for E8M0 (no mantissa) it is the even
  exponent field, so 1.5 * 2^k rounds to whichever of 2^k, 2^(k+1) has the even
  biased exponent.  Round to odd (``rto``) picks the odd code when inexact.
* ``sr`` (stochastic rounding with ``rand_bits`` = k random bits ``rand`` = r):
  frac is the fraction of an ulp below the value; ``sr_variant`` names the rule
  of :mod:`refarith.exact.stochastic` that decides from (frac, r, k) whether the
  magnitude rounds up.  The default ``a``: with t = floor(frac * 2^k), round up
  iff t + r >= 2^k -- the hardware definition (add r to the k bits below the
  kept ones, truncate; P3109 StochasticA); exactly unbiased when frac has at
  most k bits.  Every variant rounds to one of the two neighbours.
* Overflow (the rounded magnitude exceeds the largest finite value):
  ``saturate`` gives ±max; ``inf`` and ``nan`` follow IEEE 754 7.4: the infinite
  result (inf, or the NaN code for ``nan``) only when the mode rounds away from
  zero for that sign (rne, rna, sr, rup for +, rdn for -); rtz, rto and the
  opposite directed mode give ±max.  Infinite inputs: ``saturate`` -> ±max,
  ``inf`` -> ±inf, ``nan`` -> NaN.  The default is the format's natural
  non-saturating behaviour: ``inf`` if it has inf, else ``nan`` if it has NaN,
  else ``saturate`` (OCP OFP8 "non-saturating" mode).
* Overflow modes of deployed libraries (named variants, never defaults):

  - ``inf_always``: every rounded value beyond ±max, in every rounding mode, gives ±inf (pychop 0.6.2's Chop
    sends values from 2^(emax+2) up to ±inf under rtz, rup and rdn too); ±inf stays ±inf.  Needs inf.
  - ``nan_rto``: as ``nan``, except that under ``rto`` an overflow gives the NaN code: a bit-level round to
    odd sets the last bit of the code above ±max, which in OCP E4M3 is S.1111.111, the NaN (fpy2 0.3.0's
    MX_E4M3 under RTO).  Needs NaN.
  - ``saturate_inf_nan``: rounded values beyond ±max give ±max in every mode, but ±inf gives NaN (with its
    sign, flagged ``invalid``): brevitas 0.13.4's saturating FloatQuant rounds x as 2^e * round(x / 2^e) with
    2^e = 2^floor(log2 |x|) = inf for x = ±inf, so inf/inf = NaN reaches the clamp.  Needs NaN.
  - Negative values into an unsigned format: ``inf_always`` and ``nan_rto`` read as ``inf``/``nan``,
    ``saturate_inf_nan`` as ``saturate``.
* IEEE P3109 saturation modes (interim report v4.0 §4.7.5, ωSaturate; the
  P3109 formats' default is ``satnone``, every other format keeps its default
  above and may select these by name).  M_hi is the largest finite value, M_lo
  its negative (0 for unsigned formats); "extended" means the format has inf.

  - ``satfinite``: every rounded value beyond [M_lo, M_hi], and ±inf, goes to
    M_lo / M_hi.
  - ``satpropagate``: as ``satfinite`` for finite values; ±inf stays ±inf where
    the format has it (else M_hi / M_lo).
  - ``satnone``: a rounded value above M_hi gives +inf in an extended format,
    except under rtz and rdn (and ``rto`` into an *unsigned* extended format),
    which give M_hi; a finite format gives M_hi.  Symmetrically below -M_hi:
    -inf in a signed extended format except under rtz and rup; M_lo otherwise.
    +inf gives +inf or M_hi (finite domain); -inf gives -inf (signed
    extended) or -M_hi (signed finite).  Unlike ``inf``, ``rto`` rounds away
    from zero here (§4.7.5 sends it to ±inf in signed extended formats).
  - Negative values into an unsigned format under these modes follow
    ``negative`` (``project`` is the standard's rule, below).

* NaN into a format without NaN: ``nan_policy`` ``error`` (default) raises
  SpecialValueError; ``zero`` gives +0; ``max`` gives ±max with the NaN's sign.
* Zero, or a value below the smallest positive value, into a format without
  zero (E8M0) rounds to the smallest value in every mode (it is the only
  candidate) with the underflow flag.  A negative non-zero value into an unsigned
  format raises SpecialValueError unless ``negative="clamp"`` (then the smallest
  value, flagged ``invalid``), ``negative="nan"`` (the NaN code, flagged
  ``invalid``: ml_dtypes' E8M0 rule) or ``negative="project"`` (P3109 §4.7.5:
  the value is rounded with its sign in the given mode; a result of zero gives
  +0; a non-zero negative result (or -inf) is below M_lo = 0 and gives 0 under
  ``satfinite``, ``satpropagate`` and ``saturate``, and under ``satnone``,
  ``inf`` and ``nan`` gives 0 for rtz and rup, else NaN (-inf: NaN in every
  mode, the -inf rule of §4.7.5 preceding the directed ones); both flagged
  ``invalid``).  ``nan`` and ``project`` need a format with NaN.  The P3109
  formats' default is ``project``, every other format's ``error``.  -0 into a
  format without -0 gives +0.
* Flags (IEEE 754-2019 clause 7, default exception handling; a set of names):

  - ``inexact``: the result differs from the exact value (7.6).
  - ``overflow``: a finite value whose rounding with an unbounded exponent range
    exceeds the largest finite value in magnitude, whatever the overflow mode
    delivers (7.4); always with ``inexact``.
  - ``underflow``: the result is tiny *and* inexact (7.5).  ``tininess="before"``
    (the default): tiny iff 0 < |x| < min normal.  ``tininess="after"``: tiny iff
    x rounded to the format's precision with an unbounded exponent range (same
    mode; ``sr`` with the same random integer) lies strictly between
    ±min normal.  Formats without subnormals (hence without zero, like E8M0)
    give their smallest value for every |x| below it, flagged ``underflow``
    under both settings.
  - ``invalid`` (7.2): a NaN mapped to a number (``nan_policy`` ``zero``/``max``,
    into a format without NaN, or into an integer format); an infinity that
    does not arrive as an infinity (a format without inf, or ``saturate``); a
    negative clamped into an unsigned format; an integer result outside the
    target's range (7.2 j, then the only flag).  Signalling NaN operands and
    invalid operations are flagged by :mod:`refarith.exact.ops`, which also
    raises ``divide_by_zero`` (7.3).
* Integer targets (IEEE 754 5.8 convertToIntegerExact): round to an integer
  with the same modes, ``inexact`` when that changes the value; overflow
  ``saturate`` (default; to [min, max], which excludes -2^(n-1) for symmetric
  formats) or ``wrap`` (two's complement modulo 2^n), flagged ``invalid``
  alone; NaN per ``nan_policy``; ±inf saturates with ``invalid`` (an error
  under ``wrap``).  A negative value whose rounded integer is non-zero, -inf
  included, into an unsigned format follows ``negative`` as it does for an
  unsigned float format: an error under ``error`` (the default), 0 flagged
  ``invalid`` under ``clamp``; a value that rounds to 0 (e.g. -0.4) gives 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from refarith.errors import SpecialValueError, UnknownModeError
from refarith.exact.stochastic import check_variant, round_up
from refarith.exact.value import Value
from refarith.formats import FloatFormat, IntFormat, get_format, is_p3109

ROUNDING_MODES = ("rne", "rna", "rtz", "rup", "rdn", "rto", "sr")
DETERMINISTIC_MODES = ("rne", "rna", "rtz", "rup", "rdn", "rto")

SUBNORMAL_MODES = ("daz", "ftz", "daz_ftz")
"""Flush-to-zero variants of a conversion (absent: gradual underflow, IEEE 754).  ``daz``: a subnormal input is
read as a zero of its sign before rounding (denormals-are-zero); ``ftz``: a result that rounds to a non-zero
subnormal of the destination becomes the zero of its sign (+0 where the destination has no -0), flushed after
rounding, as x86 MXCSR.FTZ and CUDA's ``.ftz`` do; ``daz_ftz``: both."""


def check_subnormal_mode(mode: str | None) -> None:
    """UnknownModeError unless ``mode`` is None or one of SUBNORMAL_MODES."""
    if mode is not None and mode not in SUBNORMAL_MODES:
        raise UnknownModeError(f"unknown subnormal mode {mode!r}; expected one of {', '.join(SUBNORMAL_MODES)}")


def flush_input(v: Value, fmt: FloatFormat | IntFormat, mode: str | None) -> Value:
    """DAZ: a non-zero finite ``v`` below the smallest normal of its source ``fmt`` read as the zero of its sign
    (under ``daz`` and ``daz_ftz``; otherwise, and for formats without subnormals, ``v`` itself)."""
    check_subnormal_mode(mode)
    if mode not in ("daz", "daz_ftz") or not isinstance(fmt, FloatFormat) or not fmt.subnormals:
        return v
    if v.is_finite and not v.is_zero and v.mag < fmt.min_normal:
        return Value.zero(v.sign)
    return v


def flush_code(code: int, fmt: FloatFormat | IntFormat, mode: str | None) -> int:
    """FTZ: a non-zero subnormal result code of ``fmt`` becomes the zero of its sign (+0 where ``fmt`` has no -0)
    under ``ftz`` and ``daz_ftz``; every other code is returned as it is."""
    check_subnormal_mode(mode)
    if mode not in ("ftz", "daz_ftz") or not isinstance(fmt, FloatFormat) or not fmt.subnormals:
        return code
    if not fmt.is_finite_code(code):
        return code
    v = fmt.finite_value(code)
    if v == 0 or abs(v) >= fmt.min_normal:
        return code
    return fmt.sign_mask if (v < 0 and fmt.has_negative_zero) else 0
SATURATION_MODES = ("satnone", "satfinite", "satpropagate")
LIBRARY_OVERFLOW_MODES = ("inf_always", "nan_rto", "saturate_inf_nan")
"""Overflow modes observed in deployed libraries (see the module docstring)."""
OVERFLOW_MODES = ("saturate", "inf", "nan", "wrap") + SATURATION_MODES + LIBRARY_OVERFLOW_MODES
NAN_PROJECTING_MODES = ("satnone", "inf", "nan", "inf_always", "nan_rto")
"""Overflow modes under which ``negative='project'`` can give NaN (SatNone and its non-saturating readings)."""
NAN_POLICIES = ("error", "zero", "max")
NEGATIVE_POLICIES = ("error", "clamp", "nan", "project")
TININESS_MODES = ("before", "after")
FLAGS = ("inexact", "overflow", "underflow", "invalid", "divide_by_zero")


@dataclass(frozen=True)
class Rounded:
    """The code a value rounds to, with the IEEE-style flags raised on the way."""

    code: int
    flags: frozenset[str] = frozenset()


def default_overflow(fmt: FloatFormat | IntFormat) -> str:
    """The format's natural overflow mode: inf if it has inf, else nan if it has NaN, else saturate."""
    if isinstance(fmt, IntFormat):
        return "saturate"
    if fmt.has_inf:
        return "inf"
    if fmt.has_nan:
        return "nan"
    return "saturate"


def cast_default_overflow(fmt: FloatFormat | IntFormat) -> str:
    """The default overflow mode of a conversion into ``fmt``: ``satnone`` for IEEE P3109 formats (the standard's
    default projection), else :func:`default_overflow`."""
    return "satnone" if is_p3109(fmt) else default_overflow(fmt)


def default_negative(fmt: FloatFormat | IntFormat) -> str:
    """The default negative-value policy of ``fmt``: ``project`` (P3109 §4.7.5) for P3109 formats, else ``error``."""
    return "project" if is_p3109(fmt) else "error"


def _negative_gives_nan(overflow: str) -> bool:
    """Whether ``negative='project'`` can give NaN under ``overflow`` (SatNone, and its IEEE readings inf/nan)."""
    return overflow in NAN_PROJECTING_MODES


def check_modes(fmt: FloatFormat | IntFormat, rounding: str, overflow: str, nan_policy: str = "error",
                negative: str = "error") -> None:
    """Raise UnknownModeError for a mode that does not exist or does not apply to ``fmt``."""
    if rounding not in ROUNDING_MODES:
        raise UnknownModeError(f"unknown rounding mode {rounding!r}; expected one of {', '.join(ROUNDING_MODES)}")
    if overflow not in OVERFLOW_MODES:
        raise UnknownModeError(f"unknown overflow mode {overflow!r}; expected one of {', '.join(OVERFLOW_MODES)}")
    if nan_policy not in NAN_POLICIES:
        raise UnknownModeError(f"unknown NaN policy {nan_policy!r}; expected one of {', '.join(NAN_POLICIES)}")
    if negative not in NEGATIVE_POLICIES:
        raise UnknownModeError(f"unknown negative policy {negative!r}; expected one of {', '.join(NEGATIVE_POLICIES)}")
    if isinstance(fmt, IntFormat):
        if negative in ("nan", "project"):
            raise UnknownModeError(f"negative={negative!r} does not apply to integer format {fmt.name} "
                                   "(it has no NaN); use error or clamp")
        if overflow not in ("saturate", "wrap"):
            raise UnknownModeError(f"overflow mode {overflow!r} does not apply to integer format {fmt.name}; "
                                   "use saturate or wrap")
        return
    if overflow == "wrap":
        raise UnknownModeError(f"overflow mode 'wrap' applies to integer formats only, not {fmt.name}")
    if overflow in ("inf", "inf_always") and not fmt.has_inf:
        raise UnknownModeError(f"overflow mode {overflow!r} impossible: {fmt.name} has no infinity")
    if overflow in ("nan", "nan_rto", "saturate_inf_nan") and not fmt.has_nan:
        raise UnknownModeError(f"overflow mode {overflow!r} impossible: {fmt.name} has no NaN")
    if not fmt.signed and not fmt.has_nan:
        if negative == "nan":
            raise UnknownModeError(f"negative='nan' impossible: {fmt.name} has no NaN")
        if negative == "project" and _negative_gives_nan(overflow):
            raise UnknownModeError(f"negative='project' under overflow={overflow!r} needs a NaN, and {fmt.name} has "
                                   "none; use satfinite, satpropagate or saturate")


def floor_log2(x: Fraction) -> int:
    """floor(log2 x) for x > 0, exactly (from bit lengths, never a floating log)."""
    num, den = x.numerator, x.denominator
    e = num.bit_length() - den.bit_length()
    if (num < den << e) if e >= 0 else (num << -e < den):  # x < 2^e, in integers
        e -= 1
    return e


@lru_cache(maxsize=4096)
def pow2(e: int) -> Fraction:
    """2^e exactly (Fractions are immutable, so the recent ones are remembered)."""
    return Fraction(1 << e) if e >= 0 else Fraction(1, 1 << -e)


def _round_int(sign: int, n: int, frac: Fraction, rounding: str, parity_of, rand: int | None,
               rand_bits: int | None, sr_variant: str = "a", ulp: Fraction | None = None) -> int:
    """Round the magnitude n + frac (0 <= frac < 1) to n or n + 1."""
    return _round_split(sign, n, frac.numerator, frac.denominator, rounding, parity_of, rand, rand_bits, sr_variant,
                        ulp, frac)


def _round_split(sign: int, n: int, rem: int, den: int, rounding: str, parity_of, rand: int | None,
                 rand_bits: int | None, sr_variant: str = "a", ulp: Fraction | None = None,
                 frac: Fraction | None = None) -> int:
    """Round the magnitude n + rem/den (0 <= rem < den) to n or n + 1; the fraction is compared with 1/2 in
    integers (2 rem against den) and built as a Fraction only for stochastic rounding."""
    if rem == 0:
        return n
    if rounding == "rtz":
        return n
    if rounding == "rup":
        return n + 1 if sign == 0 else n
    if rounding == "rdn":
        return n + 1 if sign == 1 else n
    if rounding == "rna":
        return n + 1 if 2 * rem >= den else n
    if rounding == "rne":
        t = 2 * rem - den
        if t:
            return n + 1 if t > 0 else n
        return n if parity_of(n) == 0 else n + 1
    if rounding == "rto":
        return n if parity_of(n) == 1 else n + 1
    if rounding == "sr":
        f = Fraction(rem, den) if frac is None else frac
        return n + 1 if round_up(sr_variant, f, rand, rand_bits, n, ulp) else n
    raise UnknownModeError(f"unknown rounding mode {rounding!r}")


def _check_rand(rounding: str, rand: int | None, rand_bits: int | None, sr_variant: str = "a",
                target: str | None = None) -> None:
    if rounding != "sr":
        return
    if rand_bits is None or rand is None:
        raise UnknownModeError("stochastic rounding needs rand (an integer) and rand_bits (its width k)")
    if not isinstance(rand_bits, int) or rand_bits < 1:
        raise UnknownModeError(f"rand_bits must be a positive integer, got {rand_bits!r}")
    if not isinstance(rand, int) or not 0 <= rand < (1 << rand_bits):
        raise UnknownModeError(f"rand={rand!r} does not fit in rand_bits={rand_bits}")
    check_variant(sr_variant, rand_bits, target)


def check_tininess(tininess: str) -> None:
    """Raise UnknownModeError unless ``tininess`` is ``before`` or ``after`` (rounding)."""
    if tininess not in TININESS_MODES:
        raise UnknownModeError(f"unknown tininess {tininess!r}; expected one of {', '.join(TININESS_MODES)}")


@lru_cache(maxsize=1024)
def _resolved_modes(fmt: FloatFormat | IntFormat, rounding: str, overflow: str | None, nan_policy: str,
                    negative: str | None, tininess: str) -> tuple[str, str]:
    """The (overflow, negative) modes after their defaults, once the mode combination is checked valid for
    ``fmt`` (an invalid one raises every time: exceptions are not remembered)."""
    if overflow is None:
        overflow = cast_default_overflow(fmt)
    if negative is None:
        negative = default_negative(fmt)
    check_modes(fmt, rounding, overflow, nan_policy, negative)
    check_tininess(tininess)
    return overflow, negative


def round_value(v: Value, fmt: FloatFormat | IntFormat | str, rounding: str = "rne", overflow: str | None = None,
                nan_policy: str = "error", negative: str | None = None, rand: int | None = None,
                rand_bits: int | None = None, *, tininess: str = "before", sr_variant: str = "a") -> Rounded:
    """Round the exact value ``v`` into ``fmt`` once, with the IEEE 754 flags of that rounding.

    ``sr_variant`` (:data:`refarith.exact.stochastic.SR_VARIANTS`) selects the stochastic rule for
    ``rounding="sr"``.

    ``overflow`` None: :func:`cast_default_overflow` (``satnone`` for P3109 formats); ``negative`` None:
    :func:`default_negative`.  ``tininess`` (``before``/``after`` rounding) only decides the ``underflow`` flag,
    never the code.  See the module docstring for every rule.
    """
    fmt = get_format(fmt)
    overflow, negative = _resolved_modes(fmt, rounding, overflow, nan_policy, negative, tininess)
    _check_rand(rounding, rand, rand_bits, sr_variant, fmt.name)
    if getattr(fmt, "kind", None) == "tapered":
        from refarith.exact.hifloat import round_tapered

        return round_tapered(v, fmt, rounding, overflow)
    if isinstance(fmt, IntFormat):
        return _round_to_int(v, fmt, rounding, overflow, nan_policy, negative, rand, rand_bits, sr_variant)
    return _round_to_float(v, fmt, rounding, overflow, nan_policy, negative, rand, rand_bits, tininess, sr_variant)


# ------------------------------------------------------------------ floats
def _max_code(fmt: FloatFormat, sign: int) -> int:
    return (fmt.sign_mask if sign else 0) | fmt.max_code


def _smallest_code(fmt: FloatFormat) -> int:
    """+0, or the smallest positive value for formats without zero."""
    return 0


def _away(rounding: str, sign: int) -> bool:
    return rounding in ("rne", "rna", "sr") or (rounding == "rup" and sign == 0) or (rounding == "rdn" and sign == 1)


def _satnone_overflow_code(fmt: FloatFormat, sign: int, rounding: str) -> int:
    """ωSaturate(SatNone, rounding, X) for a finite rounded X beyond [M_lo, M_hi] (P3109 §4.7.5)."""
    pos, neg = fmt.inf_codes
    inf = neg if sign else pos
    if inf is None:  # finite domain: the extremal finite value
        return _max_code(fmt, sign)
    if rounding == "rtz" or (rounding == "rdn" and not sign) or (rounding == "rup" and sign):
        return _max_code(fmt, sign)
    if rounding == "rto" and not fmt.signed:
        return _max_code(fmt, sign)
    return inf


def _inf_input_code(fmt: FloatFormat, sign: int, overflow: str) -> int:
    """The code of ±inf (not into an unsigned format's negative side) under a P3109 saturation mode."""
    if overflow == "satfinite":
        return _max_code(fmt, sign)
    pos, neg = fmt.inf_codes
    inf = neg if sign else pos
    return _max_code(fmt, sign) if inf is None else inf


def _inf_code(fmt: FloatFormat, sign: int) -> int:
    pos, neg = fmt.inf_codes
    return neg if sign else pos


def _overflow_code(fmt: FloatFormat, sign: int, rounding: str, overflow: str) -> int:
    if overflow == "satnone":
        return _satnone_overflow_code(fmt, sign, rounding)
    if overflow in ("satfinite", "satpropagate", "saturate_inf_nan"):
        return _max_code(fmt, sign)
    if overflow == "inf_always":
        return _inf_code(fmt, sign)
    if overflow == "nan_rto" and rounding == "rto":
        return fmt.nan_code_with_sign(sign)
    if overflow == "saturate" or not _away(rounding, sign):
        return _max_code(fmt, sign)
    if overflow == "inf":
        pos, neg = fmt.inf_codes
        return neg if sign else pos
    return fmt.nan_code_with_sign(sign)


def _encode_ulps(fmt: FloatFormat, sign: int, n: int, e: int) -> int:
    """Code of the representable magnitude n * 2^(e - mbits) (e >= emin, n <= 2^(mbits + 1)) with the sign:
    n = 2^(mbits + 1) is the carry into the next binade, n < 2^mbits a subnormal at e = emin, n = 0 a zero (-0
    only where the format has one)."""
    s = fmt.sign_mask if (sign and fmt.signed) else 0
    if n == 0:
        return s if fmt.has_negative_zero else 0
    one = 1 << fmt.mbits
    if n >= one << 1:
        n, e = n >> 1, e + 1
    if n < one:
        return s | n
    return s | ((e + fmt.bias) << fmt.mbits) | (n - one)


def _split_ulps(x: Fraction, sh: int) -> tuple[int, int, int]:
    """x * 2^sh = n + rem/den with integers n and 0 <= rem < den, in integer arithmetic (rem/den not reduced)."""
    num, den = x.numerator, x.denominator
    if sh < 0:
        den <<= -sh
    else:
        num <<= sh
    n, rem = divmod(num, den)
    return n, rem, den


@lru_cache(maxsize=1024)
def _max_binade(fmt: FloatFormat) -> int:
    """floor(log2 max) of the format: a rounded n * 2^(e - mbits) with n <= 2^(mbits + 1) is at most 2^(e + 1), so
    it can exceed max only for e >= this."""
    return floor_log2(fmt.max)


def _code_parity(fmt: FloatFormat, e: int):
    """Parity of the candidate n * 2^(e - mbits): its significand's last bit, or for formats without mantissa
    bits the last bit of the biased exponent it has (E8M0 ties to the even exponent)."""

    def parity(c: int) -> int:
        if fmt.mbits:
            return c & 1
        if c == 0:
            return 0
        return (e + (c - 1) + fmt.bias) & 1

    return parity


def _tiny_after_rounding(x: Fraction, sign: int, fmt: FloatFormat, rounding: str, rand: int | None,
                         rand_bits: int | None, sr_variant: str = "a") -> bool:
    """IEEE 754 7.5 tininess after rounding: x (0 < x < min normal) rounded to the format's precision with an
    unbounded exponent range is still below min normal."""
    e = floor_log2(x)
    ulp = pow2(e - fmt.mbits)
    q = x / ulp
    n = q.numerator // q.denominator
    nr = _round_int(sign, n, q - n, rounding, _code_parity(fmt, e), rand, rand_bits, sr_variant, ulp)
    return nr * ulp < fmt.min_normal


def _round_to_float(v: Value, fmt: FloatFormat, rounding: str, overflow: str, nan_policy: str, negative: str,
                    rand: int | None, rand_bits: int | None, tininess: str = "before",
                    sr_variant: str = "a") -> Rounded:
    sign = v.sign
    flags: set[str] = set()
    if v.is_nan:
        if fmt.has_nan:
            return Rounded(fmt.nan_code_with_sign(sign))
        if nan_policy == "error":
            raise SpecialValueError(f"NaN cannot be encoded in {fmt.name}, which has no NaN (nan_policy='error')")
        if nan_policy == "zero":
            return Rounded(0 if fmt.has_zero else 0, frozenset({"invalid"}))
        if sign and not fmt.signed:
            sign = 0
        return Rounded(_max_code(fmt, sign), frozenset({"invalid"}))
    if sign and not fmt.signed and not v.is_zero:
        if negative == "error":
            raise SpecialValueError(f"negative value {v} cannot be encoded in unsigned format {fmt.name} "
                                    "(negative='error')")
        if negative == "nan":
            return Rounded(fmt.nan_code, frozenset({"invalid"}))
        if negative == "project":
            return _project_negative(v, fmt, rounding, overflow, rand, rand_bits, sr_variant)
        return Rounded(0, frozenset({"invalid"}))
    if not fmt.signed:
        sign = 0
    if v.is_inf:
        if overflow in SATURATION_MODES:
            code = _inf_input_code(fmt, sign, overflow)
            return Rounded(code, frozenset() if code in fmt.inf_codes else frozenset({"invalid"}))
        code = fmt.nan_code_with_sign(sign) if overflow == "saturate_inf_nan" else \
            _overflow_code(fmt, sign, "rne", overflow)
        return Rounded(code, frozenset() if code in fmt.inf_codes else frozenset({"invalid"}))
    x = v.mag
    if x == 0:
        if fmt.has_zero:
            return Rounded(_encode_ulps(fmt, sign, 0, fmt.emin))
        return Rounded(0, frozenset({"inexact", "underflow"}))
    e = floor_log2(x)
    if e < fmt.emin and not fmt.subnormals:
        return Rounded((fmt.sign_mask if sign else 0), frozenset({"inexact", "underflow"}))
    emin = fmt.emin
    e_eff = e if e > emin else emin
    ulp = pow2(e_eff - fmt.mbits)
    n, rem, den = _split_ulps(x, fmt.mbits - e_eff)  # x / ulp = n + rem/den, 0 <= rem < den

    nr = _round_split(sign, n, rem, den, rounding, _code_parity(fmt, e_eff), rand, rand_bits, sr_variant, ulp)
    if rem != 0:
        flags.add("inexact")
        if x < fmt.min_normal and (tininess == "before"
                                   or _tiny_after_rounding(x, sign, fmt, rounding, rand, rand_bits, sr_variant)):
            flags.add("underflow")
    if e_eff >= _max_binade(fmt) and nr * ulp > fmt.max:  # the rounded value nr * ulp beyond max
        flags.update(("overflow", "inexact"))
        return Rounded(_overflow_code(fmt, sign, rounding, overflow), frozenset(flags))
    if nr == 0 and not fmt.has_zero:
        return Rounded(0, frozenset(flags | {"underflow"}))
    return Rounded(_encode_ulps(fmt, sign, nr, e_eff), frozenset(flags))


def _rounds_to_zero(x: Fraction, sign: int, fmt: FloatFormat, rounding: str, rand: int | None,
                    rand_bits: int | None, sr_variant: str = "a") -> bool:
    """Whether the magnitude x > 0 with sign ``sign`` rounds to zero in ``fmt`` (never, without subnormals)."""
    if not fmt.subnormals:
        return False
    e_eff = max(floor_log2(x), fmt.emin)
    ulp = pow2(e_eff - fmt.mbits)
    q = x / ulp
    n = q.numerator // q.denominator
    return _round_int(sign, n, q - n, rounding, _code_parity(fmt, e_eff), rand, rand_bits, sr_variant, ulp) == 0


def _project_negative(v: Value, fmt: FloatFormat, rounding: str, overflow: str, rand: int | None,
                      rand_bits: int | None, sr_variant: str = "a") -> Rounded:
    """P3109 §4.7.3/§4.7.5 for a negative non-zero value into an unsigned format (``negative='project'``): round
    with the sign, then a zero result is +0 and a result below M_lo = 0 saturates to 0 or gives NaN."""
    if v.is_finite and _rounds_to_zero(v.mag, 1, fmt, rounding, rand, rand_bits, sr_variant):
        return Rounded(0, frozenset({"inexact", "underflow"}))  # |v| < the smallest subnormal: tiny either way
    if _negative_gives_nan(overflow) and (v.is_inf or rounding not in ("rtz", "rup")):
        return Rounded(fmt.nan_code, frozenset({"invalid"}))
    return Rounded(0, frozenset({"invalid"}))


# ------------------------------------------------------------------ integers
def _round_to_int(v: Value, fmt: IntFormat, rounding: str, overflow: str, nan_policy: str, negative: str,
                  rand: int | None, rand_bits: int | None, sr_variant: str = "a") -> Rounded:
    if v.is_nan:
        if nan_policy == "error":
            raise SpecialValueError(f"NaN cannot be encoded in integer format {fmt.name} (nan_policy='error')")
        if nan_policy == "zero":
            return Rounded(0, frozenset({"invalid"}))
        return Rounded(fmt.code(fmt.min if v.sign else fmt.max), frozenset({"invalid"}))
    if v.is_inf:
        if overflow == "wrap":
            raise SpecialValueError(f"infinity cannot wrap into integer format {fmt.name}")
        if v.sign and not fmt.signed and negative == "error":  # as a negative finite value (below)
            raise SpecialValueError(f"negative value {v} cannot be encoded in unsigned format {fmt.name} "
                                    "(negative='error')")
        return Rounded(fmt.code(fmt.min if v.sign else fmt.max), frozenset({"invalid"}))
    flags: set[str] = set()
    n = v.mag.numerator // v.mag.denominator
    frac = v.mag - n
    nr = _round_int(v.sign, n, frac, rounding, lambda c: c & 1, rand, rand_bits, sr_variant, Fraction(1))
    if frac:
        flags.add("inexact")
    val = -nr if v.sign else nr
    if val < 0 and not fmt.signed and negative == "error" and overflow == "saturate" and val != 0:
        raise SpecialValueError(f"negative value {v} cannot be encoded in unsigned format {fmt.name} "
                                "(negative='error')")
    if val > fmt.max or val < fmt.min:
        flags = {"invalid"}  # IEEE 754 7.2 j: out of range is invalid, and no other flag
        if overflow == "wrap":
            return Rounded(val & ((1 << fmt.bits) - 1), frozenset(flags))
        val = fmt.max if val > fmt.max else fmt.min
    return Rounded(fmt.code(val), frozenset(flags))
