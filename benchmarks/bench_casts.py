"""Cast throughput: refarith (numpy, torch) against ml_dtypes, torch's native float8 casts and gfloat.

    python benchmarks/bench_casts.py [--n N] [--json FILE] [--gfloat-n M] [--repeat R]

For each target (ocp_e4m3, ocp_e5m2, ocp_e3m2, ocp_e2m3, ocp_e2m1, e8m0) and N
float32 values (standard normal scaled to the target's range, 1% outliers a
thousand times larger; absolute values for the unsigned e8m0) it times, in the
same run: refarith numpy encode (float32 -> codes) and decode (codes ->
float32), refarith torch encode/decode (CPU), ml_dtypes ``astype`` both ways,
torch ``.to(float8_*)`` both ways where torch has the dtype, and gfloat
``round_ndarray`` on a slice of ``--gfloat-n`` values (gfloat is slow; its rate
is reported per element all the same, and falls as the slice grows).  Each figure is the best of ``--repeat`` runs in
elements per second; the refarith, ml_dtypes and torch measurements of a target are timed in turn within each
round, so they meet the same load.  torch runs with one thread, like numpy.  The refarith
encodes use the default semantics (rne, the target's default overflow,
nan_policy='error', negative='error'), so they include the SpecialValueError
check.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

TARGETS = ["ocp_e4m3", "ocp_e5m2", "ocp_e3m2", "ocp_e2m3", "ocp_e2m1", "e8m0"]
ML_NAMES = {"ocp_e4m3": "float8_e4m3fn", "ocp_e5m2": "float8_e5m2", "ocp_e3m2": "float6_e3m2fn",
            "ocp_e2m3": "float6_e2m3fn", "ocp_e2m1": "float4_e2m1fn", "e8m0": "float8_e8m0fnu"}
TORCH_NAMES = {"ocp_e4m3": "float8_e4m3fn", "ocp_e5m2": "float8_e5m2", "e8m0": "float8_e8m0fnu"}
GFLOAT_NAMES = {t: f"format_info_{t}" for t in TARGETS} | {"e8m0": "format_info_ocp_e8m0"}


TIMER: Callable[[], float] = time.perf_counter


def best(fn: Callable[[], Any], repeat: int) -> float:
    """Smallest time of ``repeat`` calls (after one warm-up call), by TIMER (wall, or this process's CPU time
    with ``--timer cpu``)."""
    fn()
    ts = []
    for _ in range(repeat):
        t0 = TIMER()
        fn()
        ts.append(TIMER() - t0)
    return min(ts)


def data(target: str, n: int, seed: int = 0) -> np.ndarray:
    from refarith.formats import get_format

    f = get_format(target)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n).astype(np.float32) * np.float32(min(float(f.max) / 4, 1e4))
    k = n // 100
    x[:k] *= np.float32(1000.0)
    rng.shuffle(x)
    return np.abs(x) if not f.signed else x


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine()}
    from importlib import metadata

    for mod in ("refarith", "ml_dtypes", "torch", "gfloat"):
        try:
            out[mod] = metadata.version(mod)
        except metadata.PackageNotFoundError:
            out[mod] = "not installed"
    return out


def best_of(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Smallest time of each function over ``repeat`` rounds (after one warm-up call each), by TIMER; within a
    round the functions run in turn, so every peer sees the same load (sequential best-of runs on a shared
    machine can meet different loads and skew the ratios)."""
    for fn in fns.values():
        fn()
    ts: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = TIMER()
            fn()
            ts[k].append(TIMER() - t0)
    return {k: min(v) for k, v in ts.items()}


