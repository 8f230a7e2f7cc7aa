"""AMD Quark's CPU fake quantizers (``quark.torch.kernel.hw_emulation.hw_emulation_interface``):
``quant_dequant_fp8_e4m3`` (``clamp(x, -448, 448).to(torch.float8_e4m3fn)`` and back) and
``quant_dequant_fp8_e5m2`` (clamp to +-57344, ``float8_e5m2``).  Importing them imports ``quark.torch`` (onnx, onnxslim)
and JIT-compiles Quark's hw_emulation C++ extension once (about a minute).

Targets ``quark:fp8_e4m3`` (into ``ocp_e4m3``) and ``quark:fp8_e5m2`` (into ``ocp_e5m2``); values kernels.

MX: ``quark:mx_<element>[+<mode>]`` (``mx_fp8_e4m3``, ``mx_fp8_e5m2``, ``mx_fp6_e3m2``, ``mx_fp6_e2m3``,
``mx_fp4``, ``mx_int8``; ``<mode>`` one of ``floor``, ``ceil``, ``even``, default ``even``, the default of
``fake_quantize_mx`` and of Quark's OCP MX quantization specs) runs Quark's CPU ``fake_quantize_mx(x, axis=-1,
block_size=k, scale_calculation_mode=<mode>, mx_element_dtype=...)`` on ``mx_fake_quantize(E,block=k,...)``.  The
target fixes Quark's mode; the spec's scale rule is only what it is compared with, so ``identify --vary scale``
varies the reference and not the kernel.  Quark 0.13 computes the scale in float32: ``floor``/``ceil`` as
2^(floor|ceil(torch.log2(amax)) - emax), unclamped (a binary32 subnormal scale, or 2^-23 where it is 0),
``even`` by adding 2^(22 - mbits) to the amax bits, truncating to the exponent and clamping to 2^+-127 (mbits 8
for int8, so its ``even`` rounds the maximum to 9 bits where refarith's rounds it to MXINT8's 7).  It returns
the dequantized float32 values X * P_i only, which is what that op's output is, so no scale or code is
reconstructed here.  Its int8 element is symmetric (``quant_min=-127``, the scale divided by 64): the spec's
element is ``int8_sym``.  Values kernels.
"""

from __future__ import annotations

from refarith.certify.deployed._common import Library, as_float32, cast_check, require, values_kernel
from refarith.errors import KernelError

LIBRARY = Library("amd-quark", "quark", ("0.13",),
                  ("amd-quark==0.13", "onnx==1.23.2", "protobuf", "onnxslim==0.1.98", "scipy", "requests",
                   "idna", "certifi", "charset-normalizer", "urllib3"))
FORMATS = {"fp8_e4m3": "ocp_e4m3", "fp8_e5m2": "ocp_e5m2"}
MX = {"mx_fp8_e4m3": ("fp8_e4m3", "ocp_e4m3"), "mx_fp8_e5m2": ("fp8_e5m2", "ocp_e5m2"),
      "mx_fp6_e3m2": ("fp6_e3m2", "ocp_e3m2"), "mx_fp6_e2m3": ("fp6_e2m3", "ocp_e2m3"), "mx_fp4": ("fp4", "ocp_e2m1"),
      "mx_int8": ("int8", "int8_sym")}
"""MX target -> (Quark's mx_element_dtype, the refarith element format it quantizes into)."""
MX_SCALES = ("floor", "ceil", "even")
"""The scale modes of Quark's fake_quantize_mx (its scale_calculation_mode); Quark runs ``even`` for any other."""
MX_DEFAULT_SCALE = "even"
"""The mode of a target without ``+<mode>``: the default of fake_quantize_mx and of Quark's OCP MX specs."""


def _mx(target: str, name: str, version: str):
    import importlib

    import torch

    from refarith.errors import SpecError

    hw = importlib.import_module("quark.torch.kernel.hw_emulation.hw_emulation_interface")
    base, _, mode = name.partition("+")
    mode = mode or MX_DEFAULT_SCALE
    dtype, element = MX[base]

    def check(spec) -> None:
        if spec.op != "mx_fake_quantize":
            raise SpecError(f"{target} implements mx_fake_quantize, not {spec.op}")
        if spec.formats[0] != element or spec.param["rounding"] != "rne":
            raise SpecError(f"{target} fake-quantizes into {element} with rne elements, not {spec}")

    def fn(spec, operands):
        check(spec)
        k = int(spec.param["block"])
        x = torch.from_numpy(as_float32(operands[0], "binary32").reshape(-1, k).copy())
        with torch.no_grad():
            y = hw.fake_quantize_mx(x, axis=-1, block_size=k, scale_calculation_mode=mode, mx_element_dtype=dtype)
        return y.numpy()

    return values_kernel(target, fn, LIBRARY, version, check)


def load(name: str):
    target = f"quark:{name}"
    base, plus, mode = name.partition("+")
    if base in MX and plus and mode not in MX_SCALES:
        # Quark runs its even mode for a mode it does not know: never pass it one
        raise KernelError(f"adapter {target}: unknown scale mode {mode!r}; Quark's modes: {', '.join(MX_SCALES)}")
    if name not in FORMATS and base not in MX:
        raise KernelError(f"adapter {target}: unknown format {name!r}; quark targets: "
                          f"{', '.join((*FORMATS, *MX))} (mx_<element>[+{'|'.join(MX_SCALES)}])")
    _, version = require(LIBRARY, target)
    if base in MX:
        return _mx(target, name, version)
    import importlib

    import torch

    hw = importlib.import_module("quark.torch.kernel.hw_emulation.hw_emulation_interface")
    qdq = getattr(hw, f"quant_dequant_{name}")

    def fn(spec, operands):
        return qdq(torch.from_numpy(as_float32(operands[0], spec.formats[0]))).numpy()

    return values_kernel(target, fn, LIBRARY, version, cast_check(target, FORMATS[name]))
