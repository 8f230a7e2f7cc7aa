"""Vectorized encode (cast into a float format of at most 16 bits) and decode, numpy and torch backends.

Every result equals :func:`refarith.exact.rounding.round_value` applied to the
exact input value (floats at their exact binary value, integers exactly), with
a single rounding.  Paths (numpy):

* 16-bit (or narrower) float sources, deterministic modes: a 2^16-entry table
  built by running :func:`refarith.fast.castkernel.cast_bits` on every code.
* binary32 into targets where :func:`refarith.fast.castkernel.sticky_key_suffices`
  holds (every catalogue format with at most 6 mantissa bits), deterministic
  modes: a 2^17-entry table indexed by the sticky key
  ``(bits >> 16) << 1 | (bits & 0xFFFF != 0)``, built by ``cast_bits`` on one
  representative per key.
* ``sr`` from binary32 into the same targets: the two candidate codes per sticky key from tables and the
  variant's decision on the fraction bits (:mod:`refarith.fast.srfast`).
* everything else (binary64, integers, other ``sr``, bfloat16/binary16 from binary32):
  ``cast_bits`` itself on chunks.

Tables live in memory only (functools.lru_cache).  torch uses the same two
tables (gathered on the input's device), ``sr`` of float32 tensors the tables
of ``srfast`` in int32 operations (``_encode_sr_torch``), and otherwise runs
``cast_bits`` through :class:`refarith.fast.bitops.TorchBitOps`.  Where the exact model
raises, table entries hold a sentinel above every code, so the error check is
a running maximum instead of a second gather.
Decoding gathers from a per-format value table built from
:func:`refarith.exact.decode`: float32 when every value of the format is exact
in float32 (checked per format), else float64.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any

import numpy as np

from refarith.errors import BadValueError, BitPatternError, SpecialValueError, UnknownModeError
from refarith.exact.rounding import (
    cast_default_overflow,
    check_modes,
    check_subnormal_mode,
    default_negative,
    flush_code,
)
from refarith.exact.stochastic import check_variant
from refarith.fast import srfast
from refarith.fast.bitops import NumpyBitOps, TorchBitOps
from refarith.fast.castkernel import (
    MAX_DST_BITS,
    cast_bits,
    key_representative,
    required_width,
    sr_fraction_bits,
    sticky_key_suffices,
)
from refarith.formats import FloatFormat, IntFormat, get_format

BACKENDS = ("numpy", "torch", "triton")
_CHUNK = 1 << 16
_TORCH_CPU_CHUNK = 1 << 16

_NP_FLOAT_SRC = {"float64": "binary64", "float32": "binary32", "float16": "binary16"}


def code_dtype(fmt: FloatFormat | IntFormat) -> type:
    """Smallest unsigned numpy dtype holding the codes of ``fmt``."""
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if fmt.nbits <= np.dtype(dt).itemsize * 8:
            return dt
    raise BadValueError(f"{fmt.nbits}-bit codes do not fit a numpy integer")


def _dst(fmt: Any) -> FloatFormat:
    fmt = get_format(fmt)
    if not isinstance(fmt, FloatFormat) or fmt.nbits > MAX_DST_BITS:
        raise BadValueError(f"fast encode targets float formats of at most {MAX_DST_BITS} bits, not {fmt.name}")
    return fmt


def _modes(dst: FloatFormat, rounding: str, overflow: str | None, nan_policy: str, negative: str,
           rand_bits: int | None) -> tuple[str, int | None]:
    if overflow is None:
        overflow = cast_default_overflow(dst)
    check_modes(dst, rounding, overflow, nan_policy, negative)
    if rounding == "sr":
        if not isinstance(rand_bits, int) or isinstance(rand_bits, bool) or rand_bits < 1:
            raise UnknownModeError(f"stochastic rounding needs rand_bits, a positive integer; got {rand_bits!r}")
    else:
        rand_bits = None
    return overflow, rand_bits


def as_numpy(x: Any) -> np.ndarray:
    """``np.asarray(x)``, refusing a conversion that would change an element's value.

    numpy turns a list mixing integers and floats (or integers beyond int64)
    into float64, rounding integers above 2^53, and a bool among numbers into
    0/1; both raise BadValueError here.  Arrays are taken as they are.
    """
    if isinstance(x, np.ndarray) or not isinstance(x, (list, tuple)):
        return np.asarray(x)
    try:
        arr = np.asarray(x)
    except ValueError as e:
        raise BadValueError(f"malformed nested sequence: {e}") from None
    if arr.dtype.kind not in ("i", "u", "f") or not arr.size:
        return arr
    elems = np.array(x, dtype=object).ravel()
    flat = arr.ravel()
    for i, e in enumerate(elems):
        if isinstance(e, (bool, np.bool_)):
            raise BadValueError(f"element {i}: a bool is not a number")
        if arr.dtype.kind == "f" and isinstance(e, (int, np.integer)) and float(flat[i]) != int(e):
            raise BadValueError(f"element {i}: the integer {int(e)} is not exact in {arr.dtype} (numpy would round it "
                                "when converting this list); pass an integer array or an array of one dtype")
    return arr


# ------------------------------------------------------------------ tables
@lru_cache(maxsize=256)
def code_table(src: FloatFormat, dst: FloatFormat, rounding: str, overflow: str, nan_policy: str,
               negative: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """(codes, error flags, any error) of every code of a float source of at most 16 bits."""
    ops = NumpyBitOps(required_width(src, dst))
    x = np.arange(src.ncodes, dtype=ops.dtype)
    codes, err = cast_bits(ops, x, src, dst, rounding, overflow, nan_policy, negative)
    err = np.broadcast_to(err, codes.shape).copy()
    return _freeze(codes.astype(code_dtype(dst))), _freeze(err), bool(err.any())


@lru_cache(maxsize=256)
def key_table(dst: FloatFormat, rounding: str, overflow: str, nan_policy: str,
              negative: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """(codes, error flags, any error) indexed by the binary32 sticky key (2^17 entries)."""
    if not sticky_key_suffices(dst):
        raise BadValueError(f"binary32 -> {dst.name} is not a function of the 17-bit sticky key")
    ops = NumpyBitOps(32)
    reps = key_representative(ops, np.arange(1 << 17, dtype=np.uint32))
    codes, err = cast_bits(ops, reps, "binary32", dst, rounding, overflow, nan_policy, negative)
    err = np.broadcast_to(err, codes.shape).copy()
    return _freeze(codes.astype(code_dtype(dst))), _freeze(err), bool(err.any())


def _freeze(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


# ------------------------------------------------------------------ numpy encode
def _numpy_source(x: Any, src: Any) -> tuple[np.ndarray, FloatFormat | IntFormat]:
    """(bit patterns as an unsigned array, source format) of a numpy input."""
    arr = as_numpy(x)
    if src is not None:
        sf = get_format(src)
        if arr.dtype.kind not in ("i", "u"):
            raise BadValueError(f"with src={sf.name}, x must hold integer bit patterns, got dtype {arr.dtype}")
        if sf.nbits > 64:
            raise BadValueError(f"source {sf.name} is wider than 64 bits")
        if arr.dtype.kind == "i" or arr.dtype.itemsize * 8 > sf.nbits:
            if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= sf.ncodes):
                raise BitPatternError(f"{sf.name}: bit patterns must lie in [0, {sf.ncodes - 1:#x}]")
        return arr.astype(np.uint64 if sf.nbits > 32 else np.uint32, copy=False), sf
    kind, name = arr.dtype.kind, arr.dtype.name
    if name in _NP_FLOAT_SRC:
        sf = get_format(_NP_FLOAT_SRC[name])
        return arr.view(np.dtype(f"u{arr.dtype.itemsize}")), sf
    if kind in ("i", "u"):  # bool is kind "b"
        nb = arr.dtype.itemsize * 8
        sf = IntFormat(f"{'int' if kind == 'i' else 'uint'}{nb}", nb, signed=kind == "i")
        return arr.view(np.dtype(f"u{arr.dtype.itemsize}")), sf
    if name == "bfloat16" or name.startswith(("float8", "float6", "float4")):  # ml_dtypes' float dtypes
        try:
            sf = get_format(name)
        except Exception:
            sf = None
        if isinstance(sf, FloatFormat) and arr.dtype.itemsize in (1, 2):
            return arr.view(np.dtype(f"u{arr.dtype.itemsize}")), sf
    raise BadValueError(f"cannot encode numpy dtype {arr.dtype}; use float64/float32/float16, bfloat16 "
                        "(ml_dtypes), an integer dtype, or integer bit patterns with src=")


def _rand_array(rand: Any, shape: tuple, k: int) -> np.ndarray:
    if rand is None:
        raise UnknownModeError("stochastic rounding needs rand (integers of rand_bits bits)")
    try:
        r = as_numpy(rand)
    except BadValueError as e:
        raise UnknownModeError(f"rand must hold integers: {e}") from None
    if r.dtype.kind not in ("i", "u"):
        raise UnknownModeError(f"rand must hold integers, got dtype {r.dtype}")
    if r.size and (int(r.min()) < 0 or int(r.max()) >= (1 << k)):
        raise UnknownModeError(f"rand values must lie in [0, 2^{k}) for rand_bits={k}")
    return np.broadcast_to(r, shape)


def _raise_first(err: np.ndarray, flat_src: np.ndarray, sf: Any, dst: FloatFormat, nan_policy: str,
                 negative: str) -> None:
    i = int(np.flatnonzero(err)[0])
    raise SpecialValueError(f"element {i} (bit pattern {int(flat_src[i]):#x} of {sf.name}) cannot be encoded in "
                            f"{dst.name} (nan_policy={nan_policy!r}, negative={negative!r})")


def _encode_numpy(x: Any, dst: FloatFormat, rounding: str, overflow: str, nan_policy: str, negative: str,
                  rand: Any, rand_bits: int | None, src: Any, sr_variant: str = "a") -> np.ndarray:
    bits, sf = _numpy_source(x, src)
    shape = bits.shape
    flat = bits.ravel()
    out_dt = code_dtype(dst)
    det = rounding != "sr"
    if det and isinstance(sf, FloatFormat) and sf.nbits <= 16:
        tab, limit = _sentinel(code_table(sf, dst, rounding, overflow, nan_policy, negative), dst)
        out = _gather(flat, tab, limit, out_dt, keyed=False)
    elif det and sf.name == "binary32" and isinstance(sf, FloatFormat) and sticky_key_suffices(dst):
        tab, limit = _sentinel(key_table(dst, rounding, overflow, nan_policy, negative), dst)
        if rounding == "rne" and overflow == "nan" and _is_e8m0(dst):
            out = _e8m0_rne(flat.view(np.uint32), tab, limit)
        else:
            out = _gather(flat.view(np.uint32), tab, limit, out_dt, keyed=True)
    else:
        out = None
    if out is not None:
        if isinstance(out, int):
            err = np.zeros(flat.size, dtype=bool)
            err[out] = True
            _raise_first(err, flat, sf, dst, nan_policy, negative)
        return out.reshape(shape)
    # the table path reads at most 31 fraction bits (srfast.tables clamps the shift for K <= 32); a larger k runs
    # the bit kernel on words wide enough for it
    if (not det and sf.name == "binary32" and srfast.applies(dst, overflow, negative)
            and sr_fraction_bits(rand_bits, sr_variant) <= 31):
        rflat = _rand_array(rand, shape, rand_bits).ravel()
        codes, err = srfast.encode_sr(flat.view(np.uint32), dst, overflow, nan_policy, negative, rflat, rand_bits,
                                      sr_variant, out_dt)
        if err.any():
            _raise_first(err, flat, sf, dst, nan_policy, negative)
        return codes.reshape(shape)
    ops = NumpyBitOps(required_width(sf, dst, rand_bits, sr_variant))
    rflat = _rand_array(rand, shape, rand_bits).ravel() if rounding == "sr" else None
    out = np.empty(flat.shape, dtype=out_dt)
    for lo in range(0, flat.size, _CHUNK):
        hi = min(lo + _CHUNK, flat.size)
        xw = flat[lo:hi].astype(ops.dtype)
        rw = rflat[lo:hi].astype(ops.dtype) if rflat is not None else None
        codes, err = cast_bits(ops, xw, sf, dst, rounding, overflow, nan_policy, negative, rw, rand_bits,
                               sr_variant)
        err = np.broadcast_to(err, codes.shape)
        if err.any():
            j = int(np.flatnonzero(err)[0])
            _raise_first(np.arange(flat.size) == lo + j, flat, sf, dst, nan_policy, negative)
        out[lo:hi] = codes
    return out.reshape(shape)


def sticky_keys(bits32: np.ndarray) -> np.ndarray:
    """:func:`refarith.fast.castkernel.sticky_key` of a uint32 array, in four integer operations.

    (x | ((x & 0x7FFF) + 0x7FFF)) >> 15: the sum is below 2^16 and has bit 15 set exactly when the low 15
    bits are nonzero, so bit 15 of the OR is (low 16 bits != 0) and the bits above are untouched.
    """
    x = np.asarray(bits32, dtype=np.uint32)
    c15 = np.uint32(0x7FFF)
    k = x & c15
    k += c15
    k |= x
    k >>= np.uint32(15)
    return k


_SENT: dict[int, tuple[np.ndarray, int, np.ndarray]] = {}


def _sentinel(tables: tuple[np.ndarray, np.ndarray, bool], dst: FloatFormat) -> tuple[np.ndarray, int | None]:
    """(table, limit): with errors possible, error entries hold a value above every code (limit = max code value),
    in the code dtype when a spare value exists, else in the next wider dtype; limit None when no error."""
    tab, etab, has_err = tables
    if not has_err:
        return tab, None
    key = id(tab)
    hit = _SENT.get(key)
    if hit is not None and hit[2] is tab:
        return hit[0], hit[1]
    limit = dst.ncodes - 1
    wide = tab.dtype if limit < np.iinfo(tab.dtype).max else np.dtype(np.uint16 if tab.itemsize == 1 else np.uint32)
    t = tab.astype(wide)
    t[etab] = np.iinfo(wide).max
    t = _freeze(t)
    _SENT[key] = (t, limit, tab)
    return t, limit


_BLOCK = 1 << 16
_KEY16: dict[int, tuple[np.ndarray | None, np.ndarray]] = {}


def _key16_table(tab: np.ndarray) -> np.ndarray | None:
    """The 2^16-entry table indexed by hi16 | [lo16 != 0] of a binary32 pattern, from the sticky-key table ``tab``;
    None when the cast is not a function of that key.

    A pattern with high half h and low half l has sticky key 2h + [l != 0]; hi16 | [l != 0] is h for an even h with
    l == 0 (sticky key 2h), and j = h | 1 otherwise, whose patterns have sticky key 2j - 1 (h = j - 1, l != 0),
    2j (h = j, l == 0) or 2j + 1 (h = j, l != 0).  So the new table at even j is tab[2j] and at odd j the one value
    of tab[2j - 1], tab[2j] and tab[2j + 1], which this function checks equal (they are whenever the target's
    rounding bit lies at bit 17 of the pattern or above, as for every float format of at most 5 mantissa bits, so
    bit 16 acts only as a sticky bit).  Half the table, which stays in L1/L2 beside the block being keyed."""
    hit = _KEY16.get(id(tab))
    if hit is not None and hit[1] is tab:
        return hit[0]
    odd = tab[2:: 4]  # tab[2j] for odd j = 1, 3, ...
    res = None
    if tab.size == 1 << 17 and np.array_equal(tab[1:: 4], odd) and np.array_equal(tab[3:: 4], odd):
        res = _freeze(tab[0:: 2])
    _KEY16[id(tab)] = (res, tab)
    return res


def _gather(x: np.ndarray, tab: np.ndarray, limit: int | None, out_dt: type, keyed: bool) -> np.ndarray | int:
    """tab[index] in cache-sized blocks, index = the sticky key of binary32 patterns (keyed) or x itself.

    Keyed, the 2^16-entry table of :func:`_key16_table` with the key (x | ((x & 0xFFFF) + 0xFFFF)) >> 16 is used
    where it exists (the sum is below 2^17 and has bit 16 set exactly when the low half is nonzero, so the key is
    hi16 | [lo16 != 0]), else ``tab`` with the 17-bit sticky key of :func:`sticky_keys`.  Indices go to ``take``
    as intp (it converts any other index dtype itself, in a slower loop).
    Returns the codes, or the flat position of the first element whose entry exceeds ``limit`` (an error).
    Every index is below the table's length (a key below 2^16 or 2^17, or a code of the source format), so
    ``take`` runs with mode='clip', which skips numpy's per-element bounds check and changes nothing."""
    n = x.size
    out = np.empty(n, dtype=out_dt)
    blk = _BLOCK
    if keyed:
        t16 = _key16_table(tab)
        cst, sh = (np.uint32(0xFFFF), 16) if t16 is not None else (np.uint32(0x7FFF), 15)
        tab = t16 if t16 is not None else tab
        k = np.empty(blk, dtype=np.uint32)
    kp = np.empty(min(blk, n), dtype=np.intp)
    tmp = np.empty(blk, dtype=tab.dtype) if limit is not None and tab.dtype != out.dtype else None
    for a in range(0, n, blk):
        b = min(a + blk, n)
        m = b - a
        idx = kp[:m]
        if keyed:
            xb = x[a:b]
            kb = k[:m]
            np.bitwise_and(xb, cst, out=kb)
            np.add(kb, cst, out=kb)
            np.bitwise_or(kb, xb, out=kb)
            np.right_shift(kb, sh, out=idx)
        else:
            idx[...] = x[a:b]
        t = out[a:b] if tmp is None else tmp[:m]
        np.take(tab, idx, out=t, mode="clip")
        if limit is not None:
            if int(t.max()) > limit:
                return a + int(np.flatnonzero(t > limit)[0])
            if tmp is not None:
                out[a:b] = t
    return out


