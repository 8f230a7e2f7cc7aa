"""The Triton backend: traced bit-level graphs emitted as ``@triton.jit`` kernels.

A kernel written against :class:`~refarith.fast.bitops.BitOps` is traced once per
spec (:mod:`refarith.fast.trace`); the graph is written out as the body of a Triton
kernel — load the input words, one statement per live node, store the outputs,
with a mask for the tail — compiled once per (graph, I/O types, device kind) and
cached.  The Z3 theorems evaluate the same graph (``refarith.smt.castproofs``), and
both carry :attr:`Graph.digest`, so a test can assert that the proved object and
the device code are one graph.  The proof covers the device code up to Triton's
compiler: word operations are emitted as Triton's unsigned integer operations
(``+ - *`` wrap modulo 2^width, ``>>`` on unsigned types is the logical shift,
comparisons of unsigned types are unsigned), never as float operations.

Tensors on a CUDA device run the compiled kernel; CPU tensors run the same kernel
under Triton's interpreter (``triton.runtime.interpreter``), which executes each
program on numpy blocks and computes integer and bit operations faithfully.  A
compile or launch failure raises :class:`TritonError` naming the graph and the
emitted source file; there is never a silent fallback to another backend.

Which kernels have a Triton backend:

* casts (:func:`encode`, every cast :mod:`refarith.fast.castkernel` covers, stochastic rounding included) and
  decode of formats of at most 16 bits (:func:`decode`, a gather from the exact value table);
* MX quantize/dequantize, NVFP4 quantize/dequantize, block floating point and INTn quantization (stochastic
  rounding included) and the requantization variants (:mod:`refarith.fast.triton_blocks`): their numpy/torch
  array-shim code traced by :mod:`refarith.fast.xptrace` into block graphs, emitted by :func:`emit_block_source`;
  HiFloat4 quantization (:func:`refarith.fast.hif4.hif4_quantize_graph`) the same way;
* the scaled GEMMs (:mod:`refarith.fast.gemm_triton`): every accumulator step traced from the numpy kernel's step
  functions (:mod:`refarith.fast.gemm_steps`), the tile layout and the loops over K written by hand;
* add, sub, mul, div (:func:`arith`), fma (:func:`fma`) and the floating dot product with exact products
  (:func:`fdot`), every rounding, stochastic included: the numpy kernels' binary64 float step is restated in
  integer words by :mod:`refarith.fast.arithbits` (exact for add/sub/mul, rounded to odd for div, fma and each
  accumulator addition) and rounded by the cast kernel (arith, fma) or by the fdot kernel's own accumulator
  rounding, traced from its numpy code;
* any user kernel written against BitOps (:func:`run_kernel`).

Not (yet) a Triton backend, because the kernel is numpy/torch code outside both tracers (float arithmetic, or
array operations the tracers do not record: sorting, matrix products, Python loops over values): the
round-to-odd binary arithmetic of bfloat16 (:func:`refarith.fast.oddsum.arith_rto`), fdot with rounded or L-Mul
products and with empty vectors, the integer dot products (:mod:`refarith.fast.intdot`,
:mod:`refarith.fast.llmint8`), the integer-only
operators (:mod:`refarith.fast.fixedpoint`, :mod:`refarith.fast.ibert`, :mod:`refarith.fast.ivit`,
:mod:`refarith.fast.lmul`; integer code that the array-shim tracer could record once they take its ``xp``)
and FP4 packing (:mod:`refarith.fast.packing`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from refarith.errors import BadValueError, RefarithError
from refarith.fast.trace import COMPARE_OPS, Graph

WORD_TYPES = {32: "tl.uint32", 64: "tl.uint64"}
IO_TYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "bool")
"""Element types of kernel inputs/outputs as they sit in memory (float tensors are passed as integer views)."""

BLOCK_INTERPRETED = 1 << 16
"""Program size under the interpreter: each program runs as numpy on whole blocks, so bigger blocks are faster."""
BLOCK_DEVICE = 1024


class TritonError(RefarithError):
    """Triton is missing, or a kernel failed to compile or launch (the message names the graph and its source)."""


_BINOP = {"add": "+", "sub": "-", "mul": "*", "and_": "&", "or_": "|", "xor": "^", "shl": "<<", "shr": ">>",
          "eq": "==", "ne": "!=", "ult": "<", "ule": "<=", "ugt": ">", "uge": ">=", "band": "&", "bor": "|"}


def _word_const(v: int, width: int, shape: str = "[BLOCK]") -> str:
    wt = WORD_TYPES[width]
    if v < (1 << 31):
        return f"tl.full({shape}, {v}, {wt})"
    # large constants are built from two 31-bit-safe halves so that no Python int above int32 reaches Triton's
    # constant typing (which would make it int64 or reject it)
    hi, lo = v >> 16, v & 0xFFFF
    return f"(({_word_const(hi, width, shape)} << {_word_const(16, width, shape)}) | {_word_const(lo, width, shape)})"


def _load(i: int, io: str, width: int, offs: str = "offs", live: str = "live") -> str:
    wt = WORD_TYPES[width]
    raw = f"tl.load(in{i}_ptr + {offs}, mask={live}, other=0)"
    if io == "bool":
        return f"({raw} != 0).to({wt})"
    bits = int("".join(ch for ch in io if ch.isdigit()))
    if bits > width:
        raise BadValueError(f"input {i} of {io} does not fit {width}-bit words")
    u = f"tl.uint{bits}"
    val = raw if io.startswith("u") else f"{raw}.to({u}, bitcast=True)"
    return val if bits == width else f"{val}.to({wt})"


def _store(i: int, expr: str, io: str, is_mask: bool, offs: str = "offs", live: str = "live") -> str:
    if is_mask:
        expr = f"{expr}.to(tl.int8)" if io != "bool" else expr
    elif io == "bool":
        raise BadValueError(f"output {i} is a word; it cannot be stored as bool")
    else:
        bits = int("".join(ch for ch in io if ch.isdigit()))
        expr = f"{expr}.to(tl.uint{bits})"
        if not io.startswith("u"):
            expr = f"{expr}.to(tl.int{bits}, bitcast=True)"
    return f"    tl.store(out{i}_ptr + {offs}, {expr}, mask={live})"


def _node_expr(graph: Graph, i: int, in_types: Sequence[str], ref: Any, level: int, shapes: Sequence[str],
               offs: Sequence[str] = ("offs", "offs"), live: Sequence[str] = ("live", "live")) -> str:
    """Triton expression of node ``i`` at ``level`` (0 element, 1 block; tile ``shapes[level]``, offsets and
    mask names ``offs`` / ``live`` per level); ``ref(j)`` names the value of operand node j."""
    node, w = graph.nodes[i], graph.width
    k, a, shape = node.kind, node.args, shapes[level]
    if k == "input":
        return _load(node.imm, in_types[node.imm], w, offs[level], live[level])
    if k == "const":
        return _word_const(node.imm, w, shape)
    if k == "mconst":
        return f"tl.full({shape}, {node.imm}, tl.int1)"
    if k in ("shl", "shr") and node.imm is not None:
        return f"{ref(a[0])} {_BINOP[k]} {_word_const(node.imm, w, shape)}"
    if k in _BINOP:
        e = f"{ref(a[0])} {_BINOP[k]} {ref(a[1])}"
        return f"({e})" if k in COMPARE_OPS or k in ("band", "bor") else e
    if k == "not_":
        return f"{ref(a[0])} ^ {_word_const((1 << w) - 1, w, shape)}"
    if k == "bnot":
        return f"{ref(a[0])} == 0"
    if k == "where":
        return f"tl.where({ref(a[0])}, {ref(a[1])}, {ref(a[2])})"
    if k == "udiv":
        d = ref(a[1])
        return f"{ref(a[0])} // tl.where({d} == 0, {_word_const(1, w, shape)}, {d})"
    if k == "rmax":
        return f"tl.reduce(tl.where({live[0]}, {ref(a[0])}, {_word_const(0, w, shapes[0])}), 1, _umax)"
    if k == "bcast":
        return f"tl.broadcast_to({ref(a[0])}[:, None], (BR, BK))"
    if k == "lut":
        return (f"tl.load(t{node.imm}_ptr + {ref(a[0])}.to(tl.int64), mask={live[level]}, other=0)"
                f".to({WORD_TYPES[w]}, bitcast=True)")
    raise BadValueError(f"unknown graph node kind {k!r}")  # pragma: no cover - graphs come from the tracers


def emit_source(graph: Graph, in_types: Sequence[str], out_types: Sequence[str], fn_name: str = "kernel") -> str:
    """Python source of a Triton kernel computing ``graph`` elementwise.

    Signature: ``fn_name(in0_ptr, ..., out0_ptr, ..., n, BLOCK: tl.constexpr)``; inputs are read as ``in_types``
    (zero-extended into words; signed types are reinterpreted as unsigned first), outputs are stored truncated to
    ``out_types`` (masks as 0/1 int8, or bool)."""
    _check_types(graph, in_types, out_types)
    w = graph.width
    params = [f"in{i}_ptr" for i in range(len(in_types))] + [f"out{i}_ptr" for i in range(len(out_types))]
    lines = [
        "import triton",
        "import triton.language as tl",
        "",
        "",
        "@triton.jit",
        f"def {fn_name}({', '.join(params)}, n, BLOCK: tl.constexpr):",
        f'    """Graph {graph.name} ({w}-bit words), sha256 {graph.digest}."""',
        "    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)",
        "    live = offs < n",
    ]
    live = graph.live()
    for i in range(len(graph.nodes)):
        if live[i]:
            lines.append(f"    v{i} = {_node_expr(graph, i, in_types, lambda j: f'v{j}', 0, ('[BLOCK]',) * 2)}")
    for j, o in enumerate(graph.outputs):
        lines.append(_store(j, f"v{o}", out_types[j], graph.nodes[o].mask))
    return "\n".join(lines) + "\n"


def _check_types(graph: Graph, in_types: Sequence[str], out_types: Sequence[str]) -> None:
    if len(in_types) != len(graph.inputs) or len(out_types) != len(graph.outputs):
        raise BadValueError(f"graph {graph.name!r}: {len(graph.inputs)} inputs and {len(graph.outputs)} outputs, "
                            f"got {len(in_types)} input and {len(out_types)} output types")
    for t in (*in_types, *out_types):
        if t not in IO_TYPES:
            raise BadValueError(f"unsupported kernel element type {t!r}; expected one of {', '.join(IO_TYPES)}")


_SHAPE = {0: "[BR, BK]", 1: "[BR]"}
_OFFS = {0: "eoffs", 1: "rows"}
_LIVE = {0: "elive", 1: "rlive"}


def emit_block_source(graph: Graph, in_types: Sequence[str], out_types: Sequence[str],
                      fn_name: str = "kernel") -> str:
    """Python source of a Triton kernel computing a block graph (:func:`refarith.fast.xptrace.trace_xp`).

    A program takes ``BR`` rows of ``K`` elements as a ``[BR, BK]`` tile (``BK`` the power of two >= K; lanes at
    or beyond K and rows at or beyond ``nrows`` are masked): element words are tile values, block words one value
    per row.  Signature ``fn_name(in0_ptr, ..., t0_ptr, ..., out0_ptr, ..., nrows, K, BR, BK)``: element inputs
    and outputs are row-major ``nrows x K`` arrays, block ones ``nrows`` arrays, ``tj_ptr`` the graph's tables as
    words of its width.  ``rmax`` is a ``tl.reduce`` over the row by ``tl.maximum`` with masked lanes read as 0
    (the unsigned minimum, so they never win), ``bcast`` a broadcast of the row value, ``lut`` a masked gather,
    ``udiv`` Triton's unsigned ``//`` (a zero divisor, which the kernels never produce, is read as 1)."""
    from refarith.fast.xptrace import node_levels

    _check_types(graph, in_types, out_types)
    w = graph.width
    lv = node_levels(graph)
    params = ([f"in{i}_ptr" for i in range(len(in_types))] + [f"t{j}_ptr" for j in range(len(graph.tables))]
              + [f"out{i}_ptr" for i in range(len(out_types))])
    lines = [
        "import triton",
        "import triton.language as tl",
        "",
        "",
        "# the standard library's own maximum combine function (the interpreter reduces it with numpy, not per",
        "# element); a plain one where a Triton version lacks it",
        '_umax = getattr(tl.standard, "_elementwise_max", None)',
        "if _umax is None:",
        "    @triton.jit",
        "    def _umax(a, b):",
        "        return tl.maximum(a, b)",
        "",
        "",
        "@triton.jit",
        f"def {fn_name}({', '.join(params)}, nrows, K, BR: tl.constexpr, BK: tl.constexpr):",
        f'    """Block graph {graph.name} ({w}-bit words), sha256 {graph.digest}."""',
        "    rows = tl.program_id(0).to(tl.int64) * BR + tl.arange(0, BR)",
        "    rlive = rows < nrows",
        "    cols = tl.arange(0, BK)",
        "    elive = rlive[:, None] & (cols[None, :] < K)",
        "    eoffs = rows[:, None] * K + cols[None, :]",
    ]
    done: dict[tuple[int, int], str] = {}

    def ref(j: int, level: int) -> str:
        """Name of node j's value at ``level`` (constant expressions are emitted once per level they are used at)."""
        if lv[j] is not None:
            return f"v{j}"
        if (j, level) not in done:
            name = f"c{j}_{level}"
            lines.append(f"    {name} = {expr(j, level)}")
            done[(j, level)] = name
        return done[(j, level)]

    def expr(i: int, L: int) -> str:
        # operands at the level this node reads them: rmax reads elements, bcast a block value, others their own
        at = 0 if graph.nodes[i].kind == "rmax" else 1 if graph.nodes[i].kind == "bcast" else L
        return _node_expr(graph, i, in_types, lambda j: ref(j, at), L, (_SHAPE[0], _SHAPE[1]),
                          (_OFFS[0], _OFFS[1]), (_LIVE[0], _LIVE[1]))

    live = graph.live()
    for i in range(len(graph.nodes)):
        if live[i] and lv[i] is not None:
            lines.append(f"    v{i} = {expr(i, lv[i])}")
    for j, o in enumerate(graph.outputs):
        L = 0 if lv[o] is None else lv[o]
        lines.append(_store(j, ref(o, L), out_types[j], graph.nodes[o].mask, _OFFS[L], _LIVE[L]))
    return "\n".join(lines) + "\n"


