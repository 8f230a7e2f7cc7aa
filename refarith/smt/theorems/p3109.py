"""IEEE P3109 projection theorems (interim report v4.0, §4.7.3 - §4.7.6), for every K = 8 P3109 format.

The bit-level statement of the projection is :func:`project_spec`, a restatement of the report's text on Z3
bit-vectors written independently of the kernel: ωRoundToPrecision (§4.7.4: Q, S~, RoundAway per mode,
CodeIsEven including the P = 1 rule), ωSaturate (§4.7.5: the rule list, first match wins, in the report's order)
and ωEncode (§4.7.6).  Theorems:

* ``p3109.kernel.binary32->DST.MODE``: the cast kernel (``refarith.fast.castkernel.cast_bits``, traced graph) with
  overflow = satnone, satfinite, satpropagate (negative = project for unsigned targets) equals
  :func:`project_spec` for every binary32 pattern, one theorem per deterministic rounding mode.
* ``p3109.kernel.binary32->DST.sr``: the stochastic kernel (StochasticA/B/C, 3 random bits) with ωProject restated
  with §4.7.4's stochastic RoundAway, every saturation mode.
* ``p3109.monotone.binary32->DST``: the projection is monotone in its input for every deterministic mode and
  saturation mode (adjacent-pair reduction over the binary32 chain; unsigned targets: from +0 up).
* ``p3109.satfinite_eq_satpropagate.binary32->DST``: the two modes give the same code for every finite input.
* ``p3109.unsigned_negative.binary32->DST`` (unsigned targets): for every negative non-zero binary32 x (and -inf)
  the kernel gives 0 under satfinite and satpropagate in every mode; under satnone -inf gives NaN in every mode,
  a finite x gives 0 for rtz and rup, NaN for rdn and rto, and for rne NaN exactly when |x| > half the smallest
  subnormal, for rna exactly when |x| >= it (0 otherwise).
* ``p3109.kernel.binary32->DST`` for DST of other widths (:func:`other_width_targets`): the kernel theorem, every
  deterministic mode in one theorem.
* ``p3109.rto_odd.binary32->DST``: under ToOdd, a finite in-range input that the target cannot represent exactly
  gets an odd code (exactness judged by decoding the code to binary32, where every K = 8 value is exact).
"""

from __future__ import annotations

import dataclasses

import z3

from refarith.errors import RefarithError
from refarith.exact.ops import decode
from refarith.exact.rounding import DETERMINISTIC_MODES, SATURATION_MODES
from refarith.formats import FloatFormat, get_format, p3109_formats
from refarith.smt import castproofs as cp
from refarith.smt.encode import Decoded, bitlen, decode_ieee, is_nan_code, value_key
from refarith.smt.registry import PROVED, Outcome, prove, theorem

SRC = "binary32"


def _c(v: int, w: int) -> z3.BitVecRef:
    return z3.BitVecVal(v & ((1 << w) - 1), w)


def _sr_away(sig: z3.BitVecRef, sh: z3.BitVecRef, pos: z3.BoolRef, gt0: z3.BoolRef, sr: tuple) -> z3.BoolRef:
    """RoundAway of P3109 §4.7.4's stochastic modes for nu = (the low ``sh`` bits of ``sig``) / 2^sh and the
    random integer R of N bits (``sr`` = (R, N, variant)): StochasticA floor(nu 2^N) + R >= 2^N; StochasticB
    floor(nu 2^(N+1)) + 2R + 1 >= 2^(N+1); StochasticC RNITE(nu 2^N) + R >= 2^N (``c_odd``: ties to odd)."""
    r, n, variant = sr
    w = sig.size()
    low = z3.If(pos, sig & ((_c(1, w) << sh) - 1), _c(0, w))  # nu * 2^sh (shifts >= w give 0 in Z3)

    def top(bits: int) -> z3.BitVecRef:  # floor(nu * 2^bits)
        return z3.If(sh >= bits, z3.LShR(low, sh - bits), low << (bits - sh))

    rz = z3.ZeroExt(w - n, r)
    if variant == "a":
        return z3.UGE(top(n) + rz, _c(1 << n, w))
    if variant == "b":
        return z3.And(gt0, z3.UGE(top(n + 1) + 2 * rz + 1, _c(1 << (n + 1), w)))
    t1 = top(n + 1)
    t, h = z3.LShR(t1, 1), z3.Extract(0, 0, t1) == 1
    sticky = z3.If(sh > n + 1, (low & ((_c(1, w) << (sh - n - 1)) - 1)) != 0, False)
    odd = z3.Extract(0, 0, t) == 1
    up = z3.And(h, z3.Or(sticky, odd if variant == "c" else z3.Not(odd)))
    return z3.UGE(t + z3.If(up, _c(1, w), _c(0, w)) + rz, _c(1 << n, w))


