"""The trust chain: nothing fakes a certification pass, and faults are errors (exit 2), never a verdict.

Each test names the route it closes; on the code before these checks each route either passed (a golden file
edited together with its MANIFEST entry, a fuzz stage of zero vectors, ``golden verify --only`` selecting
nothing), fell back silently (an unusable ``--golden``), ended the run with the kernel's own status
(``sys.exit(0)``, ``os._exit(0)``), hung (a kernel that sleeps, a sweep worker that dies or stalls, torch workers
forked after torch's thread pool ran) or left a traceback (a full or read-only output directory).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from refarith.certify.adapters import load_kernel
from refarith.certify.runner import Certificate, Stage, exhaustive_stage, run_pool, start_method
from refarith.cli import main
from refarith.errors import KernelError, OutputError
from refarith.golden import fileformat as ff
from refarith.golden.generate import MANIFEST, _manifest_bytes, default_dir, read_manifest
from refarith.spec import parse_spec

ROOT = Path(__file__).resolve().parent.parent
E4M3 = "cast(binary32->ocp_e4m3,rounding=rne,overflow=nan)"
E4M3_FILE = "cast__binary32_to_ocp_e4m3__rounding-rne__overflow-nan.txt.gz"

KERNELS = '''
import os, signal, sys, time
import numpy as np
import ml_dtypes

PARENT = os.getpid()

def good(x):
    return x.astype(ml_dtypes.float8_e4m3fn)

def saturating(x):
    """Wrong for overflow=nan: finite overflow and infinities saturate to +-448."""
    y = np.where(np.isnan(x), x, np.clip(x, -448, 448)).astype(np.float32)
    return y.astype(ml_dtypes.float8_e4m3fn)

def sys_exit(*x):
    sys.exit(0)

def keyboard(x):
    raise KeyboardInterrupt

class Odd(BaseException):
    pass

def odd_base(x):
    raise Odd("not an Exception")

def os_exit(x):
    os._exit(0)

def sleeps(*x):
    time.sleep(1000)

def swallows(x):
    while True:
        try:
            time.sleep(1000)
        except BaseException:
            pass

def _in_worker(x):
    return os.getpid() != PARENT and int(x[0]) >= (1 << 19)

def killed_in_worker(x):
    if _in_worker(x):
        os.kill(os.getpid(), signal.SIGKILL)
    return good(x.view(np.float32))

def exits_in_worker(x):
    if _in_worker(x):
        os._exit(0)
    return good(x.view(np.float32))

def hangs_in_worker(x):
    if _in_worker(x):
        time.sleep(1000)
    return good(x.view(np.float32))

killed_in_worker.refarith_inputs = exits_in_worker.refarith_inputs = hangs_in_worker.refarith_inputs = "codes"
'''


@pytest.fixture
def kmod(tmp_path, monkeypatch):
    pytest.importorskip("ml_dtypes")
    d = tmp_path / "kernels"
    d.mkdir()
    (d / "rf_trust_kernels.py").write_text(textwrap.dedent(KERNELS))
    monkeypatch.syspath_prepend(str(d))
    sys.modules.pop("rf_trust_kernels", None)
    return d


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_exit_2(capsys, *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert len(err.strip().splitlines()) == 1 and "PASS" not in out, err
    return err


# ------------------------------------------------------------------ fake passes
def _forged_dir(tmp_path: Path, forge) -> tuple[Path, list[int]]:
    """A golden directory holding the committed E4M3 file with ``forge(input_code, output_code) -> new output``
    applied to every vector line and the MANIFEST entry re-hashed to match; returns it and the edited line numbers
    (counted in the text independently of the reader)."""
    src = default_dir()
    lines = gzip.decompress((src / E4M3_FILE).read_bytes()).decode().split("\n")
    edited = []
    for i, line in enumerate(lines):
        if not line or line.startswith("#") or line.endswith("!"):
            continue
        x, _, y = line.split(" ")
        new = forge(int(x, 16), int(y, 16))
        if new != int(y, 16):
            lines[i] = f"{x} : {new:02x}"
            edited.append(i + 1)
    data = ff.compress("\n".join(lines).encode())
    d = tmp_path / "forged"
    d.mkdir()
    (d / E4M3_FILE).write_bytes(data)
    e = dict(read_manifest(src)["files"][E4M3_FILE], sha256=ff.sha256(data), bytes=len(data))
    (d / MANIFEST).write_bytes(_manifest_bytes({E4M3_FILE: e}))
    return d, edited


def test_forged_golden_file_with_rehashed_manifest_exit_2(kmod, tmp_path, capsys):
    """Every line a saturating kernel gets wrong is rewritten to the saturating answer and the MANIFEST hash
    updated: the hash check passes, the recomputation names the first forged line and both values."""
    import ml_dtypes

    def forge(x, y):
        v = np.array([x], np.uint32).view(np.float32)
        if np.isnan(v[0]):
            return y
        return int(np.clip(v, -448, 448).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)[0])

    d, edited = _forged_dir(tmp_path, forge)
    assert edited, "the saturating kernel must differ somewhere"
    err = one_line_exit_2(capsys, "certify", "rf_trust_kernels:saturating", "--spec", E4M3, "--golden", str(d),
                          "--fuzz", "200")
    assert f"{E4M3_FILE}:{edited[0]}:" in err
    assert "the file gives y 0x7e = 448" in err and "the exact model y 0x7f = nan" in err


def test_forged_line_caught_by_the_exact_reference_too(kmod, tmp_path, capsys):
    """The same forgery on one line, with every vector recomputed by the exact model itself."""
    d, edited = _forged_dir(tmp_path, lambda x, y: y ^ 1 if x == 0x3F800000 else y)
    assert len(edited) == 1
    err = one_line_exit_2(capsys, "certify", "rf_trust_kernels:good", "--spec", E4M3, "--golden", str(d),
                          "--exact-reference")
    assert f"{E4M3_FILE}:{edited[0]}: for input 0x3f800000 the file gives y 0x39 = " in err
    assert "the exact model y 0x38 = 1;" in err


def test_committed_manifest_digest_is_pinned(monkeypatch, capsys):
    """A committed MANIFEST whose digest is not the one pinned in the package: certify refuses it, verify reports
    it (the pin is read from refarith.golden.pinned, which the generator writes)."""
    from refarith.golden import pinned

    sha = ff.sha256((default_dir() / MANIFEST).read_bytes())
    assert pinned.MANIFEST_SHA256 == sha
    monkeypatch.setattr(pinned, "MANIFEST_SHA256", "0" * 64)
    err = one_line_exit_2(capsys, "certify", "refarith:numpy", "--spec", E4M3)
    assert "differs from the digest pinned in refarith.golden.pinned" in err
    code, _, err = run(capsys, "golden", "verify", "--no-regenerate", "--only", "add(ocp_e2m1*")
    assert code == 1 and "pinned in refarith.golden.pinned" in err


def test_pin_module_is_the_generators_rendering():
    from refarith.golden.generate import PIN_MODULE, pin_text

    sha = ff.sha256((default_dir() / MANIFEST).read_bytes())
    assert PIN_MODULE.read_bytes() == pin_text(sha)


def test_hand_edited_manifest_is_reported(tmp_path, capsys):
    """A MANIFEST that is valid JSON with the right hashes but not the generator's bytes."""
    name = "add__ocp_e2m1__rounding-rne__overflow-saturate__nan-error.txt.gz"
    shutil.copy(default_dir() / name, tmp_path / name)
    man = read_manifest(default_dir())
    man["files"] = {name: man["files"][name]}
    (tmp_path / MANIFEST).write_text(json.dumps(man))  # not indent=1, sorted: differs from _manifest_bytes
    code, _, err = run(capsys, "golden", "verify", str(tmp_path), "--no-regenerate")
    assert code == 1 and "not the generator's rendering" in err


