"""`refarith quantize --format F FILE.npy -o OUT.npz`: block / integer quantization of a saved array."""

from __future__ import annotations

import os
import tempfile

from refarith.errors import BadValueError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("quantize", help="quantize a .npy array into an MX / NVFP4 / INTn .npz; print the "
                                               "max abs / max rel error and SQNR of the dequantized result")
    p.add_argument("file", help="input .npy (binary32 values; loaded without pickle)")
    p.add_argument("--format", required=True, help="mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4, mxint8, "
                                                   "nvfp4, int2..int8, int16")
    p.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE",
                   help="variant parameter, repeatable: scale=floor|ceil|even|rceil, rounding=..., "
                        "division=..., levels=..., zero_scale=..., tile=..., scheme=..., granularity=..., clip=...")
    p.add_argument("--block", type=int, default=None, help="block (MX) or group (integer) size")
    p.add_argument("--axis", type=int, default=-1, help="axis to quantize along (default -1)")
    p.add_argument("--backend", default="numpy", choices=("numpy", "torch", "exact"))
    p.add_argument("-o", "--output", required=True, help="output .npz (written atomically)")
    p.set_defaults(func=handler)


def handler(args) -> int:
    import numpy as np

    from refarith.quant import dequantize, error_stats, quantize

    if not args.output.endswith(".npz"):
        raise BadValueError(f"output {args.output!r} must end in .npz")
    try:
        x = np.load(args.file, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise BadValueError(f"cannot load {args.file!r} as a .npy array: {e}") from None
    kw = {}
    for v in args.variant:
        k, sep, val = v.partition("=")
        if not sep or not k or not val:
            raise BadValueError(f"--variant {v!r} is not KEY=VALUE")
        kw[k] = val
    scale = kw.pop("scale", "floor")
    rounding = kw.pop("rounding", "rne")
    if "group" in kw:
        kw["group"] = _int(kw["group"], "group")
    q = quantize(x, args.format, axis=args.axis, block=args.block, scale=scale, rounding=rounding,
                 backend=args.backend, **kw)
    y = dequantize(q)
    st = error_stats(np.asarray(x, np.float32), y)
    arrays = {"codes": q.codes, "scales": q.scales, "spec": np.array(q.spec), "format": np.array(q.format),
              "axis": np.array(q.axis), "block": np.array(-1 if q.block is None else q.block)}
    if q.zero_points is not None:
        arrays["zero_points"] = q.zero_points
    if q.tensor_scale is not None:
        arrays["tensor_scale"] = np.array(q.tensor_scale, np.float32)
    _save_atomic(args.output, arrays)
    print(f"spec: {q.spec}")
    print(f"elements: {x.size}  blocks/groups: {q.scales.size}")
    print(f"max abs error: {st['max_abs']:.6g}")
    print(f"max rel error: {st['max_rel']:.6g}")
    print(f"SQNR: {st['sqnr_db']:.2f} dB")
    return 0


def _save_atomic(path: str, arrays: dict) -> None:
    """np.savez into a temporary file next to ``path``, then os.replace; OutputError (one line, nothing left behind)
    when the directory is missing, read-only or full."""
    import numpy as np

    from refarith.errors import OutputError

    d = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".quantize-", suffix=".npz", dir=d)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise OutputError(f"{path}: cannot write ({e.strerror or type(e).__name__}); nothing written") from None
    except BaseException:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _int(v: str, name: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise BadValueError(f"{name} must be an integer, got {v!r}") from None
