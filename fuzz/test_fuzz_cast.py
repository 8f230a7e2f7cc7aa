"""Differential fuzzing of refarith's fast cast kernels (numpy, torch) against the exact model.

Every spec with a fast kernel (casts into float formats of at most 16 bits) is
drawn from: each <= 8-bit float target from binary32, binary16 and bfloat16,
with every deterministic rounding mode and applicable overflow / NaN policy.
The default run fuzzes a bounded sample (a few seconds per test); ``-m fuzz``
runs the long campaign over every spec.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refarith import strategies as rs
from refarith.exact import ops
from refarith.exact.rounding import DETERMINISTIC_MODES
from refarith.formats import float_formats
from refarith.spec import parse_spec

fast = pytest.importorskip("refarith.fast")

SOURCES = ("binary32", "binary16", "bfloat16")


def _all_specs() -> list[str]:
    out = []
    for src in SOURCES:
        for dst in float_formats(8):
            ov = ["saturate"] + (["inf"] if dst.has_inf else []) + (["nan"] if dst.has_nan else [])
            nan = ["error"] if dst.has_nan else ["zero", "max"]
            for r in DETERMINISTIC_MODES:
                for o in ov:
                    for n in nan:
                        extra = f",nan={n}" if not dst.has_nan else ""
                        extra += ",negative=clamp" if not dst.signed else ""  # 'error' would raise on negatives
                        out.append(str(parse_spec(f"cast({src}->{dst.name},rounding={r},overflow={o}{extra})")))
    return out


ALL = _all_specs()
SAMPLE = ALL[:: max(1, len(ALL) // 12)]


def _exact(spec, codes):
    p = spec.param
    out = []
    for c in codes:
        out.append(ops.cast(int(c), spec.fmt(0), spec.fmt(1), p["rounding"], p["overflow"],
                            nan_policy=p.get("nan", "error"), negative=p.get("negative", "error")).code)
    return np.array(out, dtype=np.int64)


def _check(spec_id: str, backend: str, batch) -> None:
    spec = parse_spec(spec_id)
    p = spec.param
    src = spec.fmt(0)
    codes = np.array(batch, dtype=np.uint32 if src.nbits == 32 else np.uint16)
    got = fast.encode(codes, spec.formats[1], rounding=p["rounding"], overflow=p["overflow"],
                      nan_policy=p.get("nan", "error"), negative=p.get("negative", "error"), backend=backend,
                      src=src.name)
    got = np.asarray(got.cpu().numpy() if hasattr(got, "cpu") else got).astype(np.int64)
    exp = _exact(spec, codes)
    bad = np.nonzero(got != exp)[0]
    assert bad.size == 0, (f"{spec} [{backend}]: input {int(codes[bad[0]]):#x} -> {int(got[bad[0]]):#x}, "
                           f"exact {int(exp[bad[0]]):#x}")


def _campaign(spec_id: str, backend: str, examples: int) -> None:
    src = parse_spec(spec_id).fmt(0)

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(rs.bits(src), min_size=1, max_size=64))
    def run(batch):
        _check(spec_id, backend, batch)

    run()


@pytest.mark.parametrize("spec_id", SAMPLE)
def test_numpy_fast_cast_sample(spec_id):
    _campaign(spec_id, "numpy", 15)


@pytest.mark.parametrize("spec_id", SAMPLE[:4])
def test_torch_fast_cast_sample(spec_id):
    pytest.importorskip("torch")
    _campaign(spec_id, "torch", 10)


@pytest.mark.fuzz
@pytest.mark.parametrize_if_selected("spec_id", lambda: ALL)
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_fast_cast_campaign(spec_id, backend):
    if backend == "torch":
        pytest.importorskip("torch")
    _campaign(spec_id, backend, 300)
