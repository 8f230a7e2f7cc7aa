"""Integer-only and approximate operators: exact model = numpy kernel = torch kernel, at full scale.

For every operator: exhaustively where its input domain has at most 2^24 points, otherwise on at least 10^6
seeded random inputs drawn from the whole domain (magnitudes spread over every bit length, extremes included),
on a grid of scales / parameters.  For row operators (softmax, LayerNorm) and dot products an input is one
element of a row; rows have several lengths.  The default run compares the same kernels on smaller samples
(the per-operator test modules); these are the ``slow`` full-size runs.

Expected values come from the exact models (``refarith.exact``: Python integers and Fractions).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import BadValueError
from refarith.exact import fdot as efd
from refarith.exact import fixedpoint as efp
from refarith.exact import ibert as eib
from refarith.exact import intdot as eid
from refarith.exact import ivit as eiv
from refarith.exact import lmul as elm
from refarith.exact import requant as erq
from refarith.fast import fdot as ffd
from refarith.fast import fixedpoint as ffp
from refarith.fast import ibert as fib
from refarith.fast import intdot as fid
from refarith.fast import ivit as fiv
from refarith.fast import lmul as flm
from refarith.fast import requant as frq
from refarith.formats import get_format

pytestmark = pytest.mark.slow

N = 1_000_000
MIN, MAX = -(1 << 31), (1 << 31) - 1


def _torch():
    return pytest.importorskip("torch", reason="torch not importable: torch kernels not compared")


def _spread(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """n integers in [lo, hi]: uniform draws shifted right by a uniform 0..bits-1, so every bit length occurs
    about equally often; the first entries are the extremes and their neighbours."""
    bits = max(abs(lo), abs(hi)).bit_length()
    x = rng.integers(lo, hi, n, endpoint=True)
    x = x >> rng.integers(0, bits, n)
    x = np.clip(x, lo, hi)
    edge = [v for v in (lo, lo + 1, -1, 0, 1, hi - 1, hi) if lo <= v <= hi]
    x[:len(edge)] = edge
    return x.astype(np.int64)


def _same3(want: list[int], got_np, got_t, what) -> None:
    want = np.asarray(want, dtype=np.int64)
    got_np = np.asarray(got_np).astype(np.int64)
    got_t = np.asarray(got_t.numpy()).astype(np.int64)
    bad = np.flatnonzero(got_np != want)
    assert bad.size == 0, f"numpy differs from exact at {bad.size} inputs, first index {bad[0]} ({what})"
    bad = np.flatnonzero(got_t != want)
    assert bad.size == 0, f"torch differs from exact at {bad.size} inputs, first index {bad[0]} ({what})"


def _elementwise3(f_exact, f_fast, xs: np.ndarray, what) -> int:
    """exact = numpy = torch on every input the exact model accepts; on inputs it rejects (BadValueError: the
    operation is undefined there, e.g. an int32 shift count out of range) both kernels must raise as well
    (checked one by one on up to 64 of them).  Returns the number of rejected inputs."""
    torch = _torch()
    want, ok = [], []
    for v in xs.tolist():
        try:
            want.append(f_exact(v))
            ok.append(True)
        except BadValueError:
            ok.append(False)
    ok = np.array(ok)
    good = xs[ok]
    _same3(want, f_fast(good), f_fast(torch.from_numpy(good)), what)
    for v in xs[~ok][:64]:
        for arr in (np.array([v]), torch.tensor([int(v)])):
            with pytest.raises(BadValueError):
                f_fast(arr)
    return int((~ok).sum())


# ------------------------------------------------------------------ requantization on a grid of scales
SCALES = [Fraction(1, 3), Fraction(3, 1000), Fraction(7, 5 * 2 ** 20), 0.0123, Fraction(127, 128), Fraction(5, 2),
          0.75 / 2 ** 31, Fraction(1, 2 ** 12), 0.2]
ZERO_POINTS = [(0, -128, 127), (-7, -128, 127), (128, 0, 255), (0, -32768, 32767)]


@pytest.mark.parametrize("variant", ["tflite_double_rounding", "tflite_single_rounding", "cmsis_single_rounding",
                                     "hawq_sim", "hawq_deployed"])
def test_requantize_million_on_scale_grid(variant):
    torch = _torch()
    rng = np.random.default_rng(500)
    per = N // (len(SCALES) * len(ZERO_POINTS)) + 1
    total = 0
    for scale in SCALES:
        m, sh = erq.multiplier_for(scale, variant)
        for zp, lo, hi in ZERO_POINTS:
            x = _spread(rng, per, MIN, MAX)
            want = [erq.requantize(a, scale, variant, zp, lo, hi) for a in x.tolist()]
            _same3(want, frq.requantize(x, m, sh, variant, zp, lo, hi),
                   frq.requantize(torch.from_numpy(x), m, sh, variant, zp, lo, hi), (scale, zp))
            total += per
    assert total >= N


# ------------------------------------------------------------------ gemmlowp / TFLite fixed point
INTEGER_BITS = [0, 1, 2, 3, 4, 5, 6, 8, 12, 16, 20, 24, 28]


@pytest.mark.parametrize("name", ["exp_on_negative_values", "logistic", "tanh"])
def test_gemmlowp_functions_million_int32_raws(name):
    """Whole int32 raw domain (exp: the non-positive half), every listed integer_bits setting."""
    torch = _torch()
    rng = np.random.default_rng(510)
    f_ex, f_np = getattr(efp, name), getattr(ffp, name)
    per = N // len(INTEGER_BITS) + 1
    for ib in INTEGER_BITS:
        if name == "tanh" and ib > 28:
            continue
        raws = _spread(rng, per, MIN, 0 if name.startswith("exp") else MAX)
        want = [f_ex(r, ib) for r in raws.tolist()]
        _same3(want, f_np(raws, ib), f_np(torch.from_numpy(raws), ib), (name, ib))


@pytest.mark.parametrize("name", ["one_over_one_plus_x_for_x_in_0_1", "one_minus_x_over_one_plus_x_for_x_in_0_1"])
def test_gemmlowp_reciprocals_million_raws(name):
    """Whole Q0.31 domain x in [0, 1): raws 0 .. 2^31 - 1."""
    torch = _torch()
    rng = np.random.default_rng(511)
    raws = _spread(rng, N, 0, MAX)
    want = [getattr(efp, name)(r) for r in raws.tolist()]
    _same3(want, getattr(ffp, name)(raws), getattr(ffp, name)(torch.from_numpy(raws)), name)


SOFTMAX_PARAMS = [(1, Fraction(1, 16)), (1.0, 0.1), (Fraction(1, 2), Fraction(3, 40)), (1, Fraction(1, 256)),
                  (2.0, 0.05)]
ROW_LENGTHS = [1, 2, 7, 33, 128, 300]


def test_tflite_softmax_million_elements():
    torch = _torch()
    rng = np.random.default_rng(512)
    total = 0
    for beta, scale in SOFTMAX_PARAMS:
        p = efp.softmax_params(beta, scale)
        for length in ROW_LENGTHS:
            rows = N // (len(SOFTMAX_PARAMS) * len(ROW_LENGTHS) * length) + 1
            x = rng.integers(-128, 127, (rows, length), endpoint=True)
            x[: rows // 4] >>= rng.integers(0, 8, (rows // 4, 1))  # rows of close values as well
            want = [efp.softmax_int8(r, *p) for r in x.tolist()]
            _same3(want, ffp.softmax_int8(x, *p), ffp.softmax_int8(torch.from_numpy(x), *p), (beta, scale, length))
            total += x.size
    assert total >= N


# ------------------------------------------------------------------ I-ViT
IVIT_SCALES = ("0.5", "0.1", "0.05", "0.02", "0.0078125", "0.003")


@pytest.mark.parametrize("variant", eiv.VARIANTS)
def test_ivit_shift_exp_million_int32(variant):
    """x <= 0 over the whole non-positive int32 range (the clamp at n*x0 included), six scales."""
    rng = np.random.default_rng(520)
    per = N // len(IVIT_SCALES) + 1
    n = eiv.SOFTMAX_N[variant]
    for scale in IVIT_SCALES:
        x0 = eiv.x0_int(scale, variant)
        xs = _spread(rng, per, MIN, 0)
        rejected = _elementwise3(lambda v, x0=x0: eiv.shift_exp(v, x0, n, variant),
                                 lambda a, s=scale: fiv.shift_exp_array(a, s, variant), xs, scale)
        # ivit_tvm: x + (x >> 1) - (x >> 4) wraps in int32 below about -2^31/1.4375; ivit_torch is defined everywhere
        assert (rejected > 0) == (variant == "ivit_tvm"), rejected


@pytest.mark.parametrize("variant", eiv.VARIANTS)
def test_ivit_sqrt_exhaustive_2_24(variant):
    torch = _torch()
    v = np.arange(0, 1 << 24, dtype=np.int64)
    want = [eiv.newton_sqrt(x, variant) for x in v.tolist()]
    _same3(want, fiv.newton_sqrt(v, variant), fiv.newton_sqrt(torch.from_numpy(v), variant), variant)


@pytest.mark.parametrize("variant", eiv.VARIANTS)
def test_ivit_sqrt_million_uint32(variant):
    """The variance operand: uint32 (ivit_tvm's type; ivit_torch's sums of squares of int8/int16 rows)."""
    torch = _torch()
    v = _spread(np.random.default_rng(521), N, 0, (1 << 32) - 1)
    want = [eiv.newton_sqrt(x, variant) for x in v.tolist()]
    _same3(want, fiv.newton_sqrt(v, variant), fiv.newton_sqrt(torch.from_numpy(v), variant), variant)


LN_RANGES = [(-128, 127), (-4096, 4096), (-(1 << 15), (1 << 15) - 1), (-3, 3)]
LN_LENGTHS = [2, 3, 8, 64, 192, 768]


@pytest.mark.parametrize("variant", eiv.VARIANTS)
def test_ivit_layernorm_million_elements(variant):
    torch = _torch()
    rng = np.random.default_rng(522)
    total = 0
    for lo, hi in LN_RANGES:
        for length in LN_LENGTHS:
            rows = N // (len(LN_RANGES) * len(LN_LENGTHS) * length) + 1
            x = rng.integers(lo, hi, (rows, length), endpoint=True)
            x[:, 0] = hi  # never a constant row
            x[:, 1] = lo
            want = [eiv.ilayernorm(r, variant) for r in x.tolist()]
            _same3(want, fiv.ilayernorm(x, variant), fiv.ilayernorm(torch.from_numpy(x), variant), (lo, hi, length))
            total += x.size
    assert total >= N


# ------------------------------------------------------------------ I-BERT
EXP_SCALES = ("0.1", "0.05", "0.02", "0.01", "0.0078125", "0.001")
GELU_SCALES = ("0.01", "0.001", "0.0001", "0.000030517578125", "0.1")


def test_ibert_i_exp_million_int32():
    torch = _torch()
    rng = np.random.default_rng(530)
    per = N // len(EXP_SCALES) + 1
    for s in EXP_SCALES:
        xs = _spread(rng, per, MIN, 0)
        want = [eib.i_exp(v, s) for v in xs.tolist()]
        _same3(want, fib.i_exp(xs, s), fib.i_exp(torch.from_numpy(xs), s), s)


def test_ibert_i_erf_and_i_gelu_million_int32():
    torch = _torch()
    rng = np.random.default_rng(531)
    per = N // len(GELU_SCALES) + 1
    for s in GELU_SCALES:
        xs = _spread(rng, per, MIN, MAX)
        b, c, _ = eib.erf_constants(s)
        want = [eib.i_erf_int(v, b, c) for v in xs.tolist()]
        _same3(want, fib.i_erf(xs, s), fib.i_erf(torch.from_numpy(xs), s), ("erf", s))
        want = [eib.i_gelu(v, s) for v in xs.tolist()]
        _same3(want, fib.i_gelu(xs, s), fib.i_gelu(torch.from_numpy(xs), s), ("gelu", s))


def test_ibert_i_sqrt_million_int62():
    torch = _torch()
    v = _spread(np.random.default_rng(532), N, 0, (1 << 62) - 1)
    want = [eib.i_sqrt(x) for x in v.tolist()]
    _same3(want, fib.i_sqrt(v), fib.i_sqrt(torch.from_numpy(v)), "i_sqrt")


@pytest.mark.parametrize("shift", [0, 2])
def test_ibert_layernorm_million_elements(shift):
    torch = _torch()
    rng = np.random.default_rng(533 + shift)
    total = 0
    for lo, hi in LN_RANGES:
        for length in LN_LENGTHS:
            rows = N // (len(LN_RANGES) * len(LN_LENGTHS) * length) + 1
            x = rng.integers(lo, hi, (rows, length), endpoint=True)
            x[:, 0] = hi
            x[:, 1] = lo
            want = [eib.ibert_layernorm(r, shift) for r in x.tolist()]
            _same3(want, fib.ibert_layernorm(x, shift), fib.ibert_layernorm(torch.from_numpy(x), shift),
                   (lo, hi, length))
            total += x.size
    assert total >= N


# ------------------------------------------------------------------ L-Mul, m = 1..7
def _lmul3(fmt, x: np.ndarray, y: np.ndarray, variant: str, **kw) -> None:
    torch = _torch()
    want = [elm.lmul(a, b, fmt, variant, **kw).code for a, b in zip(x.tolist(), y.tolist())]
    got_t = flm.lmul(torch.as_tensor(x), torch.as_tensor(y), fmt, variant, backend="torch", **kw)
    _same3(want, flm.lmul(x, y, fmt, variant, **kw), got_t, (fmt.name, variant, kw))


def _pairs(fmt, lo: int = 0, hi: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every (x, y) code pair with lo <= x < hi."""
    hi = fmt.ncodes if hi is None else hi
    x, y = np.meshgrid(np.arange(lo, hi, dtype=np.int64), np.arange(fmt.ncodes, dtype=np.int64), indexing="ij")
    return x.ravel(), y.ravel()


