"""Vector drivers of L-Mul and of floating-point dot products with a stated accumulator.

* ``lmul(F,...)``: two codes of F -> one code of F (exhaustive for 8-bit formats).
* ``fdot(F->A,...)``: two vectors of 8 codes of F -> one code of the accumulator format A.  With
  ``rounding=sr`` a vector also carries the operand ``r:uint<k>*m``, one k-bit random integer per addition in
  evaluation order (m = 8 sequentially, 7 in the pairwise tree); the exact model and the fast kernels take the
  same integers.  Boundary vectors: every other deterministic one and :func:`hard_sr_vectors`, each with random
  integers from one of four patterns (uniform, all 2^k - 1, all 2^(k-1), all 0).
"""

from __future__ import annotations

import random
from fractions import Fraction
from functools import cache

from refarith.errors import RefarithError, SpecError
from refarith.exact import fdot as _fdot
from refarith.exact import lmul as _lmul
from refarith.formats import get_format
from refarith.golden.drivers import (
    Driver,
    Operand,
    _classify_result,
    _dst_values,
    binary_boundary,
    float_boundaries,
    is_sr,
    register_driver,
    schema_variants,
    single,
)
from refarith.golden.opdrivers import as_backend, fixed_rng
from refarith.spec import Spec


# ------------------------------------------------------------------ L-Mul
def _lmul_exact(spec: Spec, codes: tuple[int, ...]) -> int | None:
    try:
        return _lmul.lmul_spec(spec, codes[0], codes[1]).code
    except SpecError:
        raise
    except RefarithError:
        return None


def _lmul_classify(spec: Spec, codes: tuple[int, ...], got: tuple[int, ...]) -> str:
    f = spec.fmt(0)
    c = _classify_result(f, _lmul_exact(spec, codes), got[0])
    if c:
        return c
    v = _lmul.exact_value(codes[0], codes[1], f, spec.param["variant"])
    if not v.is_finite:
        return "nan_inf"
    if v.mag > f.max:
        return "overflow"
    if v.mag < f.min_normal:
        return "subnormal"
    return "in_range"


def _lmul_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast import lmul

    return (lmul.lmul_spec(spec, as_backend(inputs[0], backend), as_backend(inputs[1], backend), backend=backend),)


register_driver(Driver(
    "lmul",
    inputs=lambda s: (Operand("a", s.fmt(0)), Operand("b", s.fmt(0))),
    outputs=lambda s: (Operand("y", s.fmt(0)),),
    exact=single(_lmul_exact),
    boundary=binary_boundary,
    classify=_lmul_classify,
    variant_params=schema_variants,
    fast=_lmul_fast,
    doc="two codes of the format -> the L-Mul product's code",
))


# ------------------------------------------------------------------ fdot
DOT = 8


def _fdot_exact(spec: Spec, codes: tuple[int, ...]) -> int | None:
    try:
        rand = list(codes[2 * DOT:]) if is_sr(spec) else None
        return _fdot.fdot_spec(spec, list(codes[:DOT]), list(codes[DOT:2 * DOT]), rand).code
    except SpecError:
        raise
    except RefarithError:
        return None


def _fdot_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast import fdot

    conv = (lambda a: a) if backend == "triton" else (lambda a: as_backend(a, backend))  # triton: tensors or arrays
    rand = conv(inputs[2]) if is_sr(spec) else None
    return (fdot.fdot_spec(spec, conv(inputs[0]), conv(inputs[1]), backend=backend, rand=rand),)


@cache
def _codes_by_value(fmt_name: str) -> dict[float, int]:
    from refarith.fast.fdot import value_table

    fmt = get_format(fmt_name)
    out: dict[float, int] = {}
    for c, v in enumerate(value_table(fmt).tolist()):
        if v == v and (v not in out or (v == 0 and c < out[v])):
            out[v] = c
    return out


@cache
def product_pair(fmt_name: str, v: Fraction) -> tuple[int, int] | None:
    """Codes (x, y) of a format of at most 16 bits with x * y = v exactly (v = (v 2^a) * 2^-a), or None."""
    codes = _codes_by_value(fmt_name)
    sign = -1 if v < 0 else 1
    for a in range(-40, 41):
        x = float(abs(v) * Fraction(2) ** a) * sign
        y = float(Fraction(2) ** -a)
        if x in codes and y in codes and Fraction(x) * Fraction(y) == v:
            return codes[x], codes[y]
    return None


