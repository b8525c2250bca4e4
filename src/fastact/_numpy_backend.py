"""The NumPy backend: the math of every fastact activation, in pure NumPy.

``_api`` calls these functions by name (``<name>_forward``, ``<name>_backward``,
``<name>_backward_y``) after it has validated the parameters, converted the
dtypes, added the bias and set up ``out=``. Arrays arrive C-contiguous, aligned,
native-endian, float32 or float64, of any shape (0-d and size 0 included); the
functions return new arrays and never write into their inputs. ``p`` is the
dict {parameter name: validated value} of the activation's registry entry.

* element-wise (every name in ``_registry.NATIVE_OPS``):
  ``f_forward(x, p) -> y`` and ``f_backward(g, x, p) -> g*f'(x)``; relu,
  sigmoid and tanh also have ``f_backward_y(g, y, p)``, from the saved output;
* ``prelu_forward(x3, w, p)``, ``prelu_backward(g3, x3, w, p) -> (gi, gw)``
  with x3 of shape (outer, C, inner) and w of shape (C,);
* ``softmax_forward(x3, p)``, ``softmax_backward(g3, y3, p)`` and the same for
  ``log_softmax``, reducing along axis 1 of (outer, L, inner);
* ``maxout_forward(x4, p)`` on (outer, K, pieces, inner) -> (outer, K, inner),
  ``maxout_backward(g3, x4, p)`` -> (outer, K, pieces, inner);
* ``erfc(x)`` for float64 arrays, and :data:`ERFC`, which erfc that is.

The formulas and edge-case rules are those of ``docs/semantics.md``, which
the native backend (``kernels/fa_math.h``) follows too; the tests compare the two.

How the code is organised
-------------------------
Two layers.

The careful layer (the ``_c_*`` functions, written first below) evaluates
every element through double-double arithmetic and np.where for every case:
exact to the contract's bounds everywhere, tails and special values
included, but slow (hundreds of ns per element).

Piecewise-linear ops (relu, relu6, hardtanh, leaky_relu, rrelu, prelu,
maxout) compute in the input dtype T with their parameters first cast to T,
so the results are exact and bit-identical to the native backend. They are
written with :func:`_exact_forward` / :func:`_exact_backward`.

Every other careful op is written once, on float64 arrays, as ``f(x)``
(decorated with :func:`_forward`) and ``f'(x)`` (decorated with
:func:`_backward`, which applies the grad rule g*f'). float32 inputs are
widened to float64 and the result is rounded once to float32 (<= 1 ULP).
float64 inputs get the same code, which is written so that the only
roundings that are not error-free are those of NumPy's own
exp/expm1/log1p/tanh and a final one or two: arguments that amplify their
rounding error (x*x under exp, beta*x or 2u under the sigmoid, x - max
under exp) are carried as double-doubles (hi + lo, Dekker/Knuth error-free
transformations, :func:`_two_sum`, :func:`_two_prod`) and the lo part is
applied as a first-order correction.

The fast layer (the public functions, after the careful layer) computes the
common case with short, branch-free kernels on chunks of the array, in
reused scratch rows, and hands the few elements it does not cover (NaN
results, infinities, far tails, some parameter values) to the careful
layer; its own comments say what it does and why it is accurate.

Everything runs under ``np.errstate(all="ignore")``: discarded branches may
overflow, and no warning may reach the user, who may run under
``errstate(all="raise")``. Subnormals are kept (NumPy never flushes them).
"""

from __future__ import annotations

import decimal
import functools
import threading

import numpy as np

from ._registry import BY_NAME, ROOT_SERIES_RADIUS, SELU_SCALE

__all__ = ["ERFC", "erfc"]

_F64 = np.float64


# ---------------------------------------------------------------------------
# Interface helpers: the dtype policy and the grad rule, written once

def _result(y, dtype):
    """Round a float64 (or T) result once to the output dtype, as an array
    (NumPy ufuncs return scalars for 0-d input)."""
    return np.asarray(y, dtype=dtype)


def _forward(f):
    """``f(x64, p) -> float64`` becomes ``forward(x, p)`` for float32/float64 x."""

    @functools.wraps(f)
    def forward(x, p):
        with np.errstate(all="ignore"):  # the final rounding may overflow to inf
            return _result(f(x.astype(_F64, copy=False), p), x.dtype)

    return forward


def _backward(df):
    """``df(x64, p) -> f'(x)`` becomes ``backward(g, x, p) -> g*f'(x)``.

    df may also return (d, k) with f'(x) = d*2**-k (k an integer array, see
    :func:`_exp_k`): where f'(x) underflows but g*f'(x) does not (|g| near
    the float64 maximum), g*d is formed first (|d| <= 1 there, so it cannot
    overflow) and the power of 2 applied last; likewise where f'(x)
    overflows but g*f'(x) does not (celu with alpha < 0 and |g| tiny):
    there d ~ 2**450 and k < 0, so that g*d is normal for every nonzero g
    (subnormal ones included) and the one rounding is that of g*d."""

    @functools.wraps(df)
    def backward(g, x, p):
        with np.errstate(all="ignore"):
            d = df(x.astype(_F64, copy=False), p)
            k = None
            if isinstance(d, tuple):
                d, k = d
            r = _scale(g.astype(_F64, copy=False), d)
            if k is not None:
                r = np.ldexp(r, -k)
            return _result(r, x.dtype)

    return backward


def _exact_forward(f):
    """``f(x, p)`` computes in x's own dtype (piecewise-linear ops)."""

    @functools.wraps(f)
    def forward(x, p):
        with np.errstate(all="ignore"):
            return _result(f(x, p), x.dtype)

    return forward


def _exact_backward(df):
    """``df(x, p) -> f'(x)`` in x's dtype becomes ``backward(g, x, p)``; the
    product g*f' is then computed in that dtype too."""

    @functools.wraps(df)
    def backward(g, x, p):
        with np.errstate(all="ignore"):
            return _result(_scale(g, df(x, p)), x.dtype)

    return backward


def _scale(g, d):
    """The grad rule: g*f'(x), except 0 where f'(x) == 0 exactly (so that
    g = inf in a flat region gives 0, not inf*0 = NaN), unless g is NaN."""
    return np.where((d == 0) & (g == g), 0.0, g * d)


def _times(x, s):
    """x*s for a factor s >= 0 that can underflow to 0: then the result is
    copysign(0, x), never inf*0 = NaN (silu(-inf) = -0, gelu(-inf) = -0)."""
    return np.where((s == 0) & (x == x), np.copysign(0.0, x), x * s)


def _times_dd(x, s):
    """x*(s_hi + s_lo) rounded once (s >= 0 a double-double), with the
    signed-zero rule of :func:`_times`; |x| >= 2**900 (where s has saturated
    to 0 or 1) takes the plain product, whose split would overflow."""
    plain = ~(np.abs(x) < 2.0**900) | (s[0] == 0)  # inf and NaN too
    y = _dd_mul((np.where(plain, 0.0, x), 0.0), s)[0]
    return np.where(plain, _times(x, s[0]), y)


def _keep_nan(x, d):
    """d, but NaN wherever x is NaN (a derivative built from comparisons)."""
    return np.where(x == x, d, x)


# ---------------------------------------------------------------------------
# Double-double arithmetic (Dekker 1971, Knuth TAOCP 4.2.2): error-free
# transformations on float64 arrays. A double-double is a tuple (hi, lo) with
# |lo| <= ulp(hi)/2. Inputs must be finite and, for products, below 2**995
# (Veltkamp splitting); callers clip or mask the arguments that are not.

_VELTKAMP = 134217729.0  # 2**27 + 1


def _two_sum(a, b):
    """a + b = s + e exactly (Knuth; no condition on |a|, |b|)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _fast_two_sum(a, b):
    """a + b = s + e exactly, for |a| >= |b| (Dekker)."""
    s = a + b
    return s, b - (s - a)


def _split(a):
    c = _VELTKAMP * a
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a, b):
    """a*b = p + e exactly (Dekker's product with Veltkamp's splitting)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _dd_add(a, b):
    s, e = _two_sum(a[0], b[0])
    return _fast_two_sum(s, e + (a[1] + b[1]))


def _dd_mul(a, b):
    p, e = _two_prod(a[0], b[0])
    return _fast_two_sum(p, e + (a[0] * b[1] + a[1] * b[0]))


def _dd_div(a, b):
    q = a[0] / b[0]
    p, e = _two_prod(q, b[0])
    return _fast_two_sum(q, (((a[0] - p) - e) + a[1] - q * b[1]) / b[0])


# Constants are derived here from 40-digit decimal arithmetic rather than
# typed in: a double-double's low part cannot be checked by eye.
_DEC = decimal.Context(prec=40)
_DEC_PI = decimal.Decimal("3.141592653589793238462643383279502884197")


def _dd_const(value):
    """A decimal constant as a double-double (hi, lo): hi = fl(value),
    lo = fl(value - hi)."""
    hi = float(value)
    return _F64(hi), _F64(float(_DEC.subtract(value, decimal.Decimal(hi))))


def _has_lo(lo):
    """Whether a low part can be nonzero (the fast paths pass a literal 0.0)."""
    return not (np.ndim(lo) == 0 and lo == 0)


def _finite_or_zero(v):
    """A correction term that is NaN or inf (its argument was inf or huge,
    where the function has saturated) contributes nothing."""
    return np.where(np.isfinite(v), v, 0.0)


def _scaled_arg(x, c):
    """c*x as hi + lo (lo the exact rounding error of hi = fl(c*x), 0 where x
    is inf, NaN or so large that the function has saturated anyway)."""
    if c == 1:
        return x, 0.0
    if c == 0:  # 0*inf would be NaN; the argument is 0 for every non-NaN x
        return np.where(x == x, 0.0, x), 0.0
    hi, lo = _two_prod(x, c)
    return hi, _finite_or_zero(np.where(np.abs(hi) < 2.0 ** 900, lo, 0.0))


def _divided_arg(x, c):
    """x/c as hi + lo (lo = the exact remainder (x - c*hi), divided by c)."""
    if c == 1:
        return x, 0.0
    hi = x / c
    p, e = _two_prod(hi, c)
    return hi, _finite_or_zero(((x - p) - e) / c)


# exp(v) for v < -700 is near or below the subnormal threshold, where the
# product that follows would round a second time and lose the bits exp's
# subnormal result never had. It is evaluated as exp(v + K)*2**-600 with
# K = fl(600 ln 2): v + K is exact (Sterbenz) for -831 < v < -700, and below
# that exp(v) rounds to 0 anyway. The caller multiplies by ``scale`` last,
# so a subnormal result is rounded once; the residual 600 ln 2 - K is a
# relative correction ``c``.
_EXP_SHIFT, _EXP_SHIFT_RESIDUAL = _dd_const(_DEC.multiply(600, decimal.Decimal(2).ln(_DEC)))
_EXP_SCALE = 2.0**-600


def _exp_parts(v, shift=None):
    """exp(v) = e*(1 + c)*scale for v <= 0 (shifted where ``shift``,
    default v < -700; elsewhere c = 0 and scale = 1)."""
    if shift is None:
        shift = v < -700.0
    e = np.exp(np.where(shift, v + _EXP_SHIFT, v))
    return e, np.where(shift, _EXP_SHIFT_RESIDUAL, 0.0), np.where(shift, _EXP_SCALE, 1.0)


# Cody and Waite's split of ln 2 (as in fdlibm): LN2_HI has 32 significant
# bits, so n*LN2_HI is exact for |n| < 2**21.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10


def _exp_dd(v, vl):
    """exp(v + vl) = (hi + lo)*2**n for finite v, |vl| << 1, with a relative
    error of about 0.3 ULP (np.exp's is up to 0.85 ULP, which would dominate
    erfc and gelu): v = n ln 2 + r exactly (Cody-Waite), |r| <= 0.35, and
    exp(r) = 1 + expm1(r) as a double-double, expm1's error (<= 0.5 ULP of a
    value <= 0.42) being relative to a result >= 0.7. Returns (hi, lo, n),
    n an integer array, to be applied last with ldexp (one rounding, also
    into the subnormals)."""
    n = np.rint(v * (1.0 / _LN2_HI))
    r, rl = _two_sum(v - n * _LN2_HI, -n * _LN2_LO)  # the first term is exact
    rl = rl + vl  # small enough for first order: exp(r + rl) = exp(r)*(1 + rl)
    m = np.expm1(r)
    hi, lo = _two_sum(1.0, m)
    hi, lo = _fast_two_sum(hi, lo + rl * (1.0 + m))
    return hi, lo, _int_exponent(n)


def _int_exponent(n):
    """Exponents for np.ldexp (NaN, from a NaN argument, becomes 0)."""
    return np.where(np.isfinite(n), n, 0.0).astype(np.int64)


# Below exp's argument -700 a derivative is exp(v) times a factor (of the
# same exponential family) and underflows, while g*f'(x) need not for |g| up
# to the float64 maximum (down to v ~ -1490). Those elements (``_deep``) get
# f' = d*2**-k with d normal (see :func:`_backward`).
_DEEP_TOP, _DEEP_BOTTOM = -700.0, -1600.0


def _deep(v):
    """Whether exp(v) is to be carried scaled (v in (-1600, -700))."""
    return (v < _DEEP_TOP) & (v > _DEEP_BOTTOM)


# The mirror image: above exp's argument 700 (celu' = exp(x/alpha) with
# alpha < 0) the derivative overflows, or nearly, while g*f'(x) need not
# for |g| down to the smallest subnormal (up to v ~ 1454.2; from there on
# it is +-inf for every g != 0). Those elements (``_high``, +inf included,
# where the limit of g*f' is +-inf, or 0 for g = 0) get f' = d*2**-k with
# k < 0; v is clipped at 1600, which keeps every g != 0 at +-inf.
_HIGH_BOTTOM, _HIGH_TOP = 700.0, 1600.0


def _high(v):
    """Whether exp(v) is to be carried scaled (v > 700, +inf included)."""
    return v > _HIGH_BOTTOM


def _exp_k(v, vl=0.0, high=False):
    """exp(v + vl) = e*2**-k with e ~ 2**-450 (normal), for the elements
    where :func:`_deep` (v); with ``high``, e ~ 2**450 for those where
    :func:`_high` (v) (v above 1600 taken as 1600); elsewhere the values
    are to be discarded.
    v + k ln 2 = (v + k*LN2_HI) + k*LN2_LO: the first sum is exact
    (k*LN2_HI has at most 43 bits, and Sterbenz: |k ln 2| is between 0.55
    and 0.81 times |v|), the second kept as a double-double whose low part
    (with vl, |vl| << 1) enters to first order."""
    if high:
        vc = np.clip(v, _HIGH_BOTTOM, _HIGH_TOP)
        k = np.rint(vc * (-1.0 / _LN2_HI)) + 450.0
        vl = np.where(v <= _HIGH_TOP, vl, 0.0)  # a clipped v's vl is not small
    else:
        vc = np.clip(v, _DEEP_BOTTOM, _DEEP_TOP)
        k = np.rint(vc * (-1.0 / _LN2_HI)) - 450.0
    s, c = _two_sum(vc + k * _LN2_HI, k * _LN2_LO)
    e = np.exp(s)
    return e + e * (c + _finite_or_zero(vl)), k.astype(np.int64)


def _with_deep(d, deep, dd):
    """(d, 0) with the deep elements' (d', k) from ``dd`` = (d', k)."""
    return np.where(deep, dd[0], d), np.where(deep, dd[1], 0)


def _root_series_for(name, **params):
    """The registry's RootSeries of f' of ``name`` (for those params)."""
    for rs in BY_NAME[name].grad_root_series:
        if all(params.get(k) == v for k, v in rs.params):
            return rs
    raise KeyError(name)


