"""Scaled matrix multiplies with named accumulator models, exactly.

``scaled_mm(F->O,...)`` (or ``FA->FB->O``) multiplies A (M x K codes of FA) by B (K x N codes of FB).

Scales (``scale=``; every scale is given as codes of its scale format and decoded exactly):

* ``none``: no scales.  ``tensor``: one scale per operand; ``row``: one per row of A (shape M) and one per
  column of B (shape N).  These are applied in the epilogue: D_ij = round_O(sa_i * sb_j * S_ij), where S_ij is
  the accumulator's result (torch ``_scaled_mm`` semantics).
* ``block`` (DeepSeek-V3, arXiv 2412.19437 §3.3.1): A has one scale per row and K-block of length ``block``
  (shape M x K/block, "1x128 tiles"); B one per ``block`` x ``block`` block (``bscale=square``, shape
  K/block x N/block, "128x128 blocks") or per K-block and column (``bscale=col``, shape K/block x N).
  ``scale_fmt`` binary32 (default) or ue8m0 (power-of-two scales, the successors' UE8M0 recipe).
* ``mx`` (OCP MX v1.0 §6.3, the dot product of MX vectors): E8M0 scales, one per 32 elements of K of each row of
  A (M x K/32) and each column of B (K/32 x N); a NaN scale (0xFF) makes its block NaN.
* ``nvfp4``: UE4M3 block scales along K (blocks of 16, shapes M x K/16 and K/16 x N) plus one binary32 tensor
  scale per operand applied in the epilogue; a NaN block scale (0x7F) makes its block NaN.

Block scales multiply each product exactly: p_k = (a_ik * sa) * (b_kj * sb) with the scales of k's block.
The accumulator model sums p_0 .. p_{K-1}; every model starts from +0, so an exactly zero sum is +0.
Accumulator models (``accum=``; acc = accumulator format, default binary32, every step rounded to nearest even
unless stated; IEEE 754 special rules; sources in docs/gemm.md):

* ``exact``: the exact sum, rounded once (exact-then-round).
* ``sequential``: s = fl(s + fl(p_k)): each product rounded into acc, then added (non-fused multiply-add).
* ``fma_chain``: s = fl(s + p_k): one rounding per fused multiply-add.
* ``pairwise``: the leaves fl(p_k), sum(lo:hi) = fl(sum(lo:mid) + sum(mid:hi)), mid = lo + (hi - lo) // 2.
* ``blocked`` (``nb``): fma_chain within consecutive blocks of nb from +0; block sums added in order into acc.
* ``split_k`` (``splits`` = s, K % s == 0): s contiguous chunks, each an fma_chain from +0; partials added in order.
* ``kahan``: compensated summation in acc of the leaves fl(p_k) (Kahan 1965; Higham, ASNA §4.3).
* ``tensor_core`` (``g``, ``b``, ``tc_round``, ``n_c``): the tensor-core accumulator t (format acc) takes groups
  of g consecutive products; for a group, E = the largest floor(log2 |x|) over the non-zero terms among t and
  the g products, each term is rounded (``tc_round``: rtz = truncation, or rne) to a multiple of 2^(E - b), the
  aligned terms are summed exactly and the sum is rounded into acc with ``tc_round`` (Fasi, Higham, Mikaitis,
  Pranesh 2021).  A non-finite term makes the group's sum the IEEE sum.  ``n_c`` > 0: after every n_c elements
  of K (n_c % g == 0), t is added into a binary32 accumulator f with RNE and reset to +0 (DeepSeek-V3 §3.3.2);
  the result is f + t.  ``n_c`` = 0: the result is t.
* Presets (named tensor_core parameter sets): ``volta_tc`` / ``turing_tc`` (g=4), ``ampere_tc`` (g=8): b=23,
  rtz, n_c=0 (Fasi et al. 2021: products exact, alignment to the largest magnitude with truncation, binary32
  normalisation toward zero); ``hopper_fp8`` g=32, b=13, rtz, n_c=0 (DeepSeek-V3 §3.3.2: "around 14 bits" of
  accumulation precision on H800; g=32 is one FP8 WGMMA k-step, our choice); ``deepseek_v3``: hopper_fp8 with
  n_c=128 (promotion to CUDA-core FP32 every 128 elements, "4 WGMMAs").

The output is D_ij = round_value(e_ij * S_ij, O, ``rounding``, ``overflow``) with e_ij the epilogue scale
(1 for none/block/mx), once.  A NaN result is O's canonical NaN.  The exact sum is computed over Fractions
(exact rationals); the fast kernel (:mod:`refarith.fast.gemm`) uses integers, with its bound argued there.
"""