@cache
def hard_sr_vectors(fmt_name: str, acc_name: str, k: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """(x, y) code vectors of 4 products whose additions land at the hard places of stochastic rounding into the
    accumulator: a power of two g (a quarter of the reachable range) plus g's ulp times a fraction of exactly k and
    k + 1 bits (the c / c_odd ties), just above them, 2^-(k+1), 1 - 2^-k, 1/2, a fraction with bits far below the
    binary64 significand (the round-to-odd sticky bit), both signs (cancellation, the binade below); and sums that
    pass the largest finite value.  Fractions that are no product of two input values are left out."""
    acc, fmt = get_format(acc_name), get_format(fmt_name)
    top = min(Fraction(acc.max), Fraction(fmt.max) ** 2)
    g = Fraction(2) ** (top.numerator.bit_length() - top.denominator.bit_length() - 2)
    ulp = g * Fraction(2) ** -acc.mbits
    m_in = 1 + Fraction(2) ** -fmt.mbits  # two significant bits in the input format
    fr = [Fraction(1, 2), Fraction(1, 1 << k), 1 - Fraction(1, 1 << k), Fraction(1, 1 << (k + 1)),
          Fraction(3, 1 << (k + 1)), Fraction(1, 1 << (k + 1)) * m_in, Fraction(1, 1 << k) * m_in,
          Fraction(1, 1 << 40), Fraction(1, 1 << 60), Fraction(1, 4) * m_in]
    rows = [[g, s * f * ulp, g / 2, s * f * ulp] for f in fr for s in (1, -1)]
    rows.append([Fraction(acc.max) / 2, Fraction(acc.max) / 4, Fraction(acc.max) / 4, Fraction(acc.max) / 8])
    out = []
    for row in rows:
        pairs = [product_pair(fmt_name, p) for p in row]
        if all(pairs):
            out.append((tuple(x for x, _ in pairs), tuple(y for _, y in pairs)))
    return tuple(out)


def _sr_rand(spec: Spec, vecs: list[tuple[int, ...]], seed: int, patterns: bool) -> list[tuple[int, ...]]:
    """Each vector followed by its random integers: uniform, or cycling through uniform, all 2^k - 1, all 2^(k-1)
    and all 0 (``patterns``)."""
    k, m = int(spec.param["k"]), _fdot.additions(DOT, spec.param["order"])
    rng = random.Random(seed)
    out = []
    for i, v in enumerate(vecs):
        p = i % 4 if patterns else 0
        r = [rng.randrange(1 << k) for _ in range(m)] if p == 0 else [((1 << k) - 1, (1 << k) >> 1, 0)[p - 1]] * m
        out.append(tuple(v) + tuple(r))
    return out


def _fdot_boundary(spec: Spec) -> list[tuple[int, ...]]:
    """Vectors of boundary codes of the input format (and their products near the accumulator's limits)."""
    f = spec.fmt(0)
    vals, mx, mn = _dst_values(f) if f.nbits <= 16 else ([], None, None)
    cs = float_boundaries(f, vals[:32] + vals[-32:], mx, mn)
    rng = random.Random(len(cs))
    out = [tuple(c for _ in range(2 * DOT)) for c in cs]
    for _ in range(1024):
        out.append(tuple(rng.choice(cs) for _ in range(2 * DOT)))
    if not is_sr(spec):
        return out
    hard = []
    for x, y in hard_sr_vectors(spec.formats[0], spec.formats[1], int(spec.param["k"])) if f.nbits <= 16 else ():
        pad = (0,) * (DOT - len(x))  # +0 products: exact additions
        hard += [x + pad + y + pad] * 4
    return _sr_rand(spec, hard + out[::2], fixed_rng(spec, "rand").randrange(1 << 30), patterns=True)


def _fdot_random(spec: Spec, n: int, seed: int) -> list[tuple[int, ...]]:
    """Random codes of the input format, finite, with the exponent range narrowed in half of the vectors so that
    cancellation and rounding in the accumulator happen (uniform codes overflow or vanish)."""
    f = spec.fmt(0)
    rng = random.Random(seed)
    finite = [c for c in range(f.ncodes) if f.is_finite_code(c)] if f.nbits <= 16 else None
    out = []
    for _ in range(n):
        if finite is None:
            out.append(tuple(rng.randrange(f.ncodes) for _ in range(2 * DOT)))
            continue
        if rng.random() < 0.5:
            out.append(tuple(rng.choice(finite) for _ in range(2 * DOT)))
        else:
            mid = rng.choice(finite)
            out.append(tuple(min(max(mid + rng.randint(-24, 24), 0), f.ncodes - 1) ^ (rng.randrange(2) * f.sign_mask)
                             for _ in range(2 * DOT)))
    return _sr_rand(spec, out, seed + 1, patterns=False) if is_sr(spec) else out


def _fdot_inputs(s: Spec) -> tuple[Operand, ...]:
    ins = (Operand("x", s.fmt(0), DOT), Operand("y", s.fmt(0), DOT))
    if not is_sr(s):
        return ins
    return (*ins, Operand("r", get_format(f"uint{int(s.param['k'])}"), _fdot.additions(DOT, s.param["order"])))


def _fdot_variants(spec: Spec) -> dict[str, tuple[str, ...]]:
    if not is_sr(spec):
        return schema_variants(spec)
    from refarith.exact.stochastic import SR_VARIANTS

    out = schema_variants(spec, exclude=("rounding", "order"))
    out["sr"] = SR_VARIANTS
    return out


register_driver(Driver(
    "fdot",
    inputs=_fdot_inputs,
    outputs=lambda s: (Operand("acc", s.fmt(1)),),
    exact=single(_fdot_exact),
    boundary=_fdot_boundary,
    variant_params=_fdot_variants,
    random=_fdot_random,
    fast=_fdot_fast,
    backends=("numpy", "torch", "triton"),
    doc="two vectors of 8 codes (rounding=sr: and one random integer per addition) -> the accumulator's code",
))

FDOT_SR_GOLDEN_SPECS = (
    "fdot(ocp_e4m3->binary32,rounding=sr,sr=c,k=8)",
    "fdot(ocp_e5m2->bfloat16,order=pairwise,rounding=sr,k=12)",
    "fdot(ocp_e2m1->ocp_e2m1,rounding=sr,sr=te_e2m1_8,k=8)",
)
"""Stochastic accumulator specs of the committed golden set (the random integers follow x and y)."""
