"""numpy requantization kernels (refarith.fast.requant) against the exact model, with torch absent or present.

Small, boundary-dense inputs so every branch (scalar and array shifts, saturation thresholds, every shift of a
variant's range, range checks and their messages) is decided; expected values come from refarith.exact.requant.
"""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import requant as ex
from refarith.fast import requant as fx

MIN, MAX = -(1 << 31), (1 << 31) - 1
EDGES = [MIN, MIN + 1, -(1 << 30) - 1, -(1 << 30), -(1 << 30) + 1, -65537, -65536, -3, -2, -1, 0, 1, 2, 3, 65535,
         65536, (1 << 30) - 1, 1 << 30, (1 << 30) + 1, MAX - 1, MAX]


def _inputs(seed: int, n: int = 600) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(MIN, MAX, n, endpoint=True)
    x >>= rng.integers(0, 31, n)  # every magnitude
    return np.concatenate([np.array(EDGES, dtype=np.int64), x])


def _want(f, *cols) -> np.ndarray:
    return np.array([f(*(int(c) for c in t)) for t in zip(*cols)], dtype=np.int64)


def _want1(f, x, *args) -> np.ndarray:
    """f(v, *args) for every element v of x."""
    return np.array([f(int(v), *args) for v in x], dtype=np.int64)


def test_srdhm_pairs_of_edges():
    a, b = np.meshgrid(np.array(EDGES), np.array(EDGES))
    a, b = a.ravel(), b.ravel()
    got = fx.srdhm(a, b)
    assert got.dtype == np.int32
    assert np.array_equal(got, _want(ex.srdhm, a, b))
    x = _inputs(1)
    y = _inputs(2)
    assert np.array_equal(fx.srdhm(x, y), _want(ex.srdhm, x, y))
    assert int(fx.srdhm(MIN, MIN)) == MAX
    assert int(fx.srdhm(np.int64(MIN), MIN)) == MAX


@pytest.mark.parametrize("array_exponent", [False, True])
def test_rdbpot_every_exponent(array_exponent):
    x = _inputs(3, 200)
    for e in range(32):
        ee = np.full(x.shape, e) if array_exponent else e
        got = fx.rdbpot(x, ee)
        assert got.dtype == np.int32
        assert np.array_equal(got, _want1(ex.rdbpot, x, e)), e


def test_rdbpot_mixed_exponent_array():
    x = _inputs(4, 2000)
    e = np.random.default_rng(5).integers(0, 31, x.size, endpoint=True)
    assert np.array_equal(fx.rdbpot(x, e), _want(ex.rdbpot, x, e))


def test_srmbp_every_exponent_and_thresholds():
    for e in range(-31, 32):
        x = _inputs(100 + e, 150)
        if e > 0:
            th = (1 << (31 - e)) - 1
            x = np.concatenate([x, [th - 1, th, th + 1, -th - 1, -th, -th + 1]])
        got = fx.saturating_rounding_mul_by_pot(x, e)
        assert got.dtype == np.int32
        assert np.array_equal(got, _want1(ex.saturating_rounding_mul_by_pot, x, e)), e


@pytest.mark.parametrize("bad", [32, -32, True, 1.0, np.int64(3)])
def test_srmbp_bad_exponent(bad):
    with pytest.raises(BadValueError, match=r"^exponent must be an int in \[-31, 31\], got "):
        fx.saturating_rounding_mul_by_pot(np.array([1]), bad)


def test_srmbp_accepts_extreme_exponents():
    assert np.array_equal(fx.saturating_rounding_mul_by_pot(np.array([MIN, MAX, 1, -1]), 31),
                          [MIN, MAX, MAX, MIN])
    assert np.array_equal(fx.saturating_rounding_mul_by_pot(np.array([MIN, MAX, 1 << 30, -(1 << 30)]), -31),
                          [ex.saturating_rounding_mul_by_pot(v, -31) for v in (MIN, MAX, 1 << 30, -(1 << 30))])