from __future__ import annotations

from fractions import Fraction

from refarith.errors import BadValueError, RefarithError, SpecError
from refarith.exact.ops import decode, exact_add, exact_mul
from refarith.exact.rounding import Rounded, default_overflow, floor_log2, pow2, round_value
from refarith.exact.value import Value
from refarith.formats import FloatFormat, get_format
from refarith.spec import Spec, parse_spec

MODELS = ("exact", "sequential", "fma_chain", "pairwise", "blocked", "split_k", "kahan", "tensor_core")
PRESETS: dict[str, dict[str, str]] = {
    "volta_tc": {"g": "4", "b": "23", "tc_round": "rtz", "n_c": "0"},
    "turing_tc": {"g": "4", "b": "23", "tc_round": "rtz", "n_c": "0"},
    "ampere_tc": {"g": "8", "b": "23", "tc_round": "rtz", "n_c": "0"},
    "hopper_fp8": {"g": "32", "b": "13", "tc_round": "rtz", "n_c": "0"},
    "deepseek_v3": {"g": "32", "b": "13", "tc_round": "rtz", "n_c": "128"},
}
ACCUMS = MODELS + tuple(PRESETS)
GRANULARITIES = ("none", "tensor", "row", "block", "mx", "nvfp4")
_BLOCK = {"block": 128, "mx": 32, "nvfp4": 16}
_MODEL_PARAMS = {"blocked": ("nb",), "split_k": ("splits",), "tensor_core": ("g", "b", "tc_round", "n_c")}


def model_params(spec: Spec | str) -> tuple[str, dict[str, object]]:
    """The accumulator model of a spec and its parameters, presets expanded (ints, tc_round a mode name)."""
    spec = parse_spec(spec)
    p = spec.param
    name = p["accum"]
    if name in PRESETS:
        q = dict(PRESETS[name])
        return "tensor_core", {"g": int(q["g"]), "b": int(q["b"]), "tc_round": q["tc_round"], "n_c": int(q["n_c"])}
    out: dict[str, object] = {}
    for k in _MODEL_PARAMS.get(name, ()):
        out[k] = p[k] if k == "tc_round" else int(p[k])
    return name, out


def block_of(spec: Spec | str) -> int | None:
    """The K-block length of the spec's scales (None without block scales)."""
    spec = parse_spec(spec)
    gr = spec.param["scale"]
    if gr == "block":
        return int(spec.param.get("block", "128"))
    return _BLOCK.get(gr)


def scale_format(spec: Spec | str) -> str | None:
    """The format of the spec's (block or per-tensor/row) scale codes."""
    spec = parse_spec(spec)
    gr = spec.param["scale"]
    if gr == "none":
        return None
    if gr == "mx":
        return "e8m0"
    if gr == "nvfp4":
        return "ue4m3"
    return "e8m0" if spec.param.get("scale_fmt") == "ue8m0" else "binary32"


