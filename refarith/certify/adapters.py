"""Adapters: a kernel wrapped as spec-shaped operands -> result codes.

The op's driver (:mod:`refarith.golden.drivers`) says what one vector is: its operands and results, each a
format and a width.  A kernel receives one array per operand, of shape (n,) for width 1 or (n, width) for a
block, row or flattened row-major matrix, and returns one array per result the same way (a single array when
the op has one result).  Targets:

* ``ml_dtypes:<dtype>``  ``np.ndarray.astype`` from the source dtype (float32, float16, float64,
  ml_dtypes.bfloat16) into the ml_dtypes type, viewed as bytes (casts).
* ``torch:<dtype>``      ``Tensor.to(torch.<dtype>)``, viewed as uint8 (casts).
* ``gfloat:<format>``    ``gfloat.encode_ndarray(fi, gfloat.round_ndarray(fi, v))`` with TiesToEven and
  ``sat=False``; ``gfloat:<format>+sat`` passes ``sat=True`` (casts).
* ``torchao:mx``         torchao ``to_mx`` (MX quantization; the spec's scale rule becomes its
  ScaleCalculationMode; elements mxfp8 e4m3/e5m2 and mxfp4).
* ``torchao:nvfp4``      torchao ``nvfp4_quantize`` with 16-element blocks; for ``levels=2`` the per-tensor
  scale is torchao's ``per_tensor_amax_to_scale`` of the vector's amax, as its NVFP4Tensor does.
* ``refarith:exact``     the exact model, vector by vector (slow: golden vectors and fuzzing only).
* ``refarith:numpy`` / ``refarith:torch`` / ``refarith:triton``  refarith's own fast kernel of the op (the
  driver's ``fast``; triton: the traced bit-level kernel emitted for Triton, interpreted on CPU).
* ``triton:<dtype>``     Triton's own conversion ``x.to(tl.<dtype>)`` (float8e4nv, float8e5, float8e4b8,
  float8e5b16; ``+rtz`` for fp_downcast_rounding="rtz") (casts from binary32).
* ``package.module:function``  a user callable, called as ``fn(*operands)``.  Operands in binary16/32/64 or
  bfloat16 arrive as float arrays (numpy dtype; bfloat16 as ml_dtypes.bfloat16) unless the callable has the
  attribute ``refarith_inputs = "codes"``; every other operand arrives as unsigned integer codes.  It returns
  codes (unsigned or signed integers; signed ones are taken as two's complement) or float arrays whose bytes
  are the codes (a 1-, 2-, 4- or 8-byte float dtype of the result's width), a torch tensor being accepted
  wherever an array is.  With a ``device`` (``--device cuda``), operands arrive as torch tensors on that
  device (floats, or int64 codes) and results must be tensors on it.
  A callable with the attribute ``refarith_outputs = "values"`` (fake quantization) returns float *values*
  instead; refarith maps them to codes (:mod:`refarith.certify.values`; values off the format's grid are the
  mismatch class ``off_grid``).
* ``pychop:`` ``compressed_tensors:`` ``brevitas:`` ``quark:`` ``fpy2:`` ``qtorch:``  deployed libraries'
  quantizers (:mod:`refarith.certify.deployed`).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from refarith.errors import BadValueError, KernelError, SpecError
from refarith.formats import get_format
from refarith.golden.drivers import Operand, get_driver
from refarith.spec import Spec, parse_spec

_NP_FLOAT = {"binary64": "float64", "binary32": "float32", "binary16": "float16"}


def code_dtype(nbits: int):
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if nbits <= np.dtype(dt).itemsize * 8:
            return np.dtype(dt)
    raise SpecError(f"{nbits}-bit codes do not fit a numpy integer")


def float_view(codes: np.ndarray, fmt_name: str) -> np.ndarray | None:
    """The codes of an IEEE/bfloat16 source viewed as the matching numpy float array (None if there is none)."""
    if fmt_name in _NP_FLOAT:
        dt = np.dtype(_NP_FLOAT[fmt_name])
        return codes.astype(code_dtype(dt.itemsize * 8), copy=False).view(dt)
    if fmt_name == "bfloat16":
        import ml_dtypes

        return codes.astype(np.uint16, copy=False).view(ml_dtypes.bfloat16)
    return None


def group_columns(operands: tuple[Operand, ...], columns: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Column arrays (one per code column) -> operand arrays ((n,) for width 1, (n, width) otherwise)."""
    out, i = [], 0
    for o in operands:
        dt = code_dtype(o.fmt.nbits)
        if o.width == 1:
            out.append(np.asarray(columns[i]).astype(dt))
        else:
            out.append(np.stack([np.asarray(c) for c in columns[i:i + o.width]], axis=1).astype(dt))
        i += o.width
    return tuple(out)


