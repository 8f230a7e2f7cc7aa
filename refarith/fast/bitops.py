"""Abstract fixed-width bit operations, with numpy and torch implementations.

Fast kernels (see :mod:`refarith.fast.castkernel`) are written once against this
interface, so that the same code runs on numpy arrays, on torch tensors (CPU or
GPU) and on Z3 bit-vectors (``refarith.smt.bitops_z3``, used to prove a kernel
equal to the exact model for every input).

Contract (every implementation):

* A *word* is an unsigned integer of ``ops.width`` bits (32 or 64); arithmetic
  wraps around modulo 2^width.  ``ops.mask`` is 2^width - 1.
* ``const(v, like)``: the word v mod 2^width, broadcastable against ``like``
  (a word of the computation; implementations may ignore it except for
  device/shape/sort information).
* ``add, sub, mul``: wrap-around arithmetic on words.
* ``and_, or_, xor, not_``: bitwise operations on words.
* ``shl(a, s), shr(a, s)``: logical shifts; ``s`` is a Python int or a word.
  The CALLER guarantees 0 <= s < width (numpy and x86 mask larger counts,
  Z3 gives 0, so a kernel must clamp shift counts itself).
* ``eq, ne, ult, ule, ugt, uge``: unsigned comparisons giving boolean *masks*.
* ``band, bor, bnot``: logic on masks.
* ``where(mask, a, b)``: select words by a mask.
* ``clz(a)``: number of leading zero bits of a within the width, as a word
  (``width`` for a == 0).
* Derived in :class:`BitOps` from the primitives above (a subclass need not
  define them; numpy and torch override some for speed): ``umin(a, b)``,
  ``umax(a, b)`` (unsigned), ``mtrue(like)`` / ``mfalse(like)`` (constant
  masks), ``clz`` (binary search).  Kernels use nothing else besides
  ``width``.

Kernels written against this interface must keep Python control flow
dependent only on static data (format parameters, mode names), never on word
values, so that a symbolic implementation traces the same computation.
"""

from __future__ import annotations

from typing import Any

from refarith.errors import BadValueError

Word = Any
Mask = Any


class BitOps:
    """Base class: derived operations expressed with the primitive ones."""

    width: int = 32

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    # derived -----------------------------------------------------------------
    def mtrue(self, like: Word) -> Mask:
        return self.eq(like, like)

    def mfalse(self, like: Word) -> Mask:
        return self.ne(like, like)

    def umin(self, a: Word, b: Word) -> Word:
        return self.where(self.ult(a, b), a, b)

    def umax(self, a: Word, b: Word) -> Word:
        return self.where(self.ult(a, b), b, a)

    def clz(self, a: Word) -> Word:
        """Leading zeros by binary search (log2(width) selects)."""
        w = self.width
        n = self.const(0, a)
        x = a
        sh = w // 2
        while sh >= 1:
            top_zero = self.eq(self.shr(x, w - sh), self.const(0, a))
            n = self.where(top_zero, self.add(n, self.const(sh, a)), n)
            x = self.where(top_zero, self.shl(x, sh), x)
            sh //= 2
        # x is now normalized (top bit set) unless a == 0, which has w leading zeros
        return self.where(self.eq(x, self.const(0, a)), self.add(n, self.const(1, a)), n)


def _check_width(width: int) -> None:
    if width not in (32, 64):
        raise BadValueError(f"word width must be 32 or 64, got {width}")


