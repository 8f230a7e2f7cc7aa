"""fast/intquant.py with torch absent, against refarith.exact.intquant: every granularity and axis (groups cut
by hand), padding of the last group, tiles of the numpy loop crossing groups and long groups, dequantize, signed
zeros and subnormals, the code dtypes and every refusal with its text."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from refarith.errors import BadValueError, SpecialValueError, UnknownModeError
from refarith.exact import intquant as E
from refarith.fast import intquant as F


def _by_hand(x, granularity, axis, group):
    """Index arrays (into x.ravel()) of each group, in the kernel's group order, built element by element."""
    idx = np.arange(x.size).reshape(x.shape)
    if granularity == "tensor":
        return [idx.reshape(-1)]
    a = np.moveaxis(idx, axis, 0 if granularity == "channel" else -1)
    if granularity == "channel":
        return [a[c].reshape(-1) for c in range(a.shape[0])]
    rows = a.reshape(-1, a.shape[-1])
    return [r[j:j + group] for r in rows for j in range(0, r.size, group)]


def _check(x, bits, scheme="symmetric", granularity="tensor", group=128, clip="symmetric", rounding="rne",
           axis=-1, deq=True):
    s, z, q = F.quantize(x, bits, scheme, granularity, group, clip, rounding, axis)
    parts = _by_hand(x, granularity, axis % x.ndim, group)
    assert s.dtype == np.float32 and z.dtype == np.int32 and q.shape == x.shape
    assert q.dtype == (np.int16 if bits == 16 else np.int8)
    assert s.shape == z.shape == (len(parts),)
    flat, qf = x.reshape(-1), q.reshape(-1)
    for k, p in enumerate(parts):
        eg = E.quantize_group([float(v) for v in flat[p]], bits, scheme, clip, rounding)
        assert float(s[k]) == eg.scale and int(z[k]) == eg.zero_point, k
        assert [int(v) for v in qf[p]] == list(eg.q), k
    if not deq:
        return s, z, q
    d = F.dequantize(s, z, q, granularity, group, axis)
    assert d.dtype == np.float32 and d.shape == x.shape
    df = d.reshape(-1)
    for k, p in enumerate(parts):
        eg = E.IntGroup(E.Fraction(float(s[k])), int(z[k]), tuple(int(v) for v in qf[p]))
        assert [float(v) for v in df[p]] == [float(v) for v in E.dequantize_group(eg)], k
    return s, z, q


def _data(shape, seed, spread=20):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * np.exp2(rng.integers(-spread, spread, shape[:1] + (1,) * (len(shape) - 1)))
    return x.astype(np.float32)


@pytest.mark.parametrize("scheme,clip", [("symmetric", "symmetric"), ("symmetric", "full"),
                                         ("asymmetric", "symmetric")])
@pytest.mark.parametrize("granularity,axis,group", [
    ("tensor", -1, 128), ("channel", 0, 128), ("channel", 1, 128), ("channel", -1, 128), ("group", -1, 5),
    ("group", 0, 4), ("group", 1, 3), ("group", -2, 7), ("group", 2, 64)])
def test_every_layout_against_groups_cut_by_hand(scheme, clip, granularity, axis, group):
    x = _data((5, 6, 7), 1)
    x[0, 0, :] = 0
    x[1, :, 2] = np.abs(x[1, :, 2])
    x[2, 3, 4] = -0.0
    _check(x, 4, scheme, granularity, group, clip, "rne", axis)
    _check(x, 8, scheme, granularity, group, clip, "rna", axis)


@pytest.mark.parametrize("bits", E.BITS)
def test_code_dtype_and_width(bits):
    x = _data((3, 40), bits)
    x[0, 0] = 3 * np.abs(x).max()
    for scheme, clip in itertools.product(E.SCHEMES, E.CLIPS):
        _check(x, bits, scheme, "group", 16, clip, "rne")


def test_tiles_cross_rows_and_long_groups(monkeypatch):
    """With CHUNK = 24 the numpy loop cuts many groups per tile (groups of 5: four a tile) and one long group
    into tiles of 24 columns (the whole tensor, 1 x 97)."""
    monkeypatch.setattr(F, "CHUNK", 24)
    x = _data((9, 97), 3)
    _check(x, 8, "asymmetric", "group", 5, "symmetric", "rna")
    _check(x, 4, "symmetric", "group", 5, "full", "rne")
    _check(x, 8, "asymmetric", "tensor", 128, "symmetric", "rne")
    _check(x, 16, "symmetric", "channel", 128, "symmetric", "rne", 0)


