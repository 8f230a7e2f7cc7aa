"""Floating-point dot products with a stated accumulator format and summation order, exactly.

``fdot(F->A,order=...,product=...,mul=...,rounding=...,overflow=...)`` of code vectors x, y of the
input format F:

* Products: ``mul=exact`` takes the exact product x_i * y_i (IEEE rules: 0 * inf is NaN);
  ``mul=lmul_formula`` / ``mul=lmul_bitwise`` take the exact, unbounded, unrounded L-Mul value of
  :func:`refarith.exact.lmul.exact_value`.  ``product=exact`` (default) keeps the product exact;
  ``product=P`` (a format name, ``mul=exact`` only) rounds it once into P (``rounding``, P's natural
  overflow) and the decoded value is used.
* Accumulation, every addition rounded once into A with round_value(``rounding``, ``overflow``;
  default overflow: A's natural mode) after the exact IEEE sum (exact_add: x - x = +0, -0 under rdn):
  ``order=sequential``: acc = +0; acc = round(acc + p_i) for i = 0, 1, ... (with exact products
  this is a chain of fused multiply-adds).  ``order=pairwise``: sum(p[lo:hi]) = round(sum(p[lo:mid])
  + sum(p[mid:hi])) with mid = lo + (hi - lo) // 2; a single element is round(+0 + p); an empty
  vector is +0.  Leaves enter their first addition unrounded (no double rounding of products).
* A NaN result of an addition is A's canonical NaN (sign 0); an infinite sum into A follows
  round_value (``overflow=saturate`` makes it +-max).

Sources: IEEE 754-2019 (5.4.1 addition, 6.3 zero signs); the orders are the textbook recursive
and pairwise summations (Higham, Accuracy and Stability of Numerical Algorithms, ch. 4).
"""

from __future__ import annotations

from refarith.errors import BadValueError, SpecError, UnknownFormatError
from refarith.exact.ops import decode, exact_add, exact_mul
from refarith.exact.rounding import Rounded, default_overflow, round_value
from refarith.exact.stochastic import rand_list
from refarith.exact.value import Value
from refarith.formats import FloatFormat, get_format
from refarith.spec import SR_PARAMS, OpSchema, Param, Spec, check_sr_params, parse_spec, register_op

ORDERS = ("sequential", "pairwise")
MULS = ("exact", "lmul_formula", "lmul_bitwise")


def products(xs: list[int], ys: list[int], fmt: FloatFormat | str, product: str = "exact", mul: str = "exact",
             rounding: str = "rne") -> list[Value]:
    """The exact (or product-format-rounded) products that enter the accumulation."""
    fmt = get_format(fmt)
    if len(xs) != len(ys):
        raise BadValueError(f"dot product operands differ in length: {len(xs)} vs {len(ys)}")
    if mul not in MULS:
        raise BadValueError(f"unknown product kind mul={mul!r}; expected one of {', '.join(MULS)}")
    out = []
    if mul != "exact":
        from refarith.exact.lmul import exact_value

        if product != "exact":
            raise BadValueError("L-Mul products are exact values; use product=exact")
        return [exact_value(x, y, fmt, mul.removeprefix("lmul_")) for x, y in zip(xs, ys)]
    pfmt = None if product == "exact" else get_format(product)
    for x, y in zip(xs, ys):
        p = exact_mul(decode(x, fmt), decode(y, fmt))
        if pfmt is not None:
            p = decode(round_value(p, pfmt, rounding).code, pfmt)
        out.append(p)
    return out


def _add(a: Value, b: Value, acc: FloatFormat, rounding: str, overflow: str, sr: tuple | None = None) -> Value:
    s = exact_add(a, b, rounding)
    if s.is_nan:
        s = Value.nan(0)
    if sr is not None:  # (iterator over the random integers, k, variant): the next one for this addition
        it, k, variant = sr
        return decode(round_value(s, acc, rounding, overflow, rand=next(it), rand_bits=k, sr_variant=variant).code,
                      acc)
    return decode(round_value(s, acc, rounding, overflow).code, acc)


def additions(n: int, order: str = "sequential") -> int:
    """Number of roundings of :func:`accumulate` for ``n`` products: n sequentially (the first adds to 0), n - 1
    in a pairwise tree (1 for one product)."""
    return n if order == "sequential" else max(n - 1, min(n, 1))


