"""numpy encode/decode front end (refarith.fast.cast) against the exact model, torch absent or present.

Every path of the numpy front end is decided on small inputs: the 16-bit code table, the binary32 sticky-key
table, the bit kernel on chunks (binary64, integers, stochastic rounding), the error sentinel and the position
and text of the first error, table blocks and chunk edges, the decode tables (float32/float64, E8M0, code
pairs) and every input check.  Expected codes and values come from refarith.exact.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import BadValueError, BitPatternError, SpecialValueError, UnknownModeError
from refarith.exact import ops as exact
from refarith.exact.rounding import round_value
from refarith.fast import cast as fc
from refarith.formats import IntFormat, get_format


def want_codes(src: str, dst: str, bits, **kw) -> list[int]:
    """Exact codes of the source bit patterns (-1 where the exact model raises)."""
    out = []
    for b in bits:
        try:
            out.append(round_value(exact.decode(int(b), src), dst, **kw).code)
        except SpecialValueError:
            out.append(-1)
    return out


def f32_bits(rng, n: int) -> np.ndarray:
    """binary32 patterns: random bits plus values around the small formats' ranges."""
    raw = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    near = (rng.standard_normal(n) * np.exp2(rng.integers(-12, 12, n))).astype(np.float32).view(np.uint32)
    return np.concatenate([raw, near])


# ------------------------------------------------------------------ small helpers
def test_code_dtype_per_width():
    assert fc.code_dtype(get_format("ocp_e2m1")) is np.uint8
    assert fc.code_dtype(get_format("ocp_e4m3")) is np.uint8
    assert fc.code_dtype(get_format("binary16")) is np.uint16
    assert fc.code_dtype(IntFormat("int9", 9, signed=True)) is np.uint16
    assert fc.code_dtype(get_format("binary32")) is np.uint32
    assert fc.code_dtype(IntFormat("int17", 17, signed=True)) is np.uint32
    assert fc.code_dtype(get_format("binary64")) is np.uint64
    assert fc.code_dtype(IntFormat("int33", 33, signed=True)) is np.uint64


def test_targets_and_backends_checked():
    with pytest.raises(BadValueError, match=r"^fast encode targets float formats of at most 16 bits, not binary32$"):
        fc.encode(np.ones(2, np.float32), "binary32")
    with pytest.raises(BadValueError, match=r"^fast encode targets float formats of at most 16 bits, not int8$"):
        fc.encode(np.ones(2, np.float32), "int8")
    assert fc.encode(np.ones(2, np.float32), "binary16").tolist() == [0x3C00, 0x3C00]
    with pytest.raises(UnknownModeError, match=r"^unknown fast backend 'cupy'; expected one of numpy, torch"):
        fc.encode(np.ones(2, np.float32), "ocp_e4m3", backend="cupy")
    with pytest.raises(UnknownModeError, match=r"^unknown fast backend 'cupy'; expected one of numpy, torch"):
        fc.decode(np.ones(2, np.uint8), "ocp_e4m3", backend="cupy")


@pytest.mark.parametrize("bad", [None, 0, -1, True, 1.5, "8"])
def test_sr_needs_positive_integer_rand_bits(bad):
    with pytest.raises(UnknownModeError, match=r"^stochastic rounding needs rand_bits, a positive integer; got "):
        fc.encode(np.ones(2, np.float32), "ocp_e4m3", rounding="sr", rand=np.zeros(2, int), rand_bits=bad)


def test_rand_bits_ignored_outside_sr_and_default_overflow():
    x = np.array([1e6, -1e6, 3.0], np.float32)
    # rand_bits without sr is dropped (the deterministic table path); the default overflow of e4m3 is its own
    assert fc.encode(x, "ocp_e4m3", rand_bits=0).tolist() == want_codes("binary32", "ocp_e4m3", x.view(np.uint32))
    assert fc.encode(x, "ocp_e5m2").tolist() == want_codes("binary32", "ocp_e5m2", x.view(np.uint32))
    assert fc.encode(x, "ocp_e5m2", overflow="saturate").tolist() == want_codes(
        "binary32", "ocp_e5m2", x.view(np.uint32), overflow="saturate")


