"""numpy MX quantization of inputs longer than one pass (refarith.fast.mx.blockwise splits them into chunks of
whole blocks): every block against refarith.exact.mx.quantize_block, torch absent or not.

The input tiles a few distinct blocks (zeros, a subnormal, ordinary values, NaN, inf, the binary32 maximum) with a
period that is prime to the chunk length, so chunk boundaries fall in every phase; each block's expected scale and
codes are those of the exact model for its pattern (blocks are quantized independently).
"""

from __future__ import annotations

import numpy as np
import pytest

from refarith.exact import mx as emx
from refarith.fast import mx as fmx

PATTERNS = np.array([
    [0.0, -0.0, 0.0, 0.0],
    [1.0, -0.5, 0.25, 3.0],
    [1e-40, -2e-40, 0.0, 5e-41],
    [6.0, -6.5, 0.1, 100.0],
    [np.nan, 1.0, 2.0, 3.0],
    [1.0, -np.inf, 0.0, 2.0],
    [3.4028235e38, -1.0, 1e30, 7.0],
], dtype=np.float32)


@pytest.mark.parametrize("element, scale", [("mxfp4", "floor"), ("mxfp8_e4m3", "even")])
def test_multi_chunk_rows_match_the_exact_model(element, scale):
    block = 4
    step = fmx.chunk_elements(fmx.ops("numpy"), None) // block  # blocks per pass
    rows, nb = 3, step // 3 + 2  # rows * nb > step: more than one pass, and a pass ends inside a row
    assert rows * nb > step
    idx = np.arange(rows * nb) % len(PATTERNS)
    x = PATTERNS[idx].reshape(rows, nb * block)
    s, c = fmx.mx_quantize(x, element, axis=-1, block=block, scale=scale)
    assert s.shape == (rows, nb) and c.shape == (rows, nb * block) and s.dtype == c.dtype == np.uint8
    exact = [emx.quantize_block([float(v) for v in p], element, scale) for p in PATTERNS]
    want_s = np.array([b.scale for b in exact], dtype=np.uint8)[idx].reshape(rows, nb)
    want_c = np.array([b.codes for b in exact], dtype=np.uint8)[idx].reshape(rows, nb * block)
    assert np.array_equal(s, want_s)
    assert np.array_equal(c, want_c)
    # the same blocks along axis 0 (the transposed layout goes through the same passes)
    s0, c0 = fmx.mx_quantize(np.ascontiguousarray(x.T), element, axis=0, block=block, scale=scale)
    assert np.array_equal(s0, want_s.T) and np.array_equal(c0, want_c.T)
