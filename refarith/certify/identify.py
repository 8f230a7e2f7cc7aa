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

Variants that do not match are ranked by mismatch *class*, not by a raw total: every differing output cell
(vector x output column) gets a class -- ``in_range`` first, then ``subnormal``, ``overflow``, ``nan_inf``,
``off_grid``, ``signed_zero``, ``nan_payload`` (see :data:`RANK_ORDER`) -- and the closest variant is the one
with the fewest cells of the first class, then the next.  Many overflow vectors therefore do not outrank one
in-range difference, and a column that differs everywhere (a tensor scale) adds the same count to every
variant instead of deciding the order.  Per-column counts are kept in each score.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import numpy as np

from refarith.certify.adapters import load_kernel
from refarith.certify.runner import check_seconds, column_names, order_keys, time_limit, vectors_arrays
from refarith.certify.values import off_grid_mask
from refarith.errors import KernelError, RefarithError, SpecError
from refarith.formats import FloatFormat
from refarith.golden.drivers import get_driver, is_max_code, is_nan_code, is_subnormal_code, is_zero_code
from refarith.golden.generate import spec_seed
from refarith.spec import Spec, parse_spec

RANDOM = 2048

RANK_ORDER = ("in_range", "subnormal", "overflow", "nan_inf", "off_grid", "signed_zero", "nan_payload")
"""Mismatch classes in the order that ranks non-matching variants (fewest cells of the first class first)."""


@dataclass
class VariantScore:
    spec: str
    mismatches: int
    nan_payload: int
    outside_domain: int
    compared: int
    classes: dict[str, int] = field(default_factory=dict)
    """Differing output cells by mismatch class (accepted classes included; see the module docstring)."""
    columns: dict[str, int] = field(default_factory=dict)
    """Differing vectors by output column."""
    signed_zero: int = 0


    @property
    def matches(self) -> bool:
        return self.mismatches == 0

    def rank_key(self, accepted: tuple[str, ...] = ()) -> tuple[int, ...]:
        """Cells per class in :data:`RANK_ORDER`, the accepted classes left out."""
        return tuple(self.classes.get(k, 0) for k in RANK_ORDER if k not in accepted)


@functools.lru_cache(maxsize=16)
def _code_tables(fmt) -> dict[str, np.ndarray] | None:
    """Per-code masks of a format of at most 16 bits (None for wider ones): NaN, zero, special, max, subnormal."""
    if fmt.ncodes > 1 << 16:
        return None
    cs = range(fmt.ncodes)
    special = order_keys(fmt, np.arange(fmt.ncodes, dtype=np.uint64))[1]
    return {"nan": np.array([is_nan_code(fmt, c) for c in cs]), "zero": np.array([is_zero_code(fmt, c) for c in cs]),
            "special": special, "max": np.array([is_max_code(fmt, c) for c in cs]),
            "sub": np.array([is_subnormal_code(fmt, c) for c in cs])}


def _code_masks(fmt, t: dict[str, np.ndarray] | None, codes: np.ndarray) -> dict[str, np.ndarray]:
    """The masks of :func:`_code_tables` for an array of codes of ``fmt`` (on its grid): looked up in ``t``, or,
    for a format wider than 16 bits (``t`` None: binary32 outputs), computed once per distinct code."""
    c = np.minimum(np.asarray(codes, dtype=np.uint64), np.uint64(fmt.ncodes - 1))
    if t is not None:
        i = c.astype(np.int64)
        return {k: v[i] for k, v in t.items()}
    u, inv = np.unique(c, return_inverse=True)
    m = {"nan": np.array([is_nan_code(fmt, int(x)) for x in u], dtype=bool),
         "zero": np.array([is_zero_code(fmt, int(x)) for x in u], dtype=bool),
         "special": np.asarray(order_keys(fmt, u)[1], dtype=bool),
         "max": np.array([is_max_code(fmt, int(x)) for x in u], dtype=bool),
         "sub": np.array([is_subnormal_code(fmt, int(x)) for x in u], dtype=bool)}
    return {k: v[inv.reshape(-1)] for k, v in m.items()}


