"""Users prove their own BitOps kernels: equal to a cast spec (or refuted with a counterexample the exact model
confirms), a stated property over all inputs, and the same traced graph run on numpy, torch and Triton."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from refarith.errors import KernelError, SpecError
from refarith.exact import ops as exact
from refarith.fast.bitops import NumpyBitOps
from refarith.smt.registry import COUNTEREXAMPLE, PROVED
from refarith.smt.userkernel import kernel_graph, load_user_kernel, prove_cast_kernel, prove_property

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
sys.path.insert(0, str(EXAMPLES))
import e4m3_kernel as uk  # noqa: E402

SPEC = "cast(binary32->ocp_e4m3,overflow=saturate)"


def test_correct_kernel_is_proved_and_names_its_graph():
    out = prove_cast_kernel(uk.e4m3_rne_sat, SPEC)
    assert out.verdict == PROVED, out
    assert f"graph {kernel_graph(uk.e4m3_rne_sat, 32).digest}" in out.detail


def test_tie_bug_is_refuted_at_a_halfway_input():
    out = prove_cast_kernel(uk.e4m3_round_half_up, SPEC)
    assert out.verdict == COUNTEREXAMPLE and out.confirmed is True
    cx = out.counterexample
    x = int(cx["source_bits"], 16)
    # the input is a halfway point (the 20 dropped bits of a normal E4M3 range value are exactly 1000...0, or the
    # subnormal equivalent) and the exact model rounds it to even, where the kernel rounds up
    want = exact.cast(x, "binary32", "ocp_e4m3", "rne", "saturate").code
    got = int(cx["kernel"].split()[0], 16)
    assert got == want + 1 and want % 2 == 0
    assert cx["kernel_on_numpy"] == cx["kernel"]


def test_wrong_spec_is_refuted():
    """The correct RNE kernel against the round-toward-zero spec: refuted, and the exact model agrees."""
    out = prove_cast_kernel(uk.e4m3_rne_sat, "cast(binary32->ocp_e4m3,rounding=rtz,overflow=saturate)")
    assert out.verdict == COUNTEREXAMPLE and out.confirmed is True


def test_properties_proved_and_refuted():
    assert prove_property(uk.e4m3_rne_sat, uk.never_nan_unless_nan_in, 32).verdict == PROVED
    out = prove_property(uk.e4m3_rne_sat, lambda ops, x, code: ops.ne(code, ops.const(0x7F)), 32)
    assert out.verdict == COUNTEREXAMPLE
    x = int(out.counterexample["x0"], 16)
    assert (x & 0x7FFFFFFF) > 0x7F800000  # a NaN input: the only way to get the NaN code


def test_int32_wrap_property():
    """A property about an intermediate: x + x never wraps for 30-bit inputs, but does for 32-bit ones."""
    def double(ops, x):
        return ops.add(x, x)

    def no_wrap(ops, x, y):
        return ops.uge(y, x)

    assert prove_property(double, no_wrap, 30).verdict == PROVED
    out = prove_property(double, no_wrap, 32)
    assert out.verdict == COUNTEREXAMPLE and int(out.counterexample["x0"], 16) >= 1 << 31


def test_same_graph_on_numpy_torch_and_triton():
    torch = pytest.importorskip("torch", reason="torch not installed")
    pytest.importorskip("triton", reason="triton not installed")
    from refarith.fast import triton_backend as tb
    from refarith.fast.bitops import TorchBitOps

    rng = np.random.default_rng(5)
    x = rng.integers(0, 1 << 32, 1 << 16, dtype=np.uint64).astype(np.uint32)
    want = np.array([exact.cast(int(v), "binary32", "ocp_e4m3", "rne", "saturate").code for v in x[:2000]])
    on_numpy = np.asarray(uk.e4m3_rne_sat(NumpyBitOps(32), x))
    assert np.array_equal(on_numpy[:2000], want)
    tops = TorchBitOps(32)
    on_torch = uk.e4m3_rne_sat(tops, tops.word(torch.from_numpy(x.astype(np.int64)))).numpy()
    (on_triton,) = tb.run_kernel(uk.e4m3_rne_sat, [torch.from_numpy(x.view(np.int32))], [torch.uint8])
    assert np.array_equal(on_torch, on_numpy) and np.array_equal(on_triton.numpy(), on_numpy)


def test_bad_kernels_are_named():
    def branches(ops, x):
        return x if ops.eq(x, ops.const(0)) else ops.const(1)

    with pytest.raises(KernelError, match="static data"):
        prove_cast_kernel(branches, SPEC)

    def crashes(ops, x):
        raise ZeroDivisionError("oops")

    with pytest.raises(KernelError, match="ZeroDivisionError: oops"):
        prove_cast_kernel(crashes, SPEC)
    with pytest.raises(SpecError, match="not mx_quantize"):
        prove_cast_kernel(uk.e4m3_rne_sat, "mx_quantize(ocp_e2m1)")


def test_load_user_kernel_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "mykern.py").write_text("def k(ops, x):\n    return x\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert load_user_kernel("mykern:k").__name__ == "k"
    with pytest.raises(KernelError, match="no attribute 'nope'"):
        load_user_kernel("mykern:nope")
    with pytest.raises(KernelError, match="expected module:function"):
        load_user_kernel("mykern")


# ------------------------------------------------------------------ the CLI and the pytest fixture
def test_cli_proves_and_refutes(capsys, monkeypatch):
    from refarith.cli import main

    monkeypatch.chdir(EXAMPLES)
    assert main(["prove", "--kernel", "e4m3_kernel:e4m3_rne_sat", "--spec", SPEC]) == 0
    assert capsys.readouterr().out.startswith("PROVED: e4m3_kernel:e4m3_rne_sat")
    assert main(["prove", "--kernel", "e4m3_kernel:e4m3_round_half_up", "--spec", SPEC]) == 1
    out = capsys.readouterr().out
    assert out.startswith("COUNTEREXAMPLE") and "exact model confirms the difference: True" in out
    assert main(["prove", "--kernel", "e4m3_kernel:e4m3_rne_sat", "--property",
                 "e4m3_kernel:never_nan_unless_nan_in", "--input-bits", "32"]) == 0


@pytest.mark.parametrize("argv,msg", [
    (["--kernel", "e4m3_kernel:e4m3_rne_sat"], "exactly one of --spec"),
    (["--kernel", "e4m3_kernel:nope", "--spec", SPEC], "no attribute 'nope'"),
    (["--kernel", "e4m3_kernel:e4m3_rne_sat", "--property", "e4m3_kernel:never_nan_unless_nan_in"], "--input-bits"),
    (["--kernel", "e4m3_kernel:e4m3_rne_sat", "--spec", SPEC, "--width", "16"], "--width must be 32 or 64"),
    (["--spec", SPEC], "go with --kernel"),
])
def test_cli_bad_input_exit_2(argv, msg, capsys, monkeypatch):
    from refarith.cli import main

    monkeypatch.chdir(EXAMPLES)
    assert main(["prove", *argv]) == 2
    assert msg in capsys.readouterr().err


FIXTURE_TESTS = '''
import pytest
import e4m3_kernel as uk

SPEC = "cast(binary32->ocp_e4m3,overflow=saturate)"


@pytest.mark.refarith_proof
def test_correct(refarith_prove):
    out = refarith_prove(uk.e4m3_rne_sat, SPEC)
    assert out.verdict == "proved"
    refarith_prove(uk.e4m3_rne_sat, prop=uk.never_nan_unless_nan_in, input_bits=32)


@pytest.mark.refarith_proof
def test_buggy(refarith_prove):
    refarith_prove(uk.e4m3_round_half_up, SPEC)
'''


def test_pytest_fixture(pytester):
    pytester.syspathinsert(EXAMPLES)
    pytester.makepyfile(test_user_proofs=FIXTURE_TESTS)
    r = pytester.runpytest("-p", "no:cacheprovider", "-q", "-m", "refarith_proof")
    r.assert_outcomes(passed=1, failed=1)
    text = r.stdout.str()
    assert "refarith proof failed" in text and "exact_model" in text
    assert "exact model confirms the difference: True" in text


pytest_plugins = ["pytester"]
