"""Readable results: numbers as the field reads them, short block counterexamples, totals that count an input once,
the FAIL hint (identify's cheap part, flush-to-zero variants included), shrunk fuzz counterexamples, the pytest
fixture's failure message, pictures in the HTML report."""

from __future__ import annotations

import json
import struct
from fractions import Fraction

import numpy as np
import pytest

from refarith.certify.runner import Certificate, Stage, certify
from refarith.cli import main
from refarith.exact.show import hex_float, short_decimal, show_code, show_value
from refarith.formats import get_format
from refarith.golden.drivers import CLASSES, get_driver
from refarith.spec import parse_spec

pytest_plugins = ["pytester"]

E4M3_SAT = "cast(binary32->ocp_e4m3,overflow=saturate)"
MX = "mx_quantize(ocp_e4m3,block=32,scale=floor)"


# ------------------------------------------------------------------ numbers
def test_show_code_reads_like_the_field():
    e4m3 = get_format("ocp_e4m3")
    assert show_code(0x7E, e4m3) == "0x7e  +0x1.cp+8 (448)"  # OCP OFP8 table: 0x7e is 448
    assert show_code(0x01, e4m3) == "0x01  +0x1p-9 (2^-9, ~0.00195312)"  # smallest subnormal 2^-9
    assert show_code(0x7F, e4m3) == "0x7f  nan" and show_code(0x80, e4m3) == "0x80  -0"
    assert show_code(0x3F800000, get_format("binary32")) == "0x3f800000  +0x1p+0 (1)"
    assert show_value("-inf") == "-inf" and show_value(Fraction(-1, 2)) == "-0x1p-1 (-0.5)"


def test_the_reviewers_fraction_is_short():
    text = show_value(Fraction(4194305, 713623846352979940529142984724747568191373312))
    assert len(text) < 40 and "/" not in text and text.startswith("+0x1.000004p-127")


@pytest.mark.parametrize("bits", [0x00000001, 0x007FFFFF, 0x00800000, 0x3DCCCCCD, 0x43E80001, 0x7F7FFFFF,
                                  0xBF800001, 0x4B000001])
def test_hex_float_agrees_with_python(bits):
    """Independent reference: Python's float.fromhex of our hex float is the binary32 value itself."""
    x = struct.unpack("<f", struct.pack("<I", bits))[0]
    assert float.fromhex(hex_float(Fraction(x))) == x
    d = short_decimal(Fraction(x))
    assert float(d.lstrip("~")) == pytest.approx(x, rel=5e-6)
    assert d.startswith("~") != (Fraction(d.lstrip("~")) == Fraction(x))


# ------------------------------------------------------------------ CLI certify output and the FAIL hint
def test_cli_fail_shows_hex_values_and_what_the_kernel_matches(capsys):
    pytest.importorskip("ml_dtypes")
    rc = main(["certify", "ml_dtypes:float8_e4m3fn", "--spec", E4M3_SAT])
    out = capsys.readouterr().out
    assert rc == 1
    assert "0x43e80001  +0x1.d00002p+8 (~464)" in out  # the smallest overflowing input, as hex and value
    assert "expected 0x7e  +0x1.cp+8 (448), got 0x7f  nan" in out
    assert "kernel looks like: matches overflow=nan" in out  # ml_dtypes' E4M3 overflows to NaN
    assert max(len(line) for line in out.splitlines()) < 200
    assert not any("/" in line and "input" in line for line in out.splitlines())  # no exact fractions


def _ftz(x):
    """An independent FTZ kernel: ml_dtypes' RNE cast, then every subnormal E4M3 result flushed to its signed
    zero (exponent field 0, mantissa non-zero -> sign bit only)."""
    import ml_dtypes

    c = np.asarray(x, dtype=np.float32).astype(ml_dtypes.float8_e4m3fn).view(np.uint8).copy()
    sub = ((c & 0x78) == 0) & ((c & 0x07) != 0)
    c[sub] &= 0x80
    return c


