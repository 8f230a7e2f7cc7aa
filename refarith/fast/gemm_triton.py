"""Triton kernels of scaled_mm: the chain models (sequential, fma_chain, blocked, split_k, kahan) and pairwise into
binary32 or an accumulator of at most 16 bits, and tensor_core with its presets into binary32.

One program computes a ``BM x BN`` tile of D; it walks K in order and keeps the chain s, the running total and
(kahan) the compensation c in float32 registers:

* ``s = s + a_k * b_k`` (kahan: ``y = p - c; t = s + y; c = (t - s) - y; s = t``), every operation a float32
  IEEE 754 RNE operation;
* after every ``NB`` elements of K, and after the last one, ``total = total + s`` and ``s = +0`` (blocked: NB = nb;
  split_k: NB = K / splits; the others NB = K, where +0 + s = s because a chain from +0 never ends at -0).

Into binary32 this is the numpy kernel's loop (:mod:`refarith.fast.gemm`) when every product a' b' is a binary32
value (checked by the caller): then fl(a' b') = a' b', so sequential and fma_chain coincide, and a compiler
contracting ``s + a * b`` or ``a * b - c`` into a fused multiply-add (Triton's default on GPUs) computes the same
values.  Into a narrower accumulator (at most 16 bits, with subnormals) the same loops run in binary64 on products
exact in binary64, each step the numpy kernel's: a leaf fl(p) (sequential, kahan, pairwise) and every addition
TwoSum, rounding to odd at 53 bits, then RNE into the format (:func:`_rnd`, the rules of
``refarith.fast.gemm.round_to``); every product there is exact, and every other multiply a power-of-two scaling,
so contraction into fused multiply-adds changes nothing either.

``pairwise`` (products binary32 values, so every leaf fl(p_k) = p_k): the numpy kernel's tree, mid = lo + (hi -
lo) // 2, walked in post-order.  The host lists, for every k, how many tree nodes end at leaf k; the kernel pushes
each leaf and then merges that many times, left (the stack, in a scratch buffer per program) + right (the tile in
registers), each a float32 RNE addition; the result is +0 + the root.

``tensor_core`` (products finite and exact in binary64, checked by the caller; every non-zero product at least
2^(b - 1000), so the alignment unit 2^(E - b) is binary64-normal): for each group of g products (a last partial group
reads zeros), E is the exponent field of the largest magnitude among t and the products, each term times
2^(b - E) is truncated (rtz) or rounded to even (rne) to an integer, the integers are summed in binary64 (exact:
(g + 1) 2^(b + 1) <= 2^53), scaled back by 2^(E - b), and the sum is rounded into binary32 (the float64 to float32
conversion, RNE; rtz steps one ulp back toward zero where that conversion rounded away); with n_c > 0 the
promotion f = f + t is a float32 addition.  These are the steps of ``refarith.fast.gemm._tc_group_normal``.

The kernels are hand-written, not traced from the numpy code like the block kernels of
:mod:`refarith.fast.triton_blocks`.  CUDA tensors run them compiled, CPU tensors under Triton's interpreter.
Importing this module imports triton; :func:`refarith.fast.gemm.scaled_mm` imports it only for
``backend="triton"``.
"""

from __future__ import annotations

import numpy as np
import triton
import triton.language as tl

from refarith.errors import KernelError

CHAIN_MODELS = ("sequential", "fma_chain", "blocked", "split_k", "kahan")
TRITON_MODELS = (*CHAIN_MODELS, "pairwise", "tensor_core")
"""Models the Triton backend runs (into binary32; the presets are tensor_core parameter sets)."""
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
def _rnd(x, NARROW: tl.constexpr, MBITS: tl.constexpr, EMIN: tl.constexpr, fmax, big, inf_to):
    """x into the accumulator: binary32 (NARROW false; x is already a value) or, from binary64, RNE into a format
    of MBITS fraction bits, minimum exponent EMIN, with subnormals: finite overflow to ``big``, infinities to
    ``inf_to`` (the rules of ``refarith.fast.gemm.round_to``)."""
    if NARROW:
        ax = tl.abs(x)
        fin = (ax < float("inf")) & (ax > 0)
        e = ((tl.where(fin, ax, 1.0).to(tl.int64, bitcast=True) >> 52) & 0x7FF) - 1023
        qe = tl.maximum(e - MBITS, EMIN - MBITS)
        y = tl.where(fin, ax, 0.0) * ((1023 - qe) << 52).to(tl.float64, bitcast=True)
        r = ((y + 4503599627370496.0) - 4503599627370496.0) * ((1023 + qe) << 52).to(tl.float64, bitcast=True)
        r = tl.where(fin & (r > fmax), big, r)
        r = tl.where(ax == float("inf"), inf_to, r)
        r = tl.where(ax == 0, 0.0, r)
        r = tl.where(x.to(tl.int64, bitcast=True) < 0, -r, r)
        x = tl.where(x != x, x, r)
    return x


