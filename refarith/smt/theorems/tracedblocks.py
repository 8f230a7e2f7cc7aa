"""Theorems read from the traced block graphs the Triton backend emits (:mod:`refarith.fast.triton_blocks`).

* ``traced.mx_scale.<rule>.<element>`` (Z3, proved), every scale rule (``floor``, ``ceil``, ``even``,
  ``rceil``) and every MX element format: the E8M0 scale output of the graph
  :func:`refarith.fast.triton_blocks.mx_quantize_graph` (the graph whose digest the emitted Triton kernel
  carries; the outcome names it) is the exact scale rule of the block's largest magnitude A, for every block:

  - A a NaN or infinity: 0xFF; A = 0: 0 (e = -127);
  - otherwise clamp(e - emax_elem, -127, 127) + 127 with, k being defined independently of the kernel by
    2^k <= A < 2^(k+1) (binary32 patterns of positive values are ordered as the values;
    :func:`refarith.smt.theorems.blocks._pow2_bits`): e = k (``floor``), k + [A != 2^k] (``ceil``),
    k + [A >= (2 - 2^-p) 2^k] (``even``, p the element's precision: the exact model's threshold, compared as
    the exact integers 2^149 A 2^p and (2^(p+1) - 1) 2^(k+149));
  - ``rceil`` (no emax_elem term): clamp(ceil(log2 d), -127, 127) + 127 for d = RNE_binary32(A / elem_max), and
    0 where d = 0, stated by the rounding boundaries of d (:func:`_rceil_claim`: d <= 2^j iff A / elem_max <=
    2^j + ulp(2^j) / 2), in exact integers; the graph computes d by :func:`refarith.fast.mx.f32_div`.

  The check has three parts.  (1) Structure: the scale output depends on the elements only through one ``rmax``
  node (the block maximum of a word w(x) of each element) and the graph has no block inputs, so the scale is
  F(max_i w(x_i)) for one function F.  (2) Z3: w is a strictly increasing function of |x| (|x| < |y| gives
  w(x) < w(y) unsigned, |x| = |y| gives w(x) = w(y)), so max_i w(x_i) = w(x_j) for an element x_j of largest
  magnitude.  (3) Z3: for every binary32 x, the graph on a one-element block [x] (the block maximum of one lane
  is that lane) gives the rule of A = |x|; that is F(w(x_j)), the scale of any block whose largest magnitude
  is |x_j|.  The hand-emitted reduction of :mod:`refarith.fast.triton_backend` (the maximum of w over the tile
  row, lanes past the block masked to the smallest word) is the one part outside the proof; the tests check it.

The element codes of the same graph (``traced.mx_elem.*``) and the one-level NVFP4 graph's outputs
(``traced.nvfp4_scale.*``, ``traced.nvfp4_elem.*``) are proved in :mod:`refarith.smt.theorems.tracedelems`, which
says what stays tested only.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, prove, theorem

RULES = ("floor", "ceil", "even", "rceil")
ELEMENTS = ("ocp_e4m3", "ocp_e5m2", "ocp_e3m2", "ocp_e2m3", "ocp_e2m1", "int8", "int8_sym")


def _scale_node_parts(graph):
    """(index of the rmax node the scale output reads, the graph of its operand w) after checking the structure
    the theorem relies on (part 1 of the module docstring)."""
    from refarith.errors import BadValueError
    from refarith.fast.xptrace import cone, node_levels

    sc = cone(graph, 0)
    levels = node_levels(graph)  # raises if a node mixed element and block words
    live = sc.live()
    rmax = [i for i, n in enumerate(graph.nodes) if live[i] and n.kind == "rmax"]
    if len(rmax) != 1 or levels[graph.outputs[0]] != 1 or any(lv == 1 for lv in graph.input_levels):
        raise BadValueError(f"graph {graph.name!r}: the scale output does not read one block maximum of its "
                            f"elements only")
    return rmax[0], replace(graph, outputs=(graph.nodes[rmax[0]].args[0],))


def _lane(graph, x):
    """The words of ``graph``'s outputs on the one-element block [x] (x a 32-bit Z3 word), and the Z3 ops."""
    import z3

    from refarith.fast.trace import evaluate
    from refarith.fast.xptrace import lane_block_op
    from refarith.smt.bitops_z3 import Z3BitOps

    ops = Z3BitOps(graph.width)
    word = x if graph.width == 32 else z3.ZeroExt(graph.width - 32, x)
    return evaluate(graph, ops, [word], lane_block_op), ops


WIDE = 300
"""Width of the exact integers 2^149 * v (v a binary32 value, below 2^128) times the small constants of the
``even`` and ``rceil`` statements."""


