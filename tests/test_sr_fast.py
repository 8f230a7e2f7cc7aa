"""Fast stochastic casts (numpy, torch, Triton interpreter) bit-exact with the exact model for every variant.

Expected codes come from :func:`refarith.exact.ops.cast` (the exact model).  Small formats: every code x every
r for small k; wide sources: boundary values and seeded random samples, each with random r.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from refarith.errors import BadValueError, SpecialValueError, UnknownModeError
from refarith.exact import ops
from refarith.fast.cast import encode
from refarith.formats import get_format

VARIANT_K = [("a", 2), ("b", 2), ("c", 2), ("c_odd", 2), ("b", 4), ("c_odd", 4)]


def _exact(codes, r, src, dst, variant, k, **kw):
    out = []
    for c, rr in zip(codes, r):
        out.append(ops.cast(int(c), src, dst, "sr", rand=int(rr), rand_bits=k, sr_variant=variant, **kw).code)
    return np.array(out)


@pytest.mark.parametrize("variant,k", VARIANT_K)
@pytest.mark.parametrize("src,dst,kw", [("ocp_e5m2", "ocp_e2m1", {"nan_policy": "max"}),
                                        ("ocp_e5m2", "ocp_e4m3", {}),
                                        ("ocp_e4m3", "ocp_e3m2", {"nan_policy": "max"}),
                                        ("ocp_e5m2", "e8m0", {"negative": "clamp"})])
def test_numpy_exhaustive_small(variant, k, src, dst, kw):
    sf = get_format(src)
    codes = np.repeat(np.arange(sf.ncodes), 1 << k)
    r = np.tile(np.arange(1 << k), sf.ncodes)
    got = encode(codes.astype(np.uint8), dst, "sr", rand=r, rand_bits=k, src=src, sr_variant=variant, **kw)
    np.testing.assert_array_equal(got, _exact(codes, r, src, dst, variant, k, **kw))


@pytest.mark.parametrize("rs", [pytest.param(range(256), marks=pytest.mark.slow), (0, 1, 127, 128, 200, 254, 255)])
def test_numpy_exhaustive_te_e2m1_8(rs):
    sf = get_format("ocp_e4m3")
    rs = np.array(list(rs))
    codes = np.repeat(np.arange(sf.ncodes), rs.size)
    r = np.tile(rs, sf.ncodes)
    got = encode(codes.astype(np.uint8), "ocp_e2m1", "sr", nan_policy="max", rand=r, rand_bits=8, src="ocp_e4m3",
                 sr_variant="te_e2m1_8")
    np.testing.assert_array_equal(got, _exact(codes, r, "ocp_e4m3", "ocp_e2m1", "te_e2m1_8", 8, nan_policy="max"))


def _binary32_sample(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rand = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    # finite magnitudes near the narrow formats' ranges (exponent fields 100..140), and a few tiny ones
    near = (rng.integers(100, 141, n).astype(np.uint32) << 23) | (rand & 0x7FFFFF) | (rand & 0x80000000)
    tiny = (rng.integers(1, 100, n // 8).astype(np.uint32) << 23) | (rand[: n // 8] & 0x807FFFFF)
    return np.concatenate([near, tiny, np.array([0, 0x80000000, 0x7F800000, 0x00000001], dtype=np.uint32)])


@pytest.mark.parametrize("variant,k", [("a", 8), ("b", 8), ("c", 8), ("c_odd", 8), ("b", 13), ("c", 16)])
@pytest.mark.parametrize("dst", ["ocp_e4m3", "ocp_e5m2", "binary16"])
def test_numpy_binary32_sampled(variant, k, dst):
    bits = _binary32_sample(400, 7 + k)
    r = np.random.default_rng(k).integers(0, 1 << k, bits.size)
    kw = {"overflow": "saturate"}
    got = encode(bits.view(np.float32), dst, "sr", rand=r, rand_bits=k, sr_variant=variant, **kw)
    np.testing.assert_array_equal(got, _exact(bits, r, "binary32", dst, variant, k, **kw))


def test_numpy_binary32_te_e2m1_8():
    bits = _binary32_sample(1500, 3)
    r = np.random.default_rng(5).integers(0, 256, bits.size)
    r[::7] = 255
    got = encode(bits.view(np.float32), "ocp_e2m1", "sr", rand=r, rand_bits=8, sr_variant="te_e2m1_8")
    np.testing.assert_array_equal(got, _exact(bits, r, "binary32", "ocp_e2m1", "te_e2m1_8", 8))


@pytest.mark.parametrize("variant,k", [("b", 6), ("c", 6), ("c_odd", 11)])
def test_numpy_binary64_and_int_sources(variant, k):
    rng = np.random.default_rng(k)
    x = rng.standard_normal(300) * 2.0 ** rng.integers(-20, 12, 300)
    r = rng.integers(0, 1 << k, x.size)
    got = encode(x, "ocp_e4m3", "sr", overflow="saturate", rand=r, rand_bits=k, sr_variant=variant)
    want = [ops.encode(float(v), "ocp_e4m3", "sr", "saturate", rand=int(rr), rand_bits=k, sr_variant=variant).code
            for v, rr in zip(x, r)]
    np.testing.assert_array_equal(got, want)
    xi = rng.integers(-(1 << 31), 1 << 31, 300, dtype=np.int64).astype(np.int32)
    got = encode(xi, "binary16", "sr", overflow="saturate", rand=r, rand_bits=k, sr_variant=variant)
    want = [ops.encode(int(v), "binary16", "sr", "saturate", rand=int(rr), rand_bits=k, sr_variant=variant).code
            for v, rr in zip(xi, r)]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("variant,k", [("a", 3), ("b", 3), ("c", 3), ("c_odd", 3), ("te_e2m1_8", 8)])
def test_torch_equals_numpy(variant, k):
    torch = pytest.importorskip("torch")
    bits = _binary32_sample(4000, 11)
    r = np.random.default_rng(2).integers(0, 1 << k, bits.size)
    dst = "ocp_e2m1" if variant == "te_e2m1_8" else "ocp_e4m3"
    want = encode(bits.view(np.float32), dst, "sr", rand=r, rand_bits=k, sr_variant=variant, overflow="saturate")
    got = encode(torch.from_numpy(bits.view(np.float32)), dst, "sr", rand=torch.from_numpy(r), rand_bits=k,
                 sr_variant=variant, overflow="saturate", backend="torch")
    np.testing.assert_array_equal(got.numpy().astype(np.int64), want.astype(np.int64))
    # and the exact model on a slice
    np.testing.assert_array_equal(want[:300], _exact(bits[:300], r[:300], "binary32", dst, variant, k,
                                                     overflow="saturate"))


@pytest.mark.parametrize("dst,kw", [("ocp_e4m3", {"overflow": "nan"}),
                                    ("ocp_e2m1", {"overflow": "saturate", "nan_policy": "max"}),
                                    ("e8m0", {"overflow": "saturate", "negative": "clamp"}),
                                    ("ocp_e5m2", {"overflow": "inf"})])
@pytest.mark.parametrize("variant,k", [("a", 8), ("b", 5), ("c", 8), ("c_odd", 3), ("c", 11)])
def test_torch_table_path_against_the_exact_model(dst, kw, variant, k):
    """The torch int32 table path (``_encode_sr_torch``, both its gather and its clamped-exponent readings) on
    float32 tensors: codes equal to the exact model's, bits below F included (c, c_odd with odd F)."""
    torch = pytest.importorskip("torch")
    from refarith.fast import cast

    bits = _binary32_sample(160, 31 + k)
    # and short significands: ties at every position, where the bits below F are zero
    rng = np.random.default_rng(k)
    bits = np.concatenate([bits, bits[:120] & ~((np.uint32(1) << rng.integers(4, 23, 120).astype(np.uint32)) - 1)])
    r = rng.integers(0, 1 << k, bits.size).astype(np.uint8 if k <= 8 else np.int64)
    fmt = get_format(dst)
    neg = kw.get("negative", "error")
    got = cast._encode_sr_torch(torch.from_numpy(bits.view(np.float32)).view(torch.int32), fmt, kw["overflow"],
                                kw.get("nan_policy", "error"), neg, torch.from_numpy(r), k, variant)
    assert got is not None  # the path under test applies to these settings
    want = _exact(bits, r, "binary32", dst, variant, k, **kw)
    np.testing.assert_array_equal(got.numpy().astype(np.int64), want)


