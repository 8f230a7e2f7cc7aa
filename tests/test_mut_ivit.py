"""fast/ivit.py (numpy path) against refarith.exact.ivit with torch absent (tests/test_ivit.py compares the numpy
kernels only next to torch): shift-exp at the clamp, the shift bounds and the int32 wraps, Shiftmax/ShiftGELU
rows with every out_bits edge, rank-1 and rank-3 inputs, I-LayerNorm mean ties and wraps, the Newton square root
with its parameters, and every refusal with its text.  Expected values from the exact model; the refusals from
the documented domain of the fast kernels."""

from __future__ import annotations

import re

import numpy as np
import pytest

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import ivit as ex
from refarith.fast import ivit as fa

VARIANTS = ex.VARIANTS
SCALES = ("0.5", "0.1", "0.0078125", "0.003")


def _rows(fn_exact, X, *args, **kw):
    X = np.asarray(X, dtype=np.int64)
    flat = X.reshape(-1, X.shape[-1])
    return np.array([fn_exact([int(v) for v in r], *args, **kw) for r in flat], dtype=np.int64).reshape(X.shape)


def _check_rows(fn_exact, fn_fast, X, *args, **kw):
    got = fn_fast(np.asarray(X, dtype=np.int64), *args, **kw)
    assert isinstance(got, np.ndarray) and got.dtype == np.int64
    want = _rows(fn_exact, X, *args, **kw)
    assert got.shape == want.shape and np.array_equal(got, want), (args, kw)


def _whole(msg: str) -> str:
    """A pytest.raises pattern for exactly this message."""
    return "^" + re.escape(msg) + "$"


# ------------------------------------------------------------------ shift-exp
@pytest.mark.parametrize("variant", VARIANTS)
def test_shift_exp_around_the_clamp_and_zero(variant):
    for scale in SCALES:
        x0 = ex.x0_int(scale, variant)
        for n in (None, 0, 1, 7, 20):
            nn = ex.SOFTMAX_N[variant] if n is None else n
            # log2e_shift(x) = n * x0 near x = n * x0 / 1.4375; every residue of x0 on both sides of it
            c = (nn * x0 * 16) // 23
            xs = np.unique(np.concatenate([np.arange(c - 3 * abs(x0) - 5, c + 3 * abs(x0) + 5),
                                           np.arange(-40, 1), [c - 1000, 2 * c - 7]])).astype(np.int64)
            if variant == "ivit_torch":
                xs = np.concatenate([xs, np.arange(1, 6)])
            want = [ex.shift_exp(int(x), x0, nn, variant) for x in xs]
            kw = {} if n is None else {"n": n}
            got = fa.shift_exp_array(xs, scale, variant, **kw)
            assert got.tolist() == want, (scale, n)


def test_shift_exp_of_lists_and_scalars():
    x0 = ex.x0_int("0.1", "ivit_tvm")
    assert fa.shift_exp_array([-3, 0, -17], "0.1", "ivit_tvm").tolist() == \
        [ex.shift_exp(v, x0, 16, "ivit_tvm") for v in (-3, 0, -17)]
    assert int(fa.shift_exp_array(-5, "0.1", "ivit_torch")) == ex.shift_exp(-5, ex.x0_int("0.1", "ivit_torch"), 15,
                                                                              "ivit_torch")


def test_shift_exp_int32_wrap_of_the_tvm_kernel():
    """Inputs outside int32 wrap first; log2e_shift wraps below about -2^31 / 1.4375 (then the shift count leaves
    [0, 31] and the kernel refuses, as the exact model does)."""
    x0 = ex.x0_int("0.5", "ivit_tvm")
    xs = [(1 << 32) - 3, (1 << 32), -(1 << 32) - 1, (1 << 33) + 5, 2 * -(1 << 31) + 2]
    want = [ex.shift_exp(v, x0, 16, "ivit_tvm") for v in xs]
    assert fa.shift_exp_array(np.array(xs), "0.5", "ivit_tvm").tolist() == want
    big = -1493901669  # log2e_shift(big) < -2^31 wraps to a positive y: q < 0, so k = n - q > 31
    with pytest.raises(BadValueError) as exact_err:
        ex.shift_exp(big, x0, 16, "ivit_tvm")
    assert "outside [0, 31]" in str(exact_err.value)
    with pytest.raises(BadValueError, match=_whole("shift count outside [0, 31] in the int32 kernel")):
        fa.shift_exp_array(np.array([0, big]), "0.5", "ivit_tvm")
    with pytest.raises(BadValueError, match=_whole("shift count outside [0, 31] in the int32 kernel")):
        fa.shift_exp_array(np.array([0]), "0.5", "ivit_tvm", n=32)  # k = n - q = 32 at x = 0
    assert fa.shift_exp_array(np.array([0]), "0.5", "ivit_tvm", n=31).tolist() == \
        [ex.shift_exp(0, x0, 31, "ivit_tvm")]


