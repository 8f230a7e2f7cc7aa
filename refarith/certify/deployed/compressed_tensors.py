"""compressed-tensors (the quantization of vLLM checkpoints): ``quantize(x, scale, zero_point, args)`` with a unit
scale, so its output is the element grid itself.

Targets ``compressed_tensors:fp8`` (FP8 E4M3: ``clamp(x, -448, 448).to(torch.float8_e4m3fn)``, into
``ocp_e4m3``) and ``compressed_tensors:fp4`` (NVFP4's element rounding ``cast_to_fp4`` after clamping to +-6,
into ``ocp_e2m1``).  The result keeps the input dtype (float32): a values kernel.

Target ``compressed_tensors:nvfp4``: the NVFP4 weight recipe (``TENSOR_GROUP``, group 16, FP8 E4M3 scales) on
each vector as one tensor, through the library's own steps: ``generate_gparam`` g = fl(2688 / max(amax, tiny))
(non-finite g -> 1), ``calculate_qparams`` S = E4M3(clamp(fl(g * fl(A / 6)), +-448)) with S = 0 -> 0.125,
``quantize`` P = E2M1(clamp(fl(x / fl(S / g)), +-6)).  Its results (g, the block scales S, the elements P) are
values; g is reported in the spec's per-tensor-scale column, where refarith's s_t = fl(amax / 2688) stands, so
that column differs by design (per-column counts keep it apart).
"""

from __future__ import annotations

from refarith.certify.deployed._common import Library, as_float32, cast_check, require, values_kernel
from refarith.errors import KernelError

LIBRARY = Library("compressed-tensors", "compressed_tensors", ("0.20.1",),
                  ("compressed-tensors==0.20.1", "loguru==0.7.3", "transformers==5.25.0", "huggingface_hub==2.4.0",
                   "safetensors==0.8.0", "tokenizers==0.23.3", "httpx2==2.16.2", "httpcore2==2.16.2",
                   "truststore==0.10.5", "h11==0.16.0", "psutil", "tqdm", "pydantic", "pydantic-core",
                   "annotated-types", "typing-inspection", "regex", "pyyaml", "filelock", "packaging", "requests",
                   "idna", "certifi", "charset-normalizer", "urllib3", "anyio", "sniffio"))
FORMATS = {"fp8": ("ocp_e4m3", 8), "fp4": ("ocp_e2m1", 4)}
BLOCKS = ("nvfp4",)


def load(name: str):
    target = f"compressed_tensors:{name}"
    if name not in FORMATS and name not in BLOCKS:
        raise KernelError(f"adapter {target}: unknown format {name!r}; compressed_tensors targets: "
                          f"{', '.join(tuple(FORMATS) + BLOCKS)}")
    _, version = require(LIBRARY, target)
    if name == "nvfp4":
        return _nvfp4(target, version)
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


def _nvfp4(target: str, version: str):
    import numpy as np
    import torch
    from compressed_tensors.quantization import QuantizationArgs
    from compressed_tensors.quantization.lifecycle.forward import quantize
    from compressed_tensors.quantization.quant_args import FP8_E4M3_DATA
    from compressed_tensors.quantization.utils.helpers import calculate_qparams, generate_gparam

    from refarith.errors import SpecError

    args = QuantizationArgs(num_bits=4, type="float", strategy="tensor_group", symmetric=True, dynamic=False,
                            group_size=16, scale_dtype=FP8_E4M3_DATA.dtype, zp_dtype=FP8_E4M3_DATA.dtype)

    def check(spec) -> None:
        if spec.op != "nvfp4_quantize":
            raise SpecError(f"{target} implements nvfp4_quantize, not {spec.op}")
        if spec.param["tile"] != "1x16" or spec.param["levels"] != "2" or spec.param["rounding"] != "rne":
            raise SpecError(f"{target} quantizes 1x16 blocks with two scale levels and RNE elements, not {spec}")

    def fn(spec, operands):
        x = np.ascontiguousarray(np.asarray(operands[0]).astype(np.uint32)).view(np.float32)
        gs, ss, ps = [], [], []
        for row in x:  # one tensor per vector
            t = torch.from_numpy(row.copy()).reshape(1, -1)
            g = generate_gparam(t.min(), t.max())
            blk = t.reshape(-1, 16)
            scale, zp = calculate_qparams(blk.min(dim=1).values, blk.max(dim=1).values, args, global_scale=g)
            k = blk.shape[0]
            q = quantize(t, scale.reshape(1, k), zp.reshape(1, k), args, global_scale=g)
            gs.append(float(g.reshape(-1)[0]))
            ss.append(scale.reshape(-1).to(torch.float32).numpy())
            ps.append(q.reshape(-1).numpy())
        return np.array(gs, dtype=np.float32), np.stack(ss), np.stack(ps)

    return values_kernel(target, fn, LIBRARY, version, check)