def test_torch_table_path_in_chunks(monkeypatch):
    """Chunk boundaries of the torch table path (chunks of 64 here, 2^18 elements on CPU): the exact model's codes,
    and the error position counted over the whole tensor."""
    torch = pytest.importorskip("torch")
    from refarith.fast import cast

    monkeypatch.setattr(cast, "_TORCH_SR_CHUNK", 64)
    bits = _binary32_sample(250, 77)
    r = np.random.default_rng(77).integers(0, 16, bits.size)
    got = encode(torch.from_numpy(bits.view(np.float32)), "ocp_e2m1", "sr", rand=torch.from_numpy(r), rand_bits=4,
                 sr_variant="c", nan_policy="max", backend="torch")
    np.testing.assert_array_equal(got.numpy().astype(np.int64),
                                  _exact(bits, r, "binary32", "ocp_e2m1", "c", 4, nan_policy="max"))
    x = np.full(200, 1.5, dtype=np.float32)
    x[130] = np.nan
    with pytest.raises(SpecialValueError, match=r"element 130 "):
        encode(torch.from_numpy(x), "ocp_e2m1", "sr", rand=torch.zeros(200, dtype=torch.uint8), rand_bits=8,
               backend="torch")


def test_torch_table_path_raises_as_the_exact_model():
    torch = pytest.importorskip("torch")
    x = np.array([1.0, 2.5, np.nan, 3.0], dtype=np.float32)
    with pytest.raises(SpecialValueError, match=r"element 2 \(bit pattern 0x7fc00000 of binary32\)"):
        encode(torch.from_numpy(x), "ocp_e2m1", "sr", rand=torch.tensor([1, 2, 3, 4]), rand_bits=8, backend="torch")
    with pytest.raises(SpecialValueError):
        ops.encode(float("nan"), "ocp_e2m1", "sr", rand=3, rand_bits=8)
    # an 8-bit target whose every code is in use (E8M0: 0xFF is NaN) and a negative under negative='error'
    x = np.array([1.0, 0.75, -2.0, 3.0], dtype=np.float32)
    with pytest.raises(SpecialValueError, match=r"element 2 \(bit pattern 0xc0000000 of binary32\)"):
        encode(torch.from_numpy(x), "e8m0", "sr", rand=torch.tensor([1, 2, 3, 4]), rand_bits=8, backend="torch")
    with pytest.raises(SpecialValueError):
        ops.encode(-2.0, "e8m0", "sr", rand=3, rand_bits=8)