REAL_EXIT = os._exit
"""``os._exit`` as it was at import, for refarith's own hard exits while :func:`guard_exit` is active."""


class KernelExit(BaseException):
    """Raised in place of ``os._exit`` while a kernel under test runs (see :func:`guard_exit`)."""


class StageTimeout(BaseException):
    """Raised by a stage's time limit into a running kernel (a BaseException, so that a kernel's own ``except
    Exception`` does not swallow it); the runner reports it as a KernelError."""


@contextmanager
def guard_exit(target: str):
    """While the body runs, ``os._exit``/``posix._exit`` called by the thread running it raise KernelError instead of
    ending the process (a kernel that exits must not end a certification with its own exit status); other threads
    (a Dask worker's parent monitor, which ends an orphaned worker with ``os._exit``) and processes forked
    meanwhile keep the real function."""
    import posix
    import threading

    before = os._exit, posix._exit
    pid, tid = os.getpid(), threading.get_ident()

    def _exit(code: int = 0) -> None:
        if os.getpid() != pid or threading.get_ident() != tid:
            REAL_EXIT(code)
        raise KernelExit(code)

    os._exit = posix._exit = _exit
    try:
        yield
    except KernelExit as e:
        raise KernelError(f"kernel {target} called os._exit({e.args[0]})") from None
    finally:
        os._exit, posix._exit = before


def call_guarded(target: str, fn: Callable, *args):
    """``fn(*args)`` with every exception of the kernel under test -- including SystemExit, KeyboardInterrupt and
    other BaseExceptions, and os._exit -- turned into one KernelError naming it."""
    try:
        with guard_exit(target), np.errstate(all="ignore"):  # float casts of NaN/inf warn; we judge the result
            return fn(*args)
    except (KernelError, StageTimeout):
        raise
    except BaseException as e:  # noqa: BLE001 - the kernel under test failed or tried to end the process
        msg = str(e) if not isinstance(e, SystemExit) else f"exit status {e.code!r}"
        raise KernelError(f"kernel {target} raised {type(e).__name__}" + (f": {msg}" if msg else "")) from None


@dataclass
class Kernel:
    """A named kernel: ``fn(spec, operands) -> results``; ``version`` for the certificate; ``source``: a target
    string that :func:`load_kernel` turns back into this kernel in a fresh process (None when there is none)."""

    target: str
    fn: Callable[[Spec, tuple[np.ndarray, ...]], object]
    version: str = ""
    check: Callable[[Spec], None] | None = None
    vectorized: bool = True
    library: str = ""
    """The wrapped library's distribution name and version (deployed-library adapters), for the certificate."""
    library_version: str = ""
    notes: list[str] = field(default_factory=list)
    source: str | None = None
    device: str | None = None
    sr_k_from_spec: bool = False
    """Stochastic-rounding kernels that take k from the spec (identify then varies k through the spec)."""
    takes: Callable[[int], bool] | None = None
    """For user callables: whether it accepts n positional operands (stochastic specs pass the random bits)."""

    def supports(self, spec: Spec) -> None:
        if self.check is not None:
            self.check(spec)

    def __call__(self, spec: Spec, columns: tuple[np.ndarray, ...]) -> np.ndarray:
        """Run the kernel on vectors given column by column; the validated results as an (n, columns) uint64
        array of codes, or KernelError (whatever the kernel raised, named; see :func:`call_guarded`)."""
        from refarith.certify.sr import check_rand, is_sr, kernel_inputs, sr_bits

        d = get_driver(spec)
        if is_sr(spec):  # the random bits, checked before they are narrowed to their operand's dtype
            check_rand(columns[-1], sr_bits(spec), f"random bits r of {spec}")
        operands = group_columns(kernel_inputs(spec), columns)
        n = int(np.asarray(columns[0]).shape[0])
        raw = call_guarded(self.target, self.fn, spec, operands)
        return as_outputs(self.target, raw, n, d.outputs(spec))


