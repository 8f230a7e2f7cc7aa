"""OCP Microscaling (MX) block quantization, exactly.

Source: OCP Microscaling Formats (MX) Specification v1.0 (2023), sections 5 and
6.3: a block of k elements V_i shares one E8M0 scale X = 2^e; the stored
elements are P_i = round(V_i / X) in the element format, values beyond the
element's largest magnitude clamped to it; the block's value is X * P_i.

Concrete formats (element format, emax_elem = exponent of the element's
largest normal): MXFP8 E4M3 (``ocp_e4m3``, 8), MXFP8 E5M2 (``ocp_e5m2``, 15),
MXFP6 E3M2 (``ocp_e3m2``, 4), MXFP6 E2M3 (``ocp_e2m3``, 2), MXFP4 (``ocp_e2m1``,
2), MXINT8 (``int8``: 8-bit two's complement with an implicit 2^-6, emax 0;
values -2 .. 1 63/64).  Whether MXINT8 uses the code -128 (-2.0) differs in
the wild, so both are variants: ``mxint8`` (element ``int8``, the default) is
the spec's two's complement element with -2 as its smallest value, the table
gfloat's ``format_info_ocp_int8`` encodes; ``mxint8_sym`` (element
``int8_sym``) clamps to +-127/64 and never produces -128, as the MX reference
code (microsoft/microxcaling ``mx/formats.py``: INT8 read as sign-magnitude,
max_norm 127/64) does.

Scale rules (A = max |V_i| of the block, a finite binary32 value; every rule is
computed from exact values, never a floating log2):

* ``floor`` (OCP v1.0): e = floor(log2 A) - emax_elem.
* ``ceil``: e = ceil(log2 A) - emax_elem (rounds a non-power-of-two amax up).
* ``even``: e = floor(log2 A') - emax_elem, A' = A rounded to the element's
  significand precision (mbits+1 bits; 7 bits for MXINT8) with ties away from
  zero, so an amax that would round up into the next binade gets the next scale.
  This is torchao's ``ScaleCalculationMode.EVEN`` (add half an element ulp to
  the binary32 bits, keep the exponent).
* ``rceil`` (NVIDIA cuBLAS MX recipe): d = fl32(A / max_elem), one binary32
  division rounded to nearest even; e = ceil(log2 d) (the ``cvt.rp`` rounding
  up to a power of two).
* ``floor_half``: e = floor(log2 A) - emax_elem - 1, half the ``floor`` scale.
  This is brevitas' ``MXInt8Act`` / ``MXInt8Weight`` (brevitas 0.13.4,
  ``brevitas.quant.mx_quant_ocp``): its scale is 2^floor(log2(A / 128)) on the
  int8 integers (the statistic divided by its ``IntScaling`` 2^(bits-1) = 128,
  then ``PowerOfTwoRestrictValue`` with ``FloorSte``), i.e. X * 2^-6 with
  e = floor(log2 A) - 1 for MXINT8; with the full int8 range the block maximum
  itself always clips to 127 (or -128) times that scale.

Then e is clamped to the E8M0 range [-127, 127] (an all-zero block, A = 0, gets
e = -127, the smallest scale; scale underflow and overflow clamp the same way;
after an overflow clamp elements saturate).  Elements: P_i = round_value(V_i / 2^e,
element, rounding, overflow="saturate") — the exact quotient rounded once, ±0
keeps its sign for FP elements.  A block holding a NaN or an infinity gets the
NaN scale 0xFF and element codes 0 (the spec: a NaN scale makes every element of
the block NaN); dequantization gives NaN for the whole block.  A ragged last
block (length not a multiple of k) is a shorter block with its own scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from refarith.errors import BadValueError, SpecError, UnknownModeError
from refarith.exact.rounding import floor_log2, pow2, round_value
from refarith.exact.stochastic import rand_list
from refarith.exact.value import Value, parse_value
from refarith.formats import FloatFormat, IntFormat, get_format
from refarith.spec import SR_PARAMS, OpSchema, Param, Spec, check_sr_params, make_spec, register_op

#: MX format names -> (element format, emax_elem)
MX_FORMATS: dict[str, tuple[str, int]] = {
    "mxfp8_e4m3": ("ocp_e4m3", 8),
    "mxfp8_e5m2": ("ocp_e5m2", 15),
    "mxfp6_e3m2": ("ocp_e3m2", 4),
    "mxfp6_e2m3": ("ocp_e2m3", 2),
    "mxfp4": ("ocp_e2m1", 2),
    "mxint8": ("int8", 0),
    "mxint8_sym": ("int8_sym", 0),
}
MX_ALIASES = {"mxfp8": "mxfp8_e4m3", "mxfp6": "mxfp6_e3m2", "mxfp4_e2m1": "mxfp4"}
ELEMENT_FORMATS = ("ocp_e4m3", "ocp_e5m2", "ocp_e3m2", "ocp_e2m3", "ocp_e2m1", "int8", "int8_sym")
SCALE_RULES = ("floor", "ceil", "even", "rceil", "floor_half")
ELEMENT_ROUNDING = ("rne", "rna", "rtz", "rup", "rdn", "rto")
E8M0_MIN, E8M0_MAX, E8M0_BIAS, E8M0_NAN = -127, 127, 127, 0xFF
MXINT_FRAC_BITS = 6


def mx_element(name: str) -> FloatFormat | IntFormat:
    """Element format of an MX format name (``mxfp4``, ``mxfp8_e4m3``, ...) or of an element format name."""
    key = MX_ALIASES.get(name.lower(), name.lower())
    if key in MX_FORMATS:
        return get_format(MX_FORMATS[key][0])
    fmt = get_format(name)
    if fmt.name not in ELEMENT_FORMATS:
        raise UnknownModeError(f"{fmt.name} is not an MX element format; expected one of {', '.join(ELEMENT_FORMATS)}")
    return fmt


def emax_elem(fmt: FloatFormat | IntFormat) -> int:
    """Exponent of the element format's largest power of two (0 for MXINT8)."""
    return 0 if isinstance(fmt, IntFormat) else fmt.emax


