"""Tracing the array-shim kernels of MX, NVFP4 and requantization into graphs of word operations.

:mod:`refarith.fast.mx`, :mod:`refarith.fast.nvfp4` and :mod:`refarith.fast.requant` are written once against a
small array shim ``xp`` (signed numpy/torch integer arrays: Python operators, ``xp.where``, ``xp.maximum``,
``xp.amax`` over the block axis, ...), not against :class:`~refarith.fast.bitops.BitOps`.  :class:`XpTrace` is
one more such shim: its arrays are :class:`SInt` handles that record every operation into a
:class:`~refarith.fast.trace.TracingBitOps`, so running the unchanged numpy/torch kernel code on it once per spec
gives the :class:`~refarith.fast.trace.Graph` that :mod:`refarith.fast.triton_blocks` emits for Triton.  The
kernels' arithmetic therefore has one source; the tracer only restates numpy's integer semantics on words:

* an ``int32``/``int64`` array is a word of the graph's width (32 or 64) holding the value's two's complement,
  sign-extended; results of ``+ - * <<`` and unary minus on ``int32`` arrays of a 64-bit graph wrap to int32
  (sign extension of the low 32 bits), as numpy's do;
* ``>>`` is the arithmetic shift, comparisons, ``xp.maximum``/``xp.minimum`` are signed (the sign bit is flipped
  before the unsigned word comparison), ``//`` is floor division (quotient of the magnitudes, sign-corrected;
  the divisor must be non-zero), a bool array used in arithmetic counts 0/1;
* ``xp.amax(x, -1)`` is the signed maximum over the block (``rmax``), ``v[..., None]`` repeats a block value
  over its elements (``bcast``), ``xp.t.as_tensor(table)[i]`` is a table read (``lut``);
* ``xp.to_f32`` of an integer is the exact integer-to-binary32 conversion (exact for 0 <= i < 2^24, the only
  use: :func:`refarith.fast.mx.split_f32` normalizing a 23-bit mantissa); binary32 ``/`` and ``*`` of traced
  floats are :func:`refarith.fast.mx.f32_div` / :func:`refarith.fast.mx.f32_mul` (integer operations, the same
  bits as IEEE binary32 division and multiplication);
* ``xp.anyof(m)`` is True: a kernel's fast-path skip (``if xp.anyof(sub): ...``) is always taken the general
  way, which gives the same values.

A data-dependent Python branch (``bool(word)``) raises, as in :mod:`refarith.fast.trace`.  Operations on
constants are folded, so every recorded node depends on an input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from refarith.errors import BadValueError
from refarith.fast.bitops import BitOps
from refarith.fast.trace import Graph, Node, Ref, TracingBitOps


class _Need64(Exception):
    """A 32-bit trace met an int64 array: retrace with 64-bit words."""


class PyBitOps(BitOps):
    """Words are Python ints, masks Python bools (constant folding for the tracer)."""

    def __init__(self, width: int) -> None:
        self.width = width

    def const(self, v, like=None):
        return int(v) & self.mask

    def add(self, a, b):
        return (a + b) & self.mask

    def sub(self, a, b):
        return (a - b) & self.mask

    def mul(self, a, b):
        return (a * b) & self.mask

    def and_(self, a, b):
        return a & b

    def or_(self, a, b):
        return a | b

    def xor(self, a, b):
        return a ^ b

    def not_(self, a):
        return ~a & self.mask

    def shl(self, a, s):
        return (a << s) & self.mask

    def shr(self, a, s):
        return a >> s

    def eq(self, a, b):
        return a == b

    def ne(self, a, b):
        return a != b

    def ult(self, a, b):
        return a < b

    def ule(self, a, b):
        return a <= b

    def ugt(self, a, b):
        return a > b

    def uge(self, a, b):
        return a >= b

    def band(self, a, b):
        return a and b

    def bor(self, a, b):
        return a or b

    def bnot(self, a):
        return not a

    def mtrue(self, like=None):
        return True

    def mfalse(self, like=None):
        return False

    def where(self, m, a, b):
        return a if m else b

    def udiv(self, a, b):
        return a // b


class _Dtype:
    def __init__(self, name: str, bits: int) -> None:
        self.name, self.bits = name, bits

    def __repr__(self) -> str:
        return f"trace.{self.name}"


INT32, INT64, UINT8, FLOAT32 = _Dtype("int32", 32), _Dtype("int64", 64), _Dtype("uint8", 8), _Dtype("float32", 32)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


class SInt:
    """A traced signed integer array (``is_mask``: a bool array): word or mask ``w`` (a Ref, or a Python value for
    a constant), numpy dtype width ``bits``, ``level`` 0 (one value per element), 1 (per block) or None
    (constant)."""

    __slots__ = ("xt", "w", "bits", "level", "is_mask")
    __array_priority__ = 1000

    def __init__(self, xt: XpTrace, w: Any, bits: int, level: int | None, is_mask: bool = False) -> None:
        self.xt, self.w, self.bits, self.level, self.is_mask = xt, w, bits, level, is_mask

    def __bool__(self) -> bool:
        raise BadValueError("a traced kernel branched on an array value; control flow must depend on static "
                            "data only")

    __hash__ = None  # type: ignore[assignment]

    device = None

    @property
    def dtype(self) -> _Dtype:
        return {32: INT32, 64: INT64}.get(self.bits, INT32)

    def to(self, dtype: _Dtype) -> SInt:
        xt = self.xt
        x = xt.word(self)
        if dtype is INT64:
            return xt.widen(x, 64)
        if dtype is INT32:
            return xt.wrap(x, 32)
        if dtype is UINT8:
            return xt.u8(x)
        raise BadValueError(f"traced kernels convert to int32, int64 or uint8, not {dtype!r}")

    def __getitem__(self, key: Any) -> SInt:
        if key != (Ellipsis, None):
            raise BadValueError(f"traced kernels index arrays only as v[..., None], not {key!r}")
        if self.level == 0:
            raise BadValueError("v[..., None] of an element value: only block values repeat over their block")
        if self.level is None:
            return self
        return SInt(self.xt, self.xt.tr.bcast(self.xt.word(self).w), self.bits, 0)

    # arithmetic ------------------------------------------------------------------------------------------------
    def __add__(self, o):
        return self.xt.arith("add", self, o)

    def __radd__(self, o):
        return self.xt.arith("add", o, self)

    def __sub__(self, o):
        return self.xt.arith("sub", self, o)

    def __rsub__(self, o):
        return self.xt.arith("sub", o, self)

    def __mul__(self, o):
        return self.xt.arith("mul", self, o)

    def __rmul__(self, o):
        return self.xt.arith("mul", o, self)

    def __neg__(self):
        return self.xt.arith("sub", 0, self)

    def __lshift__(self, o):
        return self.xt.shift_left(self, o)

    def __rlshift__(self, o):
        return self.xt.shift_left(o, self)

    def __rshift__(self, o):
        return self.xt.shift_right(self, o)

    def __rrshift__(self, o):
        return self.xt.shift_right(o, self)

    def __floordiv__(self, o):
        return self.xt.floordiv(self, o)

    def __rfloordiv__(self, o):
        return self.xt.floordiv(o, self)

    def __and__(self, o):
        return self.xt.bitwise("and_", self, o)

    def __rand__(self, o):
        return self.xt.bitwise("and_", o, self)

    def __or__(self, o):
        return self.xt.bitwise("or_", self, o)

    def __ror__(self, o):
        return self.xt.bitwise("or_", o, self)

    def __xor__(self, o):
        return self.xt.bitwise("xor", self, o)

    def __rxor__(self, o):
        return self.xt.bitwise("xor", o, self)

    def __invert__(self):
        xt = self.xt
        if self.is_mask:
            return SInt(xt, xt.o(self).bnot(self.w), 1, self.level, True)
        return SInt(xt, xt.o(self).not_(self.w), self.bits, self.level)

    # comparisons -------------------------------------------------------------------------------------------------
    def __eq__(self, o):  # type: ignore[override]
        return self.xt.compare("eq", self, o)

    def __ne__(self, o):  # type: ignore[override]
        return self.xt.compare("ne", self, o)

    def __lt__(self, o):
        return self.xt.compare("lt", self, o)

    def __le__(self, o):
        return self.xt.compare("le", self, o)

    def __gt__(self, o):
        return self.xt.compare("lt", o, self)

    def __ge__(self, o):
        return self.xt.compare("le", o, self)


class F32:
    """A traced binary32 array: its bit pattern ``bits`` (an int32 :class:`SInt`)."""

    __slots__ = ("bits",)
    device = None
    dtype = FLOAT32

    def __init__(self, bits: SInt) -> None:
        self.bits = bits

    def __truediv__(self, o: F32) -> F32:
        from refarith.fast.mx import f32_div

        if isinstance(o, Deferred):
            return NotImplemented
        return F32(f32_div(self.bits, _f32(o).bits, self.bits.xt))

    def __mul__(self, o: F32) -> F32:
        from refarith.fast.mx import f32_mul

        if isinstance(o, Deferred):
            return NotImplemented
        return F32(f32_mul(self.bits, _f32(o).bits, self.bits.xt))

    def view(self, dtype: _Dtype) -> SInt:
        if dtype is not INT32:
            raise BadValueError(f"a traced binary32 array is viewed as int32, not {dtype!r}")
        return self.bits


def _f32(o: Any) -> F32:
    if not isinstance(o, F32):
        raise BadValueError(f"binary32 arithmetic of traced kernels takes traced binary32 arrays, not {o!r}")
    return o


class Deferred:
    """A traced array of table entries whose index is not known yet: a code table (``xp.t.as_tensor(values)``)
    under a chain of elementwise operations.  ``xp.take(d, idx)`` resolves it at ``idx``: the table entries are
    read first and the same operations applied to them, which gives the same values (elementwise operations commute
    with a gather).  So a kernel that computes on a whole code table and then gathers per block (NVFP4's divisor
    or multiplier for the 128 UE4M3 codes) is traced as the per-block operations a Triton kernel performs."""

    __slots__ = ("xt", "fn", "args", "memo")
    __array_priority__ = 1001
    device = None

    def __init__(self, xt: XpTrace, fn: Callable[..., Any], args: tuple) -> None:
        self.xt, self.fn, self.args, self.memo = xt, fn, args, {}

    def at(self, idx: SInt) -> Any:
        """The value at the index array ``idx`` (each operation recorded once per index)."""
        hit = self.memo.get(id(idx))
        if hit is None:
            vals = [a.at(idx) if isinstance(a, Deferred) else a for a in self.args]
            hit = self.memo[id(idx)] = (idx, self.fn(*vals))
        return hit[1]

    def __bool__(self) -> bool:
        raise BadValueError("a traced kernel branched on a table value; control flow must depend on static data only")

    __hash__ = None  # type: ignore[assignment]

    def to(self, dtype: _Dtype) -> Deferred:
        return Deferred(self.xt, lambda v: v.to(dtype), (self,))

    def view(self, dtype: _Dtype) -> Deferred:
        return Deferred(self.xt, lambda v: v.view(dtype), (self,))

    def __getitem__(self, key: Any) -> Deferred:
        return Deferred(self.xt, lambda v: v[key], (self,))


def _deferred_operators() -> None:
    import operator as op

    for name in ("add", "sub", "mul", "truediv", "floordiv", "lshift", "rshift", "and", "or", "xor"):
        f = getattr(op, name + "_" if name in ("and", "or") else name)
        setattr(Deferred, f"__{name}__", lambda self, o, f=f: Deferred(self.xt, f, (self, o)))
        setattr(Deferred, f"__r{name}__", lambda self, o, f=f: Deferred(self.xt, f, (o, self)))
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        f = getattr(op, name)
        setattr(Deferred, f"__{name}__", lambda self, o, f=f: Deferred(self.xt, f, (self, o)))
    for name in ("neg", "invert"):
        f = getattr(op, name)
        setattr(Deferred, f"__{name}__", lambda self, f=f: Deferred(self.xt, f, (self,)))


_deferred_operators()


def _lazy(method: Callable[..., Any]) -> Callable[..., Any]:
    """An :class:`XpTrace` operation that defers when an operand is a :class:`Deferred`."""

    def run(self: XpTrace, *args: Any) -> Any:
        if any(isinstance(a, Deferred) for a in args):
            return Deferred(self, lambda *v: method(self, *v), args)
        return method(self, *args)

    run.__name__, run.__doc__ = method.__name__, method.__doc__
    return run


class _Table(Deferred):
    """A code table: ``table[i]`` reads it (a ``lut`` node); as a :class:`Deferred` it is the root of a chain."""

    __slots__ = ("values", "bits")

    def __init__(self, xt: XpTrace, values: np.ndarray) -> None:
        a = np.asarray(values)
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer) or a.dtype.itemsize > 8:
            raise BadValueError("traced table reads take 1-d integer tables")
        super().__init__(xt, None, ())
        self.values, self.bits = [int(v) for v in a], 64 if a.dtype.itemsize == 8 else 32

    def at(self, idx: SInt) -> SInt:
        hit = self.memo.get(id(idx))
        if hit is None:
            hit = self.memo[id(idx)] = (idx, self[idx])
        return hit[1]

    def __getitem__(self, idx: SInt) -> SInt:  # type: ignore[override]
        xt = self.xt
        if not isinstance(idx, SInt) or idx.is_mask:
            raise BadValueError("traced table reads take a traced integer index")
        if idx.level is None:
            return xt.const(self.values[int(xt.signed(idx))], self.bits)
        return SInt(xt, xt.tr.lut([v & xt.tr.mask for v in self.values], idx.w), self.bits, idx.level)


class _FakeTorch:
    """The part of the torch namespace the kernels use on their non-numpy path (``xp.t``)."""

    int32, int64, uint8, float32 = INT32, INT64, UINT8, FLOAT32

    def __init__(self, xt: XpTrace) -> None:
        self.xt = xt

    def tensor(self, v: Any, dtype: _Dtype = INT64, device: Any = None) -> SInt | F32:
        if dtype is FLOAT32:
            return F32(self.xt.const(int(np.array(v, dtype=np.float32).view(np.int32)), 32))
        return self.xt.const(int(v), dtype.bits)

    def as_tensor(self, values: Any, device: Any = None) -> _Table:
        return _Table(self.xt, values)


class XpTrace:
    """The tracing array shim (``name = "trace"``): the kernels take their general, non-numpy path on it."""

    name = "trace"

    def __init__(self, width: int) -> None:
        self.width = width
        self.tr = TracingBitOps(width)
        self.py = PyBitOps(width)
        self.t = _FakeTorch(self)
        self.levels: list[int] = []
        self.sign = 1 << (width - 1)

    # values --------------------------------------------------------------------------------------------------------
    def input(self, level: int, bits: int) -> SInt:
        """The next kernel input: an array of ``bits``-bit signed integers, per element (0) or per block (1);
        memory holds it zero-extended into a word, so it is sign-extended here."""
        if bits > self.width:
            raise _Need64
        self.levels.append(level)
        return self.wrap(SInt(self, self.tr.input(), bits, level), bits)

    def const(self, v: Any, bits: int) -> SInt:
        if isinstance(v, (bool, np.bool_)):
            return SInt(self, bool(v), 1, None, True)
        v = int(v)
        if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
            if bits == 32 and -(1 << 63) <= v < (1 << 63):
                raise BadValueError(f"Python int {v} does not fit the int32 array it is combined with")
            raise BadValueError(f"Python int {v} does not fit a {bits}-bit array")
        if bits > self.width:
            raise _Need64
        return SInt(self, v & self.tr.mask, bits, None)

    def lift(self, v: Any, bits: int = 32) -> SInt:
        if isinstance(v, SInt):
            return v
        if isinstance(v, F32):
            raise BadValueError("a traced binary32 array used as an integer (use xp.i32 or .view)")
        if isinstance(v, (bool, np.bool_)) or _is_int(v):
            return self.const(v, bits)
        raise BadValueError(f"cannot trace operand {v!r}")

    def o(self, *xs: SInt) -> BitOps:
        """Fold when every operand is a constant."""
        return self.tr if any(isinstance(x.w, Ref) for x in xs) else self.py

    @staticmethod
    def _level(*xs: SInt) -> int | None:
        lv = {x.level for x in xs if x.level is not None}
        if len(lv) > 1:
            raise BadValueError("a traced kernel combined an element value with a block value without v[..., None]")
        return lv.pop() if lv else None

    def signed(self, x: SInt) -> int:
        """The value of a constant."""
        return x.w - (1 << self.width) if x.w >> (self.width - 1) else x.w

    def word(self, x: SInt) -> SInt:
        """A bool array as a 0/1 integer array (numpy promotes bool in arithmetic)."""
        if not x.is_mask:
            return x
        return SInt(self, self.o(x).where(x.w, 1, 0), 32, x.level)

    def widen(self, x: SInt, bits: int) -> SInt:
        if bits > self.width:
            raise _Need64
        return SInt(self, x.w, max(bits, x.bits), x.level)

    def wrap(self, x: SInt, bits: int) -> SInt:
        """Two's complement wrap of x to ``bits`` bits, sign-extended to the word."""
        if bits >= self.width:
            return SInt(self, x.w, bits, x.level)
        o, hb = self.o(x), 1 << (bits - 1)
        w = o.sub(o.xor(o.and_(x.w, (1 << bits) - 1), hb), hb)
        return SInt(self, w, bits, x.level)

    def _pair(self, a: Any, b: Any) -> tuple[SInt, SInt, int, int | None]:
        ref = a if isinstance(a, SInt) else b
        bits = ref.bits if isinstance(ref, SInt) and not ref.is_mask else 32
        a, b = self.word(self.lift(a, bits)), self.word(self.lift(b, bits))
        return a, b, max(a.bits, b.bits), self._level(a, b)

    # operations ------------------------------------------------------------------------------------------------------
    @_lazy
    def arith(self, kind: str, a: Any, b: Any) -> SInt:
        a, b, bits, lv = self._pair(a, b)
        r = SInt(self, getattr(self.o(a, b), kind)(a.w, b.w), bits, lv)
        return self.wrap(r, bits) if bits < self.width else r

    @_lazy
    def bitwise(self, kind: str, a: Any, b: Any) -> SInt:
        if isinstance(a, SInt) and isinstance(b, SInt) and a.is_mask and b.is_mask or \
                (isinstance(a, SInt) and a.is_mask and isinstance(b, (bool, np.bool_))) or \
                (isinstance(b, SInt) and b.is_mask and isinstance(a, (bool, np.bool_))):
            a, b = self.lift(a), self.lift(b)
            o = self.o(a, b)
            if kind == "and_":
                w = o.band(a.w, b.w)
            elif kind == "or_":
                w = o.bor(a.w, b.w)
            else:
                w = o.bor(o.band(a.w, o.bnot(b.w)), o.band(o.bnot(a.w), b.w))
            return SInt(self, w, 1, self._level(a, b), True)
        a, b, bits, lv = self._pair(a, b)
        return SInt(self, getattr(self.o(a, b), kind)(a.w, b.w), bits, lv)

    def _count(self, s: Any, bits: int) -> Any:
        if _is_int(s):
            s = int(s)
            if not 0 <= s < bits:
                raise BadValueError(f"shift count {s} outside [0, {bits}) of a {bits}-bit array")
            return s
        return self.word(self.lift(s)).w

    @_lazy
    def shift_left(self, a: Any, s: Any) -> SInt:
        a0 = self.lift(a, s.bits if isinstance(s, SInt) and not isinstance(a, SInt) else 32)
        a0 = self.word(a0)
        lv = self._level(a0, s) if isinstance(s, SInt) else a0.level
        bits = a0.bits
        x = SInt(self, self.o(a0, *(s,) if isinstance(s, SInt) else ()).shl(a0.w, self._count(s, bits)), bits, lv)
        return self.wrap(x, bits) if bits < self.width else x

    def sar(self, x: SInt, cnt: Any, o: BitOps) -> Any:
        sm = o.where(o.uge(x.w, self.sign), self.tr.mask, 0)
        return o.xor(o.shr(o.xor(x.w, sm), cnt), sm)

    @_lazy
    def shift_right(self, a: Any, s: Any) -> SInt:
        a0 = self.word(self.lift(a, s.bits if isinstance(s, SInt) and not isinstance(a, SInt) else 32))
        lv = self._level(a0, s) if isinstance(s, SInt) else a0.level
        o = self.o(a0, *(s,) if isinstance(s, SInt) else ())
        return SInt(self, self.sar(a0, self._count(s, a0.bits), o), a0.bits, lv)

    def _slt(self, a: SInt, b: SInt, o: BitOps) -> Any:
        return o.ult(o.xor(a.w, self.sign), o.xor(b.w, self.sign))

    @_lazy
    def compare(self, kind: str, a: Any, b: Any) -> SInt:
        a, b, _, lv = self._pair(a, b)
        o = self.o(a, b)
        if kind == "eq":
            m = o.eq(a.w, b.w)
        elif kind == "ne":
            m = o.ne(a.w, b.w)
        elif kind == "lt":
            m = self._slt(a, b, o)
        else:
            m = o.bnot(self._slt(b, a, o))
        return SInt(self, m, 1, lv, True)

    @_lazy
    def floordiv(self, a: Any, b: Any) -> SInt:
        a, b, bits, lv = self._pair(a, b)
        o = self.o(a, b)
        na, nb = self._slt(a, self.const(0, bits), o), self._slt(b, self.const(0, bits), o)
        ua, ub = o.where(na, o.sub(0, a.w), a.w), o.where(nb, o.sub(0, b.w), b.w)
        q = o.udiv(ua, ub)
        r = o.sub(ua, o.mul(q, ub))
        neg = o.bor(o.band(na, o.bnot(nb)), o.band(o.bnot(na), nb))
        qn = o.sub(0, o.add(q, o.where(o.ne(r, 0), 1, 0)))
        return self.wrap(SInt(self, o.where(neg, qn, q), bits, lv), bits)

    # the xp shim ---------------------------------------------------------------------------------------------------
    @_lazy
    def where(self, c: Any, a: Any, b: Any) -> SInt:
        c = self.lift(c)
        if not c.is_mask:
            c = self.compare("ne", c, 0)
        a, b, bits, _ = self._pair(a, b)
        lv = self._level(c, a, b)
        return SInt(self, self.o(c, a, b).where(c.w, a.w, b.w), bits, lv)

    @_lazy
    def maximum(self, a: Any, b: Any) -> SInt:
        a, b, _, _ = self._pair(a, b)
        return self.where(self.compare("lt", a, b), b, a)

    @_lazy
    def minimum(self, a: Any, b: Any) -> SInt:
        a, b, _, _ = self._pair(a, b)
        return self.where(self.compare("lt", b, a), b, a)

    @_lazy
    def clip(self, x: Any, lo: int, hi: int) -> SInt:
        return self.minimum(self.maximum(x, lo), hi)

    @_lazy
    def i32(self, x: Any) -> SInt:
        if isinstance(x, F32):
            return x.bits
        return self.wrap(self.word(self.lift(x)), 32)

    @_lazy
    def i64(self, x: Any) -> SInt:
        return self.widen(self.word(self.lift(x, 64)), 64)

    @_lazy
    def u8(self, x: Any) -> SInt:
        x = self.word(self.lift(x))
        return SInt(self, self.o(x).and_(x.w, 0xFF), x.bits, x.level)

    @_lazy
    def pow2(self, e: Any) -> SInt:
        return self.shift_left(self.const(1, 64), self.i64(e))

    @_lazy
    def f32_from_bits(self, i: Any) -> F32:
        return F32(self.i32(i))

    @_lazy
    def to_f32(self, i: Any) -> F32:
        """Exact binary32 of integers 0 <= i < 2^24 (the caller's range)."""
        x = self.i32(i)
        o = self.o(x)
        w = self.width
        lz = o.clz(x.w)
        p = o.sub(w - 1, lz)  # floor(log2 i) for i > 0
        sh = o.where(o.ugt(p, 23), 0, o.sub(23, p))
        frac = o.and_(o.shl(x.w, sh), 0x7FFFFF)
        bits = o.or_(o.shl(o.add(p, 127), 23), frac)
        return F32(SInt(self, o.where(o.eq(x.w, 0), 0, bits), 32, x.level))

    def amax(self, x: Any, axis: int) -> SInt:
        x = self.word(self.lift(x))
        if axis != -1 or x.level != 0:
            raise BadValueError("traced kernels reduce element values over their block only (amax(x, -1))")
        o = self.tr
        return SInt(self, o.xor(o.rmax(o.xor(x.w, self.sign)), self.sign), x.bits, 1)

    def take(self, table: Any, idx: Any) -> Any:
        """``table[idx]`` of a code table, or of a :class:`Deferred` computed from one."""
        if not isinstance(table, Deferred) or not isinstance(idx, SInt):
            raise BadValueError("traced kernels gather from code tables (xp.t.as_tensor) with a traced index")
        return table.at(idx)

    @staticmethod
    def anyof(m: Any) -> bool:
        return True


