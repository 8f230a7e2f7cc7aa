"""Triton kernels of the block and requantization families (refarith.fast.triton_blocks), under Triton's
interpreter on CPU tensors.

Expected values come from the exact model: the committed golden files of each family (generated from the exact
model, hashes checked) and, for dequantization, the exact product of every element code with every scale code.
The numpy backend is used only to tie the traced graph (evaluated on numpy words) to the code it was traced from.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: the triton backend takes torch tensors")
pytest.importorskip("triton", reason="triton not installed: pip install 'refarith[triton]'")

from refarith.exact import mx as emx  # noqa: E402
from refarith.exact.rounding import round_value  # noqa: E402
from refarith.exact.value import Value  # noqa: E402
from refarith.fast import mx as fmx  # noqa: E402
from refarith.fast import triton_backend as tb  # noqa: E402
from refarith.fast import triton_blocks as tbk  # noqa: E402
from refarith.fast.bitops import NumpyBitOps  # noqa: E402
from refarith.fast.trace import evaluate  # noqa: E402
from refarith.golden import fileformat as ff  # noqa: E402
from refarith.golden.generate import default_dir  # noqa: E402

F32_NAN_MASK = 0x7FFFFFFF


def _golden(op: str) -> list[str]:
    """The committed golden files of ``op``, stochastic-rounding files included (their vectors carry one random
    integer per element after the elements)."""
    manifest = json.loads((default_dir() / "MANIFEST.json").read_text())
    return sorted(n for n in manifest["files"] if n.startswith(op + "__"))


def _is_sr(name: str) -> bool:
    return "__rounding-sr__" in name


def _load(name: str) -> ff.GoldenFile:
    d = default_dir()
    manifest = json.loads((d / "MANIFEST.json").read_text())
    return ff.load(d / name, manifest["files"][name]["sha256"])


def _by_default(names: list[str], keep: tuple[str, ...]) -> list:
    """The interpreter is slow: the deterministic files named by a ``keep`` fragment run in the default test run
    (about one CPU second each), the others and every stochastic-rounding file (whose 64-bit graphs the small
    tests below cover by default) under the ``slow`` marker."""
    return [n if any(k in n for k in keep) and not _is_sr(n) else pytest.param(n, marks=pytest.mark.slow)
            for n in names]


def _sr_kw(gf: ff.GoldenFile, n: int) -> tuple[list, dict]:
    """(element columns, keywords of stochastic rounding) of a golden file whose vectors hold ``n`` elements,
    followed by the ``n`` random integers for a stochastic spec."""
    p = gf.spec.param
    if p["rounding"] != "sr":
        return gf.inputs, {}
    r = np.stack(gf.inputs[n:], axis=1).astype(np.int64)
    assert len(gf.inputs) == 2 * n and r.max() < 1 << int(p["k"])
    return gf.inputs[:n], dict(rand_bits=int(p["k"]), sr_variant=p.get("sr", "a"), rand=r)


def _mismatch(got: np.ndarray, want: np.ndarray, what: str) -> None:
    bad = np.argwhere(np.asarray(got) != np.asarray(want))
    if bad.size:
        i = tuple(bad[0])
        raise AssertionError(f"{what}: {len(bad)} mismatches; first at {i}: triton {got[i]:#x}, expected "
                             f"{want[i]:#x}")


# ------------------------------------------------------------------ MX
MX_FILES = _golden("mx_quantize")


def test_mx_golden_files_exist():
    """The MX test below cannot pass vacuously: the committed set holds MX files of several scale rules, and
    stochastic-rounding files of every variant."""
    rules = {n.split("__scale-")[1].split("__")[0] for n in MX_FILES}
    assert len(MX_FILES) >= 5 and {"floor", "ceil", "rceil"} <= rules
    srs = [n for n in MX_FILES if _is_sr(n)]
    assert len(srs) >= 5 and {"sr-b", "sr-c", "sr-c_odd", "sr-te_e2m1_8"} <= {f for n in srs for f in n.split("__")}


@pytest.mark.parametrize("name", _by_default(MX_FILES, ("ocp_e2m1__block-32__scale-floor", "scale-rceil",
                                                          "int8_sym")))
def test_mx_golden_file(name):
    """Every committed MX golden file: the Triton kernel, reached through ``refarith.fast.mx.mx_quantize(...,
    backend="triton")``, gives the file's scale and element codes (stochastic files: with the file's random
    integers)."""
    gf = _load(name)
    p = gf.spec.param
    cols, sr = _sr_kw(gf, int(p["block"]))
    x = np.stack(cols, axis=1).astype(np.uint32).view(np.float32)
    s, c = fmx.mx_quantize(torch.from_numpy(x), gf.spec.formats[0], block=int(p["block"]), scale=p["scale"],
                           rounding=p["rounding"], backend="triton", **sr)
    assert isinstance(s, torch.Tensor) and isinstance(c, torch.Tensor)
    assert not gf.raises.any()
    _mismatch(s.numpy()[:, 0].astype(np.int64), gf.outputs[:, 0].astype(np.int64), f"{gf.spec} scales")
    _mismatch(c.numpy().astype(np.int64), gf.outputs[:, 1:].astype(np.int64), f"{gf.spec} elements")


def test_mx_ragged_axis_and_block():
    """A block size that is not a power of two, quantized along axis 0 with a ragged last block: the masked lanes
    of the tile change nothing (expected: the exact model block by block)."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((23, 3)) * np.exp2(rng.integers(-20, 20, (1, 3)))).astype(np.float32)
    x[4, 1] = -x[4, 1] * 1e6
    s, c = tbk.mx_quantize(torch.from_numpy(x), "ocp_e4m3", axis=0, block=10, scale="ceil")
    assert tuple(s.shape) == (3, 3) and tuple(c.shape) == x.shape
    for j in range(3):
        for b in range(3):
            col = [float(v) for v in x[b * 10:(b + 1) * 10, j]]
            blk = emx.quantize_block(col, "ocp_e4m3", "ceil")
            assert int(s[b, j]) == blk.scale
            assert [int(v) for v in c[b * 10:(b + 1) * 10, j]] == list(blk.codes)


