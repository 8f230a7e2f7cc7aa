"""The Triton kernels of scaled_mm (chain models, pairwise, tensor_core; interpreted on CPU): bit-exact with the
numpy kernel, the exact model and the committed golden files; their steps are the graphs traced from the numpy
kernel's step functions."""

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

GOLDEN = [s for s in committed_specs() if s.op == "scaled_mm" and model_params(s)[0] in TRITON_MODELS]


@pytest.mark.slow  # one interpreted launch per vector: about 10 s CPU per file (tensor_core files more)
@pytest.mark.parametrize("spec", GOLDEN, ids=[str(s) for s in GOLDEN])
def test_triton_equals_golden_files(spec) -> None:
    """Every vector of the committed file whose products are binary32 values: the Triton kernel gives the file's
    codes; the others (the smallest MX/UE8M0 scale 2^-127) are refused with KernelError, except into tensor_core,
    which runs every vector (NaN/inf ones included)."""
    ran, count = check_backend_on_file(spec, "triton")
    assert ran >= 0.9 * count, (ran, count)
    if model_params(spec)[0] == "tensor_core":  # NaN/inf and 2^-127 scale vectors included: none refused
        assert ran == count, (ran, count)


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


def test_triton_tensor_core_into_narrow_accumulators() -> None:
    """tensor_core into bfloat16 (volta_tc: truncating), binary16 (rounding, promotion every 8) and E5M2 (b = 5,
    rounding: sums of E4M3 products past 61440 overflow to inf in t, and later groups keep it): equal to numpy;
    sampled outputs, an infinite one among them, equal to the exact model."""
    rng = np.random.default_rng(8)
    for model, acc in (("volta_tc", "bfloat16"), ("tensor_core,g=4,b=10,tc_round=rne,n_c=8", "binary16"),
                       ("tensor_core,g=4,b=5,tc_round=rne,n_c=0", "ocp_e5m2")):
        a, b = _signed_e4m3(rng, (20, 22)), _signed_e4m3(rng, (22, 17))  # tiles of 32: past the edge
        spec = f"scaled_mm(ocp_e4m3->binary32,accum={model},acc={acc})"
        got = F.scaled_mm(spec, a, b, backend="triton")
        assert (got == F.scaled_mm(spec, a, b)).all(), spec
        picks = [(0, 0), (19, 16), (11, 7)]
        if acc == "ocp_e5m2":
            inf = np.argwhere((got & 0x7FFFFFFF) == 0x7F800000)
            assert len(inf), "no infinite sum: the case is not exercised"
            picks.append(tuple(int(v) for v in inf[0]))
        for i, j in picks:
            assert got[i, j] == X.scaled_mm(spec, a[i:i + 1].tolist(), b[:, j:j + 1].tolist())[0][0], (spec, i, j)


STEP_CASES = [("sequential", "binary32", 0, False, True), ("kahan", "bfloat16", 0, False, False),
              ("pairwise", "ocp_e5m2", 0, False, False), ("tensor_core", "binary32", 23, True, False),
              ("tensor_core", "binary16", 10, False, False)]


@pytest.mark.parametrize("case", STEP_CASES, ids=[f"{c[0]}-{c[1]}" for c in STEP_CASES])
def test_emitted_steps_are_the_numpy_steps_graphs(case) -> None:
    """The Triton kernel's step functions are emitted from the graphs traced from the functions the numpy kernel
    runs (refarith.fast.gemm_steps): each emitted function carries its graph's digest, and each graph replayed on
    random binary64 inputs (both signs, zeros, infinities, NaN, values past the format's range) gives the numpy
    step's own results bit for bit."""
    from refarith.fast import gemm_steps as S
    from refarith.fast.gemm_triton import step_module

    model, acc, b, rtz, f32 = case
    mod = step_module(model, acc, b, rtz, f32)
    src = mod.path.read_text()
    graphs = S.step_graphs(model, acc, b, rtz, f32)
    assert set(graphs) == set(mod.functions)
    rng = np.random.default_rng(9)
    x = np.ldexp(rng.standard_normal(4000), rng.integers(-30, 40, 4000))
    x[:8] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e300, -1e-310, 65504.0]
    q = None if f32 else S.acc_format(acc)
    for name, g in graphs.items():
        assert mod.digests[name] == g.digest and f"sha256 {g.digest}" in src, name
        n_in = len(g.inputs)
        ins = [np.roll(x, 7 * j) for j in range(n_in)]
        if name == "_tc_term":  # x times 2^(b - E), |x| <= 2^E: the scale of the group's largest magnitude
            ins[1] = S.tc_unit(S.NP, np.abs(ins[0]) * 2.0, b)[0]
            ins[0] = np.where(np.isfinite(ins[0]), ins[0], 1.0)
        if f32:
            ins = [v.astype(np.float32) for v in ins]
        with np.errstate(all="ignore"):
            want = {"_rnd": lambda v: v if f32 else S.acc_round(S.NP, v, q),
                    "_add": lambda v, w: S.add32(S.NP, v, w) if f32 else S.acc_add(S.NP, v, w, q),
                    "_tc_max": lambda v, w: S.tc_max(S.NP, v, w),
                    "_tc_unit": lambda v: S.tc_unit(S.NP, np.abs(v), b),
                    "_tc_term": lambda v, w: S.tc_term(S.NP, v, w, rtz),
                    "_tc_finish": lambda v, w: S.tc_finish(S.NP, v, w, S.acc_format(acc), rtz),
                    "_add32": lambda v, w: S.acc_add(S.NP, v, w, S.acc_format("binary32"))}[name](*ins)
        if name == "_tc_unit":
            ins = [np.abs(ins[0])]
        got = S.evaluate(g, ins)
        want = want if isinstance(want, tuple) else (want,)
        for gv, wv in zip(got, want, strict=True):
            assert np.array_equal(np.asarray(gv).view(np.int64 if not f32 else np.int32),
                                  np.asarray(wv).view(np.int64 if not f32 else np.int32)), name


