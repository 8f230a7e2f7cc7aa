"""L-Mul: hand-worked values, an independent Fraction formulation, the paper's integer kernel, and
exact == numpy == torch bit for bit (exhaustive on 8-bit formats, seeded random on bfloat16/binary32)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import BadValueError, BitPatternError, SpecError, UnknownModeError
from refarith.exact import lmul as E
from refarith.exact.rounding import round_value
from refarith.exact.value import Value
from refarith.fast import lmul as F
from refarith.formats import get_format
from refarith.spec import parse_spec

# ------------------------------------------------------------------ hand-worked from the printed formula


@pytest.mark.parametrize("fmt,x,y,variant,expected", [
    # e4m3 (m=3, l=3, offset 1/8).  1 * 1: t = 1/8 -> 1.125 = 0x39 in both variants.
    ("ocp_e4m3", 0x38, 0x38, "bitwise", 0x39),
    ("ocp_e4m3", 0x38, 0x38, "formula", 0x39),
    # 1.5 * 1.5: t = 1/2 + 1/2 + 1/8 = 9/8 >= 1.  bitwise: carry, 2t = 2.25 = 1.125 * 2 (E=8, M=1).
    ("ocp_e4m3", 0x3C, 0x3C, "bitwise", 0x41),
    # formula: 1 + t = 2.125 = 1.0625 * 2, halfway between 1.0 and 1.125 -> even (M=0): 2.0.
    ("ocp_e4m3", 0x3C, 0x3C, "formula", 0x40),
    # 1.25 * -1.5: t = 7/8 -> -1.875 (E=7, M=7, sign).
    ("ocp_e4m3", 0x3A, 0xBC, "bitwise", 0xBF),
    ("ocp_e4m3", 0x3A, 0xBC, "formula", 0xBF),
    # e5m2 (m=2, l=2, offset 1/4).  1.75 * 1.75: t = 7/4.  bitwise 2t = 3.5 = 1.75 * 2 (E=16, M=3).
    ("ocp_e5m2", 0x3F, 0x3F, "bitwise", 0x43),
    # formula 2.75 = 1.375 * 2: halfway between 1.25 and 1.5 -> even M=2: 3.0.
    ("ocp_e5m2", 0x3F, 0x3F, "formula", 0x42),
    ("ocp_e5m2", 0x3C, 0x3C, "bitwise", 0x3D),  # 1 * 1 = 1.25
    # bfloat16 (m=7, l=4): 1 * 1 = 1 + 1/16.
    ("bfloat16", 0x3F80, 0x3F80, "bitwise", 0x3F88),
    ("binary32", 0x3F800000, 0x3F800000, "formula", 0x3F880000),
    # binary16 (m=10, l=4): 2 * 3 -> t = 0 + 1/2 + 1/16 -> 1.5625 * 2^2 = 6.25.
    ("binary16", 0x4000, 0x4200, "bitwise", 0x4640),
])
def test_hand_worked(fmt, x, y, variant, expected):
    assert E.lmul(x, y, fmt, variant).code == expected
    assert int(F.lmul(np.array([x]), np.array([y]), fmt, variant)[0]) == expected
    assert int(F.lmul(np.array([x]), np.array([y]), fmt, variant, backend="numpy")[0]) == expected


def test_l_of_m_is_the_papers_table():
    assert [E.l_of_m(m) for m in range(1, 9)] == [1, 2, 3, 3, 4, 4, 4, 4]
    with pytest.raises(BadValueError):
        E.l_of_m(0)


@pytest.mark.parametrize("fmt,x,y,kw,expected", [
    ("ocp_e4m3", 0x00, 0x38, {}, 0x00),          # 0 * 1 = +0
    ("ocp_e4m3", 0x80, 0x38, {}, 0x80),          # -0 * 1 = -0
    ("ocp_e4m3", 0x01, 0x38, {}, 0x00),          # subnormal operand: daz
    ("ocp_e4m3", 0x81, 0x38, {}, 0x80),
    ("ocp_e4m3", 0x7F, 0x38, {}, 0x7F),          # NaN
    ("ocp_e4m3", 0x38, 0xFF, {}, 0xFF),          # NaN keeps the first NaN operand's sign
    ("ocp_e5m2", 0x7C, 0x3C, {}, 0x7C),          # inf * 1 = inf
    ("ocp_e5m2", 0xFC, 0x3C, {}, 0xFC),
    ("ocp_e5m2", 0x7C, 0x00, {}, 0x7E),          # inf * 0 = NaN (canonical)
    ("ocp_e5m2", 0x7C, 0x3C, {"overflow": "saturate"}, 0x7C),  # an infinity is exact: no saturation
    # overflow: 256 * 2 in e4m3 -> 1.125 * 2^9 > 448
    ("ocp_e4m3", 0x78, 0x40, {}, 0x7F),
    ("ocp_e4m3", 0x78, 0x40, {"overflow": "saturate"}, 0x7E),
    ("ocp_e4m3", 0xF8, 0x40, {"overflow": "saturate"}, 0xFE),
    ("ocp_e5m2", 0x78, 0x40, {}, 0x7C),          # 2^15 * 2 -> 1.25 * 2^16 > 57344 -> inf
    ("ocp_e4m3", 0x78, 0x40, {"rounding": "rtz", "variant": "formula"}, 0x7E),  # rtz never overflows to NaN
    # underflow: 2^-6 * 0.5 -> 1.125 * 2^-7 < 2^-6: flush -> 0; gradual: 4.5 units of 2^-9 -> tie -> 4
    ("ocp_e4m3", 0x08, 0x30, {}, 0x00),
    ("ocp_e4m3", 0x88, 0x30, {}, 0x80),
    ("ocp_e4m3", 0x08, 0x30, {"underflow": "gradual"}, 0x04),
    ("ocp_e4m3", 0x08, 0x30, {"underflow": "gradual", "rounding": "rna", "variant": "formula"}, 0x05),
    ("e4m3fnuz", 0x88, 0x30, {}, 0x00),          # no -0 in fnuz: +0
])
def test_declared_special_cases(fmt, x, y, kw, expected):
    assert E.lmul(x, y, fmt, **kw).code == expected
    assert int(F.lmul(np.array([x]), np.array([y]), fmt, **kw)[0]) == expected


# ------------------------------------------------------------------ independent formulations


def _fields(fmt, c):
    m, e = fmt.mbits, fmt.ebits
    return (c >> (e + m)) & 1, (c >> m) & ((1 << e) - 1), c & ((1 << m) - 1)


def test_formula_equals_independent_fraction_formulation():
    """All positive-exponent-field e4m3 and e5m2 normal pairs: (1 + x_m + y_m + 2^-l) 2^(x_e+y_e) rounded once."""
    for name, l_ in (("ocp_e4m3", 3), ("ocp_e5m2", 2)):
        fmt = get_format(name)
        m = fmt.mbits
        normals = [c for c in range(1 << (fmt.ebits + m)) if 0 < (c >> m) < fmt.emask]
        for x in normals[::3]:
            for y in normals:
                _, ex, mx = _fields(fmt, x)
                _, ey, my = _fields(fmt, y)
                v = (1 + Fraction(mx, 1 << m) + Fraction(my, 1 << m) + Fraction(1, 1 << l_)) \
                    * Fraction(2) ** (ex + ey - 2 * fmt.bias)
                if v < fmt.min_normal:
                    want = 0
                else:
                    want = round_value(Value.of(v), fmt, "rne").code
                assert E.lmul(x, y, fmt, "formula").code == want, (name, hex(x), hex(y))


def _paper_kernel(x, y, nbits, ebits, mbits, bias):
    """The kernel as the paper describes it: add the sign-less patterns, subtract the bias, add the offset."""
    l_ = mbits if mbits <= 3 else (3 if mbits == 4 else 4)
    top = 1 << (nbits - 1)
    const = (bias << mbits) - (1 << (mbits - l_))
    r = (x & (top - 1)) + (y & (top - 1)) - const
    return r | ((x ^ y) & top), r


@pytest.mark.parametrize("name,nbits,ebits,mbits,bias,const", [
    ("binary32", 32, 8, 23, 127, 0x3F780000), ("bfloat16", 16, 8, 7, 127, 0x3F78),
])
def test_bitwise_is_the_papers_integer_kernel(name, nbits, ebits, mbits, bias, const):
    """10^6 seeded random normal pairs whose kernel result stays normal: bit-identical to the raw integer add."""
    assert (bias << mbits) - (1 << (mbits - 4)) == const  # the fp32 constant of the paper's kernel
    rng = np.random.default_rng(20241001)
    n = 1_000_000
    e = rng.integers(100, 155, size=(2, n))
    mm = rng.integers(0, 1 << mbits, size=(2, n))
    s = rng.integers(0, 2, size=(2, n))
    x = (s[0] << (nbits - 1)) | (e[0] << mbits) | mm[0]
    y = (s[1] << (nbits - 1)) | (e[1] << mbits) | mm[1]
    want, r = _paper_kernel(x, y, nbits, ebits, mbits, bias)
    ok = (r >> mbits >= 1) & (r >> mbits < (1 << ebits) - 1)
    assert ok.mean() > 0.99
    got = F.lmul(x, y, name, "bitwise").astype(np.int64)
    np.testing.assert_array_equal(got[ok], want[ok])
    torch = pytest.importorskip("torch")
    got_t = F.lmul(torch.as_tensor(x), torch.as_tensor(y), name, "bitwise", backend="torch").numpy()
    np.testing.assert_array_equal(got_t, got)
    got_tf = F.lmul(torch.as_tensor(x), torch.as_tensor(y), name, "formula", backend="torch").numpy()
    np.testing.assert_array_equal(got_tf, F.lmul(x, y, name, "formula").astype(np.int64))


# ------------------------------------------------------------------ exact == numpy == torch


def _all_pairs(fmt):
    x, y = np.meshgrid(np.arange(fmt.ncodes), np.arange(fmt.ncodes), indexing="ij")
    return x.ravel(), y.ravel()


@pytest.mark.parametrize("name", ["ocp_e4m3", "ocp_e5m2"])
@pytest.mark.parametrize("variant", ["bitwise", "formula"])
def test_exhaustive_8bit_exact_numpy_torch(name, variant):
    fmt = get_format(name)
    x, y = _all_pairs(fmt)
    want = np.array([E.lmul(int(a), int(b), fmt, variant).code for a, b in zip(x, y)])
    got = F.lmul(x, y, fmt, variant)
    np.testing.assert_array_equal(got, want)
    torch = pytest.importorskip("torch")
    got_t = F.lmul(torch.as_tensor(x), torch.as_tensor(y), fmt, variant, backend="torch")
    np.testing.assert_array_equal(got_t.numpy(), want)


@pytest.mark.parametrize("name,variant,kw", [
    ("ocp_e4m3", "formula", {"rounding": "rna", "overflow": "saturate", "underflow": "gradual"}),
    ("e3m4", "bitwise", {"underflow": "gradual", "overflow": "saturate"}),
])
def test_exhaustive_8bit_other_modes(name, variant, kw):
    fmt = get_format(name)
    x, y = _all_pairs(fmt)
    sel = slice(None, None, 2)
    want = np.array([E.lmul(int(a), int(b), fmt, variant, **kw).code for a, b in zip(x[sel], y[sel])])
    np.testing.assert_array_equal(F.lmul(x[sel], y[sel], fmt, variant, **kw), want)


def _random_pairs(name, n, seed):
    fmt = get_format(name)
    rng = np.random.default_rng(seed)
    return rng.integers(0, fmt.ncodes, size=n, dtype=np.int64), rng.integers(0, fmt.ncodes, size=n, dtype=np.int64)


@pytest.mark.parametrize("name", ["bfloat16", "binary32", "e8m3", "e8m1"])
@pytest.mark.parametrize("variant", ["bitwise", "formula"])
def test_random_wide_exact_numpy(name, variant):
    """bfloat16/binary32, and fp32-range operands with m = 3 and m = 1 mantissa bits (parametric e8m3, e8m1)."""
    x, y = _random_pairs(name, 4000, 7)
    want = np.array([E.lmul(int(a), int(b), name, variant).code for a, b in zip(x, y)])
    np.testing.assert_array_equal(F.lmul(x, y, name, variant).astype(np.int64), want)


@pytest.mark.parametrize("name", ["bfloat16", "binary32"])
def test_random_wide_numpy_torch_million(name):
    torch = pytest.importorskip("torch")
    x, y = _random_pairs(name, 1_000_000, 11)
    for variant in ("bitwise", "formula"):
        got = F.lmul(x, y, name, variant).astype(np.int64)
        got_t = F.lmul(torch.as_tensor(x), torch.as_tensor(y), name, variant, backend="torch").numpy()
        np.testing.assert_array_equal(got_t, got)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bfloat16", "binary32"])
@pytest.mark.parametrize("variant", ["bitwise", "formula"])
def test_random_wide_exact_numpy_million(name, variant):
    x, y = _random_pairs(name, 1_000_000, 13)
    want = np.array([E.lmul(int(a), int(b), name, variant).code for a, b in zip(x, y)])
    np.testing.assert_array_equal(F.lmul(x, y, name, variant).astype(np.int64), want)


# ------------------------------------------------------------------ variants differ where stated


@pytest.mark.parametrize("m,count", [(3, 28), (7, 9003)])
def test_formula_and_bitwise_differ_exactly_on_carry_pairs(m, count):
    """They differ iff x_M + y_M + 2^(m-l) > 2^m; counts worked by hand (m=3: sums 8..14 -> 7+6+...+1 = 28;
    m=7: sums 121..254 -> (122+...+128) + (127+...+1) = 875 + 8128)."""
    fmt = get_format(f"e5m{m}")
    one = fmt.bias << m
    diff = 0
    for mx in range(1 << m):
        for my in range(0, 1 << m, 1 if m < 7 else 1):
            a = E.lmul(one | mx, one | my, fmt, "formula").code
            b = E.lmul(one | mx, one | my, fmt, "bitwise").code
            carry = mx + my + E.offset_units(m) > (1 << m)
            assert (a != b) == carry, (mx, my)
            diff += a != b
    assert diff == count


# ------------------------------------------------------------------ specs and bad input


def test_spec_ids_and_evaluation():
    s = parse_spec("lmul(e4m3,variant=formula)")
    assert str(s) == "lmul(ocp_e4m3,variant=formula,rounding=rne,overflow=nan,underflow=flush,subnormals=daz)"
    assert str(parse_spec("lmul(bf16)")).startswith("lmul(bfloat16,variant=bitwise,")
    assert E.lmul_spec(s, 0x3C, 0x3C).code == 0x40
    assert int(F.lmul_spec(s, np.array([0x3C]), np.array([0x3C]))[0]) == 0x40


@pytest.mark.parametrize("bad", ["lmul(e8m0)", "lmul(ocp_e4m3,variant=mitchell)", "lmul(ocp_e4m3,overflow=inf)",
                                 "lmul(int8)", "lmul(ocp_e4m3->ocp_e4m3)"])
def test_bad_specs(bad):
    with pytest.raises(SpecError):
        parse_spec(bad)


def test_bad_inputs():
    with pytest.raises(BitPatternError):
        E.lmul(0x100, 0x38, "ocp_e4m3")
    with pytest.raises(BadValueError):
        F.lmul(np.array([0x100]), np.array([0x38]), "ocp_e4m3")
    with pytest.raises(UnknownModeError):
        E.lmul(0x38, 0x38, "ocp_e4m3", variant="mitchell")
    with pytest.raises(UnknownModeError):
        F.lmul(np.array([0x38]), np.array([0x38]), "ocp_e4m3", rounding="sr")
    with pytest.raises(BadValueError):
        E.lmul(0x7F, 0x7F, "e8m0")
