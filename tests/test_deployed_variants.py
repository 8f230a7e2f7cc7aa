"""The overflow modes of deployed libraries (inf_always, nan_rto, saturate_inf_nan): the exact model on values
read off the libraries' behaviour, the spec's one-id-per-behaviour rule, the fast kernels against the exact model
on every binary16 input, and identify naming each mode for a kernel written independently of refarith's."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith import fast
from refarith.certify.identify import identify
from refarith.errors import SpecError, UnknownModeError
from refarith.exact.ops import decode
from refarith.exact.rounding import round_value
from refarith.exact.value import Value
from refarith.spec import parse_spec


def code(x, fmt, rounding, overflow):
    v = Value.inf(x < 0) if x in (float("inf"), -float("inf")) else Value.of(Fraction(x))
    return round_value(v, fmt, rounding, overflow)


def test_inf_always_overflows_to_inf_toward_zero():
    # ieee_e4m3: max 240 (0x77), +inf 0x78; 1000 truncates to 960 > 240 (pychop 0.6.2 Chop(4,3) rtz gives inf)
    assert code(1000, "ieee_e4m3", "rtz", "inf").code == 0x77
    r = code(1000, "ieee_e4m3", "rtz", "inf_always")
    assert r.code == 0x78 and {"overflow", "inexact"} <= r.flags
    assert code(-1000, "ieee_e4m3", "rup", "inf_always").code == 0xF8
    assert code(-1000, "ieee_e4m3", "rdn", "inf_always").code == 0xF8
    assert code(250, "ieee_e4m3", "rtz", "inf_always").code == 0x77  # truncates to 240: no overflow
    assert code(float("inf"), "ieee_e4m3", "rtz", "inf_always").code == 0x78


def test_nan_rto_gives_the_odd_code_above_max():
    # OCP E4M3: 448 = 0x7E; round to odd of 450 picks the odd neighbour 0x7F, the NaN (fpy2 0.3.0 MX_E4M3 RTO)
    assert code(450, "ocp_e4m3", "rto", "nan").code == 0x7E
    assert code(450, "ocp_e4m3", "rto", "nan_rto").code == 0x7F
    assert code(-450, "ocp_e4m3", "rto", "nan_rto").code == 0xFF
    assert code(448, "ocp_e4m3", "rto", "nan_rto").code == 0x7E  # exact: no rounding, no overflow
    assert code(450, "ocp_e4m3", "rtz", "nan_rto").code == 0x7E  # other modes as nan


def test_saturate_inf_nan():
    # brevitas 0.13.4 saturating FloatQuant: finite values clamp to +-448, +-inf becomes NaN
    assert code(1000, "ocp_e4m3", "rne", "saturate_inf_nan").code == 0x7E
    assert code(-1e6, "ocp_e4m3", "rup", "saturate_inf_nan").code == 0xFE
    r = code(float("inf"), "ocp_e4m3", "rne", "saturate_inf_nan")
    assert r.code == 0x7F and "invalid" in r.flags
    assert code(-float("inf"), "ocp_e4m3", "rne", "saturate_inf_nan").code == 0xFF
    assert decode(code(float("inf"), "ocp_e5m2", "rne", "saturate_inf_nan").code, "ocp_e5m2").is_nan
    assert code(1e6, "ocp_e5m2", "rne", "saturate_inf_nan").code == 0x7B


def test_modes_need_their_special_values_and_one_id_per_behaviour():
    with pytest.raises(UnknownModeError, match="inf_always.*no infinity"):
        round_value(Value.of(1), "ocp_e4m3", "rtz", "inf_always")
    with pytest.raises(UnknownModeError, match="saturate_inf_nan.*no NaN"):
        round_value(Value.of(1), "ocp_e2m1", "rne", "saturate_inf_nan")
    with pytest.raises(SpecError, match="overflow=inf_always is overflow=inf under rounding=rne"):
        parse_spec("cast(binary32->ocp_e5m2,rounding=rne,overflow=inf_always)")
    with pytest.raises(SpecError, match="overflow=nan_rto is overflow=nan under rounding=rtz"):
        parse_spec("cast(binary32->ocp_e4m3,rounding=rtz,overflow=nan_rto)")
    assert str(parse_spec("cast(binary32->ocp_e4m3,rounding=rto,overflow=nan_rto)"))


@pytest.mark.parametrize("dst,rounding,overflow", [("ieee_e4m3", "rtz", "inf_always"),
                                                   ("ocp_e4m3", "rto", "nan_rto"),
                                                   ("ocp_e5m2", "rne", "saturate_inf_nan")])
def test_fast_kernels_equal_the_exact_model_on_binary16_from_64(dst, rounding, overflow):
    """Every binary16 input of magnitude >= 64 (the binades where these modes act, inf and NaN included) and a
    stride through the rest, so the default run stays short; test_fast_cast covers the shared rounding core."""
    xs = np.array([c for c in range(1 << 16) if (c & 0x7C00) >= 0x5400 or c % 61 == 0], dtype=np.uint16)
    exp = np.array([round_value(decode(int(c), "binary16"), dst, rounding, overflow).code for c in xs])
    for backend in ("numpy", "torch"):
        if backend == "torch":
            pytest.importorskip("torch")
        got = np.asarray(fast.encode(xs, dst, rounding=rounding, overflow=overflow, src="binary16",
                                     backend=backend)).astype(np.int64)
        assert np.array_equal(got, exp), (backend, int(np.nonzero(got != exp)[0][0]))


def kernel_truncate_inf(x):
    """ieee_e4m3 toward zero, every value whose truncation is above 240 (|x| >= 256) to +-inf, by float arithmetic
    on the binary32 value (exact: the step 2^(e-3) of x's binade, 2^-9 below 2^-6, is a power of two)."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    with np.errstate(all="ignore"):
        e = np.floor(np.log2(np.where((a > 0) & np.isfinite(a), a, 1.0)))
        # a float log2 can be off by one next to powers of two: correct it exactly
        e = np.where(a < np.exp2(e), e - 1, np.where(a >= np.exp2(e + 1), e + 1, e))
        step = np.exp2(np.maximum(e, -6.0) - 3)
        y = np.sign(x) * np.floor(a / step) * step
    y = np.where(a >= 256, np.sign(x) * np.inf, y)
    y = np.where(np.isnan(x), np.nan, y)
    return y.astype(np.float32)


kernel_truncate_inf.refarith_outputs = "values"


def _vectors():
    """binary32 vectors: in-range values of every binade, the overflow thresholds, large values, +-inf, NaN."""
    rng = np.random.default_rng(13)
    vals = np.concatenate([rng.uniform(-250, 250, 150), 2.0 ** rng.uniform(-12, 8, 50) * rng.choice([-1, 1], 50),
                           2.0 ** rng.uniform(8, 100, 100) * rng.choice([-1, 1], 100),
                           [240.0, 248.0, 255.9, 256.0, -256.0, 1e6, np.inf, -np.inf, np.nan, 0.0]])
    return [(int(c),) for c in vals.astype(np.float32).view(np.uint32)]


def test_identify_names_inf_always():
    spec = "cast(binary32->ieee_e4m3,rounding=rtz,overflow=inf)"
    scores = identify(kernel_truncate_inf, spec, vary=("rounding", "overflow"), vectors=_vectors(),
                      nan_payload_ok=True, signed_zero_ok=True)
    assert [s.spec for s in scores if s.matches] == ["cast(binary32->ieee_e4m3,rounding=rtz,overflow=inf_always)"]


@pytest.mark.parametrize("dst", ["ieee_e4m3", "ocp_e4m3", "ocp_e5m2"])
def test_spec_encoding_of_the_library_modes_equals_the_exact_model(dst):
    """The spec term of the cast.library_overflow theorems (Z3, evaluated input by input without a solver) against
    the exact model on every 31st binary16 pattern (every binade, inf and NaN included), each setting."""
    pytest.importorskip("z3")
    from refarith.smt.castsweep import spec_vs_exact_16
    from refarith.smt.theorems.casts import library_overflow_settings

    out = spec_vs_exact_16("binary16", dst, library_overflow_settings(dst), stride=31)
    assert out["compared"] > 0 and out["mismatches"] == 0, out["first"]


def test_identify_accepts_signed_zero_and_nan_payload_in_binary32_outputs():
    """identify on an op with binary32 outputs (mx_fake_quantize): a kernel written here with ml_dtypes (ceil scale,
    E2M1 elements, a zero always +0, a NaN block 0xFFC00000) is named ``scale=ceil``; its differences are classed
    signed_zero and nan_payload (not in_range), and accepted with --signed-zero-ok / --nan-payload-ok."""
    ml_dtypes = pytest.importorskip("ml_dtypes")

    def ceil_plus_zero(x):
        x = np.asarray(x, dtype=np.float32)
        amax = np.abs(x).max(axis=1, keepdims=True)
        m, e = np.frexp(amax)
        e = np.where(m == 0.5, e - 1, e)  # ceil(log2 amax)
        scale = np.ldexp(np.float32(1), e - 2)  # E2M1 emax 2
        y = (x / scale).astype(ml_dtypes.float4_e2m1fn).astype(np.float32) * scale
        y = np.where(y == 0, np.float32(0), y).astype(np.float32)
        return np.where(np.isnan(amax), np.float32(-np.nan), y).astype(np.float32)

    ceil_plus_zero.refarith_outputs = "values"
    blocks = [[5.0, 1.0, -(2.0 ** -40), 0.7],  # ceil: X = 2 -> 4, 1, -0, 1; floor: X = 1 -> 0.7 gives 0.5
              [3.5, -0.01, 0.25, 1.0], [float("nan"), 1.0, 2.0, 3.0]]
    vecs = [tuple(int(c) for c in np.array(b, dtype=np.float32).view(np.uint32)) for b in blocks]
    spec = "mx_fake_quantize(ocp_e2m1,block=4)"
    strict = {s.spec: s for s in identify(ceil_plus_zero, spec, vary=("scale",), vectors=vecs)}
    ceil = strict["mx_fake_quantize(ocp_e2m1,block=4,scale=ceil,rounding=rne)"]
    assert ceil.mismatches == 3 and ceil.classes == {"signed_zero": 2, "nan_payload": 4}, ceil
    floor = strict["mx_fake_quantize(ocp_e2m1,block=4,scale=floor,rounding=rne)"]
    assert floor.classes.get("in_range", 0) >= 1
    ok = identify(ceil_plus_zero, spec, vary=("scale",), vectors=vecs, signed_zero_ok=True, nan_payload_ok=True)
    assert ok[0].spec == ceil.spec and ok[0].matches