def test_rand_checks():
    x = np.ones(3, np.float32)
    with pytest.raises(UnknownModeError, match=r"^stochastic rounding needs rand \(integers of rand_bits bits\)$"):
        fc.encode(x, "ocp_e4m3", rounding="sr", rand_bits=4)
    with pytest.raises(UnknownModeError, match=r"^rand must hold integers, got dtype float64$"):
        fc.encode(x, "ocp_e4m3", rounding="sr", rand=np.zeros(3), rand_bits=4)
    with pytest.raises(UnknownModeError, match=r"^rand must hold integers: element 1: a bool is not a number$"):
        fc.encode(x, "ocp_e4m3", rounding="sr", rand=[1, True, 2], rand_bits=4)
    with pytest.raises(UnknownModeError, match=r"^rand values must lie in \[0, 2\^4\) for rand_bits=4$"):
        fc.encode(x, "ocp_e4m3", rounding="sr", rand=np.array([0, 16, 1]), rand_bits=4)
    with pytest.raises(UnknownModeError, match=r"^rand values must lie in \[0, 2\^4\) for rand_bits=4$"):
        fc.encode(x, "ocp_e4m3", rounding="sr", rand=np.array([0, -1, 1]), rand_bits=4)
    got = fc.encode(x, "ocp_e4m3", rounding="sr", rand=np.array([0, 15, 7]), rand_bits=4)
    assert got.tolist() == [exact.encode(1.0, "ocp_e4m3").code] * 3
    # a scalar rand broadcasts
    y = np.array([1.0625, -1.0625, 1.0625], np.float32)
    for r in (0, 15):
        want = [round_value(exact.decode(int(b), "binary32"), "ocp_e4m3", rounding="sr", rand=r, rand_bits=4).code
                for b in y.view(np.uint32)]
        assert fc.encode(y, "ocp_e4m3", rounding="sr", rand=r, rand_bits=4).tolist() == want


def test_as_numpy():
    a = np.arange(3)
    assert fc.as_numpy(a) is a
    assert fc.as_numpy(5).tolist() == 5
    assert fc.as_numpy([1, 2.5]).dtype == np.float64
    assert fc.as_numpy([]).size == 0
    assert fc.as_numpy(["a"]).dtype.kind == "U"
    assert fc.as_numpy((1, 2)).tolist() == [1, 2]
    with pytest.raises(BadValueError, match=r"^element 2: a bool is not a number$"):
        fc.as_numpy([1.0, 2.0, np.True_])
    with pytest.raises(BadValueError, match=r"^element 0: a bool is not a number$"):
        fc.as_numpy([False, 1])
    with pytest.raises(BadValueError, match=r"^element 1: the integer 9007199254740993 is not exact in float64 "):
        fc.as_numpy([0.5, 2 ** 53 + 1])
    assert fc.as_numpy([0.5, 2 ** 53]).tolist() == [0.5, float(2 ** 53)]
    assert fc.as_numpy([np.int64(3), 0.5]).tolist() == [3.0, 0.5]
    with pytest.raises(BadValueError, match=r"^malformed nested sequence: "):
        fc.as_numpy([[1, 2], [3]])


