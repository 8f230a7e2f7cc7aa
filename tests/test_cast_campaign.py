"""The registry-wide binary32 cast campaign (refarith.certify.castcampaign, `refarith sweep cast-theorems`) and the
``unary32c`` shard kind (binary32 into bfloat16, binary16 and the P3109 formats of precision 8).

Expected values: the per-binade class index of refarith.smt.castsweep (the general formulation the shard's
one-binade formulation must equal), tests/sweep_targets.py's bfloat16 cast (a carry trick on the bit patterns,
independent of refarith) with a planted fault whose count follows from its definition, and the theorem registry
for the list of settings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from refarith.certify import castcampaign, engine, shards
from refarith.certify.shards import LedgerError, make_campaign
from refarith.cli import main
from refarith.formats import get_format
from refarith.smt.castsweep import _class_d, _qbits, class_index

TESTS = Path(__file__).resolve().parent
BF16_FLIP = "sweep_targets:bf16_flip"


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))


def test_wide_targets_are_the_unary32c_kind():
    assert make_campaign("cast(binary32->bfloat16)", "refarith:numpy").kind == "unary32c"
    assert make_campaign("cast(binary32->binary8p8uf,negative=error)", "refarith:numpy").kind == "unary32c"
    assert make_campaign("cast(binary32->ocp_e4m3)", "refarith:numpy").kind == "unary32"
    with pytest.raises(shards.SpecError, match="no sharded exhaustive campaign"):
        make_campaign("cast(binary32->bfloat16,rounding=sr,k=8)", "refarith:numpy")


def test_unary32c_counts_a_planted_fault_once_per_input():
    lo, hi = 0x3F800000, 0x3F800000 + (1 << 20)  # 1 <= x < 1.125: finite, normal, one binade
    camp = make_campaign("cast(binary32->bfloat16)", BF16_FLIP, 18, lo, hi)
    st = shards.stage_from(shards.run_shard(camp.to_dict(), lo, hi)["stage"])
    assert sum(st.mismatches.values()) == st.mismatches["in_range"] == (hi - lo) >> 16  # low half 0x1234: 16
    assert st.vectors == hi - lo and st.outside_domain == 0
    ex = st.examples["in_range"]
    assert int(ex.inputs[0], 16) == lo + 0x1234  # the smallest input of the class: the first planted one


def test_unary32c_refarith_numpy_passes_across_binades_and_specials(tmp_path):
    # [0x7f7f0000, 0x7f810000): the largest binade, +inf, NaNs; the chunks split at the binade boundary
    lo, hi = 0x7F7F0000, 0x7F810000
    for spec in ("cast(binary32->binary16,rounding=rtz,overflow=saturate)", "cast(binary32->bfloat16)"):
        c = engine.run_campaign(make_campaign(spec, "refarith:numpy", 16, lo, hi), tmp_path / spec[14:22],
                                engine="local", progress=False)
        st = c.stages[0]
        assert c.verdict == "pass" and st.vectors + st.outside_domain == hi - lo, (spec, st.mismatches)


def test_settings_are_the_registrys_binary32_cast_theorems():
    from refarith.smt.registry import load_all

    got = castcampaign.theorem_settings()
    names = {t for t, _ in got}
    want = {n for n in load_all() if n.startswith("cast.binary32->") and n.rsplit(".", 1)[1] in
            ("rne", "rna", "rtz", "rup", "rdn", "rto", "policies")}
    assert names == want
    assert len(got) == len(set(s for _, s in got)) == 686
    assert len(castcampaign.theorem_settings("bfloat16,binary16,binary8p8*")) == 68


def test_campaign_root_runs_resumes_reports_and_refuses(tmp_path, capsys):
    root = tmp_path / "root"
    rng = (0x3F801000, 0x3F802000)  # one planted input, 0x3f801234
    m = castcampaign.run(root, BF16_FLIP, "bfloat16", 12, engine="local", progress=False, rng=rng,
                         stop_after=3)
    assert m["verdict"] == "fail" and m["complete"] == 3 and m["failed"] == 3  # the planted fault: rne entries
    n_bf16 = len(castcampaign.theorem_settings("bfloat16"))
    m = castcampaign.run(root, BF16_FLIP, "bfloat16", 12, engine="local", progress=False, rng=rng)
    assert m["complete"] == n_bf16 and m["settings"] == 686 and m["verdict"] == "fail"
    rne = [r for r in m["entries"] if r["spec"] == "cast(binary32->bfloat16,rounding=rne,overflow=inf)"][0]
    assert rne["verdict"] == "fail" and rne["mismatches"] == {"in_range": 1}
    assert all(r["verdict"] == "not run" for r in m["entries"] if "bfloat16" not in r["spec"])
    out1, out2 = tmp_path / "r1", tmp_path / "r2"
    assert main(["sweep", "report", "--ledger", str(root), "--report", str(out1), "--quiet"]) == 1
    assert main(["sweep", "report", "--ledger", str(root), "--report", str(out2), "--quiet"]) == 1
    for f in out1.iterdir():
        assert f.read_bytes() == (out2 / f.name).read_bytes()
    doc = json.loads(next(out1.glob("*.json")).read_text())
    assert doc["failed"] == m["failed"] and doc["digest"] == m["digest"]
    capsys.readouterr()
    # another kernel, shard size or range on the same root: refused, exit 2
    for extra in (["--target", "refarith:numpy"], ["--shard-bits", "11"], ["--range", "0x3f801000:0x3f803000"]):
        args = ["sweep", "cast-theorems", "--ledger", str(root), "--targets", "bfloat16", "--engine", "local",
                "--quiet", "--target", BF16_FLIP, "--shard-bits", "12", "--range", "0x3f801000:0x3f802000"]
        assert main(args + extra) == 2
        assert "use another directory" in capsys.readouterr().err
    # a root whose list of settings was altered
    f = root / castcampaign.ROOT_FILE
    d = json.loads(f.read_text())
    d["settings"] = d["settings"][:-1]
    f.write_text(json.dumps(d))
    with pytest.raises(LedgerError, match="is not the registry's"):
        castcampaign.merged(root)


def test_header_without_shards_is_bound_afresh(tmp_path):
    root = tmp_path / "root"
    rng = (0x3F800000, 0x3F810000)
    castcampaign.run(root, "refarith:numpy", "bfloat16", 16, engine="local", progress=False, rng=rng, stop_after=1)
    empty = [p for p in root.iterdir() if p.is_dir() and not any((p / "shards").glob("*.json"))]
    assert empty, "every bfloat16 setting but one has a header and no shard"
    h = json.loads((empty[0] / "ledger.json").read_text())
    h["reference_digest"] = "0" * 64  # as a ledger opened by an older refarith would be
    (empty[0] / "ledger.json").write_text(json.dumps(h))
    m = castcampaign.run(root, "refarith:numpy", "bfloat16", 16, engine="local", progress=False, rng=rng)
    assert m["complete"] == len(castcampaign.theorem_settings("bfloat16")) and m["failed"] == 0


def test_cli_list_and_bad_input(tmp_path, capsys):
    assert main(["sweep", "cast-theorems", "--ledger", str(tmp_path / "x"), "--list", "--targets", "ocp_e2m1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "8 settings" and out[0].startswith("cast.binary32->ocp_e2m1.")
    assert main(["sweep", "cast-theorems", "--ledger", str(tmp_path / "x"), "--targets", "nothing*",
                 "--engine", "local", "--quiet"]) == 2
    assert "selects no setting" in capsys.readouterr().err
    assert main(["sweep", "report", "--ledger", str(tmp_path / "nowhere"), "--report", str(tmp_path / "r")]) == 2


@pytest.mark.slow
def test_key_targets_through_the_root_on_a_two_worker_cluster(tmp_path):
    root = tmp_path / "root"
    m = castcampaign.run(root, "refarith:numpy", "ocp_e2m1", 16, workers=2, progress=False,
                         rng=(0x3F800000, 0x3F820000))
    assert m["complete"] == 8 and m["failed"] == 0 and m["vectors"] == 8 * 0x20000


def test_key_sweep_counts_a_planted_fault_in_aligned_and_unaligned_chunks():
    # shards of 2^16 starting at a multiple of 2^16 compare whole rows against one reference entry each; a range
    # starting one pattern later takes the per-element path: the same planted inputs are found either way
    lo = 0x3F800000
    for start, stop in ((lo, lo + (4 << 16)), (lo + 1, lo + (4 << 16) + 1)):
        camp = make_campaign("cast(binary32->ocp_e4m3,overflow=nan)", "sweep_targets:e4m3_flip", 16, start, stop)
        st = shards.merge(camp.spec, [shards.stage_from(shards.run_shard(camp.to_dict(), a, b)["stage"])
                                      for a, b in camp.shards()])
        assert sum(st.mismatches.values()) == 4 and st.vectors == stop - start, (start, st.mismatches)


@pytest.mark.parametrize("dst", ["bfloat16", "binary16", "binary8p8uf", "binary8p8ue"])
def test_binade_reference_is_the_table_at_the_class_index(dst):
    dv = _class_d(get_format(dst))
    qb = _qbits(dv)
    tab = np.random.default_rng(3).integers(0, 1 << 40, 512 << (qb + 2), dtype=np.int64).astype(np.uint64)
    rng = np.random.default_rng(9)
    for se in [0, 1, 3, 100, 103, 112, 113, 127, 142, 143, 160, 254, 255, 256, 300, 383, 400, 510, 511]:
        a = se << 23
        for off, n in [(0, 1), (0, 5000), ((1 << 23) - 3000, 3000), (int(rng.integers(0, (1 << 23) - 70000)), 70000),
                       (0, 1 << 18)]:
            bits = np.arange(a + off, a + off + n, dtype=np.uint64).astype(np.uint32)
            want = tab[class_index(bits, dv).astype(np.int64)]
            got = shards.binade_reference(a + off, a + off + n, dv, qb, tab)
            assert got.dtype == tab.dtype and np.array_equal(got, want), (dst, se, off, n)
    with pytest.raises(shards.RefarithError, match="not inside one binade"):
        shards.binade_reference((1 << 23) - 1, (1 << 23) + 1, dv, qb, tab)


def _nans(lo: int, hi: int) -> int:
    """binary32 NaN patterns in [lo, hi): exponent field 255, mantissa nonzero (by the format's definition)."""
    x = np.arange(lo, hi, dtype=np.uint64)
    return int(np.count_nonzero(((x >> 23) & 0xFF == 0xFF) & (x & 0x7FFFFF != 0)))


def test_inputs_the_spec_refuses_are_outside_the_domain_not_kernel_errors(tmp_path):
    # refarith's kernel refuses a whole array that holds a NaN under nan=error into a format without NaN (as the
    # exact model refuses the NaN): the sweep counts those inputs outside the domain and compares the rest
    lo, hi = 0x7F7F0000, 0x7F820000  # the largest binade, +inf, and the first NaNs
    c = engine.run_campaign(make_campaign("cast(binary32->ocp_e3m2,nan=error)", "refarith:numpy", 18, lo, hi),
                            tmp_path / "l", engine="local", progress=False)
    st = c.stages[0]
    assert c.verdict == "pass" and st.outside_domain == _nans(lo, hi) > 0 and st.vectors == hi - lo - _nans(lo, hi)
    # unsigned P3109 target, negative=error: every negative input is refused (class-table sweep)
    lo, hi = 0x80000000 - (1 << 16), 0x80000000 + (1 << 16)
    for spec in ("cast(binary32->binary8p8uf,negative=error)", "cast(binary32->ue4m3,negative=error)"):
        camp = make_campaign(spec, "refarith:numpy", 16, lo, hi)
        st = shards.merge(camp.spec, [shards.stage_from(shards.run_shard(camp.to_dict(), a, b)["stage"])
                                      for a, b in camp.shards()])
        assert not sum(st.mismatches.values()) and st.outside_domain == (1 << 16) - 1, (spec, st.outside_domain)
        assert st.vectors == (1 << 16) + 1  # the positive patterns and -0, which is not negative


@pytest.mark.slow
def test_one_failing_campaign_among_several_is_named(tmp_path):
    from refarith.errors import KernelError

    lo, hi = 0x3F800000, 0x3F810000
    items = [(make_campaign("cast(binary32->bfloat16)", "refarith:numpy", 16, lo, hi), tmp_path / "a"),
             (make_campaign("cast(binary32->bfloat16,rounding=rtz)", "sweep_targets:bf16_refuse", 16, lo, hi),
              tmp_path / "b")]
    with pytest.raises(KernelError, match=r"^cast\(binary32->bfloat16,rounding=rtz,overflow=inf\): kernel "
                                          r"sweep_targets:bf16_refuse raised ValueError"):
        engine.run_campaigns(items, workers=2, retries=0, progress=False)
