"""The built-in CLI commands: formats and cast, output shape and exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from refarith.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_formats_table_lists_ocp_formats_with_spec_constants(capsys):
    code, out, _ = run(capsys, "formats")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line and not line.startswith("(")}
    assert "448" in rows["ocp_e4m3"].split()
    assert "57344" in rows["ocp_e5m2"].split()
    assert "6" in rows["ocp_e2m1"].split()
    assert "1-4-3" in rows["ocp_e4m3"]


def test_formats_values_of_e2m1_is_the_ocp_list(capsys):
    code, out, _ = run(capsys, "formats", "float4_e2m1fn", "--values", "--json")
    assert code == 0
    table = json.loads(out)["values"]
    assert [r["value"] for r in table[:8]] == ["0", "1/2", "1", "3/2", "2", "3", "4", "6"]
    assert table[8] == {"bits": "0x8", "code": 8, "value": "-0", "value_float": -0.0}


def test_cast_json_shape_and_e4m3_ties(capsys):
    code, out, _ = run(capsys, "cast", "--to", "ocp_e4m3", "--json", "464", "480", "0x1p-10", "--", "-0")
    assert code == 0
    res = json.loads(out)["results"]
    assert [r["bits"] for r in res] == ["0x7e", "0x7f", "0x00", "0x80"]
    assert [r["value"] for r in res] == ["448", "nan", "0", "-0"]
    assert "overflow" in res[1]["flags"] and "inexact" in res[0]["flags"]
    assert set(res[0]) >= {"input", "bits", "value", "flags"}


def test_cast_saturate_and_bit_pattern_input(capsys):
    code, out, _ = run(capsys, "cast", "--from", "binary32", "--to", "e4m3", "--overflow", "saturate", "--json",
                       "0x7f800000", "0x43e80000")
    assert code == 0
    res = json.loads(out)["results"]
    assert res[0]["bits"] == "0x7e" and res[0]["input_value"] == "inf"
    assert res[1]["input_value"] == "464" and res[1]["bits"] == "0x7e"


def test_cast_text_output_shows_code_value_flags(capsys):
    code, out, _ = run(capsys, "cast", "--to", "binary16", "0.1")
    assert code == 0
    line = out.splitlines()[-1]
    assert "0x2e66" in line and "819/8192" in line and "inexact" in line


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["cast", "--to", "e4m3x", "1"], "did you mean"),
        (["cast", "--to", "e4m3", "1.2.3"], "cannot parse"),
        (["cast", "--from", "e4m3", "--to", "binary16", "0x1ff"], "does not fit in 8 bits"),
        (["cast", "--to", "e2m1", "nan"], "no NaN"),
        (["cast", "--to", "e2m1", "--overflow", "inf", "1"], "no infinity"),
        (["cast", "--to", "e4m3", "0x3c00"], "--from"),
        (["formats", "float7"], "unknown format"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_rounding_mode_exits_2():
    r = subprocess.run([sys.executable, "-m", "refarith.cli", "cast", "--to", "e4m3", "--rounding", "up", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "invalid choice" in r.stderr
