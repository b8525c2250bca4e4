"""Docstrings and signatures of the public functions (CONTRACT.md section 1).

Every function named by ``fastact.ACTIVATIONS`` and its ``_backward`` has a
numpydoc docstring (Parameters, Returns, Notes, Examples) whose Parameters
list exactly the signature's parameters, and whose Examples pass as doctests;
its signature has the contract's form, derived from the registry entry.
"""

import doctest
import inspect
import re

import numpy as np
import pytest

import fastact
from conftest import ACTIVATIONS, ids
from fastact import _registry as R

PUBLIC = [(act, name) for act in ACTIVATIONS for name in (act.name, act.name + "_backward")]
PUBLIC_IDS = [name for _, name in PUBLIC]
SECTIONS = ("Parameters", "Returns", "Notes", "Examples")


def test_activations_lists_the_registry():
    assert fastact.ACTIVATIONS == tuple(a.name for a in ACTIVATIONS)
    for act, name in PUBLIC:
        assert callable(getattr(fastact, name)), name
        assert name in fastact.__all__


def sections(doc):
    """{section title: body} of a numpydoc docstring."""
    doc = inspect.cleandoc(doc)
    parts = re.split(r"^(\w[\w ]*)\n(-+)\n", doc, flags=re.M)
    found = {"": parts[0]}
    for i in range(1, len(parts) - 2, 3):
        title, rule, body = parts[i], parts[i + 1], parts[i + 2]
        assert len(rule) == len(title), f"underline of {title!r} has the wrong length"
        found[title] = body
    return found


def documented_params(body):
    """Names in a numpydoc Parameters section (lines ``name : type`` at column 0)."""
    names = []
    for line in body.splitlines():
        m = re.match(r"^(\w+)\s*:", line)
        if m:
            names.append(m.group(1))
    return names


@pytest.mark.parametrize("act, name", PUBLIC, ids=PUBLIC_IDS)
def test_numpydoc_sections(act, name):
    fn = getattr(fastact, name)
    doc = fn.__doc__
    assert doc and doc.strip(), f"{name} has no docstring"
    found = sections(doc)
    for title in SECTIONS:
        assert title in found, f"{name}: no {title} section"
        assert found[title].strip(), f"{name}: empty {title} section"
    order = [t for t in found if t in SECTIONS]
    assert order == list(SECTIONS), f"{name}: sections in the order {order}"
    assert found[""].strip(), f"{name}: no summary line"
    # The Parameters section documents exactly the signature's parameters, in order.
    params = list(inspect.signature(fn).parameters)
    assert documented_params(found["Parameters"]) == params
    assert ">>>" in found["Examples"], f"{name}: Examples has no doctest"
    if act.kind == R.PRELU and name.endswith("_backward"):
        assert "grad_weight" in found["Returns"]


def run_doctests(fn, name):
    finder = doctest.DocTestFinder(exclude_empty=False)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(fn, name, globs={"np": np, "fa": fastact})
    assert tests and sum(len(t.examples) for t in tests) >= 2, f"{name}: no doctests found"
    report, failed = [], 0
    for t in tests:
        # NumPy prints arrays the NumPy 2 way whatever the user's options were.
        with np.printoptions(legacy=False):
            failed += runner.run(t, out=report.append).failed
    return failed, "".join(report)


@pytest.mark.parametrize("act, name", PUBLIC, ids=PUBLIC_IDS)
def test_doctests_pass(act, name):
    failed, report = run_doctests(getattr(fastact, name), name)
    assert failed == 0, f"{name}: doctest failed\n{report}"


# ---------------------------------------------------------------------------
# Signatures: the contract's form, derived from the registry entry

P = inspect.Parameter
NO_DEFAULT = P.empty


def _default(param):
    return NO_DEFAULT if param.default is R.REQUIRED else param.default


def _registry_params(act, keyword_only):
    return [P(p.name, P.KEYWORD_ONLY if keyword_only else P.POSITIONAL_OR_KEYWORD,
              default=_default(p))
            for p in act.params if p.keyword_only == keyword_only]


def _keyword_tail(act):
    """The registry's keyword-only params, then out, then bias where fused."""
    params = _registry_params(act, keyword_only=True)
    params.append(P("out", P.KEYWORD_ONLY, default=None))
    if act.kind in (R.ELEMENTWISE, R.PRELU):
        params.append(P("bias", P.KEYWORD_ONLY, default=None))
    return params


def expected_forward(act):
    return ([P("x", P.POSITIONAL_OR_KEYWORD)] + _registry_params(act, keyword_only=False)
            + _keyword_tail(act))


def expected_backward(act):
    primal = "y" if act.kind == R.SOFTMAX else "x"
    params = [P("grad_output", P.POSITIONAL_OR_KEYWORD),
              P(primal, P.POSITIONAL_OR_KEYWORD,
                default=None if act.backward_from_y else NO_DEFAULT)]
    params += _registry_params(act, keyword_only=False)
    if act.backward_from_y:
        params.append(P("y", P.KEYWORD_ONLY, default=None))
    return params + _keyword_tail(act)


def describe(params):
    return [(p.name, p.kind.name, "<none>" if p.default is NO_DEFAULT else repr(p.default))
            for p in params]


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_forward_signature(act):
    got = list(inspect.signature(getattr(fastact, act.name)).parameters.values())
    assert describe(got) == describe(expected_forward(act))


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_backward_signature(act):
    got = list(inspect.signature(getattr(fastact, act.name + "_backward")).parameters.values())
    assert describe(got) == describe(expected_backward(act))


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_positional_and_keyword_calls_agree(act):
    """Registry parameters after x are usable positionally, in registry order."""
    x = np.linspace(-3, 3, 12).reshape(3, 4)
    kw = {p.name: (p.sample if p.default is R.REQUIRED else p.default) for p in act.params}
    positional = [kw[p.name] for p in act.params if not p.keyword_only]
    keyword_only = {p.name: kw[p.name] for p in act.params if p.keyword_only}
    fn = getattr(fastact, act.name)
    np.testing.assert_array_equal(fn(x, *positional, **keyword_only), fn(x, **kw))
    for p in act.params:
        if p.keyword_only:
            with pytest.raises(TypeError):
                fn(x, *positional, kw[p.name])
