"""Integer quantization: exact model vs numpy for every variant, ties, granularity, peers."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError, SpecError, SpecialValueError, UnknownModeError
from refarith.exact import intquant as E
from refarith.fast import intquant as F
from refarith.spec import parse_spec


def check_groups(x, bits, scheme, clip, rounding, group):
    s, z, q = F.quantize(x, bits, scheme, "group", group, clip, rounding)
    n = x.shape[-1]
    for r in range(x.shape[0]):
        for gi, j in enumerate(range(0, n, group)):
            eg = E.quantize_group([float(v) for v in x[r, j:j + group]], bits, scheme, clip, rounding)
            k = r * (-(-n // group)) + gi
            assert float(eg.scale) == float(s[k]) and eg.zero_point == z[k]
            assert list(eg.q) == [int(v) for v in q[r, j:j + group]]
            ed = E.dequantize_group(eg)
            fd = F.dequantize(s[k:k + 1], z[k:k + 1], q[r, j:j + group][None, :], "tensor")
            assert [float(v) for v in ed] == [float(v) for v in fd.reshape(-1)]


@pytest.mark.parametrize("bits", E.BITS)
@pytest.mark.parametrize("scheme", E.SCHEMES)
@pytest.mark.parametrize("clip", E.CLIPS)
@pytest.mark.parametrize("rounding", E.ROUNDINGS)
def test_random_groups_agree(bits, scheme, clip, rounding):
    rng = np.random.default_rng(hash((bits, scheme, clip, rounding)) % 2**32)
    x = (rng.standard_normal((4, 40)) * np.exp2(rng.integers(-60, 60, size=(4, 1)))).astype(np.float32)
    x[0] = 0
    x[1, :5] = np.abs(x[1, :5])
    check_groups(x, bits, scheme, clip, rounding, 16)


@pytest.mark.parametrize("bits", [2, 4, 8, 16])
@pytest.mark.parametrize("rounding", E.ROUNDINGS)
def test_exact_ties(bits, rounding):
    """Inputs at exact half-integer multiples of the scale: rne and rna must differ as specified."""
    qmax = (1 << (bits - 1)) - 1
    ks = list(range(-qmax, qmax, 1 if bits < 16 else 61)) + [qmax - 2, qmax - 1]
    x = np.array([qmax] + [k + 0.5 for k in ks], np.float32)  # amax = qmax -> s = 1
    s, z, q = F.quantize(x, bits, "symmetric", "tensor", clip="symmetric", rounding=rounding)
    assert float(s[0]) == 1.0
    exp = [qmax] + [(k + (k % 2) if rounding == "rne" else (k + 1 if k >= 0 else k)) for k in ks]
    assert [int(v) for v in q] == [max(-qmax, min(qmax, e)) for e in exp]
    check_groups(x[None, :], bits, "symmetric", "symmetric", rounding, x.size)


def test_granularities_shapes_and_values():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 6, 7)).astype(np.float32)
    s, z, q = F.quantize(x, 8, granularity="channel", axis=1)
    assert s.shape == (6,) and q.shape == x.shape
    for c in range(6):
        eg = E.quantize_group([float(v) for v in x[:, c, :].reshape(-1)], 8)
        assert float(eg.scale) == float(s[c]) and list(eg.q) == [int(v) for v in q[:, c, :].reshape(-1)]
    s, z, q = F.quantize(x, 4, granularity="tensor")
    eg = E.quantize_group([float(v) for v in x.reshape(-1)], 4)
    assert s.shape == (1,) and list(eg.q) == [int(v) for v in q.reshape(-1)]
    s, z, q = F.quantize(x, 8, granularity="group", group=4, axis=0)
    assert s.shape == (6 * 7 * 2,) and q.shape == x.shape


def test_full_range_reaches_minus_two_to_the_n_minus_one():
    """With clip=full, s = fl(a / 127.5): when s rounds below a / 127.5, -a / s lies beyond -127.5 and the code
    is -128; with clip=symmetric the code never leaves [-127, 127]."""
    seen = set()
    for a in np.random.default_rng(2).uniform(0.5, 2, 64).astype(np.float32):
        x = np.array([-a, a], np.float32)
        _, _, q = F.quantize(x, 8, clip="full")
        eg = E.quantize_group([float(v) for v in x], 8, clip="full")
        assert list(eg.q) == [int(v) for v in q]
        seen.add(int(q[0]))
        _, _, q = F.quantize(x, 8, clip="symmetric")
        assert list(q) == [-127, 127]
    assert seen == {-128, -127}


def test_bad_input():
    with pytest.raises(SpecialValueError):
        F.quantize(np.array([1.0, np.nan], np.float32), 8)
    with pytest.raises(SpecialValueError):
        E.quantize_group([float("inf")], 8)
    with pytest.raises(BadValueError):
        F.quantize(np.zeros(3, np.float32), 9)
    with pytest.raises(UnknownModeError):
        F.quantize(np.zeros(3, np.float32), 8, rounding="rtz")
    with pytest.raises(SpecError):
        parse_spec("int_quantize(int9)")
    assert str(E.intquant_spec(4, granularity="group")) == \
        "int_quantize(int4,scheme=symmetric,granularity=group,group=128,clip=symmetric,rounding=rne)"


def test_torchao_symmetric_full_range_scale():
    """torchao choose_qparams_affine (SYMMETRIC, int8 [-128, 127]) computes s = amax / ((qmax - qmin) / 2):
    the clip=full variant's scale, bit for bit, on random per-row groups."""
    torch = pytest.importorskip("torch")
    qp = pytest.importorskip("torchao.quantization.quant_primitives")
    rng = np.random.default_rng(8)
    x = rng.standard_normal((16, 64)).astype(np.float32)
    scale, _ = qp.choose_qparams_affine(torch.from_numpy(x), qp.MappingType.SYMMETRIC, (1, 64), torch.int8,
                                        quant_min=-128, quant_max=127, eps=torch.finfo(torch.float32).tiny,
                                        scale_dtype=torch.float32, zero_point_dtype=torch.int32)
    s, _, _ = F.quantize(x, 8, granularity="group", group=64, clip="full")
    assert np.array_equal(scale.numpy().reshape(-1), s)


