"""Triton block kernels (MX e4m3 and mxfp4 quantize, NVFP4 quantize, both also with stochastic element rounding,
TFLite requantization) against refarith's torch backend on the same device and the numpy backend, in one run.

    python benchmarks/bench_triton_blocks.py [--n 1048576] [--repeat 3] [--device cpu|cuda]

On a CUDA device the Triton kernels are compiled; on CPU they run under Triton's interpreter (numpy on whole
tiles), so CPU figures measure the interpreter, not device code.  Every rate is elements per second, best of
``--repeat`` timed runs after one warm-up run (which also traces and compiles); the CPU process time of the timed
runs is printed next to it (wall times are unreliable on a shared machine).  Ratios are to the torch backend.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np


def best(fn, repeat: int, sync) -> tuple[float, float]:
    """(best wall seconds, mean CPU seconds) of ``repeat`` runs after a warm-up."""
    fn()
    sync()
    walls, cpus = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        sync()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), sum(cpus) / len(cpus)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 20, help="elements (default 2^20)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch
    import triton

    from refarith.exact import requant as erq
    from refarith.fast import mx as fmx
    from refarith.fast import nvfp4 as fnv
    from refarith.fast import requant as frq
    from refarith.fast import triton_blocks as tbk

    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu")
        return 2
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    cols = 4096
    x = np.random.default_rng(0).standard_normal((max(1, args.n // cols), cols)).astype(np.float32)
    n = x.size
    xt = torch.from_numpy(x).to(dev)
    acc = np.random.default_rng(1).integers(-2 ** 31, 2 ** 31, n)
    acct = torch.from_numpy(acc).to(dev)
    m, sh = erq.multiplier_for(0.0123, "tflite_double_rounding")
    r = np.random.default_rng(2).integers(0, 256, x.shape)
    rt = torch.from_numpy(r).to(dev)
    c4 = dict(rounding="sr", rand_bits=4, sr_variant="c")
    te = dict(rounding="sr", rand_bits=8, sr_variant="te_e2m1_8")
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, triton "
          f"{triton.__version__}, device {dev}{' (Triton interpreter)' if dev.type == 'cpu' else ''}, n = {n}")
    rows = [
        ("mx_quantize e4m3", lambda: tbk.mx_quantize(xt, "ocp_e4m3"),
         lambda: fmx.mx_quantize(xt, "ocp_e4m3", backend="torch"), lambda: fmx.mx_quantize(x, "ocp_e4m3")),
        ("mx_quantize e2m1", lambda: tbk.mx_quantize(xt, "ocp_e2m1"),
         lambda: fmx.mx_quantize(xt, "ocp_e2m1", backend="torch"), lambda: fmx.mx_quantize(x, "ocp_e2m1")),
        ("nvfp4_quantize", lambda: tbk.nvfp4_quantize(xt),
         lambda: fnv.nvfp4_quantize(xt, backend="torch"), lambda: fnv.nvfp4_quantize(x)),
        ("mx_quantize e2m1 sr=c,k=4", lambda: tbk.mx_quantize(xt, "ocp_e2m1", rand=rt % 16, **c4),
         lambda: fmx.mx_quantize(xt, "ocp_e2m1", backend="torch", rand=rt % 16, **c4),
         lambda: fmx.mx_quantize(x, "ocp_e2m1", rand=r % 16, **c4)),
        ("nvfp4_quantize sr=te_e2m1_8", lambda: tbk.nvfp4_quantize(xt, rand=rt, **te),
         lambda: fnv.nvfp4_quantize(xt, backend="torch", rand=rt, **te), lambda: fnv.nvfp4_quantize(x, rand=r, **te)),
        ("requantize tflite_double", lambda: tbk.requantize(acct, m, sh, "tflite_double_rounding"),
         lambda: frq.requantize(acct, m, sh, "tflite_double_rounding"),
         lambda: frq.requantize(acc, m, sh, "tflite_double_rounding")),
    ]
    print(f"{'kernel':28s} {'triton el/s':>12s} {'cpu s':>7s} {'torch el/s':>12s} {'cpu s':>7s} {'numpy el/s':>12s}"
          f" {'triton/torch':>12s}")
    for name, tr, to, nu in rows:
        wt, ct = best(tr, args.repeat, sync)
        wo, co = best(to, args.repeat, sync)
        wn, _ = best(nu, args.repeat, lambda: None)
        print(f"{name:28s} {n / wt:12.3g} {ct:7.2f} {n / wo:12.3g} {co:7.2f} {n / wn:12.3g} {wo / wt:12.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
