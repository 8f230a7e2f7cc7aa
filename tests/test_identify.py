"""identify: names the variant a kernel implements, for refarith's own kernels in each variant and for peers."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from refarith.certify.identify import identify
from refarith.cli import main


@pytest.fixture(autouse=True, scope="module")
def _one_variant_table_per_spec():
    """Most tests here identify a kernel against cast(binary32->ocp_e4m3): the exact model's outputs of its 76
    variants (about 7 CPU seconds) are computed once for the module and shared, as copies."""
    identify_module = importlib.import_module("refarith.certify.identify")  # the module, not the function
    real, memo = identify_module.variant_table, {}

    def shared(variants, vecs, on_variant=None):
        key = (tuple(str(v) for v in variants), tuple(vecs))
        if key not in memo:
            memo[key] = real(variants, vecs, on_variant)
        elif on_variant is not None:
            for _ in variants:
                on_variant()
        return [(v, exp.copy(), dom.copy()) for v, exp, dom in memo[key]]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(identify_module, "variant_table", shared)
        yield


def _fast_kernel(dst: str, rounding: str, overflow: str, nan_policy: str = "error"):
    fast = pytest.importorskip("refarith.fast")

    def k(x):
        return fast.encode(x, dst, rounding=rounding, overflow=overflow, nan_policy=nan_policy)

    return k


def _full_matches(scores):
    return [s.spec for s in scores if s.matches and s.outside_domain == 0]


@pytest.mark.parametrize("rounding, overflow", [("rne", "nan"), ("rtz", "saturate"), ("rup", "nan"),
                                                ("rna", "saturate")])
def test_refarith_numpy_variants_are_named(rounding, overflow):
    scores = identify(_fast_kernel("ocp_e4m3", rounding, overflow), "cast(binary32->ocp_e4m3)")
    assert _full_matches(scores) == [f"cast(binary32->ocp_e4m3,rounding={rounding},overflow={overflow})"]


def test_nan_policy_variant_is_named():
    scores = identify(_fast_kernel("ocp_e2m1", "rne", "saturate", "max"), "cast(binary32->ocp_e2m1)")
    assert _full_matches(scores) == ["cast(binary32->ocp_e2m1,rounding=rne,overflow=saturate,nan=max)"]


def test_closest_variant_when_nothing_matches():
    def almost(x):  # RNE saturating, but wrong at one code
        fast = pytest.importorskip("refarith.fast")
        out = np.asarray(fast.encode(x, "ocp_e4m3", rounding="rne", overflow="saturate")).copy()
        out[x == np.float32(1.0)] ^= 1
        return out

    scores = identify(almost, "cast(binary32->ocp_e4m3)")
    assert not scores[0].matches
    assert scores[0].spec == "cast(binary32->ocp_e4m3,rounding=rne,overflow=saturate)"
    assert 0 < scores[0].mismatches <= 4


# ------------------------------------------------------------------ peers: headline findings
def test_ml_dtypes_e4m3fn_is_rne_overflow_to_nan(capsys):
    """ml_dtypes float32 -> float8_e4m3fn: round to nearest even, overflow (and inf) to NaN (OFP8 non-saturating)."""
    pytest.importorskip("ml_dtypes")
    assert main(["identify", "ml_dtypes:float8_e4m3fn", "--op", "cast", "--to", "ocp_e4m3"]) == 0
    out = capsys.readouterr().out
    assert "matches exactly:\n  cast(binary32->ocp_e4m3,rounding=rne,overflow=nan)" in out


def test_gfloat_e4m3_default_is_rne_overflow_to_nan_with_unsigned_nan():
    """gfloat round_ndarray(sat=False) into OCP E4M3: RNE, overflow to NaN -- but the NaN code it encodes does not
    carry the sign the spec gives it (e.g. 0xff for a positive overflow), so it matches only up to NaN payload;
    sat=True saturates."""
    pytest.importorskip("gfloat")
    spec = "cast(binary32->ocp_e4m3)"
    strict = identify("gfloat:ocp_e4m3", spec)
    assert not strict[0].matches and strict[0].mismatches == strict[0].nan_payload > 0
    assert strict[0].spec == "cast(binary32->ocp_e4m3,rounding=rne,overflow=nan)"
    assert _full_matches(identify("gfloat:ocp_e4m3", spec, nan_payload_ok=True)) == [
        "cast(binary32->ocp_e4m3,rounding=rne,overflow=nan)"]
    assert _full_matches(identify("gfloat:ocp_e4m3+sat", spec, nan_payload_ok=True)) == [
        "cast(binary32->ocp_e4m3,rounding=rne,overflow=saturate)"]


def test_torch_e4m3fn_saturates():
    """torch Tensor.to(float8_e4m3fn) from float32: RNE but *saturating* (overflow and inf give +-448), unlike
    ml_dtypes and the OFP8 non-saturating mode."""
    pytest.importorskip("torch")
    assert _full_matches(identify("torch:float8_e4m3fn", "cast(binary32->ocp_e4m3)")) == [
        "cast(binary32->ocp_e4m3,rounding=rne,overflow=saturate)"]


def test_ml_dtypes_e5m2_is_ieee_like():
    """ml_dtypes float32 -> float8_e5m2: RNE with overflow to inf, as IEEE 754 prescribes."""
    pytest.importorskip("ml_dtypes")
    assert _full_matches(identify("ml_dtypes:float8_e5m2", "cast(binary32->ocp_e5m2)", nan_payload_ok=True)) == [
        "cast(binary32->ocp_e5m2,rounding=rne,overflow=inf)"]


def test_ml_dtypes_fp4_saturates_and_maps_nan_outside_every_policy():
    """ml_dtypes float32 -> float4_e2m1fn: RNE, saturating to +-6; NaN has no FP4 code and ml_dtypes gives -0 (0x8),
    which none of the declared NaN policies (zero -> +0, max -> +-6) is: it matches only on nan=error's domain."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    scores = identify("ml_dtypes:float4_e2m1fn", "cast(binary32->ocp_e2m1)")
    best = scores[0]
    assert best.matches and best.outside_domain > 0
    assert best.spec == "cast(binary32->ocp_e2m1,rounding=rne,overflow=saturate,nan=error)"
    nan = np.array([np.nan], dtype=np.float32).astype(ml_dtypes.float4_e2m1fn).view(np.uint8)
    assert int(nan[0]) == 0x8


def test_fnuz_e4m3_agreement_between_torch_and_ml_dtypes():
    """torch and ml_dtypes agree on float8_e4m3fnuz: RNE, overflow and inf to the single NaN 0x80."""
    pytest.importorskip("ml_dtypes")
    pytest.importorskip("torch")
    want = ["cast(binary32->e4m3fnuz,rounding=rne,overflow=nan)"]
    assert _full_matches(identify("ml_dtypes:float8_e4m3fnuz", "cast(binary32->e4m3fnuz)")) == want
    assert _full_matches(identify("torch:float8_e4m3fnuz", "cast(binary32->e4m3fnuz)")) == want


def test_lmul_variants_from_its_schema():
    """Ops other than casts: identify enumerates every variant value the op's schema declares (here L-Mul)."""
    from refarith.exact import lmul

    def kernel(a, b):
        return np.array([lmul.lmul(int(x), int(y), "ocp_e3m2", "formula", "rtz", "saturate", "gradual").code
                         for x, y in zip(a, b)])
    kernel.refarith_inputs = "codes"
    assert _full_matches(identify(kernel, "lmul(ocp_e3m2)")) == [
        "lmul(ocp_e3m2,variant=formula,rounding=rtz,overflow=saturate,underflow=gradual,subnormals=daz)"]
