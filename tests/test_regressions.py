"""Defects found by the boundary fuzzer (tests/fuzz_boundary.py), one test each.

A defect in the native kernels, which this test suite cannot fix, is marked
``xfail(strict=True)``: the test fails the suite as soon as the kernel is
fixed, so that the marker is removed and the test guards the fix.
"""

import numpy as np
import pytest

import calls
from calls import assert_same
from conftest import ACTIVATIONS, BACKEND_NAMES, default_kwargs, functions_for, ids
from fastact import _registry as R

WITH_BIAS = tuple(a for a in ACTIVATIONS if calls.has_bias(a))
PRELUS = tuple(a for a in ACTIVATIONS if a.kind == R.PRELU)


def _kwargs(act, **overrides):
    kw = default_kwargs(act, **overrides)
    if act.kind == R.PRELU:
        kw["weight"] = np.array([0.25, -1.5, 2.0])[:overrides.get("channels", 3)]
        kw.pop("channels", None)
    return kw


@pytest.mark.parametrize("direction", calls.DIRECTIONS)
@pytest.mark.parametrize("act", WITH_BIAS, ids=ids(WITH_BIAS))
def test_out_overlapping_the_bias_is_as_if_copied(fa, act, direction, dtype):
    """fuzz_boundary: ``out`` whose last row is the bias gave rows computed with the
    bias already overwritten (the driver copied only x and grad_output apart from
    out). CONTRACT.md section 2: as if the inputs had been copied first."""
    rng = np.random.default_rng(3)
    x = calls.values(rng, (6, 3), dtype)
    g = calls.values(rng, (6, 3), dtype)
    kw = _kwargs(act)
    inputs = (x,) if direction == "forward" else (g, x)
    for row in (0, -1):
        out = calls.values(rng, (6, 3), dtype)
        bias = out[row]  # C-contiguous, the compute dtype: the kernels write out directly
        expected = calls.call(fa, act, direction, inputs, bias=bias.copy(), **kw)
        got = calls.call(fa, act, direction, inputs, bias=bias, out=out, **kw)
        assert got is out
        assert_same(got, expected, f"{act.name} {direction}, bias = out[{row}]")


@pytest.mark.parametrize("act", PRELUS, ids=ids(PRELUS))
def test_out_overlapping_the_prelu_weight_is_as_if_copied(fa, act, dtype):
    """The same for prelu's weight: a slice of ``out`` along the channel axis."""
    rng = np.random.default_rng(4)
    x = calls.values(rng, (2, 3, 4), dtype, -3, 3)
    g = calls.values(rng, (2, 3, 4), dtype)
    for direction, inputs in (("forward", (x,)), ("backward", (g, x))):
        for strided in (True, False):
            out = calls.values(rng, (2, 3, 4), dtype)
            # a strided slice along the channel axis, or C-contiguous (used in place
            # by the kernels unless the driver copies it)
            w = out[0, :, 0] if strided else out.reshape(-1)[:3]
            w[...] = np.array([0.25, -1.5, 2.0], dtype)
            expected = calls.call(fa, act, direction, inputs, weight=w.copy(), axis=1)
            got = calls.call(fa, act, direction, inputs, weight=w, axis=1, out=out)
            assert got is out
            assert_same(got, expected, f"{act.name} {direction}, weight inside out")


def test_numpy_backend_tanh_backward_huge_grad_output():
    """fuzz_boundary: the NumPy backend's tanh_backward(1.16e308, 0.125) overflowed to
    inf (4*g computed first); the true result, 1.14e308, is finite (CONTRACT.md
    section 3: large finite inputs never overflow where the result is finite)."""
    for name in BACKEND_NAMES:
        fa = functions_for(name)
        g = np.array([1.156231086616979e308, 1.6e308, -1.6e308])
        x = np.array([0.125, -0.3, 0.125])
        got = fa.tanh_backward(g, x)
        expected = g * (1 - np.tanh(x) ** 2)  # relative error ~1e-16 here
        assert np.isfinite(got).all(), (name, got)
        np.testing.assert_allclose(got, expected, rtol=1e-14)


