"""Named stochastic-rounding variants: each one a pure function of (exact value, random integer r of k bits).

The rounding function (:mod:`refarith.exact.rounding`) reduces a magnitude to
``n + frac`` ulps (n an integer, 0 <= frac < 1, the ulp that of the target at
that magnitude) and asks :func:`round_up` whether to deliver ``n + 1``.  Every
variant below rounds up iff a comparison of an integer built from ``frac`` and
the random integer ``r`` (0 <= r < 2^k) succeeds; ``frac == 0`` never rounds.

Variants, with what their sources say (checked 2026-12-01):

``a`` -- add r to the k bits below the kept ones and truncate:
    up iff floor(frac * 2^k) + r >= 2^k.
    IEEE P3109 interim report v4.0 (26 June 2026), §4.7.4 "Rounding to
    precision": RoundAway(StochasticA_N,R) = floor(nu * 2^N) + R >= 2^N.  The
    hardware rule (NVIDIA PTX ``cvt.rs`` takes the random bits as an operand and
    adds them below the kept bits).  gfloat (graphcore-research/gfloat,
    src/gfloat/round.py, ``RoundMode.StochasticFastest``: ``delta + srbits *
    2**-srnumbits >= 1``, equal in exact arithmetic).  refarith's ``sr`` before
    variants existed; the default.
``b`` -- one more fraction bit, the random integer offset by half:
    up iff floor(frac * 2^(k+1)) + (2r + 1) >= 2^(k+1).
    P3109 v4.0 §4.7.4 StochasticB; gfloat ``RoundMode.StochasticFast``
    (``delta + (0.5 + srbits) * 2**-srnumbits >= 1``, equal in exact arithmetic).
``c`` -- round the fraction to k bits, ties to even, then compare:
    up iff RNITE(frac * 2^k) + r >= 2^k (RNITE: nearest integer, ties to even).
    P3109 v4.0 §4.7.4 StochasticC; gfloat ``RoundMode.Stochastic`` ("RTNE
    before comparison").
``c_odd`` -- as ``c`` with ties to odd: up iff RNITO(frac * 2^k) + r >= 2^k.
    gfloat ``RoundMode.StochasticOdd`` ("RTNO before comparison"); not in P3109.
``te_e2m1_8`` -- NVIDIA Transformer Engine's software stochastic rounding onto
    the E2M1 grid (transformer_engine/common/util/ptx.cuh,
    ``stochastic_round_fp4_e2m1``, for GPUs without ``cvt.rs``; 8 random bits per
    element): u = r / 256, step = the E2M1 spacing at |x| (0.5 below 2, 1 in
    [2, 4), 2 from 4), t = fmaf(u, step, |x|) rounded once to binary32 (ties to
    even), result floor(t / step(t)) * step(t) clamped to 6.  So it rounds up iff
    RNE_binary32(|x| + r * ulp / 256) >= (n + 1) * ulp.  The binary32 rounding
    of the sum makes it differ from ``a`` with k = 8 where |x| has bits far below
    the E2M1 ulp (up to 2^-15 ulp below a neighbour rounds up).  Only for an E2M1
    target with k = 8.  (TE's saturating edges -- NaN to +6, overflow clamped --
    are the overflow/NaN policies of the spec, not part of this decision.)

Aliases (gfloat's names): ``gfloat_fastest`` = ``a``, ``gfloat_fast`` = ``b``,
``gfloat`` = ``c``, ``gfloat_odd`` = ``c_odd``.

Worked example (the reason ``a`` and ``c`` are different variants): E5M2 with
k = 5, the value 259 = 256 + 3 lies 3/64 of an ulp (64) above 256; floor(3/64 *
32) = 1 so ``a`` rounds up for 1 of the 32 values of r; RNITE(1.5) = 2 so ``c``
rounds up for 2 of them.

Expectations over uniform r (:func:`up_count`): with f = frac * 2^k, ``a`` rounds
up with probability floor(f) / 2^k (bias in (-2^-k, 0] ulp), ``b`` floor(f + 1/2)
/ 2^k, ``c`` RNITE(f) / 2^k, ``c_odd`` RNITO(f) / 2^k (bias within ±2^-(k+1) ulp
for the last three), ``te_e2m1_8`` floor(f + 2^-j) / 256 with j of
:func:`te_e2m1_offset_bits` (bias in (-2^-8, 2^-(8+j)] ulp).  Every variant is
exactly unbiased when frac has at most k bits.
"""