def _round_to_precision(d: Decoded, dst: FloatFormat, rounding: str,
                        sr: tuple | None = None) -> tuple[z3.BitVecRef, z3.BoolRef]:
    """§4.7.4 on a decoded finite non-zero source: (the magnitude code of the rounded value in the unbounded
    exponent range, inexact).  Q = max(floor(log2 |X|), 1 - B) - P + 1; floor(S~) and nu come from shifting the
    source significand by Q - es; consecutive magnitudes have consecutive codes (also across binades), so
    S = floor(S~) + RoundAway is the code floor + RoundAway."""
    w = d.sig.size()
    p, b = dst.mbits + 1, dst.bias
    lg = d.es + bitlen(d.sig) - 1
    q = z3.If(lg > 1 - b, lg, _c(1 - b, w)) - (p - 1)
    sh = q - d.es
    pos = sh > 0
    fl = z3.If(pos, z3.LShR(d.sig, sh), d.sig << (0 - sh))
    half = z3.If(pos, z3.Extract(0, 0, z3.LShR(d.sig, sh - 1)) == 1, False)  # nu >= 0.5
    rest = z3.If(pos, (d.sig & ((_c(1, w) << (sh - 1)) - 1)) != 0, False)  # nu > 0 below the half bit
    gt0 = z3.Or(half, rest)
    code = ((q + (p - 1) + b - 1) << (p - 1)) + fl  # the code of floor(S~) * 2^Q
    if p > 1:
        even = z3.Extract(0, 0, fl) == 0
    else:
        even = z3.Or(fl == 0, z3.Extract(0, 0, q + b) == 0)
    away = {
        "rtz": z3.BoolVal(False),
        "rup": z3.And(gt0, z3.Not(d.sign)),
        "rdn": z3.And(gt0, d.sign),
        "rna": half,
        "rne": z3.Or(z3.And(half, rest), z3.And(half, z3.Not(rest), z3.Not(even))),
        "rto": z3.And(gt0, even),
    }[rounding] if rounding != "sr" else _sr_away(d.sig, sh, pos, gt0, sr)
    return code + z3.If(away, _c(1, w), _c(0, w)), gt0


