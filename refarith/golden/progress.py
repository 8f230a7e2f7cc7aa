"""Progress of long work on stderr: a tqdm bar on a terminal, a plain line every few seconds otherwise.

When stderr is not a terminal (a CI log, a pipe) a line ``label: done/total (pct%), rate/s, elapsed, ETA`` is
written every ``REFARITH_PROGRESS_INTERVAL`` seconds (default 10) from a background timer, so that a long item
still shows the work is alive, and a last ``... done`` line when at least one line was written.  ``--quiet``
(:func:`set_quiet`) or ``enabled=False`` silences both.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from refarith.errors import BadValueError

DEFAULT_INTERVAL = 10.0
"""Seconds between two plain progress lines when stderr is not a terminal."""

_STATE = {"quiet": False}


def set_quiet(quiet: bool) -> None:
    """Silence (True) or allow (False) every progress display of this process."""
    _STATE["quiet"] = bool(quiet)


def is_quiet() -> bool:
    """Whether progress displays are silenced (``--quiet``)."""
    return _STATE["quiet"]


def interval_seconds() -> float:
    """Seconds between plain progress lines: ``REFARITH_PROGRESS_INTERVAL`` (a positive number) or 10."""
    raw = os.environ.get("REFARITH_PROGRESS_INTERVAL", "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        v = float(raw)
    except ValueError:
        v = -1.0
    if not v > 0 or v == float("inf"):
        raise BadValueError(f"REFARITH_PROGRESS_INTERVAL must be a positive number of seconds, got {raw!r}")
    return v


def _secs(s: float) -> str:
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """``with Progress(total, label) as p: p.update(n)``: progress of ``total`` items on ``stream`` (stderr).

    ``enabled`` None: shown unless :func:`is_quiet`; a terminal gets a tqdm bar, anything else plain lines every
    ``interval`` seconds (default :func:`interval_seconds`).  ``enabled=True`` shows it even when quiet,
    ``False`` never."""

    def __init__(self, total: int, label: str, enabled: bool | None = None, stream: TextIO | None = None,
                 interval: float | None = None, unit: str = "it") -> None:
        self.total = max(int(total), 1)
        self.label = label
        self.done = 0
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = (not is_quiet()) if enabled is None else bool(enabled)
        self.interval = interval if interval is not None else (interval_seconds() if self.enabled else 0.0)
        self.t0 = time.monotonic()
        self.lines = 0
        self._bar = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._timer: threading.Thread | None = None
        if not self.enabled:
            return
        if _isatty(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=label, file=self.stream, unit=unit, leave=True,
                             dynamic_ncols=True, mininterval=0.2)
        else:
            self._timer = threading.Thread(target=self._tick, name="refarith-progress", daemon=True)
            self._timer.start()

    def line(self) -> str:
        """The plain progress line: done/total, percentage, rate, elapsed time and ETA."""
        el = time.monotonic() - self.t0
        done = min(self.done, self.total)
        rate = done / el if el > 0 else 0.0
        eta = f"ETA {_secs((self.total - done) / rate)}" if rate > 0 else "ETA unknown"
        return (f"{self.label}: {done}/{self.total} ({100 * done / self.total:.0f}%), {rate:.3g} {self.unit}/s, "
                f"{_secs(el)} elapsed, {eta}")

    def _write(self, text: str) -> None:
        with self._lock:
            try:
                self.stream.write(text + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # a closed or broken stderr must not stop the work
                self._stop.set()
                return
            self.lines += 1

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._write(self.line())

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)

    def close(self, finished: bool = True) -> None:
        """Stop the display; when ``finished`` and any plain line was written, a last one says how long it took
        (nothing is added when the work stopped on an error or Ctrl-C)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._timer is not None:
            self._stop.set()
            self._timer.join()
            self._timer = None
            if self.lines and finished:
                self._write(f"{self.label}: {min(self.done, self.total)}/{self.total} done in "
                            f"{_secs(time.monotonic() - self.t0)}")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(finished=exc_type is None)


__all__ = ["DEFAULT_INTERVAL", "Progress", "interval_seconds", "is_quiet", "set_quiet"]