def _near_root(rs, z, zl=0.0):
    """(near, value): near where |z + zl - root| < ROOT_SERIES_RADIUS (z, zl a
    double-double, |zl| <= ulp(z)/2), and there f' from the series,
    t*(c1 + t*(c2 + ... + t*cN)), t = (z - hi) + zl - lo with z - hi exact
    (Sterbenz). Near a root of f' its formula is a difference of nearly
    equal terms, whose relative error grows as 1/|z - root|; the series has
    none (<= 2^-53.8 relative over the radius, tools/fit_roots.py)."""
    dz = z - rs.hi
    near = np.abs(dz) < ROOT_SERIES_RADIUS
    t = np.where(near, dz, 0.0)
    if _has_lo(zl):
        t = t + np.where(near, zl, 0.0)
    t = t - rs.lo
    c = rs.coeffs
    acc = np.full_like(t, c[-1])
    for ck in c[-2::-1]:
        acc = acc * t + ck
    return near, acc * t


# ---------------------------------------------------------------------------
# Piecewise-linear family: exact, in the input dtype

def _cast(x, v):
    """A parameter cast to x's dtype (semantics: parameters first cast to T)."""
    return x.dtype.type(v)


def _indicator(cond, x, yes=1, no=0):
    """f' from a condition, in x's dtype, NaN where x is NaN."""
    return _keep_nan(x, np.where(cond, _cast(x, yes), _cast(x, no)))


def _leaky(x, s):
    """x if x > 0 else s*x; s (a T scalar or array) == 0 gives 0, never
    0*(-inf) = NaN."""
    return np.where(x > 0, x, np.where((s == 0) & (x == x), 0, s * x))


def _leaky_slope(x, s):
    """leaky'(x) = 1 if x > 0 else s (so leaky'(0) = s, as PyTorch)."""
    return _keep_nan(x, np.where(x > 0, _cast(x, 1), s))


@_exact_backward
def _c_relu_backward(x, p):
    return _indicator(x > 0, x)


@_exact_forward
def _c_hardtanh_forward(x, p):
    lo, hi = _cast(x, p["min_val"]), _cast(x, p["max_val"])
    return np.where(x < lo, lo, np.where(x > hi, hi, x))


@_exact_backward
def _c_hardtanh_backward(x, p):
    lo, hi = _cast(x, p["min_val"]), _cast(x, p["max_val"])
    return _indicator((x > lo) & (x < hi), x)


_RELU6 = {"min_val": 0.0, "max_val": 6.0}


@_exact_forward
def _c_leaky_relu_forward(x, p):
    return _leaky(x, _cast(x, p["negative_slope"]))


@_exact_backward
def _c_leaky_relu_backward(x, p):
    return _leaky_slope(x, _cast(x, p["negative_slope"]))


# rrelu's counter-based generator: SplitMix64's finaliser (Steele, Lea and
# Flood 2014) of the flat index mixed with a key derived from the seed. The
# text in docs/semantics.md is followed literally: the native backend must give
# bit-identical slopes. np.uint64 *array* arithmetic wraps mod 2**64 silently
# (scalar arithmetic would warn), so the key is a 1-element array too.
_GOLDEN = 0x9E3779B97F4A7C15
_STREAM = 0x632BE59BD9B4E019


def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _uniform01(seed, n):
    """u_i in [0, 1), i = 0..n-1: (mix(k ^ (i*GOLDEN + STREAM)) >> 11) * 2**-53."""
    k = _mix64(np.array([(seed + _GOLDEN) % 2**64], dtype=np.uint64))
    i = np.arange(n, dtype=np.uint64)
    h = _mix64(k ^ (i * np.uint64(_GOLDEN) + np.uint64(_STREAM)))
    return (h >> np.uint64(11)).astype(_F64) * 2.0**-53


def _rrelu_slope(x, p):
    lower, upper = p["lower"], p["upper"]
    if not p["training"]:
        return _cast(x, (lower + upper) / 2)
    u = _uniform01(p["seed"], x.size).reshape(x.shape)
    return (lower + (upper - lower) * u).astype(x.dtype)


@_exact_forward
def _c_rrelu_forward(x, p):
    return _leaky(x, _rrelu_slope(x, p))


@_exact_backward
def _c_rrelu_backward(x, p):
    return _leaky_slope(x, _rrelu_slope(x, p))


def prelu_backward(g3, x3, w, p):
    """grad_input as leaky_relu's with slope w[c]; grad_weight[c] = the sum
    over (o, j) of (x > 0 ? 0 : g*x), correctly rounded except under massive
    cancellation (see :func:`_sum_dd`): the products are exact (float32 in
    float64, float64 as double-doubles) and summed error-free pairwise."""
    with np.errstate(all="ignore"):
        gi = _result(_scale(g3, _leaky_slope(x3, w.reshape(1, -1, 1))), x3.dtype)
        neg = ~(x3 > 0)  # NaN counts: its product propagates
        g, x = g3.astype(_F64, copy=False), x3.astype(_F64, copy=False)
        channels = x3.shape[1]

        def by_channel(a):  # rows = channels; each row in (o, j) order
            return np.moveaxis(a, 1, 0).reshape(channels, -1)

        if x3.dtype == _F64:
            hi, lo = _two_prod(g, x)
            lo = by_channel(np.where(neg, _finite_or_zero(lo), 0.0))
        else:
            hi, lo = g * x, 0.0  # 24 + 24 bits: exact in float64
        hi = by_channel(np.where(neg, hi, 0.0))
        gw = _round_dd(_sum_dd(hi, lo, axis=1), w.dtype)
    return gi, gw


def _sum_dd(hi, lo, axis):
    """sum(hi + lo) along axis, as a double-double.

    Pairwise tree of error-free additions: every rounding error of the tree is
    kept and summed (in plain float64) with lo, so the result differs from the
    exact sum by at most about n*2**-106*sum|hi + lo|; it is the correctly
    rounded sum unless the terms cancel massively. Deterministic (fixed order).
    Where the plain float64 sum is not finite (an inf or NaN term, overflow),
    that sum is the result (the error-free tree would turn inf into NaN).
    """
    plain = np.sum(hi, axis=axis)
    err = np.sum(lo, axis=axis) if _has_lo(lo) else np.zeros_like(plain)
    hi = np.moveaxis(hi, axis, 0)
    if hi.shape[0] == 0:
        return plain, err
    while hi.shape[0] > 1:
        odd = hi[-1:] if hi.shape[0] % 2 else hi[:0]
        s, e = _two_sum(hi[0:hi.shape[0] - 1:2], hi[1::2])
        err = err + np.sum(e, axis=0)
        hi = np.concatenate([s, odd])
    s, e = _two_sum(hi[0], err)
    finite = np.isfinite(plain)
    return np.where(finite, s, plain), np.where(finite, e, 0.0)


def _round_dd(s, dtype):
    """Round hi + lo once to dtype. For float32, hi is first nudged one
    float64 ulp towards lo when lo != 0 (round-to-odd idea), so that the
    float64 -> float32 rounding of hi cannot be a second, wrong rounding."""
    hi, lo = s
    if np.dtype(dtype) == _F64:
        return _result(hi + lo, dtype)
    hi, lo = _two_sum(hi, lo)
    hi = np.where((lo != 0) & np.isfinite(lo), np.nextafter(hi, np.copysign(np.inf, lo)), hi)
    return _result(hi, dtype)


# ---------------------------------------------------------------------------
# Logistic family: sigmoid, log_sigmoid, softplus, silu/swish, tanh

_SILU_ROOT = _root_series_for("silu")  # swish'(x; beta) = silu'(beta*x)

def _logistic(z, zl=0.0, grad=False):
    """sigmoid(z + zl) as a double-double s, and with ``grad`` also
    sigmoid'(z + zl) as ds, for |zl| <= ulp(z)/2; returns (s, scale) or
    (s, ds, scale): the values are s*scale and ds*scale (see
    :func:`_exp_parts`; scale is 1 unless z < -700).

    With e = exp(-|z|) (never overflows): sigmoid = 1/(1+e) for z >= 0 and
    e/(1+e) for z < 0; sigmoid' = e/(1+e)**2 (accurate in both tails,
    sigmoid'(+-inf) = 0). 1 + e is kept exact (two_sum) and the divisions are
    double-double, so the only error is exp's (0.85 ULP at most, halved for
    z >= 0); s[0] is the value rounded once. zl enters to first order:
    s += zl*s', s' += zl*s'*(1 - 2s).
    """
    e, c, scale = _exp_parts(-np.abs(z), shift=z < -700.0)
    e = e + e * c
    d = _two_sum(1.0, e)
    s = _dd_div((np.where(z >= 0, 1.0, e), 0.0), d)
    ds = _dd_div((e, 0.0), _dd_mul(d, d)) if grad else None
    if _has_lo(zl):
        slope = ds[0] if grad else e / (d[0] * d[0])
        if grad:
            ds = _fast_two_sum(ds[0], ds[1] + zl * ds[0] * (1.0 - 2.0 * s[0]))
        s = _fast_two_sum(s[0], s[1] + zl * slope)
    return (s, ds, scale) if grad else (s, scale)


def _softplus(z, zl=0.0):
    """log(1 + exp(z + zl)) = max(z, 0) + log1p(exp(-|z|)) (no overflow, no
    cancellation) as a double-double (the sum's rounding error kept for a
    division that follows); zl to first order: + zl*sigmoid(z)."""
    l = np.log1p(np.exp(-np.abs(z)))
    if _has_lo(zl):
        s, scale = _logistic(z)
        l = l + zl * s[0] * scale
    y, e = _two_sum(np.maximum(z, 0.0), l)
    return y, _finite_or_zero(e)


@_forward
def _c_sigmoid_forward(x, p):
    s, scale = _logistic(x)
    return s[0] * scale


@_backward
def _c_sigmoid_backward(x, p):
    _, ds, scale = _logistic(x, grad=True)
    v = -np.abs(x)  # sigmoid'(x) = exp(-|x|) to within 2**-1000 relative below
    return _with_deep(ds[0] * scale, _deep(v), _exp_k(v))


@_backward
def _c_sigmoid_backward_y(y, p):
    return y * (1.0 - y)


@_forward
def _c_log_sigmoid_forward(x, p):
    return -_softplus(-x)[0]


@_backward
def _c_log_sigmoid_backward(x, p):
    s, scale = _logistic(-x)
    return _with_deep(s[0] * scale, _deep(-x), _exp_k(-x))


@_forward
def _c_softplus_forward(x, p):
    beta = p["beta"]
    z, zl = _scaled_arg(x, beta)
    y, e = _softplus(z, zl)
    if beta != 1:  # (y + e)/beta rounded once (the remainder is exact)
        q = y / beta
        r, re = _two_prod(q, beta)
        y = q + _finite_or_zero(((y - r) - re + e) / beta)
    return np.where(z > p["threshold"], x, y)


@_backward
def _c_softplus_backward(x, p):
    z, zl = _scaled_arg(x, p["beta"])
    s, scale = _logistic(z, zl)
    above = z > p["threshold"]
    return _with_deep(np.where(above, 1.0, s[0] * scale), _deep(z) & ~above, _exp_k(z, zl))


@_forward
def _c_swish_forward(x, p):
    z, zl = _scaled_arg(x, p["beta"])
    s, scale = _logistic(z, zl)
    return _times_dd(x, s) * scale


@_backward
def _c_swish_backward(x, p):
    # f'(x) = s + z*s'(z), z = beta*x, summed as double-doubles: the terms
    # cancel partly for z < 0 (fully at the root z = -1.2785). The zl*s'
    # term completes the first-order correction of z*s'(z) (s and s' are
    # corrected inside). s' is exactly 0 wherever |z| > 745, inf included.
    # Near the root of f', its series in z + zl - root; for z < -700,
    # f' = exp(z + zl)*(1 + z + zl) to within 2**-1000 relative, scaled.
    z, zl = _scaled_arg(x, p["beta"])
    s, ds, scale = _logistic(z, zl, grad=True)
    zds = _dd_mul((np.where(ds[0] == 0, 0.0, z), 0.0), ds)
    d = _dd_add(s, (zds[0], zds[1] + zl * ds[0]))[0] * scale
    near, series = _near_root(_SILU_ROOT, z, zl)
    e, k = _exp_k(z, zl)
    return _with_deep(np.where(near, series, d), _deep(z), (e * ((1.0 + z) + zl), k))


@_backward
def _c_tanh_backward(x, p):
    # tanh'(x) = 4e/(1+e)**2, e = exp(-2|x|), = 4*sigmoid'(2x); 4e where e
    # is deep (to within 2**-1000 relative), scaled as sigmoid' is
    _, ds, scale = _logistic(2.0 * x, grad=True)
    v = -2.0 * np.abs(x)
    e, k = _exp_k(v)
    return _with_deep(4.0 * ds[0] * scale, _deep(v), (4.0 * e, k))


@_backward
def _c_tanh_backward_y(y, p):
    return (1.0 - y) * (1.0 + y)


@_forward
def _c_softsign_forward(x, p):
    a = np.abs(x)
    y = _dd_div((x, 0.0), _two_sum(1.0, a))[0]
    # beyond 2**60 the result rounds to +-1 (and the split would overflow)
    return np.where(a < 2.0**60, y, np.sign(x))


@_backward
def _c_softsign_backward(x, p):
    # 1/(1+|x|)**2 as (1/(1+|x|))**2: the square of 1+|x| would overflow from
    # |x| = 1.3e154 on, where the result is still a normal or subnormal number.
    a = np.abs(x)
    r = _dd_div((1.0, 0.0), _two_sum(1.0, np.minimum(a, 2.0**60)))
    big = 1.0 / a
    return np.where(a < 2.0**60, _dd_mul(r, r)[0], big * big)


# ---------------------------------------------------------------------------
# Exponential family: elu, selu, celu, mish

@_forward
def _c_elu_forward(x, p):
    return np.where(x > 0, x, p["alpha"] * np.expm1(x))


@_backward
def _c_elu_backward(x, p):
    e, k = _exp_k(x)
    # alpha's binary exponent goes into k, so that g*d stays as safe as
    # _backward assumes (|d| <= 1) for alpha = 1e300 too (fuzz 300:599306)
    am, ae = np.frexp(p["alpha"])
    return _with_deep(np.where(x > 0, 1.0, p["alpha"] * np.exp(x)), _deep(x), (am * e, k - ae))


# scale*alpha as a double-double, from the decimal constants of CONTRACT.md
# (the registry's SELU_ALPHA and SELU_SCALE are those rounded to float64;
# their product is off by up to an ULP, which the forward cannot afford).
_SELU_ALPHA_DEC = decimal.Decimal("1.6732632423543772848170429916717")
_SELU_SCALE_DEC = decimal.Decimal("1.0507009873554804934193349852946")
_SELU_SA = _dd_const(_DEC.multiply(_SELU_SCALE_DEC, _SELU_ALPHA_DEC))


@_forward
def _c_selu_forward(x, p):
    m = np.expm1(x)
    return np.where(x > 0, SELU_SCALE * x, m * _SELU_SA[0] + m * _SELU_SA[1])


@_backward
def _c_selu_backward(x, p):
    e = np.exp(x)
    d = np.where(x > 0, SELU_SCALE, e * _SELU_SA[0] + e * _SELU_SA[1])
    e, k = _exp_k(x)
    return _with_deep(d, _deep(x), (e * _SELU_SA[0] + e * _SELU_SA[1], k))


@_forward
def _c_celu_forward(x, p):
    # t = x/alpha split as t + tl: for alpha < 0, expm1(t) grows and would
    # amplify the division's rounding error by t.
    alpha = p["alpha"]
    t, tl = _divided_arg(x, alpha)
    m = np.expm1(t)
    if _has_lo(tl):  # no correction where exp(t) overflows
        m = m + _finite_or_zero(tl * np.exp(t))
    return np.where(x > 0, x, alpha * m)


@_backward
def _c_celu_backward(x, p):
    alpha = p["alpha"]
    t, tl = _divided_arg(x, alpha)
    e = np.exp(t)
    d = np.where(x > 0, 1.0, e + _finite_or_zero(tl * e))
    # x <= 0: t = x/alpha <= 0 for alpha > 0, where exp(t) underflows;
    # t >= 0 for alpha < 0, where it overflows (e^730 at x = -365, alpha =
    # -0.5) while g*e^t need not, and x = -inf gives 0 for g = 0
    high = alpha < 0
    far = (_high(t) if high else _deep(t)) & ~(x > 0)
    if not far.any():  # the usual case (this runs on every element for alpha < 0)
        return d
    return _with_deep(d, far, _exp_k(t, tl, high))


