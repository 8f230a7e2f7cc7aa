"""Certifier features for deployed libraries, on small synthetic kernels (no third-party quantizer needed):
values-output kernels with the ``off_grid`` class, per-output-column counts, identify's ranking by class,
``--signed-zero-ok`` and the wrapped library recorded in the certificate."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.certify.adapters import Kernel, user_kernel
from refarith.certify.identify import identify
from refarith.certify.runner import certify
from refarith.certify.values import off_grid_mask, off_grid_value, values_to_codes
from refarith.cli import main
from refarith.errors import KernelError
from refarith.formats import get_format

ml_dtypes = pytest.importorskip("ml_dtypes")

E4M3_H = "cast(binary16->ocp_e4m3,rounding=rne,overflow=nan)"


def _h_vectors():
    """A small binary16 vector set for identify: zeros, subnormals, in-range values, ties, overflow, inf, NaN."""
    vals = [0.0, -0.0, 2.0 ** -9, -2.0 ** -10, 2.0 ** -7, 1.0, 1.0625, -1.1875, 3.3, 240.0, 448.0, 464.0, 465.0,
            -500.0, 60000.0, np.inf, -np.inf, np.nan]
    return [(int(c),) for c in np.array(vals, dtype=np.float16).view(np.uint16)]


def _f_vectors():
    """A small binary32 vector set: in-range values of every binade, ties, overflow, +-inf, NaN."""
    rng = np.random.default_rng(7)
    vals = np.concatenate([rng.uniform(-460, 460, 300), 2.0 ** rng.uniform(-12, 8, 100) * rng.choice([-1, 1], 100),
                           2.0 ** rng.uniform(9, 100, 600) * rng.choice([-1, 1], 600),  # many overflow vectors
                           [464.0, 480.0, -500.0, 1e6, np.inf, -np.inf, np.nan, 0.0, -0.0]])
    return [(int(c),) for c in vals.astype(np.float32).view(np.uint32)]


def _values(fn):
    fn.refarith_outputs = "values"
    return fn


@_values
def fq_e4m3(x):
    """Fake quantization by an independent library: ml_dtypes' float8_e4m3fn cast, decoded back to float32."""
    with np.errstate(all="ignore"):
        return x.astype(ml_dtypes.float8_e4m3fn).astype(np.float32)


def test_values_to_codes_maps_grid_values_and_flags_the_rest():
    e4m3 = get_format("ocp_e4m3")
    vals = [448.0, -0.0, 0.0, 1.125, float(np.float32(1.1)), 480.0, np.inf, np.nan, -2.0 ** -9]
    got = values_to_codes(np.array(vals), e4m3)
    # OCP OFP8 table: 448 = 0x7e, -0 = 0x80, 1.125 = 0x39, -2^-9 = 0x81 (smallest negative subnormal), NaN 0x7f
    off = off_grid_mask(got)
    assert off.tolist() == [False] * 4 + [True] * 3 + [False] * 2
    assert got[~off].tolist() == [0x7E, 0x80, 0x00, 0x39, 0x7F, 0x81]
    assert [off_grid_value(int(c)) for c in got[off]] == ["9227469/8388608", "480", "inf"]  # 1.1 in binary32
    e5m2 = get_format("ocp_e5m2")
    got = values_to_codes(np.array([-np.inf, 57344.0, 61440.0]), e5m2)
    assert got[:2].tolist() == [0xFC, 0x7B] and off_grid_value(int(got[2])) == "61440"
    b32 = get_format("binary32")
    got = values_to_codes(np.array([1.0, 1.0 + 2.0 ** -40]), b32)
    assert int(got[0]) == 0x3F800000 and off_grid_mask(got).tolist() == [False, True]


def test_values_kernel_of_a_correct_cast_passes():
    c = certify(fq_e4m3, E4M3_H)
    assert c.verdict == "pass", c.totals()
    assert c.stages[0].vectors == 1 << 16


def test_off_grid_values_are_their_own_class():
    @_values
    def no_rounding(x):  # returns its input: off the E4M3 grid wherever the binary16 value is not an E4M3 value
        return x.astype(np.float32)

    c = certify(no_rounding, E4M3_H)
    tot = c.totals()
    assert c.verdict == "fail" and tot["off_grid"] > 0
    ex = c.stages[0].examples["off_grid"]
    assert off_grid_mask(np.array([int(g, 16) for g in ex.got], dtype=np.uint64)).all()
    assert ex.got_value == ex.input_values  # the kernel returned its input
    # every binary16 input that is not NaN and not an E4M3 value is off the grid (+-inf too: E4M3 has no inf);
    # NaN gives a NaN value, which is the spec's NaN
    h = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
    with np.errstate(all="ignore"):
        on_grid = (h.astype(ml_dtypes.float8_e4m3fn).astype(np.float32) == h) & np.isfinite(h)
    assert tot["off_grid"] == int((~on_grid & ~np.isnan(h)).sum()) == 65536 - 254 - 2046
    assert c.totals() == {**dict.fromkeys(c.totals(), 0), "off_grid": tot["off_grid"]}


