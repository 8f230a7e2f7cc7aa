"""`refarith certify TARGET --spec SPEC`: run a kernel against golden vectors, a 2^32 sweep and fuzzing."""

from __future__ import annotations

import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("certify", help="certify a kernel (LIBRARY:NAME or package.module:function) "
                                              "against a spec; exit 0 pass, 1 fail, 2 bad input")
    p.add_argument("target", help="ml_dtypes:<dtype>, torch:<dtype>, gfloat:<format>[+sat], refarith:exact|numpy|"
                                  "torch|triton, triton:<dtype>[+rtz], torchao:mx|nvfp4, or package.module:function")
    p.add_argument("--spec", required=True, help="spec id, e.g. 'cast(binary32->ocp_e4m3,overflow=nan)'")
    p.add_argument("--exhaustive", action="store_true",
                   help="also sweep all 2^32 binary32 inputs (casts); an error (exit 2, before any work) for a spec "
                        "with no exhaustive check; a note when the golden stage already covers every input")
    p.add_argument("--exhaustive-if-possible", action="store_true",
                   help="as --exhaustive where an exhaustive check exists, else a warning and the other stages")
    p.add_argument("--fuzz", type=int, default=0, metavar="N", help="also N hypothesis-drawn vectors")
    p.add_argument("--seed", type=int, default=0, help="fuzzing seed (recorded in the certificate)")
    p.add_argument("--nan-payload-ok", action="store_true", help="accept results that differ only in the NaN code")
    p.add_argument("--signed-zero-ok", action="store_true",
                   help="accept results that differ only in the sign of a zero")
    p.add_argument("--report", default=None, metavar="DIR", help="write JSON, Markdown and HTML reports here")
    p.add_argument("--golden", default=None, metavar="DIR", help="golden vector directory (default: committed set)")
    p.add_argument("--jobs", type=int, default=None, help="processes for the exhaustive sweep (default: all cores)")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="cpu, cuda or cuda:N: user kernels receive torch tensors there; torch and refarith "
                        "torch/triton kernels run there (default: numpy arrays)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="time limit of each stage (golden, exhaustive, fuzz); a kernel that hangs is an error")
    p.add_argument("--watchdog", type=float, default=600.0, metavar="SECONDS",
                   help="exhaustive sweep: error when no chunk finishes for this long (default 600)")
    p.add_argument("--exact-reference", action="store_true",
                   help="recompute every golden vector with the exact model itself (slower; default: refarith's "
                        "numpy kernel, the exact model deciding every vector it does not reproduce)")
    p.add_argument("--sr-samples", type=int, default=None, metavar="N",
                   help="stochastic rounding (rounding=sr) with randomness inside the kernel: run it N times on each "
                        "input at the hard places and test the round-up frequency against the exact probability "
                        "(exact binomial test, family-wise false-alarm rate 1e-6); without it an sr kernel is "
                        "called as fn(x, r) with the random bits r and certified bit-exactly")
    p.set_defaults(func=handler)


def _exhaustive_notes(args) -> None:
    """Before any work, one line on stderr: a note when ``--exhaustive`` adds no separate sweep (the golden stage
    covers every input), a warning when ``--exhaustive-if-possible`` will skip it (certify records why in the
    certificate; a scalar kernel is found out there).  ``--exhaustive`` with no exhaustive check is refused."""
    from refarith.certify.runner import exhaustive_missing, exhaustive_plan
    from refarith.spec import parse_spec

    spec = parse_spec(args.spec)
    why = exhaustive_missing(spec) if args.exhaustive_if_possible and not args.exhaustive else None
    if why:
        print(f"refarith: warning: --exhaustive-if-possible: {why}; certifying without it", file=sys.stderr)
    elif args.exhaustive or args.exhaustive_if_possible:
        note = exhaustive_plan(spec)
        if note:
            print(f"refarith: note: {note}", file=sys.stderr)


def handler(args) -> int:
    from refarith.certify.gemm import certify_target

    args.target = certify_target(args.target, args.spec)  # a GEMM target: a kernel over the golden vectors
    from refarith.certify.identify import failure_hint
    from refarith.certify.report import SKIPPED, failure_summary, write_reports
    from refarith.certify.runner import certify

    _exhaustive_notes(args)
    c = certify(args.target, args.spec, exhaustive=args.exhaustive, fuzz=args.fuzz, seed=args.seed,
                nan_payload_ok=args.nan_payload_ok, golden_dir=args.golden, jobs=args.jobs, timeout=args.timeout,
                watchdog=args.watchdog, exact_reference=args.exact_reference, hard_exit=True,
                device=args.device, sr_samples=args.sr_samples, exhaustive_if_possible=args.exhaustive_if_possible)
    c.signed_zero_ok = args.signed_zero_ok
    written = write_reports(c, args.report) if args.report else []  # all or nothing, before any verdict is shown
    print(f"{c.verdict.upper()}: {c.target} against {c.spec}")
    if c.exhaustive_skipped:
        print(f"  exhaustive stage: {SKIPPED} {c.exhaustive_skipped}")
    for s in c.stages:
        n = sum(s.mismatches.values())
        print(f"  {s.name}: {s.vectors} vectors, {s.outside_domain} outside the spec's domain, {n} mismatches "
              f"({s.seconds:.1f} s)\n    {s.source}")
    cols: dict[str, int] = {}
    for s in c.stages:
        for k, n in s.columns.items():
            cols[k] = cols.get(k, 0) + n
    if len(cols) > 1:  # a block result: which output columns differ (one always-different scale stands out)
        top = sorted(cols.items(), key=lambda kv: (-kv[1], kv[0]))
        print("  mismatches by output column: " + ", ".join(f"{k} {n}" for k, n in top[:8])
              + (", ..." if len(top) > 8 else ""))
    if c.statistical is not None:
        from refarith.certify.statistical import format_statistical

        print(format_statistical(c.statistical))
    if not c.passed and sum(c.totals().values()):
        print("  " + failure_summary(c).replace("\n", "\n  "))
        hint = failure_hint(c)
        if hint:
            print("  " + hint.replace("\n", "\n  "))
    for p in written:
        print(f"  wrote {p}", file=sys.stderr)
    return 0 if c.passed else 1