from __future__ import annotations

from fractions import Fraction

from refarith.errors import UnknownModeError

SR_VARIANTS = ("a", "b", "c", "c_odd", "te_e2m1_8")
DEFAULT_SR_VARIANT = "a"
SR_ALIASES = {"gfloat_fastest": "a", "gfloat_fast": "b", "gfloat": "c", "gfloat_odd": "c_odd"}
SOURCES = {
    "a": "IEEE P3109 interim report v4.0 §4.7.4 StochasticA; PTX cvt.rs; gfloat RoundMode.StochasticFastest",
    "b": "IEEE P3109 interim report v4.0 §4.7.4 StochasticB; gfloat RoundMode.StochasticFast",
    "c": "IEEE P3109 interim report v4.0 §4.7.4 StochasticC; gfloat RoundMode.Stochastic",
    "c_odd": "gfloat RoundMode.StochasticOdd (src/gfloat/round.py)",
    "te_e2m1_8": "Transformer Engine stochastic_round_fp4_e2m1 (transformer_engine/common/util/ptx.cuh)",
}
TE_E2M1_TARGETS = ("ocp_e2m1",)
TE_E2M1_K = 8


def canonical_variant(name: str) -> str:
    """The canonical variant name of ``name`` (a variant or one of gfloat's aliases); UnknownModeError otherwise."""
    v = SR_ALIASES.get(name, name)
    if v not in SR_VARIANTS:
        raise UnknownModeError(f"unknown stochastic rounding variant {name!r}; expected one of "
                               f"{', '.join(SR_VARIANTS + tuple(SR_ALIASES))}")
    return v


def check_variant(variant: str, rand_bits: int, target: str | None = None) -> None:
    """Raise UnknownModeError when ``variant`` does not exist or does not apply to (``target``, k = ``rand_bits``)."""
    if variant not in SR_VARIANTS:
        canonical_variant(variant)
        raise UnknownModeError(f"stochastic rounding variant {variant!r} is an alias; use "
                               f"{SR_ALIASES[variant]!r}")
    if variant == "te_e2m1_8":
        if rand_bits != TE_E2M1_K:
            raise UnknownModeError(f"sr variant te_e2m1_8 takes k=8 random bits, not k={rand_bits}")
        if target is not None and target not in TE_E2M1_TARGETS:
            raise UnknownModeError(f"sr variant te_e2m1_8 rounds onto the E2M1 grid only, not {target}")


def rand_list(rand, n: int, rand_bits: int | None, what: str) -> list[int]:
    """The ``n`` random integers of ``n`` stochastic roundings (one per rounding), checked: UnknownModeError
    naming the problem when they are missing, of another count, not integers, or outside [0, 2^k)."""
    if rand is None or rand_bits is None:
        raise UnknownModeError(f"stochastic rounding of {what} needs rand ({n} integers, one per rounding) and "
                               "rand_bits (their width k)")
    if not isinstance(rand_bits, int) or isinstance(rand_bits, bool) or rand_bits < 1:
        raise UnknownModeError(f"rand_bits must be a positive integer, got {rand_bits!r}")
    rs = list(rand)
    if len(rs) != n:
        raise UnknownModeError(f"stochastic rounding of {what} needs {n} random integers (one per rounding), "
                               f"got {len(rs)}")
    out = []
    for v in rs:
        if isinstance(v, bool) or not hasattr(v, "__index__"):
            raise UnknownModeError(f"rand must hold integers, got {v!r}")
        v = int(v)
        if not 0 <= v < 1 << rand_bits:
            raise UnknownModeError(f"rand value {v} does not fit in rand_bits={rand_bits}")
        out.append(v)
    return out


def rnite(x: Fraction) -> int:
    """Nearest integer to x >= 0, ties to even (P3109 RNITE)."""
    n = x.numerator // x.denominator
    d = x - n
    if d > Fraction(1, 2) or (d == Fraction(1, 2) and n & 1):
        return n + 1
    return n


def rnito(x: Fraction) -> int:
    """Nearest integer to x >= 0, ties to odd (gfloat's _rnito)."""
    n = x.numerator // x.denominator
    d = x - n
    if d > Fraction(1, 2) or (d == Fraction(1, 2) and not n & 1):
        return n + 1
    return n


def _floor(x: Fraction) -> int:
    return x.numerator // x.denominator


