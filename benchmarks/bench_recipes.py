"""Quantization-recipe throughput: refarith numpy (and torch) against the peers that implement the same recipe on
CPU, side by side in one run.

    python benchmarks/bench_recipes.py [--n 4194304] [--repeat 3] [--timer wall|cpu]

* blockwise FP8, 1x128 tiles, torchao's rule (``fp8_block_quantize(ocp_e4m3,division=scale,eps=torchao)``):
  refarith numpy / torch vs torchao's CPU reference ``torch_blockwise_scale_act_quant_lhs``; DeepGEMM's rule
  (the default spec) vs the same formula written in torch ops (DeepGEMM's ``per_token_cast_to_fp8`` shape).
* per-tensor FP8 current scaling (``fp8_current_scale(ocp_e4m3)``): refarith numpy vs torchao's
  ``tensor_to_scale`` + ``to_fp8_saturated`` (torchao.float8).
* Hadamard rotation, n = 128, binary32 butterfly (``hadamard_rotate(binary32,n=128,order=butterfly)``): refarith
  numpy vs ``x @ H / sqrt(n)`` in numpy float32 and in torch (a matrix product, the peer form when no fast-WHT
  kernel runs on CPU: torchao's Hadamard kernels are Triton, GPU only).

Every rate is elements per second, best of ``--repeat`` timed runs after one warm-up run, the candidates
interleaved (round k times every candidate once), so a change of load hits all of them alike; torch runs with
one thread, and so does numpy's BLAS (OPENBLAS_NUM_THREADS=1 unless set).  ``--timer cpu`` times this process's
CPU seconds (steadier on a shared machine).  Ratios compare rates of the same run.  Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads its BLAS: the matrix-product peer, 1 thread

import numpy as np  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 22, help="elements (default 4M)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                    help="wall clock, or this process's CPU time (steadier on a shared machine; one thread)")
    args = ap.parse_args()
    timer = time.process_time if args.timer == "cpu" else time.perf_counter

    import torch

    from refarith.fast import fp8block, fp8scale, rotation

    torch.set_num_threads(1)
    cols = 4096
    x = np.random.default_rng(0).standard_normal((args.n // cols, cols)).astype(np.float32)
    xt = torch.from_numpy(x)
    n = x.size
    versions = {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__}
    cands: dict[str, object] = {}

    def rate(name: str, fn) -> None:
        cands[name] = fn

    # blockwise FP8
    rate("block torchao-rule refarith numpy",
         lambda: fp8block.fp8_block_quantize(x, "ocp_e4m3", "1x128", "fp32", "scale", "torchao"))
    rate("block torchao-rule refarith torch",
         lambda: fp8block.fp8_block_quantize(xt, "ocp_e4m3", "1x128", "fp32", "scale", "torchao", "torch"))
    rate("block deepgemm-rule refarith numpy", lambda: fp8block.fp8_block_quantize(x))

    def deepgemm_torch():
        xv = xt.view(xt.shape[0], -1, 128)
        amax = xv.abs().float().amax(dim=2).clamp(1e-4)
        sf = amax / 448.0
        return (xv * (1.0 / sf.unsqueeze(2))).to(torch.float8_e4m3fn), sf

    rate("block deepgemm-rule torch formula", deepgemm_torch)
    try:
        import logging
        import warnings

        logging.disable(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torchao
            from torchao.float8 import float8_utils
            from torchao.prototype.blockwise_fp8_training import kernels
        logging.disable(logging.NOTSET)
        versions["torchao"] = torchao.__version__
        rate("block torchao torch_blockwise_scale_act_quant_lhs",
             lambda: kernels.torch_blockwise_scale_act_quant_lhs(xt, 128))
        rate("tensor torchao tensor_to_scale+to_fp8_saturated",
             lambda: float8_utils.to_fp8_saturated(
                 xt * float8_utils.tensor_to_scale(xt, torch.float8_e4m3fn), torch.float8_e4m3fn))
    except ImportError:
        versions["torchao"] = "not installed"

    # per-tensor current scaling (the whole array is one tensor)
    flat = x.reshape(1, -1)

    def current_np():
        amax = fp8scale.fmax_amax(flat)
        s = fp8scale.current_scale(amax, "ocp_e4m3")
        return fp8scale.quantize_with_scale(flat, s, "ocp_e4m3")

    rate("tensor refarith numpy fp8_current_scale", current_np)

    # Hadamard rotation n = 128
    h = np.array(rotation._rot.sylvester(128), np.float32) / np.float32(np.sqrt(128.0))
    ht = torch.from_numpy(h)
    x128 = x.reshape(-1, 128)
    x128t = xt.reshape(-1, 128)
    rate("hadamard refarith numpy butterfly", lambda: rotation.hadamard_rotate(x, 128, order="butterfly"))
    rate("hadamard refarith torch butterfly",
         lambda: rotation.hadamard_rotate(xt, 128, order="butterfly", backend="torch"))
    rate("hadamard numpy x @ H/sqrt(n)", lambda: x128 @ h)
    rate("hadamard torch x @ H/sqrt(n)", lambda: x128t @ ht)

    best = {k: float("inf") for k in cands}
    for fn in cands.values():  # warm-up
        fn()
    for _ in range(args.repeat):
        for k, fn in cands.items():
            t0 = timer()
            fn()
            best[k] = min(best[k], timer() - t0)
    rates = {k: n / t for k, t in best.items()}
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"elements: {n}, best of {args.repeat} interleaved, {args.timer} time")
    for k, v in rates.items():
        print(f"  {k:55s} {v / 1e6:9.1f} M/s")

    def ratio(a: str, b: str) -> None:
        if a in rates and b in rates:
            print(f"ratio {a} / {b}: {rates[a] / rates[b]:.2f}x")

    ratio("block torchao-rule refarith numpy", "block torchao torch_blockwise_scale_act_quant_lhs")
    ratio("block deepgemm-rule refarith numpy", "block deepgemm-rule torch formula")
    ratio("tensor refarith numpy fp8_current_scale", "tensor torchao tensor_to_scale+to_fp8_saturated")
    ratio("hadamard refarith numpy butterfly", "hadamard torch x @ H/sqrt(n)")
    ratio("hadamard refarith numpy butterfly", "hadamard numpy x @ H/sqrt(n)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
