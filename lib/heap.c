/* SPDX-License-Identifier: MIT */
/*
 * Heaps: one per thread, found through initial-exec TLS, so the fast path
 * takes no lock and no call.  A thread starts on ka_heap_empty (read-only,
 * see internal.h), whose direct[] pages are all empty: its first malloc
 * falls to the slow path, which gives it a heap (the static one first, so
 * the first allocation needs no allocation) and registers a pthread key
 * whose destructor hands the heap back at thread exit.  Heaps are never
 * freed, only reused, so a pointer to one stays valid for the remote frees
 * that hold it.  A thread owns the segments whose heap is its heap
 * (ka_heap_owns); a heap handed back has abandoned its segments first.
 *
 * After its destructor.  Other thread-specific-data destructors may run
 * after liballoc's and allocate, up to glibc's last round, after which no
 * destructor runs: a heap given to the thread then would never be handed
 * back (jemalloc calls such a thread "reincarnated").  So a thread past
 * its destructor gets no heap of its own: it allocates from ka_heap_exited,
 * one heap for all such threads, under a lock, borrowing it as its own for
 * the call; its frees, like any heapless thread's, are remote.
 *
 * fork: pthread_atfork takes every allocator lock around fork(), so the
 * child starts with consistent tables; its regions are private copies.  Of
 * the parent's threads only the one that forked is in the child: the heaps
 * of the others are handed back there, their segments abandoned, so that
 * the child's threads reuse that memory and no two threads own a segment
 * (ka_fork_child).
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

const ka_page_t ka_page_empty = { .flags = KA_PAGE_UNUSED };
const ka_heap_t ka_heap_empty = {
	.direct = { [0 ... KA_DIRECT_WORDS] = KA_PAGE_EMPTY },
	.purge_next = UINT64_MAX,
};
__thread ka_heap_t *ka_tls_heap __attribute__((tls_model("initial-exec"))) = KA_HEAP_EMPTY;
__thread bool ka_tls_exited __attribute__((tls_model("initial-exec")));	/* destructor ran */
uintptr_t ka_secret;

/* The heap of threads past their destructor, under its lock; in no
 * registry, so never handed to a thread as its own. */
static ka_heap_t ka_heap_exited = {
	.direct = { [0 ... KA_DIRECT_WORDS] = KA_PAGE_EMPTY },
	.purge_next = UINT64_MAX,
	.node = -1,
	.in_use = true,
};
static ka_lock_t ka_heap_exited_lock;

static ka_heap_t ka_heap_main;		/* the bootstrap heap */
static ka_heap_t *ka_heaps;		/* every heap ever made */
static size_t ka_heap_count;
static ka_lock_t ka_heaps_lock;

static atomic_int ka_init_state;	/* 0 none, 1 running, 2 done */
static atomic_int ka_late_state;
static pthread_key_t ka_key;

void ka_lock_slow(ka_lock_t *l)
{
	do {
		while (atomic_load_explicit(&l->v, KA_RELAXED))
			sched_yield();
	} while (atomic_exchange_explicit(&l->v, 1, memory_order_acquire));
}

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

static ka_heap_t *ka_heap_acquire(void)
{
	ka_heap_t *heap;

	ka_lock(&ka_heaps_lock);
	for (heap = ka_heaps; heap; heap = heap->next_heap)
		if (!heap->in_use)
			break;
	if (!heap) {
		heap = ka_heap_count == 0 ? &ka_heap_main : ka_os_meta_alloc(sizeof *heap);
		if (!heap) {
			ka_unlock(&ka_heaps_lock);
			return NULL;
		}
		heap->next_heap = ka_heaps;
		ka_heaps = heap;
		ka_heap_count++;
	}
	heap->in_use = true;
	ka_unlock(&ka_heaps_lock);

	for (size_t w = 0; w <= KA_DIRECT_WORDS; w++)
		heap->direct[w] = KA_PAGE_EMPTY;
	memset(heap->queues, 0, sizeof heap->queues);
	heap->full.first = heap->full.last = NULL;
	heap->segs_avail = heap->segs_full = NULL;
	heap->pages = heap->carved = 0;
	heap->purge_next = UINT64_MAX;
	heap->purge_epoch = atomic_load_explicit(&ka_purge_epoch, KA_RELAXED);
	heap->node = -1;
	return heap;
}

/* Give a heap's memory back for others: its segments become abandoned. */
static void ka_heap_done(ka_heap_t *heap)
{
	ka_heap_drain_delayed(heap);
	ka_heap_release_pages(heap);	/* clears the full tags */
	ka_heap_drain_delayed(heap);	/* frees that saw a tag before */
	ka_segments_abandon(heap);
	/* Its purge may be the one due to give cached huge regions back, and
	 * no other heap is sure to run one: they go now, as its dirty slices. */
	ka_huge_cache_purge(0, true, NULL);
	heap->purge_next = UINT64_MAX;
	ka_lock(&ka_heaps_lock);
	heap->in_use = false;
	ka_unlock(&ka_heaps_lock);
}

static void ka_thread_done(void *arg)
{
	ka_heap_t *heap = arg;

	ka_heap_done(heap);
	if (heap == ka_tls_heap)
		ka_tls_heap = KA_HEAP_EMPTY;
	ka_tls_exited = true;
}

