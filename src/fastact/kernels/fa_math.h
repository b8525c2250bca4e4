/* fa_math.h -- the math of every element-wise activation, written once.
 *
 * A template: fa_kernels_impl.h includes it once per (T, W) pair with
 *   T      the storage type (float or double),
 *   W      the working type, double for both,
 *   FA_PRECISE  0 for float, 1 for double (see fa_vmath_impl.h),
 *   FA(n)  the name of function n for that pair.
 * Every function is branch-free in effect (conditionals select between
 * values that are all computed, and the math kernels of fa_vmath_impl.h are
 * inline polynomials), so the array loops of fa_loops.h vectorise.
 *
 * Accuracy design: a smooth function is evaluated with formulas that have
 * no cancellation.  For float32 the double evaluation has 29 bits to spare,
 * so the result is within 0.5 T-ULP plus about 2^-10.  For float64 the
 * formulas keep every argument that an exponential amplifies (beta*x, x/a,
 * x^2, x - max) as a double-double, and sums in denominators are corrected
 * (FA(div_sum)), so results stay within 2 ULP (measured max 1.98, tanh,
 * on a 1.2e7-point sweep); the measured figures
 * are in the README's accuracy table (tests/test_accuracy.py and
 * benchmarks/exhaustive_accuracy.py check them against mpmath).
 * The piecewise-linear functions compute in T with parameters rounded to T
 * first, so their results are exactly rounded (bit-exact, CONTRACT.md s.4).
 *
 * Every function here follows the per-element rules of docs/semantics.md,
 * which the NumPy backend (fastact/_numpy_backend.py) implements too; NaN in
 * gives NaN out, and the infinities give the limits of CONTRACT.md s.3.
 *
 * Names: <op>_fwd(x, P, i) -> f(x);  <op>_bwd(g, x, P, i) -> g*f'(x);
 *        <op>_bwd_y(g, y, P) -> g*f'(x) from y = f(x) (relu, sigmoid, tanh).
 * i is the element's flat C-order index (only rrelu's generator uses it).
 */

#define FA_PARAM(k) ((W)P->p[k])

#include "fa_vmath_impl.h"

/* Error-free sum and product where only float64 needs the error term (a
 * correction below double's rounding): for float32 the double evaluation
 * has 29 bits to spare, so the term is -0.0, which folds away (x + -0.0
 * is x) with the operations that would have used it. */
FA_INLINE W FA(two_sum)(W a, W b, W *e)
{
#if FA_PRECISE
    return fa_two_sum(a, b, e);
#else
    *e = -0.0;
    return a + b;
#endif
}
FA_INLINE W FA(two_prod)(W a, W b, W *e)
{
#if FA_PRECISE
    return fa_two_prod(a, b, e);
#else
    *e = -0.0;
    return a * b;
#endif
}

/* Values near underflow.  A result that may be subnormal is carried as
 * "parts": a mantissa m and two powers of two s1, s2 (from FA(exp_parts)),
 * and the scales are applied by the last two multiplications, so that the
 * result is rounded once (an early subnormal intermediate would keep only
 * its few significant bits).  s1 = s2 = 1 where nothing can underflow. */

/* g*f'(x) where f'(x) = d*s1*s2.  Where the derivative is exactly 0 the
 * result is 0 for every g but NaN (an infinite upstream gradient times a
 * flat region is 0, as in PyTorch's autograd), and NaN in g or d always
 * propagates. */
FA_INLINE T FA(scale_parts)(T g, W d, W s1, W s2)
{
    /* Scales >= 1 (a large exponential): f' itself is representable, so
     * form it first (g*d could underflow); scales < 1: g*(d*s1) cannot
     * overflow, and s2 rounds the possibly subnormal result. */
    W full = (d * s1) * s2;
    /* ... unless f' itself overflows (celu with alpha < 0: exp(x/alpha) up
     * to e^1460) while g*f' does not (|g| < 1): then g*s1 first, which is
     * exact (s1 >= 2^512 there, so even a subnormal g becomes normal), and
     * d multiplies a normal number and rounds once */
    W big = isinf(full) ? (((W)g * s1) * d) * s2 : (W)g * full;
    /* ... and for scales < 1, unless d is itself huge (elu' with alpha =
     * 1e300) and g*d*s1 overflows where the result is finite: then full is
     * normal (s2 >= 2^-1010 and g*d*s1 > 2^1024 imply it), so g*full
     * rounds once */
    W small = ((W)g * (d * s1)) * s2;
    small = isinf(small) ? (W)g * full : small;
    W v = s1 >= 1 ? big : small;
    return d == 0 ? (g == g ? (T)0 : g) : (T)v;
}
/* The same where s1 <= 1 (the scales of exp of an argument <= 0) and
 * |d| <= 2: then f' itself never overflows, so the first branch above is
 * g*f' (s1 = 1) and its alternative order is never taken, nor computed (the
 * same bits). */
FA_INLINE T FA(scale_parts_below)(T g, W d, W s1, W s2)
{
    W ds = d * s1, full = ds * s2;
    W small = ((W)g * ds) * s2;
    W v = (s1 >= 1 || isinf(small)) ? (W)g * full : small;
    return d == 0 ? (g == g ? (T)0 : g) : (T)v;
}
FA_INLINE T FA(scale_w)(T g, W d)
{
    return FA(scale_parts)(g, d, 1, 1);
}

/* The same in T, for the exact (piecewise-linear) functions. */
FA_INLINE T FA(scale_t)(T g, T d)
{
    return d == 0 ? (g == g ? (T)0 : g) : g * d;
}

/* x*s where s = m*s1*s2 in [0, 1] may underflow to 0 while x is infinite:
 * the limit is then a signed zero, never the NaN of inf*0 (silu(-inf) = 0
 * etc.). */
FA_INLINE W FA(mul_parts)(W x, W m, W s1, W s2)
{
    W full = (m * s1) * s2;
    W v = s1 >= 1 ? x * full : (x * (m * s1)) * s2;
    return (m == 0 || (full == 0 && isinf(x))) ? copysign((W)0, x) : v;
}
/* The same for s = (m + ml)*s1*s2 with a low part ml: x*m + x*ml rounds
 * once (FMA) where the scales are below 1 (the tails, where it matters). */
