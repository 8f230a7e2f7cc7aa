"""The golden vector file format: language-neutral text, gzip with fixed metadata.

A file is gzip (mtime 0, no file name, level 9) of UTF-8 text::

    # refarith golden vectors
    # spec: cast(binary16->ocp_e4m3,rounding=rne,overflow=nan)
    # generator: 1
    # rule: exhaustive
    # inputs: binary16
    # output: ocp_e4m3
    # count: 65536
    # format: one vector per line: input codes then the output code, lower-case hex, fixed width
    # format: '!' as output: the spec raises (input outside its domain)
    0000 00
    ...

Each input column has ceil(nbits/4) hex digits of its format, the output
likewise.  The header ends at the first line that does not start with ``#``.
Readers validate every line; nothing is trusted before the header and (when a
manifest is given) the SHA-256 match.
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

from refarith.errors import GoldenFileError, RefarithError
from refarith.spec import Spec, parse_spec

GENERATOR_VERSION = "1"
MAGIC = "# refarith golden vectors"
RAISES = "!"
_HEADER_KEYS = ("spec", "generator", "rule", "inputs", "output", "count")


def hexwidth(nbits: int) -> int:
    return (nbits + 3) // 4


@dataclass
class GoldenFile:
    """A parsed golden file: its header and the vectors as integer arrays (-1 in ``outputs`` = the spec raises)."""

    path: str
    spec: Spec
    header: dict[str, str]
    inputs: list[np.ndarray]
    outputs: np.ndarray

    @property
    def count(self) -> int:
        return int(self.outputs.shape[0])


def render(spec: Spec, rule: str, input_fmts: tuple, output_fmt, inputs: list[tuple[int, ...]],
           outputs: list[int | None]) -> bytes:
    """The uncompressed text of a golden file."""
    iw = [hexwidth(f.nbits) for f in input_fmts]
    ow = hexwidth(output_fmt.nbits)
    lines = [MAGIC, f"# spec: {spec}", f"# generator: {GENERATOR_VERSION}", f"# rule: {rule}",
             f"# inputs: {' '.join(f.name for f in input_fmts)}", f"# output: {output_fmt.name}",
             f"# count: {len(inputs)}",
             "# format: one vector per line: input codes then the output code, lower-case hex, fixed width",
             f"# format: '{RAISES}' as output: the spec raises (input outside its domain)"]
    for ins, out in zip(inputs, outputs):
        cols = [format(c, f"0{w}x") for c, w in zip(ins, iw)]
        cols.append(RAISES if out is None else format(out, f"0{ow}x"))
        lines.append(" ".join(cols))
    return ("\n".join(lines) + "\n").encode("ascii")


def compress(text: bytes) -> bytes:
    """gzip with fixed metadata (mtime 0, empty file name, level 9): identical input, identical bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as g:
        g.write(text)
    return buf.getvalue()


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file in the same directory, then os.replace it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
    from refarith.golden.drivers import get_driver

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
    in_fmts = driver.input_formats(spec)
    out_fmt = driver.output_format(spec)
    if header["inputs"] != " ".join(f.name for f in in_fmts) or header["output"] != out_fmt.name:
        raise GoldenFileError(f"{path}: header formats do not match the spec {spec}")
    try:
        count = int(header["count"])
    except ValueError:
        raise GoldenFileError(f"{path}: count {header['count']!r} is not an integer") from None
    body = lines[i:]
    if len(body) != count:
        raise GoldenFileError(f"{path}: header says {count} vectors, file has {len(body)} (truncated or padded)")
    widths = [hexwidth(f.nbits) for f in in_fmts]
    ow = hexwidth(out_fmt.nbits)
    pat = re.compile("^" + " ".join(f"([0-9a-f]{{{w}}})" for w in widths) + f" ([0-9a-f]{{{ow}}}|!)$")
    n_in = len(in_fmts)
    ins = [np.empty(count, dtype=np.int64) for _ in range(n_in)]
    outs = np.empty(count, dtype=np.int64)
    for j, line in enumerate(body):
        m = pat.match(line)
        if not m:
            raise GoldenFileError(f"{path}:{i + j + 1}: malformed vector line {line!r}")
        g = m.groups()
        for k in range(n_in):
            c = int(g[k], 16)
            if c >= in_fmts[k].ncodes:
                raise GoldenFileError(f"{path}:{i + j + 1}: input code {g[k]} does not fit {in_fmts[k].name}")
            ins[k][j] = c
        if g[-1] == RAISES:
            outs[j] = -1
        else:
            c = int(g[-1], 16)
            if c >= out_fmt.ncodes:
                raise GoldenFileError(f"{path}:{i + j + 1}: output code {g[-1]} does not fit {out_fmt.name}")
            outs[j] = c
    return GoldenFile(str(path), spec, header, ins, outs)


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
