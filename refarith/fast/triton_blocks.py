"""Triton kernels of the block and requantization families: MX, NVFP4, dyadic requantization.

What is traced and what is hand-emitted:

* **Traced** (:func:`refarith.fast.xptrace.trace_xp`): the kernels' arithmetic, from the functions the numpy and
  torch backends run — :func:`refarith.fast.mx.quantize_blocks` (block maximum, E8M0 scale rule, element
  rounding) for MX quantize, :func:`refarith.fast.mx.scale_values_f32` and :func:`refarith.fast.mx.f32_mul` for
  MX dequantize, ``refarith.fast.nvfp4._quantize_chunk`` (block scale, UE4M3 rounding, division or reciprocal,
  E2M1 rounding; the function the torch backend runs on each chunk) and
  :func:`refarith.fast.nvfp4.tensor_scale_from_amax` (per-tensor scale s_t or g) for NVFP4,
  :func:`refarith.fast.bfp.quantize_blocks` for block floating point, :func:`refarith.fast.intquant.quantize_words`
  (scale, zero point, codes from the group words) for INTn quantization, the variant kernels of
  :mod:`refarith.fast.requant` with the zero point and clamp of :func:`refarith.fast.requant.requantize`.
  Each spec is traced once into a block graph whose digest the emitted source carries.
* **Hand-emitted** (:func:`refarith.fast.triton_backend.emit_block_source`): the tile layout (one row of the
  ``[BR, BK]`` tile per block, masks for lanes past the block and rows past the end), the block reduction
  (``tl.max`` over the row, masked lanes read as 0), the broadcast of block values, table gathers.  The host
  side moves blocks into rows with the torch backend's own layout functions, for two-level NVFP4 takes the
  per-tensor maximum magnitude with one torch integer ``amax`` and for INTn the group words
  (:func:`refarith.fast.intquant.group_words`) with torch integer maxima (the formulas applied to them are traced).

Stochastic element rounding (``rounding="sr"``, :mod:`refarith.fast.blocksr`) of MX and NVFP4 is traced from the
same functions with the rounding ``sr`` = (r, k, variant) of :func:`refarith.fast.mx.sr_round_up`: the random
integers are one more element input of the graph (``r``, int64, below 2^k), the number of bits k and the variant
are static, so each (spec, k, variant) is its own graph; its words are 64 bits wide (the decision's integers
reach 2^(k+2)).  The random integers are checked as on the numpy and torch backends
(:func:`refarith.fast.blocksr.random_bits`) and never drawn here.

Every kernel takes and returns torch tensors on one device: CUDA tensors run compiled kernels, CPU tensors
Triton's interpreter.  Results are bit-identical to :mod:`refarith.fast.mx`, :mod:`refarith.fast.nvfp4` and
:mod:`refarith.fast.requant` (whose docstrings state the semantics); ``tests/test_triton_blocks.py`` checks them
against the exact model on the committed golden files of each family and exhaustively on the dequantization
domains.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from refarith.errors import BadValueError, UnknownModeError
from refarith.fast.trace import Graph
from refarith.fast.xptrace import output_levels, trace_xp

_TABLES: dict[tuple, Any] = {}


def run_blocks(graph: Graph, inputs: Sequence[Any], in_types: Sequence[str], out_dtypes: Sequence[Any],
               nrows: int, k: int) -> list[Any]:
    """Run a block graph with Triton over ``nrows`` blocks of ``k`` elements.

    ``inputs``: flat tensors on one device, ``nrows * k`` long for element inputs and ``nrows`` for block inputs
    (the graph's ``input_levels``), of the integer dtypes ``in_types``; returns one flat tensor per output."""
    import torch

    from refarith.fast.triton_backend import compile_graph

    dev = inputs[0].device
    if dev.type not in ("cpu", "cuda"):
        raise BadValueError(f"the triton backend runs on cuda devices (compiled) or cpu (interpreted), not {dev}")
    for t, lv in zip(inputs, graph.input_levels, strict=True):
        want = nrows * k if lv == 0 else nrows
        if t.device != dev or t.numel() != want:
            raise BadValueError(f"block kernel {graph.name!r}: input of {t.numel()} values on {t.device}, "
                                f"expected {want} on {dev}")
    out_types = tuple(str(d).replace("torch.", "") for d in out_dtypes)
    ck = compile_graph(graph, in_types, out_types, interpreted=dev.type == "cpu")
    tables = []
    for tab in graph.tables:
        key = (tab, graph.width, str(dev))
        if key not in _TABLES:
            a = np.array(tab, dtype=np.uint32 if graph.width == 32 else np.uint64)
            _TABLES[key] = torch.from_numpy(a.view(np.int32 if graph.width == 32 else np.int64)).to(dev)
        tables.append(_TABLES[key])
    lv = output_levels(graph)
    outs = [torch.empty(nrows * k if lv[j] == 0 else nrows, dtype=d, device=dev) for j, d in enumerate(out_dtypes)]
    if nrows:
        ck([t.contiguous() for t in inputs], outs, nrows, k, tables)
    return outs


def _tensor(x: Any) -> Any:
    import torch

    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _rand_blocks(rand: Any, t: Any, rand_bits: Any, sr_variant: str, target: str, layout: Any) -> Any:
    """The random integers of stochastic rounding, checked as on the torch backend
    (:func:`refarith.fast.blocksr.random_bits`: of the shape of ``t``, below 2^``rand_bits``), as int64 on the
    device of ``t``, moved into block rows by ``layout`` (the elements' own layout function) and flattened."""
    from refarith.fast.blocksr import random_bits
    from refarith.fast.mx import ops

    r = random_bits(rand, tuple(t.shape), rand_bits, sr_variant, target, ops("torch"), t)
    return layout(r).contiguous().reshape(-1)


def like_device(a: np.ndarray, like: Any) -> Any:
    """The numpy array ``a`` as a torch tensor on the device of ``like`` (a torch tensor; CPU otherwise)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(a)).to(getattr(like, "device", "cpu"))


# ------------------------------------------------------------------ MX
def _sr_name(sr: tuple[int, str] | None) -> str:
    return "" if sr is None else f",sr={sr[1]},k={sr[0]}"


def _sr_check(sr: tuple[int, str] | None, rounding: str, target: str) -> None:
    """``sr`` = (k, variant) goes with ``rounding="sr"`` and only with it (k itself is checked with the random
    integers, :func:`refarith.fast.blocksr.random_bits`); the variant must apply to k and ``target``."""
    from refarith.exact.stochastic import check_variant

    if (rounding == "sr") != (sr is not None):
        raise UnknownModeError(f"rounding={rounding!r} with stochastic parameters {sr!r}: (k, variant) go with "
                               f"rounding='sr' only")
    if sr is not None:
        check_variant(sr[1], sr[0], target)


@lru_cache(maxsize=128)
def mx_quantize_graph(element: str, scale: str = "floor", rounding: str = "rne",
                      sr: tuple[int, str] | None = None) -> Graph:
    """Block graph of :func:`refarith.fast.mx.quantize_blocks`: input the binary32 bits of a block's elements
    (and for ``rounding="sr"`` with ``sr`` = (k, variant) the random integers ``r``, one per element), outputs
    (E8M0 scale code per block, element codes)."""
    from refarith.fast import mx as fmx

    fmt = fmx.element_format(element)
    _sr_check(sr, rounding, fmt.name)
    name = f"mx_quantize({fmt.name},scale={scale},rounding={rounding}{_sr_name(sr)})"
    if sr is None:
        return trace_xp(lambda xp, b: fmx.quantize_blocks(b, fmt, scale, rounding, xp), [("x", 0, 32)], name)
    return trace_xp(lambda xp, b, r: fmx.quantize_blocks(b, fmt, scale, "sr", xp, (r, *sr)),
                    [("x", 0, 32), ("r", 0, 64)], name)


def mx_quantize(x: Any, element: str, axis: int = -1, block: int = 32, scale: str = "floor",
                rounding: str = "rne", *, rand: Any = None, rand_bits: int | None = None,
                sr_variant: str = "a") -> tuple[Any, Any]:
    """(E8M0 scale codes uint8, element codes uint8) of a float32 tensor quantized along ``axis`` by the traced
    :func:`refarith.fast.mx.quantize_blocks` run with Triton; shapes as :func:`refarith.fast.mx.mx_quantize`.
    ``rounding="sr"``: element i rounded stochastically with ``rand[i]`` (``rand`` of the shape of ``x``, integers
    below 2^``rand_bits``, rule ``sr_variant``), as :func:`refarith.fast.blocksr.mx_quantize_sr`."""
    import torch

    from refarith.fast import mx as fmx

    fmt = fmx.check_mx_args(element, block, scale, "rne" if rounding == "sr" else rounding)
    t = _tensor(x)
    if t.dim() == 0:
        raise BadValueError("mx_quantize needs an array with at least one dimension")
    xp = fmx.ops("torch")
    axis = fmx._normalize_axis(axis, t.dim())
    blocks, shape = fmx._to_blocks(t, axis, block, xp)
    rows, nb = blocks.shape[0], blocks.shape[1]
    ins, types, sr = [blocks.view(torch.int32).reshape(-1)], ["int32"], None
    if rounding == "sr":
        ins.append(_rand_blocks(rand, t, rand_bits, sr_variant, fmt.name,
                                lambda r: fmx._to_blocks(r, axis, block, xp, dtype="int64")[0]))
        types.append("int64")
        sr = (rand_bits, sr_variant)
    elif rand is not None:
        raise UnknownModeError(f"rand is given but rounding={rounding!r} is not stochastic (rounding='sr')")
    g = mx_quantize_graph(element, scale, rounding, sr)
    s, c = run_blocks(g, ins, types, [torch.uint8, torch.uint8], rows * nb, block)
    return (fmx._scales_shape(s.reshape(rows, nb), shape, axis, xp),
            fmx._from_blocks(c.reshape(rows, nb, block), shape, axis, xp))


@lru_cache(maxsize=32)
def mx_dequantize_graph(element: str) -> Graph:
    """Block graph of MX dequantization: inputs (E8M0 scale code per block, element codes), output the binary32
    bits of X * 2^(s-127), the element's value (its exact binary32 table, as the numpy backend's) times the
    scale value of :func:`refarith.fast.mx.scale_values_f32` by :func:`refarith.fast.mx.f32_mul`."""
    from refarith.fast import mx as fmx

    fmt = fmx.element_format(element)
    lut = fmx.element_lut(fmt).view(np.int32)

    def kernel(xp, s, c):
        v = xp.t.as_tensor(lut)[c]
        sv = xp.i32(fmx.scale_values_f32(s, xp))
        return fmx.f32_mul(v, sv[..., None], xp)

    return trace_xp(kernel, [("scale", 1, 32), ("codes", 0, 32)], f"mx_dequantize({fmt.name})")


def mx_dequantize(scales: Any, codes: Any, element: str, axis: int = -1, block: int = 32) -> Any:
    """float32 values X * P_i of MX codes (torch tensors from :func:`mx_quantize`), computed with Triton."""
    import torch

    from refarith.fast import mx as fmx

    fmx.check_mx_args(element, block, "floor", "rne")
    c, s = _tensor(codes), _tensor(scales)
    axis = fmx._normalize_axis(axis, c.dim())
    cm = torch.movedim(c, axis, -1)
    sm = torch.movedim(s, axis, -1)
    n = cm.shape[-1]
    nb = -(-n // block)
    if sm.shape[-1] != nb or tuple(sm.shape[:-1]) != tuple(cm.shape[:-1]):
        raise BadValueError(f"scales of shape {tuple(s.shape)} do not match codes of shape {tuple(c.shape)} "
                            f"in blocks of {block} along axis {axis}")
    c2 = cm.reshape(-1, n).to(torch.int32)
    if nb * block != n:
        c2 = torch.cat([c2, torch.zeros((c2.shape[0], nb * block - n), dtype=torch.int32, device=c2.device)], 1)
    g = mx_dequantize_graph(element)
    (out,) = run_blocks(g, [sm.reshape(-1).to(torch.int32), c2.reshape(-1)], ["int32", "int32"],
                        [torch.int32], c2.shape[0] * nb, block)
    v = out.view(torch.float32).reshape(c2.shape[0], nb * block)[:, :n].reshape(cm.shape)
    return torch.movedim(v, -1, axis)


# ------------------------------------------------------------------ NVFP4
ST_MODES = ("none", "amax", "given")
"""Per-tensor scale of an NVFP4 graph: none (one level), computed from the tensor's largest finite magnitude
(input ``at`` per block), or given (input ``st`` per block, binary32 bits)."""


@lru_cache(maxsize=64)
def nvfp4_quantize_graph(division: str = "reciprocal", st_mode: str = "amax", zero_scale: str = "eps",
                         rounding: str = "rne", global_scale: str = "decode",
                         sr: tuple[int, str] | None = None) -> Graph:
    """Block graph of NVFP4 quantization of one block (16 elements or a 16x16 tile): inputs the binary32 bits of
    the elements and, unless ``st_mode='none'``, a per-block word (``at`` or ``st``); outputs (UE4M3 scale code,
    E2M1 codes) and for ``st_mode='amax'`` the per-tensor scale's binary32 bits (s_t, or the encode scale g for
    ``global_scale='reciprocal'``).

    The block arithmetic is ``refarith.fast.nvfp4._quantize_chunk`` itself, the function the torch backend's
    stochastic rounding runs on each chunk (numpy runs its block-scale part ``_block_scales`` on all blocks at
    once; torch's other roundings count the same rule's thresholds, ``_quantize_torch``), traced on
    :class:`~refarith.fast.xptrace.XpTrace`: its divisor or multiplier of
    the 128 UE4M3 codes is traced per block (:class:`~refarith.fast.xptrace.Deferred`), every binary32 operation
    as :func:`refarith.fast.mx.f32_div` / :func:`refarith.fast.mx.f32_mul`, the E2M1 rounding by
    :func:`refarith.fast.mx.encode_scaled` (the torch backend's device multiply and sticky-key table are its
    shortcuts to the same bits).  For ``st_mode='amax'`` the graph also computes the per-tensor scale from the
    tensor's largest finite magnitude by :func:`refarith.fast.nvfp4.tensor_scale_from_amax`, traced as well.
    ``rounding="sr"`` with ``sr`` = (k, variant): the E2M1 elements are rounded stochastically
    (``refarith.fast.nvfp4._e2m1_sr_codes``) with the last input ``r``, one random integer per element."""
    from refarith.exact import nvfp4 as _nv
    from refarith.fast import nvfp4 as fnv

    if division not in _nv.DIVISIONS or st_mode not in ST_MODES or zero_scale not in _nv.ZERO_SCALES \
            or rounding not in (*_nv.ROUNDINGS, "sr") or global_scale not in _nv.GLOBAL_SCALES \
            or (global_scale == "reciprocal" and st_mode == "none"):
        raise UnknownModeError(f"unknown NVFP4 setting division={division} st={st_mode} zero_scale={zero_scale} "
                               f"rounding={rounding} global_scale={global_scale}")
    _sr_check(sr, rounding, "ocp_e2m1")

    def kernel(xp, bits, *more):
        st = None
        if st_mode == "amax":
            st = fnv.tensor_scale_from_amax(more[0], xp, global_scale)
        elif st_mode == "given":
            st = more[0]
        rsr = None if sr is None else (more[-1], *sr)
        s, codes = fnv._quantize_chunk(bits, st, division, zero_scale, rounding, xp, rsr, global_scale)
        return (s, codes, st) if st_mode == "amax" else (s, codes)

    ins = [("x", 0, 32)] + ([] if st_mode == "none" else [("at" if st_mode == "amax" else "st", 1, 32)])
    ins += [] if sr is None else [("r", 0, 64)]
    gs = "" if global_scale == "decode" else f",global_scale={global_scale}"
    return trace_xp(kernel, ins, f"nvfp4_quantize(division={division},st={st_mode},zero_scale={zero_scale},"
                                 f"rounding={rounding}{gs}{_sr_name(sr)})")


def nvfp4_rows(bits: Any, scale_words: Any, division: str, st_mode: str, zero_scale: str, rounding: str,
               k: int, global_scale: str = "decode", rand: Any = None,
               sr: tuple[int, str] | None = None) -> tuple[Any, ...]:
    """The NVFP4 graph over ``bits`` (int32, rows of ``k`` elements, flat) with per-row ``scale_words`` (the
    ``at`` or ``st`` input, int32; None for ``st_mode='none'``) and, for ``rounding="sr"`` with ``sr`` = (k,
    variant), the random integers ``rand`` (int64, in the layout of ``bits``): (scale codes, element codes[, st
    bits])."""
    import torch

    g = nvfp4_quantize_graph(division, st_mode, zero_scale, rounding, global_scale, sr)
    nrows = bits.numel() // k
    ins = [bits] + ([] if st_mode == "none" else [scale_words]) + ([] if sr is None else [rand])
    types = ["int32"] * (len(ins) - (sr is not None)) + ([] if sr is None else ["int64"])
    outs = [torch.uint8, torch.uint8] + ([torch.int32] if st_mode == "amax" else [])
    return tuple(run_blocks(g, ins, types, outs, nrows, k))


def finite_amax_bits(bits: Any, dim: int | None = None) -> Any:
    """Largest magnitude bits of the finite binary32 values (int32 patterns), over everything or along ``dim``
    (the per-tensor amax of two-level NVFP4: infinities and NaNs do not count)."""
    import torch

    mag = bits & 0x7FFFFFFF
    mag = torch.where(mag >= 0x7F800000, torch.zeros_like(mag), mag)
    return mag.amax() if dim is None else mag.amax(dim)


def _nv_rand(rand: Any, t: Any, rounding: str, rand_bits: Any, sr_variant: str, tile: str, xp: Any
             ) -> tuple[Any, tuple[int, str] | None]:
    """(random integers in the block layout of ``t``, flat int64, and ``sr`` = (k, variant)) for
    ``rounding="sr"``, (None, None) otherwise (random integers given to another rounding are an error)."""
    from refarith.fast import nvfp4 as fnv

    if rounding != "sr":
        if rand is not None:
            raise UnknownModeError(f"rand is given but rounding={rounding!r} is not stochastic (rounding='sr')")
        return None, None
    r = _rand_blocks(rand, t, rand_bits, sr_variant, "ocp_e2m1",
                     lambda r: fnv._blocks(r, tile, xp, keep_dtype=True)[0])
    return r, (rand_bits, sr_variant)


def nvfp4_quantize(x: Any, division: str = "reciprocal", levels: int = 2, zero_scale: str = "eps",
                   tile: str = "1x16", rounding: str = "rne", tensor_scale: Any = None,
                   global_scale: str = "decode", *, rand: Any = None, rand_bits: int | None = None,
                   sr_variant: str = "a") -> tuple[Any, Any, Any]:
    """(per-tensor scale as a 0-d float32 tensor or None, UE4M3 scale codes uint8, E2M1 codes uint8) of a
    float32 tensor, computed with Triton; the semantics and shapes of :func:`refarith.fast.nvfp4.nvfp4_quantize`
    (the per-tensor maximum is one torch integer ``amax``; everything after it is the traced graph).
    ``rounding="sr"``: the elements rounded stochastically with ``rand`` (of the shape of ``x``, ``rand_bits``
    bits, rule ``sr_variant``), as :func:`refarith.fast.blocksr.nvfp4_quantize_sr`."""
    import torch

    from refarith.exact import nvfp4 as _nv
    from refarith.fast import nvfp4 as fnv
    from refarith.fast.mx import ops

    if tile not in _nv.TILES:
        raise UnknownModeError(f"unknown NVFP4 tile {tile!r}; expected one of {', '.join(_nv.TILES)}")
    if str(levels) not in _nv.LEVELS:
        raise UnknownModeError(f"NVFP4 levels must be 1 or 2, got {levels!r}")
    t = _tensor(x)
    if t.dim() == 0:
        raise BadValueError("nvfp4_quantize needs an array with at least one dimension")
    xp = ops("torch")
    blocks, shape = fnv._blocks(t, tile, xp)
    r, sr = _nv_rand(rand, t, rounding, rand_bits, sr_variant, tile, xp)
    k = blocks.shape[-1]
    bits = blocks.contiguous().view(torch.int32).reshape(-1)
    nrows = bits.numel() // k
    st_mode, words = "none", None
    if int(levels) == 2:
        if tensor_scale is not None:
            sb = int(np.array(float(tensor_scale), dtype=np.float32).view(np.int32))
            if not (0 < sb < 0x7F800000) or float(np.float32(tensor_scale)) != float(tensor_scale):  # in binary64
                raise BadValueError(f"per-tensor scale {tensor_scale!r} must be a positive finite binary32 value")
            st_mode, words = "given", torch.full((nrows,), sb, dtype=torch.int32, device=bits.device)
        else:
            st_mode = "amax"
            words = finite_amax_bits(bits).reshape(1).expand(nrows).contiguous()
    out = nvfp4_rows(bits, words, division, st_mode, zero_scale, rounding, k, global_scale, r, sr)
    s, c = out[0].reshape(blocks.shape[0], blocks.shape[1]), out[1].reshape(blocks.shape)
    st = None
    if st_mode == "amax":
        st = out[2][:1].view(torch.float32).reshape(())
    elif st_mode == "given":
        st = torch.tensor(float(np.float32(float(tensor_scale))), dtype=torch.float32, device=bits.device)
    return st, fnv._scale_shape(s, shape, tile), fnv._unblocks(c, shape, tile, xp)


def nvfp4_quantize_many(x: Any, division: str = "reciprocal", levels: int = 2, zero_scale: str = "eps",
                        tile: str = "1x16", rounding: str = "rne", global_scale: str = "decode", *,
                        rand: Any = None, rand_bits: int | None = None,
                        sr_variant: str = "a") -> tuple[Any, Any, Any]:
    """NVFP4 quantization of each of the ``n`` tensors ``x[i]`` (a float32 tensor of shape (n, rows, cols)), each
    with its own per-tensor scale, in one launch: (per-tensor scale bits int32 (n,) (1.0 for one level), scale
    codes (n, blocks per tensor), element codes (n, rows, cols)); ``rounding="sr"`` with ``rand`` of the shape
    of ``x`` as :func:`nvfp4_quantize`."""
    import torch

    from refarith.fast import nvfp4 as fnv
    from refarith.fast.mx import ops

    t = _tensor(x)
    if t.dim() != 3:
        raise BadValueError(f"nvfp4_quantize_many takes a stack of matrices (n, rows, cols), got shape "
                            f"{tuple(t.shape)}")
    n = t.shape[0]
    xp = ops("torch")
    blocks, shape = fnv._blocks(t, tile, xp)
    r, sr = _nv_rand(rand, t, rounding, rand_bits, sr_variant, tile, xp)
    k = blocks.shape[-1]
    bits = blocks.contiguous().view(torch.int32).reshape(-1)
    nrows = bits.numel() // k
    per = nrows // max(n, 1)
    st_mode, words = ("amax", None) if int(levels) == 2 else ("none", None)
    if st_mode == "amax":
        words = finite_amax_bits(bits.reshape(n, -1), 1).repeat_interleave(per).contiguous()
    out = nvfp4_rows(bits, words, division, st_mode, zero_scale, rounding, k, global_scale, r, sr)
    st = out[2].reshape(n, per)[:, 0] if st_mode == "amax" else torch.full((n,), 0x3F800000, dtype=torch.int32)
    codes = fnv._unblocks(out[1].reshape(blocks.shape), shape, tile, xp)
    return st, out[0].reshape(n, per), codes


@lru_cache(maxsize=4)
def nvfp4_dequantize_graph(two_level: bool) -> Graph:
    """Block graph of NVFP4 dequantization: inputs (UE4M3 scale code per block, E2M1 codes[, per-tensor scale
    bits per block]), output the binary32 bits of fl(P * S * s_t) (P * S exact; the product with s_t one
    :func:`refarith.fast.mx.f32_mul`), as :func:`refarith.fast.nvfp4.nvfp4_dequantize`."""
    from refarith.fast import nvfp4 as fnv
    from refarith.fast.mx import f32_mul

    e2m1_bits, ue4m3_bits = fnv._E2M1_LUT.view(np.int32), fnv._UE4M3_BITS

    def kernel(xp, s, c, *st):
        v = xp.t.as_tensor(e2m1_bits)[c]
        out = f32_mul(v, xp.t.as_tensor(ue4m3_bits)[s][..., None], xp)
        return f32_mul(out, st[0][..., None], xp) if st else out

    ins = [("scale", 1, 32), ("codes", 0, 32)] + ([("st", 1, 32)] if two_level else [])
    return trace_xp(kernel, ins, f"nvfp4_dequantize(levels={2 if two_level else 1})")


def nvfp4_dequantize(tensor_scale: Any, scales: Any, codes: Any, tile: str = "1x16") -> Any:
    """float32 values fl(P * S * s_t) (NaN for NaN-scaled blocks; ``tensor_scale`` None for one level), computed
    with Triton; the semantics of :func:`refarith.fast.nvfp4.nvfp4_dequantize`."""
    import torch

    from refarith.exact import nvfp4 as _nv
    from refarith.fast import nvfp4 as fnv
    from refarith.fast.mx import ops

    if tile not in _nv.TILES:
        raise UnknownModeError(f"unknown NVFP4 tile {tile!r}; expected one of {', '.join(_nv.TILES)}")
    xp = ops("torch")
    c = _tensor(codes)
    shape = tuple(c.shape)
    cb, _ = fnv._blocks(c.to(torch.int32), tile, xp, keep_dtype=True)
    k = cb.shape[-1]
    nrows = cb.shape[0] * cb.shape[1]
    s = _tensor(scales).to(torch.int32).reshape(-1)
    if s.numel() != nrows:
        raise BadValueError(f"{s.numel()} scale codes for {nrows} blocks of codes of shape {shape}")
    ins = [s, cb.contiguous().reshape(-1)]
    if tensor_scale is not None:
        tb = int(np.array(float(tensor_scale), dtype=np.float32).view(np.int32))
        ins.append(torch.full((nrows,), tb, dtype=torch.int32, device=c.device))
    g = nvfp4_dequantize_graph(tensor_scale is not None)
    (out,) = run_blocks(g, ins, ["int32"] * len(ins), [torch.int32], nrows, k)
    return fnv._unblocks(out.reshape(cb.shape), shape, tile, xp).view(torch.float32)


# ------------------------------------------------------------------ block floating point
@lru_cache(maxsize=64)
def bfp_quantize_graph(p: int, rounding: str = "rne", sr: tuple[int, str] | None = None) -> Graph:
    """Block graph of :func:`refarith.fast.bfp.quantize_blocks`: input the binary32 bits of a block's elements
    (finite; and for ``rounding="sr"`` with ``sr`` = (k, variant) the random integers ``r``, one per element),
    outputs (shared exponent per block, int32; mantissas, int32)."""
    from refarith.exact.bfp import ROUNDINGS, _check_p
    from refarith.fast import bfp as fbfp

    _check_p(p)
    if rounding != "sr" and rounding not in ROUNDINGS:
        raise UnknownModeError(f"unknown rounding {rounding!r}; expected one of {', '.join(ROUNDINGS + ('sr',))}")
    _sr_check(sr, rounding, f"int{p}_sym")
    name = f"bfp_quantize(p={p},rounding={rounding}{_sr_name(sr)})"
    if sr is None:
        return trace_xp(lambda xp, b: fbfp.quantize_blocks(b, p, rounding, xp), [("x", 0, 32)], name)
    return trace_xp(lambda xp, b, r: fbfp.quantize_blocks(b, p, "sr", xp, (r, *sr)), [("x", 0, 32), ("r", 0, 64)],
                    name)


def bfp_quantize(x: Any, p: int, block: int = 32, rounding: str = "rne", axis: int = -1, *, rand: Any = None,
                 rand_bits: int | None = None, sr_variant: str = "a") -> tuple[Any, Any]:
    """(shared exponents int32 per block, mantissas int32 shaped like ``x``) of a float32 tensor by the traced
    :func:`refarith.fast.bfp.quantize_blocks` run with Triton; the semantics, shapes and errors of
    :func:`refarith.fast.bfp.quantize` (NaN and infinity are refused on the host).  ``rounding="sr"``: mantissa i
    rounded stochastically with ``rand[i]`` (``rand`` of the shape of ``x``, ``rand_bits`` bits, rule
    ``sr_variant``)."""
    import torch

    from refarith.errors import SpecialValueError
    from refarith.exact.bfp import ROUNDINGS, _check_p
    from refarith.fast import mx as fmx

    _check_p(p)
    if rounding != "sr" and rounding not in ROUNDINGS:
        raise UnknownModeError(f"unknown rounding {rounding!r}; expected one of {', '.join(ROUNDINGS + ('sr',))}")
    if rounding != "sr" and rand is not None:
        raise UnknownModeError(f"rand is given but rounding={rounding!r} is not stochastic (rounding='sr')")
    t = _tensor(x)
    if not isinstance(block, int) or isinstance(block, bool) or block < 1:
        raise BadValueError(f"block size must be a positive integer, got {block!r}")
    if t.dim() == 0:
        raise BadValueError("bfp_quantize needs an array with at least one dimension")
    xp = fmx.ops("torch")
    axis = fmx._normalize_axis(axis, t.dim())
    blocks, shape = fmx._to_blocks(t, axis, block, xp)
    bits = blocks.view(torch.int32)
    if bool(((bits & 0x7FFFFFFF) >= 0x7F800000).any()):
        raise SpecialValueError("BFP quantization: NaN and infinity have no fixed-point code")
    rows, nb = blocks.shape[0], blocks.shape[1]
    ins, types, sr = [bits.reshape(-1)], ["int32"], None
    if rounding == "sr":
        ins.append(_rand_blocks(rand, t, rand_bits, sr_variant, f"int{p}_sym",
                                lambda r: fmx._to_blocks(r, axis, block, xp, dtype="int64")[0]))
        types.append("int64")
        sr = (rand_bits, sr_variant)
    g = bfp_quantize_graph(p, rounding, sr)
    e, m = run_blocks(g, ins, types, [torch.int32, torch.int32], rows * nb, block)
    return (fmx._scales_shape(e.reshape(rows, nb), shape, axis, xp),
            fmx._from_blocks(m.reshape(rows, nb, block), shape, axis, xp))


# ------------------------------------------------------------------ integer quantization
INT_ROW = 1024
"""Elements per row of the integer-quantization kernel: a group longer than this spans several rows, each with
the group's words."""


