"""AMD Quark's CPU fake quantizers (``quark.torch.kernel.hw_emulation.hw_emulation_interface``):
``quant_dequant_fp8_e4m3`` (``clamp(x, -448, 448).to(torch.float8_e4m3fn)`` and back) and
``quant_dequant_fp8_e5m2`` (clamp to +-57344, ``float8_e5m2``).  Importing them imports ``quark.torch`` (onnx, onnxslim)
and JIT-compiles Quark's hw_emulation C++ extension once (about a minute).

Targets ``quark:fp8_e4m3`` (into ``ocp_e4m3``) and ``quark:fp8_e5m2`` (into ``ocp_e5m2``); values kernels.
"""

from __future__ import annotations

from refarith.certify.deployed._common import Library, as_float32, cast_check, require, values_kernel
from refarith.errors import KernelError

LIBRARY = Library("amd-quark", "quark", ("0.13",), "pip install --no-deps amd-quark==0.13 onnx protobuf onnxslim")
FORMATS = {"fp8_e4m3": "ocp_e4m3", "fp8_e5m2": "ocp_e5m2"}


def load(name: str):
    target = f"quark:{name}"
    if name not in FORMATS:
        raise KernelError(f"adapter {target}: unknown format {name!r}; quark targets: {', '.join(FORMATS)}")
    _, version = require(LIBRARY, target)
    import importlib

    import torch

    hw = importlib.import_module("quark.torch.kernel.hw_emulation.hw_emulation_interface")
    qdq = getattr(hw, f"quant_dequant_{name}")

    def fn(spec, operands):
        return qdq(torch.from_numpy(as_float32(operands[0], spec.formats[0]))).numpy()

    return values_kernel(target, fn, LIBRARY, version, cast_check(target, FORMATS[name]))
