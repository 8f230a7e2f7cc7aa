"""Vector driver of ``mx_fake_quantize(E,block=k)``: a block of k binary32 values -> the k binary32 values X * P_i
(:mod:`refarith.exact.mxfake`).  The vectors are those of ``mx_quantize``: the block maximum on every power of two
of the binary32 range, just below and above it, on the element maximum times a power of two and its neighbours,
subnormal maxima, NaN/infinity, all-zero and signed-zero blocks, and random blocks around one random exponent.

The committed golden file uses blocks of 4 (:data:`MX_FAKE_GOLDEN_SPECS`) so that it stays small; certifying a
kernel of another block size runs the same vectors at that size.
"""

from __future__ import annotations

from refarith.exact import mx as _mx
from refarith.exact import mxfake as _mf
from refarith.golden.drivers import Driver, Operand, register_driver, schema_variants
from refarith.golden.opdrivers import F32, as_backend, exact_or_none, float_view, to_numpy
from refarith.golden.opdrivers.blocks import _f32_block_boundaries, _f32_block_random, _fv
from refarith.spec import Spec

MX_FAKE_GOLDEN_SPECS = ("mx_fake_quantize(ocp_e2m1,block=4,scale=floor)",)
"""The golden file of MX fake quantization: MXFP4 elements (the format Quark and brevitas fake-quantize most), OCP
floor scale, blocks of 4."""


def _block(spec: Spec) -> int:
    return int(spec.param["block"])


def _exact(spec: Spec, ins: tuple[int, ...]) -> tuple[int, ...] | None:
    p = spec.param
    return exact_or_none(_mf.fake_quantize_block, [_fv(c) for c in ins], spec.formats[0], p["scale"], p["rounding"])


def _fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    import numpy as np

    from refarith.fast.mxfake import mx_fake_quantize

    p = spec.param
    y = mx_fake_quantize(as_backend(float_view(inputs[0], F32), backend), spec.formats[0], block=_block(spec),
                         scale=p["scale"], rounding=p["rounding"], backend=backend)
    return (np.ascontiguousarray(to_numpy(y), dtype=np.float32).view(np.uint32),)


def _boundary(spec: Spec) -> list[tuple[int, ...]]:
    return _f32_block_boundaries(spec, _block(spec), _mx.elem_max(spec.fmt(0)), range(-150, 128))


register_driver(Driver(
    "mx_fake_quantize",
    inputs=lambda s: (Operand("x", F32, _block(s)),),
    outputs=lambda s: (Operand("values", F32, _block(s)),),
    exact=_exact,
    boundary=_boundary,
    variant_params=schema_variants,
    random=lambda s, n, seed: _f32_block_random(_block(s))(s, n, seed),
    random_count=512,
    fast=_fast,
    doc="a block of binary32 values -> binary32 X * P_i (MX fake quantization)",
))
