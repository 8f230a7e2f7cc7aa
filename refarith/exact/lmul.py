"""L-Mul: linear-complexity approximate multiplication (Luo & Sun, "Addition is All You Need for
Energy-efficient Language Models", arXiv:2410.00907, 2024), exactly.

For normal operands x = (1 + x_m) 2^x_e, y = (1 + y_m) 2^y_e of a format with m mantissa bits the
paper prints

    L-Mul(x, y) = (-1)^(s_x xor s_y) (1 + x_m + y_m + 2^-l(m)) 2^(x_e + y_e),
    l(m) = m (m <= 3), 3 (m = 4), 4 (m > 4).

Write t = x_m + y_m + 2^-l(m) (0 < t < 3; t is a multiple of 2^-m because l(m) <= m).  Two variants:

* ``formula``: the printed value V = (1 + t) 2^(x_e + y_e), taken exactly and put back into the
  operand format by ONE rounding (:func:`refarith.exact.rounding.round_value`, mode ``rounding``,
  default rne).  For t < 1 the value is on the format's grid (no rounding); for t >= 1,
  1 + t >= 2 is renormalised to ((1 + t)/2) 2^(x_e + y_e + 1), whose last bit (2^-(m+1)) is rounded.
* ``bitwise``: the paper's kernel (its Figure 2: inline PTX on fp32 registers with unsigned 32-bit
  intermediates -- signs split off, the two sign-less bit patterns added as integers, the bias
  subtracted and the offset added, i.e. (bias << m) - 2^(m - l(m)) subtracted (0x3F780000 for
  binary32), the xor of the signs or-ed back in).  A mantissa carry rolls into the exponent field,
  so the value is Mitchell's antilogarithm of the offset log sum: with c = floor(t) in {0, 1, 2},
  V = 2^(x_e + y_e + c) (1 + t - c)  -- on the grid, never rounded.  This is the default variant:
  it is what the paper's kernel computes.
  For t >= 1 this is 2t 2^(x_e + y_e) instead of (1 + t) 2^(x_e + y_e): with rounding=rne the
  variants differ exactly on the mantissa pairs with x_M + y_M + 2^(m - l(m)) > 2^m (fields as
  integers; theorem lmul.formula_bitwise_differ_iff_carry.m1..m7, by enumeration).

Declared behaviour outside the normal x normal case (the same for both variants, in this order):

* NaN operand: the format's canonical NaN carrying the first NaN operand's sign.
* ``subnormals=daz``: a subnormal operand is taken as a zero of its sign (the kernel has no
  implicit-bit logic; the paper defines L-Mul on normal numbers only).
* inf x (zero or subnormal): canonical NaN (sign 0).  inf x nonzero: the infinity of sign
  s_x xor s_y (an infinity is exact: the ``overflow`` mode does not apply to it).
* zero (or subnormal) x finite: zero of sign s_x xor s_y (+0 in formats without -0).
* Exponent overflow (the variant's exact value, or its rounding, exceeds the largest finite value):
  ``overflow`` (saturate -> +-max; inf -> +-inf; nan -> NaN; default: the format's natural mode, as
  for ``cast``), with the IEEE rule of round_value that rtz never overflows to inf/NaN.
* Exponent underflow (|V| < the smallest normal): ``underflow=flush`` (default) gives the zero of
  the result's sign, as an integer-adder kernel with a clamp does; ``underflow=gradual`` rounds V
  into the subnormal range with round_value instead.

Operand formats: any refarith FloatFormat with at least one mantissa bit and subnormals (so that it
has a zero) -- ocp_e4m3, ocp_e5m2, bfloat16, binary32, binary16, parametric ExMy ...; l(m) uses the
format's m.  Everything here is Python ints and Fractions.
"""

from __future__ import annotations

from fractions import Fraction

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact.rounding import Rounded, default_overflow, pow2, round_value
from refarith.exact.value import Value
from refarith.formats import FloatFormat, get_format
from refarith.spec import OpSchema, Param, Spec, parse_spec, register_op

