"""Per-operation drivers: what the golden vectors, the certifier and identify need to know about an op.

A driver tells, for a spec of its op: the input formats (one code per operand),
the output format, the exact reference for one vector (``None`` where the spec
raises, i.e. the input lies outside its domain), the boundary inputs, seeded
random inputs, the mismatch class of a vector, and the variant parameters that
``identify`` enumerates.  Op authors extend the registry with
:func:`register_driver`; everything above this module is driven by spec ids.

This module also declares the element-wise arithmetic ops ``add``, ``sub``,
``mul`` and ``div`` of one format (IEEE 754 correctly rounded, via
:mod:`refarith.exact.ops`) when no other layer has declared them.
"""

from __future__ import annotations

import importlib
import itertools
import pkgutil
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from refarith.errors import RefarithError, SpecError
from refarith.exact import ops as _ops
from refarith.exact.rounding import DETERMINISTIC_MODES, cast_default_overflow, default_negative
from refarith.exact.value import Value
from refarith.formats import FloatFormat, IntFormat, is_p3109
from refarith.spec import SR_PARAMS, OpSchema, Param, Spec, check_sr_params, ops, parse_spec, register_op

CLASSES = ("in_range", "overflow", "nan_inf", "subnormal", "signed_zero", "nan_payload", "off_grid")
"""Mismatch classes, in report order.  ``nan_payload``: both results NaN, different codes; ``off_grid``: a kernel
returning values gave one that is not a value of the result's format (refarith.certify.values)."""

Vector = tuple[int, ...]
"""One vector: a flat tuple of codes, one per column (operand columns in order, a width-w operand as w columns)."""


@dataclass(frozen=True)
class Operand:
    """A named operand or result of an op: ``width`` codes of ``fmt`` (a block, a row, a flattened matrix).

    Kernels receive an operand of width 1 as a 1-D array of n codes and a wider one as an (n, width) array;
    they return results the same way.
    """

    name: str
    fmt: object
    width: int = 1


def flatten(operands: tuple[Operand, ...]) -> tuple:
    """The format of every column of a list of operands."""
    return tuple(o.fmt for o in operands for _ in range(o.width))


def describe(operands: tuple[Operand, ...]) -> str:
    """Header notation of operands: ``name:format`` or ``name:format*width``, space separated."""
    return " ".join(f"{o.name}:{o.fmt.name}" + (f"*{o.width}" if o.width != 1 else "") for o in operands)


