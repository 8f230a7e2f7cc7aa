"""Theorems on the traced HiFloat4 block graph the Triton backend emits (:func:`refarith.fast.hif4.hif4_quantize_graph`:
one unit of 64 elements per row, inputs each lane's binary32 bits and its subgroup lane // 4; each outcome names
the graph's digest, which the emitted kernel carries).  Z3, expected *proved*; the four parts together say that
the graph computes :func:`refarith.exact.hif4.quantize_unit` for every unit.

The proof cuts the graph at its 17 block maxima and at the block words between its parts (found by data flow:
which maxima each node depends on; each cut is checked, and a part that still read a maximum past its cut is
refused):

* **Maxima** (part of every theorem): the graph has no block inputs and 17 live ``rmax`` nodes; for every
  binary32 x and subgroup 0 <= j' < 16 one maximum's operand is |x| (the bits & 0x7FFFFFFF) and, for each j, one
  other's is |x| where j' = j and 0 elsewhere.  With the host's subgroups (lane // 4; the hand-emitted row
  reduction is outside the proof, as for MX) they are the unit maximum Vmax and the 16 level-3 maxima V16[j]
  (binary32 patterns of non-negative values are ordered as the values; a NaN or an infinity is above every
  finite magnitude).
* **scale** (``traced.hif4.<st>_<et>.scale``): the scale output reads the unit through the unit maximum only,
  and for every 31-bit pattern M = Vmax it is 0xFF for M >= 0x7F800000 (a NaN or an infinity in the unit), else
  the E6M2 code of clamp(bf16(M * bf16(1/7)), 2^-48, 49152) rounded to 3 significant bits with ties ``st``.
  The rule is stated as the exact model computes it, in Fractions: the rule is non-decreasing in M, so the
  code is the number of the 254 thresholds T_c (the least pattern whose exact code is at least c, found by
  bisection with :func:`refarith.exact.hif4.scale_of`) that M reaches.  Also, each *scale word* (a block word
  computed from Vmax alone that the rest of the graph reads: the reciprocal's significand and exponent, the
  NaN-unit flag and its element-side forms) equals a table K of the scale code, read off the graph at the unit
  maximum 7 S of each scale S (the exact model gives S there; checked), and proved for every M.
* **levels** (``check_levels``): with the scale words K(s) of a free scale code s (0..254, or 0xFF) and free
  level-3 maxima m_j (31-bit, finite unless s = 0xFF), bit 7 - k of the level-2 byte is
  [max(m_2k, m_2k+1) R >= 4] and bit 15 - j of the level-3 word is [m_j R 2^-d8 >= 2] (both 0 for s = 0xFF),
  R = bf16(1/S) the exact model's reciprocal, compared as m >= T with T the least binary32 pattern of value at
  least 2/R or 4/R (Fractions); and each block word the element codes read from the level maxima is d8 + d16 of
  its subgroup, from those two outputs.  One query per level-2 group.
* **elem** (``traced.hif4.<st>_<et>.elem``): with the scale words K(s) and the subgroups' exponents d_j free in
  0..2, the code of a lane (x, j') is 0 for s = 0xFF, else the sign bit [x < 0 and x != 0] over
  q = min(7, round(|x| R 2^(2 - d_j'))) with ties ``et``, for every finite x: q is the number of thresholds B_n
  (n = 1..7: the least binary32 pattern whose value rounds to at least n, from R in Fractions, each checked with
  the exact model's rounding on both of its sides) that |x| reaches.
* ``traced.hif4.elem_even_graph_is_not_away`` (expected counterexample, replayed through the exact model's
  element rounding): the ``away`` element statement on the graph of ``elem_ties=even`` (a tie).

Registered (:data:`REGISTERED`): scale and elem of the reference's graph, elem of the (away, even) graph and the
mutation check, about 10 s of Z3.  The levels part of both graphs (8 queries of about 3 s each) and the scale of
the (away, even) graph run in a slow test.  The thresholds and the scale tables are written compactly (a base
per mantissa field plus the scale's exponent times a constant; checked entry by entry): as where-chains over 256
codes the same queries did not finish in 25 s.

Not proved here: the hand-emitted row layout and block reduction of :mod:`refarith.fast.triton_backend`, the
host's subgroup input and the binary64 dequantization; those are tested against the exact model and the golden
files (``tests/test_hif4_triton.py``, ``tests/test_quant_triton.py``).  The queries are bit-vector only, so
``--solver both`` asks Bitwuzla too.  Two other statements of the scale rule were tried: Z3's FloatingPoint
theory (bfloat16 as FP(8, 8); Z3 proved it in 2.3 s, but Bitwuzla takes binary16/32/64/128 only) and the cast
spec :func:`refarith.smt.encode.round_decoded` (neither solver finished in 20 s).
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from functools import lru_cache

from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, prove, theorem

GRAPHS = (("even", "away"), ("away", "even"))
"""The (scale_ties, elem_ties) graphs whose theorems are registered: the reference's and the alternative both
ties name (the two other graphs differ from these in one tie rule each)."""
FINITE = 0x7F800000
SCALE_NAN = 0xFF
SIGN64 = 1 << 63


class _Cut:
    """The graph cut at its block maxima and block words: ``unit`` and ``sub[j]`` the node indices of the unit and
    level-3 maxima, ``scale_words`` the nodes computed from the unit maximum alone that other parts read,
    ``dwords[j]`` the block words the element codes read from level-3 maximum j (and the unit maximum)."""

    def __init__(self, graph) -> None:
        from refarith.errors import BadValueError
        from refarith.fast.xptrace import node_levels

        self.levels = node_levels(graph)  # raises if a node mixed element and block words
        if any(lv == 1 for lv in graph.input_levels):
            raise BadValueError(f"graph {graph.name!r}: block inputs")
        self.graph = graph
        live = graph.live()
        self.rmax = [i for i, n in enumerate(graph.nodes) if live[i] and n.kind == "rmax"]
        if len(self.rmax) != 17:
            raise BadValueError(f"graph {graph.name!r}: {len(self.rmax)} block maxima, not 17")
        dep: list[frozenset] = []
        for i, n in enumerate(graph.nodes):
            dep.append(frozenset((i,)) if n.kind == "rmax" else frozenset().union(*(dep[a] for a in n.args)))
        self.dep = dep
        users: dict[int, list[int]] = {}
        for i, n in enumerate(graph.nodes):
            if live[i]:
                for a in n.args:
                    users.setdefault(a, []).append(i)
        self.users = users

    def roles(self) -> Outcome | None:
        """Which maximum is which, proved (the Maxima part of the module docstring); None when it holds."""
        import numpy as np
        import z3

        from refarith.fast.bitops import NumpyBitOps
        from refarith.fast.trace import evaluate
        from refarith.fast.xptrace import lane_block_op
        from refarith.smt.bitops_z3 import Z3BitOps

        g = self.graph
        ops = NumpyBitOps(64)
        opg = replace(g, outputs=tuple(g.nodes[i].args[0] for i in self.rmax))
        xs, subs = np.full(16, 0x3F800000, np.uint64), np.arange(16, dtype=np.uint64)
        vals = evaluate(opg, ops, [ops.word(xs), ops.word(subs)], lane_block_op)
        role = {}
        for i, v in zip(self.rmax, vals, strict=True):
            hit = [j for j in range(16) if int(np.asarray(v).reshape(-1)[j]) ^ SIGN64]
            role[i] = "unit" if len(hit) == 16 else (hit[0] if len(hit) == 1 else None)
        units = [i for i, r in role.items() if r == "unit"]
        self.sub = {r: i for i, r in role.items() if isinstance(r, int)}
        if len(units) != 1 or sorted(self.sub) != list(range(16)):
            return Outcome(COUNTEREXAMPLE, {"maxima": str(role)}, True, detail=f"graph {g.digest}")
        self.unit = units[0]
        x, sub = z3.BitVec("x", 32), z3.BitVec("sub", 32)
        outs = evaluate(opg, Z3BitOps(64), [z3.ZeroExt(32, x), z3.ZeroExt(32, sub)], lane_block_op)
        mag = z3.ZeroExt(32, x & 0x7FFFFFFF)
        conds = []
        for i, o in zip(self.rmax, outs, strict=True):
            want = mag if role[i] == "unit" else z3.If(sub == role[i], mag, z3.BitVecVal(0, 64))
            conds.append(o == want ^ SIGN64)
        out = prove(z3.Implies(z3.ULT(sub, 16), z3.And(*conds)), {"x": x, "sub": sub}, 10)
        if out.verdict != PROVED:
            out.detail = (out.detail + " " if out.detail else "") + f"(block maxima) graph {g.digest}"
            return out
        # the scale words: block words computed from the unit maximum alone, read by a node that is not
        self.scale_words = sorted(i for i, d in enumerate(self.dep) if d == {self.unit} and i != self.unit
                                  and self.levels[i] == 1 and any(
            self.dep[u] != {self.unit} or g.nodes[u].kind == "bcast" for u in self.users.get(i, ())))
        self.dwords = {n.args[0]: None for i, n in enumerate(g.nodes)
                       if n.kind == "bcast" and g.live()[i] and self.dep[n.args[0]] != {self.unit}}
        return None

    def name_dwords(self, tables: dict) -> Outcome | None:
        """Which subgroup each element-side block word of the level maxima belongs to: the j for which it equals
        bit 15 - j of the level-3 word plus bit 7 - j // 2 of the level-2 byte at 64 random points (maxima and
        scale codes); :func:`check_levels` proves it for every point."""
        import numpy as np

        from refarith.fast.bitops import NumpyBitOps
        from refarith.fast.trace import evaluate
        from refarith.fast.xptrace import lane_block_op

        g = self.graph
        rng = np.random.default_rng(0)
        n = 64
        sc = rng.integers(0, SCALE_NAN, n)
        ms = (rng.integers(0, 1 << 10, (16, n)) << 21).astype(np.uint64)
        ops = NumpyBitOps(64)
        dws = sorted(self.dwords)
        rep = {w: k for k, w in enumerate(self.scale_words)}
        rep.update({self.sub[j]: len(rep) + j for j in range(16)})
        lg = self.substituted(rep, (g.outputs[1], g.outputs[2], *dws))
        zero = ops.word(np.zeros(n, np.uint64))
        words = [np.array([tables[w][int(c)] for c in sc], np.uint64) for w in self.scale_words]
        ins = [zero, zero, *(w.astype(bool) if g.nodes[k].mask else ops.word(w)
                             for k, w in zip(self.scale_words, words, strict=True)),
               *(ops.word(m ^ np.uint64(SIGN64)) for m in ms)]
        w8, w16, *dv = (np.asarray(v).reshape(-1).astype(np.int64) for v in evaluate(lg, ops, ins, lane_block_op))
        for b, v in zip(dws, dv, strict=True):
            js = [j for j in range(16) if np.array_equal(v, ((w16 >> (15 - j)) & 1) + ((w8 >> (7 - j // 2)) & 1))]
            if len(js) != 1:
                return Outcome(COUNTEREXAMPLE, {"block_word": b, "subgroups": js}, True, detail=f"graph {g.digest}")
            self.dwords[b] = js[0]
        return None

    def substituted(self, replaced: dict[int, int], outputs: tuple[int, ...]):
        """The graph with node i of ``replaced`` read from input ``replaced[i]`` (after x and the subgroup);
        ``outputs`` the node indices it computes."""
        from refarith.fast.trace import Node

        nodes = list(self.graph.nodes)
        for i, pos in replaced.items():
            nodes[i] = Node("input", (), 2 + pos, nodes[i].mask)
        k = len(set(replaced.values()))
        sg = replace(self.graph, nodes=tuple(nodes), outputs=outputs,
                     inputs=(*self.graph.inputs, *(f"cut{j}" for j in range(k))), input_levels=(0,) * (2 + k))
        if any(n.kind == "rmax" and on for n, on in zip(sg.nodes, sg.live(), strict=True)):
            from refarith.errors import BadValueError

            raise BadValueError(f"graph {self.graph.name!r}: a part reads a block maximum past the cut")
        return sg


def _scale_value(c: int) -> Fraction:
    return Fraction(4 + (c & 3), 4) * Fraction(2) ** ((c >> 2) - 48)


def _f32_code(v: Fraction, rounding: str) -> int:
    from refarith.exact.rounding import round_value
    from refarith.exact.value import Value

    return round_value(Value.of(v), "binary32", rounding, "inf").code


def _probes(scale_ties: str) -> dict[int, int]:
    """A unit maximum (binary32 pattern) per scale code: 7 S for every finite code (checked with the exact model),
    +inf for the NaN code."""
    from refarith.errors import BadValueError
    from refarith.exact import hif4 as eh

    out = {}
    for c in range(SCALE_NAN):
        m = _f32_code(7 * _scale_value(c), "rne")
        got = eh.scale_of(eh.bf16(Fraction(_f32_value(m)) * eh.C7), scale_ties)[0]
        if got != c:
            raise BadValueError(f"HiF4 scale probe: the unit maximum 7 S of scale code {c} gets code {got}")
        out[c] = m
    out[SCALE_NAN] = FINITE
    return out


def _f32_value(bits: int) -> Fraction:
    from refarith.formats import get_format

    return Fraction(get_format("binary32").finite_value(bits))


def _table(z3, key, table: dict[int, int], width: int, default):
    """``table[key]`` as a where-chain (``default`` for keys outside it)."""
    v = default
    for k, t in sorted(table.items()):
        v = z3.If(key == k, z3.BitVecVal(t, width), v)
    return v


def _of_code(z3, s, table: dict[int, int], width: int = 64):
    """A word table over the 256 scale codes as a Z3 term of the 8-bit code ``s``: a constant, or a[s & 3] +
    b (s >> 2) (modulo 2^width) where the finite codes' entries are of that form (the reciprocal's significand
    and exponent are), else a where-chain; the NaN code's entry apart."""
    mod = 1 << width
    fin = {c: t for c, t in table.items() if c != SCALE_NAN}
    b = (fin[4] - fin[0]) % mod
    a = [fin[k] for k in range(4)]
    if len(set(fin.values())) == 1:
        v = z3.BitVecVal(a[0], width)
    elif width >= 8 and all((a[c & 3] + b * (c >> 2) - t) % mod == 0 for c, t in fin.items()):
        e = z3.ZeroExt(width - 6, z3.Extract(7, 2, s))
        low = z3.Extract(1, 0, s)
        base = z3.If(low == 0, z3.BitVecVal(a[0], width), z3.If(low == 1, z3.BitVecVal(a[1], width), z3.If(
            low == 2, z3.BitVecVal(a[2], width), z3.BitVecVal(a[3], width))))
        v = base + z3.BitVecVal(b, width) * e
    else:
        v = _table(z3, s, fin, width, z3.BitVecVal(0, width))
    return z3.If(s == SCALE_NAN, z3.BitVecVal(table[SCALE_NAN], width), v) if SCALE_NAN in table else v


