"""The cast theorems' wider scopes: binary64 and integer sources, the word-width selection, the table index."""

from __future__ import annotations

import numpy as np
import pytest

from refarith.exact.ops import cast as exact_cast
from refarith.fast import castkernel
from refarith.fast.castkernel import cast_bits, required_width
from refarith.smt import castproofs as cp
from refarith.smt import registry
from refarith.smt.theorems import casts


def test_binary64_on_32_bit_words_is_refused(monkeypatch):
    """required_width picks 64 for binary64; forcing 32-bit words (width check bypassed) cannot yield a proof:
    the kernel's static shift by 63 is refused while tracing."""
    from refarith.errors import BadValueError

    assert required_width("binary64", "ocp_e4m3") == 64
    monkeypatch.setattr(castkernel, "_fits", lambda *a: True)
    with pytest.raises(BadValueError, match="shift count 63"):
        cp.prove_kernel(cast_bits, "binary64", "ocp_e4m3", [("rne", "saturate", "error", "error")], width=32)


def _narrow_bug(ops, x, src, dst, **kw):
    """cast_bits, except that on 32-bit words the code of binary16 1.0 (0x3c00) has its last bit flipped."""
    codes, err = cast_bits(ops, x, src, dst, **kw)
    if ops.width == 32:
        codes = ops.where(ops.eq(x, ops.const(0x3C00, x)), ops.xor(codes, ops.const(1, x)), codes)
    return codes, err


def test_width_theorem_refutes_a_width_dependent_kernel():
    """prove_width can fail: a kernel wrong only on 32-bit words is refuted at x = 1.0 and the exact model sides
    with the 64-bit result."""
    out = cp.prove_width(_narrow_bug, "binary16", "ocp_e4m3", [("rne", "saturate", "error", "error")])
    assert out.verdict == "counterexample" and out.confirmed is True, out
    assert out.counterexample["source_bits"] == "0x3c00"
    shown = next(v for v in out.counterexample.values() if isinstance(v, dict))
    want = exact_cast(0x3C00, "binary16", "ocp_e4m3", "rne", "saturate").code
    assert shown["exact_model"] == shown["kernel_64_bit"] and shown["exact_model"].startswith(f"{want:#04x}")
    assert shown["kernel_32_bit"] != shown["exact_model"]


@pytest.mark.parametrize("name", ["cast.binary64->ocp_e4m3.rne", "cast.binary64->binary16.rup",
                                  "cast.int8->ue4m3.deterministic", "cast.int32->bfloat16.sr",
                                  "cast.width.bfloat16->e8m0", "cast.lut16.index"])
def test_new_scope_theorems_prove(name):
    th = registry.load_all()[name]
    out = th.check()
    assert out.verdict == th.expect == "proved", out


def test_width_theorems_cover_only_32_bit_pairs():
    for src, dst in casts.width_pairs():
        assert required_width(src, dst) == 32, (src, dst)


def test_lut_index_refutes_a_wrong_formula():
    """The index claim can fail: a key without the sticky bit differs from sticky_key on x = 1."""
    import z3

    from refarith.smt.bitops_z3 import Z3BitOps

    x = z3.BitVec("x", 32)
    key = castkernel.sticky_key(Z3BitOps(32), x)
    out = registry.prove(key == z3.LShR(x, 16) << 1, {"x": x}, 30)
    assert out.verdict == "counterexample"


def test_torch_table_index_equals_sticky_key():
    """The torch table path's index code (_torch_keys via _torch_gather on an identity table) == sticky_key, on
    patterns around every 2^16 boundary, both signs."""
    torch = pytest.importorskip("torch")
    from refarith.fast import cast as fast_cast
    from refarith.fast.bitops import NumpyBitOps

    hi = np.arange(1 << 16, dtype=np.uint64) << np.uint64(16)
    pats = np.concatenate([hi, hi | np.uint64(1), hi | np.uint64(0x8000), hi | np.uint64(0xFFFF)]).astype(np.uint32)
    ident = torch.arange(1 << 17, dtype=torch.int32)
    w = torch.from_numpy(pats.view(np.int32).copy())
    got = fast_cast._torch_gather(ident, w, fast_cast._torch_keys).numpy().astype(np.uint32)
    want = castkernel.sticky_key(NumpyBitOps(32), pats)
    assert np.array_equal(got, want)
    idx = fast_cast._gather(pats, ident.numpy().astype(np.uint32), None, np.uint32, keyed=True)
    assert np.array_equal(idx, want)
