"""Stochastic rounding variants of refarith.exact.stochastic: definitions against their published sources.

Expected values come from the sources' own rules, re-computed independently: gfloat's ``round_float`` (an
independent library) for a, b, c and c_odd, a float32 re-implementation of Transformer Engine's
``stochastic_round_fp4_e2m1`` for te_e2m1_8, and P3109's worked counts by hand.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import SpecError, UnknownModeError
from refarith.exact import ops
from refarith.exact.stochastic import (
    SR_VARIANTS,
    bias_bounds,
    canonical_variant,
    round_up,
    te_e2m1_offset_bits,
    up_count,
)
from refarith.formats import get_format
from refarith.spec import parse_spec


def _up_probability(value, dst: str, variant: str, k: int) -> Fraction:
    lo = ops.encode(value, dst, "rtz").code
    ups = sum(ops.encode(value, dst, "sr", rand=r, rand_bits=k, sr_variant=variant).code != lo for r in range(1 << k))
    return Fraction(ups, 1 << k)


def test_worked_example_e5m2_259_k5():
    # 259 = 256 + 3/64 ulp: floor(1.5) = 1 of 32 under P3109 StochasticA, RNITE(1.5) = 2 under StochasticC / gfloat
    assert _up_probability(259, "ocp_e5m2", "a", 5) == Fraction(1, 32)
    assert _up_probability(259, "ocp_e5m2", "c", 5) == Fraction(2, 32)
    # B: floor(3/64 * 64) = 3, 3 + 2r + 1 >= 64 for r >= 30: 2 of 32; ties to odd: RNITO(1.5) = 1
    assert _up_probability(259, "ocp_e5m2", "b", 5) == Fraction(2, 32)
    assert _up_probability(259, "ocp_e5m2", "c_odd", 5) == Fraction(1, 32)


def test_worked_example_matches_gfloat():
    gfloat = pytest.importorskip("gfloat")
    from gfloat.formats import format_info_ocp_e5m2

    ups = sum(gfloat.round_float(format_info_ocp_e5m2, 259.0, gfloat.RoundMode.Stochastic, False, r, 5) > 256
              for r in range(32))
    assert ups == 2


_GFLOAT_MODES = {"a": "StochasticFastest", "b": "StochasticFast", "c": "Stochastic", "c_odd": "StochasticOdd"}


@pytest.mark.parametrize("variant", sorted(_GFLOAT_MODES))
@pytest.mark.parametrize("dst", ["ocp_e5m2", "ocp_e4m3", "ocp_e2m1"])
def test_variants_equal_gfloat_on_binary16(variant, dst):
    """Every finite binary16 value (a stride through the codes), every r of k = 3: gfloat's round_float decides
    in float64, exactly for binary16 inputs, so it is an independent reference."""
    gfloat = pytest.importorskip("gfloat")
    import gfloat.formats as gf

    fi = getattr(gf, f"format_info_{dst}")
    mode = getattr(gfloat.RoundMode, _GFLOAT_MODES[variant])
    src = get_format("binary16")
    fmt = get_format(dst)
    k = 3
    checked = 0
    for code in range(0, 0x7C00, 173):
        v = ops.decode(code, src)
        x = v.to_float()
        for r in range(1 << k):
            want = gfloat.round_float(fi, x, mode, True, r, k)
            got = ops.cast(code, src, fmt, "sr", overflow="saturate", rand=r, rand_bits=k, sr_variant=variant)
            assert ops.decode(got.code, fmt).to_float() == want, (hex(code), r)
            checked += 1
    assert checked > 1000


def _te_reference(x: np.ndarray, rbits: np.ndarray) -> np.ndarray:
    """Transformer Engine's stochastic_round_fp4_e2m1 written in numpy float32 (u * step is exact, so the
    float32 add is fmaf's single rounding)."""
    f = np.float32
    u = rbits.astype(np.float32) * f(1.0 / 256.0)
    a = np.abs(x).astype(np.float32)
    step = np.where(a >= f(4), f(2), np.where(a >= f(2), f(1), f(0.5))).astype(np.float32)
    t = (a + (u * step).astype(np.float32)).astype(np.float32)
    step_t = np.where(t >= f(4), f(2), np.where(t >= f(2), f(1), f(0.5))).astype(np.float32)
    inv = np.where(t >= f(4), f(0.5), np.where(t >= f(2), f(1), f(2))).astype(np.float32)
    q = np.minimum(np.floor(t * inv) * step_t, f(6)).astype(np.float32)
    return np.copysign(q, x).astype(np.float32)


