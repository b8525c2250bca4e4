/* fa_vmath_impl.h -- the math kernels of one (T, W) pair; a template
 * included by fa_math.h (see fa_vmath.h for the method and the tables).
 *
 * W is double for both pairs; FA_PRECISE is 1 for the float64 functions
 * (full polynomials, and the error-free corrections that keep a division
 * or a sum from adding its rounding to the result) and 0 for float32
 * (short polynomials; a double result within 2^-34 is all float32 needs).
 *
 * The approximation error of each polynomial is measured by
 * tools/fit_vmath.py (quoted with the tables in fa_vmath.h); the error of
 * the functions built on the kernels is measured against mpmath by
 * tests/test_accuracy.py and benchmarks/exhaustive_accuracy.py (README,
 * "Accuracy").
 */

#if FA_PRECISE
#define FA_EXPM1_Q fa_expm1_q_full
#define FA_LOG1P_R fa_log1p_r_full
#define FA_ERFC_H fa_erfc_h_full
#define FA_ERFC_ZMAX FA_ERFC_ZMAX_FULL
#define FA_EXP_CLAMP 1400
/* g*e^x is finite for a subnormal g up to x = 1454.2 (celu' with alpha < 0),
 * and nonzero for g near the largest double down to x = -1454.2 */
#define FA_EXP_CLAMP_WIDE 1460
#else
#define FA_EXPM1_Q fa_expm1_q_short
#define FA_LOG1P_R fa_log1p_r_short
#define FA_ERFC_H fa_erfc_h_short
#define FA_ERFC_ZMAX FA_ERFC_ZMAX_SHORT
#define FA_EXP_CLAMP 700
#define FA_EXP_CLAMP_WIDE 700
#endif
#define FA_ERFC_K 3.5

/* The shared reduction of exp and expm1: x = k*ln2 + r, |r| <= ln2/2, with
 * x + xl (xl a small low part) clamped to [-lo, hi].  float64: exp
 * overflows above 710, but a mantissa with its two scales (FA(exp_parts))
 * carries e^x further to a caller that multiplies it by a tiny factor first
 * (celu' with alpha < 0: g*e^x is finite up to 1454.2 for the smallest
 * subnormal g: hi = 1460, FA(exp_parts_wide)), and below -745 to a caller
 * that multiplies it by a huge one (g*f'(x) for |g| up to the largest
 * double: lo = 1460, FA(exp_below_parts_lo)); the others take [-1400,
 * 1400].  float32 needs only [-700, 700] (FA(exp_parts_range_lo)).
 * Returns expm1(r), sets *k. */
FA_INLINE double FA(expm1_core)(double x, double xl, double *k)
{
    double kd = fa_round_int(x * FA_LOG2E);
    double r = (x - kd * FA_LN2_HI) + (xl - kd * FA_LN2_LO);
    *k = kd;
    return r + r * r * FA_POLY(FA_EXPM1_Q, r);
}
FA_INLINE double FA(expm1_reduced)(double x, double xl, double lo, double hi, double *k)
{
    /* |x| > hi (one comparison: GCC 12 cannot vectorise some combinations
     * of masks): a low part of a clamped x may be NaN (below -lo the
     * callers return 0 whatever the low part) */
#if FA_PRECISE
    xl = fabs(x) > hi ? 0 : xl;
#else
    xl = 0; /* float32 callers have no low parts (FA(mul_dd)) */
#endif
    x = x < -lo ? -lo : (x > hi ? hi : x); /* NaN passes */
    return FA(expm1_core)(x, xl, k);
}

/* The ranges of FA(exp_parts_range_lo) (constants, which fold): */
#define FA_EXP_STD 0   /* [-1400, 1400] (float32: [-700, 700]) */
#define FA_EXP_WIDE 1  /* [-1460, 1460] (float32: as STD) */
#define FA_EXP_BELOW 2 /* [-1460, 40] (float32: [-700, 40]); the caller's x <= 40 */

