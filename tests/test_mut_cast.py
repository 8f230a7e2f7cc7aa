"""Flush-to-zero variants of the numpy cast path (refarith.fast.cast.encode(subnormal=...)) against the exact
model (refarith.exact.ops.cast with the same ``subnormal``), torch absent or not.

The inputs are every subnormal bit pattern's neighbourhood (the smallest and largest subnormals of each sign, the
zeros, the smallest normals) plus a stride through all codes, so each flushing rule is decided both ways.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import UnknownModeError
from refarith.exact import ops
from refarith.exact.rounding import round_value
from refarith.exact.value import Value
from refarith.fast import cast as fc


def _edges(mbits: int, nbits: int, stride: int) -> list[int]:
    sign = 1 << (nbits - 1)
    top = (1 << mbits) - 1  # the largest subnormal's pattern
    base = [0, 1, 2, 3, top - 1, top, top + 1, top + 2, 1 << (mbits - 1)]
    codes = set(base) | {c | sign for c in base} | set(range(0, 1 << nbits, stride))
    return sorted(codes)


B16 = _edges(10, 16, 251)


def _exact(codes, src: str, dst: str, subnormal: str | None, rounding: str = "rne") -> list[int]:
    return [ops.cast(c, src, dst, rounding, subnormal=subnormal).code for c in codes]


@pytest.mark.parametrize("subnormal", ["daz", "ftz", "daz_ftz", None])
def test_binary16_patterns_to_e5m2(subnormal):
    """binary16 subnormals lie in E5M2's subnormal range (same exponent field), so daz and ftz differ."""
    x = np.array(B16, dtype=np.uint16)
    got = fc.encode(x, "ocp_e5m2", "rne", src="binary16", subnormal=subnormal)
    assert got.dtype == np.uint8
    assert got.tolist() == _exact(B16, "binary16", "ocp_e5m2", subnormal)
    as_float = fc.encode(x.view(np.float16), "ocp_e5m2", "rne", subnormal=subnormal)
    assert as_float.tolist() == got.tolist()


def test_daz_zeroes_exactly_the_subnormal_patterns():
    """Under daz a subnormal input is the zero of its sign: its code is that of +-0, every other code is as under
    gradual underflow (binary16 -> binary16 is the identity on non-NaN codes)."""
    x = np.array(B16, dtype=np.uint16)
    got = fc.encode(x, "binary16", "rne", src="binary16", subnormal="daz")
    exp = [(c & 0x8000) if (c & 0x7C00) == 0 else c for c in B16]
    nan = [(c & 0x7C00) == 0x7C00 and (c & 0x3FF) != 0 for c in B16]
    assert [g for g, n in zip(got.tolist(), nan) if not n] == [e for e, n in zip(exp, nan) if not n]
    ftz = fc.encode(x, "binary16", "rne", src="binary16", subnormal="ftz")
    assert ftz.tolist() == got.tolist()  # identity cast: flushing the input or the result is the same


@pytest.mark.parametrize("subnormal", ["daz", "daz_ftz"])
def test_binary32_float_input(subnormal):
    pats = [0, 1, 0x7FFFFF, 0x800000, 0x3F800000, 0x80000001, 0x807FFFFF, 0x80800000, 0x3B000000, 0x3A800000,
            0x3A000001, 0xBB000000, 0x7F800000, 0x43E00000]
    x = np.array(pats, dtype=np.uint32)
    got = fc.encode(x.view(np.float32), "ocp_e4m3", "rne", overflow="saturate", subnormal=subnormal)
    assert got.tolist() == [ops.cast(c, "binary32", "ocp_e4m3", "rne", "saturate", subnormal=subnormal).code
                            for c in pats]
    bits = fc.encode(x, "ocp_e4m3", "rne", overflow="saturate", src="binary32", subnormal=subnormal)
    assert bits.tolist() == got.tolist()


def test_daz_leaves_sources_without_subnormals_and_integers_alone():
    codes = np.arange(256, dtype=np.uint8)  # e8m0 has no subnormals
    plain = fc.encode(codes[:255], "binary16", "rne", overflow="inf", src="e8m0")
    daz = fc.encode(codes[:255], "binary16", "rne", overflow="inf", src="e8m0", subnormal="daz")
    assert daz.tolist() == plain.tolist() == _exact(range(255), "e8m0", "binary16", "daz")
    ints = np.array([-3, -1, 0, 1, 2, 5, 127], dtype=np.int8)
    assert (fc.encode(ints, "ocp_e4m3", "rne", subnormal="daz").tolist()
            == fc.encode(ints, "ocp_e4m3", "rne").tolist()
            == [ops.cast(int(v) & 0xFF, "int8", "ocp_e4m3", "rne").code for v in ints])