class NumpyBitOps(BitOps):
    """Words are numpy uint32 / uint64 arrays (numpy wraps unsigned arithmetic and shifts logically)."""

    def __init__(self, width: int = 32) -> None:
        import numpy as np

        _check_width(width)
        self.np = np
        self.width = width
        self.dtype = np.uint32 if width == 32 else np.uint64

    def word(self, a: Any) -> Word:
        """Convert an integer array (values already in range) to words (no copy when it already is one)."""
        return self.np.asarray(a, dtype=self.dtype)

    def const(self, v: int, like: Word = None) -> Word:
        return self.dtype(v & self.mask)

    def add(self, a: Word, b: Word) -> Word:
        return self.np.add(a, b, dtype=self.dtype)

    def sub(self, a: Word, b: Word) -> Word:
        return self.np.subtract(a, b, dtype=self.dtype)

    def mul(self, a: Word, b: Word) -> Word:
        return self.np.multiply(a, b, dtype=self.dtype)

    def and_(self, a: Word, b: Word) -> Word:
        return self.np.bitwise_and(a, b, dtype=self.dtype)

    def or_(self, a: Word, b: Word) -> Word:
        return self.np.bitwise_or(a, b, dtype=self.dtype)

    def xor(self, a: Word, b: Word) -> Word:
        return self.np.bitwise_xor(a, b, dtype=self.dtype)

    def not_(self, a: Word) -> Word:
        return self.np.invert(self.word(a))

    def shl(self, a: Word, s: Word | int) -> Word:
        return self.np.left_shift(a, s, dtype=self.dtype)  # a Python int count is cast to the word type

    def shr(self, a: Word, s: Word | int) -> Word:
        return self.np.right_shift(a, s, dtype=self.dtype)

    def eq(self, a: Word, b: Word) -> Mask:
        return self.np.equal(a, b)

    def ne(self, a: Word, b: Word) -> Mask:
        return self.np.not_equal(a, b)

    def ult(self, a: Word, b: Word) -> Mask:
        return self.np.less(a, b)

    def ule(self, a: Word, b: Word) -> Mask:
        return self.np.less_equal(a, b)

    def ugt(self, a: Word, b: Word) -> Mask:
        return self.np.greater(a, b)

    def uge(self, a: Word, b: Word) -> Mask:
        return self.np.greater_equal(a, b)

    def band(self, a: Mask, b: Mask) -> Mask:
        return self.np.logical_and(a, b)

    def bor(self, a: Mask, b: Mask) -> Mask:
        return self.np.logical_or(a, b)

    def bnot(self, a: Mask) -> Mask:
        return self.np.logical_not(a)

    def mtrue(self, like: Word = None) -> Mask:
        return self.np.True_

    def mfalse(self, like: Word = None) -> Mask:
        return self.np.False_

    def where(self, m: Mask, a: Word, b: Word) -> Word:
        return self.np.asarray(self.np.where(m, a, b), dtype=self.dtype)

    def umin(self, a: Word, b: Word) -> Word:
        return self.np.minimum(a, b, dtype=self.dtype)

    def umax(self, a: Word, b: Word) -> Word:
        return self.np.maximum(a, b, dtype=self.dtype)