def project_spec(bits: z3.BitVecRef, dst: FloatFormat | str, rounding: str, sat: str,
                 sr: tuple | None = None) -> z3.BitVecRef:
    """ωProject of P3109 §4.7.3 for a binary32 pattern into a P3109 format: the code (K bits).  ``rounding='sr'``:
    ``sr`` = (R, N, variant), the random integer (an N-bit vector) and the stochastic mode (see :func:`_sr_away`);
    ωSaturate treats the stochastic modes as the nearest ones (they may round away from zero)."""
    dst = get_format(dst)
    d = decode_ieee(bits, SRC)
    w = d.sig.size()
    k = dst.nbits
    signed, ext = dst.signed, dst.specials == "p3109e"
    u, _ = _round_to_precision(d, dst, rounding, sr)
    hi = dst.max_code
    nan = _c(1 << (k - 1) if signed else (1 << k) - 1, k)
    pinf = _c((1 << (k - 1)) - 1 if signed else (1 << k) - 2, k)
    ninf = _c((1 << k) - 1, k)
    m_hi = _c(hi, k)
    m_lo = _c((1 << (k - 1)) | hi, k) if signed else _c(0, k)
    # the rounded value X: its sign, zero-ness and position against [M_lo, M_hi]
    x_zero = z3.Or(d.is_zero, u == 0)
    neg = z3.And(d.sign, z3.Not(x_zero))
    above = z3.And(z3.Not(d.sign), z3.Not(d.is_zero), z3.UGT(u, _c(hi, w)))
    below = z3.And(neg, z3.UGT(u, _c(hi, w))) if signed else neg
    mag = z3.Extract(k - 1, 0, u)
    in_range = z3.If(x_zero, _c(0, k), z3.If(neg, mag | _c(1 << (k - 1), k), mag) if signed else mag)
    r = rounding
    if sat == "satfinite":
        rules = [(z3.And(d.is_inf, z3.Not(d.sign)), m_hi), (z3.And(d.is_inf, d.sign), m_lo),
                 (below, m_lo), (above, m_hi)]
    elif sat == "satpropagate":
        rules = [(z3.And(d.is_inf, z3.Not(d.sign)), pinf if ext else m_hi),
                 (z3.And(d.is_inf, d.sign), ninf if (signed and ext) else m_lo),
                 (below, m_lo), (above, m_hi)]
    else:
        rules = [(z3.And(d.is_inf, z3.Not(d.sign)), pinf if ext else m_hi),
                 (z3.And(d.is_inf, d.sign), ninf if (signed and ext) else (nan if not signed else m_lo))]
        if r == "rto" and not signed and ext:
            rules.append((above, m_hi))
        if r in ("rtz", "rdn"):
            rules.append((above, m_hi))
        if r in ("rtz", "rup"):
            rules.append((below, m_lo))
        rules += [(below, ninf if (signed and ext) else (nan if not signed else m_lo)),
                  (above, pinf if ext else m_hi)]
    out = in_range
    for cond, val in reversed(rules):
        out = z3.If(cond, val, out)
    return z3.If(d.is_nan, nan, out)


def _kernel():
    from refarith.fast.castkernel import cast_bits

    return cast_bits


def _neg(dst: FloatFormat) -> str:
    return "error" if dst.signed else "project"


def _kernel_code(bits: z3.BitVecRef, dst: FloatFormat, rounding: str, sat: str) -> tuple[z3.BitVecRef, str]:
    from refarith.fast.castkernel import required_width

    src = get_format(SRC)
    codes, err, _, digest = cp.kernel_formula(_kernel(), bits, src, dst, rounding, sat, "error", _neg(dst),
                                              required_width(src, dst))
    return codes, digest


def _show(code: int | None, fmt: FloatFormat) -> str:
    return "error" if code is None else f"{code:#04x} = {decode(code, fmt)}"


def _exact(x: int, dst: FloatFormat, rounding: str, sat: str) -> int | None:
    return cp.exact_result(x, get_format(SRC), dst, rounding, sat, "error", _neg(dst))


def prove_kernel_projection(dst: FloatFormat | str, rounding: str, timeout_s: float = 60.0) -> Outcome:
    """Claim: for every binary32 x, the kernel's code (whole word) equals project_spec for each saturation mode."""
    dst = get_format(dst)
    bits = z3.BitVec("x", 32)
    parts, observe, digests = [], {}, []
    for i, sat in enumerate(SATURATION_MODES):
        codes, digest = _kernel_code(bits, dst, rounding, sat)
        digests.append(digest)
        want = project_spec(bits, dst, rounding, sat)
        parts.append(codes == z3.ZeroExt(codes.size() - dst.nbits, want))
        observe.update({f"k{i}": codes, f"s{i}": want})

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        x = a["x"]
        shown: dict = {"source_bits": f"{x:#010x}", "source_value": str(decode(x, SRC))}
        bad = False
        for i, sat in enumerate(SATURATION_MODES):
            if a[f"k{i}"] != a[f"s{i}"]:
                ex = _exact(x, dst, rounding, sat)
                bad = bad or ex != a[f"k{i}"]
                shown[sat] = {"kernel": _show(a[f"k{i}"], dst), "section_4_7": _show(a[f"s{i}"], dst),
                              "exact_model": _show(ex, dst)}
        return shown, bad

    return cp._with_graphs(prove(z3.And(*parts), {"x": bits}, timeout_s, confirm, observe=observe), digests)