MULTS = {
    "tflite_double_rounding": [MIN, -(1 << 30), -1, 0, 1, 1 << 30, 1518500250, MAX],
    "tflite_single_rounding": [0, 1, 1 << 30, 1518500250, MAX - 1, MAX],
    "cmsis_single_rounding": [MIN, -(1 << 30), -1, 0, 1, 1 << 30, 1518500250, MAX],
    "hawq_sim": [0, 1, 3, 1 << 30, 1518500250, MAX, 1 << 31],
    "hawq_deployed": [0, 1, 3, 1 << 30, 1518500250, MAX, 1 << 31],
}
SHIFTS = {"tflite_double_rounding": (-31, 30), "tflite_single_rounding": (-31, 30),
          "cmsis_single_rounding": (-31, 30), "hawq_sim": (1, 62), "hawq_deployed": (1, 62)}


@pytest.mark.parametrize("variant", list(MULTS))
def test_multiply_every_shift_scalar_and_array(variant):
    x = _inputs(20, 40)
    lo, hi = SHIFTS[variant]
    for m in MULTS[variant]:
        for sh in range(lo, hi + 1):
            want = _want1(ex.multiply, x, m, sh, variant)
            got = fx.multiply(x, m, sh, variant)
            assert np.array_equal(got, want), (m, sh)
            assert np.array_equal(fx.multiply(x, np.full(x.shape, m), np.full(x.shape, sh), variant), want), (m, sh)


@pytest.mark.parametrize("variant", list(MULTS))
def test_multiply_mixed_arrays(variant):
    rng = np.random.default_rng(30)
    x = _inputs(31, 3000)
    lo, hi = SHIFTS[variant]
    sh = rng.integers(lo, hi, x.size, endpoint=True)
    m = rng.choice(np.array(MULTS[variant]), x.size)
    want = _want(lambda a, b, c: ex.multiply(a, b, c, variant), x, m, sh)
    assert np.array_equal(fx.multiply(x, m, sh, variant), want)


def test_wrappers_return_int32_exact_values():
    x = _inputs(40, 300)
    for f, g in ((fx.tflite_double_rounding, ex.tflite_double_rounding),
                 (fx.tflite_single_rounding, ex.tflite_single_rounding),
                 (fx.cmsis_single_rounding, ex.cmsis_single_rounding)):
        for m, sh in ((1518500250, -3), (MAX, 0), (1 << 30, 5), (1 << 30, -31), (MAX, 30)):
            got = f(x, m, sh)
            assert got.dtype == np.int32
            assert np.array_equal(got, _want1(g, x, m, sh)), (f.__name__, m, sh)


def test_default_variant_is_tflite_double_rounding():
    x = _inputs(41, 300)
    want = _want1(ex.tflite_double_rounding, x, 1 << 30, 3)
    assert np.array_equal(fx.multiply(x, 1 << 30, 3), want)
    want = np.clip(want, -128, 127)
    got = fx.requantize(x, 1 << 30, 3)
    assert got.dtype == np.int32
    assert np.array_equal(got, want)


@pytest.mark.parametrize("variant", list(MULTS))
def test_requantize_zero_point_and_clamp(variant):
    x = _inputs(50, 400) >> 8
    m = MULTS[variant][-2]
    sh = -7 if not variant.startswith("hawq") else 40
    for zp, lo, hi in ((0, -128, 127), (-7, -128, 127), (128, 0, 255), (3, -(1 << 31), (1 << 31) - 1)):
        want = np.array([min(max(ex.multiply(int(a), m, sh, variant) + zp, lo), hi) for a in x], dtype=np.int64)
        got = fx.requantize(x, m, sh, variant, zp, lo, hi)
        assert got.dtype == np.int32
        assert np.array_equal(got, want), (zp, lo, hi)


def test_requantize_wide_output_range_stays_int64():
    x = np.array([MIN, -1, 0, 1, MAX])
    got = fx.requantize(x, 1 << 31, 8, "hawq_deployed", 0, -(1 << 40), 1 << 40)
    assert got.dtype == np.int64
    assert got.tolist() == [min(max(ex.hawq_deployed(int(v), 1 << 31, 8), -(1 << 40)), 1 << 40) for v in x]
    assert got.tolist()[0] == -(1 << 40) < MIN
    for lo, hi in ((MIN - 1, 0), (0, MAX + 1)):
        assert fx.requantize(x, 1 << 30, 1, "hawq_deployed", 0, lo, hi).dtype == np.int64
    assert fx.requantize(x, 1 << 30, 1, "hawq_deployed", 0, MIN, MAX).dtype == np.int32


def test_unknown_variant_message():
    with pytest.raises(UnknownModeError, match=r"^unknown requantization variant 'nope'; known: "
                                               r"tflite_double_rounding, tflite_single_rounding, "):
        fx.multiply(np.array([1]), 1, 1, "nope")


