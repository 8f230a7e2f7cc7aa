"""Identify which named variants of a spec a kernel implements.

The kernel runs once on a vector set (the driver's boundary inputs plus seeded
random inputs; every input for domains up to 2^16).  Each variant that the op's
driver declares (for casts: every deterministic rounding mode x applicable
overflow mode x NaN policy x negative policy; for MX the scale rules x element
roundings; for NVFP4 division x levels x zero-block scale x rounding; for
requantization the five multiply variants; for other ops every parameter with
a declared set of choices) is computed with the exact model on the same vectors
and compared.  A variant *matches* when no in-domain vector
differs; matches whose spec raises on some vectors (e.g. ``nan=error``) are
listed after full-domain matches, since they agree only where they are defined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refarith.certify.adapters import load_kernel
from refarith.certify.runner import check_seconds, time_limit, vectors_arrays
from refarith.errors import KernelError
from refarith.golden.drivers import get_driver, is_nan_code
from refarith.golden.generate import spec_seed
from refarith.spec import Spec, parse_spec

RANDOM = 2048


@dataclass
class VariantScore:
    spec: str
    mismatches: int
    nan_payload: int
    outside_domain: int
    compared: int

    @property
    def matches(self) -> bool:
        return self.mismatches == 0


def identify_vectors(spec: Spec) -> list[tuple[int, ...]]:
    d = get_driver(spec)
    if d.exhaustive_ok(spec):
        return d.all_inputs(spec)
    n = min(RANDOM, d.golden_random_count(spec, RANDOM))
    return d.boundary(spec) + d.random_inputs(spec, n, spec_seed(spec))


def identify(target, spec: Spec | str, nan_payload_ok: bool = False,
             vary: tuple[str, ...] | None = None, vectors: list[tuple[int, ...]] | None = None,
             timeout: float | None = None, hard_exit: bool = False, device: str | None = None) -> list[VariantScore]:
    """Scores of every variant of ``spec`` for ``target``: matches first (full domain first), then by mismatches.

    The kernel runs once, on every vector where at least one variant is defined (where none is, e.g. NaN into
    FP4 under every NaN policy, nothing can be compared); if it raises there, it runs on the base spec's domain,
    then on the vectors where every variant is defined.  ``vary``: enumerate only these variant parameters (the
    others keep the values of ``spec``).  ``vectors``: these input vectors instead of the driver's boundary and
    random ones.  ``timeout``: seconds for the kernel's runs together (KernelError past it; ``hard_exit``: see
    :func:`refarith.certify.runner.time_limit`).  A kernel that raises anything else than KernelError (SystemExit and
    KeyboardInterrupt included) or exits is a KernelError; so is a vector set on which no variant is defined.
    ``device``: as for :func:`refarith.certify.runner.certify`."""
    timeout = check_seconds(timeout, "--timeout")
    spec = parse_spec(spec)
    d = get_driver(spec)
    kernel = load_kernel(target, device)
    kernel.supports(spec)
    vecs = identify_vectors(spec) if vectors is None else [tuple(int(c) for c in v) for v in vectors]
    variants = d.variants(spec, vary)
    ins, _, dom0 = vectors_arrays(spec, vecs)
    table = [(v, *vectors_arrays(v, vecs)[1:]) for v in variants]
    union = np.zeros(len(vecs), dtype=bool)
    for _, _, dom in table:
        union |= dom
    inter = np.ones(len(vecs), dtype=bool)
    for _, _, dom in table:
        inter &= dom
    if not union.any():
        raise KernelError(f"identify: no variant of {spec} is defined on any of the {len(vecs)} vectors")
    got, err = None, None
    with time_limit(timeout, f"identify: the runs of {kernel.target}", hard_exit):
        for run in (union, dom0, inter):  # a kernel that raises on some vectors runs on a smaller common domain
            if not run.any():
                continue
            try:
                got = kernel(spec, tuple(a[run] for a in ins))
                break
            except KernelError as e:
                err = e
    if got is None:
        raise err if err is not None else KernelError(f"identify: no vector to run {kernel.target} on")
    fout = d.output_formats(spec)
    nan_cols = [np.array([is_nan_code(f, c) for c in range(f.ncodes)]) if f.ncodes <= 1 << 16 else None
                for f in fout]
    scores = []
    for v, exp_all, dom_all in table:
        exp, dom = exp_all[run], dom_all[run]
        diff = (got != exp) & dom[:, None]
        payload = np.ones(len(dom), dtype=bool)
        for j, t in enumerate(nan_cols):
            dj = diff[:, j]
            if t is None:
                payload &= ~dj
            else:
                payload &= ~dj | (t[np.minimum(exp[:, j], len(t) - 1).astype(np.int64)]
                                  & t[np.minimum(got[:, j], len(t) - 1).astype(np.int64)])
        bad = diff.any(axis=1)
        nanp = int((bad & payload).sum())
        mism = int(bad.sum()) - (nanp if nan_payload_ok else 0)
        scores.append(VariantScore(str(v), mism, nanp, int((~dom_all).sum()), int(dom.sum())))
    scores.sort(key=lambda s: (not s.matches, s.outside_domain if s.matches else 0, s.mismatches, s.spec))
    return scores


def format_scores(target: str, scores: list[VariantScore], top: int = 5) -> str:
    full = [s for s in scores if s.matches and s.outside_domain == 0]
    part = [s for s in scores if s.matches and s.outside_domain > 0]
    lines = []
    if full:
        lines.append(f"{target} matches exactly:")
        lines += [f"  {s.spec}  ({s.compared} vectors)" for s in full]
    if part:
        lines.append("matches on the variant's domain only (the variant raises on the other vectors):")
        lines += [f"  {s.spec}  ({s.compared} compared, {s.outside_domain} outside its domain)" for s in part]
    if not full and not part:
        lines.append(f"{target} matches no variant exactly; closest:")
        lines += [f"  {s.spec}: {s.mismatches} mismatches of {s.compared}"
                  + (f" ({s.nan_payload} NaN payload)" if s.nan_payload else "") for s in scores[:top]]
    return "\n".join(lines)
