"""Certify and identify GEMM kernels against the ``scaled_mm`` accumulator models.

A GEMM target maps (A codes, B codes) of an input format to output codes.  :func:`identify_gemm` runs the target
on seeded random operands and every candidate spec (each accumulator model and preset, each accumulator
format) through the numpy kernel of :mod:`refarith.fast.gemm`, which is bit-exact with the exact model, and
ranks the candidates by mismatching outputs, then by the largest difference in output codes' order (ulps).
A target *matches* a spec when every output is bit-identical.

Operands (no NaN/inf), two seeded sets, a target must match on both:

* ``normal``: values N(0, 1) * 2^j, j uniform in [-3, 3], rounded to nearest even into the input format;
* ``cancel``: K in triples (3t, 3t+1, 3t+2): a = (c_t, c_t, x), b = (d_t, -d_t, y) with |c_t|, |d_t| in
  [2^5, 2^6) and x, y as in ``normal``: the products c_t d_t and -c_t d_t cancel exactly, so the exact sum is the
  sum of the small products while an accumulator that rounds s + c_t d_t loses their low bits; this makes binary32
  accumulation orders visible through a 16-bit output.

Scales (scaled specs): binary32 values 0.375 .. 3, E8M0 2^-3 .. 2^3, UE4M3 every normal code (2^-6 .. 448, so
that E2M1 products spread and binary32 sums round); NVFP4 tensor scales 0.25, 0.5 or 1.5.
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from refarith.errors import BadValueError, KernelError, RefarithError, SpecError
from refarith.exact.gemm import PRESETS, check_operands, model_params, scale_format, scale_shapes
from refarith.fast import gemm as F
from refarith.fast.gemm import encode_array
from refarith.formats import FloatFormat, get_format
from refarith.golden.fileformat import write_atomic
from refarith.spec import Spec, parse_spec

CANDIDATE_MODELS = ("exact", "sequential", "fma_chain", "pairwise", "kahan", "blocked,nb=16", "blocked,nb=32",
                    "blocked,nb=64", "split_k,splits=2", "split_k,splits=4", *PRESETS)


def _codes_to(fmt: str, codes: np.ndarray):
    import torch

    dt = {"ocp_e4m3": torch.float8_e4m3fn, "ocp_e5m2": torch.float8_e5m2, "bfloat16": torch.bfloat16,
          "binary16": torch.float16}[fmt]
    width = torch.uint8 if fmt.startswith("ocp") else torch.int16
    t = torch.from_numpy(codes.astype(np.uint8 if width == torch.uint8 else np.uint16).view(
        np.uint8 if width == torch.uint8 else np.int16).copy())
    return t.view(dt)


def _from_torch(t, fmt: str) -> np.ndarray:
    import torch

    if fmt == "binary32":
        return t.contiguous().view(torch.int32).numpy().view(np.uint32).astype(np.int64)
    return t.contiguous().view(torch.int16).numpy().view(np.uint16).astype(np.int64)


def torch_scaled_mm(out: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``torch._scaled_mm`` on E4M3 operands with unit per-tensor scales, output ``out`` (binary32/bfloat16)."""
    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import torch

        one = torch.tensor(1.0)
        ta = _codes_to("ocp_e4m3", a)
        tb = _codes_to("ocp_e4m3", b).t().contiguous().t()  # column-major B, as _scaled_mm requires
        dt = {"binary32": torch.float32, "bfloat16": torch.bfloat16}[out]
        return _from_torch(torch._scaled_mm(ta, tb, scale_a=one, scale_b=one, out_dtype=dt), out)
    return run


