/* SPDX-License-Identifier: MIT */
/*
 * Heaps: one per thread, found through initial-exec TLS (thread.c), so the
 * fast path takes no lock and no call.  This file is the registry of heaps
 * and what a heap does as a whole: it is handed out (the static one first,
 * so the first allocation needs no allocation), handed back, and drains
 * the remote frees that were delayed for it.  Heaps are never freed, only
 * reused, so a pointer to one stays valid for the remote frees that hold
 * it.  A thread owns the segments whose heap is its heap (ka_heap_owns).
 *
 * Parked heaps.  A heap handed back at thread exit keeps its segments and
 * pages, parked, for a decay: the next thread to start takes it whole, as
 * glibc hands an exited thread's arena to the next.  Threads that come and
 * go (a server's per-request threads, Larson) then find their pages ready,
 * where abandoning them made the exiting thread walk every page, give the
 * free ones to the kernel, and the next thread reclaim the segment and
 * fault the same memory in again (Documentation/benchmarks.md).  A heap
 * parked longer than a decay gives its memory back like any free memory:
 * the purge thread takes it, as its owner for the while, and abandons its
 * segments (ka_heaps_unpark); so does malloc_trim, at once.  Only while
 * the purge thread runs, and never the last heap: else nothing would come
 * for them.  Remote frees into a parked heap's pages wait in them, or on
 * its delayed list, for its next owner, as they would for a busy one.
 */
#include <pthread.h>
#include <signal.h>

#include "internal.h"

const ka_page_t ka_page_empty = { .flags = KA_PAGE_UNUSED };
const ka_heap_t ka_heap_empty = {
	.direct = { [0 ... KA_DIRECT_WORDS] = KA_PAGE_EMPTY },
	.purge_next = UINT64_MAX,
};

static ka_heap_t ka_heap_main;		/* the bootstrap heap */
static ka_heap_t *ka_heaps;		/* every heap ever made */
static size_t ka_heap_count;
static size_t ka_heaps_busy;		/* of which a thread's now */
static _Atomic size_t ka_heaps_parked;	/* and parked; peeked without the lock */
/*
 * Of the heaps parked no more, those giving their memory back now: for
 * ka_stats() they are parked until they have.  Else it showed none parked
 * while their pages were still in use, a state between the two that a
 * reader waiting for the memory to go back took for the end (a test failed
 * 4 runs in 20 in a TCG guest).  Under the lock.
 */
static size_t ka_heaps_giving_back;
/* In a fork child, the gone threads' heaps caught changing (fork.c),
 * those an earlier fork caught included (they stay marked).  Under the
 * lock. */
static size_t ka_heaps_caught;
static ka_lock_t ka_heaps_lock;
/* Held while parked heaps give their memory back, so that malloc_trim
 * returns only once a give-back the purge thread began has ended (but in
 * the fork window, where the forking thread's lock calls pass). */
static ka_lock_t ka_heaps_unpark_lock;
/* The thread gives a parked heap back, as its owner (ka_heaps_unpark):
 * ka_tls_heap is not its own, so it starts no purge thread meanwhile. */
__thread bool ka_tls_heap_borrowed __attribute__((tls_model("initial-exec")));

/* heap's memory is on node (-1: no NUMA), or it has none; the lock held. */
static bool ka_heap_on_node(const ka_heap_t *heap, int node)
{
	const ka_segment_t *seg = heap->segs_avail ? heap->segs_avail : heap->segs_full;

	return !seg || ka_regions[seg->region].os.node == node;
}

/* h is parked no more; the lock held. */
static void ka_heap_unpark_locked(ka_heap_t *h)
{
	h->parked_at = 0;
	atomic_fetch_sub_explicit(&ka_heaps_parked, 1, KA_RELAXED);
}

/* The heap on node parked last (newest: a thread's next heap, its pages
 * the warmest) or first (its memory for another: the coldest), taken off
 * the parked ones; NULL if none.  The lock held. */
static ka_heap_t *ka_heap_unpark_one(int node, bool newest)
{
	ka_heap_t *best = NULL;

	if (!atomic_load_explicit(&ka_heaps_parked, KA_RELAXED))
		return NULL;
	for (ka_heap_t *h = ka_heaps; h; h = h->next_heap)
		if (h->parked_at && ka_heap_on_node(h, node) &&
		    (!best || (h->parked_at > best->parked_at) == newest))
			best = h;
	if (best)
		ka_heap_unpark_locked(best);
	return best;
}

