"""Dot products with a stated accumulator: hand-worked orders and roundings, numpy/torch float32 loops as
independent peers, and exact == numpy == torch bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError, SpecError
from refarith.exact import fdot as E
from refarith.fast import fdot as F
from refarith.formats import get_format
from refarith.spec import parse_spec

ONE_BF16 = 0x3F80
TWO_M24_BF16 = 0x3380  # 2^-24


def both(xs, ys, fin, acc, **kw):
    e = E.fdot(xs, ys, fin, acc, **kw).code
    n = int(np.asarray(F.fdot(np.array([xs]), np.array([ys]), fin, acc, **kw))[0])
    return e, n


def test_sequential_vs_pairwise_hand_worked():
    """1 + 2^-24 + 2^-24 in binary32: sequentially each addition is a tie back to 1; pairwise the two small
    terms first make 2^-23, and 1 + 2^-23 is the next float after 1."""
    xs, ys = [ONE_BF16, TWO_M24_BF16, TWO_M24_BF16], [ONE_BF16] * 3
    assert both(xs, ys, "bfloat16", "binary32") == (0x3F800000, 0x3F800000)
    assert both(xs, ys, "bfloat16", "binary32", order="pairwise") == (0x3F800001, 0x3F800001)
    # round toward zero never moves 1 + tiny upwards; round up moves it at the first addition
    assert both(xs, ys, "bfloat16", "binary32", rounding="rup") == (0x3F800002, 0x3F800002)


def test_product_format_rounding_hand_worked():
    """(1 + 2^-7)^2 = 1 + 2^-6 + 2^-14: exact in binary32 (0x3F820200); rounded to bfloat16 first it loses 2^-14."""
    xs = ys = [0x3F81]
    assert both(xs, ys, "bfloat16", "binary32") == (0x3F820200, 0x3F820200)
    assert both(xs, ys, "bfloat16", "binary32", product="bfloat16") == (0x3F820000, 0x3F820000)


def test_signed_zeros_and_specials():
    nz, one = 0x8000, ONE_BF16
    assert both([nz], [one], "bfloat16", "binary32") == (0, 0)  # +0 + -0 = +0
    assert both([nz], [one], "bfloat16", "binary32", order="pairwise") == (0, 0)
    assert both([nz, nz], [one, one], "bfloat16", "binary32", order="pairwise") == (0x80000000, 0x80000000)
    assert both([nz, nz], [one, one], "bfloat16", "binary32") == (0, 0)
    # x - x is +0, but -0 when rounding down
    assert both([one, one | 0x8000], [one, one], "bfloat16", "binary32") == (0, 0)
    assert both([one, one | 0x8000], [one, one], "bfloat16", "binary32", rounding="rdn") == (0x80000000, 0x80000000)
    inf, ninf = 0x7F80, 0xFF80
    assert both([inf, ninf], [one, one], "bfloat16", "binary32") == (0x7FC00000, 0x7FC00000)  # inf - inf
    assert both([inf], [0], "bfloat16", "binary32") == (0x7FC00000, 0x7FC00000)  # inf * 0
    assert both([inf], [one], "bfloat16", "binary32", overflow="saturate") == (0x7F7FFFFF, 0x7F7FFFFF)
    assert both([], [], "bfloat16", "binary32") == (0, 0)


def test_narrow_accumulator_overflow_modes():
    """448 * 448 into an e4m3 accumulator: NaN by default (its natural mode), 448 when saturating."""
    assert both([0x7E], [0x7E], "ocp_e4m3", "ocp_e4m3") == (0x7F, 0x7F)
    assert both([0x7E], [0x7E], "ocp_e4m3", "ocp_e4m3", overflow="saturate") == (0x7E, 0x7E)
    # 1 + 1/16 in e4m3: a tie between 1 and 1.125 -> 1 (even); rna -> 1.125
    assert both([0x38, 0x18], [0x38, 0x38], "ocp_e4m3", "ocp_e4m3") == (0x38, 0x38)
    assert both([0x38, 0x18], [0x38, 0x38], "ocp_e4m3", "ocp_e4m3", rounding="rna") == (0x39, 0x39)


def _finite_bf16(rng, shape):
    e = rng.integers(127 - 30, 127 + 30, size=shape)
    return (rng.integers(0, 2, size=shape) << 15) | (e << 7) | rng.integers(0, 128, size=shape)


def test_numpy_float32_loop_is_a_peer():
    """products rounded to binary32, sequential binary32 accumulation: a plain float32 loop computes exactly this."""
    rng = np.random.default_rng(5)
    x, y = _finite_bf16(rng, (400, 33)), _finite_bf16(rng, (400, 33))
    xf = (x.astype(np.uint32) << 16).view(np.float32)
    yf = (y.astype(np.uint32) << 16).view(np.float32)
    acc = np.zeros(400, dtype=np.float32)
    for k in range(33):
        acc = acc + xf[:, k] * yf[:, k]
    want = acc.view(np.uint32)
    np.testing.assert_array_equal(F.fdot(x, y, "bfloat16", "binary32", product="binary32"), want)
    for r in range(0, 400, 40):
        assert E.fdot([int(v) for v in x[r]], [int(v) for v in y[r]], "bfloat16", "binary32",
                      product="binary32").code == want[r]
    torch = pytest.importorskip("torch")
    xt, yt = torch.as_tensor(xf), torch.as_tensor(yf)
    acc_t = torch.zeros(400, dtype=torch.float32)
    for k in range(33):
        acc_t = acc_t + xt[:, k] * yt[:, k]
    np.testing.assert_array_equal(acc_t.numpy().view(np.uint32), want)
    got_t = F.fdot(torch.as_tensor(x), torch.as_tensor(y), "bfloat16", "binary32", product="binary32",
                   backend="torch")
    np.testing.assert_array_equal(got_t.numpy(), want.astype(np.int64))


def test_binary64_accumulator_is_numpy_float64():
    rng = np.random.default_rng(9)
    x, y = _finite_bf16(rng, (50, 17)), _finite_bf16(rng, (50, 17))
    xf = (x.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    yf = (y.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    acc = np.zeros(50)
    for k in range(17):
        acc = acc + xf[:, k] * yf[:, k]  # bfloat16 products are exact in binary64
    np.testing.assert_array_equal(F.fdot(x, y, "bfloat16", "binary64"), acc.view(np.uint64))
    assert E.fdot([int(v) for v in x[3]], [int(v) for v in y[3]], "bfloat16", "binary64").code == \
        int(acc.view(np.uint64)[3])


CASES = [
    ("ocp_e4m3", "binary32", {}), ("ocp_e4m3", "binary32", {"order": "pairwise"}),
    ("ocp_e5m2", "ocp_e4m3", {}), ("ocp_e5m2", "ocp_e4m3", {"order": "pairwise", "overflow": "saturate"}),
    ("bfloat16", "binary32", {"rounding": "rtz"}), ("binary16", "bfloat16", {"rounding": "rdn", "order": "pairwise"}),
    ("ocp_e4m3", "bfloat16", {"product": "ocp_e5m2"}), ("ocp_e4m3", "ocp_e5m2", {"rounding": "rup"}),
    ("ocp_e4m3", "binary32", {"mul": "lmul_bitwise"}), ("bfloat16", "binary32", {"mul": "lmul_formula"}),
    ("ocp_e5m2", "ocp_e5m2", {"mul": "lmul_bitwise", "order": "pairwise"}),
    ("binary32", "binary32", {}), ("binary32", "binary32", {"mul": "lmul_bitwise", "order": "pairwise"}),
]


@pytest.mark.parametrize("fin,acc,kw", CASES)
def test_exact_numpy_torch_agree(fin, acc, kw):
    """Random codes (specials included) and finite-only codes, several lengths."""
    fmt = get_format(fin)
    rng = np.random.default_rng(abs(hash((fin, acc, tuple(kw.items())))) % 2**32)
    for k, finite in ((1, False), (6, False), (9, True)):
        x = rng.integers(0, fmt.ncodes, size=(60, k), dtype=np.int64)
        y = rng.integers(0, fmt.ncodes, size=(60, k), dtype=np.int64)
        if finite:
            from refarith.exact.ops import decode

            fin_codes = np.array([c for c in range(min(fmt.ncodes, 1 << 16))
                                  if decode(c, fmt).is_finite]) if fmt.nbits <= 16 else None
            if fin_codes is not None:
                x, y = rng.choice(fin_codes, size=(60, k)), rng.choice(fin_codes, size=(60, k))
            else:
                x, y = x & 0xBFFFFFFF, y & 0xBFFFFFFF  # exponent field below all ones
        want = np.array([E.fdot([int(v) for v in x[r]], [int(v) for v in y[r]], fin, acc, **kw).code
                         for r in range(len(x))])
        np.testing.assert_array_equal(np.asarray(F.fdot(x, y, fin, acc, **kw)).astype(np.int64), want)
        torch = pytest.importorskip("torch")
        got_t = F.fdot(torch.as_tensor(x), torch.as_tensor(y), fin, acc, backend="torch", **kw)
        np.testing.assert_array_equal(got_t.numpy(), want)


def test_lmul_dot_is_fdot_with_lmul_products():
    from refarith.exact.lmul import lmul_dot

    xs, ys = [0x3C, 0x3A, 0x38], [0x3C, 0xBC, 0x38]
    # bitwise products: 2.25, -1.875, 1.125 (hand-worked in test_lmul) -> sum 1.5 exactly in binary32
    assert lmul_dot(xs, ys, "ocp_e4m3", "binary32").code == 0x3FC00000
    assert both(xs, ys, "ocp_e4m3", "binary32", mul="lmul_bitwise") == (0x3FC00000, 0x3FC00000)


def test_specs():
    s = parse_spec("fdot(bf16->fp32)")
    assert str(s) == "fdot(bfloat16->binary32,order=sequential,product=exact,mul=exact,rounding=rne,overflow=inf)"
    assert E.fdot_spec(s, [0x3F81], [0x3F81]).code == 0x3F820200
    assert int(F.fdot_spec(s, np.array([[0x3F81]]), np.array([[0x3F81]]))[0]) == 0x3F820200
    for bad in ("fdot(bfloat16)", "fdot(bfloat16->binary32,order=random)", "fdot(bfloat16->binary32,product=bf16)",
                "fdot(bfloat16->binary32,product=nosuch)", "fdot(ocp_e4m3->ocp_e4m3,overflow=inf)",
                "fdot(bfloat16->int32)", "fdot(e8m0->binary32,mul=lmul_bitwise)"):
        with pytest.raises(SpecError):
            parse_spec(bad)


def test_bad_inputs():
    with pytest.raises(BadValueError):
        E.fdot([1, 2], [1], "bfloat16", "binary32")
    with pytest.raises(BadValueError):
        F.fdot(np.zeros((2, 3), dtype=np.int64), np.zeros((2, 4), dtype=np.int64), "bfloat16", "binary32")
    with pytest.raises(BadValueError):
        F.fdot(np.array([[0x10000]]), np.array([[0]]), "bfloat16", "binary32")
    with pytest.raises(BadValueError):
        F.fdot(np.array([[0]]), np.array([[0]]), "binary64", "binary64")  # products not exact in binary64
    with pytest.raises(BadValueError):
        F.fdot(np.array([[0]]), np.array([[0]]), "bfloat16", "binary64", backend="torch")
