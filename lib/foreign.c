/* SPDX-License-Identifier: MIT */
/*
 * Foreign blocks: blocks of other heaps' pages that this thread freed,
 * kept in its heap, per class, for its own next mallocs, up to
 * KA_FOREIGN_BYTES -- the way jemalloc's and tcmalloc's thread caches
 * take any block of a class, whoever's page it is in.
 *
 * Why.  A remote free goes to the block's page, where only its owner
 * takes it back, when it next allocates of that class.  With more threads
 * than CPUs the running thread frees mostly blocks of threads that are not
 * running, while it takes fresh memory for its own mallocs: on retain's
 * churn (16 threads on 2 CPUs) two thirds of the peak were blocks freed
 * and not yet collected (benchmarks.md, "Where the churn peak comes
 * from").  Kept here, such a block serves the freeing thread's next
 * malloc of its class, still in the cache, with no atomic on either side.
 *
 * How much.  At most KA_FOREIGN_BYTES per heap, and per class at most
 * KA_FOREIGN_CAP0 blocks until the thread reuses one, each reuse raising
 * that class's cap by one; every KA_FOREIGN_GC_FREES frees of others'
 * blocks, each class gives back half of what the thread did not need and
 * its cap comes down (ka_foreign_gc).  So a thread that frees another's
 * blocks and never allocates their class (a consumer) keeps a few, and
 * one that stopped reusing a class gives it back as it goes on freeing.
 * Measured on retain's churn phase (16 threads), peak RSS 0.70x glibc's
 * where it was 1.44x; larson's (2 threads) 1.19x where it was 1.23x
 * (benchmarks.md, "Other threads' blocks").  The price: a thread that
 * stops calling malloc and free keeps what it kept, up to its room, until
 * it calls them again, exits or calls malloc_trim() -- glibc's tcache
 * keeps 7 blocks per size up to 1 KiB per thread in the same way, of any
 * arena.  A malloc_trim() gives back the calling thread's kept blocks at
 * once, another thread's at its next purge (its next malloc that misses
 * its pages, or its free that empties a page).  Only free()'s fast path
 * keeps: the generic one (pages flagged, KALLOC_DEBUG) frees remotely, so
 * with KALLOC_DEBUG nothing is kept and ka_foreign_take() needs none of
 * its checks.
 *
 * What stays true.  The block stays its page's: counted in page->used,
 * so the page neither empties nor gives the block's memory back while it
 * is kept, and ownership (ka_heap_owns) does not move.  It carries the
 * freed key, so a second free of it is caught as any double free is.  A
 * block the page has not threaded yet as this thread sees it is not kept:
 * only its owner can tell a never handed out block (an invalid free) from
 * one threaded since, and kept it would be handed out twice.  With several
 * NUMA nodes, only blocks of the calling thread's node are kept.  Blocks
 * of segments no heap owns (abandoned), or whose heap is parked (heap.c),
 * are not kept: the purge thread is waiting to give those back (kept,
 * retain's churn phase kept 20 MiB of pages for 0.4 MiB of blocks after
 * its threads exited); a block kept before its owner exited keeps its
 * page until it goes back.
 *
 * Who touches the lists.  Only the heap's thread, except in a forked
 * child, which frees a gone thread's kept blocks (fork.c): a push
 * publishes the head with a release store after the link, so the child,
 * whose copy of memory follows each thread's order of stores, never sees
 * a head whose link is not written.  A heap past its thread (released)
 * keeps nothing: its blocks go back to their pages first; the empty heap
 * and the heap of threads past their destructor have no room.
 */
#include "internal.h"

/*
 * Kept blocks go back through ka_blocks_free_again() (heap.c): as the
 * owner if the calling thread's heap has come to own the segment
 * meanwhile (a reclaim), else as a remote free.  Such a free may empty a
 * page and make its heap purge, and a purge that malloc_trim() asked for
 * flushes the kept blocks (purge.c): the heap is busy meanwhile, which
 * keeps nothing and flushes nothing, and every list was made whole before
 * the first free.  A review found the nested flush: it freed the block the
 * outer loop held next, twice.
 */

/* A heap handed to a thread: nothing kept, room for KA_FOREIGN_BYTES. */
void ka_foreign_init(ka_heap_t *heap)
{
	memset(heap->foreign, 0, sizeof heap->foreign);	/* flushed when released */
	memset(heap->foreign_count, 0, sizeof heap->foreign_count);
	memset(heap->foreign_low, 0, sizeof heap->foreign_low);
	for (unsigned cls = 0; cls < KA_FOREIGN_CLASSES; cls++)
		heap->foreign_cap[cls] = KA_FOREIGN_CAP0;
	heap->foreign_frees = 0;
	heap->foreign_on = true;
	heap->foreign_busy = false;
	heap->foreign_room = KA_FOREIGN_BYTES;
}