/*
 * A heap in use whose thread is gone, taken off its thread; the lock held.
 * The calling thread's ka_tls_heap lies where that thread's lay: glibc
 * gave the caller the gone thread's stack, and its thread-local storage
 * with it, and no two live threads share one.  Only a thread whose first
 * malloc came in glibc's last destructor round leaves such a heap: its
 * key's destructor never runs (thread.c).  Found so, it goes back when
 * the next thread starts on that stack.  glibc keeps about 40 MiB of
 * exited threads' stacks (a joinable thread's once it is joined) and
 * hands one to a new thread that asks for at most as much and at least a
 * quarter of it; a stack it unmapped is not found again, and neither is
 * its heap here: 100 such threads at once, then 350 ordinary ones, left
 * 91 heaps (an outside review's count), which the purge thread now finds
 * (ka_heaps_release_vanished, below).  One scan of the heaps per thread
 * start.
 */
static ka_heap_t *ka_heap_find_gone(void)
{
	for (ka_heap_t *h = ka_heaps; h; h = h->next_heap) {
		if (h->in_use && h->thread_tls == (void *)&ka_tls_heap) {
			h->thread_tls = NULL;
			return h;
		}
	}
	return NULL;
}

/* A heap for the calling thread, or NULL: want if it is parked on the
 * thread's node (free.c: the heap of the first block the thread frees),
 * else the newest parked one, else a fresh one.  With one, *gone is a
 * gone thread's heap for the caller to release (ka_heap_release_gone) or
 * NULL.  The caller makes it its own (ka_tls_heap) before it says where
 * that lies (ka_heap_mark_thread): a signal handler's malloc in between
 * finds the heap its thread's, not a gone one. */
ka_heap_t *ka_heap_acquire(ka_heap_t *want, ka_heap_t **gone)
{
	int node = ka_numa_node();
	ka_heap_t *heap = NULL;

	ka_lock(&ka_heaps_lock);
	if (want && want->parked_at && ka_heap_on_node(want, node)) {
		ka_heap_unpark_locked(want);
		heap = want;
	}
	if (!heap)
		heap = ka_heap_unpark_one(node, true);
	if (heap) {		/* whole: its segments, pages and queues */
		*gone = ka_heap_find_gone();
		heap->in_use = true;
		ka_heaps_busy++;
		ka_unlock(&ka_heaps_lock);
		ka_foreign_init(heap);	/* emptied when parked */
		return heap;
	}
	for (heap = ka_heaps; heap; heap = heap->next_heap)
		if (!heap->in_use && !heap->parked_at)
			break;
	if (!heap) {
		heap = ka_heap_count == 0 ? &ka_heap_main : ka_os_meta_alloc(sizeof *heap);
		if (!heap) {
			ka_unlock(&ka_heaps_lock);
			*gone = NULL;
			return NULL;
		}
		heap->next_heap = ka_heaps;
		ka_heaps = heap;
		ka_heap_count++;
	}
	*gone = ka_heap_find_gone();
	heap->in_use = true;
	ka_heaps_busy++;
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
	ka_foreign_init(heap);
	return heap;
}

bool ka_heap_is_main(const ka_heap_t *heap)
{
	return heap == &ka_heap_main;
}

/* Give a heap's memory back for others: its segments become abandoned. */
static void ka_heap_give_back(ka_heap_t *heap)
{
	ka_heap_change_begin(heap);
	ka_foreign_flush(heap, true);
	ka_heap_drain_delayed(heap);
	ka_heap_release_pages(heap);	/* clears the full tags */
	ka_heap_drain_delayed(heap);	/* frees that saw a tag before */
	ka_segments_abandon(heap);
	heap->purge_next = UINT64_MAX;
	ka_heap_change_end(heap);
}

/* heap is no thread's now, and another may take it once the lock goes:
 * the caller's ka_tls_heap lets go of it too; ka_heaps_lock held. */
static void ka_heap_unuse(ka_heap_t *heap)
{
	heap->in_use = false;
	heap->thread_tls = NULL;
	if (ka_tls_heap == heap)
		ka_tls_heap = KA_HEAP_EMPTY;
}

