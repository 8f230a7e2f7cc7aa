"""fast/lmul.py with torch absent: ``round_scaled`` (also fast/fdot.py's rounding) against the exact
``round_value`` for every rounding it takes (rup and rdn included), overflow mode and underflow mode; L-Mul on
formats with and without infinities, negative zero and sign, wider than 16 bits; the class tables; the code
dtypes; the refusals with their texts.  Expected codes from refarith.exact (rounding.round_value, lmul.lmul,
ops.decode)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import lmul as E
from refarith.exact.ops import decode
from refarith.exact.rounding import round_value
from refarith.exact.value import Value
from refarith.fast import lmul as F
from refarith.formats import get_format

NP = F.Backend("numpy")


def _cases(fmt, seed, count=120):
    """(sign, n, k, p) with 2^p <= n < 2^(p+1), p in {m, m+1, m+5}, exponents from deep underflow to overflow."""
    rng = np.random.default_rng(seed)
    m = fmt.mbits
    p = rng.choice([m, m + 1, m + 5], count)
    n = (1 << p) + rng.integers(0, 1 << 62, count) % (1 << p)
    n[:12] = 1 << p[:12]  # exact powers of two
    n[12:24] = (1 << p[12:24]) + (1 << (p[12:24] - m - 1)) * (2 * np.arange(12) % 5 | 1)  # ties below the ulp
    ev = rng.integers(fmt.emin - m - 4, fmt.emax + 3, count)
    ev[24:40] = fmt.emin + np.arange(-8, 8)
    ev[40:48] = fmt.emax + np.arange(-2, 6)
    k = ev - p
    sign = rng.integers(0, 2, count)
    return sign.astype(np.int64), n.astype(np.int64), k.astype(np.int64), p.astype(np.int64)


def _want(fmt, sign, n, k, p, rounding, overflow, underflow):
    out = []
    for s, a, b, c in zip(sign.tolist(), n.tolist(), k.tolist(), p.tolist()):
        v = Fraction(a) * Fraction(2) ** b
        if underflow == "flush" and b + c < fmt.emin:  # below the smallest normal: the signed zero
            out.append(fmt.sign_mask if (s and fmt.has_negative_zero) else 0)
            continue
        out.append(round_value(Value.of(-v if s else v), fmt, rounding, overflow).code)
    return out


FORMATS = [("ocp_e5m2", ("inf", "saturate")), ("ocp_e4m3", ("nan", "saturate")), ("e5m6", ("inf", "saturate")),
           ("e3m4", ("inf", "saturate", "nan")), ("e4m3fnuz", ("nan", "saturate")), ("binary32", ("inf",)),
           ("e8m3", ("saturate",))]


@pytest.mark.parametrize("name,overflows", FORMATS)
@pytest.mark.parametrize("rounding", F.ROUNDINGS)
def test_round_scaled_is_round_value(name, overflows, rounding):
    fmt = get_format(name)
    sign, n, k, p = _cases(fmt, hash((name, rounding)) % 1000)
    for overflow in overflows:
        for underflow in ("flush", "gradual"):
            got = F.round_scaled(NP, sign, n, k, p, fmt, rounding, overflow, underflow)
            assert got.tolist() == _want(fmt, sign, n, k, p, rounding, overflow, underflow), (overflow, underflow)


def test_round_scaled_stochastic_hook():
    """rounding="sr": sr_up decides the round-up; it gets n, the dropped bit count and the magnitude code below
    (the code of the value truncated toward zero); overflow then goes away from zero as for rne."""
    fmt = get_format("ocp_e5m2")
    sign, n, k, p = _cases(fmt, 4)
    seen = {}

    def up_all(nn, d, lo):
        seen["n"], seen["d"], seen["lo"] = nn, d, lo
        return d > -1000

    for underflow in ("flush", "gradual"):
        got = F.round_scaled(NP, sign, n, k, p, fmt, "sr", "inf", underflow, sr_up=up_all)
        rtz = _want(fmt, sign, n, k, p, "rtz", "saturate", "gradual")
        fits = seen["lo"] <= fmt.max_code  # below the overflow: the truncated value's magnitude code
        assert seen["n"] is n and fits.sum() > 80
        assert seen["lo"][fits].tolist() == [c & ~fmt.sign_mask for c, f in zip(rtz, fits) if f]
        # above it: the code the truncated value would have with the exponent unbounded (the format's layout)
        big = [(((b + c) + fmt.bias) << fmt.mbits) + (int(a) >> (c - fmt.mbits)) - (1 << fmt.mbits)
               for a, b, c, f in zip(n.tolist(), k.tolist(), p.tolist(), fits) if not f]
        assert seen["lo"][~fits].tolist() == big
        bits = [int(a).bit_length() for a in n.tolist()]
        # the dropped bits: from n's length to the precision kept at the result's exponent
        keep = [fmt.mbits + 1 - max(0, fmt.emin - (b + c)) for b, c in zip(k.tolist(), p.tolist())]
        assert seen["d"].tolist() == [b - kk for b, kk in zip(bits, keep)]
        want = []
        for s, b, c, lo in zip(sign.tolist(), k.tolist(), p.tolist(), seen["lo"].tolist()):
            if underflow == "flush" and b + c < fmt.emin:
                want.append(fmt.sign_mask if s else 0)
            elif lo + 1 > fmt.max_code:
                want.append(fmt.inf_codes[s])
            else:
                want.append((lo + 1) | (fmt.sign_mask if s else 0))
        assert got.tolist() == want, underflow
    with pytest.raises(UnknownModeError, match="^rounding 'sr' not supported by the fast kernels; expected one of "
                                               "rne, rna, rtz, rup, rdn$"):
        F.round_scaled(NP, sign, n, k, p, fmt, "sr", "inf", "flush")


@pytest.mark.parametrize("name", ["ocp_e5m2", "ocp_e4m3", "e4m3fnuz", "e3m4", "ocp_e2m1", "e5m6"])
def test_class_table_from_the_decoding(name):
    fmt = get_format(name)
    tab = F.class_table(fmt)
    assert tab.dtype == np.int64 and tab.shape == (fmt.ncodes,)
    for c in range(fmt.ncodes):
        v = decode(c, fmt)
        want = 3 if v.is_nan else 2 if v.is_inf else 0 if v.mag < fmt.min_normal else 1
        assert tab[c] == want, c
    assert np.array_equal(F.classify(NP, np.arange(fmt.ncodes), fmt), tab)


def test_classify_wide_ieee():
    fmt = get_format("binary32")
    x = np.array([0, 1, 0x007FFFFF, 0x00800000, 0x3F800000, 0x7F7FFFFF, 0x7F800000, 0x7F800001, 0x7FC00000,
                  0x80000000, 0x80000001, 0x80800000, 0xFF800000, 0xFFC00000], np.int64)
    want = [0 if decode(int(c), fmt).mag < fmt.min_normal and not decode(int(c), fmt).is_nan
            and not decode(int(c), fmt).is_inf else 3 if decode(int(c), fmt).is_nan else
            2 if decode(int(c), fmt).is_inf else 1 for c in x]
    assert F.classify(NP, x, fmt).tolist() == want


def _pairs(fmt, seed, count=250):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, fmt.ncodes, count, dtype=np.int64)
    y = rng.integers(0, fmt.ncodes, count, dtype=np.int64)
    sp = [c for c in range(min(fmt.ncodes, 1 << 16)) if decode(c, fmt).is_nan or decode(c, fmt).is_inf][:6]
    edge = [0, fmt.sign_mask, 1, fmt.max_code, fmt.max_code | fmt.sign_mask, *sp] if fmt.signed else \
        [0, 1, fmt.max_code, *sp]
    e = np.array(edge, np.int64)
    x[:len(e) ** 2] = np.repeat(e, len(e))[:count]
    y[:len(e) ** 2] = np.tile(e, len(e))[:count]
    return x, y


@pytest.mark.parametrize("name,kws", [
    ("e5m6", [{"overflow": "inf"}, {"overflow": "saturate", "rounding": "rtz"},
                  {"overflow": "inf", "rounding": "rna", "underflow": "gradual"}]),
    ("ocp_e5m2", [{"overflow": "inf", "rounding": "rtz", "underflow": "gradual"}, {"overflow": "saturate"}]),
    ("e4m3fnuz", [{}, {"rounding": "rna", "underflow": "gradual"}, {"overflow": "saturate", "rounding": "rtz"}]),
    ("e8m3", [{"overflow": "inf"}, {"overflow": "saturate", "underflow": "gradual"}]),
    ("e3m4", [{"overflow": "nan"}, {"overflow": "inf", "rounding": "rtz", "underflow": "gradual"}]),
])
@pytest.mark.parametrize("variant", E.VARIANTS)
def test_lmul_modes_against_exact(name, kws, variant):
    fmt = get_format(name)
    x, y = _pairs(fmt, hash((name, variant)) % 1000)
    for kw in kws:
        got = F.lmul(x, y, fmt, variant, **kw)
        want = [E.lmul(int(a), int(b), fmt, variant, **kw).code for a, b in zip(x, y)]
        assert got.tolist() == want, kw


def test_lmul_unsigned_format():
    fmt = next((get_format(n) for n in ("p3109_k8p4ue", "p3109_k8p4uf")), None)
    try:
        E.check_operand_format(fmt)
    except BadValueError:
        pytest.skip(f"{fmt.name} is not an L-Mul operand format")
    x, y = _pairs(fmt, 2)
    for variant in E.VARIANTS:
        got = F.lmul(x, y, fmt, variant)
        assert got.tolist() == [E.lmul(int(a), int(b), fmt, variant).code for a, b in zip(x, y)]


@pytest.mark.parametrize("nbits,dtype", [(4, np.uint8), (8, np.uint8), (9, np.uint16), (16, np.uint16),
                                         (17, np.uint32), (32, np.uint32), (33, np.uint64), (62, np.uint64)])
def test_code_dtype(nbits, dtype):
    assert F._code_dtype(nbits) is dtype


def test_code_dtype_too_wide():
    with pytest.raises(BadValueError, match="^65-bit codes do not fit a numpy integer$"):
        F._code_dtype(65)


@pytest.mark.parametrize("name,dtype", [("ocp_e2m1", np.uint8), ("ocp_e4m3", np.uint8), ("e8m3", np.uint16),
                                        ("e5m6", np.uint16), ("binary32", np.uint32)])
def test_result_dtype_and_broadcast(name, dtype):
    fmt = get_format(name)
    x = np.array([[1], [2], [fmt.max_code]], np.int64)
    y = np.array([fmt.max_code, 1 << fmt.mbits, 0], np.int64)
    got = F.lmul(x, y, fmt)
    assert got.dtype == dtype and got.shape == (3, 3)
    assert got.tolist() == [[E.lmul(int(a), int(b), fmt).code for b in y] for a in x[:, 0]]


def test_refusals():
    x = np.array([0x38], np.int64)
    cases = [
        ({"rounding": "rup"}, UnknownModeError, "L-Mul rounding 'rup' not supported; expected one of rne, rna, rtz"),
        ({"underflow": "zero"}, UnknownModeError,
         "unknown underflow mode 'zero'; expected one of flush, gradual"),
        ({"backend": "cupy"}, UnknownModeError, "unknown backend 'cupy'; expected one of numpy, torch"),
        ({"variant": "mitchell"}, UnknownModeError,
         "unknown L-Mul variant 'mitchell'; expected one of formula, bitwise"),
    ]
    for kw, exc, msg in cases:
        with pytest.raises(exc, match=f"^{msg}$"):
            F.lmul(x, x, "ocp_e4m3", **kw)
    for bad in ([-1], [0x100]):
        with pytest.raises(BadValueError, match=r"^ocp_e4m3: bit patterns must lie in 0\.\.255$"):
            F.lmul(np.array(bad), x, "ocp_e4m3")
        with pytest.raises(BadValueError, match=r"^ocp_e4m3: bit patterns must lie in 0\.\.255$"):
            F.lmul(x, np.array(bad), "ocp_e4m3")
    with pytest.raises(BadValueError, match="^binary64: fast L-Mul supports formats up to 62 bits$"):
        F.lmul(x, x, "float64")
    with pytest.raises(BadValueError, match="^expected an lmul spec, got "):
        F.lmul_spec("int_quantize(int8)", x, x)


def test_lmul_spec_passes_every_parameter():
    fmt = get_format("e5m6")
    x, y = _pairs(fmt, 5, 200)
    spec = "lmul(e5m6,variant=formula,rounding=rtz,overflow=saturate,underflow=gradual)"
    want = [E.lmul(int(a), int(b), fmt, "formula", "rtz", "saturate", "gradual").code for a, b in zip(x, y)]
    assert F.lmul_spec(spec, x, y).tolist() == want
    assert E.lmul_spec(spec, int(x[7]), int(y[7])).code == want[7]


def test_63_bit_format_refused():
    """The fast kernel's limit is 62 bits (int64 codes and shifts); a 63-bit IEEE-style format is refused."""
    from refarith.formats.float_format import FloatFormat

    f63 = FloatFormat("e11m51", 11, 51, 1023)
    assert f63.nbits == 63
    x = np.array([f63.bias << f63.mbits], np.int64)
    with pytest.raises(BadValueError, match="^e11m51: fast L-Mul supports formats up to 62 bits$"):
        F.lmul(x, x, f63)


def test_sixteen_bit_format_without_ieee_specials_by_table():
    """A 16-bit format with OCP-style specials (no infinity, one NaN per sign) is classified by its code table, as
    every format of at most 16 bits; the bit test beside it takes IEEE specials only."""
    from refarith.formats.float_format import FloatFormat

    f16 = FloatFormat("e5m10fn", 5, 10, 15, specials="fn")
    assert f16.nbits == 16 and not f16.has_inf and f16.has_nan
    x, y = _pairs(f16, 11)
    x[:2], y[:2] = f16.nan_code_with_sign(False), f16.nan_code_with_sign(True)
    for variant in E.VARIANTS:
        got = F.lmul(x, y, f16, variant)
        assert got.tolist() == [E.lmul(int(a), int(b), f16, variant).code for a, b in zip(x, y)]


def test_wide_format_without_ieee_specials_refused():
    from refarith.formats.float_format import FloatFormat

    f19 = FloatFormat("e8m10fn", 8, 10, 127, specials="fn")
    x = np.array([f19.bias << f19.mbits], np.int64)
    with pytest.raises(BadValueError, match="^fast kernels support formats wider than 16 bits with IEEE specials "
                                            "only, not e8m10fn$"):
        F.lmul(x, x, f19)
