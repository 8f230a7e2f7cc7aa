"""Checks behind the cast theorems: kernel == spec, spec == Z3 FloatingPoint, monotonicity, symmetry, LUT lemma.

Every check returns a :class:`refarith.smt.registry.Outcome`.  A counterexample
is shown as concrete bits and exact values and re-checked with refarith.exact
(``confirmed`` is True when the exact model agrees that the claim fails).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import z3

from refarith.errors import RefarithError
from refarith.exact.ops import cast as exact_cast
from refarith.exact.ops import decode
from refarith.exact.rounding import DETERMINISTIC_MODES, check_modes
from refarith.fast.trace import Graph, evaluate, trace
from refarith.formats import FloatFormat, get_format
from refarith.smt.bitops_z3 import Z3BitOps
from refarith.smt.encode import bitlen, cast_spec, fp_cast, is_nan_code, negate_code, value_key
from refarith.smt.registry import PROVED, Outcome, prove

Kernel = Callable[..., tuple]


def valid_overflows(dst: FloatFormat) -> list[str]:
    """Overflow modes that apply to a float target (check_modes decides)."""
    out = []
    for ov in ("saturate", "inf", "nan"):
        try:
            check_modes(dst, "rne", ov)
        except RefarithError:
            continue
        out.append(ov)
    return out


def exact_result(code: int, src: FloatFormat, dst: FloatFormat, rounding: str, overflow: str, nan_policy: str,
                 negative: str) -> int | None:
    """The exact model's code, or None when an ``error`` policy rejects the input."""
    try:
        return exact_cast(code, src, dst, rounding, overflow, nan_policy, negative).code
    except RefarithError:
        return None


def exact_sr(code: int, src: FloatFormat, dst: FloatFormat, overflow: str, rand: int, k: int) -> int | None:
    """The exact model's ``sr`` code (nan=error, negative=error) with random integer ``rand`` of ``k`` bits, or
    None when a policy rejects the input."""
    try:
        return exact_cast(code, src, dst, "sr", overflow, rand=rand, rand_bits=k).code
    except RefarithError:
        return None


def _show(code: int | None, fmt: FloatFormat) -> str:
    if code is None:
        return "error"
    if not 0 <= code < fmt.ncodes:
        return f"{code:#x} (out of range)"
    return f"{code:#0{2 + (fmt.nbits + 3) // 4}x} = {decode(code, fmt)}"


def _fmt_bits(code: int, fmt: FloatFormat) -> str:
    return f"{code:#0{2 + (fmt.nbits + 3) // 4}x}"


def kernel_graph(kernel: Kernel, src: FloatFormat, dst: FloatFormat, rounding: str, overflow: str, nan_policy: str,
                 negative: str, width: int, rand_bits: int | None = None) -> Graph:
    """The kernel traced once for one setting: the graph both the proof and the Triton backend read (refarith's
    own ``cast_bits`` through :func:`refarith.fast.graphs.cast_graph`, so the digests are the backend's)."""
    from refarith.fast.castkernel import cast_bits
    from refarith.fast.graphs import cast_graph

    if kernel is cast_bits:
        return cast_graph(src.name, dst.name, rounding, overflow, nan_policy, negative, rand_bits, width)
    name = f"{getattr(kernel, '__qualname__', 'kernel')}({src.name}->{dst.name},{rounding},{overflow},{nan_policy}," \
           f"{negative})@{width}"
    if rounding == "sr":
        return trace(lambda ops, x, r: kernel(ops, x, src, dst, rounding=rounding, overflow=overflow,
                                              nan_policy=nan_policy, negative=negative, r=r, rand_bits=rand_bits),
                     width, ("x", "r"), name)
    return trace(lambda ops, x: kernel(ops, x, src, dst, rounding=rounding, overflow=overflow, nan_policy=nan_policy,
                                       negative=negative), width, ("x",), name)


def kernel_formula(kernel: Kernel, bits: z3.BitVecRef, src: FloatFormat, dst: FloatFormat, rounding: str,
                   overflow: str, nan_policy: str, negative: str, width: int = 32, r: z3.BitVecRef | None = None,
                   rand_bits: int | None = None, share: str | None = None):
    """(codes, error, ops, graph digest) of a bit-operations kernel: its traced graph evaluated on Z3 words (the
    ops record undefined shifts).  ``share``: see :class:`Z3BitOps` — only for traces that each sit in a conjunct
    of their own."""
    g = kernel_graph(kernel, src, dst, rounding, overflow, nan_policy, negative, width, rand_bits)
    ops = Z3BitOps(width, share=share)
    ins = [ops.word(bits)] + ([ops.word(r)] if rounding == "sr" else [])
    codes, err = evaluate(g, ops, ins)
    if isinstance(err, bool):
        err = z3.BoolVal(err)
    return ops.word(codes), err, ops, g.digest


def _with_graphs(out: Outcome, digests: list[str]) -> Outcome:
    """Record the digests of the graphs a proof read (one per setting) in its outcome."""
    out.detail = (out.detail + " " if out.detail else "") + "graphs " + ",".join(digests)
    return out


def _kernel_width(kernel: Kernel, src: FloatFormat, dst: FloatFormat) -> int:
    """The word width a kernel asks for (its module's ``required_width(src, dst)``), else 32."""
    import importlib

    try:
        mod = importlib.import_module(getattr(kernel, "__module__", "") or "")
    except (ImportError, ValueError):
        return 32
    req = getattr(mod, "required_width", None)
    return req(src, dst) if callable(req) else 32


Setting = tuple[str, str, str, str]  # (rounding, overflow, nan_policy, negative)


def _replay_numpy(kernel: Kernel, x: int, src: FloatFormat, dst: FloatFormat, st: Setting, width: int) -> str:
    """Run the same kernel on numpy words for one input (shows that a counterexample is not a Z3 artefact)."""
    try:
        import numpy as np

        from refarith.fast.bitops import NumpyBitOps

        ops = NumpyBitOps(width)
        codes, err = kernel(ops, ops.word(np.array([x])), src, dst, rounding=st[0], overflow=st[1],
                            nan_policy=st[2], negative=st[3])
        if bool(np.asarray(err).reshape(-1)[0]):
            return "error"
        return _show(int(np.asarray(codes).reshape(-1)[0]), dst)
    except Exception as e:  # the replay is a diagnostic only
        return f"replay failed: {type(e).__name__}: {e}"