/*
 * A thread's heap goes back at its exit: parked (see above) or its memory
 * given back.  True if no thread has a heap any more (thread.c: the last
 * one exits, and the parked heaps must give their memory back).
 */
bool ka_heap_release(ka_heap_t *heap)
{
	bool park = ka_purge_thread_running() && (heap->segs_avail || heap->segs_full);
	uint64_t now = ka_os_now_ms() | 1;	/* never "not parked" */
	bool last;

	if (park)
		ka_foreign_flush(heap, true);	/* others' blocks: not its to keep */
	else
		ka_heap_give_back(heap);
	ka_lock(&ka_heaps_lock);
	heap->thread_tls = NULL;	/* its thread is no longer on it */
	last = --ka_heaps_busy == 0;
	if (park && !last) {
		heap->parked_at = now;
		atomic_fetch_add_explicit(&ka_heaps_parked, 1, KA_RELAXED);
	}
	if (!park || !last)
		ka_heap_unuse(heap);	/* the last parks not: still ours, below */
	ka_unlock(&ka_heaps_lock);
	if (park && !last) {
		/* The purge thread may have stopped since the look above
		 * (privileges.c, namespace.c): then nothing comes for it, and
		 * it goes back now. */
		ka_purge_request(now + atomic_load_explicit(&ka_decay_ms, KA_RELAXED));
		if (!ka_purge_thread_running())
			ka_heaps_unpark(0, true, NULL);
		return false;
	}
	if (park) {
		ka_heap_give_back(heap);
		ka_lock(&ka_heaps_lock);
		ka_heap_unuse(heap);
		ka_unlock(&ka_heaps_lock);
	}
	/* Its purge may be the one due to give cached huge regions back, and
	 * no other heap is sure to run one: they go now, as its dirty slices.
	 * Not for a parked heap: the purge thread runs, and does that. */
	ka_huge_cache_purge(0, true, NULL);
	return last;
}

/* heap is the calling thread's (ka_tls_heap): where to find it again. */
void ka_heap_mark_thread(ka_heap_t *heap)
{
	int pid = getpid(), tid = ka_os_tid();

	ka_lock(&ka_heaps_lock);
	heap->thread_tls = &ka_tls_heap;
	heap->pid = pid;
	heap->tid = tid;
	ka_unlock(&ka_heaps_lock);
}

/*
 * A gone thread's heap (ka_heap_find_gone) goes back as at that thread's
 * exit, parked or given back, the calling thread -- a new one, which has
 * a heap of its own, so this is never the last, or the purge thread
 * (below) -- acting as its owner for the while.  True if it was the last
 * heap in use, as ka_heap_release() says.
 * Signals wait meanwhile: a handler's malloc would take the borrowed heap
 * for the thread's own, or, once it is let go, take the thread for a new
 * one.  A rare path: two system calls are nothing to it.
 */
bool ka_heap_release_gone(ka_heap_t *gone)
{
	ka_heap_t *self = ka_tls_heap;
	sigset_t all, old;
	bool last;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ka_tls_heap = gone;
	ka_tls_heap_borrowed = true;
	last = ka_heap_release(gone);
	ka_tls_heap_borrowed = false;
	ka_tls_heap = self;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return last;
}

/*
 * The purge thread's look for heaps whose thread is gone without its
 * destructor (thread.c: a first malloc in glibc's last destructor round)
 * where no new thread came to take its place: the kernel no longer has a
 * thread of that id in this process, so the heap goes back as
 * ka_heap_release_gone() lets a heap go that a new thread found.  Else
 * its memory stayed out of use for good.  A heap marked in another
 * process (a fork that ran no atfork handler: _Fork(), a raw clone; a
 * vfork child's first malloc on its parent's thread-local storage) is
 * left alone: its ids mean nothing here.  The registry only grows at its
 * head and heaps are never freed, so the walk lets go of the lock around
 * each system call.  If that was the last heap in use, the purge thread
 * looks whether it is alone, as after the last thread's exit (thread.c).
 *
 * TSan does not see the kernel's "no such thread" as ordering the gone
 * thread's last writes to its heap before these: run.sh runs TSan without
 * the purge thread.  A tid the kernel gave again, to a thread that then
 * marked the same heap between the system call and the check, would pass
 * the check; a new thread takes a heap no thread is on, so not this one.
 */
