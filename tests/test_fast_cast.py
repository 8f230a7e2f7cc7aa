"""refarith.fast encode (numpy LUT paths, numpy bit kernel, torch) against the exact model.

Expected codes always come from refarith.exact (cast / round_value), memoized
per (source, target, modes, input) within this module because the exact model
costs tens of microseconds per value.
"""

from __future__ import annotations

import zlib
from fractions import Fraction

import numpy as np
import pytest

from refarith import fast
from refarith.errors import BadValueError, BitPatternError, SpecialValueError, UnknownModeError
from refarith.exact import ops as exact
from refarith.exact.rounding import default_overflow, round_value
from refarith.exact.value import Value
from refarith.fast import cast as fast_cast
from refarith.fast.bitops import NumpyBitOps
from refarith.fast.castkernel import cast_bits, required_width, sticky_key_suffices
from refarith.formats import FloatFormat, float_formats, get_format

# ------------------------------------------------------------------ exact reference (memoized)
_MEMO: dict = {}
_DECODED: dict = {}


def _decoded(src: str, code: int) -> Value:
    key = (src, code)
    v = _DECODED.get(key)
    if v is None:
        v = _DECODED[key] = exact.decode(code, src)
    return v


def exact_one(src: str, dst: str, code: int, **kw) -> int:
    """Exact code, or -1 where the exact model raises SpecialValueError."""
    key = (src, dst, tuple(sorted(kw.items())), code)
    r = _MEMO.get(key)
    if r is None:
        try:
            r = round_value(_decoded(src, code), dst, **kw).code
        except SpecialValueError:
            r = -1
        _MEMO[key] = r
    return r


def exact_codes(src: str, dst: str, codes, **kw) -> np.ndarray:
    return np.array([exact_one(src, dst, int(c), **kw) for c in codes], dtype=np.int64)


def kernel_numpy(src: str, dst: str, codes, **kw) -> np.ndarray:
    """cast_bits through NumpyBitOps; -1 where the error mask is set."""
    ops = NumpyBitOps(required_width(src, dst, kw.get("rand_bits")))
    r = kw.pop("r", None)
    x = ops.word(np.asarray(codes))
    res, err = cast_bits(ops, x, src, dst, r=None if r is None else ops.word(r), **kw)
    res = np.broadcast_to(res, x.shape).astype(np.int64)
    return np.where(np.broadcast_to(err, x.shape), -1, res)


def kernel_torch(src: str, dst: str, codes, **kw) -> np.ndarray:
    torch = pytest.importorskip("torch", reason="torch not installed: torch backend untested")
    from refarith.fast.bitops import TorchBitOps

    width = required_width(src, dst, kw.get("rand_bits"))
    ops = TorchBitOps(width)
    r = kw.pop("r", None)
    c = np.asarray(codes).astype(np.uint64)
    x = torch.from_numpy(c.view(np.int64).copy())
    if width == 32:
        x = x & 0xFFFFFFFF
    rr = None if r is None else torch.from_numpy(np.asarray(r).astype(np.int64))
    res, err = cast_bits(ops, x, src, dst, r=rr, **kw)
    res = torch.broadcast_to(res, x.shape).numpy().astype(np.int64)
    err = torch.broadcast_to(torch.as_tensor(err), x.shape).numpy()
    return np.where(err, -1, res)


def assert_same(got: np.ndarray, want: np.ndarray, codes, what: str) -> None:
    got = np.asarray(got, dtype=np.int64)
    bad = np.flatnonzero(got != want)
    if bad.size:
        i = bad[0]
        raise AssertionError(f"{what}: {bad.size} mismatches; first input {int(codes[i]):#x}: got {got[i]}, "
                             f"exact {want[i]} (-1 = SpecialValueError)")


def mode_matrix(dst: str):
    """Every (rounding, overflow, nan_policy, negative) combination valid for dst (no sr)."""
    f = get_format(dst)
    out = []
    for rounding in ("rne", "rna", "rtz", "rup", "rdn", "rto"):
        for ov in ("saturate", "inf", "nan"):
            if (ov == "inf" and not f.has_inf) or (ov == "nan" and not f.has_nan):
                continue
            for nanp in (("error", "zero", "max") if not f.has_nan else ("error",)):
                for neg in (("error", "clamp") if not f.signed else ("error",)):
                    out.append(dict(rounding=rounding, overflow=ov, nan_policy=nanp, negative=neg))
    return out


