"""What an operation MEANS: exact models over Python ints and Fractions."""

from refarith.exact.ops import add, cast, decode, div, encode, fma, is_signaling_nan, mul, sqrt, sub, value_table
from refarith.exact.rounding import (
    DETERMINISTIC_MODES,
    FLAGS,
    NAN_POLICIES,
    OVERFLOW_MODES,
    ROUNDING_MODES,
    TININESS_MODES,
    Rounded,
    default_overflow,
    round_value,
)
from refarith.exact.value import Value, parse_value

__all__ = ["DETERMINISTIC_MODES", "FLAGS", "NAN_POLICIES", "OVERFLOW_MODES", "ROUNDING_MODES", "TININESS_MODES",
           "Rounded", "Value", "add", "cast", "decode", "default_overflow", "div", "encode", "fma", "is_signaling_nan",
           "mul", "parse_value", "round_value", "sqrt", "sub", "value_table"]
from refarith.exact import fixedpoint, intdot, requant  # noqa: E402,F401,I001  (registers requantize and int_dot)
from refarith.exact import ibert, ivit  # noqa: E402,F401  (registers the integer-operator spec ops)
from refarith.exact import fdot as _fdot, lmul as _lmul  # noqa: E402,F401,I001  (registers the lmul and fdot spec ops)
from refarith.exact import bfp, intquant, llmint8, mx, nvfp4  # noqa: E402,F401,I001  (registers the block and integer quantization spec ops)
from refarith.exact import rotation  # noqa: E402,F401,I001  (registers hadamard_rotate)
from refarith.exact import fp8scale  # noqa: E402,F401,I001  (registers fp8_current_scale, fp8_delayed_scale)
from refarith.exact import fp8block  # noqa: E402,F401,I001  (registers fp8_block_quantize)
from refarith.exact import nvfp4_recipe  # noqa: E402,F401,I001  (registers nvfp4_recipe)
from refarith.exact import mxfake  # noqa: E402,F401,I001  (registers mx_fake_quantize)
from refarith.exact import hif4  # noqa: E402,F401,I001  (registers hif4_quantize, hif4_fake_quantize)
