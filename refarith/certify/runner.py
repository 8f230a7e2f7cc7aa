"""The differential runner: golden vectors, an exhaustive sweep, hypothesis fuzzing -> a certificate.

Verdict: ``pass`` only when every stage ran at least one in-domain vector and no
vector mismatched (``nan_payload`` mismatches excepted when the caller declares
them acceptable; approximate ops excepted within their driver's declared bound).
Vectors on which the spec itself raises (e.g. NaN into FP4 under ``nan=error``)
are outside the spec's domain: counted, never compared.

Exhaustive sweep of a binary32 -> narrow float cast: all 2^32 inputs in chunks
over a process pool.  Reference: a 2^17-entry table built from the exact model,
indexed by the sticky key ``(bits >> 16) << 1 | (bits & 0xFFFF != 0)``.  That
the spec's result is a function of this key for destinations with at most 6
mantissa bits is the lemma of the fast cast kernel (REFERENCE_NOTES,
``refarith.fast.castkernel.sticky_key_suffices``); every table entry is the exact
model's value at a representative of its key.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from refarith.certify.adapters import Kernel, code_dtype, load_kernel
from refarith.errors import SpecError
from refarith.exact import ops as _ops
from refarith.formats import FloatFormat, get_format
from refarith.golden import fileformat as ff
from refarith.golden.drivers import CLASSES, get_driver, is_nan_code, magnitude_key
from refarith.golden.generate import find_file, vectors
from refarith.golden.progress import Progress
from refarith.spec import Spec, parse_spec

BUCKETS = ("1", "2", "3-4", "5-8", "9-16", ">16", "special")
"""Error histogram buckets: distance in representable values between result and reference; 'special': NaN/inf."""


@dataclass
class Example:
    """One minimized counterexample (smallest input magnitude of its class), with exact values."""

    cls: str
    inputs: list[str]
    input_values: list[str]
    expected: str
    expected_value: str
    got: str
    got_value: str


@dataclass
class Stage:
    name: str
    source: str
    vectors: int = 0
    outside_domain: int = 0
    mismatches: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    within_bound: int = 0
    examples: dict[str, Example] = field(default_factory=dict)
    histogram: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0))
    seconds: float = 0.0
    sha256: str | None = None
    seed: int | None = None

    def failures(self, nan_payload_ok: bool) -> int:
        return sum(v for k, v in self.mismatches.items() if not (nan_payload_ok and k == "nan_payload"))


@dataclass
class Certificate:
    spec: str
    target: str
    kernel_version: str
    nan_payload_ok: bool
    stages: list[Stage]
    environment: dict
    started: str
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        if not self.stages or sum(s.vectors for s in self.stages) == 0:
            return "fail"
        return "fail" if any(s.failures(self.nan_payload_ok) for s in self.stages) else "pass"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def totals(self) -> dict[str, int]:
        out = dict.fromkeys(CLASSES, 0)
        for s in self.stages:
            for k, v in s.mismatches.items():
                out[k] += v
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["verdict"] = self.verdict
        d["mismatch_totals"] = self.totals()
        d["bit_exact"] = sum(self.totals().values()) == 0
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"


def environment() -> dict:
    env = {"python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform()}
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("refarith", "ml_dtypes", "gfloat", "torch", "hypothesis", "torchao"):
        try:
            env[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return env


# ------------------------------------------------------------------ comparison
def _rank_table(fmt) -> np.ndarray | None:
    """Code -> position in value order (finite codes; -1 for NaN/inf), for formats of <= 16 bits."""
    if not isinstance(fmt, FloatFormat) or fmt.nbits > 16:
        return None
    vals = sorted({fmt.finite_value(c) for c in range(fmt.ncodes) if fmt.is_finite_code(c)})
    pos = {v: i for i, v in enumerate(vals)}
    t = np.full(fmt.ncodes, -1, dtype=np.int64)
    for c in range(fmt.ncodes):
        if fmt.is_finite_code(c):
            t[c] = pos[fmt.finite_value(c)]
    return t


def _bucket(dist: int) -> str:
    if dist < 0:
        return "special"
    for b, hi in (("1", 1), ("2", 2), ("3-4", 4), ("5-8", 8), ("9-16", 16)):
        if dist <= hi:
            return b
    return ">16"


def _value_str(fmt, code: int) -> str:
    return str(_ops.decode(code, fmt))


def make_example(spec: Spec, cls: str, ins: tuple[int, ...], expected: int, got: int) -> Example:
    d = get_driver(spec)
    fin, fout = d.input_formats(spec), d.output_format(spec)
    return Example(cls, [f"{c:#0{ff.hexwidth(f.nbits) + 2}x}" for c, f in zip(ins, fin)],
                   [_value_str(f, c) for c, f in zip(ins, fin)],
                   f"{expected:#0{ff.hexwidth(fout.nbits) + 2}x}", _value_str(fout, expected),
                   f"{got:#0{ff.hexwidth(fout.nbits) + 2}x}", _value_str(fout, got))


def compare(spec: Spec, kernel: Kernel, inputs: list[np.ndarray], expected: np.ndarray, stage: Stage,
            chunk: int = 1 << 16) -> Stage:
    """Run ``kernel`` on the in-domain vectors and account every mismatch into ``stage`` (scalar classification)."""
    d = get_driver(spec)
    fout = d.output_format(spec)
    fin = d.input_formats(spec)
    rank = _rank_table(fout)
    dom = expected >= 0
    stage.outside_domain += int((~dom).sum())
    ins = [np.asarray(a)[dom] for a in inputs]
    exp = expected[dom]
    n = exp.shape[0]
    stage.vectors += n
    best: dict[str, tuple] = {}
    for lo in range(0, n, chunk):
        part = tuple(a[lo:lo + chunk].astype(code_dtype(f.nbits)) for a, f in zip(ins, fin))
        got = kernel(spec, part)
        e = exp[lo:lo + chunk]
        bad = np.nonzero(got != e)[0]
        for j in bad.tolist():
            vec = tuple(int(a[lo + j]) for a in ins)
            g, x = int(got[j]), int(e[j])
            if d.within_bound is not None and d.within_bound(spec, vec, x, g):
                stage.within_bound += 1
                continue
            cls = d.classify(spec, vec, g)
            stage.mismatches[cls] += 1
            if rank is not None:
                stage.histogram[_bucket(-1 if rank[g] < 0 or rank[x] < 0 else abs(int(rank[g]) - int(rank[x])))] += 1
            key = tuple(magnitude_key(f, c) for f, c in zip(fin, vec))
            if cls not in best or key < best[cls][0]:
                best[cls] = (key, vec, x, g)
    for cls, (_, vec, x, g) in best.items():
        stage.examples[cls] = make_example(spec, cls, vec, x, g)
    return stage


# ------------------------------------------------------------------ stages
def golden_stage(spec: Spec, kernel: Kernel, golden_dir: str | Path | None = None) -> Stage:
    """Compare against the committed golden file of the spec (hash-checked), else vectors generated now."""
    t0 = time.monotonic()
    found = find_file(spec, golden_dir)
    if found is not None:
        path, sha = found
        g = ff.load(path, sha)
        if g.spec != spec:
            raise SpecError(f"{path}: golden file is for {g.spec}, not {spec}")
        st = Stage("golden", f"{path.name} ({g.header['rule']})", sha256=sha)
        ins, exp = g.inputs, g.outputs
    else:
        rule, vins, vouts = vectors(spec)
        st = Stage("golden", f"generated from the exact model ({rule}; no committed file)")
        ins = [np.array(col, dtype=np.int64) for col in zip(*vins)]
        exp = np.array([-1 if o is None else o for o in vouts], dtype=np.int64)
    compare(spec, kernel, ins, exp, st)
    st.seconds = time.monotonic() - t0
    return st


def fuzz_stage(spec: Spec, kernel: Kernel, n: int, seed: int = 0) -> Stage:
    """``n`` vectors drawn by hypothesis (boundary-weighted codes, see refarith.certify.fuzz), compared exactly."""
    from refarith.certify.fuzz import run_fuzz

    t0 = time.monotonic()
    st = Stage("fuzz", f"hypothesis, {n} vectors, seed {seed}", seed=seed)
    vecs = run_fuzz(spec, n, seed)
    d = get_driver(spec)
    ins = [np.array(col, dtype=np.int64) for col in zip(*vecs)] if vecs else []
    exp = np.array([(lambda r: -1 if r is None else r)(d.exact(spec, v)) for v in vecs], dtype=np.int64)
    if vecs:
        compare(spec, kernel, ins, exp, st, chunk=4096)
    st.seconds = time.monotonic() - t0
    return st


# ------------------------------------------------------------------ exhaustive binary32 sweep
_W: dict = {}


def sweep_supported(spec: Spec) -> str | None:
    """None when the exhaustive 2^32 sweep applies to this spec, else the reason it does not."""
    if spec.op != "cast":
        return f"no 2^32 sweep for {spec.op}"
    src, dst = spec.fmt(0), spec.fmt(1)
    if src.name != "binary32":
        return "the 2^32 sweep is for binary32 sources (16-bit sources are exhaustive in the golden stage)"
    if not isinstance(dst, FloatFormat) or dst.mbits > 6 or dst.nbits > 8:
        return f"the sticky-key reference covers float targets of <= 8 bits, <= 6 mantissa bits, not {dst.name}"
    return None


def _table_part(args: tuple[str, int, int]) -> tuple[np.ndarray, np.ndarray]:
    spec_id, lo, hi = args
    spec = parse_spec(spec_id)
    dst, d, src = spec.fmt(1), get_driver(spec), get_format("binary32")
    ref = np.empty(hi - lo, dtype=np.int64)
    cls = np.empty(hi - lo, dtype=np.int8)
    for key in range(lo, hi):
        bits = ((key >> 1) << 16) | (key & 1)
        r = d.exact(spec, (bits,))
        ref[key - lo] = -1 if r is None else r
        v = _ops.decode(bits, src)
        if not v.is_finite:
            c = "nan_inf"
        elif v.mag > dst.max:
            c = "overflow"
        elif v.mag < dst.min_normal:
            c = "subnormal"
        else:
            c = "in_range"
        cls[key - lo] = CLASSES.index(c)
    return ref, cls


def sticky_tables(spec: Spec, jobs: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(reference, class) tables over the 2^17 sticky keys, from the exact model (-1: the spec raises).

    Key = (bits >> 16) << 1 | (low 16 bits != 0); the entry is the exact model's result at the
    representative (bits >> 16) << 16 | sticky.  Class codes index CLASSES by the input alone:
    nan_inf for NaN/inf inputs, overflow above the target's max, subnormal below its min normal.
    """
    if str(spec) in _TABLES:
        return _TABLES[str(spec)]
    parts = [(str(spec), lo, lo + (1 << 13)) for lo in range(0, 1 << 17, 1 << 13)]
    if jobs > 1:
        with mp.get_context("fork").Pool(jobs) as pool:
            res = pool.map(_table_part, parts)
    else:
        res = [_table_part(p) for p in parts]
    out = np.concatenate([r for r, _ in res]), np.concatenate([c for _, c in res])
    _TABLES[str(spec)] = out
    return out