def _to_numpy(target: str, raw):
    torch = sys.modules.get("torch")  # a tensor exists only once torch is imported: never import it here
    if torch is not None and hasattr(torch, "Tensor"):
        if isinstance(raw, torch.Tensor):
            raw = raw.detach().cpu()
            if raw.dtype.is_floating_point or raw.dtype in (torch.uint16, torch.uint32, torch.uint64):
                size = raw.element_size()
                view = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[size]
                raw = raw.view(view)
            raw = raw.numpy()
    return raw


def as_codes(target: str, raw, shape, out_fmt) -> np.ndarray:
    """Validate one result array of a kernel and return its codes as uint64.

    Unsigned integers are codes; signed integers are codes or their sign extension (an int8 array of e4m3 bit
    patterns, an int64 array of int8 results); a float array of the result's byte width is reinterpreted.
    Anything else, a wrong shape, or a code that does not fit the format is a KernelError."""
    raw = _to_numpy(target, raw)
    if not isinstance(raw, np.ndarray):
        raise KernelError(f"kernel {target} returned {type(raw).__name__}, expected an array of codes")
    if raw.shape != tuple(shape):
        raise KernelError(f"kernel {target} returned shape {raw.shape}, expected {tuple(shape)}")
    nb = out_fmt.nbits
    if raw.dtype.kind not in "iu":
        nbytes = code_dtype(nb).itemsize
        if raw.dtype.kind in "fV" and raw.dtype.itemsize == nbytes:
            raw = raw.view(code_dtype(nbytes * 8))
        else:
            raise KernelError(f"kernel {target} returned dtype {raw.dtype}, expected integer codes of {out_fmt.name}")
    if raw.dtype.kind == "i":
        v = raw.astype(np.int64)
        if nb < 64:
            bad = (v < -(1 << (nb - 1))) | (v >= (1 << nb))
            if bad.any():
                raise KernelError(f"kernel {target} returned {int(v[bad][0])}, which is neither a {nb}-bit code "
                                  f"of {out_fmt.name} nor its sign extension")
            return (v & ((1 << nb) - 1)).astype(np.uint64)
        return v.view(np.uint64)
    out = raw.astype(np.uint64)
    if nb < 64 and out.size and int(out.max()) >= out_fmt.ncodes:
        bad = int(out[out >= out_fmt.ncodes][0])
        raise KernelError(f"kernel {target} returned code {bad:#x}, which does not fit {nb}-bit {out_fmt.name}")
    return out


def as_outputs(target: str, raw, n: int, outputs: tuple[Operand, ...]) -> np.ndarray:
    """Validate a kernel's results (one array per result operand, or a single array for one result) and return
    them as an (n, columns) uint64 array of codes."""
    from refarith.certify.values import Coded

    if isinstance(raw, Coded):  # a values kernel: refarith already mapped its values to codes
        return raw.codes
    if isinstance(raw, (tuple, list)):
        parts = list(raw)
    else:
        parts = [raw]
    if len(parts) != len(outputs):
        names = ", ".join(o.name for o in outputs)
        raise KernelError(f"kernel {target} returned {len(parts)} results, expected {len(outputs)} ({names})")
    cols = []
    for o, r in zip(outputs, parts):
        r = _to_numpy(target, r)
        if o.width == 1 and isinstance(r, np.ndarray) and r.shape == (n, 1):
            r = r.reshape(n)
        shape = (n,) if o.width == 1 else (n, o.width)
        c = as_codes(f"{target} ({o.name})", r, shape, o.fmt)
        cols.append(c.reshape(n, o.width))
    return np.concatenate(cols, axis=1) if len(cols) > 1 else cols[0]


