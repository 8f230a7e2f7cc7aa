"""Vector drivers of ``hif4_quantize`` and ``hif4_fake_quantize`` (:mod:`refarith.exact.hif4`): one HiF4 unit of
64 binary32 values -> the E6M2 scale code, the level-2 byte, the level-3 word and the 64 S1P2 codes (or the 64
dequantized binary32 values).

Boundary vectors are built around every decision of the conversion.  For a unit maximum near each clamp of the
scale (2^-48 and 49152 times 7), near the E6M2 ties (SF = 1.125, 1.375, 1.625, 1.875 times 2^k) and at random
exponents, the scale S and the reciprocal R are known, so the generator places group maxima next to the level-2
threshold V8 = 4/R, subgroup maxima next to the level-3 threshold V16 = 2^(1 + d8)/R, and elements next to every
rounding tie (n + 1/2) 2^(d - 2)/R and the saturation point 7.5 * 2^(d - 2)/R, each with the binary32 neighbours
below and above (and the tie itself where it is a binary32 number).  All-zero, signed-zero, tiny and NaN/inf units
close the set.
"""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np

from refarith.exact import hif4 as _h
from refarith.exact.rounding import pow2, round_value
from refarith.exact.value import Value
from refarith.formats import get_format
from refarith.golden.drivers import Driver, Operand, register_driver, schema_variants
from refarith.golden.opdrivers import (
    F32,
    as_backend,
    exact_or_none,
    f32_float,
    fixed_rng,
    float_view,
    random_f32,
    to_numpy,
)
from refarith.spec import Spec

U8 = get_format("uint8")
U16 = get_format("uint16")
HIF4_GOLDEN_SPECS = ("hif4_quantize()", "hif4_fake_quantize()")
"""The golden files of HiFloat4: the reference's default ties (scale even, elements away)."""


def _ties(spec: Spec) -> tuple[str, str]:
    return spec.param["scale_ties"], spec.param["elem_ties"]


def _exact(spec: Spec, ins: tuple[int, ...]) -> tuple[int, ...] | None:
    st, et = _ties(spec)
    vals = [f32_float(c) for c in ins]
    if spec.op == "hif4_fake_quantize":
        return exact_or_none(_h.fake_quantize_unit, vals, st, et)
    u = exact_or_none(_h.quantize_unit, vals, st, et)
    return None if u is None else (u.scale, u.d8_word, u.d16_word, *u.codes)


def _fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast import hif4 as fh

    st, et = _ties(spec)
    x = as_backend(float_view(to_numpy(inputs[0]), F32), "numpy" if backend == "numpy" else "torch")
    if backend == "triton":  # the traced kernel, on the operands' device (interpreted on CPU)
        x = x.to(getattr(inputs[0], "device", "cpu"))
    if spec.op == "hif4_fake_quantize":
        y = fh.hif4_fake_quantize(x, scale_ties=st, elem_ties=et, backend=backend)
        return (np.ascontiguousarray(to_numpy(y), dtype=np.float32).view(np.uint32),)
    s, w8, w16, c = (to_numpy(t).astype(np.int64) for t in fh.hif4_quantize(x, scale_ties=st, elem_ties=et,
                                                                           backend=backend))
    return s[:, 0], w8[:, 0], w16[:, 0], c


def _f32_near(x: Fraction) -> list[int]:
    """binary32 codes just below and above x > 0 (one code when x is a binary32 number)."""
    v = Value.of(x)
    lo = round_value(v, F32, "rdn", "saturate").code
    hi = round_value(v, F32, "rup", "saturate").code
    return sorted({lo, hi} - {0})