def elem_max(fmt: FloatFormat | IntFormat) -> Fraction:
    """Largest element magnitude: the format max, or 127/64 for MXINT8."""
    if isinstance(fmt, IntFormat):
        return Fraction(fmt.max, 1 << MXINT_FRAC_BITS)
    return fmt.max


def _ceil_log2(x: Fraction) -> int:
    e = floor_log2(x)
    return e if x == pow2(e) else e + 1


def _elem_precision(fmt: FloatFormat | IntFormat) -> int:
    return 7 if isinstance(fmt, IntFormat) else fmt.mbits + 1


def scale_exponent(amax: Fraction, fmt: FloatFormat | IntFormat, rule: str = "floor") -> int:
    """The unclamped-then-clamped E8M0 exponent e for a finite block amax (see module docstring)."""
    if rule not in SCALE_RULES:
        raise UnknownModeError(f"unknown MX scale rule {rule!r}; expected one of {', '.join(SCALE_RULES)}")
    if amax < 0:
        raise BadValueError("amax must be non-negative")
    em = emax_elem(fmt)
    if amax == 0:
        return E8M0_MIN
    if rule == "floor":
        e = floor_log2(amax) - em
    elif rule == "floor_half":
        e = floor_log2(amax) - em - 1
    elif rule == "ceil":
        e = _ceil_log2(amax) - em
    elif rule == "even":
        fl = floor_log2(amax)
        p = _elem_precision(fmt)
        # amax rounded to p significant bits ties away reaches 2^(fl+1) iff amax >= (2 - 2^-p) 2^fl
        e = (fl + 1 if amax >= (2 - pow2(-p)) * pow2(fl) else fl) - em
    else:
        d = round_value(Value.of(amax / elem_max(fmt)), "binary32", "rne").code
        dv = get_format("binary32").finite_value(d)
        if dv == 0:
            return E8M0_MIN
        e = _ceil_log2(dv)
    return max(E8M0_MIN, min(E8M0_MAX, e))


@dataclass(frozen=True)
class MXBlock:
    """One quantized block: the E8M0 scale code and the element codes."""

    scale: int
    codes: tuple[int, ...]


