"""Per-tensor FP8 scaling (Transformer Engine current and delayed scaling): the exact model against the published
formulas evaluated in numpy float32 scalars with ml_dtypes' FP8 casts, the kernels against the exact model, bad
histories."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from refarith.errors import BadValueError, SpecError
from refarith.exact import fp8scale as fs
from refarith.fast import fp8scale as ffs
from refarith.spec import parse_spec

F8 = {"ocp_e4m3": (ml_dtypes.float8_e4m3fn, 448.0), "ocp_e5m2": (ml_dtypes.float8_e5m2, 57344.0)}


def b(x) -> int:
    return int(np.float32(x).view(np.uint32))


def codes_of(x) -> list[int]:
    return np.asarray(x, np.float32).view(np.uint32).tolist()


def te_cast(y: np.ndarray, fmt: str) -> np.ndarray:
    """cvt.rn.satfinite: clamp to +-max (NaN kept), then ml_dtypes' RNE cast."""
    dt, m = F8[fmt]
    return np.clip(y, -m, m).astype(dt).view(np.uint8)


def te_current(x: np.ndarray, fmt: str, eps: float = 0.0, pow2: bool = False):
    """compute_scale_from_amax (recipe_common.cuh), float32 scalar by scalar."""
    amax = np.float32(0)
    for v in x:
        if not np.isnan(v):
            amax = max(amax, np.float32(abs(v)))
    a = np.float32(eps) if amax < np.float32(eps) else amax
    if np.isinf(a) or a == 0 or np.isnan(a):
        s = np.float32(1)
    else:
        with np.errstate(over="ignore"):
            s = np.float32(F8[fmt][1]) / a
        if np.isinf(s):
            s = np.finfo(np.float32).max
        if pow2:
            s = np.array([s], np.float32).view(np.uint32) & np.uint32(0xFF800000)
            s = s.view(np.float32)[0]
    with np.errstate(over="ignore", invalid="ignore"):
        y = (x * s).astype(np.float32)
    return amax, np.float32(s), te_cast(y, fmt)


CASES = [
    np.array([1.0, -3.5, 0.25, 100.0] * 8, np.float32),
    np.array([0.0] * 32, np.float32),
    np.array([np.nan, 2.0] + [0.5] * 30, np.float32),
    np.array([np.inf, 2.0] + [0.5] * 30, np.float32),
    np.array([1e-44, -2e-45] + [0.0] * 30, np.float32),  # fl(448 / amax) overflows: FLT_MAX
    np.array([3e38] + [-1.0] * 31, np.float32),
    (np.random.default_rng(1).standard_normal(32) * 1e-3).astype(np.float32),
]


@pytest.mark.parametrize("fmt", list(F8))
@pytest.mark.parametrize("pow2", [False, True])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_current_scaling_matches_te_formula(fmt, pow2, case):
    x = CASES[case]
    amax, s, q = te_current(x, fmt, 0.0, pow2)
    r = fs.current_scaling(codes_of(x), fmt, 0, pow2)
    assert r.amax == b(amax) and r.scale == b(s)
    assert r.scale_inv == b(np.float32(1) / s)
    got = np.array(r.codes, np.uint8)
    nan = np.isnan(q.view(F8[fmt][0]).astype(np.float32))
    assert (got[~nan] == q[~nan]).all()
    assert (np.isnan(np.array([float(v) for v in got.view(F8[fmt][0]).astype(np.float32)])) == nan).all()


def test_current_scaling_epsilon_and_documented_cases():
    one = b(1.0)
    assert fs.current_scale_bits(0, "ocp_e4m3") == one  # amax 0: scale 1
    assert fs.current_scale_bits(0x7F800000, "ocp_e4m3") == one  # amax inf: scale 1
    assert fs.current_scale_bits(0x7FC00000, "ocp_e4m3") == one  # amax NaN: scale 1
    assert fs.current_scale_bits(b(1e-30), "ocp_e4m3", eps=b(1.0)) == b(448.0)  # amax raised to eps
    assert fs.current_scale_bits(b(3.0), "ocp_e4m3", pow2=True) == b(128.0)  # 149.33 -> 128
    assert fs.current_scale_bits(1, "ocp_e5m2") == 0x7F7FFFFF


def te_delayed(history: np.ndarray, prev: float, fmt: str, algo: str, margin: int) -> np.float32:
    """amax_and_scale_update (delayed_scaling.cu), float32 scalars."""
    if algo == "most_recent":
        amax = np.float32(history[0])
    else:
        amax = np.float32(0)
        for v in history:
            amax = np.fmax(amax, np.float32(v))
    scaled_max = np.float32(F8[fmt][1]) * np.float32(2.0 ** -margin)
    if np.isfinite(amax) and amax > 0:
        with np.errstate(over="ignore"):
            return np.float32(scaled_max / amax)
    return np.float32(prev)


