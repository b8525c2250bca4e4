"""Print the docstring Examples output of every activation, from mpmath.

    PYTHONPATH=src python tools/doc_examples.py

For each registry entry it evaluates the calls of ``_docstrings.EXAMPLE_CALLS``
with the high-precision references of tests/reference.py, rounds to float64
and prints the ``examples=(forward, backward)`` text NumPy would show, ready
to paste into the entry.  The sign of a zero result is the one thing mpmath
cannot supply (it has no -0); it is taken from fastact's NumPy backend.  At
the infinities the values are the registry's special-value rows (the limits
of CONTRACT.md section 3) rather than mpmath evaluations.  The doctests (tests/test_docs.py) then check both backends against the text.
"""

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import reference as ref  # noqa: E402
from conftest import default_kwargs  # noqa: E402

import fastact  # noqa: E402
from fastact import _registry as R  # noqa: E402

X5 = np.array([-np.inf, -1.5, 0.0, 1.5, np.inf])
X4 = np.array([-np.inf, -1.5, 0.0, 1.5])
G4 = np.array([1.0, 0.0, 0.0, 1.0])


def _round(values, zero_signs):
    out = np.array([float(ref.round_to(v, np.float64)) for v in values])
    zero = out == 0
    out[zero] = np.copysign(0.0, zero_signs[zero])
    return out


def _special(act, x, field):
    """The registry's value at an infinity (the contract's limits), else None."""
    for row in act.specials:
        if not row.params and row.x == x and getattr(row, field) is not None:
            return ref.mpf(getattr(row, field))
    return None


def _elementwise(act, npb):
    f, fprime = ref.REFERENCE[act.name]
    p = default_kwargs(act)

    def at(fn, field, v):
        limit = _special(act, v, field) if np.isinf(v) else None
        return limit if limit is not None else fn(ref.mpf(v), p)

    y = [at(f, "y", v) for v in X5]
    d = [at(fprime, "grad", v) for v in X5]
    return (_round(y, npb[act.name](X5)),
            _round(d, npb[act.name + "_backward"](np.ones(5), X5)))


def _sample(act, name):
    return next(p.sample for p in act.params if p.name == name)


def _prelu(act, npb):
    f, fprime = ref.REFERENCE["leaky_relu"]
    weight = _sample(act, "weight")
    p = {"negative_slope": weight}
    gi, gw = npb["prelu_backward"](np.ones(5), X5, weight)
    # grad_weight = sum of grad_output*x over x <= 0 (here -inf - 1.5 + 0)
    weight_grad = _round([sum(ref.mpf(v) for v in X5 if v <= 0)], np.atleast_1d(gw))
    return (_round([f(ref.mpf(v), p) for v in X5], npb["prelu"](X5, weight)),
            (_round([fprime(ref.mpf(v), p) for v in X5], gi), weight_grad.reshape(())))


def _softmax(act, npb):
    log = act.name == "log_softmax"
    y = (ref.log_softmax_ref if log else ref.softmax_ref)(X4)
    g = [ref.mpf(v) for v in G4]
    if log:
        s = sum(g)
        d = [gi - ref.mp.exp(yi) * s for gi, yi in zip(g, y)]
    else:
        s = sum(gi * yi for gi, yi in zip(g, y))
        d = [yi * (gi - s) for gi, yi in zip(g, y)]
    y64 = npb[act.name](X4)
    return _round(y, y64), _round(d, npb[act.name + "_backward"](G4, y64))


def _maxout(act, npb):
    pairs = X4.reshape(-1, _sample(act, "pieces"))
    y = pairs.max(axis=1)
    first = pairs.argmax(axis=1)
    d = np.zeros_like(pairs)
    d[np.arange(len(pairs)), first] = 1.0
    return y, d.reshape(-1)


KINDS = {R.ELEMENTWISE: _elementwise, R.PRELU: _prelu, R.SOFTMAX: _softmax, R.MAXOUT: _maxout}


def main():
    from fastact import _api
    npb = _api.build_functions(fastact._BACKENDS["numpy"])
    for act in R.ACTIVATIONS:
        fwd, bwd = KINDS[act.kind](act, npb)
        print(f"{act.name}:\n        examples=({repr(fwd)!r},\n                  {repr(bwd)!r}),")


if __name__ == "__main__":
    main()