def _daz(x):
    """An independent DAZ kernel for binary16 sources: subnormal halves read as signed zero, then ml_dtypes."""
    import ml_dtypes

    h = np.asarray(x, dtype=np.float16).view(np.uint16).copy()
    sub = ((h & 0x7C00) == 0) & ((h & 0x03FF) != 0)
    h[sub] &= 0x8000
    return h.view(np.float16).astype(ml_dtypes.float8_e5m2)


@pytest.mark.slow  # identify over the flush variants / the exact MX model per candidate: tens of seconds
def test_identify_names_flush_to_zero_variants():
    pytest.importorskip("ml_dtypes")
    from refarith.certify.identify import closest, identify

    scores = identify(_ftz, "cast(binary32->ocp_e4m3)", vary=("overflow", "subnormal"))
    assert scores[0].matches and scores[0].spec == "cast(binary32->ocp_e4m3,rounding=rne,overflow=nan,subnormal=ftz)"
    assert closest(scores, "cast(binary32->ocp_e4m3)").startswith("matches subnormal=ftz")
    scores = identify(_daz, "cast(binary16->ocp_e5m2)", vary=("subnormal",))
    assert [s.spec for s in scores if s.matches] == ["cast(binary16->ocp_e5m2,rounding=rne,overflow=inf,subnormal=daz)"]


def test_flush_to_zero_spec_exact_and_fast_agree_with_an_independent_kernel():
    pytest.importorskip("ml_dtypes")
    spec = "cast(binary32->ocp_e4m3,overflow=nan,subnormal=ftz)"
    assert certify(_ftz, spec).passed
    assert certify("refarith:numpy", spec).passed
    assert not certify("ml_dtypes:float8_e4m3fn", spec).passed  # gradual underflow is not FTZ


def test_fail_hint_names_the_closest_variant_and_the_classes():
    pytest.importorskip("ml_dtypes")
    from refarith.certify.identify import failure_hint

    def mostly_nan(x):  # ml_dtypes, except 1.0 gives NaN: no variant matches
        c = _ftz(x)
        c[np.asarray(x, dtype=np.float32) == 1.0] = 0x7F
        return c

    c = certify(mostly_nan, "cast(binary32->ocp_e4m3,subnormal=ftz)")
    hint = failure_hint(c, mostly_nan)
    assert hint.startswith("kernel looks like: closest variant: the spec itself")
    assert "differs from it in: in_range" in hint


# ------------------------------------------------------------------ totals: each input once
def test_totals_count_an_input_once_over_the_stages():
    pytest.importorskip("ml_dtypes")
    c = certify("ml_dtypes:float8_e4m3fn", E4M3_SAT, fuzz=400, seed=1)
    golden, fuzz = c.stages
    spec = parse_spec(E4M3_SAT)
    d = get_driver(spec)
    import ml_dtypes

    def bad(codes):  # independent: ml_dtypes vs the exact model, input by input
        x = np.array(codes, dtype=np.uint32).view(np.float32)
        got = x.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
        return {int(b) for b, g in zip(codes, got) if (d.exact(spec, (int(b),)) or (None,))[0] not in (None, int(g))}

    from refarith.certify.fuzz import run_fuzz
    from refarith.golden import fileformat as ff
    from refarith.golden.generate import find_file

    path, sha = find_file(spec, None)
    gin = [int(v) for v in ff.load(path, sha).inputs[0]]
    fin = [v[0] for v in run_fuzz(spec, 400, 1)]
    union = bad(gin) | bad(fin)
    assert sum(golden.mismatches.values()) + sum(fuzz.mismatches.values()) > len(union)  # the stages overlap
    assert sum(c.totals().values()) == len(union)
    j = json.loads(c.to_json())
    assert sum(j["mismatch_totals"].values()) == len(union) and "seen" not in j["stages"][0]