def test_daz_ftz_under_rtz():
    x = np.array(B16, dtype=np.uint16)
    e5 = fc.encode(x, "ocp_e5m2", "rtz", src="binary16", subnormal="daz_ftz")
    assert e5.tolist() == _exact(B16, "binary16", "ocp_e5m2", "daz_ftz", "rtz")


def test_scalar_input_returns_an_int_under_ftz():
    got = fc.encode(np.float32(-(2.0 ** -8)), "ocp_e4m3", "rne", overflow="saturate", subnormal="ftz")
    assert isinstance(got, int) and got == 0x80  # -2^-8 is an E4M3 subnormal: flushed to -0
    assert fc.encode(np.float32(-(2.0 ** -8)), "ocp_e4m3", "rne", overflow="saturate") == 0x82
    assert ops.cast(0xBB800000, "binary32", "ocp_e4m3", "rne", "saturate").code == 0x82  # -2^-8 = -2 * 2^-9


def test_scalar_input_returns_an_int_under_daz():
    got = fc.encode(np.float32(2.0 ** -140), "ocp_e4m3", "rne", overflow="saturate", subnormal="daz")
    assert isinstance(got, int) and got == 0


def test_daz_on_torch_needs_bit_patterns_before_torch_is_imported():
    """The check runs before torch is touched, so it is the same one-line error with or without torch."""
    from refarith.errors import BadValueError

    msg = r"^subnormal=daz on the torch backend needs integer bit patterns and src=$"
    with pytest.raises(BadValueError, match=msg):
        fc.encode([1.0, 2.0], "ocp_e4m3", "rne", backend="torch", subnormal="daz")


def test_stochastic_binary32_error_names_the_element():
    """The binary32 stochastic path (refarith.fast.srfast) raises where the exact model raises, naming the first
    element that cannot be encoded."""
    from refarith.errors import SpecialValueError

    with pytest.raises(SpecialValueError):
        ops.cast(0x7FC00000, "binary32", "ocp_e2m1", "sr", rand=0, rand_bits=3)
    with pytest.raises(SpecialValueError) as e:
        fc.encode(np.array([1.0, np.nan, np.nan], dtype=np.float32), "ocp_e2m1", "sr", rand=[0, 0, 0], rand_bits=3)
    assert str(e.value) == ("element 1 (bit pattern 0x7fc00000 of binary32) cannot be encoded in ocp_e2m1 "
                            "(nan_policy='error', negative='error')")


def test_encode_checks_negative_policy_and_variant_names():
    from refarith.errors import UnknownModeError

    x = np.array([1.0, 1.5], dtype=np.float32)
    with pytest.raises(UnknownModeError, match=r"^unknown negative policy 'bogus'; expected one of "):
        fc.encode(x, "ocp_e4m3", "rne", negative="bogus")
    with pytest.raises(UnknownModeError, match=r"^unknown stochastic rounding variant 'zz'; expected one of "):
        fc.encode(x, "ocp_e4m3", "sr", rand=[0, 1], rand_bits=3, sr_variant="zz")


def test_decode_scalar_e8m0_is_a_scalar():
    """E8M0 code E is 2^(E - 127) (OCP MX v1.0 §5.4.1); a scalar code decodes to a numpy scalar, as every format."""
    for code, value in ((127, 1.0), (130, 8.0), (0, 2.0 ** -127), (254, 2.0 ** 127)):
        got = fc.decode(np.uint8(code), "e8m0")
        assert isinstance(got, np.float32) and float(got) == value
    assert np.isnan(fc.decode(np.uint8(255), "e8m0"))
    got = fc.decode(np.uint8(0x38), "ocp_e4m3")
    assert isinstance(got, np.float32) and float(got) == 1.0