def test_shift_exp_int64_bound_of_the_torch_variant():
    """The torch-variant kernel refuses a shift whose result leaves int64: k - 1 + bitlen(2|x0|) > 62."""
    x0 = ex.x0_int("0.5", "ivit_torch")  # -2: bitlen(4) = 3, so k = 60 is the largest shift accepted
    assert x0 == -2
    for n, ok in ((60, True), (61, False)):
        if ok:
            assert fa.shift_exp_array(np.array([0, -1]), "0.5", "ivit_torch", n).tolist() == \
                [ex.shift_exp(v, x0, n, "ivit_torch") for v in (0, -1)]
        else:
            with pytest.raises(BadValueError, match=_whole("shift-exp result exceeds int64 (shift 61); outside "
                                                              "the fast kernels' domain")):
                fa.shift_exp_array(np.array([0, -1]), "0.5", "ivit_torch", n)
    assert fa.shift_exp_array(np.zeros(0, np.int64), "0.5", "ivit_torch").tolist() == []


def test_input_limit_is_2_to_the_40():
    lim = 1 << 40
    x0 = ex.x0_int("0.003", "ivit_torch")
    assert fa.shift_exp_array(np.array([-lim]), "0.003", "ivit_torch").tolist() == \
        [ex.shift_exp(-lim, x0, 15, "ivit_torch")]
    msg = "input magnitude above 2^40 is outside the fast kernels' domain"
    for fn in (lambda a: fa.shift_exp_array(a, "0.003", "ivit_torch"), lambda a: fa.shiftmax(a, "0.1", "ivit_tvm"),
               lambda a: fa.shiftgelu(a, "0.1", "ivit_tvm")):
        for bad in (-lim - 1, lim + 1):
            with pytest.raises(BadValueError, match=_whole(msg)):
                fn(np.array([[0, bad]]))


# ------------------------------------------------------------------ shiftmax
@pytest.mark.parametrize("variant", VARIANTS)
def test_shiftmax_rows(variant):
    rng = np.random.default_rng(1)
    for scale in SCALES:
        for length in (1, 3, 17):
            X = rng.integers(-128, 128, (6, length))
            X[0] = 0
            X[1, 0] = 127
            _check_rows(ex.shiftmax, fa.shiftmax, X, scale, variant)
    X = rng.integers(-300, 300, (2, 3, 5))
    for out_bits in (2, 3, 8, 16, 31):
        _check_rows(ex.shiftmax, fa.shiftmax, X, "0.05", variant, out_bits=out_bits)
    for n in (0, 4, 20):
        _check_rows(ex.shiftmax, fa.shiftmax, X, "0.05", variant, n=n)
    assert fa.shiftmax([3, 1, 0], "0.1", variant).tolist() == ex.shiftmax([3, 1, 0], "0.1", variant)


