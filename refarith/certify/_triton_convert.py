"""Triton's own float conversion as a kernel (imported only when Triton is installed): see triton_peer."""

import triton
import triton.language as tl


@triton.jit
def convert_kernel(x_ptr, o_ptr, n, BLOCK: tl.constexpr, DT: tl.constexpr, RND: tl.constexpr):  # noqa: N803
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = offs < n
    x = tl.load(x_ptr + offs, mask=live, other=0.0)
    tl.store(o_ptr + offs, x.to(DT, fp_downcast_rounding=RND).to(tl.uint8, bitcast=True), mask=live)
