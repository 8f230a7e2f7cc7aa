"""`refarith identify TARGET --op OP [--to FORMAT] [--from FORMAT] [--vary P,...]`: which named variants a kernel
implements."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("identify", help="run a kernel against every named variant of an op and report "
                                               "the ones it matches exactly (or the closest)")
    p.add_argument("target")
    p.add_argument("--op", default="cast", help="operation (default cast)")
    p.add_argument("--to", dest="to", default=None, help="destination format (casts) or the format of the op")
    p.add_argument("--from", dest="src", default=None,
                   help="source format of a cast (default binary32), input format of a GEMM")
    p.add_argument("--spec", default=None, help="a full spec id instead of --op/--to/--from")
    p.add_argument("--nan-payload-ok", action="store_true", help="do not count NaN-code-only differences")
    p.add_argument("--signed-zero-ok", action="store_true", help="do not count differences in the sign of a zero")
    p.add_argument("--vary", default=None, metavar="P1,P2",
                   help="enumerate only these variant parameters (e.g. division,levels); default: all of the op's")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="cpu, cuda or cuda:N: user kernels receive torch tensors there; torch and refarith "
                        "torch/triton kernels run there (default: numpy arrays)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="time limit of the kernel runs; a kernel that hangs is an error")
    p.add_argument("--shape", default=None, metavar="M,K,N", help="scaled_mm: operand shape (default 16,256,16)")
    p.add_argument("--acc", default=None, metavar="F1,F2",
                   help="scaled_mm: accumulator formats tried (default binary32)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON (docs/schema/identify.schema.json)")
    p.set_defaults(func=handler)


def handler(args) -> int:
    from refarith.certify.identify import format_scores, identify, scores_json
    from refarith.errors import SpecError
    from refarith.spec import parse_spec

    if args.spec and (args.op != "cast" or args.to or args.src):  # --op defaults to cast
        raise SpecError("--spec gives the whole spec id; drop --op, --to and --from (or --spec)")
    if args.op == "scaled_mm" or (args.spec or "").lstrip().startswith("scaled_mm"):
        from refarith.certify.gemm import identify_cli

        return identify_cli(args)
    if args.shape or args.acc:
        raise SpecError("--shape and --acc apply to identify --op scaled_mm only")
    if args.spec:
        spec = parse_spec(args.spec)
    elif args.op == "cast":
        if not args.to:
            raise SpecError("identify --op cast needs --to FORMAT (or --spec)")
        spec = parse_spec(f"{args.op}({args.src or 'binary32'}->{args.to})")
    else:
        spec = parse_spec(f"{args.op}({args.to or ''})")
    vary = tuple(args.vary.split(",")) if args.vary else None
    if vary is not None and not all(v.strip() for v in vary):
        from refarith.errors import BadValueError

        raise BadValueError(f"--vary {args.vary!r}: an empty parameter name; give P1,P2 (e.g. rounding,overflow)")
    scores = identify(args.target, spec, nan_payload_ok=args.nan_payload_ok, vary=vary, timeout=args.timeout,
                      hard_exit=True, device=args.device, signed_zero_ok=args.signed_zero_ok)
    if args.json:
        print(scores_json(args.target, spec, scores))
    else:
        print(format_scores(args.target, scores))
    return 0 if scores and scores[0].matches else 1
