"""Peak memory of the cast and block kernels: extra resident memory per call, in units of the input's size.

    python benchmarks/bench_memory.py [--n 100000000] [--only NAME[,NAME...]] [--json FILE]

Each kernel runs in a fresh child process: the input (``--n`` float32 values,
standard normal, filled in slices so that making it needs no temporary) is
built, the kernel runs once on a small slice (tables and caches are built
then, and count as fixed costs, not as temporaries), the peak resident set
size is reset (Linux ``/proc/self/clear_refs``) and read after one call on the
whole input (``VmHWM``).  ``extra`` = (that peak - the resident size just
before the call) / input bytes; ``temporaries``
= extra minus the result's own size (in input sizes); ``numpy peak`` = the
peak of numpy's allocations during the call (tracemalloc; numpy kernels
only, result included), in input sizes.  The target: no kernel
allocates more than 4 temporaries of the input's size.  torch runs with one
thread.  Figures are per process on this machine's allocator (glibc malloc,
which returns large blocks to the system when freed).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import resource
import subprocess
import sys
import tracemalloc
from typing import Any

KERNELS = {
    "numpy encode ocp_e4m3": "numpy",
    "numpy encode ocp_e2m1": "numpy",
    "numpy decode ocp_e4m3": "numpy",
    "numpy encode ocp_e4m3 sr (k=8)": "numpy",
    "numpy mx_quantize mxfp8_e4m3": "numpy",
    "numpy mx_quantize mxfp4": "numpy",
    "numpy nvfp4_quantize": "numpy",
    "torch encode ocp_e4m3": "torch",
    "torch decode ocp_e4m3": "torch",
    "torch encode bfloat16 (cast kernel)": "torch",
    "torch mx_quantize mxfp8_e4m3": "torch",
    "torch mx_quantize mxfp4": "torch",
    "torch nvfp4_quantize": "torch",
}


def _status(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS: now, VmHWM: peak), in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset the peak resident set size (Linux: writing 5 to /proc/self/clear_refs); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _trim() -> None:
    """Return the allocator's free memory to the system (glibc malloc_trim), so that the resident size before a
    call holds no reusable free blocks."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _peak() -> int:
    try:
        return _status("VmHWM")
    except (OSError, RuntimeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _nbytes(r: Any) -> int:
    if isinstance(r, tuple):
        return sum(_nbytes(v) for v in r if v is not None)
    if hasattr(r, "nbytes"):
        return int(r.nbytes)
    if hasattr(r, "element_size"):
        return int(r.element_size() * r.numel())
    return 0


def child(name: str, n: int) -> dict[str, Any]:
    """Run one kernel on n float32 values in this process; return its memory figures."""
    import numpy as np

    from refarith import fast
    from refarith.fast import mx as fmx
    from refarith.fast import nvfp4 as fnv

    cols = 4096
    decode = "decode" in name
    x = np.empty(n, dtype=np.uint8 if decode else np.float32)  # decode: the codes of the values, made in slices
    rng = np.random.default_rng(0)
    for a in range(0, n, 1 << 20):
        b = min(a + (1 << 20), n)
        v = rng.standard_normal(b - a, dtype=np.float32)
        x[a:b] = fast.encode(v, "ocp_e4m3") if decode else v
    x2 = x.reshape(-1, cols) if n % cols == 0 else x.reshape(1, -1)
    arg: Any = x2
    small: Any = x2[:1]
    if "sr" in name:
        r = np.zeros(n, dtype=np.uint8)
        for a in range(0, n, 1 << 20):
            b = min(a + (1 << 20), n)
            r[a:b] = rng.integers(0, 256, b - a, dtype=np.uint8)
        arg = (x, r)
        small = (x[:cols], r[:cols])
    if name.startswith("torch"):
        import torch

        torch.set_num_threads(1)
        conv = (lambda v: tuple(torch.from_numpy(t) for t in v)) if isinstance(arg, tuple) else torch.from_numpy
        arg, small = conv(arg), conv(small)
    backend = "torch" if name.startswith("torch") else "numpy"
    if "decode" in name:
        def run(v):
            return fast.decode(v, "ocp_e4m3", backend=backend)
    elif "sr" in name:
        def run(v):
            return fast.encode(v[0], "ocp_e4m3", rounding="sr", rand=v[1], rand_bits=8, backend=backend)
    elif "encode" in name:
        tgt = name.split()[2]

        def run(v):
            return fast.encode(v, tgt, backend=backend)
    elif "mx_quantize" in name:
        el = name.split()[2]

        def run(v):
            return fmx.mx_quantize(v, el, backend=backend)
    else:
        def run(v):
            return fnv.nvfp4_quantize(v, backend=backend)
    run(small)
    in_bytes = _nbytes(arg)
    _trim()
    reset = _reset_peak()
    before = _status("VmRSS") if reset else _peak()
    tracemalloc.start()  # numpy reports its array allocations to tracemalloc (torch does not)
    res = run(arg)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    after = _peak()
    out_bytes = _nbytes(res)
    extra = (after - before) / in_bytes
    return {"kernel": name, "n": n, "input_mb": in_bytes / 2**20, "result_mb": out_bytes / 2**20,
            "rss_before_mb": before / 2**20, "peak_after_mb": after / 2**20, "extra_inputs": extra,
            "temporaries_inputs": extra - out_bytes / in_bytes, "traced_peak_inputs": traced / in_bytes}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000_000, help="float32 elements (default 1e8)")
    ap.add_argument("--only", help="comma-separated kernel names (default: all)")
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.n)))
        return 0
    names = list(KERNELS) if not args.only else [s.strip() for s in args.only.split(",")]
    unknown = [s for s in names if s not in KERNELS]
    if unknown:
        print(f"unknown kernel {unknown[0]!r}; known: {', '.join(KERNELS)}", file=sys.stderr)
        return 2
    rows = []
    print(f"# {args.n} float32 elements per kernel; extra peak RSS per call in input sizes")
    print(f"{'kernel':40s} {'input MB':>9s} {'result MB':>9s} {'extra':>7s} {'temporaries':>11s} {'numpy peak':>10s}")
    for name in names:
        p = subprocess.run([sys.executable, __file__, "--n", str(args.n), "--child", name], capture_output=True,
                           text=True)
        if p.returncode != 0:
            print(f"{name:40s} failed: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}")
            continue
        row = json.loads(p.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{name:40s} {row['input_mb']:9.0f} {row['result_mb']:9.0f} {row['extra_inputs']:7.2f} "
              f"{row['temporaries_inputs']:11.2f} {row['traced_peak_inputs']:10.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