@pytest.mark.parametrize("variant,k", [("b", 3), ("c", 3), ("c_odd", 2), ("te_e2m1_8", 8)])
def test_triton_interpreter_carries_the_variant(variant, k, monkeypatch):
    torch = pytest.importorskip("torch")
    pytest.importorskip("triton")
    bits = _binary32_sample(300, 21)
    r = np.random.default_rng(3).integers(0, 1 << k, bits.size)
    dst = "ocp_e2m1" if variant == "te_e2m1_8" else "ocp_e4m3"
    got = encode(torch.from_numpy(bits.view(np.float32)), dst, "sr", rand=torch.from_numpy(r), rand_bits=k,
                 sr_variant=variant, overflow="saturate", backend="triton")
    want = _exact(bits, r, "binary32", dst, variant, k, overflow="saturate")
    np.testing.assert_array_equal(got.cpu().numpy().astype(np.int64), want)


def test_bad_random_bits():
    x = np.array([1.3, 2.7], dtype=np.float32)
    with pytest.raises(UnknownModeError, match="needs rand"):
        encode(x, "ocp_e4m3", "sr", rand_bits=4, sr_variant="c")
    with pytest.raises(UnknownModeError, match=r"lie in \[0, 2\^4\)"):
        encode(x, "ocp_e4m3", "sr", rand=np.array([3, 16]), rand_bits=4, sr_variant="c")
    with pytest.raises(UnknownModeError, match="must hold integers"):
        encode(x, "ocp_e4m3", "sr", rand=np.array([0.5, 1.0]), rand_bits=4)
    with pytest.raises(UnknownModeError, match="k=8"):
        encode(x, "ocp_e2m1", "sr", rand=np.array([3, 1]), rand_bits=4, sr_variant="te_e2m1_8")
    with pytest.raises(BadValueError, match="does not fit 64-bit words"):
        encode(np.array([1.5]), "ocp_e4m3", "sr", rand=np.array([1]), rand_bits=63, sr_variant="b")


