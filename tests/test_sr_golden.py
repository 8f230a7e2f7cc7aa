"""Golden vectors of stochastic-rounding specs: the random integers are an input column.

Expected values: the committed files (generated from the exact model) are re-derived here from the exact model
directly, line by line for a sample, and refarith's numpy/torch kernels must reproduce every line.
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from refarith.exact import ops
from refarith.golden import fileformat as ff
from refarith.golden.drivers import SR_GOLDEN_SPECS, get_driver
from refarith.golden.generate import build, committed_specs, default_dir, file_name
from refarith.spec import parse_spec


def _lines(spec):
    path = default_dir() / file_name(parse_spec(spec))
    text = gzip.decompress(path.read_bytes()).decode()
    head = [ln for ln in text.splitlines() if ln.startswith("#")]
    body = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    return head, body


def test_sr_specs_are_in_the_committed_set():
    ids = {str(s) for s in committed_specs()}
    for s in SR_GOLDEN_SPECS:
        assert str(parse_spec(s)) in ids


@pytest.mark.parametrize("spec", ["cast(ocp_e4m3->ocp_e2m1,rounding=sr,nan=max,sr=c,k=3)",
                                  "cast(binary32->ocp_e2m1,rounding=sr,sr=te_e2m1_8,k=8)",
                                  "add(ocp_e2m1,rounding=sr,nan=max,sr=c,k=2)"])
def test_header_names_the_random_column_and_lines_match_the_exact_model(spec):
    head, body = _lines(spec)
    sp = parse_spec(spec)
    k = int(sp.param["k"])
    assert f"# spec: {sp}" in head
    assert any(h.startswith("# inputs:") and h.endswith(f"r:uint{k}") for h in head)
    for ln in body[:: max(1, len(body) // 400)]:
        ins, _, outs = ln.partition(" : ")
        cols = [int(c, 16) for c in ins.split()]
        p = sp.param
        kw = dict(rand=cols[-1], rand_bits=k, sr_variant=p.get("sr", "a"), overflow=p["overflow"])
        if "nan" in p:
            kw["nan_policy"] = p["nan"]
        try:
            if sp.op == "cast":
                want = ops.cast(cols[0], sp.formats[0], sp.formats[1], "sr", **kw).code
            else:
                want = getattr(ops, sp.op)(cols[0], cols[1], sp.formats[0], "sr", **kw).code
        except Exception:
            assert outs.strip() == "!", ln
            continue
        assert int(outs, 16) == want, ln


def test_files_tell_the_variants_apart():
    """The boundary vectors do not depend on the variant, so files of a and c share (x, r) rows; on some of them
    the two rules give different codes (what lets identify name a kernel's variant)."""
    rows = []
    for v in ("a", "c"):
        _, body = _lines(f"cast(binary16->ocp_e4m3,rounding=sr,sr={v},k=4)")
        rows.append(dict(ln.split(" : ") for ln in body))
    shared = set(rows[0]) & set(rows[1])
    assert len(shared) > 5000
    differ = [x for x in shared if rows[0][x] != rows[1][x]]
    assert differ
    for x in differ[:50]:
        code, r = (int(c, 16) for c in x.split())
        lo = ops.cast(code, "binary16", "ocp_e4m3", "rtz").code
        assert {int(rows[0][x], 16), int(rows[1][x], 16)} <= {lo, lo + 1}


@pytest.mark.parametrize("spec", SR_GOLDEN_SPECS)
def test_numpy_kernel_reproduces_the_golden_file(spec):
    sp = parse_spec(spec)
    d = get_driver(sp)
    _, body = _lines(spec)
    rows = [ln.split(" : ") for ln in body]
    ok = [r for r in rows if r[1].strip() != "!"]
    ins = np.array([[int(c, 16) for c in r[0].split()] for r in ok], dtype=np.int64)
    want = np.array([int(r[1], 16) for r in ok], dtype=np.int64)
    cols = tuple(ins[:, i] for i in range(ins.shape[1]))
    (got,) = d.fast(sp, cols, "numpy")
    np.testing.assert_array_equal(np.asarray(got).astype(np.int64), want)


@pytest.mark.parametrize("spec", [s for s in SR_GOLDEN_SPECS if s.startswith("cast(")][::3])
def test_torch_kernel_reproduces_the_golden_file(spec):
    torch = pytest.importorskip("torch")
    sp = parse_spec(spec)
    d = get_driver(sp)
    _, body = _lines(spec)
    ok = [ln.split(" : ") for ln in body if not ln.endswith("!")]
    ins = np.array([[int(c, 16) for c in r[0].split()] for r in ok], dtype=np.int64)
    want = np.array([int(r[1], 16) for r in ok], dtype=np.int64)
    cols = tuple(torch.from_numpy(ins[:, i]) for i in range(ins.shape[1]))
    (got,) = d.fast(sp, cols, "torch")
    np.testing.assert_array_equal(got.numpy().astype(np.int64), want)


def test_regeneration_is_byte_identical():
    spec = "cast(ocp_e4m3->ocp_e2m1,rounding=sr,nan=max,sr=c_odd,k=3)"
    path = default_dir() / file_name(parse_spec(spec))
    assert build(spec).data == path.read_bytes()
    assert ff.sha256(path.read_bytes()) == ff.sha256(build(spec).data)
