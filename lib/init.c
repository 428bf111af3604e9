/* SPDX-License-Identifier: MIT */
/*
 * Process initialisation, in two steps.  ka_process_init runs before the
 * first allocation is served and may not allocate: options (options.c),
 * the secret that keys free-list pointers and segment cookies, the
 * backend (os.c), the purge settings.  ka_late_init runs once the first
 * heap exists, at the first malloc, because what it does may allocate:
 * the thread-exit key (thread.c) and the fork handlers (fork.c), which
 * therefore come after those of libraries' constructors and of a main()
 * that registers them before its first malloc (fork.c says why that is
 * safe).  The library constructor makes sure the first step happened
 * before main, and asks for NUMA (numa.c) and the statistics at exit
 * (stats.c) then.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>

#include "internal.h"

uintptr_t ka_secret;

static atomic_int ka_init_state;	/* 0 none, 1 running, 2 done */
static atomic_int ka_late_state;

/*
 * init runs once, by the first caller; the others sleep until it is done
 * (on a futex, not yielding: see ka_lock_t in internal.h).
 */
static void ka_once(atomic_int *state, void (*init)(void))
{
	int expected = 0;

	if (KA_LIKELY(atomic_load_explicit(state, memory_order_acquire) == 2))
		return;
	if (atomic_compare_exchange_strong(state, &expected, 1)) {
		init();
		atomic_store_explicit(state, 2, memory_order_release);
		ka_futex(state, FUTEX_WAKE, INT_MAX, NULL);
		return;
	}
	while (atomic_load_explicit(state, memory_order_acquire) != 2)
		ka_futex(state, FUTEX_WAIT, 1, NULL);
}

/*
 * Environment, secret and backend: nothing here may allocate.  errno
 * stays as it was: a program starts with errno 0 (C11 7.5), and a failed
 * open of the device (auto backend, os.c) must not show there.
 */
static void ka_process_init_once(void)
{
	int saved = errno;

	ka_options_init();
	ka_secret = ka_os_random();
	ka_debug_init();
	ka_os_init();
	ka_segment_map_init();
	ka_os_commit_init();
	ka_purge_init();
	errno = saved;
}

void ka_process_init(void)
{
	ka_once(&ka_init_state, ka_process_init_once);
}

/* Runs once a heap exists: both calls may allocate.  Without the key no
 * heap goes back at thread exit, without the handlers a child may inherit
 * a lock held: each stops the process when it fails, rather than leak or
 * deadlock later (liballoc.rst). */
static void ka_late_init_once(void)
{
	int saved = errno;

	ka_thread_exit_init();
	ka_fork_init();
	errno = saved;
}

void ka_late_init(void)
{
	ka_once(&ka_late_state, ka_late_init_once);
}

__attribute__((constructor)) static void ka_constructor(void)
{
	int saved = errno;

	ka_process_init();
	ka_numa_init();
	ka_stats_at_exit_init();
	errno = saved;
}
