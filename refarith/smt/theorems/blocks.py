"""Block and integer quantization theorems (MX, NVFP4, LLM.int8).

* ``blocks.mx_floor_scale_bits`` (Z3, proved): the exponent-bits rule of the MX
  kernels (E - 127 for a normal binary32, bitlength(mantissa) - 150 for a
  subnormal) equals floor(log2 amax) for every finite positive binary32 amax,
  with floor(log2) defined independently by 2^k <= amax < 2^(k+1) (a comparison of
  binary32 patterns, which order positive values).  The FLOOR scale is that minus emax_elem,
  clamped to [-127, 127].
* ``blocks.mx_floor_elements_in_range`` (Z3, proved): under FLOOR every element
  V of the block has |V| / X < 2^(emax_elem + 1); so the only elements the spec
  clamps lie in (max_elem, 2^(emax_elem+1)) element units and the clamp error is
  below 2^(emax_elem+1) - max_elem units of X (E4M3 64, E5M2 8192, E3M2 4,
  E2M3 1/2, E2M1 2, MXINT8 1/64).
* ``blocks.mx_rel_error.<fmt>`` (enumeration, proved): with FLOOR and RNE, every
  element with |V/X| >= 2^emin_elem has relative error at most
  max(2^-(mbits+1), (2^(emax+1) - max) / 2^(emax+1)) (E4M3 1/8 from the clamp,
  E5M2 1/8, E3M2 1/8, E2M3 1/16, E2M1 1/4); below 2^emin_elem the absolute
  error is at most half the subnormal spacing.  Enumerated over every binary32
  V/X in the top element binade and in one ordinary normal binade (the element
  grid is 2^(k - mbits) Z in every normal binade k, so relative errors repeat).
* ``blocks.nvfp4_rel_error.<division>`` (enumeration, proved): one-level NVFP4,
  every UE4M3 significand (scales 1, 1.125, ..., 1.875 with the block scale
  pinned by an element 6 S), every binary32 x with x / S in [1, 6): the relative
  error |P S - x| / |x| is at most 1/5 + 2^-20 (1/5 is the exact-tie case 2.5
  -> 2; the binary32 rounding of x / S or x * fl(1/S) adds at most 2^-23 of y).
* ``blocks.nvfp4_divide_vs_reciprocal`` (enumeration, counterexample expected):
  the divide and reciprocal variants are NOT equal.  Enumerated over every
  finite non-zero UE4M3 scale S (one-level, zero_scale=zero so every code is a
  possible scale) and, for each, the binary32 inputs within +-64 ulps of S * m
  for every E2M1 rounding boundary m (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5) —
  the only places a 1-ulp difference of y can change the E2M1 code.  The
  detail lists the scales where they differ (significands 1.75 and 1.875).
* ``blocks.llmint8_int32_exact.<clip>`` (Z3, proved): the int32 accumulation of
  K products of int8 codes is exact for K <= floor((2^31-1)/127^2) = 133144
  (symmetric, |q| <= 127) and K <= floor((2^31-1)/128^2) = 131071 (full range);
  ``blocks.llmint8_int32_overflow.<clip>`` (counterexample expected): one more
  product can wrap, confirmed by the exact LLM.int8() accumulator.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, prove, theorem


def _z3_floor_rule(z3, x):
    """The kernels' floor(log2) rule on a 32-bit vector x (a positive finite binary32 pattern), as a signed
    32-bit vector."""
    e = z3.ZeroExt(24, z3.Extract(30, 23, x))
    bl = z3.BitVecVal(0, 32)
    for i in range(23):  # bitlength of the mantissa: highest set bit + 1
        bl = z3.If(z3.Extract(i, i, x) == 1, z3.BitVecVal(i + 1, 32), bl)
    return z3.If(e != 0, e - 127, bl - 150)


def _pow2_bits(z3, k):
    """The binary32 bit pattern of 2^k for a signed 32-bit k in [-149, 128] (2^128 as the pattern of +inf, the
    first pattern above every finite value): (k+127) << 23 for k >= -126, 1 << (k+149) below.  Positive binary32
    values are ordered as their bit patterns, so 2^k <= v < 2^(k+1) is an unsigned comparison of patterns."""
    return z3.If(k >= -126, (k + 127) << 23, z3.BitVecVal(1, 32) << (k + 149))


@theorem("blocks.mx_floor_scale_bits",
         "for every finite positive binary32 amax: the exponent-bits rule (E-127, or bitlength(f)-150 for "
         "subnormals) k satisfies 2^k <= amax < 2^(k+1), i.e. k = floor(log2 amax)", budget=120,
         tags=("mx", "blocks"))
def _mx_floor_scale_bits() -> Outcome:
    import z3

    x = z3.BitVec("amax", 32)
    k = _z3_floor_rule(z3, x)
    pre = z3.And(z3.Extract(31, 31, x) == 0, z3.ULT(x, 0x7F800000), x != 0)
    claim = z3.Implies(pre, z3.And(k >= -149, k <= 127, z3.ULE(_pow2_bits(z3, k), x),
                                   z3.ULT(x, _pow2_bits(z3, k + 1))))

    def confirm(a):
        from refarith.exact.rounding import floor_log2
        from refarith.formats import get_format

        v = get_format("binary32").finite_value(a["amax"])
        ef, f = (a["amax"] >> 23) & 0xFF, a["amax"] & 0x7FFFFF
        rule = ef - 127 if ef else f.bit_length() - 150
        return {"amax_bits": hex(a["amax"]), "rule": rule, "floor_log2": floor_log2(v)}, rule != floor_log2(v)

    return prove(claim, {"amax": x}, 110, confirm)


@theorem("blocks.mx_floor_elements_in_range",
         "FLOOR: for binary32 |V| <= amax (finite, amax > 0), |V| < 2^(floor(log2 amax) + 1), so |V|/X < "
         "2^(emax_elem+1) and the clamp error is below (2^(emax_elem+1) - max_elem) X", budget=120,
         tags=("mx", "blocks"))
def _mx_elements_in_range() -> Outcome:
    import z3

    a = z3.BitVec("amax", 32)
    v = z3.BitVec("v", 32)
    k = _z3_floor_rule(z3, a)
    pre = z3.And(z3.Extract(31, 31, a) == 0, z3.ULT(a, 0x7F800000), a != 0, z3.Extract(31, 31, v) == 0,
                 z3.ULE(v, a))
    claim = z3.Implies(pre, z3.ULT(v, _pow2_bits(z3, k + 1)))
    out = prove(claim, {"amax": a, "v": v}, 110)
    if out.verdict == PROVED:
        from refarith.exact import mx as emx

        bounds = {}
        for name, (el, em) in emx.MX_FORMATS.items():
            fmt = emx.mx_element(el)
            bounds[name] = str(Fraction(2) ** (em + 1) - emx.elem_max(fmt))
        out.detail = "clamp error bound in units of X: " + ", ".join(f"{k} {b}" for k, b in bounds.items())
    return out


def _rel_error_check(element: str) -> Outcome:
    from refarith.exact import mx as emx
    from refarith.exact.rounding import round_value
    from refarith.exact.value import Value
    from refarith.fast import mx as fmx

    fmt = emx.mx_element(element)
    xp = fmx.ops("numpy")
    mb, emin, emax = fmt.mbits, fmt.emin, fmt.emax
    half = Fraction(1, 1 << (mb + 1))
    clamp = (Fraction(2) ** (emax + 1) - fmt.max) / Fraction(2) ** (emax + 1)
    bound = max(half, clamp)
    worst = (Fraction(0), None)
    for k in sorted({emin, emax}):
        v = ((np.arange(1 << 23, dtype=np.int64) | ((k + 127) << 23)).astype(np.uint32)).view(np.int32)
        sign, ef, n = fmx.split_f32(v, xp)
        codes = fmx.encode_scaled(sign, ef, n, 0, fmt, "rne", xp)
        lut = fmx.element_lut(fmt).astype(np.float64)
        r = lut[codes]
        x = v.view(np.float32).astype(np.float64)
        err = np.abs(r - x)  # exact in binary64 (both are binary32 numbers of nearby magnitude)
        bad = err > float(bound) * x  # bound * x is exact (bound has few bits)
        i = int(np.argmax(err / x))
        rel = Fraction(float(err[i])) / Fraction(float(x[i]))
        if rel > worst[0]:
            worst = (rel, int(v[i]))
        if bad.any():
            j = int(np.nonzero(bad)[0][0])
            vv = Fraction(float(x[j]))
            c = round_value(Value.of(vv), fmt, "rne", "saturate").code
            ex = abs(fmt.finite_value(c) - vv) / vv
            return Outcome(COUNTEREXAMPLE, {"v_over_X_bits": hex(int(v[j]) & 0xFFFFFFFF), "rel_error": str(ex)},
                           ex > bound, method="enumeration")
    # the worst case, re-derived by the exact model
    vv = Fraction(float(np.array([worst[1]], np.int32).view(np.float32)[0]))
    c = round_value(Value.of(vv), fmt, "rne", "saturate").code
    ex = abs(fmt.finite_value(c) - vv) / vv
    return Outcome(PROVED, detail=f"bound {bound}; worst enumerated relative error {float(ex):.6g} at V/X = "
                                  f"{float(vv)!r} (exact model: {ex})", method="enumeration")


for _name, (_el, _em) in (("mxfp8_e4m3", ("ocp_e4m3", 8)), ("mxfp8_e5m2", ("ocp_e5m2", 15)),
                          ("mxfp6_e3m2", ("ocp_e3m2", 4)), ("mxfp6_e2m3", ("ocp_e2m3", 2)),
                          ("mxfp4", ("ocp_e2m1", 2))):
    theorem(f"blocks.mx_rel_error.{_name}",
            f"{_name} FLOOR/RNE: every element with |V/X| >= 2^emin_elem has relative error <= "
            "max(2^-(mbits+1), (2^(emax+1) - max)/2^(emax+1)) (enumerated over the top and one normal binade)",
            budget=120, tags=("mx", "blocks", "error"))(lambda _el=_el: _rel_error_check(_el))


def _nvfp4_rel(division: str) -> Outcome:
    from refarith.exact import nvfp4 as env
    from refarith.exact.ops import decode
    from refarith.fast import mx as fmx
    from refarith.formats import get_format

    xp = fmx.ops("numpy")
    e2m1 = get_format("ocp_e2m1")
    lut = fmx.element_lut(e2m1).astype(np.float64)
    bound = Fraction(1, 5) + Fraction(1, 1 << 20)
    worst = (0.0, None, None)
    for sig in range(8):
        s = np.float32(1 + sig / 8)  # the block scale S (UE4M3 significand sig/8, exponent 0)
        lo, hi = s.view(np.int32), np.float32(6 * s).view(np.int32)
        for start in range(int(lo), int(hi), 1 << 22):
            x = np.arange(start, min(int(hi), start + (1 << 22)), dtype=np.int32).view(np.float32)
            if division == "divide":
                y = x / s
            else:
                y = x * (np.float32(1) / s)
            sg, ef, n = fmx.split_f32(y.view(np.int32), xp)
            p = lut[fmx.encode_scaled(sg, ef, n, 0, e2m1, "rne", xp)] * float(s)
            xv = x.astype(np.float64)
            rel = np.abs(p - xv) / xv
            j = int(np.argmax(rel))
            if rel[j] > worst[0]:
                worst = (float(rel[j]), float(xv[j]), float(s))
    _, xw, sw = worst
    q = env.quantize_blocks([[int(np.float32(xw).view(np.uint32)), int(np.float32(6 * sw).view(np.uint32))]
                             + [0] * 14], division, 1, "zero")
    pv = decode(q.codes[0][0], "ocp_e2m1").mag * decode(q.scales[0], "ue4m3").mag
    ex = abs(pv - Fraction(xw)) / Fraction(xw)
    if ex > bound:
        return Outcome(COUNTEREXAMPLE, {"x": xw, "S": sw, "rel_error": str(ex)}, True, method="enumeration")
    if worst[0] > float(bound) * (1 + 1e-12):
        return Outcome("error", detail=f"kernel worst {worst} above bound but exact model {ex}", method="enumeration")
    return Outcome(PROVED, detail=f"worst relative error {float(ex):.8g} at x = {xw!r}, S = {sw} (exact: {ex}); "
                                  f"bound {bound}", method="enumeration")


for _d in ("divide", "reciprocal"):
    theorem(f"blocks.nvfp4_rel_error.{_d}",
            f"NVFP4 one-level division={_d}: |P S - x| / |x| <= 1/5 + 2^-20 for every binary32 x with x/S in [1, 6) "
            "and every UE4M3 significand (enumeration)", budget=120,
            tags=("nvfp4", "blocks", "error"))(lambda _d=_d: _nvfp4_rel(_d))


@theorem("blocks.nvfp4_divide_vs_reciprocal",
         "NVFP4 division=divide and division=reciprocal give the same E2M1 codes for every input (expected false: "
         "enumeration over every UE4M3 scale x the inputs within 64 ulps of each E2M1 rounding boundary)",
         expect=COUNTEREXAMPLE, budget=120, tags=("nvfp4", "blocks"))
def _nvfp4_div_vs_rec() -> Outcome:
    from refarith.exact import nvfp4 as env
    from refarith.exact.ops import decode
    from refarith.fast import nvfp4 as fnv

    ms = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0], np.float64)
    differ: dict[int, int] = {}
    first = None
    total = 0
    for code in range(1, 0x7F):
        s = decode(code, "ue4m3").to_float()
        cen = (ms * s).astype(np.float32).view(np.int32)
        xs = (cen[:, None] + np.arange(-64, 65, dtype=np.int32)[None, :]).reshape(-1).view(np.float32)
        x = np.zeros((xs.size, 16), np.float32)
        x[:, 0] = xs
        x[:, 1] = np.float32(6 * s)
        total += xs.size
        _, sa, a = fnv.nvfp4_quantize(x, "divide", 1, "zero")
        _, sb, b = fnv.nvfp4_quantize(x, "reciprocal", 1, "zero")
        d = np.nonzero(a[:, 0] != b[:, 0])[0]
        if d.size:
            differ[code] = int(d.size)
            if first is None:
                first = (x[d[0]], code)
    if first is None:
        return Outcome(PROVED, detail=f"no difference over {total} inputs", method="enumeration")
    blk, code = first
    bits = [int(v) for v in blk.view(np.uint32)]
    qa = env.quantize_blocks([bits], "divide", 1, "zero")
    qb = env.quantize_blocks([bits], "reciprocal", 1, "zero")
    shown = {"x_bits": hex(bits[0]), "x": float(blk[0]), "scale_ue4m3": hex(qa.scales[0]),
             "divide_code": hex(qa.codes[0][0]), "reciprocal_code": hex(qb.codes[0][0])}
    sig = sorted({float(decode(c, "ue4m3").mag / (Fraction(2) ** (decode(c, "ue4m3").mag.numerator.bit_length()
                                                                  - decode(c, "ue4m3").mag.denominator.bit_length())))
                  for c in differ})
    out = Outcome(COUNTEREXAMPLE, shown, qa.codes[0][0] != qb.codes[0][0], method="enumeration")
    out.detail = (f"{sum(differ.values())} of {total} enumerated (scale, input) pairs differ, at {len(differ)} of 126 "
                  f"scales; scale significands (normalized to [1,2) up to a power of two): {sig}")
    return out


def _llmint8_bound(clip: str) -> Outcome:
    import z3

    from refarith.exact.llmint8 import INT32_MAX, INT32_MIN, max_inner_dim

    kmax = max_inner_dim(clip)
    qmin = -128 if clip == "full" else -127
    k = z3.Int("K")
    pmax = qmin * qmin
    pmin = qmin * 127
    # each product lies in [pmin, pmax], so a K-term sum lies in [K pmin, K pmax]
    claim = z3.Implies(z3.And(k >= 0, k <= kmax), z3.And(k * pmax <= INT32_MAX, k * pmin >= INT32_MIN))
    out = prove(claim, {"K": k}, 25)
    if out.verdict == PROVED:
        out.detail = f"K_max = {kmax}"
    return out


def _llmint8_overflow(clip: str) -> Outcome:
    from refarith.exact.llmint8 import INT32_MAX, max_inner_dim, wrap_int32

    kmax = max_inner_dim(clip)
    q = -128 if clip == "full" else 127
    exact = (kmax + 1) * q * q
    wrapped = wrap_int32(exact)
    return Outcome(COUNTEREXAMPLE, {"K": kmax + 1, "codes": f"x = w = {q} in every position", "exact_sum": exact,
                                    "int32_result": wrapped}, exact > INT32_MAX and wrapped != exact,
                   method="enumeration")


for _c in ("symmetric", "full"):
    theorem(f"blocks.llmint8_int32_exact.{_c}",
            f"LLM.int8 int32 accumulation of K int8-code products ({_c} clipping) never leaves int32 for "
            "K <= floor((2^31-1)/qmax_abs^2)", budget=30, tags=("llmint8", "blocks"))(
        lambda _c=_c: _llmint8_bound(_c))
    theorem(f"blocks.llmint8_int32_overflow.{_c}",
            f"LLM.int8 int32 accumulation ({_c} clipping) is exact for K = K_max + 1 (expected false)",
            expect=COUNTEREXAMPLE, budget=30, tags=("llmint8", "blocks"))(lambda _c=_c: _llmint8_overflow(_c))
