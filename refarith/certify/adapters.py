"""Adapters: a third-party kernel wrapped as spec-shaped input codes -> output codes.

A kernel is called with one unsigned integer array of input codes per operand
and returns an integer array of output codes of the same shape.  Targets:

* ``ml_dtypes:<dtype>``  ``np.ndarray.astype`` from the source dtype (float32,
  float16, float64, ml_dtypes.bfloat16) into the ml_dtypes type, viewed as bytes.
* ``torch:<dtype>``      ``Tensor.to(torch.<dtype>)``, viewed as uint8.
* ``gfloat:<format>``    ``gfloat.encode_ndarray(fi, gfloat.round_ndarray(fi, v))`` with
  TiesToEven and ``sat=False``; ``gfloat:<format>+sat`` passes ``sat=True``.
* ``torchao:mx`` / ``torchao:nvfp4``  need torchao (block ops, not casts).
* ``refarith:exact``     the exact model, element by element (slow: vectors and fuzzing only).
* ``refarith:numpy`` / ``refarith:torch``  ``refarith.fast.encode`` with the spec's parameters.
* ``package.module:function``  a user callable.  For a cast from binary16/32/64
  or bfloat16 it receives the float array (numpy dtype; bfloat16 as
  ml_dtypes.bfloat16) unless it has the attribute ``refarith_inputs = "codes"``;
  otherwise it receives the code arrays.  It returns codes (unsigned or signed
  integers) or an array of a 1- or 2-byte float dtype whose bytes are the codes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from refarith.errors import KernelError, SpecError
from refarith.formats import get_format
from refarith.golden.drivers import get_driver
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


@dataclass
class Kernel:
    """A named kernel: ``fn(spec, inputs) -> codes``; ``version`` for the certificate."""

    target: str
    fn: Callable[[Spec, tuple[np.ndarray, ...]], np.ndarray]
    version: str = ""
    check: Callable[[Spec], None] | None = None
    vectorized: bool = True
    notes: list[str] = field(default_factory=list)

    def supports(self, spec: Spec) -> None:
        if self.check is not None:
            self.check(spec)

    def __call__(self, spec: Spec, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        """Run the kernel and validate its result (shape, integer codes in range) or raise KernelError."""
        d = get_driver(spec)
        out_fmt = d.output_format(spec)
        try:
            with np.errstate(all="ignore"):  # float casts of NaN/inf warn in numpy; the result is what we judge
                raw = self.fn(spec, inputs)
        except KernelError:
            raise
        except Exception as e:  # the kernel under test failed: a bad-input condition, named
            raise KernelError(f"kernel {self.target} raised {type(e).__name__}: {e}") from None
        return as_codes(self.target, raw, inputs[0].shape, out_fmt)


def as_codes(target: str, raw, shape, out_fmt) -> np.ndarray:
    """Validate a kernel's output and return it as int64 codes."""
    try:
        import torch

        if isinstance(raw, torch.Tensor):
            raw = raw.detach().cpu()
            if raw.dtype.is_floating_point and raw.element_size() <= 2:
                raw = raw.view(torch.uint8 if raw.element_size() == 1 else torch.int16)
            raw = raw.numpy()
    except ImportError:
        pass
    if not isinstance(raw, np.ndarray):
        raise KernelError(f"kernel {target} returned {type(raw).__name__}, expected an array of codes")
    if raw.shape != tuple(shape):
        raise KernelError(f"kernel {target} returned shape {raw.shape}, expected {tuple(shape)}")
    if raw.dtype.kind not in "iu":
        if raw.dtype.itemsize in (1, 2) and raw.dtype.kind in "fV":
            raw = raw.view(np.uint8 if raw.dtype.itemsize == 1 else np.uint16)
        else:
            raise KernelError(f"kernel {target} returned dtype {raw.dtype}, expected integer codes of {out_fmt.name}")
    out = raw.astype(np.int64)
    if raw.dtype.kind == "i" and raw.dtype.itemsize < 8:  # signed bytes/halfwords carry codes as two's complement
        out &= (1 << (raw.dtype.itemsize * 8)) - 1
    if out.size and (out.min() < 0 or out.max() >= out_fmt.ncodes):
        bad = int(out[(out < 0) | (out >= out_fmt.ncodes)][0])
        raise KernelError(f"kernel {target} returned code {bad:#x}, which does not fit {out_fmt.nbits}-bit "
                          f"{out_fmt.name}")
    return out


