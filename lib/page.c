/* SPDX-License-Identifier: MIT */
/*
 * Pages: a span holding blocks of one size class, with three free lists
 * (mimalloc's free-list sharding):
 *
 *   free        malloc pops here (owner only)
 *   local_free  the owner's frees, swapped into free when it runs dry
 *   xthread     other threads' frees, pushed with one CAS
 *
 * A page whose lists are all empty leaves its class queue for the heap's
 * full queue, and tags xthread KA_XT_DELAYED: remote frees then go to the
 * heap's delayed list instead, so the owner learns the page has room again
 * without scanning full pages.  Blocks are threaded onto free lazily, at
 * most 4 KiB worth at a time, so a fresh page is touched as it is used.
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
		heap->direct[w] = first ? first : &ka_page_empty;
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

/* Move remote and local frees onto free (owner only). */
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
		tail->next = page->local_free;
		page->local_free = list;
		page->used -= n;
	}
	if (!page->free && page->local_free) {
		page->free = page->local_free;
		page->local_free = NULL;
	}
}

/*
 * Thread more blocks onto free.  Each gets its key, as a freed block does:
 * freeing one that was never handed out is then caught like a double free.
 */
static void ka_page_extend(ka_page_t *page)
{
	size_t bs = page->block_size;
	uint32_t n = (uint32_t)(KA_PAGE_SIZE / bs);

	/* Threading a block writes its first words: blocks of 4 KiB and more
	 * one at a time, or a 64 KiB block in use would make three more
	 * resident (with the device, whole 64 KiB fault-around units). */
	if (n < 1)
		n = 1;
	if (n > page->reserved - page->capacity)
		n = page->reserved - page->capacity;
	uint8_t *first = page->start + (size_t)page->capacity * bs;
	for (uint32_t i = 0; i < n; i++) {
		ka_block_t *b = (ka_block_t *)(first + i * bs);
		b->next = i + 1 < n ? (ka_block_t *)((uint8_t *)b + bs) : page->free;
		b->key = ka_block_key(b);
		if (KA_UNLIKELY(ka_debug))
			ka_debug_junk_block(b, bs);
	}
	page->free = (ka_block_t *)first;
	page->capacity += n;
}

static ka_page_t *ka_page_fresh(ka_heap_t *heap, unsigned cls)
{
	unsigned slices = ka_class_slices(cls);
	ka_page_t *page = ka_span_alloc(heap, slices);

	if (!page)
		return NULL;
	uint32_t bs = ka_class_size[cls];
	page->block_size = bs;
	page->div_magic = UINT64_MAX / bs + 1;
	page->reserved = (uint32_t)(((size_t)slices << KA_SLICE_SHIFT) / bs);
	page->cls = (uint8_t)cls;
	page->capacity = page->used = 0;
	page->free = page->local_free = NULL;
	page->in_full = 0;
	atomic_store_explicit(&page->xthread, 0, KA_RELAXED);
	atomic_store_explicit(&page->flags, ka_debug ? KA_PAGE_DEBUG : 0, memory_order_release);
	ka_page_extend(page);
	ka_page_queue_push_front(heap, &heap->queues[cls], page);
	return page;
}

/* A page with nothing free goes to the full queue, unless a remote free won. */
static bool ka_page_try_full(ka_heap_t *heap, ka_page_t *page)
{
	uintptr_t expected = 0;

	if (!atomic_compare_exchange_strong(&page->xthread, &expected, KA_XT_DELAYED))
		return false;
	ka_page_queue_remove(heap, &heap->queues[page->cls], page);
	ka_page_queue_push_back(heap, &heap->full, page);
	page->in_full = 1;
	return true;
}

void ka_page_set_full(ka_heap_t *heap, ka_page_t *page)
{
	(void)ka_page_try_full(heap, page);
}

/* A page of the class with a free block at page->free, or NULL. */
ka_page_t *ka_page_find(ka_heap_t *heap, unsigned cls)
{
	ka_page_queue_t *q = &heap->queues[cls];
	ka_page_t *page, *next;

	for (page = q->first; page; page = next) {
		next = page->next;
		ka_page_collect(page);
		if (!page->free && page->capacity < page->reserved)
			ka_page_extend(page);
		if (!page->free && !ka_page_try_full(heap, page))
			ka_page_collect(page);
		if (page->free) {
			if (page != q->first) {
				ka_page_queue_remove(heap, q, page);
				ka_page_queue_push_front(heap, q, page);
			}
			return page;
		}
	}
	return ka_page_fresh(heap, cls);
}

static void ka_page_clear_delayed(ka_page_t *page)
{
	uintptr_t old = atomic_load_explicit(&page->xthread, KA_RELAXED);

	while (!atomic_compare_exchange_weak(&page->xthread, &old, old & ~KA_XT_DELAYED))
		;
}

/* The owner freed into a full page, or freed its last block. */
void ka_page_after_free(ka_heap_t *heap, ka_page_t *page)
{
	ka_page_queue_t *q = &heap->queues[page->cls];

	if (page->in_full) {
		ka_page_clear_delayed(page);
		ka_page_queue_remove(heap, &heap->full, page);
		page->in_full = 0;
		ka_page_queue_push_back(heap, q, page);
	}
	if (page->used == 0) {
		/*
		 * Keep the class's only page: alloc/free ping-pong stays cheap.
		 * One-slice pages, one per class; of the eight-slice (medium)
		 * ones only the last emptied, or a program going through many
		 * medium sizes pins 24 of them, 12 MiB, and fragments the
		 * segments that large spans need.  Kept pages go back at the
		 * next purge (purge.c).
		 */
		if (q->first == page && !page->next && page->reserved > 1) {
			if (page->slice_count > 1) {
				ka_page_t *old = heap->kept_medium;
				heap->kept_medium = page;
				if (old && old != page && old->used == 0)
					ka_page_free_empty(heap, old);
			}
			if (heap->purge_next == UINT64_MAX) {
				/* Not sooner than 100 ms: with a decay of 0 a
				 * ping-pong would release and refault the page
				 * on every free. */
				uint64_t d = atomic_load_explicit(&ka_decay_ms, KA_RELAXED);
				heap->purge_next = ka_os_now_ms() + (d > 100 ? d : 100);
			}
			return;
		}
		ka_page_queue_remove(heap, q, page);
		ka_span_free(heap, page);
		ka_heap_maybe_purge(heap);	/* threads that only free purge too */
	}
}

/* An empty page in its class queue goes back to its segment. */
void ka_page_free_empty(ka_heap_t *heap, ka_page_t *page)
{
	ka_page_queue_remove(heap, &heap->queues[page->cls], page);
	ka_span_free(heap, page);
}

/* A page of a reclaimed segment joins this heap. */
void ka_page_adopt(ka_heap_t *heap, ka_page_t *page)
{
	page->next = page->prev = NULL;
	page->in_full = 0;
	ka_page_clear_delayed(page);
	ka_page_collect(page);
	if (page->used == 0) {
		ka_span_free(heap, page);
		return;
	}
	ka_page_queue_push_back(heap, &heap->queues[page->cls], page);
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
			page->in_full = 0;
			ka_page_clear_delayed(page);
			ka_page_collect(page);
			if (page->used == 0)
				ka_span_free(heap, page);
		}
		q->first = q->last = NULL;
	}
	for (size_t w = 0; w <= KA_DIRECT_WORDS; w++)
		heap->direct[w] = &ka_page_empty;
	heap->kept_medium = NULL;
}
