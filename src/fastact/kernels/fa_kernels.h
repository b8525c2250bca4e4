/* fa_kernels.h -- the C interface of fastact's native kernels.
 *
 * Layers: the Cython module (_native.pyx) splits an array into contiguous
 * chunks, one per OpenMP thread, and calls one of these array kernels per
 * chunk through the table of the instruction-set level chosen at import.
 * Each kernel runs the element-wise math of fa_math.h over its chunk.
 *
 * All arrays are C-contiguous, aligned, native-endian.  Index ranges are
 * [start, stop) of flat element indices (element-wise kernels) or of the
 * outer dimension (kernels over an (outer, L, inner) layout), so a chunk
 * computes exactly what the whole call would compute for those indices:
 * results do not depend on the number of threads.
 */
#ifndef FA_KERNELS_H
#define FA_KERNELS_H

#include <stdint.h>

/* Parameters of an element-wise op: p[] in registry order of the params whose
 * `native` is "p", key = the 64-bit generator key (rrelu's seed). */
typedef struct {
    double p[4];
    uint64_t key;
} fa_params;

/* bias: NULL, or ncols values added along the last axis (flat index % ncols). */
#define FA_KERNEL_SIGNATURES(T, S)                                                   \
    void (*forward_##S)(int op, const T *x, T *y, int64_t start, int64_t stop,       \
                        const T *bias, int64_t ncols, const fa_params *P);           \
    void (*backward_##S)(int op, const T *g, const T *x, T *gi, int64_t start,       \
                         int64_t stop, const T *bias, int64_t ncols, const fa_params *P); \
    void (*backward_y_##S)(int op, const T *g, const T *y, T *gi, int64_t start,     \
                           int64_t stop, const fa_params *P);                         \
    void (*softmax_##S)(int log, const T *x, T *y, int64_t o0, int64_t o1,           \
                        int64_t L, int64_t inner);                                    \
    void (*softmax_backward_##S)(int log, const T *g, const T *y, T *gi, int64_t o0, \
                                 int64_t o1, int64_t L, int64_t inner);               \
    void (*maxout_##S)(const T *x, T *y, int64_t o0, int64_t o1, int64_t K,          \
                       int64_t pieces, int64_t inner);                                \
    void (*maxout_backward_##S)(const T *g, const T *x, T *gi, int64_t o0,           \
                                int64_t o1, int64_t K, int64_t pieces, int64_t inner); \
    void (*prelu_##S)(const T *x, const T *w, T *y, int64_t o0, int64_t o1,          \
                      int64_t C, int64_t inner, const T *bias, int64_t ncols);        \
    void (*prelu_backward_##S)(const T *g, const T *x, const T *w, T *gi, int64_t o0,\
                               int64_t o1, int64_t C, int64_t inner, const T *bias,   \
                               int64_t ncols);                                        \
    void (*prelu_weight_grad_##S)(const T *g, const T *x, T *gw, int64_t c0,         \
                                  int64_t c1, int64_t outer, int64_t C,               \
                                  int64_t inner, const T *bias, int64_t ncols);

typedef struct {
    const char *name;
    FA_KERNEL_SIGNATURES(float, f32)
    FA_KERNEL_SIGNATURES(double, f64)
} fa_kernel_table;

/* x86-64-v3 and -v4 kernels are built where GCC can target those levels per
 * file (and __builtin_cpu_supports knows their names: GCC 12). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12
#define FA_HAVE_X86_64_V3 1
#define FA_HAVE_X86_64_V4 1
#endif

/* Instruction-set levels, in increasing order. */
enum { FA_ISA_BASELINE = 0, FA_ISA_X86_64_V3 = 1, FA_ISA_X86_64_V4 = 2, FA_ISA_COUNT = 3 };

/* The table for a level, or NULL if it was not compiled in. */
const fa_kernel_table *fa_kernel_table_for(int isa);
/* The best level this CPU runs (among those compiled). */
int fa_best_isa(void);

extern const fa_kernel_table fa_kernels_baseline;
#if defined(FA_HAVE_X86_64_V3)
extern const fa_kernel_table fa_kernels_x86_64_v3;
#endif
#if defined(FA_HAVE_X86_64_V4)
extern const fa_kernel_table fa_kernels_x86_64_v4;
#endif

/* Counter-based uniform generator for rrelu: splitmix64's finaliser applied
 * to the key and the flat index, so element i's draw depends on (key, i)
 * alone -- identical for every thread count and chunking, and recomputable
 * by the backward without storing the slopes.  Returns a double in [0, 1). */
static inline uint64_t fa_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static inline double fa_uniform01(uint64_t seed, uint64_t i)
{
    uint64_t k = fa_mix64(seed + 0x9E3779B97F4A7C15ULL);
    uint64_t h = fa_mix64(k ^ (i * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL));
    return (double)(h >> 11) * 0x1.0p-53;
}

#endif
