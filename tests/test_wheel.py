"""The wheel as a new user gets it: built here, installed into a fresh virtual environment (no system site
packages, so the source tree and its editable install are invisible) with only the declared dependencies and
ml_dtypes, then used from another directory: the Quick start's certify command and ``refarith golden verify``
(byte-identical regeneration of every committed file).  Slow: pip installs plus minutes of CPU.  On a 2-core
machine under heavy load (load average about 20) the wheel build, venv and installs took about 3 min and the Quick
start about 9 min, and the full regeneration did not finish within the 3600 s cap; on such a machine raise
REFARITH_WHEEL_VERIFY_TIMEOUT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from test_packaging import build_wheel

ROOT = Path(__file__).resolve().parent.parent
# the declared dependencies, and ml_dtypes for the Quick start's target
DEPENDENCIES = (*tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"], "ml_dtypes>=0.5")
QUICK_START = ("certify", "ml_dtypes:float8_e4m3fn", "--spec", "cast(binary32->ocp_e4m3)", "--exhaustive", "--fuzz",
               "500")


# the byte-identical regeneration of every committed file is the long step: its wall-clock cap, in seconds
VERIFY_TIMEOUT = float(os.environ.get("REFARITH_WHEEL_VERIFY_TIMEOUT", "3600"))


def _run(args: list[str], cwd: Path, timeout: float, log: Path | None = None) -> subprocess.CompletedProcess:
    """Run without the source tree on the path; with ``log``, stderr (the progress lines) goes to that file, so
    that a run over its cap still says how far it got."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    if log is None:
        return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    env["REFARITH_PROGRESS_INTERVAL"] = "30"
    with log.open("w") as err:
        # its own process group: past the cap the whole group (the command and its pool workers) is stopped,
        # Ctrl-C first (refarith then ends its workers itself), SIGKILL to whatever is left
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            lines = log.read_text().strip().splitlines()  # before the interrupt adds its own line
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            pytest.fail(f"{' '.join(args[1:])} ran past its {timeout:.0f} s cap; last progress: "
                        f"{lines[-1] if lines else 'none'}")
    return subprocess.CompletedProcess(args, proc.returncode, out, log.read_text())


@pytest.mark.slow
def test_wheel_in_fresh_venv(tmp_path):
    t0 = time.monotonic()
    whl = build_wheel(tmp_path / "build")
    venv = tmp_path / "venv"
    r = _run([sys.executable, "-m", "venv", str(venv)], tmp_path, 300)
    assert r.returncode == 0, r.stderr
    py, exe = venv / "bin" / "python", venv / "bin" / "refarith"
    r = _run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(whl)], tmp_path, 600)
    assert r.returncode == 0, r.stderr[-3000:]
    r = _run([str(py), "-m", "pip", "install", "-q", *DEPENDENCIES], tmp_path, 1200)
    assert r.returncode == 0, r.stderr[-3000:]
    t_install = time.monotonic() - t0
    work = tmp_path / "elsewhere"
    work.mkdir()
    r = _run([str(py), "-c", "import refarith; print(refarith.__file__)"], work, 120)
    assert r.returncode == 0 and str(venv) in r.stdout.splitlines()[0], r.stdout + r.stderr

    t1 = time.monotonic()
    r = _run([str(exe), *QUICK_START], work, 1800)
    t_certify = time.monotonic() - t1
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    assert "cast__binary32_to_ocp_e4m3" in r.stdout and "no committed file" not in r.stdout, r.stdout[-3000:]

    t2 = time.monotonic()
    r = _run([str(exe), "golden", "verify", "--jobs", "2"], work, VERIFY_TIMEOUT, log=tmp_path / "verify.log")
    t_verify = time.monotonic() - t2
    assert r.returncode == 0 and "golden vectors verified" in r.stdout, r.stderr[-3000:]
    r = _run([str(py), "-m", "refarith", "golden", "generate", "--only", "add(ocp_e2m1*"], work, 300)
    assert r.returncode == 2 and "needs --out" in r.stderr, r.stderr
    assert list(work.iterdir()) == []  # nothing written where it ran
    print(f"wheel build+venv+install {t_install:.0f} s, quick-start certify {t_certify:.0f} s, "
          f"golden verify {t_verify:.0f} s")
