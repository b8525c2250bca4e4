"""Gradients (CONTRACT.md section 1, "Gradients" and "Fused bias").

- every backward against a 4th-order central difference of its forward
  (float64, away from kinks), and the mpmath reference's f' against mpmath's
  own numerical derivative of f (so the accuracy tests' references are right);
- ``f_backward(g, y=f(x))`` against the y-form of f' and against the x form;
- ``bias=``: ``f(x, bias=b)`` is ``f(x + b)`` and ``f_backward(g, x, bias=b)``
  is ``f_backward(g, x + b)``, bit for bit (prelu's grad_weight included);
- prelu's grad_weight against the exact per-channel sum of g*x over x <= 0;
- rrelu in training mode: forward and backward use the same slopes, which
  lie in [lower, upper], are uniform, depend on (seed, flat index) only;
- maxout_backward routes each group's gradient to its first maximal element;
- softmax and log_softmax backward against central differences along
  several axes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import calls
import reference as ref
from conftest import ACTIVATIONS, BACKEND_NAMES, ELEMENTWISE, default_kwargs, functions_for
from fastact import _registry as R

FORWARD_ULP = 2
GRADIENT_ULP = 4
F64 = np.dtype(np.float64)
EPS64 = float(np.finfo(np.float64).eps)

PRELU_KIND = tuple(a for a in ACTIVATIONS if a.kind == R.PRELU)
SOFTMAX_KIND = tuple(a for a in ACTIVATIONS if a.kind == R.SOFTMAX)
MAXOUT_KIND = tuple(a for a in ACTIVATIONS if a.kind == R.MAXOUT)
FROM_Y = tuple(a for a in ELEMENTWISE if a.backward_from_y)
#: Element-wise activations with a boolean parameter (rrelu's ``training``).
WITH_BOOL = tuple((a, p.name) for a in ELEMENTWISE for p in a.params if p.kind == "bool")


def _ids(acts):
    return [a.name for a in acts]


def _cases(acts):
    return [pytest.param(a, c, id=f"{a.name}[{ref.case_id(c)}]")
            for a in acts for c in ref.param_cases(a)]


# ---------------------------------------------------------------------------
# Finite differences

#: Step: a power of two, and x on a grid of 2**-20, so that x +- h, x +- 2h are exact.
FD_STEP = 2.0 ** -10
#: Allowance for the truncation error h**4*f^(5)(x)/30 (f^(5) up to ~1e2 for
#: the parameters swept).
FD_TRUNCATION = 1e3 * FD_STEP ** 4


def _fd_points(act, params, n=120, seed=0):
    """float64 points on a 2**-20 grid over the domain, at least 3 steps from
    every kink (reference.KINKS)."""
    rng = np.random.default_rng(seed)
    lo, hi = act.domain
    x = np.round(rng.uniform(lo + 3 * FD_STEP, hi - 3 * FD_STEP, n) * 2.0 ** 20) / 2.0 ** 20
    for k in ref.KINKS[act.name](params):
        x = x[np.abs(x - k) > 3 * FD_STEP]
    return x


def _central_difference(f, x, h=FD_STEP):
    """(4th-order central difference of f at x, its rounding-error allowance)
    for a forward f accurate to 2 ULP."""
    fm2, fm1, fp1, fp2 = (f(x + k * h) for k in (-2, -1, 1, 2))
    fd = (fm2 - 8 * fm1 + 8 * fp1 - fp2) / (12 * h)
    size = np.abs(fm2) + 8 * np.abs(fm1) + 8 * np.abs(fp1) + np.abs(fp2)
    rounding = 2 * EPS64 * size / (12 * h)
    return fd, rounding


@pytest.mark.parametrize("act,case", _cases(ELEMENTWISE) + [
    pytest.param(a, {}, id=a.name) for a in PRELU_KIND])
def test_backward_matches_finite_difference(fa, act, case):
    params = default_kwargs(act, **case)
    x = _fd_points(act, params)
    g = np.random.default_rng(1).uniform(0.5, 2.0, x.size) * np.sign(x - 0.3)
    fd, rounding = _central_difference(lambda v: calls.forward(fa, act, v, **case), x)
    got = calls.backward(fa, act, g, x, **case)
    err = np.abs(got - g * fd)
    tol = np.abs(g) * (rounding + FD_TRUNCATION) + GRADIENT_ULP * EPS64 * np.abs(got)
    bad = err > tol
    assert not bad.any(), (f"{act.name}_backward vs finite difference: x={x[bad][:3]}, "
                           f"got {got[bad][:3]}, fd {(g * fd)[bad][:3]}, tol {tol[bad][:3]}")


@pytest.mark.parametrize("act,case", _cases(ELEMENTWISE))
def test_reference_derivative(act, case):
    """reference.py's f' is the derivative of its f (mpmath's numerical
    derivative at 50 digits), away from kinks: the accuracy tests' gradient
    references are themselves checked."""
    params = default_kwargs(act, **case)
    f, fprime = ref.REFERENCE[act.name]
    x = _fd_points(act, params, n=12, seed=2)
    mp = ref.mp
    for v in x.tolist():
        xv = mp.mpf(v)
        numeric = mp.diff(lambda t: f(t, params), xv)
        exact = fprime(xv, params)
        assert abs(numeric - exact) <= mp.mpf(10) ** -25 * max(1, abs(exact)), (act.name, v)


# ---------------------------------------------------------------------------
# From the saved output


@pytest.mark.parametrize("act", FROM_Y, ids=_ids(FROM_Y))
def test_backward_from_y(fa, dtype, act):
    """``f_backward(g, y=f(x))`` is g*F(y) (F the y-form of f', exact in mpmath
    on the given y) within 4 ULP, and differs from ``f_backward(g, x)`` by no
    more than y's own error (<= 2 ULP, the forward bound) allows:
    |F'(y)|*2*ulp(y)*|g|, plus the two backwards' errors."""
    params = default_kwargs(act)
    F = ref.REFERENCE_FROM_Y[act.name]
    x = ref.sample_points(act.domain, dtype, n=400, seed=4)
    g = np.random.default_rng(5).uniform(-2, 2, x.size).astype(dtype)
    y = calls.forward(fa, act, x, **params)
    by = getattr(fa, act.name + "_backward")(g, y=y, **params)
    bx = calls.backward(fa, act, g, x, **params)
    expected = [ref.mpf(gi) * F(ref.mpf(yi)) for gi, yi in zip(g.tolist(), y.tolist())]
    if act.exact:
        np.testing.assert_array_equal(by, ref.round_array(expected, dtype))
        np.testing.assert_array_equal(by, bx)
        return
    err = ref.ulp_error(by, expected, dtype)
    assert err.max() <= GRADIENT_ULP, (
        f"{act.name}_backward(y=): {ref.worst(err, ('x', x), ('y', y), ('got', by))}")
    slope = np.array([float(abs(ref.mp.diff(F, ref.mpf(yi)))) for yi in y.tolist()])
    ulp = np.array([ref.ulp_of(v, dtype) for v in y.tolist()])
    ulp_by = np.array([ref.ulp_of(v, dtype) for v in by.tolist()])
    ulp_bx = np.array([ref.ulp_of(v, dtype) for v in bx.tolist()])
    allowed = np.abs(g) * slope * FORWARD_ULP * ulp + GRADIENT_ULP * (ulp_by + ulp_bx)
    diff = np.abs(by.astype(np.float64) - bx.astype(np.float64))
    bad = diff > allowed
    assert not bad.any(), (f"{act.name}: y-form vs x-form at x={x[bad][:3]}: "
                           f"{by[bad][:3]} vs {bx[bad][:3]}")


# ---------------------------------------------------------------------------
# Fused bias


def _bias_cases():
    cases = []
    for act in ELEMENTWISE + PRELU_KIND:
        cases.append(pytest.param(act, {}, id=act.name))
    for act, name in WITH_BOOL:
        cases.append(pytest.param(act, {name: True, "seed": 11} if any(
            p.name == "seed" for p in act.params) else {name: True}, id=f"{act.name}[{name}]"))
    return cases


@pytest.mark.parametrize("act,case", _bias_cases())
@pytest.mark.parametrize("bias_kind", ["scalar", "python_float", "vector"])
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7), (7,)])
def test_bias_is_added_first(fa, dtype, act, case, bias_kind, shape):
    rng = np.random.default_rng(6)
    lo, hi = act.domain
    x = rng.uniform(lo, hi, shape).astype(dtype)
    g = rng.uniform(-2, 2, shape).astype(dtype)
    if bias_kind == "vector":
        b = rng.uniform(-2, 2, shape[-1]).astype(dtype)
    elif bias_kind == "scalar":
        b = dtype.type(-0.75)
    else:
        b = 0.375  # exact in both dtypes
    z = (x + b).astype(dtype)
    assert z.dtype == dtype
    calls.assert_same(calls.forward(fa, act, x, bias=b, **case),
                      calls.forward(fa, act, z, **case), f"{act.name}(x, bias=b)")
    got = calls.backward_raw(fa, act, g, x, bias=b, **case)
    want = calls.backward_raw(fa, act, g, z, **case)
    if act.kind == R.PRELU:
        calls.assert_same(got[0], want[0], f"{act.name}_backward(g, x, bias=b)")
        calls.assert_same(got[1], want[1], f"{act.name}_backward(g, x, bias=b) grad_weight")
    else:
        calls.assert_same(got, want, f"{act.name}_backward(g, x, bias=b)")


# ---------------------------------------------------------------------------
# prelu's grad_weight


def _exact_channel_sums(g, x, axis, dtype):
    """sum over x <= 0 of g*x per channel along ``axis`` (None: one sum), exact
    (mpmath fsum of exact products), correctly rounded; and the sums of |g*x|."""
    def rows(a):
        return (np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1) if axis is not None
                else a.reshape(1, -1))

    gm, xm = rows(g), rows(x)
    sums, mags = [], []
    for gr, xr in zip(gm, xm):
        terms = [ref.mpf(a) * ref.mpf(b) for a, b in zip(gr.tolist(), xr.tolist()) if not b > 0]
        sums.append(ref.round_to(ref.mp.fsum(terms), dtype))
        mags.append(float(ref.mp.fsum(abs(t) for t in terms)))
    return np.array(sums, dtype=dtype), np.array(mags)


@pytest.mark.parametrize("act", PRELU_KIND, ids=_ids(PRELU_KIND))
@pytest.mark.parametrize("shape,axis,weight", [
    ((2, 3, 4, 5), 1, "vector"), ((2, 3, 4, 5), 0, "vector"), ((2, 3, 4, 5), -1, "vector"),
    ((2, 3, 4, 5), 2, "vector"), ((2, 3, 4, 5), 1, "scalar"), ((6, 50), 1, "vector"),
    ((17,), 1, "scalar"), ((17,), 1, "length1"), ((4, 300), 0, "vector")])
@pytest.mark.parametrize("signs", ["same", "mixed"])
def test_prelu_grad_weight(fa, dtype, act, shape, axis, weight, signs):
    """grad_weight[c] = sum of g*x over x <= 0 in channel c (a scalar weight:
    over all of x), shaped like ``weight``. With terms of one sign (no
    cancellation) within 4 ULP of the exact sum; with mixed signs within
    4 ULP + eps*sum|g*x|."""
    rng = np.random.default_rng(8)
    x = rng.uniform(-3, 3, shape).astype(dtype)
    g = rng.uniform(0.1, 2, shape) * (1 if signs == "same" else rng.choice([-1, 1], shape))
    g = g.astype(dtype)
    ndim = len(shape)
    if weight == "vector" and ndim >= 2:
        w = rng.uniform(0, 0.5, shape[axis]).astype(dtype)
        ax = axis % ndim
    elif weight == "length1":
        w = np.array([0.25], dtype=dtype)
        ax = None
    else:
        w = dtype.type(0.25)
        ax = None
    gi, gw = fa.prelu_backward(g, x, w, axis=axis) if ndim >= 2 else fa.prelu_backward(g, x, w)
    assert np.shape(gw) == np.shape(w) and gw.dtype == dtype
    want, mags = _exact_channel_sums(g, x, ax, dtype)
    got = np.asarray(gw).reshape(-1)
    ulps = np.array([ref.ulp_of(v, dtype) for v in want.tolist()])
    allowed = GRADIENT_ULP * ulps + (0 if signs == "same" else float(np.finfo(dtype).eps) * mags)
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert (err <= allowed).all(), f"grad_weight {got} vs exact {want}"


# ---------------------------------------------------------------------------
# rrelu in training mode (the element-wise entries with a ``training`` flag)

TRAINING = tuple(a for a, name in WITH_BOOL if name == "training")


def _slopes(fa, act, n_or_x, dtype, **kw):
    """The per-element slopes of training mode: the backward with g = 1 at
    x = -1 is f'(x) = the slope itself."""
    x = -np.ones(n_or_x, dtype) if isinstance(n_or_x, (int, tuple)) else n_or_x
    return calls.backward(fa, act, np.ones_like(x), x, training=True, **kw)


