"""Mutant sampling and scoring over mutmut's work directory (``mutants/``), for docs/mutation.md.

    python docs/mutation_tool.py names refarith/fast/mx.py [--sample 200 --seed 1] [--only-numpy]
        prints the mutant names of one module (all, or a seeded random sample), one per line, for
        ``mutmut run $(...)``
    python docs/mutation_tool.py score refarith/fast/mx.py [--sample 200 --seed 1] [--only-numpy] [--show]
        prints killed / survived / timeout / no tests / not checked and the score killed / (killed + survived)
        over the same names; --show lists the survivors; --previous DIR fills in outcomes of an earlier run

--only-numpy drops the mutants of functions whose name says they are torch-only (``torch`` in the mangled
function name), which a run with torch absent cannot reach; they are scored in a run with torch present.
mutmut's exit codes are read from ``mutants/<module>.meta`` (1 and 3 killed, 0 survived, 33 and 5 no tests,
24/-24/152/255/36 timeout).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

KILLED = {1, 3}
SURVIVED = {0}
NO_TESTS = {5, 33}
TIMEOUT = {24, -24, 152, 255, 36}


def mutant_names(module: str, sample: int | None, seed: int, only_numpy: bool) -> list[str]:
    """The mutant names of ``module`` (a path like refarith/fast/mx.py), sorted, optionally a seeded sample."""
    meta = Path("mutants") / (module + ".meta")
    if not meta.exists():
        raise SystemExit(f"error: {meta} not found; run `mutmut run` once to generate the mutants")
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["names", "score"])
    p.add_argument("module")
    p.add_argument("--sample", type=int)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only-numpy", action="store_true")
    p.add_argument("--show", action="store_true")
    p.add_argument("--previous", help="folder with earlier .meta copies (see score())")
    a = p.parse_args(argv)
    names = mutant_names(a.module, a.sample, a.seed, a.only_numpy)
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
