/* SPDX-License-Identifier: MIT */
/*
 * The slow half of ka_lock (internal.h): the lock is held, so wait until
 * it looks free, yielding the CPU to its holder, then try again.
 */
#include <sched.h>

#include "internal.h"

_Atomic uintptr_t ka_fork_holder;
__thread char ka_tls_fork_id __attribute__((tls_model("initial-exec")));

void ka_lock_slow(ka_lock_t *l)
{
	do {
		while (atomic_load_explicit(&l->v, KA_RELAXED))
			sched_yield();
	} while (atomic_exchange_explicit(&l->v, 1, memory_order_acquire));
}