_MISH_LINEAR = 40.0  # mish(x) = x and mish'(x) = 1 in float64 from here on
_MISH_ROOT = _root_series_for("mish")


def _mish_tanh_softplus(x):
    """t = tanh(softplus(x)) = n/(n + 2), n = e*(e + 2), e = exp(x): no
    cancellation anywhere, and t as a double-double, so its error is exp's
    (the relative sensitivity of t to e is at most 1). Returns
    (e, n + 2, t, scale): e and t are to be multiplied by scale (for x < -700,
    t ~ e is subnormal; see :func:`_exp_parts`)."""
    e, c, scale = _exp_parts(np.minimum(x, _MISH_LINEAR))
    e = e + e * c
    n = _dd_mul((e, 0.0), _two_sum(e, 2.0))
    den = _dd_add(n, (2.0, 0.0))
    return e, den, _dd_div(n, den), scale


@_forward
def _c_mish_forward(x, p):
    _, _, t, scale = _mish_tanh_softplus(x)
    return np.where(x > _MISH_LINEAR, x, _times_dd(x, t) * scale)


@_backward
def _c_mish_backward(x, p):
    # f' = t + x*q, q = 4e(1 + e)/(n + 2)**2, all as double-doubles; x*q is
    # 0 where q underflows to 0 (mish'(-inf) = 0).
    # Near the root of f', its series; for x < -700, f' = exp(x)*(1 + x) to
    # within 2**-1000 relative, scaled.
    e, den, t, scale = _mish_tanh_softplus(x)
    q = _dd_div(_dd_mul((e, 0.0), _two_sum(1.0, e)), _dd_mul(den, den))
    xs = np.where(q[0] == 0, 0.0, x)
    xq = _dd_mul((4.0 * xs, 0.0), q)
    d = np.where(x > _MISH_LINEAR, 1.0, _dd_add(t, xq)[0] * scale)
    near, series = _near_root(_MISH_ROOT, x)
    e, k = _exp_k(x)
    return _with_deep(np.where(near, series, d), _deep(x), (e * (1.0 + x), k))


# ---------------------------------------------------------------------------
# Piecewise-polynomial family: hardsigmoid, hardswish. (x + 3)/6 rather
# than x/6 + 1/2: the latter cancels near x = -3.

def _plus3_over6(v):
    """(v + 3)/6 rounded once (exact sum, double-double division)."""
    return _dd_div(_two_sum(v, 3.0), (6.0, 0.0))


@_forward
def _c_hardsigmoid_forward(x, p):
    return np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, _plus3_over6(x)[0]))


@_backward
def _c_hardsigmoid_backward(x, p):
    return _keep_nan(x, np.where((x > -3) & (x < 3), 1.0 / 6.0, 0.0))


@_forward
def _c_hardswish_forward(x, p):
    xc = np.clip(x, -3.0, 3.0)
    y = _dd_mul((xc, 0.0), _plus3_over6(xc))[0]
    return np.where(x <= -3, 0.0, np.where(x >= 3, x, y))


@_backward
def _c_hardswish_backward(x, p):
    # x/3 + 1/2 = (2x + 3)/6, exact near its root -3/2
    d = np.where(x <= -3, 0.0, np.where(x < 3, _plus3_over6(2.0 * x)[0], 1.0))
    return _keep_nan(x, d)


# ---------------------------------------------------------------------------
# GELU

_SQRT1_2 = _dd_const(_DEC.sqrt(decimal.Decimal("0.5")))
_INV_SQRT_2PI = _dd_const(_DEC.divide(1, _DEC.sqrt(_DEC.multiply(2, _DEC_PI))))
_GELU_2K = _dd_const(_DEC.multiply(2, _DEC.sqrt(_DEC.divide(2, _DEC_PI))))  # 2*sqrt(2/pi)
_GELU_C = _dd_const(decimal.Decimal("0.044715"))  # the decimal constant
_GELU_3C = _dd_const(3 * decimal.Decimal("0.044715"))
# gelu has saturated far before these: clipping the argument there keeps the
# double-double products finite.
_GELU_CLIP = 64.0
_GELU_NONE_ROOT = _root_series_for("gelu", approximate="none")
_GELU_TANH_ROOT = _root_series_for("gelu", approximate="tanh")
_GELU_TANH_CLIP = 30.0


def _erfc_of_minus_x_over_sqrt2(x):
    """erfc(-x/sqrt(2)) = 2*Phi(x) as (hi, lo, n), -x/sqrt(2) itself
    carried as a double-double: in the left tail erfc multiplies its
    argument's relative error by 2z**2 (about 2900 at z = 38)."""
    xc = np.clip(x, -_GELU_CLIP, _GELU_CLIP)
    zh, zl = _two_prod(xc, -_SQRT1_2[0])
    return _erfc_eval(zh, zl - xc * _SQRT1_2[1], _ERFC_TABLES)


def _gaussian_pdf_times_x(x):
    """x*exp(-x*x/2)/sqrt(2pi) as (double-double, n), times 2**n (see
    :func:`_exp_dd`), with x*x exact (two_prod) so that exp's argument
    carries no rounding error. 0 at +-inf (x is clipped where exp(-x*x/2)
    is 0)."""
    xc = np.clip(x, -_GELU_CLIP, _GELU_CLIP)
    h, l = _two_prod(xc, xc)
    hi, lo, n = _exp_dd(-0.5 * h, -0.5 * l)
    return _dd_mul(_dd_mul((xc, 0.0), (hi, lo)), _INV_SQRT_2PI), n


def _gelu_tanh_arg(x):
    """2u = 2*sqrt(2/pi)*x*(1 + c*x*x) as a double-double (the sigmoid of 2u
    multiplies 2u's relative error by |2u| in the left tail)."""
    xc = np.clip(x, -_GELU_TANH_CLIP, _GELU_TANH_CLIP)
    x2 = _two_prod(xc, xc)
    a = _dd_add((1.0, 0.0), _dd_mul(_GELU_C, x2))
    return _dd_mul(_GELU_2K, _dd_mul((xc, 0.0), a)), x2


@_forward
def _c_gelu_forward(x, p):
    if p["approximate"] == "tanh":
        (z, zl), _ = _gelu_tanh_arg(x)
        s, scale = _logistic(z, zl)
        return _times_dd(x, s) * scale
    # (x/2)*erfc(-x/sqrt(2)): x/2 is exact, the product a double-double
    # rounded once, and the power of 2 applied last (ldexp), so a subnormal
    # result is not rounded twice.
    hi, lo, n = _erfc_of_minus_x_over_sqrt2(x)
    return np.ldexp(_times_dd(0.5 * x, (hi, lo)), n)


@_backward
def _c_gelu_backward(x, p):
    if p["approximate"] == "tanh":
        # f' = s + x*2k*(1 + 3c*x*x)*s'(2u); x is clipped in w, and s'(2u) is
        # exactly 0 beyond the clip, so w*s' -> 0 at +-inf.
        (z, zl), x2 = _gelu_tanh_arg(x)
        s, ds, scale = _logistic(z, zl, grad=True)
        xc = np.clip(x, -_GELU_TANH_CLIP, _GELU_TANH_CLIP)
        w = _dd_mul(_GELU_2K, _dd_mul((xc, 0.0), _dd_add((1.0, 0.0), _dd_mul(_GELU_3C, x2))))
        near, series = _near_root(_GELU_TANH_ROOT, x)
        d = np.where(near, series, _dd_add(s, _dd_mul(w, ds))[0] * scale)
        # for z < -700, f' = exp(z + zl)*(1 + w) to within 2**-1000 relative,
        # scaled (g*f' is in range for |g| near the float64 maximum)
        e, k = _exp_k(z, zl)
        return _with_deep(d, _deep(z), (e * (1.0 + w[0]), k))
    # Phi + x*phi as double-doubles. In the left tail both terms carry the
    # same power of 2 (z*z and x*x/2 agree but for rounding); where the two
    # differ, the terms are scaled first.
    hi, lo, n = _erfc_of_minus_x_over_sqrt2(x)
    xphi, n_xphi = _gaussian_pdf_times_x(x)
    together = np.ldexp(_dd_add((0.5 * hi, 0.5 * lo), xphi)[0], n)
    apart = np.ldexp(0.5 * hi, n) + np.ldexp(xphi[0], n_xphi)
    near, series = _near_root(_GELU_NONE_ROOT, x)
    d = np.where(near, series, np.where(n == n_xphi, together, apart))
    # Far left (x < -37), where f' is subnormal or underflows while g*f'
    # need not (|g| up to the float64 maximum, down to x = -53.9): Phi(x) =
    # phi(x)/|x| * S(w), w = 1/x**2, S erfc's asymptotic series (through
    # 945 w**5; the next term is below 2e-15 of S there, and Phi is w of
    # f'), so f' = x*phi*(1 - w*S), returned as d*2**-k for _backward with
    # |d| <= 1 (x*phi's mantissa is below 64 in magnitude: 2**-6).
    far = (x < -_GELU_TAIL) & (x > -54.0)
    w = 1.0 / (x * x)
    tail = 1.0 - w * (1.0 + w * (-1.0 + w * (3.0 + w * (-15.0 + w * (105.0 - 945.0 * w)))))
    return (np.where(far, xphi[0] * tail * 2.0**-6, d),
            np.where(far, -n_xphi - 6, 0))


# ---------------------------------------------------------------------------
# erfc
#
# scipy.special.erfc is not used: measured against mpmath (scipy 1.17), it
# computes exp(-x*x) from a rounded x*x and so loses up to ~500 ULP for
# 20 < x < 26.5, and returns 0 for 26.55 < x < 27.2 where erfc is a nonzero
# subnormal. (scipy.special.erfcx is within 2-8 ULP.) Our own erfc below is
# within 1 ULP everywhere (tools/fit_erfc.py measures it), and it takes its
# argument as a double-double, which gelu needs. So there is one erfc, with
# or without scipy.

#: Which erfc this backend uses.
ERFC = "fastact: piecewise polynomial erfcx fit (tools/fit_erfc.py) times exp(-x*x)"

# --- generated by tools/fit_erfc.py (mpmath, 60 digits) ---
# Measured by tools/fit_erfc.py (--points 5000; numpy 2.4, glibc expm1)
# against mpmath on 5000 random points in each of [-6, -1/4], [-1/4, 1/4],
# every interval below and [27, 27.3], one point in every binade from 2**-60
# to 1 (both signs) and both sides of every breakpoint: max error 0.90 ULP
# (x = 1.542); 0.88 ULP for |x| <= 1/4, 0.57 ULP for x < -1/4, 0.5 ULP
# (in subnormal ULPs) for x > 26.6. The fit itself is within 0.003 ULP; the
# rest is rounding and expm1's error.
_ERFC_SMALL = (  # erf(x)/x = P(x*x), |x| <= 1/4, ascending
    1.1283791670955126,
    -0.37612638903183754,
    0.11283791670955123,
    -0.026866170645128033,
    0.005223977625177104,
    -0.0008548326900817777,
    0.00012055299639132942,
    -1.492036152712972e-05,
    1.600858681078604e-06,
)
_ERFC_BREAKS = (
    0.25, 0.5, 1.0, 1.5,
    2.0, 2.5, 3.125, 3.875,
    4.875, 6.125, 7.625, 9.5,
    12.0, 15.0, 18.5, 23.0,
    28.0,
)
_ERFC_MIDS = (
    0.375, 0.75, 1.25, 1.75,
    2.25, 2.8125, 3.5, 4.375,
    5.5, 6.875, 8.5625, 10.75,
    13.5, 16.75, 20.75, 25.5,
)
_ERFC_C0_HI = (
    0.6858572331012929, 0.5069376502931449, 0.3678229164523611, 0.2849722347374364,
    0.23108725873039188, 0.18978550290899462, 0.1552936556088943, 0.12582358819498807,
    0.10096221839949909, 0.081222016591888, 0.06545028959208049, 0.05225856230371755,
    0.04167809676408815, 0.03362325076647877, 0.02715839400393526, 0.022108108052519827,
)
_ERFC_C0_LO = (
    -8.072719496056782e-18, -5.335681035462232e-17, 1.387401093925035e-19, 8.539813023973122e-18,
    -5.74762364596782e-18, -8.701310755605817e-19, -1.355844542216092e-18, 1.731149258735859e-18,
    -4.702857612943069e-18, -5.67597234333803e-19, 1.2549891576150658e-18, -1.905543814219956e-18,
    -2.450130267373736e-18, 2.900838649419887e-18, 6.464691530111139e-19, -4.7081340478585653e-20,
)
_ERFC_COEF = (  # row i: s**1 .. s**14 on interval i
    (
        -0.6139862422695429, 0.45561239225021427, -0.29542106345047503,
        0.17241474672814305, -0.09230621337097182, 0.04593330557134435,
        -0.02145177822235192, 0.0094722221840729, -0.003977710134350055,
        0.0015961162391692307, -0.0006143808600814234, 0.00022761550161380236,
        -8.19456133126951e-05, 2.8337826044107024e-05,
    ),
    (
        -0.3679726916557954, 0.2309581315512983, -0.12983606199487813,
        0.06679054252756783, -0.03189726204019368, 0.014289198666091785,
        -0.006051532258236163, 0.002437637348879293, -0.0009385135840131843,
        0.00034675112699586235, -0.00012332254905491935, 4.236277872839012e-05,
        -1.4426531927022256e-05, 4.6468063021709155e-06,
    ),
    (
        -0.20882187596460985, 0.1067955714965988, -0.050218274395907286,
        0.022011364250857087, -0.009081627632983702, 0.003553109903243474,
        -0.0013257829259341594, 0.0004739703092322156, -0.00016296015585453164,
        5.405410070923268e-05, -1.7341014492670602e-05, 5.394803262378592e-06,
        -1.6632665035773791e-06, 4.887229880775173e-07,
    ),
    (
        -0.1309763455144852, 0.05576363008708727, -0.022259995241388296,
        0.008404319207328838, -0.003020974651430884, 0.0010392045224464287,
        -0.0003435333530328009, 0.00010950528835549968, -3.375537235791456e-05,
        1.0086687747870453e-05, -2.9275803738947514e-06, 8.270400506291882e-07,
        -2.315667308216523e-07, 6.219856645384379e-08,
    ),
    (
        -0.08848650280874916, 0.03199262741070626, -0.011002060756440042,
        0.003618995354358078, -0.0011437284836545445, 0.0003485354220459041,
        -0.00010272108109671126, 2.9353247346035802e-05, -8.15028561551201e-06,
        2.203022573598821e-06, -5.805837840189775e-07, 1.4942106914747858e-07,
        -3.812940517837183e-08, 9.386279767845533e-09,
    ),
    (
        -0.060835713232417814, 0.018685059442819514, -0.005522655699658613,
        0.001576295143764818, -0.000435730243128998, 0.00011693461165595886,
        -3.052904219442119e-05, 7.767920077442988e-06, -1.929282738886909e-06,
        4.683633992883304e-07, -1.1125873266082469e-07, 2.5897134022423553e-08,
        -6.020050094708621e-09, 1.3479753178685396e-09,
    ),
    (
        -0.041323577833252495, 0.010661133192510575, -0.0026730744396436445,
        0.0006526863268788937, -0.00015546891822763832, 3.6181704361578874e-05,
        -8.237986539205633e-06, 1.8371878457306644e-06, -4.017401674441582e-07,
        8.621978432401163e-08, -1.8173066654186244e-08, 3.766317404665468e-09,
        -7.842683547902621e-10, 1.5730398496793309e-10,
    ),
    (
        -0.02742277038936697, 0.005848967741507582, -0.0012223576801808447,
        0.0002505764453581457, -5.043429269645584e-05, 9.975471605137922e-06,
        -1.940458390214365e-06, 3.7149151597508833e-07, -7.004083114726579e-08,
        1.3012745903706542e-08, -2.3827961869570667e-09, 4.3056933372508583e-10,
        -7.905184562602153e-11, 1.390947042679331e-11,
    ),
    (
        -0.017794764701022602, 0.00309101254387477, -0.0005294638064742293,
        8.948080413320606e-05, -1.4927753497100765e-05, 2.4593866339651964e-06,
        -4.0032199730008696e-07, 6.440390363266677e-08, -1.0244596943143634e-08,
        1.6117680454582812e-09, -2.507675358466368e-10, 3.863207975889273e-11,
        -6.09309894995151e-12, 9.195810093905245e-13,
    ),
    (
        -0.011576438957052513, 0.0016339987621519715, -0.00022846497817179928,
        3.165101861039933e-05, -4.345690090263686e-06, 5.914664136218227e-07,
        -7.981671211403601e-08, 1.0681627243773532e-08, -1.4178996387262588e-09,
        1.8672128052623761e-10, -2.4386142733094393e-11, 3.1623066600363574e-12,
        -4.2142110750505414e-13, 5.381971809076399e-14,
    ),
    (
        -0.007542957831134151, 0.0008637131629943213, -9.827591533017894e-05,
        1.1112818989811003e-05, -1.2489610920279232e-06, 1.3952987994833432e-07,
        -1.5496141099997666e-08, 1.7110422278991216e-09, -1.8785467382957435e-10,
        2.0508930839792194e-11, -2.2253913163655463e-12, 2.403092855600463e-13,
        -2.6814004801325968e-14, 2.863741769528729e-15,
    ),
    (
        -0.004820077565585235, 0.00044272847367627776, -4.049764904349405e-05,
        3.689373229329267e-06, -3.3475473131869214e-07, 3.025328935293782e-08,
        -2.7233915372648027e-09, 2.442072704368023e-10, -2.1814260786778317e-11,
        1.941186205235387e-12, -1.719447371954685e-13, 1.5186977646230465e-14,
        -1.3992166059893583e-15, 1.2264239534324264e-16,
    ),
    (
        -0.003070554465132545, 0.00022561148479879268, -1.6532946899227637e-05,
        1.2083508295995536e-06, -8.8084279860691e-08, 6.404350526355989e-09,
        -4.6444220037466885e-10, 3.359515275478198e-11, -2.4239362383164367e-12,
        1.7444863428712688e-13, -1.2513889123986864e-14, 8.96139530239396e-16,
        -6.687288939175929e-17, 4.764358725898074e-18,
    ),
    (
        -0.0020002664184736916, 0.0001187882570444367, -7.042075319584369e-06,
        4.1674772069638804e-07, -2.462039916915098e-08, 1.4520115444766693e-09,
        -8.548736931774484e-11, 5.024519174638624e-12, -2.948177496946892e-13,
        1.726945227725281e-14, -1.0092555413850141e-15, 5.892163962145838e-17,
        -3.572878278336375e-18, 2.0787178956816847e-19,
    ),
    (
        -0.0013058159321992265, 6.271341080131051e-05, -3.0084387146888283e-06,
        1.4415373575609827e-07, -6.8994791004411685e-09, 3.2984814429770496e-10,
        -1.5751458437868337e-11, 7.513428473808935e-13, -3.579898450517211e-14,
        1.7037828873232304e-15, -8.093626520836989e-17, 3.843446223712711e-18,
        -1.9041820707863627e-19, 9.021581659051493e-21,
    ),
    (
        -0.0008656564170014193, 3.3869418983635286e-05, -1.3241552791463032e-06,
        5.1729682701846304e-08, -2.019348099747168e-09, 7.876871992691057e-11,
        -3.070211844483552e-12, 1.1957918943729283e-13, -4.653909322420709e-15,
        1.8098924679590385e-16, -7.02973106555519e-18, 2.729761782038971e-19,
        -1.0978744631484236e-20, 4.256656768249994e-22,
    ),
)
# --- end of generated tables ---

