"""The cast theorems' second route: their spec and their kernel compared with refarith.exact input by input.

* 16-bit sources (binary16, bfloat16): the spec encoding of
  :mod:`refarith.smt.encode` -- the very Z3 term the kernel theorems prove the
  kernel equal to -- evaluated on all 2^16 source patterns at once with
  :func:`refarith.smt.npeval.evaluate`, against ``round_value`` of the exact
  model on every decoded input (code and error flag; ``sr``: every input and
  every random integer r < 2^k).
* binary32 sources: ``cast_bits`` on numpy words over index ranges of the 2^32
  patterns against an exact-model table.  Targets with at most 6 mantissa bits:
  a table of 2^17 exact results indexed by the sticky key (bits >> 16, low 16
  bits != 0); that key determines the exact result because the target's
  rounding bit lies at bit 16 or above of every binary32 pattern (the lemma
  cast.lut16.*), so the low 16 bits only act as a sticky bit.  Wider targets
  (bfloat16, binary16): a per-binade class table -- for each (sign, exponent
  field) the d source significand bits below the target ulp (d from the
  binade, d >= 1 for these targets) are reduced to q = sig >> d and one of
  four remainder classes (0, below half, half, above half), which is all that
  round_value reads of a finite value; one exact call per reachable class on a
  representative.  The table path of ``refarith.fast.cast`` (its key table and
  its index code) is checked against the same reference where it applies.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import lru_cache

import numpy as np
import z3

from refarith.errors import RefarithError
from refarith.exact.ops import decode, value_table
from refarith.exact.rounding import round_value
from refarith.formats import FloatFormat, get_format
from refarith.smt.encode import cast_spec
from refarith.smt.npeval import evaluate

Setting = tuple[str, str, str, str]  # (rounding, overflow, nan_policy, negative)
NO_CODE = 1 << 32  # the reference's "error" entry: above every code
MISSING = 1 << 33  # a reference entry not computed (outside the requested range, or no such class)


@lru_cache(maxsize=4)
def _values(src: str) -> tuple:
    return tuple(v for _, v in value_table(src))


def _exact(v, dst: FloatFormat, st: Setting, rand: int | None = None, k: int | None = None) -> int:
    try:
        return round_value(v, dst, st[0], st[1], st[2], st[3], rand, k).code
    except RefarithError:
        return NO_CODE


def _merge(codes: np.ndarray, err: np.ndarray, shape: tuple) -> np.ndarray:
    codes = np.broadcast_to(np.asarray(codes, dtype=np.uint64), shape)
    err = np.broadcast_to(np.asarray(err, dtype=bool), shape)
    return np.where(err, np.uint64(NO_CODE), codes)


def _first(bad: np.ndarray, got: np.ndarray, want: np.ndarray, limit: int = 5) -> list[dict]:
    out = []
    for i in np.argwhere(bad)[:limit]:
        i = tuple(int(j) for j in i)
        g, w = int(got[i]), int(want[i])
        out.append({"index": list(i), "spec": "error" if g == NO_CODE else hex(g),
                    "exact": "error" if w == NO_CODE else hex(w)})
    return out


def _exact_codes(vals, d: FloatFormat, st: Setting) -> np.ndarray:
    return np.array([_exact(v, d, st) for v in vals], dtype=np.uint64)


def _decoded(s, xs: np.ndarray) -> list:
    """The exact values of patterns ``xs`` of source ``s`` (the cached value table for sources of <= 16 bits)."""
    if s.nbits <= 16:
        table = _values(s.name)
        return [table[int(i)] for i in xs]
    return [decode(int(i), s) for i in xs]


def spec_vs_exact(src: str, dst: str, settings: list[Setting], patterns: np.ndarray,
                  kernel_widths: tuple[int, ...] = (), values: list | None = None) -> dict:
    """Spec encoding vs exact model on the given source patterns (any source the spec encodes: IEEE-layout floats
    up to binary64, integers), for each setting.  ``kernel_widths``: ``cast_bits`` on numpy words of each of these
    widths is compared with the same exact results too (the second route of ``cast.width.SRC->DST``).  ``values``:
    the decoded patterns, when the caller already has them."""
    from refarith.fast.bitops import NumpyBitOps
    from refarith.fast.castkernel import cast_bits

    s, d = get_format(src), get_format(dst)
    x = z3.BitVec("x", s.nbits)
    xs = np.asarray(patterns, dtype=np.uint64)
    vals = _decoded(s, xs) if values is None else values
    compared = mismatches = kernel_compared = kernel_mismatches = 0
    first: list[dict] = []
    for st in settings:
        sp = cast_spec(x, s, d, *st)
        got = _merge(evaluate(sp.code, {"x": xs}), evaluate(sp.error, {"x": xs}), xs.shape)
        want = _exact_codes(vals, d, st)
        bad = got != want
        compared += xs.size
        mismatches += int(bad.sum())
        if bad.any() and len(first) < 5:
            first += [{"setting": list(st), "x": hex(int(xs[e["index"][0]])), **e} for e in _first(bad, got, want)]
        for w in kernel_widths:
            ops = NumpyBitOps(w)
            kc, ke = cast_bits(ops, ops.word(xs), s, d, *st)
            kgot = _merge(kc, ke, xs.shape)
            kbad = kgot != want
            kernel_compared += xs.size
            kernel_mismatches += int(kbad.sum())
            if kbad.any() and len(first) < 5:
                first += [{"setting": list(st), "width": w, "x": hex(int(xs[e["index"][0]])), "kernel": e["spec"],
                           "exact": e["exact"]} for e in _first(kbad, kgot, want)]
    return {"compared": compared, "mismatches": mismatches, "kernel_compared": kernel_compared,
            "kernel_mismatches": kernel_mismatches, "first": first}


def spec_vs_exact_16(src: str, dst: str, settings: list[Setting], stride: int = 1,
                     kernel_widths: tuple[int, ...] = ()) -> dict:
    """Spec encoding vs exact model on every ``stride``-th pattern of a source of at most 16 bits, for each
    setting (and the kernel on ``kernel_widths`` words, see :func:`spec_vs_exact`)."""
    s = get_format(src)
    if s.nbits > 16:
        raise RefarithError(f"{src} has {s.nbits} bits: use spec_vs_exact with chosen patterns")
    return spec_vs_exact(src, dst, settings, np.arange(0, s.ncodes, stride, dtype=np.uint64), kernel_widths)


def spec_vs_exact_sr(src: str, dst: str, k: int, overflows: list[str], patterns: np.ndarray,
                     block: int = 4096) -> dict:
    """``sr`` spec (nan=error, negative=error) vs exact model on the given source patterns and every r < 2^k, for
    each overflow mode; ``block`` patterns at a time (the exact results of a block are held in memory)."""
    s, d = get_format(src), get_format(dst)
    x, r = z3.BitVec("x", s.nbits), z3.BitVec("r", k)
    pats = np.asarray(patterns, dtype=np.uint64)
    rs = np.arange(1 << k, dtype=np.uint64)[None, :]
    compared = mismatches = 0
    first: list[dict] = []
    for ov in overflows:
        st = ("sr", ov, "error", "error")
        sp = cast_spec(x, s, d, "sr", ov, rand=z3.ZeroExt(32 - k, r), rand_bits=k)
        for a in range(0, pats.size, block):
            xs = pats[a:a + block, None]
            vals = _decoded(s, xs[:, 0])
            shape = (xs.shape[0], rs.shape[1])
            got = _merge(evaluate(sp.code, {"x": xs, "r": rs}), evaluate(sp.error, {"x": xs, "r": rs}), shape)
            want = np.array([[_exact(v, d, st, rv, k) for rv in range(1 << k)] for v in vals], dtype=np.uint64)
            bad = got != want
            compared += bad.size
            mismatches += int(bad.sum())
            if bad.any() and len(first) < 5:
                first += [{"overflow": ov, "x": hex(int(xs[e["index"][0], 0])), "r": e["index"][1], **e}
                          for e in _first(bad, got, want)]
    return {"compared": compared, "mismatches": mismatches, "first": first}


def spec_vs_exact_16_sr(src: str, dst: str, k: int, overflows: list[str], stride: int = 1) -> dict:
    """``sr`` spec vs exact model on every ``stride``-th pattern of a source of at most 16 bits and every r < 2^k
    (see :func:`spec_vs_exact_sr`)."""
    s = get_format(src)
    if s.nbits > 16:
        raise RefarithError(f"{src} has {s.nbits} bits: use spec_vs_exact_sr with chosen patterns")
    return spec_vs_exact_sr(src, dst, k, overflows, np.arange(0, s.ncodes, stride, dtype=np.uint64))


SOURCES16 = ("binary16", "bfloat16")
INT_SOURCES16 = ("int8", "uint8", "int16")


def units_16() -> list[dict]:
    """Every cast theorem with a source of at most 16 bits whose claim involves the spec, as second-route units:
    ``kind`` "det" (one deterministic kernel theorem: all its settings, every pattern), "sr" (every pattern x every
    r < 2^k, every overflow mode).  Units of the pairs of ``cast.width.SRC->DST`` also run the kernel on 32- and
    64-bit numpy words against the same exact results (``widths``; the union of the pair's mode theorems is the
    width theorem's settings); ``covers`` names every theorem a unit ties to the exact model."""
    from refarith.smt.theorems import casts

    width = {p for p in casts.width_pairs() if p[0] in SOURCES16}
    out: list[dict] = []
    for src in SOURCES16 + INT_SOURCES16:
        dsts = casts.INT_TARGETS if src in INT_SOURCES16 else casts.targets(src)
        for dst in dsts:
            if src in INT_SOURCES16:
                thms = [(f"cast.{src}->{dst}.deterministic", casts.int_settings(src, dst))]
            else:
                thms = casts.kernel_theorems(src, dst)
            for name, settings in thms:
                w = (32, 64) if (src, dst) in width and name.rsplit(".", 1)[1] in casts.DETERMINISTIC_MODES else ()
                covers = [name] + ([f"cast.width.{src}->{dst}"] if w else [])
                rnd = settings[0][0]
                if dst in casts.IEEE_LIKE and rnd in casts.FP_MODES and (rnd, "inf", "error", "error") in settings:
                    covers.append(f"cast.fp.{src}->{dst}.{rnd}")  # its spec term is this setting's
                out.append({"kind": "det", "theorem": name, "src": src, "dst": dst,
                            "settings": [list(st) for st in settings], "widths": list(w), "covers": covers})
            k = 8 if src in INT_SOURCES16 else casts.sr_bits(src)
            out.append({"kind": "sr", "theorem": f"cast.{src}->{dst}.sr", "src": src, "dst": dst, "k": k,
                        "overflows": _overflows(dst), "covers": [f"cast.{src}->{dst}.sr"]})
    return out


def _overflows(dst: str) -> list[str]:
    from refarith.smt.castproofs import valid_overflows

    return list(valid_overflows(get_format(dst)))


def run_unit(u: dict) -> dict:
    """Run one unit of :func:`units_16` or :func:`units_32`; the result of spec_vs_exact_16, spec_vs_exact_16_sr
    or spec_vs_exact_reps with the unit's theorem and the process CPU seconds it took."""
    t0 = time.process_time()
    if u["kind"] == "det":
        r = spec_vs_exact_16(u["src"], u["dst"], [tuple(st) for st in u["settings"]],
                             kernel_widths=tuple(u["widths"]))
    elif u["kind"] == "sr_reduce":
        r = spec_sr_reduce(u)
    elif u["kind"] in ("keys", "classes", "keys64", "classes64", "int_classes"):
        r = spec_vs_exact_reps(u["dst"], [tuple(st) for st in u["settings"]], u["kind"], src=u["src"])
    else:
        r = spec_vs_exact_16_sr(u["src"], u["dst"], u["k"], u["overflows"])
    return {"theorem": u["theorem"], "covers": u["covers"], **r, "cpu_seconds": round(time.process_time() - t0, 3)}


# ------------------------------------------------------------------ binary32 sources
def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@lru_cache(maxsize=8)
def key_reference(dst: str, st: Setting, lo: int = 0, hi: int = 1 << 32) -> np.ndarray:
    """Exact results (NO_CODE for an error) of the 2^17 sticky keys, each on the key's representative pattern
    (bits >> 16 of the key, low 16 bits 0 or 1); only the keys of patterns in [lo, hi), the others MISSING."""
    d, s = get_format(dst), get_format("binary32")
    if d.mbits > 6:
        raise RefarithError(f"{dst} has {d.mbits} mantissa bits: binary32 -> {dst} is not a function of the key")
    tab = np.full(1 << 17, MISSING, dtype=np.uint64)
    for k in range((lo >> 16) << 1, (((hi - 1) >> 16) << 1) + 2):
        tab[k] = _exact(decode(((k >> 1) << 16) | (k & 1), s), d, st)
    return _frozen(tab)


def _class_d(dst: FloatFormat) -> np.ndarray:
    """For each binary32 exponent field E (0..254): d, the number of significand bits below the target ulp."""
    d = np.zeros(255, dtype=np.int64)
    for e_f in range(255):
        es = max(e_f, 1) - 150
        lg = e_f - 127 if e_f else -127  # every subnormal lies below 2^-126 <= 2^emin of bfloat16/binary16
        d[e_f] = max(lg, dst.emin) - dst.mbits - es
    return d


def _qbits(dvec: np.ndarray) -> int:
    """Bits of the largest q = sig >> d over the finite binades (sig < 2^24)."""
    return max(1, max(((1 << 24) - 1) >> int(d) for d in dvec).bit_length())


def class_index(bits: np.ndarray, dvec: np.ndarray) -> np.ndarray:
    """Per-binade class of binary32 patterns: (sign * 256 + E) << (qbits + 2) | q << 2 | remainder class, with
    q = sig >> d(E) and the class of sig - (q << d) against half = 2^(d - 1) (0, below, equal, above); for E = 255
    q is (mantissa != 0): the exact model reads only the sign of a NaN."""
    qb = _qbits(dvec)
    b = bits.astype(np.uint64)
    sign = b >> np.uint64(31)
    e_f = (b >> np.uint64(23)) & np.uint64(0xFF)
    man = b & np.uint64(0x7FFFFF)
    sig = np.where(e_f > 0, man | np.uint64(1 << 23), man)
    d = dvec[np.minimum(e_f, np.uint64(254)).astype(np.int64)].astype(np.uint64)
    dc = np.minimum(d, np.uint64(63))  # d >= 25 keeps q = 0 and rem = sig < 2^24 < half either way
    q = sig >> dc
    rem = sig - (q << dc)
    half = np.uint64(1) << (dc - np.uint64(1))
    cls = np.where(rem == 0, 0, np.where(rem < half, 1, np.where(rem == half, 2, 3))).astype(np.uint64)
    special = e_f == np.uint64(255)
    q = np.where(special, (man != 0).astype(np.uint64), q)
    cls = np.where(special, np.uint64(0), cls)
    return ((sign * np.uint64(256) + e_f) << np.uint64(qb + 2)) | (q << np.uint64(2)) | cls


@lru_cache(maxsize=4)
def class_patterns(dst: str, lo: int = 0, hi: int = 1 << 32, clamp: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(class index, representative pattern) of every reachable per-binade class (see :func:`class_index`) of the
    binades (sign, exponent field) met in [lo, hi): for each q the class's smallest member of the binade (the
    pattern :func:`refarith.smt.castproofs.class_pattern` maps every member to).  ``clamp``: only the exponent
    fields that map leaves (0, 255 and :func:`refarith.smt.castproofs.key_window`)."""
    from refarith.smt.castproofs import key_window

    e_lo, e_hi = key_window("binary32", dst)
    d = get_format(dst)
    dvec = _class_d(d)
    if int(dvec.min()) < 1:
        raise RefarithError(f"binary32 -> {dst}: a binade keeps every source bit (d < 1); no class reduction")
    qb = _qbits(dvec)
    idx: list[int] = []
    pats: list[int] = []
    for top in range(lo >> 23, ((hi - 1) >> 23) + 1):
        s, e_f = top >> 8, top & 0xFF
        if clamp and 0 < e_f < 255 and not e_lo <= e_f <= e_hi:
            continue
        base_key = top << (qb + 2)
        if e_f == 255:
            for q, man in ((0, 0), (1, 1)):
                idx.append(base_key | (q << 2))
                pats.append((s << 31) | (255 << 23) | man)
            continue
        dd = int(dvec[e_f])
        s_lo, s_hi = (0, 1 << 23) if e_f == 0 else (1 << 23, 1 << 24)  # the significands of this binade
        half = 1 << (dd - 1)
        for q in range(s_lo >> dd, ((s_hi - 1) >> dd) + 1):
            base = q << dd
            a, b = max(s_lo, base), min(s_hi, base + 2 * half)  # the significands with this q
            reps = {0: base, 1: max(a, base + 1), 2: base + half, 3: max(a, base + half + 1)}
            ranges = {0: (base, base + 1), 1: (base + 1, base + half), 2: (base + half, base + half + 1),
                      3: (base + half + 1, base + 2 * half)}
            for cls, sig in reps.items():
                r_lo, r_hi = ranges[cls]
                if r_lo <= sig < r_hi and a <= sig < b:
                    idx.append(base_key | (q << 2) | cls)
                    pats.append((s << 31) | (e_f << 23) | (sig & 0x7FFFFF))
    return _frozen(np.array(idx, dtype=np.int64)), _frozen(np.array(pats, dtype=np.uint64))


@lru_cache(maxsize=4)
def class_reference(dst: str, st: Setting, lo: int = 0, hi: int = 1 << 32) -> np.ndarray:
    """Exact results (NO_CODE for an error) of every reachable per-binade class (see :func:`class_index`) of the
    binades (sign, exponent field) met in [lo, hi), as a dense table indexed by class index; other entries hold
    MISSING."""
    d, src = get_format(dst), get_format("binary32")
    idx, pats = class_patterns(dst, lo, hi)
    tab = np.full(512 << (_qbits(_class_d(d)) + 2), MISSING, dtype=np.uint64)
    tab[idx] = [_exact(decode(int(p), src), d, st) for p in pats]
    return _frozen(tab)


@lru_cache(maxsize=2)
def float_class_patterns(src: str, dst: str) -> np.ndarray:
    """Every representative of :func:`refarith.smt.castproofs.class_pattern` (binary32 or binary64 -> ``dst``),
    sorted: per sign, exponent field 0 and the clamp window (:func:`refarith.smt.castproofs.key_window`), each q
    with the smallest member of each remainder class in the binade; the all-ones field with mantissa 0 and 1."""
    from refarith.smt.castproofs import key_window

    f, d = get_format(src), get_format(dst)
    m, bias = f.mbits, f.bias
    e_lo, e_hi = key_window(src, dst)
    ones = (1 << f.ebits) - 1
    pats: list[int] = []
    for s in (0, 1):
        head = s << (f.nbits - 1)
        pats += [head | (ones << m), head | (ones << m) | 1]
        for e_f in (0, *range(e_lo, e_hi + 1)):
            lg = e_f - bias if e_f else -bias
            dd = max(lg, d.emin) - d.mbits - (max(e_f, 1) - bias - m)
            if dd < 1:
                raise RefarithError(f"{src} -> {dst}: a binade keeps every source bit (d < 1); no class reduction")
            s_lo, s_hi = (0, 1 << m) if e_f == 0 else (1 << m, 1 << (m + 1))
            half = 1 << (dd - 1)
            for q in range(s_lo >> dd, ((s_hi - 1) >> dd) + 1):
                base = q << dd
                a, b = max(s_lo, base), min(s_hi, base + 2 * half)
                for sig, (r_lo, r_hi) in ((base, (base, base + 1)), (max(a, base + 1), (base + 1, base + half)),
                                          (base + half, (base + half, base + half + 1)),
                                          (max(a, base + half + 1), (base + half + 1, base + 2 * half))):
                    if r_lo <= sig < r_hi and a <= sig < b:
                        pats.append(head | (e_f << m) | (sig & ((1 << m) - 1)))
    return _frozen(np.array(sorted(pats), dtype=np.uint64))


def clamped_key_patterns(src: str, dst: str) -> np.ndarray:
    """Every representative of :func:`refarith.smt.castproofs.clamped_key_pattern` (binary32 or binary64 ->
    ``dst``): both signs; exponent field 0, the all-ones field and the clamp window; every value of the mantissa
    bits above the collapsed ones; the sticky bit."""
    from refarith.smt.castproofs import KEY_LOW, key_window

    f = get_format(src)
    low = KEY_LOW[src]
    e_lo, e_hi = key_window(src, dst)
    fields = np.array([0, *range(e_lo, e_hi + 1), (1 << f.ebits) - 1], dtype=np.uint64)
    top = np.arange(1 << (f.mbits - low), dtype=np.uint64)
    sign, e_f, t, st = np.meshgrid(np.arange(2, dtype=np.uint64), fields, top, np.arange(2, dtype=np.uint64),
                                   indexing="ij")
    return ((sign << np.uint64(f.nbits - 1)) | (e_f << np.uint64(f.mbits)) | (t << np.uint64(low)) | st).ravel()


def int_class_patterns(src: str, dst: str) -> np.ndarray:
    """Every representative of :func:`refarith.smt.castproofs.int_class_pattern` (integer ``src`` -> float
    ``dst``), as source patterns: zero; per sign, every magnitude of at most p bits; for longer magnitudes up to
    the clamp, each top-p-bits q with the smallest member of each remainder class; the clamp itself."""
    from refarith.smt.castproofs import int_rep_params

    s = get_format(src)
    n = s.nbits
    p, clamp = int_rep_params(src, dst)
    mags: dict[int, list[int]] = {}
    for sign in ((0, 1) if s.signed else (0,)):
        top = (1 << (n - 1)) - 1 + sign if s.signed else (1 << n) - 1
        limit = top if clamp is None else min(top, clamp - 1)
        out = [clamp] if clamp is not None else []
        for length in range(1, limit.bit_length() + 1):
            if length <= p:
                out += range(1 << (length - 1), min(1 << length, limit + 1))
                continue
            d = length - p
            half = 1 << (d - 1)
            for q in range(1 << (p - 1), 1 << p):
                base = q << d
                out += [m for m in (base, base + 1, base + half, base + half + 1)[::1 if d >= 2 else 2]
                        if m <= limit]
        mags[sign] = out
    pats = [0] + mags[0] + [((1 << n) - m) for m in mags.get(1, [])]
    return np.array(sorted(set(pats)), dtype=np.uint64)


def units_int() -> list[dict]:
    """Every deterministic kernel theorem from an integer source wider than 16 bits (int32, uint32, int64), as
    ``int_classes`` units (see :func:`units_32`)."""
    from refarith.smt.theorems import casts

    return [{"kind": "int_classes", "theorem": f"cast.{src}->{dst}.deterministic", "src": src, "dst": dst,
             "settings": [list(st) for st in casts.int_settings(src, dst)],
             "covers": [f"cast.{src}->{dst}.deterministic"]}
            for src in casts.INT_SOURCES if get_format(src).nbits > 16 for dst in casts.INT_TARGETS]


def units_64() -> list[dict]:
    """Every deterministic binary64 kernel theorem, as ``keys64`` units (targets of at most 7 mantissa bits,
    bfloat16 included) or ``classes64`` units (binary16); see :func:`units_32`."""
    from refarith.smt.theorems import casts

    return [{"kind": "keys64" if get_format(dst).mbits <= 7 else "classes64", "theorem": name, "src": "binary64",
             "dst": dst, "settings": [list(st) for st in settings], "covers": [name]}
            for dst, name, settings in casts.binary64_theorems()]


def units_32() -> list[dict]:
    """Every deterministic cast theorem from binary32 whose claim involves the spec, as representative-route
    units: ``kind`` "keys" (targets of at most 6 mantissa bits: the clamped sticky-key patterns) or "classes"
    (bfloat16, binary16: the per-binade class patterns).  A unit proves the spec invariant under the
    representative map for its settings (Z3) and compares the spec and ``cast_bits`` (32-bit numpy words) with the
    exact model on every representative; ``covers`` names the theorems it ties to the exact model."""
    from refarith.smt.theorems import casts

    out: list[dict] = []
    for dst in casts.targets("binary32"):
        thms = list(casts.kernel_theorems("binary32", dst))
        if dst in casts.LIBRARY_OVERFLOW_TARGETS:
            thms.append((f"cast.library_overflow.binary32->{dst}", casts.library_overflow_settings(dst)))
        kind = "keys" if get_format(dst).mbits <= 6 else "classes"
        for name, settings in thms:
            covers = [name]
            rnd = settings[0][0]
            fp_dsts = casts.IEEE_LIKE + ("bfloat16", "binary16")
            if (dst in fp_dsts and rnd in casts.FP_MODES and (rnd, "inf", "error", "error") in settings
                    and not name.startswith("cast.library_overflow")):
                covers.append(f"cast.fp.binary32->{dst}.{rnd}")  # its spec term is this setting's
            out.append({"kind": kind, "theorem": name, "src": "binary32", "dst": dst,
                        "settings": [list(st) for st in settings], "covers": covers})
    return out


@lru_cache(maxsize=2)
def _rep_values(route: str, dst: str, src: str) -> tuple[np.ndarray, list]:
    """The representatives of a route and their decoded values, shared by the units of one target."""
    pats = _rep_patterns(route, dst, src)
    return _frozen(pats), _decoded(get_format(src), pats)


def _rep_patterns(route: str, dst: str, src: str) -> np.ndarray:
    if route in ("classes", "classes64"):
        return float_class_patterns(src, dst)
    if route == "int_classes":
        return int_class_patterns(src, dst)
    return clamped_key_patterns(src, dst)


def spec_vs_exact_reps(dst: str, settings: list[Setting], route: str, stride: int = 1,
                       timeout_s: float = 600.0, src: str | None = None) -> dict:
    """The representative route for binary32 (``keys``, ``classes``) or binary64 (``keys64``) -> ``dst``: Z3 proves
    spec(x) == spec(rep(x)) for every pattern and setting (:func:`refarith.smt.castproofs.prove_rep_invariance`),
    then the spec term and ``cast_bits`` on numpy words of the source's width are compared with the exact model on
    every ``stride``-th representative (all of them by default: then the comparison stands for every pattern)."""
    from refarith.smt.castproofs import REP_ROUTES, prove_rep_invariance

    t0 = time.process_time()
    src = REP_ROUTES[route] or src
    inv = prove_rep_invariance(dst, settings, route, timeout_s=timeout_s, src=src)
    t_inv = time.process_time() - t0
    if stride == 1:
        pats, vals = _rep_values(route, dst, src)
    else:
        pats, vals = _rep_patterns(route, dst, src)[::stride], None
    width = 64 if route == "int_classes" else get_format(src).nbits  # integer sources run on 64-bit words
    r = spec_vs_exact(src, dst, settings, pats, kernel_widths=(width,), values=vals)
    return {**r, "route": route, "representatives": int(pats[::stride].size),
            "invariance": inv.verdict, "invariance_detail": inv.counterexample if inv.verdict != "proved" else None,
            "invariance_cpu_seconds": round(t_inv, 3)}


# ------------------------------------------------------------------ sr from wide sources (rtz form)
SR_WIDE_SOURCES = ("binary32", "binary64", "int32", "uint32", "int64")


def units_sr_wide() -> list[dict]:
    """Every ``sr`` kernel theorem from binary32, binary64, int32, uint32 and int64, as ``sr_reduce`` units: Z3
    proves the sr spec equal to its rtz form (:func:`refarith.smt.castproofs.prove_sr_reduction`) for every
    (x, r) and overflow mode; the exact model's side of the same identity is checked on sampled patterns x every
    r (:func:`sr_identity`).  ``needs``: the kernel theorems whose spec terms the rtz form uses (their second
    routes are the ``keys``/``classes``/``keys64``/``classes64`` units)."""
    from refarith.smt.castproofs import sr_via
    from refarith.smt.theorems import casts

    out = []
    for src in SR_WIDE_SOURCES:
        dsts = casts.targets(src) if src in casts.SOURCES or src == "binary64" else casts.INT_TARGETS
        if src == "binary64":
            dsts = list(casts.REP_TARGETS64)
        via = sr_via(src).name
        for dst in dsts:
            name = f"cast.{src}->{dst}.sr"
            out.append({"kind": "sr_reduce", "theorem": name, "src": src, "dst": dst, "k": casts.sr_bits(src)
                        if src in ("binary32", "binary64") else 8, "overflows": _overflows(dst), "covers": [name],
                        "needs": [f"cast.{via}->{dst}.rtz", f"cast.{via}->{dst}.rne"]})
    return out


def sr_sample_patterns(src: str, dst: str, count: int, seed: int = 0) -> np.ndarray:
    """``count`` source patterns for the sr identity, seeded: both signs, exponent fields (or integer bit
    lengths) from k + 4 binades below the target's least value up to 2^(emax + 2), mantissas uniform, with the
    bits below the k rounding bits cleared, all ones, or a lone low bit; then the patterns next to the target's
    max, T, least value and least normal, zero, the infinities and a NaN (floats), the extremes (integers)."""
    from refarith.exact.rounding import round_value
    from refarith.exact.value import Value
    from refarith.smt.castproofs import key_window, sr_threshold

    f, d = get_format(src), get_format(dst)
    rng = np.random.default_rng(seed)
    n = f.nbits
    pats: set[int] = set()
    if isinstance(f, FloatFormat):
        m = f.mbits
        e_lo, e_hi = key_window(src, dst)
        fields = list(range(max(1, e_lo - 12), min((1 << f.ebits) - 2, e_hi + 1) + 1))
        for b in (d.max, sr_threshold(d), d.min_subnormal if d.subnormals else d.min_normal, d.min_normal):
            try:
                c = round_value(Value.of(b), f, "rne", "saturate").code
            except RefarithError:
                continue
            pats.update(c + j for j in range(-2, 3) if 0 < c + j < ((1 << f.ebits) - 1) << m)
        ones = ((1 << f.ebits) - 1) << m
        pats.update({0, ones, ones | 1, 1, (1 << m) - 1, 1 << m})
        while len(pats) < count // 2:
            e_f = int(rng.choice(fields)) if rng.random() < 0.95 else 0
            man = int(rng.integers(0, 1 << m, dtype=np.uint64))
            style = rng.integers(0, 4)
            low = int(rng.integers(1, m + 1))
            man = (man >> low << low) if style == 1 else man | ((1 << low) - 1) if style == 2 else \
                (man >> low << low) | 1 if style == 3 else man
            pats.add((e_f << m) | man)
    else:
        top = (1 << (n - 1)) if f.signed else (1 << n) - 1
        for ln in range(1, n + 1):
            for v in (1 << (ln - 1), (1 << ln) - 1, (1 << (ln - 1)) + 1):
                if v <= top:
                    pats.add(v)
        while len(pats) < count // 2:
            ln = int(rng.integers(1, n + 1))
            v = (1 << (ln - 1)) | int(rng.integers(0, 1 << max(ln - 1, 0), dtype=np.uint64)) if ln > 1 else 1
            low = int(rng.integers(0, ln))
            style = rng.integers(0, 3)
            v = (v >> low << low) if style == 1 else v | ((1 << low) - 1) if style == 2 else v
            if v <= top:
                pats.add(v)
        pats.add(0)
    mags = sorted(pats)
    out: set[int] = set()
    sign = 1 << (n - 1)
    for v in mags:
        if isinstance(f, FloatFormat):
            out.update({v, v | sign})
        elif f.signed:
            if v < sign:
                out.add(v)
            out.add(((1 << n) - v) % (1 << n))  # -v in two's complement (-2^(n-1) included)
        else:
            out.add(v)
    return _frozen(np.array(sorted(out), dtype=np.uint64))


def sr_identity(src: str, dst: str, k: int, overflows: list[str], patterns: np.ndarray) -> dict:
    """The exact model's side of the sr reduction: for each pattern x, every r < 2^k and each overflow mode,
    round_value(v, sr, r) equals :func:`refarith.smt.castproofs.sr_reduced_exact` with (y, big) of
    :func:`refarith.smt.castproofs.sr_shift` (evaluated on numpy words).  The rtz results of y are cached."""
    from refarith.smt.castproofs import sr_reduced_exact, sr_shift

    s, d = get_format(src), get_format(dst)
    x, r = z3.BitVec("x", s.nbits), z3.BitVec("r", k)
    y, big = sr_shift(x, r, s, d, k)
    xs = np.asarray(patterns, dtype=np.uint64)[:, None]
    rs = np.arange(1 << k, dtype=np.uint64)[None, :]
    ys = np.broadcast_to(evaluate(y, {"x": xs, "r": rs}), (xs.shape[0], rs.shape[1]))
    bigs = np.broadcast_to(evaluate(big, {"x": xs, "r": rs}), ys.shape)
    compared = mismatches = 0
    first: list[dict] = []
    for ov in overflows:
        st = ("sr", ov, "error", "error")
        cache: dict[tuple[int, bool], int] = {}
        for i, xv in enumerate(xs[:, 0].tolist()):
            v = decode(int(xv), s)
            by_x = v.is_nan or (not d.signed and v.sign and not v.is_zero)  # the rtz form reads x, not (y, big)
            for rv in range(1 << k):
                key = (int(ys[i, rv]), bool(bigs[i, rv]))
                g = None if by_x else cache.get(key)
                if g is None:
                    g = sr_reduced_exact(int(xv), rv, key[0], key[1], s, d, ov)
                    g = NO_CODE if g is None else g
                    if not by_x:
                        cache[key] = g
                e = _exact(v, d, st, rv, k)
                compared += 1
                if e != g:
                    mismatches += 1
                    if len(first) < 5:
                        first.append({"overflow": ov, "x": hex(int(xv)), "r": rv, "y": hex(key[0]), "big": key[1],
                                      "exact_sr": "error" if e == NO_CODE else hex(e),
                                      "exact_rtz_form": "error" if g == NO_CODE else hex(g)})
    return {"compared": compared, "mismatches": mismatches, "first": first}


def spec_sr_reduce(u: dict, samples: int = 1024, seed: int = 0, timeout_s: float = 600.0) -> dict:
    """One ``sr_reduce`` unit: the Z3 reduction and the exact identity on ``samples`` patterns x every r."""
    from refarith.smt.castproofs import prove_sr_reduction

    t0 = time.process_time()
    out = prove_sr_reduction(u["src"], u["dst"], u["k"], u["overflows"], timeout_s=timeout_s)
    t_red = time.process_time() - t0
    pats = sr_sample_patterns(u["src"], u["dst"], samples, seed)
    r = sr_identity(u["src"], u["dst"], u["k"], u["overflows"], pats)
    return {**r, "route": "sr_reduce", "representatives": int(pats.size), "invariance": out.verdict,
            "invariance_detail": out.counterexample if out.verdict != "proved" else None,
            "invariance_cpu_seconds": round(t_red, 3), "needs": u["needs"]}


def chunks(lo: int, hi: int, size: int = 1 << 16) -> Iterator[tuple[int, int]]:
    """[a, b) blocks covering [lo, hi)."""
    for a in range(lo, hi, size):
        yield a, min(a + size, hi)


def sweep_binary32(dst: str, st: Setting, lo: int = 0, hi: int = 1 << 32, progress=None) -> dict:
    """``cast_bits`` (numpy, 32-bit words) vs the exact-model reference on binary32 patterns [lo, hi); for key
    targets the table path (refarith.fast.cast key table and its numpy index code) is compared too."""
    from refarith.fast import cast as fast_cast
    from refarith.fast.bitops import NumpyBitOps
    from refarith.fast.castkernel import cast_bits, sticky_key

    d = get_format(dst)
    t0 = time.perf_counter()
    keyed = d.mbits <= 6
    if keyed:
        ref_tab = key_reference(dst, st, lo, hi)
        codes, errs, _ = fast_cast.key_table(d, *st)
        lut = np.where(errs, np.uint64(NO_CODE), codes.astype(np.uint64))
        ident = np.arange(1 << 17, dtype=np.uint32)
    else:
        ref_cls = class_reference(dst, st, lo, hi)
        dvec = _class_d(d)
    t_ref = time.perf_counter() - t0
    ops = NumpyBitOps(32)
    compared = mismatches = lut_mismatches = 0
    first: list[dict] = []
    for a, b in chunks(lo, hi):
        bits = np.arange(a, b, dtype=np.uint64).astype(np.uint32)
        kc, ke = cast_bits(ops, bits, "binary32", d, *st)
        got = _merge(kc, ke, bits.shape)
        if keyed:
            idx = fast_cast._gather(bits, ident, None, np.uint32, keyed=True)  # the table path's index code
            key = sticky_key(ops, bits)  # the key the lemma cast.lut16.* and the kernel theorems speak of
            want = ref_tab[key]
            if int(want.max()) == MISSING:
                raise RefarithError(f"binary32 -> {dst}: a key without a reference entry in [{a:#x}, {b:#x})")
            lbad = (lut[idx] != want) | (idx != key)
            lut_mismatches += int(lbad.sum())
        else:
            want = ref_cls[class_index(bits, dvec)]
            if int(want.max()) == MISSING:
                raise RefarithError(f"binary32 -> {dst}: a class without a reference entry in [{a:#x}, {b:#x})")
            lbad = None
        bad = got != want
        compared += bits.size
        if bad.any():
            mismatches += int(bad.sum())
            if len(first) < 5:
                first += [{"x": hex(a + e["index"][0]), "kernel": e["spec"], "exact": e["exact"]}
                          for e in _first(bad, got, want)]
        if lbad is not None and lbad.any() and len(first) < 5:
            first += [{"x": hex(a + e["index"][0]), "table_path": e["spec"], "exact": e["exact"]}
                      for e in _first(lbad, lut[idx], want)]
        if progress is not None:
            progress(b - lo, hi - lo)
    return {"target": dst, "setting": list(st), "reference": "key table" if keyed else "binade classes",
            "lo": lo, "hi": hi, "compared": compared, "mismatches": mismatches,
            "table_path_mismatches": lut_mismatches if keyed else None, "first": first,
            "reference_seconds": round(t_ref, 2), "seconds": round(time.perf_counter() - t0, 2)}


__all__ = ["MISSING", "NO_CODE", "class_index", "class_patterns", "class_reference", "clamped_key_patterns",
           "float_class_patterns", "int_class_patterns", "key_reference", "run_unit", "spec_vs_exact",
           "spec_sr_reduce", "spec_vs_exact_16", "spec_vs_exact_16_sr", "spec_vs_exact_reps", "spec_vs_exact_sr",
           "sr_identity", "sr_sample_patterns", "sweep_binary32", "units_16", "units_32", "units_64", "units_int",
           "units_sr_wide"]
