"""fast/fdot.py (numpy path) against refarith.exact.fdot with torch absent: zero signs of L-Mul and product-format
products, L-Mul NaN operands on either side, -inf into a saturating accumulator, the binary64 product-range
bounds on custom formats at their edges, a spec's overflow parameter, and the error texts.  Expected codes come
from the exact model (or, for the refusals, from the documented domain)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import fdot as E
from refarith.fast import fdot as F
from refarith.formats import FloatFormat, get_format


def _whole(msg: str) -> str:
    """A pytest.raises pattern for exactly this message."""
    return "^" + re.escape(msg) + "$"


def _rows(xs, ys, fin, acc, **kw):
    """(fast codes, exact codes) of each row."""
    x, y = np.array(xs, dtype=np.int64), np.array(ys, dtype=np.int64)
    got = [int(v) for v in np.asarray(F.fdot(x, y, fin, acc, **kw)).reshape(-1)]
    want = [E.fdot([int(v) for v in a], [int(v) for v in b], fin, acc, **kw).code for a, b in zip(x, y)]
    return got, want


def test_lmul_zero_products_keep_their_sign():
    """Pairwise, two -0 L-Mul products sum to -0 (IEEE: -0 + -0 = -0); +0 and -0 to +0."""
    nz, one = 0x80, 0x38  # ocp_e4m3 -0 and 1
    for mul in ("lmul_bitwise", "lmul_formula"):
        got, want = _rows([[nz, nz], [0, nz], [nz, one], [one, one]], [[one, one], [one, one], [nz, nz], [nz, nz]],
                          "ocp_e4m3", "binary32", order="pairwise", mul=mul)
        assert got == want, mul
        assert want[0] == 0x80000000 and want[1] == 0 and want[2] == 0 and want[3] == 0x80000000


def test_lmul_nan_on_either_side():
    """A NaN operand gives a NaN product whichever side it is on; 0 * inf is NaN too."""
    f = get_format("ocp_e5m2")
    nan, inf, one = f.nan_code_with_sign(0), f.inf_codes[0], 0x3C
    xs = [[one], [nan], [one], [inf], [0], [one | 0x80]]
    ys = [[nan], [one], [inf | 0x80], [0], [inf], [one]]
    for mul in ("lmul_bitwise", "lmul_formula"):
        got, want = _rows(xs, ys, "ocp_e5m2", "binary32", mul=mul)
        assert got == want, mul
        assert want[:2] == [0x7FC00000] * 2 and want[2] == 0xFF800000 and want[3:5] == [0x7FC00000] * 2


def test_product_format_zero_signs():
    """product=P: a -0 product stays -0 after its rounding into P (pairwise: -0 + -0 = -0)."""
    nz, one = 0x8000, 0x3F80  # bfloat16 -0 and 1
    for rounding in ("rne", "rdn", "rup"):
        got, want = _rows([[nz, nz], [nz, one | 0x8000], [0, nz]], [[one, one], [0, 0], [one, one]],
                          "bfloat16", "binary32", order="pairwise", product="bfloat16", rounding=rounding)
        assert got == want, rounding
        assert want[0] == 0x80000000 and want[1] == 0x80000000


def test_negative_infinity_saturates_to_minus_max():
    b32 = get_format("binary32")
    ninf, one = b32.inf_codes[1], 0x3F800000
    got, want = _rows([[ninf, one], [b32.inf_codes[0], one], [one, ninf]], [[one, one], [one, one], [one, one]],
                      "binary32", "binary32", overflow="saturate")
    assert got == want == [0xFF7FFFFF, 0x7F7FFFFF, 0xFF7FFFFF]
    got, want = _rows([[0xFC], [0x7C]], [[0x3C], [0x3C]], "ocp_e5m2", "ocp_e4m3", overflow="saturate")
    assert got == want == [0xFE, 0x7E]


def test_infinite_sums_into_a_nan_accumulator_keep_their_sign():
    # an infinite sum (from e5m2 infinities) rounded into ocp_e4m3 under overflow=nan is the NaN of its sign; a
    # later addition to that NaN gives the canonical NaN (sign 0): -inf first then +1 ends at 0x7F, +1 then -inf
    # at 0xFF
    got, want = _rows([[0xFC, 0x3C], [0x7C, 0x3C], [0x3C, 0xFC], [0x3C, 0x7C]], [[0x3C, 0x3C]] * 4, "ocp_e5m2",
                      "ocp_e4m3", overflow="nan")
    assert got == want == [0x7F, 0x7F, 0xFF, 0x7F]


def test_binary64_product_range_edges():
    """Products are exact in binary64 while 2 (emin - mbits) >= -1000 and 2 (emax + 1) <= 1000."""
    at_edge = FloatFormat("e9m2_b499", 9, 2, 499)  # emin - mbits = -498 - 2 = -500
    assert at_edge.emin - at_edge.mbits == -500
    rng = np.random.default_rng(4)
    fin = [c for c in range(at_edge.ncodes) if at_edge.is_finite_code(c)]
    tiny = [1, 2, 3, 5, 7, 0x801, 0x803]
    x = np.array([tiny[:4], tiny[3:], *rng.choice(fin, (6, 4))])
    y = np.array([tiny[:4], tiny[:4], *rng.choice(fin, (6, 4))])
    for acc, rounding in ((at_edge, "rup"), (at_edge, "rne"), ("binary32", "rup"), ("binary32", "rtz")):
        got, want = _rows(x, y, at_edge, acc, rounding=rounding)
        assert got == want, (acc, rounding)
    assert _rows([[1]], [[1]], at_edge, at_edge, rounding="rup")[1] == [1]  # 2^-1000 rounds up to 2^-500
    one = np.zeros((1, 1), np.int64)
    below = FloatFormat("e9m2_b500", 9, 2, 500)  # emin - mbits = -501: a product 2^-1002
    mid = FloatFormat("e9m5_b400", 9, 5, 400)  # emin - mbits = -404, emax = 110: inside both bounds
    assert F.fdot(one, one, mid, "binary32").tolist() == [0]
    too_big = FloatFormat("e10m1_b400", 10, 1, 400)  # emax = 622: products up to 2^1246
    assert too_big.emin - too_big.mbits > -500 and 2 * (too_big.emax + 1) > 1000
    for bad in (below, too_big):
        with pytest.raises(BadValueError, match=_whole(f"fast fdot: input format {bad.name} not supported "
                                                          "(formats of at most 16 bits and binary32); use the exact "
                                                          "model")):
            F.fdot(one, one, bad, "binary32")


def test_spec_overflow_parameter_is_used():
    """57344^2 into binary16: inf by the default overflow, max (0x7BFF) when the spec says saturate."""
    x = np.array([[0x7B]])  # ocp_e5m2 57344
    for spec in ("fdot(ocp_e5m2->binary16)", "fdot(ocp_e5m2->binary16,overflow=saturate)",
                 "fdot(ocp_e5m2->binary16,overflow=nan)"):
        want = E.fdot_spec(spec, [0x7B], [0x7B]).code
        assert [int(v) for v in F.fdot_spec(spec, x, x)] == [want], spec
    assert E.fdot_spec("fdot(ocp_e5m2->binary16,overflow=saturate)", [0x7B], [0x7B]).code == 0x7BFF


def test_error_texts():
    z = np.zeros((1, 1), np.int64)
    b64 = "fast fdot: a binary64 accumulator is supported with numpy and rounding=rne only"
    with pytest.raises(BadValueError, match=_whole(b64)):
        F.fdot(z, z, "bfloat16", "binary64", rounding="rtz")
    with pytest.raises(BadValueError, match=_whole(b64)):
        F.fdot(z, z, "bfloat16", "binary64", backend="torch")
    with pytest.raises(UnknownModeError, match=_whole("fast fdot: stochastic rounding into binary64 is not "
                                                         "supported; use the exact model")):
        F.fdot(z, z, "bfloat16", "binary64", rounding="sr", rand=z, rand_bits=4)
    with pytest.raises(BadValueError, match=_whole("fast fdot on triton: exact products only (product=exact, "
                                                      "mul=exact); use numpy or torch")):
        F.fdot(z, z, "bfloat16", "binary32", product="bfloat16", backend="triton")
    # te_e2m1_8 takes k = 8 whatever the accumulator; a wrong k is refused as the exact model refuses it, not
    # by the binary64 bound of the other variants
    r = np.zeros((1, 2), np.int64)
    two = np.array([[2, 3]])
    with pytest.raises(UnknownModeError) as exact_err:
        E.fdot([2, 3], [2, 3], "ocp_e2m1", "ocp_e2m1", rounding="sr", rand=[0, 0], rand_bits=60,
               sr_variant="te_e2m1_8")
    with pytest.raises(UnknownModeError, match=_whole(str(exact_err.value))):
        F.fdot(two, two, "ocp_e2m1", "ocp_e2m1", rounding="sr", rand=r, rand_bits=60, sr_variant="te_e2m1_8")
