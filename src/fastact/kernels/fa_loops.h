/* fa_loops.h -- the array kernels, a template like fa_math.h (T, W, FA).
 *
 * Element-wise kernels are generated for every op of the registry from the
 * X-macro lists in the generated fa_ops.h; each case of the dispatch switch
 * is a plain loop over the op's inlined scalar function, which the compiler
 * can unroll and, where the math allows, vectorise for the ISA level of the
 * translation unit.  The other kernels work on an (outer, L, inner) view of a
 * C-contiguous array, so any reduction axis is handled without a transpose.
 */

/* Calls BODY(i, c) for flat indices i in [start, stop) with c = i % ncols,
 * as row segments so that the inner loop has no modulo. */
#define FA_FOR_ROW_SEGMENTS(start, stop, ncols, BODY)                         \
    for (int64_t i_ = (start); i_ < (stop);) {                                \
        int64_t c0_ = i_ % (ncols);                                           \
        int64_t end_ = i_ + ((ncols) - c0_);                                  \
        if (end_ > (stop)) end_ = (stop);                                     \
        for (int64_t i = i_, c = c0_; i < end_; i++, c++) { BODY; }           \
        i_ = end_;                                                            \
    }

/* The loops of the smooth ops (FA_LOOP_KIND_<op> in fa_ops.h, from the
 * registry's `exact`) are functions of their own rather than cases inlined
 * into the dispatch switch below, where GCC scheduled their long bodies
 * worse.  A/B against the built x86-64-v4 object, one thread, float32,
 * 10^5 elements, minimum of 4 alternated runs, same bits on every level:
 * swish 2.23 -> 1.91 ns/element, log_sigmoid 2.71 -> 2.42, celu' 1.71 ->
 * 1.51, mish' 2.08 -> 1.85, gelu' 2.94 -> 2.71, softplus 3.14 -> 2.86;
 * hardswish' 0.66 -> 0.72 the one loss; float64 within 2%.  The short
 * piecewise-linear loops stay inlined (relu' as its own function was 18-22%
 * slower). */
#define FA_OWN_FUNCTION __attribute__((noinline))
#define FA_LOOP_ATTR(name) FA_LOOP_KIND_##name

/* A smooth op with parameters runs one of two copies of its loop: one
 * where the parameters are the registry's defaults, as constants
 * (FA_DEFAULTS_<op> in fa_ops.h: beta*x, x/alpha, the threshold fold
 * away), taken when the call's parameters have the defaults' bits, and the
 * general one.  FA_SPECIALISE_<op> is 0 for the other ops, whose single
 * loop takes the parameters as they come.  Same bits either way; A/B of the
 * built x86-64-v4 objects, one thread, 10^5 elements, default parameters:
 * float32 celu 1.04 -> 0.90 ns/element, softplus 2.46 -> 2.13, softplus'
 * 1.49 -> 1.22, swish 1.18 -> 0.99 (silu's time); float64 celu 2.02 ->
 * 1.71, celu' 2.59 -> 2.22, softplus 3.77 -> 3.46. */
