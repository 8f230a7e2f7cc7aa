"""Generating, verifying and locating golden vector files; the committed set and its MANIFEST.

Every file is computed from the exact model (:mod:`refarith.exact`) through the
op's driver, so it is the reference by construction.  Rules:

* ``exhaustive``: every input vector in code order, for domains of at most 2^16
  inputs (casts from 16-bit formats, binary ops of 8-bit formats).
* ``boundary+random``: the driver's boundary inputs in code order, then
  ``RANDOM_COUNT`` inputs from ``random.Random(seed)`` with the seed derived from
  the spec id (first 8 hex digits of its SHA-256), so regeneration is exact.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.resources
import json
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from refarith.errors import BadValueError, GoldenFileError
from refarith.exact import nvfp4 as _nv
from refarith.formats import float_formats
from refarith.golden import fileformat as ff
from refarith.golden.drivers import P3109_GOLDEN_SPECS, SR_GOLDEN_SPECS, describe, get_driver
from refarith.golden.opdrivers.gemm import GEMM_GOLDEN_SPECS, GEMM_MODEL_GOLDEN_SPECS
from refarith.golden.progress import Progress
from refarith.spec import Spec, ops, parse_spec

RANDOM_COUNT = 4096
MANIFEST = "MANIFEST.json"


SOURCE_DIR = Path(__file__).resolve().parent.parent.parent / "golden_vectors"
"""The committed set in a source checkout (or an editable install): the repository's top-level golden_vectors/."""


def packaged_dir() -> Path | None:
    """The committed set shipped inside an installed package (``refarith/golden_vectors/``, package data read
    through :mod:`importlib.resources`), or None when refarith runs from a source checkout."""
    try:
        t = importlib.resources.files("refarith") / "golden_vectors"
    except (ModuleNotFoundError, TypeError):
        return None
    if isinstance(t, Path) and (t / MANIFEST).is_file():
        return t
    return None


def default_dir() -> Path:
    """The committed golden vectors: the package data of an installed refarith (a wheel), else the repository's
    top-level golden_vectors/ (a source checkout)."""
    p = packaged_dir()
    return p if p is not None else SOURCE_DIR


def _refuse_package_data(out: Path) -> None:
    """BadValueError when ``out`` is the read-only committed set inside an installed package."""
    p = packaged_dir()
    if p is None:
        return
    try:
        inside = out.resolve() == p.resolve()
    except OSError:
        inside = False
    if inside:
        raise BadValueError(f"{out} is the committed golden vector set installed with refarith (package data); "
                            "write generated files elsewhere with --out DIR")


def default_out() -> Path:
    """Where ``golden generate`` writes without ``--out``: the committed golden_vectors/ of a source checkout.
    An installed refarith has no such default (BadValueError naming --out): it never writes into site-packages."""
    if packaged_dir() is not None:
        raise BadValueError("golden generate needs --out DIR: this refarith is installed and its committed golden "
                            "vectors are package data, not an output directory")
    return default_dir()


PIN_MODULE = Path(__file__).resolve().parent / "pinned.py"
"""The module holding the committed MANIFEST's SHA-256 (:data:`refarith.golden.pinned.MANIFEST_SHA256`)."""


def is_committed_dir(directory: str | Path) -> bool:
    """True when ``directory`` is the committed golden_vectors/ (whose MANIFEST digest is pinned)."""
    try:
        return Path(directory).resolve() == default_dir().resolve()
    except OSError:
        return False


def pin_text(digest: str) -> bytes:
    """The source of refarith/golden/pinned.py for a MANIFEST of SHA-256 ``digest`` (deterministic)."""
    return (f'''"""SHA-256 of the committed golden_vectors/MANIFEST.json.

Written by ``refarith golden generate`` whenever it writes that MANIFEST (do not edit by hand).
``refarith golden verify`` and ``refarith certify`` refuse a committed set whose MANIFEST has another
digest, so a golden file cannot be edited together with its MANIFEST entry without this package
changing too.
"""

MANIFEST_SHA256 = "{digest}"
''').encode()


def pinned_digest() -> str:
    """The MANIFEST digest pinned in the installed package."""
    from refarith.golden import pinned

    return pinned.MANIFEST_SHA256


