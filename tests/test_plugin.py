"""The pytest plugin: markers, the refarith_certify fixture and --refarith-fuzz-budget, in a user's suite."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = '''
import numpy as np
import ml_dtypes

SPEC = "cast(binary32->ocp_e4m3,overflow=nan)"

def good(x):
    return x.astype(ml_dtypes.float8_e4m3fn)

def saturating(x):
    return np.where(np.isnan(x), x, np.clip(x, -448, 448)).astype(np.float32).astype(ml_dtypes.float8_e4m3fn)

def test_good(refarith_certify, refarith_fuzz_budget):
    c = refarith_certify(good, SPEC)
    assert c.passed
    assert c.stages[-1].vectors == refarith_fuzz_budget

def test_bad(refarith_certify):
    refarith_certify(saturating, SPEC, fuzz=0)

@pytest.mark.refarith_fuzz
def test_marked():
    pass
'''


def test_fixture_passes_and_fails_user_kernels(pytester):
    pytest.importorskip("ml_dtypes")
    pytester.makepyfile(test_user="import pytest\n" + USER_TESTS)
    r = pytester.runpytest("-p", "no:cacheprovider", "--refarith-fuzz-budget", "77", "--strict-markers", "-q")
    r.assert_outcomes(passed=2, failed=1)
    r.stdout.fnmatch_lines(["*refarith certification failed for *saturating*", "*| overflow | *"])


def test_fuzz_budget_option_registered(pytestconfig):
    assert pytestconfig.getoption("--refarith-fuzz-budget") is None or pytestconfig.getoption(
        "--refarith-fuzz-budget") >= 0
