"""The Triton kernels of scaled_mm into binary32 (chain models, pairwise, tensor_core; interpreted on CPU):
bit-exact with the numpy kernel, the exact model and the committed golden files."""

from __future__ import annotations

import numpy as np
import pytest
from gemm_golden import check_backend_on_file

from refarith.errors import KernelError
from refarith.exact import gemm as X
from refarith.exact.gemm import model_params
from refarith.fast import gemm as F
from refarith.golden.generate import committed_specs

pytest.importorskip("triton")
pytest.importorskip("torch")
from refarith.fast.gemm_triton import TRITON_MODELS  # noqa: E402

GOLDEN = [s for s in committed_specs() if s.op == "scaled_mm" and model_params(s)[0] in TRITON_MODELS
          and (s.param["acc"] == "binary32" or model_params(s)[0] != "tensor_core")]


@pytest.mark.slow  # one interpreted launch per vector: about 10 s CPU per file (tensor_core files more)
@pytest.mark.parametrize("spec", GOLDEN, ids=[str(s) for s in GOLDEN])
def test_triton_equals_golden_files(spec) -> None:
    """Every vector of the committed file whose products are binary32 values: the Triton kernel gives the file's
    codes; the others (the smallest MX/UE8M0 scale 2^-127) are refused with KernelError."""
    ran, count = check_backend_on_file(spec, "triton")
    assert ran >= 0.9 * count, (ran, count)


def test_triton_chain_models_equal_numpy_and_exact() -> None:
    """E4M3 operands with both signs (cancelling sums), tiles past the matrix edge (M = 70, N = 40 against tiles
    of 64), a last partial block (nb = 20, K = 48): every Triton model equals numpy; sampled outputs equal the exact
    model."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 0x7F, (70, 48)) | (rng.integers(0, 2, (70, 48)) << 7)
    b = rng.integers(0, 0x7F, (48, 40)) | (rng.integers(0, 2, (48, 40)) << 7)
    for model in ("sequential", "fma_chain", "blocked,nb=20", "split_k,splits=4", "kahan"):
        spec = f"scaled_mm(ocp_e4m3->binary32,accum={model})"
        got = F.scaled_mm(spec, a, b, backend="triton")
        assert (got == F.scaled_mm(spec, a, b)).all(), spec
        for i, j in ((0, 0), (69, 39), (33, 17)):
            assert got[i, j] == X.scaled_mm(spec, a[i:i + 1].tolist(), b[:, j:j + 1].tolist())[0][0], (spec, i, j)


def _signed_e4m3(rng, shape):
    return rng.integers(0, 0x7F, shape) | (rng.integers(0, 2, shape) << 7)


def test_triton_pairwise_and_tensor_core_equal_numpy_and_exact() -> None:
    """pairwise (K = 45: a tree with uneven halves) and tensor_core (truncating and rounding, a last partial group,
    promotion every 8) on E4M3 operands with both signs and tiles past the edge: equal to numpy; sampled outputs
    equal to the exact model."""
    rng = np.random.default_rng(4)
    for model, k in (("pairwise", 45), ("volta_tc", 22), ("tensor_core,g=4,b=10,tc_round=rne,n_c=8", 22)):
        a, b = _signed_e4m3(rng, (70, k)), _signed_e4m3(rng, (k, 40))
        spec = f"scaled_mm(ocp_e4m3->binary32,accum={model})"
        got = F.scaled_mm(spec, a, b, backend="triton")
        assert (got == F.scaled_mm(spec, a, b)).all(), spec
        for i, j in ((0, 0), (69, 39), (33, 17)):
            assert got[i, j] == X.scaled_mm(spec, a[i:i + 1].tolist(), b[:, j:j + 1].tolist())[0][0], (spec, i, j)


@pytest.mark.slow  # about 10 s CPU: 32-product groups, interpreted
def test_triton_deepseek_v3_promotion_equals_numpy() -> None:
    """deepseek_v3 at K = 300: two promotions into binary32 and a partial last group, equal to numpy."""
    rng = np.random.default_rng(5)
    a, b = _signed_e4m3(rng, (8, 300)), _signed_e4m3(rng, (300, 8))
    spec = "scaled_mm(ocp_e4m3->binary32,accum=deepseek_v3)"
    assert (F.scaled_mm(spec, a, b, backend="triton") == F.scaled_mm(spec, a, b)).all()


def test_pairwise_merge_schedule() -> None:
    """The post-order merge counts rebuild the recursive tree's sums: replayed on symbolic leaves they give the
    tree's bracketing (mid = lo + (hi - lo) // 2), for every K up to 40."""
    from refarith.fast.gemm_triton import pairwise_merges

    def tree(lo: int, hi: int) -> str:
        if hi - lo == 1:
            return str(lo)
        mid = lo + (hi - lo) // 2
        return f"({tree(lo, mid)}+{tree(mid, hi)})"

    for k in range(1, 41):
        merges, depth = pairwise_merges(k)
        stack: list[str] = []
        for i in range(k):
            stack.append(str(i))
            for _ in range(int(merges[i])):
                right = stack.pop()
                stack.append(f"({stack.pop()}+{right})")
        assert stack == [tree(0, k)] and depth >= 1, k


def test_triton_narrow_accumulator_equals_numpy_and_exact() -> None:
    """kahan into E5M2 (u = 2^-3: every step rounds; sums past 57344 overflow to inf) on E4M3 operands: the binary64
    TwoSum, round-to-odd and RNE steps equal numpy; sampled outputs equal the exact model."""
    rng = np.random.default_rng(6)
    a, b = _signed_e4m3(rng, (70, 16)), _signed_e4m3(rng, (16, 40))
    spec = "scaled_mm(ocp_e4m3->bfloat16,accum=kahan,acc=ocp_e5m2)"
    got = F.scaled_mm(spec, a, b, backend="triton")
    assert (got == F.scaled_mm(spec, a, b)).all()
    for i, j in ((0, 0), (69, 39), (33, 17)):
        assert got[i, j] == X.scaled_mm(spec, a[i:i + 1].tolist(), b[:, j:j + 1].tolist())[0][0], (i, j)


@pytest.mark.slow  # about 60 s CPU interpreted
@pytest.mark.parametrize("acc", ["bfloat16", "binary16", "ocp_e5m2"])
def test_triton_narrow_accumulators_every_model(acc) -> None:
    """Every chain model and pairwise into the narrow accumulator (binary16 and E5M2 overflow here) equal numpy."""
    rng = np.random.default_rng(7)
    a, b = _signed_e4m3(rng, (70, 45)), _signed_e4m3(rng, (45, 40))
    for model in ("sequential", "fma_chain", "blocked,nb=20", "split_k,splits=5", "kahan", "pairwise"):
        spec = f"scaled_mm(ocp_e4m3->binary32,accum={model},acc={acc})"
        assert (F.scaled_mm(spec, a, b, backend="triton") == F.scaled_mm(spec, a, b)).all(), spec


def test_triton_backend_refuses_what_it_does_not_run() -> None:
    a = np.zeros((1, 8), np.int64)
    with pytest.raises(KernelError, match="tensor_core into binary32 only"):
        F.scaled_mm("scaled_mm(ocp_e4m3->binary32,accum=volta_tc,acc=bfloat16)", a, a.T, backend="triton")
    with pytest.raises(KernelError, match="tensor_core on the triton backend: NaN/inf operands"):
        F.scaled_mm("scaled_mm(ocp_e4m3->binary32,accum=volta_tc)", a | 0x7F, a.T, backend="triton")
