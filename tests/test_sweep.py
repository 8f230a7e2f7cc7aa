"""Sharded sweeps (refarith.certify.shards, refarith.certify.engine, `refarith sweep`): ledger, resume, faults.

The campaign: binary16 add on pairs with a in {0x3c00, 0x3c01} (2^17 pairs), against tests/sweep_targets.py's
kernel that flips the last bit of every finite result for a = 0x3c01 and b = 0x..11.  The expected number of
mismatches comes from numpy's float16 addition (an independent library: it adds in binary32, which for binary16
operands is one rounding), not from refarith.  Real LocalClusters (2 worker processes) and the kill tests run
under ``slow``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from refarith.certify import engine, shards
from refarith.certify.shards import Ledger, LedgerError, make_campaign
from refarith.cli import main

TESTS = Path(__file__).resolve().parent
FLIP = "sweep_targets:add_flip"
SLOW = "sweep_targets:add_flip_slow"
LO, HI = 0x3C000000, 0x3C020000


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    """The test kernels are importable here and in every worker process (they inherit PYTHONPATH)."""
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))


def expected_mismatches() -> int:
    """Pairs (0x3c01, 0x..11) whose sum is finite: numpy float16, independent of refarith."""
    a = np.full(256, 0x3C01, dtype=np.uint16).view(np.float16)
    b = (np.arange(256, dtype=np.uint32) * 256 + 0x11).astype(np.uint16).view(np.float16)
    with np.errstate(all="ignore"):
        return int(np.isfinite(a + b).sum())


def campaign(target=FLIP, bits=14, lo=LO, hi=HI):
    return make_campaign("add(binary16)", target, shard_bits=bits, start=lo, stop=hi)


def comparable(cert) -> dict:
    """The certificate without what legitimately differs between runs (timings, retries, start time)."""
    d = cert.to_dict()
    d.pop("seconds")
    d.pop("started")
    for s in d["stages"]:
        s.pop("seconds")
        s["source"] = s["source"].split(" (ledger")[0]
    d["environment"] = {k: v for k, v in d["environment"].items() if not k.startswith("sweep_")}
    return d


def check_counts(cert) -> None:
    s = cert.stages[0]
    assert s.vectors + s.outside_domain == HI - LO  # every pair once: nothing lost, nothing counted twice
    assert sum(s.mismatches.values()) == expected_mismatches()
    assert s.mismatches["nan_payload"] == 0
    e = s.examples["in_range"]
    assert e.inputs[0] == "0x3c01" and e.inputs[1] in ("0x0011", "0x8011")  # the smallest failing pair
    assert cert.verdict == "fail"


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory):
    sys.path.insert(0, str(TESTS))
    try:
        c = engine.run_campaign(campaign(), tmp_path_factory.mktemp("ref") / "ledger", engine="local",
                                progress=False)
    finally:
        sys.path.remove(str(TESTS))
    return c


def test_local_run_counts_every_pair_once(undisturbed):
    check_counts(undisturbed)
    assert undisturbed.environment["sweep_shards"] == "8" and undisturbed.environment["sweep_retries"] == "0"


def test_interrupted_run_resumes_to_the_same_certificate(tmp_path, undisturbed):
    led = tmp_path / "l"
    assert engine.run_campaign(campaign(), led, engine="local", progress=False, stop_after=3) is None
    assert len(list((led / "shards").glob("*.json"))) == 3
    with pytest.raises(LedgerError, match="5 of 8 shards not done"):
        shards.certificate(Ledger(led))
    (led / "shards" / ".stale.json.123.tmp").write_bytes(b"{")  # an atomic write cut short: never read
    c = engine.run_campaign(campaign(), led, engine="local", progress=False)
    assert comparable(c) == comparable(undisturbed)
    check_counts(c)


def test_report_is_rebuilt_from_the_ledger_alone(tmp_path, undisturbed, capsys):
    led = tmp_path / "l"
    engine.run_campaign(campaign(), led, engine="local", progress=False)
    assert main(["sweep", "report", "--ledger", str(led), "--report", str(tmp_path / "r")]) == 1  # the fault
    out = capsys.readouterr().out
    assert out.startswith("FAIL: sweep_targets:add_flip against add(binary16,rounding=rne,overflow=inf)")
    js = json.loads(next((tmp_path / "r").glob("*.json")).read_text())
    assert sum(js["mismatch_totals"].values()) == expected_mismatches()
    assert (tmp_path / "r" / (next((tmp_path / "r").glob("*.json")).stem + ".html")).is_file()


def test_foreign_ledger_is_refused(tmp_path):
    led = tmp_path / "l"
    engine.run_campaign(campaign(), led, engine="local", progress=False, stop_after=1)
    with pytest.raises(LedgerError, match="belongs to another campaign: its campaign target"):
        engine.run_campaign(campaign(target=SLOW), led, engine="local", progress=False)
    with pytest.raises(LedgerError, match="campaign shard_bits is 14, not 15"):
        engine.run_campaign(campaign(bits=15), led, engine="local", progress=False)
    h = json.loads((led / "ledger.json").read_text())
    h["reference_digest"] = "0" * 64
    (led / "ledger.json").write_text(json.dumps(h))
    with pytest.raises(LedgerError, match="reference digest"):
        engine.run_campaign(campaign(), led, engine="local", progress=False)


@pytest.mark.parametrize("damage", ["truncate", "edit", "rename"])
def test_bad_shard_file_is_an_error_and_nothing_is_merged(tmp_path, damage):
    led = tmp_path / "l"
    engine.run_campaign(campaign(), led, engine="local", progress=False, stop_after=2)
    f = sorted((led / "shards").glob("*.json"))[0]
    data = f.read_bytes()
    if damage == "truncate":
        f.write_bytes(data[: len(data) // 2])
        why = "corrupt or truncated"
    elif damage == "edit":
        f.write_bytes(data.replace(b'"vectors":', b'"vectors":1', 1))
        why = "corrupt or truncated"
    else:  # a shard file of the right digest under another shard's range
        f.rename(f.with_name("00003c01c000-00003c020000-" + f.name.split("-")[2]))
        why = "not a shard of this campaign|unreadable|counts"
    with pytest.raises(LedgerError, match=why):
        engine.run_campaign(campaign(), led, engine="local", progress=False)
    with pytest.raises(LedgerError, match=why):
        shards.certificate(Ledger(led), require_complete=False)


def test_two_writers_are_refused(tmp_path):
    led = tmp_path / "l"
    holder = Ledger(led)
    holder.lock()
    try:
        with pytest.raises(LedgerError, match=r"in use by another run \(pid \d+\)"):
            engine.run_campaign(campaign(), led, engine="local", progress=False)
    finally:
        holder.unlock()
    assert engine.run_campaign(campaign(), led, engine="local", progress=False, stop_after=1) is None


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT", 1.0)
    base = ["sweep", "run", "--spec", "add(binary16)", "--target", FLIP, "--shard-bits", "14",
            "--range", f"{LO:#x}:{HI:#x}", "--ledger", str(tmp_path / "l"), "--quiet"]
    assert main(base + ["--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach a Dask scheduler" in err[0], err
    assert main(base + ["--engine", "local"]) == 1
    capsys.readouterr()
    assert main(base[:6] + ["--target", SLOW] + base[8:] + ["--engine", "local"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "belongs to another campaign" in err[0]
    assert main(["sweep", "run", "--spec", "add(binary32)", "--target", FLIP, "--ledger", str(tmp_path / "m")]) == 2
    assert "no sharded exhaustive campaign" in capsys.readouterr().err
    assert main(base[:8] + ["--range", "5:3", "--ledger", str(tmp_path / "n")]) == 2
    assert "not a non-empty range" in capsys.readouterr().err
    # plan --workers 0 was a ZeroDivisionError traceback; --retries -1 lacked the error prefix
    assert main(["sweep", "plan", "--spec", "add(binary16)", "--target", FLIP, "--workers", "0", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("refarith: error:") and "--workers" in err[0], err
    assert main(base + ["--engine", "local", "--retries", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("refarith: error:") and "--retries" in err[0], err


# ------------------------------------------------------------------ real clusters, kills
def _dask_workers() -> list[int]:
    import psutil

    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            cmd = " ".join(p.cmdline() or [p.name()])
            # "dask worker [tcp://...]" where setproctitle is installed; else the multiprocessing spawn child that
            # the nanny started (the resource tracker, the only other child, runs resource_tracker's main)
            if "dask worker [tcp" in cmd or "from multiprocessing.spawn import spawn_main" in cmd:
                out.append(p.pid)
        except psutil.Error:  # a process that ended meanwhile
            pass
    return out


@pytest.mark.slow
def test_local_cluster_two_workers_equals_single_process(tmp_path, undisturbed):
    c = engine.run_campaign(campaign(), tmp_path / "l", engine="dask", workers=2, progress=False)
    assert comparable(c) == comparable(undisturbed)
    assert _dask_workers() == []  # torn down


@pytest.mark.slow
def test_worker_loss_is_retried_and_counted(tmp_path, undisturbed):
    led = tmp_path / "l"
    killed: list[int] = []

    def killer():
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:
            done = len(list((led / "shards").glob("*.json"))) if (led / "shards").is_dir() else 0
            pids = _dask_workers()
            if done >= 1 and len(pids) == 2:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.05)

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    c = engine.run_campaign(campaign(SLOW), led, engine="dask", workers=2, progress=False)
    th.join()
    assert killed, "no worker was killed"
    assert comparable(c) == comparable(undisturbed) | {"target": SLOW, "kernel_version": c.kernel_version}
    assert int(c.environment["sweep_retries"]) >= 1  # the lost shard ran again, and the certificate says so


@pytest.mark.slow
def test_driver_killed_mid_run_resumes_with_nothing_lost_or_twice(tmp_path, undisturbed):
    led = tmp_path / "l"
    cmd = [sys.executable, "-m", "refarith", "sweep", "run", "--spec", "add(binary16)", "--target", SLOW,
           "--shard-bits", "14", "--range", f"{LO:#x}:{HI:#x}", "--ledger", str(led), "--engine", "local",
           "--quiet"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120 and len(list((led / "shards").glob("*.json")) if led.exists() else []) < 2:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    n = len(list((led / "shards").glob("*.json")))
    assert 2 <= n < 8
    c = engine.run_campaign(campaign(SLOW), led, engine="dask", workers=2, progress=False)
    assert comparable(c) == comparable(undisturbed) | {"target": SLOW, "kernel_version": c.kernel_version}
    check_counts(c)


@pytest.mark.slow
def test_shard_failing_on_every_try_is_named_and_nothing_written(tmp_path):
    """Results arrive in batches with their errors: a kernel that raises on each try of a shard is refarith's
    KernelError naming the kernel and its exception (raised in the driver, not a Dask traceback), and no shard
    file is written."""
    from refarith.errors import KernelError

    led = tmp_path / "l"
    with pytest.raises(KernelError, match=r"kernel sweep_targets:add_raises raised ValueError: add_raises: no result"):
        engine.run_campaign(campaign("sweep_targets:add_raises"), led, engine="dask", workers=2, retries=1,
                            progress=False)
    assert list((led / "shards").glob("*.json")) == []
