"""A tracing :class:`~refarith.fast.bitops.BitOps`: a bit-level kernel recorded once as a graph of word operations.

A kernel written against ``BitOps`` keeps its Python control flow dependent on
static data only (format parameters, mode names), so running it once on
:class:`TracingBitOps` records every word operation it performs, in order, as a
:class:`Graph`.  The graph is the kernel: :func:`evaluate` replays it on any other
``BitOps`` (numpy, torch, Z3 words) and :mod:`refarith.fast.triton` emits it as the
body of a ``@triton.jit`` kernel.  Its :attr:`Graph.digest` (SHA-256 of a canonical
text form) names one graph, so a proof outcome and a compiled kernel that carry
the same digest were made from the same sequence of operations.

Node semantics are exactly those of the ``BitOps`` contract (words are unsigned
``width``-bit integers, arithmetic wraps modulo 2^width, shifts are logical with
the count below ``width``; masks are booleans).  Derived operations (``umin``,
``umax``, ``clz``, ...) are recorded through their primitive definitions in
:class:`~refarith.fast.bitops.BitOps`, so a graph uses primitives only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from refarith.errors import BadValueError
from refarith.fast.bitops import BitOps, _check_width

WORD_OPS = ("add", "sub", "mul", "and_", "or_", "xor", "shl", "shr")
"""Binary word -> word operations (shift counts may be an immediate int instead of a word)."""
COMPARE_OPS = ("eq", "ne", "ult", "ule", "ugt", "uge")
"""Binary word -> mask comparisons (unsigned)."""
MASK_OPS = ("band", "bor")
"""Binary mask -> mask operations."""
BLOCK_OPS = ("udiv", "rmax", "bcast", "lut")
"""Operations beyond the BitOps primitives, recorded by the block-kernel tracer (:mod:`refarith.fast.xptrace`):
``udiv`` unsigned division (divisor non-zero), ``rmax`` the unsigned maximum of an element word over its block,
``bcast`` a block word repeated over the block's elements, ``lut`` a word read from the graph's table ``imm`` at
the index given by its operand."""
KINDS = ("input", "const", "mconst", "not_", "bnot", "where") + WORD_OPS + COMPARE_OPS + MASK_OPS + BLOCK_OPS


@dataclass(frozen=True)
class Node:
    """One operation: ``kind``, its operand node indices ``args``, and an immediate ``imm`` (constant value, input
    index, or a static shift count); ``mask`` tells whether the value is a boolean mask rather than a word."""

    kind: str
    args: tuple[int, ...] = ()
    imm: int | None = None
    mask: bool = False


class Ref:
    """A handle to a node of the graph being traced (what a traced kernel sees as a word or a mask)."""

    __slots__ = ("tracer", "index")

    def __init__(self, tracer: TracingBitOps, index: int) -> None:
        self.tracer = tracer
        self.index = index

    def __bool__(self) -> bool:
        raise BadValueError("a traced kernel branched on a word value; control flow must depend on static data only")

    def __repr__(self) -> str:
        return f"Ref({self.index}: {self.tracer.nodes[self.index].kind})"


@dataclass(frozen=True)
class Graph:
    """A traced kernel: ``nodes`` in evaluation order, ``inputs`` (names of the input words, node ``input``
    with ``imm`` = position), ``outputs`` (node indices) and the word ``width``."""

    width: int
    nodes: tuple[Node, ...]
    inputs: tuple[str, ...]
    outputs: tuple[int, ...]
    name: str = "kernel"
    input_levels: tuple[int, ...] = ()
    """Block graphs only: per input, 0 for an element word, 1 for a block word (empty: an elementwise graph)."""
    tables: tuple[tuple[int, ...], ...] = ()
    """The word tables ``lut`` nodes read (entries are words of the graph's width)."""

    def text(self) -> str:
        """Canonical text form: one line per node, the digest is computed from it (elementwise graphs have no
        ``levels``/``table`` lines)."""
        lines = [f"width {self.width}", "inputs " + " ".join(self.inputs)]
        if self.input_levels:
            lines.append("levels " + " ".join(map(str, self.input_levels)))
        for j, t in enumerate(self.tables):
            lines.append(f"table {j} " + " ".join(map(str, t)))
        for i, n in enumerate(self.nodes):
            args = ",".join(map(str, n.args))
            lines.append(f"{i} {n.kind} {args} {'' if n.imm is None else n.imm}{' m' if n.mask else ''}")
        lines.append("outputs " + " ".join(map(str, self.outputs)))
        return "\n".join(lines) + "\n"

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text().encode()).hexdigest()

    def live(self) -> list[bool]:
        """Which nodes the outputs depend on (dead nodes are skipped by evaluation and emission)."""
        keep = [False] * len(self.nodes)
        for o in self.outputs:
            keep[o] = True
        for i in range(len(self.nodes) - 1, -1, -1):
            if keep[i]:
                for a in self.nodes[i].args:
                    keep[a] = True
        return keep


