"""Walsh-Hadamard rotations before quantization, exactly: the transform, its exact normalisation in Q(sqrt 2), and
the binary32 / bfloat16 evaluation orders of the implementations.

The transform (sources: QuaRot, Ashkboos et al., arXiv 2404.00456, §3 "random Hadamard transformation";
SpinQuant, Liu et al., arXiv 2405.16406; NVIDIA's NVFP4 training recipe, arXiv 2509.25149, §4.2, and Transformer
Engine ``pytorch/tensor/nvfp4_tensor.py`` ``get_rht_matrix``): a vector x of n = 2^k elements (a tile of the last
axis) maps to

    y = (1 / sqrt n) * H_n * (d (.) x)

where H_n is the Sylvester Hadamard matrix, H_1 = [1], H_2m = [[H_m, H_m], [H_m, -H_m]], i.e. entry
(i, j) = (-1)^popcount(i & j) (Sylvester, "natural" order, symmetric), and d is a vector of signs +-1
(Transformer Engine multiplies ``diag(d) @ H / sqrt n`` from the right of a row vector, which is the same y since
H is symmetric).  ``signs``: ``none`` (d = 1), ``te_wgrad`` (Transformer Engine's fixed 16-entry wgrad vector
[1, 1, 1, -1, 1, -1, -1, -1, -1, -1, -1, 1, -1, 1, -1, -1], n = 16 only), ``seed`` (d_j = -1 exactly when bit j
of SHA-256("refarith-hadamard-signs:<n>:<seed>"), bytes in order, least significant bit first, is 1: QuaRot and
SpinQuant draw the signs from torch's generator, which no other library reproduces, so a certificate fixes them
by this rule).

Exact representations (``order=exact``; the result rounded once into the spec's format F, RNE, overflow to inf):

* ``norm=after``: the normalised y itself.  1/sqrt n is dyadic for even k (n = 16: 1/4, n = 64: 1/8) and
  irrational for odd k (n = 32: sqrt2 / 8, n = 128: sqrt2 / 16), so y lies in Q(sqrt 2) = {a + b sqrt2: a, b
  rational}; :class:`Q2` holds such numbers exactly and :func:`round_q2` rounds one correctly (a rational
  bracket refined until both ends round alike: an irrational number is never a rounding boundary).
* ``norm=fold``: the unnormalised H_n (d (.) x), with 1/sqrt n left to the quantization scale, as fused kernels
  do (the exact sum is rational for every n).

Implementation orders (``order=sequential|butterfly``; every operation rounded to nearest even in ``acc``,
binary32 or bfloat16, IEEE 754 specials; inputs widened exactly into acc, the result rounded once into F):

* ``sequential``: the dot product of row i, s = t_0, s = fl(s + t_j) for j = 1 .. n-1, t_j = H_ij d_j x_j (a
  sign flip, exact) -- a matrix multiply with one accumulator per output.
* ``butterfly``: the fast Walsh-Hadamard transform (Dao's ``fast-hadamard-transform``, used by QuaRot): for
  h = 1, 2, 4, .., n/2 and every i with bit h clear, (v_i, v_(i+h)) <- (fl(v_i + v_(i+h)), fl(v_i - v_(i+h))).
* ``norm=after``: then y = fl(s * c) with c = fl_acc(1 / sqrt n) (``fast_hadamard_transform(x, scale)``);
  ``norm=matrix`` (sequential only): the terms are t_j = fl(x_j * (+-c)), the entries of ``H / sqrt n`` stored in
  acc (``x @ H_normalised``, Transformer Engine's bf16 RHT matrix); ``norm=fold``: no normalisation.

Every NaN result is F's canonical quiet NaN (payloads are not modelled).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import reduce

from refarith.errors import BadValueError, SpecError
from refarith.exact.ops import add, decode, exact_add, mul, sub
from refarith.exact.rounding import pow2, round_value
from refarith.exact.value import Value
from refarith.formats import get_format
from refarith.spec import OpSchema, Param, Spec, make_spec, register_op

SIGNS = ("none", "te_wgrad", "seed")
ORDERS = ("exact", "sequential", "butterfly")
NORMS = ("after", "fold", "matrix")
ACCS = ("binary32", "bfloat16")
FORMATS = ("binary32", "bfloat16")
TE_WGRAD_SIGNS = (1, 1, 1, -1, 1, -1, -1, -1, -1, -1, -1, 1, -1, 1, -1, -1)
"""Transformer Engine's fixed sign vector of the NVFP4 weight-gradient RHT (``get_wgrad_sign_vector``)."""
MAX_N = 1024