@dataclass(frozen=True)
class Driver:
    """How to enumerate, compute, classify and run the vectors of one op (see the module docstring).

    ``exact`` maps a vector of input codes to the tuple of output codes (``None`` where the spec raises);
    ``classify`` gets the input vector and the kernel's output tuple of a mismatching vector; ``fast`` runs
    refarith's own numpy/torch kernel on operand arrays (``backend`` "numpy" or "torch") and returns one array
    per result operand; ``random`` draws seeded random vectors (default: uniform codes per column);
    ``random_count`` overrides the number of random golden vectors (wide vectors make big files).
    """

    op: str
    inputs: Callable[[Spec], tuple[Operand, ...]]
    outputs: Callable[[Spec], tuple[Operand, ...]]
    exact: Callable[[Spec, Vector], Vector | None]
    boundary: Callable[[Spec], list[Vector]]
    classify: Callable[[Spec, Vector, Vector], str] | None = None
    variant_params: Callable[[Spec], dict[str, tuple[str, ...]]] = field(default=lambda s: {})
    exhaustive_limit: int = 1 << 16
    within_bound: Callable[[Spec, Vector, Vector, Vector], bool] | None = None
    """For approximate ops: (spec, inputs, expected, got) -> True when got is within the op's declared bound."""
    random: Callable[[Spec, int, int], list[Vector]] | None = None
    random_count: int | Callable[[Spec], int] | None = None
    fast: Callable[[Spec, tuple, str], tuple] | None = None
    backends: tuple[str, ...] = ("numpy", "torch")
    """The backends ``fast`` runs on."""
    doc: str = ""

    def input_formats(self, spec: Spec) -> tuple:
        return flatten(self.inputs(spec))

    def output_formats(self, spec: Spec) -> tuple:
        return flatten(self.outputs(spec))

    def domain_size(self, spec: Spec) -> int:
        n = 1
        for f in self.input_formats(spec):
            n *= f.ncodes
        return n

    def exhaustive_ok(self, spec: Spec) -> bool:
        return self.domain_size(spec) <= self.exhaustive_limit

    def all_inputs(self, spec: Spec) -> list[Vector]:
        """Every input vector, in lexicographic code order."""
        return list(itertools.product(*(range(f.ncodes) for f in self.input_formats(spec))))

    def random_inputs(self, spec: Spec, n: int, seed: int) -> list[Vector]:
        """``n`` random input vectors from ``random.Random(seed)`` (reproducible)."""
        if self.random is not None:
            return self.random(spec, n, seed)
        rng = random.Random(seed)
        fmts = self.input_formats(spec)
        return [tuple(rng.randrange(f.ncodes) for f in fmts) for _ in range(n)]

    def golden_random_count(self, spec: Spec, default: int) -> int:
        """Number of random vectors in a golden file of ``spec``."""
        rc = self.random_count
        if rc is None:
            return default
        return rc(spec) if callable(rc) else rc

    def mismatch_class(self, spec: Spec, ins: Vector, got: Vector, expected: Vector | None = None) -> str:
        """The class of a mismatching vector (the driver's own rule, else :func:`generic_classify`); ``expected``:
        the exact outputs when the caller already has them (a verified golden line), else they are computed."""
        if self.classify is not None:
            return self.classify(spec, ins, got)
        return generic_classify(self, spec, ins, got, expected)

    def variants(self, spec: Spec, vary: tuple[str, ...] | None = None) -> list[Spec]:
        """Every spec that differs from ``spec`` only in the driver's variant parameters (only those named in
        ``vary`` when given; SpecError for a name that is not a variant parameter of the op)."""
        vp = self.variant_params(spec)
        if vary is not None:
            unknown = [k for k in vary if k not in vp]
            if unknown:
                raise SpecError(f"{spec.op} has no variant parameter {', '.join(unknown)}; it varies "
                                f"{', '.join(vp) or 'nothing'}")
            vp = {k: v for k, v in vp.items() if k in vary}
        if not vp:
            return [spec]
        keys = list(vp)
        out = []
        base = dict(spec.params)
        for combo in itertools.product(*(vp[k] for k in keys)):
            p = dict(base)
            p.update(zip(keys, combo))
            p = {k: v for k, v in p.items() if v != ""}  # "": the parameter absent (its documented default)
            try:
                out.append(parse_spec(_spec_text(spec.op, spec.formats, p)))
            except RefarithError:
                continue
        return list(dict.fromkeys(out))


def _spec_text(op: str, formats: tuple[str, ...], params: dict[str, str]) -> str:
    inner = ",".join(x for x in ("->".join(formats), ",".join(f"{k}={v}" for k, v in params.items())) if x)
    return f"{op}({inner})"


_DRIVERS: dict[str, Driver] = {}
_LOADED = False


def register_driver(driver: Driver) -> Driver:
    """Declare (or replace) the driver of an op."""
    _DRIVERS[driver.op] = driver
    return driver


def load_all() -> None:
    """Import every module of :mod:`refarith.golden.opdrivers` (each registers the drivers of its ops)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from refarith.golden import opdrivers

    for mod in sorted(pkgutil.iter_modules(opdrivers.__path__), key=lambda m: m.name):
        importlib.import_module(f"refarith.golden.opdrivers.{mod.name}")


def get_driver(spec: Spec | str) -> Driver:
    """The driver of a spec's op; SpecError when the op has none."""
    load_all()
    op = parse_spec(spec).op if not isinstance(spec, Spec) else spec.op
    if op not in _DRIVERS:
        raise SpecError(f"no vector driver for operation {op!r}; drivers exist for {', '.join(sorted(_DRIVERS))}")
    return _DRIVERS[op]


def drivers() -> dict[str, Driver]:
    load_all()
    return dict(_DRIVERS)


