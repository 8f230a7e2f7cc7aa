"""The cast theorems' spec tied to refarith.exact by a second route (input by input, no solver).

* sources of at most 16 bits: the spec term of every kernel theorem with a
  binary16, bfloat16, int8, uint8 or int16 source, evaluated on all patterns
  (and every r < 2^k for sr), equals the exact model (code and error flag);
  the word-width theorems' kernels on 32- and 64-bit words too.  Default run:
  a representative subset and the check that the units cover every such
  theorem of the registry; ``slow``: every unit (castsweep.units_16).
* binary32 sources, representative route (castsweep.units_32): Z3 proves the
  spec invariant under the sticky-key or per-binade class map, and the spec and
  the kernel equal the exact model on every representative.  Default run: the
  coverage check, a strided subset, and checks that the route can fail;
  ``slow``: every unit, and the class map against the enumeration on all 2^32
  patterns.
* binary32 sources: the kernel over all 2^32 patterns against exact-model
  tables (``slow``, split into shards by target, setting and input range).
* sr from binary32, binary64, int32, uint32, int64 (castsweep.units_sr_wide):
  Z3 proves the sr spec equal to its rtz form (rtz of x + r 2^-k ulp; the
  overflow of a mode that rounds away at and above max + ulp), the exact model
  satisfies the same identity on sampled patterns x every r, the shift matches
  its definition in Fractions, and a wrong form is refuted.  Default run: five
  units and the coverage check; ``slow``: every unit.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import z3

from refarith.formats import FloatFormat, get_format
from refarith.smt import castproofs as cp
from refarith.smt.castsweep import (
    clamped_key_patterns,
    class_index,
    class_patterns,
    class_reference,
    key_reference,
    run_unit,
    spec_vs_exact,
    spec_vs_exact_16,
    spec_vs_exact_16_sr,
    spec_vs_exact_reps,
    sweep_binary32,
    units_16,
    units_32,
    units_64,
    units_int,
    units_sr_wide,
)
from refarith.smt.encode import cast_spec
from refarith.smt.npeval import evaluate
from refarith.smt.theorems.casts import (
    INT_TARGETS,
    binary64_theorems,
    int_settings,
    kernel_theorems,
    sr_bits,
    targets,
)

SOURCES16 = ("binary16", "bfloat16")


def _all_theorems_16() -> list[tuple[str, str, str, list]]:
    return [(src, dst, name, st) for src in SOURCES16 for dst in targets(src) for name, st in kernel_theorems(src, dst)]


DEFAULT_SUBSET = {"cast.binary16->ocp_e4m3.rne", "cast.bfloat16->ocp_e2m1.policies"}


def _assert_clean(out: dict) -> None:
    assert out["compared"] > 0
    assert out["mismatches"] == 0, out["first"]


# ------------------------------------------------------------------ the evaluator itself
@pytest.mark.parametrize("src,dst,st", [("binary16", "ocp_e4m3", ("rne", "saturate", "error", "error")),
                                        ("bfloat16", "ue4m3", ("rto", "saturate", "max", "clamp")),
                                        ("binary16", "e8m0", ("rup", "nan", "error", "error")),
                                        ("binary64", "ocp_e5m2", ("rdn", "inf", "error", "error")),
                                        ("int32", "binary16", ("rna", "saturate", "error", "error"))])
def test_numpy_evaluator_equals_z3_simplify(src, dst, st):
    """npeval on random patterns == z3.simplify of the substituted spec term (the evaluator is not trusted)."""
    s = get_format(src)
    x = z3.BitVec("x", s.nbits)
    sp = cast_spec(x, s, dst, *st)
    rng = random.Random(7)
    xs = [rng.randrange(s.ncodes) for _ in range(150)] + [0, s.ncodes - 1, 1 << (s.nbits - 1)]
    arr = np.array(xs, dtype=np.uint64)
    codes = np.broadcast_to(evaluate(sp.code, {"x": arr}), arr.shape)
    errs = np.broadcast_to(evaluate(sp.error, {"x": arr}), arr.shape)
    for i, v in enumerate(xs):
        sub = (x, z3.BitVecVal(v, s.nbits))
        assert int(codes[i]) == z3.simplify(z3.substitute(sp.code, sub)).as_long(), hex(v)
        assert bool(errs[i]) == z3.is_true(z3.simplify(z3.substitute(sp.error, sub))), hex(v)


def test_numpy_evaluator_shift_and_signed_semantics():
    """SMT-LIB corner cases: shifts by >= the width, arithmetic shift, signed comparison, sign extension."""
    a, s = z3.BitVec("a", 8), z3.BitVec("s", 8)
    terms = [a << s, z3.LShR(a, s), a >> s, z3.If(a < s, a, s), z3.SignExt(8, a) + z3.ZeroExt(8, s),
             z3.Concat(a, s), z3.Extract(6, 2, a * s), -a, ~a | s]
    vals = [(x, y) for x in (0, 1, 0x7F, 0x80, 0xFF, 0x5A) for y in (0, 1, 7, 8, 9, 200, 255)]
    av = np.array([v[0] for v in vals], dtype=np.uint64)
    sv = np.array([v[1] for v in vals], dtype=np.uint64)
    for t in terms:
        got = np.broadcast_to(evaluate(t, {"a": av, "s": sv}), av.shape)
        for i, (x, y) in enumerate(vals):
            want = z3.simplify(z3.substitute(t, (a, z3.BitVecVal(x, 8)), (s, z3.BitVecVal(y, 8)))).as_long()
            assert int(got[i]) == want, (t, x, y)


# ------------------------------------------------------------------ 16-bit sources
@pytest.mark.parametrize("src,dst,name,st", [t for t in _all_theorems_16() if t[2] in DEFAULT_SUBSET],
                         ids=lambda v: v if isinstance(v, str) else None)
def test_spec_equals_exact_16_subset(src, dst, name, st):
    _assert_clean(spec_vs_exact_16(src, dst, st))


def test_spec_sr_equals_exact_16_subset():
    """sr spec, every 64th binary16 pattern x every r < 2^4, into ocp_e2m3 (every overflow mode)."""
    dst = "ocp_e2m3"
    _assert_clean(spec_vs_exact_16_sr("binary16", dst, sr_bits("binary16"), cp.valid_overflows(get_format(dst)),
                                      stride=64))


def test_spec_vs_exact_detects_a_wrong_mode():
    """The comparison can fail: the spec of rtz against the exact model's rne differs on many patterns."""
    out = spec_vs_exact_16("binary16", "ocp_e4m3", [("rtz", "saturate", "error", "error")], stride=8)
    _assert_clean(out)
    from refarith.smt import castsweep

    real = castsweep._exact
    try:
        castsweep._exact = lambda v, d, st, *a: real(v, d, ("rne",) + tuple(st[1:]), *a)
        bad = spec_vs_exact_16("binary16", "ocp_e4m3", [("rtz", "saturate", "error", "error")], stride=8)
    finally:
        castsweep._exact = real
    assert bad["mismatches"] > 0 and bad["first"]


