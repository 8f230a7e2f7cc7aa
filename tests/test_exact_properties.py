"""Properties of the one rounding function (hypothesis): monotonicity, sign symmetry, rdn <= x <= rup,
idempotence on representable values, flags, and the exact expectation of stochastic rounding."""

from __future__ import annotations

import functools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refarith.exact import DETERMINISTIC_MODES, decode, encode, round_value, value_table
from refarith.exact.value import Value
from refarith.formats import float_formats, get_format

FORMATS = [f.name for f in float_formats(16)] + ["e3m3", "e2m0_none", "ue5m2b10_fn_nosub"]
SETTINGS = settings(max_examples=150, deadline=None)


def val(code: int, fmt) -> Fraction | float:
    """Decoded value as a Fraction (±inf as float) for ordering."""
    v = decode(code, fmt)
    if v.is_inf:
        return float("-inf") if v.sign else float("inf")
    return v.fraction


@st.composite
def fractions(draw, lo_exp: int = -160, hi_exp: int = 140):
    m = draw(st.integers(0, (1 << 30) - 1))
    e = draw(st.integers(lo_exp, hi_exp))
    s = draw(st.booleans())
    x = Fraction(m) * Fraction(2) ** (e - 30)
    return -x if s else x


def overflow_for(fmt) -> str:
    return "inf" if fmt.has_inf else "saturate"


@SETTINGS
@given(name=st.sampled_from(FORMATS), mode=st.sampled_from(DETERMINISTIC_MODES), x=fractions(), y=fractions())
def test_monotone(name, mode, x, y):
    fmt = get_format(name)
    if not fmt.signed:
        x, y = abs(x), abs(y)
    x, y = min(x, y), max(x, y)
    ov = overflow_for(fmt)
    assert val(encode(x, fmt, mode, ov).code, fmt) <= val(encode(y, fmt, mode, ov).code, fmt)


@SETTINGS
@given(name=st.sampled_from([f for f in FORMATS if get_format(f).signed]), x=fractions())
def test_sign_symmetry(name, x):
    fmt = get_format(name)
    ov = overflow_for(fmt)
    x = abs(x)
    for mode in ("rne", "rna", "rtz", "rto"):
        p, n = val(encode(x, fmt, mode, ov).code, fmt), val(encode(-x, fmt, mode, ov).code, fmt)
        assert n == -p
    assert val(encode(-x, fmt, "rup", ov).code, fmt) == -val(encode(x, fmt, "rdn", ov).code, fmt)
    assert val(encode(-x, fmt, "rdn", ov).code, fmt) == -val(encode(x, fmt, "rup", ov).code, fmt)


@SETTINGS
@given(name=st.sampled_from(FORMATS), x=fractions())
def test_rdn_le_x_le_rup(name, x):
    fmt = get_format(name)
    if not fmt.signed:
        x = abs(x)
    if abs(x) > fmt.max and not fmt.has_inf:
        return  # saturation caps at max: the bracket property is about in-range values
    if not fmt.has_zero and abs(x) < fmt.min_normal:
        return  # below E8M0's smallest value every mode gives the smallest value (documented)
    ov = overflow_for(fmt)
    dn = val(encode(x, fmt, "rdn", ov).code, fmt)
    up = val(encode(x, fmt, "rup", ov).code, fmt)
    assert dn <= x <= up
    for mode in ("rne", "rna", "rtz", "rto"):
        assert dn <= val(encode(x, fmt, mode, ov).code, fmt) <= up
    assert abs(val(encode(x, fmt, "rtz", ov).code, fmt)) <= abs(x)


@pytest.mark.parametrize("name", [f.name for f in float_formats(8)])
def test_idempotent_on_every_finite_code(name):
    fmt = get_format(name)
    for c, v in value_table(fmt):
        if not v.is_finite:
            continue
        if v.is_zero and v.sign and not fmt.has_negative_zero:
            continue
        for mode in DETERMINISTIC_MODES:
            r = round_value(v, fmt, mode)
            assert r.code == c and not r.flags, (name, hex(c), mode)
        for rnd in (0, 5, 7):
            assert round_value(v, fmt, "sr", rand=rnd, rand_bits=3).code == c