_E8M0_BLOCK = 1 << 17
# 1.5 * 2^75 + 0xFF00 * 2^23: a sum with a binary32 pattern x (|x| < 2^31, as int32) lies in [2^75, 2^76), where the
# binary64 spacing is 2^23, and its 16 lowest fraction bits are 0xFF00 + q (mod 2^16), q = x / 2^23 rounded to the
# nearest integer, ties to even (IEEE 754 binary64 addition; 2^51 and 0xFF00 are even, so the parity of the
# fraction is the parity of q)
_E8M0_MAGIC = np.float64(1.5 * 2.0 ** 75 + 0xFF00 * 2.0 ** 23)


def _e8m0_rne(x: np.ndarray, tab: np.ndarray, limit: int | None) -> np.ndarray | int:
    """binary32 patterns -> E8M0 codes under rne, overflow='nan', in three passes per block instead of the key and
    the gather: the E8M0 code of a positive binary32 pattern x (a normal number, +inf, or a NaN below 0x7FC00000) is
    q = round-half-even(x / 2^23) (x = 2^23 E + F: E rounds up past the binade midpoint F = 2^22, and a tie
    goes to the even E; q = 255 is the NaN code that overflow='nan', +inf and those NaNs give), read from the
    binary64 sum with :data:`_E8M0_MAGIC`.  Every other pattern (zeros, subnormals, negatives, the NaNs from
    0x7FC00000 up) gives q <= 1 or q >= 256 (as int32, x / 2^23 lies in [-256, 256)), i.e. low bits outside
    [0xFF02, 0xFFFF], as do the normal patterns below 0x00C00000 (q = 1); a block holding any of them takes
    :func:`_gather` instead.  Checked equal to the sticky-key table on all 2^32 patterns.  Same contract as
    :func:`_gather`, with uint8 codes."""
    n = x.size
    out = np.empty(n, dtype=np.uint8)
    blk = min(_E8M0_BLOCK, max(n, 1))
    f = np.empty(blk, dtype=np.float64)
    fu = f.view(np.uint64)
    h = np.empty(blk, dtype=np.uint16)
    xi = x.view(np.int32)
    for a in range(0, n, blk):
        b = min(a + blk, n)
        m = b - a
        fm, hm = f[:m], h[:m]
        fm[...] = xi[a:b]  # exact
        np.add(fm, _E8M0_MAGIC, out=fm)
        hm[...] = fu[:m]  # the 16 low fraction bits (unsigned narrowing keeps the low bits)
        if int(hm.min()) >= 0xFF02:
            out[a:b] = hm  # the low byte: q
            continue
        r = _gather(x[a:b], tab, limit, np.uint8, keyed=True)
        if isinstance(r, int):
            return a + r
        out[a:b] = r
    return out


