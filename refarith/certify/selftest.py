"""The device self-check: refarith's torch and Triton backends over every binary32 input, on one device.

``refarith selftest --device cuda`` runs, on a CUDA device:

1. for each OCP cast swept (binary32 -> E4M3, E5M2, E3M2, E2M3, E2M1, E8M0, round to nearest even), the torch and
   Triton backends over all 2^32 binary32 patterns against a reference table built directly from the exact model
   (one :func:`refarith.exact.rounding.round_value` per 17-bit sticky key; that the cast is a function of that key
   is the lemma ``cast.lut16.*`` — every target swept has at most 3 mantissa bits);
2. torch's own casts on that device (``tensor.to(torch.float8_e4m3fn)``, ``float8_e5m2``, ``float8_e8m0fnu``),
   compared with the same references (findings, not failures of refarith);
3. the throughput of the Triton backend next to torch's native ``.to(float8)`` in the same run (a ratio table).

It exits 0 only when every refarith backend is bit-exact.  ``--device cpu`` runs the same code on a prefix of the
input space (``--inputs``), the Triton kernels under Triton's interpreter: that is how it is tested without a GPU.
Nothing here imports z3 (the CUDA image has none).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refarith.errors import BadValueError, RefarithError, SpecialValueError

SWEPT = (
    ("ocp_e4m3", dict(overflow="nan")),
    ("ocp_e5m2", dict(overflow="inf")),
    ("ocp_e3m2", dict(overflow="saturate", nan_policy="max")),
    ("ocp_e2m3", dict(overflow="saturate", nan_policy="max")),
    ("ocp_e2m1", dict(overflow="saturate", nan_policy="max")),
    ("e8m0", dict(overflow="nan", negative="clamp")),
)
"""(target, modes) of the swept casts; NaN into the FP6/FP4 formats (which lack NaN) under the declared ``nan=max``
policy and negatives into E8M0 under ``negative=clamp``, so that every input has a code to compare."""

TORCH_DTYPES = {"ocp_e4m3": "float8_e4m3fn", "ocp_e5m2": "float8_e5m2", "e8m0": "float8_e8m0fnu"}
"""torch's own dtypes for the swept targets (its native casts are certified against each overflow variant)."""

FULL = 1 << 32


class SelftestError(RefarithError):
    """The self-check cannot run as asked (no such device, a bad range)."""


@dataclass
class Line:
    """One row of the self-check: what ran, on how many inputs, how many mismatched, how fast."""

    what: str
    spec: str
    inputs: int
    mismatches: int
    seconds: float
    first: str = ""
    refarith: bool = True  # True: a refarith backend (must be bit-exact); False: a peer (a finding)
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.mismatches == 0


@dataclass
class Report:
    device: str
    inputs: int
    lines: list[Line] = field(default_factory=list)
    timings: list[tuple[str, float, float]] = field(default_factory=list)  # (what, G elements/s, vs torch .to())
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(ln.ok for ln in self.lines if ln.refarith) and any(ln.refarith for ln in self.lines)


def _spec_id(dst: str, kw: dict) -> str:
    from refarith.spec import parse_spec

    p = ",".join(f"{'nan' if k == 'nan_policy' else k}={v}" for k, v in kw.items())
    return str(parse_spec(f"cast(binary32->{dst},rounding=rne{',' + p if p else ''})"))


def _exact_keys_at(item: tuple[int, tuple[str, dict, int, int]]) -> tuple[int, np.ndarray]:
    """(index, :func:`_exact_keys` of the part): a pool item that says where its result goes."""
    return item[0], _exact_keys(item[1])


def _exact_keys(args: tuple[str, dict, int, int]) -> np.ndarray:
    """Exact-model codes for sticky keys [a, b) (-1 where the spec raises)."""
    from refarith.exact import ops as exact
    from refarith.exact.rounding import round_value

    dst, kw, a, b = args
    out = np.empty(b - a, dtype=np.int64)
    for i, key in enumerate(range(a, b)):
        rep = ((key >> 1) << 16) | (key & 1)
        try:
            out[i] = round_value(exact.decode(rep, "binary32"), dst, rounding="rne", **kw).code
        except SpecialValueError:
            out[i] = -1
    return out


