"""The torch backend of scaled_mm: bit-exact with the numpy kernel on the committed golden files and at size."""

from __future__ import annotations

import numpy as np
import pytest
from gemm_golden import check_backend_on_file

from refarith.errors import KernelError
from refarith.exact.gemm import model_params
from refarith.fast import gemm as F
from refarith.golden.generate import committed_specs

torch = pytest.importorskip("torch")


def _covered(spec) -> bool:
    name, _ = model_params(spec)
    return name in F.TORCH_MODELS or spec.param["acc"] == "binary32" and name in ("exact", "tensor_core")


GOLDEN = [s for s in committed_specs() if s.op == "scaled_mm" and _covered(s)]
DEFAULT = ("scaled_mm(binary16->binary16,scale=none,accum=sequential", "scaled_mm(ocp_e2m1->bfloat16,scale=mx,",
           "scaled_mm(ocp_e4m3->bfloat16,scale=none,accum=tensor_core")
"""The golden files checked in the default run (the others under slow: block files take seconds each)."""


@pytest.mark.parametrize("spec", [s if str(s).startswith(DEFAULT) else pytest.param(s, marks=pytest.mark.slow)
                                  for s in GOLDEN], ids=[str(s) for s in GOLDEN])
def test_torch_equals_numpy_on_golden_files(spec) -> None:
    """Every vector of the committed file: the torch backend gives the file's codes (and numpy's), or refuses
    it with KernelError (NaN/inf operands into tensor_core, and products that are not binary64-normal, e.g. the
    smallest MX/UE8M0 scale 2^-127, into tensor_core); most vectors run.  Narrow-accumulator files run every
    vector."""
    ran, count = check_backend_on_file(spec, "torch", against_numpy=True)
    assert ran >= 0.9 * count, (ran, count)


@pytest.mark.parametrize("model", ["volta_tc", "hopper_fp8", "deepseek_v3", "tensor_core,g=4,b=3,tc_round=rne,n_c=8"])
@pytest.mark.parametrize("out", ["binary32", "bfloat16"])
def test_torch_tensor_core_equals_numpy(model: str, out: str) -> None:
    rng = np.random.default_rng(6)
    a = rng.integers(0, 0x7F, (6, 320)) | (rng.integers(0, 2, (6, 320)) << 7)
    b = rng.integers(0, 0x7F, (320, 5)) | (rng.integers(0, 2, (320, 5)) << 7)
    spec = f"scaled_mm(ocp_e4m3->{out},accum={model})"
    assert (F.scaled_mm(spec, a, b, backend="torch") == F.scaled_mm(spec, a, b)).all()


@pytest.mark.parametrize("model", ["exact", *F.TORCH_MODELS])
def test_torch_equals_numpy_larger(model: str) -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 0x7C00, (6, 300)) | (rng.integers(0, 2, (6, 300)) << 15)
    b = rng.integers(0x3000, 0x4C00, (300, 5)) | (rng.integers(0, 2, (300, 5)) << 15)
    suffix = {"blocked": ",nb=32", "split_k": ",splits=4"}.get(model, "")
    spec = f"scaled_mm(binary16->binary32,accum={model}{suffix})"
    assert (F.scaled_mm(spec, a, b, backend="torch") == F.scaled_mm(spec, a, b)).all()


def test_torch_backend_refuses_what_it_does_not_run() -> None:
    a = np.zeros((1, 8), np.int64)
    with pytest.raises(KernelError, match="torch backend runs"):
        F.scaled_mm("scaled_mm(ocp_e4m3->binary32,accum=volta_tc,acc=bfloat16)", a, a.T, backend="torch")


@pytest.mark.parametrize("acc", ["bfloat16", "binary16", "ocp_e5m2"])
def test_torch_narrow_accumulators_equal_numpy(acc: str) -> None:
    """Narrow accumulators (the float64 TwoSum / round-to-odd path in torch): every model equals the numpy kernel
    on E4M3 operands whose sums overflow, cancel and go subnormal in the accumulator."""
    rng = np.random.default_rng(7)
    a = rng.integers(0, 0x7F, (4, 64)) | (rng.integers(0, 2, (4, 64)) << 7)
    b = rng.integers(0, 0x7F, (64, 3)) | (rng.integers(0, 2, (64, 3)) << 7)
    for model in F.TORCH_MODELS:
        name = {"blocked": "blocked,nb=8", "split_k": "split_k,splits=4"}.get(model, model)
        spec = f"scaled_mm(ocp_e4m3->binary32,acc={acc},accum={name})"
        assert (F.scaled_mm(spec, a, b, backend="torch") == F.scaled_mm(spec, a, b)).all(), spec


def test_torch_binary32_accumulator_with_wide_products() -> None:
    """MX blocks with the smallest E8M0 scale 2^-127 next to scale 1: products down to 2^-272 are not binary32
    values, so the torch backend runs them on the float64 path (it refused them before), bit-exact with numpy."""
    rng = np.random.default_rng(8)
    a = rng.integers(0, 0x7F, (3, 64)) | (rng.integers(0, 2, (3, 64)) << 7)
    b = rng.integers(0, 0x7F, (64, 2)) | (rng.integers(0, 2, (64, 2)) << 7)
    sa, sb = np.array([[0, 127]] * 3), np.array([[0, 127], [127, 0]])
    for model in ("sequential", "kahan"):
        spec = f"scaled_mm(ocp_e4m3->binary32,scale=mx,accum={model})"
        assert not F._products_fit_binary32(*F._scaled_operands(F.parse_spec(spec), a, b, sa, sb))
        assert (F.scaled_mm(spec, a, b, sa, sb, backend="torch") == F.scaled_mm(spec, a, b, sa, sb)).all()
