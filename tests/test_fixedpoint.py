"""gemmlowp/TFLite fixed-point nonlinearities: published constants from mpmath, exact vs numpy vs torch
exhaustively over the int16 input domains, accuracy against mpmath, TFLite int8 softmax."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest

from refarith.errors import BadValueError
from refarith.exact import fixedpoint as ex
from refarith.fast import fixedpoint as fx

MIN, MAX = -(1 << 31), (1 << 31) - 1


def _torch():
    return pytest.importorskip("torch", reason="torch not installed: torch kernel not compared")


# ------------------------------------------------------------------ constants are the rounded real values
def test_constants_are_rounded_reals():
    with mpmath.workdps(50):
        def rnd(x):
            return int(mpmath.nint(x))

        assert ex.EXP_MINUS_ONE_EIGHTH == rnd(mpmath.exp(mpmath.mpf(-1) / 8) * 2 ** 31)
        assert ex.ONE_THIRD == rnd(mpmath.mpf(2) ** 31 / 3)
        for k, c in ex.EXP_BARREL:
            assert c == rnd(mpmath.exp(-mpmath.mpf(2) ** k) * 2 ** 31), k
        assert ex.C_48_OVER_17 == rnd(mpmath.mpf(48) / 17 * 2 ** 29)
        assert ex.C_NEG_32_OVER_17 == rnd(mpmath.mpf(-32) / 17 * 2 ** 29)


def test_hand_values():
    for ib in (0, 3, 5, 12):
        assert ex.exp_on_negative_values(0, ib) == MAX
        assert ex.logistic(0, ib) == 1 << 30
        assert ex.tanh(0, ib) == 0
    # exp(-1/4) with 0 integer bits is the 4th-order Taylor polynomial around -1/8 evaluated at x = -1/8:
    # exp(-1/8) * (1 + x + x^2/2 + x^3/6 + x^4/24), computed here in rationals (fixed-point rounding: a few LSBs)
    r = ex.exp_on_negative_values(-(1 << 29), 0)
    x = Fraction(-1, 8)
    poly = Fraction(ex.EXP_MINUS_ONE_EIGHTH) * (1 + x + x ** 2 / 2 + x ** 3 / 6 + x ** 4 / 24)
    assert abs(r - poly) < 4
    with mpmath.workdps(30):  # and the truncation error of that polynomial is ~472 LSBs of 2^-31
        assert 400 < abs(r - mpmath.exp(mpmath.mpf(-1) / 4) * 2 ** 31) < 550
    # below -32 with more than 5 integer bits the result is clamped to zero
    assert ex.exp_on_negative_values(-(33 << 25), 6) == 0
    # rounding_half_sum(a, One) of a = One is One; of 0 is ceil(One/2)
    assert ex.rounding_half_sum(MAX, MAX) == MAX
    assert ex.rounding_half_sum(0, MAX) == 1 << 30
    assert ex.rounding_half_sum(-3, 0) == -2


def test_bad_inputs():
    with pytest.raises(BadValueError):
        ex.exp_on_negative_values(0, 30)
    with pytest.raises(BadValueError):
        ex.tanh(0, 29)
    with pytest.raises(BadValueError):
        ex.logistic(1 << 31, 3)
    with pytest.raises(BadValueError):
        fx.logistic(np.array([0]), -1)
    with pytest.raises(BadValueError):
        ex.softmax_int8([], 1 << 30, 23, -248)
    with pytest.raises(BadValueError):
        ex.softmax_int8([200], 1 << 30, 23, -248)
    with pytest.raises(BadValueError):
        fx.softmax_int8(np.array([[300, 1]]), 1 << 30, 23, -248)
    with pytest.raises(BadValueError):
        ex.softmax_params(1, Fraction(1, 1 << 30))


# ------------------------------------------------------------------ exhaustive int16 domains
def _int16_raws(lo=-32768, hi=32767):
    return np.arange(lo, hi + 1, dtype=np.int64) << 16


@pytest.mark.parametrize("name,ib,lo,hi", [
    ("exp_on_negative_values", 5, -32768, 0),
    ("logistic", 3, -32768, 32767),
    ("tanh", 3, -32768, 32767),
])
def test_exhaustive_int16_exact_numpy_torch(name, ib, lo, hi):
    torch = _torch()
    raws = _int16_raws(lo, hi)
    f = getattr(ex, name)
    want = np.array([f(r, ib) for r in raws.tolist()], dtype=np.int32)
    assert np.array_equal(getattr(fx, name)(raws, ib), want)
    assert np.array_equal(getattr(fx, name)(torch.from_numpy(raws), ib).numpy(), want)


@pytest.mark.parametrize("name", ["one_over_one_plus_x_for_x_in_0_1", "one_minus_x_over_one_plus_x_for_x_in_0_1"])
def test_exhaustive_int16_reciprocals(name):
    torch = _torch()
    raws = _int16_raws(0, 32767)
    want = np.array([getattr(ex, name)(r) for r in raws.tolist()], dtype=np.int32)
    assert np.array_equal(getattr(fx, name)(raws), want)
    assert np.array_equal(getattr(fx, name)(torch.from_numpy(raws)).numpy(), want)


@pytest.mark.parametrize("ib", [0, 1, 2, 4, 5, 6, 12, 28])
def test_random_int32_raws_every_integer_bits(ib):
    torch = _torch()
    rng = np.random.default_rng(ib)
    raws = rng.integers(MIN, MAX, 1500, endpoint=True)
    raws[:6] = [MIN, MIN + 1, -1, 0, 1, MAX]
    for name in ("exp_on_negative_values", "logistic", "tanh"):
        f = getattr(ex, name)
        want = np.array([f(r, ib) for r in raws.tolist()], dtype=np.int32)
        assert np.array_equal(getattr(fx, name)(raws, ib), want), name
        assert np.array_equal(getattr(fx, name)(torch.from_numpy(raws), ib).numpy(), want), name


# ------------------------------------------------------------------ accuracy vs mpmath (independent)
def _max_abs_err(raws_in, raws_out, ib, f):
    with mpmath.workdps(40):
        scale_in = mpmath.mpf(2) ** -(31 - ib)
        return max(abs(mpmath.mpf(o) * mpmath.mpf(2) ** -31 - f(mpmath.mpf(i) * scale_in))
                   for i, o in zip(raws_in.tolist(), raws_out.tolist()))


@pytest.mark.parametrize("name,ib,f,lo", [
    ("exp_on_negative_values", 5, mpmath.exp, -32768),
    ("logistic", 3, lambda x: 1 / (1 + mpmath.exp(-x)), -32768),
    ("tanh", 3, mpmath.tanh, -32768),
])
def test_accuracy_at_least_20_bits(name, ib, f, lo):
    """Over every 16th int16 input: absolute error below 2^-20 (the templates' 20-bit accuracy claim)."""
    hi = 0 if name.startswith("exp") else 32767
    raws = _int16_raws(lo, hi)[::16]
    err = _max_abs_err(raws, getattr(fx, name)(raws, ib), ib, f)
    assert err < mpmath.mpf(2) ** -20


def test_reciprocal_accuracy():
    raws = _int16_raws(0, 32767)[::8]
    err = _max_abs_err(raws, fx.one_over_one_plus_x_for_x_in_0_1(raws), 0, lambda x: 1 / (1 + x))
    assert err < mpmath.mpf(2) ** -27


# ------------------------------------------------------------------ int8 softmax
def test_softmax_params_hand():
    # beta * scale * 2^26 = 2^22 -> multiplier 2^30, shift 23; radius floor(31 * 2^26 / 2^23) = 248
    assert ex.softmax_params(1, Fraction(1, 16)) == (1 << 30, 23, -248)
    m, sh, dmin = ex.softmax_params(1.0, 0.1)
    assert (m, sh) == (1717986918, 23) and dmin == -248


def test_softmax_hand_rows():
    p = ex.softmax_params(1, Fraction(1, 16))
    assert ex.softmax_int8([5, 5], *p) == [0, 0]             # 1/2 -> 128/256 - 128
    assert ex.softmax_int8([7, 7, 7, 7], *p) == [-64] * 4   # 1/4 -> 64 - 128
    assert ex.softmax_int8([127, -128], *p) == [127, -128]  # diff -255 < diff_min: exactly -128; 1 saturates


def test_softmax_exact_numpy_torch_random_rows():
    torch = _torch()
    rng = np.random.default_rng(7)
    for beta, scale, depth in ((1, Fraction(1, 16), 10), (1.0, 0.1, 33), (Fraction(1, 2), Fraction(3, 40), 100)):
        p = ex.softmax_params(beta, scale)
        x = rng.integers(-128, 127, (200, depth), endpoint=True)
        want = np.array([ex.softmax_int8(r, *p) for r in x.tolist()], dtype=np.int8)
        assert np.array_equal(fx.softmax_int8(x, *p), want)
        assert np.array_equal(fx.softmax_int8(torch.from_numpy(x), *p).numpy(), want)


def test_softmax_within_one_lsb_of_mpmath_all_pairs():
    """All 65536 two-element rows: |out - (256*softmax - 128)| < 1 (mpmath reference)."""
    p = ex.softmax_params(1, Fraction(1, 16))
    a = np.arange(-128, 128, dtype=np.int64)
    pairs = np.stack(np.meshgrid(a, a, indexing="ij"), -1).reshape(-1, 2)
    got = fx.softmax_int8(pairs, *p)[:, 0].astype(np.int64).tolist()
    with mpmath.workdps(30):
        for (x0, x1), g in zip(pairs.tolist(), got):
            ref = 256 / (1 + mpmath.exp(mpmath.mpf(x1 - x0) / 16)) - 128
            assert abs(g - ref) < 1, (x0, x1, g)


@pytest.mark.slow
@pytest.mark.parametrize("name,hi_ib", [("exp_on_negative_values", 29), ("logistic", 29), ("tanh", 28)])
def test_exhaustive_int16_every_integer_bits(name, hi_ib):
    """Every integer-bit setting, all int16 raws (exact vs numpy vs torch)."""
    torch = _torch()
    raws = _int16_raws()
    f = getattr(ex, name)
    for ib in range(hi_ib + 1):
        want = np.array([f(r, ib) for r in raws.tolist()], dtype=np.int32)
        assert np.array_equal(getattr(fx, name)(raws, ib), want), ib
        assert np.array_equal(getattr(fx, name)(torch.from_numpy(raws), ib).numpy(), want), ib


def test_spec_ops():
    from refarith.errors import SpecError
    from refarith.spec import parse_spec

    assert str(parse_spec("gemmlowp_exp()")) == "gemmlowp_exp(integer_bits=5)"
    assert ex.apply_spec("gemmlowp_logistic(integer_bits=3)", 0) == 1 << 30
    assert ex.apply_spec("gemmlowp_tanh()", 0) == 0
    assert ex.apply_spec("gemmlowp_one_over_one_plus_x()", 0) == ex.one_over_one_plus_x_for_x_in_0_1(0)
    sp = "tflite_softmax(int8->int8,multiplier=1073741824,left_shift=23,diff_min=-248)"
    assert ex.apply_spec(sp, [7, 7, 7, 7]) == [-64] * 4
    with pytest.raises(SpecError):
        parse_spec("tflite_softmax(multiplier=1073741824)")
    with pytest.raises(SpecError):
        parse_spec("gemmlowp_tanh(integer_bits=29)")


# ------------------------------------------------------------------ row-length limits of the int8 softmax
@pytest.mark.parametrize("n,want", [(511, -127), (512, "output shift"), (4095, "output shift"),
                                    (4096, "sum of exponentials")])
def test_softmax_long_equal_rows(n, want):
    """n equal entries: each exp term is 2^19 (Q12.19); 512 of them make the output exponent 32 (gemmlowp
    asserts <= 31), 4096 wrap the int32 sum.  The exact model and both kernels reject the same rows."""
    torch = _torch()
    p = ex.softmax_params(1, Fraction(1, 16))
    row = np.zeros((1, n), dtype=np.int64)
    if isinstance(want, int):
        # 256/511 = 0.50098 rounds to 1 LSB above zero: 1 - 128
        assert ex.softmax_int8([0] * n, *p) == [want] * n
        assert set(fx.softmax_int8(row, *p).ravel().tolist()) == {want}
        assert set(fx.softmax_int8(torch.from_numpy(row), *p).numpy().ravel().tolist()) == {want}
        return
    with pytest.raises(BadValueError, match=want):
        ex.softmax_int8([0] * n, *p)
    for arr in (row, torch.from_numpy(row)):
        with pytest.raises(BadValueError, match=want):
            fx.softmax_int8(arr, *p)


@pytest.mark.proof
@pytest.mark.parametrize("name", ["fixedpoint.softmax_sum_no_wrap_below_4096", "fixedpoint.softmax_sum_wraps_at_4096",
                                  "fixedpoint.softmax_output_shift_le_31_below_512",
                                  "fixedpoint.softmax_output_shift_le_31",
                                  "fixedpoint.softmax_unclamped_output_fits_int8"])
def test_softmax_theorems(name):
    from refarith.smt.registry import load_all, run_one

    res = run_one(load_all()[name])
    assert res.ok, (res.verdict, res.expect, res.counterexample, res.confirmed, res.detail)
    if res.expect == "counterexample":
        assert res.confirmed
