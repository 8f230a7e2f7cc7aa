"""Hypothesis-driven input vectors for any spec with a driver: boundary-weighted codes, reproducible by seed."""

from __future__ import annotations

from functools import lru_cache

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hseed
from hypothesis import strategies as st

from refarith.golden.drivers import get_driver
from refarith.spec import Spec, parse_spec

BATCH = 64


@lru_cache(maxsize=64)
def _boundary_codes(spec_id: str) -> tuple[tuple[int, ...], ...]:
    """Per operand, the sorted boundary codes of the spec's driver (deduplicated)."""
    spec = parse_spec(spec_id)
    d = get_driver(spec)
    vecs = d.boundary(spec)
    n = len(d.input_formats(spec))
    return tuple(tuple(sorted({v[i] for v in vecs})) for i in range(n))


def operand_codes(spec: Spec | str, i: int = 0) -> st.SearchStrategy[int]:
    """Codes of operand ``i``: a boundary code, a boundary code +-1..3, or a uniform code (shrinks towards 0)."""
    spec = parse_spec(spec)
    f = get_driver(spec).input_formats(spec)[i]
    bnd = _boundary_codes(str(spec))[i]
    near = st.tuples(st.sampled_from(bnd), st.integers(-3, 3)).map(lambda t: min(max(t[0] + t[1], 0), f.ncodes - 1))
    return st.one_of(st.integers(0, f.ncodes - 1), st.sampled_from(bnd), near)


def input_vectors(spec: Spec | str) -> st.SearchStrategy[tuple[int, ...]]:
    """One input vector (a tuple of codes, one per operand) of ``spec``."""
    spec = parse_spec(spec)
    n = len(get_driver(spec).input_formats(spec))
    return st.tuples(*(operand_codes(spec, i) for i in range(n)))


def run_fuzz(spec: Spec | str, n: int, seed: int = 0) -> list[tuple[int, ...]]:
    """Draw about ``n`` input vectors with hypothesis (batches of up to BATCH vectors, fewer for wide vectors; fixed
    seed, no example database)."""
    spec = parse_spec(spec)
    out: list[tuple[int, ...]] = []
    width = len(get_driver(spec).input_formats(spec))
    batch = max(1, BATCH // max(1, width // 2))  # wide vectors (blocks, matrices): fewer per example
    batches = max(1, -(-n // batch))

    @hseed(seed)
    @settings(max_examples=batches, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.lists(input_vectors(spec), min_size=batch, max_size=batch))
    def draw(batch):
        out.extend(batch)

    draw()
    return out[:n]
