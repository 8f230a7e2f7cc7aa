"""Casts of the exact model against an independent bracketing search over the target's value table.

Sources: all 2^16 codes of binary16 and bfloat16, and binary32 boundary cases plus seeded random inputs.
Targets: every catalogue float format of 8 bits or fewer.  The reference (tests/independent.py) works in
float64, which is exact for all these inputs, target values and midpoints (argued in its docstring).

Split (the exact model costs ~12 us per rounding):
* default run: binary16 (all 2^16) under rne + the target's default overflow into every target but the P3109
  ones, and into one P3109 format per precision class; the other P3109 targets on a window of the codes;
  bfloat16 into the OCP / fnuz / E8M0 targets under every rounding and overflow mode, restricted to
  the codes near the bottom, around 1 and near the top of the target's range plus every 97th code;
  binary32 boundary cases into every target (every mode for the OCP / fnuz / E8M0 targets, rne and rup
  for the others); 10^5 random binary32 into ocp_e4m3.
* ``slow``: both 16-bit sources, all 2^16 codes, every target, every mode and overflow (and both NaN
  policies for targets without NaN); binary32 boundaries and 10^5 random binary32 into every target under
  every mode and overflow.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from independent import grid, matches, ref_round, ref_special, source_floats

from refarith.errors import SpecialValueError, UnknownModeError
from refarith.exact import DETERMINISTIC_MODES, cast, decode, encode, round_value
from refarith.formats import float_formats, get_format

TARGETS = [f.name for f in float_formats(8)]
OCPISH = ["ocp_e4m3", "ocp_e5m2", "e4m3fnuz", "e5m2fnuz", "ocp_e2m1", "ocp_e3m2", "ocp_e2m3", "e8m0"]


def overflows(fmt) -> list[str]:
    out = ["saturate"]
    if fmt.has_inf:
        out.append("inf")
    if fmt.has_nan:
        out.append("nan")
    return out


@functools.cache
def source_values(src: str):
    f = get_format(src)
    return [decode(c, f) for c in range(f.ncodes)]


def model_codes(values, fmt, mode: str, overflow: str, nan_policy: str = "max") -> np.ndarray:
    return np.array([round_value(v, fmt, mode, overflow, nan_policy, "clamp").code for v in values], dtype=np.int64)


def reference_codes(xs: np.ndarray, fmt, mode: str, overflow: str, nan_policy: str = "max") -> np.ndarray:
    finite = np.isfinite(xs)
    out = np.empty(len(xs), dtype=np.int64)
    out[finite] = ref_round(xs[finite], fmt, mode, overflow)
    for i in np.flatnonzero(~finite):
        kind = "nan" if math.isnan(xs[i]) else "inf"
        out[i] = ref_special(kind, bool(np.signbit(xs[i])), fmt, overflow, nan_policy)
    return out


def check(values, xs, fmt, mode, overflow, label, nan_policy="max", model_overflow="same") -> None:
    """Compare; ``model_overflow=None`` lets the exact model pick its default overflow mode."""
    got = model_codes(values, fmt, mode, overflow if model_overflow == "same" else model_overflow, nan_policy)
    want = reference_codes(xs, fmt, mode, overflow, nan_policy)
    ok = matches(got, want, fmt)
    if not ok.all():
        bad = np.flatnonzero(~ok)[:5]
        lines = [f"x={xs[i]!r} model={got[i]:#x} reference={want[i]:#x}" for i in bad]
        raise AssertionError(f"{label} -> {fmt.name} {mode}/{overflow}: {int((~ok).sum())} mismatches; "
                             + "; ".join(lines))


def window(xs: np.ndarray, fmt, span: float = 16, stride: int = 97) -> np.ndarray:
    """Indices of inputs within a factor ``span`` of the bottom, of 1 and of the top of fmt's range, specials,
    every ``stride``-th."""
    g = grid(fmt)
    a = np.abs(xs)
    lo = g.pos_vals[g.pos_vals > 0][0]
    sel = ~np.isfinite(xs) | (a == 0) | (np.arange(len(xs)) % stride == 0)
    for b, t in ((lo / span, lo * span), (1 / span, span), (g.pos_vals[-1] / span, g.virt_val * span)):
        sel |= (a >= b) & (a <= t)
    return np.flatnonzero(sel)


# ------------------------------------------------------------------ 16-bit sources
# all 2^16 binary16 codes in the default run: every non-P3109 target and one P3109 format per precision class
# (P = 1, 3, 4, 8; signed/unsigned, extended/finite); the other P3109 targets on a window of the codes (their
# value tables are checked against the P3109 tables, their kernels by the theorems; all codes under ``slow``)
FULL16 = [t for t in TARGETS if not t.startswith("binary8p")] + ["binary8p1se", "binary8p3sf", "binary8p4ue",
                                                                  "binary8p8uf"]


@pytest.mark.parametrize("target", TARGETS)
def test_binary16_all_codes_rne_default_overflow(target):
    fmt = get_format(target)
    xs, vals = source_floats("binary16"), source_values("binary16")
    if target not in FULL16:  # a factor 2 about the bottom, 1 and the top of the range, specials, every 13th code
        idx = window(xs, fmt, span=2, stride=13)
        xs, vals = xs[idx], [vals[i] for i in idx]
    check(vals, xs, fmt, "rne", _default(fmt), "binary16", model_overflow=None)


def _default(fmt) -> str:
    """Default overflow per the rounding docstring: inf if present, else NaN if present, else saturate; P3109
    formats default to SatNone, which under rne is inf (extended domain) or saturate (finite domain)."""
    if fmt.specials in ("p3109e", "p3109f"):
        return "inf" if fmt.specials == "p3109e" else "saturate"
    return "inf" if grid(fmt).pos_inf is not None else ("nan" if grid(fmt).nan_codes else "saturate")


@pytest.mark.parametrize("mode", DETERMINISTIC_MODES)
@pytest.mark.parametrize("target", OCPISH)
def test_bfloat16_window_all_modes(target, mode):
    fmt = get_format(target)
    xs = source_floats("bfloat16")
    idx = window(xs, fmt)
    vals = source_values("bfloat16")
    for ov in overflows(fmt):
        check([vals[i] for i in idx], xs[idx], fmt, mode, ov, "bfloat16")


@pytest.mark.slow
@pytest.mark.parametrize("mode", DETERMINISTIC_MODES)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("src", ["binary16", "bfloat16"])
def test_16bit_all_codes_all_modes(src, target, mode):
    fmt = get_format(target)
    for ov in overflows(fmt):
        for pol in (("max", "zero") if not fmt.has_nan else ("max",)):
            check(source_values(src), source_floats(src), fmt, mode, ov, src, pol)


# ------------------------------------------------------------------ binary32
def binary32_boundaries(fmt) -> np.ndarray:
    """Every target value, every midpoint (and the virtual one above max), their binary32 neighbours, both
    signs, zeros, binary32 extremes, infinities and NaN."""
    g = grid(fmt)
    ext = np.append(g.pos_vals, g.virt_val)
    pts = np.concatenate([ext, (ext[:-1] + ext[1:]) / 2, [ext[-1] * 4, 2.0 ** -149, 3.4028234663852886e38]])
    pts = pts[pts <= 3.4028234663852886e38]  # E8M0's virtual 2^128 and its midpoint are beyond binary32
    f = pts.astype(np.float32)
    assert np.all(f.astype(np.float64) == pts), "boundaries must be binary32 values"
    with np.errstate(over="ignore"):
        near = np.concatenate([f, np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(0))])
    allv = np.concatenate([near, -near, np.array([np.inf, -np.inf, np.nan, -np.nan], dtype=np.float32)])
    return np.unique(allv.view(np.uint32)).view(np.float32)


def values_of_f32(x: np.ndarray):
    return [decode(int(b), get_format("binary32")) for b in x.view(np.uint32)]


@pytest.mark.parametrize("target", TARGETS)
def test_binary32_boundaries(target):
    """All modes for the OCP / fnuz / E8M0 targets, rne and rup for the others (all modes under ``slow``)."""
    _binary32_boundaries(target, DETERMINISTIC_MODES if target in OCPISH else ("rne", "rup"))


@pytest.mark.slow
@pytest.mark.parametrize("target", [t for t in TARGETS if t not in OCPISH])
def test_binary32_boundaries_all_modes(target):
    _binary32_boundaries(target, DETERMINISTIC_MODES)


def _binary32_boundaries(target, modes):
    fmt = get_format(target)
    x = binary32_boundaries(fmt)
    vals = values_of_f32(x)
    for mode in modes:
        for ov in overflows(fmt):
            check(vals, x.astype(np.float64), fmt, mode, ov, "binary32")


def random_binary32(n: int, seed: int) -> np.ndarray:
    """Half uniformly random bit patterns, half random values with exponents in [-140, 20]."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 1 << 32, n // 2, dtype=np.uint64).astype(np.uint32)
    mant = rng.integers(0, 1 << 23, n - n // 2, dtype=np.uint64).astype(np.uint32)
    exp = rng.integers(-14, 148, n - n // 2).astype(np.uint32)
    sign = rng.integers(0, 2, n - n // 2).astype(np.uint32)
    bits2 = (sign << 31) | (np.minimum(exp, 254) << 23) | mant
    return np.concatenate([bits, bits2]).view(np.float32)


def test_binary32_random_1e5_into_e4m3_rne():
    fmt = get_format("ocp_e4m3")
    x = random_binary32(100_000, 20261123)
    with np.errstate(invalid="ignore"):
        check(values_of_f32(x), x.astype(np.float64), fmt, "rne", "nan", "binary32")


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_binary32_random_1e5_all_modes(target):
    fmt = get_format(target)
    x = random_binary32(100_000, 7 + len(target))
    vals = values_of_f32(x)
    for mode in DETERMINISTIC_MODES:
        for ov in overflows(fmt):
            with np.errstate(invalid="ignore"):
                check(vals, x.astype(np.float64), fmt, mode, ov, "binary32")


# ------------------------------------------------------------------ NaN policies, negative into unsigned
NO_NAN = [f.name for f in float_formats(8) if not f.has_nan]
UNSIGNED = [f.name for f in float_formats(8) if not f.signed]


@pytest.mark.parametrize("target", NO_NAN)
def test_nan_policies_into_formats_without_nan(target):
    fmt = get_format(target)
    g = grid(fmt)
    for src, nan_code in (("binary16", 0x7E00), ("bfloat16", 0x7FC0)):
        for sign in (0, 0x8000):
            c = nan_code | sign
            with pytest.raises(SpecialValueError):
                cast(c, src, fmt)
            assert cast(c, src, fmt, nan_policy="zero").code == int(g.pos_codes[0]) == 0
            want = g.max_code | (g.sign_bit if sign else 0)
            r = cast(c, src, fmt, nan_policy="max")
            assert r.code == want and "invalid" in r.flags


@pytest.mark.parametrize("target", UNSIGNED)
def test_negative_into_unsigned(target):
    fmt = get_format(target)
    g = grid(fmt)
    for c in (0xBC00, 0x8001, 0xFBFF, 0xFC00):  # -1, -min subnormal, -65504, -inf in binary16
        with pytest.raises(SpecialValueError):
            cast(c, "binary16", fmt, negative="error")  # the default for non-P3109 formats (P3109's is project)
        r = cast(c, "binary16", fmt, negative="clamp")
        assert r.code == int(g.pos_codes[0]) and "invalid" in r.flags
    assert cast(0x8000, "binary16", fmt).code == int(g.pos_codes[0])  # -0 -> +0 (or the smallest value)


def test_e8m0_zero_and_tiny_give_smallest_value():
    for mode in DETERMINISTIC_MODES:
        assert cast(0, "binary32", "e8m0", mode).code == 0
        assert cast(1, "binary32", "e8m0", mode).code == 0  # 2^-149 < 2^-127



# ------------------------------------------------------------------ flags of casts (IEEE 754 clause 7)
def test_infinity_into_formats_without_it_is_invalid():
    """An infinity that does not arrive as an infinity is flagged invalid; one that does raises nothing."""
    assert cast(0x7C00, "binary16", "binary32").flags == frozenset()
    r = cast(0x7C00, "binary16", "ocp_e4m3")  # no inf: NaN under the default overflow=nan
    assert r.code == 0x7F and r.flags == {"invalid"}
    r = cast(0xFC00, "binary16", "ocp_e4m3", overflow="saturate")
    assert r.code == 0xFE and r.flags == {"invalid"}
    r = cast(0x7C00, "binary16", "ocp_e2m1")
    assert r.code == 0x7 and r.flags == {"invalid"}
    r = cast(0x7F800000, "binary32", "binary16", overflow="saturate")
    assert r.code == 0x7BFF and r.flags == {"invalid"}
    assert cast(0x7C00, "binary16", "ocp_e5m2").flags == frozenset()


INT_CASES = [  # (value, format, mode, overflow, nan_policy, negative, code, flags): IEEE 754 5.8 and 7.2 j
    ("5", "int8", "rne", "saturate", "error", "error", 5, set()),
    ("2.5", "int8", "rne", "saturate", "error", "error", 2, {"inexact"}),
    ("2.5", "int8", "rna", "saturate", "error", "error", 3, {"inexact"}),
    ("-2.5", "int8", "rdn", "saturate", "error", "error", 0xFD, {"inexact"}),
    ("127.4", "int8", "rne", "saturate", "error", "error", 127, {"inexact"}),
    ("127.5", "int8", "rne", "saturate", "error", "error", 127, {"invalid"}),  # 128 is out of range: invalid alone
    ("127.5", "int8", "rtz", "saturate", "error", "error", 127, {"inexact"}),
    ("-128.9", "int8", "rtz", "saturate", "error", "error", 0x80, {"inexact"}),
    ("-129", "int8", "rne", "saturate", "error", "error", 0x80, {"invalid"}),
    ("-128", "int8_sym", "rne", "saturate", "error", "error", 0x81, {"invalid"}),
    ("300", "int8", "rne", "wrap", "error", "error", 300 & 0xFF, {"invalid"}),
    ("-0.4", "uint8", "rne", "saturate", "error", "error", 0, {"inexact"}),
    ("-1", "uint8", "rne", "saturate", "error", "clamp", 0, {"invalid"}),
    ("-inf", "uint8", "rne", "saturate", "error", "clamp", 0, {"invalid"}),  # -inf: negative, as -1
    ("256", "uint8", "rne", "saturate", "error", "error", 255, {"invalid"}),
    ("inf", "int8", "rne", "saturate", "error", "error", 127, {"invalid"}),
    ("-inf", "int16", "rtz", "saturate", "error", "error", 0x8000, {"invalid"}),
    ("nan", "int8", "rne", "saturate", "zero", "error", 0, {"invalid"}),
    ("nan", "int8", "rne", "saturate", "max", "error", 127, {"invalid"}),
]


@pytest.mark.parametrize("x,fmt,mode,ov,nanp,neg,code,flags", INT_CASES)
def test_integer_target_flags(x, fmt, mode, ov, nanp, neg, code, flags):
    r = encode(x, fmt, mode, ov, nanp, neg)
    assert r.code == code and r.flags == flags, (x, fmt, mode, r)


def test_integer_target_errors():
    with pytest.raises(SpecialValueError):
        encode("nan", "int8")  # nan_policy='error'
    with pytest.raises(SpecialValueError):
        encode("inf", "int8", overflow="wrap")
    for x in ("-1", "-inf"):  # a negative non-zero value into an unsigned format under negative='error' (default)
        with pytest.raises(SpecialValueError, match="negative value"):
            encode(x, "uint8")
    assert cast(0x5A40, "binary16", "int8").flags == {"invalid"}  # 200.0
    assert cast(0x5A40, "binary16", "uint8").flags == frozenset()


def test_tininess_is_a_keyword_of_the_cast():
    """Tininess changes the underflow flag only: binary32 0x387ff000 = 2^-14 (1 - 2^-12) into binary16."""
    before, after = cast(0x387FF000, "binary32", "binary16"), cast(0x387FF000, "binary32", "binary16",
                                                                    tininess="after")
    assert before.code == after.code == 0x0400
    assert before.flags == {"inexact", "underflow"} and after.flags == {"inexact"}
    with pytest.raises(UnknownModeError):
        cast(0, "binary32", "binary16", tininess="never")


def test_cli_cast_tininess_and_signalling_nan(capsys):
    """`refarith cast --tininess after` changes the underflow flag only; a signalling NaN code is invalid."""
    import json

    from refarith.cli import main

    assert main(["cast", "--from", "binary32", "--to", "binary16", "--json", "0x387ff000", "0x7f800001"]) == 0
    before = json.loads(capsys.readouterr().out)["results"]
    assert main(["cast", "--from", "binary32", "--to", "binary16", "--tininess", "after", "--json",
                 "0x387ff000"]) == 0
    after = json.loads(capsys.readouterr().out)["results"]
    assert before[0]["bits"] == after[0]["bits"] == "0x0400"
    assert before[0]["flags"] == ["inexact", "underflow"] and after[0]["flags"] == ["inexact"]
    assert before[1]["bits"] == "0x7e00" and before[1]["flags"] == ["invalid"]
    with pytest.raises(SystemExit) as e:
        main(["cast", "--to", "binary16", "--tininess", "never", "1"])
    assert e.value.code == 2
