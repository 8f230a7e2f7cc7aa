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
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np

from refarith.errors import BadValueError
from refarith.exact.gemm import PRESETS
from refarith.fast import gemm as F
from refarith.golden.fileformat import write_atomic
from refarith.spec import parse_spec

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


TARGETS: dict[str, tuple[Callable, str, str]] = {
    "torch:_scaled_mm_fp32": (torch_scaled_mm("binary32"), "ocp_e4m3", "binary32"),
    "torch:_scaled_mm_bf16": (torch_scaled_mm("bfloat16"), "ocp_e4m3", "bfloat16"),
    "torch:matmul_bf16": (torch_matmul("bfloat16"), "bfloat16", "bfloat16"),
    "torch:matmul_fp16": (torch_matmul("binary16"), "binary16", "binary16"),
    "numpy:matmul_fp16": (numpy_matmul_fp16, "binary16", "binary16"),
}


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
    nb = 32 if fmt == "binary32" else 16 if fmt in ("bfloat16", "binary16") else 8
    c = codes.astype(np.int64)
    sign = (c >> (nb - 1)) & 1
    mag = c & ((1 << (nb - 1)) - 1)
    return np.where(sign == 1, -mag, mag)


def identify_gemm(target: str | Callable, in_fmt: str | None = None, out_fmt: str | None = None,
                  shape: tuple[int, int, int] = (16, 256, 16), seed: int = 0,
                  accs: tuple[str, ...] = ("binary32",), models: tuple[str, ...] = CANDIDATE_MODELS) -> dict:
    """Rank the candidate accumulator models (``models``) by mismatches against the target (module docstring)."""
    if isinstance(target, str):
        if target not in TARGETS:
            raise BadValueError(f"unknown GEMM target {target!r}; known: {', '.join(TARGETS)}")
        fn, in_fmt, out_fmt = TARGETS[target]
        name = target
    else:
        fn, name = target, getattr(target, "__name__", "kernel")
        if in_fmt is None or out_fmt is None:
            raise BadValueError("a GEMM kernel needs in_fmt and out_fmt")
    m, k, n = shape
    data = []
    for dist in ("normal", "cancel"):
        a, b = operands(in_fmt, m, k, n, seed, dist)
        got = np.asarray(fn(a, b)).astype(np.int64)
        if got.shape != (m, n):
            raise BadValueError(f"the target returned shape {got.shape}, expected {(m, n)}")
        data.append((a, b, got))
    rows = []
    for acc in accs:
        for model in models:
            spec = f"scaled_mm({in_fmt}->{out_fmt},accum={model},acc={acc})"
            mism, ulps = 0, 0
            for a, b, got in data:
                want = F.scaled_mm(spec, a, b)
                mism += int((got != want).sum())
                ulps = max(ulps, int(np.abs(_order(got, out_fmt) - _order(want, out_fmt)).max()))
            rows.append({"spec": str(parse_spec(spec)), "mismatches": mism, "max_ulps": ulps})
    rows.sort(key=lambda r: (r["mismatches"], r["max_ulps"]))
    matches = [r["spec"] for r in rows if r["mismatches"] == 0]
    return {"target": name, "input_format": in_fmt, "output_format": out_fmt, "shape": list(shape), "seed": seed,
            "outputs": 2 * m * n, "distributions": ["normal", "cancel"], "matches": matches, "closest": rows[0],
            "candidates": rows}


def certificate(target: str, shape: tuple[int, int, int] = (16, 256, 16), seed: int = 0,
                accs: tuple[str, ...] = ("binary32",)) -> dict:
    """An identify result with the versions that produced it."""
    import torch

    res = identify_gemm(target, shape=shape, seed=seed, accs=accs)
    res["versions"] = {"numpy": np.__version__, "torch": torch.__version__, "python": platform.python_version(),
                       "machine": platform.machine()}
    res["verdict"] = "matches " + ", ".join(res["matches"]) if res["matches"] else (
        f"no model matches; closest {res['closest']['spec']} ({res['closest']['mismatches']} of {res['outputs']} "
        f"outputs differ, up to {res['closest']['max_ulps']} ulps)")
    return res


ACCS = {"torch:_scaled_mm_fp32": ("binary32",), "torch:_scaled_mm_bf16": ("binary32",),
        "torch:matmul_bf16": ("binary32", "bfloat16"), "torch:matmul_fp16": ("binary32", "binary16"),
        "numpy:matmul_fp16": ("binary32", "binary16")}
"""The accumulator formats tried per built-in target."""


def write_certificate(res: dict, directory: str | Path) -> Path:
    """Write the certificate JSON atomically as <directory>/<target>.json (':' -> '-')."""
    path = Path(directory) / (res["target"].replace(":", "-") + ".json")
    write_atomic(path, (json.dumps(res, indent=1, sort_keys=True) + "\n").encode())
    return path


def main(directory: str = "docs/certificates/gemm") -> None:
    """Write the certificate of every built-in GEMM target (``python -m refarith.certify.gemm [DIR]``)."""
    for t in TARGETS:
        res = certificate(t, accs=ACCS[t])
        print(f"{t}: {res['verdict']} -> {write_certificate(res, directory)}")


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:2])

__all__ = ["ACCS", "CANDIDATE_MODELS", "TARGETS", "certificate", "identify_gemm", "numpy_matmul_fp16", "operands",
           "torch_matmul", "torch_scaled_mm", "write_certificate"]