def test_numpy_path_without_torch():
    """The numpy SR path in a process where ``import torch`` fails (tests/conftest.py's REFARITH_NO_TORCH rule)."""
    code = (
        "import sys\n"
        "for m in ('torch', 'torchao', 'triton'): sys.modules[m] = None\n"
        "import numpy as np\n"
        "from refarith.fast.cast import encode\n"
        "from refarith.exact import ops\n"
        "x = np.arange(256, dtype=np.uint8); r = (np.arange(256) * 7) % 32\n"
        "for v in ('a', 'b', 'c', 'c_odd'):\n"
        "    got = encode(x, 'ocp_e4m3', 'sr', rand=r, rand_bits=5, src='ocp_e5m2', sr_variant=v)\n"
        "    want = [ops.cast(int(c), 'ocp_e5m2', 'ocp_e4m3', 'sr', rand=int(q), rand_bits=5, sr_variant=v).code\n"
        "            for c, q in zip(x, r)]\n"
        "    assert list(got) == want, v\n"
        "try:\n"
        "    import torch  # noqa: F401\n"
        "    raise SystemExit('torch imported')\n"
        "except ImportError:\n"
        "    print('ok')\n"
    )
    env = dict(os.environ, REFARITH_NO_TORCH="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("dst,overflow,kw", [("ocp_e4m3", "nan", {}), ("ocp_e5m2", "inf", {}),
                                             ("ocp_e2m3", "saturate", {"nan_policy": "max"}),
                                             ("e8m0", "nan", {"negative": "clamp"}),
                                             ("ocp_e2m1", "saturate", {"nan_policy": "zero"})])
def test_binary32_table_path_equals_the_bit_kernel(dst, overflow, kw):
    """refarith.fast.srfast (two tables and the decision) against cast_bits on the same words, every variant."""
    from refarith.fast import srfast
    from refarith.fast.bitops import NumpyBitOps
    from refarith.fast.castkernel import cast_bits

    bits = np.concatenate([_binary32_sample(3000, 17), np.array([0x7FC00000, 0xFF800000, 0x80000001], np.uint32)])
    f = get_format(dst)
    assert srfast.applies(f, overflow, kw.get("negative", "error"))
    for variant, k in [("a", 8), ("b", 5), ("c", 8), ("c_odd", 3)] + ([("te_e2m1_8", 8)] if dst == "ocp_e2m1" else []):
        r = np.random.default_rng(k).integers(0, 1 << k, bits.size)
        got, gerr = srfast.encode_sr(bits, f, overflow, kw.get("nan_policy", "error"), kw.get("negative", "error"),
                                     r, k, variant)
        ops = NumpyBitOps(32)
        want, werr = cast_bits(ops, bits, "binary32", f, "sr", overflow, kw.get("nan_policy", "error"),
                               kw.get("negative", "error"), r.astype(np.uint32), k, variant)
        werr = np.broadcast_to(werr, bits.shape)
        np.testing.assert_array_equal(gerr, werr)
        np.testing.assert_array_equal(np.where(werr, 0, got), np.where(werr, 0, want))


