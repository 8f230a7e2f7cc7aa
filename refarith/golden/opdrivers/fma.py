"""The fused multiply-add ``fma(F)``: a * b + c of three codes of one float format, rounded once.

The spec schema is declared in :mod:`refarith.spec`.  Semantics: :func:`refarith.exact.ops.fma` (IEEE 754
fusedMultiplyAdd: the exact product plus the exact addend, one rounding into the format with its overflow and NaN
policy; ``invalid`` for 0 * inf, even with a NaN addend).
Parameters as for ``add`` (rounding, overflow, nan; ``rounding=sr`` with ``sr`` and ``k``: the exact a * b + c
rounded once by the stochastic rule, the random integer an operand ``r:uint<k>`` after c).  Fast kernel:
:func:`refarith.fast.oddsum.fma_rto` (numpy and torch: exact binary64 product, round-to-odd binary64 sum, one
encode), for the signed formats of at most 24 significand bits whose products binary64 holds (the 8-bit formats,
binary16, bfloat16).  Golden vectors: every triple of up to 12 boundary codes (zeros, the smallest subnormal, one,
the largest finite, inf and NaN where the format has them, with their negatives), plus seeded random triples;
stochastic specs: :func:`hard_sr_triples` and every fourth boundary triple, each with r = 0, 2^(k-1), 2^k - 1.
"""

from __future__ import annotations

from fractions import Fraction

from refarith.errors import RefarithError, SpecError
from refarith.exact import ops as _ops
from refarith.golden.drivers import (
    Driver,
    Operand,
    _arith_variants,
    _classify_result,
    _rounding_kw,
    exact_result_class,
    is_sr,
    register_driver,
    single,
    sr_operand,
    value_of,
    with_sr_column,
)
from refarith.spec import Spec

FMA_GOLDEN_SPECS = ("fma(ocp_e4m3)", "fma(ocp_e5m2)")
"""The committed fma golden files."""
FMA_SR_GOLDEN_SPECS = ("fma(bfloat16,rounding=sr,sr=c,k=8)",)
"""The committed stochastic fma golden file: bfloat16, where the binary64 sum is rounded to odd."""

def _exact(spec: Spec, codes: tuple) -> int | None:
    f = spec.fmt(0)
    try:
        return _ops.fma(codes[0], codes[1], codes[2], f, **_rounding_kw(spec, codes[3] if is_sr(spec) else None)).code
    except SpecError:
        raise
    except RefarithError:
        return None


def boundary_codes(fmt) -> list[int]:
    """Zeros, the smallest subnormal, one, the largest finite, inf and a NaN (where present), both signs."""
    pos = [0, 1]
    one = next((c for c in range(fmt.ncodes >> 1) if value_of(fmt, c).is_finite and value_of(fmt, c).mag == 1),
               None)
    if one is not None:
        pos.append(one)
    fin = [c for c in range(fmt.ncodes >> 1) if value_of(fmt, c).is_finite] if fmt.nbits <= 8 else []
    if fin:
        pos.append(max(fin, key=lambda c: value_of(fmt, c).mag))
    elif fmt.nbits == 16:
        pos.append((1 << (fmt.nbits - 1)) - (1 << fmt.mbits) - 1)
    for c in range(fmt.ncodes >> 1) if fmt.nbits <= 8 else ((1 << (fmt.nbits - 1)) - (1 << fmt.mbits),
                                                              (1 << (fmt.nbits - 1)) - 1):
        v = value_of(fmt, c)
        if v.is_inf and c not in pos:
            pos.append(c)
        if v.is_nan and not any(value_of(fmt, p).is_nan for p in pos):
            pos.append(c)
    sign = 1 << (fmt.nbits - 1)
    out = list(dict.fromkeys(pos + [c | sign for c in pos]))
    return out[:16]


