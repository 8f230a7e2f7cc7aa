"""The `refarith` command line.

Built-in commands: ``formats`` and ``cast``.  Further commands live in
``refarith/cli_commands/<name>.py`` modules, each defining
``add_parser(subparsers)``.  Bad input gives a one-line message and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import re
import sys
from collections.abc import Sequence

from refarith.errors import BadValueError, RefarithError
from refarith.exact import ops as exact
from refarith.exact.rounding import NAN_POLICIES, NEGATIVE_POLICIES, OVERFLOW_MODES, ROUNDING_MODES, TININESS_MODES
from refarith.exact.value import Value, parse_value
from refarith.formats import FloatFormat, IntFormat, catalogue, get_format
from refarith.spec import make_spec

_BITS = re.compile(r"^0x[0-9a-fA-F]+$")


def _fmt_value(v: Value) -> str:
    """The exact value as text ("p/q", "-0", "inf", "nan"), however many digits it has (Python refuses to
    print integers of more than 4300 digits unless asked, and an input like 1e-5000 has a 5001-digit
    denominator)."""
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return str(v)
    finally:
        sys.set_int_max_str_digits(old)


def _approx(v: Value) -> str:
    if not v.is_finite or v.is_zero:
        return ""
    return f"{v.to_float():.8g}"


def _code_str(code: int, fmt) -> str:
    return f"0x{code:0{max(1, (fmt.nbits + 3) // 4)}x}"


JSON_SCHEMA_VERSION = 1
"""``schema_version`` of the JSON of ``cast --json`` and ``formats --json`` (docs/schema/cast.schema.json,
formats.schema.json, format_values.schema.json)."""


def _float_or_none(v) -> float | None:
    """The nearest binary64 of an exact value (Value, int or Fraction) for a ``*_float`` JSON field; None when it
    is NaN, infinite or beyond binary64's range (JSON has no inf/NaN; the exact string field says which)."""
    if v is None:
        return None
    if isinstance(v, Value):
        if not v.is_finite:
            return None
        if v.is_zero:
            return -0.0 if v.sign else 0.0
        try:
            f = v.to_float()
        except OverflowError:
            return None
    else:
        try:
            f = float(v)
        except OverflowError:
            return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None


def _dump(doc: dict) -> str:
    """A JSON document with ``schema_version`` first; never NaN/Infinity literals (invalid JSON)."""
    return json.dumps({"schema_version": JSON_SCHEMA_VERSION, **doc}, allow_nan=False)