@pytest.mark.parametrize("algo", fs.ALGOS)
@pytest.mark.parametrize("margin", [0, 2])
def test_delayed_scaling_matches_te_formula(algo, margin):
    rng = np.random.default_rng(margin)
    for trial in range(6):
        h = (rng.random(8) * 2.0 ** rng.integers(-20, 20)).astype(np.float32)
        if trial == 1:
            h[:] = 0  # no amax recorded yet: keep the previous scale
        if trial == 2:
            h[0] = 0
        prev = np.float32(0.125)
        x = (rng.standard_normal(32) * 4).astype(np.float32)
        want = te_delayed(h, prev, "ocp_e4m3", algo, margin)
        r = fs.delayed_scaling(codes_of(h), b(prev), codes_of(x), "ocp_e4m3", algo, margin)
        assert r.scale == b(want)
        with np.errstate(over="ignore", invalid="ignore"):
            assert list(r.codes) == te_cast((x * want).astype(np.float32), "ocp_e4m3").tolist()


def test_delayed_te_fallbacks_and_errors():
    prev = b(0.5)
    hist = codes_of([1.0, np.nan, 4.0])
    assert fs.delayed_scale_bits(hist, prev, "ocp_e4m3", "max", 0, "te") == b(112.0)  # fmaxf ignores NaN
    assert fs.delayed_scale_bits(codes_of([np.nan, 4.0]), prev, "ocp_e4m3", "most_recent", 0, "te") == prev
    assert fs.delayed_scale_bits(codes_of([np.inf, 4.0]), prev, "ocp_e4m3", "max", 0, "te") == prev
    with pytest.raises(BadValueError, match="entry 1 is NaN"):
        fs.delayed_scale_bits(hist, prev, "ocp_e4m3")
    with pytest.raises(BadValueError, match="entry 0 is an infinity"):
        fs.delayed_scale_bits(codes_of([np.inf]), prev, "ocp_e4m3")
    with pytest.raises(BadValueError, match="empty"):
        fs.delayed_scale_bits([], prev, "ocp_e4m3")
    with pytest.raises(BadValueError, match="previous scale"):
        fs.delayed_scale_bits(codes_of([1.0]), b(0.0), "ocp_e4m3")
    with pytest.raises(BadValueError, match="entry 2 is NaN"):
        ffs.delayed_scale(np.array([[1, 2, np.nan]], np.float32), np.array([1], np.float32), "ocp_e4m3")
    with pytest.raises(BadValueError, match="empty"):
        ffs.delayed_scale(np.zeros((1, 0), np.float32), np.array([1], np.float32), "ocp_e4m3")
    with pytest.raises(SpecError, match="history length"):
        parse_spec("fp8_delayed_scale(ocp_e4m3,h=0)")
    with pytest.raises(SpecError, match="ocp_e4m3 or ocp_e5m2"):
        parse_spec("fp8_current_scale(ocp_e2m1)")
    with pytest.raises(SpecError, match="not a binary32 value"):
        parse_spec("fp8_current_scale(ocp_e4m3,eps=0.1)")
    with pytest.raises(SpecError, match="exceeds the binary32 range"):  # was "(nearest: 0.0)"
        parse_spec("fp8_current_scale(ocp_e4m3,eps=1e400)")
    with pytest.raises(SpecError, match="at most 65536"):  # a huge history ran until killed
        parse_spec("fp8_delayed_scale(ocp_e4m3,h=100000000)")


# fp8_current_scale(ocp_e4m3) is a committed golden spec (tests/test_opdrivers.py certifies both kernels on it)
@pytest.mark.parametrize("spec", [pytest.param("fp8_current_scale(ocp_e4m3)", marks=pytest.mark.slow),
                                  "fp8_current_scale(ocp_e5m2,pow2=true,eps=0.0009765625)",
                                  "fp8_delayed_scale(ocp_e4m3,h=4)",
                                  "fp8_delayed_scale(ocp_e5m2,h=4,algo=most_recent,margin=3,bad_history=te)"])
def test_kernels_match_exact_model(spec):
    from refarith.golden.drivers import get_driver

    sp = parse_spec(spec)
    d = get_driver(sp)
    ins = d.boundary(sp)[::9] + d.random_inputs(sp, 16, 7)
    widths = [o.width for o in d.inputs(sp)]
    arr = np.array(ins, dtype=np.int64)
    cols, k = [], 0
    for w in widths:
        cols.append(arr[:, k] if w == 1 else arr[:, k:k + w])
        k += w
    want = [d.exact(sp, v) for v in ins]
    for backend in ("numpy", "torch"):
        if backend == "torch":  # numpy is asserted first, so a machine without torch still checks it
            pytest.importorskip("torch", reason="torch not installed: the torch kernels are untested")
        res = d.fast(sp, tuple(cols), backend)
        got = np.concatenate([np.asarray(r).reshape(len(ins), -1).astype(np.int64) for r in res], axis=1)
        for i, w in enumerate(want):
            if w is not None:
                assert tuple(got[i]) == w, (backend, i)


