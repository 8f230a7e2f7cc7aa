"""Vector drivers of the quantization recipes: Walsh-Hadamard rotations.

What one vector is:

* ``hadamard_rotate(F,n=..)``: one tile of n codes of F (binary32 or bfloat16) -> the n rotated codes of F.

Boundary vectors: zeros of both signs, every basis vector scaled by powers of two over the whole exponent range
(an unnormalised result that is one value times +-1, a normalised one that is that value over sqrt n, where the
irrational 1/sqrt n of odd log2 n must round correctly), all-maximum tiles with both sign patterns (overflow in
the sums, exact cancellation), subnormal tiles, one NaN or infinity in a tile and both infinities in one tile
(inf - inf is NaN); random vectors draw a tile around one random exponent.
"""

from __future__ import annotations

import random

import numpy as np

from refarith.exact import rotation as _rot
from refarith.formats import get_format
from refarith.golden.drivers import Driver, Operand, register_driver, schema_variants
from refarith.golden.opdrivers import as_backend, exact_or_none, fixed_rng, random_f32, to_numpy
from refarith.spec import Spec

RECIPE_GOLDEN_SPECS = (
    "hadamard_rotate(binary32,n=16)",
    "hadamard_rotate(binary32,n=32,signs=seed,seed=1)",
    "hadamard_rotate(binary32,n=128,order=butterfly)",
    "hadamard_rotate(bfloat16,n=16,signs=te_wgrad,order=sequential,norm=matrix)",
)
"""The recipe specs of the committed golden set (referenced by :func:`refarith.golden.generate.committed_specs`)."""


def _n(spec: Spec) -> int:
    return int(spec.param["n"])


def _to_fmt(codes32: list[int], fmt: str) -> tuple[int, ...]:
    """binary32 codes as codes of ``fmt`` (bfloat16: the top half, i.e. binary32 values truncated)."""
    if fmt == "bfloat16":
        return tuple(c >> 16 for c in codes32)
    return tuple(codes32)


def _rot_exact(spec: Spec, ins: tuple[int, ...]) -> tuple[int, ...] | None:
    out = exact_or_none(_rot.rotate, spec, list(ins))
    return None if out is None else tuple(out)


def _rot_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast.rotation import hadamard_rotate

    p = spec.param
    fmt = spec.formats[0]
    c = np.asarray(inputs[0]).astype(np.uint32)
    x = (c << 16 if fmt == "bfloat16" else c).view(np.float32)
    y = hadamard_rotate(as_backend(x, backend), _n(spec), p["signs"], int(p.get("seed", "0")), p["order"],
                        p.get("acc", "binary32"), p["norm"], fmt, backend)
    yb = np.ascontiguousarray(to_numpy(y), dtype=np.float32).view(np.uint32)
    return (yb >> 16 if fmt == "bfloat16" else yb,)


def _rot_boundary(spec: Spec) -> list[tuple[int, ...]]:
    n, fmt = _n(spec), spec.formats[0]
    rng = fixed_rng(spec, "hadamard")
    f32max = 0x7F7FFFFF if fmt == "binary32" else 0x7F7F0000
    out: list[list[int]] = [[0] * n, [0x80000000] * n, [(j & 1) << 31 for j in range(n)]]
    step = 13 if n > 32 else (7 if spec.param["order"] == "sequential" else 3)  # sequential: n^2 roundings
    for e in range(-149, 128, step):
        j = rng.randrange(n)
        v = [0] * n
        v[j] = (e + 127) << 23 if e >= -126 else 1 << (e + 149)
        out.append(v)
        w = [random_f32(rng, e, spread=3, p_zero=0.2) for _ in range(n)]
        out.append(w)
    out.append([f32max] * n)
    out.append([f32max | ((j & 1) << 31) for j in range(n)])
    out.append([f32max | (((j >> 1) & 1) << 31) for j in range(n)])
    out.append([rng.randrange(1, 1 << 23) | (rng.randrange(2) << 31) for _ in range(n)])  # subnormals
    for special in (0x7FC00000, 0x7F800000, 0xFF800000):
        v = [random_f32(rng, 0, spread=4) for _ in range(n)]
        v[rng.randrange(n)] = special
        out.append(v)
    v = [0x3F800000] * n
    v[0], v[n - 1] = 0x7F800000, 0xFF800000
    out.append(v)
    return [_to_fmt(v, fmt) for v in out]


def _rot_random(spec: Spec, count: int, seed: int) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    n, fmt = _n(spec), spec.formats[0]
    out = []
    for _ in range(count):
        e0 = rng.randint(-140, 120)
        sp = rng.choice((1, 4, 12))
        out.append(_to_fmt([random_f32(rng, e0, spread=sp, p_zero=0.05) for _ in range(n)], fmt))
    return out


register_driver(Driver(
    "hadamard_rotate",
    inputs=lambda s: (Operand("x", get_format(s.formats[0]), _n(s)),),
    outputs=lambda s: (Operand("y", get_format(s.formats[0]), _n(s)),),
    exact=_rot_exact,
    boundary=_rot_boundary,
    variant_params=lambda s: schema_variants(s, exclude=("n", "signs", "seed")),
    random=_rot_random,
    random_count=lambda s: max(8, (512 if s.param["order"] == "sequential" else 2048) // _n(s)),
    fast=_rot_fast,
    doc="one tile of n binary32 / bfloat16 codes -> the n rotated codes",
))