def cache_dir() -> Path:
    """Where emitted kernel sources are written: ``$REFARITH_CACHE/triton`` or the user cache directory."""
    base = os.environ.get("REFARITH_CACHE") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    if not os.environ.get("REFARITH_CACHE"):
        root = root / "refarith"
    return root / "triton"


@dataclass
class CompiledKernel:
    """A graph's Triton kernel: ``fn`` the jitted (or interpreted) function, ``source_path`` the emitted file,
    ``graph_digest`` the digest of the graph it computes."""

    graph: Graph
    in_types: tuple[str, ...]
    out_types: tuple[str, ...]
    interpreted: bool
    fn: Any
    source_path: Path

    @property
    def graph_digest(self) -> str:
        return self.graph.digest

    def __call__(self, inputs: Sequence[Any], outputs: Sequence[Any], n: int, k: int | None = None,
                 tables: Sequence[Any] = ()) -> None:
        """Launch over ``n`` elements of the flat contiguous tensors ``inputs`` / ``outputs`` (a block graph:
        over ``n`` rows of ``k`` elements, with its ``tables``)."""
        import triton

        block = BLOCK_INTERPRETED if self.interpreted else BLOCK_DEVICE
        try:
            if k is None:
                self.fn[(triton.cdiv(n, block),)](*inputs, *outputs, n, BLOCK=block)
            else:
                bk = triton.next_power_of_2(k)
                br = max(1, block // bk)
                self.fn[(triton.cdiv(n, br),)](*inputs, *tables, *outputs, n, k, BR=br, BK=bk)
        except Exception as e:
            raise TritonError(f"Triton kernel of graph {self.graph.name!r} ({self.graph.digest[:12]}) failed "
                              f"to {'run' if self.interpreted else 'compile or launch'}: {type(e).__name__}: "
                              f"{str(e).strip().splitlines()[-1] if str(e).strip() else ''} "
                              f"(emitted source {self.source_path})") from e


_CACHE: dict[tuple, CompiledKernel] = {}
_LOCK = threading.Lock()


def _import_triton():
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except ImportError as e:
        raise TritonError("the triton backend needs Triton: pip install 'refarith[triton]' "
                          f"(triton==3.9.0; {e})") from None
    return sys.modules["triton"]


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def compile_graph(graph: Graph, in_types: Sequence[str], out_types: Sequence[str],
                  interpreted: bool) -> CompiledKernel:
    """The Triton kernel of ``graph`` (emitted, written and imported once per process; cached): the elementwise
    kernel of :func:`emit_source`, or for a block graph (one with ``input_levels``) :func:`emit_block_source`."""
    key = (graph.digest, tuple(in_types), tuple(out_types), interpreted)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
        _import_triton()
        emit = emit_block_source if graph.input_levels else emit_source
        src = emit(graph, in_types, out_types)
        name = "k_" + hashlib.sha256(src.encode()).hexdigest()[:24]
        path = cache_dir() / f"{name}.py"
        try:
            _write_atomic(path, src)
        except OSError as e:
            raise TritonError(f"cannot write the emitted Triton source of graph {graph.name!r} to {path}: "
                              f"{e.strerror or e}") from None
        spec = importlib.util.spec_from_file_location(f"refarith_triton_{name}", path)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception as e:
            raise TritonError(f"emitted Triton source of graph {graph.name!r} did not load ({type(e).__name__}: "
                              f"{e}); source {path}") from e
        fn = on_device(mod.kernel, interpreted)
        ck = CompiledKernel(graph, tuple(in_types), tuple(out_types), interpreted, fn, path)
        _CACHE[key] = ck
        return ck


def run_graph(graph: Graph, inputs: Sequence[Any], in_types: Sequence[str], out_dtypes: Sequence[Any]) -> list[Any]:
    """Evaluate ``graph`` elementwise on torch tensors with Triton; returns one tensor per output.

    ``inputs``: tensors of one shape on one device, of the integer dtypes named by ``in_types`` (float tensors
    must be passed as integer views).  ``out_dtypes``: torch dtypes of the outputs (integer, or bool for masks).
    CUDA tensors run the compiled kernel, CPU tensors the interpreted one."""
    import torch

    if not inputs:
        raise BadValueError("run_graph needs at least one input tensor")
    shape, dev = inputs[0].shape, inputs[0].device
    for t in inputs:
        if t.shape != shape or t.device != dev:
            raise BadValueError(f"kernel inputs must share one shape and device; got {tuple(t.shape)} on {t.device} "
                                f"and {tuple(shape)} on {dev}")
    if dev.type not in ("cpu", "cuda"):
        raise TritonError(f"the triton backend runs on cuda devices (compiled) or cpu (interpreted), not {dev}")
    out_types = tuple(str(d).replace("torch.", "") for d in out_dtypes)
    ck = compile_graph(graph, in_types, out_types, interpreted=dev.type == "cpu")
    flat_in = [t.contiguous().reshape(-1) for t in inputs]
    n = flat_in[0].numel()
    outs = [torch.empty(n, dtype=d, device=dev) for d in out_dtypes]
    if n:
        ck(flat_in, outs, n)
    return [o.reshape(shape) for o in outs]



def run_kernel(kernel: Any, inputs: Sequence[Any], out_dtypes: Sequence[Any], width: int = 32) -> list[Any]:
    """Trace ``kernel(ops, *words)`` (a kernel written against BitOps) and run its graph with Triton on the integer
    torch tensors ``inputs``; one tensor of ``out_dtypes`` per output."""
    from refarith.fast.trace import trace

    name = f"{getattr(kernel, '__module__', '?')}:{getattr(kernel, '__qualname__', repr(kernel))}"
    g = trace(lambda ops, *xs: kernel(ops, *xs), width, tuple(f"x{i}" for i in range(len(inputs))), name)
    return run_graph(g, inputs, [_io(t) for t in inputs], out_dtypes)


# ------------------------------------------------------------------ casts
_TORCH_IO = {"uint8": "uint8", "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64", "bool": "bool",
             "uint16": "uint16", "uint32": "uint32", "uint64": "uint64"}


def _io(t: Any) -> str:
    name = str(t.dtype).replace("torch.", "")
    if name not in _TORCH_IO:
        raise BadValueError(f"the triton backend reads integer tensors, not {t.dtype}")
    return _TORCH_IO[name]


def encode(x: Any, dst: Any, rounding: str = "rne", overflow: str | None = None, nan_policy: str = "error",
           negative: str = "error", rand: Any = None, rand_bits: int | None = None, src: Any = None,
           sr_variant: str = "a") -> Any:
    """Round every element of the torch tensor ``x`` into ``dst`` with the traced cast kernel run by Triton.

    Same semantics, inputs and outputs as the torch backend of :func:`refarith.fast.cast.encode` (codes as uint8
    for formats of at most 8 bits, else int32, on ``x``'s device; SpecialValueError where the exact model
    raises), computed by the graph of :func:`refarith.fast.graphs.cast_graph` — the graph the cast theorems
    prove — never by a lookup table or a float operation."""
    import torch

    from refarith.fast.cast import _dst, _modes, _raise_torch, as_numpy
    from refarith.formats import FloatFormat, IntFormat, get_format

    df = _dst(dst)
    overflow, rand_bits = _modes(df, rounding, overflow, nan_policy, negative, rand_bits)
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(as_numpy(x))
    views = {torch.float32: (torch.int32, "binary32"), torch.float16: (torch.int16, "binary16"),
             torch.bfloat16: (torch.int16, "bfloat16"), torch.float64: (torch.int64, "binary64")}
    if src is not None:
        sf = get_format(src)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise BadValueError(f"with src={sf.name}, x must hold integer bit patterns, got {t.dtype}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= sf.ncodes):
            from refarith.errors import BitPatternError

            raise BitPatternError(f"{sf.name}: bit patterns must lie in [0, {sf.ncodes - 1:#x}]")
        w = t
    elif t.dtype in views:
        vdt, name = views[t.dtype]
        w, sf = t.contiguous().view(vdt), get_format(name)
    elif t.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
        nb = t.element_size() * 8
        signed = t.dtype != torch.uint8
        w, sf = t, IntFormat(f"{'int' if signed else 'uint'}{nb}", nb, signed=signed)
    else:
        raise BadValueError(f"cannot encode torch dtype {t.dtype}; use float32/float16/bfloat16/float64 or an "
                            "integer")
    if not isinstance(sf, (FloatFormat, IntFormat)):
        raise BadValueError(f"cannot cast from {sf}")
    r = _rand_tensor(rand, rand_bits, w) if rounding == "sr" else None
    codes, err = cast_codes(w, sf, df, rounding, overflow, nan_policy, negative, r, rand_bits, sr_variant)
    if bool(err.any()):
        _raise_torch(int(torch.nonzero(err.reshape(-1))[0, 0]), w.to(torch.int64), sf, df, nan_policy, negative)
    return codes


def _rand_tensor(rand: Any, rand_bits: int, like: Any) -> Any:
    """The random integers of stochastic rounding as a tensor of ``like``'s shape on its device, checked as the
    numpy and torch backends check them (given, integers, below 2^``rand_bits``); never drawn here."""
    import torch

    from refarith.errors import UnknownModeError
    from refarith.fast.cast import as_numpy

    if rand is None:
        raise UnknownModeError("stochastic rounding needs rand (integers of rand_bits bits)")
    r = rand if isinstance(rand, torch.Tensor) else torch.as_tensor(as_numpy(rand))
    if r.is_floating_point() or r.is_complex() or r.dtype == torch.bool:
        raise UnknownModeError(f"rand must hold integers, got {r.dtype}")
    if r.numel() and (int(r.min()) < 0 or int(r.max()) >= (1 << rand_bits)):
        raise UnknownModeError(f"rand values must lie in [0, 2^{rand_bits}) for rand_bits={rand_bits}")
    return torch.broadcast_to(r.to(like.device), like.shape)


def cast_codes(w: Any, src: Any, dst: Any, rounding: str, overflow: str, nan_policy: str, negative: str,
               r: Any = None, rand_bits: int | None = None, sr_variant: str = "a") -> tuple[Any, Any]:
    """The traced cast kernel on integer tensors of source bit patterns ``w`` (any integer dtype whose width is
    at most the kernel's word; larger dtypes are narrowed after a range check by the caller), and for ``sr`` the
    random integers ``r`` of the same shape: returns ``(codes, error_mask)`` without raising (codes uint8 for
    targets of at most 8 bits, else int32; the mask is True where the exact model raises)."""
    import torch

    from refarith.fast.cast import _torch_code_dtype
    from refarith.fast.graphs import cast_graph
    from refarith.formats import get_format

    sf, df = get_format(src), get_format(dst)
    g = cast_graph(sf.name, df.name, rounding, overflow, nan_policy, negative, rand_bits if rounding == "sr" else None,
                   sr_variant=sr_variant)
    io = _io(w)
    if _bits(io) > g.width:
        w = w.to(torch.int32 if g.width == 32 else torch.int64)
        io = _io(w)
    ins, types = [w], [io]
    if rounding == "sr":
        rw = r.to(torch.int32 if g.width == 32 else torch.int64)
        ins.append(rw)
        types.append(_io(rw))
    codes, err = run_graph(g, ins, types, [_torch_code_dtype(df), torch.bool])
    return codes, err


def _bits(io: str) -> int:
    return 8 if io == "bool" else int("".join(ch for ch in io if ch.isdigit()))


# ------------------------------------------------------------------ add, sub, mul, div, fma
def _codes(xs: Sequence[Any], f: Any) -> list[Any]:
    """Operand code arrays as broadcast int64 tensors on the first tensor's device (CPU if none is a tensor),
    checked against the format's code range as the numpy and torch decode check them."""
    import torch

    from refarith.errors import BitPatternError
    from refarith.fast.cast import as_numpy

    dev = next((x.device for x in xs if isinstance(x, torch.Tensor)), torch.device("cpu"))
    ts = []
    for x in xs:
        t = x if isinstance(x, torch.Tensor) else torch.as_tensor(as_numpy(x))
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise BadValueError(f"codes must be integers, got {t.dtype}")
        ts.append(t.to(device=dev, dtype=torch.int64))
    ts = list(torch.broadcast_tensors(*ts))
    for t in ts:
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= f.ncodes):
            raise BitPatternError(f"{f.name}: codes must lie in [0, {f.ncodes - 1:#x}]")
    return ts


def _run_op(graph_of: Any, xs: Sequence[Any], f: Any, rounding: str, overflow: str | None, nan_policy: str,
            negative: str | None, rand: Any, rand_bits: int | None, sr_variant: str) -> Any:
    """Codes of the traced op graph ``graph_of(overflow, negative, rand_bits)`` on the operand codes ``xs``, with
    the cast's checks of the modes, k and the random integers in the numpy backend's order."""
    import torch

    from refarith.exact.rounding import default_negative
    from refarith.exact.stochastic import check_variant
    from refarith.fast.cast import _modes, _raise_torch, _torch_code_dtype
    from refarith.formats import get_format

    ts = _codes(xs, f)
    if negative is None:
        negative = default_negative(f)
    overflow, rand_bits = _modes(f, rounding, overflow, nan_policy, negative, rand_bits)
    if rounding == "sr":
        check_variant(sr_variant, rand_bits, f.name)
        ts.append(_rand_tensor(rand, rand_bits, ts[0]).to(torch.int64))
    g = graph_of(overflow, negative, rand_bits)
    codes, err, y = run_graph(g, ts, ["int64"] * len(ts), [_torch_code_dtype(f), torch.bool, torch.int64])
    if bool(err.any()):
        _raise_torch(int(torch.nonzero(err.reshape(-1))[0, 0]), y, get_format("binary64"), f, nan_policy, negative)
    return codes


def arith(op: str, a: Any, b: Any, fmt: Any, rounding: str = "rne", overflow: str | None = None,
          nan_policy: str = "error", rand: Any = None, rand_bits: int | None = None, sr_variant: str = "a",
          negative: str | None = None) -> Any:
    """Codes of ``a <op> b`` (add, sub, mul, div) for code arrays of ``fmt`` (torch tensors, broadcast), rounded
    once, computed with Triton by the traced graph of :func:`refarith.fast.arithbits.arith_graph`.

    The semantics, formats, k bound, outputs and errors of :func:`refarith.fast.arith.arith` (codes uint8 for
    formats of at most 8 bits, else int32, on the operands' device; ``rounding="sr"``: ``rand`` one
    ``rand_bits``-bit integer per element, rule ``sr_variant``)."""
    from refarith.fast.arith import check_args
    from refarith.fast.arithbits import arith_graph

    f = check_args(op, fmt, rounding, rand_bits, sr_variant)
    return _run_op(lambda ov, neg, k: arith_graph(op, f.name, rounding, ov, nan_policy, neg, k, sr_variant),
                   (a, b), f, rounding, overflow, nan_policy, negative, rand, rand_bits, sr_variant)


def fma(a: Any, b: Any, c: Any, fmt: Any, rounding: str = "rne", overflow: str | None = None,
        nan_policy: str = "error", rand: Any = None, rand_bits: int | None = None, sr_variant: str = "a") -> Any:
    """Codes of ``a * b + c`` for code arrays of ``fmt`` (torch tensors, broadcast), rounded once, computed with
    Triton by the traced graph of :func:`refarith.fast.arithbits.fma_graph`; the semantics, formats, k bound and
    errors of :func:`refarith.fast.oddsum.fma_rto`."""
    from refarith.fast.arithbits import fma_graph
    from refarith.fast.oddsum import check_fma_args

    f = check_fma_args(fmt, rounding, rand_bits, sr_variant)
    return _run_op(lambda ov, neg, k: fma_graph(f.name, rounding, ov, nan_policy, k, sr_variant),
                   (a, b, c), f, rounding, overflow, nan_policy, None, rand, rand_bits, sr_variant)


def fdot(x: Any, y: Any, fmt: Any, acc: Any, order: str, rounding: str, overflow: str, rand: Any = None,
         rand_bits: int | None = None, sr_variant: str = "a") -> Any:
    """Accumulator codes (int64, on the operands' device) of the dot products over the last axis of the code
    tensors ``x``, ``y`` of ``fmt`` (exact products), computed with Triton by the graph of
    :func:`refarith.fast.arithbits.fdot_graph`; ``rounding="sr"``: ``rand`` one random integer per addition, as
    :func:`refarith.fast.fdot.fdot`, which checks the spec before it calls this."""
    import torch

    from refarith.fast import blocksr
    from refarith.fast.arithbits import fdot_graph
    from refarith.fast.mx import ops
    from refarith.fast.triton_blocks import run_blocks
    from refarith.formats import get_format

    fmt, acc = get_format(fmt), get_format(acc)
    xt, yt = (v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v)) for v in (x, y))
    xt, yt = xt.to(torch.int64), yt.to(device=xt.device, dtype=torch.int64)
    if tuple(xt.shape) != tuple(yt.shape):
        raise BadValueError(f"dot product operands differ in shape: {tuple(xt.shape)} vs {tuple(yt.shape)}")
    if bool(((xt < 0) | (xt >= fmt.ncodes) | (yt < 0) | (yt >= fmt.ncodes)).any()):
        raise BadValueError(f"{fmt.name}: bit patterns must lie in 0..{fmt.ncodes - 1}")
    n = xt.shape[-1]
    lead = tuple(xt.shape[:-1])
    ins = [v.reshape(-1, n)[:, i].contiguous() for v in (xt, yt) for i in range(n)]
    if rounding == "sr":
        from refarith.exact.fdot import additions

        shape = (*lead, additions(n, order))
        r = blocksr.random_bits(rand, shape, rand_bits, sr_variant, acc.name, ops("torch"), xt)
        ins += [r.reshape(-1, shape[-1])[:, i].contiguous() for i in range(shape[-1])]
    if n == 0:  # the graph of no products has no input to launch over
        raise BadValueError("the triton fdot takes vectors of at least one element (numpy and torch take empty ones)")
    rows = int(np.prod(lead, dtype=np.int64))
    if rows == 0:
        return torch.zeros(lead, dtype=torch.int64, device=xt.device)
    g = fdot_graph(fmt.name, acc.name, n, order, rounding, overflow, rand_bits, sr_variant)
    code, err = run_blocks(g, ins, ["int64"] * len(ins), [torch.int64, torch.bool], rows, 1)
    if bool(err.any()):
        from refarith.errors import SpecialValueError

        raise SpecialValueError(f"NaN cannot be encoded in {acc.name}, which has no NaN")
    return code.reshape(lead)


