"""The JSON of ``cast``, ``formats``, ``quantize`` and ``prove`` matches its documented schema (docs/schema/), carries
``schema_version`` 1 first, uses snake_case keys, and keeps one representation per field (an exact string field and
a binary64 ``*_float`` field, never NaN/Infinity literals)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from refarith.cli import main

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "docs" / "schema"
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def _check(name: str, text: str) -> dict:
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"{name}: JSON literal {c} is not JSON"))
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert next(iter(doc)) == "schema_version" and doc["schema_version"] == 1
    return doc


def _keys(node, free=()) -> list[str]:
    """Every object key, except inside the free-form objects named in ``free`` (a theorem's counterexample)."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append(k)
            if k not in free:
                out += _keys(v, free)
    elif isinstance(node, list):
        for v in node:
            out += _keys(v, free)
    return out


def _run(capsys, *argv) -> str:
    assert main(list(argv)) in (0, 1)
    return capsys.readouterr().out


def test_cast(capsys):
    doc = _check("cast", _run(capsys, "cast", "--to", "ocp_e4m3", "--json", "464", "1e400", "1/3", "nan", "--",
                              "-0", "-inf"))
    assert all(SNAKE.match(k) for k in _keys(doc))
    r = {x["input"]: x for x in doc["results"]}
    assert r["464"]["value"] == "448" and r["464"]["value_float"] == 448.0 and r["464"]["code"] == 0x7E
    assert r["1e400"]["input_value_float"] is None and r["1e400"]["value"] == "nan"
    assert r["1/3"]["input_value"] == "1/3" and r["1/3"]["input_value_float"] == 1 / 3
    assert r["-0"]["value_float"] == 0.0 and str(r["-0"]["value_float"]) == "-0.0"
    assert doc["spec"] is None and doc["target"] == "ocp_e4m3"
    doc = _check("cast", _run(capsys, "cast", "--from", "binary32", "--to", "e4m3", "--json", "0x7f800000"))
    assert doc["spec"] == "cast(binary32->ocp_e4m3,rounding=rne,overflow=nan)"
    assert doc["results"][0]["input_bits"] == "0x7f800000" and doc["results"][0]["input_value_float"] is None


@pytest.mark.parametrize("argv", [["formats", "--json"], ["formats", "--ints", "--json"], ["formats", "e8m0", "--json"],
                                  ["formats", "int8", "--json"]])
def test_formats(argv, capsys):
    doc = _check("formats", _run(capsys, *argv))
    assert all(SNAKE.match(k) for k in _keys(doc))
    rows = {f["name"]: f for f in doc["formats"]}
    if "ocp_e4m3" in rows:  # OCP OFP8: max 448, min normal 2^-6, min subnormal 2^-9
        e = rows["ocp_e4m3"]
        assert (e["max"], e["min_normal"], e["min_subnormal"], e["bias"]) == ("448", "1/64", "1/512", 7)
        assert (e["max_float"], e["min_normal_float"], e["min_subnormal_float"]) == (448.0, 2.0 ** -6, 2.0 ** -9)
    if "int8" in rows:
        assert (rows["int8"]["max"], rows["int8"]["min"], rows["int8"]["bias"]) == ("127", "-128", None)
    if "e8m0" in rows:
        assert rows["e8m0"]["min_subnormal"] is None and rows["e8m0"]["max"] == str(2 ** 127)


def test_format_values(capsys):
    doc = _check("format_values", _run(capsys, "formats", "float4_e2m1fn", "--values", "--json"))
    assert [v["value"] for v in doc["values"][:8]] == ["0", "1/2", "1", "3/2", "2", "3", "4", "6"]  # OCP MX FP4
    assert [v["value_float"] for v in doc["values"][9:16]] == [-0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def test_quantize(capsys, tmp_path):
    x = np.zeros((2, 32), np.float32)
    x[0, :4] = [1.0, 2.0, 4.0, 6.0]
    np.save(tmp_path / "x.npy", x)
    doc = _check("quantize", _run(capsys, "quantize", "--format", "mxfp4", str(tmp_path / "x.npy"), "-o",
                                  str(tmp_path / "q.npz"), "--json"))
    # every element is an E2M1 value times 2^0: lossless, SQNR infinite (null), errors 0
    assert doc["lossless"] is True and doc["sqnr_db"] is None and doc["max_abs_error"] == 0.0
    assert doc["elements"] == 64 and doc["blocks"] == 2 and doc["shape"] == [2, 32]
    x[0, 0] = 1.25
    np.save(tmp_path / "x.npy", x)
    doc = _check("quantize", _run(capsys, "quantize", "--format", "mxfp4", str(tmp_path / "x.npy"), "-o",
                                  str(tmp_path / "q.npz"), "--json"))
    assert doc["lossless"] is False and doc["max_abs_error"] == 0.25 and doc["sqnr_db"] > 0


def test_prove_list_and_run(capsys):
    doc = _check("prove_list", _run(capsys, "prove", "--list", "--only", "cast.lut16.*", "--json"))
    assert any(t["name"] == "cast.lut16.binary32->ocp_e4m3" for t in doc["theorems"])
    doc = _check("prove", _run(capsys, "prove", "--only", "cast.lut16.binary32->ocp_e2m1", "--json"))
    assert all(SNAKE.match(k) for k in _keys(doc, free=("counterexample", "by_solver", "solver_seconds")))
    assert doc["results"][0]["verdict"] == "proved"


def test_prove_kernel(capsys, monkeypatch):
    monkeypatch.chdir(ROOT / "docs" / "examples")
    doc = _check("prove_kernel", _run(capsys, "prove", "--kernel", "e4m3_kernel:e4m3_round_half_up", "--spec",
                                      "cast(binary32->ocp_e4m3,overflow=saturate)", "--json"))
    assert doc["verdict"] == "counterexample" and doc["confirmed"] is True
    cx = doc["counterexample"]
    assert cx["kernel"] != cx["exact_model"] and cx["spec"] == "cast(binary32->ocp_e4m3,rounding=rne,overflow=saturate)"


def test_schemas_are_valid_and_closed():
    for name in ("cast", "formats", "format_values", "quantize", "prove", "prove_list", "prove_kernel"):
        schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["properties"]["schema_version"] == {"const": 1, "description": schema["properties"][
            "schema_version"]["description"]}
        assert schema["additionalProperties"] is False and "schema_version" in schema["required"]