def _scale_tables(cut: _Cut, scale_ties: str) -> tuple[list[int], dict[int, dict[int, int]]]:
    """(the scale output's code at each probe, per scale word its value per scale code) read off the graph."""
    import numpy as np

    from refarith.fast.bitops import NumpyBitOps
    from refarith.fast.trace import evaluate
    from refarith.fast.xptrace import lane_block_op

    probes = _probes(scale_ties)
    g = cut.graph
    sg = cut.substituted({cut.unit: 0}, (g.outputs[0], *cut.scale_words))
    ops = NumpyBitOps(64)
    n = len(probes)
    ms = ops.word(np.array(list(probes.values()), np.uint64) ^ np.uint64(SIGN64))
    vals = evaluate(sg, ops, [ops.word(np.zeros(n, np.uint64)), ops.word(np.zeros(n, np.uint64)), ms],
                    lane_block_op)
    vals = [np.asarray(v).reshape(-1).astype(np.uint64) for v in vals]
    codes = [int(v) & 0xFF for v in vals[0]]
    return codes, {w: {c: int(v[k]) for k, c in enumerate(probes)} for w, v in zip(cut.scale_words, vals[1:],
                                                                                    strict=True)}


@lru_cache(maxsize=2)
def _scale_thresholds(scale_ties: str) -> tuple[int, ...]:
    """For each scale code c = 1..254, the least binary32 pattern M whose exact scale code
    scale_of(bf16(M * C7)) is at least c: by bisection, the rule being non-decreasing in M (a product by a
    positive constant, two roundings to nearest and a clamp, each non-decreasing)."""
    from refarith.exact import hif4 as eh

    def code(p: int) -> int:
        return eh.scale_of(eh.bf16(_f32_value(p) * eh.C7), scale_ties)[0]

    out, lo = [], 0
    for c in range(1, SCALE_NAN):
        a, b = lo, FINITE
        while a < b:
            mid = (a + b) // 2
            if code(mid) >= c:
                b = mid
            else:
                a = mid + 1
        out.append(a)
        lo = a
    return tuple(out)