def test_signed_zeros_subnormals_and_extremes():
    x = np.array([[-0.0, 0.0, -0.0, 0.0], [1e-45, -1e-45, 3e-41, 0.0], [-1e-45, -2e-45, -0.0, 0.0],
                  [3.4e38, -3.4e38, 1.0, -1.0], [2.0 ** -126, 2.0 ** -149, -2.0 ** -127, 0.0],
                  [-3.0e38, 5.0, 7.0, -0.0], [1.0, 2.0, 3.0, 4.0]], np.float32)
    for scheme in E.SCHEMES:
        for clip in E.CLIPS:
            if scheme == "asymmetric" and clip == "full":
                continue
            rows = x if scheme == "symmetric" else x[[0, 1, 2, 4, 5, 6]]
            for rounding in E.ROUNDINGS:
                # dequantize is compared where no product nears the binary32 limit (the exact model's fl32
                # saturates there, numpy's cast gives inf)
                _check(rows, 8, scheme, "channel", 128, clip, rounding, 0, deq=False)
                _check(rows, 2, scheme, "channel", 128, clip, rounding, 0, deq=False)
                _check(rows * np.float32(0.5), 8, scheme, "channel", 128, clip, rounding, 0)


def test_zero_groups_have_scale_one():
    x = np.zeros((2, 8), np.float32)
    x[1] = -0.0
    for scheme in E.SCHEMES:
        s, z, q = _check(x, 8, scheme, "channel", 128, "symmetric", "rne", 0)
        assert s.tolist() == [1.0, 1.0] and (q == z[:, None]).all()
        assert z.tolist() == ([0, 0] if scheme == "symmetric" else [-128, -128])


def test_asymmetric_range_overflow_text():
    x = np.array([3.0e38, -3.0e38], np.float32)
    with pytest.raises(BadValueError, match=r"^asymmetric quantization: the range max - min of a group overflows "
                                            r"binary32 \(the scale would be infinite\)$"):
        F.quantize(x, 8, "asymmetric")
    F.quantize(x, 8, "symmetric")  # symmetric: amax alone, no overflow


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, -np.nan])
@pytest.mark.parametrize("where", [0, 5, 11])
def test_nonfinite_refused(bad, where):
    x = np.ones(12, np.float32)
    x[where] = bad
    for scheme in E.SCHEMES:
        with pytest.raises(SpecialValueError, match="^integer quantization: NaN and infinity have no integer code$"):
            F.quantize(x, 8, scheme, "group", 4)


def test_largest_finite_is_accepted():
    x = np.array([np.float32(3.4028235e38), -np.float32(3.4028235e38), 0], np.float32)
    _check(x, 8, "symmetric", "tensor")
    _check(x[[0, 2]], 8, "asymmetric", "tensor")


def test_dequantize_beyond_flt_max_is_infinite():
    # s = fl(FLT_MAX / 127); 127 s exceeds FLT_MAX by more than half an ulp, so the IEEE binary32 product is inf
    x = np.array([np.float32(3.4028235e38), -np.float32(3.4028235e38), 0], np.float32)
    s, z, q = F.quantize(x, 8, "symmetric", "tensor")
    assert [int(v) for v in q] == [127, -127, 0]
    with np.errstate(over="ignore"):
        ieee = [np.float32(v) * s[0] for v in (127, -127, 0)]  # numpy's binary32 multiply, round to nearest even
    assert [float(v) for v in ieee] == [np.inf, -np.inf, 0.0]
    eg = E.IntGroup(E.Fraction(float(s[0])), 0, (127, -127, 0))
    assert E.dequantize_group(eg) == [np.inf, -np.inf, 0]
    d = F.dequantize(s, z, q)
    assert [float(v) for v in d] == [np.inf, -np.inf, 0.0]
    # one code lower the product is finite and exact model and kernel agree on its value
    eg = E.IntGroup(E.Fraction(float(s[0])), 0, (126,))
    assert E.dequantize_group(eg) == [E.Fraction(float(np.float32(126) * s[0]))]


@pytest.mark.parametrize("kw,exc,msg", [
    ({"granularity": "row"}, BadValueError, "unknown granularity 'row'; expected one of tensor, channel, group"),
    ({"granularity": "channel", "axis": 2}, BadValueError, "axis 2 out of range for an array of 2 dimensions"),
    ({"granularity": "channel", "axis": -3}, BadValueError, "axis -3 out of range for an array of 2 dimensions"),
    ({"granularity": "group", "group": 0}, BadValueError, "group size must be a positive integer, got 0"),
    ({"granularity": "group", "group": True}, BadValueError, "group size must be a positive integer, got True"),
    ({"granularity": "group", "group": 2.0}, BadValueError, "group size must be a positive integer, got 2.0"),
    ({"granularity": "group", "group": -4}, BadValueError, "group size must be a positive integer, got -4"),
    ({"backend": "cuda"}, UnknownModeError, "unknown backend 'cuda'; expected numpy, torch or triton"),
    ({"scheme": "affine"}, UnknownModeError, "unknown scheme 'affine'; expected one of symmetric, asymmetric"),
    ({"clip": "half"}, UnknownModeError, "unknown clip 'half'; expected one of symmetric, full"),
    ({"rounding": "rtz"}, UnknownModeError, "unknown rounding 'rtz'; expected one of rne, rna"),
    ({"rand": np.zeros((2, 3), np.int64)}, UnknownModeError,
     r"rand is given but rounding='rne' is not stochastic \(rounding='sr'\)"),
])
def test_refusals(kw, exc, msg):
    with pytest.raises(exc, match=f"^{msg}$"):
        F.quantize(np.ones((2, 3), np.float32), 8, **kw)


