"""Vector drivers of L-Mul and of floating-point dot products with a stated accumulator.

* ``lmul(F,...)``: two codes of F -> one code of F (exhaustive for 8-bit formats).
* ``fdot(F->A,...)``: two vectors of 8 codes of F -> one code of the accumulator format A.
"""

from __future__ import annotations

import random

from refarith.errors import RefarithError, SpecError
from refarith.exact import fdot as _fdot
from refarith.exact import lmul as _lmul
from refarith.golden.drivers import (
    Driver,
    Operand,
    _classify_result,
    _dst_values,
    binary_boundary,
    float_boundaries,
    register_driver,
    schema_variants,
    single,
)
from refarith.golden.opdrivers import as_backend
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
        return _fdot.fdot_spec(spec, list(codes[:DOT]), list(codes[DOT:])).code
    except SpecError:
        raise
    except RefarithError:
        return None


def _fdot_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast import fdot

    return (fdot.fdot_spec(spec, as_backend(inputs[0], backend), as_backend(inputs[1], backend), backend=backend),)


def _fdot_boundary(spec: Spec) -> list[tuple[int, ...]]:
    """Vectors of boundary codes of the input format (and their products near the accumulator's limits)."""
    f = spec.fmt(0)
    vals, mx, mn = _dst_values(f) if f.nbits <= 16 else ([], None, None)
    cs = float_boundaries(f, vals[:32] + vals[-32:], mx, mn)
    rng = random.Random(len(cs))
    out = [tuple(c for _ in range(2 * DOT)) for c in cs]
    for _ in range(1024):
        out.append(tuple(rng.choice(cs) for _ in range(2 * DOT)))
    return out


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
    return out


register_driver(Driver(
    "fdot",
    inputs=lambda s: (Operand("x", s.fmt(0), DOT), Operand("y", s.fmt(0), DOT)),
    outputs=lambda s: (Operand("acc", s.fmt(1)),),
    exact=single(_fdot_exact),
    boundary=_fdot_boundary,
    variant_params=schema_variants,
    random=_fdot_random,
    fast=_fdot_fast,
    doc="two vectors of 8 codes -> the accumulator's code",
))
