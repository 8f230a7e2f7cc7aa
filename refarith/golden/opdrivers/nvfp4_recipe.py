"""Vector driver of the NVFP4 training recipe, ``nvfp4_recipe(role=..)`` (:mod:`refarith.exact.nvfp4_recipe`).

What one vector is: a small binary32 tensor, row-major, quantized as a whole (its amax gives the per-tensor
scale) -> the binary32 per-tensor scale (1.0 for ``levels=1``), the UE4M3 block scales in block order and the
E2M1 codes in the input's row-major order; the gradient roles take one random integer of k bits per element after
the tensor (operand ``r``, the elements' order, applied to the rotated elements for ``wgrad_gradient``).

* ``weight``: 16 x 32 (two 16x16 tiles, so the second tile's scale is not pinned by the tensor's amax).
* ``activation``, ``gradient``: 4 x 16 (four 1x16 blocks).
* ``wgrad_activation``, ``wgrad_gradient``: 2 x 16 (two rows, each one 16-point Hadamard run along the reduction
  axis, then two 1x16 blocks): the exact binary32 transform costs 512 exact operations a row.

Boundary vectors: the non-rotated roles take every few of the ``nvfp4_quantize`` driver's boundary vectors of the
same tile, rounding and variant (block maxima at and around every power of two and 2688 times one, subnormal,
NaN/inf, all-zero and signed-zero blocks, the divide-vs-reciprocal blocks; the gradient role: the stochastic hard
blocks with the four random-integer patterns).  The rotated roles take the boundary tiles of
``hadamard_rotate(binary32,n=16,signs=te_wgrad,order=sequential,norm=matrix)``, and pre-images of ``nvfp4_quantize``
boundary blocks under the transform (x = y M^T in binary64, rounded to binary32: the rotated x lies near the block
boundary y, not on it: most elements within one or two binary32 ulps, small ones where the sums cancel within
tens).  Random vectors: those of the ``nvfp4_quantize`` driver.
"""

from __future__ import annotations

import numpy as np

from refarith.exact import nvfp4 as _nv
from refarith.exact import nvfp4_recipe as _rec
from refarith.exact import rotation as _rot
from refarith.formats import get_format
from refarith.golden.drivers import Driver, Operand, get_driver, register_driver, schema_variants
from refarith.golden.opdrivers import F32, as_backend, exact_or_none, fixed_rng, float_view, to_numpy
from refarith.golden.opdrivers.blocks import E2M1, UE4M3
from refarith.spec import Spec, parse_spec

NVFP4_RECIPE_GOLDEN_SPECS = tuple(f"nvfp4_recipe(role={r})" for r in _rec.ROLES) + (
    "nvfp4_recipe(role=wgrad_activation,rht=bfloat16)",)
"""One golden file per role at the recipe's defaults, and the activation role of the weight-gradient GEMM with
Transformer Engine's bfloat16 transform (referenced by :func:`refarith.golden.generate.committed_specs`)."""

_RHT_SPEC = "hadamard_rotate(binary32,n=16,signs=te_wgrad,order=sequential,norm=matrix)"
_RHT_BF16_SPEC = "hadamard_rotate(bfloat16,n=16,signs=te_wgrad,order=sequential,norm=matrix)"
_F32_ONE = 0x3F800000


def _shape(spec: Spec) -> tuple[int, int]:
    role = spec.param["role"]
    if role == "weight":
        return 16, 32
    return (2, 16) if role.startswith("wgrad") else (4, 16)


def _size(spec: Spec) -> int:
    r, c = _shape(spec)
    return r * c


def _tile(spec: Spec) -> str:
    return "16x16" if spec.param["role"] == "weight" else "1x16"


def _nblocks(spec: Spec) -> int:
    return _size(spec) // (256 if _tile(spec) == "16x16" else 16)


def _k(spec: Spec) -> int:
    return int(spec.param.get("k", _rec.SR_DEFAULT[1]))


def _inputs(spec: Spec) -> tuple[Operand, ...]:
    x = Operand("x", F32, _size(spec))
    if not _rec.is_stochastic(spec):
        return (x,)
    return x, Operand("r", get_format(f"uint{_k(spec)}"), _size(spec))


