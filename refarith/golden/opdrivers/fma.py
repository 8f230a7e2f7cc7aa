"""The fused multiply-add ``fma(F)``: a * b + c of three codes of one float format, rounded once.

The spec schema is declared in :mod:`refarith.spec`.  Semantics: :func:`refarith.exact.ops.fma` (IEEE 754
fusedMultiplyAdd: the exact product plus the exact addend, one rounding into the format with its overflow and NaN
policy; ``invalid`` for 0 * inf, even with a NaN addend).
Parameters as for ``add`` (rounding, overflow, nan), deterministic modes only.  Fast kernel:
:func:`refarith.fast.oddsum.fma_rto` (exact binary64 product, round-to-odd binary64 sum, one encode), for the
signed formats of at most 24 significand bits whose products binary64 holds (the 8-bit formats, binary16,
bfloat16).  Golden vectors: every triple of up to 12 boundary codes (zeros, the smallest subnormal, one, the largest
finite, inf and NaN where the format has them, with their negatives), plus seeded random triples.
"""

from __future__ import annotations

from refarith.errors import RefarithError, SpecError
from refarith.exact import ops as _ops
from refarith.golden.drivers import (
    Driver,
    Operand,
    _arith_variants,
    _classify_result,
    _rounding_kw,
    exact_result_class,
    register_driver,
    single,
    value_of,
)
from refarith.spec import Spec

FMA_GOLDEN_SPECS = ("fma(ocp_e4m3)", "fma(ocp_e5m2)")
"""The committed fma golden files."""

def _exact(spec: Spec, codes: tuple) -> int | None:
    f = spec.fmt(0)
    try:
        return _ops.fma(codes[0], codes[1], codes[2], f, **_rounding_kw(spec)).code
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


def _boundary(spec: Spec) -> list[tuple]:
    cs = boundary_codes(spec.fmt(0))
    return [(a, b, c) for a in cs for b in cs for c in cs]


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

    if backend != "numpy":
        raise SpecError(f"{spec}: the fma kernel runs on numpy only, not {backend}")
    p = spec.param
    return (fma_rto(inputs[0], inputs[1], inputs[2], spec.formats[0], rounding=p["rounding"],
                    overflow=p["overflow"], nan_policy=p.get("nan", "error")),)


register_driver(Driver(
    "fma",
    inputs=lambda s: (Operand("a", s.fmt(0)), Operand("b", s.fmt(0)), Operand("c", s.fmt(0))),
    outputs=lambda s: (Operand("y", s.fmt(0)),),
    exact=single(_exact),
    boundary=_boundary,
    classify=_classify,
    variant_params=lambda s: {k: v for k, v in _arith_variants(s).items() if k != "negative"},
    fast=_fast,
    backends=("numpy",),
    doc="three codes of the format -> one code, a * b + c rounded once (fast kernel: refarith.fast.oddsum.fma_rto)",
))

__all__ = ["FMA_GOLDEN_SPECS", "boundary_codes"]