def test_layout_edges():
    with pytest.raises(BadValueError, match="^integer quantization needs an array with at least one dimension$"):
        F.quantize(np.float32(1.0), 8)
    with pytest.raises(BadValueError, match="^integer width must be one of"):
        F.quantize(np.ones(3, np.float32), 9)
    x = _data((4, 6), 9)
    _check(x, 8, "symmetric", "channel", 128, "symmetric", "rne", -2)  # axis -ndim is allowed
    _check(x, 8, "symmetric", "group", 1, "symmetric", "rne", -1)  # groups of one
    assert F.check_layout(3, "group", -1, 4) == 2 and F.check_layout(3, "channel", -3, 4) == 0
    assert F.check_layout(1, "tensor", 0, 0) == 0  # the group size matters for group granularity only


def test_float64_and_integer_inputs_read_as_binary32():
    x64 = np.array([1 + 2.0 ** -24 + 2.0 ** -40, -3.0, 0.1, 7.25], np.float64)
    a = F.quantize(x64, 8, "asymmetric")
    b = F.quantize(x64.astype(np.float32), 8, "asymmetric")
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    s, z, q = F.quantize(np.array([3, -5, 127], np.int64), 8)
    assert float(s[0]) == 1.0 and q.tolist() == [3, -5, 127]


def test_group_words_signed_zero_and_sign_bit():
    """hi = bits of max(max x, 0), lo = bits of |min(min x, 0)|; -0 counts as 0."""
    rows = [[0.0, -0.0, 1.0, -4.0], [-0.0, -0.0, -0.0, -0.0], [2.5, 0.5, 0.0, 1e-45], [-1e-45, -3.0, -2.0, -0.0]]
    b = np.array(rows, np.float32).view(np.int32)
    hi, lo = F.group_words(b, F.ops("numpy"))
    want_hi = [max(max(r), 0.0) for r in rows]
    want_lo = [abs(min(min(r), 0.0)) for r in rows]
    assert hi.view(np.float32).tolist() == [float(np.float32(v)) for v in want_hi]
    assert lo.view(np.float32).tolist() == [float(np.float32(v)) for v in want_lo]
    assert hi.view(np.int32).min() >= 0 and lo.view(np.int32).min() >= 0


@pytest.mark.parametrize("bits,scheme,clip,rounding", [
    (8, "symmetric", "symmetric", "rne"), (4, "symmetric", "full", "rna"), (8, "asymmetric", "symmetric", "rna"),
    (16, "asymmetric", "symmetric", "rne")])
def test_quantize_words_on_numpy(bits, scheme, clip, rounding):
    """quantize_words (the kernel torch and Triton run) on the numpy shim: the exact model's groups."""
    x = _data((6, 24), 17)
    x[0] = 0
    x[1, 3] = -0.0
    b = x.view(np.int32)
    hi, lo = F.group_words(b, F.ops("numpy"))
    s, z, q = F.quantize_words(b, hi, lo, bits, scheme, clip, rounding, F.ops("numpy"))
    for r in range(x.shape[0]):
        eg = E.quantize_group([float(v) for v in x[r]], bits, scheme, clip, rounding)
        assert float(np.int32(s[r]).view(np.float32)) == eg.scale and int(np.broadcast_to(z, s.shape)[r]) == \
            eg.zero_point
        assert [int(v) for v in q[r]] == list(eg.q)


def test_round_magnitude_unknown_variant_text():
    xb = np.array([0x3F800000, 0x40400000], np.int32)
    sb = np.array([0x3F000000], np.int32)
    with pytest.raises(UnknownModeError, match="^unknown stochastic rounding variant 'fast'$"):
        F.round_magnitude(xb, sb, "sr", F.ops("numpy"), sr=(np.zeros(2, np.int64), 4, "fast"))


