/* The same kernels for x86-64-v4 (AVX-512 F/BW/CD/DQ/VL), chosen at run time
 * when the CPU and the OS support it.  512-bit vectors are asked for: GCC's
 * generic tuning otherwise keeps 256 bits, which on AMD Zen 4 ran the
 * float32 transcendental loops no faster than x86-64-v3 (one thread, 10^5
 * elements, two runs: sigmoid 1.25-1.45 against 1.03-1.08 ns/element with
 * 512 bits; the double
 * evaluation of fa_math.h gets 8 lanes and 32 registers, so no spills). */
#include "fa_kernels.h"
#if defined(FA_HAVE_X86_64_V4)
#pragma GCC target("arch=x86-64-v4,prefer-vector-width=512")
#define FA_TABLE fa_kernels_x86_64_v4
#define FA_TABLE_LABEL "x86-64-v4"
#include "fa_kernels_impl.h"
#endif
