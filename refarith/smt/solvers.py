"""SMT solver back ends of the theorem registry: Z3 in process, and an independent second solver.

A query is a list of Z3 Boolean assertions over free constants (bit-vectors, Booleans, integers, reals; IEEE 754
FloatingPoint terms built from them).  Z3 checks the terms directly.  The second solver — Bitwuzla (bit-vectors and
FloatingPoint) or cvc5 (also integer and real arithmetic) — reads the same query as standard SMT-LIB2 text
(:func:`to_smtlib`), so a bug in Z3's Python API, its simplifier or its core has to be repeated independently before a
wrong verdict survives.  Z3's printer emits a few non-standard forms, which :func:`standardize` rewrites into
equivalent SMT-LIB 2.6 before printing:

* unary ``and``/``or`` (SMT-LIB needs two arguments): the argument itself;
* ``fp.to_ieee_bv`` (a Z3 extension): a fresh bit-vector ``b`` with ``(or (fp.isNaN t) (= ((_ to_fp e s) b) t))``;
  exact for every non-NaN ``t`` (``=`` on floats is identity, so ``b`` is unique) and, for NaN, ``b`` is left free —
  Z3's own semantics of the unspecified NaN bits;
* ``bvsmul_noovfl``/``bvsmul_noudfl``/``bvumul_noovfl`` (Z3 extensions): a defined Boolean constant built from
  SMT-LIB 2.7's ``bvsmulo``/``bvumulo`` and the operands' signs (a product in double width is equivalent too, but
  several times harder for bit-blasting solvers);
* ``bvudiv_i``, ``bvurem_i``, ``bvsdiv_i``, ``bvsrem_i``, ``bvsmod_i`` (Z3's internal division, which its simplifier
  emits where it takes the divisor to be non-zero): the standard operation for a non-zero numeral divisor, else
  ``(ite (= d 0) q (op n d))`` with ``q`` a fresh bit-vector, so a division by zero is left free, as Z3 leaves it.
  An unsigned division or remainder by a numeral becomes a shift (a power of two) or a fresh quotient ``q`` with
  ``q*d <= n < q*d + d`` (computed without overflow), which fixes ``q`` and bit-blasts far smaller than a divider.

The second solver's model is read back as integers and re-checked by evaluating the standardized query with Z3 on
the concrete values (:func:`evaluate`), so a model that does not satisfy the query is reported, never trusted.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from fractions import Fraction

import z3

SECOND_SOLVERS = ("bitwuzla", "cvc5")
SOLVERS = ("z3",) + SECOND_SOLVERS
# every option of `refarith prove --solver`: one solver, or "both" (Z3 and the second solver, each on every query)
CHOICES = SOLVERS + ("both",)
_PACKAGES = {"z3": "z3", "bitwuzla": "bitwuzla", "cvc5": "cvc5"}
# theories each second solver decides (Bitwuzla has no integer or real arithmetic)
_THEORIES = {"bitwuzla": {"BV", "FP", "Bool"}, "cvc5": {"BV", "FP", "Bool", "Int", "Real"}}

SAT, UNSAT, UNKNOWN, UNSUPPORTED, ERROR = "sat", "unsat", "unknown", "unsupported", "error"


def installed(name: str) -> bool:
    """Whether the Python package of solver ``name`` can be imported here."""
    return importlib.util.find_spec(_PACKAGES[name]) is not None


def second_for(theories: set[str], preferred: str = "auto") -> str:
    """The second solver for a query using ``theories``: ``preferred``, or with ``auto`` Bitwuzla for bit-vector and
    FloatingPoint queries and cvc5 for queries with integer or real arithmetic."""
    if preferred != "auto":
        return preferred
    return "bitwuzla" if theories <= _THEORIES["bitwuzla"] else "cvc5"


@dataclass
class Query:
    """A standardized query: SMT-LIB-clean assertions, their free constants by name, the theories used."""

    assertions: list
    constants: dict[str, z3.ExprRef]
    theories: set[str] = field(default_factory=set)
    # defined Boolean constants: name -> (the constant, Z3's own term it stands for, its SMT-LIB definition)
    defined: dict[str, tuple] = field(default_factory=dict)

    def logic(self) -> str:
        th = self.theories
        if th & {"Int", "Real"}:
            return "ALL"
        return "QF_BVFP" if "FP" in th else "QF_BV"


@dataclass
class Answer:
    """One solver's answer to one query: status, seconds, and for ``sat`` the values of the free constants."""

    solver: str
    status: str
    seconds: float
    model: dict[str, int | Fraction] | None = None
    detail: str = ""