def _unit(rng: random.Random, vmax_code: int, st: str) -> tuple[int, ...]:
    """A unit with maximum ``vmax_code`` whose group maxima, subgroup maxima and elements sit next to the
    thresholds and ties its scale implies."""
    vmax = Fraction(f32_float(vmax_code))
    _, s = _h.scale_of(_h.bf16(vmax * _h.C7), st)
    r = _h.reciprocal(s)
    out: list[int] = []
    for k in range(8):
        if k == 0:
            gmax = [vmax_code]
        else:
            near = [c for c in _f32_near(4 / r) if f32_float(c) <= vmax]
            gmax = [rng.choice(near)] if near and rng.random() < 0.5 else [
                random_f32(rng, ((vmax_code >> 23) & 0xFF) - 127, spread=3, p_zero=0.05) & 0x7FFFFFFF]
            if f32_float(gmax[0]) > f32_float(vmax_code):
                gmax = [vmax_code]
        g = Fraction(f32_float(gmax[0]))
        d8 = 1 if g * r >= 4 else 0
        for j in range(2):
            if j == 0:
                smax = gmax[0]
            else:
                near = [c for c in _f32_near(pow2(1 + d8) / r) if f32_float(c) <= g]
                smax = rng.choice(near) if near and rng.random() < 0.6 else int(
                    np.float32(float(g) * rng.random()).view(np.uint32))
            sm = Fraction(f32_float(smax))
            d = d8 + (1 if sm * r / (1 << d8) >= 2 else 0)
            sub = [smax]
            for _ in range(3):
                n = rng.randrange(9)  # 8: the saturation point 7.5
                t = (n + Fraction(1, 2)) * pow2(d - 2) / r
                cands = [c for c in _f32_near(t) if f32_float(c) <= sm] if t <= sm else []
                sub.append(rng.choice(cands) if cands else int(np.float32(float(sm) * rng.random()).view(np.uint32)))
            rng.shuffle(sub)
            out.extend(c | (rng.randrange(2) << 31) for c in sub)
    return tuple(out)


def _boundary(spec: Spec) -> list[tuple[int, ...]]:
    rng = fixed_rng(spec, "hif4")
    st, _ = _ties(spec)
    maxima: set[int] = set()
    for lim in (_h.SCALE_MIN, _h.SCALE_MAX):  # the clamps of SF, reached by Vmax = lim / C
        maxima.update(_f32_near(lim / _h.C7))
        maxima.update(_f32_near(lim / _h.C7 * Fraction(3, 4)))
        maxima.update(_f32_near(lim / _h.C7 * Fraction(5, 4)))
    for k in range(-48, 16, 3):  # SF on an E6M2 tie: the binary32 values whose SF is that bf16 value
        for t in (Fraction(9, 8), Fraction(11, 8), Fraction(13, 8), Fraction(15, 8)):
            maxima.update(_f32_near(t * pow2(k) / _h.C7)[:1])
    for e in (-126, -60, -20, -1, 0, 2, 3, 10, 40, 100, 127):
        maxima.add(((e + 127) << 23) | rng.getrandbits(23))
    out = [_unit(rng, c, st) for c in sorted(maxima) if 0 < c < 0x7F800000]
    out.append((0,) * 64)
    out.append(tuple((i & 1) << 31 for i in range(64)))
    out.append(tuple(0x00000001 if i == 5 else (i & 1) << 31 for i in range(64)))  # the smallest subnormal
    tiny = _unit(rng, 0x3F800000, st)  # a unit of 1.0 with one negative value that rounds to -0
    out.append(tuple(0x80000001 if i == 7 else c for i, c in enumerate(tiny)))
    for special in (0x7FC00000, 0xFFC00001, 0x7F800000, 0xFF800000):
        blk = list(_unit(rng, 0x3F800000, st))
        blk[33] = special
        out.append(tuple(blk))
    return out


def _random(spec: Spec, n: int, seed: int) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        e0 = rng.randint(-150, 127)
        spread = rng.choice((1, 4, 8, 20))
        out.append(tuple(random_f32(rng, e0, spread=spread, p_zero=0.05, p_special=0.002) for _ in range(64)))
    return out


def _outputs(spec: Spec) -> tuple[Operand, ...]:
    if spec.op == "hif4_fake_quantize":
        return (Operand("values", F32, 64),)
    return (Operand("scale", _h.SCALE_FMT), Operand("d8", U8), Operand("d16", U16),
            Operand("codes", _h.ELEM_FMT, 64))


for _op, _doc in (("hif4_quantize", "64 binary32 values -> E6M2 scale, level-2 byte, level-3 word, 64 S1P2 codes"),
                  ("hif4_fake_quantize", "64 binary32 values -> the 64 HiF4-dequantized binary32 values")):
    register_driver(Driver(
        _op,
        inputs=lambda s: (Operand("x", F32, 64),),
        outputs=_outputs,
        exact=_exact,
        boundary=_boundary,
        variant_params=schema_variants,
        random=_random,
        random_count=96,
        fast=_fast,
        backends=("numpy", "torch", "triton"),
        doc=_doc,
    ))
