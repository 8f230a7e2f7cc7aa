"""Stochastic rounding: numpy SR cast throughput against the RNE cast of the same target, and the time of a
statistical certification (``--sr-samples 10000``) of the example SR kernels.

    python benchmarks/bench_sr.py            # both parts
    python benchmarks/bench_sr.py casts      # the throughput table only
    python benchmarks/bench_sr.py casts --timer cpu   # by this process's CPU time (steadier on a shared machine)
    python benchmarks/bench_sr.py blocks --timer cpu  # MX and NVFP4 with SR elements against their RNE kernels
    python benchmarks/bench_sr.py torch --timer cpu   # the torch backend's SR casts against numpy's
    python benchmarks/bench_sr.py fdot --timer cpu    # dot products with an SR accumulator against RNE

The SR and RNE casts of one target are timed in alternation (best of 5 rounds each), so both see the same load.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_casts  # noqa: E402  (best_of: peers timed in turn within each round, by bench_casts.TIMER)

from refarith import fast  # noqa: E402

N = 1 << 22


def casts() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(N) * 4).astype(np.float32)
    r = rng.integers(0, 256, N, dtype=np.uint8)
    print("| target | RNE M/s | sr variant | SR (k=8) M/s | SR / RNE |\n|---|---:|---|---:|---:|")
    for dst in ("ocp_e4m3", "ocp_e5m2", "ocp_e2m1"):
        variants = ("a", "b", "c", "c_odd") + (("te_e2m1_8",) if dst == "ocp_e2m1" else ())
        fns = {"rne": lambda d=dst: fast.encode(x, d)}
        for v in variants:
            fns[v] = lambda d=dst, v=v: fast.encode(x, d, rounding="sr", rand=r, rand_bits=8, sr_variant=v)
        t = bench_casts.best_of(fns, 5)
        for v in variants:
            print(f"| {dst} | {N / t['rne'] / 1e6:.1f} | {v} | {N / t[v] / 1e6:.1f} | {t['rne'] / t[v]:.2f} |")


def torch_casts() -> None:
    """torch SR casts (float32 tensors, one thread) against the numpy SR cast of the same target and variant."""
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(N) * 4).astype(np.float32)
    r = rng.integers(0, 256, N, dtype=np.uint8)
    xt, rt = torch.from_numpy(x), torch.from_numpy(r)
    print("| target | sr variant | numpy SR (k=8) M/s | torch SR M/s | torch / numpy |\n|---|---|---:|---:|---:|")
    for dst in ("ocp_e4m3", "ocp_e5m2", "ocp_e2m1", "e8m0"):
        for v in ("a", "b", "c", "c_odd"):
            kw = {"rounding": "sr", "rand_bits": 8, "sr_variant": v}
            if dst == "e8m0":
                kw["negative"] = "clamp"
            t = bench_casts.best_of({"numpy": lambda d=dst, kw=kw: fast.encode(x, d, rand=r, **kw),
                                     "torch": lambda d=dst, kw=kw: fast.encode(xt, d, rand=rt, backend="torch",
                                                                               **kw)}, 5)
            print(f"| {dst} | {v} | {N / t['numpy'] / 1e6:.1f} | {N / t['torch'] / 1e6:.1f} | "
                  f"{t['numpy'] / t['torch']:.2f} |")


def blocks() -> None:
    from refarith.fast.mx import mx_quantize
    from refarith.fast.nvfp4 import nvfp4_quantize

    rng = np.random.default_rng(0)
    x = rng.standard_normal((N // 4096, 4096)).astype(np.float32)
    r = rng.integers(0, 256, x.shape, dtype=np.int64)
    print("| op | sr variant | RNE M/s | SR (k=8) M/s | SR / RNE |\n|---|---|---:|---:|---:|")
    cases = [("mx_quantize(ocp_e4m3)", "a", lambda **kw: mx_quantize(x, "ocp_e4m3", **kw)),
             ("mx_quantize(ocp_e2m1)", "c", lambda **kw: mx_quantize(x, "ocp_e2m1", **kw)),
             ("nvfp4_quantize()", "te_e2m1_8", lambda **kw: nvfp4_quantize(x, **kw))]
    for name, v, fn in cases:
        t = bench_casts.best_of({"rne": fn, "sr": lambda fn=fn, v=v: fn(rounding="sr", rand=r, rand_bits=8,
                                                                         sr_variant=v)}, 3)
        print(f"| {name} | {v} | {N / t['rne'] / 1e6:.1f} | {N / t['sr'] / 1e6:.1f} | {t['rne'] / t['sr']:.2f} |")


def fdot() -> None:
    from refarith.fast.fdot import fdot as fd

    rng = np.random.default_rng(0)
    rows, n = N // 128, 32
    print("| fdot | sr variant | RNE M products/s | SR (k=16) M products/s | SR / RNE |\n|---|---|---:|---:|---:|")
    for fmt, acc, v in (("ocp_e4m3", "binary32", "a"), ("ocp_e4m3", "binary32", "c"), ("ocp_e5m2", "bfloat16", "b")):
        x, y = rng.integers(0, 0x7B, (rows, n)), rng.integers(0, 0x7B, (rows, n))
        r = rng.integers(0, 1 << 16, (rows, n), dtype=np.int64)
        t = bench_casts.best_of({"rne": lambda x=x, y=y, fmt=fmt, acc=acc: fd(x, y, fmt, acc),
                                 "sr": lambda x=x, y=y, fmt=fmt, acc=acc, r=r, v=v: fd(
                                     x, y, fmt, acc, rounding="sr", rand=r, rand_bits=16, sr_variant=v)}, 3)
        m = rows * n / 1e6
        print(f"| {fmt} -> {acc} | {v} | {m / t['rne']:.1f} | {m / t['sr']:.1f} | {t['rne'] / t['sr']:.2f} |")


def statistical() -> None:
    from docs.examples import sr_kernels
    from refarith.certify.adapters import user_kernel
    from refarith.certify.runner import certify

    spec = "cast(binary32->ocp_e4m3,rounding=sr,k=8)"
    print("| kernel | verdict | inputs | tested | failed | seconds (kernel) |\n|---|---|---:|---:|---:|---:|")
    for name in ("correct", "rounds_down", "drops_carry", "fast_biased", "returns_zero"):
        k = user_kernel(sr_kernels.make(name, "ocp_e4m3", 8, 1), name)
        t = time.perf_counter()
        c = certify(k, spec, sr_samples=10000)
        s = c.statistical
        print(f"| {name} | {c.verdict} | {s['inputs']} | {s['tested_inputs']} | {s['failed_inputs']} | "
              f"{time.perf_counter() - t:.1f} ({s['kernel_seconds']:.1f}) |")


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--timer" in args:
        i = args.index("--timer")
        if i + 1 >= len(args) or args[i + 1] not in ("wall", "cpu"):
            sys.exit("bench_sr.py: --timer takes wall or cpu")
        bench_casts.TIMER = time.process_time if args[i + 1] == "cpu" else time.perf_counter
        del args[i:i + 2]
    what = args or ["casts", "statistical"]
    if "casts" in what:
        casts()
    if "torch" in what:
        torch_casts()
    if "blocks" in what:
        blocks()
    if "fdot" in what:
        fdot()
    if "statistical" in what:
        statistical()