def _rows(flat, c: int) -> list[list[int]]:
    return [list(flat[i:i + c]) for i in range(0, len(flat), c)]


def _exact(spec: Spec, vec: tuple[int, ...]) -> tuple[int, ...] | None:
    r, c = _shape(spec)
    n = r * c
    kw = _rec.spec_kwargs(spec)
    if _rec.is_stochastic(spec):
        kw["rand"] = _rows(vec[n:], c)
    q = exact_or_none(lambda: _rec.quantize_role(_rows(vec[:n], c), **kw))
    if q is None:
        return None
    # block j's codes go to the row-major positions of block j of an index matrix tiled the same way
    where = _nv.tiles(_rows(range(n), c), _tile(spec))
    elems = [0] * n
    for pos, codes in zip(where, q.codes):
        for p, code in zip(pos, codes):
            elems[p] = code
    ts = q.tensor_scale if q.tensor_scale is not None else _F32_ONE
    return (ts, *q.scales, *elems)


def _fast(spec: Spec, operands: tuple, backend: str) -> tuple:
    from refarith.fast.nvfp4_recipe import quantize_role

    r, c = _shape(spec)
    kw = _rec.spec_kwargs(spec)
    x = float_view(to_numpy(operands[0]), F32).reshape(-1, r, c)
    rand = to_numpy(operands[1]).astype(np.int64).reshape(x.shape) if len(operands) > 1 else None
    n = x.shape[0]
    ts = np.empty(n, dtype=np.uint32)
    ss, qs = [], []
    for i in range(n):  # the per-tensor scale is per vector: one call per vector
        ri = None if rand is None else as_backend(rand[i], backend)
        t, s, q = quantize_role(as_backend(x[i], backend), rand=ri, backend=backend, **kw)
        if t is not None and backend != "numpy":
            t = to_numpy(t)
        ts[i] = _F32_ONE if t is None else np.array([float(t)], np.float32).view(np.uint32)[0]
        ss.append(to_numpy(s).reshape(-1))
        qs.append(to_numpy(q).reshape(-1))
    return ts, np.stack(ss), np.stack(qs)


def _equivalent(spec: Spec) -> Spec:
    """The ``nvfp4_quantize`` spec of the role's tile, rounding and NVFP4 variant (the rotation left out)."""
    p = spec.param
    ps = [f"{k}={p[k]}" for k in ("division", "levels", "global_scale", "zero_scale") if k in p]
    ps.append(f"tile={_tile(spec)}")
    if _rec.is_stochastic(spec):
        ps += ["rounding=sr", f"sr={p.get('sr', _rec.SR_DEFAULT[0])}", f"k={_k(spec)}"]
    return parse_spec(f"nvfp4_quantize({','.join(ps)})")


def _reshape(vecs, n_from: int, spec: Spec) -> list[tuple[int, ...]]:
    """Vectors of the equivalent spec (``n_from`` elements, then as many random integers for a stochastic one) cut
    to this spec's element count: the first rows of x (and of r)."""
    n, sr = _size(spec), _rec.is_stochastic(spec)
    return [tuple(v[:n]) + (tuple(v[n_from:n_from + n]) if sr else ()) for v in vecs]


def _preimage(vecs: list[tuple[int, ...]], spec: Spec) -> list[tuple[int, ...]]:
    """x = y M^T row by row, M = diag(d) H / 4 the recipe's transform (binary64, rounded to binary32)."""
    n = _size(spec)
    d = np.array(_rot.sign_vector(16, _rec.RHT["signs"]), dtype=np.float64)
    mt = (np.array(_rot.sylvester(16), dtype=np.float64) * d[None, :]) / 4  # (M^T)[j][i] = d_i H_ij / 4
    out = []
    with np.errstate(all="ignore"):
        for v in vecs:
            y = np.array(v[:n], dtype=np.uint32).view(np.float32).astype(np.float64).reshape(-1, 16)
            x = (y @ mt).astype(np.float32).view(np.uint32).reshape(-1)
            out.append(tuple(int(t) for t in x) + tuple(v[n:]))
    return out


