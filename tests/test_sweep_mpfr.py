"""refarith.certify.mpfr_fma: MPFR's fma kernels of ocp_e4m3 and ocp_e5m2, the independent peers of the exhaustive
fp8 fma campaigns in the modes gfloat and torch lack (round to odd, e5m2 outside rne).

The expected codes come from the exact model (refarith.exact.ops.fma) and, for the overflow rule the module adds
around MPFR, from MPFR itself run with e5m2's own exponent bound (its overflow then follows IEEE 754 7.4).
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

pytest.importorskip("gmpy2")
pytest.importorskip("ml_dtypes")

from refarith.certify import mpfr_fma  # noqa: E402
from refarith.exact import ops  # noqa: E402
from refarith.formats import get_format  # noqa: E402
from refarith.golden.opdrivers.fma import boundary_codes  # noqa: E402

OVERFLOW = {"ocp_e4m3": "saturate", "ocp_e5m2": "inf"}


def _triples(fmt: str, n: int) -> list[tuple[int, int, int]]:
    cs = boundary_codes(get_format(fmt))
    rng = random.Random(fmt)
    return rng.sample(list(itertools.product(cs, cs, cs)), n) + [(rng.randrange(256), rng.randrange(256),
                                                                  rng.randrange(256)) for _ in range(n // 4)]


def _value(fmt: str, code: int) -> float:
    return float(np.uint8(code).view(mpfr_fma._dtype(fmt)))


@pytest.mark.parametrize("fmt", ["ocp_e4m3", "ocp_e5m2"])
def test_round_sum_equals_the_exact_model_in_every_mode(fmt):
    f = get_format(fmt)
    dt = mpfr_fma._dtype(fmt)
    ctx = mpfr_fma._contexts(fmt)
    for mode in mpfr_fma.MODES:
        for a, b, c in _triples(fmt, 80):
            want = ops.fma(a, b, c, f, rounding=mode, overflow=OVERFLOW[fmt]).code
            v = mpfr_fma.round_sum(_value(fmt, a) * _value(fmt, b), _value(fmt, c), fmt, mode, ctx)
            got = int(np.array([v]).astype(dt).view(np.uint8)[0])
            if np.isnan(v):  # ml_dtypes' NaN code; refarith keeps the NaN operand's sign
                assert np.isnan(_value(fmt, want)), (mode, a, b, c)
            else:
                assert got == want, (mode, hex(a), hex(b), hex(c), hex(got), hex(want))


def test_overflow_rule_is_mpfrs_own_at_e5m2s_exponent_bound():
    """With emax 16 (largest finite (1 - 2^-3) * 2^16 = 57344) MPFR overflows by itself, to inf or 57344 by the
    rounding direction; the module rounds with no upper bound and applies IEEE 754 7.4 afterwards: the same."""
    import gmpy2

    modes = {"rne": gmpy2.RoundToNearest, "rtz": gmpy2.RoundToZero, "rup": gmpy2.RoundUp, "rdn": gmpy2.RoundDown}
    sums = [s * m for m in (57344.0, 59392.0, 61439.0, 61440.0, 65536.0, 3.0 * 2**30) for s in (1, -1)]
    for mode, rnd in modes.items():
        own = gmpy2.context(precision=3, emin=-15, emax=16, subnormalize=True, round=rnd)
        for v in sums:
            assert mpfr_fma.round_sum(v, 2.0**-16, "ocp_e5m2", mode) == float(own.add(v, 2.0**-16)), (mode, v)


def test_kernel_table_path_equals_round_sum():
    """One product row (a = 0x38 = 1.0, b = 0x3c = 1.5 in e4m3), every c, in round to odd: the table lookup."""
    c = np.arange(256)
    got = mpfr_fma.fma_ocp_e4m3_rto(np.full(256, 0x38), np.full(256, 0x3C), c)
    dt = mpfr_fma._dtype("ocp_e4m3")
    want = np.array([mpfr_fma.round_sum(1.5, _value("ocp_e4m3", k), "ocp_e4m3", "rto") for k in range(256)])
    assert (got == want.astype(dt).view(np.uint8)).all()
    assert got[0x01] == 0x3D  # 1.5 + 2^-9, inexact: the odd neighbour 1.625