def _cast_only(target: str, dst_name: str | None = None, sr_ok: bool = False):
    def check(spec: Spec) -> None:
        if spec.op != "cast":
            raise SpecError(f"{target} implements casts, not {spec.op}")
        if not sr_ok and spec.param.get("rounding") == "sr":
            raise SpecError(f"{target} rounds deterministically and takes no random bits; it cannot implement "
                            f"{spec}")
        if dst_name is not None and spec.formats[1] != dst_name:
            raise SpecError(f"{target} casts into {dst_name}, but the spec's target is {spec.formats[1]}")
        if float_view(np.zeros(1, np.uint64), spec.formats[0]) is None:
            raise SpecError(f"{target} takes binary16/32/64 or bfloat16 inputs, not {spec.formats[0]}")
    return check


def _version(pkg: str) -> str:
    try:
        from importlib.metadata import version

        return version(pkg)
    except Exception:  # noqa: BLE001 - a missing distribution record only costs the version string
        return "?"


# ------------------------------------------------------------------ peers: casts
def _ml_dtypes(name: str) -> Kernel:
    try:
        import ml_dtypes
    except ImportError:
        raise KernelError("adapter ml_dtypes: ml_dtypes is not installed") from None
    dt = getattr(ml_dtypes, name, None)
    if dt is None:
        raise KernelError(f"adapter ml_dtypes: no dtype {name!r} in ml_dtypes {ml_dtypes.__version__}")
    dst = get_format(name).name

    def fn(spec: Spec, operands):
        with np.errstate(invalid="ignore", over="ignore"):
            return float_view(operands[0], spec.formats[0]).astype(dt).view(np.uint8)

    return Kernel(f"ml_dtypes:{name}", fn, f"ml_dtypes {ml_dtypes.__version__}", _cast_only(f"ml_dtypes:{name}", dst))


def _torch(name: str, device: str | None = None) -> Kernel:
    try:
        import torch
    except ImportError:
        raise KernelError("adapter torch: torch is not installed") from None
    dt = getattr(torch, name, None)
    if not isinstance(dt, torch.dtype):
        raise KernelError(f"adapter torch: no dtype torch.{name} in torch {torch.__version__}")
    dst = get_format(name).name

    def fn(spec: Spec, operands):
        x = float_view(operands[0], spec.formats[0])
        if spec.formats[0] == "bfloat16":
            t = torch.from_numpy(operands[0].astype(np.int16)).view(torch.bfloat16)
        else:
            t = torch.from_numpy(np.ascontiguousarray(x))
        if device is not None:
            t = t.to(device)
        return t.to(dt).view(torch.uint8).cpu().numpy()

    where = f" on {device}" if device else ""
    return Kernel(f"torch:{name}", fn, f"torch {torch.__version__}{where}", _cast_only(f"torch:{name}", dst),
                  device=device)


_GFLOAT_SR = ("Stochastic", "StochasticOdd", "StochasticFast", "StochasticFastest")
"""gfloat's stochastic RoundModes, selectable as ``gfloat:<format>+<mode>``."""

GFLOAT_MAX_K = 52
"""The widest ``srnumbits`` the gfloat adapter passes: gfloat computes ``srbits * 2.0**-srnumbits`` and
``delta * 2.0**srnumbits`` in float64, exact while the random integers fit its 53-bit significand."""


