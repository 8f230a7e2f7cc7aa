"""NumpyBitOps and the derived operations of BitOps against the interface contract, computed with Python integers
(every word op modulo 2^width, logical shifts, unsigned comparisons, clz as the bit length's complement); torch-free.
"""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError
from refarith.fast.bitops import BitOps, NumpyBitOps

EDGES = {32: [0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF,
              0x12345678, 0xDEADBEEF],
         64: [0, 1, 2, 0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFE,
              0xFFFFFFFFFFFFFFFF, 0x0123456789ABCDEF, 0xFEDCBA9876543210, 0x80000000]}


def _words(w: int) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(w)
    vals = EDGES[w] + [int(v) for v in rng.integers(0, 1 << 62, 24, dtype=np.int64)] + [
        int(v) << (w - 32) for v in rng.integers(0, 1 << 32, 8, dtype=np.int64)]
    vals = [v & ((1 << w) - 1) for v in vals]
    a = [x for x in vals for _ in vals]
    b = [y for _ in vals for y in vals]
    return a, b


def _arr(ops, xs):
    return np.array(xs, dtype=np.uint64).astype(ops.dtype)


@pytest.mark.parametrize("w", [32, 64])
def test_word_operations_are_the_contract(w):
    ops = NumpyBitOps(w)
    m = (1 << w) - 1
    assert ops.width == w and ops.mask == m and ops.dtype == (np.uint32 if w == 32 else np.uint64)
    a, b = _words(w)
    x, y = _arr(ops, a), _arr(ops, b)
    want = {"add": [(p + q) & m for p, q in zip(a, b)], "sub": [(p - q) & m for p, q in zip(a, b)],
            "mul": [(p * q) & m for p, q in zip(a, b)], "and_": [p & q for p, q in zip(a, b)],
            "or_": [p | q for p, q in zip(a, b)], "xor": [p ^ q for p, q in zip(a, b)],
            "umin": [min(p, q) for p, q in zip(a, b)], "umax": [max(p, q) for p, q in zip(a, b)]}
    for name, exp in want.items():
        got = getattr(ops, name)(x, y)
        assert got.dtype == ops.dtype and got.tolist() == exp, name
        if name in ("umin", "umax"):  # the derived versions of the base class (one where on ult)
            got = getattr(BitOps, name)(ops, x, y)
            assert got.dtype == ops.dtype and got.tolist() == exp, f"BitOps.{name}"
    got = ops.not_(x)
    assert got.dtype == ops.dtype and got.tolist() == [~p & m for p in a]
    cmp = {"eq": [p == q for p, q in zip(a, b)], "ne": [p != q for p, q in zip(a, b)],
           "ult": [p < q for p, q in zip(a, b)], "ule": [p <= q for p, q in zip(a, b)],
           "ugt": [p > q for p, q in zip(a, b)], "uge": [p >= q for p, q in zip(a, b)]}
    for name, exp in cmp.items():
        got = getattr(ops, name)(x, y)
        assert got.dtype == np.bool_ and got.tolist() == exp, name


@pytest.mark.parametrize("w", [32, 64])
def test_shifts_are_logical_for_int_and_word_counts(w):
    ops = NumpyBitOps(w)
    m = (1 << w) - 1
    vals = EDGES[w]
    for s in range(w):
        x = _arr(ops, vals)
        for cnt in (s, ops.const(s)):
            left, right = ops.shl(x, cnt), ops.shr(x, cnt)
            assert left.dtype == ops.dtype and left.tolist() == [(v << s) & m for v in vals], (s, type(cnt))
            assert right.dtype == ops.dtype and right.tolist() == [v >> s for v in vals], (s, type(cnt))
    counts = _arr(ops, [i % w for i in range(len(vals))])  # a word of per-element counts
    assert ops.shr(_arr(ops, vals), counts).tolist() == [v >> (i % w) for i, v in enumerate(vals)]
    assert ops.shl(_arr(ops, vals), counts).tolist() == [(v << (i % w)) & m for i, v in enumerate(vals)]


