"""fast/intdot.py against the exact model with torch absent (tests/test_int_accumulate.py compares the numpy
kernel only next to torch): random and extreme vectors, a start value, the defaults, the width limits and the
error texts."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import intdot as ex
from refarith.fast import intdot as fx
from refarith.formats import get_format
from refarith.formats.int_format import IntFormat

CONFIGS = [("int8", "int16"), ("int8", "int32"), ("int8_sym", "int20"), ("int4", "int8"), ("int16", "int32"),
           ("uint8", "uint16"), ("uint8", "int12")]


def _vectors(f, rows=24, k=12, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(f.min, f.max, (rows, k), endpoint=True)
    b = rng.integers(f.min, f.max, (rows, k), endpoint=True)
    a[:6], b[:6] = f.min, f.min if f.signed else f.max  # runs of the extreme product overflow
    a[6:9], b[6:9] = f.max, f.min  # the most negative product (signed), or 0 (unsigned)
    return a, b


def _exact(a, b, in_fmt, acc_fmt, ov, init=0):
    return [ex.int_dot(x, y, in_fmt, acc_fmt, ov, init) for x, y in zip(a.tolist(), b.tolist())]


@pytest.mark.parametrize("ov", ["wrap", "saturate"])
@pytest.mark.parametrize("in_fmt,acc_fmt", CONFIGS)
def test_numpy_equals_exact_with_and_without_init(in_fmt, acc_fmt, ov):
    f, g = get_format(in_fmt), get_format(acc_fmt)
    a, b = _vectors(f)
    for init in (0, g.max - 3, g.min + 5, 7):
        got = fx.int_dot(a, b, in_fmt, acc_fmt, ov, init)
        assert got.tolist() == _exact(a, b, in_fmt, acc_fmt, ov, init), init


def test_defaults_are_int8_into_int32_wrap():
    a, b = _vectors(get_format("int8"), k=40)
    assert fx.int_dot(a, b).tolist() == [ex.int_dot(x, y) for x, y in zip(a.tolist(), b.tolist())]


def test_widest_inputs_and_accumulator_accepted():
    """32-bit inputs and a 62-bit accumulator are inside the documented limits (saturate: no length bound)."""
    i32, a62 = get_format("int32"), IntFormat("int62", 62)
    a = np.array([[i32.min, i32.min, i32.min, 5], [i32.max, i32.min, 3, -2]])
    b = np.array([[i32.min, i32.min, i32.min, 7], [i32.max, i32.max, 9, 4]])
    assert fx.int_dot(a, b, i32, a62, "saturate").tolist() == _exact(a, b, i32, a62, "saturate")
    with pytest.raises(BadValueError, match="up to 32 bits"):
        fx.int_dot(a, b, get_format("int64"), a62, "saturate")
    with pytest.raises(BadValueError, match="accumulators up to 62 bits"):
        fx.int_dot(a, b, i32, IntFormat("int63", 63), "saturate")
    with pytest.raises(BadValueError, match="up to 32 bits"):
        fx.int_dot(a, b, IntFormat("int33", 33), a62, "saturate")


def test_wrap_of_31_bit_products_into_62_bits():
    """Two products of -2^30 * -2^30 sum to 2^61, one above the int62 maximum: the sum wraps to -2^61."""
    i31, a62 = IntFormat("int31", 31), IntFormat("int62", 62)
    a = np.array([[i31.min, i31.min], [i31.max, i31.min], [i31.min, 1]])
    want = _exact(a, a, i31, a62, "wrap")
    assert want[0] == -(1 << 61)
    assert fx.int_dot(a, a, i31, a62, "wrap").tolist() == want


@pytest.mark.parametrize("ov", ["wrap", "saturate"])
def test_one_dimensional_three_dimensional_and_length_one(ov):
    """The docstring's 'over the last axis' for 1-D and 3-D operands; a single product (K = 1)."""
    f = get_format("int8")
    a, b = _vectors(f, rows=12, k=5, seed=3)
    for x, y in ((a[0], b[0]), (a.reshape(3, 4, 5), b.reshape(3, 4, 5)), (a[:, :1], b[:, :1])):
        want = np.array(_exact(x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1]), f, "int16", ov, 9))
        got = fx.int_dot(x, y, f, "int16", ov, 9)
        assert got.shape == x.shape[:-1]
        assert got.reshape(-1).tolist() == want.tolist()


def test_wrap_is_exact_beyond_the_int64_range_with_numpy():
    """The module docstring: numpy's int64 sum wraps modulo 2^64 and the accumulator keeps it modulo 2^w, so every
    length is exact.  Products of 32-bit extremes (2^62, -2^62 + 2^31) summed past 2^63 and 2^64, against the exact
    model's sequential wrap."""
    i32, a62 = get_format("int32"), IntFormat("int62", 62)
    lo, hi = i32.min, i32.max
    rows = [[lo] * 2, [lo] * 3, [lo] * 8, [lo] * 9, [lo, hi] * 5, [lo] * 4 + [hi] * 4, [hi] * 17]
    for row in rows:
        a = np.array([row])
        b = np.array([[lo if v == lo else hi for v in row]])
        for acc, init in ((a62, 0), (a62, (1 << 61) - 1), (a62, -(1 << 61)), (get_format("int32"), -5),
                          (IntFormat("int48", 48), 12345)):
            want = ex.int_dot(a[0].tolist(), b[0].tolist(), i32, acc, "wrap", init)
            assert fx.int_dot(a, b, i32, acc, "wrap", init).tolist() == [want], (row, acc, init)


def test_init_outside_the_accumulator_is_refused_like_the_exact_model():
    a = np.array([[1, 2]])
    for acc, init in (("int16", 1 << 15), ("int16", -(1 << 15) - 1), ("int8_sym", -129), ("uint8", -1)):
        with pytest.raises(BadValueError, match=f"init {init} does not fit"):
            ex.int_dot([1, 2], [1, 2], "int8", acc, "wrap", init)
        with pytest.raises(BadValueError, match=f"^int_dot: init {init} does not fit"):
            fx.int_dot(a, a, "int8", acc, "wrap", init)
    for acc, init in (("int16", (1 << 15) - 1), ("int16", -(1 << 15)), ("int8_sym", -128), ("uint8", 0)):
        want = ex.int_dot([1, 2], [1, 2], "int8", acc, "wrap", init)
        assert fx.int_dot(a, a, "int8", acc, "wrap", init).tolist() == [want]


def test_error_texts():
    a = np.array([[1, 2]])
    with pytest.raises(UnknownModeError, match="unknown accumulator overflow 'clamp'"):
        fx.int_dot(a, a, overflow="clamp")
    with pytest.raises(BadValueError, match=r"^b outside \[-128, 127\]"):
        fx.int_dot(a, np.array([[1, 128]]))
    with pytest.raises(BadValueError, match=r"^a outside \[-128, 127\]"):
        fx.int_dot(np.array([[-129, 1]]), a)
    with pytest.raises(BadValueError, match="differ"):
        fx.int_dot(a, np.array([[1, 2, 3]]))