# ------------------------------------------------------------------ torch encode
def _torch_source(x: Any, src: Any):
    import torch

    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(as_numpy(x))
    if src is not None:
        sf = get_format(src)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise BadValueError(f"with src={sf.name}, x must hold integer bit patterns, got {t.dtype}")
        w = t.to(torch.int64)
        if w.numel() and (int(w.min()) < 0 or int(w.max()) >= sf.ncodes):
            raise BitPatternError(f"{sf.name}: bit patterns must lie in [0, {sf.ncodes - 1:#x}]")
        return w, sf
    views = {torch.float32: (torch.int32, "binary32", 0xFFFFFFFF), torch.float16: (torch.int16, "binary16", 0xFFFF),
             torch.bfloat16: (torch.int16, "bfloat16", 0xFFFF), torch.float64: (torch.int64, "binary64", -1)}
    if t.dtype in views:
        vdt, name, m = views[t.dtype]
        w = t.contiguous().view(vdt).to(torch.int64)
        if m != -1:
            w = w & m
        return w, get_format(name)
    ints = {torch.int8: 8, torch.int16: 16, torch.int32: 32, torch.int64: 64, torch.uint8: 8}
    if t.dtype in ints:
        nb = ints[t.dtype]
        signed = t.dtype != torch.uint8
        w = t.to(torch.int64)
        if nb < 64:
            w = w & ((1 << nb) - 1)
        return w, IntFormat(f"{'int' if signed else 'uint'}{nb}", nb, signed=signed)
    raise BadValueError(f"cannot encode torch dtype {t.dtype}; use float32/float16/bfloat16/float64 or an integer")


