"""``package.module:function`` names of user callables (kernels, properties), resolved the way ``python -m`` does."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

from refarith.errors import KernelError


def import_callable(target: str, what: str = "target") -> Callable:
    """The callable named ``module:function`` (dotted attributes allowed), with the working directory on the
    import path as for ``python -m`` and pytest; KernelError names what cannot be loaded."""
    mod_name, sep, fn_name = target.partition(":")
    if not sep or not mod_name or not fn_name:
        raise KernelError(f"{what} {target!r}: expected module:function")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        mod = importlib.import_module(mod_name)
    except Exception as e:
        hint = ""
        if isinstance(e, ModuleNotFoundError) and e.name is not None and mod_name.split(".")[0] == e.name:
            hint = (f" (searched the working directory {cwd} and sys.path: run refarith from the directory that "
                    "holds the module, or add that directory to PYTHONPATH)")
        raise KernelError(f"cannot import module {mod_name!r} for {what} {target!r}: {type(e).__name__}: {e}"
                          f"{hint}") from None
    obj = mod
    for part in fn_name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise KernelError(f"module {mod_name!r} has no attribute {fn_name!r} ({what} {target!r})")
    if not callable(obj):
        raise KernelError(f"{what} {target!r} is not callable")
    return obj


__all__ = ["import_callable"]