# ------------------------------------------------------------------ formats
def cmd_formats(args: argparse.Namespace) -> int:
    if args.name is not None and not args.name.strip():
        raise BadValueError(f"empty format name {args.name!r}; `refarith formats` without a name lists them")
    if args.values and not args.name:
        raise BadValueError("--values lists the codes of one format: give its NAME (refarith formats NAME --values)")
    if args.name:
        fmt = get_format(args.name)
        if args.values:
            table = exact.value_table(fmt)
            if args.json:
                print(_dump({"format": fmt.name, "values": [
                    {"bits": _code_str(c, fmt), "code": c, "value": _fmt_value(v), "value_float": _float_or_none(v)}
                    for c, v in table]}))
            else:
                print(f"# {fmt.name}: {fmt.ncodes} codes")
                for c, v in table:
                    ap = _approx(v)
                    print(f"{_code_str(c, fmt)}  {_fmt_value(v):>24}  {ap}")
            return 0
        rows = [_format_row(fmt)]
    else:
        rows = [_format_row(f) for f in catalogue().values() if not isinstance(f, IntFormat) or args.ints]
    if args.json:
        fmts = [fmt] if args.name else [f for f in catalogue().values() if not isinstance(f, IntFormat) or args.ints]
        print(_dump({"formats": [_format_json(f) for f in fmts]}))
        return 0
    cols = ["name", "layout", "bias", "specials", "max", "min normal", "min subnormal"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
    if not args.name and not args.ints:
        print("(integer formats int2..int64, intN_sym, uint1..uint64: --ints; "
              "every value of one format: NAME --values)")
    return 0


def _num(x) -> str:
    """Exact value, with a short float rendering for long fractions."""
    s = str(x)
    if len(s) > 14:
        return f"{float(x):.6g}"
    return s


def _format_row(f) -> dict:
    if isinstance(f, IntFormat):
        return {"name": f.name, "layout": f.layout(), "bias": "-", "specials": "none", "max": str(f.max),
                "min normal": "-", "min subnormal": "-", "min": str(f.min)}
    return {"name": f.name, "layout": f.layout(), "bias": f.bias, "specials": f.describe_specials(),
            "max": _num(f.max), "min normal": _num(f.min_normal), "min subnormal": _num(f.min_subnormal),
            "bits": f.nbits}


def _format_json(f) -> dict:
    """One format for ``formats --json``: every number once as an exact string (``p/q`` or an integer) and once as
    the nearest binary64 (``*_float``); null where the format has no such value (integers: no bias, no normals)."""
    def exact(x):
        return None if x is None else str(x)

    if isinstance(f, IntFormat):
        vals = {"max": f.max, "min": f.min, "min_normal": None, "min_subnormal": None}
        row = {"name": f.name, "kind": "int", "layout": f.layout(), "bits": f.nbits, "bias": None,
               "signed": f.signed, "specials": "none"}
    else:
        vals = {"max": f.max, "min": -f.max if f.signed else (f.min_normal if not f.has_zero else 0),
                "min_normal": f.min_normal, "min_subnormal": f.min_subnormal if f.subnormals else None}
        row = {"name": f.name, "kind": "float", "layout": f.layout(), "bits": f.nbits, "bias": f.bias,
               "signed": f.signed, "specials": f.describe_specials()}
    for k, v in vals.items():
        row[k] = exact(v)
        row[f"{k}_float"] = _float_or_none(v)
    return row


# ------------------------------------------------------------------ cast
def _input_value(token: str, src, tininess: str = "before") -> tuple[Value, int | None, set[str]]:
    """Interpret a VALUE token: a 0x bit pattern of ``src`` or a number (rounded into ``src`` first if given)."""
    if _BITS.match(token.strip()):
        if src is None:
            raise BadValueError(f"{token} looks like a bit pattern: give --from FORMAT (or write a hex float like "
                                "0x1p3)")
        code = int(token, 16)
        return exact.decode(code, src), code, set()
    v = parse_value(token)
    if src is None:
        return v, None, set()
    r = _round(v, src, {"tininess": tininess})
    flags = {f"input_{f}" for f in r.flags}  # e.g. input_inexact, input_overflow: the value of src differs
    return exact.decode(r.code, src), r.code, flags


def cmd_cast(args: argparse.Namespace) -> int:
    dst = get_format(args.to)
    src = get_format(args.src) if args.src else None
    if not args.values:
        raise BadValueError("cast needs at least one VALUE")
    if args.nan_policy is not None and isinstance(dst, FloatFormat) and dst.has_nan:
        raise BadValueError(f"--nan-policy applies to targets without NaN; {dst.name} has NaN")
    if args.negative is not None and getattr(dst, "signed", True):
        raise BadValueError(f"--negative applies to unsigned targets; {dst.name} is signed")
    nan_policy = args.nan_policy or "error"
    kw = dict(rounding=args.rounding, overflow=args.overflow, nan_policy=nan_policy, negative=args.negative,
              tininess=args.tininess)
    if args.rounding == "sr":
        if args.rand is None or args.rand_bits is None:
            raise BadValueError("rounding sr needs --rand R and --rand-bits K")
        from refarith.exact.stochastic import canonical_variant

        kw.update(rand=args.rand, rand_bits=args.rand_bits, sr_variant=canonical_variant(args.sr))
    elif args.rand is not None or args.rand_bits is not None or args.sr != "a":
        raise BadValueError(f"--rand, --rand-bits and --sr apply to --rounding sr only, not {args.rounding}")
    # without --from the input is exact; binary64 stands in only to canonicalise the parameters
    spec = make_spec("cast", (src or get_format("binary64"), dst), rounding=args.rounding, overflow=args.overflow,
                     nan=nan_policy if (isinstance(dst, IntFormat) or not dst.has_nan) else None,
                     negative=args.negative if not getattr(dst, "signed", True) else None,
                     sr=args.sr if args.rounding == "sr" else None, k=args.rand_bits if args.rounding == "sr" else None)
    out = []
    for tok in args.values:
        v, in_code, in_flags = _input_value(tok, src, args.tininess)
        # from a code of --from: the cast of that code (a signalling NaN source is flagged invalid)
        r = exact.cast(in_code, src, dst, **kw) if in_code is not None else _round(v, dst, kw)
        res = exact.decode(r.code, dst)
        out.append({"input": tok, "input_bits": None if in_code is None else _code_str(in_code, src),
                    "input_value": _fmt_value(v), "input_value_float": _float_or_none(v),
                    "bits": _code_str(r.code, dst), "code": r.code, "value": _fmt_value(res),
                    "value_float": _float_or_none(res), "flags": sorted(r.flags | in_flags)})
    header = str(spec) if src else "exact input, " + str(spec).split(",", 1)[0].split("->")[1] + " " + \
        ",".join(str(spec).rstrip(")").split(",")[1:])
    if args.tininess != "before":
        header += f"; tininess {args.tininess} rounding"
    if args.json:
        print(_dump({"spec": str(spec) if src else None, "source": src.name if src else None, "target": dst.name,
                     "tininess": args.tininess, "results": out}))
        return 0
    print(f"# {header}")
    w = max(len(o["input"]) for o in out)
    for o in out:
        flags = ",".join(o["flags"]) or "exact"
        src_part = f" ({o['input_bits']} = {o['input_value']})" if o["input_bits"] else ""
        print(f"{o['input'].ljust(w)}{src_part} -> {o['bits']}  {o['value']}  [{flags}]")
    return 0


def _round(v: Value, dst, kw: dict):
    from refarith.exact.rounding import round_value

    return round_value(v, dst, **kw)


# ------------------------------------------------------------------ main
class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (``prog: error: message``, exit 2) instead of the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="refarith", description="Reference arithmetic for low-precision ML formats.")
    from refarith import __version__

    p.add_argument("--version", action="version", version=f"refarith {__version__}")
    p.add_argument("--quiet", action="store_true", help="no progress display on stderr (also after the command)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    f = sub.add_parser("formats", help="list formats, or every value of one format",
                       description="Table of formats (name, layout, bias, specials, max, min normal, min subnormal).")
    f.add_argument("name", nargs="?", help="one format (catalogue name, peer alias, or eXmY[bB][_specials])")
    f.add_argument("--values", action="store_true", help="every code and its exact value (formats <= 16 bits)")
    f.add_argument("--ints", action="store_true", help="include the integer formats")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_formats)

    c = sub.add_parser("cast", help="round values into a format, exactly",
                       description="Cast VALUEs into --to with a single rounding. VALUE: a decimal (exact), p/q, a "
                                   "hex float (0x1.8p3), inf/-inf/nan, or a 0x bit pattern of --from. A number given "
                                   "with --from is first rounded (rne) into --from, as a value of that format (flags "
                                   "input_inexact, input_overflow, ... when that changes it). Use '--' before "
                                   "negative values such as -inf.")
    c.add_argument("--from", dest="src", help="source format (needed for 0x bit patterns)")
    c.add_argument("--to", required=True, help="target format")
    c.add_argument("--rounding", default="rne", choices=ROUNDING_MODES)
    c.add_argument("--overflow", default=None, choices=OVERFLOW_MODES,
                   help="default: inf if the target has inf, else nan if it has NaN, else saturate")
    c.add_argument("--nan-policy", default=None, choices=NAN_POLICIES,
                   help="NaN into a target without NaN (default error); an error for a target with NaN")
    c.add_argument("--negative", default=None, choices=NEGATIVE_POLICIES,
                   help="negatives into unsigned targets (an error for a signed one); default: project for P3109 "
                        "targets, else error")
    c.add_argument("--tininess", default="before", choices=TININESS_MODES,
                   help="underflow flag: tiny before rounding (default) or after rounding (IEEE 754 7.5)")
    c.add_argument("--rand", type=int, help="random integer for --rounding sr")
    c.add_argument("--rand-bits", type=int, help="its width k")
    c.add_argument("--sr", default="a", help="stochastic rounding variant for --rounding sr: a (default), b, c, c_odd, "
                   "te_e2m1_8, or gfloat's names (refarith.exact.stochastic)")
    c.add_argument("--json", action="store_true", help="one JSON document: schema_version, spec, results (input, "
                                                          "bits, value, value_float, flags, ...)")
    c.add_argument("values", nargs="*", metavar="VALUE")
    c.set_defaults(func=cmd_cast)
    p.set_defaults(cast_parser=c)

    from refarith import cli_commands

    for mod in sorted(pkgutil.iter_modules(cli_commands.__path__), key=lambda m: m.name):
        try:
            m = importlib.import_module(f"refarith.cli_commands.{mod.name}")
        except Exception as e:  # a broken plugin module must not hide the other commands
            print(f"refarith: warning: command module {mod.name} failed to load: {e}", file=sys.stderr)
            continue
        m.add_parser(sub)
    _add_quiet(p)
    return p