/* exp(x + xl) = m*s1*s2: m = 1 + p, and 2^k in two halves s1, s2, so that
 * a result that overflows or is subnormal is rounded once, by the last
 * multiplication (callers that multiply m by more factors apply s1, s2
 * last, for the same reason).  FA_EXP_BELOW carries e^x down to e^-1460
 * for the gradients (FA(exp_below_parts_lo)): there k reaches -2107 and
 * the scales go below 2^-1022, subnormal (down to 2^-1054, exact), where a
 * caller's g*(m*s1) then loses bits far below the last one of the result
 * (which is itself below 2^-1070 there).  FA_EXP_WIDE does that too and
 * carries e^x up to e^1460 for celu', whose exponent x/alpha takes either
 * sign (FA(exp_parts_wide)): there k reaches 2107, each scale is capped at
 * 2^1023 and the excess (up to 2^61) goes into the mantissa.  Both are the
 * same bits as FA_EXP_STD within its range; the other callers do without
 * their operations. */
FA_INLINE double FA(exp_parts_range_lo)(double x, double xl, int range, double *s1,
                                        double *s2, double *lo)
{
#if !FA_PRECISE
    /* float32: e^x for |x| <= 700 is a normal double, and every result or
     * product of a float32 function lies within e^+-200 of it, so the
     * parts are the value itself with unit scales: the constants fold the
     * parts machinery of fa_math.h away (measured, one thread, 10^5
     * elements, same run: float32 sigmoid 2.89 -> 1.74 ns/element, its
     * backward 5.56 -> 2.73).  FA_EXP_BELOW has no upper clamp (one
     * comparison and one select per vector less; x <= 40 there). */
    double k, p = FA(expm1_reduced)(x, xl, FA_EXP_CLAMP,
                                    range == FA_EXP_BELOW ? INFINITY : FA_EXP_CLAMP, &k);
    *s1 = 1;
    *s2 = 1;
    *lo = -0.0; /* m + -0.0 folds to m; +0.0 would not (-0 + 0 = +0) */
    /* below the clamp, e^-700 times 0: the same +0 as a constant 0, but
     * GCC cannot fold the product, so the callers' operations are not
     * specialised for a constant on that path (with -fno-thread-jumps,
     * such a specialised mask select stopped the vectoriser in log1p's
     * callers, setup.py) */
    return ((1 + p) * fa_pow2i(k)) * (x < -FA_EXP_CLAMP ? 0.0 : 1.0);
#else
    int wide = range == FA_EXP_WIDE, below = range == FA_EXP_BELOW;
    double bottom = (below || wide) ? FA_EXP_CLAMP_WIDE : FA_EXP_CLAMP;
    double top = wide ? FA_EXP_CLAMP_WIDE : (below ? INFINITY : FA_EXP_CLAMP);
    double k, p = FA(expm1_reduced)(x, xl, bottom, top, &k);
    double k1 = fa_round_int(k * 0.5), k2 = k - k1, big = 1;
    if (wide) {
        k1 = k1 > 1023 ? 1023 : k1;
        k2 = k2 > 1023 ? 1023 : k2;
        big = fa_pow2i(k - k1 - k2);
    }
    *s1 = below ? fa_pow2i_sub(k1) : (wide ? fa_pow2i_any(k1) : fa_pow2i(k1));
    *s2 = below ? fa_pow2i_sub(k2) : (wide ? fa_pow2i_any(k2) : fa_pow2i(k2));
    /* below the clamp the value is taken as exactly 0, so that no factor
     * (up to 2^1024) can lift the clamped mantissa back into range */
    double m = 1 + p;
    *lo = x < -bottom ? 0 : ((1 - m) + p) * big; /* the rounding of 1 + p (Fast2Sum) */
    return x < -bottom ? 0 : m * big;
#endif
}
FA_INLINE double FA(exp_parts_lo)(double x, double xl, double *s1, double *s2, double *lo)
{
    return FA(exp_parts_range_lo)(x, xl, FA_EXP_STD, s1, s2, lo);
}
/* The same for x <= 40 (or NaN), carried down to e^-1460 for float64 (see
 * FA_EXP_BELOW): the exponentials of the gradients, whose g*f'(x) is in
 * range for |g| near the largest double while f'(x) is far below the
 * smallest subnormal (sigmoid'(-1420) = e^-1420; with g = 1.7e308 the
 * result is 5e-309, 0 with the range of FA_EXP_STD). */