@lru_cache(maxsize=128)
def int_quantize_graph(bits: int, scheme: str = "symmetric", clip: str = "symmetric", rounding: str = "rne",
                       sr: tuple[int, str] | None = None) -> Graph:
    """Block graph of :func:`refarith.fast.intquant.quantize_words`: inputs the binary32 bits of the elements, the
    group words ``hi`` and ``lo`` (:func:`refarith.fast.intquant.group_words`, per row) and for ``rounding="sr"``
    with ``sr`` = (k, variant) the random integers ``r``, one per element; outputs (scale bits, zero point) per
    row and the codes."""
    from refarith.exact.intquant import check_params
    from refarith.fast import intquant as fiq

    check_params(bits, scheme, clip, "rne" if rounding == "sr" else rounding)
    _sr_check(sr, rounding, None)
    name = f"int_quantize(int{bits},scheme={scheme},clip={clip},rounding={rounding}{_sr_name(sr)})"
    ins = [("x", 0, 32), ("hi", 1, 32), ("lo", 1, 32)]
    if sr is None:
        return trace_xp(lambda xp, b, hi, lo: fiq.quantize_words(b, hi, lo, bits, scheme, clip, rounding, xp), ins,
                        name)
    return trace_xp(lambda xp, b, hi, lo, r: fiq.quantize_words(b, hi, lo, bits, scheme, clip, "sr", xp, (r, *sr)),
                    [*ins, ("r", 0, 64)], name)