def test_binary32_large_k_and_subnormal_sources_against_the_exact_model():
    """Two readings of the fraction the table path once got wrong, checked against the exact model: a value far
    below the target's range with k = 19 (a clamped exponent table read significand bits as fraction bits), and
    binary32 subnormals in [2^-127, 2^-126), a binade of E8M0 whose ulp is 2^-127 (not 2^-126)."""
    cases = [("ocp_e4m3", 19, "a", [0x210088A7, 0xA10088A7, 0x00000001, 0x3C000001]),
             ("ocp_e4m3", 18, "b", [0x210088A7, 0x1F7FFFFF]),
             ("ocp_e5m2", 20, "a", [0x2A000FFF, 0x33FFFFFF]),
             ("e8m0", 8, "a", [0x004362DF, 0x00530291, 0x007FFFFF, 0x00400000, 0x00400001, 0x003FFFFF, 0x00800001]),
             ("e8m0", 8, "b", [0x004362DF, 0x007F0000]),
             ("e8m0", 5, "c", [0x004362DF, 0x00600000])]
    rng = np.random.default_rng(11)
    for dst, k, variant, words in cases:
        bits = np.repeat(np.array(words, dtype=np.uint32), 6)
        r = rng.integers(0, 1 << k, bits.size)
        r[::6] = (1 << k) - 1
        r[1::6] = 0
        kw = {"negative": "clamp"} if dst == "e8m0" else {}
        got = encode(bits.view(np.float32), dst, "sr", rand=r, rand_bits=k, sr_variant=variant, **kw)
        np.testing.assert_array_equal(got, _exact(bits, r, "binary32", dst, variant, k, **kw), err_msg=dst)


@pytest.mark.parametrize("dst,overflow", [("ocp_e2m1", "saturate"), ("e8m0", "nan"), ("ocp_e4m3", "nan")])
def test_binary32_two_operation_fraction_path_errors_and_dtypes(dst, overflow):
    """Variants a, b, c and c_odd take the path that reads the fraction with two operations (or a clamped
    exponent) and gathers at key << 1 | up; its codes and error flags (NaN into E2M1 under nan_policy='error', a
    negative into E8M0 under negative='error') equal cast_bits for uint8 and uint32 codes, with binary32
    subnormals and NaNs included, on data mostly below the target's normal range and on data mostly in it."""
    from refarith.fast import srfast
    from refarith.fast.bitops import NumpyBitOps
    from refarith.fast.castkernel import cast_bits

    rng = np.random.default_rng(23)
    sub = rng.integers(0, 1 << 23, 500).astype(np.uint32) | (rng.integers(0, 2, 500).astype(np.uint32) << 31)
    specials = np.array([0x7FC00000, 0xFFC00001, 0xFF800000, 0x80000000, 0x00400000], np.uint32)
    mixed = np.concatenate([_binary32_sample(2000, 29), sub, specials])
    # mostly the target's normal range and 1% below it: the path that patches the few elements below
    normal = (rng.integers(127, 131, 4000).astype(np.uint32) << 23) | rng.integers(0, 1 << 23, 4000).astype(np.uint32)
    normal |= rng.integers(0, 2, 4000).astype(np.uint32) << 31
    normal[::100] = sub[:40]
    f = get_format(dst)
    assert srfast.applies(f, overflow, "error")
    for variant, k in [("a", 8), ("b", 6), ("a", 2), ("c", 8), ("c_odd", 3)]:
        assert srfast._regular_plan(f, overflow, "error", "error", k + (variant != "a")) is not None
        for bits, out_dtype in ((mixed, np.uint8), (mixed, np.uint32), (normal, np.uint8)):
            r = rng.integers(0, 1 << k, bits.size)
            want, werr = cast_bits(NumpyBitOps(32), bits, "binary32", f, "sr", overflow, "error", "error",
                                   r.astype(np.uint32), k, variant)
            werr = np.broadcast_to(werr, bits.shape)
            if bits is mixed:
                assert werr.any() == (dst != "ocp_e4m3")
            got, gerr = srfast.encode_sr(bits, f, overflow, "error", "error", r.astype(np.uint8), k, variant,
                                         out_dtype)
            assert got.dtype == out_dtype
            np.testing.assert_array_equal(gerr, werr)
            np.testing.assert_array_equal(np.where(werr, 0, got), np.where(werr, 0, want))