FA_INLINE double FA(exp_below_parts_lo)(double x, double xl, double *s1, double *s2,
                                        double *lo)
{
    return FA(exp_parts_range_lo)(x, xl, FA_EXP_BELOW, s1, s2, lo);
}
FA_INLINE double FA(exp_below_parts)(double x, double xl, double *s1, double *s2)
{
    double lo;
    return FA(exp_below_parts_lo)(x, xl, s1, s2, &lo);
}
FA_INLINE double FA(exp_parts_wide)(double x, double xl, double *s1, double *s2)
{
    double lo;
    return FA(exp_parts_range_lo)(x, xl, FA_EXP_WIDE, s1, s2, &lo);
}
FA_INLINE double FA(exp_parts)(double x, double xl, double *s1, double *s2)
{
    double lo;
    return FA(exp_parts_lo)(x, xl, s1, s2, &lo);
}
FA_INLINE double FA(exp_dd)(double x, double xl)
{
    double s1, s2, m = FA(exp_parts)(x, xl, &s1, &s2);
    return (m * s1) * s2;
}

FA_INLINE double FA(exp_w)(double x)
{
    return FA(exp_dd)(x, 0);
}

/* expm1(x) = 2^k*p + (2^k - 1), computed as 2*(h*p + (h - 1/2)) with
 * h = 2^(k-1) so that k = 1024 (x near 710) needs no third scale; k = 0
 * gives p itself.  Below x = -40, expm1 rounds to -1. */
FA_INLINE double FA(expm1_w)(double x)
{
    /* clamped once, to expm1's own range (a second clamp in the same
     * chain lets GCC thread jumps that stop vectorisation) */
    double k, p = FA(expm1_core)(x < -40 ? -40 : (x > 710 ? 710 : x), 0, &k);
    double h = fa_pow2i(k - 1);
    return k == 0 ? p : 2 * (h * p + (h - 0.5)); /* k = 0: p exactly, also subnormal */
}

/* expm1(x + xl) = hi + *lo, as a double-double for a caller that multiplies
 * it by a parameter and rounds once (elu, selu, celu).  float64: expm1_w
 * rounds its reduced argument and its last sum separately (about 1.2 ULP
 * near x = -0.37, where 2^k*p and 2^k - 1 cancel to a third), and a
 * caller's product adds 0.5 (celu, alpha = 2.5: 2.13 ULP, beyond the
 * contract).  Here the reduction r = rh + rl is exact, expm1(r) = ph + pl
 * keeps the rounding of r + r^2*Q(r) (Fast2Sum: |r^2 Q| < |r|) and rl's
 * first-order term rl*e^r, and 2^k*p + (2^k - 1) is summed exactly (2^k*ph
 * is exact; 2^k - 1 = bh + bl exactly; |bh| >= |2^k ph| for k != 0, bh = 0
 * for k = 0).  `wide` (a constant): x up to 710 (celu with alpha < 0; past
 * 709.78 the result is inf, with a 0 low part), as expm1_w does it, with
 * h = 2^(k-1) and a last doubling; else x <= 0 only (elu, selu, celu with
 * alpha > 0 take x itself above), where h = 2^k <= 1 needs neither (float64
 * elu: 2.2 ns/element against 3.0 wide).  float32: expm1_w itself, with a
 * -0.0 low part that folds away. */