def _value149(z3, a):
    """2^149 times the value of the non-negative binary32 pattern ``a`` (32-bit vector), as a :data:`WIDE`-bit
    integer: m for a subnormal (exponent field 0), (2^23 + m) 2^(E-1) otherwise (IEEE 754's decoding; the
    pattern of +inf reads as 2^128, the value just above every finite one)."""
    e = z3.ZeroExt(WIDE - 8, z3.Extract(30, 23, a))
    m = z3.ZeroExt(WIDE - 23, z3.Extract(22, 0, a))
    return z3.If(e == 0, m, (m | (1 << 23)) << (e - 1))


def _wide(z3, v: int):
    return z3.BitVecVal(v, WIDE)


def _code(z3, e):
    """The E8M0 code (8-bit vector) of the exponent e (32-bit), clamped to [-127, 127]."""
    e = z3.If(e < -127, z3.BitVecVal(-127, 32), z3.If(e > 127, z3.BitVecVal(127, 32), e))
    return z3.Extract(7, 0, e + 127)


def _expected(z3, a, k, rule: str, fmt):
    """The rule's E8M0 code (8-bit vector) of a finite non-zero amax pattern ``a`` with 2^k <= a < 2^(k+1), for
    the rules stated by the binade alone: ``floor`` k, ``ceil`` k + [A != 2^k], ``even`` k + [A >= (2 - 2^-p)
    2^k] (the exact model's threshold, p the element's precision), each minus emax_elem."""
    from refarith.exact import mx as emx
    from refarith.smt.theorems.blocks import _pow2_bits

    zero, one = z3.BitVecVal(0, 32), z3.BitVecVal(1, 32)
    if rule == "floor":
        bump = zero
    elif rule == "ceil":
        bump = z3.If(a == _pow2_bits(z3, k), zero, one)
    else:  # A 2^p >= (2^(p+1) - 1) 2^k, both sides times 2^149 (k >= -149)
        p = emx._elem_precision(fmt)
        lhs = _value149(z3, a) << p
        rhs = _wide(z3, (1 << (p + 1)) - 1) << z3.ZeroExt(WIDE - 32, k + 149)
        bump = z3.If(z3.UGE(lhs, rhs), one, zero)
    return _code(z3, k + bump - emx.emax_elem(fmt))


def _rceil_claim(z3, a, got, fmt):
    """The ``rceil`` rule for a finite non-zero amax pattern ``a`` and the graph's E8M0 code ``got``, stated by the
    rounding boundaries of d = RNE_binary32(q), q = A / M (M = elem_max): d = 0 iff q <= 2^-150 (the tie rounds
    to the even 0), and then the code is 0; otherwise e = ceil(log2 d) clamped to [-127, 127] and d <= 2^j iff
    q <= B(j) = 2^j + ulp(2^j) / 2 (ulp(2^j) = 2^max(j - 23, -149); the tie rounds to 2^j, whose pattern is even
    for j >= -148), so the code e + 127 satisfies q > B(e - 1) unless e = -127 and q <= B(e) unless e = 127.
    Compared as integers: 2 den 2^149 A against num 2^150 B(j) = num (2^(j+150) + 2^max(j+126, 0))."""
    from refarith.exact import mx as emx

    m = Fraction(emx.elem_max(fmt))
    q2 = _value149(z3, a) * _wide(z3, 2 * m.denominator)

    def bound(j):  # num 2^150 B(j), j a 32-bit exponent in [-128, 126]
        lo = z3.If(j + 126 > 0, j + 126, z3.BitVecVal(0, 32))
        return _wide(z3, m.numerator) * ((_wide(z3, 1) << z3.ZeroExt(WIDE - 32, j + 150))
                                         + (_wide(z3, 1) << z3.ZeroExt(WIDE - 32, lo)))

    e = z3.ZeroExt(24, got) - 127
    dzero = z3.ULE(q2, _wide(z3, m.numerator))
    return z3.If(dzero, got == 0,
                 z3.And(z3.ULE(got, 254), z3.Or(got == 0, z3.UGT(q2, bound(e - 1))),
                        z3.Or(got == 254, z3.ULE(q2, bound(e)))))


def monotone_block_max(graph) -> Outcome | None:
    """Parts 1 and 2 of the module docstring for the scale output (output 0) of a block graph: None when the
    structure holds and its block maximum's operand w is proved strictly increasing in |x|; otherwise the failed
    outcome, naming the graph's digest."""
    import z3

    _, wg = _scale_node_parts(graph)
    x, y = z3.BitVec("x", 32), z3.BitVec("y", 32)
    (wx,), _ = _lane(wg, x)
    (wy,), _ = _lane(wg, y)
    ax, ay = x & 0x7FFFFFFF, y & 0x7FFFFFFF
    mono = z3.And(z3.Implies(z3.ULT(ax, ay), z3.ULT(wx, wy)), z3.Implies(ax == ay, wx == wy))
    out = prove(mono, {"x": x, "y": y}, 20)
    if out.verdict == PROVED:
        return None
    out.detail = (out.detail + " " if out.detail else "") + f"(block maximum operand not monotone) graph {graph.digest}"
    return out


