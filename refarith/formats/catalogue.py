"""The catalogue of named formats and the name resolver (with peer-library aliases)."""

from __future__ import annotations

import difflib
import re

from refarith.errors import UnknownFormatError, UnknownModeError
from refarith.formats.float_format import FloatFormat
from refarith.formats.hifloat import TaperedFormat, hifloat8
from refarith.formats.int_format import IntFormat

Format = FloatFormat | IntFormat | TaperedFormat

_F = FloatFormat
_CATALOGUE: dict[str, Format] = {}


def _add(fmt: Format) -> Format:
    _CATALOGUE[fmt.name] = fmt
    return fmt


binary64 = _add(_F("binary64", 11, 52, 1023, doc="IEEE 754 binary64 (double)"))
binary32 = _add(_F("binary32", 8, 23, 127, doc="IEEE 754 binary32 (single)"))
binary16 = _add(_F("binary16", 5, 10, 15, doc="IEEE 754 binary16 (half)"))
bfloat16 = _add(_F("bfloat16", 8, 7, 127, doc="brain float: binary32 with 7 mantissa bits"))
tf32 = _add(_F("tf32", 8, 10, 127, doc="NVIDIA TensorFloat-32, a 19-bit storage layout"))
ocp_e5m2 = _add(_F("ocp_e5m2", 5, 2, 15, doc="OCP OFP8 E5M2: IEEE-like, inf and NaN, max 57344"))
ocp_e4m3 = _add(_F("ocp_e4m3", 4, 3, 7, specials="fn", doc="OCP OFP8 E4M3 ('fn'): no inf, NaN S.1111.111, max 448"))
e4m3fnuz = _add(_F("e4m3fnuz", 4, 3, 8, specials="fnuz", doc="E4M3 bias 8, no inf, no -0, NaN 0x80, max 240"))
e5m2fnuz = _add(_F("e5m2fnuz", 5, 2, 16, specials="fnuz", doc="E5M2 bias 16, no inf, no -0, NaN 0x80, max 57344"))
e4m3b11fnuz = _add(_F("e4m3b11fnuz", 4, 3, 11, specials="fnuz", doc="E4M3 bias 11, fnuz specials (ml_dtypes)"))
ieee_e4m3 = _add(_F("ieee_e4m3", 4, 3, 7, doc="IEEE-like E4M3 with inf/NaN, max 240 (ml_dtypes float8_e4m3)"))
ieee_e3m4 = _add(_F("ieee_e3m4", 3, 4, 3, doc="IEEE-like E3M4 with inf/NaN, max 15.5 (ml_dtypes float8_e3m4)"))
ocp_e3m2 = _add(_F("ocp_e3m2", 3, 2, 3, specials="none", doc="OCP MX FP6 E3M2: no inf/NaN, max 28"))
ocp_e2m3 = _add(_F("ocp_e2m3", 2, 3, 1, specials="none", doc="OCP MX FP6 E2M3: no inf/NaN, max 7.5"))
ocp_e2m1 = _add(_F("ocp_e2m1", 2, 1, 1, specials="none", doc="OCP MX FP4 E2M1: no inf/NaN, max 6"))
e8m0 = _add(
    _F("e8m0", 8, 0, 127, signed=False, subnormals=False, specials="fn",
       doc="OCP MX scale E8M0: 2^(E-127), no zero/inf/sign, 0xFF NaN, range 2^-127..2^127")
)
ue4m3 = _add(_F("ue4m3", 4, 3, 7, signed=False, specials="fn",
                doc="NVFP4 block scale: unsigned E4M3, 0x7F NaN, max 448"))
# UE5M3 block scale: two readings are in use.  The default follows NVIDIA's PTX ISA ("alternate floating-point data
# formats", CUDA 13.4): unsigned, 5 exponent bits (bias 15) and 3 mantissa bits with subnormals, no infinity, the one
# NaN 0xFF, so E = 31 holds finite values up to 1.75 * 2^16 = 114688.  ``ue5m3_inf`` is the IEEE 754-style reading
# (E = 31 is inf at M = 0 and NaN otherwise, max 1.875 * 2^15 = 61440); no published definition of it was found.
ue5m3 = _add(
    _F("ue5m3", 5, 3, 15, signed=False, specials="fn",
       doc="UE5M3 block scale (NVIDIA PTX ISA): unsigned E5M3 bias 15, subnormals, no inf, NaN 0xFF, max 114688")
)
ue5m3_inf = _add(
    _F("ue5m3_inf", 5, 3, 15, signed=False, specials="ieee",
       doc="UE5M3, IEEE-style reading: unsigned E5M3 bias 15, inf 0xF8, NaN 0xF9-0xFF, max 61440 (source unconfirmed)")
)

_CATALOGUE[hifloat8.name] = hifloat8

# IEEE P3109 (interim report v4.0, §3.1 and §4.14): Binary{K,P,Σ,Δ} with K bits, precision P (signed 1 <= P < K,
# unsigned 1 <= P <= K), exponent bias 2^(K-P-1) signed / 2^(K-P) unsigned.  The catalogue holds the K = 8 family;
# every K from 3 to 16 resolves by name (binary{K}p{P}{s|u}{e|f}) through get_format.
P3109_WIDTHS = range(3, 17)
_P3109_NAME = re.compile(r"^binary(\d+)p(\d+)([su])([ef])$")


