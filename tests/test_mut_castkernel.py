"""The cast bit kernel's stochastic variants (refarith.fast.castkernel._sr_up) on numpy words, against the exact
model (refarith.exact.rounding.round_value with the same ``sr_variant``): every variant of
refarith.exact.stochastic, with sources whose dropped fraction is wider than k (binary64, binary32) and narrower
than k (small integers, binary16 into wide targets), and random words at both ends of [0, 2^k)."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError
from refarith.exact import ops as exact
from refarith.exact.rounding import round_value
from refarith.fast.bitops import NumpyBitOps
from refarith.fast.castkernel import cast_bits, required_width, sr_fraction_bits
from refarith.formats import FloatFormat, get_format


def _ties(src: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Source codes whose low significand bits are 10...0 (a tie at some bit below the kept ones), random
    sign, exponent and upper bits, plus fully random codes."""
    f = get_format(src)
    codes = []
    for _ in range(n):
        low = int(rng.integers(1, f.mbits + 1))  # the tie bit sits at position low - 1
        top = int(rng.integers(0, 1 << (f.mbits - low + 1))) if f.mbits > low else 0
        m = (top << low) | (1 << (low - 1))
        e = int(rng.integers(1, f.emask))  # finite, normal
        s = int(rng.integers(0, 2))
        codes.append((s << (f.nbits - 1)) | (e << f.mbits) | (m & f.mmask))
    rand = rng.integers(0, 1 << min(f.nbits, 62), n, dtype=np.int64).astype(np.uint64)
    finite = [int(c) for c in rand.tolist() if exact.decode(int(c), f).is_finite]
    return np.array(codes + finite, dtype=np.uint64)


def _check(width: int, src, dst: str, bits: np.ndarray, k: int, variant: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = rng.integers(0, 1 << k, bits.size, dtype=np.int64)
    r[:6] = [0, (1 << k) - 1, 1, (1 << k) - 2, 0, (1 << k) - 1]
    kw = dict(rounding="sr", rand_bits=k, sr_variant=variant)
    sf = get_format(src)
    want = [round_value(exact.decode(int(b), sf), dst, rand=int(rr), **kw).code for b, rr in zip(bits, r)]
    ops = NumpyBitOps(width)
    x = ops.word(bits)
    codes, err = cast_bits(ops, x, sf, dst, r=ops.word(r.astype(np.uint64)), **kw)
    assert not np.broadcast_to(err, x.shape).any()
    got = np.broadcast_to(codes, x.shape).astype(np.int64).tolist()
    assert got == want, (src, dst, k, variant)


@pytest.mark.parametrize("variant", ["a", "b", "c", "c_odd"])
@pytest.mark.parametrize("src,dst,width,k", [("binary64", "ocp_e4m3", 64, 5), ("binary32", "ocp_e2m1", 32, 3),
                                             ("binary16", "ocp_e5m2", 32, 3), ("binary16", "bfloat16", 32, 12)])
def test_sr_variants_match_exact_model(variant, src, dst, width, k):
    bits = _ties(src, 60, np.random.default_rng(len(src) + k))
    _check(width, src, dst, bits, k, variant, seed=k)


@pytest.mark.parametrize("variant", ["a", "b", "c", "c_odd"])
def test_sr_variants_integer_source_fewer_dropped_bits_than_k(variant):
    """int16 -> ocp_e4m3 drops fewer bits than k = 10 for small magnitudes (the left-shift branch of the
    fraction), more for large ones."""
    rng = np.random.default_rng(7)
    vals = np.concatenate([np.arange(0, 40), rng.integers(0, 1 << 16, 80)]).astype(np.uint64)
    _check(64, "int16", "ocp_e4m3", vals, 10, variant, seed=11)


def test_sr_te_e2m1_8_every_neighbour():
    """te_e2m1_8 (k = 8) into E2M1: values near the neighbours 0.5, 1 and above (j = 17, 16, 15), from binary32
    and binary16 sources."""
    rng = np.random.default_rng(5)
    grid = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0], np.float32)
    near = np.concatenate([grid, np.nextafter(grid, np.float32(9)), np.nextafter(grid, np.float32(-1)),
                           rng.uniform(0, 6.5, 120).astype(np.float32)])
    near = np.concatenate([near, -near]).astype(np.float32)
    _check(32, "binary32", "ocp_e2m1", near.view(np.uint32).astype(np.uint64), 8, "te_e2m1_8", seed=3)
    # r = 0 decides the neighbour rule: just below 0.5, 1 and 4, 256 * frac + 0 lies within 2^-j of 256
    below = np.nextafter(np.array([0.5, 1.0, 1.5, 4.0, 6.0], np.float32), np.float32(0))
    bits = below.view(np.uint32).astype(np.uint64)
    ops = NumpyBitOps(32)
    kw = dict(rounding="sr", rand_bits=8, sr_variant="te_e2m1_8")
    codes, _ = cast_bits(ops, ops.word(bits), "binary32", "ocp_e2m1", r=ops.word(np.zeros(5, np.uint64)), **kw)
    want = [round_value(exact.decode(int(b), "binary32"), "ocp_e2m1", rand=0, **kw).code for b in bits]
    assert np.broadcast_to(codes, bits.shape).astype(np.int64).tolist() == want
    h = near.astype(np.float16)
    _check(32, "binary16", "ocp_e2m1", h.view(np.uint16).astype(np.uint64), 8, "te_e2m1_8", seed=4)


