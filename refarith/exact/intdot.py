"""Integer dot products with a fixed-width accumulator, summed in sequence order.

``int_dot(a, b)``: acc = init; for i in order: acc = OV(acc + a[i]*b[i]).  Each product is formed exactly (as
in every int8/int16 MAC: the product of two n-bit integers fits in 2n bits); OV is ``wrap`` (two's complement
modulo 2^w, what a plain int32 add does) or ``saturate`` (clamp to [min, max] of the accumulator format after
*each* add, as saturating MAC instructions do).  Under ``saturate`` the result depends on the order; the model
fixes the sequential order 0, 1, ..., K-1.
"""

from __future__ import annotations

from collections.abc import Sequence

from refarith.errors import BadValueError, SpecError, UnknownModeError
from refarith.formats import IntFormat, get_format

OVERFLOW = ("wrap", "saturate")


def _fmt(f: IntFormat | str) -> IntFormat:
    g = get_format(f) if isinstance(f, str) else f
    if getattr(g, "kind", None) != "int":
        raise BadValueError(f"{g} is not an integer format")
    return g


def _wrap(x: int, fmt: IntFormat) -> int:
    m = 1 << fmt.bits
    if fmt.signed:
        return ((x + (m >> 1)) % m) - (m >> 1)
    return x % m


def accumulate(acc: int, term: int, fmt: IntFormat | str, overflow: str = "wrap") -> int:
    """One accumulator step: acc + term, wrapped or saturated to the accumulator format."""
    f = _fmt(fmt)
    s = acc + term
    if overflow == "wrap":
        return _wrap(s, f)
    if overflow == "saturate":
        return min(max(s, f.min), f.max)
    raise UnknownModeError(f"unknown accumulator overflow {overflow!r}; known: wrap, saturate")


def int_dot(a: Sequence[int], b: Sequence[int], in_fmt: IntFormat | str = "int8", acc_fmt: IntFormat | str = "int32",
            overflow: str = "wrap", init: int = 0) -> int:
    """Sequential integer dot product of two equal-length vectors of ``in_fmt`` values into ``acc_fmt``."""
    fi, fa = _fmt(in_fmt), _fmt(acc_fmt)
    if overflow not in OVERFLOW:
        raise UnknownModeError(f"unknown accumulator overflow {overflow!r}; known: wrap, saturate")
    if len(a) != len(b):
        raise BadValueError(f"int_dot: vectors of different lengths {len(a)} and {len(b)}")
    if not fa.min - (1 if fa.symmetric else 0) <= init <= fa.max:
        raise BadValueError(f"int_dot: init {init} does not fit {fa}")
    acc = init
    for x, y in zip(a, b, strict=True):
        for v in (x, y):
            if not isinstance(v, int) or not fi.min <= v <= fi.max:
                raise BadValueError(f"int_dot: input {v!r} outside {fi} range [{fi.min}, {fi.max}]")
        acc = accumulate(acc, x * y, fa, overflow)
    return acc


def max_safe_length(in_fmt: IntFormat | str, acc_fmt: IntFormat | str) -> int:
    """Largest K such that every sum of K products of ``in_fmt`` values fits ``acc_fmt`` (no overflow at any step).

    Every partial sum of k products lies in [k*pmin, k*pmax] (pmin, pmax the extreme products), and the bound is
    attained by repeating the extreme product, so K = min(floor(max/pmax), floor(min/pmin)) (pmin < 0).
    """
    fi, fa = _fmt(in_fmt), _fmt(acc_fmt)
    ends = (fi.min, fi.max)
    prods = [x * y for x in ends for y in ends] + [0]
    pmax, pmin = max(prods), min(prods)
    k = fa.max // pmax if pmax > 0 else None
    if pmin < 0:
        lo = (-fa.min) // (-pmin) if fa.min < 0 else 0
        k = lo if k is None else min(k, lo)
    return k if k is not None else 0


# --------------------------------------------------------------------------- spec op
def _validate(spec) -> None:
    fi, fa = spec.fmt(0), spec.fmt(1)
    if fi.kind != "int" or fa.kind != "int":
        raise SpecError(f"{spec}: int_dot needs integer input and accumulator formats")


def _register() -> None:
    from refarith.spec import OpSchema, Param, register_op

    register_op(OpSchema(
        "int_dot", 2,
        (Param("overflow", "wrap", OVERFLOW, "accumulator overflow: wrap (two's complement) or saturate after "
                                              "each add"),),
        "sequential dot product of two input-format vectors into an accumulator format, exact products",
        _validate,
    ))


_register()


def int_dot_spec(spec: object, a: Sequence[int], b: Sequence[int], init: int = 0) -> int:
    """Evaluate an ``int_dot(IN->ACC,overflow=...)`` spec."""
    from refarith.spec import parse_spec

    sp = parse_spec(spec) if not hasattr(spec, "op") else spec
    if sp.op != "int_dot":
        raise SpecError(f"expected an int_dot spec, got {sp}")
    return int_dot(a, b, sp.fmt(0), sp.fmt(1), sp.param["overflow"], init)