def p3109_format(k: int, p: int, signed: bool, extended: bool) -> FloatFormat:
    """The P3109 format Binary{k, p, signed, extended}; UnknownFormatError where the standard defines none."""
    name = f"binary{k}p{p}{'s' if signed else 'u'}{'e' if extended else 'f'}"
    if k not in P3109_WIDTHS:
        raise UnknownFormatError(f"P3109 format {name!r}: refarith models widths K = 3..16, not {k}")
    if signed and not 1 <= p < k:
        raise UnknownFormatError(f"P3109 format {name!r}: a signed format needs precision 1 <= P < K = {k} "
                                 f"(P3109 §3.1), got P = {p}")
    if not signed and not 1 <= p <= k:
        raise UnknownFormatError(f"P3109 format {name!r}: an unsigned format needs precision 1 <= P <= K = {k} "
                                 f"(P3109 §3.1), got P = {p}")
    if name in _CATALOGUE:
        return _CATALOGUE[name]
    ebits = k - p + (0 if signed else 1)
    bias = (1 << (k - p - 1)) if signed else (1 << (k - p))
    return _F(name, ebits, p - 1, bias, signed=signed, specials="p3109" + ("e" if extended else "f"),
              doc=f"IEEE P3109 Binary{{{k},{p},{'Signed' if signed else 'Unsigned'},"
                  f"{'Extended' if extended else 'Finite'}}}: {'with' if extended else 'no'} inf")


def p3109_formats(k: int | None = None) -> list[FloatFormat]:
    """Every P3109 format of width ``k`` (all widths 3..16 when None), in (K, P, signed, extended) order."""
    out = []
    for kk in ([k] if k is not None else P3109_WIDTHS):
        for p in range(1, kk + 1):
            for signed in (True, False):
                if signed and p == kk:
                    continue
                for ext in (True, False):
                    out.append(p3109_format(kk, p, signed, ext))
    return out


def is_p3109(fmt: object) -> bool:
    """True for an IEEE P3109 format (its specials are the P3109 extended or finite domain)."""
    return isinstance(fmt, FloatFormat) and fmt.specials in ("p3109e", "p3109f")


for _f in p3109_formats(8):
    _add(_f)

for _n in range(2, 33):
    _add(IntFormat(f"int{_n}", _n, doc=f"{_n}-bit two's complement"))
    _add(IntFormat(f"int{_n}_sym", _n, symmetric=True, doc=f"{_n}-bit, symmetric range ±(2^{_n - 1}-1)"))
for _n in range(1, 33):
    _add(IntFormat(f"uint{_n}", _n, signed=False, doc=f"{_n}-bit unsigned"))
_add(IntFormat("int64", 64, doc="64-bit two's complement"))
# every width up to 64: the random-integer operand r:uint<k> of a stochastic-rounding spec takes any k the kernels
# can (a k past a fast kernel's bit budget then meets that kernel's own one-line refusal, not an unknown format)
for _n in range(33, 65):
    _add(IntFormat(f"uint{_n}", _n, signed=False, doc=f"{_n}-bit unsigned"))

ALIASES: dict[str, str] = {
    "float64": "binary64", "double": "binary64", "fp64": "binary64", "f64": "binary64",
    "float32": "binary32", "single": "binary32", "fp32": "binary32", "f32": "binary32",
    "float16": "binary16", "half": "binary16", "fp16": "binary16", "f16": "binary16",
    "bf16": "bfloat16", "float8_e5m2": "ocp_e5m2", "e5m2": "ocp_e5m2", "fp8_e5m2": "ocp_e5m2",
    "float8_e4m3fn": "ocp_e4m3", "e4m3": "ocp_e4m3", "e4m3fn": "ocp_e4m3", "fp8_e4m3": "ocp_e4m3",
    "float8_e4m3fnuz": "e4m3fnuz", "float8_e5m2fnuz": "e5m2fnuz",
    "float8_e4m3b11fnuz": "e4m3b11fnuz", "float8_e4m3": "ieee_e4m3", "float8_e3m4": "ieee_e3m4",
    "float6_e3m2fn": "ocp_e3m2", "e3m2": "ocp_e3m2", "fp6_e3m2": "ocp_e3m2",
    "float6_e2m3fn": "ocp_e2m3", "e2m3": "ocp_e2m3", "fp6_e2m3": "ocp_e2m3",
    "float4_e2m1fn": "ocp_e2m1", "e2m1": "ocp_e2m1", "fp4": "ocp_e2m1", "fp4_e2m1": "ocp_e2m1",
    "float8_e8m0fnu": "e8m0", "e8m0fnu": "e8m0", "ocp_e8m0": "e8m0",
    "tensorfloat32": "tf32", "hif8": "hifloat8",
}
for _n in (8, 16, 32, 64):
    ALIASES[f"i{_n}"] = f"int{_n}"
    ALIASES[f"u{_n}"] = f"uint{_n}"