@pytest.mark.parametrize("call,msg", [
    (lambda: fx.srdhm(np.array([MAX + 1]), 1), r"^a outside \[-2147483648, 2147483647\]$"),
    (lambda: fx.srdhm(np.array([MIN - 1]), 1), r"^a outside \["),
    (lambda: fx.srdhm(1, np.array([MIN - 1])), r"^b outside \[-2147483648, 2147483647\]$"),
    (lambda: fx.srdhm(np.array([1.0]), 1), r"^a must hold integers$"),
    (lambda: fx.srdhm(True, 1), r"^a must hold integers$"),
    (lambda: fx.srdhm(MAX + 1, 1), r"^a outside "),
    (lambda: fx.srdhm(MIN - 1, 1), r"^a outside "),
    (lambda: fx.rdbpot(np.array([1]), 32), r"^exponent outside \[0, 31\]$"),
    (lambda: fx.rdbpot(np.array([1]), -1), r"^exponent outside \[0, 31\]$"),
    (lambda: fx.rdbpot(np.array([1]), np.array([0, 32])), r"^exponent outside \[0, 31\]$"),
    (lambda: fx.rdbpot(np.array([MAX + 1]), 1), r"^x outside "),
    (lambda: fx.saturating_rounding_mul_by_pot(np.array([MIN - 1]), 1), r"^x outside "),
    (lambda: fx.multiply(np.array([MAX + 1]), 1, 1), r"^x outside "),
    (lambda: fx.multiply(np.array([1]), MAX + 1, 1), r"^multiplier outside \[-2147483648, 2147483647\]$"),
    (lambda: fx.multiply(np.array([1]), MIN - 1, 1), r"^multiplier outside "),
    (lambda: fx.multiply(np.array([1]), -1, 1, "tflite_single_rounding"), r"^multiplier outside \[0, 2147483647\]$"),
    (lambda: fx.multiply(np.array([1]), 1, 31), r"^shift outside \[-31, 30\]$"),
    (lambda: fx.multiply(np.array([1]), 1, -32), r"^shift outside \[-31, 30\]$"),
    (lambda: fx.multiply(np.array([1]), 1, np.array([31])), r"^shift outside "),
    (lambda: fx.multiply(np.array([MAX + 1]), 1, 1, "hawq_sim"), r"^acc outside \[-2147483648, 2147483647\]$"),
    (lambda: fx.multiply(np.array([1]), (1 << 31) + 1, 1, "hawq_sim"), r"^b outside \[0, 2147483648\]$"),
    (lambda: fx.multiply(np.array([1]), -1, 1, "hawq_deployed"), r"^b outside \[0, 2147483648\]$"),
    (lambda: fx.multiply(np.array([1]), 1, 0, "hawq_sim"), r"^c outside \[1, 62\]$"),
    (lambda: fx.multiply(np.array([1]), 1, 63, "hawq_deployed"), r"^c outside \[1, 62\]$"),
    (lambda: fx.multiply(np.array([1]), 1.5, 1), r"^multiplier must hold integers$"),
])
def test_range_checks_name_the_operand(call, msg):
    with pytest.raises(BadValueError, match=msg):
        call()


def test_range_checks_accept_the_bounds():
    for v in (MIN, MAX):
        assert int(fx.srdhm(v, 1 << 30)) == ex.srdhm(v, 1 << 30)
        assert int(fx.srdhm(np.array([v]), np.array([v]))[0]) == ex.srdhm(v, v)
    assert np.array_equal(fx.rdbpot(np.array([5, -5]), np.array([0, 31])), [5, 0])
    assert int(fx.multiply(np.array([7]), 1 << 31, 62, "hawq_sim")[0]) == ex.hawq_sim(7, 1 << 31, 62)
    assert int(fx.multiply(np.array([7]), 0, 1, "hawq_deployed")[0]) == 0
    assert int(fx.multiply(np.array([7]), 0, -31, "tflite_single_rounding")[0]) == 0
    assert int(fx.multiply(np.array([MAX]), MAX, 30, "cmsis_single_rounding")[0]) == ex.cmsis_single_rounding(
        MAX, MAX, 30)


