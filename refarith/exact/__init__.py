"""What an operation MEANS: exact models over Python ints and Fractions."""

from refarith.exact.ops import add, cast, decode, div, encode, fma, mul, sqrt, sub, value_table
from refarith.exact.rounding import (
    DETERMINISTIC_MODES,
    NAN_POLICIES,
    OVERFLOW_MODES,
    ROUNDING_MODES,
    Rounded,
    default_overflow,
    round_value,
)
from refarith.exact.value import Value, parse_value

__all__ = ["DETERMINISTIC_MODES", "NAN_POLICIES", "OVERFLOW_MODES", "ROUNDING_MODES", "Rounded", "Value", "add",
           "cast", "decode", "default_overflow", "div", "encode", "fma", "mul", "parse_value", "round_value", "sqrt",
           "sub", "value_table"]
