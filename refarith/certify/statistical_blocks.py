"""Statistical certification of stochastic block quantization (``mx_quantize``, ``nvfp4_quantize``,
``bfp_quantize`` with ``rounding=sr``) whose randomness is internal (``--sr-samples N``).

Inputs: the blocks of the op's stochastic boundary vectors (:mod:`refarith.golden.opdrivers.blocksr`: elements
at the grid's neighbours and one or two binary32 ulps below them, fractions of exactly k and k + 1 bits, bits far
beyond 24 + k, binary32 subnormals, the element's largest value and just above it, signed zeros, blocks over a
wide exponent range, and a subsample of the deterministic boundary blocks), without their random integers.

Exact outcome of one block: the scales do not depend on the random integers, and element i depends on r_i only,
monotonically (the ``sr.block.*`` theorems), so element i is ``lo_i`` (the exact model at r_i = 0) for
r_i < t_i and ``hi_i`` (at r_i = 2^k - 1) from t_i on.  The thresholds t_i of all elements of a block are found
together by bisection, each element at its own midpoint, k + 2 calls of the exact model per block; the result is
checked at r = t and r = t - 1 (an element column that followed another element's r would fail there).
P(hi_i) = (2^k - t_i) / 2^k exactly.

Calling convention: the kernel is the deterministic op's (a block of binary32 values -> the op's results: scale
and element codes), drawing its random bits inside, called on the blocks each repeated N times consecutively
(``np.repeat(blocks, N, axis=0)``); it must draw fresh bits for every element.

Test: every element whose result depends on r is one tested input of the cast's test
(:data:`refarith.certify.statistical.TEST_NAME`: the exact two-sided binomial test of its round-up count
against Binomial(N, p), Holm at the family-wise rate alpha, default 1e-6).  An element result that is neither
neighbour, or a sample whose scale columns (or a deterministic element) differ from the exact model's, fails at
once.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

from refarith.certify.adapters import Kernel, as_outputs, call_guarded
from refarith.certify.sr import sr_bits
from refarith.errors import SpecError
from refarith.exact import ops as _ops
from refarith.golden.drivers import get_driver, is_nan_code
from refarith.spec import Spec

BLOCK_OPS = ("mx_quantize", "nvfp4_quantize", "bfp_quantize")
"""Ops whose stochastic specs are certified statistically by this module."""


@dataclass(frozen=True)
class BlockOutcome:
    """The exact distribution of one block's results: every output column at r = 0 (``lo``) and at r = 2^k - 1
    (``hi``); element i (column ``offset + i``) is ``hi`` for r_i >= ``threshold[i]``."""

    x: tuple[int, ...]
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    threshold: tuple[int, ...]
    offset: int


def _element_offset(spec: Spec) -> tuple[int, int]:
    """(first column of the element operand, number of elements): the element operand is the driver's last
    result, one element per input element."""
    d = get_driver(spec)
    outs, n = d.outputs(spec), d.inputs(spec)[0].width
    if outs[-1].width != n:
        raise SpecError(f"{spec}: the last result has {outs[-1].width} columns, not one per element ({n})")
    return sum(o.width for o in outs[:-1]), n


def block_outcome(spec: Spec, x: tuple[int, ...]) -> BlockOutcome | None:
    """The exact outcome of the block ``x`` (binary32 codes; None where the spec raises), by the joint bisection
    of the module docstring; SpecError when the exact model is not per-element monotone on it."""
    d = get_driver(spec)
    k = sr_bits(spec)
    top = (1 << k) - 1
    off, n = _element_offset(spec)

    def run(r: np.ndarray) -> np.ndarray | None:
        out = d.exact(spec, tuple(x) + tuple(int(v) for v in r))
        return None if out is None else np.array(out, dtype=object)

    lo, hi = run(np.zeros(n, dtype=np.int64)), run(np.full(n, top, dtype=np.int64))
    if lo is None or hi is None:
        return None
    if not (lo[:off] == hi[:off]).all():
        raise SpecError(f"{spec}: the exact scale of a block depends on the random integers")
    e_lo, e_hi = lo[off:], hi[off:]
    active = e_lo != e_hi
    a, b = np.zeros(n, dtype=np.int64), np.full(n, top, dtype=np.int64)
    b[~active] = 0
    while ((b - a) > 1).any():
        go = (b - a) > 1
        m = np.where(go, (a + b) // 2, b)
        got = run(m)[off:]
        up = got == e_hi
        b = np.where(go & up, m, b)
        a = np.where(go & ~up, m, a)
    t = np.where(active, b, 0)
    at_t, below = run(t), run(np.maximum(t - 1, 0))
    ok = (at_t[:off] == lo[:off]).all() and (below[:off] == lo[:off]).all()
    ok = ok and all((at_t[off + i] == e_hi[i]) and (below[off + i] == e_lo[i]) for i in np.nonzero(active)[0])
    if not ok:
        raise SpecError(f"{spec}: the exact model is not monotone per element in its own random integer on a block")
    return BlockOutcome(tuple(x), tuple(int(v) for v in lo), tuple(int(v) for v in hi), tuple(int(v) for v in t),
                        off)


def block_inputs(spec: Spec) -> list[tuple[int, ...]]:
    """The distinct blocks (binary32 codes) of the op's stochastic boundary vectors, in the driver's order."""
    if spec.op not in BLOCK_OPS:
        raise SpecError(f"{spec}: statistical block certification covers {', '.join(BLOCK_OPS)}, not {spec.op}")
    d = get_driver(spec)
    n = d.inputs(spec)[0].width
    seen: dict[tuple[int, ...], None] = {}
    for v in d.boundary(spec):
        seen.setdefault(tuple(v[:n]), None)
    return list(seen)


def run_block_statistical(spec: Spec, kernel: Kernel, samples: int, alpha: float,
                          blocks: list[tuple[int, ...]] | None = None, nan_payload_ok: bool = False):
    """(per-element results, summary, the blocks in the spec's domain) of the statistical certification
    of a block spec; the per-element results use :class:`refarith.certify.statistical.InputResult` with the
    element's binary32 input code as ``input``, its block and position in ``block``/``element``, and no spec bias
    (the element's exact scaled value is op-specific; the exact probability is reported)."""
    from refarith.certify.statistical import MAX_ELEMENTS, InputResult, binom_two_sided, judge

    t0 = time.monotonic()
    k = sr_bits(spec)
    d = get_driver(spec)
    outs = d.outputs(spec)
    efmt = outs[-1].fmt
    blocks = block_inputs(spec) if blocks is None else [tuple(int(c) for c in b) for b in blocks]
    bos = [o for o in (block_outcome(spec, b) for b in blocks) if o is not None]
    if not bos:
        raise SpecError(f"{spec}: no block of the statistical set lies in the spec's domain")
    off, n = _element_offset(spec)
    nan_t = (np.array([is_nan_code(efmt, c) for c in range(efmt.ncodes)])
             if nan_payload_ok and efmt.ncodes <= 1 << 16 else None)
    per = max(1, MAX_ELEMENTS // (samples * n))
    results: list = []
    pvals: dict[int, float] = {}
    t_kernel, n_det = 0.0, 0
    src = d.inputs(spec)[0].fmt
    for lo_i in range(0, len(bos), per):
        chunk = bos[lo_i:lo_i + per]
        xs = np.repeat(np.array([o.x for o in chunk], dtype=np.uint32), samples, axis=0)
        t1 = time.monotonic()
        raw = call_guarded(kernel.target, kernel.fn, spec, (xs,))
        got = as_outputs(kernel.target, raw, xs.shape[0], outs).reshape(len(chunk), samples, -1)
        t_kernel += time.monotonic() - t1
        for j, o in enumerate(chunk):
            g = got[j]
            lo, hi = np.array(o.lo, dtype=np.uint64), np.array(o.hi, dtype=np.uint64)
            scale_bad = (g[:, :off] != lo[:off]).any(axis=1)
            bi = lo_i + j
            for i in range(n):
                col = g[:, off + i]
                is_hi, is_lo = col == hi[off + i], col == lo[off + i]
                if nan_t is not None:
                    is_hi |= nan_t[col.astype(np.int64)] & bool(nan_t[int(hi[off + i])])
                    is_lo |= nan_t[col.astype(np.int64)] & bool(nan_t[int(lo[off + i])])
                det = o.lo[off + i] == o.hi[off + i]
                bad = scale_bad | ~(is_hi | is_lo)
                other = int(bad.sum())
                p = Fraction((1 << k) - o.threshold[i], 1 << k) if not det else Fraction(1)
                hits = int((is_hi & ~bad).sum()) if not det else samples - other
                observed = hits / samples
                bias = None if det else observed - float(p)
                n_det += det
                failed, reason, pv = False, "", None
                if other:
                    failed = True
                    n_scale = int(scale_bad.sum())
                    reason = (f"{other} of {samples} results are not the exact model's"
                              + (f" ({n_scale} with a different scale)" if n_scale else ""))
                    if not det:
                        reason = reason.replace("are not the exact model's", f"are neither {o.lo[off + i]:#x} nor "
                                                                              f"{o.hi[off + i]:#x}")
                elif not det:
                    pv = binom_two_sided(hits, samples, p)
                    pvals[len(results)] = pv
                other_code = None
                if other:
                    vals, cnt = np.unique(col[bad], return_counts=True)
                    other_code = f"{int(vals[np.argmax(cnt)]):#x}"
                results.append(InputResult(f"{o.x[i]:#010x}", str(_ops.decode(o.x[i], src)), f"{o.lo[off + i]:#x}",
                                           str(_ops.decode(o.lo[off + i], efmt)), f"{o.hi[off + i]:#x}",
                                           str(_ops.decode(o.hi[off + i], efmt)), str(p), float(p), samples, hits,
                                           other, observed, pv, bias, None, failed, reason, other_code, bi, i))
    summary = judge(results, pvals, samples, alpha, k)
    summary.update({
        "blocks": len(bos),
        "deterministic_inputs": n_det,
        "calling_convention": "each block repeated N times consecutively (np.repeat along the blocks), at most "
                              f"{MAX_ELEMENTS} elements per call",
        "kernel_seconds": round(t_kernel, 3),
        "seconds": round(time.monotonic() - t0, 3),
    })
    return results, summary, [o.x for o in bos]


def block_stage(spec: Spec, kernel: Kernel, samples: int, alpha: float, nan_payload_ok: bool = False,
                blocks: list[tuple[int, ...]] | None = None):
    """(runner Stage, statistical section of the certificate) of the statistical certification of a block spec.
    A failing element counts in the class of its binary32 input (nan_inf, subnormal, else in_range); the example
    of a class is its failing element of smallest magnitude, with its whole block as the inputs: an impossible
    result expects the likelier neighbour and got the kernel's commonest other code, a frequency off expects the
    neighbour returned too rarely and got the one returned too often."""
    from refarith.certify.runner import Example, Stage
    from refarith.certify.statistical import TEST_NAME

    t0 = time.monotonic()
    results, summary, xs = run_block_statistical(spec, kernel, samples, alpha, blocks, nan_payload_ok)
    st = Stage("statistical", f"{summary['inputs']} elements of {summary['blocks']} blocks at the hard places x "
                              f"{samples} samples; {TEST_NAME}, alpha {alpha:g}")
    st.vectors = summary["blocks"]
    d = get_driver(spec)
    src, efmt = d.inputs(spec)[0].fmt, d.outputs(spec)[-1].fmt
    best: dict[str, tuple] = {}
    for r in results:
        if not r.failed:
            continue
        v = _ops.decode(int(r.input, 16), src)
        cls = "nan_inf" if not v.is_finite else "subnormal" if 0 < abs(v.mag) < src.min_normal else "in_range"
        st.mismatches[cls] += 1
        key = abs(v.mag) if v.is_finite else Fraction(10) ** 400
        if cls not in best or key < best[cls][0]:
            best[cls] = (key, r)
    for cls, (_, r) in best.items():
        if r.other_code is not None:
            exp, got = (r.hi if r.expected >= 0.5 else r.lo), r.other_code
        else:
            exp, got = (r.hi, r.lo) if r.observed < r.expected else (r.lo, r.hi)
        x = xs[r.block]
        st.examples[cls] = Example(cls, [f"{c:#010x}" for c in x], [str(_ops.decode(c, src)) for c in x],
                                   [f"elements[{r.element}]"], [exp], [str(_ops.decode(int(exp, 16), efmt))], [got],
                                   [str(_ops.decode(int(got, 16), efmt))])
    st.seconds = time.monotonic() - t0
    section = dict(summary)
    section["per_input"] = [asdict(r) for r in results]
    return st, section

__all__ = ["BLOCK_OPS", "BlockOutcome", "block_inputs", "block_outcome", "block_stage", "run_block_statistical"]