# m = 1..5 in 8-bit formats, m = 1..3 with binary32's 8-bit exponent: every pair (at most 2^24 of them).
EXHAUSTIVE = ["e6m1", "ocp_e5m2", "ocp_e4m3", "e3m4", "e2m5", "e8m1", "e8m2"]


@pytest.mark.parametrize("variant", elm.VARIANTS)
@pytest.mark.parametrize("name", EXHAUSTIVE)
def test_lmul_exhaustive_pairs(name, variant):
    fmt = get_format(name)
    _lmul3(fmt, *_pairs(fmt), variant)


@pytest.mark.parametrize("quarter", range(4))
@pytest.mark.parametrize("variant", elm.VARIANTS)
def test_lmul_e8m3_exhaustive_pairs(variant, quarter):
    """All 2^24 pairs of e8m3 (m = 3 with binary32's exponent range), in four slices of the first operand."""
    fmt = get_format("e8m3")
    q = fmt.ncodes // 4
    _lmul3(fmt, *_pairs(fmt, quarter * q, (quarter + 1) * q), variant)


@pytest.mark.parametrize("variant", elm.VARIANTS)
@pytest.mark.parametrize("name", ["e8m4", "e8m5", "e8m6", "e8m7", "bfloat16", "binary32"])
def test_lmul_million_random_pairs(name, variant):
    fmt = get_format(name)
    rng = np.random.default_rng(540 + fmt.nbits)
    x = rng.integers(0, fmt.ncodes, N, dtype=np.int64)
    y = rng.integers(0, fmt.ncodes, N, dtype=np.int64)
    _lmul3(fmt, x, y, variant)


