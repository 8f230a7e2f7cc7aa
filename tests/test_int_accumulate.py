"""Integer accumulators: exact int_dot vs numpy vs torch, exact maximum accumulation lengths, wrap vs saturate."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError, SpecError, UnknownModeError
from refarith.exact import intdot as ex
from refarith.fast import intdot as fx
from refarith.spec import parse_spec


def _torch():
    return pytest.importorskip("torch", reason="torch not installed: torch kernel not compared")


def test_all_int8_products_exhaustive():
    torch = _torch()
    v = np.arange(-128, 128, dtype=np.int64)
    a, b = (g.reshape(-1, 1) for g in np.meshgrid(v, v, indexing="ij"))
    want = (a * b).ravel()  # numpy's int64 product of two int8 values: an independent fact
    exact = np.array([ex.int_dot([x], [y], "int8", "int16", "wrap") for x, y in zip(a.ravel().tolist(),
                                                                                      b.ravel().tolist())])
    assert np.array_equal(exact, want)  # every int8 product fits int16: (-128)^2 = 16384
    for acc in ("int16", "int32"):
        for ov in ("wrap", "saturate"):
            assert np.array_equal(fx.int_dot(a, b, "int8", acc, ov), want)
            got_t = fx.int_dot(torch.from_numpy(a), torch.from_numpy(b), "int8", acc, ov).numpy()
            assert np.array_equal(got_t, want)
    # into an int15 accumulator the single product 16384 overflows: wrap and saturate differ there only
    assert ex.int_dot([-128], [-128], "int8", "int15", "wrap") == -16384
    assert ex.int_dot([-128], [-128], "int8", "int15", "saturate") == 16383


@pytest.mark.parametrize("in_fmt,acc_fmt,want", [
    ("int8_sym", "int32", ((1 << 31) - 1) // (127 * 127)),    # 133144
    ("int8", "int32", ((1 << 31) - 1) // (128 * 128)),        # 131071 (positive side binds: 128*128 > 128*127)
    ("int4", "int32", ((1 << 31) - 1) // 64),
    ("int4_sym", "int32", ((1 << 31) - 1) // 49),
    ("int16", "int32", 1),                                    # (-32768)^2 * 2 = 2^31 > INT32_MAX
    ("int16_sym", "int32", 2),
    ("int8", "int16", 1),
    ("int8_sym", "int16", 2),
])
def test_max_safe_length_published(in_fmt, acc_fmt, want):
    assert ex.max_safe_length(in_fmt, acc_fmt) == want


def test_int8_k_limit_exact_and_kernels():
    torch = _torch()
    k = ex.max_safe_length("int8", "int32")
    assert k == 131071
    for n, ov, want in ((k, "wrap", k << 14), (k, "saturate", k << 14), (k + 1, "wrap", -(1 << 31)),
                        (k + 1, "saturate", (1 << 31) - 1)):
        a = [-128] * n
        assert ex.int_dot(a, a, "int8", "int32", ov) == want
        if ov == "saturate" and n == k:
            continue  # the sequential saturate kernel is exercised on the overflowing length below
        arr = np.full((1, n), -128, dtype=np.int8)
        assert fx.int_dot(arr, arr, "int8", "int32", ov)[0] == want
        t = torch.from_numpy(arr)
        assert int(fx.int_dot(t, t, "int8", "int32", ov)[0]) == want


def test_int16_pair_fma_overflows_int32():
    pair = [-32768, -32768]
    assert ex.int_dot(pair, pair, "int16", "int32", "wrap") == -(1 << 31)
    assert ex.int_dot(pair, pair, "int16", "int32", "saturate") == (1 << 31) - 1
    assert ex.int_dot(pair, pair, "int16", "int64", "wrap") == 1 << 31


def test_saturate_is_order_dependent_wrap_is_not():
    a, b = [127, 127, 127, -127], [127] * 4
    assert ex.int_dot(a, b, "int8", "int16", "wrap") == 32258 == sum(x * y for x, y in zip(a, b))
    assert ex.int_dot(a, b, "int8", "int16", "saturate") == 16638  # 48387 clamps to 32767, then - 16129
    assert ex.int_dot(a[::-1], b, "int8", "int16", "saturate") == 32258


@pytest.mark.parametrize("in_fmt,acc_fmt,ov", [
    ("int8", "int16", "wrap"), ("int8", "int16", "saturate"), ("int8", "int32", "wrap"),
    ("int8_sym", "int20", "saturate"), ("int4", "int8", "saturate"), ("int4", "int8", "wrap"),
    ("int16", "int32", "saturate"), ("int16", "int32", "wrap"), ("uint8", "uint16", "wrap"),
    ("uint8", "uint16", "saturate"),
])
def test_random_vectors_exact_numpy_torch(in_fmt, acc_fmt, ov):
    torch = _torch()
    from refarith.formats import get_format

    f = get_format(in_fmt)
    rng = np.random.default_rng(42)
    a = rng.integers(f.min, f.max, (400, 96), endpoint=True)
    b = rng.integers(f.min, f.max, (400, 96), endpoint=True)
    a[:40] = f.min  # long runs of the extreme product force overflow
    b[:40] = f.min if f.signed else f.max
    want = np.array([ex.int_dot(x, y, in_fmt, acc_fmt, ov) for x, y in zip(a.tolist(), b.tolist())])
    assert np.array_equal(fx.int_dot(a, b, in_fmt, acc_fmt, ov), want)
    assert np.array_equal(fx.int_dot(torch.from_numpy(a), torch.from_numpy(b), in_fmt, acc_fmt, ov).numpy(), want)


def test_spec_and_errors():
    sp = parse_spec("int_dot(int8->int32)")
    assert str(sp) == "int_dot(int8->int32,overflow=wrap)"
    assert ex.int_dot_spec("int_dot(i8->i16,overflow=saturate)", [127] * 3, [127] * 3) == 32767
    with pytest.raises(SpecError):
        parse_spec("int_dot(int8->int32,overflow=clamp)")
    with pytest.raises(SpecError):
        parse_spec("int_dot(binary16->int32)")
    with pytest.raises(BadValueError):
        ex.int_dot([-128], [1], "int8_sym", "int32")
    with pytest.raises(BadValueError):
        ex.int_dot([1, 2], [1], "int8", "int32")
    with pytest.raises(UnknownModeError):
        ex.int_dot([1], [1], "int8", "int32", "clamp")
    with pytest.raises(BadValueError):
        fx.int_dot(np.array([[-128]]), np.array([[1]]), "int8_sym", "int32")


@pytest.mark.proof
def test_accumulation_length_theorems():
    from refarith.smt.registry import run_one, select

    ths = select("intdot.")
    assert len(ths) == 16
    for th in ths:
        res = run_one(th)
        assert res.ok, (th.name, res.verdict, res.counterexample, res.confirmed)


def test_torch_wrap_length_is_bounded_numpy_is_not():
    """torch's int64 sum is C++ signed arithmetic (overflow undefined): two products of 32-bit extremes, whose sum
    2^63 leaves int64, are refused there; numpy wraps modulo 2^64 and gives the exact model's result."""
    torch = _torch()
    from refarith.formats.int_format import IntFormat

    a62 = IntFormat("int62", 62)
    a = np.full((1, 2), -(1 << 31), dtype=np.int64)
    with pytest.raises(BadValueError, match=r"length 2 too long for an exact int64 sum \(torch\)"):
        fx.int_dot(torch.from_numpy(a), torch.from_numpy(a), "int32", a62, "wrap")
    assert fx.int_dot(a, a, "int32", a62, "wrap").tolist() == [ex.int_dot([-(1 << 31)] * 2, [-(1 << 31)] * 2,
                                                                           "int32", a62, "wrap")]
    one = np.full((1, 1), -(1 << 31), dtype=np.int64)  # one product: accepted by both
    want = ex.int_dot([-(1 << 31)], [-(1 << 31)], "int32", a62, "wrap")
    assert fx.int_dot(torch.from_numpy(one), torch.from_numpy(one), "int32", a62).tolist() == [want]
