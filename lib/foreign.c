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
 * that class's cap by one: a thread that frees another's blocks and never
 * allocates their class (a consumer) keeps a few, not its whole room.  On
 * retain's churn phase, peak RSS against glibc's went from 1.9x to 0.85x
 * with 512 KiB (1.2x with 256 KiB); benchmarks.md has the figures.  The
 * price: a thread that stops allocating keeps what it kept, up to its
 * room, until it allocates again, exits or calls malloc_trim().
 *
 * What stays true.  The block stays its page's: counted in page->used,
 * so the page neither empties nor gives the block's memory back while it
 * is kept, and ownership (ka_heap_owns) does not move.  It carries the
 * freed key, so a second free of it is caught as any double free is.  A
 * block the page has not threaded yet as this thread sees it is not kept:
 * only its owner can tell a never handed out block (an invalid free) from
 * one threaded since, and kept it would be handed out twice.  With several
 * NUMA nodes, only blocks of the calling thread's node are kept.  Blocks
 * of abandoned segments are not kept: the purge thread is waiting to give
 * those segments back.
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

bool ka_foreign_keep(ka_heap_t *heap, ka_segment_t *seg, ka_page_t *page, ka_block_t *b)
{
	size_t size = page->block_size;
	unsigned cls = page->cls;

	if (heap->foreign_room < size || cls >= KA_FOREIGN_CLASSES ||
	    heap->foreign_count[cls] >= heap->foreign_cap[cls] ||
	    !atomic_load_explicit(&seg->heap, KA_RELAXED) || !ka_page_threaded_seen(page, b) ||
	    (ka_numa_nodes() && ka_block_region_node(b) != ka_numa_node()))
		return false;
	heap->foreign_room -= size;
	heap->foreign_count[cls]++;
	b->next = heap->foreign[cls];
	__atomic_store_n(&heap->foreign[cls], b, __ATOMIC_RELEASE);
	return true;
}

/*
 * Free every kept block again, to its page: as the owner if the calling
 * thread's heap has come to own the segment meanwhile (a reclaim), else
 * as a remote free.  Called by the heap's thread as it exits (done: the
 * heap keeps nothing more) or trims, and in a forked child for a gone
 * thread's heap.  Nothing is kept again meanwhile: the caller's room and
 * the heap's are 0 until the end.
 */
void ka_foreign_flush(ka_heap_t *heap, bool done)
{
	ka_heap_t *self = ka_tls_heap;
	size_t self_room = self->foreign_room;
	size_t room = heap->foreign_room;

	if (self != KA_HEAP_EMPTY)
		self->foreign_room = 0;
	heap->foreign_room = 0;
	for (unsigned cls = 0; cls < KA_FOREIGN_CLASSES; cls++) {
		ka_block_t *b = heap->foreign[cls];

		heap->foreign[cls] = NULL;
		heap->foreign_count[cls] = 0;
		while (b) {
			ka_block_t *next = b->next;

			room += ka_class_size[cls];
			b->key = 0;
			ka_free(b);
			b = next;
		}
	}
	if (self != KA_HEAP_EMPTY && self != heap)
		self->foreign_room = self_room;
	heap->foreign_room = done ? 0 : room;
}
