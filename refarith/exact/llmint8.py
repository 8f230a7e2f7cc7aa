"""LLM.int8() vector-wise quantized matrix multiplication with outlier decomposition, exactly.

Source: Dettmers et al., "LLM.int8(): 8-bit Matrix Multiplication for
Transformers at Scale" (NeurIPS 2022), sections 3.1-3.2.  Inputs X (m x k) and
W (k x n) are binary16 (fp16) matrices.

* Outlier feature dimensions: O = { j : |X[i][j]| >= threshold for some row i }
  (threshold 6.0 in the paper, a parameter).  Those columns of X and rows of W
  are multiplied in 16-bit: binary16 operands, products and sums exact, one
  final rounding (below) — an fp16 GEMM with exact accumulation.
* The other dimensions: row-wise absmax a_i of X, column-wise absmax b_j of W
  (over the non-outlier dimensions); codes q = RNE(127 * x / absmax), an exact
  quotient rounded once to nearest even (|q| <= 127; an all-zero row/column
  has codes 0); C = sum_k qx[i,k] * qw[k,j] accumulated in int32
  (``accumulate=int32``: two's complement wrap-around, as the hardware; the
  theorem ``llmint8_int32_exact_*`` proves no wrap for k below the bound) or
  exactly (``accumulate=exact``).
* Output: RNE binary16 of C * a_i * b_j / 127^2 + (outlier part), the exact sum
  rounded once (binary16 overflow to inf).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from refarith.errors import BadValueError, SpecError, UnknownModeError
from refarith.exact.intquant import round_int
from refarith.exact.rounding import round_value
from refarith.exact.value import Value
from refarith.spec import OpSchema, Param, Spec, make_spec, register_op

ACCUMULATE = ("int32", "exact")
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def wrap_int32(v: int) -> int:
    """Two's complement wrap-around of an integer into int32."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def quantize_vector(xs: list[Fraction]) -> tuple[Fraction, list[int]]:
    """(absmax, codes RNE(127 x / absmax)) of one row or column."""
    a = max((abs(x) for x in xs), default=Fraction(0))
    if a == 0:
        return a, [0 for _ in xs]
    return a, [round_int(127 * x / a, "rne") for x in xs]


@dataclass(frozen=True)
class Int8Matmul:
    """Result of the decomposition: outlier dimensions, scales, int32 accumulators and binary16 output codes."""

    outliers: tuple[int, ...]
    row_absmax: tuple[Fraction, ...]
    col_absmax: tuple[Fraction, ...]
    acc: tuple[tuple[int, ...], ...]
    out: tuple[tuple[int, ...], ...]


def _f16(v) -> Fraction:
    from refarith.exact.value import parse_value
    from refarith.formats import get_format

    pv = parse_value(v)
    if not pv.is_finite:
        raise BadValueError(f"LLM.int8() operands must be finite, got {v!r}")
    x = pv.fraction
    code = round_value(Value.of(x), "binary16", "rne", "saturate").code
    if get_format("binary16").finite_value(code) != x:
        raise BadValueError(f"{v!r} is not a binary16 value")
    return x


def matmul(x: list[list], w: list[list], threshold: Fraction | float = 6, accumulate: str = "int32") -> Int8Matmul:
    """LLM.int8() product of binary16 matrices given as nested lists of numbers (see the module docstring)."""
    if accumulate not in ACCUMULATE:
        raise UnknownModeError(f"unknown accumulation {accumulate!r}; expected one of {', '.join(ACCUMULATE)}")
    m, k = len(x), len(x[0]) if x else 0
    if len(w) != k:
        raise BadValueError(f"inner dimensions differ: X is {m}x{k}, W has {len(w)} rows")
    n = len(w[0]) if w else 0
    X = [[_f16(v) for v in row] for row in x]
    W = [[_f16(v) for v in row] for row in w]
    t = Fraction(threshold)
    outl = tuple(j for j in range(k) if any(abs(X[i][j]) >= t for i in range(m)))
    keep = [j for j in range(k) if j not in set(outl)]
    rows = [quantize_vector([X[i][j] for j in keep]) for i in range(m)]
    cols = [quantize_vector([W[j][c] for j in keep]) for c in range(n)]
    acc, out = [], []
    for i in range(m):
        arow, orow = [], []
        for c in range(n):
            s = sum(qa * qb for qa, qb in zip(rows[i][1], cols[c][1]))
            if accumulate == "int32":
                s = wrap_int32(s)
            arow.append(s)
            v = Fraction(s) * rows[i][0] * cols[c][0] / (127 * 127)
            v += sum((X[i][j] * W[j][c] for j in outl), Fraction(0))
            orow.append(round_value(Value.of(v), "binary16", "rne").code)
        acc.append(tuple(arow))
        out.append(tuple(orow))
    return Int8Matmul(outl, tuple(r[0] for r in rows), tuple(c[0] for c in cols), tuple(acc), tuple(out))


def max_inner_dim(clip: str) -> int:
    """Largest K for which K products of int8 codes cannot leave int32: symmetric clipping |q| <= 127 gives
    floor((2^31-1)/127^2) = 133144; full range (-128 allowed) gives floor((2^31-1)/128^2) = 131071."""
    if clip == "symmetric":
        return INT32_MAX // (127 * 127)
    if clip == "full":
        return INT32_MAX // (128 * 128)
    raise UnknownModeError(f"unknown clip {clip!r}; expected symmetric or full")


def llmint8_spec(threshold: str = "6", accumulate: str = "int32") -> Spec:
    """Canonical id, e.g. ``llmint8_matmul(binary16,threshold=6,accumulate=int32)``."""
    return make_spec("llmint8_matmul", ("binary16",), threshold=threshold, accumulate=accumulate)


def _validate(spec: Spec) -> None:
    if spec.formats[0] != "binary16":
        raise SpecError(f"{spec}: LLM.int8() operands are binary16")
    try:
        Fraction(spec.param["threshold"])
    except ValueError:
        raise SpecError(f"{spec}: threshold must be a number") from None


register_op(OpSchema(
    "llmint8_matmul", 1,
    (
        Param("threshold", "6", None, "outlier threshold on |x| (6.0 in the paper)"),
        Param("accumulate", "int32", ACCUMULATE, "int32 wrap-around accumulation, or exact"),
    ),
    "LLM.int8(): vector-wise absmax int8 GEMM (int32 accumulation) + fp16 outlier columns, one fp16 rounding",
    _validate,
))