def prove_kernel_projection_sr(dst: FloatFormat | str, variant: str, k: int, timeout_s: float = 60.0) -> Outcome:
    """Claim: for every binary32 x and k-bit random integer R, the stochastic kernel (``sr=variant``) equals
    project_spec with that stochastic mode, in each saturation mode."""
    from refarith.fast.graphs import cast_graph
    from refarith.fast.trace import evaluate
    from refarith.smt.bitops_z3 import Z3BitOps

    dst = get_format(dst)
    bits, r = z3.BitVec("x", 32), z3.BitVec("r", k)
    parts, observe, digests = [], {}, []
    for i, sat in enumerate(SATURATION_MODES):
        g = cast_graph(SRC, dst.name, "sr", sat, "error", _neg(dst), k, sr_variant=variant)
        ops = Z3BitOps(g.width)
        codes, _err = evaluate(g, ops, [ops.word(bits), ops.word(r)])
        codes = ops.word(codes)
        digests.append(g.digest)
        want = project_spec(bits, dst, "sr", sat, (r, k, variant))
        parts.append(codes == z3.ZeroExt(codes.size() - dst.nbits, want))
        observe.update({f"k{i}": codes, f"s{i}": want})

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        x, rv = a["x"], a["r"]
        shown: dict = {"source_bits": f"{x:#010x}", "source_value": str(decode(x, SRC)), "r": rv, "k": k,
                       "sr": variant}
        bad = False
        for i, sat in enumerate(SATURATION_MODES):
            if a[f"k{i}"] != a[f"s{i}"]:
                try:
                    ex = cp.exact_cast(x, SRC, dst, "sr", sat, "error", _neg(dst), rand=rv, rand_bits=k,
                                       sr_variant=variant).code
                except RefarithError:
                    ex = None
                bad = bad or ex != a[f"k{i}"]
                shown[sat] = {"kernel": _show(a[f"k{i}"], dst), "section_4_7": _show(a[f"s{i}"], dst),
                              "exact_model": _show(ex, dst)}
        return shown, bad

    return cp._with_graphs(prove(z3.And(*parts), {"x": bits, "r": r}, timeout_s, confirm, observe=observe),
                           digests)


_value = cp._value  # a code's value in the order of the monotonicity claims (NaN: None), as the cast proofs use it


def prove_monotone(dst: FloatFormat | str, timeout_s: float = 120.0) -> Outcome:
    """Claim: for binary32 x and its successor y in the chain -inf .. -0, +0 .. +inf (unsigned targets: from +0),
    value(project(x)) <= value(project(y)) for every deterministic mode and saturation mode (no NaN results)."""
    dst = get_format(dst)
    x = z3.BitVec("x", 32)
    y = cp.ieee_successor(x)
    fx = z3.fpBVToFP(x, z3.Float32())
    parts = []
    for rnd in DETERMINISTIC_MODES:
        for sat in SATURATION_MODES:
            a, b = project_spec(x, dst, rnd, sat), project_spec(y, dst, rnd, sat)
            parts.append(z3.And(z3.Not(is_nan_code(a, dst)), z3.Not(is_nan_code(b, dst)),
                                value_key(a, dst) <= value_key(b, dst)))
    pre = z3.And(z3.Not(z3.fpIsNaN(fx)), z3.Not(z3.And(z3.fpIsInf(fx), z3.fpIsPositive(fx))))
    if not dst.signed:
        pre = z3.And(pre, z3.Extract(31, 31, x) == 0)

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        xv, yv = a["x"], a["y"]
        shown: dict = {"x": f"{xv:#010x} = {decode(xv, SRC)}", "y": f"{yv:#010x} = {decode(yv, SRC)}"}
        bad = False
        for rnd in DETERMINISTIC_MODES:
            for sat in SATURATION_MODES:
                cx, cy = _exact(xv, dst, rnd, sat), _exact(yv, dst, rnd, sat)
                vx, vy = _value(cx, dst), _value(cy, dst)
                if vx is None or vy is None or vx > vy:
                    bad = True
                    shown[f"{rnd}.{sat}"] = f"{_show(cx, dst)} then {_show(cy, dst)}"
        return shown, bad

    return prove(z3.Implies(pre, z3.And(*parts)), {"x": x}, timeout_s, confirm, observe={"y": y})


