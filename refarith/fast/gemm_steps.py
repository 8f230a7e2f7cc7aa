"""The per-element steps of the scaled_mm accumulator models, written once against a small float shim ``xp``.

The numpy kernel (:mod:`refarith.fast.gemm`) runs these functions on numpy arrays (:data:`NP`); the Triton
kernels (:mod:`refarith.fast.gemm_triton`) run the graphs :func:`trace_step` records from the same functions on
:class:`FloatTrace`, emitted as ``@triton.jit`` functions that carry the graph digests.  So a step's arithmetic
has one source, and a test can check that the emitted function is the graph of the numpy kernel's step.

Steps (binary64 values of the accumulator format ``q``, an :class:`AccFormat`):

* :func:`acc_round`: a binary64 value (exact, or rounded to odd at 53 bits) rounded into ``q``: RNE, or RTZ
  (``rtz``), from the bit fields: 2^-qe scaling, 2^52 addition (RNE) or floor (RTZ), scaling back; finite overflow
  to ``q.big`` (RNE) or the largest finite value (RTZ), infinities to ``q.inf_to``, NaN stays NaN (the rules of
  :func:`refarith.fast.gemm.round_to` with the format's default overflow);
* :func:`acc_add`: x + y rounded once into ``q``: TwoSum, rounding to odd at 53 bits, :func:`acc_round` (Boldo and
  Melquiond 2008: rounding to odd at 53 bits, then to at most 51 bits, is one correct rounding);
* :func:`add32`: the binary32 addition of binary32 values (the chain models when every product is one);
* the tensor-core group (:func:`tc_group`): :func:`tc_max` of the magnitudes, :func:`tc_unit` (2^(b - E) and
  2^(E - b) from the exponent field E of the largest magnitude), :func:`tc_term` (each term aligned: times
  2^(b - E), truncated or rounded to even to an integer), the integers summed exactly, :func:`tc_finish`
  (scaled back, +0, :func:`acc_round` with the group's rounding).

Shim vocabulary: Python operators ``+ - *`` and unary minus on floats, ``+ - & << >>`` on integers, comparisons,
``& | ^ ~`` on masks; ``xp.where``, ``xp.abs``, ``xp.floor``, ``xp.trunc``, ``xp.maximum``, ``xp.minimum``, ``xp.bits``
(binary64 bits as int64), ``xp.from_bits`` (int64 bits as binary64), ``xp.to_f32`` / ``xp.from_f32`` (IEEE
conversions binary64 -> binary32, RNE, and back, exact), ``xp.bits32`` / ``xp.from_bits32`` (binary32 bits as
int64, and back).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from refarith.errors import BadValueError, KernelError
from refarith.fast.trace import Graph, Node

TWO52 = 4503599627370496.0


@dataclass(frozen=True)
class AccFormat:
    """Rounding constants of an accumulator format: fraction bits, minimum exponent, largest finite value, the
    value of a finite overflow under RNE (``big``) and of an infinity (``inf_to``)."""

    name: str
    mbits: int
    emin: int
    fmax: float
    big: float
    inf_to: float


def acc_format(name: str) -> AccFormat:
    """The :class:`AccFormat` of a float format with subnormals, 1 to 23 fraction bits and at most 32 bits (with
    a default overflow to inf, NaN or saturation), KernelError otherwise."""
    from refarith.exact.rounding import default_overflow
    from refarith.formats import FloatFormat, get_format

    f = get_format(name)
    if not isinstance(f, FloatFormat) or f.nbits > 32 or not f.subnormals or not 1 <= f.mbits <= 23:
        raise KernelError(f"acc={name}: the accumulator steps take float formats of at most 32 bits with "
                          "subnormals and 1 to 23 fraction bits")
    ovf = default_overflow(f)
    fmax = float(f.max)
    big = math.inf if ovf == "inf" else (math.nan if ovf == "nan" else fmax)
    if ovf == "saturate":
        inf_to = fmax
    elif ovf == "nan" or not f.has_inf:
        inf_to = math.nan if f.has_nan else fmax
    else:
        inf_to = math.inf
    return AccFormat(f.name, f.mbits, f.emin, fmax, big, inf_to)


# ------------------------------------------------------------------ the steps
def acc_round(xp: Any, x: Any, q: AccFormat, rtz: bool = False) -> Any:
    """x rounded into ``q`` (RNE, or RTZ with ``rtz``).  binary32: the IEEE conversion from binary64 (RNE; RTZ
    steps one ulp toward zero where it went away, an infinity from a finite x to the largest finite value).
    Other formats: 2^-qe and 2^qe are binary64-normal and the scaled magnitude is below 2^(mbits + 1) <= 2^24,
    so every operation but the rounding step is exact."""
    if q.name == "binary32":  # the binary64 -> binary32 conversion (RNE, overflow to inf); rtz steps back one ulp
        y = xp.to_f32(x)
        if rtz:
            back = xp.abs(xp.from_f32(y)) > xp.abs(x)
            y = xp.from_bits32(xp.bits32(y) - xp.where(back, 1, 0))
        return xp.from_f32(y)
    ax = xp.abs(x)
    fin = (ax < math.inf) & (ax > 0.0)
    e = ((xp.bits(xp.where(fin, ax, 1.0)) >> 52) & 0x7FF) - 1023
    qe = xp.maximum(e - q.mbits, q.emin - q.mbits)
    y = xp.where(fin, ax, 0.0) * xp.from_bits((1023 - qe) << 52)
    n = xp.floor(y) if rtz else (y + TWO52) - TWO52
    r = n * xp.from_bits((1023 + qe) << 52)
    r = xp.where(fin & (r > q.fmax), q.fmax if rtz else q.big, r)
    r = xp.where(ax == math.inf, q.inf_to, r)
    r = xp.where(ax == 0.0, 0.0, r)
    r = xp.where(xp.bits(x) < 0, -r, r)
    return xp.where(x != x, math.nan, r)


def acc_add(xp: Any, x: Any, y: Any, q: AccFormat) -> Any:
    """x + y rounded to nearest even into ``q``: s = RN(x + y) and its TwoSum error, s rounded to odd at 53 bits
    (one step away from zero or toward it, in the error's direction, where s is even and inexact), then
    :func:`acc_round`."""
    s = x + y
    bb = s - x
    err = (x - (s - bb)) + (y - bb)
    err = xp.where(xp.abs(s) < math.inf, err, 0.0)
    bits = xp.bits(s)
    step = xp.where((err > 0.0) ^ (s > 0.0), -1, 1)
    s = xp.where((err != 0.0) & ((bits & 1) == 0), xp.from_bits(bits + step), s)
    return acc_round(xp, s, q)


def add32(xp: Any, x: Any, y: Any) -> Any:
    """The binary32 addition of binary32 values (IEEE 754 RNE)."""
    return x + y


def tc_max(xp: Any, big: Any, p: Any) -> Any:
    """The running largest magnitude of a group's terms (finite)."""
    return xp.maximum(big, xp.abs(p))


def tc_unit(xp: Any, big: Any, b: int) -> tuple[Any, Any]:
    """(2^(b - E), 2^(E - b)) for the exponent field E of the largest magnitude ``big`` (the caller checks that
    the group's alignment unit is binary64-normal; an all-zero group gets E = 0 and harmless powers)."""
    e = (xp.bits(big) >> 52) & 0x7FF
    scale = xp.from_bits(xp.minimum(2046 + b - e, 2046) << 52)
    inv = xp.from_bits(xp.maximum(e - b, 1) << 52)
    return scale, inv


def tc_term(xp: Any, x: Any, scale: Any, rtz: bool) -> Any:
    """A term aligned: x 2^(b - E) (exact, below 2^(b + 1) <= 2^52 in magnitude) truncated (rtz) or rounded to even
    (adding and taking away 2^52) to an integer."""
    y = x * scale
    if rtz:
        return xp.trunc(y)
    c = xp.where(y < 0.0, -TWO52, TWO52)
    return (y + c) - c


def tc_finish(xp: Any, s: Any, inv: Any, q: AccFormat, rtz: bool) -> Any:
    """The exact integer sum of the aligned terms scaled back by 2^(E - b) (exact), +0 for a zero sum, rounded
    into the accumulator with the group's rounding."""
    return acc_round(xp, s * inv + 0.0, q, rtz)


def tc_group(xp: Any, t: Any, prods: Sequence[Any], b: int, rtz: bool, q: AccFormat) -> Any:
    """One tensor-core group: the accumulator ``t`` and the g products aligned to the largest exponent, summed
    exactly (integers below 2^53: (g + 1) 2^(b + 1) <= 2^53, checked by the caller), rounded into ``q``."""
    big = xp.abs(t)
    for p in prods:
        big = tc_max(xp, big, p)
    scale, inv = tc_unit(xp, big, b)
    s = tc_term(xp, t, scale, rtz)
    for p in prods:
        s = s + tc_term(xp, p, scale, rtz)
    return tc_finish(xp, s, inv, q, rtz)


# ------------------------------------------------------------------ numpy
class _Numpy:
    """The shim on numpy float64 / int64 arrays."""

    name = "numpy"
    where = staticmethod(np.where)
    abs = staticmethod(np.abs)
    floor = staticmethod(np.floor)
    trunc = staticmethod(np.trunc)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)

    @staticmethod
    def bits(x: Any) -> Any:
        return np.asarray(x, dtype=np.float64).view(np.int64)

    @staticmethod
    def from_bits(i: Any) -> Any:
        return np.asarray(i, dtype=np.int64).view(np.float64)

    @staticmethod
    def to_f32(x: Any) -> Any:
        return np.asarray(x, dtype=np.float64).astype(np.float32)

    @staticmethod
    def from_f32(x: Any) -> Any:
        return np.asarray(x, dtype=np.float32).astype(np.float64)

    @staticmethod
    def bits32(x: Any) -> Any:
        return np.asarray(x, dtype=np.float32).view(np.int32).astype(np.int64)

    @staticmethod
    def from_bits32(i: Any) -> Any:
        return np.asarray(i, dtype=np.int64).astype(np.int32).view(np.float32)