@pytest.mark.parametrize("beta", [0.0, -0.0])
@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_swish_beta_zero_at_infinity(backend, beta, dtype):
    """fuzz_boundary: with beta = 0, swish(x) = x/2 for every x, so swish(+-inf) =
    +-inf and swish'(+-inf) = 1/2 (CONTRACT.md section 3: the mathematical limit).
    The native kernels formed beta*x = 0*inf = NaN and returned NaN (fixed in
    fa_math.h's mul_dd: a zero factor gives the limit 0)."""
    fa = functions_for(backend)
    x = np.array([np.inf, -np.inf, 2.0], dtype)
    assert_same(fa.swish(x, beta), np.array([np.inf, -np.inf, 1.0], dtype), "swish")
    assert_same(fa.swish_backward(np.ones(3, dtype), x, beta), np.full(3, 0.5, dtype),
                "swish_backward")


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_swish_beta_zero_keeps_nan(backend, dtype):
    """fuzz_boundary 200:1317: the fix above for beta = 0 at +-inf first also
    turned x = NaN into 0, so swish_backward(g, NaN, beta=0) was g/2, not NaN."""
    fa = functions_for(backend)
    x = np.array([np.nan, -3.0, np.inf], dtype)
    g = np.array([-3.0, np.nan, 1.0], dtype)
    got = fa.swish_backward(g, x, 0.0)
    assert np.isnan(got[:2]).all(), got
    assert got[2] == 0.5
    assert np.isnan(fa.swish(x, 0.0)[0])


def test_rrelu_training_slopes_bit_identical_across_backends(dtype):
    """Hypothesis (test_properties) found rrelu_backward 1 ULP apart between the
    backends once x86-64-v3 builds could fuse a*b + c into an FMA: the slope
    lower + (upper - lower)*u must round the product on its own, as
    docs/semantics.md specifies (rrelu is exact, CONTRACT.md s.4)."""
    if "native" not in BACKEND_NAMES:
        pytest.skip("no native backend")
    native, numpy_ = functions_for("native"), functions_for("numpy")
    x = np.random.default_rng(3).normal(size=20000).astype(dtype)
    g = np.ones_like(x)
    for kwargs in ({"training": True, "seed": 11}, {"lower": 0.1, "upper": 0.9,
                                                    "training": True, "seed": 5}):
        assert_same(native.rrelu(x, **kwargs), numpy_.rrelu(x, **kwargs), "rrelu")
        assert_same(native.rrelu_backward(g, x, **kwargs),
                    numpy_.rrelu_backward(g, x, **kwargs), "rrelu_backward")


