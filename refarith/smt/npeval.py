"""Evaluate a quantifier-free Z3 bit-vector term on numpy vectors of concrete inputs.

The term is walked as the DAG Z3 holds (each shared node once) and every node
is computed with numpy on uint64 lanes (bit-vectors of at most 64 bits, kept
reduced modulo 2^width) or bool lanes, following the SMT-LIB semantics of the
operator: wrap-around arithmetic, shifts by a count >= the width give 0 (left
and logical right) or the sign fill (arithmetic right), signed comparisons on
two's complement.  Used to run the cast spec encoding on every input of a
16-bit source at once instead of simplifying one substituted term per input.
Operators outside the list below raise :class:`refarith.errors.BadValueError`
(nothing is silently approximated); tests compare the evaluator with
``z3.simplify`` of substituted terms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import z3

from refarith.errors import BadValueError

_U64 = np.uint64


def _mask(w: int) -> np.uint64:
    return _U64((1 << w) - 1)


def _shift_ok(s: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(count clamped below w, whether the count is below w)."""
    ok = s < _U64(w)
    return np.where(ok, s, _U64(0)).astype(_U64), ok


def _to_signed(a: np.ndarray, w: int) -> np.ndarray:
    """Two's complement reading of w-bit lanes, as int64 (w <= 64)."""
    a = np.asarray(a, dtype=_U64)
    if w == 64:
        return a.view(np.int64)
    sign = _U64(1 << (w - 1))
    return (a ^ sign).astype(np.int64) - np.int64(1 << (w - 1))


def evaluate(term: z3.ExprRef, env: Mapping[str, Any]) -> np.ndarray:
    """The value of ``term`` with each free constant named in ``env`` bound to an array (or int) of its values.

    Bit-vector results come back as uint64 arrays (reduced modulo 2^width), booleans as bool arrays; every
    binding broadcasts against the others."""
    vals: dict[int, Any] = {}
    env_arr = {k: np.asarray(v, dtype=_U64) if not isinstance(v, np.ndarray) or v.dtype != bool else v
               for k, v in env.items()}
    stack = [(term, False)]
    with np.errstate(over="ignore"):
        _walk(stack, vals, env_arr)
    return vals[term.get_id()]


def _walk(stack: list, vals: dict[int, Any], env_arr: Mapping[str, Any]) -> None:
    while stack:
        e, ready = stack.pop()
        eid = e.get_id()
        if eid in vals:
            continue
        kids = e.children()
        if not ready:
            stack.append((e, True))
            stack.extend((c, False) for c in kids if c.get_id() not in vals)
            continue
        vals[eid] = _node(e, [vals[c.get_id()] for c in kids], env_arr)


def _width(e: z3.ExprRef) -> int:
    w = e.size()
    if w > 64:
        raise BadValueError(f"bit-vector of {w} bits: the numpy evaluator handles at most 64")
    return w


