"""Vector driver of ``scaled_mm`` (unscaled specs): A (2 x 16 codes) and B (16 x 2 codes) -> D (2 x 2 codes).

Boundary vectors: all-zero blocks, exact cancellation (x, -x pairs), accumulator overflow (the input format's
largest products), one NaN or infinity, subnormal products, signed zeros; random vectors draw finite codes with
a narrowed exponent range in half of them so that rounding and cancellation in the accumulator happen.
"""

from __future__ import annotations

import random

import numpy as np

from refarith.errors import RefarithError, SpecError
from refarith.exact import gemm as _gemm
from refarith.formats import get_format
from refarith.golden.drivers import Driver, Operand, register_driver
from refarith.spec import Spec

M, K, N = 2, 16, 2


def _check(spec: Spec) -> None:
    if spec.param["scale"] != "none":
        raise SpecError(f"{spec}: golden vectors of scaled_mm cover scale=none only")


def dims(spec: Spec) -> tuple[int, int, int]:
    """(M, K, N) of one golden vector's multiply."""
    return M, K, N


def scale_operands(spec: Spec) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """(name, format, shape) of the scale operands after A and B, in column order."""
    return ()


def _inputs(spec: Spec) -> tuple[Operand, ...]:
    _check(spec)
    m, k, n = dims(spec)
    ops = [Operand("a", spec.fmt(0), m * k), Operand("b", spec.fmt(len(spec.formats) - 2), k * n)]
    for name, fmt, shape in scale_operands(spec):
        ops.append(Operand(name, get_format(fmt), int(np.prod(shape)) if shape else 1))
    return tuple(ops)


def unpack(spec: Spec, operands: tuple[np.ndarray, ...], v: int) -> tuple:
    """Vector v of grouped operand arrays as (A, B, scale_a, scale_b, tensor_scale_a, tensor_scale_b): code
    matrices, scale arrays of their shapes (an int for a scalar), None where the spec takes no scale."""
    m, k, n = dims(spec)
    a = np.asarray(operands[0])[v].reshape(m, k)
    b = np.asarray(operands[1])[v].reshape(k, n)
    named = {}
    for (name, _, shape), col in zip(scale_operands(spec), operands[2:]):
        x = np.asarray(col)[v]
        named[name] = int(np.asarray(x).reshape(-1)[0]) if not shape else x.reshape(shape)
    return (a, b, *(named.get(x) for x in ("scale_a", "scale_b", "tensor_scale_a", "tensor_scale_b")))


def _exact(spec: Spec, codes: tuple[int, ...]) -> tuple[int, ...] | None:
    a = [list(codes[i * K:(i + 1) * K]) for i in range(M)]
    b = [list(codes[M * K + r * N:M * K + (r + 1) * N]) for r in range(K)]
    try:
        d = _gemm.scaled_mm(spec, a, b)
    except SpecError:
        raise
    except RefarithError:
        return None
    return tuple(c for row in d for c in row)


def _fast(spec: Spec, inputs: tuple, backend: str) -> tuple:
    from refarith.fast import gemm

    a, b = np.asarray(inputs[0]), np.asarray(inputs[1])
    out = np.stack([gemm.scaled_mm(spec, a[v].reshape(M, K), b[v].reshape(K, N)).reshape(M * N)
                    for v in range(a.shape[0])]) if a.shape[0] else np.zeros((0, M * N), np.int64)
    return (out,)


def _finite(fmt) -> list[int]:
    return [c for c in range(fmt.ncodes) if fmt.is_finite_code(c)]


def _boundary(spec: Spec) -> list[tuple[int, ...]]:
    fa, fb = spec.fmt(0), spec.fmt(len(spec.formats) - 2)
    rng = random.Random(16)
    out = []
    za, zb = [0] * (M * K), [0] * (K * N)
    out.append(tuple(za + zb))
    for f, g in ((fa, fb),):
        big_a, big_b = f.max_code, g.max_code
        out.append(tuple([big_a] * (M * K) + [big_b] * (K * N)))  # accumulator overflow for narrow accumulators
        sub_a, sub_b = 1, 1
        out.append(tuple([sub_a] * (M * K) + [sub_b] * (K * N)))  # subnormal products
        one_a = [c for c in _finite(f) if f.finite_value(c) == 1][0]
        one_b = [c for c in _finite(g) if g.finite_value(c) == 1][0]
        canc_a = [big_a if k % 2 == 0 else big_a for k in range(K)] * M
        canc_b = [(big_b if r % 2 == 0 else big_b | g.sign_mask) for r in range(K) for _ in range(N)]
        out.append(tuple(canc_a + canc_b))  # exact cancellation of the largest products
        mixed = [big_a, big_a, one_a, one_a] * (M * K // 4)
        mixed_b = [(big_b, big_b | g.sign_mask, one_b, one_b)[r % 4] for r in range(K) for _ in range(N)]
        out.append(tuple(mixed + mixed_b))  # cancellation with small terms in between
        for special in (f.nan_code, *(c for c in f.inf_codes if c is not None)):
            if special is None:
                continue
            a = [rng.choice(_finite(f)) for _ in range(M * K)]
            a[3] = special
            out.append(tuple(a + [rng.choice(_finite(g)) for _ in range(K * N)]))
        out.append(tuple([f.sign_mask] * (M * K) + [0] * (K * N)))  # -0 * +0 products: the sum is +0
    return out


def _random(spec: Spec, n: int, seed: int) -> list[tuple[int, ...]]:
    fa, fb = spec.fmt(0), spec.fmt(len(spec.formats) - 2)
    rng = random.Random(seed)
    ca, cb = _finite(fa), _finite(fb)
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            out.append(tuple([rng.choice(ca) for _ in range(M * K)] + [rng.choice(cb) for _ in range(K * N)]))
        else:
            ma, mb = rng.choice(ca), rng.choice(cb)
            a = [min(max((ma & ~fa.sign_mask) + rng.randint(-12, 12), 0), fa.max_code) ^ (rng.randrange(2) *
                 fa.sign_mask) for _ in range(M * K)]
            b = [min(max((mb & ~fb.sign_mask) + rng.randint(-12, 12), 0), fb.max_code) ^ (rng.randrange(2) *
                 fb.sign_mask) for _ in range(K * N)]
            out.append(tuple(a + b))
    return out


register_driver(Driver(
    "scaled_mm",
    inputs=_inputs,
    outputs=lambda s: (Operand("d", s.fmt(len(s.formats) - 1), M * N),),
    exact=_exact,
    boundary=_boundary,
    random=_random,
    random_count=256,
    fast=_fast,
    backends=("numpy",),
    doc="A (2x16) and B (16x2) codes -> D (2x2) codes",
))