def trace_xp(fn: Callable[..., Any], inputs: Sequence[tuple[str, int, int]], name: str,
             width: int | None = None) -> Graph:
    """Run ``fn(xp, *arrays)`` once on an :class:`XpTrace` and return its graph.

    ``inputs``: (name, level, bits) per input (level 0 per element, 1 per block; bits 32 or 64 of the signed
    integers it holds).  ``fn`` returns one array or a tuple of them; outputs are stored truncated to their
    memory type by the caller.  The graph has 32-bit words unless the kernel uses int64 arrays (then 64)."""
    widths = (width,) if width is not None else (32, 64)
    for w in widths:
        xt = XpTrace(w)
        try:
            args = [xt.input(level, bits) for _, level, bits in inputs]
            out = fn(xt, *args)
        except _Need64:
            if w == 64:
                raise BadValueError(f"kernel {name!r} needs words wider than 64 bits") from None
            continue
        outs = out if isinstance(out, tuple) else (out,)
        idx = []
        for o in outs:
            if isinstance(o, F32):
                o = o.bits
            if not isinstance(o, SInt) or not isinstance(o.w, Ref):
                raise BadValueError(f"traced kernel {name!r} returned {o!r}, not an array computed from its inputs")
            idx.append(o.w.index)
        return Graph(w, tuple(xt.tr.nodes), tuple(n for n, _, _ in inputs), tuple(idx), name, tuple(xt.levels),
                     tuple(xt.tr.tables))
    raise BadValueError(f"kernel {name!r}: no word width given")  # pragma: no cover


