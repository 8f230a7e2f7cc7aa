"""The gather-free fixed-point reading of the binary32 stochastic casts (refarith.fast.srfast._encode_sr_scaled).

Expected codes come from the exact model (:func:`refarith.exact.ops.cast`) on boundary-dense inputs, and from
``cast_bits`` (the bit kernel the cast.binary32->*.sr theorems prove) on every high half of a binary32 pattern.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.exact import ops
from refarith.fast import srfast
from refarith.fast.bitops import NumpyBitOps
from refarith.fast.castkernel import cast_bits
from refarith.formats import get_format

VARIANTS = ["a", "b", "c", "c_odd", "te_e2m1_8"]


def _exact(bits, r, dst, variant, k, nan_policy="error"):
    return np.array([ops.cast(int(b), "binary32", dst, "sr", rand=int(rr), rand_bits=k, sr_variant=variant,
                              nan_policy=nan_policy).code for b, rr in zip(bits, r)])


def _f32(v: Fraction) -> int:
    """The binary32 pattern of v (exactly representable)."""
    p = int(np.float32(float(v)).view(np.uint32))
    assert Fraction(float(np.uint32(p).view(np.float32))) == v
    return p


def _grid(dst: str) -> list[Fraction]:
    """The nonnegative finite values of ``dst``, ascending, from the exact model's decoding."""
    f = get_format(dst)
    vals = (ops.decode(c, f) for c in range(f.sign_mask))
    return sorted({v.fraction for v in vals if v.is_finite})


def _boundary_words(dst: str, k: int) -> np.ndarray:
    """Both signs of: every neighbour pair (g, g + u) of the grid at the fractions m / 2^k, m in {0, 1, 2^(k-1) - 1,
    2^(k-1), 2^(k-1) + 1, 2^k - 1} (ties of c and c_odd at m / 2^k + 1 / 2^(k+1)), one and two binary32 steps
    either side of each, and the last few binary32 values below g + u (te_e2m1_8's offset); values above the largest
    finite one (saturation), binary32 subnormals, values far below the smallest subnormal of the target, zeros,
    and fixed-point ties whose binary32 value has bits below the reading's last bit (the binades just below
    the normal range)."""
    g = _grid(dst)
    words = set()
    for lo, hi in zip(g, g[1:]):
        u = hi - lo
        for m in sorted({0, 1, (1 << (k - 1)) - 1, 1 << (k - 1), (1 << (k - 1)) + 1, (1 << k) - 1}):
            for extra in (Fraction(0), Fraction(1, 1 << (k + 1))):
                v = lo + u * (Fraction(m, 1 << k) + extra)
                if v >= hi:
                    continue
                w = _f32(v)
                words.update(w + d for d in (-2, -1, 0, 1, 2) if w + d >= 0)
        top = _f32(hi)
        words.update(top - d for d in range(1, 6))
    top = _f32(g[-1])
    words.update([top + 1, top + 0x10000, _f32(g[-1] + (g[-1] - g[-2]) / 2), _f32(g[-1] * 2) - 1, _f32(g[-1] * 2),
                  0x7F7FFFFF, 0x4F000000])
    words.update([0, 1, 2, 0x3FF, 0x400000, 0x7FFFFF, 0x800000, 0x800001, 0x1000000, 0x2A000FFF, 0x33FFFFFF])
    lowest = _f32(g[1])  # the smallest subnormal of the target and the binades below it
    for e in range(1, 5):
        words.update([lowest - (e << 23), (lowest - (e << 23)) | 1, (lowest - (e << 23)) | 0x7FFFFF])
    e_reg = srfast._regular_plan(get_format(dst), "saturate", "error", "error", k)[0]
    d0 = 23 - get_format(dst).mbits
    p = d0 - k
    for t in (1, 2, 3):  # ties of V (bits below p = 2^(p-1), bit p both ways) with bits below q's last one
        for half in (1 << (p - 1), 3 << (p - 1)):
            base = ((e_reg - t) << 23) | ((half << t) & 0x7FFFFF)
            words.update([base, base | 1, base | ((1 << t) - 1)])
    w = np.array(sorted(words), dtype=np.uint32)
    return np.concatenate([w, w | np.uint32(0x80000000)])


