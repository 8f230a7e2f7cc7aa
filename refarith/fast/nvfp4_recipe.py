"""The NVFP4 training recipe (:mod:`refarith.exact.nvfp4_recipe`) on numpy or torch arrays: the same bits.

:func:`quantize_role` composes :func:`refarith.fast.rotation.hadamard_rotate` (the rotated roles),
:func:`refarith.fast.nvfp4.nvfp4_quantize` and :func:`refarith.fast.blocksr.nvfp4_quantize_sr` (the gradient
roles) as the exact model's roles do.
"""

from __future__ import annotations

from refarith.exact.nvfp4_recipe import RHT, RHT_FORMATS, SR_DEFAULT, role_params
from refarith.fast import nvfp4 as fnv
from refarith.fast.rotation import hadamard_rotate


def quantize_role(x, role: str, rand=None, rand_bits: int = SR_DEFAULT[1], sr_variant: str = SR_DEFAULT[0],
                  backend: str = "numpy", rht: str = "binary32", **nvfp4_kw):
    """(tensor scale, UE4M3 scale codes, E2M1 codes) of a float32 array as the recipe quantizes ``role``
    (:data:`refarith.exact.nvfp4_recipe.ROLES`); ``rand`` of x's shape for the gradient roles, None otherwise;
    ``rht``: the rotated roles' transform format (``bfloat16``: x must hold bfloat16 numbers)."""
    from refarith.errors import UnknownModeError

    tile, sr, rotated = role_params(role, rand is not None)
    if rht not in RHT_FORMATS:
        raise UnknownModeError(f"unknown rht format {rht!r}; expected one of {', '.join(RHT_FORMATS)}")
    if rht != "binary32" and not rotated:
        raise UnknownModeError(f"rht={rht} applies to the rotated roles only, not {role}")
    if rotated:
        x = hadamard_rotate(x, backend=backend, fmt=rht, **RHT)
    if sr:
        return fnv.nvfp4_quantize(x, tile=tile, rounding="sr", rand=rand, rand_bits=rand_bits,
                                  sr_variant=sr_variant, backend=backend, **nvfp4_kw)
    return fnv.nvfp4_quantize(x, tile=tile, backend=backend, **nvfp4_kw)
