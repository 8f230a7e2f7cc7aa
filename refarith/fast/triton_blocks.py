"""Triton kernels of the block and requantization families: MX, NVFP4, dyadic requantization.

What is traced and what is hand-emitted:

* **Traced** (:func:`refarith.fast.xptrace.trace_xp`): the kernels' arithmetic, from the functions the numpy and
  torch backends run — :func:`refarith.fast.mx.quantize_blocks` (block maximum, E8M0 scale rule, element
  rounding) for MX quantize, :func:`refarith.fast.mx.scale_values_f32` and :func:`refarith.fast.mx.f32_mul` for
  MX dequantize, ``refarith.fast.nvfp4._quantize_chunk`` (block scale, UE4M3 rounding, division or reciprocal,
  E2M1 rounding) and :func:`refarith.fast.mx.f32_div` (per-tensor scale) for NVFP4, the variant kernels of
  :mod:`refarith.fast.requant` with the zero point and clamp of :func:`refarith.fast.requant.requantize`.
  Each spec is traced once into a block graph whose digest the emitted source carries.
* **Hand-emitted** (:func:`refarith.fast.triton_backend.emit_block_source`): the tile layout (one row of the
  ``[BR, BK]`` tile per block, masks for lanes past the block and rows past the end), the block reduction
  (``tl.max`` over the row, masked lanes read as 0), the broadcast of block values, table gathers.  The host
  side moves blocks into rows with the torch backend's own layout functions, and for two-level NVFP4 takes the
  per-tensor maximum magnitude with one torch integer ``amax`` (the formula applied to it is traced).

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


# ------------------------------------------------------------------ MX
@lru_cache(maxsize=128)
def mx_quantize_graph(element: str, scale: str = "floor", rounding: str = "rne") -> Graph:
    """Block graph of :func:`refarith.fast.mx.quantize_blocks`: input the binary32 bits of a block's elements,
    outputs (E8M0 scale code per block, element codes)."""
    from refarith.fast import mx as fmx

    fmt = fmx.element_format(element)
    return trace_xp(lambda xp, b: fmx.quantize_blocks(b, fmt, scale, rounding, xp), [("x", 0, 32)],
                    f"mx_quantize({fmt.name},scale={scale},rounding={rounding})")


def _mx_checks(element: str, block: Any, scale: str, rounding: str) -> None:
    from refarith.exact import mx as _mx

    _mx.mx_element(element)
    if not isinstance(block, int) or isinstance(block, bool) or block < 1:
        raise BadValueError(f"block size must be a positive integer, got {block!r}")
    if scale not in _mx.SCALE_RULES:
        raise UnknownModeError(f"unknown MX scale rule {scale!r}; expected one of {', '.join(_mx.SCALE_RULES)}")
    if rounding not in _mx.ELEMENT_ROUNDING:
        raise UnknownModeError(f"unknown element rounding {rounding!r}; expected one of "
                               f"{', '.join(_mx.ELEMENT_ROUNDING)}")


def mx_quantize(x: Any, element: str, axis: int = -1, block: int = 32, scale: str = "floor",
                rounding: str = "rne") -> tuple[Any, Any]:
    """(E8M0 scale codes uint8, element codes uint8) of a float32 tensor quantized along ``axis`` by the traced
    :func:`refarith.fast.mx.quantize_blocks` run with Triton; shapes as :func:`refarith.fast.mx.mx_quantize`."""
    import torch

    from refarith.fast import mx as fmx

    _mx_checks(element, block, scale, rounding)
    t = _tensor(x)
    if t.dim() == 0:
        raise BadValueError("mx_quantize needs an array with at least one dimension")
    xp = fmx.ops("torch")
    axis = fmx._normalize_axis(axis, t.dim())
    blocks, shape = fmx._to_blocks(t, axis, block, xp)
    rows, nb = blocks.shape[0], blocks.shape[1]
    g = mx_quantize_graph(element, scale, rounding)
    s, c = run_blocks(g, [blocks.view(torch.int32).reshape(-1)], ["int32"], [torch.uint8, torch.uint8],
                      rows * nb, block)
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

    _mx_checks(element, block, "floor", "rne")
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


__all__ = ["mx_dequantize", "mx_dequantize_graph", "mx_quantize", "mx_quantize_graph", "run_blocks"]