def prove_satfinite_eq_satpropagate(dst: FloatFormat | str, timeout_s: float = 60.0) -> Outcome:
    """Claim: for every finite binary32 x and every deterministic mode, project(satfinite) == project(satpropagate)
    (the kernel's codes)."""
    dst = get_format(dst)
    x = z3.BitVec("x", 32)
    fx = z3.fpBVToFP(x, z3.Float32())
    parts = []
    for rnd in DETERMINISTIC_MODES:
        a, _ = _kernel_code(x, dst, rnd, "satfinite")
        b, _ = _kernel_code(x, dst, rnd, "satpropagate")
        parts.append(a == b)

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        xv = a["x"]
        shown: dict = {"x": f"{xv:#010x} = {decode(xv, SRC)}"}
        bad = False
        for rnd in DETERMINISTIC_MODES:
            cf, cp_ = _exact(xv, dst, rnd, "satfinite"), _exact(xv, dst, rnd, "satpropagate")
            if cf != cp_:
                bad = True
                shown[rnd] = f"satfinite {_show(cf, dst)}, satpropagate {_show(cp_, dst)}"
        return shown, bad

    pre = z3.Not(z3.Or(z3.fpIsNaN(fx), z3.fpIsInf(fx)))
    return prove(z3.Implies(pre, z3.And(*parts)), {"x": x}, timeout_s, confirm)


def prove_unsigned_negative(dst: FloatFormat | str, timeout_s: float = 60.0) -> Outcome:
    """Claim (unsigned targets): the §4.7.5 rules for negative inputs, as stated in the module docstring."""
    dst = get_format(dst)
    assert not dst.signed
    x = z3.BitVec("x", 32)
    fx = z3.fpBVToFP(x, z3.Float32())
    k = dst.nbits
    nan, zero = _c((1 << k) - 1, k), _c(0, k)
    half_sub = z3.FPVal(float(dst.min_subnormal / 2), z3.Float32())  # 2^(emin - m - 1): exact in binary32
    ax = z3.fpAbs(fx)
    parts = []
    for rnd in DETERMINISTIC_MODES:
        for sat in SATURATION_MODES:
            codes, _ = _kernel_code(x, dst, rnd, sat)
            c = z3.Extract(k - 1, 0, codes)
            if sat != "satnone":
                want = zero
            elif rnd in ("rtz", "rup"):
                want = z3.If(z3.fpIsInf(fx), nan, zero)
            elif rnd in ("rdn", "rto"):
                want = nan
            elif rnd == "rne":
                want = z3.If(z3.fpGT(ax, half_sub), nan, zero)
            else:  # rna
                want = z3.If(z3.fpGEQ(ax, half_sub), nan, zero)
            parts.append(z3.And(c == want, z3.Extract(codes.size() - 1, k, codes) == 0))
    pre = z3.And(z3.fpIsNegative(fx), z3.Not(z3.fpIsZero(fx)), z3.Not(z3.fpIsNaN(fx)))

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        xv = a["x"]
        v = decode(xv, SRC)
        shown: dict = {"x": f"{xv:#010x} = {v}"}
        bad = False
        h = dst.min_subnormal / 2
        for rnd in DETERMINISTIC_MODES:
            for sat in SATURATION_MODES:
                got = _exact(xv, dst, rnd, sat)
                if sat != "satnone" or (rnd in ("rtz", "rup") and not v.is_inf):
                    want = 0
                elif rnd in ("rdn", "rto", "rtz", "rup") or v.is_inf:
                    want = (1 << k) - 1
                else:
                    big = v.mag > h if rnd == "rne" else v.mag >= h
                    want = (1 << k) - 1 if big else 0
                if got != want:
                    bad = True
                    shown[f"{rnd}.{sat}"] = f"exact model {_show(got, dst)}, rule {_show(want, dst)}"
        return shown, bad

    return prove(z3.Implies(pre, z3.And(*parts)), {"x": x}, timeout_s, confirm)


