"""Spec ids: the canonical names of operations.

A spec id has exactly the shape ``op(F1->F2,key=value,...)``: the operation, its
formats joined by ``->`` (or none), then ``key=value`` parameters in the op's
declared order, no spaces.  Omitted parameters take the op's documented
defaults; :func:`parse_spec` fills them in, so ``str(parse_spec(s))`` is the
canonical id.  Operations register a schema with :func:`register_op`; later
layers (block quantization, integer operators) add theirs the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from refarith.errors import SpecError, UnknownFormatError

# A default is a constant or a function of the resolved formats.
Default = str | Callable[[tuple], str | None]


@dataclass(frozen=True)
class Param:
    name: str
    default: Default
    choices: tuple[str, ...] | None = None  # None: any token ([A-Za-z0-9_.+-]+)
    doc: str = ""
    applies: Callable[[tuple], bool] | None = None  # parameter exists only for some formats
    normalize: Callable[[str], str | None] | None = None  # canonical value of a given one (None: omit it)


@dataclass(frozen=True)
class OpSchema:
    name: str
    nformats: int | tuple[int, ...]
    params: tuple[Param, ...]
    doc: str = ""
    validate: Callable[[Spec], None] | None = None


_OPS: dict[str, OpSchema] = {}


def register_op(schema: OpSchema) -> OpSchema:
    """Declare an operation's spec schema (idempotent for the same name)."""
    _OPS[schema.name] = schema
    return schema


def ops() -> dict[str, OpSchema]:
    return dict(_OPS)


@dataclass(frozen=True)
class Spec:
    """A fully determined operation: op name, canonical format names, parameters in schema order."""

    op: str
    formats: tuple[str, ...] = ()
    params: tuple[tuple[str, str], ...] = field(default=())

    def __str__(self) -> str:
        inner = "->".join(self.formats)
        ps = ",".join(f"{k}={v}" for k, v in self.params)
        if inner and ps:
            inner += "," + ps
        elif ps:
            inner = ps
        return f"{self.op}({inner})"

    @property
    def id(self) -> str:
        return str(self)

    @property
    def param(self) -> dict[str, str]:
        return dict(self.params)

    def fmt(self, i: int):
        from refarith.formats import get_format

        return get_format(self.formats[i])

    def filename(self) -> str:
        """Filesystem-safe transliteration: '->' becomes '_to_', '(' '__', ',' '__', '=' '-', ')' dropped."""
        s = str(self).replace("->", "_to_").replace("(", "__").replace(")", "").replace(",", "__").replace("=", "-")
        return re.sub(r"[^A-Za-z0-9_.+-]", "_", s)


_SPEC_RE = re.compile(r"^([a-z][a-z0-9_]*)\((.*)\)$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.+\-/]+$")


def make_spec(op: str, formats: tuple[str, ...] | list[str] = (), **params: object) -> Spec:
    """Build a canonical spec from Python values (format records or names, parameters as str/int)."""
    fmts = ",".join("->".join(_fmt_name(f) for f in formats).split(",")) if formats else ""
    ps = ",".join(f"{k}={v}" for k, v in params.items() if v is not None)
    inner = ",".join(x for x in (fmts, ps) if x)
    return parse_spec(f"{op}({inner})")


def _fmt_name(f: object) -> str:
    """A format's name: a string as it is; a format record or a dtype (np.float32, torch.float8_e4m3fn, ...)
    resolved through the catalogue."""
    if isinstance(f, str):
        return f
    from refarith.formats import get_format

    return get_format(f).name


