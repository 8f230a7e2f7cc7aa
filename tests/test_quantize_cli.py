"""refarith.quant API and the `refarith quantize` command."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import mx as emx
from refarith.quant import dequantize, error_stats, quantize


def _x(shape=(8, 40), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("fmt", ["mxfp4", "mxfp8_e4m3", "mxint8", "nvfp4", "int4"])
def test_backends_agree(fmt):
    x = _x()
    x[0, :3] = 0
    kw = {"block": 16} if fmt == "int4" else {}
    qe = quantize(x, fmt, backend="exact", **kw)
    qn = quantize(x, fmt, backend="numpy", **kw)
    assert qe.spec == qn.spec
    assert np.array_equal(qe.codes, qn.codes) and np.array_equal(qe.scales, qn.scales)
    y = dequantize(qn)
    assert y.shape == x.shape and np.isfinite(y).all()
    if fmt != "int4":
        pytest.importorskip("torch", reason="torch not installed: the torch backend comparison is untested")
        qt = quantize(x, fmt, backend="torch")
        assert np.array_equal(qt.codes, qn.codes) and np.array_equal(qt.scales, qn.scales)


def test_mx_dequantize_is_exact_model_value():
    x = _x((3, 70))
    q = quantize(x, "mxfp6_e3m2", axis=1, block=32, scale="even")
    assert q.spec == "mx_quantize(ocp_e3m2,block=32,scale=even,rounding=rne)"
    y = dequantize(q)
    blocks = emx.quantize([float(v) for v in x[1]], "mxfp6_e3m2", 32, "even")
    ex = [v.to_float() for b in blocks for v in emx.dequantize_block(b, "mxfp6_e3m2")]
    assert list(y[1].astype(np.float64)) == ex


def test_error_stats():
    st = error_stats(np.array([1.0, 2.0]), np.array([1.0, 2.5]))
    assert st["max_abs"] == 0.5 and st["max_rel"] == 0.25
    assert abs(st["sqnr_db"] - 10 * np.log10(5 / 0.25)) < 1e-12


def test_bad_api_input():
    with pytest.raises(BadValueError):
        quantize(_x(), "mxfp5")
    with pytest.raises(UnknownModeError):
        quantize(_x(), "mxfp4", backend="cuda")
    with pytest.raises(BadValueError):
        quantize(np.array([0.1], np.float64), "mxfp4")
    with pytest.raises(BadValueError):
        quantize(_x(), "nvfp4", block=32)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "refarith.cli", *args], capture_output=True, text=True)


def test_cli_round_trip(tmp_path):
    x = _x((16, 64), 3)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "q.npz"
    r = _cli("quantize", "--format", "mxfp8_e4m3", "--variant", "scale=ceil", "--block", "32",
             str(tmp_path / "x.npy"), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "SQNR" in r.stdout and "max rel error" in r.stdout
    z = np.load(out, allow_pickle=False)
    assert str(z["spec"]) == "mx_quantize(ocp_e4m3,block=32,scale=ceil,rounding=rne)"
    q = quantize(x, "mxfp8_e4m3", scale="ceil")
    assert np.array_equal(z["codes"], q.codes) and np.array_equal(z["scales"], q.scales)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.npz", "x.npy"]  # no temporary left behind


def test_cli_bad_input(tmp_path):
    np.save(tmp_path / "x.npy", _x())
    r = _cli("quantize", "--format", "nope", str(tmp_path / "x.npy"), "-o", str(tmp_path / "o.npz"))
    assert r.returncode == 2 and "unknown quantization format" in r.stderr
    r = _cli("quantize", "--format", "mxfp4", str(tmp_path / "missing.npy"), "-o", str(tmp_path / "o.npz"))
    assert r.returncode == 2
    r = _cli("quantize", "--format", "mxfp4", "--variant", "scale", str(tmp_path / "x.npy"), "-o",
             str(tmp_path / "o.npz"))
    assert r.returncode == 2
    assert not (tmp_path / "o.npz").exists()