def test_units_16_cover_every_small_source_cast_theorem():
    """Every registered cast theorem with a source of at most 16 bits (kernel, sr, width, FloatingPoint
    cross-check) is covered by a second-route unit, and every unit's theorems exist."""
    from refarith.smt import registry

    names = set(registry.load_all())
    small = ("binary16", "bfloat16", "int8", "uint8", "int16")
    want = {n for n in names if n.startswith("cast.") and n.split("->")[0].rsplit(".", 1)[-1] in small}
    covered = {c for u in units_16() for c in u["covers"]}
    assert len(want) > 700
    assert covered == want, (sorted(want - covered)[:5], sorted(covered - want)[:5])


def test_width_unit_compares_the_kernel_words():
    """A width pair's unit runs cast_bits on 32- and 64-bit words against the exact results, and the comparison can
    fail (the exact model of another mode)."""
    from refarith.smt import castsweep

    (u,) = [u for u in units_16() if u["theorem"] == "cast.bfloat16->ocp_e2m1.rup"]
    assert u["widths"] == [32, 64] and "cast.width.bfloat16->ocp_e2m1" in u["covers"]
    out = spec_vs_exact_16("bfloat16", "ocp_e2m1", [tuple(st) for st in u["settings"]], stride=32,
                           kernel_widths=(32, 64))
    _assert_clean(out)
    assert out["kernel_compared"] == 2 * out["compared"] and out["kernel_mismatches"] == 0
    real = castsweep._exact
    try:
        castsweep._exact = lambda v, d, st, *a: real(v, d, ("rdn",) + tuple(st[1:]), *a)
        bad = spec_vs_exact_16("bfloat16", "ocp_e2m1", [tuple(u["settings"][0])], stride=32, kernel_widths=(32,))
    finally:
        castsweep._exact = real
    assert bad["mismatches"] > 0 and bad["kernel_mismatches"] > 0


def test_spec_sr_equals_exact_int8_all():
    """int8 sr spec (k = 8): every pattern x every r < 2^8, into ocp_e2m1 (every overflow mode)."""
    (u,) = [u for u in units_16() if u["theorem"] == "cast.int8->ocp_e2m1.sr"]
    _assert_clean(run_unit(u))


def _unit_id(u: dict) -> str:
    return u["theorem"]


@pytest.mark.slow
@pytest.mark.parametrize_if_selected("unit", lambda: [u for u in units_16() if u["kind"] == "det"], ids=_unit_id)
def test_spec_equals_exact_16_all(unit):
    out = run_unit(unit)
    _assert_clean(out)
    assert out["kernel_mismatches"] == 0, out["first"]