def validate_spec(spec: Spec) -> None:
    """Check a scaled_mm spec's parameters (raises SpecError naming the parameter)."""
    p = spec.param
    fmts = [spec.fmt(i) for i in range(len(spec.formats))]
    for i, f in enumerate(fmts):
        if not isinstance(f, FloatFormat):
            raise SpecError(f"{spec}: scaled_mm formats must be float formats, got {spec.formats[i]}")
        if i < len(fmts) - 1 and f.nbits > 16:
            raise SpecError(f"{spec}: input format {f.name} is wider than 16 bits")
    gr = p["scale"]
    if "block" in p and gr != "block":
        raise SpecError(f"{spec}: block applies to scale=block only (mx uses 32, nvfp4 16)")
    if "bscale" in p and gr != "block":
        raise SpecError(f"{spec}: bscale applies to scale=block only")
    if "scale_fmt" in p and gr not in ("tensor", "row", "block"):
        raise SpecError(f"{spec}: scale_fmt applies to scale=tensor/row/block only")
    if "block" in p and (not p["block"].isdigit() or int(p["block"]) < 1):
        raise SpecError(f"{spec}: block must be a positive integer")
    name = p["accum"]
    if name not in ACCUMS:
        raise SpecError(f"{spec}: accum={name!r} is not one of {', '.join(ACCUMS)}")
    acc = get_format(p["acc"]) if p["acc"] else None
    if not isinstance(acc, FloatFormat):
        raise SpecError(f"{spec}: acc={p['acc']!r} must be a float format")
    if acc.name != p["acc"]:
        raise SpecError(f"{spec}: acc={p['acc']!r}: use the canonical name {acc.name}")
    needed = _MODEL_PARAMS.get(name, ())
    for k in ("nb", "splits", "g", "b", "tc_round", "n_c"):
        if k in p and k not in needed:
            raise SpecError(f"{spec}: {k} does not apply to accum={name}")
        if k in needed and k not in p:
            raise SpecError(f"{spec}: accum={name} needs {k}=")
        if k in p and k != "tc_round" and not p[k].isdigit():
            raise SpecError(f"{spec}: {k} must be a non-negative integer")
    for k in ("nb", "splits", "g"):
        if k in p and int(p[k]) < 1:
            raise SpecError(f"{spec}: {k} must be positive")
    if name == "tensor_core" and int(p["n_c"]) % int(p["g"]):
        raise SpecError(f"{spec}: n_c must be a multiple of g")
    try:
        from refarith.exact.rounding import check_modes

        check_modes(fmts[-1], p["rounding"], p.get("overflow") or default_overflow(fmts[-1]))
    except RefarithError as e:
        raise SpecError(f"{spec}: {e}") from None


# ------------------------------------------------------------------ operand checks
def _shape(x: list, name: str) -> tuple[int, int]:
    if not isinstance(x, (list, tuple)) or not x or not all(isinstance(r, (list, tuple)) for r in x):
        raise BadValueError(f"operand {name} must be a non-empty 2-D array")
    n = len(x[0])
    if any(len(r) != n for r in x):
        raise BadValueError(f"operand {name} is ragged")
    return len(x), n


