"""Peers against the exact model: ml_dtypes ``astype`` casts and gfloat ``round_float`` / ``encode_float``.

Where a peer implements the same semantics, its codes must equal the exact model's on every input tried.
Every behaviour where they differ is a named test that asserts BOTH the peer's observed result and the exact
model's, so it fails when either side changes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from independent import source_floats

from refarith.errors import SpecialValueError
from refarith.exact import DETERMINISTIC_MODES, cast, decode, default_overflow, encode, round_value
from refarith.formats import get_format

F32 = get_format("binary32")


def f32_inputs(seed: int = 5, n: int = 10_000) -> np.ndarray:
    """Every 3rd bfloat16 bit pattern widened to float32 (every binade, the specials) plus random float32."""
    with np.errstate(invalid="ignore"):
        a = source_floats("bfloat16").astype(np.float32)[::3]
    rng = np.random.default_rng(seed)
    b = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    return np.concatenate([a, b])


_VALUES: dict = {}


def f32_values(x: np.ndarray):
    key = x.tobytes()
    if key not in _VALUES:
        _VALUES.clear()
        _VALUES[key] = [decode(int(b), F32) for b in x.view(np.uint32)]
    return _VALUES[key]


def exact_codes(x, fmt, mode="rne", overflow=None, skip=None):
    vals = f32_values(x)
    return np.array([-1 if skip is not None and skip[i] else round_value(v, fmt, mode, overflow).code
                     for i, v in enumerate(vals)], dtype=np.int64)


def same_or_both_nan(got, want, fmt) -> np.ndarray:
    nan = np.array([decode(c, fmt).is_nan for c in range(fmt.ncodes)])
    return (got == want) | (nan[got] & nan[want])


# ------------------------------------------------------------------ ml_dtypes
# name -> (ml_dtypes type, overflow mode ml_dtypes implements, a note)
ML = {
    "ocp_e4m3": ("float8_e4m3fn", "nan"),
    "ocp_e5m2": ("float8_e5m2", "inf"),
    "e4m3fnuz": ("float8_e4m3fnuz", "nan"),
    "e5m2fnuz": ("float8_e5m2fnuz", "nan"),
    "e4m3b11fnuz": ("float8_e4m3b11fnuz", "nan"),
    "ieee_e4m3": ("float8_e4m3", "inf"),
    "ieee_e3m4": ("float8_e3m4", "inf"),
    "ocp_e2m3": ("float6_e2m3fn", "saturate"),
    "ocp_e3m2": ("float6_e3m2fn", "saturate"),
    "ocp_e2m1": ("float4_e2m1fn", "saturate"),
    "bfloat16": ("bfloat16", "inf"),
}


def _md():
    return pytest.importorskip("ml_dtypes", reason="ml_dtypes not installed")


def md_codes(x, dt, nbits):
    with np.errstate(all="ignore"):
        return x.astype(dt).view(np.uint16 if nbits > 8 else np.uint8).astype(np.int64)


@pytest.mark.parametrize("name", sorted(ML))
def test_ml_dtypes_float32_casts_agree(name):
    """ml_dtypes rounds float32 to nearest even; overflow and inf follow the format's non-saturating rule
    (inf for IEEE-like formats, NaN for fn/fnuz) and saturate for FP6/FP4.  NaN inputs into FP6/FP4 are a
    named difference (below) and excluded here."""
    md = _md()
    dname, ov = ML[name]
    fmt = get_format(name)
    x = f32_inputs()
    skip = np.isnan(x) if not fmt.has_nan else None
    got = md_codes(x, getattr(md, dname), fmt.nbits)
    want = exact_codes(x, fmt, "rne", ov, skip)
    keep = ~skip if skip is not None else np.ones(len(x), dtype=bool)
    assert np.all(want[keep] == got[keep]), name  # NaN codes too: ml_dtypes keeps the sign, as we do


def test_numpy_float16_cast_agrees_except_nan_payload():
    fmt = get_format("binary16")
    x = f32_inputs()
    with np.errstate(over="ignore"):
        got = x.astype(np.float16).view(np.uint16).astype(np.int64)
    want = exact_codes(x, fmt)
    nan = np.isnan(x)
    assert np.all(got[~nan] == want[~nan])
    assert np.all((got[nan] & 0x7C00) == 0x7C00) and np.all((want[nan] & 0x7FFF) == 0x7E00)


def test_numpy_float16_keeps_nan_payload_refarith_gives_canonical_nan():
    x = np.array([0x7FC10000], dtype=np.uint32).view(np.float32)  # quiet NaN with a payload bit
    assert int(x.astype(np.float16).view(np.uint16)[0]) == 0x7E08  # numpy: payload shifted right 13, kept
    assert cast(0x7FC10000, "binary32", "binary16").code == 0x7E00  # refarith: canonical quiet NaN


def test_ml_dtypes_fp4_fp6_nan_maps_to_zero_with_flipped_sign():
    """ml_dtypes turns a float32 NaN into a zero of FP4/FP6 whose sign bit is the complement of the NaN's;
    refarith raises under nan_policy='error' (default), or gives +0 ('zero') / ±max ('max')."""
    md = _md()
    x = np.array([0x7FC00000, 0xFFC00000], dtype=np.uint32).view(np.float32)
    for name, dname, signbit in (("ocp_e2m1", "float4_e2m1fn", 0x8), ("ocp_e2m3", "float6_e2m3fn", 0x20),
                                 ("ocp_e3m2", "float6_e3m2fn", 0x20)):
        got = md_codes(x, getattr(md, dname), 8).tolist()
        assert got == [signbit, 0x0], name
        with pytest.raises(SpecialValueError):
            cast(0x7FC00000, "binary32", name)
        assert cast(0x7FC00000, "binary32", name, nan_policy="zero").code == 0
        fmt = get_format(name)
        assert cast(0xFFC00000, "binary32", name, nan_policy="max").code == fmt.max_code | signbit


def test_ml_dtypes_fp4_fp6_inf_saturates_like_refarith():
    md = _md()
    x = np.array([np.inf, -np.inf, 1e30], dtype=np.float32)
    assert md_codes(x, md.float4_e2m1fn, 4).tolist() == [0x7, 0xF, 0x7]
    assert [encode(float(v), "ocp_e2m1").code for v in x] == [0x7, 0xF, 0x7]


def test_ml_dtypes_e4m3fn_overflow_is_nan_refarith_default_too():
    md = _md()
    x = np.array([464.0, 465.0, 1e6, np.inf], dtype=np.float32)
    assert md_codes(x, md.float8_e4m3fn, 8).tolist() == [0x7E, 0x7F, 0x7F, 0x7F]
    assert [encode(float(v), "ocp_e4m3").code for v in x] == [0x7E, 0x7F, 0x7F, 0x7F]
    assert [encode(float(v), "ocp_e4m3", overflow="saturate").code for v in x] == [0x7E] * 4


def test_ml_dtypes_e8m0_ties_round_up_refarith_ties_to_even_code():
    """ml_dtypes float8_e8m0fnu rounds the float32 significand half-up (1.5 * 2^k -> 2^(k+1)); refarith's rne
    takes the even biased exponent (README rule in refarith.exact.rounding); refarith's rna equals ml_dtypes."""
    md = _md()
    x = np.array([0.75, 1.5, 3.0, 6.0, 12.0, 1.4999], dtype=np.float32)
    got = md_codes(x, md.float8_e8m0fnu, 8).tolist()
    assert got == [0x7F, 0x80, 0x81, 0x82, 0x83, 0x7F]
    assert [encode(float(v), "e8m0").code for v in x] == [0x7E, 0x80, 0x80, 0x82, 0x82, 0x7F]
    assert [encode(float(v), "e8m0", "rna").code for v in x] == got
    big = np.array([1.5 * 2.0 ** 127], dtype=np.float32)
    assert md_codes(big, md.float8_e8m0fnu, 8).tolist() == [0xFF]  # tie up overflows to NaN
    assert encode(1.5 * 2.0 ** 127, "e8m0").code == 0xFE  # even code 0xFE (2^127) keeps it finite