NP = _Numpy()


class _Torch:
    """The shim on torch float64 / int64 / bool tensors (any device): the same IEEE 754 binary64 and binary32
    operations as numpy, so the same bits.  A Python scalar meeting a tensor takes the tensor's dtype, as in numpy;
    a ``where`` between two scalars gives binary64 (floats) or int64 (ints), as numpy's does."""

    name = "torch"

    def __init__(self) -> None:
        import torch

        self.t = torch

    def where(self, c: Any, x: Any, y: Any) -> Any:
        t = self.t
        if not isinstance(x, t.Tensor) and not isinstance(y, t.Tensor):  # torch would give its default float32
            x = t.full_like(c, x, dtype=t.int64 if isinstance(x, int) and isinstance(y, int) else t.float64)
        return t.where(c, x, y)

    def abs(self, x: Any) -> Any:
        return x.abs()

    def floor(self, x: Any) -> Any:
        return x.floor()

    def trunc(self, x: Any) -> Any:
        return x.trunc()

    def maximum(self, x: Any, y: Any) -> Any:
        return self.t.maximum(x, y) if isinstance(y, self.t.Tensor) else x.clamp(min=y)

    def minimum(self, x: Any, y: Any) -> Any:
        return self.t.minimum(x, y) if isinstance(y, self.t.Tensor) else x.clamp(max=y)

    def bits(self, x: Any) -> Any:
        return x.view(self.t.int64)

    def from_bits(self, i: Any) -> Any:
        return i.view(self.t.float64)

    def to_f32(self, x: Any) -> Any:
        return x.to(self.t.float32)

    def from_f32(self, x: Any) -> Any:
        return x.to(self.t.float64)

    def bits32(self, x: Any) -> Any:
        return x.view(self.t.int32).to(self.t.int64)

    def from_bits32(self, i: Any) -> Any:
        return i.to(self.t.int32).view(self.t.float32)


