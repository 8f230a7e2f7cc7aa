"""The Python API takes dtypes wherever it takes a format name, ml_dtypes (and torch bfloat16) arrays as input by
their bits, and loads back the .npz that ``refarith quantize`` writes.  Expected values: IEEE 754 / OCP encodings
written out, ml_dtypes' own bit patterns for exactly representable values, bit arithmetic (bfloat16 is the top half
of binary32), and the float32 path of the exact model."""

from __future__ import annotations

import numpy as np
import pytest

import refarith
from refarith.cli import main
from refarith.errors import BadValueError, UnknownFormatError

ml_dtypes = pytest.importorskip("ml_dtypes")

# dtype -> the catalogue format whose codes are that dtype's bits (OCP OFP8 / MX, IEEE 754, ml_dtypes' names)
ML_DTYPES = [("bfloat16", "bfloat16"), ("float8_e4m3fn", "ocp_e4m3"), ("float8_e5m2", "ocp_e5m2"),
             ("float8_e4m3fnuz", "e4m3fnuz"), ("float8_e5m2fnuz", "e5m2fnuz"), ("float8_e4m3b11fnuz", "e4m3b11fnuz"),
             ("float8_e4m3", "ieee_e4m3"), ("float8_e3m4", "ieee_e3m4"), ("float6_e3m2fn", "ocp_e3m2"),
             ("float6_e2m3fn", "ocp_e2m3"), ("float4_e2m1fn", "ocp_e2m1"), ("float8_e8m0fnu", "e8m0"),
             ("int4", "int4"), ("uint4", "uint4"), ("int2", "int2"), ("uint2", "uint2")]
NUMPY = [(np.float64, "binary64"), (np.float32, "binary32"), (np.float16, "binary16"), (np.int8, "int8"),
         (np.uint8, "uint8"), (np.int16, "int16"), (np.uint16, "uint16"), (np.int32, "int32"), (np.int64, "int64"),
         (np.uint64, "uint64")]
TORCH = [("float32", "binary32"), ("float16", "binary16"), ("bfloat16", "bfloat16"), ("float64", "binary64"),
         ("float8_e4m3fn", "ocp_e4m3"), ("float8_e5m2", "ocp_e5m2"), ("float8_e4m3fnuz", "e4m3fnuz"),
         ("float8_e5m2fnuz", "e5m2fnuz"), ("float8_e8m0fnu", "e8m0"), ("int8", "int8"), ("uint8", "uint8"),
         ("int32", "int32")]


def test_readme_examples():
    assert refarith.encode(1.0, np.float32) == 0x3F800000  # IEEE 754 binary32
    assert refarith.encode(1.0, np.dtype("float32")) == 0x3F800000
    assert refarith.encode(1.0, ml_dtypes.float8_e4m3fn) == 0x38  # OCP E4M3: 0.0111.000
    assert refarith.encode(448.0, np.dtype(ml_dtypes.float8_e4m3fn)) == 0x7E
    assert refarith.encode(57344.0, ml_dtypes.float8_e5m2) == 0x7B
    assert refarith.decode(0x3C00, np.float16).to_float() == 1.0
    assert str(refarith.make_spec("cast", (np.float32, ml_dtypes.float8_e4m3fn))) == \
        "cast(binary32->ocp_e4m3,rounding=rne,overflow=nan)"
    assert str(refarith.parse_spec("cast(float32->float8_e4m3fn)")) == \
        "cast(binary32->ocp_e4m3,rounding=rne,overflow=nan)"


@pytest.mark.parametrize("dtype,name", NUMPY, ids=[n for _, n in NUMPY])
def test_numpy_dtypes(dtype, name):
    assert refarith.get_format(dtype).name == name
    assert refarith.get_format(np.dtype(dtype)).name == name


@pytest.mark.parametrize("dtype,name", ML_DTYPES, ids=[n for n, _ in ML_DTYPES])
def test_ml_dtypes_as_formats(dtype, name):
    """Every exactly representable value encodes to ml_dtypes' own bits (no rounding: any library agrees)."""
    t = getattr(ml_dtypes, dtype)
    fmt = refarith.get_format(t)
    assert fmt.name == name and refarith.get_format(np.dtype(t)) is fmt
    if isinstance(fmt, refarith.IntFormat):
        vals = np.arange(fmt.min, fmt.max + 1)
        want = vals.astype(t).view(np.uint8) & (fmt.ncodes - 1)
        assert (refarith.encode(vals, t) == want).all()
        return
    f32 = np.array([0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 4.0], np.float32)
    if fmt.signed:
        f32 = np.concatenate([f32, -f32[1:]])
    if name == "e8m0":
        f32 = f32[f32 > 0]
    got = refarith.encode(f32, t)
    view = np.uint16 if np.dtype(t).itemsize == 2 else np.uint8
    assert (got == (f32.astype(t).view(view) & view(fmt.ncodes - 1))).all()


