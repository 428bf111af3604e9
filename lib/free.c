/* SPDX-License-Identifier: MIT */
/*
 * free: mask the pointer to its segment, index the slice's descriptor, and
 * push the block on its page's free list -- without atomics when this
 * thread owns the segment (ka_heap_owns(), the one test of ownership);
 * when not, kept by the calling thread's heap for its own next malloc of
 * the class if it has room (foreign.c; the fast path only), else on the
 * page's xthread list with one CAS.  An owner's free
 * that empties a page which is not its class's only one gives the page's
 * span back to its segment at once (ka_page_emptied(), page.c), so that
 * the decay can return it with no further call; the test is one branch
 * on both conditions together, since a branch per condition, in the
 * batches of a typical program, mispredicts (bench/simple.c ran 1.31x
 * slower with the count tested alone).
 *
 * Checks that cost next to nothing: the segment map says whether the
 * pointer is ours at all, the page must be in use, the pointer must start
 * a block (one multiply), and a freed block carries a key (its address
 * xor a secret) that a second free finds.  A block past what the page has
 * threaded was never handed out: whoever frees it rejects it here (the
 * owner also rejects one it collects from other threads' frees, page.c).  A
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
 * Whatever the fast path does not handle -- a flag on the page (a span
 * with one large block, a slice outside any span, a full page freed into
 * by its owner, a huge block, KALLOC_DEBUG, free
 * pages given back inside it), a check that fails -- goes to
 * ka_free_generic(), which looks again from the start and reports.
 * realloc() and malloc_usable_size() check a pointer with the same two
 * halves (ka_block_live, ka_block_check), so a freed block passed to
 * them is reported as a double free is.
 */
#include <stdio.h>

#include "internal.h"

static KA_NOINLINE void ka_free_remote(ka_segment_t *seg, ka_page_t *page, ka_block_t *b)
{
	uintptr_t old = atomic_load_explicit(&page->xthread, KA_RELAXED);
	/* Read before the push: once pushed, the block may be collected and
	 * the segment gone back. */
	bool abandoned = !atomic_load_explicit(&seg->heap, KA_RELAXED);

	for (;;) {
		if (old & KA_XT_DELAYED) {
			/* The page is full: the first remote free takes the tag
			 * off and tells the heap through the delayed list; the
			 * ones after it go on xthread, for the owner to collect
			 * once that block has moved the page back to its class
			 * queue.  One block per full page makes the round trip
			 * (mimalloc's delayed free does the same), not every one:
			 * a consumer freeing a producer's full pages sent 82 % of
			 * its frees through it, each checked twice (benchmarks.md,
			 * "Why the gaps"). */
			if (!atomic_compare_exchange_weak_explicit(&page->xthread, &old,
					old & ~KA_XT_DELAYED, KA_RELAXED, KA_RELAXED))
				continue;
			old &= ~KA_XT_DELAYED;
			ka_heap_t *heap = atomic_load_explicit(&seg->heap, memory_order_acquire);
			if (heap) {
				ka_block_t *top = atomic_load_explicit(&heap->delayed, KA_RELAXED);
				do {
					b->next = top;
				} while (!atomic_compare_exchange_weak_explicit(&heap->delayed, &top, b,
						memory_order_release, KA_RELAXED));
				return;
			}
			/* Abandoned meanwhile: whoever reclaims the segment
			 * collects xthread. */
			continue;
		}
		b->next = (ka_block_t *)old;
		if (atomic_compare_exchange_weak_explicit(&page->xthread, &old, (uintptr_t)b,
							  memory_order_release, KA_RELAXED))
			break;
	}
	/* Nobody's segment: the purge thread collects it on the decay (abandon.c). */
	if (KA_UNLIKELY(abandoned))
		ka_abandoned_block_freed();
}

