"""torchao's MX and NVFP4 quantizers against the committed golden vectors: where they agree with the matching
refarith variant, and every disagreement named and explained.

Each test runs the peer on every vector of a committed golden file (exact expected values) and partitions the
vectors that differ.  The partitions are stated from the inputs alone (block maximum, non-finite values), so a
test fails if torchao starts or stops disagreeing anywhere else.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.certify.adapters import load_kernel
from refarith.golden import fileformat as ff
from refarith.golden.generate import find_file
from refarith.spec import parse_spec

pytest.importorskip("torch", reason="torch is not installed (pip install torch==2.13.0)")
pytest.importorskip("torchao", reason="torchao is not installed (pip install torchao==0.18.0)")


def _run(spec_id: str, target: str):
    """(inputs as float32 (n, k), per-vector 'differs' mask, expected outputs, got outputs)."""
    spec = parse_spec(spec_id)
    found = find_file(spec)
    assert found is not None, f"no committed golden file for {spec}"
    g = ff.load(*found)
    got = load_kernel(target)(spec, tuple(g.inputs))
    x = np.stack(g.inputs, 1).astype(np.uint32).view(np.float32)
    differs = (got != g.outputs).any(axis=1) & ~g.raises
    return x, differs, g.outputs, got


def _amax(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    finite = np.isfinite(x).all(axis=1)
    return finite, np.abs(np.where(np.isfinite(x), x, 0)).max(axis=1)


@pytest.mark.parametrize("elem, scale, tiny", [("ocp_e4m3", "floor", 2.0 ** -116), ("ocp_e4m3", "ceil", 2.0 ** -116),
                                               ("ocp_e2m1", "floor", 2.0 ** -122), ("ocp_e5m2", "even", 2.0 ** -110)])
def test_torchao_to_mx_matches_except_tiny_and_non_finite_blocks(elem, scale, tiny):
    """torchao ``to_mx`` (ScaleCalculationMode FLOOR/CEIL/EVEN) is bit-exact to ``mx_quantize`` with the same scale
    rule on every finite block whose amax is at least ``tiny``.  It differs (1) on blocks holding NaN or inf,
    where the OCP spec's NaN scale (0xff) is not what torchao writes, and (2) on blocks whose amax is so small
    that the shared exponent floor(log2 amax) - emax reaches the E8M0 minimum 2^-127 or the amax is a binary32
    subnormal: torchao's scale and elements there follow its float32 arithmetic, not the spec's clamped scale."""
    x, differs, _, _ = _run(f"mx_quantize({elem},scale={scale})", "torchao:mx")
    finite, amax = _amax(x)
    explained = ~finite | (amax < tiny)
    assert not (differs & ~explained).any(), np.nonzero(differs & ~explained)[0][:5]
    assert (differs & ~finite).any() and (differs & finite & (amax < tiny)).any()
    assert (~differs & finite & (amax >= tiny)).sum() > 1000


def test_torchao_rceil_rounds_log2_in_binary32():
    """torchao's RCEIL scale is ceil of a binary32 log2: ceil(fl(log2(fl(amax / 6)))).  The spec's ``rceil`` rounds
    the exact log2(amax / 6) up.  When amax / 6 lies just above a power of two 2^k, the binary32 log2 rounds to
    exactly k and torchao's scale is one binade lower; that is the only difference on finite blocks above the
    E8M0 floor (the predicate below uses numpy's binary32 log2 and exact rationals, not torchao)."""
    x, differs, exp, got = _run("mx_quantize(ocp_e2m1,scale=rceil)", "torchao:mx")
    finite, amax = _amax(x)
    big = finite & (amax >= 2.0 ** -122)
    q = (amax / np.float32(6.0)).astype(np.float32)
    log2 = np.log2(np.where(q > 0, q, 1)).astype(np.float32)
    integral = log2 == np.floor(log2)
    above = np.array([a > 0 and Fraction(float(a)) / 6 > Fraction(2) ** int(np.floor(v)) for a, v in zip(amax, log2)])
    predicted = integral & above
    assert np.array_equal(differs[big], predicted[big])
    assert predicted[big].sum() > 10
    assert ((exp[differs & big, 0].astype(np.int64) - got[differs & big, 0].astype(np.int64)) == 1).all()


def test_torchao_nvfp4_one_level_is_the_reciprocal_variant():
    """torchao ``nvfp4_quantize`` without a per-tensor scale equals refarith's one-level ``reciprocal`` variant
    (x * fl(1 / s) per element) on every finite block; only blocks holding NaN/inf differ."""
    x, differs, _, _ = _run("nvfp4_quantize(levels=1)", "torchao:nvfp4")
    finite, _ = _amax(x)
    assert not (differs & finite).any()
    assert (differs & ~finite).any()


def test_torchao_nvfp4_two_level_all_zero_tensor_gives_nan_scales():
    """Two-level NVFP4 (per_tensor_amax_to_scale): torchao agrees with the ``reciprocal`` variant except on
    (1) non-finite tensors, (2) tensors whose amax is below 2^-116 (the per-tensor scale amax / 2688 is a binary32
    subnormal) and (3) all-zero tensors, where torchao's per-tensor scale is 0, its block scales NaN and some
    element codes non-zero (-2.0), while the spec declares scale 1 and zero elements."""
    x, differs, exp, got = _run("nvfp4_quantize()", "torchao:nvfp4")
    finite, amax = _amax(x)
    zero = finite & (amax == 0)
    explained = ~finite | zero | (amax < 2.0 ** -116)
    assert not (differs & ~explained).any()
    assert zero.any() and differs[zero].all()
    z = np.nonzero(zero)[0][0]
    assert exp[z, 0] == 0x3F800000 and got[z, 0] == 0  # per-tensor scale: spec 1.0, torchao 0.0
    assert (got[z, 1:5] == 0x7F).all()  # block scales: the UE4M3 NaN
    assert (got[z, 5:] != 0).any() and (exp[z, 5:] == 0).all()
    assert (~differs & finite & (amax >= 2.0 ** -116)).sum() > 1000


def test_torchao_nvfp4_is_closer_to_reciprocal_than_divide():
    """Which division torchao implements: fewer mismatches against ``reciprocal`` than ``divide``."""
    from refarith.certify.identify import identify
    from refarith.golden import get_driver

    base = parse_spec("nvfp4_quantize(levels=1)")
    d = get_driver(base)
    vecs = d.boundary(base)[-126:] + d.random_inputs(base, 64, 3)  # the division-separating blocks
    scores = identify("torchao:nvfp4", base, vary=("division",), vectors=vecs)
    by = {s.spec: s for s in scores}
    rec = by["nvfp4_quantize(division=reciprocal,levels=1,zero_scale=eps,tile=1x16,rounding=rne)"]
    div = by["nvfp4_quantize(division=divide,levels=1,zero_scale=eps,tile=1x16,rounding=rne)"]
    assert rec.mismatches < div.mismatches
