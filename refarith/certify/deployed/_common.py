"""What every deployed-library adapter shares: the library record, import with a version check, the cast
check and the float view of a cast's operand."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

import numpy as np

from refarith.certify.adapters import Kernel, float_view
from refarith.errors import KernelError, SpecError
from refarith.spec import Spec

UNTOUCHED = ("torch", "numpy", "mpmath")
"""Distributions no deployed library's install may name: ``--no-deps`` keeps pip off them."""


@dataclass(frozen=True)
class Library:
    """A deployed library: its distribution name, import name, the versions its adapter was written for (and
    tested with), and ``packages``: the requirements ``pip install --no-deps`` takes for it (the library, pinned,
    then the light imports it needs; those other environments commonly hold are unpinned, so an installed version
    is kept).  ``note``: said after the install line."""

    dist: str
    module: str
    known: tuple[str, ...]
    packages: tuple[str, ...]
    note: str = ""

    @property
    def install(self) -> str:
        """The install line for when the library is absent."""
        line = "pip install --no-deps " + " ".join(self.packages)
        return f"{line} ({self.note})" if self.note else line


def installed_version(lib: Library) -> str | None:
    """The installed version of ``lib`` (None when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(lib.dist)
    except PackageNotFoundError:
        return None


def require(lib: Library, target: str):
    """Import the library's module (logging silenced); KernelError when it is absent (with the install line) or
    of a version the adapter was not written for (naming the known versions)."""
    v = installed_version(lib)
    if v is None:
        raise KernelError(f"adapter {target}: {lib.dist} is not installed; install it with: {lib.install}")
    if v not in lib.known:
        raise KernelError(f"adapter {target}: written for {lib.dist} {', '.join(lib.known)}; installed is {v}")
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        return importlib.import_module(lib.module), v
    except Exception as e:  # noqa: BLE001 - a library that cannot be imported is one line, whatever it raised
        raise KernelError(f"adapter {target}: {lib.dist} {v} cannot be imported ({type(e).__name__}: {e})") from None
    finally:
        logging.disable(previous)


def cast_check(target: str, dst: str, sources: tuple[str, ...] = ("binary16", "binary32", "bfloat16")):
    """SpecError unless the spec is a cast from one of ``sources`` into ``dst``."""
    def check(spec: Spec) -> None:
        if spec.op != "cast":
            raise SpecError(f"{target} implements casts, not {spec.op}")
        if spec.formats[1] != dst:
            raise SpecError(f"{target} casts into {dst}, but the spec's target is {spec.formats[1]}")
        if spec.formats[0] not in sources:
            raise SpecError(f"{target} takes {', '.join(sources)} inputs, not {spec.formats[0]}")
        if spec.param.get("rounding") == "sr":
            raise SpecError(f"{target} rounds deterministically; it cannot implement {spec}")
    return check


def as_float32(operand: np.ndarray, fmt_name: str) -> np.ndarray:
    """A cast operand (binary16/32 or bfloat16 codes) as float32 values (exact)."""
    return np.ascontiguousarray(float_view(operand, fmt_name).astype(np.float32))


ROUNDING_NAMES = ("rne", "rna", "rtz", "rup", "rdn", "rto")


def values_kernel(target: str, fn, lib: Library, version: str, check) -> Kernel:
    """A kernel from ``fn(spec, operands) -> float values`` (one array per result): refarith maps the values to
    codes (:mod:`refarith.certify.values`)."""
    from refarith.certify.values import coded

    def run(spec: Spec, operands):
        return coded(target, fn(spec, operands), spec, len(operands[0]))

    return Kernel(target, run, f"{lib.dist} {version}", check, library=lib.dist, library_version=version)


def codes_kernel(target: str, fn, lib: Library, version: str, check, vectorized: bool = True) -> Kernel:
    """A kernel from ``fn(spec, operands) -> codes``."""
    return Kernel(target, fn, f"{lib.dist} {version}", check, vectorized=vectorized, library=lib.dist,
                  library_version=version)