def test_ml_dtypes_e8m0_zero_negative_and_inf_are_nan():
    """ml_dtypes: 0, -0, negatives and ±inf all become 0xFF (NaN).  refarith: 0 and -0 give the smallest
    value 2^-127 (code 0, flagged underflow), a negative raises (or clamps to code 0), +inf -> NaN by the
    default overflow 'nan'."""
    md = _md()
    x = np.array([0.0, -0.0, -1.0, np.inf, -np.inf], dtype=np.float32)
    assert md_codes(x, md.float8_e8m0fnu, 8).tolist() == [0xFF] * 5
    assert encode(0.0, "e8m0").code == 0 and "underflow" in encode(0.0, "e8m0").flags
    assert encode(-0.0, "e8m0").code == 0
    with pytest.raises(SpecialValueError):
        encode(-1.0, "e8m0")
    assert encode(-1.0, "e8m0", negative="clamp").code == 0
    assert encode(math.inf, "e8m0").code == 0xFF


def _md_version(md) -> tuple[int, ...]:
    return tuple(int(p) for p in md.__version__.split(".")[:2])


def test_ml_dtypes_e8m0_float32_subnormal_inputs():
    """A float32 subnormal just above 2^-127: its nearest E8M0 value is 2^-127 (code 0), which refarith gives.
    ml_dtypes before 0.7 gave 2^-126 (2^-127 itself stayed); 0.7.0 rounds to nearest there, ties (1.5 * 2^-127)
    away, as refarith's rna."""
    md = _md()
    x = np.array([2.0 ** -127 * 1.015625, 2.0 ** -127, 2.0 ** -127 * 1.5, 2.0 ** -127 * 1.4], dtype=np.float32)
    assert [encode(float(v), "e8m0").code for v in x] == [0x00, 0x00, 0x00, 0x00]  # rne: the tie to code 0
    rna = [encode(float(v), "e8m0", "rna").code for v in x]
    assert rna == [0x00, 0x00, 0x01, 0x00]
    got = md_codes(x, md.float8_e8m0fnu, 8).tolist()
    if _md_version(md) < (0, 7):
        assert got[:2] == [0x01, 0x00]
    else:
        assert got == rna  # as on normal inputs (next test)


