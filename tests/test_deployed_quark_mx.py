"""AMD Quark 0.13's CPU ``fake_quantize_mx`` on every element format and scale mode, on the certifier's vectors of
``mx_fake_quantize(E,block=32)`` (the driver's boundary blocks and its 512 seeded random blocks): every block where
Quark differs from refarith's rule of the same name is explained by one predicate on the block, and the count of
each is the one documented in docs/certificates/README.md.  Expected values come from refarith's MX fake
quantization (the fast kernel, tied to the exact model by tests/test_mx_fake.py); the predicates name the cause:

* ``nan_inf``: the block holds a NaN or an infinity (``even``: the finite elements come back 0, not NaN);
* ``signed_zero``: the only differences are zeros of the other sign (a negative value rounding to zero gives
  +0 in Quark's FP4/FP6 kernel);
* ``log2f``: ``floor``/``ceil`` of the float32 ``torch.log2(amax)`` differs from that of the exact log2 (a
  maximum just below a power of two takes the next binade);
* ``unclamped``: ``floor``/``ceil``: Quark's exponent is outside E8M0's [-127, 127] (a binary32 subnormal scale,
  2^-23 where it is 0, or an infinite one), where OCP MX clamps;
* ``int8_quantum``: int8: the element quantum scale/64 is below 2^-126 and ``torch.finfo(float32).tiny``
  clamps it there;
* ``even_inf``: ``even``: the maximum rounds up into 2^128 (adding half an element ulp to its bits gives +inf),
  and Quark's scale is 2^127 where refarith's exponent is 128 - emax;
* ``even_9_bits``: int8 ``even``: Quark rounds the maximum to 9 significant bits (its int8 has mbits 8),
  refarith's MXINT8 ``even`` to 7.

Quark's import JIT-compiles its extension (about a minute) and the 18 runs take minutes: slow."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refarith.certify.deployed import needs_deployed

ELEMENTS = {"mx_fp4": ("ocp_e2m1", 1), "mx_fp8_e4m3": ("ocp_e4m3", 3), "mx_fp8_e5m2": ("ocp_e5m2", 2),
            "mx_fp6_e3m2": ("ocp_e3m2", 2), "mx_fp6_e2m3": ("ocp_e2m3", 3), "mx_int8": ("int8_sym", 8)}
"""Target -> (refarith element, Quark's mbits for it)."""

SEED = 605817407

EXPECTED = {
    ("mx_fp4", "floor"): {"unclamped": 304, "log2f": 502, "signed_zero": 2991},
    ("mx_fp4", "ceil"): {"unclamped": 293, "log2f": 9, "signed_zero": 3501},
    ("mx_fp4", "even"): {"nan_inf": 7, "even_inf": 13, "signed_zero": 3790},
    ("mx_fp8_e4m3", "floor"): {"unclamped": 242, "log2f": 488},
    ("mx_fp8_e4m3", "ceil"): {"unclamped": 127},
    ("mx_fp8_e4m3", "even"): {"nan_inf": 7, "even_inf": 1},
    ("mx_fp8_e5m2", "floor"): {"unclamped": 194, "log2f": 474},
    ("mx_fp8_e5m2", "ceil"): {"unclamped": 80},
    ("mx_fp8_e5m2", "even"): {"nan_inf": 7, "even_inf": 1},
    ("mx_fp6_e3m2", "floor"): {"unclamped": 310, "log2f": 503, "signed_zero": 2446},
    ("mx_fp6_e3m2", "ceil"): {"unclamped": 308, "log2f": 5, "signed_zero": 2901},
    ("mx_fp6_e3m2", "even"): {"nan_inf": 7, "even_inf": 8, "signed_zero": 3156},
    ("mx_fp6_e2m3", "floor"): {"unclamped": 296, "log2f": 502, "signed_zero": 2475},
    ("mx_fp6_e2m3", "ceil"): {"unclamped": 285, "log2f": 4, "signed_zero": 3426},
    ("mx_fp6_e2m3", "even"): {"nan_inf": 7, "even_inf": 9, "signed_zero": 3356},
    ("mx_int8", "floor"): {"int8_quantum": 297, "unclamped": 17, "log2f": 504},
    ("mx_int8", "ceil"): {"int8_quantum": 307, "unclamped": 24, "log2f": 11},
    ("mx_int8", "even"): {"nan_inf": 7, "int8_quantum": 326, "even_9_bits": 68},
}
"""Differing blocks by cause, of 3822 (FP4), 3790 (E4M3), 3748 (E5M2), 3814 (FP6), 3796 (int8) blocks."""


def _cause(blk: np.ndarray, got: np.ndarray, want: np.ndarray, mode: str, element: str, mbits: int) -> str:
    import torch

    from refarith.exact import mx as _mx

    if not np.isfinite(blk).all():
        return "nan_inf"
    diff = got != want
    if (((got[diff] | want[diff]) & np.uint32(0x7FFFFFFF)) == 0).all():
        return "signed_zero"
    a = float(np.abs(blk).max())
    fmt = _mx.mx_element(element)
    em = _mx.emax_elem(fmt)
    fl = math.frexp(a)[1] - 1  # exact floor(log2 a), a > 0 (an all-zero block agrees)
    cl = fl if a == 2.0 ** fl else fl + 1
    l2 = float(torch.log2(torch.tensor(a, dtype=torch.float32)))
    quark_up = a >= (2 - 2.0 ** -(mbits + 1)) * 2.0 ** fl  # adding 2^(22 - mbits) to the bits carries
    if mode == "floor":
        eq = math.floor(l2) - em
    elif mode == "ceil":
        eq = math.ceil(l2) - em
    else:
        eq = 127 if quark_up and fl == 127 else max(-127, min(127, fl + quark_up - em))
    if mode != "even" and (math.floor(l2), math.ceil(l2))[mode == "ceil"] != (fl, cl)[mode == "ceil"]:
        return "log2f"
    if mode != "even" and not -127 <= eq <= 127:
        return "unclamped"
    if element == "int8_sym" and eq - 6 < -126:
        return "int8_quantum"
    if mode == "even" and quark_up and fl == 127:
        return "even_inf"
    refarith_up = a >= (2 - 2.0 ** -_mx._elem_precision(fmt)) * 2.0 ** fl
    if mode == "even" and refarith_up != quark_up:
        return "even_9_bits"
    return "unexplained"


@pytest.mark.slow
@pytest.mark.parametrize("name, mode", sorted(EXPECTED))
def test_every_quark_mx_difference_has_its_cause(name, mode):
    needs_deployed("quark")
    from refarith.certify.adapters import load_kernel
    from refarith.fast.mxfake import mx_fake_quantize
    from refarith.golden.drivers import get_driver
    from refarith.spec import parse_spec

    element, mbits = ELEMENTS[name]
    spec = parse_spec(f"mx_fake_quantize({element},scale={mode})")
    d = get_driver(spec)
    codes = np.array(d.boundary(spec) + d.random(spec, 512, SEED), dtype=np.uint64)
    got = load_kernel(f"quark:{name}+{mode}")(spec, (codes,)).astype(np.uint32)
    x = codes.astype(np.uint32).view(np.float32)
    want = mx_fake_quantize(x.copy(), element, block=32, scale=mode).view(np.uint32)
    both_nan = np.isnan(got.view(np.float32)) & np.isnan(want.view(np.float32))
    causes: dict[str, int] = {}
    for i in np.nonzero(((got != want) & ~both_nan).any(axis=1))[0]:
        row = ~both_nan[i]
        c = _cause(x[i], got[i][row], want[i][row], mode, element, mbits)
        causes[c] = causes.get(c, 0) + 1
    assert causes == EXPECTED[(name, mode)]
