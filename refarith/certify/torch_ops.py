"""torch's CPU element-wise arithmetic of bfloat16 and float16 tensors, as certification targets.

Each function takes two arrays of 16-bit codes (``refarith_inputs = "codes"``), reinterprets them as a
``torch.bfloat16`` or ``torch.float16`` tensor on the CPU, applies the tensor operator (``+``, ``*``, ``/``) and
returns the result's codes.  Targets: ``refarith.certify.torch_ops:<op>_<format>``, e.g.
``refarith.certify.torch_ops:add_bfloat16`` against ``add(bfloat16)``.  torch's intra-op thread pool is set to
one thread in the process that runs them, so that a sweep's worker is one core (its parallelism is the
sweep's workers).

Fused multiply-add, targets ``fma_<format>`` against ``fma(<format>)``: ``torch.addcmul(c, a, b)`` (c + a * b).
torch has no arithmetic on float8 tensors on the CPU (``addcmul_cpu_out`` is not implemented for
Float8_e4m3fn), so ``fma_ocp_e4m3`` and ``fma_ocp_e5m2`` are the usual emulation: the operands widened to
``torch.float32``, ``torch.addcmul`` there, the result cast back by ``Tensor.to(torch.float8_e4m3fn /
float8_e5m2)``.  ``fma_binary16`` and ``fma_bfloat16`` call ``torch.addcmul`` on the 16-bit tensors themselves
(torch's CPU kernel computes in float32 and rounds the result to the 16-bit type).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_DTYPES = {"bfloat16": "bfloat16", "binary16": "float16", "ocp_e4m3": "float8_e4m3fn", "ocp_e5m2": "float8_e5m2"}
_OPS = {"add": "__add__", "sub": "__sub__", "mul": "__mul__", "div": "__truediv__"}
_STATE = {"threads": False}


def _tensor(codes: np.ndarray, fmt: str):
    """The codes as a CPU tensor of the format's torch dtype (sharing memory); torch set to one thread."""
    import torch

    if not _STATE["threads"]:
        torch.set_num_threads(1)
        _STATE["threads"] = True
    dt = getattr(torch, _DTYPES[fmt])
    if dt.itemsize == 1:
        return torch.from_numpy(np.ascontiguousarray(codes, dtype=np.uint8)).view(dt)
    return torch.from_numpy(np.ascontiguousarray(codes, dtype=np.uint16).view(np.int16)).view(dt)


def _codes(t) -> np.ndarray:
    import torch

    if t.dtype.itemsize == 1:
        return t.view(torch.uint8).numpy()
    return t.view(torch.int16).numpy().view(np.uint16)


def _binary(op: str, fmt: str) -> Callable:
    def fn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return _codes(getattr(_tensor(a, fmt), _OPS[op])(_tensor(b, fmt)))

    fn.refarith_inputs = "codes"  # type: ignore[attr-defined]
    fn.__name__ = fn.__qualname__ = f"{op}_{fmt}"
    fn.__doc__ = f"torch CPU ``{_OPS[op]}`` of two torch.{_DTYPES[fmt]} tensors given as codes; result codes."
    return fn


def _fma(fmt: str) -> Callable:
    def fn(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        import torch

        x, y, z = _tensor(a, fmt), _tensor(b, fmt), _tensor(c, fmt)
        if x.dtype.itemsize == 1:
            return _codes(torch.addcmul(z.float(), x.float(), y.float()).to(x.dtype))
        return _codes(torch.addcmul(z, x, y))

    fn.refarith_inputs = "codes"  # type: ignore[attr-defined]
    fn.__name__ = fn.__qualname__ = f"fma_{fmt}"
    fn.__doc__ = (f"torch CPU ``addcmul(c, a, b)`` of torch.{_DTYPES[fmt]} codes"
                  + (" computed in torch.float32 and cast back" if fmt.startswith("ocp") else "") + "; result codes.")
    return fn


add_bfloat16 = _binary("add", "bfloat16")
sub_bfloat16 = _binary("sub", "bfloat16")
mul_bfloat16 = _binary("mul", "bfloat16")
div_bfloat16 = _binary("div", "bfloat16")
add_binary16 = _binary("add", "binary16")
sub_binary16 = _binary("sub", "binary16")
mul_binary16 = _binary("mul", "binary16")
div_binary16 = _binary("div", "binary16")
fma_ocp_e4m3 = _fma("ocp_e4m3")
fma_ocp_e5m2 = _fma("ocp_e5m2")
fma_binary16 = _fma("binary16")
fma_bfloat16 = _fma("bfloat16")

__all__ = ["add_bfloat16", "add_binary16", "div_bfloat16", "div_binary16", "fma_bfloat16", "fma_binary16",
           "fma_ocp_e4m3", "fma_ocp_e5m2", "mul_bfloat16", "mul_binary16",
           "sub_bfloat16", "sub_binary16"]
