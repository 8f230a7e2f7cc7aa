"""NVFP4 training recipe: 16x16 weight tiles commute with transposition, 1x16 blocks do not."""

import random
import struct

import numpy as np
import pytest

from refarith.exact import nvfp4 as nv
from refarith.fast import nvfp4 as fnv
from refarith.smt.theorems import nvfp4_recipe as rec


def _f(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def _run_theorem(name):
    from refarith.smt.registry import load_all, run_one

    res = run_one(load_all()[name])
    assert res.ok, (res.verdict, res.expect, res.counterexample, res.confirmed, res.detail)
    return res


@pytest.mark.proof
def test_theorem_transpose_1x16_counterexample():
    res = _run_theorem("nvfp4_recipe.transpose_1x16")
    # hand derivation (levels=2, reciprocal, eps), W = [[1, 64]]: s_t = fl(64/2688) = 1/42; in W the one block has
    # amax 64, so b' = fl(fl(64/6) * 42) = 448, S = 448 and W[0][0] = 1 gives y = 42/448 = 0.09375 -> E2M1 0
    # (code 0); in W^T = [[1], [64]] the element 1 has a block of its own: b' = fl(fl(1/6) * 42) = 7, S = 7,
    # y = 42/7 = 6 -> code 7
    cx = res.counterexample
    assert (cx["part"], cx["i"], cx["j"], cx["quantize(W^T)"], cx["quantize(W)^T"]) == ("codes", 0, 0, 7, 0)
    assert (cx["p"], cx["q"]) == ((0, 0), (0, 1)) and cx["graph_differs"]
    assert cx["graph_codes(W^T)"] == [[7], [7]] and cx["graph_codes(W)^T"] == [[0], [7]]


@pytest.mark.proof
@pytest.mark.slow
def test_theorem_transpose_16x16():
    res = _run_theorem("nvfp4_recipe.transpose_16x16")
    assert res.detail.startswith("180 graphs")


def test_layout_16x16_transposes_and_1x16_does_not():
    """Part 3 on a few shapes (the theorem runs every shape up to 34 x 34): 16x16 tiles map each element's tile
    to a tile with the same multiset; 1x16 blocks already fail at 1 x 2."""
    shapes = ((16, 16), (17, 33), (5, 40))
    assert rec.layout_mismatch("16x16", shapes, ("numpy",)) is None
    bad = rec.layout_mismatch("1x16", ((1, 1), (1, 2)), ("numpy",))
    assert (bad["shape"], bad["part"], bad["p"], bad["q"]) == ((1, 2), "block multiset", (0, 0), (0, 1))


def test_layout_check_can_fail(monkeypatch):
    """A layout whose unblocking misplaces one element is reported as a broken round trip."""
    from refarith.fast import nvfp4 as fnv

    real = fnv._unblocks

    def swapped(c, shape, tile, xp):
        out = np.array(real(c, shape, tile, xp))
        out[0, [0, 1]] = out[0, [1, 0]]
        return out

    monkeypatch.setattr(fnv, "_unblocks", swapped)
    bad = rec.layout_mismatch("16x16", ((2, 3),), ("numpy",))
    assert bad is not None and bad["part"] == "round trip"


def test_block_structure_of_the_nvfp4_graph():
    from refarith.fast.triton_blocks import nvfp4_quantize_graph

    g = nvfp4_quantize_graph("divide", "amax", "zero", "rtz", "decode")
    w = rec.block_structure(g)
    assert len(w.outputs) == 1 and all(n.kind not in ("rmax", "bcast") for n in w.nodes)
    assert rec.w_monotone(w).verdict == "proved"
    assert rec.max_laws(g.width).verdict == "proved"


def test_block_structure_rejects_other_reductions():
    """Part 1 can fail: two block maxima, a maximum of a word that reads a block value, a block input other than
    the per-tensor word."""
    from refarith.errors import BadValueError
    from refarith.fast.xptrace import trace_xp

    two = trace_xp(lambda xp, b: (xp.amax(b & 0x7FFFFFFF, -1) + xp.amax(b, -1), b), [("x", 0, 32)], "two")
    with pytest.raises(BadValueError, match="2 block maxima"):
        rec.block_structure(two)
    mixed = trace_xp(lambda xp, b, t: (xp.amax(b + t[..., None], -1), b), [("x", 0, 32), ("at", 1, 32)], "mixed")
    with pytest.raises(BadValueError, match="not the element alone"):
        rec.block_structure(mixed)
    other = trace_xp(lambda xp, b, t: (xp.amax(b, -1) + t, b), [("x", 0, 32), ("group", 1, 32)], "other")
    with pytest.raises(BadValueError, match="block inputs"):
        rec.block_structure(other)


def test_w_monotone_can_fail():
    """The signed maximum of the raw bits is not monotone in |x| (negative values): a counterexample."""
    from refarith.fast.xptrace import trace_xp

    g = trace_xp(lambda xp, b: (xp.amax(b, -1), b), [("x", 0, 32)], "raw")
    assert rec.w_monotone(rec.block_structure(g)).verdict == "counterexample"


@pytest.mark.parametrize("tile", ["16x16", "1x16"])
def test_graph_quantize_matches_the_exact_model(tile):
    """The graph replay the theorems use gives the exact model's tensor scale, scale grid and codes."""
    for m in rec.hand_built()[:2]:
        st, grid, codes = rec.quantize_matrix(m, tile)
        assert rec.graph_quantize(m, tile, ("reciprocal", "amax", "eps", "rne", "decode")) == (st, grid, codes)


def test_16x16_transpose_hand_built_one_variant():
    w = rec.hand_built()[0]  # the 1x16 witness transposes exactly with 16x16 tiles
    assert rec.transpose_mismatch(w, "16x16") is None
    st, grid, codes = rec.quantize_matrix(w, "16x16")
    # one tile, amax 64: S = 448, s_t = fl(64/2688); 1 -> 0.09375 -> 0, 64 -> 64 * 42 / 448 = 6 -> code 7
    assert st == _f(np.float32(64) / np.float32(2688)) and grid == [[0x7E]]  # UE4M3 448 = 1.75 * 2^8: 0x7E
    assert codes[0][1] == 7 and codes[1][0] == 0 and codes[0][0] == 0


def test_transpose_mismatch_detects_a_difference():
    """The checker can fail: a matrix whose rows differ is not transpose-invariant with 1x16 blocks."""
    w = [[_f(float(1 + (i == 0) * 63 * (j == 1))) for j in range(16)] for i in range(16)]
    bad = rec.transpose_mismatch(w, "1x16")
    assert bad is not None and bad["part"] == "codes"


def test_element_codes_depend_only_on_element_and_scale():
    """Step 2 of the proof route, checked: permuting a block's elements permutes its codes, keeps its scale."""
    rng = random.Random(7)
    blk = [_f(rng.gauss(0, 1) * 2.0 ** rng.randint(-8, 8)) for _ in range(256)]
    perm = list(range(256))
    rng.shuffle(perm)
    for kw in rec.VARIANTS[:3]:
        a = nv.quantize_blocks([blk], **kw)
        b = nv.quantize_blocks([[blk[p] for p in perm]], **kw)
        assert a.scales == b.scales and a.tensor_scale == b.tensor_scale
        assert list(b.codes[0]) == [a.codes[0][p] for p in perm]


@pytest.mark.parametrize("division,levels,zero_scale", [("reciprocal", 2, "eps"), ("divide", 1, "zero")])
def test_numpy_kernel_16x16_transposes(division, levels, zero_scale):
    """The numpy kernel (an independent implementation) transposes with 16x16 tiles and not with 1x16."""
    rng = np.random.default_rng(19)
    x = (rng.standard_normal((48, 32)) * np.exp2(rng.integers(-12, 12, (48, 32)))).astype(np.float32)
    x[5, 7] = np.float32(3e4)
    st, s, c = fnv.nvfp4_quantize(x, division, levels, zero_scale, "16x16")
    st_t, s_t, c_t = fnv.nvfp4_quantize(np.ascontiguousarray(x.T), division, levels, zero_scale, "16x16")
    assert (st is None and st_t is None) or np.float32(st).view(np.uint32) == np.float32(st_t).view(np.uint32)
    assert np.array_equal(np.asarray(s_t).reshape(2, 3), np.asarray(s).reshape(3, 2).T)
    assert np.array_equal(c_t, c.T)
    _, _, c1 = fnv.nvfp4_quantize(x, division, levels, zero_scale, "1x16")
    _, _, c1t = fnv.nvfp4_quantize(np.ascontiguousarray(x.T), division, levels, zero_scale, "1x16")
    assert not np.array_equal(c1t, c1.T)


def test_numpy_kernel_matches_exact_quantize_matrix():
    m = rec.hand_built()[1]  # 16 x 32 with a NaN and an infinity
    st, grid, codes = rec.quantize_matrix(m, "16x16")
    x = np.array(m, dtype=np.uint32).view(np.float32)
    fst, fs, fc = fnv.nvfp4_quantize(x, tile="16x16")
    assert int(np.float32(fst).view(np.uint32)) == st
    assert np.asarray(fs).reshape(1, 2).tolist() == grid
    assert np.asarray(fc).tolist() == codes


def _exact_vs_fast(x, role, rand=None):
    from refarith.exact import nvfp4_recipe as erec
    from refarith.fast import nvfp4_recipe as frec

    m = x.view(np.uint32).tolist()
    q = erec.quantize_role(m, role, None if rand is None else rand.tolist())
    st, s, c = frec.quantize_role(x, role, rand)
    assert int(np.float32(st).view(np.uint32)) == q.tensor_scale
    assert np.asarray(s).reshape(-1).tolist() == list(q.scales)
    tile = "16x16" if role == "weight" else "1x16"
    blocks = nv.tiles(np.asarray(c).astype(np.uint32).tolist(), tile)
    assert [tuple(b) for b in blocks] == list(q.codes)
    return q


@pytest.mark.parametrize("role", ["weight", "activation", "gradient", "wgrad_activation", "wgrad_gradient"])
def test_recipe_roles_fast_equals_exact(role):
    rng = np.random.default_rng(4)
    shape = (16, 16) if role.startswith("wgrad") else (16, 32)  # the exact rotation is the slow part
    x = (rng.standard_normal(shape) * np.exp2(rng.integers(-6, 6, shape))).astype(np.float32)
    rand = rng.integers(0, 256, shape) if role.endswith("gradient") else None
    _exact_vs_fast(x, role, rand)


def test_recipe_rotation_is_te_matrix_form():
    """wgrad roles rotate first: a row e_0 * 4 rotates to d_0 * H[0] = d_0 * (1, ..., 1) (the TE signs, d_0 = 1),
    i.e. sixteen ones, which quantize like an all-ones activation row."""
    from refarith.exact import nvfp4_recipe as erec

    row = [_f(4.0)] + [_f(0.0)] * 15
    assert erec.rotate_rows([row]) == [[_f(1.0)] * 16]
    assert erec.quantize_role([row], "wgrad_activation") == erec.quantize_role([[_f(1.0)] * 16], "activation")


def test_recipe_bad_input():
    from refarith.errors import BadValueError, UnknownModeError
    from refarith.exact import nvfp4_recipe as erec

    with pytest.raises(UnknownModeError, match="unknown NVFP4 recipe role 'bias'"):
        erec.quantize_role([[0] * 16], "bias")
    with pytest.raises(UnknownModeError, match="needs rand"):
        erec.quantize_role([[0] * 16], "gradient")
    with pytest.raises(UnknownModeError, match="takes no rand"):
        erec.quantize_role([[0] * 16], "weight", [[0] * 16])
    with pytest.raises(BadValueError, match="runs of 16"):
        erec.quantize_role([[0] * 8], "wgrad_activation")


def test_recipe_torch_backend_equals_numpy():
    torch = pytest.importorskip("torch")
    from refarith.fast import nvfp4_recipe as frec

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((16, 32)) * 3).astype(np.float32)
    rand = rng.integers(0, 256, (16, 32))
    for role, r in (("weight", None), ("wgrad_gradient", rand)):
        a = frec.quantize_role(x, role, r)
        b = frec.quantize_role(torch.from_numpy(x), role, None if r is None else torch.from_numpy(r),
                               backend="torch")
        assert float(a[0]) == float(b[0])
        assert np.array_equal(np.asarray(a[1]), b[1].numpy()) and np.array_equal(np.asarray(a[2]), b[2].numpy())