def test_sr_fraction_bits_and_word_width():
    """The fraction bits each variant reads (its docstring: k, k + 1 for b, 8 + 17 for te_e2m1_8) and the
    word-width choice they drive: 32-bit words hold at most 30 fraction bits (k <= width - 2)."""
    assert [sr_fraction_bits(8, v) for v in ("a", "b", "c", "c_odd", "te_e2m1_8")] == [8, 9, 8, 8, 25]
    assert sr_fraction_bits(None) is None and sr_fraction_bits(None, "b") is None
    assert required_width("binary32", "ocp_e4m3", 30) == 32
    assert required_width("binary32", "ocp_e4m3", 30, "b") == 64  # 31 fraction bits
    assert required_width("binary32", "ocp_e2m1", 8, "te_e2m1_8") == 32
    with pytest.raises(BadValueError, match=r"^cast binary32->ocp_e4m3 \(rand_bits=70, sr=a\) does not fit "
                                            r"64-bit words$"):
        required_width("binary32", "ocp_e4m3", 70)


def test_word_width_of_wide_sources():
    """Sources outside the named formats: a 24-bit exponent (the unbounded-exponent code of a binary16 result,
    about 2^23 * 2^10, does not fit below bit 31) and a 31-bit significand (more than the 29 bits a 32-bit word
    keeps below its guard bits) need 64-bit words; with a 3-bit target mantissa the wide exponent fits in 32.
    At the chosen width the kernel gives the exact model's codes; a narrower word is refused."""
    wide_e = FloatFormat("wide_e24m4", 24, 4, (1 << 23) - 1)
    long_m = FloatFormat("long_m31", 8, 31, 127)
    assert required_width(wide_e, "binary16") == 64 and required_width(long_m, "binary16") == 64
    assert required_width(wide_e, "ocp_e4m3") == 32 and required_width(long_m, "ocp_e4m3") == 64
    rng = np.random.default_rng(1)
    for src, dst, width in ((wide_e, "binary16", 64), (long_m, "binary16", 64), (wide_e, "ocp_e4m3", 32)):
        bits = rng.integers(0, 1 << src.nbits, 40, dtype=np.int64).astype(np.uint64)
        ops = NumpyBitOps(width)
        codes, err = cast_bits(ops, ops.word(bits), src, dst)
        want = [round_value(exact.decode(int(b), src), dst).code for b in bits]
        assert np.broadcast_to(codes, bits.shape).astype(np.int64).tolist() == want, (src.name, dst)
    for src in (wide_e, long_m):
        ops = NumpyBitOps(32)
        with pytest.raises(BadValueError, match=rf"^cast {src.name}->binary16 \(rand_bits=None\) needs wider than "
                                                r"32-bit words$"):
            cast_bits(ops, ops.word(np.zeros(1, np.uint64)), src, "binary16")


def test_random_bits_limits_of_the_word():
    """cast_bits refuses a k that its words cannot hold (as required_width does) and accepts the widest k they
    hold: for integer sources in 64-bit words, k = 56 into E4M3, checked against the exact model there."""
    ops = NumpyBitOps(32)
    x = ops.word(np.zeros(1, np.uint64))
    with pytest.raises(BadValueError, match=r"^cast binary32->ocp_e4m3 \(rand_bits=31\) needs wider than 32-bit "
                                            r"words$"):
        cast_bits(ops, x, "binary32", "ocp_e4m3", rounding="sr", r=x, rand_bits=31)
    vals = np.concatenate([np.arange(0, 24), np.array([255, 1000, 32767, 40000, 65535])]).astype(np.uint64)
    _check(64, "int16", "ocp_e4m3", vals, 56, "a", seed=2)
    ops = NumpyBitOps(64)
    x = ops.word(vals)
    with pytest.raises(BadValueError, match=r"needs wider than 64-bit words$"):
        cast_bits(ops, x, "int16", "ocp_e4m3", rounding="sr", r=x, rand_bits=57)