def check_pinned(directory: str | Path, data: bytes) -> None:
    """GoldenFileError unless the MANIFEST bytes ``data`` of the committed directory have the pinned digest (other
    directories are not pinned)."""
    if not is_committed_dir(directory):
        return
    have, want = ff.sha256(data), pinned_digest()
    if have != want:
        raise GoldenFileError(f"{Path(directory) / MANIFEST}: SHA-256 {have[:16]}... differs from the digest "
                              f"pinned in refarith.golden.pinned ({want[:16]}...): the committed set was edited "
                              "outside `refarith golden generate`")


def file_name(spec: Spec) -> str:
    return parse_spec(spec).filename() + ".txt.gz"


def spec_seed(spec: Spec) -> int:
    return int(hashlib.sha256(str(spec).encode()).hexdigest()[:8], 16)


_OTHER_OPS = (
    # block quantization: every element format and scale rule of MX, the NVFP4 variants, integer quantization
    "mx_quantize(ocp_e2m1)", "mx_quantize(ocp_e2m1,scale=rceil)", "mx_quantize(ocp_e4m3)",
    "mx_quantize(ocp_e4m3,scale=ceil)", "mx_quantize(ocp_e5m2,scale=even)", "mx_quantize(ocp_e3m2)",
    "mx_quantize(ocp_e2m3)", "mx_quantize(int8_sym)", "mx_quantize(int8)",
    "nvfp4_quantize()", "nvfp4_quantize(division=divide)", "nvfp4_quantize(levels=1)",
    "nvfp4_quantize(zero_scale=zero)", "nvfp4_quantize(tile=16x16)", _nv.COMPRESSED_TENSORS_SPEC,
    "int_quantize(int8)", "int_quantize(int4,clip=full)", "int_quantize(int8,scheme=asymmetric,granularity=channel)",
    "int_quantize(int4,granularity=group,group=32)", "bfp_quantize(int8_sym)", "llmint8_matmul(binary16)",
    # integer-only operators
    "requantize(variant=tflite_double_rounding)", "requantize(variant=tflite_single_rounding)",
    "requantize(variant=cmsis_single_rounding)", "requantize(variant=hawq_sim)", "requantize(variant=hawq_deployed)",
    "gemmlowp_exp(integer_bits=5)", "gemmlowp_logistic(integer_bits=4)", "gemmlowp_tanh(integer_bits=4)",
    "gemmlowp_one_over_one_plus_x()", "gemmlowp_one_minus_x_over_one_plus_x()",
    "tflite_softmax(multiplier=1073741824,left_shift=23,diff_min=-248)",
    "int_dot(int8->int32)", "int_dot(int8->int16,overflow=saturate)",
    "ivit_shift_exp(scale=0.05)", "ivit_shift_exp(variant=ivit_tvm,scale=0.05)", "ivit_sqrt()",
    "ivit_sqrt(variant=ivit_tvm)", "ivit_layernorm()", "ivit_layernorm(variant=ivit_tvm)",
    "shiftmax(scale=0.05)", "shiftmax(variant=ivit_tvm,scale=0.05)", "shiftgelu(scale=0.05)",
    "shiftgelu(variant=ivit_tvm,scale=0.05)",
    "ibert_exp(scale=0.01)", "ibert_erf(scale=0.01)", "ibert_gelu(scale=0.01)", "ibert_sqrt()",
    "ibert_softmax(scale=0.01)", "ibert_layernorm()",
    # floating dot products
    "fdot(ocp_e4m3->binary32)", "fdot(bfloat16->binary32,order=pairwise)", "fdot(ocp_e4m3->ocp_e4m3)",
    # GEMMs (2x16 by 16x2)
    "scaled_mm(ocp_e4m3->binary32)", "scaled_mm(ocp_e4m3->bfloat16,accum=deepseek_v3)",
    "scaled_mm(binary16->binary16,accum=sequential)",
)