def parse_spec(text: str | Spec) -> Spec:
    """Parse (and canonicalise) a spec id; raises SpecError naming the problem."""
    if isinstance(text, Spec):
        return text
    from refarith.formats import get_format

    t = text.strip().replace(" ", "")
    m = _SPEC_RE.match(t)
    if not m:
        raise SpecError(f"malformed spec id {text!r}: expected op(FORMAT->FORMAT,key=value,...)")
    op, inner = m.groups()
    if op not in _OPS:
        import difflib

        close = difflib.get_close_matches(op, list(_OPS), n=3)
        raise SpecError(f"unknown operation {op!r} in spec {text!r}" + (f"; did you mean {', '.join(close)}?" if close
                                                                          else f"; known: {', '.join(sorted(_OPS))}"))
    schema = _OPS[op]
    parts = [p for p in inner.split(",") if p] if inner else []
    fmt_parts: list[str] = []
    kv: dict[str, str] = {}
    for p in parts:
        if "=" in p:
            k, _, v = p.partition("=")
            if k in kv:
                raise SpecError(f"parameter {k!r} given twice in {text!r}")
            if not v or not _TOKEN.match(v):
                raise SpecError(f"malformed value for {k!r} in {text!r}")
            kv[k] = v
        else:
            if kv:
                raise SpecError(f"formats must come before parameters in {text!r}")
            fmt_parts.extend(p.split("->"))
    allowed = (schema.nformats,) if isinstance(schema.nformats, int) else schema.nformats
    if len(fmt_parts) not in allowed:
        raise SpecError(f"{op} takes {' or '.join(map(str, allowed))} format(s), got {len(fmt_parts)} in {text!r}")
    try:
        fmts = tuple(get_format(f) for f in fmt_parts)
    except UnknownFormatError as e:
        raise SpecError(f"in spec {text!r}: {e}") from None
    names = tuple(f.name for f in fmts)
    known = {p.name for p in schema.params}
    for k in kv:
        if k not in known:
            raise SpecError(f"unknown parameter {k!r} for {op}; known: {', '.join(p.name for p in schema.params)}")
    out = []
    for p in schema.params:
        if p.applies is not None and not p.applies(fmts):
            if p.name in kv:
                raise SpecError(f"parameter {p.name!r} does not apply to {op}({'->'.join(names)})")
            continue
        v = kv.get(p.name)
        if v is not None and p.normalize is not None:
            v = p.normalize(v)
            if v is None:
                continue
        if v is None:
            v = p.default(fmts) if callable(p.default) else p.default
            if v is None:
                continue
        if p.choices is not None and v not in p.choices:
            raise SpecError(f"{op}: {p.name}={v!r} is not one of {', '.join(p.choices)}")
        out.append((p.name, str(v)))
    spec = Spec(op, names, tuple(out))
    if schema.validate is not None:
        schema.validate(spec)
    return spec


# ------------------------------------------------------------------ the cast op
def _cast_validate(spec: Spec) -> None:
    from refarith.errors import RefarithError
    from refarith.exact.rounding import check_modes

    p = spec.param
    check_sr_params(spec)
    try:
        check_modes(spec.fmt(1), p["rounding"], p["overflow"], p.get("nan", "error"), p.get("negative", "error"))
    except RefarithError as e:
        raise SpecError(f"{spec}: {e}") from None
    same = _SAME_OVERFLOW.get(p["overflow"])
    if same is not None and p["rounding"] not in same[0]:
        raise SpecError(f"{spec}: overflow={p['overflow']} is overflow={same[1]} under rounding={p['rounding']}; "
                        f"name it overflow={same[1]} (one id per behaviour)")
    if p["overflow"] == "inf_always" and p["rounding"] == "rto" and spec.fmt(1).signed:
        # P3109 SatNone sends ToOdd overflow to +-inf in a signed format with infinities: the same behaviour
        raise SpecError(f"{spec}: overflow=inf_always is overflow=satnone under rounding=rto into a signed format; "
                        "name it overflow=satnone (one id per behaviour)")


_SAME_OVERFLOW = {"inf_always": (("rtz", "rup", "rdn", "rto"), "inf"), "nan_rto": (("rto",), "nan")}
"""Library overflow modes that differ from an IEEE one only under some roundings: (those roundings, the twin)."""


def normalize_sr_variant(v: str) -> str | None:
    """Canonical ``sr=`` value: gfloat's names map to refarith's, the default ``a`` is omitted from ids."""
    from refarith.errors import RefarithError
    from refarith.exact.stochastic import DEFAULT_SR_VARIANT, canonical_variant

    try:
        c = canonical_variant(v)
    except RefarithError as e:
        raise SpecError(str(e)) from None
    return None if c == DEFAULT_SR_VARIANT else c


