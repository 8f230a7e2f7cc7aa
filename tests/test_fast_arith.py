"""Fast add/sub/mul/div (refarith.fast.arith, binary64 arithmetic then one cast) against the exact model
(refarith.exact.ops): every code pair of the small formats in every rounding and overflow mode, random binary16
pairs, hand-worked roundings, signed zeros, NaN signs, and the formats it refuses.

Every pair of the 8-, 6- and 4-bit formats is compared with the independent reference of tests/test_exact_arith.py
(the exact rational result rounded by the bracketing search, which that file checks against the exact model on
the same pairs), and with the exact model itself on every pair whose result is NaN (the reference accepts any NaN
code, the model names one) plus every 41st pair: the exact model costs ~100 us a pair, the reference ~1 us."""

from __future__ import annotations

import numpy as np
import pytest
from independent import matches
from test_exact_arith import OPS as REF_OPS
from test_exact_arith import default_overflow, reference_pairs, vals

from refarith.errors import BadValueError, RefarithError, SpecialValueError, UnknownModeError
from refarith.exact import ops as E
from refarith.exact.rounding import DETERMINISTIC_MODES
from refarith.fast.arith import OPS, arith
from refarith.formats import get_format


def _overflows(f):
    return ["saturate"] + (["inf"] if f.has_inf else []) + (["nan"] if f.has_nan else [])


def _exact_codes(f, a, b, op, rounding, overflow, nan_policy) -> np.ndarray:
    want = []
    for x, y in zip(a.tolist(), b.tolist()):
        try:
            want.append(getattr(E, op)(x, y, f, rounding=rounding, overflow=overflow, nan_policy=nan_policy).code)
        except RefarithError:
            want.append(-1)
    want = np.array(want, dtype=np.int64)
    assert (want >= 0).all(), "choose a nan_policy under which the exact model does not raise"
    return want


def _compare(f, a, b, op, rounding, overflow, nan_policy, ok) -> None:
    """``ok(got, backend)``: a boolean array over the pairs; both backends must be all True."""
    got = np.asarray(arith(op, a, b, f, rounding, overflow, nan_policy)).astype(np.int64)
    bad = np.flatnonzero(~ok(got))
    assert bad.size == 0, (op, rounding, overflow, hex(a[bad[0]]), hex(b[bad[0]]), got[bad[0]])
    torch = pytest.importorskip("torch", reason="torch not importable: torch kernel not compared")
    got_t = arith(op, torch.as_tensor(a), torch.as_tensor(b), f, rounding, overflow, nan_policy,
                  backend="torch").numpy().astype(np.int64)
    bad = np.flatnonzero(~ok(got_t))
    assert bad.size == 0, ("torch", op, rounding, overflow, hex(a[bad[0]]), hex(b[bad[0]]), got_t[bad[0]])


def _check(f, a, b, op, rounding, overflow, nan_policy):
    """The fast kernels equal the exact model on the pairs (a, b)."""
    want = _exact_codes(f, a, b, op, rounding, overflow, nan_policy)
    _compare(f, a, b, op, rounding, overflow, nan_policy, lambda got: got == want)


def _check_all_pairs(f, op, rounding, overflow, nan_policy):
    """Every pair: the independent reference everywhere, the exact model on the NaN results and every 41st pair.
    The reference maps a NaN result into a format without NaN to 0 (nan_policy zero); under another policy those
    pairs are the exact model's alone."""
    a, b = _all_pairs(f)
    ov = default_overflow(f) if overflow is None else overflow
    ref = reference_pairs(f.name, op, rounding, ov)
    v = vals(f.name)
    nan_result = np.array([REF_OPS[op][1](v[x], v[y], rounding)[0] == "nan" for x, y in zip(a.tolist(), b.tolist())])
    exact_at = np.flatnonzero(nan_result | (np.arange(a.size) % 41 == 0))
    want = _exact_codes(f, a[exact_at], b[exact_at], op, rounding, overflow, nan_policy)
    by_reference = ~nan_result if nan_policy != "zero" or f.has_nan else np.ones(a.size, dtype=bool)

    def ok(got):
        good = np.ones(a.size, dtype=bool)
        good[by_reference] = matches(got[by_reference], ref[by_reference], f)
        good[exact_at] &= got[exact_at] == want
        return good

    _compare(f, a, b, op, rounding, overflow, nan_policy, ok)


def _all_pairs(f):
    a, b = np.meshgrid(np.arange(f.ncodes), np.arange(f.ncodes), indexing="ij")
    return a.ravel(), b.ravel()


