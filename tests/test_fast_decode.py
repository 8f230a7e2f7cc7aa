"""refarith.fast.decode (table lookup, numpy and torch) against refarith.exact.decode on every code."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from refarith import fast
from refarith.errors import BadValueError, BitPatternError, UnknownModeError
from refarith.exact import ops as exact
from refarith.fast import cast as fast_cast
from refarith.fast.cast import exact_in_float32
from refarith.formats import float_formats, get_format

SMALL = [f.name for f in float_formats(8)] + ["ue5m3"]


@pytest.fixture(autouse=True, scope="module")
def _torch_one_thread():
    """One torch thread: small elementwise ops are slowed down by oversubscribed threads."""
    try:
        import torch
    except ImportError:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def check_exact(got: np.ndarray, fmt: str, codes) -> None:
    """Each decoded value equals the exact value: same Fraction, same zero sign, NaN where NaN, inf where inf."""
    for c, g in zip(codes, got.tolist()):
        v = exact.decode(int(c), fmt)
        if v.is_nan:
            assert math.isnan(g), (fmt, c)
            assert math.copysign(1.0, g) == (-1.0 if v.sign else 1.0), (fmt, c, "NaN sign")
        elif v.is_inf:
            assert g == (-math.inf if v.sign else math.inf), (fmt, c)
        else:
            assert Fraction(g) == v.fraction, (fmt, c, g, str(v))
            assert math.copysign(1.0, g) == (-1.0 if v.sign else 1.0), (fmt, c, "zero sign")


@pytest.mark.parametrize("fmt", SMALL)
def test_decode_every_code_numpy(fmt):
    f = get_format(fmt)
    codes = np.arange(f.ncodes, dtype=np.uint16).astype(fast_cast.code_dtype(f))
    got = fast.decode(codes, fmt)
    assert got.dtype == np.float32  # every value of an 8-bit format is exact in float32
    check_exact(got, fmt, codes)
    g64 = fast.decode(codes, fmt, dtype="float64")
    assert g64.dtype == np.float64
    assert np.array_equal(g64, got.astype(np.float64), equal_nan=True)


@pytest.mark.parametrize("fmt", ["binary16", "bfloat16", "ue8m8"])
def test_decode_16bit_formats(fmt):
    f = get_format(fmt)
    codes = np.arange(f.ncodes, dtype=np.uint32).astype(np.uint16)
    got = fast.decode(codes, fmt)
    sample = np.random.default_rng(0).integers(0, f.ncodes, 3000)
    check_exact(got[sample], fmt, codes[sample])
    if fmt in ("binary16", "bfloat16"):
        import ml_dtypes  # noqa: F401 - numpy float16 suffices for binary16; bfloat16 via view below

        assert got.dtype == np.float32
        if fmt == "binary16":
            ref = codes.view(np.float16).astype(np.float32)
            assert np.array_equal(got, ref, equal_nan=True)


def test_float32_exactness_check_per_format():
    assert exact_in_float32("ocp_e4m3") and exact_in_float32("e8m0") and exact_in_float32("bfloat16")
    # 2^-16382 (an e15m0 value) is below float32's and float64's range
    assert not exact_in_float32("e15m0")
    # the smallest subnormal of e8m3 is 2^-129: exact in float32 (min subnormal 2^-149)
    assert exact_in_float32("e8m3")
    # e9m3: values down to 2^-257 and up to ~2^256 are not float32 values, but float64 holds them
    assert not exact_in_float32("e9m3")
    out = fast.decode(np.array([1, 0x7F, 0xEF], dtype=np.uint16), "e9m3")
    assert out.dtype == np.float64
    check_exact(out, "e9m3", [1, 0x7F, 0xEF])
    with pytest.raises(BadValueError):
        fast.decode(np.array([1], dtype=np.uint16), "e9m3", dtype="float32")


def test_decode_against_ml_dtypes():
    ml = pytest.importorskip("ml_dtypes", reason="ml_dtypes not installed: no peer decode comparison")
    pairs = {"ocp_e4m3": ml.float8_e4m3fn, "ocp_e5m2": ml.float8_e5m2, "e4m3fnuz": ml.float8_e4m3fnuz,
             "e5m2fnuz": ml.float8_e5m2fnuz, "ocp_e3m2": ml.float6_e3m2fn, "ocp_e2m3": ml.float6_e2m3fn,
             "ocp_e2m1": ml.float4_e2m1fn, "e8m0": ml.float8_e8m0fnu}
    for fmt, dt in pairs.items():
        n = get_format(fmt).ncodes
        codes = np.arange(n, dtype=np.uint8)
        ref = codes.view(dt).astype(np.float32)
        got = fast.decode(codes, fmt)
        assert np.array_equal(np.isnan(got), np.isnan(ref)), fmt
        ok = ~np.isnan(ref)
        assert np.array_equal(got[ok], ref[ok]), fmt


def test_decode_errors_and_shapes():
    with pytest.raises(BitPatternError):
        fast.decode(np.array([16], dtype=np.uint8), "ocp_e2m1")
    with pytest.raises(BitPatternError):
        fast.decode(np.array([-1]), "ocp_e4m3")
    with pytest.raises(BadValueError):
        fast.decode(np.array([1.0]), "ocp_e4m3")
    with pytest.raises(BadValueError):
        fast.decode(np.array([1], np.uint8), "ocp_e4m3", dtype="int8")
    with pytest.raises(UnknownModeError):
        fast.decode(np.array([1], np.uint8), "ocp_e4m3", backend="jax")
    with pytest.raises(BadValueError):
        fast.decode(np.array([1]), "binary32")
    got = fast.decode(np.array([[0x38, 0xB8], [0x7E, 0x01]], dtype=np.uint8), "ocp_e4m3")
    assert got.shape == (2, 2) and got.tolist() == [[1.0, -1.0], [448.0, 2.0 ** -9]]
    assert fast.decode(0x38, "ocp_e4m3") == 1.0


def test_roundtrip_encode_decode():
    for fmt in ("ocp_e4m3", "ocp_e5m2", "ocp_e2m1", "e8m0", "binary8p3se"):
        f = get_format(fmt)
        codes = np.array([c for c in range(f.ncodes) if f.is_finite_code(c) and not (c == f.sign_mask and f.signed
                                                                                    and not f.has_negative_zero)],
                         dtype=np.uint8)
        vals = fast.decode(codes, fmt)
        assert np.array_equal(fast.encode(vals, fmt), codes), fmt


def test_decode_torch():
    torch = pytest.importorskip("torch", reason="torch not installed: torch decode untested")
    for fmt in ("ocp_e4m3", "ocp_e2m1", "e8m0", "binary16"):
        f = get_format(fmt)
        codes = np.arange(f.ncodes, dtype=np.int64)
        want = fast.decode(codes, fmt)
        got = fast.decode(torch.from_numpy(codes), fmt, backend="torch")
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
        assert np.array_equal(got.numpy(), want, equal_nan=True)
        got64 = fast.decode(torch.from_numpy(codes).to(torch.uint8 if f.nbits <= 8 else torch.int32), fmt,
                            backend="torch", dtype="float64")
        assert got64.dtype == torch.float64
    with pytest.raises(BitPatternError):
        fast.decode(torch.tensor([300]), "ocp_e4m3", backend="torch")


def test_api_decode_routes_to_fast():
    from refarith import api

    codes = np.arange(256, dtype=np.uint8)
    a = api.decode(codes, "ocp_e5m2", backend="numpy")
    b = api.decode(codes, "ocp_e5m2")
    assert np.array_equal(np.asarray(a, dtype=np.float64), b, equal_nan=True)


def test_decode_pair_path_odd_and_strided():
    """uint8 codes are decoded two at a time; odd lengths, 2-D shapes and strided views must agree."""
    rng = np.random.default_rng(3)
    for fmt in ("ocp_e4m3", "ocp_e2m1", "e8m0"):
        f = get_format(fmt)
        codes = rng.integers(0, f.ncodes, 1001).astype(np.uint8)
        ref = np.array([exact.decode(int(c), fmt).to_float() for c in codes], dtype=np.float64)
        for view in (codes, codes[:-1].reshape(40, 25), codes[::3], codes[:1]):
            got = fast.decode(view, fmt)
            want = np.array([exact.decode(int(c), fmt).to_float() for c in view.reshape(-1)]).reshape(view.shape)
            assert got.shape == view.shape
            assert np.array_equal(got.astype(np.float64), want, equal_nan=True), fmt
        assert np.array_equal(fast.decode(codes, fmt).astype(np.float64), ref, equal_nan=True)
    inner = rng.integers(1, 255, 40000).astype(np.uint8)  # E8M0 blocks without code 0 or NaN
    want = np.array([exact.decode(int(c), "e8m0").to_float() for c in inner[:3000]])
    assert np.array_equal(fast.decode(inner, "e8m0")[:3000].astype(np.float64), want)