def test_flags():
    r = encode(1000, "ocp_e4m3", overflow="saturate")
    assert r.code == 0x7E and {"overflow", "inexact"} <= r.flags
    r = encode(Fraction(1, 1024) * 3, "ocp_e4m3")  # 3 * 2^-10: subnormal range, not representable
    assert {"inexact", "underflow"} <= r.flags and "overflow" not in r.flags
    assert not encode(Fraction(1, 512), "ocp_e4m3").flags  # exact subnormal: no underflow (IEEE 754 7.5)
    assert encode("1.0625", "ocp_e4m3").flags == frozenset({"inexact"})
    r = encode("nan", "ocp_e2m1", nan_policy="max")
    assert r.code == 0x7 and "invalid" in r.flags


# ------------------------------------------------------------------ stochastic rounding
SR_FORMATS = ["ocp_e4m3", "ocp_e5m2", "ocp_e2m1", "binary16", "e8m0", "ieee_e3m4"]


@functools.cache
def positive_values(name: str) -> list[Fraction]:
    return sorted({v.mag for _, v in value_table(name) if v.is_finite and not v.sign})


@settings(max_examples=120, deadline=None)
@given(name=st.sampled_from(SR_FORMATS), k=st.integers(1, 7), data=st.data())
def test_stochastic_rounding_expectation(name, k, data):
    fmt = get_format(name)
    vs = positive_values(name)
    i = data.draw(st.integers(0, len(vs) - 2))
    lo, hi = vs[i], vs[i + 1]
    bits = data.draw(st.integers(0, 10))
    num = data.draw(st.integers(0, (1 << bits) - 1)) if bits else 0
    frac = Fraction(num, 1 << bits)  # fraction of the way from lo to hi, `bits` bits
    x = lo + frac * (hi - lo)
    neg = fmt.signed and data.draw(st.booleans())
    xv = Value("finite", int(neg), x)
    total = Fraction(0)
    for r in range(1 << k):
        code = round_value(xv, fmt, "sr", "saturate", rand=r, rand_bits=k).code
        out = decode(code, fmt)
        assert out.mag in (lo, hi)
        total += out.mag
    mean = total / (1 << k)
    trunc = Fraction(int(frac * (1 << k)), 1 << k)  # frac truncated to k bits
    assert mean == lo + trunc * (hi - lo)
    if bits <= k:
        assert mean == x  # exactly unbiased when the fraction has at most k bits


def test_stochastic_rounding_rule_small_example():
    """1 + 3/16 in e2m1 (lo 1, hi 1.5, frac 3/8): with k = 2, t = floor(3/8 * 4) = 1, up iff 1 + r >= 4."""
    got = [decode(encode(Fraction(19, 16), "ocp_e2m1", "sr", rand=r, rand_bits=2).code, "ocp_e2m1").fraction
           for r in range(4)]
    assert got == [1, 1, 1, Fraction(3, 2)]


@SETTINGS
@given(name=st.sampled_from(FORMATS), mode=st.sampled_from(DETERMINISTIC_MODES), x=fractions(-160, 20))
def test_tininess_after_only_removes_underflow(name, mode, x):
    """Tininess after rounding never changes the code, and its flags are those before rounding less, at most,
    underflow; underflow only ever comes with inexact (IEEE 754 7.5, default exception handling); inexact
    holds exactly when the finite result differs from x."""
    fmt = get_format(name)
    if not fmt.signed:
        x = abs(x)
    ov = overflow_for(fmt)
    b, a = encode(x, fmt, mode, ov), encode(x, fmt, mode, ov, tininess="after")
    assert a.code == b.code and a.flags <= b.flags and b.flags - a.flags <= {"underflow"}
    assert "underflow" not in b.flags or "inexact" in b.flags
    if fmt.has_zero and abs(x) <= fmt.max:
        assert ("inexact" in b.flags) == (val(b.code, fmt) != x)
    if "underflow" in b.flags and "underflow" not in a.flags:  # rounds, with an unbounded exponent, to min normal
        assert fmt.subnormals and abs(val(b.code, fmt)) == fmt.min_normal and abs(x) < fmt.min_normal
