"""brevitas (AMD's quantization-aware training library): its minifloat quantizer ``brevitas.core.quant.float.
FloatQuant`` with a unit scale, so its output is the element grid itself.

FloatQuant rounds y = 2^e * round(x / 2^e) with 2^e = 2^max(floor(log2(|x| + tiny)) - m, 1 - bias - m) (torch
float32 ops, ``round`` half to even), then ``FloatClamp`` clamps to +-max (``saturating``, the default of its OCP
quantizers ``FpOCPMixin``) or maps values beyond +-max to +-inf (E5M2) / NaN (E4M3).  The OCP encodings are those
of ``FpOCPMixin``: E4M3 NaN mantissa 111 and no inf, E5M2 inf mantissa 00 and NaN 01, 10, 11.

Targets ``brevitas:fp8_e4m3`` (into ``ocp_e4m3``) and ``brevitas:fp8_e5m2`` (``ocp_e5m2``), saturating;
``+nonsat`` for the non-saturating clamp.  Values kernels.

MX: ``brevitas:mxfp8_e4m3`` and ``brevitas:mxint8`` run its OCP MX activation quantizers
``brevitas.quant.mx_quant_ocp.MXFloat8e4m3Act`` / ``MXInt8Act`` (runtime group statistics, groups of the spec's
block along the last axis) in a ``brevitas.nn.QuantIdentity`` on ``mx_quantize(ocp_e4m3|int8_sym, ...)``; the
quant tensor's per-group scale is the E8M0 column (times 2^6 for MXINT8: its values are int8 x 2^-6 x scale in OCP
MX v1.0, and brevitas' scale holds the 2^-6) and value / scale the elements.  Values kernels.
"""

from __future__ import annotations

from refarith.certify.deployed._common import Library, as_float32, cast_check, require, values_kernel
from refarith.errors import KernelError

LIBRARY = Library("brevitas", "brevitas", ("0.13.4",), ("brevitas==0.13.4", "dependencies==2.0.1"))
FORMATS = {"fp8_e4m3": ("ocp_e4m3", 4, 3, ("111",), None), "fp8_e5m2": ("ocp_e5m2", 5, 2, ("01", "11", "10"), ("00",))}
CLAMPS = ("sat", "nonsat")
MX = {"mxfp8_e4m3": ("MXFloat8e4m3Act", ("ocp_e4m3",)), "mxint8": ("MXInt8Act", ("int8_sym", "int8"))}
"""MX target -> (brevitas quantizer class of brevitas.quant.mx_quant_ocp, the element formats it may implement)."""


def float_quant(e: int, m: int, nan_values, inf_values, saturating: bool):
    """brevitas' FloatQuant of an OCP-encoded e-m minifloat (bias 2^(e-1) - 1) with the constant scale 1."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from brevitas.core.bit_width import BitWidthConst
        from brevitas.core.bit_width.float import ComputeMaxMantissa, StaticExponentBias
        from brevitas.core.function_wrapper import TensorClamp
        from brevitas.core.function_wrapper.clamp import FloatClamp
        from brevitas.core.function_wrapper.misc import Identity
        from brevitas.core.quant.float import FloatQuant
        from brevitas.core.scaling import ConstScaling
        from brevitas.utils.float_quant_utils import get_max_available_float

    bias = 2 ** (e - 1) - 1
    top = get_max_available_float(e, m, bias, nan_values, inf_values, saturating)
    clamp = FloatClamp(TensorClamp(), signed=True, inf_values=inf_values, nan_values=nan_values,
                       max_available_float=top, saturating=saturating)
    return FloatQuant(signed=True, exponent_bit_width_impl=BitWidthConst(e), mantissa_bit_width_impl=BitWidthConst(m),
                      exponent_bias_impl=StaticExponentBias(bias), float_clamp_impl=clamp, input_view_impl=Identity(),
                      compute_max_mantissa=ComputeMaxMantissa(), scaling_impl=ConstScaling(1.0))


def _mx(target: str, name: str, version: str):
    import warnings

    import numpy as np
    import torch

    from refarith.errors import SpecError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import brevitas.nn as qnn
        from brevitas.quant import mx_quant_ocp

    quant, elements = MX[name]
    # MXINT8 values are int8 codes times 2^-6 times the E8M0 scale (OCP MX v1.0); brevitas' scale holds both
    unit = 64.0 if name == "mxint8" else 1.0

    def check(spec) -> None:
        if spec.op != "mx_quantize":
            raise SpecError(f"{target} implements mx_quantize, not {spec.op}")
        if spec.formats[0] not in elements or spec.param["rounding"] != "rne":
            raise SpecError(f"{target} quantizes into {' or '.join(elements)} with rne elements, not {spec}")

    def fn(spec, operands):
        x = np.ascontiguousarray(np.asarray(operands[0]).astype(np.uint32)).view(np.float32)
        k = int(spec.param["block"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = qnn.QuantIdentity(act_quant=getattr(mx_quant_ocp, quant), group_dim=1, group_size=k,
                                  return_quant_tensor=True)
            q.eval()
            with torch.no_grad():
                y = q(torch.from_numpy(x.reshape(-1, k).copy()))
        scale = y.scale.reshape(x.shape[0], -1).to(torch.float32)
        return (scale[:, 0] * unit).numpy(), (y.value.reshape(x.shape[0], -1) / scale).numpy()

    return values_kernel(target, fn, LIBRARY, version, check)


def load(name: str):
    target = f"brevitas:{name}"
    if name in MX:
        _, version = require(LIBRARY, target)
        return _mx(target, name, version)
    fmt, _, clamp = name.partition("+")
    clamp = clamp or "sat"
    if fmt not in FORMATS:
        raise KernelError(f"adapter {target}: unknown format {fmt!r}; brevitas targets: "
                          f"{', '.join((*FORMATS, *MX))}")
    if clamp not in CLAMPS:
        raise KernelError(f"adapter {target}: unknown clamp {clamp!r}; expected one of {', '.join(CLAMPS)}")
    _, version = require(LIBRARY, target)
    import torch

    dst, e, m, nan_values, inf_values = FORMATS[fmt]
    q = float_quant(e, m, nan_values, inf_values, clamp == "sat")

    def fn(spec, operands):
        with torch.no_grad():
            return q(torch.from_numpy(as_float32(operands[0], spec.formats[0])))[0].numpy()

    return values_kernel(target, fn, LIBRARY, version, cast_check(target, dst))
