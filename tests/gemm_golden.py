"""Running a GEMM backend over every vector of a committed scaled_mm golden file (shared by the torch and Triton
backend tests)."""

from __future__ import annotations

import numpy as np

from refarith.certify.adapters import group_columns
from refarith.errors import KernelError
from refarith.golden import fileformat as ff
from refarith.golden.drivers import get_driver
from refarith.golden.generate import default_dir, file_name


def check_backend_on_file(spec, backend: str, against_numpy: bool = False) -> tuple[int, int]:
    """Run ``backend`` on every non-raising vector of the spec's committed file; each result must equal the file's
    codes (and, with ``against_numpy``, the numpy kernel's).  A vector the backend refuses (KernelError) is
    skipped; returns (vectors run, vectors in the file)."""
    g = ff.load(default_dir() / file_name(spec))
    drv = get_driver(spec)
    ran = 0
    for i in np.nonzero(~g.raises)[0].tolist():
        ops = group_columns(drv.inputs(spec), tuple(a[i:i + 1].astype(np.int64) for a in g.inputs))
        try:
            got = drv.fast(spec, ops, backend)[0]
        except KernelError:
            continue
        ran += 1
        if against_numpy:
            assert (got == drv.fast(spec, ops, "numpy")[0]).all(), (spec, i)
        assert (got == g.outputs[i:i + 1].astype(np.int64)).all(), (spec, i)
    return ran, g.count