def accumulate(ps: list[Value], acc: FloatFormat | str, order: str = "sequential", rounding: str = "rne",
               overflow: str | None = None, *, rand: list[int] | None = None, rand_bits: int | None = None,
               sr_variant: str = "a") -> Rounded:
    """Sum exact values into ``acc`` in the stated order, one rounding per addition (``rounding="sr"``: addition
    i, in evaluation order, rounded with ``rand[i]``; :func:`additions` says how many)."""
    acc = get_format(acc)
    overflow = overflow or default_overflow(acc)
    if order not in ORDERS:
        raise BadValueError(f"unknown summation order {order!r}; expected one of {', '.join(ORDERS)}")
    sr = None
    if rounding == "sr":
        sr = (iter(rand_list(rand, additions(len(ps), order), rand_bits, "a dot product's accumulator")),
              rand_bits, sr_variant)
    final = "rne" if rounding == "sr" else rounding  # the last rounding is exact: a is a value of acc
    zero = Value.zero(0)
    if not ps:
        return round_value(zero, acc, final, overflow)
    if order == "sequential":
        a = zero
        for p in ps:
            a = _add(a, p, acc, rounding, overflow, sr)
    else:
        def tree(lo: int, hi: int) -> Value:
            if hi - lo == 1:
                return ps[lo]
            mid = lo + (hi - lo) // 2
            return _add(tree(lo, mid), tree(mid, hi), acc, rounding, overflow, sr)

        a = _add(zero, ps[0], acc, rounding, overflow, sr) if len(ps) == 1 else tree(0, len(ps))
    return round_value(a, acc, final, overflow)


def fdot(xs: list[int], ys: list[int], fmt: FloatFormat | str, acc: FloatFormat | str = "binary32",
         order: str = "sequential", product: str = "exact", mul: str = "exact", rounding: str = "rne",
         overflow: str | None = None, *, rand: list[int] | None = None, rand_bits: int | None = None,
         sr_variant: str = "a") -> Rounded:
    """Dot product of two code vectors of ``fmt`` accumulated in ``acc`` (module docstring: every rule).
    ``rounding="sr"`` rounds the accumulator's additions stochastically (:func:`accumulate`); the products are
    then exact (``product=exact``)."""
    if rounding == "sr" and product != "exact":
        raise BadValueError("stochastic rounding applies to the accumulator; use product=exact")
    ps = products(xs, ys, fmt, product, mul, rounding)
    return accumulate(ps, acc, order, rounding, overflow, rand=rand, rand_bits=rand_bits, sr_variant=sr_variant)


def fdot_spec(spec: Spec | str, xs: list[int], ys: list[int], rand: list[int] | None = None) -> Rounded:
    """Evaluate an ``fdot(F->A,...)`` spec on two code vectors (``rounding=sr``: ``rand``, one k-bit integer per
    addition, :func:`additions` of them)."""
    spec = parse_spec(spec)
    if spec.op != "fdot":
        raise BadValueError(f"expected an fdot spec, got {spec}")
    p = spec.param
    sr = dict(rand=rand, rand_bits=int(p["k"]), sr_variant=p.get("sr", "a")) if p["rounding"] == "sr" else {}
    return fdot(xs, ys, spec.fmt(0), spec.fmt(1), p["order"], p["product"], p["mul"], p["rounding"], p["overflow"],
                **sr)


# ------------------------------------------------------------------ spec registration
def _validate(spec: Spec) -> None:
    from refarith.errors import RefarithError
    from refarith.exact.rounding import check_modes

    p = spec.param
    try:
        for i in (0, 1):
            if not isinstance(spec.fmt(i), FloatFormat):
                raise BadValueError(f"fdot formats must be float formats, got {spec.formats[i]}")
        check_modes(spec.fmt(1), p["rounding"], p["overflow"])
        if p["rounding"] == "sr" and p["product"] != "exact":
            raise BadValueError("stochastic rounding applies to the accumulator; use product=exact")
        if p["product"] != "exact":
            pf = get_format(p["product"])
            if not isinstance(pf, FloatFormat) or pf.name != p["product"]:
                raise BadValueError(f"product={p['product']!r} must be 'exact' or a canonical float format name"
                                    + (f" (use {pf.name})" if isinstance(pf, FloatFormat) else ""))
            if p["mul"] != "exact":
                raise BadValueError("L-Mul products are exact values; use product=exact")
        if p["mul"] != "exact":
            from refarith.exact.lmul import check_operand_format

            check_operand_format(spec.fmt(0))
    except UnknownFormatError as e:
        raise SpecError(f"{spec}: {e}") from None
    except RefarithError as e:
        raise SpecError(f"{spec}: {e}") from None
    check_sr_params(spec)


def _acc_overflow(fmts: tuple) -> str:
    return default_overflow(fmts[1])


register_op(OpSchema(
    "fdot", 2,
    (
        Param("order", "sequential", ORDERS, "summation order"),
        Param("product", "exact", None, "exact, or the float format each product is rounded into"),
        Param("mul", "exact", MULS, "exact multiplication or an L-Mul variant"),
        Param("rounding", "rne", ("rne", "rna", "rtz", "rup", "rdn", "sr"),
              "rounding of products and of each addition (sr: the additions only, one random integer each)"),
        Param("overflow", _acc_overflow, ("saturate", "inf", "nan"),
              "accumulator overflow; default: inf if it has inf, else nan if it has NaN, else saturate"),
        *SR_PARAMS,
    ),
    "dot product of two code vectors of the first format, accumulated in the second",
    _validate,
))

__all__ = ["MULS", "ORDERS", "accumulate", "additions", "fdot", "fdot_spec", "products"]
