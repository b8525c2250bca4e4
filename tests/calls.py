"""Calling any activation generically, whatever its kind.

Everything here is derived from the registry entry (its ``kind`` and
``params``), so the tests that use it cover a new activation without being
touched.  ``fa`` is a namespace of public functions bound to one backend (the
``fa`` fixture of conftest.py, or the ``fastact`` module itself).
"""

import itertools
import math

import numpy as np

from fastact import _registry as R

from conftest import default_kwargs

#: Dtypes accepted by CONTRACT.md section 2, with the dtype of the result.
RESULT_DTYPE = {
    np.dtype(np.float16): np.dtype(np.float16),
    np.dtype(np.float32): np.dtype(np.float32),
    np.dtype(np.float64): np.dtype(np.float64),
    np.dtype(np.bool_): np.dtype(np.float64),
    np.dtype(np.int8): np.dtype(np.float64),
    np.dtype(np.int32): np.dtype(np.float64),
    np.dtype(np.int64): np.dtype(np.float64),
    np.dtype(np.uint8): np.dtype(np.float64),
}
INPUT_DTYPES = tuple(RESULT_DTYPE)


def axis_param(act):
    """The registry's axis parameter of ``act``, or None."""
    return next((p for p in act.params if p.kind == "axis"), None)


def has_bias(act):
    """Whether the public functions of ``act`` take ``bias=`` (CONTRACT.md section 1)."""
    return act.kind in (R.ELEMENTWISE, R.PRELU)


def min_ndim(act):
    """Fewest dimensions ``x`` may have with default parameters."""
    return 1 if act.kind in (R.SOFTMAX, R.MAXOUT) else 0


def pieces(act, **overrides):
    return default_kwargs(act, **overrides)["pieces"]


def valid_shape(act, shape, **overrides):
    """Whether ``x`` of ``shape`` is acceptable with default parameters."""
    if len(shape) < min_ndim(act):
        return False
    if act.kind == R.MAXOUT:
        ax = overrides.get("axis", axis_param(act).default)
        return shape[ax] % pieces(act, **overrides) == 0
    return True


def fit_shape(act, shape, **overrides):
    """``shape`` changed as little as possible so that ``valid_shape`` holds."""
    shape = tuple(shape)
    while len(shape) < min_ndim(act):
        shape = shape + (2,)
    if act.kind == R.MAXOUT:
        ax = overrides.get("axis", axis_param(act).default)
        k = pieces(act, **overrides)
        shape = list(shape)
        shape[ax] = k * max(1, math.ceil(shape[ax] / k)) if shape[ax] else 0
        shape = tuple(shape)
    return shape


def result_shape(act, shape, **overrides):
    """Shape of the forward result for ``x`` of ``shape``."""
    if act.kind != R.MAXOUT:
        return tuple(shape)
    ax = overrides.get("axis", axis_param(act).default)
    ax = ax % len(shape)
    shape = list(shape)
    shape[ax] //= pieces(act, **overrides)
    return tuple(shape)


def forward(fa, act, x, **overrides):
    """``act``'s forward on ``x`` with default parameters (``overrides`` win)."""
    return getattr(fa, act.name)(x, **default_kwargs(act, **overrides))


def backward_raw(fa, act, g, x, **overrides):
    """``act``'s backward as the public function returns it (a tuple for prelu).

    ``x`` is the forward input, or for the softmax kind the forward result
    (which the backward takes instead); it is passed positionally.
    """
    return getattr(fa, act.name + "_backward")(g, x, **default_kwargs(act, **overrides))


def backward(fa, act, g, x, **overrides):
    """dL/dx of ``act`` (the first element of prelu's pair)."""
    r = backward_raw(fa, act, g, x, **overrides)
    return r[0] if act.kind == R.PRELU else r


def backward_from_y(fa, act, g, y, **overrides):
    """dL/dx from the saved forward result, ``f_backward(g, y=y)`` (``act.backward_from_y``)."""
    return getattr(fa, act.name + "_backward")(g, y=y, **default_kwargs(act, **overrides))


def call(fa, act, direction, inputs, **overrides):
    """dL/dx only: forward (``inputs = (x,)``), backward (``inputs = (g, x)``) or
    backward_y (``inputs = (g, y)``, for entries with ``backward_from_y``)."""
    if direction == "forward":
        return forward(fa, act, *inputs, **overrides)
    if direction == "backward_y":
        return backward_from_y(fa, act, *inputs, **overrides)
    return backward(fa, act, *inputs, **overrides)


def directions(act):
    """The call forms of ``act``: forward, backward, and backward_y where it has one."""
    return DIRECTIONS + (("backward_y",) if act.backward_from_y else ())