def test_celu_negative_alpha_large_quotient(dtype):
    """fuzz_boundary 200 (issue 4): with alpha < 0, x/alpha is positive and up to
    ~710, and its rounding was amplified ~x/alpha times in expm1 (native float64
    25 ULP at celu(-740, alpha=-1.5)); within the contract against mpmath."""
    import reference as ref
    x = np.array([-740.0, -300.5, -20.25, -1.75, -0.3], dtype)
    for backend in BACKEND_NAMES:
        got = functions_for(backend).celu(x, alpha=-1.5)
        want = ref.evaluate(ref.REFERENCE["celu"][0], x, {"alpha": -1.5}, None)
        err = ref.ulp_error(got, want, dtype)
        assert err.max() <= 2, (backend, err, got)


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_elu_backward_large_alpha_is_one_above_zero(backend, dtype):
    """fuzz_boundary 200: the NumPy backend formed alpha*e + (1 - alpha) for
    x > 0, which cancels to 0 for alpha = 1e300 (and is inexact for others)."""
    fa = functions_for(backend)
    x = np.array([0.5, 2.2e-38, 3.0, -1.0], dtype)
    g = np.array([1.0, -3.0, 0.25, 0.0], dtype)
    for alpha in (1e300 if dtype == np.float64 else 1e30, 3.7):
        got = fa.elu_backward(g, x, alpha=alpha)
        assert_same(got[:3], g[:3], f"elu_backward alpha={alpha}")
    got = fa.selu_backward(g, x)
    assert_same(got[:3], (g[:3] * np.asarray(R.SELU_SCALE, dtype)).astype(dtype), "selu_backward")


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_elu_backward_huge_alpha_times_large_g(backend):
    """fuzz_boundary 300:599306 (under ASan): g*alpha*e^x with g = 1e30,
    alpha = 1e300, x = -88.7 is 3.0e291, but native formed g*(alpha*m*s1)
    before the last scale s2 and overflowed to inf."""
    import reference as ref
    fa = functions_for(backend)
    x = np.array([-88.7, -700.0, -30.0, -745.5])
    g = np.array([1e30, 1e8, -1e10, 3e305])
    got = fa.elu_backward(g, x, alpha=1e300)
    want = [ref.mpf(gi) * ref.REFERENCE["elu"][1](ref.mpf(xi), {"alpha": 1e300})
            for gi, xi in zip(g, x)]
    err = ref.ulp_error(got, want, np.float64)
    assert err.max() <= 4, (got, err)


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_gelu_tanh_backward_beside_the_root_series(backend):
    """The exhaustive script's float64 gradient sweep (issue 3): gelu'
    (tanh form) just outside the root series' radius, where sigmoid(2u) and
    x*(2u)'*sigmoid'(2u) cancel to a fifth, was 8.4 ULP off (x =
    -0.8956811918883443) with each term rounded on its own."""
    import reference as ref
    fa = functions_for(backend)
    root = R.BY_NAME["gelu"].grad_root_series[1].hi
    x = np.concatenate([[-0.8956811918883443],
                        np.linspace(root - 0.6, root - 0.124, 150),
                        np.linspace(root + 0.124, root + 0.6, 150)])
    got = fa.gelu_backward(np.ones_like(x), x, approximate="tanh")
    want = [ref.REFERENCE["gelu"][1](ref.mpf(xi), {"approximate": "tanh"}) for xi in x]
    err = ref.ulp_error(got, want, np.float64)
    assert err.max() <= 4, (x[err.argmax()], err.max())


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_mish_backward_beside_the_root_series(backend):
    """The exhaustive script's float64 gradient sweep (2e6 points): mish'
    at x = -1.0023 was 4.9 ULP off (native): e = exp(x) rounded, and every
    step of B and q = e^2 + 2e + 2 rounded, amplified by their dependence on
    e.  Now double-doubles throughout."""
    import reference as ref
    fa = functions_for(backend)
    root = R.BY_NAME["mish"].grad_root_series[0].hi
    x = np.concatenate([[-1.0023098017407137, -0.8696808060749934],
                        np.linspace(root - 0.8, root - 0.124, 150),
                        np.linspace(root + 0.124, root + 0.8, 150)])
    got = fa.mish_backward(np.ones_like(x), x)
    want = [ref.REFERENCE["mish"][1](ref.mpf(xi), {}) for xi in x]
    err = ref.ulp_error(got, want, np.float64)
    assert err.max() <= 4, (x[err.argmax()], err.max())


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_celu_backward_negative_alpha_huge_derivative(backend):
    """fuzz_boundary 200 (issue 4): celu'(x) = exp(x/alpha) exceeds float64's
    range for alpha < 0 (x=-365, alpha=-0.5: e^730) while g*celu'(x) is finite;
    native clamped exp at 710 and returned g*e^710, 9 orders of magnitude off,
    and the NumPy backend formed exp(x/alpha) before multiplying by g (inf, or
    0*inf = NaN for g = 0)."""
    import reference as ref
    fa = functions_for(backend)
    x = np.array([-365.0, -9416.0, -300.0, -350.5, -600.0])
    g = np.array([8.05e-23, 0.0, 1e-200, -3e-290, 1e-300])
    got = fa.celu_backward(g, x, alpha=-0.5)
    want = [ref.mpf(gi) * ref.REFERENCE["celu"][1](ref.mpf(xi), {"alpha": -0.5})
            for gi, xi in zip(g, x)]
    assert got[1] == 0
    err = ref.ulp_error(got, want, np.float64)
    assert err.max() <= 4, (got, err)


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_celu_backward_negative_alpha_huge_derivative_special(backend, dtype):
    """The same region (exp(x/alpha) beyond the dtype's, or float64's, range)
    with special values: g = +-0 gives a zero of g's sign (never 0*inf = NaN),
    also at x = -inf, where the limit of g*celu'(x) is 0; g = +-inf, or a g
    whose product overflows, gives +-inf; NaN in g or x stays NaN. And a
    finite product in float32 (computed in float64, rounded once)."""
    import reference as ref
    fa = functions_for(backend)
    inf, nan = np.inf, np.nan
    x = np.array([-365, -9416, -1e30, -inf, -inf, -inf, -365, -365, -365, nan, -0.0, 2], dtype)
    g = np.array([0.0, -0.0, 0.0, 0.0, 2.0, -2.0, inf, -inf, 0.01, 0.0, 1.5, -0.0], dtype)
    with np.errstate(all="raise"):
        got = fa.celu_backward(g, x, alpha=-0.5)
    want = np.array([0.0, -0.0, 0.0, 0.0, inf, -inf, inf, -inf, inf, nan, 1.5, -0.0], dtype)
    assert_same(got, want, f"celu_backward alpha=-0.5 {dtype.name}")
    x = np.array([-60.0, -120.0, -30.0], dtype)
    g = np.array([1e-30, -1e-300, 3e-20], dtype)  # e^120, e^240, e^60
    got = fa.celu_backward(g, x, alpha=-0.5)
    want = [ref.mpf(gi) * ref.REFERENCE["celu"][1](ref.mpf(xi), {"alpha": -0.5})
            for gi, xi in zip(g, x)]
    err = ref.ulp_error(got, want, dtype)
    assert err.max() <= (0.501 if dtype == np.float32 else 4), (got, err)


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_celu_backward_negative_alpha_beyond_e1400(backend):
    """g*exp(x/alpha) for x/alpha between 1400 and 1454.2 is finite for a
    subnormal g (x=-727, alpha=-0.5, g=2**-1074: 1.4387e308), and beyond
    1454.2 it overflows for every g != 0 (1e-300*e^(2e300) is inf), as it
    does at x = -inf (fuzz_boundary 200:37835)."""
    import reference as ref
    fa = functions_for(backend)
    x = np.array([-727.0, -710.5, -800.0, -1e300, -np.inf])
    g = np.array([5e-324, -1e-320, 5e-324, 1e-300, -2.2250738585072014e-308])
    got = fa.celu_backward(g, x, alpha=-0.5)
    want = [ref.mpf(gi) * ref.REFERENCE["celu"][1](ref.mpf(xi), {"alpha": -0.5})
            for gi, xi in zip(g, x)]
    err = ref.ulp_error(got, want, np.float64)
    assert err.max() <= 4, (got, err)


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_celu_backward_negative_alpha_subnormal_g(backend):
    """g*exp(x/alpha) with exp(x/alpha) beyond float64's range and g subnormal
    (a few significant bits) is a normal number: rounded once, its error is
    0.5 ULP plus exp's, not that of a product rounded in the subnormals
    (native: 3.15e116 for 2.65e116)."""
    import reference as ref
    fa = functions_for(backend)
    x = np.array([-505.91081235012837, -405.91572600524273, -461.66322448628785])
    g = np.array([1e-323, 1e-323, -1.5e-323])
    got = fa.celu_backward(g, x, alpha=-0.5)
    want = [ref.mpf(gi) * ref.REFERENCE["celu"][1](ref.mpf(xi), {"alpha": -0.5})
            for gi, xi in zip(g, x)]
    err = ref.ulp_error(got, want, np.float64)
    assert err.max() <= 4, (got, err)