# ------------------------------------------------------------------ helpers on codes
def value_of(fmt, code: int) -> Value:
    return _ops.decode(code, fmt)


def is_nan_code(fmt, code: int) -> bool:
    return isinstance(fmt, FloatFormat) and fmt.is_nan_code(code)


def is_inf_code(fmt, code: int) -> bool:
    return isinstance(fmt, FloatFormat) and code in fmt.inf_codes


def is_zero_code(fmt, code: int) -> bool:
    if isinstance(fmt, IntFormat):
        return fmt.value(code) == 0
    return fmt.is_finite_code(code) and fmt.has_zero and fmt.finite_value(code) == 0


def magnitude_key(fmt, code: int) -> tuple[int, Fraction]:
    """Sort key ordering inputs by magnitude: finite by |value|, then inf, then NaN."""
    v = value_of(fmt, code)
    if v.is_nan:
        return (2, Fraction(code))
    if v.is_inf:
        return (1, Fraction(0))
    return (0, v.mag)


def _rounding_kw(spec: Spec, rand: int | None = None) -> dict:
    """Keyword arguments of the exact model for ``spec``; for ``rounding=sr`` the vector's random integer ``rand``
    (its ``r`` column, see :func:`sr_operand`), ``k`` and the variant."""
    p = spec.param
    if p.get("rounding") == "sr":
        if rand is None:
            raise SpecError(f"{spec}: stochastic rounding needs random bits per vector (an r column); this op's "
                            "driver has none")
        kw = dict(rounding="sr", overflow=p.get("overflow"), rand=rand, rand_bits=int(p["k"]),
                  sr_variant=p.get("sr", "a"))
        if "nan" in p:
            kw["nan_policy"] = p["nan"]
        if "negative" in p:
            kw["negative"] = p["negative"]
        return kw
    kw = dict(rounding=p.get("rounding", "rne"), overflow=p.get("overflow"))
    if "nan" in p:
        kw["nan_policy"] = p["nan"]
    if "negative" in p:
        kw["negative"] = p["negative"]
    if "subnormal" in p:
        kw["subnormal"] = p["subnormal"]
    return kw


def _neighbours(fmt: FloatFormat, code: int, k: int = 1) -> list[int]:
    return [c for c in range(code - k, code + k + 1) if 0 <= c < fmt.ncodes]


def _code_of(fmt: FloatFormat, x: Fraction, sign: int = 0) -> int | None:
    """Code of the value nearest to x (rne, saturating) in ``fmt``, or None if it is out of range."""
    if isinstance(fmt, IntFormat):
        return None
    if x > fmt.max:
        return None
    v = Value("finite", sign, x)
    try:
        return _ops.encode(v, fmt, "rne", "saturate", nan_policy="zero", negative="clamp").code
    except RefarithError:
        return None


def float_boundaries(src: FloatFormat, dst_values: list[Fraction], dst_max: Fraction | None,
                     dst_min_normal: Fraction | None) -> list[int]:
    """Boundary codes of ``src`` for an op whose result lands on ``dst_values``.

    Signed zeros, smallest/largest subnormal and smallest normal of ``src`` and
    their neighbours, ±inf, NaNs (quiet, signalling, both signs, payload
    extremes), every destination value and its two neighbours, every midpoint of
    consecutive destination values and its neighbours, the overflow threshold
    (max + half the last step) and its neighbours, every power of two of ``src``
    with its neighbours, and the just-below-power-of-two values 2^k - ulp.
    """
    out: set[int] = set()
    sm = src.sign_mask

    def add(c: int | None, k: int = 1) -> None:
        if c is None:
            return
        for n in _neighbours(src, c, k):
            out.add(n)
            if src.signed:
                out.add(n ^ sm)

    add(0)
    if src.subnormals and src.mbits:
        add(1)
        add((1 << src.mbits) - 1)
        add(1 << src.mbits)
    add(src.max_code)
    for c in src.inf_codes:
        add(c)
    if src.specials == "ieee":
        e = src.emask << src.mbits
        for m in (1, 2, src.mmask, 1 << (src.mbits - 1), (1 << (src.mbits - 1)) + 1):
            if 0 < m <= src.mmask:
                out.add(e | m)
                out.add(sm | e | m)
    else:
        out.update(src.nan_codes)
    vals = sorted(set(dst_values))
    for v in vals:
        add(_code_of(src, v))
    for a, b in zip(vals, vals[1:]):
        add(_code_of(src, (a + b) / 2))
    if dst_max is not None and len(vals) >= 2:
        step = vals[-1] - vals[-2]
        add(_code_of(src, dst_max + step / 2))
        add(_code_of(src, dst_max + step))
    if dst_min_normal is not None:
        add(_code_of(src, dst_min_normal))
    for e in range(src.emin - src.mbits, src.emax + 1):
        add(_code_of(src, Fraction(2) ** e))
    return sorted(out)