def _torch_code_dtype(dst: FloatFormat):
    import torch

    return torch.uint8 if dst.nbits <= 8 else torch.int32


def _encode_torch(x: Any, dst: FloatFormat, rounding: str, overflow: str, nan_policy: str, negative: str,
                  rand: Any, rand_bits: int | None, src: Any, sr_variant: str = "a"):
    import torch

    det = rounding != "sr"
    tables = None
    t = x if isinstance(x, torch.Tensor) else None
    if not det and src is None and t is not None and t.dtype == torch.float32:
        out = _encode_sr_torch(t.contiguous().view(torch.int32), dst, overflow, nan_policy, negative, rand,
                               rand_bits, sr_variant)
        if out is not None:
            return out
    if det and src is None and t is not None and t.dtype == torch.float32 and sticky_key_suffices(dst):
        # the sticky key in int32 arithmetic (see sticky_keys; the mask undoes the sign extension)
        w32 = t.contiguous().view(torch.int32)
        idx = _torch_keys
        tables, w, sf = key_table(dst, rounding, overflow, nan_policy, negative), w32, get_format("binary32")
    elif det and src is None and t is not None and t.dtype in (torch.float16, torch.bfloat16):
        w = t.contiguous().view(torch.int16)
        idx = w.to(torch.int32) & 0xFFFF
        sf = get_format("binary16" if t.dtype == torch.float16 else "bfloat16")
        tables = code_table(sf, dst, rounding, overflow, nan_policy, negative)
    else:
        w, sf = _torch_source(x, src)
        if det and isinstance(sf, FloatFormat) and sf.nbits <= 16:
            tables, idx = code_table(sf, dst, rounding, overflow, nan_policy, negative), w
    if tables is not None:
        tab, limit = _sentinel(tables, dst)
        tt = _torch_code_table(tab, str(w.device))
        if idx is _torch_keys and rounding == "rne" and overflow == "nan" and _is_e8m0(dst):
            return _e8m0_rne_torch(w, tt, limit, sf, dst, nan_policy, negative)
        out = _torch_gather(tt, w, idx)
        if limit is not None and out.numel() and int(out.max()) > limit:
            i = int(torch.nonzero((out > limit).reshape(-1))[0, 0])
            _raise_torch(i, w, sf, dst, nan_policy, negative)
        return out.to(_torch_code_dtype(dst))
    width = required_width(sf, dst, rand_bits, sr_variant)
    ops = TorchBitOps(width, device=w.device)
    if width == 32 and isinstance(sf, IntFormat):
        raise BadValueError("integer sources need 64-bit words")
    r = _torch_rand(rand, rand_bits, w, torch.int64) if rounding == "sr" else None
    # on CPU in cache-sized chunks (the kernel's intermediates are int64 words), on a device in one pass
    flat = w.reshape(-1)
    n = flat.numel()
    step = _TORCH_CPU_CHUNK if w.device.type == "cpu" else max(n, 1)
    out = torch.empty(n, dtype=_torch_code_dtype(dst), device=w.device)
    for a in range(0, n, step):
        b = min(a + step, n)
        codes, err = cast_bits(ops, flat[a:b], sf, dst, rounding, overflow, nan_policy, negative,
                               None if r is None else r[a:b], rand_bits, sr_variant)
        err = torch.broadcast_to(torch.as_tensor(err, device=w.device), (b - a,))
        if bool(err.any()):
            _raise_torch(a + int(torch.nonzero(err)[0, 0]), w, sf, dst, nan_policy, negative)
        out[a:b] = torch.broadcast_to(codes, (b - a,))
    return out.reshape(w.shape)


def _torch_rand(rand: Any, k: int, w: Any, dtype: Any) -> Any:
    """The random integers as a flat ``dtype`` tensor on ``w``'s device, broadcast to ``w``; each checked to lie
    in [0, 2^k)."""
    import torch

    if rand is None:
        raise UnknownModeError("stochastic rounding needs rand (integers of rand_bits bits)")
    try:
        r = rand if isinstance(rand, torch.Tensor) else torch.as_tensor(as_numpy(rand))
    except (BadValueError, TypeError) as e:
        raise UnknownModeError(f"rand must hold integers: {e}") from None
    if r.is_floating_point() or r.is_complex() or r.dtype == torch.bool:
        raise UnknownModeError(f"rand must hold integers, got {r.dtype}")
    r = r.to(device=w.device)
    if r.dtype == torch.uint32:  # torch has no min/max for its unsigned 32/64-bit dtypes
        r = r.to(torch.int64)
    elif r.dtype == torch.uint64:  # values >= 2^63 read negative and are refused below
        r = r.view(torch.int64)
    if r.numel() and (int(r.min()) < 0 or int(r.max()) >= (1 << k)):
        raise UnknownModeError(f"rand values must lie in [0, 2^{k}) for rand_bits={k}")
    if r.dtype != dtype and not (dtype == torch.int32 and r.dtype in (torch.uint8, torch.int8, torch.int16)):
        r = r.to(dtype)  # narrower integers (checked non-negative) add into int32 words as they are
    return torch.broadcast_to(r, w.shape).reshape(-1)


_TORCH_SR_CHUNK = 1 << 18


