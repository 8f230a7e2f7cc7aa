"""Running a campaign's shards: in this process, or as tasks on Dask distributed.

``engine="dask"`` (the default when ``distributed`` is installed, the ``dist`` extra): a ``LocalCluster`` of
``workers`` processes (default: the machine's cores), one thread each, or the existing cluster whose scheduler
is at ``scheduler``.  Every shard not yet in the ledger is one task; results come back to this process, which
alone writes the ledger (under its lock) as each one arrives, so a killed run loses only the shards in flight.
A worker that dies mid-shard is Dask's business: the scheduler runs the task again on another worker (up to
``distributed.scheduler.allowed-failures`` times), and a task that raises is retried ``retries`` times; both
are counted per shard from the scheduler's task state (``suspicious``: workers lost while running it, and the
retries it used) and recorded in the shard's ledger file, so the certificate says how many there were.
``engine="local"``: the shards one after another in this process (no dask needed).

Progress: refarith's display (:class:`refarith.golden.progress.Progress`: a tqdm bar on a terminal, a plain line
every ``REFARITH_PROGRESS_INTERVAL`` seconds otherwise) counts shards as they are written; the Dask dashboard's
address is printed when the cluster has one.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from refarith.certify.shards import (
    Campaign,
    Ledger,
    LedgerError,
    certificate,
    kernel_digest,
    reference_digest,
    run_shard,
)
from refarith.errors import BadValueError, RefarithError
from refarith.golden.progress import Progress

ENGINES = ("auto", "dask", "local")
CONNECT_TIMEOUT = 10.0
"""Seconds to reach an existing scheduler before giving up."""


WORKER_CONFIG = {"distributed.worker.profile.enabled": False,
                 "distributed.nanny.pre-spawn-environ": {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": 1,
                                                         "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1},
                 "distributed.admin.tick.interval": "1s",
                 "distributed.admin.system-monitor.interval": "2s",
                 "distributed.admin.system-monitor.gil.enabled": False,
                 "distributed.worker.memory.monitor-interval": "1s"}
"""Dask settings of the LocalCluster's workers, each for the CPU of the shards:

* no statistical profiler thread (it samples every worker's stack every 10 ms; the dashboard's profile page stays
  empty);
* no ``MALLOC_TRIM_THRESHOLD_`` (Dask's default sets it to 65536, which turns off glibc's adaptive mmap threshold:
  every array of a chunk is then mapped and zeroed afresh, about 4x the CPU of the comparison itself).  ``None``
  is Dask's way to drop a default of ``pre-spawn-environ`` (a plain dict would be merged into the default);
* the event loop's tick monitor every 1 s instead of 20 ms, the system monitor every 2 s instead of 0.5 s, no GIL
  contention monitor, the memory monitor every 1 s instead of 0.1 s: these threads took about 12% of a worker's
  CPU on top of its shard (3% with these settings; dashboards and the memory limit react more slowly).
