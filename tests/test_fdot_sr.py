"""Stochastic rounding of the fast dot-product accumulator (refarith.fast.fdot, rounding="sr").

Expected accumulator codes come from refarith.exact.fdot.fdot with rounding="sr" and the same random integers
(one per addition, in evaluation order); never from the kernels.
"""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact import fdot as efd
from refarith.fast import fdot as ffd
from refarith.formats import get_format
from refarith.golden.opdrivers.floatdot import hard_sr_vectors as _hard_vectors
from refarith.golden.opdrivers.floatdot import product_pair as _pair

VARIANTS = ("a", "b", "c", "c_odd")
# (input format, accumulator): E5M2 products span 2^-32..2^31, so sums into binary32 and bfloat16 have fractions
# far below the binary64 significand; narrow accumulators with overflow and subnormals; E2M1 (te_e2m1_8).  The
# 8-bit inputs keep the default run cheap (a 16-bit input format costs seconds of exact decoding for its table);
# 16-bit inputs are in the slow test.
PAIRS = (("ocp_e5m2", "binary32"), ("ocp_e5m2", "bfloat16"), ("ocp_e4m3", "ocp_e4m3"), ("ocp_e2m1", "ocp_e2m1"))
WIDE = PAIRS + (("bfloat16", "binary32"), ("binary16", "bfloat16"))


def _patterns(shape: tuple, k: int, rng) -> list[np.ndarray]:
    top = (1 << k) - 1
    return [rng.integers(0, top + 1, shape, dtype=np.int64), np.full(shape, top, np.int64),
            np.full(shape, top >> 1, np.int64), np.zeros(shape, np.int64)]


def _exact(x: np.ndarray, y: np.ndarray, r: np.ndarray, fmt: str, acc: str, order: str, k: int, v: str) -> list:
    return [efd.fdot(xi.tolist(), yi.tolist(), fmt, acc, order, rounding="sr", rand=ri.tolist(), rand_bits=k,
                     sr_variant=v).code for xi, yi, ri in zip(x, y, r)]


def _check(x, y, fmt, acc, order, k, v, rng, backend="numpy"):
    x, y = np.asarray(x), np.asarray(y)
    shape = (*x.shape[:-1], efd.additions(x.shape[-1], order))
    for r in _patterns(shape, k, rng):
        got = ffd.fdot(x, y, fmt, acc, order, rounding="sr", rand=r, rand_bits=k, sr_variant=v, backend=backend)
        got = [int(t) for t in (got.tolist() if backend == "torch" else got)]
        assert got == _exact(x, y, r, fmt, acc, order, k, v), (fmt, acc, order, k, v, backend)


def _ks(acc: str, v: str) -> tuple[int, ...]:
    return (8,) if v == "te_e2m1_8" else (1, 3, ffd.sr_max_bits(get_format(acc), v))


def _hard_check(fmt: str, acc: str, order: str, v: str, k: int, rng) -> None:
    vecs = _hard_vectors(fmt, acc, k)
    assert len(vecs) >= (3 if acc == "ocp_e2m1" else 5)
    x = np.array([a for a, _ in vecs])
    y = np.array([b for _, b in vecs])
    _check(x, y, fmt, acc, order, k, v, rng)


@pytest.mark.parametrize("fmt,acc", PAIRS)
def test_hard_places_equal_exact_model(fmt, acc):
    """Every variant at the largest k of the binary64 path (te_e2m1_8: 8), the orders alternating."""
    rng = np.random.default_rng(7)
    for i, v in enumerate(VARIANTS + (("te_e2m1_8",) if acc == "ocp_e2m1" else ())):
        _hard_check(fmt, acc, ("sequential", "pairwise")[i % 2], v, _ks(acc, v)[-1], rng)


@pytest.mark.slow
@pytest.mark.parametrize("fmt,acc", PAIRS)
@pytest.mark.parametrize("order", ["sequential", "pairwise"])
def test_hard_places_every_k(fmt, acc, order):
    rng = np.random.default_rng(17)
    for v in VARIANTS + (("te_e2m1_8",) if acc == "ocp_e2m1" else ()):
        for k in _ks(acc, v):
            _hard_check(fmt, acc, order, v, k, rng)


