"""The command line as a new user meets it: malformed invocations, output paths, inputs, Ctrl-C, progress."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from refarith.cli import main
from refarith.errors import BadValueError, OutputError
from refarith.golden import progress as progress_mod
from refarith.golden.progress import Progress
from refarith.outputs import check_output_dir, check_output_file

ROOT = Path(__file__).resolve().parents[1]
E4M3_16 = "cast(binary16->ocp_e4m3)"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def env_with_repo(**extra: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(extra)
    return env


def unwritable_dir(tmp_path: Path) -> Path:
    """A directory nothing can be created in: mode 0555 for a normal user; the superuser ignores modes, and gets
    /proc (a kernel file system refusing new entries)."""
    if os.geteuid() != 0:
        d = tmp_path / "readonly"
        d.mkdir()
        d.chmod(0o555)
        return d
    if os.path.isdir("/proc/self"):
        return Path("/proc")
    pytest.skip("no directory that the superuser cannot write")


@pytest.fixture
def no_work(monkeypatch):
    """Every command's work fails the test: an output-path error must come before any of it."""
    def boom(*a, **k):
        raise AssertionError("work ran before the output path was checked")

    import importlib

    runner = importlib.import_module("refarith.certify.runner")
    report = importlib.import_module("refarith.cli_commands.report")
    generate = importlib.import_module("refarith.golden.generate")
    quant = importlib.import_module("refarith.quant")

    monkeypatch.setattr(runner, "certify", boom)
    monkeypatch.setattr(report, "build_document", boom)
    monkeypatch.setattr(generate, "generate", boom)
    monkeypatch.setattr(quant, "quantize", boom)


# ------------------------------------------------------------------ output paths, checked before any work
def test_report_dir_that_is_a_file(capsys, tmp_path, no_work):
    f = tmp_path / "afile"
    f.write_text("x")
    code, _, err = run(capsys, "certify", "refarith:numpy", "--spec", E4M3_16, "--report", str(f))
    one_line_error(code, err, "--report", str(f), "is a file, not a directory")


def test_report_dir_below_a_file(capsys, tmp_path, no_work):
    f = tmp_path / "afile"
    f.write_text("x")
    code, _, err = run(capsys, "certify", "refarith:numpy", "--spec", E4M3_16, "--report", str(f / "sub"))
    one_line_error(code, err, "--report", "is a file, not a directory")


def test_report_dir_unwritable(capsys, tmp_path, no_work):
    d = unwritable_dir(tmp_path) / "reports"
    code, _, err = run(capsys, "certify", "refarith:numpy", "--spec", E4M3_16, "--report", str(d))
    one_line_error(code, err, "--report", "cannot write in")


def test_quantize_output_into_a_file_or_a_directory(capsys, tmp_path, no_work):
    x = tmp_path / "x.npy"
    np.save(x, np.ones(32, np.float32))
    f = tmp_path / "afile"
    f.write_text("x")
    code, _, err = run(capsys, "quantize", str(x), "--format", "mxfp4", "-o", str(f / "o.npz"))
    one_line_error(code, err, "--output", "is a file, not a directory")
    d = tmp_path / "d.npz"
    d.mkdir()
    code, _, err = run(capsys, "quantize", str(x), "--format", "mxfp4", "-o", str(d))
    one_line_error(code, err, "--output", "is a directory, not a file")
    code, _, err = run(capsys, "quantize", str(x), "--format", "mxfp4", "-o", str(tmp_path / "missing" / "o.npz"))
    one_line_error(code, err, "--output", "does not exist")
    code, _, err = run(capsys, "quantize", str(x), "--format", "mxfp4", "-o", str(unwritable_dir(tmp_path) / "o.npz"))
    one_line_error(code, err, "--output", "cannot write in")


def test_golden_generate_out_a_file_or_unwritable(capsys, tmp_path, no_work):
    f = tmp_path / "afile"
    f.write_text("x")
    for out in (f, f / "deeper" / "dir", unwritable_dir(tmp_path) / "golden"):
        code, _, err = run(capsys, "golden", "generate", "--out", str(out), "--only", "e2m1")
        one_line_error(code, err, "--out")


