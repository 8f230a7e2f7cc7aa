"""Value tables of every catalogue format of at most 16 bits against published constants, an independent
field decoder (tests/independent.py), numpy / ml_dtypes views and gfloat (P3109 family, OCP formats)."""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
import pytest
from independent import ref_decode

from refarith.exact import value_table as _value_table
from refarith.formats import IntFormat, catalogue, float_formats, get_format

value_table = functools.cache(_value_table)  # the exact model's table, computed once per format name

SMALL_FLOATS = [f.name for f in float_formats(16)]
SMALL_INTS = [n for n, f in catalogue().items() if isinstance(f, IntFormat) and f.nbits <= 16]


def as_float(v) -> float:
    return v.to_float()


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


@pytest.mark.parametrize("name", SMALL_FLOATS)
def test_value_table_matches_independent_decoder(name):
    fmt = get_format(name)
    table = value_table(name)
    assert [c for c, _ in table] == list(range(fmt.ncodes))
    for c, v in table:
        kind, x = ref_decode(fmt, c)
        assert {"nan": v.is_nan, "inf": v.is_inf, "num": v.is_finite}[kind], (name, hex(c), str(v))
        assert same(as_float(v), x), (name, hex(c), str(v), x)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if get_format(n).nbits > 12 else n
                                  for n in SMALL_INTS])
def test_integer_value_tables(name):
    """Every integer format up to 16 bits (those above 12 bits under ``slow``)."""
    fmt = get_format(name)
    n = fmt.nbits
    vals = [v.fraction for _, v in value_table(fmt)]
    if fmt.signed:
        want = list(range(0, 1 << (n - 1))) + list(range(-(1 << (n - 1)), 0))
    else:
        want = list(range(1 << n))
    assert vals == want


def finite(name):
    return [(c, v) for c, v in value_table(name) if v.is_finite]


def specials(name):
    t = value_table(name)
    nans = {c for c, v in t if v.is_nan}
    pinf = [c for c, v in t if v.is_inf and not v.sign]
    ninf = [c for c, v in t if v.is_inf and v.sign]
    negz = [c for c, v in t if v.is_zero and v.sign]
    return nans, pinf, ninf, negz


# name: (max, min normal, min subnormal (None: no subnormals), NaN codes, +inf, -inf, -0)
# Sources: IEEE 754-2019 table 3.5 (binary16), bfloat16 = binary32 truncated, OCP OFP8 v1.0 table 1,
# OCP MX v1.0 tables 2-4 and 7 (FP6, FP4, E8M0), ml_dtypes float8_e4m3fnuz / e5m2fnuz / e4m3b11fnuz /
# float8_e4m3 / float8_e3m4 documentation (max 240 / 57344 / 30 / 240 / 15.5).
FACTS = {
    "binary16": (65504, 2 ** -14, 2 ** -24, 2 * 1023, 0x7C00, 0xFC00, 0x8000),
    "bfloat16": (Fraction(2 ** 8 - 1, 2 ** 7) * 2 ** 127, Fraction(1, 2 ** 126), Fraction(1, 2 ** 133), 2 * 127,
                 0x7F80, 0xFF80, 0x8000),
    "ocp_e5m2": (57344, 2 ** -14, 2 ** -16, {0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF}, 0x7C, 0xFC, 0x80),
    "ocp_e4m3": (448, 2 ** -6, 2 ** -9, {0x7F, 0xFF}, None, None, 0x80),
    "e4m3fnuz": (240, 2 ** -7, 2 ** -10, {0x80}, None, None, None),
    "e5m2fnuz": (57344, 2 ** -15, 2 ** -17, {0x80}, None, None, None),
    "e4m3b11fnuz": (30, 2 ** -10, 2 ** -13, {0x80}, None, None, None),
    "ieee_e4m3": (240, 2 ** -6, 2 ** -9, 14, 0x78, 0xF8, 0x80),
    "ieee_e3m4": (Fraction(31, 2), Fraction(1, 4), 2 ** -6, 30, 0x70, 0xF0, 0x80),
    "ocp_e3m2": (28, Fraction(1, 4), Fraction(1, 16), set(), None, None, 0x20),
    "ocp_e2m3": (Fraction(15, 2), 1, Fraction(1, 8), set(), None, None, 0x20),
    "ocp_e2m1": (6, 1, Fraction(1, 2), set(), None, None, 0x8),
    "e8m0": (2 ** 127, Fraction(1, 2 ** 127), None, {0xFF}, None, None, None),
    "ue4m3": (448, 2 ** -6, 2 ** -9, {0x7F}, None, None, None),
}


@pytest.mark.parametrize("name", sorted(FACTS))
def test_published_constants(name):
    mx, mn, sub, nans, pinf, ninf, negz = FACTS[name]
    fin = finite(name)
    pos = sorted(v.mag for _, v in fin if not v.sign and v.mag > 0)
    assert pos[-1] == mx
    assert max(abs(v.mag) for _, v in fin) == mx
    fmt = get_format(name)
    assert fmt.max == mx and fmt.min_normal == mn
    if sub is None:
        assert pos[0] == mn and not any(v.is_zero for _, v in fin), "no subnormals and no zero"
    else:
        assert pos[0] == sub and fmt.min_subnormal == sub
        assert not [p for p in pos if p < mn and p % sub != 0]
    got_nans, got_pinf, got_ninf, got_negz = specials(name)
    if isinstance(nans, int):
        assert len(got_nans) == nans
    else:
        assert got_nans == nans
    assert got_pinf == ([pinf] if pinf is not None else [])
    assert got_ninf == ([ninf] if ninf is not None else [])
    assert got_negz == ([negz] if negz is not None else [])


