"""pytest plugin: refarith's markers, the ``refarith_certify`` fixture and ``--refarith-fuzz-budget``.

In a user's test suite::

    def test_my_cast(refarith_certify):
        refarith_certify(my_kernel, "cast(binary32->ocp_e4m3,overflow=saturate)")

certifies ``my_kernel`` (a callable under the convention of
:mod:`refarith.certify.adapters`, or a target name such as ``ml_dtypes:float8_e4m3fn``)
against the golden vectors of the spec plus ``--refarith-fuzz-budget`` fuzzed
vectors (default 1000), and fails the test with the mismatch classes and the
minimized counterexamples when the kernel is not bit-exact.
"""

from __future__ import annotations

import pytest

DEFAULT_FUZZ_BUDGET = 1000


def pytest_addoption(parser) -> None:
    group = parser.getgroup("refarith")
    group.addoption("--refarith-fuzz-budget", type=int, default=None, metavar="N",
                    help=f"fuzzed vectors per refarith_certify call (default {DEFAULT_FUZZ_BUDGET})")


def pytest_configure(config) -> None:
    for line in (
        "proof: theorems of the refarith proof registry",
        "slow: exhaustive 2^32 sweeps and other long runs",
        "fuzz: long differential fuzz campaigns",
        "golden: golden vector checks",
    ):
        config.addinivalue_line("markers", line)


@pytest.fixture
def refarith_fuzz_budget(request) -> int:
    """The fuzz budget: ``--refarith-fuzz-budget`` or the default."""
    v = request.config.getoption("--refarith-fuzz-budget", default=None)
    return DEFAULT_FUZZ_BUDGET if v is None else int(v)


@pytest.fixture
def refarith_certify(refarith_fuzz_budget):
    """A function ``(kernel, spec, *, fuzz=None, seed=0, nan_payload_ok=False, exhaustive=False) -> Certificate``
    that fails the calling test unless the kernel passes."""
    from refarith.certify.report import markdown
    from refarith.certify.runner import certify

    def run(kernel, spec, *, fuzz: int | None = None, seed: int = 0, nan_payload_ok: bool = False,
            exhaustive: bool = False):
        c = certify(kernel, spec, exhaustive=exhaustive, fuzz=refarith_fuzz_budget if fuzz is None else fuzz,
                    seed=seed, nan_payload_ok=nan_payload_ok, progress=False)
        if not c.passed:
            pytest.fail(f"refarith certification failed for {c.target} against {c.spec}:\n{markdown(c)}",
                        pytrace=False)
        return c

    return run