def test_tensor_granularity_ignores_the_axis():
    x = _data((3, 5), 21)
    a = F.quantize(x, 8, granularity="tensor", axis=0)
    b = F.quantize(x, 8, granularity="tensor")
    assert a[2].shape == x.shape and all(np.array_equal(u, v) for u, v in zip(a, b))
    _check(x, 8, "asymmetric", "tensor", 128, "symmetric", "rne", 0)


def _sr_cases(seed, count=400):
    """Bit patterns of x >= 0 and s > 0 whose quotients x / s spread over [0, 2^17) (and a few beyond)."""
    rng = np.random.default_rng(seed)
    q = np.exp2(rng.uniform(-6, 17.5, count)) * rng.choice([1, 1 + 2.0 ** -20, 1 - 2.0 ** -20], count)
    s = np.exp2(rng.uniform(-30, 30, count)).astype(np.float32)
    x = (q * s).astype(np.float32)
    x[:8] = np.float32(0)
    x[8:40] = (np.arange(32) + 0.5).astype(np.float32) * s[8:40]  # halves
    return x.view(np.int32), s.view(np.int32)


@pytest.mark.parametrize("variant,k", [("te_e2m1_8", 8), ("a", 32), ("a", 33), ("b", 32), ("c", 31), ("c_odd", 33)])
def test_round_magnitude_sr_against_round_int(variant, k):
    """round_magnitude(..., "sr") against exact.intquant.round_int of x / s below 2^17 (above: at least 2^17)."""
    xb, sb = _sr_cases(k)
    rng = np.random.default_rng(k + 100)
    r = rng.integers(0, 1 << k, xb.size, dtype=np.int64)
    r[:20] = 0
    r[20:40] = (1 << k) - 1
    got = F.round_magnitude(xb, sb, "sr", F.ops("numpy"), sr=(r, k, variant))
    for xv, sv, rv, g in zip(xb.view(np.float32).tolist(), sb.view(np.float32).tolist(), r.tolist(), got.tolist()):
        q = E.Fraction(xv) / E.Fraction(sv)
        if q >= 1 << 17:
            assert g >= 1 << 17
        else:
            assert g == E.round_int(q, "sr", rv, k, variant), (xv, sv, rv)


def test_quantize_words_stochastic_on_numpy():
    x = _data((4, 20), 23)
    b = x.view(np.int32)
    hi, lo = F.group_words(b, F.ops("numpy"))
    r = np.random.default_rng(5).integers(0, 16, x.shape)
    s, z, q = F.quantize_words(b, hi, lo, 8, "asymmetric", "symmetric", "sr", F.ops("numpy"), (r, 4, "c"))
    for i in range(x.shape[0]):
        eg = E.quantize_group([float(v) for v in x[i]], 8, "asymmetric", rounding="sr", rand=r[i].tolist(),
                              rand_bits=4, sr_variant="c")
        assert [int(v) for v in q[i]] == list(eg.q) and int(z[i]) == eg.zero_point


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_torch_backends_without_torch(backend):
    """With torch absent the torch and triton backends fail on the import (not as an unknown backend)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError):
            F.quantize(np.ones(4, np.float32), 8, backend=backend)
    else:
        pytest.skip("torch is installed: the backends are compared with numpy elsewhere")


def test_te_e2m1_8_at_its_decision_edges():
    """te_e2m1_8 compares floor(frac 2^(k+j)) + r 2^j + 1 with 2^(k+j), j = max(17 - bit length of n, 1): quotients
    x / 3 whose fraction puts that sum at exactly 2^(k+j) with the next fraction bit 0 (where a j one too large
    would not round up), for n = 0 (j = 17) and n >= 2^15 (j = 1), every r."""
    cases = []
    for r in range(1, 256):
        for n, big_l, j in ((0, 25, 17), (40000, 9, 1), (70001, 9, 1)):
            f0 = (1 << big_l) - 1 - (r << j)
            if f0 < 0:
                continue
            lo = (n + E.Fraction(f0, 1 << big_l)) * 3
            hi = (n + E.Fraction(2 * f0 + 1, 1 << (big_l + 1))) * 3
            x = np.float32(float(lo))
            while E.Fraction(float(x)) < lo:
                x = np.nextafter(x, np.float32(np.inf))
            if E.Fraction(float(x)) < hi:
                cases.append((x, r))
    assert len(cases) > 200
    xb = np.array([x for x, _ in cases], np.float32).view(np.int32)
    sb = np.full(len(cases), np.float32(3.0)).view(np.int32)
    r = np.array([v for _, v in cases], np.int64)
    got = F.round_magnitude(xb, sb, "sr", F.ops("numpy"), sr=(r, 8, "te_e2m1_8"))
    assert got.tolist() == [E.round_int(E.Fraction(float(x)) / 3, "sr", v, 8, "te_e2m1_8") for x, v in cases]
