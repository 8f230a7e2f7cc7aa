"""Up-front checks of output paths, so that a command refuses a path it cannot write before doing any work.

Writability is tested by creating (and removing at once) a temporary entry where the output will go, not by
``os.access``, which says yes to the superuser on a read-only mount and knows nothing about full disks.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from refarith.errors import OutputError


def _probe(directory: Path, shown: str) -> None:
    """OutputError unless a temporary directory can be created in ``directory`` (removed at once)."""
    try:
        tmp = tempfile.mkdtemp(prefix=".refarith-probe-", dir=directory)
    except OSError as e:
        raise OutputError(f"{shown}: cannot write in {directory} ({e.strerror or type(e).__name__})") from None
    os.rmdir(tmp)


def _existing_ancestor(p: Path) -> Path:
    q = p
    while not q.exists() and q != q.parent:
        q = q.parent
    return q


def check_output_dir(path: str | os.PathLike, what: str = "output directory") -> Path:
    """``path`` as a Path if it is a writable directory, or can be created as one (missing parents included);
    OutputError naming the path and why otherwise (a file there or above it, or a directory that cannot be
    written).  Nothing is created."""
    p = Path(path)
    shown = f"{what} {str(path)!r}"
    if str(path) == "":
        raise OutputError(f"{what}: empty path")
    if p.exists():
        if not p.is_dir():
            raise OutputError(f"{shown} is a file, not a directory")
        _probe(p, shown)
        return p
    anc = _existing_ancestor(p.absolute())
    if not anc.is_dir():
        raise OutputError(f"{shown}: {anc} is a file, not a directory")
    _probe(anc, shown)
    return p


def check_output_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """``path`` as a Path if a file can be written there: its directory exists and is writable, and ``path`` is
    not a directory; OutputError naming the path and why otherwise.  Nothing is created."""
    p = Path(path)
    shown = f"{what} {str(path)!r}"
    if str(path) == "":
        raise OutputError(f"{what}: empty path")
    if str(path).endswith(("/", os.sep)) or p.is_dir():
        raise OutputError(f"{shown} is a directory, not a file")
    parent = p.absolute().parent
    if not parent.exists():
        anc = _existing_ancestor(parent)
        why = f"{anc} is a file, not a directory" if not anc.is_dir() else f"directory {parent} does not exist"
        raise OutputError(f"{shown}: {why}")
    if not parent.is_dir():
        raise OutputError(f"{shown}: {parent} is a file, not a directory")
    _probe(parent, shown)
    return p


__all__ = ["check_output_dir", "check_output_file"]
