"""L-Mul kernels (numpy and torch), integer and bit operations only.

Same semantics as :mod:`refarith.exact.lmul` (variants ``formula`` and ``bitwise``, specials,
``subnormals=daz``, ``overflow``, ``underflow``), tested equal to it bit for bit.  Codes are handled
as signed 64-bit integers; a result is assembled as (sign, N, k) with value N * 2^k and rounded
into the format by :func:`round_scaled`, the integer rounding also used by :mod:`refarith.fast.fdot`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from refarith.errors import BadValueError, UnknownModeError
from refarith.exact.lmul import LMUL_ROUNDINGS, UNDERFLOW_MODES, VARIANTS, check_operand_format, offset_units
from refarith.exact.rounding import default_overflow
from refarith.formats import FloatFormat, get_format

BACKENDS = ("numpy", "torch")
ROUNDINGS = ("rne", "rna", "rtz", "rup", "rdn")


class Backend:
    """The handful of array primitives the kernels need, for numpy or torch (int64 arrays)."""

    def __init__(self, name: str) -> None:
        if name not in BACKENDS:
            raise UnknownModeError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
        self.name = name
        if name == "torch":
            import torch

            self.t = torch

    def int64(self, a):
        if self.name == "numpy":
            return np.asarray(a).astype(np.int64)
        if isinstance(a, self.t.Tensor):
            return a.to(self.t.int64)
        return self.t.as_tensor(np.asarray(a).astype(np.int64))

    def where(self, c, a, b):
        if self.name == "numpy":
            return np.where(c, a, b)
        t = self.t
        if not isinstance(a, t.Tensor):
            a = t.tensor(a, dtype=t.int64 if isinstance(a, (int, np.integer)) else t.float64)
        if not isinstance(b, t.Tensor):
            b = t.tensor(b, dtype=a.dtype)
        return t.where(c, a, b)

    def table(self, values: np.ndarray):
        return values if self.name == "numpy" else self.t.as_tensor(values)

    def take(self, table, idx):
        return table[idx]

    def ones_like(self, a):
        return np.ones_like(a) if self.name == "numpy" else self.t.ones_like(a)

    def at_most(self, a, hi: int):
        return np.minimum(a, hi) if self.name == "numpy" else self.t.clamp(a, max=hi)


def special_codes(fmt: FloatFormat) -> dict[str, int]:
    """Codes of the special results by sign: ``neg0`` (-0: the sign bit where the format has a negative zero,
    else +0's code 0); where the format has NaN, ``nan0`` / ``nan1`` (its canonical NaN carrying sign 0 / 1, one
    code where NaNs carry no sign); where it has infinities, ``inf0`` / ``inf1`` (+inf, -inf; +inf again for an
    unsigned format).  A key the format lacks is absent, so reading it is an error, not a placeholder code."""
    out = {"neg0": fmt.sign_mask if fmt.has_negative_zero else 0}
    if fmt.has_nan:
        out["nan0"], out["nan1"] = fmt.nan_code_with_sign(False), fmt.nan_code_with_sign(True)
    pos, neg = fmt.inf_codes
    if pos is not None:
        out["inf0"], out["inf1"] = pos, (pos if neg is None else neg)
    return out


def round_scaled(b: Backend, sign, n, k, p, fmt: FloatFormat, rounding: str, overflow: str, underflow: str,
                 sr_up=None):
    """Codes of (-1)^sign * n * 2^k in ``fmt`` (int64 arrays; n > 0 with 2^p <= n < 2^(p+1), p >= mbits).

    Rounds once like :func:`refarith.exact.rounding.round_value` (unbounded exponent first, then
    overflow by the mode's direction); values below the smallest normal are flushed to the signed
    zero (``underflow=flush``) or rounded to the subnormal grid (``gradual``).  ``rounding="sr"``:
    ``sr_up(n, d, lo)`` decides the round-up (d: the unclamped number of dropped bits of n, lo: the
    magnitude code below); overflow then goes away from zero, as for rne.
    """
    m = fmt.mbits
    ev = k + p
    sub = ev < fmt.emin
    q = b.where(sub, fmt.emin - m, ev - m)
    sh = b.at_most(q - k, 62)  # q - k >= p - m >= 0: shifts by more than 62 drop every bit of n alike
    one = b.ones_like(n)
    qn = n >> sh
    lead = (ev + fmt.bias - 1) << m  # a normal result's code is lead + its significand (hidden bit included)
    rem = n - (qn << sh)
    half = (one << sh) >> 1
    if rounding == "rne":
        up = (rem > half) | ((rem == half) & (sh > 0) & ((qn & 1) == 1))
    elif rounding == "rna":
        up = (sh > 0) & (rem >= half)
    elif rounding == "rup":
        up = (rem > 0) & (sign == 0)
    elif rounding == "rdn":
        up = (rem > 0) & (sign == 1)
    elif rounding == "sr" and sr_up is not None:
        up = sr_up(n, q - k, b.where(sub, qn, lead + qn))
    elif rounding != "rtz":
        raise UnknownModeError(f"rounding {rounding!r} not supported by the fast kernels; expected one of "
                               f"{', '.join(ROUNDINGS)}")
    r = qn if rounding == "rtz" else qn + b.where(up, 1, 0)  # truncation never rounds up
    mag = b.where(sub, r, lead + r)
    smask = fmt.sign_mask
    signbit = b.where(sign == 1, smask, 0)
    zero = b.where(sign == 1, special_codes(fmt)["neg0"], 0)
    out = b.where(mag == 0, zero, mag | signbit)
    if underflow == "flush":
        out = b.where(sub, zero, out)
    maxc = b.where(sign == 1, fmt.max_code | smask, fmt.max_code)
    if overflow == "saturate" or rounding == "rtz":  # IEEE 754 7.4: truncation overflows to the largest finite
        big = maxc
    else:
        kind = "inf" if overflow == "inf" else "nan"
        sc = special_codes(fmt)
        big = b.where(sign == 1, sc[kind + "1"], sc[kind + "0"])
        if rounding in ("rup", "rdn"):  # directed: away from zero for one sign only
            big = b.where(sign == (0 if rounding == "rup" else 1), big, maxc)
    return b.where(mag > fmt.max_code, big, out)


@lru_cache(maxsize=64)
def class_table(fmt: FloatFormat) -> np.ndarray:
    """Per code of a format of at most 16 bits: 0 zero/subnormal, 1 normal, 2 inf, 3 NaN."""
    from refarith.exact.ops import decode

    out = np.empty(fmt.ncodes, dtype=np.int64)
    for c in range(fmt.ncodes):
        v = decode(c, fmt)
        out[c] = 3 if v.is_nan else 2 if v.is_inf else 0 if v.mag < fmt.min_normal else 1
    return out


def classify(b: Backend, x, fmt: FloatFormat):
    """0 zero/subnormal, 1 normal, 2 inf, 3 NaN for each code."""
    if fmt.nbits <= 16:
        return b.take(b.table(class_table(fmt)), x)
    if fmt.specials != "ieee":
        raise BadValueError(f"fast kernels support formats wider than 16 bits with IEEE specials only, not {fmt.name}")
    e = (x >> fmt.mbits) & fmt.emask
    mm = x & fmt.mmask
    return b.where(e == 0, 0, b.where(e == fmt.emask, b.where(mm == 0, 2, 3), 1))


def _code_dtype(nbits: int):
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if nbits <= np.dtype(dt).itemsize * 8:
            return dt
    raise BadValueError(f"{nbits}-bit codes do not fit a numpy integer")


def _check_codes(b: Backend, x, fmt: FloatFormat) -> None:
    bad = (x < 0) | (x >= fmt.ncodes)
    if bool(bad.any()):
        raise BadValueError(f"{fmt.name}: bit patterns must lie in 0..{fmt.ncodes - 1}")


def lmul_parts(b: Backend, x, y, fmt: FloatFormat, variant: str):
    """(sign, n, k, p, class_x, class_y, sign_x, sign_y) of the variant's exact value n * 2^k for normal operands."""
    m = fmt.mbits
    top = fmt.ebits + fmt.mbits
    sx, sy = (x >> top) & 1, (y >> top) & 1  # an unsigned format's codes lie below 2^top: sign 0
    magmask = (1 << top) - 1
    ax, ay = x & magmask, y & magmask
    ex, ey = ax >> m, ay >> m
    s = (ax & fmt.mmask) + (ay & fmt.mmask) + offset_units(m)
    if variant == "formula":
        n = s + (1 << m)
        k = ex + ey - 2 * fmt.bias - m
        p = b.where(n >= (1 << (m + 1)), m + 1, m)
    elif variant == "bitwise":
        n = (s & fmt.mmask) + (1 << m)
        k = ex + ey - 2 * fmt.bias - m + (s >> m)
        p = m
    else:
        raise UnknownModeError(f"unknown L-Mul variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    return sx ^ sy, n, k, p, classify(b, x, fmt), classify(b, y, fmt), sx, sy


def lmul(x, y, fmt: FloatFormat | str, variant: str = "bitwise", rounding: str = "rne", overflow: str | None = None,
         underflow: str = "flush", backend: str = "numpy"):
    """Element-wise L-Mul of two code arrays (broadcast); numpy: unsigned codes, torch: int64 tensor."""
    fmt = get_format(fmt)
    check_operand_format(fmt)
    if fmt.nbits > 62:
        raise BadValueError(f"{fmt.name}: fast L-Mul supports formats up to 62 bits")
    if rounding not in LMUL_ROUNDINGS:
        raise UnknownModeError(f"L-Mul rounding {rounding!r} not supported; expected one of "
                               f"{', '.join(LMUL_ROUNDINGS)}")
    if underflow not in UNDERFLOW_MODES:
        raise UnknownModeError(f"unknown underflow mode {underflow!r}; expected one of {', '.join(UNDERFLOW_MODES)}")
    overflow = overflow or default_overflow(fmt)
    from refarith.exact.rounding import check_modes

    check_modes(fmt, "rne", overflow)
    b = Backend(backend)
    x, y = b.int64(x), b.int64(y)
    _check_codes(b, x, fmt)
    _check_codes(b, y, fmt)
    sign, n, k, p, cx, cy, sx, sy = lmul_parts(b, x, y, fmt, variant)
    out = round_scaled(b, sign, n, k, p, fmt, rounding, overflow, underflow)
    sc = special_codes(fmt)
    zx, zy = cx == 0, cy == 0
    out = b.where(zx | zy, b.where(sign == 1, sc["neg0"], 0), out)
    if "inf0" in sc:  # inf * 0 is NaN (every format with infinities has a NaN), else a signed infinity
        inf_any = (cx == 2) | (cy == 2)
        out = b.where(inf_any, b.where(zx | zy, sc["nan0"], b.where(sign == 1, sc["inf1"], sc["inf0"])), out)
    if "nan0" in sc:  # a NaN operand gives the canonical NaN of its sign (x's where both are NaN)
        nan_sign = b.where(cx == 3, sx, sy)
        out = b.where((cx == 3) | (cy == 3), b.where(nan_sign == 1, sc["nan1"], sc["nan0"]), out)
    if backend == "numpy":
        return out.astype(_code_dtype(fmt.nbits))
    return out


def lmul_spec(spec, x, y, backend: str = "numpy"):
    """Evaluate an ``lmul(F,...)`` spec element-wise on code arrays."""
    from refarith.spec import parse_spec

    spec = parse_spec(spec)
    if spec.op != "lmul":
        raise BadValueError(f"expected an lmul spec, got {spec}")
    p = spec.param
    return lmul(x, y, spec.fmt(0), p["variant"], p["rounding"], p["overflow"], p["underflow"], backend=backend)


__all__ = ["Backend", "class_table", "classify", "lmul", "lmul_parts", "lmul_spec", "round_scaled"]
