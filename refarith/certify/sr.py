"""Stochastic-rounding specs in the certifier: the random-bits operand, the exact outcome of an input over all
random integers, the input set at the hard places, and the bit-exact stage of kernels that take random bits.

Convention (bit-exact certification and ``identify``): a kernel of a stochastic-rounding spec (``rounding=sr``
with ``k`` random bits) receives the random integers as its **last operand** ``r``, one per element, as an
unsigned integer array (the smallest dtype holding k bits) with every value in [0, 2^k); it returns the codes as
for the deterministic spec.  Where the op's driver already declares an ``r`` operand the driver's operands are
used as they are.

Exact outcome of one input x (:func:`outcome`): the exact model is monotone in r (the issue's theorem; checked by
full enumeration in the tests), so the results over r in [0, 2^k) are ``lo`` (at r = 0) for r < r* and ``hi``
(at r = 2^k - 1) from r* on; r* is found by bisection with k + 2 calls of the exact model, and
P(hi) = (2^k - r*) / 2^k exactly.  ``lo == hi`` for inputs whose result does not depend on r (exact values,
saturation, NaN, infinities).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

from refarith.errors import BadValueError, RefarithError, SpecError
from refarith.exact import ops as _ops
from refarith.exact.rounding import round_value
from refarith.formats import FloatFormat, get_format
from refarith.golden.drivers import Operand, get_driver, is_nan_code
from refarith.spec import Spec

MAX_K = 64
"""The widest random word a kernel receives (numpy's uint64)."""


def is_sr(spec: Spec) -> bool:
    """Whether ``spec`` rounds stochastically (and so needs random bits)."""
    return spec.param.get("rounding") == "sr"


def sr_variant(spec: Spec) -> str:
    """The spec's stochastic-rounding variant (``sr=``; ``a`` when absent, see refarith.exact.stochastic)."""
    return spec.param.get("sr") or "a"


def sr_bits(spec: Spec) -> int:
    """The spec's number of random bits k (SpecError when it has none or more than :data:`MAX_K`)."""
    if not is_sr(spec) or "k" not in spec.param:
        raise SpecError(f"{spec} is not a stochastic-rounding spec (rounding=sr,k=N)")
    k = int(spec.param["k"])
    if k > MAX_K:
        raise SpecError(f"{spec}: k={k} random bits exceed the {MAX_K}-bit random word a kernel receives")
    return k


def rand_dtype(k: int) -> np.dtype:
    """The unsigned dtype a kernel receives its k random bits in."""
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if k <= np.dtype(dt).itemsize * 8:
            return np.dtype(dt)
    raise SpecError(f"k={k} random bits exceed the {MAX_K}-bit random word a kernel receives")


def rand_operand(spec: Spec) -> Operand:
    """The operand ``r`` of a stochastic-rounding spec: one k-bit unsigned integer per element."""
    return Operand("r", get_format(f"uint{rand_dtype(sr_bits(spec)).itemsize * 8}"))


def driver_has_rand(spec: Spec) -> bool:
    """Whether the op's driver declares the random bits ``r`` as an operand of ``spec`` (k checked first)."""
    if is_sr(spec):
        sr_bits(spec)
    return any(o.name == "r" for o in get_driver(spec).inputs(spec))


def kernel_inputs(spec: Spec) -> tuple[Operand, ...]:
    """The operands a kernel of ``spec`` receives: the driver's, and ``r`` last for a stochastic-rounding spec
    whose driver does not declare it."""
    ins = get_driver(spec).inputs(spec)
    if is_sr(spec) and not any(o.name == "r" for o in ins):
        ins = (*ins, rand_operand(spec))
    return ins


def check_takes_rand(kernel, spec: Spec) -> None:
    """SpecError unless ``kernel`` can receive the random bits of ``spec`` as its last operand."""
    n = len(kernel_inputs(spec))
    if kernel.takes is not None and not kernel.takes(n):
        raise SpecError(f"kernel {kernel.target} takes fewer than {n} operands, so it cannot receive the random bits "
                        f"of {spec} (it is called as fn(x, r), r the k random bits); a kernel whose randomness is "
                        "internal is certified with --sr-samples N")


def check_rand(r: np.ndarray, k: int, what: str = "random bits") -> np.ndarray:
    """``r`` as uint64 after checking that it holds integers in [0, 2^k) (BadValueError naming the first that does
    not)."""
    a = np.asarray(r)
    if a.dtype.kind not in "iu":
        raise BadValueError(f"{what} must be integers of k={k} bits, got dtype {a.dtype}")
    if a.size:
        lo = int(a.min())
        hi = int(a.max())
        if lo < 0 or hi >= (1 << k):
            bad = lo if lo < 0 else hi
            raise BadValueError(f"{what}: {bad} does not fit k={k} bits (expected 0 <= r < 2^{k})")
    return a.astype(np.uint64)


def _cast_kw(spec: Spec) -> dict:
    p = spec.param
    kw = dict(rounding="sr", overflow=p.get("overflow"), rand_bits=int(p["k"]))
    if "nan" in p:
        kw["nan_policy"] = p["nan"]
    if "negative" in p:
        kw["negative"] = p["negative"]
    return kw


def exact_sr(spec: Spec, x: int, r: int, value=None) -> int | None:
    """The exact model's result code of input code ``x`` with random integer ``r`` (None where the spec raises);
    ``value``: the decoded input, when the caller has it."""
    if driver_has_rand(spec):
        out = get_driver(spec).exact(spec, (x, r))
        return None if out is None else out[0]
    if spec.op != "cast":
        raise SpecError(f"{spec}: stochastic rounding is certified for casts (no random-bits operand for {spec.op})")
    if spec.param.get("subnormal"):
        raise SpecError(f"{spec}: stochastic certification does not cover flush-to-zero variants (subnormal=)")
    try:
        v = _ops.decode(x, spec.fmt(0)) if value is None else value
        return round_value(v, spec.fmt(1), rand=r, sr_variant=sr_variant(spec), **_cast_kw(spec)).code
    except SpecError:
        raise
    except RefarithError:
        return None


@dataclass(frozen=True)
class Outcome:
    """The exact distribution of one input's result: ``lo`` for r < ``threshold``, ``hi`` from it on (``lo ==
    hi``: deterministic); ``count`` = 2^k - threshold random integers give ``hi``."""

    x: int
    lo: int
    hi: int
    threshold: int
    k: int

    @property
    def count(self) -> int:
        return (1 << self.k) - self.threshold

    @property
    def p(self) -> Fraction:
        """Exact probability of ``hi``."""
        return Fraction(self.count, 1 << self.k)

    @property
    def deterministic(self) -> bool:
        return self.lo == self.hi


def outcome(spec: Spec, x: int) -> Outcome | None:
    """The exact outcome of input code ``x`` (None where the spec raises), by bisection over r (module
    docstring)."""
    k = sr_bits(spec)
    top = (1 << k) - 1
    v = _ops.decode(x, spec.fmt(0))
    lo = exact_sr(spec, x, 0, v)
    hi = exact_sr(spec, x, top, v)
    if lo is None or hi is None:
        return None
    if lo == hi:
        return Outcome(x, lo, hi, 0, k)
    a, b = 0, top  # exact(a) == lo, exact(b) == hi
    while b - a > 1:
        m = (a + b) // 2
        if exact_sr(spec, x, m, v) == hi:
            b = m
        else:
            a = m
    return Outcome(x, lo, hi, b, k)


def outcome_by_enumeration(spec: Spec, x: int) -> dict[int, int]:
    """{result code: number of r in [0, 2^k) giving it}, by calling the exact model on every r (small k only)."""
    k = sr_bits(spec)
    out: dict[int, int] = {}
    for r in range(1 << k):
        c = exact_sr(spec, x, r)
        out[c] = out.get(c, 0) + 1
    return out


# ------------------------------------------------------------------ the input set at the hard places
def _src_code(src: FloatFormat, v: Fraction, sign: int) -> int | None:
    """The source code nearest to ``v`` (round to nearest even), None beyond the source's range."""
    if v > src.max:
        return None
    try:
        return _ops.encode(v if not sign else -v, src, "rne", "saturate").code
    except RefarithError:
        return None


def _select_values(vals: list[Fraction], limit: int) -> list[Fraction]:
    """At most ``limit`` of the sorted magnitudes: all of them, or the smallest and largest ones, every power of
    two and a seeded sample of the rest."""
    if len(vals) <= limit:
        return vals
    keep = set(vals[:16]) | set(vals[-16:])
    keep |= {v for v in vals if v and v.numerator & (v.numerator - 1) == 0 and v.denominator & (v.denominator - 1)
             == 0}
    rest = [v for v in vals if v not in keep]
    rng = random.Random(0x5A)
    keep |= set(rng.sample(rest, max(0, min(len(rest), limit - len(keep)))))
    return sorted(keep)


def fraction_points(k: int) -> tuple[Fraction, ...]:
    """Fractions of the gap between two neighbours at which inputs are placed: 1/2^k and 1 - 1/2^k (the extreme
    non-zero probabilities), 1/4, 1/2 (the tie), 3/4, 1/2 + 1/2^(k+1) and 3/2^(k+1) (one bit more than k: a tie
    of the k-bit fraction above an even and above an odd integer, where the variants that round the fraction
    first differ), 1/3 (infinitely many bits)."""
    q = Fraction(1, 1 << k)
    return (q, Fraction(1, 4), Fraction(1, 2), Fraction(3, 4), 1 - q, Fraction(1, 2) + q / 2, 3 * q / 2,
            Fraction(1, 3))


def sr_inputs(spec: Spec, max_values: int = 160) -> list[int]:
    """Source codes at the hard places of a stochastic cast (see :func:`_sr_inputs`; memoized)."""
    return list(_sr_inputs(spec, max_values))


@lru_cache(maxsize=32)
def _sr_inputs(spec: Spec, max_values: int) -> tuple[int, ...]:
    """Source codes at the hard places of a stochastic cast, both signs: for every pair of neighbouring
    destination magnitudes a < b (at most ``max_values`` magnitudes; see :func:`_select_values`), the source
    values just above a and just below b and a + (b - a) q for q in :func:`fraction_points` (subnormals, the carry
    into the next binade at b = 2^e, and ties among them); above the largest finite value the same points up to
    the next step and twice that (the overflow boundary); every 8th destination value, the largest, zero, the
    infinities and NaN (deterministic results); inputs where the spec raises are dropped."""
    if spec.op != "cast":
        raise SpecError(f"{spec}: stochastic certification covers casts, not {spec.op}")
    src, dst = spec.fmt(0), spec.fmt(1)
    if not isinstance(src, FloatFormat) or not isinstance(dst, FloatFormat) or dst.nbits > 16:
        raise SpecError(f"{spec}: stochastic certification covers casts from a float format into a float format of "
                        "at most 16 bits")
    k = sr_bits(spec)
    mags = sorted({abs(dst.finite_value(c)) for c in range(dst.ncodes) if dst.is_finite_code(c)})
    mags = _select_values(mags, max_values)
    step = mags[-1] - mags[-2] if len(mags) >= 2 else mags[-1]
    pairs = list(zip(mags, mags[1:])) + [(mags[-1], mags[-1] + step)]
    points = fraction_points(k)
    out: list[int] = []
    for sign in (0, 1) if dst.signed else (0,):
        for a, b in pairs:
            ca, cb = _src_code(src, a, sign), _src_code(src, b, sign)
            if ca is not None:
                out.append(ca + 1)  # just above a (codes of one sign are ordered by magnitude)
            if cb is not None and cb & ~src.sign_mask:
                out.append(cb - 1)  # just below b
            for q in points:
                c = _src_code(src, a + (b - a) * q, sign)
                if c is not None:
                    out.append(c)
        c = _src_code(src, mags[-1] + 2 * step, sign)
        if c is not None:
            out.append(c)
        for v in mags[::8] + [mags[-1]]:
            c = _src_code(src, v, sign)
            if c is not None:
                out.append(c)
    out += [c for c in src.inf_codes]
    if src.has_nan:
        out.append(src.nan_code)
    seen, res = set(), []
    for c in out:
        if 0 <= c < src.ncodes and c not in seen:
            seen.add(c)
            res.append(c)
    return tuple(res)


def outcomes(spec: Spec, codes: list[int] | None = None) -> list[Outcome]:
    """Exact outcomes of the input set (:func:`sr_inputs` by default), inputs where the spec raises dropped
    (memoized per spec and input list)."""
    codes = sr_inputs(spec) if codes is None else codes
    return list(_outcomes(spec, tuple(int(c) for c in codes)))


@lru_cache(maxsize=32)
def _outcomes(spec: Spec, codes: tuple[int, ...]) -> tuple[Outcome, ...]:
    return tuple(o for o in (outcome(spec, c) for c in codes) if o is not None)


def rand_points(o: Outcome, extra: int, rng: random.Random) -> list[int]:
    """The random integers at which a bit-exact stage checks one input: 0, 1, 2^(k-1), 2^k - 1, both sides of the
    threshold, and ``extra`` seeded random ones."""
    top = (1 << o.k) - 1
    rs = {0, min(1, top), 1 << (o.k - 1), top}
    if not o.deterministic:
        rs |= {o.threshold - 1, o.threshold}
    rs |= {rng.randrange(top + 1) for _ in range(extra)}
    return sorted(r for r in rs if 0 <= r <= top)


def sr_vectors(spec: Spec, extra: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x codes, r, expected codes) of the bit-exact stage of a stochastic cast: every input of :func:`sr_inputs`
    at the random integers of :func:`rand_points` (seeded), expected values from the exact model."""
    rng = random.Random(seed)
    xs, rs, ys = [], [], []
    for o in outcomes(spec):
        for r in rand_points(o, extra, rng):
            y = o.lo if r < o.threshold or o.deterministic else o.hi
            xs.append(o.x)
            rs.append(r)
            ys.append(y)
    return np.array(xs, dtype=np.uint64), np.array(rs, dtype=np.uint64), np.array(ys, dtype=np.uint64)


def nan_aware_equal(fmt, got: np.ndarray, exp: np.ndarray, nan_payload_ok: bool) -> np.ndarray:
    """Elementwise equality of codes, NaN codes equal to each other when ``nan_payload_ok``."""
    eq = got == exp
    if nan_payload_ok and fmt.ncodes <= 1 << 16:
        t = np.array([is_nan_code(fmt, c) for c in range(fmt.ncodes)])
        eq |= t[got.astype(np.int64)] & t[exp.astype(np.int64)]
    return eq


__all__ = ["MAX_K", "Outcome", "check_rand", "exact_sr", "fraction_points", "is_sr", "kernel_inputs", "outcome",
           "outcome_by_enumeration", "outcomes", "rand_dtype", "rand_operand", "rand_points", "sr_bits", "sr_inputs",
           "sr_vectors"]
