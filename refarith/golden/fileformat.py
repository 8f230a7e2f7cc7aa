"""The golden vector file format: language-neutral text, gzip with fixed metadata.

A file is gzip (mtime 0, no file name, level 9) of ASCII text::

    # refarith golden vectors
    # spec: mx_quantize(ocp_e2m1,block=4,scale=floor,rounding=rne)
    # generator: 2
    # rule: boundary+random(n=1024,seed=123)
    # inputs: x:binary32*4
    # outputs: scale:e8m0 elements:ocp_e2m1*4
    # count: 2000
    # format: one vector per line: the input columns, ':', the output columns; lower-case hex, fixed width
    # format: '!' in place of the output columns: the spec raises (input outside its domain)
    3f800000 00000000 bf000000 40c00000 : 7f 1 0 9 6
    ...

``inputs``/``outputs`` name the operands of the op's driver (:mod:`refarith.golden.drivers`) as
``name:format`` or ``name:format*width`` (width columns, e.g. a block or a flattened row-major matrix).  Each
column has ceil(nbits/4) hex digits of its format.  The header ends at the first line that does not start with
``#``.  Readers validate every line; nothing is trusted before the header and (when a manifest is given) the
SHA-256 match.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refarith.errors import GoldenFileError, OutputError, RefarithError
from refarith.spec import Spec, parse_spec

GENERATOR_VERSION = "2"
MAGIC = "# refarith golden vectors"
RAISES = "!"
SEP = ":"
_HEADER_KEYS = ("spec", "generator", "rule", "inputs", "outputs", "count")


def hexwidth(nbits: int) -> int:
    return (nbits + 3) // 4


@dataclass
class GoldenFile:
    """A parsed golden file: its header, the input columns (uint64 codes), the outputs as an (n, columns) uint64
    array, and ``raises`` (True where the spec raises; those output rows are 0)."""

    path: str
    spec: Spec
    header: dict[str, str]
    inputs: list[np.ndarray]
    outputs: np.ndarray
    raises: np.ndarray
    first_line: int = 0
    """Line number (1-based) of the first vector: vector ``i`` is on line ``first_line + i``."""

    @property
    def count(self) -> int:
        return int(self.outputs.shape[0])


def render(spec: Spec, rule: str, inputs_desc: str, outputs_desc: str, input_fmts: tuple, output_fmts: tuple,
           inputs: list[tuple[int, ...]], outputs: list[tuple[int, ...] | None]) -> bytes:
    """The uncompressed text of a golden file."""
    iw = [f"0{hexwidth(f.nbits)}x" for f in input_fmts]
    ow = [f"0{hexwidth(f.nbits)}x" for f in output_fmts]
    lines = [MAGIC, f"# spec: {spec}", f"# generator: {GENERATOR_VERSION}", f"# rule: {rule}",
             f"# inputs: {inputs_desc}", f"# outputs: {outputs_desc}", f"# count: {len(inputs)}",
             "# format: one vector per line: the input columns, ':', the output columns; lower-case hex, "
             "fixed width",
             f"# format: '{RAISES}' in place of the output columns: the spec raises (input outside its domain)"]
    for ins, out in zip(inputs, outputs):
        left = " ".join(format(c, w) for c, w in zip(ins, iw))
        right = RAISES if out is None else " ".join(format(c, w) for c, w in zip(out, ow))
        lines.append(f"{left} {SEP} {right}")
    return ("\n".join(lines) + "\n").encode("ascii")


def compress(text: bytes) -> bytes:
    """gzip with fixed metadata (mtime 0, empty file name, level 9): identical input, identical bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as g:
        g.write(text)
    return buf.getvalue()


def _cannot_write(path: Path, e: OSError) -> OutputError:
    return OutputError(f"{path}: cannot write ({e.strerror or type(e).__name__}); nothing written")


