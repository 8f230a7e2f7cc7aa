"""Theorems of the fast stochastic NVFP4 element rounding (:func:`refarith.fast.blocksr.nvfp4_quantize_sr`) and
block floating point mantissas (:func:`refarith.fast.bfp.quantize`, ``rounding="sr"``), numpy, by exhaustive
enumeration over a stated domain (the kernels are not recorded word graphs Z3 could read).

Per variant V (a, b, c, c_odd with k = 4; te_e2m1_8 with k = 8, NVFP4 ``recip2`` only: it rounds onto the E2M1
grid, in Transformer Engine's two-level recipe):

* ``sr.nvfp4.V.neighbours.SETTING`` (enumeration): every binary16 value x with |x| <= P, both signs, in a block
  [P, x_1, ..., x_15] of 16 (so the block scale is the same for every x), every k-bit r, for two settings:
  ``divide1`` (levels=1, division=divide, P = 7.5: the scale S = 1.25, a UE4M3 value that is not a power of two,
  so y = fl32(x / 1.25) is rounded) and ``recip2`` (the default: levels=2, division=reciprocal, P = 6, the tensor
  scale from the whole array: y = fl32(x * fl32(fl32(1 / s_t) / S)), with a per-tensor scale that is not a
  power of two either):

  - the UE4M3 scale codes and the tensor scale are those of the deterministic kernel (``rounding=rne``);
  - the element code is the deterministic kernel's ``rtz`` code or its away-from-zero (``rup``/``rdn``) code,
    i.e. one of the two E2M1 neighbours of y, monotone in r;
  - where the two differ, the number of r giving the away code equals
    :func:`refarith.exact.stochastic.up_count` of y's fraction, and the mean over r of the element values
    equals y when that fraction has at most k bits (y computed with IEEE binary32 arithmetic, numpy's float32
    divide and multiply, as the spec defines it);
  - every 64th x of the domain, packed 15 to a block after P, and every r (k = 8: every 15th r and 255, a
    sample): the kernel's codes equal the exact model's (:func:`refarith.exact.nvfp4.quantize_blocks`,
    ``rounding="sr"``).
* ``sr.bfp.V.neighbours.int4_sym`` (enumeration): every binary16 value x with |x| <= 7.5, both signs, times
  2^s for s = 0 and s = -100, in blocks [7.5 2^s, x_1 2^s, ..., x_15 2^s] (shared exponent s), every k-bit r:
  the shared exponent is the deterministic kernel's; the mantissa is one of the two integer neighbours of the exact
  quotient x (trunc(x), trunc(x) + sign, clamped to +-7), monotone in r, with the up_count and expectation
  statements above (fraction of x, ulp 1); and every 64th x, packed 15 to a block, against the exact model
  (:func:`refarith.exact.bfp.quantize_block`) for every r.
* ``sr.bfp.a.unbiased_beyond_k.int4_sym`` (enumeration; expected verdict **counterexample**): the claim "the
  mean over r of the BFP mantissa equals the exact quotient for every x" is false at k = 4 (a fraction of more
  than 4 bits); the first biased x is returned.

The domains are binary16 values, not every binary32 one: a sample of the kernels' inputs, stated as such.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from refarith.exact.value import Value
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, theorem
from refarith.smt.theorems.arithsr import judge

CASES = (("a", 4), ("b", 4), ("c", 4), ("c_odd", 4), ("te_e2m1_8", 8))
NV_SETTINGS = {"divide1": (np.float32(7.5), dict(levels=1, division="divide")),
               "recip2": (np.float32(6.0), dict(levels=2, division="reciprocal"))}
BFP_P, BFP_PIN, BFP_SHIFTS = 4, np.float32(7.5), (0, -100)
PACK, STRIDE = 15, 64  # the exact-model stage: every STRIDE-th x, PACK of them after the pin in a block


def _domain(top: np.float32) -> np.ndarray:
    """Every binary16 value x with |x| <= top, both signs, as float32."""
    pos = np.arange(0, 0x7C00, dtype=np.uint16).view(np.float16).astype(np.float32)
    pos = pos[pos <= top]
    return np.concatenate([pos, -pos])


def _values(y: np.ndarray) -> list[Value]:
    """Exact values of float32 (or float64) numbers."""
    return [Value.of(Fraction(v)) for v in y.astype(np.float64).tolist()]


def _packed(x: np.ndarray, pin: np.float32) -> np.ndarray:
    """Every STRIDE-th x, PACK to a block after ``pin`` (the last block padded with zeros)."""
    return _blocks_of(x[::STRIDE], pin)


def _blocks_of(x: np.ndarray, pin: np.float32) -> np.ndarray:
    """Blocks of 16: ``pin``, then PACK elements of x (the last block padded with zeros)."""
    xs = np.concatenate([x, np.zeros((-len(x)) % PACK, dtype=np.float32)]).reshape(-1, PACK)
    return np.concatenate([np.full((len(xs), 1), pin, dtype=np.float32), xs], axis=1)


def _elements(c, n: int, copies: int = 1) -> np.ndarray:
    """(n, copies) int64 element results of the x of :func:`_blocks_of` (``copies`` stacked repetitions of the
    blocks), or (n,) for one copy."""
    c = np.asarray(c)[:, 1:].astype(np.int64).reshape(copies, -1)[:, :n].T
    return c[:, 0] if copies == 1 else c


def _r_chunks(k: int, size: int = 16) -> list[np.ndarray]:
    """Every k-bit r, ascending, in chunks of ``size`` (one kernel call each)."""
    rs = np.arange(1 << k, dtype=np.int64)
    return [rs[i:i + size] for i in range(0, len(rs), size)]


def _exact_rs(k: int) -> list[int]:
    """The r of the exact-model stage: every r for k <= 4, else every 15th and 2^k - 1 (a sample)."""
    return list(range(1 << k)) if k <= 4 else sorted(set(range(0, 1 << k, 15)) | {(1 << k) - 1})


def _counterexample(detail: str, **where) -> Outcome:
    return Outcome(COUNTEREXAMPLE, {k: (float(v) if isinstance(v, np.floating) else v) for k, v in where.items()},
                   True, detail=detail, method="enumeration")


def _scaled_nvfp4(x: np.ndarray, pin: np.float32, setting: str, st) -> np.ndarray:
    """y, the binary32 element value before the E2M1 rounding, by IEEE binary32 arithmetic (numpy float32)."""
    s = np.float32(1.25) if setting == "divide1" else None
    with np.errstate(all="ignore"):
        if setting == "divide1":
            return (x / s).astype(np.float32)
        b = np.float32(np.float32(pin) / np.float32(6.0))  # fl(amax / 6)
        b = np.float32(b / np.float32(st))  # fl(b / s_t), then the UE4M3 scale S
        from refarith.exact.ops import decode, encode

        sv = np.float32(float(decode(encode(Fraction(float(b)), "ue4m3", "rne", "saturate").code, "ue4m3").mag))
        r = np.float32(np.float32(np.float32(1.0) / np.float32(st)) / sv)
        return (x * r).astype(np.float32)


def check_nvfp4_sr(variant: str, k: int, setting: str) -> Outcome:
    """The check of ``sr.nvfp4.<variant>.neighbours.<setting>`` (module docstring)."""
    from refarith.exact import nvfp4 as _env
    from refarith.fast.blocksr import nvfp4_quantize_sr
    from refarith.fast.nvfp4 import nvfp4_quantize

    pin, kw = NV_SETTINGS[setting]
    x = _domain(pin)
    b = _blocks_of(x, pin)
    st, s_rne, _ = nvfp4_quantize(b, **kw)
    _, _, c_rtz = nvfp4_quantize(b, rounding="rtz", **kw)
    _, _, c_up = nvfp4_quantize(b, rounding="rup", **kw)
    _, _, c_dn = nvfp4_quantize(b, rounding="rdn", **kw)
    lo = _elements(c_rtz, len(x))
    hi = np.where(x < 0, _elements(c_dn, len(x)), _elements(c_up, len(x)))
    got = np.empty((len(x), 1 << k), dtype=np.int64)
    for rr in _r_chunks(k):  # several r per kernel call: the blocks repeated, one r per copy
        bb = np.tile(b, (len(rr), 1))
        st_r, s, c = nvfp4_quantize_sr(bb, np.broadcast_to(np.repeat(rr, len(b))[:, None], bb.shape), k, variant,
                                       **kw)
        if not (np.array_equal(s, np.tile(s_rne, (len(rr), 1))) and (st is None or st_r == st)):
            return _counterexample("scale differs from the deterministic kernel's", setting=setting, r=rr.tolist())
        got[:, rr] = _elements(c, len(x), len(rr))
    y = _scaled_nvfp4(x, pin, setting, st)
    out = judge(got, lo, hi, _values(y), "ocp_e2m1", variant, k,
                lambda i: {"setting": setting, "x": float(x[i]), "y": float(y[i]), "k": k})
    if out is not None:
        return out
    pk = _packed(x, pin)
    bits = pk.view(np.int32).astype(np.int64) & 0xFFFFFFFF
    tensor = None if st is None else int(np.float32(st).view(np.int32)) & 0xFFFFFFFF
    for r in _exact_rs(k):
        _, _, c = nvfp4_quantize_sr(pk, np.full(pk.shape, r, dtype=np.int64), k, variant, tensor_scale=st, **kw)
        for i, blk in enumerate(bits.tolist()):
            e = _env.quantize_blocks([blk], rounding="sr", rand=[[r] * len(blk)], rand_bits=k, sr_variant=variant,
                                     tensor_scale=tensor, **kw).codes[0]
            if list(e) != c[i].tolist():
                return _counterexample("kernel differs from the exact model", setting=setting, r=r,
                                       block=pk[i].tolist(), kernel=c[i].tolist(), exact=list(e))
    return Outcome(PROVED, detail=f"{len(x)} elements x {1 << k} values of r enumerated; {pk.size} elements "
                                  "against the exact model", method="enumeration")


def _bfp_codes(m: np.ndarray) -> np.ndarray:
    """int<P>_sym codes (two's complement) of signed mantissas."""
    return np.asarray(m, dtype=np.int64) & ((1 << BFP_P) - 1)


def check_bfp_sr(variant: str, k: int, claim_unbiased: bool = False) -> Outcome:
    """The check of ``sr.bfp.<variant>.neighbours.int4_sym`` (module docstring); ``claim_unbiased``: the false
    claim of ``unbiased_beyond_k``."""
    from refarith.exact import bfp as _ebfp
    from refarith.fast.bfp import quantize

    fmt = f"int{BFP_P}_sym"
    qmax = (1 << (BFP_P - 1)) - 1
    base = _domain(BFP_PIN)
    checked = 0
    for s in BFP_SHIFTS:
        x = (base.astype(np.float64) * 2.0 ** s).astype(np.float32)
        pin = np.float32(float(BFP_PIN) * 2.0 ** s)
        b = _blocks_of(x, pin)
        e_rne, _ = quantize(b, BFP_P, block=b.shape[1])
        q = base.astype(np.float64)  # the exact quotient x 2^s / 2^s
        t = np.clip(np.trunc(q), -qmax, qmax)
        u = np.clip(np.trunc(q) + np.sign(q) * (q != np.trunc(q)), -qmax, qmax)
        got = np.empty((len(x), 1 << k), dtype=np.int64)
        for rr in _r_chunks(k):
            bb = np.tile(b, (len(rr), 1))
            e, m = quantize(bb, BFP_P, block=b.shape[1], rounding="sr",
                            rand=np.broadcast_to(np.repeat(rr, len(b))[:, None], bb.shape), rand_bits=k,
                            sr_variant=variant)
            if not np.array_equal(e, np.tile(e_rne, (len(rr), 1))) or int(e_rne[0, 0]) != s:
                return _counterexample("shared exponent differs from the deterministic kernel's", shift=s,
                                       r=rr.tolist())
            got[:, rr] = _bfp_codes(_elements(m, len(x), len(rr)))
        out = judge(got, _bfp_codes(t), _bfp_codes(u), _values(q), fmt, variant, k,
                    lambda i, s=s, x=x: {"x": float(x[i]), "shift": s, "k": k}, claim_unbiased)
        if out is not None:
            return out
        if claim_unbiased:
            continue
        pk = _packed(x, pin)
        for r in range(1 << k):
            _, m = quantize(pk, BFP_P, block=pk.shape[1], rounding="sr", rand=np.full(pk.shape, r, dtype=np.int64),
                            rand_bits=k, sr_variant=variant)
            for i, blk in enumerate(pk.astype(np.float64).tolist()):
                want = _ebfp.quantize_block(blk, BFP_P, "sr", rand=[r] * len(blk), rand_bits=k, sr_variant=variant).m
                if list(want) != m[i].tolist():
                    return _counterexample("kernel differs from the exact model", shift=s, r=r, block=blk,
                                           kernel=m[i].tolist(), exact=list(want))
        checked += len(x)
    if claim_unbiased:
        return Outcome(PROVED, detail="unbiased everywhere", method="enumeration")
    return Outcome(PROVED, detail=f"{checked} elements x {1 << k} values of r enumerated", method="enumeration")


def _register(variant: str, k: int) -> None:
    for setting, (pin, kw) in NV_SETTINGS.items():
        if variant == "te_e2m1_8" and setting != "recip2":  # TE's rule belongs to the two-level recipe
            continue

        @theorem(f"sr.nvfp4.{variant}.neighbours.{setting}",
                 f"(enumeration of the numpy kernel) every binary16 x with |x| <= {float(pin)}, both signs, in an "
                 f"NVFP4 block [{float(pin)}, x_1..x_15] (levels={kw['levels']}, division={kw['division']}), "
                 f"every {k}-bit r: nvfp4_quantize(rounding=sr,sr={variant},k={k}) keeps the rne scales, gives the "
                 "rtz or the away-from-zero E2M1 code of y (monotone in r), rounds away for exactly "
                 "up_count(frac(y)) values of r, and equals the exact model on every 64th x", budget=60,
                 tags=("sr", "kernel", "block", "nvfp4", variant))
        def nvfp4(setting=setting):
            return check_nvfp4_sr(variant, k, setting)

    if variant == "te_e2m1_8":
        return

    @theorem(f"sr.bfp.{variant}.neighbours.int4_sym",
             f"(enumeration of the numpy kernel) every binary16 x with |x| <= 7.5, both signs, times 2^0 and "
             f"2^-100, in BFP blocks [7.5 2^s, x_1 2^s..x_15 2^s] of 4-bit mantissas, every {k}-bit r: "
             f"bfp_quantize(int4_sym,rounding=sr,sr={variant},k={k}) keeps the rne shared exponent, gives one of "
             "the two integer neighbours of x (monotone in r), rounds away for exactly up_count(frac) values of r "
             "(unbiased when frac has at most k bits), and equals the exact model on every 64th x", budget=30,
             tags=("sr", "kernel", "block", "bfp", variant))
    def bfp():
        return check_bfp_sr(variant, k)


for _case in CASES:
    _register(*_case)


@theorem("sr.bfp.a.unbiased_beyond_k.int4_sym",
         "(enumeration of the numpy kernel) claim: the mean over every 4-bit r of bfp_quantize(int4_sym,rounding=sr,"
         "sr=a,k=4) is the exact quotient for every binary16 x -- false (expected verdict: counterexample)",
         expect=COUNTEREXAMPLE, budget=20, tags=("sr", "kernel", "block", "bfp", "a"))
def _bfp_unbiased_beyond_k():
    return check_bfp_sr("a", 4, claim_unbiased=True)