SMALL = [f.name for f in float_formats(8)] + ["ue5m3"]
# exhaustive from binary16 and bfloat16 in the default run (the other formats of 8 bits or fewer: sampled in the
# default run, exhaustive under -m slow; the exact model's cost, ~20 us per value, sets this budget)
CORE = ["ocp_e4m3", "ocp_e5m2", "ocp_e2m1", "e8m0", "e4m3fnuz", "binary8p3se", "ue4m3", "ue5m3"]
CORE_B16: list[str] = []
REPRESENTATIVE = ["ocp_e4m3", "ocp_e5m2", "ocp_e2m1", "e8m0", "e4m3fnuz", "binary8p3se"]
ALL16 = np.arange(1 << 16, dtype=np.uint32)


def _sample16(src: str, n: int, seed: int) -> np.ndarray:
    """Specials, signed zeros, subnormal/normal edges and n random codes of a 16-bit source."""
    f = get_format(src)
    fixed = {0, 1, 2, f.mmask, f.mmask + 1, f.mmask + 2, f.max_code, f.max_code - 1, f.emask << f.mbits,
             (f.emask << f.mbits) + 1, (f.emask << f.mbits) | (1 << (f.mbits - 1)), 0xFFFF}
    fixed |= {c | 0x8000 for c in list(fixed)}
    for e in range(f.emask + 1):  # powers of two and their neighbours
        c = e << f.mbits
        fixed |= {c, (c + 1) & 0x7FFF, (c - 1) & 0x7FFF, c | 0x8000}
    rng = np.random.default_rng(seed)
    return np.unique(np.concatenate([np.array(sorted(fixed), dtype=np.uint32),
                                     rng.integers(0, 1 << 16, n).astype(np.uint32)]))


# ------------------------------------------------------------------ 16-bit sources, exhaustive, rne default
@pytest.fixture(autouse=True, scope="module")
def _torch_one_thread():
    """One torch thread: the kernels are many small elementwise ops, which oversubscribed threads slow down."""
    try:
        import torch
    except ImportError:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def committed_or_exact(src: str, dst: str) -> np.ndarray:
    """Exact-model codes of cast(src->dst) (its default rounding and overflow) on all 2^16 source codes, -1 where
    it raises: read from the committed exhaustive golden file of that spec when there is one (generated by the
    exact model, its hash checked against the MANIFEST on load, regenerated byte for byte by `refarith golden
    verify` in CI), else computed by the exact model."""
    from refarith.golden.fileformat import load
    from refarith.golden.generate import default_dir, read_manifest
    from refarith.spec import parse_spec

    spec = str(parse_spec(f"cast({src}->{dst})"))
    files = read_manifest(default_dir())["files"]
    hit = [(name, e) for name, e in files.items() if e["spec"] == spec and e["rule"] == "exhaustive"]
    if not hit:
        return exact_codes(src, dst, ALL16)
    (name, e), = hit
    g = load(default_dir() / name, e["sha256"])
    want = np.full(1 << 16, -2, dtype=np.int64)
    want[np.asarray(g.inputs[0], dtype=np.int64)] = np.where(g.raises, -1, np.asarray(g.outputs).reshape(-1))
    assert (want >= -1).all(), f"{name}: not every source code"
    return want


@pytest.mark.parametrize("src,dst", [(s, d) for d in CORE for s in ("binary16", "bfloat16")]
                         + [("binary16", d) for d in CORE_B16])
def test_16bit_sources_exhaustive_rne(src, dst):
    want = committed_or_exact(src, dst)
    assert_same(kernel_numpy(src, dst, ALL16, rounding="rne"), want, ALL16, f"numpy kernel {src}->{dst}")
    ok = want != -1  # the front end raises on the others (tested in test_encode_errors_raise)
    got = fast.encode(ALL16[ok].astype(np.uint16), dst, src=src)
    assert_same(got, want[ok], ALL16[ok], f"numpy LUT {src}->{dst}")
    assert_same(kernel_torch(src, dst, ALL16, rounding="rne"), want, ALL16, f"torch kernel {src}->{dst}")


@pytest.mark.parametrize("src,dst", [(s, d) for d in SMALL if d not in CORE + CORE_B16
                                     for s in ("binary16", "bfloat16")] + [("bfloat16", d) for d in CORE_B16])
def test_16bit_sources_sampled_rne(src, dst):
    codes = _sample16(src, 600, seed=zlib.crc32(f"{src}->{dst}".encode()))
    want = exact_codes(src, dst, codes)
    assert_same(kernel_numpy(src, dst, codes, rounding="rne"), want, codes, f"numpy kernel {src}->{dst}")
    ok = want != -1
    got = fast.encode(codes[ok].astype(np.uint16), dst, src=src)
    assert_same(got, want[ok], codes[ok], f"numpy LUT {src}->{dst}")


