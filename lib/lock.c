/* SPDX-License-Identifier: MIT */
/*
 * The slow half of ka_lock and ka_unlock (internal.h).  A waiter spins a
 * little, since the allocator's locks are held for short stretches, then
 * marks the lock waited for (2) and sleeps on it until an unlock of a
 * waited-for lock wakes one sleeper, which takes it as waited for again:
 * it cannot know whether others still sleep.
 */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

_Atomic uintptr_t ka_fork_holder;
__thread char ka_tls_fork_id __attribute__((tls_model("initial-exec")));

static inline void ka_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* errno as it was: free() keeps it (glibc 2.33 on), and so does a malloc that succeeds. */
void ka_futex(void *word, int op, uint32_t val, const struct timespec *ts)
{
	int saved = errno;

	syscall(SYS_futex, word, op | FUTEX_PRIVATE_FLAG, val, ts, NULL, 0);
	errno = saved;
}

void ka_lock_slow(ka_lock_t *l)
{
	for (int spin = 0; spin < 100; spin++) {
		int unlocked = 0;

		if (atomic_load_explicit(&l->v, KA_RELAXED) == 0 &&
		    atomic_compare_exchange_weak_explicit(&l->v, &unlocked, 1,
							  memory_order_acquire, KA_RELAXED))
			return;
		ka_cpu_relax();
	}
	while (atomic_exchange_explicit(&l->v, 2, memory_order_acquire) != 0)
		ka_futex(&l->v, FUTEX_WAIT, 2, NULL);
}

void ka_lock_wake(ka_lock_t *l)
{
	ka_futex(&l->v, FUTEX_WAKE, 1, NULL);
}
