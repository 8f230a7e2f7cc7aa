"""Statistical certification of stochastic-rounding kernels whose randomness is internal (``--sr-samples N``).

Inputs: the hard places of the cast (:func:`refarith.certify.sr.sr_inputs`: just above and below every
destination value, ties, fractions with more bits than k, the carry into the next binade, the overflow
boundary, subnormals, both signs, plus deterministic inputs).  For each input the exact model gives its two
possible results ``lo``/``hi`` and the exact probability p of ``hi`` (:func:`refarith.certify.sr.outcome`).

Calling convention: the kernel is the deterministic cast's (input array -> output codes) with its random bits
drawn inside; it is called on blocks of inputs, each input repeated N times consecutively
(``np.repeat(x, N)``), so one call yields N independent roundings of every input in the block; a kernel must
draw fresh random bits for every element.

Test: per non-deterministic input, the number of ``hi`` results among N is tested against Binomial(N, p) with
the exact two-sided binomial test (p-value: the total probability of the counts no more likely than the observed
one, scipy's ``binomtest`` convention), computed in float64 log space from ``math.lgamma`` and recomputed with
mpmath at 50 digits when it lies within a factor 1 + 1e-6 of its threshold.  Family-wise false-alarm rate
``alpha`` (default 1e-6) over the M tested inputs by Holm's step-down procedure; the verdict (fail iff some
p-value <= alpha / M) is Bonferroni's.  A result that is neither ``lo`` nor ``hi`` (or any deviation on a
deterministic input) fails at once: it is impossible under the spec, so it costs no false-alarm rate.
Reported per input: the expected probability, the observed frequency, the p-value and the implied bias of the
kernel in ulps (observed minus expected frequency, in units of hi - lo), with the spec's own bias (expected
frequency minus the exact fraction of the gap).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

from refarith.certify.adapters import Kernel, as_outputs, call_guarded
from refarith.certify.sr import Outcome, outcomes, rand_dtype, sr_bits, sr_inputs, sr_vectors
from refarith.errors import BadValueError, SpecError
from refarith.exact import ops as _ops
from refarith.formats import FloatFormat
from refarith.golden.drivers import get_driver, is_nan_code
from refarith.spec import Spec

DEFAULT_ALPHA = 1e-6
"""Family-wise false-alarm rate of a statistical certification."""

MAX_ELEMENTS = 1 << 22
"""Elements per kernel call (inputs per call = MAX_ELEMENTS // N, at least one)."""

TEST_NAME = "exact two-sided binomial test per input, Holm step-down over the inputs (family-wise alpha)"


# ------------------------------------------------------------------ the binomial test
@lru_cache(maxsize=8)
def _log_binom(n: int) -> np.ndarray:
    """log C(n, i) for i = 0..n (float64, from math.lgamma)."""
    lg = np.array([math.lgamma(i + 1) for i in range(n + 1)], dtype=np.float64)
    return lg[n] - lg - lg[::-1]


def binom_two_sided(hits: int, n: int, p: Fraction) -> float:
    """Exact two-sided binomial p-value of ``hits`` successes in ``n`` trials of probability ``p`` (0 < p < 1):
    the sum of P(X = i) over every i with P(X = i) <= P(X = hits) (relative tolerance 1e-7, as scipy's
    ``binomtest``).  float64 log space; see :func:`binom_two_sided_mp` for the high-precision recomputation."""
    if not 0 <= hits <= n:
        raise BadValueError(f"hits={hits} outside [0, {n}]")
    if not 0 < p < 1:
        raise BadValueError(f"p={p} must lie strictly between 0 and 1")
    lp, lq = math.log(p.numerator) - math.log(p.denominator), math.log1p(-float(p))
    i = np.arange(n + 1, dtype=np.float64)
    logpmf = _log_binom(n) + i * lp + (n - i) * lq
    sel = logpmf[logpmf <= logpmf[hits] + 1e-7]
    m = float(sel.max())
    return min(1.0, math.exp(m) * float(np.exp(sel - m).sum()))


def binom_two_sided_mp(hits: int, n: int, p: Fraction, dps: int = 50) -> float:
    """The same p-value with mpmath at ``dps`` digits (exact binomial coefficients, high-precision powers)."""
    import mpmath

    with mpmath.workdps(dps):
        pm = mpmath.mpf(p.numerator) / p.denominator
        qm = 1 - pm
        terms = [mpmath.binomial(n, i) * pm ** i * qm ** (n - i) for i in range(n + 1)]
        ref = terms[hits] * (1 + mpmath.mpf("1e-7"))
        return float(min(mpmath.mpf(1), mpmath.fsum(t for t in terms if t <= ref)))


def detectable_bias(samples: int, threshold: float, p: Fraction = Fraction(1, 2)) -> float:
    """The smallest |observed - p| frequency (in ulps) that the test rejects at the per-input ``threshold`` with
    ``samples`` samples, for an input of probability ``p`` (a statement of the test's power)."""
    centre = int(p * samples)
    lo, hi = 0, samples - centre  # binom_two_sided(centre + hi) <= threshold unless nothing is rejectable
    if binom_two_sided(centre + hi, samples, p) > threshold:
        return 1.0
    while hi - lo > 1:
        m = (lo + hi) // 2
        if binom_two_sided(centre + m, samples, p) <= threshold:
            hi = m
        else:
            lo = m
    return (centre + hi) / samples - float(p)


def holm(pvalues: list[float], alpha: float) -> list[bool]:
    """Holm's step-down rejections at family-wise rate ``alpha``."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [False] * m
    for j, i in enumerate(order):
        if pvalues[i] > alpha / (m - j):
            break
        out[i] = True
    return out


# ------------------------------------------------------------------ the run
@dataclass
class InputResult:
    """One input of a statistical certification (codes in hex, values exact)."""

    input: str
    input_value: str
    lo: str
    lo_value: str
    hi: str
    hi_value: str
    expected_p: str
    expected: float
    samples: int
    hits: int
    other: int
    observed: float
    p_value: float | None
    bias_ulps: float | None
    spec_bias_ulps: float | None
    failed: bool
    reason: str = ""
    other_code: str | None = None
    block: int | None = None
    """Block specs: the index of the input's block in the input set, and its position there."""
    element: int | None = None


def _hex(fmt, code: int) -> str:
    return f"{code:#0{(fmt.nbits + 3) // 4 + 2}x}"


def _val(fmt, code: int) -> str:
    return str(_ops.decode(code, fmt))


def _gap_fraction(spec: Spec, o: Outcome) -> Fraction | None:
    """The exact fraction of the gap lo -> hi at which the input lies (None when either is not finite)."""
    src, dst = spec.fmt(0), spec.fmt(1)
    v, a, b = _ops.decode(o.x, src), _ops.decode(o.lo, dst), _ops.decode(o.hi, dst)
    if not (v.is_finite and a.is_finite and b.is_finite) or a.mag == b.mag:
        return None
    return (v.mag - a.mag) / (b.mag - a.mag)


def input_class(spec: Spec, x: int) -> str:
    """The mismatch class of an input of a cast: nan_inf, overflow, subnormal or in_range."""
    src, dst = spec.fmt(0), spec.fmt(1)
    v = _ops.decode(x, src)
    if not v.is_finite:
        return "nan_inf"
    if isinstance(dst, FloatFormat) and v.mag > dst.max:
        return "overflow"
    if isinstance(dst, FloatFormat) and v.mag < dst.min_normal:
        return "subnormal"
    return "in_range"


def check_samples(samples) -> int:
    """``--sr-samples`` as a positive int (BadValueError otherwise)."""
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples <= 0:
        raise BadValueError(f"--sr-samples must be a positive number of samples per input, got {samples!r}")
    return int(samples)


def judge(results: list[InputResult], pvals: dict[int, float], samples: int, alpha: float, k: int) -> dict:
    """Apply the test to the tested inputs (``pvals``: result index -> p-value): p-values near the Bonferroni
    threshold recomputed at high precision, Holm's rejections marked failed; the summary of the run."""
    m = len(pvals)
    threshold = alpha / m if m else None
    if m:
        idx = list(pvals)
        for i in idx:  # near the threshold: recompute at high precision
            pv = pvals[i]
            if abs(pv - threshold) <= 1e-6 * threshold:
                r = results[i]
                pvals[i] = r.p_value = binom_two_sided_mp(r.hits, samples, Fraction(r.expected_p))
        rej = holm([pvals[i] for i in idx], alpha)
        for i, rj in zip(idx, rej):
            if rj:
                results[i].failed = True
                results[i].reason = (f"p-value {results[i].p_value:.3g} <= Holm threshold; observed "
                                     f"{results[i].observed:.4f}, expected {results[i].expected:.4f}")
    biases = [abs(r.bias_ulps) for r in results if r.bias_ulps is not None]
    failed = [r for r in results if r.failed]
    summary = {
        "test": TEST_NAME,
        "alpha": alpha,
        "samples_per_input": samples,
        "k": k,
        "inputs": len(results),
        "tested_inputs": m,
        "bonferroni_threshold": threshold,
        "min_p_value": min(pvals.values()) if pvals else None,
        "max_abs_bias_ulps": max(biases) if biases else None,
        "detectable_bias_ulps_at_half": detectable_bias(samples, threshold) if m else None,
        "failed_inputs": len(failed),
        "impossible_results": sum(1 for r in results if r.other),
        "verdict": "fail" if failed else "pass",
    }
    return summary


def run_statistical(spec: Spec, kernel: Kernel, samples: int, alpha: float = DEFAULT_ALPHA,
                    codes: list[int] | None = None, nan_payload_ok: bool = False) -> tuple[list[InputResult], dict]:
    """Run the statistical certification of the module docstring; (per-input results, summary)."""
    samples = check_samples(samples)
    if not (isinstance(alpha, float) and 0 < alpha < 1):
        raise BadValueError(f"alpha must be a probability strictly between 0 and 1, got {alpha!r}")
    t0 = time.monotonic()
    k = sr_bits(spec)
    src, dst = spec.fmt(0), spec.fmt(1)
    outs = outcomes(spec, sr_inputs(spec) if codes is None else codes)
    if not outs:
        raise SpecError(f"{spec}: no input of the statistical set lies in the spec's domain")
    d = get_driver(spec)
    nan_t = np.array([is_nan_code(dst, c) for c in range(dst.ncodes)]) if nan_payload_ok else None
    per = max(1, MAX_ELEMENTS // samples)
    results: list[InputResult] = []
    pvals: dict[int, float] = {}
    t_kernel = 0.0
    for lo_i in range(0, len(outs), per):
        block = outs[lo_i:lo_i + per]
        xs = np.repeat(np.array([o.x for o in block], dtype=np.uint64), samples)
        t1 = time.monotonic()
        raw = call_guarded(kernel.target, kernel.fn, spec, (xs.astype(np.dtype(f"u{max(1, src.nbits // 8)}")),))
        got = as_outputs(kernel.target, raw, xs.shape[0], d.outputs(spec)).reshape(len(block), samples)
        t_kernel += time.monotonic() - t1
        for j, o in enumerate(block):
            g = got[j]
            is_hi, is_lo = g == o.hi, g == o.lo
            if nan_t is not None:
                is_hi |= nan_t[g.astype(np.int64)] & bool(nan_t[o.hi])
                is_lo |= nan_t[g.astype(np.int64)] & bool(nan_t[o.lo])
            hits = int(is_hi.sum())
            other_mask = ~(is_hi | is_lo)
            other = int(other_mask.sum())
            other_code = None
            if other:
                vals, cnt = np.unique(g[other_mask], return_counts=True)
                other_code = _hex(dst, int(vals[np.argmax(cnt)]))
            frac = _gap_fraction(spec, o)
            exp_p = o.p if not o.deterministic else Fraction(1)
            if o.deterministic:
                hits = samples - other
            observed = hits / samples
            bias = None if o.deterministic else observed - float(exp_p)
            spec_bias = None if frac is None or o.deterministic else float(exp_p - frac)
            failed, reason, pv = False, "", None
            if other:
                failed = True
                reason = (f"{other} of {samples} results are neither {_hex(dst, o.lo)} nor {_hex(dst, o.hi)}"
                          if not o.deterministic else f"{other} of {samples} results differ from the exact "
                                                       f"{_hex(dst, o.lo)}")
            elif not o.deterministic:
                pv = binom_two_sided(hits, samples, exp_p)
                pvals[len(results)] = pv
            results.append(InputResult(_hex(src, o.x), _val(src, o.x), _hex(dst, o.lo), _val(dst, o.lo),
                                       _hex(dst, o.hi), _val(dst, o.hi), str(exp_p), float(exp_p), samples, hits,
                                       other, observed, pv, bias, spec_bias, failed, reason, other_code))
    summary = judge(results, pvals, samples, alpha, k)
    summary.update({
        "deterministic_inputs": sum(1 for o in outs if o.deterministic),
        "calling_convention": "each input repeated N times consecutively (np.repeat), "
                              f"at most {MAX_ELEMENTS} elements per call",
        "kernel_seconds": round(t_kernel, 3),
        "seconds": round(time.monotonic() - t0, 3),
    })
    return results, summary


def statistical_stage(spec: Spec, kernel: Kernel, samples: int, alpha: float = DEFAULT_ALPHA,
                      nan_payload_ok: bool = False):
    """(runner Stage, statistical section of the certificate) of a statistical certification."""
    from refarith.certify.runner import Example, Stage

    t0 = time.monotonic()
    if spec.op != "cast":
        from refarith.certify.statistical_blocks import block_stage

        return block_stage(spec, kernel, samples, alpha, nan_payload_ok)
    results, summary = run_statistical(spec, kernel, samples, alpha, nan_payload_ok=nan_payload_ok)
    st = Stage("statistical", f"{summary['inputs']} inputs at the hard places x {samples} samples; {TEST_NAME}, "
                              f"alpha {alpha:g}")
    st.vectors = len(results)
    src = spec.fmt(0)
    best: dict[str, tuple] = {}
    for r in results:
        if not r.failed:
            continue
        x = int(r.input, 16)
        cls = input_class(spec, x)
        st.mismatches[cls] += 1
        key = abs(_ops.decode(x, src).mag) if _ops.decode(x, src).is_finite else Fraction(10) ** 400
        if cls not in best or key < best[cls][0]:
            best[cls] = (key, r)
    dst = spec.fmt(1)
    for cls, (_, r) in best.items():
        # an impossible result: expected the likelier neighbour, got the impossible code; a frequency off: expected
        # the neighbour the kernel returns too rarely, got the one it returns too often (details: the section)
        if r.other_code is not None:
            exp, got = (r.hi, r.other_code) if r.expected >= 0.5 else (r.lo, r.other_code)
        else:
            exp, got = (r.hi, r.lo) if r.observed < r.expected else (r.lo, r.hi)
        st.examples[cls] = Example(cls, [r.input], [r.input_value], ["y"], [exp], [_val(dst, int(exp, 16))], [got],
                                   [_val(dst, int(got, 16))])
    st.seconds = time.monotonic() - t0
    section = dict(summary)
    section["per_input"] = [asdict(r) for r in results]
    return st, section


def sr_vectors_stage(spec: Spec, kernel: Kernel, nan_payload_ok: bool = False, seed: int = 0):
    """The bit-exact stage of a kernel that takes random bits: the inputs of :func:`sr_inputs` at the random
    integers of :func:`refarith.certify.sr.rand_points`, expected codes from the exact model."""
    from refarith.certify.runner import Example, Stage

    t0 = time.monotonic()
    k = sr_bits(spec)
    xs, rs, ys = sr_vectors(spec, seed=seed)
    st = Stage("sr_vectors", f"{len(xs)} (x, r) vectors at the hard places, r at 0, 1, 2^(k-1), 2^k-1, both sides "
                             "of each input's threshold and 2 seeded random integers; expected: exact model",
               seed=seed)
    src_dt = np.dtype(f"u{max(1, spec.fmt(0).nbits // 8)}")
    got = kernel(spec, (xs.astype(src_dt), rs.astype(rand_dtype(k))))[:, 0]
    from refarith.certify.sr import nan_aware_equal

    eq = nan_aware_equal(spec.fmt(1), got, ys, nan_payload_ok)
    st.vectors = len(xs)
    st.outside_domain = len(sr_inputs(spec)) - len(set(xs.tolist()))  # inputs where the spec raises
    best: dict[str, tuple] = {}
    for i in np.nonzero(~eq)[0].tolist():
        x = int(xs[i])
        cls = input_class(spec, x)
        if is_nan_code(spec.fmt(1), int(got[i])) and is_nan_code(spec.fmt(1), int(ys[i])):
            cls = "nan_payload"
        st.mismatches[cls] += 1
        v = _ops.decode(x, spec.fmt(0))
        key = v.mag if v.is_finite else Fraction(10) ** 400
        if cls not in best or key < best[cls][0]:
            best[cls] = (key, i)
    for cls, (_, i) in best.items():
        src, dst = spec.fmt(0), spec.fmt(1)
        x, r, y, g = int(xs[i]), int(rs[i]), int(ys[i]), int(got[i])
        st.examples[cls] = Example(cls, [_hex(src, x), f"{r:#x}"], [_val(src, x), str(r)], ["y"], [_hex(dst, y)],
                                   [_val(dst, y)], [_hex(dst, g)], [_val(dst, g)])
    st.seconds = time.monotonic() - t0
    return st


def certify_sr(spec: Spec, kernel: Kernel, sr_samples: int | None = None, alpha: float = DEFAULT_ALPHA,
               nan_payload_ok: bool = False, timeout: float | None = None, hard_exit: bool = False, seed: int = 0,
               golden_dir=None, exact_reference: bool = False):
    """The certificate of a stochastic-rounding spec: with ``sr_samples``, the statistical stage of a kernel with
    internal randomness (casts; MX, NVFP4, BFP and integer-quantization blocks, add/sub/mul/div/fma and fdot:
    :mod:`refarith.certify.statistical_blocks`);
    without, the bit-exact stage of a kernel that takes the random bits (x, r): the
    golden stage where the op's driver declares the random bits as an operand (golden files with an r column),
    then for casts the hard-place (x, r) vectors."""
    from refarith.certify.runner import Certificate, environment, golden_stage, time_limit
    from refarith.certify.sr import check_takes_rand, driver_has_rand, is_sr

    if sr_samples is not None:
        check_samples(sr_samples)
    if not is_sr(spec):
        if sr_samples is not None:
            raise BadValueError(f"--sr-samples applies to stochastic-rounding specs (rounding=sr,k=N), not {spec}")
        raise SpecError(f"{spec} is not a stochastic-rounding spec")
    sr_bits(spec)
    t0 = time.monotonic()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    section = None
    stages = []
    if sr_samples is not None:
        with time_limit(timeout, f"stage statistical of {kernel.target}", hard_exit):
            stage, section = statistical_stage(spec, kernel, sr_samples, alpha, nan_payload_ok)
        stages.append(stage)
    else:
        check_takes_rand(kernel, spec)
        if driver_has_rand(spec):
            with time_limit(timeout, f"stage golden of {kernel.target}", hard_exit):
                stages.append(golden_stage(spec, kernel, golden_dir, exact_reference))
        if spec.op == "cast":  # the hard-place (x, r) vectors are built for casts; other ops: the golden stage
            with time_limit(timeout, f"stage sr_vectors of {kernel.target}", hard_exit):
                stages.append(sr_vectors_stage(spec, kernel, nan_payload_ok, seed))
        elif not stages:
            raise SpecError(f"{spec}: bit-exact stochastic certification of {spec.op} needs golden vectors with the "
                            "random integers as an operand, and this op's driver declares none")
    for stage in stages:
        if stage.vectors == 0:
            raise SpecError(f"stage {stage.name} compared no vectors: it cannot support a pass")
    c = Certificate(str(spec), kernel.target, kernel.version, nan_payload_ok, stages, environment(), started,
                    time.monotonic() - t0)
    c.statistical = section
    return c


def format_statistical(section: dict, top: int = 10) -> str:
    """A short text summary of a statistical section: the test, the counts, the worst inputs."""
    s = section
    lines = [f"  statistical: {s['inputs']} inputs x {s['samples_per_input']} samples, {s['tested_inputs']} tested "
             f"({s['test']}; alpha {s['alpha']:g}, Bonferroni threshold {s['bonferroni_threshold'] or 0:.3g}); "
             f"{s['failed_inputs']} failed, {s['impossible_results']} with impossible results; max |bias| "
             f"{s['max_abs_bias_ulps'] if s['max_abs_bias_ulps'] is not None else 0:.4f} ulp ({s['seconds']:.1f} s)"]
    if s.get("detectable_bias_ulps_at_half") is not None:
        lines.append(f"    power: at p = 1/2 a bias of {s['detectable_bias_ulps_at_half']:.4f} ulp or more is rejected")
    worst = [r for r in s["per_input"] if r["failed"]][:top]
    for r in worst:
        pv = "-" if r["p_value"] is None else f"{r['p_value']:.3g}"
        bias = "-" if r["bias_ulps"] is None else f"{r['bias_ulps']:+.4f}"
        lines.append(f"    {r['input']} ({r['input_value']}): expected P({r['hi']})={r['expected']:.4f}, observed "
                     f"{r['observed']:.4f}, p-value {pv}, bias {bias} ulp: {r['reason']}")
    return "\n".join(lines)


__all__ = ["DEFAULT_ALPHA", "InputResult", "binom_two_sided", "binom_two_sided_mp", "certify_sr", "check_samples",
           "detectable_bias", "judge",
           "format_statistical", "holm", "run_statistical", "sr_vectors_stage", "statistical_stage"]
