"""Theorem registry and runner.

A theorem is a statement, a check that builds its Z3 encoding (or an exhaustive
enumeration, when the theorem says so), the expected verdict and a time budget.
A check returns an :class:`Outcome`: ``proved``, or one concrete
``counterexample`` (bits and values a human can replay) that the check has
re-run through the exact model (``confirmed``).  ``refarith prove`` and
``pytest -m proof`` both run this registry.
"""

from __future__ import annotations

import fnmatch
import importlib
import multiprocessing as mp
import pkgutil
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

PROVED = "proved"
COUNTEREXAMPLE = "counterexample"
VERDICTS = (PROVED, COUNTEREXAMPLE, "unknown", "timeout", "error")


@dataclass
class Outcome:
    verdict: str
    counterexample: dict | None = None
    confirmed: bool | None = None  # counterexample re-checked by the exact model
    detail: str = ""
    method: str = "z3"  # "z3" or "enumeration"


@dataclass(frozen=True)
class Theorem:
    name: str
    statement: str
    check: Callable[[], Outcome]
    expect: str = PROVED
    budget: float = 60.0
    tags: tuple[str, ...] = ()


@dataclass
class Result:
    name: str
    statement: str
    expect: str
    verdict: str
    seconds: float
    ok: bool
    counterexample: dict | None = None
    confirmed: bool | None = None
    detail: str = ""
    method: str = "z3"

    def to_json(self) -> dict:
        return asdict(self)


_REGISTRY: dict[str, Theorem] = {}
_LOADED = False


def register(th: Theorem) -> Theorem:
    if th.name in _REGISTRY and _REGISTRY[th.name] is not th:
        raise ValueError(f"theorem {th.name!r} registered twice")
    if th.expect not in (PROVED, COUNTEREXAMPLE):
        raise ValueError(f"theorem {th.name!r}: expected verdict must be proved or counterexample")
    _REGISTRY[th.name] = th
    return th


def theorem(name: str, statement: str, expect: str = PROVED, budget: float = 60.0, tags: Iterable[str] = ()):
    """Decorator: register a zero-argument check function as a theorem."""

    def deco(fn: Callable[[], Outcome]) -> Callable[[], Outcome]:
        register(Theorem(name, statement, fn, expect, budget, tuple(tags)))
        return fn

    return deco


def load_all() -> dict[str, Theorem]:
    """Import every module under refarith.smt.theorems (each registers its theorems)."""
    global _LOADED
    if not _LOADED:
        from refarith.smt import theorems

        for mod in sorted(pkgutil.iter_modules(theorems.__path__), key=lambda m: m.name):
            importlib.import_module(f"refarith.smt.theorems.{mod.name}")
        _LOADED = True
    return dict(_REGISTRY)


def select(pattern: str | None = None) -> list[Theorem]:
    """Theorems whose name matches a glob (or contains the substring) — all when pattern is None."""
    reg = load_all()
    if not pattern:
        return list(reg.values())
    pats = [p for p in pattern.split(",") if p]
    return [t for n, t in reg.items() if any(fnmatch.fnmatchcase(n, p) or p in n for p in pats)]