_TORCH: list[_Torch] = []


def torch_shim() -> _Torch:
    """The step shim on torch tensors (imports torch on first use)."""
    if not _TORCH:
        _TORCH.append(_Torch())
    return _TORCH[0]


def tensor_core_fits(ap: np.ndarray, bp: np.ndarray, g: int, b: int) -> str | None:
    """Why the tensor-core steps cannot run a group kernel on these binary64 operands without the numpy kernel's
    general path (None: they can): NaN/inf operands, b < 2 or aligned sums reaching 2^53, products below
    2^(b - 1000) or at least 2^1000 (so every group's alignment unit 2^(E - b) is binary64-normal; an infinite
    accumulator t gets the finite unit of E = 2047 and stays infinite)."""
    if not (np.isfinite(ap).all() and np.isfinite(bp).all()):
        return "NaN/inf operands"
    if (g + 1) << (b + 1) > 1 << 53 or b < 2:
        return f"g={g}, b={b}: the kernel needs b >= 2 and aligned sums below 2^53"
    xa, xb = np.abs(ap[ap != 0]), np.abs(bp[bp != 0])
    if xa.size and xb.size and not (float(xa.min()) * float(xb.min()) >= 2.0 ** (b - 1000)
                                    and float(xa.max()) * float(xb.max()) < 2.0 ** 1000):
        return "products below 2^(b - 1000) or at least 2^1000"
    return None


