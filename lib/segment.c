/* SPDX-License-Identifier: MIT */
/*
 * Segments and spans.
 *
 * A region (64 MiB, os.c) is cut into 4 MiB segments aligned to their size,
 * so free() finds a segment by masking a pointer.  A segment belongs to one
 * heap; its first 64 KiB slice holds this header and a page descriptor per
 * slice, the other 63 slices are handed out as spans of contiguous slices
 * (one span = one page of one size class, or one large block).  Only the
 * owning thread carves spans and changes its segment lists, so only the
 * region table and the list of abandoned segments (threads that exited)
 * have locks of their own, and each segment a small one, kept in the
 * region table (not in the header, which goes back to the kernel with the
 * segment): it covers the slice bitmaps and purge_at, so that the purge
 * thread (purge.c) can give back the dirty slices of a segment whose
 * owner sleeps while the owner carves or frees spans.
 *
 * ka_segmap has a byte per 4 MiB of address space: 1 marks a segment start,
 * v > 1 the inside of a huge segment v-1 granules (at most 254) further on.
 * It lets free() reject pointers that are not ours before touching them.
 */
#include "internal.h"

struct ka_region {
	struct ka_os_region os;
	uint32_t seg_used;		/* segments handed out */
	ka_lock_t seg_lock[KA_REGION_SEGMENTS];	/* used, dirty, purge_at, seg_live */
	bool seg_live[KA_REGION_SEGMENTS];	/* header valid: the purge thread may look */
};

static struct ka_region ka_regions[KA_MAX_REGIONS];
static unsigned ka_region_count;
static ka_lock_t ka_region_lock;

static ka_segment_t *ka_abandoned;
static _Atomic size_t ka_abandoned_count;	/* peeked without the lock */
static ka_lock_t ka_abandoned_lock;
static uint64_t ka_abandoned_poll;	/* ms between looks for remote frees */

_Atomic uint8_t ka_segmap[KA_SEGMAP_SIZE];

/* ---- the segment map ---- */

void ka_segment_map(ka_segment_t *seg, size_t size)
{
	uintptr_t g = (uintptr_t)seg >> KA_SEGMENT_SHIFT;
	size_t n = (size + KA_SEGMENT_SIZE - 1) >> KA_SEGMENT_SHIFT;

	for (size_t i = n; i-- > 1;)
		atomic_store_explicit(&ka_segmap[g + i], (uint8_t)((i < 254 ? i : 254) + 1), KA_RELAXED);
	atomic_store_explicit(&ka_segmap[g], 1, memory_order_release);
}

void ka_segment_unmap(ka_segment_t *seg, size_t size)
{
	uintptr_t g = (uintptr_t)seg >> KA_SEGMENT_SHIFT;
	size_t n = (size + KA_SEGMENT_SIZE - 1) >> KA_SEGMENT_SHIFT;

	for (size_t i = 0; i < n; i++)
		atomic_store_explicit(&ka_segmap[g + i], 0, KA_RELAXED);
}

/* The segment holding p, checked, or NULL. */
ka_segment_t *ka_segment_lookup(const void *p)
{
	uintptr_t g = (uintptr_t)p >> KA_SEGMENT_SHIFT;

	if (g >= KA_SEGMAP_SIZE)
		return NULL;
	unsigned v = atomic_load_explicit(&ka_segmap[g], memory_order_acquire);
	if (v == 0)
		return NULL;
	while (v > 1) {
		g -= v - 1;
		v = atomic_load_explicit(&ka_segmap[g], memory_order_acquire);
	}
	ka_segment_t *seg = (ka_segment_t *)(g << KA_SEGMENT_SHIFT);
	if (v != 1 || seg->cookie != ka_segment_cookie(seg))
		return NULL;
	return seg;
}

/* The owner (ka_heap_owns): heap, NULL to abandon; called by heap's thread. */
void ka_segment_set_heap(ka_segment_t *seg, ka_heap_t *heap)
{
	atomic_store_explicit(&seg->heap, heap, memory_order_release);
}

/* ---- segment lists (owner only) ---- */

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

/* ---- the region table: a pool of segments ---- */