def test_recipe_bfloat16_rht_equals_torch_bf16_matmul():
    """rht=bfloat16 is Transformer Engine's reference transform: x_mat @ (diag(d) H / 4) with x and the matrix in
    bfloat16.  torch's bfloat16 matmul on the CPU (binary32 accumulation, one rounding to bfloat16) computes it
    independently; on normal inputs of a narrow range every sum of 16 terms is exact in binary32, so the order of
    the additions cannot matter and the two must agree bit for bit."""
    torch = pytest.importorskip("torch", reason="torch is not installed: the bfloat16 RHT is not cross-checked")
    from refarith.exact import nvfp4_recipe as erec
    from refarith.exact import rotation as rot

    rng = np.random.default_rng(11)
    xb = torch.from_numpy(rng.standard_normal((2, 32)).astype(np.float32)).to(torch.bfloat16)
    d = torch.tensor(rot.sign_vector(16, "te_wgrad"), dtype=torch.float32)
    h = torch.tensor(rot.sylvester(16), dtype=torch.float32)
    m = ((torch.diag(d) @ h) * 0.25).to(torch.bfloat16)
    want = (xb.reshape(-1, 16) @ m).reshape(2, 32).to(torch.float32).numpy().view(np.uint32)
    rows = xb.to(torch.float32).numpy().view(np.uint32).astype(np.int64).tolist()
    got = np.array(erec.rotate_rows(rows, "bfloat16"), dtype=np.uint32)
    assert (got == want).all()
    assert (np.array(erec.rotate_rows(rows), dtype=np.uint32) != got).any()  # binary32 rows round differently


