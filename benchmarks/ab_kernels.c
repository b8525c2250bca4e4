/* ab_kernels.c -- A/B of two builds of one level's kernel object.
 *
 * Driven by benchmarks/ab_kernels.py, which renames the two objects' tables
 * to fa_ab_table_a and fa_ab_table_b, writes ab_ops.h (every element-wise op
 * with its default parameters, from the registry) and links this harness
 * against both.  Timing the built objects matters: a harness that compiles
 * the kernels into its own translation unit lets GCC propagate the constant
 * parameters and measures other code.
 *
 * For every op, dtype and direction: whether the two give the same bits (NaN
 * payloads aside) on NCHECK points (random bit patterns, normal samples at
 * three scales, the special values), and the best of REPS alternated timings
 * of NTIME normal samples (scale 3), one thread, in ns per element.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fa_kernels.h"
#include "ab_ops.h"

extern const fa_kernel_table fa_ab_table_a, fa_ab_table_b;

#define NCHECK 400000
#define NTIME 100000
#define REPS 6
#define CALLS 40

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static uint64_t state = 88172645463325252ULL;
static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}
static double normal(void)
{
    double u = (next() >> 11) * 0x1p-53 + 1e-300, v = (next() >> 11) * 0x1p-53;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* One call of a table's kernel: dt 0 float32, 1 float64; dir 0 forward. */
static void call(const fa_kernel_table *t, int op, int dt, int dir, const void *g,
                 const void *x, void *y, int64_t n, const fa_params *P)
{
    if (dt == 0 && dir == 0) t->forward_f32(op, x, y, 0, n, NULL, 1, P);
    if (dt == 0 && dir == 1) t->backward_f32(op, g, x, y, 0, n, NULL, 1, P);
    if (dt == 1 && dir == 0) t->forward_f64(op, x, y, 0, n, NULL, 1, P);
    if (dt == 1 && dir == 1) t->backward_f64(op, g, x, y, 0, n, NULL, 1, P);
}

static int differ(int dt, const void *a, const void *b, int64_t i)
{
    if (dt == 0) {
        float u = ((const float *)a)[i], v = ((const float *)b)[i];
        return memcmp(&u, &v, 4) != 0 && !(u != u && v != v);
    }
    double u = ((const double *)a)[i], v = ((const double *)b)[i];
    return memcmp(&u, &v, 8) != 0 && !(u != u && v != v);
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 && argv[1][0] ? argv[1] : NULL; /* op names, space-separated */
    float *xf = malloc(NCHECK * 4), *gf = malloc(NCHECK * 4), *yf[2];
    double *xd = malloc(NCHECK * 8), *gd = malloc(NCHECK * 8), *yd[2];
    float *tf = malloc(NTIME * 4), *tgf = malloc(NTIME * 4);
    double *td = malloc(NTIME * 8), *tgd = malloc(NTIME * 8);
    for (int k = 0; k < 2; k++) {
        yf[k] = malloc(NCHECK * 4);
        yd[k] = malloc(NCHECK * 8);
    }
    for (int64_t i = 0; i < NCHECK; i++) {
        int kind = i % 4;
        if (kind == 0) {
            uint32_t b = (uint32_t)next();
            uint64_t bd = next();
            memcpy(&xf[i], &b, 4);
            memcpy(&xd[i], &bd, 8);
        } else {
            double v = normal() * (kind == 1 ? 0.3 : kind == 2 ? 3 : 30);
            xf[i] = (float)v;
            xd[i] = v;
        }
        gf[i] = (float)(1 + 0.1 * normal());
        gd[i] = gf[i];
    }
    const double special[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1e-45, -1e-45, 1e-38, -1e-38,
                              3.4e38, -3.4e38, 88.7, -88.7, -103.9, 20, -20, 0.5, 1e-310,
                              -1e-310, 1.7e308, -1.7e308, 709.8, -745.2};
    for (int i = 0; i < (int)(sizeof special / sizeof special[0]); i++) {
        xf[i] = (float)special[i];
        xd[i] = special[i];
    }
    for (int64_t i = 0; i < NTIME; i++) {
        td[i] = 3 * normal();
        tf[i] = (float)td[i];
        tgd[i] = 1 + 0.1 * normal();
        tgf[i] = (float)tgd[i];
    }
    const fa_kernel_table *tab[2] = {&fa_ab_table_a, &fa_ab_table_b};
    printf("%-12s %-4s %-7s %8s %8s %6s %s\n", "op", "dir", "dtype", "A ns", "B ns", "B/A", "bits");
    for (int o = 0; o < AB_NOPS; o++) {
        if (only) { /* a whole word of the list */
            const char *p = strstr(only, AB_OPS[o].name);
            size_t len = strlen(AB_OPS[o].name);
            while (p && ((p > only && p[-1] != ' ') || (p[len] && p[len] != ' ')))
                p = strstr(p + 1, AB_OPS[o].name);
            if (!p) continue;
        }
        fa_params P;
        memcpy(P.p, AB_OPS[o].p, sizeof P.p);
        P.key = 12345;
        for (int dt = 0; dt < 2; dt++)
            for (int dir = 0; dir < 2; dir++) {
                const void *x = dt ? (void *)xd : (void *)xf, *g = dt ? (void *)gd : (void *)gf;
                for (int k = 0; k < 2; k++)
                    call(tab[k], AB_OPS[o].code, dt, dir, g, x, dt ? (void *)yd[k] : (void *)yf[k],
                         NCHECK, &P);
                long ndiff = 0;
                for (int64_t i = 0; i < NCHECK; i++)
                    ndiff += differ(dt, dt ? (void *)yd[0] : (void *)yf[0],
                                    dt ? (void *)yd[1] : (void *)yf[1], i);
                const void *tx = dt ? (void *)td : (void *)tf, *tg = dt ? (void *)tgd : (void *)tgf;
                double best[2] = {1e9, 1e9};
                for (int rep = 0; rep < REPS; rep++)
                    for (int k = 0; k < 2; k++) {
                        double t0 = now();
                        for (int c = 0; c < CALLS; c++)
                            call(tab[k], AB_OPS[o].code, dt, dir, tg, tx,
                                 dt ? (void *)yd[k] : (void *)yf[k], NTIME, &P);
                        double ns = (now() - t0) / CALLS / NTIME * 1e9;
                        best[k] = ns < best[k] ? ns : best[k];
                    }
                printf("%-12s %-4s %-7s %8.3f %8.3f %6.3f ", AB_OPS[o].name, dir ? "bwd" : "fwd",
                       dt ? "float64" : "float32", best[0], best[1], best[1] / best[0]);
                if (ndiff)
                    printf("DIFFER in %ld of %d\n", ndiff, NCHECK);
                else
                    printf("same\n");
                fflush(stdout);
            }
    }
    return 0;
}