@pytest.mark.parametrize("backend", BACKEND_NAMES)
@pytest.mark.parametrize("name", ["celu", "elu"])
def test_alpha_times_expm1_rounds_once(backend, name):
    """The exhaustive script's float64 sweep with parameter variants: celu
    with alpha = 2.5 was 2.13 ULP off near x = -0.92 (native), beyond the
    contract's 2: expm1 (about 1.2 ULP near -0.37, where 2^k*p and 2^k - 1
    cancel) rounded before the product with alpha, which rounded again
    (elu with the same alpha has the same form).  Now expm1 is a
    double-double (FA(expm1_lo)) and the product rounds once."""
    import reference as ref
    fa = functions_for(backend)
    x = np.concatenate([[-0.9944614129273313, -0.9886800602516135, -1.0806053799390316],
                        np.linspace(-2.5, -0.01, 300)])
    p = {"alpha": 2.5}
    got = getattr(fa, name)(x, **p)
    want = [ref.REFERENCE[name][0](ref.mpf(xi), p) for xi in x]
    err = ref.ulp_error(got, want, np.float64)
    assert err.max() <= 2, (x[err.argmax()], err.max())


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_prelu_layouts_agree_bit_for_bit(backend, dtype):
    """Channels last (the rows are the channels) has its own native loops:
    forward and dL/dx along the rows, the weight's gradient as per-channel
    sums over the rows.  Each channel is summed in the same order as with the
    channels first, so the two layouts of the same data give the same bits."""
    fa = functions_for(backend)
    rng = np.random.default_rng(21)
    x = (rng.standard_normal((513, 37)) * 5).astype(dtype)
    x[::7, ::3] = 0.0
    x[5, 4], x[9, 2], x[11, 6] = np.inf, -np.inf, np.nan
    g = rng.standard_normal(x.shape).astype(dtype)
    w = rng.standard_normal(37).astype(dtype)
    y_last = fa.prelu(x, w, axis=1)
    gi_last, gw_last = fa.prelu_backward(g, x, w, axis=1)
    xt, gt = np.ascontiguousarray(x.T), np.ascontiguousarray(g.T)
    y_first = fa.prelu(xt, w, axis=0)
    gi_first, gw_first = fa.prelu_backward(gt, xt, w, axis=0)
    assert_same(y_last, y_first.T, "prelu")
    assert_same(gi_last, gi_first.T, "prelu_backward dL/dx")
    assert_same(gw_last, gw_first, "prelu_backward dL/dw")


