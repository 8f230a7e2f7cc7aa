"""The stochastic-rounding theorems of add/sub/mul/div, fdot, NVFP4 and BFP (refarith.smt.theorems.arithsr,
nvbfpsr), and the golden files of sub and div with rounding=sr.

Expected values come from the exact model (refarith.exact.ops), never from the kernels; the seeded faults show
that the checks and the certification can fail.  The full theorems run under `pytest -m proof` / `refarith prove`.
"""

from __future__ import annotations

import gzip
from fractions import Fraction
from unittest import mock

import numpy as np
import pytest

from refarith.certify.runner import certify
from refarith.exact import ops
from refarith.exact.value import Value
from refarith.golden.generate import default_dir, file_name
from refarith.smt import registry
from refarith.smt.theorems import arithsr
from refarith.spec import parse_spec

SUB_DIV_SPECS = (
    [f"{op}(ocp_e2m1,rounding=sr,nan=max,sr={v},k=2)" for op in ("sub", "div") for v in ("a", "c")]
    + [f"sub(ocp_e4m3,rounding=sr,sr={v},k=3)" for v in ("a", "c")]
    + [f"div(ocp_e4m3,rounding=sr,sr={v},k=3)" for v in ("b", "c_odd")]
)


def _body(spec: str) -> list[str]:
    text = gzip.decompress((default_dir() / file_name(parse_spec(spec))).read_bytes()).decode()
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