def input_shapes(act, direction, shape, **overrides):
    """Shapes of the inputs of ``call`` for ``x`` of ``shape``."""
    if direction == "forward":
        return (tuple(shape),)
    return (result_shape(act, shape, **overrides), tuple(shape))


def output_shape(act, direction, shape, **overrides):
    """Shape of the result of ``call`` for ``x`` of ``shape``."""
    if direction == "forward":
        return result_shape(act, shape, **overrides)
    return tuple(shape)


DIRECTIONS = ("forward", "backward")


def values(rng, shape, dtype, low=-5.0, high=5.0):
    """Random inputs of ``dtype``: a mix of magnitudes, with exact ties and zeros."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.kind == "u":
        return rng.integers(0, 7, size=shape).astype(dtype)
    if dtype.kind == "i":
        return rng.integers(-6, 7, size=shape).astype(dtype)
    v = rng.uniform(low, high, size=shape)
    if v.size >= 4:
        flat = v.reshape(-1)
        flat[rng.integers(0, flat.size, size=flat.size // 8 + 1)] = 0.0
        flat[rng.integers(0, flat.size, size=flat.size // 8 + 1)] = 1.0
    return v.astype(dtype)


def inputs(rng, act, direction, shape, dtype, **overrides):
    """Random inputs of ``call`` for ``x`` of ``shape``, all of ``dtype``."""
    return tuple(values(rng, s, dtype) for s in input_shapes(act, direction, shape, **overrides))


def same_bits(a, b):
    """True if ``a`` and ``b`` have the same shape, dtype and bit patterns."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return a.tobytes() == b.tobytes()


def assert_same(got, expected, what=""):
    """Bit-identical (so NaN equals NaN and -0 differs from +0), same dtype and shape."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} != {expected.dtype}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    g = np.ascontiguousarray(got)
    e = np.ascontiguousarray(expected)
    if g.tobytes() != e.tobytes():
        bad = np.flatnonzero(g.reshape(-1).view(_uint(g.dtype))
                             != e.reshape(-1).view(_uint(e.dtype)))
        i = bad[0]
        raise AssertionError(f"{what}: {bad.size} of {g.size} elements differ; first at flat "
                             f"index {i}: got {g.reshape(-1)[i]!r}, expected {e.reshape(-1)[i]!r}")


def _uint(dtype):
    return np.dtype(f"u{np.dtype(dtype).itemsize}")


def ulp_distance(a, b):
    """Elementwise distance in units in the last place (NaN vs NaN is 0)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.dtype.kind == "f"
    itype = np.dtype(f"i{a.dtype.itemsize}")

    def ordered(v):
        i = np.ascontiguousarray(v).view(itype).astype(np.int64)
        # Map the sign-magnitude bit patterns onto a monotone integer line.
        return np.where(i < 0, np.iinfo(itype).min - i, i)

    d = np.abs(ordered(a) - ordered(b)).astype(np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    d[both_nan] = 0
    d[np.isnan(a) != np.isnan(b)] = np.inf
    return d


def variants(act):
    """Parameter overrides that switch code paths: {} (defaults), each other choice of a
    choice parameter and the other value of a bool (gelu's tanh form, rrelu's training)."""
    found = [{}]
    for p in act.params:
        if p.kind == "choice":
            found += [{p.name: c} for c in p.choices if c != p.default]
        elif p.kind == "bool":
            found.append({p.name: not p.default})
    return found


def invalid_values(param):
    """Values of ``param`` that its own check rejects (CONTRACT.md section 2)."""
    if param.kind == "choice":
        return tuple(v for v in ("exact", "", "TANH", "None ", "erf", None)
                     if v not in param.choices)
    if param.check is None:
        return ()
    if param.kind == "int":
        candidates = (0, -1, 2**64, -(2**63))
    elif param.kind == "float":
        candidates = (0.0, -0.0, -1.0, -1e-300, math.nan, math.inf, -math.inf)
    else:
        return ()
    return tuple(v for v in candidates if not param.check(v))


def constraint_violations(act):
    """(values, message) pairs: two float parameters, each valid alone, that together
    violate one of ``act.constraints`` (e.g. hardtanh's min_val > max_val)."""
    grid = (0.5, 0.25, 2.0, 0.0, -0.5, -2.0)  # natural values first
    floats = [p for p in act.params if p.kind == "float"]
    defaults = {p.name: p.default for p in act.params}
    found = []
    for predicate, message in act.constraints:
        hit = next(({p.name: a, q.name: b}
                    for p, q in itertools.permutations(floats, 2)
                    for a, b in itertools.product(grid, grid)
                    if valid(p, a) and valid(q, b)
                    and not predicate(dict(defaults, **{p.name: a, q.name: b}))), None)
        assert hit is not None, f"{act.name}: no violation of {message!r} found on the grid"
        found.append((hit, message))
    return found


def valid(param, value):
    return param.check is None or param.check(value)
