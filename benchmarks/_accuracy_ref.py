"""Fast extended-precision references for ``exhaustive_accuracy.py``.

Every element-wise activation as a vectorised NumPy formula evaluated in a
*working* dtype ``W`` wider than the dtype under test:

- float32 results: ``W = float64`` (53 bits, 29 more than float32);
- float64 results: ``W = np.longdouble`` (x87 80-bit, 64 bits, 11 more).

The formulas are independent of fastact (they share no code with either
backend) and free of cancellation: every subtraction is of exact operands or
a single rounding of an exact sum; exponentials never see a positive argument
that could overflow; products with an inexact constant or parameter
(gelu's 1/sqrt(2), sqrt(2/pi) and 0.044715, swish's beta, celu's 1/alpha,
softplus's beta) are formed as unevaluated sums ``hi + lo`` (Dekker's
error-free products in ``W``) and the function is corrected to first order
in ``lo``, because the tails amplify an argument's relative error by up to
|argument| (745 for float64 sigmoid-like tails).  What is left is a few
roundings of ``W`` per result, i.e. about 2**-50 (float64 reference of a
float32 result: ~2**-26 float32 ULP) and 2**-61 (longdouble reference of a
float64 result: ~2**-9 float64 ULP).  :func:`self_check` measures this
against tests/reference.py's mpmath references on sampled points, and the
script prints the measured figure.

Two places need more than the formula:

- erfc in longdouble (gelu, float64): NumPy and SciPy have none, ctypes
  returns ``erfcl`` as a Python float.  :class:`ErfcLD` evaluates erfc from
  erfcx Taylor expansions about nodes 1/32 apart on [0.5, 7] (coefficients
  from mpmath by the recurrence of erfcx' = 2 z erfcx - 2/sqrt(pi)), the
  Maclaurin series of erf below 0.5 and the asymptotic series of erfcx
  above 7, times exp(-z*z) with z*z error-free.  For float32 (W = float64)
  ``scipy.special.erfc`` is used (its few-ULP float64 error is 2**-27 float32
  ULP) with the same first-order correction.
- f' within 1/8 of a root of f' (gelu, silu, swish, mish, hardswish), where
  any formula cancels: f'(r + t) = t * P(t) with P a Chebyshev fit (mpmath
  ``chebyfit``, 40 terms, its error printed by :func:`self_check`) of
  f'(r + t)/t about the root r found from mpmath (:func:`grad_roots`).

Infinite inputs take the registry's special values where it has them (the
contract's table, CONTRACT.md section 3), else the formula's limit.
"""

from __future__ import annotations

import functools
import math
import os
import sys

import numpy as np

from fastact import _registry as R

_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
import reference as mpref  # noqa: E402  (tests/reference.py: the mpmath references)

mp = mpref.mp
LD = np.dtype(np.longdouble)
F64 = np.dtype(np.float64)
#: Radius about a root of f' inside which the Chebyshev fit replaces the formula.
ROOT_RADIUS = 2.0 ** -3


def working_dtype(target):
    """The dtype the reference of a ``target`` result is computed in."""
    target = np.dtype(target)
    if target == np.float32:
        return F64
    if target == np.float64:
        if np.finfo(LD).nmant < 63:
            raise RuntimeError("np.longdouble is not the x87 80-bit type here; no "
                               "extended reference for float64")
        return LD
    raise ValueError(f"no reference for {target}")


def to_mpf(v):
    """The exact value of a NumPy/Python float as an mpf."""
    v = np.asarray(v)[()]
    if not np.isfinite(v):
        return mp.mpf(float(v))
    num, den = v.as_integer_ratio()
    return mp.mpf(num) / den


def const(value, W):
    """An mpf (or number) as (hi, lo) of W with hi + lo = value to 2**-2p."""
    v = mp.mpf(value)
    hi = W.type(mp.nstr(v, 40, strip_zeros=False)) if W == LD else W.type(float(v))
    lo = v - to_mpf(hi)
    lo = W.type(mp.nstr(lo, 40)) if W == LD else W.type(float(lo))
    return hi, lo


# ---------------------------------------------------------------------------
# Error-free transformations in W (Dekker / Veltkamp)