def scale_lane(graph):
    """(x, |x| bits, the scale output's word on the one-element block [x]) for a 32-bit Z3 word x, once
    :func:`monotone_block_max` holds; else its failed outcome."""
    import z3

    from refarith.fast.xptrace import cone

    out = monotone_block_max(graph)
    if out is not None:
        return out
    x = z3.BitVec("x", 32)
    (sx,), _ = _lane(cone(graph, 0), x)
    return x, x & 0x7FFFFFFF, sx


def check_mx_scale(rule: str, element: str, graph=None) -> Outcome:
    """Parts 1-3 of the module docstring for one scale rule and element format; the outcome's detail names the
    graph's digest.  ``graph``: check that block graph against the rule instead of the rule's own (a
    counterexample then names an x whose scale the exact model computes differently)."""
    import z3

    from refarith.exact import mx as emx
    from refarith.fast.triton_blocks import mx_quantize_graph
    from refarith.smt.theorems.blocks import _pow2_bits

    g = mx_quantize_graph(element, rule, "rne") if graph is None else graph
    fmt = emx.mx_element(element)
    lane = scale_lane(g)
    if isinstance(lane, Outcome):
        return lane
    x, a, sx = lane
    k = z3.BitVec("k", 32)
    special = z3.UGE(a, 0x7F800000)
    got = z3.Extract(7, 0, sx)
    variables = {"x": x, "k": k}
    if rule == "rceil":
        variables = {"x": x}
        body = z3.Implies(z3.And(z3.Not(special), a != 0), _rceil_claim(z3, a, got, fmt))
    else:
        in_binade = z3.And(k >= -149, k <= 127, z3.ULE(_pow2_bits(z3, k), a), z3.ULT(a, _pow2_bits(z3, k + 1)))
        body = z3.Implies(z3.And(z3.Not(special), a != 0, in_binade), got == _expected(z3, a, k, rule, fmt))
    claim = z3.And(z3.Implies(special, got == 0xFF), z3.Implies(a == 0, got == 0), body)

    def confirm(m: dict) -> tuple[dict, bool]:
        import numpy as np

        from refarith.fast.bitops import NumpyBitOps
        from refarith.fast.trace import evaluate
        from refarith.formats import get_format

        bits = m["x"] & 0x7FFFFFFF
        ops = NumpyBitOps(g.width)
        s, _ = evaluate(g, ops, [ops.word(np.array([[m["x"]]], dtype=np.uint64))])
        kernel = int(np.asarray(s).reshape(-1)[0]) & 0xFF
        if bits >= 0x7F800000:
            want = emx.E8M0_NAN
        else:
            want = emx.scale_exponent(Fraction(get_format("binary32").finite_value(bits)), fmt, rule) + 127
        return {"x_bits": hex(m["x"]), "graph_scale": kernel, "exact_scale": want}, kernel != want

    res = prove(claim, variables, 25 if rule == "rceil" else 20, confirm)
    res.detail = (res.detail + " " if res.detail else "") + f"graph {g.digest}"
    return res


for _rule in RULES:
    for _el in ELEMENTS:
        theorem(f"traced.mx_scale.{_rule}.{_el}",
                f"the E8M0 scale output of the traced mx_quantize({_el},scale={_rule}) block graph (the emitted "
                f"Triton kernel's) is the exact {_rule} rule of the block's largest magnitude, for every block",
                budget=30, tags=("mx", "blocks", "triton"))(lambda _r=_rule, _e=_el: check_mx_scale(_r, _e))


def _wrong_graph(rule: str, element: str, graph_rule: str) -> Outcome:
    """The ``rule`` statement checked on the graph of ``graph_rule``: a counterexample is expected."""
    from refarith.fast.triton_blocks import mx_quantize_graph

    return check_mx_scale(rule, element, mx_quantize_graph(element, graph_rule, "rne"))


for _rule, _el, _graph in (("floor", "ocp_e4m3", "ceil"), ("rceil", "ocp_e2m1", "even")):
    theorem(f"traced.mx_scale.{_graph}_graph_is_not_{_rule}",
            f"the traced mx_quantize({_el},scale={_graph}) graph is NOT the {_rule} rule: a counterexample, replayed "
            f"through the exact model (the {_rule} statement can fail)", expect=COUNTEREXAMPLE, budget=30,
            tags=("mx", "blocks", "triton"))(lambda _r=_rule, _e=_el, _g=_graph: _wrong_graph(_r, _e, _g))


__all__ = ["ELEMENTS", "RULES", "check_mx_scale", "monotone_block_max", "scale_lane"]