def cell_classes(spec: Spec, ins: list[np.ndarray], exp: np.ndarray, got: np.ndarray,
                 diff: np.ndarray) -> np.ndarray:
    """Mismatch class (an index into :data:`RANK_ORDER`, -1 where the cell agrees) of every output cell, from the
    codes alone: off_grid (a values kernel's off-grid value), nan_payload (both NaN), signed_zero (both zero),
    nan_inf (a NaN/inf input), overflow (a NaN/inf/max expected, or NaN/inf got), subnormal (a subnormal on
    either side), else in_range."""
    d = get_driver(spec)
    fin, fout = d.input_formats(spec), d.output_formats(spec)
    special_in = np.zeros(exp.shape[0], dtype=bool)
    for f, a in zip(fin, ins):
        if isinstance(f, FloatFormat):
            special_in |= order_keys(f, np.asarray(a, dtype=np.uint64))[1]
    out = np.full(exp.shape, -1, dtype=np.int64)
    idx = {k: i for i, k in enumerate(RANK_ORDER)}
    for j, f in enumerate(fout):
        dj = diff[:, j]
        if not dj.any():
            continue
        off = off_grid_mask(got[:, j])
        rows = np.nonzero(dj)[0]
        t = _code_tables(f)
        e = _code_masks(f, t, exp[rows, j])
        g = _code_masks(f, t, np.where(off[rows], exp[rows, j], got[rows, j]))
        col = np.full(rows.size, idx["in_range"], dtype=np.int64)
        col[e["sub"] | g["sub"]] = idx["subnormal"]
        col[e["special"] | g["special"] | e["max"]] = idx["overflow"]
        col[special_in[rows]] = idx["nan_inf"]
        col[e["zero"] & g["zero"]] = idx["signed_zero"]
        col[e["nan"] & g["nan"]] = idx["nan_payload"]
        col[off[rows]] = idx["off_grid"]
        out[rows, j] = col
    return out

def identify_vectors(spec: Spec) -> list[tuple[int, ...]]:
    d = get_driver(spec)
    if d.exhaustive_ok(spec):
        return d.all_inputs(spec)
    n = min(RANDOM, d.golden_random_count(spec, RANDOM))
    return d.boundary(spec) + d.random_inputs(spec, n, spec_seed(spec))