FA_INLINE W FA(mul_parts_lo)(W x, W m, W ml, W s1, W s2)
{
#if FA_PRECISE
    W full = (m * s1) * s2, full_lo = (ml * s1) * s2;
    W xm = fa_fma(x, m, x * ml);
    W v = s1 >= 1 ? fa_fma(x, full, x * full_lo) : (xm * s1) * s2;
    v = isinf(x) ? x * full : v; /* no inf - inf from the low part */
    return (m == 0 || (full == 0 && isinf(x))) ? copysign((W)0, x) : v;
#else
    (void)ml;
    return FA(mul_parts)(x, m, s1, s2);
#endif
}
FA_INLINE W FA(mul_limit)(W x, W s)
{
    return FA(mul_parts)(x, s, 1, 1);
}

/* z = a*x as a double-double zh + zl (zl = 0 where a*x is exact or T is
 * float, where double's 29 spare bits make it irrelevant): the argument of
 * an exponential, which turns an absolute error of z into a relative one. */
FA_INLINE W FA(mul_dd)(W a, W x, W *zl)
{
    x = (a == 0 && isinf(x)) ? 0 : x; /* 0*inf: the limit 0 (swish, beta = 0: x/2) */
#if FA_PRECISE
    W z = fa_two_prod(a, x, zl);
    *zl = fabs(z) <= DBL_MAX ? *zl : 0; /* a*x overflowed: no low part */
    return z;
#else
    *zl = -0.0; /* z + -0.0 folds to z (see FA(exp_parts_lo)) */
    return a * x;
#endif
}

/* a*(m + ml) rounded once (FMA) for float64; a*m for float32. */
FA_INLINE W FA(mul_lo)(W a, W m, W ml)
{
#if FA_PRECISE
    return fa_fma(a, m, a * ml);
#else
    (void)ml;
    return a * m;
#endif
}

/* exp(-|z|) = (em + *eml)*s1*s2 for z = zh + zl; *e gets the value itself. */
FA_INLINE W FA(exp_neg_abs_parts_lo)(W zh, W zl, W *e, W *s1, W *s2, W *eml)
{
    W ah = zh >= 0 ? -zh : zh, al = zh >= 0 ? -zl : zl;
    W em = FA(exp_below_parts_lo)(ah, al, s1, s2, eml);
    *e = (em * *s1) * *s2;
    return em;
}
FA_INLINE W FA(exp_neg_abs_parts)(W zh, W zl, W *e, W *s1, W *s2)
{
    W eml;
    return FA(exp_neg_abs_parts_lo)(zh, zl, e, s1, s2, &eml);
}
FA_INLINE W FA(exp_neg_abs)(W zh, W zl)
{
    W e, s1, s2;
    FA(exp_neg_abs_parts)(zh, zl, &e, &s1, &s2);
    return e;
}

/* Logistic sigmoid of zh + zl without overflow, as parts: e = exp(-|z|) <= 1,
 * then 1/(1+e) (z >= 0) or e/(1+e). */
FA_INLINE W FA(sigmoid_parts_lo)(W zh, W zl, W *s1, W *s2, W *lo)
{
    W e, eml, em = FA(exp_neg_abs_parts_lo)(zh, zl, &e, s1, s2, &eml);
    *s1 = zh >= 0 ? 1 : *s1;
    *s2 = zh >= 0 ? 1 : *s2;
    return FA(div_sum2_lo)(zh >= 0 ? (W)1 : em, zh >= 0 ? (W)0 : eml, 1, e, lo);
}
FA_INLINE W FA(sigmoid_parts)(W zh, W zl, W *s1, W *s2)
{
    W lo, m = FA(sigmoid_parts_lo)(zh, zl, s1, s2, &lo);
    return m + lo;
}
FA_INLINE W FA(sigmoid_dd)(W zh, W zl)
{
    W s1, s2, m = FA(sigmoid_parts)(zh, zl, &s1, &s2);
    return (m * s1) * s2;
}
FA_INLINE W FA(sigmoid_w)(W z)
{
    return FA(sigmoid_dd)(z, 0);
}

/* sigmoid'(z) = e/(1+e)^2 with e = exp(-|z|), as parts: accurate in both
 * tails, where s*(1-s) would cancel (sigmoid'(20) in float32 is 2.06e-9,
 * not 0). */
FA_INLINE W FA(sigmoid_grad_parts)(W zh, W zl, W *s1, W *s2)
{
    W e, em = FA(exp_neg_abs_parts)(zh, zl, &e, s1, s2);
    return FA(div_sum_sq)(em, 1, e);
}

/* f' about a root r of f' (the registry's RootSeries; tables s = {hi, lo,
 * c1..cN} generated into fa_ops.h): t*(c1 + t*(c2 + ...)) for t = z - r.
 * Near r the formula for f' is a difference of nearly equal terms whose
 * relative error grows as 1/|z - r|; the series has none (<= 2^-53.8
 * relative over the radius, tools/fit_roots.py). */
#if FA_PRECISE
#define FA_ROOT_TERMS_USED FA_ROOT_TERMS
#else
#define FA_ROOT_TERMS_USED 9 /* truncation below 2^-34 relative over the radius */
#endif
FA_INLINE W FA(root_series)(const double *s, W t)
{
    return FA_HORNER(s + 2, t, FA_ROOT_TERMS_USED) * t;
}

/* f'(z) for z = z + zl (a low part) with the series where z is within its
 * radius of the root s[0] + s[1] (z - s[0] is exact there, by Sterbenz),
 * d elsewhere.  float32 needs it too: its short polynomials (2^-34) would
 * be amplified by the cancellation, so it takes a shorter series. */
FA_INLINE W FA(near_root_or)(const double *s, W z, W zl, W d)
{
    W t = ((z - (W)s[0]) + zl) - (W)s[1];
    return fabs(z - (W)s[0]) < FA_ROOT_RADIUS ? FA(root_series)(s, t) : d;
}

/* NaN-propagating derivative of a piecewise-linear function: d where x is a
 * number, NaN where x is NaN. */
FA_INLINE T FA(nan_or)(T x, T d)
{
    return x != x ? x : d;
}

/* ---- piecewise linear: exact, in T -------------------------------------- */

