"""NVFP4 training recipe: 16x16 weight tiles commute with transposition, 1x16 blocks do not.

quantize(W) of an R x C matrix of binary32 values is the per-tensor scale, the grid of UE4M3 tile scales (tile
(I, J) at row I, column J) and the R x C matrix of E2M1 codes (padding dropped); quantize(W)^T transposes the
grid and the codes and keeps the tensor scale.  The recipe (arXiv 2509.25149, §4) quantizes weights in 16x16 tiles
so that the quantized W^T of the backward GEMM is the transpose of the quantized W of the forward GEMM.

* ``nvfp4_recipe.transpose_16x16`` (proved): quantize(W^T) = quantize(W)^T with 16x16 tiles, for every W, where
  quantize is the kernel the Triton backend emits and the torch backend runs on each chunk: the traced block graph
  :func:`refarith.fast.triton_blocks.nvfp4_quantize_graph` of every deterministic variant (2 divisions x 3
  ``zero_scale`` x 5 tensor-scale modes x 6 roundings = 180 graphs), fed by the host layout functions ``_blocks``
  / ``_unblocks`` / ``_scale_shape`` of :mod:`refarith.fast.nvfp4` and the tensor statistic
  :func:`refarith.fast.triton_blocks.finite_amax_bits`.  The proof has three parts, the route of
  :mod:`refarith.smt.theorems.tracedblocks` for the MX scale:

  1. Structure, checked on each graph (:func:`block_structure`, by the node levels of
     :func:`refarith.fast.xptrace.node_levels`): one element input x; block inputs only the per-tensor word t
     (``at``, the tensor's largest finite magnitude, or a given s_t or g), the same for every block; exactly one
     live ``rmax`` node, whose operand w reads x only (no block word, no reduction, no broadcast), so w(x_l) is a
     word of each element alone.  A block-level node reads block-level nodes and constants only, except ``rmax``
     (``node_levels`` rejects every other mix), so the scale output and the s_t output are F(max_l w(x_l), t) for
     one function F.  An element-level node reads element-level nodes, constants and broadcasts of block values,
     and element operations act lane by lane, so the code of lane l is H(x_l, max_l w(x_l), t): an element's
     code depends only on the element, the tile's maximum word and the tensor word.
  2. Z3 (:func:`max_laws`, :func:`w_monotone`): ``rmax`` is the unsigned maximum of words over the block (the
     emitted kernel: ``tl.reduce`` by the unsigned maximum, masked lanes read as 0).  Its binary form
     m(a, b) = (b if a <u b else a) is commutative, associative and idempotent with identity 0 at the graph's word
     width.  For a commutative, associative operation every reduction tree over a finite multiset gives the same
     value: by associativity every bracketing of a sequence equals its left fold, and by commutativity
     swapping two neighbours does not change a left fold, and neighbour swaps generate every permutation; the
     identity makes masked lanes harmless.  So max_l w(x_l) is a function of the multiset {x_l} of the tile.
     Z3 also proves w monotone in |x| (magnitude bits |x| <u |y| give w(x) <u w(y), equal ones equal words): the
     maximum is the word of a largest magnitude, the amax the scale is defined by (not needed for transposition).
     The tensor word is the host's torch integer maximum over the finite magnitudes of the padded tensor, again
     a maximum over a multiset, the same for W and W^T (outside the graph, as the hand-emitted reduction is).
  3. Layout (:func:`layout_mismatch`, exhaustive over every shape R, C in 1..34, every remainder mod 16 with one
     to three tiles per axis; the functions are reshapes and permutations whose index arithmetic is linear in
     the tile counts), with numpy and with torch arrays: ``_unblocks`` undoes ``_blocks``; for every element e
     of W, the tile holding e in the blocks of W^T holds the same multiset (elements and padding zeros) as the
     tile holding e in the blocks of W; and the scale grid of W^T is the transpose of W's, tile by tile.

  With 1 and 2, code(W^T)[j][i] = H(e, max w, t) = code(W)[i][j] for e = W[i][j], and the tile scales and the
  tensor scale agree.  The numpy backend (``_quantize_numpy``, the same operations staged over the whole array)
  and the exact model are outside the proof: they agree with the graph on the golden files, and the check also
  runs the full statement through the exact model on the hand-built matrices for six variants, and through
  six of the graphs on three seeded random matrices.
* ``nvfp4_recipe.transpose_1x16`` (counterexample expected): with 1x16 blocks part 3 fails; the smallest shape
  where it does, 1 x 2, gives the pair p = (0, 0), q = (0, 1): the block of W holding W[p] holds W[q], the block
  of W^T holding W[p] does not.  The witness puts 64 at q and 1 elsewhere, so W[p] is scaled by a block amax of
  64 in W and of 1 in W^T; it is replayed through the exact model (the confirmation) and through the graph.
"""

