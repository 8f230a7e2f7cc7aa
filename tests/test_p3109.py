"""IEEE P3109 conformance: the published value tables, the projection cases of the interim report v4.0 (§4.7),
the fast kernels against the exact model in every projection mode, gfloat's P3109 path, and bad input."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from p3109_cases import CASES

from refarith.errors import RefarithError, SpecError, UnknownFormatError
from refarith.exact.ops import cast, decode, encode
from refarith.fast.bitops import NumpyBitOps
from refarith.fast.castkernel import cast_bits, required_width
from refarith.formats import catalogue, get_format, is_p3109, p3109_format, p3109_formats
from refarith.spec import parse_spec

DATA = Path(__file__).parent / "data" / "p3109"
TABLES = sorted(DATA.glob("K*/*.csv"))
SATS = ("satnone", "satfinite", "satpropagate")
DET = ("rne", "rna", "rtz", "rup", "rdn", "rto")
_HEX = re.compile(r"^(-?)0x([0-9a-f]+)(?:\.([0-9a-f]*))?p([+-]?\d+)$")


def hexfloat(text: str) -> Fraction:
    """Exact value of a C99 hexadecimal float such as -0x1.cp+14 (no float arithmetic)."""
    m = _HEX.match(text.strip().lower())
    assert m, text
    sign, whole, frac, exp = m.groups()
    frac = frac or ""
    v = Fraction(int(whole + frac, 16), 16 ** len(frac)) * Fraction(2) ** int(exp)
    return -v if sign else v


# ------------------------------------------------------------------ published value tables
def test_every_published_table_is_present():
    assert len(TABLES) == 120  # K = 3..8: every signed (1 <= P < K) and unsigned (1 <= P <= K) format, e and f
    names = {p.stem.lower() for p in TABLES}
    assert names == {f.name for k in range(3, 9) for f in p3109_formats(k)}


@pytest.mark.parametrize("path", TABLES, ids=lambda p: p.stem)
def test_value_table_code_for_code(path: Path):
    """Every code of the working group's table equals refarith's decoding of the same-named format."""
    fmt = get_format(path.stem.lower())
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["codepoint", "value", "subnormal"]
    rows = rows[1:]
    assert [int(r[0], 16) for r in rows] == list(range(fmt.ncodes))
    for code_s, val_s, sub_s in rows:
        code = int(code_s, 16)
        v = decode(code, fmt)
        if val_s == "NaN":
            assert v.is_nan, (fmt.name, code_s)
        elif val_s in ("Inf", "-Inf"):
            assert v.is_inf and v.sign == (val_s == "-Inf"), (fmt.name, code_s, str(v))
        else:
            assert v.is_finite and v.fraction == hexfloat(val_s), (fmt.name, code_s, str(v), val_s)
            subnormal = v.fraction != 0 and abs(v.fraction) < fmt.min_normal
            assert subnormal == (sub_s.strip() == "*"), (fmt.name, code_s)


def _decode_aux(k: int, p: int, signed: bool, extended: bool, x: int):
    """ωDecodeAux of P3109 §4.7.2 (p. 18), restated from the text: 'nan', 'inf', '-inf' or an exact Fraction."""
    b = (1 << (k - p - 1)) if signed else (1 << (k - p))
    if signed and x == 1 << (k - 1) or not signed and x == (1 << k) - 1:
        return "nan"
    if signed and extended and x == (1 << (k - 1)) - 1 or not signed and extended and x == (1 << k) - 2:
        return "inf"
    if signed and extended and x == (1 << k) - 1:
        return "-inf"
    if signed and x > 1 << (k - 1):
        v = _decode_aux(k, p, signed, extended, x - (1 << (k - 1)))
        return {"inf": "-inf"}.get(v, v) if isinstance(v, str) else -v
    t, e = x % (1 << (p - 1)), x >> (p - 1)
    sig = Fraction(t, 1 << (p - 1)) + (0 if e == 0 else 1)
    return sig * Fraction(2) ** ((1 if e == 0 else e) - b)


def _as_aux(v) -> object:
    if v.is_nan:
        return "nan"
    if v.is_inf:
        return "-inf" if v.sign else "inf"
    return v.fraction


@pytest.mark.parametrize("k", range(3, 17))
def test_every_width_decodes_as_section_4_7_2(k: int):
    """K = 3..16, every format: all codes up to K = 8, else about 300 codes (both ends and a stride), against
    §4.7.2."""
    for fmt in p3109_formats(k):
        p, signed, ext = fmt.mbits + 1, fmt.signed, fmt.specials == "p3109e"
        assert fmt.name == f"binary{k}p{p}{'s' if signed else 'u'}{'e' if ext else 'f'}" and fmt.nbits == k
        codes = range(fmt.ncodes) if k <= 8 else sorted({*range(64), *range(fmt.ncodes - 64, fmt.ncodes),
                                                         *range(0, fmt.ncodes, fmt.ncodes // 128)})
        for c in codes:
            assert _as_aux(decode(c, fmt)) == _decode_aux(k, p, signed, ext, c), (fmt.name, hex(c))


def test_p3109_names_and_catalogue():
    assert len(p3109_formats()) == 504  # the number of tables the working group publishes for K = 3..16
    k8 = [n for n, f in catalogue().items() if is_p3109(f)]
    assert len(k8) == 30 and "binary8p8ue" in k8 and "binary8p8uf" in k8
    assert get_format("Binary8p4se") is get_format("binary8p4se")
    assert get_format("binary16p11sf").max == 65504  # bias 16, E = 31: (2 - 2^-10) * 2^15
    assert p3109_format(3, 3, False, True).name == "binary3p3ue"


@pytest.mark.parametrize("name", ["binary8p8se", "binary8p9ue", "binary8p0sf", "binary2p1se", "binary17p3se"])
def test_undefined_p3109_names_are_one_line_errors(name: str):
    with pytest.raises(UnknownFormatError) as e:
        get_format(name)
    assert "\n" not in str(e.value) and name in str(e.value)


# ------------------------------------------------------------------ §4.7 projection cases
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_projection_case_exact(case):
    cid, clause, fmt, value, rounding, sat, want = case
    assert encode(value, fmt, rounding, sat).code == want, (cid, clause)


def test_projection_cases_fast_kernel():
    """The same cases through the fast encode (numpy, binary64 input: every case value is exact in binary64 except
    2.1 and 2.3, which round in binary64 to neighbours with the same projection)."""
    from refarith.fast import encode as fast_encode

    for cid, clause, fmt, value, rounding, sat, want in CASES:
        x = float(Fraction(value)) if value not in ("inf", "-inf", "nan", "-0") else float(value)
        got = int(fast_encode(np.array([x]), fmt, rounding, sat)[0])
        assert got == want, (cid, clause, hex(got))


def test_p3109_defaults_are_the_standards():
    assert str(parse_spec("cast(binary32->binary8p4ue)")) == \
        "cast(binary32->binary8p4ue,rounding=rne,overflow=satnone,negative=project)"
    assert str(parse_spec("cast(binary32->binary8p3sf)")) == "cast(binary32->binary8p3sf,rounding=rne,overflow=satnone)"
    # other families keep theirs
    assert str(parse_spec("cast(binary32->ocp_e4m3)")) == "cast(binary32->ocp_e4m3,rounding=rne,overflow=nan)"
    assert str(parse_spec("cast(binary32->e8m0)")) == "cast(binary32->e8m0,rounding=rne,overflow=nan,negative=error)"
    # the exact model without arguments is the standard's projection
    assert encode("-1", "binary8p4ue").code == 0xFF and encode("1000", "binary8p4sf").code == 0x7F
    assert encode("225", "binary8p4se", "rto").code == 0x7F


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_arithmetic_defaults_are_the_standards(op: str):
    """Arithmetic on P3109 formats projects its exact result as a cast does: SatNone (and, for unsigned formats,
    the negative rule) by default; the IEEE/OCP modes and the other saturation modes stay selectable."""
    import refarith.golden.drivers  # noqa: F401  (registers the arithmetic ops)

    assert str(parse_spec(f"{op}(binary8p4se)")) == f"{op}(binary8p4se,rounding=rne,overflow=satnone)"
    assert str(parse_spec(f"{op}(binary8p3uf)")) == \
        f"{op}(binary8p3uf,rounding=rne,overflow=satnone,negative=project)"
    assert str(parse_spec(f"{op}(ocp_e4m3)")) == f"{op}(ocp_e4m3,rounding=rne,overflow=nan)"
    assert str(parse_spec(f"{op}(binary8p4se,overflow=satpropagate)")).endswith("overflow=satpropagate)")
    with pytest.raises(SpecError):
        parse_spec(f"{op}(binary8p4se,negative=nan)")  # a signed format has no negative rule


@pytest.mark.parametrize("spec", ["add(binary8p4sf)", "mul(binary8p4se,overflow=satfinite)",
                                  "sub(binary8p3ue)", "sub(binary8p4ue,rounding=rtz)", "div(binary8p5uf)"])
def test_arithmetic_is_the_projection_of_the_exact_result(spec: str):
    """Pairs of finite codes: the spec's result is the cast's projection (refarith.exact.ops.encode, with the
    spec's overflow mode only where it is not the default) of the Fraction result of the decoded operands."""
    from refarith.golden.drivers import get_driver

    sp = parse_spec(spec)
    f, d = sp.fmt(0), get_driver(sp)
    vals = [decode(c, f) for c in range(256)]
    given = "overflow=" in spec
    checked, pairs = 0, []
    for a in range(0, 256, 3):
        for b in range(1, 256, 5):
            va, vb = vals[a], vals[b]
            pairs.append((a, b))
            if not (va.is_finite and vb.is_finite) or (sp.op == "div" and vb.is_zero):
                continue
            x, y = va.fraction, vb.fraction
            q = {"add": x + y, "sub": x - y, "mul": x * y, "div": x / y if y else None}[sp.op]
            if q == 0:  # the sign of an exact zero is IEEE's rule, not the projection's
                continue
            kw = {"overflow": sp.param["overflow"]} if given else {}
            want = encode(str(q.numerator) + "/" + str(q.denominator), f, sp.param["rounding"], **kw).code
            assert d.exact(sp, (a, b))[0] == want, (spec, a, b)
            checked += 1
    assert checked > 1000
    from refarith.fast.arith import check_format

    try:
        check_format(f)
    except RefarithError:
        return  # binary8p3ue's values span more bits than binary64 holds: exact model only
    # the fast kernel agrees on the same pairs, NaN and infinite operands too
    ins = np.array(pairs)
    got = d.fast(sp, (ins[:, 0], ins[:, 1]), "numpy")[0]
    want_all = [d.exact(sp, p) for p in pairs]
    assert all(w is None or w[0] == int(g) for w, g in zip(want_all, got))


def test_named_variants_on_either_family():
    """The IEEE/OCP rules stay selectable on P3109 formats, and P3109's on OCP formats."""
    assert encode("225", "binary8p4se", "rto", "inf").code == 0x7E  # IEEE-style: ToOdd never overflows to inf
    assert encode("1000", "binary8p4sf", "rne", "nan").code == 0x80  # OCP non-saturating: overflow to NaN
    with pytest.raises(RefarithError):
        encode("-1", "binary8p4ue", negative="error")
    assert encode("1000", "ocp_e4m3", "rne", "satnone").code == 0x7E  # finite domain: M_hi = 448
    assert encode("1e6", "ocp_e5m2", "rto", "satnone").code == 0x7C  # extended: ToOdd to +inf
    assert encode("1e6", "ocp_e5m2", "rto", "inf").code == 0x7B
    assert encode("-1", "e8m0", negative="nan").code == 0xFF  # ml_dtypes' E8M0 rule
    assert encode("-1", "ue4m3", "rne", "satnone", negative="project").code == 0x7F
    assert encode("-1", "ue4m3", "rtz", "satnone", negative="project").code == 0x00
    assert encode("-inf", "ocp_e5m2", overflow="satpropagate").code == 0xFC
    assert encode("-inf", "ocp_e5m2", overflow="satfinite").code == 0xFB


def test_satfinite_equals_satpropagate_on_finite_inputs():
    src = get_format("e6m1")
    for fmt in ("binary8p3se", "binary8p4ue"):
        for rnd in DET:
            for c in range(src.ncodes):
                v = decode(c, src)
                if not v.is_finite:
                    continue
                assert cast(c, src, fmt, rnd, "satfinite").code == cast(c, src, fmt, rnd, "satpropagate").code


# ------------------------------------------------------------------ fast kernel == exact model
def _kernel_vs_exact(src_name: str, dsts: list[str], rounds=DET, sats=SATS,
                     unsigned_negs=("project", "nan", "clamp", "error")) -> None:
    src = get_format(src_name)
    xs = np.arange(src.ncodes, dtype=np.uint32)
    for dst in dsts:
        d = get_format(dst)
        negs = unsigned_negs if not d.signed else ("error",)
        for rnd in rounds:
            for ov in (*sats, "inf" if d.has_inf else "nan"):
                for neg in negs:
                    ops = NumpyBitOps(required_width(src, d))
                    codes, err = cast_bits(ops, xs, src, d, rnd, ov, "error", neg)
                    codes = np.broadcast_to(codes, xs.shape)
                    err = np.broadcast_to(err, xs.shape)
                    for c in range(src.ncodes):
                        try:
                            want = cast(c, src, d, rnd, ov, "error", neg).code
                        except RefarithError:
                            want = None
                        got = None if err[c] else int(codes[c])
                        assert got == want, (src_name, dst, rnd, ov, neg, hex(c))


def test_kernel_equals_exact_model_every_mode():
    """Every code of e6m1 (range 2^-32..2^31, so overflow for most K8 targets) into a spread of P3109 formats."""
    _kernel_vs_exact("e6m1", ["binary8p4se", "binary8p4uf", "binary8p8ue", "binary3p2se"],
                     unsigned_negs=("project", "nan"))


@pytest.mark.slow
def test_kernel_equals_exact_model_every_k8_format():
    _kernel_vs_exact("e8m1", [f.name for f in p3109_formats(8)])


@pytest.mark.slow
def test_kernel_equals_exact_model_other_widths():
    _kernel_vs_exact("e6m1", [f.name for k in (3, 4, 5, 6, 7) for f in p3109_formats(k)])


# ------------------------------------------------------------------ gfloat's P3109 path
GFLOAT_DISAGREES = {
    # gfloat 0.5.2 has no ToOdd rounding mode and no SatPropagate (§4.2 p.11 defines both)
    **{c: "absent" for c in ("odd-inexact", "odd-exact", "odd-stays", "p1-odd", "sn-over-rto", "sn-under-rto",
                             "snf-over-rto", "snu-over-rto", "snu-max-rto", "sf-over-rto", "sp-inf", "sp-ninf",
                             "sp-over", "sp-under", "sp-f-inf", "sp-u-inf", "sp-u-ninf", "sp-u-neg")},
    # sat=False sends finite-domain overflow and infinities to NaN (the OCP E4M3 rule); §4.7.5 gives M_hi / M_lo
    **{c: "finite-nan" for c in ("snf-over", "snf-mid", "snf-under", "snf-inf", "snf-ninf", "snuf-over",
                                 "snuf-inf", "k3f-over", "k3f-ninf")},
    # unsigned targets drop the sign first: -inf becomes +inf (SatNone) or M_hi (SatFinite); §4.7.5: NaN / M_lo
    "snu-ninf": "unsigned-sign", "snu-ninf-rtz": "unsigned-sign", "snu-ninf-rup": "unsigned-sign",
    "sf-u-ninf": "unsigned-sign",
    # negative finite values into unsigned formats raise ValueError; §4.7.5 gives NaN or M_lo = 0
    **{c: "unsigned-raise" for c in ("snu-neg-rne", "snu-neg-rtz", "snu-neg-rup", "snu-neg-rdn", "snu-neg-sub",
                                     "snu-neg-tiny-rdn", "sf-u-neg")},
}


def gfloat_code(fmt: str, value: str, rounding: str, sat: str):
    """gfloat's projection of a case (code, 'n/a' where gfloat has no such mode, or 'raises ...')."""
    gfloat = pytest.importorskip("gfloat")
    from gfloat.formats import format_info_p3109

    rm = {"rne": gfloat.RoundMode.TiesToEven, "rna": gfloat.RoundMode.TiesToAway,
          "rtz": gfloat.RoundMode.TowardZero, "rup": gfloat.RoundMode.TowardPositive,
          "rdn": gfloat.RoundMode.TowardNegative}
    if rounding not in rm or sat == "satpropagate":
        return "n/a"
    k, p, su, ef = re.match(r"binary(\d+)p(\d+)([su])([ef])$", fmt).groups()
    fi = format_info_p3109(int(k), int(p), gfloat.Signedness.Signed if su == "s" else gfloat.Signedness.Unsigned,
                           gfloat.Domain.Extended if ef == "e" else gfloat.Domain.Finite)
    x = float(Fraction(value)) if value not in ("inf", "-inf", "nan", "-0") else float(value)
    try:
        return gfloat.encode_float(fi, gfloat.round_float(fi, x, rm[rounding], sat=sat == "satfinite"))
    except ValueError as e:
        return f"raises ValueError ({e})"


def test_gfloat_disagreements_are_the_documented_ones():
    pytest.importorskip("gfloat")
    differ = {c[0] for c in CASES if gfloat_code(c[2], c[3], c[4], c[5]) != c[6]}
    assert differ == set(GFLOAT_DISAGREES)
    doc = (Path(__file__).parent.parent / "docs" / "p3109_findings.md").read_text()
    for cid in GFLOAT_DISAGREES:
        assert f"`{cid}`" in doc, cid


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("spec, needle", [
    ("cast(binary32->binary8p8se)", "signed format needs precision"),
    ("cast(binary32->int8,overflow=satnone)", "does not apply to integer format"),
    ("cast(binary32->ue3m2_none,negative=nan)", "has no NaN"),
    ("cast(binary32->ue3m2_none,negative=project,overflow=satnone)", "needs a NaN"),
    ("cast(binary32->binary8p4ue,overflow=satall)", "is not one of"),
])
def test_bad_specs_are_one_line_errors(spec: str, needle: str):
    with pytest.raises(SpecError) as e:
        parse_spec(spec)
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("args", [
    ["--to", "binary8p8se", "1"],
    ["--to", "int8", "--overflow", "satnone", "1"],
    ["--to", "ue3m2_none", "--negative", "nan", "--", "-1"],
])
def test_cli_bad_input_exit_2(args: list[str]):
    r = subprocess.run([sys.executable, "-m", "refarith", "cast", *args], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cli_p3109_default_projection():
    r = subprocess.run([sys.executable, "-m", "refarith", "cast", "--to", "binary8p4ue", "--", "-1", "-inf", "60000"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    codes = re.findall(r"-> (0x[0-9a-f]+)", r.stdout)
    assert codes == ["0xff", "0xff", "0xfe"]


# ------------------------------------------------------------------ identify and theorems
def _case_vectors(fmt: str) -> list[tuple[int]]:
    """binary32 patterns of the §4.7 case values of ``fmt`` and of a few inexact values and ties (rounded to binary32
    where they are not exact), with their negatives."""
    out = set()
    values = [c[3] for c in CASES if c[2] == fmt] + ["17/8", "2.1", "2.2", "1/3", "1/1048576"]
    for value in values:
        for v in (value, value[1:] if value.startswith("-") else "-" + value):
            out.add(int(np.array([float(Fraction(v)) if v.lstrip("-") not in ("inf", "nan", "0")
                                  else float(v)], dtype=np.float32).view(np.uint32)[0]))
    return [(c,) for c in sorted(out)]


@pytest.mark.parametrize("fmt, rounding, sat", [("binary8p4se", "rto", "satnone"), ("binary8p4uf", "rdn", "satnone"),
                                                ("binary8p4se", "rne", "satpropagate")])
def test_identify_names_the_projection(fmt: str, rounding: str, sat: str):
    """identify names a P3109 kernel's rounding and saturation mode (refarith's own kernel in that mode).  (Into an
    unsigned extended format, satnone and inf agree on every input when negative=project: both are named there.)"""
    from refarith import fast
    from refarith.certify.identify import identify

    def kernel(x):
        return fast.encode(x, fmt, rounding, sat)

    scores = identify(kernel, f"cast(binary32->{fmt})", vary=("rounding", "overflow"), vectors=_case_vectors(fmt))
    full = [str(s.spec) for s in scores if s.matches and s.outside_domain == 0]
    assert full == [str(parse_spec(f"cast(binary32->{fmt},rounding={rounding},overflow={sat})"))]


@pytest.mark.proof
@pytest.mark.parametrize("name", ["p3109.kernel.binary32->binary8p4se.rto", "p3109.kernel.binary32->binary8p4ue.rtz",
                                  "p3109.unsigned_negative.binary32->binary8p4ue",
                                  "p3109.rto_odd.binary32->binary8p3sf", "p3109.kernel.binary32->binary3p1sf"])
def test_p3109_theorems(name: str):
    from refarith.smt.registry import load_all

    th = load_all()[name]
    out = th.check()
    assert out.verdict == th.expect, out.counterexample


def test_project_spec_on_the_cases():
    """The bit-vector restatement of §4.7 gives the expected code of every case whose value is exact in binary32."""
    z3 = pytest.importorskip("z3")
    from refarith.smt.theorems.p3109 import project_spec

    for cid, _, fmt, value, rounding, sat, want in CASES:
        if not fmt.startswith("binary8") or value.lstrip("-") in ("2.1", "2.3"):
            continue
        x = float(Fraction(value)) if value.lstrip("-") not in ("inf", "nan", "0") else float(value)
        bits = int(np.array([x], dtype=np.float32).view(np.uint32)[0])
        got = z3.simplify(project_spec(z3.BitVecVal(bits, 32), fmt, rounding, sat)).as_long()
        assert got == want, (cid, hex(got))


@pytest.mark.parametrize("fmt", ["binary3p2ue", "binary12p6se",
                                 pytest.param("binary4p1sf", marks=pytest.mark.slow),
                                 pytest.param("binary16p16uf", marks=pytest.mark.slow)])
def test_project_spec_other_widths_equals_exact_model(fmt: str):
    """The restatement the width theorems use equals the exact model on binary32 inputs around every binade of
    the target (both signs, ties, overflow, the subnormal range, infinities and NaN), in every mode."""
    z3 = pytest.importorskip("z3")
    from refarith.exact.rounding import SATURATION_MODES
    from refarith.smt.theorems.p3109 import other_width_targets, project_spec

    assert fmt in other_width_targets()
    f = get_format(fmt)
    vals = [decode(c, f) for c in range(f.ncodes)]
    fin = sorted({v.fraction for v in vals if v.is_finite and not v.is_zero and v.fraction > 0})
    picks = fin[:3] + fin[len(fin) // 2 - 1:len(fin) // 2 + 1] + fin[-3:]
    xs = []
    for a, b in zip(picks, picks[1:]):
        xs += [a, (a + b) / 2, a + (b - a) / 3]
    xs += [fin[-1] * 2, fin[0] / 2, fin[0] / 3]
    bits = {int(np.array([float(s * x)], dtype=np.float32).view(np.uint32)[0]) for x in xs for s in (1, -1)}
    bits |= {0x7F800000, 0xFF800000, 0x7FC00000, 0x80000000, 0}
    for b in sorted(bits):
        for rnd in DET:
            for sat in SATURATION_MODES:
                try:
                    want = cast(b, "binary32", f, rnd, sat, "error", "project" if not f.signed else "error").code
                except RefarithError:
                    continue
                got = z3.simplify(project_spec(z3.BitVecVal(b, 32), f, rnd, sat)).as_long()
                assert got == want, (fmt, hex(b), rnd, sat, hex(got), hex(want))


def _widen(src: str) -> tuple[np.ndarray, np.ndarray]:
    """Every bit pattern of a 16-bit source and the binary32 pattern of the same value (NaN: a binary32 NaN of
    the same sign)."""
    xs = np.arange(1 << 16, dtype=np.uint32)
    if src == "bfloat16":
        return xs, xs << 16
    return xs, xs.astype(np.uint16).view(np.float16).astype(np.float32).view(np.uint32).astype(np.uint32)


def _reduces_to_binary32(src_name: str, dsts: list[str]) -> None:
    src, b32 = get_format(src_name), get_format("binary32")
    xs, wide = _widen(src_name)
    for dst in dsts:
        d = get_format(dst)
        neg = "error" if d.signed else "project"
        for rnd in DET:
            for sat in SATS:
                c16, e16 = cast_bits(NumpyBitOps(required_width(src, d)), xs, src, d, rnd, sat, "error", neg)
                c32, e32 = cast_bits(NumpyBitOps(required_width(b32, d)), wide, b32, d, rnd, sat, "error", neg)
                c16, c32 = np.broadcast_to(c16, xs.shape), np.broadcast_to(c32, xs.shape)
                e16, e32 = np.broadcast_to(e16, xs.shape), np.broadcast_to(e32, xs.shape)
                bad = np.flatnonzero((c16 != c32) | (e16 != e32))
                assert bad.size == 0, (src_name, dst, rnd, sat, hex(int(xs[bad[0]])))


@pytest.mark.parametrize("src", ["binary16", "bfloat16"])
def test_16bit_sources_reduce_to_the_binary32_theorems(src: str):
    """For every pattern of a 16-bit source, the kernel's code equals the kernel's code of the same value as
    binary32, in every deterministic and saturation mode.  With the p3109.kernel.binary32->DST theorems this
    proves (by exhaustion) the kernel from binary16 and bfloat16 equal to §4.7's projection.  Default run: four
    formats; every K = 8 format under slow."""
    _reduces_to_binary32(src, ["binary8p1se", "binary8p4sf", "binary8p3ue", "binary8p8uf"])


@pytest.mark.slow
@pytest.mark.parametrize("src", ["binary16", "bfloat16"])
def test_16bit_sources_reduce_to_the_binary32_theorems_every_k8_format(src: str):
    _reduces_to_binary32(src, [f.name for f in p3109_formats(8)])


@pytest.mark.parametrize("dst", ["binary8p4se", "binary8p3sf", "binary8p4ue", "binary8p1uf"])
def test_stochastic_kernel_equals_exact_model_every_saturation_mode(dst: str):
    """P3109's stochastic modes under every saturation mode: every code of e6m1 (range 2^-32..2^31: overflow,
    underflow, both signs, infinities, NaN) with every 3-bit random integer, for StochasticA/B/C."""
    from refarith.exact.stochastic import check_variant

    src, d = get_format("e6m1"), get_format(dst)
    xs = np.repeat(np.arange(src.ncodes, dtype=np.uint32), 8)
    rs = np.tile(np.arange(8, dtype=np.uint32), src.ncodes)
    neg = "error" if d.signed else "project"
    checked = 0
    for variant in ("a", "b", "c"):
        try:
            check_variant(variant, 3, d)
        except RefarithError:
            continue
        for sat in SATS:
            ops = NumpyBitOps(required_width(src, d))
            codes, err = cast_bits(ops, xs, src, d, "sr", sat, "error", neg, r=rs, rand_bits=3, sr_variant=variant)
            codes, err = np.broadcast_to(codes, xs.shape), np.broadcast_to(err, xs.shape)
            for i in range(xs.size):
                try:
                    want = cast(int(xs[i]), src, d, "sr", sat, "error", neg, rand=int(rs[i]), rand_bits=3,
                                sr_variant=variant).code
                except RefarithError:
                    want = None
                got = None if err[i] else int(codes[i])
                assert got == want, (dst, variant, sat, hex(int(xs[i])), int(rs[i]))
            checked += 1
    assert checked >= 6


@pytest.mark.proof
def test_p3109_stochastic_theorem_can_fail(monkeypatch):
    """The stochastic kernel theorem refutes a restatement with the wrong stochastic mode (StochasticA read for
    StochasticC), and the replay through the exact model sides with the kernel."""
    from refarith.smt.theorems import p3109 as P

    real = P._sr_away
    monkeypatch.setattr(P, "_sr_away", lambda sig, sh, pos, gt0, sr: real(sig, sh, pos, gt0, (*sr[:2], "a")))
    out = P.prove_kernel_projection_sr("binary8p4se", "c", 3)
    assert out.verdict != P.PROVED and out.counterexample
    monkeypatch.setattr(P, "_sr_away", real)
    assert P.prove_kernel_projection_sr("binary8p4se", "c", 3).verdict == P.PROVED
