/* OpenMP queries that also compile without OpenMP (a serial build). */
#ifndef FA_OMP_H
#define FA_OMP_H
#ifdef _OPENMP
#include <omp.h>
static inline int fa_openmp_enabled(void) { return 1; }
static inline int fa_omp_max_threads(void) { return omp_get_max_threads(); }
#else
static inline int fa_openmp_enabled(void) { return 0; }
static inline int fa_omp_max_threads(void) { return 1; }
#endif
#endif