def run_one(th: Theorem) -> Result:
    """Run one theorem in this process."""
    t0 = time.perf_counter()
    try:
        out = th.check()
    except Exception as e:  # a crashing check is an error verdict, never a pass
        out = Outcome("error", detail=f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")
    dt = time.perf_counter() - t0
    ok = out.verdict == th.expect
    if out.verdict == COUNTEREXAMPLE and out.confirmed is False:
        ok = False  # a counterexample the exact model does not confirm is a bug in the encoding
    return Result(th.name, th.statement, th.expect, out.verdict, dt, ok, out.counterexample, out.confirmed,
                  out.detail, out.method)


def _worker(conn) -> None:
    """A long-lived worker: receive theorem names, send back Results, stop on None."""
    reg = load_all()
    while True:
        try:
            name = conn.recv()
        except EOFError:
            return
        if name is None:
            return
        conn.send(run_one(reg[name]))


def run(theorems: list[Theorem], jobs: int = 1, timeout: float | None = None,
        progress: Callable[[Result], None] | None = None) -> list[Result]:
    """Run theorems in ``jobs`` parallel processes; each is killed after min(budget, timeout) seconds.

    ``jobs > 1``: a pool of forked, long-lived worker processes takes the theorems one at a time (no fork per
    theorem); a worker that exceeds a theorem's limit is killed (verdict ``timeout``) and replaced, one that dies
    gives the verdict ``error``.  ``progress`` is called with each Result as it completes.
    """
    from multiprocessing.connection import wait

    results: dict[str, Result] = {}
    if jobs <= 1:
        for th in theorems:
            r = run_one(th)
            results[th.name] = r
            if progress:
                progress(r)
        return [results[t.name] for t in theorems]
    ctx = mp.get_context("fork")
    pending = list(theorems)

    def spawn():
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(child,), daemon=True)
        p.start()
        child.close()
        return {"proc": p, "conn": parent, "job": None, "t0": 0.0}

    workers = [spawn() for _ in range(min(jobs, len(theorems)))]

    def finish(r: Result) -> None:
        results[r.name] = r
        if progress:
            progress(r)

    try:
        while pending or any(w["job"] is not None for w in workers):
            for w in workers:
                if w["job"] is None and pending:
                    th = pending.pop(0)
                    w["job"], w["t0"] = th, time.perf_counter()
                    w["conn"].send(th.name)
            busy = [w for w in workers if w["job"] is not None]
            ready = wait([w["conn"] for w in busy], timeout=0.05)
            for k, w in enumerate(workers):
                th = w["job"]
                if th is None:
                    continue
                elapsed = time.perf_counter() - w["t0"]
                limit = th.budget if timeout is None else min(th.budget, timeout)
                if w["conn"] in ready:
                    try:
                        r = w["conn"].recv()
                    except (EOFError, OSError):
                        r = Result(th.name, th.statement, th.expect, "error", elapsed, False,
                                   detail=f"worker exited with status {w['proc'].exitcode}")
                        w["proc"].join(1)
                        workers[k] = spawn()
                    else:
                        w["job"] = None
                    finish(r)
                elif not w["proc"].is_alive() or elapsed > limit:
                    timed_out = w["proc"].is_alive()
                    w["proc"].kill()
                    w["proc"].join()
                    r = (Result(th.name, th.statement, th.expect, "timeout", elapsed, False,
                                detail=f"exceeded {limit:.0f} s") if timed_out else
                         Result(th.name, th.statement, th.expect, "error", elapsed, False,
                                detail=f"worker exited with status {w['proc'].exitcode}"))
                    finish(r)
                    workers[k] = spawn() if (pending or any(x["job"] for x in workers if x is not w)) else \
                        {"proc": w["proc"], "conn": w["conn"], "job": None, "t0": 0.0}
    finally:
        for w in workers:
            try:
                w["conn"].send(None)
            except (OSError, ValueError):
                pass
        for w in workers:
            w["proc"].join(2)
            if w["proc"].is_alive():
                w["proc"].kill()
                w["proc"].join()
    return [results[t.name] for t in theorems]


@dataclass
class Z3Claim:
    """Helper bundle for Z3-backed checks."""

    variables: dict = field(default_factory=dict)


def prove(claim, variables: dict, timeout_s: float = 60.0,
          confirm: Callable[[dict[str, int]], tuple[dict, bool]] | None = None,
          observe: dict | None = None) -> Outcome:
    """Prove ``claim`` (a z3 BoolRef over bit-vector ``variables``) or return one concrete counterexample.

    ``confirm`` maps the counterexample's integer assignment to (a human-readable
    dict of bits and values, whether the exact model confirms the claim fails).
    ``observe`` names further terms (e.g. the kernel's output) whose values in the
    counterexample are added to the assignment passed to ``confirm``.
    """
    import z3

    s = z3.Solver()
    s.set("timeout", int(timeout_s * 1000))
    s.add(z3.Not(claim))
    r = s.check()
    if r == z3.unsat:
        return Outcome(PROVED)
    if r == z3.unknown:
        return Outcome("unknown", detail=str(s.reason_unknown()))
    m = s.model()
    assignment = {}
    for name, v in {**variables, **(observe or {})}.items():
        val = m.eval(v, model_completion=True)
        if z3.is_bool(val):
            assignment[name] = int(z3.is_true(val))
            continue
        assignment[name] = val.as_long() if hasattr(val, "as_long") else int(str(val))
    if confirm is None:
        return Outcome(COUNTEREXAMPLE, {k: hex(v) for k, v in assignment.items()}, None)
    shown, confirmed = confirm(assignment)
    return Outcome(COUNTEREXAMPLE, shown, confirmed)
