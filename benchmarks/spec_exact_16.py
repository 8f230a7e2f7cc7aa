"""The cast theorems' second route: the spec term of every theorem on every input (or every representative).

    python benchmarks/spec_exact_16.py [--kinds det,sr,keys,classes,keys64,classes64,int_classes,sr_reduce]
                                       [--sources GLOB]
                                       [--select I/N]
                                       [--json FILE] [--resume] [--list]

The units are :func:`refarith.smt.castsweep.units_16`: every kernel theorem
from binary16, bfloat16, int8, uint8 and int16 (each deterministic theorem
with all its settings, each ``sr`` theorem with every overflow mode and every
r < 2^k), whose spec encoding is evaluated on all source patterns by the numpy
evaluator and compared with ``round_value`` of the exact model (code and error
flag); the pairs of ``cast.width.*`` also run ``cast_bits`` on 32- and 64-bit
numpy words against the same exact results.  Kinds ``keys`` and ``classes``
are :func:`refarith.smt.castsweep.units_32`, the binary32 sources: Z3 proves
each theorem's spec invariant under the sticky-key map (targets of at most 6
mantissa bits) or the per-binade class map (wider targets), both with the
exponents far outside the target clamped, and the spec term and ``cast_bits``
on 32-bit words equal the exact model on every representative.  ``keys64``
and ``classes64`` (:func:`refarith.smt.castsweep.units_64`): the same for
binary64 sources (low 44 mantissa bits collapsed to a sticky bit for targets
of at most 7 mantissa bits; classes for binary16).  ``int_classes``
(:func:`refarith.smt.castsweep.units_int`): int32, uint32 and int64 sources,
magnitudes reduced to their top p bits and a remainder class, and magnitudes
beyond 2^(emax + 2) clamped.  ``sr_reduce``
(:func:`refarith.smt.castsweep.units_sr_wide`): every ``sr`` theorem from
binary32, binary64, int32, uint32 and int64; Z3 proves the sr spec equal to its
rtz form for every (x, r) (rtz of x + r 2^-k ulp, the overflow of a mode that
rounds away at and above max + ulp), whose spec terms are the rtz and rne
theorems' (tied to the exact model by the units above), and the exact model's
side of the same identity is checked on 1024 seeded boundary-weighted patterns
x every r.  ``--select I/N`` keeps every N-th
unit starting at I.  The JSON summary (per unit: inputs compared, mismatches,
first mismatches, CPU seconds; and the theorems covered) is rewritten
atomically after every unit; ``--resume`` skips units already in it with no
mismatch.  Exit status 1 when any unit has a mismatch, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from pathlib import Path

from sweep_cast_theorems import add_unit_options

from refarith.golden.fileformat import write_atomic
from refarith.smt.castsweep import run_unit, units_16, units_32, units_64, units_int, units_sr_wide

KINDS = {"det", "sr", "keys", "classes", "keys64", "classes64", "int_classes", "sr_reduce"}


def _bad(r: dict) -> bool:
    return bool(r["mismatches"] or r.get("kernel_mismatches") or r.get("invariance", "proved") != "proved")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kinds", default="det,sr", help="comma-separated unit kinds: det, sr (sources of at most 16 "
                    "bits), keys, classes (binary32), keys64, classes64 (binary64), int_classes (int32, uint32, "
                    "int64), sr_reduce (sr from binary32, binary64, int32, uint32, int64: the rtz-form reduction); "
                    "default det,sr")
    ap.add_argument("--sources", default="*", help="glob over source format names (default: every source)")
    add_unit_options(ap)
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    kinds = set(args.kinds.split(","))
    if not kinds <= KINDS:
        print(f"error: --kinds takes {', '.join(sorted(KINDS))}, got {args.kinds!r}", file=sys.stderr)
        return 2
    si, sn = args.select
    pool = ((units_16() if kinds & {"det", "sr"} else []) + (units_32() if kinds & {"keys", "classes"} else [])
            + (units_64() if kinds & {"keys64", "classes64"} else []) + (units_int() if "int_classes" in kinds else [])
            + (units_sr_wide() if "sr_reduce" in kinds else []))
    sel = [u for u in pool if u["kind"] in kinds and fnmatch.fnmatchcase(u["src"], args.sources)][si::sn]
    if not sel:
        print(f"error: no unit matches --kinds {args.kinds!r} --sources {args.sources!r}", file=sys.stderr)
        return 2
    if args.list:
        for u in sel:
            print(u["theorem"], " ".join(u["covers"][1:]))
        print(f"{len(sel)} units covering {len({c for u in sel for c in u['covers']})} theorems")
        return 0
    results: list[dict] = []
    if args.json and args.resume and Path(args.json).exists():
        results = [r for r in json.loads(Path(args.json).read_text())["units"] if not _bad(r)]
    done = {r["theorem"] for r in results}
    t_all = time.process_time()

    def save() -> None:
        if not args.json:
            return
        summary = {"units": results, "theorems_covered": sorted({c for r in results for c in r["covers"]}),
                   "inputs_compared": sum(r["compared"] + r.get("kernel_compared", 0) for r in results),
                   "mismatches": sum(r["mismatches"] + r.get("kernel_mismatches", 0) for r in results),
                   "cpu_seconds": round(sum(r["cpu_seconds"] for r in results), 1)}
        write_atomic(args.json, (json.dumps(summary, indent=1) + "\n").encode())

    for j, u in enumerate(sel):
        if u["theorem"] in done:
            continue
        r = run_unit(u)
        results.append(r)
        kern = f", kernel {r['kernel_compared']} / {r['kernel_mismatches']}" if r.get("kernel_compared") else ""
        if "invariance" in r:
            kern += f", invariance {r['invariance']} ({r['invariance_cpu_seconds']} s)"
        print(f"[{j + 1}/{len(sel)}] {u['theorem']}: {r['compared']} inputs, {r['mismatches']} mismatches{kern} "
              f"({r['cpu_seconds']} s CPU)", file=sys.stderr, flush=True)
        save()
    bad = [r for r in results if _bad(r)]
    print(f"{len(results)} units, {len({c for r in results for c in r['covers']})} theorems covered, "
          f"{len(bad)} units with mismatches, {time.process_time() - t_all:.1f} s CPU", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