for _p in range(1, 8):
    for _su in "su":
        for _ef in "ef":
            ALIASES[f"p3109_k8p{_p}{_su}{_ef}"] = f"binary8p{_p}{_su}{_ef}"
for _ef in "ef":
    ALIASES[f"p3109_k8p8u{_ef}"] = f"binary8p8u{_ef}"

_PARAMETRIC = re.compile(r"^(u?)e(\d+)m(\d+)(?:b(-?\d+))?(?:_(ieee|fn|fnuz|p3109e|p3109f|none))?(_nosub)?$")


def _normalise(name: str) -> str:
    n = name.strip()
    for prefix in ("torch.", "ml_dtypes.", "np.", "numpy.", "jnp.", "jax.numpy."):
        if n.startswith(prefix):
            n = n[len(prefix):]
    return n.lower()


_PACKED_DTYPES = {"float4_e2m1fn_x2": "ocp_e2m1"}
"""Dtypes that pack two elements per byte (torch): not one format; the error names the element format."""


def _dtype_name(obj: object) -> tuple[str, str] | None:
    """(dtype name, library) of a numpy dtype, a numpy/ml_dtypes scalar type or a torch dtype, else None.

    Read without importing torch: a torch dtype is recognised by its type, and named by ``str()``."""
    t = type(obj)
    if t.__module__ == "torch" and t.__name__ == "dtype":
        return str(obj).removeprefix("torch."), "torch"
    import numpy as np

    if isinstance(obj, np.dtype):
        dt = obj
    elif isinstance(obj, type) and issubclass(obj, np.generic):
        dt = np.dtype(obj)
    else:
        return None
    lib = "ml_dtypes" if dt.type.__module__.startswith("ml_dtypes") else "numpy"
    return dt.name, lib


def _from_dtype(obj: object, dtype: tuple[str, str]) -> Format:
    """The catalogue format of a dtype (its name through the peer aliases); UnknownFormatError naming the dtype."""
    name, lib = dtype
    if name in _PACKED_DTYPES:
        raise UnknownFormatError(f"{lib} dtype {name} packs two {_PACKED_DTYPES[name]} elements per byte; give the "
                                 f"element format {_PACKED_DTYPES[name]!r}")
    n = name.lower()
    key = n if n in _CATALOGUE else ALIASES.get(n)
    if key is None:
        raise UnknownFormatError(f"{lib} dtype {name} is not a number format refarith models "
                                 "(`refarith formats` lists them)")
    return _CATALOGUE[key]


def get_format(name: str | Format | object) -> Format:
    """Resolve a catalogue name, a peer alias, a parametric ``[u]eXmY[bB][_specials][_nosub]`` name, or a dtype
    (``np.float32``, ``np.dtype("float32")``, ``ml_dtypes.float8_e4m3fn``, ``torch.float8_e4m3fn``: the format
    whose codes are that dtype's bits)."""
    if isinstance(name, (FloatFormat, IntFormat, TaperedFormat)):
        return name
    if type(name) is str and name in _CATALOGUE:  # a catalogue name is its own normal form: skip _normalise
        return _CATALOGUE[name]
    if not isinstance(name, str):
        dt = _dtype_name(name)
        if dt is None:
            raise UnknownFormatError(f"format must be a name, a format record or a dtype, got {name!r} "
                                     f"({type(name).__name__})")
        return _from_dtype(name, dt)
    n = _normalise(name)
    if n in _CATALOGUE:
        return _CATALOGUE[n]
    if n in ALIASES:
        return _CATALOGUE[ALIASES[n]]
    m = _P3109_NAME.match(n)
    if m:
        k, p, su, ef = m.groups()
        return p3109_format(int(k), int(p), su == "s", ef == "e")
    m = _PARAMETRIC.match(n)
    if m:
        unsigned, e, mb, b, sp, nosub = m.groups()
        e, mb = int(e), int(mb)
        bias = int(b) if b is not None else (1 << (e - 1)) - 1
        total = e + mb + (0 if unsigned else 1)
        if not 3 <= total <= 16 and not (unsigned and 2 <= total <= 16):
            raise UnknownFormatError(f"parametric format {name!r}: width {total} bits outside 3..16")
        try:
            return FloatFormat(n, e, mb, bias, signed=not unsigned, subnormals=not nosub, specials=sp or "ieee")
        except UnknownModeError as err:  # e.g. IEEE specials with 1 exponent bit: not a format name
            raise UnknownFormatError(f"parametric format {name!r}: {err}") from None
    close = difflib.get_close_matches(n, list(_CATALOGUE) + list(ALIASES), n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `refarith formats` lists them"
    raise UnknownFormatError(f"unknown format {name!r}{hint}")


def catalogue() -> dict[str, Format]:
    """All named formats, in catalogue order."""
    return dict(_CATALOGUE)


def float_formats(max_bits: int | None = None) -> list[FloatFormat]:
    return [f for f in _CATALOGUE.values() if isinstance(f, FloatFormat) and (max_bits is None or f.nbits <= max_bits)]