def lane_block_op(graph: Graph, n: Node, ops: BitOps, args: list[Any]) -> Any:
    """The block operations for a block of one element, on any :class:`~refarith.fast.bitops.BitOps` (Z3 words
    included; :func:`refarith.fast.trace.evaluate`'s ``block_op``): the maximum over one lane is that lane's word,
    a block word repeated over the block is itself, a table read is a ``where`` chain over the table, ``udiv``
    the words' unsigned division (numpy or Z3 words)."""
    a = args[0]
    if n.kind in ("rmax", "bcast"):
        return a
    if n.kind == "lut":
        table = graph.tables[n.imm]
        v = ops.const(table[0], a)
        for i in range(1, len(table)):
            v = ops.where(ops.eq(a, ops.const(i, a)), ops.const(table[i], a), v)
        return v
    from refarith.fast.bitops import NumpyBitOps
    from refarith.fast.trace import _block_op

    if isinstance(ops, NumpyBitOps):
        return _block_op(graph, n, ops, args)
    import z3  # the only other words with a division: Z3 bit-vectors (z3 is imported only here)

    if not isinstance(a, z3.BitVecRef):
        raise BadValueError(f"graph {graph.name!r}: udiv of one-element blocks runs on numpy or Z3 words")
    return z3.UDiv(a, args[1])


