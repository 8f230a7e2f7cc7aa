"""The theorem registry as pytest items: `pytest -m proof` runs what `refarith prove` runs.

Each theorem runs in a forked worker with its own budget (a timeout fails the
item); a counterexample counts as expected only when the exact model confirms it.  The items (one per theorem,
sorted by name) are built by proofs/conftest.py, only when the run asks for proofs.
"""

from __future__ import annotations

import json

import pytest

from refarith.smt import registry


@pytest.mark.proof
def test_theorem(th: registry.Theorem) -> None:
    (r,) = registry.run([th], jobs=2)  # jobs > 1: a worker process, killed after the theorem's budget
    shown = json.dumps(r.counterexample, indent=1) if r.counterexample else ""
    assert r.ok, f"{r.name}: {r.verdict} (expected {r.expect}, confirmed={r.confirmed}) {shown} {r.detail}"