@pytest.mark.parametrize("dst,overflow,kw", [("ocp_e4m3", "nan", {}), ("ocp_e5m2", "inf", {}),
                                             ("ocp_e2m1", "saturate", {}), ("e8m0", "saturate", {"negative": "clamp"})])
def test_binary32_carry_path_against_the_exact_model(dst, overflow, kw):
    """The carry reading of srfast (one add and one gather at (bits + add) >> d0; the fixed-point words for
    blocks mostly below the range) on its hard places, against the exact model: carries into the exponent and
    out of E = 254, ties at the bit below k, the lowest binade of the range and the one below it, NaN payloads
    whose sum would wrap, infinities, and the extremes of r; the filler that makes a block switch to
    fixed-point words against cast_bits."""
    from refarith.fast import srfast
    from refarith.fast.bitops import NumpyBitOps
    from refarith.fast.castkernel import cast_bits

    f = get_format(dst)
    neg = kw.get("negative", "error")
    e_reg = srfast._regular_plan(f, overflow, "error", neg, 8)[0]
    words = [0x7F7FFFFF, 0xFF7FFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 0x7F800001, 0x80000000, 0x00000001, 0x007FFFFF]
    if f.name != "ocp_e2m1":  # E2M1 has no NaN: NaN and infinity are errors under nan_policy='error'
        words += [0x7F800000, 0xFF800000, 0x7FC00000]
    for e in sorted({max(e_reg - 2, 0), max(e_reg - 1, 0), e_reg, e_reg + 1, 254}):
        for sig in (0, 0x7FFFFF, 0x7FF000, 0x000800, 0x000801, 0x7FE800):
            words += [e << 23 | sig, 0x80000000 | e << 23 | sig]
    words = np.array([w for w in words if f.name != "ocp_e2m1" or (w & 0x7F800000) != 0x7F800000], dtype=np.uint32)
    rng = np.random.default_rng(len(dst))
    for variant, k in [("a", 8), ("b", 8), ("c", 8), ("c_odd", 3)] + ([("te_e2m1_8", 8)] if dst == "ocp_e2m1" else []):
        assert srfast._carry_plan(f, overflow, "error", neg, variant, k, "|u1") is not None
        bits = np.repeat(words, 3)
        r = np.tile(np.array([0, (1 << k) - 1, 0]), words.size)
        r[2::3] = rng.integers(0, 1 << k, words.size)
        want = _exact(bits, r, "binary32", dst, variant, k, overflow=overflow, **kw)
        filler = (np.arange(400, dtype=np.uint32) % 20 + max(e_reg - 20, 0)) << 23 | np.uint32(0x2AAAAA)
        fr = np.arange(400) % (1 << k)
        fwant, _ = cast_bits(NumpyBitOps(32), filler, "binary32", f, "sr", overflow, "error", neg,
                             fr.astype(np.uint32), k, variant)
        for many_below in (False, True):  # the plain reading, and a block that switches to fixed-point words
            b, rr = (np.concatenate([bits, filler]), np.concatenate([r, fr])) if many_below else (bits, r)
            got, err = srfast.encode_sr(b, f, overflow, "error", neg, rr, k, variant)
            assert not err.any()
            np.testing.assert_array_equal(got[:bits.size], want, err_msg=f"{variant} k={k} {many_below}")
            if many_below:
                np.testing.assert_array_equal(got[bits.size:], fwant)


