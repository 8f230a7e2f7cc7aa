"""The cast theorems' second route, binary32 sources: every 2^32 pattern through the kernel against the exact model.

    python benchmarks/sweep_cast_theorems.py [--targets GLOB] [--modes rne,rtz] [--part I/N] [--select I/N]
                                             [--json FILE] [--resume] [--list]

A unit is one (target, setting) of a kernel theorem cast.binary32->DST.* (every
deterministic rounding mode with every overflow mode of the target, and the
policies theorem's nan/negative settings).  For each unit the script runs
:func:`refarith.smt.castsweep.sweep_binary32` over the unit's input range (all
2^32 patterns, or part I of N equal parts with ``--part``): ``cast_bits`` on
numpy words vs an exact-model table (sticky-key table for targets with at most
6 mantissa bits, per-binade class table for bfloat16/binary16), and for key
targets the table path of refarith.fast.cast too.  ``--select I/N`` keeps
every N-th unit starting at I (to split the units across processes or
machines).  A progress line goes to stderr; the JSON summary (one entry per
unit and range: inputs compared, mismatches, first mismatches, seconds) is
rewritten atomically after every unit, and ``--resume`` skips units already
in it with zero mismatches.  Exit status 1 when any unit has a mismatch.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import platform
import sys
import time
from pathlib import Path

from refarith.golden.fileformat import write_atomic
from refarith.smt.castsweep import sweep_binary32
from refarith.smt.theorems.casts import kernel_theorems, targets


def units(target_glob: str, modes: set[str] | None) -> list[tuple[str, str, tuple[str, str, str, str]]]:
    """(theorem name, target, setting) of every binary32 kernel theorem setting selected."""
    out = []
    for dst in targets("binary32"):
        if not fnmatch.fnmatchcase(dst, target_glob):
            continue
        for name, settings in kernel_theorems("binary32", dst):
            for st in settings:
                if modes is None or st[0] in modes:
                    out.append((name, dst, st))
    return out


def _frac(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N, got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"need 0 <= I < N, got {text!r}")
    return i, n


def add_unit_options(ap: argparse.ArgumentParser) -> None:
    """The unit-selection and summary options shared by the second-route scripts."""
    ap.add_argument("--select", type=_frac, default=(0, 1), help="units: every N-th starting at I")
    ap.add_argument("--json", default=None, help="JSON summary file (rewritten after every unit)")
    ap.add_argument("--resume", action="store_true", help="skip units already in --json with no mismatch")
    ap.add_argument("--list", action="store_true", help="print the selected units and exit")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default="*", help="glob over target names (default: every target)")
    ap.add_argument("--modes", default=None, help="comma-separated rounding modes (default: all)")
    ap.add_argument("--part", type=_frac, default=(0, 1), help="input range: part I of N of the 2^32 patterns")
    add_unit_options(ap)
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    modes = set(args.modes.split(",")) if args.modes else None
    sel = units(args.targets, modes)
    si, sn = args.select
    sel = sel[si::sn]
    if not sel:
        print(f"error: no unit matches --targets {args.targets!r} --modes {args.modes!r}", file=sys.stderr)
        return 2
    pi, pn = args.part
    lo, hi = ((1 << 32) * pi) // pn, ((1 << 32) * (pi + 1)) // pn
    if args.list:
        for name, dst, st in sel:
            print(name, dst, ",".join(st))
        print(f"{len(sel)} units, range [{lo:#x}, {hi:#x})")
        return 0
    results: list[dict] = []
    if args.json and args.resume and Path(args.json).exists():
        results = json.loads(Path(args.json).read_text())["units"]
    done = {(r["theorem"], tuple(r["setting"]), r["lo"], r["hi"]) for r in results if r["mismatches"] == 0
            and not r.get("table_path_mismatches")}
    t_all = time.perf_counter()

    def save() -> None:
        if not args.json:
            return
        summary = {"python": platform.python_version(), "machine": platform.machine(), "units": results,
                   "inputs_compared": sum(r["compared"] for r in results),
                   "mismatches": sum(r["mismatches"] + (r.get("table_path_mismatches") or 0) for r in results),
                   "seconds": round(sum(r["seconds"] for r in results), 1)}
        write_atomic(args.json, (json.dumps(summary, indent=1) + "\n").encode())

    for j, (name, dst, st) in enumerate(sel):
        if (name, st, lo, hi) in done:
            continue
        label = f"[{j + 1}/{len(sel)}] {name} {','.join(st)}"
        last = [0.0]

        def progress(n: int, total: int, label: str = label, last: list = last) -> None:
            now = time.perf_counter()
            if now - last[0] >= 5 or n == total:
                last[0] = now
                print(f"\r{label}: {n / total:6.1%} of [{lo:#x}, {hi:#x})", end="", file=sys.stderr, flush=True)

        r = sweep_binary32(dst, st, lo, hi, progress=progress)
        r["theorem"] = name
        results.append(r)
        tp = r["table_path_mismatches"]
        tail = "" if tp is None else f", table path {tp} mismatches"
        print(f"\r{label}: {r['compared']} inputs, {r['mismatches']} mismatches{tail} ({r['seconds']} s)",
              file=sys.stderr, flush=True)
        save()
    bad = [r for r in results if r["mismatches"] or r.get("table_path_mismatches")]
    print(f"{len(results)} units, {sum(r['compared'] for r in results)} inputs compared, {len(bad)} units with "
          f"mismatches, {time.perf_counter() - t_all:.1f} s", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