def _spec_scale(z3, m, scale_ties: str):
    """The exact model's E6M2 code (8-bit) of a finite unit maximum pattern ``m`` (32-bit): the number of the
    thresholds of :func:`_scale_thresholds` that ``m`` reaches."""
    one, zero = z3.BitVecVal(1, 8), z3.BitVecVal(0, 8)
    code = zero
    for t in _scale_thresholds(scale_ties):
        code = code + z3.If(z3.UGE(m, t), one, zero)
    return code


def _setup(scale_ties: str, elem_ties: str):
    from refarith.fast.hif4 import hif4_quantize_graph

    g = hif4_quantize_graph(scale_ties, elem_ties)
    cut = _Cut(g)
    return g, cut, cut.roles()


def _tag(out: Outcome, g, what: str = "") -> Outcome:
    out.detail = (out.detail + " " if out.detail else "") + (f"({what}) " if what and out.verdict != PROVED
                                                             else "") + f"graph {g.digest}"
    return out


def check_scale(scale_ties: str = "even", elem_ties: str = "away", rule: str | None = None) -> Outcome:
    """The Maxima part and ``traced.hif4.<st>_<et>.scale`` of the module docstring (``rule``: state the scale
    rounding with those ties instead of the graph's ``scale_ties``; a counterexample is replayed through the
    exact model)."""
    import z3

    from refarith.fast.trace import evaluate
    from refarith.fast.xptrace import cone, lane_block_op
    from refarith.smt.bitops_z3 import Z3BitOps

    g, cut, bad = _setup(scale_ties, elem_ties)
    if bad is not None:
        return bad
    live0 = cone(g, 0).live()
    if [i for i in cut.rmax if live0[i]] != [cut.unit]:
        return _tag(Outcome(COUNTEREXAMPLE, {"scale_reads": "more than the unit maximum"}, True), g)
    codes, tables = _scale_tables(cut, scale_ties)
    if codes != list(range(SCALE_NAN + 1)):
        return _tag(Outcome(COUNTEREXAMPLE, {"graph_codes_at_probes": codes}, True), g, "scale probes")
    m = z3.BitVec("m", 32)
    sg = cut.substituted({cut.unit: 0}, (g.outputs[0], *cut.scale_words))
    zero = z3.BitVecVal(0, 64)
    s, *words = evaluate(sg, Z3BitOps(64), [zero, zero, z3.ZeroExt(32, m) ^ SIGN64], lane_block_op)
    s8 = z3.Extract(7, 0, s)
    rule = scale_ties if rule is None else rule
    want = z3.If(z3.UGE(m, FINITE), z3.BitVecVal(SCALE_NAN, 8), _spec_scale(z3, m, rule))
    free = _free_scale(z3, cut, tables, s8)
    words_ok = z3.And(*[v == free[w] for w, v in zip(cut.scale_words, words, strict=True)])

    def confirm(a: dict) -> tuple[dict, bool]:
        import numpy as np

        from refarith.exact import hif4 as eh
        from refarith.fast.bitops import NumpyBitOps

        bits = a["m"] & 0x7FFFFFFF
        ops = NumpyBitOps(64)
        z = ops.word(np.zeros(1, np.uint64))
        got, *_ = evaluate(sg, ops, [z, z, ops.word(np.array([bits | SIGN64], np.uint64))], lane_block_op)
        got = int(np.asarray(got).reshape(-1)[0]) & 0xFF
        exact = SCALE_NAN if bits >= FINITE else eh.scale_of(eh.bf16(_f32_value(bits) * eh.C7), rule)[0]
        return {"unit_max_bits": hex(bits), "graph_scale": hex(got), "exact_scale": hex(exact)}, got != exact

    pre = z3.ULT(m, 1 << 31)
    out = prove(z3.Implies(pre, z3.And(s == z3.ZeroExt(56, s8), s8 == want)), {"m": m}, 20, confirm)
    if out.verdict == PROVED:  # a second query: the scale words as functions of the scale code
        out = prove(z3.Implies(pre, words_ok), {"m": m}, 20)
        return _tag(out, g, "scale words")
    return _tag(out, g)


