/* SPDX-License-Identifier: MIT */
/*
 * Segments and spans.
 *
 * A segment (4 MiB, from the region table, region.c) belongs to one
 * heap; its first 64 KiB slice holds this header and a page descriptor per
 * slice, the other 63 slices are handed out as spans of contiguous slices
 * (one span = one page of one size class, or one large block).  Only the
 * owning thread carves spans and changes its segment lists, so a segment
 * needs no lock for them; the small lock it has (region.c) covers its
 * slice bitmaps and purge_at, which the purge thread reads too.
 */
#include "internal.h"

/* The owner (ka_heap_owns): heap, NULL to abandon; called by heap's thread
 * (or the thread giving back a parked heap, as its owner: heap.c). */
void ka_segment_set_heap(ka_segment_t *seg, ka_heap_t *heap)
{
	atomic_store_explicit(&seg->heap, heap, memory_order_release);
}

/* ---- segment lists: a heap's (owner only), the abandoned one (abandon.c) ---- */

void ka_seg_list_push(ka_segment_t **list, ka_segment_t *seg)
{
	seg->prev = NULL;
	seg->next = *list;
	if (*list)
		(*list)->prev = seg;
	*list = seg;
}

void ka_seg_list_remove(ka_segment_t **list, ka_segment_t *seg)
{
	if (seg->prev)
		seg->prev->next = seg->next;
	else
		*list = seg->next;
	if (seg->next)
		seg->next->prev = seg->prev;
	seg->next = seg->prev = NULL;
}

static void ka_seg_set_full(ka_heap_t *heap, ka_segment_t *seg, bool full)
{
	if (!heap || seg->in_full_list == full)
		return;
	ka_seg_list_remove(full ? &heap->segs_avail : &heap->segs_full, seg);
	ka_seg_list_push(full ? &heap->segs_full : &heap->segs_avail, seg);
	seg->in_full_list = full;
}

/* ---- spans ---- */

/* Starts of runs of n contiguous set bits in free. */
static uint64_t ka_run_starts(uint64_t free, unsigned n)
{
	uint64_t m = free;

	for (unsigned i = 1; i < n && m; i++)
		m &= free >> i;
	return m;
}

/* How warm the lowest of the warmest runs of n slices at starts is: 2 all
 * warm, 1 some, 0 none; *idx becomes its start. */
static int ka_warmest_start(uint64_t starts, uint64_t warm, unsigned n, int *idx)
{
	uint64_t some = 0, all = warm ? starts : 0;

	for (unsigned i = 0; i < n && warm; i++) {
		some |= warm >> i;
		all &= warm >> i;
	}
	if (all) {
		*idx = __builtin_ctzl(all & starts);
		return 2;
	}
	*idx = __builtin_ctzl(some & starts ? some & starts : starts);
	return (some & starts) != 0;
}

/*
 * Where a span of n slices goes in a segment whose free slices are free
 * and whose dirty (still resident) ones are warm: -1 if it does not fit,
 * else how warm the span is (ka_warmest_start), its start in *idx.
 *
 * Warm slices first, as jemalloc reuses dirty extents before it touches
 * fresh ones: a span on fresh slices adds to the resident set while warm
 * ones stay resident beside it until the purge.  bench/realloc kept 24 MiB
 * warm at its peak, which was 1.28x glibc's; taking warm slices first, in
 * this segment and across the heap's (ka_span_alloc), made it 1.15x.
 *
 * For a small page (one slice), a free slice outside every free run long
 * enough for a medium page if there is one, so that the span of a medium
 * page that emptied and went back at free (page.c) is still whole when
 * its class wants a page again; else the lowest run that fits.  Only for
 * one slice: large blocks of 2-7 slices placed so took more segments
 * (bench/large: 4 % more peak RSS).
 */
static int ka_find_span(uint64_t free, uint64_t warm, unsigned n, int *idx)
{
	uint64_t starts;

	warm &= free;
	if (n == 1) {
		uint64_t whole = 0, loose;
		starts = ka_run_starts(free, KA_MEDIUM_SLICES);
		for (unsigned i = 0; i < KA_MEDIUM_SLICES && starts; i++)
			whole |= starts << i;
		loose = free & ~whole;
		starts = loose ? loose : free;
	} else {
		starts = ka_run_starts(free, n);
	}
	if (!starts)
		return -1;
	return ka_warmest_start(starts, warm, n, idx);
}

/*
 * *zeroed: every slice of the span reads zero, none having been written
 * since its segment was made or the slice was last released (dirty slices
 * are the written ones still resident; released ones read zero, os.c).
 */