@pytest.mark.parametrize("dtype,name", TORCH, ids=[n for n, _ in TORCH])
def test_torch_dtypes(dtype, name):
    torch = pytest.importorskip("torch")
    t = getattr(torch, dtype)
    assert refarith.get_format(t).name == name
    if name == "ocp_e4m3":
        assert refarith.encode([1.0, 448.0, -2.0], t).tolist() == [0x38, 0x7E, 0xC0]


@pytest.mark.parametrize("bad,words", [
    (np.complex64, ["numpy dtype complex64", "not a number format"]),
    (np.bool_, ["numpy dtype bool"]),
    (np.dtype("O"), ["numpy dtype object"]),
    (3, ["got 3 (int)"]),
    (float, ["format must be a name, a format record or a dtype"]),
])
def test_unknown_dtype_names_it(bad, words):
    with pytest.raises(UnknownFormatError) as e:
        refarith.encode(1.0, bad)
    assert all(w in str(e.value) for w in words), str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_torch_dtypes():
    torch = pytest.importorskip("torch")
    with pytest.raises(UnknownFormatError, match="torch dtype bool is not a number format"):
        refarith.get_format(torch.bool)
    with pytest.raises(UnknownFormatError, match="packs two ocp_e2m1 elements per byte"):
        refarith.get_format(torch.float4_e2m1fn_x2)


def test_cli_format_error_is_one_line(capsys):
    assert main(["cast", "--to", "numpy.complex64", "1"]) == 2
    err = capsys.readouterr().err
    assert "unknown format" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ ml_dtypes arrays as input
@pytest.mark.parametrize("backend", ["exact", "numpy", "torch"])
def test_bfloat16_input_is_read_by_its_bits(backend):
    if backend == "torch":
        pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 1 << 16, 3000, dtype=np.uint16)
    bits = bits[(bits & 0x7F80) != 0x7F80]  # no inf/NaN: a finite cast into E4M3 (overflow=nan gives NaN codes)
    x = bits.view(ml_dtypes.bfloat16)
    as_f32 = (bits.astype(np.uint32) << 16).view(np.float32)  # bfloat16 is the top half of binary32
    want = refarith.encode(as_f32, "ocp_e4m3")
    got = refarith.encode(x, "ocp_e4m3", backend=backend)
    got = got.cpu().numpy() if hasattr(got, "cpu") else got
    assert (np.asarray(got) == want).all()


def test_bfloat16_to_binary32_is_the_bit_shift():
    bits = np.array([0x0000, 0x8000, 0x3F80, 0xC2F7, 0x0001, 0x7F7F, 0xFF80], np.uint16)
    got = refarith.encode(bits.view(ml_dtypes.bfloat16), "binary32")
    assert got.tolist() == [int(b) << 16 for b in bits]


def test_float8_input_every_code():
    """All 256 E4M3 codes as an ml_dtypes array, cast to binary16: ml_dtypes' own widening for the non-NaN codes
    (exact, no rounding), a NaN for the two NaN codes."""
    codes = np.arange(256, dtype=np.uint8)
    x = codes.view(ml_dtypes.float8_e4m3fn)
    got = refarith.encode(x, np.float16)
    ref = x.astype(np.float32).astype(np.float16)
    nan = (codes & 0x7F) == 0x7F
    assert (got[~nan] == ref[~nan].view(np.uint16)).all()
    assert np.isnan(got[nan].astype(np.uint16).view(np.float16)).all()


def test_sub_byte_inputs_and_scalars():
    v = np.arange(-8, 8)
    assert refarith.encode(v.astype(ml_dtypes.int4), "int8").tolist() == v.astype(np.int8).view(np.uint8).tolist()
    e2m1 = np.array([0.5, 1.0, 1.5, 6.0, -6.0], np.float32).astype(ml_dtypes.float4_e2m1fn)
    assert refarith.encode(e2m1, "binary16").tolist() == [0x3800, 0x3C00, 0x3E00, 0x4600, 0xC600]
    assert refarith.encode(ml_dtypes.bfloat16(3.0), np.float16) == 0x4200
    assert refarith.encode(ml_dtypes.bfloat16(3.0), "ocp_e4m3", backend="numpy") == 0x44


