"""Statistical certification of stochastic block quantization with internal randomness
(refarith.certify.statistical_blocks).

The exact per-element probabilities are checked against enumeration of every random integer of one element in
the exact model (refarith.exact through the driver), independently of the certifier's joint bisection; the
seeded faulty block kernels of docs/examples/sr_kernels.py must fail and the correct ones must pass.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import pytest

from refarith.certify.adapters import user_kernel
from refarith.certify.statistical import certify_sr
from refarith.certify.statistical_blocks import block_inputs, block_outcome, block_stage, run_block_statistical
from refarith.errors import BadValueError, SpecError
from refarith.golden.drivers import get_driver
from refarith.spec import parse_spec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from docs.examples import sr_kernels  # noqa: E402

MX = sr_kernels.MXFP4_SPEC
NV = sr_kernels.NVFP4_SPEC


def _run(name: str, spec: str, nblocks: int, samples: int = 600, seed: int = 7):
    sp = parse_spec(spec)
    kernel = user_kernel(sr_kernels.make_block(name, spec, seed))
    return run_block_statistical(sp, kernel, samples, 1e-6, block_inputs(sp)[:nblocks])


@pytest.mark.parametrize("spec", ["mx_quantize(ocp_e2m1,block=8,rounding=sr,sr=c,k=4)",
                                  "bfp_quantize(int8_sym,block=8,rounding=sr,sr=b,k=3)"])
def test_joint_bisection_equals_enumeration(spec):
    sp = parse_spec(spec)
    d = get_driver(sp)
    k = int(sp.param["k"])
    tested = 0
    for x in block_inputs(sp)[:4]:
        o = block_outcome(sp, x)
        for i in range(len(x)):
            counts: dict[int, int] = {}
            for r in range(1 << k):  # element i's own r; the others 0
                rs = [0] * len(x)
                rs[i] = r
                c = d.exact(sp, tuple(x) + tuple(rs))[o.offset + i]
                counts[c] = counts.get(c, 0) + 1
            if o.lo[o.offset + i] == o.hi[o.offset + i]:
                assert counts == {o.lo[o.offset + i]: 1 << k}
            else:
                tested += 1
                assert counts == {o.lo[o.offset + i]: o.threshold[i], o.hi[o.offset + i]: (1 << k) - o.threshold[i]}
    assert tested >= 8


@pytest.mark.parametrize("spec,n", [(MX, 24), pytest.param(NV, 4, marks=pytest.mark.slow)])
def test_correct_block_kernels_pass(spec, n):
    res, summary, _ = _run("correct", spec, n)
    assert summary["verdict"] == "pass", spec
    assert summary["tested_inputs"] >= 50
    assert summary["test"].startswith("exact two-sided binomial test")
    tested = [r for r in res if r.p_value is not None]
    assert all(0 < Fraction(r.expected_p) < 1 for r in tested)
    assert {r.element for r in res} == set(range(len(block_inputs(parse_spec(spec))[0])))


@pytest.mark.parametrize("name,impossible", [("rounds_down", False), ("drops_carry", True), ("fast_biased", False),
                                             ("returns_zero", True)])
def test_faulty_mx_kernels_fail(name, impossible):
    res, summary, _ = _run(name, MX, 24)
    assert summary["verdict"] == "fail"
    assert (summary["impossible_results"] > 0) == impossible
    if not impossible:  # a frequency off, and the p-value below the Holm threshold
        bad = [r for r in res if r.failed]
        assert all(r.p_value is not None and r.p_value <= 1e-6 for r in bad)  # Holm: at most alpha
        assert all(r.bias_ulps < 0 for r in bad)  # both round up too rarely


@pytest.mark.slow
def test_faulty_nvfp4_kernel_fails():
    _, summary, _ = _run("rounds_down", NV, 4)
    assert summary["verdict"] == "fail" and summary["failed_inputs"] > 0


def test_stage_examples_and_certificate():
    sp = parse_spec(MX)
    st, section = block_stage(sp, user_kernel(sr_kernels.make_block("drops_carry", MX, 3)), 500, 1e-6,
                              blocks=block_inputs(sp)[:20])
    assert st.failures(False) > 0 and "in_range" in st.examples
    ex = st.examples["in_range"]
    assert len(ex.inputs) == 8 and ex.columns[0].startswith("elements[")
    assert section["blocks"] == 20 and len(section["per_input"]) == 160
    assert {"block", "element", "expected_p", "p_value", "bias_ulps"} <= set(section["per_input"][0])


def test_bad_block_specs():
    k = user_kernel(sr_kernels.mxfp4_correct)
    with pytest.raises(BadValueError, match="--sr-samples applies to stochastic-rounding specs"):
        certify_sr(parse_spec("mx_quantize(ocp_e2m1,block=8)"), k, 10)
    with pytest.raises(SpecError, match="statistical certification covers casts"):
        block_inputs(parse_spec("cast(binary32->ocp_e4m3,rounding=sr,k=8)"))
    with pytest.raises(BadValueError, match="positive number of samples"):
        certify_sr(parse_spec(MX), k, 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["correct", "rounds_down", "drops_carry", "fast_biased", "returns_zero"])
def test_full_mx_block_set(name):
    _, summary, _ = _run(name, MX, 10 ** 6, samples=2000)
    assert summary["verdict"] == ("pass" if name == "correct" else "fail")