def prove_kernel(kernel: Kernel, src: FloatFormat | str, dst: FloatFormat | str, settings: list[Setting],
                 timeout_s: float = 60.0, width: int | None = None) -> Outcome:
    """Claim: for every source pattern and every (rounding, overflow, nan_policy, negative) in ``settings``, the
    kernel's error flag equals the spec's and, where there is no error, its code (the whole word, so the high bits
    must be zero) equals the spec's code.  The settings are proved in one solver call (they share the rounding
    core, which makes one call much cheaper than several).  ``width``: the word width (default: the kernel
    module's ``required_width`` when it has one, else 32)."""
    src, dst = get_format(src), get_format(dst)
    if width is None:
        width = _kernel_width(kernel, src, dst)
    bits = z3.BitVec("x", src.nbits)
    parts, observe, undefined, digests = [], {}, False, []
    for i, (rnd, ov, nanp, neg) in enumerate(settings):
        # one kernel trace per conjunct (setting): shared undefined-shift constants are sound here (Z3BitOps)
        codes, err, ops, digest = kernel_formula(kernel, bits, src, dst, rnd, ov, nanp, neg, width, share="kernel")
        digests.append(digest)
        undefined = undefined or bool(ops.undefined)
        spec = cast_spec(bits, src, dst, rnd, ov, nanp, neg)
        want = z3.ZeroExt(width - dst.nbits, spec.code)
        parts.append(z3.And(err == spec.error, z3.Or(spec.error, codes == want)))
        observe.update({f"k{i}": codes, f"ke{i}": err, f"s{i}": spec.code, f"se{i}": spec.error})

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        x = a["x"]
        shown = {"source_bits": _fmt_bits(x, src), "source_value": str(decode(x, src))}
        confirmed = False
        for i, st in enumerate(settings):
            k = None if a[f"ke{i}"] else a[f"k{i}"]
            sp = None if a[f"se{i}"] else a[f"s{i}"]
            if k == sp:
                continue
            ex = exact_result(x, src, dst, *st)
            confirmed = confirmed or ex != k
            shown[f"cast({src.name}->{dst.name},rounding={st[0]},overflow={st[1]},nan={st[2]},negative={st[3]})"] = {
                "kernel": _show(k, dst) if k is None or k < dst.ncodes else f"{k:#x} (not a {dst.nbits}-bit code)",
                "kernel_on_numpy": _replay_numpy(kernel, x, src, dst, st, width),
                "spec_encoding": _show(sp, dst),
                "exact_model": _show(ex, dst),
            }
        if undefined and any(isinstance(v, dict) and v["kernel"] != v["kernel_on_numpy"] for v in shown.values()):
            shown["note"] = ("the kernel shifts by a count >= the word width here: Z3 models the result as "
                             "arbitrary, numpy's result differs")
        return shown, confirmed

    return _with_graphs(prove(z3.And(*parts), {"x": bits}, timeout_s, confirm, observe=observe), digests)


def prove_kernel_sr(kernel: Kernel, src: FloatFormat | str, dst: FloatFormat | str, k: int,
                    overflows: list[str] | None = None, timeout_s: float = 60.0, width: int | None = None) -> Outcome:
    """Claim: for every source pattern x and every k-bit random integer r, the kernel with rounding=sr equals the
    spec (nan=error, negative=error: error flags must match too), for each overflow mode in ``overflows``."""
    src, dst = get_format(src), get_format(dst)
    if width is None:
        width = _kernel_width(kernel, src, dst)
    overflows = overflows or valid_overflows(dst)
    bits = z3.BitVec("x", src.nbits)
    r = z3.BitVec("r", k)
    parts, observe, digests = [], {}, []
    for i, ov in enumerate(overflows):
        codes, err, ops, digest = kernel_formula(kernel, bits, src, dst, "sr", ov, "error", "error", width, r=r,
                                                 rand_bits=k, share="kernel")  # one trace per conjunct
        digests.append(digest)
        spec = cast_spec(bits, src, dst, "sr", ov, rand=z3.ZeroExt(32 - k, r), rand_bits=k)
        parts.append(z3.And(err == spec.error, z3.Or(spec.error, codes == z3.ZeroExt(width - dst.nbits, spec.code))))
        observe.update({f"k{i}": codes, f"ke{i}": err, f"s{i}": spec.code, f"se{i}": spec.error})

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        x, rv = a["x"], a["r"]
        shown = {"source_bits": _fmt_bits(x, src), "source_value": str(decode(x, src)), "r": rv, "k": k}
        confirmed = False
        for i, ov in enumerate(overflows):
            kc = None if a[f"ke{i}"] else a[f"k{i}"]
            sp = None if a[f"se{i}"] else a[f"s{i}"]
            if kc == sp:
                continue
            ex = exact_sr(x, src, dst, ov, rv, k)
            confirmed = confirmed or ex != kc
            shown[f"cast({src.name}->{dst.name},rounding=sr,overflow={ov},k={k})"] = {
                "kernel": _show(kc, dst) if kc is None or kc < dst.ncodes else f"{kc:#x}",
                "spec_encoding": _show(sp, dst), "exact_model": _show(ex, dst)}
        return shown, confirmed

    return _with_graphs(prove(z3.And(*parts), {"x": bits, "r": r}, timeout_s, confirm, observe=observe), digests)


def prove_fp_agrees(src: FloatFormat | str, dst: FloatFormat | str, rounding: str,
                    timeout_s: float = 60.0) -> Outcome:
    """Claim: for every non-NaN source pattern, the spec (overflow=inf) equals Z3's IEEE fpToFP conversion."""
    src, dst = get_format(src), get_format(dst)
    bits = z3.BitVec("x", src.nbits)
    spec = cast_spec(bits, src, dst, rounding, "inf")
    fp = fp_cast(bits, src, dst, rounding)
    x_nan = z3.fpIsNaN(z3.fpBVToFP(bits, z3.FPSort(src.ebits, src.mbits + 1)))
    claim = z3.Or(x_nan, spec.code == fp)

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        x = a["x"]
        ex = exact_result(x, src, dst, rounding, "inf", "error", "error")
        shown = {"source_bits": _fmt_bits(x, src), "source_value": str(decode(x, src)),
                 "spec_encoding": _show(a["spec"], dst), "z3_fp": _show(a["fp"], dst), "exact_model": _show(ex, dst)}
        return shown, ex != a["fp"]  # confirmed: the exact model disagrees with Z3's IEEE conversion too

    return prove(claim, {"x": bits}, timeout_s, confirm, observe={"spec": spec.code, "fp": fp})


