"""`refarith sweep run|report|plan`: exhaustive campaigns as resumable shards (refarith.certify.shards/engine).

``run`` compares a kernel with a spec on every input (or ``--range LO:HI`` of them), shard by shard, recording
each shard in the ledger directory as it finishes; run it again on the same ledger to resume.  ``--fuzz N
--seed S`` makes it a fuzz campaign of N hypothesis-drawn vectors instead, sharded as (shard seed, count).
``report`` builds the merged certificate from a ledger alone.  ``plan`` times one shard in this process and
extrapolates.
Exit status: 0 pass, 1 fail, 2 bad input (a foreign or corrupt ledger, a ledger in use, an unreachable
scheduler), 130 Ctrl-C.
"""

from __future__ import annotations

import argparse

from refarith.errors import BadValueError


def _int(text: str) -> int:
    t = text.strip().replace("_", "")
    if "^" in t:
        base, _, exp = t.partition("^")
        return int(base, 0) ** int(exp, 0)
    return int(t, 0)


def _range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return _int(lo), _int(hi)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--range must be LO:HI (integers, 0x.., or 2^k), got {text!r}") from None


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="exhaustive campaigns as resumable shards on Dask distributed "
                                            "(run, report, cast-theorems, plan); exit 0 pass, 1 fail, 2 bad "
                                            "input")
    sub = p.add_subparsers(dest="sweep_command", metavar="{run,report,cast-theorems,plan}")
    sub.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--spec", required=True, help="add|sub|mul|div of a 16-bit float (2^32 pairs), fma of an 8- "
                                                      "or 16-bit float (2^24 or 2^48 triples), a cast binary32 -> "
                                                      "a float of <= 16 bits (2^32 inputs); with --fuzz: any op")
    common.add_argument("--target", required=True, help="a certify target, e.g. "
                                                        "refarith.certify.torch_ops:add_bfloat16 or refarith:numpy")
    common.add_argument("--shard-bits", type=int, default=24, help="shard size 2^N indices (default 24)")
    common.add_argument("--range", type=_range, default=None, metavar="LO:HI",
                        help="only indices [LO, HI) (a slice; default: the whole input space)")
    common.add_argument("--fuzz", type=_int, default=None, metavar="N",
                        help="a fuzz campaign of N vectors (hypothesis, seeded) instead of the exhaustive one")
    common.add_argument("--seed", type=_int, default=0, help="the fuzz campaign's seed (default 0)")
    common.add_argument("--nan-payload-ok", action="store_true", help="accept results differing only in the NaN code")
    r = sub.add_parser("run", parents=[common], help="run (or resume) a campaign into a ledger directory")
    r.add_argument("--ledger", required=True, metavar="DIR", help="ledger directory (created, or resumed)")
    r.add_argument("--engine", default="auto", choices=("auto", "dask", "local"),
                   help="dask: a LocalCluster or --scheduler; local: this process; auto: dask when installed")
    r.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes (default: cores)")
    r.add_argument("--scheduler", default=None, metavar="ADDRESS", help="an existing Dask scheduler, tcp://host:port")
    r.add_argument("--retries", type=int, default=2, help="retries of a shard that raises (default 2)")
    r.add_argument("--report", default=None, metavar="DIR", help="write the merged certificate (JSON, MD, HTML) here")
    r.set_defaults(func=handle_run)
    m = sub.add_parser("report", help="the merged certificate of a ledger, from the ledger alone")
    m.add_argument("--ledger", required=True, metavar="DIR")
    m.add_argument("--report", required=True, metavar="DIR", help="write JSON, Markdown and HTML here")
    m.set_defaults(func=handle_report)
    ct = sub.add_parser("cast-theorems", help="every setting of the binary32 cast kernel theorems, a kernel against "
                                              "the exact model on all 2^32 inputs: one ledger per setting, one "
                                              "merged certificate")
    ct.add_argument("--ledger", required=True, metavar="DIR", help="campaign root (created, or resumed)")
    ct.add_argument("--target", default="refarith:numpy", help="the kernel (default refarith:numpy)")
    ct.add_argument("--targets", default="*", metavar="GLOB",
                    help="run the settings of these cast targets now (comma-separated globs; default: all); the "
                         "rest stay 'not run'")
    ct.add_argument("--shard-bits", type=int, default=32, help="shard size 2^N inputs (default 32: one per setting)")
    ct.add_argument("--engine", default="auto", choices=("auto", "dask", "local"))
    ct.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes (default: cores)")
    ct.add_argument("--scheduler", default=None, metavar="ADDRESS", help="an existing Dask scheduler")
    ct.add_argument("--retries", type=int, default=2, help="retries of a shard that raises (default 2)")
    ct.add_argument("--report", default=None, metavar="DIR", help="write the merged certificate (JSON, MD, HTML)")
    ct.add_argument("--range", type=_range, default=None, metavar="LO:HI",
                    help="only the binary32 patterns [LO, HI) of every setting (a slice: a campaign of its own)")
    ct.add_argument("--list", action="store_true", help="print the settings (theorem, spec) and exit")
    ct.set_defaults(func=handle_cast_theorems)
    pl = sub.add_parser("plan", parents=[common], help="time one shard here and extrapolate the campaign")
    pl.add_argument("--workers", type=int, default=1, help="workers to extrapolate to (default 1)")
    pl.set_defaults(func=handle_plan)