def test_totals_of_stages_without_a_record_add_up():
    s1 = Stage("golden", "x", vectors=5)
    s1.mismatches["overflow"] = 2
    s2 = Stage("fuzz", "y", vectors=5)
    s2.seen = {(1,): "overflow", (2,): "in_range"}
    s2.mismatches.update(overflow=1, in_range=1)
    s3 = Stage("fuzz2", "z", vectors=5)
    s3.seen = {(1,): "overflow"}
    s3.mismatches["overflow"] = 1
    c = Certificate("cast(binary32->ocp_e4m3)", "t", "v", False, [s1, s2, s3], {}, "now")
    assert c.totals() == dict(dict.fromkeys(CLASSES, 0), overflow=3, in_range=1)


# ------------------------------------------------------------------ blocks: only the offending elements
def _mx_broken():
    spec = parse_spec(MX)
    d = get_driver(spec)

    def broken(x):
        s, el = d.fast(spec, (np.asarray(x, dtype=np.uint64),), "numpy")
        el = np.array(el, dtype=np.uint8)
        rows = (np.asarray(x)[:, 0] % 16) == 0  # about one block in 16 (each mismatch costs an exact-model run)
        el[rows, 3] ^= 1  # the last mantissa bit of element 3
        return s, el

    broken.refarith_inputs = "codes"
    return broken


def test_block_counterexamples_show_the_offending_elements_only(tmp_path):
    from refarith.certify.report import markdown, write_reports

    c = certify(_mx_broken(), MX)
    st = c.stages[0]
    assert [p for p, _ in st.block_profile["position"]] == [3]
    assert sum(n for _, n in st.block_profile["amax_exponent"]) == sum(st.mismatches.values())
    md = markdown(c)
    assert max(len(line) for line in md.splitlines()) < 300
    assert "elements[3] (x = 0x" in md and "scale 0x" in md
    html = write_reports(c, tmp_path)[2].read_text()
    cells = __import__("re").findall(r"<td[^>]*>(.*?)</td>", html, flags=__import__("re").S)
    assert cells and max(len(t) for t in cells) < 200  # the reviewer's cells were 1,200-2,000 characters


# ------------------------------------------------------------------ fuzz: the smallest failing input
def test_fuzz_reports_the_smallest_failing_input():
    """Under overflow=saturate ml_dtypes' NaN starts just above the RNE midpoint 464 (OCP OFP8: 464 ties to 448):
    the smallest failing positive binary32 is 0x43e80001, whatever the fuzzer happened to draw."""
    pytest.importorskip("ml_dtypes")
    c = certify("ml_dtypes:float8_e4m3fn", E4M3_SAT, fuzz=200, seed=5)
    fz = c.stages[1]
    assert fz.mismatches["overflow"] > 0
    assert fz.examples["overflow"].inputs == ["0x43e80001"]


@pytest.mark.slow  # the exact MX model on every shrink candidate: tens of seconds
def test_shrink_of_a_block_reaches_one_offending_element():
    from refarith.certify.adapters import load_kernel
    from refarith.certify.fuzz import mismatch_runner, shrink

    spec = parse_spec(MX)
    k = load_kernel(_mx_broken())
    start = tuple([0x3F800000 + 12345 * i for i in range(32)])
    small = shrink(spec, mismatch_runner(spec, k, "in_range"), start, "in_range")
    assert mismatch_runner(spec, k, "in_range")([small])[0] is not None
    # the kernel flips element 3 of every block whose first code is 0 mod 16: the all-zero block still fails,
    # and it is the smallest vector there is
    assert small == (0,) * 32


# ------------------------------------------------------------------ the pytest fixture
FIXTURE_TEST = '''
import numpy as np

def deep_helper(x):
    raise ValueError("boom in deep_helper")

def kernel(x):
    return deep_helper(x)

def test_raises(refarith_certify):
    refarith_certify(kernel, "cast(binary32->ocp_e4m3,overflow=saturate)", fuzz=0)

def test_fails(refarith_certify):
    import ml_dtypes
    refarith_certify(lambda x: x.astype(ml_dtypes.float8_e4m3fn),
                     "cast(binary32->ocp_e4m3,overflow=saturate)", fuzz=0)
'''


