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


def test_mxint8_golden_files_hold_minus_128_where_the_range_has_it():
    """The committed mx_quantize(int8) file (full range) holds element code 0x80 = -128, at block maxima just
    below a power of two over the whole exponent range; the symmetric file never does."""
    from refarith.golden.fileformat import load
    from refarith.golden.generate import default_dir, file_name, read_manifest
    from refarith.spec import parse_spec

    files = read_manifest(default_dir())["files"]
    for spec, has in (("mx_quantize(int8)", True), ("mx_quantize(int8_sym)", False)):
        name = file_name(parse_spec(spec))
        g = load(default_dir() / name, files[name]["sha256"])
        rows = (g.outputs[:, 1:] == 0x80).any(axis=1)
        assert bool(rows.any()) is has, spec
        if has:  # -128 at scales from binary32 subnormal block maxima to the largest E8M0 scales
            scales = g.outputs[rows, 0]
            assert scales.min() < 127 - 120 and scales.max() > 127 + 120 and rows.sum() >= 40


# ------------------------------------------------------------------ HiFloat8
def _hif8_table() -> dict[int, object]:
    """Every HiF8 code built forward from the paper's fields (arXiv 2409.16626, section 2): sign, dot prefix
    (11: D=4, 10: D=3, 01: D=2, 001: D=1, 0001: D=0, 0000: denormal), D exponent bits in sign-magnitude with an
    implicit leading magnitude 1, then the mantissa; 0x00 zero, 0x80 NaN, S.11.0111.1 inf."""
    table: dict[int, object] = {}
    for s in (0, 1):
        for dot, dot_w, d in (("11", 2, 4), ("10", 2, 3), ("01", 2, 2), ("001", 3, 1), ("0001", 4, 0)):
            m_w = 7 - dot_w - d
            exps = [0] if d == 0 else [sg * mag for sg in (1, -1) for mag in range(1 << (d - 1), 1 << d)]
            for e in exps:
                tail = format(abs(e) - (1 << (d - 1)), f"0{d - 1}b") if d > 1 else ""
                ebits = "" if d == 0 else ("1" if e < 0 else "0") + tail
                for m in range(1 << m_w):
                    code = int(f"{s}{dot}{ebits}{m:0{m_w}b}", 2)
                    v = Fraction(2) ** e * (1 + Fraction(m, 1 << m_w))
                    table[code] = -v if s else v
        for m in range(1, 8):
            table[(s << 7) | m] = (-1) ** s * Fraction(2) ** (m - 23)
    table[0x00], table[0x80] = Fraction(0), "nan"
    table[0x6F], table[0xEF] = "inf", "-inf"
    return table


def test_hifloat8_value_table_from_the_paper():
    table = _hif8_table()
    assert sorted(table) == list(range(256))
    f = get_format("hifloat8")
    for c, want in table.items():
        v = decode(c, f)
        got = "nan" if v.is_nan else ("inf" if v.is_inf and not v.sign else "-inf" if v.is_inf else v.fraction)
        assert got == want, hex(c)
    # the paper's counts: 7 exponents with 3 mantissa bits, 8 with 2, 16 with 1; 38 binades 2^-22 .. 2^15
    finite = [v for v in table.values() if isinstance(v, Fraction) and v > 0]
    assert max(finite) == 32768 and min(finite) == Fraction(1, 1 << 22)
    assert len({v.numerator.bit_length() - v.denominator.bit_length() for v in finite}) == 38
    fast = fcast.decode(np.arange(256, dtype=np.uint8), "hifloat8", dtype="float64")
    want = [float(table[c]) for c in range(256)]
    np.testing.assert_array_equal(fast, np.array(want))


def _boundary_inputs() -> np.ndarray:
    f = get_format("hifloat8")
    vals = sorted({float(g) for g, _ in f.positive_grid} | {float(f.overflow_step)})
    mids = [(a + b) / 2 for a, b in zip(vals, vals[1:])]
    x = np.array(vals + mids, np.float32)
    x = np.concatenate([x, np.nextafter(x, np.float32(0)), np.nextafter(x, np.float32(np.inf)),
                        np.array([6e4, 1e5, 3e38, np.inf, np.nan, 1e-8, 2.0 ** -149, 0.0], np.float32)])
    return np.concatenate([x, -x])


@pytest.mark.parametrize("rounding", ["rne", "rna", "rtz", "rup", "rdn", "rto"])
@pytest.mark.parametrize("overflow", ["inf", "saturate", "nan"])
def test_hifloat8_fast_encode_equals_exact(rounding, overflow):
    from refarith.exact.ops import encode

    x = _boundary_inputs()
    want = np.array([encode(float(v), "hifloat8", rounding, overflow).code for v in x], np.uint8)
    np.testing.assert_array_equal(fcast.encode(x, "hifloat8", rounding, overflow), want)
    torch = pytest.importorskip("torch")
    got = fcast.encode(torch.from_numpy(x), "hifloat8", rounding, overflow, backend="torch")
    np.testing.assert_array_equal(got.numpy(), want)