@pytest.mark.parametrize("spec", SUB_DIV_SPECS)
def test_sub_div_golden_file_lines_are_the_exact_model(spec):
    sp = parse_spec(spec)
    p, k = sp.param, int(sp.param["k"])
    body = _body(spec)
    assert len(body) > 1000
    for ln in body[:: max(1, len(body) // 150)]:
        ins, _, out = ln.partition(" : ")
        a, b, r = (int(c, 16) for c in ins.split())
        kw = dict(rand=r, rand_bits=k, sr_variant=p.get("sr", "a"), overflow=p["overflow"])
        if "nan" in p:
            kw["nan_policy"] = p["nan"]
        assert int(out, 16) == getattr(ops, sp.op)(a, b, sp.formats[0], "sr", **kw).code, ln


@pytest.mark.parametrize("spec", SUB_DIV_SPECS)
def test_refarith_numpy_certifies_on_the_sub_div_golden_files(spec):
    c = certify("refarith:numpy", spec)
    assert c.passed and c.stages[0].name == "golden" and c.stages[0].vectors == len(_body(spec))


@pytest.mark.parametrize("spec", [SUB_DIV_SPECS[6]])
def test_refarith_torch_certifies_on_the_sub_div_golden_files(spec):
    pytest.importorskip("torch")
    c = certify("refarith:torch", spec)
    assert c.passed and c.stages[0].vectors == len(_body(spec))


def test_a_kernel_of_the_wrong_variant_fails_on_the_golden_file():
    from refarith.fast.arith import arith

    def variant_a(a, b, r):  # the spec asks for c
        return arith("sub", a, b, "ocp_e4m3", "sr", rand=r, rand_bits=3, sr_variant="a")

    c = certify(variant_a, "sub(ocp_e4m3,rounding=sr,sr=c,k=3)")
    assert not c.passed and sum(c.stages[0].mismatches.values()) > 0


def _registered() -> dict:
    """The theorems the two modules registered on import (registry.load_all would import every theorem module)."""
    from refarith.smt.theorems import nvbfpsr  # noqa: F401  (registers its theorems)

    return dict(registry._REGISTRY)


def test_the_new_theorems_are_registered_with_their_verdicts():
    reg = _registered()
    names = [n for n in reg if n.startswith(("sr.arith.", "sr.fdot.", "sr.nvfp4.", "sr.bfp."))]
    for op in arithsr.OPS:
        for v in arithsr.VARIANTS:
            assert {f"sr.arith.{op}.{v}.exact.e2m1", f"sr.arith.{op}.{v}.exact.e3m2"} <= set(names)
        assert f"sr.arith.{op}.te_e2m1_8.exact.e2m1" in names
    for v in arithsr.VARIANTS:
        assert {f"sr.fdot.{v}.exact.e2m1x2->e3m2", f"sr.nvfp4.{v}.neighbours.divide1",
                f"sr.nvfp4.{v}.neighbours.recip2", f"sr.bfp.{v}.neighbours.int4_sym"} <= set(names)
    assert {"sr.fdot.te_e2m1_8.exact.e2m1x2->e2m1", "sr.nvfp4.te_e2m1_8.neighbours.recip2"} <= set(names)
    wrong = {n for n in names if reg[n].expect == registry.COUNTEREXAMPLE}
    assert wrong == {"sr.arith.mul.a.unbiased_beyond_k.e3m2", "sr.bfp.a.unbiased_beyond_k.int4_sym"}
    assert all("enumeration" in reg[n].statement for n in names)


@pytest.mark.slow  # the registry runs them too (`refarith prove`, `pytest -m proof`)
@pytest.mark.parametrize("name", ["sr.arith.mul.a.unbiased_beyond_k.e3m2", "sr.bfp.a.unbiased_beyond_k.int4_sym"])
def test_the_expected_counterexamples_are_found(name):
    res = registry.run_one(_registered()[name])
    assert res.ok and res.verdict == registry.COUNTEREXAMPLE and res.confirmed
    assert Fraction(res.counterexample["bias_ulps"]) < 0


def test_arith_theorem_proves_the_kernel_and_catches_a_wrong_variant():
    # div: E2M1 sums and products have fractions of at most 2 bits, where every variant agrees at k = 2
    assert arithsr.check_arith_sr("div", "c", "ocp_e2m1", 2).verdict == registry.PROVED
    from refarith.fast import arith as farith

    real = farith.arith

    def swapped(*args, **kw):  # a where c is asked for
        return real(*args, **dict(kw, sr_variant="a" if kw.get("sr_variant") == "c" else kw.get("sr_variant")))

    with mock.patch.object(farith, "arith", swapped):
        out = arithsr.check_arith_sr("div", "c", "ocp_e2m1", 2)
    assert out.verdict == registry.COUNTEREXAMPLE and out.detail == "kernel differs from the exact model"
    x, y, r = out.counterexample["a"], out.counterexample["b"], out.counterexample["r"]
    assert ops.div(x, y, "ocp_e2m1", "sr", rand=r, rand_bits=2, sr_variant="c", nan_policy="max").code \
        == out.counterexample["exact"] != out.counterexample["kernel"]


def test_judge_rejects_non_neighbours_wrong_counts_and_non_monotone_results():
    # E2M1 1.25 (code 2 = 1.0, code 3 = 1.5): half an ulp above 1.0; k = 2, variant a rounds up for 2 of 4 r
    v = [Value.of(Fraction(5, 4))]
    lo, hi = np.array([2]), np.array([3])

    def where(i):
        return {"i": i}

    assert arithsr.judge(np.array([[2, 2, 3, 3]]), lo, hi, v, "ocp_e2m1", "a", 2, where) is None
    for codes, detail in (([[2, 2, 3, 4]], "not one of the two neighbours, or not monotone in r"),
                          ([[2, 3, 2, 3]], "not one of the two neighbours, or not monotone in r"),
                          ([[2, 2, 2, 3]], "round-up count differs from up_count")):
        out = arithsr.judge(np.array(codes), lo, hi, v, "ocp_e2m1", "a", 2, where)
        assert out is not None and out.verdict == registry.COUNTEREXAMPLE and out.detail == detail


@pytest.mark.slow
def test_nvfp4_and_fdot_theorems_catch_a_kernel_that_ignores_its_random_bits():
    from refarith.fast import blocksr, fdot
    from refarith.smt.theorems import nvbfpsr

    real_nv, real_fd = blocksr.nvfp4_quantize_sr, fdot.fdot
    with mock.patch.object(blocksr, "nvfp4_quantize_sr",
                           lambda x, rand, *a, **kw: real_nv(x, np.zeros_like(rand), *a, **kw)):
        assert nvbfpsr.check_nvfp4_sr("c", 4, "divide1").verdict == registry.COUNTEREXAMPLE
    with mock.patch.object(fdot, "fdot", lambda x, y, *a, rand=None, **kw: real_fd(x, y, *a, rand=rand * 0, **kw)):
        assert arithsr.check_fdot_sr("c", "ocp_e3m2", 2).verdict == registry.COUNTEREXAMPLE