def quantize_block(values: list, element: str | FloatFormat | IntFormat, scale: str = "floor",
                   rounding: str = "rne", *, rand: list[int] | None = None, rand_bits: int | None = None,
                   sr_variant: str = "a") -> MXBlock:
    """Quantize one block of numbers (anything parse_value accepts) into an MX block.  ``rounding="sr"``: element
    i is rounded stochastically with ``rand[i]`` (k = ``rand_bits`` bits, rule ``sr_variant``)."""
    fmt = mx_element(element) if isinstance(element, str) else element
    if rounding != "sr" and rounding not in ELEMENT_ROUNDING:
        raise UnknownModeError(f"unknown element rounding {rounding!r}; expected one of {', '.join(ELEMENT_ROUNDING)}")
    vals = [parse_value(v) for v in values]
    if not vals:
        raise BadValueError("an MX block needs at least one element")
    rs = rand_list(rand, len(vals), rand_bits, "an MX block") if rounding == "sr" else [None] * len(vals)
    if any(not v.is_finite for v in vals):
        return MXBlock(E8M0_NAN, tuple(0 for _ in vals))
    amax = max(v.mag for v in vals)
    e = scale_exponent(amax, fmt, scale)
    x = pow2(e)
    if isinstance(fmt, IntFormat):
        x = x / (1 << MXINT_FRAC_BITS)  # the element integer counts units of 2^-6
    codes = []
    for v, r in zip(vals, rs):
        q = Value(v.kind, v.sign, v.mag / x)
        codes.append(round_value(q, fmt, rounding, "saturate", rand=r, rand_bits=rand_bits if r is not None else None,
                                 sr_variant=sr_variant).code)
    return MXBlock(e + E8M0_BIAS, tuple(codes))


def dequantize_block(block: MXBlock, element: str | FloatFormat | IntFormat) -> list[Value]:
    """Exact values X * P_i of a block (all NaN when the scale is the NaN code 0xFF)."""
    fmt = mx_element(element) if isinstance(element, str) else element
    if not 0 <= block.scale <= 0xFF:
        raise BadValueError(f"E8M0 scale code {block.scale} outside 0..255")
    if block.scale == E8M0_NAN:
        return [Value.nan() for _ in block.codes]
    x = pow2(block.scale - E8M0_BIAS)
    out = []
    for c in block.codes:
        if isinstance(fmt, IntFormat):
            out.append(Value.of(Fraction(fmt.value(c), 1 << MXINT_FRAC_BITS) * x))
            continue
        fs, _, _ = fmt.fields(c)
        if fmt.is_nan_code(c):
            out.append(Value.nan(fs))
        elif c in fmt.inf_codes:
            out.append(Value.inf(fs))
        else:
            out.append(Value("finite", fs, abs(fmt.finite_value(c)) * x))
    return out


def quantize(values: list, element: str | FloatFormat | IntFormat, block: int = 32, scale: str = "floor",
             rounding: str = "rne") -> list[MXBlock]:
    """Quantize a 1-D sequence block by block (the last block may be shorter)."""
    if not isinstance(block, int) or block < 1:
        raise BadValueError(f"block size must be a positive integer, got {block!r}")
    vals = list(values)
    return [quantize_block(vals[i:i + block], element, scale, rounding) for i in range(0, len(vals), block)]


def mx_spec(element: str, block: int = 32, scale: str = "floor", rounding: str = "rne") -> Spec:
    """The canonical spec of an MX quantization, e.g. ``mx_quantize(ocp_e2m1,block=32,scale=floor,rounding=rne)``."""
    return make_spec("mx_quantize", (mx_element(element).name,), block=block, scale=scale, rounding=rounding)


def _validate(spec: Spec) -> None:
    if spec.formats[0] not in ELEMENT_FORMATS:
        raise SpecError(f"{spec}: {spec.formats[0]} is not an MX element format")
    b = spec.param["block"]
    if not b.isdigit() or int(b) < 1:
        raise SpecError(f"{spec}: block must be a positive integer")
    check_sr_params(spec, spec.formats[0])


register_op(OpSchema(
    "mx_quantize", 1,
    (
        Param("block", "32", None, "elements per shared scale"),
        Param("scale", "floor", SCALE_RULES, "E8M0 scale rule: floor (OCP v1.0), ceil, even, rceil, "
              "floor_half (floor - 1: brevitas MXINT8)"),
        Param("rounding", "rne", ELEMENT_ROUNDING + ("sr",), "element rounding of V/X (sr: stochastic, one k-bit "
              "random integer per element)"),
        *SR_PARAMS,
    ),
    "OCP MX block quantization: E8M0 shared scale, elements round(V/X) saturated; NaN/inf block -> NaN scale",
    _validate,
))