def test_inf_from_a_values_kernel_into_a_format_without_inf_is_off_grid():
    @_values
    def overflow_to_inf(x):
        y = fq_e4m3(x)
        return np.where(np.isnan(y) & np.isfinite(x), np.float32(np.inf) * np.sign(x), y).astype(np.float32)

    c = certify(overflow_to_inf, E4M3_H)
    assert c.totals()["off_grid"] > 0
    assert set(k for k, v in c.totals().items() if v) == {"off_grid"}


def test_values_kernel_bad_output_is_one_line():
    @_values
    def ints(x):
        return np.zeros(x.shape, dtype=np.int32)

    @_values
    def short(x):
        return fq_e4m3(x)[:-1]

    with pytest.raises(KernelError, match=r"returned dtype int32; a values kernel returns float values"):
        certify(ints, E4M3_H)
    with pytest.raises(KernelError, match=r"returned shape \(65535,\), expected \(65536,\)"):
        certify(short, E4M3_H)


@_values
def loses_zero_sign(x):
    y = fq_e4m3(x)
    return np.where(y == 0, np.float32(0.0), y)


def test_signed_zero_ok(capsys):
    strict = certify(loses_zero_sign, E4M3_H)
    assert strict.verdict == "fail"
    assert {k for k, v in strict.totals().items() if v} == {"signed_zero"}
    strict.signed_zero_ok = True
    assert strict.verdict == "pass"
    target = "tests.test_certify_values:loses_zero_sign"
    assert main(["certify", target, "--spec", E4M3_H]) == 1
    assert main(["certify", target, "--spec", E4M3_H, "--signed-zero-ok"]) == 0
    capsys.readouterr()
    scores = identify(loses_zero_sign, "cast(binary16->ocp_e4m3)", vary=("rounding", "overflow"), signed_zero_ok=True,
                      vectors=_h_vectors())
    assert scores[0].matches and scores[0].spec == "cast(binary16->ocp_e4m3,rounding=rne,overflow=nan)"
    assert scores[0].signed_zero > 0
    assert not identify(loses_zero_sign, "cast(binary16->ocp_e4m3)", vary=("rounding", "overflow"),
                        vectors=_h_vectors())[0].matches


MX = "mx_quantize(ocp_e4m3,block=32,scale=floor,rounding=rne)"


def _mx_scale_off_by_one(x):
    """refarith's own MX kernel with the scale code always two too high (no scale rule gives that): a column that
    differs in every vector, while every element is the floor rule's."""
    from refarith.golden.drivers import get_driver
    from refarith.spec import parse_spec

    spec = parse_spec(MX)
    codes = np.ascontiguousarray(x).view(np.uint32).astype(np.uint64)
    s, c = get_driver(spec).fast(spec, (codes,), "numpy")
    return (np.asarray(s).astype(np.uint64) + 2) % 254, np.asarray(c)


def test_per_column_counts_and_identify_not_swamped_by_a_scale_column():
    c = certify(_mx_scale_off_by_one, MX)
    cols = c.stages[0].columns
    n = c.stages[0].vectors
    assert cols == {"scale": n}, cols  # every vector differs in the scale, no element differs
    from refarith.golden.drivers import get_driver
    from refarith.spec import parse_spec

    vecs = get_driver(parse_spec(MX)).random_inputs(parse_spec(MX), 40, 1)  # blocks where floor and ceil differ
    scores = identify(_mx_scale_off_by_one, MX, vary=("scale",), vectors=vecs)
    assert not scores[0].matches
    assert scores[0].spec == "mx_quantize(ocp_e4m3,block=32,scale=floor,rounding=rne)"
    assert set(scores[0].columns) == {"scale"}
    assert all(set(s.columns) - {"scale"} for s in scores[1:])


def _rtz_overflow_nan(x):
    """Truncating E4M3 cast that sends every overflow (and +-inf) to NaN: no IEEE-style variant rounds toward zero
    and overflows to NaN, so nothing matches; its in-range results are all round-toward-zero."""
    from refarith import fast

    out = np.asarray(fast.encode(x, "ocp_e4m3", rounding="rtz", overflow="saturate")).copy()
    big = ~np.isnan(x) & (np.abs(x.astype(np.float64)) >= 480.0)
    out[big] = np.where(np.signbit(x[big]), 0xFF, 0x7F)
    return out


def test_identify_ranks_by_class_not_by_raw_total():
    scores = identify(_rtz_overflow_nan, "cast(binary32->ocp_e4m3)", vary=("rounding", "overflow"),
                      vectors=_f_vectors())
    assert not scores[0].matches
    assert "rounding=rtz" in scores[0].spec
    assert scores[0].classes.get("in_range", 0) == 0
    fewest = min(scores, key=lambda s: s.mismatches)
    assert "rounding=rtz" not in fewest.spec  # a raw total would have named another rounding mode


def test_library_name_and_version_in_certificate():
    k = user_kernel(fq_e4m3, "demo:fq")
    k = Kernel(k.target, k.fn, "demolib 1.2.3", library="demolib", library_version="1.2.3")
    c = certify(k, E4M3_H)
    d = c.to_dict()
    assert d["environment"]["library"] == {"name": "demolib", "version": "1.2.3"}
    assert d["kernel_version"] == "demolib 1.2.3"