def _cast_values_in_order(tokens: list[str], cast_parser: argparse.ArgumentParser) -> list[str]:
    """The VALUE tokens of a ``cast`` command line, in order: every token that is not an option of ``cast`` (or
    an unambiguous ``--`` prefix of one) or that option's argument; everything after ``--``."""
    opts = cast_parser._option_string_actions
    values: list[str] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t == "--":
            values.extend(tokens[i + 1:])
            break
        name = t.split("=", 1)[0]
        match = [name] if name in opts else [o for o in opts if name.startswith("--") and o.startswith(name)]
        if t.startswith("-") and len(match) == 1:
            if opts[match[0]].nargs != 0 and "=" not in t:
                i += 1  # the option's argument
            i += 1
            continue
        values.append(t)
        i += 1
    return values


_OUTPUT_ARGS = {"report": ("dir", "--report"), "out": ("dir", "--out"), "output": ("file", "--output"),
                "markdown": ("file", "--markdown")}
"""Output options of the subcommands (argparse dest: kind, option): checked before any work is done."""


def check_outputs(args: argparse.Namespace) -> None:
    """OutputError (one line naming the path and why) for any output path of ``args`` that cannot be written: a
    file where a directory is expected or the reverse, a missing parent directory (files), an unwritable one."""
    from refarith.outputs import check_output_dir, check_output_file

    for dest, (kind, opt) in _OUTPUT_ARGS.items():
        path = getattr(args, dest, None)
        if not isinstance(path, str):
            continue
        if kind == "dir":
            check_output_dir(path, opt)
        else:
            check_output_file(path, opt)