# ------------------------------------------------------------------ generic classification
def is_max_code(fmt, code: int) -> bool:
    """Whether ``code`` is +-max finite of a float format or the min/max of an integer format (saturation)."""
    if isinstance(fmt, IntFormat):
        return fmt.value(code) in (fmt.min, fmt.max)
    return fmt.is_finite_code(code) and abs(fmt.finite_value(code)) == fmt.max


def is_subnormal_code(fmt, code: int) -> bool:
    if not isinstance(fmt, FloatFormat) or not fmt.is_finite_code(code):
        return False
    v = abs(fmt.finite_value(code))
    return 0 < v < fmt.min_normal


def generic_classify(driver: Driver, spec: Spec, ins: Vector, got: Vector, expected: Vector | None = None) -> str:
    """Class of a mismatching vector of any op, from the columns that differ.

    Every differing column NaN on both sides: ``nan_payload``; every one a zero on both sides: ``signed_zero``;
    else a NaN/inf input: ``nan_inf``; a differing expected column at inf/NaN or at the format's extreme
    (saturation): ``overflow``; a subnormal input or differing expected column: ``subnormal``; else ``in_range``.
    """
    exp = driver.exact(spec, ins) if expected is None else expected
    fin, fout = driver.input_formats(spec), driver.output_formats(spec)
    if exp is None:
        return "in_range"
    cols = [i for i, (e, g) in enumerate(zip(exp, got)) if e != g]
    if cols and all(is_nan_code(fout[i], exp[i]) and is_nan_code(fout[i], got[i]) for i in cols):
        return "nan_payload"
    if cols and all(is_zero_code(fout[i], exp[i]) and is_zero_code(fout[i], got[i]) for i in cols):
        return "signed_zero"
    if any(is_nan_code(f, c) or is_inf_code(f, c) for f, c in zip(fin, ins)):
        return "nan_inf"
    if any(is_nan_code(fout[i], exp[i]) or is_inf_code(fout[i], exp[i]) or is_max_code(fout[i], exp[i])
           for i in cols):
        return "overflow"
    if any(is_subnormal_code(f, c) for f, c in zip(fin, ins)) or any(is_subnormal_code(fout[i], exp[i])
                                                                        for i in cols):
        return "subnormal"
    return "in_range"


def single(fn: Callable[[Spec, Vector], int | None]) -> Callable[[Spec, Vector], Vector | None]:
    """Adapt a one-result exact function (code or None) to the driver convention (1-tuple or None)."""
    def exact(spec: Spec, ins: Vector) -> Vector | None:
        r = fn(spec, ins)
        return None if r is None else (r,)
    return exact


def _classify_result(fmt, expected: int | None, got: int | None) -> str | None:
    if expected is None or got is None:
        return None
    if is_nan_code(fmt, expected) and is_nan_code(fmt, got):
        return "nan_payload"
    if is_zero_code(fmt, expected) and is_zero_code(fmt, got):
        return "signed_zero"
    return None


# ------------------------------------------------------------------ stochastic rounding: the r column
def is_sr(spec: Spec) -> bool:
    """Whether the spec rounds stochastically (its vectors then carry one k-bit random integer each)."""
    return spec.param.get("rounding") == "sr"