@pytest.mark.parametrize("dst,variant,k", [(d, v, k) for d in ("ocp_e2m1", "ocp_e2m3", "ocp_e3m2") for v in VARIANTS
                                             for k in (2, 3, 8) if v != "te_e2m1_8" or (d, k) == ("ocp_e2m1", 8)])
def test_scaled_reading_against_the_exact_model(dst, variant, k):
    """Every neighbour pair, tie, carry, saturation, subnormal and zero of :func:`_boundary_words`, with every r
    for k = 2 and 3 and the extremes and middle of r (plus seeded ones) for k = 8, against the exact model
    (te_e2m1_8 is defined for E2M1 with k = 8 only)."""
    f = get_format(dst)
    assert srfast._scaled_plan(f, "saturate", "error", "error", variant, k) is not None
    words = _boundary_words(dst, k)
    rs = np.arange(1 << k) if k <= 3 else np.array([0, 1, 127, 128, 129, 254, 255])
    bits, r = np.repeat(words, rs.size), np.tile(rs, words.size)
    if k == 8:
        bits = np.concatenate([bits, words])
        r = np.concatenate([r, np.random.default_rng(len(dst)).integers(0, 256, words.size)])
    got, err = srfast.encode_sr(bits, f, "saturate", "error", "error", r.astype(np.uint8), k, variant, np.uint8)
    assert not err.any()
    want = _exact(bits, r, dst, variant, k)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, [(hex(int(bits[i])), int(r[i]), int(got[i]), int(want[i])) for i in bad[:8]]


@pytest.mark.parametrize("nan_policy", ["error", "zero", "max"])
def test_scaled_reading_nan_and_infinity(nan_policy):
    """NaNs and infinities (both signs, several payloads) amid ordinary values, in blocks with and without
    them: codes and error flags equal the exact model's (an error where it raises)."""
    f = get_format("ocp_e2m1")
    specials = np.array([0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x7F800001, 0x7FFFFFFF, 0xFFFFFFFF],
                        np.uint32)
    rng = np.random.default_rng(3)
    filler = (rng.standard_normal(70000) * 2).astype(np.float32).view(np.uint32)  # a second block, no specials
    bits = np.concatenate([np.repeat(specials, 2), filler[:200], filler])
    r = rng.integers(0, 256, bits.size)
    for variant in VARIANTS:
        got, err = srfast.encode_sr(bits, f, "saturate", nan_policy, "error", r.astype(np.uint8), 8, variant,
                                    np.uint8)
        head = slice(0, specials.size * 2 + 200)
        for i in range(head.stop):
            b, rr = int(bits[i]), int(r[i])
            try:
                want = ops.cast(b, "binary32", f, "sr", rand=rr, rand_bits=8, sr_variant=variant,
                                nan_policy=nan_policy).code
            except Exception:
                assert err[i], (variant, hex(b))
                continue
            assert not err[i] and got[i] == want, (variant, hex(b), int(got[i]), want)
        assert not err[head.stop:].any()


@pytest.mark.parametrize("dst,variant,k", [("ocp_e2m1", v, 8) for v in VARIANTS]
                         + [("ocp_e2m1", "c", 3), ("ocp_e2m1", "b", 13), ("ocp_e2m3", "c_odd", 8),
                            ("ocp_e3m2", "a", 5), ("ocp_e4m3", "c", 8), ("ocp_e5m2", "b", 8)])