def _gfloat(name: str) -> Kernel:
    try:
        import gfloat
        import gfloat.formats as gff
    except ImportError:
        raise KernelError("adapter gfloat: gfloat is not installed") from None
    base, *opts = name.split("+")
    sr_modes = {m.lower(): m for m in _GFLOAT_SR}
    bad = [o for o in opts if o != "sat" and o.lower() not in sr_modes]
    if bad or len(opts) != len(set(opts)):
        raise KernelError(f"adapter gfloat: unknown option {'+'.join(bad or opts)!r} (options: '+sat' and one of "
                          f"{', '.join('+' + m for m in _GFLOAT_SR)})")
    modes = [sr_modes[o.lower()] for o in opts if o != "sat"]
    if len(modes) > 1:
        raise KernelError(f"adapter gfloat: one rounding mode per target, got {', '.join(modes)}")
    mode = modes[0] if modes else None
    fi = getattr(gff, f"format_info_{base}", None)
    if fi is None:
        raise KernelError(f"adapter gfloat: no format_info_{base} in gfloat")
    dst = get_format(base).name
    sat = "sat" in opts
    target = f"gfloat:{name}"
    cast_check = _cast_only(target, dst, sr_ok=True)

    def check(spec: Spec) -> None:
        cast_check(spec)
        from refarith.certify.sr import is_sr, sr_bits

        if mode is None and is_sr(spec):
            raise SpecError(f"{target} rounds deterministically (TiesToEven), not stochastically; for {spec} use "
                            f"{target}+Stochastic (or StochasticOdd, StochasticFast, StochasticFastest)")
        if mode is not None and not is_sr(spec):
            raise SpecError(f"{target} rounds stochastically (RoundMode.{mode}); give it a spec with "
                            "rounding=sr,k=N")
        if mode is not None and sr_bits(spec) > GFLOAT_MAX_K:
            raise SpecError(f"{target}: k={sr_bits(spec)} random bits exceed gfloat's float64 word (at most "
                            f"{GFLOAT_MAX_K})")

    def fn(spec: Spec, operands):
        with np.errstate(invalid="ignore", over="ignore"):
            v = float_view(operands[0], spec.formats[0]).astype(np.float64)
            if mode is None:
                r = gfloat.round_ndarray(fi, v, gfloat.RoundMode.TiesToEven, sat=sat)
            else:
                from refarith.certify.sr import check_rand

                k = int(spec.param["k"])
                bits = check_rand(operands[1], k, f"{target}: random bits").astype(np.int64)
                r = gfloat.round_ndarray(fi, v, getattr(gfloat.RoundMode, mode), sat=sat, srbits=bits, srnumbits=k)
            return np.asarray(gfloat.encode_ndarray(fi, r)).astype(np.int64)

    return Kernel(target, fn, f"gfloat {_version('gfloat')}", check, sr_k_from_spec=mode is not None)


# ------------------------------------------------------------------ peers: torchao block quantization
_TAO_MX_ELEMENTS = {"ocp_e4m3": "float8_e4m3fn", "ocp_e5m2": "float8_e5m2", "ocp_e2m1": "float4_e2m1fn_x2"}


def _unpack_fp4(packed: np.ndarray, n: int) -> np.ndarray:
    """torchao's fp4 x2 bytes -> one code per element (low nibble first)."""
    b = packed.reshape(packed.shape[0], -1)
    out = np.empty((b.shape[0], b.shape[1] * 2), dtype=np.uint8)
    out[:, 0::2] = b & 0xF
    out[:, 1::2] = b >> 4
    return out[:, :n]


def _quiet_import(module: str):
    """Import ``module`` with Python logging silenced: torchao's import logs warnings about optional CUDA
    extensions and torch.compile registrations that say nothing about the kernel under test."""
    import logging

    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        return importlib.import_module(module)
    finally:
        logging.disable(previous)


