"""Hypothesis strategies: values in range, boundary classes reached, minimal shrinks."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import find, given, settings

from refarith import strategies as rs
from refarith.exact import ops
from refarith.formats import get_format

E4M3 = get_format("ocp_e4m3")
F32 = get_format("binary32")


@settings(max_examples=200, deadline=None)
@given(rs.bits("ocp_e4m3"), rs.bits("binary32"), rs.int_operands("int8"))
def test_codes_in_range(a, b, i):
    assert 0 <= a < 256 and 0 <= b < 1 << 32 and -128 <= i <= 127


def test_boundary_classes_are_reached():
    for pred in (lambda c: F32.is_nan_code(c), lambda c: c == 0x80000000, lambda c: c in (1, 0x007FFFFF),
                 lambda c: c == 0x7F7FFFFF, lambda c: c == 0x7F800000):
        find(rs.bits(F32), pred, settings=settings(max_examples=1000, database=None))


def test_shrinks_to_minimal_examples():
    # shrinks to the smallest satisfying code of its branch (uniform: 101; boundary/anchor: at most 0x7e = max)
    assert 101 <= find(rs.bits(E4M3), lambda c: c > 100, settings=settings(database=None)) <= 0x7E
    # derandomized: from a large draw in the sampled branch the shrinker does not always walk the whole way down
    assert -1025 <= find(rs.int_operands("int32"), lambda v: v < -1000,
                         settings=settings(database=None, derandomize=True)) <= -1001
    blk = find(rs.float32_blocks(8), lambda b: np.isnan(b).any(), settings=settings(database=None))
    assert blk.shape == (8,) and np.isnan(blk).sum() == 1 and (np.nan_to_num(blk) == 0).all()


@settings(max_examples=50, deadline=None)
@given(rs.blocks(size=16, allow_special=False))
def test_nvfp4_blocks_are_finite_float32(b):
    assert b.dtype == np.float32 and b.shape[0] % 16 == 0 and np.isfinite(b).all()


def test_just_below_power_of_two_reached():
    def below_pow2(b):
        u = b.view(np.uint32)
        return bool((((u & 0x7FFFFF) == 0x7FFFFF) & (((u >> 23) & 0xFF) < 0xFF)).any())
    find(rs.float32_blocks(32), below_pow2, settings=settings(max_examples=300, database=None))


@settings(max_examples=100, deadline=None)
@given(rs.values("ocp_e2m1", finite=True), rs.scales(), rs.dyadic_multipliers(), rs.block_scales())
def test_values_scales_multipliers(v, s, ms, sc):
    assert v.is_finite and abs(v.fraction) <= 6
    assert isinstance(s, Fraction) and s > 0
    m, shift = ms
    assert 1 << 30 <= m < 1 << 31 and -31 <= shift <= 30
    assert 0 <= sc < 256


@settings(max_examples=50, deadline=None)
@given(rs.spec_inputs("mul(ocp_e4m3)"))
def test_spec_inputs_match_operands(v):
    assert len(v) == 2 and all(0 <= c < 256 for c in v)
    ops.mul(v[0], v[1], E4M3)
