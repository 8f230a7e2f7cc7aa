"""Stochastic rounding of the fast integer quantization kernels (refarith.fast.intquant, rounding="sr").

Expected scales, zero points and codes come from refarith.exact.intquant.quantize_group with rounding="sr" and
the same random integers; never from the kernels.
"""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import UnknownModeError
from refarith.exact import intquant as eiq
from refarith.fast import intquant as fiq

VARIANTS = ("a", "b", "c", "c_odd", "te_e2m1_8")


def _exact(rows: np.ndarray, r: np.ndarray, bits: int, scheme: str, clip: str, k: int, variant: str):
    """(scales, zero points, codes) of the exact model, one group per row."""
    out = [eiq.quantize_group([float(v) for v in row], bits, scheme, clip, "sr", rand=[int(t) for t in rr],
                              rand_bits=k, sr_variant=variant) for row, rr in zip(rows, r)]
    return ([g.scale for g in out], [g.zero_point for g in out], np.array([g.q for g in out]))


def _hard_rows(bits: int, k: int, rng) -> np.ndarray:
    """Groups whose quotients x / s sit at the hard places: s = 2^p exactly (amax = qmax 2^p), quotients with
    fractions of exactly k and k + 1 bits (the c / c_odd ties), of many more bits, just below and above an
    integer, the largest code, 2^-8 - 2^-25 and 2^-8 - 2^-24 (with r = 255 the te_e2m1_8 sum is the binary32 tie
    just below 1, or the binary32 number below it) and non-dyadic quotients (a random scale), at a normal and a
    subnormal scale."""
    qmax = (1 << (bits - 1)) - 1
    rows = []
    for p in (-3, -140):
        f = [qmax, 0.5, 1.5, 2 ** -k, 1 - 2 ** -k, 1 + 2 ** -(k + 1), 3 * 2 ** -(k + 1), 2 ** -24, 1 - 2 ** -20,
             -(1 + 2 ** -(k + 1)), -0.25, -(qmax - 0.5), 0.0, 2 ** -(k + 9) + 0.5, 2 ** -8 - 2 ** -24,
             2 ** -8 - 2 ** -25]
        rows.append(np.float32(np.array(f[:16], np.float64) * 2.0 ** p))
    rows.append((rng.standard_normal(16) * 3.7).astype(np.float32))
    rows.append((rng.standard_normal(16) * 2.0 ** -135).astype(np.float32))
    return np.array(rows)


def _rand(shape, k: int, rng) -> list[np.ndarray]:
    """Random integers: uniform, all 2^k - 1, all 2^(k-1), all 0."""
    hi = 1 << k
    return [rng.integers(0, hi, shape, dtype=np.uint64).astype(np.int64), np.full(shape, hi - 1, np.int64),
            np.full(shape, hi >> 1, np.int64), np.zeros(shape, np.int64)]


def _check(x, r, bits, scheme, clip, k, variant, backend="numpy"):
    s_e, z_e, q_e = _exact(x, r, bits, scheme, clip, k, variant)
    if backend == "numpy":
        s, z, q = fiq.quantize(x, bits, scheme, "group", x.shape[1], clip, "sr", rand=r, rand_bits=k,
                               sr_variant=variant)
    else:
        import torch

        s, z, q = (t.numpy() for t in fiq.quantize_torch(torch.from_numpy(x), bits, scheme, "group", x.shape[1],
                                                           clip, "sr", rand=torch.from_numpy(r), rand_bits=k,
                                                           sr_variant=variant))
    assert [Fraction(float(v)) for v in s] == s_e
    assert z.tolist() == z_e
    np.testing.assert_array_equal(q, q_e)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("scheme,clip,bits", [("symmetric", "symmetric", 8), ("symmetric", "full", 4),
                                              ("asymmetric", "symmetric", 8)])
