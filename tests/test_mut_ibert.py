"""refarith.fast.ibert's numpy kernels against the exact model (refarith.exact.ibert), without torch.

tests/test_ibert.py compares most kernels with the exact model only where torch is importable; these run the
numpy path alone on small boundary-dense inputs: the i-exp clamp at n * x0 and its multiples of x0, other n,
ties of the 16-bit activation requantization, the int64 domain limits the module docstring promises (at the
limit the result is the exact model's, one past it BadValueError), i-erf at its clip -b, i-sqrt near powers of
two up to 2^62, LayerNorm rows whose mean is a tie, and the refusals."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from refarith.errors import BadValueError
from refarith.exact import ibert as ex
from refarith.fast import ibert as fa

EXP_SCALES = ("0.1", "0.02", "0.0078125", "0.001")
GELU_SCALES = ("0.01", "0.0001", "0.000030517578125")


def _i_exp_inputs(x0: int, n: int) -> np.ndarray:
    xs = set(range(-300, 1))
    for q in range(n + 2):
        xs.update((q * x0 - 1, q * x0, q * x0 + 1))
    xs.update((-(1 << 40), -(1 << 40) + 1, -12345678, -(1 << 20)))
    return np.array(sorted(xs), dtype=np.int64)


@pytest.mark.parametrize("s", EXP_SCALES)
@pytest.mark.parametrize("n", [30, 7, 1, 0])
def test_i_exp_matches_exact_model(s, n):
    x0, b, c, _ = ex.exp_constants(s)
    xs = _i_exp_inputs(x0, n)
    got = fa.i_exp(xs, s, n)
    assert got.dtype == np.int64  # the module's int64 arrays
    want = np.array([ex.i_exp_int(int(x), x0, b, c, n) for x in xs], dtype=object)
    assert got.tolist() == want.tolist()
    if n == 30:
        assert fa.i_exp(xs, s).tolist() == want.tolist()  # the default n is the exact model's


def test_i_exp_domain_limits():
    s = "0.02"
    x0, b, c, _ = ex.exp_constants(s)
    with pytest.raises(BadValueError, match="^input magnitude above 2\\^40 "):  # the docstring's domain
        fa.i_exp(np.array([-(1 << 40) - 1]), s)
    with pytest.raises(BadValueError, match="2\\^40"):
        fa.i_exp(np.array([(1 << 40) + 1]), s)
    # x > 0 (outside the softmax use): k = n - q grows; the largest k whose z * 2^k fits int64 is computed, one
    # more is refused (the result of z << k must stay below 2^62 for every z up to the docstring's bound)
    zmax = max((abs(x0) + abs(b)) * abs(x0) + abs(c), 1)
    kmax = 62 - zmax.bit_length()
    for x in range(1, 40 * abs(x0)):
        q = x // x0
        if 30 - q == kmax:
            assert fa.i_exp(np.array([x]), s).tolist() == [ex.i_exp_int(x, x0, b, c)]
        if 30 - q == kmax + 1:
            with pytest.raises(BadValueError, match="^i-exp result exceeds int64"):
                fa.i_exp(np.array([x]), s)
            break
    else:
        raise AssertionError("no input reached the limit")


def _softmax_want(X, s, n, out_bits, act_bits):
    return [ex.ibert_softmax([int(v) for v in r], s, n, out_bits, act_bits) for r in X]


@pytest.mark.parametrize("s", EXP_SCALES)
@pytest.mark.parametrize("act_bits", [16, 0, 8, 2])
def test_softmax_random_rows_match_exact_model(s, act_bits):
    rng = np.random.default_rng(len(s) + act_bits)
    for length, out_bits in ((1, 8), (3, 1), (16, 32), (5, 12)):
        X = rng.integers(-400, 128, size=(40, length))
        X[0] = 7
        assert fa.ibert_softmax(X, s, 30, out_bits, act_bits).tolist() == _softmax_want(X, s, 30, out_bits,
                                                                                         act_bits)


@pytest.mark.parametrize("n", [0, 1, 5])
def test_softmax_small_n(n):
    X = np.array([[0, -1, -5, -40], [3, 3, -200, 0]])
    for act_bits in (16, 0):
        assert fa.ibert_softmax(X, "0.05", n, 8, act_bits).tolist() == _softmax_want(X, "0.05", n, 8, act_bits)


def test_softmax_defaults_and_pairs_with_requantization_ties():
    # rows [0, -d] for every d up to 2000: the 16-bit requantization of i-exp(-d) passes through ties
    # (2 r = d) of both parities at these scales (checked below, so the test keeps deciding them)
    for s in ("0.05", "0.0078125"):
        x0, b, c, _ = ex.exp_constants(s)
        e0 = ex.i_exp_int(0, x0, b, c)
        num = (1 << 15) - 1
        d = np.arange(0, 2001, dtype=np.int64)
        ties = [int(v) for v in d if 2 * (ex.i_exp_int(-int(v), x0, b, c) * num % e0) == e0]
        X = np.stack([np.zeros_like(d), -d], axis=1)
        assert fa.ibert_softmax(X, s).tolist() == _softmax_want(X, s, 30, 8, 16)
        if s == "0.05":
            assert ties, "no requantization tie among these rows"


def test_softmax_int64_limits():
    s = "0.0078125"
    x0, b, c, _ = ex.exp_constants(s)
    zmax = max((abs(x0) + abs(b)) * abs(x0) + abs(c), 1)
    # act_bits: c * 2^n must stay below 2^62
    n = 62 - c.bit_length()
    row = np.array([[0, -3, -400]])
    assert fa.ibert_softmax(row, s, n).tolist() == _softmax_want(row, s, n, 8, 16)
    with pytest.raises(BadValueError, match="^exp requantization exceeds int64"):
        fa.ibert_softmax(row, s, n + 1)
    # act_bits: z * (2^(act_bits-1) - 1) must stay below 2^62
    ab = 62 - zmax.bit_length() + 1
    assert fa.ibert_softmax(row, s, 30, 8, ab).tolist() == _softmax_want(row, s, 30, 8, ab)
    with pytest.raises(BadValueError, match="^exp requantization exceeds int64"):
        fa.ibert_softmax(row, s, 30, 8, ab + 1)
    # act_bits = 0: the row sum, at most len * max e, must stay below 2^62 (here max e = e0 has 56 bits)
    n = 40
    e0 = ex.i_exp_int(0, x0, b, c, n)
    assert e0.bit_length() == 56 and zmax.bit_length() + n <= 62
    X = np.zeros((2, 63), dtype=np.int64)  # bit length 6: 56 + 6 = 62
    X[1, 5:] = -1000
    assert fa.ibert_softmax(X, s, n, 8, 0).tolist() == _softmax_want(X, s, n, 8, 0)
    with pytest.raises(BadValueError, match="^softmax row sum exceeds int64"):
        fa.ibert_softmax(np.zeros((1, 64), dtype=np.int64), s, n, 8, 0)


def test_softmax_refusals():
    row = np.array([[0, -1]])
    for ob in (0, 33):
        with pytest.raises(BadValueError, match="out_bits"):
            ex.ibert_softmax([0, -1], "0.05", out_bits=ob)
        with pytest.raises(BadValueError, match="out_bits"):
            fa.ibert_softmax(row, "0.05", out_bits=ob)
    for shape in ((2, 0), (2, 3, 0)):
        with pytest.raises(BadValueError, match="^softmax of an empty row$"):  # the exact model's message
            fa.ibert_softmax(np.zeros(shape, dtype=np.int64), "0.05")
    for big in ((1 << 40) + 1, -(1 << 40) - 1):
        with pytest.raises(BadValueError, match="^input magnitude above 2\\^40 "):
            fa.ibert_softmax(np.array([[0, big]]), "0.05")
    edge = np.array([[0, -(1 << 40)]])
    assert fa.ibert_softmax(edge, "0.05").tolist() == _softmax_want(edge, "0.05", 30, 8, 16)
    # act_bits = 1: 2^0 - 1 = 0 levels, every requantized term is 0 and the row sum is zero (the exact model too)
    with pytest.raises(BadValueError, match="^softmax row sum is zero$"):  # the exact model's message
        ex.ibert_softmax([0, -1], "0.05", act_bits=1)
    with pytest.raises(BadValueError, match="^softmax row sum is zero$"):
        fa.ibert_softmax(row, "0.05", act_bits=1)
    # scale 2: c = floor(c2 / s^2) = 0, so i-exp(0) = 0: refused as by the exact model
    assert ex.exp_constants("2")[2] == 0
    with pytest.raises(BadValueError, match="^i-exp\\(0\\) is not positive at this scale$"):
        ex.ibert_softmax([0, -1], "2")
    with pytest.raises(BadValueError, match="^i-exp\\(0\\) is not positive at this scale$"):
        fa.ibert_softmax(row, "2")


@pytest.mark.parametrize("s", GELU_SCALES)
def test_i_erf_and_i_gelu_match_exact_model(s):
    b, c, _ = ex.erf_constants(s)
    xs = set(range(-200, 201))
    for t in (-b, 2 * -b):
        xs.update((t - 1, t, t + 1, -t - 1, -t, -t + 1))
    xs.update((1 << 31, -(1 << 31), (1 << 31) - 1, 123456789, -987654321))
    xs = np.array(sorted(xs), dtype=np.int64)
    assert fa.i_erf(xs, s).tolist() == [ex.i_erf_int(int(x), b, c) for x in xs]
    assert fa.i_gelu(xs, s).tolist() == [ex.i_gelu(int(x), s) for x in xs]
    for big in ((1 << 31) + 1, -(1 << 31) - 1):
        with pytest.raises(BadValueError, match="^i-GELU input outside int32$"):
            fa.i_gelu(np.array([big]), s)


def test_i_sqrt_and_bit_length_near_powers_of_two():
    vs = [0, 1, 2, 3]
    for k in range(2, 63):
        vs += [(1 << k) - 1, 1 << k, (1 << k) + 1]
    vs += [(1 << 62) + 12345, (1 << 63) - 1]
    v = np.array(vs, dtype=np.int64)
    assert fa.i_sqrt(v).tolist() == [math.isqrt(x) for x in vs]
    assert fa.i_sqrt(v).tolist() == [ex.i_sqrt(x) for x in vs]
    assert fa.bit_length(np, v).tolist() == [x.bit_length() for x in vs]
    with pytest.raises(BadValueError, match="^i-sqrt of a negative value"):  # the exact model's words
        ex.i_sqrt(-1)
    with pytest.raises(BadValueError, match="^i-sqrt of a negative value"):
        fa.i_sqrt(np.array([4, -1]))
    with warnings.catch_warnings():  # integer operations only: no division by a zero iterate at v = 0
        warnings.simplefilter("error")
        assert fa.i_sqrt(np.array([0, 0, 5])).tolist() == [0, 0, 2]


@pytest.mark.parametrize("shift", [0, 1, 3])
def test_layernorm_matches_exact_model(shift):
    rng = np.random.default_rng(shift)
    for length in (2, 3, 4, 7):
        X = rng.integers(-3000, 3000, size=(60, length))
        X[:, 0] = 4000
        X[1] = [4001] + [0] * (length - 1)  # sums that are odd multiples of length / 2: the mean is a tie
        X[2] = [4000 + length // 2] + [0] * (length - 1)
        want = [ex.ibert_layernorm([int(v) for v in r], shift) for r in X]
        assert fa.ibert_layernorm(X, shift).tolist() == want
        if shift == 0:  # the default shift is the exact model's
            assert fa.ibert_layernorm(X).tolist() == [ex.ibert_layernorm([int(v) for v in r]) for r in X]


def test_layernorm_refusals():
    with pytest.raises(BadValueError, match="^layernorm of a constant row \\(std = 0\\)$"):  # the exact model's
        ex.ibert_layernorm([5, 5, 5])
    with pytest.raises(BadValueError, match="^layernorm of a constant row \\(std = 0\\)$"):
        fa.ibert_layernorm(np.array([[5, 5, 5], [1, 2, 3]]))
    # y >> 2 of the centred row [-1, 0] is [-1, 0]: var 1, std 1 << 2 = 4, not refused
    assert fa.ibert_layernorm(np.array([[1, 2]]), shift=2).tolist() == [ex.ibert_layernorm([1, 2], 2)]
    with pytest.raises(BadValueError, match="constant row"):
        fa.ibert_layernorm(np.array([[7, 7]]), 3)
    for shape in ((3, 0), (3, 2, 0)):
        with pytest.raises(BadValueError, match="^layernorm of an empty row$"):
            fa.ibert_layernorm(np.zeros(shape, dtype=np.int64))


def test_i_exp_at_the_int64_edge_and_at_a_zero_constant():
    # s = 1.4e-9: zmax has 62 bits, so only inputs clamped to n * x0 (k = 0, z itself) are inside the domain
    x0, b, c, _ = ex.exp_constants("1.4e-9")
    zmax = max((abs(x0) + abs(b)) * abs(x0) + abs(c), 1)
    assert zmax.bit_length() == 62
    xs = np.array([30 * x0 - 5, 30 * x0])
    assert fa.i_exp(xs, "1.4e-9").tolist() == [ex.i_exp_int(int(x), x0, b, c) for x in xs]
    # s = 2: c = 0, so z = 0 at r = 0 and i-exp(0) = 0
    x0, b, c, _ = ex.exp_constants("2")
    xs = np.array([0, -1, -2, -7])
    assert fa.i_exp(xs, "2").tolist() == [ex.i_exp_int(int(x), x0, b, c) for x in xs]