@pytest.mark.slow
@pytest.mark.parametrize("src,dst", [(s, d) for d in SMALL if d not in CORE + CORE_B16
                                     for s in ("binary16", "bfloat16")] + [("bfloat16", d) for d in CORE_B16])
def test_16bit_sources_exhaustive_rne_all_formats(src, dst):
    want = exact_codes(src, dst, ALL16)
    assert_same(kernel_numpy(src, dst, ALL16, rounding="rne"), want, ALL16, f"numpy kernel {src}->{dst}")
    assert_same(kernel_torch(src, dst, ALL16, rounding="rne"), want, ALL16, f"torch kernel {src}->{dst}")


@pytest.mark.parametrize("src", ["binary16", "bfloat16"])
@pytest.mark.parametrize("dst", REPRESENTATIVE)
def test_16bit_sources_mode_matrix_sampled(src, dst):
    codes = _sample16(src, 250, seed=7)
    for kw in mode_matrix(dst):
        want = exact_codes(src, dst, codes, **kw)
        assert_same(kernel_numpy(src, dst, codes, **kw), want, codes, f"numpy kernel {src}->{dst} {kw}")
        tab, etab, _ = fast_cast.code_table(get_format(src), get_format(dst), kw["rounding"], kw["overflow"],
                                            kw["nan_policy"], kw["negative"])
        lut = np.where(etab[codes], -1, tab[codes].astype(np.int64))
        assert_same(lut, want, codes, f"LUT {src}->{dst} {kw}")
    kw = mode_matrix(dst)[-1]
    assert_same(kernel_torch(src, dst, codes, **kw), exact_codes(src, dst, codes, **kw), codes,
                f"torch kernel {src}->{dst} {kw}")


@pytest.mark.slow
@pytest.mark.parametrize("src", ["binary16", "bfloat16"])
@pytest.mark.parametrize("dst", REPRESENTATIVE)
def test_16bit_sources_mode_matrix_exhaustive(src, dst):
    for kw in mode_matrix(dst):
        want = exact_codes(src, dst, ALL16, **kw)
        assert_same(kernel_numpy(src, dst, ALL16, **kw), want, ALL16, f"numpy kernel {src}->{dst} {kw}")
        assert_same(kernel_torch(src, dst, ALL16, **kw), want, ALL16, f"torch kernel {src}->{dst} {kw}")


def test_small_sources_into_wider_targets():
    """Sources narrower than the target (significand shifted left) and sources without zero or with fnuz NaN."""
    for src in ("ocp_e2m1", "ocp_e3m2", "e8m0", "e4m3fnuz", "binary8p3se", "ue4m3"):
        codes = np.arange(get_format(src).ncodes, dtype=np.uint32)
        for dst in ("binary16", "bfloat16", "ocp_e4m3", "e2m3_nosub", "ue5m3", "e8m0"):
            for kw in (dict(rounding="rne"), dict(rounding="rdn", negative="clamp", nan_policy="max")):
                f = get_format(dst)
                kw = dict(kw)
                if f.signed:
                    kw.pop("negative", None)
                if f.has_nan:
                    kw.pop("nan_policy", None)
                want = exact_codes(src, dst, codes, **kw)
                assert_same(kernel_numpy(src, dst, codes, **kw), want, codes, f"{src}->{dst} {kw}")


def test_parametric_targets():
    codes = _sample16("binary16", 400, seed=3)
    for dst in ("e3m4_fn_nosub", "e5m10", "e2m0_none", "ue3m2", "e4m3b-2_p3109e", "e6m9_fnuz", "ue7m0_p3109f"):
        for kw in (dict(rounding="rne"), dict(rounding="rto", overflow="saturate"), dict(rounding="rup")):
            want = exact_codes("binary16", dst, codes, **kw)
            assert_same(kernel_numpy("binary16", dst, codes, **kw), want, codes, f"binary16->{dst} {kw}")


# ------------------------------------------------------------------ binary32
def _f32_bits(fr: Fraction) -> int | None:
    if fr >= Fraction(2) ** 128:
        return None
    f = float(fr)
    if Fraction(f) != fr:
        return None
    b = np.array([f], dtype=np.float32)
    if Fraction(float(b[0])) != fr:
        return None
    return int(b.view(np.uint32)[0])


def _floor_log2(v: Fraction) -> int:
    e = v.numerator.bit_length() - v.denominator.bit_length()
    return e - 1 if v < Fraction(2) ** e else e


