"""Requantization: exact model vs published values and independent big-int formulas; numpy and torch kernels
bit for bit against the exact model on >= 10^6 seeded inputs per variant."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import BadValueError, SpecError, UnknownModeError
from refarith.exact import requant as ex
from refarith.fast import requant as fx
from refarith.spec import parse_spec

MIN, MAX = -(1 << 31), (1 << 31) - 1
N = 1_000_000


# ------------------------------------------------------------------ hand-computed / published values
@pytest.mark.parametrize("a,b,want", [
    (1 << 30, 1 << 30, 1 << 29),          # 0.5 * 0.5 = 0.25
    (MIN, MIN, MAX),                      # the single overflow saturates
    (MIN, MAX, -MAX),                     # -1 * (1 - 2^-31) = -(2^31 - 1) / 2^31 exactly
    (MAX, MAX, MAX - 1),                  # (1 - 2^-31)^2 = 1 - 2^-30 + 2^-62 -> raw 2^31 - 2
    (1, 1 << 30, 1),                      # 2^30 / 2^31 = 0.5 ties up to 1
    (-1, 1 << 30, 0),                     # -0.5 ties up (toward +inf) to 0
    (3, 1 << 30, 2),                      # 1.5 -> 2
    (-3, 1 << 30, -1),                    # -1.5 -> -1
])
def test_srdhm_hand_values(a, b, want):
    assert ex.srdhm(a, b) == want


@pytest.mark.parametrize("x,e,want", [(5, 1, 3), (-5, 1, -3), (-3, 2, -1), (6, 2, 2), (-6, 2, -2), (7, 0, 7),
                                      (MIN, 31, -1), (MAX, 31, 1), (-(1 << 30), 31, -1), ((1 << 30) - 1, 31, 0),
                                      (-(1 << 30) + 1, 31, 0)])
def test_rdbpot_hand_values(x, e, want):
    assert ex.rdbpot(x, e) == want


@pytest.mark.parametrize("scale,want", [
    (0.0, (0, 0)),
    (1.0, (1 << 30, 1)),                  # TFLite quantization_util_test
    (2.0, (1 << 30, 2)),
    (0.5, (1 << 30, 0)),
    (0.25, (1 << 30, -1)),
    (Fraction(1, 10), (1717986918, -3)),  # 0.8 * 2^31 = 1717986918.4
    (1 - Fraction(1, 1 << 33), (1 << 30, 1)),  # q*2^31 rounds to 2^31: renormalised
    (Fraction(2 ** 31 - 1, 2 ** 31) + Fraction(1, 2 ** 32), (1 << 30, 1)),  # exact tie rounds away, renormalises
    (Fraction(3 * 2 ** 29 + 1, 2 ** 31) + Fraction(1, 2 ** 32), (3 * 2 ** 29 + 2, 0)),  # tie 0.5 away from zero
    (Fraction(1, 2 ** 40), (0, 0)),       # shift -39 < -31 flushes to zero
])
def test_quantize_multiplier_published(scale, want):
    assert ex.quantize_multiplier(scale) == want


def test_quantize_multiplier_single_rounding_clamp():
    assert ex.quantize_multiplier(2 ** 40) == (1 << 30, 41)
    assert ex.quantize_multiplier(2 ** 40, single_rounding=True) == ((1 << 31) - 1, 30)


def test_quantize_multiplier_float_is_exact_binary64():
    s = 0.1  # binary64 value 0.1000000000000000055511151231257827...
    m, sh = ex.quantize_multiplier(s)
    assert (m, sh) == (1717986918, -3)
    assert abs(Fraction(m, 1 << 31) * Fraction(2) ** sh - Fraction(s)) <= Fraction(1, 1 << 32) * Fraction(2) ** sh


@pytest.mark.parametrize("scale,want", [
    (Fraction(1, 10), (1717986918, 34)),
    (1 - Fraction(1, 1 << 33), (1 << 31, 31)),   # b reaches 2^31: HAWQ-V3 does not renormalise
    (Fraction(3, 4), (3 << 29, 31)),
    (0.5, (1 << 30, 31)),
])
def test_dyadic_multiplier(scale, want):
    assert ex.dyadic_multiplier(scale) == want


# ------------------------------------------------------------------ independent big-int formulations
def _floor(fr: Fraction) -> int:
    return math.floor(fr)


def test_exact_against_fraction_formulas():
    rng = np.random.default_rng(11)
    xs = rng.integers(MIN, MAX, 5000, endpoint=True).tolist()
    ms = rng.integers(0, MAX, 5000, endpoint=True).tolist()
    shs = rng.integers(-31, 0, 5000, endpoint=True).tolist()
    for x, m, sh in zip(xs, ms, shs):
        exact = Fraction(x * m, 1 << 31) * Fraction(2) ** sh
        # single rounding = the exact product rounded half toward +inf (wraps never: |result| < 2^31)
        assert ex.tflite_single_rounding(x, m, sh) == _floor(exact + Fraction(1, 2))
        d = ex.tflite_double_rounding(x, m, sh)
        inner = _floor(Fraction(x * m, 1 << 31) + Fraction(1, 2))
        q = Fraction(inner, 1 << -sh)
        assert d == (_floor(q + Fraction(1, 2)) if q >= 0 else -_floor(-q + Fraction(1, 2)))
        assert abs(d - ex.tflite_single_rounding(x, m, sh)) <= 1
        b, c = m, 31 - sh  # any (b, c) with c in [31, 62]
        v = Fraction(x * b, 1 << c)
        assert ex.hawq_sim(x, b, c) == round(v)  # Python's round of a Fraction: ties to even
        assert ex.hawq_deployed(x, b, c) == _floor(v)


def test_rdbpot_against_fraction():
    rng = np.random.default_rng(3)
    for x, e in zip(rng.integers(MIN, MAX, 5000, endpoint=True).tolist(), rng.integers(0, 31, 5000,
                                                                                        endpoint=True).tolist()):
        q = Fraction(x, 1 << e)
        want = _floor(q + Fraction(1, 2)) if q >= 0 else -_floor(-q + Fraction(1, 2))
        assert ex.rdbpot(x, e) == want


def test_dyadic_error_within_one_lsb_random():
    """Theorem requant.dyadic_within_one_lsb, sampled: s in [2^-32, 1), acc int32."""
    rng = np.random.default_rng(5)
    for acc, num, e in zip(rng.integers(MIN, MAX, 5000, endpoint=True).tolist(),
                           rng.integers(1 << 52, 1 << 53, 5000).tolist(), rng.integers(-31, 0, 5000,
                                                                                       endpoint=True).tolist()):
        s = Fraction(num, 1 << 53) * Fraction(2) ** e
        b, c = ex.dyadic_multiplier(s)
        r = round(acc * s)
        assert abs(ex.hawq_sim(acc, b, c) - r) <= 1
        assert abs(ex.hawq_deployed(acc, b, c) - r) <= 1


def test_cmsis_differs_only_outside_domain():
    # inside: small results agree with TFLite single rounding; outside: the published counterexample shape
    assert ex.cmsis_single_rounding(1000, 1 << 30, -3) == ex.tflite_single_rounding(1000, 1 << 30, -3) == 63
    x, m = 1911749112, 1722752255
    assert ex.cmsis_single_rounding(x, m, 0) != ex.tflite_single_rounding(x, m, 0)


def test_double_rounding_left_shift_wraps():
    # x * 2^1 overflows int32 in double rounding; single rounding keeps the int64 product
    x, m = 1 << 30, 1 << 30
    assert ex.tflite_double_rounding(x, m, 1) == -(1 << 30)
    assert ex.tflite_single_rounding(x, m, 1) == 1 << 30


# ------------------------------------------------------------------ requantize op and spec
def test_requantize_spec_and_clamp():
    sp = parse_spec("requantize(int32->int8,variant=tflite_single_rounding)")
    assert str(sp) == "requantize(int32->int8,variant=tflite_single_rounding)"
    assert str(parse_spec("requantize()")) == "requantize(variant=tflite_double_rounding)"
    assert ex.requantize_spec(sp, 1000, Fraction(1, 20), 3) == 53
    assert ex.requantize_spec(sp, 10 ** 6, Fraction(1, 20), 0) == 127
    assert ex.requantize_spec("requantize(int32->int8_sym)", -10 ** 6, Fraction(1, 20)) == -127
    assert ex.requantize_spec("requantize(int32->uint8,variant=hawq_sim)", 2000, Fraction(1, 20), 128) == 228
    with pytest.raises(SpecError):
        parse_spec("requantize(variant=gemmlowp)")
    with pytest.raises(SpecError):
        parse_spec("requantize(binary32->int8)")


def test_bad_inputs_raise():
    with pytest.raises(BadValueError):
        ex.srdhm(1 << 31, 1)
    with pytest.raises(BadValueError):
        ex.rdbpot(1, 32)
    with pytest.raises(BadValueError):
        ex.quantize_multiplier(-0.5)
    with pytest.raises(BadValueError):
        ex.quantize_multiplier(float("nan"))
    with pytest.raises(BadValueError):
        ex.tflite_single_rounding(1, -5, 0)
    with pytest.raises(UnknownModeError):
        ex.multiply(1, 1, 1, "tflite")
    with pytest.raises(BadValueError):
        fx.srdhm(np.array([1 << 31]), 1)
    with pytest.raises(BadValueError):
        fx.multiply(np.array([1]), 1 << 30, 31)


# ------------------------------------------------------------------ kernels vs exact, >= 10^6 inputs each
def _torch():
    """torch, or None when it is not installed: the numpy kernel is still checked, then the test skips."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_compared(torch) -> None:
    if torch is None:
        pytest.skip("torch not installed: numpy kernel checked, torch kernel not compared")


