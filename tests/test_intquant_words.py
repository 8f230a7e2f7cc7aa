"""The integer quantizer's element formulas against independent statements: the group words (two integer
maxima of the bit patterns) proved equal to the maxima of the values' order keys by Z3, and the rounded
quotient round(|x / s|) against the exact model's ``round_int`` of the Fraction x / s on boundary pairs."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.exact.intquant import round_int
from refarith.fast import intquant as F
from refarith.fast.mx import ops


def test_group_words_are_the_key_maxima_z3():
    """For every int32 pattern b: max(b, 0) = max(key, 0) and max(b ^ 0x80000000, 0) = max(-key, 0), key = +-|x|
    as an integer (so the maxima over a group agree: max distributes over the clamp at 0)."""
    z3 = pytest.importorskip("z3")
    b = z3.BitVec("b", 32)
    mag = b & 0x7FFFFFFF
    key = z3.If(b < 0, -mag, mag)

    def clamp0(v):
        return z3.If(v > 0, v, z3.BitVecVal(0, 32))

    s = z3.Solver()
    s.add(z3.Or(clamp0(b) != clamp0(key), clamp0(b ^ z3.BitVecVal(F.SIGN32 & 0xFFFFFFFF, 32)) != clamp0(-key)))
    assert s.check() == z3.unsat


def test_group_words_and_finiteness_on_patterns():
    """Signed zeros, subnormals, the largest finite values, infinities and NaNs in one group and alone."""
    xp = ops("numpy")
    vals = np.array([0.0, -0.0, 1e-45, -1e-45, 3.4028235e38, -3.4028235e38, 1.5, -2.5], np.float32)
    for g in [vals, vals[:2], vals[1:2], vals[2:4], -np.abs(vals), np.abs(vals)]:
        hi, lo = F.group_words(np.ascontiguousarray(g).view(np.int32)[None], xp)
        assert float(np.array(hi, np.int32).view(np.float32)[0]) == max(float(g.max()), 0.0)
        assert float(np.array(lo, np.int32).view(np.float32)[0]) == -min(float(g.min()), 0.0)
        assert F.finite_words(hi, lo, xp)
    for bad in (np.inf, -np.inf, np.nan, -np.nan):
        g = np.append(vals, np.float32(bad)).astype(np.float32)
        assert not F.finite_words(*F.group_words(g.view(np.int32)[None], xp), xp)


def _pairs() -> tuple[np.ndarray, np.ndarray]:
    """(x, s) binary32 pairs: exact ties and their neighbours at normal and subnormal scales, subnormal x,
    quotients near 2^17 and beyond the shift cap, quotients just below 1/2."""
    rng = np.random.default_rng(7)
    s = np.array([1.0, 1.5, 2.0 ** -149, 3 * 2.0 ** -140, 2.0 ** -126, 1.0 / 127, 2.0 ** 100, 0.75], np.float32)
    xs, ss = [], []
    for sv in s:
        k = np.concatenate([np.arange(0, 40), rng.integers(0, 1 << 17, 20), [2 ** 17 - 1, 2 ** 17, 2 ** 20]])
        t = ((k + 0.5) * np.float64(sv)).astype(np.float32)
        sub = rng.integers(1, 1 << 23, 8).astype(np.int32).view(np.float32)
        for v in (t, np.nextafter(t, np.float32(0)), np.nextafter(t, np.float32(np.inf)),
                  (k * np.float64(sv)).astype(np.float32), sub):
            v = np.asarray(v, np.float32)
            v = v[np.isfinite(v)]
            xs.append(v)
            ss.append(np.full(v.shape, sv, np.float32))
    return np.concatenate(xs), np.concatenate(ss)


@pytest.mark.parametrize("rounding", ["rne", "rna"])
def test_round_nearest_against_round_int(rounding):
    x, s = _pairs()
    got = F.round_magnitude(x.view(np.int32), s.view(np.int32), rounding, ops("numpy"))
    for xi, si, g in zip(x.tolist(), s.tolist(), got.tolist()):
        want = round_int(Fraction(xi) / Fraction(si), rounding)
        assert g == want if want < 1 << 17 else g >= 1 << 17, (xi, si, g, want)