class TorchBitOps(BitOps):
    """Words are torch int64 tensors holding the unsigned bit pattern.

    width 32: values are kept in [0, 2^32) (masked after every operation that
    can leave the range), so int64 comparisons and arithmetic right shifts are
    the unsigned ones.  width 64: the int64 holds the two's complement pattern;
    unsigned comparisons flip the sign bit first and the logical right shift
    clears the bits an arithmetic shift copies in.
    """

    def __init__(self, width: int = 32, device: Any = None) -> None:
        import torch

        _check_width(width)
        self.torch = torch
        self.width = width
        self.device = device
        self._m = (1 << width) - 1
        self._consts: dict[tuple[int, Any], Word] = {}  # constants are never written in place: shared per device

    @staticmethod
    def _signed64(v: int) -> int:
        v &= (1 << 64) - 1
        return v - (1 << 64) if v >> 63 else v

    def word(self, a: Any) -> Word:
        t = self.torch.as_tensor(a, device=self.device).to(self.torch.int64)
        return t & self._m if self.width == 32 else t

    def const(self, v: int, like: Word = None) -> Word:
        v &= self.mask
        if self.width == 64:
            v = self._signed64(v)
        dev = like.device if hasattr(like, "device") else self.device
        hit = self._consts.get((v, dev))
        if hit is None:
            hit = self._consts[(v, dev)] = self.torch.tensor(v, dtype=self.torch.int64, device=dev)
        return hit

    def _s(self, s: Word | int) -> Word | int:
        return s

    def _fix(self, r: Word) -> Word:
        return r & self._m if self.width == 32 else r

    def add(self, a: Word, b: Word) -> Word:
        return self._fix(a + b)

    def sub(self, a: Word, b: Word) -> Word:
        return self._fix(a - b)

    def mul(self, a: Word, b: Word) -> Word:
        return self._fix(a * b)

    def and_(self, a: Word, b: Word) -> Word:
        return a & b

    def or_(self, a: Word, b: Word) -> Word:
        return a | b

    def xor(self, a: Word, b: Word) -> Word:
        return a ^ b

    def not_(self, a: Word) -> Word:
        return self._fix(~a)

    def shl(self, a: Word, s: Word | int) -> Word:
        return self._fix(self.torch.bitwise_left_shift(a, s))

    def shr(self, a: Word, s: Word | int) -> Word:
        t = self.torch
        if self.width == 32:
            return t.bitwise_right_shift(a, s)
        # logical shift of the 64-bit pattern: shift by one with the sign bit cleared, then by s - 1
        if isinstance(s, int):
            if s == 0:
                return a
            return t.bitwise_right_shift(t.bitwise_right_shift(a, 1) & ((1 << 63) - 1), s - 1)
        one = t.bitwise_right_shift(a, 1) & ((1 << 63) - 1)
        rest = t.bitwise_right_shift(one, t.clamp(s - 1, min=0))
        return t.where(s == 0, a, rest)

    def _flip(self, a: Word) -> Word:
        return a ^ (-(1 << 63)) if self.width == 64 else a

    def eq(self, a: Word, b: Word) -> Mask:
        return a == b

    def ne(self, a: Word, b: Word) -> Mask:
        return a != b

    def ult(self, a: Word, b: Word) -> Mask:
        return self._flip(a) < self._flip(b)

    def ule(self, a: Word, b: Word) -> Mask:
        return self._flip(a) <= self._flip(b)

    def ugt(self, a: Word, b: Word) -> Mask:
        return self._flip(a) > self._flip(b)

    def uge(self, a: Word, b: Word) -> Mask:
        return self._flip(a) >= self._flip(b)

    def band(self, a: Mask, b: Mask) -> Mask:
        return self.torch.logical_and(self._m_(a), self._m_(b))

    def bor(self, a: Mask, b: Mask) -> Mask:
        return self.torch.logical_or(self._m_(a), self._m_(b))

    def bnot(self, a: Mask) -> Mask:
        return self.torch.logical_not(self._m_(a))

    def _m_(self, a: Mask) -> Mask:
        if isinstance(a, bool):
            return self.torch.tensor(a, device=self.device)
        return a

    def mtrue(self, like: Word = None) -> Mask:
        dev = like.device if hasattr(like, "device") else self.device
        return self.torch.tensor(True, device=dev)

    def mfalse(self, like: Word = None) -> Mask:
        dev = like.device if hasattr(like, "device") else self.device
        return self.torch.tensor(False, device=dev)

    def where(self, m: Mask, a: Word, b: Word) -> Word:
        return self.torch.where(m, a, b)

    def umin(self, a: Word, b: Word) -> Word:
        if self.width == 32:
            return self.torch.minimum(a, b)
        return self.where(self.ult(a, b), a, b)

    def umax(self, a: Word, b: Word) -> Word:
        if self.width == 32:
            return self.torch.maximum(a, b)
        return self.where(self.ult(a, b), b, a)


__all__ = ["BitOps", "NumpyBitOps", "TorchBitOps"]