def test_shiftmax_wraps_and_clamps():
    """2^11 zeros at scale 2^-7 (tests/test_ivit.py's hand-worked row): tvm's sum wraps, torch's sum clamps."""
    row = np.zeros((1, 1 << 11), np.int64)
    assert fa.shiftmax(row, "0.0078125", "ivit_tvm").tolist() == [[7] * (1 << 11)]
    assert fa.shiftmax(row, "0.0078125", "ivit_torch").tolist() == [[0] * (1 << 11)]
    # tvm: int32 inputs wrap before the max is taken; the output wraps to out_bits
    X = np.array([[(1 << 32) + 5, 3, -2, 7], [(1 << 32) + 1, 1, 0, 0], [-(1 << 32) - 1, 0, 5, 1]])
    for out_bits in (2, 8, 31):
        _check_rows(ex.shiftmax, fa.shiftmax, X, "0.5", "ivit_tvm", out_bits=out_bits)
    # out_bits 31 and a single entry: f * e near 2^31 wraps and the output field wraps too
    for scale in ("0.5", "0.1", "0.003"):
        for n in (14, 15, 16):
            _check_rows(ex.shiftmax, fa.shiftmax, np.array([[0], [0]]), scale, "ivit_tvm", n=n, out_bits=31)
            _check_rows(ex.shiftmax, fa.shiftmax, np.array([[0, -1], [0, 0]]), scale, "ivit_tvm", n=n, out_bits=2)


def test_shiftmax_refusals():
    msg = "out_bits must be in [2, 31], got {}"
    for variant in VARIANTS:
        for bad in (1, 32):
            with pytest.raises(BadValueError, match=_whole(msg.format(bad))):
                fa.shiftmax(np.array([[0, 1]]), "0.1", variant, out_bits=bad)
        with pytest.raises(BadValueError, match=_whole("shiftmax of an empty row")):
            fa.shiftmax(np.zeros((2, 0), np.int64), "0.1", variant)
        with pytest.raises(UnknownModeError):
            fa.shiftmax(np.array([[0]]), "0.1", variant + "x")
    # torch variant: e = 2^60 at x = max with n = 59 and x0 = -2 (e = 4 << 58), two entries: 61 + 2 bits > 62
    x0 = ex.x0_int("0.5", "ivit_torch")
    assert ex.shift_exp(0, x0, 59, "ivit_torch") == 1 << 60
    with pytest.raises(BadValueError, match=_whole("shiftmax row sum exceeds int64; outside the fast kernels' "
                                                      "domain")):
        fa.shiftmax(np.array([[0, 0]]), "0.5", "ivit_torch", n=59)
    _check_rows(ex.shiftmax, fa.shiftmax, np.array([[0]]), "0.5", "ivit_torch", n=59)  # 61 + 1 bits: accepted
    # tvm: a sum that wraps to exactly 0 is a division by zero: 2^12 entries of 17 * 2^20 (x0 = -17, n = 20)
    sc = "0.0625"
    assert ex.x0_int(sc, "ivit_tvm") == -17 and ex.shift_exp(0, -17, 20, "ivit_tvm") == 17 << 20
    reps = 1 << 12
    with pytest.raises(BadValueError, match=_whole("integer division by zero")):
        ex.shiftmax([0] * reps, sc, "ivit_tvm", n=20)
    with pytest.raises(BadValueError, match=_whole("integer division by zero")):
        fa.shiftmax(np.zeros((1, reps), np.int64), sc, "ivit_tvm", n=20)
    _check_rows(ex.shiftmax, fa.shiftmax, np.zeros((1, reps - 1), np.int64), sc, "ivit_tvm", n=20)


# ------------------------------------------------------------------ shiftgelu
@pytest.mark.parametrize("variant", VARIANTS)
def test_shiftgelu_rows(variant):
    rng = np.random.default_rng(2)
    for scale in SCALES:
        for length in (1, 4, 19):
            X = rng.integers(-128, 128, (6, length))
            X[:, 0] = np.abs(X[:, 0])
            X[0] = 0
            _check_rows(ex.shiftgelu, fa.shiftgelu, X, scale, variant)
    X = np.abs(rng.integers(-60, 60, (2, 3, 5)))
    X[..., 1:] -= 70
    for out_bits in (2, 8, 16):
        _check_rows(ex.shiftgelu, fa.shiftgelu, X, "0.1", variant, out_bits=out_bits)
    for n in (0, 5, 22):
        _check_rows(ex.shiftgelu, fa.shiftgelu, X, "0.1", variant, n=n)