def _encode_sr_torch(w32: Any, dst: FloatFormat, overflow: str, nan_policy: str, negative: str, rand: Any,
                     k: int, variant: str) -> Any:
    """Stochastic rounding of binary32 patterns (an int32 view) by the tables of :mod:`refarith.fast.srfast`, in
    int32 operations only; None where srfast's table reading does not apply (then the caller runs ``cast_bits``).

    Per element, as srfast's per-exponent loop: the 17-bit sticky key; from the sign and biased exponent
    (bits >> 23 & 0x1FF, a 512-entry table) the fraction mask and the shift s = d - K; low = (bits | 2^23) & mask,
    F = low >> s, the bits below F = low - (F << s).  Where ``srfast._clamp_plan`` holds (checked there on every
    exponent), the same F and bits below come without a gather: sig = bits & 0x7FFFFF | 2^23, s = c - clip(E,
    E_lo, E_hi), G = sig >> s, F = G & (2^K - 1), below = sig - (G << s).  Then up = (F + r) >> k (a),
    (F + 2r + 1) >> (k + 1) (b), or the c / c_odd rule of ``srfast._decide``, each 0 or 1 (F < 2^K, r < 2^k); the
    code is the pair table's entry at key << 1 | up (down, or the next code away from zero).  Every intermediate
    lies in [0, 2^31): the arithmetic shift of a negative pattern is masked before use.  Error entries hold a
    sentinel above every code; the first one raises as the exact model does."""
    import torch

    if variant not in ("a", "b", "c", "c_odd") or not srfast.applies(dst, overflow, negative):
        return None
    kk = k + (variant != "a")
    _, _, d_t, mask_t = srfast.tables(dst, overflow, nan_policy, negative)
    sh_t = srfast._shift_table(d_t, kk)
    if sh_t is None:
        return None
    dev = w32.device
    pair, perr, limit = srfast._pair_codes(dst, overflow, nan_policy, negative, "|u1" if dst.nbits <= 8 else "<i4")
    if perr is not None:  # an 8-bit target whose error entries have no spare uint8 value: int32 with a sentinel
        pair, perr, limit = srfast._pair_codes(dst, overflow, nan_policy, negative, "<i4")
    pair_t = _torch_code_table(pair, str(dev))
    ex_t = _torch_code_table(srfast._packed_ex_table(mask_t, sh_t).astype(np.int32), str(dev))
    clamp = srfast._clamp_plan(dst, overflow, nan_policy, negative, kk)
    kmask = (1 << kk) - 1
    r = _torch_rand(rand, k, w32, torch.int32)
    flat = w32.reshape(-1)
    n = flat.numel()
    out = torch.empty(n, dtype=pair_t.dtype, device=dev)
    step = _TORCH_SR_CHUNK if dev.type == "cpu" else max(n, 1)
    for a in range(0, n, step):
        x = flat[a:a + step]
        rb = r[a:a + step]
        y = torch.bitwise_and(x, 0x7FFF)  # the sticky key (sticky_keys), then << 1
        y.add_(0x7FFF).bitwise_or_(x).bitwise_right_shift_(15).bitwise_and_(0x1FFFF).bitwise_left_shift_(1)
        if clamp is not None:  # s and the significand by arithmetic (srfast._clamp_plan: the table's bits)
            sh = torch.bitwise_right_shift(x, 23).bitwise_and_(0xFF).clamp_(clamp[0], clamp[1]).neg_().add_(clamp[2])
            low = torch.bitwise_and(x, 0x7FFFFF).bitwise_or_(0x800000)
        else:
            t = torch.index_select(ex_t, 0, torch.bitwise_right_shift(x, 23).bitwise_and_(0x1FF))
            sh = torch.bitwise_right_shift(t, 24)
            low = torch.bitwise_or(x, 0x800000).bitwise_and_(t.bitwise_and_(0xFFFFFF))
        f = torch.bitwise_right_shift(low, sh)
        if variant in ("c", "c_odd"):
            nz = low.sub_(torch.bitwise_left_shift(f, sh)).ne_(0)  # bits below the half
        if clamp is not None:
            f.bitwise_and_(kmask)
        if variant == "a":
            f.add_(rb).bitwise_right_shift_(k)
        elif variant == "b":
            f.add_(rb).add_(rb).add_(1).bitwise_right_shift_(kk)
        else:
            half = torch.bitwise_and(f, 1)
            f.bitwise_right_shift_(1)  # t = floor(frac * 2^k)
            odd = torch.bitwise_and(f, 1)
            if variant == "c_odd":
                odd.bitwise_xor_(1)
            f.add_(half.bitwise_and_(odd.bitwise_or_(nz))).add_(rb).bitwise_right_shift_(k)
        y.bitwise_or_(f)
        torch.index_select(pair_t, 0, y, out=out[a:a + step])
    if limit is not None and n and int(out.max()) > limit:
        i = int(torch.nonzero(out > limit)[0, 0])
        _raise_torch(i, w32, get_format("binary32"), dst, nan_policy, negative)
    code_dt = _torch_code_dtype(dst)
    return out.reshape(w32.shape) if out.dtype == code_dt else out.to(code_dt).reshape(w32.shape)


_TORCH_E8M0_BLOCK = 1 << 18  # elements per pass on CPU


def _e8m0_rne_torch(w32: Any, tt: Any, limit: int | None, sf: Any, dst: FloatFormat, nan_policy: str,
                    negative: str) -> Any:
    """binary32 patterns (int32) -> E8M0 codes (uint8) under rne, overflow='nan', with integer operations only: a
    positive pattern x in [0x00C00000, 0x7FC00000) (normal numbers from 1.5 * 2^-126, +inf, the NaNs below
    0x7FC00000) has the code q = round-half-even(x / 2^23) of :func:`_e8m0_rne`, here (x + 0x3FFFFF + ((x >> 23) &
    1)) >> 23 (x = 2^23 E + F: E + 1 exactly when F + 2^22 - 1 + (E & 1) >= 2^23, i.e. F above 2^22 or at 2^22
    with E odd; at most 0x7FFFFFFF, no overflow).  A block holding any other pattern takes the sticky-key gather;
    SpecialValueError names the first element that cannot be encoded."""
    import torch

    flat = w32.reshape(-1)
    n = flat.numel()
    out = torch.empty(n, dtype=torch.uint8, device=flat.device)
    blk = _TORCH_E8M0_BLOCK if flat.device.type == "cpu" else max(n, 1)
    buf = torch.empty(min(blk, max(n, 1)), dtype=torch.int32, device=flat.device)
    for a in range(0, n, blk):
        xb = flat[a:a + blk]
        lo, hi = torch.aminmax(xb)
        if int(lo) >= 0x00C00000 and int(hi) < 0x7FC00000:
            b = buf[: xb.numel()]
            torch.bitwise_right_shift(xb, 23, out=b)
            b.bitwise_and_(1).add_(xb).add_(0x3FFFFF)
            torch.bitwise_right_shift(b, 23, out=out[a:a + blk])
            continue
        r = _torch_gather(tt, xb, _torch_keys)
        if limit is not None and int(r.max()) > limit:
            _raise_torch(a + int(torch.nonzero(r > limit)[0, 0]), flat, sf, dst, nan_policy, negative)
        out[a:a + blk] = r
    return out.reshape(w32.shape)


