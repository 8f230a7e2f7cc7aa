"""The Z3 theorems on the traced HiFloat4 block graph (refarith.smt.theorems.tracedhif4) and the graph the Triton
backend emits: one graph.

Expected values come from the exact model (refarith.exact.hif4: the statements' own specs checked against
scale_of / reciprocal / _round_int on sampled inputs, and the counterexamples' replay), never from the kernel.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

z3 = pytest.importorskip("z3", reason="z3 not installed: the theorems cannot run")

from refarith.exact import hif4 as eh  # noqa: E402
from refarith.smt import registry  # noqa: E402
from refarith.smt.theorems import tracedhif4 as th  # noqa: E402


def _digest(res) -> str:
    return res.detail.split("graph ")[1].split()[0]


def _f32(bits: int) -> Fraction:
    return th._f32_value(bits)


def test_hif4_theorems_are_registered_with_their_verdicts():
    """Every registered (graph, part) has its theorem, expected proved, and the mutation check expects a
    counterexample; all within the 30 s budget."""
    reg = registry.load_all()
    names = {f"traced.hif4.{st}_{et}.{p}" for st, et, parts in th.REGISTERED for p in parts}
    assert names <= set(reg) and all(reg[n].expect == registry.PROVED for n in names)
    assert reg["traced.hif4.elem_even_graph_is_not_away"].expect == registry.COUNTEREXAMPLE
    assert all(reg[n].budget <= 30 for n in names)


@pytest.mark.parametrize("ties", ["even", "away"])
def test_the_scale_statement_is_the_exact_models_rule(ties):
    """The FloatingPoint statement of the scale rule, evaluated on concrete unit maxima (the clamps, the E6M2 and
    bfloat16 ties, subnormals and random patterns), gives refarith.exact.hif4.scale_of(bf16(Vmax C7))."""
    rng = random.Random(3)
    pats = [0, 1, 0x00400000, 0x7F7FFFFF, 0x48A80000, 0x48A80001, 0x27000000, 0x26FFFFFF]
    for c in (0, 1, 2, 3, 100, 101, 253, 254):  # unit maxima at and next to 7 S and to the scale ties
        for v in (7 * th._scale_value(c), Fraction(7 * 512, 73) * th._scale_value(c) * Fraction(9, 8)):
            b = th._f32_code(v, "rne")
            pats += [b - 1, b, b + 1]
    pats += [rng.randrange(0x7F800000) for _ in range(40)]
    for p in pats:
        want = eh.scale_of(eh.bf16(_f32(p) * eh.C7), ties)[0]
        got = z3.simplify(th._spec_scale(z3, z3.BitVecVal(p, 32), ties)).as_long()
        assert got == want, hex(p)


@pytest.mark.parametrize("ties", ["even", "away"])
def test_the_element_thresholds_are_the_exact_rounding(ties):
    """Counting the element thresholds |x| reaches gives min(7, _round_int(|x| R 2^(2 - d))) of the exact model,
    on ties, their neighbours and random magnitudes, for sampled scale codes and every d; the level thresholds
    give [|x| R >= 2] and [|x| R >= 4]."""
    rng = random.Random(5)
    thr = th._elem_thresholds(ties)
    t2, t4 = th._level_thresholds()
    for c in (0, 1, 2, 3, 77, 130, 254) + tuple(rng.randrange(255) for _ in range(6)):
        r = eh.reciprocal(th._scale_value(c))
        for d in range(3):
            f = r * Fraction(2) ** (2 - d)
            xs = [th._f32_code((n + Fraction(1, 2)) / f, "rne") + k for n in range(8) for k in (-1, 0, 1)]
            xs += [rng.randrange(th._f32_code(16 / f, "rne")) for _ in range(20)]
            for x in xs:
                q = sum(x >= t for t in thr[c, d])
                assert q == min(7, eh._round_int(_f32(x) * f, ties)), (c, d, hex(x))
        for x in (t2[c] - 1, t2[c], t4[c] - 1, t4[c]):
            assert (x >= t2[c]) == (_f32(x) * r >= 2) and (x >= t4[c]) == (_f32(x) * r >= 4)


def test_a_wrong_element_rounding_gets_a_confirmed_counterexample_on_the_kernels_graph():
    """The element statement can fail: away checked on the elem_ties=even graph gives a lane whose code the exact
    model's element rounding gives differently (registered, expected counterexample); the outcome names the
    digest of the graph hif4_quantize(..., backend="triton") emits."""
    from refarith.fast.hif4 import hif4_quantize_graph

    res = registry.run_one(registry.load_all()["traced.hif4.elem_even_graph_is_not_away"])
    assert res.ok and res.verdict == "counterexample" and res.confirmed is True
    ce = res.counterexample
    assert ce["graph_code"] != ce["exact_code"]
    assert _digest(res) == hif4_quantize_graph("away", "even").digest


@pytest.mark.slow
def test_every_registered_hif4_theorem_is_proved():
    """The registered theorems prove, each naming its graph's digest."""
    from refarith.fast.hif4 import hif4_quantize_graph

    for st, et, parts in th.REGISTERED:
        for p in parts:
            res = registry.run_one(registry.load_all()[f"traced.hif4.{st}_{et}.{p}"])
            assert res.ok and res.verdict == "proved", res.detail
            assert _digest(res) == hif4_quantize_graph(st, et).digest


@pytest.mark.slow
@pytest.mark.parametrize("st,et", th.GRAPHS)
def test_the_unregistered_hif4_parts_are_proved(st, et):
    """The parts left out of the registry for time: the level bits and element-side level words (8 queries)
    and the scale of the other graph; and the scale statement can fail (ties away against the even graph's
    statement, replayed through the exact model)."""
    for p in ("levels", "scale", "elem"):
        if any(p in parts for s, e, parts in th.REGISTERED if (s, e) == (st, et)):
            continue
        out = th.check_levels(st, et, timeout_s=90) if p == "levels" else th._CHECKS[p](st, et)
        assert out.verdict == registry.PROVED, (p, out.detail)
    if st == "away":
        out = th.check_scale(st, et, "even")
        assert out.verdict == registry.COUNTEREXAMPLE and out.confirmed is True
        assert out.counterexample["graph_scale"] != out.counterexample["exact_scale"]