def test_cli_empty_history_exits_2(capsys):
    from refarith.cli import main

    assert main(["certify", "refarith:numpy", "--spec", "fp8_delayed_scale(ocp_e4m3,h=0)"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "history" in err


def _special_f32(rng, shape, p=0.05):
    """binary32 values over the whole exponent range, with zeros, infinities, NaNs and subnormals mixed in."""
    x = (rng.standard_normal(shape) * 2.0 ** rng.integers(-140, 100, shape)).astype(np.float32)
    sp = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -3e-42, 448.0, 464.0, 3e38], np.float32)
    pick = rng.random(shape) < p
    x[pick] = rng.choice(sp, int(pick.sum()))
    return x


@pytest.mark.parametrize("block", [16, 48])
def test_fused_scaled_cast_matches_exact_model_across_block_splits(monkeypatch, block):
    """quantize_with_scale fuses fl(x * s) and the cast on blocks of ``_BLOCK`` elements: rows longer than a
    block are split into column blocks (with a short tail), short rows are grouped; every split gives the exact
    model's codes, products that overflow included.  An infinite scale (0 * inf is the positive NaN) takes the
    unfused path, with the same codes."""
    monkeypatch.setattr(ffs, "_BLOCK", block)
    rng = np.random.default_rng(23)
    for fmt in F8:
        for shape, big in [((2, 100), 3e38), ((9, 5), 3e38), ((3, 7), np.inf)]:
            x = _special_f32(rng, shape)
            x[-1, 0] = 0.0
            s = ffs.current_scale(ffs.fmax_amax(x), fmt)
            s[-1] = np.float32(big)
            got = ffs.quantize_with_scale(x, s, fmt)
            for r in range(shape[0]):
                want = fs.quantize_with_scale(codes_of(x[r]), b(s[r]), fmt)
                assert got[r].tolist() == list(want), (fmt, shape, r)


@pytest.mark.parametrize("block", [16, 1 << 16])
def test_amax_ignores_signaling_nans_in_any_layout(monkeypatch, block):
    """fmaxf ignores every NaN, a signaling one too: the numpy amax (|x| bits, rows with a NaN redone with the NaN
    bits as +0) against the exact model on rows with signaling and negative NaNs, infinities and -0, contiguous,
    strided and 3-D, with blocks smaller than a row.  numpy's own fmax/fmin reductions drop what they had
    accumulated before a signaling NaN ([-300, sNaN, 2, 3] gave 3), so the kernel does not use them."""
    monkeypatch.setattr(ffs, "_BLOCK", block)
    x = np.array([[-300.0, 0.0, 2.0, 3.0]], np.float32)
    x.view(np.uint32)[0, 1] = 0x7F98EA67
    assert ffs.fmax_amax(x).view(np.uint32).tolist() == [fs.fmax_amax(codes_of(x[0]))] == [b(300.0)]
    rng = np.random.default_rng(31)
    specials = np.array([0x7F98EA67, 0xFF800001, 0x7FC00000, 0xFFC00000, 0x7F800000, 0xFF800000, 0x80000000, 1],
                        np.uint32)
    for shape in [(3, 701), (40, 37), (2, 3, 50), (4, 1)]:
        x = (rng.standard_normal(shape) * 2.0 ** rng.integers(-140, 100, shape)).astype(np.float32)
        flat = x.view(np.uint32).reshape(-1)
        pos = rng.integers(0, flat.size, max(1, flat.size // 15))
        flat[pos] = rng.choice(specials, pos.size)
        for xs in (x, x[..., ::2]):
            rows = np.ascontiguousarray(xs).reshape(-1, xs.shape[-1])
            got = ffs.fmax_amax(xs)
            assert got.shape == xs.shape[:-1]
            assert got.reshape(-1).view(np.uint32).tolist() == [fs.fmax_amax(codes_of(r)) for r in rows], shape


def test_delayed_max_ignores_signaling_nans():
    """The history maximum of delayed scaling (bad_history=te) ignores a signaling NaN after the largest entry,
    as the exact model's fmaxf does (numpy's fmax reduction of [100, sNaN, x, y] returned max(x, y))."""
    rng = np.random.default_rng(37)
    h = (rng.standard_normal((6, 4)) * 10).astype(np.float32)
    h[:, 0] = 100.0
    h.view(np.uint32)[:, 1] = 0x7F98EA67
    h.view(np.uint32)[3, 3] = 0xFFC00000
    prev = np.ones(6, np.float32)
    got = ffs.delayed_scale(h, prev, "ocp_e4m3", "max", 0, "te").view(np.uint32).tolist()
    assert got == [fs.delayed_scale_bits(codes_of(r), b(1.0), "ocp_e4m3", "max", 0, "te") for r in h]
    assert got[0] == b(np.float32(448.0) / np.float32(100.0))