def _torch_keys(xb: Any, buf: Any) -> Any:
    """Sticky keys of a block of binary32 patterns held as int32, computed in ``buf`` (see sticky_keys)."""
    import torch

    torch.bitwise_and(xb, 0x7FFF, out=buf)
    buf.add_(0x7FFF)
    buf.bitwise_or_(xb)
    buf.bitwise_right_shift_(15)
    buf.bitwise_and_(0x1FFFF)  # clears the copies of the sign bit an arithmetic shift brings in
    return buf


def _torch_gather(tt: Any, w: Any, idx: Any) -> Any:
    """tt[index] in blocks with int32 indices; index = idx(block, buffer) when idx is callable, else idx."""
    import torch

    if not callable(idx):  # one gather (blocks would only add per-call overhead)
        return torch.index_select(tt, 0, idx.reshape(-1).to(torch.int32)).reshape(w.shape)
    flat_w = w.reshape(-1)
    n = flat_w.numel()
    out = torch.empty(n, dtype=tt.dtype, device=w.device)
    blk = 1 << 16
    buf = torch.empty(min(blk, max(n, 1)), dtype=torch.int32, device=w.device)
    for a in range(0, n, blk):
        b = min(a + blk, n)
        torch.index_select(tt, 0, idx(flat_w[a:b], buf[: b - a]), out=out[a:b])
    return out.reshape(w.shape)


def _raise_torch(i: int, w: Any, sf: Any, dst: FloatFormat, nan_policy: str, negative: str) -> None:
    bad = int(w.reshape(-1)[i]) & ((1 << sf.nbits) - 1)
    raise SpecialValueError(f"element {i} (bit pattern {bad:#x} of {sf.name}) cannot be encoded in {dst.name} "
                            f"(nan_policy={nan_policy!r}, negative={negative!r})")


_TORCH_TABLES: dict[tuple[int, str], Any] = {}


def _torch_code_table(tab: np.ndarray, device: str):
    """The numpy code table as a torch tensor on ``device`` (uint8, else int32), cached."""
    import torch

    key = (id(tab), device)
    hit = _TORCH_TABLES.get(key)
    if hit is None or hit[1] is not tab:
        t = torch.from_numpy(tab.copy()) if tab.dtype == np.uint8 else torch.from_numpy(tab.astype(np.int32))
        hit = _TORCH_TABLES[key] = (t.to(device), tab)
    return hit[0]


