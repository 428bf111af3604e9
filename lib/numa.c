/* SPDX-License-Identifier: MIT */
/*
 * NUMA: a thread's new segments come from regions on the node it runs on
 * (the node field of KALLOC_IOC_CREATE; mbind for anonymous memory).
 *
 * libnuma answers whether the machine has more than one node; it is asked
 * from the library constructor, after libnuma's own constructor has run
 * (liballoc links it, so it is initialised first).  Until then, and with
 * KALLOC_NUMA=0, every region is created with node -1 (local).
 */
#include <numa.h>
#include <sched.h>
#include <stdlib.h>

#include "internal.h"

static atomic_int ka_numa_count;	/* 0: off */

void ka_numa_init(void)
{
	const char *env = getenv("KALLOC_NUMA");

	if (env && strcmp(env, "0") == 0)
		return;
	if (numa_available() < 0)
		return;
	int n = numa_num_configured_nodes();
	if (n > 1)
		atomic_store_explicit(&ka_numa_count, n, KA_RELAXED);
}

int ka_numa_nodes(void)
{
	return atomic_load_explicit(&ka_numa_count, KA_RELAXED);
}

int ka_numa_node(void)
{
	unsigned cpu, node;

	if (atomic_load_explicit(&ka_numa_count, KA_RELAXED) == 0)
		return -1;
	if (getcpu(&cpu, &node) != 0)
		return -1;
	return (int)node;
}
