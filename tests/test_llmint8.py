"""LLM.int8(): exact model vs numpy, decomposition, int32 accumulation bound, bitsandbytes-style checks."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError, SpecError, UnknownModeError
from refarith.exact import llmint8 as E
from refarith.fast import llmint8 as F
from refarith.spec import parse_spec


def _mats(seed, m=6, k=20, n=5, outliers=((2, 3, 9.0), (0, 7, -6.0))):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, k)) * 1.5).clip(-5.9, 5.9).astype(np.float16)
    for i, j, v in outliers:
        x[i, j] = v
    w = rng.standard_normal((k, n)).astype(np.float16)
    return x, w


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("accumulate", E.ACCUMULATE)
def test_numpy_matches_exact(seed, accumulate):
    x, w = _mats(seed)
    outl, ax, aw, acc, out = F.matmul(x, w, 6.0, accumulate)
    r = E.matmul(x.tolist(), w.tolist(), 6, accumulate)
    assert tuple(int(v) for v in outl) == r.outliers == (3, 7)  # |x| >= 6 (6.0 itself included)
    assert [float(v) for v in ax] == [float(v) for v in r.row_absmax]
    assert [float(v) for v in aw] == [float(v) for v in r.col_absmax]
    assert np.array_equal(acc, np.array(r.acc)) and np.array_equal(out.view(np.uint16), np.array(r.out))


def test_threshold_parameter_and_no_outliers():
    x, w = _mats(1, outliers=())
    outl, *_ , out = F.matmul(x, w, 100.0)
    assert outl.size == 0
    r = E.matmul(x.tolist(), w.tolist(), 100)
    assert np.array_equal(out.view(np.uint16), np.array(r.out))


def test_outlier_part_is_exact_and_codes_bounded():
    x, w = _mats(2)
    r = E.matmul(x.tolist(), w.tolist())
    assert all(abs(v) <= 127 * 127 * x.shape[1] for row in r.acc for v in row)
    # with every dimension an outlier the product is the exactly rounded fp16 matmul
    r2 = E.matmul(x.tolist(), w.tolist(), threshold=0)
    ref = (x.astype(np.float64) @ w.astype(np.float64))  # exact: 20 products of fp16 values fit in binary64
    assert np.array_equal(np.array(r2.out, np.uint16).view(np.float16), ref.astype(np.float16))


def test_int32_wraps_beyond_bound():
    """Accumulating K_max + 1 products of 127 * 127 wraps in int32 (the theorem's counterexample)."""
    k = E.max_inner_dim("symmetric") + 1
    assert k * 127 * 127 > E.INT32_MAX
    assert E.wrap_int32(k * 127 * 127) == k * 127 * 127 - (1 << 32)
    assert E.max_inner_dim("full") == 131071


def test_bad_input():
    x, w = _mats(0)
    with pytest.raises(BadValueError):
        F.matmul(x.astype(np.float32), w)
    with pytest.raises(BadValueError):
        F.matmul(x, w[:3])
    with pytest.raises(UnknownModeError):
        F.matmul(x, w, accumulate="int16")
    with pytest.raises(BadValueError):
        E.matmul([[0.1]], [[1.0]])
    with pytest.raises(SpecError):
        parse_spec("llmint8_matmul(binary32)")
    assert str(E.llmint8_spec()) == "llmint8_matmul(binary16,threshold=6,accumulate=int32)"


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("accumulate", E.ACCUMULATE)
def test_torch_matches_exact(seed, accumulate):
    """The torch kernel (quantization and GEMM on the tensors' device) equals the exact model, including all-outlier
    and no-outlier matrices."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    x, w = _mats(seed)
    if seed == 4:
        x[:, :] = np.float16(7.0)  # every dimension an outlier: the int8 part is empty
    if seed == 5:
        x = np.clip(x, -5.0, 5.0)  # no outliers
    outl, ax, aw, acc, out = F.matmul_torch(torch.from_numpy(x), torch.from_numpy(w), 6.0, accumulate)
    r = E.matmul(x.tolist(), w.tolist(), 6, accumulate)
    assert tuple(int(v) for v in outl) == r.outliers
    assert [float(v) for v in ax] == [float(v) for v in r.row_absmax]
    assert [float(v) for v in aw] == [float(v) for v in r.col_absmax]
    assert np.array_equal(acc, np.array(r.acc).reshape(acc.shape)) and np.array_equal(out.view(np.uint16),
                                                                                       np.array(r.out))
    n = F.matmul(x, w, 6.0, accumulate)
    assert np.array_equal(n[4].view(np.uint16), out.view(np.uint16))


def test_int32_wrap_in_torch_kernel():
    """A long inner dimension of +-127 codes overflows int32 in the torch kernel exactly as in the exact model."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    k = 140_000  # 140000 * 127^2 > 2^31
    x = np.full((1, k), 1.0, np.float16)
    w = np.full((k, 1), 1.0, np.float16)
    a = F.matmul_torch(torch.from_numpy(x), torch.from_numpy(w), 6.0, "int32")
    b = F.matmul(x, w, 6.0, "int32")
    assert int(a[3][0, 0]) == int(b[3][0, 0]) == ((k * 127 * 127 + 2**31) % 2**32) - 2**31


@pytest.mark.slow
def test_1e5_random_rows_exact_numpy_torch():
    """10^5 random rows of X (quantized row-wise, the LLM.int8 blocks) per accumulation variant, in products
    with outliers: exact model = numpy = torch on every output."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(17)
    rows = dict.fromkeys(E.ACCUMULATE, 0)
    for t in range(500):
        acc = E.ACCUMULATE[t % 2]
        x, w = _mats(t, m=400, k=16, n=3, outliers=((int(rng.integers(400)), int(rng.integers(16)), 7.5),))
        x[rng.random(x.shape) < 0.01] = 0
        r = E.matmul(x.tolist(), w.tolist(), 6, acc)
        a = F.matmul(x, w, 6.0, acc)
        b = F.matmul_torch(torch.from_numpy(x), torch.from_numpy(w), 6.0, acc)
        want = np.array(r.out)
        assert np.array_equal(a[4].view(np.uint16), want) and np.array_equal(b[4].view(np.uint16), want), t
        rows[acc] += x.shape[0]
    assert min(rows.values()) >= 100_000
