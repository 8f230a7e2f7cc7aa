"""pytest plugin: registers refarith's markers (proof, golden, fuzz, slow)."""

from __future__ import annotations


def pytest_configure(config) -> None:
    for line in (
        "proof: theorems of the refarith proof registry",
        "slow: exhaustive 2^32 sweeps and other long runs",
        "fuzz: long differential fuzz campaigns",
        "golden: golden vector checks",
    ):
        config.addinivalue_line("markers", line)