# ------------------------------------------------------------------ tracing
FLOAT_OPS = {"fadd": "+", "fsub": "-", "fmul": "*"}
INT_OPS = {"iadd": "+", "isub": "-", "iand": "&", "ishl": "<<", "ishr": ">>"}
CMP_OPS = {"lt": "<", "le": "<=", "eq": "==", "ne": "!="}
MASK_OPS = {"mand": "&", "mor": "|", "mxor": "^"}
STEP_KINDS = (("in_f64", "in_f32", "fconst", "iconst", "fneg", "fabs", "ffloor", "ftrunc", "fmax", "imax", "imin",
               "bits", "from_bits", "to_f32", "from_f32", "bits32", "from_bits32", "where", "mnot")
              + tuple(FLOAT_OPS) + tuple(INT_OPS) + tuple(CMP_OPS) + tuple(MASK_OPS))
"""Node kinds of a step graph.  Float nodes are binary64 (binary32 for graphs with ``in_f32`` inputs, and the
results of ``to_f32`` / ``from_bits32``), integer nodes int64, masks booleans; ``fconst`` holds the binary64 bits
of its value in ``imm``, ``iconst`` the value."""


class TV:
    """A traced value: node index ``i`` of type ``t`` ("f" float, "i" int64, "m" mask)."""

    __slots__ = ("ft", "i", "t")

    def __init__(self, ft: FloatTrace, i: int, t: str) -> None:
        self.ft, self.i, self.t = ft, i, t

    def __bool__(self) -> bool:
        raise BadValueError("a traced GEMM step branched on a value; control flow must depend on static data only")

    __hash__ = None  # type: ignore[assignment]

    def _bin(self, o: Any, fl: str, it: str | None, rev: bool = False) -> TV:
        ft = self.ft
        a, b = (ft.lift(o, self.t), self) if rev else (self, ft.lift(o, self.t))
        if a.t != b.t:
            raise BadValueError(f"a traced GEMM step combined a {a.t} value with a {b.t} value")
        if a.t == "f":
            return ft.node(fl, (a, b), "f")
        if a.t == "i" and it is not None:
            return ft.node(it, (a, b), "i")
        raise BadValueError(f"traced GEMM steps have no {fl}/{it} on {a.t} values")

    def __add__(self, o):
        return self._bin(o, "fadd", "iadd")

    def __radd__(self, o):
        return self._bin(o, "fadd", "iadd", True)

    def __sub__(self, o):
        return self._bin(o, "fsub", "isub")

    def __rsub__(self, o):
        return self._bin(o, "fsub", "isub", True)

    def __mul__(self, o):
        return self._bin(o, "fmul", None)

    def __rmul__(self, o):
        return self._bin(o, "fmul", None, True)

    def __neg__(self):
        if self.t != "f":
            raise BadValueError("traced GEMM steps negate floats only")
        return self.ft.node("fneg", (self,), "f")

    def _int(self, o: Any, kind: str, rev: bool = False) -> TV:
        ft = self.ft
        a, b = (ft.lift(o, "i"), self) if rev else (self, ft.lift(o, "i"))
        if a.t != "i" or b.t != "i":
            raise BadValueError(f"traced GEMM steps apply {kind} to integers only")
        return ft.node(kind, (a, b), "i")

    def __lshift__(self, o):
        return self._int(o, "ishl")

    def __rlshift__(self, o):
        return self._int(o, "ishl", True)

    def __rshift__(self, o):
        return self._int(o, "ishr")

    def _mask(self, o: Any, kind: str) -> TV:
        if self.t == "m":
            if not isinstance(o, TV) or o.t != "m":
                raise BadValueError("traced GEMM steps combine masks with masks")
            return self.ft.node(kind, (self, o), "m")
        if kind == "mand":
            return self._int(o, "iand")
        raise BadValueError(f"traced GEMM steps apply {kind} to masks only")

    def __and__(self, o):
        return self._mask(o, "mand")

    def __rand__(self, o):
        return self._mask(o, "mand")

    def __or__(self, o):
        return self._mask(o, "mor")

    def __xor__(self, o):
        return self._mask(o, "mxor")

    def __invert__(self):
        if self.t != "m":
            raise BadValueError("traced GEMM steps invert masks only")
        return self.ft.node("mnot", (self,), "m")

    def _cmp(self, o: Any, kind: str, rev: bool = False) -> TV:
        ft = self.ft
        a, b = (ft.lift(o, self.t), self) if rev else (self, ft.lift(o, self.t))
        if a.t != b.t or a.t == "m":
            raise BadValueError("traced GEMM steps compare two floats or two integers")
        return ft.node(kind, (a, b), "m")

    def __lt__(self, o):
        return self._cmp(o, "lt")

    def __le__(self, o):
        return self._cmp(o, "le")

    def __gt__(self, o):
        return self._cmp(o, "lt", True)

    def __ge__(self, o):
        return self._cmp(o, "le", True)

    def __eq__(self, o):  # type: ignore[override]
        return self._cmp(o, "eq")

    def __ne__(self, o):  # type: ignore[override]
        return self._cmp(o, "ne")


