"""The cast bit kernel (refarith.fast.castkernel) on numpy words, every deterministic mode, integer and binary64
sources, stochastic rounding and the sticky-key helpers; expected codes from refarith.exact."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError, SpecialValueError, UnknownModeError
from refarith.exact import ops as exact
from refarith.exact.rounding import round_value
from refarith.fast.bitops import NumpyBitOps
from refarith.fast.castkernel import cast_bits, key_representative, sticky_key, sticky_key_suffices
from refarith.formats import IntFormat, float_formats, get_format

MODES = ("rne", "rna", "rtz", "rup", "rdn", "rto")


def _want(src, dst, bits, **kw):
    out = []
    for b in bits:
        try:
            out.append(round_value(exact.decode(int(b), src), dst, **kw).code)
        except SpecialValueError:
            out.append(-1)
    return out


def _kernel(width, src, dst, bits, **kw):
    ops = NumpyBitOps(width)
    x = ops.word(np.asarray(bits))
    r = kw.pop("r", None)
    codes, err = cast_bits(ops, x, src, dst, r=None if r is None else ops.word(np.asarray(r)), **kw)
    codes = np.broadcast_to(codes, x.shape).astype(np.int64)
    return np.where(np.broadcast_to(err, x.shape), -1, codes).tolist()


def _b64(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(n) * np.exp2(rng.integers(-30, 30, n).astype(np.float64))
    v[:8] = [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, 1e300, -1e-300]
    return v.view(np.uint64)


@pytest.mark.parametrize("dst", ["ocp_e4m3", "ocp_e5m2", "ocp_e2m1", "e8m0", "binary16", "ue4m3"])
def test_binary64_every_mode(dst):
    bits = _b64(1, 150)
    f = get_format(dst)
    for mode in MODES:
        kw = dict(rounding=mode)
        if not f.signed:
            kw["negative"] = "clamp"
        if not f.has_nan:
            kw["nan_policy"] = "max"
        assert _kernel(64, "binary64", dst, bits, **kw) == _want("binary64", dst, bits, **kw), mode
    # errors: NaN into a format without NaN, negatives into an unsigned one (default policies)
    assert _kernel(64, "binary64", dst, bits) == _want("binary64", dst, bits)


@pytest.mark.parametrize("src", ["int8", "int16", "int32", "uint8", "uint32", "int64"])
def test_integer_sources_every_mode(src):
    f = get_format(src) if src != "int64" else IntFormat("int64", 64, signed=True)
    rng = np.random.default_rng(len(src))
    n = f.bits
    vals = rng.integers(0, 1 << min(n, 62), 120, dtype=np.int64).astype(np.uint64)
    edge = [0, 1, 2, 3, 7, 15, 17, 255, (1 << n) - 1, 1 << (n - 1), (1 << (n - 1)) - 1, (1 << (n - 1)) + 1]
    bits = np.concatenate([np.array(edge, dtype=np.uint64), vals])
    for dst in ("ocp_e4m3", "ocp_e2m1", "bfloat16"):
        for mode in MODES:
            assert _kernel(64, f, dst, bits, rounding=mode) == _want(f, dst, bits, rounding=mode), (dst, mode)


@pytest.mark.parametrize("src,dst,width,k", [("binary64", "ocp_e4m3", 64, 20), ("binary32", "ocp_e2m1", 32, 6),
                                             ("int16", "ocp_e4m3", 64, 8), ("binary16", "e8m0", 32, 3)])
def test_stochastic_rounding(src, dst, width, k):
    rng = np.random.default_rng(k)
    if src == "binary64":
        bits = _b64(2, 200)
        bits = bits[np.isfinite(bits.view(np.float64))]
    elif src == "binary32":
        bits = (rng.standard_normal(300) * 4).astype(np.float32).view(np.uint32)
    elif src == "int16":
        bits = rng.integers(0, 1 << 16, 300).astype(np.uint64)
    else:
        bits = rng.integers(0, 0x7C00, 300).astype(np.uint64)
    r = rng.integers(0, 1 << k, bits.size)
    r[:4] = [0, (1 << k) - 1, 0, (1 << k) - 1]
    kw = dict(rounding="sr", rand_bits=k)
    want = [round_value(exact.decode(int(b), src), dst, rand=int(rr), **kw).code for b, rr in zip(bits, r)]
    assert _kernel(width, src, dst, bits, r=r, **kw) == want


def test_kernel_checks():
    ops = NumpyBitOps(64)
    x = ops.word(np.array([0]))
    with pytest.raises(UnknownModeError, match=r"^stochastic rounding needs r \(the random integers\)$"):
        cast_bits(ops, x, "binary64", "ocp_e4m3", rounding="sr", rand_bits=4)
    with pytest.raises(BadValueError, match=r"^cast kernel targets float formats of at most 16 bits, not binary32$"):
        cast_bits(ops, x, "binary64", "binary32")
    for bad in (0, -1, None, 1.0):
        with pytest.raises(UnknownModeError):
            cast_bits(ops, x, "binary64", "ocp_e4m3", rounding="sr", r=x, rand_bits=bad)
    codes, err = cast_bits(ops, x, "binary64", "ocp_e4m3", rounding="sr", r=x, rand_bits=1)
    assert int(np.broadcast_to(codes, (1,))[0]) == 0 and not np.broadcast_to(err, (1,))[0]
    # default nan_policy is "error": NaN into e2m1 is flagged
    nan = ops.word(np.array([0x7FF8000000000000], dtype=np.uint64))
    assert bool(np.broadcast_to(cast_bits(ops, nan, "binary64", "ocp_e2m1")[1], (1,))[0])


def test_sticky_key_helpers():
    ops = NumpyBitOps(32)
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.integers(0, 1 << 32, 3000, dtype=np.uint64).astype(np.uint32),
                        np.array([0, 1, 0xFFFF, 0x10000, 0x10001, 0xFFFFFFFF], np.uint32)])
    want = [((int(v) >> 16) << 1) | int(int(v) & 0xFFFF != 0) for v in x]
    assert np.asarray(sticky_key(ops, ops.word(x))).tolist() == want
    keys = np.arange(0, 1 << 17, 7, dtype=np.uint32)
    reps = np.asarray(key_representative(ops, ops.word(keys))).astype(np.uint32)
    assert np.asarray(sticky_key(ops, ops.word(reps))).tolist() == keys.tolist()
    assert ((reps >> 16) == (keys >> 1)).all()


def test_sticky_key_suffices_condition():
    """The docstring's condition, computed here for every source binade: the round bit at or above bit 16."""
    for f in float_formats():
        want = f.nbits <= 16 and all(max(e, f.emin) - f.mbits - 1 - max(e - 23, -149) >= 16
                                     for e in range(-149, 128))
        assert sticky_key_suffices(f) == want, f.name
    assert sticky_key_suffices("ocp_e4m3") and not sticky_key_suffices("binary16")
    assert not sticky_key_suffices("binary32") and not sticky_key_suffices(get_format("int8"))
    assert sticky_key_suffices("ocp_e2m1") and sticky_key_suffices("ue5m3")
