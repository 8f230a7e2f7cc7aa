"""Triton kernels of scaled_mm: the chain models (sequential, fma_chain, blocked, split_k, kahan), pairwise and
tensor_core with its presets, into binary32 or any accumulator of at most 32 bits with subnormals.

What is traced and what is hand-written (as for the block kernels of :mod:`refarith.fast.triton_blocks`):

* **Traced**: every arithmetic step, from the functions the numpy kernel runs (:mod:`refarith.fast.gemm_steps`):
  the leaf fl(p) and the accumulator addition (binary32 addition of binary32 values, or TwoSum, rounding to odd
  and the rounding into the format), and the tensor-core group (largest magnitude, alignment unit, aligned term,
  the rounding of the exact sum into the accumulator, the binary32 promotion).  Each (model family, accumulator,
  b, tc_round) is traced once into step graphs, emitted as ``@triton.jit`` functions whose docstrings carry the
  graph digests (:func:`step_module`), and passed to the kernels as ``tl.constexpr`` function arguments.
* **Hand-written**: the tile layout and the loops over K that call the steps: one program computes a ``BM x BN``
  tile of D.

The loops:

* chains: ``s = ADD(s, p)`` (p = RND(a_k b_k) for sequential and kahan; kahan: ``y = ADD(p, -c); t = ADD(s, y);
  c = ADD(ADD(t, -s), -y); s = t``); after every ``NB`` elements of K, and after the last one, ``total =
  ADD(total, s)`` and ``s = +0`` (blocked: NB = nb; split_k: NB = K / splits; the others NB = K, where +0 + s = s
  because a chain from +0 never ends at -0);
* ``pairwise``: the numpy kernel's tree, mid = lo + (hi - lo) // 2, walked in post-order.  The host lists, for
  every k, how many tree nodes end at leaf k; the kernel pushes each leaf and then merges that many times, left
  (the stack, in a scratch buffer per program) + right (the tile in registers); the result is +0 + the root;
* ``tensor_core`` (finite products exact in binary64, every non-zero finite product at least 2^(b - 1000) and
  below 2^1000, b >= 2, checked by :func:`tensor_core_fits` on the finite operands): per group of g products (a
  last partial group reads zeros), the running maximum magnitude over t and the products, the alignment unit,
  the aligned integer terms summed in binary64 (exact: (g + 1) 2^(b + 1) <= 2^53), the sum rounded into the
  accumulator; with n_c > 0 the promotion into the binary32 accumulator every n_c elements.  An infinite t (an
  overflow into the accumulator) stays infinite, as in the numpy kernel's general path.  NaN and infinite terms
  (NaN/inf operands, inf x 0, a NaN or infinite t) need no path of their own: an infinite term makes the maximum
  infinite and the unit that of the exponent field 2047 (finite), a NaN one leaves it NaN (numpy, the
  interpreter) or finite (a GPU's maxnum), and in every case each aligned NaN/inf term stays NaN/inf (x times a
  finite positive power of two, truncated or rounded) while each finite term stays finite (below 2^1000, times
  at most 2^(b - 1024) < 2^-970 when the maximum is not finite), so the binary64 sum of the aligned terms is
  NaN or the infinity of the terms' IEEE sum, which is the exact model's rule for such groups, and TC_FINISH
  keeps NaN and rounds the infinity as the format does.

Into binary32 with products that are binary32 values (checked by the caller) the chains and pairwise run in
float32: fl(a' b') = a' b', so sequential and fma_chain coincide, and a compiler contracting ``s + a * b`` into a
fused multiply-add (Triton's default on GPUs) computes the same values.  Otherwise they run in binary64 on
products exact there, and every other multiply is a power-of-two scaling, so contraction changes nothing either.

CUDA tensors run the kernels compiled, CPU tensors under Triton's interpreter.  Importing this module imports
triton; :func:`refarith.fast.gemm.scaled_mm` imports it only for ``backend="triton"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import triton
import triton.language as tl

from refarith.errors import KernelError
from refarith.fast.gemm_steps import tensor_core_fits

CHAIN_MODELS = ("sequential", "fma_chain", "blocked", "split_k", "kahan")
TRITON_MODELS = (*CHAIN_MODELS, "pairwise", "tensor_core")
"""Models the Triton backend runs (the presets are tensor_core parameter sets)."""
_BLOCK = {"cpu": 64, "cuda": 32}
"""Tile side: larger under the interpreter (each program runs as numpy on whole tiles; small matrices there get
the smallest power of two from 16 that holds them)."""


@triton.jit
def _tile(M, N, BM: tl.constexpr, BN: tl.constexpr):
    """The program's rows and columns of D and their in-range masks."""
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    return rm, rn, rm < M, rn < N