def test_shiftgelu_wraps_and_refusals():
    X = np.array([[(1 << 32) + 5, 3, 2, 7], [(1 << 32) + 1, 1, 0, 0], [40000, 39000, -5, 1]])
    for out_bits in (8, 20):
        _check_rows(ex.shiftgelu, fa.shiftgelu, X, "0.5", "ivit_tvm", out_bits=out_bits)
    with pytest.raises(BadValueError, match=_whole("shiftgelu of an empty row")):
        fa.shiftgelu(np.zeros((2, 0), np.int64), "0.1", "ivit_torch")
    with pytest.raises(UnknownModeError):
        fa.shiftgelu(np.array([[0]]), "0.1", "ivit")
    # torch variant: shift_exp(-m) for a negative row max m shifts left.  t = r - 2 x0 <= 2|x0|, so the shift
    # check (k - 1 + bitlen(2|x0|) <= 62) leaves em < 2^62; em = 2|x0| << 59 (r = 0, k = 60) has 62 bits and is
    # refused.  Scale 0.25: gelu x0 = -3; m = -77: log2e_shift(77) = 111 = 37 * 3, so q = -37, k = 23 + 37 = 60.
    assert ex.gelu_x0("0.25", "ivit_torch") == -3
    em = ex.shift_exp(77, -3, 23, "ivit_torch")
    assert em == 6 << 59 and em.bit_length() == 62
    with pytest.raises(BadValueError, match=_whole("shiftgelu sigmoid denominator exceeds int64; outside the fast "
                                                   "kernels' domain")):
        fa.shiftgelu(np.array([[-77, -80], [5, 0]]), "0.25", "ivit_torch")
    # accepted: em with 61 bits (scale 0.5, x0 = -2, m = -51: k = 60, r = -1, t = 3)
    assert ex.shift_exp(51, ex.gelu_x0("0.5", "ivit_torch"), 23, "ivit_torch").bit_length() == 61
    _check_rows(ex.shiftgelu, fa.shiftgelu, np.array([[-51, -52, -60], [-50, -51, -200]]), "0.5", "ivit_torch")
    _check_rows(ex.shiftgelu, fa.shiftgelu, np.array([[-74, -80]]), "0.25", "ivit_torch")

# ------------------------------------------------------------------ newton sqrt and layernorm
@pytest.mark.parametrize("variant", VARIANTS)
def test_newton_sqrt_values_and_parameters(variant):
    v = np.concatenate([np.arange(0, 300), [1 << 16, (1 << 16) + 1, (1 << 30) - 1, 1 << 30, (1 << 32) - 1, 1 << 32,
                                             (1 << 32) + 7, (1 << 40) + 3, 4549339, 123456789]]).astype(np.int64)
    for kw in ({}, {"iters": 3}, {"iters": 16}, {"iters": 25}, {"start": 5}, {"start": 1 << 20, "iters": 12}):
        # v = 0 (mod 2^32 for tvm) halves k to 0 within these iterations: 0 // 0
        vv = v if kw.get("iters", 10) < 16 and "start" not in kw else v[(v & 0xFFFFFFFF) != 0]
        want = [ex.newton_sqrt(int(a), variant, **kw) for a in vv]
        assert fa.newton_sqrt(vv, variant, **kw).tolist() == want, kw
    assert int(fa.newton_sqrt(12345, variant)) == ex.newton_sqrt(12345, variant)


def test_newton_sqrt_negative_inputs():
    neg = np.array([-1, -5, -(1 << 31)])
    assert fa.newton_sqrt(neg, "ivit_tvm").tolist() == [ex.newton_sqrt(int(a), "ivit_tvm") for a in neg]
    with pytest.raises(BadValueError, match=_whole("square root of a negative value")):
        fa.newton_sqrt(np.array([4, -1]), "ivit_torch")
    with pytest.raises(UnknownModeError):
        fa.newton_sqrt(np.array([4]), "tvm")