_TWO_OVER_SQRTPI = 2.0 / np.sqrt(np.pi)  # only in an O(ulp) term
_ERFC_ZERO_FROM = 28.0  # erfc(x) < 2**-1075 beyond: rounds to 0


def _erfc_pack(small, breaks, mids, c0_hi, c0_lo, coef):
    """Tables as arrays; coefficient k of every interval in one row."""
    coef = np.asarray(coef, dtype=_F64).reshape(len(mids), -1)
    return (np.asarray(small, dtype=_F64), np.asarray(breaks, dtype=_F64),
            np.asarray(mids, dtype=_F64), np.asarray(c0_hi, dtype=_F64),
            np.asarray(c0_lo, dtype=_F64), np.ascontiguousarray(coef.T))


def _erfc_eval(x, xl, tables):
    """erfc(x + xl) as (hi, lo, n): the double-double hi + lo times 2**n
    (n < 0 only for x > 1/4; apply it last, with np.ldexp), for float64 x,
    finite xl, |xl| <= ulp(x)/2.

    |x| <= 1/4: 1 - x*P(x*x) (erf's Taylor-like polynomial).
    1/4 < |x|: erfcx(|x|)*exp(-x*x), erfcx a degree-14 polynomial in x - m on
    the interval of |x| (found with searchsorted, coefficients gathered, so
    the code has no branch), x*x exact as h + l, exp(-(h + l)) a
    double-double (:func:`_exp_dd`), and xl enters to first order as
    erfcx - xl*2/sqrt(pi); the product is a double-double too,
    so hi is rounded once from a value whose errors are the fit's (0.1 ULP)
    and expm1's (0.3 ULP);
    x < -1/4: 2 - erfc(|x|).
    """
    small, breaks, mids, c0_hi, c0_lo, coef = tables
    a = np.abs(x)
    al = np.where(x < 0, -xl, xl)
    # |x| <= 1/4
    u = x * x
    pu = small[-1]
    for c in small[-2::-1]:
        pu = pu * u + c
    near0 = _two_sum(1.0, -(x * pu + xl * _TWO_OVER_SQRTPI * (1.0 - u)))
    # 1/4 < |x| < 28
    a = np.minimum(a, _ERFC_ZERO_FROM)  # NaN stays NaN
    i = np.clip(np.searchsorted(breaks, a, side="right") - 1, 0, len(mids) - 1)
    s = a - np.take(mids, i)  # exact (Sterbenz: intervals within a ratio of 3)
    r = np.take(coef[-1], i)
    for k in range(coef.shape[0] - 2, -1, -1):
        r = r * s + np.take(coef[k], i)
    h, l = _two_prod(a, a)
    e = _exp_dd(-h, -l)
    # erfc(a + al) = erfc(a) - al*(2/sqrt(pi))*exp(-a*a) to first order, that
    # is erfcx(a) - al*2/sqrt(pi) times exp(-a*a): the last Horner step
    c0 = np.take(c0_hi, i)
    r = _fast_two_sum(c0, (r * s + np.take(c0_lo, i)) - al * _TWO_OVER_SQRTPI)
    th, tl = _dd_mul(r, e[:2])
    zero = a >= _ERFC_ZERO_FROM  # rounds to 0 once scaled: say so (gelu(-inf))
    th, tl = np.where(zero, 0.0, th), np.where(zero, 0.0, tl)
    # x < -1/4
    nh, nl = _two_sum(2.0, -np.ldexp(th, e[2]))
    neg = _fast_two_sum(nh, nl - np.ldexp(tl, e[2]))
    small_x, negative = a <= 0.25, x < 0
    hi, lo = (np.where(small_x, n0, np.where(negative, n1, t))
              for n0, n1, t in zip(near0, neg, (th, tl)))
    return hi, lo, np.where(small_x | negative, 0, e[2])


_ERFC_TABLES = _erfc_pack(_ERFC_SMALL, _ERFC_BREAKS, _ERFC_MIDS, _ERFC_C0_HI,
                          _ERFC_C0_LO, _ERFC_COEF)


def erfc(x):
    """The complementary error function of a float64 array (see :data:`ERFC`)."""
    x = np.asarray(x, dtype=_F64)
    with np.errstate(all="ignore"):
        hi, _, n = _erfc_eval(x, 0.0, _ERFC_TABLES)
        return _result(np.ldexp(hi, n), _F64)


# ---------------------------------------------------------------------------
# Along an axis: softmax, log_softmax, maxout (layout (outer, L, inner))

def _first_max(x4):
    """Index along axis 2 of each group's first maximal element; np.argmax
    counts NaN as maximal, so a group with a NaN gives its first NaN."""
    return np.expand_dims(np.argmax(x4, axis=2), 2)


def maxout_forward(x4, p):
    # The element the backward routes to: the max, NaN if the group has one.
    # Exact, in the input dtype.
    return np.take_along_axis(x4, _first_max(x4), axis=2).squeeze(2)


def maxout_backward(g3, x4, p):
    with np.errstate(all="ignore"):
        q = np.arange(x4.shape[2]).reshape(1, 1, -1, 1)
        d = _keep_nan(x4, (q == _first_max(x4)).astype(x4.dtype))
        return _result(_scale(g3[:, :, None, :], d), x4.dtype)


# ===========================================================================
# The fast paths: the functions ``_api`` calls
#
# Everything above is the careful reference implementation: every element
# through the same double-double code, np.where for every case. It is exact
# but slow (hundreds of ns per element), so the functions below compute the
# common case with short, branch-free kernels and hand the few elements
# those do not cover -- NaN results, infinities, the far tails where exp
# underflows into the subnormals, parameters they do not handle -- to the
# careful ``_c_*`` functions, on that subset only (:func:`_finish`).
#
# Speed rules, measured on current x86 CPUs with NumPy 2:
# * np.where with an unsorted mask costs ~3.5 ns per element (a mispredicted
#   branch each), more than np.exp: selections are done with arithmetic
#   (min, max, clip, copysign) or bitwise (:func:`_select`).
# * Every large temporary array costs page faults when it is first touched
#   (glibc returns freed heap memory to the system once more than ~2 arrays
#   are released): the kernels run on chunks of _CHUNK elements, in
#   per-thread scratch rows that are allocated once (:func:`_rows`), with
#   in-place ufunc calls; only the result is a new array.
#
# Accuracy rules:
# * float32 inputs are computed in float64 with the plain formulas and
#   rounded once. Each formula's float64 error is a few float64 ULP at most,
#   ~2**-29 float32 ULP, so the float32 result is within 0.5 ULP plus that
#   (a subnormal float32 is a normal float64: no double rounding either).
#   Exceptions, computed in float32 itself: tanh (NumPy's float32 tanh,
#   within 1.4 ULP), and a few ops of two or three correctly rounded
#   operations (softsign, hardsigmoid, hardswish and their gradients), each
#   within its bound as its comment shows.
# * float64 inputs get the same formulas plus, where a rounding error would
#   be amplified (exp of a rounded argument, a rounded 1 + exp(-z) in a
#   denominator, a cancelling sum), a first-order correction with the exact
#   rounding error (two_sum/two_prod), and double-double arithmetic with an
#   accurate exp (:func:`_exp_dd_rows`) for gelu, mish and softmax. What is
#   left is np.exp's own error (0.85 ULP, up to 1.7 ULP of a result in the
#   next binade down).

_F32 = np.float32
_INT = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}
#: Elements per kernel call: 256 KiB per float64 scratch row.
_CHUNK = 32768
#: Beyond this, exp(-|z|) is near or in the subnormals: the careful path.
_EXP_TAIL = 700.0
#: 2**k with (3 - |x|)*2**k >= 1 for every |x| < 3 of the dtype.
_HUGE = {np.dtype(np.float32): _F32(2.0**100), np.dtype(np.float64): _F64(2.0**1000)}


class _Work(threading.local):
    """Per-thread scratch: float64 rows of _CHUNK elements, reused by every
    call (NumPy releases the GIL inside ufuncs, so threads need their own)."""

    rows = None
    out = None


_WORK = _Work()


def _rows(k, m):
    """k scratch rows of m <= _CHUNK float64 elements (a (k, m) view).
    A kernel takes all its rows in one call: a later call may reallocate."""
    w = _WORK
    r = w.rows
    if r is None or r.shape[0] < k:
        r = w.rows = np.empty((max(k, 8), _CHUNK))
    return r[:k, :m]