def _campaign(args):
    from refarith.certify.shards import make_campaign

    lo, hi = args.range if args.range else (0, None)
    return make_campaign(args.spec, args.target, args.shard_bits, lo, hi, args.nan_payload_ok, args.fuzz, args.seed)


def _finish(c, report: str | None) -> int:
    from refarith.certify.report import failure_summary, write_reports

    written = write_reports(c, report) if report else []
    s = c.stages[0]
    print(f"{c.verdict.upper()}: {c.target} against {c.spec}")
    print(f"  {s.name}: {s.vectors} vectors, {s.outside_domain} outside the spec's domain, "
          f"{sum(s.mismatches.values())} mismatches\n    {s.source}")
    if not c.passed and sum(c.totals().values()):
        print("  " + failure_summary(c).replace("\n", "\n  "))
    for p in written:
        print(f"  wrote {p}")
    return 0 if c.passed else 1


def handle_run(args) -> int:
    from refarith.certify.engine import run_campaign

    if args.retries < 0:
        raise BadValueError(f"--retries must be >= 0, got {args.retries}")
    c = run_campaign(_campaign(args), args.ledger, engine=args.engine, workers=args.workers,
                     scheduler=args.scheduler, retries=args.retries)
    return _finish(c, args.report)


def handle_report(args) -> int:
    from refarith.certify import castcampaign
    from refarith.certify.shards import Ledger, certificate

    if castcampaign.is_root(args.ledger):
        return _finish_family(castcampaign.merged(args.ledger), args.report)
    return _finish(certificate(Ledger(args.ledger)), args.report)


def _finish_family(m: dict, report: str | None) -> int:
    from refarith.certify import castcampaign

    written = castcampaign.write_report(m, report) if report else []
    print(f"{m['verdict'].upper()}: {m['target']} against {m['campaign']}: {m['complete']} of {m['settings']} "
          f"settings complete, {m['failed']} failed")
    print(f"  {m['vectors']} inputs compared, {m['outside_domain']} outside the specs' domains, mismatches "
          f"{m['mismatches'] or 'none'}, {m['cpu_seconds']} CPU s in shards, {m['retries']} retries")
    for r in m["entries"]:
        if r["verdict"] == "fail":
            print(f"  fail: {r['spec']}: {r['mismatches']}")
    for p in written:
        print(f"  wrote {p}")
    return 1 if m["verdict"] == "fail" else 0


def handle_cast_theorems(args) -> int:
    from refarith.certify import castcampaign

    if args.list:
        sel = [(t, s) for t, s in castcampaign.theorem_settings(args.targets)]
        for t, s in sel:
            print(f"{t}  {s}")
        print(f"{len(sel)} settings")
        return 0 if sel else 2
    if args.retries < 0:
        raise BadValueError(f"--retries must be >= 0, got {args.retries}")
    m = castcampaign.run(args.ledger, args.target, args.targets, args.shard_bits, args.engine, args.workers,
                         args.scheduler, args.retries, rng=args.range or (0, 1 << 32))
    return _finish_family(m, args.report)


def handle_plan(args) -> int:
    from refarith.certify.engine import plan

    if args.workers < 1:
        raise BadValueError(f"--workers must be a number of worker processes >= 1, got {args.workers}")
    camp = _campaign(args)
    doc = plan(camp, args.workers)
    for k, v in doc.items():
        print(f"{k}: {v}")
    return 0
