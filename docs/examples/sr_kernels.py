"""Stochastic-rounding cast kernels with internal randomness, for ``refarith certify --sr-samples N``.

Each kernel takes a binary32 array and returns codes of the spec's target, drawing its random bits inside (a
numpy Generator).  ``correct`` is right; the four others carry a classic fault and must fail the statistical
certification (from the repository root)::

    refarith certify docs.examples.sr_kernels:correct --sr-samples 10000 \
        --spec 'cast(binary32->ocp_e4m3,rounding=sr,k=8)'                  # PASS, exit 0
    refarith certify docs.examples.sr_kernels:rounds_down --sr-samples 10000 \
        --spec 'cast(binary32->ocp_e4m3,rounding=sr,k=8)'                  # FAIL, exit 1

``make(name, dst, k, seed)`` builds one of them for another target, k or seed.  ``with_bits`` is the same cast
taking its random bits as an operand, certified bit-exactly (and named by ``identify``)::

    refarith certify docs.examples.sr_kernels:with_bits --spec 'cast(binary32->ocp_e4m3,rounding=sr,k=8)'
    refarith identify docs.examples.sr_kernels:with_bits --spec 'cast(binary32->ocp_e4m3,rounding=sr,k=8)'
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from refarith import fast
from refarith.formats import get_format


def _sr(x: np.ndarray, dst: str, k: int, r: np.ndarray) -> np.ndarray:
    return fast.encode(x, dst, rounding="sr", rand=r, rand_bits=k)


def make(name: str, dst: str = "ocp_e4m3", k: int = 8, seed: int = 2026) -> Callable[[np.ndarray], np.ndarray]:
    """A kernel ``fn(x) -> codes`` of ``cast(binary32->dst,rounding=sr,k=k)`` with its own Generator(seed).

    * ``correct``: k fresh uniform random bits per element, refarith's SR cast with them.
    * ``rounds_down``: the random word masked to its low 4 bits (a mask bug): rounds up only when the fraction
      lies within 16/2^k of the upper neighbour, so it nearly always rounds down.
    * ``drops_carry``: correct, except that rounding up from a significand of all ones keeps the exponent (the
      carry into the exponent is lost) and returns the bottom of the lower binade.
    * ``fast_biased``: a "fast" variant drawing only 4 random bits and comparing them with the top 4 bits of the
      fraction: probability floor(frac * 16) / 16, biased by up to 1/16 ulp against the spec's k bits.
    * ``returns_zero``: +0 for every input (a kernel that silently fails).
    """
    rng = np.random.default_rng(seed)
    fmt = get_format(dst)
    full = (1 << k) - 1

    def draw(n: int) -> np.ndarray:
        return rng.integers(0, full, size=n, dtype=np.uint64, endpoint=True)

    def correct(x: np.ndarray) -> np.ndarray:
        return _sr(x, dst, k, draw(x.size))

    def rounds_down(x: np.ndarray) -> np.ndarray:
        return _sr(x, dst, k, draw(x.size) & np.uint64(0xF))

    def drops_carry(x: np.ndarray) -> np.ndarray:
        y = _sr(x, dst, k, draw(x.size)).astype(np.int64)
        lo = fast.encode(x, dst, rounding="rtz", overflow="saturate").astype(np.int64)
        mm = (1 << fmt.mbits) - 1
        carried = (y == lo + 1) & ((lo & mm) == mm)
        return np.where(carried, lo & ~mm, y).astype(np.uint8 if fmt.nbits <= 8 else np.uint16)

    def fast_biased(x: np.ndarray) -> np.ndarray:
        # 4 random bits in the top of the k-bit word: t + r >= 2^k then holds for floor(frac * 16) of the 16
        # words, the 4-bit rule on the top 4 bits of the fraction
        shift = np.uint64(max(0, k - 4))
        return _sr(x, dst, k, (draw(x.size) >> shift) << shift)

    def returns_zero(x: np.ndarray) -> np.ndarray:
        return np.zeros(x.size, dtype=np.uint8 if fmt.nbits <= 8 else np.uint16)

    fns = {"correct": correct, "rounds_down": rounds_down, "drops_carry": drops_carry, "fast_biased": fast_biased,
           "returns_zero": returns_zero}
    if name not in fns:
        raise ValueError(f"unknown kernel {name!r}; one of {', '.join(fns)}")
    return fns[name]


correct = make("correct")
rounds_down = make("rounds_down")
drops_carry = make("drops_carry")
fast_biased = make("fast_biased")
returns_zero = make("returns_zero")


def with_bits(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """binary32 -> OCP E4M3 with stochastic rounding (variant a) on the caller's 8 random bits per element."""
    return _sr(x, "ocp_e4m3", 8, r)


