"""Block floating point: exact model vs numpy / torch; products, aligned sums."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError, SpecialValueError, UnknownModeError
from refarith.exact import bfp as E
from refarith.fast import bfp as F
from refarith.spec import parse_spec


def _x(rng, nb, bs):
    x = (rng.standard_normal((nb, bs)) * np.exp2(rng.integers(-140, 120, size=(nb, 1)))).astype(np.float32)
    x[0] = 0
    x[1, 0] = np.nextafter(np.float32(8), np.float32(0))
    x[2] = (rng.integers(1, 1 << 23, size=bs).astype(np.uint32)).view(np.float32)  # subnormals
    return x


@pytest.mark.parametrize("p", [2, 3, 4, 8, 12, 16, 24])
@pytest.mark.parametrize("rounding", E.ROUNDINGS)
def test_quantize_agrees(p, rounding):
    rng = np.random.default_rng(p * 31 + len(rounding))
    x = _x(rng, 200, 8)
    e, m = F.quantize(x, p, 8, rounding)
    for i in range(x.shape[0]):
        b = E.quantize_block([float(v) for v in x[i]], p, rounding)
        assert b.exp == e[i, 0] and list(b.m) == [int(v) for v in m[i]]
    torch = pytest.importorskip("torch")
    te, tm = F.quantize(torch.from_numpy(x), p, 8, rounding, backend="torch")
    assert np.array_equal(te.numpy(), e) and np.array_equal(tm.numpy(), m)


def test_shared_exponent_rule_and_range():
    b = E.quantize_block([3.0, -0.5, 1.0], 8)
    assert b.exp == 1 - 6 and b.m == (96, -16, 32)  # Es = floor(log2 3) - (8 - 2)
    b = E.quantize_block([np.nextafter(np.float32(4), np.float32(0)).item()], 4)
    assert b.m == (7,)  # 3.9999998 / 2^(1-2) = 7.9999996 rounds to 8, clamps to 2^3 - 1


@pytest.mark.parametrize("align", E.ALIGN)
def test_mul_add_agree(align):
    rng = np.random.default_rng(9)
    x = _x(rng, 60, 4)
    y = _x(rng, 60, 4)
    ex, mx_ = F.quantize(x, 8, 4)
    ey, my = F.quantize(y, 8, 4)
    pm, pe = F.mul(mx_, ex, my, ey)
    sm, se = F.add(mx_, ex, my, ey, align)
    for i in range(60):
        a = E.BFPBlock(int(ex[i, 0]), tuple(int(v) for v in mx_[i]))
        b = E.BFPBlock(int(ey[i, 0]), tuple(int(v) for v in my[i]))
        p = E.mul(a, b)
        assert p.exp == pe[i, 0] and list(p.m) == list(pm[i])
        s = E.add(a, b, align)
        assert s.exp == se[i, 0] and list(s.m) == list(sm[i])
        assert p.values() == [u * v for u, v in zip(a.values(), b.values())]  # products are exact
        d = E.dot(a, b)
        assert d == (sum(p.m), p.exp)


def test_alignment_rounding():
    assert E.shift_right(-5, 1, "floor") == -3 and E.shift_right(-5, 1, "rne") == -2
    assert E.shift_right(6, 2, "rne") == 2 and E.shift_right(10, 2, "rne") == 2  # 1.5 -> 2, 2.5 -> 2


def test_bad_input():
    with pytest.raises(SpecialValueError):
        F.quantize(np.array([np.inf], np.float32), 8)
    with pytest.raises(BadValueError):
        E.quantize_block([1.0], 1)
    with pytest.raises(UnknownModeError):
        F.add([1], 0, [1], 0, "ceil")
    assert str(E.bfp_spec(8)) == "bfp_quantize(int8_sym,block=32,rounding=rne,align=floor)"
    assert str(parse_spec("bfp_quantize(int4_sym,align=rne)")) == \
        "bfp_quantize(int4_sym,block=32,rounding=rne,align=rne)"


@pytest.mark.slow
@pytest.mark.parametrize("rounding", E.ROUNDINGS)
def test_1e5_random_blocks_exact_numpy_torch(rounding):
    """10^5 random blocks (every binade, zeros, subnormals, maxima just below a power of two) per rounding:
    exact model = numpy = torch, for 4-bit and 8-bit mantissas."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7 + len(rounding))
    for p in (4, 8):
        x = _x(rng, 50_000, 8)
        x[3::97] = np.nextafter(np.exp2(rng.integers(-126, 120, size=(x[3::97].shape[0], 1))).astype(np.float32),
                                np.float32(0)) * np.ones((1, 8), np.float32)
        e, m = F.quantize(x, p, 8, rounding)
        for i in range(x.shape[0]):
            b = E.quantize_block([float(v) for v in x[i]], p, rounding)
            assert b.exp == e[i, 0] and list(b.m) == [int(v) for v in m[i]], i
        te, tm = F.quantize(torch.from_numpy(x), p, 8, rounding, backend="torch")
        assert np.array_equal(te.numpy(), e) and np.array_equal(tm.numpy(), m)


@pytest.mark.parametrize("align", ["floor", "rne"])
def test_add_int64_mantissas_at_every_gap(align):
    """The shift of the smaller-exponent operand at gaps 0..200 on int64 mantissas up to +-2^63, against the exact
    model's shift_right (the fast kernel once capped the gap at 62: -(2^61 + 5) at gap 70 gave -1, 2^62 + 1 at
    gap 63 gave 1)."""
    ms = [0, 1, -1, 3, -3, 2**61 + 5, -(2**61 + 5), 2**62 - 1, 2**62, -(2**62), 2**62 + 1, -(2**62 + 1),
          2**63 - 1, -(2**63)]
    gaps = [0, 1, 2, 31, 61, 62, 63, 64, 65, 70, 127, 200]
    m = np.array([v for v in ms for _ in gaps], np.int64)
    g = np.array([d for _ in ms for d in gaps], np.int64)
    s, e = F.add(np.zeros_like(m), g, m, np.zeros_like(g), align)
    want = [E.shift_right(int(v), int(d), align) for v, d in zip(m, g)]
    assert s.tolist() == want
    assert e.tolist() == g.tolist()
