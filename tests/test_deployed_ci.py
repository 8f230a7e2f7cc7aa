"""The deployed libraries' install list (one source for README, pyproject's ``deployed`` extra and CI), the
REFARITH_REQUIRE_DEPLOYED switch that turns a missing library's skip into a failure, and (slow) certificates of
docs/certificates/ reproduced by re-running the certifier on each library's committed golden stage."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from refarith.certify import deployed
from refarith.certify.deployed import ADAPTERS, _common, install_list, needs_deployed, required
from refarith.certify.deployed.__main__ import main
from refarith.errors import KernelError

ROOT = Path(__file__).resolve().parents[1]


def test_install_list_pins_every_library_and_never_names_torch_numpy_mpmath():
    reqs = install_list()
    assert len(reqs) == len(set(reqs))
    for lib in ADAPTERS:
        L = deployed.library(lib)
        assert f"{L.dist}=={L.known[0]}" in reqs and reqs.index(L.packages[0]) < len(reqs)
    names = {re.split(r"[=<>!~\[]", r)[0].lower() for r in reqs}
    assert not names & set(_common.UNTOUCHED)
    assert "qtorch==0.3.0" not in install_list(("qtorch",)) and "ninja" not in install_list(("qtorch",))
    assert "pychop==0.6.2" in install_list(("qtorch",))


def test_install_list_command_and_its_bad_input(capsys):
    assert main(["--install-list", "--without", "qtorch"]) == 0
    assert capsys.readouterr().out.split() == install_list(("qtorch",))
    assert main(["--install-list", "--without", "torchx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown adapter torchx" in err[0]
    assert main([]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_readme_pyproject_and_ci_read_the_one_list():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "pip install --no-deps " + " ".join(install_list()) in readme
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["deployed"]
    pinned = {r.split("==")[0]: r for r in install_list() if "==" in r}
    libs = {deployed.library(lib).dist for lib in ADAPTERS}
    for r in extra:  # every pin of the extra is the list's pin
        name = r.split("==")[0]
        assert name in pinned or "==" not in r, r
        if "==" in r:
            assert pinned[name] == r
    # every library but fpy2 (its gmpy2==2.3.1 pin conflicts with the oracle extra's gmpy2>=2.3.2) is in the extra
    assert {r.split("==")[0] for r in extra} >= libs - {"fpy2"}
    ci = (ROOT / ".ci" / "run").read_text()
    assert "$(python -m refarith.certify.deployed --install-list" in ci and "REFARITH_REQUIRE_DEPLOYED=" in ci


def test_require_switch_turns_the_skip_into_a_failure(monkeypatch):
    monkeypatch.setattr(_common, "installed_version", lambda L: None)
    monkeypatch.delenv(deployed.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="pychop is not installed; install it with: pip install"):
        needs_deployed("pychop")
    monkeypatch.setenv(deployed.REQUIRE_ENV, "fpy2,pychop")
    with pytest.raises(pytest.fail.Exception, match="pychop is not installed.*REFARITH_REQUIRE_DEPLOYED requires it"):
        needs_deployed("pychop")
    with pytest.raises(pytest.skip.Exception):
        needs_deployed("qtorch")  # not named: still a skip
    monkeypatch.setenv(deployed.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception):
        needs_deployed("qtorch")
    monkeypatch.setattr(_common, "installed_version", lambda L: "99.0")
    with pytest.raises(pytest.fail.Exception, match="brevitas 99.0 installed; the adapter was written for 0.13.4"):
        needs_deployed("brevitas")


def test_require_switch_values():
    assert required({}) == set() and required({deployed.REQUIRE_ENV: "0"}) == set()
    assert required({deployed.REQUIRE_ENV: "all"}) == set(ADAPTERS)
    assert required({deployed.REQUIRE_ENV: " quark , fpy2 "}) == {"quark", "fpy2"}
    with pytest.raises(KernelError, match="REFARITH_REQUIRE_DEPLOYED: unknown adapter qtorhc"):
        required({deployed.REQUIRE_ENV: "quark,qtorhc"})


CERTIFICATES = {
    "pychop": "pychop-ocp_e5m2__cast__binary16_to_ocp_e5m2__rounding-rne__overflow-inf.json",
    "fpy2": "fpy2-MX_E4M3__cast__binary16_to_ocp_e4m3__rounding-rne__overflow-nan.json",
    "brevitas": "brevitas-fp8_e5m2_nonsat__cast__binary16_to_ocp_e5m2__rounding-rne__overflow-inf.json",
    "compressed_tensors": ("compressed_tensors-fp4__cast__binary16_to_ocp_e2m1__rounding-rne__overflow-saturate__"
                           "nan-error.json"),
    "quark": "quark-fp8_e4m3__cast__binary16_to_ocp_e4m3__rounding-rne__overflow-saturate.json",
    "qtorch": "qtorch-binary16__cast__binary32_to_binary16__rounding-rna__overflow-inf.json",
}
"""A committed certificate of each library whose stages are the golden file only (the fast ones)."""


@pytest.mark.slow
@pytest.mark.parametrize("lib", sorted(CERTIFICATES))
def test_committed_certificate_reproduces(lib):
    """Re-running the certifier on the committed certificate's target and spec gives its verdict and, stage by
    stage, the same vectors and mismatch counts by class and by column."""
    from refarith.certify.runner import certify

    needs_deployed(lib)
    cert = json.loads((ROOT / "docs" / "certificates" / CERTIFICATES[lib]).read_text())
    assert [s["name"] for s in cert["stages"]] == ["golden"]
    assert not cert["signed_zero_ok"]
    c = json.loads(certify(cert["target"], cert["spec"], nan_payload_ok=cert["nan_payload_ok"],
                           progress=False).to_json())
    assert c["environment"]["library"] == cert["environment"]["library"]
    assert c["verdict"] == cert["verdict"] and c["mismatch_totals"] == cert["mismatch_totals"]
    for got, want in zip(c["stages"], cert["stages"], strict=True):
        assert (got["name"], got["vectors"], got["mismatches"], got["columns"]) == \
            (want["name"], want["vectors"], want["mismatches"], want["columns"])