def torch_matmul(fmt: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``torch.matmul`` in bfloat16 or float16 (CPU), output in the same format."""
    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import torch

        return _from_torch(torch.matmul(_codes_to(fmt, a), _codes_to(fmt, b)), fmt)
    return run


def numpy_matmul_fp16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy ``float16 @ float16``."""
    x = a.astype(np.uint16).view(np.float16)
    y = b.astype(np.uint16).view(np.float16)
    return (x @ y).view(np.uint16).astype(np.int64)


def torchao_mx_mm(orig: str) -> Callable[..., np.ndarray]:
    """torchao's MX GEMM (``torch.mm`` of two ``MXTensor``s, E4M3 elements, E8M0 scales per 32 along K) with the
    high-precision dtype ``orig`` (binary32/bfloat16).  On CPU torchao 0.18 runs it as KernelPreference.EMULATED:
    each operand dequantized to ``orig`` (elements times scales), then ``torch.mm`` in ``orig``."""
    def run(a: np.ndarray, b: np.ndarray, sa: np.ndarray, sb: np.ndarray) -> np.ndarray:
        import torch
        from torchao.prototype.mx_formats.config import KernelPreference
        from torchao.prototype.mx_formats.mx_tensor import MXTensor

        dt = {"binary32": torch.float32, "bfloat16": torch.bfloat16}[orig]

        def mxt(codes: np.ndarray, scales: np.ndarray):
            q = torch.from_numpy(np.ascontiguousarray(codes).astype(np.uint8)).view(torch.float8_e4m3fn)
            sc = torch.from_numpy(np.ascontiguousarray(scales).astype(np.uint8)).view(torch.float8_e8m0fnu)
            return MXTensor.from_qdata_and_scales(q, sc, dt, block_size=32,
                                                  kernel_preference=KernelPreference.EMULATED)

        w = mxt(b.T, np.asarray(sb).T)  # a linear layer's weight: N x K, scales along K
        return _from_torch(torch.mm(mxt(a, np.asarray(sa)), w.t()), orig)
    return run


def torchao_nvfp4_mm(a: np.ndarray, b: np.ndarray, sa: np.ndarray, sb: np.ndarray, tsa: int, tsb: int) -> np.ndarray:
    """torchao's NVFP4 GEMM (``torch.mm`` of two ``NVFP4Tensor``s: E2M1 elements packed two per byte, UE4M3
    scales per 16 along K, binary32 per-tensor scales), orig dtype float32.  On CPU torchao 0.18 dequantizes both
    operands (elements times fl32(tensor scale * block scale)) and runs ``torch.mm`` in float32."""
    import torch
    from torchao.prototype.mx_formats.nvfp4_tensor import NVFP4Tensor

    def nvt(codes: np.ndarray, scales: np.ndarray, ts: int):
        c = np.ascontiguousarray(codes).astype(np.uint8)
        q = torch.from_numpy(np.ascontiguousarray(c[:, ::2] | (c[:, 1::2] << 4)))
        sc = torch.from_numpy(np.ascontiguousarray(scales).astype(np.uint8)).view(torch.float8_e4m3fn)
        t = torch.from_numpy(np.array([ts], np.uint32).view(np.float32)).reshape(())
        return NVFP4Tensor(q, sc, 16, torch.float32, per_tensor_scale=t)

    w = nvt(b.T, np.asarray(sb).T, tsb)
    return _from_torch(torch.mm(nvt(a, np.asarray(sa), tsa), w.t()), "binary32")


TARGETS: dict[str, tuple[Callable, str, str]] = {
    "torch:_scaled_mm_fp32": (torch_scaled_mm("binary32"), "ocp_e4m3", "binary32"),
    "torch:_scaled_mm_bf16": (torch_scaled_mm("bfloat16"), "ocp_e4m3", "bfloat16"),
    "torch:matmul_bf16": (torch_matmul("bfloat16"), "bfloat16", "bfloat16"),
    "torch:matmul_fp16": (torch_matmul("binary16"), "binary16", "binary16"),
    "numpy:matmul_fp16": (numpy_matmul_fp16, "binary16", "binary16"),
    "torchao:mx_mm_fp32": (torchao_mx_mm("binary32"), "ocp_e4m3", "binary32"),
    "torchao:mx_mm_bf16": (torchao_mx_mm("bfloat16"), "ocp_e4m3", "bfloat16"),
    "torchao:nvfp4_mm_fp32": (torchao_nvfp4_mm, "ocp_e2m1", "binary32"),
}
MAX_ELEMENTS = 1 << 24
"""The most elements identify draws for A, B or the output (2^24: 128 MiB of binary64 per copy)."""
TARGET_SCALES = {"torchao:mx_mm_fp32": "mx", "torchao:mx_mm_bf16": "mx", "torchao:nvfp4_mm_fp32": "nvfp4"}
"""The scale granularity of the built-in targets that take scales (the others: none)."""


def operands(fmt: str, m: int, k: int, n: int, seed: int = 0, dist: str = "normal") -> tuple[np.ndarray, np.ndarray]:
    """Seeded operand codes (module docstring)."""
    rng = np.random.default_rng(seed)

    def normal(shape: tuple[int, int]) -> np.ndarray:
        return rng.standard_normal(shape) * np.ldexp(1.0, rng.integers(-3, 4, shape))

    xa, xb = normal((m, k)), normal((k, n))
    if dist == "cancel":
        t = np.arange(0, k - 2, 3)
        c = rng.uniform(32, 64, (m, len(t))) * rng.choice([-1.0, 1.0], (m, len(t)))
        d = rng.uniform(32, 64, (len(t), n)) * rng.choice([-1.0, 1.0], (len(t), n))
        xa[:, t], xa[:, t + 1] = c, c
        xb[t, :], xb[t + 1, :] = d, -d
    elif dist != "normal":
        raise BadValueError(f"unknown operand distribution {dist!r}")

    def enc(x: np.ndarray) -> np.ndarray:
        r = F.round_to(x, fmt, "rne", "saturate")
        return F.encode_array(r, fmt)

    # c_t and -d_t round to exactly opposite values: rounding is sign-symmetric
    return enc(xa), enc(xb)


def _order(codes: np.ndarray, fmt: str) -> np.ndarray:
    """Codes as a signed integer order (adjacent values differ by 1), for ulp distances."""
    nb = get_format(fmt).nbits
    c = codes.astype(np.int64)
    sign = (c >> (nb - 1)) & 1
    mag = c & ((1 << (nb - 1)) - 1)
    return np.where(sign == 1, -mag, mag)


_NOT_GEMM_LIBS = ("ml_dtypes", "torch", "gfloat", "torchao", "triton", "refarith")
"""Libraries whose LIBRARY:NAME targets are element-wise kernels (refarith.certify.adapters), not GEMMs."""


def base_spec(spec: Spec | str | None, in_fmt: str | None, out_fmt: str | None) -> Spec:
    """The spec identify varies (formats, scales, output rounding; accum and acc are the candidates')."""
    if spec is None:
        if not in_fmt or not out_fmt:
            raise BadValueError("identify --op scaled_mm needs the input and output formats (--from and --to, or "
                                "--spec) for a user kernel")
        return parse_spec(f"scaled_mm({in_fmt}->{out_fmt})")
    raw = spec if isinstance(spec, str) else None
    spec = parse_spec(spec)
    if spec.op != "scaled_mm":
        raise SpecError(f"{spec}: identify of a GEMM takes a scaled_mm spec")
    if raw is not None and re.search(r"[(,]\s*(accum|acc|nb|splits|g|b|tc_round|n_c)\s*=", raw):
        raise SpecError(f"{raw}: identify varies the accumulator (accum, acc and their parameters); leave them out "
                        "of the spec")
    return spec


def _candidate(base: Spec, model: str, acc: str) -> str:
    keep = ",".join(f"{k}={v}" for k, v in base.param.items() if k not in _VARIED)
    return f"scaled_mm({'->'.join(base.formats)}{',' + keep if keep else ''},accum={model},acc={acc})"


_VARIED = ("accum", "acc", "nb", "splits", "g", "b", "tc_round", "n_c")


def _same_model(cid: str) -> tuple:
    """A candidate's computation: its parameters with a preset expanded into its tensor_core parameters."""
    spec = parse_spec(cid)
    model, mp = model_params(spec)
    rest = tuple(sorted((k, v) for k, v in spec.param.items() if k not in _VARIED))
    return spec.formats, rest, spec.param["acc"], model, tuple(sorted(mp.items()))


def check_gemm_name(target: str | Callable) -> None:
    """KernelError for a target name that is not a GEMM (an element-wise LIBRARY:NAME kernel, no ':')."""
    if isinstance(target, str) and target not in TARGETS and (target.partition(":")[0] in _NOT_GEMM_LIBS
                                                               or ":" not in target):
        raise KernelError(f"target {target!r} is not a GEMM target; use one of {', '.join(TARGETS)} or "
                          "package.module:function taking (A, B[, scales])")


def gemm_call(target: str | Callable, base: Spec) -> tuple[Callable[..., np.ndarray], str]:
    """(run, name): ``run(A, B, *scales)`` calls the GEMM target on codes and returns its validated output codes
    (int64, M x N); a target that cannot run ``base`` (formats, scales) or is not a GEMM is an error here.

    Built-in targets (:data:`TARGETS`) take unscaled codes.  A user callable (or ``package.module:function``)
    receives A and B as int64 code arrays (as numpy float arrays where the format has one, binary16, bfloat16
    or binary32, with ``fn.refarith_inputs = "floats"``), then the scale codes the spec's granularity takes
    (scale_a, scale_b; NVFP4 also tensor_scale_a, tensor_scale_b); it returns M x N output codes or floats of the
    output format's width."""
    from refarith.certify.adapters import as_codes, float_view

    fa, fb, fo = base.formats[0], base.formats[-2], base.formats[-1]
    if isinstance(target, str) and target in TARGETS:
        fn, tin, tout = TARGETS[target]
        if (fa, fb, fo) != (tin, tin, tout):
            raise BadValueError(f"target {target} multiplies {tin} operands into {tout}, not {fa}/{fb} into {fo}")
        want = TARGET_SCALES.get(target, "none")
        if base.param["scale"] != want:
            raise BadValueError(f"target {target} takes {'unscaled' if want == 'none' else want} operands "
                                f"(scale={want}), not scale={base.param['scale']}")
        name = target
    elif isinstance(target, str):
        check_gemm_name(target)
        from refarith.targets import import_callable

        fn, name = import_callable(target, "GEMM target"), target
    elif callable(target):
        fn, name = target, f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', 'kernel')}"
    else:
        raise KernelError(f"GEMM target {target!r}: expected a target name or a callable")
    builtin = isinstance(target, str) and target in TARGETS
    codes = getattr(fn, "refarith_inputs", "codes") != "floats"
    out = get_format(fo)

    def run(a: np.ndarray, b: np.ndarray, *scales: object) -> np.ndarray:
        if builtin:
            args: list = [a, b, *(s for s in scales if s is not None)]
        else:
            args = [x if codes or (v := float_view(x, f)) is None else v for x, f in ((a, fa), (b, fb))]
            args += [None if s is None else np.asarray(s) for s in scales if s is not None]
        try:
            raw = fn(*args)
        except Exception as e:  # named, one line
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise KernelError(f"GEMM target {name} raised {type(e).__name__}: {msg}") from None
        return as_codes(name, raw, (a.shape[0], b.shape[1]), out).astype(np.int64)

    return run, name


def _scales(base: Spec, m: int, k: int, n: int, rng: np.random.Generator) -> tuple:
    """Seeded scale codes of the base spec's granularity: (scale_a, scale_b, tensor_scale_a, tensor_scale_b)."""
    gr = base.param["scale"]
    if gr == "none":
        return None, None, None, None
    sa_shape, sb_shape = scale_shapes(base, m, k, n)
    sf = scale_format(base)
    if sf == "e8m0":
        draw = lambda shape: rng.integers(124, 131, shape)  # noqa: E731  2^-3 .. 2^3
    elif sf == "ue4m3":  # every normal UE4M3 scale, 2^-6 .. 448: spread products so binary32 sums round
        draw = lambda shape: rng.integers(0x08, 0x7F, shape)  # noqa: E731
    else:
        vals = np.array([0.375, 0.5, 0.75, 1.0, 1.25, 2.0, 3.0])
        draw = lambda shape: encode_array(rng.choice(vals, shape), "binary32")  # noqa: E731

    def one(shape: tuple[int, ...]) -> object:
        return int(draw(())) if shape == () else draw(shape)

    ts = (None, None)
    if gr == "nvfp4":
        ts = tuple(int(encode_array(np.array([v]), "binary32")[0]) for v in rng.choice([0.25, 0.5, 1.5], 2))
    return one(sa_shape), one(sb_shape), *ts


def _rows(scales: tuple, gr: str, r: int) -> tuple:
    """The scales of the first r rows of A (B's and tensor scales unchanged)."""
    sa = scales[0]
    if sa is not None and gr != "tensor":
        sa = np.asarray(sa)[:r]
    return (sa, *scales[1:])


def identify_gemm(target: str | Callable, in_fmt: str | None = None, out_fmt: str | None = None,
                  shape: tuple[int, int, int] = (16, 256, 16), seed: int = 0,
                  accs: tuple[str, ...] = ("binary32",), models: tuple[str, ...] = CANDIDATE_MODELS,
                  spec: Spec | str | None = None, screen_rows: int = 16) -> dict:
    """Rank the candidate accumulator models (``models``, each into every format of ``accs``) by mismatches
    against the target (module docstring); ``spec``: a scaled_mm spec without accumulator parameters (formats,
    scale granularity, output rounding), default ``scaled_mm(in_fmt->out_fmt)``.

    Screening: each candidate first runs on the first ``screen_rows`` rows of A (every output depends on its
    own row of A only, so these outputs are the full run's).  A candidate with a mismatch there cannot match;
    the others run in full.  When some candidate matches in full, the screened-out ones keep their sample counts
    (``"screened": true``) and rank after the full ones; when none matches, every candidate runs in full, so
    ``matches`` and ``closest`` are always those of the full comparison."""
    check_gemm_name(target)
    if isinstance(target, str) and target in TARGETS:
        _, tin, tout = TARGETS[target]
        if spec is None and ((in_fmt or tin) != tin or (out_fmt or tout) != tout):
            raise BadValueError(f"target {target} multiplies {tin} operands into {tout}; the formats given "
                                f"({in_fmt or tin} -> {out_fmt or tout}) disagree")
        in_fmt, out_fmt = tin, tout
        if spec is None and target in TARGET_SCALES:
            spec = f"scaled_mm({tin}->{tout},scale={TARGET_SCALES[target]})"
    base = base_spec(spec, in_fmt, out_fmt)
    run, name = gemm_call(target, base)
    if len(shape) != 3 or not all(isinstance(x, (int, np.integer)) and x > 0 for x in shape):
        raise BadValueError(f"shape must be three positive integers M, K, N, got {shape!r}")
    m, k, n = (int(x) for x in shape)
    if max(m * k, k * n, m * n) > MAX_ELEMENTS:
        raise BadValueError(f"shape {m},{k},{n}: an operand or the output has more than 2^24 elements "
                            "(identify keeps several binary64 copies of each in memory)")
    fa, fo, gr = base.formats[0], base.formats[-1], base.param["scale"]
    if base.formats[-2] != fa:
        raise BadValueError(f"identify draws A and B from one format; got {fa} and {base.formats[-2]}")
    scale_shapes(base, m, k, n)  # K a multiple of the scale block, before any work
    data = []
    rng = np.random.default_rng(seed + 1)
    for dist in ("normal", "cancel"):
        a, b = operands(fa, m, k, n, seed, dist)
        sc = _scales(base, m, k, n, rng)
        data.append((a, b, sc, run(a, b, *sc)))
    cands, skipped = [], []
    for acc in accs:
        for model in models:
            cid = _candidate(base, model, acc)
            try:
                cspec = parse_spec(cid)
                check_operands(cspec, [[0] * k], [[0] * n] * k, *_stub_scales(base, k, n, data[0][2]))
            except RefarithError as e:
                skipped.append({"spec": cid, "reason": str(e)})
                continue
            cands.append(str(cspec))

    done: dict[tuple, tuple[int, int]] = {}

    def compare(cid: str, r: int) -> tuple[int, int]:
        key = (_same_model(cid), r)  # presets with one parameter set (volta_tc, turing_tc) run once
        if key in done:
            return done[key]
        mism, ulps = 0, 0
        for a, b, sc, got in data:
            want = F.scaled_mm(cid, a[:r], b, *_rows(sc, gr, r))
            g = got[:r]
            mism += int((g != want).sum())
            ulps = max(ulps, int(np.abs(_order(g, fo) - _order(want, fo)).max()))
        done[key] = mism, ulps
        return mism, ulps

    r = min(max(int(screen_rows), 1), m)
    sample = {c: compare(c, r) for c in cands} if r < m else {}
    full = {c: compare(c, m) for c in cands if sample.get(c, (0, 0))[0] == 0}
    if not any(v[0] == 0 for v in full.values()):
        full.update({c: compare(c, m) for c in cands if c not in full})
    rows = []
    for c in cands:
        if c in full:
            rows.append({"spec": c, "mismatches": full[c][0], "max_ulps": full[c][1]})
        else:
            rows.append({"spec": c, "mismatches": sample[c][0], "max_ulps": sample[c][1], "screened": True,
                         "outputs_compared": 2 * r * n})
    rows.sort(key=lambda x: (bool(x.get("screened")), x["mismatches"], x["max_ulps"]))
    if not rows:
        raise BadValueError(f"no candidate accumulator model applies to {base} at K = {k}: "
                            + "; ".join(s["reason"] for s in skipped[:3]))
    matches = [x["spec"] for x in rows if x["mismatches"] == 0 and not x.get("screened")]
    res = {"target": name, "input_format": fa, "output_format": fo, "shape": [m, k, n], "seed": seed,
           "outputs": 2 * m * n, "distributions": ["normal", "cancel"], "matches": matches, "closest": rows[0],
           "candidates": rows}
    if str(base) != str(parse_spec(f"scaled_mm({fa}->{fo})")):
        res["spec"] = str(base)
    if r < m:
        res["screen_rows"] = r
    if skipped:
        res["skipped"] = skipped
    return res


def _stub_scales(base: Spec, k: int, n: int, sc: tuple) -> tuple:
    """Scales of a one-row A (for the candidates' operand checks)."""
    s = _rows(sc, base.param["scale"], 1)
    return tuple(x.tolist() if isinstance(x, np.ndarray) else x for x in s)


def format_identify(res: dict, limit: int = 8) -> str:
    """The identify result as text: the matches (or the closest), then the best candidates."""
    m, k, n = res["shape"]
    head = (f"{res['target']}: {res['input_format']} -> {res['output_format']}, {m}x{k}x{n}, "
            f"{res['outputs']} outputs over {', '.join(res['distributions'])} operands (seed {res['seed']})")
    if res["matches"]:
        lines = [head, "matches: " + ", ".join(res["matches"])]
    else:
        c = res["closest"]
        lines = [head, f"no model matches; closest {c['spec']} ({c['mismatches']} of {res['outputs']} outputs "
                       f"differ, up to {c['max_ulps']} ulps)"]
    for x in res["candidates"][:limit]:
        note = f" (screened on {x['outputs_compared']} outputs)" if x.get("screened") else ""
        lines.append(f"  {x['mismatches']:8d} mismatches  {x['max_ulps']:8d} ulps  {x['spec']}{note}")
    for s in res.get("skipped", []):
        lines.append(f"  skipped {s['spec']}: {s['reason']}")
    return "\n".join(lines)


def certify_target(target: str | Callable, spec: Spec | str) -> object:
    """The target ``refarith certify`` runs against a scaled_mm spec: a GEMM target (a built-in name of
    :data:`TARGETS`, ``package.module:function`` or a callable; see :func:`gemm_call`) wrapped as a kernel that
    multiplies each golden vector's A and B (and scales); other targets (refarith:exact/numpy, element-wise
    kernels, which the runner refuses with their reason) unchanged.  A built-in GEMM target against a spec of
    another op is an error."""
    from refarith.certify.adapters import Kernel
    from refarith.golden.opdrivers import gemm as D

    spec = parse_spec(spec)
    if spec.op != "scaled_mm":
        if isinstance(target, str) and target in TARGETS:
            raise BadValueError(f"target {target} is a GEMM: certify it against a scaled_mm spec, not {spec}")
        return target
    if isinstance(target, str) and target.partition(":")[0] in _NOT_GEMM_LIBS and target not in TARGETS:
        return target
    run, name = gemm_call(target, spec)

    def fn(sp: Spec, ops: tuple) -> np.ndarray:
        nvec = int(np.asarray(ops[0]).shape[0])
        m, _, n = D.dims(sp)
        out = np.zeros((nvec, m * n), dtype=np.int64)
        for v in range(nvec):
            a, b, *sc = D.unpack(sp, ops, v)
            out[v] = run(a, b, *sc).reshape(-1)
        return out

    version = "" if not (isinstance(target, str) and target in TARGETS) else _torch_version()
    return Kernel(name, fn, version or f"GEMM callable {name}")


def _torch_version() -> str:
    try:
        import torch
    except ImportError:
        return ""
    return f"torch {torch.__version__}, numpy {np.__version__}"


def _shape_arg(text: str) -> tuple[int, int, int]:
    parts = text.replace("x", ",").split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise BadValueError(f"--shape {text!r}: expected three positive integers M,K,N")
    m, k, n = (int(p) for p in parts)
    return m, k, n


def identify_cli(args) -> int:
    """``refarith identify TARGET --op scaled_mm``: print the ranking (or JSON); exit 0 when a model matches."""
    for flag, on in (("--vary", args.vary), ("--device", args.device), ("--timeout", args.timeout),
                     ("--nan-payload-ok", args.nan_payload_ok), ("--signed-zero-ok", args.signed_zero_ok)):
        if on:
            raise BadValueError(f"{flag} does not apply to identify --op scaled_mm")
    accs = tuple(a for a in (args.acc or "binary32").split(",") if a)
    if not accs:
        raise BadValueError(f"--acc {args.acc!r}: expected accumulator formats F1,F2 (e.g. binary32,bfloat16)")
    for a in accs:
        if not isinstance(get_format(a), FloatFormat):
            raise BadValueError(f"--acc {a}: accumulator formats must be float formats")
    shape = _shape_arg(args.shape) if args.shape else (16, 256, 16)
    res = identify_gemm(args.target, args.src, args.to, shape=shape, accs=accs, spec=args.spec)
    print(json.dumps(res, indent=1, sort_keys=True) if args.json else format_identify(res))
    return 0 if res["matches"] else 1


def certificate(target: str, shape: tuple[int, int, int] = (16, 256, 16), seed: int = 0,
                accs: tuple[str, ...] = ("binary32",)) -> dict:
    """An identify result with the versions that produced it."""
    import torch

    res = identify_gemm(target, shape=shape, seed=seed, accs=accs)
    res["versions"] = {"numpy": np.__version__, "torch": torch.__version__, "python": platform.python_version(),
                       "machine": platform.machine()}
    if target.startswith("torchao:"):
        import torchao

        res["versions"]["torchao"] = torchao.__version__
        res["note"] = ("torchao runs MX and NVFP4 GEMMs on CPU as an emulation: both operands dequantized to the "
                       "high-precision dtype (NVFP4: the tensor scale folded into each block scale in float32), "
                       "then torch.mm in it; this certifies that emulation, not an MX/NVFP4 kernel")
    res["verdict"] = "matches " + ", ".join(res["matches"]) if res["matches"] else (
        f"no model matches; closest {res['closest']['spec']} ({res['closest']['mismatches']} of {res['outputs']} "
        f"outputs differ, up to {res['closest']['max_ulps']} ulps)")
    return res


ACCS = {"torch:_scaled_mm_fp32": ("binary32",), "torch:_scaled_mm_bf16": ("binary32",),
        "torchao:mx_mm_fp32": ("binary32",), "torchao:mx_mm_bf16": ("binary32", "bfloat16"),
        "torchao:nvfp4_mm_fp32": ("binary32",),
        "torch:matmul_bf16": ("binary32", "bfloat16"), "torch:matmul_fp16": ("binary32", "binary16"),
        "numpy:matmul_fp16": ("binary32", "binary16")}
"""The accumulator formats tried per built-in target."""


def write_certificate(res: dict, directory: str | Path) -> Path:
    """Write the certificate JSON atomically as <directory>/<target>.json (':' -> '-')."""
    path = Path(directory) / (res["target"].replace(":", "-") + ".json")
    write_atomic(path, (json.dumps(res, indent=1, sort_keys=True) + "\n").encode())
    return path


def main(directory: str = "docs/certificates/gemm", *targets: str) -> None:
    """Write the certificate of every built-in GEMM target, or of the ones named
    (``python -m refarith.certify.gemm [DIR [TARGET ...]]``)."""
    for t in targets or tuple(TARGETS):
        if t not in TARGETS:
            raise BadValueError(f"unknown GEMM target {t!r}; known: {', '.join(TARGETS)}")
        res = certificate(t, accs=ACCS[t])
        print(f"{t}: {res['verdict']} -> {write_certificate(res, directory)}")


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:])

__all__ = ["ACCS", "CANDIDATE_MODELS", "TARGETS", "base_spec", "certificate", "format_identify", "gemm_call",
           "certify_target", "check_gemm_name", "identify_cli", "identify_gemm", "numpy_matmul_fp16", "operands",
           "torch_matmul", "torch_scaled_mm", "torchao_mx_mm", "torchao_nvfp4_mm",
           "write_certificate"]
