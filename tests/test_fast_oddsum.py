"""refarith.fast.oddsum (bfloat16 add/sub/mul/div through binary64 with round-to-odd sums) against the exact model.

Vectors: pairs far apart in exponent (where binary64 rounds the sum, so that a directed mode needs the sticky
information round-to-odd keeps), near-cancelling pairs, boundary codes and random pairs, in every deterministic
mode.  The exhaustive check is the sweep's own: every shard recomputes evenly spaced vectors with the exact model
(refarith.certify.shards.SELF_CHECK) and every disagreement with the kernel under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError
from refarith.exact import ops
from refarith.exact.rounding import DETERMINISTIC_MODES
from refarith.fast.oddsum import arith_rto, check_format

ONE, TINY = 0x3F80, 0x0D80  # 1.0 and 2^-100 in bfloat16


def _pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 1 << 16, n)
    far = (a & 0x807F) | (rng.integers(0, 0x20, n) << 7)  # same sign class, exponent 0..31: far below a
    near = (a ^ 0x8000) + rng.integers(-2, 3, n)  # -a and its neighbours: cancellation
    b = np.concatenate([far, near & 0xFFFF, rng.integers(0, 1 << 16, n)])
    return np.concatenate([a, a, a]), b


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_bfloat16_equals_the_exact_model(op):
    a, b = _pairs(12, {"add": 1, "sub": 2, "mul": 3, "div": 4}[op])
    f = getattr(ops, op)
    for mode in DETERMINISTIC_MODES:
        got = arith_rto(op, a, b, "bfloat16", mode)
        want = [f(int(x), int(y), "bfloat16", rounding=mode).code for x, y in zip(a, b)]
        assert [int(g) for g in got] == want, mode


def test_a_sum_binary64_rounds_keeps_its_sticky_bit():
    """1 + 2^-100 rounded up is the successor of 1 (0x3f81), though fl64(1 + 2^-100) = 1."""
    for mode, want in (("rup", 0x3F81), ("rtz", 0x3F80), ("rne", 0x3F80), ("rto", 0x3F81)):
        assert ops.add(ONE, TINY, "bfloat16", rounding=mode).code == want
        assert int(arith_rto("add", np.array([ONE]), np.array([TINY]), "bfloat16", mode)[0]) == want
    assert int(arith_rto("sub", np.array([ONE]), np.array([TINY]), "bfloat16", "rdn")[0]) == 0x3F7F


def test_formats_outside_the_argument_are_refused():
    with pytest.raises(BadValueError, match="binary64"):
        check_format("binary64")
    with pytest.raises(BadValueError, match="signed"):
        check_format("e8m0")
