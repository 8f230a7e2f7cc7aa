"""refarith.fast.mx's binary32 helpers and the te_e2m1_8 element rule at the inputs that decide them.

Expected bits come from the exact model (refarith.exact.ops.div and encode,
refarith.exact.mx.quantize_block), never from the kernels.  Each test closes a gap found by mutation testing
(docs/mutation.md, fast/mx.py).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.exact import mx as emx
from refarith.exact.ops import decode, div, encode
from refarith.fast import mx as fmx
from refarith.fast.blocksr import mx_quantize_sr
from refarith.golden.opdrivers.blocksr import hard_mx_blocks


def _f32_bits(v: float) -> int:
    return int(np.asarray(v, dtype=np.float32).view(np.uint32))


def test_f32_round_takes_significands_of_any_length():
    """The docstring's contract, 0 <= n < 2^61 with t = 0: n shorter than binary32's 24 bits is shifted up to
    the quantum (exact), longer n is rounded to nearest even; overflow gives inf, underflow ±0 or a subnormal."""
    ns = [1, 2, 3, 5, 7, 255, (1 << 23) - 1, 1 << 23, (1 << 24) - 1, (1 << 24) + 1, (1 << 25) + 3, (1 << 40) + 1,
          (1 << 60) - 1]
    es = [-200, -172, -160, -150, -149, -140, -126, -30, -1, 0, 1, 20, 104, 127, 128]
    n = np.array([v for v in ns for _ in es for _ in (0, 1)], dtype=np.int64)
    e = np.array([x for _ in ns for x in es for _ in (0, 1)], dtype=np.int64)
    sign = np.array([s for _ in ns for _ in es for s in (0, 1)], dtype=np.int64)
    got = fmx.f32_round(sign, n, e, n * 0, fmx.ops("numpy")).astype(np.int64) & 0xFFFFFFFF
    want = [encode(Fraction(int(a)) * Fraction(2) ** int(b), "binary32").code | (int(s) << 31)
            for a, b, s in zip(n, e, sign)]
    assert got.tolist() == want


def test_f32_div_subnormal_ties_and_exact_quotients():
    """fl(a / b) in binary32 where the quotient is exact: a subnormal halfway point (2^-150 between 0 and 2^-149,
    3 * 2^-150 between 2^-149 and 2^-148) is a tie that only a zero remainder lets round to even; normal exact
    quotients must not move.  Both bit-length paths (known_length)."""
    a_vals = [2.0 ** -126, 3 * 2.0 ** -126, 5 * 2.0 ** -126, 2.0 ** -125, 7 * 2.0 ** -127, 1.0, 3.0, 1.5, 2.0 ** -149,
              6.0, -2.0 ** -126, -3 * 2.0 ** -126]
    b_vals = [2.0 ** 24, 2.0 ** 25, 2.0 ** 23, 4.0, 2.0, -(2.0 ** 24), 3.0, 0.5]
    pairs = [(_f32_bits(x), _f32_bits(y)) for x in a_vals for y in b_vals]
    a = np.array([p[0] for p in pairs], dtype=np.uint32).view(np.int32)
    b = np.array([p[1] for p in pairs], dtype=np.uint32).view(np.int32)
    want = [div(x, y, "binary32").code for x, y in pairs]
    for known in (False, True):
        got = fmx.f32_div(a, b, fmx.ops("numpy"), known).astype(np.int64) & 0xFFFFFFFF
        assert got.tolist() == want, known


@pytest.mark.parametrize("rand", ["zero", "one"])
def test_mx_fp4_te_e2m1_8_at_r_zero(rand):
    """Transformer Engine's rule adds r * 2^-8 ulp in binary32, so with r = 0 only an element within 2^-j of an
    element ulp below a neighbour rounds up (j = 17, 16, 15 above the codes 0, 0.5 and from 1 on): one binary32
    ulp below 0.5 rounds up, one below 1 does not.  The offset depends on the code below, so the pinned blocks
    are run with r = 0 and r = 1 against the exact model."""
    x = hard_mx_blocks("ocp_e2m1", 8, seed=5)
    r = np.zeros(x.shape, np.int64) + (rand == "one")
    want_s, want_c = [], []
    for row, rr in zip(x.view(np.uint32), r):
        blk = emx.quantize_block([decode(int(v), "binary32") for v in row], "ocp_e2m1", "floor", "sr",
                                 rand=[int(t) for t in rr], rand_bits=8, sr_variant="te_e2m1_8")
        want_s.append(blk.scale)
        want_c.append(blk.codes)
    s, c = mx_quantize_sr(x, "ocp_e2m1", r, 8, "te_e2m1_8", block=8)
    assert np.asarray(s)[:, 0].tolist() == want_s
    assert np.asarray(c).tolist() == [list(v) for v in want_c]
