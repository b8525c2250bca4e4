/* Runtime choice of the instruction-set level (CONTRACT.md section 6). */
#include <stddef.h>
#include "fa_kernels.h"

const fa_kernel_table *fa_kernel_table_for(int isa)
{
    switch (isa) {
    case FA_ISA_BASELINE:
        return &fa_kernels_baseline;
#if defined(FA_HAVE_X86_64_V3)
    case FA_ISA_X86_64_V3:
        return &fa_kernels_x86_64_v3;
#endif
#if defined(FA_HAVE_X86_64_V4)
    case FA_ISA_X86_64_V4:
        return &fa_kernels_x86_64_v4;
#endif
    default:
        return NULL;
    }
}

/* libgcc's feature bits include the OS's support (XGETBV): AVX-512 is
 * reported only where the kernel saves the zmm and mask registers. */
int fa_best_isa(void)
{
#if defined(FA_HAVE_X86_64_V3)
    __builtin_cpu_init();
#if defined(FA_HAVE_X86_64_V4)
    if (__builtin_cpu_supports("x86-64-v4")) return FA_ISA_X86_64_V4;
#endif
    if (__builtin_cpu_supports("x86-64-v3")) return FA_ISA_X86_64_V3;
#endif
    return FA_ISA_BASELINE;
}