@pytest.mark.slow
@pytest.mark.parametrize_if_selected("unit", lambda: [u for u in units_16() if u["kind"] == "sr"], ids=_unit_id)
def test_spec_sr_equals_exact_16_all(unit):
    _assert_clean(run_unit(unit))


# ------------------------------------------------------------------ binary64 and integer sources
def _binary64_patterns(n: int = 600) -> np.ndarray:
    """binary64 patterns near the targets' boundaries (powers of two from 2^-160 to 2^160, +-1 ulp and a half-ulp
    offset of 8-bit targets), the specials, and random patterns of every exponent."""
    rng = random.Random(11)
    out = {0, 1 << 63, 0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000, 0xFFF0000000000001, 1,
           0x000FFFFFFFFFFFFF, 0x7FEFFFFFFFFFFFFF}
    for e in range(-160, 161, 3):
        base = (e + 1023) << 52
        for off in (0, 1, (1 << 52) - 1, 1 << 47, (1 << 47) + 1, (1 << 44) - 1, 1 << 49):
            for sgn in (0, 1 << 63):
                out.add(sgn | ((base + off) & ((1 << 63) - 1)))
    out |= {rng.getrandbits(64) for _ in range(n)}
    return np.array(sorted(out), dtype=np.uint64)


@pytest.mark.parametrize("dst", ["ocp_e4m3", "e8m0", "ue4m3", "binary16"])
def test_spec_equals_exact_binary64_boundaries(dst):
    """The 64-bit spec words of cast.binary64->DST.* against the exact model on boundary and random patterns."""
    pats = _binary64_patterns()
    settings = [st for d, _, sts in binary64_theorems() if d == dst for st in sts]
    _assert_clean(spec_vs_exact("binary64", dst, settings, pats))


@pytest.mark.parametrize("src", ["int8", "uint8"])
def test_spec_equals_exact_8_bit_integers(src):
    """Every int8/uint8 pattern, every setting of cast.INT->DST.deterministic, every integer target."""
    for dst in INT_TARGETS:
        _assert_clean(spec_vs_exact(src, dst, int_settings(src, dst), np.arange(256, dtype=np.uint64)))


def test_spec_equals_exact_wide_integers():
    """int32/uint32/int64: the extremes, powers of two and their neighbours, random patterns."""
    rng = random.Random(5)
    for src, n in (("int32", 32), ("uint32", 32), ("int64", 64)):
        pats = {0, 1, (1 << n) - 1, 1 << (n - 1), (1 << (n - 1)) - 1, (1 << (n - 1)) + 1}
        for k in range(n):
            pats |= {1 << k, ((1 << k) + 1) % (1 << n), ((1 << k) - 1), (-(1 << k)) % (1 << n)}
            pats |= {((0b1011 << k) | 1) % (1 << n), ((0b1100 << k) - 1) % (1 << n)}
        pats |= {rng.getrandbits(n) for _ in range(300)}
        arr = np.array(sorted(pats), dtype=np.uint64)
        for dst in ("ocp_e2m1", "bfloat16"):
            _assert_clean(spec_vs_exact(src, dst, int_settings(src, dst), arr))


# ------------------------------------------------------------------ binary32 sources
BF16_SETTING = ("rtz", "inf", "error", "error")
E4M3_SETTING = ("rne", "saturate", "error", "error")


def test_class_reference_matches_exact_on_random_patterns():
    """The per-binade class table gives the exact model's result on random binary32 patterns (bfloat16 target)."""
    from refarith.exact.ops import decode
    from refarith.exact.rounding import round_value
    from refarith.smt.castsweep import _class_d

    d = get_format("bfloat16")
    rng = random.Random(3)
    lo, hi = 0x7E000000, 0x80800000  # the top binades, inf/NaN and the smallest negative binade
    tab = class_reference("bfloat16", BF16_SETTING, lo, hi)
    pats = [rng.randrange(lo, hi) for _ in range(400)] + [0x7F7FFFFF, 0x7F800000, 0x7F800001, 0x80000000, 0x80008000]
    got = tab[class_index(np.array(pats, dtype=np.uint32), _class_d(d))]
    for p, g in zip(pats, got):
        assert int(g) == round_value(decode(p, "binary32"), d, *BF16_SETTING).code, hex(p)


def test_sweep_windows_default():
    """Kernel vs exact tables on 2^16-pattern windows around 1.0, the overflow edge and the subnormals."""
    for dst, st in (("ocp_e4m3", E4M3_SETTING), ("bfloat16", BF16_SETTING)):
        for lo in (0x3F800000 - (1 << 15), 0x43E00000 - (1 << 15), 0x80000000):
            r = sweep_binary32(dst, st, lo, lo + (1 << 16))
            assert r["compared"] == 1 << 16
            assert r["mismatches"] == 0 and not r["table_path_mismatches"], r["first"]