@pytest.mark.parametrize("name,variant,kw", [
    ("ocp_e4m3", "formula", {"rounding": "rna", "overflow": "saturate", "underflow": "gradual"}),
    ("ocp_e4m3", "bitwise", {"rounding": "rtz", "overflow": "saturate"}),
    ("ocp_e5m2", "bitwise", {"rounding": "rne", "overflow": "saturate", "underflow": "gradual"}),
    ("e3m4", "bitwise", {"underflow": "gradual", "overflow": "saturate"}),
])
def test_lmul_exhaustive_declared_modes(name, variant, kw):
    fmt = get_format(name)
    _lmul3(fmt, *_pairs(fmt), variant, **kw)


# ------------------------------------------------------------------ accumulators
INT_DOT_CASES = [
    ("int8", "int16", "wrap"), ("int8", "int16", "saturate"), ("int8", "int32", "wrap"),
    ("int8", "int32", "saturate"), ("int8_sym", "int20", "saturate"), ("int4", "int8", "saturate"),
    ("int4", "int8", "wrap"), ("int16", "int32", "saturate"), ("int16", "int32", "wrap"),
    ("uint8", "uint16", "wrap"), ("uint8", "uint16", "saturate"),
]


@pytest.mark.parametrize("in_fmt,acc_fmt,ov", INT_DOT_CASES)
def test_int_dot_million_elements(in_fmt, acc_fmt, ov):
    torch = _torch()
    f = get_format(in_fmt)
    rng = np.random.default_rng(550)
    total = 0
    for length in (1, 4, 37, 256, 2048):
        rows = N // (5 * length) + 1
        a = rng.integers(f.min, f.max, (rows, length), endpoint=True)
        b = rng.integers(f.min, f.max, (rows, length), endpoint=True)
        k = rows // 8
        a[:k] = f.min  # runs of the extreme product: the accumulator overflows
        b[:k] = f.min if f.signed else f.max
        want = [eid.int_dot(x, y, in_fmt, acc_fmt, ov) for x, y in zip(a.tolist(), b.tolist())]
        _same3(want, fid.int_dot(a, b, in_fmt, acc_fmt, ov),
               fid.int_dot(torch.from_numpy(a), torch.from_numpy(b), in_fmt, acc_fmt, ov), length)
        total += a.size
    assert total >= N


