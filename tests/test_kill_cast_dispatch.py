"""fast.cast: the mode checks and backend dispatch that the numpy paths reach (docs/mutation.md, fast/cast.py).

Every expectation is the documented contract, not a value computed by the code under test: an unknown
subnormal mode is refused with its name; a list of bools is not a list of codes; ``backend="torch"`` or
``"triton"`` returns a tensor of that backend, or fails to import it, and never falls back to numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

from refarith.errors import BadValueError, UnknownModeError
from refarith.fast.cast import decode, encode


def test_unknown_subnormal_mode_is_refused_by_name() -> None:
    for x in (1.0, np.array([1.0, 2.0], dtype=np.float32)):
        with pytest.raises(UnknownModeError, match="unknown subnormal mode 'bogus'"):
            encode(x, "ocp_e4m3", subnormal="bogus")


def test_bool_codes_are_refused_as_not_integers() -> None:
    with pytest.raises(BadValueError, match="^codes must be integers, got dtype bool$"):
        decode([True, False], "ocp_e4m3")


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_accelerator_backends_never_fall_back_to_numpy(backend: str) -> None:
    try:
        out = decode(np.array([0x38, 0x40], dtype=np.uint8), "ocp_e4m3", backend=backend)
    except ImportError:
        return  # the backend's library is absent: refused, as documented
    assert not isinstance(out, np.ndarray)
    assert type(out).__module__.startswith("torch")
