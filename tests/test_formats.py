"""The format records and the catalogue: layouts, derived properties, aliases, parametric names, bad input."""

from __future__ import annotations

from fractions import Fraction

import pytest
from independent import grid, ref_decode

from refarith.errors import BitPatternError, UnknownFormatError, UnknownModeError
from refarith.formats import ALIASES, FloatFormat, IntFormat, catalogue, float_formats, get_format

# name: (sign bits, exponent bits, mantissa bits, bias) from the specifications / ml_dtypes / P3109.
LAYOUTS = {
    "binary64": (1, 11, 52, 1023), "binary32": (1, 8, 23, 127), "binary16": (1, 5, 10, 15),
    "bfloat16": (1, 8, 7, 127), "tf32": (1, 8, 10, 127), "ocp_e5m2": (1, 5, 2, 15), "ocp_e4m3": (1, 4, 3, 7),
    "e4m3fnuz": (1, 4, 3, 8), "e5m2fnuz": (1, 5, 2, 16), "e4m3b11fnuz": (1, 4, 3, 11),
    "ieee_e4m3": (1, 4, 3, 7), "ieee_e3m4": (1, 3, 4, 3), "ocp_e3m2": (1, 3, 2, 3), "ocp_e2m3": (1, 2, 3, 1),
    "ocp_e2m1": (1, 2, 1, 1), "e8m0": (0, 8, 0, 127), "ue4m3": (0, 4, 3, 7),
    "binary8p3se": (1, 5, 2, 16), "binary8p4se": (1, 4, 3, 8), "binary8p5se": (1, 3, 4, 4),
    "binary8p1se": (1, 7, 0, 64), "binary8p3ue": (0, 6, 2, 32),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layouts(name):
    f = get_format(name)
    assert (int(f.signed), f.ebits, f.mbits, f.bias) == LAYOUTS[name]
    assert f.nbits == sum(LAYOUTS[name][:3])


@pytest.mark.parametrize("name", [f.name for f in float_formats(16)])
def test_derived_properties_agree_with_enumeration(name):
    """max, max_code, min_normal, min_subnormal, nan/inf codes, -0 and zero, computed once in the record,
    against the enumerated independent decoder."""
    f = get_format(name)
    g = grid(f)
    assert f.max_code == g.max_code
    assert f.max == Fraction(g.pos_vals[-1])
    pos = [v for v in g.pos_vals if v > 0]
    assert f.min_subnormal == Fraction(pos[0])
    normals = [v for c, v in zip(g.pos_codes, g.pos_vals) if v > 0 and (c >> f.mbits) & f.emask >= 1]
    assert f.min_normal == (Fraction(min(normals)) if f.subnormals else Fraction(pos[0]))
    assert f.nan_codes == g.nan_codes or (f.specials == "ieee" and f.nbits > 16)
    assert f.inf_codes == (g.pos_inf, g.neg_inf)
    assert f.has_inf == (g.pos_inf is not None) and f.has_nan == bool(g.nan_codes)
    assert f.has_negative_zero == (g.neg_zero is not None)
    assert f.has_zero == (g.pos_vals[0] == 0)
    assert 2 ** f.emax <= f.max < 2 ** (f.emax + 1)
    if f.has_nan:
        assert f.nan_code in g.nan_codes and ref_decode(f, f.nan_code)[0] == "nan"
        for s in (0, 1):
            c = f.nan_code_with_sign(s)
            assert c in g.nan_codes
            if g.signed_nans:
                assert bool(c & g.sign_bit) == bool(s)
    else:
        assert f.nan_code is None


def test_ieee_canonical_nan_is_quiet():
    assert get_format("binary16").nan_code == 0x7E00
    assert get_format("binary32").nan_code == 0x7FC00000
    assert get_format("bfloat16").nan_code == 0x7FC0
    assert get_format("ocp_e5m2").nan_code == 0x7E


def test_fields_and_check_code():
    f = get_format("ocp_e4m3")
    assert f.fields(0xB9) == (1, 7, 1)
    for bad in (-1, 256, 1 << 20):
        with pytest.raises(BitPatternError):
            f.fields(bad)
    for bad in (1.0, "1", True):
        with pytest.raises(BitPatternError):
            f.check_code(bad)
    assert get_format("e8m0").fields(0x80) == (0, 128, 0)


def test_aliases_resolve_to_catalogue_formats():
    cat = catalogue()
    for alias, target in ALIASES.items():
        assert target in cat
        assert get_format(alias) is cat[target]
    assert get_format("torch.float8_e4m3fn").name == "ocp_e4m3"
    assert get_format("ml_dtypes.float4_e2m1fn").name == "ocp_e2m1"
    assert get_format("  BFloat16 ").name == "bfloat16"
    assert get_format("p3109_k8p3se").name == "binary8p3se"
    f = get_format("ocp_e4m3")
    assert get_format(f) is f


def test_catalogue_names_are_their_own_normal_form():
    """get_format returns a catalogue name's record without normalising it; that is only right if normalising
    (strip, drop a library prefix, lower case) leaves every catalogue name unchanged."""
    import importlib

    normalise = importlib.import_module("refarith.formats.catalogue")._normalise  # the module, not the function
    for name, fmt in catalogue().items():
        assert normalise(name) == name and get_format(name) is fmt


def test_parametric_names():
    f = get_format("e4m3")
    assert f.name == "ocp_e4m3"  # the alias wins over the parametric reading
    g = get_format("e3m3")
    assert (g.ebits, g.mbits, g.bias, g.specials, g.signed, g.subnormals) == (3, 3, 3, "ieee", True, True)
    h = get_format("ue5m2b10_fn_nosub")
    assert (h.ebits, h.mbits, h.bias, h.specials, h.signed, h.subnormals) == (5, 2, 10, "fn", False, False)
    assert get_format("e2m0_none").nbits == 3
    assert get_format("e4m3b-2_fnuz").bias == -2
    for bad in ("e1m1", "e10m10", "e2m0_fnuz_x"):
        with pytest.raises(UnknownFormatError):
            get_format(bad)


def test_unknown_format_names_close_matches():
    with pytest.raises(UnknownFormatError, match="ocp_e4m3"):
        get_format("ocp_e4m4")
    with pytest.raises(UnknownFormatError):
        get_format(3)
    with pytest.raises(UnknownFormatError, match="refarith formats"):
        get_format("zzzzzzzzzzzz")


def test_invalid_records():
    with pytest.raises(UnknownModeError):
        FloatFormat("x", 4, 3, 7, specials="weird")
    with pytest.raises(UnknownModeError):
        FloatFormat("x", 1, 2, 0, specials="ieee")
    with pytest.raises(UnknownModeError):
        FloatFormat("x", 4, 3, 7, signed=False, specials="fnuz")
    with pytest.raises(UnknownModeError):
        FloatFormat("x", 0, 3, 7)
    with pytest.raises(UnknownModeError):
        IntFormat("x", 0)
    with pytest.raises(UnknownModeError):
        IntFormat("x", 8, signed=False, symmetric=True)


@pytest.mark.parametrize("bits", [2, 4, 8, 16, 32])
def test_integer_formats(bits):
    s, u, y = get_format(f"int{bits}"), get_format(f"uint{bits}"), get_format(f"int{bits}_sym")
    assert (s.min, s.max) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    assert (u.min, u.max) == (0, 2 ** bits - 1)
    assert (y.min, y.max) == (-(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1)
    assert s.value(2 ** (bits - 1)) == -(2 ** (bits - 1)) and y.value(2 ** (bits - 1)) == -(2 ** (bits - 1))
    assert s.code(-1) == 2 ** bits - 1 and u.code(u.max) == 2 ** bits - 1
    with pytest.raises(BitPatternError):
        s.value(2 ** bits)
    with pytest.raises(BitPatternError):
        u.code(-1)


def test_catalogue_covers_the_reference_table():
    names = set(catalogue())
    for n in ("binary32", "binary16", "bfloat16", "ocp_e5m2", "ocp_e4m3", "e4m3fnuz", "e5m2fnuz", "ocp_e3m2",
              "ocp_e2m3", "ocp_e2m1", "e8m0", "ue4m3", "ue5m3", "int8", "uint8", "int8_sym"):
        assert n in names
    assert sum(1 for n in names if n.startswith("binary8p")) == 30  # P3109 K = 8: P = 1..7 s/u e/f, P = 8 u e/f
    assert all(f.nbits <= 8 for f in float_formats(8))
