"""Old against new in one process: a kernel module of this tree against the same module at a git revision.

    python benchmarks/bench_rev.py intquant [--rev REV]   # int_quantize numpy, 1024x1024 float32, group 128
    python benchmarks/bench_rev.py gemm [--rev REV]       # scaled_mm tensor_core presets, bfloat16, 256x4096x256
    python benchmarks/bench_rev.py identify [--rev REV]   # identify torch:matmul_bf16 256x4096x256 (every
                                                          # candidate in full), the tensor-core group of REV
                                                          # swapped in for the second run

The revision's source of ``refarith/fast/intquant.py`` (or ``refarith/fast/gemm.py``) is read with ``git show``
and compiled as a separate module next to the imported one, so both run on the same inputs, alternately, in one
process; the figures are CPU seconds per call (``time.process_time``, best of the rounds) and every output of
the two is compared bit for bit.  ``intquant`` also times the binary64 kernel that the integer one replaced
(``--b64-rev``, default ce62405^).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def module_at(rev: str, path: str, name: str) -> types.ModuleType:
    """The module ``path`` as it is at git revision ``rev`` (compiled from its source; it imports this tree)."""
    src = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    mod = types.ModuleType(name)
    mod.__file__ = f"{rev}:{path}"
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)  # our own history, not user input
    return mod


def cpu_best(fn, rounds: int, calls: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.process_time() - t) / calls)
    return best


def digest(outs) -> str:
    h = hashlib.sha256()
    for o in outs:
        h.update(np.ascontiguousarray(np.asarray(o)).tobytes())
    return h.hexdigest()[:16]


def bench_intquant(rev: str, b64_rev: str, rounds: int) -> None:
    from refarith.fast import intquant as new

    mods = {"new": new, rev: module_at(rev, "refarith/fast/intquant.py", "intquant_rev")}
    if b64_rev:
        mods[f"{b64_rev} (binary64)"] = module_at(b64_rev, "refarith/fast/intquant.py", "intquant_b64")
    x = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    print(f"int_quantize numpy, 1024x1024 standard normal float32, group 128; CPU s per call, best of {rounds}x5")
    for bits, scheme, clip, rounding in ((8, "symmetric", "symmetric", "rne"), (8, "asymmetric", "symmetric", "rne"),
                                         (4, "symmetric", "full", "rna")):
        row = {}
        for label, mod in mods.items():
            def call(mod=mod, cfg=(bits, scheme, "group", 128, clip, rounding)):
                return mod.quantize(x, *cfg)

            row[label] = (cpu_best(call, rounds, 5), digest(call()))
        same = len({d for _, d in row.values()}) == 1
        cells = "  ".join(f"{k} {t * 1e3:6.2f} ms" for k, (t, _) in row.items())
        print(f"  int{bits} {scheme}/{clip}/{rounding}: {cells}  {rev}/new {row[rev][0] / row['new'][0]:.2f}x  "
              f"outputs {'identical' if same else 'DIFFER'}")


    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
    t = torch.from_numpy(x)
    row = {}
    for label in ("new", rev):
        def tcall(mod=mods[label]):
            return mod.quantize_torch(t, 8, "symmetric", "group", 128)

        row[label] = (cpu_best(tcall, rounds, 3), digest([v.numpy() for v in tcall()]))
    same = row["new"][1] == row[rev][1]
    print(f"  torch backend (1 thread), int8 symmetric/symmetric/rne: new {row['new'][0] * 1e3:6.2f} ms  {rev} "
          f"{row[rev][0] * 1e3:6.2f} ms  {rev}/new {row[rev][0] / row['new'][0]:.2f}x  "
          f"outputs {'identical' if same else 'DIFFER'}")


def bench_gemm(rev: str, rounds: int) -> None:
    from refarith.fast import gemm as new
    from refarith.formats import get_format

    old = module_at(rev, "refarith/fast/gemm.py", "gemm_rev")
    rng = np.random.default_rng(0)
    m, k, n = 256, 4096, 256
    bf = get_format("bfloat16")
    a = new.encode_array(rng.standard_normal((m, k)), bf)
    b = new.encode_array(rng.standard_normal((k, n)), bf)
    print(f"scaled_mm(bfloat16->binary32) numpy, {m}x{k}x{n} standard normal; CPU s per call, best of {rounds}")
    tot = {"new": 0.0, rev: 0.0}
    for preset in ("volta_tc", "ampere_tc", "hopper_fp8", "deepseek_v3"):
        spec = f"scaled_mm(bfloat16->binary32,accum={preset})"
        row = {}
        for label, mod in (("new", new), (rev, old)):
            row[label] = (cpu_best(lambda mod=mod, spec=spec: mod.scaled_mm(spec, a, b), rounds, 1),
                          digest([mod.scaled_mm(spec, a, b)]))
            tot[label] += row[label][0]
        same = row["new"][1] == row[rev][1]
        print(f"  {preset:12s} {rev} {row[rev][0]:6.2f} s  new {row['new'][0]:6.2f} s  "
              f"{row[rev][0] / row['new'][0]:.2f}x  outputs {'identical' if same else 'DIFFER'}")
    print(f"  all four: {rev} {tot[rev]:.2f} s  new {tot['new']:.2f} s  {tot[rev] / tot['new']:.2f}x")


def bench_identify(rev: str) -> None:
    from refarith.certify.gemm import identify_gemm
    from refarith.fast import gemm as new

    old = module_at(rev, "refarith/fast/gemm.py", "gemm_rev")
    mine = new._tc_group_normal
    res = {}
    for label, fn in (("new", mine), (rev, old._tc_group_normal)):
        new._tc_group_normal = fn
        try:
            c = time.process_time()
            r = identify_gemm("torch:matmul_bf16", shape=(256, 4096, 256))
            res[label] = (time.process_time() - c, repr(sorted(r["matches"])) + repr(r["closest"]))
        finally:
            new._tc_group_normal = mine
    same = res["new"][1] == res[rev][1]
    print(f"identify torch:matmul_bf16 256x4096x256 (tensor-core group of {rev} / new): {res[rev][0]:.1f} / "
          f"{res['new'][0]:.1f} s CPU, {res[rev][0] / res['new'][0]:.2f}x; verdicts "
          f"{'identical' if same else 'DIFFER'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("intquant", "gemm", "identify"))
    ap.add_argument("--rev", default="22aa20f", help="git revision of the old module (default 22aa20f)")
    ap.add_argument("--b64-rev", default="ce62405^", help="intquant: the binary64 kernel's revision ('' skips)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.what == "intquant":
        bench_intquant(args.rev, args.b64_rev, args.rounds)
    elif args.what == "gemm":
        bench_gemm(args.rev, args.rounds)
    else:
        bench_identify(args.rev)
    return 0


if __name__ == "__main__":
    sys.exit(main())
