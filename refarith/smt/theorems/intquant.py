"""Theorems read from the traced INTn quantization graph the Triton backend emits
(:func:`refarith.fast.triton_blocks.int_quantize_graph`, traced from :func:`refarith.fast.intquant.quantize_words`;
each outcome names the graph's digest, which the emitted kernel carries).  Z3, expected *proved*; deterministic
roundings (``rne``, ``rna``; stochastic rounding has the enumeration theorems ``sr.intquant.*``).  The graph is
evaluated on a one-element group: the group words ``hi``, ``lo`` are inputs of the graph, so one lane is the
graph's value for every lane of any group.

* ``traced.int_quant.codes.<scheme>.<clip>.<rounding>.int<N>.s_<domain>``: with the scale node of the graph
  replaced by a free word s, for every finite binary32 x, every finite lo >= 0 and every s of the domain, the
  code output c is clamp(sign(x) round(|x| / s) + z, lower, qmax), z the graph's zero-point output (0 for
  symmetric; for asymmetric the zero-point node is replaced by z = qmin, the zero point of every group whose
  minimum is >= 0: with a free z in [qmin, qmax] Z3 did not finish in 25 s), lower -qmax (symmetric clip) or
  qmin.  round is stated on exact integers, independently of the
  kernel: with |x| = X 2^(Ex - 150), s = S 2^(Es - 150) (IEEE decoding: X the fraction field plus 2^23 unless
  the exponent field is 0, Ex = max(field, 1)) and d = Ex - Es, round(|x| / s) >= t (t >= 1) iff
  2^(d+1) X > (2t - 1) S, or = with the tie going up (``rna``: always; ``rne``: t even), for -1 <= d <= 17; for
  d <= -2 the quotient is below 1/2 (round = 0: X < 2^24 <= 2S) and for d >= 18 at least 2^17 (X >= 2^23 >
  S / 2), beyond every clamp.
* ``traced.int_quant.zero_point.<rounding>.int<N>.s_<domain>`` (asymmetric): the zero-point output is
  clamp(qmin + round(lo / s), qmin, qmax), by the same statement.
* Domains (:data:`SCALE_FRACTIONS`): the normal scales s = 2^e (``pow2``) and s = 1.5 * 2^e (``1.5pow2``), every
  exponent e in [-126, 127]: Z3 decides the graph's 64-bit division by these divisors in seconds; a scale such as
  fl(1/127), whose significand has many bits, did not finish in 25 s, so the codes at other scales are tested
  (against the exact model and the golden files), not proved here.
* Not proved: the scale output itself (:func:`refarith.fast.mx.f32_div` of the group maximum by qmax, and
  :func:`refarith.fast.mx.f32_add_magnitudes` for the asymmetric range): stated against Z3's FloatingPoint
  binary32 division it did not finish in 25 s.  It is the binary32 arithmetic the MX and NVFP4 kernels use, tested
  equal to IEEE float32 on random, boundary and subnormal operands.  The group words are torch integer maxima on
  the host, outside the graph, as the tile layout is.
* ``traced.int_quant.codes_rna_graph_is_not_rne`` (expected counterexample, replayed through the exact model)
  shows the codes statement can fail.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

from refarith.smt.registry import COUNTEREXAMPLE, Outcome, prove, theorem

FINITE = 0x7F800000


def _free(graph, outputs: tuple[int, ...], names: tuple[str, ...]):
    """``graph`` with the nodes of its outputs number ``outputs`` replaced by new block inputs ``names``."""
    from refarith.fast.trace import Node

    nodes = list(graph.nodes)
    for j, o in enumerate(outputs):
        nodes[graph.outputs[o]] = Node("input", (), len(graph.inputs) + j)
    return replace(graph, nodes=tuple(nodes), inputs=(*graph.inputs, *names),
                   input_levels=(*graph.input_levels, *(1,) * len(names)))


def _run(graph, words32):
    """The graph's output words on one lane, the 32-bit Z3 inputs zero-extended to the graph's width."""
    import z3

    from refarith.fast.trace import evaluate
    from refarith.fast.xptrace import lane_block_op
    from refarith.smt.bitops_z3 import Z3BitOps

    ops = Z3BitOps(graph.width)
    ins = [w if w.size() == graph.width else z3.ZeroExt(graph.width - w.size(), w) for w in words32]
    return evaluate(graph, ops, ins, lane_block_op)


def _signed(z3, w, width: int):
    """A graph word holding a small signed integer, as a 64-bit signed vector (the low ``width`` bits)."""
    return z3.SignExt(64 - width, z3.Extract(width - 1, 0, w)) if width < 64 else w


def _decode(z3, a):
    """(X, Ex) of a non-negative finite binary32 pattern (32-bit), 64-bit: value X 2^(Ex - 150)."""
    e = z3.ZeroExt(56, z3.Extract(30, 23, a))
    m = z3.ZeroExt(41, z3.Extract(22, 0, a))
    return z3.If(e == 0, m, m | (1 << 23)), z3.If(e == 0, z3.BitVecVal(1, 64), e)


def _round_ge(z3, xmag, s, rounding: str):
    """ge(t): round(xmag / s) >= t for 64-bit signed t with t <= 2^17, stated on the exact integers (docstring)."""
    xm, ex = _decode(z3, xmag)
    sm, es = _decode(z3, s)
    d = ex - es
    big = z3.BitVecVal(64, 64)
    lhs = xm << z3.If(z3.And(d >= -1, d <= 17), d + 1, big)  # only read for -1 <= d <= 17

    def ge(t):
        rhs = (2 * t - 1) * sm
        tie = z3.BoolVal(True) if rounding == "rna" else (t & 1) == 0
        exact = z3.And(d >= -1, d <= 17, z3.Or(z3.UGT(lhs, rhs), z3.And(lhs == rhs, tie)))
        return z3.Or(t <= 0, d >= 18, exact)

    return ge


def _clamped(z3, c, neg, ge, offset, lower: int, upper: int):
    """c = clamp(v, lower, upper) for v = offset + round (neg False) or offset - round (neg True), from ge."""
    v_ge = z3.If(neg, z3.Not(ge(offset - c + 1)), ge(c - offset))  # v >= c
    v_le = z3.If(neg, ge(offset - c), z3.Not(ge(c - offset + 1)))  # v <= c
    return z3.And(c >= lower, c <= upper, z3.Implies(c > lower, v_ge), z3.Implies(c < upper, v_le))


def _graph(bits: int, scheme: str, clip: str, rounding: str):
    from refarith.fast.triton_blocks import int_quantize_graph

    return int_quantize_graph(bits, scheme, clip, rounding)


def _confirm(bits: int, scheme: str, clip: str, rounding: str, what: str):
    """Replay a counterexample (x, lo, s) through the exact model's rounding of the quotient."""
    import numpy as np

    from refarith.exact.intquant import round_int

    def f32(b: int) -> Fraction:
        return Fraction(float(np.array(b & 0xFFFFFFFF, np.uint32).view(np.float32)))

    def run(m: dict) -> tuple[dict, bool]:
        qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        s = f32(m["s"])
        z = qmin + round_int(f32(m["lo"]) / s, rounding) if scheme == "asymmetric" else 0
        z = max(qmin, min(qmax, z))
        if what == "codes" and scheme == "asymmetric":
            z = (m["z"] + (1 << 31)) % (1 << 32) - (1 << 31)
        if what == "zero_point":
            want = z
        else:
            lower = -qmax if scheme == "symmetric" and clip == "symmetric" else qmin
            want = max(lower, min(qmax, round_int(f32(m["x"]) / s, rounding) + z))
        got = m.get("out")
        got = None if got is None else (got + (1 << 63)) % (1 << 64) - (1 << 63)
        return {"x_bits": hex(m.get("x", 0)), "lo_bits": hex(m["lo"]), "s_bits": hex(m["s"]), "graph": got,
                "exact": want}, got != want

    return run


