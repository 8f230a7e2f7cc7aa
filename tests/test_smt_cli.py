"""`refarith prove` and the registry runner: listing, selection, exit codes, timeouts, unconfirmed counterexamples."""

from __future__ import annotations

import json
import time

import pytest

from refarith.cli import main
from refarith.smt import registry
from refarith.smt.registry import Outcome, Theorem


@pytest.fixture
def temp_theorems():
    added = []

    def add(th: Theorem) -> Theorem:
        registry.load_all()
        registry.register(th)
        added.append(th.name)
        return th

    yield add
    for n in added:
        registry._REGISTRY.pop(n, None)


def test_list_shows_cast_family(capsys):
    assert main(["prove", "--list", "--only", "cast.lut16.*"]) == 0
    out = capsys.readouterr().out
    assert "cast.lut16.binary32->ocp_e4m3" in out and "cast.lut16.binary32->bfloat16  [counterexample" in out


def test_run_selected_json(capsys):
    rc = main(["prove", "--only", "cast.lut16.binary32->ocp_e2m1,cast.lut16.binary32->bfloat16", "--jobs", "2",
               "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["ok"]
    by = {r["name"]: r for r in doc["results"]}
    assert by["cast.lut16.binary32->ocp_e2m1"]["verdict"] == "proved"
    cx = by["cast.lut16.binary32->bfloat16"]
    assert cx["verdict"] == "counterexample" and cx["confirmed"] is True
    assert cx["counterexample"]["x_bits"].startswith("0x")


def test_table_output(capsys):
    assert main(["prove", "--only", "cast.symmetric.binary32->ocp_e2m1"]) == 0
    out = capsys.readouterr().out
    assert "theorem" in out and "expected" in out and "verdict" in out
    assert "cast.symmetric.binary32->ocp_e2m1" in out and "1/1 as expected" in out


@pytest.mark.parametrize("argv", [["prove", "--jobs", "0"], ["prove", "--jobs", "-2"],
                                  ["prove", "--only", "no.such.theorem*"], ["prove", "--timeout", "-1"],
                                  ["prove", "--timeout", "0"], ["prove", "--solver", "nosuch"],
                                  ["prove", "--solver", "both", "--second", "z3"]])
def test_bad_input_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("refarith: error:") and err.count("\n") == 1


def test_results_name_their_solver(capsys):
    names = "cast.lut16.binary32->ocp_e2m1,lmul.formula_bitwise_differ_iff_carry.m2"
    assert main(["prove", "--only", names, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["solver"] == "z3"
    by = {r["name"]: r for r in doc["results"]}
    assert by["cast.lut16.binary32->ocp_e2m1"]["solvers"] == ["z3"]
    assert by["cast.lut16.binary32->ocp_e2m1"]["agreed"] is None  # one solver: nothing to agree with
    assert by["lmul.formula_bitwise_differ_iff_carry.m2"]["solvers"] == ["enumeration"]
    assert main(["prove", "--only", names]) == 0
    out = capsys.readouterr().out
    assert "solvers" in out.splitlines()[0] and "| z3" in out and "| enumeration" in out


def test_unexpected_verdict_exit_1(temp_theorems, capsys):
    temp_theorems(Theorem("zz_test.wrong", "a claim whose check finds a counterexample", lambda: Outcome(
        "counterexample", {"x": "0x1"}, True), expect="proved", budget=5))
    assert main(["prove", "--only", "zz_test.wrong"]) == 1
    assert "NOT AS EXPECTED" in capsys.readouterr().out


def test_unconfirmed_counterexample_is_not_ok(temp_theorems):
    th = temp_theorems(Theorem("zz_test.unconfirmed", "expected counterexample, but the exact model disagrees",
                               lambda: Outcome("counterexample", {"x": "0x1"}, False), expect="counterexample"))
    (r,) = registry.run([th])
    assert not r.ok


def _sleepy() -> Outcome:
    time.sleep(30)
    return Outcome("proved")


def test_budget_kills_worker(temp_theorems):
    th = temp_theorems(Theorem("zz_test.sleepy", "never finishes in time", _sleepy, budget=1.0))
    t0 = time.perf_counter()
    (r,) = registry.run([th], jobs=2)
    assert r.verdict == "timeout" and not r.ok
    assert time.perf_counter() - t0 < 25