def exact_key_table(dst: str, kw: dict, jobs: int | None = None, keys: int = 1 << 17) -> np.ndarray:
    """The 2^17-entry sticky-key table of cast(binary32->dst) computed by the exact model, on ``jobs`` processes
    (only the first ``keys`` entries; the rest are -2, compared with nothing)."""
    n = max(1, min(keys, 1 << 17))
    jobs = max(1, min(jobs or os.cpu_count() or 1, 32))
    step = n // (jobs * 4) or n
    parts = [(dst, kw, a, min(a + step, n)) for a in range(0, n, step)]
    from refarith.golden.progress import Progress

    with Progress(len(parts), f"exact-model key table of {dst}", unit="part") as bar:
        if jobs == 1 or n < 4096:
            got = []
            for p in parts:
                got.append(_exact_keys(p))
                bar.update()
            head = np.concatenate(got)
        else:
            from refarith.certify.runner import run_pool

            res: dict = {}

            def keep(r: tuple[int, np.ndarray]) -> None:
                res[r[0]] = r[1]
                bar.update()

            run_pool(_exact_keys_at, list(enumerate(parts)), jobs, method="spawn", what="exact-model key table",
                     label=lambda p: f"keys {p[1][2]}..", on_result=keep)
            head = np.concatenate([res[i] for i in range(len(parts))])
    return np.concatenate([head, np.full((1 << 17) - n, -2, dtype=np.int64)])


def _keys(bits, torch):
    """Sticky keys of int32 binary32 patterns: (bits >> 16) << 1 | (low 16 bits != 0), as int64."""
    b = bits.to(torch.int64) & 0xFFFFFFFF
    return ((b >> 16) << 1) | ((b & 0xFFFF) != 0).to(torch.int64)