def test_te_e2m1_8_equals_transformer_engine_rule():
    rng = np.random.default_rng(14)
    # binary32 values: random magnitudes over the E2M1 range and far below it, plus the carry cases
    mags = np.concatenate([rng.uniform(0, 7, 600), 2.0 ** rng.uniform(-40, -1, 600)]).astype(np.float32)
    special = np.array([2.0 ** -9 - 2.0 ** -33, 0.5 - 2.0 ** -25, 1.0 - 2.0 ** -24, 2 - 2.0 ** -23, 5.999999],
                       dtype=np.float32)
    xs = np.concatenate([mags, special, -mags[:200]])
    r = rng.integers(0, 256, xs.size)
    r[-205 - 200:-200] = 255
    want = _te_reference(xs, r)
    e2m1 = get_format("ocp_e2m1")
    for x, rr, w in zip(xs, r, want):
        got = ops.encode(float(x), e2m1, "sr", rand=int(rr), rand_bits=8, sr_variant="te_e2m1_8").code
        assert ops.decode(got, e2m1).to_float() == float(w), (float(x), int(rr))


def test_te_differs_from_a_where_the_binary32_sum_rounds():
    # 2^-9 - 2^-33 + 255/512 lies 2^-33 below 0.5; binary32 rounds the sum to 0.5, so TE rounds up and a does not
    x = Fraction(1, 512) - Fraction(1, 1 << 33)
    assert ops.encode(x, "ocp_e2m1", "sr", rand=255, rand_bits=8, sr_variant="te_e2m1_8").code == 1
    assert ops.encode(x, "ocp_e2m1", "sr", rand=255, rand_bits=8, sr_variant="a").code == 0
    assert te_e2m1_offset_bits(0, Fraction(1, 2)) == 17


@pytest.mark.parametrize("variant", ["a", "b", "c", "c_odd"])
def test_up_count_closed_form_and_bias(variant):
    """Enumeration over every r equals the closed form, the bias lies in its stated bounds, and fractions of at
    most k bits are exactly unbiased."""
    k = 4
    lo, hi, lo_in, hi_in = bias_bounds(variant, k)
    for num in range(1, 1 << 9):
        frac = Fraction(num, 1 << 9)
        n = sum(round_up(variant, frac, r, k) for r in range(1 << k))
        assert n == up_count(variant, frac, k)
        bias = Fraction(n, 1 << k) - frac
        assert (lo <= bias if lo_in else lo < bias) and (bias <= hi if hi_in else bias < hi)
        if (frac * (1 << k)).denominator == 1:
            assert bias == 0


@pytest.mark.parametrize("variant", ["a", "b", "c", "c_odd"])
def test_monotone_in_r(variant):
    for num in range(1, 64):
        frac = Fraction(num, 64)
        ups = [round_up(variant, frac, r, 3) for r in range(8)]
        assert ups == sorted(ups)


def test_variant_names_and_spec_parameter():
    assert canonical_variant("gfloat") == "c"
    assert canonical_variant("gfloat_fastest") == "a"
    assert set(SR_VARIANTS) == {"a", "b", "c", "c_odd", "te_e2m1_8"}
    # the default variant is omitted, so ids of existing specs do not change
    assert str(parse_spec("cast(binary16->ocp_e5m2,rounding=sr,k=5,sr=a)")) == \
        "cast(binary16->ocp_e5m2,rounding=sr,overflow=inf,k=5)"
    assert str(parse_spec("cast(binary16->ocp_e5m2,rounding=sr,sr=gfloat_odd,k=5)")) == \
        "cast(binary16->ocp_e5m2,rounding=sr,overflow=inf,sr=c_odd,k=5)"
    for bad, words in [("cast(binary16->ocp_e5m2,sr=c)", "rounding=sr only"),
                       ("cast(binary16->ocp_e5m2,rounding=sr,sr=zz,k=5)", "unknown stochastic rounding variant"),
                       ("cast(binary16->ocp_e5m2,rounding=sr,sr=te_e2m1_8,k=8)", "E2M1 grid only"),
                       ("cast(binary16->ocp_e2m1,rounding=sr,sr=te_e2m1_8,k=4)", "k=8"),
                       ("cast(binary16->ocp_e5m2,rounding=sr,sr=c)", "needs k")]:
        with pytest.raises(SpecError, match=words):
            parse_spec(bad)


