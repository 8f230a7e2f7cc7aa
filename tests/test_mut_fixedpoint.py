"""refarith.fast.fixedpoint's numpy kernels against the exact model (refarith.exact.fixedpoint), without torch.

tests/test_fixedpoint.py compares the kernels with the exact model only where torch is importable; these tests
run the numpy path alone, on small boundary-dense inputs: every integer-bit setting, the clamp of
exp_on_negative_values just below -2^(36 - integer_bits), INT32_MIN and INT32_MAX, int8 softmax rows whose sums
of exponentials are exact powers of two, entries at diff_min, every input shift, and the refusals."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import BadValueError
from refarith.exact import fixedpoint as ex
from refarith.fast import fixedpoint as fx

MIN, MAX = -(1 << 31), (1 << 31) - 1


def _raws(ib: int, seed: int, n: int = 60) -> np.ndarray:
    edge = [MIN, MIN + 1, -1, 0, 1, 2, MAX, MAX - 1, 1 << 30, -(1 << 30), (1 << 29) - 1, -(1 << 29)]
    if ib > 5:
        t = 1 << (36 - ib)
        edge += [-t - 1, -t, -t + 1, t]
    edge += [-(1 << k) for k in range(31)] + [-(1 << k) - 1 for k in range(1, 31)]
    rng = np.random.default_rng(seed)
    rand = rng.integers(MIN, MAX, n, endpoint=True).tolist() + rng.integers(-(1 << 27), 1 << 27, n).tolist()
    return np.array([v for v in edge + rand if MIN <= v <= MAX], dtype=np.int64)


def _want(f, raws, *args) -> np.ndarray:
    return np.array([f(r, *args) for r in raws.tolist()], dtype=np.int32)


@pytest.mark.parametrize("name,hi", [("exp_on_negative_values", 29), ("logistic", 29), ("tanh", 28)])
def test_every_integer_bits_matches_exact_model(name, hi):
    for ib in range(hi + 1):
        raws = _raws(ib, ib)
        got = getattr(fx, name)(raws, ib)
        assert got.dtype == np.int32
        want = _want(getattr(ex, name), raws, ib)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, (name, ib, int(raws[bad[0]]), int(got[bad[0]]), int(want[bad[0]]))


@pytest.mark.parametrize("name", ["one_over_one_plus_x_for_x_in_0_1", "one_minus_x_over_one_plus_x_for_x_in_0_1"])
def test_reciprocals_match_exact_model(name):
    raws = _raws(0, 99, 300)
    got = getattr(fx, name)(raws)
    assert got.dtype == np.int32
    assert np.array_equal(got, _want(getattr(ex, name), raws))


def test_scalar_and_shaped_inputs():
    raws = _raws(3, 5).reshape(1, -1)[:, :48].reshape(4, 12)
    assert np.array_equal(fx.tanh(raws, 3), _want(ex.tanh, raws.ravel(), 3).reshape(4, 12))
    assert int(fx.logistic(np.int64(-12345678), 4)) == ex.logistic(-12345678, 4)


def _softmax_want(x, p) -> np.ndarray:
    return np.array([ex.softmax_int8(r, *p) for r in x.tolist()], dtype=np.int8)


PARAMS = [ex.softmax_params(1, Fraction(1, 16)), ex.softmax_params(1.0, 0.1),
          ex.softmax_params(Fraction(1, 2), Fraction(3, 40)), ex.softmax_params(8, Fraction(1, 2)),
          ex.softmax_params(Fraction(1, 100), Fraction(1, 2))]


@pytest.mark.parametrize("p", PARAMS)
def test_softmax_random_rows_match_exact_model(p):
    rng = np.random.default_rng(p[0] & 0xFFFF)
    for depth in (1, 2, 5, 33):
        x = rng.integers(-128, 127, (24, depth), endpoint=True)
        x[0] = -128
        x[1, 0] = 127
        got = fx.softmax_int8(x, *p)
        assert got.dtype == np.int8
        assert np.array_equal(got, _softmax_want(x, p)), (p, depth)


def test_softmax_entries_at_diff_min():
    m, sh, dmin = PARAMS[0]  # diff_min -248: the entries 248 and 249 below the row maximum
    for lo in (-121, -122, -120):
        x = np.array([[127, lo, 0, lo]], dtype=np.int64)
        assert np.array_equal(fx.softmax_int8(x, m, sh, dmin), _softmax_want(x, (m, sh, dmin)))
    x = np.array([[10, 7, 3, 10]], dtype=np.int64)
    for d in (-3, -4, -7, -8, 0, -1):  # a diff_min of the caller's choice, at and beside the row's differences
        assert np.array_equal(fx.softmax_int8(x, m, sh, d), _softmax_want(x, (m, sh, d))), d


def test_softmax_equal_rows_of_power_of_two_lengths():
    # n equal entries: the int32 sum is n * 2^19, an exact power of two for n = 2^j (the bit length's edges);
    # 12 <= n < 16 and 48 <= n < 64 put ones in the bits each step of the bit-length search reads last
    p = PARAMS[0]
    for n in (1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15, 16, 24, 31, 32, 48, 52, 56, 60, 63, 64, 100, 128, 255, 256, 511):
        x = np.zeros((2, n), dtype=np.int64)
        x[1, 0] = -1
        assert np.array_equal(fx.softmax_int8(x, *p), _softmax_want(x, p)), n


def test_softmax_every_shift_and_multiplier_sign():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 127, (6, 7), endpoint=True)
    for shift in (0, 1, 7, 23, 24, 30, 31):
        for mult in (1 << 30, MAX, 1, -(1 << 30), MIN, 1717986918):
            p = (mult, shift, -(1 << 31))
            try:
                want = _softmax_want(x, p)
            except BadValueError as e:
                with pytest.raises(BadValueError, match="row too long"):
                    fx.softmax_int8(x, *p)
                assert "row too long" in str(e)
                continue
            assert np.array_equal(fx.softmax_int8(x, *p), want), (mult, shift)


@pytest.mark.parametrize("n,want", [(511, None), (512, "output shift"), (4096, "int32 sum of exponentials"),
                                    (8192, "int32 sum of exponentials")])  # 8192 * 2^19 = 2^32 wraps to 0
def test_softmax_row_length_limits(n, want):
    p = PARAMS[0]
    row = np.zeros((1, n), dtype=np.int64)
    if want is None:
        assert fx.softmax_int8(row, *p).tolist() == [ex.softmax_int8([0] * n, *p)]
        return
    with pytest.raises(BadValueError, match="^softmax: " + want):  # the exact model's words
        ex.softmax_int8([0] * n, *p)
    with pytest.raises(BadValueError, match="^softmax: " + want):
        fx.softmax_int8(row, *p)


def _same_refusal(fast_call, exact_call):
    with pytest.raises(BadValueError) as e_ex:
        exact_call()
    with pytest.raises(BadValueError, match=None) as e_fx:
        fast_call()
    return str(e_ex.value), str(e_fx.value)


@pytest.mark.parametrize("name,hi", [("exp_on_negative_values", 29), ("logistic", 29), ("tanh", 28)])
def test_integer_bits_refused_like_the_exact_model(name, hi):
    a = np.array([-5, 0], dtype=np.int64)
    for ib in (-1, hi + 1):
        e_ex, e_fx = _same_refusal(lambda ib=ib: getattr(fx, name)(a, ib), lambda ib=ib: getattr(ex, name)(-5, ib))
        assert e_fx == e_ex  # "integer_bits=... outside [0, hi]"
    assert np.array_equal(getattr(fx, name)(a, hi), _want(getattr(ex, name), a, hi))
    assert np.array_equal(getattr(fx, name)(a, 0), _want(getattr(ex, name), a, 0))
    with pytest.raises(BadValueError):
        getattr(fx, name)(a, 3.0)
    with pytest.raises(BadValueError, match="^a "):  # the argument's name, as the exact model's "a=..."
        getattr(fx, name)(np.array([MAX + 1]), 3)
    with pytest.raises(BadValueError):
        getattr(fx, name)(np.array([MIN - 1]), 3)
    assert np.array_equal(getattr(fx, name)(np.array([MIN, MAX]), 3), _want(getattr(ex, name), np.array([MIN, MAX]), 3))


def test_reciprocals_refuse_out_of_range():
    for f in (fx.one_over_one_plus_x_for_x_in_0_1, fx.one_minus_x_over_one_plus_x_for_x_in_0_1):
        with pytest.raises(BadValueError):
            f(np.array([MAX + 1]))
        with pytest.raises(BadValueError):
            f(np.array([0.5]))


def test_softmax_refusals():
    m, sh, dmin = PARAMS[0]
    ok = np.array([[1, 2]], dtype=np.int64)
    for bad in (np.array([[128, 0]]), np.array([[-129, 0]]), np.array([[0.0, 1.0]])):
        with pytest.raises(BadValueError, match="^input "):  # argument names as in the exact model's messages
            fx.softmax_int8(bad, m, sh, dmin)
    for mult in (MAX + 1, MIN - 1):
        with pytest.raises(BadValueError, match="^input_multiplier "):
            fx.softmax_int8(ok, mult, sh, dmin)
    for s in (-1, 32):
        with pytest.raises(BadValueError, match="^input_left_shift "):
            fx.softmax_int8(ok, m, s, dmin)
    assert np.array_equal(fx.softmax_int8(np.array([[127, -128]]), m, sh, dmin), [[127, -128]])


def test_softmax_numpy_integer_parameters_and_other_ranks():
    m, sh, dmin = PARAMS[1]
    rng = np.random.default_rng(11)
    x3 = rng.integers(-128, 127, (3, 4, 6), endpoint=True)
    want = _softmax_want(x3.reshape(-1, 6), (m, sh, dmin)).reshape(3, 4, 6)
    assert np.array_equal(fx.softmax_int8(x3, m, sh, dmin), want)  # rows on the last axis
    assert np.array_equal(fx.softmax_int8(x3, np.int64(m), np.int32(sh), dmin), want)
    row = x3[1, 2]
    assert fx.softmax_int8(row, m, sh, dmin).tolist() == ex.softmax_int8(row.tolist(), m, sh, dmin)


def test_softmax_rows_with_many_entries_below_diff_min():
    # 300 of 400 entries 255 below the maximum (diff_min -248): they add nothing to the sum of exponentials
    p = PARAMS[0]
    rng = np.random.default_rng(13)
    x = np.full((12, 400), -128, dtype=np.int64)
    x[:, :100] = rng.integers(100, 127, (12, 100), endpoint=True)
    x[:, 0] = 127
    assert np.array_equal(fx.softmax_int8(x, *p), _softmax_want(x, p))
    # five entries inside the radius, 495 outside: an output near a rounding edge, where a sum off by 495 tells
    row = np.array([[127, 127, 120, 117, 115] + [-128] * 495])
    assert np.array_equal(fx.softmax_int8(row, *p), _softmax_want(row, p))


def test_softmax_sum_that_wraps_to_one():
    # 8192 entries at the row maximum give 8192 * 2^19 = 2^32, which wraps to 0, and one entry whose term is 1
    # (multiplier 2^30, left shift 23, diff -221) makes the int32 sum exactly 1: still positive, so the exact model
    # computes the row (GetReciprocal of 1) instead of refusing it
    row = [127] * 8192 + [-94]
    want = ex.softmax_int8(row, 1 << 30, 23, -256)
    assert want[-1] != -128 and want[0] == 127
    got = fx.softmax_int8(np.array([row], dtype=np.int8), 1 << 30, 23, -256)
    assert np.array_equal(got[0], np.array(want, dtype=np.int8))
