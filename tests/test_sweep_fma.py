"""Sharded sweeps of fma triples and of seeded fuzz campaigns (refarith.certify.shards, `refarith sweep --fuzz`).

Expected counts come from independent code: ml_dtypes' float8_e4m3fn for fma (binary64 product and sum, exact
for e4m3 operands, then one cast) and numpy float16 for the fuzzed binary16 additions (tests/sweep_targets.py);
the fast fma reference is tied to the exact model :func:`refarith.exact.ops.fma`.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
from pathlib import Path

import numpy as np
import pytest

from refarith.certify import engine, shards
from refarith.certify.fuzz import run_fuzz
from refarith.certify.shards import Ledger, LedgerError, make_campaign, shard_seed
from refarith.cli import main
from refarith.exact import ops as exact_ops
from refarith.fast.oddsum import fma_rto
from refarith.formats import get_format
from refarith.golden.opdrivers.fma import boundary_codes

TESTS = Path(__file__).resolve().parent
FMA = "sweep_targets:fma_flip_e4m3"
ODD = "sweep_targets:add_flip_odd"
LO, HI = 0x380000, 0x3A0000  # a in {0x38 (1.0), 0x39 (1.125)}, every b and c: 2^17 triples


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))


@pytest.mark.parametrize("fmt", ["ocp_e4m3", "ocp_e5m2", pytest.param("binary16", marks=pytest.mark.slow),
                                 pytest.param("bfloat16", marks=pytest.mark.slow)])
def test_fast_fma_equals_the_exact_model(fmt):
    """Every 11th triple of boundary codes and 60 random triples, in every deterministic mode (16-bit formats under
    slow: their first fast call builds 2^16-entry tables, about 5 CPU s each; every campaign shard also checks 64
    vectors per 2^20 against the exact model)."""
    f = get_format(fmt)
    cs = boundary_codes(f)
    rng = random.Random(fmt)
    trip = list(itertools.product(cs, cs, cs))[::11] + [tuple(rng.randrange(f.ncodes) for _ in range(3))
                                                        for _ in range(60)]
    a, b, c = (np.array(t, dtype=np.int64) for t in zip(*trip))
    for mode in ("rne", "rna", "rtz", "rup", "rdn", "rto"):
        got = fma_rto(a, b, c, f, rounding=mode)
        want = [exact_ops.fma(x, y, z, f, rounding=mode).code for x, y, z in trip]
        assert got.tolist() == want, mode


def _ml_dtypes_expected() -> tuple[int, int]:
    """(vectors, mismatches) of the slice by ml_dtypes: the faulty kernel differs where c = 0x11 and the result
    is finite."""
    from sweep_targets import fma_e4m3_ml_dtypes

    idx = np.arange(LO, HI, dtype=np.int64)
    r = fma_e4m3_ml_dtypes(idx >> 16, (idx >> 8) & 0xFF, idx & 0xFF)
    return HI - LO, int(((idx & 0xFF) == 0x11).sum() - ((r[(idx & 0xFF) == 0x11] & 0x7F) == 0x7F).sum())


def test_fma_triples_campaign_counts_every_triple_once(tmp_path):
    camp = make_campaign("fma(ocp_e4m3)", FMA, shard_bits=15, start=LO, stop=HI)
    assert camp.kind == "triples" and len(camp.shards()) == 4
    assert engine.run_campaign(camp, tmp_path / "l", engine="local", progress=False, stop_after=1) is None
    c = engine.run_campaign(camp, tmp_path / "l", engine="local", progress=False)
    s = c.stages[0]
    n, bad = _ml_dtypes_expected()
    assert s.vectors + s.outside_domain == n
    assert sum(s.mismatches.values()) == bad > 0  # the fault and nothing else: ml_dtypes agrees elsewhere
    assert set(k for k, v in s.mismatches.items() if v) <= {"in_range", "subnormal", "overflow"}
    assert s.examples["in_range"].inputs[0] == "0x38" and s.examples["in_range"].inputs[2] == "0x11"
    assert "triples (a, b, c)" in s.source and c.environment["sweep_shards"] == "4"


def test_fma_domains():
    assert shards.domain_size("triples", "fma(ocp_e5m2)") == 1 << 24
    assert shards.domain_size("triples", "fma(binary16)") == 1 << 48
    camp = make_campaign("fma(binary16)", "refarith:numpy", shard_bits=32)
    assert len(camp.shards()) == 1 << 16 and camp.shards()[-1] == ((1 << 48) - (1 << 32), 1 << 48)


# ------------------------------------------------------------------ fuzz campaigns: (seed, count) shards
FUZZ_N, FUZZ_BITS = 600, 8  # shards of 256, 256 and 88 vectors


def fuzz_campaign(seed=7, target=ODD):
    return make_campaign("add(binary16)", target, shard_bits=FUZZ_BITS, fuzz=FUZZ_N, seed=seed)


@functools.lru_cache(maxsize=4)
def _drawn(seed: int) -> list[tuple[int, int]]:
    """The campaign's vectors, shard by shard: hypothesis with each shard's seed."""
    out = []
    for lo, hi in fuzz_campaign(seed).shards():
        out += run_fuzz("add(binary16)", hi - lo, shard_seed(seed, lo))
    return tuple(out)


def _numpy_mismatches(vecs) -> tuple[int, int]:
    """(faulty finite results, vectors with a NaN operand): numpy's NaN codes may differ from IEEE 754's
    propagation in the payload only (class nan_payload)."""
    a, b = (np.array(v, dtype=np.uint16) for v in zip(*vecs))
    with np.errstate(all="ignore"):
        r = (a.view(np.float16) + b.view(np.float16)).view(np.uint16)
    nan_in = np.isnan(a.view(np.float16)) | np.isnan(b.view(np.float16))
    return int(((a & 1 == 1) & (b & 1 == 1) & ((r & 0x7C00) != 0x7C00)).sum()), int(nan_in.sum())


@pytest.fixture(scope="module")
def fuzz_whole(tmp_path_factory):
    import sys

    sys.path.insert(0, str(TESTS))
    try:
        return engine.run_campaign(fuzz_campaign(), tmp_path_factory.mktemp("fz") / "l", engine="local",
                                   progress=False)
    finally:
        sys.path.remove(str(TESTS))


def test_fuzz_shards_are_seed_count_pairs_and_counted_once(fuzz_whole):
    camp = fuzz_campaign()
    assert camp.kind == "fuzz" and camp.shards() == [(0, 256), (256, 512), (512, 600)]
    assert len({shard_seed(7, lo) for lo, _ in camp.shards()} | {shard_seed(8, 0)}) == 4
    s = fuzz_whole.stages[0]
    assert s.name == "fuzz" and s.seed == 7
    assert s.vectors + s.outside_domain == FUZZ_N
    fault, nan_in = _numpy_mismatches(_drawn(7))
    assert sum(s.mismatches.values()) - s.mismatches["nan_payload"] == fault > 0
    assert s.mismatches["nan_payload"] <= nan_in
    assert fuzz_whole.verdict == "fail" and "campaign seed 7" in s.source


def test_fuzz_union_is_reproducible_and_resumes(tmp_path, fuzz_whole):
    assert _drawn(7) == _drawn(7) and _drawn(7) != _drawn(8)
    led = tmp_path / "l"
    assert engine.run_campaign(fuzz_campaign(), led, engine="local", progress=False, stop_after=2) is None
    docs = Ledger(led)
    docs.read_header()
    got = {(lo, hi): (d["fuzz_seed"], d["fuzz_count"]) for (lo, hi), d in docs.shards().items()}
    assert got == {(0, 256): (shard_seed(7, 0), 256), (256, 512): (shard_seed(7, 256), 256)}
    c = engine.run_campaign(fuzz_campaign(), led, engine="local", progress=False)
    assert c.stages[0].mismatches == fuzz_whole.stages[0].mismatches
    assert c.stages[0].examples == fuzz_whole.stages[0].examples
    with pytest.raises(LedgerError, match="campaign seed is 7, not 8"):
        engine.run_campaign(fuzz_campaign(seed=8), led, engine="local", progress=False)


def test_fuzz_cli(tmp_path, capsys):
    base = ["sweep", "run", "--spec", "add(binary16)", "--target", ODD, "--engine", "local", "--quiet",
            "--shard-bits", str(FUZZ_BITS), "--seed", "7"]
    assert main(base + ["--fuzz", "600", "--ledger", str(tmp_path / "l"), "--range", "0:256"]) == 1
    assert "fuzz vectors (hypothesis; campaign seed 7" in capsys.readouterr().out
    assert main(base + ["--fuzz", "0", "--ledger", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--fuzz must be a number of vectors" in err[0], err
    assert main(["sweep", "run", "--spec", "fma(binary8p3ue)", "--target", ODD, "--ledger", str(tmp_path / "n"),
                 "--engine", "local"]) == 2
    assert "signed float formats only" in capsys.readouterr().err


@pytest.mark.slow
def test_local_cluster_workers_run_without_malloc_trim_threshold(monkeypatch):
    """Dask's default MALLOC_TRIM_THRESHOLD_=65536 made every shard about 4x dearer in a worker (engine.py)."""
    import sys

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.setattr(engine, "_MALLOC_OURS", True)
    for _ in range(2):  # the second cluster must not inherit what the first one's nanny left in os.environ
        client, cluster = engine._client(None, 1, sys.stderr)
        try:
            env = client.run(lambda: {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")})
            assert list(env.values()) == [{"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}]
        finally:
            client.close()
            cluster.close()


@pytest.mark.slow
def test_fuzz_campaign_on_a_local_cluster_equals_the_local_run(tmp_path, fuzz_whole):
    """Workers (other processes, another PYTHONHASHSEED) draw the same vectors for each (shard seed, count)."""
    c = engine.run_campaign(fuzz_campaign(), tmp_path / "l", engine="dask", workers=2, progress=False)
    a, b = c.stages[0], fuzz_whole.stages[0]
    assert (a.vectors, a.mismatches, a.examples, a.histogram) == (b.vectors, b.mismatches, b.examples, b.histogram)


@pytest.mark.slow
def test_fuzz_driver_killed_mid_campaign_resumes_to_the_same_result(tmp_path, fuzz_whole):
    """SIGKILL the CLI mid-campaign (after its first shard file, before its last), then resume on the same ledger:
    the shards on disk are kept, the rest are drawn from their own (shard seed, count), and the merged result is
    the undisturbed run's, every vector counted once."""
    import signal
    import subprocess
    import sys
    import time

    led = tmp_path / "l"
    slow = "sweep_targets:add_flip_odd_slow"
    cmd = [sys.executable, "-m", "refarith", "sweep", "run", "--spec", "add(binary16)", "--target", slow,
           "--fuzz", str(FUZZ_N), "--seed", "7", "--shard-bits", str(FUZZ_BITS), "--ledger", str(led),
           "--engine", "local", "--quiet"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120 and p.poll() is None and not (
            (led / "shards").is_dir() and any((led / "shards").glob("*.json"))):
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    before = {f.name for f in (led / "shards").glob("*.json")}
    assert 1 <= len(before) < len(fuzz_campaign().shards()), before
    camp = make_campaign("add(binary16)", slow, shard_bits=FUZZ_BITS, fuzz=FUZZ_N, seed=7)
    c = engine.run_campaign(camp, led, engine="local", progress=False)
    assert before <= {f.name for f in (led / "shards").glob("*.json")}  # what was on disk was kept, not redone
    a, b = c.stages[0], fuzz_whole.stages[0]
    assert a.vectors + a.outside_domain == FUZZ_N
    assert (a.vectors, a.outside_domain, a.mismatches, a.examples, a.histogram) == \
        (b.vectors, b.outside_domain, b.mismatches, b.examples, b.histogram)
    docs = Ledger(led)
    docs.read_header()
    assert {r: (d["fuzz_seed"], d["fuzz_count"]) for r, d in docs.shards().items()} == \
        {(lo, hi): (shard_seed(7, lo), hi - lo) for lo, hi in camp.shards()}