def test_e2m1_value_list():
    pos = sorted({v.mag for _, v in finite("ocp_e2m1")})
    assert pos == [0, Fraction(1, 2), 1, Fraction(3, 2), 2, 3, 4, 6]
    assert [v.fraction for c, v in value_table("ocp_e2m1") if c & 8] == [-p for p in pos]


def test_e8m0_every_power_of_two():
    t = value_table("e8m0")
    for c, v in t[:255]:
        assert v.is_finite and not v.sign and v.mag == Fraction(2) ** (c - 127)
    assert t[255][1].is_nan


def test_fp6_value_lists():
    e2m3 = sorted({v.mag for _, v in finite("ocp_e2m3")})
    assert e2m3 == sorted({Fraction(k, 8) for k in range(8)} | {Fraction(8 + k, 8) * 2 ** e for e in range(3)
                                                                  for k in range(8)})
    e3m2 = sorted({v.mag for _, v in finite("ocp_e3m2")})
    assert e3m2 == sorted({Fraction(k, 16) for k in range(4)} | {Fraction(4 + k, 4) * Fraction(2) ** e
                                                                   for e in range(-2, 5) for k in range(4)})


def test_binary16_matches_numpy_float16():
    codes = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    ref = codes.view(np.float16).astype(np.float64)
    for c, v in value_table("binary16"):
        assert same(v.to_float(), float(ref[c])), hex(c)


def test_bfloat16_matches_binary32_shift():
    with np.errstate(invalid="ignore"):
        ref = (np.arange(1 << 16, dtype=np.uint32) << 16).view(np.float32).astype(np.float64)
    for c, v in value_table("bfloat16"):
        assert same(v.to_float(), float(ref[c])), hex(c)


ML_DTYPES = {
    "ocp_e4m3": "float8_e4m3fn", "ocp_e5m2": "float8_e5m2", "e4m3fnuz": "float8_e4m3fnuz",
    "e5m2fnuz": "float8_e5m2fnuz", "e4m3b11fnuz": "float8_e4m3b11fnuz", "ieee_e4m3": "float8_e4m3",
    "ieee_e3m4": "float8_e3m4", "ocp_e3m2": "float6_e3m2fn", "ocp_e2m3": "float6_e2m3fn",
    "ocp_e2m1": "float4_e2m1fn", "e8m0": "float8_e8m0fnu", "bfloat16": "bfloat16",
}


@pytest.mark.parametrize("name", sorted(ML_DTYPES))
def test_value_table_matches_ml_dtypes(name):
    md = pytest.importorskip("ml_dtypes", reason="ml_dtypes not installed")
    dt = getattr(md, ML_DTYPES[name])
    fmt = get_format(name)
    store = np.uint16 if fmt.nbits > 8 else np.uint8
    codes = np.arange(fmt.ncodes, dtype=store)
    with np.errstate(invalid="ignore"):
        ref = codes.view(dt).astype(np.float64)
    for c, v in value_table(name):
        assert same(v.to_float(), float(ref[c])), (name, hex(c))


P3109 = [f.name for f in float_formats(8) if f.specials.startswith("p3109")]


@pytest.mark.parametrize("name", P3109)
def test_p3109_against_gfloat(name):
    pytest.importorskip("gfloat", reason="gfloat not installed")
    from gfloat import decode_float
    from gfloat.formats import format_info_p3109
    from gfloat.types import Domain, Signedness

    p = int(name[len("binary8p")])
    fi = format_info_p3109(8, p, Signedness.Signed if name[-2] == "s" else Signedness.Unsigned,
                           Domain.Extended if name[-1] == "e" else Domain.Finite)
    for c, v in value_table(name):
        assert same(v.to_float(), decode_float(fi, c).fval), (name, hex(c))


# IEEE P3109 interim report, extremal values of the signed extended-domain binary8pP formats
# (minSubnormal, minNormal, maxFinite); also: one zero 0x00, no -0, one NaN 0x80, +inf 0x7F, -inf 0xFF.
P3109_EXTREMES = {
    2: (2 ** -32, 2 ** -31, 2 ** 31),
    3: (2 ** -17, 2 ** -15, Fraction(3, 2) * 2 ** 15),
    4: (2 ** -10, 2 ** -7, Fraction(7, 4) * 2 ** 7),
    5: (2 ** -7, 2 ** -3, Fraction(15, 8) * 2 ** 3),
    6: (2 ** -6, 2 ** -1, Fraction(31, 16) * 2),
    7: (2 ** -6, 1, Fraction(63, 32)),
}


@pytest.mark.parametrize("p", sorted(P3109_EXTREMES))
def test_p3109_interim_report_extremes(p):
    name = f"binary8p{p}se"
    sub, mn, mx = P3109_EXTREMES[p]
    pos = sorted(v.mag for _, v in finite(name) if v.mag > 0)
    assert (pos[0], pos[-1]) == (sub, mx)
    assert get_format(name).min_normal == mn
    nans, pinf, ninf, negz = specials(name)
    assert nans == {0x80} and pinf == [0x7F] and ninf == [0xFF] and negz == []
    assert value_table(name)[0][1].is_zero


def test_p3109_finite_domain_has_no_inf_and_gains_a_value():
    for p in range(1, 8):
        e = {c: v for c, v in value_table(f"binary8p{p}se")}
        f = {c: v for c, v in value_table(f"binary8p{p}sf")}
        assert e[0x7F].is_inf and f[0x7F].is_finite and f[0xFF].is_finite
        assert f[0xFF].fraction == -f[0x7F].fraction
        u = {c: v for c, v in value_table(f"binary8p{p}ue")}
        assert u[0xFF].is_nan and u[0xFE].is_inf and u[0].is_zero