def sr_operand(spec: Spec) -> tuple[Operand, ...]:
    """The random-integer operand ``r:uint<k>`` of a stochastic spec (last input column), else nothing."""
    if not is_sr(spec):
        return ()
    from refarith.formats import get_format

    return (Operand("r", get_format(f"uint{int(spec.param['k'])}")),)


def sr_rand_values(spec: Spec) -> list[int]:
    """Random integers every boundary input is paired with: 0, 2^(k-1) and 2^k - 1 (never, half and always
    rounding up a fraction of exactly one half of the last random bit's weight and above)."""
    k = int(spec.param["k"])
    return sorted({0, 1 << (k - 1), (1 << k) - 1})


def with_sr_column(spec: Spec, vectors: list[Vector], limit: int | None = None) -> list[Vector]:
    """Boundary vectors of a stochastic spec: each input vector (the first ``limit``) with every
    :func:`sr_rand_values` value appended; the vectors unchanged for a deterministic spec."""
    if not is_sr(spec):
        return vectors
    vs = vectors if limit is None else vectors[:limit]
    return [v + (r,) for v in vs for r in sr_rand_values(spec)]


SR_GOLDEN_SPECS = tuple(
    [f"cast(ocp_e4m3->ocp_e2m1,rounding=sr,nan=max,sr={v},k=3)" for v in ("a", "b", "c", "c_odd")]
    + [f"cast(binary16->ocp_e4m3,rounding=sr,sr={v},k=4)" for v in ("a", "b", "c", "c_odd")]
    + [f"cast(binary32->ocp_e5m2,rounding=sr,sr={v},k=8)" for v in ("a", "c")]
    + ["cast(binary32->ocp_e2m1,rounding=sr,sr=te_e2m1_8,k=8)"]
    + [f"{op}(ocp_e2m1,rounding=sr,nan=max,sr={v},k=2)" for op in ("add", "mul") for v in ("a", "c")]
    + [f"add(ocp_e4m3,rounding=sr,sr={v},k=3)" for v in ("a", "c")]
    + [f"{op}(ocp_e2m1,rounding=sr,nan=max,sr={v},k=2)" for op in ("sub", "div") for v in ("a", "c")]
    + [f"sub(ocp_e4m3,rounding=sr,sr={v},k=3)" for v in ("a", "c")]
    + [f"div(ocp_e4m3,rounding=sr,sr={v},k=3)" for v in ("b", "c_odd")]
)
"""Stochastic specs of the committed golden set: every variant on an exhaustive 8-bit cast, binary16 and binary32
sources, Transformer Engine's E2M1 rule, and add/sub/mul/div with a random operand."""


# ------------------------------------------------------------------ cast
P3109_GOLDEN_SPECS = tuple(
    # the IEEE/OCP-style variants the P3109 files had as defaults before the standard's projection (satnone,
    # negative=project) became theirs: kept in the committed set
    [f"cast(binary32->binary8p{p}{s}{d},overflow={'inf' if d == 'e' else 'nan'}{',negative=error' if s == 'u' else ''})"
     for p in range(1, 8) for s in "su" for d in "ef"]
    + [f"cast({src}->{dst})" for src in ("binary16", "bfloat16")
       for dst in ("binary8p3se,overflow=inf", "binary8p4se,overflow=inf", "binary8p3sf,overflow=nan",
                   "binary8p4ue,overflow=inf,negative=error")]
    # the projection modes where they differ from rne/satnone
    + [f"cast(binary32->{d},rounding=rto)" for d in ("binary8p4se", "binary8p4ue", "binary8p4sf", "binary8p4uf")]
    + ["cast(binary32->binary8p4se,overflow=satpropagate)", "cast(binary32->binary8p4ue,overflow=satfinite)",
       "cast(binary32->binary8p4se,rounding=rtz)", "cast(binary32->binary8p4ue,rounding=rup)",
       "cast(binary32->ocp_e5m2,rounding=rto,overflow=satnone)", "cast(binary32->e8m0,negative=nan)"]
    # arithmetic at the standard's projection (satnone; negative=project into an unsigned format)
    + ["add(binary8p4se)", "sub(binary8p4ue)"]
)
"""P3109 specs of the committed golden set besides the loop over every <= 8-bit target at its default (for P3109
targets now the standard's projection)."""