def _decode_to_binary32(code: z3.BitVecRef, dst: FloatFormat) -> z3.FPRef:
    """The binary32 value of every finite code of a K = 8 format (a table; NaN and inf codes map to NaN/inf)."""
    out = z3.fpNaN(z3.Float32())
    for c in range(dst.ncodes):
        v = decode(c, dst)
        if v.is_nan:
            continue
        f = z3.fpPlusInfinity(z3.Float32()) if v.is_inf and not v.sign else (
            z3.fpMinusInfinity(z3.Float32()) if v.is_inf else z3.FPVal(v.to_float(), z3.Float32()))
        out = z3.If(code == c, f, out)
    return out


def prove_rto_odd(dst: FloatFormat | str, timeout_s: float = 60.0) -> Outcome:
    """Claim: under ToOdd (every saturation mode), a finite binary32 x with |x| <= M_hi (x >= 0 for unsigned
    targets) is either represented exactly by its code or gets a code whose last bit is 1."""
    dst = get_format(dst)
    x = z3.BitVec("x", 32)
    fx = z3.fpBVToFP(x, z3.Float32())
    k = dst.nbits
    m_hi = z3.FPVal(float(dst.max), z3.Float32())
    parts = []
    for sat in SATURATION_MODES:
        codes, _ = _kernel_code(x, dst, "rto", sat)
        c = z3.Extract(k - 1, 0, codes)
        parts.append(z3.Or(z3.fpEQ(_decode_to_binary32(c, dst), fx), z3.Extract(0, 0, c) == 1))
    pre = z3.And(z3.Not(z3.fpIsNaN(fx)), z3.Not(z3.fpIsInf(fx)), z3.fpLEQ(z3.fpAbs(fx), m_hi))
    if not dst.signed:
        pre = z3.And(pre, z3.Extract(31, 31, x) == 0)

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        xv = a["x"]
        shown: dict = {"x": f"{xv:#010x} = {decode(xv, SRC)}"}
        bad = False
        for sat in SATURATION_MODES:
            cc = _exact(xv, dst, "rto", sat)
            if cc is not None and cc % 2 == 0 and decode(cc, dst) != decode(xv, SRC):
                bad = True
                shown[sat] = _show(cc, dst)
        return shown, bad

    return prove(z3.Implies(pre, z3.And(*parts)), {"x": x}, timeout_s, confirm)


SR_MODES = ("a", "b", "c")
"""P3109's stochastic modes StochasticA/B/C (refarith.exact.stochastic variants a, b, c)."""
SR_K = 3
"""Random bits of the stochastic kernel theorems (the rule is the same for every N; 3 keeps them fast)."""