def _level_thresholds() -> tuple[dict[int, int], dict[int, int]]:
    """Per finite scale code: the least binary32 patterns of value at least 2 / R and 4 / R."""
    from refarith.exact import hif4 as eh

    t2, t4 = {}, {}
    for c in range(SCALE_NAN):
        r = eh.reciprocal(_scale_value(c))
        t2[c], t4[c] = _f32_code(2 / r, "rup"), _f32_code(4 / r, "rup")
    return t2, t4


def _free_scale(z3, cut: _Cut, tables, s):
    """The scale words as the tables of the free scale code ``s`` (Z3 terms; booleans for mask words)."""
    out = {}
    for w in cut.scale_words:
        t = tables[w]
        if cut.graph.nodes[w].mask:
            out[w] = _of_code(z3, s, {c: int(bool(v)) for c, v in t.items()}, 1) == 1
        else:
            out[w] = _of_code(z3, s, t)
    return out



def _setup_tables(scale_ties: str, elem_ties: str):
    """The cut graph, its scale codes and tables with the element-side block words named, or the failing Outcome
    as the last item."""
    g, cut, bad = _setup(scale_ties, elem_ties)
    if bad is not None:
        return g, cut, None, None, bad
    codes, tables = _scale_tables(cut, scale_ties)
    return g, cut, codes, tables, cut.name_dwords(tables)