def _pair_confirm(src: FloatFormat, dst: FloatFormat, settings: list[tuple[str, str]],
                  relation: Callable[[int, int, int, int, str, str], bool]):
    """Build a confirm function for two-input claims: re-run every (rounding, overflow) setting exactly."""

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        x, y = a["x"], a["y"]
        shown = {"x_bits": _fmt_bits(x, src), "x_value": str(decode(x, src)),
                 "y_bits": _fmt_bits(y, src), "y_value": str(decode(y, src))}
        fails = False
        for rnd, ov in settings:
            cx = exact_result(x, src, dst, rnd, ov, "error", "error")
            cy = exact_result(y, src, dst, rnd, ov, "error", "error")
            if cx is None or cy is None:
                continue
            if not relation(x, y, cx, cy, rnd, ov):
                fails = True
                shown[f"{rnd}.{ov}"] = f"cast(x) = {_show(cx, dst)}, cast(y) = {_show(cy, dst)}"
        return shown, fails

    return confirm


def _value(code: int, fmt: FloatFormat) -> Fraction | None:
    v = decode(code, fmt)
    if v.is_nan:
        return None
    if v.is_inf:
        return Fraction(-(10**60)) if v.sign else Fraction(10**60)
    return v.fraction


def ieee_successor(bits: z3.BitVecRef) -> z3.BitVecRef:
    """The next pattern up in the IEEE total order of non-NaN values (-0 -> +0; undefined for +inf)."""
    n = bits.size()
    neg = z3.Extract(n - 1, n - 1, bits) == 1
    minus_zero = z3.BitVecVal(1 << (n - 1), n)
    return z3.If(bits == minus_zero, z3.BitVecVal(0, n), z3.If(neg, bits - 1, bits + 1))


def prove_monotone(src: FloatFormat | str, dst: FloatFormat | str, settings: list[tuple[str, str]],
                   timeout_s: float = 60.0) -> Outcome:
    """Claim: x <= y (both not NaN) implies value(cast(x)) <= value(cast(y)) for each (rounding, overflow) in
    ``settings`` (overflow modes that never give NaN for a non-NaN input).

    Proved by the adjacent-pair reduction: the non-NaN source patterns form one chain -inf, ..., -0, +0, ..., +inf
    under :func:`ieee_successor`, so by transitivity it suffices that cast(x) <= cast(succ(x)) for every non-NaN
    x other than +inf (for unsigned targets: the chain from +0, negatives being errors)."""
    src, dst = get_format(src), get_format(dst)
    x = z3.BitVec("x", src.nbits)
    y = ieee_successor(x)
    srt = z3.FPSort(src.ebits, src.mbits + 1)
    fx = z3.fpBVToFP(x, srt)
    parts = []
    for rnd, ov in settings:
        sx = cast_spec(x, src, dst, rnd, ov, "zero", "clamp")
        sy = cast_spec(y, src, dst, rnd, ov, "zero", "clamp")
        parts.append(z3.Or(is_nan_code(sx.code, dst), is_nan_code(sy.code, dst),
                           value_key(sx.code, dst) <= value_key(sy.code, dst)))
    pre = z3.And(z3.Not(z3.fpIsNaN(fx)), z3.Not(z3.And(z3.fpIsInf(fx), z3.fpIsPositive(fx))))
    if not dst.signed:
        pre = z3.And(pre, z3.Extract(src.nbits - 1, src.nbits - 1, x) == 0)
    claim = z3.Implies(pre, z3.And(*parts))

    def rel(bx: int, by: int, cx: int, cy: int, rnd: str, ov: str) -> bool:
        vx, vy = _value(cx, dst), _value(cy, dst)
        return vx is None or vy is None or vx <= vy

    return prove(claim, {"x": x}, timeout_s, _pair_confirm(src, dst, settings, rel), observe={"y": y})


MIRROR = {"rne": "rne", "rna": "rna", "rtz": "rtz", "rto": "rto", "rup": "rdn", "rdn": "rup"}


def prove_symmetric(src: FloatFormat | str, dst: FloatFormat | str, settings: list[tuple[str, str]],
                    timeout_s: float = 60.0) -> Outcome:
    """Claim (signed targets): cast_mode(-x) = -cast_mirror(mode)(x) for every non-NaN x, where the mirror of
    rup is rdn and vice versa and every other mode is its own mirror; -0 is +0 in formats without -0."""
    src, dst = get_format(src), get_format(dst)
    x = z3.BitVec("x", src.nbits)
    y = x ^ z3.BitVecVal(1 << (src.nbits - 1), src.nbits)
    srt = z3.FPSort(src.ebits, src.mbits + 1)
    parts = []
    for rnd, ov in settings:
        a = cast_spec(y, src, dst, rnd, ov, "zero", "clamp")
        b = cast_spec(x, src, dst, MIRROR[rnd], ov, "zero", "clamp")
        parts.append(a.code == negate_code(b.code, dst))
    claim = z3.Implies(z3.Not(z3.fpIsNaN(z3.fpBVToFP(x, srt))), z3.And(*parts))

    def confirm(asg: dict[str, int]) -> tuple[dict, bool]:
        xv = asg["x"]
        yv = xv ^ (1 << (src.nbits - 1))
        shown = {"x_bits": _fmt_bits(xv, src), "x_value": str(decode(xv, src))}
        fails = False
        for rnd, ov in settings:
            cneg = exact_result(yv, src, dst, rnd, ov, "error", "error")
            cpos = exact_result(xv, src, dst, MIRROR[rnd], ov, "error", "error")
            vn, vp = decode(cneg, dst), decode(cpos, dst)
            same = (vn.is_nan and vp.is_nan) or (not vn.is_nan and not vp.is_nan and
                                                  (vn == -vp or (vn.is_zero and vp.is_zero and
                                                                 not dst.has_negative_zero)))
            if not same:
                fails = True
                shown[f"{rnd}.{ov}"] = f"cast(-x) = {_show(cneg, dst)}, cast_{MIRROR[rnd]}(x) = {_show(cpos, dst)}"
        return shown, fails

    return prove(claim, {"x": x}, timeout_s, confirm)


