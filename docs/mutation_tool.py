"""Mutant sampling and scoring over mutmut's work directory (``mutants/``), for docs/mutation.md.

    python docs/mutation_tool.py names refarith/fast/mx.py [--sample 200 --seed 1] [--only-numpy]
        prints the mutant names of one module (all, or a seeded random sample), one per line, for
        ``mutmut run $(...)``
    python docs/mutation_tool.py score refarith/fast/mx.py [--sample 200 --seed 1] [--only-numpy] [--show]
        prints killed / survived / timeout / no tests / not checked and the score killed / (killed + survived)
        over the same names; --show lists the survivors; --previous DIR fills in outcomes of an earlier run
    python docs/mutation_tool.py generate
        writes ``mutants/`` (the mutated copy and the .meta files of the [tool.mutmut] only_mutate modules) and
        nothing else: mutmut's own generation step (mutmut 3.8 internals), without its stats pass over the tests
    python docs/mutation_tool.py run refarith/exact/rounding.py --sample 200 --seed 1 \
            --tests tests/test_mut_rounding.py tests/test_exact_cast.py [--cpu-limit 120] [--redo]
        decides the same names without mutmut's stats pass: one warm process (pytest, the test modules and
        refarith imported once, inside ``mutants/``) forks a child per mutant that runs the given tests with
        ``-x`` under ``MUTANT_UNDER_TEST``; each outcome is written to the .meta file at once, so ``score``
        reads it and an interrupted run resumes (decided mutants are skipped unless --redo); the tests are
        first run once on the unmutated code and must pass there; --by-function: each mutant runs only the tests
        that may reach its function (those calling it, and every test that starts a process)

--only-numpy drops the mutants of functions whose name says they are torch-only (``torch`` in the mangled
function name), which a run with torch absent cannot reach; they are scored in a run with torch present.
mutmut's exit codes are read from ``mutants/<module>.meta`` (1 and 3 killed, 0 survived, 33 and 5 no tests,
24/-24/152/255/36 timeout; ``run`` adds -9 and -14: the child passed its CPU limit + 1 s or its wall limit).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import sys
import time
from pathlib import Path

KILLED = {1, 3}
SURVIVED = {0}
NO_TESTS = {5, 33}
TIMEOUT = {24, -24, 152, 255, 36, -9, -14}


def mutant_names(module: str, sample: int | None, seed: int, only_numpy: bool) -> list[str]:
    """The mutant names of ``module`` (a path like refarith/fast/mx.py), sorted, optionally a seeded sample."""
    meta = Path("mutants") / (module + ".meta")
    if not meta.exists():
        raise SystemExit(f"error: {meta} not found; generate the mutants first "
                         "(`python docs/mutation_tool.py generate` or `mutmut run`)")
    names = sorted(json.loads(meta.read_text())["exit_code_by_key"])
    if only_numpy:
        names = [n for n in names if "torch" not in n.rsplit("__mutmut_", 1)[0].lower()]
    if sample is not None and sample < len(names):
        names = sorted(random.Random(seed).sample(names, sample))
    return names


def score(module: str, names: list[str], previous: str | None = None) -> dict[str, object]:
    """Counts by outcome over ``names`` and the score killed / (killed + survived).

    ``previous``: a folder holding an earlier copy of the .meta file (same layout as ``mutants/``); a mutant not
    checked in the current run takes its earlier outcome (a mutant killed by fewer tests stays killed when
    tests are added, so an earlier full run plus a re-run of its survivors scores the enlarged suite).
    """
    codes = json.loads((Path("mutants") / (module + ".meta")).read_text())["exit_code_by_key"]
    if previous is not None:
        old = json.loads((Path(previous) / (module + ".meta")).read_text())["exit_code_by_key"]
        codes = {k: (old.get(k) if v is None else v) for k, v in codes.items()}
    out: dict[str, list[str]] = {"killed": [], "survived": [], "timeout": [], "no tests": [], "not checked": [],
                                 "other": []}
    for n in names:
        c = codes.get(n)
        key = ("not checked" if c is None else "killed" if c in KILLED else "survived" if c in SURVIVED
               else "no tests" if c in NO_TESTS else "timeout" if c in TIMEOUT else "other")
        out[key].append(n)
    k, s = len(out["killed"]), len(out["survived"])
    return {"counts": {key: len(v) for key, v in out.items()}, "score": k / (k + s) if k + s else None,
            "survivors": out["survived"], "no_tests": out["no tests"]}


def _write_code(meta: Path, name: str, code: int) -> None:
    """Record one outcome in the .meta file (rewritten atomically)."""
    data = json.loads(meta.read_text())
    data["exit_code_by_key"][name] = code
    tmp = meta.with_suffix(".meta.tmp")
    tmp.write_text(json.dumps(data, indent=4))
    os.replace(tmp, meta)


def _child(args: list[str], name: str, cpu_limit: int) -> int:
    """Exit status of pytest ``args`` run in a forked child with mutant ``name`` active ("" = none)."""
    pid = os.fork()
    if pid == 0:
        import pytest

        os.environ["MUTANT_UNDER_TEST"] = name
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_limit, cpu_limit + 1))
        signal.alarm(4 * cpu_limit)
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1), os.dup2(fd, 2)
        os._exit(int(pytest.main(args)))
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _reaching_tests(args: list[str], cpu_limit: int) -> dict[str, list[str]]:
    """Mangled function name -> node ids of the tests (of pytest ``args``) that may run it: those that call it in
    the test process, plus every test that starts a process (``subprocess`` or ``os.fork``, e.g. a worker
    pool), whose calls are not seen here.  From one run of the unmutated code in mutmut's "stats" mode, in a
    forked child.  Node ids keep the order of the selection."""
    out = Path(os.getcwd()) / ".reaching_tests.json"
    pid = os.fork()
    if pid == 0:
        import subprocess

        import mutmut.mutation.trampoline as trampoline
        import pytest

        hits: set[str] = set()
        order: list[str] = []
        spawns: set[str] = set()
        per_test: dict[str, set[str]] = {}
        trampoline.record_trampoline_hit = lambda name, caller=None: hits.add(name)
        real_init, real_fork = subprocess.Popen.__init__, os.fork

        def popen_init(self, *a, **k):
            spawns.add(order[-1])
            real_init(self, *a, **k)

        def fork():
            spawns.add(order[-1])
            return real_fork()

        subprocess.Popen.__init__, os.fork = popen_init, fork

        class Record:
            @pytest.hookimpl(hookwrapper=True)
            def pytest_runtest_protocol(self, item, nextitem):
                hits.clear()
                order.append(item.nodeid)
                yield
                for h in hits:
                    per_test.setdefault(h, set()).add(item.nodeid)

        os.environ["MUTANT_UNDER_TEST"] = "stats"
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_limit, cpu_limit + 1))
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1), os.dup2(fd, 2)
        pytest.main([a for a in args if a != "-x"], plugins=[Record()])
        reach = {f: [n for n in order if n in ids or n in spawns] for f, ids in per_test.items()}
        reach[""] = [n for n in order if n in spawns]  # a function no test calls in the test process
        out.write_text(json.dumps(reach))
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not out.exists():
        raise SystemExit("error: the run that maps functions to the tests reaching them failed")
    return json.loads(out.read_text())


def run(module: str, names: list[str], tests: list[str], cpu_limit: int, redo: bool, order_seed: int,
        by_function: bool = False) -> int:
    """Decide ``names`` by forking one child per mutant from a warm process; returns how many were run.

    ``by_function``: a mutant runs only the tests that may reach its function (:func:`_reaching_tests`: the
    tests calling it, and every test that starts a process); all of them where that list is empty.  The other
    tests run the unmutated function, so they pass under the mutant as they do without it.

    Exit status of a child: pytest's (1 a test failed: killed; 0 all passed: survived), or minus the signal
    that ended it (SIGXCPU at ``cpu_limit`` CPU seconds, SIGKILL one second later, SIGALRM at 4 * cpu_limit
    wall seconds): a timeout, counted as neither killed nor survived.
    """
    meta = (Path("mutants") / (module + ".meta")).resolve()
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    unknown = [n for n in names if n not in codes]
    if unknown:
        raise SystemExit(f"error: {len(unknown)} names are not mutants of {module}, e.g. {unknown[0]!r}")
    todo = [n for n in names if redo or codes.get(n) is None]
    random.Random(order_seed).shuffle(todo)  # an interrupted run leaves a random part of the sample decided
    os.chdir("mutants")
    sys.path[:0] = [os.getcwd()]
    os.environ["MUTANT_UNDER_TEST"] = ""  # the conftest's cache-clearing fixture is registered; no mutant active
    import pytest

    args = ["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist", "--assert=plain",
            "--tb=no", "-k", "not million and not grid_of_scales", *tests]
    with open(os.devnull, "w") as devnull:
        saved = os.dup(1), os.dup(2)
        os.dup2(devnull.fileno(), 1), os.dup2(devnull.fileno(), 2)
        try:
            warm = pytest.main(["--collect-only", "-qqq", *args])
        finally:
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
    if warm != 0:
        raise SystemExit(f"error: collecting {' '.join(tests)} failed (pytest exit {warm})")
    base = _child(args, "", cpu_limit)  # the unmutated code must pass, else every mutant would read as killed
    if base != 0:
        raise SystemExit(f"error: the tests fail on the unmutated code inside mutants/ (exit {base}); "
                         "a missing data file (also_copy) or a test that depends on the checkout's path?")
    reach = _reaching_tests(args, cpu_limit * 10) if by_function else {}
    for i, name in enumerate(todo, 1):
        t0, c0 = time.monotonic(), os.times()
        own = reach.get(name.rsplit("__mutmut_", 1)[0], reach.get("")) if by_function else None
        code = _child(args[:-len(tests)] + own if own else args, name, cpu_limit)
        _write_code(meta, name, code)
        c1 = os.times()
        cpu = c1.children_user + c1.children_system - c0.children_user - c0.children_system
        print(f"{i}/{len(todo)} {name} exit {code} ({time.monotonic() - t0:.1f} s wall, {cpu:.1f} s CPU)",
              flush=True)
    return len(todo)


def generate() -> None:
    """mutmut's mutant generation alone (the first step of ``mutmut run``; its module names are mutmut 3.8's)."""
    from mutmut.__main__ import create_mutants
    from mutmut.mutation.trampoline import set_mutant_under_test
    from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir, setup_source_paths

    set_mutant_under_test("mutant_generation")
    os.makedirs("mutants", exist_ok=True)
    copy_src_dir()
    copy_also_copy_files()
    setup_source_paths()
    print(create_mutants(1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["generate", "names", "score", "run"])
    p.add_argument("module", nargs="?")
    p.add_argument("--sample", type=int)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only-numpy", action="store_true")
    p.add_argument("--show", action="store_true")
    p.add_argument("--previous", help="folder with earlier .meta copies (see score())")
    p.add_argument("--names", help="run: a file of mutant names (one a line) instead of the sample")
    p.add_argument("--tests", nargs="+", help="run: the test files (or node ids) each mutant is judged by")
    p.add_argument("--cpu-limit", type=int, default=120, help="run: CPU seconds per mutant (then a timeout)")
    p.add_argument("--redo", action="store_true", help="run: also rerun mutants already decided")
    p.add_argument("--order-seed", type=int, default=2, help="run: seed of the order the mutants are run in")
    p.add_argument("--by-function", action="store_true",
                   help="run: each mutant runs only the tests that may reach its function")
    a = p.parse_args(argv)
    if a.command == "generate":
        generate()
        return 0
    if a.module is None:
        p.error(f"{a.command} needs a module")
    names = mutant_names(a.module, a.sample, a.seed, a.only_numpy)
    if a.command == "run":
        if not a.tests:
            p.error("run needs --tests")
        if a.names:
            names = [n for n in Path(a.names).read_text().split() if n]
        run(a.module, names, a.tests, a.cpu_limit, a.redo, a.order_seed, a.by_function)
        a.previous = None
        os.chdir("..")
    if a.command == "names":
        print("\n".join(names))
        return 0
    r = score(a.module, names, a.previous)
    sc = "n/a" if r["score"] is None else f"{100 * r['score']:.1f}%"
    print(f"{a.module}: {len(names)} mutants {r['counts']} score {sc}")
    if a.show:
        for n in r["survivors"]:
            print("survived", n)
        for n in r["no_tests"]:
            print("no tests", n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