@pytest.mark.parametrize("w", [32, 64])
def test_constants_words_masks_and_where(w):
    ops = NumpyBitOps(w)
    m = (1 << w) - 1
    for v in (0, 1, m, m + 1, m + 5, -1, -2, 1 << (w - 1)):
        c = ops.const(v)
        assert c.dtype == ops.dtype and int(c) == v & m, v
    assert ops.word([1, 2, 3]).dtype == ops.dtype and ops.word(np.array([5], dtype=np.int64)).tolist() == [5]
    u = np.array([7, 8], dtype=ops.dtype)
    assert ops.word(u) is u  # no copy when the array already holds words
    p = np.array([True, False, True, False])
    q = np.array([True, True, False, False])
    assert ops.band(p, q).tolist() == [True, False, False, False]
    assert ops.bor(p, q).tolist() == [True, True, True, False]
    assert ops.bnot(p).tolist() == [False, True, False, True]
    assert bool(ops.mtrue()) is True and bool(ops.mfalse()) is False
    like = _arr(ops, [3, 0, m])
    assert BitOps.mtrue(ops, like).tolist() == [True] * 3 and BitOps.mfalse(ops, like).tolist() == [False] * 3
    a, b = _arr(ops, [1, 2, m, 4]), _arr(ops, [10, 20, 30, 40])
    got = ops.where(p, a, b)
    assert got.dtype == ops.dtype and got.tolist() == [1, 20, m, 40]
    got = ops.where(p, ops.const(m), b)  # a constant word broadcast against an array
    assert got.dtype == ops.dtype and got.tolist() == [m, 20, m, 40]


@pytest.mark.parametrize("w", [32, 64])
def test_clz_by_binary_search(w):
    ops = NumpyBitOps(w)
    vals = sorted({0, *EDGES[w], *[(1 << k) for k in range(w)], *[(1 << k) - 1 for k in range(1, w + 1)],
                   *[(1 << k) + 1 for k in range(1, w)]})
    got = ops.clz(_arr(ops, vals))
    assert got.dtype == ops.dtype and got.tolist() == [w - v.bit_length() for v in vals]


def test_width_must_be_32_or_64():
    for bad in (8, 16, 31, 33, 128, 0):
        with pytest.raises(BadValueError, match=f"word width must be 32 or 64, got {bad}"):
            NumpyBitOps(bad)
    assert NumpyBitOps().width == 32


@pytest.mark.parametrize("w", [32, 64])
def test_python_int_operands_give_words(w):
    # every word operation casts to the word type itself (its dtype argument), so Python ints in, words out
    ops = NumpyBitOps(w)
    m = (1 << w) - 1
    ref = {"add": lambda p, q: (p + q) & m, "sub": lambda p, q: (p - q) & m, "mul": lambda p, q: (p * q) & m,
           "and_": lambda p, q: p & q, "or_": lambda p, q: p | q, "xor": lambda p, q: p ^ q, "umin": min, "umax": max}
    for name, f in ref.items():
        for p, q in ((m, 1), (0, 1), (3, 5), (m, m), (1 << (w - 1), 3)):
            got = getattr(ops, name)(p, q)
            assert got.dtype == ops.dtype and int(got) == f(p, q), (name, p, q)
    for p in (0, 5, m):
        got = ops.not_(p)
        assert got.dtype == ops.dtype and int(got) == ~p & m
        for s in (0, 1, w - 1):
            assert ops.shl(p, s).dtype == ops.dtype and int(ops.shl(p, s)) == (p << s) & m
            assert ops.shr(p, s).dtype == ops.dtype and int(ops.shr(p, s)) == p >> s
    got = ops.where(np.array([True, False]), 1, 2)
    assert got.dtype == ops.dtype and got.tolist() == [1, 2]
    got = ops.word(np.array([1, 2, m], dtype=np.uint64))
    assert got.dtype == ops.dtype and got.tolist() == [1, 2, m]
    assert ops.mtrue() is np.True_ and ops.mfalse() is np.False_
