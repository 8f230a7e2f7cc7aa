"""`refarith identify --op scaled_mm` and `refarith certify` of GEMM targets: verdicts, exit statuses, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from refarith.cli import main
from refarith.fast import gemm as F

MX = "scaled_mm(ocp_e4m3->binary32,scale=mx)"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def mx_pairwise(a: np.ndarray, b: np.ndarray, sa: np.ndarray, sb: np.ndarray) -> np.ndarray:
    """An MX GEMM summing pairwise in binary32 (refarith's numpy kernel of that model)."""
    return F.scaled_mm("scaled_mm(ocp_e4m3->binary32,scale=mx,accum=pairwise)", a, b, sa, sb)


def fp16_wrong_dtype(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Returns binary64 values where binary32 outputs are expected."""
    return np.zeros((a.shape[0], b.shape[1]), np.float64)


def fp16_truncating(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """binary32 fma_chain, then every nonzero output one code toward zero: no model matches."""
    out = F.scaled_mm("scaled_mm(binary16->binary32,accum=fma_chain)", a, b)
    return np.where((out & 0x7FFFFFFF) > 0, out - 1, out)


def test_identify_cli_names_numpy_fp16_sequential(capsys) -> None:
    code, out, _ = run(capsys, "identify", "numpy:matmul_fp16", "--op", "scaled_mm", "--json")
    res = json.loads(out)
    assert code == 0
    names = [s.split("accum=")[1].split(",")[0] for s in res["matches"]]
    assert "sequential" in names and "pairwise" not in names and "exact" not in names


def test_identify_cli_scaled_user_kernel(capsys) -> None:
    """A user MX kernel receives the scale codes; identify names its order among the MX candidates."""
    code, out, _ = run(capsys, "identify", "tests.test_gemm_cli:mx_pairwise", "--spec", MX, "--shape", "20,96,6")
    assert code == 0, out
    assert "matches: scaled_mm(ocp_e4m3->binary32,scale=mx,accum=pairwise" in out


def test_identify_cli_no_match_exit_1(capsys) -> None:
    code, out, _ = run(capsys, "identify", "tests.test_gemm_cli:fp16_truncating", "--op", "scaled_mm", "--from",
                       "binary16", "--to", "binary32", "--shape", "4,48,4")
    assert code == 1 and "no model matches; closest" in out


@pytest.mark.parametrize("argv, words", [
    (["ml_dtypes:float8_e4m3fn", "--op", "scaled_mm"], "is not a GEMM target"),
    (["numpy:matmul_fp16", "--op", "scaled_mm", "--from", "ocp_e4m3"], "disagree"),
    (["tests.test_gemm_cli:mx_pairwise", "--spec", MX, "--shape", "4,48,4"], "K = 48 is not a multiple"),
    (["tests.test_gemm_cli:fp16_wrong_dtype", "--op", "scaled_mm", "--from", "binary16", "--to", "binary32",
      "--shape", "2,16,2"], "returned dtype float64"),
    (["numpy:matmul_fp16", "--op", "scaled_mm", "--shape", "4,x,4"], "--shape"),
    (["numpy:matmul_fp16", "--spec", "scaled_mm(binary16->binary16,accum=exact)"], "leave them out"),
    (["torch:_scaled_mm_fp32", "--spec", MX], "unscaled operands"),
    (["numpy:matmul_fp16", "--op", "scaled_mm", "--vary", "accum"], "--vary does not apply"),
    (["numpy:matmul_fp16", "--op", "scaled_mm", "--acc", ","], "expected accumulator formats"),
    (["numpy:matmul_fp16", "--op", "scaled_mm", "--acc", "binary32,int8"], "--acc int8: accumulator formats must"),
    (["numpy:matmul_fp16", "--op", "scaled_mm", "--shape", "100000,100000,100000"], "more than 2^24 elements"),
])
def test_identify_cli_bad_input_one_line_exit_2(capsys, argv: list[str], words: str) -> None:
    code, out, err = run(capsys, "identify", *argv)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err


def test_certify_cli_gemm_target_passes_its_model(capsys) -> None:
    code, out, _ = run(capsys, "certify", "numpy:matmul_fp16", "--spec",
                       "scaled_mm(binary16->binary16,accum=sequential)")
    assert code == 0 and out.startswith("PASS: numpy:matmul_fp16")


@pytest.mark.slow
def test_certify_cli_gemm_target_fails_another_model(capsys) -> None:
    code, out, _ = run(capsys, "certify", "numpy:matmul_fp16", "--spec",
                       "scaled_mm(binary16->binary16,accum=exact)")
    assert code == 1 and out.startswith("FAIL:")


def test_certify_cli_refarith_torch_backend_scaled_mm(capsys) -> None:
    """refarith's torch GEMM backend certifies against the committed golden file of its model (every vector, the
    boundary blocks included)."""
    pytest.importorskip("torch")
    code, out, _ = run(capsys, "certify", "refarith:torch", "--spec", "scaled_mm(ocp_e4m3->bfloat16,accum=pairwise,"
                       "acc=bfloat16)", "--quiet")
    assert code == 0 and out.startswith("PASS: refarith:torch") and "71 vectors" in out and " 0 mismatches" in out, out


@pytest.mark.slow
@pytest.mark.parametrize("spec, count", [("scaled_mm(ocp_e4m3->bfloat16,accum=pairwise,acc=bfloat16)", 71),
                                         ("scaled_mm(ocp_e4m3->bfloat16,scale=block,scale_fmt=ue8m0,"
                                          "accum=deepseek_v3)", 67)])
def test_certify_cli_refarith_triton_backend_scaled_mm(capsys, spec: str, count: int) -> None:
    """The Triton GEMM backend (interpreted on CPU) certifies against the committed golden files."""
    pytest.importorskip("triton")
    code, out, _ = run(capsys, "certify", "refarith:triton", "--spec", spec, "--quiet")
    assert code == 0 and out.startswith("PASS: refarith:triton") and f"{count} vectors" in out, out


def test_certify_cli_triton_backend_refuses_a_model_it_lacks(capsys) -> None:
    """accum=exact has no Triton kernel: one line naming the backend's models, exit 2."""
    pytest.importorskip("triton")
    code, _, err = run(capsys, "certify", "refarith:triton", "--spec", MX, "--quiet")
    assert code == 2 and "the triton backend runs" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("target, spec, words", [
    ("numpy:matmul_fp16", "scaled_mm(ocp_e4m3->binary32)", "multiplies binary16 operands"),
    ("numpy:matmul_fp16", "cast(binary32->binary16)", "is a GEMM"),
    ("ml_dtypes:float8_e4m3fn", "scaled_mm(ocp_e4m3->binary32)", "not scaled_mm"),
])
def test_certify_cli_gemm_bad_input(capsys, target: str, spec: str, words: str) -> None:
    code, _, err = run(capsys, "certify", target, "--spec", spec)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err


def mx_exact(a: np.ndarray, b: np.ndarray, sa: np.ndarray, sb: np.ndarray) -> np.ndarray:
    """An MX GEMM: exact sum, one rounding (refarith's numpy kernel)."""
    return F.scaled_mm(MX, a, b, sa, sb)


def mx_scales_swapped(a: np.ndarray, b: np.ndarray, sa: np.ndarray, sb: np.ndarray) -> np.ndarray:
    """An MX GEMM that applies B's first-row scales to A (a scale-indexing bug)."""
    return F.scaled_mm(MX, a, b, np.repeat(sb[:, :1].T, a.shape[0], axis=0), sb)


def test_certify_cli_scaled_gemm_golden(capsys) -> None:
    """The committed MX golden file: a kernel given A, B and both scale arrays passes; one that misreads the
    scales fails."""
    code, out, _ = run(capsys, "certify", "tests.test_gemm_cli:mx_exact", "--spec", MX)
    assert code == 0 and out.startswith("PASS") and "67 vectors" in out, out
    code, out, _ = run(capsys, "certify", "tests.test_gemm_cli:mx_scales_swapped", "--spec", MX)
    assert code == 1 and out.startswith("FAIL"), out


@pytest.mark.slow
def test_torchao_mx_emulation_identify() -> None:
    """torchao's CPU MX GEMM (dequantize to binary32, then torch.mm) sums like torch's binary32 CPU matmul:
    split_k,splits=2 at K = 256, not exact-then-round."""
    pytest.importorskip("torchao")
    from refarith.certify.gemm import identify_gemm

    res = identify_gemm("torchao:mx_mm_fp32", models=("exact", "sequential", "split_k,splits=2"))
    assert [s.split("accum=")[1].split(",")[0] for s in res["matches"]] == ["split_k"]
