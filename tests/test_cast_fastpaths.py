"""The numpy binary32 encode paths that replace the 17-bit sticky key: the 16-bit key table and E8M0's binary64 sum.

Expected codes come from the exact model (``round_value``) on one representative per sticky key: the cast of a
binary32 pattern depends only on its sticky key (the prover's lemma, and the slow 2^32 sweeps), so the exact code
of the key's representative is the exact result of every pattern with that key.
"""

from __future__ import annotations

import numpy as np
import pytest

from refarith import fast
from refarith.errors import SpecialValueError
from refarith.exact import ops as exact
from refarith.exact.rounding import round_value
from refarith.fast import cast as fast_cast
from refarith.formats import float_formats, get_format

_MEMO: dict = {}


def exact_by_key(dst: str, bits: np.ndarray, **kw) -> np.ndarray:
    """Exact code of every pattern in ``bits`` (-1 where the exact model raises), computed once per distinct sticky
    key on its representative (k >> 1) << 16 | (k & 1)."""
    keys = fast_cast.sticky_keys(bits)
    uk, inv = np.unique(keys, return_inverse=True)
    memo = _MEMO.setdefault((dst, tuple(sorted(kw.items()))), {})
    vals = np.empty(uk.size, dtype=np.int64)
    for i, k in enumerate(uk.tolist()):
        if k not in memo:
            try:
                memo[k] = round_value(exact.decode((k >> 1) << 16 | (k & 1), "binary32"), dst, **kw).code
            except SpecialValueError:
                memo[k] = -1
        vals[i] = memo[k]
    return vals[inv.reshape(-1)]


def boundary_patterns(step: int = 23) -> np.ndarray:
    """High halves (every ``step``-th, and the zero, infinity and NaN edges, both signs) with low halves 0, 1,
    0x8000 and 0xFFFF: the 2^16 steps where a key can change."""
    hi = np.unique(np.concatenate([np.arange(0, 1 << 16, step), [0, 1, 0x7F7F, 0x7F80, 0x7FC0, 0x7FFF, 0x8000,
                                                                  0xFF80, 0xFFFF]])).astype(np.uint32) << np.uint32(16)
    return np.concatenate([hi, hi | np.uint32(1), hi | np.uint32(0x8000), hi | np.uint32(0xFFFF)])


def e8m0_patterns() -> np.ndarray:
    """Each binade edge, its midpoint and their neighbours, both signs, plus the NaN range edges."""
    e = np.arange(256, dtype=np.uint32) << np.uint32(23)
    f = np.array([0, 1, 2, 0x3FFFFF, 0x400000, 0x400001, 0x5FFFFF, 0x600000, 0x600001, 0x7FFFFE, 0x7FFFFF],
                 dtype=np.uint32)
    pos = (e[:, None] | f[None, :]).reshape(-1)
    return np.concatenate([pos, pos | np.uint32(0x80000000)])


@pytest.mark.parametrize("dst", ["ocp_e4m3", "ocp_e5m2", "ocp_e2m1", "e8m0"])
def test_key16_gather_equals_exact(dst):
    """The 16-bit key table is in use for 8-bit and narrower targets and gives the exact code on every pattern
    where the key can change (rne and rtz, the targets' default overflow)."""
    f = get_format(dst)
    kw = {} if f.has_nan else dict(nan_policy="zero")
    if not f.signed:
        kw["negative"] = "clamp"
    bits = boundary_patterns()
    for rounding in ("rne", "rtz"):
        want = exact_by_key(dst, bits, rounding=rounding, **kw)
        got = fast.encode(bits.view(np.float32), dst, rounding=rounding, **kw)
        assert np.array_equal(got.astype(np.int64), want), (dst, rounding)
        tab, _ = fast_cast._sentinel(fast_cast.key_table(f, rounding, fast_cast.cast_default_overflow(f),
                                                         kw.get("nan_policy", "error"), kw.get("negative", "error")), f)
        assert fast_cast._key16_table(tab) is not None


def test_key16_table_refused_where_bit_16_rounds():
    """A target with 6 mantissa bits rounds at bit 16 of some binary32 binade, where the low half is not only a
    sticky bit: the 16-bit table does not exist there, and the 17-bit key gives the exact codes."""
    six = [f for f in float_formats() if f.mbits == 6 and f.nbits <= 16 and fast_cast.sticky_key_suffices(f)]
    if not six:
        pytest.skip("no catalogue format with 6 mantissa bits")
    f = six[0]
    kw = {} if f.has_nan else dict(nan_policy="zero")
    if not f.signed:
        kw["negative"] = "clamp"
    tab, _ = fast_cast._sentinel(fast_cast.key_table(f, "rne", fast_cast.cast_default_overflow(f),
                                                     kw.get("nan_policy", "error"), kw.get("negative", "error")), f)
    assert fast_cast._key16_table(tab) is None
    bits = boundary_patterns(97)
    want = exact_by_key(f.name, bits, **kw)
    assert np.array_equal(fast.encode(bits.view(np.float32), f.name, **kw).astype(np.int64), want)


