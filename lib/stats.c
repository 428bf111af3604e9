/* SPDX-License-Identifier: MIT */
/*
 * Statistics: summed from the segment headers and heap registry on demand,
 * so the fast paths count nothing; and every way they are printed: liballoc's
 * own (ka_stats_print, KALLOC_STATS=1 at exit) and glibc's mallinfo2,
 * mallinfo, malloc_stats and malloc_info (exported by glibc.c).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

/*
 * The region table's segments (region.c), under its lock, each under its
 * own: other threads carve and free spans meanwhile.  A segment counts
 * once its header is written (seg_live, set under the segment's lock); its
 * used and dirty masks and its spans' lengths change only under that
 * lock, a page's block size before the release that clears its UNUSED
 * flag, and a page's count of blocks out by relaxed stores
 * (ka_page_set_used).  The sum is a snapshot of moving counts, exact when
 * the program is quiet.
 */
static void ka_segments_stats(struct ka_stats *st)
{
	ka_page_t *page;

	ka_lock(&ka_region_lock);
	for (unsigned ri = 0; ri < ka_region_count; ri++) {
		struct ka_region *r = &ka_regions[ri];
		st->reserved += r->os.size;
		st->resident += ka_os_region_resident(&r->os);
		for (unsigned si = 0; si < KA_REGION_SEGMENTS; si++) {
			if (!(r->seg_used >> si & 1))
				continue;
			ka_segment_t *seg = ka_region_segment(r, si);
			ka_lock(&r->seg_lock[si]);
			if (r->seg_live[si]) {
				st->segments++;
				st->active += (size_t)(__builtin_popcountl(seg->used) - 1) <<
					      KA_SLICE_SHIFT;
				st->dirty += (size_t)__builtin_popcountl(seg->dirty & ~seg->used) <<
					     KA_SLICE_SHIFT;
				ka_for_each_span(seg, page)
					st->allocated += (size_t)ka_page_used(page) *
							 page->block_size;
			}
			ka_unlock(&r->seg_lock[si]);
		}
	}
	st->regions = ka_region_count;
	ka_unlock(&ka_region_lock);
	st->abandoned = ka_abandoned_segments();
}

void ka_stats_sized(struct ka_stats *out, size_t size)
{
	struct ka_stats all, *st = &all;

	memset(st, 0, sizeof *st);
	ka_process_init();
	ka_segments_stats(st);
	ka_heaps_stats(st);
	ka_huge_stats(st);
	st->allocated += st->huge_allocated;
	st->dirty += st->huge_cached;
	st->regions = (size_t)atomic_load_explicit(&ka_os_regions, KA_RELAXED);
	st->releases = atomic_load_explicit(&ka_os_releases, KA_RELAXED);
	st->released_bytes = atomic_load_explicit(&ka_os_released_bytes, KA_RELAXED);
	st->decay_ms = atomic_load_explicit(&ka_decay_ms, KA_RELAXED);
	st->numa_nodes = ka_numa_nodes();
	st->backend = ka_os_backend();
	memcpy(out, st, size < sizeof *st ? size : sizeof *st);
}

void (ka_stats)(struct ka_stats *out)
{
	ka_stats_sized(out, sizeof *out);
}

#define KA_STATS_FIELDS(X)						\
	X(allocated, "%zu") X(active, "%zu") X(dirty, "%zu")		\
	X(reserved, "%zu") X(resident, "%zu") X(huge_allocated, "%zu") X(huge_count, "%zu") \
	X(regions, "%zu") X(segments, "%zu") X(abandoned, "%zu")	\
	X(heaps, "%zu") X(heaps_in_use, "%zu") X(releases, "%" PRIu64)	\
	X(released_bytes, "%" PRIu64) X(decay_ms, "%" PRIu64)		\
	X(numa_nodes, "%d") X(huge_cached, "%zu") X(huge_reused, "%" PRIu64)	\
	X(heaps_parked, "%zu") X(heaps_caught, "%zu")

void ka_stats_print(FILE *f, int flags)
{
	struct ka_stats st;

	ka_stats(&st);
	if (flags & KA_STATS_JSON) {
		fprintf(f, "{\"backend\": \"%s\"", st.backend);
#define X(name, fmt) fprintf(f, ", \"" #name "\": " fmt, st.name);
		KA_STATS_FIELDS(X)
#undef X
		fprintf(f, "}\n");
	} else {
		fprintf(f, "liballoc (%s backend)\n", st.backend);
#define X(name, fmt) fprintf(f, "  %-15s " fmt "\n", #name, st.name);
		KA_STATS_FIELDS(X)
#undef X
	}
}

static int ka_stats_fd = -1;

static void ka_print_stats_at_exit(void)
{
	FILE *f = fdopen(ka_stats_fd, "w");

	if (f) {
		ka_stats_print(f, KA_STATS_JSON);
		fclose(f);
	}
}

/*
 * KALLOC_STATS=1: statistics as JSON on stderr at exit -- on a copy of
 * stderr taken now, from the library constructor (init.c), since programs
 * close theirs on the way out (coreutils' close_stdout runs before this
 * handler).
 */
void ka_stats_at_exit_init(void)
{
	if (ka_options.stats_at_exit) {
		ka_stats_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 100);
		if (ka_stats_fd >= 0)
			atexit(ka_print_stats_at_exit);
	}
}

/* glibc's fields, from liballoc's statistics: main arena = the spans. */
struct mallinfo2 ka_mallinfo2(void)
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

/*
 * The old interface, ints: glibc truncates past 2 GiB; these saturate.
 * Without it (exported by glibc.c) a static program calling mallinfo()
 * pulled in glibc's whole malloc.o (multiple definitions of malloc), and
 * a preloaded one read glibc's empty arena.
 */
static int ka_mi_int(size_t v)
{
	return v > INT_MAX ? INT_MAX : (int)v;
}

struct mallinfo ka_mallinfo(void)
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

void ka_malloc_stats(void)
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

int ka_malloc_info(int options, FILE *f)
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