def prove_width(kernel: Kernel, src: FloatFormat | str, dst: FloatFormat | str, settings: list[Setting],
                narrow: int = 32, wide: int = 64, timeout_s: float = 60.0) -> Outcome:
    """Claim: for every source pattern and every setting, the kernel on ``narrow``-bit words gives the same error
    flag and (where there is no error) the same code as on ``wide``-bit words.  A counterexample is confirmed when
    the exact model disagrees with the narrow word's result (the narrow choice is the wrong one)."""
    src, dst = get_format(src), get_format(dst)
    bits = z3.BitVec("x", src.nbits)
    parts, observe = [], {}
    for i, st in enumerate(settings):
        # per conjunct one trace of each width; the names carry the width, so the two never share (Z3BitOps)
        cn, en, _, _ = kernel_formula(kernel, bits, src, dst, *st, width=narrow, share="kernel")
        cw, ew, _, _ = kernel_formula(kernel, bits, src, dst, *st, width=wide, share="kernel")
        parts.append(z3.And(en == ew, z3.Or(en, z3.ZeroExt(wide - narrow, cn) == cw)))
        observe.update({f"n{i}": cn, f"ne{i}": en, f"w{i}": cw, f"we{i}": ew})

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        x = a["x"]
        shown = {"source_bits": _fmt_bits(x, src), "source_value": str(decode(x, src))}
        confirmed = False
        for i, st in enumerate(settings):
            n = None if a[f"ne{i}"] else a[f"n{i}"]
            w = None if a[f"we{i}"] else a[f"w{i}"]
            if n == w:
                continue
            ex = exact_result(x, src, dst, *st)
            confirmed = confirmed or ex != n
            shown[f"cast({src.name}->{dst.name},rounding={st[0]},overflow={st[1]},nan={st[2]},negative={st[3]})"] = {
                f"kernel_{narrow}_bit": _show(n, dst) if n is None or n < dst.ncodes else f"{n:#x}",
                f"kernel_{wide}_bit": _show(w, dst) if w is None or w < dst.ncodes else f"{w:#x}",
                "exact_model": _show(ex, dst)}
        return shown, confirmed

    return prove(z3.And(*parts), {"x": bits}, timeout_s, confirm, observe=observe)


def prove_lut_index(timeout_s: float = 60.0) -> Outcome:
    """Claim, for every 32-bit pattern x, about the table path of refarith.fast.cast (binary32 sources):

    * ``castkernel.sticky_key`` (traced on Z3 words) is (x >> 16) << 1 | (x & 0xFFFF != 0), and
      ``key_representative`` of that key is :func:`lut_key_pattern` (x), the pattern the lemma cast.lut16.* speaks
      of, so the table entry built on the representative is the spec of a pattern with the same key;
    * the numpy index formula (x | ((x & 0x7FFF) + 0x7FFF)) >> 15 (``sticky_keys``, inlined in ``_gather``) and the
      torch one (the same on int32 with an arithmetic shift, then & 0x1FFFF) both equal that key."""
    from refarith.fast.castkernel import key_representative, sticky_key

    ops = Z3BitOps(32)
    x = z3.BitVec("x", 32)
    key = sticky_key(ops, x)
    want = (z3.LShR(x, 16) << 1) | z3.If(z3.Extract(15, 0, x) != 0, z3.BitVecVal(1, 32), z3.BitVecVal(0, 32))
    rep = key_representative(ops, key)
    c15 = z3.BitVecVal(0x7FFF, 32)
    np_idx = z3.LShR(x | ((x & c15) + c15), 15)
    torch_idx = ((x | ((x & c15) + c15)) >> 15) & 0x1FFFF  # >> on BitVecRef is the arithmetic shift
    claim = z3.And(key == want, rep == lut_key_pattern(x), np_idx == key, torch_idx == key)

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        xv = a["x"]
        k = ((xv >> 16) << 1) | (1 if xv & 0xFFFF else 0)
        shown = {"x_bits": f"{xv:#010x}", "key": hex(k), "sticky_key": hex(a["key"]),
                 "representative": hex(a["rep"]), "numpy_index": hex(a["np"]), "torch_index": hex(a["torch"])}
        rep_ok = a["rep"] == ((xv & 0xFFFF0000) | (k & 1))
        return shown, not (a["key"] == k == a["np"] == a["torch"] and rep_ok)

    return prove(claim, {"x": x}, timeout_s, confirm, observe={"key": key, "rep": rep, "np": np_idx,
                                                               "torch": torch_idx})


def lut_key_pattern(bits: z3.BitVecRef) -> z3.BitVecRef:
    """The binary32 pattern with the low 16 bits collapsed to one sticky bit: (bits & 0xFFFF0000) | (low != 0)."""
    low_nz = z3.Extract(15, 0, bits) != 0
    return (bits & 0xFFFF0000) | z3.If(low_nz, z3.BitVecVal(1, 32), z3.BitVecVal(0, 32))


