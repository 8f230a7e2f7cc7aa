"""HiFloat4 (HiF4): the exact model against hand-worked units and the constants the format's reference publishes,
and the numpy kernel against the exact model on the driver's boundary and random units."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import BadValueError
from refarith.exact import hif4 as h
from refarith.exact import ops
from refarith.fast import hif4 as fh
from refarith.golden.drivers import get_driver
from refarith.spec import parse_spec


def test_e6m2_scale_format_range():
    # the reference's comments: 2^[-48, 15] * 1.M2, 2^15 * 1.75 is NaN, max 2^15 * 1.5 = 49152, min 2^-48
    f = h.SCALE_FMT
    assert ops.decode(0x00, f).mag == Fraction(1, 2**48)
    assert ops.decode(0xFE, f).mag == 49152
    assert ops.decode(0xFF, f).is_nan
    assert ops.decode((15 + 48) << 2 | 2, f).mag == Fraction(3, 2) * 2**15


def test_s1p2_elements_are_quarters():
    # S1P2: sign in bit 3, magnitude q/4 for the low three bits
    for c in range(16):
        v = ops.decode(c, h.ELEM_FMT)
        assert v.mag == Fraction(c & 7, 4) and v.sign == c >> 3


def test_constants_match_the_published_table():
    # bf16(1/7): 1/7 = 1.001001001...b * 2^-3; seven fraction bits 0010010, the rest 01... rounds down
    assert h.C7 == Fraction(128 + 18, 128) / 8 == Fraction(73, 512)
    # the hardware reciprocal table of the reference (E6M2_REC): significand bits 0, 77, 43, 18, exponent -E
    # for M = 0 and -E - 1 otherwise
    for m, m7 in enumerate((0, 77, 43, 18)):
        for e in (-48, -3, 0, 15):
            s = (4 + m) * Fraction(2) ** e / 4
            want = (1 + Fraction(m7, 128)) * Fraction(2) ** (-e if m == 0 else -e - 1)
            assert h.reciprocal(s) == want


def test_unit_of_sevens():
    # SF = bf16(7 * 73/512) = bf16(511/512): a tie between 255/256 and 1, to even -> 1; S = 1 (code 48 << 2);
    # R = 1; V8 * R = 7 >= 4 and V16 * R / 2 = 3.5 >= 2, so every d is 1 + 1; q = 7 exactly
    u = h.quantize_unit([7.0] * 32 + [-7.0] * 32)
    assert u.scale == 0xC0 and u.d8 == (1,) * 8 and u.d16 == (1,) * 16
    assert u.codes == (7,) * 32 + (15,) * 32
    assert [v.to_float() for v in h.unit_values(u)] == [7.0] * 32 + [-7.0] * 32


def test_unit_of_ones_and_saturation():
    # SF = 73/512 = 1.140625 * 2^-3, nearer 1.25 than 1 (midpoint 1.125): S = 1.25 * 2^-3 (code 45 << 2 | 1);
    # R = bf16(6.4) = (1 + 77/128) * 4 = 6.40625; d8 = d16 = 1; q = round(6.40625) = 6; value 0.9375
    u = h.quantize_unit([1.0] * 64)
    assert u.scale == 45 << 2 | 1 and u.d8_word == 0xFF and u.d16_word == 0xFFFF
    assert u.codes == (6,) * 64
    assert h.fake_quantize_unit([1.0] * 64) == (0x3F700000,) * 64
    # 1.1875: SF = bf16(1387/8192) = 1384/8192 = 1.3515625 * 2^-3 rounds to the same S; 1.1875 * 6.40625 =
    # 7.607 rounds to 8, beyond 7: the element saturates to q = 7, value 2^-3 * 1.25 * 4 * 7/4 = 1.09375
    u = h.quantize_unit([1.1875] * 64)
    assert u.scale == 45 << 2 | 1 and u.codes == (7,) * 64
    assert h.fake_quantize_unit([1.1875] * 64) == (0x3F8C0000,) * 64


def test_level_bits_and_ties_by_hand():
    # unit maximum 7 gives S = R = 1 (test above).  Group k is elements 8k..8k+7, subgroup j is 4j..4j+3.
    x = [0.0] * 64
    x[0] = 7.0  # group 0: V8 = 7 >= 4 (d8 = 1); subgroup 0: 7 / 2 >= 2 (d16 = 1); subgroup 1 is zero (d16 = 0)
    x[8] = 4.0  # group 1: V8 * R = 4 exactly, d8 = 1; subgroup 2: 4 / 2 = 2 exactly, d16 = 1
    x[16] = 3.999999761581421  # group 2: the binary32 below 4, d8 = 0; subgroup 4: >= 2, d16 = 1
    x[20] = 1.9999998807907104  # subgroup 5: the binary32 below 2, d16 = 0, so d = 0 there
    x[21] = 0.625  # d = 0: 0.625 * 4 = 2.5, a tie: away 3, even 2
    x[22] = -0.125  # d = 0: 0.5, a tie between 0 and 1: away -1/4 (code 9), even -0 (code 8)
    x[24] = 2.0  # group 3: d8 = 0; subgroup 6: 2 / 1 = 2, d16 = 1, so d = 1
    x[25] = 0.75  # d = 1: 0.75 * 2 = 1.5: away 2, even 2
    x[26] = 1.25  # d = 1: 2.5: away 3, even 2
    for ties, want in (("away", (3, 9, 2, 3)), ("even", (2, 8, 2, 2))):
        u = h.quantize_unit(x, elem_ties=ties)
        assert u.scale == 0xC0
        assert u.d8 == (1, 1, 0, 0, 0, 0, 0, 0)
        assert u.d16 == (1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        assert u.d8_word == 0b11000000 and u.d16_word == 0b1010101000000000
        assert (u.codes[21], u.codes[22], u.codes[25], u.codes[26]) == want
        # 7 * 2^0 = 7; 4 * 2^0 = 4; (4 - 2^-22) * 2^1 and (2 - 2^-23) * 2^2 round to 8 and saturate; 2 * 2^1 = 4
        assert (u.codes[0], u.codes[8], u.codes[16], u.codes[20], u.codes[24]) == (7, 4, 7, 7, 4)


def test_signed_zeros_and_negative_underflow():
    x = [1.0] * 62 + [-0.0, -1e-30]
    u = h.quantize_unit(x)
    assert u.codes[62] == 0 and u.codes[63] == 8  # -0.0 -> +0 code; a negative rounded to 0 -> -0 code
    vals = h.fake_quantize_unit(x)
    assert vals[62] == 0x00000000 and vals[63] == 0x80000000


def test_nan_or_inf_unit_is_nan():
    for bad in (float("nan"), float("inf"), float("-inf")):
        u = h.quantize_unit([1.0] * 10 + [bad] + [1.0] * 53)
        assert u.scale == 0xFF and u.codes == (0,) * 64 and u.d8_word == 0 and u.d16_word == 0
        assert h.fake_quantize_unit([bad] + [0.0] * 63) == (0x7FC00000,) * 64


def test_zero_unit_takes_the_smallest_scale():
    u = h.quantize_unit([0.0] * 64)
    assert u.scale == 0 and u.codes == (0,) * 64
    assert h.fake_quantize_unit([0.0] * 64) == (0,) * 64


def test_bad_input_is_refused():
    with pytest.raises(BadValueError, match="64 elements"):
        h.quantize_unit([1.0] * 63)
    with pytest.raises(BadValueError, match="multiple of 64"):
        h.quantize([1.0] * 65)
    with pytest.raises(BadValueError, match="elem_ties"):
        h.quantize_unit([1.0] * 64, elem_ties="odd")
    with pytest.raises(BadValueError, match="multiple of 64"):
        fh.hif4_quantize(np.ones(96, dtype=np.float32))
    with pytest.raises(BadValueError, match="float32"):
        fh.hif4_quantize(np.ones(64))
    with pytest.raises(BadValueError, match="numpy, torch, triton kernels"):
        fh.hif4_quantize(np.ones(64, dtype=np.float32), backend="cuda")


def _fast_matches_exact(sid: str, n_random: int, backend: str = "numpy") -> int:
    sp = parse_spec(sid)
    d = get_driver(sp)
    vecs = d.boundary(sp) + d.random(sp, n_random, 7)
    outs = d.fast(sp, (np.array(vecs, dtype=np.uint32),), backend)
    got = np.concatenate([np.asarray(o).astype(np.int64).reshape(len(vecs), -1) for o in outs], axis=1)
    for i, v in enumerate(vecs):
        assert tuple(int(t) for t in got[i]) == d.exact(sp, v), (sid, i)
    return len(vecs)


def test_numpy_kernel_equals_exact_model_default():
    assert _fast_matches_exact("hif4_quantize()", 16) > 100


def test_torch_kernel_equals_exact_model_default():
    pytest.importorskip("torch", reason="torch is not installed: the torch HiF4 kernel is not checked")
    assert _fast_matches_exact("hif4_quantize()", 0, "torch") > 100


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("sid", ["hif4_fake_quantize()", "hif4_quantize(scale_ties=away)",
                                 "hif4_quantize(elem_ties=even)", "hif4_fake_quantize(scale_ties=away,elem_ties=even)"])
def test_kernels_equal_exact_model_variants(sid, backend):
    if backend == "torch":
        pytest.importorskip("torch", reason="torch is not installed: the torch HiF4 kernel is not checked")
    assert _fast_matches_exact(sid, 64, backend) > 100


def test_axis_and_shape():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((128, 3)).astype(np.float32)
    s, w8, w16, c = fh.hif4_quantize(x, axis=0)
    assert s.shape == (2, 3) and c.shape == (128, 3)
    for col in range(3):
        for u in range(2):
            ref = h.quantize_unit([float(t) for t in x[64 * u:64 * u + 64, col]])
            assert (int(s[u, col]), int(w8[u, col]), int(w16[u, col])) == (ref.scale, ref.d8_word, ref.d16_word)
            assert tuple(int(t) for t in c[64 * u:64 * u + 64, col]) == ref.codes
    y = fh.hif4_fake_quantize(x, axis=0)
    assert y.shape == x.shape and y.dtype == np.float32


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["scale_ties=away", "elem_ties=even"])
def test_identify_names_the_hif4_tie_rule(variant):
    from refarith.certify.adapters import Kernel
    from refarith.certify.identify import identify

    want = parse_spec(f"hif4_quantize({variant})")
    d = get_driver(want)
    k = Kernel(f"refarith:numpy[{want}]", lambda spec, operands: d.fast(want, operands, "numpy"), "test")
    scores = identify(k, "hif4_quantize()")
    assert [s.spec for s in scores if s.matches and s.outside_domain == 0] == [str(want)]


def test_kernel_reciprocal_on_every_scale():
    # the kernel reads R = bf16(1/S) as R_sig * 2^(-E - 7 - [M > 0]) from four significands: equal to the exact
    # model's reciprocal for all 255 finite scale codes, and to the reference's hardware table E6M2_REC
    assert fh._REC_SIG == (128, 128 + 77, 128 + 43, 128 + 18)
    for c in range(255):
        e, m = (c >> 2) - 48, c & 3
        sv = ops.decode(c, h.SCALE_FMT).mag
        assert fh._REC_SIG[m] * Fraction(2) ** (-e - 7 - (m > 0)) == h.reciprocal(sv), c


def test_quantize_api_backends_and_npz_round_trip(tmp_path, capsys):
    import refarith
    from refarith.cli import main

    x = np.random.default_rng(5).standard_normal((3, 128)).astype(np.float32)
    x[1, 70] = np.inf
    q = refarith.quantize(x, "hif4", elem_ties="even")
    assert q.spec == "hif4_quantize(scale_ties=even,elem_ties=even)"
    ex = refarith.quantize(x, "hif4", elem_ties="even", backend="exact")
    for a, b in ((q.codes, ex.codes), (q.scales, ex.scales), (q.levels[0], ex.levels[0]), (q.levels[1], ex.levels[1])):
        assert a.dtype == b.dtype and (a == b).all()
    y = refarith.dequantize(q)
    want = fh.hif4_fake_quantize(x, elem_ties="even")
    assert (y.view(np.uint32) == want.view(np.uint32)).all() and np.isnan(y[1, 64:]).all()
    np.save(tmp_path / "x.npy", x[:, ::-1].T.copy())
    assert main(["quantize", "--format", "hif4", "--axis", "0", str(tmp_path / "x.npy"), "-o",
                 str(tmp_path / "q.npz")]) == 0
    back = refarith.load_quantized(tmp_path / "q.npz")
    direct = refarith.quantize(x[:, ::-1].T.copy(), "hif4", axis=0)
    assert back.spec == direct.spec and (back.codes == direct.codes).all()
    assert (back.levels[1] == direct.levels[1]).all() and (back.scales == direct.scales).all()
    with pytest.raises(BadValueError, match="unknown HiF4 parameter"):
        refarith.quantize(x, "hif4", tile="16x16")
    with pytest.raises(BadValueError, match="no scale= rule"):
        refarith.quantize(x, "hif4", scale="ceil")
    with pytest.raises(BadValueError, match="units are 64"):
        refarith.quantize(x, "hif4", block=32)
    arrays = dict(np.load(tmp_path / "q.npz", allow_pickle=False))
    arrays["d16"] = arrays["d16"].astype(np.uint8)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(BadValueError, match="d16 must be uint16"):
        refarith.load_quantized(tmp_path / "bad.npz")