static ka_lock_t *ka_seg_lock(const ka_segment_t *seg)
{
	return &ka_regions[seg->region].seg_lock[seg->region_offset >> KA_SEGMENT_SHIFT];
}

static bool *ka_seg_live(const ka_segment_t *seg)
{
	return &ka_regions[seg->region].seg_live[seg->region_offset >> KA_SEGMENT_SHIFT];
}

static ka_segment_t *ka_segment_new(int node)
{
	struct ka_region *r = NULL;
	unsigned ri, si;

	/* Fresh memory is wanted: freed huge blocks' resident pages serve it
	 * rather than add to the peak. */
	ka_huge_cache_shrink(KA_SEGMENT_SIZE);
	ka_lock(&ka_region_lock);
	for (ri = 0; ri < ka_region_count; ri++) {
		if (ka_regions[ri].os.node == node &&
		    ka_regions[ri].seg_used != (1u << KA_REGION_SEGMENTS) - 1) {
			r = &ka_regions[ri];
			break;
		}
	}
	if (!r) {
		if (ka_region_count == KA_MAX_REGIONS ||
		    !ka_os_region_create(KA_REGION_SIZE, KA_SEGMENT_SIZE, node,
					 &ka_regions[ka_region_count].os)) {
			ka_unlock(&ka_region_lock);
			return NULL;
		}
		ri = ka_region_count++;
		r = &ka_regions[ri];
		r->seg_used = 0;
	}
	si = (unsigned)__builtin_ctz(~r->seg_used);
	r->seg_used |= 1u << si;
	ka_unlock(&ka_region_lock);

	ka_segment_t *seg = (ka_segment_t *)((uint8_t *)r->os.base + (size_t)si * KA_SEGMENT_SIZE);
	memset(seg, 0, sizeof *seg);
	seg->cookie = ka_segment_cookie(seg);
	seg->kind = KA_SEG_NORMAL;
	seg->region = ri;
	seg->region_offset = (size_t)si * KA_SEGMENT_SIZE;
	seg->used = 1;
	for (unsigned i = 0; i < KA_SLICES; i++)
		atomic_store_explicit(&seg->pages[i].flags, KA_PAGE_UNUSED, KA_RELAXED);
	ka_segment_map(seg, KA_SEGMENT_SIZE);
	ka_lock(ka_seg_lock(seg));
	*ka_seg_live(seg) = true;
	ka_unlock(ka_seg_lock(seg));
	return seg;
}

/* An empty segment goes back, all of it given back to the kernel. */
void ka_segment_to_pool(ka_segment_t *seg)
{
	struct ka_region *r = &ka_regions[seg->region];
	unsigned si = (unsigned)(seg->region_offset >> KA_SEGMENT_SHIFT);

	ka_lock(ka_seg_lock(seg));
	*ka_seg_live(seg) = false;
	ka_unlock(ka_seg_lock(seg));
	ka_segment_unmap(seg, KA_SEGMENT_SIZE);
	seg->cookie = 0;
	ka_os_region_release(&r->os, seg->region_offset, KA_SEGMENT_SIZE);
	ka_lock(&ka_region_lock);
	r->seg_used &= ~(1u << si);
	ka_unlock(&ka_region_lock);
}

/* Give back the free slices that are still resident; seg's lock held. */
static void ka_segment_release_dirty_locked(ka_segment_t *seg)
{
	const struct ka_os_region *os = &ka_regions[seg->region].os;
	uint64_t d = seg->dirty & ~seg->used;

	while (d) {
		unsigned lo = (unsigned)__builtin_ctzl(d);
		uint64_t run = d >> lo;
		unsigned n = ~run ? (unsigned)__builtin_ctzl(~run) : 64 - lo;
		ka_os_region_release(os, seg->region_offset + ((size_t)lo << KA_SLICE_SHIFT),
				     (size_t)n << KA_SLICE_SHIFT);
		d &= ~(n == 64 ? ~0UL : (((1UL << n) - 1) << lo));
	}
	seg->dirty = 0;
	seg->purge_at = 0;
}