static ka_page_t *ka_span_take(ka_heap_t *heap, ka_segment_t *seg, unsigned idx, unsigned n,
			       bool *zeroed)
{
	uint64_t mask = (n == 64 ? ~0UL : ((1UL << n) - 1)) << idx;

	ka_lock(ka_seg_lock(seg));
	*zeroed = !(seg->dirty & mask);
	if (KA_UNLIKELY(ka_debug))	/* dirty: freed as junk, not given back */
		for (uint64_t d = seg->dirty & mask; d; d &= d - 1)
			ka_debug_check_junk("free slice", (uint8_t *)seg +
					    ((size_t)__builtin_ctzl(d) << KA_SLICE_SHIFT), KA_SLICE_SIZE);
	/* The span's length with its bit: the statistics walk both (stats.c). */
	ka_page_t *page = &seg->pages[idx];
	for (unsigned i = 0; i < n; i++) {
		seg->pages[idx + i].slice_offset = (uint8_t)i;
		seg->pages[idx + i].released = 0;
	}
	page->slice_count = (uint8_t)n;
	page->start = (uint8_t *)seg + ((size_t)idx << KA_SLICE_SHIFT);
	seg->used |= mask;
	ka_seg_set_dirty(seg, seg->dirty & ~mask);
	ka_unlock(ka_seg_lock(seg));
	if (seg->used == ~0UL)
		ka_seg_set_full(heap, seg, true);
	return page;
}

/* Room first in the heap's segments, then in its empty pages' spans, then
 * in an abandoned segment, then in a parked heap's (heap.c), last in a new
 * one. */
ka_page_t *ka_span_alloc(ka_heap_t *heap, unsigned n, bool *zeroed)
{
	heap->carved += n;
	for (;;) {
		ka_segment_t *best = NULL;
		int best_idx = 0, best_warmth = -1;
		for (ka_segment_t *seg = heap->segs_avail; seg; seg = seg->next) {
			int idx, warmth = ka_find_span(~seg->used, ka_seg_dirty_hint(seg), n, &idx);
			if (warmth > best_warmth) {
				best = seg;
				best_idx = idx;
				best_warmth = warmth;
				if (warmth == 2)
					break;
			}
		}
		if (best)
			return ka_span_take(heap, best, (unsigned)best_idx, n, zeroed);
		/* Not for the exited threads' heap: its lock is held, which
		 * comes after the registry's (fork.c). */
		if (!ka_heap_sweep(heap) && !ka_segment_reclaim(heap) &&
		    (heap == ka_heap_exited || !ka_heaps_unpark_for_room(ka_numa_node())))
			break;
	}
	ka_segment_t *seg = ka_segment_new(ka_numa_node());
	if (!seg)
		return NULL;
	ka_segment_set_heap(seg, heap);
	ka_seg_list_push(&heap->segs_avail, seg);
	return ka_span_take(heap, seg, 1, n, zeroed);
}

/*
 * The span of page goes back to its segment; heap is NULL for abandoned
 * ones.  With KALLOC_DEBUG its blocks are checked, then the whole span
 * becomes junk, checked again when ka_span_take() hands it out (debug.c).
 */
void ka_span_free(ka_heap_t *heap, ka_page_t *page)
{
	ka_segment_t *seg = (ka_segment_t *)((uintptr_t)page & ~KA_SEGMENT_MASK);
	unsigned idx = (unsigned)(page - seg->pages);
	unsigned n = page->slice_count;
	uint64_t mask = (n == 64 ? ~0UL : ((1UL << n) - 1)) << idx;

	if (KA_UNLIKELY(ka_debug)) {
		ka_debug_check_page(page);
		memset(page->start, KA_DEBUG_JUNK, (size_t)n << KA_SLICE_SHIFT);
	}
	ka_seg_set_full(heap, seg, false);
	uint64_t due = 0;
	ka_lock(ka_seg_lock(seg));
	/* Cleared with its bit, under the lock the statistics walk under. */
	memset(page, 0, sizeof *page);
	for (unsigned i = 0; i < n; i++) {
		seg->pages[idx + i].slice_offset = 0;
		seg->pages[idx + i].released = 0;
		atomic_store_explicit(&seg->pages[idx + i].flags, KA_PAGE_UNUSED, KA_RELAXED);
	}
	seg->used &= ~mask;
	ka_seg_set_dirty(seg, seg->dirty | mask);
	if (heap && seg->purge_at == 0) {
		due = ka_purge_deadline();
		if (due)
			seg->purge_at = due;
		else
			ka_segment_release_dirty_locked(seg);
	}
	ka_unlock(ka_seg_lock(seg));
	if (heap)
		ka_span_became_dirty(heap, seg, due);
}
