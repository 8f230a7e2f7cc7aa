"""Sharded sweeps: a Dask LocalCluster against the single-process engine, per-shard overhead, 1 -> 2 workers.

    python benchmarks/bench_sweep.py [--spec 'add(binary16)'] [--target refarith.certify.torch_ops:add_binary16]
                                     [--pairs-bits 25] [--shard-bits 22] [--tiny 64]

One run, everything measured against everything else in it (the machine may be loaded: compare the ratios):

* throughput: 2^pairs-bits indices of the campaign, once with ``--engine local`` (this process) and once on a
  LocalCluster of 1 and of 2 workers; indices per second of wall time, and indices per CPU second (the shard
  files' own ``cpu_seconds``, summed over workers), so that per-core efficiency does not depend on how busy the
  machine was; and indices per CPU second of *every* process of the run (psutil: this process, which also runs
  the LocalCluster's scheduler and nannies, plus the worker processes, over the timed run), which charges the
  engine's own work -- submitting, shipping results, the ledger writes, the workers' event loops -- to the
  cluster path;
* overhead per shard: ``--tiny`` shards of 2^8 indices (almost no work) on a 2-worker LocalCluster, wall time
  per shard minus the shards' own wall time, and the cluster's start-up time separately;
* scaling: wall time with 2 workers over wall time with 1;
* two single processes at once (``local2``: each half of the indices, ``--engine local``, started together), the
  baseline of what two concurrent processes get from this machine's cores and caches without any engine: the
  2-worker cluster's CPU per index is compared with it as well as with one lone process.

Every run writes a fresh ledger in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def _cpu() -> dict[int, float]:
    """CPU seconds (user + system) so far of this process and of each live child process (the workers)."""
    import psutil

    me = psutil.Process()
    out = {}
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.Error:  # ended meanwhile
            pass
    return out


def _run(camp, engine, workers, root: Path, name: str, scheduler: str | None = None) -> dict:
    from refarith.certify import engine as eng

    led = root / name
    t0 = time.perf_counter()
    c0 = time.process_time()
    k0 = _cpu()
    eng.run_campaign(camp, led, engine=engine, workers=workers if engine == "dask" and not scheduler else None,
                     scheduler=scheduler, progress=False)
    wall = time.perf_counter() - t0
    k1 = _cpu()
    docs = [json.loads(p.read_bytes()) for p in (led / "shards").glob("*.json")]
    return {"wall": wall, "driver_cpu": time.process_time() - c0,
            "total_cpu": sum(v - k0[pid] for pid, v in k1.items() if pid in k0),
            "shard_cpu": sum(d["cpu_seconds"] for d in docs),
            "shard_wall": sum(d["seconds"] for d in docs), "shards": len(docs), "indices": camp.size}


def _half(spec: str, target: str, shard_bits: int, lo: int, hi: int, barrier, out) -> None:
    """One of the two concurrent single processes: warm up (tables, kernel), wait for the other, run [lo, hi)."""
    from refarith.certify.shards import make_campaign, run_shard

    camp = make_campaign(spec, target, shard_bits, lo, hi)
    run_shard(camp.to_dict(), lo, lo + (1 << 16))
    barrier.wait()
    c0 = time.process_time()
    docs = [run_shard(camp.to_dict(), a, b) for a, b in camp.shards()]
    out.put((sum(d["cpu_seconds"] for d in docs), sum(d["seconds"] for d in docs), len(docs),
             time.process_time() - c0))


def _run_two_local(args, lo: int) -> dict:
    """Both halves of the campaign in two plain processes (no engine, no ledger) started together, warm."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    half = 1 << (args.pairs_bits - 1)
    barrier, out = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_half, args=(args.spec, args.target, args.shard_bits, lo + k * half,
                                            lo + (k + 1) * half, barrier, out)) for k in range(2)]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    res = [out.get() for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    return {"wall": wall, "shard_cpu": sum(r[0] for r in res), "shard_wall": sum(r[1] for r in res),
            "shards": sum(r[2] for r in res), "indices": 2 * half, "total_cpu": sum(r[3] for r in res)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="add(binary16)")
    ap.add_argument("--target", default="refarith.certify.torch_ops:add_binary16")
    ap.add_argument("--pairs-bits", type=int, default=25, help="indices of the throughput runs: 2^N (default 25)")
    ap.add_argument("--shard-bits", type=int, default=22, help="shard size 2^N (default 22)")
    ap.add_argument("--tiny", type=int, default=64, help="tiny shards for the overhead run (default 64)")
    args = ap.parse_args()

    import dask
    import distributed

    from refarith.certify.engine import _client
    from refarith.certify.shards import make_campaign

    lo = 0x3C000000
    camp = make_campaign(args.spec, args.target, args.shard_bits, lo, lo + (1 << args.pairs_bits))
    tiny = make_campaign(args.spec, args.target, 8, lo, lo + args.tiny * 256)
    print(f"# bench_sweep: {platform.node()} {os.cpu_count()} cores, dask {dask.__version__}, distributed "
          f"{distributed.__version__}, {args.spec} on {args.target}, 2^{args.pairs_bits} indices in shards of "
          f"2^{args.shard_bits}; load average {os.getloadavg()[0]:.1f} at start")
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        _run(make_campaign(args.spec, args.target, 16, lo, lo + (1 << 16)), "local", None, root, "warm")
        t0 = time.perf_counter()
        client, cluster = _client(None, 2, None)
        client.close()
        cluster.close()
        startup = time.perf_counter() - t0
        res = {"local": _run(camp, "local", None, root, "local")}
        for n in (1, 2):  # a warm cluster: every worker has loaded the kernel and built its tables
            client, cluster = _client(None, n, None)
            try:
                addr = cluster.scheduler_address
                _run(make_campaign(args.spec, args.target, 12, lo, lo + (n << 16)), "dask", n, root, f"warm{n}", addr)
                res[f"dask{n}"] = _run(camp, "dask", n, root, f"dask{n}", addr)
                if n == 2:
                    res["tiny_dask2"] = _run(tiny, "dask", n, root, "tiny_dask2", addr)
            finally:
                client.close()
                cluster.close()
        res["tiny_local"] = _run(tiny, "local", None, root, "tiny_local")
        res["local2"] = _run_two_local(args, lo)
        load.append(os.getloadavg()[0])
    print(f"load average {load[0]:.1f} at start, {load[1]:.1f} at end")
    print("| run | wall s | indices/s (wall) | indices per CPU s (shards) | shard CPU s | indices per CPU s (all "
          "processes) | CPU s (all processes) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for k in ("local", "local2", "dask1", "dask2"):
        r = res[k]
        tot = f"{r['indices'] / r['total_cpu']:.3g} | {r['total_cpu']:.1f}"
        print(f"| {k} | {r['wall']:.1f} | {r['indices'] / r['wall']:.3g} | {r['indices'] / r['shard_cpu']:.3g} | "
              f"{r['shard_cpu']:.1f} | {tot} |")
    loc, d1, d2 = res["local"], res["dask1"], res["dask2"]
    per_core_cpu = (d2["indices"] / d2["shard_cpu"]) / (loc["indices"] / loc["shard_cpu"])
    per_core_total = (d2["indices"] / d2["total_cpu"]) / (loc["indices"] / loc["total_cpu"])
    print(f"LocalCluster(2) per-core throughput / single process by the CPU of all processes: {per_core_total:.3f} "
          f"(driver {d2['driver_cpu']:.1f} s of {d2['total_cpu']:.1f} s; 1 worker: "
          f"{(d1['indices'] / d1['total_cpu']) / (loc['indices'] / loc['total_cpu']):.3f})")
    per_core_wall = (d2["indices"] / d2["wall"] / 2) / (loc["indices"] / loc["wall"])
    print(f"LocalCluster(2) per-core throughput / single process: {per_core_cpu:.3f} by CPU time, "
          f"{per_core_wall:.3f} by wall time (warm workers; a cluster starts in {startup:.1f} s)")
    l2 = res["local2"]
    print(f"LocalCluster(2) per-core throughput / two concurrent single processes: "
          f"{(d2['indices'] / d2['shard_cpu']) / (l2['indices'] / l2['shard_cpu']):.3f} by the shards' CPU, "
          f"{(d2['indices'] / d2['total_cpu']) / (l2['indices'] / l2['total_cpu']):.3f} by the CPU of all processes")
    print(f"scaling 1 -> 2 workers (wall): {d1['wall'] / d2['wall']:.2f}x")
    t = res["tiny_dask2"]
    over = (t["wall"] - t["shard_wall"] / 2) / t["shards"]
    print(f"overhead per shard (2 warm workers, {t['shards']} shards of 2^8): {1000 * over:.1f} ms; single process: "
          f"{1000 * (res['tiny_local']['wall'] - res['tiny_local']['shard_wall']) / t['shards']:.1f} ms")
    print(f"CPU per tiny shard, all processes, less the shards' own: 2 workers "
          f"{1000 * (t['total_cpu'] - t['shard_cpu']) / t['shards']:.1f} ms; single process "
          f"{1000 * (res['tiny_local']['total_cpu'] - res['tiny_local']['shard_cpu']) / t['shards']:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
