"""pychop (the seed paper's library): ``pychop.Chop(exp_bits, sig_bits, rmode)`` on the numpy backend.

Target ``pychop:<format>[+<mode>]``: ``<format>`` an IEEE-like refarith format (exponent bias 2^(e-1)-1, inf and
NaN, subnormals), e.g. ``ieee_e4m3`` (Chop(4, 3)), ``ocp_e5m2`` (Chop(5, 2)), ``binary16``, ``bfloat16``;
``<mode>`` one of rne (rmode 1, default), rup (2), rdn (3), rtz (4), rna (8), rto (9).  Chop returns float
values (fake quantization): a values kernel.
"""

from __future__ import annotations

from refarith.certify.deployed._common import Library, as_float32, cast_check, require, values_kernel
from refarith.errors import KernelError
from refarith.formats import FloatFormat, get_format

LIBRARY = Library("pychop", "pychop", ("0.6.2",), ("pychop==0.6.2",))
RMODES = {"rne": 1, "rup": 2, "rdn": 3, "rtz": 4, "rna": 8, "rto": 9}


def load(name: str):
    target = f"pychop:{name}"
    fmt_name, _, mode = name.partition("+")
    mode = mode or "rne"
    if mode not in RMODES:
        raise KernelError(f"adapter {target}: unknown rounding {mode!r}; pychop modes: {', '.join(RMODES)}")
    try:
        fmt = get_format(fmt_name)
    except Exception:  # noqa: BLE001 - an unknown format name is one line
        raise KernelError(f"adapter {target}: unknown format {fmt_name!r}") from None
    if not isinstance(fmt, FloatFormat) or fmt.specials != "ieee" or not fmt.signed \
            or fmt.bias != (1 << (fmt.ebits - 1)) - 1 or not fmt.subnormals:
        raise KernelError(f"adapter {target}: pychop's Chop simulates IEEE-like formats (bias 2^(e-1)-1, inf, NaN, "
                          f"subnormals); {fmt.name} is not one")
    pychop, version = require(LIBRARY, target)
    pychop.backend("numpy")
    chop = pychop.Chop(fmt.ebits, fmt.mbits, rmode=RMODES[mode])
    import numpy as np

    def fn(spec, operands):
        with np.errstate(all="ignore"):
            return np.asarray(chop(as_float32(operands[0], spec.formats[0])))

    return values_kernel(target, fn, LIBRARY, version, cast_check(target, fmt.name))
