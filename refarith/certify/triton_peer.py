"""The ``triton:<dtype>`` peer: Triton's own float conversions (``tensor.to(tl.float8e4nv)`` and friends).

Targets ``triton:float8e4nv`` (OCP E4M3), ``triton:float8e5`` (OCP E5M2), ``triton:float8e4b8`` (E4M3 FNUZ),
``triton:float8e5b16`` (E5M2 FNUZ); a ``+rtz`` suffix selects ``fp_downcast_rounding="rtz"`` instead of the
default ``"rtne"``.  On CPU the conversion runs under Triton's interpreter (its own numpy emulation of the cast, a
code path separate from the compiled GPU conversion: certify both, trust neither); on CUDA the compiled kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refarith.errors import KernelError, SpecError

DTYPES = {"float8e4nv": "ocp_e4m3", "float8e5": "ocp_e5m2", "float8e4b8": "e4m3fnuz", "float8e5b16": "e5m2fnuz"}
"""Triton dtype name -> refarith target format."""

def convert(x: Any, dtype: str, rounding: str = "rtne") -> Any:
    """Triton's conversion of the float32 torch tensor ``x`` to ``dtype``; the codes as a uint8 tensor."""
    import torch
    import triton

    if dtype not in DTYPES:
        raise KernelError(f"adapter triton: no dtype {dtype!r}; known: {', '.join(DTYPES)}")
    if rounding not in ("rtne", "rtz"):
        raise KernelError(f"adapter triton: fp_downcast_rounding must be rtne or rtz, got {rounding!r}")
    flat = x.contiguous().reshape(-1).to(torch.float32)
    out = torch.empty(flat.numel(), dtype=torch.uint8, device=flat.device)
    n = flat.numel()
    if n:
        interp = flat.device.type == "cpu"
        block = 1 << 16 if interp else 1024
        import triton.language as tl

        from refarith.certify._triton_convert import convert_kernel
        from refarith.fast.triton_backend import on_device

        on_device(convert_kernel, interp)[(triton.cdiv(n, block),)](flat, out, n, BLOCK=block, DT=getattr(tl, dtype),
                                                                    RND=rounding)
    return out.reshape(x.shape)


def make_kernel(name: str):
    """The certify adapter ``triton:NAME`` (NAME = a Triton dtype, optionally ``+rtz``)."""
    from refarith.certify.adapters import Kernel, _cast_only, _version, float_view

    try:
        import torch
        import triton  # noqa: F401
    except ImportError:
        raise KernelError("adapter triton: triton (and torch) are not installed: pip install 'refarith[triton]'") \
            from None
    base, _, opt = name.partition("+")
    if base not in DTYPES:
        raise KernelError(f"adapter triton: no dtype {base!r}; known: {', '.join(DTYPES)}")
    if opt not in ("", "rtz"):
        raise KernelError(f"adapter triton: unknown option {opt!r} (only '+rtz')")
    rounding = "rtz" if opt else "rtne"
    dst = DTYPES[base]
    cast_only = _cast_only(f"triton:{name}", dst)

    def check(spec) -> None:
        cast_only(spec)
        if spec.formats[0] != "binary32":
            raise SpecError(f"triton:{name} converts binary32 tensors, not {spec.formats[0]}")

    def fn(spec, operands):
        x = torch.from_numpy(np.ascontiguousarray(float_view(operands[0], spec.formats[0])))
        return convert(x, base, rounding).numpy()

    return Kernel(f"triton:{name}", fn, f"triton {_version('triton')} (interpreter on CPU)", check)
