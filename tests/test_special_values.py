"""Special values (CONTRACT.md section 3) and the kink conventions (section 1).

- every row of every registry ``specials`` table, forward and f', with the
  row's parameters;
- +-inf give the limits of the mpmath reference (every element-wise function);
- NaN in x, and separately in grad_output, gives NaN exactly where the
  contract says (the element; softmax's slice; maxout's group);
- signed zeros and subnormals in and out, no flush to zero;
- huge finite inputs (+-max of the dtype included) give finite results
  wherever the true result is finite;
- softmax's IEEE rules for slices with +inf or only -inf;
- no NumPy warning for finite inputs under ``np.errstate(all="raise")``;
- the derivative at every kink and its neighbours equals PyTorch's autograd
  (skipped when torch is not installed).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import calls
import reference as ref
from conftest import ACTIVATIONS, ELEMENTWISE, default_kwargs
from fastact import _registry as R

FORWARD_ULP = 2
GRADIENT_ULP = 4

PRELU_KIND = tuple(a for a in ACTIVATIONS if a.kind == R.PRELU)
SOFTMAX_KIND = tuple(a for a in ACTIVATIONS if a.kind == R.SOFTMAX)
MAXOUT_KIND = tuple(a for a in ACTIVATIONS if a.kind == R.MAXOUT)


def _ids(acts):
    return [a.name for a in acts]


def _bound(act, direction):
    if act.exact:
        return 0
    return FORWARD_ULP if direction == "forward" else GRADIENT_ULP


def _errors(got, expected, dtype, bound):
    """Per-element error in ULP against the mpf values ``expected``; for an exact
    function (bound 0) 0 where ``got`` is the correctly rounded value, else inf."""
    if bound == 0:
        rounded = ref.round_array(expected, dtype)
        same = (got.reshape(-1) == rounded) | (np.isnan(got.reshape(-1)) & np.isnan(rounded))
        return np.where(same, 0.0, np.inf)
    return ref.ulp_error(got, expected, dtype)


def _call(fa, act, direction, x, g=None, **params):
    if direction == "forward":
        return calls.forward(fa, act, x, **params)
    return calls.backward(fa, act, g, x, **params)


# ---------------------------------------------------------------------------
# The registry's special-value tables

SPECIAL_ROWS = [pytest.param(a, row, id=f"{a.name}[{i}:x={row.x}"
                             + "".join(f",{k}={v}" for k, v in row.params) + "]")
                for a in ACTIVATIONS for i, row in enumerate(a.specials)]


def _check_special(got, expected, x, bound, what):
    got = got.reshape(-1)[0]
    dtype = got.dtype
    exp = dtype.type(expected)
    if math.isnan(expected):
        assert np.isnan(got), f"{what}: got {got!r}, expected NaN"
        return
    assert calls.ulp_distance(np.array([got]), np.array([exp]))[0] <= bound, (
        f"{what}: got {got!r}, expected {exp!r}")
    if exp == 0 and x == 0:  # f(+-0): the registry states the sign of the zero
        assert np.signbit(got) == np.signbit(exp), f"{what}: got {got!r}, expected {exp!r}"


@pytest.mark.parametrize("act,row", SPECIAL_ROWS)
def test_registry_specials(fa, dtype, act, row):
    params = dict(row.params)
    x = np.array([row.x], dtype=dtype)
    if row.y is not None:
        got = calls.forward(fa, act, x, **params)
        _check_special(got, row.y, row.x, _bound(act, "forward"), f"{act.name}({row.x})")
    if row.grad is not None:
        got = calls.backward(fa, act, np.ones_like(x), x, **params)
        _check_special(got, row.grad, row.x, _bound(act, "backward"), f"{act.name}'({row.x})")


# ---------------------------------------------------------------------------
# Infinities: the limits of the reference


HUGE = ref.mp.mpf(2) ** 20000  # beyond every dtype: the reference's value there is the limit


@pytest.mark.parametrize("act", ELEMENTWISE, ids=_ids(ELEMENTWISE))
@pytest.mark.parametrize("sign", [1, -1], ids=["+inf", "-inf"])
def test_infinities_give_limits(fa, dtype, act, sign):
    """f(+-inf) and f'(+-inf) are the limits of f and f' (the reference at
    +-2**20000, correctly rounded), for every element-wise function."""
    params = default_kwargs(act)
    f, fprime = ref.REFERENCE[act.name]
    pdtype = dtype if act.exact else None
    x = np.array([sign * np.inf], dtype=dtype)
    for direction, fn in (("forward", f), ("backward", fprime)):
        expected = fn(sign * HUGE, params, pdtype)
        got = _call(fa, act, direction, x, np.ones_like(x), **params)
        err = _errors(got, [expected], dtype, _bound(act, direction))[0]
        assert err <= _bound(act, direction), (
            f"{act.name} {direction} at {x[0]}: got {got.reshape(-1)[0]!r}, "
            f"expected {ref.round_to(expected, dtype)!r}")


# ---------------------------------------------------------------------------
# NaN propagation

LENGTHS = range(1, 34)


def _nan_positions(n):
    return sorted({0, n - 1, n // 2, (n * 2) // 7})


def _finite_inputs(act, n, dtype, seed):
    """Values spread over the domain and beyond it (so flat regions, where
    f' = 0, are included), with a few zeros."""
    rng = np.random.default_rng(seed)
    lo, hi = act.domain
    x = rng.uniform(1.5 * lo - 1, 1.5 * hi + 1, n)
    x[rng.integers(0, n, n // 5)] = 0.0
    return x.astype(dtype)


def _maxout_pieces(n):
    return next(p for p in (3, 2, 1) if n % p == 0)


def _nan_case(act, n, dtype, seed):
    """(params, x, g) of length n for ``act`` with finite values everywhere."""
    params = {}
    x = _finite_inputs(act, n, dtype, seed)
    out_len = n
    if act.kind == R.MAXOUT:
        params["pieces"] = _maxout_pieces(n)
        out_len = n // params["pieces"]
    g = np.random.default_rng(seed + 1).uniform(-2, 2, out_len).astype(dtype)
    # (the softmax kind's backward takes y; any finite values do here)
    return params, x, g


def _expected_nan_mask(act, n, where, into, params):
    """Where the result must be NaN when ``into`` ('x' or 'g') is NaN at ``where``.

    element-wise, prelu: those elements; softmax kind: the whole slice, except
    for a NaN in the backward's y (see test_nan_in_x); maxout: forward, the
    units whose group holds a NaN; backward, a NaN x gives NaN at that x, a
    NaN in a unit's grad_output gives NaN over its whole group.
    """
    mask = np.zeros(n, bool)
    if act.kind == R.SOFTMAX and into != "x":
        mask[:] = True
        return mask
    if act.kind == R.MAXOUT:
        k = params["pieces"]
        if into == "forward":
            out = np.zeros(n // k, bool)
            out[np.asarray(where) // k] = True
            return out
        if into == "g":
            for j in where:
                mask[j * k:(j + 1) * k] = True
            return mask
    mask[list(where)] = True
    return mask


ALL_IDS = _ids(ACTIVATIONS)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ALL_IDS)
def test_nan_in_x(fa, dtype, act):
    """NaN at several positions of arrays of length 1..33: NaN exactly where the
    contract says, forward and backward, and nowhere else."""
    for n in LENGTHS:
        params, x, g = _nan_case(act, n, dtype, seed=n)
        where = _nan_positions(n)
        x[where] = np.nan
        y = calls.forward(fa, act, x, **params)
        expected = _expected_nan_mask(act, n, where, "forward", params)
        np.testing.assert_array_equal(np.isnan(y), expected, err_msg=f"{act.name} n={n}")
        gi = calls.backward(fa, act, g, x, **params)
        expected = _expected_nan_mask(act, n, where, "x", params)
        if act.kind == R.SOFTMAX:
            # The backward takes y: a NaN y_k gives NaN at k; whether it spreads
            # over the slice depends on the formula (softmax's sums g*y,
            # log_softmax's only g), so only the element itself is required.
            assert np.isnan(gi[expected]).all(), f"{act.name}_backward n={n}, NaN in y"
        else:
            np.testing.assert_array_equal(np.isnan(gi), expected,
                                          err_msg=f"{act.name}_backward n={n}, NaN in x")


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ALL_IDS)
def test_nan_in_grad_output(fa, dtype, act):
    for n in LENGTHS:
        params, x, g = _nan_case(act, n, dtype, seed=n)
        where = [i for i in _nan_positions(g.size)]
        g[where] = np.nan
        gi = calls.backward(fa, act, g, x, **params)
        expected = _expected_nan_mask(act, n, where, "g", params)
        np.testing.assert_array_equal(np.isnan(gi), expected,
                                      err_msg=f"{act.name}_backward n={n}, NaN in grad_output")


@pytest.mark.parametrize("act", SOFTMAX_KIND, ids=_ids(SOFTMAX_KIND))
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_nan_stays_in_its_slice(fa, dtype, act, axis):
    x = np.random.default_rng(0).uniform(-5, 5, (4, 6)).astype(dtype)
    x = x if axis == -1 else np.ascontiguousarray(x.T)
    clean = getattr(fa, act.name)(x, axis=axis)
    bad = x.copy()
    idx = (2, 3) if axis == -1 else (3, 2)
    bad[idx] = np.nan
    y = getattr(fa, act.name)(bad, axis=axis)
    slice_mask = np.zeros(x.shape, bool)
    if axis == -1:
        slice_mask[2, :] = True
    else:
        slice_mask[:, 2] = True
    assert np.isnan(y[slice_mask]).all()
    np.testing.assert_array_equal(y[~slice_mask], clean[~slice_mask])
    g = np.ones_like(x)
    g[idx] = np.nan
    gi = getattr(fa, act.name + "_backward")(g, clean, axis=axis)
    assert np.isnan(gi[slice_mask]).all() and not np.isnan(gi[~slice_mask]).any()


@pytest.mark.parametrize("act", PRELU_KIND, ids=_ids(PRELU_KIND))
def test_prelu_grad_weight_nan(fa, dtype, act):
    """grad_weight[c] sums g*x over x <= 0 of channel c: a NaN x, or a NaN g at
    an x <= 0, makes that channel's sum NaN and no other's; a NaN g at x > 0
    contributes nothing (notes/semantics.md)."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, (2, 4, 5)).astype(dtype)
    x[:, 3] = np.abs(x[:, 3]) + 1  # channel 3 all positive
    w = np.full(4, 0.25, dtype)
    g = rng.uniform(-1, 1, x.shape).astype(dtype)
    x[1, 0, 2] = np.nan
    neg = np.argwhere(x[:, 1] <= 0)[0]
    g[neg[0], 1, neg[1]] = np.nan
    g[0, 3, 0] = np.nan  # x > 0 there
    gi, gw = fa.prelu_backward(g, x, w)
    np.testing.assert_array_equal(np.isnan(gw), [True, True, False, False])
    assert np.isnan(gi[0, 3, 0]) and np.isnan(gi[1, 0, 2])


# ---------------------------------------------------------------------------
# Signed zeros and subnormals


def _subnormals(dtype):
    fi = np.finfo(dtype)
    s = fi.smallest_subnormal
    v = np.array([s, 2 * s, 3 * s, 1000 * s, fi.tiny / 3, fi.tiny - s, fi.tiny], dtype=dtype)
    return np.concatenate([v, -v, np.array([0.0, -0.0], dtype=dtype)])


@pytest.mark.parametrize("act", ELEMENTWISE, ids=_ids(ELEMENTWISE))
def test_subnormal_inputs(fa, dtype, act):
    """f and f' at +-0 and subnormal x, against the reference (subnormal results
    are kept: an exact function returns x or slope*x unflushed)."""
    params = default_kwargs(act)
    f, fprime = ref.REFERENCE[act.name]
    pdtype = dtype if act.exact else None
    x = _subnormals(dtype)
    for direction, fn in (("forward", f), ("backward", fprime)):
        expected = ref.evaluate(fn, x, params, pdtype)
        got = _call(fa, act, direction, x, np.ones_like(x), **params)
        bound = _bound(act, direction)
        err = _errors(got, expected, dtype, bound)
        assert err.max() <= bound, (
            f"{act.name} {direction}: {ref.worst(err, ('x', x), ('got', got))}")
        # (implied by the bound, said for the failure message's sake)
        smallest = np.finfo(dtype).smallest_subnormal
        clear = np.abs(ref.round_array(expected, dtype)) > (bound + 1) * smallest
        assert (got[clear] != 0).all(), f"{act.name} {direction}: subnormal flushed to 0"


@pytest.mark.parametrize("act", ELEMENTWISE, ids=_ids(ELEMENTWISE))
def test_subnormal_gradients(fa, dtype, act):
    """A subnormal grad_output gives the (subnormal) g*f'(x), not 0."""
    params = default_kwargs(act)
    f, fprime = ref.REFERENCE[act.name]
    pdtype = dtype if act.exact else None
    x = ref.sample_points(act.domain, dtype, n=64, seed=3)
    x = x[np.abs(x) > 0.1][::4]
    sub = _subnormals(dtype)
    g = np.resize(sub[sub != 0], x.size)
    fp = ref.evaluate(fprime, x, params, pdtype)
    expected = [ref.mpf(gi) * d for gi, d in zip(g.tolist(), fp)]
    got = calls.backward(fa, act, g, x, **params)
    err = _errors(got, expected, dtype, _bound(act, "backward"))
    assert err.max() <= _bound(act, "backward"), (
        f"{act.name}_backward: {ref.worst(err, ('x', x), ('g', g), ('got', got))}")


@pytest.mark.parametrize("act", SOFTMAX_KIND, ids=_ids(SOFTMAX_KIND))
def test_softmax_subnormal_results(fa, dtype, act):
    """softmax([0, d]) with exp(d) subnormal keeps it (no flush to zero)."""
    fi = np.finfo(dtype)
    d = math.log(float(fi.tiny)) - 4  # exp(d) ~ tiny/55: subnormal
    x = np.array([0.0, d, d - 1.5], dtype=dtype)
    expected = ref.AXIS_REFERENCE[act.name](x)
    got = getattr(fa, act.name)(x)
    err = ref.ulp_error(got, expected, dtype)
    assert err.max() <= FORWARD_ULP, f"{act.name}: {ref.worst(err, ('x', x), ('got', got))}"
    if act.name == "softmax":
        assert (got[1:] != 0).all()


# ---------------------------------------------------------------------------
# Huge finite inputs


@pytest.mark.parametrize("act", ELEMENTWISE, ids=_ids(ELEMENTWISE))
def test_extreme_finite_values(fa, dtype, act):
    """At +-max of the dtype (and +-max/3, +-1e4): f, f' and g*f' with g = +-max
    are finite exactly where the true result rounds to a finite value, and
    within the accuracy bounds."""
    params = default_kwargs(act)
    f, fprime = ref.REFERENCE[act.name]
    pdtype = dtype if act.exact else None
    m = float(np.finfo(dtype).max)
    x = np.array([m, -m, m / 3, -m / 3, 1e4, -1e4, 1000.0, -1000.0], dtype=dtype)
    ex = [ref.evaluate(f, x, params, pdtype),
          ref.evaluate(fprime, x, params, pdtype)]
    gbig = np.resize(np.array([m, -m], dtype=dtype), x.size)
    ex.append([ref.mpf(gi) * d for gi, d in zip(gbig.tolist(), ex[1])])
    for (direction, g), expected in zip((("forward", None), ("backward", np.ones_like(x)),
                                         ("backward", gbig)), ex):
        got = _call(fa, act, direction, x, g, **params)
        finite = np.isfinite(ref.round_array(expected, dtype))
        np.testing.assert_array_equal(np.isfinite(got), finite,
                                      err_msg=f"{act.name} {direction} at {x}: {got}")
        err = _errors(got, expected, dtype, _bound(act, direction))
        assert err.max() <= _bound(act, direction), (
            f"{act.name} {direction}: {ref.worst(err, ('x', x), ('got', got))}")


@pytest.mark.parametrize("act", SOFTMAX_KIND, ids=_ids(SOFTMAX_KIND))
def test_softmax_extreme_finite_values(fa, dtype, act):
    m = float(np.finfo(dtype).max)
    rows = [[0.0, -1e4], [m, -m], [m, m], [-m, -m], [m, 0.0], [-m, 0.0, 1.0], [1e4, -1e4, 0.0]]
    for row in rows:
        x = np.array(row, dtype=dtype)
        expected = ref.AXIS_REFERENCE[act.name](x)
        got = getattr(fa, act.name)(x)
        np.testing.assert_array_equal(np.isfinite(got),
                                      np.isfinite(ref.round_array(expected, dtype)),
                                      err_msg=f"{act.name}({row}) = {got}")
        err = ref.ulp_error(got, expected, dtype)
        assert err.max() <= FORWARD_ULP, f"{act.name}({row}): {ref.worst(err, ('got', got))}"


def test_log_softmax_contract_example(fa, dtype):
    """CONTRACT.md section 3: log_softmax([0, -1e4]) = [0, -1e4]; softmax gives [1, 0]."""
    x = np.array([0.0, -1e4], dtype=dtype)
    np.testing.assert_array_equal(fa.log_softmax(x), np.array([0.0, -1e4], dtype=dtype))
    np.testing.assert_array_equal(fa.softmax(x), np.array([1.0, 0.0], dtype=dtype))


# ---------------------------------------------------------------------------
# Softmax's IEEE rules


@pytest.mark.parametrize("act", SOFTMAX_KIND, ids=_ids(SOFTMAX_KIND))
def test_softmax_infinite_slices(fa, dtype, act):
    """A slice whose max is +inf, or whose elements are all -inf, is NaN; -inf
    next to finite values is a 0 weight (log: -inf); other slices are
    unaffected."""
    inf = np.inf
    x = np.array([[inf, 1.0, 2.0], [inf, inf, 0.0], [-inf, -inf, -inf], [inf, -inf, 0.0],
                  [-inf, 0.0, 1.0], [0.0, 1.0, 2.0]], dtype=dtype)
    y = getattr(fa, act.name)(x)
    assert np.isnan(y[:4]).all()
    assert not np.isnan(y[4:]).any()
    finite = np.array([0.0, 1.0], dtype=dtype)
    rest = getattr(fa, act.name)(finite)
    zero = 0.0 if act.name == "softmax" else -inf
    np.testing.assert_array_equal(y[4], np.concatenate([[zero], rest]).astype(dtype))
    np.testing.assert_array_equal(y[5], getattr(fa, act.name)(x[5]))


# ---------------------------------------------------------------------------
# No warnings for finite inputs


def _extreme_mix(act, dtype, n):
    fi = np.finfo(dtype)
    special = np.array([0.0, -0.0, fi.smallest_subnormal, -fi.smallest_subnormal, fi.tiny,
                        -fi.tiny, 1.0, -1.0, 1e4, -1e4, fi.max, -fi.max, fi.max / 2, -fi.max / 2],
                       dtype=dtype)
    x = np.resize(np.concatenate([special, ref.sample_points(act.domain, dtype, n=64)]), n)
    return x


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ALL_IDS)
def test_no_warnings_for_finite_inputs(fa, dtype, act):
    """No NumPy warning (errstate raise turns them into FloatingPointError) and
    no Python warning, forward and backward, for finite inputs that include
    +-0, subnormals and +-max, with grad_output as extreme."""
    n = 96
    x = _extreme_mix(act, dtype, n)
    g = np.roll(x, 5)
    params = {}
    shape = (8, 12)
    if act.kind == R.MAXOUT:
        params["pieces"] = 3
        gshape = (8, 4)
    else:
        gshape = shape
    x = x.reshape(shape)
    g = np.resize(g, gshape).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            y = calls.forward(fa, act, x, **params)
            # the softmax kind's backward takes y (finite, as its input must be)
            src = np.where(np.isfinite(y), y, 0).astype(dtype) if act.kind == R.SOFTMAX else x
            calls.backward(fa, act, g, src, **params)
            calls.backward(fa, act, np.ones(gshape, dtype), src, **params)
            if act.backward_from_y:
                getattr(fa, act.name + "_backward")(g, y=y)


# ---------------------------------------------------------------------------
# Kink conventions against PyTorch's autograd


def _kink_cases():
    cases = []
    for act in ELEMENTWISE + PRELU_KIND:
        variants = ref.param_cases(act) if act.kind == R.ELEMENTWISE else [{}]
        for case in variants:
            cases.append(pytest.param(act, case, id=f"{act.name}[{ref.case_id(case)}]"))
    return cases


def _kink_points(act, params, dtype):
    """Each kink (reference.KINKS), each finite special, +-0, and their two
    neighbours in ``dtype``."""
    pts = set(float(k) for k in ref.KINKS[act.name](params))
    pts |= {row.x for row in act.specials if math.isfinite(row.x)}
    pts |= {0.0}
    out = []
    for p in sorted(pts):
        v = dtype.type(p)
        out += [np.nextafter(v, dtype.type(-np.inf)), v, np.nextafter(v, dtype.type(np.inf))]
    return np.array(out + [dtype.type(-0.0)], dtype=dtype)


@pytest.mark.parametrize("act,case", _kink_cases())
def test_kinks_match_torch(fa, dtype, act, case):
    """f' at every kink (and beside it) equals torch.nn.functional's autograd in
    float64 on the same inputs. rtol 1e-6: the conventions differ by O(1)
    (0 vs 1/6, slope vs 1), and torch's hardsigmoid backward uses a float32
    1/6 even in float64. (The forward is not compared: torch's is not
    accurate at subnormals, e.g. celu(-5e-324, alpha=2.5) = -0 there; the
    forward is checked against mpmath instead.)"""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    params = default_kwargs(act, **case)
    x = _kink_points(act, params, dtype)
    xt = torch.tensor(x.astype(np.float64), dtype=torch.float64, requires_grad=True)
    names = {"torch": torch, "F": F, "x": xt, "np": np, **params}
    yt = eval(act.peers[1], names)  # the registry's PyTorch expression of f
    yt.backward(torch.ones_like(yt))
    gi = calls.backward(fa, act, np.ones_like(x), x, **case)
    np.testing.assert_allclose(gi, xt.grad.numpy(), rtol=1e-6, atol=0,
                               err_msg=f"{act.name}_backward at {x}")