void ka_heaps_release_vanished(void)
{
	int self = getpid();
	bool last = false;

	ka_lock(&ka_heaps_lock);
	ka_heap_t *h = ka_heaps;
	ka_unlock(&ka_heaps_lock);

	for (; h; h = h->next_heap) {
		ka_lock(&ka_heaps_lock);
		int tid = h->in_use && h->thread_tls && h->pid == self ? h->tid : 0;
		ka_unlock(&ka_heaps_lock);
		if (!tid || !ka_os_thread_gone(self, tid))
			continue;
		ka_lock(&ka_heaps_lock);
		bool gone = h->in_use && h->thread_tls && h->pid == self && h->tid == tid;
		if (gone)
			h->thread_tls = NULL;	/* no new thread finds it now */
		ka_unlock(&ka_heaps_lock);
		if (gone)
			last |= ka_heap_release_gone(h);
	}
	if (last)
		ka_purge_thread_left_alone();
}

/*
 * A parked heap, taken off the parked ones (in use, so no thread is
 * handed it meanwhile), gives its memory back, the caller acting as its
 * owner for the while (ka_heap_owns); ka_heaps_unpark_lock held.
 */
static void ka_heap_give_back_borrowed(ka_heap_t *due)
{
	ka_heap_t *self = ka_tls_heap;

	ka_tls_heap = due;
	ka_tls_heap_borrowed = true;
	/* A trim it missed parked would force its purges, and with them the
	 * huge cache's; it gives everything back anyway. */
	due->purge_epoch = atomic_load_explicit(&ka_purge_epoch, KA_RELAXED);
	ka_heap_give_back(due);
	ka_tls_heap_borrowed = false;
	ka_tls_heap = self;
	ka_lock(&ka_heaps_lock);
	due->in_use = false;
	ka_heaps_giving_back--;
	ka_unlock(&ka_heaps_lock);
}

/*
 * Parked heaps give their memory back: those parked a decay ago by now,
 * or all of them (waiting for one the purge thread is giving back); *next
 * (if not NULL) becomes when the next one is due.  The caller acts as each
 * one's owner for the while (ka_heap_owns): it is in use, so no thread is
 * handed it meanwhile.
 */
void ka_heaps_unpark(uint64_t now, bool all, uint64_t *next)
{
	uint64_t decay = atomic_load_explicit(&ka_decay_ms, KA_RELAXED);

	/* No peek at ka_heaps_parked without the lock: a heap parked as the
	 * purge thread begins its pass is seen here, or its thread's request
	 * (after the lock) sees the pass's reset deadline and wakes it. */
	ka_lock(&ka_heaps_unpark_lock);
	for (;;) {
		ka_heap_t *due = NULL;

		ka_lock(&ka_heaps_lock);
		for (ka_heap_t *h = ka_heaps; h && !due; h = h->next_heap) {
			if (!h->parked_at)
				continue;
			if (all || h->parked_at + decay <= now)
				due = h;
			else if (next && h->parked_at + decay < *next)
				*next = h->parked_at + decay;
		}
		if (due) {
			ka_heap_unpark_locked(due);
			due->in_use = true;
			ka_heaps_giving_back++;
		}
		ka_unlock(&ka_heaps_lock);
		if (!due)
			break;
		ka_heap_give_back_borrowed(due);
	}
	ka_unlock(&ka_heaps_unpark_lock);
}

/*
 * A thread needs room and its own segments and the abandoned ones have
 * none (segment.c): rather than a new segment, the heap parked longest
 * on its node gives its memory back now, its segments abandoned for the
 * caller to reclaim, as a new segment evicts cached huge regions first
 * (huge.c).  Without it, threads that exit early in a phase of many
 * (retain's churn, 16) kept their free memory parked while the others
 * took new segments: peak RSS 1.15x what it was.  True if one went back.
 */
bool ka_heaps_unpark_for_room(int node)
{
	if (!atomic_load_explicit(&ka_heaps_parked, KA_RELAXED) || ka_tls_heap_borrowed ||
	    ka_in_fork_window())
		return false;
	ka_lock(&ka_heaps_unpark_lock);
	ka_lock(&ka_heaps_lock);
	ka_heap_t *due = ka_heap_unpark_one(node, false);
	if (due) {
		due->in_use = true;
		ka_heaps_giving_back++;
	}
	ka_unlock(&ka_heaps_lock);
	if (due)
		ka_heap_give_back_borrowed(due);
	ka_unlock(&ka_heaps_unpark_lock);
	return due != NULL;
}

