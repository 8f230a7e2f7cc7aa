"""Proof items run only when asked for (`pytest -m proof`, or any -m expression naming `proof`).

The full registry takes minutes; a plain `pytest` run leaves it out and says so.
"""

from __future__ import annotations


def _asked(config) -> bool:
    return "proof" in (config.getoption("markexpr") or "").replace("not proof", "")


def pytest_generate_tests(metafunc):
    """test_theorem's items, one per registry theorem, sorted by name: built only when proofs are asked for
    (otherwise its one empty-parameter item is deselected below)."""
    if metafunc.definition.name != "test_theorem":
        return
    from refarith.smt import registry

    theorems = sorted(registry.load_all().values(), key=lambda t: t.name) if _asked(metafunc.config) else []
    metafunc.parametrize("th", theorems, ids=[t.name for t in theorems])


def pytest_collection_modifyitems(config, items):
    if _asked(config):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("proof") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    if not _asked(config):
        return "proofs/: theorem items deselected; run them with `pytest -m proof` or `refarith prove`"
    return None
