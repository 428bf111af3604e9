/* SPDX-License-Identifier: MIT */
/*
 * Pages: a span holding blocks of one size class, with two free lists
 * (mimalloc's free-list sharding):
 *
 *   free        malloc pops here, the owner's free pushes (owner only)
 *   xthread     other threads' frees, pushed with one CAS, moved onto
 *               free when free runs dry
 *
 * The owner's frees go straight back on free, not on a list of their own
 * (mimalloc's local_free) swapped in when free runs dry: a block freed is
 * the next one handed out, so a program that frees and allocates in
 * batches keeps reusing the same few cache lines instead of cycling
 * through every block the page has threaded.
 *
 * A page whose lists are both empty leaves its class queue for the heap's
 * full queue, marked KA_PAGE_FULL, and tags xthread KA_XT_DELAYED: the
 * first remote free then takes the tag off and goes to the heap's delayed
 * list instead, so the owner learns the page has room again without
 * scanning full pages (the later ones go on xthread, collected once the
 * page is back in its class queue), and the owner's own frees into it
 * take free()'s generic path, which moves it back.
 * Blocks are threaded onto free lazily, at most 4 KiB worth at a time, so
 * a fresh page is touched as it is used.
 *
 * Retiring pages.  An owner's free() that empties a page which is not its
 * class's only one gives the span back to its segment at once
 * (ka_page_emptied).  Other empty pages -- a class's only page, pages
 * that remote frees emptied, which the owner sees only when it collects
 * them -- stay in their class queue, still the page the next malloc of
 * the class pops from, until the heap sweeps: on the purge tick
 * (purge.c), when a span is wanted and the segments have no room
 * (ka_heap_sweep), on malloc_trim and at thread exit.  A page of one
 * large block goes back as soon as that block is freed.
 */
#include "internal.h"

/*
 * heap->direct[] mirrors the first page of each class up to 1 KiB; with
 * KALLOC_DEBUG it stays empty, so that malloc takes the generic path,
 * where blocks are checked (debug.c).
 */
static void ka_direct_update(ka_heap_t *heap, unsigned cls)
{
	if (ka_class_size[cls] > KA_DIRECT_MAX || ka_debug)
		return;
	ka_page_t *first = heap->queues[cls].first;
	size_t lo = cls == 0 ? 0 : ka_class_size[cls - 1] / 8 + 1;
	size_t hi = ka_class_size[cls] / 8;
	for (size_t w = lo; w <= hi; w++)
		heap->direct[w] = first ? first : KA_PAGE_EMPTY;
}

static bool ka_is_class_queue(ka_heap_t *heap, ka_page_queue_t *q)
{
	return q != &heap->full;
}

void ka_page_queue_remove(ka_heap_t *heap, ka_page_queue_t *q, ka_page_t *page)
{
	bool was_first = q->first == page;

	if (page->prev)
		page->prev->next = page->next;
	else
		q->first = page->next;
	if (page->next)
		page->next->prev = page->prev;
	else
		q->last = page->prev;
	page->next = page->prev = NULL;
	if (was_first && ka_is_class_queue(heap, q))
		ka_direct_update(heap, page->cls);
}

static void ka_page_queue_push_front(ka_heap_t *heap, ka_page_queue_t *q, ka_page_t *page)
{
	page->prev = NULL;
	page->next = q->first;
	if (q->first)
		q->first->prev = page;
	else
		q->last = page;
	q->first = page;
	if (ka_is_class_queue(heap, q))
		ka_direct_update(heap, page->cls);
}

/* The owner freed a block over 1 KiB into page: the next malloc of its
 * class takes that block, still in the cache (see free.c). */
void ka_page_to_front(ka_page_t *page)
{
	ka_heap_t *heap = ka_tls_heap;
	ka_page_queue_t *q = &heap->queues[page->cls];

	if (q->first == page)
		return;
	ka_page_queue_remove(heap, q, page);
	ka_page_queue_push_front(heap, q, page);
}

