"""Adapters of deployed libraries (pychop, compressed-tensors, AMD Quark, fpy2, brevitas): each test skips, with the
install line, when its library is absent.  Expected codes come from refarith's exact model; the findings asserted are
the rows of the README's table of deployed libraries.  compressed-tensors (importing transformers) and Quark
(JIT-compiling its C++ extension on first import) take a minute to load: their tests are marked slow."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refarith.certify.adapters import load_kernel
from refarith.certify.deployed import ADAPTERS, NOT_ADAPTED, _common, needs_deployed
from refarith.certify.values import off_grid_mask, off_grid_value
from refarith.cli import main
from refarith.errors import KernelError
from refarith.golden.drivers import get_driver
from refarith.spec import parse_spec


def _library(lib: str) -> _common.Library:
    import importlib

    return importlib.import_module(f"refarith.certify.deployed.{ADAPTERS[lib]}").LIBRARY


def _needs(lib: str) -> None:
    """Skip when ``lib``'s library is absent (or of an unknown version); fail instead when REFARITH_REQUIRE_DEPLOYED
    names it (CI's deployed step installs the libraries: a failed install must not pass as skips)."""
    needs_deployed(lib)


def _run(target: str, spec_id: str, values: list[float], dtype=np.float32):
    """(kernel codes, exact-model codes or None) of ``values`` as binary32 (or binary16) inputs."""
    spec = parse_spec(spec_id)
    codes = np.array(values, dtype=dtype).view(np.uint32 if dtype == np.float32 else np.uint16).astype(np.uint64)
    got = load_kernel(target)(spec, (codes,))[:, 0]
    exp = [get_driver(spec).exact(spec, (int(c),)) for c in codes]
    return got, [None if e is None else e[0] for e in exp]


NAMES = {"pychop": "ocp_e5m2", "compressed_tensors": "fp8", "quark": "fp8_e4m3", "fpy2": "MX_E4M3",
         "brevitas": "fp8_e4m3", "qtorch": "binary16"}
"""A target of each adapter."""


# ------------------------------------------------------------------ without the libraries
@pytest.mark.parametrize("lib", sorted(ADAPTERS))
def test_absent_library_is_one_line_with_the_install_line(lib, monkeypatch, capsys):
    monkeypatch.setattr(_common, "installed_version", lambda L: None)
    name = NAMES[lib]
    with pytest.raises(KernelError, match=r"is not installed; install it with: pip install --no-deps "):
        load_kernel(f"{lib}:{name}")
    assert main(["certify", f"{lib}:{name}", "--spec", "cast(binary16->ocp_e4m3)"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "install it with" in err[0]


@pytest.mark.parametrize("lib", sorted(ADAPTERS))
def test_unknown_version_names_the_known_ones(lib, monkeypatch):
    monkeypatch.setattr(_common, "installed_version", lambda L: "99.0")
    name = NAMES[lib]
    known = ", ".join(_library(lib).known)
    with pytest.raises(KernelError, match=rf"written for {_library(lib).dist} {known}; installed is 99\.0"):
        load_kernel(f"{lib}:{name}")


@pytest.mark.parametrize("lib", sorted(NOT_ADAPTED))
def test_libraries_without_adapter_say_why(lib):
    with pytest.raises(KernelError, match=rf"adapter {lib}: not available: "):
        load_kernel(f"{lib}:fp8")


def test_unknown_names_are_one_line():
    with pytest.raises(KernelError, match="unknown rounding 'rxx'"):
        load_kernel("pychop:ocp_e5m2+rxx")
    with pytest.raises(KernelError, match="pychop's Chop simulates IEEE-like formats"):
        load_kernel("pychop:ocp_e4m3")
    with pytest.raises(KernelError, match=r"unknown scale mode 'rceil'; Quark's modes: floor, ceil, even"):
        load_kernel("quark:mx_fp4+rceil")  # Quark would silently run its even mode
    with pytest.raises(KernelError, match=r"unknown format 'fp8_e4m3\+floor'"):
        load_kernel("quark:fp8_e4m3+floor")


# ------------------------------------------------------------------ pychop
def test_pychop_e5m2_rne_findings():
    """pychop 0.6.2 Chop(5, 2) RNE: in-range values are correct, but 61440 (the overflow midpoint) gives 65536 --
    a value off the E5M2 grid where IEEE overflow gives inf -- values beyond it give 0, and -0 gives +0."""
    _needs("pychop")
    spec = "cast(binary32->ocp_e5m2,rounding=rne,overflow=inf)"
    got, exp = _run("pychop:ocp_e5m2", spec, [1.0, 1.1, 57344.0, 61439.0, 61440.0, 70000.0, -0.0, 2.0 ** -16])
    ok = [0, 1, 2, 3, 7]
    assert [int(got[i]) for i in ok] == [exp[i] for i in ok]
    assert off_grid_mask(got[4:5]).all() and off_grid_value(int(got[4])) == "65536"
    assert exp[4] == 0x7C and exp[5] == 0x7C  # the exact model: +inf
    assert int(got[5]) == 0x00  # pychop: 0
    assert exp[6] == 0x80 and int(got[6]) == 0x00


def test_pychop_rtz_overflows_to_inf():
    """pychop Chop(4, 3) toward zero sends a finite overflow to inf, where IEEE 754 7.4 gives the largest finite
    value for rtz (refarith overflow=inf): the named variant overflow=inf_always -- except in the binade
    [2^(emax+1), 2^(emax+2)) = [256, 512), which pychop sends to 0 (a finding)."""
    _needs("pychop")
    vals = [250.0, 512.0, 1e9, -1e9, np.inf, 256.0, 300.0]
    got, exp = _run("pychop:ieee_e4m3+rtz", "cast(binary32->ieee_e4m3,rounding=rtz,overflow=inf)", vals[:3])
    assert exp == [0x77, 0x77, 0x77] and int(got[0]) == 0x77 and int(got[2]) == 0x78  # 240 = 0x77, +inf = 0x78
    got, exp = _run("pychop:ieee_e4m3+rtz", "cast(binary32->ieee_e4m3,rounding=rtz,overflow=inf_always)", vals)
    assert [int(g) for g in got[:5]] == exp[:5] == [0x77, 0x78, 0x78, 0xF8, 0x78]
    assert exp[5:] == [0x78, 0x78] and [int(g) for g in got[5:]] == [0x00, 0x00]


# ------------------------------------------------------------------ compressed-tensors, quark
@pytest.mark.slow
@pytest.mark.parametrize("target, lib", [("compressed_tensors:fp8", "compressed_tensors"),
                                         ("quark:fp8_e4m3", "quark")])
def test_fp8_clamp_then_cast_is_saturating_rne(target, lib):
    """clamp(x, -448, 448).to(float8_e4m3fn): RNE, finite overflow and +-inf saturate to +-448, NaN stays NaN --
    refarith's overflow=saturate."""
    _needs(lib)
    spec = "cast(binary32->ocp_e4m3,rounding=rne,overflow=saturate)"
    vals = [1.0, 1.1, 448.0, 464.0, 465.0, 1e6, -1e6, np.inf, -np.inf, np.nan, 2.0 ** -9, 3 * 2.0 ** -11]
    got, exp = _run(target, spec, vals)
    assert [int(g) for g in got[:9]] == exp[:9]
    assert int(got[9]) in (0x7F, 0xFF)


@pytest.mark.slow
def test_compressed_tensors_fp4_nan_and_signed_zero():
    """compressed-tensors cast_to_fp4: RNE with saturation at +-6; NaN comes back as a NaN value (off the E2M1
    grid: FP4 has no NaN) and -0 as +0."""
    _needs("compressed_tensors")
    spec = "cast(binary32->ocp_e2m1,rounding=rne,overflow=saturate,nan=zero)"
    got, exp = _run("compressed_tensors:fp4", spec, [0.25, 0.75, 2.5, 5.0, 7.0, np.inf, np.nan, -0.0, -1.25])
    assert [int(g) for g in got[:6]] == exp[:6]
    assert off_grid_mask(got[6:7]).all() and off_grid_value(int(got[6])) == "nan"
    assert exp[7] == 0x8 and int(got[7]) == 0x0
    assert int(got[8]) == exp[8]


# ------------------------------------------------------------------ fpy2
def test_fpy2_mx_e4m3_is_ocp_non_saturating():
    """fpy2 MX_E4M3 (RNE): OCP E4M3 with overflow and +-inf to NaN, as refarith's default overflow=nan."""
    _needs("fpy2")
    spec = "cast(binary16->ocp_e4m3,rounding=rne,overflow=nan)"
    vals = [1.1, 448.0, 464.0, 470.0, 60000.0, np.inf, -np.inf, -0.0, 2.0 ** -10, 2.0 ** -9]
    got, exp = _run("fpy2:MX_E4M3", spec, vals, dtype=np.float16)
    assert [int(g) for g in got] == exp


def test_fpy2_mx_e4m3_rto_overflow_is_the_nan_code():
    """fpy2 MX_E4M3 under RTO: a value above 448 rounds to the odd code 0x7F, the NaN -- refarith's named variant
    overflow=nan_rto (IEEE 754 7.4 reads rto as toward zero: overflow=nan gives 448)."""
    _needs("fpy2")
    vals = [1.1, 448.0, 450.0, -450.0, 1000.0, np.inf, 2.0 ** -10, 3 * 2.0 ** -11]
    got, exp = _run("fpy2:MX_E4M3+rto", "cast(binary16->ocp_e4m3,rounding=rto,overflow=nan_rto)", vals,
                    dtype=np.float16)
    assert [int(g) for g in got] == exp and exp[2:4] == [0x7F, 0xFF]
    _, ieee = _run("fpy2:MX_E4M3+rto", "cast(binary16->ocp_e4m3,rounding=rto,overflow=nan)", vals[2:3],
                   dtype=np.float16)
    assert ieee == [0x7E]


def test_fpy2_mx_int8_rounds_on_its_k_over_64_grid_and_wraps():
    """fpy2 MX_INT8 (FixedContext: k/64, k in [-128, 127], RNE) on x * 2^-6: int8's code of round(x), overflow
    wrapping (300 -> 44, 127.5 -> -128) as refarith's overflow=wrap; fpy2 raises on inf/NaN (off the grid here)."""
    _needs("fpy2")
    vals = [1.4, 2.5, 3.5, 127.5, -128.5, 300.0, -1.0, -0.0, 2.0 ** -14, np.inf, np.nan]
    got, exp = _run("fpy2:MX_INT8", "cast(binary16->int8,overflow=wrap)", vals, dtype=np.float16)
    assert [int(g) for g in got[:9]] == exp[:9] == [1, 2, 4, 0x80, 0x80, 44, 0xFF, 0, 0]
    assert exp[9:] == [None, None] and off_grid_mask(got[9:]).all()


def test_fpy2_mx_e8m0_rounds_ties_up_and_sends_zero_to_nan():
    """fpy2 MX_E8M0 (ExpContext(8, 0), RNE at precision 1, where a tie's upper power of two is the even
    significand): 1.5 -> 2, 3 -> 4, as refarith's rounding=rna; negatives and overflow give the NaN code 0xff
    (negative=nan, overflow=nan); but zero gives NaN where refarith gives the smallest scale 2^-127 (a finding)."""
    _needs("fpy2")
    vals = [1.0, 1.4, 1.5, 3.0, 6.0, 2.0 ** -24, 60000.0, -1.0, np.inf, np.nan, 0.0, -0.0]
    got, exp = _run("fpy2:MX_E8M0", "cast(binary16->e8m0,rounding=rna,overflow=nan,negative=nan)", vals,
                    dtype=np.float16)
    assert [int(g) for g in got[:10]] == exp[:10] == [127, 127, 128, 129, 130, 103, 143, 255, 255, 255]
    assert exp[10:] == [0, 0] and [int(g) for g in got[10:]] == [0xFF, 0xFF]


# ------------------------------------------------------------------ brevitas
def test_brevitas_saturating_fp8_sends_inf_to_nan():
    """brevitas FloatQuant (scale 1, OCP encodings, saturating): RNE, finite overflow to +-max, but +-inf to NaN
    (2^floor(log2 inf) = inf, inf/inf = NaN before the clamp) -- refarith's overflow=saturate_inf_nan."""
    _needs("brevitas")
    vals = [1.1, 2.0 ** -10, 3 * 2.0 ** -11, 448.0, 464.0, 465.0, 1e6, -1e6, np.inf, -np.inf]
    got, exp = _run("brevitas:fp8_e4m3", "cast(binary32->ocp_e4m3,overflow=saturate_inf_nan)", vals)
    assert [int(g) for g in got[:8]] == exp[:8] and exp[-2:] == [0x7F, 0xFF]
    assert {int(g) for g in got[8:]} <= {0x7F, 0xFF}  # a NaN (torch's inf/inf has its sign bit set)
    got, exp = _run("brevitas:fp8_e5m2", "cast(binary32->ocp_e5m2,overflow=saturate_inf_nan)",
                    [57344.0, 61440.0, 1e6, -1.5, np.inf])
    assert [int(g) for g in got[:4]] == exp[:4] and exp[:3] == [0x7B, 0x7B, 0x7B]
    assert int(got[4]) & 0x7F in (0x7D, 0x7E, 0x7F) and int(exp[4]) & 0x7F in (0x7D, 0x7E, 0x7F)


def test_brevitas_non_saturating_e5m2_inf_input_is_nan():
    """brevitas +nonsat E5M2: finite overflow goes to +-inf (overflow=inf), but an infinite input becomes NaN (a
    finding: no IEEE or OCP mode does that)."""
    _needs("brevitas")
    got, exp = _run("brevitas:fp8_e5m2+nonsat", "cast(binary32->ocp_e5m2,overflow=inf)",
                    [57344.0, 61439.0, 61440.0, -1e6, np.inf])
    assert [int(g) for g in got[:4]] == exp[:4] == [0x7B, 0x7B, 0x7C, 0xFC]
    assert exp[4] == 0x7C and int(got[4]) in (0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF)


@pytest.mark.slow
def test_compressed_tensors_nvfp4_reciprocal_global_scale():
    """compressed-tensors NVFP4 (TENSOR_GROUP, group 16): g = fl(fl(1 / amax) * 2688) in the per-tensor column (torch
    runs its 2688 / amax as amax.reciprocal() * 2688; refarith's
    s_t = fl(amax / 2688) is its reciprocal), block scale S = E4M3(fl(fl(A / 6) * g)) with an all-zero block's
    S = 0.125, elements E2M1(fl(x / fl(S / g))) -- recomputed here with numpy binary32 operations (IEEE RNE) and the
    exact model's E4M3 / E2M1 rounding."""
    from fractions import Fraction

    from refarith.exact.ops import decode
    from refarith.exact.rounding import round_value
    from refarith.exact.value import Value

    _needs("compressed_tensors")
    rng = np.random.default_rng(5)
    x = (rng.normal(size=64) * 3).astype(np.float32)
    x[16:32] = 0
    got = load_kernel("compressed_tensors:nvfp4")(parse_spec("nvfp4_quantize(division=divide,levels=2)"),
                                                  (x.view(np.uint32).astype(np.uint64).reshape(1, 64),))[0]
    f32 = np.float32
    g = (f32(1) / f32(np.abs(x).max())) * f32(2688)
    assert int(got[0]) == int(np.array([g]).view(np.uint32)[0])
    for j in range(4):
        blk = x[16 * j:16 * j + 16]
        bg = (f32(np.abs(blk).max()) / f32(6)) * g
        s = round_value(Value.of(Fraction(float(bg))), "ue4m3", "rne", "saturate").code
        s = s or 0x20  # 0.125
        assert int(got[1 + j]) == s
        d = f32(float(decode(s, "ue4m3").mag)) / g
        want = [round_value(Value.of(Fraction(float(f32(v) / d))), "ocp_e2m1", "rne", "saturate").code for v in blk]
        assert [int(c) & 0x7 for c in got[5 + 16 * j:21 + 16 * j]] == [c & 0x7 for c in want]
    assert int(got[2]) == 0x20


@pytest.mark.slow
def test_compressed_tensors_nvfp4_is_its_variant():
    """compressed-tensors NVFP4 equals nvfp4_quantize(division=divide,levels=2,global_scale=reciprocal,
    zero_scale=eighth) on every column, on tensors of every range: normal, tiny (g overflows to 1), subnormal, with
    all-zero blocks and all-zero tensors."""
    from refarith.exact.nvfp4 import COMPRESSED_TENSORS_SPEC

    _needs("compressed_tensors")
    rng = np.random.default_rng(8)
    xs = []
    for e in (-140, -120, -100, -60, -20, -5, 0, 3, 9, 20):
        x = (rng.standard_normal(64) * 2.0 ** e).astype(np.float32)
        x[16 * (e % 4):16 * (e % 4) + 16] = 0
        xs.append(x)
    xs.append(np.zeros(64, np.float32))
    codes = np.stack(xs).view(np.uint32).astype(np.uint64)
    spec = parse_spec(COMPRESSED_TENSORS_SPEC)
    got = load_kernel("compressed_tensors:nvfp4")(spec, (codes,))
    d = get_driver(spec)
    for i, row in enumerate(codes):
        assert [int(g) for g in got[i]] == list(d.exact(spec, tuple(int(c) for c in row))), i


def _mx_blocks(seed: int) -> np.ndarray:
    """Blocks of 32 normal values, one every 3 binades from about 2^-28 to 2^40."""
    rng = np.random.default_rng(seed)
    return np.stack([(rng.standard_normal(32) * 2.0 ** e).astype(np.float32) for e in range(-30, 40, 3)])


def test_brevitas_mxfp8_e4m3_is_mx_floor_except_zero_blocks():
    """brevitas MXFloat8e4m3Act equals mx_quantize(ocp_e4m3,scale=floor) on blocks with maxima from about 2^-28
    to 2^40; a block whose maximum is below brevitas' scaling_min_val 1e-10 (an all-zero one, one around 2^-40) gets
    a scale off the E8M0 grid (1e-10 / 256 for the zero block, not a power of two): a finding."""
    _needs("brevitas")
    spec = parse_spec("mx_quantize(ocp_e4m3)")
    x = _mx_blocks(4)
    x[0, :] = 0
    x[1, :] *= np.float32(2.0 ** -60)
    codes = x.view(np.uint32).astype(np.uint64)
    got = load_kernel("brevitas:mxfp8_e4m3")(spec, (codes,))
    d = get_driver(spec)
    for i in range(2, len(x)):
        assert [int(g) for g in got[i]] == list(d.exact(spec, tuple(int(c) for c in codes[i]))), i
    assert off_grid_mask(got[:2, :1]).all()
    assert Fraction(off_grid_value(int(got[0, 0]))) == Fraction(float(np.float32(1e-10) / np.float32(256)))
    assert [int(g) for g in got[0, 1:]] == [0] * 32


def test_brevitas_mxint8_is_mx_floor_half():
    """brevitas MXInt8Act's scale is 2^floor(log2(amax / 128)) on the int8 integers (the statistic over its
    IntScaling 2^(bits-1) = 128, restricted to a power of two by flooring the log), i.e. the E8M0 exponent
    floor(log2 amax) - 1: the variant ``scale=floor_half``, one binade below OCP MX's floor, so every block maximum
    clips to 127 or -128 (its int8 is not narrow: ``int8``, not ``int8_sym``).  The rule recomputed here with
    math.frexp, on blocks whose maxima are 127 and 1.9 (where floor(log2(amax / 127)) would give the next
    binade), and the OCP floor model differing (a finding)."""
    import math

    _needs("brevitas")
    spec = parse_spec("mx_quantize(int8,scale=floor_half)")
    x = _mx_blocks(6)
    x[1, 0] = 1.9  # the OCP rule: scale 2^0 (E8M0 127), 1.9 -> 122/64; brevitas: 2^-1 x 2^-6, 1.9 -> 127 (clipped)
    x[1, 1:] = 0.3
    x[2, 0] = 127.0  # 2^floor(log2(127 / 128)) = 2^-1, not 2^floor(log2(127 / 127)) = 1
    codes = x.view(np.uint32).astype(np.uint64)
    got = load_kernel("brevitas:mxint8")(spec, (codes,))
    e = np.array([math.frexp(float(a))[1] - 1 - 7 for a in np.abs(x).max(axis=1)])
    q = np.clip(np.round(x / np.exp2(e)[:, None]), -128, 127).astype(np.int64)  # half to even, as torch.round
    assert [int(g) for g in got[:, 0]] == [int(v) for v in e + 6 + 127]
    assert (got[:, 1:].astype(np.int64) == (q & 0xFF)).all()
    d = get_driver(spec)
    for i in range(len(x)):
        assert [int(g) for g in got[i]] == list(d.exact(spec, tuple(int(c) for c in codes[i]))), i
    ocp = parse_spec("mx_quantize(int8)")
    exact = get_driver(ocp).exact(ocp, tuple(int(c) for c in codes[1]))
    assert (exact[0], exact[1]) == (127, 122) and (int(got[1, 0]), int(got[1, 1])) == (126, 127)
    assert int(got[2, 0]) == 127 + 6 - 1 and int(got[2, 1]) == 127


@pytest.mark.slow
def test_quark_mx_fp4_fake_quantize_findings():
    """Quark's fake_quantize_mx into MXFP4 is ``mx_fake_quantize(ocp_e2m1,scale=ceil|even)`` on blocks of normal
    values with maxima from about 2^-120 to 2^119, except that a negative value rounding to zero gives +0; with
    ``scale=floor`` a maximum just below a large power of two takes the next binade (its float32 log2 rounds up to
    the integer), and its scale is not clamped to E8M0's 2^-127: a block maximum of about 2^-126 gets the scale
    2^-128, a value OCP MX cannot encode (findings)."""
    _needs("quark")
    x = _mx_blocks(8)
    x[0, 0], x[0, 1:] = 1.0, -(2.0 ** -40)  # these round to -0 in the exact model, +0 in Quark
    x[1, 0] = np.nextafter(np.float32(2.0 ** 64), np.float32(0))
    x[1, 1:] = 2.0 ** 60
    x[2, :] = 0
    x[2, 0], x[2, 1] = 1.5 * 2.0 ** -126, 2.0 ** -129
    codes = x.view(np.uint32).astype(np.uint64)
    for scale in ("ceil", "even", "floor"):
        spec = parse_spec(f"mx_fake_quantize(ocp_e2m1,scale={scale})")
        got = load_kernel(f"quark:mx_fp4+{scale}")(spec, (codes,))
        d = get_driver(spec)
        want = np.array([d.exact(spec, tuple(int(c) for c in row)) for row in codes], dtype=np.uint64)
        assert (got[0, 1:] == 0).all() and (want[0, 1:] == 0x80000000).all()
        plus = np.where(want == 0x80000000, np.uint64(0), want)  # the sign of zero aside
        same = [i for i in range(1, len(x)) if np.array_equal(got[i], plus[i])]
        assert same == [i for i in range(1, len(x)) if scale != "floor" or i not in (1, 2)], scale
    # floor: 2^64 - ulp has floor(log2) = 63, scale 2^61, and saturates to 6 x 2^61; Quark's float32 log2 is 64.0
    # (the spacing of float32 at 64 is 2^-18): scale 2^62, and 4 x 2^62 = 2^64
    assert int(got[1, 0]) == 0x5F800000 and int(want[1, 0]) == 0x5F400000
    # amax 1.5 x 2^-126: OCP floor gives e = -126 - 2, clamped to -127, where 2^-129 / 2^-127 = 0.25 ties to 0;
    # Quark keeps the scale 2^-128, where it is 0.5: the value 2^-129 (binary32 0x00100000)
    assert int(want[2, 1]) == 0 and int(got[2, 1]) == 0x00100000
    assert int(want[2, 0]) == int(got[2, 0]) == 0x00C00000


@pytest.mark.slow
def test_qtorch_float_quantize_binary16_rounds_away_and_has_no_infinity():
    """qtorch float_quantize(exp=5, man=10): ties away from zero (binary32 bits plus half an ulp, truncated), in range
    as cast(binary32->binary16,rounding=rna); but no exponent is reserved for inf/NaN, so 65520 (the overflow
    threshold) gives 65536 and +-inf gives +-131008, values off the binary16 grid (findings).  Its C++ extension
    builds on first import (minutes): slow."""
    _needs("qtorch")
    vals = [1.0, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, -2.5, 65504.0, 2.0 ** -24 * 1.5, 65520.0, np.inf]
    got, exp = _run("qtorch:binary16", "cast(binary32->binary16,rounding=rna,overflow=inf)", vals)
    assert [int(g) for g in got[:6]] == exp[:6]
    assert exp[1] == 0x3C01 and exp[5] == 0x0002  # ties away: 1 + 2^-11 -> 1 + 2^-10, 1.5 * 2^-24 -> 2^-23
    assert off_grid_mask(got[6:]).all()
    assert [Fraction(off_grid_value(int(g))) for g in got[6:]] == [65536, 131008]
