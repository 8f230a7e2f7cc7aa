"""compressed-tensors (the quantization of vLLM checkpoints): ``quantize(x, scale, zero_point, args)`` with a unit
scale, so its output is the element grid itself.

Targets ``compressed_tensors:fp8`` (FP8 E4M3: ``clamp(x, -448, 448).to(torch.float8_e4m3fn)``, into
``ocp_e4m3``) and ``compressed_tensors:fp4`` (NVFP4's element rounding ``cast_to_fp4`` after clamping to +-6,
into ``ocp_e2m1``).  The result keeps the input dtype (float32): a values kernel.
"""

from __future__ import annotations

from refarith.certify.deployed._common import Library, as_float32, cast_check, require, values_kernel
from refarith.errors import KernelError

LIBRARY = Library("compressed-tensors", "compressed_tensors", ("0.20.1",),
                  "pip install --no-deps compressed-tensors==0.20.1 loguru transformers huggingface_hub safetensors "
                  "tokenizers psutil tqdm httpx2 httpcore2 truststore h11")
FORMATS = {"fp8": ("ocp_e4m3", 8), "fp4": ("ocp_e2m1", 4)}


def load(name: str):
    target = f"compressed_tensors:{name}"
    if name not in FORMATS:
        raise KernelError(f"adapter {target}: unknown format {name!r}; compressed_tensors targets: "
                          f"{', '.join(FORMATS)}")
    _, version = require(LIBRARY, target)
    import torch
    from compressed_tensors.quantization import QuantizationArgs
    from compressed_tensors.quantization.lifecycle.forward import quantize

    dst, bits = FORMATS[name]
    args = QuantizationArgs(num_bits=bits, type="float", symmetric=True, strategy="tensor")
    one, zero = torch.ones(1), torch.zeros(1)

    def fn(spec, operands):
        x = torch.from_numpy(as_float32(operands[0], spec.formats[0]))
        return quantize(x, one, zero, args).numpy()

    return values_kernel(target, fn, LIBRARY, version, cast_check(target, dst))