def make_block(name: str, spec: str, seed: int = 2026) -> Callable[..., tuple]:
    """A kernel ``fn(*operands) -> results`` of the stochastic spec ``spec`` with its own Generator(seed), for
    ``refarith certify --sr-samples N``.  Block specs (``mx_quantize``, ``nvfp4_quantize``, ``bfp_quantize``,
    ``int_quantize`` with ``rounding=sr``): one float32 array of one block (NVFP4: one small tensor, int_quantize:
    one group) per row -> the deterministic op's (scales, element codes).  Arithmetic (``add``, ``sub``, ``mul``,
    ``div``, ``fma``): the operand code arrays -> the result codes.  ``fdot``: x and y, (n, 8) code arrays -> the
    accumulator codes.  The five kernels of :func:`make`:

    * ``correct``: k fresh uniform random bits per rounding, refarith's numpy kernel with them;
    * ``rounds_down``: the random word masked to its low 4 bits;
    * ``drops_carry``: a result rounded up from a significand of all ones keeps its exponent (floating-point
      results only), the bottom of the lower binade;
    * ``fast_biased``: only the top 4 of the k random bits drawn;
    * ``returns_zero``: the right scales, every element code 0 (+0).
    """
    from refarith.certify.statistical_blocks import BLOCK_OPS
    from refarith.golden.drivers import get_driver
    from refarith.spec import parse_spec

    sp = parse_spec(spec)
    d = get_driver(sp)
    k = int(sp.param["k"])
    width = d.inputs(sp)[-1].width
    efmt = d.outputs(sp)[-1].fmt
    rng = np.random.default_rng(seed)

    def run(ins: tuple, r: np.ndarray) -> tuple:
        if sp.op in BLOCK_OPS:
            ins = (np.ascontiguousarray(ins[0], dtype=np.float32).view(np.uint32),)
        return d.fast(sp, (*ins, r), "numpy")

    def draw(ins: tuple) -> np.ndarray:
        x = np.asarray(ins[0])
        shape = x.shape if sp.op in BLOCK_OPS or (width == 1 and x.ndim == 1) else (x.shape[0], width)
        return rng.integers(0, 1 << k, size=shape, dtype=np.int64)

    def correct(*ins) -> tuple:
        return run(ins, draw(ins))

    def rounds_down(*ins) -> tuple:
        return run(ins, draw(ins) & 0xF)

    def drops_carry(*ins) -> tuple:
        if getattr(efmt, "mbits", None) is None:
            raise ValueError(f"drops_carry needs floating-point elements, not {efmt.name}")
        *head, y = run(ins, draw(ins))
        lo = np.asarray(run(ins, np.zeros(draw(ins).shape, dtype=np.int64))[-1]).astype(np.int64)
        y = np.asarray(y).astype(np.int64)
        mm = (1 << efmt.mbits) - 1
        carried = (y == lo + 1) & ((lo & mm) == mm)
        return (*head, np.where(carried, lo & ~mm, y))

    def fast_biased(*ins) -> tuple:
        shift = max(0, k - 4)
        return run(ins, (draw(ins) >> shift) << shift)

    def returns_zero(*ins) -> tuple:
        *head, y = run(ins, draw(ins))
        return (*head, np.zeros(np.shape(y), dtype=np.int64))

    fns = {"correct": correct, "rounds_down": rounds_down, "drops_carry": drops_carry, "fast_biased": fast_biased,
           "returns_zero": returns_zero}
    if name not in fns:
        raise ValueError(f"unknown kernel {name!r}; one of {', '.join(fns)}")
    return fns[name]


