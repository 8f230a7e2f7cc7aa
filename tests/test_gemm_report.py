"""The GEMM section of `refarith report ops` (refarith.analysis.gemm)."""

from __future__ import annotations

from fractions import Fraction

from refarith.analysis.gemm import rows


def test_gemm_report_rows() -> None:
    """exact-then-round errs by at most u / (1 + u) (round to nearest, u = 2^-3 for E5M2) and attains it on the
    E2M1 grid (S = 3 * 1.5 + 0 = 4.5, a tie, rounds to 4); promotion every 128 lowers the no-promotion error
    on U[0, 1) inputs."""
    r = rows(quick=True)
    acc = {x["variant"]: x for x in r if x["operator"] == "scaled_mm accumulator"}
    u = Fraction(1, 8)
    assert acc["exact"]["max_err"] == float(u / (1 + u))
    assert all(x["max_err"] >= acc["exact"]["max_err"] for x in acc.values())
    tc = {x["variant"]: x for x in r if "uniform01" in x["domain"]}
    assert tc["deepseek_v3"]["max_err"] < tc["hopper_fp8"]["max_err"] / 10
    assert tc["sequential"]["max_err"] < 2.0 ** -20