@triton.jit
def _add(x, y, NARROW: tl.constexpr, MBITS: tl.constexpr, EMIN: tl.constexpr, fmax, big, inf_to):
    """x + y into the accumulator: the float32 addition, or (NARROW) TwoSum in binary64, rounded to odd at 53 bits,
    then :func:`_rnd` (``refarith.fast.gemm._Acc.add``)."""
    s = x + y
    if NARROW:
        bb = s - x
        err = (x - (s - bb)) + (y - bb)
        err = tl.where(tl.abs(s) < float("inf"), err, 0.0)
        bits = s.to(tl.int64, bitcast=True)
        step = tl.where((err > 0) == (s > 0), 1, -1).to(tl.int64)
        s = tl.where((err != 0) & ((bits & 1) == 0), (bits + step).to(tl.float64, bitcast=True), s)
        s = _rnd(s, NARROW, MBITS, EMIN, fmax, big, inf_to)
    return s


@triton.jit
def _chain(a_ptr, b_ptr, out_ptr, M, N, K, NB, fmax, big, inf_to, KAHAN: tl.constexpr, LEAVES: tl.constexpr,
           NARROW: tl.constexpr, MBITS: tl.constexpr, EMIN: tl.constexpr, DT: tl.constexpr, BM: tl.constexpr,
           BN: tl.constexpr):
    rm, rn, mm, mn = _tile(M, N, BM, BN)
    total = tl.full((BM, BN), 0.0, DT)
    s = tl.full((BM, BN), 0.0, DT)
    c = tl.full((BM, BN), 0.0, DT)
    for k in range(0, K):
        a = tl.load(a_ptr + rm * K + k, mask=mm, other=0.0)
        b = tl.load(b_ptr + k * N + rn, mask=mn, other=0.0)
        p = a[:, None] * b[None, :]
        if LEAVES:
            p = _rnd(p, NARROW, MBITS, EMIN, fmax, big, inf_to)
        if KAHAN:
            y = _add(p, -c, NARROW, MBITS, EMIN, fmax, big, inf_to)
            t = _add(s, y, NARROW, MBITS, EMIN, fmax, big, inf_to)
            c = _add(_add(t, -s, NARROW, MBITS, EMIN, fmax, big, inf_to), -y, NARROW, MBITS, EMIN, fmax, big,
                     inf_to)
            s = t
        else:
            s = _add(s, p, NARROW, MBITS, EMIN, fmax, big, inf_to)
        end = ((k + 1) % NB == 0) | (k + 1 == K)
        total = tl.where(end, _add(total, s, NARROW, MBITS, EMIN, fmax, big, inf_to), total)
        s = tl.where(end, tl.full((BM, BN), 0.0, DT), s)
    tl.store(out_ptr + rm[:, None] * N + rn[None, :], total, mask=mm[:, None] & mn[None, :])


@triton.jit
def _pairwise(a_ptr, b_ptr, merges_ptr, stack_ptr, out_ptr, M, N, K, DEPTH, fmax, big, inf_to,
              NARROW: tl.constexpr, MBITS: tl.constexpr, EMIN: tl.constexpr, DT: tl.constexpr, BM: tl.constexpr,
              BN: tl.constexpr):
    rm, rn, mm, mn = _tile(M, N, BM, BN)
    tile = tl.arange(0, BM)[:, None] * BN + tl.arange(0, BN)[None, :]
    base = stack_ptr + (tl.program_id(0) * tl.num_programs(1) + tl.program_id(1)) * (DEPTH * BM * BN)
    a = tl.load(a_ptr + rm * K, mask=mm, other=0.0)
    b = tl.load(b_ptr + rn, mask=mn, other=0.0)
    top = _rnd(a[:, None] * b[None, :], NARROW, MBITS, EMIN, fmax, big, inf_to)  # leaf 0: no node ends there
    sp = 0
    for k in range(1, K):
        tl.store(base + sp * (BM * BN) + tile, top)  # push the previous top
        tl.debug_barrier()
        sp = sp + 1
        a = tl.load(a_ptr + rm * K + k, mask=mm, other=0.0)
        b = tl.load(b_ptr + k * N + rn, mask=mn, other=0.0)
        top = _rnd(a[:, None] * b[None, :], NARROW, MBITS, EMIN, fmax, big, inf_to)
        for _ in range(tl.load(merges_ptr + k)):
            sp = sp - 1
            top = _add(tl.load(base + sp * (BM * BN) + tile), top, NARROW, MBITS, EMIN, fmax, big, inf_to)
    top = _add(tl.full((BM, BN), 0.0, DT), top, NARROW, MBITS, EMIN, fmax, big, inf_to)
    tl.store(out_ptr + rm[:, None] * N + rn[None, :], top, mask=mm[:, None] & mn[None, :])