def _splitter(W):
    p = np.finfo(W).nmant + 1
    return W.type(2 ** ((p + 1) // 2) + 1)


def two_prod(a, b):
    """(p, e) with p = fl(a*b) and a*b = p + e exactly (no overflow here: the
    working dtype's range is far beyond the target's)."""
    W = np.result_type(a, b)
    c = _splitter(W)
    p = a * b
    t = c * a
    ah = t - (t - a)
    al = a - ah
    t = c * b
    bh = t - (t - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, np.where(np.isfinite(p), e, 0)


def mul_const(x, value, W):
    """x * value as (hi, lo): x exact in W, value an mpf constant.  In float64
    (float32 results) lo is 0: the product's rounding, amplified by at most the
    argument's size (~104 where a float32 result is still above 0), stays
    below 2**-20 float32 ULP, and the dd form would cost 10x."""
    if W == F64:
        return x * float(value), 0
    ch, cl = const(value, W)
    hi, lo = two_prod(x, ch)
    return hi, lo + x * cl


def div_const(x, value, W):
    """x / value as (hi, lo) (lo = 0 in float64, as mul_const)."""
    if W == F64:
        return x / float(value), 0
    d = W.type(float(value)) if W == F64 else W.type(mp.nstr(mp.mpf(value), 40))
    dv = to_mpf(d)
    hi = x / d
    p, e = two_prod(hi, d)
    lo = ((x - p) - e) / d  # x - p is exact (Sterbenz)
    # the divisor itself may be inexact: x/(dv + dd) = (x/dv)(1 - dd/dv)
    rel = W.type(mp.nstr((dv - mp.mpf(value)) / dv, 40)) if W == LD else W.type(
        float((dv - mp.mpf(value)) / dv))
    return hi, np.where(np.isfinite(hi), lo - hi * rel, 0)


# ---------------------------------------------------------------------------
# Building blocks (argument z = zh + zl)

def _exp_neg_abs(z):
    return np.exp(-np.abs(z))


def sigmoid(zh, zl=0):
    e = _exp_neg_abs(zh)
    s = np.where(zh >= 0, 1 / (1 + e), e / (1 + e))
    return s * (1 + (1 - s) * zl) if not np.isscalar(zl) or zl else s


def sigmoid_grad(zh, zl=0):
    """sigmoid'(z) = e/(1 + e)**2, e = exp(-|z|); d log s'/dz = -tanh(z/2)."""
    e = _exp_neg_abs(zh)
    d = e / (1 + e) ** 2
    if np.isscalar(zl) and not zl:
        return d
    return d * (1 - np.where(zh >= 0, (1 - e) / (1 + e), -(1 - e) / (1 + e)) * zl)


def softplus(zh, zl=0):
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))."""
    r = np.maximum(zh, 0) + np.log1p(_exp_neg_abs(zh))
    return r + sigmoid(zh) * zl if not np.isscalar(zl) or zl else r


def expm1(zh, zl=0):
    r = np.expm1(zh)
    return r + np.exp(np.minimum(zh, 0)) * zl if not np.isscalar(zl) or zl else r


class ErfcLD:
    """erfc(z) in longdouble (see the module docstring); relative error a few 2**-64."""

    STEP = 32  # nodes per unit
    LO, HI = 0.5, 7.0
    TERMS = 22

    def __init__(self):
        two_rpi = 2 / mp.sqrt(mp.pi)
        nodes = []
        for k in range(int(self.LO * self.STEP), int(self.HI * self.STEP) + 1):
            z0 = mp.mpf(k) / self.STEP
            a = [mp.erfc(z0) * mp.exp(z0 * z0)]
            a.append(2 * z0 * a[0] - two_rpi)
            for n in range(1, self.TERMS):
                a.append((2 * z0 * a[n] + 2 * a[n - 1]) / (n + 1))
            nodes.append([LD.type(mp.nstr(c, 30)) for c in a])
        self.coeffs = np.array(nodes, dtype=LD)  # [node, power]
        self.two_rpi = LD.type(mp.nstr(two_rpi, 30))
        self.rpi = LD.type(mp.nstr(1 / mp.sqrt(mp.pi), 30))

    def erfcx_pos(self, z):
        """erfcx(z) for z >= 0.5."""
        out = np.empty_like(z)
        mid = z < self.HI
        zm = z[mid]
        k = np.rint(zm * self.STEP).astype(np.int64)
        h = zm - k.astype(LD) / self.STEP
        c = self.coeffs[k - int(self.LO * self.STEP)]
        acc = c[:, -1].copy()
        for n in range(self.TERMS - 1, -1, -1):
            acc = acc * h + c[:, n]
        out[mid] = acc
        zt = z[~mid]
        if zt.size:  # asymptotic: (1/(z sqrt pi)) sum (-1)^n (2n-1)!!/(2z^2)^n
            inv = 1 / (2 * zt * zt)
            term = np.ones_like(zt)
            s = np.ones_like(zt)
            for n in range(1, 48):
                term = -term * (2 * n - 1) * inv
                s = s + term
            out[~mid] = s * self.rpi / zt
        return out

    def __call__(self, zh, zl):
        """erfc(zh + zl)."""
        zh = np.asarray(zh, LD)
        zl = np.asarray(zl, LD)
        out = np.empty_like(zh)
        a = np.abs(zh)
        small = a < self.LO
        if small.any():  # 1 - erf, erf = 2z/sqrt(pi) exp(-z^2) sum (2z^2)^n/(2n+1)!!
            z = zh[small]
            q = 2 * z * z
            term = np.ones_like(z)
            s = np.ones_like(z)
            for n in range(1, 30):
                term = term * q / (2 * n + 1)
                s = s + term
            out[small] = 1 - self.two_rpi * z * np.exp(-z * z) * s
        big = ~small & np.isfinite(zh)
        if big.any():
            z = a[big]
            sh, sl = two_prod(z, z)
            g = np.exp(-sh) * (1 - sl) * self.erfcx_pos(z)
            out[big] = np.where(zh[big] > 0, g, 2 - g)
        out[np.isinf(zh)] = np.where(zh[np.isinf(zh)] > 0, 0, 2)
        # first order in zl: erfc' = -2/sqrt(pi) exp(-z^2)
        return out - self.two_rpi * np.exp(-np.minimum(zh * zh, 4e4)) * zl


@functools.lru_cache(maxsize=None)
def _erfc_ld():
    return ErfcLD()


def erfc(zh, zl, W):
    if W == LD:
        return _erfc_ld()(zh, zl)
    from scipy import special
    if np.isscalar(zl) and not zl:
        return special.erfc(zh)
    return special.erfc(zh) - (2 / math.sqrt(math.pi)) * np.exp(-np.minimum(zh * zh, 4e4)) * zl


# ---------------------------------------------------------------------------
# The references: name -> (f, f'), each (x, p, W, target) -> array of W.
# ``p`` holds the parameters; the piecewise-linear ones are first rounded to
# the target dtype (as the contract and tests/reference.py say).

def _pin(p, key, target):
    return float(np.dtype(target).type(p[key]))


def _slope(name, p, target):
    if name == "rrelu":
        return float(np.dtype(target).type((p["lower"] + p["upper"]) / 2))
    if name == "prelu":
        return float(np.dtype(target).type(p["weight"]))
    return _pin(p, "negative_slope", target)


def _leaky(name):
    def f(x, p, W, t):
        # slope*x: two_prod keeps it exact for the correct rounding done later
        return np.where(x > 0, x, W.type(_slope(name, p, t)) * x)

    def lo(x, p, W, t):
        _, e = two_prod(W.type(_slope(name, p, t)), x)
        return np.where(x > 0, 0, e)

    def d(x, p, W, t):
        return np.where(x > 0, W.type(1), W.type(_slope(name, p, t)))
    return f, d, lo


SELU_ALPHA = mp.mpf("1.6732632423543772848170429916717")
SELU_SCALE = mp.mpf("1.0507009873554804934193349852946")
GELU_C = mp.mpf("0.044715")


def _selu(x, p, W, t):
    a = W.type(mp.nstr(SELU_ALPHA * SELU_SCALE, 30)) if W == LD else W.type(float(SELU_ALPHA * SELU_SCALE))
    s = W.type(mp.nstr(SELU_SCALE, 30)) if W == LD else W.type(float(SELU_SCALE))
    return np.where(x > 0, s * x, a * np.expm1(np.minimum(x, 0)))


def _selu_d(x, p, W, t):
    a = W.type(mp.nstr(SELU_ALPHA * SELU_SCALE, 30)) if W == LD else W.type(float(SELU_ALPHA * SELU_SCALE))
    s = W.type(mp.nstr(SELU_SCALE, 30)) if W == LD else W.type(float(SELU_SCALE))
    return np.where(x > 0, s, a * np.exp(np.minimum(x, 0)))


def _celu_arg(x, p, W):
    return div_const(x, mp.mpf(p["alpha"]), W)


def _celu(x, p, W, t):
    zh, zl = _celu_arg(x, p, W)
    return np.where(x > 0, x, W.type(p["alpha"]) * expm1(np.minimum(zh, 0), zl))


def _celu_d(x, p, W, t):
    zh, zl = _celu_arg(x, p, W)
    return np.where(x > 0, W.type(1), np.exp(np.minimum(zh, 0)) * (1 + zl))


def _softplus_f(x, p, W, t):
    zh, zl = mul_const(x, mp.mpf(p["beta"]), W)
    over = zh > p["threshold"]
    return np.where(over, x, softplus(np.where(over, 0, zh), zl) / W.type(p["beta"]))


def _softplus_d(x, p, W, t):
    zh, zl = mul_const(x, mp.mpf(p["beta"]), W)
    return np.where(zh > p["threshold"], W.type(1), sigmoid(zh, zl))


def _tanh(x, p, W, t):
    return np.tanh(x)


def _tanh_d(x, p, W, t):
    e = np.exp(-2 * np.abs(x))
    return 4 * e / (1 + e) ** 2


def _swish_arg(x, p, W):
    return mul_const(x, mp.mpf(p.get("beta", 1.0)), W)


def _swish(x, p, W, t):
    zh, zl = _swish_arg(x, p, W)
    s = sigmoid(zh, zl)
    return np.where(s == 0, 0, x * s)


def _swish_d(x, p, W, t):
    zh, zl = _swish_arg(x, p, W)
    d = sigmoid_grad(zh, zl)
    return sigmoid(zh, zl) + np.where(d == 0, 0, zh * d)  # the limits at +-inf: 1, 0


def _mish_tq(x):
    e = _exp_neg_abs(x)
    n = e * (e + 2)
    neg = x <= 0
    t = np.where(neg, n / (n + 2), (1 + 2 * e) / (1 + 2 * e + 2 * e * e))
    d = 1 + 2 * e + 2 * e * e
    q = np.where(neg, 4 * e * (1 + e) / (n + 2) ** 2, 4 * (1 + e) * e * e / d ** 2)
    return t, q


def _mish(x, p, W, t):
    tt, _ = _mish_tq(x)
    return np.where(tt == 0, 0, x * tt)


def _mish_d(x, p, W, t):
    tt, q = _mish_tq(x)
    return tt + np.where(q == 0, 0, x * q)


def _gelu_u2(x, W):
    """u2 = 2 sqrt(2/pi) x (1 + c x^2) as (hi, lo) (lo = 0 in float64, as mul_const)."""
    k2 = 2 * mp.sqrt(2 / mp.pi)
    if W == F64:
        return float(k2) * x * (1 + float(GELU_C) * (x * x)), 0
    x2h, x2l = two_prod(x, x)
    ch, cl = const(GELU_C, W)
    ph, pl = two_prod(ch, x2h)
    pl = pl + ch * x2l + cl * x2h
    s = 1 + ph  # 1 + c x^2 >= 1: one rounding, its error recovered below
    sl = ((1 - s) + ph) + pl
    kh, kl = const(k2, W)
    ah, al = two_prod(x, kh)
    al = al + x * kl
    uh, ul = two_prod(ah, s)
    ul = ul + ah * sl + al * s
    return uh, np.where(np.isfinite(uh), ul, 0)


def _phi_arg(x, W):
    return mul_const(-x, 1 / mp.sqrt(2), W)


def _gelu(x, p, W, t):
    if p["approximate"] == "tanh":
        uh, ul = _gelu_u2(x, W)
        s = sigmoid(uh, ul)
        return np.where(s == 0, 0, x * s)
    zh, zl = _phi_arg(x, W)
    c = erfc(zh, zl, W) / 2
    return np.where(c == 0, 0, x * c)


def _gelu_d(x, p, W, t):
    if p["approximate"] == "tanh":
        uh, ul = _gelu_u2(x, W)
        k2 = W.type(mp.nstr(2 * mp.sqrt(2 / mp.pi), 30)) if W == LD else W.type(float(2 * mp.sqrt(2 / mp.pi)))
        c3 = W.type(mp.nstr(3 * GELU_C, 30)) if W == LD else W.type(float(3 * GELU_C))
        du = k2 * (1 + c3 * x * x)
        g = sigmoid_grad(uh, ul)
        return sigmoid(uh, ul) + np.where(g == 0, 0, x * du * g)
    zh, zl = _phi_arg(x, W)
    x2h, x2l = two_prod(x, x)
    rs = W.type(mp.nstr(1 / mp.sqrt(2 * mp.pi), 30)) if W == LD else W.type(float(1 / mp.sqrt(2 * mp.pi)))
    pdf = rs * np.exp(-np.minimum(x2h / 2, 1e5)) * (1 - x2l / 2)
    return erfc(zh, zl, W) / 2 + np.where(pdf == 0, 0, x * pdf)


def _hardsigmoid(x, p, W, t):
    return np.clip((x + 3) / 6, 0, 1)


def _hardswish(x, p, W, t):
    return np.where(x <= -3, 0, np.where(x >= 3, x, x * (x + 3) / 6))


def _hardswish_d(x, p, W, t):
    return np.where(x <= -3, 0, np.where(x < 3, (x + W.type(1.5)) / 3, 1))


def _one(W):
    return W.type(1)


_LEAKY = {n: _leaky(n) for n in ("leaky_relu", "rrelu", "prelu")}

#: name -> (forward, derivative[, exact low part of the forward]).
REF = {
    "relu": (lambda x, p, W, t: np.maximum(x, 0),
             lambda x, p, W, t: np.where(x > 0, _one(W), 0)),
    "relu6": (lambda x, p, W, t: np.clip(x, 0, 6),
              lambda x, p, W, t: np.where((x > 0) & (x < 6), _one(W), 0)),
    "hardtanh": (lambda x, p, W, t: np.clip(x, _pin(p, "min_val", t), _pin(p, "max_val", t)),
                 lambda x, p, W, t: np.where((x > _pin(p, "min_val", t)) & (x < _pin(p, "max_val", t)),
                                             _one(W), 0)),
    **_LEAKY,
    "elu": (lambda x, p, W, t: np.where(x > 0, x, W.type(p["alpha"]) * np.expm1(np.minimum(x, 0))),
            lambda x, p, W, t: np.where(x > 0, _one(W), W.type(p["alpha"]) * np.exp(np.minimum(x, 0)))),
    "selu": (_selu, _selu_d),
    "celu": (_celu, _celu_d),
    "softplus": (_softplus_f, _softplus_d),
    "sigmoid": (lambda x, p, W, t: sigmoid(x),
                lambda x, p, W, t: sigmoid_grad(x)),
    "log_sigmoid": (lambda x, p, W, t: -softplus(-x),
                    lambda x, p, W, t: sigmoid(-x)),
    "hardsigmoid": (_hardsigmoid,
                    lambda x, p, W, t: np.where((x > -3) & (x < 3), 1 / W.type(6), 0)),
    "tanh": (_tanh, _tanh_d),
    "softsign": (lambda x, p, W, t: x / (1 + np.abs(x)),
                 lambda x, p, W, t: 1 / (1 + np.abs(x)) ** 2),
    "silu": (_swish, _swish_d),
    "swish": (_swish, _swish_d),
    "hardswish": (_hardswish, _hardswish_d),
    "mish": (_mish, _mish_d),
    "gelu": (_gelu, _gelu_d),
}


def missing():
    """Element-wise registry entries (and prelu) without a reference here."""
    want = {a.name for a in R.ACTIVATIONS if a.kind in (R.ELEMENTWISE, R.PRELU)}
    return sorted(want - set(REF))


# ---------------------------------------------------------------------------
# Roots of f' and the fits about them

def mp_fprime(name):
    """The mpmath derivative of tests/reference.py (prelu: leaky_relu's)."""
    return mpref.REFERENCE["leaky_relu" if name == "prelu" else name][1]


def mp_f(name):
    return mpref.REFERENCE["leaky_relu" if name == "prelu" else name][0]


def mp_params(name, p):
    if name == "prelu":
        return {"negative_slope": p["weight"]}
    return p


@functools.lru_cache(maxsize=None)
def _grad_roots(name, pkey):
    """Roots of f' (mpf) in the registry domain, found by sign changes of the
    float64 reference on a grid and refined by mpmath."""
    act = R.BY_NAME[name]
    p = dict(pkey)
    if act.exact or name not in REF:
        return ()
    lo, hi = act.domain
    grid = np.linspace(lo, hi, 40001) + 1.2345678e-6  # off any simple root
    with np.errstate(all="ignore"):
        d = REF[name][1](grid, p, F64, F64)
    idx = np.flatnonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)
    fp = mp_fprime(name)
    roots = []
    for i in idx:
        try:
            r = mp.findroot(lambda t: fp(t, p), (mp.mpf(grid[i]), mp.mpf(grid[i + 1])),
                            solver="anderson")
        except (ValueError, ZeroDivisionError):
            continue
        if grid[i] <= r <= grid[i + 1] and abs(fp(r, p)) < mp.mpf(10) ** -30:
            roots.append(r)
    return tuple(roots)


def grad_roots(name, p):
    return _grad_roots(name, tuple(sorted(p.items())))


@functools.lru_cache(maxsize=None)
def _root_fits(name, pkey):
    """[(root, chebyfit coefficients of f'(r + t)/t on |t| <= ROOT_RADIUS, fit error)]."""
    p = dict(pkey)
    fp = mp_fprime(name)
    out = []
    for r in _grad_roots(name, pkey):
        def g(t, r=r):
            return fp(r + t, p) / t if t != 0 else mp.diff(lambda u: fp(u, p), r)
        coeffs, err = mp.chebyfit(g, [-ROOT_RADIUS, ROOT_RADIUS], 40, error=True)
        out.append((r, coeffs, err))
    return out


def _apply_root_fits(name, p, x, d, W):
    for r, coeffs, _ in _root_fits(name, tuple(sorted(p.items()))):
        rh, rl = const(r, W)
        near = np.abs(x - rh) <= ROOT_RADIUS
        if not near.any():
            continue
        t = (x[near] - rh) - rl
        acc = np.zeros_like(t)
        for c in coeffs:  # highest degree first
            acc = acc * t + (W.type(mp.nstr(c, 30)) if W == LD else W.type(float(c)))
        d[near] = t * acc
    return d


# ---------------------------------------------------------------------------
# Evaluation

def _special_values(name, p, which):
    """{x: value} of the registry's special rows at +-inf matching ``p``."""
    act = R.BY_NAME[name]
    out = {}
    defaults = {q.name: q.default for q in act.params}
    for row in act.specials:
        if math.isfinite(row.x):
            continue
        rp = dict(defaults, **dict(row.params))
        if any(rp.get(k) != v for k, v in p.items() if k in rp):
            continue
        v = row.y if which == 0 else row.grad
        if v is not None:
            out[row.x] = v
    return out


def evaluate(name, x, p, target, which=0):
    """Reference of f (which=0) or f' (1) at ``x`` (array of ``target``), as
    ``(hi, lo)`` arrays of the working dtype (lo is 0 except for the exact
    low parts of the piecewise-linear products); NaN where x is NaN."""
    target = np.dtype(target)
    W = working_dtype(target)
    entry = REF[name]
    with np.errstate(all="ignore"):
        xw = np.asarray(x).astype(W)
        # +-inf: evaluated at +-max of the working dtype, whose value rounds
        # to the limit in the target dtype (the formulas would give inf*0 =
        # NaN); the registry's special rows, where they exist, override it
        inf = np.isinf(xw)
        xe = np.where(inf, np.copysign(np.finfo(W).max, xw), xw) if inf.any() else xw
        v = np.asarray(entry[which](xe, p, W, target), dtype=W)
        if v.shape != xw.shape:
            v = np.broadcast_to(v, xw.shape).copy()
        lo = entry[2](xe, p, W, target) if (which == 0 and len(entry) > 2) else None
        if which == 1:
            v = _apply_root_fits(name, p, xe, v, W)
        redo = inf & np.isnan(v)  # a formula that overflows inside at +-max
        if redo.any():
            big = np.sqrt(np.finfo(W).max)
            xb = np.where(redo, np.copysign(big, xw), 0).astype(W)
            vb = np.asarray(entry[which](xb, p, W, target), dtype=W)
            v = np.where(redo, np.broadcast_to(vb, v.shape), v)
    if inf.any():
        sv = _special_values(name, p, which)
        for s, val in sv.items():
            v[xw == s] = val
    nan = np.isnan(xw)
    if nan.any():
        v[nan] = np.nan
    return v, (None if lo is None else np.asarray(lo, W))


def round_target(hi, lo, target):
    """hi + lo correctly rounded to ``target`` (lo tiny against hi)."""
    target = np.dtype(target)
    with np.errstate(all="ignore"):
        r = hi.astype(target)
    if lo is None or not np.any(lo):
        return r
    with np.errstate(all="ignore"):
        res = (hi - r.astype(hi.dtype)) + lo  # hi - r exact
        sp = np.spacing(np.abs(r)).astype(hi.dtype)
        up = res > sp / 2
        down = res < -sp / 2
        tie = np.abs(res) == sp / 2
    fix = (up | down | tie) & np.isfinite(r)
    if fix.any():
        i = np.flatnonzero(fix)
        rr = r[i]
        toward = np.where(res[i] > 0, np.inf, -np.inf).astype(target)
        step = np.nextafter(rr, toward)
        even = (step.view(np.uint64 if target == np.float64 else np.uint32) & 1) == 0
        take = up[i] | down[i] | (tie[i] & even)
        rr[take] = step[take]
        r[i] = rr
    return r


# ---------------------------------------------------------------------------
# Self-check against mpmath

def self_check(name, p, target, n=200, seed=0, which=(0, 1)):
    """Max error of this module's reference against tests/reference.py's mpmath
    one on ``n`` sampled points of ``target`` (tests/reference.sample_points
    of the registry domain, near the roots of f' and the kinks, plus
    saturation points), as {which: (max relative error in units of W's eps,
    max error in ULP of target, x where)}."""
    act = R.BY_NAME[name]
    target = np.dtype(target)
    W = working_dtype(target)
    near = tuple(float(r) for r in grad_roots(name, p))
    kinks = mpref.KINKS.get(name, lambda q: ())(mp_params(name, p) if name != "prelu" else p)
    xs = np.concatenate([mpref.sample_points(act.domain, target, n=max(n, 64), near=near + tuple(kinks),
                                             seed=seed),
                         mpref.saturation_points(act.domain, target, n=16, seed=seed)])
    rng = np.random.default_rng(seed)
    if xs.size > n:
        xs = np.sort(rng.choice(xs, n, replace=False))
    for r in near:  # points inside the fit's radius
        xs = np.concatenate([xs, (float(r) + rng.uniform(-ROOT_RADIUS, ROOT_RADIUS, 16)).astype(target)])
    mpp = mp_params(name, p)
    fs = (mp_f(name), mp_fprime(name))
    pdt = target if act.exact else None
    out = {}
    eps = float(np.finfo(W).eps)
    tiny = float(np.finfo(target).tiny)
    for w in which:
        hi, lo = evaluate(name, xs, p, target, w)
        worst = (0.0, 0.0, None)
        for xi, h, l in zip(xs.tolist(), hi, lo if lo is not None else [None] * xs.size):
            tv = fs[w](mp.mpf(xi), mpp, pdt)
            got = to_mpf(h) + (to_mpf(l) if l is not None else 0)
            rel = 0.0
            if abs(tv) >= tiny:  # relative error where W's value is normal in target
                rel = float(abs(got - tv) / abs(tv)) / eps
            ulp = float(abs(got - tv) / mpref.ulp_of(mpref.round_to(tv, target), target))
            if ulp > worst[1] or (ulp == worst[1] and rel > worst[0]):
                worst = (max(rel, worst[0]), ulp, xi)
            else:
                worst = (max(rel, worst[0]), worst[1], worst[2])
        out[w] = worst
    return out
