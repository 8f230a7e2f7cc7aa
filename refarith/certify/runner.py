"""The differential runner: golden vectors, an exhaustive sweep, hypothesis fuzzing -> a certificate.

Verdict: ``pass`` only when every stage ran at least one in-domain vector and no
vector mismatched (``nan_payload`` mismatches excepted when the caller declares
them acceptable; approximate ops excepted within their driver's declared bound).
Vectors on which the spec itself raises (e.g. NaN into FP4 under ``nan=error``)
are outside the spec's domain: counted, never compared.

Golden files are never trusted: every vector's expected output is recomputed
(:func:`check_golden`) and a file that disagrees is an error naming its line
and both values; the committed set's MANIFEST digest is pinned in the package
(:mod:`refarith.golden.pinned`).

Exhaustive sweep of a binary32 -> narrow float cast: all 2^32 inputs in chunks
over a process pool.  Reference: a 2^17-entry table built from the exact model,
indexed by the sticky key ``(bits >> 16) << 1 | (bits & 0xFFFF != 0)``.  That
the spec's result is a function of this key for destinations with at most 6
mantissa bits is the lemma of the fast cast kernel (REFERENCE_NOTES,
``refarith.fast.castkernel.sticky_key_suffices``); every table entry is the exact
model's value at a representative of its key.  Workers are forked while torch is
not loaded in this process, spawned once it is (forking after torch's thread
pools have started deadlocks the children); a worker that dies, or no chunk
finishing for ``watchdog`` seconds, is an error naming the chunks in flight.

Faults are errors (KernelError, exit 2 in the CLI), never a verdict: a kernel
raising anything (SystemExit, KeyboardInterrupt included) or calling
``os._exit``, a stage exceeding its time limit, a stage that compares no vector.
"""

from __future__ import annotations

import functools
import json
import multiprocessing as mp
import platform
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from refarith.certify.adapters import (
    REAL_EXIT,
    Kernel,
    StageTimeout,
    as_outputs,
    call_guarded,
    group_columns,
    load_kernel,
)
from refarith.errors import BadValueError, GoldenFileError, KernelError, RefarithError, SpecError
from refarith.exact import ops as _ops
from refarith.exact.show import show_code
from refarith.formats import FloatFormat, get_format
from refarith.golden import fileformat as ff
from refarith.golden.drivers import CLASSES, get_driver, is_nan_code, magnitude_key
from refarith.golden.generate import check_jobs, find_file, vectors
from refarith.golden.progress import Progress
from refarith.spec import Spec, parse_spec

DEFAULT_WATCHDOG = 600.0
"""Seconds without any chunk of an exhaustive sweep finishing before the sweep is declared stalled."""

SCHEMA_VERSION = 1
"""Version of the certificate JSON (docs/schema/certificate.schema.json)."""

MAP_PREFIX_BITS = 4
"""Mantissa bits (from the top) that split a binade in the input map of a single float input."""

BUCKETS = ("d1", "d2", "d3_4", "d5_8", "d9_16", "d_over_16", "special")
"""Error histogram buckets: distance in representable values between result and reference (1, 2, 3-4, 5-8, 9-16,
over 16); 'special': NaN/inf involved."""

BUCKET_LABELS = dict(zip(BUCKETS, ("1", "2", "3-4", "5-8", "9-16", ">16", "special")))
"""How reports label the buckets."""


@dataclass
class Example:
    """One minimized counterexample (smallest input magnitude of its class), with exact values.

    ``inputs``/``input_values``: every input column; ``columns``: the names of the output columns that differ,
    ``expected``/``got`` (hex codes) and ``expected_value``/``got_value`` (exact values) of those columns.
    """

    cls: str
    inputs: list[str]
    input_values: list[str]
    columns: list[str]
    expected: list[str]
    expected_value: list[str]
    got: list[str]
    got_value: list[str]
    context: list[str] = field(default_factory=list)
    """For block results: the expected value of every per-block output column (scales, exponents), shown."""

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
    columns: dict[str, int] = field(default_factory=dict)
    """Mismatching vectors by output column (a vector counts in every column that differs)."""
    seconds: float = 0.0
    sha256: str | None = None
    seed: int | None = None
    input_map: list[list[int]] = field(default_factory=list)
    """Single float input: ``[sign, biased exponent, top mantissa bits, mismatches]`` for every non-empty cell
    (the mantissa prefix is the top ``MAP_PREFIX_BITS`` bits, fewer for narrower mantissas)."""
    block_profile: dict[str, list[list[int | None]]] = field(default_factory=dict)
    """Block inputs: ``amax_exponent``: [floor(log2 amax) of the block's finite inputs (None when every one is zero
    or special), mismatching vectors]; ``position``: [index within the block, mismatching elements]."""
    seen: dict = field(default_factory=dict, repr=False, compare=False)
    """In memory only (not in the JSON): mismatching input vector -> class, so that totals count an input once."""
    covers: int = 0
    """In memory only: an exhaustive stage compares every input code below this bound."""

    def failures(self, nan_payload_ok: bool, signed_zero_ok: bool = False) -> int:
        return sum(v for k, v in self.mismatches.items()
                   if not (nan_payload_ok and k == "nan_payload") and not (signed_zero_ok and k == "signed_zero"))


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
    signed_zero_ok: bool = False
    """Results that differ from the spec's only in the sign of a zero are accepted (``--signed-zero-ok``)."""
    statistical: dict | None = None
    """Stochastic rounding with internal randomness: the test, its summary and every input (statistical.py)."""
    exhaustive_skipped: str | None = None
    """Set when the exhaustive stage was asked for only where possible (``--exhaustive-if-possible``) and no
    exhaustive check exists for this spec and kernel: why (None otherwise, also when it was not asked for)."""

    @property
    def verdict(self) -> str:
        if not self.stages or any(s.vectors == 0 for s in self.stages):  # an empty stage cannot support a pass
            return "fail"
        return "fail" if any(s.failures(self.nan_payload_ok, self.signed_zero_ok) for s in self.stages) else "pass"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def totals(self) -> dict[str, int]:
        """Mismatching inputs by class, each input counted once over the stages (an exhaustive stage's count
        stands for every input it covers; per-stage counts are in each stage's ``mismatches``).  A stage without
        its in-memory record of inputs (one read back from JSON) adds its own counts."""
        out = dict.fromkeys(CLASSES, 0)
        covered = 0
        for s in self.stages:
            if s.covers:
                for k, v in s.mismatches.items():
                    out[k] += v
                covered = max(covered, s.covers)
        seen: set = set()
        for s in self.stages:
            if s.covers:
                continue
            if not s.seen and sum(s.mismatches.values()):
                for k, v in s.mismatches.items():
                    out[k] += v
                continue
            for vec, cls in s.seen.items():
                if (covered and len(vec) == 1 and vec[0] < covered) or vec in seen:
                    continue
                seen.add(vec)
                out[cls] += 1
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        for s in d["stages"]:
            s.pop("seen", None)
            s.pop("covers", None)
        d["schema_version"] = SCHEMA_VERSION
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
@functools.lru_cache(maxsize=64)
def _special_table(fmt: FloatFormat) -> np.ndarray:
    """NaN/inf mask over every code of a format of at most 16 bits (read-only)."""
    t = ~np.array([fmt.is_finite_code(x) for x in range(fmt.ncodes)], dtype=bool)
    t.flags.writeable = False
    return t