def test_scaled_reading_every_high_half(dst, variant, k):
    """srfast._encode_sr_scaled against cast_bits on every high half of a binary32 pattern (sign, exponent, 7
    mantissa bits: 2^16 values) x 6 low halves (0, 1, 0x2000, 0x2001, 0x7FFF, 0xFFFF: zero, sticky, the tie bit
    of k = 8, all ones), r seeded with r = 0 and 2^k - 1 on every 7th / 11th element, uint8 and uint32 codes.  The
    8-bit targets (saturating) check the reading where encode_sr does not pick it."""
    f = get_format(dst)
    plan = srfast._scaled_plan(f, "saturate", "error", "error", variant, k)
    assert plan is not None
    hi = np.arange(1 << 16, dtype=np.uint32)
    lows = np.array([0, 1, 0x2000, 0x2001, 0x7FFF, 0xFFFF], np.uint32)
    b = ((hi[:, None] << np.uint32(16)) | lows[None, :]).ravel()
    rng = np.random.default_rng(k)
    r = rng.integers(0, 1 << k, b.size).astype(np.uint32)
    r[::7] = (1 << k) - 1
    r[::11] = 0
    want, werr = cast_bits(NumpyBitOps(32), b, "binary32", f, "sr", "saturate", "error", "error", r, k, variant)
    werr = np.broadcast_to(werr, b.shape)
    for out_dtype in (np.uint8, np.uint32):
        got, gerr = srfast._encode_sr_scaled(b, f, "saturate", "error", "error", r, k, variant, out_dtype, plan)
        assert got.dtype == out_dtype
        np.testing.assert_array_equal(gerr, werr)
        np.testing.assert_array_equal(np.where(werr, 0, got), np.where(werr, 0, want))


def test_scaled_reading_is_taken_for_small_targets_only(monkeypatch):
    """encode_sr takes the fixed-point reading for E2M1 and FP6 (no carry or keyed call for finite data), and
    the carry reading for 8-bit targets; targets and modes it cannot read (an unsigned E8M0, E4M3 overflowing to
    NaN) have no plan."""
    calls = []
    carry, keyed = srfast._encode_sr_carry, srfast._encode_sr_keyed
    monkeypatch.setattr(srfast, "_encode_sr_carry", lambda *a: calls.append("carry") or carry(*a))
    monkeypatch.setattr(srfast, "_encode_sr_keyed", lambda *a: calls.append("keyed") or keyed(*a))
    x = (np.random.default_rng(1).standard_normal(1000) * 3).astype(np.float32).view(np.uint32)
    r = np.zeros(x.size, np.uint8)
    for dst in ("ocp_e2m1", "ocp_e2m3", "ocp_e3m2"):
        for variant in VARIANTS if dst == "ocp_e2m1" else VARIANTS[:4]:
            srfast.encode_sr(x, get_format(dst), "saturate", "error", "error", r, 8, variant, np.uint8)
    assert calls == []
    srfast.encode_sr(x, get_format("ocp_e4m3"), "saturate", "error", "error", r, 8, "a", np.uint8)
    assert calls[0] == "carry"
    assert srfast._scaled_plan(get_format("e8m0"), "saturate", "error", "clamp", "a", 8) is None
    assert srfast._scaled_plan(get_format("ocp_e4m3"), "nan", "error", "error", "a", 8) is None
    assert srfast._scaled_plan(get_format("ocp_e2m1"), "saturate", "error", "error", "a", 21) is None  # p < 2


def test_carry_reading_fixed_point_switch_on_an_8_bit_target(monkeypatch):
    """E4M3 keeps the carry reading; a block mostly below its normal range (|x| < 2^-6) switches to fixed-point
    words (srfast._small_table) rather than sending those elements to the keyed path, with the keyed path's
    codes (E2M1, where this switch used to run, now takes the fixed-point reading above)."""
    f = get_format("ocp_e4m3")
    plan = srfast._carry_plan(f, "saturate", "error", "error", "c", 8, "|u1")
    assert plan is not None and plan[3] is not None
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(1 << 17) * 2.0 ** -8).astype(np.float32).view(np.uint32)
    r = rng.integers(0, 256, x.size).astype(np.uint8)
    calls = []
    keyed = srfast._encode_sr_keyed
    monkeypatch.setattr(srfast, "_encode_sr_keyed", lambda bits, *a: calls.append(bits.size) or keyed(bits, *a))
    got, _ = srfast.encode_sr(x, f, "saturate", "error", "error", r, 8, "c")
    assert sum(calls) < x.size // 100
    want, _ = keyed(x, f, "saturate", "error", "error", r, 8, "c", np.uint8)
    np.testing.assert_array_equal(got, want)