def test_key_reference_sees_a_wrong_kernel_setting():
    """The exact key table of rne differs from the kernel run with rtz on the keys' representatives: the sweep's
    comparison can fail."""
    from refarith.fast.bitops import NumpyBitOps
    from refarith.fast.castkernel import cast_bits, key_representative

    lo, hi = 0x3B000000, 0x44000000  # e4m3's range: 2^-9 ... 2^9
    keys = np.arange((lo >> 16) << 1, (hi >> 16) << 1, dtype=np.uint32)
    tab = key_reference("ocp_e4m3", E4M3_SETTING, lo, hi)[keys]
    assert int(tab.max()) < 256  # every key computed, no error entry (e4m3 has NaN)
    ops = NumpyBitOps(32)
    reps = key_representative(ops, keys)
    rne, _ = cast_bits(ops, reps, "binary32", "ocp_e4m3", *E4M3_SETTING)
    rtz, _ = cast_bits(ops, reps, "binary32", "ocp_e4m3", "rtz", *E4M3_SETTING[1:])
    assert np.array_equal(rne.astype(np.uint64), tab)
    assert int((rtz.astype(np.uint64) != tab).sum()) > 1000


SHARDS = 8


def _sweep_units() -> list[tuple[str, tuple, int]]:
    return [(dst, st, i) for dst in targets("binary32") for _, sts in kernel_theorems("binary32", dst)
            for st in sts for i in range(SHARDS)]


@pytest.mark.slow
@pytest.mark.parametrize_if_selected(
    "dst,st,shard", _sweep_units,
    ids=lambda v: v if isinstance(v, str) else (",".join(v) if isinstance(v, tuple) else str(v)))
def test_sweep_binary32_all(dst, st, shard):
    """Every binary32 pattern (shard i of 8 of the range): kernel == exact-model table, and the table path too."""
    lo, hi = (shard << 32) // SHARDS, ((shard + 1) << 32) // SHARDS
    r = sweep_binary32(dst, st, lo, hi)
    assert r["compared"] == hi - lo
    assert r["mismatches"] == 0 and not r["table_path_mismatches"], r["first"]


# ------------------------------------------------------------------ binary32 sources, representative route
def test_units_32_cover_every_binary32_deterministic_cast_theorem():
    """Every registered deterministic kernel theorem from binary32 (each mode, policies, library overflow modes)
    and every FloatingPoint cross-check from binary32 is covered by a representative-route unit."""
    from refarith.smt import registry
    from refarith.smt.theorems.casts import DETERMINISTIC_MODES

    names = set(registry.load_all())
    tails = set(DETERMINISTIC_MODES) | {"policies"}
    want = {n for n in names if (n.startswith("cast.binary32->") and n.rsplit(".", 1)[1] in tails)
            or n.startswith("cast.library_overflow.binary32->") or n.startswith("cast.fp.binary32->")}
    covered = {c for u in units_32() for c in u["covers"]}
    assert len(want) > 300
    assert covered == want, (sorted(want - covered)[:5], sorted(covered - want)[:5])
    assert {u["kind"] for u in units_32() if u["dst"] in ("bfloat16", "binary16")} == {"classes"}


def test_units_64_cover_every_deterministic_binary64_cast_theorem():
    """Every registered deterministic binary64 kernel theorem has a keys64 unit (targets of at most 7 mantissa
    bits, bfloat16 included) or a classes64 unit (binary16)."""
    from refarith.smt import registry

    names = set(registry.load_all())
    want = {n for n in names if n.startswith("cast.binary64->") and not n.endswith(".sr")}
    covered = {c for u in units_64() for c in u["covers"]}
    assert len(want) > 90
    assert covered == want, (sorted(want - covered)[:5], sorted(covered - want)[:5])
    assert {u["dst"] for u in units_64() if u["kind"] == "classes64"} == {"binary16"}  # bfloat16: 7 bits, keys64


@pytest.mark.parametrize("dst", ["bfloat16", "binary16", "binary8p8ue"])
def test_float_class_patterns_equal_the_binary32_class_enumeration(dst):
    """The generic enumeration of the class route gives, for binary32, the per-binade class table's own
    representatives (restricted to the clamp window)."""
    from refarith.smt.castsweep import float_class_patterns

    assert np.array_equal(float_class_patterns("binary32", dst), np.sort(class_patterns(dst, clamp=True)[1]))