def scale_shapes(spec: Spec | str, m: int, k: int, n: int) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
    """Expected shapes of scale_a and scale_b for an M x K by K x N multiply (None: no scale)."""
    spec = parse_spec(spec)
    gr = spec.param["scale"]
    if gr == "none":
        return None, None
    if gr == "tensor":
        return (), ()
    if gr == "row":
        return (m,), (n,)
    bk = block_of(spec)
    assert bk is not None
    if k % bk:
        raise BadValueError(f"K = {k} is not a multiple of the scale block {bk} ({spec})")
    if gr == "block":
        if spec.param.get("bscale", "square") == "square":
            return (m, k // bk), (k // bk, -(-n // bk))
        return (m, k // bk), (k // bk, n)
    return (m, k // bk), (k // bk, n)


def _shape_of(x: object) -> tuple[int, ...]:
    if isinstance(x, (list, tuple)):
        if not x:
            return (0,)
        inner = {_shape_of(r) for r in x}
        if len(inner) != 1:
            return (-1,)
        return (len(x), *inner.pop())
    return ()


def check_operands(spec: Spec | str, a: list, b: list, scale_a: object, scale_b: object,
                   tensor_scale_a: int | None = None, tensor_scale_b: int | None = None) -> tuple[int, int, int]:
    """Raise BadValueError naming the operand for a shape mismatch, a scale of the wrong shape or a NaN/inf
    binary32/ue8m0 scale; return (M, K, N)."""
    spec = parse_spec(spec)
    m, k = _shape(a, "A")
    k2, n = _shape(b, "B")
    if k != k2:
        raise BadValueError(f"operand B has {k2} rows but A has {k} columns (K mismatch)")
    sa_shape, sb_shape = scale_shapes(spec, m, k, n)
    sfmt = scale_format(spec)
    for name, s, want in (("scale_a", scale_a, sa_shape), ("scale_b", scale_b, sb_shape)):
        if want is None:
            if s is not None:
                raise BadValueError(f"operand {name} given but {spec.param['scale']} scaling takes none")
            continue
        got = _shape_of(s)
        if got != want:
            raise BadValueError(f"operand {name} has shape {got}, expected {want} for scale={spec.param['scale']}")
        if spec.param["scale"] in ("tensor", "row", "block"):
            for c in _flat(s):
                v = decode(c, sfmt)
                if not v.is_finite:
                    raise BadValueError(f"operand {name} holds a {v} scale (code {c:#x}); scales must be finite")
    if spec.param["scale"] == "nvfp4":
        for name, t in (("tensor_scale_a", tensor_scale_a), ("tensor_scale_b", tensor_scale_b)):
            if t is None or not isinstance(t, int):
                raise BadValueError(f"operand {name} (a binary32 code) is required for scale=nvfp4")
            if not decode(t, "binary32").is_finite:
                raise BadValueError(f"operand {name} is not a finite binary32 scale")
    elif tensor_scale_a is not None or tensor_scale_b is not None:
        raise BadValueError("tensor_scale_a/tensor_scale_b apply to scale=nvfp4 only")
    name, mp = model_params(spec)
    if name == "split_k" and k % int(mp["splits"]):  # type: ignore[call-overload]
        raise BadValueError(f"K = {k} is not a multiple of splits={mp['splits']}")
    return m, k, n


def _flat(x: object) -> list[int]:
    if isinstance(x, (list, tuple)):
        return [c for r in x for c in _flat(r)]
    return [x]  # type: ignore[list-item]


# ------------------------------------------------------------------ accumulator models
def _rnd(v: Value, fmt: FloatFormat, rounding: str = "rne") -> Value:
    if v.is_nan:
        return Value.nan(0)
    return decode(round_value(v, fmt, rounding, default_overflow(fmt)).code, fmt)


def _add(x: Value, y: Value, fmt: FloatFormat, rounding: str = "rne") -> Value:
    return _rnd(exact_add(x, y), fmt, rounding)


def _sub(x: Value, y: Value, fmt: FloatFormat) -> Value:
    return _add(x, -y, fmt)


def _exact_sum(vals: list[Value]) -> Value:
    s = Value.zero(0)
    for v in vals:
        s = exact_add(s, v)
    return s


def _chain(ps: list[Value], acc: FloatFormat) -> Value:
    s = Value.zero(0)
    for q in ps:
        s = _add(s, q, acc)
    return s


def _align(v: Value, e: int, b: int, mode: str) -> Value:
    """v rounded (rtz or rne) to a multiple of 2^(e - b)."""
    if v.is_zero:
        return v
    q = v.mag / pow2(e - b)
    n = q.numerator // q.denominator
    r = q - n
    if mode == "rne" and (r > Fraction(1, 2) or (r == Fraction(1, 2) and n % 2)):
        n += 1
    return Value("finite", v.sign, n * pow2(e - b))


def _tc_group(t: Value, group: list[Value], acc: FloatFormat, b: int, mode: str) -> Value:
    terms = [t, *group]
    if not all(x.is_finite for x in terms):
        return _rnd(_exact_sum(terms), acc, mode)
    nz = [x for x in terms if not x.is_zero]
    if not nz:
        return _rnd(_exact_sum(terms), acc, mode)
    e = max(floor_log2(x.mag) for x in nz)
    return _rnd(_exact_sum([_align(x, e, b, mode) for x in terms]), acc, mode)


def accumulate(ps: list[Value], model: str, acc: FloatFormat | str = "binary32", **mp: object) -> Value:
    """The accumulator model's sum of the exact products ``ps`` (a Value; exact for ``model="exact"``)."""
    acc = get_format(acc)
    if model == "exact":
        return _exact_sum(ps)
    if model == "fma_chain":
        return _chain(ps, acc)
    leaves = [_rnd(q, acc) for q in ps]
    if model == "sequential":
        return _chain(leaves, acc)
    if model == "pairwise":
        def tree(lo: int, hi: int) -> Value:
            if hi - lo == 1:
                return leaves[lo]
            mid = lo + (hi - lo) // 2
            return _add(tree(lo, mid), tree(mid, hi), acc)

        return _add(Value.zero(0), tree(0, len(leaves)), acc) if leaves else Value.zero(0)
    if model in ("blocked", "split_k"):
        size = int(mp["nb"]) if model == "blocked" else len(ps) // int(mp["splits"])  # type: ignore[call-overload]
        total = Value.zero(0)
        for lo in range(0, len(ps), max(size, 1)):
            total = _add(total, _chain(ps[lo:lo + size], acc), acc)
        return total
    if model == "kahan":
        s = c = Value.zero(0)
        for q in leaves:
            y = _sub(q, c, acc)
            t = _add(s, y, acc)
            c = _sub(_sub(t, s, acc), y, acc)
            s = t
        return s
    if model == "tensor_core":
        g, b, mode, n_c = int(mp["g"]), int(mp["b"]), str(mp["tc_round"]), int(mp["n_c"])  # type: ignore[call-overload]
        f32 = get_format("binary32")
        t = f = Value.zero(0)
        for lo in range(0, len(ps), g):
            t = _tc_group(t, ps[lo:lo + g], acc, b, mode)
            if n_c and (lo + g) % n_c == 0:
                f = _add(f, t, f32)
                t = Value.zero(0)
        return _add(f, t, f32) if n_c else t
    raise BadValueError(f"unknown accumulator model {model!r}; expected one of {', '.join(MODELS)}")


# ------------------------------------------------------------------ the multiply
def _block_scale(s: list, i: int, j: int, fmt: str) -> Value:
    return decode(s[i][j], fmt)


def scaled_mm(spec: Spec | str, a: list[list[int]], b: list[list[int]], scale_a: object = None,
              scale_b: object = None, tensor_scale_a: int | None = None,
              tensor_scale_b: int | None = None) -> list[list[int]]:
    """D = A @ B under a ``scaled_mm`` spec: codes of the output format, M x N (module docstring: every rule)."""
    spec = parse_spec(spec)
    if spec.op != "scaled_mm":
        raise BadValueError(f"expected a scaled_mm spec, got {spec}")
    m, k, n = check_operands(spec, a, b, scale_a, scale_b, tensor_scale_a, tensor_scale_b)
    fa, fb, out = spec.fmt(0), spec.fmt(len(spec.formats) - 2), spec.fmt(len(spec.formats) - 1)
    p = spec.param
    gr = p["scale"]
    sfmt = scale_format(spec)
    bk = block_of(spec)
    square = p.get("bscale", "square") == "square"
    model, mp = model_params(spec)
    acc = get_format(p["acc"])
    overflow = p.get("overflow") or default_overflow(out)
    av = [[decode(c, fa) for c in r] for r in a]
    bv = [[decode(c, fb) for c in r] for r in b]
    if gr in ("block", "mx", "nvfp4"):
        assert bk is not None and sfmt is not None
        av = [[exact_mul(av[i][kk], _block_scale(scale_a, i, kk // bk, sfmt)) for kk in range(k)]  # type: ignore[arg-type]
              for i in range(m)]
        bv = [[exact_mul(bv[kk][j], _block_scale(scale_b, kk // bk, j // bk if gr == "block" and square else j,  # type: ignore[arg-type]
                                                  sfmt)) for j in range(n)] for kk in range(k)]
    res = []
    for i in range(m):
        row = []
        for j in range(n):
            s = accumulate([exact_mul(av[i][kk], bv[kk][j]) for kk in range(k)], model, acc, **mp)
            if gr == "tensor":
                s = exact_mul(exact_mul(decode(scale_a, sfmt), decode(scale_b, sfmt)), s)  # type: ignore[arg-type]
            elif gr == "row":
                s = exact_mul(exact_mul(decode(scale_a[i], sfmt), decode(scale_b[j], sfmt)), s)  # type: ignore[index]
            elif gr == "nvfp4":
                s = exact_mul(exact_mul(decode(tensor_scale_a, "binary32"), decode(tensor_scale_b, "binary32")), s)  # type: ignore[arg-type]
            r: Rounded = round_value(Value.nan(0) if s.is_nan else s, out, p["rounding"], overflow)
            row.append(r.code)
        res.append(row)
    return res


__all__ = ["ACCUMS", "GRANULARITIES", "MODELS", "PRESETS", "accumulate", "block_of", "check_operands",
           "model_params", "scale_format", "scale_shapes", "scaled_mm", "validate_spec"]
