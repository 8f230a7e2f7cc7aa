"""Bit-exact certification and identification of stochastic-rounding kernels that take their random bits (x, r).

Expected codes come from the exact model; gfloat (an independent implementation of P3109-style SR) is certified
against the variants its source defines, and identify must name them; bad input is one line and exit 2.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refarith import fast
from refarith.certify import sr
from refarith.certify.identify import identify
from refarith.certify.runner import certify
from refarith.errors import BadValueError, RefarithError, SpecError
from refarith.spec import parse_spec

ROOT = Path(__file__).resolve().parents[1]
E2M1 = "cast(binary32->ocp_e2m1,rounding=sr,k=8)"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "refarith", *args], capture_output=True, text=True, cwd=ROOT)


def test_vectors_cover_both_sides_of_each_threshold():
    spec = parse_spec(E2M1)
    xs, rs, ys = sr.sr_vectors(spec)
    assert len(xs) == len(rs) == len(ys) > 500
    for o in sr.outcomes(spec)[:40]:
        sel = xs == o.x
        got = dict(zip(rs[sel].tolist(), ys[sel].tolist()))
        assert got[0] == o.lo and got[255] == o.hi
        if not o.deterministic:
            assert got[o.threshold - 1] == o.lo and got[o.threshold] == o.hi
        # the exact model at each r, independently of the bisection
        for r, y in got.items():
            assert sr.exact_sr(spec, o.x, r) == y


def test_refarith_numpy_sr_cast_is_bit_exact():
    c = certify("refarith:numpy", E2M1)
    # the hard-place stage last, after the golden stage where the driver declares the random bits
    assert c.passed and c.stages[-1].name == "sr_vectors" and c.stages[-1].vectors > 500
    assert [s.name for s in c.stages[:-1]] == (["golden"] if sr.driver_has_rand(parse_spec(E2M1)) else [])


def test_user_kernel_with_random_bits():
    def good(x, r):
        return fast.encode(x, "ocp_e2m1", rounding="sr", rand=r, rand_bits=8)

    def loses_a_bit(x, r):  # uses 7 of the 8 random bits
        return fast.encode(x, "ocp_e2m1", rounding="sr", rand=(r >> 1) << 1, rand_bits=8)

    assert certify(good, E2M1).passed
    bad = certify(loses_a_bit, E2M1)
    assert not bad.passed and sum(bad.stages[0].mismatches.values()) > 0
    e = next(iter(bad.stages[0].examples.values()))
    assert len(e.inputs) == 2  # x and r


def test_gfloat_stochastic_is_c_not_a():
    pytest.importorskip("gfloat")
    from refarith.certify.adapters import load_kernel
    from refarith.certify.statistical import sr_vectors_stage

    k = load_kernel("gfloat:ocp_e2m1+sat+Stochastic")
    spec_c = parse_spec("cast(binary32->ocp_e2m1,rounding=sr,sr=c,k=5)")
    spec_a = parse_spec("cast(binary32->ocp_e2m1,rounding=sr,k=5)")
    assert sum(sr_vectors_stage(spec_c, k).mismatches.values()) == 0
    assert sum(sr_vectors_stage(spec_a, k).mismatches.values()) > 0


@pytest.mark.parametrize("mode,variant", [("Stochastic", "c"), ("StochasticOdd", "c_odd"), ("StochasticFast", "b"),
                                          ("StochasticFastest", "a")])
def test_identify_names_gfloat_modes(mode, variant):
    pytest.importorskip("gfloat")
    scores = identify(f"gfloat:ocp_e2m1+sat+{mode}", "cast(binary32->ocp_e2m1,rounding=sr,k=4)", vary=("sr",))
    matches = [parse_spec(s.spec) for s in scores if s.matches]
    assert [sr.sr_variant(m) for m in matches] == [variant]


def test_identify_names_variant_and_k_of_a_user_kernel():
    def six_bits(x, r):  # variant a with 6 random bits, whatever spec it is given
        return fast.encode(x, "ocp_e2m1", rounding="sr", rand=np.asarray(r) & 0x3F, rand_bits=6)

    scores = identify(six_bits, "cast(binary32->ocp_e2m1,rounding=sr,k=8)", vary=("k",))
    matches = [parse_spec(s.spec) for s in scores if s.matches]
    assert [(sr.sr_variant(m), sr.sr_bits(m)) for m in matches] == [("a", 6)]


def test_identify_skips_k_a_kernel_refuses():
    def strict_8(x, r):  # raises for random integers beyond its 8 bits
        return fast.encode(x, "ocp_e2m1", rounding="sr", rand=r, rand_bits=8)

    scores = identify(strict_8, E2M1, vary=("k",))
    assert [s.spec for s in scores if s.matches] == [str(parse_spec(E2M1))]


# ------------------------------------------------------------------ bad input
def test_check_rand():
    assert sr.check_rand(np.array([0, 255]), 8).dtype == np.uint64
    with pytest.raises(BadValueError, match="256 does not fit k=8"):
        sr.check_rand(np.array([1, 256]), 8)
    with pytest.raises(BadValueError, match="-1 does not fit"):
        sr.check_rand(np.array([-1, 3]), 8)
    with pytest.raises(BadValueError, match="integers"):
        sr.check_rand(np.array([0.5]), 8)


def test_kernel_without_random_bits_is_refused():
    def one_arg(x):
        return fast.encode(x, "ocp_e2m1")

    with pytest.raises(SpecError, match="cannot receive the random bits"):
        certify(one_arg, E2M1)


def test_out_of_range_bits_are_refused():
    pytest.importorskip("gfloat")
    from refarith.certify.adapters import load_kernel

    spec = parse_spec(E2M1)
    x = np.array([0x3F800000], dtype=np.uint32)
    k = load_kernel("gfloat:ocp_e2m1+sat+Stochastic")
    with pytest.raises(BadValueError, match="256 does not fit k=8"):  # never narrowed to 0 silently
        k(spec, (x, np.array([256], dtype=np.uint16)))
    with pytest.raises(BadValueError, match="256 does not fit k=8"):  # the adapter's own check, called directly
        k.fn(spec, (x, np.array([256], dtype=np.uint16)))


BAD = [
    ("ml_dtypes:float8_e5m2", "cast(binary32->ocp_e5m2,rounding=sr,k=8)", {}, "rounds deterministically"),
    ("gfloat:ocp_e5m2", "cast(binary32->ocp_e5m2,rounding=sr,k=8)", {}, "+Stochastic"),
    ("gfloat:ocp_e5m2+Stochastic", "cast(binary32->ocp_e5m2)", {}, "rounding=sr,k=N"),
    ("gfloat:ocp_e5m2+Stochastic", "cast(binary32->ocp_e5m2,rounding=sr,k=60)", {}, "k=60"),
    ("refarith:numpy", "cast(binary32->ocp_e5m2,rounding=sr,k=80)", {}, "64-bit random word"),
    ("docs.examples.sr_kernels:correct", "cast(binary32->ocp_e5m2,rounding=sr,k=8)", {}, "--sr-samples"),
    ("refarith:numpy", "cast(binary32->ocp_e5m2,rounding=sr,k=8)", {"fuzz": 10}, "do not apply"),
    ("refarith:numpy", "cast(binary32->ocp_e5m2,rounding=sr,k=8)", {"sr_samples": 0}, "--sr-samples"),
]


@pytest.mark.parametrize("target,spec,kw,needle", BAD)
def test_bad_input_is_one_error(target, spec, kw, needle, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(RefarithError) as e:
        certify(target, spec, **kw)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_cli_bad_input_one_line_exit_2():
    # RefarithError -> one line, exit 2 (the CLI's rule); one deterministic adapter and one missing-bits kernel
    for target, spec, _, needle in (BAD[0], BAD[5]):
        p = _cli("certify", target, "--spec", spec)
        assert p.returncode == 2, (p.stdout, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], p.stderr
