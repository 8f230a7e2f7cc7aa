"""The cast theorem family.

* ``cast.SRC->DST.MODE``: the fast kernel ``refarith.fast.castkernel.cast_bits``
  traced on Z3 bit-vectors equals the bit-level spec (refarith.smt.encode) for
  every source pattern: binary32, binary16 and bfloat16 into every catalogue
  float format of at most 8 bits, and binary32 into bfloat16 and binary16, every
  deterministic rounding mode (one theorem each) and every overflow mode the
  target admits (together in that theorem), with the ``error`` NaN and negative
  policies (the error flag must match too).
* ``cast.library_overflow.binary32->DST``: the same claim for the deployed libraries' overflow modes
  (inf_always, nan_rto, saturate_inf_nan) into ieee_e4m3, ocp_e4m3 and ocp_e5m2, every deterministic rounding
  mode the spec admits with them, in one theorem per target.
* ``cast.SRC->DST.policies``: nan=zero / nan=max (targets without NaN) and
  negative=clamp (unsigned targets), rounding rne, the default overflow mode.
* ``cast.SRC->DST.sr``: the kernel with stochastic rounding equals the spec for
  every input and every random integer (k = 8 random bits from binary32, k = 4
  from binary16/bfloat16, so both "more" and "fewer" dropped bits than k occur).
* ``cast.fp.SRC->DST.MODE``: for IEEE-like targets, the spec equals Z3's own
  FloatingPoint conversion (fpToFP), an independent check of the spec encoding.
* ``cast.monotone.*``, ``cast.symmetric.*``: properties of the spec.
* ``cast.lut16.binary32->DST``: the lookup-table kernel's key lemma; ``cast.lut16.index``: the table path's
  index code (numpy and torch formulas, castkernel.sticky_key) is that key and the table's representative
  pattern has the lemma's collapsed low bits.
* ``cast.binary64->DST.MODE`` (64-bit words): rne into every target of ``targets('binary32')``; every other
  deterministic mode, the policies and sr (k = 8) into REP_TARGETS64.  binary64 -> binary32 is outside the
  kernel (targets of at most 16 bits).
* ``cast.INT->DST.deterministic`` / ``.sr``: integer sources (int8 ... int64, two's complement, 64-bit words)
  into INT_TARGETS, every deterministic mode x overflow mode in one theorem (and negative=clamp).
* ``cast.width.SRC->DST``: where required_width selects 32-bit words, they give the 64-bit words' result.
* ``cast.sr_unbiased.DST``: stochastic rounding is exactly unbiased (enumeration).
"""

from __future__ import annotations

from refarith.exact.rounding import DETERMINISTIC_MODES
from refarith.formats import float_formats, get_format
from refarith.smt import castproofs as cp
from refarith.smt.registry import COUNTEREXAMPLE, PROVED, theorem

SOURCES = ("binary32", "binary16", "bfloat16")
IEEE_LIKE = ("ocp_e5m2", "ieee_e4m3", "ieee_e3m4")
FP_MODES = ("rne", "rna", "rtz", "rup", "rdn")


def _kernel():
    from refarith.fast.castkernel import cast_bits

    return cast_bits


def targets(src: str) -> list[str]:
    out = [f.name for f in float_formats(8)]
    if src == "binary32":
        out += ["bfloat16", "binary16"]
    return out


def _kernel_theorem(src: str, dst: str, name: str, settings: list[tuple[str, str, str, str]]) -> None:
    desc = "; ".join(f"rounding={r},overflow={o},nan={n},negative={g}" for r, o, n, g in settings)
    stmt = f"for all {src} bit patterns x: cast_bits(x) == spec of cast({src}->{dst}) (code and error flag) for {desc}"

    @theorem(name, stmt, budget=60, tags=("cast", "kernel", src, dst))
    def check():
        return cp.prove_kernel(_kernel(), src, dst, settings, timeout_s=55)


def kernel_theorems(src: str, dst: str) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """(theorem name, settings) of every deterministic kernel theorem of one (src, dst) pair: one per rounding
    mode (every overflow mode, error policies) and the policies theorem where the target has one."""
    f = get_format(dst)
    ovs = cp.valid_overflows(f)
    out = [(f"cast.{src}->{dst}.{rnd}", [(rnd, o, "error", "error") for o in ovs]) for rnd in DETERMINISTIC_MODES]
    pol = []
    if not f.has_nan:
        pol += [("rne", ovs[0], "zero", "error"), ("rne", ovs[0], "max", "error")]
    if not f.signed:
        pol += [("rne", ovs[0], "error", "clamp")]
    if pol:
        out.append((f"cast.{src}->{dst}.policies", pol))
    return out


def sr_bits(src: str) -> int:
    """k of the ``sr`` kernel theorem from ``src``: more random bits than a binary16/bfloat16 source drops into
    some targets and fewer into others."""
    return 8 if src in ("binary32", "binary64") else 4