SR_PARAMS = (
    Param("sr", lambda f: None, None, "stochastic rounding variant for rounding=sr: a (default; P3109 StochasticA, "
          "PTX cvt.rs), b, c, c_odd, te_e2m1_8 (refarith.exact.stochastic); gfloat names accepted",
          normalize=normalize_sr_variant),
    Param("k", lambda f: None, None, "random bits for rounding=sr"),
)
"""The stochastic-rounding parameters every op with a ``rounding`` parameter declares last."""


def check_sr_params(spec: Spec, target: str | None = None) -> None:
    """Raise SpecError unless ``sr``/``k`` appear exactly when ``rounding=sr`` and fit the variant (and the
    rounding target ``target``, default: the spec's last format)."""
    from refarith.errors import RefarithError
    from refarith.exact.stochastic import DEFAULT_SR_VARIANT, check_variant

    p = spec.param
    if p.get("rounding") == "sr" and "k" not in p:
        raise SpecError(f"{spec}: rounding=sr needs k=<random bits>")
    if p.get("rounding") != "sr" and ("k" in p or "sr" in p):
        raise SpecError(f"{spec}: {'k' if 'k' in p else 'sr'} applies to rounding=sr only")
    if "k" in p and (not p["k"].isdigit() or int(p["k"]) < 1):
        raise SpecError(f"{spec}: k must be a positive integer")
    if "k" in p:
        if target is None and spec.formats:
            target = spec.formats[-1]
        try:
            check_variant(p.get("sr", DEFAULT_SR_VARIANT), int(p["k"]), target)
        except RefarithError as e:
            raise SpecError(f"{spec}: {e}") from None


def _default_overflow(fmts: tuple) -> str:
    from refarith.exact.rounding import cast_default_overflow

    return cast_default_overflow(fmts[1])


def _default_negative(fmts: tuple) -> str:
    from refarith.exact.rounding import default_negative

    return default_negative(fmts[1])


def _lacks_nan(fmts: tuple) -> bool:
    f = fmts[1]
    return f.kind == "int" or not f.has_nan


def _unsigned_dst(fmts: tuple) -> bool:
    return not fmts[1].signed


def _has_subnormals(fmts: tuple) -> bool:
    return any(f.kind == "float" and f.subnormals for f in fmts)


CAST_DOC = """convert bit patterns of the first format into the second with a single rounding

One vocabulary for IEEE 754 / OCP and IEEE P3109 (interim report v4.0, §4.2 and §4.7): a P3109 projection
specification (rounding mode, saturation mode) is the pair (rounding, overflow):

* rounding: NearestTiesToEven = rne, NearestTiesToAway = rna, TowardPositive = rup, TowardNegative = rdn,
  TowardZero = rtz, ToOdd = rto, stochastic = sr with k random bits.
* overflow: SatNone = satnone, SatFinite = satfinite, SatPropagate = satpropagate (§4.7.5, exactly; default for
  P3109 targets).  The IEEE/OCP modes stay: inf (IEEE 754 7.4: ToOdd treated as toward zero), nan (OCP E4M3
  non-saturating), saturate (= satfinite for every input but negatives into unsigned targets).  Deployed
  libraries' modes: inf_always (±inf in every rounding mode; pychop; with rtz/rup/rdn only, where it differs
  from inf and satnone, and rto into unsigned targets), nan_rto (as nan, but rto overflow gives the NaN code;
  fpy2 MX_E4M3; with rto only),
  saturate_inf_nan (finite overflow saturates, ±inf gives NaN; brevitas' saturating FloatQuant).
* negative (unsigned targets): project = P3109's rule (round with the sign; zero gives +0, a negative result gives
  0 under satfinite/satpropagate/saturate and NaN under satnone/inf/nan except for finite values under rtz and
  rup; default for P3109 targets); error (default elsewhere); clamp (0, before rounding); nan (ml_dtypes' E8M0:
  every negative is NaN).
"""

