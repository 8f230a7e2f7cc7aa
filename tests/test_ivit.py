"""I-ViT operators: exact model vs numpy vs torch kernels, and independent facts."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import BadValueError, SpecError, UnknownModeError
from refarith.exact import ivit as ex
from refarith.fast import ivit as fa
from refarith.spec import parse_spec

SCALES = ("0.5", "0.1", "0.05", "0.02", "0.0078125", "0.003")
VARIANTS = ex.VARIANTS


def _torch():
    return pytest.importorskip("torch", reason="torch not importable: torch kernel comparison skipped")


# ------------------------------------------------------------------ independent facts
def test_log2e_shift_is_23_over_16_up_to_floors():
    # 1 + 1/2 - 1/16 = 23/16 = 1.4375 (the paper's constant); the two floors move the result by less than 2.
    xs = range(-(1 << 16), 1 << 16)
    assert Fraction(1) + Fraction(1, 2) - Fraction(1, 16) == Fraction(23, 16)
    for x in xs:
        d = ex.log2e_shift(x) - Fraction(23 * x, 16)
        assert -1 < d < 1, x


def test_x0_variants_follow_their_formulas():
    # floor(-1/s) vs trunc(-1/s - 1): equal for -1/s not an integer, one apart when it is.
    assert ex.x0_int("0.3", "ivit_torch") == -4 and ex.x0_int("0.3", "ivit_tvm") == -4
    assert ex.x0_int("0.5", "ivit_torch") == -2 and ex.x0_int("0.5", "ivit_tvm") == -3
    assert ex.x0_int("0.0078125", "ivit_torch") == -128 and ex.x0_int("0.0078125", "ivit_tvm") == -129
    # fl32(0.1) = 0.100000001490116...: -1/s = -9.99999985..., which float32 rounds to -10 (floor -10);
    # binary64 keeps it, -10.99999985... truncates to -10.
    assert ex.x0_int("0.1", "ivit_torch") == -10 and ex.x0_int("0.1", "ivit_tvm") == -10
    # fl32(0.04) = 0.03999999910593...: -1/s = -25.00000056, which float32 rounds to -25.0: floor -25, not -26.
    s = Fraction(float(np.float32(0.04)))
    assert (-1 / s).__floor__() == -26 and ex.x0_int("0.04", "ivit_torch") == -25
    assert ex.x0_int("0.04", "ivit_tvm") == -26


def test_x0_matches_torch_float32_division():
    # The reference expression torch.floor(-1.0 / scaling_factor) on a float32 tensor, run by torch itself.
    torch = _torch()
    for sc in np.linspace(0.001, 0.5, 1500):
        s32 = float(np.float32(sc))
        t = torch.tensor([s32], dtype=torch.float32)
        assert int(torch.floor(-1.0 / t).item()) == ex.x0_int(s32, "ivit_torch"), s32
        tg = t * 1.702
        assert int(torch.floor(-1.0 / tg).item()) == ex.gelu_x0(s32, "ivit_torch"), s32


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("scale", SCALES)
def test_shift_exp_at_zero_is_minus_x0_times_2n(variant, scale):
    # q = 0, r = 0: 2^0 ~ 1 + 0, so the result is -x0 * 2^n, i.e. exp(0) = 1 at scale 1/(-x0 * 2^n).
    x0 = ex.x0_int(scale, variant)
    n = ex.SOFTMAX_N[variant]
    assert ex.shift_exp(0, x0, n, variant) == -x0 << n


def test_r_half_vs_r_shift_differ_only_for_odd_r():
    x0 = ex.x0_int("0.1", "ivit_torch")
    for x in range(-200, 1):
        y = max(ex.log2e_shift(x), 15 * x0)
        r = y - (y // x0) * x0
        a, b = ex.shift_exp(x, x0, 15, "ivit_torch"), ex.shift_exp(x, x0, 15, "ivit_tvm")
        assert (a == b) == (r % 2 == 0 or y // x0 == 15), x


def test_newton_sqrt_examples():
    # Converged for mid-range values, not for small ones (halving from 2^16 takes ~16 steps).
    import math

    assert ex.newton_sqrt(1 << 30, "ivit_torch") == math.isqrt(1 << 30)
    assert ex.newton_sqrt(100, "ivit_torch") != math.isqrt(100)
    assert ex.newton_sqrt(0, "ivit_torch") == 64  # 2^16 halved ten times


def test_bad_input():
    with pytest.raises(BadValueError):
        ex.x0_int("-0.1", "ivit_torch")
    with pytest.raises(UnknownModeError):
        ex.shiftmax([1, 2], "0.1", "ivit_cuda")
    with pytest.raises(BadValueError):
        ex.shiftmax([], "0.1", "ivit_tvm")
    with pytest.raises(SpecError):
        parse_spec("shiftmax(variant=ivit_tvm)")
    with pytest.raises(SpecError):
        parse_spec("shiftmax(variant=ivit_tvm,scale=-1)")


def test_spec_ids_and_run_spec():
    sp = parse_spec("shiftmax(variant=ivit_tvm,scale=0.1,n=16)")
    assert str(sp) == "shiftmax(variant=ivit_tvm,scale=0.1,n=16,out_bits=8)"
    assert ex.run_spec(sp, [3, 1, 0]) == ex.shiftmax([3, 1, 0], "0.1", "ivit_tvm", 16, 8)
    assert ex.run_spec("shiftgelu(scale=0.1)", [5, -5]) == ex.shiftgelu([5, -5], "0.1", "ivit_torch")
    assert ex.run_spec("ivit_sqrt(variant=ivit_tvm)", 12345) == ex.newton_sqrt(12345, "ivit_tvm")


def test_tvm_sum_wraps_where_torch_clamps():
    # 2^11 zeros at scale 2^-7.  tvm: x0 = -129, each exp 129 * 2^16, sum 129 * 2^27 = 2^34 + 2^27 wraps to 2^27,
    # factor (2^31-1) // 2^27 = 15, output (129 * 2^16 * 15) >> 24 = 7 (the true softmax is 2^-11, i.e. 0).
    # torch: x0 = -128, each exp 2^22, sum 2^33 clamped to 2^31-1, factor 1, output 2^22 >> 24 = 0.
    row = [0] * (1 << 11)
    assert ex.shiftmax(row, "0.0078125", "ivit_tvm") == [7] * len(row)
    assert ex.shiftmax(row, "0.0078125", "ivit_torch") == [0] * len(row)


# ------------------------------------------------------------------ exact vs numpy vs torch
@pytest.mark.parametrize("variant", VARIANTS)
def test_shift_exp_exhaustive_int16(variant):
    torch = _torch()
    xs = np.arange(-(1 << 15), 1, dtype=np.int64)  # all int16 inputs after the max subtraction (x <= 0)
    for scale in SCALES:
        x0 = ex.x0_int(scale, variant)
        n = ex.SOFTMAX_N[variant]
        want = np.array([ex.shift_exp(int(x), x0, n, variant) for x in xs])
        assert np.array_equal(fa.shift_exp_array(xs, scale, variant), want), scale
        assert np.array_equal(fa.shift_exp_array(torch.from_numpy(xs), scale, variant).numpy(), want), scale


def test_shift_exp_positive_inputs_torch_variant():
    xs = np.arange(0, 40, dtype=np.int64)
    x0 = ex.x0_int("0.5", "ivit_torch")
    want = [ex.shift_exp(int(x), x0, 23, "ivit_torch") for x in xs]
    assert [int(v) for v in fa.shift_exp_array(xs, "0.5", "ivit_torch", 23)] == want
    with pytest.raises(BadValueError):
        fa.shift_exp_array(np.array([1000]), "0.5", "ivit_torch", 23)  # 2^(23+718): beyond int64


def _random_rows(rng, count, length, lo=-128, hi=128, nonneg_max=False):
    x = rng.integers(lo, hi, size=(count, length), dtype=np.int64)
    if nonneg_max:
        x[:, 0] = np.abs(x[:, 0])
    return x


def _compare_rows(fn_exact, fn_fast, X, *args):
    torch = _torch()
    want = np.array([fn_exact([int(v) for v in r], *args) for r in X], dtype=np.int64)
    assert np.array_equal(fn_fast(X, *args), want), args
    assert np.array_equal(fn_fast(torch.from_numpy(X), *args).numpy(), want), args


SIZES = [1 << 15, pytest.param(1 << 20, marks=pytest.mark.slow)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_shiftmax_random_rows(variant, size):
    # ``size`` seeded random int8 inputs per variant (2^20 >= 10^6 under -m slow): lengths 1..197, six scales.
    rng = np.random.default_rng(1)
    total = 0
    for scale in SCALES:
        for length in (1, 3, 16, 64, 197):
            rows = max(1, size // (len(SCALES) * 5 * length))
            X = _random_rows(rng, rows, length)
            _compare_rows(ex.shiftmax, fa.shiftmax, X, scale, variant)
            total += X.size
    assert total >= size * 0.9


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_shiftgelu_random_rows(variant, size):
    # Rows with a non-negative maximum: for a negative maximum shift_exp(-max) shifts left by more than the int32
    # kernel allows (tvm raises) and, at coarse scales, beyond int64 (the fast torch-variant kernel raises).
    rng = np.random.default_rng(2)
    total = 0
    for scale in SCALES:
        for length in (1, 4, 32, 192):
            rows = max(1, size // (len(SCALES) * 4 * length))
            X = _random_rows(rng, rows, length, nonneg_max=True)
            _compare_rows(ex.shiftgelu, fa.shiftgelu, X, scale, variant)
            total += X.size
    assert total >= size * 0.9


@pytest.mark.parametrize("variant", VARIANTS)
def test_ilayernorm_random_rows(variant):
    rng = np.random.default_rng(3)
    for length in (2, 8, 192):
        for lo, hi in ((-128, 128), (-4096, 4096), (-3, 4)):
            X = _random_rows(rng, max(1, 8000 // length), length, lo, hi)
            _compare_rows(ex.ilayernorm, fa.ilayernorm, X, variant)


@pytest.mark.parametrize("bits", [20, pytest.param(24, marks=pytest.mark.slow)])
@pytest.mark.parametrize("variant", VARIANTS)
def test_newton_sqrt_exhaustive(variant, bits):
    torch = _torch()
    v = np.arange(0, 1 << bits, dtype=np.int64)
    got = fa.newton_sqrt(v, variant)
    sample = v[::251]
    want = np.array([ex.newton_sqrt(int(x), variant) for x in sample])
    assert np.array_equal(got[::251], want)
    assert np.array_equal(fa.newton_sqrt(torch.from_numpy(v), variant).numpy(), got)


def test_newton_sqrt_exact_model_exhaustive_2_16():
    v = np.arange(0, 1 << 16, dtype=np.int64)
    for variant in VARIANTS:
        want = np.array([ex.newton_sqrt(int(x), variant) for x in v])
        assert np.array_equal(fa.newton_sqrt(v, variant), want)


def _newton_by_kernel(lo: int, hi: int) -> np.ndarray:
    return fa.newton_sqrt(np.arange(lo, hi + 1, dtype=np.int64), "ivit_torch")


@pytest.mark.parametrize("lo, hi", [(1, 1 << 16), (4549000, 4549700), ((1 << 24) - 5, (1 << 24) + (1 << 18)),
                                    ((1 << 32) - (1 << 18), (1 << 32) - 1), (123456789, 123456789 + 99999)])
def test_newton_pieces_equal_the_kernel_on_every_input(lo, hi):
    """The interval propagation of ivit.newton_sqrt_exact_domain_2_32 gives the numpy kernel's root on every v."""
    from refarith.smt.theorems.ivit import newton_pieces

    L, H, K = newton_pieces(lo, hi)
    assert L[0] == lo and H[-1] == hi and np.array_equal(L[1:], H[:-1] + 1)
    assert np.array_equal(np.repeat(K, H - L + 1), _newton_by_kernel(lo, hi))


@pytest.mark.slow
def test_newton_sqrt_kernel_mismatches_2_24_to_2_32():
    """The numpy kernel on all of [2^24, 2^32) (about 6 CPU minutes) has the interval propagation's mismatches."""
    from refarith.smt.theorems.ivit import _interval_mismatches, _isqrt_mismatches

    assert _isqrt_mismatches("ivit_torch", 1 << 24, 1 << 32) == _interval_mismatches(1 << 24, (1 << 32) - 1)
