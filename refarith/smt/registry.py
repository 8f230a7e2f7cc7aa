"""Theorem registry and runner.

A theorem is a statement, a check that builds its Z3 encoding (or an exhaustive
enumeration, when the theorem says so), the expected verdict and a time budget.
A check returns an :class:`Outcome`: ``proved``, or one concrete
``counterexample`` (bits and values a human can replay) that the check has
re-run through the exact model (``confirmed``).  ``refarith prove`` and
``pytest -m proof`` both run this registry.

Every solver query of a check goes through :func:`prove` or :func:`satisfiable`, which ask the active solvers
(:func:`use_solvers`: Z3, a second solver, or both; see :mod:`refarith.smt.solvers`).  With both, every query is
answered by each solver, the answers must agree, and a counterexample from either solver is replayed through the
same ``confirm`` callback (the exact model).
"""

from __future__ import annotations

import fnmatch
import importlib
import multiprocessing as mp
import pkgutil
import signal
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

PROVED = "proved"
COUNTEREXAMPLE = "counterexample"
DISAGREEMENT = "disagreement"  # two solvers answered the same query differently
UNSUPPORTED = "unsupported"  # a selected solver lacks a theory the query uses
VERDICTS = (PROVED, COUNTEREXAMPLE, "unknown", "timeout", "error", DISAGREEMENT, UNSUPPORTED)


@dataclass
class Outcome:
    verdict: str
    counterexample: dict | None = None
    confirmed: bool | None = None  # counterexample re-checked by the exact model
    detail: str = ""
    method: str = "z3"  # "z3" (an SMT query; the solvers are in the Result) or "enumeration"
    by_solver: dict | None = None  # per solver: its verdict and, for a counterexample, its model and re-check


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
    solvers: list[str] = field(default_factory=list)  # the solvers that answered, or ["enumeration"]
    solver_seconds: dict[str, float] = field(default_factory=dict)  # solver time per solver, all queries
    agreed: bool | None = None  # with two solvers: every query answered alike (None with one solver)
    by_solver: dict | None = None
    cpu_seconds: float = 0.0  # CPU time of the process running the check (Z3 runs in it), robust to a loaded machine

    def to_json(self) -> dict:
        return asdict(self)


class SolverDisagreement(Exception):
    """Two solvers answered one query differently (raised by :func:`satisfiable`)."""


# the active solvers: a tuple of roles, "z3" | "bitwuzla" | "cvc5" | "second" (resolved per query), and the
# second solver's choice ("auto": Bitwuzla for bit-vector/FloatingPoint queries, cvc5 with integer or real arithmetic)
_CONFIG: dict = {"roles": ("z3",), "second": "auto"}
# per theorem run: one entry per query, {solver: Answer}
_TRACE: list[dict] = []


def use_solvers(choice: str = "z3", second: str = "auto") -> tuple:
    """Select the solvers every later query in this process uses: ``z3``, ``bitwuzla``, ``cvc5``, or ``both`` (Z3
    and the second solver ``second``); returns the previous setting, for :func:`restore_solvers`."""
    from refarith.smt.solvers import CHOICES, SECOND_SOLVERS

    if choice not in CHOICES:
        raise ValueError(f"unknown solver {choice!r}; choose from {', '.join(CHOICES)}")
    if second not in SECOND_SOLVERS + ("auto",):
        raise ValueError(f"unknown second solver {second!r}; choose from auto, {', '.join(SECOND_SOLVERS)}")
    prev = (_CONFIG["roles"], _CONFIG["second"])
    _CONFIG["roles"] = ("z3", "second") if choice == "both" else (choice,)
    _CONFIG["second"] = second
    return prev


