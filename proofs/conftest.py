"""Proof items run only when asked for (`pytest -m proof`, or any -m expression naming `proof`).

The full registry takes minutes; a plain `pytest` run leaves it out and says so.
"""

from __future__ import annotations


def pytest_collection_modifyitems(config, items):
    if "proof" in (config.getoption("markexpr") or "").replace("not proof", ""):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("proof") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    if "proof" not in (config.getoption("markexpr") or "").replace("not proof", ""):
        return "proofs/: theorem items deselected; run them with `pytest -m proof` or `refarith prove`"
    return None