@pytest.mark.parametrize("backend", BACKEND_NAMES)
@pytest.mark.parametrize("length", [7, 1000, (1 << 16) + 3])
def test_softmax_rows_same_bits_in_place_and_across_threads(backend, dtype, length):
    """The native last-axis softmax keeps exp(x - max) from its sum pass
    (float64 in y itself, float32 in a scratch row up to 2^16 elements,
    recomputed beyond) and takes the row maximum on vectors: in place, out of
    place and on any thread count the results are the same bits."""
    import fastact
    fa = functions_for(backend)
    rng = np.random.default_rng(22)
    x = (rng.standard_normal((3, length)) * 30).astype(dtype)
    x[1, length // 2] = np.nan
    x[2, -1] = x[2].max()  # a tie for the maximum
    for f in (fa.softmax, fa.log_softmax):
        with fastact.num_threads(1):
            want = f(x)
        with fastact.num_threads(2):
            assert_same(f(x), want, f.__name__)
            inplace = x.copy()
            f(inplace, out=inplace)
            assert_same(inplace, want, f.__name__ + " in place")
        assert np.isnan(want[1]).all() and not np.isnan(want[[0, 2]]).any()


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_swish_backward_beside_the_root_radius(backend):
    """The exhaustive script's float64 gradient sweep (1.2e7 points): swish'
    with beta = 1.702 at x = -0.676 (z = beta*x 0.128 from silu''s root, just
    outside the series' radius) was 4.65 ULP off (native): 1 + z + e is half
    of e there, so e's rounding, the rounded numerator and two rounded
    divisions added up.  Now double-doubles and one division."""
    import reference as ref
    fa = functions_for(backend)
    p = {"beta": 1.702}
    root = R.BY_NAME["silu"].grad_root_series[0].hi / p["beta"]
    x = np.concatenate([[-0.6760314192554048],
                        np.linspace(root - 1.0, root - 0.07, 150),
                        np.linspace(root + 0.07, root + 1.0, 150)])
    got = fa.swish_backward(np.ones_like(x), x, **p)
    want = [ref.REFERENCE["swish"][1](ref.mpf(xi), p) for xi in x]
    err = ref.ulp_error(got, want, np.float64)
    assert err.max() <= 4, (x[err.argmax()], err.max())