_TABLES: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _sweep_chunk(lo: int) -> tuple:
    """Compare one chunk.  Fast path: reference by the top 16 bits alone (``ref0``), valid wherever the
    sticky bit does not change the result; every other input (and every disagreement) is re-checked
    against the full sticky-key table."""
    w = _W
    spec, kernel, size = w["spec"], w["kernel"], w["size"]
    x = w["buf"]
    np.add(w["base"], np.uint32(lo), out=x)
    raw = kernel.fn(spec, (x,))
    got = w["as_codes"](raw)
    hi = x >> np.uint32(16)
    cand = np.nonzero(got != w["ref0"][hi])[0]
    counts = np.zeros(len(CLASSES), dtype=np.int64)
    hist = np.zeros(len(BUCKETS), dtype=np.int64)
    best: dict[int, int] = {}
    if cand.size == 0:
        return size, 0, counts, hist, best
    xc = x[cand]
    key = ((xc >> np.uint32(16)) << np.uint32(1)) | ((xc & np.uint32(0xFFFF)) != 0).astype(np.uint32)
    exp = w["ref"][key]
    gc = got[cand].astype(np.int64)
    dom = exp >= 0
    outside = int(cand.size - np.count_nonzero(dom))
    badm = (gc != exp) & dom
    if not badm.any():
        return size - outside, outside, counts, hist, best
    g, e, k, xb = gc[badm], exp[badm], key[badm], xc[badm]
    c = w["cls"][k].astype(np.int64)
    c[w["isnan"][g] & w["isnan"][e]] = CLASSES.index("nan_payload")
    c[w["iszero"][g] & w["iszero"][e]] = CLASSES.index("signed_zero")
    counts += np.bincount(c, minlength=len(CLASSES))
    rg, re_ = w["rank"][g], w["rank"][e]
    dist = np.where((rg < 0) | (re_ < 0), -1, np.abs(rg - re_))
    b = np.select([dist < 0, dist <= 1, dist <= 2, dist <= 4, dist <= 8, dist <= 16], [6, 0, 1, 2, 3, 4], 5)
    hist += np.bincount(b, minlength=len(BUCKETS))
    mag = xb & np.uint32(0x7FFFFFFF)
    for ci in np.unique(c).tolist():
        sel = np.nonzero(c == ci)[0]
        best[ci] = int(xb[sel[np.argmin(mag[sel])]])
    return size - outside, outside, counts, hist, best