def test_bad_random_bits_are_one_clear_error():
    with pytest.raises(UnknownModeError, match="needs rand"):
        ops.encode(1.3, "ocp_e4m3", "sr", rand_bits=4, sr_variant="c")
    with pytest.raises(UnknownModeError, match="does not fit"):
        ops.encode(1.3, "ocp_e4m3", "sr", rand=16, rand_bits=4, sr_variant="b")
    with pytest.raises(UnknownModeError, match="unknown stochastic rounding variant"):
        ops.encode(1.3, "ocp_e4m3", "sr", rand=1, rand_bits=4, sr_variant="d")


@pytest.mark.parametrize("variant", ["a", "b", "c", "c_odd"])
def test_sr_in_arithmetic_rounds_to_a_neighbour(variant):
    """add/mul/div/fma/sqrt take the random integer as an operand: every result is the rtz or rup neighbour,
    and the round-up count over r equals the closed form of the exact result."""
    f = get_format("ocp_e4m3")
    k = 3
    for a, b in [(0x39, 0x2B), (0x41, 0x13), (0x5E, 0x31), (0x08, 0x03)]:
        for op in (ops.add, ops.mul, ops.div):
            lo = op(a, b, f, "rtz").code
            hi = op(a, b, f, "rup").code
            ups = 0
            for r in range(1 << k):
                got = op(a, b, f, "sr", rand=r, rand_bits=k, sr_variant=variant).code
                assert got in (lo, hi)
                ups += got != lo
            exact = {ops.add: ops.exact_add, ops.mul: ops.exact_mul, ops.div: ops.exact_div}[op](
                ops.decode(a, f), ops.decode(b, f))
            if lo != hi:
                ulp = ops.decode(hi, f).mag - ops.decode(lo, f).mag
                frac = (exact.mag - ops.decode(lo, f).mag) / ulp
                assert ups == up_count(variant, frac, k)
        got = ops.fma(a, b, 0x30, f, "sr", rand=5, rand_bits=k, sr_variant=variant).code
        assert got in (ops.fma(a, b, 0x30, f, "rtz").code, ops.fma(a, b, 0x30, f, "rup").code)


# ------------------------------------------------------------------ SR operand of the block and dot-product ops
def _ups_over_r(fn, k):
    """Per element: the set of results over every r (the same r for every element) and the round-up count."""
    outs = [fn([r] * 4) for r in range(1 << k)]
    return list(zip(*outs))


@pytest.mark.parametrize("variant", ["a", "c"])
def test_mx_bfp_intquant_elements_round_stochastically(variant):
    from refarith.exact import bfp, intquant, mx

    k = 3
    vals = [1.3, -0.37, 2.9, 0.051]
    cases = {
        "mx": (lambda rs: mx.quantize_block(vals, "ocp_e4m3", rounding="sr", rand=rs, rand_bits=k,
                                            sr_variant=variant).codes,
               lambda m: mx.quantize_block(vals, "ocp_e4m3", rounding=m).codes),
        "bfp": (lambda rs: bfp.quantize_block(vals, 6, "sr", rand=rs, rand_bits=k, sr_variant=variant).m,
                lambda m: bfp.quantize_block(vals, 6, m).m),
    }
    for name, (sr, det) in cases.items():
        lo, up, dn = det("rtz"), det("rup"), det("rdn")
        for i, results in enumerate(_ups_over_r(sr, k)):
            assert set(results) <= {lo[i], up[i], dn[i]}, (name, i)
            assert len(set(results)) == (1 if up[i] == dn[i] else 2) or lo[i] in (up[i], dn[i]), (name, i)
    g = intquant.quantize_group(vals, 4, rounding="sr", rand=[0, 7, 3, 4], rand_bits=k, sr_variant=variant)
    s = g.scale
    for x, q, r in zip(vals, g.q, [0, 7, 3, 4]):
        m = abs(Fraction(x) / s)
        n = m.numerator // m.denominator
        want = n + round_up(variant, m - n, r, k)
        assert q == (-want if x < 0 else want)