void ka_page_queue_push_back(ka_heap_t *heap, ka_page_queue_t *q, ka_page_t *page)
{
	page->next = NULL;
	page->prev = q->last;
	if (q->last)
		q->last->next = page;
	else
		q->first = page;
	q->last = page;
	if (q->first == page && ka_is_class_queue(heap, q))
		ka_direct_update(heap, page->cls);
}

/* Move remote frees onto free (owner only). */
void ka_page_collect(ka_page_t *page)
{
	uintptr_t xt = atomic_load_explicit(&page->xthread, KA_RELAXED);

	if (xt & ~KA_XT_DELAYED) {
		xt = atomic_exchange_explicit(&page->xthread, xt & KA_XT_DELAYED,
					      memory_order_acquire);
		ka_block_t *list = (ka_block_t *)(xt & ~KA_XT_DELAYED), *tail = list;
		uint32_t n = 1;
		for (;;) {
			/* Another thread freed a block never handed out. */
			if (KA_UNLIKELY(!ka_page_threaded(page, tail)))
				ka_fatal("free(): invalid pointer", tail);
			if (!tail->next)
				break;
			tail = tail->next;
			n++;
		}
		tail->next = page->free;
		page->free = list;
		ka_page_set_used(page, page->used - n);
	}
}

static bool ka_page_can_extend(const ka_page_t *page)
{
	return page->threaded + page->block_size <= ka_page_span_bytes(page);
}

/*
 * Thread more blocks onto free.  Each gets its key, as a freed block does:
 * freeing one that was never handed out is then caught like a double free.
 */
static void ka_page_extend(ka_page_t *page)
{
	size_t bs = page->block_size;
	uint32_t n = (uint32_t)(KA_PAGE_SIZE / bs);
	uint32_t left = (uint32_t)((ka_page_span_bytes(page) - page->threaded) / bs);

	/* Threading a block writes its first words: blocks of 4 KiB and more
	 * one at a time, or a 64 KiB block in use would make three more
	 * resident (with the device, whole 64 KiB fault-around units). */
	if (n < 1)
		n = 1;
	if (n > left)
		n = left;
	uint8_t *first = page->start + page->threaded;
	for (uint32_t i = 0; i < n; i++) {
		ka_block_t *b = (ka_block_t *)(first + i * bs);
		b->next = i + 1 < n ? (ka_block_t *)((uint8_t *)b + bs) : page->free;
		b->key = ka_block_key(b);
		if (KA_UNLIKELY(ka_debug))
			ka_debug_junk_block(b, bs);
	}
	page->free = (ka_block_t *)first;
	/* Read by other threads' frees too (ka_foreign_keep). */
	__atomic_store_n(&page->threaded, page->threaded + n * (uint32_t)bs, __ATOMIC_RELAXED);
}

__thread void *ka_tls_zeroed_block __attribute__((tls_model("initial-exec")));

static ka_page_t *ka_page_fresh(ka_heap_t *heap, unsigned cls)
{
	unsigned slices = ka_class_slices(cls);
	bool zeroed;
	ka_page_t *page = ka_span_alloc(heap, slices, &zeroed);

	if (!page)
		return NULL;
	uint32_t bs = ka_class_size[cls];
	page->block_size = bs;
	page->div_magic = UINT64_MAX / bs + 1;
	page->cls = (uint8_t)cls;
	__atomic_store_n(&page->threaded, 0, __ATOMIC_RELAXED);
	page->used = 0;
	page->free = NULL;
	atomic_store_explicit(&page->xthread, 0, KA_RELAXED);
	atomic_store_explicit(&page->flags, (ka_debug ? KA_PAGE_DEBUG : 0) |
			      (bs > ka_page_span_bytes(page) / 2 ? KA_PAGE_LARGE : 0),
			      memory_order_release);
	ka_page_extend(page);	/* unmarked: a fork child frees a page with none out */
	/*
	 * One block, all zero but its free-list link (KALLOC_DEBUG: junk).
	 * Set or cleared at every large page made: only the newest page at
	 * an address may speak for it.
	 */
	if (bs > ka_page_span_bytes(page) / 2)
		ka_tls_zeroed_block = zeroed && !ka_debug ? page->start : NULL;
	ka_page_queue_push_front(heap, &heap->queues[cls], page);
	heap->pages++;
	if (heap->purge_next == UINT64_MAX)
		heap->purge_next = ka_purge_tick(heap);
	return page;
}

