"""refarith.exact.rounding against its written rules: the overflow modes (IEEE 754 7.4, OCP OFP8, the deployed
library variants and P3109 §4.7.5 ωSaturate), negative values into unsigned formats, NaN policies, formats
without zero, flush-to-zero, integer targets, the mode checks and their messages.  Every expected code and flag
set is worked out by hand from the rule it cites (the module docstring states the rules), never read from the
code under test."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

from refarith.errors import SpecialValueError, UnknownModeError
from refarith.exact.rounding import (
    Rounded,
    cast_default_overflow,
    check_modes,
    check_subnormal_mode,
    check_tininess,
    default_negative,
    default_overflow,
    floor_log2,
    flush_code,
    flush_input,
    round_value,
)
from refarith.exact.value import Value
from refarith.formats import FloatFormat, get_format

OI = {"overflow", "inexact"}
INV = {"invalid"}
TU = {"inexact", "underflow"}

# binary16: max 65504 = 0x7BFF, +-inf 0x7C00 / 0xFC00, NaN 0x7E00 / 0xFE00.  70000 rounds (every mode) to a
# multiple of 64 above 65504: it overflows with an unbounded exponent range in every mode.
# binary8p3se (P3109, signed extended): max 49152 = 126, +inf 127, -max 254, -inf 255.  2^16 is exact with an
# unbounded exponent, beyond max.  binary8p3sf: max 57344 = 127, -max 255.  binary8p3ue: max 1.25 * 2^31 = 253,
# +inf 254, NaN 255.  ocp_e4m3: max 448 = 0x7E, NaN 0x7F / 0xFF; 500 = 15.625 * 32 rounds to 480 (rto, rtz) or
# 512 (rne), beyond 448 either way.
CASES = [
    # (value, format, rounding, overflow, code, flags)
    (70000, "binary16", "rne", "inf", 0x7C00, OI),
    (70000, "binary16", "rna", "inf", 0x7C00, OI),
    (70000, "binary16", "rtz", "inf", 0x7BFF, OI),
    (70000, "binary16", "rup", "inf", 0x7C00, OI),
    (70000, "binary16", "rdn", "inf", 0x7BFF, OI),
    (70000, "binary16", "rto", "inf", 0x7BFF, OI),
    (-70000, "binary16", "rne", "inf", 0xFC00, OI),
    (-70000, "binary16", "rtz", "inf", 0xFBFF, OI),
    (-70000, "binary16", "rup", "inf", 0xFBFF, OI),
    (-70000, "binary16", "rdn", "inf", 0xFC00, OI),
    (70000, "binary16", "rne", "saturate", 0x7BFF, OI),
    (-70000, "binary16", "rdn", "saturate", 0xFBFF, OI),
    (70000, "binary16", "rne", "nan", 0x7E00, OI),
    (-70000, "binary16", "rne", "nan", 0xFE00, OI),
    (70000, "binary16", "rtz", "nan", 0x7BFF, OI),
    (70000, "binary16", "rtz", "inf_always", 0x7C00, OI),
    (70000, "binary16", "rdn", "inf_always", 0x7C00, OI),
    (-70000, "binary16", "rup", "inf_always", 0xFC00, OI),
    (65520, "binary16", "rne", "inf", 0x7C00, OI),  # the tie above max: 0x7BFF is odd, so up
    (65520, "binary16", "rtz", "inf", 0x7BFF, {"inexact"}),  # rounds to max itself: no overflow
    (500, "ocp_e4m3", "rne", "nan", 0x7F, OI),
    (-500, "ocp_e4m3", "rne", "nan", 0xFF, OI),
    (500, "ocp_e4m3", "rto", "nan", 0x7E, OI),
    (500, "ocp_e4m3", "rto", "nan_rto", 0x7F, OI),
    (-500, "ocp_e4m3", "rto", "nan_rto", 0xFF, OI),
    (500, "ocp_e4m3", "rtz", "nan_rto", 0x7E, OI),
    (500, "ocp_e4m3", "rne", "nan_rto", 0x7F, OI),
    (500, "ocp_e4m3", "rne", "saturate_inf_nan", 0x7E, OI),
    (-500, "ocp_e4m3", "rup", "saturate_inf_nan", 0xFE, OI),
    (464, "ocp_e4m3", "rne", "nan", 0x7E, {"inexact"}),  # ties to 448, the even neighbour of the virtual 480
    (2 ** 16, "binary8p3se", "rne", "satnone", 127, OI),
    (2 ** 16, "binary8p3se", "rna", "satnone", 127, OI),
    (2 ** 16, "binary8p3se", "rtz", "satnone", 126, OI),
    (2 ** 16, "binary8p3se", "rup", "satnone", 127, OI),
    (2 ** 16, "binary8p3se", "rdn", "satnone", 126, OI),
    (2 ** 16, "binary8p3se", "rto", "satnone", 127, OI),
    (-(2 ** 16), "binary8p3se", "rne", "satnone", 255, OI),
    (-(2 ** 16), "binary8p3se", "rtz", "satnone", 254, OI),
    (-(2 ** 16), "binary8p3se", "rup", "satnone", 254, OI),
    (-(2 ** 16), "binary8p3se", "rdn", "satnone", 255, OI),
    (-(2 ** 16), "binary8p3se", "rto", "satnone", 255, OI),
    (2 ** 16, "binary8p3se", "rne", "satfinite", 126, OI),
    (-(2 ** 16), "binary8p3se", "rdn", "satfinite", 254, OI),
    (2 ** 16, "binary8p3se", "rna", "satpropagate", 126, OI),
    (-(2 ** 16), "binary8p3se", "rne", "satpropagate", 254, OI),
    (2 ** 17, "binary8p3sf", "rne", "satnone", 127, OI),
    (-(2 ** 17), "binary8p3sf", "rdn", "satnone", 255, OI),
    (2 ** 33, "binary8p3ue", "rne", "satnone", 254, OI),
    (2 ** 33, "binary8p3ue", "rup", "satnone", 254, OI),
    (2 ** 33, "binary8p3ue", "rto", "satnone", 253, OI),
    (2 ** 33, "binary8p3ue", "rtz", "satnone", 253, OI),
    (2 ** 33, "binary8p3ue", "rdn", "satnone", 253, OI),
]


@pytest.mark.parametrize("x,fmt,mode,ov,code,flags", CASES)
def test_overflow_modes(x, fmt, mode, ov, code, flags):
    r = round_value(Value.of(F(x)), fmt, mode, ov)
    assert (r.code, r.flags) == (code, frozenset(flags))


INF_CASES = [
    # (sign, format, overflow, code, flags): infinite inputs
    (0, "binary16", "inf", 0x7C00, set()),
    (1, "binary16", "inf", 0xFC00, set()),
    (0, "binary16", "saturate", 0x7BFF, INV),
    (1, "binary16", "saturate", 0xFBFF, INV),
    (0, "binary16", "nan", 0x7E00, INV),
    (1, "binary16", "inf_always", 0xFC00, set()),
    (0, "ocp_e4m3", "nan", 0x7F, INV),
    (1, "ocp_e4m3", "saturate_inf_nan", 0xFF, INV),
    (0, "ocp_e4m3", "saturate_inf_nan", 0x7F, INV),
    (0, "binary8p3se", "satnone", 127, set()),
    (1, "binary8p3se", "satnone", 255, set()),
    (0, "binary8p3se", "satfinite", 126, INV),
    (1, "binary8p3se", "satfinite", 254, INV),
    (0, "binary8p3se", "satpropagate", 127, set()),
    (1, "binary8p3se", "satpropagate", 255, set()),
    (0, "binary8p3sf", "satnone", 127, INV),
    (1, "binary8p3sf", "satpropagate", 255, INV),
    (0, "binary8p3ue", "satnone", 254, set()),
    (0, "binary8p3ue", "satfinite", 253, INV),
]


@pytest.mark.parametrize("sign,fmt,ov,code,flags", INF_CASES)
def test_infinite_inputs(sign, fmt, ov, code, flags):
    for mode in ("rne", "rtz", "rdn"):
        r = round_value(Value.inf(sign), fmt, mode, ov)
        assert (r.code, r.flags) == (code, frozenset(flags)), mode


# Negative values into unsigned binary8p3ue (P3109 default: negative='project', overflow='satnone'): rounded with
# the sign; a zero result is +0; a non-zero negative result gives NaN (255) under satnone except for rtz and rup
# (0); -inf gives NaN in every mode under satnone.  2^-40 is below half the smallest subnormal 2^-33.
NEG_CASES = [
    (F(-1), "rne", "satnone", 255, INV),
    (F(-1), "rdn", "satnone", 255, INV),
    (F(-1), "rtz", "satnone", 0, INV),
    (F(-1), "rup", "satnone", 0, INV),
    (F(-3, 2), "rna", "satnone", 255, INV),
    (F(-1), "rne", "satfinite", 0, INV),
    (F(-1), "rne", "satpropagate", 0, INV),
    (F(-1, 2 ** 40), "rne", "satnone", 0, TU),
    (F(-1, 2 ** 40), "rtz", "satnone", 0, TU),
    (F(-1, 2 ** 40), "rdn", "satnone", 255, INV),  # rounds away to -2^-33, below M_lo = 0
    (F(-1, 2 ** 40), "rdn", "satfinite", 0, INV),
    (F(-1, 2 ** 34), "rne", "satnone", 0, TU),  # the tie between 0 and -2^-33 goes to 0 (even code): +0
    (F(-1, 2 ** 34), "rto", "satnone", 255, INV),  # the same tie to the odd code: -2^-33, below M_lo
    (F(-3, 2 ** 35), "rne", "satnone", 255, INV),  # 3/4 of 2^-33 rounds to -2^-33
]


@pytest.mark.parametrize("x,mode,ov,code,flags", NEG_CASES)
def test_negative_projected_into_unsigned(x, mode, ov, code, flags):
    r = round_value(Value.of(x), "binary8p3ue", mode, ov)
    assert (r.code, r.flags) == (code, frozenset(flags))
    assert round_value(Value.of(x), "binary8p3ue", mode, ov, negative="project") == r


def test_negative_infinity_and_other_policies_into_unsigned():
    for mode in ("rne", "rtz", "rup", "rdn"):
        r = round_value(Value.inf(1), "binary8p3ue", mode)
        assert (r.code, r.flags) == (255, frozenset(INV)), mode
        r = round_value(Value.inf(1), "binary8p3ue", mode, "satfinite")
        assert (r.code, r.flags) == (0, frozenset(INV)), mode
    one = Value.of(F(-1))
    assert round_value(one, "binary8p3ue", negative="clamp") == round_value(one, "ue4m3", negative="clamp")
    r = round_value(one, "ue4m3", negative="clamp")
    assert (r.code, r.flags) == (0, frozenset(INV))
    r = round_value(one, "ue4m3", negative="nan")
    assert (r.code, r.flags) == (127, frozenset(INV))
    with pytest.raises(SpecialValueError, match=r"^negative value -1 cannot be encoded in unsigned format ue4m3 "
                                                r"\(negative='error'\)$"):
        round_value(one, "ue4m3")
    r = round_value(Value.zero(1), "ue4m3")  # -0 into a format without -0
    assert (r.code, r.flags) == (0, frozenset())


def test_nan_policies():
    nan, nneg = Value.nan(0), Value.nan(1)
    with pytest.raises(SpecialValueError, match=r"^NaN cannot be encoded in ocp_e2m1, which has no NaN "
                                                r"\(nan_policy='error'\)$"):
        round_value(nan, "ocp_e2m1")
    assert round_value(nan, "ocp_e2m1", nan_policy="zero") == round_value(nneg, "ocp_e2m1", nan_policy="zero")
    r = round_value(nneg, "ocp_e2m1", nan_policy="zero")
    assert (r.code, r.flags) == (0, frozenset(INV))
    r = round_value(nan, "ocp_e2m1", nan_policy="max")
    assert (r.code, r.flags) == (0x7, frozenset(INV))
    r = round_value(nneg, "ocp_e2m1", nan_policy="max")
    assert (r.code, r.flags) == (0xF, frozenset(INV))
    r = round_value(nneg, "binary16")
    assert (r.code, r.flags) == (0xFE00, frozenset())
    # integers: zero, or the end of the range on the NaN's side
    for fmt, mx, mn in (("int8", 0x7F, 0x80), ("uint8", 0xFF, 0x00)):
        assert round_value(nan, fmt, nan_policy="zero").code == 0
        r = round_value(nan, fmt, nan_policy="max")
        assert (r.code, r.flags) == (mx, frozenset(INV))
        assert round_value(nneg, fmt, nan_policy="max").code == mn
    with pytest.raises(SpecialValueError, match=r"^NaN cannot be encoded in integer format int8 "
                                                r"\(nan_policy='error'\)$"):
        round_value(nan, "int8")


def test_formats_without_zero_and_e8m0_ties():
    """E8M0 (2^-127 .. 2^127, no zero, no mantissa): zero and tiny values give the smallest value flagged
    underflow; ties go to the even biased exponent; rto to the odd one."""
    for v in (Value.zero(0), Value.of(F(1, 2 ** 200))):
        for mode in ("rne", "rup", "rtz"):
            r = round_value(v, "e8m0", mode)
            assert (r.code, r.flags) == (0, frozenset(TU)), (v, mode)
    assert round_value(Value.of(F(3, 2)), "e8m0").code == 128  # 2^0 (127, odd) or 2^1 (128, even)
    assert round_value(Value.of(F(3)), "e8m0").code == 128  # 2^1 (128, even) or 2^2 (129)
    assert round_value(Value.of(F(3, 2)), "e8m0", "rto").code == 127
    assert round_value(Value.of(F(3, 4)), "e8m0", "rne").code == 126  # 2^-1 (126, even) or 2^0
    r = round_value(Value.of(F(1)), "e8m0")
    assert (r.code, r.flags) == (127, frozenset())


INT_CASES = [
    # (value, format, rounding, overflow, code, flags): IEEE 754 5.8 convertToIntegerExact, 7.2 j
    (F(5, 2), "int8", "rne", "saturate", 2, {"inexact"}),
    (F(7, 2), "int8", "rne", "saturate", 4, {"inexact"}),
    (F(5, 2), "int8", "rna", "saturate", 3, {"inexact"}),
    (F(5, 2), "int8", "rto", "saturate", 3, {"inexact"}),
    (F(7, 2), "int8", "rto", "saturate", 3, {"inexact"}),
    (F(-5, 2), "int8", "rup", "saturate", 0xFE, {"inexact"}),
    (F(-5, 2), "int8", "rdn", "saturate", 0xFD, {"inexact"}),
    (F(-5, 2), "int8", "rtz", "saturate", 0xFE, {"inexact"}),
    (F(9, 4), "int8", "rup", "saturate", 3, {"inexact"}),
    (F(3), "int8", "rne", "saturate", 3, set()),
    (F(255, 2), "int8", "rne", "saturate", 0x7F, INV),  # 127.5 -> 128 > 127
    (F(255, 2), "int8", "rne", "wrap", 0x80, INV),
    (F(-257, 2), "int8", "rne", "saturate", 0x80, {"inexact"}),  # -128.5 -> -128 (even), in range
    (F(-259, 2), "int8", "rne", "saturate", 0x80, INV),  # -129.5 -> -130
    (F(-259, 2), "int8", "rne", "wrap", 126, INV),  # -130 mod 256
    (F(300), "uint8", "rne", "wrap", 44, INV),
    (F(-2, 5), "uint8", "rne", "saturate", 0, {"inexact"}),  # rounds to 0: no negative
]


@pytest.mark.parametrize("x,fmt,mode,ov,code,flags", INT_CASES)
def test_integer_targets(x, fmt, mode, ov, code, flags):
    r = round_value(Value.of(x), fmt, mode, ov)
    assert (r.code, r.flags) == (code, frozenset(flags))


def test_integer_infinities_and_negatives():
    assert round_value(Value.inf(0), "int8").code == 0x7F
    r = round_value(Value.inf(1), "int8")
    assert (r.code, r.flags) == (0x80, frozenset(INV))
    with pytest.raises(SpecialValueError, match=r"^infinity cannot wrap into integer format int8$"):
        round_value(Value.inf(0), "int8", overflow="wrap")
    with pytest.raises(SpecialValueError, match=r"^negative value -inf cannot be encoded in unsigned format uint8 "
                                                r"\(negative='error'\)$"):
        round_value(Value.inf(1), "uint8")
    r = round_value(Value.inf(1), "uint8", negative="clamp")
    assert (r.code, r.flags) == (0, frozenset(INV))
    with pytest.raises(SpecialValueError, match=r"^negative value -1 cannot be encoded in unsigned format uint8 "
                                                r"\(negative='error'\)$"):
        round_value(Value.of(F(-1)), "uint8")
    r = round_value(Value.of(F(-1)), "uint8", negative="clamp")
    assert (r.code, r.flags) == (0, frozenset(INV))


def test_stochastic_rounding_onto_integers():
    """Variant a: t = floor(frac * 2^k), up iff t + r >= 2^k.  2.25 with k = 2: t = 1, up for r = 3 only."""
    got = [round_value(Value.of(F(9, 4)), "int8", "sr", rand=r, rand_bits=2).code for r in range(4)]
    assert got == [2, 2, 2, 3]
    got = [round_value(Value.of(F(-9, 4)), "int8", "sr", rand=r, rand_bits=2).code for r in range(4)]
    assert got == [0xFE, 0xFE, 0xFE, 0xFD]


def test_flush_to_zero_functions():
    b16 = get_format("binary16")
    sub, nsub, mn = Value.of(F(1, 2 ** 24)), Value.of(F(-3, 2 ** 24)), Value.of(F(1, 2 ** 14))
    for mode in ("daz", "daz_ftz"):
        assert flush_input(sub, b16, mode) == Value.zero(0)
        assert flush_input(nsub, b16, mode) == Value.zero(1)
        assert flush_input(mn, b16, mode) == mn
        assert flush_input(Value.inf(1), b16, mode) == Value.inf(1)
    for mode in (None, "ftz"):
        assert flush_input(sub, b16, mode) == sub
    assert flush_input(Value.of(F(1, 2 ** 130)), get_format("e8m0"), "daz") == Value.of(F(1, 2 ** 130))
    for mode in ("ftz", "daz_ftz"):
        assert flush_code(0x0001, b16, mode) == 0
        assert flush_code(0x83FF, b16, mode) == 0x8000
        assert flush_code(0x0400, b16, mode) == 0x0400
        assert flush_code(0x8000, b16, mode) == 0x8000
        assert flush_code(0x7C00, b16, mode) == 0x7C00
        assert flush_code(0x7E00, b16, mode) == 0x7E00
        assert flush_code(0x81, get_format("e4m3fnuz"), mode) == 0  # no -0: +0
    for mode in (None, "daz"):
        assert flush_code(0x0001, b16, mode) == 0x0001
    assert flush_code(1, get_format("e8m0"), "ftz") == 1
    with pytest.raises(UnknownModeError, match=r"^unknown subnormal mode 'fz'; expected one of daz, ftz, daz_ftz$"):
        check_subnormal_mode("fz")
    with pytest.raises(UnknownModeError, match="unknown subnormal mode"):
        flush_code(0, b16, "fz")
    check_subnormal_mode(None)


def test_tininess_after_rounding():
    """2^-14 - 2^-26 rounds (rne, 11 bits, unbounded exponent) to 2^-14 = min normal: tiny before rounding only.
    Under rtz it stays below min normal: tiny either way."""
    x = Value.of(F(1, 2 ** 14) - F(1, 2 ** 26))
    before, after = round_value(x, "binary16"), round_value(x, "binary16", tininess="after")
    assert (before.code, before.flags) == (0x0400, frozenset(TU))
    assert (after.code, after.flags) == (0x0400, frozenset({"inexact"}))
    r = round_value(x, "binary16", "rtz", tininess="after")
    assert (r.code, r.flags) == (0x03FF, frozenset(TU))
    r = round_value(Value.of(F(1, 2 ** 24)), "binary16", tininess="after")  # exact subnormal
    assert (r.code, r.flags) == (1, frozenset())
    with pytest.raises(UnknownModeError, match=r"^unknown tininess 'never'; expected one of before, after$"):
        check_tininess("never")


def test_defaults():
    assert [default_overflow(get_format(n)) for n in ("binary16", "ocp_e4m3", "ocp_e2m1", "int8", "binary8p3se")] \
        == ["inf", "nan", "saturate", "saturate", "inf"]
    assert cast_default_overflow(get_format("binary8p3se")) == "satnone"
    assert cast_default_overflow(get_format("binary16")) == "inf"
    assert [default_negative(get_format(n)) for n in ("binary8p3ue", "ue4m3", "uint8")] == \
        ["project", "error", "error"]


def test_floor_log2_by_definition():
    for x in (F(1), F(3, 2), F(2), F(1, 3), F(1, 2), F(255, 256), F(257, 256), F(1, 2 ** 100), F(2 ** 70 - 1),
              F(2 ** 70), F(7, 5), F(5, 7)):
        e = 0
        while F(2) ** e > x:
            e -= 1
        while F(2) ** (e + 1) <= x:
            e += 1
        assert floor_log2(x) == e, x


CHECKS = [
    (("binary16", "rnd", "inf"), r"^unknown rounding mode 'rnd'; expected one of rne, rna, rtz, rup, rdn, rto, sr$"),
    (("binary16", "rne", "clip"), r"^unknown overflow mode 'clip'; expected one of saturate, inf, nan, wrap, "
                                  r"satnone, satfinite, satpropagate, inf_always, nan_rto, saturate_inf_nan$"),
    (("binary16", "rne", "inf", "drop"), r"^unknown NaN policy 'drop'; expected one of error, zero, max$"),
    (("binary16", "rne", "inf", "error", "abs"), r"^unknown negative policy 'abs'; expected one of error, clamp, "
                                                  r"nan, project$"),
    (("int8", "rne", "saturate", "error", "nan"), r"^negative='nan' does not apply to integer format int8 \(it has "
                                                  r"no NaN\); use error or clamp$"),
    (("int8", "rne", "saturate", "error", "project"), r"^negative='project' does not apply"),
    (("int8", "rne", "inf"), r"^overflow mode 'inf' does not apply to integer format int8; use saturate or wrap$"),
    (("binary16", "rne", "wrap"), r"^overflow mode 'wrap' applies to integer formats only, not binary16$"),
    (("ocp_e4m3", "rne", "inf"), r"^overflow mode 'inf' impossible: ocp_e4m3 has no infinity$"),
    (("ocp_e4m3", "rne", "inf_always"), r"^overflow mode 'inf_always' impossible"),
    (("ocp_e2m1", "rne", "nan"), r"^overflow mode 'nan' impossible: ocp_e2m1 has no NaN$"),
    (("ocp_e2m1", "rne", "nan_rto"), r"^overflow mode 'nan_rto' impossible"),
    (("ocp_e2m1", "rne", "saturate_inf_nan"), r"^overflow mode 'saturate_inf_nan' impossible"),
]


@pytest.mark.parametrize("args,msg", CHECKS)
def test_mode_checks(args, msg):
    fmt, *rest = args
    with pytest.raises(UnknownModeError, match=msg):
        check_modes(get_format(fmt), *rest)
    if len(rest) == 2:  # the same error from round_value
        with pytest.raises(UnknownModeError, match=msg):
            round_value(Value.of(F(1)), fmt, rest[0], rest[1])
    check_modes(get_format("int8"), "rne", "wrap", "error", "clamp")


def test_stochastic_argument_checks():
    one = Value.of(F(1))
    with pytest.raises(UnknownModeError, match=r"^stochastic rounding needs rand \(an integer\) and rand_bits "
                                               r"\(its width k\)$"):
        round_value(one, "binary16", "sr", rand_bits=4)
    with pytest.raises(UnknownModeError, match=r"^stochastic rounding needs rand"):
        round_value(one, "binary16", "sr", rand=1)
    for bad in (0, -2, 1.5):
        with pytest.raises(UnknownModeError, match=r"^rand_bits must be a positive integer, got "):
            round_value(one, "binary16", "sr", rand=0, rand_bits=bad)
    for bad in (16, -1, 2.0):
        with pytest.raises(UnknownModeError, match=r"does not fit in rand_bits=4$"):
            round_value(one, "binary16", "sr", rand=bad, rand_bits=4)
    with pytest.raises(UnknownModeError, match="te_e2m1_8 rounds onto the E2M1 grid only, not binary16"):
        round_value(one, "binary16", "sr", rand=0, rand_bits=8, sr_variant="te_e2m1_8")
    assert round_value(one, "binary16", "sr", rand=15, rand_bits=4).code == 0x3C00


def test_stochastic_variants_into_floats():
    """The worked example of refarith.exact.stochastic: ocp_e5m2, k = 5, 259 = 256 + 3/64 ulp (ulp 64 at 256).
    Variant a: floor(3/64 * 32) = 1, up iff 1 + r >= 32 (r = 31); c: RNITE(1.5) = 2, up iff r >= 30.  256 = 2^8 has
    the exponent field 8 + 15 = 23: code 0b0_10111_00 = 0x5C; 320 = 1.25 * 2^8 is 0x5D; the sign bit is 0x80."""
    for variant, ups in (("a", 1), ("c", 2)):
        for x, sign in ((259, 0), (-259, 0x80)):
            got = [round_value(Value.of(F(x)), "ocp_e5m2", "sr", rand=r, rand_bits=5, sr_variant=variant)
                   for r in range(32)]
            assert [g.code for g in got] == [sign | 0x5C] * (32 - ups) + [sign | 0x5D] * ups, (variant, x)
            assert {g.flags for g in got} == {frozenset({"inexact"})}


# An unsigned format with neither NaN nor inf (specials "none"): E4M3's magnitudes, max 480.
U4M3 = FloatFormat("u4m3_none", 4, 3, 7, signed=False, specials="none")


def test_negative_policies_into_an_unsigned_format_without_nan():
    with pytest.raises(UnknownModeError, match=r"^negative='nan' impossible: u4m3_none has no NaN$"):
        check_modes(U4M3, "rne", "saturate", negative="nan")
    with pytest.raises(UnknownModeError, match=r"^negative='project' under overflow='satnone' needs a NaN, and "
                                               r"u4m3_none has none; use satfinite, satpropagate or saturate$"):
        check_modes(U4M3, "rne", "satnone", negative="project")
    for overflow in ("satfinite", "satpropagate", "saturate"):  # a projected negative gives 0 there, never NaN
        check_modes(U4M3, "rne", overflow, negative="project")
        r = round_value(Value.of(F(-1)), U4M3, "rne", overflow, negative="project")
        assert (r.code, r.flags) == (0, frozenset(INV))
    for negative in ("error", "clamp"):  # satnone itself is fine when no negative can give NaN
        check_modes(U4M3, "rne", "satnone", negative=negative)


def test_ties_in_a_format_without_mantissa_bits_but_with_zero():
    """binary8p1se: no mantissa bits, so a tie goes to the even exponent field; zero is code 0 (even), the smallest
    positive value 2^emin is code 1 (biased exponent 1), 2^(emin+1) code 2."""
    fmt = get_format("binary8p1se")
    m = fmt.min_normal
    r = round_value(Value.of(m / 2), fmt, "rne")  # halfway between 0 and code 1
    assert (r.code, r.flags) == (0, frozenset(TU))
    r = round_value(Value.of(3 * m / 2), fmt, "rne")  # halfway between codes 1 and 2
    assert (r.code, r.flags) == (2, frozenset({"inexact"}))
    r = round_value(Value.of(3 * m / 4), fmt, "rne")  # above the halfway point
    assert (r.code, r.flags) == (1, frozenset(TU))


def test_hifloat8_takes_its_tapered_rounding():
    """refarith.exact.hifloat's rules: +-inf are 0x6F / 0xEF, NaN 0x80; a magnitude beyond the maximum overflows to
    +-inf when the mode rounds away from zero (overflow 'inf')."""
    assert round_value(Value.of(F(10 ** 6)), "hif8", "rne", "inf") == Rounded(0x6F, frozenset(OI))
    assert round_value(Value.of(F(-10 ** 6)), "hifloat8", "rdn", "inf") == Rounded(0xEF, frozenset(OI))
    assert round_value(Value.nan(0), "hif8").code == 0x80


def test_signed_zeros_and_a_signed_format_without_subnormals():
    """-0 keeps its sign where the format has one (binary16 0x8000, +0 0x0000).  A format without subnormals has no
    zero: code 0 is its smallest magnitude 2^emin, and every |x| below it gives +-2^emin, inexact and tiny."""
    assert round_value(Value.zero(1), "binary16") == Rounded(0x8000)
    assert round_value(Value.zero(0), "binary16") == Rounded(0x0000)
    nosub = FloatFormat("e4m3_nosub", 4, 3, 7, subnormals=False, specials="fn")  # 2^emin = 2^-7 is code 0
    assert round_value(Value.of(F(1, 2 ** 9)), nosub) == Rounded(0x00, frozenset(TU))
    assert round_value(Value.of(F(-1, 2 ** 9)), nosub) == Rounded(0x80, frozenset(TU))


def test_stochastic_rounding_with_tininess_after():
    """binary16, k = 1, variant a (up iff floor(frac * 2) + r >= 2).  x = 2^-14 - 2^-26: at the subnormal spacing
    2^-24 it is 1023.75 ulps (t = 1), so r = 1 gives 1024 ulps = 2^-14 (0x0400) and r = 0 gives 0x03FF.  With an
    unbounded exponent it is 2047.5 ulps of 2^-25 (t = 1): the same r decides, so the result is tiny after rounding
    only for r = 0."""
    x = Value.of(F(1, 2 ** 14) - F(1, 2 ** 26))
    r0 = round_value(x, "binary16", "sr", rand=0, rand_bits=1, tininess="after")
    r1 = round_value(x, "binary16", "sr", rand=1, rand_bits=1, tininess="after")
    assert (r0, r1) == (Rounded(0x03FF, frozenset(TU)), Rounded(0x0400, frozenset({"inexact"})))


def test_stochastic_rounding_of_a_projected_negative():
    """-2^-34 into binary8p3ue (satnone, negative='project'): half its smallest subnormal 2^-33, so with k = 1
    (t = 1) r = 1 rounds to -2^-33, below M_lo: NaN (255); r = 0 rounds to zero: +0."""
    got = [round_value(Value.of(F(-1, 2 ** 34)), "binary8p3ue", "sr", rand=r, rand_bits=1) for r in (0, 1)]
    assert got == [Rounded(0, frozenset(TU)), Rounded(255, frozenset(INV))]


def test_unsigned_overflow_by_rounding_direction():
    """binary8p3ue (unsigned, +inf 254) under the IEEE reading 'inf': rup rounds a positive value away from zero,
    so 2^40 (beyond max 1.25 * 2^31) gives +inf; rdn and rtz give max (253)."""
    x = Value.of(F(2 ** 40))
    assert round_value(x, "binary8p3ue", "rup", "inf") == Rounded(254, frozenset(OI))
    assert round_value(x, "binary8p3ue", "rdn", "inf") == Rounded(253, frozenset(OI))
    assert round_value(x, "binary8p3ue", "rtz", "inf") == Rounded(253, frozenset(OI))


def test_flushing_checks_its_mode_and_leaves_integers_alone():
    with pytest.raises(UnknownModeError, match=r"^unknown subnormal mode 'fz'; expected one of daz, ftz, daz_ftz$"):
        flush_input(Value.of(F(1)), get_format("binary16"), "fz")
    for mode in ("ftz", "daz_ftz"):
        assert flush_code(5, get_format("int8"), mode) == 5
    for mode in ("daz", "daz_ftz"):
        assert flush_input(Value.of(F(1, 2)), get_format("int8"), mode) == Value.of(F(1, 2))


def test_directed_rounding_with_tininess_after():
    """x = 2^-14 - 2^-26 under rup: 2^-14 with an unbounded exponent (2047.5 ulps of 2^-25 rounded up), so it is not
    tiny after rounding; the result is 0x0400, inexact only.  -x under rdn likewise (0x8400); -x under rup rounds
    towards zero (0x83FF) and stays tiny."""
    x = F(1, 2 ** 14) - F(1, 2 ** 26)
    assert round_value(Value.of(x), "binary16", "rup", tininess="after") == Rounded(0x0400, frozenset({"inexact"}))
    assert round_value(Value.of(-x), "binary16", "rdn", tininess="after") == Rounded(0x8400, frozenset({"inexact"}))
    assert round_value(Value.of(-x), "binary16", "rup", tininess="after") == Rounded(0x83FF, frozenset(TU))
