"""refarith.fast.blocksr: the defaults, the one-level tensor scale, the division rule under stochastic rounding and
every refusal text, torch-free (mutation testing, docs/mutation.md).  Expected codes come from
refarith.exact.mx.quantize_block / refarith.exact.nvfp4.quantize_blocks with the same random integers."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import mx as emx
from refarith.exact import nvfp4 as env
from refarith.exact.ops import decode
from refarith.fast.blocksr import mx_quantize_sr, nvfp4_quantize_sr, random_bits
from refarith.fast.mx import SR_MAX_BITS, ops


def _mx_exact(x, r, elem, k, variant, block):
    out_s, out_c = [], []
    for i in range(0, x.size, block):
        b = emx.quantize_block([decode(int(t), "binary32") for t in x[i:i + block].view(np.uint32)], elem, "floor",
                               "sr", rand=[int(t) for t in r[i:i + block]], rand_bits=k, sr_variant=variant)
        out_s.append(b.scale)
        out_c.extend(b.codes)
    return out_s, out_c


def _x(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * np.exp2(rng.integers(-8, 8, n))).astype(np.float32)


def test_mx_defaults_are_variant_a_and_blocks_of_32():
    x, k = _x(64, 1), 3
    r = np.random.default_rng(2).integers(0, 1 << k, 64)
    s, c = mx_quantize_sr(x, "ocp_e2m1", r, k)
    es, ec = _mx_exact(x, r, "ocp_e2m1", k, "a", 32)
    assert [int(t) for t in s] == es and [int(t) for t in c] == ec
    s33, c33 = mx_quantize_sr(x[:33], "ocp_e2m1", r[:33], k)
    assert len(s33) == 2  # 33 elements make two blocks of (at most) 32


def test_nvfp4_defaults_are_variant_a():
    x, k = _x(32, 3), 3
    r = np.random.default_rng(4).integers(0, 1 << k, 32)
    ts, s, c = nvfp4_quantize_sr(x, r, k)
    blocks = [[int(t) for t in x[i:i + 16].view(np.uint32)] for i in (0, 16)]
    q = env.quantize_blocks(blocks, rounding="sr", rand=[[int(t) for t in r[i:i + 16]] for i in (0, 16)],
                            rand_bits=k, sr_variant="a")
    assert tuple(int(t) for t in s) == q.scales and tuple(int(t) for t in c) == q.codes[0] + q.codes[1]
    assert type(ts) is np.float32 and int(np.float32(ts).view(np.uint32)) == q.tensor_scale


def test_nvfp4_one_level_has_no_tensor_scale():
    x = _x(16, 5)
    ts, s, c = nvfp4_quantize_sr(x, np.zeros(16, np.int64), 2, levels=1)
    assert ts is None
    q = env.quantize_blocks([[int(t) for t in x.view(np.uint32)]], levels=1, rounding="sr", rand=[[0] * 16],
                            rand_bits=2)
    assert tuple(int(t) for t in c) == q.codes[0]


def _division_case(k=22):
    """One-level block with scale 3 (1/3 inexact): elements whose y = fl(x / 3) and fl(x * fl(1/3)) differ by an
    ulp, with r = 2^k - F for F the first k fraction bits of the larger y, so variant a (up where F + r >= 2^k)
    rounds the larger y up and the smaller one down."""
    third = np.float32(1) / np.float32(3)
    xs = []
    v = np.float32(1.0)
    while len(xs) < 15:
        v = np.nextafter(v, np.float32(2))
        if v / np.float32(3) != v * third:
            xs.append(v * np.float32(3))
    x = np.array([18.0] + xs, np.float32)  # amax 18: b = 18 / 6 = 3, a UE4M3 value
    y = np.maximum(x / np.float32(3), x * third).astype(np.float64)
    quantum = np.where(y < 2, 0.5, np.where(y < 4, 1.0, 2.0))
    frac = (y % quantum) / quantum
    r = ((1 << k) - np.floor(frac * 2.0 ** k).astype(np.int64)) % (1 << k)
    return x, r, k


def test_nvfp4_divide_and_reciprocal_differ_under_sr():
    x, r, k = _division_case()
    blocks, rb = [[int(t) for t in x.view(np.uint32)]], [[int(t) for t in r]]
    qd = env.quantize_blocks(blocks, "divide", 1, rounding="sr", rand=rb, rand_bits=k)
    qr = env.quantize_blocks(blocks, "reciprocal", 1, rounding="sr", rand=rb, rand_bits=k)
    assert qd.scales == qr.scales and qd.codes != qr.codes  # the inputs tell the two rules apart
    for division, q in (("divide", qd), ("reciprocal", qr)):
        _, s, c = nvfp4_quantize_sr(x, r, k, division=division, levels=1)
        assert tuple(int(t) for t in s) == q.scales and tuple(int(t) for t in c) == q.codes[0], division


def test_nvfp4_te_e2m1_8():
    x = _x(32, 7)
    r = np.random.default_rng(8).integers(0, 256, 32)
    _, s, c = nvfp4_quantize_sr(x, r, 8, "te_e2m1_8")
    blocks = [[int(t) for t in x[i:i + 16].view(np.uint32)] for i in (0, 16)]
    q = env.quantize_blocks(blocks, rounding="sr", rand=[[int(t) for t in r[i:i + 16]] for i in (0, 16)],
                            rand_bits=8, sr_variant="te_e2m1_8")
    assert tuple(int(t) for t in c) == q.codes[0] + q.codes[1]


@pytest.mark.parametrize("k", [True, False, 3.0, None])
def test_rand_bits_must_be_an_int(k):
    x, r = np.ones(16, np.float32), np.zeros(16, np.int64)
    msg = f"^rand_bits must be an integer in 1..{SR_MAX_BITS} for the fast SR kernels, got {k!r}$"
    with pytest.raises(UnknownModeError, match=msg):
        nvfp4_quantize_sr(x, r, k)
    with pytest.raises(UnknownModeError, match=msg):
        random_bits(r, (16,), k, "a", "ocp_e2m1", ops("numpy"), None)


@pytest.mark.parametrize("dtype", [np.bool_, np.float32, np.complex64])
def test_rand_must_be_integers(dtype):
    r = np.zeros(16, dtype)
    with pytest.raises(UnknownModeError, match=f"^rand must hold integers, got dtype {np.dtype(dtype)}$"):
        random_bits(r, (16,), 3, "a", "ocp_e2m1", ops("numpy"), None)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.uint16, np.int64])
def test_rand_integer_dtypes_become_int64(dtype):
    r = np.arange(16).astype(dtype) % 8
    out = random_bits(r, (16,), 3, "a", "ocp_e2m1", ops("numpy"), None)
    assert out.dtype == np.int64 and out.tolist() == (np.arange(16) % 8).tolist()


def test_refusal_texts():
    with pytest.raises(UnknownModeError, match="^stochastic NVFP4 rounding runs on the numpy, torch and triton "
                                               "backends, not 'jax'$"):
        nvfp4_quantize_sr(np.ones(16, np.float32), np.zeros(16, np.int64), 3, backend="jax")
    with pytest.raises(UnknownModeError, match="^stochastic MX rounding runs on the numpy, torch and triton "
                                               "backends, not 'jax'$"):
        mx_quantize_sr(np.ones(32, np.float32), "ocp_e2m1", np.zeros(32, np.int64), 3, backend="jax")
    with pytest.raises(BadValueError, match="^nvfp4_quantize needs an array with at least one dimension$"):
        nvfp4_quantize_sr(np.float32(1), np.int64(0), 3)
    with pytest.raises(BadValueError, match="^mx_quantize needs an array with at least one dimension$"):
        mx_quantize_sr(np.float32(1), "ocp_e2m1", np.int64(0), 3)
    with pytest.raises(UnknownModeError, match=r"^stochastic rounding needs rand: one integer of rand_bits bits per "
                                               r"element \(shape \(16,\)\)$"):
        nvfp4_quantize_sr(np.ones(16, np.float32), None, 3)


def test_the_widest_rand_bits_is_accepted():
    k = SR_MAX_BITS
    r = np.full(16, (1 << k) - 1, np.int64)
    out = random_bits(r, (16,), k, "a", "ocp_e2m1", ops("numpy"), None)
    assert out.tolist() == [(1 << k) - 1] * 16
    with pytest.raises(UnknownModeError, match=f"got {k + 1}$"):
        random_bits(r, (16,), k + 1, "a", "ocp_e2m1", ops("numpy"), None)