def order_keys(fmt, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ordered integer key, special mask) of codes: consecutive finite values have consecutive keys (±0 share
    one), so |key difference| counts representable values between two results; NaN/inf are special."""
    c = np.asarray(codes, dtype=np.uint64)
    if isinstance(fmt, FloatFormat):
        nb = fmt.nbits
        special = np.zeros(c.shape, dtype=bool)
        if nb <= 16:
            special = _special_table(fmt)[c.astype(np.int64)]
        else:
            e = (c >> np.uint64(fmt.mbits)) & np.uint64(fmt.emask)
            special = e == np.uint64(fmt.emask) if fmt.specials == "ieee" else special
        if fmt.signed:
            sm = np.uint64(fmt.sign_mask)
            mag = (c & ~sm).astype(np.int64)
            key = np.where((c & sm) != 0, -mag, mag)
        else:
            key = c.astype(np.int64)
        return key, special
    if getattr(fmt, "signed", False) and fmt.nbits < 64:
        v = c.astype(np.int64)
        key = np.where(v >= (1 << (fmt.nbits - 1)), v - (1 << fmt.nbits), v)
    else:
        key = c.view(np.int64) if fmt.nbits == 64 else c.astype(np.int64)
    return key, np.zeros(c.shape, dtype=bool)


def _bucket(dist: int) -> str:
    if dist < 0:
        return "special"
    for b, hi in zip(BUCKETS, (1, 2, 4, 8, 16)):
        if dist <= hi:
            return b
    return "d_over_16"


def _value_str(fmt, code: int) -> str:
    from refarith.certify.values import is_off_grid_code, off_grid_value

    if is_off_grid_code(code):  # a values kernel's value that is not one of the format
        return off_grid_value(code)
    return str(_ops.decode(code, fmt))


def _hex(fmt, code: int) -> str:
    return f"{code:#0{ff.hexwidth(fmt.nbits) + 2}x}"


def column_names(operands) -> list[str]:
    """One name per code column: the operand's name, indexed when it is wider than one."""
    return [o.name if o.width == 1 else f"{o.name}[{i}]" for o in operands for i in range(o.width)]


def make_example(spec: Spec, cls: str, ins: tuple[int, ...], expected: tuple[int, ...],
                 got: tuple[int, ...]) -> Example:
    d = get_driver(spec)
    fin, fout = d.input_formats(spec), d.output_formats(spec)
    names = column_names(d.outputs(spec))
    cols = [i for i, (e, g) in enumerate(zip(expected, got)) if e != g]
    outs = d.outputs(spec)
    context = []
    if max(o.width for o in outs) > 1:  # a block result: its per-block columns (scales, exponents) as context
        j = 0
        for o in outs:
            if o.width < max(x.width for x in outs):
                context += [f"{names[k]} {show_code(expected[k], fout[k])}" for k in range(j, j + o.width)][:4]
            j += o.width
    return Example(cls, [_hex(f, c) for c, f in zip(ins, fin)], [_value_str(f, c) for c, f in zip(ins, fin)],
                   [names[i] for i in cols], [_hex(fout[i], expected[i]) for i in cols],
                   [_value_str(fout[i], expected[i]) for i in cols], [_hex(fout[i], got[i]) for i in cols],
                   [_value_str(fout[i], got[i]) for i in cols], context)


def _map_cell(fmt, code: int) -> tuple[int, int, int] | None:
    """(sign, biased exponent, top mantissa bits) of a code of a binary float format, None for other formats."""
    if not isinstance(fmt, FloatFormat) or not fmt.signed or fmt.ebits == 0:
        return None
    pb = min(MAP_PREFIX_BITS, fmt.mbits)
    return (code >> (fmt.nbits - 1)) & 1, (code >> fmt.mbits) & fmt.emask, (code & fmt.mmask) >> (fmt.mbits - pb)


def _amax_exponent(fin: tuple, vec: tuple[int, ...]) -> str:
    """floor(log2 max |x|) over the finite inputs of a block, 'none' when every one is zero or special."""
    best = None
    for f, c in zip(fin, vec):
        v = _ops.decode(c, f)
        if v.is_finite and not v.is_zero and (best is None or v.mag > best):
            best = v.mag
    if best is None:
        return "none"
    e = best.numerator.bit_length() - best.denominator.bit_length()
    return str(e - 1 if Fraction(2) ** e > best else e)


def _profile(spec: Spec, stage: Stage, vec: tuple[int, ...], x: tuple[int, ...], g: tuple[int, ...],
             cls: str) -> None:
    """Account one mismatching vector into the stage's map (single float input) or block profile."""
    d = get_driver(spec)
    fin = d.input_formats(spec)
    stage.seen.setdefault(vec, cls)
    if len(fin) == 1:
        return
    widths = [o.width for o in d.outputs(spec)]
    if max(widths) <= 1:
        return
    bp = stage.block_profile
    for key in ("amax_exponent", "position"):  # lists of [key, count] between compare() calls: back to counts
        if isinstance(bp.get(key), list):
            bp[key] = {("none" if a is None else str(a)): n for a, n in bp[key]}
    a = bp.setdefault("amax_exponent", {})
    k = _amax_exponent(fin, vec)
    a[k] = a.get(k, 0) + 1
    pos = bp.setdefault("position", {})
    j = 0
    for w in widths:
        if w == max(widths):
            for i in range(w):
                if x[j + i] != g[j + i]:
                    pos[str(i)] = pos.get(str(i), 0) + 1
        j += w


