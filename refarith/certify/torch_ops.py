"""torch's CPU element-wise arithmetic of bfloat16 and float16 tensors, as certification targets.

Each function takes two arrays of 16-bit codes (``refarith_inputs = "codes"``), reinterprets them as a
``torch.bfloat16`` or ``torch.float16`` tensor on the CPU, applies the tensor operator (``+``, ``*``, ``/``) and
returns the result's codes.  Targets: ``refarith.certify.torch_ops:<op>_<format>``, e.g.
``refarith.certify.torch_ops:add_bfloat16`` against ``add(bfloat16)``.  torch's intra-op thread pool is set to
one thread in the process that runs them, so that a sweep's worker is one core (its parallelism is the
sweep's workers).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_DTYPES = {"bfloat16": "bfloat16", "binary16": "float16"}
_OPS = {"add": "__add__", "sub": "__sub__", "mul": "__mul__", "div": "__truediv__"}
_STATE = {"threads": False}


def _binary(op: str, fmt: str) -> Callable:
    def fn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import torch

        if not _STATE["threads"]:
            torch.set_num_threads(1)
            _STATE["threads"] = True
        dt = getattr(torch, _DTYPES[fmt])
        x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.uint16).view(np.int16)).view(dt)
        y = torch.from_numpy(np.ascontiguousarray(b, dtype=np.uint16).view(np.int16)).view(dt)
        return getattr(x, _OPS[op])(y).view(torch.int16).numpy().view(np.uint16)

    fn.refarith_inputs = "codes"  # type: ignore[attr-defined]
    fn.__name__ = fn.__qualname__ = f"{op}_{fmt}"
    fn.__doc__ = f"torch CPU ``{_OPS[op]}`` of two torch.{_DTYPES[fmt]} tensors given as codes; result codes."
    return fn


add_bfloat16 = _binary("add", "bfloat16")
sub_bfloat16 = _binary("sub", "bfloat16")
mul_bfloat16 = _binary("mul", "bfloat16")
div_bfloat16 = _binary("div", "bfloat16")
add_binary16 = _binary("add", "binary16")
sub_binary16 = _binary("sub", "binary16")
mul_binary16 = _binary("mul", "binary16")
div_binary16 = _binary("div", "binary16")

__all__ = ["add_bfloat16", "add_binary16", "div_bfloat16", "div_binary16", "mul_bfloat16", "mul_binary16",
           "sub_bfloat16", "sub_binary16"]