@triton.jit
def _chain(a_ptr, b_ptr, out_ptr, M, N, K, NB, RND: tl.constexpr, ADD: tl.constexpr, KAHAN: tl.constexpr,
           LEAVES: tl.constexpr, DT: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    rm, rn, mm, mn = _tile(M, N, BM, BN)
    total = tl.full((BM, BN), 0.0, DT)
    s = tl.full((BM, BN), 0.0, DT)
    c = tl.full((BM, BN), 0.0, DT)
    for k in range(0, K):
        a = tl.load(a_ptr + rm * K + k, mask=mm, other=0.0)
        b = tl.load(b_ptr + k * N + rn, mask=mn, other=0.0)
        p = a[:, None] * b[None, :]
        if LEAVES:
            p = RND(p)
        if KAHAN:
            y = ADD(p, -c)
            t = ADD(s, y)
            c = ADD(ADD(t, -s), -y)
            s = t
        else:
            s = ADD(s, p)
        end = ((k + 1) % NB == 0) | (k + 1 == K)
        total = tl.where(end, ADD(total, s), total)
        s = tl.where(end, tl.full((BM, BN), 0.0, DT), s)
    tl.store(out_ptr + rm[:, None] * N + rn[None, :], total, mask=mm[:, None] & mn[None, :])


@triton.jit
def _pairwise(a_ptr, b_ptr, merges_ptr, stack_ptr, out_ptr, M, N, K, DEPTH, RND: tl.constexpr, ADD: tl.constexpr,
              DT: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    rm, rn, mm, mn = _tile(M, N, BM, BN)
    tile = tl.arange(0, BM)[:, None] * BN + tl.arange(0, BN)[None, :]
    base = stack_ptr + (tl.program_id(0) * tl.num_programs(1) + tl.program_id(1)) * (DEPTH * BM * BN)
    a = tl.load(a_ptr + rm * K, mask=mm, other=0.0)
    b = tl.load(b_ptr + rn, mask=mn, other=0.0)
    top = RND(a[:, None] * b[None, :])  # leaf 0: no node ends there
    sp = 0
    for k in range(1, K):
        tl.store(base + sp * (BM * BN) + tile, top)  # push the previous top
        tl.debug_barrier()
        sp = sp + 1
        a = tl.load(a_ptr + rm * K + k, mask=mm, other=0.0)
        b = tl.load(b_ptr + k * N + rn, mask=mn, other=0.0)
        top = RND(a[:, None] * b[None, :])
        for _ in range(tl.load(merges_ptr + k)):
            sp = sp - 1
            top = ADD(tl.load(base + sp * (BM * BN) + tile), top)
    top = ADD(tl.full((BM, BN), 0.0, DT), top)
    tl.store(out_ptr + rm[:, None] * N + rn[None, :], top, mask=mm[:, None] & mn[None, :])


@triton.jit
def _tc_product(a_ptr, b_ptr, rm, rn, mm, mn, K, N, k):
    """The tile's products a_ik b_kj of element k of K (zero past K: a last partial group)."""
    a = tl.load(a_ptr + rm * K + k, mask=mm & (rm * 0 + k < K), other=0.0)
    b = tl.load(b_ptr + k * N + rn, mask=mn & (rn * 0 + k < K), other=0.0)
    return a[:, None] * b[None, :]


@triton.jit
def _tensor_core(a_ptr, b_ptr, out_ptr, M, N, K, NC, TC_MAX: tl.constexpr, TC_UNIT: tl.constexpr,
                 TC_TERM: tl.constexpr, TC_FINISH: tl.constexpr, ADD32: tl.constexpr, G: tl.constexpr,
                 BM: tl.constexpr, BN: tl.constexpr):
    rm, rn, mm, mn = _tile(M, N, BM, BN)
    t = tl.full((BM, BN), 0.0, tl.float64)
    f = tl.full((BM, BN), 0.0, tl.float64)
    for lo in range(0, K, G):  # a last partial group reads zero products, which change neither E nor the sum
        big = tl.abs(t)
        for j in tl.static_range(G):
            big = TC_MAX(big, _tc_product(a_ptr, b_ptr, rm, rn, mm, mn, K, N, lo + j))
        scale, inv = TC_UNIT(big)
        s = TC_TERM(t, scale)
        for j in tl.static_range(G):  # integers below 2^53: exact in any order; NaN/inf terms give the IEEE sum
            s = s + TC_TERM(_tc_product(a_ptr, b_ptr, rm, rn, mm, mn, K, N, lo + j), scale)
        t = TC_FINISH(s, inv)
        if NC > 0:
            if (lo + G) % NC == 0:
                f = ADD32(f, t)
                t = tl.full((BM, BN), 0.0, tl.float64)
    if NC > 0:
        t = ADD32(f, t)
    tl.store(out_ptr + rm[:, None] * N + rn[None, :], t, mask=mm[:, None] & mn[None, :])


def pairwise_merges(k: int) -> tuple[np.ndarray, int]:
    """For the tree mid = lo + (hi - lo) // 2 over K leaves: the number of internal nodes whose last leaf is k (the
    merges after pushing leaf k, in post-order), and the deepest stack below the top (at least 1)."""
    merges = np.zeros(k, dtype=np.int32)
    stack = [(0, k)]
    while stack:
        lo, hi = stack.pop()
        if hi - lo > 1:
            merges[hi - 1] += 1
            mid = lo + (hi - lo) // 2
            stack += [(lo, mid), (mid, hi)]
    depth = sp = 0
    for i in range(k):
        sp += i > 0
        depth = max(depth, sp)
        sp -= int(merges[i])
    return merges, max(depth, 1)


@dataclass(frozen=True)
class StepModule:
    """The emitted steps of one (model, accumulator, parameters): ``functions`` by the name the kernel calls them
    (``@triton.jit`` functions), ``digests`` the SHA-256 of each one's graph, ``path`` the emitted source file."""

    functions: dict[str, Any]
    digests: dict[str, str]
    path: Path

    def args(self, cpu: bool) -> dict[str, Any]:
        """The kernel's step arguments: the jit functions, or under the interpreter their plain Python functions
        (called inside the interpreted kernel, where the language is patched already)."""
        return {_ARG[k]: (f.fn if cpu else f) for k, f in self.functions.items()}


_ARG = {"_rnd": "RND", "_add": "ADD", "_tc_max": "TC_MAX", "_tc_unit": "TC_UNIT", "_tc_term": "TC_TERM",
        "_tc_finish": "TC_FINISH", "_add32": "ADD32"}
_MODULES: dict[tuple, StepModule] = {}


def step_module(model: str, acc: str, b: int = 0, rtz: bool = False, f32: bool = False) -> StepModule:
    """The steps of :func:`refarith.fast.gemm_steps.step_graphs` emitted by
    :func:`refarith.fast.gemm_steps.emit_step` into one source file (written atomically into the Triton cache
    directory, imported once per process)."""
    import hashlib
    import importlib.util

    from refarith.fast.gemm_steps import emit_step, step_graphs
    from refarith.fast.triton_backend import TritonError, _write_atomic, cache_dir

    key = (model == "tensor_core", acc, b, rtz, f32)
    if key in _MODULES:
        return _MODULES[key]
    graphs = step_graphs(model, acc, b, rtz, f32)
    src = "import triton\nimport triton.language as tl\n\n\n" + "\n\n".join(
        emit_step(g, name) for name, g in graphs.items())
    name = "gemm_steps_" + hashlib.sha256(src.encode()).hexdigest()[:24]
    path = cache_dir() / f"{name}.py"
    try:
        _write_atomic(path, src)
    except OSError as e:
        raise TritonError(f"cannot write the emitted GEMM steps to {path}: {e.strerror or e}") from None
    spec = importlib.util.spec_from_file_location(f"refarith_triton_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        raise TritonError(f"emitted GEMM steps did not load ({type(e).__name__}: {e}); source {path}") from e
    out = StepModule({k: getattr(mod, k) for k in graphs}, {k: g.digest for k, g in graphs.items()}, path)
    _MODULES[key] = out
    return out


_INTERPRETED: dict[str, object] = {}


def _launcher(kernel, cpu: bool):
    """The kernel as launched: itself on CUDA; on CPU an interpreted copy whose calls to :func:`_tile` and
    :func:`_tc_product` reach plain copies of them (the interpreter wraps only the function it is given, and
    calling a jit function outside a compiled kernel raises)."""
    if not cpu:
        return kernel
    name = kernel.fn.__name__
    if name not in _INTERPRETED:
        import types

        from triton.runtime.interpreter import InterpretedFunction

        env = dict(kernel.fn.__globals__)

        def copy(f):
            return types.FunctionType(f.__code__, env, f.__name__, f.__defaults__, f.__closure__)

        for helper in (_tile, _tc_product):
            env[helper.fn.__name__] = copy(helper.fn)
        _INTERPRETED[name] = InterpretedFunction(copy(kernel.fn))
    return _INTERPRETED[name]


def accumulate(ap: np.ndarray, bp: np.ndarray, model: str, mp: dict, device: str,
               acc: str = "binary32") -> np.ndarray:
    """The model's sums of A' (M x K) times B' (K x N) in the accumulator ``acc``, computed by the Triton kernel on
    ``device`` (``cpu``: interpreted); binary64 results.  Into binary32 the chain models and pairwise take binary64
    arrays of binary32 values whose products are binary32 values (checked by the caller) and run in float32;
    into another accumulator (at most 32 bits, with subnormals) they take products exact in binary64 and run the
    numpy kernel's binary64 steps (TwoSum, rounding to odd, RNE into the format); tensor_core into any of these
    accumulators takes finite products exact in binary64 (NaN/inf operands too) and refuses, with KernelError, what
    :func:`tensor_core_fits` names of the finite operands."""
    import torch

    from refarith.fast.gemm_steps import acc_format

    if model not in TRITON_MODELS:
        raise KernelError(f"accum={model}: the triton backend runs {', '.join(TRITON_MODELS)}")
    acc_format(acc)  # KernelError for an accumulator the steps do not take
    m, k = ap.shape
    n = bp.shape[1]
    dev = torch.device(device)
    if dev.type not in _BLOCK:
        raise KernelError(f"the triton backend runs on cuda devices (compiled) or cpu (interpreted), not {device}")
    cpu = dev.type == "cpu"
    bs = _BLOCK[dev.type] if not cpu else min(_BLOCK["cpu"], max(16, 1 << (max(m, n) - 1).bit_length()))
    grid = (-(-m // bs), -(-n // bs))
    if model == "tensor_core":
        g, b = int(mp["g"]), int(mp["b"])
        fa, fb = np.isfinite(ap), np.isfinite(bp)
        why = tensor_core_fits(np.where(fa, ap, 0.0), np.where(fb, bp, 0.0), g, b)
        if why:
            raise KernelError(f"tensor_core on the triton backend: {why}; use the numpy backend")
        steps = step_module(model, acc, b, mp["tc_round"] == "rtz")
        ta, tb = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).to(dev) for x in (ap, bp))
        out = torch.empty((m, n), dtype=torch.float64, device=dev)
        with np.errstate(invalid="ignore"):  # the interpreter's numpy: inf x 0, inf - inf in groups with specials
            _launcher(_tensor_core, cpu)[grid](ta, tb, out, m, n, k, int(mp["n_c"]), **steps.args(cpu), G=g,
                                               BM=bs, BN=bs)
        return out.cpu().numpy()
    f32 = acc == "binary32"
    dt = np.float32 if f32 else np.float64
    steps = step_module(model, acc, f32=f32)
    ta, tb = (torch.from_numpy(np.ascontiguousarray(x, dtype=dt)).to(dev) for x in (ap, bp))
    out = torch.empty((m, n), dtype=torch.float32 if f32 else torch.float64, device=dev)
    fmt = {**steps.args(cpu), "DT": tl.float32 if f32 else tl.float64}
    if model == "pairwise":
        merges, depth = pairwise_merges(k)
        stack = torch.empty(grid[0] * grid[1] * depth * bs * bs, dtype=out.dtype, device=dev)
        _launcher(_pairwise, cpu)[grid](ta, tb, torch.from_numpy(merges).to(dev), stack, out, m, n, k, depth,
                                        **fmt, BM=bs, BN=bs)
    else:
        nb = {"blocked": int(mp.get("nb", k)), "split_k": k // int(mp.get("splits", 1))}.get(model, k)
        _launcher(_chain, cpu)[grid](ta, tb, out, m, n, k, max(nb, 1), KAHAN=model == "kahan",
                                     LEAVES=model in ("sequential", "kahan"), **fmt, BM=bs, BN=bs)
    return out.cpu().numpy().astype(np.float64)


__all__ = ["TRITON_MODELS", "StepModule", "accumulate", "step_module", "tensor_core_fits"]
