"""MX fake quantization, vectorized (numpy and torch): the same binary32 bits as :mod:`refarith.exact.mxfake`.

:func:`refarith.fast.mx.mx_quantize` gives the E8M0 scale and element codes; :func:`refarith.fast.mx.mx_dequantize`
multiplies the element values by the scale in binary32.  That product is the exact X * P_i (or ±inf where it
reaches 2^128), as the exact model's docstring argues, so one binary32 multiply rounds nothing.
"""

from __future__ import annotations

import numpy as np

from refarith.fast import mx as _fmx


def mx_fake_quantize(x, element: str, axis: int = -1, block: int = 32, scale: str = "floor", rounding: str = "rne",
                     backend: str = "numpy"):
    """float32 values X * P_i of ``x`` (float32 array, numpy or torch) quantized along ``axis`` in blocks of
    ``block``; NaN for every element of a block that holds a NaN or an infinity."""
    s, c = _fmx.mx_quantize(x, element, axis=axis, block=block, scale=scale, rounding=rounding, backend=backend)
    with np.errstate(over="ignore"):  # the one overflow, |X * P| = 2^128, is ±inf by definition
        return _fmx.mx_dequantize(s, c, element, axis=axis, block=block, backend=backend)


__all__ = ["mx_fake_quantize"]
