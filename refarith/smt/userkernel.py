"""Users prove their own bit-level kernels: equal to a cast spec, or satisfying a stated property, for all inputs.

A user kernel is a function ``kernel(ops, x)`` written against the public
:class:`refarith.fast.bitops.BitOps` interface (Python control flow on static data
only) that maps source bit patterns ``x`` (words) to destination codes, or to
``(codes, error_mask)`` when it also reports the inputs the spec rejects.  It is
traced once (:func:`refarith.fast.trace.trace`); the proof evaluates that graph on
Z3 words, and the same graph runs on numpy, torch and Triton
(:func:`refarith.fast.triton_backend.run_graph`), so the outcome's ``graph`` digest
names exactly the code that was proved.

* :func:`prove_cast_kernel`: for every source pattern, the kernel's code equals the
  spec's (refarith.smt.encode, itself tied to the exact model), and its error mask
  equals the spec's when it returns one (without one, inputs the spec rejects are
  not compared).  A counterexample is replayed through the exact model and through
  the kernel on numpy words.
* :func:`prove_property`: for every input, a user predicate ``prop(ops, x, *outputs)``
  (a mask) holds — e.g. "the output code is never NaN".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3

from refarith.errors import BadValueError, KernelError, SpecError
from refarith.exact.ops import decode
from refarith.exact.rounding import default_overflow
from refarith.fast.castkernel import required_width
from refarith.fast.trace import Graph, evaluate, trace
from refarith.formats import FloatFormat, IntFormat, get_format
from refarith.smt.bitops_z3 import Z3BitOps
from refarith.smt.castproofs import _show, exact_result
from refarith.smt.encode import cast_spec
from refarith.smt.registry import Outcome, prove
from refarith.spec import Spec, parse_spec
from refarith.targets import import_callable

UserKernel = Callable[..., Any]


def load_user_kernel(target: str) -> UserKernel:
    """``package.module:function`` -> the function (the working directory on the import path, as for
    ``python -m``); KernelError names what cannot be loaded."""
    return import_callable(target, "kernel")


def _cast_settings(spec: Spec | str) -> tuple[Spec, FloatFormat | IntFormat, FloatFormat, tuple[str, str, str, str]]:
    spec = parse_spec(spec)
    if spec.op != "cast":
        raise SpecError(f"a user kernel is proved against a cast spec, not {spec.op}")
    src, dst = (get_format(f) for f in spec.formats)
    p = dict(spec.params)
    if p.get("rounding") == "sr":
        raise SpecError("stochastic rounding kernels take a random operand: prove them with prove_property or the "
                        "library's sr theorems")
    if not isinstance(dst, FloatFormat):
        raise SpecError(f"the target of a provable cast must be a float format, not {dst.name}")
    st = (p.get("rounding", "rne"), p.get("overflow") or default_overflow(dst), p.get("nan", "error"),
          p.get("negative", "error"))
    return spec, src, dst, st


def kernel_graph(kernel: UserKernel, width: int, n_inputs: int = 1, name: str | None = None) -> Graph:
    """Trace a user kernel once; a kernel that branches on word values or misuses the interface is named."""
    label = name or f"{getattr(kernel, '__module__', '?')}:{getattr(kernel, '__qualname__', repr(kernel))}"
    try:
        return trace(lambda ops, *xs: kernel(ops, *xs), width, tuple(f"x{i}" for i in range(n_inputs)), label)
    except BadValueError as e:
        raise KernelError(f"kernel {label}: {e}") from None
    except Exception as e:
        raise KernelError(f"kernel {label} failed while being traced: {type(e).__name__}: {e}") from e


def prove_cast_kernel(kernel: UserKernel, spec: Spec | str, width: int | None = None,
                      timeout_s: float = 60.0) -> Outcome:
    """Prove ``kernel(ops, x)`` equal to the cast ``spec`` for every source pattern, or return one counterexample
    confirmed by the exact model.  ``width``: the word width (default: what refarith's own cast kernel needs)."""
    spec, src, dst, st = _cast_settings(spec)
    w = width if width is not None else required_width(src, dst)
    g = kernel_graph(kernel, w)
    if len(g.outputs) not in (1, 2):
        raise KernelError(f"kernel {g.name} returns {len(g.outputs)} values; expected codes or (codes, error)")
    ops = Z3BitOps(w)
    bits = z3.BitVec("x", src.nbits)
    outs = evaluate(g, ops, [ops.word(bits)])
    codes = outs[0]
    if not z3.is_bv(codes):
        raise KernelError(f"kernel {g.name}: its first output must be a word (the codes)")
    has_err = len(outs) == 2
    err = outs[1] if has_err else z3.BoolVal(False)
    if not z3.is_bool(err):
        raise KernelError(f"kernel {g.name}: its second output must be a mask (the error flag)")
    sp = cast_spec(bits, src, dst, *st)
    want = z3.ZeroExt(w - dst.nbits, sp.code)
    claim = z3.And(err == sp.error, z3.Or(sp.error, codes == want)) if has_err else z3.Or(sp.error, codes == want)

    def confirm(a: dict[str, int]) -> tuple[dict, bool]:
        x = a["x"]
        k = None if (has_err and a["ke"]) else a["k"]
        ex = exact_result(x, src, dst, *st)
        import numpy as np

        from refarith.fast.bitops import NumpyBitOps

        nops = NumpyBitOps(w)
        replay = evaluate(g, nops, [nops.word(np.array([x]))])
        rk = int(np.asarray(replay[0]).reshape(-1)[0])
        rerr = bool(np.asarray(replay[1]).reshape(-1)[0]) if has_err else False
        shown = {
            "spec": str(spec),
            "source_bits": f"{x:#0{2 + (src.nbits + 3) // 4}x}",
            "source_value": str(decode(x, src)),
            "kernel": "error" if k is None else (_show(k, dst) if k < dst.ncodes
                                                 else f"{k:#x} (not a {dst.nbits}-bit code)"),
            "kernel_on_numpy": "error" if rerr else (_show(rk, dst) if rk < dst.ncodes else f"{rk:#x}"),
            "exact_model": _show(ex, dst),
        }
        return shown, ex != k

    out = prove(claim, {"x": bits}, timeout_s, confirm, observe={"k": codes, "ke": err})
    out.detail = (out.detail + " " if out.detail else "") + f"graph {g.digest}"
    return out


def prove_property(kernel: UserKernel, prop: Callable[..., Any], input_bits: int | tuple[int, ...], width: int = 32,
                   timeout_s: float = 60.0, name: str | None = None) -> Outcome:
    """Prove ``prop(ops, *inputs, *outputs)`` (a mask) true for every input of ``input_bits`` bits each, where
    ``outputs = kernel(ops, *inputs)``; or return one counterexample (the inputs and the kernel's outputs)."""
    widths = (input_bits,) if isinstance(input_bits, int) else tuple(input_bits)
    for b in widths:
        if not 1 <= b <= width:
            raise BadValueError(f"input width {b} outside [1, {width}]")

    def both(ops, *xs):
        out = kernel(ops, *xs)
        outs = out if isinstance(out, tuple) else (out,)
        return (*outs, prop(ops, *xs, *outs))

    g = kernel_graph(both, width, len(widths), name)
    ops = Z3BitOps(width)
    xs = [z3.BitVec(f"x{i}", b) for i, b in enumerate(widths)]
    vals = evaluate(g, ops, [ops.word(x) for x in xs])
    ok = vals[-1]
    if isinstance(ok, bool):
        ok = z3.BoolVal(ok)
    if not z3.is_bool(ok):
        raise KernelError("the property must return a mask (a comparison), not a word")
    observe = {f"out{i}": v for i, v in enumerate(vals[:-1]) if z3.is_bv(v)}
    out = prove(ok, {f"x{i}": x for i, x in enumerate(xs)}, timeout_s, None, observe=observe)
    out.detail = (out.detail + " " if out.detail else "") + f"graph {g.digest}"
    return out


__all__ = ["kernel_graph", "load_user_kernel", "prove_cast_kernel", "prove_property"]
