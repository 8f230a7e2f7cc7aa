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
                               ``MX_E2M1``, ``MX_E8M0``, ``MX_INT8``): ``ctx.encode(ctx.round(x))``; codes
============================  ===========================================================================
"""

from __future__ import annotations

import importlib
import os

from refarith.certify.adapters import Kernel
from refarith.errors import KernelError

ADAPTERS = {"pychop": "pychop", "compressed_tensors": "compressed_tensors", "quark": "quark", "fpy2": "fpy2",
            "brevitas": "brevitas", "qtorch": "qtorch"}
"""Target prefix -> adapter module of this package."""

NOT_ADAPTED: dict[str, str] = {}
"""Libraries named in the deployed set that have no adapter, and why."""


REQUIRE_ENV = "REFARITH_REQUIRE_DEPLOYED"
"""Environment variable naming the adapters whose library must be installed (``1`` or ``all``: every adapter;
else a comma-separated list of target prefixes): their tests fail, where they would skip, when it is absent."""


def library(lib: str):
    """The :class:`~refarith.certify.deployed._common.Library` record of adapter ``lib``."""
    if lib not in ADAPTERS:
        raise KernelError(f"no deployed-library adapter {lib!r}; adapters: {', '.join(sorted(ADAPTERS))}")
    return importlib.import_module(f"refarith.certify.deployed.{ADAPTERS[lib]}").LIBRARY


def _names(value: str, what: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    bad = [n for n in names if n not in ADAPTERS]
    if bad:
        raise KernelError(f"{what}: unknown adapter {', '.join(bad)}; adapters: {', '.join(sorted(ADAPTERS))}")
    return names


def required(environ: dict | None = None) -> set[str]:
    """The adapters :data:`REQUIRE_ENV` names (empty when unset or ``0``); KernelError for an unknown name."""
    value = (os.environ if environ is None else environ).get(REQUIRE_ENV, "").strip()
    if value in ("", "0"):
        return set()
    if value in ("1", "all"):
        return set(ADAPTERS)
    return set(_names(value, REQUIRE_ENV))


def absent_reason(lib: str) -> str | None:
    """Why adapter ``lib`` cannot run here (its library absent, with the install line, or of a version the adapter
    was not written for), or None when its library is installed at a known version."""
    from refarith.certify.deployed._common import installed_version

    L = library(lib)
    v = installed_version(L)
    if v is None:
        return f"{L.dist} is not installed; install it with: {L.install}"
    if v not in L.known:
        return f"{L.dist} {v} installed; the adapter was written for {', '.join(L.known)}"
    return None


def needs_deployed(lib: str) -> None:
    """For tests: ``pytest.skip`` with :func:`absent_reason` when adapter ``lib`` cannot run here, or
    ``pytest.fail`` when :data:`REQUIRE_ENV` names it (an install that failed must not pass as skips)."""
    import importlib
    import importlib.util

    import pytest

    reason = absent_reason(lib)
    if reason is None:
        try:
            have_torch = importlib.util.find_spec("torch") is not None
        except (ImportError, ValueError):
            have_torch = False
        if have_torch:
            return
        try:  # without torch, a library that imports it unconditionally (pychop) is installed but unusable
            importlib.import_module(library(lib).module)
            return
        except ImportError as e:
            reason = f"{library(lib).dist} is installed but cannot be imported here ({e})"
    if lib in required():
        pytest.fail(f"{reason} ({REQUIRE_ENV} requires it)", pytrace=False)
    pytest.skip(reason)


def install_list(without: tuple[str, ...] = ()) -> list[str]:
    """The requirements that install every adapter's library but those of ``without`` with ``pip install
    --no-deps``: each library's packages in :data:`ADAPTERS` order, each requirement once.  The one list README,
    the ``deployed`` extra's comment and CI read."""
    _names(",".join(without), "--without")
    out: list[str] = []
    for lib in ADAPTERS:
        if lib not in without:
            out += [p for p in library(lib).packages if p not in out]
    return out


def load_deployed(lib: str, name: str) -> Kernel:
    """The kernel of target ``lib:name``; KernelError (one line) for a library that is absent, of a version the
    adapter was not written for, or a name the adapter does not know."""
    if lib in NOT_ADAPTED:
        raise KernelError(f"adapter {lib}: not available: {NOT_ADAPTED[lib]}")
    if lib not in ADAPTERS:
        raise KernelError(f"no deployed-library adapter {lib!r}; adapters: {', '.join(sorted(ADAPTERS))}")
    mod = importlib.import_module(f"refarith.certify.deployed.{ADAPTERS[lib]}")
    return mod.load(name)


__all__ = ["ADAPTERS", "NOT_ADAPTED", "REQUIRE_ENV", "absent_reason", "install_list", "library", "load_deployed",
           "needs_deployed", "required"]