class TracingBitOps(BitOps):
    """Words and masks are :class:`Ref` handles; every operation appends one node (constants are shared)."""

    def __init__(self, width: int = 32) -> None:
        _check_width(width)
        self.width = width
        self.nodes: list[Node] = []
        self._interned: dict[Node, int] = {}
        self.n_inputs = 0
        self.tables: list[tuple[int, ...]] = []

    # recording -------------------------------------------------------------------------------------------------
    def _node(self, node: Node) -> Ref:
        if node.kind in ("const", "mconst"):
            idx = self._interned.get(node)
            if idx is not None:
                return Ref(self, idx)
            self._interned[node] = len(self.nodes)
        self.nodes.append(node)
        return Ref(self, len(self.nodes) - 1)

    def _ref(self, a: Any, want_mask: bool) -> int:
        if isinstance(a, Ref):
            if a.tracer is not self:
                raise BadValueError("a word of another trace was passed to this one")
            if self.nodes[a.index].mask != want_mask:
                raise BadValueError(f"expected a {'mask' if want_mask else 'word'}, got a "
                                    f"{'mask' if self.nodes[a.index].mask else 'word'}")
            return a.index
        if isinstance(a, bool):
            if not want_mask:
                raise BadValueError("a Python bool where a word was expected")
            return self._node(Node("mconst", (), int(a), True)).index
        if isinstance(a, int) and not want_mask:
            return self.const(a).index
        raise BadValueError(f"cannot trace operand {a!r}")

    def input(self) -> Ref:
        """A fresh input word (the kernel's next argument)."""
        r = self._node(Node("input", (), self.n_inputs))
        self.n_inputs += 1
        return r

    # the BitOps primitives ----------------------------------------------------------------------------------------
    def const(self, v: int, like: Any = None) -> Ref:
        return self._node(Node("const", (), int(v) & self.mask))

    def _word2(self, kind: str, a: Any, b: Any) -> Ref:
        return self._node(Node(kind, (self._ref(a, False), self._ref(b, False))))

    def add(self, a, b):
        return self._word2("add", a, b)

    def sub(self, a, b):
        return self._word2("sub", a, b)

    def mul(self, a, b):
        return self._word2("mul", a, b)

    def and_(self, a, b):
        return self._word2("and_", a, b)

    def or_(self, a, b):
        return self._word2("or_", a, b)

    def xor(self, a, b):
        return self._word2("xor", a, b)

    def not_(self, a):
        return self._node(Node("not_", (self._ref(a, False),)))

    def _shift(self, kind: str, a: Any, s: Any) -> Ref:
        if isinstance(s, int) and not isinstance(s, bool):
            if not 0 <= s < self.width:
                raise BadValueError(f"static shift count {s} outside [0, {self.width})")
            return self._node(Node(kind, (self._ref(a, False),), s))
        return self._word2(kind, a, s)

    def shl(self, a, s):
        return self._shift("shl", a, s)

    def shr(self, a, s):
        return self._shift("shr", a, s)

    def _cmp(self, kind: str, a: Any, b: Any) -> Ref:
        return self._node(Node(kind, (self._ref(a, False), self._ref(b, False)), None, True))

    def eq(self, a, b):
        return self._cmp("eq", a, b)

    def ne(self, a, b):
        return self._cmp("ne", a, b)

    def ult(self, a, b):
        return self._cmp("ult", a, b)

    def ule(self, a, b):
        return self._cmp("ule", a, b)

    def ugt(self, a, b):
        return self._cmp("ugt", a, b)

    def uge(self, a, b):
        return self._cmp("uge", a, b)

    def band(self, a, b):
        return self._node(Node("band", (self._ref(a, True), self._ref(b, True)), None, True))

    def bor(self, a, b):
        return self._node(Node("bor", (self._ref(a, True), self._ref(b, True)), None, True))

    def bnot(self, a):
        return self._node(Node("bnot", (self._ref(a, True),), None, True))

    def mtrue(self, like: Any = None) -> Ref:
        return self._node(Node("mconst", (), 1, True))

    def mfalse(self, like: Any = None) -> Ref:
        return self._node(Node("mconst", (), 0, True))

    def where(self, m, a, b):
        return self._node(Node("where", (self._ref(m, True), self._ref(a, False), self._ref(b, False))))

    # block-kernel operations (BLOCK_OPS) -------------------------------------------------------------------------
    def udiv(self, a, b):
        """Unsigned quotient floor(a / b); the caller guarantees b != 0."""
        return self._word2("udiv", a, b)

    def rmax(self, a):
        """Unsigned maximum of the element word ``a`` over its block (a block word)."""
        return self._node(Node("rmax", (self._ref(a, False),)))

    def bcast(self, a):
        """The block word ``a`` as an element word (the same value for every element of the block)."""
        return self._node(Node("bcast", (self._ref(a, False),)))

    def lut(self, table: Sequence[int], a):
        """``table[a]`` (words); the caller guarantees 0 <= a < len(table)."""
        t = tuple(int(v) & self.mask for v in table)
        if t not in self.tables:
            self.tables.append(t)
        return self._node(Node("lut", (self._ref(a, False),), self.tables.index(t)))