FA_INLINE double FA(expm1_range_lo)(double x, double xl, int wide, double *lo)
{
#if FA_PRECISE
    double top = wide ? 710 : 0;
    xl = (x < -40 || x > top) ? 0 : xl; /* a clamped x has no low part */
    x = x < -40 ? -40 : (x > top ? top : x); /* NaN passes */
    double kd = fa_round_int(x * FA_LOG2E);
    double rl, rh = fa_two_sum(x - kd * FA_LN2_HI, xl - kd * FA_LN2_LO, &rl);
    double pl, ph = fa_fast_two_sum(rh, rh * rh * FA_POLY(FA_EXPM1_Q, rh), &pl);
    pl += rl * (1 + ph);
    double h = fa_pow2i(wide ? kd - 1 : kd), bl, bh, e, v, l;
    if (!wide) {
        bh = fa_fast_two_sum(-1, h, &bl);
        v = fa_fast_two_sum(bh, h * ph, &e);
        *lo = (e + bl) + h * pl;
        return v;
    }
    bh = fa_two_sum(h, -0.5, &bl);
    v = fa_fast_two_sum(bh, h * ph, &e);
    l = (e + bl) + h * pl;
    v = kd == 0 ? ph : 2 * v; /* k = 0: p itself (also subnormal) */
    l = kd == 0 ? pl : 2 * l;
    *lo = v <= DBL_MAX ? l : 0; /* overflowed: no NaN low part */
    return v;
#else
    (void)xl;
    (void)wide;
    *lo = -0.0; /* folds: see FA(exp_parts_lo) */
    return FA(expm1_w)(x);
#endif
}
FA_INLINE double FA(expm1_lo)(double x, double xl, double *lo)
{
    return FA(expm1_range_lo)(x, xl, 0, lo);
}
FA_INLINE double FA(expm1_wide_lo)(double x, double xl, double *lo)
{
    return FA(expm1_range_lo)(x, xl, 1, lo);
}

/* log1p(x), x >= -1: u = 1 + x with its rounding error c kept (2Sum), u
 * = 2^k*m with m in [sqrt(2)/2, sqrt(2)) read from the bits, f = m - 1
 * exact, and log(1+f) = f - f^2/2 + s*(f^2/2 + R(s^2)), s = f/(2+f), the
 * classical reduction; the correction c/u is added last.  `unit` (a
 * constant): x in [0, 1] or NaN (softplus and log_sigmoid: log1p(e^-|z|)),
 * where float32 takes c*(2 - u) for c/u: with u in [1, 2] and |c| <= 2^-53
 * the difference is below 2^-53*(u - 1)^2, under 2^-52 of the result (all
 * 2^32 float32 inputs of both: the same 2078 results above 0.5 ULP, max
 * 0.5002, as with c/u), and a division per element less; both dtypes skip
 * the checks for x = inf and x <= -1.  A/B, one thread, x86-64-v4, 10^5
 * elements: log_sigmoid 2.04 -> 1.93 ns/element (float32), 3.05 -> 2.89
 * (float64); softplus 2.24 -> 2.11, 3.48 -> 3.27. */
FA_INLINE double FA(log1p_range)(double x, int unit)
{
    double u = 1 + x;
    double c = x >= 1 ? 1 - (u - x) : x - (u - 1);
    uint64_t bu = fa_bits(u) + (0x3ff0000000000000ULL - 0x3fe6a09e667f3bcdULL);
    double k = fa_small_uint_to_double(bu >> 52) - 1023;
    double m = fa_from_bits((bu & 0x000fffffffffffffULL) + 0x3fe6a09e667f3bcdULL);
    double f = m - 1;
    double s = f / (2 + f), z = s * s, hfsq = 0.5 * f * f;
    double R = z * FA_POLY(FA_LOG1P_R, z);
    double cu = (!FA_PRECISE && unit) ? c * (2 - u) : c / u;
    double v = k * FA_LN2_HI + (f - (hfsq - (s * (hfsq + R) + (k * FA_LN2_LO + cu))));
    if (unit)
        return x != x ? x : v;
    v = x == INFINITY ? x : v;
    v = x == -1 ? -INFINITY : v;
    return (x < -1 || x != x) ? NAN : v;
}
FA_INLINE double FA(log1p_w)(double x)
{
    return FA(log1p_range)(x, 0);
}
FA_INLINE double FA(log1p_unit)(double x)
{
    return FA(log1p_range)(x, 1);
}

/* erfc(z) = m*s1*s2 for z = zh + zl >= 0 (zl a low part, 0 where z is exact;
 * *em*s1*s2 = exp(-z^2)):
 * H(u)/(K+z) * exp(-z^2), with z^2 = ph + pl as a double-double, so that
 * exp's argument (up to -750) carries no rounding of its own.  u is
 * clamped to the fitted range; beyond it the result is below the smallest
 * subnormal of T. */