@pytest.mark.parametrize("act", TRAINING, ids=_ids(TRAINING))
def test_training_forward_uses_backward_slopes(fa, dtype, act):
    rng = np.random.default_rng(9)
    x = rng.uniform(-4, 4, 4000).astype(dtype)
    s = _slopes(fa, act, x.size, dtype, seed=3)
    y = calls.forward(fa, act, x, training=True, seed=3)
    np.testing.assert_array_equal(y, np.where(x > 0, x, (s * x).astype(dtype)))
    g = rng.uniform(-2, 2, x.size).astype(dtype)
    gi = calls.backward(fa, act, g, x, training=True, seed=3)
    np.testing.assert_array_equal(gi, np.where(x > 0, g, (g * s).astype(dtype)))


@pytest.mark.parametrize("act", TRAINING, ids=_ids(TRAINING))
@pytest.mark.parametrize("lower,upper", [(1 / 8, 1 / 3), (0.0, 1.0), (0.3, 0.3), (0.01, 0.02)])
def test_training_slopes_are_uniform_in_range(fa, dtype, act, lower, upper):
    n = 20000
    s = _slopes(fa, act, n, dtype, seed=12345, lower=lower, upper=upper)
    assert s.min() >= dtype.type(lower) and s.max() <= dtype.type(upper)
    if lower == upper:
        assert (s == dtype.type(lower)).all()
        return
    u = (s.astype(np.float64) - lower) / (upper - lower)
    # 10 bins of expected n/10: each within 5 standard deviations
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    sd = math.sqrt(n * 0.1 * 0.9)
    assert (np.abs(counts - n / 10) < 5 * sd).all(), counts
    assert len(np.unique(s)) > n // 2  # not a few repeated values