def test_classes64_image_and_exact():
    """binary64 -> binary16: random and edge patterns map into the enumerated representatives, with the same
    exact result as their representative."""
    from refarith.exact.ops import decode
    from refarith.smt.castsweep import _exact, float_class_patterns

    pats = float_class_patterns("binary64", "binary16")
    rng = np.random.default_rng(13)
    lo, hi = cp.key_window("binary64", "binary16")
    fields = np.concatenate([rng.integers(lo - 3, hi + 4, 3000), rng.integers(0, 2048, 1000)]).astype(np.uint64)
    xs = ((rng.integers(0, 2, fields.size).astype(np.uint64) << np.uint64(63)) | (fields << np.uint64(52))
          | (rng.integers(0, 1 << 52, fields.size).astype(np.uint64)))
    xs = np.concatenate([xs, np.array([0, 1, 0x7FF0000000000000, 0x7FF8000000000001, 1 << 63], dtype=np.uint64)])
    y = z3.BitVec("y", 64)
    reps = np.asarray(evaluate(cp.class_pattern(y, "binary16", "binary64"), {"y": xs}), dtype=np.uint64)
    assert np.isin(reps, pats).all()
    st = ("rne", "inf", "error", "error")
    f = get_format("binary16")
    for p, r in zip(xs[::25], reps[::25]):
        assert _exact(decode(int(p), "binary64"), f, st) == _exact(decode(int(r), "binary64"), f, st), hex(int(p))


def test_units_int_cover_every_wide_integer_cast_theorem():
    """Every registered deterministic kernel theorem from int32, uint32 or int64 has an int_classes unit."""
    from refarith.smt import registry

    names = set(registry.load_all())
    want = {n for n in names if n.startswith(("cast.int32->", "cast.uint32->", "cast.int64->"))
            and n.endswith(".deterministic")}
    covered = {c for u in units_int() for c in u["covers"]}
    assert len(want) == 18 and covered == want


def test_int_route_subset_and_image():
    """uint32 -> e8m0 and int32 -> ocp_e2m1 on every representative; the class map sends random and edge patterns
    into the enumerated representatives, and a pattern and its representative get the same exact result."""
    from refarith.exact.ops import decode
    from refarith.smt.castsweep import _exact, int_class_patterns

    for src, dst, st in (("uint32", "e8m0", [("rdn", "saturate", "error", "error")]),
                         ("int32", "ocp_e2m1", [("rna", "saturate", "error", "error")])):
        out = spec_vs_exact_reps(dst, st, "int_classes", src=src)
        assert out["invariance"] == "proved", out["invariance_detail"]
        _assert_clean(out)
        assert out["kernel_compared"] == out["compared"] and out["kernel_mismatches"] == 0
        rng = np.random.default_rng(7)
        xs = np.concatenate([rng.integers(0, 1 << 32, 4000, dtype=np.uint64),
                             np.array([0, 1, 2, 3, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 24, 25, 1 << 20], np.uint64)])
        x = z3.BitVec("x", 32)
        reps = np.asarray(evaluate(cp.int_class_pattern(x, src, dst), {"x": xs}), dtype=np.uint64)
        assert np.isin(reps, int_class_patterns(src, dst)).all()
        for p, r in zip(xs[::20], reps[::20]):
            f = get_format(dst)
            assert _exact(decode(int(p), src), f, st[0]) == _exact(decode(int(r), src), f, st[0]), hex(int(p))


@pytest.mark.parametrize("dst,st,route,stride", [
    ("ocp_e2m1", [("rtz", "saturate", "error", "error")], "keys", 16),
    ("ocp_e4m3", [("rna", "nan", "error", "error")], "keys64", 4),
    ("binary16", [("rup", "saturate", "error", "error")], "classes64", 512),
    ("e8m0", [("rup", "saturate", "error", "error"), ("rne", "nan", "error", "error")], "keys", 16),
    ("bfloat16", [BF16_SETTING], "classes", 128),
])
def test_rep_route_subset(dst, st, route, stride):
    out = spec_vs_exact_reps(dst, st, route, stride=stride)
    assert out["invariance"] == "proved", out["invariance_detail"]
    _assert_clean(out)
    assert out["kernel_compared"] == out["compared"] and out["kernel_mismatches"] == 0


def test_rep_invariance_fails_for_a_wrong_representative(monkeypatch):
    """The invariance lemma can fail: dropping the sticky bit (keys) or sending remainders below half to the ulp
    boundary (classes) changes the spec's result, and the exact model confirms the counterexample."""
    out = cp.prove_rep_invariance("ocp_e4m3", [("rup", "saturate", "error", "error")], "keys")
    assert out.verdict == "proved"
    monkeypatch.setattr(cp, "clamped_key_pattern", lambda b, s, d: b & 0xFFFF0000)
    bad = cp.prove_rep_invariance("ocp_e4m3", [("rup", "saturate", "error", "error")], "keys")
    assert bad.verdict == "counterexample" and bad.confirmed is True
    monkeypatch.undo()
    real_w = cp.key_window
    monkeypatch.setattr(cp, "key_window", lambda a, d: (real_w(a, d)[0], real_w(a, d)[1] - 3))  # clamps into range
    bad = cp.prove_rep_invariance("ocp_e4m3", [("rne", "saturate", "error", "error")], "keys64")
    assert bad.verdict == "counterexample" and bad.confirmed is True
    monkeypatch.undo()
    monkeypatch.setattr(cp, "int_rep_params", lambda a, b: (3, None))  # one significand bit too few for e4m3
    bad = cp.prove_rep_invariance("ocp_e4m3", [("rne", "saturate", "error", "error")], "int_classes", src="int32")
    assert bad.verdict == "counterexample" and bad.confirmed is True
    monkeypatch.undo()
    real = cp.class_pattern
    monkeypatch.setattr(cp, "class_pattern", lambda b, d, src="binary32": real(b, d, src) & 0xFFFFFF00)
    bad = cp.prove_rep_invariance("bfloat16", [("rne", "inf", "error", "error")], "classes")
    assert bad.verdict == "counterexample" and bad.confirmed is True