def _flush_map(spec: Spec, stage: Stage) -> None:
    """The stage's input map from its mismatching inputs (each distinct input once)."""
    fin = get_driver(spec).input_formats(spec)
    if len(fin) != 1 or not stage.seen:
        return
    m: dict[tuple[int, int, int], int] = {}
    for vec in stage.seen:
        cell = _map_cell(fin[0], vec[0])
        if cell is None:
            return
        m[cell] = m.get(cell, 0) + 1
    stage.input_map = [[*k, v] for k, v in sorted(m.items())]


def _distances(fout: tuple, exp: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Per mismatching row: the largest distance (in representable values) over the differing columns, -1 when a
    NaN/inf is involved in a differing column."""
    dist = np.zeros(exp.shape[0], dtype=np.int64)
    special = np.zeros(exp.shape[0], dtype=bool)
    for j, f in enumerate(fout):
        diff = exp[:, j] != got[:, j]
        if not diff.any():
            continue
        off = (got[:, j] >> np.uint64(32)) == np.uint64(0xFFFF_FFFF)  # refarith.certify.values.off_grid_mask
        ke, se = order_keys(f, exp[:, j])
        kg, sg = order_keys(f, np.where(off, exp[:, j], got[:, j]))
        sp = diff & (se | sg | off)
        special |= sp
        dj = np.where(diff & ~sp, np.abs(kg - ke), 0)
        dist = np.maximum(dist, dj)
    return np.where(special, -1, dist)


def compare(spec: Spec, kernel: Kernel, inputs: list[np.ndarray], expected: np.ndarray, domain: np.ndarray,
            stage: Stage, chunk: int = 1 << 16) -> Stage:
    """Run ``kernel`` on the in-domain vectors and account every mismatch into ``stage``.

    ``inputs``: one array per input column; ``expected``: (n, output columns) codes; ``domain``: False where the
    spec raises (those vectors are counted, never run)."""
    d = get_driver(spec)
    fin, fout = d.input_formats(spec), d.output_formats(spec)
    dom = np.asarray(domain, dtype=bool)
    stage.outside_domain += int((~dom).sum())
    ins = [np.asarray(a, dtype=np.uint64)[dom] for a in inputs]
    exp = np.asarray(expected, dtype=np.uint64).reshape(len(dom), -1)[dom]
    n = exp.shape[0]
    stage.vectors += n
    names = column_names(d.outputs(spec))
    best: dict[str, tuple] = {}
    for lo in range(0, n, chunk):
        part = tuple(a[lo:lo + chunk] for a in ins)
        got = kernel(spec, part)
        e = exp[lo:lo + chunk]
        bad = np.nonzero((got != e).any(axis=1))[0]
        if bad.size == 0:
            continue
        dists = _distances(fout, e[bad], got[bad])
        for j, dist in zip(bad.tolist(), dists.tolist()):
            vec = tuple(int(a[lo + j]) for a in ins)
            g, x = tuple(int(v) for v in got[j]), tuple(int(v) for v in e[j])
            if d.within_bound is not None and d.within_bound(spec, vec, x, g):
                stage.within_bound += 1
                continue
            cls = "off_grid" if any(c >> 32 == 0xFFFF_FFFF for c in g) else d.mismatch_class(spec, vec, g, x)
            stage.mismatches[cls] += 1
            for jc in np.nonzero(got[j] != e[j])[0].tolist():
                stage.columns[names[jc]] = stage.columns.get(names[jc], 0) + 1
            _profile(spec, stage, vec, x, g, cls)
            stage.histogram[_bucket(dist)] += 1
            key = tuple(magnitude_key(f, c) for f, c in zip(fin, vec))
            if cls not in best or key < best[cls][0]:
                best[cls] = (key, vec, x, g)
    _flush_map(spec, stage)
    for k, v in list(stage.block_profile.items()):
        if isinstance(v, dict):
            pairs = [[None if a == "none" else int(a), n] for a, n in v.items()]
            stage.block_profile[k] = sorted(pairs, key=lambda p: (p[0] is None, p[0] or 0))
    for cls, (_, vec, x, g) in best.items():
        if cls not in stage.examples or key_of(spec, vec) < key_of(spec, stage.examples[cls]):
            stage.examples[cls] = make_example(spec, cls, vec, x, g)
    return stage


def key_of(spec: Spec, ex) -> tuple:
    """The magnitude key (see :func:`refarith.golden.drivers.magnitude_key`) of a vector or of an Example's
    inputs: counterexamples are minimized by it (smallest magnitudes, column by column)."""
    fin = get_driver(spec).input_formats(spec)
    codes = ex if isinstance(ex, tuple) else tuple(int(h, 16) for h in ex.inputs)
    return tuple(magnitude_key(f, c) for f, c in zip(fin, codes))

def vectors_arrays(spec: Spec, vecs: list[tuple[int, ...]]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(input columns, expected (n, columns), domain mask) of vectors, from the exact model."""
    d = get_driver(spec)
    n_in, n_out = len(d.input_formats(spec)), len(d.output_formats(spec))
    ins = np.array(vecs, dtype=np.uint64).reshape(len(vecs), n_in)
    exp = np.zeros((len(vecs), n_out), dtype=np.uint64)
    dom = np.ones(len(vecs), dtype=bool)
    for i, v in enumerate(vecs):
        r = d.exact(spec, v)
        if r is None:
            dom[i] = False
        else:
            exp[i] = r
    return [ins[:, k] for k in range(n_in)], exp, dom


# ------------------------------------------------------------------ time limits
def check_seconds(seconds: float | None, what: str) -> float | None:
    """``seconds`` as a float (None: no limit); BadValueError when it is zero, negative or not finite."""
    if seconds is None:
        return None
    try:
        v = float(seconds)
    except (TypeError, ValueError):
        raise BadValueError(f"{what} must be a number of seconds, got {seconds!r}") from None
    if not v > 0 or v == float("inf"):
        raise BadValueError(f"{what} must be a positive number of seconds, got {seconds!r}")
    return v


@contextmanager
def time_limit(seconds: float | None, what: str, hard_exit: bool = False):
    """KernelError when the body runs longer than ``seconds``: SIGALRM raises :class:`StageTimeout` into the
    running code (main thread only).  ``hard_exit``: should the body not return within a grace period after that
    (a kernel blocked in C, or one swallowing BaseException), a watchdog thread prints the error and ends the
    process with status 2 (the CLI; no report is written)."""
    if seconds is None:
        yield
        return
    msg = f"{what} did not finish within the time limit of {seconds:g} s (--timeout)"
    alarm = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    if not alarm and not hard_exit:
        raise BadValueError(f"{what}: a time limit needs the main thread (SIGALRM); run there, or without --timeout")
    done = threading.Event()
    if alarm:
        def on_alarm(signum, frame):
            raise StageTimeout(msg)

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    if hard_exit:
        def last_resort():
            if not done.wait(seconds + max(5.0, seconds / 2)):
                sys.stderr.write(f"refarith: error: {msg}; the kernel could not be interrupted\n")
                sys.stderr.flush()
                REAL_EXIT(2)

        threading.Thread(target=last_resort, daemon=True, name="refarith-time-limit").start()
    try:
        yield
    except StageTimeout:
        raise KernelError(msg) from None
    finally:
        done.set()
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------ the golden files are recomputed
_CHECKED: dict[tuple[str, str, bool], int] = {}
"""(path, SHA-256 of the parsed vectors, exact) of golden files already recomputed in this process -> the number
of vectors the exact model recomputed."""


def _codes_text(spec: Spec, row: tuple[int, ...] | None, cols: list[int]) -> str:
    if row is None:
        return "'!' (the spec raises)"
    d = get_driver(spec)
    fout, names = d.output_formats(spec), column_names(d.outputs(spec))
    return ", ".join(f"{names[j]} {_hex(fout[j], row[j])} = {_value_str(fout[j], row[j])}" for j in cols)


def check_golden(spec: Spec, g: ff.GoldenFile, exact: bool = False) -> int:
    """Recompute the expected output of every vector of ``g``; GoldenFileError at the first line that disagrees,
    naming the file, the line, the file's value and the exact model's.  Returns how many vectors the exact model
    recomputed itself.

    Reference: refarith's numpy kernel of the op where it has one, else (and with ``exact``) the exact model.  The
    numpy kernels are tied to the exact model -- exhaustively for domains of at most 2^24 points (16-bit casts,
    8-bit binary ops), by the sticky-key lemma and Z3 for binary32 casts, on sampled vectors for block and
    integer-only ops -- and raise where the spec raises.  A vector is accepted when the file equals the numpy
    kernel there; every other vector (each one the kernel does not reproduce, every '!' row, every row when the
    kernel cannot run) is recomputed by the exact model, which decides.  ``exact``: the exact model recomputes
    every vector."""
    key = (str(g.path), ff.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in g.inputs)
                                  + g.outputs.tobytes() + g.raises.tobytes()), exact)
    if key in _CHECKED:
        return _CHECKED[key]
    d = get_driver(spec)
    n = g.count
    dom = ~g.raises
    suspect = np.ones(n, dtype=bool)
    if not exact and d.fast is not None and "numpy" in d.backends and dom.any():
        try:
            with np.errstate(all="ignore"):
                cols = tuple(a[dom] for a in g.inputs)
                raw = d.fast(spec, group_columns(d.inputs(spec), cols), "numpy")
                got = as_outputs("refarith:numpy", raw, int(dom.sum()), d.outputs(spec))
            suspect[np.nonzero(dom)[0][(got == g.outputs[dom]).all(axis=1)]] = False
        except Exception:  # noqa: BLE001 - the accelerator cannot run here: the exact model decides every vector
            pass
    todo = np.nonzero(suspect)[0]
    for i in todo.tolist():
        vec = tuple(int(a[i]) for a in g.inputs)
        want = d.exact(spec, vec)
        have = None if g.raises[i] else tuple(int(c) for c in g.outputs[i])
        if want != have:
            k = len(d.output_formats(spec))
            cols = [j for j in range(k) if want is None or have is None or want[j] != have[j]]
            cols = cols if want is not None and have is not None else list(range(min(k, 4)))
            fin = d.input_formats(spec)
            ins = " ".join(_hex(f, c) for f, c in zip(fin[:8], vec)) + (" ..." if len(vec) > 8 else "")
            raise GoldenFileError(f"{g.path}:{g.first_line + i}: for input {ins} the file gives "
                                  f"{_codes_text(spec, have, cols)}, the exact model {_codes_text(spec, want, cols)}"
                                  "; the golden file is wrong (refusing to certify against it)")
    _CHECKED[key] = int(todo.size)
    return int(todo.size)