def committed_specs() -> list[Spec]:
    """The committed set (see golden_vectors/README in the report): about 20 MB budget, a few minutes to build."""
    small = [f.name for f in float_formats(8)] + ["int8", "uint8", "int4"]
    # 16-bit sources: every non-P3109 target plus two P3109 formats at the standard's default projection (the
    # former defaults of four are in P3109_GOLDEN_SPECS; keeps the set small); binary32 sources (boundary +
    # random) cover every <= 8-bit target.
    p3109_kept = {"binary8p3sf", "binary8p4ue"}
    ids: list[str] = []
    for src in ("binary16", "bfloat16", "binary32"):
        for dst in small:
            if src != "binary32" and dst.startswith("binary8p") and dst not in p3109_kept:
                continue
            ids.append(f"cast({src}->{dst})")
        for dst in ("ocp_e4m3", "ocp_e5m2"):
            ids.append(f"cast({src}->{dst},overflow=saturate)")
        for dst in ("ocp_e2m1", "ocp_e3m2", "ocp_e2m3"):
            ids.append(f"cast({src}->{dst},nan=max)")
    for dst in ("ocp_e4m3", "ocp_e2m1", "e8m0"):
        for r in ("rna", "rtz", "rup", "rdn", "rto"):
            ids.append(f"cast(binary32->{dst},rounding={r})")
    for f in ("ocp_e4m3", "ocp_e5m2"):
        for op in ("add", "sub", "mul", "div"):
            ids.append(f"{op}({f})")
    for f in ("ocp_e2m1", "ocp_e3m2", "ocp_e2m3"):
        for op in ("add", "mul"):
            ids.append(f"{op}({f})")
    if "lmul" in ops():
        for v in ("bitwise", "formula"):
            ids.append(f"lmul(ocp_e4m3,variant={v})")
    ids += [s for s in _OTHER_OPS if s.split("(", 1)[0] in ops()]
    ids += list(SR_GOLDEN_SPECS)  # stochastic rounding: the random integers are the last input column
    ids += list(P3109_GOLDEN_SPECS)  # P3109: the standard's projection modes and the former defaults
    ids += list(GEMM_GOLDEN_SPECS) + list(GEMM_MODEL_GOLDEN_SPECS)  # scaled GEMMs (scale codes after A, B); models
    from refarith.golden.opdrivers.recipes import RECIPE_GOLDEN_SPECS

    ids += list(RECIPE_GOLDEN_SPECS)  # quantization recipes: Hadamard rotations, per-tensor and blockwise FP8
    from refarith.golden.opdrivers.blocksr import BLOCK_SR_GOLDEN_SPECS

    ids += list(BLOCK_SR_GOLDEN_SPECS)  # stochastic MX/NVFP4 elements: one random integer per element after x
    from refarith.golden.opdrivers.floatdot import FDOT_SR_GOLDEN_SPECS

    ids += list(FDOT_SR_GOLDEN_SPECS)  # stochastic dot-product accumulators: one random integer per addition
    from refarith.golden.opdrivers.fma import FMA_GOLDEN_SPECS, FMA_SR_GOLDEN_SPECS

    ids += list(FMA_GOLDEN_SPECS)  # fused multiply-add a * b + c of the OCP fp8 formats (boundary + random triples)
    ids += list(FMA_SR_GOLDEN_SPECS)  # stochastic fma: one random integer per a * b + c after c
    from refarith.golden.opdrivers.mxfake import MX_FAKE_GOLDEN_SPECS

    ids += list(MX_FAKE_GOLDEN_SPECS)  # MX fake quantization: binary32 X * P_i of MXFP4 blocks of 4
    from refarith.exact.hifloat import HIFLOAT8_GOLDEN_SPECS

    ids += list(HIFLOAT8_GOLDEN_SPECS)  # HiFloat8 casts under the paper's ties-away rounding
    from refarith.golden.opdrivers.hif4 import HIF4_GOLDEN_SPECS

    ids += list(HIF4_GOLDEN_SPECS)  # HiFloat4 units of 64: codes and dequantized values, the reference ties
    from refarith.golden.opdrivers.nvfp4_recipe import NVFP4_RECIPE_GOLDEN_SPECS

    ids += list(NVFP4_RECIPE_GOLDEN_SPECS)  # the NVFP4 training recipe: one file per operand role
    out = []
    for s in ids:
        sp = parse_spec(s)
        if sp not in out:
            out.append(sp)
    return out


@dataclass
class Built:
    spec: Spec
    name: str
    rule: str
    count: int
    data: bytes


