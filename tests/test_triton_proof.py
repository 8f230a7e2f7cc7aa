"""The Z3 theorems that read the traced MX block graph, and the emitted Triton kernel: one graph.

The expected values are the exact model's scale rule (the theorems' statement: an independent floor(log2) from
binary32 pattern comparisons, the even threshold and rceil's rounding boundaries in exact integers) and, for the
mutated graph, the exact model's replay of the counterexample.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: the triton backend takes torch tensors")
pytest.importorskip("triton", reason="triton not installed: pip install 'refarith[triton]'")
pytest.importorskip("z3", reason="z3 not installed: the theorems cannot run")

from refarith.fast import mx as fmx  # noqa: E402
from refarith.fast import triton_backend as tb  # noqa: E402
from refarith.fast import triton_blocks as tbk  # noqa: E402
from refarith.smt import registry  # noqa: E402


def test_the_proved_scale_theorem_and_the_emitted_kernel_are_one_graph():
    """traced.mx_scale.floor.ocp_e4m3 is proved and names the digest of the graph that
    ``mx_quantize(..., backend="triton")`` compiles and runs; the emitted source carries the same digest."""
    res = registry.run_one(registry.load_all()["traced.mx_scale.floor.ocp_e4m3"])
    assert res.ok and res.verdict == "proved", res.detail
    proved = res.detail.split("graph ")[1].split()[0]
    g = tbk.mx_quantize_graph("ocp_e4m3", "floor", "rne")
    assert proved == g.digest
    x = torch.tensor([[1.0, -3.0, 0.5, 200.0] * 8])
    s, _ = fmx.mx_quantize(x, "ocp_e4m3", backend="triton")
    assert int(s[0, 0]) == 7 - 8 + 127  # floor(log2 200) - emax(E4M3) + bias
    ran = [ck for ck in tb._CACHE.values() if ck.graph_digest == proved]
    assert ran and proved in ran[0].source_path.read_text()


def test_a_wrong_graph_gets_a_confirmed_counterexample():
    """The check can fail: the ceil graph checked against the floor rule gives an input whose scale the exact
    model computes differently (the registered theorem expects exactly that)."""
    res = registry.run_one(registry.load_all()["traced.mx_scale.ceil_graph_is_not_floor"])
    assert res.ok and res.verdict == "counterexample" and res.confirmed is True
    ce = res.counterexample
    assert ce["graph_scale"] == ce["exact_scale"] + 1


def test_every_traced_scale_theorem_is_registered_within_budget():
    """Every scale rule (floor, ceil, even, rceil) for every MX element format, 30 s budget each, tagged
    triton."""
    from refarith.smt.theorems.tracedblocks import ELEMENTS, RULES

    reg = registry.load_all()
    names = {f"traced.mx_scale.{r}.{e}" for r in RULES for e in ELEMENTS}
    assert set(RULES) == {"floor", "ceil", "even", "rceil"} and names <= set(reg) and len(names) == 28
    assert all(reg[n].budget <= 30 and "triton" in reg[n].tags for n in names)


def test_even_rule_is_proved_and_the_rceil_statement_can_fail():
    """traced.mx_scale.even.ocp_e2m1 is proved on the graph the Triton kernel runs; the rceil statement checked
    on the even graph gives an input whose scale the exact model's rceil rule computes differently."""
    reg = registry.load_all()
    res = registry.run_one(reg["traced.mx_scale.even.ocp_e2m1"])
    assert res.ok and res.verdict == "proved", res.detail
    assert res.detail.split("graph ")[1].split()[0] == tbk.mx_quantize_graph("ocp_e2m1", "even", "rne").digest
    res = registry.run_one(reg["traced.mx_scale.even_graph_is_not_rceil"])
    assert res.ok and res.verdict == "counterexample" and res.confirmed is True
    assert res.counterexample["graph_scale"] != res.counterexample["exact_scale"]


@pytest.mark.slow
def test_rceil_rule_is_proved():
    """traced.mx_scale.rceil.ocp_e4m3: the graph's binary32 division and ceil(log2) give the exact rceil rule."""
    res = registry.run_one(registry.load_all()["traced.mx_scale.rceil.ocp_e4m3"])
    assert res.ok and res.verdict == "proved", res.detail


def test_lane_block_op_is_the_block_semantics_on_one_element():
    """The one-element block operations the theorems evaluate with (block maximum, broadcast, table reads, the
    udiv of binary32 division) give, on numpy words, what the default block evaluation gives on blocks of one
    element: the NVFP4 quantize and dequantize graphs on every E2M1 code and random binary32 patterns."""
    import numpy as np

    from refarith.fast.bitops import NumpyBitOps
    from refarith.fast.trace import evaluate
    from refarith.fast.xptrace import lane_block_op

    rng = np.random.default_rng(13)
    x = rng.integers(0, 1 << 32, 512, dtype=np.uint64)
    cases = [(tbk.nvfp4_quantize_graph("divide", "none"), [x]),
             (tbk.nvfp4_dequantize_graph(True), [x % 128, np.arange(512, dtype=np.uint64) % 16, x >> 8])]
    for g, ins in cases:
        assert {"lut", "udiv", "rmax", "bcast"} & {n.kind for n in g.nodes}
        ops = NumpyBitOps(g.width)
        lane = evaluate(g, ops, [ops.word(v) for v in ins], lane_block_op)
        block = evaluate(g, ops, [ops.word(v.reshape(-1, 1) if lv == 0 else v) for v, lv in zip(ins, g.input_levels)])
        for a, b in zip(lane, block, strict=True):
            assert (np.asarray(a).reshape(-1) == np.asarray(b).reshape(-1)).all(), g.name
