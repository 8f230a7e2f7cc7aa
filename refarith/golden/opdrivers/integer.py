"""Vector drivers of the integer ops: requantization, gemmlowp fixed point, TFLite softmax, integer dot products.

What one vector is:

* ``requantize(A->B,variant=...)``: an accumulator (format A, default int32), a positive binary32 scale and a
  zero point (format B) -> the requantized code (format B).  The variant derives its integer multiplier from
  the scale (TFLite QuantizeMultiplier or the HAWQ-V3 dyadic pair), so a kernel that takes (M, shift) is wrapped
  by the caller with its own QuantizeMultiplier; a scale that the variant rejects (zero, negative, too large
  for its multiplier) is outside the spec's domain.
* ``gemmlowp_*``: one int32 raw -> one int32 raw.
* ``tflite_softmax``: a row of 8 int8 values -> 8 int8 values.
* ``int_dot(A->B)``: two vectors of 8 values of A -> one accumulator of B.
"""

from __future__ import annotations

import random

import numpy as np

from refarith.errors import SpecError
from refarith.exact import fixedpoint as _fx
from refarith.exact import intdot as _idot
from refarith.exact import requant as _rq
from refarith.formats import get_format
from refarith.golden.drivers import Driver, Operand, register_driver, schema_variants
from refarith.golden.opdrivers import (
    F32,
    as_backend,
    exact_or_none,
    f32_code,
    fixed_rng,
    icode,
    icodes,
    int_boundary_values,
    int_codes,
    ival,
    random_f32,
    random_int,
    signed_array,
    to_numpy,
)
from refarith.spec import Spec

INT32 = get_format("int32")
INT8 = get_format("int8")


def _formats(spec: Spec, default: tuple[str, str]):
    return (spec.fmt(0), spec.fmt(1)) if spec.formats else (get_format(default[0]), get_format(default[1]))


# ------------------------------------------------------------------ requantize
def _rq_exact(spec: Spec, ins: tuple[int, ...]) -> tuple[int, ...] | None:
    a_fmt, o_fmt = _formats(spec, ("int32", "int8"))
    if not F32.is_finite_code(ins[1]):
        return None
    scale = F32.finite_value(ins[1])
    if scale <= 0:
        return None
    r = exact_or_none(_rq.requantize_spec, spec, ival(a_fmt, ins[0]), scale, ival(o_fmt, ins[2]))
    return None if r is None else (icode(o_fmt, r),)


def _rq_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast import requant

    a_fmt, o_fmt = _formats(spec, ("int32", "int8"))
    variant = spec.param["variant"]
    acc = signed_array(to_numpy(inputs[0]), a_fmt)
    sc = to_numpy(inputs[1]).astype(np.int64)
    zp = signed_array(to_numpy(inputs[2]), o_fmt)
    if backend == "triton":  # one launch, the multiplier pair of each vector's scale derived as below
        from refarith.fast import triton_blocks as tbk

        pairs = {s: _rq.multiplier_for(F32.finite_value(s), variant) for s in set(sc.tolist())}
        m, sh = (np.array([pairs[s][j] for s in sc.tolist()], dtype=np.int64) for j in (0, 1))
        a, mm, ss, z = (tbk.like_device(v, inputs[0]) for v in (acc, m, sh, zp))
        out = tbk.requantize(a, mm, ss, variant, z, o_fmt.min, o_fmt.max)
        return (int_codes(to_numpy(out).astype(np.int64), o_fmt),)
    out = np.empty(acc.shape[0], dtype=np.int64)
    # The multiplier pair is derived once per (scale, zero point), as a deployed kernel does per tensor.
    keys = np.stack([sc, zp], axis=1)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    for j, (s, z) in enumerate(uniq.tolist()):
        sel = np.nonzero(inv.reshape(-1) == j)[0]
        m, sh = _rq.multiplier_for(F32.finite_value(int(s)), variant)
        a = as_backend(acc[sel], backend)
        mm = as_backend(np.full(sel.size, m, dtype=np.int64), backend)
        ss = as_backend(np.full(sel.size, sh, dtype=np.int64), backend)
        out[sel] = to_numpy(requant.requantize(a, mm, ss, variant, int(z), o_fmt.min, o_fmt.max)).astype(np.int64)
    return (int_codes(out, o_fmt),)


