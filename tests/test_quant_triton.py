"""`refarith.quantize(..., backend="triton")` and `refarith quantize --backend triton`: the public API on the
traced Triton block graphs (Triton's interpreter on CPU), against the committed HiF4 golden file and the exact
model's backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch not installed: the triton backend takes torch tensors")
pytest.importorskip("triton", reason="triton not installed: pip install 'refarith[triton]'")

GOLDEN = Path(__file__).resolve().parent.parent / "golden_vectors"


def _golden_units() -> tuple[np.ndarray, np.ndarray]:
    """(213 x 64 float32 inputs, 213 x 67 outputs: scale, d8, d16, 64 codes) of the committed
    ``hif4_quantize()`` golden file."""
    from refarith.golden.fileformat import load

    g = load(GOLDEN / "hif4_quantize__scale_ties-even__elem_ties-away.txt.gz")
    x = np.stack(g.inputs, 1).astype(np.uint32).view(np.float32)
    return x, g.outputs.astype(np.int64)


def _rows(q, axis: int) -> np.ndarray:
    """One row per unit: scale, d8, d16, then the 64 codes (units along ``axis`` of a 2-D quantization)."""
    codes = q.codes if axis == -1 else q.codes.T
    meta = [v.reshape(-1) for v in (q.scales, *q.levels)]
    return np.concatenate([np.stack(meta, 1), codes], 1).astype(np.int64)


def test_quantize_hif4_triton_is_the_golden_file(tmp_path):
    """``quantize(x, "hif4", backend="triton")`` gives the golden file's scale, level words and codes for its 213
    units (boundary units included), with the numpy backend's dtypes; along axis 0 too, and through the CLI's
    ``--backend triton``, whose .npz loads back to the same arrays."""
    import refarith
    from refarith.cli import main

    x, want = _golden_units()
    q = refarith.quantize(x, "hif4", backend="triton")
    assert q.spec == "hif4_quantize(scale_ties=even,elem_ties=away)"
    assert np.array_equal(_rows(q, -1), want)
    ref = refarith.quantize(x[:2], "hif4")
    assert [a.dtype for a in (q.codes, q.scales, *q.levels)] == [a.dtype for a in (ref.codes, ref.scales, *ref.levels)]
    np.save(tmp_path / "x.npy", x[:40].T.copy())
    assert main(["quantize", "--format", "hif4", "--axis", "0", "--backend", "triton", str(tmp_path / "x.npy"),
                 "-o", str(tmp_path / "q.npz")]) == 0
    back = refarith.load_quantized(tmp_path / "q.npz")
    assert np.array_equal(_rows(back, 0), want[:40])


@pytest.mark.slow
@pytest.mark.parametrize("fmt,kw", [("hif4", {"scale_ties": "away", "elem_ties": "even"}), ("mxfp4", {}),
                                    ("mxfp8_e5m2", {"scale": "rceil"}), ("mxint8", {}), ("nvfp4", {}),
                                    ("nvfp4", {"levels": 1, "division": "divide"}), ("int8", {}),
                                    ("int4", {"scheme": "asymmetric", "granularity": "channel"})])
def test_quantize_triton_is_the_exact_backend(fmt, kw):
    """Every quantization kind through ``backend="triton"`` gives the exact model's (``backend="exact"``) codes,
    scales, zero points, level words and tensor scale on a random array with a zero row, a tie-rich row and a
    NaN (HiF4: an infinity)."""
    import refarith

    rng = np.random.default_rng(7)
    x = (rng.standard_normal((3, 128)) * 4).astype(np.float32)
    x[1] = 0
    x[2, :64] = np.arange(64, dtype=np.float32) / 4
    if fmt.startswith("mx") or fmt == "hif4":
        x[0, 5] = np.inf if fmt == "hif4" else np.nan
    t = refarith.quantize(x, fmt, backend="triton", **kw)
    e = refarith.quantize(x, fmt, backend="exact", **kw)
    assert t.spec == e.spec
    for a, b in [(t.codes, e.codes), (t.scales, e.scales), *zip(t.levels or (), e.levels or ()),
                 *([(t.zero_points, e.zero_points)] if e.zero_points is not None else [])]:
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert t.tensor_scale == e.tensor_scale