def test_te_e2m1_8_variant_checked_against_k_and_target():
    from refarith.errors import UnknownModeError

    x = np.array([0.3, -1.25, 2.6, 5.1, 0.0], dtype=np.float32)
    r = [0, 255, 128, 77, 3]
    got = fc.encode(x, "ocp_e2m1", "sr", rand=r, rand_bits=8, sr_variant="te_e2m1_8")
    exp = [ops.cast(int(b), "binary32", "ocp_e2m1", "sr", rand=ri, rand_bits=8, sr_variant="te_e2m1_8").code
           for b, ri in zip(x.view(np.uint32), r)]
    assert got.tolist() == exp
    with pytest.raises(UnknownModeError, match=r"^sr variant te_e2m1_8 takes k=8 random bits, not k=3$"):
        fc.encode(x, "ocp_e2m1", "sr", rand=[0] * 5, rand_bits=3, sr_variant="te_e2m1_8")
    with pytest.raises(UnknownModeError, match=r"^sr variant te_e2m1_8 rounds onto the E2M1 grid only, not ocp_e4m3$"):
        fc.encode(x, "ocp_e4m3", "sr", rand=r, rand_bits=8, sr_variant="te_e2m1_8")


def _rounded(x: float, dst: str, *args, **kw) -> int:
    if np.isnan(x):
        v = Value.nan(0)
    elif np.isinf(x) or x == 0:
        v = (Value.inf if np.isinf(x) else Value.zero)(int(np.signbit(x)))
    else:
        v = Value.of(Fraction(float(x)))
    return round_value(v, dst, *args, **kw).code


def test_bit_level_path_overflow_modes_and_stochastic_rounding():
    """binary64 inputs and stochastic rounding of binary16 inputs take the bit-level kernel (no table): an
    overflow mode other than the default, and the random bits, must reach it (expected codes: the exact model)."""
    xs = np.array([1.0, 500.0, -500.0, 1e300, -1e300, 0.3, 447.9, 464.0, -0.0])
    for ov in ("saturate", "nan"):
        assert fc.encode(xs, "ocp_e4m3", "rne", ov).tolist() == [_rounded(x, "ocp_e4m3", "rne", ov) for x in xs]
    h = np.array([259.0, -259.0, 1.1, 3.3, 0.01, 60000.0], dtype=np.float16)
    vals = np.repeat(h, 16)
    rand = np.tile(np.arange(16), h.size)
    for variant in ("a", "c"):
        got = fc.encode(vals, "ocp_e5m2", "sr", rand=rand, rand_bits=4, sr_variant=variant)
        want = [_rounded(x, "ocp_e5m2", "sr", rand=int(r), rand_bits=4, sr_variant=variant) for x, r in zip(vals, rand)]
        assert got.tolist() == want, variant
        assert len(set(got.tolist())) > h.size  # the random bits decide some of them both ways
    # 259 lies 3/64 ulp above 256 (the stochastic module's worked example): a rounds up for 0 of the 16 values of
    # r (floor(3/64 * 16) = 0), c for 1 (RNITE(0.75) = 1), so the variant reaches the kernel
    assert [fc.encode(np.float16(259.0), "ocp_e5m2", "sr", rand=15, rand_bits=4, sr_variant=v) for v in "ac"] == \
        [0x5C, 0x5D]


def test_hifloat8_through_encode():
    """HiFloat8 targets (refarith.fast.hifloat) through fast.cast.encode, against the exact model."""
    xs = np.array([1.0, 0.3, -2.5, 1e6, -1e6, 0.0, np.nan, np.inf])
    for ov in (None, "inf", "saturate"):
        want = [_rounded(x, "hif8", "rne", ov) for x in xs]
        assert fc.encode(xs, "hif8", "rne", ov).tolist() == want
    with pytest.raises(UnknownModeError, match=r"^unknown negative policy 'drop'"):
        fc.encode(xs, "hif8", negative="drop")


def test_sixteen_bit_decode_and_scalar_hifloat8():
    """16-bit formats decode on the fast path (IEEE 754 binary16: 0x3C00 = 1, 0xC000 = -2, 0x7C00 = +inf, 0x0001 =
    2^-24; bfloat16 0x3F80 = 1); a scalar encoded into HiFloat8 comes back as a Python int (the docstring)."""
    b16 = fc.decode(np.array([0x3C00, 0xC000, 0x7C00, 0x0001], dtype=np.uint16), "binary16")
    assert b16.tolist() == [1.0, -2.0, float("inf"), 2.0 ** -24]
    assert fc.decode(np.array([0x3F80, 0xBF80], dtype=np.uint16), "bfloat16").tolist() == [1.0, -1.0]
    code = fc.encode(1.0, "hif8")
    assert type(code) is int and code == _rounded(1.0, "hif8")


