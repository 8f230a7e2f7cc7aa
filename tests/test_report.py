"""`refarith report ops`, the L-Mul error rows (checked against hand-worked values) and the claims table."""

from __future__ import annotations

import argparse
import os
from fractions import Fraction

import pytest

from refarith.analysis import lmul as A
from refarith.cli_commands import report


def _run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="refarith")
    sub = p.add_subparsers(dest="command")
    report.add_parser(sub)
    args = p.parse_args(argv)
    return args.func(args)


def test_lmul_m1_rows_hand_worked():
    """m=1: mantissas {0, 1/2}, offset 2^-1.  bitwise: (0,0) 1.5 vs 1 -> 1/2; (0,1/2) and (1/2,0): carry, 2 vs 1.5
    -> 1/3; (1/2,1/2): 3 vs 2.25 -> 1/3.  formula: (1/2,1/2): 2.5 = 1.25*2 -> tie -> 2 vs 2.25 -> 1/9."""
    assert A.operator_errors(1, "bitwise") == (Fraction(1, 2), (Fraction(1, 2) + 3 * Fraction(1, 3)) / 4)
    want = (Fraction(1, 2) + 2 * Fraction(1, 3) + Fraction(1, 9)) / 4
    assert A.operator_errors(1, "formula") == (Fraction(1, 2), want)


def test_rne_rows_respect_the_unit_roundoff():
    """Correct rounding to p significand bits has relative error at most u/(1+u), u = 2^-p (Higham, Thm 2.2)."""
    for m in (3, 2):
        mx, mean = A.operator_errors(m, None)
        u = Fraction(1, 2 ** (m + 1))
        assert 0 < mean < mx <= u / (1 + u)


def test_end_to_end_rne_bound_and_lmul_rows():
    mx, mean = A.end_to_end_errors("rne", 3, 6)
    assert 0 < mean < mx < 0.2
    rows = A.rows(quick=True)
    assert {k for r in rows for k in r} == set(report.COLUMNS)
    lm = [(r["variant"], r["domain"].split()[0]) for r in rows if r["operator"] == "lmul" and "operator" in r["metric"]]
    assert sorted(lm) == sorted((v, f"m={m}") for m in range(1, 8) for v in ("formula", "bitwise"))
    assert {r["variant"] for r in rows if r["operator"] == "mul_rne"} == {"ocp_e4m3", "ocp_e5m2"}


def test_claims_table():
    cl = A.claims(quick=True)
    assert len(cl) == 3
    assert all(set(c) == set(report.CLAIM_COLUMNS) for c in cl)
    assert "e4m3" in cl[0]["claim"] and "e5m2" in cl[1]["claim"]


def test_markdown_table_escapes_and_rejects_missing_keys():
    t = report.markdown_table([{"a": "x|y", "b": 0.123456}], ("a", "b"))
    assert t.splitlines()[2] == "| x\\|y | 0.1235 |"
    with pytest.raises(KeyError):
        report.markdown_table([{"a": 1}], ("a", "b"))


def test_report_writes_markdown(tmp_path, capsys):
    out = tmp_path / "ops.md"
    assert _run(["report", "ops", "--quick", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Error analysis")
    assert "`refarith report ops --quick --markdown" in text
    assert "## lmul" in text and "## L-Mul paper claims" in text
    for name in report.analysis_modules():
        assert f"## {name.rsplit('.', 1)[1]}" in text
    assert os.listdir(tmp_path) == ["ops.md"]  # no temporary file left behind
    err = capsys.readouterr().err
    assert "refarith.analysis.lmul" in err and "L-Mul paper claims" in err


def test_broken_module_is_an_error(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ops.md"
    monkeypatch.setattr(report, "analysis_modules", lambda: ["refarith.analysis.lmul", "refarith.analysis._no_such"])
    assert _run(["report", "ops", "--quick", "--markdown", str(out)]) == 1
    assert not out.exists()
    assert "_no_such: import failed" in capsys.readouterr().err


def test_bad_markdown_directory(tmp_path):
    from refarith.errors import BadValueError

    with pytest.raises(BadValueError):
        _run(["report", "ops", "--markdown", str(tmp_path / "missing" / "ops.md")])


def test_write_atomic_replaces(tmp_path):
    p = tmp_path / "f.md"
    p.write_text("old")
    report.write_atomic(str(p), "new")
    assert p.read_text() == "new" and os.listdir(tmp_path) == ["f.md"]


@pytest.mark.parametrize("op", ["exact_product", "rne", "lmul_bitwise", "lmul_formula"])
def test_end_to_end_matches_the_exact_model(op):
    """g=4, m=2: operands 1 + i/16 rounded into ocp_e5m2 by round_value, then the exact model's operator."""
    from refarith.exact.lmul import lmul
    from refarith.exact.ops import decode, mul
    from refarith.exact.rounding import round_value
    from refarith.exact.value import Value

    vals = [1 + Fraction(i, 16) for i in range(16)]
    codes = [round_value(Value.of(v), "ocp_e5m2").code for v in vals]
    errs = []
    for vx, cx in zip(vals, codes):
        for vy, cy in zip(vals, codes):
            if op == "exact_product":
                got = decode(cx, "ocp_e5m2").fraction * decode(cy, "ocp_e5m2").fraction
            elif op == "rne":
                got = decode(mul(cx, cy, "ocp_e5m2").code, "ocp_e5m2").fraction
            else:
                got = decode(lmul(cx, cy, "ocp_e5m2", op.removeprefix("lmul_")).code, "ocp_e5m2").fraction
            errs.append(abs(got - vx * vy) / (vx * vy))
    mx, mean = A.end_to_end_errors(op, 2, 4)
    assert mx == pytest.approx(float(max(errs)), rel=1e-12)
    assert mean == pytest.approx(float(sum(errs) / len(errs)), rel=1e-12)