def _torchao(name: str) -> Kernel:
    try:
        import torch

        torchao = _quiet_import("torchao")
    except ImportError:
        raise KernelError(f"adapter torchao:{name}: torchao (and torch) are not installed") from None
    version = f"torchao {getattr(torchao, '__version__', _version('torchao'))}"
    if name == "mx":
        try:
            mt = _quiet_import("torchao.prototype.mx_formats.mx_tensor")
        except Exception as e:  # noqa: BLE001 - any import failure of the prototype module is a missing adapter
            raise KernelError(f"adapter torchao:mx: cannot import torchao.prototype.mx_formats ({e})") from None

        def check(spec: Spec) -> None:
            if spec.op != "mx_quantize":
                raise SpecError(f"torchao:mx implements mx_quantize, not {spec.op}")
            if spec.formats[0] not in _TAO_MX_ELEMENTS:
                raise SpecError(f"torchao:mx has no element dtype for {spec.formats[0]}; it covers "
                                f"{', '.join(_TAO_MX_ELEMENTS)}")

        def fn(spec: Spec, operands):
            x = operands[0].view(np.float32)
            k = x.shape[1]
            dt = getattr(torch, _TAO_MX_ELEMENTS[spec.formats[0]])
            mode = getattr(mt.ScaleCalculationMode, spec.param["scale"].upper())
            s, c = mt.to_mx(torch.from_numpy(np.ascontiguousarray(x)), dt, k, scaling_mode=mode)
            s = s.view(torch.uint8).numpy().reshape(x.shape[0], -1)[:, 0]
            c = c.view(torch.uint8).numpy()
            if spec.formats[0] == "ocp_e2m1":
                c = _unpack_fp4(c, k)
            return s, c.reshape(x.shape[0], k)

        return Kernel("torchao:mx", fn, version, check)
    if name == "nvfp4":
        try:
            nt = _quiet_import("torchao.prototype.mx_formats.nvfp4_tensor")
        except Exception as e:  # noqa: BLE001
            raise KernelError(f"adapter torchao:nvfp4: cannot import torchao.prototype.mx_formats ({e})") from None

        def check(spec: Spec) -> None:
            if spec.op == "nvfp4_recipe":  # the recipe's activation role: 1x16 blocks, round to nearest even
                if spec.param["role"] != "activation":
                    raise SpecError(f"torchao:nvfp4 implements the activation role of nvfp4_recipe only (1x16 "
                                    f"blocks, round to nearest even), not role={spec.param['role']}")
                return
            if spec.op != "nvfp4_quantize":
                raise SpecError(f"torchao:nvfp4 implements nvfp4_quantize, not {spec.op}")
            if spec.param["tile"] != "1x16":
                raise SpecError("torchao:nvfp4 quantizes 1x16 blocks only")

        def fn(spec: Spec, operands):
            x = operands[0].view(np.float32)
            n, m = x.shape
            ts = np.full(n, 0x3F800000, dtype=np.uint32)
            ss, cs = [], []
            for i in range(n):  # one tensor per vector: the per-tensor scale is the vector's own
                t = torch.from_numpy(np.ascontiguousarray(x[i].reshape(-1, 16)))
                pts = None
                if spec.param["levels"] == "2":
                    pts = nt.per_tensor_amax_to_scale(torch.max(torch.abs(t)))
                    ts[i] = np.array([float(pts)], dtype=np.float32).view(np.uint32)[0]
                s, c = nt.nvfp4_quantize(t, 16, pts)
                s = s.view(torch.uint8).numpy().reshape(-1).copy()
                # torchao stores the scales as float8_e4m3fn bytes: its NaN 0xff is the ue4m3 NaN 0x7f; any other
                # byte with the sign bit set would be a negative scale and is left to fail the 7-bit check
                s[s == 0xFF] = 0x7F
                ss.append(s)
                cs.append(_unpack_fp4(c.view(torch.uint8).numpy().reshape(1, -1), m)[0])
            return ts, np.stack(ss), np.stack(cs)

        return Kernel("torchao:nvfp4", fn, version, check)
    raise KernelError(f"unknown torchao adapter {name!r}; use torchao:mx or torchao:nvfp4")


# ------------------------------------------------------------------ refarith itself
def _exact_kernel() -> Kernel:
    def fn(spec: Spec, operands):
        d = get_driver(spec)
        cols = []
        for a in operands:
            a2 = np.asarray(a).reshape(a.shape[0], -1)
            cols.extend(a2[:, j].tolist() for j in range(a2.shape[1]))
        rows = []
        for v in zip(*cols):
            r = d.exact(spec, tuple(int(c) for c in v))
            if r is None:
                raise KernelError(f"refarith:exact: spec {spec} raises for input {v}")
            rows.append(r)
        arr = np.array(rows, dtype=np.uint64).reshape(len(rows), -1)
        out, i = [], 0
        for o in d.outputs(spec):
            out.append(arr[:, i] if o.width == 1 else arr[:, i:i + o.width])
            i += o.width
        return tuple(out)

    return Kernel("refarith:exact", fn, "refarith exact model", vectorized=False)