@pytest.mark.parametrize("act", TRAINING, ids=_ids(TRAINING))
def test_training_slopes_depend_on_seed_and_flat_index(fa, dtype, act):
    n = 3000
    a = _slopes(fa, act, n, dtype, seed=1)
    np.testing.assert_array_equal(a, _slopes(fa, act, n, dtype, seed=1))
    b = _slopes(fa, act, n, dtype, seed=2)
    assert (a != b).mean() > 0.99
    top = _slopes(fa, act, n, dtype, seed=2 ** 64 - 1)
    assert (top != a).mean() > 0.99 and (top != b).mean() > 0.99
    # the flat (C-order) index of the element in x, whatever the size, shape
    # or strides of x
    np.testing.assert_array_equal(_slopes(fa, act, 1000, dtype, seed=1), a[:1000])
    np.testing.assert_array_equal(_slopes(fa, act, 1, dtype, seed=1), a[:1])
    np.testing.assert_array_equal(_slopes(fa, act, (30, 100), dtype, seed=1).reshape(-1), a)
    x = -np.ones((100, 60), dtype)
    view = x[:, ::2]
    np.testing.assert_array_equal(_slopes(fa, act, view, dtype, seed=1),
                                  _slopes(fa, act, np.ascontiguousarray(view), dtype, seed=1))
    np.testing.assert_array_equal(_slopes(fa, act, np.asfortranarray(x[:50]), dtype, seed=1),
                                  a.reshape(50, 60))
    # eval mode ignores the seed
    ev = [calls.backward(fa, act, np.ones(n, dtype), -np.ones(n, dtype), seed=s) for s in (1, 2)]
    np.testing.assert_array_equal(ev[0], ev[1])
    assert len(np.unique(ev[0])) == 1


