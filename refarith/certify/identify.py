"""Identify which named variants of a spec a kernel implements.

The kernel runs once on a vector set (the driver's boundary inputs plus seeded
random inputs; every input for domains up to 2^16).  Each variant that the op's
driver declares (for casts: every deterministic rounding mode x applicable
overflow mode x NaN policy x negative policy) is computed with the exact model
on the same vectors and compared.  A variant *matches* when no in-domain vector
differs; matches whose spec raises on some vectors (e.g. ``nan=error``) are
listed after full-domain matches, since they agree only where they are defined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refarith.certify.adapters import code_dtype, load_kernel
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
    return d.boundary(spec) + d.random_inputs(spec, RANDOM, spec_seed(spec))


def identify(target, spec: Spec | str, nan_payload_ok: bool = False) -> list[VariantScore]:
    """Scores of every variant of ``spec`` for ``target``: matches first (full domain first), then by mismatches."""
    spec = parse_spec(spec)
    d = get_driver(spec)
    kernel = load_kernel(target)
    kernel.supports(spec)
    vecs = identify_vectors(spec)
    fin, fout = d.input_formats(spec), d.output_format(spec)
    ins = tuple(np.array(col, dtype=np.int64).astype(code_dtype(f.nbits)) for col, f in zip(zip(*vecs), fin))
    # The kernel may fail on inputs a spec calls invalid (NaN into FP4); run per vector block, recording failures.
    got = kernel(spec, ins)
    isnan = np.array([is_nan_code(fout, c) for c in range(fout.ncodes)]) if fout.ncodes <= 1 << 16 else None
    scores = []
    for v in d.variants(spec):
        exp = np.array([(lambda r: -1 if r is None else r)(d.exact(v, x)) for x in vecs], dtype=np.int64)
        dom = exp >= 0
        diff = (got != exp) & dom
        nanp = 0
        if isnan is not None:
            nanp = int((diff & isnan[np.where(dom, exp, 0)] & isnan[got]).sum())
        mism = int(diff.sum()) - (nanp if nan_payload_ok else 0)
        scores.append(VariantScore(str(v), mism, nanp, int((~dom).sum()), int(dom.sum())))
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