def check_codes(bits: int, scheme: str, clip: str, rounding: str, what: str = "codes", graph=None,
                frac: int | None = None, zero: int | None = None) -> Outcome:
    """The ``codes`` or ``zero_point`` statement of the module docstring on the graph of the spec (or ``graph``)."""
    import z3

    g = _graph(bits, scheme, clip, rounding) if graph is None else graph
    x, hi, lo, s, zf = (z3.BitVec(n, 32) for n in ("x", "hi", "lo", "s", "z"))
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    pre = z3.And(z3.ULT(x & 0x7FFFFFFF, FINITE), z3.ULT(lo, FINITE), z3.UGT(s, 0), z3.ULT(s, FINITE))
    if what == "codes" and scheme == "asymmetric":  # the zero point free too (its own theorem states it)
        # the zero point is a signed word of the graph's width: sign-extended
        _, z, c = _run(_free(g, (0, 1), ("s", "z")), [x, hi, lo, s, z3.SignExt(g.width - 32, zf)])
        pre = z3.And(pre, zf >= qmin, zf <= qmax) if zero is None else z3.And(pre, zf == zero)
    else:
        _, z, c = _run(_free(g, (0,), ("s",)), [x, hi, lo, s])
    if frac is not None:  # the scales with this fraction field, every exponent
        pre = z3.And(pre, z3.Extract(22, 0, s) == frac, z3.Extract(30, 23, s) != 0)
    zero64 = z3.BitVecVal(0, 64)
    if what == "zero_point":
        out = _signed(z3, z, 32)
        claim = _clamped(z3, out, z3.BoolVal(False), _round_ge(z3, lo, s, rounding), zero64 + qmin, qmin, qmax)
        names = {"lo": lo, "s": s}
    else:
        out = _signed(z3, c, g.width)
        zv = _signed(z3, z, 32) if scheme == "asymmetric" else zero64
        lower = -qmax if scheme == "symmetric" and clip == "symmetric" else qmin
        neg = z3.Extract(31, 31, x) == 1
        claim = _clamped(z3, out, neg, _round_ge(z3, x & 0x7FFFFFFF, s, rounding), zv, lower, qmax)
        names = {"x": x, "lo": lo, "s": s, "z": zf}
    res = prove(z3.Implies(pre, claim), names, 25, _confirm(bits, scheme, clip, rounding, what), {"out": out})
    res.detail = (res.detail + " " if res.detail else "") + f"graph {g.digest}"
    return res


