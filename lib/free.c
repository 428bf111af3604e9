/* SPDX-License-Identifier: MIT */
/*
 * free: mask the pointer to its segment, index the slice's descriptor, and
 * push the block on its page's free list -- without atomics when this
 * thread owns the segment (ka_heap_owns(), the one test of ownership),
 * on the page's xthread list with one CAS when not.  The owner's push is
 * all the fast path does: a page that empties stays where it is, in its
 * class queue, and goes back to its segment when the heap next sweeps
 * (page.c).  Testing for the empty page on each
 * free cost a branch that the batches of a typical program make
 * unpredictable (a quarter of the frees in bench/simple.c).
 *
 * Checks that cost next to nothing: the segment map says whether the
 * pointer is ours at all, the page must be in use, the pointer must start
 * a block (one multiply), and a freed block carries a key (its address
 * xor a secret) that a second free finds.  A block past what the page has
 * threaded was never handed out: the owner rejects it here, another
 * thread pushes it and the owner rejects it when it collects (page.c).  A
 * huge block in the huge cache is marked, so freeing it again is caught
 * too.
 *
 * A block over 1 KiB freed by its owner moves its page to the front of
 * its class queue, so that the next malloc of the class hands out that
 * block, still in the cache, rather than a cold one of another page
 * (tcmalloc's per-class free lists get this for free): bench/realloc,
 * which copies into every new block, ran 5 % faster.  Smaller classes
 * are served from heap->direct[], and their blocks are too small for the
 * queue work to pay.
 *
 * Whatever the fast path does not handle -- a flag on the page (the
 * first slice of a span with one large block, a span's later slices, a
 * full page, a huge block, KALLOC_DEBUG, free pages given back inside
 * it), a check that fails -- goes to
 * ka_free_generic(), which looks again from the start and reports.
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
	if (!ka_page_divides(page, p))
		ka_fatal("free(): invalid pointer", p);
	ka_block_t *b = p;
	uintptr_t key = ka_block_key(b);
	if (b->key == key)
		ka_fatal("free(): double free detected", p);
	ka_heap_t *heap = ka_tls_heap;
	bool owner = ka_heap_owns(heap, seg);
	if (owner && !ka_page_threaded(page, p))	/* never handed out */
		ka_fatal("free(): invalid pointer", p);
	/* free, and its 4 KiB page went back: the key reads zero (page.c) */
	if (owner && (flags & KA_PAGE_RELEASED) && ka_page_block_released(page, p))
		ka_fatal("free(): double free detected", p);
	/* Junk before the block is pushed: once on a list, its owner may
	 * check it. */
	if (flags & KA_PAGE_DEBUG)
		ka_debug_junk_block(b, page->block_size);
	b->key = key;
	if (!owner) {
		ka_free_remote(seg, page, b);
		return;
	}
	b->next = page->free;
	page->free = b;
	page->used--;
	if (flags & KA_PAGE_FULL)
		ka_page_unfull(heap, page);
	if ((flags & KA_PAGE_LARGE) && page->used == 0) {
		ka_page_retire(heap, page);
		ka_heap_maybe_purge(heap);	/* threads that only free purge too */
	}
}

void ka_free(void *p)
{
	ka_page_t *page = ka_plain_page(p);

	if (KA_UNLIKELY(!page))
		goto generic;
	ka_segment_t *seg = ka_segment_of(p);
	ka_block_t *b = p;
	uintptr_t key = ka_block_key(b);
	if (KA_UNLIKELY(b->key == key))		/* a double free: reported there */
		goto generic;
	if (KA_UNLIKELY(!ka_heap_owns(ka_tls_heap, seg))) {
		b->key = key;
		ka_free_remote(seg, page, b);
		return;
	}
	if (KA_UNLIKELY(!ka_page_threaded(page, p)))
		goto generic;
	b->key = key;
	b->next = page->free;
	page->free = b;
	page->used--;
	if (page->block_size > KA_DIRECT_MAX)
		ka_page_to_front(page);
	return;
generic:
	ka_free_generic(p);
}