def _fast_codes(target: str, shape, out_fmt):
    """Validate kernel output cheaply per chunk (shape, 1-byte codes); full validation via as_codes otherwise."""
    from refarith.certify.adapters import as_codes

    def conv(raw):
        if isinstance(raw, np.ndarray) and raw.shape == tuple(shape) and raw.dtype.itemsize == 1 \
                and raw.dtype.kind in "uifV":
            u = raw.view(np.uint8)
            if out_fmt.nbits < 8 and int(u.max()) >= out_fmt.ncodes:
                return as_codes(target, raw, shape, out_fmt)
            return u
        return as_codes(target, raw, shape, out_fmt)
    return conv


def exhaustive_stage(spec: Spec, kernel: Kernel, jobs: int | None = None, chunk_bits: int = 22,
                     progress: bool | None = None, limit: int | None = None) -> Stage:
    """All 2^32 binary32 inputs (or the first ``limit``), chunked over ``jobs`` processes."""
    why = sweep_supported(spec)
    if why:
        raise SpecError(f"--exhaustive: {why}")
    if not kernel.vectorized:
        raise SpecError(f"--exhaustive: {kernel.target} is a scalar kernel; 2^32 inputs would take days")
    t0 = time.monotonic()
    jobs = jobs or os.cpu_count() or 1
    dst = spec.fmt(1)
    ref, cls = sticky_tables(spec, jobs)
    r0, r1 = ref[0::2], ref[1::2]
    ref0 = np.where((r0 == r1) & (r0 >= 0), r0, 0xFFFF).astype(np.uint16)
    total = limit if limit is not None else 1 << 32
    size = min(1 << chunk_bits, total)
    _W.update(spec=spec, kernel=kernel, ref=ref, cls=cls, size=size, ref0=ref0,
              base=np.arange(size, dtype=np.uint32), buf=np.empty(size, dtype=np.uint32),
              as_codes=_fast_codes(kernel.target, (size,), dst),
              isnan=np.array([is_nan_code(dst, c) for c in range(dst.ncodes)]),
              iszero=np.array([dst.is_finite_code(c) and dst.has_zero and dst.finite_value(c) == 0
                               for c in range(dst.ncodes)]),
              rank=_rank_table(dst))
    st = Stage("exhaustive", f"all {total} binary32 inputs; reference: sticky-key table from the exact model")
    starts = list(range(0, total, size))
    counts = np.zeros(len(CLASSES), dtype=np.int64)
    hist = np.zeros(len(BUCKETS), dtype=np.int64)
    best: dict[int, int] = {}

    def absorb(r):
        nonlocal counts, hist
        n, out, c, h, b = r
        st.vectors += n
        st.outside_domain += out
        counts += c
        hist += h
        for ci, bits in b.items():
            if ci not in best or (bits & 0x7FFFFFFF) < (best[ci] & 0x7FFFFFFF):
                best[ci] = bits

    try:
        with Progress(len(starts), f"exhaustive {spec}", enabled=progress) as bar:
            if jobs <= 1:
                for s in starts:
                    absorb(_sweep_chunk(s))
                    bar.update()
            else:
                with mp.get_context("fork").Pool(jobs) as pool:
                    for r in pool.imap_unordered(_sweep_chunk, starts):
                        absorb(r)
                        bar.update()
    finally:
        _W.clear()
    for i, k in enumerate(CLASSES):
        st.mismatches[k] = int(counts[i])
    for i, k in enumerate(BUCKETS):
        st.histogram[k] = int(hist[i])
    d = get_driver(spec)
    for ci, bits in sorted(best.items()):
        exp = d.exact(spec, (bits,))
        got = int(kernel(spec, (np.array([bits], dtype=np.uint32),))[0])
        st.examples[CLASSES[ci]] = make_example(spec, CLASSES[ci], (bits,), exp, got)
    st.seconds = time.monotonic() - t0
    return st