# ------------------------------------------------------------------ numpy sources
def test_source_bit_patterns_checked():
    with pytest.raises(BadValueError, match=r"^with src=bfloat16, x must hold integer bit patterns, got dtype "
                                            r"float32$"):
        fc.encode(np.ones(2, np.float32), "ocp_e4m3", src="bfloat16")
    with pytest.raises(BitPatternError, match=r"^bfloat16: bit patterns must lie in \[0, 0xffff\]$"):
        fc.encode(np.array([0, 0x10000]), "ocp_e4m3", src="bfloat16")
    with pytest.raises(BitPatternError, match=r"^ocp_e2m1: bit patterns must lie in \[0, 0xf\]$"):
        fc.encode(np.array([3, 16], np.uint8), "ocp_e4m3", src="ocp_e2m1")
    with pytest.raises(BitPatternError, match=r"^binary16: bit patterns must lie in \[0, 0xffff\]$"):
        fc.encode(np.array([-1, 2], np.int16), "ocp_e4m3", src="binary16")
    # the largest pattern is accepted; a uint16 array of a 16-bit source needs no check
    hi = np.array([0xFFFF, 0x3C00, 0x8001], np.uint16)
    assert fc.encode(hi, "ocp_e4m3", src="binary16", nan_policy="error").tolist() == want_codes(
        "binary16", "ocp_e4m3", hi)
    assert fc.encode(np.array([15, 0, 7]), "ocp_e4m3", src="ocp_e2m1").tolist() == want_codes(
        "ocp_e2m1", "ocp_e4m3", [15, 0, 7])
    b64 = np.array([1.5, -2 ** -30, 1e300], np.float64).view(np.uint64)
    assert fc.encode(b64, "ocp_e4m3", src="binary64").tolist() == want_codes("binary64", "ocp_e4m3", b64)
    with pytest.raises(BitPatternError, match=r"^binary64: bit patterns must lie in \[0, 0xffffffffffffffff\]$"):
        fc.encode(b64.astype(np.int64), "ocp_e4m3", src="binary64")  # -2^-30 has the sign bit: negative int64
    assert fc.encode(b64[[0, 2]].astype(np.int64), "ocp_e4m3", src="binary64").tolist() == want_codes(
        "binary64", "ocp_e4m3", b64[[0, 2]])


@pytest.mark.parametrize("dt,src", [(np.float64, "binary64"), (np.float32, "binary32"), (np.float16, "binary16")])
def test_float_dtypes(dt, src):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(300) * np.exp2(rng.integers(-20, 20, 300))).astype(dt)
    x[:4] = [0.0, -0.0, 448.0, -464.0]
    bits = x.view(f"u{x.itemsize}")
    for dst in ("ocp_e4m3", "ocp_e2m1", "e8m0"):
        kw = {} if get_format(dst).signed else dict(negative="clamp")
        assert fc.encode(x, dst, **kw).tolist() == want_codes(src, dst, bits, **kw), dst