# ------------------------------------------------------------------ stages
def golden_stage(spec: Spec, kernel: Kernel, golden_dir: str | Path | None = None, exact: bool = False) -> Stage:
    """Compare against the golden file of the spec (hash-checked, every expected output recomputed, see
    :func:`check_golden`) in ``golden_dir`` (default: the committed set); vectors generated now from the exact
    model when the committed set has no file for the spec.  A ``golden_dir`` given explicitly must be usable and
    hold the spec's file (GoldenFileError otherwise)."""
    t0 = time.monotonic()
    found = find_file(spec, golden_dir)
    if found is None and golden_dir is not None:
        raise GoldenFileError(f"golden vector directory {golden_dir}: its MANIFEST has no file for {spec}")
    if found is not None:
        path, sha = found
        g = ff.load(path, sha)
        if g.spec != spec:
            raise GoldenFileError(f"{path}: golden file is for {g.spec}, not {spec}")
        n_exact = check_golden(spec, g, exact)
        how = "all by the exact model" if exact or n_exact == g.count else \
            f"by refarith's numpy kernel, {n_exact} by the exact model"
        st = Stage("golden", f"{path.name} ({g.header['rule']}; expected outputs recomputed {how})", sha256=sha)
        ins, exp, dom = g.inputs, g.outputs, ~g.raises
    else:
        rule, vins, vouts = vectors(spec)
        st = Stage("golden", f"generated from the exact model ({rule}; no committed file)")
        d = get_driver(spec)
        n_in, n_out = len(d.input_formats(spec)), len(d.output_formats(spec))
        arr = np.array(vins, dtype=np.uint64).reshape(len(vins), n_in)
        ins = [arr[:, k] for k in range(n_in)]
        exp = np.array([o if o is not None else (0,) * n_out for o in vouts], dtype=np.uint64).reshape(-1, n_out)
        dom = np.array([o is not None for o in vouts], dtype=bool)
    compare(spec, kernel, ins, exp, dom, st)
    st.seconds = time.monotonic() - t0
    return st