def _option_names(parser: argparse.ArgumentParser, names: dict[str, str]) -> dict[str, str]:
    """argparse dest -> option string (``--only``) of every optional argument of ``parser`` and its subcommands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sp in action.choices.values():
                _option_names(sp, names)
        elif action.option_strings and action.nargs is None:
            names.setdefault(action.dest, max(action.option_strings, key=len))
    return names


def check_empty_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """BadValueError for an option given an empty (or blank) value, e.g. ``--only ''`` (which would otherwise
    select everything) or ``--from ''`` (which would be ignored)."""
    for dest, opt in _option_names(parser, {}).items():
        v = getattr(args, dest, None)
        if isinstance(v, str) and not v.strip():
            raise BadValueError(f"{opt} is empty ({v!r}); give a value or leave the option out")


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` on ``parser`` and every subcommand below it (given anywhere after the command name)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sp in action.choices.values():
                if "--quiet" not in sp._option_string_actions:
                    sp.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                                    help="no progress display on stderr")
                _add_quiet(sp)


def _interrupted() -> int:
    from refarith.interrupts import EXIT_INTERRUPTED, stop_children

    stop_children()
    print("refarith: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit status 0 success, 1 a failed check, 2 bad input (one line on stderr), 130 Ctrl-C."""
    from refarith.interrupts import sigint_handler, was_interrupted

    try:
        with sigint_handler():
            try:
                return _main(argv)
            except RefarithError:
                if was_interrupted():  # a Ctrl-C that code under test turned into an error
                    return _interrupted()
                raise
    except KeyboardInterrupt:
        return _interrupted()
    except RefarithError as e:
        print(f"refarith: error: {e}", file=sys.stderr)
        return 2


def _main(argv: Sequence[str] | None) -> int:
    from refarith.golden.progress import set_quiet

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if getattr(args, "command", None) == "cast":
            # argparse sets tokens such as -inf or -1e5 aside as unknown options; take the VALUEs from argv
            # itself so that they keep the order in which they were given
            args.values = _cast_values_in_order(argv[argv.index("cast") + 1:], args.cast_parser)
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        set_quiet(bool(getattr(args, "quiet", False)))
        check_empty_options(args, parser)
        check_outputs(args)
        return int(args.func(args) or 0)
    except BrokenPipeError:
        return 0
    finally:
        set_quiet(False)


if __name__ == "__main__":
    sys.exit(main())