def _sort_theory(s: z3.SortRef) -> str:
    k = s.kind()
    return {z3.Z3_BV_SORT: "BV", z3.Z3_BOOL_SORT: "Bool", z3.Z3_INT_SORT: "Int", z3.Z3_REAL_SORT: "Real",
            z3.Z3_FLOATING_POINT_SORT: "FP", z3.Z3_ROUNDING_MODE_SORT: "FP"}.get(k, f"sort {s}")


def _mul_no_text(kind: int, a: z3.BitVecRef, b: z3.BitVecRef) -> str:
    """SMT-LIB 2.7 text of Z3's no-overflow predicates: ``bvsmulo`` is overflow or underflow, told apart by signs."""
    if kind == z3.Z3_OP_BUMUL_NO_OVFL:
        return f"(not (bvumulo {a.sexpr()} {b.sexpr()}))"
    zero = f"(_ bv0 {a.size()})"
    same = f"(= (bvslt {a.sexpr()} {zero}) (bvslt {b.sexpr()} {zero}))"
    sign = same if kind == z3.Z3_OP_BSMUL_NO_OVFL else f"(not {same})"
    return f"(not (and (bvsmulo {a.sexpr()} {b.sexpr()}) {sign}))"


_MUL_NO = (z3.Z3_OP_BSMUL_NO_OVFL, z3.Z3_OP_BSMUL_NO_UDFL, z3.Z3_OP_BUMUL_NO_OVFL)
# Z3's internal divisions (divisor taken non-zero) and the standard operation each stands for
_DIV_I = {z3.Z3_OP_BUDIV_I: z3.UDiv, z3.Z3_OP_BUREM_I: z3.URem, z3.Z3_OP_BSDIV_I: lambda a, b: a / b,
          z3.Z3_OP_BSREM_I: z3.SRem, z3.Z3_OP_BSMOD_I: lambda a, b: a % b}


def standardize(assertions: list) -> Query:
    """Rewrite Z3's non-standard forms (see the module docstring) into equivalent SMT-LIB 2.6; collect constants."""
    memo: dict[int, z3.ExprRef] = {}
    constants: dict[str, z3.ExprRef] = {}
    defined: dict[str, tuple] = {}
    theories: set[str] = set()
    side: list = []
    fresh = [0]

    def walk(e: z3.ExprRef) -> z3.ExprRef:
        key = e.get_id()
        if key in memo:
            return memo[key]
        stack = [e]
        while stack:  # iterative post-order: the deepest cast encodings nest a few thousand terms
            t = stack[-1]
            if t.get_id() in memo:
                stack.pop()
                continue
            if z3.is_quantifier(t) or z3.is_var(t):
                raise ValueError("quantified queries are not exported")
            kids = t.children()
            todo = [c for c in kids if c.get_id() not in memo]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            memo[t.get_id()] = _rebuild(t, [memo[c.get_id()] for c in kids])
        return memo[key]

    def _rebuild(t: z3.ExprRef, kids: list) -> z3.ExprRef:
        theories.add(_sort_theory(t.sort()))
        d = t.decl()
        k = d.kind()
        if k == z3.Z3_OP_UNINTERPRETED:
            if kids:
                raise ValueError(f"uninterpreted function {d.name()} is not exported")
            constants[d.name()] = t
            return t
        if k in (z3.Z3_OP_AND, z3.Z3_OP_OR) and len(kids) == 1:
            return kids[0]
        if k == z3.Z3_OP_FPA_TO_IEEE_BV:
            x = kids[0]
            srt = x.sort()
            b = z3.BitVec(f"refarith_ieee_bits_{fresh[0]}", srt.ebits() + srt.sbits())
            fresh[0] += 1
            constants[str(b)] = b
            side.append(z3.Or(z3.fpIsNaN(x), z3.fpBVToFP(b, srt) == x))
            return b
        if k in _DIV_I:
            n, dv = kids
            std = _DIV_I[k](n, dv)
            if z3.is_bv_value(dv) and dv.as_long() != 0:
                if k in (z3.Z3_OP_BUDIV_I, z3.Z3_OP_BUREM_I):
                    return _udiv_const(n, dv.as_long(), k == z3.Z3_OP_BUREM_I)
                return std
            q = z3.BitVec(f"refarith_div_by_zero_{fresh[0]}", n.size())
            fresh[0] += 1
            constants[str(q)] = q
            return z3.If(dv == 0, q, std)
        if k in _MUL_NO:
            name = f"refarith_mul_no_overflow_{fresh[0]}"
            fresh[0] += 1
            c = z3.Bool(name)
            defined[name] = (c, d(*kids), _mul_no_text(k, kids[0], kids[1]))
            return c
        if all(a.eq(b) for a, b in zip(kids, t.children())):
            return t
        return d(*kids)

    def _udiv_const(n: z3.BitVecRef, d: int, rem: bool) -> z3.BitVecRef:
        """n udiv d (or urem) for a numeral d > 0: a shift for a power of two, else a fresh quotient q with
        q*d <= n < q*d + d in n's width plus d's bits (q is unique), far cheaper to bit-blast than a divider."""
        w = n.size()
        if d & (d - 1) == 0:
            s = d.bit_length() - 1
            return (n & (d - 1)) if rem else z3.LShR(n, s)
        q = z3.BitVec(f"refarith_quotient_{fresh[0]}", w)
        fresh[0] += 1
        constants[str(q)] = q
        e = d.bit_length()
        wide_q, wide_n, wide_d = z3.ZeroExt(e, q), z3.ZeroExt(e, n), z3.BitVecVal(d, w + e)
        side.append(z3.And(z3.ULE(wide_q * wide_d, wide_n), z3.ULT(wide_n, wide_q * wide_d + wide_d)))
        return n - q * d if rem else q

    out = [walk(a) for a in assertions]
    out += [walk(s) for s in side]  # side conditions are standard already; walked to collect their constants
    return Query(out, constants, theories, defined)


