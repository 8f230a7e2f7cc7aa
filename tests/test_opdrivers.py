"""Every spec op plugs into golden vectors, certify and identify through its driver; refarith's own numpy and
torch kernels certify against the committed golden file of every op; identify names the variant of a kernel
run in each variant (MX scale rules, NVFP4 division and levels, requantization, integer-only operators)."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.certify.adapters import Kernel
from refarith.certify.identify import identify
from refarith.certify.runner import certify
from refarith.golden import drivers, get_driver
from refarith.golden.generate import committed_specs, default_dir, file_name, read_manifest
from refarith.spec import ops, parse_spec

COMMITTED = [s for s in committed_specs() if s.op != "cast"]


def test_every_op_has_a_driver_and_a_committed_golden_file():
    files = read_manifest(default_dir())["files"]
    have_ops = {parse_spec(e["spec"]).op for e in files.values()}
    assert set(ops()) <= set(drivers())
    assert set(ops()) <= have_ops, sorted(set(ops()) - have_ops)


def _certify_params() -> list:
    """Every committed non-cast spec; the NVFP4 files (30-40 s each: the exact model recomputes every expected
    block) under slow — the default run certifies refarith's NVFP4 kernel in the identify test below, and
    tests/test_nvfp4.py ties it to the exact model; the NVFP4 recipe files (one call per vector, torch the
    dearer) under slow too: tests/test_nvfp4_recipe.py certifies numpy on every role and torch on one."""
    return [pytest.param(str(s), marks=pytest.mark.slow) if s.op in ("nvfp4_quantize", "nvfp4_recipe") else str(s)
            for s in COMMITTED]


@pytest.mark.parametrize("spec", _certify_params(), ids=lambda s: s.split(",")[0][:40])
def test_refarith_kernels_certify_every_op(spec):
    """numpy (and torch where the op has a torch kernel) are bit-exact on every committed golden vector."""
    d = get_driver(spec)
    assert (default_dir() / file_name(parse_spec(spec))).exists()
    if d.fast is None:
        pytest.skip(f"{parse_spec(spec).op} has no fast kernel (exact model only)")
    backends = [b for b in d.backends if b == "numpy"]
    if "torch" in d.backends:
        try:
            import torch  # noqa: F401

            backends.append("torch")
        except ImportError:
            pass
    for b in backends:
        c = certify(f"refarith:{b}", spec)
        assert c.passed, (b, c.totals())
        assert c.stages[0].sha256 is not None  # the committed file, hash-checked


def _bound(variant: str, backend: str = "numpy") -> Kernel:
    """refarith's fast kernel fixed to one variant, whatever spec it is asked about (a kernel under test)."""
    v = parse_spec(variant)
    d = get_driver(v)
    return Kernel(f"refarith:{backend}[{v}]", lambda spec, operands: d.fast(v, operands, backend), "test")


def _exact_matches(scores):
    return [s.spec for s in scores if s.matches and s.outside_domain == 0]


@pytest.mark.parametrize("scale", ["rceil"] + [pytest.param(s, marks=pytest.mark.slow)
                                               for s in ("floor", "ceil", "even")])
def test_identify_names_the_mx_scale_rule(scale):
    base = "mx_quantize(ocp_e2m1)"
    want = str(parse_spec(f"mx_quantize(ocp_e2m1,scale={scale})"))
    d = get_driver(base)
    vecs = d.boundary(parse_spec(base))[::3] + d.random_inputs(parse_spec(base), 200, 1)
    scores = identify(_bound(want), base, vary=("scale",), vectors=vecs)
    assert _exact_matches(scores) == [want]


def _nvfp4_vectors(spec: str, n: int = 150) -> list[tuple[int, ...]]:
    """About n boundary vectors of the NVFP4 driver (zeros, NaN/inf, block maxima over the binades), its
    zero-block and division-separating vectors, and 32 random ones: enough to separate the variants."""
    d = get_driver(spec)
    b = d.boundary(parse_spec(spec))
    return b[::max(1, len(b) // n)] + b[-129:] + d.random_inputs(parse_spec(spec), 32, 5)


@pytest.mark.parametrize("variant", ["levels=2,division=divide"] + [
    pytest.param(v, marks=pytest.mark.slow) for v in ("levels=1,division=divide", "levels=1,division=reciprocal",
                                                      "levels=2,division=reciprocal", "levels=1,zero_scale=zero")])
def test_identify_names_the_nvfp4_variant(variant):
    """Default run: one variant (about 25 s each); slow: the other four."""
    want = str(parse_spec(f"nvfp4_quantize({variant})"))
    base = "nvfp4_quantize()"
    scores = identify(_bound(want), base, vary=("division", "levels", "zero_scale"), vectors=_nvfp4_vectors(base))
    assert _exact_matches(scores) == [want]


@pytest.mark.parametrize("variant", ["tflite_double_rounding", "hawq_deployed"] + [
    pytest.param(v, marks=pytest.mark.slow) for v in ("tflite_single_rounding", "cmsis_single_rounding", "hawq_sim")])
def test_identify_names_the_requantization_variant(variant):
    want = str(parse_spec(f"requantize(variant={variant})"))
    scores = identify(_bound(want), "requantize()")
    assert scores[0].spec == want and scores[0].matches
    assert all(not s.matches for s in scores[1:] if s.outside_domain == 0), scores[:3]


@pytest.mark.parametrize("op", ["shiftmax(scale=0.05)", "shiftgelu(scale=0.05)", "ivit_layernorm()"])
def test_identify_names_the_ivit_variant(op):
    for variant in ("ivit_torch", "ivit_tvm"):
        base = parse_spec(op)
        want = str(parse_spec(op.replace("(", f"(variant={variant},", 1).replace(",)", ")")))
        scores = identify(_bound(want), base, vary=("variant",))
        assert scores[0].spec == want and scores[0].matches, scores


def test_wrong_kernel_is_named_with_classes():
    """A kernel that flips one element code of every 7th MX block fails with the mismatch counted."""
    spec = "mx_quantize(ocp_e4m3)"
    good = _bound(str(parse_spec(spec)))

    def bad(s, operands):
        sc, el = good.fn(s, operands)
        el = np.array(el, copy=True)
        el[::7, 3] ^= 1
        return sc, el

    c = certify(Kernel("bad", bad, "test"), spec)
    assert not c.passed
    n = c.stages[0].vectors
    assert sum(c.totals().values()) >= len(range(0, n, 7)) - c.stages[0].outside_domain


def test_identify_rejects_unknown_variant_parameter():
    from refarith.errors import SpecError

    with pytest.raises(SpecError, match="no variant parameter"):
        identify(_bound("mx_quantize(ocp_e2m1)"), "mx_quantize(ocp_e2m1)", vary=("colour",))