def _cast_exact(spec: Spec, codes: Vector) -> int | None:
    src, dst = spec.fmt(0), spec.fmt(1)
    try:
        return _ops.cast(codes[0], src, dst, **_rounding_kw(spec, codes[1] if is_sr(spec) else None)).code
    except SpecError:
        raise
    except RefarithError:
        return None


def _dst_values(dst) -> tuple[list[Fraction], Fraction | None, Fraction | None]:
    if isinstance(dst, IntFormat):
        lo, hi = dst.min, dst.max
        if hi - lo > 1 << 12:
            vals = [Fraction(v) for v in range(-64, 65) if lo <= v <= hi] + [Fraction(lo), Fraction(hi)]
        else:
            vals = [Fraction(v) for v in range(lo, hi + 1)]
        return [abs(v) for v in vals], Fraction(max(hi, -lo)), None
    if dst.nbits <= 16:
        vals = [dst.finite_value(c) for c in range(dst.ncodes) if dst.is_finite_code(c)]
    else:
        vals = [Fraction(2) ** e for e in range(dst.emin - dst.mbits, dst.emax + 1)] + [dst.max]
    return sorted({abs(v) for v in vals}), dst.max, dst.min_normal


def _cast_boundary(spec: Spec) -> list[Vector]:
    src, dst = spec.fmt(0), spec.fmt(1)
    if isinstance(src, IntFormat):
        n = src.ncodes
        cs = set(range(min(n, 1024))) | set(range(max(0, n - 1024), n))
        return with_sr_column(spec, [(c,) for c in sorted(cs)], 256)
    vals, mx, mn = _dst_values(dst)
    return with_sr_column(spec, [(c,) for c in float_boundaries(src, vals, mx, mn)])


def _cast_classify(spec: Spec, codes: Vector, got: Vector) -> str:
    """Class of a mismatching vector: by the results first (NaN payload, signed zero), then by the input."""
    src, dst = spec.fmt(0), spec.fmt(1)
    expected = _cast_exact(spec, codes)
    c = _classify_result(dst, expected, got[0])
    if c:
        return c
    v = value_of(src, codes[0])
    if not v.is_finite or (expected is not None and (is_nan_code(dst, expected) or is_inf_code(dst, expected))):
        return "overflow" if v.is_finite else "nan_inf"
    if isinstance(dst, IntFormat):
        return "overflow" if v.mag > max(dst.max, -dst.min) else "in_range"
    if v.mag > dst.max:
        return "overflow"
    if v.mag < dst.min_normal:
        return "subnormal"
    return "in_range"


def _cast_variants(spec: Spec) -> dict[str, tuple[str, ...]]:
    dst = spec.fmt(1)
    if is_sr(spec):  # the stochastic variants (the same k and r column); the other parameters as given
        from refarith.exact.stochastic import SR_VARIANTS

        return {"sr": SR_VARIANTS}
    out: dict[str, tuple[str, ...]] = {"rounding": DETERMINISTIC_MODES}
    if isinstance(dst, IntFormat):
        out["overflow"] = ("saturate", "wrap")
    else:
        ov = ["saturate"]
        if dst.has_inf:
            ov.append("inf")
        if dst.has_nan:
            ov.append("nan")
        # P3109 §4.7.5 saturation modes: all three for P3109 targets; elsewhere satpropagate (finite values
        # saturate, infinities stay), the one that differs from the modes above in every rounding mode (satnone
        # differs from inf only under rto and would co-match it in every other mode)
        if is_p3109(dst):
            ov += ["satnone", "satfinite", "satpropagate"]
        elif dst.has_inf:
            ov += ["satpropagate"]
        # deployed libraries' modes (refarith.exact.rounding); the spec rejects the roundings under which
        # inf_always / nan_rto equal inf / nan, so no variant co-matches its twin
        ov += [m for m, ok in (("inf_always", dst.has_inf), ("nan_rto", dst.has_nan),
                               ("saturate_inf_nan", dst.has_nan)) if ok]
        out["overflow"] = tuple(ov)
    if "nan" in spec.param:
        out["nan"] = ("error", "zero", "max")
    if "negative" in spec.param:
        out["negative"] = ("error", "clamp", "nan", "project") if dst.has_nan else ("error", "clamp", "project")
    if any(isinstance(f, FloatFormat) and f.subnormals for f in (spec.fmt(0), dst)):
        out["subnormal"] = ("", "daz", "ftz", "daz_ftz")  # "": gradual underflow
    return out