def identify(target, spec: Spec | str, nan_payload_ok: bool = False,
             vary: tuple[str, ...] | None = None, vectors: list[tuple[int, ...]] | None = None,
             timeout: float | None = None, hard_exit: bool = False, device: str | None = None,
             signed_zero_ok: bool = False) -> list[VariantScore]:
    """Scores of every variant of ``spec`` for ``target``: matches first (full domain first), then by mismatch
    class (see the module docstring).  ``nan_payload_ok``/``signed_zero_ok``: vectors that differ only in the NaN
    code / the sign of a zero do not count as mismatches.

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
    if spec.param.get("rounding") == "sr" and vectors is None and spec.op not in ("mx_quantize", "nvfp4_quantize",
                                                                                   "bfp_quantize", "int_quantize",
                                                                                   "fdot", "fma"):
        return identify_sr(kernel, spec, nan_payload_ok, vary, timeout, hard_exit)  # block ops: r in the vectors
    vecs = identify_vectors(spec) if vectors is None else [tuple(int(c) for c in v) for v in vectors]
    variants = d.variants(spec, vary)
    ins, _, dom0 = vectors_arrays(spec, vecs)
    from refarith.golden.progress import Progress

    with Progress(len(variants), f"identify {spec.op}: expected outputs of each variant", unit="variant") as bar:
        table = variant_table(variants, vecs, bar.update)
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
    tables = [_code_tables(f) for f in fout]
    scores = []
    names = column_names(d.outputs(spec))
    run_ins = [a[run] for a in ins]
    accepted = tuple(k for k, ok in (("nan_payload", nan_payload_ok), ("signed_zero", signed_zero_ok)) if ok)
    for v, exp_all, dom_all in table:
        exp, dom = exp_all[run], dom_all[run]
        diff = (got != exp) & dom[:, None]
        cells = cell_classes(spec, run_ins, exp, got, diff)
        classes = {k: int((cells == i).sum()) for i, k in enumerate(RANK_ORDER) if (cells == i).any()}
        columns = {names[j]: int(diff[:, j].sum()) for j in range(diff.shape[1]) if diff[:, j].any()}
        zero_only = diff.any(axis=1) & ((cells == RANK_ORDER.index("signed_zero")) | ~diff).all(axis=1)
        payload = np.ones(len(dom), dtype=bool)
        for j, (f, t) in enumerate(zip(fout, tables)):
            rows = np.nonzero(diff[:, j])[0]
            both = (_code_masks(f, t, exp[rows, j])["nan"] & _code_masks(f, t, got[rows, j])["nan"]
                    & ~off_grid_mask(got[rows, j]))
            payload[rows[~both]] = False
        bad = diff.any(axis=1)
        nanp = int((bad & payload).sum())
        zeros = int(zero_only.sum())
        mism = int(bad.sum()) - (nanp if nan_payload_ok else 0) - (zeros if signed_zero_ok else 0)
        scores.append(VariantScore(str(v), mism, nanp, int((~dom_all).sum()), int(dom.sum()), classes, columns,
                                   zeros))
    scores.sort(key=lambda s: (not s.matches, s.outside_domain if s.matches else 0, s.rank_key(accepted),
                               s.mismatches, s.spec))
    return scores


SR_MAX_K = 16
"""identify of a stochastic-rounding kernel tries k = 1..SR_MAX_K random bits (kernels that take k from the spec:
the spec's k only)."""

SR_PREFIX = 256
"""Vectors on which every candidate is first compared; only candidates without a mismatch there are compared on
all (the closest list counts the mismatches among the first SR_PREFIX)."""


def _sr_candidates(spec: Spec, vary: tuple[str, ...] | None, ks: list[int]) -> list[Spec]:
    from refarith.exact.stochastic import SR_VARIANTS

    d = get_driver(spec)
    vp = {k: v for k, v in d.variant_params(spec).items() if k == "overflow"}
    vp["sr"] = SR_VARIANTS
    if vary is not None:
        unknown = [k for k in vary if k not in vp and k != "k"]
        if unknown:
            raise SpecError(f"{spec.op} with rounding=sr has no variant parameter {', '.join(unknown)}; it varies "
                            f"{', '.join([*vp, 'k'])}")
        vp = {k: v for k, v in vp.items() if k in vary}
    out = []
    keys = list(vp)
    for k in ks:
        for combo in itertools.product(*(vp[n] for n in keys)):
            p = dict(spec.params)
            p.update(zip(keys, combo))
            p["k"] = str(k)
            text = ",".join(f"{a}={b}" for a, b in p.items() if b != "")
            try:
                out.append(parse_spec(f"{spec.op}({'->'.join(spec.formats)},{text})"))
            except RefarithError:
                continue
    return list(dict.fromkeys(out))


def identify_sr(kernel, spec: Spec, nan_payload_ok: bool = False, vary: tuple[str, ...] | None = None,
                timeout: float | None = None, hard_exit: bool = False) -> list[VariantScore]:
    """Scores of every stochastic-rounding variant (``sr``), k and overflow mode (the NaN and negative policies
    stay the spec's; inputs outside the spec's domain are left out) for a kernel that takes the
    random bits (x, r) (:mod:`refarith.certify.sr`).  Per candidate k the kernel runs once on the hard-place
    inputs, each at r = 0, 1, 2^(k-1), 2^k - 1 and 6 seeded random integers below 2^k; a variant matches when
    no in-domain vector differs; a kernel that raises at a k other than the spec's (it refuses random integers
    beyond its own k) matches no candidate of that k.  ``vary``: a subset of ``sr``, ``k`` and the op's other
    variant parameters."""
    import random

    from refarith.certify.sr import check_takes_rand, exact_sr, nan_aware_equal, rand_dtype, sr_bits, sr_inputs

    check_takes_rand(kernel, spec)
    k0 = sr_bits(spec)
    vary_k = not kernel.sr_k_from_spec and (vary is None or "k" in vary)
    ks = list(range(1, SR_MAX_K + 1)) if vary_k else [k0]
    cands = _sr_candidates(spec, vary, ks)
    xs_all = [x for x in sr_inputs(spec, max_values=24) if exact_sr(spec, x, 0) is not None]  # the spec's domain
    src_dt = np.dtype(f"u{max(1, spec.fmt(0).nbits // 8)}")
    fout = spec.fmt(1)
    scores = []
    with time_limit(timeout, f"identify: the runs of {kernel.target}", hard_exit):
        for k in ks:
            rng = random.Random(spec_seed(spec) + k)
            top = (1 << k) - 1
            rs = sorted({0, min(1, top), 1 << (k - 1), top})
            vec = [(x, r) for x in xs_all for r in rs + [rng.randrange(top + 1) for _ in range(6)]]
            rng.shuffle(vec)
            x = np.array([v[0] for v in vec], dtype=np.uint64)
            r = np.array([v[1] for v in vec], dtype=np.uint64)
            # the spec with this k (its other parameters kept); kernels taking k from the spec only see k0
            run_spec = parse_spec(str(spec).replace(f",k={k0})", f",k={k})")) if k != k0 else spec
            try:
                got = kernel(run_spec, (x.astype(src_dt), r.astype(rand_dtype(k))))[:, 0]
            except KernelError:  # a kernel of fewer random bits refuses r >= 2^its k: no candidate of this k
                if k == k0 or not vary_k:
                    raise
                scores += [VariantScore(str(c), len(vec), 0, 0, len(vec)) for c in cands if int(c.param["k"]) == k]
                continue
            for c in (c for c in cands if int(c.param["k"]) == k):
                n = min(SR_PREFIX, len(vec))
                for upto in (n, len(vec)):
                    exp = [exact_sr(c, a, b) for a, b in vec[:upto]]
                    dom = np.array([e is not None for e in exp])
                    e = np.array([v if v is not None else 0 for v in exp], dtype=np.uint64)
                    eq = nan_aware_equal(fout, got[:upto], e, nan_payload_ok)
                    mism = int((~eq & dom).sum())
                    if mism:
                        break
                nanp = int((~(got[:upto] == e) & eq & dom).sum())
                scores.append(VariantScore(str(c), mism, nanp, int((~dom).sum()), int(dom.sum())))
    scores.sort(key=lambda s: (not s.matches, s.outside_domain if s.matches else 0, s.mismatches, s.spec))
    return scores


def _without(spec: Spec, name: str) -> Spec:
    p = {k: v for k, v in spec.params if k != name}
    inner = ",".join(x for x in ("->".join(spec.formats), ",".join(f"{k}={v}" for k, v in p.items())) if x)
    return parse_spec(f"{spec.op}({inner})")


def variant_table(variants: list[Spec], vecs: list[tuple[int, ...]],
                  on_variant=None) -> list[tuple[Spec, np.ndarray, np.ndarray]]:
    """(variant, expected (n, columns), domain) of every variant on ``vecs``, from the exact model.

    A cast's flush-to-zero variant is derived from its gradual-underflow twin, as the exact model defines it
    (:func:`refarith.exact.ops.cast`): DAZ reads a subnormal input as the zero of its sign, FTZ flushes the result
    code; a flush variant that gives the same results on every vector as its twin (or, for ``daz_ftz``, as the
    ``daz`` or ``ftz`` one) is left out: nothing here could tell them apart, and the other is the simpler name."""
    from refarith.exact.rounding import flush_code

    out, base, kept, memo = [], {}, {}, {}
    for v in variants:
        if v.op == "cast" and "subnormal" in v.param:
            continue
        out.append((v, *vectors_arrays(v, vecs)[1:]))
        if on_variant is not None:  # progress: one variant's outputs computed
            on_variant()
        base[v] = out[-1]
    for v in variants:
        if not (v.op == "cast" and "subnormal" in v.param):
            continue
        twin = _without(v, "subnormal")
        if on_variant is not None:
            on_variant()
        if twin not in base:
            base[twin] = (twin, *vectors_arrays(twin, vecs)[1:])
        _, exp, dom = base[twin]
        mode = v.param["subnormal"]
        src, dst = v.fmt(0), v.fmt(1)
        exp, dom = exp.copy(), dom.copy()
        if "daz" in mode and getattr(src, "subnormals", False):
            if "codes" not in memo:  # exponent field 0, fraction non-zero: the subnormal codes of the source
                memo["codes"] = np.array([v[0] for v in vecs], dtype=np.uint64)
            c = memo["codes"]
            sub = ((c >> np.uint64(src.mbits)) & np.uint64(src.emask)) == 0
            sub &= (c & np.uint64(src.mmask)) != 0
            for sgn in (0, src.sign_mask if src.signed else 0):
                rows = sub & ((c & np.uint64(src.sign_mask if src.signed else 0)) == sgn)
                if rows.any():
                    ze, zd = vectors_arrays(twin, [(sgn,)])[1:]
                    exp[rows], dom[rows] = ze[0], zd[0]
        if "ftz" in mode and getattr(dst, "subnormals", False) and dst.ncodes <= 1 << 16:
            if dst.name not in memo:
                memo[dst.name] = np.array([flush_code(c, dst, "ftz") for c in range(dst.ncodes)], dtype=np.uint64)
            exp[dom, 0] = memo[dst.name][exp[dom, 0].astype(np.int64)]
        simpler = [base[twin]] + [kept[(twin, m)] for m in ("daz", "ftz") if m in mode and m != mode
                                  and (twin, m) in kept]
        if any(np.array_equal(dom, d2) and np.array_equal(exp[dom], e2[dom]) for _, e2, d2 in simpler):
            continue
        out.append((v, exp, dom))
        kept[(twin, mode)] = out[-1]
    return out


def closest(scores: list[VariantScore], spec: Spec | str) -> str:
    """"matches P=V, ..." for the best-scoring variant (its parameters that differ from ``spec``), or
    "closest: ..." with its mismatch count when nothing matches."""
    spec = parse_spec(spec)
    best = scores[0]
    b = parse_spec(best.spec).param
    p = spec.param
    diff = [f"{k}={v}" for k, v in b.items() if p.get(k) != v] + [f"{k} absent" for k in p if k not in b]
    what = ",".join(diff) if diff else "the spec itself"
    if best.matches:
        return f"matches {what}" + (f" (on its domain; {best.outside_domain} vectors outside it)"
                                    if best.outside_domain else "") + f": {best.spec}"
    return f"closest variant: {what} ({best.mismatches} mismatches of {best.compared}): {best.spec}"


def failure_hint(c, kernel=None) -> str | None:
    """What a failing cast kernel looks like: identify's cheap part (the driver's boundary vectors and a few
    random ones, :func:`hint_vectors`, against every variant of the spec, :func:`hint_scores`) run on the
    certified kernel;
    "matches overflow=saturate: ..." or the closest variant and the mismatch classes by which the kernel differs
    from it.  None when the
    certificate passed or is not a cast.  ``kernel``: the certified callable (default: the certificate's target
    name, loaded again)."""
    from refarith.certify.runner import Certificate

    if not isinstance(c, Certificate) or c.passed:
        return None
    spec = parse_spec(c.spec)
    if spec.op != "cast":
        return None
    kernel = c.target if kernel is None else kernel
    vecs = hint_vectors(spec)
    try:
        scores = hint_scores(kernel, spec, vecs)
    except Exception as e:  # noqa: BLE001 - a hint, never a second failure
        return f"kernel looks like: (identify could not run: {type(e).__name__}: {e})"
    lines = ["kernel looks like: " + closest(scores, spec)]
    best = scores[0]
    if not best.matches:
        classes = differing_classes(kernel, best.spec, vecs)
        if classes:
            lines.append("  differs from it in: " + ", ".join(f"{k} {n}" for k, n in classes.items()))
    return "\n".join(lines)


HINT_RANDOM = 256
"""Seeded random vectors the FAIL hint adds to the boundary vectors (identify itself uses RANDOM)."""


def hint_vectors(spec: Spec) -> list[tuple[int, ...]]:
    """The FAIL hint's vectors: every boundary vector of the spec's driver and HINT_RANDOM seeded random ones."""
    d = get_driver(spec)
    if d.exhaustive_ok(spec):
        return d.all_inputs(spec)
    return d.boundary(spec) + d.random_inputs(spec, HINT_RANDOM, spec_seed(spec))


def _fast_expected(spec: Spec, ins: list[np.ndarray]) -> np.ndarray | None:
    """(n, columns) codes of ``spec`` on input columns by refarith's numpy kernel (for casts the proved one:
    table-driven, tied to the exact model exhaustively or by the sticky-key lemma); None where it cannot run
    (an input outside the spec's domain raises there)."""
    from refarith.certify.adapters import load_kernel as _load

    try:
        return _load("refarith:numpy")(spec, tuple(ins))
    except Exception:  # noqa: BLE001 - outside the domain, or no numpy kernel: the exact model decides
        return None


def hint_scores(kernel, spec: Spec, vecs: list[tuple[int, ...]]) -> list[VariantScore]:
    """identify's scores for the FAIL hint, cheaply: the kernel runs once on the vectors of the spec's domain;
    each variant's expected codes come from refarith's numpy kernel where it runs on all of them, else from the
    exact model (:func:`variant_table`'s rules otherwise: matches first, then by mismatching vectors)."""
    d = get_driver(spec)
    k = load_kernel(kernel)
    ins, _, dom0 = vectors_arrays(spec, vecs)
    keep = [v for v, ok in zip(vecs, dom0.tolist()) if ok]
    cols = [a[dom0] for a in ins]
    got = k(spec, tuple(cols))
    scores = []
    for v in d.variants(spec):
        exp, dom = _expected_split(v, cols, keep)
        bad = ((np.asarray(got) != exp) & dom[:, None]).any(axis=1)
        scores.append(VariantScore(str(v), int(bad.sum()), 0, int((~dom).sum()), int(dom.sum())))
    scores.sort(key=lambda s: (not s.matches, s.outside_domain if s.matches else 0, s.mismatches, len(s.spec),
                               s.spec))  # equal scores: the shorter (simpler) spec first
    return scores


def _expected_split(spec: Spec, cols: list[np.ndarray], vecs: list[tuple[int, ...]]) -> tuple[np.ndarray,
                                                                                              np.ndarray]:
    """(expected codes, domain) of ``spec`` on ``vecs``: the numpy kernel on every part it runs on (a part
    holding a vector outside the domain is halved until it runs), the exact model on single vectors."""
    exp = _fast_expected(spec, cols)
    if exp is not None:
        return np.asarray(exp, dtype=np.uint64).reshape(len(vecs), -1), np.ones(len(vecs), dtype=bool)
    if len(vecs) <= 1:
        return tuple(vectors_arrays(spec, vecs)[1:])
    h = len(vecs) // 2
    e1, d1 = _expected_split(spec, [c[:h] for c in cols], vecs[:h])
    e2, d2 = _expected_split(spec, [c[h:] for c in cols], vecs[h:])
    return np.concatenate([e1, e2]), np.concatenate([d1, d2])


def differing_classes(kernel, spec: Spec | str, vecs: list[tuple[int, ...]] | None = None) -> dict[str, int]:
    """Mismatch classes (and counts) of ``kernel`` against ``spec`` on ``vecs`` (default: identify's vectors)."""
    spec = parse_spec(spec)
    d = get_driver(spec)
    k = load_kernel(kernel)
    vecs = identify_vectors(spec) if vecs is None else vecs
    ins, exp, dom = vectors_arrays(spec, vecs)
    got = k(spec, tuple(a[dom] for a in ins))
    e = exp[dom]
    out: dict[str, int] = {}
    rows = np.nonzero((got != e).any(axis=1))[0]
    kept = np.nonzero(dom)[0]
    for j in rows.tolist():
        vec = vecs[int(kept[j])]
        cls = d.mismatch_class(spec, vec, tuple(int(x) for x in got[j]), tuple(int(x) for x in e[j]))
        out[cls] = out.get(cls, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


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
                  + (f" ({s.nan_payload} NaN payload)" if s.nan_payload else "") + _breakdown(s) for s in scores[:top]]
    return "\n".join(lines)


def _breakdown(s: VariantScore) -> str:
    """`` [cells by class: ...; by column: ...]`` of a non-matching score (the five columns differing most)."""
    if not s.classes:
        return ""
    cls = ", ".join(f"{k} {s.classes[k]}" for k in RANK_ORDER if k in s.classes)
    top = sorted(s.columns.items(), key=lambda kv: (-kv[1], kv[0]))
    cols = ", ".join(f"{k} {n}" for k, n in top[:5]) + (", ..." if len(top) > 5 else "")
    return f" [cells by class: {cls}; by column: {cols}]"


def scores_json(target: str, spec: Spec | str, scores: list[VariantScore]) -> str:
    """identify's result as JSON (docs/schema/identify.schema.json): schema_version 1, snake_case keys."""
    import json

    doc = {"schema_version": 1, "target": target, "spec": str(parse_spec(spec)),
           "verdict": closest(scores, spec) if scores else "no variant",
           "scores": [{"spec": s.spec, "matches": s.matches, "mismatches": s.mismatches, "nan_payload": s.nan_payload,
                       "outside_domain": s.outside_domain, "compared": s.compared} for s in scores]}
    return json.dumps(doc, indent=1)