def prove_lut_key(dst: FloatFormat | str, timeout_s: float = 60.0,
                  modes: tuple[str, ...] = DETERMINISTIC_MODES) -> Outcome:
    """Claim: for binary32 sources the spec's result (code and error, every deterministic mode, every overflow
    mode, nan=zero, negative=clamp and the error policies) depends only on (bits >> 16, (bits & 0xFFFF) != 0)."""
    src, dst = get_format("binary32"), get_format(dst)
    x = z3.BitVec("x", 32)
    k = lut_key_pattern(x)
    parts = []
    settings = [(rnd, ov) for rnd in modes for ov in valid_overflows(dst)]
    for rnd, ov in settings:
        a, b = cast_spec(x, src, dst, rnd, ov), cast_spec(k, src, dst, rnd, ov)
        parts.append(z3.And(a.code == b.code, a.error == b.error))

    def confirm(asg: dict[str, int]) -> tuple[dict, bool]:
        xv = asg["x"]
        kv = (xv & 0xFFFF0000) | (1 if xv & 0xFFFF else 0)
        shown = {"x_bits": _fmt_bits(xv, src), "x_value": str(decode(xv, src)),
                 "same_key_bits": _fmt_bits(kv, src), "same_key_value": str(decode(kv, src))}
        fails = False
        for rnd, ov in settings:
            cx = exact_result(xv, src, dst, rnd, ov, "error", "error")
            ck = exact_result(kv, src, dst, rnd, ov, "error", "error")
            if cx != ck:
                fails = True
                shown[f"{rnd}.{ov}"] = f"{_show(cx, dst)} vs {_show(ck, dst)}"
        return shown, fails

    return prove(z3.And(*parts), {"x": x}, timeout_s, confirm)


def class_pattern(bits: z3.BitVecRef, dst: FloatFormat | str, src: FloatFormat | str = "binary32") -> z3.BitVecRef:
    """The representative pattern of the per-binade class of binary32 or binary64 ``bits`` for a wide target
    (bfloat16, binary16, or an 8-bit target with 7 mantissa bits; see :func:`refarith.smt.castsweep.class_index`):
    the exponent clamped (:func:`clamp_exponent`), then sign and exponent field kept; with d the source
    significand bits below the target ulp in that binade, q = sig >> d kept and the remainder replaced by 0, 1,
    half or half + 1 (the class's smallest member in the binade) for remainder 0, below, equal to or above half;
    for the all-ones exponent field the mantissa becomes (mantissa != 0)."""
    dst, src = get_format(dst), get_format(src)
    n, m, eb, bias = src.nbits, src.mbits, src.ebits, src.bias
    bits = clamp_exponent(bits, src, dst)
    w = 64
    e_f = z3.ZeroExt(w - eb, z3.Extract(n - 2, m, bits))
    man = z3.ZeroExt(w - m, z3.Extract(m - 1, 0, bits))
    top = z3.ZeroExt(w - eb - 1, z3.Extract(n - 1, m, bits)) << m
    c = lambda v: z3.BitVecVal(v & ((1 << w) - 1), w)  # noqa: E731
    normal = e_f != 0
    sig = z3.If(normal, man | c(1 << m), man)
    es = z3.If(normal, e_f, c(1)) - c(bias + m)  # the source ulp exponent (two's complement in 64 bits)
    lg = z3.If(normal, e_f - c(bias), c(-bias))  # every subnormal lies below 2^(1 - bias) <= 2^emin of the target
    emin = c(dst.emin)
    d = z3.If(lg > emin, lg, emin) - c(dst.mbits) - es  # signed comparisons on BitVecRef
    d = z3.If(d > c(63), c(63), d)  # d >= 63 keeps q = 0 and rem = sig < 2^53 < half either way
    low = (c(1) << d) - c(1)
    rem = sig & low
    base = sig - rem
    half = c(1) << (d - c(1))
    s_lo = z3.If(normal, c(1 << m), c(0))
    a = z3.If(z3.UGT(base, s_lo), base, s_lo)
    up1 = base + c(1)
    up3 = base + half + c(1)
    rep = z3.If(rem == 0, base,
                z3.If(z3.ULT(rem, half), z3.If(z3.UGT(up1, a), up1, a),
                      z3.If(rem == half, base + half, z3.If(z3.UGT(up3, a), up3, a))))
    finite = top | (rep & c((1 << m) - 1))
    special = top | z3.If(man != 0, c(1), c(0))
    return z3.Extract(n - 1, 0, z3.If(e_f == c((1 << eb) - 1), special, finite))


KEY_LOW = {"binary32": 16, "binary64": 44}  # low mantissa bits collapsed to a sticky bit (rounding bit above them)


def key_window(src: FloatFormat | str, dst: FloatFormat | str) -> tuple[int, int]:
    """(E_lo, E_hi): the source exponent fields that the representative maps clamp nonzero finite values into.
    Every magnitude with a field <= E_lo lies below a quarter of the target's smallest positive value, every one
    with a field >= E_hi at or above 2^(emax + 2) > 2 max: each group rounds alike, by sign, in every mode.  The
    window is cut to the source's normal fields (no clamping where the target's range reaches further)."""
    src, dst = get_format(src), get_format(dst)
    least = dst.min_subnormal if dst.subnormals else dst.min_normal  # a power of two
    lg_min = least.numerator.bit_length() - least.denominator.bit_length()
    top = (1 << src.ebits) - 2
    return max(1, src.bias + lg_min - 3), min(top, src.bias + dst.emax + 2)


def clamp_exponent(bits: z3.BitVecRef, src: FloatFormat | str, dst: FloatFormat | str) -> z3.BitVecRef:
    """``bits`` with the exponent field of a nonzero finite value clamped into :func:`key_window` (field 0 and
    the all-ones field kept)."""
    src = get_format(src)
    e_lo, e_hi = key_window(src, dst)
    n, m, eb = src.nbits, src.mbits, src.ebits
    e_f = z3.Extract(n - 2, m, bits)
    ce = lambda v: z3.BitVecVal(v, eb)  # noqa: E731
    special = z3.Or(e_f == 0, e_f == ce((1 << eb) - 1))
    e_c = z3.If(special, e_f, z3.If(z3.ULT(e_f, ce(e_lo)), ce(e_lo), z3.If(z3.UGT(e_f, ce(e_hi)), ce(e_hi), e_f)))
    return z3.Concat(z3.Extract(n - 1, n - 1, bits), e_c, z3.Extract(m - 1, 0, bits))