def fuzz_stage(spec: Spec, kernel: Kernel, n: int, seed: int = 0) -> Stage:
    """``n`` vectors drawn by hypothesis (boundary-weighted codes, see refarith.certify.fuzz), compared exactly."""
    from refarith.certify.fuzz import run_fuzz

    t0 = time.monotonic()
    st = Stage("fuzz", f"hypothesis, {n} vectors, seed {seed}", seed=seed)
    vecs = run_fuzz(spec, n, seed)
    if vecs:
        ins, exp, dom = vectors_arrays(spec, vecs)
        compare(spec, kernel, ins, exp, dom, st, chunk=4096)
    shrink_examples(spec, kernel, st)
    st.seconds = time.monotonic() - t0
    return st


def shrink_examples(spec: Spec, kernel: Kernel, st: Stage) -> None:
    """Replace every counterexample of ``st`` by the smallest failing vector of its class that
    :func:`refarith.certify.fuzz.shrink` reaches from it (see that module for what "smallest" means)."""
    from refarith.certify.fuzz import mismatch_runner, shrink

    d = get_driver(spec)
    for cls, e in list(st.examples.items()):
        vec = tuple(int(h, 16) for h in e.inputs)
        small = shrink(spec, mismatch_runner(spec, kernel, cls), vec, cls)
        if small != vec:
            got = mismatch_runner(spec, kernel, cls)([small])[0]
            if got is not None:  # a kernel whose result depends on the batch may pass the vector run alone
                st.examples[cls] = make_example(spec, cls, small, d.exact(spec, small), got)


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


def _count(n: int) -> str:
    return str(n) if n < 10 ** 7 else f"about 2^{n.bit_length() - 1}"


def exhaustive_missing(spec: Spec, kernel: Kernel | None = None) -> str | None:
    """Why no exhaustive check exists for ``spec`` (and ``kernel``), in one line; None when one does: the golden
    stage compares every input, or the 2^32 sweep runs (a cast into a narrow float target by a vectorized kernel).
    A stochastic-rounding spec has none: it is certified on (x, r) vectors at the hard places, or statistically."""
    d = get_driver(spec)
    if spec.param.get("rounding") == "sr":
        return (f"the stochastic-rounding spec {spec} is certified on (x, r) vectors at the hard places (or with "
                "--sr-samples), not by a sweep")
    if d.exhaustive_ok(spec):
        return None
    why = sweep_supported(spec)
    if why:
        return (f"{why}, and the {_count(d.domain_size(spec))} inputs of {spec} are too many for the golden stage: "
                "no exhaustive check exists")
    if kernel is not None and not kernel.vectorized:
        return f"{kernel.target} is a scalar kernel; 2^32 inputs would take days"
    return None


def exhaustive_plan(spec: Spec, kernel: Kernel | None = None) -> str | None:
    """What ``--exhaustive`` does for ``spec``, decided before any work: None when the 2^32 sweep runs; a one-line
    note when the golden stage already compares every input (no separate sweep); SpecError naming
    :func:`exhaustive_missing`'s reason when no exhaustive check exists."""
    why = exhaustive_missing(spec, kernel)
    if why:
        raise SpecError(f"--exhaustive: {why} (run without --exhaustive, or with --exhaustive-if-possible)")
    d = get_driver(spec)
    if d.exhaustive_ok(spec):
        return (f"--exhaustive: the golden stage compares all {_count(d.domain_size(spec))} inputs of {spec}; "
                "no separate sweep")
    return None


def _table_part(args: tuple[str, int, int]) -> tuple[int, np.ndarray, np.ndarray]:
    spec_id, lo, hi = args
    spec = parse_spec(spec_id)
    dst, d, src = spec.fmt(1), get_driver(spec), get_format("binary32")
    ref = np.empty(hi - lo, dtype=np.int64)
    cls = np.empty(hi - lo, dtype=np.int8)
    for key in range(lo, hi):
        bits = ((key >> 1) << 16) | (key & 1)
        r = d.exact(spec, (bits,))
        ref[key - lo] = -1 if r is None else r[0]
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
    return lo, ref, cls


# ------------------------------------------------------------------ worker pools
def start_method() -> str:
    """"fork" while torch is not loaded in this process (cheap: workers share the parent's memory), else "spawn":
    a child forked after torch's intra-op thread pool has run deadlocks in its first parallel torch op.  A ``None``
    entry in ``sys.modules`` (torch made unimportable, as ``REFARITH_NO_TORCH=1`` does in the tests) is not torch."""
    return "spawn" if sys.modules.get("torch") is not None else "fork"


def _describe_chunks(items: list, label) -> str:
    shown = ", ".join(label(i) for i in sorted(items)[:4])
    return shown + (f" and {len(items) - 4} more" if len(items) > 4 else "")


def run_pool(fn, items: list, jobs: int, *, initializer=None, initargs: tuple = (), method: str | None = None,
             watchdog: float | None = None, deadline: float | None = None, what: str = "sweep",
             label=str, on_result=None) -> None:
    """Run ``fn(item)`` for every item over ``jobs`` worker processes, calling ``on_result(result)`` in this
    process as results arrive.  At most 2 x ``jobs`` items are in flight.  Errors (KernelError; the workers are
    killed, nothing is returned): a worker that dies (killed, ``os._exit``, out of memory), no item finishing for
    ``watchdog`` seconds (naming the items running), passing ``deadline`` (a ``time.monotonic()`` instant), an
    exception in ``fn`` (re-raised when it is a RefarithError, else named)."""
    from refarith.interrupts import worker_init  # workers ignore Ctrl-C: this process stops them

    ctx = mp.get_context(method or start_method())
    ex = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=worker_init, initargs=(initializer, initargs))
    pending: dict = {}
    todo = iter(items)
    ok = False

    def submit() -> None:
        for item in todo:
            pending[ex.submit(fn, item)] = item
            return

    try:
        for _ in range(2 * jobs):
            submit()
        last = time.monotonic()
        while pending:
            done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            now = time.monotonic()
            for f in done:
                item = pending.pop(f)
                try:
                    r = f.result()
                except BrokenProcessPool:
                    lost = [item] + list(pending.values())
                    raise KernelError(f"{what}: a worker process died (killed, exited or out of memory); "
                                      f"in flight: {_describe_chunks(lost, label)}") from None
                except RefarithError:
                    raise
                except BaseException as e:  # noqa: BLE001 - whatever failed in a worker, named
                    raise KernelError(f"{what}: {label(item)} failed in a worker: {type(e).__name__}: {e}") from None
                if on_result is not None:
                    on_result(r)
                last = now
                submit()
            running = [pending[f] for f in pending if f.running()] or list(pending.values())
            if deadline is not None and now > deadline:
                raise KernelError(f"{what} did not finish within its time limit (--timeout); still running: "
                                  f"{_describe_chunks(running, label)}")
            if watchdog is not None and pending and now - last > watchdog:
                stalled = running
                raise KernelError(f"{what} stalled: no chunk finished for {watchdog:g} s (--watchdog); in flight: "
                                  f"{_describe_chunks(stalled, label)}")
        ok = True
    finally:
        if not ok:
            for proc in list(getattr(ex, "_processes", {}).values()):  # hung or broken workers: end them now
                if proc.is_alive():
                    proc.kill()
        ex.shutdown(wait=ok, cancel_futures=True)