def _random_vectors(fmt_name: str, m: int, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Finite codes, half of the rows in a narrow exponent range (cancellation and rounding happen there)."""
    fmt = get_format(fmt_name)
    fin = np.array([c for c in range(fmt.ncodes) if fmt.is_finite_code(c)])
    x, y = rng.choice(fin, (m, n)), rng.choice(fin, (m, n))
    mid = rng.choice(fin, (m // 2, 1))
    near = np.clip(mid + rng.integers(-12, 13, (m // 2, n)), 0, fmt.ncodes - 1) ^ (rng.integers(0, 2, (m // 2, n))
                                                                                  * fmt.sign_mask)
    near = np.where(np.isin(near, fin), near, mid)
    x[: m // 2] = near
    return x, y


@pytest.mark.parametrize("fmt,acc", PAIRS)
def test_random_vectors_equal_exact_model(fmt, acc):
    rng = np.random.default_rng(11)
    for i, v in enumerate(VARIANTS + (("te_e2m1_8",) if acc == "ocp_e2m1" else ())):
        order = ("pairwise", "sequential")[i % 2]
        k = _ks(acc, v)[-1] if order == "sequential" else _ks(acc, v)[0]
        x, y = _random_vectors(fmt, 6, 7, rng)
        _check(x, y, fmt, acc, order, k, v, rng)


def test_special_and_edge_vectors():
    """NaN and inf products, exact cancellation to +0, a single product and an empty vector (no rounding, no
    random integers), leading axes."""
    rng = np.random.default_rng(3)
    f = get_format("ocp_e5m2")
    inf, nan = f.inf_codes[0], f.nan_code_with_sign(0)
    one, m_one = 0x3C, 0x3C | 0x80
    x = np.array([[one, inf, one, one], [one, m_one, one, nan], [one, m_one, 0x01, 0x02], [inf, inf | 0x80, 1, 1]])
    y = np.array([[one, one, one, one], [one, one, one, one], [one, one, 0x40, 0x41], [one, one, 1, 1]])
    for v in VARIANTS:
        for order in ("sequential", "pairwise"):
            _check(x, y, "ocp_e5m2", "ocp_e5m2", order, 5, v, rng)
            _check(x[:, :1], y[:, :1], "ocp_e5m2", "binary16", order, 5, v, rng)
            empty = ffd.fdot(x[:, :0], y[:, :0], "ocp_e5m2", "binary16", order, rounding="sr",
                             rand=np.zeros((4, 0), np.int64), rand_bits=5, sr_variant=v)
            assert empty.tolist() == [0, 0, 0, 0]
    xx, yy = _random_vectors("ocp_e4m3", 24, 6, rng)
    r = rng.integers(0, 16, (2, 3, 4, 6))
    got = ffd.fdot(xx.reshape(2, 3, 4, 6), yy.reshape(2, 3, 4, 6), "ocp_e4m3", "bfloat16", rounding="sr", rand=r,
                   rand_bits=4, sr_variant="c")
    assert got.reshape(-1).tolist() == _exact(xx, yy, r.reshape(24, 6), "ocp_e4m3", "bfloat16", "sequential", 4, "c")


def test_every_random_integer():
    """Every r of a k = 4 addition at fractions of 1, 4, 5 and many bits: the results equal the exact model's, so
    the number of r rounding up is the exact model's count."""
    vecs = _hard_vectors("ocp_e5m2", "binary32", 4)
    x = np.repeat(np.array([a[:2] for a, _ in vecs]), 16, axis=0)
    y = np.repeat(np.array([b[:2] for _, b in vecs]), 16, axis=0)
    r = np.stack([np.zeros(len(x), np.int64), np.tile(np.arange(16), len(vecs))], axis=1)
    for v in VARIANTS:
        got = ffd.fdot(x, y, "ocp_e5m2", "binary32", rounding="sr", rand=r, rand_bits=4, sr_variant=v)
        assert got.tolist() == _exact(x, y, r, "ocp_e5m2", "binary32", "sequential", 4, v)


def test_the_bit_budget_is_needed():
    """One bit over :func:`sr_max_bits` the binary64 round-to-odd value no longer decides the rule: the kernel run
    past the check differs from the exact model on a fraction with bits below the binary64 significand (2^30 +
    2^-32: a binary32 fraction of 2^-39 ulp, whose round-to-odd bit sits at 2^-29 ulp)."""
    x, y = _pair("ocp_e5m2", Fraction(1 << 30)), _pair("ocp_e5m2", Fraction(1, 1 << 32))
    xs, ys = np.array([[x[0], y[0]]]), np.array([[x[1], y[1]]])
    acc = get_format("binary32")
    for v, k in (("a", 28), ("b", 27), ("c_odd", 27)):  # c_odd: a false tie at the sticky bit rounds up
        assert ffd.sr_max_bits(acc, v) == k
        r = np.array([[0, (1 << (k + 1)) - 1]])
        exact = _exact(xs, ys, r, "ocp_e5m2", "binary32", "sequential", k + 1, v)
        over = ffd._fdot(xs, ys, get_format("ocp_e5m2"), acc, "sequential", "exact", "exact", "sr", "inf", "numpy",
                         (r, k + 1, v))
        assert int(over[0]) != exact[0], v
        with pytest.raises(UnknownModeError, match="exceeds"):
            ffd.fdot(xs, ys, "ocp_e5m2", "binary32", rounding="sr", rand=r, rand_bits=k + 1, sr_variant=v)


def test_torch_equals_exact_model():
    pytest.importorskip("torch")
    import torch

    rng = np.random.default_rng(5)
    for fmt, acc, v in (("ocp_e5m2", "binary32", "c"), ("ocp_e4m3", "ocp_e4m3", "b")):
        k = _ks(acc, v)[-1]
        vecs = _hard_vectors(fmt, acc, k)
        x = np.array([a for a, _ in vecs])
        y = np.array([b for _, b in vecs])
        _check(torch.as_tensor(x), torch.as_tensor(y), fmt, acc, "pairwise", k, v, rng, backend="torch")
    xx, yy = _random_vectors("ocp_e2m1", 6, 5, rng)
    _check(torch.as_tensor(xx), torch.as_tensor(yy), "ocp_e2m1", "ocp_e2m1", "sequential", 8, "te_e2m1_8", rng,
           backend="torch")


@pytest.mark.slow
@pytest.mark.parametrize("fmt,acc", WIDE)
def test_torch_equals_numpy_wide(fmt, acc):
    pytest.importorskip("torch")
    import torch

    rng = np.random.default_rng(13)
    for v in VARIANTS + (("te_e2m1_8",) if acc == "ocp_e2m1" else ()):
        for order in ("sequential", "pairwise"):
            k = _ks(acc, v)[-1]
            x, y = _random_vectors(fmt, 4000, 9, rng)
            r = rng.integers(0, 1 << k, (4000, efd.additions(9, order)), dtype=np.int64)
            kw = dict(rounding="sr", rand_bits=k, sr_variant=v)
            a = ffd.fdot(x, y, fmt, acc, order, rand=r, **kw)
            t = ffd.fdot(torch.as_tensor(x), torch.as_tensor(y), fmt, acc, order, rand=torch.as_tensor(r),
                         backend="torch", **kw)
            assert [int(c) for c in a] == t.tolist()
            sub = slice(0, 60)
            assert [int(c) for c in a[sub]] == _exact(x[sub], y[sub], r[sub], fmt, acc, order, k, v)


def test_bad_random_bits():
    x = np.array([[0x38, 0x40, 0x41]])
    ok = dict(rounding="sr", rand_bits=4)
    cases = [
        (dict(rounding="sr", rand_bits=4), UnknownModeError, "needs rand"),
        (dict(ok, rand=np.zeros((1, 2), np.int64)), UnknownModeError, "shape"),
        (dict(ok, rand=np.zeros((1, 3)) + 0.5), UnknownModeError, "integers"),
        (dict(ok, rand=np.full((1, 3), 16)), UnknownModeError, r"\[0, 2\^4\)"),
        (dict(ok, rand=np.full((1, 3), -1)), UnknownModeError, r"\[0, 2\^4\)"),
        (dict(rounding="sr", rand_bits=0, rand=np.zeros((1, 3), np.int64)), UnknownModeError, "rand_bits"),
        (dict(rounding="sr", rand_bits=61, rand=np.zeros((1, 3), np.int64)), UnknownModeError, "exceeds"),
        (dict(rounding="sr", rand_bits=8, sr_variant="te_e2m1_8", rand=np.zeros((1, 3), np.int64)),
         UnknownModeError, "E2M1"),
        (dict(ok, sr_variant="gfloat", rand=np.zeros((1, 3), np.int64)), UnknownModeError, "alias"),
        (dict(ok, product="ocp_e4m3", rand=np.zeros((1, 3), np.int64)), UnknownModeError, "product=exact"),
        (dict(rand=np.zeros((1, 3), np.int64), rand_bits=4), UnknownModeError, "rounding='sr' only"),
    ]
    for kw, err, msg in cases:
        with pytest.raises(err, match=msg) as ei:
            ffd.fdot(x, x, "ocp_e4m3", "binary32", **kw)
        assert "\n" not in str(ei.value)
    with pytest.raises(UnknownModeError, match="binary64"):
        ffd.fdot(x, x, "ocp_e4m3", "binary64", rounding="sr", rand=np.zeros((1, 3), np.int64), rand_bits=4)
    with pytest.raises(BadValueError, match="product=exact"):
        efd.fdot([0x38], [0x38], "ocp_e4m3", "binary32", product="bfloat16", rounding="sr", rand=[0], rand_bits=4)
    # the pairwise tree takes n - 1 random integers
    with pytest.raises(UnknownModeError, match=r"shape \(1, 2\)"):
        ffd.fdot(x, x, "ocp_e4m3", "binary32", "pairwise", rand=np.zeros((1, 3), np.int64), **ok)


def test_numpy_path_without_torch():
    code = (
        "import sys\n"
        "for m in ('torch', 'torchao', 'triton'): sys.modules[m] = None\n"
        "import numpy as np\n"
        "from refarith.exact.fdot import fdot as exact\n"
        "from refarith.fast.fdot import fdot\n"
        "x = np.array([[0x38, 0x41, 0x2a, 0xb3, 0x05]]); y = np.array([[0x39, 0x3a, 0x47, 0x30, 0x11]])\n"
        "r = np.array([[3, 17, 30, 1]])\n"
        "got = fdot(x, y, 'ocp_e4m3', 'ocp_e4m3', 'pairwise', rounding='sr', rand=r, rand_bits=5, sr_variant='c')\n"
        "e = exact(x[0].tolist(), y[0].tolist(), 'ocp_e4m3', 'ocp_e4m3', 'pairwise', rounding='sr',\n"
        "          rand=r[0].tolist(), rand_bits=5, sr_variant='c')\n"
        "assert int(got[0]) == e.code and 'torch' not in [m for m in sys.modules if sys.modules[m]]\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, REFARITH_NO_TORCH="1"), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_spec_parameters_and_driver():
    from refarith.errors import SpecError
    from refarith.exact.fdot import fdot_spec
    from refarith.golden.drivers import get_driver
    from refarith.spec import parse_spec

    assert str(parse_spec("fdot(ocp_e4m3->binary32)")).endswith("rounding=rne,overflow=inf)")
    sid = "fdot(ocp_e4m3->binary32,rounding=sr,sr=gfloat,k=8)"
    assert str(parse_spec(sid)).endswith("rounding=sr,overflow=inf,sr=c,k=8)")
    for bad, msg in (("fdot(ocp_e4m3->binary32,rounding=sr)", "needs k"), ("fdot(ocp_e4m3->binary32,k=3)", "only"),
                     ("fdot(ocp_e4m3->binary32,product=bfloat16,rounding=sr,k=3)", "product=exact"),
                     ("fdot(ocp_e4m3->binary32,rounding=sr,sr=te_e2m1_8,k=8)", "E2M1")):
        with pytest.raises(SpecError, match=msg):
            parse_spec(bad)
    spec = parse_spec("fdot(ocp_e5m2->bfloat16,order=pairwise,rounding=sr,k=12)")
    d = get_driver(spec)
    assert [o.width for o in d.inputs(spec)] == [8, 8, 7]
    vecs = np.array(d.boundary(spec)[:48])
    x, y, r = vecs[:, :8], vecs[:, 8:16], vecs[:, 16:]
    want = [fdot_spec(spec, a.tolist(), b.tolist(), c.tolist()).code for a, b, c in zip(x, y, r)]
    assert [e[0] for e in (d.exact(spec, tuple(v)) for v in vecs.tolist())] == want
    assert [int(c) for c in d.fast(spec, (x, y, r), "numpy")[0]] == want
    flipped = [fdot_spec(spec, a.tolist(), b.tolist(), ((1 << 12) - 1 - c).tolist()).code for a, b, c in zip(x, y, r)]
    assert flipped != want  # the r column decides
