"""The Z3 encodings evaluated on concrete inputs: spec encoding == exact model, Z3 bit-ops == numpy bit-ops."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
import z3

from refarith.errors import RefarithError
from refarith.exact.ops import cast as exact_cast
from refarith.exact.ops import decode
from refarith.exact.rounding import DETERMINISTIC_MODES
from refarith.fast.bitops import NumpyBitOps
from refarith.formats import float_formats, get_format
from refarith.smt.bitops_z3 import Z3BitOps
from refarith.smt.castproofs import valid_overflows
from refarith.smt.encode import cast_spec, value_key

TARGETS = [f.name for f in float_formats(8)] + ["bfloat16", "binary16"]


def _nearest_b32(v: Fraction) -> int:
    """A binary32 pattern near v (the truncation of its float64 value; exact for every value used here)."""
    return int(np.array([float(v)], dtype=np.float32).view(np.uint32)[0])


def boundary_inputs(dst_name: str, rng: random.Random, n_codes: int = 16) -> list[int]:
    """binary32 inputs at and around target values and midpoints (±1 binary32 ulp), specials, random patterns."""
    dst = get_format(dst_name)
    vals = []
    for code in range(min(dst.ncodes, 1 << 16)):
        v = decode(code, dst)
        if v.is_finite:
            vals.append(v.fraction)
    vals = sorted(set(vals))
    picks = set(rng.sample(range(len(vals) - 1), min(n_codes, len(vals) - 1))) | {0, len(vals) - 2}
    out = {0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x00000001, 0x80000001, 0x7F7FFFFF}
    for i in picks:
        a, b = vals[i], vals[i + 1]
        for v in (a, (a + b) / 2, b + (b - a) / 2):  # a value, a midpoint, the midpoint above (overflow edge)
            if abs(v) >= 2**127 or (v != 0 and abs(v) < Fraction(1, 2**149)):
                continue
            p = _nearest_b32(v)
            out.update({p, p + 1, p - 1, p ^ 0x80000000})
    out.update(rng.getrandbits(32) for _ in range(8))
    return sorted(x & 0xFFFFFFFF for x in out)


def _eval(term, x, v: int, width: int) -> int:
    r = z3.simplify(z3.substitute(term, (x, z3.BitVecVal(v, width))))
    return int(z3.is_true(r)) if z3.is_bool(r) else r.as_long()


@pytest.mark.parametrize("dst", TARGETS)
def test_spec_encoding_matches_exact_model(dst):
    rng = random.Random(f"spec-{dst}")
    x = z3.BitVec("x", 32)
    inputs = boundary_inputs(dst, rng)
    f = get_format(dst)
    checked = 0
    for rnd in DETERMINISTIC_MODES:
        for ov in valid_overflows(f):
            policies = [("error", "error")]
            if not f.has_nan:
                policies.append(("max", "error"))
            if not f.signed:
                policies.append(("zero", "clamp"))
            for nanp, neg in policies:
                spec = cast_spec(x, "binary32", dst, rnd, ov, nanp, neg)
                for v in inputs[:: 1 if (rnd, ov) == ("rne", valid_overflows(f)[0]) else 5]:
                    try:
                        want = exact_cast(v, "binary32", dst, rnd, ov, nanp, neg).code
                    except RefarithError:
                        want = None
                    err = _eval(spec.error, x, v, 32)
                    got = None if err else _eval(spec.code, x, v, 32)
                    assert got == want, (dst, rnd, ov, nanp, neg, hex(v))
                    checked += 1
    assert checked > 200


@pytest.mark.parametrize("src,dst,k", [("binary32", "ocp_e4m3", 8), ("binary16", "ocp_e2m1", 4),
                                       ("bfloat16", "ieee_e3m4", 4), ("binary32", "e8m0", 3)])
def test_sr_spec_encoding_matches_exact_model(src, dst, k):
    rng = random.Random(f"sr-{src}-{dst}")
    f, s = get_format(dst), get_format(src)
    x, r = z3.BitVec("x", s.nbits), z3.BitVec("r", 32)
    if s.nbits == 32:
        inputs = boundary_inputs(dst, rng, 8)
    else:  # a stride through all 16-bit patterns, plus the specials and the smallest subnormals
        inputs = list(range(0, 1 << 16, 251)) + [0x7F80, 0x7C00, 0xFC00, 0xFF80, 0x8000, 0x0001, 0x8001]
    for ov in valid_overflows(f):
        spec = cast_spec(x, src, dst, "sr", ov, rand=r, rand_bits=k)
        for v in inputs:
            for rv in {0, 1, (1 << k) - 1, rng.randrange(1 << k)}:
                want = exact_cast(v, src, dst, "sr", ov, rand=rv, rand_bits=k).code if not (
                    f.has_nan is False and decode(v, s).is_nan) and not (
                    not f.signed and decode(v, s).sign and not decode(v, s).is_zero
                    and not decode(v, s).is_nan) else None
                t = z3.simplify(z3.substitute(spec.code, (x, z3.BitVecVal(v, s.nbits)), (r, z3.BitVecVal(rv, 32))))
                if want is not None:
                    assert t.as_long() == want, (src, dst, ov, hex(v), rv)


@pytest.mark.slow
@pytest.mark.parametrize("dst,rnd,ov", [("ocp_e4m3", "rne", "nan"), ("ocp_e2m1", "rtz", "saturate"),
                                        ("e8m0", "rne", "saturate"), ("ocp_e5m2", "rup", "inf")])
def test_spec_encoding_exhaustive_binary16(dst, rnd, ov):
    x = z3.BitVec("x", 16)
    spec = cast_spec(x, "binary16", dst, rnd, ov, "max", "clamp")
    for v in range(1 << 16):
        want = exact_cast(v, "binary16", dst, rnd, ov, "max", "clamp").code
        assert _eval(spec.code, x, v, 16) == want, hex(v)


def test_value_key_orders_codes():
    for dst in ("ocp_e4m3", "e4m3fnuz", "binary8p3se", "ue4m3"):
        f = get_format(dst)
        c = z3.BitVec("c", f.nbits)
        key = value_key(c, f)
        rows = []
        for code in range(f.ncodes):
            v = decode(code, f)
            if v.is_nan:
                continue
            k = _eval(key, c, code, f.nbits)
            k = k - (1 << 32) if k >> 31 else k
            rows.append((v, k))
        for (v1, k1) in rows:
            for (v2, k2) in rows[:: 7]:
                big = Fraction(10**9)
                a = (big if v1.is_inf and not v1.sign else -big if v1.is_inf else v1.fraction)
                b = (big if v2.is_inf and not v2.sign else -big if v2.is_inf else v2.fraction)
                assert (a <= b) == (k1 <= k2), (dst, str(v1), str(v2))


OPS = ["add", "sub", "mul", "and_", "or_", "xor", "eq", "ne", "ult", "ule", "ugt", "uge"]


@pytest.mark.parametrize("width", [32, 64])
def test_z3_bitops_match_numpy(width):
    rng = random.Random(width)
    zo, no = Z3BitOps(width), NumpyBitOps(width)
    a, b = z3.BitVec("a", width), z3.BitVec("b", width)
    m = (1 << width) - 1
    samples = [(rng.getrandbits(width), rng.getrandbits(width)) for _ in range(40)] + [(0, 0), (m, 1), (1, m)]

    def run(o, x, y, name):
        return getattr(o, name)(x, y)

    for name in OPS:
        term = run(zo, a, b, name)
        for x, y in samples:
            want = run(no, no.word(np.array([x], dtype=np.uint64)), no.word(np.array([y], dtype=np.uint64)), name)
            got = z3.simplify(z3.substitute(term, (a, z3.BitVecVal(x, width)), (b, z3.BitVecVal(y, width))))
            got = int(z3.is_true(got)) if z3.is_bool(got) else got.as_long()
            assert got == int(np.asarray(want).reshape(-1)[0]), (name, x, y)
    for s in (0, 1, 7, width - 1):
        for x, _ in samples:
            nx = no.word(np.array([x], dtype=np.uint64))
            for name in ("shl", "shr"):
                got = z3.simplify(z3.substitute(getattr(zo, name)(a, zo.const(s)), (a, z3.BitVecVal(x, width))))
                assert got.as_long() == int(getattr(no, name)(nx, s)[0]), (name, x, s)
    for x, _ in samples:
        nx = no.word(np.array([x], dtype=np.uint64))
        got = z3.simplify(z3.substitute(zo.clz(a), (a, z3.BitVecVal(x, width)))).as_long()
        assert got == int(no.clz(nx)[0]), x
        got = z3.simplify(z3.substitute(zo.not_(a), (a, z3.BitVecVal(x, width)))).as_long()
        assert got == int(no.not_(nx)[0])


def test_out_of_range_shift_is_unconstrained():
    zo = Z3BitOps(32)
    a, s = z3.BitVec("a", 32), z3.BitVec("s", 32)
    r = zo.shr(a, s)
    assert len(zo.undefined) == 1
    solver = z3.Solver()
    solver.add(s == 40, a == 0, r == 12345)  # a result a backend could give for an undefined count
    assert solver.check() == z3.sat
    solver = z3.Solver()
    solver.add(s == 3, a == 16, r != 2)
    assert solver.check() == z3.unsat