def to_smtlib(query: Query) -> str:
    """The query as an SMT-LIB2 script: set-logic, declarations, assertions, (check-sat)."""
    s = z3.Solver()
    s.add(*query.assertions)
    # Z3's printer declares the constants its assertions use; ours: every constant, then the defined ones
    body = [ln for ln in s.to_smt2().splitlines() if not ln.startswith(("(declare-fun", "(set-info", "(check-sat"))]
    head = [f"(set-logic {query.logic()})"]
    head += [f"(declare-fun {c.sexpr()} () {c.sort().sexpr()})" for c in query.constants.values()]
    head += [f"(define-fun {n} () Bool {text})" for n, (_, _, text) in query.defined.items()]
    return "\n".join(head + body + ["(check-sat)"]) + "\n"


def _value(v: z3.ExprRef) -> int | Fraction:
    if z3.is_true(v) or z3.is_false(v):
        return int(z3.is_true(v))
    if z3.is_bv_value(v) or z3.is_int_value(v):
        return v.as_long()
    if z3.is_rational_value(v):
        return Fraction(v.numerator_as_long(), v.denominator_as_long())
    raise ValueError(f"no concrete value: {v}")


def _const(c: z3.ExprRef, v: int | Fraction) -> z3.ExprRef:
    s = c.sort()
    if s.kind() == z3.Z3_BOOL_SORT:
        return z3.BoolVal(bool(v))
    if s.kind() == z3.Z3_BV_SORT:
        return z3.BitVecVal(int(v), s.size())
    if s.kind() == z3.Z3_INT_SORT:
        return z3.IntVal(int(v))
    return z3.RealVal(Fraction(v))


def evaluate(terms: dict[str, z3.ExprRef], constants: dict[str, z3.ExprRef],
             model: dict[str, int | Fraction], defined: dict[str, tuple] | None = None) -> dict[str, int | Fraction]:
    """Values of ``terms`` with every defined constant replaced by its Z3 term and every free constant by its model
    value (constants absent from the model, or from the query, are 0), computed by Z3's evaluator on ground
    terms."""
    defs = [(c, term) for c, term, _ in (defined or {}).values()]
    pairs = [(c, _const(c, model.get(n, 0))) for n, c in constants.items()]
    out = {}
    for name, t in terms.items():
        if defs:
            t = z3.substitute(t, *defs)
        t = z3.substitute(t, *pairs) if pairs else t
        rest = [(c, _const(c, 0)) for c in _free_constants(t)]  # not in the query (simplified away): any value
        out[name] = _value(z3.simplify(z3.substitute(t, *rest) if rest else t))
    return out


def _free_constants(t: z3.ExprRef) -> list[z3.ExprRef]:
    """The uninterpreted constants of ``t``."""
    seen, out, stack = set(), [], [t]
    while stack:
        e = stack.pop()
        if e.get_id() in seen:
            continue
        seen.add(e.get_id())
        if z3.is_const(e) and e.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            out.append(e)
        stack.extend(e.children())
    return out