/*
 * malloc for a thread past its destructor (see above): the shared heap,
 * made the thread's own for the call, so that the generic path, the
 * delayed frees it drains and the pages it collects all see their owner.
 */
void *ka_malloc_exited(size_t size)
{
	ka_lock(&ka_heap_exited_lock);
	ka_tls_heap = &ka_heap_exited;
	void *p = ka_malloc_generic(&ka_heap_exited, size);
	ka_tls_heap = KA_HEAP_EMPTY;
	ka_unlock(&ka_heap_exited_lock);
	return p;
}

/* Lock order: heaps, the exited threads' heap, then segment.c's, huge.c's. */
static void ka_fork_prepare(void)
{
	ka_lock(&ka_heaps_lock);
	ka_lock(&ka_heap_exited_lock);
	ka_segment_fork_lock(true);
	ka_huge_fork_lock(true);
}

static void ka_fork_parent(void)
{
	ka_huge_fork_lock(false);
	ka_segment_fork_lock(false);
	ka_unlock(&ka_heap_exited_lock);
	ka_unlock(&ka_heaps_lock);
}

/*
 * The child has one thread, the one that forked.  The heaps of the others
 * go back unused, and every segment they owned is abandoned
 * (segment.c): the child's threads reclaim them, and the new thread that
 * glibc gives a gone one's stack, and so its thread pointer, owns nothing
 * of it.  Their heaps' queues are not walked: a thread may have been
 * halfway through changing them when the parent forked.  Remote frees
 * they were sent into full pages then go back to their pages.
 */
static void ka_fork_child(void)
{
	ka_heap_t *self = ka_tls_heap;

	ka_fork_parent();
	ka_lock(&ka_heaps_lock);
	for (ka_heap_t *h = ka_heaps; h; h = h->next_heap)
		if (h != self)
			h->in_use = false;
	ka_unlock(&ka_heaps_lock);
	ka_segments_abandon_gone(self, &ka_heap_exited);
	ka_heaps_drain_idle();
}

/* Runs once a heap exists: both calls may allocate. */
static void ka_late_init(void)
{
	int expected = 0;

	if (atomic_load_explicit(&ka_late_state, memory_order_acquire) == 2)
		return;
	if (atomic_compare_exchange_strong(&ka_late_state, &expected, 1)) {
		/* Without the key no heap goes back at thread exit, without
		 * the handlers a child may inherit a lock held: stop now,
		 * rather than leak or deadlock later (liballoc.rst). */
		int err = pthread_key_create(&ka_key, ka_thread_done);
		if (err)
			ka_fatal_error("pthread_key_create", err);
		err = pthread_atfork(ka_fork_prepare, ka_fork_parent, ka_fork_child);
		if (err)
			ka_fatal_error("pthread_atfork", err);
		atomic_store_explicit(&ka_late_state, 2, memory_order_release);
		return;
	}
	while (atomic_load_explicit(&ka_late_state, memory_order_acquire) != 2)
		sched_yield();
}

ka_heap_t *ka_heap_thread_init(void)
{
	ka_process_init();
	ka_heap_t *heap = ka_heap_acquire();
	if (!heap)
		return NULL;
	ka_tls_heap = heap;
	ka_late_init();
	pthread_setspecific(ka_key, heap);
	ka_heap_drain_delayed(heap);
	/* A second thread: what it leaves when it exits only the purge thread
	 * collects (purge.c), and this is a point where it may start. */
	if (heap != &ka_heap_main)
		ka_purge_thread_start();
	return heap;
}

/* Remote frees that hit full pages: free them again, now as the owner. */
void ka_heap_drain_delayed(ka_heap_t *heap)
{
	if (!atomic_load_explicit(&heap->delayed, KA_RELAXED))
		return;
	ka_block_t *b = atomic_exchange_explicit(&heap->delayed, NULL, memory_order_acquire);
	while (b) {
		ka_block_t *next = b->next;
		b->key = 0;
		ka_free(b);
		b = next;
	}
}

/* Remote frees that raced with their heap's thread exiting. */
void ka_heaps_drain_idle(void)
{
	ka_lock(&ka_heaps_lock);
	for (ka_heap_t *h = ka_heaps; h; h = h->next_heap)
		if (!h->in_use && atomic_load_explicit(&h->delayed, KA_RELAXED)) {
			ka_block_t *b = atomic_exchange(&h->delayed, NULL);
			while (b) {
				ka_block_t *next = b->next;
				b->key = 0;
				ka_free(b);
				b = next;
			}
		}
	ka_unlock(&ka_heaps_lock);
}

void ka_heaps_stats(struct ka_stats *st)
{
	ka_lock(&ka_heaps_lock);
	st->heaps = ka_heap_count;
	for (ka_heap_t *h = ka_heaps; h; h = h->next_heap)
		st->heaps_in_use += h->in_use;
	ka_unlock(&ka_heaps_lock);
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
 * stderr taken now, since programs close theirs on the way out (coreutils'
 * close_stdout runs before this handler).
 */
__attribute__((constructor)) static void ka_constructor(void)
{
	ka_process_init();
	ka_numa_init();
	if (ka_options.stats_at_exit) {
		ka_stats_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 100);
		if (ka_stats_fd >= 0)
			atexit(ka_print_stats_at_exit);
	}
}