FA_INLINE double FA(erfc_pos_parts)(double zh, double zl, double *s1, double *s2,
                                        double *em, int fwd)
{
    double zc = zh > FA_ERFC_ZMAX ? FA_ERFC_ZMAX : zh;
    double u = (zc - FA_ERFC_K) / (zc + FA_ERFC_K);
#if !FA_PRECISE
    if (fwd) {
        /* float32 gelu forward (`fwd`, a constant), which zeroes erfc
         * beyond FA_ERFC_ZMAX and needs no exp(-z^2) of its own: z = zc
         * throughout, so exp's argument lies in [-110.25, 0] and needs
         * none of its clamps.  The same bits up to FA_ERFC_ZMAX (the same
         * operations); the gradient's x*exp(-z^2) needs z itself beyond. */
        double k, p = FA(expm1_core)(-(zc * zc), 0, &k);
        *em = (1 + p) * fa_pow2i(k);
        *s1 = *s2 = 1;
        return FA_POLY(FA_ERFC_H, u) / (zc + FA_ERFC_K) * *em;
    }
#endif
    (void)fwd;
    zh = zh > 40 ? 40 : zh; /* erfc(40) < 2^-2300: keeps z^2 finite */
    double pl, ph = fa_two_prod(zh, zh, &pl);
    pl += 2 * zh * zl;
    *em = FA(exp_parts)(-ph, -pl, s1, s2);
    return FA_POLY(FA_ERFC_H, u) / (zh + FA_ERFC_K) * *em;
}

/* erfc(z)*exp(z^2) beyond FA_ERFC_ZMAX, where H is not fitted (and erfc
 * itself is below every subnormal of T): the asymptotic series
 * 1/(z sqrt(pi)) * sum_n (-1)^n (2n-1)!! w^n, w = 1/(2z^2), through n = 5.
 * Only gelu' needs it (a large upstream gradient lifts g*Phi(x) back into
 * range): its Phi(x) is a fraction w of x*phi(x) there, so the series'
 * truncation, 10395 w^6 relative (9.0e-11 at float32's z = 10.5, 9.1e-16
 * at float64's 27.4), is 2^-41 and 2^-60 of the gradient. */
FA_INLINE double FA(erfcx_asym)(double z)
{
    double r = 1 / z, w = 0.5 * r * r;
    double s = 1 + w * (-1 + w * (3 + w * (-15 + w * (105 + w * -945))));
    return s * r * FA_INV_SQRT_PI;
}

/* (n + nl)/(d + dl) as q + *lo, unrounded (double-doubles in and out).
 * One division: q = n*(1/d) is within 2 ULP, which the residual step
 * corrects as well as it does a correctly rounded q (n - q*d stays exact),
 * and the correction needs 1/d only to a few bits (one thread, 10^5
 * elements, with the narrower exp clamp of FA(exp_parts_range_lo), same
 * run: float64 sigmoid' 7.1 -> 5.8 ns/element, silu' 12.0 -> 9.0). */
FA_INLINE double FA(div_dd_lo)(double n, double nl, double d, double dl, double *lo)
{
    double r = 1 / d, q = n * r;
    double ql, qd = fa_two_prod(q, d, &ql);
    /* n + nl - q*(d + dl) = (n - qd) - ql + nl - q*dl; n - qd is exact. */
    double res = (((n - qd) - ql) + nl) - q * dl;
    *lo = res * r;
    return q;
}
/* n/(a + b): for FA_PRECISE the rounding of a + b is kept and the
 * quotient corrected by one Newton step on the exact residual, so the
 * result is within about 0.5 ULP plus the error of n; as q + *lo,
 * unrounded, for a caller that multiplies it. */
