"""Statistical certification of stochastic block quantization (``mx_quantize``, ``nvfp4_quantize``,
``bfp_quantize``, ``int_quantize`` with ``rounding=sr``), of element-wise arithmetic (``add``, ``sub``, ``mul``,
``div``, ``fma``) and of the dot product's accumulator (``fdot``) whose randomness is internal
(``--sr-samples N``).

Arithmetic: each input vector (the operand codes of the op's stochastic boundary vectors, without r) is one
"block" of one element that depends on its one random integer.  ``fdot``: the input vectors of
:func:`fdot_inputs`, two non-zero products (at the accumulator's hard places, placed at three pairs of
positions) and zeros, so exactly one addition is inexact: every other one adds a zero to a value of the
accumulator or a product the accumulator holds.  Which random integer decides is found from the exact model
(the one index whose value 2^k - 1 alone changes the result); the result is checked to follow that integer and
no other at the threshold (the others at 0 and at 2^k - 1).  A vector whose result depends on more than one
integer is left out and counted (``multi_rounding_inputs``).

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
and element codes; arithmetic: the operand code arrays -> the result codes; fdot: x and y, (n, 8) code arrays ->
the accumulator codes), drawing its random bits inside, called on the blocks each repeated N times consecutively
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
from functools import lru_cache

import numpy as np

from refarith.certify.adapters import Kernel, as_outputs, call_guarded
from refarith.certify.sr import sr_bits
from refarith.errors import SpecError
from refarith.exact import ops as _ops
from refarith.golden.drivers import get_driver, is_nan_code
from refarith.spec import Spec

BLOCK_OPS = ("mx_quantize", "nvfp4_quantize", "bfp_quantize", "int_quantize")
"""Block ops whose stochastic specs are certified statistically by this module."""
ELEMENT_OPS = ("add", "sub", "mul", "div", "fma")
"""Element-wise ops certified statistically here (one random integer per result)."""
CHAIN_OPS = ("fdot",)
"""Ops with one result and several random integers, certified on inputs with one inexact rounding."""


@dataclass(frozen=True)
class BlockOutcome:
    """The exact distribution of one block's results: every output column at r = 0 (``lo``) and at r = 2^k - 1
    (``hi``); element i (column ``offset + i``) is ``hi`` for r_i >= ``threshold[i]``."""

    x: tuple[int, ...]
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    threshold: tuple[int, ...]
    offset: int
    rand_index: tuple[int, ...] | None = None
    """The random integer element i follows (None: element i follows r_i)."""


def _element_offset(spec: Spec) -> tuple[int, int]:
    """(first column of the element operand, number of elements): the element operand is the driver's last
    result, one element per random integer (fdot: one element)."""
    d = get_driver(spec)
    outs, n = d.outputs(spec), d.inputs(spec)[-1].width
    if spec.op in CHAIN_OPS:
        n = 1
    if outs[-1].width != n:
        raise SpecError(f"{spec}: the last result has {outs[-1].width} columns, not one per element ({n})")
    return sum(o.width for o in outs[:-1]), n


def _rand_width(spec: Spec) -> int:
    d = get_driver(spec)
    r = d.inputs(spec)[-1]
    if r.name != "r":
        raise SpecError(f"{spec}: the driver declares no random operand")
    return r.width


@lru_cache(maxsize=1 << 14)
def block_outcome(spec: Spec, x: tuple[int, ...]) -> BlockOutcome | None:
    """The exact outcome of the block ``x`` (binary32 codes; None where the spec raises), by the joint bisection
    of the module docstring; SpecError when the exact model is not per-element monotone on it."""
    d = get_driver(spec)
    k = sr_bits(spec)
    top = (1 << k) - 1
    off, n = _element_offset(spec)
    m_r = _rand_width(spec)

    def run(r: np.ndarray) -> np.ndarray | None:
        out = d.exact(spec, tuple(x) + tuple(int(v) for v in r))
        return None if out is None else np.array(out, dtype=object)

    lo, hi = run(np.zeros(m_r, dtype=np.int64)), run(np.full(m_r, top, dtype=np.int64))
    if lo is None or hi is None:
        return None
    idx = np.arange(n)
    if m_r != n:  # one result, several random integers: the one that decides (module docstring)
        moved = []
        for j in range(m_r):
            e = np.zeros(m_r, dtype=np.int64)
            e[j] = top
            if (run(e) != lo).any():
                moved.append(j)
        if len(moved) > 1 or (not moved and (lo != hi).any()):
            return None
        idx = np.array(moved or [0])

    def full(vals: np.ndarray, rest: int = 0) -> np.ndarray:
        r = np.full(m_r, rest, dtype=np.int64)
        r[idx] = vals
        return r

    if not (lo[:off] == hi[:off]).all():
        raise SpecError(f"{spec}: the exact scale of a block depends on the random integers")
    e_lo, e_hi = lo[off:], hi[off:]
    active = e_lo != e_hi
    a, b = np.zeros(n, dtype=np.int64), np.full(n, top, dtype=np.int64)
    b[~active] = 0
    while ((b - a) > 1).any():
        go = (b - a) > 1
        m = np.where(go, (a + b) // 2, b)
        got = run(full(m))[off:]
        up = got == e_hi
        b = np.where(go & up, m, b)
        a = np.where(go & ~up, m, a)
    t = np.where(active, b, 0)
    checks = [(run(full(t, rest)), run(full(np.maximum(t - 1, 0), rest))) for rest in ((0, top) if m_r != n else (0,))]
    ok = True
    for at_t, below in checks:
        ok = ok and (at_t[:off] == lo[:off]).all() and (below[:off] == lo[:off]).all()
        ok = ok and all((at_t[off + i] == e_hi[i]) and (below[off + i] == e_lo[i]) for i in np.nonzero(active)[0])
    if not ok:
        raise SpecError(f"{spec}: the exact model is not monotone per element in its own random integer on a block")
    return BlockOutcome(tuple(x), tuple(int(v) for v in lo), tuple(int(v) for v in hi), tuple(int(v) for v in t),
                        off, None if m_r == n else tuple(int(j) for j in idx))


def fdot_inputs(spec: Spec) -> list[tuple[int, ...]]:
    """x and y codes (8 each) of ``fdot`` vectors with two non-zero products: the first two products of every row
    of :func:`refarith.golden.opdrivers.floatdot.hard_sr_vectors` (a power of two g of the accumulator plus g's
    ulp times a fraction of k or k + 1 bits, far below, both signs), at positions (0, 1), (3, 4) and (6, 7)."""
    from refarith.golden.opdrivers.floatdot import DOT, hard_sr_vectors

    out: dict[tuple[int, ...], None] = {}
    for x, y in hard_sr_vectors(spec.formats[0], spec.formats[1], sr_bits(spec)):
        for i, j in ((0, 1), (3, 4), (6, 7)):
            xs, ys = [0] * DOT, [0] * DOT
            xs[i], xs[j], ys[i], ys[j] = x[0], x[1], y[0], y[1]
            out.setdefault(tuple(xs) + tuple(ys), None)
    return list(out)


def block_inputs(spec: Spec) -> list[tuple[int, ...]]:
    """The distinct blocks (binary32 codes; arithmetic: the operand codes) of the op's stochastic boundary vectors,
    in the driver's order; fdot: :func:`fdot_inputs`."""
    if spec.op not in BLOCK_OPS + ELEMENT_OPS + CHAIN_OPS:
        raise SpecError(f"{spec}: statistical certification covers casts, "
                        f"{', '.join(BLOCK_OPS + ELEMENT_OPS + CHAIN_OPS)}, not {spec.op}")
    if spec.op in CHAIN_OPS:
        return fdot_inputs(spec)
    d = get_driver(spec)
    n = sum(o.width for o in d.inputs(spec)[:-1])
    seen: dict[tuple[int, ...], None] = {}
    for v in d.boundary(spec):
        seen.setdefault(tuple(v[:n]), None)
    return list(seen)


