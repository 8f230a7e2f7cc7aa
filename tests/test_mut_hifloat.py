"""fast/hifloat.py (numpy path) against refarith.exact.hifloat.round_tapered with torch absent: every HiF8
magnitude, every midpoint and the binary64 neighbours of each, both signs, zeros, values below half the least
magnitude, the overflow step and beyond, inf and NaN, under every rounding and overflow mode, from float and
integer arrays of several dtypes; and the refusals with their texts."""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest

from refarith.errors import UnknownModeError
from refarith.exact.hifloat import round_tapered
from refarith.exact.value import Value
from refarith.fast import hifloat as fh
from refarith.formats import get_format

HIF8 = get_format("hif8")
OVERFLOWS = ("inf", "inf_always", "nan", "saturate")


def _exact(x: float, rounding: str, overflow: str) -> int:
    if np.isnan(x):
        v = Value.nan(0)
    elif np.isinf(x) or x == 0:
        v = (Value.inf if np.isinf(x) else Value.zero)(int(np.signbit(x)))
    else:
        v = Value.of(Fraction(float(x)))
    return round_tapered(v, HIF8, rounding, overflow).code


def _inputs(dense: bool) -> np.ndarray:
    mags = [float(g) for g, _ in HIF8.positive_grid] + [float(HIF8.overflow_step)]
    mids = [(a + b) / 2 for a, b in zip(mags, mags[1:])]
    base = mags + mids if dense else mags[:6] + mags[-6:] + mids[:6] + mids[-6:] + mids[100:110]
    pts = []
    for v in base:
        pts += [v, np.nextafter(v, 0.0), np.nextafter(v, np.inf)]
    least = mags[1] if mags[0] == 0 else mags[0]
    pts += [0.0, least / 2, least / 4, least * 0.75, 2.0 * mags[-1], 1e300, np.inf, np.nan]
    a = np.array(pts)
    return np.concatenate([a, -a])


@pytest.mark.parametrize("rounding", fh.HIF8_ROUNDING)
def test_every_magnitude_midpoint_and_neighbour(rounding):
    xs = _inputs(dense=True)
    for overflow in OVERFLOWS:
        sub = xs if overflow == "inf" else _inputs(dense=False)
        got = fh.encode(sub, HIF8, rounding, overflow, "numpy")
        assert got.dtype == np.uint8
        assert got.tolist() == [_exact(x, rounding, overflow) for x in sub], overflow


def test_sources_of_other_dtypes_and_shapes():
    h = np.array([[1.0, -2.5, 65504.0, 2.0 ** -24], [-0.0, 3.0, -7.0, 0.1]], dtype=np.float16)
    s = np.array([1.0, -0.3, 1e6, -3e-7, 40000.0], dtype=np.float32)
    ints = np.array([0, 1, -3, 17, 33000, -60000], dtype=np.int64)
    uints = np.array([0, 5, 200, 65535], dtype=np.uint16)
    for x in (h, s, ints, uints):
        for rounding in ("rne", "rto", "rdn"):
            got = fh.encode(x, HIF8, rounding, "inf", "numpy")
            assert got.shape == x.shape and got.dtype == np.uint8
            assert got.reshape(-1).tolist() == [_exact(float(v), rounding, "inf") for v in x.reshape(-1)]
    ml_dtypes = pytest.importorskip("ml_dtypes")
    b = np.array([1.0, -0.3, 3e4, -1e-6], dtype=ml_dtypes.bfloat16)
    assert fh.encode(b, HIF8, "rna", "saturate", "numpy").tolist() == \
        [_exact(float(v), "rna", "saturate") for v in b]
    assert fh.encode([1.5, -2.0], HIF8, "rne", "inf", "numpy").tolist() == \
        [_exact(v, "rne", "inf") for v in (1.5, -2.0)]


def test_refusals():
    with pytest.raises(UnknownModeError, match="^" + re.escape(
            "rounding 'sr' into hifloat8 is not modelled; use one of rne, rna, rtz, rup, rdn, rto") + "$"):
        fh.encode(np.array([1.0]), HIF8, "sr", "inf", "numpy")
    with pytest.raises(UnknownModeError, match="^" + re.escape(
            "hifloat8 encode takes a float or integer array, got dtype bool") + "$"):
        fh.encode(np.array([True]), HIF8, "rne", "inf", "numpy")
    with pytest.raises(UnknownModeError, match="^" + re.escape(
            "hifloat8 encode takes a float or integer array, got dtype complex128") + "$"):
        fh.encode(np.array([1j]), HIF8, "rne", "inf", "numpy")


@pytest.mark.parametrize("overflow", ["satnone", "satfinite", "satpropagate", "nan_rto", "saturate_inf_nan"])
def test_overflow_modes_not_modelled_are_refused_not_read_as_saturate(overflow):
    # each of these gives something other than +-max somewhere (satnone and satpropagate keep inf, nan_rto and
    # saturate_inf_nan give NaN), so reading them as saturate would be silently wrong; the exact model, the fast
    # kernel and the cast entry point all refuse them with the same text
    from refarith.exact.rounding import round_value
    from refarith.fast import cast as fcast

    text = "^" + re.escape(f"overflow mode {overflow!r} into hifloat8 is not modelled; use one of inf, "
                           "inf_always, nan, saturate") + "$"
    with pytest.raises(UnknownModeError, match=text):
        fh.encode(np.array([1e9, np.inf]), HIF8, "rne", overflow, "numpy")
    with pytest.raises(UnknownModeError, match=text):
        round_tapered(Value.of(Fraction(10 ** 9)), HIF8, "rne", overflow)
    with pytest.raises(UnknownModeError, match=text):
        round_value(Value.inf(0), HIF8, "rne", overflow)
    with pytest.raises(UnknownModeError, match=text):
        fcast.encode(np.array([1.0]), "hifloat8", "rne", overflow)