@pytest.mark.parametrize("dt", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64])
def test_integer_dtypes(dt):
    info = np.iinfo(dt)
    x = np.array([info.min, info.max, 0, 1, 3, 17, 300 % (info.max + 1), info.max // 3], dtype=dt)
    nb = info.bits
    src = IntFormat(f"{'int' if info.min < 0 else 'uint'}{nb}", nb, signed=info.min < 0)
    want = [round_value(exact.decode(int(b), src), "ocp_e5m2").code for b in x.view(f"u{x.itemsize}")]
    assert fc.encode(x, "ocp_e5m2").tolist() == want


def test_unsupported_dtypes():
    for x in (np.array([True]), np.array([1 + 2j]), np.array(["a"]), np.array([b"a"]).view("V1")):
        with pytest.raises(BadValueError, match=r"^cannot encode numpy dtype .*; use float64/float32/float16, "
                                                r"bfloat16 \(ml_dtypes\), an integer dtype, or integer bit "
                                                r"patterns with src=$"):
            fc.encode(x, "ocp_e4m3")


def test_ml_dtypes_inputs():
    ml = pytest.importorskip("ml_dtypes", reason="ml_dtypes not installed: its dtypes as inputs untested")
    codes = np.arange(256, dtype=np.uint8)
    for dt, src in ((ml.float8_e4m3fn, "ocp_e4m3"), (ml.float8_e5m2, "ocp_e5m2")):
        x = codes.view(dt)
        assert fc.encode(x, "ocp_e2m1", nan_policy="zero").tolist() == want_codes(src, "ocp_e2m1", codes,
                                                                                  nan_policy="zero")
    b = (np.arange(0, 1 << 16, 97, dtype=np.uint32)).astype(np.uint16)
    assert fc.encode(b.view(ml.bfloat16), "ocp_e4m3").tolist() == want_codes("bfloat16", "ocp_e4m3", b)
    f4 = np.arange(16, dtype=np.uint8).view(ml.float4_e2m1fn)
    assert fc.encode(f4, "ocp_e4m3").tolist() == want_codes("ocp_e2m1", "ocp_e4m3", range(16))


# ------------------------------------------------------------------ errors: first element, message, every path
def _msg(i: int, pattern: int, src: str, dst: str, nan="error", neg="error") -> str:
    return (f"element {i} (bit pattern {pattern:#x} of {src}) cannot be encoded in {dst} "
            f"(nan_policy={nan!r}, negative={neg!r})")


@pytest.mark.parametrize("n,i", [(5, 3), (40000, 0), (40000, 16383), (40000, 16384), (40000, 39999)])
def test_first_error_position_keyed_table(n, i):
    """binary32 -> ocp_e2m1 (sticky-key table, gathered in blocks of 2^14): the first NaN is named."""
    x = np.ones(n, np.float32)
    x[i] = np.nan
    if i + 7 < n:
        x[i + 7] = np.nan
    with pytest.raises(SpecialValueError) as e:
        fc.encode(x, "ocp_e2m1")
    assert str(e.value) == _msg(i, 0x7FC00000, "binary32", "ocp_e2m1")


@pytest.mark.parametrize("n,i", [(5, 2), (40000, 16384), (40000, 39998)])
def test_first_error_position_code_table(n, i):
    x = np.full(n, 0x3C00, np.uint16)
    x[i] = 0xBC00  # -1 into an unsigned format
    with pytest.raises(SpecialValueError) as e:
        fc.encode(x, "e8m0", src="binary16")
    assert str(e.value) == _msg(i, 0xBC00, "binary16", "e8m0")
    # the same with a float16 array (no src)
    with pytest.raises(SpecialValueError) as e:
        fc.encode(x.view(np.float16), "ue4m3", negative="error")
    assert str(e.value) == _msg(i, 0xBC00, "binary16", "ue4m3")


@pytest.mark.parametrize("n,i", [(3, 1), (70000, 65535), (70000, 65536), (140000, 139999)])
def test_first_error_position_bit_kernel(n, i):
    """binary64 goes through the bit kernel in chunks of 2^16: the first error of any chunk is named."""
    x = np.ones(n, np.float64)
    x[i] = np.nan
    with pytest.raises(SpecialValueError) as e:
        fc.encode(x, "ocp_e3m2", nan_policy="error")
    assert str(e.value) == _msg(i, 0x7FF8000000000000, "binary64", "ocp_e3m2")


def test_error_message_names_the_policies():
    with pytest.raises(SpecialValueError) as e:
        fc.encode(np.array([-1.0], np.float32), "e8m0", nan_policy="max", negative="error")
    assert str(e.value) == _msg(0, 0xBF800000, "binary32", "e8m0", nan="max")


def test_error_free_tables_and_sentinels():
    """Targets with an error entry in their table (NaN into e2m1, the 8-bit e4m3 with no spare code value,
    negatives into e8m0) next to error-free ones; repeated calls reuse the sentinel table."""
    rng = np.random.default_rng(3)
    b = f32_bits(rng, 300)
    for dst, kw in (("ocp_e2m1", dict(nan_policy="zero")), ("ocp_e4m3", {}), ("ocp_e5m2", {}),
                    ("e8m0", dict(negative="clamp")), ("ue4m3", dict(negative="clamp", nan_policy="max")),
                    ("binary8p3sf", {})):
        want = np.array(want_codes("binary32", dst, b, **kw))
        ok = want >= 0
        for _ in range(2):
            got = fc.encode(b[ok].view(np.float32), dst, **kw)
            assert got.dtype == np.uint8 and got.tolist() == want[ok].tolist(), dst
        b16 = (b >> 16).astype(np.uint16)
        want16 = np.array(want_codes("bfloat16", dst, b16, **kw))
        ok16 = want16 >= 0
        for _ in range(2):
            assert fc.encode(b16[ok16], dst, src="bfloat16", **kw).tolist() == want16[ok16].tolist(), dst
        if not ok.all():
            with pytest.raises(SpecialValueError):
                fc.encode(b.view(np.float32), dst, **kw)


def test_ocp_e4m3_nan_codes_pass_the_sentinel():
    """0x7F / 0xFF are e4m3's NaN codes, the largest code values: they must not read as errors."""
    x = np.array([np.nan, -np.nan, 1.0, 500.0], np.float32)
    assert fc.encode(x, "ocp_e4m3").tolist() == want_codes("binary32", "ocp_e4m3", x.view(np.uint32))
    h = np.array([0x7E00, 0xFE00, 0x3C00], np.uint16)
    assert fc.encode(h, "ocp_e4m3", src="binary16").tolist() == want_codes("binary16", "ocp_e4m3", h)


def test_binary16_target_from_binary32_uses_the_bit_kernel():
    rng = np.random.default_rng(5)
    b = f32_bits(rng, 2000)
    got = fc.encode(b.view(np.float32), "binary16")
    assert got.dtype == np.uint16 and got.tolist() == want_codes("binary32", "binary16", b)
    got = fc.encode(b.view(np.float32), "bfloat16", rounding="rtz")
    assert got.tolist() == want_codes("binary32", "bfloat16", b, rounding="rtz")


def test_large_inputs_cross_blocks_and_chunks():
    """Sizes above the 2^14 gather block and the 2^16 kernel chunk, shapes kept."""
    rng = np.random.default_rng(11)
    b = rng.integers(0, 1 << 32, 70001, dtype=np.uint64).astype(np.uint32)
    b = b[(b & 0x7F800000) != 0x7F800000]  # finite
    x = b.view(np.float32)
    sub = np.r_[0:x.size:53, x.size - 5:x.size]
    want = np.array(want_codes("binary32", "ocp_e4m3", b[sub]))
    got = fc.encode(x, "ocp_e4m3")
    assert np.array_equal(got[sub], want)
    assert np.array_equal(fc.encode(x.astype(np.float64), "ocp_e4m3"), got)
    assert np.array_equal(fc.encode(b.astype(np.uint64) >> 16, "ocp_e4m3", src="bfloat16"),
                          fc.encode((b >> 16).astype(np.uint16), "ocp_e4m3", src="bfloat16"))
    r = rng.integers(0, 256, x.size)
    gsr = fc.encode(x, "ocp_e4m3", rounding="sr", rand=r, rand_bits=8)
    wsr = [round_value(exact.decode(int(c), "binary32"), "ocp_e4m3", rounding="sr", rand=int(rr), rand_bits=8).code
           for c, rr in zip(b[sub], r[sub])]
    assert gsr[sub].tolist() == wsr
    m = x[: 4 * 5000].reshape(4, 5000)
    assert fc.encode(m, "ocp_e4m3").shape == (4, 5000)
    assert np.array_equal(fc.encode(m, "ocp_e4m3").ravel(), got[: 4 * 5000])


def test_scalars_return_python_ints():
    for v in (0.1, np.float32(-3.3), np.float64(1e9), 7, np.int16(-5)):
        got = fc.encode(v, "ocp_e4m3")
        assert type(got) is int and got == exact.encode(v, "ocp_e4m3").code, v
    got = fc.encode([0.1, 2.0], "ocp_e4m3")
    assert isinstance(got, np.ndarray) and got.tolist() == [exact.encode(v, "ocp_e4m3").code for v in (0.1, 2.0)]
    assert isinstance(fc.encode((1.0,), "ocp_e4m3"), np.ndarray)
    assert isinstance(fc.encode(np.array([1.0]), "ocp_e4m3"), np.ndarray)


def test_sticky_keys_formula():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.integers(0, 1 << 32, 5000, dtype=np.uint64).astype(np.uint32),
                        np.array([0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x17FFF, 0xFFFFFFFF, 0xFFFF0000],
                                 np.uint32)])
    want = [((int(v) >> 16) << 1) | int((int(v) & 0xFFFF) != 0) for v in x]
    got = fc.sticky_keys(x)
    assert got.dtype == np.uint32 and got.tolist() == want