def bench_target(tgt: str, x: np.ndarray, args: argparse.Namespace, fast: Any, ml_dtypes: Any, torch: Any,
                 gfloat: Any) -> dict[str, float]:
    """Every measurement for one target; prints one line each and returns {name: elements/s, ratios}."""
    r: dict[str, float] = {}

    def put(name: str, seconds: float, n: int) -> None:
        r[name] = n / seconds
        print(f"{tgt:10s} {name:28s} {n / seconds / 1e6:10.1f}", flush=True)

    codes = fast.encode(x, tgt)
    fns: dict[str, Callable[[], Any]] = {"refarith_numpy_encode": lambda: fast.encode(x, tgt),
                                         "refarith_numpy_decode": lambda: fast.decode(codes, tgt)}
    if ml_dtypes is not None and hasattr(ml_dtypes, ML_NAMES[tgt]):
        mdt = getattr(ml_dtypes, ML_NAMES[tgt])
        y = x.astype(mdt)
        fns["ml_dtypes_encode"] = lambda: x.astype(mdt)
        fns["ml_dtypes_decode"] = lambda: y.astype(np.float32)
    if torch is not None:
        tx = torch.from_numpy(x)
        tcodes = fast.encode(tx, tgt, backend="torch")
        fns["refarith_torch_encode"] = lambda: fast.encode(tx, tgt, backend="torch")
        fns["refarith_torch_decode"] = lambda: fast.decode(tcodes, tgt, backend="torch")
        tname = TORCH_NAMES.get(tgt)
        if tname is not None and hasattr(torch, tname):
            tdt = getattr(torch, tname)
            ty = tx.to(tdt)
            fns["torch_native_encode"] = lambda: tx.to(tdt)
            fns["torch_native_decode"] = lambda: ty.to(torch.float32)
    for name, sec in best_of(fns, args.repeat).items():
        put(name, sec, x.size)
    if gfloat is not None:
        import gfloat.formats as gformats

        fi = getattr(gformats, GFLOAT_NAMES[tgt], None)
        if fi is not None:
            xs = x[: args.gfloat_n].astype(np.float64)
            sat = not (fi.num_high_nans or fi.num_infs)  # gfloat refuses sat=False for FP6/FP4 (no inf/NaN)
            put("gfloat_round_ndarray(slice)", best(lambda: gfloat.round_ndarray(fi, xs, sat=sat), 1), xs.size)
    if "ml_dtypes_encode" in r:
        r["ratio_encode_vs_ml_dtypes"] = r["refarith_numpy_encode"] / r["ml_dtypes_encode"]
        r["ratio_decode_vs_ml_dtypes"] = r["refarith_numpy_decode"] / r["ml_dtypes_decode"]
    if "gfloat_round_ndarray(slice)" in r:
        r["ratio_encode_vs_gfloat"] = r["refarith_numpy_encode"] / r["gfloat_round_ndarray(slice)"]
    if "torch_native_encode" in r:
        r["ratio_encode_vs_torch_native"] = r["refarith_numpy_encode"] / r["torch_native_encode"]
        r["ratio_decode_vs_torch_native"] = r["refarith_numpy_decode"] / r["torch_native_decode"]
    for k in ("ratio_encode_vs_ml_dtypes", "ratio_decode_vs_ml_dtypes", "ratio_encode_vs_gfloat",
              "ratio_encode_vs_torch_native", "ratio_decode_vs_torch_native"):
        if k in r:
            print(f"{tgt:10s} {k:28s} {r[k]:10.2f}x", flush=True)
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000, help="float32 values per target (default 1e7)")
    ap.add_argument("--gfloat-n", type=int, default=1_000_000, help="slice timed for gfloat (default 1e6)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per measurement; the best counts")
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                    help="wall clock, or this process's CPU time (steadier on a shared machine; every kernel here "
                         "runs on one thread)")
    args = ap.parse_args(argv)
    global TIMER
    TIMER = time.process_time if args.timer == "cpu" else time.perf_counter

    from refarith import fast

    try:
        import ml_dtypes
    except ImportError:
        ml_dtypes = None
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    try:
        import gfloat
    except ImportError:
        gfloat = None

    results: dict[str, Any] = {"n": args.n, "gfloat_n": args.gfloat_n, "repeat": args.repeat, "timer": args.timer,
                               "versions": versions(), "torch_threads": 1, "targets": {}}
    print(f"# {args.n} float32 values per target; best of {args.repeat} ({args.timer} time); elements/s (M = 1e6)")
    print("# versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()))
    hdr = f"{'target':10s} {'measure':28s} {'Melem/s':>10s}"
    print(hdr)
    for tgt in TARGETS:
        results["targets"][tgt] = bench_target(tgt, data(tgt, args.n), args, fast, ml_dtypes, torch, gfloat)
    print("# shared machine: figures are noisy")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
