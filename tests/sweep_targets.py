"""Kernels for tests/test_sweep.py, importable by name in Dask worker processes (PYTHONPATH holds tests/).

``add_flip``: binary16 addition by refarith's fast kernel with one deliberate fault: for a = 0x3c01 and the low
byte of b equal to 0x11 the result's last bit is flipped wherever it is finite (a mismatch one ulp away).
``add_flip_slow``: the same, sleeping ``SLEEP`` seconds per call, so that a test can kill a process while shards
are in flight.
``fma_flip_e4m3``: a * b + c of ocp_e4m3 codes computed by ml_dtypes, independently of refarith (the operands
widened to binary64, where the e4m3 product and sum are exact, then ml_dtypes' float8_e4m3fn cast: ties to even,
NaN beyond the largest finite), with the last bit of every finite result flipped where c = 0x11.
``add_flip_odd``: binary16 a + b by numpy float16, the last bit of every finite result flipped where a and b are
both odd codes (a fault that seeded fuzz vectors hit often); ``add_flip_odd_slow``: the same, sleeping ``SLEEP``
seconds per call.
"""

from __future__ import annotations

import time

import numpy as np

SLEEP = 0.4


def add_flip(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from refarith.fast.arith import arith

    r = np.asarray(arith("add", a.astype(np.int64), b.astype(np.int64), "binary16"), dtype=np.uint16)
    hit = (a == 0x3C01) & ((b & 0xFF) == 0x11) & ((r & 0x7C00) != 0x7C00)
    return np.where(hit, r ^ np.uint16(1), r)


def add_flip_slow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    time.sleep(SLEEP)
    return add_flip(a, b)


def fma_e4m3_ml_dtypes(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    import ml_dtypes

    x, y, z = (np.asarray(v, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float64) for v in (a, b, c))
    with np.errstate(all="ignore"):
        return (x * y + z).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)


def fma_flip_e4m3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    r = fma_e4m3_ml_dtypes(a, b, c)
    return np.where((np.asarray(c) == 0x11) & ((r & 0x7F) != 0x7F), r ^ np.uint8(1), r)


def add_flip_odd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x, y = (np.asarray(v, dtype=np.uint16).view(np.float16) for v in (a, b))
    with np.errstate(all="ignore"):
        r = (x + y).view(np.uint16)
    hit = (np.asarray(a) & 1 == 1) & (np.asarray(b) & 1 == 1) & ((r & 0x7C00) != 0x7C00)
    return np.where(hit, r ^ np.uint16(1), r)


fma_flip_e4m3.refarith_inputs = "codes"  # type: ignore[attr-defined]
add_flip_odd.refarith_inputs = "codes"  # type: ignore[attr-defined]
add_flip.refarith_inputs = "codes"  # type: ignore[attr-defined]
add_flip_slow.refarith_inputs = "codes"  # type: ignore[attr-defined]


def add_flip_odd_slow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``add_flip_odd``, sleeping ``SLEEP`` seconds per call (a fuzz shard calls it once per 4096 vectors)."""
    time.sleep(SLEEP)
    return add_flip_odd(a, b)


add_flip_odd_slow.refarith_inputs = "codes"  # type: ignore[attr-defined]


def add_raises(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A kernel that fails on every call (a shard that fails on every try)."""
    raise ValueError("add_raises: no result")


add_raises.refarith_inputs = "codes"  # type: ignore[attr-defined]


def bf16_flip(x: np.ndarray) -> np.ndarray:
    """binary32 -> bfloat16, round to nearest even, by the carry trick on the bit patterns (independent of
    refarith: add 0x7FFF plus the kept last bit, keep the top half; a NaN keeps its sign and becomes 0x7FC0 or
    0xFFC0), with the last bit of the result flipped wherever the low 16 bits of the input are 0x1234 and the
    result is finite."""
    b = np.asarray(x).astype(np.uint32)
    r = ((b.astype(np.uint64) + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    nan = (b & 0x7FFFFFFF) > 0x7F800000
    r = np.where(nan, ((b >> 16) & 0x8000).astype(np.uint16) | np.uint16(0x7FC0), r)
    hit = ((b & 0xFFFF) == 0x1234) & ((r & 0x7F80) != 0x7F80)
    return np.where(hit, r ^ np.uint16(1), r)


bf16_flip.refarith_inputs = "codes"  # type: ignore[attr-defined]


def e4m3_flip(x: np.ndarray) -> np.ndarray:
    """binary32 -> ocp_e4m3 (overflow to NaN) by refarith's numpy encode, with the last bit of the result flipped
    wherever the low 16 bits of the input are 0x1234 and the result is not NaN (a planted fault for the sweep's
    comparison, whose count follows from this definition)."""
    from refarith.fast.cast import encode

    b = np.asarray(x).astype(np.uint32)
    r = np.asarray(encode(b.view(np.float32), "ocp_e4m3", overflow="nan"), dtype=np.uint8)
    hit = ((b & 0xFFFF) == 0x1234) & ((r & 0x7F) != 0x7F)
    return np.where(hit, r ^ np.uint8(1), r)


e4m3_flip.refarith_inputs = "codes"  # type: ignore[attr-defined]


def bf16_refuse(x: np.ndarray) -> np.ndarray:
    """A kernel that fails on every call (for the error of one failing campaign among several)."""
    raise ValueError("bf16_refuse always fails")


bf16_refuse.refarith_inputs = "codes"  # type: ignore[attr-defined]