# ------------------------------------------------------------------ decode
def _exact_values(fmt: str, codes) -> list[float]:
    out = []
    for c in codes:
        v = exact.decode(int(c), fmt)
        f = v.to_float()
        out.append(-f if v.is_nan and v.sign else f)
    return out


def _same_floats(got, want) -> bool:
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    return g.shape == w.shape and bool(np.all((g == w) & (np.signbit(g) == np.signbit(w)) | (np.isnan(g)
                                                                                              & np.isnan(w))))


@pytest.mark.parametrize("fmt", ["ocp_e4m3", "ocp_e2m1", "ocp_e5m2", "e8m0", "e8m3", "ue4m3", "e9m2"])
def test_decode_every_code(fmt):
    """Every code of the 8-bit formats; 16-bit formats on a sample with their edges."""
    f = get_format(fmt)
    codes = np.arange(f.ncodes, dtype=fc.code_dtype(f))
    if f.nbits > 8:
        codes = np.unique(np.concatenate([codes[:40], codes[-40:], codes[0x7F0:0x810],
                                          codes[::331]]))
    want = _exact_values(fmt, codes)
    got = fc.decode(codes, fmt)
    assert got.dtype == (np.float64 if fmt == "e9m2" else np.float32)
    assert _same_floats(got, want)
    assert np.array_equal(np.signbit(got[np.isnan(got)]), np.signbit(np.array(want)[np.isnan(want)]))
    got64 = fc.decode(codes, fmt, dtype="float64")
    assert got64.dtype == np.float64 and _same_floats(got64, want)
    rev = codes[::-1]
    assert _same_floats(fc.decode(rev, fmt), want[::-1])  # not contiguous
    odd = codes[: max(3, (codes.size // 2) | 1)]
    assert _same_floats(fc.decode(odd.copy(), fmt), want[: odd.size])
    assert _same_floats(fc.decode(codes.astype(np.int64), fmt), want)
    two = codes[: codes.size // 2 * 2].reshape(-1, 2)
    assert _same_floats(fc.decode(two, fmt), np.array(want[: two.size]).reshape(-1, 2))


def test_decode_large_arrays_cross_blocks():
    rng = np.random.default_rng(1)
    for fmt in ("ocp_e4m3", "e8m0"):
        codes = rng.integers(0, 256, 2 * 16384 * 2 + 3).astype(np.uint8)
        codes[-1] = 0
        codes[-2] = 0xFF
        codes[40000] = 0
        codes[:16384 * 2] = np.where(codes[:16384 * 2] == 0, 1, codes[:16384 * 2])
        codes[:16384 * 2] = np.where(codes[:16384 * 2] == 0xFF, 1, codes[:16384 * 2])
        want = np.array(_exact_values(fmt, range(256)))[codes]
        got = fc.decode(codes, fmt)
        assert got.dtype == np.float32 and _same_floats(got, want), fmt
        assert _same_floats(fc.decode(codes[:-1], fmt), want[:-1])
        assert _same_floats(fc.decode(codes.reshape(1, -1), fmt), want.reshape(1, -1))


def test_decode_e8m0_special_codes():
    got = fc.decode(np.array([0, 1, 127, 254, 255], np.uint8), "e8m0")
    assert got.view(np.uint32).tolist()[:4] == [0x00400000, 0x00800000, 0x3F800000, 0x7F000000]
    assert np.isnan(got[4])
    one = fc.decode(np.array([0], np.uint8), "e8m0")
    assert one.view(np.uint32).tolist() == [0x00400000]
    assert fc.decode(np.array([255], np.uint8), "e8m0").view(np.uint32).tolist() == [0x7FC00000]
    assert fc.decode(np.array([200, 3], np.uint8), "e8m0").tolist() == [2.0 ** 73, 2.0 ** -124]


def test_decode_scalars_and_checks():
    v = fc.decode(0x38, "ocp_e4m3")
    assert v == 1.0 and np.ndim(v) == 0
    assert fc.decode(np.uint8(127), "e8m0") == 1.0 and np.ndim(fc.decode(np.uint8(127), "e8m0")) == 0
    assert fc.decode(0x3F8, "e8m3") == 1.0
    assert fc.decode([0x38, 0x40], "ocp_e4m3").tolist() == [1.0, 2.0]
    with pytest.raises(BadValueError, match=r"^binary32 has 32 bits; fast decode handles formats of 16 bits or "
                                            r"fewer$"):
        fc.decode(np.array([1], np.uint32), "binary32")
    with pytest.raises(BadValueError, match=r"^codes must be integers, got dtype float64$"):
        fc.decode(np.array([1.0]), "ocp_e4m3")
    with pytest.raises(BitPatternError, match=r"^ocp_e2m1: codes must lie in \[0, 0xf\]$"):
        fc.decode(np.array([0, 16], np.uint8), "ocp_e2m1")
    with pytest.raises(BitPatternError, match=r"^ocp_e4m3: codes must lie in \[0, 0xff\]$"):
        fc.decode(np.array([-1, 3], np.int8), "ocp_e4m3")
    with pytest.raises(BitPatternError, match=r"^ocp_e4m3: codes must lie in \[0, 0xff\]$"):
        fc.decode(np.array([256]), "ocp_e4m3")
    assert fc.decode(np.array([15, 0], np.uint8), "ocp_e2m1").tolist() == [-6.0, 0.0]
    assert fc.decode(np.array([0xFFF, 0x3F8], np.uint16), "e8m3")[1] == 1.0
    assert fc.decode(np.array([], np.int64), "ocp_e4m3").size == 0
    assert fc.decode(np.array([127, 1], np.int8), "ocp_e4m3")[1] == 2.0 ** -9


@pytest.mark.parametrize("dt,name", [(None, "float32"), ("float32", "float32"), ("float64", "float64"),
                                     (np.float32, "float32"), (np.float64, "float64"), (float, "float64"),
                                     ("double", "float64"), ("float", "float64"), (np.dtype("float32"), "float32")])
def test_decode_dtype_names(dt, name):
    assert fc.decode(np.array([0x38], np.uint8), "ocp_e4m3", dtype=dt).dtype == np.dtype(name)


@pytest.mark.parametrize("dt", ["float16", np.int32, "bfloat16"])
def test_decode_bad_dtype(dt):
    with pytest.raises(BadValueError, match=r"^decode dtype must be float32 or float64, got "):
        fc.decode(np.array([0x38], np.uint8), "ocp_e4m3", dtype=dt)


def test_value_tables():
    t = fc.value_table(get_format("e5m2b-200"), "float64")
    assert t.dtype == np.float64 and not t.flags.writeable
    assert _same_floats(t, _exact_values("e5m2b-200", range(256)))
    with pytest.raises(BadValueError, match=r"^e5m2b-200 has values that are not exact in float32$"):
        fc.value_table(get_format("e5m2b-200"), "float32")
    with pytest.raises(BadValueError, match=r"^binary32 has 32 bits; decode tables are for formats of 16 bits or "
                                            r"fewer$"):
        fc.value_table(get_format("binary32"), "float32")
    assert fc.exact_in_float32("ocp_e4m3")
    # e8m3 has binary32's exponent range and fewer mantissa bits; e9m2 and e5m2b-200 reach beyond 2^128
    assert fc.exact_in_float32("e8m3")
    assert not fc.exact_in_float32("e9m2") and not fc.exact_in_float32("e5m2b-200")
    for fmt in ("e9m2", "e5m2b-200"):
        assert exact.decode(get_format(fmt).max_code, fmt).mag > Fraction(2) ** 128


def test_code_and_key_tables_frozen():
    codes, err, anyerr = fc.code_table(get_format("binary16"), get_format("ocp_e2m1"), "rne", "saturate", "error",
                                       "error")
    assert not codes.flags.writeable and not err.flags.writeable and anyerr
    assert codes.dtype == np.uint8 and codes.size == 1 << 16
    codes, err, anyerr = fc.key_table(get_format("ocp_e5m2"), "rne", "inf", "error", "error")
    assert codes.size == 1 << 17 and not anyerr and not codes.flags.writeable
    with pytest.raises(BadValueError, match=r"^binary32 -> binary16 is not a function of the 17-bit sticky key$"):
        fc.key_table(get_format("binary16"), "rne", "inf", "error", "error")


def test_error_after_a_code_equal_to_the_limit():
    """The error sentinel lies above the largest code (e2m1: 0xF is -6); a valid 0xF before the NaN is no error."""
    x = np.array([-6.0, -6.0, np.nan, 1.0], np.float32)
    with pytest.raises(SpecialValueError) as e:
        fc.encode(x, "ocp_e2m1")
    assert str(e.value) == _msg(2, 0x7FC00000, "binary32", "ocp_e2m1")
    h = np.array([0xC600, 0x7E00], np.uint16)  # binary16 -6.0 then NaN
    with pytest.raises(SpecialValueError) as e:
        fc.encode(h, "ocp_e2m1", src="binary16")
    assert str(e.value) == _msg(1, 0x7E00, "binary16", "ocp_e2m1")


def test_sixteen_bit_target_with_errors():
    """A 16-bit unsigned target has no spare code value: errors need a wider sentinel (uint32)."""
    h = np.array([0x3C00, 0x7BFF, 0x0001, 0xBC00, 0x3555], np.uint16)
    ok = h[[0, 1, 2, 4]]
    want = want_codes("binary16", "ue8m8", ok)
    for _ in range(2):  # the second call reuses the sentinel table
        got = fc.encode(ok, "ue8m8", src="binary16")
        assert got.dtype == np.uint16 and got.tolist() == want
        with pytest.raises(SpecialValueError) as e:
            fc.encode(h, "ue8m8", src="binary16")
        assert str(e.value) == _msg(3, 0xBC00, "binary16", "ue8m8")


def test_sentinel_table_reused_within_a_run():
    x = np.array([1.0, -6.0, 0.3], np.float32)
    want = want_codes("binary32", "ocp_e2m1", x.view(np.uint32))
    for _ in range(3):
        assert fc.encode(x, "ocp_e2m1").tolist() == want
        with pytest.raises(SpecialValueError):
            fc.encode(np.array([np.nan], np.float32), "ocp_e2m1")
    h = np.array([0x3C00, 0xC600], np.uint16)
    for _ in range(2):
        assert fc.encode(h, "ocp_e2m1", src="binary16").tolist() == want_codes("binary16", "ocp_e2m1", h)


def test_sticky_keys_of_a_list_are_uint32():
    got = fc.sticky_keys([0x10000, 0x1FFFF, 0xFFFFFFFF])
    assert got.dtype == np.uint32 and got.tolist() == [2, 3, 0x1FFFF]