FA_INLINE T FA(relu_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    return (x > 0 || x != x) ? x : (T)0;
}
FA_INLINE T FA(relu_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    return FA(scale_t)(g, FA(nan_or)(x, x > 0 ? (T)1 : (T)0));
}
FA_INLINE T FA(relu_bwd_y)(T g, T y, const fa_params *P)
{
    (void)P;
    return FA(scale_t)(g, FA(nan_or)(y, y > 0 ? (T)1 : (T)0));
}

FA_INLINE T FA(clip)(T x, T lo, T hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}
FA_INLINE T FA(clip_grad)(T x, T lo, T hi)
{
    return FA(nan_or)(x, (x > lo && x < hi) ? (T)1 : (T)0);
}

FA_INLINE T FA(hardtanh_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)i;
    return FA(clip)(x, (T)P->p[0], (T)P->p[1]);
}
FA_INLINE T FA(hardtanh_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)i;
    return FA(scale_t)(g, FA(clip_grad)(x, (T)P->p[0], (T)P->p[1]));
}

FA_INLINE T FA(relu6_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    return FA(clip)(x, (T)0, (T)6);
}
FA_INLINE T FA(relu6_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    return FA(scale_t)(g, FA(clip_grad)(x, (T)0, (T)6));
}

/* Leaky ReLU with slope s (already in T); a zero slope gives 0 on the
 * negative side even at -inf. */
FA_INLINE T FA(leaky)(T x, T s)
{
    if (x > 0) return x;
    return (s == 0 && x == x) ? (T)0 : s * x;
}
FA_INLINE T FA(leaky_bwd)(T g, T x, T s)
{
    return FA(scale_t)(g, FA(nan_or)(x, x > 0 ? (T)1 : s));
}

FA_INLINE T FA(leaky_relu_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)i;
    return FA(leaky)(x, (T)P->p[0]);
}
FA_INLINE T FA(leaky_relu_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)i;
    return FA(leaky_bwd)(g, x, (T)P->p[0]);
}

/* RReLU's slope: eval (lower+upper)/2; training lower + (upper-lower)*u with
 * u = fa_uniform01(key, i), in double, then rounded to T (both backends do
 * exactly this, so the slopes are bit-identical everywhere). */
FA_INLINE T FA(rrelu_slope)(const fa_params *P, int64_t i)
{
    double lower = P->p[0], upper = P->p[1];
    if (P->p[2] == 0) return (T)((lower + upper) / 2);
    double d = (upper - lower) * fa_uniform01(P->key, (uint64_t)i);
    /* the product rounded on its own, as the NumPy backend does: no FMA
     * (setup.py's fp-contract=fast would fuse it on x86-64-v3) */
#if defined(__x86_64__)
    __asm__("" : "+x"(d));
#else
    volatile double barrier = d;
    d = barrier;
#endif
    return (T)(lower + d);
}
FA_INLINE T FA(rrelu_fwd)(T x, const fa_params *P, int64_t i)
{
    return FA(leaky)(x, FA(rrelu_slope)(P, i));
}
FA_INLINE T FA(rrelu_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    return FA(leaky_bwd)(g, x, FA(rrelu_slope)(P, i));
}

/* ---- exponential family ------------------------------------------------ */

FA_INLINE T FA(elu_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)i;
    W ml, m = FA(expm1_lo)((W)x, 0, &ml);
    return x > 0 ? x : (T)FA(mul_lo)(FA_PARAM(0), m, ml);
}
FA_INLINE T FA(elu_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)i;
    W s1, s2, m = FA(exp_below_parts)(x > 0 ? 0 : (W)x, 0, &s1, &s2); /* NaN passes */
    return x > 0 ? FA(scale_w)(g, 1) : FA(scale_parts)(g, FA_PARAM(0) * m, s1, s2);
}

/* SELU's scale*alpha as a double-double, so that the product rounds once. */
#define FA_SELU_SCALE 0x1.0cfabd6a91132p+0 /* 1.0507009873554804934... */
#define FA_SELU_SCALE_LO 0x1.6fc7d272f2695p-55
#define FA_SELU_SA_HI 0x1.c212cc640f031p+0 /* scale*alpha = 1.7580993408473768599... */
#define FA_SELU_SA_LO 0x1.05161b045a1fep-56

/* scale*x rounded once (the rounding of scale alone is up to 0.34 ULP). */
FA_INLINE W FA(selu_s_times)(W x)
{
#if FA_PRECISE
    return fa_fma(FA_SELU_SCALE, x, FA_SELU_SCALE_LO * x);
#else
    return FA_SELU_SCALE * x;
#endif
}
/* scale*alpha*(e + el) rounded once (also for a subnormal e = expm1(x) =
 * x). */
FA_INLINE W FA(selu_sa_times)(W e, W el)
{
#if FA_PRECISE
    return fa_fma(FA_SELU_SA_HI, e, FA_SELU_SA_LO * e + FA_SELU_SA_HI * el);
#else
    (void)el;
    return FA_SELU_SA_HI * e;
#endif
}
FA_INLINE T FA(selu_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    W el, e = FA(expm1_lo)((W)x, 0, &el);
    return x > 0 ? (T)FA(selu_s_times)((W)x) : (T)FA(selu_sa_times)(e, el);
}
FA_INLINE T FA(selu_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    W s1, s2, m = FA(exp_below_parts)(x > 0 ? 0 : (W)x, 0, &s1, &s2); /* NaN passes */
    return x > 0 ? FA(scale_w)(g, FA_SELU_SCALE)
                 : FA(scale_parts)(g, FA_SELU_SA_HI * m + FA_SELU_SA_LO * m, s1, s2);
}

/* x/a as a double-double (the exact residual of the division, over a).
 * float32: x times 1/a (computed once per loop), within 2^-52 relative of
 * x/a, which the exponential of a float32 function turns into an error
 * below 2^-45 (|x/a| <= 104 where its result is not 0 or inf), and a
 * division per 8 lanes less (one thread, 10^5 elements, x86-64-v4, linked
 * against the built object: celu 1.19 -> 1.02 ns/element; celu' was bound
 * elsewhere, see fa_loops.h).  Where 1/a
 * overflows (subnormal a), x = 0 keeps q = 0 (not 0*inf); other x give
 * q = +-inf instead of a huge q, which every caller clamps alike. */
