"""A Triton table-gather kernel (imported only when Triton is installed): ``out[i] = table[codes[i]]``.

Decode of a format of at most 16 bits is a lookup in its exact value table (built by the exact model); the kernel
moves the table entries' bit patterns as integers, never converting through a float type.
"""

import triton
import triton.language as tl


@triton.jit
def gather_kernel(codes_ptr, table_ptr, out_ptr, n, BLOCK: tl.constexpr):  # noqa: N803
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = offs < n
    c = tl.load(codes_ptr + offs, mask=live, other=0)
    tl.store(out_ptr + offs, tl.load(table_ptr + c, mask=live, other=0), mask=live)