/*
 * Free again the blocks of a list taken whole, each with its key off, as
 * the calling thread sees it now: the delayed remote frees (as their
 * owner), a heap's kept blocks (foreign.c).  A thread with no heap takes
 * none here (free.c, ka_free_adopts): ka_heaps_drain_idle() holds the
 * lock that taking one wants, and these are not the program's frees.
 */
__thread bool ka_tls_freeing_again __attribute__((tls_model("initial-exec")));

void ka_blocks_free_again(ka_block_t *b)
{
	bool again = ka_tls_freeing_again;

	ka_tls_freeing_again = true;
	while (b) {
		ka_block_t *next = b->next;
		b->key = 0;
		ka_free(b);
		b = next;
	}
	ka_tls_freeing_again = again;
}

/* Remote frees that hit full pages: free them again, now as the owner. */
void ka_heap_drain_delayed(ka_heap_t *heap)
{
	if (!atomic_load_explicit(&heap->delayed, KA_RELAXED))
		return;
	ka_blocks_free_again(atomic_exchange_explicit(&heap->delayed, NULL,
						     memory_order_acquire));
}

/* Remote frees that raced with their heap's thread exiting. */
void ka_heaps_drain_idle(void)
{
	ka_lock(&ka_heaps_lock);
	for (ka_heap_t *h = ka_heaps; h; h = h->next_heap)
		if (!h->in_use && !h->parked_at && atomic_load_explicit(&h->delayed, KA_RELAXED))
			ka_blocks_free_again(atomic_exchange(&h->delayed, NULL));
	ka_unlock(&ka_heaps_lock);
}

/* In a fork child (fork.c): every heap but the caller's goes back unused. */
void ka_heaps_unuse_all_but(const ka_heap_t *self)
{
	ka_lock(&ka_heaps_lock);
	ka_heaps_busy = 0;
	ka_heaps_parked = 0;
	ka_heaps_giving_back = 0;
	ka_heaps_caught = 0;
	/* The purge thread, not here, may have held it giving a heap back:
	 * that heap is one of the gone ones now. */
	atomic_store_explicit(&ka_heaps_unpark_lock.v, 0, KA_RELAXED);
	for (ka_heap_t *h = ka_heaps; h; h = h->next_heap) {
		if (h == self) {
			ka_heaps_busy++;
			h->pid = getpid();	/* the child's own */
			h->tid = ka_os_tid();
			continue;
		}
		h->thread_tls = NULL;
		h->parked_at = 0;	/* its segments are abandoned */
		/* Caught halfway through changing its pages: nobody's, for
		 * good, and its memory with it (fork.c). */
		h->in_use = h->changing != 0;
		ka_heaps_caught += h->changing != 0;
	}
	ka_unlock(&ka_heaps_lock);
}

/* In a fork child, once the gone threads' segments are abandoned: the
 * blocks their heaps kept of others go back to their pages (foreign.c),
 * those of heaps caught changing too. */
void ka_heaps_flush_foreign_unused(void)
{
	ka_lock(&ka_heaps_lock);
	for (ka_heap_t *h = ka_heaps; h; h = h->next_heap)
		if (!h->in_use || h->changing) {	/* or caught changing (fork.c) */
			/* Busy in the parent (its thread was in a GC or flush):
			 * nobody is here to finish it, and the lists are whole. */
			h->foreign_busy = false;
			ka_foreign_flush(h, true);
		}
	ka_unlock(&ka_heaps_lock);
}

void ka_heaps_fork_lock(bool lock)
{
	ka_lock_fork(&ka_heaps_lock, lock);
}

void ka_heaps_stats(struct ka_stats *st)
{
	ka_lock(&ka_heaps_lock);
	st->heaps = ka_heap_count;
	st->heaps_in_use = ka_heaps_busy;	/* not one being given back */
	st->heaps_parked = ka_heaps_parked + ka_heaps_giving_back;
	st->heaps_caught = ka_heaps_caught;
	ka_unlock(&ka_heaps_lock);
}
