"""High-precision references for the accuracy, special-value and gradient tests.

What the registry does not say about an activation, and the tests need, lives
here, keyed by registry name; ``test_accuracy.py::test_reference_covers_registry``
checks that every registry entry has its rows:

- :data:`REFERENCE`: ``name -> (f, fprime)``, the function and its derivative
  as mpmath functions ``f(x, p, dtype=None)`` of an ``mpf`` x and the dict
  ``p`` of parameters (``conftest.default_kwargs``), for every element-wise
  activation. Derivatives at kinks follow CONTRACT.md section 1 (PyTorch's
  autograd). For the piecewise-linear functions (registry ``exact``) a
  ``dtype`` rounds the parameters to it first, as the contract says they are.
- :data:`REFERENCE_FROM_Y`: ``name -> F`` with ``f'(x) = F(f(x))`` for the
  entries with ``backward_from_y``.
- :data:`KINKS`: ``name -> points(p)``, where f or f' is not smooth (or, for
  softplus, jumps by its threshold); gradient checks by finite differences stay
  away from them and the PyTorch comparison of the kink conventions looks at them.
- :data:`PARAM_VARIANTS`: ``name -> (dict, ...)`` of non-default parameters
  that the accuracy tests also sweep (choice parameters sweep all their
  choices on top of these, from the registry).

and helpers: :func:`round_to` (correct rounding of an ``mpf`` to float32 or
float64, subnormals included), :func:`ulp_error`, :func:`sample_points`,
:func:`saturation_points`, :func:`softmax_ref`, :func:`log_softmax_ref`,
:func:`refine_roots`.

The mpmath context is private (50 digits, ~166 bits), so the global
``mpmath.mp`` of other code is untouched. Functions are written in forms
whose exponentials never have a positive argument (the results need no more
than 166 bits relative accuracy in any regime), and an exponential of an
argument below -2**14 is a stand-in ``TINY = 2**-30000``: it and the true
value (< 2**-23000) are both far below every subnormal, so every rounding and
every ULP error computed from them is the same.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from fastact import _registry as R

mp = mpmath.MPContext()
mp.dps = 50

ZERO = mp.mpf(0)
ONE = mp.mpf(1)
HALF = mp.mpf(1) / 2
TINY = mp.mpf(2) ** -30000
_EXP_CUT = -(2 ** 14)

SELU_ALPHA = mp.mpf("1.6732632423543772848170429916717")
SELU_SCALE = mp.mpf("1.0507009873554804934193349852946")
SQRT2 = mp.sqrt(2)
SQRT_2PI = mp.sqrt(2 * mp.pi)
GELU_K = mp.sqrt(2 / mp.pi)
GELU_C = mp.mpf("0.044715")


def mpf(v):
    """The exact value of a float (Python, float32 or float64) as an mpf."""
    return mp.mpf(float(v))


# ---------------------------------------------------------------------------
# Building blocks that never overflow (see the module docstring)

def _exp(z):
    """exp(z) for z <= 0 (TINY below -2**14)."""
    return TINY if z < _EXP_CUT else mp.exp(z)


def _expm1(z):
    if z < _EXP_CUT:
        return -ONE + TINY
    if z > -_EXP_CUT:  # only celu with alpha < 0: far beyond every max finite
        return 1 / TINY
    return mp.expm1(z)


def _sigmoid(z):
    e = _exp(-abs(z))
    return 1 / (1 + e) if z >= 0 else e / (1 + e)


def _sigmoid_grad(z):
    e = _exp(-abs(z))
    return e / (1 + e) ** 2


def _softplus(z):
    """log(1 + exp(z))."""
    return z + mp.log1p(_exp(-z)) if z > 0 else mp.log1p(_exp(z))


def _phi_cdf(x):
    """Phi(x) = erfc(-x/sqrt 2)/2 (beyond |x| = 1024 its tail is TINY)."""
    if x > 1024:
        return ONE - TINY
    if x < -1024:
        return TINY
    return mp.erfc(-x / SQRT2) / 2


def _x_phi_pdf(x):
    """x*exp(-x*x/2)/sqrt(2 pi)."""
    return x * _exp(-x * x / 2) / SQRT_2PI


def _mish_t_q(x):
    """t = tanh(softplus(x)) and q with mish'(x) = t + x*q, q = sigmoid(x)*(1 - t**2),
    from e = exp(-|x|): for x <= 0 (e = exp(x)) n = e(e + 2), t = n/(n + 2),
    q = 4e(1 + e)/(n + 2)**2; for x > 0 the same divided through by exp(2x)."""
    e = _exp(-abs(x))
    if x <= 0:
        n = e * (e + 2)
        return n / (n + 2), 4 * e * (1 + e) / (n + 2) ** 2
    d = 1 + 2 * e + 2 * e * e
    return (1 + 2 * e) / d, 4 * (1 + e) * e * e / d ** 2


# ---------------------------------------------------------------------------
# Piecewise-linear functions: parameters rounded to the dtype first

def _in(dtype, v):
    """Parameter v as the contract's piecewise-linear kernels see it: rounded to
    ``dtype`` (when given), then exact."""
    return mpf(np.dtype(dtype).type(v)) if dtype is not None else mp.mpf(v)


def _relu(x, p, dtype=None):
    return x if x > 0 else ZERO


def _relu_d(x, p, dtype=None):
    return ONE if x > 0 else ZERO


def _clip(x, lo, hi):
    return lo if x < lo else (hi if x > hi else x)


def _hardtanh(x, p, dtype=None):
    return _clip(x, _in(dtype, p["min_val"]), _in(dtype, p["max_val"]))


def _hardtanh_d(x, p, dtype=None):
    return ONE if _in(dtype, p["min_val"]) < x < _in(dtype, p["max_val"]) else ZERO


def _relu6(x, p, dtype=None):
    return _clip(x, ZERO, mp.mpf(6))


def _relu6_d(x, p, dtype=None):
    return ONE if 0 < x < 6 else ZERO


def _leaky_relu(x, p, dtype=None):
    return x if x > 0 else _in(dtype, p["negative_slope"]) * x


def _leaky_relu_d(x, p, dtype=None):
    return ONE if x > 0 else _in(dtype, p["negative_slope"])


def rrelu_eval_slope(p, dtype=None):
    """rrelu's slope in eval mode: (lower + upper)/2, computed in float64 and
    rounded to ``dtype`` when given (CONTRACT.md: parameters first cast)."""
    if p.get("training"):
        raise ValueError("the reference covers rrelu in eval mode; training is "
                         "tested through its own properties")
    s = (p["lower"] + p["upper"]) / 2
    return _in(dtype, s) if dtype is not None else (mp.mpf(p["lower"]) + mp.mpf(p["upper"])) / 2


def _rrelu(x, p, dtype=None):
    return x if x > 0 else rrelu_eval_slope(p, dtype) * x


def _rrelu_d(x, p, dtype=None):
    return ONE if x > 0 else rrelu_eval_slope(p, dtype)


# ---------------------------------------------------------------------------
# Smooth functions

def _elu(x, p, dtype=None):
    return x if x > 0 else mp.mpf(p["alpha"]) * _expm1(x)


def _elu_d(x, p, dtype=None):
    return ONE if x > 0 else mp.mpf(p["alpha"]) * _exp(x)


def _selu(x, p, dtype=None):
    return SELU_SCALE * (x if x > 0 else SELU_ALPHA * _expm1(x))


def _selu_d(x, p, dtype=None):
    return SELU_SCALE * (ONE if x > 0 else SELU_ALPHA * _exp(x))


def _celu(x, p, dtype=None):
    a = mp.mpf(p["alpha"])
    return x if x > 0 else a * _expm1(x / a)


def _celu_d(x, p, dtype=None):
    a = mp.mpf(p["alpha"])
    if x > 0:
        return ONE
    z = x / a
    return 1 / TINY if z > -_EXP_CUT else (_exp(z) if z <= 0 else mp.exp(z))


def _softplus_f(x, p, dtype=None):
    beta = mp.mpf(p["beta"])
    z = beta * x
    return x if z > p["threshold"] else _softplus(z) / beta


def _softplus_d(x, p, dtype=None):
    z = mp.mpf(p["beta"]) * x
    return ONE if z > p["threshold"] else _sigmoid(z)


def _sigmoid_f(x, p, dtype=None):
    return _sigmoid(x)


def _sigmoid_d(x, p, dtype=None):
    return _sigmoid_grad(x)


def _log_sigmoid(x, p, dtype=None):
    return -_softplus(-x)


def _log_sigmoid_d(x, p, dtype=None):
    return _sigmoid(-x)


def _hardsigmoid(x, p, dtype=None):
    return _clip(x / 6 + HALF, ZERO, ONE)


def _hardsigmoid_d(x, p, dtype=None):
    return ONE / 6 if -3 < x < 3 else ZERO


def _tanh(x, p, dtype=None):
    if abs(x) < 1:  # (1 - e)/(1 + e) would cancel below 2**-166
        return mp.tanh(x)
    e = _exp(-2 * abs(x))
    return mp.sign(x) * (1 - e) / (1 + e)


def _tanh_d(x, p, dtype=None):
    e = _exp(-2 * abs(x))
    return 4 * e / (1 + e) ** 2


def _softsign(x, p, dtype=None):
    return x / (1 + abs(x))


def _softsign_d(x, p, dtype=None):
    return 1 / (1 + abs(x)) ** 2


def _swish(x, p, dtype=None):
    return x * _sigmoid(mp.mpf(p.get("beta", 1.0)) * x)


def _swish_d(x, p, dtype=None):
    z = mp.mpf(p.get("beta", 1.0)) * x
    return _sigmoid(z) + z * _sigmoid_grad(z)


def _hardswish(x, p, dtype=None):
    if x <= -3:
        return ZERO
    return x if x >= 3 else x * (x + 3) / 6


def _hardswish_d(x, p, dtype=None):
    if x <= -3:
        return ZERO
    return x / 3 + HALF if x < 3 else ONE


def _mish(x, p, dtype=None):
    return x * _mish_t_q(x)[0]


def _mish_d(x, p, dtype=None):
    t, q = _mish_t_q(x)
    return t + x * q


def _gelu_tanh_u2(x):
    return 2 * GELU_K * x * (1 + GELU_C * x * x)


def _gelu(x, p, dtype=None):
    if p["approximate"] == "tanh":
        return x * _sigmoid(_gelu_tanh_u2(x))
    return x * _phi_cdf(x)


def _gelu_d(x, p, dtype=None):
    if p["approximate"] == "tanh":
        u2 = _gelu_tanh_u2(x)
        du2 = 2 * GELU_K * (1 + 3 * GELU_C * x * x)
        return _sigmoid(u2) + x * du2 * _sigmoid_grad(u2)
    return _phi_cdf(x) + _x_phi_pdf(x)


REFERENCE = {
    "relu": (_relu, _relu_d),
    "relu6": (_relu6, _relu6_d),
    "hardtanh": (_hardtanh, _hardtanh_d),
    "leaky_relu": (_leaky_relu, _leaky_relu_d),
    "rrelu": (_rrelu, _rrelu_d),
    "elu": (_elu, _elu_d),
    "selu": (_selu, _selu_d),
    "celu": (_celu, _celu_d),
    "softplus": (_softplus_f, _softplus_d),
    "sigmoid": (_sigmoid_f, _sigmoid_d),
    "log_sigmoid": (_log_sigmoid, _log_sigmoid_d),
    "hardsigmoid": (_hardsigmoid, _hardsigmoid_d),
    "tanh": (_tanh, _tanh_d),
    "softsign": (_softsign, _softsign_d),
    "silu": (_swish, _swish_d),
    "swish": (_swish, _swish_d),
    "hardswish": (_hardswish, _hardswish_d),
    "mish": (_mish, _mish_d),
    "gelu": (_gelu, _gelu_d),
}

#: f'(x) as a function of y = f(x), for the entries with ``backward_from_y``.
REFERENCE_FROM_Y = {
    "relu": lambda y: ONE if y > 0 else ZERO,
    "sigmoid": lambda y: y * (1 - y),
    "tanh": lambda y: (1 - y) * (1 + y),
}

#: Points where f or f' is not smooth, as functions of the parameters.
KINKS = {
    "relu": lambda p: (0.0,),
    "relu6": lambda p: (0.0, 6.0),
    "hardtanh": lambda p: (p["min_val"], p["max_val"]),
    "leaky_relu": lambda p: (0.0,),
    "prelu": lambda p: (0.0,),
    "rrelu": lambda p: (0.0,),
    "elu": lambda p: (0.0,),
    "selu": lambda p: (0.0,),
    "celu": lambda p: (0.0,),
    "softplus": lambda p: (p["threshold"] / p["beta"],),
    "sigmoid": lambda p: (),
    "log_sigmoid": lambda p: (),
    "hardsigmoid": lambda p: (-3.0, 3.0),
    "tanh": lambda p: (),
    "softsign": lambda p: (),
    "silu": lambda p: (),
    "swish": lambda p: (),
    "hardswish": lambda p: (-3.0, 3.0),
    "mish": lambda p: (),
    "gelu": lambda p: (),
}

#: Non-default parameters the accuracy tests also sweep (besides every choice
#: of a choice parameter, which comes from the registry).
PARAM_VARIANTS = {
    "relu": (),
    "relu6": (),
    "hardtanh": ({"min_val": -0.3, "max_val": 2.5},),
    "leaky_relu": ({"negative_slope": 0.2},),
    "rrelu": ({"lower": 0.1, "upper": 0.3},),
    "elu": ({"alpha": 0.3},),
    "selu": (),
    "celu": ({"alpha": 2.5},),
    "softplus": ({"beta": 2.0, "threshold": 15.0},),
    "sigmoid": (),
    "log_sigmoid": (),
    "hardsigmoid": (),
    "tanh": (),
    "softsign": (),
    "silu": (),
    "swish": ({"beta": 1.702},),
    "hardswish": (),
    "mish": (),
    "gelu": (),
}


def param_cases(act):
    """Parameter dicts (overrides of the defaults) the accuracy tests sweep for
    ``act``: the defaults, every choice of each choice parameter, and
    :data:`PARAM_VARIANTS`."""
    cases = [{}]
    for param in act.params:
        if param.kind == "choice":
            cases += [{param.name: c} for c in param.choices if c != param.default]
    cases += [dict(v) for v in PARAM_VARIANTS.get(act.name, ())]
    return cases


def case_id(params):
    return ",".join(f"{k}={v}" for k, v in params.items()) or "defaults"


# ---------------------------------------------------------------------------
# Rounding and ULPs

def _format(dtype):
    fi = np.finfo(dtype)
    return fi.nmant + 1, int(fi.minexp), int(fi.maxexp)  # precision, emin, emax


def round_to(v, dtype):
    """``v`` (an mpf or a number) correctly rounded (to nearest, ties to even) to
    ``dtype``, subnormals and overflow to inf included. Returns a NumPy scalar."""
    dtype = np.dtype(dtype)
    v = mp.mpf(v)
    if mp.isnan(v):
        return dtype.type(np.nan)
    if mp.isinf(v):
        return dtype.type(np.inf if v > 0 else -np.inf)
    if v == 0:
        return dtype.type(0.0)
    prec, emin, emax = _format(dtype)
    sign, man, exp, bc = v._mpf_
    e = exp + bc - 1  # |v| in [2**e, 2**(e + 1))
    q = max(e, emin) - (prec - 1)  # exponent of the ulp at v
    if exp >= q:
        m = man << (exp - q)
    else:
        shift = q - exp
        m = man >> shift
        rem = man - (m << shift)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and m & 1):
            m += 1
    if m.bit_length() + q > emax:
        r = math.inf
    else:
        r = math.ldexp(m, q)
    return dtype.type(-r if sign else r)


def round_array(values, dtype):
    """An array of ``dtype`` of the correctly rounded ``values``."""
    return np.array([round_to(v, dtype) for v in values], dtype=dtype)


def ulp_of(r, dtype):
    """The ulp at a value ``r`` of ``dtype``: the spacing of its binade (the
    smallest subnormal for 0 and subnormals)."""
    prec, emin, _ = _format(dtype)
    r = abs(float(r))
    e = math.frexp(r)[1] - 1 if r else emin
    return math.ldexp(1.0, max(e, emin) - (prec - 1))


def ulp_error(got, ref, dtype):
    """|got - ref| in ulps of the exactly rounded reference, per element.

    ``got``: array of ``dtype``; ``ref``: a sequence of mpf (the true values).
    The ulp is that of ``round_to(ref)`` (the smallest subnormal where it is 0 or
    subnormal). Where the reference rounds to +-inf, ``got`` must be that inf
    (error 0, else inf); a NaN on either side alone is inf, on both sides 0.
    """
    dtype = np.dtype(dtype)
    got = np.asarray(got).reshape(-1)
    err = np.empty(got.size)
    for i, (g, v) in enumerate(zip(got.tolist(), ref)):
        if math.isnan(g) or mp.isnan(v):
            err[i] = 0.0 if (math.isnan(g) and mp.isnan(v)) else math.inf
            continue
        r = float(round_to(v, dtype))
        if math.isinf(r) or math.isinf(g):
            err[i] = 0.0 if g == r else math.inf
            continue
        err[i] = float(abs(mp.mpf(g) - v) / ulp_of(r, dtype))
    return err


def worst(err, *columns):
    """Text naming the worst element of ``err`` and the same element of each
    (name, array) column, for assertion messages."""
    i = int(np.nanargmax(np.where(np.isnan(err), np.inf, err)))
    shown = ", ".join(f"{name}={np.asarray(a).reshape(-1)[i]!r}" for name, a in columns)
    return f"max {err[i]:.3g} ulp at {shown}"


def evaluate(fn, xs, p, dtype=None):
    """[fn(x, p, dtype) for x in xs] as mpf values (xs exact floats)."""
    return [fn(mpf(x), p, dtype) for x in np.asarray(xs).reshape(-1).tolist()]


# ---------------------------------------------------------------------------
# Where to look

def sample_points(domain, dtype, n=2000, near=(), seed=0):
    """Sorted distinct values of ``dtype`` in ``domain`` = (lo, hi):

    - every binade of the domain, both signs: one point with a random mantissa
      in each binade from the smallest normal up to the domain's edge, and the
      binade's first value (a power of two);
    - ``n`` more, split between log-uniform magnitudes over the same range,
      uniform points over the whole domain and points near 0 (uniform in
      [-2**-6, 2**-6], and subnormals);
    - around each point of ``near`` (roots of f', kinks): the 16 values of
      ``dtype`` on either side, uniform points within a relative 1e-3, and
      log-uniform relative distances from 2^-45 to 1/2;
    - 0, -0 (one of them survives ``unique``) and the domain's ends.
    """
    dtype = np.dtype(dtype)
    fi = np.finfo(dtype)
    rng = np.random.default_rng(seed)
    lo, hi = float(domain[0]), float(domain[1])
    tiny_exp = int(fi.minexp)
    parts = [np.array([0.0, lo, hi])]
    for sign, edge in ((1.0, hi), (-1.0, -lo)):
        if edge <= 0:
            continue
        top = math.floor(math.log2(edge))
        e = np.arange(tiny_exp, top + 1, dtype=np.float64)
        parts.append(sign * np.exp2(e))
        parts.append(sign * np.exp2(e) * rng.uniform(1.0, 2.0, e.size))
        parts.append(sign * np.exp2(rng.uniform(tiny_exp, math.log2(edge), n // 8)))
        sub = rng.uniform(math.log2(float(fi.smallest_subnormal)), tiny_exp, 16)
        parts.append(sign * np.exp2(sub))
    parts.append(rng.uniform(lo, hi, n // 2))
    parts.append(rng.uniform(-2.0 ** -6, 2.0 ** -6, n // 8))
    for r in near:
        rr = dtype.type(float(r))
        up = [rr]
        down = [rr]
        for _ in range(16):
            up.append(np.nextafter(up[-1], dtype.type(np.inf)))
            down.append(np.nextafter(down[-1], dtype.type(-np.inf)))
        parts.append(np.array(up + down, dtype=np.float64))
        parts.append(float(r) * (1 + rng.uniform(-1e-3, 1e-3, n // 16)))
        # log-uniform distances from 2^-45 to 1/2 (relative), both sides: the
        # whole band where a gradient formula cancels towards a root
        offsets = np.exp2(rng.uniform(-45, -1, n // 8)) * rng.choice([-1.0, 1.0], n // 8)
        parts.append(float(r) * (1 + offsets))
    with np.errstate(over="ignore"):
        x = np.concatenate(parts).astype(dtype)
    x = x[(x >= dtype.type(lo)) & (x <= dtype.type(hi))]
    return np.unique(x)


def saturation_points(domain, dtype, n=48, seed=1):
    """Values of ``dtype`` outside ``domain``, up to +-max finite: log-uniform
    magnitudes from the domain's edges outwards, each binade's edge, and
    +-max."""
    dtype = np.dtype(dtype)
    fi = np.finfo(dtype)
    rng = np.random.default_rng(seed)
    top = math.log2(float(fi.max))
    parts = [np.array([float(fi.max), -float(fi.max)])]
    for sign, edge in ((1.0, domain[1]), (-1.0, -domain[0])):
        start = math.log2(max(abs(float(edge)), 1.0))
        parts.append(sign * np.exp2(rng.uniform(start, top, n)))
        parts.append(sign * np.exp2(np.arange(math.ceil(start), math.floor(top) + 1,
                                              max(1, int(top - start) // n))))
    x = np.concatenate(parts).astype(dtype)
    x = x[(x < dtype.type(domain[0])) | (x > dtype.type(domain[1]))]
    return np.unique(x)


def refine_roots(fprime, p, guesses):
    """The roots of ``fprime(x, p)`` near each of ``guesses`` (the registry's
    ``grad_roots`` are given to a few digits), as mpf values; guesses that
    lead to no root nearby are dropped."""
    roots = []
    for g in guesses:
        try:
            r = mp.findroot(lambda t: fprime(t, p), mp.mpf(g))
        except (ValueError, ZeroDivisionError):
            continue
        if abs(r - g) <= 1e-2 * max(1.0, abs(g)) and abs(fprime(r, p)) < mp.mpf(10) ** -30:
            if all(abs(r - s) > mp.mpf(10) ** -30 for s in roots):
                roots.append(r)
    return roots


# ---------------------------------------------------------------------------
# Softmax and log_softmax, one 1-D slice at a time

def softmax_ref(row):
    x = [mpf(v) for v in np.asarray(row).reshape(-1).tolist()]
    m = max(x)
    e = [_exp(v - m) for v in x]
    s = mp.fsum(e)
    return [v / s for v in e]


def log_softmax_ref(row):
    # log(sum) as log1p(sum of the terms other than the max's 1): the others
    # can be far below 166 bits of 1 (log_softmax([0, -200])[0] = -exp(-200)).
    x = [mpf(v) for v in np.asarray(row).reshape(-1).tolist()]
    m = max(x)
    k = x.index(m)
    lse = mp.log1p(mp.fsum(_exp(v - m) for i, v in enumerate(x) if i != k))
    return [(v - m) - lse for v in x]


AXIS_REFERENCE = {"softmax": softmax_ref, "log_softmax": log_softmax_ref}


def covered_names():
    """Registry names each table must cover: (REFERENCE, KINKS, REFERENCE_FROM_Y,
    AXIS_REFERENCE)."""
    elementwise = {a.name for a in R.ACTIVATIONS if a.kind == R.ELEMENTWISE}
    return {
        "REFERENCE": elementwise,
        "PARAM_VARIANTS": elementwise,
        "KINKS": elementwise | {a.name for a in R.ACTIVATIONS if a.kind == R.PRELU},
        "REFERENCE_FROM_Y": {a.name for a in R.ACTIVATIONS if a.backward_from_y},
        "AXIS_REFERENCE": {a.name for a in R.ACTIVATIONS if a.kind == R.SOFTMAX},
    }