@pytest.mark.parametrize("variant", VARIANTS)
def test_ilayernorm_rows(variant):
    rng = np.random.default_rng(3)
    for length in (1, 2, 3, 4, 8, 33):
        for lo, hi in ((-128, 128), (-5000, 5000), (-2, 3)):
            _check_rows(ex.ilayernorm, fa.ilayernorm, rng.integers(lo, hi, (5, length)), variant)
    # means that are ties (sum / d = q + 1/2), of both parities and signs, and near ties
    ties = np.array([[0, 1], [1, 2], [-1, 0], [-2, -1], [0, 3], [1, 4], [0, 0, 0, 1], [0, 0, 1, 1], [0, 1, 1, 1],
                     [0, 0, 1, 2], [0, 0, 2, 3], [-3, 0, 0, 0], [-2, -1, 0, 0], [5, 0, 0, 0]][:6])
    _check_rows(ex.ilayernorm, fa.ilayernorm, ties, variant)
    ties4 = np.array([[0, 0, 0, 1], [0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 1, 2], [0, 0, 2, 3], [0, 0, 3, 3],
                      [-3, 0, 0, 0], [-2, -1, 0, 0], [-5, 0, 0, 0], [-6, 0, 0, 0], [6, 0, 0, 0], [7, 7, 7, 9]])
    _check_rows(ex.ilayernorm, fa.ilayernorm, ties4, variant)
    _check_rows(ex.ilayernorm, fa.ilayernorm, rng.integers(-50, 50, (2, 3, 6)), variant)
    big = 1 << 28
    _check_rows(ex.ilayernorm, fa.ilayernorm, np.array([[big, -big, 3], [big, big, big - 1]]), variant)


def test_ilayernorm_tvm_wraps():
    X = np.array([[(1 << 31) - 1, (1 << 31) - 1, 5], [1 << 20, -(1 << 20), 1 << 19], [(1 << 32) + 3, 1, 2],
                  [46341, -46341, 0], [1 << 16, 1 << 16, -(1 << 16)]])
    _check_rows(ex.ilayernorm, fa.ilayernorm, X, "ivit_tvm")


def test_ilayernorm_refusals():
    big = (1 << 28) + 1
    msg = "layernorm input outside the fast kernels' domain (|x| <= 2^28, dim <= 2^20)"
    for bad in (big, -big):
        with pytest.raises(BadValueError, match=_whole(msg)):
            fa.ilayernorm(np.array([[0, bad]]), "ivit_torch")
    with pytest.raises(BadValueError, match=_whole(msg)):
        fa.ilayernorm(np.zeros((1, (1 << 20) + 1), np.int64), "ivit_torch")
    ok = fa.ilayernorm(np.zeros((1, 1 << 20), np.int64), "ivit_torch")
    assert ok.shape == (1, 1 << 20) and not ok.any()
    for variant in VARIANTS:
        with pytest.raises(BadValueError, match=_whole("layernorm of an empty row")):
            fa.ilayernorm(np.zeros((3, 0), np.int64), variant)
        with pytest.raises(UnknownModeError):
            fa.ilayernorm(np.array([[1, 2]]), variant.upper())


def test_helpers():
    assert fa.backend_of([1, 2]) is fa.NP and fa.backend_of(np.array([1])) is fa.NP
    a = np.array([-7, -7, 7, 7, 0, -(1 << 40), 9])
    b = np.array([2, -2, 2, -2, 5, 3, -4])
    want = [ex.tdiv(int(p), int(q)) for p, q in zip(a, b)]
    assert fa.tdiv(fa.NP, a, b).tolist() == want
    with pytest.raises(BadValueError, match=_whole("integer division by zero")):
        fa.tdiv(fa.NP, a, np.array([1, 1, 1, 1, 0, 1, 1]))
    with pytest.raises(BadValueError, match=_whole("integer division by zero")):
        fa.tdiv(fa.NP, a, 0)
    # a Python int on either side, as the operators pass their constants
    assert fa.tdiv(fa.NP, a, -3).tolist() == [ex.tdiv(int(p), -3) for p in a]
    assert fa.tdiv(fa.NP, 2 ** 31 - 1, b).tolist() == [ex.tdiv(2 ** 31 - 1, int(q)) for q in b]
    v = np.array([(1 << 31) - 1, 1 << 31, -(1 << 31), -(1 << 31) - 1, (1 << 40) + 5])
    assert fa.wrap32(v).tolist() == [ex.wrap32(int(t)) for t in v]
    assert fa.NP.amax(np.zeros(0, np.int64)) == 0 and fa.NP.amax(np.array([3, -1])) == 3
    assert fa.NP.asint([1, 2]).dtype == np.int64