def _kernel_operands(spec: Spec, xs: np.ndarray) -> tuple[np.ndarray, ...]:
    """The deterministic op's operand arrays from the rows of non-random input codes ``xs``."""
    out, col = [], 0
    for o in get_driver(spec).inputs(spec)[:-1]:
        a = xs[:, col:col + o.width].astype(np.dtype(f"u{max(1, o.fmt.nbits // 8)}"))
        out.append(a[:, 0] if o.width == 1 and spec.op not in BLOCK_OPS else a)
        col += o.width
    return tuple(out)


def _element_input(spec: Spec, o: BlockOutcome, i: int) -> tuple[str, str]:
    """(codes, values) shown for element i: its binary32 input (blocks), else the vector's operands."""
    ins = get_driver(spec).inputs(spec)[:-1]
    if spec.op in BLOCK_OPS:
        src = ins[0].fmt
        return f"{o.x[i]:#010x}", str(_ops.decode(o.x[i], src))
    fmts = [f.fmt for f in ins for _ in range(f.width)]
    return (" ".join(f"{c:#x}" for c in o.x), " ".join(str(_ops.decode(c, f)) for c, f in zip(o.x, fmts)))


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
    n_multi = 0
    if spec.op in CHAIN_OPS:  # inputs outside the domain (None from the driver) are not told apart from these
        n_multi = len(blocks) - len(bos)
    if not bos:
        raise SpecError(f"{spec}: no block of the statistical set lies in the spec's domain")
    off, n = _element_offset(spec)
    nan_t = (np.array([is_nan_code(efmt, c) for c in range(efmt.ncodes)])
             if nan_payload_ok and efmt.ncodes <= 1 << 16 else None)
    per = max(1, MAX_ELEMENTS // (samples * n))
    results: list = []
    pvals: dict[int, float] = {}
    t_kernel, n_det = 0.0, 0
    for lo_i in range(0, len(bos), per):
        chunk = bos[lo_i:lo_i + per]
        xs = np.repeat(np.array([o.x for o in chunk], dtype=np.uint64), samples, axis=0)
        t1 = time.monotonic()
        raw = call_guarded(kernel.target, kernel.fn, spec, _kernel_operands(spec, xs))
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
                results.append(InputResult(*_element_input(spec, o, i), f"{o.lo[off + i]:#x}",
                                           str(_ops.decode(o.lo[off + i], efmt)), f"{o.hi[off + i]:#x}",
                                           str(_ops.decode(o.hi[off + i], efmt)), str(p), float(p), samples, hits,
                                           other, observed, pv, bias, None, failed, reason, other_code, bi, i))
    summary = judge(results, pvals, samples, alpha, k)
    summary.update({
        "blocks": len(bos),
        "deterministic_inputs": n_det,
        "multi_rounding_inputs": n_multi,
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
    efmt = d.outputs(spec)[-1].fmt
    # blocks: the class of the element's binary32 input; arithmetic and fdot: of the likelier exact result
    src = d.inputs(spec)[0].fmt if spec.op in BLOCK_OPS else efmt
    fmts = [o.fmt for o in d.inputs(spec)[:-1] for _ in range(o.width)]
    best: dict[str, tuple] = {}
    for r in results:
        if not r.failed:
            continue
        code = int(r.input, 16) if spec.op in BLOCK_OPS else int(r.hi if r.expected >= 0.5 else r.lo, 16)
        v = _ops.decode(code, src)
        small = getattr(src, "min_normal", 0)
        cls = "nan_inf" if not v.is_finite else "subnormal" if 0 < abs(v.mag) < small else "in_range"
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
        st.examples[cls] = Example(cls, [f"{c:#x}" for c in x], [str(_ops.decode(c, f)) for c, f in zip(x, fmts)],
                                   [f"elements[{r.element}]"], [exp], [str(_ops.decode(int(exp, 16), efmt))], [got],
                                   [str(_ops.decode(int(got, 16), efmt))])
    st.seconds = time.monotonic() - t0
    section = dict(summary)
    section["per_input"] = [asdict(r) for r in results]
    return st, section

__all__ = ["BLOCK_OPS", "CHAIN_OPS", "ELEMENT_OPS", "BlockOutcome", "block_inputs", "block_outcome", "block_stage",
           "fdot_inputs", "run_block_statistical"]