# ------------------------------------------------------------------ Q(sqrt 2)
@dataclass(frozen=True)
class Q2:
    """The exact number a + b * sqrt(2) (a, b rational)."""

    a: Fraction
    b: Fraction = Fraction(0)

    def __add__(self, o: Q2) -> Q2:
        return Q2(self.a + o.a, self.b + o.b)

    def __neg__(self) -> Q2:
        return Q2(-self.a, -self.b)

    def __sub__(self, o: Q2) -> Q2:
        return self + (-o)

    def __mul__(self, o: Q2) -> Q2:
        return Q2(self.a * o.a + 2 * self.b * o.b, self.a * o.b + self.b * o.a)

    def sign(self) -> int:
        """-1, 0 or 1, exactly (compares a^2 with 2 b^2 when a and b have opposite signs)."""
        sa = (self.a > 0) - (self.a < 0)
        sb = (self.b > 0) - (self.b < 0)
        if sa == sb or sb == 0:
            return sa
        if sa == 0:
            return sb
        d = self.a * self.a - 2 * self.b * self.b  # never 0: sqrt 2 is irrational
        return sa if d > 0 else sb


def inv_sqrt(n: int) -> Q2:
    """1 / sqrt(n) for n = 2^k exactly: 2^(-k/2) for even k, sqrt2 * 2^(-(k+1)/2) for odd k."""
    k = check_n(n)
    return Q2(pow2(-(k // 2))) if k % 2 == 0 else Q2(Fraction(0), pow2(-(k + 1) // 2))


def _bracket(q: Q2, bits: int) -> tuple[Fraction, Fraction]:
    """Rationals lo < q < hi with hi - lo = 2^-bits / den(b) (q irrational: b != 0)."""
    b = q.b
    num, den = abs(b.numerator), b.denominator
    r = math.isqrt(2 * num * num << (2 * bits))  # floor(sqrt(2) |num| 2^bits)
    lo, hi = Fraction(r, den << bits), Fraction(r + 1, den << bits)
    if b < 0:
        lo, hi = -hi, -lo
    return q.a + lo, q.a + hi


def round_q2(q: Q2, fmt, rounding: str = "rne", overflow: str | None = None) -> int:
    """The code of ``q`` rounded once into ``fmt`` (any monotone mode of round_value): exact for rational q; for
    irrational q the bracket of :func:`_bracket` is refined until both ends round to the same code."""
    if q.b == 0:
        return round_value(Value.of(q.a), fmt, rounding, overflow).code
    bits = 64
    while True:
        lo, hi = _bracket(q, bits)
        c_lo = round_value(Value.of(lo), fmt, rounding, overflow).code
        c_hi = round_value(Value.of(hi), fmt, rounding, overflow).code
        if c_lo == c_hi and not (lo <= 0 <= hi):
            return c_lo
        bits *= 2


# ------------------------------------------------------------------ the transform
def check_n(n: int) -> int:
    """log2 n for a power of two 2 <= n <= MAX_N; BadValueError naming n otherwise."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 2 or n > MAX_N or n & (n - 1):
        raise BadValueError(f"Hadamard size {n!r} is not a power of two in 2..{MAX_N}")
    return n.bit_length() - 1


def hadamard_entry(i: int, j: int) -> int:
    """Entry (i, j) of the Sylvester Hadamard matrix: (-1)^popcount(i & j)."""
    return -1 if bin(i & j).count("1") & 1 else 1


def sylvester(n: int) -> list[list[int]]:
    """The n x n Sylvester Hadamard matrix by its recursive definition H_2m = [[H, H], [H, -H]] (integers)."""
    check_n(n)
    h = [[1]]
    while len(h) < n:
        h = [row + row for row in h] + [row + [-v for v in row] for row in h]
    return h


def sign_vector(n: int, signs: str = "none", seed: int = 0) -> tuple[int, ...]:
    """The sign vector d (see the module docstring)."""
    check_n(n)
    if signs == "none":
        return (1,) * n
    if signs == "te_wgrad":
        if n != 16:
            raise BadValueError(f"signs=te_wgrad is Transformer Engine's 16-entry vector; n = {n}")
        return TE_WGRAD_SIGNS
    if signs == "seed":
        out: list[int] = []
        block = 0
        while len(out) < n:
            h = hashlib.sha256(f"refarith-hadamard-signs:{n}:{seed}".encode() + (b"" if block == 0 else
                                                                                 f":{block}".encode())).digest()
            out += [-1 if (byte >> b) & 1 else 1 for byte in h for b in range(8)]
            block += 1
        return tuple(out[:n])
    raise BadValueError(f"unknown signs {signs!r}; expected one of {', '.join(SIGNS)}")


def butterfly_exact(v: list) -> list:
    """The fast Walsh-Hadamard transform in exact arithmetic (any values supporting + and -), Sylvester order."""
    v = list(v)
    n = len(v)
    h = 1
    while h < n:
        for i in range(n):
            if not i & h:
                v[i], v[i + h] = v[i] + v[i + h], v[i] - v[i + h]
        h *= 2
    return v


def _nan_code(fmt) -> int:
    return round_value(Value.nan(0), fmt).code


def rotate_exact(codes: list[int], fmt, n: int, signs: str = "none", seed: int = 0,
                 norm: str = "after") -> list[int]:
    """``order=exact``: y (norm=after, in Q(sqrt 2)) or H (d (.) x) (norm=fold) of each tile of n codes of
    ``fmt``, rounded once into ``fmt`` (RNE, overflow to inf).  A NaN input, or +inf and -inf meeting in a sum,
    gives NaN; an exactly zero sum is -0 only when every term is -0 (IEEE 754 §6.3)."""
    fmt = get_format(fmt)
    d = sign_vector(n, signs, seed)
    if norm not in ("after", "fold"):
        raise BadValueError(f"order=exact takes norm=after or norm=fold, not {norm!r}")
    if len(codes) % n:
        raise BadValueError(f"{len(codes)} values do not tile into Hadamard blocks of {n}")
    c = inv_sqrt(n)
    out: list[int] = []
    for t in range(0, len(codes), n):
        xs = [decode(x, fmt) for x in codes[t:t + n]]
        xs = [x if s > 0 else -x for x, s in zip(xs, d)]
        for i in range(n):
            terms = [x if hadamard_entry(i, j) > 0 else -x for j, x in enumerate(xs)]
            s = reduce(exact_add, terms)
            if s.is_nan:
                out.append(_nan_code(fmt))
            elif s.is_inf or s.is_zero or norm == "fold":
                out.append(round_value(s, fmt).code)
            else:
                out.append(round_q2(Q2(s.fraction) * c, fmt))
    return out


def _neg(code: int, fmt) -> int:
    return code ^ fmt.sign_mask


def rotate_float(codes: list[int], fmt, n: int, signs: str = "none", seed: int = 0, order: str = "butterfly",
                 acc: str = "binary32", norm: str = "after") -> list[int]:
    """``order=sequential|butterfly``: each operation rounded to nearest even in ``acc`` (see the module
    docstring); codes of ``fmt`` in and out."""
    fmt, af = get_format(fmt), get_format(acc)
    check_orders(order, norm, fmt.name, af.name)
    d = sign_vector(n, signs, seed)
    if len(codes) % n:
        raise BadValueError(f"{len(codes)} values do not tile into Hadamard blocks of {n}")
    cc = round_q2(inv_sqrt(n), af)
    out: list[int] = []
    for t in range(0, len(codes), n):
        xs = [round_value(decode(x, fmt), af).code for x in codes[t:t + n]]
        xs = [x if s > 0 else _neg(x, af) for x, s in zip(xs, d)]
        if order == "butterfly":
            v = list(xs)
            h = 1
            while h < n:
                for i in range(n):
                    if not i & h:
                        v[i], v[i + h] = add(v[i], v[i + h], af).code, sub(v[i], v[i + h], af).code
                h *= 2
        else:
            v = []
            for i in range(n):
                if norm == "matrix":
                    terms = [mul(x, cc if hadamard_entry(i, j) > 0 else _neg(cc, af), af).code
                             for j, x in enumerate(xs)]
                else:
                    terms = [x if hadamard_entry(i, j) > 0 else _neg(x, af) for j, x in enumerate(xs)]
                s = terms[0]
                for tj in terms[1:]:
                    s = add(s, tj, af).code
                v.append(s)
        if norm == "after":
            v = [mul(s, cc, af).code for s in v]
        for s in v:
            val = decode(s, af)
            out.append(_nan_code(fmt) if val.is_nan else round_value(val, fmt).code)
    return out


def check_orders(order: str, norm: str, fmt: str, acc: str | None) -> None:
    """SpecError (one line) for a combination the spec does not define."""
    if order not in ORDERS:
        raise SpecError(f"unknown order {order!r}; expected one of {', '.join(ORDERS)}")
    if norm not in NORMS:
        raise SpecError(f"unknown norm {norm!r}; expected one of {', '.join(NORMS)}")
    if norm == "matrix" and order != "sequential":
        raise SpecError("norm=matrix (entries +-fl(1/sqrt n)) applies to order=sequential only")
    if order != "exact" and acc == "bfloat16" and fmt == "binary32":
        raise SpecError("acc=bfloat16 would round binary32 inputs; use acc=binary32")


def rotate(spec: Spec | str, codes: list[int]) -> list[int]:
    """The exact model of a ``hadamard_rotate`` spec on a flat list of codes (a multiple of n)."""
    from refarith.spec import parse_spec

    spec = parse_spec(spec)
    p = spec.param
    n, seed = int(p["n"]), int(p.get("seed", "0"))
    if p["order"] == "exact":
        return rotate_exact(codes, spec.formats[0], n, p["signs"], seed, p["norm"])
    return rotate_float(codes, spec.formats[0], n, p["signs"], seed, p["order"], p.get("acc", "binary32"),
                        p["norm"])


def inverse_exact(y: list[Q2], n: int, signs: str = "none", seed: int = 0) -> list[Q2]:
    """x = d (.) (1/sqrt n) H y in Q(sqrt 2): the inverse of the normalised rotation (H symmetric, H H = n I)."""
    d = sign_vector(n, signs, seed)
    c = inv_sqrt(n)
    hy = butterfly_exact(y)
    return [v * c if s > 0 else -(v * c) for v, s in zip(hy, d)]


def hadamard_spec(fmt: str = "binary32", n: int = 16, signs: str = "none", seed: int | None = None,
                  order: str = "exact", acc: str | None = None, norm: str = "after") -> Spec:
    """Canonical id, e.g. ``hadamard_rotate(binary32,n=32,signs=seed,seed=1,order=butterfly,acc=binary32,
    norm=after)``."""
    return make_spec("hadamard_rotate", (fmt,), n=n, signs=signs, seed=seed, order=order, acc=acc, norm=norm)


def _validate(spec: Spec) -> None:
    p = spec.param
    if spec.formats[0] not in FORMATS:
        raise SpecError(f"{spec}: hadamard_rotate rotates binary32 or bfloat16 values, not {spec.formats[0]}")
    if not p["n"].isdigit():
        raise SpecError(f"{spec}: n must be a power of two in 2..{MAX_N}")
    try:
        check_n(int(p["n"]))
        if p["signs"] == "te_wgrad":
            sign_vector(int(p["n"]), "te_wgrad")
    except BadValueError as e:
        raise SpecError(f"{spec}: {e}") from None
    if "seed" in p and p["signs"] != "seed":
        raise SpecError(f"{spec}: seed applies to signs=seed only")
    if "seed" in p and not p["seed"].isdigit():
        raise SpecError(f"{spec}: seed must be a non-negative integer")
    if p["order"] == "exact" and "acc" in p:  # acc=binary32 is omitted from ids, so only bfloat16 lands here
        raise SpecError(f"{spec}: acc applies to order=sequential|butterfly only")
    try:
        check_orders(p["order"], p["norm"], spec.formats[0], p.get("acc"))
    except SpecError as e:
        raise SpecError(f"{spec}: {e}") from None
    if p["order"] == "exact" and p["norm"] == "matrix":
        raise SpecError(f"{spec}: order=exact takes norm=after or norm=fold")


register_op(OpSchema(
    "hadamard_rotate", 1,
    (
        Param("n", "16", None, "Hadamard size, a power of two (16, 32, 64, 128 in use)"),
        Param("signs", "none", SIGNS, "sign vector d: none, te_wgrad (Transformer Engine, n=16), seed"),
        Param("seed", lambda f: None, None, "signs=seed: the seed of the SHA-256 sign rule (default 0)"),
        Param("order", "exact", ORDERS, "exact (one rounding), sequential (row dot products) or butterfly "
              "(fast WHT)"),
        Param("acc", lambda f: None, ACCS, "order=sequential|butterfly: the arithmetic format (absent: binary32)",
              normalize=lambda v: None if v == "binary32" else v),
        Param("norm", "after", NORMS, "after: times 1/sqrt n (exact, or fl(1/sqrt n) in acc); fold: unnormalised; "
              "matrix: entries +-fl(1/sqrt n) (sequential)"),
    ),
    "Walsh-Hadamard rotation y = H (d (.) x) / sqrt n of tiles of n values of the format, rounded as the order "
    "says",
    _validate,
))