def _cast_only(target: str, dst_name: str | None = None):
    def check(spec: Spec) -> None:
        if spec.op != "cast":
            raise SpecError(f"{target} implements casts, not {spec.op}")
        if dst_name is not None and spec.formats[1] != dst_name:
            raise SpecError(f"{target} casts into {dst_name}, but the spec's target is {spec.formats[1]}")
        if float_view(np.zeros(1, np.uint64), spec.formats[0]) is None:
            raise SpecError(f"{target} takes binary16/32/64 or bfloat16 inputs, not {spec.formats[0]}")
    return check


# ------------------------------------------------------------------ peers
def _ml_dtypes(name: str) -> Kernel:
    try:
        import ml_dtypes
    except ImportError:
        raise KernelError("adapter ml_dtypes: ml_dtypes is not installed") from None
    dt = getattr(ml_dtypes, name, None)
    if dt is None:
        raise KernelError(f"adapter ml_dtypes: no dtype {name!r} in ml_dtypes {ml_dtypes.__version__}")
    dst = get_format(name).name

    def fn(spec: Spec, inputs):
        with np.errstate(invalid="ignore", over="ignore"):
            return float_view(inputs[0], spec.formats[0]).astype(dt).view(np.uint8)

    return Kernel(f"ml_dtypes:{name}", fn, f"ml_dtypes {ml_dtypes.__version__}", _cast_only(f"ml_dtypes:{name}", dst))


def _torch(name: str) -> Kernel:
    try:
        import torch
    except ImportError:
        raise KernelError("adapter torch: torch is not installed") from None
    dt = getattr(torch, name, None)
    if not isinstance(dt, torch.dtype):
        raise KernelError(f"adapter torch: no dtype torch.{name} in torch {torch.__version__}")
    dst = get_format(name).name

    def fn(spec: Spec, inputs):
        x = float_view(inputs[0], spec.formats[0])
        if spec.formats[0] == "bfloat16":
            t = torch.from_numpy(inputs[0].astype(np.int16)).view(torch.bfloat16)
        else:
            t = torch.from_numpy(np.ascontiguousarray(x))
        return t.to(dt).view(torch.uint8).numpy()

    return Kernel(f"torch:{name}", fn, f"torch {torch.__version__}", _cast_only(f"torch:{name}", dst))


def _gfloat(name: str) -> Kernel:
    try:
        import gfloat
        import gfloat.formats as gff
    except ImportError:
        raise KernelError("adapter gfloat: gfloat is not installed") from None
    base, _, opt = name.partition("+")
    if opt not in ("", "sat"):
        raise KernelError(f"adapter gfloat: unknown option {opt!r} (only '+sat')")
    fi = getattr(gff, f"format_info_{base}", None)
    if fi is None:
        raise KernelError(f"adapter gfloat: no format_info_{base} in gfloat")
    dst = get_format(base).name
    sat = opt == "sat"
    try:
        from importlib.metadata import version

        ver = version("gfloat")
    except Exception:
        ver = "?"

    def fn(spec: Spec, inputs):
        with np.errstate(invalid="ignore", over="ignore"):
            v = float_view(inputs[0], spec.formats[0]).astype(np.float64)
            r = gfloat.round_ndarray(fi, v, gfloat.RoundMode.TiesToEven, sat=sat)
            return np.asarray(gfloat.encode_ndarray(fi, r)).astype(np.int64)

    return Kernel(f"gfloat:{name}", fn, f"gfloat {ver}", _cast_only(f"gfloat:{name}", dst))


def _torchao(name: str) -> Kernel:
    try:
        import torchao  # noqa: F401
    except ImportError:
        raise KernelError(f"adapter torchao:{name}: torchao is not installed") from None
    raise KernelError(f"adapter torchao:{name}: block quantization specs (mx_quantize/nvfp4_quantize) have no "
                      "vector driver yet, so torchao cannot be certified here")