# ------------------------------------------------------------------ the run
def certify(target, spec: Spec | str, exhaustive: bool = False, fuzz: int = 0, seed: int = 0,
            nan_payload_ok: bool = False, golden_dir: str | Path | None = None, jobs: int | None = None,
            progress: bool | None = None) -> Certificate:
    """Certify ``target`` (a target name or a callable) against ``spec``; raises KernelError/SpecError on bad input."""
    spec = parse_spec(spec)
    get_driver(spec)
    kernel = load_kernel(target)
    kernel.supports(spec)
    t0 = time.monotonic()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    stages = [golden_stage(spec, kernel, golden_dir)]
    if exhaustive and not get_driver(spec).exhaustive_ok(spec):  # small domains: the golden stage is exhaustive
        stages.append(exhaustive_stage(spec, kernel, jobs=jobs, progress=progress))
    if fuzz:
        stages.append(fuzz_stage(spec, kernel, fuzz, seed))
    return Certificate(str(spec), kernel.target, kernel.version, nan_payload_ok, stages, environment(), started,
                       time.monotonic() - t0)


__all__ = ["BUCKETS", "Certificate", "Example", "Stage", "certify", "compare", "exhaustive_stage",
           "fuzz_stage", "golden_stage", "sticky_tables", "sweep_supported"]