/* Flags of a page only its owner changes (fresh pages and their span are
 * its own); others read them, to pick free()'s path. */
static void ka_page_set_flag(ka_page_t *page, unsigned flag, bool on)
{
	unsigned f = atomic_load_explicit(&page->flags, KA_RELAXED);

	atomic_store_explicit(&page->flags, on ? f | flag : f & ~flag, KA_RELAXED);
}

/* A page with nothing free goes to the full queue, unless a remote free won. */
static bool ka_page_try_full(ka_heap_t *heap, ka_page_t *page)
{
	uintptr_t expected = 0;

	if (!atomic_compare_exchange_strong(&page->xthread, &expected, KA_XT_DELAYED))
		return false;
	ka_page_queue_remove(heap, &heap->queues[page->cls], page);
	ka_page_queue_push_back(heap, &heap->full, page);
	ka_page_set_flag(page, KA_PAGE_FULL, true);
	return true;
}

/*
 * Free 4 KiB pages inside live spans.  A page of small blocks that is
 * mostly free stays, since a few blocks in it live on, and so does every
 * byte of it: a program that allocated a lot and kept one block in ten
 * keeps all of its memory.  On malloc_trim(0) (purge.c), as glibc's does
 * inside its heap, the heap looks at its pages less than half in use: a
 * 4 KiB page that only free blocks touch goes back to the kernel, and
 * those blocks leave the free list (their links would read zero) until
 * the list runs dry, when ka_page_find() threads them again and they
 * fault back in as they are used.  Each slice's descriptor marks its
 * released 4 KiB pages (released, 16 bits for 64 KiB), and the page is
 * flagged KA_PAGE_RELEASED meanwhile, so that free() takes the generic
 * path, where the owner catches a second free of such a block (its key
 * reads zero now).  Not on the purge tick: a page the program is cycling
 * through would give back and fault in the same pages over and over
 * (bench/realloc -s 4k: twice the faults, 7 % slower), and the descriptor
 * has no room left to age them.  Blocks
 * under 256 bytes rarely leave a whole 4 KiB page free, and pages of one
 * large block go back whole when it is freed, so neither is looked at.
 * Not with KALLOC_DEBUG (junk must stay junk), nor where the kernel gives
 * back more than 4 KiB at a time.
 */
#define KA_RELEASE_MIN_BLOCK	256
#define KA_RELEASE_MAX_BLOCKS	(KA_SLICE_SIZE / KA_RELEASE_MIN_BLOCK)
#define KA_OS_PAGES_MAX		(KA_MEDIUM_SLICES * KA_SLICE_SIZE / KA_PAGE_SIZE)

_Static_assert(KA_MEDIUM_SLICES * KA_SLICE_SIZE / (KA_SMALL_MAX + 1) <= KA_RELEASE_MAX_BLOCKS,
	       "a medium page has no more blocks than a small one of 256 B");
_Static_assert(KA_SLICE_SIZE / KA_PAGE_SIZE == 16, "released has a bit per 4 KiB of a slice");

/* Is the 4 KiB page at off (from page->start) released? */
static bool ka_page_os_released(const ka_page_t *page, size_t off)
{
	return (page[off >> KA_SLICE_SHIFT].released >> ((off & (KA_SLICE_SIZE - 1)) / KA_PAGE_SIZE)) & 1;
}

/* Does block i of page overlap a released 4 KiB page? */
static bool ka_block_released(const ka_page_t *page, size_t i)
{
	size_t bs = page->block_size;

	for (size_t off = i * bs & ~(KA_PAGE_SIZE - 1); off < (i + 1) * bs; off += KA_PAGE_SIZE)
		if (ka_page_os_released(page, off))
			return true;
	return false;
}