# ------------------------------------------------------------------ quantize
@pytest.mark.parametrize("fmt", ["mxfp4", "nvfp4", "int8"])
def test_quantize_bfloat16_arrays(fmt):
    rng = np.random.default_rng(2)
    bits = (rng.standard_normal((4, 64)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    want = refarith.quantize((bits.astype(np.uint32) << 16).view(np.float32), fmt)
    for x in (bits.view(ml_dtypes.bfloat16),):
        got = refarith.quantize(x, fmt)
        assert (got.codes == want.codes).all() and (got.scales == want.scales).all() and got.spec == want.spec
    torch = pytest.importorskip("torch")
    got = refarith.quantize(torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16), fmt)
    assert (got.codes == want.codes).all() and (got.scales == want.scales).all()


def test_quantize_format_as_dtype_and_exact_integers():
    x = np.linspace(-1, 1, 64, dtype=np.float32)
    assert refarith.quantize(x, np.int8).spec == refarith.quantize(x, "int8").spec
    assert refarith.quantize(x, ml_dtypes.int4).spec.startswith("int_quantize(int4,")
    with pytest.raises(BadValueError, match="not a quantization format"):
        refarith.quantize(x, np.float32)
    with pytest.raises(BadValueError, match="16777217, not a binary32 number"):
        refarith.quantize(np.full(32, 2 ** 24 + 1, np.int64), "mxfp4")


# ------------------------------------------------------------------ load_quantized
CASES = [("mxfp4", []), ("mxfp8_e4m3", ["--axis", "0"]), ("nvfp4", []), ("nvfp4", ["--variant", "tile=16x16"]),
         ("int8", []), ("int4", ["--variant", "granularity=group", "--block", "32"]),
         ("int8", ["--variant", "scheme=asymmetric", "--variant", "granularity=channel"])]


@pytest.mark.parametrize("fmt,extra", CASES)
def test_load_quantized_round_trip(fmt, extra, tmp_path, capsys):
    x = np.random.default_rng(3).standard_normal((32, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["quantize", "--format", fmt, *extra, str(tmp_path / "x.npy"), "-o", str(tmp_path / "q.npz")]) == 0
    q = refarith.load_quantized(tmp_path / "q.npz")
    axis = int(extra[extra.index("--axis") + 1]) if "--axis" in extra else -1
    kw = {}
    for v in extra[1::2] if "--variant" in extra else []:
        if "=" in v:
            k, val = v.split("=")
            kw[k] = val
    block = int(extra[extra.index("--block") + 1]) if "--block" in extra else None
    direct = refarith.quantize(x, fmt, axis=axis, block=block, **kw)
    assert q.spec == direct.spec and (q.codes == direct.codes).all() and (q.scales == direct.scales).all()
    y = refarith.dequantize(q)
    assert y.dtype == np.float32 and (y.view(np.uint32) == refarith.dequantize(direct).view(np.uint32)).all()


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_load_quantized_refuses_bad_files(tmp_path):
    x = np.random.default_rng(4).standard_normal((2, 64)).astype(np.float32)
    good = refarith.quant.quantized_arrays(refarith.quantize(x, "mxfp4"))
    with pytest.raises(BadValueError, match="no such file"):
        refarith.load_quantized(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(BadValueError, match="not a quantized .npz"):
        refarith.load_quantized(tmp_path / "text.npz")
    with pytest.raises(BadValueError, match="missing scales"):
        refarith.load_quantized(_write(tmp_path / "a.npz", **{k: v for k, v in good.items() if k != "scales"}))
    with pytest.raises(BadValueError, match="not a quantized .npz"):  # an object array needs pickle: refused
        refarith.load_quantized(_write(tmp_path / "b.npz", **dict(good, spec=np.array([{"a": 1}], dtype=object))))
    with pytest.raises(BadValueError, match="codes of mxfp4 must be uint8"):
        refarith.load_quantized(_write(tmp_path / "c.npz", **dict(good, codes=good["codes"].astype(np.int32))))
    with pytest.raises(BadValueError, match="is not a quantization of format nvfp4"):
        refarith.load_quantized(_write(tmp_path / "d.npz", **dict(good, format=np.array("nvfp4"))))
    with pytest.raises(BadValueError, match="do not fit together"):
        refarith.load_quantized(_write(tmp_path / "e.npz", **dict(good, scales=good["scales"][:, :1])))
    with pytest.raises(BadValueError, match="schema_version 7"):
        refarith.load_quantized(_write(tmp_path / "f.npz", **dict(good, schema_version=np.array(7))))
    assert refarith.load_quantized(_write(tmp_path / "ok.npz", **good)).spec == good["spec"].item()


@pytest.mark.parametrize("backend", ["exact", "numpy", "torch"])
def test_torch_float8_and_bfloat16_tensors_by_their_bits(backend):
    """torch float8 / bfloat16 tensors (numpy has no such dtype): every E4M3 code widened into binary16 equals
    ml_dtypes' widening of the same bits (exact, no rounding); bfloat16 tensors cast like their binary32 values."""
    torch = pytest.importorskip("torch")
    codes = np.arange(256, dtype=np.uint8)
    t = torch.from_numpy(codes.copy()).view(torch.float8_e4m3fn)
    got = refarith.encode(t, "binary16", backend=backend)
    got = np.asarray(got.cpu().numpy() if hasattr(got, "cpu") else got).astype(np.uint16)
    ref = codes.view(ml_dtypes.float8_e4m3fn).astype(np.float32).astype(np.float16).view(np.uint16)
    nan = (codes & 0x7F) == 0x7F
    assert (got[~nan] == ref[~nan]).all() and np.isnan(got[nan].view(np.float16)).all()
    bits = np.array([0x3F80, 0xC2F7, 0x4380, 0x0001, 0x8000], np.uint16)
    tb = torch.from_numpy(bits.view(np.int16).copy()).view(torch.bfloat16)
    want = refarith.encode((bits.astype(np.uint32) << 16).view(np.float32), "ocp_e4m3")
    got = refarith.encode(tb, "ocp_e4m3", backend=backend)
    assert (np.asarray(got.cpu().numpy() if hasattr(got, "cpu") else got) == want).all()