def vectors(spec: Spec | str) -> tuple[str, list[tuple[int, ...]], list[tuple[int, ...] | None]]:
    """(rule, input vectors, exact output vectors) of a spec's golden file; ``None`` output = the spec raises."""
    spec = parse_spec(spec)
    d = get_driver(spec)
    if d.exhaustive_ok(spec):
        rule = "exhaustive"
        ins = d.all_inputs(spec)
    else:
        seed = spec_seed(spec)
        n = d.golden_random_count(spec, RANDOM_COUNT)
        rule = f"boundary+random(n={n},seed={seed})"
        ins = d.boundary(spec) + d.random_inputs(spec, n, seed)
    outs = [d.exact(spec, v) for v in ins]
    return rule, ins, outs


def build(spec: Spec | str) -> Built:
    """The compressed bytes of one spec's golden file (deterministic)."""
    spec = parse_spec(spec)
    d = get_driver(spec)
    rule, ins, outs = vectors(spec)
    text = ff.render(spec, rule, describe(d.inputs(spec)), describe(d.outputs(spec)), d.input_formats(spec),
                     d.output_formats(spec), ins, outs)
    return Built(spec, file_name(spec), rule, len(ins), ff.compress(text))


def _build_id(s: str) -> Built:
    return build(s)


def _select(specs: list[Spec], only: str | None) -> list[Spec]:
    if not only:
        return specs
    return [s for s in specs if fnmatch.fnmatchcase(str(s), only) or fnmatch.fnmatchcase(file_name(s), only)
            or only in str(s)]


def check_jobs(jobs: int | None, what: str = "--jobs") -> int:
    """``jobs`` (None: all cores); BadValueError when it is zero or negative."""
    if jobs is None:
        return os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise BadValueError(f"{what} must be a positive number of processes, got {jobs!r}")
    return jobs


def _map(specs: list[Spec], jobs: int | None, label: str, progress: bool | None):
    jobs = check_jobs(jobs)
    with Progress(len(specs), label, enabled=progress) as bar:
        if jobs <= 1 or len(specs) <= 1:
            for s in specs:
                b = build(s)
                bar.update()
                yield b
            return
        # the exact model only (no torch threads): fork is safe; a worker that dies breaks the pool (an error)
        from refarith.interrupts import worker_init  # workers ignore Ctrl-C: this process stops them

        ex = ProcessPoolExecutor(min(jobs, len(specs)), mp_context=mp.get_context("fork"), initializer=worker_init)
        try:
            for b in ex.map(_build_id, [str(s) for s in specs]):
                bar.update()
                yield b
        except BrokenProcessPool:
            raise GoldenFileError(f"{label}: a worker process died (killed or out of memory); nothing "
                                  "written") from None
        except BaseException:  # Ctrl-C or an error here: no worker outlives it
            for proc in list(getattr(ex, "_processes", {}).values()):
                if proc.is_alive():
                    proc.kill()
            ex.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            ex.shutdown(wait=True, cancel_futures=True)


def read_manifest(directory: str | Path, data: bytes | None = None) -> dict:
    """The parsed MANIFEST of ``directory`` (or of its bytes ``data``); GoldenFileError when the directory is
    missing or not a directory, or the MANIFEST is absent, unreadable or malformed."""
    d = Path(directory)
    p = d / MANIFEST
    if data is None:
        if not d.exists():
            raise GoldenFileError(f"golden vector directory {d} does not exist")
        if not d.is_dir():
            raise GoldenFileError(f"golden vector directory {d} is not a directory")
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise GoldenFileError(f"{p}: no MANIFEST in this directory") from None
        except OSError as e:
            raise GoldenFileError(f"{p}: cannot read the MANIFEST ({e.strerror})") from None
    try:
        m = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GoldenFileError(f"{p}: malformed MANIFEST ({e})") from None
    if not isinstance(m, dict) or not isinstance(m.get("files"), dict):
        raise GoldenFileError(f"{p}: malformed MANIFEST (no 'files' object)")
    for name, e in m["files"].items():
        if not isinstance(e, dict) or not {"spec", "sha256", "count"} <= set(e):
            raise GoldenFileError(f"{p}: malformed MANIFEST entry for {name!r}")
        if not isinstance(e["sha256"], str) or not isinstance(e["spec"], str) or "/" in name or name != \
                os.path.basename(name):
            raise GoldenFileError(f"{p}: malformed MANIFEST entry for {name!r}")
    return m


