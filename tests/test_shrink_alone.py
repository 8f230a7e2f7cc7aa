"""The fuzz stage's shrinker with a kernel whose result depends on the batch (AMD Quark's fake_quantize_mx gives a
NaN block another NaN sign alone than in a batch): a shrunk vector that passes when run alone keeps the example
the fuzzer found, instead of failing the certificate with an exception."""

from __future__ import annotations

import numpy as np

from refarith.certify.adapters import Kernel
from refarith.certify.runner import Stage, make_example, shrink_examples
from refarith.golden.drivers import get_driver
from refarith.spec import parse_spec

SPEC = parse_spec("cast(binary32->ocp_e4m3,overflow=saturate)")


def _batchy(spec, operands):
    """The exact model's codes, with the lowest bit flipped whenever more than one vector is run at once."""
    d = get_driver(spec)
    x = np.asarray(operands[0])
    out = np.array([d.exact(spec, (int(c),))[0] for c in x], dtype=np.uint64)
    return (out ^ np.uint64(1) if len(x) > 1 else out).reshape(-1, 1)


def test_a_vector_that_passes_alone_keeps_the_fuzzers_example():
    k = Kernel("batchy", _batchy, "test", lambda s: None)
    vec = (0x3F900000,)  # 1.125, E4M3 code 0x39
    exp = get_driver(SPEC).exact(SPEC, vec)
    ex = make_example(SPEC, "in_range", vec, exp, (exp[0] ^ 1,))
    st = Stage("fuzz", "test")
    st.examples["in_range"] = ex
    shrink_examples(SPEC, k, st)
    assert st.examples["in_range"] is ex