def _register(dst: str) -> None:
    f = get_format(dst)
    for rnd in DETERMINISTIC_MODES:
        @theorem(f"p3109.kernel.{SRC}->{dst}.{rnd}",
                 f"for all binary32 x: cast_bits(x, {dst}, rounding={rnd}, overflow=satnone|satfinite|satpropagate"
                 f"{', negative=project' if not f.signed else ''}) == P3109 §4.7.3 ωProject(x) restated on "
                 "bit-vectors (ωRoundToPrecision, ωSaturate, ωEncode)", budget=60,
                 tags=("p3109", "cast", "kernel", dst))
        def check(rnd=rnd):
            return prove_kernel_projection(dst, rnd, timeout_s=55)

    @theorem(f"p3109.kernel.{SRC}->{dst}.sr",
             f"for all binary32 x and 3-bit R: cast_bits(x, {dst}, rounding=sr, sr=a|b|c, k=3, overflow=satnone|"
             f"satfinite|satpropagate{', negative=project' if not f.signed else ''}) == P3109 §4.7.3 ωProject(x) "
             "with StochasticA/B/C (§4.7.4) restated on bit-vectors", budget=120,
             tags=("p3109", "cast", "kernel", "sr", dst))
    def check_sr():
        return _combined([prove_kernel_projection_sr(dst, v, SR_K, timeout_s=55) for v in SR_MODES])

    @theorem(f"p3109.monotone.{SRC}->{dst}",
             f"for all binary32 x <= y (not NaN{', x >= +0' if not f.signed else ''}), every deterministic mode and "
             f"saturation mode: value(ωProject(x)) <= value(ωProject(y)) in {dst}", budget=120,
             tags=("p3109", "cast", "monotone", dst))
    def mono():
        return prove_monotone(dst, timeout_s=110)

    @theorem(f"p3109.satfinite_eq_satpropagate.{SRC}->{dst}",
             f"for all finite binary32 x and every deterministic mode: cast(x, {dst}, satfinite) == "
             "cast(x, satpropagate) (kernel)", budget=60, tags=("p3109", "cast", dst))
    def same():
        return prove_satfinite_eq_satpropagate(dst, timeout_s=55)

    if not f.signed:
        @theorem(f"p3109.unsigned_negative.{SRC}->{dst}",
                 f"for all negative non-zero binary32 x (with -inf): cast(x, {dst}, negative=project) is 0 under "
                 "satfinite/satpropagate; under satnone -inf is NaN, finite x gives 0 for rtz/rup, NaN for rdn/rto, "
                 "for rne NaN iff |x| > half the smallest subnormal, for rna iff |x| >= it (kernel)", budget=60,
                 tags=("p3109", "cast", dst))
        def neg():
            return prove_unsigned_negative(dst, timeout_s=55)

    @theorem(f"p3109.rto_odd.{SRC}->{dst}",
             f"for all finite binary32 x with |x| <= max of {dst}{' and x >= 0' if not f.signed else ''}: "
             "cast(x, rounding=rto) is exact or has an odd code, in every saturation mode (kernel)", budget=60,
             tags=("p3109", "cast", dst))
    def odd():
        return prove_rto_odd(dst, timeout_s=55)


def _combined(outs: list[Outcome]) -> Outcome:
    """The first outcome that is not a proof, else one proof carrying every query's graph digests."""
    for o in outs:
        if o.verdict != PROVED:
            return o
    return dataclasses.replace(outs[0], detail="; ".join(o.detail for o in outs if o.detail))


def _register_width(dst: str) -> None:
    f = get_format(dst)

    @theorem(f"p3109.kernel.{SRC}->{dst}",
             f"for all binary32 x and every deterministic mode: cast_bits(x, {dst}, overflow=satnone|satfinite|"
             f"satpropagate{', negative=project' if not f.signed else ''}) == P3109 §4.7.3 ωProject(x) restated on "
             "bit-vectors", budget=120, tags=("p3109", "cast", "kernel", dst))
    def check():
        return _combined([prove_kernel_projection(dst, rnd, timeout_s=55) for rnd in DETERMINISTIC_MODES])


def other_width_targets() -> list[str]:
    """The formats of widths other than 8 whose kernel theorem is registered: K = 3, 4, 6, 12 and 16, signed
    P = 1, ceil(K/2), K - 1 and unsigned P = 1, ceil(K/2), K, extended and finite (the precision and width edges
    of the kernel: no trailing significand bits, no exponent bits, the widest codes)."""
    out = []
    for k in (3, 4, 6, 12, 16):
        mid = (k + 1) // 2
        for s, ps in (("s", (1, mid, k - 1)), ("u", (1, mid, k))):
            for p in dict.fromkeys(ps):
                out += [f"binary{k}p{p}{s}{d}" for d in "ef"]
    return out


K8 = [f.name for f in p3109_formats(8)]
for _dst in K8:
    _register(_dst)
for _dst in other_width_targets():
    _register_width(_dst)

__all__ = ["K8", "PROVED", "SR_K", "SR_MODES", "other_width_targets", "project_spec", "prove_kernel_projection",
           "prove_kernel_projection_sr", "prove_monotone", "prove_rto_odd", "prove_satfinite_eq_satpropagate",
           "prove_unsigned_negative"]
