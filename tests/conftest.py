"""Test-run switches.

``REFARITH_NO_TORCH=1`` makes ``import torch`` fail for the whole run, so the numpy paths are shown to be
checked on a machine without torch (torch tests skip through ``pytest.importorskip``).

Under mutmut (``MUTANT_UNDER_TEST`` set) every test starts with the kernel caches of ``refarith.fast`` and
``refarith.exact`` emptied: mutmut forks each mutant from a process that already built the tables with the
unmutated code, and a table inherited that way would hide the mutant.
"""

from __future__ import annotations

import importlib.abc
import os
import sys

import pytest

_BLOCKED = ("torch", "torchao", "triton")


class _NoTorchFinder(importlib.abc.MetaPathFinder):
    """Makes ``import torch`` (torchao, triton, and their submodules) raise ModuleNotFoundError, as on a machine
    without them.  A finder rather than ``None`` entries in ``sys.modules``: libraries that look up
    ``sys.modules["torch"]`` (scipy's array-API helpers) treat a present ``None`` entry as torch and fail, where a
    machine without torch has no entry at all."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (REFARITH_NO_TORCH=1)", name=name)
        return None


if os.environ.get("REFARITH_NO_TORCH") == "1":
    if any(sys.modules.get(n) is not None for n in _BLOCKED):
        raise RuntimeError("REFARITH_NO_TORCH=1 but torch was imported before the test configuration")
    for _name in _BLOCKED:
        sys.modules.pop(_name, None)
    sys.meta_path.insert(0, _NoTorchFinder())

_CACHE_PREFIXES = ("refarith.fast", "refarith.exact")
_CACHE_DICTS = frozenset({"_SENT", "_TORCH_TABLES", "_LUT_CACHE"})  # fast/cast.py, fast/mx.py


def clear_kernel_caches() -> None:
    """Empty every functools cache and module-level cache dict of the loaded refarith.fast / refarith.exact modules."""
    for name, mod in list(sys.modules.items()):
        if mod is None or not name.startswith(_CACHE_PREFIXES):
            continue
        for attr, obj in list(vars(mod).items()):
            if callable(getattr(obj, "cache_clear", None)):
                obj.cache_clear()
            elif isinstance(obj, dict) and attr in _CACHE_DICTS:
                obj.clear()


if "MUTANT_UNDER_TEST" in os.environ:

    @pytest.fixture(autouse=True)
    def _fresh_kernel_caches() -> None:
        clear_kernel_caches()
