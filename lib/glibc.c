/* SPDX-License-Identifier: MIT */
/*
 * The unprefixed malloc family with glibc's semantics: what makes
 * liballoc.so a drop-in under LD_PRELOAD and liballoc.a a replacement when
 * linked with -lalloc.  Built without this file (the test builds under
 * sanitizers), liballoc only answers to its ka_ names.
 */
#include <limits.h>
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

/* glibc's internal names, which some programs and libraries call. */
KA_EXPORT void *__libc_malloc(size_t size) { return ka_malloc(size); }
KA_EXPORT void __libc_free(void *p) { ka_free(p); }
KA_EXPORT void *__libc_calloc(size_t n, size_t size) { return ka_calloc(n, size); }
KA_EXPORT void *__libc_realloc(void *p, size_t size) { return ka_realloc(p, size); }
KA_EXPORT void *__libc_memalign(size_t align, size_t size) { return ka_memalign(align, size); }
KA_EXPORT void *__libc_valloc(size_t size) { return ka_valloc(size); }
KA_EXPORT void *__libc_pvalloc(size_t size) { return ka_pvalloc(size); }

/* glibc's fields, from liballoc's statistics: main arena = the spans. */
static struct mallinfo2 ka_mallinfo2(void)
{
	struct ka_stats st;
	struct mallinfo2 mi;

	ka_stats(&st);
	memset(&mi, 0, sizeof mi);
	mi.arena = st.active + st.dirty - st.huge_cached;	/* spans, not counting huge */
	mi.ordblks = st.segments;
	mi.hblks = st.huge_count;
	mi.hblkhd = st.huge_allocated + st.huge_cached;	/* mapped, cached ones too */
	mi.uordblks = st.allocated - st.huge_allocated;
	mi.fordblks = mi.arena > mi.uordblks ? mi.arena - mi.uordblks : 0;
	mi.keepcost = st.dirty;
	return mi;
}

KA_EXPORT struct mallinfo2 mallinfo2(void)
{
	return ka_mallinfo2();
}

/*
 * The old interface, ints: glibc truncates past 2 GiB; these saturate.
 * Without it a static program calling mallinfo() pulled in glibc's whole
 * malloc.o (multiple definitions of malloc), and a preloaded one read
 * glibc's empty arena.
 */
static int ka_mi_int(size_t v)
{
	return v > INT_MAX ? INT_MAX : (int)v;
}

KA_EXPORT struct mallinfo mallinfo(void)
{
	struct mallinfo2 m2 = ka_mallinfo2();
	struct mallinfo mi = {
		.arena = ka_mi_int(m2.arena), .ordblks = ka_mi_int(m2.ordblks),
		.smblks = ka_mi_int(m2.smblks), .hblks = ka_mi_int(m2.hblks),
		.hblkhd = ka_mi_int(m2.hblkhd), .usmblks = ka_mi_int(m2.usmblks),
		.fsmblks = ka_mi_int(m2.fsmblks), .uordblks = ka_mi_int(m2.uordblks),
		.fordblks = ka_mi_int(m2.fordblks), .keepcost = ka_mi_int(m2.keepcost),
	};
	return mi;
}

KA_EXPORT void malloc_stats(void)
{
	struct ka_stats st;

	ka_stats(&st);
	fprintf(stderr, "Arena 0:\nsystem bytes     = %10zu\nin use bytes     = %10zu\n",
		st.active + st.dirty - st.huge_cached, st.allocated - st.huge_allocated);
	fprintf(stderr, "Total (incl. mmap):\nsystem bytes     = %10zu\n"
		"in use bytes     = %10zu\nmax mmap regions = %10zu\nmax mmap bytes   = %10zu\n",
		st.active + st.dirty + st.huge_allocated, st.allocated, st.huge_count,
		st.huge_allocated);
}

KA_EXPORT int malloc_info(int options, FILE *f)
{
	struct ka_stats st;

	if (options != 0) {
		errno = EINVAL;
		return -1;
	}
	ka_stats(&st);
	fprintf(f, "<malloc version=\"liballoc-1\">\n"
		"<total type=\"allocated\" size=\"%zu\"/>\n"
		"<total type=\"active\" size=\"%zu\"/>\n"
		"<total type=\"dirty\" size=\"%zu\"/>\n"
		"<total type=\"huge\" count=\"%zu\" size=\"%zu\"/>\n"
		"<total type=\"huge_cached\" size=\"%zu\"/>\n</malloc>\n",
		st.allocated, st.active, st.dirty, st.huge_count, st.huge_allocated,
		st.huge_cached);
	return 0;
}
