/* SPDX-License-Identifier: MIT */
/*
 * Allocation entry points, malloc's family (the aligned one is in
 * alloc-aligned.c).  The fast path: one TLS load, one table load,
 * pop the page's free list.  Everything else is ka_malloc_generic(), which
 * is also where KALLOC_DEBUG checks a block before handing it out
 * (debug.c): with it on, the fast path always misses.
 */
#include "internal.h"

static inline void *ka_page_pop(ka_page_t *page, ka_block_t *b)
{
	page->free = b->next;
	ka_page_set_used(page, page->used + 1u);
	b->key = 0;
	return b;
}

/* The generic path's pop, where KALLOC_DEBUG checks the block first. */
static inline void *ka_page_pop_generic(ka_page_t *page)
{
	ka_block_t *b = page->free;

	if (KA_UNLIKELY(ka_debug)) {
		ka_debug_check_block(page, b);
		ka_page_pop(page, b);
		memset(b, KA_DEBUG_FRESH, page->block_size);
		return b;
	}
	return ka_page_pop(page, b);
}

/* Huge blocks need the process initialised: the thread gets its heap
 * (one past its destructor needs none: it is initialised). */
void *ka_huge_malloc(size_t size, size_t align, bool zero)
{
	if (KA_UNLIKELY(ka_tls_heap == KA_HEAP_EMPTY) && !ka_tls_exited && !ka_heap_thread_init(NULL)) {
		errno = ENOMEM;
		return NULL;
	}
	return ka_huge_alloc(size, align, zero);
}

void *ka_malloc(size_t size)
{
	ka_heap_t *heap = ka_tls_heap;

	if (KA_LIKELY(size <= KA_DIRECT_MAX)) {
		ka_page_t *page = heap->direct[(size + 7) >> 3];
		ka_block_t *b = page->free;
		if (KA_LIKELY(b))
			return ka_page_pop(page, b);
	}
	return ka_malloc_generic(heap, size);
}

/* malloc past the class queue's first page (ka_malloc_generic), for a
 * thread with a heap of its own: the heap's slow work (page.c).  With
 * KALLOC_DEBUG that pop is here, its block checked first. */
static inline void *ka_malloc_heap(ka_heap_t *heap, size_t size)
{
	if (KA_UNLIKELY(ka_debug) && size <= KA_LARGE_MAX) {
		ka_page_t *page = heap->queues[ka_size_class(size)].first;
		if (page && page->free)
			return ka_page_pop_generic(page);
	}
	ka_heap_drain_delayed(heap);
	ka_heap_maybe_purge(heap);
	if (size <= KA_FOREIGN_MAX) {
		/* Another heap's block this thread freed: memory already in
		 * use, before collecting or threading more (foreign.c).  After
		 * the two calls above, so that a heap served from here still
		 * drains its delayed frees and purges on its tick. */
		void *p = ka_foreign_take(heap, ka_size_class(size));
		if (p)
			return p;
	}
	if (size > KA_LARGE_MAX)
		return ka_huge_alloc(size, 0, false);

	unsigned cls = ka_size_class(size);
	ka_page_t *page = heap->queues[cls].first;
	if (!page || !page->free)
		page = ka_page_find(heap, cls);
	if (!page) {
		errno = ENOMEM;
		return NULL;
	}
	return ka_page_pop_generic(page);
}

/* Out of line, so that the pop before it keeps a frame as small as the
 * fast path's (callgrind: bench/frag ran 2 % more instructions).  Marked
 * whole with KALLOC_DEBUG (internal.h). */
static KA_NOINLINE void *ka_malloc_slow(ka_heap_t *heap, size_t size)
{
	if (KA_LIKELY(!ka_debug))
		return ka_malloc_heap(heap, size);
	ka_heap_change_begin(heap);
	void *p = ka_malloc_heap(heap, size);
	ka_heap_change_end(heap);
	return p;
}

/*
 * A thread on the empty heap gets its own first -- or, past its
 * thread-specific-data destructor, which gave its heap back, the shared
 * heap of such threads (thread.c) -- and nothing is popped from the empty
 * heap, shared and read-only.
 */
KA_NOINLINE void *ka_malloc_generic(ka_heap_t *heap, size_t size)
{
	if (KA_UNLIKELY(heap == KA_HEAP_EMPTY)) {
		if (ka_tls_exited)
			return ka_malloc_exited(size);
		heap = ka_heap_thread_init(NULL);
		if (!heap) {
			errno = ENOMEM;
			return NULL;
		}
	}
	if (KA_LIKELY(size <= KA_LARGE_MAX) && !ka_debug) {
		/* Sizes past direct[]: the class queue's first page. */
		ka_page_t *page = heap->queues[ka_size_class(size)].first;
		if (page && page->free)
			return ka_page_pop(page, page->free);
	}
	return ka_malloc_slow(heap, size);
}

void *ka_calloc(size_t n, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	if (total > KA_LARGE_MAX)	/* zeroed only if reused: fresh ones read zero */
		return ka_huge_malloc(total, 0, true);
	/*
	 * A large block (one per page) of a span carved from slices that read
	 * zero is left unwritten but for its free-list link, as glibc leaves
	 * fresh memory: a sparse table calloc()ed costs neither the time to
	 * write it nor the memory the writes would fault in.
	 */
	bool large = total > KA_MEDIUM_MAX;

	if (large)
		ka_tls_zeroed_block = NULL;
	void *p = ka_malloc(total);
	if (p && large && p == ka_tls_zeroed_block) {
		ka_tls_zeroed_block = NULL;
		memset(p, 0, sizeof(ka_block_t));
	} else if (p) {
		memset(p, 0, total);
	}
	return p;
}

size_t ka_malloc_usable_size(void *p)
{
	return p ? ka_block_usable("malloc_usable_size", p) : 0;
}

void *ka_realloc(void *p, size_t size)
{
	if (!p)
		return ka_malloc(size);
	if (size == 0) {		/* glibc: free and return NULL */
		ka_free(p);
		return NULL;
	}
	/* Checked as free() checks it: a freed block is reported, not reused. */
	size_t old = ka_block_usable("realloc", p);
	if (size <= old && size >= old / 2)
		return p;
	if (size > KA_LARGE_MAX && old > KA_PAGE_SIZE) {
		ka_segment_t *seg = ka_segment_lookup(p);
		if (seg->kind == KA_SEG_HUGE) {
			/* in place, or its region moved whole (huge.c) */
			if (ka_huge_resize(seg, size))
				return p;
			void *q = size > old ? ka_huge_move(seg, size) : NULL;
			if (q)
				return q;
		}
	}
	void *q = ka_malloc(size);
	if (!q)
		return NULL;
	memcpy(q, p, old < size ? old : size);
	ka_free(p);
	return q;
}

void *ka_reallocarray(void *p, size_t n, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return ka_realloc(p, total);
}