def _cast_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith import fast

    p = spec.param
    if is_sr(spec):
        from refarith.fast.cast import encode

        return (encode(inputs[0], spec.formats[1], rounding="sr", overflow=p["overflow"],
                       nan_policy=p.get("nan", "error"), negative=p.get("negative", "error"), backend=backend,
                       src=spec.formats[0], rand=inputs[1], rand_bits=int(p["k"]), sr_variant=p.get("sr", "a")),)
    return (fast.encode(inputs[0], spec.formats[1], rounding=p["rounding"], overflow=p["overflow"],
                        nan_policy=p.get("nan", "error"), negative=p.get("negative", "error"), backend=backend,
                        src=spec.formats[0], subnormal=p.get("subnormal")),)


register_driver(Driver(
    "cast",
    inputs=lambda s: (Operand("x", s.fmt(0)),) + sr_operand(s),
    outputs=lambda s: (Operand("y", s.fmt(1)),),
    exact=single(_cast_exact),
    boundary=_cast_boundary,
    classify=_cast_classify,
    variant_params=_cast_variants,
    fast=_cast_fast,
    backends=("numpy", "torch", "triton"),
    doc="one code of the source format -> one code of the destination (rounding=sr: and the random integer r)",
))


# ------------------------------------------------------------------ element-wise arithmetic of one format
def _arith_default_overflow(fmts: tuple) -> str:
    return cast_default_overflow(fmts[0])


def _arith_default_negative(fmts: tuple) -> str:
    return default_negative(fmts[0])


def _arith_lacks_nan(fmts: tuple) -> bool:
    return not fmts[0].has_nan


def _arith_unsigned(fmts: tuple) -> bool:
    return not fmts[0].signed


_ARITH = {"add": _ops.add, "sub": _ops.sub, "mul": _ops.mul, "div": _ops.div}

for _name in _ARITH:
    if _name not in ops():
        register_op(OpSchema(
            _name, 1,
            (
                Param("rounding", "rne", DETERMINISTIC_MODES + ("sr",), "rounding mode"),
                Param("overflow", _arith_default_overflow, ("saturate", "inf", "nan", "satnone", "satfinite",
                                                            "satpropagate"),
                      "overflow mode, as for cast; default: satnone (the standard's projection) for P3109 "
                      "formats, else the format's natural non-saturating behaviour"),
                Param("nan", "error", ("error", "zero", "max"), "invalid result into a format without NaN",
                      _arith_lacks_nan),
                Param("negative", _arith_default_negative, ("error", "clamp", "nan", "project"),
                      "a negative result in an unsigned format, as for cast; default: project for P3109 formats",
                      _arith_unsigned),
                *SR_PARAMS,
            ),
            f"IEEE 754 correctly rounded {_name} of two codes of one format (refarith.exact.ops.{_name})",
            check_sr_params,
        ))


def _arith_exact(spec: Spec, codes: Vector) -> int | None:
    f = spec.fmt(0)
    try:
        return _ARITH[spec.op](codes[0], codes[1], f, **_rounding_kw(spec, codes[2] if is_sr(spec) else None)).code
    except SpecError:
        raise
    except RefarithError:
        return None


def binary_boundary(spec: Spec) -> list[Vector]:
    """Every pair of codes for formats of <= 8 bits, else all pairs of up to 160 boundary codes."""
    f = spec.fmt(0)
    if is_sr(spec):  # 24 boundary codes of each operand, each pair with every sr_rand_values value
        vals, mx, mn = _dst_values(f) if f.nbits <= 16 else ([], None, None)
        cs = float_boundaries(f, vals[:8] + vals[-8:], mx, mn)
        cs = cs[:12] + cs[-12:]
        return with_sr_column(spec, [(a, b) for a in cs for b in cs])
    if f.ncodes <= 256:
        return [(a, b) for a in range(f.ncodes) for b in range(f.ncodes)]
    vals, mx, mn = _dst_values(f) if f.nbits <= 16 else ([], None, None)
    cs = float_boundaries(f, vals[:64] + vals[-64:], mx, mn)[:160]
    return [(a, b) for a in cs for b in cs]