def test_ml_dtypes_e8m0_agrees_with_rna_on_normal_positive_inputs():
    md = _md()
    x = f32_inputs()
    keep = np.isfinite(x) & (x > 0) & (np.abs(x) >= 2.0 ** -126)
    x = x[keep]
    got = md_codes(x, md.float8_e8m0fnu, 8)
    want = exact_codes(x, get_format("e8m0"), "rna", "nan")
    assert np.all(got == want)


@pytest.mark.parametrize("dname,name", [("float8_e4m3fn", "ocp_e4m3"), ("float8_e5m2", "ocp_e5m2"),
                                        ("bfloat16", "bfloat16"), ("float4_e2m1fn", "ocp_e2m1")])
def test_ml_dtypes_float64_input_double_rounds_through_float32(dname, name):
    """ml_dtypes before 0.7 converts float64 via float32: a tie-breaking bit below float32 precision is lost, the
    value becomes an exact tie and rounds to even.  refarith rounds the float64 value once, as ml_dtypes 0.7.0
    does."""
    md = _md()
    fmt = get_format(name)
    half_ulp = 2.0 ** -(fmt.mbits + 1)
    x = 1.0 + half_ulp + 2.0 ** -40  # just above the midpoint between 1 and 1 + ulp
    got = float(np.array([x]).astype(getattr(md, dname)).astype(np.float64)[0])
    assert decode(encode(x, fmt).code, fmt).fraction == 1 + 2 * half_ulp  # single rounding: up
    # before 0.7, double rounding: down to the even neighbour 1
    assert got == (1.0 if _md_version(md) < (0, 7) else 1 + 2 * half_ulp)


# ------------------------------------------------------------------ gfloat
def _gf():
    return pytest.importorskip("gfloat", reason="gfloat not installed")


def _gfloat_fi(name):
    from gfloat.formats import (
        format_info_ocp_e2m1,
        format_info_ocp_e2m3,
        format_info_ocp_e3m2,
        format_info_ocp_e4m3,
        format_info_ocp_e5m2,
        format_info_ocp_e8m0,
        format_info_p3109,
    )
    from gfloat.types import Domain, Signedness

    fixed = {"ocp_e4m3": format_info_ocp_e4m3, "ocp_e5m2": format_info_ocp_e5m2, "ocp_e2m1": format_info_ocp_e2m1,
             "ocp_e2m3": format_info_ocp_e2m3, "ocp_e3m2": format_info_ocp_e3m2, "e8m0": format_info_ocp_e8m0}
    if name in fixed:
        return fixed[name]
    p = int(name[len("binary8p")])
    return format_info_p3109(8, p, Signedness.Signed if name[-2] == "s" else Signedness.Unsigned,
                             Domain.Extended if name[-1] == "e" else Domain.Finite)


def _gf_modes():
    from gfloat import RoundMode as R

    return {"rne": R.TiesToEven, "rna": R.TiesToAway, "rtz": R.TowardZero, "rup": R.TowardPositive,
            "rdn": R.TowardNegative}


