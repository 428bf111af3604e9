/* SPDX-License-Identifier: MIT */
/*
 * Options: every KALLOC_* environment variable is read here, once, at
 * process init (ka_process_init, init.c), before the first allocation is
 * served, so nothing here may allocate.  The other files read ka_options.
 *
 *   KALLOC_BACKEND=device|anon|auto  the memory source (os.c); auto, the
 *                                    default: the device when it opens
 *   KALLOC_QUIET=1                   no line on stderr when auto falls back
 *   KALLOC_ORDER=n                   PAGES block order of every region
 *                                    (os.c); unset: 0 for segments, 2 MiB
 *                                    regions for huge blocks (huge.c)
 *   KALLOC_DEBUG=1                   writes to freed memory caught
 *                                    (debug.c)
 *   KALLOC_DECAY_MS=n                purge delay (default 1000, purge.c)
 *   KALLOC_PURGE_THREAD=0            no purge thread (purge.c)
 *   KALLOC_NUMA=0                    every region on the local node
 *                                    (numa.c)
 *   KALLOC_STATS=1                   statistics as JSON on stderr at exit
 *                                    (stats.c)
 *
 * mallopt: KA_M_DECAY_MS (-101) sets the purge delay at run time; glibc's
 * own parameters have no effect and get glibc's answers (ka_mallopt).
 */
#include <malloc.h>
#include <stdlib.h>

#include "internal.h"

struct ka_options ka_options;
_Atomic uint64_t ka_decay_ms = 1000;

static bool ka_env_is(const char *name, const char *value)
{
	const char *v = getenv(name);

	return v && strcmp(v, value) == 0;
}

void ka_options_init(void)
{
	const char *order = getenv("KALLOC_ORDER");
	const char *decay = getenv("KALLOC_DECAY_MS");

	ka_options.backend = getenv("KALLOC_BACKEND");
	if (order && *order) {
		ka_options.order = (unsigned)atoi(order);
		ka_options.order_set = true;
	}
	ka_options.quiet = ka_env_is("KALLOC_QUIET", "1");
	ka_options.debug = ka_env_is("KALLOC_DEBUG", "1");
	if (decay && *decay)
		atomic_store_explicit(&ka_decay_ms, strtoull(decay, NULL, 10), KA_RELAXED);
	ka_options.purge_thread_off = ka_env_is("KALLOC_PURGE_THREAD", "0");
	ka_options.numa_off = ka_env_is("KALLOC_NUMA", "0");
	ka_options.stats_at_exit = ka_env_is("KALLOC_STATS", "1");
}

int ka_mallopt(int param, int value)
{
	if (param == KA_M_DECAY_MS) {
		if (value < 0)
			return 0;
		atomic_store_explicit(&ka_decay_ms, (uint64_t)value, KA_RELAXED);
		return 1;
	}
	/*
	 * glibc's parameters (M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX,
	 * ...) tune a different design: accepted and ignored, with glibc's
	 * answers (2.36, malloc/malloc.c, __libc_mallopt): 1 for any
	 * parameter, even one it does not know, but 0 for an M_MXFAST over
	 * its MAX_FAST_SIZE (160 bytes on 64-bit) or below 0.
	 */
	if (param == M_MXFAST)
		return value >= 0 && (size_t)value <= 80 * sizeof(size_t) / 4;
	return 1;
}