# ------------------------------------------------------------------ refarith itself
def _exact_kernel() -> Kernel:
    def fn(spec: Spec, inputs):
        d = get_driver(spec)
        cols = [a.tolist() for a in inputs]
        out = []
        for v in zip(*cols):
            r = d.exact(spec, tuple(int(c) for c in v))
            if r is None:
                raise KernelError(f"refarith:exact: spec {spec} raises for input {v}")
            out.append(r)
        return np.array(out, dtype=np.int64).reshape(inputs[0].shape)

    return Kernel("refarith:exact", fn, "refarith exact model", vectorized=False)


def _fast_kernel(backend: str) -> Kernel:
    try:
        from refarith import fast
    except ImportError:
        raise KernelError(f"adapter refarith:{backend}: refarith.fast is not available in this installation") from None
    if not hasattr(fast, "encode"):
        raise KernelError(f"adapter refarith:{backend}: refarith.fast has no encode kernel yet")

    def fn(spec: Spec, inputs):
        if spec.op != "cast":
            raise KernelError(f"refarith:{backend} has no fast kernel for {spec.op}")
        p = spec.param
        src = spec.fmt(0)
        x = inputs[0].astype(code_dtype(src.nbits))
        return fast.encode(x, spec.formats[1], rounding=p["rounding"], overflow=p["overflow"],
                           nan_policy=p.get("nan", "error"), negative=p.get("negative", "error"),
                           backend=backend, src=spec.formats[0])

    def check(spec: Spec) -> None:
        if spec.op != "cast":
            raise SpecError(f"refarith:{backend} has fast kernels for casts only, not {spec.op}")

    return Kernel(f"refarith:{backend}", fn, f"refarith.fast ({backend})", check)


# ------------------------------------------------------------------ user callables
def _user(target: str) -> Kernel:
    mod_name, _, fn_name = target.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except Exception as e:
        raise KernelError(f"cannot import module {mod_name!r} for target {target!r}: {type(e).__name__}: {e}") from None
    obj = mod
    for part in fn_name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise KernelError(f"module {mod_name!r} has no attribute {fn_name!r} (target {target!r})")
    if not callable(obj):
        raise KernelError(f"target {target!r} is not callable")
    return user_kernel(obj, target)


def user_kernel(fn: Callable, name: str | None = None) -> Kernel:
    """Wrap a Python callable under the user calling convention of the module docstring."""
    name = name or f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
    want_codes = getattr(fn, "refarith_inputs", "floats") == "codes"

    def call(spec: Spec, inputs):
        if spec.op == "cast" and not want_codes:
            x = float_view(inputs[0], spec.formats[0])
            if x is not None:
                return fn(x)
        src = get_driver(spec).input_formats(spec)
        return fn(*(a.astype(code_dtype(f.nbits)) for a, f in zip(inputs, src)))

    return Kernel(name, call, f"user callable {name}")


_BUILTIN = {"ml_dtypes": _ml_dtypes, "torch": _torch, "gfloat": _gfloat, "torchao": _torchao}


def load_kernel(target: str | Callable) -> Kernel:
    """Resolve a target name (or wrap a callable); KernelError names a target that cannot be loaded."""
    if isinstance(target, Kernel):
        return target
    if callable(target):
        return user_kernel(target)
    if not isinstance(target, str) or ":" not in target:
        raise KernelError(f"target {target!r}: expected LIBRARY:NAME or package.module:function")
    lib, _, name = target.partition(":")
    if lib in _BUILTIN:
        return _BUILTIN[lib](name)
    if lib == "refarith":
        if name == "exact":
            return _exact_kernel()
        if name in ("numpy", "torch"):
            return _fast_kernel(name)
        raise KernelError(f"unknown refarith adapter {target!r}; use refarith:exact, refarith:numpy, refarith:torch")
    return _user(target)


def check_target_spec(kernel: Kernel, spec: Spec | str) -> Spec:
    spec = parse_spec(spec)
    get_driver(spec)
    kernel.supports(spec)
    return spec
