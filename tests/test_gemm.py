"""scaled_mm: the exact GEMM model against independent arithmetic, and the numpy kernel against the exact model."""

from __future__ import annotations

import functools
import struct
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from refarith.errors import BadValueError, KernelError, SpecError
from refarith.exact import gemm as X
from refarith.fast import gemm as F
from refarith.formats import get_format
from refarith.spec import parse_spec

MODELS = ["exact", "sequential", "fma_chain", "pairwise", "blocked,nb=4", "split_k,splits=4", "kahan",
          "tensor_core,g=4,b=3,tc_round=rtz,n_c=8", "tensor_core,g=8,b=5,tc_round=rne,n_c=0", "volta_tc",
          "ampere_tc", "hopper_fp8", "deepseek_v3"]


def f32(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def _fp8(rng: np.random.Generator, shape: tuple[int, int], nan_ok: bool = False) -> np.ndarray:
    c = rng.integers(0, 256, shape)
    if not nan_ok:
        c[(c & 0x7F) == 0x7F] = 0x38
    return c


def _case(gr: str, rng: np.random.Generator, m: int = 1, k: int = 32, n: int = 2):
    """(spec suffix, input format, A, B, scale_a, scale_b, tensor scales) for one granularity."""
    a, b = _fp8(rng, (m, k)), _fp8(rng, (k, n))
    if gr == "none":
        return "", "ocp_e4m3", a, b, None, None, None, None
    if gr == "tensor":
        return ",scale=tensor", "ocp_e4m3", a, b, f32(0.375), f32(1.5), None, None
    if gr == "row":
        return ",scale=row", "ocp_e4m3", a, b, [f32(0.5 + i) for i in range(m)], [f32(2.0 - 0.25 * j) for j in
                                                                                      range(n)], None, None
    if gr == "block":
        sa = [[f32(float(v)) for v in rng.choice([0.5, 1.5, 0.1875, 3.0], k // 16)] for _ in range(m)]
        sb = [[f32(float(v)) for v in rng.choice([0.25, 1.25, 7.0], 1)] for _ in range(k // 16)]
        return ",scale=block,block=16", "ocp_e4m3", a, b, sa, sb, None, None
    if gr == "block_col_ue8m0":
        sa = rng.integers(120, 135, (m, k // 16)).tolist()
        sb = rng.integers(120, 135, (k // 16, n)).tolist()
        return ",scale=block,block=16,bscale=col,scale_fmt=ue8m0", "ocp_e4m3", a, b, sa, sb, None, None
    if gr == "mx":
        sa = rng.integers(110, 140, (m, k // 32)).tolist()
        sb = rng.integers(110, 140, (k // 32, n)).tolist()
        return ",scale=mx", "ocp_e4m3", a, b, sa, sb, None, None
    assert gr == "nvfp4"
    a, b = rng.integers(0, 16, (m, k)), rng.integers(0, 16, (k, n))
    sa = rng.integers(0x20, 0x60, (m, k // 16)).tolist()
    sb = rng.integers(0x20, 0x60, (k // 16, n)).tolist()
    return ",scale=nvfp4", "ocp_e2m1", a, b, sa, sb, f32(0.01), f32(3.0)


GRANULARITIES = ["none", "tensor", "row", "block", "block_col_ue8m0", "mx", "nvfp4"]


@pytest.mark.parametrize("gr", GRANULARITIES)
@pytest.mark.parametrize("model", MODELS)
def test_fast_equals_exact(model: str, gr: str) -> None:
    rng = np.random.default_rng(abs(hash((model, gr))) % 2**32)
    sfx, fin, a, b, sa, sb, ta, tb = _case(gr, rng)
    spec = f"scaled_mm({fin}->bfloat16{sfx},accum={model})"
    want = np.array(X.scaled_mm(spec, a.tolist(), b.tolist(), sa, sb, ta, tb))
    got = F.scaled_mm(spec, a, b, sa, sb, ta, tb)
    assert (got == want).all(), (spec, got, want)


@pytest.mark.parametrize("out", ["binary32", "binary16", "ocp_e4m3", "ocp_e5m2"])
@pytest.mark.parametrize("model", ["exact", "fma_chain", "volta_tc"])
def test_fast_equals_exact_specials_and_outputs(model: str, out: str) -> None:
    """NaN/inf operands (E5M2 codes include them), overflow in the output format, every output format."""
    rng = np.random.default_rng(7)
    a, b = rng.integers(0, 256, (2, 16)), rng.integers(0, 256, (16, 2))
    spec = f"scaled_mm(ocp_e5m2->{out},accum={model})"
    want = np.array(X.scaled_mm(spec, a.tolist(), b.tolist()))
    assert (F.scaled_mm(spec, a, b) == want).all()


def test_exact_matches_float64_matmul_rounded_once() -> None:
    """Independent: E4M3 values decoded by ml_dtypes, summed in binary64 (exact: integers times 2^-18 below
    2^53 for K = 64), rounded once to binary32 by numpy."""
    rng = np.random.default_rng(1)
    a, b = _fp8(rng, (3, 64)), _fp8(rng, (64, 3))
    av = a.astype(np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float64)
    bv = b.astype(np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float64)
    want = (av @ bv).astype(np.float32).view(np.uint32)
    got = X.scaled_mm("scaled_mm(ocp_e4m3->binary32)", a.tolist(), b.tolist())
    assert (np.array(got) == want).all()


def test_sequential_matches_numpy_float32_loop() -> None:
    """Independent: a plain binary32 loop (E4M3 products are exact in binary32)."""
    rng = np.random.default_rng(2)
    a, b = _fp8(rng, (2, 48)), _fp8(rng, (48, 2))
    av = a.astype(np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float32)
    bv = b.astype(np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float32)
    want = np.zeros((2, 2), np.float32)
    for k in range(48):
        want = (want + av[:, k:k + 1] * bv[k:k + 1, :]).astype(np.float32)
    for model in ("sequential", "fma_chain"):
        got = np.array(X.scaled_mm(f"scaled_mm(ocp_e4m3->binary32,accum={model})", a.tolist(), b.tolist()))
        assert (got == want.view(np.uint32)).all()


def _h(x: float) -> int:
    return int(np.array([x], np.float16).view(np.uint16)[0])


def test_tensor_core_truncates_small_products() -> None:
    """Fasi et al. 2021's probe: 1 + 3 * 2^-24 in one group of four.  Aligned to 2^0 with 23 fraction bits and
    truncated, the 2^-24 products vanish (result 1); exactly,
    1 + 3 * 2^-24 = 1 + 1.5 ulp ties to the even 1 + 2^-22 in binary32."""
    a = [[_h(1.0), _h(2.0**-12), _h(2.0**-12), _h(2.0**-12)]]
    b = [[_h(1.0)], [_h(2.0**-12)], [_h(2.0**-12)], [_h(2.0**-12)]]
    assert X.scaled_mm("scaled_mm(binary16->binary32,accum=volta_tc)", a, b) == [[0x3F800000]]
    assert X.scaled_mm("scaled_mm(binary16->binary32,accum=exact)", a, b) == [[0x3F800002]]
    assert X.scaled_mm("scaled_mm(binary16->binary32,accum=fma_chain)", a, b) == [[0x3F800000]]  # 1 + 2^-24 ties


def _e4(x: float) -> int:
    return int(np.array([x], ml_dtypes.float8_e4m3fn).view(np.uint8)[0])


def test_promotion_restores_small_terms() -> None:
    """Hand-derived: p_0 = 32 * 16 = 2^9, then 255 products 2^-3 * 2^-3 = 2^-6 (exact sum 512 + 255/64).
    hopper_fp8 (13 fraction bits below the group's largest exponent, truncation) aligns every group to 2^9 or
    more, quantum 2^-4: all 2^-6 products vanish, 512.  deepseek_v3 promotes every 128: the first block still
    gives 512, the second starts from 0 and keeps its 128 products exactly (2), so 514.  Sequential binary32
    is exact here."""
    k = 256
    a = [[_e4(32.0)] + [_e4(0.125)] * (k - 1)]
    b = [[_e4(16.0)]] + [[_e4(0.125)]] * (k - 1)

    def val(model: str) -> float:
        code = X.scaled_mm(f"scaled_mm(ocp_e4m3->binary32,accum={model})", a, b)[0][0]
        assert F.scaled_mm(f"scaled_mm(ocp_e4m3->binary32,accum={model})", np.array(a), np.array(b))[0, 0] == code
        return struct.unpack("<f", struct.pack("<I", code))[0]

    assert val("exact") == 512 + 255 / 64
    assert val("sequential") == 512 + 255 / 64
    assert val("hopper_fp8") == 512.0
    assert val("deepseek_v3") == 514.0


def test_bad_input_messages() -> None:
    a = [[0x38] * 32]
    b = [[0x38]] * 32
    with pytest.raises(BadValueError, match="operand B has 31 rows"):
        X.scaled_mm("scaled_mm(ocp_e4m3->binary32)", a, b[:31])
    with pytest.raises(BadValueError, match="operand scale_a has shape"):
        X.scaled_mm("scaled_mm(ocp_e4m3->binary32,scale=mx)", a, b, [[127, 127]], [[127]])
    with pytest.raises(BadValueError, match="not a multiple of the scale block 16"):
        X.scaled_mm("scaled_mm(ocp_e4m3->binary32,scale=block,block=16)", [[0x38] * 24], [[0x38]] * 24,
                    [[f32(1.0)]], [[f32(1.0)]])
    with pytest.raises(BadValueError, match="operand scale_b holds a nan scale"):
        X.scaled_mm("scaled_mm(ocp_e4m3->binary32,scale=tensor)", a, b, f32(1.0), 0x7FC00000)
    with pytest.raises(BadValueError, match="operand scale_b has shape"):
        F.scaled_mm("scaled_mm(ocp_e4m3->binary32,scale=row)", np.array(a), np.array(b), [f32(1.0)],
                    [f32(1.0)] * 2)
    with pytest.raises(BadValueError, match="not a multiple of splits=3"):
        F.scaled_mm("scaled_mm(ocp_e4m3->binary32,accum=split_k,splits=3)", np.array(a), np.array(b))
    with pytest.raises(BadValueError, match="ocp_e4m3 codes must be integers, got an array of dtype float64"):
        F.scaled_mm("scaled_mm(ocp_e4m3->binary32)", np.array(a, dtype=np.float64) + 0.5, np.array(b))
    with pytest.raises(BadValueError, match="e8m0 codes must be integers"):
        F.scaled_mm("scaled_mm(ocp_e4m3->binary32,scale=mx)", np.array(a), np.array(b), np.array([[127.5]]),
                    np.array([[127]]))
    with pytest.raises(BadValueError, match="codes out of range for binary32"):
        F.decode_array(np.array([-1, 1 << 32]), "binary32")
    with pytest.raises(SpecError, match="accum=tensor_core needs g="):
        parse_spec("scaled_mm(ocp_e4m3->binary32,accum=tensor_core)")
    with pytest.raises(SpecError, match="must be float formats"):
        parse_spec("scaled_mm(int8->binary32)")
    with pytest.raises(SpecError, match="is not one of"):
        parse_spec("scaled_mm(ocp_e4m3->binary32,accum=magic)")


def test_fast_refuses_inexact_products() -> None:
    """binary16 operands with full binary32 block scales: 11 + 24 bits per side exceed binary64."""
    a = np.array([[_h(1.0009765625)] * 16])
    b = np.array([[_h(1.0009765625)]] * 16)
    s = [[f32(1.0000001)]]
    with pytest.raises(KernelError, match="exceed 53 significant bits"):
        F.scaled_mm("scaled_mm(binary16->binary32,scale=block,block=16,accum=fma_chain)", a, b, s, s)
    got = F.scaled_mm("scaled_mm(binary16->binary32,scale=block,block=16)", a, b, s, s)
    assert (got == np.array(X.scaled_mm("scaled_mm(binary16->binary32,scale=block,block=16)", a.tolist(),
                                         b.tolist(), s, s))).all()


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_fast_equals_exact_larger(model: str) -> None:
    rng = np.random.default_rng(11)
    a, b = _fp8(rng, (4, 256), nan_ok=True), _fp8(rng, (256, 5))
    for sfx in ("", ",scale=mx"):
        sa = rng.integers(100, 150, (4, 8)).tolist() if sfx else None
        sb = rng.integers(100, 150, (8, 5)).tolist() if sfx else None
        spec = f"scaled_mm(ocp_e4m3->bfloat16{sfx},accum={model})"
        want = np.array(X.scaled_mm(spec, a.tolist(), b.tolist(), sa, sb))
        assert (F.scaled_mm(spec, a, b, sa, sb) == want).all()


@pytest.mark.parametrize("model", ["sequential", "fma_chain", "pairwise", "kahan", "split_k,splits=2"])
def test_fast_equals_exact_binary64_path(model: str) -> None:
    """Products outside binary32 (MX scales near 2^-127) and a bfloat16 accumulator take the TwoSum/round-to-odd
    path of the kernel."""
    rng = np.random.default_rng(5)
    a, b = _fp8(rng, (2, 64)), _fp8(rng, (64, 2))
    sa = [[0, 3], [127, 1]]
    sb = [[2, 130], [0, 127]]
    for spec in (f"scaled_mm(ocp_e4m3->binary32,scale=mx,accum={model})",
                 f"scaled_mm(ocp_e4m3->bfloat16,accum={model},acc=bfloat16)"):
        mx = "scale=mx" in spec
        want = np.array(X.scaled_mm(spec, a.tolist(), b.tolist(), sa if mx else None, sb if mx else None))
        got = F.scaled_mm(spec, a, b, sa if mx else None, sb if mx else None)
        assert (got == want).all(), spec


def test_accumulator_bound_theorems_hold() -> None:
    """The enumerated K = 2 error theorems: every model within its classical bound, replayed by the exact model."""
    from refarith.smt.theorems import gemm as G

    for name in G.MODELS:
        out = G._check(name)
        assert out.verdict == "proved", (name, out)


def test_bound_theorem_can_fail() -> None:
    """The enumerated accumulator really rounds (errors are not all zero), so the bounds are not vacuous."""
    from refarith.smt.theorems import gemm as G

    d, s, *_ = G.enumerate_model(G.MODELS["fma_chain"])
    assert (np.abs(d - s) > 0).any()


@pytest.mark.slow
def test_tensor_core_claims_promotion_restores_precision() -> None:
    """K = 4096, U[0, 1) inputs: hopper_fp8 loses percents, promotion every 128 brings it below 0.1%."""
    from refarith.smt.theorems.gemm import tensor_core_claims

    rows = {(r["distribution"], r["model"]): r for r in tensor_core_claims()}
    assert rows[("uniform01", "hopper_fp8")]["max_rel_error"] > 0.01
    assert rows[("uniform01", "deepseek_v3")]["max_rel_error"] < 1e-3
    assert rows[("uniform01", "sequential")]["max_rel_error"] < 1e-5


def test_identify_numpy_fp16_matmul_is_sequential_binary32() -> None:
    """numpy's float16 matmul accumulates each dot product in binary32 in order; identify names it and rules
    out the other orders on the cancelling operands."""
    from refarith.certify.gemm import identify_gemm

    res = identify_gemm("numpy:matmul_fp16", shape=(16, 256, 16), accs=("binary32",),
                       models=("exact", "sequential", "pairwise", "kahan", "split_k,splits=2", "blocked,nb=64"))
    names = [s.split("accum=")[1].split(",")[0] for s in res["matches"]]
    assert "sequential" in names and "pairwise" not in names and "exact" not in names


def test_identify_rejects_a_wrong_kernel() -> None:
    from refarith.certify.gemm import identify_gemm

    def truncating(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # every output one code toward zero
        out = F.scaled_mm("scaled_mm(binary16->binary16,accum=sequential)", a, b)
        return np.where((out & 0x7FFF) > 0, out - 1, out)

    res = identify_gemm(truncating, "binary16", "binary16", shape=(4, 48, 4), accs=("binary32",))
    assert not res["matches"] and res["closest"]["max_ulps"] >= 1


def test_fast_exact_sum_outside_binary64_range() -> None:
    """binary16 operands mixing subnormals (lsb 2^-24) and values near 2^15: the sums leave the binary64-exact
    range and take the integer path; with row scales 1/3-ish the epilogue rounds e * S exactly."""
    rng = np.random.default_rng(9)
    x = rng.choice([2.0**-24, 3 * 2.0**-24, 1.0009765625, 30000.0, -2.0**-20, 0.1], (3, 40))
    y = rng.choice([2.0**-24, -1.5, 32768.0, 2.0**-14, 0.3], (40, 2))
    a = x.astype(np.float16).view(np.uint16).astype(np.int64)
    b = y.astype(np.float16).view(np.uint16).astype(np.int64)
    sa, sb = [f32(0.3333333), f32(1.1), f32(7.0)], [f32(0.7), f32(1.0)]
    for spec, s1, s2 in (("scaled_mm(binary16->binary32)", None, None),
                         ("scaled_mm(binary16->bfloat16,scale=row)", sa, sb)):
        want = np.array(X.scaled_mm(spec, a.tolist(), b.tolist(), s1, s2))
        assert (F.scaled_mm(spec, a, b, s1, s2) == want).all(), spec


def test_fast_exact_sum_limbs_wide_range() -> None:
    """Uniformly drawn finite binary16 codes (2^-24 .. 65504, both signs): every sum leaves the binary64-exact
    range and goes through the limb matmuls; each output equals the exact model's, for two output formats."""
    rng = np.random.default_rng(11)
    a = rng.integers(0, 0x7C00, (3, 200)) | (rng.integers(0, 2, (3, 200)) << 15)
    b = rng.integers(0, 0x7C00, (200, 4)) | (rng.integers(0, 2, (200, 4)) << 15)
    for out in ("binary32", "bfloat16"):
        spec = f"scaled_mm(binary16->{out})"
        want = np.array(X.scaled_mm(spec, a.tolist(), b.tolist()))
        assert (F.scaled_mm(spec, a, b) == want).all(), spec


def test_int_sum_bound_theorems(monkeypatch) -> None:
    """Z3 proves the E4M3 bound of the fast kernel's docstring (K <= 2^15); at K = 2^16 the largest products
    (448^2 = 229376^2 units of 2^-18 > 2^35) break it, and the counterexample is confirmed."""
    from refarith.smt.registry import COUNTEREXAMPLE, PROVED
    from refarith.smt.theorems import gemm as T

    assert T._int_sum_bound("ocp_e4m3").verdict == PROVED
    monkeypatch.setitem(T.INT_SUM_FORMATS, "ocp_e4m3", 16)
    out = T._int_sum_bound("ocp_e4m3")
    assert out.verdict == COUNTEREXAMPLE and out.confirmed


@pytest.mark.slow
def test_limb_sum_theorem_can_fail(monkeypatch) -> None:
    """One limb bit more than limb_width gives K (2^w - 1)^2 >= 2^53: Z3 finds it and the check confirms it."""
    from refarith.smt.registry import COUNTEREXAMPLE
    from refarith.smt.theorems import gemm as T

    width = F.limb_width
    monkeypatch.setattr(F, "limb_width", lambda k: width(k) + 1)
    out = T.limb_sum_exact()
    assert out.verdict == COUNTEREXAMPLE and out.confirmed


def test_tc_align_bound_theorem_hopper_fp8() -> None:
    """Z3 proves the hopper_fp8 group-step bound (three lemmas, the encoding checked against the exact model)."""
    from refarith.smt.registry import PROVED
    from refarith.smt.theorems import gemm as T

    out = T._tc_align_bound("hopper_fp8")
    assert out.verdict == PROVED, out


def test_tc_align_bound_theorem_can_fail(monkeypatch) -> None:
    """An alignment that truncates one bit more than the model: the encoding check names the disagreement, and
    with that check skipped Z3's lemma (A) gives a counterexample."""
    from refarith.smt.registry import COUNTEREXAMPLE
    from refarith.smt.theorems import gemm as T

    right = T._tc_align_term

    def one_bit_more(m, e, b, w):
        a, u = right(m, e, b - 1, w)
        return a, u >> 1  # the model's 2^(E - b) - 1, with a on the coarser grid 2^(E - b + 1)

    monkeypatch.setattr(T, "_tc_align_term", one_bit_more)
    out = T._tc_align_bound("hopper_fp8")
    assert out.verdict == "error" and "alignment of" in out.detail
    monkeypatch.setattr(T, "_tc_encoding_matches_model", lambda b: None)
    assert T._tc_align_bound("hopper_fp8").verdict == COUNTEREXAMPLE


def test_tc_align_constant_is_tight() -> None:
    """Every preset: the replayed group's alignment loss exceeds the bound with n - 1; for b = 13 it is within
    0.2% of the proved bound."""
    from refarith.smt.theorems import gemm as T

    for preset in T.TC_ALIGN:
        out = T._tc_tight(preset)
        assert out.verdict == "counterexample" and out.confirmed, (preset, out)
    assert float(T._tc_tight("hopper_fp8").counterexample["error_over_proved_bound"]) > 0.998


@pytest.mark.slow  # about 1.3 s of Z3; `refarith prove --only 'gemm.tc_align_sharp*'` runs it too
def test_tc_sharp_bound_theorem_hopper_fp8() -> None:
    from refarith.smt.registry import PROVED
    from refarith.smt.theorems import gemm as T

    out = T._tc_sharp_bound("hopper_fp8")
    assert out.verdict == PROVED, out


def test_tc_sharp_bound_lemma_can_fail(monkeypatch) -> None:
    """A binary32 truncation that keeps one bit fewer (23) loses up to 2^-22 |y|: lemma (B') gets a counterexample."""
    from refarith.smt.registry import COUNTEREXAMPLE, PROVED
    from refarith.smt.theorems import gemm as T

    assert T._tc_lemma_b_sharp(5).verdict == PROVED
    right = T._tc_rtz_term
    monkeypatch.setattr(T, "_tc_rtz_term", lambda m, f, p, w: right(m, f, p - 1, w))
    assert T._tc_lemma_b_sharp(5).verdict == COUNTEREXAMPLE


def test_tc_sharp_bound_is_reached() -> None:
    """The witness group, replayed through the exact model, reaches the sharpened bound (exactly at b = 13, within
    2^-20 at b = 23), and at b = 23 it reaches only 0.89 (volta) and 0.94 (ampere) of the first bound."""
    from refarith.smt.theorems import gemm as T

    for preset in T.TC_ALIGN:
        out = T._tc_sharp_tight(preset)
        assert out.verdict == "counterexample" and out.confirmed, (preset, out)
    cx = T._tc_sharp_tight("hopper_fp8").counterexample
    assert Fraction(cx["error"]) == Fraction(cx["sharp_bound"])
    for preset, share in (("volta_tc", 8 / 9), ("ampere_tc", 16 / 17)):
        assert abs(float(T._tc_sharp_tight(preset).counterexample["error_over_proved_bound"]) - share) < 1e-4


def test_tc_e4m3_ratio_theorem_b23(monkeypatch) -> None:
    """volta_tc and ampere_tc on E4M3 groups: Z3 proves |t' - S| <= sharp / (1 + 2^-23); the sum query fails
    without the largest term's exact alignment, lemma (B'') with a 23-bit truncation, lemma (T) with a 25-bit
    binary32 grid, and lemma (E) with a value of 10 significant bits among the codes."""
    from refarith.smt.registry import COUNTEREXAMPLE, PROVED
    from refarith.smt.theorems import gemm as T

    for preset in T.TC_E4M3_RATIO:
        assert T._tc_e4m3_ratio(preset).verdict == PROVED, preset
    assert T._tc_e4m3_ratio("volta_tc", largest_exact=False).verdict == COUNTEREXAMPLE
    right, decode = T._tc_rtz_term, T.F.decode_array
    monkeypatch.setattr(T, "_tc_rtz_term", lambda m, f, p, w: right(m, f, p - 1, w))
    assert T._tc_lemma_b_sharp(5, plus_r=True).verdict == COUNTEREXAMPLE
    monkeypatch.setattr(T, "_tc_rtz_term", lambda m, f, p, w: right(m, f, p + 1, w))
    assert T._tc_lemma_t32(23).verdict == COUNTEREXAMPLE
    monkeypatch.setattr(T, "_tc_rtz_term", right)

    def wider(codes, fmt):
        v = decode(codes, fmt)
        return np.where(v == 1.0, 1.0 + 2.0 ** -9, v)

    monkeypatch.setattr(T.F, "decode_array", wider)
    out = T._tc_e4m3_ratio("volta_tc")
    assert out.verdict == "error" and "not a multiple of 2^17" in out.detail


def test_tc_e4m3_ratio_is_attained() -> None:
    """The witness GEMM (1 x 2g by 2g x 1 E4M3 codes) errs by sharp / (1 + 2^-23) exactly, in the exact model
    (Fractions) and the numpy kernel: the expected result is recomputed here from the codes' values."""
    from refarith.smt.theorems import gemm as T

    for preset in T.TC_E4M3_RATIO:
        out = T._tc_e4m3_ratio_tight(preset)
        assert out.verdict == "counterexample" and out.confirmed, (preset, out)
        g = T.TC_ALIGN[preset][0]
        cx = out.counterexample
        s = g * 2 ** 23 + g - 1  # g products 4 x 8 and t = 2^-9 (g - 1) 2^-9, in units 2^-18
        assert Fraction(cx["S"]) == Fraction(s, 2 ** 18) and Fraction(cx["error_units"]) == g - 1
        assert Fraction(cx["error_over_sharp_bound"]) == Fraction(2 ** 23, 2 ** 23 + 1)
        assert Fraction(cx["D"]) == Fraction(g * 2 ** 23, 2 ** 18)  # the binary32 truncation of S


def test_tc_whole_k_theorem_and_kernel() -> None:
    """The induction step proves for every preset (and deepseek_v3's promoted form) and fails with the alignment term
    left out of the rate; the numpy kernel's whole-K errors (positive E4M3, K = 1024) lie within the bounds."""
    from refarith.smt.registry import COUNTEREXAMPLE, PROVED
    from refarith.smt.theorems import gemm as T

    for preset in T.TC_ALIGN:
        assert T._tc_whole_k(preset).verdict == PROVED, preset
    assert T._tc_whole_k("hopper_fp8", rate=Fraction(1, 2 ** 23)).verdict == COUNTEREXAMPLE
    assert T._tc_whole_k_promoted().verdict == PROVED
    factors = {p: float((1 + T.tc_whole_k_rate(p)) ** (1024 // g) - 1) for p, (g, _) in T.TC_ALIGN.items()}
    factors["deepseek_v3"] = T.tc_promoted_factor(1024)
    _within_whole_k_bounds({f"scaled_mm(ocp_e4m3->binary32,accum={p})": f for p, f in factors.items()})


def _within_whole_k_bounds(factors: dict[str, float]) -> None:
    """Each spec's numpy errors on positive E4M3 operands (K = 1024, rng seed 0) are within factor * sum |p_k|, and
    the spec does err somewhere."""
    rng = np.random.default_rng(0)
    a, b = rng.integers(0x30, 0x7F, (2, 1024)), rng.integers(0x30, 0x7F, (1024, 2))
    av, bv = F.decode_array(a, "ocp_e4m3"), F.decode_array(b, "ocp_e4m3")
    for spec, factor in factors.items():
        err = np.abs(F.decode_array(F.scaled_mm(spec, a, b), "binary32") - av @ bv)
        assert (err <= factor * (np.abs(av) @ np.abs(bv))).all() and err.max() > 0, spec


def test_tc_round_whole_k_theorem_and_kernel() -> None:
    """Rounding tensor cores: the induction step proves for both parameter sets and fails with the alignment term
    left out of the rate; the numpy kernel's whole-K errors (positive E4M3, K = 1024) lie within the bounds."""
    from refarith.smt.registry import COUNTEREXAMPLE, PROVED
    from refarith.smt.theorems import gemm as T

    for name in T.TC_ROUND:
        assert T._tc_whole_k(name, rounding=True).verdict == PROVED, name
    assert T._tc_whole_k("rne_g32_b13", rate=Fraction(1, 2 ** 24), rounding=True).verdict == COUNTEREXAMPLE
    _within_whole_k_bounds({f"scaled_mm(ocp_e4m3->binary32,accum=tensor_core,g={g},b={bits},tc_round=rne,n_c=0)":
                            float((1 + T.tc_round_rate(name)) ** (1024 // g) - 1)
                            for name, (g, bits) in T.TC_ROUND.items()})


def test_tc_round_encoding_check_catches_a_wrong_rounding(monkeypatch) -> None:
    """The rounding group-step theorem first compares its Z3 terms with the exact model: ties rounded up instead of
    to even are reported before any query."""
    import z3

    from refarith.smt.theorems import gemm as T

    assert T._tc_encoding_matches_model(23, mode="rne") is None

    def half_up(m, e, b, w):
        sh = z3.If(z3.UGE(e, b), e - b, z3.BitVecVal(0, w))
        one = z3.BitVecVal(1, w)
        u = (one << sh) - 1
        up = z3.And(sh != 0, z3.UGE(m & u, (one << sh) >> 1))
        return (m & ~u) + z3.If(up, one << sh, z3.BitVecVal(0, w)), u

    monkeypatch.setattr(T, "_tc_rne_term", half_up)
    assert "Z3 term" in (T._tc_encoding_matches_model(3, samples=400, mode="rne") or "")


@pytest.mark.slow  # about 3 s of Z3 CPU; `refarith prove --only 'gemm.tc_align_bound.rne*'` runs it too
def test_tc_round_bound_theorem() -> None:
    from refarith.smt.registry import PROVED
    from refarith.smt.theorems import gemm as T

    assert T._tc_round_bound("rne_g4_b23").verdict == PROVED


def test_identify_runs_presets_with_one_parameter_set_once(monkeypatch) -> None:
    """volta_tc and turing_tc are one computation: identify runs it once and reports both rows alike."""
    from refarith.certify import gemm as C

    calls: list[str] = []
    real = F.scaled_mm

    def counting(spec, *args, **kw):
        calls.append(str(spec))
        return real(spec, *args, **kw)

    monkeypatch.setattr(C.F, "scaled_mm", counting)
    res = C.identify_gemm("numpy:matmul_fp16", shape=(4, 32, 4), models=("sequential", "volta_tc", "turing_tc"))
    rows = {r["spec"].split("accum=")[1].split(",")[0]: r for r in res["candidates"]}
    assert rows["volta_tc"]["mismatches"] == rows["turing_tc"]["mismatches"]
    assert rows["volta_tc"]["max_ulps"] == rows["turing_tc"]["max_ulps"]
    assert not any("turing_tc" in c for c in calls) and any("volta_tc" in c for c in calls)


@functools.cache
def _tile_case(model: str, acc: str) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    a, b = _fp8(rng, (3, 140)), _fp8(rng, (140, 7))
    spec = f"scaled_mm(ocp_e4m3->binary32,accum={model},acc={acc})"
    return spec, a, b, np.array(X.scaled_mm(spec, a.tolist(), b.tolist()))


@pytest.mark.parametrize("tile,slice_", [(6, 1), (6, 12), (64, 1 << 13)])
@pytest.mark.parametrize("model,acc", [("volta_tc", "binary32"), ("deepseek_v3", "binary32"),
                                       ("tensor_core,g=4,b=5,tc_round=rne,n_c=0", "binary16")])
def test_tensor_core_tiles_equal_exact(monkeypatch, tile: int, slice_: int, model: str, acc: str) -> None:
    """The numpy tensor-core loop cut into tiles of outputs (3 x 7 outputs in tiles of 6: rows of 6 columns and
    of 1) and its groups aligned one product at a time or two at a time: every output equals the exact model's
    (K = 140: a partial last group, a promotion after 128)."""
    monkeypatch.setattr(F, "TC_TILE", tile)
    monkeypatch.setattr(F, "TC_SLICE", slice_)
    spec, a, b, want = _tile_case(model, acc)
    assert (F.scaled_mm(spec, a, b) == want).all()


def test_tc_e4m3_groups_reach_the_sharpened_bound() -> None:
    """hopper_fp8 on E4M3 products: the largest group-step error equals the sharpened bound for E = 14..19 and
    stays below it from E = 20 (0.98 to 0.99 of it up to E = 40); each figure is attained by a group replayed
    through the exact model's step (t at its largest loss, every product the one losing most), and the theorem's
    1 x 64 GEMM witness reaches the bound exactly."""
    from refarith.exact.value import Value
    from refarith.smt.theorems.gemm import _tc_e4m3_tight, tc_e4m3_group_max

    rows = {e: (best, sharp, r) for e, best, sharp, r in tc_e4m3_group_max(es=range(14, 41))}
    assert all(rows[e][2] == 1 for e in range(14, 20))
    assert all(Fraction(98, 100) < rows[e][2] < 1 for e in range(20, 41))
    units = [int(x) for x in F.decode_array(np.arange(1, 0x7F), "ocp_e4m3") * 512]  # exact: multiples of 2^-9
    prods = sorted({x * y for x in units for y in units})
    unit = Fraction(1, 2 ** 18)
    for e in (14, 18, 21, 30):
        sh = e - 13
        p = max((q for q in prods if q < 2 ** (e + 1)), key=lambda q: q % 2 ** sh)
        t = 2 ** e + 2 ** sh - 2 ** max(e - 23, 0)
        got = X._tc_group(Value("finite", 0, t * unit), [Value("finite", 0, p * unit)] * 32,
                          get_format("binary32"), 13, "rtz").mag / unit
        assert t + 32 * p - got == rows[e][0], e
    out = _tc_e4m3_tight()
    assert out.confirmed and out.counterexample["error_units"] == out.counterexample["sharp_bound_units"] == "33"