def run(device: str = "cuda", inputs: int = FULL, chunk: int = 1 << 28, jobs: int | None = None,
        progress: Callable[[str], None] | None = None, bench: bool = True) -> Report:
    """Run the self-check on ``device`` over binary32 patterns [0, inputs); see the module docstring."""
    if not re.fullmatch(r"(cpu|cuda)(:\d+)?", device):  # before the torch import: a bad name is named without torch
        raise SelftestError(f"device must be cpu or cuda[:N], got {device!r}")
    try:
        import torch
    except ImportError:
        raise SelftestError("the self-check needs torch") from None
    say = progress or (lambda s: None)
    if not 1 <= inputs <= FULL:
        raise SelftestError(f"--inputs must lie in [1, 2^32], got {inputs}")
    if chunk < 1:
        raise SelftestError(f"chunk must be positive, got {chunk}")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SelftestError(f"device must be cpu or cuda[:N], got {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SelftestError("no CUDA device: torch.cuda.is_available() is False (run with --device cpu to "
                                "check the code path on a prefix of the inputs)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise SelftestError(f"no CUDA device {dev.index}: {torch.cuda.device_count()} visible")
        name = torch.cuda.get_device_name(dev)
    elif dev.type == "cpu":
        name = "Triton interpreter"
    else:
        raise SelftestError(f"device must be cpu or cuda[:N], got {device!r}")
    from refarith.fast import cast as fast_cast
    from refarith.fast import triton_backend as tb

    rep = Report(f"{device} ({name})", inputs)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda *a: None)
    have_triton = True
    try:
        tb._import_triton()
    except tb.TritonError as e:
        have_triton = False
        rep.notes.append(f"triton backend not checked: {e}")
    for dst, kw in SWEPT:
        spec = _spec_id(dst, kw)
        t0 = time.perf_counter()
        # the patterns [0, inputs) have sticky keys below ((inputs - 1) >> 16 << 1) + 2
        ref = torch.from_numpy(exact_key_table(dst, kw, jobs, (((inputs - 1) >> 16) << 1) + 2)).to(dev)
        say(f"{spec}: exact-model key table in {time.perf_counter() - t0:.1f} s")
        peers: dict[str, Any] = {}
        tdt = getattr(torch, TORCH_DTYPES.get(dst, ""), None)
        if isinstance(tdt, torch.dtype):
            peers[f"torch .to({tdt})"] = lambda x, tdt=tdt: x.to(tdt).view(torch.uint8)
        backends = {"refarith torch": lambda x, dst=dst, kw=kw: fast_cast.encode(x, dst, backend="torch", **kw)}
        if have_triton:
            backends["refarith triton"] = lambda x, dst=dst, kw=kw: tb.encode(x, dst, **kw)
        counts = {k: [0, "", 0.0] for k in (*backends, *peers)}
        for a in range(0, inputs, chunk):
            b = min(a + chunk, inputs)
            bits = torch.arange(a, b, dtype=torch.int64, device=dev).to(torch.int32)
            x = bits.view(torch.float32)
            want = ref[_keys(bits, torch)]
            for label, fn in (*backends.items(), *peers.items()):
                t1 = time.perf_counter()
                try:
                    got = fn(x).to(torch.int64)
                except (RefarithError, RuntimeError) as e:
                    counts[label][0] += b - a
                    counts[label][1] = counts[label][1] or f"raised {type(e).__name__}: {e}"
                    continue
                sync()
                counts[label][2] += time.perf_counter() - t1
                bad = got != want
                nbad = int(bad.sum())
                if nbad:
                    if not counts[label][1]:
                        i = int(torch.nonzero(bad)[0, 0])
                        counts[label][1] = (f"input {a + i:#010x}: got {int(got[i]):#04x}, exact "
                                            f"{int(want[i]):#04x}")
                    counts[label][0] += nbad
            say(f"{spec}: {b:#x} of {inputs:#x} inputs")
        for label, (nbad, first, secs) in counts.items():
            rep.lines.append(Line(label, spec, inputs, nbad, secs, first, refarith=label.startswith("refarith")))
    if bench and have_triton:
        _bench(rep, dev, torch, tb, sync)
    return rep


def _bench(rep: Report, dev, torch, tb, sync) -> None:
    n = 1 << 26 if dev.type == "cuda" else 1 << 18
    x = torch.randn(n, device=dev) * 100
    from refarith.fast import cast as fast_cast

    def rate(fn) -> float:
        fn()
        sync()
        best = float("inf")
        for _ in range(3 if dev.type == "cuda" else 1):
            t0 = time.perf_counter()
            fn()
            sync()
            best = min(best, time.perf_counter() - t0)
        return n / best / 1e9

    native = rate(lambda: x.to(torch.float8_e4m3fn))
    rep.timings.append(("torch .to(float8_e4m3fn)", native, 1.0))
    for label, fn in (("refarith triton ocp_e4m3", lambda: tb.encode(x, "ocp_e4m3")),
                      ("refarith torch ocp_e4m3", lambda: fast_cast.encode(x, "ocp_e4m3", backend="torch"))):
        r = rate(fn)
        rep.timings.append((label, r, r / native))


def render(rep: Report) -> str:
    out = [f"refarith selftest on {rep.device}: binary32 inputs [0, {rep.inputs:#x})", ""]
    out.append(f"{'kernel':<40} {'spec':<62} {'inputs':>12} {'mismatches':>11} {'s':>7}  first")
    for ln in rep.lines:
        tag = "" if ln.refarith else " (peer)"
        out.append(f"{ln.what + tag:<40} {ln.spec:<62} {ln.inputs:>12} {ln.mismatches:>11} {ln.seconds:>7.2f}  "
                   f"{ln.first}{' ' + ln.note if ln.note else ''}")
    if rep.timings:
        out += ["", f"{'throughput':<40} {'G elements/s':>12} {'vs torch .to()':>15}"]
        out += [f"{w:<40} {g:>12.4f} {r:>14.2f}x" for w, g, r in rep.timings]
    out += [f"note: {n}" for n in rep.notes]
    out.append("")
    out.append("PASS: every refarith backend bit-exact" if rep.passed else
               "FAIL: a refarith backend differs from the exact model (rows above)")
    return "\n".join(out) + "\n"


def parse_count(s: str) -> int:
    """``2^20``, ``1<<20``, ``0x100000`` or a decimal count."""
    t = s.strip().replace(" ", "")
    try:
        if "^" in t:
            base, exp = t.split("^")
            return int(base) ** int(exp)
        if "<<" in t:
            a, b = t.split("<<")
            return int(a) << int(b)
        return int(t, 0)
    except ValueError:
        raise BadValueError(f"not a count: {s!r} (use e.g. 2^20, 1<<20, 0x100000 or 1048576)") from None


def main(device: str, inputs: str | None, jobs: int | None, bench: bool) -> int:
    n = parse_count(inputs) if inputs else FULL
    t0 = time.perf_counter()
    rep = run(device, n, jobs=jobs, bench=bench, progress=lambda s: print(s, file=sys.stderr, flush=True))
    sys.stdout.write(render(rep))
    print(f"total {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0 if rep.passed else 1
