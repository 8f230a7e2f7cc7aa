"""The device self-check's CPU-runnable path: the same code as on a GPU, on a prefix of the binary32 inputs,
with the Triton kernels interpreted.  The device itself is exercised by the `gpu`-marked test."""

from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: the self-check runs torch and Triton backends")

from refarith.certify import selftest  # noqa: E402
from refarith.cli import main  # noqa: E402


def test_cpu_prefix_passes_and_names_every_sweep(capsys):
    pytest.importorskip("triton", reason="triton not installed")
    rc = main(["selftest", "--device", "cpu", "--inputs", "2^17", "--no-bench", "--jobs", "1"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "PASS: every refarith backend bit-exact" in out
    for dst, _ in selftest.SWEPT:
        assert f"cast(binary32->{dst}," in out
    assert out.count("refarith triton") == len(selftest.SWEPT)
    assert out.count("refarith torch") == len(selftest.SWEPT)


def test_a_wrong_backend_fails_the_check(monkeypatch):
    """One flipped code in the Triton backend's output: counted, the first input named, the check fails."""
    pytest.importorskip("triton", reason="triton not installed")
    from refarith.fast import triton_backend as tb

    real = tb.encode

    def broken(x, dst, **kw):
        out = real(x, dst, **kw).clone()
        if dst == "ocp_e2m1":
            out[5] ^= 1
        return out

    monkeypatch.setattr(tb, "encode", broken)
    rep = selftest.run("cpu", 1 << 16, jobs=1, bench=False)
    bad = [ln for ln in rep.lines if ln.mismatches]
    assert [(ln.what, ln.spec.split(",")[0]) for ln in bad] == [("refarith triton", "cast(binary32->ocp_e2m1")]
    assert bad[0].mismatches == 1 and bad[0].first.startswith("input 0x00000005")
    assert not rep.passed
    assert "FAIL" in selftest.render(rep)


def test_peer_mismatch_is_a_finding_not_a_failure():
    rep = selftest.Report("cpu", 1)
    rep.lines = [selftest.Line("refarith torch", "s", 1, 0, 0.0), selftest.Line("torch .to()", "s", 1, 3, 0.0,
                                                                                 refarith=False)]
    assert rep.passed
    rep.lines.append(selftest.Line("refarith triton", "s", 1, 1, 0.0))
    assert not rep.passed
    assert not selftest.Report("cpu", 1).passed  # nothing checked is no pass


def test_exact_key_table_matches_the_ocp_table():
    """Entries against OCP OFP8 E4M3 values: 1.0 -> 0x38, 448 -> 0x7e, 464 (the midpoint) ties to 448, 480 -> NaN
    0x7f, +0 -> 0x00, the smallest binary32 subnormal -> 0x00; entries past ``keys`` are -2."""
    def key(bits):
        return ((bits >> 16) << 1) | int((bits & 0xFFFF) != 0)

    t = selftest.exact_key_table("ocp_e4m3", dict(overflow="nan"), jobs=1, keys=key(0x43F00000) + 1)
    assert t[key(0x3F800000)] == 0x38
    assert t[key(0x43E00000)] == 0x7E
    assert t[key(0x43E80000)] == 0x7E
    assert t[key(0x43E80001)] == 0x7F  # just above the midpoint: overflow to NaN
    assert t[key(0x43F00000)] == 0x7F
    assert t[key(0)] == 0 and t[key(1)] == 0
    assert (t[key(0x43F00000) + 1:] == -2).all()


@pytest.mark.parametrize("argv,msg", [
    (["--device", "cuda"], "no CUDA device"),
    (["--device", "cpu"], "give --inputs"),
    (["--device", "cpu", "--inputs", "2^40"], "--inputs must lie in"),
    (["--device", "cpu", "--inputs", "lots"], "not a count"),
    (["--device", "tpu", "--inputs", "16"], "device must be cpu or cuda"),
    (["--device", "cpu", "--inputs", "16", "--jobs", "0"], "--jobs must be at least 1"),
])
def test_bad_invocations_exit_2(argv, msg, capsys):
    if argv[1] == "cuda" and torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the no-device message cannot be shown")
    assert main(["selftest", *argv]) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1


def test_selftest_never_imports_z3():
    """The CUDA machine image has no z3: the self-check must run with z3 unimportable."""
    code = ("import sys; sys.modules['z3'] = None\n"
            "from refarith.cli import main\n"
            "sys.exit(main(['selftest', '--device', 'cpu', '--inputs', '4096', '--no-bench', '--jobs', '1']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "PASS" in r.stdout


@pytest.mark.gpu
def test_full_sweep_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the full 2^32 device sweep needs a GPU")
    rep = selftest.run("cuda", selftest.FULL, bench=False)
    assert rep.passed, selftest.render(rep)
