"""scaled_mm: numpy GEMM reference throughput.

    python benchmarks/bench_gemm.py exact          # 1024^3 FP8 E4M3 exact-then-round (binary32 out), best of 3,
                                                   # 16 sampled outputs checked against the exact model
    python benchmarks/bench_gemm.py models [M K N] # every accumulator model and preset at M x K x N
                                                   # (default 256 1024 256), one run each
    python benchmarks/bench_gemm.py identify       # identify_gemm at 256x4096x256 over every candidate model
                                                   # and preset (two operand sets): numpy's float16 matmul (a
                                                   # match: screening spares the rest) and torch's bfloat16
                                                   # matmul (no match: every candidate in full)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refarith.exact import gemm as X  # noqa: E402
from refarith.fast import gemm as F  # noqa: E402

MODELS = ["exact", "sequential", "fma_chain", "pairwise", "blocked,nb=128", "split_k,splits=4", "kahan",
          "volta_tc", "ampere_tc", "hopper_fp8", "deepseek_v3"]


def fp8(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    c = rng.integers(0, 256, shape)
    c[(c & 0x7F) == 0x7F] = 0x38
    return c


def bench_exact() -> None:
    rng = np.random.default_rng(0)
    a, b = fp8(rng, (1024, 1024)), fp8(rng, (1024, 1024))
    spec = "scaled_mm(ocp_e4m3->binary32)"
    times = []
    for _ in range(3):
        t = time.perf_counter()
        d = F.scaled_mm(spec, a, b)
        times.append(time.perf_counter() - t)
    idx = rng.integers(0, 1024, (16, 2))
    for i, j in idx:
        want = X.scaled_mm(spec, a[i:i + 1].tolist(), b[:, j:j + 1].tolist())[0][0]
        assert d[i, j] == want, (i, j)
    runs = ", ".join(f"{x:.2f}" for x in times)
    print(f"exact 1024x1024x1024 ocp_e4m3->binary32: best {min(times):.2f} s (runs {runs}); "
          "16 sampled outputs equal the exact model")


def bench_models(m: int, k: int, n: int) -> None:
    rng = np.random.default_rng(1)
    a, b = fp8(rng, (m, k)), fp8(rng, (k, n))
    total = 0.0
    for model in MODELS:
        t = time.perf_counter()
        F.scaled_mm(f"scaled_mm(ocp_e4m3->binary32,accum={model})", a, b)
        dt = time.perf_counter() - t
        total += dt
        print(f"{model:20s} {m}x{k}x{n}: {dt:7.2f} s")
    print(f"all {len(MODELS)} models: {total:.2f} s")


def bench_identify() -> None:
    from refarith.certify.gemm import CANDIDATE_MODELS, identify_gemm

    for target in ("numpy:matmul_fp16", "torch:matmul_bf16"):
        t, c = time.perf_counter(), time.process_time()
        res = identify_gemm(target, shape=(256, 4096, 256))
        dt, dc = time.perf_counter() - t, time.process_time() - c
        full = sum(1 for r in res["candidates"] if not r.get("screened"))
        print(f"identify {target} 256x4096x256, {len(CANDIDATE_MODELS)} candidates x 2 operand sets: {dt:.1f} s "
              f"wall, {dc:.1f} s CPU; {full} candidates compared in full; matches "
              f"{[s.split('accum=')[1].split(',')[0] for s in res['matches']]}"
              + ("" if res["matches"] else f", closest {res['closest']['spec']}"))


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "exact"
    if what == "exact":
        bench_exact()
    elif what == "identify":
        bench_identify()
    else:
        dims = [int(x) for x in sys.argv[2:5]] or [256, 1024, 256]
        bench_models(*dims)
