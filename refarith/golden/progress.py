"""A minimal progress bar on stderr (silent when stderr is not a terminal unless forced)."""

from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, label) as p: p.update(n)`` draws ``label [#####     ] 50% 12.3s`` on stderr."""

    def __init__(self, total: int, label: str, enabled: bool | None = None, stream=None) -> None:
        self.total = max(int(total), 1)
        self.label = label
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.t0 = time.monotonic()
        self._last = -1.0

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and self.done < self.total:
            return
        self._last = now
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        self.stream.write(f"\r{self.label} [{bar:<30}] {frac * 100:5.1f}% {now - self.t0:6.1f}s")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