def _random_i32(rng, n):
    x = rng.integers(MIN, MAX, n, endpoint=True)
    x[:8] = [MIN, MIN + 1, -1, 0, 1, MAX - 1, MAX, -(1 << 30)]
    return x


def test_srdhm_kernels_million():
    torch = _torch()
    rng = np.random.default_rng(1)
    a, b = _random_i32(rng, N), _random_i32(rng, N)
    b[:8] = [MIN, MIN, MIN, MAX, MAX, 1 << 30, -(1 << 30), MIN]
    want = np.array([ex.srdhm(x, y) for x, y in zip(a.tolist(), b.tolist())], dtype=np.int32)
    assert np.array_equal(fx.srdhm(a, b), want)
    if torch is not None:
        assert np.array_equal(fx.srdhm(torch.from_numpy(a), torch.from_numpy(b)).numpy(), want)
    _torch_compared(torch)


def test_rdbpot_kernels_million():
    torch = _torch()
    rng = np.random.default_rng(2)
    x = _random_i32(rng, N)
    e = rng.integers(0, 31, N, endpoint=True)
    want = np.array([ex.rdbpot(a, b) for a, b in zip(x.tolist(), e.tolist())], dtype=np.int32)
    assert np.array_equal(fx.rdbpot(x, e), want)
    if torch is not None:
        assert np.array_equal(fx.rdbpot(torch.from_numpy(x), torch.from_numpy(e)).numpy(), want)
    _torch_compared(torch)


