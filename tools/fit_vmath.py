"""Fit the polynomial coefficients of the native SIMD math kernels.

Usage::

    python tools/fit_vmath.py            # fit, measure, print the C tables

The tables it prints are pasted into ``src/fastact/kernels/fa_vmath.h``.
Each kernel there is instantiated twice: a "short" variant for the float32
functions (evaluated in double, where a relative error below 2**-34 keeps
the float32 results within 0.5 + 2**-10 ULP) and a "full" variant for the
float64 functions (approximation error below 2**-56, so that the rounding
of the evaluation, not the polynomial, bounds the error).

Method: each target function g is interpolated at the Chebyshev nodes of
its interval at 60 significant digits with mpmath (near-minimax: within a
small factor of the best polynomial of the same degree), converted to the
monomial basis, and rounded to double.  The script then measures the
approximation error of the *rounded* coefficients, evaluated exactly (in
mpmath) on 4000 points of the interval, and prints it next to each table;
those are the figures quoted in fa_vmath.h.

The polynomials:

* exp/expm1: expm1(r) = r + r*r*Q(r) on |r| <= ln2/2 (widened by 1/64 so
  that a reduction rounded in any direction stays inside), with
  Q(r) = (expm1(r) - r)/r**2;
* log1p: log(1+f) = f - f*f/2 + s*(f*f/2 + R(s*s)), s = f/(2+f),
  f in [sqrt(2)/2 - 1, sqrt(2) - 1] (the classical reduction), R(z) =
  z*(L1 + z*(L2 + ...));
* erfc: erfc(z) = H(u)/(K+z) * exp(-z*z) with u = (z-K)/(z+K), z >= 0,
  K = 7/2, where H(u) = erfcx(z)*(K+z) is smooth on u in [-1, 1), from K
  at z = 0 to 1/sqrt(pi) as z -> inf (the variable of Schonfelder's erfcx
  expansions; the coefficients stay below K in magnitude, so Horner's rule
  in u is stable).
  Fitted on [-1, u_max] where erfc(z) still matters: z <= 10.5 for float32
  (gelu underflows beyond), z <= 27.4 for float64.
"""

from __future__ import annotations

import mpmath as mp

mp.mp.dps = 60


def chebyshev_fit(f, a, b, degree):
    """Monomial coefficients (ascending, mpf) of the degree-`degree`
    polynomial interpolating f at the Chebyshev nodes of [a, b]."""
    n = degree + 1
    nodes = [(a + b) / 2 + (b - a) / 2 * mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n)
             for k in range(n)]
    values = [f(x) for x in nodes]
    # Solve the Vandermonde system exactly enough at 60 digits.
    A = mp.matrix([[x**j for j in range(n)] for x in nodes])
    c = mp.lu_solve(A, mp.matrix(values))
    return [c[j] for j in range(n)]


def rounded(coeffs):
    return [mp.mpf(float(c)) for c in coeffs]


def horner(coeffs, x):
    acc = mp.mpf(0)
    for c in reversed(coeffs):
        acc = acc * x + c
    return acc


def max_rel_error(approx, exact, a, b, points=4000):
    worst, where = mp.mpf(0), a
    for k in range(points + 1):
        x = a + (b - a) * mp.mpf(k) / points
        e = exact(x)
        if e == 0:
            continue
        err = abs(approx(x) / e - 1)
        if err > worst:
            worst, where = err, x
    return worst, where


def c_table(name, coeffs, comment):
    body = ",\n    ".join(f"{float(c).hex()} /* {mp.nstr(c, 17)} */" for c in coeffs)
    return f"/* {comment} */\nstatic const double {name}[{len(coeffs)}] = {{\n    {body},\n}};"


def log2_of(x):
    return float(mp.log(x, 2)) if x > 0 else float("-inf")


# ---- exp / expm1 -------------------------------------------------------------

R_EXP = mp.log(2) / 2 * (1 + mp.mpf(1) / 64)


def exp_q(r):
    if abs(r) < mp.mpf(10) ** -20:
        return mp.mpf(1) / 2 + r / 6
    return (mp.expm1(r) - r) / (r * r)


def fit_exp(degree):
    q = rounded(chebyshev_fit(exp_q, -R_EXP, R_EXP, degree))
    err, where = max_rel_error(lambda r: r + r * r * horner(q, r), mp.expm1,
                               -R_EXP, R_EXP)
    return q, err, where


# ---- log1p ------------------------------------------------------------------

F_LO, F_HI = mp.sqrt(2) / 2 - 1, mp.sqrt(2) - 1
S_MAX = F_HI / (2 + F_HI)


def log1p_r_over_z(z):
    """R(z)/z for z = s*s: the part the polynomial approximates."""
    if z < mp.mpf(10) ** -30:
        return mp.mpf(2) / 3
    s = mp.sqrt(z)
    f = 2 * s / (1 - s)
    hfsq = f * f / 2
    return ((mp.log1p(f) - f + hfsq) / s - hfsq) / z