# ------------------------------------------------------------------ exhaustive binary32 sweep: reference tables
def sticky_tables(spec: Spec, jobs: int = 1, keys: int = 1 << 17) -> tuple[np.ndarray, np.ndarray]:
    """(reference, class) tables over the first ``keys`` of the 2^17 sticky keys (default all), from the exact
    model (-1: the spec raises).

    Key = (bits >> 16) << 1 | (low 16 bits != 0); the entry is the exact model's result at the
    representative (bits >> 16) << 16 | sticky.  Class codes index CLASSES by the input alone:
    nan_inf for NaN/inf inputs, overflow above the target's max, subnormal below its min normal.
    A sweep of the first ``limit`` binary32 patterns needs the first ``sticky_keys(limit)`` keys only.
    """
    if not 1 <= keys <= 1 << 17:
        raise BadValueError(f"sticky_tables: keys must lie in [1, 2^17], got {keys}")
    have = _TABLES.get(str(spec))
    if have is not None and len(have[0]) >= keys:
        return have[0][:keys], have[1][:keys]
    step = 1 << 13
    parts = [(str(spec), lo, min(lo + step, keys)) for lo in range(0, keys, step)]
    if jobs > 1 and len(parts) > 1:
        res: dict = {}
        # the exact model only, never torch: forking is safe even once torch's threads run, and cheap
        run_pool(_table_part, parts, jobs, method="fork", what=f"reference table of {spec}",
                 label=lambda p: f"keys {p[1]}..", on_result=lambda r: res.__setitem__(r[0], r[1:]))
        res = [res[p[1]] for p in parts]
    else:
        res = [_table_part(p)[1:] for p in parts]
    out = np.concatenate([r for r, _ in res]), np.concatenate([c for _, c in res])
    _TABLES[str(spec)] = out
    return out


def sticky_keys(limit: int) -> int:
    """How many leading sticky keys the binary32 patterns [0, limit) use (1 <= limit <= 2^32)."""
    return (((limit - 1) >> 16) << 1) + 2


_TABLES: dict[str, tuple[np.ndarray, np.ndarray]] = {}


# ------------------------------------------------------------------ exhaustive binary32 sweep: chunks
def _worker_state(spec: Spec, kernel: Kernel, size: int, ref: np.ndarray, cls: np.ndarray) -> None:
    """Fill ``_W``: everything a chunk needs (in this process, or in a worker)."""
    dst = spec.fmt(1)
    r0, r1 = ref[0::2], ref[1::2]
    ref0 = np.where((r0 == r1) & (r0 >= 0), r0, 0xFFFF).astype(np.uint16)
    _W.update(spec=spec, kernel=kernel, ref=ref, cls=cls, size=size, ref0=ref0,
              row_out=(r0 < 0) & (r1 < 0), row_some=(r0 < 0) | (r1 < 0),
              base=np.arange(size, dtype=np.uint32), buf=np.empty(size, dtype=np.uint32),
              as_codes=_fast_codes(kernel.target, (size,), dst),
              isnan=np.array([is_nan_code(dst, c) for c in range(dst.ncodes)]),
              iszero=np.array([dst.is_finite_code(c) and dst.has_zero and dst.finite_value(c) == 0
                               for c in range(dst.ncodes)]),
              key=order_keys(dst, np.arange(dst.ncodes))[0],
              special=order_keys(dst, np.arange(dst.ncodes))[1])


def _init_worker(spec_id: str, kernel: Kernel | None, source: str | None, size: int, ref: np.ndarray,
                 cls: np.ndarray, device: str | None = None) -> None:
    """Worker initializer: a forked worker inherits ``kernel``; a spawned one loads it again from ``source`` (on
    ``device``)."""
    if kernel is None:
        kernel = load_kernel(source, device)
    _worker_state(parse_spec(spec_id), kernel, size, ref, cls)


