"""Kernels for tests/test_sweep.py, importable by name in Dask worker processes (PYTHONPATH holds tests/).

``add_flip``: binary16 addition by refarith's fast kernel with one deliberate fault: for a = 0x3c01 and the low
byte of b equal to 0x11 the result's last bit is flipped wherever it is finite (a mismatch one ulp away).
``add_flip_slow``: the same, sleeping ``SLEEP`` seconds per call, so that a test can kill a process while shards
are in flight.
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


add_flip.refarith_inputs = "codes"  # type: ignore[attr-defined]
add_flip_slow.refarith_inputs = "codes"  # type: ignore[attr-defined]
