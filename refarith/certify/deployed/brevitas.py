"""brevitas (AMD's quantization-aware training library): its minifloat quantizer ``brevitas.core.quant.float.
FloatQuant`` with a unit scale, so its output is the element grid itself.

FloatQuant rounds y = 2^e * round(x / 2^e) with 2^e = 2^max(floor(log2(|x| + tiny)) - m, 1 - bias - m) (torch
float32 ops, ``round`` half to even), then ``FloatClamp`` clamps to +-max (``saturating``, the default of its OCP
quantizers ``FpOCPMixin``) or maps values beyond +-max to +-inf (E5M2) / NaN (E4M3).  The OCP encodings are those
of ``FpOCPMixin``: E4M3 NaN mantissa 111 and no inf, E5M2 inf mantissa 00 and NaN 01, 10, 11.

Targets ``brevitas:fp8_e4m3`` (into ``ocp_e4m3``) and ``brevitas:fp8_e5m2`` (``ocp_e5m2``), saturating;
``+nonsat`` for the non-saturating clamp.  Values kernels.
"""

from __future__ import annotations

from refarith.certify.deployed._common import Library, as_float32, cast_check, require, values_kernel
from refarith.errors import KernelError

LIBRARY = Library("brevitas", "brevitas", ("0.13.4",),
                  "pip install --no-deps brevitas==0.13.4 dependencies==2.0.1")
FORMATS = {"fp8_e4m3": ("ocp_e4m3", 4, 3, ("111",), None), "fp8_e5m2": ("ocp_e5m2", 5, 2, ("01", "11", "10"), ("00",))}
CLAMPS = ("sat", "nonsat")


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


def load(name: str):
    target = f"brevitas:{name}"
    fmt, _, clamp = name.partition("+")
    clamp = clamp or "sat"
    if fmt not in FORMATS:
        raise KernelError(f"adapter {target}: unknown format {fmt!r}; brevitas targets: {', '.join(FORMATS)}")
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