def _fast_kernel(backend: str, device: str | None = None) -> Kernel:
    if backend in ("torch", "triton"):
        try:
            import torch  # noqa: F401
        except ImportError:
            raise KernelError(f"adapter refarith:{backend}: torch is not installed") from None
    if backend == "triton":
        from refarith.fast.triton_backend import TritonError, _import_triton

        try:
            _import_triton()
        except TritonError as e:
            raise KernelError(f"adapter refarith:triton: {e}") from None

    def check(spec: Spec) -> None:
        from refarith.certify.sr import driver_has_rand, is_sr, sr_variant

        d = get_driver(spec)
        if is_sr(spec) and not driver_has_rand(spec) and sr_variant(spec) != "a":
            raise SpecError(f"refarith:{backend} has no fast kernel for the stochastic variant sr={sr_variant(spec)}")
        if d.fast is None or backend not in d.backends:
            raise SpecError(f"refarith:{backend} has no fast kernel for {spec.op}"
                            + (f" (kernels: {', '.join(d.backends)})" if d.fast is not None else ""))

    def fn(spec: Spec, operands):
        if device is not None:
            import torch

            operands = tuple(torch.from_numpy(np.ascontiguousarray(a).astype(np.int64)).to(device) for a in operands)
        elif backend == "triton":
            import torch

            operands = tuple(torch.from_numpy(np.ascontiguousarray(a).astype(np.int64)) for a in operands)
        from refarith.certify.sr import driver_has_rand, is_sr, sr_bits

        if is_sr(spec) and spec.op == "cast" and not driver_has_rand(spec):  # random bits: the last operand
            from refarith import fast

            p = spec.param
            return (fast.encode(operands[0], spec.formats[1], rounding="sr", overflow=p["overflow"],
                                nan_policy=p.get("nan", "error"), negative=p.get("negative", "error"),
                                rand=operands[1], rand_bits=sr_bits(spec), backend=backend, src=spec.formats[0]),)
        return get_driver(spec).fast(spec, operands, backend)

    where = f" on {device}" if device else ""
    return Kernel(f"refarith:{backend}", fn, f"refarith.fast ({backend}){where}", check, device=device,
                  sr_k_from_spec=True)


# ------------------------------------------------------------------ user callables
def _user(target: str, device: str | None = None) -> Kernel:
    from refarith.targets import import_callable

    obj = import_callable(target, "target")
    k = user_kernel(obj, target, device)
    k.source = target
    return k