def test_numpy_kernel_runs_the_traced_steps(monkeypatch) -> None:
    """The numpy kernel's narrow-accumulator additions and tensor-core groups call the step functions the Triton
    graphs are traced from (a counting wrapper sees them called; a group's steps run on the whole group)."""
    from refarith.fast import gemm_steps as S

    calls: dict[str, int] = {"acc_add": 0, "tc_max": 0, "tc_unit": 0, "tc_term": 0, "tc_finish": 0}
    for name in calls:
        real = getattr(S, name)

        def wrap(*args, _real=real, _name=name):
            calls[_name] += 1
            return _real(*args)

        monkeypatch.setattr(S, name, wrap)
    rng = np.random.default_rng(10)
    a, b = _signed_e4m3(rng, (3, 8)), _signed_e4m3(rng, (8, 2))
    F.scaled_mm("scaled_mm(ocp_e4m3->binary32,accum=fma_chain,acc=bfloat16)", a, b)
    F.scaled_mm("scaled_mm(ocp_e4m3->binary32,accum=volta_tc,acc=binary16)", a, b)
    assert calls["acc_add"] >= 8 and min(calls["tc_max"], calls["tc_unit"], calls["tc_finish"]) >= 2, calls
    assert calls["tc_term"] >= 4, calls


def test_step_tracer_refuses_value_branches() -> None:
    from refarith.errors import BadValueError
    from refarith.fast.gemm_steps import trace_step

    def branchy(xp, x):
        return x if x > 0.0 else -x

    with pytest.raises(BadValueError, match="branched on a value"):
        trace_step(branchy, ("x",), "branchy")


TC_SPECIALS = [("binary32", "tensor_core,g=4,b=5,tc_round=rne,n_c=8"), ("bfloat16", "volta_tc"),
               ("ocp_e5m2", "tensor_core,g=4,b=5,tc_round=rne,n_c=8"), ("binary32", "hopper_fp8")]


@pytest.mark.parametrize("acc,model", TC_SPECIALS, ids=[f"{a}-{m}" for a, m in TC_SPECIALS])
def test_triton_tensor_core_nan_and_inf_operands(acc: str, model: str) -> None:
    """E5M2 operands with +inf, -inf, NaN and zeros: a group with a non-finite product takes the IEEE sum of its
    terms (inf; NaN for inf - inf within a group or against an infinite t from an earlier group, for inf x 0 and
    for NaN), the other groups the steps; every output equals the exact model's, the numpy and the torch
    kernel's."""
    rng = np.random.default_rng(12)
    a = rng.integers(0x30, 0x48, (5, 40)) | (rng.integers(0, 2, (5, 40)) << 7)
    b = rng.integers(0x30, 0x48, (40, 4)) | (rng.integers(0, 2, (40, 4)) << 7)
    a[:, 30:34] = 0  # an all-zero group
    a[0, 5] = 0x7C  # +inf: inf in every column but 2, inf x 0 = NaN in column 2
    b[5, 2] = 0x80  # -0
    a[1, 3], a[1, 17] = 0xFC, 0x7C  # -inf in the first group, +inf in the fifth: inf - inf across groups
    a[2, 9] = 0x7F  # NaN: NaN x 0 in column 1, NaN x finite elsewhere
    b[9, 1] = 0
    a[3, 20], a[3, 21] = 0x7C, 0xFC  # +inf and -inf in one group: NaN
    b[36, 3] = 0x7C  # +inf in column 3 (times row 4's finite and row 3's NaN sums); row 4 otherwise finite
    b[[3, 17, 20, 21]] &= 0x7F  # positive: the infinities of rows 1 and 3 keep their signs
    a[4, 36] &= 0x7F
    spec = f"scaled_mm(ocp_e5m2->binary32,accum={model},acc={acc})"
    got = F.scaled_mm(spec, a, b, backend="triton")
    want = np.array(X.scaled_mm(spec, a.tolist(), b.tolist()), dtype=np.int64)
    assert (got == want).all(), spec
    assert (got == F.scaled_mm(spec, a, b)).all() and (got == F.scaled_mm(spec, a, b, backend="torch")).all()
    v = F.decode_array(got, "binary32")
    assert np.isinf(v[0, [0, 1, 3]]).all() and np.isnan(v[0, 2]), v[0]
    assert np.isnan(v[1]).all() and np.isnan(v[2]).all() and np.isnan(v[3]).all(), v
    assert np.isfinite(v[4, :3]).all() and np.isinf(v[4, 3]), v[4]


def test_triton_backend_refuses_what_it_does_not_run() -> None:
    a = np.zeros((1, 8), np.int64)
    with pytest.raises(KernelError, match="needs b >= 2"):
        F.scaled_mm("scaled_mm(ocp_e4m3->binary32,accum=tensor_core,g=4,b=1,tc_round=rtz,n_c=0)", a, a.T,
                    backend="triton")
