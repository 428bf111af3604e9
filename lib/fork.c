/* SPDX-License-Identifier: MIT */
/*
 * fork: pthread_atfork takes every allocator lock around fork(), so the
 * child starts with consistent tables; its regions are private copies.  Of
 * the parent's threads only the one that forked is in the child: the heaps
 * of the others are handed back there, their segments abandoned, so that
 * the child's threads reuse that memory and no two threads own a segment
 * (ka_fork_child).  The purge thread has its own child handler (purge.c).
 */
#include <pthread.h>

#include "internal.h"

/*
 * Lock order: heaps (heap.c), the exited threads' heap (thread.c), the
 * abandoned segments (abandon.c), the region table, then each segment's
 * (region.c), then huge.c's.
 */
static void ka_fork_prepare(void)
{
	ka_heaps_fork_lock(true);
	ka_heap_exited_fork_lock(true);
	ka_abandoned_fork_lock(true);
	ka_regions_fork_lock(true);
	ka_huge_fork_lock(true);
}

static void ka_fork_parent(void)
{
	ka_huge_fork_lock(false);
	ka_regions_fork_lock(false);
	ka_abandoned_fork_lock(false);
	ka_heap_exited_fork_lock(false);
	ka_heaps_fork_lock(false);
}

/*
 * The child has one thread, the one that forked.  The heaps of the others
 * go back unused, and every segment they owned is abandoned
 * (abandon.c): the child's threads reclaim them, and the new thread that
 * glibc gives a gone one's stack, and so its thread pointer, owns nothing
 * of it.  Their heaps' queues are not walked: a thread may have been
 * halfway through changing them when the parent forked.  Remote frees
 * they were sent into full pages then go back to their pages, and so do
 * the blocks of others they kept (foreign.c says why those lists, unlike
 * the queues, can be walked).
 */
static void ka_fork_child(void)
{
	ka_heap_t *self = ka_tls_heap;

	ka_fork_parent();
	ka_heaps_unuse_all_but(self);
	ka_segments_abandon_gone(self, ka_heap_exited);
	ka_heaps_drain_idle();
	ka_heaps_flush_foreign_unused();
}

void ka_fork_init(void)
{
	int err = pthread_atfork(ka_fork_prepare, ka_fork_parent, ka_fork_child);

	if (err)
		ka_fatal_error("pthread_atfork", err);
}