@pytest.mark.parametrize("kernel, needle", [
    ("sys_exit", "raised SystemExit: exit status 0"),
    ("keyboard", "raised KeyboardInterrupt"),
    ("odd_base", "raised Odd: not an Exception"),
    ("os_exit", "called os._exit(0)"),
])
def test_kernel_ending_the_process_is_an_error(kmod, capsys, kernel, needle):
    err = one_line_exit_2(capsys, "certify", f"rf_trust_kernels:{kernel}", "--spec", E4M3)
    assert needle in err


def test_identify_kernel_sys_exit_is_an_error(kmod, capsys):
    err = one_line_exit_2(capsys, "identify", "rf_trust_kernels:sys_exit", "--spec", "add(ocp_e2m1)")
    assert "raised SystemExit" in err


def test_stage_of_zero_vectors_cannot_pass(kmod, monkeypatch, capsys):
    """Fuzzing that draws only vectors outside the spec's domain (NaN into FP4 under nan=error)."""
    import refarith.certify.fuzz as fz

    monkeypatch.setattr(fz, "run_fuzz", lambda spec, n, seed=0: [(0x7FC00000,)] * n)
    err = one_line_exit_2(capsys, "certify", "refarith:numpy", "--spec", "cast(binary32->ocp_e2m1)", "--fuzz", "8")
    assert "stage fuzz compared no vectors (8 outside the domain" in err
    c = Certificate("s", "t", "v", False, [Stage("golden", "x", vectors=5), Stage("fuzz", "y")], {}, "now")
    assert c.verdict == "fail"


