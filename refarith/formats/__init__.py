"""What a number IS: format records and the catalogue of named formats."""

from refarith.formats.catalogue import (
    ALIASES,
    Format,
    catalogue,
    float_formats,
    get_format,
    is_p3109,
    p3109_format,
    p3109_formats,
)
from refarith.formats.float_format import SPECIALS, FloatFormat
from refarith.formats.int_format import IntFormat

__all__ = ["ALIASES", "SPECIALS", "FloatFormat", "Format", "IntFormat", "catalogue", "float_formats", "get_format",
           "is_p3109", "p3109_format", "p3109_formats"]
