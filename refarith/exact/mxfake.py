"""MX fake quantization, exactly: a block quantized by :mod:`refarith.exact.mx` and dequantized back to binary32.

Fake quantizers (AMD Quark's ``fake_quantize_mx``, brevitas' quant tensors' ``value``, torchao's MX reference
``to_dtype``) return the values X * P_i of OCP MX v1.0 (section 6.3) rather than the scale and element codes.  The
op ``mx_fake_quantize(E,block=k,scale=...,rounding=...)`` is that composition:

    P, X = mx_quantize(V)       (:func:`refarith.exact.mx.quantize_block`, every rule of that op)
    y_i  = X * P_i              (:func:`refarith.exact.mx.dequantize_block`, exact)
    out_i = binary32 code of y_i

What rounds where: the element rounding of V_i / X (once, exactly) is the only rounding of a finite result.
X * P_i is a binary32 number whenever it is below 2^128: X = 2^e with e in [-127, 127], and the quantum of P_i
is at least 2^-16 (E5M2 subnormals; E4M3 2^-9, MXINT8 2^-6), so X * P_i is a multiple of 2^-143, never below the
binary32 subnormal quantum 2^-149, with at most 8 significant bits.  It reaches 2^128 in one case only: a block
maximum within half an element step of 2^128 that the element rounding carries up to the next power of two
(scale rules ceil, even and rceil give e = floor(log2 A) + 1 - emax_elem there and P = 2^emax_elem; MXINT8's code
-128 is -2, so -2 X under floor); that product is rounded to binary32 as a binary32 multiply does, to ±inf
(overflow to infinity).  :func:`fake_quantize_block` checks the rest for every element: an inexact finite
product is an error, never a silent rounding.  ±0 keeps the element's sign (MXINT8 has no -0: -0.0 gives +0).
A block holding a NaN or an infinity gets the NaN scale, so every output of the block is the binary32 quiet NaN
0x7FC00000.
"""

from __future__ import annotations

from refarith.errors import BadValueError, SpecError
from refarith.exact import mx as _mx
from refarith.exact.rounding import round_value
from refarith.formats import get_format
from refarith.spec import OpSchema, Param, Spec, make_spec, register_op

F32 = get_format("binary32")
F32_QNAN = 0x7FC00000


def fake_quantize_block(values: list, element: str, scale: str = "floor", rounding: str = "rne") -> tuple[int, ...]:
    """binary32 codes of X * P_i for one block (anything :func:`refarith.exact.value.parse_value` accepts): exact,
    or ±inf for a product of magnitude 2^128; BadValueError for any other inexact product (there is none: module
    docstring)."""
    fmt = _mx.mx_element(element)
    blk = _mx.quantize_block(values, fmt, scale, rounding)
    out = []
    for v in _mx.dequantize_block(blk, fmt):
        if v.is_nan:
            out.append(F32_QNAN)
            continue
        r = round_value(v, F32, "rne", "inf")
        if "inexact" in r.flags and "overflow" not in r.flags:
            raise BadValueError(f"MX fake quantization: X * P = {v} is not a binary32 number")
        out.append(r.code)
    return tuple(out)


def fake_quantize(values: list, element: str, block: int = 32, scale: str = "floor",
                  rounding: str = "rne") -> list[int]:
    """binary32 codes of a 1-D sequence fake-quantized block by block (the last block may be shorter)."""
    if not isinstance(block, int) or block < 1:
        raise BadValueError(f"block size must be a positive integer, got {block!r}")
    vals = list(values)
    out: list[int] = []
    for i in range(0, len(vals), block):
        out.extend(fake_quantize_block(vals[i:i + block], element, scale, rounding))
    return out


def mx_fake_spec(element: str, block: int = 32, scale: str = "floor", rounding: str = "rne") -> Spec:
    """The canonical spec, e.g. ``mx_fake_quantize(ocp_e2m1,block=32,scale=floor,rounding=rne)``."""
    return make_spec("mx_fake_quantize", (_mx.mx_element(element).name,), block=block, scale=scale,
                     rounding=rounding)


def _validate(spec: Spec) -> None:
    if spec.formats[0] not in _mx.ELEMENT_FORMATS:
        raise SpecError(f"{spec}: {spec.formats[0]} is not an MX element format")
    b = spec.param["block"]
    if not b.isdigit() or int(b) < 1:
        raise SpecError(f"{spec}: block must be a positive integer")


register_op(OpSchema(
    "mx_fake_quantize", 1,
    (
        Param("block", "32", None, "elements per shared scale"),
        Param("scale", "floor", _mx.SCALE_RULES, "E8M0 scale rule, as mx_quantize"),
        Param("rounding", "rne", _mx.ELEMENT_ROUNDING, "element rounding of V/X, as mx_quantize"),
    ),
    "MX fake quantization: mx_quantize then X * P_i as binary32 (exact; NaN/inf block -> NaN values)",
    _validate,
))
