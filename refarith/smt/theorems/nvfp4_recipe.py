"""NVFP4 training recipe: 16x16 weight tiles commute with transposition, 1x16 blocks do not.

The NVFP4 training recipe quantizes weights in 16x16 tiles so that the quantized W^T used by the backward GEMM
is the transpose of the quantized W of the forward GEMM.  Here quantize(W) is the exact model
(:func:`refarith.exact.nvfp4.quantize_blocks` over :func:`refarith.exact.nvfp4.tiles`) read back as a matrix by
:func:`quantize_matrix`: the binary32 tensor scale, the grid of UE4M3 tile scales (tile (I, J) at row I, column
J) and the R x C matrix of E2M1 codes (padding dropped).  quantize(W)^T transposes the scale grid and the code
matrix and keeps the tensor scale.

* ``nvfp4_recipe.transpose_16x16`` (proved, for every deterministic rounding and every division, levels,
  zero_scale and global_scale variant).  Proof route, in three steps, of which only the first is machine-proved:

  1. (Z3, plus the textbook fold lemma) The exact model computes a tile's scale from two statistics of its
     elements only: whether some element is NaN or infinite (an OR fold), and amax = the largest |x| as the
     unsigned integer x & 0x7FFFFFFF (a max fold from 0), both folded in row-major order.  Z3 proves, for
     symbolic binary32 bit patterns, that the amax step is max on the 31-bit magnitudes and that max and OR are
     commutative, associative and idempotent with an identity; a fold of such an operation is the same for
     every order of the same elements (the standard lemma, argued, not machine-checked), so tile (J, I) of
     W^T, holding the elements of tile (I, J) of W in transposed order, gets the same statistics and scale.
     The tensor scale is the max fold over the finite elements of the whole matrix; W^T holds the same
     elements (and, with 16x16 tiles, the same number of padding zeros, which never raise amax), so it gets
     the same tensor scale.  (A direct Z3 query comparing the two fold orders over a symbolic 16x16 tile did
     not finish in 60 s; the algebraic route replaces it.)
  2. (Construction of the exact model, not machine-checked) given the tile scale S and the tensor scale, each
     element's code is computed from that element alone (fl(x / d) or fl(x * r) with d, r functions of S and
     the tensor scale, then an E2M1 rounding).  With 16x16 tiles, element (i, j) of W and element (j, i) of
     W^T lie in tiles (I, J) and (J, I), whose element multisets are equal; so their scales and codes agree.
  3. (Exact model check) the complete statement is run through the exact model on hand-built matrices
     (zeros, a NaN, an infinity, a tile boundary value, a non-multiple-of-16 shape) and seeded random ones,
     for every variant; any difference is returned as a confirmed counterexample.

* ``nvfp4_recipe.transpose_1x16`` (counterexample expected): with 1x16 blocks the element codes of
  quantize(W^T) and quantize(W)^T differ.  The witness is the hand-built 16x16 W with W[0][1] = 64 and every
  other entry 1: W's row 0 block has amax 64, so W[0][0] = 1 quantizes with a scale for 64 (to 0 or a small
  code), while in W^T the same element sits in row 0 = column 0 of W, all ones, and quantizes to 6.  The exact
  model confirms the difference (the check computes both sides).
"""

from __future__ import annotations

import random
import struct

from refarith.exact import nvfp4 as nv
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, prove, theorem

VARIANTS = (
    {"division": "reciprocal", "levels": 2, "zero_scale": "eps"},
    {"division": "divide", "levels": 2, "zero_scale": "zero"},
    {"division": "reciprocal", "levels": 1, "zero_scale": "eps"},
    {"division": "divide", "levels": 1, "zero_scale": "eighth"},
    {"division": "divide", "levels": 2, "zero_scale": "eighth", "global_scale": "reciprocal"},
    {"division": "reciprocal", "levels": 2, "zero_scale": "eps", "rounding": "rtz"},
)