#define FA_DEFAULTS_TABLE(name, code)                                         \
    static const fa_params FA(name##_defaults) = {FA_DEFAULTS_##name, 0};
FA_ELEMENTWISE_OPS(FA_DEFAULTS_TABLE)
#undef FA_DEFAULTS_TABLE
FA_INLINE int FA(has_defaults)(int specialise, const fa_params *P, const fa_params *D)
{
    return specialise && memcmp(P->p, D->p, sizeof D->p) == 0;
}

#define FA_FWD_LOOP(name, code)                                               \
    FA_INLINE void FA(name##_fwd_run)(const T *x, T *y, int64_t start,        \
                                      int64_t stop, const T *bias,            \
                                      int64_t ncols, const fa_params *P)      \
    {                                                                         \
        if (!bias) {                                                          \
            for (int64_t i = start; i < stop; i++)                            \
                y[i] = FA(name##_fwd)(x[i], P, i);                            \
            return;                                                           \
        }                                                                     \
        FA_FOR_ROW_SEGMENTS(start, stop, ncols,                               \
                            y[i] = FA(name##_fwd)(x[i] + bias[c], P, i))      \
    }                                                                         \
    FA_LOOP_ATTR(name)                                                        \
    static void FA(name##_fwd_loop)(const T *x, T *y, int64_t start,          \
                                    int64_t stop, const T *bias,              \
                                    int64_t ncols, const fa_params *Pin)      \
    {                                                                         \
        const fa_params Pl = *Pin; /* no aliasing with y */                   \
        const fa_params *D = &FA(name##_defaults);                            \
        if (FA(has_defaults)(FA_SPECIALISE_##name, &Pl, D))                   \
            FA(name##_fwd_run)(x, y, start, stop, bias, ncols, D);            \
        else                                                                  \
            FA(name##_fwd_run)(x, y, start, stop, bias, ncols, &Pl);          \
    }
FA_ELEMENTWISE_OPS(FA_FWD_LOOP)
#undef FA_FWD_LOOP

#define FA_BWD_LOOP(name, code)                                               \
    FA_INLINE void FA(name##_bwd_run)(const T *g, const T *x, T *gi,          \
                                      int64_t start, int64_t stop,            \
                                      const T *bias, int64_t ncols,           \
                                      const fa_params *P)                     \
    {                                                                         \
        if (!bias) {                                                          \
            for (int64_t i = start; i < stop; i++)                            \
                gi[i] = FA(name##_bwd)(g[i], x[i], P, i);                     \
            return;                                                           \
        }                                                                     \
        FA_FOR_ROW_SEGMENTS(start, stop, ncols,                               \
                            gi[i] = FA(name##_bwd)(g[i], x[i] + bias[c], P, i)) \
    }                                                                         \
    FA_LOOP_ATTR(name)                                                        \
    static void FA(name##_bwd_loop)(const T *g, const T *x, T *gi,            \
                                    int64_t start, int64_t stop,              \
                                    const T *bias, int64_t ncols,             \
                                    const fa_params *Pin)                     \
    {                                                                         \
        const fa_params Pl = *Pin;                                            \
        const fa_params *D = &FA(name##_defaults);                            \
        if (FA(has_defaults)(FA_SPECIALISE_##name, &Pl, D))                   \
            FA(name##_bwd_run)(g, x, gi, start, stop, bias, ncols, D);        \
        else                                                                  \
            FA(name##_bwd_run)(g, x, gi, start, stop, bias, ncols, &Pl);      \
    }
FA_ELEMENTWISE_OPS(FA_BWD_LOOP)
#undef FA_BWD_LOOP

#define FA_BWD_Y_LOOP(name, code)                                             \
    static void FA(name##_bwd_y_loop)(const T *g, const T *y, T *gi,          \
                                      int64_t start, int64_t stop,            \
                                      const fa_params *P)                     \
    {                                                                         \
        for (int64_t i = start; i < stop; i++)                                \
            gi[i] = FA(name##_bwd_y)(g[i], y[i], P);                          \
    }
FA_OPS_FROM_Y(FA_BWD_Y_LOOP)
#undef FA_BWD_Y_LOOP

static void FA(forward)(int op, const T *x, T *y, int64_t start, int64_t stop,
                        const T *bias, int64_t ncols, const fa_params *P)
{
    switch (op) {
#define FA_CASE(name, code) \
    case code: FA(name##_fwd_loop)(x, y, start, stop, bias, ncols, P); break;
        FA_ELEMENTWISE_OPS(FA_CASE)
#undef FA_CASE
    }
}

static void FA(backward)(int op, const T *g, const T *x, T *gi, int64_t start,
                         int64_t stop, const T *bias, int64_t ncols,
                         const fa_params *P)
{
    switch (op) {
#define FA_CASE(name, code) \
    case code: FA(name##_bwd_loop)(g, x, gi, start, stop, bias, ncols, P); break;
        FA_ELEMENTWISE_OPS(FA_CASE)
#undef FA_CASE
    }
}

static void FA(backward_y)(int op, const T *g, const T *y, T *gi, int64_t start,
                           int64_t stop, const fa_params *P)
{
    switch (op) {
#define FA_CASE(name, code) \
    case code: FA(name##_bwd_y_loop)(g, y, gi, start, stop, P); break;
        FA_OPS_FROM_Y(FA_CASE)
#undef FA_CASE
    }
}

/* ---- softmax and log_softmax over axis L of (outer, L, inner) -----------
 * Three passes per slice: the max m, then the sum, then the result (the
 * exponentials are recomputed rather than stored, so y may be x).
 * The sum is kept as s = sum over x < m of exp(x - m), plus (count of x == m)
 * - 1, plus (m - m): the sum of the terms other than one maximal element.
 * Then softmax = exp(x - m)/(1 + s) and log_softmax = (x - m) - log1p(s):
 * log_softmax of the maximal element keeps its full accuracy when the other
 * terms are tiny (log_softmax([0, -60]) = [-8.76e-27, -60], not [0, -60]).
 * (m - m) is NaN when m is +-inf or NaN, which makes the slice NaN as IEEE
 * arithmetic on x - max does (CONTRACT.md section 3).
 * Each slice is summed in one fixed order by one thread, so results do not
 * depend on the thread count.  inner > 1 is done in tiles of FA_TILE columns
 * with the summation order along L unchanged. */
#define FA_TILE 64

/* exp(v - m) with v - m as a double-double (exact in double for float). */
FA_INLINE W FA(exp_diff)(T v, T m)
{
#if FA_PRECISE
    W dl, d = fa_two_sum((W)v, -(W)m, &dl);
    return FA(exp_dd)(d, dl);
#else
    return FA(exp_w)((W)v - (W)m);
#endif
}

FA_INLINE T FA(max_nan)(T m, T v)
{
    return (m == m && (v > m || v != v)) ? v : m;
}

/* Along the last axis (inner == 1) the reductions run in FA_LANES
 * interleaved partial sums (element l goes to lane l % FA_LANES), so that
 * they vectorise without reassociation; the lanes are then combined in a
 * fixed order, so results still do not depend on the thread count. */
#define FA_LANES 8
FA_INLINE void FA(sum_add)(W *s, W *c, W e)
{
#if FA_PRECISE
    W err;
    *s = fa_two_sum(*s, e, &err);
    *c += err;
#else
    (void)c;
    *s += e;
#endif
}

/* The finishing steps of a slice, shared by both loops below.  The sum
 * s + c of the terms other than one maximal element: ties - 1 (exact) is
 * added to the high part first, and (m - m) makes it NaN for m = +-inf or
 * NaN. */
FA_INLINE void FA(softmax_total)(W ties, T m, W *s, W *c)
{
    W err, hi = fa_two_sum(ties - 1, *s, &err);
    *s = hi + ((W)m - (W)m);
    *c += err;
}
/* log_softmax: log1p(s + c) = l + c/(1 + s) with l = log1p(s), held as
 * (*s, *c) = (l, c/(1 + s)) for FA(softmax_of); softmax: the denominator
 * 1 + s + c as a double-double (*s, *c).  Once per slice, so not forced
 * inline: inlined into FA(softmax_rows), it stopped GCC vectorising the
 * summation loop there (measured: float32 rows of 1000 twice as slow). */
static void FA(softmax_prepare)(int log_form, W *s, W *c)
{
    W err;
    if (log_form) {
        W l = FA(log1p_w)(*s);
        *s = l;
        *c = *c / FA(exp_w)(l); /* d log(1+s)/ds = 1/(1+s) = exp(-l) */
    } else {
        *s = fa_two_sum(1, *s, &err);
        *c += err;
    }
}
/* One result: (x - m) - l with x - m and the subtraction as double-doubles
 * (x = -inf: the low parts are NaN, the result -inf), or exp(x - m)/(s + c). */
FA_INLINE T FA(softmax_of)(int log_form, T x, T m, W s, W c)
{
    if (log_form) {
#if FA_PRECISE
        W dl, d = fa_two_sum((W)x, -(W)m, &dl);
        W rl, r = fa_two_sum(d, -s, &rl);
        return (T)(fabs(r) <= DBL_MAX ? r + ((rl + dl) - c) : r);
#else
        /* float32: x - m (<= 0) and -s (<= 0) have one sign, so the
         * difference in double is within 2^-52 of the exact one, far below
         * float's half ULP */
        return (T)((((W)x - (W)m) - s) - c);
#endif
    }
    return (T)FA(div_sum2)(FA(exp_diff)(x, m), 0, s, c);
}

/* Where the sum pass of softmax keeps exp(x - m) for the last pass, which
 * then divides instead of recomputing it: in y itself for float64 (T = W;
 * each element is read before it is written, so y may be x), in a scratch
 * row of W for float32 rows of up to FA_SOFTMAX_KEEP elements (`scratch`,
 * NULL if there is none); nowhere (NULL) for log_softmax, whose last pass
 * needs no exponential.  The kept values are those the last pass would
 * compute, so the results are the same bits either way. */
#define FA_SOFTMAX_KEEP (1 << 16)
FA_INLINE W *FA(softmax_keep)(int log_form, T *ys, W *scratch)
{
    if (log_form) return NULL;
    return sizeof(T) == sizeof(W) ? (W *)(void *)ys : scratch;
}

/* The maximum of a row, NaN if the row has one: the lanes of a GCC vector
 * of one register (64 bytes with AVX-512, 32 with AVX, 16 on the baseline
 * level; selects written as masks) keep their maximum and, apart, the last
 * NaN they saw (-inf if none).  Written as plain loops over arrays of lanes, or with
 * FA(max_nan), the selects stayed scalar (measured: 30% of a float32
 * softmax over rows of 1000); vectors of two registers were slower. */
#if defined(__AVX512F__)
typedef T FA(vec) __attribute__((vector_size(64)));
#elif defined(__AVX__)
typedef T FA(vec) __attribute__((vector_size(32)));
#else
typedef T FA(vec) __attribute__((vector_size(16)));
#endif
#define FA_VEC_LANES ((int64_t)(sizeof(FA(vec)) / sizeof(T)))
FA_INLINE FA(vec) FA(vec_select)(__typeof__((FA(vec)){0} > 0) mask, FA(vec) a, FA(vec) b)
{
    return (FA(vec))((mask & (__typeof__(mask))a) | (~mask & (__typeof__(mask))b));
}
FA_INLINE T FA(row_max)(const T *xs, int64_t L)
{
    FA(vec) mk = (FA(vec)){0} - INFINITY, nk = mk, v;
    T m = -INFINITY;
    /* two lanes (float64 on SSE2): measured slower than the scalar loop */
    int64_t body = FA_VEC_LANES > 2 ? L - L % FA_VEC_LANES : 0;
    for (int64_t l = 0; l < body; l += FA_VEC_LANES) {
        memcpy(&v, xs + l, sizeof v);
        mk = FA(vec_select)(v > mk, v, mk);
        nk = FA(vec_select)(v != v, v, nk);
    }
    for (int k = 0; k < FA_VEC_LANES; k++) m = FA(max_nan)(FA(max_nan)(m, mk[k]), nk[k]);
    for (int64_t l = body; l < L; l++) m = FA(max_nan)(m, xs[l]);
    return m;
}
#undef FA_VEC_LANES

/* The sum pass of a row: the sum of exp(x - m) over x < m in FA_SUM_LANES
 * partial sums (*s, *c) and the count of x == m (*ties), before
 * FA(softmax_total); with `keep` (a constant), exp(x - m) of every element
 * goes to es as well.  Each form is its own function (FA(row_sum),
 * FA(row_sum_keep)): with the choice as a branch beside the loops, GCC
 * stopped vectorising both (measured: float32 rows of 1000 5.3 -> 6.3 ns
 * per element instead of faster).  FA_SUM_LANES is 16 for float32 (one
 * 64-byte vector of floats, two of doubles) and 8 for float64: with 8, GCC
 * vectorised the float32 pass in 32-byte halves (one thread, x86-64-v4,
 * rows of 1000: softmax 1.33 -> 1.16 ns/element, log_softmax 1.41 -> 1.27
 * with 16). */
#define FA_SUM_LANES ((int)(64 / sizeof(T)))
FA_INLINE void FA(row_sum_body)(int keep, const T *xs, int64_t L, T m, W *es, W *s, W *c,
                                W *ties)
{
    W sk[FA_SUM_LANES], ck[FA_SUM_LANES], tk[FA_SUM_LANES];
    int64_t body = L - L % FA_SUM_LANES;
    for (int k = 0; k < FA_SUM_LANES; k++) { sk[k] = 0; ck[k] = 0; tk[k] = 0; }
    for (int64_t l = 0; l < body; l += FA_SUM_LANES)
        for (int k = 0; k < FA_SUM_LANES; k++) {
            T v = xs[l + k];
            W e = FA(exp_diff)(v, m);
            if (keep) es[l + k] = e;
            FA(sum_add)(&sk[k], &ck[k], v < m ? e : 0);
            tk[k] += v < m ? 0 : 1;
        }
    for (int64_t l = body; l < L; l++) {
        T v = xs[l];
        W e = FA(exp_diff)(v, m);
        if (keep) es[l] = e;
        FA(sum_add)(&sk[0], &ck[0], v < m ? e : 0);
        tk[0] += v < m ? 0 : 1;
    }
    *s = 0;
    *c = 0;
    *ties = 0;
    for (int k = 0; k < FA_SUM_LANES; k++) {
        FA(sum_add)(s, c, sk[k]);
        *c += ck[k];
        *ties += tk[k];
    }
}
__attribute__((noinline)) static void FA(row_sum)(const T *xs, int64_t L, T m, W *s, W *c,
                                                  W *ties)
{
    FA(row_sum_body)(0, xs, L, m, NULL, s, c, ties);
}
__attribute__((noinline)) static void FA(row_sum_keep)(const T *xs, int64_t L, T m, W *es,
                                                       W *s, W *c, W *ties)
{
    FA(row_sum_body)(1, xs, L, m, es, s, c, ties);
}

/* The last pass of softmax from the kept exponentials: e/(s + c).  float32
 * multiplies by one reciprocal per row: in double, e*(1/(s + c)) is within
 * 2^-52 of the quotient, far below float32's half ULP, and a division per
 * element cost a third of the pass. */
FA_INLINE void FA(softmax_divide)(const W *es, T *ys, int64_t L, W s, W c)
{
#if FA_PRECISE
    for (int64_t l = 0; l < L; l++) ys[l] = (T)FA(div_sum2)(es[l], 0, s, c);
#else
    W r = 1 / (s + c);
    for (int64_t l = 0; l < L; l++) ys[l] = (T)(es[l] * r);
#endif
}

static void FA(softmax_rows)(int log_form, const T *x, T *y, int64_t o0, int64_t o1,
                             int64_t L)
{
    W *scratch = NULL;
    if (!log_form && sizeof(T) != sizeof(W) && L <= FA_SOFTMAX_KEEP)
        scratch = malloc((size_t)L * sizeof(W)); /* NULL: recomputed */
    for (int64_t o = o0; o < o1; o++) {
        const T *xs = x + o * L;
        T *ys = y + o * L;
        W *es = FA(softmax_keep)(log_form, ys, scratch);
        T m = FA(row_max)(xs, L);
        W s, c, ties;
        if (es)
            FA(row_sum_keep)(xs, L, m, es, &s, &c, &ties);
        else
            FA(row_sum)(xs, L, m, &s, &c, &ties);
        FA(softmax_total)(ties, m, &s, &c);
        FA(softmax_prepare)(log_form, &s, &c);
        if (log_form)
            for (int64_t l = 0; l < L; l++) ys[l] = FA(softmax_of)(1, xs[l], m, s, c);
        else if (es)
            FA(softmax_divide)(es, ys, L, s, c);
        else
            for (int64_t l = 0; l < L; l++) ys[l] = FA(softmax_of)(0, xs[l], m, s, c);
    }
    free(scratch);
}

static void FA(softmax)(int log_form, const T *x, T *y, int64_t o0, int64_t o1,
                        int64_t L, int64_t inner)
{
    if (inner == 1) {
        FA(softmax_rows)(log_form, x, y, o0, o1, L);
        return;
    }
    T m[FA_TILE];
    W s[FA_TILE], c[FA_TILE], ties[FA_TILE];
    for (int64_t o = o0; o < o1; o++) {
        for (int64_t j0 = 0; j0 < inner; j0 += FA_TILE) {
            int64_t nj = inner - j0 < FA_TILE ? inner - j0 : FA_TILE;
            const T *xs = x + o * L * inner + j0;
            T *ys = y + o * L * inner + j0;
            for (int64_t j = 0; j < nj; j++) { m[j] = -INFINITY; s[j] = 0; c[j] = 0; ties[j] = 0; }
            for (int64_t l = 0; l < L; l++)
                for (int64_t j = 0; j < nj; j++)
                    m[j] = FA(max_nan)(m[j], xs[l * inner + j]);
            for (int64_t l = 0; l < L; l++)
                for (int64_t j = 0; j < nj; j++) {
                    T v = xs[l * inner + j];
                    W e = v < m[j] ? FA(exp_diff)(v, m[j]) : 0;
#if FA_PRECISE
                    /* compensated (2Sum): the sum is as if in double-double */
                    W err;
                    s[j] = fa_two_sum(s[j], e, &err);
                    c[j] += err;
#else
                    s[j] += e;
#endif
                    ties[j] += v < m[j] ? 0 : 1;
                }
            for (int64_t j = 0; j < nj; j++) {
                FA(softmax_total)(ties[j], m[j], &s[j], &c[j]);
                FA(softmax_prepare)(log_form, &s[j], &c[j]);
            }
            /* the form as a constant in each loop (a branch in the body
             * would stop vectorisation) */
            if (log_form)
                for (int64_t l = 0; l < L; l++)
                    for (int64_t j = 0; j < nj; j++)
                        ys[l * inner + j] = FA(softmax_of)(1, xs[l * inner + j], m[j], s[j], c[j]);
            else
                for (int64_t l = 0; l < L; l++)
                    for (int64_t j = 0; j < nj; j++)
                        ys[l * inner + j] = FA(softmax_of)(0, xs[l * inner + j], m[j], s[j], c[j]);
        }
    }
}

/* softmax:     gi = y*(g - sum(g*y));  log_softmax: gi = g - exp(y)*sum(g).
 * float64: the sum and the final difference are double-doubles (g - s
 * cancels where the result is small, so a rounding of s, or an FMA on one
 * ISA level and not the other, would be amplified). */

/* One term of the sum: g*y (softmax) or g (log_softmax) added to (*s, *c). */
FA_INLINE void FA(dot_add)(int log_form, W *s, W *c, T gk, T yk)
{
#if FA_PRECISE
    W pl = 0, p = log_form ? (W)gk : fa_two_prod((W)gk, (W)yk, &pl);
    W err;
    *s = fa_two_sum(*s, p, &err);
    *c += err + pl;
#else
    (void)c;
    *s += log_form ? (W)gk : (W)gk * (W)yk;
#endif
}
/* One result from the slice's sum s + c. */
FA_INLINE T FA(softmax_grad_of)(int log_form, T gk, T yk, W s, W c)
{
#if FA_PRECISE
    W pl = 0, p = s, lo = c;
    if (log_form) {
        W e = FA(exp_w)(yk);
        p = fa_two_prod(e, s, &pl);
        lo = e * c;
    }
    W rl, r = fa_two_sum(gk, -p, &rl);
    W d = fabs(r) <= DBL_MAX ? r + ((rl - pl) - lo) : r;
    return (T)(log_form ? d : yk * d);
#else
    (void)c;
    return (T)(log_form ? gk - FA(exp_w)(yk) * s : yk * (gk - s));
#endif
}

/* The sum of a row (inner == 1) in FA_LANES partial sums, combined in a
 * fixed order (as FA(row_sum_body)); one function per form, as there.  As a
 * single chain, float64's double-double additions ran one element per
 * dependent 2Sum (2 threads, rows of 1000: 5.4 ns per element, 8x
 * PyTorch's time). */
FA_INLINE void FA(row_dot_body)(int log_form, const T *gs, const T *ys, int64_t L, W *s,
                                W *c)
{
    W sk[FA_LANES], ck[FA_LANES];
    int64_t body = L - L % FA_LANES;
    for (int k = 0; k < FA_LANES; k++) { sk[k] = 0; ck[k] = 0; }
    for (int64_t l = 0; l < body; l += FA_LANES)
        for (int k = 0; k < FA_LANES; k++)
            FA(dot_add)(log_form, &sk[k], &ck[k], gs[l + k], ys[l + k]);
    for (int64_t l = body; l < L; l++)
        FA(dot_add)(log_form, &sk[0], &ck[0], gs[l], ys[l]);
    *s = 0;
    *c = 0;
    for (int k = 0; k < FA_LANES; k++) {
        FA(sum_add)(s, c, sk[k]);
        *c += ck[k];
    }
}
__attribute__((noinline)) static void FA(row_dot)(const T *gs, const T *ys, int64_t L, W *s,
                                                  W *c)
{
    FA(row_dot_body)(0, gs, ys, L, s, c);
}
__attribute__((noinline)) static void FA(row_dot_sum)(const T *gs, int64_t L, W *s, W *c)
{
    FA(row_dot_body)(1, gs, gs, L, s, c);
}

static void FA(softmax_backward_rows)(int log_form, const T *g, const T *y, T *gi,
                                      int64_t o0, int64_t o1, int64_t L)
{
    for (int64_t o = o0; o < o1; o++) {
        const T *gs = g + o * L, *ys = y + o * L;
        T *gis = gi + o * L;
        W s, c;
        if (log_form)
            FA(row_dot_sum)(gs, L, &s, &c);
        else
            FA(row_dot)(gs, ys, L, &s, &c);
        c = fabs(s) <= DBL_MAX ? c : 0; /* inf/NaN: no low part */
        /* the form as a constant in each loop (a branch in the body would
         * stop vectorisation) */
        if (log_form)
            for (int64_t l = 0; l < L; l++) gis[l] = FA(softmax_grad_of)(1, gs[l], ys[l], s, c);
        else
            for (int64_t l = 0; l < L; l++) gis[l] = FA(softmax_grad_of)(0, gs[l], ys[l], s, c);
    }
}

static void FA(softmax_backward)(int log_form, const T *g, const T *y, T *gi,
                                 int64_t o0, int64_t o1, int64_t L, int64_t inner)
{
    if (inner == 1) {
        FA(softmax_backward_rows)(log_form, g, y, gi, o0, o1, L);
        return;
    }
    W s[FA_TILE], c[FA_TILE];
    for (int64_t o = o0; o < o1; o++) {
        for (int64_t j0 = 0; j0 < inner; j0 += FA_TILE) {
            int64_t nj = inner - j0 < FA_TILE ? inner - j0 : FA_TILE;
            int64_t base = o * L * inner + j0;
            for (int64_t j = 0; j < nj; j++) { s[j] = 0; c[j] = 0; }
            for (int64_t l = 0; l < L; l++)
                for (int64_t j = 0; j < nj; j++) {
                    int64_t k = base + l * inner + j;
                    FA(dot_add)(log_form, &s[j], &c[j], g[k], y[k]);
                }
            for (int64_t j = 0; j < nj; j++)
                c[j] = fabs(s[j]) <= DBL_MAX ? c[j] : 0; /* inf/NaN: no low part */
            for (int64_t l = 0; l < L; l++)
                for (int64_t j = 0; j < nj; j++) {
                    int64_t k = base + l * inner + j;
                    gi[k] = FA(softmax_grad_of)(log_form, g[k], y[k], s[j], c[j]);
                }
        }
    }
}

/* ---- maxout over groups of `pieces` along axis K*pieces ----------------- */

/* Groups along the last axis (inner == 1) are runs of `pieces` consecutive
 * elements: n groups from x, one result each, with `pieces` a constant
 * (FA(maxout_runs) is inlined into a switch over 2..8), so that GCC unrolls
 * the group and vectorises over the groups (interleaved loads); the loops
 * over (k, inner) had one element each there (measured, 2 threads, rows of
 * 1000: 2.5 ns/element). */
FA_INLINE void FA(maxout_runs)(const T *x, T *y, int64_t n, int64_t pieces)
{
    for (int64_t g = 0; g < n; g++) {
        T m = x[g * pieces];
        for (int64_t q = 1; q < pieces; q++) m = FA(max_nan)(m, x[g * pieces + q]);
        y[g] = m;
    }
}
/* The gradient of one group of `pieces` elements xg[q*stride]: g goes to
 * the first maximal element (the first NaN, if any); every NaN of x gets
 * NaN.  Branch-free, so that the runs below vectorise. */
FA_INLINE void FA(maxout_group_backward)(T g, const T *xg, T *gg, int64_t stride,
                                         int64_t pieces)
{
    T best = xg[0];
    int64_t idx = 0;
    for (int64_t q = 1; q < pieces; q++) {
        T v = xg[q * stride];
        int take = best == best && (v > best || v != v);
        best = take ? v : best;
        idx = take ? q : idx;
    }
    for (int64_t q = 0; q < pieces; q++)
        gg[q * stride] = FA(scale_t)(g, FA(nan_or)(xg[q * stride], q == idx ? (T)1 : (T)0));
}
FA_INLINE void FA(maxout_runs_backward)(const T *g, const T *x, T *gi, int64_t n,
                                        int64_t pieces)
{
    for (int64_t r = 0; r < n; r++)
        FA(maxout_group_backward)(g[r], x + r * pieces, gi + r * pieces, 1, pieces);
}
#ifndef FA_MAXOUT_RUNS_SWITCH
#define FA_MAXOUT_RUNS_SWITCH(pieces, CALL)                                    \
    switch (pieces) {                                                          \
    case 2: CALL(2); break;                                                    \
    case 3: CALL(3); break;                                                    \
    case 4: CALL(4); break;                                                    \
    case 5: CALL(5); break;                                                    \
    case 6: CALL(6); break;                                                    \
    case 7: CALL(7); break;                                                    \
    case 8: CALL(8); break;                                                    \
    default: CALL(pieces); break;                                              \
    }
#endif

static void FA(maxout)(const T *x, T *y, int64_t o0, int64_t o1, int64_t K,
                       int64_t pieces, int64_t inner)
{
    if (inner == 1) {
        const T *xs = x + o0 * K * pieces;
        T *ys = y + o0 * K;
        int64_t n = (o1 - o0) * K;
#define FA_RUNS(p) FA(maxout_runs)(xs, ys, n, p)
        FA_MAXOUT_RUNS_SWITCH(pieces, FA_RUNS)
#undef FA_RUNS
        return;
    }
    for (int64_t o = o0; o < o1; o++)
        for (int64_t k = 0; k < K; k++) {
            const T *xg = x + (o * K + k) * pieces * inner;
            T *yr = y + (o * K + k) * inner;
            for (int64_t j = 0; j < inner; j++) yr[j] = xg[j];
            for (int64_t q = 1; q < pieces; q++)
                for (int64_t j = 0; j < inner; j++)
                    yr[j] = FA(max_nan)(yr[j], xg[q * inner + j]);
        }
}

/* FA(maxout_group_backward) for every group. */
static void FA(maxout_backward)(const T *g, const T *x, T *gi, int64_t o0,
                                int64_t o1, int64_t K, int64_t pieces,
                                int64_t inner)
{
    if (inner == 1) {
        const T *gs = g + o0 * K, *xs = x + o0 * K * pieces;
        T *gis = gi + o0 * K * pieces;
        int64_t n = (o1 - o0) * K;
#define FA_RUNS(p) FA(maxout_runs_backward)(gs, xs, gis, n, p)
        FA_MAXOUT_RUNS_SWITCH(pieces, FA_RUNS)
#undef FA_RUNS
        return;
    }
    for (int64_t o = o0; o < o1; o++)
        for (int64_t k = 0; k < K; k++) {
            const T *xg = x + (o * K + k) * pieces * inner;
            T *gg = gi + (o * K + k) * pieces * inner;
            const T *gr = g + (o * K + k) * inner;
            for (int64_t j = 0; j < inner; j++)
                FA(maxout_group_backward)(gr[j], xg + j, gg + j, inner, pieces);
        }
}

/* ---- prelu over channels C of (outer, C, inner) -------------------------- */

/* Channels last (inner == 1, no bias) runs along the rows, whose elements
 * are consecutive channels: the loops over (channel, inner) had one element
 * each there and did not vectorise (measured, one thread, float32 (10^4,
 * 10^3): forward 7.8 ns/element, backward with the weight's gradient 14.6;
 * leaky_relu' 0.46). */
static void FA(prelu)(const T *x, const T *w, T *y, int64_t o0, int64_t o1,
                      int64_t C, int64_t inner, const T *bias, int64_t ncols)
{
    if (inner == 1 && C == 1 && !bias) { /* one channel: a flat loop */
        T s = w[0];
        for (int64_t i = o0; i < o1; i++) y[i] = FA(leaky)(x[i], s);
        return;
    }
    if (inner == 1 && !bias) {
        for (int64_t o = o0; o < o1; o++)
            for (int64_t ch = 0; ch < C; ch++) y[o * C + ch] = FA(leaky)(x[o * C + ch], w[ch]);
        return;
    }
    for (int64_t o = o0; o < o1; o++)
        for (int64_t ch = 0; ch < C; ch++) {
            T s = w[ch];
            int64_t b = (o * C + ch) * inner;
            if (!bias) {
                for (int64_t i = b; i < b + inner; i++) y[i] = FA(leaky)(x[i], s);
            } else {
                FA_FOR_ROW_SEGMENTS(b, b + inner, ncols, y[i] = FA(leaky)(x[i] + bias[c], s))
            }
        }
}

static void FA(prelu_backward)(const T *g, const T *x, const T *w, T *gi,
                               int64_t o0, int64_t o1, int64_t C, int64_t inner,
                               const T *bias, int64_t ncols)
{
    if (inner == 1 && C == 1 && !bias) { /* one channel: a flat loop */
        T s = w[0];
        for (int64_t i = o0; i < o1; i++) gi[i] = FA(leaky_bwd)(g[i], x[i], s);
        return;
    }
    if (inner == 1 && !bias) {
        for (int64_t o = o0; o < o1; o++)
            for (int64_t ch = 0; ch < C; ch++) {
                int64_t i = o * C + ch;
                gi[i] = FA(leaky_bwd)(g[i], x[i], w[ch]);
            }
        return;
    }
    for (int64_t o = o0; o < o1; o++)
        for (int64_t ch = 0; ch < C; ch++) {
            T s = w[ch];
            int64_t b = (o * C + ch) * inner;
            if (!bias) {
                for (int64_t i = b; i < b + inner; i++) gi[i] = FA(leaky_bwd)(g[i], x[i], s);
            } else {
                FA_FOR_ROW_SEGMENTS(b, b + inner, ncols,
                                    gi[i] = FA(leaky_bwd)(g[i], x[i] + bias[c], s))
            }
        }
}

/* grad_weight[ch] = sum over (o, j), in that order, of g*z where z <= 0 (z =
 * x + bias), accumulated in W (float64: as a double-double, each product
 * and sum error-free) and rounded once: one thread per channel block and a
 * fixed order make it bit-identical for every thread count.  Branch-free,
 * so that the channels-last loop vectorises: where z > 0 the term is 0,
 * which leaves the sum's bits as skipping it did (the sum starts at +0 so
 * is never -0, and its low part is already 0 once it is inf or NaN). */
FA_INLINE void FA(acc_add)(W *acc, W *lo, T g, T z)
{
#if FA_PRECISE
    W pl, p = fa_two_prod((W)g, (W)z, &pl);
    p = z > 0 ? 0 : p;
    pl = z > 0 ? 0 : pl;
    W e, sum = fa_two_sum(*acc, p, &e);
    W l = *lo + (e + pl);
    *lo = (fabs(sum) <= DBL_MAX && fabs(p) <= DBL_MAX) ? l : 0; /* no NaN low part */
    *acc = sum;
#else
    (void)lo;
    *acc += z > 0 ? 0 : (W)g * (W)z;
#endif
}
/* Channels last: the rows in order, each adding to its channels' sums
 * (scratch arrays; the per-channel order is the same, so are the bits). */
static int FA(prelu_weight_grad_rows)(const T *g, const T *x, T *gw, int64_t c0, int64_t c1,
                                      int64_t outer, int64_t C)
{
    int64_t n = c1 - c0;
    W *acc = calloc((size_t)(2 * n), sizeof(W)), *lo = acc + n;
    if (!acc) return 0;
    for (int64_t o = 0; o < outer; o++) {
        const T *gs = g + o * C + c0, *xs = x + o * C + c0;
        for (int64_t j = 0; j < n; j++) FA(acc_add)(&acc[j], &lo[j], gs[j], xs[j]);
    }
    for (int64_t j = 0; j < n; j++) gw[c0 + j] = (T)(acc[j] + lo[j]);
    free(acc);
    return 1;
}
/* One channel (a scalar weight): the whole array in FA_LANES interleaved
 * partial sums, combined in a fixed order (one dependent chain per element
 * ran at ~5 ns/element); one thread, so the same bits on any thread count. */
static void FA(prelu_weight_grad_one)(const T *g, const T *x, T *gw, int64_t n)
{
    W sk[FA_LANES], lk[FA_LANES], acc = 0, lo = 0;
    int64_t body = n - n % FA_LANES;
    for (int k = 0; k < FA_LANES; k++) { sk[k] = 0; lk[k] = 0; }
    for (int64_t i = 0; i < body; i += FA_LANES)
        for (int k = 0; k < FA_LANES; k++) FA(acc_add)(&sk[k], &lk[k], g[i + k], x[i + k]);
    for (int64_t i = body; i < n; i++) FA(acc_add)(&sk[0], &lk[0], g[i], x[i]);
    for (int k = 0; k < FA_LANES; k++) {
        W e, sum = FA(two_sum)(acc, sk[k], &e);
        W l = lo + (e + lk[k]);
        lo = (fabs(sum) <= DBL_MAX) ? l : 0; /* no NaN low part */
        acc = sum;
    }
    gw[0] = (T)(acc + lo);
}
static void FA(prelu_weight_grad)(const T *g, const T *x, T *gw, int64_t c0,
                                  int64_t c1, int64_t outer, int64_t C,
                                  int64_t inner, const T *bias, int64_t ncols)
{
    if (inner == 1 && C == 1 && c0 == 0 && c1 == 1 && !bias) {
        FA(prelu_weight_grad_one)(g, x, gw, outer);
        return;
    }
    if (inner == 1 && !bias && FA(prelu_weight_grad_rows)(g, x, gw, c0, c1, outer, C))
        return;
    for (int64_t ch = c0; ch < c1; ch++) {
        W acc = 0, lo = 0;
        for (int64_t o = 0; o < outer; o++) {
            int64_t b = (o * C + ch) * inner;
            if (!bias) {
                for (int64_t i = b; i < b + inner; i++) FA(acc_add)(&acc, &lo, g[i], x[i]);
            } else {
                FA_FOR_ROW_SEGMENTS(b, b + inner, ncols,
                                    FA(acc_add)(&acc, &lo, g[i], x[i] + bias[c]))
            }
        }
        gw[ch] = (T)(acc + lo);
    }
}
