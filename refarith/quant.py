"""Public block / integer quantization API: ``quantize(x, "mxfp4", ...)`` and ``dequantize(q)``.

Formats: the OCP MX formats (``mxfp8_e4m3``/``mxfp8``, ``mxfp8_e5m2``,
``mxfp6_e3m2``/``mxfp6``, ``mxfp6_e2m3``, ``mxfp4``, ``mxint8``, ``mxint8_sym``;
:mod:`refarith.exact.mx`), ``nvfp4`` (:mod:`refarith.exact.nvfp4`), ``hif4`` (HiFloat4 units of 64:
:mod:`refarith.exact.hif4`) and the
integer formats ``int2`` .. ``int8``, ``int16`` (:mod:`refarith.exact.intquant`).
Backends: ``numpy`` and ``torch`` (bit-exact kernels of :mod:`refarith.fast`), ``triton`` (the same kernels
traced into the Triton block graphs of :mod:`refarith.fast.triton_blocks` and :mod:`refarith.fast.hif4`, run on
a CPU torch tensor: Triton's interpreter) and ``exact`` (the exact model, block by block; slow).  The result carries its
canonical spec id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import hif4 as _eh4
from refarith.exact import intquant as _eint
from refarith.exact import mx as _emx
from refarith.exact import nvfp4 as _env

BACKENDS = ("numpy", "torch", "triton", "exact")
NVFP4_VARIANTS = ("division", "levels", "zero_scale", "tile")
INT_VARIANTS = ("scheme", "granularity", "group", "clip")
HIF4_VARIANTS = ("scale_ties", "elem_ties")


@dataclass
class Quantized:
    """A quantized array: element ``codes`` (shaped like the input), per-block ``scales`` (E8M0 / UE4M3 codes
    as uint8, or binary32 scales for integers), integer ``zero_points``, the NVFP4 per-tensor ``tensor_scale``,
    and HiF4's per-unit level-2 bytes and level-3 words ``levels`` (uint8, uint16; ``scales`` holds its E6M2
    codes)."""

    spec: str
    format: str
    codes: np.ndarray
    scales: np.ndarray
    axis: int = -1
    block: int | None = None
    zero_points: np.ndarray | None = None
    tensor_scale: float | None = None
    params: dict = field(default_factory=dict)
    levels: tuple[np.ndarray, np.ndarray] | None = None


def _format_name(fmt) -> str:
    """A quantization format name; a dtype or format record is accepted for the integer formats (``np.int8``,
    ``torch.int8``, ``ml_dtypes.int4``); BadValueError naming anything else."""
    if isinstance(fmt, str):
        return fmt
    from refarith.errors import UnknownFormatError
    from refarith.formats import IntFormat, get_format

    try:
        f = get_format(fmt)
    except UnknownFormatError as e:
        raise BadValueError(f"quantization format: {e}") from None
    if not isinstance(f, IntFormat) or not f.signed or f.symmetric:
        raise BadValueError(f"{fmt!r} ({f.name}) is not a quantization format; expected an MX format "
                            f"({', '.join(_emx.MX_FORMATS)}), nvfp4, hif4, or int2..int8/int16")
    return f.name


def _kind(fmt: str) -> str:
    f = fmt.lower()
    if f in _emx.MX_FORMATS or f in _emx.MX_ALIASES:
        return "mx"
    if f == "nvfp4":
        return "nvfp4"
    if f == "hif4":
        return "hif4"
    if f.startswith("int") and f[3:].isdigit():
        return "int"
    raise BadValueError(f"unknown quantization format {fmt!r}; expected an MX format "
                        f"({', '.join(_emx.MX_FORMATS)}), nvfp4, hif4, or int2..int8/int16")


def _as_numpy_f32(x) -> np.ndarray:
    """``x`` as binary32 without changing a value: float64/integer inputs must hold binary32 numbers only; an
    ml_dtypes array (bfloat16, float8_*, int4, ...) is read by its bits and widened exactly by the exact model."""
    from refarith.api import ml_dtypes_codes

    ml = ml_dtypes_codes(x)  # ml_dtypes arrays, torch bfloat16 / float8 tensors: by their bits
    if ml is not None:
        return _widen_codes(ml[0], ml[1])
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise BadValueError(f"cannot quantize an array of dtype {a.dtype}")
    if a.dtype != np.float32:
        with np.errstate(over="ignore"):
            b = a.astype(np.float32)
        if a.dtype.kind == "f" and a.dtype.itemsize > 4:
            if not ((b.astype(a.dtype) == a) | np.isnan(a)).all():
                raise BadValueError("input holds values that are not binary32 numbers; round them to float32 first")
        elif a.dtype.kind in "iu" and a.dtype.itemsize >= 4:  # integers beyond 2^24 may not be binary32 numbers
            for i in np.flatnonzero(np.abs(a.astype(np.float64)) > 2.0 ** 24):
                if int(a.flat[i]) != int(b.flat[i]):
                    raise BadValueError(f"input holds the integer {int(a.flat[i])}, not a binary32 number; round "
                                        "the input to float32 first")
        a = b
    return a


def _widen_codes(codes: np.ndarray, fmt) -> np.ndarray:
    """binary32 values of codes of a format whose every value is a binary32 number (the ml_dtypes formats), each
    distinct code decoded once by the exact model (a NaN keeps its sign)."""
    from refarith.api import exact_values
    from refarith.formats import IntFormat

    if isinstance(fmt, IntFormat):
        return exact_values(codes, fmt).astype(np.float32)
    uniq, inv = np.unique(codes.ravel(), return_inverse=True)
    vals = exact_values(uniq, fmt)
    f = np.array([np.copysign(np.nan, -1.0) if v.is_nan and v.sign else v.to_float() for v in vals], np.float64)
    return f.astype(np.float32)[inv].reshape(codes.shape)


def _run(fn, x: np.ndarray, backend: str, *args, **kw):
    """``fn`` (a kernel of :mod:`refarith.fast` taking ``backend=``) on ``x``: numpy as is; torch and triton on a
    CPU tensor of ``x``, results back as numpy arrays."""
    if backend in ("torch", "triton"):
        import torch

        out = fn(torch.from_numpy(np.ascontiguousarray(x)), *args, backend=backend, **kw)
        return tuple(o.numpy() if isinstance(o, torch.Tensor) else o for o in out)
    return fn(x, *args, backend="numpy", **kw)


def quantize(x, format: str | object, axis: int = -1, block: int | None = None, scale: str = "floor",
             rounding: str = "rne", backend: str = "numpy", **variant) -> Quantized:
    """Quantize a binary32 array (numpy, torch, or array-like; ml_dtypes and torch bfloat16/float8 arrays are read
    by their bits and widened exactly) along ``axis``.  ``format``: a name below (integer formats also as a dtype).

    MX: ``block`` (32), ``scale`` (floor/ceil/even/rceil), ``rounding``.  NVFP4:
    variants ``division``, ``levels``, ``zero_scale``, ``tile`` (``block`` must
    be 16 or None; ``axis`` must be the last).  Integers: variants ``scheme``,
    ``granularity``, ``group``, ``clip``; ``rounding`` rne/rna; ``block`` is
    taken as the group size.  HiF4: units of 64 (``block`` 64 or None), variants ``scale_ties``, ``elem_ties``.
    """
    if backend not in BACKENDS:
        raise UnknownModeError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    format = _format_name(format)
    kind = _kind(format)
    a = _as_numpy_f32(x)
    if kind == "mx":
        if variant:
            raise BadValueError(f"unknown MX parameter(s) {', '.join(variant)}")
        blk = 32 if block is None else block
        el = _emx.mx_element(format)
        spec = str(_emx.mx_spec(el.name, blk, scale, rounding))
        if backend == "exact":
            s, c = _mx_exact(a, el.name, axis, blk, scale, rounding)
        else:
            from refarith.fast.mx import mx_quantize

            s, c = _run(mx_quantize, a, backend, el.name, axis, blk, scale, rounding)
        return Quantized(spec, format.lower(), c, s, axis, blk, params={"scale": scale, "rounding": rounding})
    if kind == "nvfp4":
        bad = set(variant) - set(NVFP4_VARIANTS)
        if bad:
            raise BadValueError(f"unknown NVFP4 parameter(s) {', '.join(sorted(bad))}")
        if block not in (None, 16):
            raise BadValueError("NVFP4 blocks are 16 elements (use tile=16x16 for 2-D tiles)")
        if axis not in (-1, a.ndim - 1):
            a = np.moveaxis(a, axis, -1)
        kw = {"division": "reciprocal", "levels": 2, "zero_scale": "eps", "tile": "1x16"}
        kw.update(variant)
        try:
            kw["levels"] = int(kw["levels"])
        except (TypeError, ValueError):
            raise BadValueError(f"NVFP4 levels must be 1 or 2, got {kw['levels']!r}") from None
        spec = str(_env.nvfp4_spec(kw["division"], kw["levels"], kw["zero_scale"], kw["tile"], rounding))
        if backend == "exact":
            st, s, c = _nv_exact(a, rounding=rounding, **kw)
        else:
            from refarith.fast.nvfp4 import nvfp4_quantize

            st, s, c = _run(nvfp4_quantize, a, backend, kw["division"], kw["levels"], kw["zero_scale"], kw["tile"],
                            rounding)
        if axis not in (-1, a.ndim - 1):
            c = np.moveaxis(c, -1, axis)
            s = np.moveaxis(s, -1, axis)
        return Quantized(spec, "nvfp4", c, s, axis, 16, tensor_scale=None if st is None else float(st),
                         params=dict(kw, rounding=rounding))
    if kind == "hif4":
        if scale != "floor":
            raise BadValueError("HiF4 has no scale= rule; its scale rounding is scale_ties=even|away")
        return _hif4(a, axis, block, rounding, backend, variant)
    bits = int(format[3:])
    bad = set(variant) - set(INT_VARIANTS)
    if bad:
        raise BadValueError(f"unknown integer quantization parameter(s) {', '.join(sorted(bad))}")
    kw = {"scheme": "symmetric", "granularity": "tensor", "group": 128, "clip": "symmetric"}
    kw.update(variant)
    if block is not None:
        kw["group"], kw["granularity"] = block, "group"
    kw["group"] = int(kw["group"])
    spec = str(_eint.intquant_spec(bits, kw["scheme"], kw["granularity"], kw["group"], kw["clip"], rounding))
    from refarith.fast import intquant as _fint

    if backend == "exact":
        s, z, c = _int_exact(a, bits, rounding=rounding, axis=axis, **kw)
    elif backend in ("torch", "triton"):
        import torch

        t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))
        s, z, c = (v.cpu().numpy() for v in _fint.quantize(t, bits, kw["scheme"], kw["granularity"], kw["group"],
                                                           kw["clip"], rounding, axis, backend=backend))
    else:
        s, z, c = _fint.quantize(a, bits, kw["scheme"], kw["granularity"], kw["group"], kw["clip"], rounding, axis)
    return Quantized(spec, f"int{bits}", c, s, axis, kw["group"], zero_points=z, params=dict(kw, rounding=rounding))


def dequantize(q: Quantized, backend: str = "numpy") -> np.ndarray:
    """float32 values of a :class:`Quantized` (exact: X * P for MX; fl(P * S * s_t) for NVFP4;
    fl((q - z) * s) for integers)."""
    if backend not in ("numpy", "torch"):
        raise UnknownModeError("dequantize runs on the numpy or torch backend")
    kind = _kind(q.format)
    if kind == "mx":
        from refarith.fast.mx import mx_dequantize

        if backend == "torch":
            import torch

            return mx_dequantize(torch.from_numpy(q.scales), torch.from_numpy(q.codes), q.format, q.axis, q.block,
                                 backend="torch").numpy()
        return mx_dequantize(q.scales, q.codes, q.format, q.axis, q.block)
    if kind == "nvfp4":
        from refarith.fast.nvfp4 import nvfp4_dequantize

        c, s = q.codes, q.scales
        moved = q.axis not in (-1, c.ndim - 1)
        if moved:
            c, s = np.moveaxis(c, q.axis, -1), np.moveaxis(s, q.axis, -1)
        ts = None if q.tensor_scale is None else np.float32(q.tensor_scale)
        out = nvfp4_dequantize(ts, s, c, q.params.get("tile", "1x16"))
        return np.moveaxis(out, -1, q.axis) if moved else out
    if kind == "hif4":
        from refarith.fast.hif4 import hif4_dequantize

        return hif4_dequantize(q.scales, q.levels[0], q.levels[1], q.codes, q.axis)
    from refarith.fast import intquant as _fint

    return _fint.dequantize(q.scales, q.zero_points, q.codes, q.params["granularity"], q.params["group"], q.axis)


# ------------------------------------------------------------------ .npz files (`refarith quantize`)
NPZ_SCHEMA_VERSION = 1
"""Version of the arrays of a quantized .npz (:func:`quantized_arrays`, :func:`load_quantized`)."""

_SPEC_OPS = {"mx": "mx_quantize", "nvfp4": "nvfp4_quantize", "int": "int_quantize", "hif4": "hif4_quantize"}


def quantized_arrays(q: Quantized) -> dict[str, np.ndarray]:
    """The arrays of ``q`` as ``refarith quantize`` saves them in a .npz (no object arrays, so the file loads
    without pickle): codes, scales, spec, format, axis, block (-1: none), schema_version, and zero_points /
    tensor_scale / d8 and d16 (HiF4) when present."""
    arrays = {"schema_version": np.array(NPZ_SCHEMA_VERSION, np.int64), "codes": q.codes, "scales": q.scales,
              "spec": np.array(q.spec), "format": np.array(q.format), "axis": np.array(q.axis, np.int64),
              "block": np.array(-1 if q.block is None else q.block, np.int64)}
    if q.zero_points is not None:
        arrays["zero_points"] = q.zero_points
    if q.tensor_scale is not None:
        arrays["tensor_scale"] = np.array(q.tensor_scale, np.float32)
    if q.levels is not None:
        arrays["d8"], arrays["d16"] = q.levels
    return arrays


def load_quantized(path) -> Quantized:
    """The :class:`Quantized` of a .npz written by ``refarith quantize`` (read with ``allow_pickle=False``), ready
    for :func:`dequantize`.  BadValueError naming the problem for a file that is missing, not a .npz, or whose
    arrays are incomplete or inconsistent (spec against format, dtypes, shapes)."""
    from refarith.errors import RefarithError
    from refarith.spec import parse_spec

    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise BadValueError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError) as e:
        raise BadValueError(f"{path}: not a quantized .npz ({e})") from None
    need = ("codes", "scales", "spec", "format", "axis", "block")
    missing = [k for k in need if k not in arrays]
    if missing:
        raise BadValueError(f"{path}: not a refarith quantize file (missing {', '.join(missing)})")
    version = int(arrays["schema_version"]) if "schema_version" in arrays else NPZ_SCHEMA_VERSION
    if version != NPZ_SCHEMA_VERSION:
        raise BadValueError(f"{path}: schema_version {version} is not {NPZ_SCHEMA_VERSION}, the one this refarith "
                            "reads")
    for k in ("spec", "format"):
        if arrays[k].dtype.kind != "U" or arrays[k].ndim != 0:
            raise BadValueError(f"{path}: {k} must be a text scalar")
    for k in ("axis", "block"):
        if arrays[k].dtype.kind not in "iu" or arrays[k].ndim != 0:
            raise BadValueError(f"{path}: {k} must be an integer scalar")
    spec_text, fmt = str(arrays["spec"]), str(arrays["format"])
    try:
        kind = _kind(fmt)
        spec = parse_spec(spec_text)
    except RefarithError as e:
        raise BadValueError(f"{path}: {e}") from None
    if spec.op != _SPEC_OPS[kind]:
        raise BadValueError(f"{path}: spec {spec} is not a quantization of format {fmt}")
    codes, scales = arrays["codes"], arrays["scales"]
    want = ("int8", "int16") if kind == "int" else ("uint8",)
    if codes.dtype.name not in want:
        raise BadValueError(f"{path}: codes of {fmt} must be {' or '.join(want)}, not {codes.dtype}")
    if scales.dtype.name != ("float32" if kind == "int" else "uint8"):
        raise BadValueError(f"{path}: scales of {fmt} must be {'float32' if kind == 'int' else 'uint8'}, "
                            f"not {scales.dtype}")
    params = dict(spec.params)
    if kind == "nvfp4":
        params["levels"] = int(params["levels"])
    if kind == "int":
        params["group"] = int(params["group"])
        if "zero_points" not in arrays:
            raise BadValueError(f"{path}: an integer quantization needs zero_points")
    levels = None
    if kind == "hif4":
        if "d8" not in arrays or "d16" not in arrays:
            raise BadValueError(f"{path}: a HiF4 quantization needs d8 and d16")
        for k, dt in (("d8", "uint8"), ("d16", "uint16")):
            if arrays[k].dtype.name != dt or arrays[k].shape != scales.shape:
                raise BadValueError(f"{path}: {k} must be {dt} of the scales' shape {scales.shape}, not "
                                    f"{arrays[k].dtype} {arrays[k].shape}")
        levels = (arrays["d8"], arrays["d16"])
    axis, block = int(arrays["axis"]), int(arrays["block"])
    if codes.ndim == 0 or not -codes.ndim <= axis < codes.ndim:
        raise BadValueError(f"{path}: axis {axis} is not an axis of codes of shape {codes.shape}")
    ts = arrays.get("tensor_scale")
    if ts is not None and (ts.dtype != np.float32 or ts.ndim != 0):
        raise BadValueError(f"{path}: tensor_scale must be a float32 scalar")
    q = Quantized(spec_text, fmt, codes, scales, axis, None if block < 0 else block, zero_points=arrays.get(
        "zero_points"), tensor_scale=None if ts is None else float(ts), params=params, levels=levels)
    try:
        dequantize(q)
    except (ValueError, IndexError, KeyError, TypeError) as e:
        raise BadValueError(f"{path}: codes, scales and parameters do not fit together ({e})") from None
    return q


# ------------------------------------------------------------------ exact backend (block by block)
def _mx_exact(a, element, axis, block, scale, rounding):
    from refarith.fast.mx import _from_blocks, _normalize_axis, _scales_shape, _to_blocks, ops

    xp = ops("numpy")
    ax = _normalize_axis(axis, a.ndim)
    blocks, shape = _to_blocks(a, ax, block, xp)
    n = shape[-1]
    s = np.zeros(blocks.shape[:2], np.uint8)
    c = np.zeros(blocks.shape, np.uint8)
    for r in range(blocks.shape[0]):
        for b in range(blocks.shape[1]):
            m = min(block, n - b * block)
            blk = _emx.quantize_block([float(v) for v in blocks[r, b, :m]], element, scale, rounding)
            s[r, b] = blk.scale
            c[r, b, :m] = blk.codes
    return _scales_shape(s, shape, ax, xp), _from_blocks(c, shape, ax, xp)


def _nv_exact(a, division, levels, zero_scale, tile, rounding):
    from refarith.fast.nvfp4 import _blocks, _scale_shape, _unblocks, ops

    xp = ops("numpy")
    blocks, shape = _blocks(a, tile, xp)
    bl = blocks.reshape(-1, blocks.shape[-1]).view(np.uint32).astype(np.int64).tolist()
    q = _env.quantize_blocks(bl, division, levels, zero_scale, rounding)
    s = np.array(q.scales, np.uint8).reshape(blocks.shape[:2])
    c = np.array(q.codes, np.uint8).reshape(blocks.shape)
    st = None if q.tensor_scale is None else np.array([q.tensor_scale], np.uint32).view(np.float32)[0]
    return st, _scale_shape(s, shape, tile), _unblocks(c, shape, tile, xp)


def _int_exact(a, bits, scheme, granularity, group, clip, rounding, axis):
    from refarith.fast.intquant import groups, ungroup

    g, info = groups(a, granularity, axis, group)
    n = info[0][-1] if granularity == "group" else g.shape[1]
    s = np.zeros(g.shape[0], np.float32)
    z = np.zeros(g.shape[0], np.int32)
    qs = np.zeros(g.shape, np.int64)
    for i in range(g.shape[0]):
        m = g.shape[1]
        if granularity == "group":
            m = min(group, n - (i % (-(-n // group))) * group)
        eg = _eint.quantize_group([float(v) for v in g[i, :m]], bits, scheme, clip, rounding)
        s[i], z[i] = float(eg.scale), eg.zero_point
        qs[i, :m] = eg.q
    return s, z, ungroup(qs.astype(np.int16 if bits == 16 else np.int8), info, granularity, group)


def _hif4(a, axis, block, rounding, backend, variant) -> Quantized:
    """HiF4 units of 64 along ``axis``: numpy, torch, triton (:func:`refarith.fast.hif4.hif4_quantize`) or the
    exact model unit by unit."""
    bad = set(variant) - set(HIF4_VARIANTS)
    if bad:
        raise BadValueError(f"unknown HiF4 parameter(s) {', '.join(sorted(bad))}")
    if block not in (None, _eh4.UNIT):
        raise BadValueError(f"HiF4 units are {_eh4.UNIT} elements, not {block}")
    if rounding != "rne":
        raise BadValueError("HiF4 rounding is set by scale_ties and elem_ties, not rounding=")
    kw = {"scale_ties": "even", "elem_ties": "away"}
    kw.update(variant)
    spec = str(_eh4.hif4_spec(kw["scale_ties"], kw["elem_ties"]))
    if backend == "exact":
        m = np.moveaxis(a, axis, -1)
        if m.ndim == 0 or m.shape[-1] % _eh4.UNIT:
            raise BadValueError(f"HiF4 quantizes units of {_eh4.UNIT} elements along the axis; its length "
                                f"{m.shape[-1] if m.ndim else 0} is not a multiple of {_eh4.UNIT}")
        units = [_eh4.quantize_unit([float(v) for v in row], kw["scale_ties"], kw["elem_ties"])
                 for row in m.reshape(-1, _eh4.UNIT)]
        lead = m.shape[:-1] + (m.shape[-1] // _eh4.UNIT,)
        s, w8, w16 = (np.moveaxis(np.array(v, dt).reshape(lead), -1, axis) for v, dt in (
            ([u.scale for u in units], np.uint8), ([u.d8_word for u in units], np.uint8),
            ([u.d16_word for u in units], np.uint16)))
        c = np.moveaxis(np.array([u.codes for u in units], np.uint8).reshape(m.shape), -1, axis)
    else:
        from refarith.fast.hif4 import hif4_quantize

        s, w8, w16, c = _run(hif4_quantize, a, backend, axis, kw["scale_ties"], kw["elem_ties"])
        s, w8, c = (np.asarray(v, np.uint8) for v in (s, w8, c))
        w16 = np.asarray(w16).astype(np.uint16)
    return Quantized(spec, "hif4", c, s, axis, _eh4.UNIT, params=kw, levels=(w8, w16))


def error_stats(x, y) -> dict:
    """max abs error, max relative error (over non-zero x), SQNR in dB of y approximating x (finite entries)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return {"max_abs": float("nan"), "max_rel": float("nan"), "sqnr_db": float("nan")}
    e = np.abs(x[ok] - y[ok])
    nz = x[ok] != 0
    rel = float((e[nz] / np.abs(x[ok][nz])).max()) if nz.any() else 0.0
    sig = float(np.sum(x[ok] ** 2))
    noise = float(np.sum(e ** 2))
    sqnr = float("inf") if noise == 0 else (10 * np.log10(sig / noise) if sig > 0 else float("-inf"))
    return {"max_abs": float(e.max()), "max_rel": rel, "sqnr_db": sqnr}
