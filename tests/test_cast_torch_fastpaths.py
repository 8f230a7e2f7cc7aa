"""The torch cast paths that replace the sticky-key gather or the one-code gather: E8M0's integer rounding
(rne, overflow='nan'), the E8M0 decode shift and the decode of 8-bit codes two at a time.

Expected codes come from the exact model (``round_value`` on one representative per sticky key, as in
tests/test_cast_fastpaths.py), expected values from the exact model's decode.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from test_cast_fastpaths import e8m0_patterns, exact_by_key

from refarith import fast
from refarith.errors import SpecialValueError
from refarith.exact import ops as exact
from refarith.exact.rounding import round_value
from refarith.fast import cast as fast_cast
from refarith.formats import float_formats

torch = pytest.importorskip("torch")


def _torch_encode(bits: np.ndarray, **kw) -> np.ndarray:
    return fast.encode(torch.from_numpy(bits.view(np.float32).copy()), "e8m0", backend="torch", **kw).numpy()


@pytest.mark.parametrize("block", [fast_cast._TORCH_E8M0_BLOCK, 7])
def test_e8m0_integer_path_equals_exact(monkeypatch, block):
    """rne, overflow='nan' (the default): binade edges, midpoints and neighbours, both signs, in blocks the integer
    rounding answers (x in [0x00C00000, 0x7FC00000)) and in blocks it hands to the gather (zeros, subnormals, the
    smallest normals, NaNs, negatives under negative='clamp')."""
    monkeypatch.setattr(fast_cast, "_TORCH_E8M0_BLOCK", block)
    bits = e8m0_patterns()
    assert np.array_equal(_torch_encode(bits, negative="clamp").astype(np.int64),
                          exact_by_key("e8m0", bits, negative="clamp"))
    pos = bits[bits < 0x80000000]
    ok = pos[(pos >= 0x00C00000) & (pos < 0x7FC00000)]
    assert np.array_equal(_torch_encode(ok).astype(np.int64), exact_by_key("e8m0", ok))


def test_e8m0_integer_path_takes_no_gather_where_it_answers(monkeypatch):
    """Blocks of accepted patterns never reach the sticky-key gather (a spy on it), and still give the exact
    codes; a block with a zero does."""
    calls = []
    real = fast_cast._torch_gather
    monkeypatch.setattr(fast_cast, "_torch_gather", lambda *a: calls.append(a[1].numel()) or real(*a))
    pos = e8m0_patterns()
    ok = pos[(pos >= 0x00C00000) & (pos < 0x7FC00000)]
    assert np.array_equal(_torch_encode(ok).astype(np.int64), exact_by_key("e8m0", ok))
    assert calls == []
    _torch_encode(np.concatenate([ok, np.zeros(1, np.uint32)]))
    assert calls


def test_e8m0_integer_path_error_position(monkeypatch):
    """A negative value in a later block raises SpecialValueError naming its own position; a subnormal in an
    otherwise accepted array gets the gather's (exact) code."""
    monkeypatch.setattr(fast_cast, "_TORCH_E8M0_BLOCK", 64)
    x = np.full(1000, 3.0, dtype=np.float32)
    x[700] = -2.0
    with pytest.raises(SpecialValueError, match="element 700 "):
        fast.encode(torch.from_numpy(x), "e8m0", backend="torch")
    x[700] = 2.0 ** -130
    got = fast.encode(torch.from_numpy(x), "e8m0", backend="torch").numpy()
    assert got[700] == round_value(exact.decode(int(x[700:701].view(np.uint32)[0]), "binary32"), "e8m0").code
    assert np.all(np.delete(got, 700) == 128)
    assert fast.encode(torch.zeros((3, 0)), "e8m0", backend="torch").shape == (3, 0)


def _exact_values(fmt) -> np.ndarray:
    """float32 value of every code by the exact model (NaN for NaN codes)."""
    out = []
    for c in range(fmt.ncodes):
        v = exact.decode(c, fmt)
        out.append(np.nan if v.is_nan else float(v.to_float()))
    vals = np.array(out, np.float32)
    fin = np.isfinite(vals)  # float32 holds every finite value exactly
    assert all(Fraction(float(a)) == exact.decode(int(c), fmt).mag
               for c, a in zip(np.flatnonzero(fin), np.abs(vals[fin])))
    return vals


def _same(got: np.ndarray, want: np.ndarray) -> bool:
    nan = np.isnan(want)
    return bool(np.array_equal(np.isnan(got), nan) and np.array_equal(got[~nan].view(np.uint32),
                                                                      want[~nan].view(np.uint32)))


@pytest.mark.parametrize("fmt", [f for f in float_formats() if f.nbits <= 8], ids=lambda f: f.name)
def test_decode_of_every_pair_of_codes(fmt):
    """Every ordered pair of codes (each code at an even and an odd position), an odd count, an odd storage offset
    (the one-code gather) and a 2-D shape: the torch decode gives the exact model's values (-0 and the sign of
    zero by bits)."""
    want = _exact_values(fmt)
    c = np.arange(fmt.ncodes, dtype=np.uint8)
    pairs = np.stack(np.meshgrid(c, c, indexing="ij"), -1).reshape(-1)
    for codes in (pairs, pairs[:-1], np.concatenate([c, c[:1]])):
        got = fast.decode(torch.from_numpy(codes), fmt, backend="torch").numpy()
        assert got.dtype == np.float32 and _same(got, want[codes])
    shifted = torch.from_numpy(np.concatenate([[0], pairs]).astype(np.uint8))[1:]
    assert _same(fast.decode(shifted, fmt, backend="torch").numpy(), want[pairs])
    two = torch.from_numpy(pairs[: 2 * fmt.ncodes].reshape(2, -1))
    got = fast.decode(two, fmt, backend="torch").numpy()
    assert got.shape == (2, fmt.ncodes) and _same(got.reshape(-1), want[pairs[: 2 * fmt.ncodes]])


def test_e8m0_decode_shift_and_patches():
    """Every E8M0 code, with and without codes 0 and 0xFF in the array: 2^(E - 127), code 0 the subnormal 2^-127,
    0xFF NaN."""
    from refarith.formats import get_format

    f = get_format("e8m0")
    want = _exact_values(f)
    c = np.arange(256, dtype=np.uint8)
    for codes in (c, c[1:255], c[:255], c[1:], c.reshape(16, 16)):
        got = fast.decode(torch.from_numpy(codes.copy()), f, backend="torch").numpy()
        assert got.shape == codes.shape and _same(got.reshape(-1), want[codes.reshape(-1)])
    assert fast.decode(torch.zeros(0, dtype=torch.uint8), f, backend="torch").numel() == 0


@pytest.mark.slow
def test_all_binary32_to_e8m0_torch_integer_path():
    """Every binary32 pattern through the torch encode (rne, overflow='nan', negative='clamp') equals the exact
    model's sticky-key table; the integer rounding answers every pattern in [0x00C00000, 0x7FC00000)."""
    keys = np.arange(1 << 17, dtype=np.uint32)
    ex = exact_by_key("e8m0", (keys >> np.uint32(1)) << np.uint32(16) | (keys & np.uint32(1)), negative="clamp")
    chunk = 1 << 24
    for lo in range(0, 1 << 32, chunk):
        x = np.arange(lo, lo + chunk, dtype=np.uint64).astype(np.uint32)
        got = _torch_encode(x, negative="clamp").astype(np.int64)
        assert np.array_equal(got, ex[fast_cast.sticky_keys(x)]), f"at {lo:#x}"