def test_block_ops_refuse_missing_or_bad_random_bits():
    from refarith.exact import fdot, intquant, mx, nvfp4

    with pytest.raises(UnknownModeError, match="needs rand"):
        mx.quantize_block([1.0, 2.0], "ocp_e4m3", rounding="sr", rand_bits=3)
    with pytest.raises(UnknownModeError, match="needs 2 random integers"):
        mx.quantize_block([1.0, 2.0], "ocp_e4m3", rounding="sr", rand=[1], rand_bits=3)
    with pytest.raises(UnknownModeError, match="does not fit"):
        intquant.quantize_group([1.0, 2.0], 8, rounding="sr", rand=[1, 8], rand_bits=3)
    with pytest.raises(UnknownModeError, match="one list of random integers per block"):
        nvfp4.quantize_blocks([[0x3F800000] * 16], rounding="sr", rand_bits=8)
    with pytest.raises(UnknownModeError, match="needs 3 random integers"):
        fdot.accumulate([ops.decode(0x38, "ocp_e4m3")] * 3, "binary16", rounding="sr", rand=[1, 2], rand_bits=4)


def test_nvfp4_elements_use_the_cast_rule():
    """NVFP4 with sr=te_e2m1_8: each element code equals the E2M1 stochastic cast of its scaled binary32 value."""
    from refarith.exact import nvfp4

    rng = np.random.default_rng(4)
    xs = (rng.standard_normal(16) * 3).astype(np.float32)
    blk = [int(b) for b in xs.view(np.uint32)]
    rs = [int(v) for v in rng.integers(0, 256, 16)]
    q = nvfp4.quantize_blocks([blk], rounding="sr", rand=[rs], rand_bits=8, sr_variant="te_e2m1_8")
    det = nvfp4.quantize_blocks([blk])
    assert q.scales == det.scales
    lo_c = nvfp4.quantize_blocks([blk], rounding="rtz").codes[0]
    up_c = nvfp4.quantize_blocks([blk], rounding="rup").codes[0]
    dn_c = nvfp4.quantize_blocks([blk], rounding="rdn").codes[0]
    ups = 0
    for c, lo, u, d, x in zip(q.codes[0], lo_c, up_c, dn_c, xs):
        assert c in (lo, d if x < 0 else u)
        ups += c != lo
    assert 0 < ups < 16


def test_fdot_accumulator_rounds_each_addition_stochastically():
    from refarith.exact import fdot

    f = get_format("ocp_e4m3")
    ps = [ops.decode(c, f) for c in (0x30, 0x29, 0x1B, 0x0D)]
    k = 2
    lo = fdot.accumulate(ps, "ocp_e5m2", rounding="rtz").code
    results = set()
    for r0 in range(4):
        for r1 in range(4):
            rs = [r0, r1, r1, r0]
            got = fdot.accumulate(ps, "ocp_e5m2", rounding="sr", rand=rs, rand_bits=k, sr_variant="c").code
            # each addition reproduced by hand with the exact cast rule
            a = Fraction(0)
            for p, r in zip(ps, rs):
                a = ops.decode(ops.encode(a + p.mag, "ocp_e5m2", "sr", rand=r, rand_bits=k, sr_variant="c").code,
                               "ocp_e5m2").mag
            assert ops.decode(got, "ocp_e5m2").mag == a
            results.add(got)
    assert lo in results and len(results) >= 2
    assert fdot.additions(4, "pairwise") == 3 and fdot.additions(4) == 4