def _f64_bits(v: float) -> int:
    return struct.unpack("<q", struct.pack("<d", v))[0]


class FloatTrace:
    """The tracing shim: every operation appends one node (constants are shared)."""

    name = "trace"

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.types: list[str] = []
        self.consts: dict[tuple, TV] = {}

    def node(self, kind: str, args: tuple[TV, ...], t: str, imm: int | None = None) -> TV:
        self.nodes.append(Node(kind, tuple(a.i for a in args), imm, t == "m"))
        self.types.append(t)
        return TV(self, len(self.nodes) - 1, t)

    def lift(self, v: Any, t: str) -> TV:
        if isinstance(v, TV):
            return v
        if isinstance(v, (bool, np.bool_)):
            raise BadValueError("traced GEMM steps take no Python bools as operands")
        if t == "i" and isinstance(v, (int, np.integer)):
            key = ("i", int(v))
            if key not in self.consts:
                self.consts[key] = self.node("iconst", (), "i", int(v))
            return self.consts[key]
        if isinstance(v, (int, float, np.integer, np.floating)):
            bits = _f64_bits(float(v))
            key = ("f", bits)
            if key not in self.consts:
                self.consts[key] = self.node("fconst", (), "f", bits)
            return self.consts[key]
        raise BadValueError(f"cannot trace GEMM step operand {v!r}")

    def where(self, c: Any, a: Any, b: Any) -> TV:
        if not isinstance(c, TV) or c.t != "m":
            raise BadValueError("traced GEMM steps select with a traced mask")
        t = a.t if isinstance(a, TV) else b.t if isinstance(b, TV) else ("i" if isinstance(a, int) and
                                                                          isinstance(b, int) else "f")
        x, y = self.lift(a, t), self.lift(b, t)
        if x.t != y.t:
            raise BadValueError("traced GEMM steps select between values of one type")
        return self.node("where", (c, x, y), t)

    def abs(self, x: TV) -> TV:
        return self.node("fabs", (x,), "f")

    def floor(self, x: TV) -> TV:
        return self.node("ffloor", (x,), "f")

    def trunc(self, x: TV) -> TV:
        return self.node("ftrunc", (x,), "f")

    def maximum(self, a: Any, b: Any) -> TV:
        t = a.t if isinstance(a, TV) else b.t
        return self.node("fmax" if t == "f" else "imax", (self.lift(a, t), self.lift(b, t)), t)

    def minimum(self, a: Any, b: Any) -> TV:
        t = a.t if isinstance(a, TV) else b.t
        if t != "i":
            raise BadValueError("traced GEMM steps take minima of integers only")
        return self.node("imin", (self.lift(a, t), self.lift(b, t)), t)

    def bits(self, x: TV) -> TV:
        return self.node("bits", (x,), "i")

    def from_bits(self, i: TV) -> TV:
        return self.node("from_bits", (i,), "f")

    def to_f32(self, x: TV) -> TV:
        return self.node("to_f32", (x,), "s")

    def from_f32(self, x: TV) -> TV:
        return self.node("from_f32", (x,), "f")

    def bits32(self, x: TV) -> TV:
        return self.node("bits32", (x,), "i")

    def from_bits32(self, i: TV) -> TV:
        return self.node("from_bits32", (i,), "s")