@pytest.mark.parametrize("name", ["ocp_e2m1", "ocp_e3m2", "ocp_e2m3"])
@pytest.mark.parametrize("op", OPS)
def test_every_pair_every_mode_fp4_fp6(name, op):
    f = get_format(name)
    for rounding in DETERMINISTIC_MODES:
        for nan_policy in ("zero", "max"):
            _check_all_pairs(f, op, rounding, "saturate", nan_policy)


FP8_CASES = [("ocp_e4m3", ("rne", "rdn"), False), ("ocp_e5m2", ("rne",), False)] + [
    pytest.param(name, DETERMINISTIC_MODES, True, marks=pytest.mark.slow) for name in ("ocp_e4m3", "ocp_e5m2", "e3m4")]


@pytest.mark.parametrize("name,roundings,every_overflow", FP8_CASES)
@pytest.mark.parametrize("op", OPS)
def test_every_pair_fp8(name, roundings, every_overflow, op):
    """Default run: every pair in rne (both formats) and rdn (E4M3: the signs of exact zeros) with the default
    overflow; slow: every mode and overflow mode (the fp4/fp6 formats run every mode by default above)."""
    f = get_format(name)
    for rounding in roundings:
        for overflow in (_overflows(f) if every_overflow else [None]):
            _check_all_pairs(f, op, rounding, overflow, "error")


@pytest.mark.parametrize("op", OPS)
def test_random_binary16_pairs(op):
    f = get_format("binary16")
    rng = np.random.default_rng(OPS.index(op))
    a = rng.integers(0, 1 << 16, 3000)
    b = rng.integers(0, 1 << 16, 3000)
    b[:200] = a[:200] ^ 0x8000  # x - x, x + (-x): exact zeros
    for rounding in DETERMINISTIC_MODES:
        _check(f, a, b, op, rounding, None, "error")


def test_hand_worked_roundings():
    # 1/3 in e4m3: the grid step in [1/4, 1/2) is 1/32; 1/3 = 10.67/32 -> 11/32 (0x2B) to nearest, 10/32 (0x2A) down
    one, three = 0x38, 0x44  # 1.0 = 2^0 * 1.000, 3.0 = 2^1 * 1.100
    assert int(arith("div", np.array([one]), np.array([three]), "ocp_e4m3")[0]) == 0x2B
    assert int(arith("div", np.array([one]), np.array([three]), "ocp_e4m3", "rtz")[0]) == 0x2A
    # 448 + 32 = 480 overflows e4m3 (max 448): NaN (0x7F) under overflow=nan, 448 (0x7E) under saturate
    assert int(arith("add", np.array([0x7E]), np.array([0x60]), "ocp_e4m3", overflow="nan")[0]) == 0x7F
    assert int(arith("add", np.array([0x7E]), np.array([0x60]), "ocp_e4m3", overflow="saturate")[0]) == 0x7E


def test_signed_zero_of_exact_zero_sums():
    x = np.array([0x38, 0x00, 0x80, 0x00])  # 1, +0, -0, +0
    y = np.array([0xB8, 0x80, 0x80, 0x00])  # -1, -0, -0, +0
    assert arith("add", x, y, "ocp_e4m3").tolist() == [0x00, 0x00, 0x80, 0x00]
    assert arith("add", x, y, "ocp_e4m3", "rdn").tolist() == [0x80, 0x80, 0x80, 0x00]


def test_nan_results_follow_the_exact_model_not_the_hardware():
    # invalid 0/0 -> +NaN; a NaN operand's sign is kept; sub negates b first
    assert int(arith("div", np.array([0x00]), np.array([0x00]), "ocp_e4m3")[0]) == 0x7F
    assert int(arith("add", np.array([0x38]), np.array([0xFF]), "ocp_e4m3")[0]) == 0xFF
    assert int(arith("sub", np.array([0x38]), np.array([0xFF]), "ocp_e4m3")[0]) == 0x7F


def test_refusals_and_errors():
    for name in ("bfloat16", "binary32", "e8m0", "e6m1", "binary8p3ue"):  # spans beyond binary64, or 2p + 2 > 53
        with pytest.raises(BadValueError):
            arith("add", np.array([1]), np.array([1]), name)
    with pytest.raises(UnknownModeError):
        arith("pow", np.array([1]), np.array([1]), "ocp_e4m3")
    with pytest.raises(SpecialValueError):  # 0/0 into E2M1, which has no NaN, under nan_policy='error'
        arith("div", np.array([0, 1]), np.array([0, 1]), "ocp_e2m1", overflow="saturate")
