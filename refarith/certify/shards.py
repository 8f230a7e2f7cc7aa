"""Exhaustive sweeps as shards, and the ledger that makes a campaign resumable.

A **campaign** compares one kernel with one spec on an index range of the op's input space, cut into shards of
``2^shard_bits`` consecutive indices:

* ``pairs16``: two-operand arithmetic (add, sub, mul, div) of a 16-bit float format; index i is the pair
  (a, b) = (i >> 16, i & 0xFFFF), 2^32 pairs.  Reference: refarith's fast numpy kernel of the op
  (:mod:`refarith.fast.arith`: one binary64 operation rounded once by the proved cast kernel; for bfloat16
  :mod:`refarith.fast.oddsum`, binary64 with a round-to-odd sum), accepted where the kernel under test agrees
  with it; every vector where the two differ is recomputed by the exact model, which decides, except those
  where both results are NaN codes (class ``nan_payload``, counted without a recomputation).  Every chunk of
  every shard also recomputes evenly spaced vectors with the exact model (64 per 2^20 indices, at least one per
  chunk) and refuses the shard if the fast reference disagrees with it on any.
* ``triples``: the fused multiply-add ``fma(F)`` of an 8- or 16-bit float format of n bits; index i is the
  triple (a, b, c) = (i >> 2n, (i >> n) mod 2^n, i mod 2^n): 2^24 triples for the 8-bit formats, 2^48 for
  binary16 and bfloat16.  Reference: :func:`refarith.fast.oddsum.fma_rto` (exact binary64 product,
  round-to-odd sum, one rounding), with the same acceptance, exact recomputation and self-check as ``pairs16``.
* ``unary32``: a cast from binary32 into a float of at most 8 bits, index i the binary32 pattern, 2^32 inputs.
  Reference: the exact model's sticky-key table and chunk comparison of :mod:`refarith.certify.runner`.
* ``unary32c``: a cast from binary32 into a wider float target (bfloat16, binary16, P3109 formats of 7 precision
  bits and more), index i the binary32 pattern, 2^32 inputs.  Reference: the exact model's per-binade class table
  (:func:`refarith.smt.castsweep.class_reference`: one exact call per reachable (binade, target significand,
  remainder class) of the shard's binades), with the self-check and exact recomputation of ``pairs16``.
* ``fuzz``: a seeded fuzz campaign of any op with a driver; index i is the i-th vector of the campaign, and the
  shard (lo, hi) is the pair (shard seed, count) = (:func:`shard_seed` (seed, lo), hi - lo): its vectors are the
  ``count`` vectors hypothesis draws with that seed (:func:`refarith.certify.fuzz.run_fuzz`, boundary-weighted
  codes), each compared with the exact model.  The union of a campaign's vectors is fixed by (spec, seed, count,
  shard size); a resumed or retried shard draws the same vectors again.

A shard's result (vectors compared, mismatches by class, error histogram, the smallest counterexample of each
class, the input map) is the runner's :class:`~refarith.certify.runner.Stage`; shards merge by adding counts and
keeping the smaller counterexample (:func:`refarith.certify.runner.key_of`), into one certificate.

The **ledger** is a directory: ``ledger.json`` (the header: campaign, kernel digest, reference digest, refarith
version) and ``shards/<lo>-<hi>-<sha256>.json``, each shard's result named by the SHA-256 of its bytes and
written atomically (a temporary file, then ``os.replace``).  Only the process that holds the ledger's exclusive
lock (``flock`` on ``ledger.lock``, released by the kernel when the process dies) writes: a second run on the
same ledger is refused.  A resumed run skips every shard whose file verifies (digest, header, range, count); a
file that does not verify -- corrupt, truncated, from another campaign, or a second result for one shard -- is an
error naming it, and nothing is merged.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from refarith.errors import RefarithError, SpecError
from refarith.golden.drivers import CLASSES, get_driver, is_nan_code
from refarith.golden.fileformat import write_atomic
from refarith.spec import parse_spec

LEDGER_VERSION = 1
"""Version of the ledger layout (header and shard files)."""

CHUNK_BITS = 18
"""Indices compared per chunk inside a shard (the O(shard) memory bound is a few arrays of this length).  2^18
rather than 2^20: a chunk's arrays (2 MiB per uint64 array) then stay in cache, which matters most when two
workers share a machine's cache (a 2^22 shard of binary16 pairs cost 0.47-0.53 CPU s in chunks of 2^18 or 2^19
against 0.64 s and more in chunks of 2^20, best of four in one process)."""

SELF_CHECK = 64
"""Vectors per 2^20 indices on which the fast reference is recomputed by the exact model (spread evenly over each
chunk, at least one per chunk)."""

KINDS = ("pairs16", "triples", "unary32", "unary32c", "fuzz")


class LedgerError(RefarithError):
    """A ledger that cannot be used: foreign, corrupt, locked by another run, or not writable."""


# ------------------------------------------------------------------ the campaign
@dataclass(frozen=True)
class Campaign:
    """``spec`` compared with ``target`` (a :func:`refarith.certify.adapters.load_kernel` name) on indices
    ``[start, stop)`` of the op's input space, in shards of ``2^shard_bits``."""

    spec: str
    target: str
    kind: str
    start: int
    stop: int
    shard_bits: int
    nan_payload_ok: bool = False
    seed: int | None = None
    """The fuzz kind's campaign seed (None for the exhaustive kinds)."""

    @property
    def size(self) -> int:
        return self.stop - self.start

    def shards(self) -> list[tuple[int, int]]:
        """The (lo, hi) index ranges, aligned to multiples of the shard size."""
        n = 1 << self.shard_bits
        out, lo = [], self.start
        while lo < self.stop:
            hi = min(self.stop, (lo // n + 1) * n)
            out.append((lo, hi))
            lo = hi
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["seed"] is None:  # the exhaustive kinds: the binding of ledgers written before fuzz campaigns
            del d["seed"]
        return d


def kind_of(spec_id: str) -> str:
    """The exhaustive campaign kind of a spec (see the module docstring); SpecError when none exists."""
    from refarith.certify.runner import sweep_supported

    spec = parse_spec(spec_id)
    if spec.op in ("add", "sub", "mul", "div") and spec.fmt(0).nbits == 16 and "k" not in spec.param:
        return "pairs16"
    if spec.op == "fma" and spec.fmt(0).nbits in (8, 16):
        return "triples"
    why = sweep_supported(spec)
    if why is None:
        return "unary32"
    if _class_cast(spec):
        return "unary32c"
    raise SpecError(f"refarith sweep: no sharded exhaustive campaign for {spec}: pairs of a 16-bit format "
                    f"(add, sub, mul, div), triples of fma of an 8- or 16-bit format, or binary32 casts into "
                    f"<= 16-bit floats in a deterministic mode ({why}); a fuzz campaign (--fuzz N) covers any op")


def _class_cast(spec) -> bool:
    """A deterministic cast from binary32 into a float target of at most 16 bits: the ``unary32c`` kind."""
    from refarith.exact.rounding import DETERMINISTIC_MODES
    from refarith.formats import FloatFormat

    return (spec.op == "cast" and spec.fmt(0).name == "binary32" and isinstance(spec.fmt(1), FloatFormat)
            and spec.fmt(1).nbits <= 16 and spec.param.get("rounding") in DETERMINISTIC_MODES)


def domain_size(kind: str, spec_id: str | None = None) -> int:
    """Indices of the kind's input space (triples: 2^(3n) for an n-bit format; fuzz: unbounded, 2^48 here)."""
    if kind == "triples":
        assert spec_id is not None
        return 1 << (3 * parse_spec(spec_id).fmt(0).nbits)
    return 1 << (48 if kind == "fuzz" else 32)


def make_campaign(spec: str, target: str, shard_bits: int = 24, start: int = 0, stop: int | None = None,
                  nan_payload_ok: bool = False, fuzz: int | None = None, seed: int = 0) -> Campaign:
    """A checked campaign (canonical spec id; SpecError on a bad range, count or shard size).  ``fuzz``: a fuzz
    campaign of that many vectors drawn from ``seed`` (``start``/``stop`` then select a slice of them)."""
    from refarith.golden.drivers import get_driver

    sid = str(parse_spec(spec))
    if isinstance(shard_bits, bool) or not isinstance(shard_bits, int) or not 8 <= shard_bits <= 32:
        raise SpecError(f"--shard-bits must be an integer from 8 to 32, got {shard_bits!r}")
    if fuzz is not None:
        get_driver(sid)  # SpecError when the op has no driver
        if isinstance(fuzz, bool) or not isinstance(fuzz, int) or not 1 <= fuzz <= domain_size("fuzz"):
            raise SpecError(f"--fuzz must be a number of vectors from 1 to 2^48, got {fuzz!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 64:
            raise SpecError(f"--seed must be an integer from 0 to 2^64 - 1, got {seed!r}")
        kind, total = "fuzz", fuzz
    else:
        kind = kind_of(sid)
        total = domain_size(kind, sid)
        seed = None
    stop = total if stop is None else stop
    if not 0 <= start < stop <= total:
        raise SpecError(f"--range {start}:{stop} is not a non-empty range inside [0, {total}) of {sid}")
    return Campaign(sid, target, kind, start, stop, shard_bits, bool(nan_payload_ok), seed)


def shard_seed(seed: int, lo: int) -> int:
    """The hypothesis seed of the fuzz shard starting at vector ``lo`` of a campaign seeded ``seed``."""
    return int.from_bytes(hashlib.sha256(f"refarith-fuzz:{seed}:{lo}".encode()).digest()[:8], "big")


# ------------------------------------------------------------------ digests
_EXACT_MODULES = ("refarith/exact/ops.py", "refarith/exact/rounding.py", "refarith/exact/value.py", "refarith/formats",
                  "refarith/golden/drivers.py", "refarith/certify/runner.py", "refarith/certify/shards.py")
_REFERENCE_MODULES = {
    "pairs16": _EXACT_MODULES + ("refarith/fast/__init__.py", "refarith/fast/arith.py", "refarith/fast/oddsum.py",
                                 "refarith/fast/cast.py", "refarith/fast/castkernel.py", "refarith/fast/bitops.py"),
    "unary32": _EXACT_MODULES,
    "unary32c": _EXACT_MODULES + ("refarith/smt/castsweep.py",),
    "fuzz": _EXACT_MODULES + ("refarith/certify/fuzz.py", "refarith/golden/opdrivers"),
}
_REFERENCE_MODULES["triples"] = _REFERENCE_MODULES["pairs16"] + ("refarith/golden/opdrivers/fma.py",)
"""Per campaign kind, the sources its reference runs: the exact model and the fast reference of the kind."""


def _tree_digest(paths) -> str:
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[2]
    for rel in paths:
        p = root / rel
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p]
        for f in files:
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def reference_digest(kind: str) -> str:
    """SHA-256 over the sources of the kind's reference: the exact model, the fast reference, this comparison."""
    return _tree_digest(_REFERENCE_MODULES[kind])


def kernel_digest(target: str, version: str) -> str:
    """SHA-256 of the target name, its version string and, for a ``module:function`` target, its module's
    source file."""
    import importlib.util

    h = hashlib.sha256(f"{target}\0{version}\0".encode())
    mod = target.partition(":")[0]
    if "." in mod:
        try:
            found = importlib.util.find_spec(mod)
        except (ImportError, ValueError):
            found = None
        if found is not None and found.origin and os.path.isfile(found.origin):
            h.update(Path(found.origin).read_bytes())
    return h.hexdigest()


def _canonical(doc: dict) -> bytes:
    return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()


# ------------------------------------------------------------------ the ledger
_SHARD_NAME = re.compile(r"^([0-9a-f]{12,13})-([0-9a-f]{12,13})-([0-9a-f]{64})\.json$")


class Ledger:
    """A campaign's ledger directory (see the module docstring).  ``open(campaign, kernel, reference)`` binds it:
    a new directory gets the header, an existing one must carry the same binding (LedgerError naming the first
    field that differs).  ``lock()`` takes the exclusive writer lock (LedgerError when another run holds it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.header: dict | None = None
        self._lock_fd: int | None = None

    # header
    @property
    def header_file(self) -> Path:
        return self.path / "ledger.json"

    @property
    def shard_dir(self) -> Path:
        return self.path / "shards"

    def binding(self) -> dict:
        assert self.header is not None
        return {k: self.header[k] for k in ("ledger_version", "campaign", "kernel_digest", "reference_digest",
                                              "refarith")}

    def digest(self) -> str:
        """SHA-256 of the binding part of the header; every shard file names it."""
        return hashlib.sha256(_canonical(self.binding())).hexdigest()

    def read_header(self) -> dict:
        if not self.header_file.is_file():
            raise LedgerError(f"ledger {self.path}: no ledger.json (not a sweep ledger)")
        try:
            h = json.loads(self.header_file.read_text())
            if not isinstance(h, dict) or h.get("ledger_version") != LEDGER_VERSION:
                raise ValueError("unknown ledger_version")
            Campaign(**h["campaign"])
            for k in ("kernel_digest", "reference_digest", "refarith", "kernel_version", "created", "environment"):
                h[k]  # noqa: B018 - presence check
        except (ValueError, KeyError, TypeError) as e:
            raise LedgerError(f"ledger {self.header_file}: corrupt or truncated header ({type(e).__name__}: {e})") \
                from None
        self.header = h
        return h

    def open(self, campaign: Campaign, kernel_dig: str, reference_dig: str, kernel_version: str,
             environment: dict) -> None:
        from refarith import __version__

        want = {"ledger_version": LEDGER_VERSION, "campaign": campaign.to_dict(), "kernel_digest": kernel_dig,
                "reference_digest": reference_dig, "refarith": __version__}
        if self.header_file.exists():
            have = self.read_header()
            for k, v in want.items():
                if have[k] != v:
                    raise LedgerError(f"ledger {self.path} belongs to another campaign: its {_differs(k, have[k], v)}"
                                      " (use a new ledger directory, or rerun with the ledger's own settings)")
            return
        if self.path.exists() and any(self.path.iterdir()) and not (self.path / "ledger.lock").exists():
            raise LedgerError(f"ledger {self.path}: directory exists, is not empty and has no ledger.json")
        self.header = {**want, "kernel_version": kernel_version, "environment": environment,
                       "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.header_file, json.dumps(self.header, indent=1, sort_keys=True).encode() + b"\n")

    # lock
    def lock(self) -> None:
        """Take the exclusive writer lock; LedgerError when another live process holds it."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / "ledger.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise LedgerError(f"ledger {self.path}: cannot create its lock file ({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise LedgerError(f"ledger {self.path} is in use by another run (pid {other}); two runs never write "
                              "one ledger") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # shards
    def write_shard(self, lo: int, hi: int, result: dict) -> Path:
        """Write one shard's result, named by its content digest (atomically); returns its path."""
        assert self._lock_fd is not None, "write_shard needs the ledger lock"
        doc = {"ledger": self.digest(), "lo": lo, "hi": hi, **result}
        data = _canonical(doc)
        p = self.shard_dir / f"{lo:012x}-{hi:012x}-{hashlib.sha256(data).hexdigest()}.json"
        write_atomic(p, data)
        return p

    def shards(self) -> dict[tuple[int, int], dict]:
        """Every verified shard result by (lo, hi); LedgerError at the first file that does not verify."""
        assert self.header is not None
        camp = Campaign(**self.header["campaign"])
        ranges = set(camp.shards())
        out: dict[tuple[int, int], dict] = {}
        if not self.shard_dir.is_dir():
            return out
        for p in sorted(self.shard_dir.iterdir()):
            if p.name.startswith("."):  # a temporary of an interrupted atomic write: never a result
                continue
            m = _SHARD_NAME.match(p.name)
            if not m:
                raise LedgerError(f"ledger {self.path}: unexpected file shards/{p.name} (not a shard result)")
            lo, hi = int(m.group(1), 16), int(m.group(2), 16)
            data = p.read_bytes()
            if hashlib.sha256(data).hexdigest() != m.group(3):
                raise LedgerError(f"shard file {p}: corrupt or truncated (its SHA-256 is not the one in its name); "
                                  "remove it to recompute the shard")
            try:
                doc = json.loads(data)
                stage = doc["stage"]
                n = stage["vectors"] + stage["outside_domain"]
            except (ValueError, KeyError, TypeError) as e:
                raise LedgerError(f"shard file {p}: unreadable result ({type(e).__name__}: {e})") from None
            if doc.get("ledger") != self.digest():
                raise LedgerError(f"shard file {p}: belongs to another ledger (header digest differs)")
            if (lo, hi) not in ranges or doc.get("lo") != lo or doc.get("hi") != hi:
                raise LedgerError(f"shard file {p}: range {lo:#x}..{hi:#x} is not a shard of this campaign")
            if n != hi - lo:
                raise LedgerError(f"shard file {p}: counts {n} vectors for a range of {hi - lo}")
            if (lo, hi) in out:
                raise LedgerError(f"ledger {self.path}: two results for shard {lo:#x}..{hi:#x}")
            out[(lo, hi)] = doc
        return out


def _differs(key: str, have, want) -> str:
    if key == "campaign":
        for k in have:
            if have.get(k) != want.get(k):
                return f"campaign {k} is {have.get(k)!r}, not {want.get(k)!r}"
    names = {"kernel_digest": "kernel digest", "reference_digest": "reference digest (refarith's exact model or "
             "fast reference changed)", "refarith": "refarith version", "ledger_version": "ledger version"}
    return f"{names.get(key, key)} is {str(have)[:16]}, not {str(want)[:16]}"


# ------------------------------------------------------------------ one shard
_KERNELS: dict = {}


def _kernel(target: str):
    from refarith.certify.adapters import load_kernel

    if target not in _KERNELS:
        _KERNELS[target] = load_kernel(target)
    return _KERNELS[target]


def _stage_doc(st) -> dict:
    d = asdict(st)
    d.pop("seen", None)
    d.pop("covers", None)
    return d


def stage_from(doc: dict):
    """A Stage from its JSON dict (examples as Example objects)."""
    from refarith.certify.runner import Example, Stage

    kw = {f.name: doc[f.name] for f in fields(Stage) if f.name in doc}
    kw["examples"] = {k: Example(**v) for k, v in doc.get("examples", {}).items()}
    return Stage(**kw)


def _sort_key(c: np.ndarray, nan_code: np.ndarray, nbits: int) -> np.ndarray:
    """magnitude_key order of IEEE-layout n-bit codes as integers: finite and inf by magnitude, NaN after, by
    code."""
    return np.where(nan_code[c.astype(np.int64)], np.uint64(1 << nbits) + c, c & np.uint64((1 << (nbits - 1)) - 1))


_NAN: dict[str, np.ndarray] = {}


def _nan_codes(name: str) -> np.ndarray:
    if name not in _NAN:
        from refarith.formats import get_format

        f = get_format(name)
        _NAN[name] = np.array([is_nan_code(f, c) for c in range(f.ncodes)])
    return _NAN[name]


def _reference(spec, ops: tuple) -> np.ndarray:
    d = get_driver(spec)
    if spec.op != "fma" and spec.fmt(0).name == "bfloat16":
        from refarith.fast.oddsum import arith_rto

        p = spec.param
        return np.asarray(arith_rto(spec.op, *ops, spec.fmt(0), p["rounding"], p["overflow"]), dtype=np.uint64)
    return np.asarray(d.fast(spec, ops, "numpy")[0], dtype=np.uint64)


def _operands(idx: np.ndarray, arity: int, nbits: int) -> tuple:
    """Index -> operand codes, the first operand in the high bits."""
    m = np.uint64((1 << nbits) - 1)
    return tuple((idx >> np.uint64(nbits * (arity - 1 - k))) & m for k in range(arity))


def _nan_payloads(st, cand: np.ndarray, got: np.ndarray, ref: np.ndarray, nan_code: np.ndarray):
    """Among the candidate positions, those where both results are NaN codes: counted as compared, class
    nan_payload (column y, histogram special) without a recomputation.  Returns (mask over cand, positions)."""
    both_nan = nan_code[got[cand].astype(np.int64)] & nan_code[ref[cand].astype(np.int64)]
    nn = cand[both_nan]
    n = int(nn.size)
    st.vectors += n
    st.mismatches["nan_payload"] += n
    st.histogram["special"] += n
    if n:
        st.columns["y"] = st.columns.get("y", 0) + n
    return both_nan, nn


def _codes_shard(camp: Campaign, lo: int, hi: int):
    """A ``pairs16`` or ``triples`` shard: the fast reference, the kernel, the exact model where they differ."""
    from refarith.certify.runner import Stage, compare, key_of, make_example, vectors_arrays

    spec = parse_spec(camp.spec)
    kernel = _kernel(camp.target)
    d = get_driver(spec)
    fmt = spec.fmt(0)
    arity = 3 if camp.kind == "triples" else 2
    st = Stage("exhaustive", "")
    nan_code = _nan_codes(fmt.name)
    cn = CLASSES.index("nan_payload")
    for c0 in range(lo, hi, 1 << CHUNK_BITS):
        c1 = min(hi, c0 + (1 << CHUNK_BITS))
        ops = _operands(np.arange(c0, c1, dtype=np.uint64), arity, fmt.nbits)
        with np.errstate(all="ignore"):
            ref = _reference(spec, ops)
        nprobe = min(c1 - c0, max(1, ((c1 - c0) * SELF_CHECK + (1 << 20) - 1) >> 20))
        probe = np.linspace(0, c1 - c0 - 1, nprobe).astype(np.int64)
        for j in probe.tolist():
            vec = tuple(int(o[j]) for o in ops)
            want = d.exact(spec, vec)
            if want is None or want[0] != int(ref[j]):
                raise RefarithError(f"{camp.spec}: the fast reference gives {int(ref[j]):#06x} for "
                                    f"({', '.join(f'{v:#06x}' for v in vec)}), the exact model {want}; shard refused")
        got = kernel(spec, ops)[:, 0]
        cand = np.nonzero(got != ref)[0]
        st.vectors += int(c1 - c0 - cand.size)
        if cand.size == 0:
            continue
        both_nan, nn = _nan_payloads(st, cand, got, ref, nan_code)
        if nn.size:
            k = np.zeros(nn.size, dtype=np.uint64)
            for o in ops:
                k = (k << np.uint64(fmt.nbits + 1)) | _sort_key(o[nn], nan_code, fmt.nbits)
            j = int(nn[np.argmin(k)])
            vec = tuple(int(o[j]) for o in ops)
            if "nan_payload" not in st.examples or key_of(spec, vec) < key_of(spec, st.examples["nan_payload"]):
                st.examples["nan_payload"] = make_example(spec, CLASSES[cn], vec, (int(ref[j]),), (int(got[j]),))
        rest = cand[~both_nan]
        if rest.size:
            vecs = list(zip(*(o[rest].tolist() for o in ops)))
            ins, exp, dom = vectors_arrays(spec, vecs)
            compare(spec, kernel, ins, exp, dom, st)
    st.seen = {}
    return st


def _fuzz_shard(camp: Campaign, lo: int, hi: int):
    """A ``fuzz`` shard: ``hi - lo`` vectors drawn with :func:`shard_seed` (seed, lo), compared exactly."""
    from refarith.certify.fuzz import run_fuzz
    from refarith.certify.runner import Stage, compare, vectors_arrays

    spec = parse_spec(camp.spec)
    kernel = _kernel(camp.target)
    assert camp.seed is not None
    sseed = shard_seed(camp.seed, lo)
    st = Stage("fuzz", "", seed=camp.seed)
    vecs = run_fuzz(spec, hi - lo, sseed)
    if len(vecs) != hi - lo:
        raise RefarithError(f"{camp.spec}: hypothesis drew {len(vecs)} vectors for seed {sseed}, not {hi - lo}")
    for c0 in range(0, len(vecs), 1 << CHUNK_BITS):
        ins, exp, dom = vectors_arrays(spec, vecs[c0:c0 + (1 << CHUNK_BITS)])
        compare(spec, kernel, ins, exp, dom, st, chunk=4096)
    st.seen = {}
    return st


def _unary_shard(camp: Campaign, lo: int, hi: int):
    from refarith.certify import runner

    spec = parse_spec(camp.spec)
    kernel = _kernel(camp.target)
    if str(spec) not in runner._TABLES:  # one spec's tables at a time: a worker may sweep hundreds of casts
        runner._TABLES.clear()
    ref, cls = runner.sticky_tables(spec)
    st = runner.Stage("exhaustive", "")
    counts = np.zeros(len(CLASSES), dtype=np.int64)
    hist = np.zeros(len(runner.BUCKETS), dtype=np.int64)
    cells = np.zeros(2 << 12, dtype=np.int64)
    best: dict[int, int] = {}
    try:
        for c0 in range(lo, hi, 1 << CHUNK_BITS):
            size = min(hi, c0 + (1 << CHUNK_BITS)) - c0
            if runner._W.get("size") != size or runner._W.get("spec") != spec or runner._W.get("kernel") is not kernel:
                runner._worker_state(spec, kernel, size, ref, cls)
            n, out, c, h, bb, m = runner._sweep_chunk(c0)
            st.vectors += n
            st.outside_domain += out
            counts += c
            hist += h
            if m is not None:
                cells += m
            for ci, bits in bb.items():
                if ci not in best or (bits & 0x7FFFFFFF) < (best[ci] & 0x7FFFFFFF):
                    best[ci] = bits
    finally:
        runner._W.clear()
    st.mismatches = {k: int(counts[i]) for i, k in enumerate(CLASSES)}
    st.histogram = {k: int(hist[i]) for i, k in enumerate(runner.BUCKETS)}
    st.input_map = [[i >> 12, (i >> 4) & 0xFF, i & 0xF, int(cells[i])] for i in np.nonzero(cells)[0].tolist()]
    d = get_driver(spec)
    for ci, bits in sorted(best.items()):
        got = tuple(int(v) for v in kernel(spec, (np.array([bits], dtype=np.uint64),))[0])
        st.examples[CLASSES[ci]] = runner.make_example(spec, CLASSES[ci], (bits,), d.exact(spec, (bits,)), got)
    if sum(counts):
        st.columns = {"y": int(sum(counts))}
    return st


def _unary_class_shard(camp: Campaign, lo: int, hi: int):
    """A ``unary32c`` shard: the class-table reference, the kernel, the exact model where they differ."""
    from refarith.certify.runner import Stage, compare, vectors_arrays
    from refarith.smt.castsweep import MISSING, NO_CODE, _class_d, _qbits, class_reference

    spec = parse_spec(camp.spec)
    kernel = _kernel(camp.target)
    d = get_driver(spec)
    dst = spec.fmt(1)
    p = spec.param
    setting = (p["rounding"], p["overflow"], p.get("nan", "error"), p.get("negative", "error"))
    ref_tab = class_reference(dst.name, setting, lo, hi)
    dvec = _class_d(dst)
    qb = _qbits(dvec)
    st = Stage("exhaustive", "")
    nan_code = _nan_codes(dst.name)
    step = 1 << min(CHUNK_BITS, 23)
    for c0 in range(lo, hi, step):
        c1 = min(hi, (c0 // step + 1) * step)  # inside one binade (2^23 patterns): d is one number
        bits = np.arange(c0, c1, dtype=np.uint32)
        ref = binade_reference(c0, c1, dvec, qb, ref_tab)
        if int(ref.max()) == MISSING:
            raise RefarithError(f"{camp.spec}: an input of [{c0:#x}, {c1:#x}) without a class-table entry; "
                                "shard refused")
        nprobe = min(c1 - c0, max(1, ((c1 - c0) * SELF_CHECK + (1 << 20) - 1) >> 20))
        for j in np.linspace(0, c1 - c0 - 1, nprobe).astype(np.int64).tolist():
            want = d.exact(spec, (int(bits[j]),))
            if (NO_CODE if want is None else want[0]) != int(ref[j]):
                raise RefarithError(f"{camp.spec}: the class table gives {int(ref[j]):#x} for {int(bits[j]):#010x}, "
                                    f"the exact model {want}; shard refused")
        dom = ref != np.uint64(NO_CODE)
        nd = int(np.count_nonzero(dom))
        st.outside_domain += int(c1 - c0 - nd)
        if nd == 0:  # nothing the spec defines (see runner._sweep_chunk): not run
            continue
        # inputs outside the domain go to the kernel as +0 (a kernel may refuse the whole array otherwise)
        got = kernel(spec, (bits if nd == c1 - c0 else np.where(dom, bits, np.uint32(0)),))[:, 0].astype(np.uint64)
        cand = np.nonzero(dom & (got != ref))[0]
        st.vectors += nd - int(cand.size)
        if cand.size == 0:
            continue
        both_nan, nn = _nan_payloads(st, cand, got, ref, nan_code)
        if nn.size:
            st.examples.setdefault("nan_payload", runner_example(spec, int(bits[nn[0]]), int(ref[nn[0]]),
                                                                 int(got[nn[0]])))
        rest = cand[~both_nan]
        if rest.size:
            ins, exp, okd = vectors_arrays(spec, [(b,) for b in bits[rest].tolist()])
            compare(spec, kernel, ins, exp, okd, st)
    st.seen = {}
    return st


def binade_reference(a: int, b: int, dvec: np.ndarray, qb: int, tab: np.ndarray) -> np.ndarray:
    """``tab[class_index(x)]`` (:func:`refarith.smt.castsweep.class_index`) for the binary32 patterns x in [a, b),
    which lie in one binade, without an index per pattern: inside one binade the class index
    runs through q = sig >> d in order, each q's 2^d patterns in four runs (remainder 0, below half, half, above
    half: 1, half - 1, 1, half - 1 patterns), so the entries are the binade's slice of ``tab`` repeated by run
    lengths clipped to [a, b)."""
    if not 0 <= a < b <= 1 << 32 or a >> 23 != (b - 1) >> 23:
        raise RefarithError(f"binade_reference: [{a:#x}, {b:#x}) is not inside one binade")
    se = a >> 23
    e_f = se & 0xFF
    base = se << (qb + 2)
    m0, n = a & 0x7FFFFF, b - a
    if e_f == 255:  # q = (mantissa != 0), class 0
        vals, lens, s0 = tab[[base, base + 4]], np.array([1, (1 << 23) - 1], dtype=np.int64), m0
    else:
        sig0 = m0 | (1 << 23) if e_f else m0
        d = int(dvec[e_f])
        if d < 1:
            raise RefarithError(f"binade_reference: d = {d} below 1 in binade {e_f} (a key target, not a class one)")
        if d > 24:  # q = 0; class 0 at sig = 0, class 1 above (sig < 2^24 < half)
            vals, lens, s0 = tab[base:base + 2], np.array([1, (1 << 24) - 1], dtype=np.int64), sig0
        else:
            q0, q1 = sig0 >> d, (sig0 + n - 1) >> d
            half = 1 << (d - 1)
            vals = tab[base + (q0 << 2):base + ((q1 + 1) << 2)]
            lens = np.tile(np.array([1, half - 1, 1, half - 1], dtype=np.int64), q1 - q0 + 1)
            s0 = sig0 - (q0 << d)
    ends = np.cumsum(lens)
    lens = np.clip(np.minimum(ends, s0 + n) - np.maximum(ends - lens, s0), 0, None)
    return np.repeat(vals, lens)


def runner_example(spec, x: int, want: int, got: int) -> dict:
    from refarith.certify.runner import make_example

    return make_example(spec, "nan_payload", (x,), (want,), (got,))


def run_shard(campaign: dict, lo: int, hi: int) -> dict:
    """Compare one shard (in this process or a Dask worker); the result document for the ledger."""
    import platform

    camp = Campaign(**campaign)
    t0 = time.process_time()
    w0 = time.monotonic()
    fn = {"pairs16": _codes_shard, "triples": _codes_shard, "unary32": _unary_shard, "unary32c": _unary_class_shard,
          "fuzz": _fuzz_shard}[camp.kind]
    st = fn(camp, lo, hi)
    out = {"stage": _stage_doc(st), "cpu_seconds": round(time.process_time() - t0, 3),
           "seconds": round(time.monotonic() - w0, 3), "host": platform.node(), "pid": os.getpid()}
    if camp.kind == "fuzz":
        assert camp.seed is not None
        out["fuzz_seed"], out["fuzz_count"] = shard_seed(camp.seed, lo), hi - lo
    return out


# ------------------------------------------------------------------ merge
def merge(spec_id: str, stages: list, name: str = "exhaustive") -> object:
    """One Stage from shard stages: counts added, input-map cells added, the smaller counterexample kept."""
    from refarith.certify.runner import BUCKETS, Stage, key_of

    spec = parse_spec(spec_id)
    out = Stage(name, "")
    out.histogram = dict.fromkeys(BUCKETS, 0)
    cells: dict[tuple[int, int, int], int] = {}
    for s in stages:
        out.vectors += s.vectors
        out.outside_domain += s.outside_domain
        out.within_bound += s.within_bound
        out.seconds += s.seconds
        for k, v in s.mismatches.items():
            out.mismatches[k] = out.mismatches.get(k, 0) + v
        for k, v in s.histogram.items():
            out.histogram[k] = out.histogram.get(k, 0) + v
        for k, v in s.columns.items():
            out.columns[k] = out.columns.get(k, 0) + v
        for sg, e, m, n in s.input_map:
            cells[(sg, e, m)] = cells.get((sg, e, m), 0) + n
        for cls, ex in s.examples.items():
            if cls not in out.examples or key_of(spec, ex) < key_of(spec, out.examples[cls]):
                out.examples[cls] = ex
    out.input_map = [[*k, v] for k, v in sorted(cells.items())]
    return out


def certificate(ledger: Ledger, require_complete: bool = True):
    """The campaign's merged certificate, from the ledger alone (verified shard files; LedgerError when one does
    not verify, or, with ``require_complete``, when shards are missing)."""
    from refarith.certify.runner import Certificate

    h = ledger.header if ledger.header is not None else ledger.read_header()
    camp = Campaign(**h["campaign"])
    docs = ledger.shards()
    missing = [r for r in camp.shards() if r not in docs]
    if missing and require_complete:
        raise LedgerError(f"ledger {ledger.path}: {len(missing)} of {len(camp.shards())} shards not done "
                          f"(first {missing[0][0]:#x}..{missing[0][1]:#x}); run the campaign again to finish it")
    ordered = [docs[r] for r in camp.shards() if r in docs]
    stages = []
    for doc in ordered:
        s = stage_from(doc["stage"])
        s.seconds = doc.get("seconds", 0.0)
        stages.append(s)
    st = merge(camp.spec, stages, "fuzz" if camp.kind == "fuzz" else "exhaustive")
    retries = sum(int(doc.get("retries", 0)) for doc in ordered)
    what = {"pairs16": "pairs (a, b) of codes", "triples": "triples (a, b, c) of codes", "unary32": "binary32 inputs",
            "unary32c": "binary32 inputs",
            "fuzz": f"fuzz vectors (hypothesis; campaign seed {camp.seed}, shard seeds sha256(seed, first index))"}
    whole = camp.kind != "fuzz" and camp.start == 0 and camp.stop == domain_size(camp.kind, camp.spec)
    rng = f"all {camp.size}" if whole else f"indices {camp.start:#x}..{camp.stop - 1:#x} ({camp.size})"
    if camp.kind == "triples":
        fast = "refarith.fast.oddsum.fma_rto (exact binary64 product, round-to-odd sum)"
    elif "bfloat16" in camp.spec:
        fast = "refarith.fast.oddsum (binary64, round-to-odd sums)"
    else:
        fast = "refarith.fast.arith (binary64, one rounding)"
    ref = {"unary32": "sticky-key table from the exact model", "fuzz": "the exact model on every vector",
           "unary32c": "per-binade class table from the exact model, every disagreement recomputed by it"}.get(
        camp.kind, f"{fast}, every disagreement recomputed by the exact model")
    st.source = (f"{rng} {what[camp.kind]} in {len(ordered)} shards of 2^{camp.shard_bits} (ledger "
                 f"{ledger.digest()[:16]}, {retries} retries); reference: {ref}")
    st.covers = camp.stop if camp.start == 0 and camp.kind != "fuzz" else 0
    st.seed = camp.seed
    env = dict(h["environment"])
    env["sweep_shards"] = str(len(ordered))
    env["sweep_retries"] = str(retries)
    env["sweep_ledger"] = ledger.digest()
    env["sweep_kernel_digest"] = h["kernel_digest"]
    env["sweep_reference_digest"] = h["reference_digest"]
    return Certificate(camp.spec, camp.target, h["kernel_version"], camp.nan_payload_ok, [st], env, h["created"],
                       round(st.seconds, 3))


__all__ = ["CHUNK_BITS", "KINDS", "LEDGER_VERSION", "Campaign", "Ledger", "LedgerError", "certificate",
           "domain_size", "kernel_digest", "kind_of", "make_campaign", "merge", "reference_digest", "run_shard",
           "shard_seed", "stage_from"]