def test_binary32_carry_path_fixed_point_switch_is_used():
    """A block mostly below the target's range switches the carry path to fixed-point words (the second table of
    srfast._small_table) rather than sending those elements to the keyed path; both give the same codes."""
    from refarith.fast import srfast

    f = get_format("ocp_e2m1")
    plan = srfast._carry_plan(f, "saturate", "error", "error", "c", 8, "|u1")
    assert plan is not None and plan[3] is not None
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(1 << 17) * 0.5).astype(np.float32).view(np.uint32)  # mostly |x| < 1
    r = rng.integers(0, 256, x.size).astype(np.uint8)
    calls = []
    keyed = srfast._encode_sr_keyed

    def counting(bits, *a):
        calls.append(bits.size)
        return keyed(bits, *a)

    srfast._encode_sr_keyed = counting
    try:
        got, _ = srfast.encode_sr(x, f, "saturate", "error", "error", r, 8, "c")
    finally:
        srfast._encode_sr_keyed = keyed
    assert sum(calls) < x.size // 100  # only the few marked elements go to the keyed path
    want, _ = keyed(x, f, "saturate", "error", "error", r, 8, "c", np.uint8)
    np.testing.assert_array_equal(got, want)


_STRATA = [("ocp_e4m3", "nan", v, 8) for v in ("a", "b", "c", "c_odd")] + \
    [("ocp_e5m2", "inf", v, 8) for v in ("a", "b", "c", "c_odd")] + \
    [("ocp_e2m1", "saturate", v, 8) for v in ("a", "b", "c", "c_odd", "te_e2m1_8")] + \
    [("e8m0", "saturate", "a", 8), ("ocp_e4m3", "saturate", "c", 3), ("ocp_e5m2", "saturate", "b", 13)]


@pytest.mark.slow
@pytest.mark.parametrize("dst,overflow,variant,k", _STRATA)
def test_binary32_carry_path_every_high_half(dst, overflow, variant, k):
    """srfast (carry reading, both its plain and fixed-point blocks) against cast_bits, the kernel the
    cast.binary32->*.sr theorems prove, on every high half of a binary32 pattern (sign, exponent, 7 mantissa
    bits: 2^16 values, in order, so whole blocks lie below the target's range) x 128 low halves (every value of
    bits 12..15 x 8 patterns of bits 0..11: 0, 1, 0x7FF, 0x800, 0x801, 0xFFF and two seeded ones), with seeded r
    and r = 0, 2^k - 1 on every 11th / 7th element: 8388608 patterns."""
    from refarith.fast import srfast
    from refarith.fast.bitops import NumpyBitOps
    from refarith.fast.castkernel import cast_bits

    rng = np.random.default_rng(2026)
    lows = np.array([h << 12 | lo for h in range(16)
                     for lo in (0, 1, 0x7FF, 0x800, 0x801, 0xFFF, *rng.integers(0, 4096, 2).tolist())], np.uint32)
    f = get_format(dst)
    neg = "clamp" if dst == "e8m0" else "error"
    assert srfast._carry_plan(f, overflow, "error", neg, variant, k, "|u1") is not None
    for hi0 in range(0, 1 << 16, 1 << 14):
        hi = np.arange(hi0, hi0 + (1 << 14), dtype=np.uint32)
        b = ((hi[:, None] << np.uint32(16)) | lows[None, :]).ravel()
        r = rng.integers(0, 1 << k, b.size).astype(np.uint32)
        r[::7] = (1 << k) - 1
        r[::11] = 0
        got, gerr = srfast.encode_sr(b, f, overflow, "error", neg, r.astype(np.uint8) if k <= 8 else r, k, variant,
                                     np.uint8)
        want, werr = cast_bits(NumpyBitOps(32), b, "binary32", f, "sr", overflow, "error", neg, r, k, variant)
        werr = np.broadcast_to(werr, b.shape)
        np.testing.assert_array_equal(gerr, werr)
        np.testing.assert_array_equal(np.where(werr, 0, got), np.where(werr, 0, want))
