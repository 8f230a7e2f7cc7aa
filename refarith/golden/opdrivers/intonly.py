"""Vector drivers of the integer-only nonlinearities of I-ViT and I-BERT.

What one vector is (results are int64 columns: the exact models of the PyTorch variants are unbounded
integers, and every result of these ops fits 64 bits for the stated inputs):

* ``ivit_shift_exp``, ``ibert_exp``: one int16 x <= 0 (the softmax input after subtracting the row maximum;
  x > 0 is outside the op's domain) -> one integer.
* ``ibert_erf``, ``ibert_gelu``: one int16 -> one integer.
* ``ivit_sqrt``, ``ibert_sqrt``: one uint32 -> one integer.
* ``shiftmax``, ``shiftgelu``, ``ibert_softmax``: a row of 8 int8 values -> 8 integers.
* ``ivit_layernorm``, ``ibert_layernorm``: a row of 8 int16 values -> 8 integers.

The 16-bit scalar domains are small enough for exhaustive golden files (every input).
"""

from __future__ import annotations

import random

from refarith.exact import ibert as _ib
from refarith.exact import ivit as _iv
from refarith.formats import get_format
from refarith.golden.drivers import Driver, Operand, register_driver, schema_variants
from refarith.golden.opdrivers import (
    as_backend,
    exact_or_none,
    icode,
    icodes,
    int_boundary_values,
    int_codes,
    ival,
    random_int,
    signed_array,
)
from refarith.golden.opdrivers.integer import int_rows
from refarith.spec import Spec

INT8 = get_format("int8")
INT16 = get_format("int16")
UINT32 = get_format("uint32")
INT64 = get_format("int64")
ROW = 8


def _ivit_n(spec: Spec, default: int) -> int:
    v = spec.param.get("n", "default")
    return default if v == "default" else int(v)


def _scalar(op: str, in_fmt, fn, fast, nonpositive: bool = False, variants=None, doc: str = "") -> None:
    """Register a one-integer -> one-integer op; ``fn(spec, x)`` and ``fast(spec, array)`` compute it."""

    def exact(spec: Spec, ins: tuple[int, ...]) -> tuple[int, ...] | None:
        x = ival(in_fmt, ins[0])
        if nonpositive and x > 0:
            return None
        r = exact_or_none(fn, spec, x)
        c = None if r is None else icode(INT64, r)
        return None if c is None else (c,)

    def run(spec: Spec, inputs: tuple, backend: str) -> tuple:
        x = as_backend(signed_array(inputs[0], in_fmt), backend)
        return (int_codes(fast(spec, x), INT64),)

    def boundary(spec: Spec) -> list[tuple[int, ...]]:
        vals = int_boundary_values(in_fmt, dense=4096)
        squares = set()
        if not in_fmt.signed:
            for k in range(1, 1 << 16, 97):
                for d in (-1, 0, 1):
                    if 0 <= k * k + d <= in_fmt.max:
                        squares.add(k * k + d)
        return [(icode(in_fmt, v),) for v in sorted(set(vals) | squares)]

    def rnd(spec: Spec, n: int, seed: int) -> list[tuple[int, ...]]:
        rng = random.Random(seed)
        return [(random_int(rng, in_fmt),) for _ in range(n)]

    register_driver(Driver(
        op, inputs=lambda s: (Operand("x", in_fmt),), outputs=lambda s: (Operand("y", INT64),), exact=exact,
        boundary=boundary, variant_params=variants or (lambda s: {}), random=rnd, fast=run, doc=doc,
    ))


def _row(op: str, in_fmt, fn, fast, variants=None, doc: str = "") -> None:
    """Register a row op: ROW integers of ``in_fmt`` -> ROW int64 results."""

    def exact(spec: Spec, ins: tuple[int, ...]) -> tuple[int, ...] | None:
        r = exact_or_none(fn, spec, [ival(in_fmt, c) for c in ins])
        return None if r is None else icodes(INT64, r)

    def run(spec: Spec, inputs: tuple, backend: str) -> tuple:
        x = as_backend(signed_array(inputs[0], in_fmt), backend)
        return (int_codes(fast(spec, x), INT64),)

    def rnd(spec: Spec, n: int, seed: int) -> list[tuple[int, ...]]:
        rng = random.Random(seed)
        out = []
        for _ in range(n):
            small = rng.choice((None, 8, 32, 128))
            out.append(tuple(random_int(rng, in_fmt, small) for _ in range(ROW)))
        return out

    register_driver(Driver(
        op, inputs=lambda s: (Operand("x", in_fmt, ROW),), outputs=lambda s: (Operand("y", INT64, ROW),),
        exact=exact, boundary=lambda s: int_rows(in_fmt, ROW, s, op), variant_params=variants or (lambda s: {}),
        random=rnd, fast=run, doc=doc,
    ))


