/* SPDX-License-Identifier: MIT */
/* Statistics: summed from the segment headers and heap registry on demand,
 * so the fast paths count nothing. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

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
	X(numa_nodes, "%d") X(huge_cached, "%zu") X(huge_reused, "%" PRIu64)

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
