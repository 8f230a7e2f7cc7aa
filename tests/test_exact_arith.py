"""Arithmetic of the exact model against independent formulations.

* add/sub/mul/div on all pairs of ocp_e4m3, ocp_e5m2 and ocp_e2m1 codes, sqrt on all codes, fma on all
  ocp_e2m1 triples and seeded random e4m3/e5m2 triples: the exact rational result (IEEE 754-2019 clauses
  6.1-6.3 and 7.2 for infinities, signed zeros and invalid operations, written out here) rounded by the
  bracketing search of tests/independent.py.  Default run: rne with the default overflow for e4m3/e5m2
  (add/mul/div; sub for e4m3) and every mode for e2m1; ``slow``: every op, mode and overflow for e4m3/e5m2.
* binary16 add/mul/div/sqrt against numpy float16 on seeded random inputs.  numpy evaluates float16
  arithmetic in float32 and rounds the result to float16; that double rounding is innocuous because
  binary32 has p' = 24 >= 2p + 2 = 24 bits for p = 11 (Figueroa, "When is double rounding innocuous?",
  SIGNUM 1995; Roux, "Innocuous double rounding of basic arithmetic operations", 2014), so numpy's result
  is the correctly rounded binary16 result.
* binary32 add/mul/div/sqrt against numpy float32 (correctly rounded IEEE 754 operations).
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
import pytest
from independent import NAN_ANY, grid, matches, ref_decode, ref_round_fraction, ref_round_ratio, ref_special

from refarith.exact import DETERMINISTIC_MODES, add, cast, decode, div, fma, mul, sqrt, sub
from refarith.formats import get_format


@functools.cache
def vals(name: str):
    f = get_format(name)
    out = []
    for c in range(f.ncodes):
        kind, x = ref_decode(f, c)
        out.append((kind, bool(math.copysign(1.0, x) < 0) if kind != "nan" else False,
                    Fraction(abs(x)) if kind == "num" else None))
    return out


NAN = ("nan", False, None)


def r_add(a, b, mode):
    if a[0] == "nan" or b[0] == "nan":
        return NAN
    if a[0] == "inf" and b[0] == "inf":
        return a if a[1] == b[1] else NAN
    if a[0] == "inf":
        return a
    if b[0] == "inf":
        return b
    s = (-a[2] if a[1] else a[2]) + (-b[2] if b[1] else b[2])
    if s == 0:
        if a[2] == 0 and b[2] == 0 and a[1] == b[1]:
            return ("num", a[1], Fraction(0))
        return ("num", mode == "rdn", Fraction(0))
    return ("num", s < 0, abs(s))


def r_neg(a):
    return a if a[0] == "nan" else (a[0], not a[1], a[2])


def r_mul(a, b):
    if a[0] == "nan" or b[0] == "nan":
        return NAN
    neg = a[1] != b[1]
    if a[0] == "inf" or b[0] == "inf":
        if (a[0] == "num" and a[2] == 0) or (b[0] == "num" and b[2] == 0):
            return NAN
        return ("inf", neg, None)
    return ("num", neg, a[2] * b[2])


def r_div(a, b):
    if a[0] == "nan" or b[0] == "nan":
        return NAN
    neg = a[1] != b[1]
    if a[0] == "inf":
        return NAN if b[0] == "inf" else ("inf", neg, None)
    if b[0] == "inf":
        return ("num", neg, Fraction(0))
    if b[2] == 0:
        return NAN if a[2] == 0 else ("inf", neg, None)
    return ("num", neg, a[2] / b[2])


def r_fma(a, b, c, mode):
    p = r_mul(a, b)
    if p[0] == "nan" or c[0] == "nan":
        return NAN
    return r_add(p, c, mode)


def to_code(r, fmt, mode, ov, sqrt_of=False) -> int:
    if r[0] == "nan":
        return NAN_ANY if grid(fmt).nan_codes else 0  # nan_policy='zero' for formats without NaN
    if r[0] == "inf":
        return ref_special("inf", r[1], fmt, ov, "zero")
    return ref_round_fraction(r[1], r[2], fmt, mode, ov, sqrt=sqrt_of)


def overflows(fmt):
    return ["saturate"] + (["inf"] if fmt.has_inf else []) + (["nan"] if fmt.has_nan else [])


def default_overflow(fmt):
    g = grid(fmt)
    return "inf" if g.pos_inf is not None else ("nan" if g.nan_codes else "saturate")


OPS = {
    "add": (add, lambda a, b, m: r_add(a, b, m)),
    "sub": (sub, lambda a, b, m: r_add(a, r_neg(b), m)),
    "mul": (mul, lambda a, b, m: r_mul(a, b)),
    "div": (div, lambda a, b, m: r_div(a, b)),
}


def reference_pairs(name, opname, mode, ov) -> np.ndarray:
    """Reference codes of all n*n pairs (a, b) in the order a * n + b.

    Both operands finite (and, for div, b non-zero): the exact result as num/den of float64 values
    (sums and products of two 8-bit values are exact in float64: at most 4 significant bits each, exponents
    within [-17, 16]), rounded by the vectorized bracketing search with the IEEE 754 6.3 sign of an exact zero.
    Every other pair goes through the scalar Fraction path (r_add / r_mul / r_div and ref_round_fraction)."""
    fmt = get_format(name)
    v = vals(name)
    n = fmt.ncodes
    kinds = np.array([k for k, _, _ in v])
    negs = np.array([s for _, s, _ in v])
    mags = np.array([float(m) if m is not None else 0.0 for _, _, m in v])
    A, B = np.divmod(np.arange(n * n), n)
    fin = (kinds[A] == "num") & (kinds[B] == "num")
    if opname == "div":
        fin &= mags[B] != 0
    xa = np.where(negs[A], -mags[A], mags[A])
    xb = np.where(negs[B], -mags[B], mags[B])
    out = np.empty(n * n, dtype=np.int64)
    if opname in ("add", "sub"):
        r = xa + xb if opname == "add" else xa - xb
        num, den, neg = np.abs(r), np.ones_like(r), r < 0
        zero = fin & (r == 0)
        nb = negs[B] if opname == "add" else ~negs[B]
        both_zero_same = (mags[A] == 0) & (mags[B] == 0) & (negs[A] == nb)
        neg = np.where(zero, np.where(both_zero_same, negs[A], mode == "rdn"), neg)
    elif opname == "mul":
        num, den, neg = mags[A] * mags[B], np.ones(n * n), negs[A] != negs[B]
    else:
        num, den, neg = mags[A], np.where(mags[B] == 0, 1.0, mags[B]), negs[A] != negs[B]
    idx = np.flatnonzero(fin)
    out[idx] = ref_round_ratio(num[idx], den[idx], neg[idx], fmt, mode, ov)
    ref_op = OPS[opname][1]
    for i in np.flatnonzero(~fin):
        out[i] = to_code(ref_op(v[A[i]], v[B[i]], mode), fmt, mode, ov)
    return out


def check_pairs(name, opname, mode, ov, model_ov="same"):
    fmt = get_format(name)
    model_op = OPS[opname][0]
    n = fmt.ncodes
    mo = ov if model_ov == "same" else model_ov
    got = np.array([model_op(a, b, fmt, mode, overflow=mo, nan_policy="zero").code
                    for a in range(n) for b in range(n)], dtype=np.int64)
    want = reference_pairs(name, opname, mode, ov)
    ok = matches(got, want, fmt)
    if not ok.all():
        bad = np.flatnonzero(~ok)[:5]
        raise AssertionError(f"{opname} {name} {mode}/{ov}: {int((~ok).sum())} mismatches: "
                             + "; ".join(f"({i // n:#x},{i % n:#x}) model={got[i]:#x} ref={want[i]:#x}" for i in bad))


def test_vectorized_and_scalar_references_agree():
    """The two independent reference paths agree on a sample of e5m2 divisions (guards the float64 argument)."""
    fmt = get_format("ocp_e5m2")
    v = vals("ocp_e5m2")
    want = reference_pairs("ocp_e5m2", "div", "rne", "inf")
    for i in range(0, 256 * 256, 97):
        a, b = divmod(i, 256)
        assert want[i] == to_code(r_div(v[a], v[b]), fmt, "rne", "inf"), (hex(a), hex(b))


@pytest.mark.parametrize("name,opname", [(n, o) for n in ("ocp_e4m3", "ocp_e5m2") for o in ("add", "mul", "div")]
                         + [("ocp_e4m3", "sub")])
def test_all_pairs_rne_default_overflow(name, opname):
    check_pairs(name, opname, "rne", default_overflow(get_format(name)), model_ov=None)


@pytest.mark.parametrize("mode", DETERMINISTIC_MODES)
@pytest.mark.parametrize("opname", sorted(OPS))
def test_e2m1_all_pairs_all_modes(opname, mode):
    check_pairs("ocp_e2m1", opname, mode, "saturate")


@pytest.mark.slow
@pytest.mark.parametrize("mode", DETERMINISTIC_MODES)
@pytest.mark.parametrize("opname", sorted(OPS))
@pytest.mark.parametrize("name", ["ocp_e4m3", "ocp_e5m2"])
def test_all_pairs_all_modes(name, opname, mode):
    for ov in overflows(get_format(name)):
        check_pairs(name, opname, mode, ov)


@pytest.mark.parametrize("mode", DETERMINISTIC_MODES)
@pytest.mark.parametrize("name", ["ocp_e4m3", "ocp_e5m2", "ocp_e2m1"])
def test_sqrt_all_codes(name, mode):
    fmt = get_format(name)
    for ov in overflows(fmt):
        for a, va in enumerate(vals(name)):
            if va[0] == "nan" or (va[1] and not (va[0] == "num" and va[2] == 0)):
                want = NAN_ANY if fmt.has_nan else 0
            elif va[0] == "inf":
                want = ref_special("inf", False, fmt, ov, "zero")
            else:
                want = to_code(va, fmt, mode, ov, sqrt_of=True)
            got = sqrt(a, fmt, mode, overflow=ov, nan_policy="zero").code
            assert matches(np.array([got]), np.array([want]), fmt)[0], (name, hex(a), mode, ov, hex(got), want)


@pytest.mark.parametrize("mode", DETERMINISTIC_MODES)
def test_fma_e2m1_all_triples(mode):
    fmt = get_format("ocp_e2m1")
    v = vals("ocp_e2m1")
    for a in range(16):
        for b in range(16):
            for c in range(16):
                got = fma(a, b, c, fmt, mode, nan_policy="zero").code
                want = to_code(r_fma(v[a], v[b], v[c], mode), fmt, mode, "saturate")
                assert got == want, (hex(a), hex(b), hex(c), mode, hex(got), hex(want))


@pytest.mark.parametrize("name", ["ocp_e4m3", "ocp_e5m2"])
def test_fma_random_triples(name):
    fmt = get_format(name)
    v = vals(name)
    rng = np.random.default_rng(3109)
    trip = rng.integers(0, 256, (2400, 3))
    for i, (a, b, c) in enumerate(trip.tolist()):
        mode = DETERMINISTIC_MODES[i % 6]
        for ov in overflows(fmt):
            got = fma(a, b, c, fmt, mode, overflow=ov).code
            want = to_code(r_fma(v[a], v[b], v[c], mode), fmt, mode, ov)
            assert matches(np.array([got]), np.array([want]), fmt)[0], (hex(a), hex(b), hex(c), mode, ov)


def test_fma_single_rounding_differs_from_mul_then_add():
    """0x39 * 0x39 = 1.265625 exactly in e4m3 terms; fma adds -1.25 without rounding the product first."""
    a = 0x39  # 1.125
    prod = Fraction(9, 8) ** 2
    assert decode(mul(a, a, "ocp_e4m3").code, "ocp_e4m3").fraction == Fraction(5, 4)  # 1.265625 -> 1.25
    got = decode(fma(a, a, 0xBA, "ocp_e4m3").code, "ocp_e4m3").fraction  # 0xBA = -1.25
    assert got == prod - Fraction(5, 4) == Fraction(1, 64)


# ------------------------------------------------------------------ numpy IEEE arithmetic
def _np_check(name, dt, udt, nbits, opname, n, seed):
    fmt = get_format(name)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 1 << nbits, n, dtype=np.uint64).astype(udt)
    b = rng.integers(0, 1 << nbits, n, dtype=np.uint64).astype(udt)
    fa, fb = a.view(dt), b.view(dt)
    with np.errstate(all="ignore"):
        ref = {"add": fa + fb, "mul": fa * fb, "div": fa / fb, "sqrt": np.sqrt(fa)}[opname]
    rb = ref.view(udt)
    model = {"add": add, "mul": mul, "div": div}.get(opname)
    for i in range(n):
        ai, bi = int(a[i]), int(b[i])
        got = sqrt(ai, fmt).code if opname == "sqrt" else model(ai, bi, fmt).code
        if np.isnan(ref[i]):
            assert decode(got, fmt).is_nan, (name, opname, hex(ai), hex(bi))
        else:
            assert got == int(rb[i]), (name, opname, hex(ai), hex(bi), hex(got), hex(int(rb[i])))


@pytest.mark.parametrize("opname", ["add", "mul", "div", "sqrt"])
def test_binary16_against_numpy_float16(opname):
    _np_check("binary16", np.float16, np.uint16, 16, opname, 10000, 16)


@pytest.mark.parametrize("opname", ["add", "mul", "div", "sqrt"])
def test_binary32_against_numpy_float32(opname):
    _np_check("binary32", np.float32, np.uint32, 32, opname, 10000, 32)


# ------------------------------------------------------------------ IEEE 754 flags of the operations
B16_INF, B16_NINF, B16_QNAN, B16_SNAN, B16_ONE = 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0x3C00


def _is_nan16(c: int) -> bool:
    return (c & 0x7FFF) > 0x7C00


@pytest.mark.parametrize("mode", DETERMINISTIC_MODES)
def test_invalid_operations_flag_invalid(mode):
    """IEEE 754-2019 7.2 b-d, g: each gives a quiet NaN and raises invalid alone."""
    invalid = [add(B16_INF, B16_NINF, "binary16", mode), add(B16_NINF, B16_INF, "binary16", mode),
               sub(B16_INF, B16_INF, "binary16", mode), mul(0, B16_INF, "binary16", mode),
               mul(B16_NINF, 0x8000, "binary16", mode), div(0, 0x8000, "binary16", mode),
               div(B16_INF, B16_NINF, "binary16", mode), sqrt(0xBC00, "binary16", mode),
               sqrt(B16_NINF, "binary16", mode), sqrt(0x8001, "binary16", mode),
               fma(0, B16_INF, B16_ONE, "binary16", mode), fma(B16_INF, 0, B16_QNAN, "binary16", mode),
               fma(B16_INF, B16_ONE, B16_NINF, "binary16", mode)]
    for i, r in enumerate(invalid):
        assert _is_nan16(r.code) and r.flags == {"invalid"}, (i, hex(r.code), r.flags)


def test_nan_operands_quiet_and_signalling():
    """A quiet NaN propagates without flags; a signalling NaN (first trailing significand bit 0, IEEE 754 6.2.1)
    gives a quiet NaN and invalid (7.2 a), in every op and in conversions."""
    for nan, want in ((B16_QNAN, frozenset()), (0xFE01, frozenset()), (B16_SNAN, {"invalid"}), (0xFD00, {"invalid"})):
        for r in (add(nan, B16_ONE, "binary16"), sub(B16_ONE, nan, "binary16"), mul(nan, 0, "binary16"),
                  div(B16_ONE, nan, "binary16"), sqrt(nan, "binary16"), fma(B16_ONE, B16_ONE, nan, "binary16"),
                  fma(nan, B16_ONE, B16_ONE, "binary16")):
            assert _is_nan16(r.code) and r.code & 0x200 and r.flags == want, (hex(nan), hex(r.code), r.flags)
    assert cast(0x7F800001, "binary32", "binary16").code == 0x7E00
    assert cast(0x7F800001, "binary32", "binary16").flags == {"invalid"}
    assert cast(0x7FC00000, "binary32", "binary16").flags == frozenset()
    assert cast(0x7F800001, "binary32", "ocp_e4m3").flags == {"invalid"}
    assert cast(0x7E, "ocp_e5m2", "binary16").flags == frozenset()  # 0x7E: E5M2 quiet NaN (top bit 1)
    assert cast(0x7D, "ocp_e5m2", "binary16").flags == {"invalid"}


def test_valid_specials_raise_nothing():
    assert sqrt(0x8000, "binary16") == sqrt(0x8000, "binary16", "rdn") and sqrt(0x8000, "binary16").code == 0x8000
    assert not sqrt(0x8000, "binary16").flags and not sqrt(B16_INF, "binary16").flags
    assert add(B16_INF, B16_INF, "binary16").flags == frozenset()
    assert mul(B16_INF, 0xBC00, "binary16").code == B16_NINF and not mul(B16_INF, 0xBC00, "binary16").flags
    assert div(B16_INF, 0, "binary16").code == B16_INF and not div(B16_INF, 0, "binary16").flags  # not 7.3
    assert div(B16_ONE, B16_INF, "binary16").code == 0 and not div(B16_ONE, B16_INF, "binary16").flags


@pytest.mark.parametrize("mode", DETERMINISTIC_MODES)
def test_divide_by_zero(mode):
    """IEEE 754 7.3: finite non-zero / ±0 is the correctly signed infinity with divide_by_zero alone; 0/0 is
    invalid, not a division by zero.  In a format without inf the infinity does not arrive: NaN (E4M3) or max
    (E2M1, nan_policy irrelevant), flagged invalid as well."""
    for a, b, want in ((B16_ONE, 0, B16_INF), (0xBC00, 0, B16_NINF), (B16_ONE, 0x8000, B16_NINF),
                       (0x0001, 0x8000, B16_NINF), (0x7BFF, 0, B16_INF)):
        r = div(a, b, "binary16", mode)
        assert r.code == want and r.flags == {"divide_by_zero"}, (hex(a), hex(b), mode, r)
    assert div(0, 0, "binary16", mode).flags == {"invalid"}
    r = div(0x38, 0, "ocp_e4m3", mode)
    assert r.code in (0x7F, 0xFF) and r.flags == {"divide_by_zero", "invalid"}
    r = div(0x2, 0x8, "ocp_e2m1", mode)  # 1 / -0
    assert r.code == 0xF and r.flags == {"divide_by_zero", "invalid"}


def test_tininess_before_and_after_rounding():
    """IEEE 754 7.5 on binary16 (min normal 2^-14, precision 11).  0x0401 * 0x3bfe = 2^-14 (1 + 2^-10)(1 - 2^-10)
    = 2^-14 (1 - 2^-20): below min normal (tiny before rounding) but it rounds to 2^-14 at precision 11 with an
    unbounded exponent (not tiny after) under rne/rna/rup; rtz/rdn/rto keep it below 2^-14 (tiny either way)."""
    for mode in DETERMINISTIC_MODES:
        before = mul(0x0401, 0x3BFE, "binary16", mode)
        after = mul(0x0401, 0x3BFE, "binary16", mode, tininess="after")
        assert before.code == after.code == (0x0400 if mode in ("rne", "rna", "rup") else 0x03FF), mode
        assert before.flags == {"inexact", "underflow"}
        assert after.flags == ({"inexact"} if mode in ("rne", "rna", "rup") else {"inexact", "underflow"}), mode
    r = mul(0x8401, 0x3BFE, "binary16", "rdn", tininess="after")  # the mirror image under rdn
    assert r.code == 0x8400 and r.flags == {"inexact"}
    # 0x0400 * 0x3bff = 2^-14 - 2^-25: exact at precision 11, so tiny under both; a tie of the subnormal grid
    for tin in ("before", "after"):
        r = mul(0x0400, 0x3BFF, "binary16", "rne", tininess=tin)
        assert r.code == 0x0400 and r.flags == {"inexact", "underflow"}
        assert not mul(0x0400, 0x3800, "binary16", tininess=tin).flags  # 2^-15: exact subnormal, no underflow
        assert div(0x3C00, 0x7BFF, "binary16", tininess=tin).flags == {"inexact", "underflow"}
