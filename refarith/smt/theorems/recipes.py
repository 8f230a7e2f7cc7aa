"""Quantization-recipe theorems: the Walsh-Hadamard rotation, blockwise FP8 scaling.

* ``recipes.hadamard_orthogonal.<n>`` (exhaustive integer proof, n = 16, 32, 64, 128): the Sylvester matrix H_n
  of :func:`refarith.exact.rotation.sylvester` (built by its recursion) satisfies H_n H_n^T = n I and H_n = H_n^T,
  computed over the integers for every entry; with the exact normalisation c = 1/sqrt n of
  :func:`refarith.exact.rotation.inv_sqrt` (in Q(sqrt 2)), c * c = 1/n exactly.  Hence for every sign vector d,
  Q = c H diag(d) has Q^T Q = c^2 diag(d) H^T H diag(d) = diag(d)^2 = I (orthogonal), and the unsigned
  normalised transform c H is symmetric and orthogonal, so it is its own inverse; the signed rotation is
  inverted by x = d (.) (c H y) (:func:`refarith.exact.rotation.inverse_exact`).  The entry rule
  (-1)^popcount(i & j) of :func:`refarith.exact.rotation.hadamard_entry`, which the exact model's sequential
  orders use, is checked against the recursion entry by entry.
* ``recipes.butterfly_is_sylvester.<n>`` (exhaustive): the fast Walsh-Hadamard transform of the exact model
  (:func:`refarith.exact.rotation.butterfly_exact`) maps the basis vector e_j to column j of H_n for every j;
  the butterfly is linear (sums and differences only), so in exact arithmetic it equals H_n x for every x.
* ``recipes.fp8_block_no_overflow.<F>.<division>.<scale>`` (exhaustive over one binade): with the DeepGEMM amax
  floor (a >= fl(1e-4)), every element of a tile quantizes without clipping: fl(x * fl(1/sf)), fl(x / sf) (and the
  UE8M0 variant, r = 2^-k exact) is below the midpoint between F_max and the next value of F's grid, so RNE gives
  at most F_max and the saturating, inf and NaN overflow modes agree.  Proof: |x| <= a and rounding is monotone,
  so x = a is the worst case; for a in [fl(1e-4), 2^128) every intermediate (a/F_max >= 2.2e-7, 1/sf <= 4.5e6,
  sf <= 7.6e35) is a normal binary32, where scaling a by 2^e scales sf by 2^e and r by 2^-e exactly, so
  fl(a * r) depends only on a's significand; all 2^23 significands in [1, 2) are enumerated.
"""

from __future__ import annotations

import numpy as np

from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, theorem

SIZES = (16, 32, 64, 128)


def _orthogonal(n: int) -> Outcome:
    from fractions import Fraction

    from refarith.exact import rotation as rot

    h = rot.sylvester(n)
    for i in range(n):
        for j in range(n):
            if h[i][j] != rot.hadamard_entry(i, j):
                return Outcome(COUNTEREXAMPLE, {"i": i, "j": j, "recursion": h[i][j],
                                                "entry_rule": rot.hadamard_entry(i, j)}, True, method="enumeration")
    a = np.array(h, dtype=np.int64)  # entries +-1, sums of n <= 128 products: exact in int64
    if not (a == a.T).all():
        i, j = map(int, np.argwhere(a != a.T)[0])
        return Outcome(COUNTEREXAMPLE, {"i": i, "j": j, "H_ij": int(a[i, j]), "H_ji": int(a[j, i])}, True,
                       method="enumeration")
    g = a @ a.T
    bad = np.argwhere(g != n * np.eye(n, dtype=np.int64))
    if bad.size:
        i, j = map(int, bad[0])
        return Outcome(COUNTEREXAMPLE, {"i": i, "j": j, "HHt_ij": int(g[i, j]), "expected": n if i == j else 0},
                       True, method="enumeration")
    c = rot.inv_sqrt(n)
    cc = c * c
    if cc != rot.Q2(Fraction(1, n)):
        return Outcome(COUNTEREXAMPLE, {"c": str(c), "c*c": str(cc)}, True, method="enumeration")
    return Outcome(PROVED, detail=f"H H^T = {n} I and H = H^T over all {n * n} entries; (1/sqrt {n})^2 = 1/{n} "
                                  f"exactly (1/sqrt {n} = {c.a} + {c.b} sqrt2)", method="enumeration")


