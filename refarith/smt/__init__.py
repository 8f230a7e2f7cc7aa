"""Z3 encodings of formats and operations, the theorem registry and its runner."""

from refarith.smt.registry import (
    COUNTEREXAMPLE,
    PROVED,
    Outcome,
    Result,
    Theorem,
    load_all,
    prove,
    register,
    run,
    run_one,
    select,
    theorem,
)

__all__ = ["COUNTEREXAMPLE", "PROVED", "Outcome", "Result", "Theorem", "load_all", "prove", "register", "run",
           "run_one", "select", "theorem"]