def _unusable_dirs(tmp_path: Path) -> list[tuple[str, str]]:
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / MANIFEST).write_text("{not json")
    (tmp_path / "other").mkdir()
    name = "add__ocp_e2m1__rounding-rne__overflow-saturate__nan-error.txt.gz"
    man = read_manifest(default_dir())["files"]
    (tmp_path / "other" / MANIFEST).write_bytes(_manifest_bytes({name: man[name]}))
    return [(str(tmp_path / "missing"), "does not exist"), (str(tmp_path / "file"), "is not a directory"),
            (str(tmp_path / "empty"), "no MANIFEST"), (str(tmp_path / "bad"), "malformed MANIFEST"),
            (str(tmp_path / "other"), "its MANIFEST has no file for cast(binary32->ocp_e4m3")]


def test_unusable_golden_dir_exit_2(tmp_path, capsys):
    for d, needle in _unusable_dirs(tmp_path):
        err = one_line_exit_2(capsys, "certify", "refarith:numpy", "--spec", E4M3, "--golden", d)
        assert needle in err, (d, err)


@pytest.mark.parametrize("argv, needle", [
    (["certify", "refarith:numpy", "--spec", E4M3, "--fuzz", "-1"], "--fuzz must be"),
    (["certify", "refarith:numpy", "--spec", E4M3, "--jobs", "0"], "--jobs must be a positive"),
    (["certify", "refarith:numpy", "--spec", E4M3, "--jobs", "-3"], "--jobs must be a positive"),
    (["certify", "refarith:numpy", "--spec", E4M3, "--timeout", "0"], "--timeout must be a positive"),
    (["certify", "refarith:numpy", "--spec", E4M3, "--timeout", "-5"], "--timeout must be a positive"),
    (["certify", "refarith:numpy", "--spec", E4M3, "--timeout", "nan"], "--timeout must be a positive"),
    (["certify", "refarith:numpy", "--spec", E4M3, "--watchdog", "0"], "--watchdog must be a positive"),
    (["identify", "refarith:numpy", "--to", "ocp_e4m3", "--timeout", "-1"], "--timeout must be a positive"),
    (["golden", "verify", "--jobs", "0"], "--jobs must be a positive"),
    (["golden", "generate", "--out", "unused-dir", "--jobs", "-1"], "--jobs must be a positive"),
    (["golden", "verify", "--only", "no-such-spec*"], "--only 'no-such-spec*' selects none of the"),
    (["golden", "generate", "--out", "unused-dir", "--only", "no-such-spec*"], "selects none of the"),
])
def test_bad_budgets_and_empty_selections_exit_2(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    err = one_line_exit_2(capsys, *argv)
    assert needle in err
    assert not (tmp_path / "unused-dir").exists()


# ------------------------------------------------------------------ faults: hangs
def test_hanging_kernel_times_out(kmod, capsys):
    t0 = time.monotonic()
    err = one_line_exit_2(capsys, "certify", "rf_trust_kernels:sleeps", "--spec", E4M3, "--timeout", "1")
    assert "stage golden of rf_trust_kernels:sleeps did not finish within the time limit of 1 s" in err
    err = one_line_exit_2(capsys, "identify", "rf_trust_kernels:sleeps", "--spec", "add(ocp_e2m1)", "--timeout",
                          "1")
    assert "did not finish within the time limit of 1 s" in err
    assert time.monotonic() - t0 < 30


def test_kernel_swallowing_the_timeout_is_ended(kmod, tmp_path):
    """A kernel that catches every BaseException: the last-resort watchdog ends the process, status 2, and no
    report is written.

    The spec has 256 inputs, generated with their expected outputs by the exact model, so the stage reaches
    the kernel within milliseconds and the 1 s alarm arrives inside it.  (With the binary32 E4M3 file the stage
    first recomputes 7180 vectors with the numpy cast kernel; where that takes over a second -- a slow machine,
    the instrumented copy a mutation run executes -- the alarm ends refarith's own work with the ordinary
    time-limit error and the kernel is never asked to give up.)"""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(kmod), str(ROOT)]))
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "refarith.cli", "certify", "rf_trust_kernels:swallows", "--spec",
                        "cast(ocp_e4m3->binary16)",
                        "--timeout", "1", "--report", str(tmp_path / "rep")], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 2 and "could not be interrupted" in r.stderr and r.stdout == ""
    assert not (tmp_path / "rep").exists() or not list((tmp_path / "rep").iterdir())
    assert time.monotonic() - t0 < 60