def open_manifest(directory: str | Path | None = None) -> tuple[Path, dict]:
    """(directory, MANIFEST) of a golden directory that is usable, checked against the pinned digest when it is
    the committed one.  ``directory`` None: the committed set (GoldenFileError when this installation lacks it).
    A directory given explicitly must exist and hold a valid MANIFEST (GoldenFileError otherwise: never a silent
    fallback)."""
    if directory is None:
        directory = default_dir()
        if not (directory / MANIFEST).is_file():
            raise GoldenFileError(f"the committed golden vectors are missing from this installation ({directory} "
                                  "has no MANIFEST): install refarith from its wheel or a source checkout")
    d = Path(directory)
    m = read_manifest(d)
    check_pinned(d, (d / MANIFEST).read_bytes())
    return d, m


def _manifest_bytes(files: dict) -> bytes:
    m = {"generator": ff.GENERATOR_VERSION, "format": "refarith golden vectors, gzip text, see refarith.golden",
         "files": {k: files[k] for k in sorted(files)}}
    return (json.dumps(m, indent=1, sort_keys=True) + "\n").encode()


def generate(out: str | Path | None = None, only: str | None = None, jobs: int | None = None,
             progress: bool | None = None, specs: list[Spec] | None = None) -> dict:
    """Write the golden files and update the MANIFEST, all or nothing (every file is staged in a temporary first;
    a failure leaves the directory as it was); returns the manifest's ``files``.  Writing the committed set also
    rewrites the pinned digest (:data:`PIN_MODULE`).  BadValueError when ``only`` selects nothing."""
    out = Path(out) if out else default_out()
    _refuse_package_data(out)
    check_jobs(jobs)
    pool = specs if specs is not None else committed_specs()
    chosen = _select(pool, only)
    if not chosen:
        raise BadValueError(f"--only {only!r} selects none of the {len(pool)} specs; nothing generated")
    if out.exists() and not out.is_dir():
        raise BadValueError(f"output {out} is not a directory")
    files: dict = {}
    if (out / MANIFEST).exists():
        files = dict(read_manifest(out)["files"])
    staged: list[tuple[Path, Path]] = []
    try:
        for b in _map(chosen, jobs, "golden generate", progress):
            staged.append((ff.stage_file(out / b.name, b.data), out / b.name))
            files[b.name] = {"spec": str(b.spec), "rule": b.rule, "count": b.count, "sha256": ff.sha256(b.data),
                             "bytes": len(b.data)}
        man = _manifest_bytes(files)
        staged.append((ff.stage_file(out / MANIFEST, man), out / MANIFEST))
        if is_committed_dir(out):
            staged.append((ff.stage_file(PIN_MODULE, pin_text(ff.sha256(man))), PIN_MODULE))
    except BaseException:
        ff.discard([t for t, _ in staged])
        raise
    ff.commit_files(staged)
    if is_committed_dir(out):
        from refarith.golden import pinned

        pinned.MANIFEST_SHA256 = ff.sha256(man)
    return files


@dataclass
class Problem:
    """One verification finding: ``kind`` 'mismatch' (exit 1) or 'malformed' (exit 2)."""

    kind: str
    message: str