def check_z3(assertions: list, timeout_s: float) -> tuple[Answer, z3.ModelRef | None]:
    """Z3 on the assertions as built; for ``sat`` also its model."""
    t0 = time.perf_counter()
    s = z3.Solver()
    s.set("timeout", max(1, int(timeout_s * 1000)))
    s.add(*assertions)
    r = s.check()
    dt = time.perf_counter() - t0
    if r == z3.unsat:
        return Answer("z3", UNSAT, dt), None
    if r == z3.unknown:
        return Answer("z3", UNKNOWN, dt, detail=str(s.reason_unknown())), None
    return Answer("z3", SAT, dt), s.model()


def _bitwuzla(text: str, timeout_s: float) -> tuple[str, dict[str, int | Fraction] | None, str]:
    import bitwuzla as bz

    tm = bz.TermManager()
    opts = bz.Options()
    opts.set(bz.Option.PRODUCE_MODELS, True)
    opts.set(bz.Option.TIME_LIMIT_PER, max(1, int(timeout_s * 1000)))
    parser = bz.Parser(tm, opts, "smt2")
    parser.parse(text, True, False)  # parse only: the check-sat below is ours
    solver = parser.bitwuzla()
    r = solver.check_sat()
    if r == bz.Result.UNSAT:
        return UNSAT, None, ""
    if r != bz.Result.SAT:
        return UNKNOWN, None, f"bitwuzla: {r} (time limit {timeout_s:g} s)"
    model: dict[str, int | Fraction] = {}
    for t in parser.get_declared_funs():
        v = solver.get_value(t)
        model[t.symbol()] = int(bool(v.value())) if t.sort().is_bool() else int(v.value(10), 10)
    return SAT, model, ""


def _cvc5(text: str, timeout_s: float) -> tuple[str, dict[str, int | Fraction] | None, str]:
    import cvc5

    tm = cvc5.TermManager()
    solver = cvc5.Solver(tm)
    solver.setOption("produce-models", "true")
    solver.setOption("tlimit-per", str(max(1, int(timeout_s * 1000))))
    if "(_ FloatingPoint" in text or "(_ to_fp" in text:
        solver.setOption("fp-exp", "true")  # cvc5's default FP mode takes binary32 and binary64 only
    sm = cvc5.SymbolManager(tm)
    parser = cvc5.InputParser(solver, sm)
    parser.setStringInput(cvc5.InputLanguage.SMT_LIB_2_6, text, "query")
    while True:
        cmd = parser.nextCommand()
        if cmd.isNull():
            break
        if cmd.getCommandName() != "check-sat":  # the check-sat below is ours
            cmd.invoke(solver, sm)
    r = solver.checkSat()
    if r.isUnsat():
        return UNSAT, None, ""
    if not r.isSat():
        return UNKNOWN, None, f"cvc5: {r.getUnknownExplanation()} (time limit {timeout_s:g} s)"
    model: dict[str, int | Fraction] = {}
    for t in sm.getDeclaredTerms():
        v = solver.getValue(t)
        s = t.getSort()
        if s.isBoolean():
            model[t.getSymbol()] = int(v.getBooleanValue())
        elif s.isBitVector():
            model[t.getSymbol()] = int(v.getBitVectorValue(10), 10)
        elif s.isInteger():
            model[t.getSymbol()] = int(v.getIntegerValue())
        else:
            model[t.getSymbol()] = Fraction(v.getRealValue())
    return SAT, model, ""


def check_second(name: str, query: Query, timeout_s: float) -> Answer:
    """Solver ``name`` (Bitwuzla or cvc5) on the query's SMT-LIB2 text; a ``sat`` model is checked by evaluation."""
    missing = query.theories - _THEORIES[name]
    if missing:
        return Answer(name, UNSUPPORTED, 0.0, detail=f"{name} lacks {', '.join(sorted(missing))} "
                                                       f"(the query's theories: {', '.join(sorted(query.theories))})")
    text = to_smtlib(query)
    if name == "cvc5" and "FP" in query.theories:
        text = text.replace("(set-logic QF_BVFP)", "(set-logic ALL)")
    t0 = time.perf_counter()
    try:
        status, model, detail = (_bitwuzla if name == "bitwuzla" else _cvc5)(text, timeout_s)
    except Exception as e:  # a parse error or a solver crash is an answer too, never a pass
        return Answer(name, ERROR, time.perf_counter() - t0, detail=f"{name}: {type(e).__name__}: {e}")
    dt = time.perf_counter() - t0
    if status == SAT:
        model = {n: v for n, v in (model or {}).items() if n in query.constants}
        holds = evaluate({f"a{i}": a for i, a in enumerate(query.assertions)}, query.constants, model,
                         query.defined)
        if not all(holds.values()):
            return Answer(name, ERROR, dt, model, detail=f"{name}'s model does not satisfy the query: {model}")
    return Answer(name, status, dt, model, detail)