register_op(OpSchema(
    "cast", 2,
    (
        Param("rounding", "rne", ("rne", "rna", "rtz", "rup", "rdn", "rto", "sr"), "rounding mode"),
        Param("overflow", _default_overflow, ("saturate", "inf", "nan", "wrap", "satnone", "satfinite",
                                              "satpropagate", "inf_always", "nan_rto", "saturate_inf_nan"),
              "overflow mode; default: satnone for P3109 targets, else inf if the target has inf, else nan if it "
              "has NaN, else saturate"),
        Param("nan", "error", ("error", "zero", "max"), "NaN into a target without NaN", _lacks_nan),
        Param("negative", _default_negative, ("error", "clamp", "nan", "project"),
              "negative values into an unsigned target; default: project for P3109 targets, else error",
              _unsigned_dst),
        Param("subnormal", lambda f: None, ("daz", "ftz", "daz_ftz"),
              "flush to zero: daz reads subnormal inputs as zero, ftz flushes subnormal results to zero after "
              "rounding, daz_ftz both; absent: gradual underflow", _has_subnormals),
        *SR_PARAMS,
    ),
    CAST_DOC,
    _cast_validate,
))


# ------------------------------------------------------------------ the scaled_mm op (refarith.exact.gemm)
def _scaled_mm_validate(spec: Spec) -> None:
    from refarith.exact.gemm import validate_spec

    validate_spec(spec)


register_op(OpSchema(
    "scaled_mm", (2, 3),
    (
        Param("scale", "none", ("none", "tensor", "row", "block", "mx", "nvfp4"),
              "scale granularity: none, per-tensor, per-row of A / per-column of B, 1xblock (A) and blockxblock "
              "(B) blocks, MX (32-element E8M0 blocks along K), NVFP4 (16-element UE4M3 blocks + binary32 tensor "
              "scales)"),
        Param("block", lambda f: None, None, "K-block of scale=block (default 128)"),
        Param("bscale", lambda f: None, ("square", "col"), "scale=block: B blocks blockxblock (square, default) "
              "or blockx1 (col)"),
        Param("scale_fmt", lambda f: None, ("binary32", "ue8m0"), "scale=tensor/row/block scale format"),
        Param("accum", "exact", None, "accumulator model or preset (refarith.exact.gemm.ACCUMS)"),
        Param("acc", "binary32", None, "accumulator format"),
        Param("splits", lambda f: None, None, "accum=split_k: number of K splits"),
        Param("nb", lambda f: None, None, "accum=blocked: block length"),
        Param("g", lambda f: None, None, "accum=tensor_core: products per aligned group"),
        Param("b", lambda f: None, None, "accum=tensor_core: fraction bits kept after alignment"),
        Param("tc_round", lambda f: None, ("rtz", "rne"), "accum=tensor_core: alignment and normalisation rounding"),
        Param("n_c", lambda f: None, None, "accum=tensor_core: promote into binary32 every n_c elements of K "
              "(0: never)"),
        Param("rounding", "rne", ("rne", "rna", "rtz", "rup", "rdn"), "rounding into the output format"),
        Param("overflow", lambda f: None, ("saturate", "inf", "nan"), "output overflow; default: the output "
              "format's natural mode"),
    ),
    "matrix multiply of A (MxK) and B (KxN) codes with block scales, a named accumulator model and one rounding "
    "into the output format (the last format)",
    _scaled_mm_validate,
))


# ------------------------------------------------------------------ the fma op (refarith.exact.ops.fma)
def _fma_default_overflow(fmts: tuple) -> str:
    from refarith.exact.rounding import cast_default_overflow

    return cast_default_overflow(fmts[0])


def _fma_validate(spec: Spec) -> None:
    if not spec.fmt(0).signed:
        raise SpecError(f"{spec}: fma is defined for signed float formats only")
    check_sr_params(spec)


register_op(OpSchema(
    "fma", 1,
    (
        Param("rounding", "rne", ("rne", "rna", "rtz", "rup", "rdn", "rto", "sr"),
              "rounding mode (sr: the exact a * b + c rounded once, one random integer per fma)"),
        Param("overflow", _fma_default_overflow, ("saturate", "inf", "nan", "satnone", "satfinite", "satpropagate"),
              "overflow mode, as for add; default: the format's natural non-saturating behaviour"),
        Param("nan", "error", ("error", "zero", "max"), "invalid result into a format without NaN",
              lambda fmts: not fmts[0].has_nan),
        *SR_PARAMS,
    ),
    "IEEE 754 fusedMultiplyAdd a * b + c of three codes of one signed float format, one rounding "
    "(refarith.exact.ops.fma)",
    _fma_validate,
))
