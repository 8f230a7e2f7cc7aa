"""Mutation check of the cast prover: deliberately broken kernels must be caught with a confirmed counterexample.

A small self-contained binary32 -> ocp_e4m3 kernel (round to nearest even,
overflow saturate or NaN) written against the bit-operations interface is
first proved correct; then each mutation (one classic bug) must yield a
counterexample that the exact model confirms, that replays on numpy words,
and that the test re-checks itself against refarith.exact.
"""

from __future__ import annotations

import numpy as np
import pytest

from refarith.exact.ops import cast as exact_cast
from refarith.fast.bitops import NumpyBitOps
from refarith.smt.castproofs import prove_kernel

SETTINGS = [("rne", "saturate", "error", "error"), ("rne", "nan", "error", "error")]
E4M3_MAX = 0x7E
E4M3_NAN = 0x7F
EMIN_B = 121  # binary32 biased exponent of e4m3's smallest normal binade 2^-6


def mini_e4m3(ops, x, src, dst, rounding="rne", overflow="saturate", nan_policy="error", negative="error", bug=None):
    """binary32 -> ocp_e4m3, rne, saturate/nan, with an optional injected bug."""
    assert src.name == "binary32" and dst.name == "ocp_e4m3" and rounding == "rne"
    c = lambda v: ops.const(v, x)  # noqa: E731
    sign = ops.shr(x, 31)
    sbit = ops.shl(sign, 7)
    e_f = ops.and_(ops.shr(x, 23), c(0xFF))
    m_f = ops.and_(x, c(0x7FFFFF))
    nan = ops.band(ops.eq(e_f, c(0xFF)), ops.ne(m_f, c(0)))
    inf = ops.band(ops.eq(e_f, c(0xFF)), ops.eq(m_f, c(0)))
    sub = ops.eq(e_f, c(0))
    sig = ops.where(sub, m_f, ops.or_(m_f, c(1 << 23)))
    eb = ops.where(sub, c(1), e_f)
    e_eff = eb if bug == "no_subnormals" else ops.umax(eb, c(EMIN_B))
    d = ops.umin(ops.add(c(20), ops.sub(e_eff, eb)), c(31))  # sig < 2^24: a count clamped to 31 still gives 0
    n = ops.shr(sig, d)
    rem = ops.sub(sig, ops.shl(n, d))
    half = ops.shl(c(1), ops.sub(d, c(1)))
    c_lo = ops.add(ops.shl(ops.sub(e_eff, c(EMIN_B)), 3), n)
    odd = ops.eq(ops.and_(c_lo, c(1)), c(1))
    if bug == "round_half_up":
        up = ops.uge(rem, half)
    else:
        up = ops.bor(ops.ugt(rem, half), ops.band(ops.eq(rem, half), odd))
    c_r = ops.where(up, ops.add(c_lo, c(1)), c_lo)
    if bug == "lost_carry":  # the rounding increment stays inside the mantissa field
        c_r = ops.or_(ops.and_(c_lo, c(~7)), ops.and_(ops.where(up, ops.add(c_lo, c(1)), c_lo), c(7)))
    if bug == "no_subnormals":  # below the normal range: flush to zero instead of rounding to a subnormal
        c_r = ops.where(ops.ult(eb, c(EMIN_B)), c(0), c_r)
    zero_code = c(0) if bug == "dropped_zero_sign" else sbit
    res = ops.where(ops.eq(c_r, c(0)), zero_code, ops.or_(sbit, c_r))
    big = ops.or_(sbit, c(E4M3_NAN if overflow == "nan" else E4M3_MAX))
    limit = E4M3_MAX + 1 if bug == "overflow_off_by_one" else E4M3_MAX
    res = ops.where(ops.ugt(c_r, c(limit)), big, res)
    res = ops.where(inf, big, res)
    res = ops.where(nan, ops.or_(sbit, c(E4M3_NAN)), res)
    return res, ops.mfalse(x)


def _with_bug(bug):
    def kernel(ops, x, src, dst, **kw):
        return mini_e4m3(ops, x, src, dst, bug=bug, **kw)

    return kernel


def _run_numpy(kernel, x: int, setting) -> int:
    from refarith.formats import get_format

    ops = NumpyBitOps(32)
    codes, _ = kernel(ops, ops.word(np.array([x], dtype=np.uint64)), get_format("binary32"),
                      get_format("ocp_e4m3"), rounding=setting[0], overflow=setting[1])
    return int(np.asarray(codes).reshape(-1)[0])


def test_reference_mini_kernel_is_proved():
    out = prove_kernel(_with_bug(None), "binary32", "ocp_e4m3", SETTINGS, timeout_s=60, width=32)
    assert out.verdict == "proved", out


@pytest.mark.parametrize("bug", ["overflow_off_by_one", "round_half_up", "lost_carry", "no_subnormals",
                                 "dropped_zero_sign"])
def test_mutation_is_caught(bug):
    kernel = _with_bug(bug)
    out = prove_kernel(kernel, "binary32", "ocp_e4m3", SETTINGS, timeout_s=60, width=32)
    assert out.verdict == "counterexample", out
    assert out.confirmed is True, out.counterexample
    x = int(out.counterexample["source_bits"], 16)
    # independent re-check: the broken kernel on numpy words disagrees with the exact model on this input
    assert any(_run_numpy(kernel, x, st) != exact_cast(x, "binary32", "ocp_e4m3", st[0], st[1]).code
               for st in SETTINGS), out.counterexample
    # and the input is a real edge of the bug's kind
    failing = [k for k in out.counterexample if k.startswith("cast(")]
    assert failing, out.counterexample