SHIFT_GRID = {"tflite_double_rounding": (-31, 30), "tflite_single_rounding": (-31, 30),
              "cmsis_single_rounding": (-31, 30), "hawq_sim": (1, 62), "hawq_deployed": (1, 62)}


@pytest.mark.parametrize("variant", list(SHIFT_GRID))
def test_multiply_kernels_million(variant):
    """int32 accumulators x multipliers x every shift of the variant's range, >= 10^6 cases."""
    torch = _torch()
    rng = np.random.default_rng(100 + list(SHIFT_GRID).index(variant))
    x = _random_i32(rng, N)
    lo, hi = SHIFT_GRID[variant]
    sh = rng.integers(lo, hi, N, endpoint=True)
    if variant.startswith("hawq"):
        m = rng.integers(1 << 30, 1 << 31, N, endpoint=True)
    elif variant == "tflite_single_rounding":
        m = rng.integers(0, MAX, N, endpoint=True)
    else:
        m = _random_i32(rng, N)
    # a third of the cases use the realistic small-shift grid with QuantizeMultiplier's range
    k = N // 3
    m[:k] = rng.integers(1 << 30, MAX, k, endpoint=True)
    if not variant.startswith("hawq"):
        sh[:k] = rng.integers(-12, 1, k)
    want = np.array([ex.multiply(a, b, c, variant) for a, b, c in zip(x.tolist(), m.tolist(), sh.tolist())],
                    dtype=np.int64)
    got = fx.multiply(x, m, sh, variant)
    assert np.array_equal(got, want)
    if torch is not None:
        got_t = fx.multiply(torch.from_numpy(x), torch.from_numpy(m), torch.from_numpy(sh), variant)
        assert np.array_equal(got_t.numpy(), want)
    _torch_compared(torch)


