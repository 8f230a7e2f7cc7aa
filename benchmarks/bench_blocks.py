"""MX (mxfp8 e4m3, mxfp4) and NVFP4 quantize / dequantize throughput: refarith numpy and torch vs torchao and
gfloat, in one run.

    python benchmarks/bench_blocks.py [--n 16777216] [--repeat 3] [--gfloat-blocks 512] [--nvfp4-variants]

Every rate is elements per second, best of ``--repeat`` timed runs after one
warm-up run; torch (refarith's torch backend, torchao) runs with one thread,
like numpy.  gfloat's ``quantize_block`` is a scalar per-block Python path: it
is timed on the first ``--gfloat-blocks`` blocks only and its rate extrapolated
(linear in the number of blocks); the output says so.  gfloat returns
dequantized values, so its time covers quantize + dequantize.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time

import numpy as np

TIMER = time.perf_counter


def best(fn, repeat: int) -> float:
    """Smallest time of ``repeat`` calls after a warm-up call, by TIMER (wall, or CPU time with --timer cpu)."""
    fn()
    ts = []
    for _ in range(repeat):
        t0 = TIMER()
        fn()
        ts.append(TIMER() - t0)
    return min(ts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 24, help="elements (default 16M)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gfloat-blocks", type=int, default=512)
    ap.add_argument("--nvfp4-variants", action="store_true",
                    help="also time refarith numpy and torch NVFP4 quantize in every division / levels / zero_scale")
    ap.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                    help="wall clock, or this process's CPU time (steadier on a shared machine; one thread)")
    args = ap.parse_args()
    global TIMER
    TIMER = time.process_time if args.timer == "cpu" else time.perf_counter

    from refarith.fast import mx as fmx
    from refarith.fast import nvfp4 as fnv

    cols = 4096
    x = np.random.default_rng(0).standard_normal((args.n // cols, cols)).astype(np.float32)
    n = x.size
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        import torch

        torch_ok = True
        torch.set_num_threads(1)  # one thread, like numpy
        versions["torch"] = torch.__version__
        versions["torch threads"] = torch.get_num_threads()
        xt = torch.from_numpy(x)
    except ImportError:
        torch_ok = False
    tao = None
    try:
        import torchao
        from torchao.prototype.mx_formats import mx_tensor, nvfp4_tensor

        tao = (mx_tensor, nvfp4_tensor)
        versions["torchao"] = torchao.__version__
    except Exception as e:  # torchao absent or not loadable
        versions["torchao"] = f"unavailable ({type(e).__name__})"
    try:
        from importlib.metadata import version

        import gfloat

        versions["gfloat"] = version("gfloat")
    except Exception:
        gfloat = None
        versions["gfloat"] = "unavailable"
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"input: {n} float32 elements ({x.shape[0]}x{cols}), standard normal; best of {args.repeat} after warm-up "
          f"({args.timer} time)\n")

    rows: list[tuple[str, str, float]] = []

    def rec(case: str, impl: str, seconds: float, count: int = n) -> float:
        rate = count / seconds
        rows.append((case, impl, rate))
        print(f"  {case:<22} {impl:<34} {rate / 1e6:9.2f} M elements/s")
        return rate

    for label, el, tao_dt in (("mxfp8_e4m3", "mxfp8_e4m3", "float8_e4m3fn"), ("mxfp4", "mxfp4", "float4_e2m1fn_x2")):
        print(f"{label} (block 32, FLOOR scale, RNE):")
        s, c = fmx.mx_quantize(x, el)
        r_np = rec(f"{label} quantize", "refarith numpy", best(lambda el=el: fmx.mx_quantize(x, el), args.repeat))
        d_np = rec(f"{label} dequantize", "refarith numpy",
                   best(lambda s=s, c=c, el=el: fmx.mx_dequantize(s, c, el), args.repeat))
        if torch_ok:
            q_t = rec(f"{label} quantize", "refarith torch",
                      best(lambda el=el: fmx.mx_quantize(xt, el, backend="torch"), args.repeat))
            ts, tc = torch.from_numpy(s), torch.from_numpy(c)
            d_t = rec(f"{label} dequantize", "refarith torch",
                      best(lambda ts=ts, tc=tc, el=el: fmx.mx_dequantize(ts, tc, el, backend="torch"), args.repeat))
            print(f"    ratio refarith torch / numpy: quantize {q_t / r_np:.2f}x, dequantize {d_t / d_np:.2f}x")
        if tao is not None:
            dt = getattr(torch, tao_dt)
            r_tao = rec(f"{label} quantize", "torchao to_mx",
                        best(lambda dt=dt: tao[0].to_mx(xt, dt, 32), args.repeat))
            ss, dd = tao[0].to_mx(xt, dt, 32)
            rec(f"{label} dequantize", "torchao to_dtype",
                best(lambda ss=ss, dd=dd, dt=dt: tao[0].to_dtype(dd, ss, dt, 32, torch.float32), args.repeat))
            print(f"    ratio refarith numpy / torchao quantize: {r_np / r_tao:.2f}x")
        if gfloat is not None:
            import gfloat.formats as gf

            fi = gf.format_info_mxfp8_e4m3 if el == "mxfp8_e4m3" else gf.format_info_mxfp4_e2m1
            nb = args.gfloat_blocks
            flat = x.reshape(-1, 32)[:nb].astype(np.float64)

            def g(fi=fi, flat=flat):
                for b in flat:
                    gfloat.quantize_block(fi, b, gfloat.compute_scale_amax)

            t = best(g, 1)
            r_g = rec(f"{label} quant+dequant", f"gfloat quantize_block ({nb} blk)*", t, nb * 32)
            print(f"    ratio refarith numpy quantize / gfloat: {r_np / r_g:.0f}x  (* gfloat timed on {nb * 32} "
                  f"elements, rate extrapolated)")
    print("nvfp4 (two-level, reciprocal, eps, 1x16, RNE):")
    st, s, c = fnv.nvfp4_quantize(x)
    r_np = rec("nvfp4 quantize", "refarith numpy", best(lambda: fnv.nvfp4_quantize(x), args.repeat))
    d_np = rec("nvfp4 dequantize", "refarith numpy", best(lambda: fnv.nvfp4_dequantize(st, s, c), args.repeat))
    if torch_ok:
        q_t = rec("nvfp4 quantize", "refarith torch",
                  best(lambda: fnv.nvfp4_quantize(xt, backend="torch"), args.repeat))
        ts, tc = torch.from_numpy(s), torch.from_numpy(c)
        d_t = rec("nvfp4 dequantize", "refarith torch",
                  best(lambda: fnv.nvfp4_dequantize(st, ts, tc, backend="torch"), args.repeat))
        print(f"    ratio refarith torch / numpy: quantize {q_t / r_np:.2f}x, dequantize {d_t / d_np:.2f}x")
    if tao is not None:
        pts = tao[1].per_tensor_amax_to_scale(torch.amax(torch.abs(xt)))

        def tq():
            tao[1].per_tensor_amax_to_scale(torch.amax(torch.abs(xt)))
            tao[1].nvfp4_quantize(xt, 16, pts)

        r_tao = rec("nvfp4 quantize", "torchao nvfp4_quantize (+amax)", best(tq, args.repeat))
        print(f"    ratio refarith numpy / torchao quantize: {r_np / r_tao:.2f}x")
        print(f"    refarith numpy == torchao codes: "
              f"{_same_as_torchao(x[:256], tao[1], torch, fnv)}")
    if args.nvfp4_variants and torch_ok:
        from refarith.exact import nvfp4 as env

        print("nvfp4 quantize variants (1x16, RNE; numpy and torch timed in turn):")
        for division, levels, zs in itertools.product(env.DIVISIONS, (2, 1), env.ZERO_SCALES):
            kw = dict(division=division, levels=levels, zero_scale=zs)
            case = f"{division},levels={levels},{zs}"
            r_np = rec(case, "refarith numpy", best(lambda kw=kw: fnv.nvfp4_quantize(x, **kw), args.repeat))
            r_t = rec(case, "refarith torch",
                      best(lambda kw=kw: fnv.nvfp4_quantize(xt, backend="torch", **kw), args.repeat))
            print(f"    ratio refarith torch / numpy: {r_t / r_np:.2f}x")
    return 0


def _same_as_torchao(x, nt, torch, fnv) -> bool:
    from refarith.fast.packing import unpack

    pts = float(np.float32(np.abs(x).max()) / np.float32(2688))
    s, c = nt.nvfp4_quantize(torch.from_numpy(x.copy()), 16, torch.tensor(pts))
    _, s2, c2 = fnv.nvfp4_quantize(x)
    c = unpack(c.view(torch.uint8).numpy(), x.size, 4).reshape(x.shape)
    return bool(np.array_equal(s.view(torch.uint8).numpy(), s2) and np.array_equal(c, c2))


if __name__ == "__main__":
    raise SystemExit(main())