VARIANTS = ("formula", "bitwise")
LMUL_ROUNDINGS = ("rne", "rna", "rtz")
UNDERFLOW_MODES = ("flush", "gradual")
SUBNORMAL_MODES = ("daz",)


def l_of_m(m: int) -> int:
    """The paper's offset exponent l(m): m for m <= 3, 3 for m = 4, 4 for m > 4."""
    if m < 1:
        raise BadValueError(f"L-Mul needs at least one mantissa bit, got m={m}")
    return m if m <= 3 else (3 if m == 4 else 4)


def offset_units(m: int) -> int:
    """2^-l(m) in units of the mantissa's last place 2^-m, i.e. 2^(m - l(m))."""
    return 1 << (m - l_of_m(m))


def significand(mx: int, my: int, m: int, variant: str) -> tuple[int, int]:
    """The variant's result for operands with mantissa fields mx, my and exponents 0.

    Returns (N, k): the exact result value is N * 2^(k - m) with integer N, before rounding/ranges
    (formula: N = 2^m + mx + my + offset, k = 0; bitwise: N = 2^m + (s mod 2^m), k = floor(s / 2^m),
    s = mx + my + offset).  Multiply by 2^(x_e + y_e) for the real operands.
    """
    s = mx + my + offset_units(m)
    if variant == "formula":
        return (1 << m) + s, 0
    if variant == "bitwise":
        return (1 << m) + (s & ((1 << m) - 1)), s >> m
    raise UnknownModeError(f"unknown L-Mul variant {variant!r}; expected one of {', '.join(VARIANTS)}")


def check_operand_format(fmt: FloatFormat) -> None:
    if not isinstance(fmt, FloatFormat):
        raise BadValueError(f"L-Mul operands must be a float format, got {fmt.name}")
    if fmt.mbits < 1:
        raise BadValueError(f"L-Mul needs at least one mantissa bit; {fmt.name} has none")
    if not fmt.subnormals:
        raise BadValueError(f"L-Mul needs a format with a zero (subnormals); {fmt.name} has none")


def _zero_code(fmt: FloatFormat, sign: int) -> int:
    return fmt.sign_mask if (sign and fmt.has_negative_zero) else 0


def _inf_code(fmt: FloatFormat, sign: int) -> int:
    pos, neg = fmt.inf_codes
    return neg if (sign and neg is not None) else pos


def exact_value(x: int, y: int, fmt: FloatFormat | str, variant: str = "bitwise") -> Value:
    """The variant's exact (unrounded, unbounded-range) result as a Value, specials included."""
    fmt = get_format(fmt)
    check_operand_format(fmt)
    sx, ex, mx = fmt.fields(x)
    sy, ey, my = fmt.fields(y)
    sign = sx ^ sy
    nx, ny = fmt.is_nan_code(x), fmt.is_nan_code(y)
    if nx or ny:
        return Value.nan(sx if nx else sy)
    ix, iy = x in fmt.inf_codes, y in fmt.inf_codes
    zx, zy = ex == 0 and not ix, ey == 0 and not iy  # zero or subnormal (daz)
    if ix or iy:
        return Value.nan(0) if (zx or zy) else Value.inf(sign)
    if zx or zy:
        return Value.zero(sign)
    n, k = significand(mx, my, fmt.mbits, variant)
    mag = Fraction(n) * pow2(ex + ey - 2 * fmt.bias + k - fmt.mbits)
    return Value("finite", sign, mag)