# ------------------------------------------------------------------ faults: the exhaustive sweep's workers
@pytest.mark.parametrize("kernel, needle", [
    ("killed_in_worker", "a worker process died"),
    ("exits_in_worker", "called os._exit(0)"),
    ("hangs_in_worker", "stalled: no chunk finished for 2 s (--watchdog); in flight: chunk 1 (inputs 0x00080000"),
])
def test_sweep_worker_faults_are_errors(kmod, kernel, needle):
    if start_method() == "spawn":
        pytest.skip("torch is loaded in this test process: workers would be spawned (covered below)")
    k = load_kernel(f"rf_trust_kernels:{kernel}")
    t0 = time.monotonic()
    with pytest.raises(KernelError, match=None) as ei:
        exhaustive_stage(parse_spec(E4M3), k, jobs=2, chunk_bits=19, limit=1 << 21, progress=False, watchdog=2)
    assert needle in str(ei.value)
    assert time.monotonic() - t0 < 120


TORCH_SCRIPT = '''
import sys, time
import numpy as np
import torch
from refarith.certify.runner import run_pool, start_method

def work(n):
    t = torch.arange(1 << 20, dtype=torch.float32) * float(n)
    return float(t.to(torch.float8_e4m3fn).to(torch.float32).sum())

if __name__ == "__main__":
    torch.arange(1 << 22, dtype=torch.float32).to(torch.float8_e4m3fn)  # start torch's intra-op pool here
    assert start_method() == "spawn", start_method()
    out = []
    t0 = time.monotonic()
    run_pool(work, [1, 2, 3, 4], 2, on_result=out.append, watchdog=60)
    print(len(out), round(time.monotonic() - t0, 2))
'''