def _exact_dequant(element: str, scodes: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """binary32 bits of the exact X * P (0x7FC00000 for NaN), from the exact model."""
    out = np.empty((scodes.size, codes.size), dtype=np.int64)
    for i, s in enumerate(scodes.tolist()):
        vals = emx.dequantize_block(emx.MXBlock(s, tuple(codes.tolist())), element)
        out[i] = [0x7FC00000 if v.is_nan else round_value(v, "binary32", "rne").code for v in vals]
    return out


@pytest.mark.parametrize("element", ["ocp_e2m1", "ocp_e3m2", pytest.param("ocp_e4m3", marks=pytest.mark.slow),
                                     pytest.param("ocp_e5m2", marks=pytest.mark.slow),
                                     pytest.param("int8", marks=pytest.mark.slow)])
def test_mx_dequantize_every_code_and_scale(element):
    """Every (E8M0 scale code, element code) pair: the Triton dequantization gives the exact value's binary32
    bits (every such product is a binary32 number), NaN for NaN scales and NaN elements."""
    fmt = emx.mx_element(element)
    ncodes = 256 if not hasattr(fmt, "ncodes") else fmt.ncodes
    codes = np.arange(ncodes, dtype=np.int64)
    scodes = np.arange(256, dtype=np.int64)
    c = torch.from_numpy(np.tile(codes, 256).astype(np.uint8)).reshape(256, ncodes)
    s = torch.from_numpy(scodes.astype(np.uint8)).reshape(256, 1)
    v = tbk.mx_dequantize(s, c, element, axis=-1, block=ncodes)
    got = v.numpy().view(np.int32).astype(np.int64) & 0xFFFFFFFF
    want = _exact_dequant(element, scodes, codes)
    nan = (got & F32_NAN_MASK) > 0x7F800000
    assert ((want & F32_NAN_MASK) > 0x7F800000).tolist() == nan.tolist()
    _mismatch(np.where(nan, 0, got), np.where(nan, 0, want), f"mx_dequantize({element})")


def test_mx_graph_is_the_numpy_kernel():
    """The traced graph, evaluated on numpy words, is the numpy backend's quantize_blocks on the same blocks
    (binary32 subnormals, zeros, NaN and infinity included), and the emitted source carries its digest."""
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((64, 32)) * np.exp2(rng.integers(-150, 120, (64, 1)))).astype(np.float32)
    x[0, 3], x[1, :], x[2, 7], x[3, :] = np.nan, 0.0, -np.inf, -0.0
    for scale in ("floor", "rceil"):
        g = tbk.mx_quantize_graph("ocp_e2m1", scale, "rne")
        ops = NumpyBitOps(g.width)
        s, c = evaluate(g, ops, [ops.word(x.view(np.uint32))])
        s0, c0 = fmx.mx_quantize(x, "ocp_e2m1", scale=scale)
        assert (np.asarray(s).astype(np.uint8) == s0[:, 0]).all() and (np.asarray(c).astype(np.uint8) == c0).all()
        src = tb.emit_block_source(g, ["int32"], ["uint8", "uint8"])
        assert g.digest in src
        assert tbk.mx_quantize_graph.__wrapped__("ocp_e2m1", scale, "rne").digest == g.digest