_SCALES = [2.0 ** -k for k in range(0, 32)] + [0.5 * (1 + 2.0 ** -23), 0.75, 1 / 3, 0.1, 0.0123, 0.9999999,
                                               2.0 ** -31 * 1.5, 3e-10, 0.0078125 * 1.000001]


def _rq_boundary(spec: Spec) -> list[tuple[int, ...]]:
    a_fmt, o_fmt = _formats(spec, ("int32", "int8"))
    accs = int_boundary_values(a_fmt, dense=8)
    scales = sorted({f32_code(_f32(s)) for s in _SCALES})
    zps = sorted({icode(o_fmt, z) for z in (0, o_fmt.min, o_fmt.max, 3) if icode(o_fmt, z) is not None})
    return [(icode(a_fmt, a), s, z) for a in accs for s in scales for z in zps[:2]] + \
           [(icode(a_fmt, a), s, z) for a in accs[::7] for s in scales[::3] for z in zps[2:]]


def _f32(x: float):
    from fractions import Fraction

    return Fraction(float(np.float32(x)))


def _rq_random(spec: Spec, n: int, seed: int) -> list[tuple[int, ...]]:
    a_fmt, o_fmt = _formats(spec, ("int32", "int8"))
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        acc = random_int(rng, a_fmt, None if rng.random() < 0.5 else 1 << rng.randint(4, 20))
        scale = random_f32(rng, rng.randint(-30, -1), spread=0, p_zero=0.0) & 0x7FFFFFFF
        zp = random_int(rng, o_fmt, None if rng.random() < 0.3 else 4)
        out.append((acc, scale, zp))
    return out


register_driver(Driver(
    "requantize",
    inputs=lambda s: (Operand("acc", _formats(s, ("int32", "int8"))[0]), Operand("scale", F32),
                      Operand("zero_point", _formats(s, ("int32", "int8"))[1])),
    outputs=lambda s: (Operand("y", _formats(s, ("int32", "int8"))[1]),),
    exact=_rq_exact,
    boundary=_rq_boundary,
    variant_params=schema_variants,
    random=_rq_random,
    fast=_rq_fast,
    backends=("numpy", "torch", "triton"),
    doc="accumulator, binary32 scale, zero point -> requantized code",
))


# ------------------------------------------------------------------ gemmlowp fixed point (one raw)
def _fx_exact(spec: Spec, ins: tuple[int, ...]) -> tuple[int, ...] | None:
    r = exact_or_none(_fx.apply_spec, spec, ival(INT32, ins[0]))
    return None if r is None else (icode(INT32, r),)


_FX_FAST = {"gemmlowp_exp": "exp_on_negative_values", "gemmlowp_logistic": "logistic", "gemmlowp_tanh": "tanh",
            "gemmlowp_one_over_one_plus_x": "one_over_one_plus_x_for_x_in_0_1",
            "gemmlowp_one_minus_x_over_one_plus_x": "one_minus_x_over_one_plus_x_for_x_in_0_1"}


def _fx_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast import fixedpoint

    fn = getattr(fixedpoint, _FX_FAST[spec.op])
    x = as_backend(signed_array(inputs[0], INT32), backend)
    r = fn(x, int(spec.param["integer_bits"])) if "integer_bits" in spec.param else fn(x)
    return (int_codes(r, INT32),)


def _fx_boundary(spec: Spec) -> list[tuple[int, ...]]:
    vals = set(int_boundary_values(INT32, dense=256))
    ib = int(spec.param.get("integer_bits", "0"))
    one = 1 << (31 - ib)  # the raw of 1.0
    for k in range(-64, 65):  # quarter points and their neighbours: the exp range reduction's thresholds
        for d in (-1, 0, 1):
            v = k * (one >> 2) + d
            if INT32.min <= v <= INT32.max:
                vals.add(v)
    return [(icode(INT32, v),) for v in sorted(vals)]


def _fx_random(spec: Spec, n: int, seed: int) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    return [(random_int(rng, INT32, None if rng.random() < 0.5 else 1 << rng.randint(8, 31)),) for _ in range(n)]


for _op in _FX_FAST:
    register_driver(Driver(
        _op,
        inputs=lambda s: (Operand("x", INT32),),
        outputs=lambda s: (Operand("y", INT32),),
        exact=_fx_exact,
        boundary=_fx_boundary,
        random=_fx_random,
        fast=_fx_fast,
        doc="one int32 raw -> one int32 raw",
    ))


# ------------------------------------------------------------------ TFLite integer softmax (a row of 8 int8)
ROW = 8