/*
 * A thread with no heap yet frees a block of a parked heap: it takes that
 * heap for its own, and the free is its owner's.  A thread that goes on
 * with the blocks an exited one left (a server's next worker, Larson)
 * then frees them into its own pages, where the parked heap that its
 * first malloc took was the newest one, as likely another thread's, and
 * every free of the blocks it inherited went to another heap
 * (Documentation/benchmarks.md, "Thread churn: the heap of the blocks
 * freed").  Not past the thread's destructor (thread.c), nor for blocks
 * the allocator frees again (heap.c), nor in fork's handlers (fork.c).
 * True if the calling thread owns seg now.
 */
static bool ka_free_adopts(ka_segment_t *seg)
{
	if (ka_tls_heap != KA_HEAP_EMPTY || ka_tls_exited || ka_tls_freeing_again ||
	    ka_in_fork_window())
		return false;
	ka_heap_t *owner = atomic_load_explicit(&seg->heap, KA_RELAXED);

	if (!owner || !atomic_load_explicit(&owner->parked_at, KA_RELAXED))
		return false;
	return ka_heap_thread_init(owner) && ka_heap_owns(ka_tls_heap, seg);
}

/* The owner's free of b, a block of page (flags as read): back on its
 * page's free list, and the page where that leaves it. */
static void ka_free_owned(ka_page_t *page, ka_block_t *b, unsigned flags)
{
	ka_heap_t *heap = ka_tls_heap;
	if (KA_UNLIKELY(ka_debug))	/* internal.h */
		ka_heap_change_begin(heap);
	b->next = page->free;
	__atomic_signal_fence(__ATOMIC_RELEASE);	/* link, then head: internal.h */
	page->free = b;
	ka_page_set_used(page, page->used - 1u);
	if (flags & KA_PAGE_FULL)
		ka_page_unfull(heap, page);
	if ((flags & KA_PAGE_LARGE) && page->used == 0) {
		ka_page_retire(heap, page);
		ka_heap_maybe_purge(heap);	/* threads that only free purge too */
	} else if (page->used == 0) {
		ka_page_emptied(page);
	}
	if (KA_UNLIKELY(ka_debug))
		ka_heap_change_end(heap);
}

/* Another heap's block: kept for this thread's reuse if it has room
 * (foreign.c), else a remote free. */
static KA_NOINLINE void ka_free_not_owner(ka_segment_t *seg, ka_page_t *page, ka_block_t *b)
{
	if (KA_UNLIKELY(ka_free_adopts(seg))) {
		ka_free_owned(page, b, atomic_load_explicit(&page->flags, KA_RELAXED));
		return;
	}
	if (!ka_foreign_keep(ka_tls_heap, seg, page, b))
		ka_free_remote(seg, page, b);
}

/* Aborts: "liballoc: who(): what 0x...". */
static void __attribute__((noreturn)) ka_block_fatal(const char *who, const char *what, const void *p)
{
	char buf[96];

	snprintf(buf, sizeof buf, "%s(): %s", who, what);
	ka_fatal(buf, p);
}

/*
 * The one check of a pointer the program hands back, for free(),
 * realloc(), malloc_usable_size() and the sized frees: p must be a live
 * block.  Anything else aborts naming who was called and the pointer,
 * with the same words whoever was called (liballoc.rst, "Checks").
 * Returns p's page -- for a huge block the one flagged KA_PAGE_HUGE --
 * with its segment, its flags as read, and whether the calling thread's
 * heap owns the segment.  ka_block_live() (internal.h) is its fast half.
 */
