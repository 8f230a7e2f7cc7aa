"""Statistical certification of stochastic-rounding kernels with internal randomness (refarith.certify.statistical).

Expected probabilities come from the exact model (by enumeration of every random integer, against the bisection the
certifier uses) and from the worked example of the P3109/gfloat comparison (259 into E5M2 with 5 random bits);
p-values are checked against scipy's ``binomtest``; the four faulty kernels of docs/examples/sr_kernels.py must fail
and the correct one must pass, with fixed seeds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from refarith import fast
from refarith.certify import sr
from refarith.certify.adapters import user_kernel
from refarith.certify.runner import certify
from refarith.certify.statistical import (
    DEFAULT_ALPHA,
    binom_two_sided,
    binom_two_sided_mp,
    detectable_bias,
    holm,
    run_statistical,
)
from refarith.errors import BadValueError
from refarith.spec import parse_spec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from docs.examples import sr_kernels  # noqa: E402

E4M3 = "cast(binary32->ocp_e4m3,rounding=sr,k=8)"
E2M1 = "cast(binary32->ocp_e2m1,rounding=sr,k=8)"


def _b32(v: float) -> int:
    return int(np.array([v], dtype=np.float32).view(np.uint32)[0])


# ------------------------------------------------------------------ exact probabilities
@pytest.mark.parametrize("variant,count", [("a", 1), ("c", 2)])
def test_worked_example_259_e5m2(variant, count):
    # 259 = 256 + 3/64 ulp: 'a' (P3109 StochasticA, refarith's rule) rounds up for 1 of 32 random integers,
    # 'c' (StochasticC, gfloat's Stochastic) for 2 (the worked example)
    spec = parse_spec(f"cast(binary32->ocp_e5m2,rounding=sr,k=5,sr={variant})")
    o = sr.outcome(spec, _b32(259.0))
    assert (o.lo, o.hi) == (0x5C, 0x5D)  # 256, 320
    assert o.p == Fraction(count, 32)


@pytest.mark.parametrize("variant", ["a", "b", "c", "c_odd"])
def test_bisection_equals_enumeration(variant):
    spec = parse_spec(f"cast(binary32->ocp_e2m1,rounding=sr,k=4,sr={variant})")
    for x in sr.sr_inputs(spec):
        o = sr.outcome(spec, x)
        if o is None:
            continue
        counts = sr.outcome_by_enumeration(spec, x)
        assert set(counts) == {o.lo, o.hi}
        assert counts[o.hi] == (o.count if not o.deterministic else 16)


def test_input_set_covers_the_hard_places():
    spec = parse_spec(E4M3)
    xs = set(sr.sr_inputs(spec))
    f32 = lambda v: _b32(v)  # noqa: E731
    assert f32(448.0) in xs and f32(464.0) in xs  # max and the overflow tie
    assert f32(2.0 ** -9) + 1 in xs  # just above the smallest subnormal
    assert f32(2.0) - 1 in xs  # just below a binade boundary (the carry)
    assert f32(1.0 + 0.125 / 2) in xs  # a tie between 1 and 1.125
    assert f32(1.0 + 0.125 * (0.5 + 2 ** -9)) in xs  # one fraction bit more than k
    assert _b32(-1.0 - 0.125 / 2) in xs  # negatives
    assert 0x7F800000 in xs and 0x7FC00000 in xs  # inf and NaN (deterministic)


# ------------------------------------------------------------------ the test
def test_binomial_p_values_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for hits, n, p in [(5, 20, Fraction(1, 4)), (0, 4000, Fraction(1, 256)), (39, 4000, Fraction(1, 256)),
                       (2000, 4000, Fraction(1, 2)), (2100, 4000, Fraction(1, 2)), (3990, 4000, Fraction(255, 256)),
                       (300, 1000, Fraction(85, 256)), (1, 3, Fraction(1, 3))]:
        want = stats.binomtest(hits, n, float(p)).pvalue
        got = binom_two_sided(hits, n, p)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-300), (hits, n, p)


def test_high_precision_p_value_agrees():
    for hits, n, p in [(30, 300, Fraction(1, 32)), (170, 300, Fraction(1, 2)), (0, 400, Fraction(3, 256))]:
        assert binom_two_sided_mp(hits, n, p) == pytest.approx(binom_two_sided(hits, n, p), rel=1e-9)


def test_detectable_bias_is_the_rejection_boundary():
    thr = DEFAULT_ALPHA / 2286
    d = detectable_bias(10000, thr)
    hits = 5000 + round(d * 10000)
    assert binom_two_sided(hits, 10000, Fraction(1, 2)) <= thr < binom_two_sided(hits - 1, 10000, Fraction(1, 2))
    assert 0.02 < d < 0.04


def test_holm():
    # Holm at 0.05 over 4: 0.01 <= 0.05/4, 0.015 <= 0.05/3, then 0.03 > 0.05/2 stops
    assert holm([0.03, 0.01, 0.015, 0.5], 0.05) == [False, True, True, False]
    assert holm([0.03, 0.01, 0.02, 0.5], 0.05) == [False, True, False, False]  # 0.02 > 0.05/3
    assert holm([0.2, 0.3], 0.05) == [False, False]


def test_bad_arguments():
    with pytest.raises(BadValueError):
        binom_two_sided(3, 2, Fraction(1, 2))
    with pytest.raises(BadValueError):
        binom_two_sided(1, 2, Fraction(1))
    k = user_kernel(sr_kernels.make("correct", "ocp_e2m1", 8, 1), "correct")
    for bad in (0, -5, True, 2.5):
        with pytest.raises(BadValueError, match="--sr-samples"):
            certify(k, E2M1, sr_samples=bad)
    with pytest.raises(BadValueError, match="stochastic-rounding specs"):
        certify(k, "cast(binary32->ocp_e2m1)", sr_samples=100)


# ------------------------------------------------------------------ correct and faulty kernels
def test_correct_kernel_passes_e2m1():
    k = user_kernel(sr_kernels.make("correct", "ocp_e2m1", 8, 7), "correct")
    c = certify(k, E2M1, sr_samples=4000)
    s = c.statistical
    assert c.passed and s["verdict"] == "pass" and s["failed_inputs"] == 0
    assert s["alpha"] == DEFAULT_ALPHA and s["tested_inputs"] > 100
    row = s["per_input"][0]
    assert {"expected_p", "observed", "p_value", "bias_ulps", "spec_bias_ulps"} <= set(row)
    json.loads(c.to_json())  # the statistical section is in the certificate JSON


@pytest.mark.parametrize("name", ["rounds_down", "drops_carry", "fast_biased", "returns_zero"])
def test_faulty_kernels_fail(name):
    spec = parse_spec(E4M3)
    codes = sr.sr_inputs(spec, max_values=12)
    k = user_kernel(sr_kernels.make(name, "ocp_e4m3", 8, 11), name)
    res, summary = run_statistical(spec, k, 2000, codes=codes)
    assert summary["verdict"] == "fail" and summary["failed_inputs"] > 0
    if name == "drops_carry":  # the carry lost: a result that is neither neighbour, at a binade boundary
        bad = [r for r in res if r.other]
        assert bad and all(int(r.hi, 16) & 0x7 == 0 for r in bad)


def test_statistics_tell_variants_apart_at_small_k():
    # a kernel of variant c (round the fraction to k bits first) with k = 2: certified against c it passes,
    # against a (truncate) it fails where the two probabilities differ by 1/4
    rng = np.random.default_rng(3)

    def c_kernel(x):
        return fast.encode(x, "ocp_e2m1", rounding="sr", rand=rng.integers(0, 4, x.size), rand_bits=2, sr_variant="c")

    assert certify(c_kernel, "cast(binary32->ocp_e2m1,rounding=sr,sr=c,k=2)", sr_samples=2000).passed
    bad = certify(c_kernel, "cast(binary32->ocp_e2m1,rounding=sr,k=2)", sr_samples=2000)
    assert not bad.passed and bad.statistical["impossible_results"] == 0
    assert all(abs(r["bias_ulps"]) >= 0.1 for r in bad.statistical["per_input"] if r["failed"])


def test_correct_kernel_false_alarms_over_seeds():
    # 20 seeds at N=500: each run's family-wise false-alarm rate is 1e-6, so none may fail
    spec = parse_spec(E2M1)
    codes = sr.sr_inputs(spec)
    fails = 0
    for seed in range(20):
        k = user_kernel(sr_kernels.make("correct", "ocp_e2m1", 8, 1000 + seed), "correct")
        fails += run_statistical(spec, k, 500, codes=codes)[1]["verdict"] == "fail"
    assert fails == 0


def test_cli_sr_samples_bad_value_exit_2(tmp_path):
    for bad in ("0",):
        p = subprocess.run([sys.executable, "-m", "refarith", "certify", "docs.examples.sr_kernels:correct",
                            "--spec", E4M3, "--sr-samples", bad], capture_output=True, text=True, cwd=ROOT)
        assert p.returncode == 2, p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and "--sr-samples" in lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["correct", "rounds_down", "drops_carry", "fast_biased", "returns_zero"])
def test_full_input_set_at_1e4_samples(name):
    k = user_kernel(sr_kernels.make(name, "ocp_e4m3", 8, 5), name)
    c = certify(k, E4M3, sr_samples=10000)
    assert c.passed == (name == "correct")