/* Is block p of page (which divides) in a released 4 KiB page?  Owner only. */
bool ka_page_block_released(const ka_page_t *page, const void *p)
{
	return ka_block_released(page, (size_t)((const uint8_t *)p - page->start) / page->block_size);
}

/* The free list ran dry: the blocks of the released pages (all free, on
 * no list) go back on it in address order; they fault in as used. */
static void ka_page_unrelease(ka_page_t *page)
{
	size_t n = page->threaded / page->block_size;
	ka_block_t *head = page->free;

	for (size_t i = n; i-- > 0;) {
		if (!ka_block_released(page, i))
			continue;
		ka_block_t *b = (ka_block_t *)(page->start + i * page->block_size);
		b->next = head;
		b->key = ka_block_key(b);
		head = b;
	}
	page->free = head;
	for (unsigned i = 0; i < page->slice_count; i++)
		page[i].released = 0;
	ka_page_set_flag(page, KA_PAGE_RELEASED, false);
}

/* Give back the 4 KiB pages of page that only its free blocks touch. */
static void ka_page_release_free(ka_page_t *page)
{
	size_t bs = page->block_size, n = page->threaded / bs;
	uint64_t freeb[KA_RELEASE_MAX_BLOCKS / 64] = { 0 };
	uint64_t rel[KA_OS_PAGES_MAX / 64] = { 0 };
	bool any = false;

	if (bs < KA_RELEASE_MIN_BLOCK || !page->free || (size_t)page->used * bs * 2 > page->threaded ||
	    (atomic_load_explicit(&page->flags, KA_RELAXED) & (KA_PAGE_LARGE | KA_PAGE_DEBUG)))
		return;
	for (ka_block_t *b = page->free; b; b = b->next) {
		size_t i = (size_t)((uint8_t *)b - page->start) / bs;
		if (i >= n)	/* not this page's: leave the page to free()'s checks */
			return;
		freeb[i / 64] |= 1UL << (i % 64);
	}
	/* whole 4 KiB pages under threaded: the last block of one is below n */
	for (size_t j = 0; (j + 1) * KA_PAGE_SIZE <= page->threaded; j++) {
		size_t first = j * KA_PAGE_SIZE / bs, last = ((j + 1) * KA_PAGE_SIZE - 1) / bs;
		if (ka_page_os_released(page, j * KA_PAGE_SIZE))
			continue;
		size_t i = first;
		while (i <= last && (freeb[i / 64] >> (i % 64) & 1))
			i++;
		if (i <= last)
			continue;
		rel[j / 64] |= 1UL << (j % 64);
		any = true;
	}
	if (!any)
		return;

	/* Mark them, then rebuild the list without the blocks they touch
	 * (from the bitmap: links in those pages are about to read zero),
	 * then give them back, a run of pages at a time. */
	size_t pages = page->threaded / KA_PAGE_SIZE;
	for (size_t j = 0; j < pages; j++)
		if (rel[j / 64] >> (j % 64) & 1)
			page[j * KA_PAGE_SIZE >> KA_SLICE_SHIFT].released |=
				(uint16_t)(1u << (j * KA_PAGE_SIZE % KA_SLICE_SIZE / KA_PAGE_SIZE));
	ka_block_t *head = NULL;
	for (size_t i = n; i-- > 0;) {
		if (!(freeb[i / 64] >> (i % 64) & 1) || ka_block_released(page, i))
			continue;
		ka_block_t *b = (ka_block_t *)(page->start + i * bs);
		b->next = head;
		head = b;
	}
	page->free = head;
	ka_page_set_flag(page, KA_PAGE_RELEASED, true);

	ka_segment_t *seg = (ka_segment_t *)((uintptr_t)page & ~KA_SEGMENT_MASK);
	size_t base = (size_t)(page->start - (uint8_t *)seg);
	for (size_t j = 0; j < pages;) {
		size_t k = j;
		while (k < pages && (rel[k / 64] >> (k % 64) & 1))
			k++;
		if (k > j)
			ka_segment_release_range(seg, base + j * KA_PAGE_SIZE, (k - j) * KA_PAGE_SIZE);
		j = k + 1;
	}
}

