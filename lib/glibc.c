/* SPDX-License-Identifier: MIT */
/*
 * The unprefixed malloc family with glibc's semantics: what makes
 * liballoc.so a drop-in under LD_PRELOAD and liballoc.a a replacement when
 * linked with -lalloc.  Built without this file (the test builds under
 * sanitizers), liballoc only answers to its ka_ names.
 */
#include <malloc.h>
#include <stdlib.h>

#include "internal.h"

#define KA_EXPORT __attribute__((visibility("default")))

KA_EXPORT void *malloc(size_t size) { return ka_malloc(size); }
KA_EXPORT void free(void *p) { ka_free(p); }
KA_EXPORT void *calloc(size_t n, size_t size) { return ka_calloc(n, size); }
KA_EXPORT void *realloc(void *p, size_t size) { return ka_realloc(p, size); }
KA_EXPORT void *reallocarray(void *p, size_t n, size_t size) { return ka_reallocarray(p, n, size); }
KA_EXPORT void *aligned_alloc(size_t align, size_t size) { return ka_aligned_alloc(align, size); }
KA_EXPORT int posix_memalign(void **out, size_t align, size_t size) { return ka_posix_memalign(out, align, size); }
KA_EXPORT void *memalign(size_t align, size_t size) { return ka_memalign(align, size); }
KA_EXPORT void *valloc(size_t size) { return ka_valloc(size); }
KA_EXPORT void *pvalloc(size_t size) { return ka_pvalloc(size); }
KA_EXPORT size_t malloc_usable_size(void *p) { return ka_malloc_usable_size(p); }
KA_EXPORT void free_sized(void *p, size_t size) { ka_free_sized(p, size); }
KA_EXPORT void free_aligned_sized(void *p, size_t align, size_t size) { ka_free_aligned_sized(p, align, size); }
KA_EXPORT int malloc_trim(size_t pad) { return ka_malloc_trim(pad); }
KA_EXPORT int mallopt(int param, int value) { return ka_mallopt(param, value); }

/*
 * cfree: removed from glibc's headers in 2.26, still exported for the
 * binaries built before (cfree@GLIBC_2.2.5), which would otherwise hand
 * our blocks to glibc's free.
 */
KA_EXPORT void cfree(void *p);
KA_EXPORT void cfree(void *p) { ka_free(p); }

/* glibc's internal names, which some programs and libraries call. */
KA_EXPORT struct mallinfo __libc_mallinfo(void);
KA_EXPORT int __libc_mallopt(int param, int value);
KA_EXPORT struct mallinfo __libc_mallinfo(void) { return ka_mallinfo(); }
KA_EXPORT int __libc_mallopt(int param, int value) { return ka_mallopt(param, value); }
KA_EXPORT void *__libc_malloc(size_t size) { return ka_malloc(size); }
KA_EXPORT void __libc_free(void *p) { ka_free(p); }
KA_EXPORT void *__libc_calloc(size_t n, size_t size) { return ka_calloc(n, size); }
KA_EXPORT void *__libc_realloc(void *p, size_t size) { return ka_realloc(p, size); }
KA_EXPORT void *__libc_memalign(size_t align, size_t size) { return ka_memalign(align, size); }
KA_EXPORT void *__libc_valloc(size_t size) { return ka_valloc(size); }
KA_EXPORT void *__libc_pvalloc(size_t size) { return ka_pvalloc(size); }
KA_EXPORT struct mallinfo2 mallinfo2(void) { return ka_mallinfo2(); }
KA_EXPORT struct mallinfo mallinfo(void) { return ka_mallinfo(); }
KA_EXPORT void malloc_stats(void) { ka_malloc_stats(); }
KA_EXPORT int malloc_info(int options, FILE *f) { return ka_malloc_info(options, f); }