def cone(graph: Graph, output: int) -> Graph:
    """The graph with only its output number ``output`` (the same nodes: evaluation skips the dead ones)."""
    return replace(graph, outputs=(graph.outputs[output],))


def output_levels(graph: Graph) -> list[int]:
    """Level (0 element, 1 block) of each output of a graph traced by :func:`trace_xp`."""
    lv = node_levels(graph)
    return [0 if lv[o] is None else lv[o] for o in graph.outputs]


def node_levels(graph: Graph) -> list[int | None]:
    """Per node: 0 (element), 1 (block) or None (a constant, or an operation on constants only)."""
    ins = graph.input_levels or (0,) * len(graph.inputs)
    out: list[int | None] = []
    for n in graph.nodes:
        if n.kind == "input":
            out.append(ins[n.imm])
        elif n.kind in ("const", "mconst"):
            out.append(None)
        elif n.kind == "rmax":
            out.append(1)
        elif n.kind == "bcast":
            out.append(0)
        else:
            lv = {out[a] for a in n.args if out[a] is not None}
            if len(lv) > 1:
                raise BadValueError(f"graph {graph.name!r}: node {n} mixes element and block words")
            out.append(lv.pop() if lv else None)
    return out


__all__ = ["F32", "Deferred", "PyBitOps", "SInt", "XpTrace", "cone", "lane_block_op", "node_levels", "output_levels",
           "trace_xp"]