def test_hifloat8_from_source_bit_patterns():
    """src= codes into HiFloat8: binary16 patterns (1, -2.5, 65504, 2^-24) and binary32 patterns (1, -0.3 rounded
    to binary32, 1e6), each against the exact model of the value the pattern holds."""
    h = np.array([1.0, -2.5, 65504.0, 2.0 ** -24], dtype=np.float16)
    assert fc.encode(h.view(np.uint16), "hif8", src="binary16").tolist() == [_rounded(x, "hif8") for x in h]
    s = np.array([1.0, -0.3, 1e6], dtype=np.float32)
    assert fc.encode(s.view(np.uint32), "hif8", src="binary32").tolist() == [_rounded(x, "hif8") for x in s]
    with pytest.raises(UnknownModeError, match=r"^stochastic rounding into hifloat8 is not modelled$"):
        fc.encode(s, "hif8", "sr", rand=np.zeros(3, dtype=np.uint8), rand_bits=4)


def test_triton_backend_never_falls_back_to_numpy():
    """backend="triton" runs the Triton kernels (torch tensors out) or fails to import them; it never hands the
    work to the numpy kernels silently.  Torch absent: the import error; present: a tensor, not an ndarray."""
    calls = [lambda: fc.encode(np.array([1.0, 3.0], np.float32), "ocp_e4m3", backend="triton"),
             lambda: fc.decode(np.array([0x38], np.uint8), "ocp_e4m3", backend="triton")]
    for call in calls:
        try:
            out = call()
        except ImportError as e:
            assert e.name in ("torch", "triton"), e
            continue
        assert not isinstance(out, np.ndarray) and type(out).__module__.startswith("torch")


def test_decode_fast_paths_are_taken_where_they_apply(monkeypatch):
    # The E8M0 shift and the two-codes-at-a-time gather give the values of the plain table lookup (checked below
    # against the exact model), so only a count of their calls tells whether decode takes them: E8M0 uint8 codes
    # into float32 through the shift, any other uint8 array of two or more codes of a format of at most 8 bits
    # through the pairs, a single code or a 16-bit format through the table.
    from refarith.formats import get_format

    calls = {"e8m0": 0, "pairs": 0}
    e8m0, pairs = fc._decode_e8m0, fc._decode_pairs

    def count_e8m0(*a):
        calls["e8m0"] += 1
        return e8m0(*a)

    def count_pairs(*a):
        calls["pairs"] += 1
        return pairs(*a)

    monkeypatch.setattr(fc, "_decode_e8m0", count_e8m0)
    monkeypatch.setattr(fc, "_decode_pairs", count_pairs)

    def exact(codes, fmt):
        f = get_format(fmt)
        return [float(f.finite_value(int(c))) if f.is_finite_code(int(c)) else None for c in codes]

    def decided(codes, fmt):
        got = fc.decode(codes, fmt)
        return [None if not np.isfinite(v) else float(v) for v in np.ravel(got)]

    e = np.array([0, 1, 127, 254], dtype=np.uint8)
    assert decided(e, "e8m0") == exact(e, "e8m0") and calls == {"e8m0": 1, "pairs": 0}
    for n in (2, 3):
        c = np.arange(40, 40 + n, dtype=np.uint8)
        before = calls["pairs"]
        assert decided(c, "ocp_e4m3") == exact(c, "ocp_e4m3")
        assert calls["pairs"] == before + 1, n
    assert decided(np.array([40], dtype=np.uint8), "ocp_e4m3") == exact([40], "ocp_e4m3")
    assert decided(np.array([1, 2], dtype=np.uint16), "binary16") == exact([1, 2], "binary16")
    assert calls == {"e8m0": 1, "pairs": 2}


def test_sources_wider_than_64_bits_are_refused():
    from refarith.errors import BadValueError
    from refarith.formats.float_format import FloatFormat

    wide = FloatFormat("e11m53", 11, 53, 1023)  # 65 bits
    assert wide.nbits == 65
    with pytest.raises(BadValueError, match="^source e11m53 is wider than 64 bits$"):
        fc.encode(np.array([1], dtype=np.uint64), "ocp_e4m3", src=wide)