def stage_file(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a new temporary file next to ``path`` (flushed to disk) and return the temporary's path;
    :func:`commit_files` moves it into place.  OutputError (nothing left behind) when it cannot be written."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        return Path(tmp)
    except OSError as e:
        discard([tmp])
        raise _cannot_write(path, e) from None
    except BaseException:
        discard([tmp])
        raise


def discard(tmps) -> None:
    """Remove temporary files of :func:`stage_file` (those that exist)."""
    for t in tmps:
        if t is not None and os.path.exists(t):
            os.unlink(t)


def commit_files(pairs: list[tuple[Path, Path]]) -> None:
    """os.replace every (temporary, final path) pair, in order; on failure the remaining temporaries are removed."""
    for i, (tmp, final) in enumerate(pairs):
        try:
            os.replace(tmp, final)
        except OSError as e:
            discard([t for t, _ in pairs[i:]])
            raise _cannot_write(Path(final), e) from None


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file in the same directory, then os.replace it into place: the file is either
    its old self or complete.  OutputError (one line, nothing partial left) when the directory is missing and
    cannot be made, read-only or full."""
    path = Path(path)
    commit_files([(stage_file(path, data), path)])


def write_all_atomic(files: list[tuple[str | Path, bytes]]) -> None:
    """Write several files all or nothing: every one is staged first; if any cannot be written, none is replaced."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            staged.append((stage_file(path, data), Path(path)))
    except BaseException:
        discard([t for t, _ in staged])
        raise
    commit_files(staged)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decompress(path: str | Path, data: bytes) -> str:
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise GoldenFileError(f"{path}: not a valid gzip file ({e})") from None
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise GoldenFileError(f"{path}: contains non-ASCII bytes") from None


def parse(path: str | Path, text: str) -> GoldenFile:
    """Validate and parse the text of a golden file; GoldenFileError names the file and line of any defect."""
    from refarith.golden.drivers import describe, get_driver

    lines = text.split("\n")
    if not lines or lines[0] != MAGIC:
        raise GoldenFileError(f"{path}:1: missing header line {MAGIC!r}")
    if lines[-1] != "":
        raise GoldenFileError(f"{path}:{len(lines)}: truncated (no final newline)")
    lines.pop()
    header: dict[str, str] = {}
    i = 1
    while i < len(lines) and lines[i].startswith("#"):
        m = re.match(r"^# ([a-z]+): (.*)$", lines[i])
        if not m:
            raise GoldenFileError(f"{path}:{i + 1}: malformed header line {lines[i]!r}")
        if m.group(1) != "format":
            header[m.group(1)] = m.group(2)
        i += 1
    for k in _HEADER_KEYS:
        if k not in header:
            raise GoldenFileError(f"{path}: header lacks '# {k}:'")
    if header["generator"] != GENERATOR_VERSION:
        raise GoldenFileError(f"{path}: generator version {header['generator']!r}, this reader knows "
                              f"{GENERATOR_VERSION!r}")
    try:
        spec = parse_spec(header["spec"])
        driver = get_driver(spec)
    except RefarithError as e:
        raise GoldenFileError(f"{path}: header names a spec refarith cannot use: {e}") from None
    if str(spec) != header["spec"]:
        raise GoldenFileError(f"{path}: header spec {header['spec']!r} is not canonical (expected {spec})")
    if header["inputs"] != describe(driver.inputs(spec)) or header["outputs"] != describe(driver.outputs(spec)):
        raise GoldenFileError(f"{path}: header operands do not match the spec {spec} (expected inputs "
                              f"{describe(driver.inputs(spec))!r}, outputs {describe(driver.outputs(spec))!r})")
    in_fmts = driver.input_formats(spec)
    out_fmts = driver.output_formats(spec)
    try:
        count = int(header["count"])
    except ValueError:
        raise GoldenFileError(f"{path}: count {header['count']!r} is not an integer") from None
    body = lines[i:]
    if len(body) != count:
        raise GoldenFileError(f"{path}: header says {count} vectors, file has {len(body)} (truncated or padded)")
    n_in, n_out = len(in_fmts), len(out_fmts)
    widths = [hexwidth(f.nbits) for f in in_fmts] + [0] + [hexwidth(f.nbits) for f in out_fmts]
    limits = [f.ncodes for f in in_fmts] + [0] + [f.ncodes for f in out_fmts]
    names = [f.name for f in in_fmts] + [""] + [f.name for f in out_fmts]
    fast = _parse_body(body, widths[:n_in], widths[n_in + 1:], limits[:n_in], limits[n_in + 1:])
    if fast is not None:
        ins, outs, raised = fast
        return GoldenFile(str(path), spec, header, [ins[:, k].copy() for k in range(n_in)], outs, raised, i + 1)
    hexchars = set("0123456789abcdef")  # a defect somewhere: find and name the first one, line by line
    ins = np.empty((count, n_in), dtype=np.uint64)
    outs = np.zeros((count, n_out), dtype=np.uint64)
    raised = np.zeros(count, dtype=bool)
    for j, line in enumerate(body):
        lineno = i + j + 1
        tok = line.split(" ")
        raises = len(tok) == n_in + 2 and tok[-1] == RAISES
        if len(tok) != (n_in + 2 if raises else n_in + 1 + n_out) or tok[n_in] != SEP:
            raise GoldenFileError(f"{path}:{lineno}: malformed vector line {line[:80]!r}: expected {n_in} input "
                                  f"columns, '{SEP}', {n_out} output columns")
        for k, t in enumerate(tok):
            if k == n_in or (raises and k == n_in + 1):
                continue
            if len(t) != widths[k] or not set(t) <= hexchars:
                which = f"input column {k + 1}" if k < n_in else f"output column {k - n_in}"
                raise GoldenFileError(f"{path}:{lineno}: malformed vector line: {which} is {t!r} (expected "
                                      f"{widths[k]} lower-case hex digits of {names[k]})")
            c = int(t, 16)
            if c >= limits[k]:
                raise GoldenFileError(f"{path}:{lineno}: code {t} does not fit {names[k]}")
            if k < n_in:
                ins[j, k] = c
            else:
                outs[j, k - n_in - 1] = c
        raised[j] = raises
    return GoldenFile(str(path), spec, header, [ins[:, k].copy() for k in range(n_in)], outs, raised, i + 1)


_HEX_DIGIT = np.full(256, 255, dtype=np.uint64)
_HEX_DIGIT[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint64)


def _parse_body(body: list[str], w_in: list[int], w_out: list[int], lim_in: list[int],
                lim_out: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The vector lines parsed at once: (inputs (n, columns), outputs (n, columns), raises), all uint64/bool; None
    when any line is not exactly ``hex{w} ... : hex{w} ...`` or ``hex{w} ... : !`` with every code below its
    format's code count (then :func:`parse` goes line by line and names the first defect)."""
    if not w_in or not w_out:
        return None
    n = len(body)
    ins = np.zeros((n, len(w_in)), dtype=np.uint64)
    outs = np.zeros((n, len(w_out)), dtype=np.uint64)
    if n == 0:
        return ins, outs, np.zeros(0, dtype=bool)
    head = " ".join(f"[0-9a-f]{{{w}}}" for w in w_in)
    tail = " ".join(f"[0-9a-f]{{{w}}}" for w in w_out)
    text = "\n".join(body) + "\n"
    if re.fullmatch(f"(?:{head} {re.escape(SEP)} (?:{tail}|{re.escape(RAISES)})\n)*", text) is None:
        return None
    buf = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    starts = np.concatenate(([0], np.flatnonzero(buf == ord("\n"))[:-1] + 1))
    out_at = sum(w_in) + len(w_in) + len(SEP) + 1  # offset of the first output column in a line
    raised = buf[starts + out_at] == ord(RAISES)

    def column(rows: np.ndarray, at: int, w: int) -> np.ndarray:
        v = np.zeros(len(rows), dtype=np.uint64)
        for d in range(w):
            v = (v << np.uint64(4)) | _HEX_DIGIT[buf[rows + at + d]]
        return v

    at = 0
    for k, w in enumerate(w_in):
        ins[:, k] = column(starts, at, w)
        at += w + 1
    ok = starts[~raised]
    at = out_at
    for k, w in enumerate(w_out):
        outs[~raised, k] = column(ok, at, w)
        at += w + 1
    for a, lims in ((ins, lim_in), (outs, lim_out)):
        for k, lim in enumerate(lims):
            if lim < 1 << 64 and bool((a[:, k] >= np.uint64(lim)).any()):
                return None
    return ins, outs, raised


def header_lines(text: str) -> int:
    """Number of header lines (to turn a vector index into a file line number)."""
    n = 0
    for line in text.split("\n"):
        if not line.startswith("#"):
            break
        n += 1
    return n


def load(path: str | Path, expected_sha256: str | None = None) -> GoldenFile:
    """Read a golden file, check its hash (when given) before parsing it, and validate every line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise GoldenFileError(f"{path}: cannot read ({e.strerror})") from None
    if expected_sha256 is not None and sha256(data) != expected_sha256:
        raise GoldenFileError(f"{path}: SHA-256 does not match the manifest")
    return parse(path, decompress(path, data))
