"""The torch backend of scaled_mm: bit-exact with the numpy kernel on the committed golden files and at size."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.certify.adapters import group_columns
from refarith.errors import KernelError
from refarith.exact.gemm import model_params
from refarith.fast import gemm as F
from refarith.golden import fileformat as ff
from refarith.golden.drivers import get_driver
from refarith.golden.generate import committed_specs, default_dir, file_name

torch = pytest.importorskip("torch")


def _covered(spec) -> bool:
    name, _ = model_params(spec)
    return spec.param["acc"] == "binary32" and (name in ("exact", "tensor_core") or name in F.TORCH_MODELS)


GOLDEN = [s for s in committed_specs() if s.op == "scaled_mm" and _covered(s)]
DEFAULT = ("scaled_mm(binary16->binary16,scale=none,accum=sequential", "scaled_mm(ocp_e2m1->bfloat16,scale=mx,",
           "scaled_mm(ocp_e4m3->bfloat16,scale=none,accum=tensor_core")
"""The golden files checked in the default run (the others under slow: block files take seconds each)."""


@pytest.mark.parametrize("spec", [s if str(s).startswith(DEFAULT) else pytest.param(s, marks=pytest.mark.slow)
                                  for s in GOLDEN], ids=[str(s) for s in GOLDEN])
def test_torch_equals_numpy_on_golden_files(spec) -> None:
    """Every vector of the committed file: the torch backend gives the file's codes (and numpy's), or refuses
    it with KernelError (products that are not binary32 values: the MX/UE8M0 boundary vectors with the smallest
    scale 2^-127; NaN/inf operands into tensor_core); most vectors run."""
    g = ff.load(default_dir() / file_name(spec))
    drv = get_driver(spec)
    ran = 0
    for i in np.nonzero(~g.raises)[0].tolist():
        ops = group_columns(drv.inputs(spec), tuple(a[i:i + 1].astype(np.int64) for a in g.inputs))
        try:
            got = drv.fast(spec, ops, "torch")[0]
        except KernelError:
            continue
        ran += 1
        assert (got == drv.fast(spec, ops, "numpy")[0]).all(), (spec, i)
        assert (got == g.outputs[i:i + 1].astype(np.int64)).all(), (spec, i)
    assert ran >= 0.9 * g.count, (ran, g.count)


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
        F.scaled_mm("scaled_mm(ocp_e4m3->binary32,accum=pairwise,acc=bfloat16)", a, a.T, backend="torch")
    with pytest.raises(KernelError, match="torch backend runs"):
        F.scaled_mm("scaled_mm(ocp_e4m3->binary32,accum=volta_tc,acc=bfloat16)", a, a.T, backend="torch")