@pytest.mark.parametrize("dst,overflow", [("binary8p3ue", None), ("binary8p3ue", "satfinite"), ("binary8p5ue", None),
                                          ("binary8p4uf", None), ("binary8p3se", "satpropagate"),
                                          ("binary8p3se", None)])
def test_p3109_targets_negative_projection_every_mode(dst, overflow):
    """P3109 targets with their default negative='project' (and satnone unless named): negatives into unsigned
    formats are rounded with their sign (rup/rdn decide by it) before projection, tiny ones included; binary16's
    range overflows binary8p5ue (max 232, with +inf)."""
    rng = np.random.default_rng(9)
    h = np.concatenate([np.array([0x8001, 0x8000, 0x83FF, 0xBC00, 0xFC00, 0x7C00, 0x7E00, 0x0001, 0x7BFF]),
                        rng.integers(0, 1 << 16, 120)]).astype(np.uint64)
    for mode in ("rne", "rna", "rtz", "rup", "rdn", "rto"):
        kw = dict(rounding=mode) if overflow is None else dict(rounding=mode, overflow=overflow)
        sf = get_format("binary16")
        want = [round_value(exact.decode(int(b), sf), dst, **kw).code for b in h]
        ops = NumpyBitOps(32)
        codes, err = cast_bits(ops, ops.word(h), sf, dst, **kw)
        assert np.broadcast_to(codes, h.shape).astype(np.int64).tolist() == want, mode


def test_widest_significand_of_a_32_bit_word_far_below_the_target():
    """A 29-bit significand (the widest 32-bit words hold) with a bias of 40: every value lies binades below
    binary16's smallest subnormal, so the shift is clamped to width - 1 and rne/rna give (signed) zero, rup the
    smallest subnormal for positive values; codes from the exact model."""
    f = FloatFormat("m29_b40", 2, 29, 40)
    assert required_width(f, "binary16") == 32
    rng = np.random.default_rng(1)
    bits = np.concatenate([rng.integers(0, 1 << 32, 40, dtype=np.int64),
                           [1, (1 << 29) - 1, 1 << 29, (1 << 29) + 1, (1 << 30) + 5, (1 << 31) | (1 << 29) | 7]])
    bits = bits.astype(np.uint64)
    ops = NumpyBitOps(32)
    for mode in ("rne", "rna", "rup"):
        codes, _ = cast_bits(ops, ops.word(bits), f, "binary16", rounding=mode)
        want = [round_value(exact.decode(int(b), f), "binary16", rounding=mode).code for b in bits]
        assert np.broadcast_to(codes, bits.shape).astype(np.int64).tolist() == want, mode


@pytest.mark.parametrize("src,dst,overflow", [("binary32", "binary16", "inf_always"),
                                              ("binary16", "ocp_e4m3", "nan_rto"),
                                              ("binary16", "ocp_e4m3", "saturate_inf_nan")])
def test_library_overflow_modes_every_mode(src, dst, overflow):
    """The deployed libraries' overflow variants through the kernel, every deterministic mode, values around
    and beyond the target's range and infinities, against the exact model."""
    f = get_format(src)
    top = 70000.0 if dst == "binary16" else 500.0
    v = np.array([top, -top, 1e30 if src == "binary32" else 60000.0, 3.0, np.inf, -np.inf], np.float64)
    v = np.concatenate([v, np.linspace(-2 * top, 2 * top, 41)])
    bits = (v.astype(np.float32).view(np.uint32) if src == "binary32" else
            v.astype(np.float16).view(np.uint16)).astype(np.uint64)
    ops = NumpyBitOps(32)
    for mode in ("rne", "rna", "rtz", "rup", "rdn", "rto"):
        codes, _ = cast_bits(ops, ops.word(bits), f, dst, rounding=mode, overflow=overflow)
        want = [round_value(exact.decode(int(b), f), dst, rounding=mode, overflow=overflow).code for b in bits]
        assert np.broadcast_to(codes, bits.shape).astype(np.int64).tolist() == want, mode
