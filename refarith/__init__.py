"""refarith: the reference arithmetic for low-precision ML number formats.

Layers: ``formats`` (what a number is), ``exact`` (what an operation means),
``fast`` (the same, vectorized), ``smt`` (proofs), ``golden``, ``certify``.
"""

from refarith.api import decode, encode
from refarith.errors import (
    BadValueError,
    BitPatternError,
    RefarithError,
    SpecError,
    SpecialValueError,
    UnknownFormatError,
    UnknownModeError,
)
from refarith.formats import FloatFormat, IntFormat, get_format
from refarith.quant import Quantized, dequantize, load_quantized, quantize
from refarith.spec import Spec, make_spec, parse_spec

__version__ = "0.1.0"

__all__ = ["BadValueError", "BitPatternError", "FloatFormat", "IntFormat", "Quantized", "RefarithError", "Spec",
           "SpecError", "SpecialValueError", "UnknownFormatError", "UnknownModeError", "__version__", "decode",
           "dequantize", "encode", "get_format", "load_quantized", "make_spec", "parse_spec", "quantize"]