/* malloc_trim(0)'s look at the heap's pages (see above). */
void ka_heap_release_free_blocks(ka_heap_t *heap)
{
	if (ka_debug || ka_os_granule() != KA_PAGE_SIZE)
		return;
	for (unsigned c = ka_size_class(KA_RELEASE_MIN_BLOCK); c < KA_CLASSES; c++) {
		if (ka_class_size[c] > KA_MEDIUM_MAX)
			break;
		for (ka_page_t *page = heap->queues[c].first; page; page = page->next) {
			ka_page_collect(page);
			ka_page_release_free(page);
		}
	}
}

/* page has a free block: first in its queue, for direct[] and the next call. */
static ka_page_t *ka_page_use(ka_heap_t *heap, ka_page_queue_t *q, ka_page_t *page)
{
	if (page != q->first) {
		ka_page_queue_remove(heap, q, page);
		ka_page_queue_push_front(heap, q, page);
	}
	return page;
}

/*
 * A page of the class with a free block at page->free, or NULL.  Blocks
 * that other threads freed come first: every page of the queue gives up
 * its remote frees before any is extended (threading blocks it never
 * handed out touches memory it did not use before) or a fresh page is
 * carved.  Extending the first page that ran dry while later pages held
 * frees nobody collected was most of the peak RSS of many threads freeing
 * each other's blocks (Documentation/benchmarks.md, "Where the peak comes
 * from").  A page with nothing free and no room to thread goes to the
 * full queue.
 */
ka_page_t *ka_page_find(ka_heap_t *heap, unsigned cls)
{
	ka_page_queue_t *q = &heap->queues[cls];
	ka_page_t *page, *next, *extend = NULL;

	for (page = q->first; page; page = next) {
		next = page->next;
		ka_page_collect(page);
		if (!page->free &&
		    (atomic_load_explicit(&page->flags, KA_RELAXED) & KA_PAGE_RELEASED)) {
			ka_heap_change_begin(heap);
			ka_page_unrelease(page);
			ka_heap_change_end(heap);
		}
		if (page->free)
			return ka_page_use(heap, q, page);
		if (ka_page_can_extend(page)) {
			if (!extend)
				extend = page;
			continue;
		}
		if (!ka_page_try_full(heap, page)) {
			ka_page_collect(page);	/* a remote free won the race */
			if (page->free)
				return ka_page_use(heap, q, page);
		}
	}
	if (extend) {
		ka_heap_change_begin(heap);
		ka_page_extend(extend);
		ka_heap_change_end(heap);
		return ka_page_use(heap, q, extend);
	}
	return ka_page_fresh(heap, cls);
}

static void ka_page_clear_delayed(ka_page_t *page)
{
	uintptr_t old = atomic_load_explicit(&page->xthread, KA_RELAXED);

	while (!atomic_compare_exchange_weak(&page->xthread, &old, old & ~KA_XT_DELAYED))
		;
}

/* The owner freed into a full page: back to its class queue. */
void ka_page_unfull(ka_heap_t *heap, ka_page_t *page)
{
	ka_page_clear_delayed(page);
	ka_page_queue_remove(heap, &heap->full, page);
	ka_page_set_flag(page, KA_PAGE_FULL, false);
	ka_page_queue_push_back(heap, &heap->queues[page->cls], page);
}

/* An empty page leaves its queue, its span goes back to its segment. */
void ka_page_retire(ka_heap_t *heap, ka_page_t *page)
{
	bool full = atomic_load_explicit(&page->flags, KA_RELAXED) & KA_PAGE_FULL;

	ka_page_queue_remove(heap, full ? &heap->full : &heap->queues[page->cls], page);
	heap->pages--;
	ka_span_free(heap, page);
}

