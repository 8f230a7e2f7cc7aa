"""AMD Quark's CPU fake quantizers (``quark.torch.kernel.hw_emulation.hw_emulation_interface``):
``quant_dequant_fp8_e4m3`` (``clamp(x, -448, 448).to(torch.float8_e4m3fn)`` and back) and
``quant_dequant_fp8_e5m2`` (clamp to +-57344, ``float8_e5m2``).  Importing them imports ``quark.torch`` (onnx, onnxslim)
and JIT-compiles Quark's hw_emulation C++ extension once (about a minute).

Targets ``quark:fp8_e4m3`` (into ``ocp_e4m3``) and ``quark:fp8_e5m2`` (into ``ocp_e5m2``); values kernels.

MX: ``quark:mx_<element>`` (``mx_fp8_e4m3``, ``mx_fp8_e5m2``, ``mx_fp6_e3m2``, ``mx_fp6_e2m3``, ``mx_fp4``,
``mx_int8``) runs Quark's CPU ``fake_quantize_mx(x, axis=-1, block_size=k, scale_calculation_mode=...,
mx_element_dtype=...)`` on ``mx_fake_quantize(E,block=k,scale=floor|ceil|even)`` (its three scale modes; the
spec's rule is passed as the mode).  It returns the dequantized float32 values X * P_i only, which is what that
op's output is, so no scale or code is reconstructed here.  Its int8 element is symmetric (``quant_min=-127``):
the spec's element is ``int8_sym``.  Values kernels.
"""

from __future__ import annotations

from refarith.certify.deployed._common import Library, as_float32, cast_check, require, values_kernel
from refarith.errors import KernelError

LIBRARY = Library("amd-quark", "quark", ("0.13",), "pip install --no-deps amd-quark==0.13 onnx protobuf onnxslim")
FORMATS = {"fp8_e4m3": "ocp_e4m3", "fp8_e5m2": "ocp_e5m2"}
MX = {"mx_fp8_e4m3": ("fp8_e4m3", "ocp_e4m3"), "mx_fp8_e5m2": ("fp8_e5m2", "ocp_e5m2"),
      "mx_fp6_e3m2": ("fp6_e3m2", "ocp_e3m2"), "mx_fp6_e2m3": ("fp6_e2m3", "ocp_e2m3"), "mx_fp4": ("fp4", "ocp_e2m1"),
      "mx_int8": ("int8", "int8_sym")}
"""MX target -> (Quark's mx_element_dtype, the refarith element format it quantizes into)."""
MX_SCALES = ("floor", "ceil", "even")
"""The scale rules of Quark's fake_quantize_mx (its scale_calculation_mode), named as refarith's."""


def _mx(target: str, name: str, version: str):
    import importlib

    import torch

    from refarith.errors import SpecError

    hw = importlib.import_module("quark.torch.kernel.hw_emulation.hw_emulation_interface")
    dtype, element = MX[name]

    def check(spec) -> None:
        if spec.op != "mx_fake_quantize":
            raise SpecError(f"{target} implements mx_fake_quantize, not {spec.op}")
        if spec.formats[0] != element or spec.param["rounding"] != "rne":
            raise SpecError(f"{target} fake-quantizes into {element} with rne elements, not {spec}")
        if spec.param["scale"] not in MX_SCALES:
            raise SpecError(f"{target} has the scale rules {', '.join(MX_SCALES)}, not {spec.param['scale']}")

    def fn(spec, operands):
        check(spec)  # Quark falls back to its even mode for a mode it does not know: never run it so
        k = int(spec.param["block"])
        x = torch.from_numpy(as_float32(operands[0], "binary32").reshape(-1, k).copy())
        with torch.no_grad():
            y = hw.fake_quantize_mx(x, axis=-1, block_size=k, scale_calculation_mode=spec.param["scale"],
                                    mx_element_dtype=dtype)
        return y.numpy()

    return values_kernel(target, fn, LIBRARY, version, check)


def load(name: str):
    target = f"quark:{name}"
    if name not in FORMATS and name not in MX:
        raise KernelError(f"adapter {target}: unknown format {name!r}; quark targets: "
                          f"{', '.join((*FORMATS, *MX))}")
    _, version = require(LIBRARY, target)
    if name in MX:
        return _mx(target, name, version)
    import importlib

    import torch

    hw = importlib.import_module("quark.torch.kernel.hw_emulation.hw_emulation_interface")
    qdq = getattr(hw, f"quant_dequant_{name}")

    def fn(spec, operands):
        return qdq(torch.from_numpy(as_float32(operands[0], spec.formats[0]))).numpy()

    return values_kernel(target, fn, LIBRARY, version, cast_check(target, FORMATS[name]))
