"""qtorch (low-precision training simulation): its CPU ``qtorch.quant.float_quantize(x, exp, man, "nearest")``.

The C++ kernel (quant_cpu.cpp ``float_quantize``, ``round_bitwise``, bit_helper.cpp ``clip_exponent``) adds half
an ulp of the target precision to the binary32 bits and truncates (ties away from zero), clips the exponent above
2^(exp-1) (every exponent field is finite: no exponent is reserved for inf/NaN) to the largest significand, and
rounds values below 2^(2 - 2^(exp-1)) by adding that power of two in binary32, rounding, and subtracting it.

Targets ``qtorch:binary16`` (exp 5, man 10) and ``qtorch:bfloat16`` (exp 8, man 7) on casts from binary32; values
kernels.  The first import builds the extension (torch.utils.cpp_extension, about 6 minutes on 2 loaded cores);
set TORCH_EXTENSIONS_DIR to a fresh directory, since an import waits without end on the lock file an interrupted
build leaves.
"""

from __future__ import annotations

from refarith.certify.deployed._common import Library, as_float32, cast_check, require, values_kernel
from refarith.errors import KernelError

LIBRARY = Library("qtorch", "qtorch.quant", ("0.3.0",), ("qtorch==0.3.0", "ninja"),
                  "its extension builds on first import")
FORMATS = {"binary16": (5, 10), "bfloat16": (8, 7)}
"""Target -> (exp, man) of float_quantize."""


def load(name: str):
    target = f"qtorch:{name}"
    if name not in FORMATS:
        raise KernelError(f"adapter {target}: unknown format {name!r}; qtorch targets: {', '.join(FORMATS)}")
    quant, version = require(LIBRARY, target)
    import torch

    exp, man = FORMATS[name]

    def fn(spec, operands):
        x = torch.from_numpy(as_float32(operands[0], spec.formats[0]))
        return quant.float_quantize(x, exp=exp, man=man, rounding="nearest").numpy()

    return values_kernel(target, fn, LIBRARY, version, cast_check(target, name, ("binary32",)))