def _special_groups(rng, n_groups: int, group: int) -> np.ndarray:
    """Random groups over the whole binary32 range with zeros, subnormals, all-zero groups, exact ties of the
    scale and maxima just below a power of two."""
    e = rng.integers(-150, 125, size=(n_groups, 1))
    x = (rng.standard_normal((n_groups, group)) * np.exp2(e)).astype(np.float32)
    x[::17] = 0
    x[1::13, 0] = np.float32(np.nextafter(np.float32(2.0), np.float32(0)))
    x[2::11, :3] = np.float32(1.5e-44)  # subnormals
    x[3::7, 1] = -x[3::7, 2]
    return x


@pytest.mark.parametrize("scheme", E.SCHEMES)
@pytest.mark.parametrize("clip", E.CLIPS)
def test_torch_kernel_matches_numpy_on_1e5_groups_and_exact_on_a_sample(scheme, clip):
    """torch (CPU here; integer binary32 scale arithmetic, binary64 quotients) = numpy on 10^5 groups per
    variant across INT2/4/8/16 and both roundings; = the exact model on a sample of 200 groups."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    rng = np.random.default_rng(99)
    for bits in (2, 4, 8, 16):
        for rounding in E.ROUNDINGS:
            x = _special_groups(rng, 25_000 // 2, 16)
            if scheme == "asymmetric":
                x = np.clip(x, -1.5e38, 1.5e38)  # keep max - min finite (an overflowing range raises)
            a = F.quantize(x, bits, scheme, "group", 16, clip, rounding)
            b = [t.numpy() for t in F.quantize_torch(torch.from_numpy(x), bits, scheme, "group", 16, clip, rounding)]
            assert np.array_equal(a[0].view(np.uint32), b[0].view(np.uint32))
            assert np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
            for k in rng.choice(x.shape[0], 25, replace=False):
                eg = E.quantize_group([float(v) for v in x[k]], bits, scheme, clip, rounding)
                assert float(eg.scale) == float(b[0][k]) and eg.zero_point == b[1][k]
                assert list(eg.q) == [int(v) for v in b[2][k]]


def test_asymmetric_range_overflow_raises_everywhere():
    """max - min beyond the binary32 range: every backend refuses instead of producing an infinite scale."""
    x = np.array([3e38, -3e38], np.float32)
    with pytest.raises(BadValueError, match="overflows binary32"):
        E.quantize_group([float(v) for v in x], 8, "asymmetric")
    with pytest.raises(BadValueError, match="overflows binary32"):
        F.quantize(x, 8, "asymmetric")
    torch = pytest.importorskip("torch", reason="torch is not installed")
    with pytest.raises(BadValueError, match="overflows binary32"):
        F.quantize_torch(torch.from_numpy(x), 8, "asymmetric")


@pytest.mark.slow
@pytest.mark.parametrize("scheme", E.SCHEMES)
@pytest.mark.parametrize("clip", E.CLIPS)
def test_exact_numpy_torch_on_1e5_groups(scheme, clip):
    """The exact model itself on 10^5 random groups per (scheme, clip), widths and roundings rotating."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    rng = np.random.default_rng(5)
    x = _special_groups(rng, 100_000, 8)
    if scheme == "asymmetric":
        x = np.clip(x, -1.5e38, 1.5e38)
    for part, (bits, rounding) in enumerate([(b, r) for b in (2, 4, 8, 16) for r in E.ROUNDINGS]):
        xs = x[part::8]
        a = F.quantize(xs, bits, scheme, "group", 8, clip, rounding)
        b = [t.numpy() for t in F.quantize_torch(torch.from_numpy(xs), bits, scheme, "group", 8, clip, rounding)]
        assert all(np.array_equal(u, v) for u, v in zip(a, b))
        for k in range(xs.shape[0]):
            eg = E.quantize_group([float(v) for v in xs[k]], bits, scheme, clip, rounding)
            assert float(eg.scale) == float(a[0][k]) and eg.zero_point == a[1][k], k
            assert list(eg.q) == a[2][k].tolist(), k
