"""numpydoc docstrings of the public functions, built from registry entries.

The Examples of each docstring run the function on a fixed input chosen by
the kind of activation (:data:`EXAMPLE_CALLS`) and show the output recorded
in the entry's ``examples`` field; tests/test_docs.py runs them as doctests,
so an entry whose recorded output disagrees with the function fails.
"""

from __future__ import annotations

from . import _registry as R

_X = "np.array([-np.inf, -1.5, 0.0, 1.5, np.inf])"
_X4 = "np.array([-np.inf, -1.5, 0.0, 1.5])"

#: (input line, forward call, backward call) per kind; ``{name}`` is the
#: function, ``{weight}`` and ``{pieces}`` the registry's ``Param.sample`` values.
EXAMPLE_CALLS = {
    R.ELEMENTWISE: (f"x = {_X}", "fa.{name}(x)", "fa.{name}_backward(np.ones(5), x)"),
    R.PRELU: (f"x = {_X}", "fa.{name}(x, {weight})",
              "fa.{name}_backward(np.ones(5), x, {weight})"),
    R.SOFTMAX: (f"x = {_X4}", "y = fa.{name}(x); y",
                "fa.{name}_backward(np.array([1.0, 0.0, 0.0, 1.0]), y)"),
    R.MAXOUT: (f"x = {_X4}", "fa.{name}(x, {pieces})",
               "fa.{name}_backward(np.ones(4 // {pieces}), x, {pieces})"),
}

_TYPES = {"float": "float", "int": "int", "bool": "bool", "axis": "int",
          "array": "float or array_like"}

_OUT = """out : ndarray, optional
    Where to write the result: a writeable array of exactly the result's shape
    and dtype, any strides. It may be the input itself (in place); an ``out``
    that partially overlaps an input gives the result as if the input had been
    copied first. Nothing is written when the call raises."""

_BIAS = """bias : float or array_like, optional
    Added to ``x`` along its last axis before the function is applied, in the
    same pass: a scalar or a 1-D array of length ``x.shape[-1]`` with ``x``'s
    dtype (the bias of a dense layer)."""

_DTYPES = """float32 in gives float32 out and float64 gives float64; float16 is computed in
float32 and returned as float16; bool and integer inputs give float64. Any
strides and byte order are accepted."""


def _param_lines(act, backward=False):
    lines = []
    for p in act.params:
        kind = ('{' + ", ".join(repr(c) for c in p.choices) + '}') if p.kind == "choice" \
            else _TYPES[p.kind]
        optional = "" if p.default is R.REQUIRED else f", optional (default {p.default!r})"
        lines.append(f"{p.name} : {kind}{optional}\n    {p.doc}")
    return lines


def _accuracy(act):
    if act.exact:
        return "The result is exact (correctly rounded in the compute dtype)."
    return ("Error at most 2 ULP in the forward and 4 ULP in the gradient against the "
            "exactly rounded result, for float32 and float64 (CONTRACT.md section 4; "
            "measured figures in the README's accuracy table)"
            + (", with absolute error below 4 eps |grad_output| near the root of f'"
               if act.grad_roots else "") + ".")


def example_calls(act):
    """(input line, forward call, backward call) of ``act``'s docstring example."""
    fields = {p.name: p.sample for p in act.params if p.sample is not None}
    return tuple(text.format(name=act.name, **fields) for text in EXAMPLE_CALLS[act.kind])


def _examples(act, backward):
    setup, fwd, bwd = example_calls(act)
    shown = act.examples[1 if backward else 0] if act.examples else "<missing>"
    lines = [">>> import numpy as np", ">>> import fastact as fa", f">>> {setup}"]
    if backward and act.kind == R.SOFTMAX:
        lines.append(">>> " + fwd.split(";")[0])
    lines.append(">>> " + (bwd if backward else fwd))
    lines.append(shown)
    return "\n".join(lines)


def _assemble(summary, params, returns, notes, examples):
    return "\n\n".join([
        summary,
        "Parameters\n----------\n" + "\n".join(params),
        "Returns\n-------\n" + returns,
        "Notes\n-----\n" + notes,
        "Examples\n--------\n" + examples,
    ]) + "\n"


def forward_doc(act):
    params = ["x : array_like\n    Input."] + _param_lines(act) + [_OUT]
    if act.kind in (R.ELEMENTWISE, R.PRELU):
        params.append(_BIAS)
    shape = {R.MAXOUT: "``x``'s shape with ``x.shape[axis] // pieces`` along ``axis``"}.get(
        act.kind, "``x``'s shape")
    returns = f"ndarray\n    {act.name}(x), of {shape}; ``out`` if given. A 0-d input gives a NumPy scalar."
    notes = "\n\n".join(filter(None, [f"``{act.formula}``", act.kinks, _accuracy(act),
                                      _DTYPES, "NaN in gives NaN out; see CONTRACT.md section 3 "
                                      "for infinities."]))
    return _assemble(f"{act.summary}\n\n``{act.name}(x) = {act.formula}``", params, returns,
                     notes, _examples(act, False))


def backward_doc(act):
    if act.kind == R.SOFTMAX:
        inputs = ["grad_output : array_like\n    dL/dy, the upstream gradient.",
                  f"y : array_like\n    The forward result ``{act.name}(x)``."]
    else:
        inputs = ["grad_output : array_like\n    dL/dy, the upstream gradient, of the forward "
                  "result's shape.",
                  "x : array_like\n    The forward input."
                  + (" Give exactly one of ``x`` and ``y``." if act.backward_from_y else "")]
    params = inputs + _param_lines(act)
    if act.backward_from_y:
        params.append("y : array_like, optional\n    The forward result instead of ``x`` "
                      "(as saved by scikit-learn's MLP or PyTorch); as accurate as ``y`` allows.")
    params.append(_OUT.replace("the input itself", "``grad_output`` itself"))
    if act.kind in (R.ELEMENTWISE, R.PRELU):
        params.append(_BIAS + "\n    The result is then dL/d(x + bias); summing it over the "
                      "other axes gives dL/dbias.")
    if act.kind == R.PRELU:
        returns = ("grad_input : ndarray\n    dL/dx, of ``x``'s shape.\n"
                   "grad_weight : ndarray\n    dL/dweight, of ``weight``'s shape.")
    else:
        returns = "ndarray\n    dL/dx, of ``x``'s shape; ``out`` if given."
    notes = "\n\n".join(filter(None, [f"Gradient of ``{act.name}(x) = {act.formula}``.",
                                      act.kinks, _accuracy(act), _DTYPES]))
    return _assemble(f"Gradient of :func:`{act.name}`: dL/dx from dL/dy.", params, returns,
                     notes, _examples(act, True))
