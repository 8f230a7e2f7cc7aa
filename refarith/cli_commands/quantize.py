"""`refarith quantize --format F FILE.npy -o OUT.npz`: block / integer quantization of a saved array."""

from __future__ import annotations

import os
import tempfile

from refarith.errors import BadValueError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("quantize", help="quantize a .npy array into an MX / NVFP4 / HiF4 / INTn .npz; print the "
                                               "max abs / max rel error and SQNR of the dequantized result")
    p.add_argument("file", help="input .npy (binary32 values; loaded without pickle)")
    p.add_argument("--format", required=True, help="mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4, mxint8, "
                                                   "nvfp4, hif4, int2..int8, int16")
    p.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE",
                   help="variant parameter, repeatable: scale=floor|ceil|even|rceil|floor_half, rounding=..., "
                        "division=..., levels=..., zero_scale=..., tile=..., scheme=..., granularity=..., clip=..., "
                        "scale_ties=even|away, elem_ties=away|even (hif4)")
    p.add_argument("--block", type=int, default=None, help="block (MX) or group (integer) size")
    p.add_argument("--axis", type=int, default=-1, help="axis to quantize along (default -1)")
    p.add_argument("--backend", default="numpy", choices=("numpy", "torch", "triton", "exact"),
                   help="kernels: numpy (default), torch, triton (the traced block graphs; interpreted on a CPU), "
                        "or the exact model")
    p.add_argument("-o", "--output", required=True, help="output .npz (written atomically; refarith.load_quantized "
                                                         "reads it back)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON document "
                                                       "(docs/schema/quantize.schema.json)")
    p.set_defaults(func=handler)


def handler(args) -> int:
    import numpy as np

    from refarith.quant import dequantize, error_stats, quantize, quantized_arrays

    if not args.output.endswith(".npz"):
        raise BadValueError(f"output {args.output!r} must end in .npz")
    x = load_npy(args.file)
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
    _save_atomic(args.output, quantized_arrays(q))
    if args.json:
        import json

        def num(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        print(json.dumps({"schema_version": 1, "spec": q.spec, "format": q.format, "input": args.file,
                          "output": args.output, "shape": list(x.shape), "elements": int(x.size),
                          "blocks": int(q.scales.size), "lossless": bool(st["max_abs"] == 0),
                          "max_abs_error": num(st["max_abs"]), "max_rel_error": num(st["max_rel"]),
                          "sqnr_db": num(st["sqnr_db"])}, allow_nan=False))
        return 0
    print(f"spec: {q.spec}")
    print(f"elements: {x.size}  blocks/groups: {q.scales.size}")
    print(f"max abs error: {st['max_abs']:.6g}")
    print(f"max rel error: {st['max_rel']:.6g}")
    print(f"SQNR: {st['sqnr_db']:.2f} dB")
    return 0


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def load_npy(path: str):
    """The array of a ``.npy`` file (never unpickled), non-empty and of a real dtype; BadValueError naming the file
    and what is wrong (missing, empty, an ``.npz`` archive, not a ``.npy`` file, an object array, no elements)."""
    import numpy as np

    try:
        with open(path, "rb") as f:
            head = f.read(len(_NPY_MAGIC))
    except OSError as e:
        raise BadValueError(f"cannot read input {path!r}: {e.strerror or type(e).__name__}") from None
    if not head:
        raise BadValueError(f"input {path!r} is empty (0 bytes), not a .npy array")
    if head.startswith(_ZIP_MAGIC):
        raise BadValueError(f"input {path!r} is an .npz archive; quantize takes one array saved by np.save (.npy)")
    if head != _NPY_MAGIC:
        raise BadValueError(f"input {path!r} is not a .npy file (no NUMPY header); save the array with np.save")
    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e):
            raise BadValueError(f"input {path!r} holds an object array (pickled data, never loaded); save a numeric "
                                "array") from None
        raise BadValueError(f"input {path!r} is a damaged .npy file: {e}") from None
    except (OSError, EOFError) as e:
        raise BadValueError(f"input {path!r} is a damaged or truncated .npy file: {e}") from None
    if x.dtype.kind not in "fiu":
        raise BadValueError(f"input {path!r} holds an array of dtype {x.dtype}; quantize takes real numbers "
                            "(a float or integer array)")
    if x.size == 0:
        raise BadValueError(f"input {path!r} holds an empty array (shape {x.shape}); nothing to quantize")
    return x


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
