"""Stochastic element rounding of the MX and NVFP4 block kernels (numpy, torch; ``backend="triton"`` runs
:mod:`refarith.fast.triton_blocks`, traced from the same functions), driven by explicit random bits.

Same bits as the exact model's ``rounding="sr"`` (:func:`refarith.exact.mx.quantize_block`,
:func:`refarith.exact.nvfp4.quantize_blocks`): one random integer r of k bits per element, the variant's
decision (:mod:`refarith.exact.stochastic`) taken on the exact scaled value.  The block scales are deterministic
(MX: the E8M0 rule; NVFP4: the UE4M3 round to nearest even), and so is everything else the recipes round.

MX: V / 2^e is exact, so the kernel keeps the binary32 significand N of V and the number d of its bits below the
element's quantum; frac = (N mod 2^d) / 2^d, and :func:`refarith.fast.mx.sr_round_up` compares floor(frac * 2^K)
(K = k, k + 1 for ``b``, k + j for ``te_e2m1_8``) and, for ``c``/``c_odd``, the bits below it, with r in int64
words.  NVFP4: the element y is one binary32 value (x * fl(1/S) or x / S, rounded to nearest even as the exact
model rounds it), rounded into E2M1 the same way; a NaN y gives code 0 and an infinite y saturates to ±6, as the
exact model's nan_policy="zero" and overflow="saturate" do.

Random bits are never drawn here: ``rand`` is required, of the input's shape, integers in [0, 2^k) with
1 <= k <= :data:`refarith.fast.mx.SR_MAX_BITS`.
"""

from __future__ import annotations

import numpy as np

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact.stochastic import check_variant
from refarith.fast import mx as fmx
from refarith.fast import nvfp4 as fnv


def random_bits(rand, shape: tuple, rand_bits, sr_variant: str, target: str, xp, like):
    """``rand`` as int64 (numpy array, or torch tensor on the device of ``like``), checked: UnknownModeError naming
    the problem when it is missing, not integers, of another shape than the input, outside [0, 2^k), or when k is
    not in 1..SR_MAX_BITS or does not fit the variant and ``target``."""
    if rand is None:
        raise UnknownModeError(f"stochastic rounding needs rand: one integer of rand_bits bits per element "
                               f"(shape {tuple(shape)})")
    if not isinstance(rand_bits, int) or isinstance(rand_bits, bool) or not 1 <= rand_bits <= fmx.SR_MAX_BITS:
        raise UnknownModeError(f"rand_bits must be an integer in 1..{fmx.SR_MAX_BITS} for the fast SR kernels, "
                               f"got {rand_bits!r}")
    check_variant(sr_variant, rand_bits, target)
    if xp.name == "numpy":
        r = np.asarray(rand)
        integer = np.issubdtype(r.dtype, np.integer)  # bool is not
    else:
        t = xp.t
        r = rand if isinstance(rand, t.Tensor) else t.as_tensor(np.asarray(rand))
        integer = not (r.is_floating_point() or r.is_complex() or r.dtype == t.bool)
    if not integer:
        raise UnknownModeError(f"rand must hold integers, got dtype {r.dtype}")
    if tuple(r.shape) != tuple(shape):
        raise UnknownModeError(f"rand has shape {tuple(r.shape)}; stochastic rounding needs one integer per "
                               f"element, shape {tuple(shape)}")
    size = r.size if xp.name == "numpy" else r.numel()
    if size and (int(r.min()) < 0 or int(r.max()) >= 1 << rand_bits):
        raise UnknownModeError(f"rand values must lie in [0, 2^{rand_bits}) for rand_bits={rand_bits}")
    if xp.name == "numpy":
        return r.astype(np.int64)
    return r.to(device=like.device, dtype=xp.t.int64)