def _sweep_chunk(lo: int) -> tuple:
    """Compare one chunk.  Fast path: reference by the top 16 bits alone (``ref0``), valid wherever the
    sticky bit does not change the result; every other input (and every disagreement) is re-checked
    against the full sticky-key table."""
    w = _W
    spec, kernel, size = w["spec"], w["kernel"], w["size"]
    x = w["buf"]
    np.add(w["base"], np.uint32(lo), out=x)
    # inputs outside the spec's domain (the exact model raises: NaN into a format without NaN under nan=error,
    # negatives into an unsigned one under negative=error) are counted, not compared; a kernel may refuse a whole
    # array holding one (refarith's own do), so it gets them as +0 (their reference entry is -1: they are always
    # candidates below and counted outside the domain there), and a chunk of nothing else is not run at all
    h0, h1 = lo >> 16, ((lo + size - 1) >> 16) + 1
    if w["row_out"][h0:h1].all():
        return 0, size, np.zeros(len(CLASSES), dtype=np.int64), np.zeros(len(BUCKETS), dtype=np.int64), {}, None
    xin = x
    if w["row_some"][h0:h1].any():
        key = ((x >> np.uint32(16)) << np.uint32(1)) | ((x & np.uint32(0xFFFF)) != 0).astype(np.uint32)
        xin = np.where(w["ref"][key] < 0, np.uint32(0), x)
    raw = call_guarded(kernel.target, kernel.fn, spec, (xin,))
    got = w["as_codes"](raw)
    if not (lo | size) & 0xFFFF:  # whole runs of 2^16 patterns share their top half: one ref0 entry per row
        h0 = lo >> 16
        rows = w["ref0"][h0:h0 + (size >> 16), None]
        cand = np.nonzero((got.reshape(-1, 1 << 16) != rows).reshape(-1))[0]
    else:
        cand = np.nonzero(got != w["ref0"][x >> np.uint32(16)])[0]
    counts = np.zeros(len(CLASSES), dtype=np.int64)
    hist = np.zeros(len(BUCKETS), dtype=np.int64)
    best: dict[int, int] = {}
    if cand.size == 0:
        return size, 0, counts, hist, best, None
    xc = x[cand]
    key = ((xc >> np.uint32(16)) << np.uint32(1)) | ((xc & np.uint32(0xFFFF)) != 0).astype(np.uint32)
    exp = w["ref"][key]
    gc = got[cand].astype(np.int64)
    dom = exp >= 0
    outside = int(cand.size - np.count_nonzero(dom))
    badm = (gc != exp) & dom
    if not badm.any():
        return size - outside, outside, counts, hist, best, None
    g, e, k, xb = gc[badm], exp[badm], key[badm], xc[badm]
    c = w["cls"][k].astype(np.int64)
    c[w["isnan"][g] & w["isnan"][e]] = CLASSES.index("nan_payload")
    c[w["iszero"][g] & w["iszero"][e]] = CLASSES.index("signed_zero")
    counts += np.bincount(c, minlength=len(CLASSES))
    rg, re_ = w["key"][g], w["key"][e]
    dist = np.where(w["special"][g] | w["special"][e], -1, np.abs(rg - re_))
    b = np.select([dist < 0, dist <= 1, dist <= 2, dist <= 4, dist <= 8, dist <= 16], [6, 0, 1, 2, 3, 4], 5)
    hist += np.bincount(b, minlength=len(BUCKETS))
    mag = xb & np.uint32(0x7FFFFFFF)
    for ci in np.unique(c).tolist():
        sel = np.nonzero(c == ci)[0]
        best[ci] = int(xb[sel[np.argmin(mag[sel])]])
    cell = ((xb >> np.uint32(31)) << np.uint32(12)) | (((xb >> np.uint32(23)) & np.uint32(0xFF)) << np.uint32(4)) \
        | ((xb >> np.uint32(23 - MAP_PREFIX_BITS)) & np.uint32((1 << MAP_PREFIX_BITS) - 1))
    cells = np.bincount(cell.astype(np.int64), minlength=2 << 12)
    return size - outside, outside, counts, hist, best, cells



def _fast_codes(target: str, shape, out_fmt):
    """Validate kernel output cheaply per chunk (shape, 1-byte codes); full validation via as_codes otherwise."""
    from refarith.certify.adapters import as_codes

    def conv(raw):
        from refarith.certify.values import Coded

        if isinstance(raw, Coded):
            raise SpecError(f"--exhaustive: {target} returns values; the 2^32 sweep compares codes (use the golden "
                            "and fuzz stages, exhaustive for 16-bit sources)")
        if isinstance(raw, (tuple, list)) and len(raw) == 1:  # refarith's own kernels return one array per result
            raw = raw[0]
        if isinstance(raw, np.ndarray) and raw.shape == tuple(shape) and raw.dtype.itemsize == 1 \
                and raw.dtype.kind in "uifV":
            u = raw.view(np.uint8)
            if out_fmt.nbits < 8 and int(u.max()) >= out_fmt.ncodes:
                return as_codes(target, raw, shape, out_fmt)
            return u
        return as_codes(target, raw, shape, out_fmt)
    return conv


def exhaustive_stage(spec: Spec, kernel: Kernel, jobs: int | None = None, chunk_bits: int = 22,
                     progress: bool | None = None, limit: int | None = None, timeout: float | None = None,
                     watchdog: float | None = DEFAULT_WATCHDOG, hard_exit: bool = False) -> Stage:
    """All 2^32 binary32 inputs (or the first ``limit``), chunked over ``jobs`` processes (see the module
    docstring for the start method and the faults).  ``timeout``: seconds for the whole stage; ``watchdog``:
    seconds without a chunk finishing (worker processes only)."""
    why = sweep_supported(spec)
    if why:
        raise SpecError(f"--exhaustive: {why}")
    if not kernel.vectorized:
        raise SpecError(f"--exhaustive: {kernel.target} is a scalar kernel; 2^32 inputs would take days")
    jobs = check_jobs(jobs)
    timeout = check_seconds(timeout, "--timeout")
    watchdog = check_seconds(watchdog, "--watchdog")
    t0 = time.monotonic()
    method = start_method()
    if jobs > 1 and method == "spawn" and kernel.source is None:
        raise SpecError(f"--exhaustive --jobs {jobs}: torch is loaded, so workers are spawned, and {kernel.target} "
                        "cannot be loaded again in a worker (give a module-level function, or --jobs 1)")
    total = limit if limit is not None else 1 << 32
    size = min(1 << chunk_bits, total)
    st = Stage("exhaustive", f"all {total} binary32 inputs; reference: sticky-key table from the exact model")
    starts = list(range(0, total, size))
    counts = np.zeros(len(CLASSES), dtype=np.int64)
    hist = np.zeros(len(BUCKETS), dtype=np.int64)
    best: dict[int, int] = {}

    cells = np.zeros(2 << 12, dtype=np.int64)

    def absorb(r):
        nonlocal counts, hist
        n, out, c, h, b, m = r
        st.vectors += n
        st.outside_domain += out
        counts += c
        hist += h
        if m is not None:
            cells[:] += m
        for ci, bits in b.items():
            if ci not in best or (bits & 0x7FFFFFFF) < (best[ci] & 0x7FFFFFFF):
                best[ci] = bits

    def label(lo: int) -> str:
        return f"chunk {lo // size} (inputs {lo:#010x}..{min(lo + size, total) - 1:#010x})"

    with time_limit(timeout if jobs <= 1 else None, f"stage exhaustive of {kernel.target}", hard_exit):
        ref, cls = sticky_tables(spec, jobs, sticky_keys(total))
        try:
            with Progress(len(starts), f"exhaustive {spec}", enabled=progress) as bar:
                if jobs <= 1:
                    _worker_state(spec, kernel, size, ref, cls)
                    for s in starts:
                        absorb(_sweep_chunk(s))
                        bar.update()
                else:
                    def on_result(r):
                        absorb(r)
                        bar.update()

                    run_pool(_sweep_chunk, starts, jobs, initializer=_init_worker,
                             initargs=(str(spec), kernel if method == "fork" else None, kernel.source, size, ref,
                                       cls, kernel.device),
                             method=method, watchdog=watchdog, what=f"exhaustive sweep of {kernel.target}",
                             deadline=None if timeout is None else t0 + timeout, label=label, on_result=on_result)
        finally:
            _W.clear()
    for i, k in enumerate(CLASSES):
        st.mismatches[k] = int(counts[i])
    for i, k in enumerate(BUCKETS):
        st.histogram[k] = int(hist[i])
    st.input_map = [[i >> 12, (i >> 4) & 0xFF, i & 0xF, int(cells[i])] for i in np.nonzero(cells)[0].tolist()]
    st.covers = total
    d = get_driver(spec)
    for ci, bits in sorted(best.items()):
        exp = d.exact(spec, (bits,))
        got = tuple(int(v) for v in kernel(spec, (np.array([bits], dtype=np.uint64),))[0])
        st.examples[CLASSES[ci]] = make_example(spec, CLASSES[ci], (bits,), exp, got)
    st.seconds = time.monotonic() - t0
    return st


