"""Where the theorem registry's time goes: every N-th theorem of each family run in this process (``run_one``), its
CPU time, and how much of it is Z3's ``check`` (the rest: building the Z3 terms of the spec and of the traced
kernel through Z3's Python API, enumerations, the exact model).  Prints one row per family and the registry-wide
extrapolation (family mean x family size).

    python benchmarks/bench_prove.py                      # every 40th theorem of every family
    python benchmarks/bench_prove.py --every 12 --only 'p3109.*'

CPU seconds (``time.process_time``), so a loaded machine inflates them less than wall time.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refarith.smt import registry, solvers  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=40, help="run every N-th theorem of each family (default 40)")
    ap.add_argument("--only", default="*", help="glob of theorem names (default all)")
    a = ap.parse_args()
    if a.every < 1:
        ap.error("--every must be >= 1")
    z3_cpu = [0.0]
    check = solvers.check_z3

    def timed(*args, **kw):
        t = time.process_time()
        try:
            return check(*args, **kw)
        finally:
            z3_cpu[0] += time.process_time() - t

    solvers.check_z3 = timed
    fams: dict[str, list[str]] = defaultdict(list)
    for name in registry.load_all():
        if fnmatch.fnmatchcase(name, a.only):
            fams[name.split(".")[0]].append(name)
    ths = registry.load_all()
    print("| family | theorems | sampled | CPU s (sampled) | of it Z3 check | mean CPU s | family x mean |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    total, small = 0.0, []
    for fam, names in sorted(fams.items(), key=lambda kv: -len(kv[1])):
        sample = names[:: a.every]
        z3_cpu[0] = 0.0
        t = time.process_time()
        for n in sample:
            registry.run_one(ths[n])
        cpu = time.process_time() - t
        mean = cpu / len(sample)
        if len(names) >= a.every:
            total += mean * len(names)
        else:
            small.append(fam)
        print(f"| {fam} | {len(names)} | {len(sample)} | {cpu:.1f} | {100 * z3_cpu[0] / max(cpu, 1e-9):.0f}% | "
              f"{mean:.2f} | {mean * len(names):.0f} |")
    rest = f"; sampled too thinly to extrapolate: {', '.join(small)}" if small else ""
    print(f"\nextrapolated CPU s of the families with at least {a.every} theorems: {total:.0f} "
          f"(about {total / 2:.0f} s wall at --jobs 2 on two idle cores){rest}")


if __name__ == "__main__":
    main()