def _fast(name: str):
    def run(*args, **kw):
        from refarith.fast import ibert, ivit

        mod = ivit if hasattr(ivit, name) else ibert
        return getattr(mod, name)(*args, **kw)
    return run


def _var(spec: Spec) -> str:
    return spec.param.get("variant", "ivit_torch")


# ------------------------------------------------------------------ I-ViT
_scalar("ivit_shift_exp", INT16,
        lambda s, x: _iv.shift_exp(x, _iv.x0_int(s.param["scale"], _var(s)),
                                   _ivit_n(s, _iv.SOFTMAX_N[_var(s)]), _var(s)),
        lambda s, x: _fast("shift_exp_array")(x, s.param["scale"], _var(s), _ivit_n(s, _iv.SOFTMAX_N[_var(s)])),
        nonpositive=True, variants=schema_variants, doc="one int16 x <= 0 -> shift-exp integer")
_row("shiftmax", INT8, lambda s, r: _iv.run_spec(s, r),
     lambda s, x: _fast("shiftmax")(x, s.param["scale"], _var(s), _ivit_n(s, _iv.SOFTMAX_N[_var(s)]),
                                    int(s.param["out_bits"])),
     variants=schema_variants, doc="a row of 8 int8 -> Shiftmax integers")
_row("shiftgelu", INT8, lambda s, r: _iv.run_spec(s, r),
     lambda s, x: _fast("shiftgelu")(x, s.param["scale"], _var(s), int(s.param["n"]), int(s.param["out_bits"])),
     variants=schema_variants, doc="a row of 8 int8 -> ShiftGELU integers")
_scalar("ivit_sqrt", UINT32, lambda s, v: _iv.run_spec(s, v),
        lambda s, v: _fast("newton_sqrt")(v, _var(s), int(s.param["iters"])),
        variants=schema_variants, doc="one uint32 -> Newton square root")
_row("ivit_layernorm", INT16, lambda s, r: _iv.run_spec(s, r),
     lambda s, x: _fast("ilayernorm")(x, _var(s)), variants=schema_variants,
     doc="a row of 8 int16 -> I-LayerNorm integers")

# ------------------------------------------------------------------ I-BERT
_scalar("ibert_exp", INT16, lambda s, x: _ib.run_spec(s, x),
        lambda s, x: _fast("i_exp")(x, s.param["scale"], int(s.param["n"])),
        nonpositive=True, doc="one int16 x <= 0 -> i-exp integer")
_scalar("ibert_erf", INT16, lambda s, x: _ib.run_spec(s, x),
        lambda s, x: _fast("i_erf")(x, s.param["scale"]), doc="one int16 -> i-erf integer")
_scalar("ibert_gelu", INT16, lambda s, x: _ib.run_spec(s, x),
        lambda s, x: _fast("i_gelu")(x, s.param["scale"]), doc="one int16 -> i-GELU integer")
_scalar("ibert_sqrt", UINT32, lambda s, v: _ib.run_spec(s, v), lambda s, v: _fast("i_sqrt")(v),
        doc="one uint32 -> i-sqrt")
_row("ibert_softmax", INT8, lambda s, r: _ib.run_spec(s, r),
     lambda s, x: _fast("ibert_softmax")(x, s.param["scale"], int(s.param["n"]), int(s.param["out_bits"]),
                                         int(s.param["act_bits"])), doc="a row of 8 int8 -> softmax integers")
_row("ibert_layernorm", INT16, lambda s, r: _ib.run_spec(s, r),
     lambda s, x: _fast("ibert_layernorm")(x, int(s.param["shift"])), doc="a row of 8 int16 -> LayerNorm integers")
