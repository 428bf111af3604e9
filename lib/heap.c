/* SPDX-License-Identifier: MIT */
/*
 * Heaps: one per thread, found through initial-exec TLS (thread.c), so the
 * fast path takes no lock and no call.  This file is the registry of heaps
 * and what a heap does as a whole: it is handed out (the static one first,
 * so the first allocation needs no allocation), handed back, and drains
 * the remote frees that were delayed for it.  Heaps are never freed, only
 * reused, so a pointer to one stays valid for the remote frees that hold
 * it.  A thread owns the segments whose heap is its heap (ka_heap_owns); a
 * heap handed back has abandoned its segments first.
 */
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
static ka_lock_t ka_heaps_lock;

ka_heap_t *ka_heap_acquire(void)
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

/*
 * Give a heap's memory back for others: its segments become abandoned.
 * True if no thread has a heap any more (thread.c: the last one exits).
 */
bool ka_heap_release(ka_heap_t *heap)
{
	bool last;

	ka_foreign_flush(heap, true);
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
	last = --ka_heaps_busy == 0;
	ka_unlock(&ka_heaps_lock);
	return last;
}

/*
 * Free again the blocks of a list taken whole, each with its key off, as
 * the calling thread sees it now: the delayed remote frees (as their
 * owner), a heap's kept blocks (foreign.c).
 */
void ka_blocks_free_again(ka_block_t *b)
{
	while (b) {
		ka_block_t *next = b->next;
		b->key = 0;
		ka_free(b);
		b = next;
	}
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
		if (!h->in_use && atomic_load_explicit(&h->delayed, KA_RELAXED))
			ka_blocks_free_again(atomic_exchange(&h->delayed, NULL));
	ka_unlock(&ka_heaps_lock);
}

/* In a fork child (fork.c): every heap but the caller's goes back unused. */
void ka_heaps_unuse_all_but(const ka_heap_t *self)
{
	ka_lock(&ka_heaps_lock);
	ka_heaps_busy = 0;
	for (ka_heap_t *h = ka_heaps; h; h = h->next_heap) {
		if (h != self)
			h->in_use = false;
		ka_heaps_busy += h->in_use;
	}
	ka_unlock(&ka_heaps_lock);
}

/* In a fork child, once the gone threads' segments are abandoned: the
 * blocks their heaps kept of others go back to their pages (foreign.c). */
void ka_heaps_flush_foreign_unused(void)
{
	ka_lock(&ka_heaps_lock);
	for (ka_heap_t *h = ka_heaps; h; h = h->next_heap)
		if (!h->in_use) {
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
	for (ka_heap_t *h = ka_heaps; h; h = h->next_heap)
		st->heaps_in_use += h->in_use;
	ka_unlock(&ka_heaps_lock);
}