/* Up to *n blocks off the head of class cls's list, NULL-ended; *n
 * becomes how many. */
static ka_block_t *ka_foreign_detach(ka_heap_t *heap, unsigned cls, unsigned *n)
{
	ka_block_t *head = heap->foreign[cls], *b = head;
	unsigned i = 1;

	if (!head || !*n) {
		*n = 0;
		return NULL;
	}
	for (; i < *n && b->next; i++)
		b = b->next;
	heap->foreign[cls] = b->next;
	b->next = NULL;
	*n = i;
	return head;
}

/*
 * Every KA_FOREIGN_GC_FREES frees of others' blocks, kept or not (so
 * that a thread that only frees them still comes here), each class gives
 * back half of what it never went below since the last time (its
 * low-water mark: blocks the thread did not need), and its cap comes down
 * to what it keeps, so that a thread keeps what its mallocs take, not its
 * whole room (jemalloc's tcache GC does the same).
 */
static void ka_foreign_gc(ka_heap_t *heap)
{
	heap->foreign_busy = true;
	heap->foreign_frees = 0;
	for (unsigned cls = 0; cls < KA_FOREIGN_CLASSES; cls++) {
		unsigned low = heap->foreign_low[cls];

		if (low) {
			unsigned n = (low + 1) / 2;
			ka_block_t *chain = ka_foreign_detach(heap, cls, &n);

			heap->foreign_count[cls] -= n;
			heap->foreign_cap[cls] = heap->foreign_count[cls] > KA_FOREIGN_CAP0 ?
						 heap->foreign_count[cls] : KA_FOREIGN_CAP0;
			heap->foreign_room += (size_t)n * ka_class_size[cls];
			ka_blocks_free_again(chain);
		}
		heap->foreign_low[cls] = heap->foreign_count[cls];
	}
	heap->foreign_busy = false;
}

bool ka_foreign_keep(ka_heap_t *heap, ka_segment_t *seg, ka_page_t *page, ka_block_t *b)
{
	ka_heap_t *owner = atomic_load_explicit(&seg->heap, KA_RELAXED);
	size_t size = page->block_size;
	unsigned cls = page->cls;

	/* Not the empty heap nor the exited threads', nor during a flush. */
	if (!heap->foreign_on || heap->foreign_busy)
		return false;
	if (KA_UNLIKELY(++heap->foreign_frees >= KA_FOREIGN_GC_FREES))
		ka_foreign_gc(heap);
	if (heap->foreign_room < size || cls >= KA_FOREIGN_CLASSES ||
	    heap->foreign_count[cls] >= heap->foreign_cap[cls] ||
	    !owner || atomic_load_explicit(&owner->parked_at, KA_RELAXED) ||
	    !ka_page_threaded_seen(page, b) ||
	    (ka_numa_nodes() && ka_block_region_node(b) != ka_numa_node()))
		return false;
	heap->foreign_room -= size;
	heap->foreign_count[cls]++;
	b->next = heap->foreign[cls];
	__atomic_store_n(&heap->foreign[cls], b, __ATOMIC_RELEASE);
	return true;
}

/*
 * Every kept block back to its page.  Called by the heap's thread as it
 * exits (done: the heap keeps nothing more) or trims, and in a forked
 * child for a gone thread's heap, whose count may be one off (the
 * thread stopped between the link and the count): the lists are taken
 * whole, to their ends.  A gone thread stopped halfway through its own
 * flush, or between the key and the link, leaves those blocks lost in
 * the child: a leak, as a remote free cut off by the fork is (one busy
 * in the parent is made idle first: heap.c).  The calling thread's heap
 * is busy too meanwhile, so that it keeps none of them.  A heap already
 * busy (a flush or GC below on the stack) is left alone; a trim that
 * asked for the flush then waits for the heap's next purge (purge.c).
 */
void ka_foreign_flush(ka_heap_t *heap, bool done)
{
	ka_heap_t *self = ka_tls_heap;
	bool self_busy = self != KA_HEAP_EMPTY && self != heap;

	if (heap->foreign_busy)
		return;
	heap->foreign_busy = true;
	if (self_busy)
		self->foreign_busy = true;
	for (unsigned cls = 0; cls < KA_FOREIGN_CLASSES; cls++) {
		ka_block_t *chain = heap->foreign[cls];

		heap->foreign[cls] = NULL;
		heap->foreign_count[cls] = heap->foreign_low[cls] = 0;
		ka_blocks_free_again(chain);
	}
	if (done)
		heap->foreign_on = false;
	heap->foreign_room = heap->foreign_on ? KA_FOREIGN_BYTES : 0;
	heap->foreign_busy = false;
	if (self_busy)
		self->foreign_busy = false;
}
