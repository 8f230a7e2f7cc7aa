"""I-BERT operators: exact model vs numpy vs torch kernels, and independent facts."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import BadValueError, SpecError
from refarith.exact import ibert as ex
from refarith.fast import ibert as fa
from refarith.spec import parse_spec

EXP_SCALES = ("0.1", "0.05", "0.02", "0.01", "0.0078125")
GELU_SCALES = ("0.01", "0.001", "0.0001", "0.000030517578125")


def _torch():
    return pytest.importorskip("torch", reason="torch not importable: torch kernel comparison skipped")


# ------------------------------------------------------------------ independent facts
def test_float_rounding_helpers_match_hardware_floats():
    # fl32 / fl64 against numpy's float32 / float64 arithmetic on the same exact operands (independent library).
    rng = np.random.default_rng(0)
    for a, b in rng.uniform(1e-3, 10, size=(2000, 2)):
        a32, b32 = np.float32(a), np.float32(b)
        assert ex.fl32(Fraction(float(a32)) / Fraction(float(b32))) == Fraction(float(a32 / b32))
        assert ex.fl64(Fraction(float(a)) / Fraction(float(b))) == Fraction(a / b)


def test_exp_constants_follow_float32_derivation():
    # The same derivation in numpy float32 arithmetic (the reference's tensors are float32).
    for s in EXP_SCALES:
        s32 = np.float32(float(s))
        c1, c2 = 0.96963238 / 0.35815147, 1.0 / 0.35815147
        x0, b, c, _ = ex.exp_constants(s)
        assert x0 == math.floor(np.float32(-0.6931) / s32)
        assert b == math.floor(np.float32(c1) / s32)
        assert c == math.floor(np.float32(c2) / (s32 * s32))


def test_constants_match_torch_float32_tensors():
    # The reference expressions run by torch itself on a float32 scaling-factor tensor.
    torch = _torch()
    c1, c2, e2 = 0.96963238 / 0.35815147, 1.0 / 0.35815147, 1.0 / -0.2888
    for sc in np.linspace(0.0005, 0.5, 1500):
        s32 = float(np.float32(sc))
        t = torch.tensor([s32], dtype=torch.float32)
        x0, b, c, _ = ex.exp_constants(s32)
        assert (x0, b, c) == tuple(int(torch.floor(v).item()) for v in (-0.6931 / t, c1 / t, c2 / t**2)), s32
        tg = t / 1.4142
        eb, ec, _ = ex.erf_constants(s32)
        assert (eb, ec) == (int(torch.floor(-1.769 / tg).item()), int(torch.floor(e2 / tg**2).item())), s32


def test_i_sqrt_is_isqrt_exact_model():
    for v in range(0, 1 << 18):
        assert ex.i_sqrt(v) == math.isqrt(v)
    for v in (2**62 - 1, 2**62, 10**30, 2**100 + 12345):
        assert ex.i_sqrt(v) == math.isqrt(v)


@pytest.mark.parametrize("bits", [20, pytest.param(24, marks=pytest.mark.slow)])
def test_i_sqrt_fast_exhaustive(bits):
    v = np.arange(0, 1 << bits, dtype=np.int64)
    want = np.array([math.isqrt(int(x)) for x in v], dtype=np.int64)
    assert np.array_equal(fa.i_sqrt(v), want)
    torch = _torch()
    assert np.array_equal(fa.i_sqrt(torch.from_numpy(v)).numpy(), want)


def test_i_exp_approximates_exp():
    # Published: the second-order polynomial on [-ln2, 0] is within ~1.9e-3 of exp (I-BERT, Sec. 3.4); with
    # integer rounding of the constants at s = 2^-10 the product stays within 1% (relative) of exp(s*x).
    s = "0.0009765625"
    _, _, _, so = ex.exp_constants(s)
    for x in range(-5000, 1, 7):
        got = ex.i_exp(x, s) * so / 2**30
        want = math.exp(x * float(s))
        assert abs(float(got) / want - 1) < 0.01, x


def test_i_gelu_approximates_gelu():
    # I-BERT reports i-GELU's L2/Linf distance to GELU at 0.0082 / 0.018 on [-4, 4] (paper, Table 1).
    s = "0.0001"
    _, _, se = ex.erf_constants(s)
    for xr in np.linspace(-4, 4, 801):
        x = round(xr / 1e-4)
        got = float(ex.i_gelu(x, s) * Fraction(s) * se / 2)
        want = x * 1e-4 * 0.5 * (1 + math.erf(x * 1e-4 / math.sqrt(2)))
        assert abs(got - want) < 0.02, xr


def test_bad_input():
    with pytest.raises(BadValueError):
        ex.i_sqrt(-1)
    with pytest.raises(BadValueError):
        ex.ibert_layernorm([5, 5, 5])
    with pytest.raises(SpecError):
        parse_spec("ibert_softmax(n=30)")
    with pytest.raises(BadValueError):
        fa.ibert_layernorm(np.array([[5, 5, 5]]))


def test_spec_ids_and_run_spec():
    sp = parse_spec("ibert_softmax(scale=0.05)")
    assert str(sp) == "ibert_softmax(scale=0.05,n=30,out_bits=8,act_bits=16)"
    assert ex.run_spec(sp, [3, 1, 0]) == ex.ibert_softmax([3, 1, 0], "0.05")
    assert ex.run_spec("ibert_sqrt()", 99) == 9


# ------------------------------------------------------------------ exact vs numpy vs torch
def test_i_exp_exhaustive_int16():
    torch = _torch()
    xs = np.arange(-(1 << 15), 1, dtype=np.int64)
    for s in EXP_SCALES:
        want = np.array([ex.i_exp(int(x), s) for x in xs], dtype=np.int64)
        assert np.array_equal(fa.i_exp(xs, s), want), s
        assert np.array_equal(fa.i_exp(torch.from_numpy(xs), s).numpy(), want), s


def test_i_erf_and_gelu_exhaustive_int16():
    torch = _torch()
    xs = np.arange(-(1 << 15), 1 << 15, dtype=np.int64)
    for s in GELU_SCALES:
        b, c, _ = ex.erf_constants(s)
        want = np.array([ex.i_erf_int(int(x), b, c) for x in xs], dtype=np.int64)
        assert np.array_equal(fa.i_erf(xs, s), want), s
        want = np.array([ex.i_gelu(int(x), s) for x in xs], dtype=np.int64)
        assert np.array_equal(fa.i_gelu(xs, s), want), s
        assert np.array_equal(fa.i_gelu(torch.from_numpy(xs), s).numpy(), want), s


def _compare_rows(fn_exact, fn_fast, X, *args):
    torch = _torch()
    want = np.array([fn_exact([int(v) for v in r], *args) for r in X], dtype=np.int64)
    assert np.array_equal(fn_fast(X, *args), want), args
    assert np.array_equal(fn_fast(torch.from_numpy(X), *args).numpy(), want), args


@pytest.mark.parametrize("size", [1 << 15, pytest.param(1 << 20, marks=pytest.mark.slow)])
@pytest.mark.parametrize("act_bits", [16, 0])
def test_softmax_random_rows(act_bits, size):
    rng = np.random.default_rng(5)
    for s in EXP_SCALES:
        for length in (1, 3, 16, 128):
            X = rng.integers(-128, 128, size=(max(1, size // (len(EXP_SCALES) * 4 * length)), length))
            _compare_rows(ex.ibert_softmax, fa.ibert_softmax, X, s, 30, 8, act_bits)


def test_layernorm_random_rows():
    rng = np.random.default_rng(6)
    for shift in (0, 2):
        for length in (2, 8, 192):
            X = rng.integers(-4096, 4096, size=(max(1, 8000 // length), length))
            X[:, 0] = 5000  # never constant
            _compare_rows(ex.ibert_layernorm, fa.ibert_layernorm, X, shift)


def test_scale_string_is_the_python_float_literal_then_float32():
    """A decimal scale is read as the Python float literal and then held as float32 (two roundings, as
    torch.tensor(float(s)) does): 1 + 2^-24 + 2^-60 goes to binary64 1 + 2^-24, then ties to even 1.0, where a
    single rounding of the decimal to binary32 would give 1 + 2^-23."""
    from refarith.exact.ibert import parse_scale

    x = Fraction(1) + Fraction(1, 2**24) + Fraction(1, 2**60)
    s = f"{x.numerator * 5**60}e-60"  # the exact decimal of the dyadic x
    assert Fraction(s) == x
    assert parse_scale(s) == Fraction(float(np.float32(float(s)))) == 1
    assert parse_scale(x) == 1 + Fraction(1, 2**23)  # a Fraction is rounded once