def _class_map_agrees(dst: str, xs: np.ndarray) -> None:
    """The Z3 class map (evaluated on numpy words) sends every pattern to the enumerated representative of its
    class, so the enumeration holds the image of the map the invariance lemma uses."""
    from refarith.smt.castsweep import _class_d

    dvec = _class_d(get_format(dst))
    idx, pats = class_patterns(dst, clamp=True)
    table = np.full(int(idx.max()) + 1, -1, dtype=np.int64)
    table[idx] = pats.astype(np.int64)
    x = z3.BitVec("x", 32)
    got = np.asarray(evaluate(cp.class_pattern(x, dst), {"x": xs.astype(np.uint64)}), dtype=np.int64)
    lo, hi = cp.key_window("binary32", dst)  # the exponent clamp, restated on numpy words
    b = xs.astype(np.uint32)
    e_f = (b >> np.uint32(23)) & np.uint32(0xFF)
    e_c = np.where((e_f == 0) | (e_f == 255), e_f, np.clip(e_f, lo, hi)).astype(np.uint32)
    b = (b & np.uint32(0x807FFFFF)) | (e_c << np.uint32(23))
    want = table[class_index(b, dvec)]
    assert (want >= 0).all()
    assert (want >= 0).all()
    assert np.array_equal(got, want), hex(int(xs[np.argmax(got != want)]))


@pytest.mark.parametrize("dst", ["bfloat16", "binary16"])
def test_class_map_equals_enumeration_sampled(dst):
    rng = np.random.default_rng(5)
    edges = [0, 1, 0x7FFFFF, 0x800000, 0x00FFFFFF, 0x387FFFFF, 0x38800000, 0x477FEFFF, 0x477FF000, 0x7F7FFFFF,
             0x7F800000, 0x7F800001, 0xFFFFFFFF, 0x80000001]
    xs = np.concatenate([rng.integers(0, 1 << 32, 1 << 15, dtype=np.uint64), np.array(edges, dtype=np.uint64)])
    _class_map_agrees(dst, xs)


@pytest.mark.parametrize("src,dst", [("binary32", "ocp_e4m3"), ("binary32", "e8m0"), ("binary64", "ocp_e2m1")])
def test_clamped_key_patterns_are_the_key_map_image(src, dst):
    """clamped_key_patterns lists each representative once, each a fixed point of clamped_key_pattern, and the map
    sends random and edge patterns into that list (it keeps sign, a clamped exponent field, the top mantissa bits
    and one sticky bit, the very fields the list spans)."""
    pats = clamped_key_patterns(src, dst)
    assert np.unique(pats).size == pats.size
    f = get_format(src)
    x = z3.BitVec("x", f.nbits)
    term = cp.clamped_key_pattern(x, src, dst)
    assert np.array_equal(np.asarray(evaluate(term, {"x": pats}), dtype=np.uint64), pats)
    rng = np.random.default_rng(9)
    xs = np.concatenate([rng.integers(0, 1 << 63, 3000, dtype=np.uint64) >> np.uint64(63 - f.nbits + 1)
                         if f.nbits < 64 else rng.integers(0, 1 << 63, 3000, dtype=np.uint64) * np.uint64(2),
                         np.array([0, 1, (1 << f.nbits) - 1, 1 << (f.nbits - 1)], dtype=np.uint64)])
    assert np.isin(np.asarray(evaluate(term, {"x": xs}), dtype=np.uint64), pats).all()