def test_sr_equals_exact_model_at_hard_places(variant, scheme, clip, bits):
    rng = np.random.default_rng(14)
    for k in ((8,) if variant == "te_e2m1_8" else (1, 3, 40)):
        x = _hard_rows(bits, k, rng)
        for r in _rand(x.shape, k, rng):
            _check(x, r, bits, scheme, clip, k, variant)


@pytest.mark.parametrize("variant", ("a", "c", "te_e2m1_8"))
def test_sr_every_r(variant):
    """Every r of k = 3 (8 for te) on the tie / many-bit quotients: the round-up count is exact."""
    rng = np.random.default_rng(3)
    k = 8 if variant == "te_e2m1_8" else 3
    x = _hard_rows(8, k, rng)[:1]
    x = np.repeat(x, 1 << k, axis=0)
    r = np.repeat(np.arange(1 << k, dtype=np.int64)[:, None], x.shape[1], axis=1)
    _check(x, r, 8, "symmetric", "symmetric", k, variant)


def test_sr_wide_words_and_int16():
    """k = 60 (the word limit) and 16-bit codes, whose quotients reach 2^15."""
    rng = np.random.default_rng(60)
    x = (rng.standard_normal((3, 16)) * 2.0 ** rng.integers(-30, 30, (3, 1))).astype(np.float32)
    for r in _rand(x.shape, 60, rng)[:2]:
        _check(x, r, 16, "symmetric", "symmetric", 60, "b")
        _check(x, r, 16, "asymmetric", "symmetric", 60, "c_odd")