def test_recipe_bfloat16_rht_fast_equals_exact_and_refuses_other_inputs():
    from refarith.errors import BadValueError, UnknownModeError
    from refarith.exact import nvfp4_recipe as erec
    from refarith.fast import nvfp4_recipe as frec

    rng = np.random.default_rng(12)
    x = (rng.standard_normal((2, 32)) * 5).astype(np.float32)
    x = (x.view(np.uint32) & 0xFFFF0000).view(np.float32)  # bfloat16 numbers
    q = erec.quantize_role(x.view(np.uint32).astype(np.int64).tolist(), "wgrad_activation", rht="bfloat16")
    t, s, c = frec.quantize_role(x, "wgrad_activation", rht="bfloat16")
    assert int(np.float32(t).view(np.uint32)) == q.tensor_scale and np.asarray(s).reshape(-1).tolist() == \
        list(q.scales)
    assert [tuple(b) for b in nv.tiles(np.asarray(c).astype(np.uint32).tolist(), "1x16")] == list(q.codes)
    y = x.copy()
    y[0, 3] = np.float32(1.0000001)
    with pytest.raises(BadValueError, match="not a bfloat16 number"):
        erec.quantize_role(y.view(np.uint32).astype(np.int64).tolist(), "wgrad_activation", rht="bfloat16")
    with pytest.raises(BadValueError, match="not bfloat16 numbers"):
        frec.quantize_role(y, "wgrad_activation", rht="bfloat16")
    with pytest.raises(UnknownModeError, match="rotated roles only"):
        erec.quantize_role([[0] * 16], "activation", rht="bfloat16")