def hard_sr_triples(fmt, k: int) -> list[tuple[int, int, int]]:
    """(a, b, c) with c a value g and a * b = ±f * ulp(g) at the hard places of stochastic rounding: f of
    exactly k and k + 1 bits (the ties of ``c``/``c_odd``), just above them, 1/2, 1 - 2^-k, bits far beyond k and
    beyond binary64's 53 (the round-to-odd sticky bit), for g = 1, the largest value below 2 (the carry into the
    next binade), the largest finite (overflow), the smallest normal and +0 (subnormal results, ulp = the
    quantum); the product's sign both ways (the binade below g for a power of two g), and every triple negated.
    Products that are no product of two codes are left out."""
    from refarith.golden.opdrivers.floatdot import product_pair

    quantum = Fraction(2) ** (fmt.emin - fmt.mbits)
    top = 1 + Fraction(1) - Fraction(2) ** -fmt.mbits
    bases = [(Fraction(1), Fraction(2) ** -fmt.mbits), (top, Fraction(2) ** -fmt.mbits),
             (Fraction(fmt.max), Fraction(2) ** (fmt.emax - fmt.mbits)),
             (Fraction(fmt.min_normal), quantum), (Fraction(0), quantum)]
    m_in = 1 + Fraction(2) ** -fmt.mbits
    fr = [Fraction(1, 2), Fraction(1, 1 << k), 1 - Fraction(1, 1 << k), Fraction(1, 1 << (k + 1)),
          Fraction(3, 1 << (k + 1)), Fraction(1, 1 << (k + 1)) * m_in, Fraction(1, 1 << k) * m_in,
          Fraction(1, 4) * m_in, Fraction(1, 1 << 40), Fraction(1, 1 << 60)]
    out: dict[tuple[int, int, int], None] = {}
    sign = 1 << (fmt.nbits - 1)
    for g, ulp in bases:
        cg = _ops.encode(g, fmt, "rtz", "saturate").code
        for f in fr:
            for s in (1, -1):
                ab = product_pair(fmt.name, s * f * ulp)
                if ab is None:
                    continue
                out.setdefault((ab[0], ab[1], cg), None)
                out.setdefault((ab[0] ^ sign, ab[1], cg ^ sign), None)
    return list(out)


def _boundary(spec: Spec) -> list[tuple]:
    cs = boundary_codes(spec.fmt(0))
    triples = [(a, b, c) for a in cs for b in cs for c in cs]
    if is_sr(spec):
        return with_sr_column(spec, hard_sr_triples(spec.fmt(0), int(spec.param["k"])) + triples[::4])
    return triples


def _classify(spec: Spec, codes: tuple, got: tuple) -> str:
    f = spec.fmt(0)
    c = _classify_result(f, _exact(spec, codes), got[0])
    if c:
        return c
    va, vb, vc = (value_of(f, x) for x in codes)
    if not (va.is_finite and vb.is_finite and vc.is_finite):
        return "nan_inf"
    return exact_result_class(f, _ops.exact_add(_ops.exact_mul(va, vb), vc))


def _fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast.oddsum import fma_rto

    p = spec.param
    sr = dict(rand=inputs[3], rand_bits=int(p["k"]), sr_variant=p.get("sr", "a")) if is_sr(spec) else {}
    return (fma_rto(inputs[0], inputs[1], inputs[2], spec.formats[0], rounding=p["rounding"],
                    overflow=p["overflow"], nan_policy=p.get("nan", "error"), backend=backend, **sr),)


register_driver(Driver(
    "fma",
    inputs=lambda s: (Operand("a", s.fmt(0)), Operand("b", s.fmt(0)), Operand("c", s.fmt(0))) + sr_operand(s),
    outputs=lambda s: (Operand("y", s.fmt(0)),),
    exact=single(_exact),
    boundary=_boundary,
    classify=_classify,
    variant_params=lambda s: {k: v for k, v in _arith_variants(s).items() if k != "negative"},
    fast=_fast,
    backends=("numpy", "torch", "triton"),
    doc="three codes of the format (rounding=sr: and the random integer r) -> one code, a * b + c rounded once "
        "(fast kernel: refarith.fast.oddsum.fma_rto; triton: refarith.fast.arithbits)",
))

__all__ = ["FMA_GOLDEN_SPECS", "FMA_SR_GOLDEN_SPECS", "boundary_codes", "hard_sr_triples"]