for _src in SOURCES:
    for _dst in targets(_src):
        for _name, _st in kernel_theorems(_src, _dst):
            _kernel_theorem(_src, _dst, _name, _st)


LIBRARY_OVERFLOW_TARGETS = ("ieee_e4m3", "ocp_e4m3", "ocp_e5m2")


def library_overflow_settings(dst: str) -> list[tuple[str, str, str, str]]:
    """Every deterministic mode x every deployed-library overflow mode (LIBRARY_OVERFLOW_MODES) that the spec
    admits for ``dst`` (error policies)."""
    from refarith.errors import RefarithError
    from refarith.exact.rounding import LIBRARY_OVERFLOW_MODES
    from refarith.spec import parse_spec

    out = []
    for rnd in DETERMINISTIC_MODES:
        for ov in LIBRARY_OVERFLOW_MODES:
            try:
                parse_spec(f"cast(binary32->{dst},rounding={rnd},overflow={ov})")
            except RefarithError:
                continue
            out.append((rnd, ov, "error", "error"))
    return out


for _dst in LIBRARY_OVERFLOW_TARGETS:
    _kernel_theorem("binary32", _dst, f"cast.library_overflow.binary32->{_dst}", library_overflow_settings(_dst))


def _sr_kernel_theorem(src: str, dst: str, k: int) -> None:
    @theorem(f"cast.{src}->{dst}.sr",
             f"for all {src} bit patterns x and all {k}-bit random integers r: cast_bits(x, rounding=sr, r) == spec "
             f"of cast({src}->{dst},rounding=sr,k={k}) for every overflow mode (code and error flag)",
             budget=60, tags=("cast", "kernel", "sr", src, dst))
    def check():
        return cp.prove_kernel_sr(_kernel(), src, dst, k, timeout_s=55)


for _src in SOURCES:
    for _dst in targets(_src):
        _sr_kernel_theorem(_src, _dst, sr_bits(_src))


def _fp_theorem(src: str, dst: str, rnd: str) -> None:
    @theorem(f"cast.fp.{src}->{dst}.{rnd}",
             f"for all non-NaN {src} x: spec cast({src}->{dst},rounding={rnd},overflow=inf)(x) == "
             f"Z3 fpToFP({rnd}) of x (Z3's IEEE 754 conversion), bit for bit",
             budget=60, tags=("cast", "spec", "fp"))
    def check():
        return cp.prove_fp_agrees(src, dst, rnd, timeout_s=55)


for _src in SOURCES:
    for _dst in IEEE_LIKE + (("bfloat16", "binary16") if _src == "binary32" else ()):
        for _rnd in FP_MODES:
            _fp_theorem(_src, _dst, _rnd)


def _settings(dst: str, monotone: bool) -> list[tuple[str, str]]:
    f = get_format(dst)
    ovs = [o for o in cp.valid_overflows(f) if not (monotone and o == "nan")]
    return [(r, o) for r in DETERMINISTIC_MODES for o in ovs]


def _monotone_theorem(dst: str) -> None:
    st = _settings(dst, True)

    @theorem(f"cast.monotone.binary32->{dst}",
             f"for all binary32 x <= y (not NaN{', x >= +0' if not get_format(dst).signed else ''}), every "
             f"deterministic mode and overflow saturate/inf: value(cast(x)) <= value(cast(y)) (spec)",
             budget=120, tags=("cast", "spec", "monotone"))
    def check():
        return cp.prove_monotone("binary32", dst, st, timeout_s=110)


def _symmetric_theorem(dst: str) -> None:
    st = _settings(dst, False)

    @theorem(f"cast.symmetric.binary32->{dst}",
             "for all non-NaN binary32 x, every overflow mode: cast_m(-x) == -cast_m'(x) with m' = m for "
             "rne/rna/rtz/rto and rup<->rdn swapped (spec; -0 is +0 where the target has no -0)",
             budget=120, tags=("cast", "spec", "symmetric"))
    def check():
        return cp.prove_symmetric("binary32", dst, st, timeout_s=110)


def _lut_theorem(dst: str) -> None:
    f = get_format(dst)
    expect = PROVED if f.mbits <= 6 else COUNTEREXAMPLE
    verb = "depends only on" if expect == PROVED else "does NOT depend only on"
    theorem_name = f"cast.lut16.binary32->{dst}"

    @theorem(theorem_name,
             f"the spec of cast(binary32->{dst}) (every deterministic mode and overflow mode, code and error) {verb} "
             f"(bits >> 16, (bits & 0xFFFF) != 0) ({dst} has {f.mbits} mantissa bits)",
             expect=expect, budget=120, tags=("cast", "spec", "lut"))
    def check():
        return cp.prove_lut_key(dst, timeout_s=110)


