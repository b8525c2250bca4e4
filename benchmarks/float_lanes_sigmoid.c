/* float_lanes_sigmoid.c -- the measurement behind "why fastact evaluates
 * float32 in double lanes" (README, "Speed"; issue 3).
 *
 * Two float32 sigmoids in single-precision lanes (16 per AVX-512 register,
 * twice fastact's double lanes), for comparison with fastact's kernel:
 *   sigmoid_fl    within the contract: exp(-|x|) as 2^k (1 + ph + pl), the
 *                 rounding of 1 + e carried, one division with a Newton
 *                 correction, subnormal results scaled once;
 *   sigmoid_lean  1/(1 + e) and e/(1 + e) with nothing carried.
 * The exp polynomial is c(r) of expm1(r) = r + r^2 c(r), |r| <= ln2/2,
 * fitted in float by weighted least squares (relative error of c 2^-22.8).
 *
 *   gcc -O3 -march=x86-64-v4 -mprefer-vector-width=512 -fno-math-errno \
 *       -fno-trapping-math -ffp-contract=fast benchmarks/float_lanes_sigmoid.c -lm
 *   ./a.out          ns/element, one thread, 10^5 inputs in [-10, 10]
 *   ./a.out x        max ULP over all 2^32 float32 inputs (long double reference)
 *   add -DLEAN for sigmoid_lean.
 *
 * Measured on this machine (AMD Zen 4, one thread, 2026-11-23):
 *   sigmoid_fl    0.71 ns/element, max 0.83 ULP (at x = -87.68, a subnormal result)
 *   sigmoid_lean  0.51 ns/element, max 2.83 ULP (x = -1.954): outside the contract
 *   fastact.sigmoid (double lanes, x86-64-v4), same inputs: 1.07 ns, 0.5 ULP
 *   torch.sigmoid 2.13, same inputs: 0.41 ns, 2.1e6 ULP (README's table)
 * Zen 4 executes a 512-bit operation as two 256-bit halves, so 16 float
 * lanes cost what 8 double lanes do; the contract's 2 ULP then needs the
 * corrections that take the float kernel from 0.51 to 0.71 ns.
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <time.h>
#define INL static inline __attribute__((always_inline))
INL float pow2i(float k) { /* 2^k for integral k in [-126, 127] */
    int32_t b = ((int32_t)k + 127) << 23; float f; memcpy(&f, &b, 4); return f;
}
/* sigmoid in float lanes: e = exp(-|x|) = 2^k (1 + ph + pl), s = 1/(1+e) or e/(1+e) */
INL float sigmoid_fl(float x)
{
    float a = -fabsf(x);
    a = a < -104.0f ? -104.0f : a;             /* NaN passes */
    float k = (a * 0x1.715476p+0f + 0x1.8p23f) - 0x1.8p23f;
    float r = __builtin_fmaf(k, -0x1.62e43p-1f, a);
    r = __builtin_fmaf(k, 0x1.05c610p-29f, r);   /* ln2 = 0x1.62e43p-1 - 0x1.05c61p-29 */
    float c = 0x1.6c698ep-10f;
    c = __builtin_fmaf(c, r, 0x1.120b5cp-7f);
    c = __builtin_fmaf(c, r, 0x1.5555bap-5f);
    c = __builtin_fmaf(c, r, 0x1.5554dep-3f);
    c = __builtin_fmaf(c, r, 0.5f);
    float t = r * r * c;
    float ph = r + t, pl = (r - ph) + t;        /* |r| >= |t| : Fast2Sum */
    /* m = 1 + ph + pl as mh + ml */
    float mh = 1.0f + ph, ml = ((1.0f - mh) + ph) + pl;
    /* 2^k in two halves for subnormal results */
    float k1 = k < -100.0f ? -60.0f : 0.0f, k2 = k - k1;
    float s1 = pow2i(k1), s2 = pow2i(k2), is1 = pow2i(-k1);
    float eh = mh * s2, el = ml * s2;           /* e/s1 = eh + el, exact scaling (normal) */
    /* d = 1 + e (e <= 1), as dh + dl */
    float e = (eh + el) * s1;
    float dh = 1.0f + e;
    float dl = ((1.0f - dh) + e);               /* rounding of 1+e, given e */
    dl += ((eh - e * is1) + el) * s1;            /* + what e lost (tiny) */
    float q = 1.0f / dh;
    float res = __builtin_fmaf(-q, dh, 1.0f);
    res = __builtin_fmaf(-q, dl, res);
    float ql = q * res;                          /* 1/(dh+dl) = q + ql */
    float pos = q + ql;
    /* x < 0: e*(q + ql) = (eh + el)*s1*(q + ql) */
    float neg = __builtin_fmaf(eh, q, __builtin_fmaf(eh, ql, el * q)) * s1;
    float v = x >= 0 ? pos : neg;
    return x != x ? x : v;
}
INL float sigmoid_lean(float x)
{
    float a = -fabsf(x);
    a = a < -104.0f ? -104.0f : a;
    float k = (a * 0x1.715476p+0f + 0x1.8p23f) - 0x1.8p23f;
    float r = __builtin_fmaf(k, -0x1.62e43p-1f, a);
    r = __builtin_fmaf(k, 0x1.05c610p-29f, r);
    float c = 0x1.6c698ep-10f;
    c = __builtin_fmaf(c, r, 0x1.120b5cp-7f);
    c = __builtin_fmaf(c, r, 0x1.5555bap-5f);
    c = __builtin_fmaf(c, r, 0x1.5554dep-3f);
    c = __builtin_fmaf(c, r, 0.5f);
    float m = 1.0f + (r + r * r * c);
    float k1 = k < -100.0f ? -60.0f : 0.0f, k2 = k - k1;
    float e = (m * pow2i(k2)) * pow2i(k1);
    float q = 1.0f / (1.0f + e);
    float v = x >= 0 ? q : e * q;
    return x != x ? x : v;
}
#ifdef LEAN
#define sigmoid_fl sigmoid_lean
#endif
void loop(const float *x, float *y, long n) { for (long i = 0; i < n; i++) y[i] = sigmoid_fl(x[i]); }
static double now(void){struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+1e-9*t.tv_nsec;}
int main(int argc, char **argv) {
    (void)argv;
    if (argc > 1) { /* exhaustive vs long double reference: max ulp */
        double maxu = 0; float at = 0; long over1 = 0, over05 = 0;
        enum { B = 1 << 16 }; static float xb[B], yb[B];
        for (uint64_t base = 0; base <= 0xffffffffu; base += B) {
            for (int j = 0; j < B; j++) { uint32_t u = (uint32_t)(base + j); memcpy(&xb[j], &u, 4); }
            loop(xb, yb, B);
            for (int j = 0; j < B; j++) {
                float x = xb[j]; if (x != x) { if (yb[j] == yb[j]) printf("nan bug\n"); continue; }
                long double ref = 1.0L / (1.0L + expl(-(long double)x));
                if (ref == 0) { if (yb[j] != 0) printf("zero bug %a %a\n", x, yb[j]); continue; }
                /* ulp of the float result around ref */
                int ex; frexpl(ref, &ex); long double ulp = ldexpl(1.0L, (ex - 24) < -149 ? -149 : ex - 24);
                double u = (double)(fabsl((long double)yb[j] - ref) / ulp);
                if (u > maxu) { maxu = u; at = x; }
                over1 += u > 1;
                over05 += u > 0.5;
            }
        }
        printf("max ulp %.4f at %a (%.9g); >0.5: %ld, >1: %ld\n", maxu, at, at, over05, over1);
        return 0;
    }
    enum{N=100000}; static float x[N], y[N];
    unsigned s=12345; for(int i=0;i<N;i++){s=s*1103515245u+12345u; x[i]=-10+20.0*(s>>8)/16777216.0;}
    double b=1e9; for(int r=0;r<30;r++){double t=now(); for(int k=0;k<20;k++) loop(x,y,N); t=(now()-t)/20/N*1e9; if(t<b)b=t;}
    printf("sigmoid float lanes: %.3f ns/element\n", b);
}