def test_exact_model_reads_only_the_representative():
    """Spot check of the argument behind the route: on random patterns the exact model gives the same result for
    a pattern and its representative (keys: ocp_e4m3, e8m0; classes: binary16)."""
    from refarith.exact.ops import decode
    from refarith.smt.castsweep import NO_CODE, _exact

    rng = random.Random(11)
    x = z3.BitVec("x", 32)
    seen_error = 0
    for dst, st, route in (("ocp_e4m3", ("rna", "saturate", "error", "error"), "keys"),
                           ("e8m0", ("rup", "saturate", "error", "error"), "keys"),
                           ("binary16", ("rne", "inf", "error", "error"), "classes")):
        term = cp.clamped_key_pattern(x, "binary32", dst) if route == "keys" else cp.class_pattern(x, dst)
        xs = [rng.getrandbits(32) for _ in range(300)]
        reps = evaluate(term, {"x": np.array(xs, dtype=np.uint64)})
        for p, r in zip(xs, np.asarray(reps)):
            a = _exact(decode(p, "binary32"), get_format(dst), st)
            b = _exact(decode(int(r), "binary32"), get_format(dst), st)
            assert a == b, (dst, hex(p), hex(int(r)))
            seen_error += a == NO_CODE
    assert 0 < seen_error < 600  # both error results (NaN, negatives into e8m0) and codes were compared
    y = z3.BitVec("y", 64)
    for dst, st in (("ocp_e4m3", ("rup", "saturate", "error", "error")), ("e8m0", ("rdn", "nan", "error", "error")),
                    ("ocp_e2m1", ("rto", "saturate", "error", "error"))):
        lo, hi = cp.key_window("binary64", dst)
        xs = []
        for _ in range(300):  # exponent fields spread over the window, its edges and far outside it
            e_f = rng.choice([rng.randrange(1, 2047), rng.randrange(lo - 2, hi + 3), 0])
            xs.append((rng.getrandbits(1) << 63) | (e_f << 52) | rng.getrandbits(52))
        reps = np.asarray(evaluate(cp.clamped_key_pattern(y, "binary64", dst), {"y": np.array(xs, dtype=np.uint64)}))
        for p, r in zip(xs, reps):
            a = _exact(decode(p, "binary64"), get_format(dst), st)
            b = _exact(decode(int(r), "binary64"), get_format(dst), st)
            assert a == b, (dst, hex(p), hex(int(r)))


@pytest.mark.slow
@pytest.mark.parametrize_if_selected("unit", lambda: units_32() + units_64() + units_int(), ids=_unit_id)
def test_rep_route_all(unit):
    out = run_unit(unit)
    assert out["invariance"] == "proved", out["invariance_detail"]
    _assert_clean(out)
    assert out["kernel_mismatches"] == 0, out["first"]


@pytest.mark.slow
@pytest.mark.parametrize("dst", ["bfloat16", "binary16"])
def test_class_map_equals_enumeration_all(dst):
    """All 2^32 binary32 patterns: the Z3 class map gives the enumerated representative of the pattern's class."""
    for a in range(0, 1 << 32, 1 << 22):
        _class_map_agrees(dst, np.arange(a, a + (1 << 22), dtype=np.uint64))


# ------------------------------------------------------------------ sr from wide sources: the rtz form
def test_units_sr_wide_cover_every_wide_source_sr_theorem():
    """Every registered sr kernel theorem from binary32, binary64, int32, uint32 and int64 has an sr_reduce unit,
    and the rtz and rne theorems its rtz form uses are registered and tied to the exact model by units_32/64."""
    from refarith.smt import registry
    from refarith.smt.castsweep import SR_WIDE_SOURCES, units_sr_wide

    names = set(registry.load_all())
    want = {n for n in names if n.endswith(".sr") and n.split(".")[1].split("->")[0] in SR_WIDE_SOURCES}
    units = units_sr_wide()
    assert len(want) == 73 and {c for u in units for c in u["covers"]} == want
    det = {c for u in units_32() + units_64() for c in u["covers"]}
    needs = {n for u in units for n in u["needs"]}
    assert needs <= names and needs <= det, sorted(needs - det)[:5]


@pytest.mark.parametrize("src,dst", [("binary32", "ocp_e4m3"), ("binary32", "binary16"), ("binary64", "e8m0"),
                                     ("int32", "ocp_e2m1"), ("int64", "bfloat16")])
def test_sr_reduction_proves_and_the_exact_model_agrees(src, dst):
    from refarith.smt.castsweep import sr_identity, sr_sample_patterns, units_sr_wide

    u = next(u for u in units_sr_wide() if (u["src"], u["dst"]) == (src, dst))
    out = cp.prove_sr_reduction(src, dst, u["k"], u["overflows"])
    assert out.verdict == "proved", out.counterexample
    r = sr_identity(src, dst, u["k"], u["overflows"], sr_sample_patterns(src, dst, 48, seed=3))
    assert r["compared"] >= 48 * 256 * len(u["overflows"]) and r["mismatches"] == 0, r["first"]


