"""The lookup-table key lemma: the prover's verdict, and agreement with the fast layer's static predicate."""

from __future__ import annotations

import pytest

from refarith.formats import float_formats
from refarith.smt import registry
from refarith.smt.castproofs import prove_lut_key

TARGETS = [f.name for f in float_formats(8)] + ["bfloat16", "binary16"]


@pytest.mark.parametrize("dst,expect", [("ocp_e2m1", "proved"), ("ocp_e4m3", "proved"), ("e8m0", "proved"),
                                        ("bfloat16", "counterexample"), ("binary16", "counterexample")])
def test_lut_key_lemma(dst, expect):
    out = prove_lut_key(dst, timeout_s=60)
    assert out.verdict == expect, out
    if expect == "counterexample":
        assert out.confirmed is True, out.counterexample
        x = int(out.counterexample["x_bits"], 16)
        k = int(out.counterexample["same_key_bits"], 16)
        assert x >> 16 == k >> 16 and bool(x & 0xFFFF) == bool(k & 0xFFFF) and x != k


@pytest.mark.parametrize("dst", TARGETS)
def test_registered_expectation_matches_fast_predicate(dst):
    castkernel = pytest.importorskip("refarith.fast.castkernel")
    th = registry.load_all()[f"cast.lut16.binary32->{dst}"]
    assert (th.expect == "proved") == castkernel.sticky_key_suffices(dst)
