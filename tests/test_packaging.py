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
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE")
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


def test_sdist_carries_what_the_wheel_needs(tmp_path):
    """The source distribution holds setup.py, the golden vectors, py.typed and the JSON schemas (MANIFEST.in), so
    a wheel built from it ships the golden set too."""
    import tarfile

    src = tmp_path / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        shutil.copy(ROOT / name, src / name)
    for name in (*BUILD_DIRS, "docs/schema"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    r = subprocess.run([sys.executable, "-c", "from setuptools import build_meta as b; print(b.build_sdist('dist'))"],
                       cwd=src, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    with tarfile.open(src / "dist" / r.stdout.strip().splitlines()[-1]) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    committed = json.loads((ROOT / "golden_vectors" / "MANIFEST.json").read_bytes())["files"]
    assert {f"golden_vectors/{n}" for n in committed} <= names
    for n in ("setup.py", "MANIFEST.in", "LICENSE", "golden_vectors/MANIFEST.json", "refarith/py.typed",
              "docs/schema/cast.schema.json"):
        assert n in names, n


def test_wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        eps = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))).decode()
    for line in ("Classifier: Typing :: Typed", "Classifier: Framework :: Pytest", "Author: The refarith developers",
                 "Requires-Python: >=3.11", "License: Apache-2.0"):
        assert line in meta, line
    assert "refarith = refarith.cli:main" in eps and "refarith = refarith.pytest_plugin" in eps
    with zipfile.ZipFile(wheel) as z:  # the licence the metadata names travels with the wheel, in full
        lic = [n for n in z.namelist() if ".dist-info/" in n and n.rsplit("/", 1)[1].startswith("LICENSE")]
        assert lic and b"Apache License" in z.read(lic[0]) and b"Version 2.0, January 2004" in z.read(lic[0])
    import refarith

    assert f"Version: {refarith.__version__}\n" in meta  # the package's __version__ is the distribution's
    # the README is the long description (what a wheel user reads); no URL: there is no public home to name
    body = meta.split("\n\n", 1)[1]
    assert body.startswith("# refarith\n") and "## Installing from a wheel" in body
    assert not any(line.startswith(("Project-URL:", "Home-page:")) for line in meta.splitlines())


def test_pyproject_extras_have_lower_bounds():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("jsonschema>=") for r in extras["dev"])


CLI_CALLS = """
import contextlib, io, json, sys
from refarith.cli import main
from refarith.golden.generate import default_dir
res = [str(default_dir())]
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    res.append([rc, out.getvalue(), err.getvalue()])
print(json.dumps(res))
"""


def cli_calls(site: Path, cwd: Path, *calls: list[str]) -> tuple[Path, list]:
    """(default_dir, [(exit code, stdout, stderr)] of each CLI call) of the copy in ``site``, in one interpreter."""
    r = run_installed(site, cwd, "-c", CLI_CALLS, json.dumps(list(calls)))
    assert r.returncode == 0, r.stderr[-3000:]
    d, *res = json.loads(r.stdout.splitlines()[-1])
    return Path(d), res


def test_installed_copy_reads_its_own_golden_set(installed, tmp_path):
    """From another directory the installed copy verifies its own committed set, certifies against the committed,
    hashed file (not vectors generated on the spot), and writes generated files only where it is told."""
    gv = installed / "refarith" / "golden_vectors"
    before = sorted(p.name for p in gv.iterdir())
    d, (verify, cert, into_pkg, mine) = cli_calls(
        installed, tmp_path, ["golden", "verify", "--only", "add(ocp_e2m1*", "--jobs", "1"],
        ["certify", "refarith:numpy", "--spec", "cast(binary16->ocp_e4m3)", "--fuzz", "0"],
        ["golden", "generate", "--out", str(gv), "--only", "add(ocp_e2m1*", "--jobs", "1"],
        ["golden", "generate", "--out", "mine", "--only", "add(ocp_e2m1*", "--jobs", "1"])
    assert d == gv
    assert verify[0] == 0 and "golden vectors verified" in verify[1], verify
    assert cert[0] == 0 and "cast__binary16_to_ocp_e4m3" in cert[1] and "no committed file" not in cert[1], cert
    assert into_pkg[0] == 2 and "package data" in into_pkg[2], into_pkg
    assert mine[0] == 0 and (tmp_path / "mine" / "add__ocp_e2m1__rounding-rne__overflow-saturate__nan-error.txt.gz"
                             ).is_file(), mine
    assert sorted(p.name for p in gv.iterdir()) == before


def test_installed_python_m_generate_needs_out(installed, tmp_path):
    """``python -m refarith`` of the wheel; without --out an installed copy refuses to generate (one line, exit 2)."""
    r = run_installed(installed, tmp_path, "-m", "refarith", "golden", "generate", "--only", "add(ocp_e2m1*",
                      "--jobs", "1")
    assert r.returncode == 2 and "needs --out" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert list(tmp_path.iterdir()) == []


def test_installed_missing_golden_set_is_an_error(installed, tmp_path):
    """A broken installation without the committed set refuses, instead of certifying against generated vectors."""
    site = tmp_path / "site"
    shutil.copytree(installed / "refarith", site / "refarith", ignore=shutil.ignore_patterns("golden_vectors"))
    (site / "refarith" / "golden_vectors").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    d, (cert,) = cli_calls(site, work, ["certify", "refarith:numpy", "--spec", "cast(binary16->ocp_e4m3)",
                                        "--fuzz", "0"])
    assert d != site / "refarith" / "golden_vectors"
    assert cert[0] == 2 and "missing from this installation" in cert[2], cert


def test_python_m_refarith(tmp_path):
    """``python -m refarith`` of the source tree, from another directory."""
    r = run_installed(ROOT, tmp_path, "-m", "refarith", "formats", "nope_format")
    assert r.returncode == 2 and "unknown format" in r.stderr and len(r.stderr.strip().splitlines()) == 1


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
    (so --strict-markers still reports it) while ``refarith_slow`` is known.  A subprocess: in-process runs share
    pytest's marker cache with this project, which registers ``slow`` itself."""
    from refarith.pytest_plugin import MARKERS

    assert sorted(m.split(":")[0] for m in MARKERS) == ["refarith_fuzz", "refarith_golden", "refarith_proof",
                                                          "refarith_slow"]
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_user=MARKER_TESTS)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers", "-q")
    assert r.ret != 0
    r.stdout.fnmatch_lines(["*'slow' not found in `markers` configuration option*"])
    assert "refarith_slow' not found" not in r.stdout.str()
