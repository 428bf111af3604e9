/* SPDX-License-Identifier: MIT */
/*
 * free: mask the pointer to its segment, index the page descriptor, and
 * push the block on a free list -- local_free without atomics when this
 * thread owns the segment, the page's xthread list with one CAS when not.
 *
 * Checks that cost next to nothing: the segment map says whether the
 * pointer is ours at all, the page must be in use, the pointer must start
 * a block (one multiply, which also numbers the block), and a freed block
 * carries a key (its address xor a secret) that a second free finds.  A
 * block past those the page has threaded was never handed out: the owner
 * rejects it here, another thread pushes it and the owner rejects it when
 * it collects (page.c).  A huge block in the huge cache is marked, so
 * freeing it again is caught too.
 */
#include "internal.h"

static KA_NOINLINE void ka_free_remote(ka_segment_t *seg, ka_page_t *page, ka_block_t *b)
{
	uintptr_t old = atomic_load_explicit(&page->xthread, KA_RELAXED);

	for (;;) {
		if (old & KA_XT_DELAYED) {
			/* The page is full: tell its heap through the delayed list. */
			ka_heap_t *heap = atomic_load_explicit(&seg->heap, memory_order_acquire);
			if (heap) {
				ka_block_t *top = atomic_load_explicit(&heap->delayed, KA_RELAXED);
				do {
					b->next = top;
				} while (!atomic_compare_exchange_weak_explicit(&heap->delayed, &top, b,
						memory_order_release, KA_RELAXED));
				return;
			}
			old = atomic_load_explicit(&page->xthread, KA_RELAXED);
			continue;
		}
		b->next = (ka_block_t *)old;
		if (atomic_compare_exchange_weak_explicit(&page->xthread, &old, (uintptr_t)b,
							  memory_order_release, KA_RELAXED))
			return;
	}
}

/* b is block number index of page (ka_page_block). */
static inline void ka_free_block(ka_segment_t *seg, ka_page_t *page, ka_block_t *b, uint64_t index)
{
	ka_heap_t *heap = ka_tls_heap;
	uintptr_t key = ka_block_key(b);

	if (KA_UNLIKELY(b->key == key))
		ka_fatal("free(): double free detected", b);
	b->key = key;
	if (KA_LIKELY(atomic_load_explicit(&seg->heap, KA_RELAXED) == heap)) {
		if (KA_UNLIKELY(index >= page->capacity))	/* never handed out */
			ka_fatal("free(): invalid pointer", b);
		b->next = page->local_free;
		page->local_free = b;
		if (KA_UNLIKELY(--page->used == 0 || page->in_full))
			ka_page_after_free(heap, page);
	} else {
		ka_free_remote(seg, page, b);
	}
}

KA_NOINLINE void ka_free_generic(void *p)
{
	if (!p)
		return;
	ka_segment_t *seg = ka_segment_lookup(p);
	if (!seg)
		ka_fatal("free(): invalid pointer", p);
	ka_page_t *page = ka_page_of(seg, p);
	unsigned flags = atomic_load_explicit(&page->flags, KA_RELAXED);
	if (flags & KA_PAGE_HUGE) {
		if (p != seg->huge_block)
			ka_fatal("free(): invalid pointer", p);
		if (flags & KA_PAGE_CACHED)
			ka_fatal("free(): double free detected", p);
		ka_huge_free(seg);
		return;
	}
	if (flags & KA_PAGE_UNUSED)	/* ours, but no live page: freed before? */
		ka_fatal("free(): double free or invalid pointer", p);
	uint64_t index;
	if (!ka_page_block(page, p, &index))
		ka_fatal("free(): invalid pointer", p);
	if (flags & KA_PAGE_DEBUG) {
		/* Junk before the block is pushed: once on a list, its owner
		 * may check it.  A second free is reported before it scribbles. */
		ka_block_t *b = p;
		if (b->key == ka_block_key(b))
			ka_fatal("free(): double free detected", p);
		ka_debug_junk_block(b, page->block_size);
	}
	ka_free_block(seg, page, p, index);
}

void ka_free(void *p)
{
	uintptr_t g = (uintptr_t)p >> KA_SEGMENT_SHIFT;

	if (KA_UNLIKELY(g >= KA_SEGMAP_SIZE ||
			atomic_load_explicit(&ka_segmap[g], KA_RELAXED) != 1)) {
		ka_free_generic(p);
		return;
	}
	ka_segment_t *seg = (ka_segment_t *)((uintptr_t)p & ~KA_SEGMENT_MASK);
	ka_page_t *page = ka_page_of(seg, p);
	uint64_t index;
	if (KA_UNLIKELY(atomic_load_explicit(&page->flags, KA_RELAXED) != 0 ||
			!ka_page_block(page, p, &index))) {
		ka_free_generic(p);
		return;
	}
	ka_free_block(seg, page, p, index);
}
