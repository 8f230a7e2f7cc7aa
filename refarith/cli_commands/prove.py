"""`refarith prove`: run the theorem registry (Z3 proofs and exhaustive enumerations).

Prints one line per theorem (theorem | expected | verdict | time), then every
counterexample as concrete bits and values with its exact-model re-check.
Exit 0 only if every verdict is the expected one (a counterexample must also be
confirmed by the exact model), 1 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from refarith.errors import BadValueError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "prove", help="run the theorem registry (Z3 proofs, enumerations)",
        description="Run registered theorems in parallel; each has its own time budget. Exit 0 only if every "
                    "verdict is as expected.")
    p.add_argument("--list", action="store_true", help="list the selected theorems and their statements; run nothing")
    p.add_argument("--only", metavar="PATTERN",
                   help="comma-separated globs or substrings of theorem names, e.g. 'cast.*'")
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--timeout", type=float, default=None, help="cap on every theorem's budget, in seconds")
    p.add_argument("--json", action="store_true", help="one JSON document with every result")
    p.set_defaults(func=run_prove)


def _row(cols: list[str], widths: list[int]) -> str:
    return " | ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()


def run_prove(args: argparse.Namespace) -> int:
    from refarith.smt import registry

    if args.jobs < 1:
        raise BadValueError(f"--jobs must be at least 1, got {args.jobs}")
    if args.timeout is not None and args.timeout <= 0:
        raise BadValueError(f"--timeout must be positive, got {args.timeout}")
    theorems = registry.select(args.only)
    if not theorems:
        raise BadValueError(f"no theorem matches {args.only!r}; `refarith prove --list` shows them")
    if args.list:
        if args.json:
            print(json.dumps([{"name": t.name, "statement": t.statement, "expect": t.expect, "budget": t.budget,
                               "tags": list(t.tags)} for t in theorems], indent=1))
            return 0
        for t in theorems:
            print(f"{t.name}  [{t.expect}, {t.budget:.0f} s]  {t.statement}")
        return 0
    width = max(len("theorem"), *(len(t.name) for t in theorems))
    widths = [width, 14, 14, 8]
    interactive = not args.json
    done = [0]
    t0 = time.perf_counter()
    if interactive:
        print(_row(["theorem", "expected", "verdict", "time"], widths))
        print("-+-".join("-" * w for w in widths))

    def progress(r: registry.Result) -> None:
        done[0] += 1
        if interactive:
            mark = "" if r.ok else "   <-- NOT AS EXPECTED"
            print(_row([r.name, r.expect, r.verdict, f"{r.seconds:.2f}s"], widths) + mark, flush=True)

    results = registry.run(theorems, jobs=args.jobs, timeout=args.timeout, progress=progress)
    wall = time.perf_counter() - t0
    failed = [r for r in results if not r.ok]
    if args.json:
        print(json.dumps({"wall_seconds": round(wall, 3), "ok": not failed,
                          "results": [r.to_json() for r in results]}, indent=1))
        return 0 if not failed else 1
    shown = [r for r in results if r.counterexample is not None or (not r.ok and r.detail)]
    for r in shown:
        print(f"\n{r.name}: {r.verdict} (expected {r.expect}; exact model confirms: {r.confirmed})")
        print(f"  statement: {r.statement}")
        if r.counterexample is not None:
            for line in json.dumps(r.counterexample, indent=2).splitlines():
                print(f"  {line}")
        if r.detail:
            print(f"  detail: {r.detail.strip().splitlines()[0]}")
    n_ok = len(results) - len(failed)
    print(f"\n{n_ok}/{len(results)} as expected in {wall:.1f} s wall ({args.jobs} job{'s' if args.jobs > 1 else ''})",
          file=sys.stdout)
    return 0 if not failed else 1