def _node(e: z3.ExprRef, a: list[Any], env: Mapping[str, Any]) -> Any:  # noqa: C901 (one case per operator)
    k = e.decl().kind()
    if z3.is_bv_value(e):
        return _U64(e.as_long())
    if z3.is_true(e):
        return np.True_
    if z3.is_false(e):
        return np.False_
    if k == z3.Z3_OP_UNINTERPRETED and not a:
        name = e.decl().name()
        if name not in env:
            raise BadValueError(f"free constant {name!r} has no binding")
        v = env[name]
        if z3.is_bv(e):
            return np.asarray(v, dtype=_U64) & _mask(_width(e))
        return np.asarray(v, dtype=bool)
    if k == z3.Z3_OP_ITE:
        return np.where(a[0], a[1], a[2])
    if k == z3.Z3_OP_AND:
        out = a[0]
        for x in a[1:]:
            out = np.logical_and(out, x)
        return out
    if k == z3.Z3_OP_OR:
        out = a[0]
        for x in a[1:]:
            out = np.logical_or(out, x)
        return out
    if k == z3.Z3_OP_NOT:
        return np.logical_not(a[0])
    if k == z3.Z3_OP_XOR:
        return np.logical_xor(a[0], a[1])
    if k == z3.Z3_OP_IMPLIES:
        return np.logical_or(np.logical_not(a[0]), a[1])
    if k == z3.Z3_OP_EQ:
        if len(a) != 2:
            raise BadValueError("n-ary equality")
        return np.equal(a[0], a[1])
    if k == z3.Z3_OP_DISTINCT:
        if len(a) != 2:
            raise BadValueError("n-ary distinct")
        return np.not_equal(a[0], a[1])
    if k in (z3.Z3_OP_ULT, z3.Z3_OP_ULEQ, z3.Z3_OP_UGT, z3.Z3_OP_UGEQ):
        x, y = np.asarray(a[0], dtype=_U64), np.asarray(a[1], dtype=_U64)
        return {z3.Z3_OP_ULT: np.less, z3.Z3_OP_ULEQ: np.less_equal, z3.Z3_OP_UGT: np.greater,
                z3.Z3_OP_UGEQ: np.greater_equal}[k](x, y)
    if k in (z3.Z3_OP_SLT, z3.Z3_OP_SLEQ, z3.Z3_OP_SGT, z3.Z3_OP_SGEQ):
        w = _width(e.arg(0))
        x, y = _to_signed(a[0], w), _to_signed(a[1], w)
        return {z3.Z3_OP_SLT: np.less, z3.Z3_OP_SLEQ: np.less_equal, z3.Z3_OP_SGT: np.greater,
                z3.Z3_OP_SGEQ: np.greater_equal}[k](x, y)
    w = _width(e)
    m = _mask(w)
    if k == z3.Z3_OP_BADD:
        out = a[0]
        for x in a[1:]:
            out = out + x
        return out & m
    if k == z3.Z3_OP_BSUB:
        return (a[0] - a[1]) & m
    if k == z3.Z3_OP_BMUL:
        out = a[0]
        for x in a[1:]:
            out = out * x
        return out & m
    if k == z3.Z3_OP_BNEG:
        return (_U64(0) - a[0]) & m
    if k == z3.Z3_OP_BAND:
        out = a[0]
        for x in a[1:]:
            out = out & x
        return out
    if k == z3.Z3_OP_BOR:
        out = a[0]
        for x in a[1:]:
            out = out | x
        return out
    if k == z3.Z3_OP_BXOR:
        out = a[0]
        for x in a[1:]:
            out = out ^ x
        return out
    if k == z3.Z3_OP_BNOT:
        return (~np.asarray(a[0], dtype=_U64)) & m
    if k in (z3.Z3_OP_BSHL, z3.Z3_OP_BLSHR):
        s, ok = _shift_ok(np.asarray(a[1], dtype=_U64), w)
        x = np.asarray(a[0], dtype=_U64)
        r = (x << s) & m if k == z3.Z3_OP_BSHL else x >> s
        return np.where(ok, r, _U64(0))
    if k == z3.Z3_OP_BASHR:
        s, ok = _shift_ok(np.asarray(a[1], dtype=_U64), w)
        x = _to_signed(a[0], w)
        r = (x >> s.astype(np.int64)).astype(np.int64)
        fill = np.where(x < 0, np.int64(-1), np.int64(0))
        return np.where(ok, r, fill).astype(_U64) & m
    if k == z3.Z3_OP_EXTRACT:
        hi, lo = e.decl().params()
        return (np.asarray(a[0], dtype=_U64) >> _U64(lo)) & _mask(hi - lo + 1)
    if k == z3.Z3_OP_ZERO_EXT:
        return np.asarray(a[0], dtype=_U64)
    if k == z3.Z3_OP_SIGN_EXT:
        wi = _width(e.arg(0))
        return _to_signed(a[0], wi).astype(_U64) & m
    if k == z3.Z3_OP_CONCAT:
        out = _U64(0)
        for x, c in zip(a, e.children()):
            out = (out << _U64(_width(c))) | np.asarray(x, dtype=_U64)
        return out & m
    raise BadValueError(f"the numpy evaluator has no rule for {e.decl().name()}")


__all__ = ["evaluate"]