def check_levels(scale_ties: str = "even", elem_ties: str = "away", groups: tuple[int, ...] = tuple(range(8)),
                 timeout_s: float = 20) -> Outcome:
    """The levels part of the module docstring, one Z3 query per level-2 group of ``groups`` (its bit of the
    level-2 byte, its two bits of the level-3 word and the two element-side block words of its subgroups), each
    within ``timeout_s``; the first query that does not prove is the outcome."""
    import z3

    from refarith.fast.trace import evaluate
    from refarith.fast.xptrace import lane_block_op
    from refarith.smt.bitops_z3 import Z3BitOps

    g, cut, codes, tables, bad = _setup_tables(scale_ties, elem_ties)
    if bad is not None:
        return bad
    s = z3.BitVec("s", 8)
    ms = [z3.BitVec(f"m{j}", 32) for j in range(16)]
    free = _free_scale(z3, cut, tables, s)
    rep = {w: k for k, w in enumerate(cut.scale_words)}
    rep.update({cut.sub[j]: len(rep) + j for j in range(16)})
    dws = sorted(cut.dwords)
    lg = cut.substituted(rep, (g.outputs[1], g.outputs[2], *dws))
    zero = z3.BitVecVal(0, 64)
    ins = [zero, zero, *(free[w] for w in cut.scale_words), *(z3.ZeroExt(32, m) ^ SIGN64 for m in ms)]
    w8, w16, *dv = evaluate(lg, Z3BitOps(64), ins, lane_block_op)
    t2, t4 = _level_thresholds()
    nan = s == SCALE_NAN
    zd = z3.BitVecVal(0, 2)
    T2, T4 = (_threshold_term(z3, s, zd, {(c, 0): v for c, v in t.items()}) for t in (t2, t4))

    def bit(w, i):
        return z3.Extract(i, i, w) == 1

    for k in groups:
        v8 = z3.If(z3.UGE(ms[2 * k], ms[2 * k + 1]), ms[2 * k], ms[2 * k + 1])
        d8 = z3.And(z3.Not(nan), z3.UGE(v8, T4))
        conds = [bit(w8, 7 - k) == d8]
        if k == 0:  # the bits above the byte and the word
            conds += [z3.Extract(63, 8, w8) == 0, z3.Extract(63, 16, w16) == 0]
        for j in (2 * k, 2 * k + 1):
            conds.append(bit(w16, 15 - j) == z3.And(z3.Not(nan), z3.UGE(ms[j], z3.If(d8, T4, T2))))
        for b, v in zip(dws, dv, strict=True):
            j = cut.dwords[b]
            if j // 2 == k:
                conds.append(v == (z3.LShR(w16, 15 - j) & 1) + (z3.LShR(w8, 7 - k) & 1))
        used = {"s": s, **{f"m{j}": ms[j] for j in (2 * k, 2 * k + 1)}}
        pre = z3.And(z3.Or(z3.ULT(s, SCALE_NAN), nan), *[z3.Or(nan, z3.ULT(ms[j], FINITE)) for j in range(16)])
        out = prove(z3.Implies(pre, z3.And(*conds)), {**used, **{f"m{j}": m for j, m in enumerate(ms)}}, timeout_s)
        if out.verdict != PROVED:
            return _tag(out, g, f"levels, group {k}")
    return _tag(Outcome(PROVED), g)