FA_INLINE W FA(div_dd)(W x, W a, W *ql)
{
#if FA_PRECISE
    W q = x / a;
    W pl, ph = fa_two_prod(q, a, &pl);
    *ql = ((x - ph) - pl) / a;
    return q;
#else
    *ql = 0;
    return x == 0 ? x : x * (1 / a);
#endif
}

/* celu = max(0,x) + min(0, alpha*expm1(x/alpha)) reduces to this for either
 * sign of alpha; celu'(0) = 1 as PyTorch's autograd. */
FA_INLINE T FA(celu_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)i;
    W a = FA_PARAM(0), ql, q = FA(div_dd)((W)x, a, &ql);
    /* alpha < 0 makes q = x/a positive and up to 710, where the rounding of
     * q would be amplified q times: expm1 takes q's low part, and gives
     * expm1(q + ql) as a double-double, times a rounded once.  (One
     * exponential: exp(q + ql) - 1 above q = 1 beside expm1 below cost
     * float32 celu twice elu's time.) */
    W ml, m = FA(expm1_wide_lo)(q, ql, &ml);
    W v = FA(mul_lo)(a, m, ml);
    /* |x/a| < 2^-60: celu(x) = x*(1 + x/(2a) + ...) rounds to x, also
     * where x/a would be subnormal and inexact. */
    return (x > 0 || fabs(q) < 0x1p-60) ? x : (T)v;
}
FA_INLINE T FA(celu_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)i;
    W ql, q = FA(div_dd)((W)x, FA_PARAM(0), &ql);
    W s1, s2, m = FA(exp_parts_wide)(q, ql, &s1, &s2);
    return x > 0 ? FA(scale_w)(g, 1) : FA(scale_parts)(g, m, s1, s2);
}

/* softplus(z)/beta with z = beta*x: max(z, 0) + log1p(exp(-|z|)) never
 * overflows and adds numbers of one sign. */
FA_INLINE T FA(softplus_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)i;
    W beta = FA_PARAM(0), zl, z = FA(mul_dd)(beta, (W)x, &zl);
    W l = FA(log1p_unit)(FA(exp_neg_abs)(z, zl));
    W sp = z > 0 ? (z + (zl + l)) : l;
    return z > FA_PARAM(1) ? x : (T)(sp / beta);
}
FA_INLINE T FA(softplus_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)i;
    W zl, z = FA(mul_dd)(FA_PARAM(0), (W)x, &zl);
    W s1, s2, m = FA(sigmoid_parts)(z, zl, &s1, &s2);
    return z > FA_PARAM(1) ? FA(scale_w)(g, 1) : FA(scale_parts_below)(g, m, s1, s2);
}

/* ---- sigmoid family ------------------------------------------------------ */

FA_INLINE T FA(sigmoid_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    return (T)FA(sigmoid_w)((W)x);
}
FA_INLINE T FA(sigmoid_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    W s1, s2, m = FA(sigmoid_grad_parts)((W)x, 0, &s1, &s2);
    return FA(scale_parts_below)(g, m, s1, s2);
}
FA_INLINE T FA(sigmoid_bwd_y)(T g, T y, const fa_params *P)
{
    (void)P;
    return FA(scale_w)(g, (W)y * (1 - (W)y));
}

/* log(sigmoid(x)) = -softplus(-x) = min(x, 0) - log1p(exp(-|x|)): the two
 * terms have one sign. */
FA_INLINE T FA(log_sigmoid_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    W v = (W)x, l = FA(log1p_unit)(FA(exp_w)(-fabs(v)));
    return (T)(v < 0 ? v - l : -l);
}
FA_INLINE T FA(log_sigmoid_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    W s1, s2, m = FA(sigmoid_parts)(-(W)x, 0, &s1, &s2);
    return FA(scale_parts_below)(g, m, s1, s2);
}

/* v/6.  float32: v*(1/6) in double, whose error (below 2^-52 relative)
 * the rounding to float never sees: the same bits as the division for
 * every float32 input of hardsigmoid and hardswish (checked over all 2^32),
 * and a division per 8 lanes less (one thread, 10^5 elements, x86-64-v4,
 * linked against the built object: hardsigmoid 0.317 -> 0.210 ns/element,
 * hardswish 0.321 -> 0.229).  float64: the division, rounded once. */
FA_INLINE W FA(div6)(W v)
{
#if FA_PRECISE
    return v / 6;
#else
    return v * (1.0 / 6);
#endif
}

FA_INLINE T FA(hardsigmoid_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    /* (x + 3)/6, not x/6 + 1/2, which cancels near -3 where the result is
     * tiny; x + 3 is exact there (Sterbenz). */
    W v = FA(div6)((W)x + 3);
    return x <= -3 ? (T)0 : (x >= 3 ? (T)1 : (T)v);
}
FA_INLINE T FA(hardsigmoid_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    W d = (x > -3 && x < 3) ? (W)1 / 6 : (W)0;
    return FA(scale_w)(g, x != x ? (W)x : d);
}

/* swish(x) = x*sigmoid(beta*x); silu is beta = 1 through the same code, so
 * swish(x) and silu(x) are bit-identical. */
FA_INLINE T FA(swish_core_fwd)(T x, W beta)
{
    W zl, z = FA(mul_dd)(beta, (W)x, &zl);
    W s1, s2, ml, m = FA(sigmoid_parts_lo)(z, zl, &s1, &s2, &ml);
    return (T)FA(mul_parts_lo)((W)x, m, ml, s1, s2);
}
/* swish'(x; beta) = silu'(z) with z = beta*x = zh + zl.  With e = exp(-|z|),
 * silu'(z) = N/(1+e)^2, N = 1 + e + z*e for z >= 0 (all terms positive) and
 * N = e*((1 + z) + e) for z < 0, where the only cancellation is that of
 * the root (1 + z + e = 0), with 1 + z exact; near the root the series
 * takes z - r from the double-double. */
