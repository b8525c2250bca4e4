/* The portable kernels: baseline x86-64 (SSE2), or whatever the compiler
 * targets by default on other architectures. */
#define FA_TABLE fa_kernels_baseline
#define FA_TABLE_LABEL "baseline"
#include "fa_kernels_impl.h"