def trace_step(fn: Callable[..., Any], inputs: Sequence[str], name: str, f32: bool = False) -> Graph:
    """The graph of ``fn(xp, *inputs)`` (float inputs, binary64 or with ``f32`` binary32; one output or a tuple)."""
    ft = FloatTrace()
    args = [ft.node("in_f32" if f32 else "in_f64", (), "f", j) for j in range(len(inputs))]
    out = fn(ft, *args)
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        if not isinstance(o, TV):
            raise BadValueError(f"traced GEMM step {name!r} returned {o!r}, not a value computed from its inputs")
    return Graph(32 if f32 else 64, tuple(ft.nodes), tuple(inputs), tuple(o.i for o in outs), name)


def step_graphs(model: str, acc: str, b: int = 0, rtz: bool = False, f32: bool = False) -> dict[str, Graph]:
    """The traced steps a Triton kernel of ``model`` calls, by the name it calls them: for the chain models and
    pairwise ``_rnd`` (a leaf fl(p)) and ``_add``; with ``f32`` (binary32 products into binary32) the leaf is the
    product itself and ``_add`` is :func:`add32`; for tensor_core ``_tc_max``, ``_tc_unit``, ``_tc_term``,
    ``_tc_finish`` and the binary32 promotion ``_add32`` (:func:`acc_add` into binary32)."""
    if model == "tensor_core":
        q, q32 = acc_format(acc), acc_format("binary32")
        return {
            "_tc_max": trace_step(tc_max, ("big", "p"), "tc_max"),
            "_tc_unit": trace_step(lambda xp, big: tc_unit(xp, big, b), ("big",), f"tc_unit(b={b})"),
            "_tc_term": trace_step(lambda xp, x, s: tc_term(xp, x, s, rtz), ("x", "scale"),
                                   f"tc_term(rtz={rtz})"),
            "_tc_finish": trace_step(lambda xp, s, inv: tc_finish(xp, s, inv, q, rtz), ("s", "inv"),
                                     f"tc_finish({q.name},rtz={rtz})"),
            "_add32": trace_step(lambda xp, x, y: acc_add(xp, x, y, q32), ("x", "y"), "acc_add(binary32)"),
        }
    if f32:
        return {"_rnd": trace_step(_identity, ("x",), "leaf32", f32=True),
                "_add": trace_step(add32, ("x", "y"), "add32", f32=True)}
    q = acc_format(acc)
    return {"_rnd": trace_step(lambda xp, x: acc_round(xp, x, q), ("x",), f"acc_round({q.name})"),
            "_add": trace_step(lambda xp, x, y: acc_add(xp, x, y, q), ("x", "y"), f"acc_add({q.name})")}