def lmul(x: int, y: int, fmt: FloatFormat | str, variant: str = "bitwise", rounding: str = "rne",
         overflow: str | None = None, underflow: str = "flush") -> Rounded:
    """L-Mul of two codes of ``fmt``, result in ``fmt`` (see the module docstring for every rule)."""
    fmt = get_format(fmt)
    check_operand_format(fmt)
    if variant not in VARIANTS:
        raise UnknownModeError(f"unknown L-Mul variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    if rounding not in LMUL_ROUNDINGS:
        raise UnknownModeError(f"L-Mul rounding {rounding!r} not supported; expected one of "
                               f"{', '.join(LMUL_ROUNDINGS)}")
    if underflow not in UNDERFLOW_MODES:
        raise UnknownModeError(f"unknown underflow mode {underflow!r}; expected one of {', '.join(UNDERFLOW_MODES)}")
    if overflow is None:
        overflow = default_overflow(fmt)
    v = exact_value(x, y, fmt, variant)
    if v.is_nan:
        return Rounded(fmt.nan_code_with_sign(v.sign))
    if v.is_inf:
        return Rounded(_inf_code(fmt, v.sign))
    if v.is_zero:
        return Rounded(_zero_code(fmt, v.sign))
    if v.mag < fmt.min_normal and underflow == "flush":
        return Rounded(_zero_code(fmt, v.sign), frozenset({"inexact", "underflow"}))
    return round_value(v, fmt, rounding, overflow)


def lmul_spec(spec: Spec | str, x: int, y: int) -> Rounded:
    """Evaluate an ``lmul(F,...)`` spec on two codes."""
    spec = parse_spec(spec)
    if spec.op != "lmul":
        raise BadValueError(f"expected an lmul spec, got {spec}")
    p = spec.param
    return lmul(x, y, spec.fmt(0), p["variant"], p.get("rounding", "rne"), p["overflow"], p["underflow"])


# ------------------------------------------------------------------ dot product
def lmul_dot(xs: list[int], ys: list[int], fmt: FloatFormat | str, acc: FloatFormat | str = "binary32",
             variant: str = "bitwise", order: str = "sequential") -> Rounded:
    """L-Mul dot product accumulated in ``acc``: the spec ``fdot(fmt->acc,order=...,mul=lmul_<variant>)``.

    Each product is the variant's exact value (:func:`exact_value`: unbounded exponent, unrounded),
    added to the accumulator with one rounding into ``acc`` per addition (see
    :mod:`refarith.exact.fdot`).
    """
    from refarith.exact.fdot import fdot

    return fdot(xs, ys, fmt, acc, order=order, mul=f"lmul_{variant}")


# ------------------------------------------------------------------ spec registration
def _lmul_validate(spec: Spec) -> None:
    from refarith.errors import RefarithError, SpecError
    from refarith.exact.rounding import check_modes

    try:
        fmt = spec.fmt(0)
        check_operand_format(fmt)
        check_modes(fmt, "rne", spec.param["overflow"])
    except RefarithError as e:
        raise SpecError(f"{spec}: {e}") from None


def _default_overflow0(fmts: tuple) -> str:
    return default_overflow(fmts[0])


register_op(OpSchema(
    "lmul", 1,
    (
        Param("variant", "bitwise", VARIANTS, "formula: printed formula rounded once; bitwise: the paper's "
              "integer-add kernel (default: what the paper's kernel computes)"),
        Param("rounding", "rne", LMUL_ROUNDINGS, "rounding of the formula variant's renormalised result "
              "(bitwise results are on the grid)"),
        Param("overflow", _default_overflow0, ("saturate", "inf", "nan"),
              "exponent overflow; default: inf if the format has inf, else nan if it has NaN, else saturate"),
        Param("underflow", "flush", UNDERFLOW_MODES, "results below the smallest normal: flush to signed zero, "
              "or gradual (rounded to a subnormal)"),
        Param("subnormals", "daz", SUBNORMAL_MODES, "subnormal operands are taken as signed zeros"),
    ),
    "L-Mul approximate product of two codes of the format (Luo & Sun 2024)",
    _lmul_validate,
))

__all__ = ["LMUL_ROUNDINGS", "UNDERFLOW_MODES", "VARIANTS", "exact_value", "l_of_m", "lmul", "lmul_dot", "lmul_spec",
           "offset_units", "significand"]