# ------------------------------------------------------------------ public
def encode(x: Any, fmt: FloatFormat | str, rounding: str = "rne", overflow: str | None = None,
           nan_policy: str = "error", negative: str | None = None, rand: Any = None, rand_bits: int | None = None,
           backend: str = "numpy", src: Any = None, subnormal: str | None = None,
           sr_variant: str = "a") -> Any:
    """Round every element of ``x`` into ``fmt`` once; return the codes.

    ``rounding="sr"``: ``rand`` holds one ``rand_bits``-bit integer per element and ``sr_variant`` names the
    rule (:data:`refarith.exact.stochastic.SR_VARIANTS`).

    numpy: ``x`` a float64/float32/float16/bfloat16 (ml_dtypes) or integer array
    (or ``src=`` and an array of that format's bit patterns); returns an array of
    the smallest unsigned dtype (a Python int for a scalar input).  torch: a
    float32/float16/bfloat16/float64 or integer tensor; returns a tensor on the
    same device (uint8 for formats of 8 bits or fewer, else int32).  triton: as
    torch, computed by the traced cast kernel run by Triton (compiled on CUDA,
    interpreted on CPU tensors; :mod:`refarith.fast.triton_backend`).  Raises
    SpecialValueError where the exact model raises (NaN under nan_policy='error'
    into a format without NaN, a negative under negative='error' into an
    unsigned format).  ``subnormal``: a flush-to-zero variant (``daz``, ``ftz``,
    ``daz_ftz``, :data:`refarith.exact.rounding.SUBNORMAL_MODES`): subnormal
    source bit patterns zeroed before the cast, subnormal result codes after it
    (numpy, and torch given bit patterns with ``src=``; not triton).
    """
    if getattr(get_format(fmt), "kind", None) == "tapered":  # HiFloat8: refarith.fast.hifloat
        if subnormal is not None:
            raise UnknownModeError(f"subnormal flushing does not apply to {get_format(fmt).name}")
        return _encode_tapered(x, get_format(fmt), rounding, overflow, nan_policy, negative, rand, backend, src)
    dst = _dst(fmt)
    if backend not in BACKENDS:
        raise UnknownModeError(f"unknown fast backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if negative is None:
        negative = default_negative(dst)
    overflow, rand_bits = _modes(dst, rounding, overflow, nan_policy, negative, rand_bits)
    if rounding == "sr":
        check_variant(sr_variant, rand_bits, dst.name)
    # a scalar in, an int out (numpy backend); decided before _daz turns the input into an array
    scalar = backend == "numpy" and not isinstance(x, (np.ndarray, list, tuple)) and np.ndim(x) == 0
    if subnormal is not None:
        check_subnormal_mode(subnormal)
        if backend == "triton":
            raise UnknownModeError("subnormal flushing runs on the numpy and torch backends, not triton")
        x, src = _daz(x, src, subnormal, backend)
    if backend == "triton":
        from refarith.fast import triton_backend

        return triton_backend.encode(x, dst, rounding, overflow, nan_policy, negative, rand, rand_bits, src,
                                     sr_variant=sr_variant)
    if backend == "torch":
        out = _encode_torch(x, dst, rounding, overflow, nan_policy, negative, rand, rand_bits, src, sr_variant)
        if subnormal in ("ftz", "daz_ftz") and dst.subnormals:
            out = _torch_code_table(_ftz_table(dst), str(out.device))[out.long()].to(out.dtype)
        return out
    out = _encode_numpy(x, dst, rounding, overflow, nan_policy, negative, rand, rand_bits, src, sr_variant)
    if subnormal in ("ftz", "daz_ftz") and dst.subnormals:
        out = _ftz_table(dst)[out.astype(np.int64)]
    return int(out) if scalar else out


def _encode_tapered(x: Any, dst: Any, rounding: str, overflow: str | None, nan_policy: str, negative: str | None,
                    rand: Any, backend: str, src: Any) -> Any:
    """HiFloat8 targets: float inputs (or ``src`` codes, decoded exactly first) through refarith.fast.hifloat."""
    from refarith.fast import hifloat

    if backend not in ("numpy", "torch"):
        raise UnknownModeError(f"{dst.name} encodes on the numpy and torch backends, not {backend}")
    if overflow is None:
        overflow = cast_default_overflow(dst)
    check_modes(dst, rounding, overflow, nan_policy, negative or "error")
    if rand is not None:
        raise UnknownModeError(f"stochastic rounding into {dst.name} is not modelled")
    if src is not None:
        x = _tapered_source(x, get_format(src), backend)
    scalar = backend == "numpy" and not isinstance(x, (np.ndarray, list, tuple)) and np.ndim(x) == 0
    out = hifloat.encode(x, dst, rounding, overflow, backend)
    return int(out) if scalar else out


def _tapered_source(x: Any, sf: Any, backend: str) -> Any:
    """Values of the bit patterns ``x`` of ``sf``: by table for 16 bits or fewer, by reinterpreting the bits for
    binary32 and binary64 (every value exact in binary64)."""
    if sf.nbits <= 16:
        return decode(x, sf, backend)  # float32 only where every value is exact in it
    if sf.name not in ("binary32", "binary64"):
        raise BadValueError(f"encoding into HiFloat8 takes 16-bit, binary32 or binary64 sources, not {sf.name}")
    if backend == "torch":
        import torch

        w, _ = _torch_source(x, sf)
        return w.view(torch.float64) if sf.nbits == 64 else w.to(torch.int32).view(torch.float32)
    w, _ = _numpy_source(x, sf)
    return w.view(np.float64) if sf.nbits == 64 else w.view(np.float32)


@lru_cache(maxsize=64)
def _ftz_table(fmt: FloatFormat) -> np.ndarray:
    """Per code of ``fmt`` (at most 16 bits): the code after flushing a subnormal result to zero."""
    t = np.array([flush_code(c, fmt, "ftz") for c in range(fmt.ncodes)], dtype=code_dtype(fmt))
    t.setflags(write=False)
    return t


def _daz(x: Any, src: Any, subnormal: str, backend: str) -> tuple[Any, Any]:
    """(bit patterns with every subnormal of the source read as the zero of its sign, source format name) under
    ``daz``/``daz_ftz``; ``(x, src)`` otherwise."""
    if subnormal not in ("daz", "daz_ftz"):
        return x, src
    if backend == "torch":
        if src is None:
            raise BadValueError("subnormal=daz on the torch backend needs integer bit patterns and src=")
        sf = get_format(src)
        if isinstance(sf, FloatFormat) and sf.subnormals and sf.nbits <= 32:
            import torch

            e = (x >> sf.mbits) & sf.emask
            x = torch.where((e == 0) & ((x & sf.mmask) != 0), x & sf.sign_mask, x)
        return x, src
    bits, sf = _numpy_source(x, src)
    if isinstance(sf, FloatFormat) and sf.subnormals:
        t = bits.dtype.type
        sub = ((bits >> t(sf.mbits)) & t(sf.emask)) == 0
        bits = np.where(sub & ((bits & t(sf.mmask)) != 0), bits & t(sf.sign_mask), bits)
    return bits, sf.name


@lru_cache(maxsize=512)
def value_table(fmt: FloatFormat | IntFormat, dtype: str) -> np.ndarray:
    """Values of every code of ``fmt`` (at most 16 bits) as ``dtype`` ('float32' or 'float64'), NaN sign kept.

    Raises BadValueError when a value is not exact in that dtype.
    """
    from refarith.exact import ops as exact_ops

    if fmt.nbits > 16:
        raise BadValueError(f"{fmt.name} has {fmt.nbits} bits; decode tables are for formats of 16 bits or fewer")
    from fractions import Fraction

    vals = []
    for c in range(fmt.ncodes):
        v = exact_ops.decode(c, fmt)
        try:
            f = v.to_float()
        except OverflowError:
            raise BadValueError(f"{fmt.name} value of code {c:#x} is beyond the float64 range") from None
        if v.is_nan and v.sign:
            f = -f
        if v.is_finite and abs(Fraction(f)) != v.mag:
            raise BadValueError(f"{fmt.name} value of code {c:#x} is not exact in float64")
        vals.append(f)
    t64 = np.array(vals, dtype=np.float64)
    with np.errstate(over="ignore"):
        t = t64.astype(dtype)
    finite = np.isfinite(t64)
    if not np.array_equal(t[finite].astype(np.float64), t64[finite]) or np.any(np.isinf(t[finite])):
        raise BadValueError(f"{fmt.name} has values that are not exact in {dtype}")
    return _freeze(t)


def exact_in_float32(fmt: FloatFormat | IntFormat | str) -> bool:
    """Whether every value of ``fmt`` is exactly representable in float32."""
    try:
        value_table(get_format(fmt), "float32")
    except BadValueError:
        return False
    return True


def decode(codes: Any, fmt: FloatFormat | IntFormat | str, backend: str = "numpy", dtype: Any = None) -> Any:
    """Values of ``codes`` of ``fmt`` (at most 16 bits) by table lookup.

    Default dtype float32 (exact for the format, checked; float64 where float32
    is not exact); ``dtype='float64'`` on request.  numpy returns an array,
    torch a tensor on the codes' device.
    """
    fmt = get_format(fmt)
    if backend not in BACKENDS:
        raise UnknownModeError(f"unknown fast backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if fmt.nbits > 16:
        raise BadValueError(f"{fmt.name} has {fmt.nbits} bits; fast decode handles formats of 16 bits or fewer")
    if backend == "triton":
        from refarith.fast import triton_backend

        return triton_backend.decode(codes, fmt, dtype)
    name = _dtype_name(dtype)
    if name is None:
        name = "float32" if exact_in_float32(fmt) else "float64"
    table = value_table(fmt, name)
    if backend == "torch":
        import torch

        c = codes if isinstance(codes, torch.Tensor) else torch.as_tensor(as_numpy(codes))
        if c.is_floating_point() or c.is_complex() or c.dtype == torch.bool:
            raise BadValueError(f"codes must be integers, got {c.dtype}")
        if c.numel() and not (c.dtype == torch.uint8 and fmt.ncodes >= 256):  # uint8 codes of 8 bits: in range
            if int(c.min()) < 0 or int(c.max()) >= fmt.ncodes:
                raise BitPatternError(f"{fmt.name}: codes must lie in [0, {fmt.ncodes - 1:#x}]")
        if c.dtype == torch.uint8 and name == "float32" and _is_e8m0(fmt):
            return _decode_e8m0_torch(c)
        if (c.dtype == torch.uint8 and name == "float32" and fmt.nbits <= 8 and c.numel() >= 2
                and c.is_contiguous() and c.storage_offset() % 2 == 0 and sys.byteorder == "little"):
            return _decode_pairs_torch(c, fmt)
        tt = _torch_table(fmt, name, str(c.device))
        return _torch_gather(tt, c, c)
    scalar = not isinstance(codes, (np.ndarray, list, tuple)) and np.ndim(codes) == 0
    arr = as_numpy(codes)
    if arr.dtype.kind not in ("i", "u"):
        raise BadValueError(f"codes must be integers, got dtype {arr.dtype}")
    if arr.dtype.itemsize * 8 > fmt.nbits or arr.dtype.kind == "i":
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= fmt.ncodes):
            raise BitPatternError(f"{fmt.name}: codes must lie in [0, {fmt.ncodes - 1:#x}]")
    if arr.dtype.kind == "i":
        arr = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
    if arr.dtype == np.uint8 and table.dtype == np.float32 and _is_e8m0(fmt):
        out = _decode_e8m0(arr)
        return out[()] if scalar else out
    if (arr.dtype == np.uint8 and table.dtype == np.float32 and fmt.nbits <= 8 and arr.size >= 2
            and arr.flags.c_contiguous and sys.byteorder == "little"):
        return _decode_pairs(arr, fmt, table)
    out = np.take(table, arr)
    return out[()] if scalar else out


def _is_e8m0(fmt: FloatFormat | IntFormat) -> bool:
    return (isinstance(fmt, FloatFormat) and (fmt.ebits, fmt.mbits, fmt.bias, fmt.signed, fmt.subnormals,
                                               fmt.specials) == (8, 0, 127, False, False, "fn"))


def _decode_e8m0(arr: np.ndarray) -> np.ndarray:
    """E8M0 code E is 2^(E-127): the binary32 pattern E << 23 for 1 <= E <= 254; code 0 is 2^-127 (a binary32
    subnormal, pattern 0x00400000) and 0xFF is NaN, patched only when the input holds them.  One shift over the
    whole array (the output is written once, so blocks would only add per-call overhead) and one min and max over
    the codes."""
    flat = arr.ravel()
    out = np.left_shift(flat, 23, dtype=np.uint32)
    if flat.size and flat.min() == 0:
        out[flat == 0] = 0x00400000
    if flat.size and flat.max() == 0xFF:
        out[flat == 0xFF] = 0x7FC00000
    return out.view(np.float32).reshape(arr.shape)


@lru_cache(maxsize=64)
def _pair_table(fmt: FloatFormat | IntFormat) -> np.ndarray:
    """uint64 entry i = the float32 bits of code (i & 0xFF) | those of code (i >> 8) << 32 (little-endian pairs)."""
    single = np.full(256, np.nan, dtype=np.float32)
    t = value_table(fmt, "float32")
    single[: t.size] = t
    bits = single.view(np.uint32).astype(np.uint64)
    i = np.arange(1 << 16)
    return _freeze(bits[i & 0xFF] | (bits[i >> 8] << np.uint64(32)))


def _decode_pairs(arr: np.ndarray, fmt: FloatFormat | IntFormat, table: np.ndarray) -> np.ndarray:
    """Decode uint8 codes two at a time: one 8-byte gather from a 2^16-entry table per pair of codes, with intp
    indices and mode='clip' (the default mode checks every index; a uint16 pair is always in range)."""
    pair = _pair_table(fmt)
    flat = arr.ravel()
    n2 = flat.size // 2
    out = np.empty(flat.size, dtype=np.float32)
    op = out[: 2 * n2].view(np.uint64)
    c16 = flat[: 2 * n2].view(np.uint16)
    idx = np.empty(min(_BLOCK, n2), dtype=np.intp)
    for a in range(0, n2, _BLOCK):
        b = min(a + _BLOCK, n2)
        ib = idx[: b - a]
        ib[...] = c16[a:b]  # take converts any other index dtype to intp itself, in a slower loop
        np.take(pair, ib, out=op[a:b], mode="clip")  # every index is below 2^16, the table's length
    out[2 * n2:] = table[flat[2 * n2:]]  # the last code of an odd size; nothing for an even one
    return out.reshape(arr.shape)


def _decode_e8m0_torch(c: Any) -> Any:
    """The torch twin of :func:`_decode_e8m0`: code E as the binary32 pattern E << 23 (int32 shift), patched where
    the codes hold 0 (2^-127, pattern 0x00400000) or 0xFF (NaN, 0x7FC00000)."""
    import torch

    out = torch.empty(c.shape, dtype=torch.int32, device=c.device)
    out.copy_(c)
    out.bitwise_left_shift_(23)
    if c.numel():
        lo, hi = torch.aminmax(c)
        if int(lo) == 0:
            out[c == 0] = 0x00400000
        if int(hi) == 0xFF:
            out[c == 0xFF] = 0x7FC00000
    return out.view(torch.float32)


_TORCH_PAIR_BLOCK = 1 << 18  # code pairs per gather on CPU


def _decode_pairs_torch(c: Any, fmt: FloatFormat | IntFormat) -> Any:
    """The torch twin of :func:`_decode_pairs`: contiguous uint8 codes two at a time as uint16 pair indices, one
    8-byte gather per pair from the 2^16-entry pair table (int32 indices, copied block by block on CPU)."""
    import torch

    pair = _torch_pair_table(fmt, str(c.device))
    flat = c.reshape(-1)
    n2 = flat.numel() // 2
    out = torch.empty(flat.numel(), dtype=torch.float32, device=c.device)
    op = out[: 2 * n2].view(torch.int64)
    c16 = flat[: 2 * n2].view(torch.uint16)
    blk = _TORCH_PAIR_BLOCK if c.device.type == "cpu" else n2
    idx = torch.empty(min(blk, n2), dtype=torch.int32, device=c.device)
    for a in range(0, n2, blk):
        b = min(a + blk, n2)
        ib = idx[: b - a]
        ib.copy_(c16[a:b])
        torch.index_select(pair, 0, ib, out=op[a:b])
    if flat.numel() & 1:
        out[-1:] = torch.index_select(_torch_table(fmt, "float32", str(c.device)), 0, flat[-1:].to(torch.int32))
    return out.reshape(c.shape)


@lru_cache(maxsize=64)
def _torch_pair_table(fmt: FloatFormat | IntFormat, device: str):
    import torch

    return torch.from_numpy(_pair_table(fmt).view(np.int64).copy()).to(device)


@lru_cache(maxsize=64)
def _torch_table(fmt: FloatFormat | IntFormat, name: str, device: str):
    import torch

    return torch.from_numpy(value_table(fmt, name).copy()).to(device)


def _dtype_name(dtype: Any) -> str | None:
    if dtype is None:
        return None
    s = str(dtype).replace("torch.", "").replace("numpy.", "")
    s = {"float": "float64", "double": "float64", "<class 'float'>": "float64",
         "<class 'float32'>": "float32", "<class 'float64'>": "float64"}.get(s, s)
    if s not in ("float32", "float64"):
        raise BadValueError(f"decode dtype must be float32 or float64, got {dtype!r}")
    return s


__all__ = ["as_numpy", "code_dtype", "code_table", "decode", "encode", "exact_in_float32", "key_table",
           "sticky_keys", "value_table"]