def test_report_ops_markdown_unwritable(capsys, tmp_path, no_work):
    for target, why in ((tmp_path, "is a directory, not a file"), (tmp_path / "no" / "r.md", "does not exist"),
                        (unwritable_dir(tmp_path) / "r.md", "cannot write in")):
        code, _, err = run(capsys, "report", "ops", "--markdown", str(target))
        one_line_error(code, err, "--markdown", why)


def test_golden_verify_given_a_file(capsys, tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    code, _, err = run(capsys, "golden", "verify", str(f), "--no-regenerate")
    one_line_error(code, err, str(f), "not a directory")


def test_golden_verify_of_a_directory_without_manifest_is_a_prefixed_error(capsys, tmp_path):
    code, _, err = run(capsys, "golden", "verify", str(tmp_path), "--no-regenerate")
    one_line_error(code, err, "refarith: error:", "no MANIFEST")


@pytest.mark.parametrize("argv, needle", [
    (["selftest", "--device", "bogus", "--inputs", "16"], "device must be cpu or cuda"),
    (["selftest", "--device", "cpu", "--inputs", "16", "--jobs", "0"], "--jobs must be at least 1"),
    (["selftest", "--device", "cpu"], "give --inputs"),
])
def test_selftest_bad_input_is_a_prefixed_error(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    one_line_error(code, err, "refarith: error: selftest:", needle)


def test_output_checks_create_nothing(tmp_path):
    target = tmp_path / "new" / "deeper"
    assert check_output_dir(target) == target
    assert check_output_file(tmp_path / "r.md") == tmp_path / "r.md"
    assert sorted(os.listdir(tmp_path)) == []  # the probes leave nothing behind
    with pytest.raises(OutputError, match="empty path"):
        check_output_file("")


# ------------------------------------------------------------------ quantize inputs
@pytest.mark.parametrize("make, needle", [
    (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    (lambda p: np.save(p, np.zeros((0,), np.float32)), "holds an empty array (shape (0,))"),
    (lambda p: p.write_text("1 2 3\n"), "is not a .npy file"),
    (lambda p: np.savez(p.open("wb"), x=np.ones(4, np.float32)), "is an .npz archive"),
    (lambda p: np.save(p, np.array(["abc"])), "dtype <U3"),
    (lambda p: np.save(p, np.array([{}], dtype=object), allow_pickle=True), "object array"),
])
def test_quantize_bad_input_files(capsys, tmp_path, make, needle):
    p = tmp_path / "in.npy"
    make(p)
    code, _, err = run(capsys, "quantize", str(p), "--format", "mxfp4", "-o", str(tmp_path / "o.npz"))
    one_line_error(code, err, repr(str(p)), needle)
    assert not (tmp_path / "o.npz").exists()


# ------------------------------------------------------------------ argument values
def test_formats_empty_name_is_an_error(capsys):
    code, out, err = run(capsys, "formats", "")
    one_line_error(code, err, "empty format name")
    assert out == ""


@pytest.mark.parametrize("argv, opt", [
    (["prove", "--only", "", "--list"], "--only"),          # would select every theorem
    (["prove", "--only", " ", "--list"], "--only"),
    (["cast", "--from", "", "--to", "ocp_e4m3", "1"], "--from"),  # would be ignored
    (["golden", "verify", "--only", "", "--no-regenerate"], "--only"),
    (["identify", "refarith:numpy", "--to", "ocp_e4m3", "--vary", ""], "--vary"),  # would vary everything
    (["certify", "refarith:numpy", "--spec", ""], "--spec"),
])
def test_empty_option_value_is_an_error(capsys, argv, opt):
    code, out, err = run(capsys, *argv)
    one_line_error(code, err, opt, "is empty")
    assert out == ""


def test_golden_without_an_action_names_the_choices(capsys):
    with pytest.raises(SystemExit) as e:
        main(["golden"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "generate|verify|show" in err and "golden_cmd" not in err


def test_formats_values_without_a_name_is_an_error(capsys):
    code, out, err = run(capsys, "formats", "--values")
    one_line_error(code, err, "--values", "NAME")
    assert out == ""


def test_golden_show_negative_count_is_an_error(capsys):
    f = next(p for p in sorted((ROOT / "golden_vectors").iterdir()) if p.name.endswith(".txt.gz"))
    code, out, err = run(capsys, "golden", "show", str(f), "-n", "-1")
    one_line_error(code, err, "-n", "-1")


def test_exhaustive_without_a_check_is_refused_before_any_stage(capsys, monkeypatch):
    import refarith.certify.runner as runner

    def boom(*a, **k):
        raise AssertionError("the golden stage ran")

    monkeypatch.setattr(runner, "golden_stage", boom)
    # a 2^32 domain (too many for the golden stage) and a 16-bit target (no sticky-key sweep)
    code, _, err = run(capsys, "certify", "refarith:numpy", "--spec", "cast(binary32->binary16)", "--exhaustive")
    one_line_error(code, err, "--exhaustive", "no exhaustive check exists")


def test_exhaustive_if_possible_warns_and_certifies(capsys, monkeypatch):
    import refarith.certify.runner as runner

    seen = {}

    class Stop(Exception):
        pass

    def spy(*a, **k):  # the stages themselves are not what is tested here
        seen.update(k)
        raise Stop

    monkeypatch.setattr(runner, "certify", spy)
    with pytest.raises(Stop):
        main(["certify", "refarith:numpy", "--spec", "cast(binary32->binary16)", "--exhaustive-if-possible"])
    _, err = capsys.readouterr()
    assert seen["exhaustive"] is False and seen["exhaustive_if_possible"] is True
    assert err.startswith("refarith: warning: --exhaustive-if-possible: ") and "certifying without it" in err
    assert "no exhaustive check exists" in err and err.count("\n") == 1


def _report(tmp_path: Path) -> tuple[dict, str, str]:
    import json

    (j,) = tmp_path.glob("*.json")
    return json.loads(j.read_text()), j.with_suffix(".md").read_text(), j.with_suffix(".html").read_text()


def test_cast_of_minus_inf_into_an_unsigned_integer_follows_the_negative_rule(capsys):
    # -inf is a negative value as -1 is: an error under negative=error (the default), 0 [invalid] under clamp
    for x in ("-1", "-inf"):
        code, _, err = run(capsys, "cast", "--to", "uint8", "--", x)
        one_line_error(code, err, f"negative value {x} cannot be encoded in unsigned format uint8")
    code, out, err = run(capsys, "cast", "--to", "uint8", "--negative", "clamp", "--", "-inf", "-1", "-0.4")
    assert code == 0, err
    rows = [" ".join(line.split()) for line in out.splitlines()[1:]]  # the inputs are padded to one width
    assert rows == ["-inf -> 0x00 0 [invalid]", "-1 -> 0x00 0 [invalid]", "-0.4 -> 0x00 0 [inexact]"]
    code, out, _ = run(capsys, "cast", "--to", "uint8", "--", "-0.4", "inf")  # rounds to 0; +inf saturates
    rows = [" ".join(line.split()) for line in out.splitlines()[1:]]
    assert code == 0 and rows == ["-0.4 -> 0x00 0 [inexact]", "inf -> 0xff 255 [invalid]"]


OPTIONS_THAT_DO_NOT_APPLY = [  # each was silently ignored: the spec parser refuses the same parameters
    (("cast", "--to", "ocp_e4m3", "--nan-policy", "zero", "nan"), "--nan-policy applies to targets without NaN"),
    (("cast", "--to", "e8m0", "--nan-policy", "error", "1"), "e8m0 has NaN"),
    (("cast", "--to", "binary8p3sf", "--negative", "nan", "1"), "--negative applies to unsigned targets"),
    (("cast", "--to", "int8", "--negative", "clamp", "--", "-1"), "int8 is signed"),
    (("identify", "ml_dtypes:float8_e4m3fn", "--spec", "cast(binary32->ocp_e4m3)", "--vary", ","),
     "--vary ',': an empty parameter name"),
    (("identify", "ml_dtypes:float8_e4m3fn", "--spec", "cast(binary32->ocp_e4m3)", "--vary", "rounding,,overflow"),
     "an empty parameter name"),
    # --spec with --to/--op/--from: the spec won and the others were dropped (a full identify run of the wrong op)
    (("identify", "ml_dtypes:float8_e4m3fn", "--spec", "cast(binary32->ocp_e4m3)", "--to", "ocp_e5m2"),
     "--spec gives the whole spec id; drop --op, --to and --from"),
    (("identify", "ml_dtypes:float8_e4m3fn", "--spec", "cast(binary32->ocp_e4m3)", "--op", "add"), "drop --op"),
    (("identify", "ml_dtypes:float8_e4m3fn", "--spec", "cast(binary32->ocp_e4m3)", "--from", "binary16"),
     "drop --op"),
]


def test_quantize_non_integer_nvfp4_levels_is_one_line(capsys, tmp_path):
    src = tmp_path / "x.npy"
    np.save(src, np.ones(32, np.float32))
    code, out, err = run(capsys, "quantize", str(src), "--format", "nvfp4", "--variant", "levels=x", "-o",
                         str(tmp_path / "q.npz"))
    one_line_error(code, err, "NVFP4 levels must be 1 or 2, got 'x'")
    assert not (tmp_path / "q.npz").exists()


@pytest.mark.parametrize("argv,needle", OPTIONS_THAT_DO_NOT_APPLY)
def test_an_option_that_does_not_apply_is_an_error(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    one_line_error(code, err, needle)
    assert out == ""


def test_options_that_apply_still_work(capsys):
    for argv, row in ((("--to", "ocp_e2m1", "--nan-policy", "zero", "nan"), "nan -> 0x0 0 [invalid]"),
                      (("--to", "binary8p3uf", "--negative", "clamp", "--", "-1"), "-1 -> 0x00 0 [invalid]"),
                      (("--to", "int8", "--nan-policy", "max", "nan"), "nan -> 0x7f 127 [invalid]")):
        code, out, err = run(capsys, "cast", *argv)
        assert code == 0 and [" ".join(r.split()) for r in out.splitlines()[1:]] == [row], (argv, out, err)


def test_exhaustive_if_possible_skip_is_recorded_in_the_certificate(capsys, tmp_path):
    # the exact model is a scalar kernel: the spec has a 2^32 sweep, the kernel cannot run it in reasonable time
    code, out, err = run(capsys, "certify", "refarith:exact", "--spec", "cast(binary32->ocp_e4m3,overflow=nan)",
                         "--exhaustive-if-possible", "--report", str(tmp_path))
    assert code == 0, err
    why = "refarith:exact is a scalar kernel; 2^32 inputs would take days"
    assert f"exhaustive stage: asked for (--exhaustive-if-possible) and skipped: {why}" in out
    doc, md, page = _report(tmp_path)
    assert doc["exhaustive_skipped"] == why and [s["name"] for s in doc["stages"]] == ["golden"]
    assert f"- exhaustive stage: asked for (--exhaustive-if-possible) and skipped: {why}" in md
    assert "<p class=note id=exhaustive-skipped>exhaustive stage: asked for (--exhaustive-if-possible) and " \
           f"skipped: {why}</p>" in page
    jsonschema = pytest.importorskip("jsonschema")
    import json

    jsonschema.validate(doc, json.loads((ROOT / "docs/schema/certificate.schema.json").read_text()))


def test_exhaustive_if_possible_that_runs_records_no_skip(capsys, tmp_path):
    code, out, err = run(capsys, "certify", "refarith:numpy", "--spec", E4M3_16, "--exhaustive-if-possible",
                         "--report", str(tmp_path))
    assert code == 0, err
    assert "the golden stage compares all 65536 inputs" in err and "skipped" not in out + err
    doc, md, page = _report(tmp_path)
    assert doc["exhaustive_skipped"] is None
    assert "skipped" not in md and "exhaustive-skipped" not in page


def test_exhaustive_of_a_stochastic_rounding_spec_is_refused_or_skipped(capsys):
    from refarith.certify.runner import exhaustive_missing
    from refarith.spec import parse_spec

    spec = "cast(binary32->ocp_e5m2,rounding=sr,k=8)"
    assert "stochastic-rounding spec" in exhaustive_missing(parse_spec(spec))
    code, _, err = run(capsys, "certify", "refarith:numpy", "--spec", spec, "--exhaustive")
    one_line_error(code, err, "--exhaustive: the stochastic-rounding spec", "--sr-samples")


def test_exhaustive_on_an_exhaustive_golden_stage_says_so(capsys):
    code, out, err = run(capsys, "certify", "refarith:numpy", "--spec", E4M3_16, "--exhaustive")
    assert code == 0, err
    assert "refarith: note: --exhaustive: the golden stage compares all 65536 inputs" in err
    assert "exhaustive" in out  # the golden stage line says it is exhaustive


# ------------------------------------------------------------------ cast: a value that changes class is not exact
@pytest.mark.parametrize("argv, bits, flag", [
    (["--to", "ocp_e4m3", "--", "-inf"], "0xff", "invalid"),              # no inf: -inf becomes NaN
    (["--to", "ocp_e4m3", "--", "inf"], "0x7f", "invalid"),
    (["--to", "ocp_e4m3", "--overflow", "saturate", "--", "-inf"], "0xfe", "invalid"),  # saturate: -448
    (["--to", "ocp_e4m3", "--", "1e6"], "0x7f", "overflow"),               # finite -> NaN: overflow+inexact
    (["--to", "ocp_e2m1", "--", "inf"], "0x7", "invalid"),                # no inf, no NaN: saturates
    (["--to", "ocp_e2m1", "--nan-policy", "zero", "--", "nan"], "0x0", "invalid"),
    (["--to", "ocp_e2m1", "--nan-policy", "max", "--", "-nan"], "0xf", "invalid"),
    (["--from", "binary32", "--to", "ocp_e4m3", "0xff800000"], "0xff", "invalid"),
    (["--to", "e8m0", "--", "inf"], "0xff", "invalid"),
])
def test_cast_change_of_class_is_flagged(capsys, argv, bits, flag):
    """README's rounding rules: a NaN or infinity that cannot arrive as itself raises invalid; a finite value
    overflowing to NaN is overflow and inexact."""
    code, out, err = run(capsys, "cast", "--json", *argv)
    assert code == 0, err
    import json

    (row,) = json.loads(out)["results"]
    assert row["bits"] == bits
    assert flag in row["flags"]
    if flag == "overflow":
        assert "inexact" in row["flags"]


def test_cast_class_kept_is_exact(capsys):
    code, out, _ = run(capsys, "cast", "--to", "ocp_e5m2", "--", "-inf", "nan")
    assert code == 0
    assert "-inf -> 0xfc  -inf  [exact]" in out
    assert "[exact]" in out.splitlines()[2]


# ------------------------------------------------------------------ module:function targets
def test_kernel_module_in_the_working_directory_is_found(tmp_path):
    (tmp_path / "cwdkern.py").write_text("def k(x):\n    return x\n")
    # as the console script runs: sys.path[0] is the script's directory, not the working directory
    code = textwrap.dedent("""
        import os, sys
        sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]
        from refarith.targets import import_callable
        print(import_callable("cwdkern:k").__module__)
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       env=env_with_repo(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "cwdkern"


def test_fuzzing_writes_nothing_where_it_runs(tmp_path):
    """hypothesis caches the constants of the modules under test in ./.hypothesis unless told otherwise; a certify
    run with --fuzz leaves the working directory as it found it (the wheel test's Quick start found this)."""
    pytest.importorskip("ml_dtypes")
    env = {k: v for k, v in env_with_repo().items() if k != "HYPOTHESIS_STORAGE_DIRECTORY"}
    r = subprocess.run([sys.executable, "-m", "refarith", "certify", "ml_dtypes:float8_e4m3fn", "--spec",
                        "cast(binary32->ocp_e4m3)", "--fuzz", "64"], cwd=tmp_path, capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
    assert list(tmp_path.iterdir()) == []


def test_fuzz_vectors_do_not_depend_on_the_modules_a_process_loaded(tmp_path):
    """hypothesis mixes constants of every loaded local module into its choices; a seed's fuzz vectors must be
    the same in a process that loaded a module full of constants (a Dask worker, a user's kernel module)."""
    (tmp_path / "manyconsts.py").write_text("".join(f"C{i} = {i * 7919 + 12345}\n" for i in range(300)))
    draw = "from refarith.certify.fuzz import run_fuzz; print(run_fuzz('add(binary16)', 400, 5))"
    outs = []
    for pre in ("", "import manyconsts; "):
        r = subprocess.run([sys.executable, "-c", pre + draw], cwd=tmp_path, capture_output=True, text=True,
                           env=env_with_repo(PYTHONPATH=str(tmp_path) + os.pathsep + str(ROOT)), timeout=300)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1] and outs[0].count("(") >= 400


def test_kernel_module_not_found_says_where_it_looked(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "certify", "nosuchkern_mod:k", "--spec", E4M3_16)
    one_line_error(code, err, "'nosuchkern_mod'", "No module named", str(tmp_path), "PYTHONPATH")


# ------------------------------------------------------------------ progress
class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_plain_lines_when_not_a_terminal():
    s = io.StringIO()
    with Progress(10, "job", stream=s, interval=0.05, unit="chunk") as p:
        p.update(3)
        time.sleep(0.3)
        p.update(7)
    lines = s.getvalue().splitlines()
    assert len(lines) >= 3
    assert lines[0].startswith("job: 3/10 (30%), ") and "chunk/s" in lines[0] and "ETA" in lines[0]
    assert "\r" not in s.getvalue()
    assert lines[-1].startswith("job: 10/10 done in ")


def test_progress_stopped_by_an_error_does_not_say_done():
    s = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        with Progress(10, "job", stream=s, interval=0.02) as p:
            p.update(2)
            time.sleep(0.1)
            raise KeyboardInterrupt
    assert s.getvalue().splitlines()[-1].startswith("job: 2/10 (20%)")
    assert "done" not in s.getvalue()


def test_progress_short_work_stays_silent_and_quiet_silences():
    s = io.StringIO()
    with Progress(5, "quick", stream=s, interval=30) as p:
        p.update(5)
    assert s.getvalue() == ""
    progress_mod.set_quiet(True)
    try:
        s = io.StringIO()
        with Progress(5, "quiet", stream=s, interval=0.01) as p:
            time.sleep(0.1)
            p.update(5)
        assert s.getvalue() == ""
    finally:
        progress_mod.set_quiet(False)


def test_progress_bar_on_a_terminal_is_tqdm():
    s = _Tty()
    with Progress(4, "bar", stream=s) as p:
        p.update(4)
    text = s.getvalue()
    assert "bar" in text and "4/4" in text and "100%" in text


def test_progress_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv("REFARITH_PROGRESS_INTERVAL", "2.5")
    assert progress_mod.interval_seconds() == 2.5
    for bad in ("0", "-1", "soon", "inf"):
        monkeypatch.setenv("REFARITH_PROGRESS_INTERVAL", bad)
        with pytest.raises(BadValueError, match="REFARITH_PROGRESS_INTERVAL"):
            progress_mod.interval_seconds()


def test_identify_shows_progress_per_variant_in_a_log(capsys, monkeypatch):
    monkeypatch.setenv("REFARITH_PROGRESS_INTERVAL", "0.001")  # far less than the exact model's work takes
    code, out, err = run(capsys, "identify", "refarith:numpy", "--to", "ocp_e2m1", "--vary", "overflow")
    assert code == 0, err
    assert "identify cast: expected outputs of each variant: 1/1 done in " in err
    code, out, err = run(capsys, "identify", "refarith:numpy", "--to", "ocp_e2m1", "--vary", "overflow", "--quiet")
    assert code == 0 and err == ""


def test_quiet_is_accepted_after_any_command(capsys):
    code, out, _ = run(capsys, "formats", "ocp_e4m3", "--quiet")
    assert code == 0 and "ocp_e4m3" in out
    code, out, _ = run(capsys, "--quiet", "formats", "ocp_e4m3")
    assert code == 0 and "ocp_e4m3" in out
    assert not progress_mod.is_quiet()  # reset after the command


# ------------------------------------------------------------------ Ctrl-C
def _group_gone(pgid: int, wait: float = 5.0) -> bool:
    t = time.monotonic() + wait
    while time.monotonic() < t:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def default_sigint() -> None:
    """In a child before exec: SIGINT back to its default disposition."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(argv: list[str], cwd: Path, ready, whole_group: bool) -> subprocess.CompletedProcess:
    """Start ``python -m refarith ARGV`` in its own process group, wait until ``ready()``, send SIGINT to the
    group (as a terminal's Ctrl-C does) or to the process alone, and collect it."""
    # SIGINT at its default disposition, as a shell starts a command: a SIGINT ignored in the test process (a
    # library under test may leave it so) is inherited across exec, and refarith keeps an ignored SIGINT ignored
    p = subprocess.Popen([sys.executable, "-m", "refarith", *argv], cwd=cwd, env=env_with_repo(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=default_sigint)
    try:
        t = time.monotonic() + 90
        while not ready() and time.monotonic() < t and p.poll() is None:
            time.sleep(0.05)
        assert p.poll() is None, p.communicate()
        assert ready(), "the command did not start its work in time"
        if whole_group:
            os.killpg(p.pid, signal.SIGINT)
        else:
            p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert _group_gone(p.pid), "a child process outlived the interrupted command"
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


SLOW_KERNEL = """
import time
from pathlib import Path

def k(x):
    Path("started").touch()
    time.sleep(120)
    return x
"""


def test_ctrl_c_in_a_kernel_exits_130_with_one_line(tmp_path):
    (tmp_path / "slowkern.py").write_text(SLOW_KERNEL)
    r = _interrupt(["certify", "slowkern:k", "--spec", E4M3_16], tmp_path, (tmp_path / "started").exists,
                   whole_group=False)
    assert r.returncode == 130, r.stderr
    assert r.stderr.strip() == "refarith: interrupted"


def test_ctrl_c_of_golden_generate_workers_exits_130_with_one_line(tmp_path):
    out = tmp_path / "golden"
    r = _interrupt(["golden", "generate", "--out", str(out), "--jobs", "2", "--quiet"], tmp_path,
                   lambda: time.sleep(3) or True, whole_group=True)
    assert r.returncode == 130, r.stderr
    assert r.stderr.strip() == "refarith: interrupted"
    assert not out.exists() or not any(out.iterdir())  # all or nothing


SWEEP_KERNEL = """
import time
import numpy as np

def k(x):
    if x.size > 100000:  # a chunk of the exhaustive sweep, not the golden stage
        time.sleep(120)
    return np.zeros(x.shape, np.uint8)
"""


@pytest.mark.slow
def test_ctrl_c_of_an_exhaustive_sweep_exits_130_with_one_line(tmp_path):
    (tmp_path / "sweepkern.py").write_text(SWEEP_KERNEL)
    t0 = time.monotonic()
    r = _interrupt(["certify", "sweepkern:k", "--spec", "cast(binary32->ocp_e4m3)", "--exhaustive", "--jobs", "2",
                    "--quiet"], tmp_path, lambda: time.monotonic() - t0 > 15, whole_group=True)
    assert r.returncode == 130, r.stderr
    assert r.stderr.strip() == "refarith: interrupted"


@pytest.mark.slow
def test_ctrl_c_of_prove_jobs_exits_130_with_one_line(tmp_path):
    t0 = time.monotonic()
    r = _interrupt(["prove", "--jobs", "2", "--json", "--quiet"], tmp_path, lambda: time.monotonic() - t0 > 5,
                   whole_group=True)
    assert r.returncode == 130, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("refarith: interrupted"), r.stderr
    assert r.stdout == ""