def fit_log1p(degree):
    zmax = S_MAX * S_MAX
    c = rounded(chebyshev_fit(log1p_r_over_z, mp.mpf(0), zmax, degree - 1))

    def approx(f):
        s = f / (2 + f)
        z = s * s
        hfsq = f * f / 2
        return f - hfsq + s * (hfsq + z * horner(c, z))

    err, where = max_rel_error(approx, mp.log1p, F_LO, F_HI)
    return c, err, where


# ---- erfc -------------------------------------------------------------------

ERFC_K = mp.mpf(7) / 2


def erfc_h(u):
    z = ERFC_K * (1 + u) / (1 - u)
    return mp.erfc(z) * mp.exp(z * z) * (ERFC_K + z)


#: float64 evaluates the first terms of H in double-double arithmetic
#: (fa_vmath_impl.h), with these coefficients as hi + lo: the rounding of
#: the coefficients to double was the largest error of the table (2^-52.5).
ERFC_LO_TERMS = 6


def fit_erfc(degree, zmax, lo_terms=0):
    """H's coefficients rounded to double, the low parts of the first
    `lo_terms` (their rounding errors), and the error of the polynomial with
    both."""
    zmax = mp.mpf(zmax)
    umax = (zmax - ERFC_K) / (zmax + ERFC_K)
    exact = chebyshev_fit(erfc_h, mp.mpf(-1), umax, degree)
    h = rounded(exact)
    lo = rounded([c - hc for c, hc in zip(exact[:lo_terms], h)])
    used = [hc + (lo[k] if k < lo_terms else 0) for k, hc in enumerate(h)]

    def approx(z):
        u = (z - ERFC_K) / (z + ERFC_K)
        return horner(used, u) / (ERFC_K + z) * mp.exp(-z * z)

    err, where = max_rel_error(approx, mp.erfc, mp.mpf(0), zmax)
    return h, lo, err, where, umax


def split_constant(name, value, hi_bits):
    """value as hi + lo: hi keeps hi_bits significant bits, so that k*hi is
    exact for every |k| < 2**(53 - hi_bits); lo = value - hi rounded."""
    e = int(mp.floor(mp.log(abs(value), 2)))
    hi = mp.mpf(int(mp.nint(value * 2 ** (hi_bits - 1 - e)))) / 2 ** (hi_bits - 1 - e)
    lo = mp.mpf(float(value - hi))
    return (f"#define {name}_HI {float(hi).hex()} /* {hi_bits} bits */\n"
            f"#define {name}_LO {float(lo).hex()}")


def main():
    out = [split_constant("FA_LN2", mp.log(2), 32),
           f"#define FA_LOG2E {float(1 / mp.log(2)).hex()}",
           split_constant("FA_INV_SQRT2_DD", 1 / mp.sqrt(2), 53),
           split_constant("FA_INV_SQRT_2PI_DD", 1 / mp.sqrt(2 * mp.pi), 53),
           # gelu's tanh form: 2u = A*x + B*x^3, A = 2*sqrt(2/pi), B = A*0.044715
           split_constant("FA_GELU_TANH_A", 2 * mp.sqrt(2 / mp.pi), 53),
           split_constant("FA_GELU_TANH_B", 2 * mp.sqrt(2 / mp.pi) * mp.mpf("0.044715"), 53)]
    for label, deg in (("short", 6), ("full", 10)):
        q, err, where = fit_exp(deg)
        out.append(c_table(f"fa_expm1_q_{label}", q,
                           f"expm1(r) = r + r^2 Q(r), |r| <= ln2/2 (1 + 1/64): "
                           f"max rel error 2^{log2_of(err):.1f} at r = {mp.nstr(where, 6)}"))
    for label, deg in (("short", 4), ("full", 7)):
        c, err, where = fit_log1p(deg)
        out.append(c_table(f"fa_log1p_r_{label}", c,
                           f"R(z) = z (L1 + z (L2 + ...)), z = s^2: log1p max rel error "
                           f"2^{log2_of(err):.1f} at f = {mp.nstr(where, 6)}"))
    for label, deg, zmax, lo_terms in (("short", 12, 10.5, 0), ("full", 22, 27.4, ERFC_LO_TERMS)):
        h, lo, err, where, umax = fit_erfc(deg, zmax, lo_terms)
        with_lo = f" (with the low parts below)" if lo_terms else ""
        out.append(c_table(f"fa_erfc_h_{label}", h,
                           f"erfc(z) = H(u)/(K+z) exp(-z^2), u = (z-K)/(z+K), K = 3.5, "
                           f"z <= {zmax}: max rel error{with_lo} 2^{log2_of(err):.1f} at z = "
                           f"{mp.nstr(where, 6)}"))
        if lo_terms:
            out.append(c_table(f"fa_erfc_h_{label}_lo", lo,
                               f"the rounding errors of the first {lo_terms} coefficients above"))
        out.append(f"#define FA_ERFC_ZMAX_{label.upper()} {zmax}")
    print("\n\n".join(out))


if __name__ == "__main__":
    main()