def test_mx_backend_triton_round_trip_against_exact_model():
    """``backend="triton"`` of refarith.fast.mx: quantize along axis 0 in ragged blocks of 8 (zeros, a binary32
    subnormal, NaN and infinity among the values), then dequantize the codes; expected: the exact model's
    quantize_block and dequantize_block of each column block."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((20, 3)) * np.exp2(rng.integers(-30, 30, (1, 3)))).astype(np.float32)
    x[0, 0], x[9, 1], x[17, 2], x[3, 2] = np.nan, np.float32(1e-40), -np.inf, -0.0
    x[8:16, 0] = 0.0
    s, c = fmx.mx_quantize(torch.from_numpy(x), "ocp_e2m3", axis=0, block=8, scale="even", rounding="rna",
                           backend="triton")
    v = fmx.mx_dequantize(s, c, "ocp_e2m3", axis=0, block=8, backend="triton")
    assert tuple(s.shape) == (3, 3) and tuple(c.shape) == tuple(v.shape) == x.shape
    got_v = v.numpy().view(np.int32).astype(np.int64) & 0xFFFFFFFF
    for j in range(3):
        for b in range(3):
            blk = emx.quantize_block([float(t) for t in x[b * 8:(b + 1) * 8, j]], "ocp_e2m3", "even", "rna")
            assert int(s[b, j]) == blk.scale and [int(t) for t in c[b * 8:(b + 1) * 8, j]] == list(blk.codes)
            for i, val in enumerate(emx.dequantize_block(blk, "ocp_e2m3")):
                g = int(got_v[b * 8 + i, j])
                if val.is_nan:
                    assert (g & F32_NAN_MASK) > 0x7F800000, (b, j, i)
                else:
                    assert g == round_value(val, "binary32", "rne").code, (b, j, i)


def test_check_mx_args_is_shared():
    """The numpy and triton backends reject a bad MX setting with the same one-line error of check_mx_args."""
    from refarith.errors import BadValueError, UnknownModeError

    x = np.zeros((2, 32), np.float32)
    assert fmx.check_mx_args("ocp_e4m3", 32, "floor", "rne").name == "ocp_e4m3"
    for bad, err, what in (({"block": True}, BadValueError, "block size"),
                           ({"scale": "nearest"}, UnknownModeError, "scale rule"),
                           ({"rounding": "stochastic"}, UnknownModeError, "element rounding")):
        args = {"block": 32, "scale": "floor", "rounding": "rne", **bad}
        msgs = []
        for backend, arr in (("numpy", x), ("triton", torch.from_numpy(x))):
            with pytest.raises(err, match=what) as e:
                fmx.mx_quantize(arr, "ocp_e4m3", backend=backend, **args)
            msgs.append(str(e.value))
        assert msgs[0] == msgs[1] and "\n" not in msgs[0]


# ------------------------------------------------------------------ NVFP4
NV_FILES = _golden("nvfp4_quantize")


@pytest.mark.parametrize("division,levels,tensor_scale,zero_scale,global_scale", [
    ("reciprocal", 2, None, "eps", "decode"), ("divide", 1, None, "zero", "decode"),
    ("divide", 2, 0.0234375, "eps", "decode"), ("divide", 2, None, "eighth", "reciprocal")])
def test_nvfp4_backend_triton_round_trip_against_exact_model(division, levels, tensor_scale, zero_scale,
                                                             global_scale):
    """``backend="triton"`` of refarith.fast.nvfp4 on a (3, 40) tensor (ragged last block, a zero block, a
    binary32 subnormal, an infinity): per-tensor scale, block scales and element codes are the exact model's
    quantize_blocks of the rows' 16-element blocks, and (decode global scale) dequantization gives its
    dequantize_blocks.  The last case is the compressed-tensors recipe (reciprocal global scale, 1/8 zero-block
    scale)."""
    from refarith.exact import nvfp4 as env
    from refarith.fast import nvfp4 as fnv

    rng = np.random.default_rng(12)
    x = (rng.standard_normal((3, 40)) * np.exp2(rng.integers(-20, 20, (3, 1)))).astype(np.float32)
    x[0, 16:32], x[1, 5], x[2, 33] = 0.0, np.float32(-3e-41), np.inf
    st, s, c = fnv.nvfp4_quantize(torch.from_numpy(x), division, levels, zero_scale, "1x16", "rne", tensor_scale,
                                  backend="triton", global_scale=global_scale)
    bits = x.view(np.uint32)
    blocks = [[int(v) for v in bits[r, k:k + 16]] for r in range(3) for k in range(0, 40, 16)]
    ts = None if tensor_scale is None else env.f32_bits(tensor_scale)
    q = env.quantize_blocks(blocks, division=division, levels=levels, zero_scale=zero_scale, rounding="rne",
                            tensor_scale=ts, global_scale=global_scale)
    assert (None if st is None else int(st.view(torch.int32))) == q.tensor_scale
    assert s.reshape(-1).tolist() == list(q.scales)
    assert [c[r, k:k + 16].tolist() for r in range(3) for k in range(0, 40, 16)] == [list(b) for b in q.codes]
    if global_scale != "decode":
        return  # nvfp4_dequantize computes fl(P * S * s_t), the decode reading only
    v = fnv.nvfp4_dequantize(st, s, c, "1x16", backend="triton").numpy().view(np.int32).astype(np.int64)
    want = env.dequantize_blocks(q)
    for i, blk in enumerate(want):
        r, k = divmod(i, 3)
        for j, val in enumerate(blk):
            g = int(v[r, 16 * k + j]) & 0xFFFFFFFF
            assert (g & F32_NAN_MASK) > 0x7F800000 if val.is_nan else g == round_value(val, "binary32").code, (i, j)


def test_nvfp4_golden_files_exist():
    assert len(NV_FILES) >= 4 and any("levels-1" in n for n in NV_FILES) and any("16x16" in n for n in NV_FILES)
    assert sum(_is_sr(n) for n in NV_FILES) >= 2


@pytest.mark.parametrize("name", _by_default(NV_FILES, ("reciprocal__levels-2__zero_scale-eps__tile-1x16",)))
def test_nvfp4_golden_file(name):
    """Every committed NVFP4 golden file: per-tensor scale, block scales and element codes of every vector (each
    vector its own tensor, all in one launch; stochastic files with the file's random integers)."""
    gf = _load(name)
    p = gf.spec.param
    r, c = (4, 16) if p["tile"] == "1x16" else (16, 32)
    cols, sr = _sr_kw(gf, r * c)
    x = np.stack(cols, axis=1).astype(np.uint32).view(np.float32).reshape(-1, r, c)
    if sr:
        sr["rand"] = torch.from_numpy(sr["rand"].reshape(x.shape))
    st, s, q = tbk.nvfp4_quantize_many(torch.from_numpy(x), p["division"], int(p["levels"]), p["zero_scale"],
                                       p["tile"], p["rounding"], p.get("global_scale", "decode"), **sr)
    assert not gf.raises.any()
    nb = s.shape[1]
    want = gf.outputs.astype(np.int64)
    _mismatch(st.numpy().astype(np.int64) & 0xFFFFFFFF, want[:, 0], f"{gf.spec} tensor scales")
    _mismatch(s.numpy().astype(np.int64), want[:, 1:1 + nb], f"{gf.spec} block scales")
    _mismatch(q.numpy().reshape(len(x), -1).astype(np.int64), want[:, 1 + nb:], f"{gf.spec} elements")


def test_nvfp4_dequantize_every_code_and_scale():
    """Every (UE4M3 scale code, E2M1 code) pair, one and two levels (per-tensor scale 0.75 * 2^-3, inexact
    products): fl(P * S * s_t) from the exact model (round_value of the exact product of P * S and s_t)."""
    from fractions import Fraction

    from refarith.exact.ops import decode
    from refarith.formats import get_format

    ue, e2 = get_format("ue4m3"), get_format("ocp_e2m1")
    codes = torch.arange(16, dtype=torch.uint8).repeat(128 * 16).reshape(128 * 16, 16)  # 16 blocks per scale
    scales = torch.arange(128, dtype=torch.uint8).repeat_interleave(16)
    for ts in (None, 0.09375):
        v = tbk.nvfp4_dequantize(ts, scales, codes, "1x16").numpy().view(np.int32)[::16]  # (128, 16)
        got = v.astype(np.int64) & 0xFFFFFFFF
        for sc in range(128):
            sv = decode(sc, ue)
            for cc in range(16):
                ev = decode(cc, e2)
                if sv.is_nan:
                    assert (got[sc, cc] & F32_NAN_MASK) > 0x7F800000
                    continue
                mag = ev.mag * sv.mag * (Fraction(ts) if ts is not None else 1)
                want = round_value(Value("finite", ev.sign, mag), "binary32", "rne").code
                assert got[sc, cc] == want, (sc, cc, ts)


def test_nvfp4_graph_gives_the_torch_backend_bits(monkeypatch):
    """The NVFP4 graph is made by calling ``refarith.fast.nvfp4._quantize_chunk`` on the tracer; evaluated on numpy
    words it gives the torch backend's bits, both where the torch kernel takes its device-multiply shortcut (normal
    values only) and where it takes the integer-only multiply (a binary32 subnormal in the block).  The torch
    backend runs its own staged kernel (block maxima, threshold lookup of the scale codes, element codes), as the
    numpy backend does, so the tie to the traced graph is this bit comparison, not a shared call."""
    from refarith.fast import nvfp4 as fnv

    calls = []
    real = fnv._quantize_chunk

    def spy(bits, st, *args, **kw):
        calls.append(args[3].name)
        return real(bits, st, *args, **kw)

    monkeypatch.setattr(fnv, "_quantize_chunk", spy)
    g = tbk.nvfp4_quantize_graph.__wrapped__("reciprocal", "given", "eps", "rne")
    assert set(calls) == {"trace"} and g.digest == tbk.nvfp4_quantize_graph("reciprocal", "given", "eps", "rne").digest
    rng = np.random.default_rng(14)
    ts = 0.01171875
    for sub in (False, True):
        x = (rng.standard_normal((6, 32)) * np.exp2(rng.integers(-12, 12, (6, 1)))).astype(np.float32)
        if sub:
            x[2, 3] = np.float32(2e-39)
        st, s0, c0 = fnv.nvfp4_quantize(torch.from_numpy(x), "reciprocal", 2, "eps", "1x16", "rne", ts,
                                        backend="torch")
        assert set(calls) == {"trace"}  # the torch backend neither traces nor calls the chunk function
        ops = NumpyBitOps(g.width)
        words = x.view(np.uint32).reshape(-1, 16).astype(np.uint64)
        st_words = np.full(words.shape[0], np.float32(ts).view(np.uint32), dtype=np.uint64)
        s, c = evaluate(g, ops, [ops.word(words), ops.word(st_words)])
        assert (np.asarray(s).astype(np.uint8) == s0.numpy().reshape(-1)).all(), sub
        assert (np.asarray(c).astype(np.uint8) == c0.numpy().reshape(-1, 16)).all(), sub


def test_deferred_table_chain_is_gathered_then_computed():
    """A kernel that computes on a whole code table and gathers afterwards (as NVFP4's does for its 128 scale
    codes) traces to per-block table reads followed by the same operations; the graph on numpy words equals numpy
    computing on the table first."""
    from refarith.fast.xptrace import trace_xp

    table = (np.arange(128, dtype=np.int32) * 977 + 5) % 4096

    def kernel(xp, idx, v):
        t = xp.t.as_tensor(table) if xp.name == "trace" else table
        d = xp.where(t > 1000, (t * 3) >> 2, -t) + 7
        return xp.take(d, idx) + v

    rng = np.random.default_rng(15)
    idx = rng.integers(0, 128, 300).astype(np.int32)
    v = rng.integers(-1000, 1000, 300).astype(np.int32)
    g = trace_xp(kernel, [("idx", 1, 32), ("v", 1, 32)], "deferred")
    assert sum(n.kind == "lut" for n in g.nodes) == 1
    ops = NumpyBitOps(g.width)
    (got,) = evaluate(g, ops, [_words(ops, idx), _words(ops, v)])
    want = kernel(_NpShim(), idx, v)
    assert (np.asarray(got).astype(np.uint32).view(np.int32) == want).all()


# ------------------------------------------------------------------ stochastic element rounding
def _exact_mx_sr(x: np.ndarray, r: np.ndarray, element: str, scale: str, k: int, variant: str):
    """(scales, codes) of the exact model's quantize_block with rounding="sr", blocks along the last axis."""
    out = [emx.quantize_block([float(t) for t in row], element, scale, "sr", rand=[int(t) for t in rr],
                              rand_bits=k, sr_variant=variant) for row, rr in zip(x, r)]
    return [b.scale for b in out], [list(b.codes) for b in out]


@pytest.mark.parametrize("element,scale,variant,k", [
    pytest.param("ocp_e4m3", "floor", "a", 3, marks=pytest.mark.slow),
    pytest.param("int8", "ceil", "b", 5, marks=pytest.mark.slow),
    ("ocp_e2m1", "even", "c", 4), ("ocp_e5m2", "ceil", "c_odd", 40),
    pytest.param("ocp_e5m2", "rceil", "c_odd", 6, marks=pytest.mark.slow), ("ocp_e2m1", "floor", "te_e2m1_8", 8)])
def test_mx_sr_against_exact_model(element, scale, variant, k):
    """``backend="triton"`` with ``rounding="sr"``: blocks of 8 at the hard places of stochastic rounding (grid
    neighbours, fractions of exactly k and k + 1 bits, bits far below the quantum, binary32 subnormals), once
    with uniform and once with all-ones random integers; expected: the exact model with the same integers."""
    from refarith.golden.opdrivers.blocksr import hard_mx_blocks, rand_patterns

    x = hard_mx_blocks(element, min(k, 8), seed=k)[::3]
    r = np.concatenate(rand_patterns(x.shape, k, seed=k)[:2])
    x = np.concatenate([x, x])
    s, c = fmx.mx_quantize(torch.from_numpy(x), element, block=8, scale=scale, rounding="sr",
                           rand=torch.from_numpy(r), rand_bits=k, sr_variant=variant, backend="triton")
    want_s, want_c = _exact_mx_sr(x, r, element, scale, k, variant)
    assert s[:, 0].tolist() == want_s and c.tolist() == want_c


def test_mx_sr_axis_ragged():
    """The random integers follow their elements through a non-last axis and a ragged last block (blocks of 10
    along axis 0 of a (23, 3) tensor): the exact model column block by column block."""
    rng = np.random.default_rng(21)
    x = (rng.standard_normal((23, 3)) * np.exp2(rng.integers(-20, 20, (1, 3)))).astype(np.float32)
    r = rng.integers(0, 16, x.shape)
    s, c = tbk.mx_quantize(torch.from_numpy(x), "ocp_e2m1", axis=0, block=10, scale="even", rounding="sr", rand=r,
                           rand_bits=4, sr_variant="c")
    assert tuple(s.shape) == (3, 3) and tuple(c.shape) == x.shape
    for b in range(3):
        ws, wc = _exact_mx_sr(x[b * 10:(b + 1) * 10].T, r[b * 10:(b + 1) * 10].T, "ocp_e2m1", "even", 4, "c")
        assert s[b].tolist() == ws and c[b * 10:(b + 1) * 10].T.tolist() == wc


@pytest.mark.parametrize("division,levels,tile,variant,k", [
    ("reciprocal", 2, "1x16", "te_e2m1_8", 8), pytest.param("divide", 1, "16x16", "c", 4, marks=pytest.mark.slow)])
def test_nvfp4_sr_against_exact_model(division, levels, tile, variant, k):
    """``backend="triton"`` NVFP4 with ``rounding="sr"``: a ragged tensor (a zero block, a binary32 subnormal, an
    infinity, hard E2M1 rows whose block maximum 6 pins the scale to 1); per-tensor scale, block scales and
    element codes are the exact model's quantize_blocks with the same random integers, tile by tile."""
    from refarith.exact import nvfp4 as env
    from refarith.fast import nvfp4 as fnv
    from refarith.golden.opdrivers.blocksr import hard_mx_blocks

    rng = np.random.default_rng(22)
    x = (rng.standard_normal((18, 40)) * np.exp2(rng.integers(-12, 12, (18, 1)))).astype(np.float32)
    x[0, 16:32], x[1, 5], x[2, 33] = 0.0, np.float32(-3e-41), np.inf
    x[3:7, :32] = hard_mx_blocks("ocp_e2m1", k, seed=3)[:16].reshape(4, 32)
    r = rng.integers(0, 1 << k, x.shape)
    r[3] = (1 << k) - 1
    st, s, c = fnv.nvfp4_quantize(torch.from_numpy(x), division, levels, "eps", tile, "sr", backend="triton",
                                  rand=torch.from_numpy(r), rand_bits=k, sr_variant=variant)
    rows, cols = (16, 16) if tile == "16x16" else (1, 16)
    xp = np.zeros((-(-18 // rows) * rows, 48), np.float32)
    rp = np.zeros(xp.shape, np.int64)
    xp[:18, :40], rp[:18, :40] = x, r
    tiles = [(i, j) for i in range(0, xp.shape[0], rows) for j in range(0, 48, cols)]
    blocks = [[int(t) for t in xp[i:i + rows, j:j + cols].reshape(-1).view(np.uint32)] for i, j in tiles]
    rands = [[int(t) for t in rp[i:i + rows, j:j + cols].reshape(-1)] for i, j in tiles]
    q = env.quantize_blocks(blocks, division=division, levels=levels, zero_scale="eps", rounding="sr", rand=rands,
                            rand_bits=k, sr_variant=variant)
    assert (None if st is None else int(st.view(torch.int32))) == q.tensor_scale
    assert s.reshape(-1).tolist() == list(q.scales)
    cp = np.zeros(xp.shape, np.int64)
    cp[:18, :40] = c.numpy()
    assert [cp[i:i + rows, j:j + cols].reshape(-1).tolist() for i, j in tiles] == [list(b) for b in q.codes]


def test_sr_graphs_are_the_numpy_kernels(monkeypatch):
    """One source: the stochastic graphs are made by calling ``refarith.fast.mx.quantize_blocks`` and
    ``refarith.fast.nvfp4._quantize_chunk`` on the tracer with the random integers as the ``r`` input; evaluated
    on numpy words they give the numpy backend's bits; the emitted source carries the digest; another variant or
    k is another graph."""
    from refarith.fast import nvfp4 as fnv

    calls = []
    real = fmx.quantize_blocks

    def spy(b, fmt, scale, rounding, xp, sr=None):
        calls.append((xp.name, rounding, None if sr is None else sr[1:]))
        return real(b, fmt, scale, rounding, xp, sr)

    monkeypatch.setattr(fmx, "quantize_blocks", spy)
    g = tbk.mx_quantize_graph.__wrapped__("ocp_e2m1", "floor", "sr", (5, "c"))
    monkeypatch.undo()
    assert calls == [("trace", "sr", (5, "c"))] and g.inputs == ("x", "r") and g.width == 64
    assert g.digest == tbk.mx_quantize_graph("ocp_e2m1", "floor", "sr", (5, "c")).digest
    assert len({g.digest, tbk.mx_quantize_graph("ocp_e2m1", "floor", "sr", (5, "c_odd")).digest,
                tbk.mx_quantize_graph("ocp_e2m1", "floor", "sr", (6, "c")).digest}) == 3
    assert g.digest in tb.emit_block_source(g, ["int32", "int64"], ["uint8", "uint8"])
    rng = np.random.default_rng(23)
    x = (rng.standard_normal((40, 32)) * np.exp2(rng.integers(-140, 120, (40, 1)))).astype(np.float32)
    r = rng.integers(0, 32, x.shape)
    ops = NumpyBitOps(64)
    s, c = evaluate(g, ops, [ops.word(x.view(np.uint32)), ops.word(r.astype(np.uint64))])
    s0, c0 = fmx.mx_quantize(x, "ocp_e2m1", rounding="sr", rand=r, rand_bits=5, sr_variant="c")
    assert (np.asarray(s).astype(np.uint8) == s0[:, 0]).all() and (np.asarray(c).astype(np.uint8) == c0).all()

    nv_calls = []
    real_chunk = fnv._quantize_chunk

    def chunk_spy(bits, st, division, zero_scale, rounding, xp, sr=None, global_scale="decode"):
        nv_calls.append((xp.name, rounding, None if sr is None else sr[1:]))
        return real_chunk(bits, st, division, zero_scale, rounding, xp, sr, global_scale)

    monkeypatch.setattr(fnv, "_quantize_chunk", chunk_spy)
    gn = tbk.nvfp4_quantize_graph.__wrapped__("reciprocal", "given", "eps", "sr", "decode", (8, "te_e2m1_8"))
    monkeypatch.undo()
    assert nv_calls == [("trace", "sr", (8, "te_e2m1_8"))] and gn.inputs == ("x", "st", "r")
    xb = x.reshape(-1, 16)
    rb = rng.integers(0, 256, xb.shape)
    ts = np.float32(0.01171875)
    s, c = evaluate(gn, ops, [ops.word(xb.view(np.uint32)), ops.word(np.full(len(xb), ts.view(np.uint32))),
                              ops.word(rb.astype(np.uint64))])
    _, s0, c0 = fnv.nvfp4_quantize(xb, "reciprocal", 2, "eps", "1x16", "sr", float(ts), rand=rb, rand_bits=8,
                                   sr_variant="te_e2m1_8")
    assert (np.asarray(s).astype(np.uint8) == s0.reshape(-1)).all() and (np.asarray(c).astype(np.uint8) == c0).all()


def test_sr_bad_input_is_named():
    """Bad random integers on the Triton path: the numpy backend's one-line errors; random integers given to a
    deterministic rounding, and (k, variant) given to one, are errors too."""
    from refarith.errors import UnknownModeError
    from refarith.fast import nvfp4 as fnv

    x = np.ones((2, 32), np.float32)
    ok = np.zeros((2, 32), np.int64)
    for rand, k, v, what in ((None, 3, "a", "needs rand"), (ok[:1], 3, "a", "shape"), (ok + 8, 3, "a", r"2\^3"),
                             (ok.astype(np.float32), 3, "a", "integers"), (ok, 61, "a", "rand_bits"),
                             (ok, 3, "te_e2m1_8", "k=8")):
        msgs = []
        for backend, arr, rr in (("numpy", x, rand), ("triton", torch.from_numpy(x), rand)):
            with pytest.raises(UnknownModeError, match=what) as e:
                fmx.mx_quantize(arr, "ocp_e2m1", rounding="sr", rand=rr, rand_bits=k, sr_variant=v, backend=backend)
            msgs.append(str(e.value))
            with pytest.raises(UnknownModeError, match=what):
                fnv.nvfp4_quantize(arr, rounding="sr", rand=rr, rand_bits=k, sr_variant=v, backend=backend)
        assert "\n" not in msgs[0] + msgs[1] and (msgs[0] == msgs[1] or what == "integers")
    with pytest.raises(UnknownModeError, match="E2M1 grid only"):
        tbk.mx_quantize(torch.from_numpy(x), "ocp_e4m3", rounding="sr", rand=ok, rand_bits=8, sr_variant="te_e2m1_8")
    with pytest.raises(UnknownModeError, match="not stochastic"):
        tbk.mx_quantize(torch.from_numpy(x), "ocp_e2m1", rand=ok, rand_bits=3)
    with pytest.raises(UnknownModeError, match="not stochastic"):
        tbk.nvfp4_quantize(torch.from_numpy(x), rand=ok, rand_bits=3)
    with pytest.raises(UnknownModeError, match="rounding='sr' only"):
        tbk.mx_quantize_graph("ocp_e2m1", "floor", "rne", (3, "a"))


# ------------------------------------------------------------------ requantization
RQ_FILES = _golden("requantize")


def test_requantize_golden_files_exist():
    assert {n.split("variant-")[1].split(".")[0] for n in RQ_FILES} >= {"tflite_double_rounding", "hawq_sim"}


def _requantize_file(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Triton codes, expected codes, rows compared) of a requantization golden file; the multiplier pair of each
    (scale, zero point) comes from the exact model, as a deployed kernel derives it once per tensor."""
    from refarith.exact import requant as erq
    from refarith.formats import get_format

    gf = _load(name)
    assert not gf.spec.formats or tuple(gf.spec.formats) == ("int32", "int8")
    variant = gf.spec.param["variant"]
    f32, i8, i32 = get_format("binary32"), get_format("int8"), get_format("int32")
    acc = np.array([i32.value(int(c)) for c in gf.inputs[0]], dtype=np.int64)
    zp = np.array([i8.value(int(c)) for c in gf.inputs[2]], dtype=np.int64)
    pairs = {int(s): erq.multiplier_for(f32.finite_value(int(s)), variant) for s in np.unique(gf.inputs[1])}
    m = np.array([pairs[int(s)][0] for s in gf.inputs[1]], dtype=np.int64)
    sh = np.array([pairs[int(s)][1] for s in gf.inputs[1]], dtype=np.int64)
    got = tbk.requantize(torch.from_numpy(acc), torch.from_numpy(m), torch.from_numpy(sh), variant,
                         torch.from_numpy(zp)).numpy().astype(np.int64) & 0xFF
    return got, gf.outputs[:, 0].astype(np.int64), ~gf.raises


@pytest.mark.parametrize("name", RQ_FILES)
def test_requantize_golden_file(name):
    """Every committed requantization golden file: the Triton kernel gives the file's int8 codes."""
    got, want, rows = _requantize_file(name)
    assert rows.sum() > 1000
    _mismatch(got[rows], want[rows], name)


# ------------------------------------------------------------------ certify / identify targets
def test_certify_refarith_triton_block_families():
    """refarith:triton is a certify target for the requantization family (its golden file, the exact model's
    outputs); MX and NVFP4 take the same driver path (checked under slow below)."""
    from refarith.certify.runner import certify

    assert certify("refarith:triton", "requantize(variant=cmsis_single_rounding)").passed


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["mx_quantize(ocp_e4m3,block=32,scale=floor,rounding=rne)",
                                  "nvfp4_quantize(division=reciprocal,levels=1,zero_scale=eps,tile=1x16,rounding=rne)",
                                  "mx_quantize(ocp_e2m1,block=8,rounding=sr,sr=te_e2m1_8,k=8)",
                                  "nvfp4_quantize(rounding=sr,sr=te_e2m1_8,k=8)",
                                  "bfp_quantize(int8_sym,block=8,rounding=sr,sr=c,k=4)",
                                  "bfp_quantize(int6_sym,block=16)"])
def test_certify_refarith_triton_mx_nvfp4(spec):
    from refarith.certify.runner import certify

    assert certify("refarith:triton", spec).passed


@pytest.mark.slow
def test_identify_refarith_triton_requantize():
    """identify ranks every requantization variant against the Triton kernel of one: that variant matches."""
    from refarith.certify.identify import identify

    scores = identify("refarith:triton", "requantize(variant=hawq_sim)")
    assert [s.spec for s in scores if s.mismatches == 0] == ["requantize(variant=hawq_sim)"]


def _words(ops: NumpyBitOps, a: np.ndarray) -> np.ndarray:
    """Signed integers as the graph's words (two's complement)."""
    return ops.word(np.asarray(a, dtype=np.int64).astype(np.uint64) & np.uint64(ops.mask))


def test_nvfp4_and_requantize_graphs_are_the_numpy_kernels():
    """The NVFP4 and requantization graphs, evaluated on numpy words without Triton, give the numpy backend's
    bits (so a Triton mismatch would be an emission or execution fault, not a tracing one); the emitted sources
    carry the graphs' digests."""
    from refarith.exact import requant as erq
    from refarith.fast import nvfp4 as fnv
    from refarith.fast import requant as frq

    rng = np.random.default_rng(3)
    x = (rng.standard_normal((8, 64)) * np.exp2(rng.integers(-140, 120, (8, 1)))).astype(np.float32)
    x[0, 2], x[1, :16] = np.inf, 0.0
    for division in ("reciprocal", "divide"):
        g = tbk.nvfp4_quantize_graph(division, "none")
        ops = NumpyBitOps(g.width)
        s, c = evaluate(g, ops, [ops.word(x.view(np.uint32).reshape(-1, 16).astype(np.uint64))])
        _, s0, c0 = fnv.nvfp4_quantize(x, division=division, levels=1)
        assert (np.asarray(s).astype(np.uint8) == s0.reshape(-1)).all()
        assert (np.asarray(c).astype(np.uint8) == c0.reshape(-1, 16)).all()
        assert g.digest in tb.emit_block_source(g, ["int32"], ["uint8", "uint8"])
    acc = rng.integers(-2 ** 31, 2 ** 31, 4000)
    acc[:4] = [-2 ** 31, 2 ** 31 - 1, 0, -1]
    for variant in erq.VARIANTS:
        m, sh = erq.multiplier_for(0.0123, variant)
        g = tbk.requantize_graph(variant)
        ops = NumpyBitOps(g.width)
        ins = [_words(ops, v) for v in (acc, np.full_like(acc, m), np.full_like(acc, sh), np.full_like(acc, -3))]
        (y,) = evaluate(g, ops, ins)
        got = np.asarray(y).astype(np.uint64).view(np.int64)
        assert (got == frq.requantize(acc, m, sh, variant, -3)).all(), variant
        assert g.digest in tb.emit_block_source(g, ["int32", "int64", "int64", "int32"], ["int32"])


# ------------------------------------------------------------------ the array-shim tracer itself
class _NpShim:
    """numpy itself as the ``xp`` the tracer stands in for (the expected semantics)."""

    name = "numpy"
    where, maximum, minimum = staticmethod(np.where), staticmethod(np.maximum), staticmethod(np.minimum)

    @staticmethod
    def i64(x):
        return np.asarray(x).astype(np.int64)

    @staticmethod
    def i32(x):
        return np.asarray(x).astype(np.int32)

    @staticmethod
    def take(table, idx):
        return np.take(table, idx)


def _ops_kernel(xp, a, b, s):
    """Every operator the tracer records, on int32 arrays a, b (b != 0) and shift counts 0 <= s < 32."""
    out = [a + b, a - b, a * b, a << s, a >> s, b >> 3, a // b, 7 // b, a & b, a | b, a ^ b, ~a, -a,
           xp.where(a < b, a, b), xp.maximum(a, b), xp.minimum(a, -5), (a >= b) + a, (a == b) | (a != 3),
           xp.i64(a) * xp.i64(b) >> 40, xp.i32(xp.i64(a) * 3 + (1 << 33)), (a > 0) & (b <= 0), 1 << s]
    return tuple(xp.where(o, 1, 0) if o.dtype == bool else o for o in out)


def test_tracer_restates_numpy_integer_semantics():
    """A kernel using every traced operator (wrapping int32 arithmetic, arithmetic shifts, floor division of
    negative values, signed comparisons, bool arithmetic, int64 widening and narrowing) traced once and evaluated
    on numpy words equals numpy's own int32/int64 results on the same random and extreme values."""
    from refarith.fast.xptrace import trace_xp

    rng = np.random.default_rng(4)
    a = rng.integers(-2 ** 31, 2 ** 31, 3000).astype(np.int32)
    b = rng.integers(-2 ** 31, 2 ** 31, 3000).astype(np.int32)
    a[:6] = [-2 ** 31, 2 ** 31 - 1, 0, -1, 7, -7]
    b[:6] = [-1, 2, 3, -2 ** 31, -2, 2]
    b[b == 0] = 1
    s = rng.integers(0, 32, 3000).astype(np.int32)
    with np.errstate(over="ignore"):
        want = _ops_kernel(_NpShim(), a, b, s)
    g = trace_xp(_ops_kernel, [("a", 0, 32), ("b", 0, 32), ("s", 0, 32)], "ops")
    assert g.width == 64  # the int64 operations widen the words
    ops = NumpyBitOps(64)
    got = evaluate(g, ops, [_words(ops, v) for v in (a, b, s)])
    for j, (x, y) in enumerate(zip(got, want, strict=True)):
        bits = 64 if y.dtype == np.int64 else 32
        gx = np.asarray(x, dtype=np.uint64) & np.uint64((1 << bits) - 1)
        wy = y.astype(np.int64).astype(np.uint64) & np.uint64((1 << bits) - 1)
        assert (gx == wy).all(), f"operation {j}"


def test_bad_input_is_named():
    """Bad arguments and untraceable kernels raise one clear error."""
    from refarith.errors import BadValueError, UnknownModeError
    from refarith.fast.xptrace import trace_xp

    x = torch.zeros(4, 32)
    with pytest.raises(BadValueError, match="block size"):
        tbk.mx_quantize(x, "ocp_e4m3", block=0)
    with pytest.raises(UnknownModeError, match="scale rule"):
        tbk.mx_quantize(x, "ocp_e4m3", scale="nearest")
    with pytest.raises(BadValueError, match="per-tensor scale"):
        tbk.nvfp4_quantize(x, tensor_scale=-1.0)
    with pytest.raises(BadValueError, match="multiplier"):
        tbk.requantize(torch.zeros(3, dtype=torch.int64), 1 << 31, 0, "tflite_double_rounding")
    with pytest.raises(BadValueError, match="branched"):
        trace_xp(lambda xp, v: v if v > 0 else -v, [("v", 0, 32)], "branchy")
    tab = np.arange(4, dtype=np.int32)
    with pytest.raises(BadValueError, match="branched on a table value"):
        trace_xp(lambda xp, v: v if (xp.t.as_tensor(tab) * 2 > 1) else v, [("v", 1, 32)], "branchy table")
    with pytest.raises(BadValueError, match="gather from code tables"):
        trace_xp(lambda xp, v: xp.take(v, v), [("v", 1, 32)], "take of a word")


@pytest.mark.parametrize("scale,step", [("floor", 64), pytest.param("floor", 1, marks=pytest.mark.slow),
                                        pytest.param("ceil", 1, marks=pytest.mark.slow),
                                        pytest.param("even", 1, marks=pytest.mark.slow),
                                        pytest.param("rceil", 1, marks=pytest.mark.slow)])
def test_mx_block_max_and_scale_every_binary16_amax(scale, step):
    """The hand-emitted block reduction and the traced scale rule: for every positive finite binary16 magnitude
    (every ``step``-th by default) as the block maximum, in every lane position, with the other 31 lanes smaller
    magnitudes of random sign, the scale code is the exact model's scale_exponent(amax) + 127."""
    from fractions import Fraction

    rng = np.random.default_rng(6)
    h = np.arange(1, 0x7C00, step, dtype=np.uint16)
    amax = h.view(np.float16).astype(np.float32)
    frac = rng.random((h.size, 32)).astype(np.float32)
    x = (amax[:, None] * frac * np.where(rng.random((h.size, 32)) < 0.5, -1, 1)).astype(np.float32)
    lane = np.arange(h.size) % 32
    x[np.arange(h.size), lane] = amax * np.where(np.arange(h.size) % 3 == 0, -1, 1)
    assert (np.abs(x) <= amax[:, None]).all()
    s, _ = tbk.mx_quantize(torch.from_numpy(x), "ocp_e4m3", scale=scale)
    fmt = emx.mx_element("ocp_e4m3")
    want = np.array([emx.scale_exponent(Fraction(float(a)), fmt, scale) + 127 for a in amax], dtype=np.int64)
    _mismatch(s.numpy()[:, 0].astype(np.int64), want, f"mx scale={scale}")


# ------------------------------------------------------------------ block floating point
def _bfp_hard(k: int) -> np.ndarray:
    """Blocks of 8 at the hard places of stochastic BFP rounding (scale 1: the integers below 2^7), the driver's
    blocks, plus a block with a zero maximum."""
    from refarith.golden.opdrivers.blocksr import hard_blocks

    b = hard_blocks([float(i) for i in range(128)], 127.0, k, 11)
    return np.concatenate([b, np.zeros((1, 8), np.float32)]).astype(np.float32)


@pytest.mark.parametrize("variant,k", [("c", 4)] + [pytest.param(*vk, marks=pytest.mark.slow) for vk in
                                                   (("a", 4), ("c_odd", 40), ("b", 3), ("a", 1))])
def test_bfp_sr_against_exact_model(variant, k):
    """Triton BFP (p = 8, blocks of 8) with the caller's random integers: every block's shared exponent and
    mantissas equal :func:`refarith.exact.bfp.quantize_block` with the same integers (hard blocks, uniform r and
    all 2^k - 1)."""
    from refarith.exact import bfp as ebfp

    x = _bfp_hard(k)[::3] if variant != "c" else _bfp_hard(k)
    rng = np.random.default_rng(k)
    for r in (rng.integers(0, 1 << k, x.shape, dtype=np.int64), np.full(x.shape, (1 << k) - 1, np.int64)):
        e, m = tbk.bfp_quantize(torch.from_numpy(x), 8, 8, "sr", rand=torch.from_numpy(r), rand_bits=k,
                                sr_variant=variant)
        for i in range(len(x)):
            blk = ebfp.quantize_block([float(v) for v in x[i]], 8, "sr", rand=[int(v) for v in r[i]], rand_bits=k,
                                      sr_variant=variant)
            assert (int(e[i, 0]), [int(v) for v in m[i]]) == (blk.exp, list(blk.m)), (i, variant, k)


def test_bfp_rne_axis_ragged():
    """Deterministic Triton BFP along axis 0 with a ragged last block of a block size that is not a power of two:
    the exact model block by block."""
    from refarith.exact import bfp as ebfp

    rng = np.random.default_rng(9)
    x = (rng.standard_normal((23, 3)) * np.exp2(rng.integers(-30, 30, (1, 3)))).astype(np.float32)
    e, m = tbk.bfp_quantize(torch.from_numpy(x), 6, 10, "rne", axis=0)
    assert tuple(e.shape) == (3, 3) and tuple(m.shape) == x.shape
    for j in range(3):
        for b in range(3):
            blk = ebfp.quantize_block([float(v) for v in x[b * 10:(b + 1) * 10, j]], 6, "rne")
            assert int(e[b, j]) == blk.exp and [int(v) for v in m[b * 10:(b + 1) * 10, j]] == list(blk.m)


def test_bfp_graph_is_the_numpy_kernel(monkeypatch):
    """The BFP graph is made by calling ``refarith.fast.bfp.quantize_blocks`` on the tracer; on numpy words it
    gives the numpy backend's bits; variant and k make distinct graphs."""
    from refarith.fast import bfp as fbfp

    calls = []
    real = fbfp.quantize_blocks

    def spy(bits, p, rounding, xp, sr=None):
        calls.append((xp.name, p, rounding, None if sr is None else sr[1:]))
        return real(bits, p, rounding, xp, sr)

    monkeypatch.setattr(fbfp, "quantize_blocks", spy)
    g = tbk.bfp_quantize_graph.__wrapped__(8, "sr", (4, "c"))
    monkeypatch.undo()
    assert calls == [("trace", 8, "sr", (4, "c"))] and g.inputs == ("x", "r") and g.width == 64
    assert len({tbk.bfp_quantize_graph(8, "sr", (4, "c")).digest, tbk.bfp_quantize_graph(8, "sr", (4, "a")).digest,
                tbk.bfp_quantize_graph(8, "sr", (5, "c")).digest}) == 3
    x = _bfp_hard(4)
    r = np.random.default_rng(3).integers(0, 16, x.shape)
    ops = NumpyBitOps(64)
    e, m = evaluate(g, ops, [ops.word(x.view(np.uint32)), ops.word(r.astype(np.uint64))])
    e0, m0 = fbfp.quantize(x, 8, 8, "sr", rand=r, rand_bits=4, sr_variant="c")
    assert (np.asarray(e).astype(np.int64).astype(np.int32) == e0[:, 0]).all()
    assert (np.asarray(m).astype(np.int64).astype(np.int32) == m0).all()


def test_bfp_golden_file():
    """The committed stochastic BFP golden file: Triton gives the file's exponents and mantissas with its random
    integers."""
    names = _golden("bfp_quantize")
    srs = [n for n in names if _is_sr(n)]
    assert srs
    for name in srs:
        gf = _load(name)
        p = gf.spec.param
        cols, sr = _sr_kw(gf, int(p["block"]))
        x = np.stack(cols, axis=1).astype(np.uint32).view(np.float32)
        sr["rand"] = torch.from_numpy(sr["rand"])
        e, m = tbk.bfp_quantize(torch.from_numpy(x), gf.spec.fmt(0).bits, int(p["block"]), "sr", **sr)
        _mismatch(e.numpy()[:, 0].astype(np.int64) & 0xFFFFFFFF, gf.outputs[:, 0].astype(np.int64), f"{name} exp")
        _mismatch(m.numpy().astype(np.int64) & 0xFF, gf.outputs[:, 1:].astype(np.int64), f"{name} mantissas")


def test_bfp_bad_input_is_named():
    """Bad input to the Triton BFP kernel: one line naming the problem, as on numpy."""
    from refarith.errors import SpecialValueError, UnknownModeError

    x = torch.ones(8)
    with pytest.raises(UnknownModeError, match="random bits|rand"):
        tbk.bfp_quantize(x, 8, 8, "sr", rand_bits=4)
    with pytest.raises(UnknownModeError, match="not stochastic"):
        tbk.bfp_quantize(x, 8, 8, "rne", rand=torch.zeros(8, dtype=torch.int64))
    with pytest.raises(UnknownModeError, match="unknown rounding"):
        tbk.bfp_quantize(x, 8, 8, "nearest")
    with pytest.raises(SpecialValueError, match="NaN and infinity"):
        tbk.bfp_quantize(torch.tensor([1.0, float("inf")]), 8, 8)
