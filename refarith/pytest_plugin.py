"""pytest plugin: the ``refarith_*`` markers, the refarith_certify / refarith_prove fixtures, --refarith-fuzz-budget.

In a user's test suite::

    def test_my_cast(refarith_certify):
        refarith_certify(my_kernel, "cast(binary32->ocp_e4m3,overflow=saturate)")

certifies ``my_kernel`` (a callable under the convention of
:mod:`refarith.certify.adapters`, or a target name such as ``ml_dtypes:float8_e4m3fn``)
against the golden vectors of the spec plus ``--refarith-fuzz-budget`` fuzzed
vectors (default 1000), and fails the test with the mismatch classes and the
minimized counterexamples when the kernel is not bit-exact.  ``refarith_prove``
proves a kernel written against :class:`refarith.fast.bitops.BitOps` for every
input (use it under the ``refarith_proof`` marker)::

    @pytest.mark.refarith_proof
    def test_my_kernel_is_rne(refarith_prove):
        refarith_prove(my_kernel, "cast(binary32->ocp_e4m3,overflow=saturate)")
        refarith_prove(my_kernel, prop=never_nan, input_bits=32)
"""

from __future__ import annotations

import pytest

DEFAULT_FUZZ_BUDGET = 1000


def pytest_addoption(parser) -> None:
    group = parser.getgroup("refarith")
    group.addoption("--refarith-fuzz-budget", type=int, default=None, metavar="N",
                    help=f"fuzzed vectors per refarith_certify call (default {DEFAULT_FUZZ_BUDGET})")


MARKERS = (
    "refarith_proof: tests that prove kernels with refarith (the refarith_prove fixture)",
    "refarith_slow: long refarith runs, e.g. exhaustive 2^32 certifications",
    "refarith_fuzz: long refarith differential fuzz campaigns",
    "refarith_golden: tests that certify against refarith's golden vectors",
)
"""The markers this plugin registers in every project that installs refarith: all in the ``refarith_``
namespace, so that a project's own ``slow``/``proof``/... markers keep their meaning (and ``--strict-markers``
still catches a project's unregistered generic names)."""


def pytest_configure(config) -> None:
    for line in MARKERS:
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
    from refarith.certify.identify import failure_hint
    from refarith.certify.report import failure_summary, markdown
    from refarith.certify.runner import certify
    from refarith.errors import KernelError

    def run(kernel, spec, *, fuzz: int | None = None, seed: int = 0, nan_payload_ok: bool = False,
            exhaustive: bool = False):
        try:
            c = certify(kernel, spec, exhaustive=exhaustive, fuzz=refarith_fuzz_budget if fuzz is None else fuzz,
                        seed=seed, nan_payload_ok=nan_payload_ok, progress=False)
        except KernelError as e:
            if e.__context__ is not None and e.__cause__ is None:  # the kernel's own exception: keep its traceback
                e.__cause__ = e.__context__
            raise
        if not c.passed:
            hint = failure_hint(c, kernel)
            pytest.fail(f"refarith certification failed for {c.target} against {c.spec}:\n{failure_summary(c)}"
                        + (f"\n{hint}" if hint else "") + f"\n\n{markdown(c)}", pytrace=False)
        return c

    return run


@pytest.fixture
def refarith_prove():
    """A function ``(kernel, spec=None, *, prop=None, input_bits=None, width=None, timeout=60)`` that
    proves ``kernel(ops, x)`` equal to the cast ``spec`` (or ``prop`` true) for every input and fails the test
    with the concrete counterexample, replayed through the exact model, when it is not; returns the Outcome."""
    import json

    from refarith.smt.registry import PROVED
    from refarith.smt.userkernel import prove_cast_kernel, prove_property

    def run(kernel, spec=None, *, prop=None, input_bits=None, width: int | None = None, timeout: float = 60.0):
        if (spec is None) == (prop is None):
            raise TypeError("refarith_prove needs exactly one of spec or prop")
        if spec is not None:
            out = prove_cast_kernel(kernel, spec, width, timeout)
            what = f"{getattr(kernel, '__qualname__', kernel)} == {spec}"
        else:
            if input_bits is None:
                raise TypeError("refarith_prove(prop=...) needs input_bits")
            out = prove_property(kernel, prop, input_bits, width or 32, timeout)
            what = f"{getattr(prop, '__qualname__', prop)} for {getattr(kernel, '__qualname__', kernel)}"
        if out.verdict != PROVED:
            cx = json.dumps(out.counterexample, indent=2) if out.counterexample is not None else ""
            pytest.fail(f"refarith proof failed: {what}: {out.verdict}\n{cx}"
                        + (f"\nexact model confirms the difference: {out.confirmed}" if out.confirmed is not None
                           else "") + (f"\n{out.detail}" if out.detail else ""), pytrace=False)
        return out

    return run