_INTERPRETED: dict[int, Any] = {}


def on_device(kernel: Any, interpreted: bool) -> Any:
    """A ``@triton.jit`` kernel as launched: itself on CUDA, or wrapped once for Triton's interpreter on CPU."""
    if not interpreted:
        return kernel
    hit = _INTERPRETED.get(id(kernel))
    if hit is None:
        from triton.runtime.interpreter import InterpretedFunction

        hit = _INTERPRETED[id(kernel)] = InterpretedFunction(kernel.fn if hasattr(kernel, "fn") else kernel)
    return hit


def decode(codes: Any, fmt: Any, dtype: Any = None) -> Any:
    """Values of integer ``codes`` (a torch tensor) of ``fmt`` (at most 16 bits) as float32 (or float64) on the
    codes' device: a Triton gather from the format's exact value table, moved as integer bit patterns."""
    import torch

    from refarith.errors import BitPatternError
    from refarith.fast.cast import _dtype_name, as_numpy, exact_in_float32, value_table
    from refarith.formats import get_format

    _import_triton()
    import triton

    f = get_format(fmt)
    if f.nbits > 16:
        raise BadValueError(f"{f.name} has {f.nbits} bits; fast decode handles formats of 16 bits or fewer")
    c = codes if isinstance(codes, torch.Tensor) else torch.as_tensor(as_numpy(codes))
    if c.is_floating_point() or c.is_complex() or c.dtype == torch.bool:
        raise BadValueError(f"codes must be integers, got {c.dtype}")
    ci = c.to(torch.int32)
    if ci.numel() and (int(ci.min()) < 0 or int(ci.max()) >= f.ncodes):
        raise BitPatternError(f"{f.name}: codes must lie in [0, {f.ncodes - 1:#x}]")
    name = _dtype_name(dtype) or ("float32" if exact_in_float32(f) else "float64")
    table = value_table(f, name)
    ibits = torch.int32 if name == "float32" else torch.int64
    tab = torch.from_numpy(table.view(np.int32 if name == "float32" else np.int64).copy()).to(c.device)
    flat = ci.contiguous().reshape(-1)
    out = torch.empty(flat.numel(), dtype=ibits, device=c.device)
    n = flat.numel()
    if n:
        interp = c.device.type == "cpu"
        block = BLOCK_INTERPRETED if interp else BLOCK_DEVICE
        try:
            from refarith.fast._triton_gather import gather_kernel

            on_device(gather_kernel, interp)[(triton.cdiv(n, block),)](flat, tab, out, n, BLOCK=block)
        except Exception as e:
            raise TritonError(f"Triton decode of {f.name} failed: {type(e).__name__}: {e} (kernel source "
                              "refarith/fast/_triton_gather.py)") from e
    return out.view(torch.float32 if name == "float32" else torch.float64).reshape(c.shape)


__all__ = ["BLOCK_DEVICE", "BLOCK_INTERPRETED", "CompiledKernel", "TritonError", "arith", "cache_dir", "cast_codes",
           "compile_graph", "decode", "emit_source", "encode", "fdot", "fma", "on_device", "run_graph",
           "run_kernel"]