def clamped_key_pattern(bits: z3.BitVecRef, src: FloatFormat | str, dst: FloatFormat | str) -> z3.BitVecRef:
    """The representative pattern of ``bits`` (binary32 into a target of at most 6 mantissa bits, binary64 at
    most 7): the low KEY_LOW[src] bits collapsed to one sticky bit and the exponent clamped (:func:`clamp_exponent`)."""
    src = get_format(src)
    low = KEY_LOW[src.name]
    b = clamp_exponent(bits, src, dst)
    low_nz = z3.Extract(low - 1, 0, b) != 0
    return z3.Concat(z3.Extract(src.nbits - 1, low, b), z3.If(low_nz, z3.BitVecVal(1, low), z3.BitVecVal(0, low)))


def int_rep_params(src: FloatFormat | str, dst: FloatFormat | str) -> tuple[int, int | None]:
    """(p, clamp) of the integer class map: p = the target's significand bits; clamp = the magnitude 2^(emax + 2)
    every larger magnitude is sent to (each such magnitude exceeds 2 max and rounds alike, by sign, in every
    mode), or None when the source cannot reach it."""
    src, dst = get_format(src), get_format(dst)
    top = 1 << (src.nbits - 1) if src.signed else (1 << src.nbits) - 1
    clamp = 1 << (dst.emax + 2)
    return dst.mbits + 1, clamp if clamp < top else None


def int_class_pattern(bits: z3.BitVecRef, src: FloatFormat | str, dst: FloatFormat | str) -> z3.BitVecRef:
    """The representative pattern of integer source ``bits`` for a float target (every integer magnitude >= 1
    lies in the target's normal range, emin <= 0): sign kept; magnitudes of at most p bits kept; longer ones keep
    their top p bits q and the remainder below becomes 0, 1, half or half + 1 for remainder 0, below, equal to or
    above half; magnitudes above the clamp of :func:`int_rep_params` become the clamp."""
    src, dst = get_format(src), get_format(dst)
    n = src.nbits
    w = n + 2
    c = lambda v: z3.BitVecVal(v, w)  # noqa: E731
    neg = z3.Extract(n - 1, n - 1, bits) == 1 if src.signed else z3.BoolVal(False)
    wide = z3.SignExt(2, bits) if src.signed else z3.ZeroExt(2, bits)
    mag = z3.If(neg, -wide, wide)
    length = c(0)
    for i in range(n + 1):  # the bit length of mag (mag <= 2^n)
        length = z3.If(z3.Extract(i, i, mag) == 1, c(i + 1), length)
    p, clamp = int_rep_params(src, dst)
    d = z3.If(z3.UGT(length, c(p)), length - c(p), c(0))
    low = (c(1) << d) - c(1)
    rem = mag & low
    base = mag - rem
    half = c(1) << (d - c(1))  # only read where d >= 1 (rem != 0)
    rep = z3.If(rem == 0, base, z3.If(z3.ULT(rem, half), base + c(1),
                                      z3.If(rem == half, base + half, base + half + c(1))))
    if clamp is not None:
        rep = z3.If(z3.UGT(mag, c(clamp)), c(clamp), rep)
    return z3.Extract(n - 1, 0, z3.If(neg, -rep, rep))


REP_ROUTES = {"keys": "binary32", "classes": "binary32", "keys64": "binary64", "classes64": "binary64",
              "int_classes": None}


def prove_rep_invariance(dst: FloatFormat | str, settings: list[Setting], route: str,
                         timeout_s: float = 60.0, src: FloatFormat | str | None = None) -> Outcome:
    """Claim: for every source pattern x and every setting, spec(x) == spec(rep(x)) (code and error flag), with
    rep the clamped sticky-key pattern (:func:`clamped_key_pattern`) of binary32 (``route="keys"``) or binary64
    (``route="keys64"``), the per-binade class pattern of binary32 or binary64 (:func:`class_pattern`,
    ``route="classes"``, ``"classes64"``),
    or the class pattern of an integer source ``src``
    (:func:`int_class_pattern`, ``route="int_classes"``).  With it, comparing the spec with the exact model on the
    representatives alone covers every source pattern (the exact model reads no more of a value than the key or
    the class: the rounding bit lies above the collapsed bits, and the clamped exponents round alike)."""
    if route not in REP_ROUTES:
        raise RefarithError(f"route must be one of {', '.join(REP_ROUTES)}, got {route!r}")
    src, dst = get_format(REP_ROUTES[route] or src), get_format(dst)
    x = z3.BitVec("x", src.nbits)
    rep = {"keys": lambda b: clamped_key_pattern(b, src, dst), "classes": lambda b: class_pattern(b, dst, src),
           "keys64": lambda b: clamped_key_pattern(b, src, dst), "classes64": lambda b: class_pattern(b, dst, src),
           "int_classes": lambda b: int_class_pattern(b, src, dst)}[route](x)
    parts = []
    for st in settings:
        a, b = cast_spec(x, src, dst, *st), cast_spec(rep, src, dst, *st)
        parts.append(z3.And(a.code == b.code, a.error == b.error))

    def confirm(asg: dict[str, int]) -> tuple[dict, bool]:
        xv, rv = asg["x"], asg["rep"]
        shown = {"x_bits": _fmt_bits(xv, src), "x_value": str(decode(xv, src)),
                 "representative_bits": _fmt_bits(rv, src), "representative_value": str(decode(rv, src))}
        fails = False
        for st in settings:
            cx, cr = exact_result(xv, src, dst, *st), exact_result(rv, src, dst, *st)
            if cx != cr:
                fails = True
                shown[",".join(st)] = f"{_show(cx, dst)} vs {_show(cr, dst)}"
        return shown, fails

    return prove(z3.And(*parts), {"x": x}, timeout_s, confirm, observe={"rep": rep})


# ------------------------------------------------------------------ sr from wide sources: reduction to rtz
def sr_via(src: FloatFormat | str) -> FloatFormat:
    """The format whose patterns carry |v| + delta in :func:`sr_shift`: the source itself for binary32 and
    binary64, binary64 for an integer source (every int32, uint32 and int64 magnitude plus delta truncates into
    binary64 without passing a grid point of any 16-bit-or-narrower target)."""
    src = get_format(src)
    return src if isinstance(src, FloatFormat) else get_format("binary64")


def sr_threshold(dst: FloatFormat | str) -> Fraction:
    """T = max + 2^(emax - m): the successor of the largest finite value on the target's grid with an unbounded
    exponent above.  A rounded magnitude exceeds max exactly when it is at least T."""
    dst = get_format(dst)
    return dst.max + Fraction(2) ** (dst.emax - dst.mbits)