def test_srmbp_kernels_million():
    """SaturatingRoundingMultiplyByPOT<e> for every e in [-31, 31]: >= 10^6 int32 inputs, the saturation
    thresholds +-(2^(31-e) - 1) and their neighbours included for every positive e."""
    torch = _torch()
    rng = np.random.default_rng(4)
    per = N // 63 + 1
    total = 0
    for e in range(-31, 32):
        x = _random_i32(rng, per)
        if e > 0:
            th = (1 << (31 - e)) - 1
            x[8:14] = [th - 1, th, th + 1, -th - 1, -th, -th + 1]
        x[14:] >>= rng.integers(0, 31, per - 14)  # every magnitude, not only ~2^31
        want = np.array([ex.saturating_rounding_mul_by_pot(v, e) for v in x.tolist()], dtype=np.int32)
        assert np.array_equal(fx.saturating_rounding_mul_by_pot(x, e), want), e
        if torch is not None:
            assert np.array_equal(fx.saturating_rounding_mul_by_pot(torch.from_numpy(x), e).numpy(), want), e
        total += per
    assert total >= N
    with pytest.raises(BadValueError):
        fx.saturating_rounding_mul_by_pot(np.array([1]), 32)
    with pytest.raises(BadValueError):
        fx.saturating_rounding_mul_by_pot(np.array([1 << 31]), 1)
    _torch_compared(torch)


SCALE_GRID = [Fraction(1, 3), Fraction(3, 1000), Fraction(1, 2 ** 20) * Fraction(7, 5), 0.0123, Fraction(127, 128),
              Fraction(5, 2), 0.75 / 2 ** 31]


@pytest.mark.parametrize("variant", ["tflite_double_rounding"] + [
    pytest.param(v, marks=pytest.mark.slow)
    for v in ("tflite_single_rounding", "cmsis_single_rounding", "hawq_sim", "hawq_deployed")])
def test_requantize_grid_of_scales(variant):
    """Multipliers derived from a grid of real scales (QuantizeMultiplier / HAWQ-V3 batch_frexp), int8 and uint8
    outputs with zero points: exact vs numpy vs torch on 20000 accumulators per scale."""
    torch = _torch()
    rng = np.random.default_rng(12)
    x = _random_i32(rng, 20_000)
    x[8:] >>= rng.integers(0, 31, 20_000 - 8)
    for scale in SCALE_GRID:
        m, sh = ex.multiplier_for(scale, variant)
        if variant.startswith("hawq") and sh > 62:
            continue
        for zp, lo, hi in ((0, -128, 127), (-7, -128, 127), (128, 0, 255)):
            want = np.array([ex.requantize(a, scale, variant, zp, lo, hi) for a in x.tolist()], dtype=np.int32)
            assert np.array_equal(fx.requantize(x, m, sh, variant, zp, lo, hi), want), (scale, zp)
            if torch is not None:
                assert np.array_equal(fx.requantize(torch.from_numpy(x), m, sh, variant, zp, lo, hi).numpy(), want)
    _torch_compared(torch)


def test_requantize_kernel_scalar_multiplier_and_zero_point():
    torch = _torch()
    rng = np.random.default_rng(9)
    x = _random_i32(rng, 10_000) >> 12
    for variant in SHIFT_GRID:
        m, sh = ex.multiplier_for(Fraction(3, 1000), variant)
        want = np.array([ex.requantize(a, Fraction(3, 1000), variant, -5) for a in x.tolist()], dtype=np.int32)
        assert np.array_equal(fx.requantize(x, m, sh, variant, -5), want)
        if torch is not None:
            assert np.array_equal(fx.requantize(torch.from_numpy(x), m, sh, variant, -5).numpy(), want)
    _torch_compared(torch)


# ------------------------------------------------------------------ the registered theorems
FAST_THEOREMS = ["requant.rdbpot_half_away", "requant.tflite_double_eq_single_left_shift",
                 "requant.cmsis_single_eq_tflite_single", "requant.dyadic_within_one_lsb",
                 "requant.tflite_double_ne_single_right_shift"]
SLOW_THEOREMS = ["requant.srdhm_floor_form", "requant.dyadic_no_int64_overflow",
                 "requant.tflite_double_single_within_one", "requant.tflite_left_shift_overflow",
                 "requant.cmsis_single_outside_domain"]


def _run_theorem(name):
    from refarith.smt.registry import load_all, run_one

    res = run_one(load_all()[name])
    assert res.ok, (res.verdict, res.expect, res.counterexample, res.confirmed, res.detail)


@pytest.mark.proof
@pytest.mark.parametrize("name", FAST_THEOREMS)
def test_theorem_fast(name):
    _run_theorem(name)


@pytest.mark.proof
@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_THEOREMS)
def test_theorem_slow(name):
    _run_theorem(name)