def test_torch_workers_do_not_deadlock(tmp_path):
    """Workers that use torch after the parent ran a parallel torch op: forked ones deadlock in their first
    parallel op; the pool spawns them once torch is loaded, so the run completes."""
    pytest.importorskip("torch")
    (tmp_path / "torch_pool.py").write_text(TORCH_SCRIPT)
    r = subprocess.run([sys.executable, str(tmp_path / "torch_pool.py")], capture_output=True, text=True,
                       timeout=240, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[0] == "4"


def test_fork_start_method_without_torch():
    r = subprocess.run([sys.executable, "-c", "from refarith.certify.runner import start_method; "
                        "import sys; print(start_method(), 'torch' in sys.modules)"],
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.stdout.split() == ["fork", "False"]


def test_pool_names_the_failing_item():
    with pytest.raises(KernelError, match=r"item 3 failed in a worker: ZeroDivisionError"):
        run_pool(_reciprocal, [1, 2, 3], 2, method="fork", label=lambda i: f"item {i}")


def _reciprocal(i: int) -> float:
    return 1 / (i - 3)


# ------------------------------------------------------------------ faults: outputs that cannot be written
_FSIZE = '''
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from refarith.cli import main
sys.exit(main(sys.argv[1:]))
'''


def _full_disk(tmp_path: Path, limit: int, *argv: str) -> subprocess.CompletedProcess:
    """Run the CLI with files limited to ``limit`` bytes: writes beyond fail with EFBIG, as on a full disk."""
    script = tmp_path / "fsize.py"
    script.write_text(_FSIZE.format(limit=limit))
    return subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1"))


def test_full_disk_report_leaves_nothing(tmp_path):
    rep = tmp_path / "rep"
    r = _full_disk(tmp_path, 3000, "certify", "refarith:numpy", "--spec", E4M3, "--report", str(rep))
    assert r.returncode == 2 and "cannot write (File too large); nothing written" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert list(rep.iterdir()) == []


def test_full_disk_golden_generate_leaves_nothing(tmp_path):
    out = tmp_path / "gold"
    r = _full_disk(tmp_path, 8000, "golden", "generate", "--out", str(out), "--only", "cast(binary32->e8m0,*rne*",
                   "--jobs", "1")
    assert r.returncode == 2 and "cannot write (File too large)" in r.stderr, r.stderr
    assert list(out.iterdir()) == []


def _read_only(monkeypatch) -> None:
    """Every new temporary file is refused as in a read-only directory (root ignores directory permissions)."""
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)


def test_read_only_report_dir_keeps_the_old_certificate(tmp_path, monkeypatch, capsys):
    rep = tmp_path / "rep"
    assert main(["certify", "refarith:numpy", "--spec", E4M3, "--report", str(rep)]) == 0
    before = {p.name: p.read_bytes() for p in rep.iterdir()}
    assert len(before) == 3
    capsys.readouterr()
    _read_only(monkeypatch)
    err = one_line_exit_2(capsys, "certify", "refarith:numpy", "--spec", E4M3, "--report", str(rep))
    assert "cannot write (Permission denied)" in err
    assert {p.name: p.read_bytes() for p in rep.iterdir()} == before


def test_read_only_golden_quantize_and_report_outputs(tmp_path, monkeypatch, capsys):
    x = np.linspace(-3, 3, 64, dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    _read_only(monkeypatch)
    err = one_line_exit_2(capsys, "golden", "generate", "--out", str(tmp_path / "g"), "--only", "add(ocp_e2m1*",
                          "--jobs", "1")
    assert "cannot write (Permission denied)" in err
    err = one_line_exit_2(capsys, "quantize", str(tmp_path / "x.npy"), "--format", "mxfp4", "-o",
                          str(tmp_path / "q.npz"))
    assert "cannot write (Permission denied)" in err
    from refarith.cli_commands import report

    with pytest.raises(OutputError, match="cannot write"):
        report.write_atomic(str(tmp_path / "r.md"), "text")
    left = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()]
    assert left == ["x.npy"]


def test_generator_rewrites_the_pin_of_the_committed_set(tmp_path, monkeypatch):
    """Generating into the committed directory (here a stand-in) writes the pinned digest with it; verify accepts
    the result and rejects a MANIFEST edited afterwards, hash entries and all."""
    import importlib

    from refarith.golden import pinned

    gen = importlib.import_module("refarith.golden.generate")

    monkeypatch.setattr(gen, "default_dir", lambda: tmp_path / "gv")
    monkeypatch.setattr(gen, "PIN_MODULE", tmp_path / "pinned.py")
    monkeypatch.setattr(pinned, "MANIFEST_SHA256", pinned.MANIFEST_SHA256)
    gen.generate(only="add(ocp_e2m1*", jobs=1, progress=False)
    sha = ff.sha256((tmp_path / "gv" / MANIFEST).read_bytes())
    assert (tmp_path / "pinned.py").read_bytes() == gen.pin_text(sha) and pinned.MANIFEST_SHA256 == sha
    assert gen.verify(jobs=1, progress=False) == []
    man = read_manifest(tmp_path / "gv")
    name = next(iter(man["files"]))
    man["files"][name]["count"] = man["files"][name]["count"]  # same entries, bytes rewritten by hand
    (tmp_path / "gv" / MANIFEST).write_bytes(_manifest_bytes(man["files"]) + b"\n")
    msgs = [p.message for p in gen.verify(jobs=1, progress=False)]
    assert any("pinned in refarith.golden.pinned" in m for m in msgs), msgs


def test_exit_guard_intercepts_only_the_kernels_thread():
    """guard_exit turns os._exit of the thread running the kernel into a KernelError; another thread's os._exit (a
    Dask worker's parent monitor ends an orphaned worker so) still ends the process with its code."""
    code = textwrap.dedent("""
        import os, threading, time
        from refarith.certify.adapters import guard_exit
        from refarith.errors import KernelError
        try:
            with guard_exit("t"):
                os._exit(3)
        except KernelError as e:
            print("caught", e, flush=True)
        with guard_exit("t"):
            threading.Thread(target=os._exit, args=(7,)).start()
            time.sleep(30)
        print("not reached", flush=True)
    """)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 7 and time.monotonic() - t0 < 25, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.strip() == "caught kernel t called os._exit(3)", r.stdout
