"""Hypothesis strategies for refarith formats: bit patterns, values, MX/NVFP4 blocks, requantization operands.

Every strategy is a composable hypothesis value, weighted towards boundary
classes (signed zeros, subnormal edges, min normal, max finite and the overflow
threshold, NaN/inf codes, powers of two and the values just below them) and
shrinking towards small, simple examples (code 0, value 0, short blocks).
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np
from hypothesis import strategies as st

from refarith.exact import ops as _ops
from refarith.exact.value import Value
from refarith.formats import IntFormat, get_format
from refarith.golden.drivers import float_boundaries

__all__ = ["bits", "block_scales", "blocks", "codes", "dyadic_multipliers", "float32_blocks", "int_operands",
           "scales", "spec_inputs", "values"]


@lru_cache(maxsize=128)
def _boundary_codes(fmt) -> tuple[int, ...]:
    if isinstance(fmt, IntFormat):
        lo, hi = fmt.min, fmt.max
        vals = {0, 1, -1, lo, lo + 1, hi, hi - 1} & set(range(lo, hi + 1))
        return tuple(sorted(fmt.code(v) for v in vals))
    return tuple(float_boundaries(fmt, [], None, None))


def bits(fmt, boundary_weight: float = 0.5) -> st.SearchStrategy[int]:
    """Bit patterns (codes) of ``fmt``: uniform, or a boundary code, or a boundary code +-1..4.

    ``boundary_weight`` is a hint: 0 gives uniform codes only.  Shrinks towards code 0.
    """
    fmt = get_format(fmt)
    uniform = st.integers(0, fmt.ncodes - 1)
    if boundary_weight <= 0:
        return uniform
    bnd = list(_boundary_codes(fmt))
    near = st.tuples(st.sampled_from(bnd), st.integers(-4, 4)).map(
        lambda t: min(max(t[0] + t[1], 0), fmt.ncodes - 1))
    return st.one_of(uniform, st.sampled_from(_anchors(fmt)), st.sampled_from(bnd), near)


@lru_cache(maxsize=128)
def _anchors(fmt) -> tuple[int, ...]:
    """The few codes every test should see: +-0, smallest/largest subnormal, min normal, max, inf, NaNs."""
    if isinstance(fmt, IntFormat):
        return _boundary_codes(fmt)
    sm = fmt.sign_mask
    cs = {0, fmt.max_code}
    if fmt.subnormals and fmt.mbits:
        cs |= {1, fmt.mmask, fmt.mmask + 1}
    cs |= {c for c in fmt.inf_codes if c is not None}
    if fmt.specials == "ieee":
        cs |= {(fmt.emask << fmt.mbits) | (1 << (fmt.mbits - 1)), (fmt.emask << fmt.mbits) | 1}
    elif fmt.has_nan:
        cs |= set(fmt.nan_codes)
    if fmt.signed:
        cs |= {c | sm for c in cs}
    return tuple(sorted(c for c in cs if 0 <= c < fmt.ncodes))


codes = bits


def values(fmt, finite: bool = False) -> st.SearchStrategy[Value]:
    """Exact values (:class:`refarith.exact.value.Value`) of codes of ``fmt`` (NaN/inf unless ``finite``)."""
    fmt = get_format(fmt)
    s = bits(fmt).map(lambda c: _ops.decode(c, fmt))
    return s.filter(lambda v: v.is_finite) if finite else s


def spec_inputs(spec) -> st.SearchStrategy[tuple[int, ...]]:
    """Input vectors (one code per operand) of any spec with a vector driver, boundary-weighted."""
    from refarith.certify.fuzz import input_vectors

    return input_vectors(spec)


# ------------------------------------------------------------------ blocks
def _special_f32() -> st.SearchStrategy[np.float32]:
    f = get_format("binary32")

    def below_pow2(k: int) -> np.float32:
        return np.float32(np.nextafter(np.float32(2.0) ** k, np.float32(0)))

    return st.one_of(
        st.sampled_from([np.float32(0.0), np.float32(-0.0), np.float32(np.inf), np.float32(-np.inf),
                         np.float32(np.nan)]),
        st.integers(1, (1 << 23) - 1).map(lambda m: np.uint32(m).view(np.float32)),  # subnormals
        st.integers(-126, 127).map(lambda k: np.float32(2.0) ** k),
        st.integers(-125, 127).map(below_pow2),
        bits(f).map(lambda c: np.uint32(c).view(np.float32)),
    )


def float32_blocks(size: int = 32, allow_special: bool = True) -> st.SearchStrategy[np.ndarray]:
    """One block of ``size`` float32 values, mixing ordinary values with zero, subnormals, powers of two,
    values just below a power of two (the MX amax trap) and (``allow_special``) NaN/inf."""
    ordinary = st.floats(-1e6, 1e6, width=32, allow_subnormal=True).map(np.float32)
    elem = st.one_of(ordinary, _special_f32()) if allow_special else st.one_of(
        ordinary, _special_f32().filter(lambda v: np.isfinite(v)))
    return st.lists(elem, min_size=size, max_size=size).map(lambda xs: np.array(xs, dtype=np.float32))


def blocks(n_blocks: int | st.SearchStrategy[int] | None = None, size: int = 32,
           allow_special: bool = True) -> st.SearchStrategy[np.ndarray]:
    """float32 arrays of shape (n_blocks * size,) for MX (size 32) or NVFP4 (size 16) quantizers
    (``n_blocks`` default: 1 to 4 blocks)."""
    if n_blocks is None:
        n_blocks = st.integers(1, 4)
    nb = n_blocks if isinstance(n_blocks, st.SearchStrategy) else st.just(n_blocks)
    return nb.flatmap(lambda k: st.lists(float32_blocks(size, allow_special), min_size=k, max_size=k)).map(
        lambda bs: np.concatenate(bs) if bs else np.zeros(0, np.float32))


def block_scales(fmt="e8m0") -> st.SearchStrategy[int]:
    """Codes of a block-scale format (E8M0 for MX, UE4M3 for NVFP4), weighted to the range ends and NaN."""
    return bits(get_format(fmt))


def scales(min_exp: int = -40, max_exp: int = 20) -> st.SearchStrategy[Fraction]:
    """Positive real quantization scales as exact Fractions: m * 2^e with a 24-bit m, plus exact powers of two."""
    pow2 = st.integers(min_exp, max_exp).map(lambda e: Fraction(2) ** e)
    gen = st.tuples(st.integers(1 << 23, (1 << 24) - 1), st.integers(min_exp - 24, max_exp - 24)).map(
        lambda t: Fraction(t[0]) * Fraction(2) ** t[1])
    return st.one_of(pow2, gen)


# ------------------------------------------------------------------ integer operands (requantization)
def int_operands(fmt="int32") -> st.SearchStrategy[int]:
    """Integers of an IntFormat: uniform, at its edges (min, min+1, -1, 0, 1, max-1, max), or +-1 off powers of 2."""
    fmt = get_format(fmt)
    if not isinstance(fmt, IntFormat):
        raise TypeError(f"int_operands needs an integer format, not {fmt.name}")
    lo, hi = fmt.min, fmt.max
    edges = sorted({v for v in (lo, lo + 1, -1, 0, 1, hi - 1, hi) if lo <= v <= hi}, key=lambda v: (abs(v), v))
    pw = [s * (1 << k) + d for k in range(fmt.bits) for s in (1, -1) for d in (-1, 0, 1)]
    pw = sorted({v for v in pw if lo <= v <= hi}, key=lambda v: (abs(v), v))  # shrink towards small magnitudes
    special = sorted(set(edges) | set(pw), key=lambda v: (abs(v), v))  # one list, so shrinking orders by magnitude
    return st.one_of(st.integers(lo, hi), st.sampled_from(special))


def dyadic_multipliers() -> st.SearchStrategy[tuple[int, int]]:
    """(M, shift) pairs of gemmlowp/TFLite requantization: M a Q31 multiplier in [2^30, 2^31-1], shift in [-31, 30]."""
    m = st.one_of(st.integers(1 << 30, (1 << 31) - 1), st.sampled_from([1 << 30, (1 << 31) - 1]))
    return st.tuples(m, st.integers(-31, 30))
