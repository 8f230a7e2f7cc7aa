"""Exception types. Every bad input raises one of these with a message naming the problem."""

from __future__ import annotations


class RefarithError(Exception):
    """Base class of every error refarith raises on bad input."""


class UnknownFormatError(RefarithError, KeyError):
    """A format name that is not in the catalogue (the message lists close matches)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownModeError(RefarithError, ValueError):
    """An unknown rounding mode, overflow mode, policy or variant name."""


class BadValueError(RefarithError, ValueError):
    """A value that cannot be parsed or is out of the domain of the operation."""


class BitPatternError(RefarithError, ValueError):
    """A bit pattern wider than its format, or negative."""


class SpecialValueError(RefarithError, ValueError):
    """NaN, infinity or a negative value into a format lacking it under the 'error' policy."""


class SpecError(RefarithError, ValueError):
    """A malformed or unknown spec id."""


class GoldenFileError(RefarithError, ValueError):
    """A golden vector file or manifest that is malformed, truncated or names an unknown spec."""


class KernelError(RefarithError, RuntimeError):
    """A kernel under certification that cannot be loaded, raises, or returns the wrong shape or dtype."""


class OutputError(RefarithError, OSError):
    """An output file or directory that cannot be written (missing, read-only, full); nothing partial is left."""