/*
 * The owner's free() emptied page (free.c).  Unless it is its class's
 * only page, which the next malloc of the class would take again (a
 * program that allocates and frees in batches would carve and retire it
 * over and over), it goes back to its segment now, so that the purge
 * thread gives the span back after the delay (purge.c) even if this
 * thread never calls malloc again: a program that frees everything and
 * then only sleeps keeps at most one such page per class.  Pages of 8
 * slices too (they used to wait for the tick, which an idle owner never
 * reaches); their spans stay whole for the next page of their class
 * because pages of one slice are carved outside runs of 8 free slices
 * (segment.c): carved from them, the next page of 8 took a new segment
 * (bench/realloc: 8 % more peak RSS).  Remote frees empty pages too, but
 * the owner sees those only when it collects them, on its slow path.
 */
void ka_page_emptied(ka_page_t *page)
{
	ka_heap_t *heap = ka_tls_heap;
	ka_page_queue_t *q = &heap->queues[page->cls];

	if (q->first == page && q->last == page)
		return;
	if (KA_UNLIKELY(ka_debug))	/* internal.h */
		ka_heap_change_begin(heap);
	ka_page_retire(heap, page);
	ka_heap_maybe_purge(heap);
	if (KA_UNLIKELY(ka_debug))
		ka_heap_change_end(heap);
}

/*
 * Every empty page goes back to its segment (a full page is never empty:
 * the block on the delayed list that will move it back still counts).
 * True if any did.
 */
bool ka_heap_free_empty_pages(ka_heap_t *heap)
{
	bool any = false;

	for (unsigned c = 0; c < KA_CLASSES; c++) {
		ka_page_t *page, *next;
		for (page = heap->queues[c].first; page; page = next) {
			next = page->next;
			ka_page_collect(page);
			if (page->used == 0) {
				ka_page_retire(heap, page);
				any = true;
			}
		}
	}
	heap->carved = 0;
	return any;
}

/*
 * The segments have no room for a span: free the empty pages first, if
 * enough was carved since the last sweep to pay for walking every page
 * (at most 32 pages looked at per slice carved).  A heap that only grows
 * then sweeps a bounded number of times per doubling, not once per
 * segment; one that emptied pages since gets them back before it takes a
 * segment, but for that 1/32.  True if a span came free.
 */
bool ka_heap_sweep(ka_heap_t *heap)
{
	if (heap->carved * 32 < heap->pages)
		return false;
	return ka_heap_free_empty_pages(heap);
}

/* A page of a reclaimed segment joins this heap. */
void ka_page_adopt(ka_heap_t *heap, ka_page_t *page)
{
	page->next = page->prev = NULL;
	ka_page_set_flag(page, KA_PAGE_FULL, false);
	ka_page_clear_delayed(page);
	ka_page_collect(page);
	if (page->used == 0) {
		ka_span_free(heap, page);
		return;
	}
	ka_page_queue_push_back(heap, &heap->queues[page->cls], page);
	heap->pages++;
	if (heap->purge_next == UINT64_MAX)
		heap->purge_next = ka_purge_tick(heap);
}

/* Thread exit: free what is empty, unlink the rest for abandonment. */
void ka_heap_release_pages(ka_heap_t *heap)
{
	for (unsigned c = 0; c <= KA_CLASSES; c++) {
		ka_page_queue_t *q = c < KA_CLASSES ? &heap->queues[c] : &heap->full;
		ka_page_t *page, *next;
		for (page = q->first; page; page = next) {
			next = page->next;
			page->next = page->prev = NULL;
			ka_page_set_flag(page, KA_PAGE_FULL, false);
			ka_page_clear_delayed(page);
			ka_page_collect(page);
			if (page->used == 0)
				ka_span_free(heap, page);
		}
		q->first = q->last = NULL;
	}
	for (size_t w = 0; w <= KA_DIRECT_WORDS; w++)
		heap->direct[w] = KA_PAGE_EMPTY;
	heap->pages = 0;
}