def _butterfly(n: int) -> Outcome:
    from refarith.exact import rotation as rot

    h = rot.sylvester(n)
    for j in range(n):
        e = [0] * n
        e[j] = 1
        col = rot.butterfly_exact(e)
        for i in range(n):
            if col[i] != h[i][j]:
                return Outcome(COUNTEREXAMPLE, {"j": j, "i": i, "butterfly": col[i], "H_ij": h[i][j]}, True,
                               method="enumeration")
    return Outcome(PROVED, detail=f"butterfly(e_j) = column j of H_{n} for all {n} basis vectors (linear map)",
                   method="enumeration")


for _n in SIZES:
    theorem(f"recipes.hadamard_orthogonal.{_n}",
            f"Sylvester H_{_n}: H H^T = {_n} I, H = H^T, entries (-1)^popcount(i&j), (1/sqrt {_n})^2 = 1/{_n}: the "
            "normalised rotation with any signs is orthogonal and the unsigned one self-inverse (exhaustive)",
            budget=30, tags=("recipes", "rotation"))(lambda _n=_n: _orthogonal(_n))
    theorem(f"recipes.butterfly_is_sylvester.{_n}",
            f"the exact fast Walsh-Hadamard butterfly equals H_{_n} on every basis vector, hence on every input "
            "(exhaustive over the basis; the butterfly is linear)",
            budget=30, tags=("recipes", "rotation"))(lambda _n=_n: _butterfly(_n))


# ------------------------------------------------------------------ blockwise FP8: the element cast never clips
def _block_no_overflow(fmt: str, division: str, scale: str) -> Outcome:
    """Enumeration over every binary32 significand of amax in [1, 2) (see the module docstring)."""
    from refarith.exact import fp8block as fb
    from refarith.formats import get_format

    f = get_format(fmt)
    fmax = float(f.max)
    # the midpoint between F_max and the next larger value of F's grid: RNE rounds below it to F_max
    mid = fmax + 2.0 ** (int(np.floor(np.log2(fmax))) - f.mbits) / 2
    a = (np.arange(1 << 23, dtype=np.int64) | 0x3F800000).astype(np.uint32).view(np.float32)
    sf = (a / np.float32(fmax)).astype(np.float32)
    if scale == "ue8m0":
        b = sf.view(np.uint32).astype(np.int64)
        k = ((b >> 23) & 0xFF) - 127 + ((b & 0x7FFFFF) != 0)
        sf = np.ldexp(np.float32(1), k).astype(np.float32)
    with np.errstate(over="ignore"):
        y = (a * (np.float32(1) / sf)).astype(np.float32) if division == "reciprocal" else (a / sf).astype(np.float32)
    worst = int(np.argmax(y))
    if float(y[worst]) >= mid:
        ab = int(a[worst:worst + 1].view(np.uint32)[0])
        code, codes = fb.quantize_tile([ab], fmt, scale, division)
        return Outcome(COUNTEREXAMPLE, {"amax": float(a[worst]), "y": float(y[worst]), "midpoint": mid,
                                        "exact_model_code": hex(codes[0])}, True, method="enumeration")
    return Outcome(PROVED, detail=f"max fl(a * r) / F_max = {float(y[worst]) / fmax!r} at amax significand "
                                  f"{float(a[worst])!r}; below the rounding midpoint {mid} for all 2^23 "
                                  "significands", method="enumeration")


for _f in ("ocp_e4m3", "ocp_e5m2"):
    for _d, _s in (("reciprocal", "fp32"), ("divide", "fp32"), ("reciprocal", "ue8m0")):
        theorem(f"recipes.fp8_block_no_overflow.{_f}.{_d}.{_s}",
                f"fp8_block_quantize({_f},division={_d},scale={_s},eps=deepgemm): for every finite binary32 tile "
                "amax a >= fl(1e-4) and every |x| <= a, the binary32 element x*fl(1/sf) (or x/sf) is below the "
                "rounding midpoint above F_max, so the saturating cast never clips a finite element "
                "(enumeration of the amax significand; exponent scaling and monotone rounding)",
                budget=30, tags=("recipes", "fp8block"))(lambda _f=_f, _d=_d, _s=_s: _block_no_overflow(_f, _d, _s))
