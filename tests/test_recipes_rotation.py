"""Walsh-Hadamard rotations: the exact model against independent formulations (scipy's Hadamard matrix, mpmath,
float32 scalar loops), the numpy and torch kernels against the exact model, bad input."""

from __future__ import annotations

import itertools
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from refarith.errors import BadValueError, SpecError
from refarith.exact import rotation as rot
from refarith.fast import rotation as frot
from refarith.spec import parse_spec

scipy_linalg = pytest.importorskip("scipy.linalg")


def _tile(rng, n, e_spread=6):
    e = rng.integers(-30, 30)
    x = (rng.standard_normal(n) * 2.0 ** rng.integers(e - e_spread, e + 1, n)).astype(np.float32)
    x[rng.random(n) < 0.1] = 0
    return x


@pytest.mark.parametrize("n", [16, 32, 64, 128])
def test_sylvester_is_scipy_hadamard(n):
    assert (np.array(rot.sylvester(n)) == scipy_linalg.hadamard(n)).all()


def test_te_wgrad_signs_and_seeded_signs():
    # Transformer Engine pytorch/tensor/nvfp4_tensor.py get_wgrad_sign_vector (the published constant)
    assert rot.sign_vector(16, "te_wgrad") == (1, 1, 1, -1, 1, -1, -1, -1, -1, -1, -1, 1, -1, 1, -1, -1)
    import hashlib

    h = hashlib.sha256(b"refarith-hadamard-signs:32:5").digest()
    expect = tuple(-1 if (h[j // 8] >> (j % 8)) & 1 else 1 for j in range(32))
    assert rot.sign_vector(32, "seed", 5) == expect
    assert len(rot.sign_vector(1024, "seed", 1)) == 1024


@pytest.mark.parametrize("n,signs", [(16, "none"), (32, "seed"), (64, "seed"), (128, "none")])
def test_exact_normalised_matches_mpmath(n, signs):
    """y = H diag(d) x / sqrt n at 200 bits (mpmath), rounded to binary32 at mpmath's 24-bit precision (normal
    range), against the Q(sqrt 2) model."""
    rng = np.random.default_rng(n)
    d = rot.sign_vector(n, signs, 3)
    h = scipy_linalg.hadamard(n)
    for _ in range(3 if n < 128 else 1):
        x = _tile(rng, n)
        got = rot.rotate_exact(x.view(np.uint32).tolist(), "binary32", n, signs, 3, "after")
        with mpmath.workprec(200):
            s = [mpmath.fsum(mpmath.mpf(float(x[j])) * int(h[i, j]) * d[j] for j in range(n)) / mpmath.sqrt(n)
                 for i in range(n)]
        for i in range(n):
            if s[i] == 0:
                assert got[i] & 0x7FFFFFFF == 0
                continue
            with mpmath.workprec(24):
                v = float(+s[i])  # correctly rounded to 24 bits (round to nearest even)
            assert got[i] == int(np.array([v], np.float32).view(np.uint32)[0])


def test_fold_is_the_integer_matrix_product():
    rng = np.random.default_rng(7)
    for n in (16, 32):
        x = _tile(rng, n)
        got = np.array(rot.rotate_exact(x.view(np.uint32).tolist(), "binary32", n, norm="fold"), np.uint32)
        h = scipy_linalg.hadamard(n)
        exact = [sum(Fraction(float(x[j])) * int(h[i, j]) for j in range(n)) for i in range(n)]
        want = np.array([float(v) for v in exact], np.float64).astype(np.float32)  # Fraction->float: RNE; exact
        assert (got.view(np.float32) == want).all()  # the sums fit binary64 here, so one rounding either way


def test_q2_rotation_round_trips_exactly():
    rng = np.random.default_rng(3)
    for n, signs in ((32, "seed"), (16, "te_wgrad"), (128, "none")):
        x = [rot.Q2(Fraction(float(v))) for v in _tile(rng, n)]
        d = rot.sign_vector(n, signs, 9)
        c = rot.inv_sqrt(n)
        y = [v * c for v in rot.butterfly_exact([xi if s > 0 else -xi for xi, s in zip(x, d)])]
        assert rot.inverse_exact(y, n, signs, 9) == x


def test_round_q2_brackets_sqrt2():
    # sqrt(2) = 1.41421356237309504880...: binary32 RNE is 0x3FB504F3 (1.41421353816986083984375 < sqrt 2 <
    # the midpoint with 0x3FB504F4)
    assert rot.round_q2(rot.Q2(Fraction(0), Fraction(1)), "binary32") == 0x3FB504F3
    assert rot.round_q2(rot.Q2(Fraction(0), Fraction(-1)), "binary32") == 0xBFB504F3
    assert rot.round_q2(rot.inv_sqrt(32), "bfloat16") == 0x3E35  # 0.1767578125 (1/sqrt 32 = 0.17677669...)


def _f32_sequential_fold(x, n, d):
    """Row dot products in numpy float32 scalars, left to right (an independent loop)."""
    out = []
    for i in range(n):
        s = np.float32(x[0] * d[0] * rot.hadamard_entry(i, 0))
        for j in range(1, n):
            s = np.float32(s + np.float32(x[j] * d[j] * rot.hadamard_entry(i, j)))
        out.append(s)
    return np.array(out, np.float32)


def test_sequential_binary32_is_a_float32_loop():
    rng = np.random.default_rng(11)
    n = 16
    d = rot.sign_vector(n, "seed", 2)
    for _ in range(3):
        x = _tile(rng, n, 20)
        got = np.array(rot.rotate_float(x.view(np.uint32).tolist(), "binary32", n, "seed", 2, "sequential",
                                        "binary32", "fold"), np.uint32).view(np.float32)
        assert (got == _f32_sequential_fold(x, n, d)).all()


VARIANTS = [(fmt, order, acc, norm) for fmt, order, acc, norm in
            itertools.product(("binary32", "bfloat16"), rot.ORDERS, rot.ACCS, rot.NORMS)
            if not (order == "exact" and (acc == "bfloat16" or norm == "matrix"))
            and not (norm == "matrix" and order != "sequential")
            and not (order != "exact" and acc == "bfloat16" and fmt == "binary32")]


def _boundary_tiles(n, fmt, step):
    from refarith.golden.drivers import get_driver

    spec = parse_spec(f"hadamard_rotate({fmt},n={n})")
    vs = get_driver(spec).boundary(spec)
    return np.array(vs[::step], dtype=np.uint32)


@pytest.mark.parametrize("fmt,order,acc,norm", VARIANTS)
def test_kernels_match_exact_model(fmt, order, acc, norm):
    _kernels_vs_exact(8, 7, fmt, order, acc, norm)


@pytest.mark.slow
@pytest.mark.parametrize("fmt,order,acc,norm", VARIANTS)
def test_kernels_match_exact_model_n32(fmt, order, acc, norm):
    _kernels_vs_exact(32, 1, fmt, order, acc, norm)


def _kernels_vs_exact(n, step, fmt, order, acc, norm):
    rng = np.random.default_rng(5)
    codes = _boundary_tiles(n, fmt, step)
    rand = np.stack([_tile(rng, n, 12) for _ in range(4)]).view(np.uint32)
    codes = np.concatenate([codes, rand >> 16 if fmt == "bfloat16" else rand])
    x = (codes << 16 if fmt == "bfloat16" else codes).astype(np.uint32).view(np.float32)
    spec = parse_spec(f"hadamard_rotate({fmt},n={n},signs=seed,seed=4,order={order},"
                      f"{'' if order == 'exact' else f'acc={acc},'}norm={norm})")
    want = np.array([rot.rotate(spec, row.tolist()) for row in codes], np.uint32)
    for backend in ("numpy", "torch"):
        if backend == "torch":  # numpy is asserted first, so a machine without torch still checks it
            torch = pytest.importorskip("torch", reason="torch not installed: the torch kernel is untested")
        xin = x if backend == "numpy" else torch.from_numpy(x.copy())
        y = frot.hadamard_rotate(xin, n, "seed", 4, order, acc, norm, fmt, backend)
        yb = np.ascontiguousarray(y if backend == "numpy" else y.numpy(), np.float32).view(np.uint32)
        got = yb >> 16 if fmt == "bfloat16" else yb
        assert (got == want).all(), (backend, np.argwhere(got != want)[:3])


def test_torch_bfloat16_tensor_in_and_out():
    torch = pytest.importorskip("torch", reason="torch not installed")

    x = torch.randn(4, 32).to(torch.bfloat16)
    y = frot.hadamard_rotate(x, 32, order="butterfly", fmt="bfloat16", backend="torch")
    assert y.dtype == torch.bfloat16 and y.shape == x.shape
    codes = x.view(torch.int16).numpy().astype(np.uint16).astype(np.uint32)
    want = [rot.rotate_float(r.tolist(), "bfloat16", 32, order="butterfly") for r in codes]
    assert (y.view(torch.int16).numpy().astype(np.uint16) == np.array(want)).all()


def test_bad_input_one_line():
    with pytest.raises(SpecError, match="not a power of two"):
        parse_spec("hadamard_rotate(binary32,n=24)")
    with pytest.raises(SpecError, match="16-entry"):
        parse_spec("hadamard_rotate(binary32,n=32,signs=te_wgrad)")
    with pytest.raises(SpecError, match="seed applies"):
        parse_spec("hadamard_rotate(binary32,seed=3)")
    with pytest.raises(SpecError, match="norm=matrix"):
        parse_spec("hadamard_rotate(binary32,order=butterfly,norm=matrix)")
    with pytest.raises(BadValueError, match="does not tile"):
        frot.hadamard_rotate(np.zeros((2, 24), np.float32), 16)
    with pytest.raises(BadValueError, match="not a power of two"):
        frot.hadamard_rotate(np.zeros((2, 24), np.float32), 24)
    with pytest.raises(BadValueError, match="not bfloat16"):
        frot.hadamard_rotate(np.full((1, 16), 1.1, np.float32), 16, fmt="bfloat16")


def test_cli_bad_size_exits_2(capsys):
    from refarith.cli import main

    assert main(["certify", "refarith:numpy", "--spec", "hadamard_rotate(binary32,n=48)"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "power of two" in err


@pytest.mark.parametrize("n", [4, 16])
def test_numpy_butterfly_chunks_match_exact_model(monkeypatch, n):
    """The numpy binary32 butterfly rotates chunks of ``_BUTTERFLY_BLOCK / n`` rows in a transposed buffer,
    copied in panels: with small chunks (a short tail chunk, two panels per chunk) every tile, finite or
    overflowing to inf and NaN next to finite ones, is the exact model's butterfly."""
    monkeypatch.setattr(frot, "_BUTTERFLY_BLOCK", 16 * n)
    monkeypatch.setattr(frot, "_PANEL", 8 * n)
    rng = np.random.default_rng(31)
    x = np.stack([_tile(rng, n, 40) for _ in range(37)])
    x[3] = np.float32(3e38)  # overflows to inf, then inf - inf
    x[20, 1] = np.nan
    x[21, 0] = -np.inf
    x[30] *= np.float32(2.0 ** -120)  # subnormal sums
    for signs, norm in [("none", "after"), ("seed", "fold")]:
        y = frot.hadamard_rotate(x, n, signs, 3, "butterfly", "binary32", norm)
        want = rot.rotate_float(x.view(np.uint32).ravel().tolist(), "binary32", n, signs, 3, "butterfly",
                                "binary32", norm)
        assert y.view(np.uint32).ravel().tolist() == want, (signs, norm)