FA_INLINE T FA(swish_core_bwd)(T g, T x, W beta)
{
    W zl, z = FA(mul_dd)(beta, (W)x, &zl);
#if FA_PRECISE
    /* float64: e with its low part, N and (1 + e)^2 as double-doubles and
     * one division.  With e rounded, N rounded and two rounded divisions,
     * silu'(z) measured 4.65 ULP just outside the series' radius (swish,
     * beta = 1.702, x = -0.676: 1 + z + e is half of e there, so e's
     * rounding is amplified) on the 1.2e7-point sweep. */
    W e, eml, s1, s2, em = FA(exp_neg_abs_parts_lo)(z, zl, &e, &s1, &s2, &eml);
    W el = (eml * s1) * s2;
    W ol, o = fa_two_sum(1, z, &ol);
    ol += zl;
    W tl, t = fa_two_sum(o, e, &tl);                 /* z < 0: em*(1 + z + e) */
    tl += ol + el;
    W nnl, nn = fa_two_prod(em, t, &nnl);
    nnl += em * tl + eml * t;
    W pl, p = fa_two_sum(1, e, &pl);                 /* 1 + e */
    pl += el;
    W ql, q = fa_two_prod(z, e, &ql);                /* z >= 0: (1 + e) + z*e */
    ql += zl * e + z * el;
    W npl, np = fa_two_sum(p, q, &npl);
    npl += pl + ql;
    W Dl, D = fa_two_prod(p, p, &Dl);                /* (1 + e)^2 */
    Dl += 2 * p * pl;
    W dl, d = FA(div_dd_lo)(z >= 0 ? np : nn, z >= 0 ? npl : nnl, D, Dl, &dl);
    d += dl;
#else
    W e, s1, s2, em = FA(exp_neg_abs_parts)(z, zl, &e, &s1, &s2);
    W ol, o = FA(two_sum)(1, z, &ol);
    W N = z >= 0 ? (1 + e) + z * e : em * (o + (e + (ol + zl)));
    W d = FA(div_sum_sq)(N, 1, e);
#endif
    d = FA(near_root_or)(fa_root_silu, z, zl, d);
    d = isinf(z) ? (z > 0 ? (W)1 : (W)0) : d;
    int scaled = z < 0 && !(fabs(z - (W)fa_root_silu[0]) < FA_ROOT_RADIUS);
    return FA(scale_parts_below)(g, d, scaled ? s1 : 1, scaled ? s2 : 1);
}
FA_INLINE T FA(swish_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)i;
    return FA(swish_core_fwd)(x, FA_PARAM(0));
}
FA_INLINE T FA(swish_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)i;
    return FA(swish_core_bwd)(g, x, FA_PARAM(0));
}
FA_INLINE T FA(silu_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    return FA(swish_core_fwd)(x, (W)1);
}
FA_INLINE T FA(silu_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    return FA(swish_core_bwd)(g, x, (W)1);
}

/* hardswish'(-3) = 0 and hardswish'(3) = 1, as PyTorch's autograd. */
FA_INLINE T FA(hardswish_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    W v = (W)x;
    W h = FA(div6)(v * (v + 3));
    return x <= -3 ? (T)0 : (x >= 3 ? x : (T)h);
}
FA_INLINE T FA(hardswish_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    /* (2x + 3)/6: exact numerator, so no cancellation at the root -1.5. */
    W d = x <= -3 ? (W)0 : (x < 3 ? FA(div6)(2 * (W)x + 3) : (W)1);
    return FA(scale_w)(g, x != x ? (W)x : d);
}

/* ---- tanh family --------------------------------------------------------- */

/* tanh(|x|) = -m/(2+m), m = expm1(-2|x|), where |x| < 1/2 (m's error is
 * amplified at most 1.6 times there); 1 - 2e/(1+e), e = exp(-2|x|), above
 * (e's error is damped by 2e/(1+e) <= 0.54 there).  Beyond 20 (float64:
 * 1 - tanh < 2^-115) it is 1; the sign is restored by copysign. */
FA_INLINE W FA(tanh_w)(W x)
{
    W a = fabs(x);
    a = a > 20 ? (W)20 : a;
    W m = FA(expm1_w)(-2 * a);
    W small = FA(div_sum)(-m, 2, m);
#if FA_PRECISE
    W e = FA(exp_w)(-2 * a);
    W large = 1 - FA(div_sum)(2 * e, 1, e);
    return copysign(a < (W)0.5 ? small : large, x);
#else
    /* float32: -m/(2+m) at most doubles expm1's 2^-34 for every a (2 + m
     * >= 1), far below float32's half ULP: one formula */
    return copysign(small, x);
#endif
}

FA_INLINE T FA(tanh_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    return (T)FA(tanh_w)((W)x);
}
/* tanh'(x) = 1/cosh^2(x) = 4e/(1+e)^2, e = exp(-2|x|): no 1 - tanh^2 cancellation. */
FA_INLINE T FA(tanh_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    /* = 4 sigmoid'(2x) */
    W s1, s2, m = FA(sigmoid_grad_parts)(2 * (W)x, 0, &s1, &s2);
    return FA(scale_parts_below)(g, 4 * m, s1, s2);
}
FA_INLINE T FA(tanh_bwd_y)(T g, T y, const fa_params *P)
{
    (void)P;
    return FA(scale_w)(g, (1 - (W)y) * (1 + (W)y));
}

FA_INLINE T FA(softsign_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    W v = (W)x;
    W s = FA(div_sum)(v, 1, fabs(v));
    return isinf(x) ? copysign((T)1, x) : (T)s;
}
FA_INLINE T FA(softsign_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    /* g*r*r with r = 1/(1+|x|), in that order: q^2 may overflow, r^2 may
     * underflow while g*r^2 is representable */
    W r = FA(div_sum)(1, 1, fabs((W)x));
    W v = ((W)g * r) * r;
    return isinf(x) ? FA(scale_w)(g, 0) : (T)v;
}

/* mish(x) = x*tanh(softplus(x)) = x*n/(n+2) with e = exp(x), n = e*(e+2):
 * no cancellation for x -> -inf.  Above x = 40 tanh(softplus(x)) is 1 to
 * far beyond double's precision (1 - t ~ 2e^-80). */