def _identity(xp: Any, x: Any) -> Any:
    """A binary32 product as its own leaf: fl(p) = p when p is a binary32 value."""
    return x


# ------------------------------------------------------------------ evaluation and emission
def evaluate(graph: Graph, inputs: Sequence[Any]) -> list[Any]:
    """Replay a step graph on numpy arrays (binary64, or binary32 for ``in_f32`` graphs)."""
    vals: list[Any] = []
    f32 = any(n.kind == "in_f32" for n in graph.nodes)
    ftype = np.float32 if f32 else np.float64
    with np.errstate(all="ignore"):
        for n in graph.nodes:
            a = [vals[j] for j in n.args]
            k = n.kind
            if k in ("in_f64", "in_f32"):
                v = np.asarray(inputs[n.imm], dtype=ftype)
            elif k == "fconst":
                v = ftype(struct.unpack("<d", struct.pack("<q", n.imm))[0])
            elif k == "iconst":
                v = np.int64(n.imm)
            elif k in FLOAT_OPS or k in INT_OPS or k in CMP_OPS or k in MASK_OPS:
                op = {**FLOAT_OPS, **INT_OPS, **CMP_OPS, **MASK_OPS}[k]
                v = eval(f"x {op} y", {}, {"x": a[0], "y": a[1]})  # noqa: S307 - op is one of the tables above
            elif k == "fneg":
                v = -a[0]
            elif k == "fabs":
                v = np.abs(a[0])
            elif k == "ffloor":
                v = np.floor(a[0])
            elif k == "ftrunc":
                v = np.trunc(a[0])
            elif k in ("fmax", "imax"):
                v = np.maximum(a[0], a[1])
            elif k == "imin":
                v = np.minimum(a[0], a[1])
            elif k == "bits":
                v = NP.bits(a[0])
            elif k == "from_bits":
                v = NP.from_bits(a[0])
            elif k in ("to_f32", "from_f32", "bits32", "from_bits32"):
                v = getattr(NP, k)(a[0])
            elif k == "where":
                v = np.where(a[0], a[1], a[2])
            elif k == "mnot":
                v = ~a[0]
            else:
                raise BadValueError(f"unknown step node kind {k!r}")
            vals.append(v)
    return [vals[o] for o in graph.outputs]


def _fconst(bits: int) -> str:
    v = struct.unpack("<d", struct.pack("<q", bits))[0]
    if math.isnan(v):
        return 'float("nan")'
    if math.isinf(v):
        return 'float("inf")' if v > 0 else '-float("inf")'
    if np.float32(v) != v:
        raise BadValueError(f"step constant {v!r} is not a binary32 value; Triton would round its literal")
    return repr(v)