def _rows_as(k, m, dtype):
    """k scratch rows of m elements of dtype (a list; each row is viewed on
    its own, as NumPy < 1.23 views only contiguous arrays as another size)."""
    if np.dtype(dtype) == _F64:
        return list(_rows(k, m))
    return [r.view(dtype)[:m] for r in _rows(k, (m + 1) // 2)]


def _out_row(m):
    w = _WORK
    if w.out is None:
        w.out = np.empty(_CHUNK)
    return w.out[:m]


def _drive(kernel, arrays, p, dtype, wide=True):
    """Run ``kernel(out, *chunks, p, f32)`` over the flat ``arrays`` chunk by
    chunk into a new result of ``dtype``. ``wide``: the kernel writes
    float64 (rounded to float32 here); else it writes ``dtype``."""
    n = arrays[0].size
    res = np.empty(n, dtype)
    f32 = dtype == _F32
    via = wide and f32
    for s in range(0, n, _CHUNK):
        ch = [a[s:s + _CHUNK] for a in arrays]
        if via:
            o = _out_row(ch[0].size)
            kernel(o, *ch, p, f32)
            res[s:s + _CHUNK] = o
        else:
            kernel(res[s:s + _CHUNK], *ch, p, f32)
    return res


def _finish(y, careful, args, p, shape, rare=None):
    """Redo with ``careful`` every element of the flat result ``y`` that is
    NaN or flagged in ``rare``: a NaN input stays NaN there, and the careful
    path gives the limits at +-inf, the grad rule (g*0 = 0 for g = +-inf)
    and the tails."""
    bad = np.isnan(y)
    if rare is not None:
        bad |= rare
    if bad.any():
        i = np.flatnonzero(bad)
        y[i] = careful(*(a[i] for a in args), p)
    return y.reshape(shape)


def _whole(careful):
    """A kernel that runs the careful function on the chunk (for parameters
    the fast kernels do not cover)."""

    def kernel(out, *args):
        out[...] = careful(*args[:-1])  # (without f32)

    return kernel


def _elementwise(x, p, kernel, careful, rare=None, wide=True):
    with np.errstate(all="ignore"):
        xf = x.reshape(-1)
        y = _drive(kernel, (xf,), p, x.dtype, wide)
        r = None if rare is None else rare(xf)
        return _finish(y, careful, (xf,), p, x.shape, r)


def _elementwise_grad(g, x, p, kernel, careful, rare=None, wide=True):
    with np.errstate(all="ignore"):
        xf, gf = x.reshape(-1), g.reshape(-1)
        y = _drive(kernel, (gf, xf), p, x.dtype, wide)
        r = None if rare is None else rare(xf)
        return _finish(y, careful, (gf, xf), p, x.shape, r)


def _tail(limit):
    """rare(): |x| beyond limit, or x NaN (careful path)."""
    return lambda x: ~(np.abs(x) <= limit)


def _below(limit):
    return lambda x: ~(x >= limit)


def _above(limit):
    return lambda x: ~(x <= limit)


def _near_root_nan(kernel, rs, beta=1.0):
    """A float64 grad kernel that also sets NaN where x is within (a little
    more than) the root series' radius of root/beta: :func:`_finish` hands
    those to the careful path, which uses the series (the kernels' f' loses
    relative accuracy there). Tested in the chunk's cached rows, which is
    much cheaper than a rare() mask over the whole array."""
    c = rs.hi / beta
    w = ROOT_SERIES_RADIUS / abs(beta) * (1 + 2.0**-20)
    lo, hi = c - w, c + w  # (rounded outward enough by the margin in w)

    def near_kernel(out, g, x, p, f32):
        kernel(out, g, x, p, f32)
        m = x.size
        b = _rows(1, m)[0].view(np.bool_)
        k, k2 = b[:m], b[m:2 * m]
        np.greater(x, lo, out=k)
        np.less(x, hi, out=k2)
        k &= k2
        if k.any():
            np.copyto(out, np.nan, where=k)

    return near_kernel


def _series_first(careful, rs, beta=1.0):
    """The careful function for a kernel wrapped by :func:`_near_root_nan`
    (beta 1 or a power of 2, so that beta*x is exact): when every element
    handed over is near the root (the usual case), only the series is
    evaluated, which costs a fraction of the careful path's fixed overhead."""

    def c(g, x, p):
        with np.errstate(all="ignore"):
            z = x.astype(_F64) * beta
            near, d = _near_root(rs, z)
            if near.all():
                return _result(_scale(g.astype(_F64), d), x.dtype)
        return careful(g, x, p)

    return c


def _nan_below(kernel, limit, x):
    """A float64 grad kernel that also sets NaN where x < limit (so that
    :func:`_finish` hands those to the careful path); the plain kernel when
    no element of x is below, which one reduction over x tells (cheaper
    than a test per chunk; NaN in x makes the min NaN, and those go to the
    careful path anyway)."""
    if not (x.size and x.min() < limit):
        return kernel

    def below_kernel(out, g, x, p, f32):
        kernel(out, g, x, p, f32)
        k = _rows(1, x.size)[0].view(np.bool_)[:x.size]
        np.less(x, limit, out=k)
        if k.any():
            np.copyto(out, np.nan, where=k)

    return below_kernel


def _select(m, a, b, out, tmp):
    """out = a where m else b, exactly and without a branch per element:
    bitwise on the integer views. a, b, out, tmp: same-dtype arrays, out
    and tmp distinct from a and b."""
    it = _INT[out.dtype]
    mask = tmp.view(it)
    np.negative(m, out=mask, dtype=it, casting="unsafe")  # all ones where m
    ai, bi, oi = a.view(it), b.view(it), out.view(it)
    np.bitwise_xor(ai, bi, out=oi)
    oi &= mask
    oi ^= bi
    return out


# ---------------------------------------------------------------------------
# Double-double building blocks on scratch rows (in place, no allocation).
# Arguments are rows; outputs must not alias inputs unless said.


def _two_sum_rows(a, b, s, e, t):
    """s + e = a + b exactly (Knuth)."""
    np.add(a, b, out=s)
    np.subtract(s, a, out=t)
    np.subtract(s, t, out=e)
    np.subtract(a, e, out=e)
    np.subtract(b, t, out=t)
    e += t


def _split_rows(a, hi, lo):
    """Veltkamp: a = hi + lo, each with at most 26 significant bits."""
    np.multiply(a, _VELTKAMP, out=hi)
    np.subtract(hi, a, out=lo)
    np.subtract(hi, lo, out=hi)
    np.subtract(a, hi, out=lo)


def _two_prod_rows(a, b, p, e, t1, t2, t3, t4):
    """p + e = a*b exactly (Dekker) for |a|, |b| < 2**995."""
    np.multiply(a, b, out=p)
    _split_rows(a, t1, t2)
    _split_rows(b, t3, t4)
    np.multiply(t1, t3, out=e)
    e -= p
    t1 *= t4
    e += t1
    t3 *= t2
    e += t3
    t2 *= t4
    e += t2


def _split_scalar(c):
    c = float(c)
    t = _VELTKAMP * c
    hi = t - (t - c)
    return c, hi, c - hi


def _two_prod_const(a, c, p, e, t1, t2):
    """p + e = a*c exactly, c = (c, c_hi, c_lo) from :func:`_split_scalar`."""
    c, ch, cl = c
    np.multiply(a, c, out=p)
    _split_rows(a, t1, t2)
    np.multiply(t1, ch, out=e)
    e -= p
    t1 *= cl
    e += t1
    np.multiply(t2, ch, out=t1)
    e += t1
    t2 *= cl
    e += t2


def _dd_mul_rows(ah, al, bh, bl, p, e, t1, t2, t3, t4):
    """p + e ~= (ah + al)*(bh + bl) (not renormalised)."""
    _two_prod_rows(ah, bh, p, e, t1, t2, t3, t4)
    np.multiply(ah, bl, out=t1)
    e += t1
    np.multiply(al, bh, out=t1)
    e += t1


def _exp_dd_rows(v, vl, hi, lo, w):
    """hi + lo = exp(v + vl) for finite -1400 < v <= 709 and |vl| < 1e-10 (vl a row
    or None), with a relative error of ~2**-54 (np.exp: 2**-52.2): v = n ln2
    + r exactly (Cody-Waite, as :func:`_exp_dd`), exp(r) = 1 + expm1(r) as a
    double-double, and 2**n applied last (so a subnormal result is rounded
    once). w: 4 scratch rows."""
    n, a, b, t = w
    np.multiply(v, 1.0 / _LN2_HI, out=n)
    np.rint(n, out=n)
    np.multiply(n, -_LN2_HI, out=a)
    a += v  # r, exact
    np.multiply(n, -_LN2_LO, out=b)
    _two_sum_rows(a, b, hi, lo, t)  # hi + lo = r + rl exactly
    if vl is not None:
        lo += vl
    np.expm1(hi, out=a)  # m
    np.add(a, 1.0, out=b)  # 1 + m, rounded
    np.multiply(lo, b, out=t)  # exp(r + rl) = (1 + m)*(1 + rl)
    np.subtract(b, 1.0, out=lo)
    np.subtract(a, lo, out=lo)  # 1 + m = b + lo exactly
    lo += t
    # 2**n as the product of two normal powers of 2 (np.ldexp is a scalar
    # loop, ~8 ns per element): n1 = floor(n/2), n2 = n - n1
    k1, k2 = t.view(np.int64), a.view(np.int64)
    np.copyto(k1, n, casting="unsafe")
    np.right_shift(k1, 1, out=k2)
    k1 -= k2
    k1 += 1023
    k1 <<= 52
    k2 += 1023
    k2 <<= 52
    np.multiply(b, t, out=hi)
    hi *= a  # the second product rounds (once) only into the subnormals
    lo *= t
    lo *= a


# ---------------------------------------------------------------------------
# Piecewise-linear family (exact, in the input dtype)


def _relu_into(x, out):
    np.maximum(x, x.dtype.type(0), out=out)
    if not _MAXIMUM_GIVES_PLUS_ZERO:
        out += x.dtype.type(0)  # -0 + 0 = +0
    return out


def _zero_plus(t):
    """Whether np.maximum(-0.0, +0.0) gives +0 (relu(-0) must be +0), for
    the scalar and the SIMD loops."""
    for n in (1, 3, 17, 67):
        if np.signbit(np.maximum(np.full(n, -0.0, dtype=t), t(0))).any():
            return False
    return True


_MAXIMUM_GIVES_PLUS_ZERO = _zero_plus(_F32) and _zero_plus(_F64)


def relu_forward(x, p):
    with np.errstate(all="ignore"):
        return _relu_into(x, np.empty_like(x))


def _k_keep(out, g, x, p, f32, lo=None, hi=None):
    """g where lo < x < hi (either bound optional) else g*0 (+-0; NaN for
    g = +-inf, which the careful path turns into 0)."""
    m = _rows_as(1, x.size, np.bool_)[0]
    if lo is not None:
        np.greater(x, lo, out=m)
        if hi is not None:
            m &= x < hi  # (small bool temporary)
    else:
        np.less(x, hi, out=m)
    np.multiply(g, m, out=out)


def _k_relu_grad(out, g, x, p, f32):
    _k_keep(out, g, x, p, f32, lo=x.dtype.type(0))


def relu_backward(g, x, p):
    # a NaN x gives g*0: flagged for the careful path
    return _elementwise_grad(g, x, p, _k_relu_grad, _c_relu_backward,
                             rare=np.isnan, wide=False)


# From the output: y > 0 exactly where x > 0, and y is NaN where x is.
relu_backward_y = relu_backward


def hardtanh_forward(x, p):
    with np.errstate(all="ignore"):
        return np.clip(x, _cast(x, p["min_val"]), _cast(x, p["max_val"]), out=np.empty_like(x))


def _k_hardtanh_grad(out, g, x, p, f32):
    _k_keep(out, g, x, p, f32, lo=_cast(x, p["min_val"]), hi=_cast(x, p["max_val"]))


def hardtanh_backward(g, x, p):
    return _elementwise_grad(g, x, p, _k_hardtanh_grad, _c_hardtanh_backward,
                             rare=np.isnan, wide=False)


def relu6_forward(x, p):
    return hardtanh_forward(x, _RELU6)


def relu6_backward(g, x, p):
    return hardtanh_backward(g, x, _RELU6)


def _k_leaky(out, x, s):
    """x if x > 0 else s*x for a T scalar s: max(x, s*x) for s <= 1 (either
    sign), min for s > 1; s = 0 is relu (0, never 0*(-inf) = NaN)."""
    if s == 0:
        return _relu_into(x, out)
    np.multiply(x, s, out=out)
    return np.maximum(x, out, out=out) if s <= 1 else np.minimum(x, out, out=out)


def _k_leaky_relu(out, x, p, f32):
    _k_leaky(out, x, _cast(x, p["negative_slope"]))


def leaky_relu_forward(x, p):
    return _elementwise(x, p, _k_leaky_relu, _c_leaky_relu_forward, wide=False)


def _k_leaky_grad(out, g, x, s):
    """g if x > 0 else g*s, exactly (s a T scalar or chunk)."""
    m, t, u = _rows_as(3, x.size, x.dtype)
    mb = m.view(np.bool_)[:x.size]
    np.greater(x, 0, out=mb)
    np.multiply(g, s, out=u)
    _select(mb, g, u, out, t)


def _k_leaky_relu_grad(out, g, x, p, f32):
    _k_leaky_grad(out, g, x, _cast(x, p["negative_slope"]))


def leaky_relu_backward(g, x, p):
    return _elementwise_grad(g, x, p, _k_leaky_relu_grad, _c_leaky_relu_backward,
                             rare=np.isnan, wide=False)


def _rrelu_plan(x, p):
    """The slope: a T scalar (eval) or the flat array of per-element slopes."""
    s = _rrelu_slope(x, p)
    return s if np.ndim(s) == 0 else s.reshape(-1)


def rrelu_forward(x, p):
    s = _rrelu_plan(x, p)
    if np.ndim(s) == 0:
        return _elementwise(x, p, lambda o, x, p, f: _k_leaky(o, x, s),
                            _c_rrelu_forward, wide=False)

    def kernel(out, x, s, p, f32):
        m, t, u = _rows_as(3, x.size, x.dtype)
        mb = m.view(np.bool_)[:x.size]
        np.greater(x, 0, out=mb)
        np.multiply(x, s, out=u)  # a NaN x is NaN either way
        _select(mb, x, u, out, t)

    with np.errstate(all="ignore"):
        xf = x.reshape(-1)
        y = _drive(kernel, (xf, s), p, x.dtype, wide=False)
        return _finish(y, _c_rrelu_forward_at(s), (xf, np.arange(xf.size)), p, x.shape)


def _c_rrelu_forward_at(s):
    """The careful rrelu on a subset, with the slopes of the whole array."""
    return lambda x, i, p: _result(_leaky(x, s[i]), x.dtype)


def rrelu_backward(g, x, p):
    s = _rrelu_plan(x, p)
    if np.ndim(s) == 0:
        return _elementwise_grad(g, x, p, lambda o, g, x, p, f: _k_leaky_grad(o, g, x, s),
                                 _c_rrelu_backward, rare=np.isnan, wide=False)
    with np.errstate(all="ignore"):
        xf, gf = x.reshape(-1), g.reshape(-1)
        y = _drive(lambda o, g, x, s, p, f: _k_leaky_grad(o, g, x, s), (gf, xf, s), p,
                   x.dtype, wide=False)

        def careful(g, x, i, p):
            return _result(_scale(g, _leaky_slope(x, s[i])), x.dtype)

        return _finish(y, careful, (gf, xf, np.arange(xf.size)), p, x.shape, np.isnan(xf))


def prelu_forward(x3, w, p):
    with np.errstate(all="ignore"):
        wf = np.broadcast_to(w.reshape(1, -1, 1), x3.shape).reshape(-1)

        def kernel(out, x, s, p, f32):
            m, t, u = _rows_as(3, x.size, x.dtype)
            mb = m.view(np.bool_)[:x.size]
            np.greater(x, 0, out=mb)
            np.multiply(x, s, out=u)
            _select(mb, x, u, out, t)

        xf = x3.reshape(-1)
        y = _drive(kernel, (xf, wf), p, x3.dtype, wide=False)
        # 0*(-inf) for a zero slope (0 there), and NaN x
        return _finish(y, lambda x, s, p: _leaky(x, s), (xf, wf), p, x3.shape)


# ---------------------------------------------------------------------------
# Logistic family


def _ratio_logistic(out, num, mz, mzl, w):
    """out = num/(1 + exp(mz + mzl)) for float64 mz <= 708 (mzl: a row or
    None, |mzl| << 1), to within np.exp's error and ~1 ULP: 1 + E
    (E = exp(mz)) is rounded, and its exact rounding error, with mzl's
    first-order effect E*mzl, is applied as num/D*(1 - Dl/D).
    w: 4 scratch rows, none of them mz, num or out."""
    e, d, dl, t = w
    np.exp(mz, out=e)
    _two_sum_rows(e, 1.0, d, dl, t)
    if mzl is not None:
        np.multiply(e, mzl, out=t)
        dl += t
    np.divide(num, d, out=out)
    np.divide(dl, d, out=dl)
    dl *= out
    out -= dl


def _k_sigmoid(out, x, p, f32):
    if f32:  # 1/(1 + exp(-x)): exp overflows only where sigmoid rounds to 0
        np.negative(x, out=out)
        np.exp(out, out=out)
        out += 1.0
        np.divide(1.0, out, out=out)
        return
    w = _rows(5, x.size)
    np.negative(x, out=w[4])
    _ratio_logistic(out, 1.0, w[4], None, w[:4])


def sigmoid_forward(x, p):
    rare = None if x.dtype == _F32 else _below(-_EXP_TAIL)
    return _elementwise(x, p, _k_sigmoid, _c_sigmoid_forward, rare)


def _k_sigmoid_grad(out, g, x, p, f32):
    if f32:  # g/(2 + 2cosh(x)) = g*e/(1 + e)**2
        np.cosh(x, out=out, dtype=_F64)
        out += 1.0
        np.divide(g, out, out=out)
        out *= 0.5
        return
    # g*e/(1 + e)**2, e = exp(-|x|), 1 + e corrected to first order
    e, d, dl = _rows(3, x.size)
    np.abs(x, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.add(e, 1.0, out=d)
    np.subtract(d, 1.0, out=dl)
    np.subtract(e, dl, out=dl)  # 1 + e = d + dl exactly (e <= 1)
    np.multiply(e, g, out=out)
    out /= d
    out /= d
    np.divide(dl, d, out=dl)
    dl *= out
    dl += dl
    out -= dl


def sigmoid_backward(g, x, p):
    rare = None if x.dtype == _F32 else _tail(_EXP_TAIL)
    return _elementwise_grad(g, x, p, _k_sigmoid_grad, _c_sigmoid_backward, rare)


def _k_sigmoid_grad_y(out, g, y, p, f32):
    np.subtract(1.0, y, out=out, dtype=_F64)
    out *= y
    out *= g


def sigmoid_backward_y(g, y, p):
    return _elementwise_grad(g, y, p, _k_sigmoid_grad_y, _c_sigmoid_backward_y)


def _k_log_sigmoid(out, x, p, f32):
    # -log1p(exp(-x)): exp(-x) overflows for x < -709 (the careful path)
    np.negative(x, out=out)
    np.exp(out, out=out)
    np.log1p(out, out=out)
    np.negative(out, out=out)


def log_sigmoid_forward(x, p):
    return _elementwise(x, p, _k_log_sigmoid, _c_log_sigmoid_forward, _below(-_EXP_TAIL))


def _k_log_sigmoid_grad(out, g, x, p, f32):
    # g*sigmoid(-x) = g/(1 + exp(x))
    if f32:
        np.exp(x, out=out, dtype=_F64)
        out += 1.0
        np.divide(g, out, out=out)
        return
    w = _rows(4, x.size)
    _ratio_logistic(out, g, x, None, w)


def log_sigmoid_backward(g, x, p):
    rare = None if x.dtype == _F32 else _above(_EXP_TAIL)
    return _elementwise_grad(g, x, p, _k_log_sigmoid_grad, _c_log_sigmoid_backward, rare)


def _k_softplus(out, x, p, f32):
    # log1p(exp(z))/beta, z = beta*x, and x where z > threshold; exp
    # overflows only beyond 709 (the careful path when below the threshold)
    beta, threshold = p["beta"], p["threshold"]
    z = _rows(1, x.size)[0]
    np.multiply(x, beta, out=z, dtype=_F64)
    np.exp(z, out=out)
    np.log1p(out, out=out)
    if beta != 1:
        out /= beta
    _k_above(out, x, z, threshold)


def _k_above(out, v, z, threshold):
    """out = v where z > threshold (rare: a copy with a mostly-False mask)."""
    m = z > threshold  # (small bool temporary)
    if m.any():
        np.copyto(out, v, where=m)


def softplus_forward(x, p):
    beta, threshold = p["beta"], p["threshold"]
    if x.dtype == _F64 and beta != 1:
        # (y + e)/beta needs the exact remainder of the division
        return _elementwise(x, p, _whole(_c_softplus_forward), _c_softplus_forward,
                            wide=False)
    if threshold < _EXP_TAIL:
        return _elementwise(x, p, _k_softplus, _c_softplus_forward)
    return _elementwise(x, p, _k_softplus, _c_softplus_forward, _above(_EXP_TAIL / beta))


def _k_softplus_grad(out, g, x, p, f32):
    # g*sigmoid(z) = g/(1 + exp(-z)), z = beta*x, and g where z > threshold
    beta, threshold = p["beta"], p["threshold"]
    w = _rows(7, x.size)
    z, mz = w[5], w[4]
    np.multiply(x, beta, out=z, dtype=_F64)
    if f32:
        np.negative(z, out=out)
        np.exp(out, out=out)
        out += 1.0
        np.divide(g, out, out=out)
    else:
        if beta == 1:
            np.negative(x, out=mz)
            mzl = None
        else:
            _two_prod_const(x, _split_scalar(-beta), mz, w[6], w[0], w[1])
            mzl = w[6]
        _ratio_logistic(out, g, mz, mzl, w[:4])
    _k_above(out, g, z, threshold)


def softplus_backward(g, x, p):
    beta = p["beta"]
    rare = None if x.dtype == _F32 else _below(-_EXP_TAIL / beta)
    return _elementwise_grad(g, x, p, _k_softplus_grad, _c_softplus_backward, rare)


def _swish_rare(x, p):
    """Elements for the careful path: beta*x below the tail, or NaN."""
    beta = p["beta"]
    if beta == 0:
        return np.isnan(x)
    lim = -_EXP_TAIL / abs(beta)
    return ~(x >= lim) if beta > 0 else ~(x <= -lim)


def _k_swish(out, x, p, f32):
    # x*sigmoid(z) = x/(1 + exp(-z)), z = beta*x
    beta = p["beta"]
    if f32:
        np.multiply(x, -beta, out=out, dtype=_F64)
        np.exp(out, out=out)
        out += 1.0
        np.divide(x, out, out=out)  # NaN at x = -inf (inf/inf): careful
        return
    w = _rows(5, x.size)
    np.multiply(x, -beta, out=w[4])  # exact: beta is 1 or a power of 2 here
    _ratio_logistic(out, x, w[4], None, w[:4])


def swish_forward(x, p):
    beta = p["beta"]
    if x.dtype == _F64 and beta != 0 and abs(np.frexp(beta)[0]) != 0.5:
        # beta*x is rounded, and exp multiplies its error by |beta*x|: a
        # first-order correction costs a second rounding (2.1 ULP measured);
        # the careful path divides exactly
        return _elementwise(x, p, _whole(_c_swish_forward), _c_swish_forward, wide=False)
    rare = None if x.dtype == _F32 else (lambda xf: _swish_rare(xf, p))
    return _elementwise(x, p, _k_swish, _c_swish_forward, rare)


def _k_swish_grad(out, g, x, p, f32):
    # f' = s + z*s'(z), z = beta*x (exact: beta 1 or a power of 2 for
    # float64), in terms of E = exp(-z) and D = 1 + E:
    # f' = (1 + E(1 + z))/D**2, and for z >= 0, where f' is 1 + a small c,
    # f' = 1 + c with c = E(z - D)/D**2 (fewer roundings on the O(1) part).
    # The numerator cancels only near the root of f' (z = -1.2785), where
    # the bound is absolute.
    beta = p["beta"]
    if f32:  # s*(1 + z*(1 - s)), s = 1/(1 + exp(-z))
        z, t = _rows(2, x.size)
        np.multiply(x, beta, out=z, dtype=_F64)
        np.negative(z, out=out)
        np.exp(out, out=out)
        out += 1.0
        np.divide(1.0, out, out=out)  # s
        np.subtract(1.0, out, out=t)
        t *= z
        t += 1.0
        out *= t
        out *= g
        return
    w = _rows(8, x.size)
    e, d, dl, a, b, t, z = w[:7]
    k = w[7].view(np.bool_)[:x.size]
    if beta == 1:
        z = x
    else:
        np.multiply(x, beta, out=z)
    np.negative(z, out=e)
    np.exp(e, out=e)
    _two_sum_rows(e, 1.0, d, dl, t)  # 1 + E = d + dl exactly
    np.greater_equal(z, 0.0, out=k)
    np.subtract(z, d, out=a)
    a *= e
    a *= k  # E(z - D) for z >= 0, else 0
    np.less(z, 0.0, out=k)
    np.add(z, 1.0, out=b)
    b *= e
    b += 1.0
    b *= k  # 1 + E(1 + z) for z < 0, else 0
    a += b
    a /= d
    a /= d  # c (z >= 0) or f' (z < 0)
    # d's rounding error dl, to first order: -dl/D*(2t + [z >= 0]*E/D)
    np.divide(e, d, out=b)
    np.logical_not(k, out=k)
    b *= k
    b += a
    b += a
    b *= dl
    b /= d
    a -= b
    a += k  # + 1 for z >= 0
    np.multiply(a, g, out=out)


def swish_backward(g, x, p):
    beta = p["beta"]
    if x.dtype == _F64 and beta != 0 and abs(np.frexp(beta)[0]) != 0.5:
        # beta*x is rounded: its error, amplified by |z|, must be carried
        return _elementwise_grad(g, x, p, _whole(_c_swish_backward), _c_swish_backward,
                                 wide=False)
    lim = (150.0 if x.dtype == _F32 else 15.0) / abs(beta) if beta else np.inf

    def rare(x):  # float64: z < -15 (within 4 ULP only with exp_dd: careful)
        if beta == 0:
            return np.isnan(x)
        return ~(x >= -lim) if beta > 0 else ~(x <= lim)

    kernel, careful = _k_swish_grad, _c_swish_backward
    if x.dtype == _F64 and beta != 0:  # and near the root of f'
        kernel = _near_root_nan(kernel, _SILU_ROOT, beta)
        careful = _series_first(careful, _SILU_ROOT, beta)
    return _elementwise_grad(g, x, p, kernel, careful, rare)


_SILU = {"beta": 1.0}


def silu_forward(x, p):
    return swish_forward(x, _SILU)  # bit-identical to swish(x, beta=1)


def silu_backward(g, x, p):
    return swish_backward(g, x, _SILU)


def tanh_forward(x, p):
    # NumPy's own tanh in the input dtype: measured within 1.4 ULP for
    # float32 (every 7th bit pattern against float64) and 1.2 for float64.
    with np.errstate(all="ignore"):
        return np.tanh(x, out=np.empty_like(x))


def _k_tanh_grad(out, g, x, p, f32):
    if f32:  # g/cosh(x)**2 (cosh overflows where tanh' rounds to 0)
        d = _rows(1, x.size)[0]
        np.cosh(x, out=d, dtype=_F64)
        np.divide(g, d, out=out)
        out /= d
        return
    # 4g*e/(1 + e)**2, e = exp(-2|x|), 1 + e corrected to first order; the
    # exact factor 4 last, so that a huge g does not overflow on the way
    e, d, dl = _rows(3, x.size)
    np.abs(x, out=e)
    e *= -2.0
    np.exp(e, out=e)
    np.add(e, 1.0, out=d)
    np.subtract(d, 1.0, out=dl)
    np.subtract(e, dl, out=dl)
    np.multiply(e, g, out=out)
    out /= d
    out /= d
    out *= 4.0
    np.divide(dl, d, out=dl)
    dl *= out
    dl += dl
    out -= dl


def tanh_backward(g, x, p):
    rare = None if x.dtype == _F32 else _tail(_EXP_TAIL / 2)
    return _elementwise_grad(g, x, p, _k_tanh_grad, _c_tanh_backward, rare)


def _k_tanh_grad_y(out, g, y, p, f32):
    t = _rows(1, y.size)[0]
    np.subtract(1.0, y, out=out, dtype=_F64)
    np.add(1.0, y, out=t, dtype=_F64)
    out *= t
    out *= g


def tanh_backward_y(g, y, p):
    return _elementwise_grad(g, y, p, _k_tanh_grad_y, _c_tanh_backward_y)


def _k_softsign(out, x, p, f32):
    # x/(1 + |x|) in the input dtype: two correctly rounded operations, so
    # the relative error is below 2u, the error below 2 ULP (measured: 1.5);
    # +-inf gives inf/inf, a NaN for the careful path.
    np.abs(x, out=out)
    out += x.dtype.type(1)
    np.divide(x, out, out=out)


def softsign_forward(x, p):
    return _elementwise(x, p, _k_softsign, _c_softsign_forward, wide=False)


def _k_softsign_grad(out, g, x, p, f32):
    # (g/(1 + |x|))/(1 + |x|) in the input dtype: three roundings, within
    # 4 ULP (measured: 3.0); divided twice, as the square would overflow.
    d = _rows_as(1, x.size, x.dtype)[0]
    np.abs(x, out=d)
    d += x.dtype.type(1)
    np.divide(g, d, out=out)
    out /= d


def softsign_backward(g, x, p):
    return _elementwise_grad(g, x, p, _k_softsign_grad, _c_softsign_backward, wide=False)


# ---------------------------------------------------------------------------
# Exponential family: the result is max(x, 0) + (the exponential branch
# evaluated at min(x, 0)), one of the two terms being 0.


def _k_elu(out, x, p, f32):
    alpha = p["alpha"]
    t = _rows(1, x.size)[0]
    np.minimum(x, 0.0, out=out)
    np.expm1(out, out=out)
    if alpha != 1:
        out *= alpha
    np.maximum(x, 0.0, out=t)
    out += t


def elu_forward(x, p):
    return _elementwise(x, p, _k_elu, _c_elu_forward)


def _k_step(out, x, c, t):
    """out = c where x > 0 (c a scalar).  A select, not out += c - out: with a
    large alpha, alpha + (1 - alpha) cancels to 0 (fuzz_boundary, issue 4)."""
    m = t.view(np.bool_)[:x.size]
    np.greater(x, 0, out=m)
    np.copyto(out, c, where=m)


def _k_elu_grad(out, g, x, p, f32):
    # alpha*exp(min(x, 0)), and 1 for x > 0 (elu'(0) = alpha)
    alpha = p["alpha"]
    t = _rows(1, x.size)[0]
    np.minimum(x, 0.0, out=out)
    np.exp(out, out=out)
    if alpha != 1:
        out *= alpha
        _k_step(out, x, 1.0, t)
    out *= g


def elu_backward(g, x, p):
    # float64: f' underflows below -700 while g*f' may not (careful path)
    kernel = _k_elu_grad if x.dtype == _F32 else _nan_below(_k_elu_grad, -_EXP_TAIL, x)
    return _elementwise_grad(g, x, p, kernel, _c_elu_backward)


def _k_selu(out, x, p, f32):
    t = _rows(1, x.size)[0]
    np.minimum(x, 0.0, out=out)
    np.expm1(out, out=out)
    if f32:
        out *= _SELU_SA[0]
    else:  # scale*alpha as a double-double
        np.multiply(out, _SELU_SA[1], out=t)
        out *= _SELU_SA[0]
        out += t
    np.maximum(x, 0.0, out=t)
    t *= SELU_SCALE
    out += t


def selu_forward(x, p):
    return _elementwise(x, p, _k_selu, _c_selu_forward)


def _k_selu_grad(out, g, x, p, f32):
    t = _rows(1, x.size)[0]
    np.minimum(x, 0.0, out=out)
    np.exp(out, out=out)  # 1 for x > 0
    if not f32:
        np.multiply(out, _SELU_SA[1], out=t)
        out *= _SELU_SA[0]
        out += t
    else:
        out *= _SELU_SA[0]
    _k_step(out, x, SELU_SCALE, t)
    out *= g


def selu_backward(g, x, p):
    kernel = _k_selu_grad if x.dtype == _F32 else _nan_below(_k_selu_grad, -_EXP_TAIL, x)  # as elu
    return _elementwise_grad(g, x, p, kernel, _c_selu_backward)


def _k_celu(out, x, p, f32):
    alpha = p["alpha"]
    t = _rows(1, x.size)[0]
    np.minimum(x, 0.0, out=out)
    if alpha != 1:
        out /= alpha
    np.expm1(out, out=out)
    if alpha != 1:
        out *= alpha
    np.maximum(x, 0.0, out=t)
    out += t


def celu_forward(x, p):
    if x.dtype == _F64 and p["alpha"] < 0:
        # expm1(x/alpha) grows: x/alpha's rounding error must be carried
        return _elementwise(x, p, _whole(_c_celu_forward), _c_celu_forward, wide=False)
    return _elementwise(x, p, _k_celu, _c_celu_forward)


def _k_celu_grad(out, g, x, p, f32):
    # exp(min(x, 0)/alpha): 1 for x > 0
    alpha = p["alpha"]
    np.minimum(x, 0.0, out=out)
    if alpha == 1:
        np.exp(out, out=out)
    elif f32:
        out /= alpha
        np.exp(out, out=out)
    else:
        # exp(t) multiplies t = x/alpha's relative rounding error by |t|:
        # the exact remainder of the division, tl, enters as exp(t)*(1 + tl)
        w = _rows(5, x.size)
        t, tl = w[0], w[1]
        np.divide(out, alpha, out=t)
        _two_prod_const(t, _split_scalar(alpha), tl, w[2], w[3], w[4])
        np.subtract(out, tl, out=tl)  # exact (Sterbenz)
        tl -= w[2]
        tl /= alpha
        np.exp(t, out=out)
        tl *= out
        out += tl
    out *= g


def celu_backward(g, x, p):
    alpha = p["alpha"]
    if x.dtype == _F64 and alpha < 0:
        return _elementwise_grad(g, x, p, _whole(_c_celu_backward), _c_celu_backward,
                                 wide=False)
    kernel = _k_celu_grad
    if x.dtype == _F64:  # as elu
        kernel = _nan_below(kernel, -_EXP_TAIL * alpha, x)
    return _elementwise_grad(g, x, p, kernel, _c_celu_backward)


# ---------------------------------------------------------------------------
# Piecewise-polynomial family


def _k_hardsigmoid(out, x, p, f32):
    # clip((x + 3)/6, 0, 1) in the input dtype: two correctly rounded
    # operations (the sum is exact near -3), error below 2 ULP.
    np.add(x, x.dtype.type(3), out=out)
    out /= x.dtype.type(6)
    np.clip(out, 0, 1, out=out)


def hardsigmoid_forward(x, p):
    return _elementwise(x, p, _k_hardsigmoid, _c_hardsigmoid_forward, wide=False)


def _k_hardsigmoid_grad(out, g, x, p, f32):
    # g*(1/6 where |x| < 3, else 0), the indicator as clip((3 - |x|)*huge)
    # (NaN stays NaN)
    t = x.dtype.type
    np.abs(x, out=out)
    np.subtract(t(3), out, out=out)
    out *= _HUGE[x.dtype]
    np.clip(out, 0, t(1.0 / 6.0), out=out)
    out *= g


def hardsigmoid_backward(g, x, p):
    return _elementwise_grad(g, x, p, _k_hardsigmoid_grad, _c_hardsigmoid_backward,
                             wide=False)


def _k_hardswish(out, x, p, f32):
    # x*clip((x + 3)/6, 0, 1) in the input dtype (three roundings):
    # float32, every input in [-3, 3] checked against float64: within 1.88
    # ULP; outside, exact. float64: within 1.9 ULP measured. x*0 below -3
    # (-inf*0: NaN, the careful path).
    T = x.dtype.type
    np.add(x, T(3), out=out)
    out /= T(6)
    np.clip(out, T(0), T(1), out=out)
    out *= x


def hardswish_forward(x, p):
    return _elementwise(x, p, _k_hardswish, _c_hardswish_forward, wide=False)


def _k_hardswish_grad(out, g, x, p, f32):
    # (2c + 3 - 3k)/6 with c = clip(x, -3, 3), k = trunc(c/3): k is -1 or 1
    # only at c = -3 or 3, where f' is 0 and 1 (hardswish'(-3) = 0,
    # hardswish'(3) = 1), and 2c + 3 is exact near the root -3/2. In the
    # input dtype: three roundings with the product by g, within 3 ULP.
    T = x.dtype.type
    k = _rows_as(1, x.size, x.dtype)[0]
    np.clip(x, T(-3), T(3), out=out)
    np.divide(out, T(3), out=k)
    np.trunc(k, out=k)
    k *= T(3)
    out += out
    out += T(3)
    out -= k
    out /= T(6)
    out *= g


def hardswish_backward(g, x, p):
    return _elementwise_grad(g, x, p, _k_hardswish_grad, _c_hardswish_backward, wide=False)


# ---------------------------------------------------------------------------
# mish


def _k_mish(out, x, p, f32):
    if not f32:
        return _k_mish_dd(out, x)
    # x*n/(n + 2), n = e*(e + 2), e = exp(min(x, 40)) (t = 1 from there on)
    e, t = _rows(2, x.size)
    np.minimum(x, _MISH_LINEAR, out=e)
    np.exp(e, out=e)
    np.add(e, 2.0, out=t)
    t *= e
    np.add(t, 2.0, out=out)
    np.divide(t, out, out=out)
    out *= x  # -inf*0 at x = -inf: NaN, the careful path


def mish_forward(x, p):
    rare = None if x.dtype == _F32 else _below(-_EXP_TAIL)
    return _elementwise(x, p, _k_mish, _c_mish_forward, rare)


def _k_mish_grad(out, g, x, p, f32):
    if not f32:
        return _k_mish_grad_dd(out, g, x)
    # t + x*q, q = 4e(1 + e)/(n + 2)**2, t = n/(n + 2)
    e, n, den, q = _rows(4, x.size)
    np.minimum(x, _MISH_LINEAR, out=e)
    np.exp(e, out=e)
    np.add(e, 2.0, out=n)
    n *= e
    np.add(n, 2.0, out=den)
    np.add(e, 1.0, out=q)
    q *= e
    q *= 4.0
    q /= den
    q /= den
    np.minimum(x, _MISH_LINEAR, out=out)
    q *= out  # 0*(-inf) at x = -inf: NaN, the careful path
    np.divide(n, den, out=out)
    out += q
    out *= g


def mish_backward(g, x, p):
    if x.dtype == _F32:
        return _elementwise_grad(g, x, p, _k_mish_grad, _c_mish_backward)
    return _elementwise_grad(g, x, p, _near_root_nan(_k_mish_grad, _MISH_ROOT),
                             _series_first(_c_mish_backward, _MISH_ROOT), _below(-_EXP_TAIL))


def _mish_dd_rows(x, w):
    """For float64 x >= -700: xc = min(x, 40), e = exp(xc), the double-
    doubles den = n + 2 (n = e(e + 2)) and t = n/den = tanh(softplus(x)),
    in rows of w (returned as named views)."""
    xc, e, ph, pl, nh, nl, dh, dl, th, tl, t1, t2, t3, t4 = w[:14]
    np.minimum(x, _MISH_LINEAR, out=xc)
    np.exp(xc, out=e)
    _two_sum_rows(e, 2.0, ph, pl, t1)  # e + 2
    _two_prod_rows(e, ph, nh, nl, t1, t2, t3, t4)
    np.multiply(e, pl, out=t1)
    nl += t1  # n = e*(e + 2)
    _two_sum_rows(nh, 2.0, dh, dl, t1)
    dl += nl  # den = n + 2
    np.divide(nh, dh, out=th)  # t = n/den: quotient and remainder
    _two_prod_rows(th, dh, ph, pl, t1, t2, t3, t4)
    np.subtract(nh, ph, out=tl)
    tl -= pl
    tl += nl
    np.multiply(th, dl, out=t1)
    tl -= t1
    tl /= dh
    return xc, e, dh, dl, th, tl


def _k_mish_dd(out, x):
    w = _rows(18, x.size)
    xc, e, dh, dl, th, tl = _mish_dd_rows(x, w)
    t1, t2, t3, t4, ph, pl = w[10], w[11], w[12], w[13], w[14], w[15]
    _two_prod_rows(xc, th, ph, pl, t1, t2, t3, t4)  # x*t rounded once
    np.multiply(xc, tl, out=t1)
    pl += t1
    np.add(ph, pl, out=out)
    _k_above(out, x, x, _MISH_LINEAR)  # mish(x) = x from 40 on


def _k_mish_grad_dd(out, g, x):
    # f' = t + x*q, q = 4e(1 + e)/den**2, as double-doubles
    w = _rows(24, x.size)
    xc, e, dh, dl, th, tl = _mish_dd_rows(x, w)
    t1, t2, t3, t4 = w[10], w[11], w[12], w[13]
    ah, al, nh, nl, sh, sl, qh, ql = w[14:22]
    _two_sum_rows(e, 1.0, ah, al, t1)  # 1 + e
    _two_prod_rows(e, ah, nh, nl, t1, t2, t3, t4)
    np.multiply(e, al, out=t1)
    nl += t1  # e(1 + e)
    _two_prod_rows(dh, dh, sh, sl, t1, t2, t3, t4)
    np.multiply(dh, dl, out=t1)
    t1 += t1
    sl += t1  # den**2
    np.divide(nh, sh, out=qh)
    _two_prod_rows(qh, sh, ah, al, t1, t2, t3, t4)
    np.subtract(nh, ah, out=ql)
    ql -= al
    ql += nl
    np.multiply(qh, sl, out=t1)
    ql -= t1
    ql /= sh  # q/4
    np.multiply(xc, 4.0, out=e)  # 4x
    _two_prod_rows(e, qh, nh, nl, t1, t2, t3, t4)
    np.multiply(e, ql, out=t1)
    nl += t1  # x*q
    _two_sum_rows(th, nh, sh, sl, t1)
    sl += tl
    sl += nl
    np.add(sh, sl, out=out)
    _k_above(out, 1.0, x, _MISH_LINEAR)  # mish'(x) = 1 from 40 on
    out *= g


# ---------------------------------------------------------------------------
# gelu
#
# float32: Phi(x) = erfc(-x/sqrt(2))/2 through erfcx(a) = exp(a*a)*erfc(a),
# a = |x|/sqrt(2), approximated by one polynomial in t, an affine function of
# (a - 3)/(a + 3), for a <= 10.5 (beyond, gelu rounds to 0 or x in float32):
# relative error 1.2e-12 (mpmath), so float32 results are rounded once from
# values within 2**-39 of the truth. Then with h = erfcx(a)*exp(-x*x/2)/2
# (= Phi(-|x|)): gelu(x) = max(x, 0) - |x|*h, gelu'(x) = Phi + x*phi(x) with
# Phi = h for x <= 0, 1 - h for x > 0, phi(x) = exp(-x*x/2)/sqrt(2 pi).
#
# float64: erfcx from the piecewise table of the careful section (one more
# interval for [0, 1/4], where the careful code uses erf's series), indexed
# through a table of the 1/8-steps (every break is a multiple of 1/8),
# the argument a as a double-double (its low part to first order),
# exp(-x*x/2) from the exact square by :func:`_exp_dd_rows`, and everything
# after that in double-double: the products are rounded once.

# --- generated with mpmath (50 digits): a least-squares Chebyshev fit of
# erfcx on 600 Chebyshev nodes of t, converted to powers of t; the Taylor
# series of erfcx at 1/8 ---
_GELU32_K, _GELU32_AMAX, _GELU32_C, _GELU32_H = 3.0, 10.5, -0.2222222222222222, 0.7777777777777778
_GELU32_POLY = (  # t**0 .. t**14; max relative error 1.22e-12 on [0, 10.5]
    0.2654619219970114, -0.3586229174692843, 0.2236688500258488,
    -0.10667478647060759, 0.0371643752310503, -0.008248285003562627,
    0.0005171348985990552, 0.0003028059739974661, -7.132741447770134e-05,
    -1.1491117288395995e-05, 5.366555253461017e-06, 6.713485584182416e-07,
    -3.968753183453341e-07, -4.738916202055374e-08, 2.545590380708418e-08,
)
# erfcx on [0, 1/4]: Taylor series at 1/8 to s**14 (truncation 1.3e-18)
_ERFCX0_C0 = (0.8732218450821508, -2.8597780263826275e-17)
_ERFCX0_COEF = (
    -0.9100737058249748, 0.759462631854029, -0.5434272512288142, 0.3457671127252136,
    -0.200082544855265, 0.10691893153943516, -0.05334790811795303, 0.025062610756172755,
    -0.01115890706076254, 0.0047335494747154875, -0.001921311522986019,
    0.0007488975890570393, -0.00028118451143905985, 0.00010196421787530812,
)
# --- end of generated tables ---

_ERFCX_MIDS = np.array((0.125,) + _ERFC_MIDS)
_ERFCX_C0_HI = np.array((_ERFCX0_C0[0],) + _ERFC_C0_HI)
_ERFCX_C0_LO = np.array((_ERFCX0_C0[1],) + _ERFC_C0_LO)
_ERFCX_COEF = np.ascontiguousarray(np.array((_ERFCX0_COEF,) + _ERFC_COEF).T)  # [k-1][i]
#: interval of a in [k/8, (k+1)/8), for k = 0 .. 223 (a < 28)
_ERFCX_INDEX = np.searchsorted(np.array((0.0,) + _ERFC_BREAKS), np.arange(224) / 8.0,
                               side="right").astype(np.intp) - 1
_GELU_TAIL = 37.0  # exp(-x*x/2) < 2**-987 beyond: float64 gelu is 0 (careful) or x
_TWO_OVER_SQRTPI_ = 2.0 / np.sqrt(np.pi)
_SQRT1_2_SPLIT = _split_scalar(_SQRT1_2[0])


def _k_gelu32(out, x, p, f32, grad=None):
    """float32 gelu (grad None) or g*gelu' (grad = g), in float64."""
    a, t, e = _rows(3, x.size)
    np.abs(x, out=a)
    a *= _SQRT1_2[0]
    np.minimum(a, _GELU32_AMAX, out=a)
    np.subtract(a, _GELU32_K, out=t)  # t = ((a - K)/(a + K) - C)/H
    a += _GELU32_K
    t /= a
    t -= _GELU32_C
    t /= _GELU32_H
    c = _GELU32_POLY
    np.multiply(t, c[-1], out=out)
    out += c[-2]
    for ck in c[-3::-1]:
        out *= t
        out += ck
    np.square(x, out=e, dtype=_F64)
    e *= -0.5
    np.exp(e, out=e)  # exp(-x*x/2)
    out *= e
    out *= 0.5  # h = Phi(-|x|)
    if grad is None:
        np.abs(x, out=a)
        out *= a  # -inf*0 at +-inf: NaN, the careful path
        np.maximum(x, 0.0, out=a)
        np.subtract(a, out, out=out)
        return
    # Phi = h + (x > 0)*(1 - 2h), then + x*phi
    m = t.view(np.bool_)[:x.size]
    np.greater(x, 0, out=m)
    np.multiply(out, -2.0, out=a)
    a += 1.0
    a *= m
    out += a
    e *= x
    e *= _INV_SQRT_2PI[0]
    out += e
    out *= grad


def _gelu_dd_rows(x, w):
    """For float64 x >= -37: a = |x|/sqrt(2) clipped to 40/sqrt(2), and
    (hh, hl) = erfcx(a)*exp(-x*x/2)/2 = Phi(-|x|) and (eh, el) =
    exp(-x*x/2), double-doubles, in rows of w (returned)."""
    (ax, a, al, s, r, c0, t1, t2, t3, t4, rh, rl, eh, el, hh, hl) = w[:16]
    ir = w[16].view(np.intp)
    np.abs(x, out=ax)
    np.minimum(ax, 40.0, out=ax)
    _two_prod_const(ax, _SQRT1_2_SPLIT, a, al, t1, t2)
    np.multiply(ax, _SQRT1_2[1], out=t1)
    al += t1  # a + al = |x|/sqrt(2)
    # the interval and s = a - mid (exact: intervals within a ratio of 3)
    np.minimum(a, 27.99, out=t1)
    t1 *= 8.0
    kr = t2.view(np.intp)
    np.copyto(kr, t1, casting="unsafe")
    np.take(_ERFCX_INDEX, kr, out=ir, mode="clip")
    np.take(_ERFCX_MIDS, ir, out=s, mode="clip")
    np.subtract(a, s, out=s)
    coef = _ERFCX_COEF
    np.take(coef[-1], ir, out=r, mode="clip")
    for k in range(coef.shape[0] - 2, -1, -1):
        r *= s
        np.take(coef[k], ir, out=t1, mode="clip")
        r += t1
    r *= s
    np.take(_ERFCX_C0_LO, ir, out=t1, mode="clip")
    r += t1
    np.take(_ERFCX_C0_HI, ir, out=c0, mode="clip")
    np.add(c0, r, out=rh)  # erfcx = c0 + r, |r| < |c0|
    np.subtract(rh, c0, out=rl)
    np.subtract(r, rl, out=rl)
    # a's low part: erfcx(a + al) = erfcx(a) + al*(2a*erfcx(a) - 2/sqrt(pi))
    np.multiply(a, rh, out=t1)
    t1 += t1
    t1 -= _TWO_OVER_SQRTPI_
    t1 *= al
    rl += t1
    # exp(-x*x/2) from the exact square (x clipped at 40: exp(-700) there)
    _two_prod_rows(ax, ax, hh, hl, t1, t2, t3, t4)
    hh *= -0.5
    hl *= -0.5
    np.maximum(hh, -700.0, out=hh)
    _exp_dd_rows(hh, hl, eh, el, (t1, t2, t3, t4))
    _dd_mul_rows(rh, rl, eh, el, hh, hl, t1, t2, t3, t4)
    hh *= 0.5
    hl *= 0.5
    return ax, eh, el, hh, hl


def _k_gelu64(out, x, grad=None):
    w = _rows(22, x.size)
    ax, eh, el, hh, hl = _gelu_dd_rows(x, w)
    t1, t2, t3, t4 = w[6], w[7], w[8], w[9]
    ph, pl, sh, sl = w[17], w[18], w[19], w[20]
    if grad is None:
        # gelu = max(x, 0) - |x|*h, the product and the sum error-free
        _two_prod_rows(ax, hh, ph, pl, t1, t2, t3, t4)
        np.multiply(ax, hl, out=t1)
        pl += t1
        np.maximum(x, 0.0, out=t1)
        np.negative(ph, out=ph)
        _two_sum_rows(t1, ph, sh, sl, t2)
        sl -= pl
        np.add(sh, sl, out=out)
        _k_above(out, x, x, _GELU_TAIL)
        return
    # gelu' = Phi + x*phi: Phi = step + sgn*h (step 1 and sgn -1 for x > 0,
    # 0 and +1 else), x*phi = x*exp(-x*x/2)/sqrt(2 pi)
    sg = w[21]
    np.copysign(1.0, x, out=sg)
    np.negative(sg, out=sg)
    hh *= sg
    hl *= sg
    np.subtract(1.0, sg, out=t1)
    t1 *= 0.5  # step
    _two_sum_rows(t1, hh, sh, sl, t2)
    sl += hl  # Phi
    np.minimum(x, 40.0, out=ax)
    _two_prod_rows(ax, eh, ph, pl, t1, t2, t3, t4)
    np.multiply(ax, el, out=t1)
    pl += t1  # x*exp(-x*x/2)
    _two_prod_const(ph, _INV_SQRT_2PI_SPLIT, hh, hl, t1, t2)
    np.multiply(ph, _INV_SQRT_2PI[1], out=t1)
    hl += t1
    np.multiply(pl, _INV_SQRT_2PI[0], out=t1)
    hl += t1  # x*phi
    _two_sum_rows(sh, hh, ph, pl, t1)
    pl += sl
    pl += hl
    np.add(ph, pl, out=out)
    _k_above(out, 1.0, x, _GELU_TAIL)
    out *= grad


_INV_SQRT_2PI_SPLIT = _split_scalar(_INV_SQRT_2PI[0])


def _gelu_tanh_z_rows(x, w):
    """z = 2*sqrt(2/pi)*(x + 0.044715 x**3) as a double-double (zh, zl) for
    float64 x clipped to [-30, 30], and x*x (x2h, x2l), in rows of w."""
    xc, x2h, x2l, uh, ul, zh, zl, t1, t2, t3, t4 = w[:11]
    np.clip(x, -_GELU_TANH_CLIP, _GELU_TANH_CLIP, out=xc)
    _two_prod_rows(xc, xc, x2h, x2l, t1, t2, t3, t4)
    _two_prod_const(x2h, _GELU_C_SPLIT, zh, zl, t1, t2)  # c*x*x
    np.multiply(x2h, _GELU_C[1], out=t1)
    zl += t1
    np.multiply(x2l, _GELU_C[0], out=t1)
    zl += t1
    _two_sum_rows(zh, 1.0, uh, ul, t1)  # 1 + c*x*x
    ul += zl
    _two_prod_rows(xc, uh, zh, zl, t1, t2, t3, t4)
    np.multiply(xc, ul, out=t1)
    zl += t1  # x*(1 + c*x*x)
    np.copyto(uh, zh)
    np.copyto(ul, zl)
    _two_prod_const(uh, _GELU_2K_SPLIT, zh, zl, t1, t2)
    np.multiply(uh, _GELU_2K[1], out=t1)
    zl += t1
    np.multiply(ul, _GELU_2K[0], out=t1)
    zl += t1
    return xc, x2h, x2l, zh, zl


_GELU_C_SPLIT = _split_scalar(_GELU_C[0])
_GELU_2K_SPLIT = _split_scalar(_GELU_2K[0])
_GELU_TANH_TAIL = 21.0  # z < -700 below -21.2


def _k_gelu_tanh(out, x, p, f32, grad=None):
    if f32:
        z, e = _rows(2, x.size)
        np.square(x, out=z, dtype=_F64)
        z *= _GELU_C[0]
        z += 1.0
        z *= x
        z *= _GELU_2K[0]  # z = 2u
        np.negative(z, out=e)
        np.exp(e, out=e)
        if grad is None:
            e += 1.0
            np.divide(x, e, out=out)  # NaN at -inf: the careful path
            return
        # s + w*s'(z), w = 2k*x*(1 + 3c*x*x), s' = E/(1 + E)**2
        np.add(e, 1.0, out=out)  # D
        np.square(x, out=z, dtype=_F64)
        z *= _GELU_3C[0]
        z += 1.0
        z *= x
        z *= _GELU_2K[0]  # w
        e /= out
        z *= e
        z /= out  # w*s'
        np.divide(1.0, out, out=out)
        out += z
        out *= grad
        return
    w = _rows(24, x.size)
    xc, x2h, x2l, zh, zl = _gelu_tanh_z_rows(x, w)
    ww = w[11:]
    if grad is None:
        np.negative(zh, out=ww[4])
        np.negative(zl, out=ww[5])
        _ratio_logistic(out, x, ww[4], ww[5], ww[:4])
        return
    # f' = s + W*s', W = 2k*x*(1 + 3c*x*x), s = sigmoid(z), s' = s*(E*s),
    # E = exp(-z), all as double-doubles
    e, dh, dl, sh, sl, qh, ql, t1, t2, t3, t4, vh, vl = ww[:13]
    t5 = w[7]
    np.negative(zh, out=e)
    np.exp(e, out=e)
    np.multiply(e, zl, out=t1)
    np.negative(t1, out=t5)  # E's true value is E*(1 - zl) = e + t5
    _two_sum_rows(e, 1.0, dh, dl, t1)
    dl += t5  # D = 1 + E
    np.divide(1.0, dh, out=sh)  # s = 1/D
    _two_prod_rows(sh, dh, qh, ql, t1, t2, t3, t4)
    np.subtract(1.0, qh, out=sl)
    sl -= ql
    np.multiply(sh, dl, out=t1)
    sl -= t1
    sl /= dh
    _two_prod_rows(e, sh, qh, ql, t1, t2, t3, t4)  # E*s
    np.multiply(e, sl, out=t1)
    ql += t1
    np.multiply(t5, sh, out=t1)
    ql += t1
    _dd_mul_rows(qh, ql, sh, sl, vh, vl, t1, t2, t3, t4)  # s' = (E*s)*s
    # W = 2k*x*(1 + 3c*x*x)
    _two_prod_const(x2h, _GELU_3C_SPLIT, qh, ql, t1, t2)
    np.multiply(x2h, _GELU_3C[1], out=t1)
    ql += t1
    np.multiply(x2l, _GELU_3C[0], out=t1)
    ql += t1
    _two_sum_rows(qh, 1.0, zh, zl, t1)
    zl += ql
    _two_prod_rows(xc, zh, qh, ql, t1, t2, t3, t4)
    np.multiply(xc, zl, out=t1)
    ql += t1
    _two_prod_const(qh, _GELU_2K_SPLIT, zh, zl, t1, t2)
    np.multiply(qh, _GELU_2K[1], out=t1)
    zl += t1
    np.multiply(ql, _GELU_2K[0], out=t1)
    zl += t1  # W
    _dd_mul_rows(zh, zl, vh, vl, qh, ql, t1, t2, t3, t4)  # W*s'
    _two_sum_rows(sh, qh, zh, zl, t1)
    zl += sl
    zl += ql
    np.add(zh, zl, out=out)
    out *= grad


_GELU_3C_SPLIT = _split_scalar(_GELU_3C[0])


def _k_gelu(out, x, p, f32):
    if p["approximate"] == "tanh":
        return _k_gelu_tanh(out, x, p, f32)
    if f32:
        return _k_gelu32(out, x, p, f32)
    return _k_gelu64(out, x)


def _k_gelu_grad(out, g, x, p, f32):
    if p["approximate"] == "tanh":
        return _k_gelu_tanh(out, x, p, f32, grad=g)
    if f32:
        return _k_gelu32(out, x, p, f32, grad=g)
    return _k_gelu64(out, x, grad=g)


#: gelu'(x) = 0 here (mpmath); the float32 kernel's erfcx (1.2e-12) leaves
#: an absolute error of ~3e-13 in gelu', too much within 1e-6 of the root.
_GELU_ROOT = -0.7517915246935645
_GELU_ROOT_NEAR = 1e-4


def _gelu_rare(x, p, grad=False):
    tanh = p["approximate"] == "tanh"
    if x.dtype == _F32:
        if grad and not tanh:
            # near the root, and beyond the kernel's erfc (|x|/sqrt(2) >
            # 10.5, clipped there), where g*gelu' is in range for |g| above
            # 1e26 down to x = -19.5: the careful path's erfc reaches z = 28
            return lambda x: ~((np.abs(x - _F32(_GELU_ROOT)) > _F32(_GELU_ROOT_NEAR))
                               & (x > _F32(-_GELU32_AMAX * np.sqrt(2.0))))
        return None
    return _below(-(_GELU_TANH_TAIL if tanh else _GELU_TAIL))


def gelu_forward(x, p):
    return _elementwise(x, p, _k_gelu, _c_gelu_forward, _gelu_rare(x, p))


def gelu_backward(g, x, p):
    kernel, careful = _k_gelu_grad, _c_gelu_backward
    if x.dtype == _F64:  # near the root of f': the careful path's series
        rs = _GELU_TANH_ROOT if p["approximate"] == "tanh" else _GELU_NONE_ROOT
        kernel = _near_root_nan(kernel, rs)
        careful = _series_first(careful, rs)
    return _elementwise_grad(g, x, p, kernel, careful, _gelu_rare(x, p, grad=True))


# ---------------------------------------------------------------------------
# softmax, log_softmax (layout (outer, L, inner), reduced along axis 1)
#
# float32: plain float64 arithmetic, rounded once. float64: x - max as a
# double-double, exp of it by :func:`_exp_dd_rows`, the sum along the axis
# error-free and pairwise (:func:`_sum_dd_axis1`), as the careful code.


def _work(k, m):
    """k flat float64 work arrays of m elements: scratch rows when m fits."""
    if m <= _CHUNK:
        return list(_rows(k, m))
    return [np.empty(m) for _ in range(k)]


def _blocks(shape):
    """Slices of the outer axis of (outer, L, inner) with about _CHUNK
    elements each (at least one outer row)."""
    o, L, i = shape
    step = max(1, _CHUNK // max(1, L * i))
    for s in range(0, o, step):
        yield slice(s, min(o, s + step))


def _sum_dd_axis1(a, lo, bufs):
    """sum(a + lo) along axis 1 of (outer, L, inner) arrays as a double-
    double (sh, sl) of shape (outer, 1, inner): a pairwise tree of
    error-free additions on a, every rounding error kept and summed with lo
    (within ~L*2**-106 of the exact sum, as :func:`_sum_dd`); where the
    plain sum is not finite, that is the result (the tree would turn inf
    into NaN). The tree runs on a copy laid out (L, outer*inner), so that
    its halves are contiguous. bufs: 4 flat work arrays of a.size elements;
    lo may be None."""
    o, L, i = a.shape
    plain = a.sum(axis=1, keepdims=True)
    err = np.zeros_like(plain) if lo is None else lo.sum(axis=1, keepdims=True)
    if L > 1:
        oi = o * i
        errf = err.reshape(oi)
        cur = bufs[0][:L * oi].reshape(L, oi)
        np.copyto(cur.reshape(L, o, i), np.moveaxis(a, 1, 0))
        k = 1
        while L > 1:
            h, odd = L // 2, L % 2
            nxt = bufs[k][:(h + odd) * oi].reshape(h + odd, oi)
            e = bufs[2][:h * oi].reshape(h, oi)
            _two_sum_rows(cur[:h], cur[h:2 * h], nxt[:h], e, bufs[3][:h * oi].reshape(h, oi))
            errf += e.sum(axis=0)
            if odd:
                nxt[h] = cur[2 * h]
            cur, L, k = nxt, h + odd, 1 - k
        total = cur[0].reshape(o, 1, i)
    else:
        total = a
    sh = total + err
    sl = (total - (sh - (sh - total))) + (err - (sh - total))  # two_sum
    bad = ~np.isfinite(plain)
    if bad.any():
        sh[bad] = plain[bad]
        sl[bad] = 0.0
    return sh, sl


def _shifted_into(x, d, dl, t):
    """d + dl = x - max(x) along axis 1 exactly (two_sum; dl 0 where d is
    not finite). IEEE arithmetic on x - max gives the NaN rules."""
    m = np.max(x, axis=1, keepdims=True)
    np.subtract(x, m, out=d)
    np.subtract(d, x, out=t)
    np.subtract(d, t, out=dl)
    np.subtract(x, dl, out=dl)
    np.add(m, t, out=t)
    np.subtract(dl, t, out=dl)
    bad = ~np.isfinite(dl)
    if bad.any():
        dl[bad] = 0.0


def _softmax64(x3, log):
    out = np.empty_like(x3)
    for sl_ in _blocks(x3.shape):
        xb = x3[sl_]
        shape, m = xb.shape, xb.size
        w = _work(13, m)
        d, dl, v, eh, el = (r.reshape(shape) for r in w[:5])
        _shifted_into(xb, d, dl, v)
        np.maximum(d, -1100.0, out=v)  # exp: 0; NaN stays
        _exp_dd_rows(w[2], w[1], w[3], w[4], w[5:9])
        sh, sl = _sum_dd_axis1(eh, el, w[9:13])
        ob = out[sl_]
        if log:
            lsum = np.log(sh)
            lsum += sl / sh
            np.subtract(d, lsum, out=ob)
            ob += dl
        else:
            # (eh + el)/(sh + sl) = q + (el - q*sl)/sh to first order
            np.divide(eh, sh, out=ob)
            np.multiply(ob, sl, out=v)
            np.subtract(el, v, out=v)
            v /= sh
            ob += v
    return out


def softmax_forward(x3, p):
    if x3.size == 0:
        return np.empty_like(x3)
    with np.errstate(all="ignore"):
        if x3.dtype == _F32:
            m = np.max(x3, axis=1, keepdims=True)
            e = np.subtract(x3, m, dtype=_F64)
            np.exp(e, out=e)
            e /= np.sum(e, axis=1, keepdims=True)
            return e.astype(_F32)
        return _softmax64(x3, log=False)


def log_softmax_forward(x3, p):
    if x3.size == 0:
        return np.empty_like(x3)
    with np.errstate(all="ignore"):
        if x3.dtype == _F32:
            # d - log(S), S = sum(exp(d)) = 1 + T, the 1 from the maximum:
            # log1p(T) with T summed without that 1 (log(S) would lose a
            # T below 2**-53, and -T is a float32 result there)
            m = np.max(x3, axis=1, keepdims=True)
            d = np.subtract(x3, m, dtype=_F64)
            e = np.exp(d)
            e *= d < 0
            t = e.sum(axis=1, keepdims=True)
            t += np.sum(d == 0, axis=1, keepdims=True) - 1.0  # ties at the max
            t = np.where(np.isnan(m), m, t)  # a NaN slice stays NaN (small)
            d -= np.log1p(t)
            return d.astype(_F32)
        return _softmax64(x3, log=True)


def softmax_backward(g3, y3, p):
    """y*(g - sum(g*y)); float64: the sum of the exact products (two_prod)
    as a double-double."""
    if g3.size == 0:
        return np.empty_like(g3)
    with np.errstate(all="ignore"):
        if g3.dtype == _F32:
            g, y = g3.astype(_F64), y3.astype(_F64)
            s = np.sum(g * y, axis=1, keepdims=True)  # 48-bit products: exact
            g -= s
            g *= y
            return g.astype(_F32)
        out = np.empty_like(g3)
        for sl_ in _blocks(g3.shape):
            g, y = g3[sl_], y3[sl_]
            shape = g.shape
            w = _work(10, g.size)
            ph, pl, t1, t2 = (r.reshape(shape) for r in w[:4])
            _two_prod_rows(g, y, ph, pl, t1, t2, w[4].reshape(shape), w[5].reshape(shape))
            bad = ~np.isfinite(pl)
            if bad.any():
                pl[bad] = 0.0
            sh, sl = _sum_dd_axis1(ph, pl, w[6:10])
            dh, dl = t1, t2
            _two_sum_rows(g, -sh, dh, dl, ph)
            bad = ~np.isfinite(dl)
            if bad.any():
                dl[bad] = 0.0
            dl -= sl
            ob = out[sl_]
            np.multiply(y, dh, out=ob)
            dl *= y
            ob += dl
        return out


def log_softmax_backward(g3, y3, p):
    """g - exp(y)*sum(g), the sum as a double-double (float64)."""
    if g3.size == 0:
        return np.empty_like(g3)
    with np.errstate(all="ignore"):
        if g3.dtype == _F32:
            s = np.sum(g3, axis=1, keepdims=True, dtype=_F64)
            e = np.exp(y3, dtype=_F64)
            e *= s
            np.subtract(g3, e, out=e)
            return e.astype(_F32)
        out = np.empty_like(g3)
        for sl_ in _blocks(g3.shape):
            g, y = g3[sl_], y3[sl_]
            w = _work(6, g.size)
            e, t = w[0].reshape(g.shape), w[1].reshape(g.shape)
            sh, sl = _sum_dd_axis1(g, None, w[2:6])
            np.exp(y, out=e)
            np.multiply(e, sl, out=t)
            e *= sh
            e += t
            np.subtract(g, e, out=out[sl_])
        return out
