/* The same kernels for x86-64-v3 (AVX2, FMA, BMI2, F16C), chosen at run time
 * when the CPU has them.  "arch=x86-64-v3" sets exactly that level: unlike
 * target_clones("avx2,fma") it makes one build of the whole file, and unlike
 * arch=haswell it implies no Intel model. */
#include "fa_kernels.h"
#if defined(FA_HAVE_X86_64_V3)
#pragma GCC target("arch=x86-64-v3")
#define FA_TABLE fa_kernels_x86_64_v3
#define FA_TABLE_LABEL "x86-64-v3"
#include "fa_kernels_impl.h"
#endif