def test_hifloat8_rounding_edges():
    from refarith.exact.ops import encode

    # 40960 is the midpoint between the max 2^15 and the inf code's 1.5 * 2^15: ties away (the paper's TA) overflow
    assert encode(40960, "hifloat8", "rna").code == 0x6F
    assert encode(40960, "hifloat8", "rne").code == 0x6E
    assert encode(40960, "hifloat8", "rna", "saturate").code == 0x6E
    # 2^-23 ties between 0 and 2^-22: even goes to 0x00, away to 0x01; -0 and tiny negatives give the one zero
    assert encode(Fraction(1, 1 << 23), "hifloat8", "rne").code == 0x00
    assert encode(Fraction(1, 1 << 23), "hifloat8", "rna").code == 0x01
    assert encode("-0", "hifloat8").code == 0x00 and encode("-1e-9", "hifloat8").code == 0x00
    # 7.75 between 7.5 (D=2, 3 mantissa bits) and 8 (D=3, 2 bits): ties to 8, the code with the even last bit
    assert encode(7.75, "hifloat8", "rne").code == 0x28


def test_hifloat8_against_en_dtypes():
    """en_dtypes' float32 -> hifloat8 cast is round-half-away with overflow to inf (the paper's TA)."""
    en = pytest.importorskip("en_dtypes")
    x = _boundary_inputs()
    peer = x.astype(en.hifloat8).view(np.uint8)
    np.testing.assert_array_equal(fcast.encode(x, "hifloat8", "rna", "inf"), peer)
    dec = np.arange(256, dtype=np.uint8).view(en.hifloat8).astype(np.float64)
    np.testing.assert_array_equal(fcast.decode(np.arange(256, dtype=np.uint8), "hifloat8", dtype="float64"), dec)


def test_hifloat8_cli_cast(capsys):
    from refarith.cli import main

    assert main(["cast", "--to", "hif8", "--rounding", "rna", "40960", "1.0625"]) == 0
    out = capsys.readouterr().out
    assert "0x6f  inf" in out and "0x09  9/8" in out
    assert main(["cast", "--from", "hifloat8", "--to", "binary32", "0x7f"]) == 0
    assert "3/65536" in capsys.readouterr().out


@pytest.mark.parametrize("src", ["binary32", "binary64"])
def test_hifloat8_fast_encode_from_wide_bit_patterns(src):
    from refarith.exact.ops import cast

    rng = np.random.default_rng(3)
    width = 32 if src == "binary32" else 64
    dt = np.uint32 if width == 32 else np.uint64
    bits = rng.integers(0, 2**63, 1500, dtype=np.uint64).astype(dt)
    bits[:3] = [0x3F800000, 0x7F800000, 0xFF800001] if width == 32 else [0x3FF0000000000000, 0x7FF0000000000000,
                                                                          0xFFF0000000000001]
    want = np.array([cast(int(c), src, "hifloat8", "rna").code for c in bits], np.uint8)
    np.testing.assert_array_equal(fcast.encode(bits, "hifloat8", "rna", src=src), want)
    torch = pytest.importorskip("torch")
    keep = bits < (1 << 63)  # torch holds binary64 bit patterns as non-negative int64
    got = fcast.encode(torch.from_numpy(bits[keep].astype(np.int64)), "hifloat8", "rna", backend="torch", src=src)
    np.testing.assert_array_equal(got.numpy(), want[keep])


def test_hifloat8_one_line_refusals():
    from refarith.errors import BadValueError, RefarithError

    with pytest.raises(RefarithError, match="stochastic rounding into hifloat8"):
        fcast.encode(np.array([1.0]), "hifloat8", "sr", rand=np.array([0]), rand_bits=4)
    with pytest.raises(RefarithError, match="subnormal flushing does not apply to hifloat8"):
        fcast.encode(np.array([1.0]), "hifloat8", subnormal="ftz")
    with pytest.raises(BadValueError, match="16-bit, binary32 or binary64 sources"):
        fcast.encode(np.array([1], np.uint32), "hifloat8", src="tf32")


def test_en_dtypes_adapter_refuses_other_versions(monkeypatch):
    en = pytest.importorskip("en_dtypes")
    from refarith.certify import hifloat_peers
    from refarith.errors import KernelError

    assert list(hifloat_peers.en_dtypes_hifloat8(np.array([1.0, 40960.0], np.float32))) == [0x08, 0x6F]
    monkeypatch.setattr(en, "__version__", "9.9")
    with pytest.raises(KernelError, match="written for en_dtypes 0.0.4"):
        hifloat_peers.en_dtypes_hifloat8(np.array([1.0], np.float32))