CODES = ((8, "symmetric", "symmetric", "rne"), (4, "symmetric", "full", "rna"), (8, "asymmetric", "symmetric", "rne"))
ZERO_POINTS = ((8, "rne"),)
SCALE_FRACTIONS = (("pow2", 0), ("1.5pow2", 0x400000))
"""The scale domains: every normal binary32 scale with fraction field 0 (2^e) or 0x400000 (1.5 * 2^e)."""

for _tag, _fr in SCALE_FRACTIONS:
    for _b, _sc, _cl, _r in CODES:
        _z = -(1 << (_b - 1)) if _sc == "asymmetric" else None
        theorem(f"traced.int_quant.codes.{_sc}.{_cl}.{_r}.int{_b}{'' if _z is None else '.z_qmin'}.s_{_tag}",
                f"the codes of the traced int_quantize(int{_b},scheme={_sc},clip={_cl},rounding={_r}) graph are the "
                f"exact quotient x / s rounded ({_r}), {'' if _z is None else 'plus the zero point qmin, '}clamped, "
                f"for every finite x and every normal scale s = {'' if _fr == 0 else '1.5 * '}2^e", budget=30,
                tags=("intquant", "triton"))(
            lambda _b=_b, _sc=_sc, _cl=_cl, _r=_r, _fr=_fr, _z=_z: check_codes(_b, _sc, _cl, _r, frac=_fr, zero=_z))
    for _b, _r in ZERO_POINTS:
        theorem(f"traced.int_quant.zero_point.{_r}.int{_b}.s_{_tag}",
                f"the zero point of the traced int_quantize(int{_b},scheme=asymmetric,rounding={_r}) graph is "
                f"clamp(qmin + round(|lo| / s)) exactly, for every finite lo >= 0 and every normal scale "
                f"s = {'' if _fr == 0 else '1.5 * '}2^e", budget=30, tags=("intquant", "triton"))(
            lambda _b=_b, _r=_r, _fr=_fr: check_codes(_b, "asymmetric", "symmetric", _r, "zero_point", frac=_fr))


@theorem("traced.int_quant.codes_rna_graph_is_not_rne",
         "the codes statement for rne checked on the rna graph of int_quantize(int8): a counterexample (a tie), "
         "replayed through the exact model", expect=COUNTEREXAMPLE, budget=30, tags=("intquant", "triton"))
def _rna_is_not_rne() -> Outcome:
    return check_codes(8, "symmetric", "symmetric", "rne", graph=_graph(8, "symmetric", "symmetric", "rna"), frac=0)


__all__ = ["CODES", "SCALE_FRACTIONS", "ZERO_POINTS", "check_codes"]