ka_page_t *ka_block_check(const char *who, void *p, struct ka_block_where *at)
{
	ka_segment_t *seg = ka_segment_lookup(p);
	if (!seg)
		ka_block_fatal(who, "invalid pointer", p);
	ka_page_t *page = ka_page_of(seg, p);
	unsigned flags = atomic_load_explicit(&page->flags, KA_RELAXED);
	at->seg = seg;
	at->flags = flags;
	at->owner = false;
	if (flags & KA_PAGE_HUGE) {
		if (p != seg->huge_block)
			ka_block_fatal(who, "invalid pointer", p);
		if (flags & KA_PAGE_CACHED)
			ka_block_fatal(who, "double free detected", p);
		return page;
	}
	if (flags & KA_PAGE_UNUSED)	/* ours, but no live page: freed before? */
		ka_block_fatal(who, "double free or invalid pointer", p);
	if (!ka_page_divides(page, p) ||
	    (uintptr_t)p + page->block_size > (uintptr_t)page->start + ka_page_span_bytes(page))
		ka_block_fatal(who, "invalid pointer", p);
	ka_block_t *b = p;
	if (b->key == ka_block_key(b))
		ka_block_fatal(who, "double free detected", p);
	bool owner = ka_heap_owns(ka_tls_heap, seg);
	/* never handed out (what a block passed on was, the receiver sees:
	 * ka_block_live) */
	if (owner ? !ka_page_threaded(page, p) : !ka_page_threaded_seen(page, p))
		ka_block_fatal(who, "invalid pointer", p);
	/* free, and its 4 KiB page went back: the key reads zero (page.c) */
	if (owner && (flags & KA_PAGE_RELEASED) && ka_page_block_released(page, p))
		ka_block_fatal(who, "double free detected", p);
	at->owner = owner;
	return page;
}

KA_NOINLINE void ka_free_generic(void *p)
{
	if (!p)
		return;
	struct ka_block_where at;
	ka_page_t *page = ka_block_check("free", p, &at);
	ka_segment_t *seg = at.seg;
	unsigned flags = at.flags;
	if (flags & KA_PAGE_HUGE) {
		ka_huge_free(seg);
		return;
	}
	ka_block_t *b = p;
	/* Junk before the block is pushed: once on a list, its owner may
	 * check it. */
	if (flags & KA_PAGE_DEBUG)
		ka_debug_junk_block(b, page->block_size);
	b->key = ka_block_key(b);
	if (!at.owner && !ka_free_adopts(seg)) {
		ka_free_remote(seg, page, b);
		return;
	}
	ka_free_owned(page, b, flags);
}

void ka_free(void *p)
{
	bool owner;
	ka_page_t *page = ka_block_live(p, &owner);

	if (KA_UNLIKELY(!page)) {
		ka_free_generic(p);
		return;
	}
	ka_block_t *b = p;
	b->key = ka_block_key(b);
	if (KA_UNLIKELY(!owner)) {
		ka_free_not_owner(ka_segment_of(p), page, b);
		return;
	}
	b->next = page->free;
	__atomic_signal_fence(__ATOMIC_RELEASE);	/* link, then head: internal.h */
	page->free = b;
	/* Emptied, and not its class's only page (no neighbour in the queue):
	 * back to its segment (page.c).  One test, without a branch per
	 * condition: the only page of a class, emptied once per batch by a
	 * program that allocates and frees in batches, stays predictable. */
	unsigned left = page->used - 1u;
	ka_page_set_used(page, left);
	if (KA_UNLIKELY((left == 0) & (((uintptr_t)page->next | (uintptr_t)page->prev) != 0))) {
		ka_page_emptied(page);
		return;
	}
	if (page->block_size > KA_DIRECT_MAX)
		ka_page_to_front(page);
}

/* The usable size of live block p, checked as free() checks it. */
size_t ka_block_usable(const char *who, void *p)
{
	bool owner;
	ka_page_t *page = ka_block_live(p, &owner);

	if (KA_LIKELY(page))
		return page->block_size;
	struct ka_block_where at;
	page = ka_block_check(who, p, &at);
	return at.flags & KA_PAGE_HUGE ? at.seg->huge_usable : page->block_size;
}

/*
 * C23's sized frees: size (and align) must be what the block was asked
 * with.  KALLOC_DEBUG checks that they could have been (debug.c); without
 * it they are free().
 */
void ka_free_sized(void *p, size_t size)
{
	if (KA_UNLIKELY(ka_debug) && p)
		ka_debug_check_sized("free_sized", p, 0, size);
	ka_free(p);
}

void ka_free_aligned_sized(void *p, size_t align, size_t size)
{
	if (KA_UNLIKELY(ka_debug) && p)
		ka_debug_check_sized("free_aligned_sized", p, align, size);
	ka_free(p);
}
