"""Hypothesis-driven input vectors for any spec with a driver: boundary-weighted codes, reproducible by seed, and
the shrinker that turns a failing vector into the smallest one it can find.

"Smallest" is the order of :func:`refarith.golden.drivers.magnitude_key`, column by column: a finite value before
an infinity before a NaN, smaller magnitude first (the sign does not count), the first column deciding.  The
fuzz stage reports, per mismatch class, the smallest failing vector it drew, then :func:`shrink` lowers its
columns one at a time (towards zero: smaller magnitudes, fewer mantissa bits, the sign cleared) while the kernel
still fails on it in the same class, until no single column can be made smaller.  That is a local minimum in
this order, like hypothesis's own shrinking, not a search of every smaller vector.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
from hypothesis import HealthCheck, Phase, configuration, given, settings
from hypothesis import seed as hseed
from hypothesis import strategies as st

from refarith.formats import FloatFormat
from refarith.golden.drivers import get_driver, magnitude_key
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


@contextmanager
def _isolated_hypothesis() -> Iterator[None]:
    """The draw depends on (spec, n, seed) alone and writes nothing where it runs.

    hypothesis (6.131 on) mixes into its choices constants it collects from every loaded module outside
    site-packages and the standard library — refarith itself in a source checkout, the user's kernel module — so
    the vectors of one seed would change with the modules a process happens to have loaded (a Dask worker draws
    other vectors than its driver) and with any constant in that code; for the draw the collected pool is empty
    and its per-process cache fresh (hypothesis's own fixed constants still take part).  hypothesis also caches
    what it collects in its home directory, by default ``./.hypothesis``: unless the user named one
    (HYPOTHESIS_STORAGE_DIRECTORY) the draw runs with a temporary home, removed afterwards."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:  # a hypothesis without collected constants
        providers = None
    saved = None
    if providers is not None and hasattr(providers, "_get_local_constants"):
        empty = Constants()
        saved = providers._get_local_constants, providers.CONSTANTS_CACHE
        providers._get_local_constants = lambda: empty
        providers.CONSTANTS_CACHE = type(saved[1])(1024)
    before = vars(configuration).get("__hypothesis_home_directory")
    try:
        if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
            yield
        else:
            with tempfile.TemporaryDirectory(prefix="refarith-hypothesis-") as home:
                configuration.set_hypothesis_home_dir(home)
                try:
                    yield
                finally:
                    configuration.set_hypothesis_home_dir(before)
    finally:
        if saved is not None:
            providers._get_local_constants, providers.CONSTANTS_CACHE = saved


def run_fuzz(spec: Spec | str, n: int, seed: int = 0) -> list[tuple[int, ...]]:
    """Draw about ``n`` input vectors with hypothesis (batches of up to BATCH vectors, fewer for wide vectors; fixed
    seed, no example database, the same vectors in every process, nothing written to the working directory)."""
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

    with _isolated_hypothesis():
        draw()
    return out[:n]


def _candidates(fmt, code: int) -> list[int]:
    """Codes of ``fmt`` that may be smaller than ``code`` in the magnitude order: zero, the sign cleared, the
    magnitude halved repeatedly, the low bits cleared, the magnitude minus powers of two."""
    if isinstance(fmt, FloatFormat) and fmt.signed:
        sign, mag = code & fmt.sign_mask, code & ~fmt.sign_mask & (fmt.ncodes - 1)
    else:
        sign, mag = 0, code
    mags = {0}
    for k in range(1, max(1, mag.bit_length()) + 1):
        mags.update((mag >> k, (mag >> k) << k, mag - (1 << (k - 1)), mag >> 1 << 1 | 1))
    out = set()
    for m in mags:
        if 0 <= m < mag or m == mag:
            out.add(m)
            out.add(sign | m)
    out.discard(code)
    return sorted(c for c in out if 0 <= c < fmt.ncodes)


def shrink(spec: Spec | str, run: Callable[[list[tuple[int, ...]]], list[tuple[int, ...] | None]],
           vec: tuple[int, ...], cls: str, rounds: int = 4, budget: int | None = None) -> tuple[int, ...]:
    """The smallest vector :func:`shrink`'s moves reach from ``vec`` (see the module docstring) on which the kernel
    still fails in class ``cls``.  ``run(vectors)`` returns per vector the kernel's output tuple when it mismatches
    the exact model in class ``cls``, else None.  ``budget``: at most this many candidate vectors are tried (each
    costs the exact model once; default 4000 divided by the number of columns, at least 600); past it the shrinker
    stops at the smallest vector found so far."""
    spec = parse_spec(spec)
    fin = get_driver(spec).input_formats(spec)

    def key(v: tuple[int, ...]) -> tuple:
        return tuple(magnitude_key(f, c) for f, c in zip(fin, v))

    best = tuple(vec)
    tried = 0
    budget = max(600, 4000 // max(1, len(fin))) if budget is None else budget
    for _ in range(rounds):
        moved = False
        for i, f in enumerate(fin):
            for _ in range(2 * f.nbits + 2):  # each step at least halves the distance to the column's minimum
                cands = [best[:i] + (c,) + best[i + 1:] for c in _candidates(f, best[i])]
                cands = sorted((v for v in cands if key(v) < key(best)), key=key)
                ok = None
                for lo, hi in ((0, 4), (4, 20), (20, len(cands))):  # smallest first: most columns go to 0 at once
                    part = cands[lo:hi][:max(0, budget - tried)]
                    tried += len(part)
                    hit = [v for v, r in zip(part, run(part)) if r is not None] if part else []
                    if hit:
                        ok = hit[0]
                        break
                if ok is None:
                    break
                best = ok
                moved = True
        if not moved:
            break
    return best


def mismatch_runner(spec: Spec | str, kernel, cls: str):
    """``run`` for :func:`shrink`: the kernel on the vectors, compared with the exact model, class ``cls``."""
    from refarith.certify.runner import vectors_arrays

    spec = parse_spec(spec)
    d = get_driver(spec)

    def run(vecs: list[tuple[int, ...]]) -> list[tuple[int, ...] | None]:
        ins, exp, dom = vectors_arrays(spec, vecs)
        out: list[tuple[int, ...] | None] = [None] * len(vecs)
        if not dom.any():
            return out
        got = kernel(spec, tuple(a[dom] for a in ins))
        for j, i in enumerate(np.nonzero(dom)[0].tolist()):
            g = tuple(int(x) for x in got[j])
            if g != tuple(int(x) for x in exp[i]) and (d.within_bound is None or
                                                       not d.within_bound(spec, vecs[i], tuple(exp[i]), g)) \
                    and d.mismatch_class(spec, vecs[i], g) == cls:
                out[i] = g
        return out

    return run
