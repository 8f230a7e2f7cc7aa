"""Triton kernel of scaled_mm's binary32 chain models: sequential, fma_chain, blocked, split_k and kahan.

One program computes a ``BM x BN`` tile of D; it walks K in order and keeps the chain s, the running total and
(kahan) the compensation c in float32 registers:

* ``s = s + a_k * b_k`` (kahan: ``y = p - c; t = s + y; c = (t - s) - y; s = t``), every operation a float32
  IEEE 754 RNE operation;
* after every ``NB`` elements of K, and after the last one, ``total = total + s`` and ``s = +0`` (blocked: NB = nb;
  split_k: NB = K / splits; the others NB = K, where +0 + s = s because a chain from +0 never ends at -0).

This is the numpy kernel's loop (:mod:`refarith.fast.gemm`) when every product a' b' is a binary32 value
(checked by the caller): then fl(a' b') = a' b', so sequential and fma_chain coincide, and a compiler contracting
``s + a * b`` or ``a * b - c`` into a fused multiply-add (Triton's default on GPUs) computes the same values.  The
kernel is hand-written, not traced from the numpy code like the block kernels of
:mod:`refarith.fast.triton_blocks`.  CUDA tensors run it compiled, CPU tensors under Triton's interpreter.
Importing this module imports triton; :func:`refarith.fast.gemm.scaled_mm` imports it only for
``backend="triton"``.
"""

from __future__ import annotations

import numpy as np
import triton
import triton.language as tl

from refarith.errors import KernelError

TRITON_MODELS = ("sequential", "fma_chain", "blocked", "split_k", "kahan")
_BLOCK = {"cpu": 64, "cuda": 32}
"""Tile side: larger under the interpreter (each program runs as numpy on whole tiles)."""


@triton.jit
def _chain(a_ptr, b_ptr, out_ptr, M, N, K, NB, KAHAN: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    mm = rm < M
    mn = rn < N
    total = tl.full((BM, BN), 0.0, tl.float32)
    s = tl.full((BM, BN), 0.0, tl.float32)
    c = tl.full((BM, BN), 0.0, tl.float32)
    for k in range(0, K):
        a = tl.load(a_ptr + rm * K + k, mask=mm, other=0.0)
        b = tl.load(b_ptr + k * N + rn, mask=mn, other=0.0)
        p = a[:, None] * b[None, :]
        if KAHAN:
            y = p - c
            t = s + y
            c = (t - s) - y
            s = t
        else:
            s = s + p
        end = ((k + 1) % NB == 0) | (k + 1 == K)
        total = tl.where(end, total + s, total)
        s = tl.where(end, tl.full((BM, BN), 0.0, tl.float32), s)
    tl.store(out_ptr + rm[:, None] * N + rn[None, :], total, mask=mm[:, None] & mn[None, :])


def accumulate(ap: np.ndarray, bp: np.ndarray, model: str, mp: dict, device: str) -> np.ndarray:
    """The model's binary32 sums of A' (M x K) times B' (K x N), binary64 arrays of binary32 values whose products
    are binary32 values, computed by the Triton kernel on ``device`` (``cpu``: interpreted); binary64 results."""
    import torch

    from refarith.fast.triton_backend import on_device

    if model not in TRITON_MODELS:
        raise KernelError(f"accum={model}: the triton backend runs {', '.join(TRITON_MODELS)} into binary32")
    m, k = ap.shape
    n = bp.shape[1]
    nb = {"blocked": int(mp.get("nb", k)), "split_k": k // int(mp.get("splits", 1))}.get(model, k)
    dev = torch.device(device)
    if dev.type not in _BLOCK:
        raise KernelError(f"the triton backend runs on cuda devices (compiled) or cpu (interpreted), not {device}")
    ta, tb = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(dev) for x in (ap, bp))
    out = torch.empty((m, n), dtype=torch.float32, device=dev)
    bs = _BLOCK[dev.type]
    fn = on_device(_chain, dev.type == "cpu")
    fn[(-(-m // bs), -(-n // bs))](ta, tb, out, m, n, k, max(nb, 1), KAHAN=model == "kahan", BM=bs, BN=bs)
    return out.cpu().numpy().astype(np.float64)


__all__ = ["TRITON_MODELS", "accumulate"]
