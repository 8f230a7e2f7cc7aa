"""The Z3 theorems on the MX element codes and the one-level NVFP4 outputs of the traced block graphs, and the
emitted Triton kernels: one graph.

Expected values come from the exact model (refarith.exact.mx / refarith.exact.nvfp4: the counterexamples'
replay, and the statement's own spec checked against round_value on sampled inputs), never from the kernels.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: the triton backend takes torch tensors")
pytest.importorskip("triton", reason="triton not installed: pip install 'refarith[triton]'")
z3 = pytest.importorskip("z3", reason="z3 not installed: the theorems cannot run")

from refarith.smt import registry  # noqa: E402
from refarith.smt.theorems import tracedelems as te  # noqa: E402


def _digest(res) -> str:
    return res.detail.split("graph ")[1].split()[0]


def test_the_proved_element_theorem_and_the_emitted_kernel_are_one_graph():
    """traced.mx_elem.rne.int8 is proved and names the digest of the graph mx_quantize(..., backend="triton")
    compiles and runs (its source carries the digest); the codes it returns are the exact model's."""
    from refarith.exact import mx as emx
    from refarith.fast import mx as fmx
    from refarith.fast import triton_backend as tb

    res = registry.run_one(registry.load_all()["traced.mx_elem.rne.int8"])
    assert res.ok and res.verdict == "proved", res.detail
    vals = [1.0, -3.0, 0.5, 200.0, -0.015625, 7.25, -200.0, 0.0] * 4
    s, c = fmx.mx_quantize(torch.tensor([vals]), "int8", backend="triton")
    want = emx.quantize_block(vals, "int8")
    assert int(s[0, 0]) == want.scale and [int(v) & 0xFF for v in c[0]] == list(want.codes)
    ran = [ck for ck in tb._CACHE.values() if ck.graph_digest == _digest(res)]
    assert ran and _digest(res) in ran[0].source_path.read_text()


def test_a_wrong_rounding_gets_a_confirmed_counterexample():
    """The element statement can fail: rne checked on the rtz MXFP4 graph gives an (x, s) whose code the exact
    model rounds differently (registered, expected counterexample)."""
    res = registry.run_one(registry.load_all()["traced.mx_elem.rtz_graph_is_not_rne"])
    assert res.ok and res.verdict == "counterexample" and res.confirmed is True
    ce = res.counterexample
    assert ce["graph_code"] != ce["exact_code"]


def test_the_element_spec_is_the_exact_models_rule():
    """The statement's spec (the cast spec on the shifted significand; the integer rounding for MXINT8) gives the
    exact model's round_value(x / 2^(s-127)) on sampled binary32 x and scale codes, every element format."""
    import random

    from refarith.exact import mx as emx

    rng = random.Random(7)
    for el in te.ELEMENTS:
        fmt = emx.mx_element(el)
        for _ in range(24):
            x, s = rng.getrandbits(32), rng.randrange(255)
            if (x & 0x7FFFFFFF) >= te.FINITE:
                x &= 0x807FFFFF
            if rng.random() < 0.5:  # near the element range: |x| / 2^(s-127) about 2^-8 .. 2^10
                s = max(0, min(254, ((x >> 23) & 0xFF) - rng.randrange(-10, 10)))
            spec = z3.simplify(te._spec_code(z3, z3.BitVecVal(x, 32), z3.BitVecVal(s, 8), fmt, "rne"))
            assert spec.as_long() == te._exact_code(x, s, fmt, "rne"), (el, hex(x), s)


def test_every_element_theorem_is_registered_within_budget():
    """rne for every MX element format, the NVFP4 scale and element parts of the default variant, 30 s each."""
    reg = registry.load_all()
    names = {f"traced.mx_elem.rne.{e}" for e in te.ELEMENTS}
    names |= {f"traced.nvfp4_scale.{d}.{z}" for d, z in te.NV_VARIANTS}
    names |= {f"traced.nvfp4_elem.reciprocal.eps.m{m}" for m in te.NV_CLASSES}
    names |= {"traced.nvfp4_elem.reciprocal.eps.block_words", "traced.nvfp4_elem.divide_graph_is_not_reciprocal"}
    assert names <= set(reg) and len(te.ELEMENTS) == 7 and len(te.NV_CLASSES) == 8
    assert all(reg[n].budget <= 30 and "triton" in reg[n].tags for n in names)


@pytest.mark.slow
def test_nvfp4_theorems_are_proved_on_the_kernels_graph():
    """Every registered NVFP4 theorem gets its expected verdict; they name the digest of the graph the one-level
    nvfp4_quantize(..., backend="triton") runs."""
    from refarith.fast import nvfp4 as fnv
    from refarith.fast import triton_backend as tb
    from refarith.fast.triton_blocks import nvfp4_quantize_graph

    reg = registry.load_all()
    for name in sorted(n for n in reg if n.startswith(("traced.nvfp4_elem.reciprocal", "traced.nvfp4_scale"))):
        res = registry.run_one(reg[name])
        assert res.ok and res.verdict == "proved", (name, res.detail)
        d, z = name.split(".")[2:4]
        assert _digest(res) == nvfp4_quantize_graph(d, "none", z).digest
    res = registry.run_one(reg["traced.nvfp4_elem.divide_graph_is_not_reciprocal"])
    assert res.ok and res.confirmed is True
    fnv.nvfp4_quantize(torch.tensor([[1.0, -3.0, 0.5, 5.5] * 4]), "reciprocal", 1, backend="triton")
    assert any(ck.graph_digest == nvfp4_quantize_graph("reciprocal", "none", "eps").digest
               for ck in tb._CACHE.values())


@pytest.mark.slow
def test_nvfp4_divide_elements_are_proved():
    """The divide graph's element statement, every part (not registered: about 40 s of Z3)."""
    for m in (None, *te.NV_CLASSES):
        res = te.check_nvfp4_elements("divide", "eps", m)
        assert res.verdict == "proved", (m, res.detail)


@pytest.mark.slow
def test_every_mx_element_theorem_is_proved():
    """Every registered traced.mx_elem theorem gets its expected verdict."""
    reg = registry.load_all()
    for name in sorted(n for n in reg if n.startswith("traced.mx_elem.")):
        res = registry.run_one(reg[name])
        assert res.ok, (name, res.verdict, res.detail)
