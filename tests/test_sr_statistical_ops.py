"""Statistical certification with internal randomness of arithmetic (add, mul, fma), the dot-product accumulator
(fdot), integer quantization and block floating point (refarith.certify.statistical_blocks), and the NVFP4 and
BFP faulty kernels.

The exact probabilities are checked against enumeration of the deciding random integer in the exact model
(refarith.exact through the driver), independently of the certifier's bisection; the seeded faulty kernels of
docs/examples/sr_kernels.py must fail and the correct ones pass.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from refarith.certify.adapters import user_kernel
from refarith.certify.statistical_blocks import block_inputs, block_outcome, block_stage, run_block_statistical
from refarith.errors import SpecError
from refarith.golden.drivers import get_driver
from refarith.spec import parse_spec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from docs.examples import sr_kernels  # noqa: E402

ADD, FDOT, INTQ, BFP, NV = (sr_kernels.ADD_SPEC, sr_kernels.FDOT_SPEC, sr_kernels.INTQ_SPEC, sr_kernels.BFP_SPEC,
                            sr_kernels.NVFP4_SPEC)
FMA = "fma(ocp_e4m3,rounding=sr,k=8)"
MUL = "mul(ocp_e4m3,rounding=sr,sr=c,k=8)"
FAULTY = ("rounds_down", "drops_carry", "fast_biased", "returns_zero")
INT_FAULTY = ("rounds_down", "fast_biased", "returns_zero")  # integer elements: no carry into an exponent


def _run(name: str, spec: str, n: int | None = None, samples: int = 600, seed: int = 7, step: int = 1):
    sp = parse_spec(spec)
    kernel = user_kernel(sr_kernels.make_block(name, spec, seed))
    ins = block_inputs(sp)[::step]
    return run_block_statistical(sp, kernel, samples, 1e-6, ins if n is None else ins[:n])


@pytest.mark.parametrize("spec", ["fdot(ocp_e4m3->binary32,rounding=sr,sr=c,k=4)",
                                  "fdot(ocp_e5m2->bfloat16,order=pairwise,rounding=sr,k=4)",
                                  "add(ocp_e4m3,rounding=sr,sr=b,k=4)"])
def test_outcome_equals_enumeration(spec):
    """Every value of the deciding random integer, the others seeded random: the counts of lo and hi are the
    threshold's; fdot: the deciding integer is one of several and the others do not matter."""
    sp = parse_spec(spec)
    d = get_driver(sp)
    k = int(sp.param["k"])
    m = d.inputs(sp)[-1].width
    rng = random.Random(1)
    tested = 0
    for x in block_inputs(sp)[:: 7 if sp.op == "fdot" else 3]:
        o = block_outcome(sp, x)
        if o is None or o.lo == o.hi:
            continue
        if tested == 6:
            break
        j = o.rand_index[0] if o.rand_index else 0
        counts: dict[int, int] = {}
        for r in range(1 << k):
            rs = [rng.randrange(1 << k) for _ in range(m)]
            rs[j] = r
            c = d.exact(sp, tuple(x) + tuple(rs))[o.offset]
            counts[c] = counts.get(c, 0) + 1
        assert counts == {o.lo[o.offset]: o.threshold[0], o.hi[o.offset]: (1 << k) - o.threshold[0]}, (spec, x)
        tested += 1
    assert tested >= 3


def test_fdot_inputs_have_one_inexact_addition():
    sp = parse_spec(FDOT)
    outs = [block_outcome(sp, x) for x in block_inputs(sp)]
    assert len(outs) >= 24 and all(o is not None for o in outs)
    assert len({o.rand_index for o in outs if o.lo != o.hi}) >= 3  # the deciding addition moves with the pair


@pytest.mark.parametrize("spec,n", [(ADD, 120), (FDOT, None), (INTQ, 6)])
def test_correct_kernels_pass(spec, n):
    res, summary, _ = _run("correct", spec, n)
    assert summary["verdict"] == "pass", spec
    assert summary["tested_inputs"] >= 20


@pytest.mark.parametrize("spec,name,n", [(ADD, "rounds_down", 120), (ADD, "drops_carry", 120),
                                         (FDOT, "fast_biased", None), (FDOT, "returns_zero", None),
                                         (INTQ, "fast_biased", 6)])
def test_faulty_kernels_fail(spec, name, n):
    res, summary, _ = _run(name, spec, n)
    assert summary["verdict"] == "fail", (spec, name)
    assert (summary["impossible_results"] > 0) == (name in ("drops_carry", "returns_zero"))


def test_stage_example_names_the_operands():
    sp = parse_spec(ADD)
    st, section = block_stage(sp, user_kernel(sr_kernels.make_block("rounds_down", ADD, 3)), 400, 1e-6,
                              blocks=block_inputs(sp)[:120])
    assert st.failures(False) > 0
    ex = next(iter(st.examples.values()))
    assert len(ex.inputs) == 2 and ex.columns == ["elements[0]"]
    r = next(r for r in section["per_input"] if r["failed"])
    assert len(r["input"].split()) == 2 and r["p_value"] <= 1e-6


def test_not_covered_is_named():
    with pytest.raises(SpecError, match="statistical certification covers casts"):
        block_inputs(parse_spec("cast(binary32->ocp_e4m3,rounding=sr,k=8)"))


@pytest.mark.slow
@pytest.mark.parametrize("spec", [ADD, MUL, FMA, FDOT, INTQ, BFP, NV])
def test_full_sets_correct_passes(spec):
    _, summary, _ = _run("correct", spec, samples=2000)
    assert summary["verdict"] == "pass", spec


@pytest.mark.slow
@pytest.mark.parametrize("spec,name", [(s, n) for s in (ADD, MUL, FMA, FDOT, NV) for n in FAULTY]
                         + [(s, n) for s in (INTQ, BFP) for n in INT_FAULTY])
def test_full_sets_faulty_fail(spec, name):
    _, summary, _ = _run(name, spec, samples=2000, step=2 if spec == NV else 1)
    assert summary["verdict"] == "fail", (spec, name)
