"""LLM.int8() numpy kernel (refarith.fast.llmint8) against the exact model, torch-free: every returned part with its
dtype, rows of small and zero values, the int32 wrap of a long inner dimension, outlier layouts, and the refusals
with their texts.  Expected values from refarith.exact.llmint8."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import llmint8 as E
from refarith.exact.rounding import round_value
from refarith.exact.value import Value
from refarith.fast import llmint8 as F


def _check(x, w, threshold=6.0, accumulate="int32"):
    outl, ax, aw, acc, out = F.matmul(x, w, threshold, accumulate)
    r = E.matmul(x.tolist(), w.tolist(), threshold, accumulate)
    assert outl.dtype.kind == "i" and tuple(outl.tolist()) == r.outliers
    assert ax.dtype == np.float16 and aw.dtype == np.float16
    assert [float(v) for v in ax] == [float(v) for v in r.row_absmax]
    assert [float(v) for v in aw] == [float(v) for v in r.col_absmax]
    assert acc.dtype == (np.int32 if accumulate == "int32" else np.int64)
    assert acc.tolist() == [list(row) for row in r.acc]
    assert out.dtype == np.float16 and out.view(np.uint16).tolist() == [list(row) for row in r.out]
    return outl, ax, aw, acc, out


@pytest.mark.parametrize("accumulate", E.ACCUMULATE)
def test_rows_of_small_and_zero_values(accumulate):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((5, 12)) * 0.01).astype(np.float16)  # every |x| < 1: absmax below 1
    x[1] = 0  # a zero row: codes 0, absmax 0
    x[3, 4] = 7.5  # one outlier column
    w = (rng.standard_normal((12, 4)) * 0.3).astype(np.float16)
    w[:, 2] = 0
    _check(x, w, 6.0, accumulate)
    _check(x, w, 100.0, accumulate)  # no outliers
    _check(x, w, 0.0, accumulate)  # every dimension an outlier: rows without columns


def test_quantize_rows_dtypes_and_codes():
    a = np.array([[0.5, -0.25, 0.125], [0, 0, 0], [3, -3, 1.5]], dtype=np.float16)
    am, q = F.quantize_rows(a)
    assert am.dtype == np.float16 and q.dtype == np.int8
    assert am.tolist() == [0.5, 0.0, 3.0] and q.tolist() == [[127, -64, 32], [0, 0, 0], [127, -127, 64]]


def test_int32_wrap_of_a_long_inner_dimension():
    # K = 133145 products of 127 * 127 exceed int32 (the theorem's counterexample length): int32 wraps, int64 not
    k = E.max_inner_dim("symmetric") + 1
    x = np.full((1, k), 2.0, dtype=np.float16)
    w = np.full((k, 1), 3.0, dtype=np.float16)
    for accumulate in E.ACCUMULATE:
        outl, ax, aw, acc, out = F.matmul(x, w, 6.0, accumulate)
        s = k * 127 * 127
        s = E.wrap_int32(s) if accumulate == "int32" else s
        assert acc.tolist() == [[s]]
        assert acc.dtype == (np.int32 if accumulate == "int32" else np.int64)
        # the output is that (wrapped) sum times the absmaxes / 127^2, rounded once (the exact model's formula)
        want = round_value(Value.of(Fraction(s) * 2 * 3 / (127 * 127)), "binary16", "rne").code
        assert out.view(np.uint16).tolist() == [[want]]


def test_outlier_part_is_summed_exactly():
    # 6 * 2^-24 + 65504^2 - 65504^2: the first term is far below the ulp of the others in binary64, so a floating
    # sum in this order gives 0; the exact sum is 6 * 2^-24, binary16 code 0x0006
    x = np.array([[6.0, 65504.0, 65504.0]], dtype=np.float16)
    w = np.array([[2.0 ** -24], [65504.0], [-65504.0]], dtype=np.float16)
    outl, ax, aw, acc, out = _check(x, w)
    assert outl.tolist() == [0, 1, 2] and out.view(np.uint16).tolist() == [[6]]
    x2 = np.array([[6.0, 65504.0, 65504.0, 0.5]], dtype=np.float16)  # and beside an int8 part
    w2 = np.array([[2.0 ** -24], [65504.0], [-65504.0], [0.25]], dtype=np.float16)
    _check(x2, w2)


def test_refusals_name_the_problem():
    x = np.ones((2, 3), dtype=np.float16)
    w = np.ones((3, 2), dtype=np.float16)
    with pytest.raises(UnknownModeError, match=r"^unknown accumulation 'int16'; expected one of int32, exact$"):
        F.matmul(x, w, accumulate="int16")
    with pytest.raises(BadValueError, match=r"^LLM\.int8\(\) operands must be float16 arrays$"):
        F.matmul(x, w.astype(np.float32))
    with pytest.raises(BadValueError, match=r"^shapes \(3,\) and \(3, 2\) do not multiply$"):
        F.matmul(x[0], w)
    with pytest.raises(BadValueError, match=r"^shapes \(2, 3\) and \(3,\) do not multiply$"):
        F.matmul(x, w[:, 0])
    with pytest.raises(BadValueError, match=r"^shapes \(2, 3\) and \(2, 2\) do not multiply$"):
        F.matmul(x, w[:2])
    for bad_x in (True, False):
        xi, wi = x.copy(), w.copy()
        (xi if bad_x else wi)[1, 1] = np.inf
        with pytest.raises(BadValueError, match=r"^LLM\.int8\(\) operands must be finite$"):
            F.matmul(xi, wi)


def test_outlier_threshold_is_inclusive_and_by_column():
    x = np.array([[1, 6, -2, 0.5], [-6.0, 0.25, 5.99, 1]], dtype=np.float16)
    w = np.array([[1, 2], [0.5, -1], [3, 0.125], [-2, 1]], dtype=np.float16)
    outl, *_ = _check(x, w, 6.0)
    assert outl.tolist() == [0, 1]
    assert _check(x, w, float(np.float16(5.99)))[0].tolist() == [0, 1, 2]  # the entry itself: inclusive
    assert _check(x, w, 5.99)[0].tolist() == [0, 1]  # just above the binary16 5.98828125


def test_default_threshold_is_six():
    x = np.array([[6.5, 1.0], [0.5, -2.0]], dtype=np.float16)
    w = np.array([[1.0, 0.5], [2.0, -1.0]], dtype=np.float16)
    outl, *_, out = F.matmul(x, w)
    r = E.matmul(x.tolist(), w.tolist())
    assert outl.tolist() == list(r.outliers) == [0] and out.view(np.uint16).tolist() == [list(v) for v in r.out]


def test_units_of_every_finite_binary16():
    # the integer multiple of 2^-24 of every finite binary16 pattern, against the exact model's decoding
    from refarith.exact.ops import value_table

    pats, want = [], []
    for code, v in value_table("binary16"):
        if v.is_finite:
            pats.append(code)
            want.append(v.fraction * (1 << 24))
    got = F._units(np.array(pats, dtype=np.uint16).view(np.float16))
    assert got.dtype == np.int64 and got.tolist() == want


def test_rows_at_the_least_subnormal_and_at_one():
    # absmax 2^-24 (the least positive binary16: the zero-row divisor) and exactly 1, each beside a zero row
    x = np.array([[2.0 ** -24, 0, -(2.0 ** -24)], [0, 0, 0], [1.0, -0.5, 0.25], [2.0 ** -14, -(2.0 ** -14), 0]],
                 dtype=np.float16)
    am, q = F.quantize_rows(x)
    assert am.tolist() == [2.0 ** -24, 0.0, 1.0, 2.0 ** -14]
    assert q.tolist() == [[127, 0, -127], [0, 0, 0], [127, -64, 32], [127, -127, 0]]
    w = np.array([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.125]], dtype=np.float16)
    for accumulate in E.ACCUMULATE:
        _check(x, w, 6.0, accumulate)
