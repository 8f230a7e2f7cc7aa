"""Integer quantization on Triton (refarith.fast.triton_blocks.int_quantize), under Triton's interpreter on CPU
tensors.

Expected values come from the exact model: the committed golden files (through ``certify refarith:triton``) and
:func:`refarith.exact.intquant.quantize_group` with the same random integers.  The numpy backend is used only to
tie the traced graph (evaluated on numpy words) to the code it was traced from.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: the triton backend takes torch tensors")
pytest.importorskip("triton", reason="triton not installed: pip install 'refarith[triton]'")

from refarith.errors import BadValueError, SpecialValueError, UnknownModeError  # noqa: E402
from refarith.exact import intquant as eiq  # noqa: E402
from refarith.fast import intquant as fiq  # noqa: E402
from refarith.fast import triton_backend as tb  # noqa: E402
from refarith.fast import triton_blocks as tbk  # noqa: E402
from refarith.fast.bitops import NumpyBitOps  # noqa: E402
from refarith.fast.mx import ops  # noqa: E402
from refarith.fast.trace import evaluate  # noqa: E402

GOLDEN = [
    "int_quantize(int8)",
    pytest.param("int_quantize(int4,granularity=group,group=32)", marks=pytest.mark.slow),
    pytest.param("int_quantize(int4,clip=full)", marks=pytest.mark.slow),
    pytest.param("int_quantize(int8,scheme=asymmetric,granularity=channel)", marks=pytest.mark.slow),
    pytest.param("int_quantize(int4,scheme=asymmetric,rounding=sr,sr=c,k=4)", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("spec", GOLDEN)
def test_certify_refarith_triton_on_golden_files(spec, monkeypatch):
    """Every committed int_quantize golden file (the stochastic one with its random-integer columns), through
    the driver's Triton branch; the INT8 per-tensor file by default, the rest under ``slow``."""
    from refarith.certify import certify

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    c = certify("refarith:triton", spec)
    assert c.passed and c.stages[0].vectors > 500


def _exact(rows, bits, scheme, clip, rounding, r=None, k=None, variant="a"):
    out = []
    for i, row in enumerate(rows):
        kw = {} if r is None else dict(rand=[int(t) for t in r[i]], rand_bits=k, sr_variant=variant)
        out.append(eiq.quantize_group([float(v) for v in row], bits, scheme, clip, rounding, **kw))
    return out


def _rows(rng) -> np.ndarray:
    """Groups of 16 over the binary32 range: zeros, an all-zero group, subnormals, exact ties of a power-of-two
    scale (amax = qmax 2^p), maxima just below a power of two, both signs."""
    x = (rng.standard_normal((10, 16)) * np.exp2(rng.integers(-150, 120, (10, 1)))).astype(np.float32)
    x[0] = 0
    x[1, :4] = np.float32(1.5e-44)
    x[2] = np.float32(np.arange(16) - 7.5) * np.float32(2.0 ** -3)
    x[2, 0] = np.float32(7 * 2.0 ** -3)
    x[3, 0] = np.nextafter(np.float32(2.0), np.float32(0))
    x[4] = np.abs(x[4])
    return x


def _agree(got, groups) -> None:
    s, z, q = (t.numpy() for t in got)
    assert [Fraction(float(v)) for v in s] == [g.scale for g in groups]
    assert z.tolist() == [g.zero_point for g in groups]
    assert q.tolist() == [list(g.q) for g in groups]


@pytest.mark.slow
@pytest.mark.parametrize("scheme,clip,bits,variant,k", [("symmetric", "symmetric", 8, "c", 4),
                                                        ("symmetric", "full", 4, "te_e2m1_8", 8),
                                                        ("asymmetric", "symmetric", 16, "a", 4)])
def test_against_exact_model(scheme, clip, bits, variant, k):
    """``backend="triton"`` equals the exact model on hard groups, both roundings, and stochastic rounding on the
    same groups with uniform random integers."""
    rng = np.random.default_rng(bits)
    x = _rows(rng)
    for rounding in ("rne", "rna"):
        got = fiq.quantize(torch.from_numpy(x), bits, scheme, "group", 16, clip, rounding, backend="triton")
        _agree(got, _exact(x, bits, scheme, clip, rounding))
    _sr_case(x, bits, scheme, clip, variant, k, rng)


@pytest.mark.slow
def test_sr_against_exact_model():
    """The 64-bit stochastic graph (by default only evaluated on numpy words, test_graph_is_the_numpy_kernel):
    asymmetric INT4 (the zero point rounded to nearest even), rule c,
    k = 4, on the hard groups, uniform random integers and all 2^k - 1 in one launch."""
    rng = np.random.default_rng(40)
    x = _rows(rng)
    _sr_case(np.concatenate([x, x]), 4, "asymmetric", "symmetric", "c", 4, rng, top=len(x))


def _sr_case(x, bits, scheme, clip, variant, k, rng, top=None):
    """Stochastic rounding of the groups ``x`` on Triton against the exact model (rows from ``top`` on with
    r = 2^k - 1)."""
    r = rng.integers(0, 1 << k, x.shape)
    if top is not None:
        r[top:] = (1 << k) - 1
    got = fiq.quantize(torch.from_numpy(x), bits, scheme, "group", 16, clip, "sr", rand=torch.from_numpy(r),
                       rand_bits=k, sr_variant=variant, backend="triton")
    _agree(got, _exact(x, bits, scheme, clip, "sr", r, k, variant))


