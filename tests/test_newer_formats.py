"""The newer formats against tables written from their published definitions: UE5M3 (both readings), MXINT8 with
and without the code -128, HiFloat8."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.exact import mx as emx
from refarith.exact.ops import decode
from refarith.fast import cast as fcast
from refarith.fast import mx as fmx
from refarith.formats import get_format


# ------------------------------------------------------------------ UE5M3
def _ue5m3_ptx(code: int):
    """NVIDIA PTX ISA UE5M3: E = code >> 3 (bias 15), M = code & 7, subnormals at E = 0, no inf, NaN only 0xFF."""
    if code == 0xFF:
        return "nan"
    e, m = code >> 3, code & 7
    return Fraction(m, 1 << 17) if e == 0 else Fraction(8 + m, 8) * Fraction(2) ** (e - 15)


def _ue5m3_ieee(code: int):
    """IEEE 754-style UE5M3: as above, but E = 31 is inf (M = 0) or NaN (M != 0)."""
    e, m = code >> 3, code & 7
    if e == 31:
        return "inf" if m == 0 else "nan"
    return _ue5m3_ptx(code)


def _kind(v):
    return "nan" if v.is_nan else ("inf" if v.is_inf else v.mag)


@pytest.mark.parametrize("name,ref", [("ue5m3", _ue5m3_ptx), ("ue5m3_inf", _ue5m3_ieee)])
def test_ue5m3_value_tables(name, ref):
    for c in range(256):
        assert _kind(decode(c, name)) == ref(c), (name, hex(c))
    fast = fcast.decode(np.arange(256, dtype=np.uint8), name, dtype="float64")
    want = [float("nan") if ref(c) == "nan" else float("inf") if ref(c) == "inf" else float(ref(c))
            for c in range(256)]
    np.testing.assert_array_equal(fast, np.array(want))


def test_ue5m3_maxima_and_overflow():
    assert get_format("ue5m3").max == 114688 and get_format("ue5m3_inf").max == 61440
    # overflow thresholds by RNE: the step above 114688 is 8192, so the midpoint 118784 ties to the even code 0xFE
    # and anything above overflows (to NaN by default); the IEEE reading's midpoint 63488 between 61440 (0xF7) and
    # 2^16 ties to the even code 0xF8, inf
    x = np.array([114688, 118784, 118785, 61440, 63487, 63488], np.float64)
    assert list(fcast.encode(x[:3], "ue5m3", overflow="saturate")) == [0xFE, 0xFE, 0xFE]
    assert list(fcast.encode(x[:3], "ue5m3")) == [0xFE, 0xFE, 0xFF]
    assert list(fcast.encode(x[3:], "ue5m3_inf")) == [0xF7, 0xF7, 0xF8]


# ------------------------------------------------------------------ MXINT8
def test_mxint8_element_tables():
    """OCP MX v1.0 INT8 element: two's complement with an implicit 2^-6, so 0x7F = 1 63/64 and 0x80 = -2 (the
    table gfloat's ``format_info_ocp_int8`` encodes); the symmetric variant (microxcaling clamps to +-127/64)
    never produces 0x80."""
    assert emx.elem_max(emx.mx_element("mxint8")) == Fraction(127, 64)
    blk = emx.MXBlock(127, tuple(range(256)))
    vals = emx.dequantize_block(blk, "mxint8")
    for c in range(256):
        assert vals[c].fraction == Fraction(c - 256 if c >= 128 else c, 64)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_mxint8_minus_128_in_fast_kernels(backend):
    # amax 1.9999 -> X = 2^0; -1.9999 * 64 = -127.99 rounds to -128 in the full two's complement range and
    # clamps to -127 in the symmetric one
    x = np.array([-1.999, -1.9999, 1.0, 0.5] * 8, np.float32)
    if backend == "torch":
        torch = pytest.importorskip("torch")
        x = torch.from_numpy(x)
    for name, want in (("mxint8", 0x80), ("mxint8_sym", 0x81)):
        s, c = fmx.mx_quantize(x, name, block=32, backend=backend)
        codes = np.asarray(c).ravel()
        assert int(np.asarray(s).ravel()[0]) == 127
        assert int(codes[0]) == want and int(codes[1]) == want
