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

The formulas and edge-case rules are those of ``notes/semantics.md``, which
the native backend follows too; the two are compared in the tests.

How the numerics are organised
------------------------------
Piecewise-linear ops (relu, relu6, hardtanh, leaky_relu, rrelu, prelu, maxout)
compute in the input dtype T with their parameters first cast to T, so the
results are exact and bit-identical to the native backend. They are written
with :func:`_exact_forward` / :func:`_exact_backward`.

Every other op is written once, on float64 arrays, as ``f(x)`` (decorated with
:func:`_forward`) and ``f'(x)`` (decorated with :func:`_backward`, which applies
the grad rule g*f'). float32 inputs are widened to float64 and the result is
rounded once to float32 (<= 1 ULP). float64 inputs get the same code, which is
written so that the only roundings that are not error-free are those of
NumPy's own exp/expm1/log1p/tanh and a final one or two: arguments that
amplify their rounding error (x*x under exp, beta*x or 2u under the sigmoid,
x - max under exp) are carried as double-doubles (hi + lo, Dekker/Knuth
error-free transformations, :func:`_two_sum`, :func:`_two_prod`) and the lo
part is applied as a first-order correction.

Everything runs under ``np.errstate(all="ignore")``: the branches that
``np.where`` discards may overflow, and no warning may reach the user, who
may run under ``errstate(all="raise")``. Subnormals are kept (NumPy never
flushes them).
"""

from __future__ import annotations

import decimal
import functools

import numpy as np

from ._registry import SELU_ALPHA, SELU_SCALE

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
    """``df(x64, p) -> f'(x)`` becomes ``backward(g, x, p) -> g*f'(x)``."""

    @functools.wraps(df)
    def backward(g, x, p):
        with np.errstate(all="ignore"):
            d = df(x.astype(_F64, copy=False), p)
            return _result(_scale(g.astype(_F64, copy=False), d), x.dtype)

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


@_exact_forward
def relu_forward(x, p):
    # x <= 0 is False for NaN, which stays NaN; relu(-0) = +0.
    return np.where(x <= 0, 0, x)


@_exact_backward
def relu_backward(x, p):
    return _indicator(x > 0, x)


# From the output: y > 0 exactly where x > 0, and y is NaN where x is, so
# relu'(y) is the same function of y as relu'(x) is of x.
relu_backward_y = relu_backward


@_exact_forward
def hardtanh_forward(x, p):
    lo, hi = _cast(x, p["min_val"]), _cast(x, p["max_val"])
    return np.where(x < lo, lo, np.where(x > hi, hi, x))


@_exact_backward
def hardtanh_backward(x, p):
    lo, hi = _cast(x, p["min_val"]), _cast(x, p["max_val"])
    return _indicator((x > lo) & (x < hi), x)


_RELU6 = {"min_val": 0.0, "max_val": 6.0}


def relu6_forward(x, p):
    return hardtanh_forward(x, _RELU6)


def relu6_backward(g, x, p):
    return hardtanh_backward(g, x, _RELU6)


@_exact_forward
def leaky_relu_forward(x, p):
    return _leaky(x, _cast(x, p["negative_slope"]))


@_exact_backward
def leaky_relu_backward(x, p):
    return _leaky_slope(x, _cast(x, p["negative_slope"]))


# rrelu's counter-based generator: SplitMix64's finaliser (Steele, Lea and
# Flood 2014) of the flat index mixed with a key derived from the seed. The
# text in semantics.md is followed literally: the native backend must give
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
def rrelu_forward(x, p):
    return _leaky(x, _rrelu_slope(x, p))


@_exact_backward
def rrelu_backward(x, p):
    return _leaky_slope(x, _rrelu_slope(x, p))


def prelu_forward(x3, w, p):
    with np.errstate(all="ignore"):
        return _result(_leaky(x3, w.reshape(1, -1, 1)), x3.dtype)


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
def sigmoid_forward(x, p):
    s, scale = _logistic(x)
    return s[0] * scale


@_backward
def sigmoid_backward(x, p):
    _, ds, scale = _logistic(x, grad=True)
    return ds[0] * scale


@_backward
def sigmoid_backward_y(y, p):
    return y * (1.0 - y)


@_forward
def log_sigmoid_forward(x, p):
    return -_softplus(-x)[0]


@_backward
def log_sigmoid_backward(x, p):
    s, scale = _logistic(-x)
    return s[0] * scale


@_forward
def softplus_forward(x, p):
    beta = p["beta"]
    z, zl = _scaled_arg(x, beta)
    y, e = _softplus(z, zl)
    if beta != 1:  # (y + e)/beta rounded once (the remainder is exact)
        q = y / beta
        r, re = _two_prod(q, beta)
        y = q + _finite_or_zero(((y - r) - re + e) / beta)
    return np.where(z > p["threshold"], x, y)


@_backward
def softplus_backward(x, p):
    z, zl = _scaled_arg(x, p["beta"])
    s, scale = _logistic(z, zl)
    return np.where(z > p["threshold"], 1.0, s[0] * scale)


@_forward
def swish_forward(x, p):
    z, zl = _scaled_arg(x, p["beta"])
    s, scale = _logistic(z, zl)
    return _times_dd(x, s) * scale


@_backward
def swish_backward(x, p):
    # f'(x) = s + z*s'(z), z = beta*x, summed as double-doubles: the terms
    # cancel partly for z < 0 (fully at the root z = -1.2785). The zl*s'
    # term completes the first-order correction of z*s'(z) (s and s' are
    # corrected inside). s' is exactly 0 wherever |z| > 745, inf included.
    z, zl = _scaled_arg(x, p["beta"])
    s, ds, scale = _logistic(z, zl, grad=True)
    zds = _dd_mul((np.where(ds[0] == 0, 0.0, z), 0.0), ds)
    return _dd_add(s, (zds[0], zds[1] + zl * ds[0]))[0] * scale


_SILU = {"beta": 1.0}


def silu_forward(x, p):
    return swish_forward(x, _SILU)  # bit-identical to swish(x, beta=1)


def silu_backward(g, x, p):
    return swish_backward(g, x, _SILU)


@_forward
def tanh_forward(x, p):
    return np.tanh(x)


@_backward
def tanh_backward(x, p):
    # tanh'(x) = 4e/(1+e)**2, e = exp(-2|x|), = 4*sigmoid'(2x)
    _, ds, scale = _logistic(2.0 * x, grad=True)
    return 4.0 * ds[0] * scale


@_backward
def tanh_backward_y(y, p):
    return (1.0 - y) * (1.0 + y)


@_forward
def softsign_forward(x, p):
    a = np.abs(x)
    y = _dd_div((x, 0.0), _two_sum(1.0, a))[0]
    # beyond 2**60 the result rounds to +-1 (and the split would overflow)
    return np.where(a < 2.0**60, y, np.sign(x))


@_backward
def softsign_backward(x, p):
    # 1/(1+|x|)**2 as (1/(1+|x|))**2: the square of 1+|x| would overflow from
    # |x| = 1.3e154 on, where the result is still a normal or subnormal number.
    a = np.abs(x)
    r = _dd_div((1.0, 0.0), _two_sum(1.0, np.minimum(a, 2.0**60)))
    big = 1.0 / a
    return np.where(a < 2.0**60, _dd_mul(r, r)[0], big * big)


# ---------------------------------------------------------------------------
# Exponential family: elu, selu, celu, mish

@_forward
def elu_forward(x, p):
    return np.where(x > 0, x, p["alpha"] * np.expm1(x))


@_backward
def elu_backward(x, p):
    return np.where(x > 0, 1.0, p["alpha"] * np.exp(x))


# scale*alpha as a double-double: a plain product of the two float64
# constants would add half an ULP to every negative input's error.
_SELU_SA = _two_prod(_F64(SELU_SCALE), _F64(SELU_ALPHA))


@_forward
def selu_forward(x, p):
    m = np.expm1(x)
    return np.where(x > 0, SELU_SCALE * x, m * _SELU_SA[0] + m * _SELU_SA[1])


@_backward
def selu_backward(x, p):
    e = np.exp(x)
    return np.where(x > 0, SELU_SCALE, e * _SELU_SA[0] + e * _SELU_SA[1])


@_forward
def celu_forward(x, p):
    # t = x/alpha split as t + tl: for alpha < 0, expm1(t) grows and would
    # amplify the division's rounding error by t.
    alpha = p["alpha"]
    t, tl = _divided_arg(x, alpha)
    m = np.expm1(t)
    if _has_lo(tl):  # no correction where exp(t) overflows
        m = m + _finite_or_zero(tl * np.exp(t))
    return np.where(x > 0, x, alpha * m)


@_backward
def celu_backward(x, p):
    t, tl = _divided_arg(x, p["alpha"])
    e = np.exp(t)
    return np.where(x > 0, 1.0, e + _finite_or_zero(tl * e))


_MISH_LINEAR = 40.0  # mish(x) = x and mish'(x) = 1 in float64 from here on


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
def mish_forward(x, p):
    _, _, t, scale = _mish_tanh_softplus(x)
    return np.where(x > _MISH_LINEAR, x, _times_dd(x, t) * scale)


@_backward
def mish_backward(x, p):
    # f' = t + x*q, q = 4e(1 + e)/(n + 2)**2, all as double-doubles; x*q is
    # 0 where q underflows to 0 (mish'(-inf) = 0).
    e, den, t, scale = _mish_tanh_softplus(x)
    q = _dd_div(_dd_mul((e, 0.0), _two_sum(1.0, e)), _dd_mul(den, den))
    xs = np.where(q[0] == 0, 0.0, x)
    xq = _dd_mul((4.0 * xs, 0.0), q)
    return np.where(x > _MISH_LINEAR, 1.0, _dd_add(t, xq)[0] * scale)


# ---------------------------------------------------------------------------
# Piecewise-polynomial family: hardsigmoid, hardswish. (x + 3)/6 rather
# than x/6 + 1/2: the latter cancels near x = -3.

def _plus3_over6(v):
    """(v + 3)/6 rounded once (exact sum, double-double division)."""
    return _dd_div(_two_sum(v, 3.0), (6.0, 0.0))


@_forward
def hardsigmoid_forward(x, p):
    return np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, _plus3_over6(x)[0]))


@_backward
def hardsigmoid_backward(x, p):
    return _keep_nan(x, np.where((x > -3) & (x < 3), 1.0 / 6.0, 0.0))


@_forward
def hardswish_forward(x, p):
    xc = np.clip(x, -3.0, 3.0)
    y = _dd_mul((xc, 0.0), _plus3_over6(xc))[0]
    return np.where(x <= -3, 0.0, np.where(x >= 3, x, y))


@_backward
def hardswish_backward(x, p):
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
def gelu_forward(x, p):
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
def gelu_backward(x, p):
    if p["approximate"] == "tanh":
        # f' = s + x*2k*(1 + 3c*x*x)*s'(2u); x is clipped in w, and s'(2u) is
        # exactly 0 beyond the clip, so w*s' -> 0 at +-inf.
        (z, zl), x2 = _gelu_tanh_arg(x)
        s, ds, scale = _logistic(z, zl, grad=True)
        xc = np.clip(x, -_GELU_TANH_CLIP, _GELU_TANH_CLIP)
        w = _dd_mul(_GELU_2K, _dd_mul((xc, 0.0), _dd_add((1.0, 0.0), _dd_mul(_GELU_3C, x2))))
        return _dd_add(s, _dd_mul(w, ds))[0] * scale
    # Phi + x*phi as double-doubles. In the left tail both terms carry the
    # same power of 2 (z*z and x*x/2 agree but for rounding); where the two
    # differ, the terms are scaled first.
    hi, lo, n = _erfc_of_minus_x_over_sqrt2(x)
    xphi, n_xphi = _gaussian_pdf_times_x(x)
    together = np.ldexp(_dd_add((0.5 * hi, 0.5 * lo), xphi)[0], n)
    apart = np.ldexp(0.5 * hi, n) + np.ldexp(xphi[0], n_xphi)
    return np.where(n == n_xphi, together, apart)


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

def _exp_shifted(x):
    """d = x - max as a double-double (d, dl), e = exp(d + dl) as a
    double-double, and the sum of e along axis 1 (a double-double).

    x - max is split exactly (two_sum): a rounded x - max of size d would
    cost d/2 ULP in exp. IEEE arithmetic on x - max gives the NaN rules: a
    NaN in the slice makes the max NaN; a max of +inf or an all -inf slice
    makes inf - inf = NaN.
    """
    m = np.max(x, axis=1, keepdims=True)
    d, dl = _two_sum(x, -m)
    dl = _finite_or_zero(dl)
    hi, lo, n = _exp_dd(np.maximum(d, -1100.0), dl)  # exp(-1100) = 0; NaN stays
    e = np.ldexp(hi, n), np.ldexp(lo, n)
    return d, dl, e, _sum_dd(e[0], e[1], axis=1)


def softmax_forward(x3, p):
    if x3.size == 0:
        return np.empty_like(x3)
    with np.errstate(all="ignore"):
        _, _, e, (sh, sl) = _exp_shifted(x3.astype(_F64, copy=False))
        return _result(_dd_div(e, (sh[:, None], sl[:, None]))[0], x3.dtype)


def log_softmax_forward(x3, p):
    if x3.size == 0:
        return np.empty_like(x3)
    with np.errstate(all="ignore"):
        d, dl, _, (sh, sl) = _exp_shifted(x3.astype(_F64, copy=False))
        log_sum = (np.log(sh) + sl / sh)[:, None]
        return _result((d - log_sum) + dl, x3.dtype)


def softmax_backward(g3, y3, p):
    """y*(g - sum(g*y)); the sum of the exact products is a double-double."""
    if g3.size == 0:
        return np.empty_like(g3)
    with np.errstate(all="ignore"):
        g, y = g3.astype(_F64, copy=False), y3.astype(_F64, copy=False)
        ph, pl = _two_prod(g, y)
        sh, sl = _sum_dd(ph, _finite_or_zero(pl), axis=1)
        dh, dl = _two_sum(g, -sh[:, None])
        dl = _finite_or_zero(dl) - sl[:, None]
        return _result(y * dh + y * dl, y3.dtype)


def log_softmax_backward(g3, y3, p):
    """g - exp(y)*sum(g), the sum as a double-double."""
    if g3.size == 0:
        return np.empty_like(g3)
    with np.errstate(all="ignore"):
        g, y = g3.astype(_F64, copy=False), y3.astype(_F64, copy=False)
        sh, sl = _sum_dd(g, 0.0, axis=1)
        e = np.exp(y)
        return _result(g - (e * sh[:, None] + e * sl[:, None]), y3.dtype)


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