"""

_MALLOC_OURS = "MALLOC_TRIM_THRESHOLD_" not in os.environ
"""Dask's nanny copies ``pre-spawn-environ`` into this process's environment when it starts a worker; unless the
user set the variable, a LocalCluster started later must not inherit the value an earlier one left here."""


class EngineError(RefarithError):
    """The distributed engine cannot be used: dask missing, scheduler unreachable, a shard failing for good."""


def have_dask() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _client(scheduler: str | None, workers: int | None, stream: TextIO):
    if not have_dask():
        raise EngineError("engine dask: the distributed package is not installed (pip install 'refarith[dist]'), "
                          "or use --engine local")
    from distributed import Client, LocalCluster

    for name in ("distributed", "distributed.nanny", "distributed.worker", "distributed.scheduler"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT:g}s")
        except (OSError, TimeoutError, ValueError) as e:
            raise EngineError(f"--scheduler {scheduler}: cannot reach a Dask scheduler there within "
                              f"{CONNECT_TIMEOUT:g} s ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
        return client, None
    n = workers or os.cpu_count() or 1
    import dask

    dask.config.set(WORKER_CONFIG)
    if _MALLOC_OURS:
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    try:
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=logging.ERROR)
    except (OSError, RuntimeError, TimeoutError) as e:
        raise EngineError(f"engine dask: a LocalCluster of {n} workers did not start ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:160] if str(e) else ''})") from None
    return Client(cluster), cluster


def run_campaign(camp: Campaign, ledger_dir: str | Path, engine: str = "auto", workers: int | None = None,
                 scheduler: str | None = None, retries: int = 2, progress: bool | None = None,
                 stream: TextIO | None = None, stop_after: int | None = None):
    """Run every shard of ``camp`` not yet in the ledger at ``ledger_dir``; the merged certificate (None when
    ``stop_after`` shards were written and some remain: a partial run, for tests and slices).

    LedgerError for a ledger of another campaign, a shard file that does not verify, a ledger in use by another
    run; EngineError for an unreachable scheduler or a shard that fails on every try."""
    return run_campaigns([(camp, ledger_dir)], engine, workers, scheduler, retries, progress, stream,
                         stop_after)[0]


def run_campaigns(items: list[tuple[Campaign, str | Path]], engine: str = "auto", workers: int | None = None,
                  scheduler: str | None = None, retries: int = 2, progress: bool | None = None,
                  stream: TextIO | None = None, stop_after: int | None = None, label: str | None = None) -> list:
    """:func:`run_campaign` of several (campaign, ledger directory) pairs at once: every ledger locked and opened
    first, then all their missing shards as one pool of tasks on one engine (one LocalCluster for all), so that
    the workers stay busy across campaigns.  ``stop_after``: at most that many shards in all (in campaign order).
    Returns each campaign's merged certificate, None for one with shards left."""
    from refarith.certify.adapters import load_kernel
    from refarith.certify.runner import environment
    from refarith.spec import parse_spec

    stream = stream or sys.stderr
    if engine not in ENGINES:
        raise BadValueError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise BadValueError(f"--workers must be a number of worker processes >= 1, got {workers!r}")
    if engine == "auto":
        engine = "dask" if (have_dask() or scheduler is not None) else "local"
    if engine == "local" and (scheduler is not None or workers is not None):
        raise BadValueError("--scheduler and --workers apply to --engine dask")
    if not items:
        raise BadValueError("no campaign to run")
    kernels: dict[str, object] = {}
    for camp, _ in items:
        if camp.target not in kernels:
            kernels[camp.target] = load_kernel(camp.target)
        kernel = kernels[camp.target]
        if kernel.source is None:
            raise BadValueError(f"target {camp.target}: workers cannot load it again by name")
        kernel.supports(parse_spec(camp.spec))
    ledgers = [Ledger(d) for _, d in items]
    locked = []
    try:
        jobs = []
        env = environment()
        for (camp, _), ledger in zip(items, ledgers):
            ledger.lock()
            locked.append(ledger)
            kernel = kernels[camp.target]
            ledger.open(camp, kernel_digest(camp.target, kernel.version), reference_digest(camp.kind),
                        kernel.version, env)
            done = ledger.shards()
            todo = [r for r in camp.shards() if r not in done]
            if done and len(items) == 1:
                stream.write(f"refarith sweep: {len(done)} of {len(camp.shards())} shards already in the ledger "
                             "(verified), skipped\n")
            jobs.append((camp, ledger, todo))
        total_done = sum(len(c.shards()) - len(t) for c, _, t in jobs)
        if len(items) > 1 and total_done:
            stream.write(f"refarith sweep: {total_done} of {sum(len(c.shards()) for c, _, _ in jobs)} shards "
                         "already in the ledgers (verified), skipped\n")
        left = sum(len(t) for _, _, t in jobs) if stop_after is None else stop_after
        cut = []
        for camp, ledger, todo in jobs:
            take = todo[:max(0, left)]
            left -= len(take)
            cut.append((camp, ledger, take))
        n = sum(len(t) for _, _, t in cut)
        if label is None:
            label = f"sweep {items[0][0].spec} [{items[0][0].target}]" if len(items) == 1 else \
                f"sweep of {len(items)} campaigns"
        with Progress(n, label, enabled=progress, stream=stream, unit="shard") as bar:
            if engine == "local":
                for camp, ledger, todo in cut:
                    for lo, hi in todo:
                        ledger.write_shard(lo, hi, {**run_shard(camp.to_dict(), lo, hi), "retries": 0})
                        bar.update()
            elif n:
                _run_dask(cut, scheduler, workers, retries, bar, stream)
        out = []
        for (_, ledger, todo), (_, _, take) in zip(jobs, cut):
            out.append(None if len(take) < len(todo) else certificate(ledger))
        return out
    finally:
        for ledger in locked:
            ledger.unlock()