def test_long_groups_span_rows_and_layouts():
    """A tensor-granularity group longer than one kernel row (INT_ROW), and channel / ragged group layouts: the
    same scales, zero points and codes as the exact model."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(tbk.INT_ROW * 2 + 37) * 3).astype(np.float32)
    s, z, q = tbk.int_quantize(torch.from_numpy(x), 4, "asymmetric", "tensor")
    g = eiq.quantize_group([float(v) for v in x], 4, "asymmetric")
    assert Fraction(float(s[0])) == g.scale and int(z[0]) == g.zero_point and q.tolist() == list(g.q)
    y = (rng.standard_normal((3, 10)) * 5).astype(np.float32)
    s, z, q = tbk.int_quantize(torch.from_numpy(y), 8, "asymmetric", "channel", axis=0)
    _agree((s, z, q), _exact(y, 8, "asymmetric", "symmetric", "rne"))
    s, z, q = tbk.int_quantize(torch.from_numpy(y), 4, "symmetric", "group", 4, rounding="rna")
    for i, (lo, hi) in enumerate([(0, 4), (4, 8), (8, 10)]):
        _agree((s[i::3], z[i::3], q[:, lo:hi]), _exact(y[:, lo:hi], 4, "symmetric", "symmetric", "rna"))


def test_graph_is_the_numpy_kernel(monkeypatch):
    """One source: the graph is made by calling ``quantize_words`` on the tracer; evaluated on numpy words it gives
    the numpy backend's bits; the emitted source carries its digest; another rounding or k is another graph."""
    calls = []
    real = fiq.quantize_words

    def spy(b, hi, lo, nbits, scheme, clip, rounding, xp, sr=None):
        calls.append((xp.name, rounding, None if sr is None else sr[1:]))
        return real(b, hi, lo, nbits, scheme, clip, rounding, xp, sr)

    monkeypatch.setattr(fiq, "quantize_words", spy)
    g = tbk.int_quantize_graph.__wrapped__(8, "asymmetric", "symmetric", "sr", (5, "b"))
    monkeypatch.undo()
    assert calls == [("trace", "sr", (5, "b"))] and g.inputs == ("x", "hi", "lo", "r") and g.width == 64
    assert g.digest == tbk.int_quantize_graph(8, "asymmetric", "symmetric", "sr", (5, "b")).digest
    assert len({g.digest, tbk.int_quantize_graph(8, "asymmetric", "symmetric", "sr", (6, "b")).digest,
                tbk.int_quantize_graph(8, "asymmetric", "symmetric", "rne").digest}) == 3
    assert g.digest in tb.emit_block_source(g, ["int32"] * 3 + ["int64"], ["int32", "int32", "int8"])
    rng = np.random.default_rng(31)
    x = _rows(rng)
    r = rng.integers(0, 32, x.shape)
    hi, lo = fiq.group_words(x.view(np.int32), ops("numpy"))
    w = NumpyBitOps(64)
    s, z, q = evaluate(g, w, [w.word(x.view(np.uint32)), w.word(hi.view(np.uint32)), w.word(lo.view(np.uint32)),
                              w.word(r.astype(np.uint64))])
    s0, z0, q0 = fiq.quantize(x, 8, "asymmetric", "group", 16, rounding="sr", rand=r, rand_bits=5, sr_variant="b")
    assert (np.asarray(s).astype(np.uint32) == s0.view(np.uint32)).all()
    assert (np.asarray(z).astype(np.uint32).view(np.int32) == z0).all()
    assert (np.asarray(q).astype(np.uint8).view(np.int8) == q0).all()


@pytest.mark.slow
def test_range_overflow_is_refused():
    """An asymmetric range max - min beyond binary32 (an infinite scale in the graph): the numpy message."""
    with pytest.raises(BadValueError, match="overflows binary32"):
        tbk.int_quantize(torch.tensor([3e38, -3e38]), 8, "asymmetric")


def test_bad_input_is_named():
    """The numpy backend's one-line errors: NaN, random integers with a deterministic rounding, random integers
    out of range; an unknown backend."""
    nan = torch.tensor([1.0, float("nan")])
    with pytest.raises(SpecialValueError, match="NaN and infinity"):
        tbk.int_quantize(nan, 8)
    x = torch.ones(2, 4)
    with pytest.raises(UnknownModeError, match="not stochastic"):
        tbk.int_quantize(x, 8, rand=torch.zeros(2, 4, dtype=torch.int64), rand_bits=3)
    with pytest.raises(UnknownModeError, match=r"2\^3"):
        tbk.int_quantize(x, 8, rounding="sr", rand=torch.full((2, 4), 8), rand_bits=3)
    with pytest.raises(UnknownModeError, match="unknown backend"):
        fiq.quantize(x.numpy(), 8, backend="jax")


@pytest.mark.slow
def test_theorems_read_the_emitted_graph():
    """The proved zero-point statement and the refuted rne statement on the rna graph (its counterexample
    replayed through the exact model) name the digest of the graph the Triton kernel is emitted from."""
    pytest.importorskip("z3")
    from refarith.smt.registry import COUNTEREXAMPLE, PROVED
    from refarith.smt.theorems import intquant as tiq

    g = tbk.int_quantize_graph(8, "asymmetric", "symmetric", "rne")
    ok = tiq.check_codes(8, "asymmetric", "symmetric", "rne", "zero_point", frac=0)
    assert ok.verdict == PROVED and g.digest in ok.detail
    assert g.digest in tb.emit_block_source(g, ["int32"] * 3, ["int32", "int32", "int8"])
    bad = tiq.check_codes(8, "symmetric", "symmetric", "rne", frac=0,
                          graph=tbk.int_quantize_graph(8, "symmetric", "symmetric", "rna"))
    assert bad.verdict == COUNTEREXAMPLE and bad.confirmed