@lru_cache(maxsize=2)
def _elem_thresholds(elem_ties: str) -> dict[tuple[int, int], list[int]]:
    """Per (finite scale code, d in 0..2): for n = 1..7 the least binary32 pattern a with round(v(a) R 2^(2 - d))
    >= n (ties ``elem_ties``), each checked with the exact model's rounding at a and at a - 1."""
    from refarith.errors import BadValueError
    from refarith.exact import hif4 as eh

    out = {}
    for c in range(SCALE_NAN):
        r = eh.reciprocal(_scale_value(c))
        for d in range(3):
            f = r * Fraction(2) ** (2 - d)
            row = []
            for n in range(1, 8):
                t = (n - Fraction(1, 2)) / f
                a = _f32_code(t, "rup")
                if elem_ties == "even" and n % 2 == 1 and _f32_value(a) == t:  # the tie goes down to n - 1
                    a += 1
                if eh._round_int(_f32_value(a) * f, elem_ties) < n or (
                        a > 0 and eh._round_int(_f32_value(a - 1) * f, elem_ties) >= n):
                    raise BadValueError(f"HiF4 element threshold {n} at scale code {c}, d = {d}: {a:#x}")
                row.append(a)
            out[c, d] = row
    return out


def _threshold_term(z3, s, d, table: dict[tuple[int, int], int]):
    """A threshold table over (finite scale code, d) as a Z3 term (32-bit) of the 8-bit code ``s`` and the 2-bit
    ``d``: base[s & 3] + ((s >> 2) + d) 2^23 when every entry is of that form (R's exponent and d only move the
    threshold's binary32 exponent field; checked entry by entry), else a where-chain."""
    base = [table[k, 0] for k in range(4)]
    if all(t == base[c & 3] + (((c >> 2) + dd) << 23) for (c, dd), t in table.items()):
        low = z3.Extract(1, 0, s)
        b = z3.If(low == 0, z3.BitVecVal(base[0], 32), z3.If(low == 1, z3.BitVecVal(base[1], 32), z3.If(
            low == 2, z3.BitVecVal(base[2], 32), z3.BitVecVal(base[3], 32))))
        return b + ((z3.ZeroExt(26, z3.Extract(7, 2, s)) + z3.ZeroExt(30, d)) << 23)
    return _table(z3, z3.Concat(s, d), {(c << 2) | dd: t for (c, dd), t in table.items()}, 32, z3.BitVecVal(0, 32))


