/* SPDX-License-Identifier: MIT */
/*
 * fork: pthread_atfork takes every allocator lock around fork(), so the
 * child starts with consistent tables; its regions are private copies.  Of
 * the parent's threads only the one that forked is in the child: the heaps
 * of the others are handed back there, their segments abandoned, so that
 * the child's threads reuse that memory and no two threads own a segment
 * (ka_fork_child).  Nor is the purge thread: the child starts its own
 * when it needs one (ka_purge_fork_child, purge.c).
 *
 * The locks do not stop a thread that works on its own heap, which takes
 * none: the child sees it as it was at the fork, maybe halfway through
 * threading a page's blocks.  The steps that a cut would leave unsafe
 * mark the heap while they run (ka_heap_change_begin, internal.h says
 * which), and a heap caught marked keeps its segments in the child,
 * unused, for good: a leak of that heap's memory rather than pages whose
 * free lists hand a block out twice.  Only the blocks of others it kept
 * go back (foreign.c's lists can be walked at any cut).  jemalloc and
 * mimalloc leave every other thread's memory so in a child.  How often a
 * heap is caught depends on the time its thread spends in those steps;
 * with KALLOC_DEBUG, whose checks need malloc's and free's whole slow
 * paths marked, most busy threads' heaps are.
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
	/*
	 * Handlers registered before these run next, and those of the
	 * parent and the child before ka_fork_parent and ka_fork_child:
	 * glibc runs prepare handlers last registered first, the others in
	 * the order of registration, and these are registered at the first
	 * malloc, after a library's constructor or a main() that called
	 * pthread_atfork first.  They may allocate, from this thread only
	 * (glibc runs every handler of one fork in the thread that forks,
	 * and no other fork runs meanwhile): its lock calls pass until its
	 * parent or child handler (internal.h, ka_in_fork_window).
	 */
	atomic_store_explicit(&ka_fork_holder, (uintptr_t)&ka_tls_fork_id, KA_RELAXED);
}

static void ka_fork_parent(void)
{
	atomic_store_explicit(&ka_fork_holder, 0, KA_RELAXED);
	ka_huge_fork_lock(false);
	ka_regions_fork_lock(false);
	ka_abandoned_fork_lock(false);
	ka_heap_exited_fork_lock(false);
	ka_heaps_fork_lock(false);
}

/*
 * The child has one thread, the one that forked.  The heaps of the others
 * go back unused, and every segment they owned is abandoned (abandon.c),
 * but those of a heap caught changing (see above): the child's threads
 * reclaim them, and the new thread that glibc gives a gone one's stack,
 * and so its thread pointer, owns nothing of it.  Their heaps' queues are not walked: a thread may have been
 * halfway through changing them when the parent forked.  Remote frees
 * they were sent into full pages then go back to their pages, and so do
 * the blocks of others they kept (foreign.c says why those lists, unlike
 * the queues, can be walked).  A segment a gone thread was making or
 * giving back, which no heap holds, goes back to the pool
 * (ka_segments_recover_cut, region.c).
 */
static void ka_fork_child(void)
{
	ka_heap_t *self = ka_tls_heap;

	ka_fork_parent();
	ka_purge_fork_child();
	ka_heaps_unuse_all_but(self);
	ka_segments_recover_cut();
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