def _run_dask(jobs: list[tuple[Campaign, Ledger, list[tuple[int, int]]]], scheduler, workers, retries: int, bar,
              stream: TextIO) -> None:
    from distributed import as_completed

    client, cluster = _client(scheduler, workers, stream)
    try:
        link = getattr(client, "dashboard_link", None)
        nw = len(client.scheduler_info(n_workers=-1).get("workers", {})) if hasattr(client, "scheduler_info") else "?"
        stream.write(f"refarith sweep: Dask scheduler {client.scheduler.address}, {nw} workers"
                     + (f", dashboard {link}" if link else "") + "\n")
        stream.flush()
        futs = {}
        for camp, ledger, todo in jobs:
            prefix = f"refarith-shard-{ledger.digest()[:12]}"
            cd = camp.to_dict()
            for lo, hi in todo:
                key = f"{prefix}-{lo:012x}-{hi:012x}"
                futs[client.submit(run_shard, cd, lo, hi, key=key, retries=retries, pure=False)] = (camp, ledger, lo,
                                                                                                 hi)
        # results come with their completion (no gather round trip per shard), in batches of what finished together
        for batch in as_completed(futs, with_results=True, raise_errors=False).batches():
            results = []
            for fut, res in batch:
                camp, ledger, lo, hi = futs[fut]
                if fut.status != "finished":
                    e = res[1] if isinstance(res, tuple) and len(res) == 3 else res
                    which = f"{camp.spec}: " if len(jobs) > 1 else ""  # one of many campaigns: name it
                    if isinstance(e, RefarithError):
                        if which:
                            raise type(e)(f"{which}{e}") from None
                        raise e
                    raise EngineError(f"{which}shard {lo:#x}..{hi:#x} failed on every try: {type(e).__name__}: "
                                      f"{str(e).splitlines()[0][:200] if str(e) else ''}") from None
                results.append((fut, ledger, lo, hi, res))
            tries = client.run_on_scheduler(_extra_runs, [f.key for f, _ in batch], retries)
            for fut, ledger, lo, hi, res in results:
                ledger.write_shard(lo, hi, {**res, "retries": int(tries[fut.key])})
                fut.release()
                bar.update()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _extra_runs(keys: list[str], retries: int, dask_scheduler=None) -> dict[str, int]:
    """On the scheduler, for each finished task of a batch: how many more times than once it ran (workers lost
    while running it, retries after an exception).  One call per batch of results that arrived together, not one
    round trip per shard."""
    out = {}
    for key in keys:
        ts = dask_scheduler.tasks.get(key)
        out[key] = 0 if ts is None else int(ts.suspicious) + max(0, retries - int(ts.retries or 0))
    return out


def plan(camp: Campaign, workers: int = 1) -> dict:
    """Time one shard of ``camp`` in this process (after a one-chunk warm-up that builds tables and loads the
    kernel) and extrapolate the campaign's CPU time and its wall time on ``workers`` workers."""
    import time

    from refarith.certify.shards import CHUNK_BITS

    lo, hi = camp.shards()[0]
    run_shard(camp.to_dict(), lo, min(hi, lo + (1 << CHUNK_BITS)))
    t0 = time.process_time()
    res = run_shard(camp.to_dict(), lo, hi)
    cpu = time.process_time() - t0
    n = len(camp.shards())
    per_index = cpu / (hi - lo)
    return {"spec": camp.spec, "target": camp.target, "indices": camp.size, "shards": n,
            "shard_size": f"2^{camp.shard_bits}", "cpu_seconds_per_shard": round(cpu, 3),
            "cpu_seconds_per_2^32": round(per_index * (1 << 32), 1),
            "cpu_hours_total": round(per_index * camp.size / 3600, 3),
            f"wall_hours_on_{workers}_workers": round(per_index * camp.size / 3600 / workers, 3),
            "measured_shard_vectors": res["stage"]["vectors"]}


__all__ = ["CONNECT_TIMEOUT", "ENGINES", "WORKER_CONFIG", "EngineError", "LedgerError", "have_dask", "plan",
           "run_campaign", "run_campaigns"]
