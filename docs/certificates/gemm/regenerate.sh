#!/bin/sh
# Regenerates the GEMM certificates of this directory (identify_gemm at 16x256x16, seed 0; see docs/gemm.md).
set -e
python -m refarith.certify.gemm docs/certificates/gemm torch:_scaled_mm_fp32 torch:_scaled_mm_bf16 \
    torch:matmul_bf16 torch:matmul_fp16 numpy:matmul_fp16
# torchao MX (E4M3, E8M0 per 32) and NVFP4: on CPU an emulation (dequantize, then torch.mm)
python -m refarith.certify.gemm docs/certificates/gemm torchao:mx_mm_fp32 torchao:mx_mm_bf16 torchao:nvfp4_mm_fp32