def test_key16_formula_on_every_low_half():
    """(x | ((x & 0xFFFF) + 0xFFFF)) >> 16 == hi16 | [lo16 != 0] for every low half under 64 high halves, and
    the gather indexes the table with it (an identity-like table whose odd entries repeat, so it is accepted)."""
    rng = np.random.default_rng(3)
    hi = np.concatenate([rng.integers(0, 1 << 16, 62, dtype=np.uint32), np.array([0, 0xFFFF], dtype=np.uint32)])
    lo = np.arange(1 << 16, dtype=np.uint32)
    x = ((hi[:, None] << np.uint32(16)) | lo[None, :]).reshape(-1)
    want = (x >> np.uint32(16)) | (x & np.uint32(0xFFFF) != 0).astype(np.uint32)
    k = np.arange(1 << 17, dtype=np.uint32)
    tab = fast_cast._freeze(np.where(k & np.uint32(1), (k >> np.uint32(1)) | np.uint32(1), k >> np.uint32(1)))
    t16 = fast_cast._key16_table(tab)  # tab[2j] = j; tab[2j - 1] = tab[2j + 1] = j for odd j
    assert t16 is not None and np.array_equal(t16, np.arange(1 << 16, dtype=np.uint32))
    got = fast_cast._gather(x, tab, None, np.uint32, keyed=True)
    assert np.array_equal(got, want)


def test_e8m0_sum_path_equals_exact():
    """rne, overflow='nan' (the default): the binary64-sum path on binade edges, midpoints and neighbours equals the
    exact model, in blocks it accepts and in blocks it hands to the gather (zeros, subnormals, NaNs)."""
    bits = e8m0_patterns()
    pos = bits[bits < 0x80000000]
    want = exact_by_key("e8m0", bits, negative="clamp")
    assert np.array_equal(fast.encode(bits.view(np.float32), "e8m0", negative="clamp").astype(np.int64), want)
    ok = pos[(pos >= 0x00C00000) & (pos < 0x7FC00000)]  # the patterns the sum path itself answers
    want = exact_by_key("e8m0", ok)
    assert np.array_equal(fast.encode(ok.view(np.float32), "e8m0").astype(np.int64), want)
    tab, limit = fast_cast._sentinel(fast_cast.key_table(get_format("e8m0"), "rne", "nan", "error", "error"),
                                     get_format("e8m0"))
    for m in (1, 5, 1000):  # the accepted block's codes come from the sum, not the gather
        assert np.array_equal(fast_cast._e8m0_rne(ok[:m], tab, limit).astype(np.int64), want[:m])


def test_e8m0_sum_path_error_position(monkeypatch):
    """A negative value in a later block raises SpecialValueError naming its own position, as the gather does."""
    monkeypatch.setattr(fast_cast, "_E8M0_BLOCK", 64)
    x = np.full(1000, 3.0, dtype=np.float32)
    x[700] = -2.0
    with pytest.raises(SpecialValueError, match="element 700 "):
        fast.encode(x, "e8m0")
    x[700] = 2.0 ** -130  # a subnormal in an otherwise accepted array: the gather's code for it
    assert fast.encode(x, "e8m0")[700] == round_value(exact.decode(int(x[700:701].view(np.uint32)[0]),
                                                                    "binary32"), "e8m0").code
    assert np.all(fast.encode(x, "e8m0")[:700] == 128)


@pytest.mark.slow
def test_all_binary32_to_e8m0_sum_path():
    """Every binary32 pattern: the binary64-sum formula, where its check accepts it, and the whole encode equal the
    exact model's sticky-key table (rne, overflow='nan', negative='clamp' and 'error')."""
    keys = np.arange(1 << 17, dtype=np.uint32)
    ex = exact_by_key("e8m0", (keys >> np.uint32(1)) << np.uint32(16) | (keys & np.uint32(1)), negative="clamp")
    chunk = 1 << 22
    accepted = 0
    for lo in range(0, 1 << 32, chunk):
        x = np.arange(lo, lo + chunk, dtype=np.uint64).astype(np.uint32)
        ref = ex[fast_cast.sticky_keys(x)]
        s = x.view(np.int32).astype(np.float64)
        s += fast_cast._E8M0_MAGIC
        h = s.view(np.uint64).astype(np.uint16)
        ok = h >= 0xFF02
        accepted += int(ok.sum())
        assert np.array_equal((h[ok] & np.uint16(0xFF)).astype(np.int64), ref[ok]), f"formula at {lo:#x}"
        assert np.array_equal(fast.encode(x.view(np.float32), "e8m0", negative="clamp").astype(np.int64), ref)
    # every positive normal from 1.5 * 2^-126 up, +inf and the NaNs below 0x7FC00000
    assert accepted == 0x7FC00000 - 0x00C00000