def trace(fn: Callable[..., Any], width: int, inputs: Sequence[str], name: str = "kernel") -> Graph:
    """Run ``fn(ops, *input_words)`` once on a :class:`TracingBitOps` and return the recorded graph.

    ``fn`` returns one word/mask or a tuple of them (the outputs, in order)."""
    ops = TracingBitOps(width)
    args = [ops.input() for _ in inputs]
    out = fn(ops, *args)
    outs = out if isinstance(out, tuple) else (out,)
    idx = []
    for o in outs:
        if isinstance(o, bool):
            o = ops.mtrue() if o else ops.mfalse()
        if not isinstance(o, Ref) or o.tracer is not ops:
            raise BadValueError(f"traced kernel {name!r} returned {o!r}, not a word or mask of its trace")
        idx.append(o.index)
    return Graph(width, tuple(ops.nodes), tuple(inputs), tuple(idx), name)


def evaluate(graph: Graph, ops: BitOps, inputs: Sequence[Any],
             block_op: Callable[[Graph, Node, BitOps, list[Any]], Any] | None = None) -> tuple[Any, ...]:
    """Replay ``graph`` on ``ops`` (any BitOps of the graph's width) with the given input words.

    ``block_op(graph, node, ops, operand values)`` evaluates the block operations (``BLOCK_OPS``); by default
    they run on numpy words with the block as the last axis."""
    if ops.width != graph.width:
        raise BadValueError(f"graph of {graph.width}-bit words evaluated on {ops.width}-bit words")
    if len(inputs) != len(graph.inputs):
        raise BadValueError(f"graph {graph.name!r} takes {len(graph.inputs)} inputs, got {len(inputs)}")
    like = inputs[0] if inputs else None
    live = graph.live()
    vals: list[Any] = [None] * len(graph.nodes)
    for i, n in enumerate(graph.nodes):
        if not live[i]:
            continue
        k, a = n.kind, n.args
        if k == "input":
            v = inputs[n.imm]
        elif k == "const":
            v = ops.const(n.imm, like)
        elif k == "mconst":
            v = ops.mtrue(like) if n.imm else ops.mfalse(like)
        elif k in ("shl", "shr") and n.imm is not None:
            v = getattr(ops, k)(vals[a[0]], n.imm)
        elif k in WORD_OPS or k in COMPARE_OPS or k in MASK_OPS:
            v = getattr(ops, k)(vals[a[0]], vals[a[1]])
        elif k in ("not_", "bnot"):
            v = getattr(ops, k)(vals[a[0]])
        elif k == "where":
            v = ops.where(vals[a[0]], vals[a[1]], vals[a[2]])
        elif k in BLOCK_OPS:
            v = (block_op or _block_op)(graph, n, ops, [vals[j] for j in a])
        else:  # pragma: no cover - Graph nodes are built by TracingBitOps only
            raise BadValueError(f"unknown graph node kind {k!r}")
        vals[i] = v
    return tuple(vals[o] for o in graph.outputs)


def _block_op(graph: Graph, n: Node, ops: BitOps, args: list[Any]) -> Any:
    """The block operations on numpy words (element words have the block as their last axis)."""
    import numpy as np

    from refarith.fast.bitops import NumpyBitOps

    if not isinstance(ops, NumpyBitOps):
        raise BadValueError(f"graph {graph.name!r}: {n.kind} nodes are evaluated on numpy words only")
    a = np.asarray(args[0], dtype=ops.dtype)
    if n.kind == "udiv":
        return np.floor_divide(a, np.asarray(args[1], dtype=ops.dtype), dtype=ops.dtype)
    if n.kind == "rmax":
        return a.max(axis=-1)
    if n.kind == "bcast":
        return a[..., None]
    return np.asarray(graph.tables[n.imm], dtype=ops.dtype)[a]


__all__ = ["BLOCK_OPS", "Graph", "Node", "Ref", "TracingBitOps", "evaluate", "trace"]
