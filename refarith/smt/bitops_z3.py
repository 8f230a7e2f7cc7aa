"""The bit-operations interface of refarith.fast.bitops on Z3 bit-vectors.

Words are ``z3.BitVecRef`` of ``width`` bits (wrap-around arithmetic, logical
shifts), masks are ``z3.BoolRef``.  Running a kernel written against the
interface with these ops yields the kernel's formula as a Z3 term, which the
cast theorems prove equal to the spec encoding of refarith.smt.encode.

Shifts: SMT-LIB gives 0 for counts >= width, numpy/x86 mask the count; the
interface leaves counts >= width undefined.  With ``strict_shifts=True`` (the
default in proofs) a shift by a symbolic count s returns
``If(s < width, shift, u)`` with a fresh unconstrained word ``u``: a proof
then holds whatever a backend does with an out-of-range count (it may only
happen in a lane the kernel discards), and a counterexample shows such a
count when the kernel relies on one.
"""

from __future__ import annotations

import itertools
from typing import Any

import z3

from refarith.errors import BadValueError
from refarith.fast.bitops import BitOps

_FRESH = itertools.count()

class Z3BitOps(BitOps):
    """Words are z3 bit-vectors of ``width`` bits; masks are z3 booleans."""

    def __init__(self, width: int = 32, strict_shifts: bool = True, share: str | None = None) -> None:
        """``share``: by default every unguarded shift gets a constant of its own, fresh across all instances, so a
        claim relating several traces (a kernel at x and at y, a stochastic kernel and its two neighbours) leaves
        each shift's result independently free.  Traces that appear only in *different conjuncts* of one claim
        (one per setting) may instead name theirs by position under a common ``share`` namespace: for all u,
        (P1(u) and P2(u)) is equivalent to (for all u, P1(u)) and (for all u, P2(u)), and the shared constants
        make such queries several times cheaper for Z3.  Names carry the width, so a 32- and a 64-bit trace in one
        conjunct never share, and SMT-LIB sees one sort per name."""
        if width not in (32, 64):
            raise BadValueError(f"word width must be 32 or 64, got {width}")
        self.width = width
        self.strict_shifts = strict_shifts
        self.share = share
        self.undefined: list[z3.BitVecRef] = []

    def word(self, a: Any) -> z3.BitVecRef:
        """A bit-vector of any width (or an int) as a word: zero-extended or truncated to ``width``."""
        if isinstance(a, int):
            return z3.BitVecVal(a & self.mask, self.width)
        n = a.size()
        if n < self.width:
            return z3.ZeroExt(self.width - n, a)
        if n > self.width:
            return z3.Extract(self.width - 1, 0, a)
        return a

    def const(self, v: int, like: Any = None) -> z3.BitVecRef:
        return z3.BitVecVal(int(v) & self.mask, self.width)

    def _w(self, a: Any) -> z3.BitVecRef:
        return self.const(a) if isinstance(a, int) else a

    def _s(self, s: Any) -> z3.BitVecRef:
        if isinstance(s, int):
            if not 0 <= s < self.width:
                raise BadValueError(f"shift count {s} outside 0..{self.width - 1}")
            return self.const(s)
        return s

    def _guard(self, s: Any, r: z3.BitVecRef) -> z3.BitVecRef:
        if isinstance(s, int) or not self.strict_shifts:
            return r
        s = z3.simplify(s)
        if z3.is_bv_value(s) and s.as_long() < self.width:
            return r
        tag = f"{self.share}_{len(self.undefined)}" if self.share is not None else str(next(_FRESH))
        u = z3.BitVec(f"undefined_shift_w{self.width}_{tag}", self.width)
        self.undefined.append(u)
        return z3.If(z3.ULT(s, self.width), r, u)

    def add(self, a, b):
        return self._w(a) + self._w(b)

    def sub(self, a, b):
        return self._w(a) - self._w(b)

    def mul(self, a, b):
        return self._w(a) * self._w(b)

    def and_(self, a, b):
        return self._w(a) & self._w(b)

    def or_(self, a, b):
        return self._w(a) | self._w(b)

    def xor(self, a, b):
        return self._w(a) ^ self._w(b)

    def not_(self, a):
        return ~self._w(a)

    def shl(self, a, s):
        return self._guard(s, self._w(a) << self._s(s))

    def shr(self, a, s):
        return self._guard(s, z3.LShR(self._w(a), self._s(s)))

    def eq(self, a, b):
        return self._w(a) == self._w(b)

    def ne(self, a, b):
        return self._w(a) != self._w(b)

    def ult(self, a, b):
        return z3.ULT(self._w(a), self._w(b))

    def ule(self, a, b):
        return z3.ULE(self._w(a), self._w(b))

    def ugt(self, a, b):
        return z3.UGT(self._w(a), self._w(b))

    def uge(self, a, b):
        return z3.UGE(self._w(a), self._w(b))

    def band(self, a, b):
        return z3.And(a, b)

    def bor(self, a, b):
        return z3.Or(a, b)

    def bnot(self, a):
        return z3.Not(a)

    def mtrue(self, like: Any = None):
        return z3.BoolVal(True)

    def mfalse(self, like: Any = None):
        return z3.BoolVal(False)

    def where(self, m, a, b):
        if isinstance(m, bool):
            m = z3.BoolVal(m)
        return z3.If(m, self._w(a), self._w(b))


__all__ = ["Z3BitOps"]