def sr_threshold_pattern(via: FloatFormat | str, dst: FloatFormat | str) -> int:
    """The magnitude pattern of the least ``via`` value >= :func:`sr_threshold` (the infinity pattern when T lies
    beyond ``via``'s finite range)."""
    from refarith.exact.rounding import round_value
    from refarith.exact.value import Value

    return round_value(Value.of(sr_threshold(dst)), get_format(via), "rup", "inf").code


def sr_shift(bits: z3.BitVecRef, r: z3.BitVecRef, src: FloatFormat | str, dst: FloatFormat | str,
             k: int) -> tuple[z3.BitVecRef, z3.BoolRef]:
    """(y, big) for a source pattern ``bits`` and a k-bit random integer ``r``.

    With v the source value, u = 2^(max(floor(log2 |v|), emin) - m) the target ulp at |v| and delta = r 2^-k u
    (delta = 0 for zero, inf, NaN, and where u > 2^(m_src + k + 2) ulps of the source: there |v| < u 2^-(k+2) and
    no r rounds it up; for an integer source delta = floor(r 2^-k u), which truncates alike where u >= 1 and is 0
    where u < 1, every such integer being exact): y is the pattern, in :func:`sr_via`, of sign(v) RTZ(|v| + delta)
    -- truncation onto the via format's grid, which holds every grid point of the target -- and big says
    |v| + delta >= :func:`sr_threshold`.  Computed on 64-bit words."""
    src, dst = get_format(src), get_format(dst)
    via = sr_via(src)
    w = 64
    c = lambda v: z3.BitVecVal(v % (1 << w), w)  # noqa: E731
    rr = z3.ZeroExt(w - k, r)
    if isinstance(src, FloatFormat):
        n, m, eb, bias = src.nbits, src.mbits, src.ebits, src.bias
        e_f = z3.ZeroExt(w - eb, z3.Extract(n - 2, m, bits))
        man = z3.ZeroExt(w - m, z3.Extract(m - 1, 0, bits))
        normal = e_f != 0
        sig = z3.If(normal, man | c(1 << m), man)
        ef1 = z3.If(normal, e_f, c(1))
        es = ef1 - c(bias + m)  # the source ulp exponent
        lg = es + bitlen(sig) - c(1)
        sh = z3.If(lg > c(dst.emin), lg, c(dst.emin)) - c(dst.mbits) - es  # source bits below the target ulp
        moving = z3.And(e_f != c((1 << eb) - 1), sig != 0, sh <= c(m + k + 2))
        delta = z3.If(moving, z3.If(sh >= c(k), rr << (sh - c(k)), z3.LShR(rr, c(k) - sh)), c(0))
        sig2 = sig + delta
        ln = bitlen(sig2)
        s2 = ln - c(m + 1)
        moved = (((ef1 + s2) << m) | (z3.LShR(sig2, s2) & c((1 << m) - 1)))
        moved = z3.If(z3.Or(normal, ln > c(m)), moved, sig2)  # a subnormal that stays subnormal
        mag = z3.If(moving, moved, z3.ZeroExt(w - n + 1, z3.Extract(n - 2, 0, bits)))
        sign = z3.Extract(n - 1, n - 1, bits)
    else:
        n = src.nbits
        wide = z3.SignExt(w - n, bits) if src.signed else z3.ZeroExt(w - n, bits)
        neg = z3.Extract(n - 1, n - 1, bits) == 1 if src.signed else z3.BoolVal(False)
        imag = z3.If(neg, -wide, wide)  # |int64 min| = 2^63 is a 64-bit unsigned word
        sh = bitlen(imag) - c(1) - c(dst.mbits)  # every integer >= 1 lies at or above 2^emin (emin <= 0)
        delta = z3.If(sh >= c(k), rr << (sh - c(k)), z3.LShR(rr, c(k) - sh))  # 0 for sh <= 0 (r < 2^k)
        sig2 = imag + delta
        ln = bitlen(sig2)
        mant = z3.If(ln > c(53), z3.LShR(sig2, ln - c(53)), sig2 << (c(53) - ln)) & c((1 << 52) - 1)
        mag = z3.If(imag == 0, c(0), ((c(1022) + ln) << 52) | mant)
        sign = z3.If(neg, z3.BitVecVal(1, 1), z3.BitVecVal(0, 1))
    big = z3.UGE(mag, c(sr_threshold_pattern(via, dst)))
    return z3.Concat(sign, z3.Extract(via.nbits - 2, 0, mag)), big


def sr_reduced(bits: z3.BitVecRef, r: z3.BitVecRef, src: FloatFormat | str, dst: FloatFormat | str, k: int,
               overflow: str):
    """(code, error) of the rtz form of ``sr``: for NaN (and a negative nonzero input into an unsigned target)
    the rtz spec of the input; else, with (y, big) of :func:`sr_shift`, the rne spec of the via format's
    infinity of v's sign when big (the overflow result of a mode that rounds away), the rtz spec of y when not."""
    src, dst = get_format(src), get_format(dst)
    via = sr_via(src)
    n = src.nbits
    y, big = sr_shift(bits, r, src, dst, k)
    sign = z3.Extract(n - 1, n - 1, bits)
    if isinstance(src, FloatFormat):
        field = z3.Extract(n - 2, src.mbits, bits) == (1 << src.ebits) - 1
        is_nan = z3.And(field, z3.Extract(src.mbits - 1, 0, bits) != 0)
        negative = z3.And(sign == 1, z3.Extract(n - 2, 0, bits) != 0)
    else:
        is_nan = z3.BoolVal(False)
        negative = z3.And(sign == 1, bits != 0) if src.signed else z3.BoolVal(False)
    keep = z3.Or(is_nan, negative) if not dst.signed else is_nan
    inf = ((1 << (via.nbits - 1)) - 1) ^ ((1 << via.mbits) - 1)
    a = cast_spec(bits, src, dst, "rtz", overflow)
    b = cast_spec(y, via, dst, "rtz", overflow)
    o = cast_spec(z3.Concat(z3.Extract(via.nbits - 1, via.nbits - 1, y), z3.BitVecVal(inf, via.nbits - 1)), via,
                  dst, "rne", overflow)
    return (z3.If(keep, a.code, z3.If(big, o.code, b.code)), z3.If(keep, a.error, z3.If(big, o.error, b.error)),
            y, big)