FDOT_CASES = [
    ("ocp_e4m3", "binary32", {}), ("ocp_e4m3", "binary32", {"order": "pairwise"}),
    ("ocp_e5m2", "ocp_e4m3", {}), ("ocp_e5m2", "ocp_e4m3", {"order": "pairwise", "overflow": "saturate"}),
    ("bfloat16", "binary32", {}), ("bfloat16", "binary32", {"rounding": "rtz"}),
    ("binary16", "bfloat16", {"rounding": "rdn", "order": "pairwise"}),
    ("ocp_e4m3", "bfloat16", {"product": "ocp_e5m2"}), ("ocp_e4m3", "ocp_e5m2", {"rounding": "rup"}),
    ("ocp_e4m3", "binary32", {"mul": "lmul_bitwise"}), ("bfloat16", "binary32", {"mul": "lmul_formula"}),
    ("binary32", "binary32", {}),
]


@pytest.mark.parametrize("fin,acc,kw", FDOT_CASES)
def test_fdot_million_elements(fin, acc, kw):
    """Random codes of the input format (NaN/inf/zeros/subnormals included) in rows of several lengths."""
    torch = _torch()
    fmt = get_format(fin)
    rng = np.random.default_rng(560 + FDOT_CASES.index((fin, acc, kw)))
    total = 0
    for length in (1, 2, 5, 16, 64):
        rows = N // (5 * length) + 1
        x = rng.integers(0, fmt.ncodes, (rows, length), dtype=np.int64)
        y = rng.integers(0, fmt.ncodes, (rows, length), dtype=np.int64)
        want = [efd.fdot(a, b, fin, acc, **kw).code for a, b in zip(x.tolist(), y.tolist())]
        got_t = ffd.fdot(torch.as_tensor(x), torch.as_tensor(y), fin, acc, backend="torch", **kw)
        _same3(want, ffd.fdot(x, y, fin, acc, **kw), got_t, length)
        total += x.size
    assert total >= N