def check_elements(scale_ties: str = "even", elem_ties: str = "away", rule: str | None = None) -> Outcome:
    """``traced.hif4.<st>_<et>.elem`` of the module docstring (``rule``: state the element rounding with those
    ties instead of the graph's ``elem_ties``; a counterexample is then replayed through the exact model's
    element rounding)."""
    import numpy as np
    import z3

    from refarith.exact import hif4 as eh
    from refarith.fast.bitops import NumpyBitOps
    from refarith.fast.trace import evaluate
    from refarith.fast.xptrace import lane_block_op
    from refarith.smt.bitops_z3 import Z3BitOps

    rule = elem_ties if rule is None else rule
    g, cut, codes, tables, bad = _setup_tables(scale_ties, elem_ties)
    if bad is not None:
        return bad
    bw = sorted({n.args[0] for i, n in enumerate(g.nodes) if n.kind == "bcast" and g.live()[i]})
    if set(bw) - set(cut.dwords) - set(cut.scale_words):
        return _tag(Outcome(COUNTEREXAMPLE, {"unknown_block_words": str(set(bw) - set(cut.dwords))}, True), g)
    x, sub, s = z3.BitVec("x", 32), z3.BitVec("sub", 32), z3.BitVec("s", 8)
    ds = [z3.BitVec(f"d{j}", 2) for j in range(16)]
    free = _free_scale(z3, cut, tables, s)
    bcasts = {i: n.args[0] for i, n in enumerate(g.nodes) if n.kind == "bcast" and g.live()[i]}
    order = sorted(set(bcasts.values()))
    eg = cut.substituted({i: order.index(b) for i, b in bcasts.items()}, (g.outputs[3],))

    def word(b, dvals):
        return free[b] if b in free else z3.ZeroExt(62, dvals[cut.dwords[b]])

    (c,) = evaluate(eg, Z3BitOps(64), [z3.ZeroExt(32, x), z3.ZeroExt(32, sub), *(word(b, ds) for b in order)],
                    lane_block_op)
    code = z3.Extract(7, 0, c)
    d = ds[15]
    for j in range(14, -1, -1):
        d = z3.If(sub == j, ds[j], d)
    thr = _elem_thresholds(rule)
    mag = x & 0x7FFFFFFF
    q = z3.BitVecVal(0, 8)
    for n in range(7):
        tn = _threshold_term(z3, s, d, {k: row[n] for k, row in thr.items()})
        q = q + z3.If(z3.UGE(mag, tn), z3.BitVecVal(1, 8), z3.BitVecVal(0, 8))
    neg = z3.And(z3.Extract(31, 31, x) == 1, mag != 0)
    want = z3.If(s == SCALE_NAN, z3.BitVecVal(0, 8), q | z3.If(neg, z3.BitVecVal(8, 8), z3.BitVecVal(0, 8)))
    pre = z3.And(z3.ULT(sub, 16), z3.Or(s == SCALE_NAN, z3.And(z3.ULT(s, SCALE_NAN), z3.ULT(mag, FINITE))),
                 *[z3.ULE(dj, 2) for dj in ds])

    def confirm(a: dict) -> tuple[dict, bool]:
        ops = NumpyBitOps(64)
        sc, j = a["s"], a["sub"]
        dv = [a.get(f"d{i}", 0) for i in range(16)]
        ws = []
        for b in order:
            v = tables[b][sc] if b in tables else dv[cut.dwords[b]]
            ws.append(np.array([bool(v)]) if g.nodes[b].mask else ops.word(np.array([v], np.uint64)))
        (got,) = evaluate(eg, ops, [ops.word(np.array([a["x"]], np.uint64)), ops.word(np.array([j], np.uint64)),
                                    *ws], lane_block_op)
        got = int(np.asarray(got).reshape(-1)[0]) & 0xFF
        if sc == SCALE_NAN:
            exact = 0
        else:
            f = eh.reciprocal(_scale_value(sc)) * Fraction(2) ** (2 - dv[j])
            qx = min(7, eh._round_int(_f32_value(a["x"] & 0x7FFFFFFF) * f, rule))
            exact = qx | (8 if a["x"] >> 31 and a["x"] & 0x7FFFFFFF else 0)
        return {"x_bits": hex(a["x"]), "scale_code": hex(sc), "d": dv[j], "graph_code": hex(got),
                "exact_code": hex(exact)}, got != exact

    variables = {"x": x, "sub": sub, "s": s, **{f"d{j}": dj for j, dj in enumerate(ds)}}
    return _tag(prove(z3.Implies(pre, code == want), variables, 25, confirm), g)


