"""fast/bfp.py against the exact model where tests/test_bfp.py does not look: the default block size of 32,
blocks of one element, round-to-nearest-even ties of the alignment shift, products of wide mantissas and the
error texts."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError, SpecialValueError, UnknownModeError
from refarith.exact import bfp as E
from refarith.fast import bfp as F


def _values(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * np.exp2(rng.integers(-20, 20, size=n))).astype(np.float32)


@pytest.mark.parametrize("block", [None, 1])
def test_block_of_32_by_default_and_blocks_of_one(block):
    x = np.random.default_rng(5).uniform(-1, 1, 64).astype(np.float32)
    x[32] = 1000.0  # the second block's maximum: a block boundary anywhere else moves an exponent
    e, m = F.quantize(x, 8) if block is None else F.quantize(x, 8, block)
    size = 32 if block is None else block
    for i in range(0, 64, size):
        b = E.quantize_block([float(v) for v in x[i:i + size]], 8)
        assert int(e[i // size]) == b.exp
        assert m[i:i + size].tolist() == list(b.m)


@pytest.mark.parametrize("sign", [1, -1])
def test_rne_alignment_ties_by_one_bit(sign):
    """Exponents one apart: odd mantissas are halfway cases, rounded to the even neighbour."""
    lo = [sign * v for v in (1, 3, 5, 7, 2, 0)]
    a, b = E.BFPBlock(1, (0,) * 6), E.BFPBlock(0, tuple(lo))
    want = E.add(a, b, "rne")
    assert want.m != tuple(v // 2 for v in lo)  # the ties do not all round down
    for args in ((a.m, a.exp, b.m, b.exp), (b.m, b.exp, a.m, a.exp)):
        m, e = F.add(*args, "rne")
        assert m.tolist() == list(want.m) and (np.asarray(e) == want.exp).all()


def test_products_of_wide_mantissas_are_exact_int64():
    """(2^40 + 1) (2^20 + 1) needs 61 bits; unsigned operands are read as the integers they hold."""
    a, b = E.BFPBlock(3, (2**40 + 1, -(2**30 + 7))), E.BFPBlock(-2, (2**20 + 1, 2**30 - 1))
    want = E.mul(a, b)
    m, e = F.mul(np.array(a.m), a.exp, np.array(b.m, np.uint64), b.exp)
    assert m.dtype == np.int64 and m.tolist() == list(want.m) and int(e) == want.exp
    m, e = F.mul(np.array(b.m, np.uint64), b.exp, np.array(a.m), a.exp)
    assert m.dtype == np.int64 and m.tolist() == list(want.m) and int(e) == want.exp


def test_error_texts():
    with pytest.raises(UnknownModeError) as exact_err:
        E.shift_right(1, 1, "ceil")
    with pytest.raises(UnknownModeError) as fast_err:
        F.add([1], 0, [1], 0, "ceil")
    assert str(fast_err.value) == str(exact_err.value) == "unknown alignment 'ceil'; expected one of floor, rne"
    with pytest.raises(UnknownModeError, match=r"^unknown rounding 'rzz'; expected one of .*, sr$"):
        F.quantize(np.ones(4, np.float32), 8, rounding="rzz")
    with pytest.raises(SpecialValueError, match=r"^BFP quantization.*: NaN and infinity have no fixed-point code$"):
        F.quantize(np.array([1.0, np.nan], np.float32), 8)


def test_stochastic_rounding_default_variant_with_30_random_bits():
    """sr_variant defaults to "a" as in the exact model; 30-bit random integers are used bit for bit."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(32) * 3).astype(np.float32)
    r = rng.integers(0, 1 << 30, 32)
    r[:4] = (1 << 30) - 1, (1 << 30) - 2, 1, (1 << 29) + 1
    e, m = F.quantize(x, 8, 16, "sr", rand=r, rand_bits=30)
    for i in (0, 16):
        b = E.quantize_block([float(v) for v in x[i:i + 16]], 8, "sr", rand=[int(v) for v in r[i:i + 16]],
                             rand_bits=30)
        assert int(e[i // 16]) == b.exp and m[i:i + 16].tolist() == list(b.m)


def test_add_of_unsigned_mantissas_and_exponents():
    a, b = E.BFPBlock(4, (2**40 + 3, 7)), E.BFPBlock(1, (2**50 + 5, 9))
    for align in E.ALIGN:
        want = E.add(a, b, align)
        m, e = F.add(np.array(a.m, np.uint64), np.uint64(a.exp), np.array(b.m), b.exp, align)
        assert m.dtype == np.int64 and m.tolist() == list(want.m) and (np.asarray(e) == want.exp).all()
        m, e = F.add(np.array(b.m), b.exp, np.array(a.m, np.uint64), np.uint64(a.exp), align)
        assert m.dtype == np.int64 and m.tolist() == list(want.m) and (np.asarray(e) == want.exp).all()


@pytest.mark.parametrize("block", [0, -1, 2.5])
def test_block_size_must_be_a_positive_integer(block):
    with pytest.raises(BadValueError, match="block size must be a positive integer"):
        F.quantize(np.ones(4, np.float32), 8, block)


def test_stochastic_rounding_random_integers_next_to_the_thresholds():
    """v / 2^-6 = 64.625 in a block of maximum 1.5: the 30-bit random integers at either threshold
    (0.625 * 2^30 and 0.375 * 2^30) and one away decide the rounding; binary32 could not hold them."""
    v = 1.0 + 2.0**-7 + 2.0**-9
    t1, t2 = 5 << 27, 3 << 27
    x = np.array([1.5] + [v] * 6 + [0.0], np.float32)
    r = np.array([0, t1 - 1, t1, t1 + 1, t2 - 1, t2, t2 + 1, 0])
    b = E.quantize_block([float(u) for u in x], 8, "sr", rand=[int(u) for u in r], rand_bits=30)
    assert len(set(b.m[1:7])) == 2  # both neighbours 64 and 65 occur
    e, m = F.quantize(x, 8, 8, "sr", rand=r, rand_bits=30)
    assert int(e[0]) == b.exp and m.tolist() == list(b.m)


def test_add_aligns_by_floor_by_default_and_rand_needs_sr():
    a, b = E.BFPBlock(2, (5, -5)), E.BFPBlock(0, (7, -7))
    m, e = F.add(a.m, a.exp, b.m, b.exp)
    assert m.tolist() == list(E.add(a, b).m) == [6, -7]
    with pytest.raises(UnknownModeError, match=r"^rand is given but rounding='rne' is not stochastic"):
        F.quantize(np.ones(4, np.float32), 8, rand=np.zeros(4, np.int64))
