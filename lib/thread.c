/* SPDX-License-Identifier: MIT */
/*
 * Thread start and exit.  A thread starts on ka_heap_empty (read-only,
 * see internal.h), whose direct[] pages are all empty: its first malloc
 * falls to the slow path, which gives it a heap from the registry
 * (heap.c) and registers a pthread key whose destructor hands the heap
 * back at thread exit.
 *
 * After its destructor.  Other thread-specific-data destructors may run
 * after liballoc's and allocate, up to glibc's last round, after which no
 * destructor runs: a heap given to the thread then would never be handed
 * back (jemalloc calls such a thread "reincarnated").  So a thread past
 * its destructor gets no heap of its own: it allocates from ka_heap_exited,
 * one heap for all such threads, under a lock, borrowing it as its own for
 * the call; its frees, like any heapless thread's, are remote.
 *
 * A first malloc in the last round.  A thread that had no heap before it
 * cannot be told from one that has not exited: it gets a heap, and glibc
 * clears the key without calling the destructor.  The next thread whose
 * thread-local storage lies where that one's lay -- glibc hands an exited
 * thread's stack, and the storage in it, to a thread of a like size --
 * finds the heap still its address's and releases it as that thread's
 * exit would have (heap.c, ka_heap_find_gone()).  Where no thread comes
 * there, the purge thread does: a second after each new thread's heap
 * it asks the kernel which heaps' threads are gone
 * (ka_heaps_release_vanished()).  Until then the heap counts as a
 * thread's: if the process's last thread then ends with
 * pthread_exit(), liballoc does not see it as the last, and only the
 * purge thread's looks after that exit (ka_purge_thread_left_alone(),
 * purge.c) find it alone and let the process end.
 *
 * The last thread.  A process ends when its last thread does: a
 * pthread_exit() there exits it (status 0).  liballoc's purge thread would
 * be a last thread that never ends, so when the last heap goes back, its
 * thread exiting, the purge thread is told to end too (purge.c); any
 * thread still there without a heap starts it again when it allocates.
 * Python's test_threading found it: a child forked from a thread, whose
 * only thread returned, lived on beside the purge thread.
 */
#include <pthread.h>

#include "internal.h"

__thread ka_heap_t *ka_tls_heap __attribute__((tls_model("initial-exec"))) = KA_HEAP_EMPTY;
__thread bool ka_tls_exited __attribute__((tls_model("initial-exec")));	/* destructor ran */

/* The heap of threads past their destructor, under its lock; in no
 * registry, so never handed to a thread as its own. */
static ka_heap_t ka_heap_exited_heap = {
	.direct = { [0 ... KA_DIRECT_WORDS] = KA_PAGE_EMPTY },
	.purge_next = UINT64_MAX,
	.node = -1,
	.in_use = true,
};
const ka_heap_t *const ka_heap_exited = &ka_heap_exited_heap;
static ka_lock_t ka_heap_exited_lock;

static pthread_key_t ka_key;

/* The key's destructor: the thread is exiting. */
static void ka_thread_done(void *arg)
{
	ka_heap_t *heap = arg;
	bool last = ka_heap_release(heap);

	if (heap == ka_tls_heap)
		ka_tls_heap = KA_HEAP_EMPTY;
	ka_tls_exited = true;
	if (last) {
		ka_purge_thread_retire();
		/* Parked heaps, now or by threads that saw it running since
		 * (heap.c): nothing would come for them. */
		ka_heaps_unpark(0, true, NULL);
	} else {
		ka_purge_thread_left_alone();	/* purge.c: the last after all? */
	}
}

void ka_thread_exit_init(void)
{
	int err = pthread_key_create(&ka_key, ka_thread_done);

	if (err)
		ka_fatal_error("pthread_key_create", err);
}

/* A thread's first slow path: its heap (want, parked, if it can be:
 * heap.c), and its exit armed. */
ka_heap_t *ka_heap_thread_init(ka_heap_t *want)
{
	ka_process_init();
	ka_heap_t *gone;
	ka_heap_t *heap = ka_heap_acquire(want, &gone);
	if (!heap)
		return NULL;
	ka_tls_heap = heap;
	ka_heap_mark_thread(heap);
	ka_late_init();
	pthread_setspecific(ka_key, heap);
	ka_heap_drain_delayed(heap);
	if (gone)	/* a thread gone without its destructor (above) */
		ka_heap_release_gone(gone);
	/* A second thread: what it leaves when it exits only the purge thread
	 * collects (purge.c), and this is a point where it may start. */
	if (!ka_heap_is_main(heap))
		ka_purge_thread_start();
	ka_purge_look_for_vanished();	/* gone again at once? (purge.c) */
	return heap;
}

/*
 * malloc for a thread past its destructor (see above): the shared heap,
 * made the thread's own for the call, so that the generic path, the
 * delayed frees it drains and the pages it collects all see their owner.
 */
void *ka_malloc_exited(size_t size)
{
	ka_lock(&ka_heap_exited_lock);
	ka_tls_heap = &ka_heap_exited_heap;
	void *p = ka_malloc_generic(&ka_heap_exited_heap, size);
	ka_tls_heap = KA_HEAP_EMPTY;
	ka_unlock(&ka_heap_exited_lock);
	return p;
}

void ka_heap_exited_fork_lock(bool lock)
{
	ka_lock_fork(&ka_heap_exited_lock, lock);
}