def rne_binary32(x: Fraction) -> Fraction:
    """x >= 0 rounded to binary32 precision (24 bits, subnormals from 2^-149), ties to even, unbounded above."""
    if x == 0:
        return x
    e = x.numerator.bit_length() - x.denominator.bit_length()
    if x < Fraction(2) ** e:
        e -= 1
    q = max(e, -126) - 23
    ulp = Fraction(2) ** q
    s = x / ulp
    return rnite(s) * ulp


def te_e2m1_offset_bits(n: int, ulp: Fraction) -> int:
    """j such that the binary32 rounding of the sum in ``te_e2m1_8`` reaches the neighbour g = (n+1)*ulp from
    2^-j * ulp / 256 below it: half the binary32 spacing just below g, in units of ulp / 256."""
    g = (n + 1) * ulp
    e = g.numerator.bit_length() - g.denominator.bit_length()
    if g < Fraction(2) ** e:
        e -= 1
    below = e - 1 if g == Fraction(2) ** e else e  # binade of the values just below g
    half = Fraction(2) ** (max(below, -126) - 24)
    ratio = half * 256 / ulp
    j = ratio.denominator.bit_length() - 1
    if ratio.numerator != 1 or ratio.denominator != 1 << j:
        raise AssertionError(f"offset of {g} is not a power of two")
    return j


def round_up(variant: str, frac: Fraction, r: int, k: int, n: int = 0, ulp: Fraction | None = None) -> bool:
    """Whether magnitude ``n + frac`` ulps rounds up to ``n + 1`` under ``variant`` with random integer ``r``
    (0 <= r < 2^k).  ``n`` and ``ulp`` (the absolute ulp) matter only for ``te_e2m1_8``."""
    if frac == 0:
        return False
    if variant == "a":
        return _floor(frac * (1 << k)) + r >= 1 << k
    if variant == "b":
        return _floor(frac * (1 << (k + 1))) + 2 * r + 1 >= 1 << (k + 1)
    if variant == "c":
        return rnite(frac * (1 << k)) + r >= 1 << k
    if variant == "c_odd":
        return rnito(frac * (1 << k)) + r >= 1 << k
    if variant == "te_e2m1_8":
        if ulp is None:
            raise UnknownModeError("sr variant te_e2m1_8 needs the absolute ulp of the target")
        a = (n + frac) * ulp
        return rne_binary32(a + Fraction(r, 1 << k) * ulp) >= (n + 1) * ulp
    raise UnknownModeError(f"unknown stochastic rounding variant {variant!r}")


def up_count(variant: str, frac: Fraction, k: int, n: int = 0, ulp: Fraction | None = None) -> int:
    """Closed form of the number of r in [0, 2^k) for which :func:`round_up` is true (the exact round-up
    probability times 2^k); the theorems check it against enumeration."""
    if frac == 0:
        return 0
    f = frac * (1 << k)
    if variant == "a":
        return _floor(f)
    if variant == "b":
        return _floor(f + Fraction(1, 2))
    if variant == "c":
        return rnite(f)
    if variant == "c_odd":
        return rnito(f)
    if variant == "te_e2m1_8":
        if ulp is None:
            raise UnknownModeError("sr variant te_e2m1_8 needs the absolute ulp of the target")
        j = te_e2m1_offset_bits(n, ulp)
        return min(1 << k, _floor(f + Fraction(1, 1 << j)))
    raise UnknownModeError(f"unknown stochastic rounding variant {variant!r}")


def bias_bounds(variant: str, k: int) -> tuple[Fraction, Fraction, bool, bool]:
    """(lo, hi, lo_inclusive, hi_inclusive): bounds on E[rounded] - value in ulps over every frac (the exact
    range for a, b, c and c_odd; for te_e2m1_8 hi is the largest 2^-(8+j), j >= 15)."""
    if variant == "a":
        return (-Fraction(1, 1 << k), Fraction(0), False, True)
    if variant in ("b", "c", "c_odd"):
        h = Fraction(1, 1 << (k + 1))
        return (-h, h, variant != "b", True)
    if variant == "te_e2m1_8":
        return (-Fraction(1, 1 << k), Fraction(1, 1 << (k + 15)), False, True)
    raise UnknownModeError(f"unknown stochastic rounding variant {variant!r}")


__all__ = [
    "DEFAULT_SR_VARIANT", "SOURCES", "SR_ALIASES", "SR_VARIANTS", "bias_bounds", "canonical_variant",
    "check_variant", "rand_list", "rne_binary32", "rnite", "rnito", "round_up", "te_e2m1_offset_bits", "up_count",
]
