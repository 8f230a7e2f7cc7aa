"""Packaging: the wheel carries the committed golden vectors and py.typed, an installed copy reads its own golden
set and never writes into site-packages, ``python -m refarith`` runs, the plugin's markers are namespaced, and the
project metadata is complete.  The wheel is built once (a few seconds) from a copy of the packaging inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md")
BUILD_DIRS = ("refarith", "golden_vectors")

pytest_plugins = ["pytester"]


def build_wheel(dest: Path) -> Path:
    """Build refarith's wheel from a copy of its packaging inputs (never in the shared source tree) into ``dest``."""
    src = dest / "src"
    src.mkdir(parents=True)
    for name in BUILD_INPUTS:
        shutil.copy(ROOT / name, src / name)
    for name in BUILD_DIRS:
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = dest / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = out.glob("refarith-*.whl")
    return whl


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel unpacked as a site directory (pip install --target, no dependencies)."""
    site = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                        str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return site


def run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``python ARGS`` with the installed copy first on sys.path (ahead of the editable source tree), in ``cwd``."""
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_wheel_ships_golden_vectors_and_py_typed(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    committed = json.loads((ROOT / "golden_vectors" / "MANIFEST.json").read_bytes())["files"]
    missing = [n for n in committed if f"refarith/golden_vectors/{n}" not in names]
    assert not missing, missing[:5]
    assert "refarith/golden_vectors/MANIFEST.json" in names and "refarith/golden_vectors/README.md" in names
    with zipfile.ZipFile(wheel) as z:
        man = (ROOT / "golden_vectors" / "MANIFEST.json").read_bytes()
        assert z.read("refarith/golden_vectors/MANIFEST.json") == man
        assert z.read("refarith/golden/pinned.py") == (ROOT / "refarith" / "golden" / "pinned.py").read_bytes()
    for n in ("refarith/py.typed", "refarith/__main__.py", "refarith/pytest_plugin.py"):
        assert n in names
    # every package of the source tree is in the wheel
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "refarith").rglob("__init__.py")}
    assert {f"{p}/__init__.py" for p in packages} <= names


def test_wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        eps = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))).decode()
    for line in ("Classifier: Typing :: Typed", "Classifier: Framework :: Pytest", "Author: The refarith developers",
                 "Requires-Python: >=3.11", "License: Apache-2.0"):
        assert line in meta, line
    assert "refarith = refarith.cli:main" in eps and "refarith = refarith.pytest_plugin" in eps


def test_pyproject_extras_have_lower_bounds():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("jsonschema>=") for r in extras["dev"])


def test_installed_copy_reads_its_own_golden_set(installed, tmp_path):
    r = run_installed(installed, tmp_path, "-c",
                      "from refarith.golden.generate import default_dir; print(default_dir())")
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == installed / "refarith" / "golden_vectors"
    r = run_installed(installed, tmp_path, "-m", "refarith", "golden", "verify", "--only", "add(ocp_e2m1*",
                      "--jobs", "1")
    assert r.returncode == 0 and "golden vectors verified" in r.stdout, r.stderr
    # certify uses the committed, hashed file, not vectors generated on the spot
    r = run_installed(installed, tmp_path, "-m", "refarith", "certify", "refarith:numpy", "--spec",
                      "cast(binary16->ocp_e4m3)", "--fuzz", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "cast__binary16_to_ocp_e4m3" in r.stdout and "no committed file" not in r.stdout


def test_installed_generate_needs_out(installed, tmp_path):
    before = sorted(p.name for p in (installed / "refarith" / "golden_vectors").iterdir())
    r = run_installed(installed, tmp_path, "-m", "refarith", "golden", "generate", "--only", "add(ocp_e2m1*",
                      "--jobs", "1")
    assert r.returncode == 2 and "needs --out" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run_installed(installed, tmp_path, "-m", "refarith", "golden", "generate", "--out",
                      str(installed / "refarith" / "golden_vectors"), "--only", "add(ocp_e2m1*", "--jobs", "1")
    assert r.returncode == 2 and "package data" in r.stderr, r.stderr
    assert sorted(p.name for p in (installed / "refarith" / "golden_vectors").iterdir()) == before
    r = run_installed(installed, tmp_path, "-m", "refarith", "golden", "generate", "--out", "mine", "--only",
                      "add(ocp_e2m1*", "--jobs", "1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "mine" / "add__ocp_e2m1__rounding-rne__overflow-saturate__nan-error.txt.gz").is_file()


def test_installed_missing_golden_set_is_an_error(installed, tmp_path):
    """A broken installation without the committed set refuses, instead of certifying against generated vectors."""
    site = tmp_path / "site"
    shutil.copytree(installed / "refarith", site / "refarith", ignore=shutil.ignore_patterns("golden_vectors"))
    (site / "refarith" / "golden_vectors").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    r = run_installed(site, work, "-c", "from refarith.golden.generate import default_dir; print(default_dir())")
    assert r.returncode == 0 and Path(r.stdout.strip()) != site / "refarith" / "golden_vectors"
    r = run_installed(site, work, "-m", "refarith", "certify", "refarith:numpy", "--spec",
                      "cast(binary16->ocp_e4m3)", "--fuzz", "0")
    assert r.returncode == 2 and "missing from this installation" in r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("where", ["source", "wheel"])
def test_python_m_refarith(where, request, tmp_path):
    """``python -m refarith`` from another directory, for the source tree and for the installed wheel."""
    site = ROOT if where == "source" else request.getfixturevalue("installed")
    r = run_installed(site, tmp_path, "-m", "refarith", "--version")
    assert r.returncode == 0 and r.stdout.strip().startswith("refarith "), r.stderr
    r = run_installed(site, tmp_path, "-c", "import refarith; print(refarith.__file__)")
    assert Path(r.stdout.strip()).parent == site / "refarith"
    r = run_installed(site, tmp_path, "-m", "refarith", "formats", "nope_format")
    assert r.returncode == 2 and "unknown format" in r.stderr


def test_source_checkout_generates_into_committed_dir():
    """In the repository the documented regeneration command (no --out) writes the committed golden_vectors/."""
    import importlib

    g = importlib.import_module("refarith.golden.generate")
    assert g.packaged_dir() is None
    assert g.default_out() == g.default_dir() == ROOT / "golden_vectors"


MARKER_TESTS = '''
import pytest

@pytest.mark.refarith_slow
def test_namespaced():
    pass

@pytest.mark.slow
def test_generic():
    pass
'''


def test_plugin_markers_are_namespaced(pytester, monkeypatch):
    """The plugin registers refarith_* markers only: in a user's project a generic ``slow`` stays unregistered
    (so --strict-markers still reports it) while the refarith_* names are known.  A subprocess: in-process runs
    share pytest's marker cache with this project, which registers ``slow`` itself."""
    r = pytester.runpytest("-p", "no:cacheprovider", "--markers")
    text = r.stdout.str()
    for m in ("refarith_proof", "refarith_slow", "refarith_fuzz", "refarith_golden"):
        assert f"@pytest.mark.{m}:" in text
    for m in ("slow", "proof", "fuzz", "golden"):
        assert f"@pytest.mark.{m}:" not in text
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_user=MARKER_TESTS)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers", "-q")
    assert r.ret != 0
    r.stdout.fnmatch_lines(["*'slow' not found in `markers` configuration option*"])
    assert "refarith_slow' not found" not in r.stdout.str()
