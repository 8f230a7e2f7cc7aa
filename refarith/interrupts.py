"""Ctrl-C: the command line stops with one line and exit status 130, and no worker process outlives it.

The CLI installs :func:`sigint_handler` for the duration of a command: it records that the user interrupted (so
that a KeyboardInterrupt which code under test turned into a KernelError is still read as the user's Ctrl-C) and
raises KeyboardInterrupt.  Pool workers start with :func:`worker_init`, which ignores SIGINT: a Ctrl-C on a
terminal reaches the whole process group, and it is the parent's business to stop the workers, not theirs to
print tracebacks.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import threading
from collections.abc import Callable

EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT, as shells report it)."""

_STATE = {"interrupted": False}


def was_interrupted() -> bool:
    """Whether SIGINT arrived while :func:`sigint_handler` was installed."""
    return _STATE["interrupted"]


def _on_sigint(signum, frame) -> None:
    _STATE["interrupted"] = True
    raise KeyboardInterrupt


class sigint_handler:  # noqa: N801 - used as a context manager, like contextlib's
    """``with sigint_handler():`` records SIGINT (see :func:`was_interrupted`) and raises KeyboardInterrupt; a no-op
    outside the main thread or when SIGINT is ignored."""

    def __enter__(self) -> sigint_handler:
        self._prev = None
        _STATE["interrupted"] = False
        if threading.current_thread() is threading.main_thread():
            prev = signal.getsignal(signal.SIGINT)
            if prev is not signal.SIG_IGN:
                self._prev = prev
                signal.signal(signal.SIGINT, _on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        if self._prev is not None:
            signal.signal(signal.SIGINT, self._prev)


def stop_children(grace: float = 1.0) -> None:
    """Terminate every child process this process started with multiprocessing, killing those still alive after
    ``grace`` seconds."""
    kids = mp.active_children()
    for p in kids:
        p.terminate()
    for p in kids:
        p.join(grace)
        if p.is_alive():
            p.kill()
            p.join(grace)


def worker_init(initializer: Callable | None = None, initargs: tuple = ()) -> None:
    """Pool worker initializer: ignore SIGINT (the parent stops the workers), then ``initializer(*initargs)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


__all__ = ["EXIT_INTERRUPTED", "sigint_handler", "stop_children", "was_interrupted", "worker_init"]