@pytest.mark.skipif("native" not in BACKEND_NAMES or "numpy" not in BACKEND_NAMES,
                    reason="needs both backends")
@pytest.mark.parametrize("act", TRAINING, ids=_ids(TRAINING))
def test_training_slopes_same_in_both_backends(dtype, act):
    """Both backends implement the one generator of notes/semantics.md, so
    training-mode results are bit-identical (the function is exact)."""
    a, b = (_slopes(functions_for(name), act, 5000, dtype, seed=77) for name in ("native", "numpy"))
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# maxout's routing


@pytest.mark.parametrize("act", MAXOUT_KIND, ids=_ids(MAXOUT_KIND))
@pytest.mark.parametrize("pieces,axis", [(1, -1), (2, -1), (3, -1), (4, 0), (2, 1), (3, 1)])
def test_maxout_backward_routes_to_first_max(fa, dtype, act, pieces, axis):
    """Each group's gradient goes to its first maximal element (ties are
    common here: small integers and signed zeros); the others get 0."""
    rng = np.random.default_rng(10)
    shape = [4, 6, 12]
    shape[axis] = pieces * (shape[axis] // pieces if shape[axis] % pieces == 0 else 2)
    x = rng.integers(-2, 3, shape).astype(dtype)
    x[x == 0] = np.where(rng.random((x == 0).sum()) < 0.5, -0.0, 0.0)
    ax = axis % 3
    split = shape[:ax] + [shape[ax] // pieces, pieces] + shape[ax + 1:]
    xs = x.reshape(split)
    out_shape = shape[:ax] + [shape[ax] // pieces] + shape[ax + 1:]
    g = rng.uniform(0.5, 2, out_shape).astype(dtype)
    first = np.argmax(xs, axis=ax + 1)  # first occurrence of the max
    onehot = np.moveaxis(np.arange(pieces) == np.expand_dims(first, -1), -1, ax + 1)
    want = np.where(onehot, np.expand_dims(g, ax + 1), 0).astype(dtype).reshape(shape)
    got = fa.maxout_backward(g, x, pieces, axis=axis)
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------
# softmax and log_softmax


@pytest.mark.parametrize("act", SOFTMAX_KIND, ids=_ids(SOFTMAX_KIND))
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_softmax_backward_matches_finite_difference(fa, act, axis):
    """d/dx of sum(g*f(x)) by 4th-order central differences, element by element,
    against f_backward(g, f(x)), float64."""
    rng = np.random.default_rng(11)
    x = rng.uniform(-3, 3, (3, 4, 5))
    x = np.round(x * 2.0 ** 20) / 2.0 ** 20
    g = rng.uniform(-2, 2, x.shape)
    fwd = getattr(fa, act.name)
    y = fwd(x, axis=axis)
    got = getattr(fa, act.name + "_backward")(g, y, axis=axis)
    h = FD_STEP
    for idx in np.ndindex(x.shape):
        vals = []
        for k in (-2, -1, 1, 2):
            xk = x.copy()
            xk[idx] += k * h
            vals.append(np.dot(g.reshape(-1), fwd(xk, axis=axis).reshape(-1)))
        fd = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h)
        scale = np.abs(g).sum() * max(1.0, np.abs(y).max())
        tol = 2 * EPS64 * 18 * scale / (12 * h) + FD_TRUNCATION * scale
        assert abs(got[idx] - fd) <= tol, (act.name, axis, idx, got[idx], fd, tol)