def check_device(device: str | None) -> str | None:
    """Canonical device string (``cpu``, ``cuda``, ``cuda:N``) or None; BadValueError when it cannot be used."""
    if device is None:
        return None
    try:
        import torch
    except ImportError:
        raise BadValueError(f"--device {device} needs torch (kernels then receive torch tensors)") from None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise BadValueError(f"--device must be cpu, cuda or cuda:N, got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise BadValueError(f"--device must be cpu, cuda or cuda:N, got {device!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BadValueError(f"--device {device}: no CUDA device is available (torch.cuda.is_available() is False)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BadValueError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
    return str(dev)


def _tensor_input(a: np.ndarray, fmt_name: str, want_codes: bool, device: str):
    import torch

    if want_codes:
        return torch.from_numpy(np.ascontiguousarray(a).astype(np.int64)).to(device)
    if fmt_name == "bfloat16":
        return torch.from_numpy(np.ascontiguousarray(a).astype(np.uint16).view(np.int16)).view(torch.bfloat16).to(
            device)
    v = float_view(a, fmt_name)
    if v is None:
        return torch.from_numpy(np.ascontiguousarray(a).astype(np.int64)).to(device)
    return torch.from_numpy(np.ascontiguousarray(v)).to(device)


def _check_devices(name: str, raw, device: str) -> None:
    """A device kernel's results must be tensors on the device it was given (KernelError naming the first that
    is not)."""
    import torch

    parts = raw if isinstance(raw, (tuple, list)) else (raw,)
    want = torch.device(device)
    for i, r in enumerate(parts):
        if not isinstance(r, torch.Tensor):
            raise KernelError(f"kernel {name} on {device} returned {type(r).__name__} as result {i}, expected a "
                              f"torch tensor on {device}")
        if r.device.type != want.type or (want.index is not None and r.device.index != want.index):
            raise KernelError(f"kernel {name} returned result {i} on {r.device}, expected {device}")


def user_kernel(fn: Callable, name: str | None = None, device: str | None = None) -> Kernel:
    """Wrap a Python callable under the user calling convention of the module docstring.  With ``device``, the
    kernel receives torch tensors on that device (floats, or int64 codes for ``refarith_inputs = "codes"``) and
    must return tensors on it."""
    name = name or f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
    want_codes = getattr(fn, "refarith_inputs", "floats") == "codes"
    values = getattr(fn, "refarith_outputs", "codes") == "values"
    device = check_device(device)

    def call(spec: Spec, operands):
        from refarith.certify.sr import kernel_inputs

        args = []
        for o, a in zip(kernel_inputs(spec), operands):
            if device is not None:
                args.append(_tensor_input(a, o.fmt.name, want_codes, device))
                continue
            v = None if want_codes else float_view(a, o.fmt.name)
            args.append(a if v is None else v)
        raw = fn(*args)
        if device is not None:
            _check_devices(name, raw, device)
        if values:  # fake quantization: float values on the result's grid, mapped to codes by refarith
            from refarith.certify.values import coded

            return coded(name, raw, spec, len(operands[0]))
        return raw

    where = f" on {device}" if device else ""
    return Kernel(name, call, f"user callable {name}{where}", source=_importable(fn), device=device,
                  takes=lambda n: _takes(fn, n))


def _takes(fn: Callable, n: int) -> bool:
    """Whether ``fn`` accepts ``n`` positional arguments (True when its signature cannot be read)."""
    import inspect

    try:
        inspect.signature(fn).bind(*range(n))
    except TypeError:
        return False
    except ValueError:
        return True
    return True


def _importable(fn: Callable) -> str | None:
    """``module:qualname`` of a function that importing that name gives back, else None."""
    mod, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not mod or not qual or "<" in qual or mod == "__main__":
        return None
    obj = sys.modules.get(mod)
    for part in qual.split("."):
        obj = getattr(obj, part, None)
    return f"{mod}:{qual}" if obj is fn else None


def _triton(name: str) -> Kernel:
    from refarith.certify.triton_peer import make_kernel

    return make_kernel(name)


def _deployed(lib: str):
    def load(name: str) -> Kernel:
        from refarith.certify.deployed import load_deployed

        return load_deployed(lib, name)
    return load


_BUILTIN = {"ml_dtypes": _ml_dtypes, "torch": _torch, "gfloat": _gfloat, "torchao": _torchao, "triton": _triton,
            **{lib: _deployed(lib) for lib in ("pychop", "compressed_tensors", "brevitas", "quark", "fpy2",
                                               "qtorch")}}
_ON_DEVICE = {"torch"}
"""Built-in peers that run on the chosen device; the others run where they run natively (numpy on the CPU)."""


def load_kernel(target: str | Callable, device: str | None = None) -> Kernel:
    """Resolve a target name (or wrap a callable); KernelError names a target that cannot be loaded.

    ``device`` (``cpu``, ``cuda``, ``cuda:N``): user kernels receive torch tensors on it, ``torch:`` peers and
    ``refarith:torch``/``refarith:triton`` run on it; numpy-only peers ignore it (noted in the kernel)."""
    if isinstance(target, Kernel):
        return target
    device = check_device(device)
    if callable(target):
        return user_kernel(target, device=device)
    if not isinstance(target, str) or ":" not in target:
        raise KernelError(f"target {target!r}: expected LIBRARY:NAME or package.module:function")
    lib, _, name = target.partition(":")
    if lib in _BUILTIN:
        k = _BUILTIN[lib](name, device) if lib in _ON_DEVICE else _BUILTIN[lib](name)
        if device is not None and lib not in _ON_DEVICE:
            k.notes.append(f"{lib} runs on the CPU; --device {device} does not apply to it")
    elif lib == "refarith":
        if name == "exact":
            k = _exact_kernel()
        elif name in ("numpy", "torch", "triton"):
            k = _fast_kernel(name, device if name != "numpy" else None)
        else:
            raise KernelError(f"unknown refarith adapter {target!r}; use refarith:exact, refarith:numpy, "
                              "refarith:torch, refarith:triton")
    else:
        return _user(target, device)
    k.source = target
    return k


def check_target_spec(kernel: Kernel, spec: Spec | str) -> Spec:
    spec = parse_spec(spec)
    get_driver(spec)
    kernel.supports(spec)
    return spec
