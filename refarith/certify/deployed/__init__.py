"""Adapters of deployed quantization libraries: ``LIBRARY:NAME`` targets for their casts and quantizers.

One module per library; each states the library versions it was written for, the install line to use when the
library is absent, and the calling convention of its targets.  Most of these libraries fake-quantize (return
float values on the target grid): their kernels are values kernels (:mod:`refarith.certify.values`), refarith
doing the value -> code step, so a value off the format's grid is the mismatch class ``off_grid``.

============================  ===========================================================================
``pychop:<format>[+<mode>]``   ``pychop.Chop(exp_bits, sig_bits, rmode)`` (numpy backend) into an IEEE-like
                               format (ieee_e4m3, ocp_e5m2, binary16, bfloat16, ...); values
``compressed_tensors:<fmt>``   ``compressed_tensors.quantization.lifecycle.forward.quantize`` with scale 1
                               (fp8: clamp to +-448 then ``.to(float8_e4m3fn)``; fp4: ``cast_to_fp4``); values;
                               ``nvfp4``: its NVFP4 recipe on nvfp4_quantize (the variant
                               ``global_scale=reciprocal,zero_scale=eighth``)
``quark:<fmt>``                AMD Quark's CPU fake quantizers ``quant_dequant_fp8_e4m3/e5m2``; values;
                               ``mx_<element>[+floor|ceil|even]``: its ``fake_quantize_mx`` in that mode (default
                               even) on mx_fake_quantize; values
``brevitas:<fmt>[+nonsat]``    brevitas' minifloat ``FloatQuant`` with scale 1 (fp8_e4m3, fp8_e5m2; OCP encodings,
                               saturating unless ``+nonsat``); values; ``mxfp8_e4m3`` / ``mxint8``: its OCP MX
                               activation quantizers MXFloat8e4m3Act / MXInt8Act on mx_quantize; values
``qtorch:binary16|bfloat16``   qtorch's CPU ``float_quantize(x, exp, man, "nearest")`` on casts from binary32
                               (its extension builds on first import: set TORCH_EXTENSIONS_DIR); values
``fpy2:<context>[+<mode>]``    fpy2's MX contexts (``MX_E4M3``, ``MX_E5M2``, ``MX_E3M2``, ``MX_E2M3``,
                               ``MX_E2M1``, ``MX_E8M0``): ``ctx.encode(ctx.round(x))``; codes
============================  ===========================================================================
"""

from __future__ import annotations

import importlib

from refarith.certify.adapters import Kernel
from refarith.errors import KernelError

ADAPTERS = {"pychop": "pychop", "compressed_tensors": "compressed_tensors", "quark": "quark", "fpy2": "fpy2",
            "brevitas": "brevitas", "qtorch": "qtorch"}
"""Target prefix -> adapter module of this package."""

NOT_ADAPTED: dict[str, str] = {}
"""Libraries named in the deployed set that have no adapter, and why."""


def load_deployed(lib: str, name: str) -> Kernel:
    """The kernel of target ``lib:name``; KernelError (one line) for a library that is absent, of a version the
    adapter was not written for, or a name the adapter does not know."""
    if lib in NOT_ADAPTED:
        raise KernelError(f"adapter {lib}: not available: {NOT_ADAPTED[lib]}")
    if lib not in ADAPTERS:
        raise KernelError(f"no deployed-library adapter {lib!r}; adapters: {', '.join(sorted(ADAPTERS))}")
    mod = importlib.import_module(f"refarith.certify.deployed.{ADAPTERS[lib]}")
    return mod.load(name)


__all__ = ["ADAPTERS", "NOT_ADAPTED", "load_deployed"]