REGISTERED = (("even", "away", ("scale", "elem")), ("away", "even", ("elem",)))
"""The (scale_ties, elem_ties, parts) registered: about 10 s of Z3 in all.  The levels part (8 queries of about
3 s per graph) and the scale part of the (away, even) graph run in a slow test
(``tests/test_traced_hif4_theorems.py``), not in the default ``refarith prove``."""
_CHECKS = {"scale": check_scale, "levels": check_levels, "elem": check_elements}
_STATEMENTS = {
    "scale": "the E6M2 scale output of the traced {spec} graph (the emitted Triton kernel's) is e6m2(clamp(bf16(Vmax "
             "* bf16(1/7)), 2^-48, 49152)) with ties {st} (the exact model's thresholds) of the unit maximum Vmax, "
             "0xFF for a unit holding a NaN or an infinity; its scale words are functions of the scale code",
    "elem": "the S1P2 element codes of the traced {spec} graph are sign | min(7, round_{et}(|x| R 2^(2-d))) for "
            "every finite x, every scale code (R = bf16(1/S)) and every level exponent d in 0..2 of the lane's "
            "subgroup (0 in a NaN-scaled unit)",
}
for _st, _et, _parts in REGISTERED:
    for _p in _parts:
        theorem(f"traced.hif4.{_st}_{_et}.{_p}",
                _STATEMENTS[_p].format(spec=f"hif4_quantize(scale_ties={_st},elem_ties={_et})", st=_st, et=_et),
                budget=30, tags=("hif4", "blocks", "triton"))(lambda _s=_st, _e=_et, _f=_CHECKS[_p]: _f(_s, _e))


@theorem("traced.hif4.elem_even_graph_is_not_away",
         "the away element statement checked on the traced hif4_quantize(scale_ties=away,elem_ties=even) graph: a "
         "counterexample (an element tie), replayed through the exact model's element rounding",
         expect=COUNTEREXAMPLE, budget=30, tags=("hif4", "blocks", "triton"))
def _even_is_not_away() -> Outcome:
    return check_elements("away", "even", "away")


__all__ = ["GRAPHS", "REGISTERED", "check_elements", "check_levels", "check_scale"]