def test_narrow_integer_inputs_and_one_dimensional_rows():
    """int8 / int16 / int32 arrays (the operators' usual inputs) are widened to int64 first; a 1-D input is one
    row, a rank-3 input with an empty last axis is refused as an empty row."""
    rng = np.random.default_rng(8)
    x8 = rng.integers(-128, 128, (3, 9)).astype(np.int8)
    x8[:, 0] = np.abs(x8[:, 0].astype(np.int64)).clip(0, 127).astype(np.int8)
    for variant in VARIANTS:
        for dt in (np.int8, np.int16, np.int32):
            x = x8.astype(dt)
            _check_rows(ex.shiftmax, fa.shiftmax, x, "0.05", variant)
            _check_rows(ex.shiftgelu, fa.shiftgelu, x, "0.05", variant)
            _check_rows(ex.ilayernorm, fa.ilayernorm, x, variant)
            x0 = ex.x0_int("0.05", variant)
            n = ex.SOFTMAX_N[variant]
            neg = -np.abs(x.astype(np.int64)).astype(dt)
            assert fa.shift_exp_array(neg, "0.05", variant).tolist() == \
                [[ex.shift_exp(int(v), x0, n, variant) for v in r] for r in neg]
            assert fa.newton_sqrt(np.abs(x.astype(np.int64)).astype(dt), variant).tolist() == \
                [[ex.newton_sqrt(abs(int(v)), variant) for v in r] for r in x]
        row = [5, -3, 0, 7]
        assert fa.shiftgelu(np.array(row), "0.1", variant).tolist() == ex.shiftgelu(row, "0.1", variant)
        assert fa.shiftmax(np.array(row), "0.1", variant).tolist() == ex.shiftmax(row, "0.1", variant)
        assert fa.ilayernorm(np.array(row), variant).tolist() == ex.ilayernorm(row, variant)
        empty = np.zeros((2, 3, 0), np.int64)
        for fn, args in ((fa.shiftgelu, ("0.1", variant)), (fa.shiftmax, ("0.1", variant)),
                         (fa.ilayernorm, (variant,))):
            with pytest.raises(BadValueError, match="of an empty row$"):
                fn(empty, *args)


def test_shiftmax_row_sum_of_one():
    """Scale 1 gives x0 = -1; with n = 0 a one-entry row has e = 1, total 1: f = 2^31 - 1, output 127."""
    assert ex.x0_int("1", "ivit_torch") == -1 and ex.shiftmax([0], "1", "ivit_torch", 0) == [127]
    assert fa.shiftmax(np.array([[0], [5]]), "1", "ivit_torch", 0).tolist() == [[127], [127]]
    _check_rows(ex.shiftmax, fa.shiftmax, np.array([[0, -3], [2, 2]]), "1", "ivit_torch", n=0)


@pytest.mark.parametrize("variant", ["ivit_torch", "ivit_tvm"])
def test_newton_sqrt_refuses_a_zero_iterate_in_both_models(variant):
    # from 2^16, v = 0 halves the iterate to 0 after 17 steps: the 18th would divide by zero in either model
    # (ivit_tvm reads v modulo 2^32, so 2^32 is 0 there); 17 steps are defined and equal
    for v in (0, 1 << 32):
        want = "ivit_tvm" == variant or v == 0
        for f, arg in ((ex.newton_sqrt, v), (fa.newton_sqrt, np.array([v, 5], dtype=np.int64))):
            if want:
                with pytest.raises(BadValueError, match=r"iterate is 0 before step 18 of 18"):
                    f(arg, variant, iters=18)
            else:
                assert ex.newton_sqrt(v, variant, iters=18) == 1 << 16
        assert fa.newton_sqrt(np.array([v], dtype=np.int64), variant, iters=17).tolist() == \
            [ex.newton_sqrt(v, variant, iters=17)]
    for f in (ex.newton_sqrt, fa.newton_sqrt):
        with pytest.raises(BadValueError, match=r"^Newton square root: the start must be positive, got 0$"):
            f(5, variant, start=0)
