/* SPDX-License-Identifier: MIT */
/*
 * Process initialisation, in two steps.  ka_process_init runs before the
 * first allocation is served and may not allocate: options (options.c),
 * the secret that keys free-list pointers and segment cookies, the
 * backend (os.c), the purge settings.  ka_late_init runs once the first
 * heap exists, because what it does may allocate: the thread-exit key
 * (thread.c) and the fork handlers (fork.c).  The library constructor
 * makes sure both happened before main, and asks for NUMA (numa.c) and
 * the statistics at exit (stats.c) then.
 */
#include <sched.h>

#include "internal.h"

uintptr_t ka_secret;

static atomic_int ka_init_state;	/* 0 none, 1 running, 2 done */
static atomic_int ka_late_state;

/* Environment, secret and backend: nothing here may allocate. */
void ka_process_init(void)
{
	int expected = 0;

	if (KA_LIKELY(atomic_load_explicit(&ka_init_state, memory_order_acquire) == 2))
		return;
	if (atomic_compare_exchange_strong(&ka_init_state, &expected, 1)) {
		ka_options_init();
		ka_secret = ka_os_random();
		ka_debug_init();
		ka_os_init();
		ka_purge_init();
		atomic_store_explicit(&ka_init_state, 2, memory_order_release);
		return;
	}
	while (atomic_load_explicit(&ka_init_state, memory_order_acquire) != 2)
		sched_yield();
}

/* Runs once a heap exists: both calls may allocate. */
void ka_late_init(void)
{
	int expected = 0;

	if (atomic_load_explicit(&ka_late_state, memory_order_acquire) == 2)
		return;
	if (atomic_compare_exchange_strong(&ka_late_state, &expected, 1)) {
		/* Without the key no heap goes back at thread exit, without
		 * the handlers a child may inherit a lock held: stop now,
		 * rather than leak or deadlock later (liballoc.rst). */
		ka_thread_exit_init();
		ka_fork_init();
		atomic_store_explicit(&ka_late_state, 2, memory_order_release);
		return;
	}
	while (atomic_load_explicit(&ka_late_state, memory_order_acquire) != 2)
		sched_yield();
}

__attribute__((constructor)) static void ka_constructor(void)
{
	ka_process_init();
	ka_numa_init();
	ka_stats_at_exit_init();
}