def _sm_exact(spec: Spec, ins: tuple[int, ...]) -> tuple[int, ...] | None:
    r = exact_or_none(_fx.apply_spec, spec, [ival(INT8, c) for c in ins])
    return None if r is None else icodes(INT8, r)


def _sm_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast import fixedpoint

    p = spec.param
    x = as_backend(signed_array(inputs[0], INT8), backend)
    r = fixedpoint.softmax_int8(x, int(p["multiplier"]), int(p["left_shift"]), int(p["diff_min"]))
    return (int_codes(r, INT8),)


def int_rows(fmt, width: int, spec: Spec, salt: str, n: int = 600) -> list[tuple[int, ...]]:
    """Boundary rows of integers: constant rows at the extremes, one element at an extreme, ramps, and rows
    built from the boundary values (seeded)."""
    rng = fixed_rng(spec, salt)
    vals = int_boundary_values(fmt, dense=16)
    rows = [tuple(icode(fmt, v) for v in [x] * width) for x in (fmt.min, fmt.max, 0, -1, 1) if fmt.min <= x]
    for x in (fmt.min, fmt.max, 0):
        for y in (fmt.min, fmt.max, 0, 1, -1):
            if fmt.min <= y:
                rows.append(tuple(icode(fmt, v) for v in [x] + [y] * (width - 1)))
    for step in (1, 2, 3, 5, 8, 13, 16, 32):
        rows.append(tuple(icode(fmt, max(fmt.min, min(fmt.max, -i * step))) for i in range(width)))
    while len(rows) < n:
        rows.append(tuple(icode(fmt, rng.choice(vals)) for _ in range(width)))
    return rows


register_driver(Driver(
    "tflite_softmax",
    inputs=lambda s: (Operand("x", INT8, ROW),),
    outputs=lambda s: (Operand("y", INT8, ROW),),
    exact=_sm_exact,
    boundary=lambda s: int_rows(INT8, ROW, s, "tflite_softmax"),
    random=lambda s, n, seed: _rows_random(INT8, ROW, n, seed),
    fast=_sm_fast,
    doc="a row of 8 int8 -> 8 int8",
))


def _rows_random(fmt, width: int, n: int, seed: int, small: int | None = None) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    return [tuple(random_int(rng, fmt, small) for _ in range(width)) for _ in range(n)]


# ------------------------------------------------------------------ integer dot products
DOT = 8


def _dot_exact(spec: Spec, ins: tuple[int, ...]) -> tuple[int, ...] | None:
    a_fmt, acc_fmt = spec.fmt(0), spec.fmt(1)
    a = [ival(a_fmt, c) for c in ins[:DOT]]
    b = [ival(a_fmt, c) for c in ins[DOT:]]
    r = exact_or_none(_idot.int_dot_spec, spec, a, b)
    return None if r is None else (icode(acc_fmt, r),)


def _dot_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast import intdot

    a_fmt, acc_fmt = spec.fmt(0), spec.fmt(1)
    a = as_backend(signed_array(inputs[0], a_fmt), backend)
    b = as_backend(signed_array(inputs[1], a_fmt), backend)
    r = intdot.int_dot(a, b, a_fmt, acc_fmt, spec.param["overflow"])
    return (int_codes(r, acc_fmt),)


def _dot_boundary(spec: Spec) -> list[tuple[int, ...]]:
    f = spec.fmt(0)
    rows = int_rows(f, DOT, spec, "int_dot", n=200)
    ext = [icode(f, f.min), icode(f, f.max)]
    out = [a + b for a in rows[:40] for b in rows[:40]]
    out += [tuple([x] * DOT) + tuple([y] * DOT) for x in ext for y in ext]
    return out


def _dot_validate(spec: Spec) -> None:
    if spec.fmt(0).kind != "int" or spec.fmt(1).kind != "int":
        raise SpecError(f"{spec}: int_dot needs integer formats")


register_driver(Driver(
    "int_dot",
    inputs=lambda s: (Operand("a", s.fmt(0), DOT), Operand("b", s.fmt(0), DOT)),
    outputs=lambda s: (Operand("acc", s.fmt(1)),),
    exact=_dot_exact,
    boundary=_dot_boundary,
    variant_params=schema_variants,
    random=lambda s, n, seed: _rows_random(s.fmt(0), 2 * DOT, n, seed),
    fast=_dot_fast,
    doc="two vectors of 8 integers -> one accumulator",
))