def restore_solvers(prev: tuple) -> None:
    """Undo :func:`use_solvers`."""
    _CONFIG["roles"], _CONFIG["second"] = prev


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
    t0, c0 = time.perf_counter(), time.process_time()
    _TRACE.clear()
    try:
        out = th.check()
    except SolverDisagreement as e:
        out = Outcome(DISAGREEMENT, detail=str(e))
    except Exception as e:  # a crashing check is an error verdict, never a pass
        out = Outcome("error", detail=f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    ok = out.verdict == th.expect
    if out.verdict == COUNTEREXAMPLE and out.confirmed is False:
        ok = False  # a counterexample the exact model does not confirm is a bug in the encoding
    names: list[str] = []
    seconds: dict[str, float] = {}
    agreed: bool | None = None
    for q in _TRACE:
        for a in q.values():
            if a.solver not in names:
                names.append(a.solver)
            seconds[a.solver] = round(seconds.get(a.solver, 0.0) + a.seconds, 4)
        if len(q) > 1 or len(_CONFIG["roles"]) > 1:
            same = len(q) > 1 and len({a.status for a in q.values()}) == 1 and \
                next(iter(q.values())).status in ("sat", "unsat")
            agreed = same if agreed is None else agreed and same
    if out.method == "enumeration" and not _TRACE:
        names = ["enumeration"]
    if agreed is False and ok:
        ok = False  # a second solver that did not confirm a verdict leaves the theorem unchecked
        out.detail = (out.detail + "; " if out.detail else "") + "solvers did not agree on every query"
    _TRACE.clear()
    return Result(th.name, th.statement, th.expect, out.verdict, dt, ok, out.counterexample, out.confirmed,
                  out.detail, out.method, names, seconds, agreed, out.by_solver, round(cpu, 4))


def _worker(conn) -> None:
    """A long-lived worker: receive (theorem name, solver setting), send back Results, stop on None.

    Ctrl-C is the parent's business: it kills the workers.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reg = load_all()
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        name, (_CONFIG["roles"], _CONFIG["second"]) = job
        conn.send(run_one(reg[name]))


def run(theorems: list[Theorem], jobs: int = 1, timeout: float | None = None,
        progress: Callable[[Result], None] | None = None, solvers: str | None = None,
        second: str = "auto") -> list[Result]:
    """Run theorems in ``jobs`` parallel processes; each is killed after min(budget, timeout) seconds per solver.

    ``solvers`` (``z3``, ``bitwuzla``, ``cvc5`` or ``both``; None keeps the current :func:`use_solvers` setting)
    answers every query; with ``both`` a theorem may take its budget once per solver.  ``jobs > 1``: a pool of
    forked, long-lived worker processes takes the theorems one at a time (no fork per theorem), those with the
    largest budget first (longest first, so no long theorem starts last while the other workers idle); a worker that
    exceeds a theorem's limit is killed (verdict ``timeout``) and replaced, one that dies gives the verdict
    ``error``.  ``progress`` is called with each Result as it completes; the returned list is in the given order.
    """
    from multiprocessing.connection import wait

    prev = use_solvers(solvers, second) if solvers is not None else None
    try:
        return _run(theorems, jobs, timeout, progress, wait)
    finally:
        if prev is not None:
            restore_solvers(prev)


def _run(theorems, jobs, timeout, progress, wait) -> list[Result]:
    results: dict[str, Result] = {}
    setting = (_CONFIG["roles"], _CONFIG["second"])
    per_solver = len(setting[0])
    if jobs <= 1:
        for th in theorems:
            r = run_one(th)
            results[th.name] = r
            if progress:
                progress(r)
        return [results[t.name] for t in theorems]
    ctx = mp.get_context("fork")
    pending = sorted(theorems, key=lambda t: -t.budget)  # stable: registry order within one budget

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
                    w["conn"].send((th.name, setting))
            busy = [w for w in workers if w["job"] is not None]
            ready = wait([w["conn"] for w in busy], timeout=0.05)
            for k, w in enumerate(workers):
                th = w["job"]
                if th is None:
                    continue
                elapsed = time.perf_counter() - w["t0"]
                limit = (th.budget if timeout is None else min(th.budget, timeout)) * per_solver
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
    except BaseException:  # Ctrl-C or a crash of the runner: no worker outlives it
        for w in workers:
            w["proc"].kill()
        raise
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


def _ask(assertions: list, timeout_s: float, terms: dict | None = None) -> list[tuple]:
    """Every active solver on one query: [(Answer, values of ``terms`` in its model or None)], recorded in the trace.

    Z3 reads the terms as built; a second solver reads the standardized SMT-LIB2 text, and its model's values of
    ``terms`` are computed by evaluating them on its values of the query's constants.
    """
    from refarith.smt import solvers as sv

    terms = terms or {}
    out = []
    query = None
    for role in _CONFIG["roles"]:
        if role == "z3":
            ans, m = sv.check_z3(assertions, timeout_s)
            vals = None
            if m is not None:
                vals = {n: sv._value(m.eval(t, model_completion=True)) for n, t in terms.items()}
        else:
            if query is None:
                query = sv.standardize(list(assertions))
            name = sv.second_for(query.theories, _CONFIG["second"]) if role == "second" else role
            if not sv.installed(name):
                raise RuntimeError(f"solver {name} is not installed (pip install 'refarith[solvers]')")
            ans = sv.check_second(name, query, timeout_s)
            vals = None
            if ans.status == sv.SAT:
                vals = sv.evaluate(terms, query.constants, ans.model or {})
        out.append((ans, vals))
    _TRACE.append({a.solver: a for a, _ in out})
    return out


def satisfiable(*constraints, timeout_s: float = 60.0) -> bool:
    """Whether the conjunction of ``constraints`` (z3 BoolRefs) has a model, by every active solver.

    Raises :class:`SolverDisagreement` when the solvers answer differently, RuntimeError when one cannot decide.
    """
    answers = _ask(list(constraints), timeout_s)
    status = {a.solver: a.status for a, _ in answers}
    if len(set(status.values())) > 1:
        raise SolverDisagreement("; ".join(f"{k}: {v}" for k, v in status.items()))
    (st,) = set(status.values())
    if st not in ("sat", "unsat"):
        raise RuntimeError("; ".join(f"{a.solver}: {a.status} {a.detail}".strip() for a, _ in answers))
    return st == "sat"


def _shown(assignment: dict) -> dict:
    return {k: hex(v) if isinstance(v, int) else str(v) for k, v in assignment.items()}


def prove(claim, variables: dict, timeout_s: float = 60.0,
          confirm: Callable[[dict[str, int]], tuple[dict, bool]] | None = None,
          observe: dict | None = None) -> Outcome:
    """Prove ``claim`` (a z3 BoolRef over ``variables``: bit-vectors, Booleans, integers or reals) or return one
    concrete counterexample, asking every active solver (:func:`use_solvers`), each within ``timeout_s``.

    ``confirm`` maps the counterexample's assignment (integers; reals as Fractions) to (a human-readable dict of
    bits and values, whether the exact model confirms the claim fails).  ``observe`` names further terms (e.g. the
    kernel's output) whose values in the counterexample are added to the assignment passed to ``confirm``.  With
    two solvers both must answer alike; each one's counterexample goes through ``confirm``, the Outcome shows the
    first and ``by_solver`` every one.  Different answers give the verdict ``disagreement``, showing both.
    """
    import z3

    answers = _ask([z3.Not(claim)], timeout_s, {**variables, **(observe or {})})
    by: dict[str, dict] = {}
    for ans, vals in answers:
        entry: dict = {"verdict": {"unsat": PROVED, "sat": COUNTEREXAMPLE}.get(ans.status, ans.status),
                       "seconds": round(ans.seconds, 4)}
        if ans.detail:
            entry["detail"] = ans.detail
        if vals is not None:
            if confirm is None:
                entry["counterexample"], entry["confirmed"] = _shown(vals), None
            else:
                entry["counterexample"], entry["confirmed"] = confirm(vals)
        by[ans.solver] = entry
    verdicts = {e["verdict"] for e in by.values()}
    many = len(by) > 1
    summary = "; ".join(f"{k}: {e['verdict']}" + (f" ({e['detail']})" if e.get("detail") else "") +
                        (f", counterexample {e['counterexample']} (exact model confirms: {e['confirmed']})"
                         if "counterexample" in e else "") for k, e in by.items())
    if verdicts == {PROVED}:
        return Outcome(PROVED, by_solver=by if many else None)
    if verdicts == {COUNTEREXAMPLE}:
        first = next(iter(by.values()))
        conf = [e["confirmed"] for e in by.values()]
        confirmed = None if all(c is None for c in conf) else all(c is True for c in conf)
        return Outcome(COUNTEREXAMPLE, first["counterexample"], confirmed, by_solver=by if many else None)
    if {PROVED, COUNTEREXAMPLE} <= verdicts:
        return Outcome(DISAGREEMENT, detail=summary, by_solver=by)
    for v in ("error", UNSUPPORTED, "unknown"):
        if v in verdicts:
            return Outcome(v, detail=summary if many else next(e.get("detail", "") for e in by.values()),
                           by_solver=by if many else None)
    return Outcome("error", detail=summary, by_solver=by)