from __future__ import annotations

import hashlib
import random
import struct
from dataclasses import replace

import numpy as np

from refarith.exact import nvfp4 as nv
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, Outcome, prove, theorem

VARIANTS = (
    {"division": "reciprocal", "levels": 2, "zero_scale": "eps"},
    {"division": "divide", "levels": 2, "zero_scale": "zero"},
    {"division": "reciprocal", "levels": 1, "zero_scale": "eps"},
    {"division": "divide", "levels": 1, "zero_scale": "eighth"},
    {"division": "divide", "levels": 2, "zero_scale": "eighth", "global_scale": "reciprocal"},
    {"division": "reciprocal", "levels": 2, "zero_scale": "eps", "rounding": "rtz"},
)


def quantize_matrix(w: list[list[int]], tile: str, **kw) -> tuple[int | None, list[list[int]], list[list[int]]]:
    """Quantize an R x C matrix of binary32 bit patterns with the exact model: (tensor scale bits or None, grid of
    UE4M3 block scales, R x C E2M1 codes).  Grid: R x ceil(C/16) for ``1x16``, ceil(R/16) x ceil(C/16) for
    ``16x16`` (row-major block order, as :func:`refarith.exact.nvfp4.tiles`); padding codes are dropped."""
    rows, cols = len(w), len(w[0]) if w else 0
    q = nv.quantize_blocks(nv.tiles(w, tile), **kw)
    nb = -(-cols // 16)
    codes = [[0] * cols for _ in range(rows)]
    if tile == "1x16":
        grid = [list(q.scales[i * nb:(i + 1) * nb]) for i in range(rows)]
        for i in range(rows):
            for b in range(nb):
                for k, c in enumerate(q.codes[i * nb + b]):
                    codes[i][b * 16 + k] = c
        return q.tensor_scale, grid, codes
    nr = -(-rows // 16)
    grid = [list(q.scales[i * nb:(i + 1) * nb]) for i in range(nr)]
    for bi in range(nr):
        for bj in range(nb):
            blk = q.codes[bi * nb + bj]
            for a in range(16):
                for b in range(16):
                    i, j = bi * 16 + a, bj * 16 + b
                    if i < rows and j < cols:
                        codes[i][j] = blk[a * 16 + b]
    return q.tensor_scale, grid, codes


def _t(m: list[list[int]]) -> list[list[int]]:
    return [list(r) for r in zip(*m)] if m and m[0] else []


def transpose_mismatch(w: list[list[int]], tile: str, **kw) -> dict | None:
    """None when quantize(W^T) = quantize(W)^T (tensor scale, codes, scale grid); else where they first differ."""
    st, grid, codes = quantize_matrix(w, tile, **kw)
    st_t, grid_t, codes_t = quantize_matrix(_t(w), tile, **kw)
    if st != st_t:
        return {"part": "tensor_scale", "W": st, "W^T": st_t}
    for i, (ra, rb) in enumerate(zip(codes_t, _t(codes))):
        for j, (a, b) in enumerate(zip(ra, rb)):
            if a != b:
                return {"part": "codes", "i": i, "j": j, "quantize(W^T)": a, "quantize(W)^T": b}
    if grid_t != _t(grid):
        return {"part": "scales", "quantize(W^T)": grid_t, "quantize(W)^T": _t(grid)}
    return None


def _f(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def hand_built() -> list[list[list[int]]]:
    """Hand-built matrices: an outlier per tile, zeros, NaN and infinity, a 20 x 36 shape (padded tiles)."""
    one, big = _f(1.0), _f(64.0)
    a = [[one] * 16 for _ in range(16)]
    a[0][1] = big
    b = [[_f((i * 16 + j - 100) / 7.0) for j in range(32)] for i in range(16)]
    b[3][20] = _f(float("nan"))
    b[12][2] = _f(float("-inf"))
    c = [[_f(0.0)] * 16 for _ in range(16)]
    c[5][9] = _f(-1e-30)
    d = [[_f(((i * 37 + j * 11) % 23 - 11) * 0.3125 * (2.0 ** ((i + j) % 9 - 4))) for j in range(36)]
         for i in range(20)]
    return [a, b, c, d]


def random_matrices(n: int, seed: int = 19) -> list[list[list[int]]]:
    """Seeded random matrices (shapes 16x16 to 32x32) of binary32 values of spread magnitude, with zeros."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        r, c = rng.choice((16, 32)), rng.choice((16, 32))
        m = [[_f(rng.choice((0.0, rng.gauss(0, 1) * 2.0 ** rng.randint(-20, 20)))) for _ in range(c)]
             for _ in range(r)]
        out.append(m)
    return out


# ------------------------------------------------------------------ the structural proof (module docstring)
TENSOR_MODES = (("amax", "decode"), ("amax", "reciprocal"), ("given", "decode"), ("given", "reciprocal"),
                ("none", "decode"))
"""(st_mode, global_scale) of the graphs: the per-tensor word computed from the tensor amax or given, s_t or g,
or one level."""

LAYOUT_SHAPES = tuple((r, c) for r in range(1, 35) for c in range(1, 35))


def graph_variants() -> list[tuple[str, str, str, str, str]]:
    """(division, st_mode, zero_scale, rounding, global_scale) of every deterministic NVFP4 block graph."""
    return [(d, st, z, r, g) for d in nv.DIVISIONS for z in nv.ZERO_SCALES for st, g in TENSOR_MODES
            for r in nv.ROUNDINGS]


def block_structure(graph):
    """The graph of the operand w of the one ``rmax`` node of a block graph, after checking part 1 of the module
    docstring (BadValueError naming what fails): one element input, at most the per-tensor word as a block input
    (the host passes the same word to every block), one live ``rmax`` whose operand reads the element input only,
    outputs (block scale, element codes[, block word])."""
    from refarith.errors import BadValueError
    from refarith.fast.xptrace import node_levels

    levels = node_levels(graph)  # raises if a node mixes element and block words
    ins = graph.input_levels
    live = graph.live()
    rmax = [i for i, n in enumerate(graph.nodes) if live[i] and n.kind == "rmax"]
    if ins.count(0) != 1 or len(rmax) != 1:
        raise BadValueError(f"graph {graph.name!r}: {ins.count(0)} element inputs and {len(rmax)} block maxima; "
                            f"the transpose argument needs one of each")
    blocks = [name for name, lv in zip(graph.inputs, ins) if lv == 1]
    if blocks not in ([], ["at"], ["st"]):
        raise BadValueError(f"graph {graph.name!r}: block inputs {blocks}; the transpose argument takes at most the "
                            f"per-tensor word (at or st)")
    want = (1, 0) + (1,) * (len(graph.outputs) - 2)
    if tuple(levels[o] for o in graph.outputs) != want:
        raise BadValueError(f"graph {graph.name!r}: output levels {[levels[o] for o in graph.outputs]}, expected "
                            f"{list(want)} (scale per block, codes per element)")
    w = replace(graph, outputs=(graph.nodes[rmax[0]].args[0],))
    keep = w.live()
    for i, (n, k) in enumerate(zip(w.nodes, keep)):
        if k and (n.kind in ("rmax", "bcast") or (n.kind == "input" and ins[n.imm] != 0)):
            raise BadValueError(f"graph {graph.name!r}: the block maximum's operand reads node {i} ({n.kind}), not "
                                f"the element alone")
    new = {}  # the live nodes only, renumbered: equal operands of different graphs get one digest
    nodes = []
    for i, (n, k) in enumerate(zip(w.nodes, keep)):
        if k:
            new[i] = len(nodes)
            nodes.append(replace(n, args=tuple(new[a] for a in n.args)))
    return replace(w, nodes=tuple(nodes), outputs=(new[w.outputs[0]],), name=f"block maximum operand of {w.name}")


def max_laws(width: int) -> Outcome:
    """Z3: the unsigned maximum of ``width``-bit words is commutative, associative, idempotent, with identity 0."""
    import z3

    a, b, c = (z3.BitVec(v, width) for v in "abc")

    def m(u, v):
        return z3.If(z3.ULT(u, v), v, u)

    laws = z3.And(m(a, b) == m(b, a), m(m(a, b), c) == m(a, m(b, c)), m(a, a) == a, m(a, 0) == a)
    return prove(laws, {"a": a, "b": b, "c": c}, 20)


def w_monotone(w) -> Outcome:
    """Z3: the block maximum's operand w (a one-output graph reading the element x only) is monotone in |x|:
    x & 0x7FFFFFFF <u y & 0x7FFFFFFF gives w(x) <u w(y), equal magnitudes equal words."""
    import z3

    from refarith.fast.trace import evaluate
    from refarith.fast.xptrace import lane_block_op
    from refarith.smt.bitops_z3 import Z3BitOps

    x, y = z3.BitVec("x", 32), z3.BitVec("y", 32)
    ops = Z3BitOps(w.width)

    def word(v):  # memory holds a 32-bit input zero-extended into the word; other inputs are never read
        v = v if w.width == 32 else z3.ZeroExt(w.width - 32, v)
        return [v if lv == 0 else z3.BitVecVal(0, w.width) for lv in w.input_levels]

    (wx,) = evaluate(w, ops, word(x), lane_block_op)
    (wy,) = evaluate(w, ops, word(y), lane_block_op)
    ax, ay = x & 0x7FFFFFFF, y & 0x7FFFFFFF
    return prove(z3.And(z3.Implies(z3.ULT(ax, ay), z3.ULT(wx, wy)), z3.Implies(ax == ay, wx == wy)),
                 {"x": x, "y": y}, 20)


def _block_keys(m: np.ndarray, tile: str, backend: str, ids: dict):
    """For an index matrix ``m`` (1.. distinct, int64): (the layout round trip of ``m``, per element the id of
    the multiset its block holds, the grid of block ids), computed with the backend's layout functions."""
    from refarith.fast import nvfp4 as fnv
    from refarith.fast.mx import ops

    xp = ops(backend)
    a = m
    if backend == "torch":
        import torch

        a = torch.from_numpy(np.ascontiguousarray(m))
    blocks, shape = fnv._blocks(a, tile, xp, keep_dtype=True)
    b = np.asarray(blocks)
    key = np.array([ids.setdefault(tuple(sorted(row.tolist())), len(ids)) for row in b.reshape(-1, b.shape[-1])],
                   dtype=np.int64).reshape(b.shape[:2])
    spread = np.broadcast_to(key[..., None], b.shape).copy()
    if backend == "torch":
        back = fnv._unblocks(blocks, shape, tile, xp).numpy()
        per = fnv._unblocks(torch.from_numpy(spread), shape, tile, xp).numpy()
        grid = fnv._scale_shape(torch.from_numpy(key), shape, tile).numpy()
    else:
        back, per = fnv._unblocks(blocks, shape, tile, xp), fnv._unblocks(spread, shape, tile, xp)
        grid = fnv._scale_shape(key, shape, tile)
    return back, per, grid


def layout_mismatch(tile: str, shapes=LAYOUT_SHAPES, backends=("numpy", "torch")) -> dict | None:
    """Part 3 of the module docstring: None when, for every shape and backend, the layout round trip is exact,
    every element's block in W^T holds the multiset of its block in W and the block grid of W^T is the transpose
    of W's; else the first failure, with for an element p a position q in its block of W that its block of W^T
    lacks."""
    for backend in backends:
        for r, c in shapes:
            m = np.arange(1, r * c + 1, dtype=np.int64).reshape(r, c)
            ids: dict = {}
            back, per, grid = _block_keys(m, tile, backend, ids)
            back_t, per_t, grid_t = _block_keys(np.ascontiguousarray(m.T), tile, backend, ids)
            where = {"tile": tile, "backend": backend, "shape": (r, c)}
            if not (np.array_equal(back, m) and np.array_equal(back_t, m.T)):
                return {**where, "part": "round trip"}
            bad = np.argwhere(per_t.T != per)
            if bad.size:
                i, j = map(int, bad[0])
                blk = {k: set(v) for v, k in ids.items()}
                q = min(blk[int(per[i, j])] - blk[int(per_t[j, i])] - {0})
                return {**where, "part": "block multiset", "p": (i, j), "q": divmod(q - 1, c)}
            if grid_t.shape != grid.T.shape or not np.array_equal(grid_t, grid.T):
                return {**where, "part": "scale grid"}
    return None


def graph_quantize(w: list[list[int]], tile: str, variant: tuple[str, str, str, str, str]):
    """(tensor word, scale grid, codes) of an R x C matrix of binary32 bit patterns by the traced graph of
    ``variant`` (:func:`graph_variants`; ``given`` modes take s_t = 1.0) evaluated on numpy words, with the host
    layout and tensor amax of the Triton backend."""
    from refarith.fast import nvfp4 as fnv
    from refarith.fast.bitops import NumpyBitOps
    from refarith.fast.mx import ops
    from refarith.fast.trace import evaluate
    from refarith.fast.triton_blocks import nvfp4_quantize_graph

    division, st_mode, zero_scale, rounding, global_scale = variant
    g = nvfp4_quantize_graph(division, st_mode, zero_scale, rounding, global_scale)
    x = np.array(w, dtype=np.uint32).view(np.float32)
    blocks, shape = fnv._blocks(x, tile, ops("numpy"))
    bits = blocks.view(np.uint32).reshape(-1, blocks.shape[-1])
    mag = bits & 0x7FFFFFFF
    at = np.where(mag >= 0x7F800000, 0, mag).max()
    word = at if st_mode == "amax" else nv.F32_ONE
    o = NumpyBitOps(g.width)
    ins = [o.word(bits.astype(np.uint64))] + ([] if st_mode == "none" else
                                              [o.word(np.full(bits.shape[0], word, dtype=np.uint64))])
    out = evaluate(g, o, ins)
    s = (np.asarray(out[0]) & 0xFF).reshape(blocks.shape[:2])
    c = (np.asarray(out[1]) & 0xFF).reshape(blocks.shape)
    st = int(np.asarray(out[2]).reshape(-1)[0]) & 0xFFFFFFFF if len(out) > 2 else None
    return st, fnv._scale_shape(s, shape, tile).tolist(), fnv._unblocks(c, shape, tile, ops("numpy")).tolist()


@theorem("nvfp4_recipe.transpose_16x16",
         "NVFP4 with 16x16 tiles: quantize(W^T) = quantize(W)^T (element codes, tile scales, tensor scale) for every "
         "W, quantize being the traced block graph of the Triton backend of every deterministic variant (180 "
         "graphs): structure of each graph (the tile scale reads the elements only through one maximum of a word "
         "of each element; a code reads its element, that maximum and the tensor word), Z3 for the laws of the "
         "maximum and the monotone word, the host layout exhaustively over every shape up to 34 x 34",
         budget=60, tags=("nvfp4", "recipe", "transpose", "triton"))
def _transpose_16x16() -> Outcome:
    from refarith.fast.triton_blocks import nvfp4_quantize_graph

    seen, widths, digests = {}, set(), []
    for v in graph_variants():
        g = nvfp4_quantize_graph(*v)
        w = block_structure(g)
        widths.add(g.width)
        digests.append(g.digest)
        if w.digest not in seen:
            seen[w.digest] = out = w_monotone(w)
            if out.verdict != PROVED:
                out.detail = f"(block maximum operand not monotone) graph {g.name} {g.digest} {out.detail}"
                return out
    for width in sorted(widths):
        out = max_laws(width)
        if out.verdict != PROVED:
            out.detail = f"(unsigned maximum of {width}-bit words) {out.detail}"
            return out
    bad = layout_mismatch("16x16")
    if bad is not None:
        return Outcome(COUNTEREXAMPLE, bad, True, detail="the 16x16 host layout does not transpose",
                       method="enumeration")
    ms = hand_built()
    for kw in VARIANTS:
        for k, w in enumerate(ms):
            bad = transpose_mismatch(w, "16x16", **kw)
            if bad is not None:
                return Outcome(COUNTEREXAMPLE, {"variant": kw, "matrix": k, **bad}, True, method="enumeration")
    variants = graph_variants()[::30]
    for k, w in enumerate(random_matrices(3)):
        for v in variants:
            st, grid, codes = graph_quantize(w, "16x16", v)
            st_t, grid_t, codes_t = graph_quantize(_t(w), "16x16", v)
            if (st, grid, codes) != (st_t, _t(grid_t), _t(codes_t)):
                return Outcome(COUNTEREXAMPLE, {"graph": v, "random matrix": k}, True, method="enumeration")
    combined = hashlib.sha256("".join(digests).encode()).hexdigest()[:16]
    return Outcome(PROVED, detail=f"{len(digests)} graphs (SHA-256 of their digests {combined}): one block maximum "
                                  f"of {len(seen)} distinct word(s) w, each monotone in |x| (Z3); unsigned maximum "
                                  f"of {sorted(widths)}-bit words commutative, associative, idempotent, identity 0 "
                                  f"(Z3); layout of {len(LAYOUT_SHAPES)} shapes x numpy, torch; exact model "
                                  f"cross-check: {len(ms)} matrices x {len(VARIANTS)} variants; graph cross-check: "
                                  f"3 random matrices x {len(variants)} graphs")


@theorem("nvfp4_recipe.transpose_1x16",
         "NVFP4 with 1x16 blocks: quantize(W^T) = quantize(W)^T (expected false: the layout check finds a pair of "
         "elements that share a block in W and not in W^T; the witness with 64 at one and 1 elsewhere is "
         "confirmed by the exact model and replayed through the graph)",
         expect=COUNTEREXAMPLE, budget=30, tags=("nvfp4", "recipe", "transpose", "triton"))
def _transpose_1x16() -> Outcome:
    lay = layout_mismatch("1x16")
    if lay is None or lay["part"] != "block multiset":
        return Outcome(PROVED, detail=f"the 1x16 layout transposes ({lay})", method="enumeration")
    (r, c), q = lay["shape"], lay["q"]
    w = [[_f(1.0)] * c for _ in range(r)]
    w[q[0]][q[1]] = _f(64.0)
    bad = transpose_mismatch(w, "1x16")
    if bad is None:
        return Outcome(PROVED, detail=f"the witness {r}x{c} with W[{q[0]}][{q[1]}] = 64 transposes exactly in the "
                                      "exact model",
                       method="enumeration")
    v = ("reciprocal", "amax", "eps", "rne", "decode")
    st, grid, codes = graph_quantize(w, "1x16", v)
    st_t, grid_t, codes_t = graph_quantize(_t(w), "1x16", v)
    graph = {"graph_codes(W^T)": codes_t, "graph_codes(W)^T": _t(codes), "graph_differs": codes_t != _t(codes)}
    return Outcome(COUNTEREXAMPLE, {"W": f"{r}x{c}, W[{q[0]}][{q[1]}] = 64.0, other entries 1.0", "p": lay["p"],
                                    "q": q, **bad, **graph}, True, method="enumeration")
