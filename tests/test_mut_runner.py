"""refarith.certify.runner's accounting, checked on mismatches planted at known places.

A kernel here returns the exact model's outputs with chosen codes moved by a chosen number of representable
values, so the expected histogram, input map, block profile and counts follow from the construction, not from
the runner.  Each test closes a gap found by mutation testing (docs/mutation.md, certify/runner.py).
"""

from __future__ import annotations

import platform
import re
import time

import numpy as np

from refarith.certify import runner
from refarith.certify.adapters import Kernel, load_kernel
from refarith.exact.ops import encode
from refarith.golden import fileformat as ff
from refarith.golden.generate import default_dir
from refarith.spec import parse_spec

# binary16 inputs 1 + i/16 (exponent 15, top four mantissa bits i) cast to E4M3: codes 0x38 + i/2 near 1.0, so
# moving a code up by at most 17 stays finite; the last input's result is replaced by NaN (0x7f)
SPEC16 = parse_spec("cast(binary16->ocp_e4m3,rounding=rne,overflow=saturate)")
INPUTS16 = [0x3C00 + (i << 6) for i in range(12)]
MOVES = [1, 2, 3, 4, 5, 8, 9, 16, 17, 0, 0, None]


def _moved_kernel(spec, moves: dict[int, int | None]) -> Kernel:
    """The exact outputs, with the code of row i (first output column) moved up by moves[i] (None: NaN 0x7f)."""
    def fn(s, operands):
        ins, exp, _ = runner.vectors_arrays(s, list(zip(*[np.asarray(a).reshape(-1).tolist() for a in operands])))
        out = exp.copy()
        for i, m in moves.items():
            out[i, 0] = 0x7F if m is None else out[i, 0] + m
        return out
    return Kernel("moved", fn, "test", lambda s: None)


def test_compare_histogram_and_input_map():
    ins, exp, dom = runner.vectors_arrays(SPEC16, [(c,) for c in INPUTS16])
    st = runner.compare(SPEC16, _moved_kernel(SPEC16, dict(enumerate(MOVES))), ins, exp, dom,
                        runner.Stage("golden", "test"))
    assert st.vectors == 12 and sum(st.mismatches.values()) == 10
    assert st.histogram == {"d1": 1, "d2": 1, "d3_4": 2, "d5_8": 2, "d9_16": 2, "d_over_16": 1, "special": 1}
    # (sign, biased exponent, top 4 of binary16's 10 mantissa bits, mismatches) of each wrong input
    assert st.input_map == [[0, 15, i, 1] for i in range(12) if MOVES[i] != 0]


def test_block_profile_names_the_element_and_the_amax_exponent():
    """An MX block of 8 whose element 3 is off by one code: the position is 3 (after the scale column) and the
    block's floor(log2 amax) is 2 (amax 6)."""
    spec = parse_spec("mx_quantize(ocp_e2m1,block=8)")
    vals = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.5]
    vec = tuple(int(np.float32(v).view(np.uint32)) for v in vals)
    ins, exp, dom = runner.vectors_arrays(spec, [vec])

    def fn(s, operands):
        out = exp.copy()
        out[0, 1 + 3] ^= 1
        return out[:, :1], out[:, 1:]
    st = runner.compare(spec, Kernel("one_off", fn, "test", lambda s: None), ins, exp, dom,
                        runner.Stage("golden", "test"))
    assert st.block_profile == {"amax_exponent": [[2, 1]], "position": [[3, 1]]}
    assert st.columns == {"elements[3]": 1}


def test_sweep_histogram_at_distances_16_and_17():
    """Every binary32 pattern below 2^20 rounds to E4M3 +0 (code 0); codes 4, 16 and 17 are 4, 16 and 17 values
    away.  The kernel plants them at the same offsets of each of the four chunks of 2^18."""
    spec = parse_spec("cast(binary32->ocp_e4m3,rounding=rne,overflow=nan)")

    def fn(s, operands):
        out = np.zeros(len(operands[0]), dtype=np.uint8)
        if out.size > 3000:  # the sweep's chunks start at pattern 0 (a one-vector probe is left alone)
            out[1000], out[2000], out[3000] = 16, 17, 4
        return out
    st = runner.exhaustive_stage(spec, Kernel("planted", fn, "test", lambda s: None), jobs=1, chunk_bits=18,
                                 limit=1 << 20, progress=False)
    assert st.histogram == {"d1": 0, "d2": 0, "d3_4": 4, "d5_8": 0, "d9_16": 4, "d_over_16": 4, "special": 0}


def test_sweep_prefix_where_the_sticky_bit_decides():
    """E8M0 from binary32: 1.5 * 2^-127 (pattern 0x00600000) is the tie between 2^-127 and 2^-126, so its top
    16 bits alone do not decide the result; the first 2^23 patterns hold such keys.  refarith's numpy kernel
    agrees with the exact model everywhere there."""
    spec = parse_spec("cast(binary32->e8m0,rounding=rne,overflow=nan,negative=error)")
    ref, _ = runner.sticky_tables(spec, 1, runner.sticky_keys(1 << 23))
    tie = (0x0060 << 1)
    assert ref[tie] != ref[tie + 1]  # the premise: sticky 0 and 1 round differently there
    st = runner.exhaustive_stage(spec, load_kernel("refarith:numpy"), jobs=1, chunk_bits=20, limit=1 << 23,
                                 progress=False)
    assert st.vectors + st.outside_domain == 1 << 23 and sum(st.mismatches.values()) == 0


def test_vectors_arrays_keeps_64_bit_codes():
    """binary64 outputs above 2^53 survive as exact codes (a float64 array would round them)."""
    spec = parse_spec("cast(binary32->binary64)")
    vec = [(0x3F800001,), (0xBF7FFFFF,), (0x7F7FFFFF,)]
    _, exp, dom = runner.vectors_arrays(spec, vec)
    want = [encode(float(np.uint32(c).view(np.float32)), "binary64").code for (c,) in vec]
    assert exp.dtype == np.uint64 and exp[:, 0].tolist() == want and dom.all()


def test_check_golden_counts_what_the_exact_model_recomputed(monkeypatch):
    """A committed file the numpy kernel reproduces: 0 vectors recomputed by the exact model; every vector with
    exact=True."""
    monkeypatch.setattr(runner, "_CHECKED", {})
    spec = parse_spec("add(ocp_e2m1)")
    path = default_dir() / "add__ocp_e2m1__rounding-rne__overflow-saturate__nan-error.txt.gz"
    g = ff.load(path, None)
    assert runner.check_golden(spec, g) == 0
    assert runner.check_golden(spec, g, exact=True) == g.count > 0


def test_certificate_start_time_and_environment():
    before = time.gmtime(time.time() - 1)
    c = runner.certify(load_kernel("refarith:numpy"), parse_spec("cast(ocp_e4m3->binary16)"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c.started)
    assert time.strptime(c.started, "%Y-%m-%dT%H:%M:%SZ")[:5] >= before[:5]
    env = runner.environment()
    assert env["platform"] == platform.platform() and env["python"] == platform.python_version()