def boundary_f32(dst: str) -> np.ndarray:
    """Signed zeros, NaN/inf, source subnormal edges, every target value and midpoint, the overflow
    threshold, powers of two, each with +-1 and +-2 ulp neighbours, both signs."""
    f = get_format(dst)
    pts: set[int] = {0, 1, 2, 0x7FFFFF, 0x800000, 0x800001, 0x7F800000, 0x7F800001, 0x7FC00000, 0x7FFFFFFF,
                     0x7F7FFFFF, 0x7F80FFFF, 0x7FBF0000}
    if f.ncodes <= 512:
        codes = range(f.ncodes)
    else:  # wide targets: the edges of every binade and a few codes inside
        codes = sorted({(e << f.mbits) + m for e in range(f.emask + 1)
                        for m in (0, 1, 2, f.mmask // 2, f.mmask // 2 + 1, f.mmask - 1, f.mmask)})
    codes = [c for c in codes if f.is_finite_code(c)]
    vals = sorted({abs(f.finite_value(c)) for c in codes})
    step = Fraction(2) ** (f.emin - f.mbits)  # midpoints to both neighbours (on the grid of each binade)
    mids = []
    for v in vals:
        ulp = max(step, Fraction(2) ** (max(f.emin, _floor_log2(v)) - f.mbits)) if v else step
        mids += [v + ulp / 2, v - ulp / 4 if v else ulp / 2]
    mids += [(a + b) / 2 for a, b in zip(vals, vals[1:])]
    ulp_top = Fraction(2) ** (f.emax - f.mbits)
    extra = [f.max + ulp_top / 2, f.max + ulp_top, vals[1] / 2 if len(vals) > 1 else vals[0] / 2, vals[0] / 2]
    for fr in vals + mids + extra:
        b = _f32_bits(fr)
        if b is not None:
            pts.add(b)
    for e in range(-149, 128):
        b = _f32_bits(Fraction(2) ** e)
        if b is not None:
            pts.add(b)
    out = set()
    for b in pts:
        for dlt in (-2, -1, 0, 1, 2):
            v = b + dlt
            if 0 <= v <= 0x7FFFFFFF:
                out.add(v)
                out.add(v | 0x80000000)
    return np.array(sorted(out), dtype=np.uint32)


def random_f32(dst: str, n: int, seed: int) -> np.ndarray:
    """n seeded binary32 patterns: normal values at the target's scale (with outliers), boundary points
    moved by random low bits, and patterns from a pool of 8192 random top halves with random low halves."""
    f = get_format(dst)
    rng = np.random.default_rng(seed)
    scale = float(f.max) / 4
    a = (rng.standard_normal(n // 2) * scale).astype(np.float32).view(np.uint32)
    with np.errstate(over="ignore"):
        a[: n // 50] = (rng.standard_normal(n // 50) * scale * 1e3).astype(np.float32).view(np.uint32)
    bnd = boundary_f32(dst)
    b = bnd[rng.integers(0, bnd.size, n // 4)] ^ rng.integers(0, 1 << 16, n // 4, dtype=np.uint32)
    pool = rng.integers(0, 1 << 16, 8192, dtype=np.uint32)
    m = n - a.size - b.size
    c = (pool[rng.integers(0, pool.size, m)] << np.uint32(16)) | rng.integers(0, 1 << 16, m, dtype=np.uint32)
    return np.concatenate([a, b, c]).astype(np.uint32)


LUT_TARGETS = ["ocp_e4m3", "ocp_e5m2", "ocp_e3m2", "ocp_e2m3", "ocp_e2m1", "e8m0", "e4m3fnuz", "binary8p3se",
               "ue4m3"]


def test_sticky_key_suffices_catalogue():
    for f in float_formats(8):
        assert sticky_key_suffices(f) == (f.mbits <= 6), f.name
    assert not sticky_key_suffices("bfloat16")
    assert not sticky_key_suffices("binary16")
    assert not sticky_key_suffices("e8m3b141")  # target ulp below binary32's: the low bits matter


@pytest.mark.parametrize("dst", LUT_TARGETS)
def test_binary32_boundaries(dst):
    bits = boundary_f32(dst)
    kw = dict(nan_policy="max") if not get_format(dst).has_nan else {}
    if not get_format(dst).signed:
        kw["negative"] = "clamp"
    want = exact_codes("binary32", dst, bits, **kw)
    assert_same(kernel_numpy("binary32", dst, bits, rounding="rne", **kw), want, bits, f"kernel b32->{dst}")
    assert_same(fast.encode(bits.view(np.float32), dst, **kw), want, bits, f"LUT b32->{dst}")
    assert_same(kernel_torch("binary32", dst, bits, rounding="rne", **kw), want, bits, f"torch b32->{dst}")


@pytest.mark.parametrize("dst", LUT_TARGETS)
def test_binary32_random_million(dst):
    """10^6 seeded inputs; the exact model runs once per distinct sticky key, on an input having that key
    (valid because the result depends only on the key: test_sticky_key_* and the slow 2^32 sweep)."""
    bits = random_f32(dst, 1_000_000, seed=11)
    kw = dict(nan_policy="zero") if not get_format(dst).has_nan else {}
    if not get_format(dst).signed:
        kw["negative"] = "clamp"
    keys = fast_cast.sticky_keys(bits)
    uk, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    want = exact_codes("binary32", dst, bits[first], **kw)[inv]
    assert_same(fast.encode(bits.view(np.float32), dst, **kw), want, bits, f"LUT b32->{dst}")
    sub = slice(0, 200_000)
    assert_same(kernel_numpy("binary32", dst, bits[sub], rounding="rne", **kw), want[sub], bits[sub],
                f"kernel b32->{dst}")


def test_sticky_keys_formula():
    """The four-operation key of the numpy path equals the kernel's sticky_key formula."""
    from refarith.fast.castkernel import key_representative, sticky_key

    rng = np.random.default_rng(8)
    hi = rng.integers(0, 1 << 16, 64, dtype=np.uint32)
    lo = np.arange(1 << 16, dtype=np.uint32)
    bits = ((hi[:, None] << np.uint32(16)) | lo[None, :]).reshape(-1)
    bits = np.concatenate([bits, rng.integers(0, 1 << 32, 1 << 18, dtype=np.uint32),
                           np.array([0, 0xFFFFFFFF, 0x8000, 0x7FFF, 0x10000, 0xFFFF8000], dtype=np.uint32)])
    ops = NumpyBitOps(32)
    want = sticky_key(ops, bits)
    assert np.array_equal(fast_cast.sticky_keys(bits), want)
    want2 = ((bits >> np.uint32(16)) << np.uint32(1)) | ((bits & np.uint32(0xFFFF)) != 0)
    assert np.array_equal(want, want2)
    keys = np.arange(1 << 17, dtype=np.uint32)
    assert np.array_equal(sticky_key(ops, key_representative(ops, keys)), keys)


def test_sticky_key_lemma_sampled():
    """Inputs sharing a key get the same exact result (the prover's lemma, sampled here)."""
    rng = np.random.default_rng(5)
    tops = rng.integers(0, 1 << 16, 300, dtype=np.uint32)
    for dst in ("ocp_e4m3", "e8m0", "ocp_e2m1"):
        kw = dict(nan_policy="max") if not get_format(dst).has_nan else dict(negative="clamp")
        if get_format(dst).signed:
            kw.pop("negative", None)
        for t in tops:
            lows = rng.integers(1, 1 << 16, 3)
            res = {exact_one("binary32", dst, int(t) << 16 | int(lo), **kw) for lo in lows}
            assert len(res) == 1, (dst, hex(t))


@pytest.mark.parametrize("dst", ["bfloat16", "binary16", "ue5m3", "e3m4_fn_nosub"])
def test_binary32_wide_targets(dst):
    """Targets with more than 6 mantissa bits (bit kernel): boundaries + 15000 random inputs checked directly."""
    bnd = boundary_f32(dst)
    bits = np.concatenate([bnd[::5] if bnd.size > 20000 else bnd, random_f32(dst, 15000, seed=2)])
    kw = {} if get_format(dst).signed else dict(negative="clamp")
    want = exact_codes("binary32", dst, bits, **kw)
    assert_same(fast.encode(bits.view(np.float32), dst, **kw), want, bits, f"b32->{dst}")
    assert_same(kernel_torch("binary32", dst, bits, rounding="rne", **kw), want, bits, f"torch b32->{dst}")


@pytest.mark.parametrize("dst", ["ocp_e4m3", "e8m0", "ocp_e2m1", "binary8p3se"])
def test_binary32_mode_matrix(dst):
    bits = np.concatenate([boundary_f32(dst)[::2], random_f32(dst, 2000, seed=4)])
    for kw in mode_matrix(dst):
        want = exact_codes("binary32", dst, bits, **kw)
        assert_same(kernel_numpy("binary32", dst, bits, **kw), want, bits, f"kernel b32->{dst} {kw}")
        tab, etab, _ = fast_cast.key_table(get_format(dst), kw["rounding"], kw["overflow"], kw["nan_policy"],
                                           kw["negative"])
        k = fast_cast.sticky_keys(bits)
        assert_same(np.where(etab[k], -1, tab[k].astype(np.int64)), want, bits, f"key LUT b32->{dst} {kw}")


# ------------------------------------------------------------------ binary64 and integer sources
@pytest.mark.parametrize("dst", ["ocp_e4m3", "ocp_e5m2", "binary16", "e8m0", "ocp_e2m1"])
def test_binary64_source(dst):
    rng = np.random.default_rng(9)
    b32 = boundary_f32(dst)
    from_f32 = b32[np.isfinite(b32.view(np.float32))].view(np.float32).astype(np.float64).view(np.uint64)
    nudged = from_f32 ^ rng.integers(0, 1 << 29, from_f32.size).astype(np.uint64)
    special = np.array([0, 1, 0x000FFFFFFFFFFFFF, 0x0010000000000000, 0x7FF0000000000000, 0x7FF0000000000001,
                        0x7FEFFFFFFFFFFFFF, 0x3FF0000000000001], dtype=np.uint64)
    special = np.concatenate([special, special | np.uint64(1 << 63)])
    rnd = rng.integers(0, 1 << 63, 300, dtype=np.uint64)  # mostly huge or tiny: the exact model is slow there
    near = (rng.standard_normal(2000) * float(get_format(dst).max)).view(np.uint64)
    bits = np.concatenate([from_f32[::2], nudged[::2], special, rnd, near])
    kw = dict(nan_policy="zero") if not get_format(dst).has_nan else {}
    if not get_format(dst).signed:
        kw["negative"] = "clamp"
    for rounding in ("rne", "rdn", "rto"):
        want = exact_codes("binary64", dst, bits, rounding=rounding, **kw)
        got = fast.encode(bits.view(np.float64), dst, rounding=rounding, **kw)
        assert_same(got, want, bits, f"b64->{dst} {rounding}")
    assert_same(kernel_torch("binary64", dst, bits, rounding="rne", **kw),
                exact_codes("binary64", dst, bits, **kw), bits, f"torch b64->{dst}")


@pytest.mark.parametrize("dt", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64])
def test_integer_sources(dt):
    info = np.iinfo(dt)
    rng = np.random.default_rng(int(info.bits))
    edge = [info.min, info.min + 1, info.max, info.max - 1, 0, 1, 2, 3, 447, 448, 449, 464, 465, 480, 57344, 61439,
            61440, 61441, 65504, 65519, 65520, -1, -3, -464]
    pow2 = [1 << e for e in range(info.bits - 1)] + [(1 << e) + 1 for e in range(info.bits - 1)] + \
           [(3 << e) >> 1 for e in range(1, info.bits - 1)]
    vals = [v for v in edge + pow2 + [-v for v in pow2] if info.min <= v <= info.max]
    rnd = rng.integers(info.min, info.max, 600, dtype=dt, endpoint=True)
    x = np.concatenate([np.array(vals, dtype=dt), rnd])
    for dst in ("ocp_e4m3", "ocp_e5m2", "binary16", "bfloat16", "e8m0", "ocp_e2m1"):
        for rounding in ("rne", "rup", "rtz"):
            kw = dict(rounding=rounding)
            if not get_format(dst).signed:
                kw["negative"] = "clamp"
            want = np.array([exact.encode(int(v), dst, **kw).code for v in x])
            assert_same(fast.encode(x, dst, **kw), want, x.astype(np.int64), f"{dt.__name__}->{dst} {rounding}")


# ------------------------------------------------------------------ stochastic rounding
@pytest.mark.parametrize("src,dst,k", [("binary32", "ocp_e4m3", 8), ("binary32", "ocp_e2m1", 16),
                                       ("binary16", "e8m0", 4), ("bfloat16", "ocp_e5m2", 12),
                                       ("binary32", "bfloat16", 16), ("binary64", "ocp_e4m3", 30),
                                       ("binary32", "binary8p3se", 3)])
def test_stochastic_rounding(src, dst, k):
    rng = np.random.default_rng(k)
    if src == "binary32":
        bits = np.concatenate([boundary_f32(dst)[::4], random_f32(dst, 2000, seed=k)])
    elif src == "binary64":
        b32 = boundary_f32(dst)[::4]
        bits = b32[np.isfinite(b32.view(np.float32))].view(np.float32).astype(np.float64).view(np.uint64)
        bits = bits ^ rng.integers(0, 1 << 40, bits.size).astype(np.uint64)
    else:
        bits = _sample16(src, 1500, seed=k)
    r = rng.integers(0, 1 << k, bits.size)
    f = get_format(dst)
    kw = dict(rounding="sr", rand_bits=k)
    if not f.has_nan:
        kw["nan_policy"] = "max"
    if not f.signed:
        kw["negative"] = "clamp"
    want = np.array([(lambda c, rr: exact_sr(src, dst, c, rr, kw))(int(c), int(rr)) for c, rr in zip(bits, r)])
    got = kernel_numpy(src, dst, bits, r=r, **kw)
    assert_same(got, want, bits, f"sr numpy {src}->{dst} k={k}")
    dt = {"binary32": np.float32, "binary64": np.float64}.get(src)
    x = bits.view(dt) if dt is not None else None
    extra = {key: v for key, v in kw.items() if key not in ("rounding", "rand_bits")}
    if x is not None:
        got2 = fast.encode(x, dst, rounding="sr", rand=r, rand_bits=k, **extra)
    else:
        got2 = fast.encode(bits.astype(np.uint16), dst, rounding="sr", rand=r, rand_bits=k, src=src, **extra)
    assert_same(got2, want, bits, f"sr encode {src}->{dst}")
    again = fast.encode(bits.astype(np.uint16), dst, rounding="sr", rand=r, rand_bits=k, src=src, **extra) \
        if x is None else fast.encode(x, dst, rounding="sr", rand=r, rand_bits=k, **extra)
    assert np.array_equal(again, got2)  # reproducible from the same random integers
    assert_same(kernel_torch(src, dst, bits, r=r, **kw), want, bits, f"sr torch {src}->{dst} k={k}")


def exact_sr(src, dst, code, rr, kw):
    try:
        return round_value(_decoded(src, code), dst, rand=rr, **kw).code
    except SpecialValueError:
        return -1


def test_sr_extremes_of_r():
    """r = 0 rounds up only when the truncated fraction is... exactly as the exact model says; r = 2^k-1 likewise."""
    bits = random_f32("ocp_e4m3", 3000, seed=1)
    for r0 in (0, 255):
        r = np.full(bits.size, r0)
        want = np.array([exact_sr("binary32", "ocp_e4m3", int(c), r0, dict(rounding="sr", rand_bits=8))
                         for c in bits])
        assert_same(kernel_numpy("binary32", "ocp_e4m3", bits, r=r, rounding="sr", rand_bits=8), want, bits,
                    f"sr r={r0}")


# ------------------------------------------------------------------ front end
def test_encode_errors_raise():
    with pytest.raises(SpecialValueError):
        fast.encode(np.array([1.0, np.nan], dtype=np.float32), "ocp_e2m1")
    with pytest.raises(SpecialValueError):
        fast.encode(np.array([1.0, -2.0], dtype=np.float32), "e8m0")
    with pytest.raises(SpecialValueError):
        fast.encode(np.array([np.nan], dtype=np.float64), "ocp_e3m2")
    with pytest.raises(SpecialValueError):
        fast.encode(np.array([-1], dtype=np.int8), "ue4m3")
    assert fast.encode(np.array([-0.0], dtype=np.float32), "e8m0").tolist() == [exact.encode("-0", "e8m0").code]
    with pytest.raises(UnknownModeError):
        fast.encode(np.ones(3, np.float32), "ocp_e4m3", rounding="sr")
    with pytest.raises(UnknownModeError):
        fast.encode(np.ones(3, np.float32), "ocp_e4m3", rounding="sr", rand=np.array([0, 1, 256]), rand_bits=8)
    with pytest.raises(UnknownModeError):
        fast.encode(np.ones(3, np.float32), "ocp_e4m3", overflow="inf")
    with pytest.raises(BadValueError):
        fast.encode(np.ones(3, np.float32), "binary32")
    with pytest.raises(BitPatternError):
        fast.encode(np.array([0x10000]), "ocp_e4m3", src="bfloat16")
    with pytest.raises(BadValueError):
        fast.encode(np.array([1.0], dtype=np.complex64), "ocp_e4m3")


def test_encode_dtypes_and_scalars():
    x = np.array([[0.1, -3.5], [500.0, 1e-9]])
    want = [[exact.encode(float(v), "ocp_e4m3").code for v in row] for row in x]
    got = fast.encode(x, "ocp_e4m3")
    assert got.dtype == np.uint8 and got.shape == (2, 2) and got.tolist() == want
    assert fast.encode(0.1, "ocp_e4m3") == exact.encode(0.1, "ocp_e4m3").code
    assert fast.encode(np.float32(3.3), "bfloat16") == exact.encode(np.float32(3.3), "bfloat16").code
    assert fast.encode(np.array([1.5], np.float32), "bfloat16").dtype == np.uint16
    f16 = np.array([0.1, 65504, -6e-8], dtype=np.float16)
    assert fast.encode(f16, "ocp_e5m2").tolist() == [exact.encode(v, "ocp_e5m2").code for v in f16]


def test_ml_dtypes_bfloat16_input():
    ml = pytest.importorskip("ml_dtypes", reason="ml_dtypes not installed: bfloat16 numpy input untested")
    codes = _sample16("bfloat16", 300, seed=1)
    x = codes.astype(np.uint16).view(ml.bfloat16)
    kw = dict(nan_policy="zero")
    want = exact_codes("bfloat16", "ocp_e2m1", codes, **kw)
    assert_same(fast.encode(x, "ocp_e2m1", **kw), want, codes, "ml_dtypes bfloat16 input")
    assert_same(fast.encode(codes.astype(np.uint16), "ocp_e2m1", src="bfloat16", **kw), want, codes, "src=bfloat16")


def test_api_routes_to_fast():
    from refarith import api

    x = np.array([0.3, -7.0, 1e6], dtype=np.float32)
    assert api.encode(x, "ocp_e4m3", backend="numpy").tolist() == api.encode(x, "ocp_e4m3").tolist()


def test_torch_encode_frontend():
    torch = pytest.importorskip("torch", reason="torch not installed: torch backend untested")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(5000) * 100).astype(np.float32)
    x[:4] = [np.nan, np.inf, -np.inf, -0.0]
    for dst in ("ocp_e4m3", "ocp_e5m2", "binary16", "e8m0"):
        kw = {} if get_format(dst).signed else dict(negative="clamp")
        want = exact_codes("binary32", dst, x.view(np.uint32), **kw)
        for dt in (torch.float32, torch.float64):
            t = torch.from_numpy(x).to(dt)
            got = fast.encode(t, dst, backend="torch", **kw)
            assert isinstance(got, torch.Tensor) and got.device == t.device
            assert_same(got.numpy().astype(np.int64), want, x.view(np.uint32), f"torch {dt} -> {dst}")
    bf = torch.from_numpy(x).to(torch.bfloat16)
    bits = bf.view(torch.int16).numpy().view(np.uint16).astype(np.uint32)
    assert_same(fast.encode(bf, "ocp_e4m3", backend="torch").numpy(), exact_codes("bfloat16", "ocp_e4m3", bits),
                bits, "torch bfloat16")
    with pytest.raises(SpecialValueError):
        fast.encode(torch.tensor([float("nan")]), "ocp_e2m1", backend="torch")
    r = torch.from_numpy(rng.integers(0, 256, x.size))
    got = fast.encode(torch.from_numpy(x), "ocp_e4m3", rounding="sr", rand=r, rand_bits=8, backend="torch")
    assert np.array_equal(got.numpy(), fast.encode(x, "ocp_e4m3", rounding="sr", rand=r.numpy(), rand_bits=8))


def test_kernel_width_checks():
    assert required_width("binary32", "ocp_e4m3") == 32
    assert required_width("binary64", "ocp_e4m3") == 64
    assert required_width("int64", "ocp_e4m3") == 64
    with pytest.raises(BadValueError):
        cast_bits(NumpyBitOps(32), np.zeros(1, np.uint32), "binary64", "ocp_e4m3")
    with pytest.raises(BadValueError):
        cast_bits(NumpyBitOps(32), np.zeros(1, np.uint32), "binary16", "binary32")


def _f(fmt: str) -> FloatFormat:
    return get_format(fmt)


def test_default_overflow_matches_exact():
    for dst in CORE:
        assert default_overflow(_f(dst)) in ("inf", "nan", "saturate")


# ------------------------------------------------------------------ the 2^32 sweep
@pytest.mark.slow
def test_all_binary32_to_ocp_e4m3():
    """Every binary32 pattern -> ocp_e4m3 (rne, default overflow): the LUT path, the bit kernel, and a
    2^17-entry table built from the exact model (one exact call per key, on the key's representative)."""
    dst = "ocp_e4m3"
    reps = [(k >> 1) << 16 | (k & 1) for k in range(1 << 17)]
    exact_tab = np.array([exact_one("binary32", dst, b) for b in reps], dtype=np.uint8)
    ops = NumpyBitOps(32)
    chunk = 1 << 22
    checked = 0
    for lo in range(0, 1 << 32, chunk):
        bits = np.arange(lo, lo + chunk, dtype=np.uint64).astype(np.uint32)
        lut = fast.encode(bits.view(np.float32), dst)
        ref = exact_tab[fast_cast.sticky_keys(bits)]
        assert np.array_equal(lut, ref), f"LUT vs exact table in chunk {lo:#x}"
        for a in range(0, chunk, 1 << 16):  # the kernel in cache-sized blocks
            ker, err = cast_bits(ops, bits[a:a + (1 << 16)], "binary32", dst)
            assert not np.any(err)
            assert np.array_equal(ker.astype(np.uint8), ref[a:a + (1 << 16)]), f"kernel vs exact at {lo + a:#x}"
        checked += chunk
    assert checked == 1 << 32
    print(f"checked all 2^32 binary32 -> {dst} (rne, overflow={default_overflow(_f(dst))}): LUT path == bit "
          "kernel == exact-model key table")