def test_numpy_backend_helpers():
    xp = fx.backend(np.array([1]), 3)
    assert xp is fx._NP and xp.name == "numpy"
    assert xp.pow2(np.array([0, 1, 62])).tolist() == [1, 2, 1 << 62]
    assert xp.pow2(np.array([5])).dtype == np.int64
    assert xp.amin(np.array([3, -2, 7])) == -2 and xp.amax(np.array([3, -2, 7])) == 7
    assert xp.is_int(np.array([1], dtype=np.uint8)) and not xp.is_int(np.array([1.0]))
    assert xp.i64([1, 2]).dtype == np.int64 and xp.i32(np.array([1], dtype=np.int64)).dtype == np.int32
    assert xp.clip(np.array([-5, 0, 5]), -1, 2).tolist() == [-1, 0, 2]
    assert xp.where(np.array([True, False]), 1, 2).tolist() == [1, 2]
    assert fx.wrap32(np.array([MAX + 1, MIN - 1, 5, -(1 << 32) + 3], dtype=np.int64)).tolist() == [
        ex.wrap(v) for v in (MAX + 1, MIN - 1, 5, -(1 << 32) + 3)]


@pytest.mark.parametrize("variant", list(MULTS))
def test_multiplier_and_shift_arrays_of_any_integer_dtype(variant):
    """Multipliers and shifts arrive as arrays of any integer dtype: the kernel widens them to int64 first
    (uint64 times int64 would be float64 in numpy; a negated unsigned shift would wrap)."""
    x = _inputs(60, 200)
    lo, hi = SHIFTS[variant]
    rng = np.random.default_rng(61)
    sh = rng.integers(max(lo, 0), min(hi, 30), x.size, endpoint=True)
    m = rng.choice(np.array([v for v in MULTS[variant] if 0 <= v <= MAX]), x.size)
    want = _want(lambda a, b, c: ex.multiply(a, b, c, variant), x, m, sh)
    for mdt, sdt in ((np.uint64, np.uint8), (np.uint32, np.uint16), (np.int64, np.uint32), (np.uint64, np.int8)):
        assert np.array_equal(fx.multiply(x, m.astype(mdt), sh.astype(sdt), variant), want), (mdt, sdt)
    if not variant.startswith("hawq"):
        neg = -sh.astype(np.int8)
        want = _want(lambda a, b, c: ex.multiply(a, b, c, variant), x, m, neg)
        assert np.array_equal(fx.multiply(x, m.astype(np.uint64), neg, variant), want)


def test_torch_dispatch_from_any_argument():
    """A torch tensor in any argument position selects the torch kernel (result a tensor, same values)."""
    torch = pytest.importorskip("torch", reason="torch not installed: backend dispatch to torch untested")
    x = _inputs(70, 50)
    e = np.full(x.size, 3)
    t = torch.from_numpy
    want = _want1(ex.srdhm, x, 1 << 30)
    for a, b in ((t(x), 1 << 30), (x, t(np.full(x.size, 1 << 30)))):
        got = fx.srdhm(a, b)
        assert isinstance(got, torch.Tensor) and got.numpy().tolist() == want.tolist()
    want = _want1(ex.rdbpot, x, 3)
    for a, b in ((t(x), 3), (x, t(e))):
        got = fx.rdbpot(a, b)
        assert isinstance(got, torch.Tensor) and got.numpy().tolist() == want.tolist()
    got = fx.saturating_rounding_mul_by_pot(t(x), 2)
    assert isinstance(got, torch.Tensor) and got.numpy().tolist() == _want1(ex.saturating_rounding_mul_by_pot, x,
                                                                               2).tolist()
    m = np.full(x.size, 1518500250)
    for variant in ("tflite_double_rounding", "cmsis_single_rounding", "tflite_single_rounding"):
        want = _want1(ex.multiply, x, 1518500250, -3, variant)
        for args in ((t(x), 1518500250, -3), (x, t(m), -3), (x, 1518500250, t(np.full(x.size, -3)))):
            got = fx.multiply(*args, variant)
            assert isinstance(got, torch.Tensor) and got.numpy().tolist() == want.tolist(), variant
            got = fx.requantize(*args, variant, 0, MIN, MAX)
            assert isinstance(got, torch.Tensor) and got.numpy().tolist() == want.tolist(), variant
        f = getattr(fx, variant)
        got = f(t(x), 1518500250, -3)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.int32 and got.numpy().tolist() == want.tolist()