def test_fixture_keeps_the_traceback_and_puts_counterexamples_first(pytester):
    pytest.importorskip("ml_dtypes")
    pytester.makepyfile(FIXTURE_TEST)
    r = pytester.runpytest("-p", "no:cacheprovider", "-q")
    r.assert_outcomes(failed=2)
    out = r.stdout.str()
    assert "deep_helper" in out and 'raise ValueError("boom in deep_helper")' in out
    fail = out[out.index("refarith certification failed"):]
    first = fail.splitlines()[1]
    assert first.startswith("smallest overflow [golden]: input 0x43e80001")
    assert "kernel looks like: matches overflow=nan" in fail


# ------------------------------------------------------------------ report pictures
def test_report_pictures_and_the_note_without_matplotlib(tmp_path, monkeypatch):
    pytest.importorskip("ml_dtypes")
    from refarith.certify import report

    c = certify("ml_dtypes:float8_e4m3fn", E4M3_SAT)
    assert c.stages[0].input_map and sum(r[3] for r in c.stages[0].input_map) == len(c.stages[0].seen)
    if report.have_matplotlib():
        page = report.html_page(c)
        assert page.count("<svg") >= 3 and "Where the mismatches are" in page and "<script" not in page
    monkeypatch.setattr(report, "have_matplotlib", lambda: False)
    page = report.html_page(c)
    assert "need matplotlib" in page and page.count("<svg") == 1


# ------------------------------------------------------------------ JSON: schema_version, snake_case, the schemas
SCHEMAS = __import__("pathlib").Path(__file__).resolve().parent.parent / "docs" / "schema"


def _keys(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield path, k
            yield from _keys(v, f"{path}.{k}")
    elif isinstance(x, list):
        for v in x:
            yield from _keys(v, path)


def _check(doc: dict, schema: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(doc, json.loads((SCHEMAS / schema).read_text()))
    data_keyed = (".environment", ".examples", ".columns")  # keys that are data: packages, classes, column names
    bad = [f"{p}.{k}" for p, k in _keys(doc) if not p.endswith(data_keyed)
           and not __import__("re").fullmatch(r"[a-z][a-z0-9_]*", k)]
    assert not bad, bad


def test_certificate_json_matches_its_schema():
    pytest.importorskip("ml_dtypes")
    doc = json.loads(certify("ml_dtypes:float8_e4m3fn", E4M3_SAT, fuzz=50).to_json())
    assert doc["schema_version"] == 1
    _check(doc, "certificate.schema.json")
    _check(json.loads(certify(_mx_broken(), MX).to_json()), "certificate.schema.json")


def test_identify_json_matches_its_schema(capsys):
    pytest.importorskip("ml_dtypes")
    rc = main(["identify", "ml_dtypes:float8_e4m3fn", "--spec", E4M3_SAT, "--vary", "overflow", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["schema_version"] == 1
    assert doc["verdict"] == "matches overflow=nan: cast(binary32->ocp_e4m3,rounding=rne,overflow=nan)"
    _check(doc, "identify.schema.json")


def test_committed_certificates_match_the_schema():
    """The certificates under docs/certificates that carry schema_version (regenerated since it was added)."""
    docs = SCHEMAS.parent / "certificates"
    found = [(p, json.loads(p.read_text())) for p in sorted(docs.glob("*.json"))]
    current = [(p, d) for p, d in found if d.get("schema_version") == 1]
    if not current:
        pytest.skip("no committed certificate carries schema_version yet (docs/certificates/regenerate.sh)")
    for p, d in current:  # identify --json results are committed beside the certificates as *.identify.json
        _check(d, "identify.schema.json" if p.name.endswith(".identify.json") else "certificate.schema.json")
