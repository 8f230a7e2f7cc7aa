"""HiFloat4 on Triton: the traced graph of the one HiF4 kernel (refarith.fast.hif4.quantize_units), evaluated on
numpy words and run by Triton's interpreter, against the exact model and the committed golden files."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.exact import hif4 as h
from refarith.fast import hif4 as fh
from refarith.fast.bitops import NumpyBitOps
from refarith.fast.trace import evaluate
from refarith.golden.drivers import get_driver
from refarith.spec import parse_spec


def _units(sid: str, n_random: int) -> np.ndarray:
    sp = parse_spec(sid)
    d = get_driver(sp)
    return np.array(d.boundary(sp) + d.random(sp, n_random, 11), dtype=np.uint32)


def _exact(units: np.ndarray, st: str = "even", et: str = "away") -> list[tuple[int, ...]]:
    out = []
    for u in units.view(np.float32):
        q = h.quantize_unit([float(v) for v in u], st, et)
        out.append((q.scale, q.d8_word, q.d16_word, *q.codes))
    return out


@pytest.mark.parametrize("st,et", [("even", "away"), ("away", "even")])
def test_hif4_graph_is_the_exact_model_and_carries_its_digest(st, et):
    """The traced graph on numpy words (one unit per row, the lane's subgroup as the second input) gives the exact
    model's scale, level words and codes on the driver's boundary units; the emitted Triton source names the
    graph's digest, a retrace gives the same digest, and each tie rule has its own graph."""
    from refarith.fast.triton_backend import emit_block_source

    g = fh.hif4_quantize_graph(st, et)
    x = _units(f"hif4_quantize(scale_ties={st},elem_ties={et})", 0)
    ops = NumpyBitOps(g.width)
    sub = np.broadcast_to(np.arange(64, dtype=np.uint64) >> 2, x.shape)
    s, w8, w16, c = evaluate(g, ops, [ops.word(x.astype(np.uint64)), ops.word(sub)])
    got = np.concatenate([np.stack([np.asarray(v) for v in (s, w8, w16)], 1), np.asarray(c)], 1).astype(np.int64)
    assert [tuple(int(t) for t in row) for row in got] == _exact(x, st, et)
    assert g.digest in emit_block_source(g, ["int32", "int32"], ["uint8", "uint8", "int32", "uint8"])
    assert fh.hif4_quantize_graph.__wrapped__(st, et).digest == g.digest
    assert len({fh.hif4_quantize_graph(a, b).digest for a in ("even", "away") for b in ("even", "away")}) == 4


def test_hif4_graph_reads_each_unit_through_block_maxima_only():
    """The structure the Triton layout relies on: 17 block maxima (the 16 level-3 maxima, from which the level-2
    maxima follow, and the unit maximum, from which the NaN/inf test and the scale follow), no block inputs,
    outputs (scale, d8, d16 per unit; codes per element)."""
    from refarith.fast.xptrace import output_levels

    g = fh.hif4_quantize_graph()
    live = g.live()
    assert sum(1 for n, k in zip(g.nodes, live) if k and n.kind == "rmax") == 17
    assert g.input_levels == (0, 0) and output_levels(g) == [1, 1, 1, 0]


@pytest.mark.slow
@pytest.mark.parametrize("st,et", [("even", "away"), ("away", "even")])
def test_hif4_backend_triton_against_exact_model(st, et):
    """backend='triton' (Triton's interpreter on CPU) runs a compiled kernel of the graph's digest and gives the
    exact model's bits on the driver's boundary and random units, along axis 0 of a 2-D array too; its fake
    quantization gives the numpy kernel's values."""
    torch = pytest.importorskip("torch", reason="torch not installed: the triton backend takes torch tensors")
    pytest.importorskip("triton", reason="triton not installed: pip install 'refarith[triton]'")
    from refarith.fast import triton_backend as tb

    x = _units(f"hif4_quantize(scale_ties={st},elem_ties={et})", 32)
    xt = torch.from_numpy(x.view(np.float32).T.copy())  # units along axis 0
    s, w8, w16, c = fh.hif4_quantize(xt, axis=0, scale_ties=st, elem_ties=et, backend="triton")
    got = np.concatenate([np.stack([v.numpy()[0] for v in (s, w8, w16)], 1), c.numpy().T], 1).astype(np.int64)
    assert [tuple(int(t) for t in row) for row in got] == _exact(x, st, et)
    assert fh.hif4_quantize_graph(st, et).digest in {ck.graph_digest for ck in tb._CACHE.values()}
    y = fh.hif4_fake_quantize(xt, axis=0, scale_ties=st, elem_ties=et, backend="triton")
    want = fh.hif4_fake_quantize(x.view(np.float32).T.copy(), axis=0, scale_ties=st, elem_ties=et)
    assert np.array_equal(y.numpy().view(np.uint32), want.view(np.uint32))


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["hif4_quantize()", "hif4_fake_quantize()"])
def test_certify_refarith_triton_hif4_golden_files(spec):
    """refarith:triton passes both committed HiF4 golden files (213 units each)."""
    pytest.importorskip("torch", reason="torch not installed: the triton backend takes torch tensors")
    pytest.importorskip("triton", reason="triton not installed: pip install 'refarith[triton]'")
    from refarith.certify.runner import certify

    cert = certify("refarith:triton", spec)
    assert cert.passed