def _with_rand(spec: Spec, vecs: list[tuple[int, ...]], salt: str) -> list[tuple[int, ...]]:
    """Stochastic roles: uniform k-bit integers after each vector (deterministic roles: the vectors as they are)."""
    if not _rec.is_stochastic(spec):
        return vecs
    rng, n, k = fixed_rng(spec, salt), _size(spec), _k(spec)
    return [tuple(v) + tuple(rng.randrange(1 << k) for _ in range(n)) for v in vecs]


_STRIDE = {"weight": 10, "activation": 8, "gradient": 3}
"""Every how many of the equivalent ``nvfp4_quantize`` boundary vectors a role takes (file size)."""


def _boundary(spec: Spec) -> list[tuple[int, ...]]:
    eq = _equivalent(spec)
    base = get_driver(eq)
    n_from = base.inputs(eq)[0].width
    role = spec.param["role"]
    if not role.startswith("wgrad"):
        return _reshape(base.boundary(eq)[::_STRIDE[role]], n_from, spec)
    bf16 = spec.param.get("rht") == "bfloat16"
    tiles = get_driver(_RHT_BF16_SPEC if bf16 else _RHT_SPEC).boundary(parse_spec(_RHT_BF16_SPEC if bf16 else
                                                                                 _RHT_SPEC))
    if bf16:  # bfloat16 codes -> the binary32 bit patterns of the same values
        tiles = [tuple(c << 16 for c in t) for t in tiles]
    tiles += tiles[:len(tiles) % 2]
    rot = [tuple(tiles[i]) + tuple(tiles[i + 1]) for i in range(0, len(tiles), 2)]
    pre = _preimage(_reshape(base.boundary(eq)[::(31 if role.endswith("gradient") else 211)], n_from, spec), spec)
    return _with_rand(spec, rot, "rht") + _to_bf16(spec, pre)


def _to_bf16(spec: Spec, vecs: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """``rht=bfloat16``: the x part of each vector rounded to nearest even into bfloat16 (NaN: the quiet NaN), as
    binary32 bit patterns; other specs: the vectors as they are."""
    if spec.param.get("rht") != "bfloat16":
        return vecs
    n = _size(spec)
    out = []
    for v in vecs:
        b = np.array(v[:n], dtype=np.uint64)
        nan = (b & 0x7FFFFFFF) > 0x7F800000
        r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
        r = np.where(nan, (b & 0x80000000) | 0x7FC00000, r)
        out.append(tuple(int(t) for t in r) + tuple(v[n:]))
    return out


def _random(spec: Spec, count: int, seed: int) -> list[tuple[int, ...]]:
    eq = _equivalent(spec)
    base = get_driver(eq)
    return _to_bf16(spec, _reshape(base.random_inputs(eq, count, seed), base.inputs(eq)[0].width, spec))


def _variants(spec: Spec) -> dict[str, tuple[str, ...]]:
    out = {**schema_variants(spec, exclude=("role",)), "global_scale": _nv.GLOBAL_SCALES}
    if _rec.is_stochastic(spec):
        from refarith.exact.stochastic import SR_VARIANTS

        out["sr"] = SR_VARIANTS
    return out


register_driver(Driver(
    "nvfp4_recipe",
    inputs=_inputs,
    outputs=lambda s: (Operand("tensor_scale", F32), Operand("scales", UE4M3, _nblocks(s)),
                       Operand("elements", E2M1, _size(s))),
    exact=_exact,
    boundary=_boundary,
    variant_params=_variants,
    random=_random,
    random_count=lambda s: {"weight": 12, "activation": 64, "gradient": 48}.get(s.param["role"], 8),
    fast=_fast,
    doc="a binary32 tensor (weight 16x32, activation/gradient 4x16, wgrad inputs 2x16) and, for the gradient roles, "
        "k-bit random integers -> per-tensor scale, block scales, elements",
))

__all__ = ["NVFP4_RECIPE_GOLDEN_SPECS"]