def mx_quantize_sr(x, element: str, rand, rand_bits: int, sr_variant: str = "a", axis: int = -1, block: int = 32,
                   scale: str = "floor", backend: str = "numpy"):
    """(scales uint8 E8M0 codes, element codes uint8) of :func:`refarith.fast.mx.mx_quantize` with the elements
    rounded stochastically: element i with ``rand[i]`` (k = ``rand_bits``, rule ``sr_variant``)."""
    fmt = fmx.check_mx_args(element, block, scale, "rne")
    if backend == "triton":
        from refarith.fast import triton_blocks

        return triton_blocks.mx_quantize(x, element, axis, block, scale, "sr", rand=rand, rand_bits=rand_bits,
                                         sr_variant=sr_variant)
    if backend not in ("numpy", "torch"):
        raise UnknownModeError(f"stochastic MX rounding runs on the numpy, torch and triton backends, not "
                               f"{backend!r}")
    xp = fmx.ops(backend)
    ndim = len(x.shape)
    if ndim == 0:
        raise BadValueError("mx_quantize needs an array with at least one dimension")
    axis = fmx._normalize_axis(axis, ndim)
    blocks, shape = fmx._to_blocks(x, axis, block, xp)
    bits = xp.i32(blocks)
    r = random_bits(rand, tuple(x.shape), rand_bits, sr_variant, fmt.name, xp, bits)
    rblocks, _ = fmx._to_blocks(r, axis, block, xp, dtype="int64")
    s, c = fmx.blockwise(lambda b, rb: fmx.quantize_blocks(b, fmt, scale, "sr", xp, (rb, rand_bits, sr_variant)),
                         bits, xp, rblocks)
    return fmx._scales_shape(s, shape, axis, xp), fmx._from_blocks(c, shape, axis, xp)


def nvfp4_quantize_sr(x, rand, rand_bits: int, sr_variant: str = "a", division: str = "reciprocal", levels: int = 2,
                      zero_scale: str = "eps", tile: str = "1x16", tensor_scale=None, backend: str = "numpy",
                      global_scale: str = "decode"):
    """(tensor scale, UE4M3 scale codes, E2M1 codes) of :func:`refarith.fast.nvfp4.nvfp4_quantize` with the
    elements rounded stochastically: element i with ``rand[i]`` (``rand`` of the shape of ``x``, k =
    ``rand_bits``, rule ``sr_variant``, e.g. ``te_e2m1_8`` with k = 8)."""
    fnv.check_nvfp4_args(division, levels, zero_scale, tile, global_scale)
    if backend == "triton":
        from refarith.fast import triton_blocks

        return triton_blocks.nvfp4_quantize(x, division, levels, zero_scale, tile, "sr", tensor_scale, global_scale,
                                            rand=rand, rand_bits=rand_bits, sr_variant=sr_variant)
    if backend not in ("numpy", "torch"):
        raise UnknownModeError(f"stochastic NVFP4 rounding runs on the numpy, torch and triton backends, not "
                               f"{backend!r}")
    xp = fmx.ops(backend)
    if len(x.shape) == 0:
        raise BadValueError("nvfp4_quantize needs an array with at least one dimension")
    blocks, shape = fnv._blocks(x, tile, xp)
    bits = xp.i32(blocks)
    r = random_bits(rand, tuple(x.shape), rand_bits, sr_variant, None, xp, bits)  # E2M1: every variant applies
    rblocks, _ = fnv._blocks(r, tile, xp, keep_dtype=True)
    st = fnv.tensor_scale_bits(bits, levels, tensor_scale, xp, global_scale)
    s, codes = fmx.blockwise(lambda b, rb: fnv._quantize_chunk(b, st, division, zero_scale, "sr", xp,
                                                               (rb, rand_bits, sr_variant), global_scale),
                             bits, xp, rblocks)
    st_out = None if st is None else xp.f32_from_bits(st)
    if st_out is not None and xp.name == "numpy":
        st_out = np.float32(st_out)
    return st_out, fnv._scale_shape(s, shape, tile), fnv._unblocks(codes, shape, tile, xp)


__all__ = ["mx_quantize_sr", "nvfp4_quantize_sr", "random_bits"]