def int_quantize(x: Any, bits: int, scheme: str = "symmetric", granularity: str = "tensor", group: int = 128,
                 clip: str = "symmetric", rounding: str = "rne", axis: int = -1, *, rand: Any = None,
                 rand_bits: int | None = None, sr_variant: str = "a") -> tuple[Any, Any, Any]:
    """(scales float32 per group, zero points int32 per group, codes int8/int16 shaped like ``x``) of a float32
    tensor by the traced :func:`refarith.fast.intquant.quantize_words` run with Triton; the semantics, shapes and
    errors of :func:`refarith.fast.intquant.quantize`.  The group words (the maxima of the values' order keys)
    are torch integer reductions on the host; everything after them is the traced graph, over rows of at most
    :data:`INT_ROW` elements.  ``rounding="sr"``: element i rounded stochastically with ``rand[i]``."""
    import torch

    from refarith.errors import SpecialValueError
    from refarith.fast import intquant as fiq
    from refarith.fast.mx import ops

    fiq._check_rounding(bits, scheme, clip, rounding, rand)
    xp = ops("torch")
    t = _tensor(x)
    g, info = fiq._torch_groups(t, granularity, axis, group)
    if not bool(torch.isfinite(g).all()):
        raise SpecialValueError("integer quantization: NaN and infinity have no integer code")
    ng, n = g.shape
    b = g.contiguous().view(torch.int32)
    hi, lo = fiq.group_words(b, xp)
    per = max(1, -(-n // INT_ROW))  # rows per group
    k = -(-n // per) if n else 1
    pad = per * k - n

    def rows(a: Any) -> Any:
        return (torch.nn.functional.pad(a, (0, pad)) if pad else a).reshape(-1)

    ins = [rows(b), hi.repeat_interleave(per), lo.repeat_interleave(per)]
    types, sr = ["int32"] * 3, None
    if rounding == "sr":
        ins.append(rows(fiq._sr_groups(t, rand, rand_bits, sr_variant, granularity, axis, group, "torch")[0]))
        types.append("int64")
        sr = (rand_bits, sr_variant)
    gr = int_quantize_graph(bits, scheme, clip, rounding, sr)
    dt = torch.int16 if bits == 16 else torch.int8
    s, z, q = run_blocks(gr, ins, types, [torch.int32, torch.int32, dt], ng * per, k)
    s, z = s[::per], z[::per]
    fiq.check_scales(s, xp)
    return s.view(torch.float32), z, fiq._torch_ungroup(q.reshape(ng, per * k)[:, :n], info, granularity)


# ------------------------------------------------------------------ requantization
@lru_cache(maxsize=64)
def requantize_graph(variant: str, out_min: int = -128, out_max: int = 127) -> Graph:
    """Graph of :func:`refarith.fast.requant.requantize` for one variant: inputs (int32 accumulator, multiplier
    M or b, shift or c, zero point), one value each per element; output the clamped result.  The variant's int64
    kernel (``refarith.fast.requant.<variant>64``) is traced as the numpy and torch backends run it."""
    from refarith.exact.requant import check_variant
    from refarith.fast import requant as frq

    check_variant(variant)
    core = getattr(frq, f"{variant}64")

    def kernel(xp, acc, m, shift, zp):
        return xp.clip(core(xp.i64(acc), m, shift, xp) + zp, out_min, out_max)

    return trace_xp(kernel, [("acc", 1, 32), ("m", 1, 64), ("shift", 1, 64), ("zero_point", 1, 32)],
                    f"requantize(variant={variant},out=[{out_min},{out_max}])", width=64)


def requantize(acc: Any, m: Any, shift: Any, variant: str = "tflite_double_rounding", zero_point: Any = 0,
               out_min: int = -128, out_max: int = 127) -> Any:
    """Variant multiply + zero point, clamped to [out_min, out_max], computed with Triton: the semantics and
    argument ranges of :func:`refarith.fast.requant.requantize` (int32 result, int64 if the range needs it).
    ``m``, ``shift`` and ``zero_point`` are ints or tensors broadcastable against ``acc``."""
    import torch

    from refarith.exact.requant import INT32_MAX, INT32_MIN, check_variant
    from refarith.fast import requant as frq

    check_variant(variant)
    a = _tensor(acc)
    dev = a.device
    args = [torch.as_tensor(v, device=dev) if not isinstance(v, torch.Tensor) else v for v in (m, shift, zero_point)]
    xp = frq.backend(a)
    frq.check_range(xp, "acc" if variant.startswith("hawq") else "x", a, INT32_MIN, INT32_MAX)
    if variant.startswith("hawq"):
        frq.check_range(xp, "b", args[0], 0, 1 << 31)
        frq.check_range(xp, "c", args[1], 1, 62)
    else:
        frq.check_range(xp, "multiplier", args[0], 0 if variant == "tflite_single_rounding" else INT32_MIN, INT32_MAX)
        frq.check_range(xp, "shift", args[1], -31, 30)
    frq.check_range(xp, "zero_point", args[2], INT32_MIN, INT32_MAX)
    shape = torch.broadcast_shapes(a.shape, *(t.shape for t in args))
    ins = [a.to(torch.int32)] + [t.to(torch.int64) for t in args[:2]] + [args[2].to(torch.int32)]
    ins = [torch.broadcast_to(t, shape).contiguous().reshape(-1) for t in ins]
    g = requantize_graph(variant, out_min, out_max)
    wide = not (INT32_MIN <= out_min and out_max <= INT32_MAX)
    (out,) = run_blocks(g, ins, ["int32", "int64", "int64", "int32"], [torch.int64 if wide else torch.int32],
                        ins[0].numel(), 1)
    return out.reshape(shape)


__all__ = ["INT_ROW", "ST_MODES", "bfp_quantize", "bfp_quantize_graph", "finite_amax_bits", "int_quantize",
           "int_quantize_graph", "like_device", "mx_dequantize",
           "mx_dequantize_graph", "mx_quantize", "mx_quantize_graph", "nvfp4_dequantize", "nvfp4_dequantize_graph",
           "nvfp4_quantize", "nvfp4_quantize_graph", "nvfp4_quantize_many", "nvfp4_rows", "requantize",
           "requantize_graph", "run_blocks"]