#define FA_MISH_LINEAR_ABOVE 40
FA_INLINE T FA(mish_fwd)(T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    W v = x > FA_MISH_LINEAR_ABOVE ? (W)FA_MISH_LINEAR_ABOVE : (W)x;
    W s1, s2, eml, em = FA(exp_parts_lo)(v, 0, &s1, &s2, &eml), e = (em * s1) * s2;
    /* n = e*(e + 2) = 2e + e^2 as double-doubles: the numerator in parts
     * (em times the scales), the denominator n + 2 in full. */
    W tl, t = FA(two_sum)(2, e, &tl);
    W nml, nm = FA(two_prod)(em, t, &nml);
    nml += em * tl + eml * t;
    W ql, q = FA(two_prod)(e, e, &ql);
    W nl, n = FA(two_sum)(2 * e, q, &nl);
    nl += ql;
    W rl, r = FA(div_sum2_lo)(nm, nml, n, 2 + nl, &rl);
    return x > FA_MISH_LINEAR_ABOVE ? x : (T)FA(mul_parts_lo)((W)x, r, rl, s1, s2);
}
/* mish' = t + x*sigmoid(x)*(1 - t^2) with t = n/q, q = n + 2, reduces to
 * e*B/q^2 with B = 4(1 + x) + e*((6 + 4x) + e*(4 + e)): the terms of B
 * cancel only at the root (where the series takes over), 1 + x and 6 + 4x
 * are exact near it, and q = e^2 + 2e + 2 has no cancellation. */
FA_INLINE T FA(mish_bwd)(T g, T x, const fa_params *P, int64_t i)
{
    (void)P; (void)i;
    W v = x > FA_MISH_LINEAR_ABOVE ? (W)FA_MISH_LINEAR_ABOVE : (W)x;
#if FA_PRECISE
    /* float64: every step a double-double, e = exp(x) with its low part:
     * rounded steps amplified by B's and q's dependence on e measured 4.9
     * ULP at x = -1.0 (beside the root series) */
    W s1, s2, eml, em = FA(exp_below_parts_lo)(v, 0, &s1, &s2, &eml);
    W e = (em * s1) * s2, el = (eml * s1) * s2;
    W cl, c = fa_two_sum(4, e, &cl);                 /* 4 + e */
    cl += el;
    W pl, p = fa_two_prod(e, c, &pl);                /* e(4 + e) */
    pl += e * cl + el * c;
    W al, a = fa_two_sum(6, 4 * v, &al);             /* 6 + 4x */
    W bl, b = fa_two_sum(a, p, &bl);
    bl += al + pl;
    W rl, r = fa_two_prod(e, b, &rl);                /* e((6 + 4x) + e(4 + e)) */
    rl += e * bl + el * b;
    W ol, o = fa_two_sum(1, v, &ol);                 /* 1 + x */
    W Bl, B = fa_two_sum(4 * o, r, &Bl);
    Bl += 4 * ol + rl;
    W ql, q = fa_two_prod(e, e, &ql);                /* q = e^2 + 2e + 2 */
    ql += 2 * e * el;
    W tl, t = fa_two_sum(2, 2 * e, &tl);
    tl += 2 * el;
    W sl, sq = fa_two_sum(t, q, &sl);
    sl += tl + ql;
    W nl, n = fa_two_prod(em, B, &nl);               /* the numerator, unscaled */
    nl += em * Bl + eml * B;
    W d1l, d1 = FA(div_dd_lo)(n, nl, sq, sl, &d1l);
    W d2l, d2 = FA(div_dd_lo)(d1, d1l, sq, sl, &d2l);
    W d = d2 + d2l;
#else
    W s1, s2, em = FA(exp_below_parts)(v, 0, &s1, &s2), e = (em * s1) * s2;
    W B = 4 * (1 + v) + e * ((6 + 4 * v) + e * (4 + e));
    W q = e * e, sq = (2 * e + 2) + q;
    W d = FA(div_sum_sq)(em * B, sq, 0);
#endif
    d = em == 0 ? (W)0 : d; /* exp(x) = 0 (below its clamp): no inf*0 */
    int near = fabs(v - (W)fa_root_mish[0]) < FA_ROOT_RADIUS;
    d = FA(near_root_or)(fa_root_mish, v, 0, d);
    return x > FA_MISH_LINEAR_ABOVE ? FA(scale_w)(g, 1)
                                     : FA(scale_parts)(g, d, near ? 1 : s1, near ? 1 : s2);
}

/* ---- gelu: erfc and tanh forms ------------------------------------------- */

/* Phi(x) = erfc(-x/sqrt 2)/2 with z = -x/sqrt 2 as a double-double: erfc
 * keeps the left tail relative-accurate where 1 + erf would cancel, and the
 * low part of z keeps exp(-z^2) exact to the last bit down to the
 * underflow of the result.  For x > 0, erfc(z) = 2 - erfc(|z|). */
FA_INLINE W FA(gelu_phi_parts)(W v, W *s1, W *s2, W *em, W *ef, int fwd)
{
    W zl, zh = FA(mul_dd)(-v, FA_INV_SQRT2_DD_HI, &zl);
#if FA_PRECISE
    zl += -v * FA_INV_SQRT2_DD_LO;
#endif
    W m = FA(erfc_pos_parts)(fabs(zh), zh >= 0 ? zl : -zl, s1, s2, em, fwd);
    /* beyond the fitted range: 0 for gelu (below every subnormal), the
     * asymptotic series for gelu' (g*Phi may be in range) */
    W far = fwd ? 0 : FA(erfcx_asym)(fabs(zh)) * *em;
    m = fabs(zh) > (FA_PRECISE ? FA_ERFC_ZMAX_FULL : FA_ERFC_ZMAX_SHORT) ? far : m;
    *ef = (*em * *s1) * *s2;
    W right = (2 - (m * *s1) * *s2) / 2;
    *s1 = zh >= 0 ? *s1 : 1;
    *s2 = zh >= 0 ? *s2 : 1;
    return zh >= 0 ? m / 2 : right;
}
/* x*Phi(x) with Phi's scale applied last, so that a subnormal result is
 * rounded once; gelu(-inf) = -0. */
#if FA_PRECISE
/* float64 erf-GELU from erfc(|z|) as a double-double (FA(erfc_pos_dd);
 * with the double kernel, H's Horner error alone was up to 3.8*2^-53 and
 * gelu measured 5.1 ULP in the left tail, so this used glibc's x87 erfcl,
 * scalar: ~80 ns per element).  *ph + *pl = erfc(|z|) mantissa, scaled by
 * s1*s2; *em + *eml = exp(-z^2) = exp(-x^2/2), on the same scales. */