def _rtz_exact_y(x: int, rv: int, src: str, dst: str, k: int) -> tuple[int, bool] | None:
    """(pattern of sign(v) RTZ_via(|v| + delta), |v| + delta >= T) from the definition of sr_shift, in Fractions;
    None for zero, inf and NaN."""
    from fractions import Fraction

    from refarith.exact.ops import decode
    from refarith.exact.rounding import round_value
    from refarith.exact.value import Value

    s, d = get_format(src), get_format(dst)
    v = decode(x, s)
    if not v.is_finite or v.is_zero:
        return None
    mag = abs(v.fraction)
    lg = mag.numerator.bit_length() - mag.denominator.bit_length()
    if Fraction(2) ** lg > mag:
        lg -= 1
    u = Fraction(2) ** (max(lg, d.emin) - d.mbits)
    delta = rv * u / (1 << k)
    if isinstance(s, FloatFormat):  # a float source: no delta where u exceeds 2^(m + k + 2) source ulps
        es = max(lg, 1 - s.bias) - s.mbits
        if u > Fraction(2) ** (es + s.mbits + k + 2):
            delta = Fraction(0)
    else:
        delta = Fraction(int(delta))  # an integer source: the floor
    w = mag + delta
    via = cp.sr_via(s)
    big = w >= cp.sr_threshold(d)
    y = round_value(Value.of(-w if v.sign else w), via, "rtz", "saturate").code
    return y, big


@pytest.mark.parametrize("src,dst", [("binary32", "ocp_e4m3"), ("binary32", "binary16"), ("binary64", "bfloat16"),
                                     ("int64", "bfloat16"), ("uint32", "e8m0")])
def test_sr_shift_is_truncation_of_the_shifted_value(src, dst):
    """sr_shift's (y, big), evaluated on numpy words, equal their definition computed with Fractions."""
    from refarith.smt.castsweep import sr_sample_patterns

    k = 8
    xs = sr_sample_patterns(src, dst, 96, seed=1)
    rs = np.array([0, 1, 127, 128, 200, 255], dtype=np.uint64)
    x, r = z3.BitVec("x", get_format(src).nbits), z3.BitVec("r", k)
    y, big = cp.sr_shift(x, r, src, dst, k)
    ys = np.broadcast_to(evaluate(y, {"x": xs[:, None], "r": rs[None, :]}), (xs.size, rs.size))
    bigs = np.broadcast_to(evaluate(big, {"x": xs[:, None], "r": rs[None, :]}), ys.shape)
    checked = 0
    for i, xv in enumerate(xs.tolist()):
        for j, rv in enumerate(rs.tolist()):
            want = _rtz_exact_y(int(xv), int(rv), src, dst, k)
            if want is None:
                continue
            assert bool(bigs[i, j]) == want[1], (hex(xv), rv)
            if not want[1]:
                assert int(ys[i, j]) == want[0], (hex(xv), rv, hex(int(ys[i, j])), hex(want[0]))
            checked += 1
    assert checked > 400


def test_sr_reduction_can_fail(monkeypatch):
    """A wrong rtz form is refuted with a counterexample the exact model confirms: y as the plain pattern sum
    (wrong across a binade boundary of the source), a threshold one pattern too high; and the exact-side check
    sees an sr rule other than the spec's (variant b)."""
    from refarith.smt import castsweep as cs

    real = cp.sr_shift

    def pattern_sum(bits, r, src, dst, k):
        y, big = real(bits, r, src, dst, k)
        x32 = bits + (z3.ZeroExt(32 - k, r) << 12)  # the ulp of ocp_e4m3's normal binades is 2^20 source ulps
        return x32, big

    monkeypatch.setattr(cp, "sr_shift", pattern_sum)
    bad = cp.prove_sr_reduction("binary32", "ocp_e4m3", 8, ["saturate"])
    assert bad.verdict == "counterexample" and bad.confirmed is True
    monkeypatch.undo()
    real_t = cp.sr_threshold_pattern
    monkeypatch.setattr(cp, "sr_threshold_pattern", lambda via, dst: real_t(via, dst) + 1)
    bad = cp.prove_sr_reduction("binary32", "ocp_e5m2", 8, ["inf"])
    assert bad.verdict == "counterexample" and bad.confirmed is True
    monkeypatch.undo()
    real_exact = cs._exact
    monkeypatch.setattr(cs, "_exact", lambda v, d, st, rand=None, k=None: real_exact(v, d, st, rand, k) if rand is None
                        else _exact_b(v, d, st, rand, k))
    r = cs.sr_identity("binary32", "ocp_e4m3", 8, ["saturate"], cs.sr_sample_patterns("binary32", "ocp_e4m3", 32))
    assert r["mismatches"] > 0


def _exact_b(v, d, st, rand, k):
    from refarith.errors import RefarithError
    from refarith.exact.rounding import round_value
    from refarith.smt.castsweep import NO_CODE

    try:
        return round_value(v, d, st[0], st[1], st[2], st[3], rand, k, sr_variant="b").code
    except RefarithError:
        return NO_CODE


@pytest.mark.slow
@pytest.mark.parametrize_if_selected("unit", lambda: units_sr_wide(), ids=_unit_id)
def test_sr_reduce_all(unit):
    out = run_unit(unit)
    assert out["invariance"] == "proved", out["invariance_detail"]
    _assert_clean(out)
