"""fast/graphs.py with torch absent (tests/test_triton_backend.py needs torch and triton): the traced cast graphs
replayed on numpy words (refarith.fast.trace.evaluate) against the exact model's round_value, for explicit and
default overflow modes, NaN and negative policies, stochastic rounding with its variant, and an explicit word
width; the graph's inputs, width, name and cache."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import SpecialValueError
from refarith.exact import ops as exact
from refarith.exact.rounding import default_overflow, round_value
from refarith.fast.bitops import NumpyBitOps
from refarith.fast.castkernel import required_width
from refarith.fast.graphs import cast_graph
from refarith.fast.trace import evaluate
from refarith.formats import get_format


def _codes(src: str, n: int, seed: int) -> np.ndarray:
    f = get_format(src)
    rng = np.random.default_rng(seed)
    top = f.ncodes - 1
    special = [0, 1, f.sign_mask, f.sign_mask | 1, top, top >> 1, f.emask << f.mbits, (f.emask << f.mbits) | 1,
               f.sign_mask | (f.emask << f.mbits), ((f.emask - 1) << f.mbits) | f.mmask]
    return np.concatenate([np.array(special), rng.integers(0, top + 1, n)]).astype(np.uint64)


def _replay(g, bits: np.ndarray, r: np.ndarray | None = None):
    ops = NumpyBitOps(g.width)
    ins = [ops.word(bits)] + ([] if r is None else [ops.word(r.astype(np.uint64))])
    code, err = evaluate(g, ops, ins)
    return (np.broadcast_to(code, bits.shape).astype(np.int64).tolist(),
            np.broadcast_to(err, bits.shape).tolist())


def _want(src: str, bits, dst: str, r=None, **kw):
    sf = get_format(src)
    codes, errs = [], []
    for i, b in enumerate(bits):
        extra = {} if r is None else {"rand": int(r[i])}
        try:
            codes.append(round_value(exact.decode(int(b), sf), dst, **kw, **extra).code)
            errs.append(False)
        except SpecialValueError:
            codes.append(0)
            errs.append(True)
    return codes, errs


CASES = [
    ("binary32", "ocp_e4m3", dict(rounding="rne")),
    ("binary32", "ocp_e4m3", dict(rounding="rtz", overflow="saturate")),
    ("binary16", "ocp_e5m2", dict(rounding="rup", overflow="nan")),
    ("binary16", "ocp_e2m1", dict(rounding="rdn", nan_policy="max")),
    ("binary16", "ocp_e2m1", dict(rounding="rna", nan_policy="zero", overflow="saturate")),
    ("bfloat16", "e8m0", dict(rounding="rne", negative="clamp")),
    ("binary16", "binary8p3ue", dict(rounding="rto", overflow="satfinite", negative="project")),
    ("binary16", "binary8p3se", dict(rounding="rne", overflow="satnone", negative="error")),
]


@pytest.mark.parametrize("src,dst,kw", CASES)
def test_graph_equals_exact_model(src, dst, kw):
    g = cast_graph(src, dst, **kw)
    assert g.inputs == ("x",) and g.width == required_width(src, dst)
    bits = _codes(src, 300, len(dst))
    full = {"overflow": default_overflow(get_format(dst)), "nan_policy": "error", "negative": "error", **kw}
    assert _replay(g, bits) == _want(src, bits, dst, **full)


def test_default_overflow_is_the_targets_natural_mode():
    """overflow=None: the target's natural mode (binary16: inf), the same graph as naming it."""
    assert cast_graph("binary32", "binary16").digest == cast_graph("binary32", "binary16", "rne", "inf").digest
    assert cast_graph("binary32", "ocp_e4m3").digest == cast_graph("binary32", "ocp_e4m3", "rne", "nan").digest
    assert cast_graph("binary32", "ocp_e4m3").digest != cast_graph("binary32", "ocp_e4m3", "rne", "saturate").digest
    bits = np.array([0x7F7FFFFF, 0x477FF000, 0x47800000, 0xFF800000, 0x3F800000], dtype=np.uint64)
    assert _replay(cast_graph("binary32", "binary16"), bits) == _want("binary32", bits, "binary16", overflow="inf")


@pytest.mark.parametrize("variant", ["a", "b", "c", "c_odd"])
def test_stochastic_graphs(variant):
    k = 4
    g = cast_graph("binary16", "ocp_e5m2", "sr", rand_bits=k, sr_variant=variant)
    assert g.inputs == ("x", "r") and g.width == required_width("binary16", "ocp_e5m2", k, variant)
    bits = _codes("binary16", 200, 5)
    bits = bits[[exact.decode(int(b), get_format("binary16")).is_finite for b in bits]]
    rng = np.random.default_rng(len(variant))
    for r in (rng.integers(0, 1 << k, bits.size), np.full(bits.size, (1 << k) - 1), np.zeros(bits.size, np.int64),
              np.full(bits.size, 1 << (k - 1))):
        want = _want("binary16", bits, "ocp_e5m2", r, rounding="sr", rand_bits=k, sr_variant=variant,
                     overflow="inf")
        assert _replay(g, bits, r) == want, variant
    name = g.name
    assert name.startswith("cast(binary16->ocp_e5m2,rounding=sr,overflow=inf,nan=error,negative=error")
    assert (f",sr={variant}" in name) == (variant != "a") and name.endswith(f",k={k})@{g.width}")


def test_te_e2m1_8_graph():
    g = cast_graph("binary32", "ocp_e2m1", "sr", rand_bits=8, sr_variant="te_e2m1_8")
    bits = np.array([0x3F400000, 0x3FA00000, 0x40500000, 0x3E800001, 0xBFD00000, 0x40A00000], dtype=np.uint64)
    for rv in (0, 1, 127, 128, 255):
        r = np.full(bits.size, rv)
        assert _replay(g, bits, r) == _want("binary32", bits, "ocp_e2m1", r, rounding="sr", rand_bits=8,
                                            sr_variant="te_e2m1_8", overflow="saturate"), rv


def test_rand_bits_and_variant_ignored_unless_sr():
    plain = cast_graph("binary32", "ocp_e4m3", "rne")
    assert cast_graph("binary32", "ocp_e4m3", "rne", rand_bits=5, sr_variant="c").digest == plain.digest
    assert cast_graph("binary32", "ocp_e4m3", "rne", rand_bits=5).name == plain.name
    assert plain.name == f"cast(binary32->ocp_e4m3,rounding=rne,overflow=nan,nan=error,negative=error)@{plain.width}"


def test_explicit_width_and_cache():
    g64 = cast_graph("binary32", "ocp_e4m3", "rne", width=64)
    assert g64.width == 64 and required_width("binary32", "ocp_e4m3") == 32
    assert g64.name.endswith("@64")
    bits = _codes("binary32", 200, 3)
    assert _replay(g64, bits) == _want("binary32", bits, "ocp_e4m3", overflow="nan")
    assert cast_graph("binary32", "ocp_e4m3", "rne", width=64) is g64
    gsr = cast_graph("binary32", "ocp_e4m3", "sr", rand_bits=5, width=64)
    assert gsr.width == 64 and gsr.inputs == ("x", "r")
    r = np.random.default_rng(1).integers(0, 32, bits.size)
    fin = np.array([exact.decode(int(b), get_format("binary32")).is_finite for b in bits])
    assert _replay(gsr, bits[fin], r[fin]) == _want("binary32", bits[fin], "ocp_e4m3", r[fin], rounding="sr",
                                                     rand_bits=5, overflow="nan")