void ka_segment_release_dirty(ka_segment_t *seg)
{
	ka_lock(ka_seg_lock(seg));
	ka_segment_release_dirty_locked(seg);
	ka_unlock(ka_seg_lock(seg));
}

/*
 * The dirty slices of seg go back if their delay ran out by now (or
 * force); else *next becomes their deadline if sooner.  True when seg has
 * no dirty slice left.
 */
bool ka_segment_purge(ka_segment_t *seg, uint64_t now, bool force, uint64_t *next)
{
	bool clean = true;

	ka_lock(ka_seg_lock(seg));
	if (seg->dirty & ~seg->used) {
		if (force || seg->purge_at <= now) {
			ka_segment_release_dirty_locked(seg);
		} else {
			clean = false;
			if (seg->purge_at < *next)
				*next = seg->purge_at;
		}
	} else {
		seg->purge_at = 0;
	}
	ka_unlock(ka_seg_lock(seg));
	return clean;
}

/* Give back len bytes at offset in a segment (a span's free 4 KiB pages). */
void ka_segment_release_range(ka_segment_t *seg, size_t offset, size_t len)
{
	ka_os_region_release(&ka_regions[seg->region].os, seg->region_offset + offset, len);
}

/* ---- spans ---- */

/* Lowest start of n contiguous set bits in free, or -1. */
static int ka_find_run(uint64_t free, unsigned n)
{
	uint64_t m = free;

	for (unsigned i = 1; i < n && m; i++)
		m &= free >> i;
	return m ? __builtin_ctzl(m) : -1;
}

static ka_page_t *ka_span_take(ka_heap_t *heap, ka_segment_t *seg, unsigned idx, unsigned n)
{
	uint64_t mask = (n == 64 ? ~0UL : ((1UL << n) - 1)) << idx;

	ka_lock(ka_seg_lock(seg));
	if (KA_UNLIKELY(ka_debug))	/* dirty: freed as junk, not given back */
		for (uint64_t d = seg->dirty & mask; d; d &= d - 1)
			ka_debug_check_junk("free slice", (uint8_t *)seg +
					    ((size_t)__builtin_ctzl(d) << KA_SLICE_SHIFT), KA_SLICE_SIZE);
	seg->used |= mask;
	seg->dirty &= ~mask;
	ka_unlock(ka_seg_lock(seg));
	if (seg->used == ~0UL)
		ka_seg_set_full(heap, seg, true);
	for (unsigned i = 0; i < n; i++) {
		seg->pages[idx + i].slice_offset = (uint8_t)i;
		seg->pages[idx + i].released = 0;
	}
	ka_page_t *page = &seg->pages[idx];
	page->slice_count = (uint8_t)n;
	page->start = (uint8_t *)seg + ((size_t)idx << KA_SLICE_SHIFT);
	return page;
}

/* Room first in the heap's segments, then in its empty pages' spans, then
 * in an abandoned segment, last in a new one. */