@triton.jit
def _tensor_core(a_ptr, b_ptr, out_ptr, M, N, K, NC, G: tl.constexpr, B: tl.constexpr, RTZ: tl.constexpr,
                 BM: tl.constexpr, BN: tl.constexpr):
    rm, rn, mm, mn = _tile(M, N, BM, BN)
    t = tl.full((BM, BN), 0.0, tl.float64)
    f = tl.full((BM, BN), 0.0, tl.float64)
    for lo in range(0, K, G):
        big = tl.abs(t)
        for j in tl.static_range(G):
            a = tl.load(a_ptr + rm * K + lo + j, mask=mm & (rm * 0 + lo + j < K), other=0.0)
            b = tl.load(b_ptr + (lo + j) * N + rn, mask=mn & (rn * 0 + lo + j < K), other=0.0)
            big = tl.maximum(big, tl.abs(a[:, None] * b[None, :]))
        e = (big.to(tl.int64, bitcast=True) >> 52) & 0x7FF
        scale = (tl.minimum(2046 + B - e, 2046) << 52).to(tl.float64, bitcast=True)
        inv = (tl.maximum(e - B, 1) << 52).to(tl.float64, bitcast=True)
        s = tl.full((BM, BN), 0.0, tl.float64)
        for j in tl.static_range(G + 1):  # the g products, then t: each times 2^(b - E), |x| < 2^(b + 1), to an integer
            if j < G:
                a = tl.load(a_ptr + rm * K + lo + j, mask=mm & (rm * 0 + lo + j < K), other=0.0)
                b = tl.load(b_ptr + (lo + j) * N + rn, mask=mn & (rn * 0 + lo + j < K), other=0.0)
                x = (a[:, None] * b[None, :]) * scale
            else:
                x = t * scale
            if RTZ:
                x = tl.where(x < 0, -tl.floor(-x), tl.floor(x))
            else:  # to nearest even: adding and taking away 2^52 (|x| < 2^52)
                x = (x + tl.where(x < 0, -4503599627370496.0, 4503599627370496.0)) - tl.where(
                    x < 0, -4503599627370496.0, 4503599627370496.0)
            s = s + x
        y = s * inv + 0.0
        y32 = y.to(tl.float32)  # RNE; rtz steps one ulp back toward zero where the conversion rounded away
        if RTZ:
            back = tl.abs(y32.to(tl.float64)) > tl.abs(y)
            y32 = tl.where(back, (y32.to(tl.int32, bitcast=True) - 1).to(tl.float32, bitcast=True), y32)
        t = y32.to(tl.float64)
        if NC > 0:
            if (lo + G) % NC == 0:
                f = (f.to(tl.float32) + t.to(tl.float32)).to(tl.float64)
                t = tl.full((BM, BN), 0.0, tl.float64)
    if NC > 0:
        t = (f.to(tl.float32) + t.to(tl.float32)).to(tl.float64)
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


def tensor_core_fits(ap: np.ndarray, bp: np.ndarray, g: int, b: int) -> str | None:
    """Why the tensor_core kernel cannot take these binary64 operands (None: it can)."""
    if not (np.isfinite(ap).all() and np.isfinite(bp).all()):
        return "NaN/inf operands"
    if (g + 1) << (b + 1) > 1 << 53:
        return f"g={g}, b={b}: the aligned sums exceed 2^53"
    xa, xb = np.abs(ap[ap != 0]), np.abs(bp[bp != 0])
    if xa.size and xb.size and not (float(xa.min()) * float(xb.min()) >= 2.0 ** (b - 1000)
                                    and float(xa.max()) * float(xb.max()) < 2.0 ** 1000):
        return "products below 2^(b - 1000) or at least 2^1000"
    return None


_INTERPRETED: dict[str, object] = {}


def _launcher(kernel, cpu: bool):
    """The kernel as launched: itself on CUDA; on CPU an interpreted copy whose calls to :func:`_tile`,
    :func:`_rnd` and :func:`_add` reach plain copies of them (the interpreter wraps only the function it is
    given, and calling a jit function outside a compiled kernel raises)."""
    if not cpu:
        return kernel
    name = kernel.fn.__name__
    if name not in _INTERPRETED:
        import types

        from triton.runtime.interpreter import InterpretedFunction

        env = dict(kernel.fn.__globals__)

        def copy(f):
            return types.FunctionType(f.__code__, env, f.__name__, f.__defaults__, f.__closure__)

        for part in (_tile, _rnd, _add):  # plain functions: the running kernel has the language patched already
            env[part.fn.__name__] = copy(part.fn)
        _INTERPRETED[name] = InterpretedFunction(copy(kernel.fn))
    return _INTERPRETED[name]