FA_INLINE double FA(div_sum2_lo)(double n, double nl, double a, double b, double *lo)
{
#if FA_PRECISE
    double dl, d = fa_two_sum(a, b, &dl);
    return FA(div_dd_lo)(n, nl, d, dl, lo);
#else
    (void)nl;
    *lo = -0.0; /* folds: see FA(exp_parts_lo) */
    return n / (a + b);
#endif
}
FA_INLINE double FA(div_sum2)(double n, double nl, double a, double b)
{
    double lo, q = FA(div_sum2_lo)(n, nl, a, b, &lo);
    return q + lo;
}
FA_INLINE double FA(div_sum)(double n, double a, double b)
{
    return FA(div_sum2)(n, 0, a, b);
}
/* n/(a + b)^2: float64 divides twice, each corrected; float32 once by the
 * rounded square (in double, 2^-52 relative: far below float32's half ULP;
 * the float32 gradients stay within 0.5 ULP on 1.2e7 points).  Measured,
 * one thread, 1e5 float32, min of 3 alternating runs on a loaded machine:
 * sigmoid' 2.80 -> 2.54 ns/element, tanh' 3.33 -> 2.68, silu' 4.16 -> 3.62. */
FA_INLINE double FA(div_sum_sq)(double n, double a, double b)
{
#if FA_PRECISE
    return FA(div_sum)(FA(div_sum)(n, a, b), a, b);
#else
    double d = a + b;
    return n / (d * d);
#endif
}

#if FA_PRECISE
/* erfc(z) = (m + *lo)*s1*s2 for z = zh + zl >= 0 (float64), as
 * FA(erfc_pos_parts) with every step that rounds kept as a double-double:
 * u = (z - K)/(z + K); the last FA_ERFC_LO_TERMS Horner steps of H(u) with
 * those coefficients as hi + lo (fa_erfc_h_full_lo: the rounding of the
 * coefficients was the table's largest error, 2^-52.5; with the low parts
 * 2^-56.0); the division by K + z; the product with exp(-z^2) = (*em +
 * *eml)*s1*s2.  H so evaluated is within 0.124*2^-53 of the fitted
 * polynomial (emulated in NumPy on 4000 z over [0, 27.4]; with the last 3
 * steps only, 0.61), and the reduction of exp adds up to 0.35*2^-53. */
#define FA_ERFC_LO_TERMS 6
FA_INLINE double FA(erfc_pos_dd)(double zh, double zl, double *s1, double *s2, double *em,
                                 double *eml, double *lo)
{
    zl = zh > 40 ? 0 : zl;
    zh = zh > 40 ? 40 : zh; /* erfc(40) < 2^-2300: keeps z^2 finite */
    double zc = zh > FA_ERFC_ZMAX ? FA_ERFC_ZMAX : zh, zcl = zh > FA_ERFC_ZMAX ? 0 : zl;
    double nl, nh = fa_two_sum(zc, -FA_ERFC_K, &nl);
    double dl, dh = fa_two_sum(zc, FA_ERFC_K, &dl);
    double ul, uh = FA(div_dd_lo)(nh, nl + zcl, dh, dl + zcl, &ul);
    double ah = FA_HORNER(FA_ERFC_H + FA_ERFC_LO_TERMS, uh,
                          (int)(sizeof(FA_ERFC_H) / sizeof(FA_ERFC_H[0])) - FA_ERFC_LO_TERMS);
    double al = 0;
    _Pragma("GCC unroll 8")
    for (int k = FA_ERFC_LO_TERMS - 1; k >= 0; k--) {
        double pl, ph = fa_two_prod(ah, uh, &pl);
        pl += ah * ul + al * uh;
        double sl, sh = fa_two_sum(FA_ERFC_H[k], ph, &sl);
        sl += pl + fa_erfc_h_full_lo[k];
        ah = fa_fast_two_sum(sh, sl, &al);
    }
    double kl, kh = fa_two_sum(zh, FA_ERFC_K, &kl);
    double ql, qh = FA(div_dd_lo)(ah, al, kh, kl + zl, &ql);
    double pl, ph = fa_two_prod(zh, zh, &pl);
    pl += 2 * zh * zl;
    *em = FA(exp_below_parts_lo)(-ph, -pl, s1, s2, eml);
    double rl, rh = fa_two_prod(qh, *em, &rl);
    *lo = rl + (qh * *eml + ql * *em);
    return rh;
}
#undef FA_ERFC_LO_TERMS
#endif

#undef FA_EXPM1_Q
#undef FA_LOG1P_R
#undef FA_ERFC_H
#undef FA_ERFC_ZMAX
#undef FA_ERFC_K
#undef FA_EXP_CLAMP
#undef FA_EXP_CLAMP_WIDE