# ------------------------------------------------------------------ the run
def certify(target, spec: Spec | str, exhaustive: bool = False, fuzz: int = 0, seed: int = 0,
            nan_payload_ok: bool = False, golden_dir: str | Path | None = None, jobs: int | None = None,
            progress: bool | None = None, timeout: float | None = None, watchdog: float | None = DEFAULT_WATCHDOG,
            exact_reference: bool = False, hard_exit: bool = False, device: str | None = None,
            sr_samples: int | None = None, alpha: float = 1e-6, exhaustive_if_possible: bool = False) -> Certificate:
    """Certify ``target`` (a target name or a callable) against ``spec``.

    ``device`` (``cpu``, ``cuda[:N]``): user kernels receive torch tensors there, torch and refarith torch/triton
    kernels run there (see :func:`refarith.certify.adapters.load_kernel`); default: numpy arrays.
    ``timeout``: seconds per stage; ``watchdog``: seconds without progress of the exhaustive sweep's workers;
    ``sr_samples``/``alpha``: a stochastic-rounding spec (``rounding=sr``) is certified by
    :func:`refarith.certify.statistical.certify_sr`: statistically at ``sr_samples`` samples per input and
    family-wise false-alarm rate ``alpha`` for a kernel with internal randomness, else bit-exactly on (x, r).
    ``exhaustive_if_possible``: as ``exhaustive`` where an exhaustive check exists, else the other stages only and
    the reason recorded in the certificate's ``exhaustive_skipped``;
    ``exact_reference``: the exact model recomputes every golden vector (see :func:`check_golden`);
    ``hard_exit``: see :func:`time_limit`.  Raises KernelError/SpecError/GoldenFileError/BadValueError on bad input
    or a fault (a kernel raising anything or exiting, a stage over its time limit, a stage comparing no vector)."""
    if isinstance(fuzz, bool) or not isinstance(fuzz, int) or fuzz < 0:
        raise BadValueError(f"--fuzz must be a number of vectors >= 0 (0: no fuzzing), got {fuzz!r}")
    if jobs is not None:
        check_jobs(jobs)
    timeout = check_seconds(timeout, "--timeout")
    watchdog = check_seconds(watchdog, "--watchdog")
    spec = parse_spec(spec)
    get_driver(spec)
    kernel = load_kernel(target, device)
    kernel.supports(spec)
    skipped = None
    if exhaustive_if_possible and not exhaustive:
        skipped = exhaustive_missing(spec, kernel)
        exhaustive = skipped is None
    if exhaustive:
        exhaustive_plan(spec, kernel)  # refused before any stage runs
    if sr_samples is not None or spec.param.get("rounding") == "sr":  # stochastic rounding: statistical.py
        from refarith.certify.statistical import certify_sr

        if fuzz or exhaustive:
            raise BadValueError(f"--fuzz and --exhaustive do not apply to the stochastic-rounding spec {spec}: its "
                                "kernel is certified on (x, r) vectors at the hard places, or with --sr-samples N")

        c = certify_sr(spec, kernel, sr_samples, alpha, nan_payload_ok, timeout, hard_exit, seed, golden_dir,
                       exact_reference)
        c.exhaustive_skipped = skipped
        return c
    t0 = time.monotonic()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with time_limit(timeout, f"stage golden of {kernel.target}", hard_exit):
        stages = [golden_stage(spec, kernel, golden_dir, exact_reference)]
    if exhaustive and not get_driver(spec).exhaustive_ok(spec):  # small domains: the golden stage is exhaustive
        stages.append(exhaustive_stage(spec, kernel, jobs=jobs, progress=progress, timeout=timeout,
                                       watchdog=watchdog, hard_exit=hard_exit))
    if fuzz:
        with time_limit(timeout, f"stage fuzz of {kernel.target}", hard_exit):
            stages.append(fuzz_stage(spec, kernel, fuzz, seed))
    for s in stages:
        if s.vectors == 0:
            raise SpecError(f"stage {s.name} compared no vectors ({s.outside_domain} outside the domain of {spec}): "
                            "it cannot support a pass" + (" (draw more with a larger --fuzz)" if s.name == "fuzz"
                                                          else ""))
    env = environment()
    if kernel.library:  # a deployed library's adapter: the wrapped library itself
        env["library"] = {"name": kernel.library, "version": kernel.library_version}
    names = column_names(get_driver(spec).outputs(spec))
    for s in stages:  # the sweep has one output column: every mismatch is in it
        if not s.columns and len(names) == 1 and sum(s.mismatches.values()):
            s.columns = {names[0]: sum(s.mismatches.values())}
    return Certificate(str(spec), kernel.target, kernel.version, nan_payload_ok, stages, env, started,
                       time.monotonic() - t0, exhaustive_skipped=skipped)


__all__ = ["BUCKETS", "BUCKET_LABELS", "DEFAULT_WATCHDOG", "SCHEMA_VERSION", "Certificate", "Example", "Stage",
           "certify", "check_golden", "check_seconds", "compare", "exhaustive_missing", "exhaustive_plan",
           "exhaustive_stage", "fuzz_stage", "golden_stage", "run_pool", "start_method", "sticky_keys", "sticky_tables",
           "sweep_supported", "time_limit"]