def verify(directory: str | Path | None = None, only: str | None = None, regenerate: bool = True,
           jobs: int | None = None, progress: bool | None = None) -> list[Problem]:
    """Check MANIFEST, hashes, headers, every line, and (``regenerate``) byte-identical regeneration."""
    directory = Path(directory) if directory else default_dir()
    check_jobs(jobs)
    problems: list[Problem] = []
    try:
        man = read_manifest(directory)
    except GoldenFileError as e:
        return [Problem("malformed", str(e))]
    entries = man["files"]
    names = [n for n in sorted(entries) if not only or fnmatch.fnmatchcase(n, only)
             or fnmatch.fnmatchcase(entries[n]["spec"], only) or only in entries[n]["spec"]]
    if not names:
        raise BadValueError(f"--only {only!r} selects none of the {len(entries)} files in {directory / MANIFEST}"
                            if only else f"{directory / MANIFEST} lists no files: nothing to verify")
    data = (directory / MANIFEST).read_bytes()
    try:
        check_pinned(directory, data)
    except GoldenFileError as e:
        problems.append(Problem("mismatch", str(e)))
    if data != _manifest_bytes(entries):
        problems.append(Problem("mismatch", f"{directory / MANIFEST}: not the generator's rendering of its own "
                                            "entries (edited by hand?)"))
    if is_committed_dir(directory) and (not PIN_MODULE.exists() or PIN_MODULE.read_bytes() !=
                                        pin_text(ff.sha256(data))):
        problems.append(Problem("mismatch", f"{PIN_MODULE}: not the generator's pin of {directory / MANIFEST}"))
    if not only:
        for p in sorted(directory.glob("*.txt.gz")):
            if p.name not in entries:
                problems.append(Problem("mismatch", f"{p}: file not listed in {MANIFEST}"))
    to_regen: list[tuple[str, Spec, bytes]] = []
    for name in names:
        e = entries[name]
        path = directory / name
        if not path.exists():
            problems.append(Problem("mismatch", f"{path}: listed in {MANIFEST} but missing"))
            continue
        data = path.read_bytes()
        hash_ok = ff.sha256(data) == e["sha256"]
        if not hash_ok:
            problems.append(Problem("mismatch", f"{path}: SHA-256 differs from {MANIFEST}"))
        try:
            text = ff.decompress(path, data)
            g = ff.parse(path, text)
        except GoldenFileError as err:
            problems.append(Problem("malformed", str(err)))
            continue
        if str(g.spec) != e["spec"] or g.count != e["count"] or name != file_name(g.spec):
            problems.append(Problem("mismatch", f"{path}: header (spec {g.spec}, count {g.count}) does not match "
                                                f"{MANIFEST} (spec {e['spec']}, count {e['count']})"))
            continue
        if regenerate or not hash_ok:
            to_regen.append((name, g.spec, data))
    if to_regen:
        # the files with the most vectors first, so that no long one starts last while the other workers idle
        longest_first = sorted(to_regen, key=lambda t: -entries[t[0]]["count"])
        built = {b.name: b for b in _map([s for _, s, _ in longest_first], jobs, "golden verify", progress)}
        for name, _spec, data in to_regen:
            b = built[name]
            if b.data != data:
                problems.append(Problem("mismatch", _first_difference(directory / name, data, b.data)))
    return problems


def _first_difference(path: Path, have: bytes, want: bytes) -> str:
    a = ff.decompress(path, have).split("\n")
    b = ff.decompress(path, want).split("\n")
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"{path}:{i + 1}: regeneration differs: file has {x!r}, the exact model gives {y!r}"
    if len(a) != len(b):
        return f"{path}:{min(len(a), len(b)) + 1}: regeneration differs in length ({len(a)} vs {len(b)} lines)"
    return f"{path}: regeneration differs only in gzip framing (same text)"


def find_file(spec: Spec | str, directory: str | Path | None = None) -> tuple[Path, str] | None:
    """(path, manifest SHA-256) of the golden file of ``spec`` in ``directory`` (default: the committed set), or
    None when its MANIFEST has none.  GoldenFileError for a directory that is not usable, or when the
    committed set is missing from the installation (see :func:`open_manifest`)."""
    spec = parse_spec(spec)
    d, man = open_manifest(directory)
    name = file_name(spec)
    e = man["files"].get(name)
    if e is None:
        return None
    if e["spec"] != str(spec):
        raise GoldenFileError(f"{d / MANIFEST}: entry {name} names spec {e['spec']}, not {spec}")
    return d / name, e["sha256"]


__all__ = ["MANIFEST", "PIN_MODULE", "RANDOM_COUNT", "SOURCE_DIR", "Problem", "build", "check_jobs", "check_pinned",
           "committed_specs", "default_dir", "default_out", "file_name", "find_file", "generate", "is_committed_dir",
           "open_manifest", "packaged_dir", "pin_text", "pinned_digest", "read_manifest", "verify", "vectors"]