def test_sr_layouts():
    """Channel and ragged group layouts route each random integer with its value."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((3, 10)) * 5).astype(np.float32)
    r = rng.integers(0, 16, x.shape).astype(np.int64)
    s, z, q = fiq.quantize(x, 4, "asymmetric", "channel", clip="symmetric", rounding="sr", axis=0, rand=r,
                           rand_bits=4, sr_variant="c")
    s_e, z_e, q_e = _exact(x, r, 4, "asymmetric", "symmetric", 4, "c")
    assert [Fraction(float(v)) for v in s] == s_e and z.tolist() == z_e
    np.testing.assert_array_equal(q, q_e)
    s, z, q = fiq.quantize(x, 4, "symmetric", "group", 4, rounding="sr", rand=r, rand_bits=4, sr_variant="a")
    for i, (lo, hi) in enumerate([(0, 4), (4, 8), (8, 10)]):
        s_e, _, q_e = _exact(x[:, lo:hi], r[:, lo:hi], 4, "symmetric", "symmetric", 4, "a")
        assert [Fraction(float(v)) for v in s[i::3]] == s_e
        np.testing.assert_array_equal(q[:, lo:hi], q_e)


def test_sr_torch_equals_exact_model():
    pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    for variant, k in (("a", 3), ("c", 4), ("te_e2m1_8", 8), ("b", 60)):
        x = _hard_rows(8, k, rng)
        r = _rand(x.shape, k, rng)[0]
        _check(x, r, 8, "symmetric", "symmetric", k, variant, "torch")
        _check(x, r, 4, "asymmetric", "symmetric", k, variant, "torch")
    import torch

    x = (rng.standard_normal((3, 10)) * 5).astype(np.float32)
    r = rng.integers(0, 16, x.shape).astype(np.int64)
    for layout in (dict(scheme="asymmetric", granularity="channel", axis=0, sr_variant="c"),
                   dict(scheme="symmetric", granularity="group", group=4, sr_variant="a")):
        want = fiq.quantize(x, 4, rounding="sr", rand=r, rand_bits=4, **layout)
        got = fiq.quantize_torch(torch.from_numpy(x), 4, rounding="sr", rand=torch.from_numpy(r), rand_bits=4,
                                 **layout)
        for w, g in zip(want, got):  # the numpy kernel on these layouts == the exact model: test_sr_layouts
            np.testing.assert_array_equal(g.numpy(), w)


def test_sr_bad_random_bits():
    x = np.ones((2, 4), np.float32)
    good = np.zeros((2, 4), np.int64)
    cases = [
        (dict(rand=None, rand_bits=4), "needs rand"),
        (dict(rand=good[0], rand_bits=4), "shape"),
        (dict(rand=good.astype(np.float32), rand_bits=4), "integers"),
        (dict(rand=good + 16, rand_bits=4), r"\[0, 2\^4\)"),
        (dict(rand=good, rand_bits=0), "rand_bits"),
        (dict(rand=good, rand_bits=61), "rand_bits"),
        (dict(rand=good, rand_bits=4, sr_variant="te_e2m1_8"), "k=8"),
        (dict(rand=good, rand_bits=4, sr_variant="fast"), "unknown stochastic rounding variant"),
    ]
    for kw, msg in cases:
        with pytest.raises(UnknownModeError, match=msg):
            fiq.quantize(x, 8, rounding="sr", **kw)
    with pytest.raises(UnknownModeError, match="not stochastic"):
        fiq.quantize(x, 8, rand=good, rand_bits=4)


def test_sr_numpy_path_without_torch():
    code = (
        "import sys\n"
        "for m in ('torch', 'torchao', 'triton'): sys.modules[m] = None\n"
        "import numpy as np\n"
        "from refarith.exact.intquant import quantize_group\n"
        "from refarith.fast.intquant import quantize\n"
        "x = (np.arange(16, dtype=np.float32) - 6) * np.float32(0.37); r = (np.arange(16) * 5) % 16\n"
        "s, z, q = quantize(x, 4, 'asymmetric', rounding='sr', rand=r, rand_bits=4, sr_variant='c')\n"
        "g = quantize_group([float(v) for v in x], 4, 'asymmetric', rounding='sr', rand=[int(t) for t in r],\n"
        "                   rand_bits=4, sr_variant='c')\n"
        "assert tuple(int(t) for t in q) == g.q and int(z[0]) == g.zero_point\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, REFARITH_NO_TORCH="1"), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_sr_spec_parameters():
    from refarith.errors import SpecError
    from refarith.spec import parse_spec

    assert str(parse_spec("int_quantize(int8)")).endswith("rounding=rne)")
    assert str(parse_spec("int_quantize(int8,rounding=sr,sr=gfloat,k=4)")).endswith("rounding=sr,sr=c,k=4)")
    for bad, msg in (("rounding=sr", "needs k="), ("k=4", "rounding=sr only"), ("rounding=sr,k=0", "positive"),
                     ("rounding=sr,sr=te_e2m1_8,k=8", "E2M1 grid only")):
        with pytest.raises(SpecError, match=msg):
            parse_spec(f"int_quantize(int8,{bad})")


def test_sr_driver_exact_and_fast_agree_and_use_r():
    """The golden driver's (x, r) vectors: exact model == numpy kernel, and the r column changes results."""
    from refarith.golden.drivers import get_driver
    from refarith.golden.opdrivers.blocksr import BLOCK_SR_GOLDEN_SPECS
    from refarith.spec import parse_spec

    spec = parse_spec(next(s for s in BLOCK_SR_GOLDEN_SPECS if s.startswith("int_quantize")))
    d = get_driver(spec)
    vecs = d.boundary(spec)[:24]  # the hard rows, each with the four random-integer patterns
    ex = [d.exact(spec, v) for v in vecs]
    arr = np.array(vecs, dtype=np.uint64)
    n = d.inputs(spec)[0].width
    s, z, q = d.fast(spec, (arr[:, :n].astype(np.uint32), arr[:, n:].astype(np.int64)), "numpy")
    got = [(*a, *b, *c) for a, b, c in zip(s.tolist(), z.tolist(), q.tolist())]
    assert got == [tuple(e) for e in ex]
    assert len({e for e in ex[:4]}) > 1  # same x, four r patterns
