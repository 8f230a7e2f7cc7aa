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
    return name in (*F.TORCH_MODELS, "exact", "tensor_core")


GOLDEN = [s for s in committed_specs() if s.op == "scaled_mm" and _covered(s)]
DEFAULT = ("scaled_mm(binary16->binary16,scale=none,accum=sequential", "scaled_mm(ocp_e2m1->bfloat16,scale=mx,",
           "scaled_mm(ocp_e4m3->bfloat16,scale=none,accum=tensor_core",
           "scaled_mm(ocp_e4m3->binary16,scale=none,accum=tensor_core")
"""The golden files checked in the default run (the others under slow: block files take seconds each)."""


@pytest.mark.parametrize("spec", [s if str(s).startswith(DEFAULT) else pytest.param(s, marks=pytest.mark.slow)
                                  for s in GOLDEN], ids=[str(s) for s in GOLDEN])
def test_torch_equals_numpy_on_golden_files(spec) -> None:
    """Every vector of the committed file: the torch backend gives the file's codes (and numpy's), or refuses
    it with KernelError (products outside the binary64-normal range into tensor_core); most vectors run."""
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
    """tensor_core with b < 2 (an infinite accumulator would get a zero unit) is refused in one line."""
    a = np.zeros((1, 8), np.int64)
    with pytest.raises(KernelError, match="tensor_core on the torch backend: .*b >= 2"):
        F.scaled_mm("scaled_mm(ocp_e4m3->binary32,accum=tensor_core,g=4,b=1,tc_round=rtz,n_c=0)", a, a.T,
                    backend="torch")


@pytest.mark.parametrize("acc", ["binary32", "bfloat16", "ocp_e5m2"])
def test_torch_tensor_core_nan_and_inf_operands(acc: str) -> None:
    """E5M2 operands with +inf, -inf and NaN in some rows and columns: groups with a non-finite product take the
    IEEE sum (inf, NaN for inf - inf or inf x 0), the other outputs the steps; every output equals the exact
    model's."""
    from refarith.exact.gemm import scaled_mm as exact_mm

    rng = np.random.default_rng(12)
    a = rng.integers(0x30, 0x48, (4, 24)) | (rng.integers(0, 2, (4, 24)) << 7)
    b = rng.integers(0x30, 0x48, (24, 3)) | (rng.integers(0, 2, (24, 3)) << 7)
    a[0, 5], a[1, 17], a[1, 3], a[2, 9] = 0x7C, 0x7C, 0xFC, 0x7F  # +inf; +inf and -inf (NaN where they meet); NaN
    b[9, 1] = 0  # NaN x 0 in column 1, NaN x finite elsewhere; row 3 stays finite
    spec = f"scaled_mm(ocp_e5m2->binary32,accum=tensor_core,g=4,b=5,tc_round=rne,n_c=8,acc={acc})"
    got = F.scaled_mm(spec, a, b, backend="torch")
    assert (got == np.array(exact_mm(spec, a.tolist(), b.tolist()), dtype=np.int64)).all()
    v = F.decode_array(got, "binary32")
    assert np.isinf(v[0]).all() and np.isnan(v[1]).any() and np.isnan(v[2]).all() and np.isfinite(v[3]).all(), v


NARROW_TC = [("bfloat16", "volta_tc"), ("bfloat16", "tensor_core,g=8,b=10,tc_round=rne,n_c=16"),
             ("binary16", "hopper_fp8"), ("binary16", "tensor_core,g=4,b=5,tc_round=rne,n_c=0"),
             ("ocp_e5m2", "tensor_core,g=4,b=5,tc_round=rne,n_c=0"),
             ("ocp_e5m2", "tensor_core,g=2,b=3,tc_round=rtz,n_c=8"),
             ("ocp_e4m3", "tensor_core,g=4,b=4,tc_round=rne,n_c=0")]


@pytest.mark.parametrize("acc,model", NARROW_TC, ids=[f"{a}-{m}" for a, m in NARROW_TC])
def test_torch_tensor_core_narrow_accumulators(acc: str, model: str) -> None:
    """tensor_core into accumulators narrower than binary32, from the shared steps on torch tensors: every output
    equals the exact model's (Fractions) and the numpy kernel's.  Row 0 takes the largest E4M3 magnitudes, so
    its sums with column 0 overflow the accumulator (inf in binary16/E5M2 with rne, NaN in E4M3, the largest finite
    value with rtz) and stay so; the others hold cancelling and small sums."""
    from refarith.exact.gemm import scaled_mm as exact_mm

    rng = np.random.default_rng(9)
    a = rng.integers(0x08, 0x48, (4, 40)) | (rng.integers(0, 2, (4, 40)) << 7)
    a[0] = 0x7E  # 448
    b = rng.integers(0x08, 0x48, (40, 3)) | (rng.integers(0, 2, (40, 3)) << 7)
    b[:, 0] = 0x7E
    spec = f"scaled_mm(ocp_e4m3->binary32,accum={model},acc={acc})"
    got = F.scaled_mm(spec, a, b, backend="torch")
    want = np.array(exact_mm(spec, a.tolist(), b.tolist()), dtype=np.int64)
    assert (got == want).all(), (got, want)
    assert (got == F.scaled_mm(spec, a, b)).all()
    v = F.decode_array(got, "binary32")
    assert abs(v[0, 0]) >= 2.0 ** 15 or not np.isfinite(v[0, 0]), v  # the overflowing row is in the test
    assert len({x for x in v.ravel().tolist() if np.isfinite(x)}) >= 4, v


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