def emit_step(graph: Graph, fn_name: str) -> str:
    """Source of a ``@triton.jit`` function computing a step graph (its docstring carries the digest): one
    statement per live node; floats are float64 tensors (float32 for ``in_f32`` graphs), integers int64, float
    constants binary32-exact literals, integer constants int64."""
    f32 = graph.width == 32
    fdt = "tl.float32" if f32 else "tl.float64"
    live = graph.live()
    lines = ["@triton.jit", f"def {fn_name}({', '.join(graph.inputs)}):",
             f'    """Step graph {graph.name}, sha256 {graph.digest}."""']
    types = []
    for i, n in enumerate(graph.nodes):
        k, a = n.kind, [f"v{j}" for j in n.args]
        t = "m" if n.mask else ("i" if k in ("iconst", "bits", "bits32", "imax", "imin") or k in INT_OPS
                                or (k == "where" and types[n.args[1]] == "i") else "f")
        types.append(t)
        if not live[i]:
            continue
        if k in ("in_f64", "in_f32"):
            e = graph.inputs[n.imm]
        elif k == "fconst":
            e = _fconst(n.imm)
        elif k == "iconst":
            e = str(n.imm)
        elif k in FLOAT_OPS or k in INT_OPS or k in MASK_OPS:
            e = f"{a[0]} {({**FLOAT_OPS, **INT_OPS, **MASK_OPS})[k]} {a[1]}"
        elif k in CMP_OPS:
            e = f"({a[0]} {CMP_OPS[k]} {a[1]})"
        elif k == "fneg":
            e = f"-{a[0]}"
        elif k == "fabs":
            e = f"tl.abs({a[0]})"
        elif k == "ffloor":
            e = f"tl.floor({a[0]})"
        elif k == "ftrunc":  # rounding toward zero: the floor of the magnitude, the sign kept (-0.0 for -0.5)
            e = f"tl.where({a[0]} < 0, -tl.floor(-{a[0]}), tl.floor({a[0]}))"
        elif k in ("fmax", "imax"):
            e = f"tl.maximum({a[0]}, {a[1]})"
        elif k == "imin":
            e = f"tl.minimum({a[0]}, {a[1]})"
        elif k == "bits":
            e = f"{a[0]}.to(tl.int64, bitcast=True)"
        elif k == "from_bits":
            e = f"{a[0]}.to(tl.float64, bitcast=True)"
        elif k == "to_f32":  # IEEE conversion, round to nearest even
            e = f"{a[0]}.to(tl.float32)"
        elif k == "from_f32":
            e = f"{a[0]}.to(tl.float64)"
        elif k == "bits32":
            e = f"{a[0]}.to(tl.int32, bitcast=True).to(tl.int64)"
        elif k == "from_bits32":
            e = f"{a[0]}.to(tl.int32).to(tl.float32, bitcast=True)"
        elif k == "where":
            e = f"tl.where({a[0]}, {a[1]}, {a[2]}).to({'tl.int64' if t == 'i' else fdt})"
        elif k == "mnot":
            e = f"({a[0]} == 0)"
        else:
            raise BadValueError(f"unknown step node kind {k!r}")  # pragma: no cover - graphs come from trace_step
        lines.append(f"    v{i} = {e}")
    outs = [f"v{o}" for o in graph.outputs]
    lines.append(f"    return {', '.join(outs)}")
    return "\n".join(lines) + "\n"


__all__ = ["NP", "STEP_KINDS", "AccFormat", "FloatTrace", "acc_add", "acc_format", "acc_round", "add32", "emit_step",
           "evaluate", "step_graphs", "tc_finish", "tc_group", "tc_max", "tc_term", "tc_unit", "tensor_core_fits",
           "torch_shim", "trace_step"]