def sr_reduced_exact(x: int, rv: int, y: int, big: bool, src: FloatFormat | str, dst: FloatFormat | str,
                     overflow: str) -> int | None:
    """The exact model's side of :func:`sr_reduced` for one input: round_value of the source value with rtz
    (NaN, or negative into an unsigned target), of the via format's infinity of y's sign with rne (big), or of
    the via value y with rtz; None for an error."""
    src, dst = get_format(src), get_format(dst)
    via = sr_via(src)
    v = decode(x, src)
    if v.is_nan or (not dst.signed and v.sign and not v.is_zero):
        return exact_result(x, src, dst, "rtz", overflow, "error", "error")
    if big:
        inf = ((1 << (via.nbits - 1)) - 1) ^ ((1 << via.mbits) - 1)
        return exact_result(inf | (y & (1 << (via.nbits - 1))), via, dst, "rne", overflow, "error", "error")
    return exact_result(y, via, dst, "rtz", overflow, "error", "error")


def prove_sr_reduction(src: FloatFormat | str, dst: FloatFormat | str, k: int, overflows: list[str] | None = None,
                       timeout_s: float = 60.0) -> Outcome:
    """Claim: for every source pattern x and every k-bit r, the ``sr`` spec (nan=error, negative=error) equals
    its rtz form :func:`sr_reduced` (code and error flag), for each overflow mode.  The exact model satisfies
    the same identity (variant a: the magnitude rounds up iff floor(frac 2^k) + r >= 2^k, i.e. iff truncating
    |v| + r 2^-k u passes the next grid point; see docs/benchmarks.md), so with the rtz and rne kernel theorems'
    second routes this ties the sr spec to the exact model for every (x, r)."""
    src, dst = get_format(src), get_format(dst)
    overflows = overflows or valid_overflows(dst)
    x = z3.BitVec("x", src.nbits)
    r = z3.BitVec("r", k)
    parts, observe = [], {}
    for i, ov in enumerate(overflows):
        s = cast_spec(x, src, dst, "sr", ov, rand=r, rand_bits=k)
        code, err, y, big = sr_reduced(x, r, src, dst, k, ov)
        parts.append(z3.And(s.code == code, s.error == err))
        observe.update({f"s{i}": s.code, f"se{i}": s.error, f"g{i}": code, f"ge{i}": err})
    observe.update({"y": y, "big": z3.If(big, z3.BitVecVal(1, 1), z3.BitVecVal(0, 1))})

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        xv, rv = a["x"], a["r"]
        via = sr_via(src)
        shown = {"source_bits": _fmt_bits(xv, src), "source_value": str(decode(xv, src)), "r": rv, "k": k,
                 "y_bits": _fmt_bits(a["y"], via), "y_value": str(decode(a["y"], via)), "big": bool(a["big"])}
        fails = False
        for i, ov in enumerate(overflows):
            sp = None if a[f"se{i}"] else a[f"s{i}"]
            g = None if a[f"ge{i}"] else a[f"g{i}"]
            if sp == g:
                continue
            ex = exact_sr(xv, src, dst, ov, rv, k)
            ge = sr_reduced_exact(xv, rv, a["y"], bool(a["big"]), src, dst, ov)
            fails = fails or ex != ge
            shown[f"overflow={ov}"] = {"sr_spec": _show(sp, dst), "rtz_form_spec": _show(g, dst),
                                       "sr_exact": _show(ex, dst), "rtz_form_exact": _show(ge, dst)}
        return shown, fails

    return prove(z3.And(*parts), {"x": x, "r": r}, timeout_s, confirm, observe=observe)


def sr_unbiased(dst: FloatFormat | str, ks: tuple[int, ...] = (1, 2, 3)) -> Outcome:
    """Exhaustive enumeration with the exact model: for every k in ``ks``, every x = ±(n + j/2^k) * ulp on the
    target's grid (every binade e, every n with n*ulp and (n+1)*ulp finite, every j), the sum over r in [0, 2^k)
    of round_value(x, sr, rand=r, rand_bits=k) equals 2^k * x."""
    from refarith.exact.rounding import pow2, round_value
    from refarith.exact.value import Value

    dst = get_format(dst)
    checked = 0
    signs = (0, 1) if dst.signed else (0,)
    e_lo = dst.emin
    e_hi = dst.emax
    for k in ks:
        for e in range(e_lo, e_hi + 1):
            ulp = pow2(e - dst.mbits)
            n_lo = 0 if (e == e_lo and dst.subnormals) else (1 << dst.mbits)
            for n in range(n_lo, 1 << (dst.mbits + 1)):
                if (n + 1) * ulp > dst.max:
                    break
                for j in range(1 << k):
                    mag = (n + Fraction(j, 1 << k)) * ulp
                    for s in signs:
                        total = Fraction(0)
                        for r in range(1 << k):
                            c = round_value(Value("finite", s, mag), dst, "sr", "saturate", rand=r, rand_bits=k).code
                            total += decode(c, dst).fraction
                        checked += 1
                        want = (-mag if s else mag) * (1 << k)
                        if total != want:
                            return Outcome("counterexample", {"k": k, "x": str(-mag if s else mag),
                                                              "sum": str(total), "expected": str(want)},
                                           True, method="enumeration")
    return Outcome(PROVED, detail=f"{checked} grid points enumerated", method="enumeration")


__all__ = ["MIRROR", "exact_result", "exact_sr", "kernel_formula", "kernel_graph", "lut_key_pattern", "prove_fp_agrees",
           "prove_kernel", "prove_kernel_sr", "prove_lut_index", "prove_lut_key", "prove_monotone",
           "prove_sr_reduction", "prove_symmetric", "prove_width", "sr_reduced", "sr_reduced_exact", "sr_shift",
           "sr_threshold", "sr_threshold_pattern", "sr_unbiased", "sr_via", "valid_overflows"]