MXFP4_SPEC = "mx_quantize(ocp_e2m1,block=8,rounding=sr,k=8)"
"""The spec of the ``mxfp4_*`` kernels: MXFP4 blocks of 8, variant a (add k random bits, truncate)."""
NVFP4_SPEC = "nvfp4_quantize(levels=1,rounding=sr,sr=te_e2m1_8,k=8)"
"""The spec of the ``nvfp4_*`` kernels: NVFP4 with one scale level and Transformer Engine's 8-bit E2M1 rule."""

mxfp4_correct = make_block("correct", MXFP4_SPEC)
mxfp4_rounds_down = make_block("rounds_down", MXFP4_SPEC)
mxfp4_drops_carry = make_block("drops_carry", MXFP4_SPEC)
mxfp4_fast_biased = make_block("fast_biased", MXFP4_SPEC)
mxfp4_returns_zero = make_block("returns_zero", MXFP4_SPEC)
nvfp4_correct = make_block("correct", NVFP4_SPEC)
nvfp4_rounds_down = make_block("rounds_down", NVFP4_SPEC)
nvfp4_drops_carry = make_block("drops_carry", NVFP4_SPEC)
nvfp4_fast_biased = make_block("fast_biased", NVFP4_SPEC)
nvfp4_returns_zero = make_block("returns_zero", NVFP4_SPEC)

BFP_SPEC = "bfp_quantize(int8_sym,block=8,rounding=sr,k=8)"
"""The spec of the ``bfp_*`` kernels (integer elements: no carry into an exponent, so no ``drops_carry``)."""
bfp_correct = make_block("correct", BFP_SPEC)
bfp_rounds_down = make_block("rounds_down", BFP_SPEC)
bfp_fast_biased = make_block("fast_biased", BFP_SPEC)
bfp_returns_zero = make_block("returns_zero", BFP_SPEC)

INTQ_SPEC = "int_quantize(int4,scheme=asymmetric,rounding=sr,sr=c,k=8)"
"""The spec of the ``intq_*`` kernels: per-tensor asymmetric int4, variant c (integer codes: no ``drops_carry``)."""
intq_correct = make_block("correct", INTQ_SPEC)
intq_rounds_down = make_block("rounds_down", INTQ_SPEC)
intq_fast_biased = make_block("fast_biased", INTQ_SPEC)
intq_returns_zero = make_block("returns_zero", INTQ_SPEC)

ADD_SPEC = "add(ocp_e4m3,rounding=sr,k=8)"
"""The spec of the ``add_*`` kernels: ``fn(a, b)`` on E4M3 code arrays."""
add_correct = make_block("correct", ADD_SPEC)
add_rounds_down = make_block("rounds_down", ADD_SPEC)
add_drops_carry = make_block("drops_carry", ADD_SPEC)
add_fast_biased = make_block("fast_biased", ADD_SPEC)
add_returns_zero = make_block("returns_zero", ADD_SPEC)

FDOT_SPEC = "fdot(ocp_e4m3->binary32,rounding=sr,sr=c,k=8)"
"""The spec of the ``fdot_*`` kernels: ``fn(x, y)`` on (n, 8) E4M3 code arrays, one random integer per addition."""
fdot_correct = make_block("correct", FDOT_SPEC)
fdot_rounds_down = make_block("rounds_down", FDOT_SPEC)
fdot_drops_carry = make_block("drops_carry", FDOT_SPEC)
fdot_fast_biased = make_block("fast_biased", FDOT_SPEC)
fdot_returns_zero = make_block("returns_zero", FDOT_SPEC)