FA_INLINE W FA(gelu_erfc_dd)(W v, W *s1, W *s2, W *em, W *eml, W *pl, int *left, int grad)
{
    W zl, zh = FA(mul_dd)(-v, FA_INV_SQRT2_DD_HI, &zl);
    zl += -v * FA_INV_SQRT2_DD_LO;
    W a = fabs(zh), al = zh >= 0 ? zl : -zl;
    W ph = FA(erfc_pos_dd)(a, al, s1, s2, em, eml, pl);
    *pl = a > FA_ERFC_ZMAX_FULL ? 0 : *pl; /* beyond: no low part (see below) */
    *left = zh >= 0;
    /* beyond: 0 for gelu (below every subnormal), the asymptotic series
     * for gelu' (`grad`, a constant), as FA(gelu_phi_parts); its error is
     * a fraction w = 1/x^2 of gelu', so it needs no low part */
    return a > FA_ERFC_ZMAX_FULL ? (grad ? FA(erfcx_asym)(a) * *em : 0) : ph;
}
/* x <= 0: x*P/2, the scales last (a subnormal result rounds once more);
 * x > 0: x*(2 - P*S)/2, 2 - P*S as a double-double; each an FMA. */
FA_INLINE T FA(gelu_erf_fwd)(T x)
{
    W v = x, s1, s2, em, eml, pl;
    int left;
    W ph = FA(gelu_erfc_dd)(v, &s1, &s2, &em, &eml, &pl, &left, 0);
    W yl = (fa_fma(v, 0.5 * ph, v * (0.5 * pl)) * s1) * s2;
    W rl, rh = fa_fast_two_sum(2, -((ph * s1) * s2), &rl);
    rl -= (pl * s1) * s2;
    W yr = fa_fma(v, 0.5 * rh, v * (0.5 * rl));
    W y = left ? yl : yr;
    y = v == 0 ? v : y; /* +-0 (a low part of the wrong sign would give +0 for -0) */
    return isinf(v) ? (v > 0 ? x : (T)-0.0) : (T)y; /* no inf*0 from the low parts */
}
/* gelu'(x) = Phi(x) + x*phi(x), phi(x) = exp(-x^2/2)/sqrt(2 pi) on the
 * scales of Phi: x <= 0, P/2 + x*C*E as a double-double (the terms cancel
 * toward the root, where the series takes over); x > 0, (1 - P*S/2) +
 * x*C*E*S, terms of one sign. */
FA_INLINE W FA(gelu_erf_grad_parts)(T x, W *s1, W *s2)
{
    W v = x, em, eml, pl;
    int left;
    W ph = FA(gelu_erfc_dd)(v, s1, s2, &em, &eml, &pl, &left, 1);
    W cl, ch = fa_two_prod(v, FA_INV_SQRT_2PI_DD_HI, &cl);
    cl += v * FA_INV_SQRT_2PI_DD_LO;
    W wl, wh = fa_two_prod(ch, em, &wl);
    wl += ch * eml + cl * em;
    W tl, th = fa_two_sum(0.5 * ph, wh, &tl);
    W dleft = th + (tl + (0.5 * pl + wl));
    dleft = em == 0 ? 0.5 * ph : dleft; /* exp(-x^2/2) = 0: no inf*0 */
    W rl, rh = fa_fast_two_sum(1, -0.5 * ((ph * *s1) * *s2), &rl);
    rl -= 0.5 * ((pl * *s1) * *s2);
    W dright = rh + (rl + FA(mul_limit)(v, ((em * FA_INV_SQRT_2PI_DD_HI) * *s1) * *s2));
    W d = left ? dleft : dright;
    d = v == -INFINITY ? (W)0 : d;
    int near = fabs(v - (W)fa_root_gelu_approximate_none[0]) < FA_ROOT_RADIUS;
    *s1 = (left && !near) ? *s1 : 1;
    *s2 = (left && !near) ? *s2 : 1;
    return FA(near_root_or)(fa_root_gelu_approximate_none, v, 0, d);
}
#else
FA_INLINE T FA(gelu_erf_fwd)(T x)
{
    W s1, s2, em, ef, m = FA(gelu_phi_parts)((W)x, &s1, &s2, &em, &ef, 1);
    W y = (((W)x * m) * s1) * s2;
    return (W)x == -INFINITY ? (T)-0.0 : (T)y; /* compared in W: mixed-width masks stop GCC vectorising */
}
/* gelu'(x) = Phi(x) + x*phi(x), phi(x) = exp(-x^2/2)/sqrt(2 pi) with x^2
 * as a double-double. */
FA_INLINE W FA(gelu_erf_grad_parts)(T x, W *s1, W *s2)
{
    W v = (W)x, em, ef, m = FA(gelu_phi_parts)(v, s1, s2, &em, &ef, 0);
    /* exp(-z^2) = exp(-x^2/2) = em*s1*s2 = ef: phi shares Phi's exponential */
    W left = m + (ef == 0 ? 0 : v * (em * FA_INV_SQRT_2PI_DD_HI));
    W right = m + FA(mul_limit)(v, ef * FA_INV_SQRT_2PI_DD_HI);
    W d = v <= 0 ? left : right;
    d = v == -INFINITY ? (W)0 : d;
    int near = fabs(v - (W)fa_root_gelu_approximate_none[0]) < FA_ROOT_RADIUS;
    *s1 = (v <= 0 && !near) ? *s1 : 1;
    *s2 = (v <= 0 && !near) ? *s2 : 1;
    return FA(near_root_or)(fa_root_gelu_approximate_none, v, 0, d);
}
#endif

/* x*(1 + tanh(u))/2 = x*sigmoid(2u), 2u = A*x + B*x^3 (A = 2 sqrt(2/pi), B =
 * 0.044715 A): no cancellation of 1 + tanh(u) for u -> -inf, and for
 * float64 2u is a double-double (its rounding would be amplified by |2u|,
 * up to 750, in the exponential).  x is clamped to +-1e5, where the result
 * is x or 0 already, so x^3 cannot overflow. */
