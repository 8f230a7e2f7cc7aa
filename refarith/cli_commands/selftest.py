"""``refarith selftest``: the device self-check (see :mod:`refarith.certify.selftest`)."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "selftest", help="check the torch and Triton backends on a device over all 2^32 binary32 inputs of the "
                         "OCP FP8/FP6/FP4/E8M0 casts, compare torch's native casts, time Triton vs torch .to()")
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (the Triton interpreter; use --inputs)")
    p.add_argument("--inputs", default=None,
                   help="sweep binary32 patterns [0, N) instead of all 2^32 (e.g. 2^20; needed on cpu)")
    p.add_argument("--jobs", type=int, default=None, help="processes building the exact-model tables (default: cores)")
    p.add_argument("--no-bench", action="store_true", help="skip the throughput table")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from refarith.certify import selftest
    from refarith.errors import RefarithError

    if args.jobs is not None and args.jobs < 1:
        print(f"refarith: error: selftest: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
        return 2
    try:
        if args.device == "cpu" and args.inputs is None:
            raise selftest.SelftestError("on cpu the Triton kernels run interpreted: give --inputs (e.g. 2^20); "
                                         "all 2^32 inputs is a job for a GPU")
        return selftest.main(args.device, args.inputs, args.jobs, not args.no_bench)
    except RefarithError as e:
        from refarith.interrupts import was_interrupted

        if was_interrupted():  # a Ctrl-C inside a kernel run, reported as a kernel error
            raise KeyboardInterrupt from None
        print(f"refarith: error: selftest: {e}", file=sys.stderr)
        return 2
