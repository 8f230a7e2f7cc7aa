"""The Triton backend (traced cast graphs emitted as Triton kernels), run by Triton's interpreter on CPU tensors.

Expected codes: the committed golden vectors (generated from the exact model, hashes checked) for every cast
spec they hold, and elsewhere the proved bit-level kernel ``cast_bits`` evaluated on numpy words — the kernel the
cast theorems prove equal to the spec for every input.  The same graph drives the Triton kernel, so these tests
check the emission and Triton's execution of it, exhaustively on every 16-bit source domain they cover.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: the triton backend takes torch tensors")
pytest.importorskip("triton", reason="triton not installed: pip install 'refarith[triton]'")

from refarith.errors import BadValueError, SpecialValueError  # noqa: E402
from refarith.exact.rounding import cast_default_overflow, default_negative  # noqa: E402
from refarith.fast import cast as fast_cast  # noqa: E402
from refarith.fast import triton_backend as tb  # noqa: E402
from refarith.fast.bitops import NumpyBitOps  # noqa: E402
from refarith.fast.castkernel import MAX_DST_BITS, cast_bits, required_width  # noqa: E402
from refarith.fast.graphs import cast_graph  # noqa: E402
from refarith.fast.trace import TracingBitOps, evaluate, trace  # noqa: E402
from refarith.formats import FloatFormat, IntFormat, float_formats, get_format  # noqa: E402
from refarith.golden import fileformat as ff  # noqa: E402
from refarith.golden.generate import default_dir  # noqa: E402
from refarith.spec import parse_spec  # noqa: E402


def _codes_tensor(codes: np.ndarray, fmt) -> torch.Tensor:
    """Source bit patterns as the narrowest signed torch integer tensor holding them (as a kernel reads memory)."""
    nb = fmt.nbits
    if nb <= 8:
        return torch.from_numpy(codes.astype(np.uint8))
    if nb <= 16:
        return torch.from_numpy(codes.astype(np.uint16).view(np.int16))
    if nb <= 32:
        return torch.from_numpy(codes.astype(np.uint32).view(np.int32))
    return torch.from_numpy(codes.astype(np.uint64).view(np.int64))


def triton_cast(codes: np.ndarray, src: str, dst: str, rounding="rne", overflow=None, nan_policy="error",
                negative=None, r=None, rand_bits=None, sr_variant="a") -> np.ndarray:
    """Triton kernel codes, -1 where its error mask is set (overflow and negative default to the target's own
    rules, as in the exact model and cast_bits)."""
    sf, df = get_format(src), get_format(dst)
    ov = overflow or cast_default_overflow(df)
    neg = negative or default_negative(df)
    rt = None if r is None else torch.from_numpy(np.asarray(r, dtype=np.int64))
    out, err = tb.cast_codes(_codes_tensor(codes, sf), sf, df, rounding, ov, nan_policy, neg, rt, rand_bits,
                             sr_variant)
    return np.where(err.numpy(), -1, out.numpy().astype(np.int64))


def kernel_cast(codes: np.ndarray, src: str, dst: str, rounding="rne", overflow=None, nan_policy="error",
                negative=None, r=None, rand_bits=None) -> np.ndarray:
    """The proved kernel on numpy words, -1 where its error mask is set."""
    ops = NumpyBitOps(required_width(src, dst, rand_bits if rounding == "sr" else None))
    x = ops.word(codes)
    res, err = cast_bits(ops, x, src, dst, rounding, overflow, nan_policy, negative,
                         None if r is None else ops.word(np.asarray(r)), rand_bits if rounding == "sr" else None)
    res = np.broadcast_to(res, x.shape).astype(np.int64)
    return np.where(np.broadcast_to(err, x.shape), -1, res)


def assert_same(got, want, codes, what: str) -> None:
    bad = np.flatnonzero(np.asarray(got) != np.asarray(want))
    if bad.size:
        i = bad[0]
        raise AssertionError(f"{what}: {bad.size} mismatches; first input {int(np.asarray(codes).reshape(-1)[i]):#x}:"
                             f" triton {got[i]}, expected {want[i]} (-1 = the spec raises)")


# ------------------------------------------------------------------ committed golden vectors
def _covered(spec) -> bool:
    src, dst = (get_format(f) for f in spec.formats)
    return (isinstance(dst, FloatFormat) and dst.nbits <= MAX_DST_BITS
            and isinstance(src, (FloatFormat, IntFormat)) and src.nbits <= 64)


def _golden_cast_files() -> list[str]:
    d = default_dir()
    manifest = json.loads((d / "MANIFEST.json").read_text())
    return sorted(n for n, e in manifest["files"].items()
                  if n.startswith("cast__") and _covered(parse_spec(e["spec"])))


GOLDEN = _golden_cast_files()


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_cast_file(name):
    """Every committed cast golden vector the cast kernel covers: the Triton backend gives the file's codes and
    raises exactly where the file says the spec raises."""
    d = default_dir()
    manifest = json.loads((d / "MANIFEST.json").read_text())
    entry = manifest["files"][name]
    gf = ff.load(d / name, entry["sha256"])
    spec = gf.spec
    p = dict(spec.params)
    src, dst = spec.formats
    kw = dict(rounding=p.get("rounding", "rne"), overflow=p.get("overflow"), nan_policy=p.get("nan", "error"),
              negative=p.get("negative"))
    if kw["rounding"] == "sr":  # the random integers are the file's last input column
        kw.update(r=gf.inputs[1], rand_bits=int(p["k"]), sr_variant=p.get("sr", "a"))
    got = triton_cast(gf.inputs[0], src, dst, **kw)
    want = np.where(gf.raises, -1, gf.outputs[:, 0].astype(np.int64))
    assert_same(got, want, gf.inputs[0], str(spec))


def test_golden_files_cover_the_kernel():
    """The golden set holds cast specs the Triton backend covers, from 16- and 32-bit sources (the test above
    cannot pass vacuously)."""
    srcs = set()
    for name in GOLDEN:
        sp = name.split("__")[1].split("_to_")[0]
        srcs.add(sp)
    assert {"binary16", "bfloat16", "binary32"} <= srcs
    assert len(GOLDEN) >= 100


# ------------------------------------------------------------------ every 16-bit source domain
ALL16 = np.arange(1 << 16, dtype=np.uint64)
TARGETS8 = [f.name for f in float_formats(8)] + ["ue5m3", "bfloat16", "binary16"]
REPRESENTATIVE = ["ocp_e4m3", "ocp_e5m2", "ocp_e2m1", "e8m0", "binary8p3se"]


def _golden_exhaustive(src: str) -> set[str]:
    """Targets whose rne cast from ``src`` has a committed exhaustive golden file (checked by the golden test)."""
    manifest = json.loads((default_dir() / "MANIFEST.json").read_text())
    out = set()
    for e in manifest["files"].values():
        sp = parse_spec(e["spec"])
        if sp.op == "cast" and sp.formats[0] == src and dict(sp.params).get("rounding") == "rne" \
                and e["rule"] == "exhaustive":
            out.add(sp.formats[1])
    return out


def _modes(dst: str) -> list[dict]:
    f = get_format(dst)
    out = []
    for rounding in ("rne", "rna", "rtz", "rup", "rdn", "rto"):
        for ov in ("saturate", "inf", "nan"):
            if (ov == "inf" and not f.has_inf) or (ov == "nan" and not f.has_nan):
                continue
            out.append(dict(rounding=rounding, overflow=ov))
    if not f.has_nan:
        out += [dict(nan_policy="zero"), dict(nan_policy="max")]
    if not f.signed:
        out += [dict(negative="clamp")]
    return out


@pytest.mark.parametrize("src,dst", [(s, d) for s in ("binary16", "bfloat16") for covered in [_golden_exhaustive(s)]
                                     for d in TARGETS8 if d not in covered])
def test_16bit_sources_exhaustive_default_modes(src, dst):
    """All 2^16 source codes, rne and the target's default overflow, for the targets without a committed
    exhaustive golden file (those are checked against the file above): Triton == the proved kernel."""
    assert_same(triton_cast(ALL16, src, dst), kernel_cast(ALL16, src, dst), ALL16, f"{src}->{dst}")


@pytest.mark.parametrize("src", ["binary16", "bfloat16"])
@pytest.mark.parametrize("dst", REPRESENTATIVE)
def test_16bit_sources_exhaustive_mode_matrix(src, dst):
    """All 2^16 codes in every deterministic rounding mode x overflow mode and every NaN/negative policy."""
    for kw in _modes(dst):
        assert_same(triton_cast(ALL16, src, dst, **kw), kernel_cast(ALL16, src, dst, **kw), ALL16,
                    f"{src}->{dst} {kw}")


@pytest.mark.slow
@pytest.mark.parametrize("src", ["binary16", "bfloat16"])
@pytest.mark.parametrize("dst", [d for d in TARGETS8 if d not in REPRESENTATIVE])
def test_16bit_sources_exhaustive_mode_matrix_all_targets(src, dst):
    """Every deterministic mode and policy into every other target (the default run covers five)."""
    for kw in _modes(dst):
        assert_same(triton_cast(ALL16, src, dst, **kw), kernel_cast(ALL16, src, dst, **kw), ALL16,
                    f"{src}->{dst} {kw}")


@pytest.mark.parametrize("src,dst,k", [("ocp_e4m3", "ocp_e2m1", 8), ("ocp_e5m2", "ocp_e4m3", 8),
                                       ("ocp_e4m3", "e8m0", 8), ("binary8p4se", "ocp_e3m2", 8)])
def test_stochastic_rounding_every_pair(src, dst, k):
    """Stochastic rounding from an 8-bit source: every (code, r) pair, 2^16 of them, in every overflow mode."""
    x = np.repeat(np.arange(256, dtype=np.uint64), 1 << k)
    r = np.tile(np.arange(1 << k, dtype=np.int64), 256)
    f = get_format(dst)
    for ov in ("saturate", "inf", "nan"):
        if (ov == "inf" and not f.has_inf) or (ov == "nan" and not f.has_nan):
            continue
        kw = dict(rounding="sr", overflow=ov, nan_policy="zero" if not f.has_nan else "error", rand_bits=k)
        assert_same(triton_cast(x, src, dst, r=r, **kw), kernel_cast(x, src, dst, r=r, **kw), x,
                    f"{src}->{dst} sr k={k} {ov}")


def test_stochastic_rounding_binary16_sample():
    """binary16 -> e4m3 with k = 4 random bits: every code with each of its 16 random integers (2^20 pairs)."""
    x = np.repeat(ALL16, 16)
    r = np.tile(np.arange(16, dtype=np.int64), 1 << 16)
    kw = dict(rounding="sr", overflow="nan", rand_bits=4)
    assert_same(triton_cast(x, "binary16", "ocp_e4m3", r=r, **kw), kernel_cast(x, "binary16", "ocp_e4m3", r=r, **kw),
                x, "binary16->ocp_e4m3 sr")


def test_wide_words_binary64_and_integers():
    """64-bit word kernels (binary64 and integer sources): boundary and random patterns."""
    rng = np.random.default_rng(7)
    f64 = np.concatenate([rng.integers(0, 1 << 63, 1 << 15, dtype=np.uint64) * np.uint64(2)
                          + rng.integers(0, 2, 1 << 15, dtype=np.uint64),
                          np.array([0, 1, 0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000,
                                    0x8000000000000000, 0x3FF0000000000000], dtype=np.uint64)])
    for dst in ("ocp_e4m3", "ocp_e5m2", "binary16", "e8m0"):
        kw = dict(negative="clamp") if not get_format(dst).signed else {}
        assert_same(triton_cast(f64, "binary64", dst, **kw), kernel_cast(f64, "binary64", dst, **kw), f64,
                    f"binary64->{dst}")
    i16 = np.arange(1 << 16, dtype=np.uint64)
    for dst in ("ocp_e4m3", "binary16", "bfloat16"):
        assert_same(triton_cast(i16, "int16", dst), kernel_cast(i16, "int16", dst), i16, f"int16->{dst}")


# ------------------------------------------------------------------ the public encode
def test_encode_matches_torch_backend_on_float_tensors():
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 1 << 32, 1 << 16, dtype=np.uint64).astype(np.uint32)
    x = torch.from_numpy(bits.view(np.float32).copy())
    x = torch.where(torch.isnan(x), torch.zeros_like(x), x)
    for dst in ("ocp_e4m3", "ocp_e2m1", "bfloat16"):
        got = tb.encode(x, dst)
        want = fast_cast.encode(x, dst, backend="torch")
        assert got.dtype == want.dtype and got.shape == want.shape
        assert torch.equal(got, want), dst
    x2 = x.reshape(256, 256).to(torch.bfloat16)
    got = tb.encode(x2, "ocp_e5m2", rounding="rup")
    assert got.shape == (256, 256)
    assert torch.equal(got, fast_cast.encode(x2, "ocp_e5m2", rounding="rup", backend="torch"))


def test_encode_raises_where_the_spec_raises():
    with pytest.raises(SpecialValueError, match="element 1"):
        tb.encode(torch.tensor([1.0, float("nan"), 2.0]), "ocp_e2m1")
    with pytest.raises(SpecialValueError, match="element 0"):
        tb.encode(torch.tensor([-1.0]), "e8m0")
    assert int(tb.encode(torch.tensor([-1.0]), "e8m0", negative="clamp")[0]) == 0


def test_empty_and_bad_inputs():
    assert tb.encode(torch.empty(0), "ocp_e4m3").shape == (0,)
    with pytest.raises(BadValueError, match="complex64"):
        tb.encode(torch.zeros(2, dtype=torch.complex64), "ocp_e4m3")


# ------------------------------------------------------------------ emission, caching, errors
def test_graph_digest_is_in_the_emitted_kernel():
    g = cast_graph("binary32", "ocp_e4m3", "rne", "nan")
    src = tb.emit_source(g, ["int32"], ["uint8", "bool"])
    assert g.digest in src
    ck = tb.compile_graph(g, ("int32",), ("uint8", "bool"), interpreted=True)
    assert ck.graph_digest == g.digest
    assert ck.source_path.read_text() == src
    assert tb.compile_graph(g, ("int32",), ("uint8", "bool"), interpreted=True) is ck  # compiled once, cached


def test_graph_evaluates_like_the_kernel_on_numpy():
    """The graph is a faithful recording: replayed on numpy words it equals the kernel run directly."""
    rng = np.random.default_rng(11)
    x = rng.integers(0, 1 << 32, 1 << 16, dtype=np.uint64).astype(np.uint32)
    ops = NumpyBitOps(32)
    for dst, rnd in (("ocp_e4m3", "rne"), ("ocp_e2m1", "rdn"), ("binary16", "rto")):
        g = cast_graph("binary32", dst, rnd)
        a = evaluate(g, ops, [x])
        b = cast_bits(ops, x, "binary32", dst, rnd)
        for p, q in zip(a, b):
            assert np.array_equal(np.broadcast_to(p, x.shape), np.broadcast_to(q, x.shape))


def test_tracing_refuses_data_dependent_control_flow():
    def bad(ops, x):
        if ops.eq(x, ops.const(0)):
            return x
        return ops.add(x, ops.const(1))

    with pytest.raises(BadValueError, match="static data"):
        trace(bad, 32, ("x",))


def test_tracing_checks_operand_kinds():
    ops = TracingBitOps(32)
    x = ops.input()
    with pytest.raises(BadValueError, match="expected a word"):
        ops.add(ops.eq(x, x), x)
    with pytest.raises(BadValueError, match="static shift"):
        ops.shl(x, 32)


def test_distinct_specs_have_distinct_graphs():
    digests = {cast_graph("binary32", "ocp_e4m3", r).digest for r in ("rne", "rna", "rtz", "rup", "rdn", "rto")}
    assert len(digests) == 6


def test_launch_failure_names_graph_and_source(monkeypatch):
    g = cast_graph("binary32", "ocp_e5m2")
    ck = tb.compile_graph(g, ("int32",), ("uint8", "bool"), interpreted=True)

    class Boom:
        def __getitem__(self, grid):
            def run(*a, **k):
                raise RuntimeError("launch refused")
            return run

    monkeypatch.setattr(ck, "fn", Boom())
    x = torch.zeros(4, dtype=torch.int32)
    with pytest.raises(tb.TritonError, match=r"ocp_e5m2.*launch refused.*emitted source .*\.py"):
        ck([x], [torch.empty(4, dtype=torch.uint8), torch.empty(4, dtype=torch.bool)], 4)


def test_unsupported_device_is_refused():
    g = cast_graph("binary32", "ocp_e4m3")
    x = torch.zeros(4, dtype=torch.int32, device="meta")
    with pytest.raises(tb.TritonError, match="meta"):
        tb.run_graph(g, [x], ["int32"], [torch.uint8, torch.bool])


def test_cache_dir_override(tmp_path, monkeypatch):
    monkeypatch.setenv("REFARITH_CACHE", str(tmp_path))
    assert tb.cache_dir() == tmp_path / "triton"


# ------------------------------------------------------------------ Triton's own conversions (a peer)
def test_triton_interpreter_float8_findings():
    """The committed certificate's headline vectors: Triton 3.9's interpreter conversion to float8e4nv differs from
    OFP8 E4M3 (RNE, overflow to NaN) at the overflow midpoint, at infinity and for tiny subnormals."""
    import triton

    if not triton.__version__.startswith("3.9."):
        pytest.skip(f"findings recorded for triton 3.9, this is {triton.__version__}")
    from refarith.certify.runner import certify
    from refarith.certify.triton_peer import convert

    x = torch.tensor([1.0, 448.0, 464.0, float("inf"), 3 * 2.0**-149], dtype=torch.float32)
    got = convert(x, "float8e4nv").tolist()
    want = [int(fast_cast.encode(v, "ocp_e4m3")) for v in x.tolist()]
    assert want == [0x38, 0x7E, 0x7E, 0x7F, 0x00]
    assert got == [0x38, 0x7E, 0x7F, 0x78, 0x04]
    assert not certify("triton:float8e4nv", "cast(binary32->ocp_e4m3)").passed


def test_the_proved_theorem_and_the_emitted_kernel_are_one_graph():
    """The registry theorem cast.binary32->ocp_e4m3.rne reads the graphs of cast_graph (one per overflow mode) and
    names their digests; encoding with backend='triton' compiles and runs a kernel of one of those digests."""
    pytest.importorskip("z3", reason="z3 not installed: the theorem cannot run")
    from refarith.smt import registry

    th = registry.load_all()["cast.binary32->ocp_e4m3.rne"]
    res = registry.run_one(th)
    assert res.ok and res.verdict == "proved"
    proved = set(res.detail.split("graphs ")[1].split()[0].split(","))
    assert len(proved) == 2  # overflow=saturate and overflow=nan
    g = cast_graph("binary32", "ocp_e4m3", "rne", "nan")
    assert g.digest in proved
    x = torch.tensor([1.0, 464.0, -3e-3])
    from refarith import exact

    want = [exact.encode(v, "ocp_e4m3", overflow="nan").code for v in x.tolist()]
    assert want == [0x38, 0x7E, 0x82]
    assert tb.encode(x, "ocp_e4m3", overflow="nan").tolist() == want
    ran = {ck.graph_digest for ck in tb._CACHE.values()}
    assert g.digest in ran
    src = tb.compile_graph(g, ("int32",), ("uint8", "bool"), interpreted=True).source_path.read_text()
    assert g.digest in src