def _sr_theorem(dst: str) -> None:
    @theorem(f"cast.sr_unbiased.{dst}",
             f"stochastic rounding into {dst} is exactly unbiased: for k = 1, 2, 3 and every x = ±(n + j/2^k) ulp "
             "within range, sum over r < 2^k of round(x, sr, r) == 2^k x (exhaustive enumeration, exact model)",
             budget=120, tags=("cast", "spec", "sr"))
    def check():
        return cp.sr_unbiased(dst)


for _dst in targets("binary32"):
    _monotone_theorem(_dst)
    if get_format(_dst).signed:
        _symmetric_theorem(_dst)
    _lut_theorem(_dst)
for _dst in targets("bfloat16"):
    _sr_theorem(_dst)


# ------------------------------------------------------------ binary64 and integer sources, word widths, LUT index
ALL_TARGETS64 = tuple(targets("binary32"))  # every <= 8-bit target, bfloat16, binary16 (the kernel's limit: 16 bits)
REP_TARGETS64 = ("ocp_e5m2", "ocp_e4m3", "ocp_e3m2", "ocp_e2m3", "ocp_e2m1", "e8m0", "ue4m3", "bfloat16", "binary16")
INT_SOURCES = ("int8", "uint8", "int16", "int32", "uint32", "int64")
INT_TARGETS = ("ocp_e4m3", "ocp_e2m1", "e8m0", "ue4m3", "bfloat16", "binary16")
WIDTH_TARGETS = ("ocp_e5m2", "ocp_e4m3", "ocp_e2m1", "e8m0", "ue4m3", "binary8p1uf", "binary8p7sf")


def binary64_theorems() -> list[tuple[str, str, list[tuple[str, str, str, str]]]]:
    """(target, theorem name, settings) of the binary64 kernel theorems: rne into every target; the other
    deterministic modes and the policies into the representative targets."""
    out = []
    for dst in ALL_TARGETS64:
        for name, st in kernel_theorems("binary64", dst):
            if name.endswith(".rne") or dst in REP_TARGETS64:
                out.append((dst, name, st))
    return out


def int_settings(src: str, dst: str) -> list[tuple[str, str, str, str]]:
    """Every deterministic mode x overflow mode (error policies), plus negative=clamp for a signed integer into
    an unsigned target."""
    f, s = get_format(dst), get_format(src)
    ovs = cp.valid_overflows(f)
    out = [(r, o, "error", "error") for r in DETERMINISTIC_MODES for o in ovs]
    if not f.signed and s.signed:
        out.append(("rne", ovs[0], "error", "clamp"))
    return out


for _dst, _name, _st in binary64_theorems():
    _kernel_theorem("binary64", _dst, _name, _st)
for _dst in REP_TARGETS64:
    _sr_kernel_theorem("binary64", _dst, sr_bits("binary64"))
for _src in INT_SOURCES:
    for _dst in INT_TARGETS:
        _kernel_theorem(_src, _dst, f"cast.{_src}->{_dst}.deterministic", int_settings(_src, _dst))
        _sr_kernel_theorem(_src, _dst, 8)


def width_pairs() -> list[tuple[str, str]]:
    """(src, dst) pairs of the word-width theorems: 32-bit words selected by required_width."""
    pairs = [(s, d) for s in SOURCES for d in WIDTH_TARGETS]
    return pairs + [("binary32", "bfloat16"), ("binary32", "binary16")]


def _width_theorem(src: str, dst: str) -> None:
    st = [(r, o, "error", "error") for r in DETERMINISTIC_MODES for o in cp.valid_overflows(get_format(dst))]

    @theorem(f"cast.width.{src}->{dst}",
             f"required_width({src}, {dst}) is 32, and for all {src} bit patterns x, every deterministic mode and "
             f"overflow mode: cast_bits on 32-bit words == cast_bits on 64-bit words (code and error flag)",
             budget=60, tags=("cast", "kernel", "width", src, dst))
    def check():
        from refarith.fast.castkernel import required_width
        from refarith.smt.registry import Outcome

        w = required_width(src, dst)
        if w != 32:
            return Outcome(COUNTEREXAMPLE, {"required_width": w}, True, detail="the pair is not on 32-bit words")
        return cp.prove_width(_kernel(), src, dst, st, 32, 64, timeout_s=55)


for _src, _dst in width_pairs():
    _width_theorem(_src, _dst)


@theorem("cast.lut16.index",
         "for all 32-bit x: castkernel.sticky_key(x) == (x >> 16) << 1 | (x & 0xFFFF != 0), key_representative of it "
         "== (x & 0xFFFF0000) | (x & 0xFFFF != 0), and the numpy (uint32) and torch (int32, & 0x1FFFF) index "
         "formulas of the table path equal the key; with cast.binary32->DST.* on the representative and "
         "cast.lut16.binary32->DST, table[index(x)] == spec(x)",
         budget=60, tags=("cast", "kernel", "lut"))
def _lut_index():
    return cp.prove_lut_index(timeout_s=55)