FA_INLINE W FA(gelu_tanh_u2)(W v, W *u2l)
{
    /* one select with a value of unknown sign, not two with constants:
     * GCC's partial redundancy elimination evaluated everything computed
     * from a constant clamp, and the mask select that made of the caller's
     * u2 < 0 stopped the vectoriser (float64 gelu_tanh', with
     * -fno-thread-jumps, setup.py). NaN passes. */
    v = fabs(v) > 1e5 ? copysign(1e5, v) : v;
#if FA_PRECISE
    W sl, sh = fa_two_prod(v, v, &sl);             /* v^2 */
    W cl, ch = fa_two_prod(sh, v, &cl);            /* v^3 */
    cl += sl * v;
    W al, ah = fa_two_prod(FA_GELU_TANH_A_HI, v, &al);
    al += FA_GELU_TANH_A_LO * v;
    W bl, bh = fa_two_prod(FA_GELU_TANH_B_HI, ch, &bl);
    bl += FA_GELU_TANH_B_HI * cl + FA_GELU_TANH_B_LO * ch;
    W el, h = fa_two_sum(ah, bh, &el);
    *u2l = el + al + bl;
    return h;
#else
    *u2l = 0;
    return FA_GELU_TANH_A_HI * v + FA_GELU_TANH_B_HI * v * v * v;
#endif
}
FA_INLINE T FA(gelu_tanh_form_fwd)(T x)
{
    W u2l, u2 = FA(gelu_tanh_u2)((W)x, &u2l);
    W s1, s2, ml, m = FA(sigmoid_parts_lo)(u2, u2l, &s1, &s2, &ml);
    return (T)FA(mul_parts_lo)((W)x, m, ml, s1, s2);
}
#if FA_PRECISE
/* The left branch (2u < 0) of gelu-tanh's f' for float64, as mantissas
 * with the scales *s1, *s2 of e = exp(2u): sigmoid(2u) + x*(2u)'*
 * sigmoid'(2u) cancels towards the root (to a fifth of either term at the
 * root series' radius: 8.4 ULP measured with each term rounded), so every
 * factor is a double-double (e with its low part in 1 + e, the quotients,
 * (2u)' = A + 3Bx^2) and the sum rounds once.  Beyond |x| = 1e5 the
 * second term is 0 (sigmoid'(2u) < e^-(7e13)). */
FA_INLINE W FA(gelu_tanh_left_dd)(W v, W u2, W u2l, W *s1, W *s2)
{
    W e, eml, em = FA(exp_neg_abs_parts_lo)(u2, u2l, &e, s1, s2, &eml);
    W dl, d = fa_two_sum(1, e, &dl);
    dl += (eml * *s1) * *s2;
    W sl, sm = FA(div_dd_lo)(em, eml, d, dl, &sl);  /* sigmoid(2u) */
    W gl, gm = FA(div_dd_lo)(sm, sl, d, dl, &gl);   /* sigmoid'(2u) */
    W vc = fabs(v) > 1e5 ? 0 : v;
    W wl, w = fa_two_prod(vc, vc, &wl);
    W bl, b = fa_two_prod(FA_GELU_TANH_B_HI, w, &bl);
    bl += FA_GELU_TANH_B_HI * wl + FA_GELU_TANH_B_LO * w;
    W tl, t = fa_two_prod(3, b, &tl);
    W ul, u = fa_two_sum(FA_GELU_TANH_A_HI, t, &ul);
    ul += FA_GELU_TANH_A_LO + (tl + 3 * bl);                  /* (2u)' */
    W pl, p = fa_two_prod(vc, u, &pl);
    pl += vc * ul;
    W ql, q = fa_two_prod(p, gm, &ql);
    ql += p * gl + pl * gm;
    W rl, r = fa_two_sum(sm, q, &rl);
    return r + (rl + (sl + ql));
}
#endif

/* sigmoid(2u) + x*(2u)'*sigmoid'(2u): for 2u < 0 both terms carry the
 * exponential's scale, applied last. */
FA_INLINE W FA(gelu_tanh_grad_parts)(T x, W *s1, W *s2)
{
    W v = (W)x, u2l, u2 = FA(gelu_tanh_u2)(v, &u2l);
    W du2 = FA_GELU_TANH_A_HI + 3 * FA_GELU_TANH_B_HI * v * v;
    W t1, t2, sm = FA(sigmoid_parts)(u2, u2l, &t1, &t2);
    W gm = FA(sigmoid_grad_parts)(u2, u2l, s1, s2);
    W gf = (gm * *s1) * *s2;
#if FA_PRECISE
    W left = FA(gelu_tanh_left_dd)(v, u2, u2l, s1, s2); /* the same scales again */
#else
    /* beyond |x| = 1e5, sigmoid'(2u) < e^-(7e13): 0 for any g */
    W left = sm + (fabs(v) > 1e5 ? 0 : v * du2 * gm);
#endif
    W right = sm + FA(mul_limit)(v * du2, gf);
    W d = u2 < 0 ? left : right;
    int near = fabs(v - (W)fa_root_gelu_approximate_tanh[0]) < FA_ROOT_RADIUS;
    *s1 = (u2 < 0 && !near) ? *s1 : 1;
    *s2 = (u2 < 0 && !near) ? *s2 : 1;
    return FA(near_root_or)(fa_root_gelu_approximate_tanh, v, 0, d);
}

/* The two forms are two ops (the registry's gelu and gelu_tanh: a form
 * chosen inside the loop body would stop GCC vectorising the loop, or make
 * it compute both forms). */
#define FA_GELU_OP(op, form_fwd, form_grad_parts)                              \
    FA_INLINE T FA(op##_fwd)(T x, const fa_params *P, int64_t i)               \
    {                                                                          \
        (void)P; (void)i;                                                      \
        return FA(form_fwd)(x);                                                \
    }                                                                          \
    FA_INLINE T FA(op##_bwd)(T g, T x, const fa_params *P, int64_t i)          \
    {                                                                          \
        (void)P; (void)i;                                                      \
        W s1, s2, d = FA(form_grad_parts)(x, &s1, &s2);                        \
        return FA(scale_parts_below)(g, d, s1, s2);                            \
    }
FA_GELU_OP(gelu, gelu_erf_fwd, gelu_erf_grad_parts)
FA_GELU_OP(gelu_tanh, gelu_tanh_form_fwd, gelu_tanh_grad_parts)
#undef FA_GELU_OP

#undef FA_PARAM
#undef FA_ROOT_TERMS_USED