def gfloat_sweep(name, modes, stride):
    _gf()
    from gfloat import encode_ndarray, round_ndarray

    fmt = get_format(name)
    fi = _gfloat_fi(name)
    with np.errstate(invalid="ignore"):
        x = source_floats("bfloat16")[::stride]
    keep = np.ones(len(x), dtype=bool)
    if not fmt.has_nan:
        keep &= ~np.isnan(x)
    if not fmt.signed:
        keep &= ~np.signbit(x)
    if not fmt.has_zero:
        keep &= np.abs(x) >= float(fmt.min_normal)  # gfloat's E8M0 leaves tiny values unclamped (below)
    x = x[keep]
    vals = [decode(int(b) >> 16, "bfloat16") for b in x.astype(np.float32).view(np.uint32)]
    for mode in modes:
        for sat in ([True, False] if fmt.has_nan else [True]):
            with np.errstate(all="ignore"):
                got = encode_ndarray(fi, round_ndarray(fi, x, _gf_modes()[mode], sat)).astype(np.int64)
            # sat=False is gfloat's IEEE/OCP non-saturating rule, refarith's default_overflow variant (for P3109
            # targets not the standard's satnone: docs/p3109_findings.md)
            want = np.array([round_value(v, fmt, mode, "saturate" if sat else default_overflow(fmt)).code
                             for v in vals])
            ok = same_or_both_nan(got, want, fmt)
            assert ok.all(), (name, mode, sat, x[~ok][:3], got[~ok][:3], want[~ok][:3])


@pytest.mark.parametrize("name", ["ocp_e4m3", "ocp_e5m2", "ocp_e2m1", "ocp_e2m3", "ocp_e3m2", "e8m0"])
def test_gfloat_ocp_all_modes(name):
    gfloat_sweep(name, ["rne", "rna", "rtz", "rup", "rdn"], 11)


P3109 = [f"binary8p{p}{s}{d}" for p in range(1, 8) for s in "su" for d in "ef"]


@pytest.mark.parametrize("name", P3109)
def test_gfloat_p3109_rne(name):
    gfloat_sweep(name, ["rne"], 23)


@pytest.mark.slow
@pytest.mark.parametrize("name", P3109 + ["ocp_e4m3", "ocp_e5m2", "ocp_e2m1", "ocp_e2m3", "ocp_e3m2", "e8m0"])
def test_gfloat_all_modes_all_codes(name):
    gfloat_sweep(name, ["rne", "rna", "rtz", "rup", "rdn"], 1)


def test_gfloat_e8m0_below_range_is_not_clamped():
    """gfloat round_float leaves 2^-133 as is (not an E8M0 value) and encode_float then gives 0xFF (NaN);
    refarith gives the smallest value 2^-127 (code 0) in every mode, flagged underflow."""
    gf = _gf()
    fi = _gfloat_fi("e8m0")
    x = 2.0 ** -133
    r = gf.round_float(fi, x, _gf_modes()["rne"], True)
    assert r == x and gf.encode_float(fi, r) == 0xFF
    for mode in DETERMINISTIC_MODES:
        assert encode(x, "e8m0", mode).code == 0


def test_gfloat_e8m0_negative_encodes_as_nan():
    gf = _gf()
    fi = _gfloat_fi("e8m0")
    assert gf.round_float(fi, -1.0, _gf_modes()["rne"], True) == -1.0
    assert gf.encode_float(fi, -1.0) == 0xFF
    with pytest.raises(SpecialValueError):
        encode(-1.0, "e8m0")


def test_gfloat_fp4_nan_and_nonsaturating_are_errors():
    """gfloat raises ValueError for NaN into FP4/FP6 and for sat=False on formats without inf/NaN; refarith
    raises SpecialValueError under nan_policy='error' and defaults FP4/FP6 overflow to saturate."""
    gf = _gf()
    fi = _gfloat_fi("ocp_e2m1")
    with pytest.raises(ValueError):
        gf.round_float(fi, math.nan, _gf_modes()["rne"], True)
    with pytest.raises(ValueError):
        gf.round_float(fi, 7.0, _gf_modes()["rne"], False)
    with pytest.raises(SpecialValueError):
        encode(math.nan, "ocp_e2m1")
    assert encode(7.0, "ocp_e2m1").code == 0x7
    assert gf.round_float(fi, 7.0, _gf_modes()["rne"], True) == 6.0
