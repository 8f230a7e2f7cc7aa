"""Collection switches for every test directory (tests/, proofs/, fuzz/).

``@pytest.mark.parametrize_if_selected(argnames, make_values, **parametrize_kwargs)`` parametrizes a test with
``make_values()`` only when the ``-m`` expression can select the test, judged on the test's own markers as
pytest's deselection judges each item.  Otherwise the test gets an empty parameter set, which the same
expression deselects, so a run that leaves the test out does not build and collect thousands of items only to
deselect them.  For plain values only (no ``pytest.param`` marks, which could change that judgement).
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "parametrize_if_selected(argnames, make_values, **kwargs): parametrize "
                                       "with make_values() only when the -m expression can select the test")


def _can_select(config: pytest.Config, definition: pytest.Item) -> bool:
    """Whether ``-m`` can select ``definition`` (True without an expression or where pytest's matcher differs)."""
    expr = config.option.markexpr
    if not expr:
        return True
    try:
        from _pytest.mark import MarkMatcher
        from _pytest.mark.expression import Expression
    except ImportError:  # another pytest's internals: build every value, which never loses a test
        return True
    return bool(Expression.compile(expr).evaluate(MarkMatcher.from_markers(definition.iter_markers())))


@pytest.hookimpl(trylast=True)  # after the plain parametrize marks, so the ids keep their order
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for mark in metafunc.definition.iter_markers("parametrize_if_selected"):
        argnames, make_values = mark.args
        values = list(make_values()) if _can_select(metafunc.config, metafunc.definition) else []
        metafunc.parametrize(argnames, values, **mark.kwargs)