def _arith_classify(spec: Spec, codes: Vector, got: Vector) -> str:
    f = spec.fmt(0)
    expected = _arith_exact(spec, codes)
    c = _classify_result(f, expected, got[0])
    if c:
        return c
    vs = [value_of(f, x) for x in codes]
    if any(not v.is_finite for v in vs):
        return "nan_inf"
    r = {"add": _ops.exact_add(vs[0], vs[1]), "sub": _ops.exact_add(vs[0], -vs[1]),
         "mul": _ops.exact_mul(vs[0], vs[1]), "div": _ops.exact_div(vs[0], vs[1])}[spec.op]
    return exact_result_class(f, r)


def exact_result_class(fmt, r: Value) -> str:
    """The mismatch class of a vector by its exact, unrounded result in fmt: nan_inf, overflow (beyond the
    largest finite), subnormal (below the smallest normal) or in_range."""
    if not r.is_finite:
        return "nan_inf"
    if r.mag > fmt.max:
        return "overflow"
    if r.mag < fmt.min_normal:
        return "subnormal"
    return "in_range"


def _arith_variants(spec: Spec) -> dict[str, tuple[str, ...]]:
    f = spec.fmt(0)
    if is_sr(spec):
        from refarith.exact.stochastic import SR_VARIANTS

        return {"sr": SR_VARIANTS}
    ov = ["saturate"] + (["inf"] if f.has_inf else []) + (["nan"] if f.has_nan else [])
    if is_p3109(f):
        ov += ["satnone", "satfinite", "satpropagate"]
    out: dict[str, tuple[str, ...]] = {"rounding": DETERMINISTIC_MODES, "overflow": tuple(ov)}
    if "nan" in spec.param:
        out["nan"] = ("error", "zero", "max")
    if "negative" in spec.param:
        out["negative"] = ("error", "clamp", "nan", "project")
    return out


def _arith_fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast.arith import arith

    p = spec.param
    if is_sr(spec):
        return (arith(spec.op, inputs[0], inputs[1], spec.formats[0], rounding="sr", overflow=p["overflow"],
                      nan_policy=p.get("nan", "error"), negative=p.get("negative"), backend=backend,
                      rand=inputs[2], rand_bits=int(p["k"]), sr_variant=p.get("sr", "a")),)
    return (arith(spec.op, inputs[0], inputs[1], spec.formats[0], rounding=p["rounding"], overflow=p["overflow"],
                  nan_policy=p.get("nan", "error"), negative=p.get("negative"), backend=backend),)


for _name in _ARITH:
    register_driver(Driver(
        _name,
        inputs=lambda s: (Operand("a", s.fmt(0)), Operand("b", s.fmt(0))) + sr_operand(s),
        outputs=lambda s: (Operand("y", s.fmt(0)),),
        exact=single(_arith_exact),
        boundary=binary_boundary,
        classify=_arith_classify,
        variant_params=_arith_variants,
        fast=_arith_fast,
        backends=("numpy", "torch", "triton"),
        doc="two codes of the format -> one code, correctly rounded (fast kernel: signed formats whose sums are "
            "exact in binary64, see refarith.fast.arith; triton: refarith.fast.arithbits)",
    ))


# ------------------------------------------------------------------ schema-declared variants (any op)
def schema_variants(spec: Spec, exclude: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Every parameter of the spec's op that declares a finite set of choices, with those choices."""
    out: dict[str, tuple[str, ...]] = {}
    schema = ops()[spec.op]
    present = dict(spec.params)
    for p in schema.params:
        if p.choices is not None and p.name in present and p.name not in exclude:
            out[p.name] = tuple(p.choices)
    return out