def quantize_matrix(w: list[list[int]], tile: str, **kw) -> tuple[int | None, list[list[int]], list[list[int]]]:
    """Quantize an R x C matrix of binary32 bit patterns with the exact model: (tensor scale bits or None, grid of
    UE4M3 block scales, R x C E2M1 codes).  Grid: R x ceil(C/16) for ``1x16``, ceil(R/16) x ceil(C/16) for
    ``16x16`` (row-major block order, as :func:`refarith.exact.nvfp4.tiles`); padding codes are dropped."""
    rows, cols = len(w), len(w[0]) if w else 0
    q = nv.quantize_blocks(nv.tiles(w, tile), **kw)
    nb = -(-cols // 16)
    codes = [[0] * cols for _ in range(rows)]
    if tile == "1x16":
        grid = [list(q.scales[i * nb:(i + 1) * nb]) for i in range(rows)]
        for i in range(rows):
            for b in range(nb):
                for k, c in enumerate(q.codes[i * nb + b]):
                    codes[i][b * 16 + k] = c
        return q.tensor_scale, grid, codes
    nr = -(-rows // 16)
    grid = [list(q.scales[i * nb:(i + 1) * nb]) for i in range(nr)]
    for bi in range(nr):
        for bj in range(nb):
            blk = q.codes[bi * nb + bj]
            for a in range(16):
                for b in range(16):
                    i, j = bi * 16 + a, bj * 16 + b
                    if i < rows and j < cols:
                        codes[i][j] = blk[a * 16 + b]
    return q.tensor_scale, grid, codes


def _t(m: list[list[int]]) -> list[list[int]]:
    return [list(r) for r in zip(*m)] if m and m[0] else []


def transpose_mismatch(w: list[list[int]], tile: str, **kw) -> dict | None:
    """None when quantize(W^T) = quantize(W)^T (tensor scale, codes, scale grid); else where they first differ."""
    st, grid, codes = quantize_matrix(w, tile, **kw)
    st_t, grid_t, codes_t = quantize_matrix(_t(w), tile, **kw)
    if st != st_t:
        return {"part": "tensor_scale", "W": st, "W^T": st_t}
    for i, (ra, rb) in enumerate(zip(codes_t, _t(codes))):
        for j, (a, b) in enumerate(zip(ra, rb)):
            if a != b:
                return {"part": "codes", "i": i, "j": j, "quantize(W^T)": a, "quantize(W)^T": b}
    if grid_t != _t(grid):
        return {"part": "scales", "quantize(W^T)": grid_t, "quantize(W)^T": _t(grid)}
    return None


def _f(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def hand_built() -> list[list[list[int]]]:
    """Hand-built matrices: an outlier per tile, zeros, NaN and infinity, a 20 x 36 shape (padded tiles)."""
    one, big = _f(1.0), _f(64.0)
    a = [[one] * 16 for _ in range(16)]
    a[0][1] = big
    b = [[_f((i * 16 + j - 100) / 7.0) for j in range(32)] for i in range(16)]
    b[3][20] = _f(float("nan"))
    b[12][2] = _f(float("-inf"))
    c = [[_f(0.0)] * 16 for _ in range(16)]
    c[5][9] = _f(-1e-30)
    d = [[_f(((i * 37 + j * 11) % 23 - 11) * 0.3125 * (2.0 ** ((i + j) % 9 - 4))) for j in range(36)]
         for i in range(20)]
    return [a, b, c, d]


def random_matrices(n: int, seed: int = 19) -> list[list[list[int]]]:
    """Seeded random matrices (shapes 16x16 to 32x32) of binary32 values of spread magnitude, with zeros."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        r, c = rng.choice((16, 32)), rng.choice((16, 32))
        m = [[_f(rng.choice((0.0, rng.gauss(0, 1) * 2.0 ** rng.randint(-20, 20)))) for _ in range(c)]
             for _ in range(r)]
        out.append(m)
    return out


def _stat_lemmas() -> Outcome:
    """Z3: the fold steps of the tile and tensor statistics form commutative, idempotent monoids."""
    import z3

    p, q, r = (z3.BitVec(v, 32) for v in "pqr")

    def mag(x):
        return z3.Extract(30, 0, x)

    def step(m, x):  # the exact model's amax step on |x| = x & 0x7FFFFFFF
        return z3.If(z3.ULT(m, mag(x)), mag(x), m)

    def mx(u, v):
        return z3.If(z3.ULT(u, v), v, u)

    a, b, c = (mag(x) for x in (p, q, r))
    zero = z3.BitVecVal(0, 31)
    laws = z3.And(step(a, q) == mx(a, b),  # the step is max on magnitudes
                  mx(a, b) == mx(b, a), mx(mx(a, b), c) == mx(a, mx(b, c)), mx(a, a) == a, mx(a, zero) == a,
                  step(step(zero, p), q) == step(step(zero, q), p))
    out = prove(laws, {"p": p, "q": q, "r": r}, timeout_s=30)
    if out.verdict != PROVED:
        return out
    f, g, h = (z3.Bool(v) for v in "fgh")  # the NaN/inf flag is an OR fold
    out = prove(z3.And(z3.Or(f, g) == z3.Or(g, f), z3.Or(z3.Or(f, g), h) == z3.Or(f, z3.Or(g, h)),
                       z3.Or(f, f) == f, z3.Or(f, False) == f), {"f": f, "g": g, "h": h}, timeout_s=30)
    if out.verdict != PROVED:
        return out
    return Outcome(PROVED, detail="Z3: the amax step is max on 31-bit magnitudes, commutative, associative, "
                                  "idempotent with identity 0; the NaN/inf flag is an OR fold")


@theorem("nvfp4_recipe.transpose_16x16",
         "NVFP4 with 16x16 tiles: quantize(W^T) = quantize(W)^T (element codes, tile scales, tensor scale) for every "
         "W and every deterministic variant (Z3 for the laws of the tile and tensor statistics' folds, the "
         "elementwise step by "
         "construction of the exact model, the full statement checked with the exact model on hand-built and "
         "random matrices)", budget=120, tags=("nvfp4", "recipe", "transpose"))
def _transpose_16x16() -> Outcome:
    out = _stat_lemmas()
    if out.verdict != PROVED:
        return out
    ms = hand_built() + random_matrices(3)
    for kw in VARIANTS:
        for k, w in enumerate(ms):
            bad = transpose_mismatch(w, "16x16", **kw)
            if bad is not None:
                return Outcome(COUNTEREXAMPLE, {"variant": kw, "matrix": k, **bad}, True, method="enumeration")
    return Outcome(PROVED, detail=out.detail + f"; exact model: {len(ms)} matrices x {len(VARIANTS)} variants "
                                               "transpose exactly")


@theorem("nvfp4_recipe.transpose_1x16",
         "NVFP4 with 1x16 blocks: quantize(W^T) = quantize(W)^T (expected false: the 16x16 W with W[0][1] = 64 and "
         "every other entry 1, confirmed by the exact model)",
         expect=COUNTEREXAMPLE, budget=30, tags=("nvfp4", "recipe", "transpose"))
def _transpose_1x16() -> Outcome:
    w = hand_built()[0]
    bad = transpose_mismatch(w, "1x16")
    if bad is None:
        return Outcome(PROVED, detail="the witness transposes exactly", method="enumeration")
    return Outcome(COUNTEREXAMPLE, {"W": "16x16, W[0][1] = 64.0, other entries 1.0", **bad}, True,
                   method="enumeration")