def _acc_params(acc: str) -> tuple[bool, int, int, float, float, float]:
    """(narrow, mbits, emin, max, finite-overflow value, value of an infinity) of the accumulator format."""
    import math

    from refarith.exact.rounding import default_overflow
    from refarith.formats import get_format

    f = get_format(acc)
    if f.name == "binary32":
        return False, 23, -126, 0.0, 0.0, 0.0
    if f.nbits > 16 or not f.subnormals:
        raise KernelError(f"acc={f.name}: the triton backend runs binary32 and formats of at most 16 bits with "
                          "subnormals as accumulators")
    ovf = default_overflow(f)
    fmax = float(f.max)
    big = math.inf if ovf == "inf" else (math.nan if ovf == "nan" else fmax)
    if ovf == "saturate":
        inf_to = fmax
    elif ovf == "nan" or not f.has_inf:
        inf_to = math.nan if f.has_nan else fmax
    else:
        inf_to = math.inf
    return True, f.mbits, f.emin, fmax, big, inf_to


def accumulate(ap: np.ndarray, bp: np.ndarray, model: str, mp: dict, device: str,
               acc: str = "binary32") -> np.ndarray:
    """The model's sums of A' (M x K) times B' (K x N) in the accumulator ``acc``, computed by the Triton kernel on
    ``device`` (``cpu``: interpreted); binary64 results.  Into binary32 the chain models and pairwise take binary64
    arrays of binary32 values whose products are binary32 values (checked by the caller) and run in float32;
    into a narrower accumulator they take products exact in binary64 and run the numpy kernel's binary64 steps
    (TwoSum, rounding to odd, RNE into the format); tensor_core (binary32 only) takes products exact in binary64
    and refuses, with KernelError, what :func:`tensor_core_fits` names."""
    import torch

    if model not in TRITON_MODELS:
        raise KernelError(f"accum={model}: the triton backend runs {', '.join(TRITON_MODELS)}")
    m, k = ap.shape
    n = bp.shape[1]
    dev = torch.device(device)
    if dev.type not in _BLOCK:
        raise KernelError(f"the triton backend runs on cuda devices (compiled) or cpu (interpreted), not {device}")
    cpu = dev.type == "cpu"
    bs = _BLOCK[dev.type] if not cpu else min(_BLOCK["cpu"], max(16, 1 << (max(m, n) - 1).bit_length()))
    grid = (-(-m // bs), -(-n // bs))
    if model == "tensor_core":
        if acc != "binary32":
            raise KernelError(f"tensor_core into acc={acc}: the triton backend runs it into binary32 only")
        g, b = int(mp["g"]), int(mp["b"])
        why = tensor_core_fits(ap, bp, g, b)
        if why:
            raise KernelError(f"tensor_core on the triton backend: {why}; use the numpy backend")
        ta, tb = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).to(dev) for x in (ap, bp))
        out = torch.empty((m, n), dtype=torch.float64, device=dev)
        _launcher(_tensor_core, cpu)[grid](ta, tb, out, m, n, k, int(mp["n_c"]), G=g, B=b,
                                           RTZ=mp["tc_round"] == "rtz", BM=bs, BN=bs)
        return out.cpu().numpy()
    narrow, mbits, emin, fmax, big, inf_to = _acc_params(acc)
    dt = np.float64 if narrow else np.float32
    ta, tb = (torch.from_numpy(np.ascontiguousarray(x, dtype=dt)).to(dev) for x in (ap, bp))
    out = torch.empty((m, n), dtype=torch.float64 if narrow else torch.float32, device=dev)
    fmt = {"NARROW": narrow, "MBITS": mbits, "EMIN": emin, "DT": tl.float64 if narrow else tl.float32}
    if model == "pairwise":
        merges, depth = pairwise_merges(k)
        stack = torch.empty(grid[0] * grid[1] * depth * bs * bs, dtype=out.dtype, device=dev)
        _launcher(_pairwise, cpu)[grid](ta, tb, torch.from_numpy(merges).to(dev), stack, out, m, n, k, depth, fmax,
                                        big, inf_to, **fmt, BM=bs, BN=bs)
    else:
        nb = {"blocked": int(mp.get("nb", k)), "split_k": k // int(mp.get("splits", 1))}.get(model, k)
        _launcher(_chain, cpu)[grid](ta, tb, out, m, n, k, max(nb, 1), fmax, big, inf_to, KAHAN=model == "kahan",
                                     LEAVES=model in ("sequential", "kahan"),
                                     **fmt, BM=bs, BN=bs)
    return out.cpu().numpy().astype(np.float64)


__all__ = ["TRITON_MODELS", "accumulate"]
