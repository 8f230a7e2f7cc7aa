"""Public API (refarith.encode / refarith.decode / spec ids) and bad input."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

import refarith as ra
from refarith.errors import (
    BadValueError,
    BitPatternError,
    RefarithError,
    SpecError,
    SpecialValueError,
    UnknownFormatError,
    UnknownModeError,
)
from refarith.exact.value import Value
from refarith.spec import make_spec, parse_spec


def test_encode_scalars_of_every_kind():
    for x in (1.5, Fraction(3, 2), Decimal("1.5"), "1.5", "3/2", "0x1.8p0", np.float32(1.5), np.float16(1.5), 1.5e0):
        assert ra.encode(x, "ocp_e4m3") == 0x3C, x
    assert ra.encode(3, "int8") == 3 and ra.encode(-1, "int8") == 0xFF
    assert ra.encode("-0", "ocp_e4m3") == 0x80 and ra.encode(-0.0, "e4m3fnuz") == 0
    assert ra.encode("inf", "ocp_e5m2") == 0x7C and ra.encode("-inf", "ocp_e5m2") == 0xFC
    assert isinstance(ra.encode(1.0, "bfloat16"), int)


def test_encode_decimal_string_is_exact_not_binary64():
    """"0.1" is exactly 1/10; for a 16-bit target the result equals rounding 1/10 once."""
    assert ra.encode("0.1", "binary16") == ra.encode(Fraction(1, 10), "binary16") == 0x2E66


def test_encode_arrays_keep_shape_and_use_small_dtypes():
    x = np.array([[1.0, -2.0], [448.0, 0.0]])
    out = ra.encode(x, "ocp_e4m3")
    assert out.shape == (2, 2) and out.dtype == np.uint8
    assert out.tolist() == [[0x38, 0xC0], [0x7E, 0x00]]
    h = ra.encode([1.0, 65504.0], "binary16")
    assert h.dtype == np.uint16 and h.tolist() == [0x3C00, 0x7BFF]
    assert ra.encode(np.array([1, 2, 3], dtype=np.int32), "uint8").tolist() == [1, 2, 3]
    assert ra.encode([Fraction(1, 3)], "int8").tolist() == [0]


def test_decode_scalars_and_arrays():
    v = ra.decode(0x7E, "ocp_e4m3")
    assert isinstance(v, Value) and v.fraction == 448
    assert ra.decode(np.uint8(0x80), "ocp_e4m3").is_zero
    arr = ra.decode(np.array([[0x38, 0x7F], [0x80, 0x01]], dtype=np.uint8), "ocp_e4m3")
    assert arr.shape == (2, 2) and arr.dtype == np.float64
    assert arr[0, 0] == 1.0 and math.isnan(arr[0, 1]) and math.copysign(1, arr[1, 0]) < 0 and arr[1, 1] == 2 ** -9
    ints = ra.decode(np.array([0x80, 0x7F]), "int8")
    assert ints.dtype == np.int64 and ints.tolist() == [-128, 127]


def test_encode_decode_round_trip_every_e4m3_code():
    codes = np.arange(256)
    vals = ra.decode(codes, "ocp_e4m3")
    back = ra.encode(vals, "ocp_e4m3")
    finite = ~np.isnan(vals)
    assert np.array_equal(back[finite], codes[finite])


def test_float64_input_is_not_rounded_through_float32():
    """1 + 2^-4 + 2^-30 lies just above the e4m3 midpoint 1 + 2^-4; via float32 it would become the tie and
    round to even (1.0).  Rounded once from binary64 it goes up to 1.125."""
    x = 1.0 + 2.0 ** -4 + 2.0 ** -30
    assert np.float32(x) == 1.0 + 2.0 ** -4
    assert ra.encode(x, "ocp_e4m3") == 0x39
    assert ra.encode(np.array([x]), "ocp_e4m3").tolist() == [0x39]
    assert ra.encode(np.float64(x), "ocp_e4m3") == 0x39
    y = 1.0 + 2.0 ** -11 + 2.0 ** -40  # binary16: same story one level up
    assert ra.encode(y, "binary16") == 0x3C01


def test_unknown_format_names_close_matches():
    with pytest.raises(UnknownFormatError) as e:
        ra.encode(1.0, "ocp_e4m2")
    msg = str(e.value)
    assert "ocp_e4m2" in msg and "did you mean" in msg and "ocp_e4m3" in msg
    with pytest.raises(UnknownFormatError):
        ra.decode(0, "float7")
    assert isinstance(e.value, KeyError) and isinstance(e.value, RefarithError)


@pytest.mark.parametrize("bad", ["abc", "1..2", "1/0", "0x.p1", "", None, [1, "x"], True, object()])
def test_malformed_values(bad):
    with pytest.raises(BadValueError):
        ra.encode(bad, "ocp_e4m3")


def test_long_double_rejected():
    if np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("numpy longdouble is binary64 on this platform")
    with pytest.raises(BadValueError):
        ra.encode(np.longdouble(1.5), "ocp_e4m3")


def test_bit_patterns_wider_than_the_format():
    for bad in (256, -1, 1 << 40):
        with pytest.raises(BitPatternError):
            ra.decode(bad, "ocp_e4m3")
    with pytest.raises(BitPatternError):
        ra.decode(16, "ocp_e2m1")
    with pytest.raises(BitPatternError):
        ra.decode(np.array([1, 300]), "ocp_e4m3")
    with pytest.raises(BitPatternError):
        ra.decode(1 << 16, "binary16")
    with pytest.raises(BitPatternError):
        ra.decode(256, "int8")
    with pytest.raises(BadValueError):
        ra.decode(np.array([1.0, 2.0]), "ocp_e4m3")


def test_decode_rejects_non_integer_scalar_code():
    """A float, bool or string code is refused, never truncated (1.5 is not code 1)."""
    for bad in (1.5, 1.0, True, "0x7e", np.float32(2.0)):
        with pytest.raises(BitPatternError):
            ra.decode(bad, "ocp_e4m3")
    with pytest.raises(BitPatternError):
        ra.decode(np.array([1, 2.5], dtype=object), "ocp_e4m3")
    assert ra.decode(np.uint8(0x7E), "ocp_e4m3").to_float() == 448.0


def test_nan_into_formats_without_nan():
    for fmt in ("ocp_e2m1", "ocp_e3m2", "ocp_e2m3", "int8", "uint4"):
        with pytest.raises(SpecialValueError):
            ra.encode(math.nan, fmt)
        with pytest.raises(SpecialValueError):
            ra.encode(np.array([1.0, math.nan]), fmt)
    assert ra.encode(math.nan, "ocp_e2m1", nan_policy="zero") == 0
    assert ra.encode(math.nan, "int8", nan_policy="max") == 0x7F


def test_inf_into_formats_without_inf_follows_the_overflow_mode():
    """The rounding docstring: infinite inputs saturate under 'saturate' (FP4/FP6 default) and give NaN under
    'nan' (the default for formats with NaN and no inf); integers saturate, and cannot wrap."""
    assert ra.encode(math.inf, "ocp_e2m1") == 0x7 and ra.encode(-math.inf, "ocp_e2m1") == 0xF
    assert ra.encode(math.inf, "ocp_e4m3") == 0x7F and ra.encode(math.inf, "ocp_e4m3", overflow="saturate") == 0x7E
    assert ra.encode(math.inf, "int8") == 0x7F
    with pytest.raises(SpecialValueError):
        ra.encode(math.inf, "int8", overflow="wrap")


def test_negative_into_unsigned():
    with pytest.raises(SpecialValueError):
        ra.encode(-1.0, "ue4m3")
    with pytest.raises(SpecialValueError):
        ra.encode(-3, "uint8")
    assert ra.encode(-1.0, "ue4m3", negative="clamp") == 0
    assert ra.encode(-0.0, "ue4m3") == 0


@pytest.mark.parametrize("kw", [dict(rounding="nearest"), dict(rounding="RNE"), dict(overflow="clamp"),
                                dict(overflow="inf"), dict(overflow="wrap"), dict(nan_policy="drop"),
                                dict(negative="abs"), dict(rounding="sr"), dict(rounding="sr", rand=8, rand_bits=3),
                                dict(backend="cuda")])
def test_unknown_or_inapplicable_modes(kw):
    with pytest.raises(UnknownModeError):
        ra.encode(1.0, "ocp_e4m3", **kw)


def test_integer_overflow_modes():
    assert ra.encode(300, "int8") == 0x7F and ra.encode(300, "int8", overflow="wrap") == 300 - 256
    assert ra.encode(-128, "int8_sym") == 0x81
    with pytest.raises(UnknownModeError):
        ra.encode(1, "int8", overflow="nan")


def test_decode_array_refuses_formats_float64_cannot_hold():
    with pytest.raises(BadValueError):
        ra.decode(np.array([1]), "e12m3")


def test_stochastic_rounding_through_the_api():
    x = [Fraction(19, 16)] * 4  # e2m1: between 1 and 1.5, 3/8 of the way
    got = ra.encode(x, "ocp_e2m1", rounding="sr", rand=[0, 1, 2, 3], rand_bits=2)
    assert got.tolist() == [0x2, 0x2, 0x2, 0x3]


# ------------------------------------------------------------------ spec ids
def test_spec_canonical_ids():
    assert str(parse_spec("cast(float32->e4m3)")) == "cast(binary32->ocp_e4m3,rounding=rne,overflow=nan)"
    assert str(parse_spec("cast( f32 -> fp4 , rounding = rtz )")) == \
        "cast(binary32->ocp_e2m1,rounding=rtz,overflow=saturate,nan=error)"
    assert str(parse_spec("cast(bf16->e8m0,overflow=saturate)")) == \
        "cast(bfloat16->e8m0,rounding=rne,overflow=saturate,negative=error)"
    assert str(parse_spec("cast(fp32->e5m2,overflow=inf,rounding=rna)")) == \
        "cast(binary32->ocp_e5m2,rounding=rna,overflow=inf)"
    s = make_spec("cast", ["float32", ra.get_format("e2m1")], rounding="rtz")
    assert s.id == "cast(binary32->ocp_e2m1,rounding=rtz,overflow=saturate,nan=error)"
    assert s.filename() == "cast__binary32_to_ocp_e2m1__rounding-rtz__overflow-saturate__nan-error"


@pytest.mark.parametrize("text", ["cast(binary16->ocp_e4m3)", "cast(f32->ue4m3,negative=clamp)",
                                  "cast(bf16->fp4,nan=max,rounding=rup)", "cast(f32->int8,overflow=wrap)",
                                  "cast(f32->ocp_e5m2,rounding=sr,k=8)", "cast(f32->binary8p3se)"])
def test_spec_round_trip(text):
    s = parse_spec(text)
    assert parse_spec(str(s)) == s and str(parse_spec(str(s))) == str(s)
    assert parse_spec(s) is s


@pytest.mark.parametrize("text", ["cast(f32->e4m3", "cst(f32->e4m3)", "cast(f32->nope)", "cast(f32)",
                                  "cast(f32->e4m3,foo=1)", "cast(rounding=rne,f32->e4m3)",
                                  "cast(f32->e4m3,rounding=rne,rounding=rtz)", "cast(f32->e4m3,overflow=inf)",
                                  "cast(f32->e4m3,nan=zero)", "cast(f32->e4m3,rounding=bogus)",
                                  "cast(f32->int8,overflow=nan)", "cast(f32->e4m3,rounding=)"])
def test_spec_errors(text):
    with pytest.raises(SpecError):
        parse_spec(text)
