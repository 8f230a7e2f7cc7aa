"""`refarith prove`: run the theorem registry (Z3 proofs and exhaustive enumerations).

Prints one line per theorem (theorem | expected | verdict | time | solvers), then
every counterexample as concrete bits and values with its exact-model re-check.
``--solver both`` asks Z3 and a second solver (Bitwuzla; cvc5 for integer/real
arithmetic) every query; their verdicts must agree.  Exit 0 only if every verdict
is the expected one (a counterexample must also be confirmed by the exact model,
and with two solvers both must agree), 1 otherwise, 2 on bad input, 130 on Ctrl-C.
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
    p.add_argument("--solver", default="z3", metavar="SOLVER",
                   help="z3 (default), bitwuzla, cvc5, or both: Z3 and the second solver on every query, verdicts "
                        "must agree")
    p.add_argument("--second", default="auto", metavar="SOLVER",
                   help="the second solver of --solver both: auto (default: bitwuzla for bit-vector and "
                        "FloatingPoint queries, cvc5 with integer or real arithmetic), bitwuzla or cvc5")
    p.add_argument("--kernel", metavar="MODULE:FUNCTION",
                   help="prove your own kernel kernel(ops, x), written against refarith.fast.bitops.BitOps, equal to "
                        "--spec for every input (or checked against --property); the registry is not run")
    p.add_argument("--spec", metavar="SPEC", help="with --kernel: the cast spec it must equal, e.g. "
                                                  "'cast(binary32->ocp_e4m3,overflow=saturate)'")
    p.add_argument("--property", metavar="MODULE:FUNCTION",
                   help="with --kernel: a predicate prop(ops, x..., outputs...) returning a mask that must hold for "
                        "every input")
    p.add_argument("--input-bits", metavar="N[,N...]", help="with --property: the width of each kernel input")
    p.add_argument("--width", type=int, default=None, help="with --kernel: word width, 32 or 64")
    p.set_defaults(func=run_prove)


def _row(cols: list[str], widths: list[int]) -> str:
    return " | ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()


def _check_solvers(choice: str, second: str) -> None:
    from refarith.smt import solvers as sv

    if choice not in sv.CHOICES:
        raise BadValueError(f"unknown solver {choice!r}; choose from {', '.join(sv.CHOICES)}")
    if second not in sv.SECOND_SOLVERS + ("auto",):
        raise BadValueError(f"unknown second solver {second!r}; choose from auto, {', '.join(sv.SECOND_SOLVERS)}")
    if choice == "both":
        needed = list(sv.SECOND_SOLVERS) if second == "auto" else [second]
    else:
        needed = [choice]
    for name in needed:
        if not sv.installed(name):
            raise BadValueError(f"solver {name} is not installed: pip install 'refarith[solvers]'")


def run_prove(args: argparse.Namespace) -> int:
    """Run the selected theorems; Ctrl-C stops every worker and exits 130."""
    try:
        return _run_prove(args)
    except KeyboardInterrupt:
        print("refarith: interrupted; every worker stopped", file=sys.stderr)
        return 130


def _prove_kernel(args: argparse.Namespace) -> int:
    """``--kernel``: one user kernel against a spec or a property; exit 0 proved, 1 refuted or undecided."""
    from refarith.smt import registry
    from refarith.smt.userkernel import load_user_kernel, prove_cast_kernel, prove_property

    if (args.spec is None) == (args.property is None):
        raise BadValueError("--kernel needs exactly one of --spec SPEC or --property MODULE:FUNCTION")
    if args.width is not None and args.width not in (32, 64):
        raise BadValueError(f"--width must be 32 or 64, got {args.width}")
    if args.timeout is not None and args.timeout <= 0:
        raise BadValueError(f"--timeout must be positive, got {args.timeout}")
    _check_solvers(args.solver, args.second)
    kernel = load_user_kernel(args.kernel)
    timeout = args.timeout or 60.0
    prev = registry.use_solvers(args.solver, args.second)
    try:
        if args.spec is not None:
            what = f"{args.kernel} == {args.spec}"
            out = prove_cast_kernel(kernel, args.spec, args.width, timeout)
        else:
            if not args.input_bits:
                raise BadValueError("--property needs --input-bits N (the width of each kernel input)")
            try:
                bits = tuple(int(b) for b in args.input_bits.split(","))
            except ValueError:
                raise BadValueError(f"--input-bits must be integers, got {args.input_bits!r}") from None
            prop = load_user_kernel(args.property)
            what = f"{args.property} holds for {args.kernel}"
            out = prove_property(kernel, prop, bits, args.width or 32, timeout)
    finally:
        registry.restore_solvers(prev)
    if args.json:
        print(json.dumps({"schema_version": 1, "kernel": args.kernel, "spec": args.spec, "property": args.property,
                          "verdict": out.verdict, "counterexample": out.counterexample, "confirmed": out.confirmed,
                          "detail": out.detail}, indent=1))
    else:
        print(f"{out.verdict.upper()}: {what}")
        if out.counterexample is not None:
            for line in json.dumps(out.counterexample, indent=2).splitlines():
                print(f"  {line}")
            if out.confirmed is not None:
                print(f"  exact model confirms the difference: {out.confirmed}")
        if out.detail:
            print(f"  {out.detail.strip().splitlines()[0]}")
    return 0 if out.verdict == registry.PROVED else 1


def _run_prove(args: argparse.Namespace) -> int:
    from refarith.smt import registry

    if args.kernel is not None:
        return _prove_kernel(args)
    if args.spec is not None or args.property is not None or args.input_bits is not None:
        raise BadValueError("--spec, --property and --input-bits go with --kernel MODULE:FUNCTION")

    if args.jobs < 1:
        raise BadValueError(f"--jobs must be at least 1, got {args.jobs}")
    if args.timeout is not None and args.timeout <= 0:
        raise BadValueError(f"--timeout must be positive, got {args.timeout}")
    _check_solvers(args.solver, args.second)
    theorems = registry.select(args.only)
    if not theorems:
        raise BadValueError(f"no theorem matches {args.only!r}; `refarith prove --list` shows them")
    if args.list:
        if args.json:
            print(json.dumps({"schema_version": 1, "theorems": [
                {"name": t.name, "statement": t.statement, "expect": t.expect, "budget_seconds": t.budget,
                 "tags": list(t.tags)} for t in theorems]}, indent=1))
            return 0
        for t in theorems:
            print(f"{t.name}  [{t.expect}, {t.budget:.0f} s]  {t.statement}")
        return 0
    width = max(len("theorem"), *(len(t.name) for t in theorems))
    widths = [width, 14, 14, 8, 18]
    interactive = not args.json
    done = [0]
    t0 = time.perf_counter()
    if interactive:
        print(_row(["theorem", "expected", "verdict", "time", "solvers"], widths))
        print("-+-".join("-" * w for w in widths))

    def progress(r: registry.Result) -> None:
        done[0] += 1
        if interactive:
            mark = "" if r.ok else "   <-- NOT AS EXPECTED"
            print(_row([r.name, r.expect, r.verdict, f"{r.seconds:.2f}s", "+".join(r.solvers)], widths) + mark,
                  flush=True)

    from refarith.golden.progress import Progress

    # the table's lines show progress on a terminal; --json, or a log, also gets the periodic plain lines
    with Progress(len(theorems), "prove", enabled=None if (args.json or not sys.stderr.isatty()) else False,
                  unit="theorem") as bar:
        def advance(r: registry.Result) -> None:
            progress(r)
            bar.update()

        results = registry.run(theorems, jobs=args.jobs, timeout=args.timeout, progress=advance,
                               solvers=args.solver, second=args.second)
    wall = time.perf_counter() - t0
    failed = [r for r in results if not r.ok]
    summary = _solver_summary(results)
    if args.json:
        print(json.dumps({"schema_version": 1, "wall_seconds": round(wall, 3), "ok": not failed, "solver": args.solver,
                          "second": args.second, "summary": summary,
                          "results": [r.to_json() for r in results]}, indent=1))
        return 0 if not failed else 1
    shown = [r for r in results if r.counterexample is not None or (not r.ok and r.detail)]
    for r in shown:
        print(f"\n{r.name}: {r.verdict} (expected {r.expect}; exact model confirms: {r.confirmed})")
        print(f"  statement: {r.statement}")
        if r.counterexample is not None:
            for line in json.dumps(r.counterexample, indent=2).splitlines():
                print(f"  {line}")
        if r.by_solver and (r.verdict != "proved" or not r.ok):
            for name, e in r.by_solver.items():
                cx = f", counterexample {json.dumps(e['counterexample'])}, exact model confirms: {e['confirmed']}" \
                    if "counterexample" in e else ""
                print(f"  {name}: {e['verdict']}{cx}")
        if r.detail:
            print(f"  detail: {r.detail.strip().splitlines()[0]}")
    n_ok = len(results) - len(failed)
    print(f"\n{n_ok}/{len(results)} as expected in {wall:.1f} s wall ({args.jobs} job{'s' if args.jobs > 1 else ''})",
          file=sys.stdout)
    secs = ", ".join(f"{k} {v:.1f} s" for k, v in summary["solver_seconds"].items())
    line = f"solver time: {secs}" if secs else "no solver query"
    if summary["checked_by_two"] or summary["disagreed"] or summary["not_agreed"]:
        line += (f"; {summary['agreed']} of {summary['solver_backed']} solver-backed theorems agreed by two solvers"
                 f", disagreed: {', '.join(summary['disagreed']) or 'none'}")
        if summary["not_agreed"]:
            line += f", not agreed (unknown, unsupported, error): {', '.join(summary['not_agreed'])}"
    print(line)
    return 0 if not failed else 1


def _solver_summary(results: list) -> dict:
    """Counts for the report: theorems per method, agreement of two solvers, solver seconds summed per solver."""
    seconds: dict[str, float] = {}
    for r in results:
        for k, v in r.solver_seconds.items():
            seconds[k] = round(seconds.get(k, 0.0) + v, 3)
    backed = [r for r in results if r.solvers and r.solvers != ["enumeration"]]
    two = [r for r in backed if r.agreed is not None]
    return {"theorems": len(results), "enumeration": sum(r.solvers == ["enumeration"] for r in results),
            "solver_backed": len(backed), "checked_by_two": len(two), "agreed": sum(r.agreed is True for r in two),
            "disagreed": [r.name for r in results if r.verdict == "disagreement"],
            "not_agreed": [r.name for r in two if r.agreed is False and r.verdict != "disagreement"],
            "solver_seconds": seconds}
