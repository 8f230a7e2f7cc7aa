"""`refarith golden generate|verify|show`: the golden vector files."""

from __future__ import annotations

import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("golden", help="generate, verify or show golden vector files")
    sub = p.add_subparsers(dest="golden_cmd", metavar="generate|verify|show", required=True)
    g = sub.add_parser("generate", help="write golden files from the exact model (atomically) and the MANIFEST")
    g.add_argument("--out", default=None, help="output directory (default in a source checkout: its committed "
                                               "golden_vectors/; an installed refarith needs --out)")
    g.add_argument("--only", default=None, help="only specs/files matching this glob or substring")
    g.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    g.set_defaults(func=_generate)
    v = sub.add_parser("verify", help="check MANIFEST hashes, headers, every line, and byte-identical regeneration")
    v.add_argument("dir", nargs="?", default=None)
    v.add_argument("--only", default=None, help="only files/specs matching this glob or substring")
    v.add_argument("--no-regenerate", action="store_true", help="skip regeneration (hashes and syntax only)")
    v.add_argument("--jobs", type=int, default=None)
    v.set_defaults(func=_verify)
    s = sub.add_parser("show", help="print a golden file's header and its first vectors, decoded")
    s.add_argument("file")
    s.add_argument("-n", type=int, default=20, help="number of vectors to show")
    s.set_defaults(func=_show)


def _generate(args) -> int:
    from refarith.golden.generate import default_dir, generate

    files = generate(args.out, args.only, args.jobs)
    total = sum(e["bytes"] for e in files.values())
    print(f"{len(files)} files, {total} bytes in {args.out or default_dir()}")
    return 0


def _verify(args) -> int:
    from refarith.golden.generate import verify

    problems = verify(args.dir, args.only, regenerate=not args.no_regenerate, jobs=args.jobs)
    for p in problems:  # a malformed file or MANIFEST is bad input (exit 2), a mismatch a failed check (exit 1)
        print(f"refarith: error: malformed: {p.message}" if p.kind == "malformed" else f"mismatch: {p.message}",
              file=sys.stderr)
    if any(p.kind == "malformed" for p in problems):
        return 2
    if problems:
        return 1
    print("golden vectors verified")
    return 0


def _show(args) -> int:
    from refarith.errors import BadValueError
    from refarith.exact import ops
    from refarith.golden.drivers import get_driver
    from refarith.golden.fileformat import load

    if args.n < 0:
        raise BadValueError(f"-n must be a number of vectors >= 0, got {args.n}")
    g = load(args.file)
    for k, v in g.header.items():
        print(f"{k}: {v}")
    d = get_driver(g.spec)
    fin, fout = d.input_formats(g.spec), d.output_formats(g.spec)
    for j in range(min(args.n, g.count)):
        ins = [int(a[j]) for a in g.inputs]
        left = "  ".join(f"{c:#x}={ops.decode(c, f)}" for c, f in zip(ins, fin))
        if g.raises[j]:
            right = "raises"
        else:
            right = "  ".join(f"{int(c):#x}={ops.decode(int(c), f)}" for c, f in zip(g.outputs[j], fout))
        print(f"{left}  ->  {right}")
    return 0