# ------------------------------------------------------------------ the spec op nvfp4_recipe(role=...)
ROLES = ("weight", "activation", "gradient", "wgrad_activation", "wgrad_gradient")


def test_recipe_spec_ids():
    from refarith.spec import parse_spec

    assert str(parse_spec("nvfp4_recipe(role=weight)")) == \
        "nvfp4_recipe(role=weight,division=reciprocal,levels=2,zero_scale=eps)"
    # the recipe's stochastic rounding (te_e2m1_8, k = 8) is the default of the gradient roles, omitted from ids
    assert parse_spec("nvfp4_recipe(role=gradient,sr=te_e2m1_8,k=8)") == parse_spec("nvfp4_recipe(role=gradient)")
    assert str(parse_spec("nvfp4_recipe(role=wgrad_gradient,sr=c,k=4,global_scale=reciprocal)")) == \
        "nvfp4_recipe(role=wgrad_gradient,division=reciprocal,levels=2,global_scale=reciprocal,zero_scale=eps,sr=c,k=4)"


@pytest.mark.parametrize("spec,msg", [
    ("nvfp4_recipe()", "needs role="),
    ("nvfp4_recipe(role=bias)", "role='bias' is not one of"),
    ("nvfp4_recipe(role=weight,sr=c)", "sr applies to the gradient roles only"),
    ("nvfp4_recipe(role=activation,k=4)", "k applies to the gradient roles only"),
    ("nvfp4_recipe(role=gradient,k=4)", "te_e2m1_8 takes k=8"),
    ("nvfp4_recipe(role=gradient,sr=c,k=0)", "k must be a positive integer"),
    ("nvfp4_recipe(role=weight,levels=1,global_scale=reciprocal)", "global_scale=reciprocal needs levels=2"),
    ("nvfp4_recipe(role=gradient,rht=bfloat16)", "rht applies to the rotated roles"),
])
def test_recipe_spec_bad_input_is_one_line_exit_2(spec, msg, capsys):
    from refarith.cli import main

    assert main(["certify", "refarith:numpy", "--spec", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err


def _driver_out(spec: str, x: np.ndarray, rand=None):
    from refarith.golden import get_driver
    from refarith.spec import parse_spec

    s = parse_spec(spec)
    vec = tuple(int(t) for t in x.astype(np.float32).view(np.uint32).reshape(-1))
    if rand is not None:
        vec += tuple(int(t) for t in np.asarray(rand).reshape(-1))
    return get_driver(s).exact(s, vec)


def test_recipe_driver_layout_weight():
    """A weight vector is 16 x 32, two 16x16 tiles; the elements come back in row-major order.  Hand derivation:
    each tile's maximum |x| = 6 is the tensor's, so its scale is 448 (UE4M3 0x7E) and +-6 is E2M1 +-6 (7, 0xF)."""
    x = np.zeros((16, 32), np.float32)
    x[3, 20], x[10, 2] = 6.0, -6.0
    out = _driver_out("nvfp4_recipe(role=weight)", x)
    assert out[0] == _f(np.float32(6) / np.float32(2688)) and out[1:3] == (0x7E, 0x7E)
    want = [0] * 512
    want[3 * 32 + 20], want[10 * 32 + 2] = 7, 0xF
    assert list(out[3:]) == want


def test_recipe_driver_layout_rotated_and_1x16():
    """wgrad_activation (2 x 16): the row 4 e_0 rotates to sixteen ones (TE signs, d_0 = 1), the block maximum,
    so E2M1 6 (code 7) each; activation (4 x 16): block 2 is row 2."""
    x = np.zeros((2, 16), np.float32)
    x[0, 0] = 4.0
    out = _driver_out("nvfp4_recipe(role=wgrad_activation)", x)
    assert out[0] == _f(np.float32(1) / np.float32(2688)) and out[1] == 0x7E
    assert list(out[3:]) == [7] * 16 + [0] * 16
    a = np.zeros((4, 16), np.float32)
    a[2, 5] = -6.0
    out = _driver_out("nvfp4_recipe(role=activation)", a)
    assert out[1 + 2] == 0x7E and list(out[5:]) == [0] * 37 + [0xF] + [0] * 26


def test_recipe_driver_gradient_uses_the_random_integers():
    """levels=1: the block maximum 6 makes the block scale fl(6 / 6) = 1 exactly, so 1.25 lies halfway between the
    E2M1 neighbours 1 and 1.5 (spacing 0.5): te_e2m1_8 takes floor(fl(1.25 + r / 256 * 0.5) / 0.5) * 0.5, i.e. 1
    for r = 0 and 1.5 for r = 255."""
    x = np.zeros((4, 16), np.float32)
    x[0, 0], x[0, 1] = 6.0, 1.25
    lo = _driver_out("nvfp4_recipe(role=gradient,levels=1)", x, np.zeros(64, int))
    hi = _driver_out("nvfp4_recipe(role=gradient,levels=1)", x, np.full(64, 255))
    assert lo[0] == _f(1.0) and lo[1] == 0x38  # no tensor scale (1.0 in the vector); UE4M3 1.0 = 2^0: 0x38
    assert lo[5:7] == (7, 2) and hi[5:7] == (7, 3)  # E2M1 codes: 6 -> 7, 1 -> 2, 1.5 -> 3


@pytest.mark.parametrize("role", ROLES)
def test_recipe_numpy_certifies_against_committed_file(role):
    from refarith.certify.runner import certify

    c = certify("refarith:numpy", f"nvfp4_recipe(role={role})")
    assert c.passed and c.stages[0].sha256 is not None, c.totals()


def test_recipe_torch_certifies_against_committed_file():
    pytest.importorskip("torch")
    from refarith.certify.runner import certify

    c = certify("refarith:torch", "nvfp4_recipe(role=wgrad_gradient)")  # Hadamard transform and SR on torch
    assert c.passed, c.totals()


def _bound_kernel(variant: str):
    from refarith.certify.adapters import Kernel
    from refarith.golden import get_driver
    from refarith.spec import parse_spec

    v = parse_spec(variant)
    d = get_driver(v)
    return Kernel(f"refarith:numpy[{v}]", lambda spec, operands: d.fast(v, operands, "numpy"), "test")


@pytest.mark.parametrize("base,want,vary,part", [
    # the last boundary vectors: NVFP4 division blocks; the first of the gradient role: stochastic hard blocks
    # (levels=1: block scale 1, so their ties of k bits are exact)
    ("nvfp4_recipe(role=activation)", "nvfp4_recipe(role=activation,division=divide)", ("division",), slice(-24, None)),
    pytest.param("nvfp4_recipe(role=gradient,levels=1)", "nvfp4_recipe(role=gradient,levels=1,sr=c)", ("sr",),
                 slice(0, 16), marks=pytest.mark.slow),
])
def test_recipe_identify_names_the_variant(base, want, vary, part):
    """identify runs every variant's exact model on the vectors and names the one a kernel implements."""
    from refarith.certify.identify import identify
    from refarith.golden import get_driver
    from refarith.spec import parse_spec

    s = parse_spec(base)
    scores = identify(_bound_kernel(want), base, vary=vary, vectors=get_driver(s).boundary(s)[part])
    assert [x.spec for x in scores if x.matches and x.outside_domain == 0] == [str(parse_spec(want))]


def test_certificate_torchao_activation_role():
    """The committed torchao certificate of the activation role (docs/certificates/regenerate.sh): it fails where
    nvfp4_quantize(levels=2) does (non-finite and all-zero tensors), and in range only under a subnormal tensor
    scale (amax below 2688 * 2^-126), where it turns zeros into -1.5."""
    import json
    from pathlib import Path

    stem = "torchao-nvfp4__nvfp4_recipe__role-activation__division-reciprocal__levels-2__zero_scale-eps"
    c = json.loads((Path(__file__).resolve().parent.parent / "docs" / "certificates" / f"{stem}.json").read_text())
    t = c["mismatch_totals"]
    assert c["verdict"] == "fail" and c["kernel_version"].startswith("torchao")
    assert t["nan_inf"] > 0 and t["overflow"] == t["signed_zero"] == t["off_grid"] == 0
    ex = c["stages"][0]["examples"]["in_range"]
    assert ex["context"][0].startswith("tensor_scale 0x000") and ex["expected"][0] == "0x0" and ex["got"][0] == "0xb"