ka_page_t *ka_span_alloc(ka_heap_t *heap, unsigned n)
{
	heap->carved += n;
	for (;;) {
		for (ka_segment_t *seg = heap->segs_avail; seg; seg = seg->next) {
			int idx = ka_find_run(~seg->used, n);
			if (idx >= 0)
				return ka_span_take(heap, seg, (unsigned)idx, n);
		}
		if (!ka_heap_sweep(heap) && !ka_segment_reclaim(heap))
			break;
	}
	ka_segment_t *seg = ka_segment_new(ka_numa_node());
	if (!seg)
		return NULL;
	ka_segment_set_heap(seg, heap);
	ka_seg_list_push(&heap->segs_avail, seg);
	return ka_span_take(heap, seg, 1, n);
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
	memset(page, 0, sizeof *page);
	for (unsigned i = 0; i < n; i++) {
		seg->pages[idx + i].slice_offset = 0;
		seg->pages[idx + i].released = 0;
		atomic_store_explicit(&seg->pages[idx + i].flags, KA_PAGE_UNUSED, KA_RELAXED);
	}
	ka_seg_set_full(heap, seg, false);
	uint64_t due = 0;
	ka_lock(ka_seg_lock(seg));
	seg->used &= ~mask;
	seg->dirty |= mask;
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

/* ---- abandoned segments: their thread exited ---- */

void ka_segments_abandon(ka_heap_t *heap)
{
	ka_segment_t *lists[2] = { heap->segs_avail, heap->segs_full };

	heap->segs_avail = heap->segs_full = NULL;
	for (int l = 0; l < 2; l++) {
		ka_segment_t *next;
		for (ka_segment_t *seg = lists[l]; seg; seg = next) {
			next = seg->next;
			ka_segment_release_dirty(seg);
			if (seg->used == 1) {
				ka_segment_set_heap(seg, NULL);
				ka_segment_to_pool(seg);
				continue;
			}
			seg->in_full_list = 0;
			ka_segment_set_heap(seg, NULL);
			ka_lock(&ka_abandoned_lock);
			seg->prev = NULL;
			seg->next = ka_abandoned;
			if (ka_abandoned)
				ka_abandoned->prev = seg;
			ka_abandoned = seg;
			ka_abandoned_count++;
			ka_abandoned_poll = 0;	/* look soon: remote frees come next */
			ka_unlock(&ka_abandoned_lock);
		}
	}
	if (atomic_load_explicit(&ka_abandoned_count, KA_RELAXED))
		ka_purge_request(ka_purge_deadline());
}

/* Walk the span heads of a segment's used slices. */
#define ka_for_each_span(seg, page)						\
	for (unsigned _i = 1; _i < KA_SLICES;					\
	     _i += (seg)->pages[_i].slice_count ? (seg)->pages[_i].slice_count : 1) \
		if (((seg)->used >> _i & 1) &&					\
		    !(atomic_load_explicit(&(seg)->pages[_i].flags, KA_RELAXED) & KA_PAGE_UNUSED) && \
		    ((page) = &(seg)->pages[_i]))

void ka_segment_adopt_pages(ka_heap_t *heap, ka_segment_t *seg)
{
	ka_page_t *page;

	ka_for_each_span(seg, page)
		ka_page_adopt(heap, page);
}

/* Take @seg off the abandoned list.  Called with ka_abandoned_lock held. */
static void ka_abandoned_unlink(ka_segment_t *seg)
{
	if (seg->prev)
		seg->prev->next = seg->next;
	else
		ka_abandoned = seg->next;
	if (seg->next)
		seg->next->prev = seg->prev;
	ka_abandoned_count--;
}

/* Take over one abandoned segment on our node; its pages join our queues. */
bool ka_segment_reclaim(ka_heap_t *heap)
{
	int node = ka_numa_node();
	ka_segment_t *seg;

	if (!atomic_load_explicit(&ka_abandoned_count, KA_RELAXED))
		return false;
	ka_lock(&ka_abandoned_lock);
	for (seg = ka_abandoned; seg; seg = seg->next)
		if (ka_regions[seg->region].os.node == node)
			break;
	if (seg)
		ka_abandoned_unlink(seg);
	ka_unlock(&ka_abandoned_lock);
	if (!seg)
		return false;
	ka_segment_set_heap(seg, heap);
	seg->in_full_list = seg->used == ~0UL;
	ka_seg_list_push(seg->in_full_list ? &heap->segs_full : &heap->segs_avail, seg);
	ka_segment_adopt_pages(heap, seg);
	return true;
}

/*
 * In a forked child (fork.c): every segment of a heap other than self's
 * and exited's, whose threads are not in the child, is abandoned.  The
 * region table, whose lock the fork held, finds them, not the heaps' lists,
 * which their threads may have been changing.  The abandoned list is
 * rebuilt from it too: a segment between the list and a heap (being
 * abandoned or reclaimed at the fork) has no heap and goes on it.  Each
 * page's full tag is cleared, as ka_heap_release_pages() does at thread
 * exit, so that remote frees go to the page (ka_free_remote() waits for a
 * heap while the tag is set); reclaiming collects the rest (ka_page_adopt).
 * The child has one thread; the locks are for form.
 */
void ka_segments_abandon_gone(const ka_heap_t *self, const ka_heap_t *exited)
{
	ka_page_t *page;

	ka_lock(&ka_abandoned_lock);
	ka_lock(&ka_region_lock);
	ka_abandoned = NULL;
	ka_abandoned_count = 0;
	for (unsigned ri = 0; ri < ka_region_count; ri++) {
		struct ka_region *r = &ka_regions[ri];
		for (unsigned si = 0; si < KA_REGION_SEGMENTS; si++) {
			ka_segment_t *seg = (ka_segment_t *)((uint8_t *)r->os.base +
							     (size_t)si * KA_SEGMENT_SIZE);
			uintptr_t g = (uintptr_t)seg >> KA_SEGMENT_SHIFT;
			if (!(r->seg_used >> si & 1) || seg->cookie != ka_segment_cookie(seg) ||
			    atomic_load_explicit(&ka_segmap[g], KA_RELAXED) != 1)
				continue;	/* not handed out, or on its way back */
			ka_heap_t *heap = atomic_load_explicit(&seg->heap, KA_RELAXED);
			if (heap && (heap == self || heap == exited))
				continue;
			ka_for_each_span(seg, page) {
				atomic_fetch_and_explicit(&page->flags, (uint8_t)~KA_PAGE_FULL, KA_RELAXED);
				atomic_fetch_and_explicit(&page->xthread, ~KA_XT_DELAYED, KA_RELAXED);
			}
			seg->in_full_list = 0;
			ka_segment_set_heap(seg, NULL);
			seg->prev = NULL;
			seg->next = ka_abandoned;
			if (ka_abandoned)
				ka_abandoned->prev = seg;
			ka_abandoned = seg;
			ka_abandoned_count++;
		}
	}
	ka_unlock(&ka_region_lock);
	ka_unlock(&ka_abandoned_lock);
	if (ka_abandoned)	/* collected on the decay, as at thread exit */
		ka_purge_request(ka_purge_deadline());
}

/*
 * Abandoned segments are nobody's, so the purge thread (or malloc_trim,
 * force) collects them: the remote frees into their pages are taken in,
 * a page left empty gives its span back, and the free slices go back to
 * the kernel a decay after they came free, like any other, the segment to
 * the pool once empty.  While some hold live blocks that other threads may
 * still free, they are looked at again after a decay, then less often
 * (twice the wait each time nothing came free, at most 64 decays): a
 * block that lives for good costs a wake-up a minute, not one a second.
 * *next becomes when to look again.  True if anything went back.
 */
bool ka_segments_collect_abandoned(uint64_t now, bool force, uint64_t *next)
{
	uint64_t decay = atomic_load_explicit(&ka_decay_ms, KA_RELAXED);
	bool any = false, freed = false;
	ka_segment_t *seg, *n;
	ka_page_t *page;

	if (!atomic_load_explicit(&ka_abandoned_count, KA_RELAXED))
		return false;
	ka_lock(&ka_abandoned_lock);
	for (seg = ka_abandoned; seg; seg = n) {
		n = seg->next;
		ka_for_each_span(seg, page) {
			ka_page_collect(page);
			if (page->used == 0) {
				ka_span_free(NULL, page);
				freed = true;
			}
		}
		ka_lock(ka_seg_lock(seg));
		if ((seg->dirty & ~seg->used) && seg->purge_at == 0)
			seg->purge_at = now + decay;
		ka_unlock(ka_seg_lock(seg));
		if (!ka_segment_purge(seg, now, force, next))
			continue;
		any = true;
		if (seg->used == 1) {
			ka_abandoned_unlink(seg);
			ka_segment_to_pool(seg);
		}
	}
	if (ka_abandoned_count) {
		uint64_t d = decay > 100 ? decay : 100;
		if (freed || ka_abandoned_poll == 0)
			ka_abandoned_poll = d;
		else if (ka_abandoned_poll < 64 * d)
			ka_abandoned_poll *= 2;
		if (now + ka_abandoned_poll < *next)
			*next = now + ka_abandoned_poll;
	}
	ka_unlock(&ka_abandoned_lock);
	return any;
}

/*
 * The purge thread's look at the segments that threads own: their dirty
 * slices whose delay ran out go back (the owner hands an empty segment to
 * the pool on its own next purge).  Under the region lock, so that no
 * segment leaves the table meanwhile; a segment whose owner holds its
 * lock is skipped for now.  *next becomes the soonest deadline left.
 */
void ka_segments_purge_owned(uint64_t now, uint64_t *next)
{
	ka_lock(&ka_region_lock);
	for (unsigned ri = 0; ri < ka_region_count; ri++) {
		struct ka_region *r = &ka_regions[ri];
		for (unsigned si = 0; si < KA_REGION_SEGMENTS; si++) {
			if (!(r->seg_used >> si & 1))
				continue;
			ka_segment_t *seg = (ka_segment_t *)((uint8_t *)r->os.base +
							     (size_t)si * KA_SEGMENT_SIZE);
			ka_lock_t *l = &r->seg_lock[si];
			if (atomic_exchange_explicit(&l->v, 1, memory_order_acquire)) {
				if (now + 10 < *next)
					*next = now + 10;	/* busy: soon again */
				continue;
			}
			if (r->seg_live[si] && (seg->dirty & ~seg->used)) {
				if (seg->purge_at <= now)
					ka_segment_release_dirty_locked(seg);
				else if (seg->purge_at < *next)
					*next = seg->purge_at;
			}
			ka_unlock(l);
		}
	}
	ka_unlock(&ka_region_lock);
}

/* The node the region of p was created for (-1: local); for tests. */
int ka_block_region_node(const void *p)
{
	ka_segment_t *seg = ka_segment_lookup(p);

	if (!seg)
		return -2;
	return seg->kind == KA_SEG_HUGE ? (int)seg->region : ka_regions[seg->region].os.node;
}

void ka_segments_stats(struct ka_stats *st)
{
	ka_page_t *page;

	ka_lock(&ka_region_lock);
	for (unsigned ri = 0; ri < ka_region_count; ri++) {
		struct ka_region *r = &ka_regions[ri];
		st->reserved += r->os.size;
		st->resident += ka_os_region_resident(&r->os);
		for (unsigned si = 0; si < KA_REGION_SEGMENTS; si++) {
			if (!(r->seg_used >> si & 1))
				continue;
			ka_segment_t *seg = (ka_segment_t *)((uint8_t *)r->os.base +
							     (size_t)si * KA_SEGMENT_SIZE);
			if (seg->cookie != ka_segment_cookie(seg) || !(seg->used & 1))
				continue;	/* being handed back right now */
			st->segments++;
			st->active += (size_t)(__builtin_popcountl(seg->used) - 1) << KA_SLICE_SHIFT;
			ka_lock(&r->seg_lock[si]);
			st->dirty += (size_t)__builtin_popcountl(seg->dirty & ~seg->used) << KA_SLICE_SHIFT;
			ka_unlock(&r->seg_lock[si]);
			ka_for_each_span(seg, page)
				st->allocated += (size_t)page->used * page->block_size;
		}
	}
	st->regions = ka_region_count;
	ka_unlock(&ka_region_lock);
	ka_lock(&ka_abandoned_lock);
	st->abandoned = ka_abandoned_count;
	ka_unlock(&ka_abandoned_lock);
}

/*
 * Lock order: heaps (heap.c), then abandoned, then regions, then a
 * segment's (an owner holding its segment's lock takes no other).  Every
 * segment's is taken around fork() too: in the child, no thread that does
 * not exist there holds one.
 */
void ka_segment_fork_lock(bool lock)
{
	if (lock) {
		ka_lock(&ka_abandoned_lock);
		ka_lock(&ka_region_lock);
	}
	for (unsigned ri = 0; ri < ka_region_count; ri++)
		for (unsigned si = 0; si < KA_REGION_SEGMENTS; si++) {
			if (lock)
				ka_lock(&ka_regions[ri].seg_lock[si]);
			else
				ka_unlock(&ka_regions[ri].seg_lock[si]);
		}
	if (!lock) {
		ka_unlock(&ka_region_lock);
		ka_unlock(&ka_abandoned_lock);
	}
}
