/* SPDX-License-Identifier: MIT */
/*
 * Abandoned segments: those of a thread that exited (thread.c), when its
 * heap is given back (at once, or parked a decay first: heap.c), or that
 * is not in a forked child (fork.c).  They are nobody's: a thread that
 * needs room reclaims one on its node, and until then the purge thread
 * collects the remote frees into them and gives their memory back.  The
 * list has a lock of its own (lock order: fork.c).
 *
 * A free into an abandoned segment tells the purge thread
 * (ka_abandoned_block_freed), once until it next collects: it collects
 * half a decay later, and what came free by then goes back a decay after
 * that first free, as the spans an owner frees go back a decay after the
 * first of them.  It used to learn of such frees only on its poll, a
 * decay after the thread exited, then ever less often, and only then
 * start the decay: an exited thread's memory came back two decays after
 * another thread freed it, or much later (Documentation/benchmarks.md).
 */
#include "internal.h"

static ka_segment_t *ka_abandoned;
static _Atomic size_t ka_abandoned_count;	/* peeked without the lock */
static ka_lock_t ka_abandoned_lock;
static uint64_t ka_abandoned_poll;	/* ms between looks for remote frees */
/* ms: the first free into an abandoned segment since the last collection;
 * 0: none, the next one tells the purge thread. */
static _Atomic uint64_t ka_abandoned_freed_at;

/* Put seg on the abandoned list; ka_abandoned_lock held. */
static void ka_abandoned_push(ka_segment_t *seg)
{
	ka_seg_list_push(&ka_abandoned, seg);
	ka_abandoned_count++;
}

/* Take seg off the abandoned list; ka_abandoned_lock held. */
static void ka_abandoned_unlink(ka_segment_t *seg)
{
	ka_seg_list_remove(&ka_abandoned, seg);
	ka_abandoned_count--;
}

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
			ka_abandoned_push(seg);
			ka_abandoned_poll = 0;	/* look soon: remote frees come next */
			ka_unlock(&ka_abandoned_lock);
		}
	}
	if (atomic_load_explicit(&ka_abandoned_count, KA_RELAXED))
		ka_purge_request(ka_purge_deadline());
}

/*
 * Another thread freed a block into an abandoned segment (free.c): the
 * first such free since the last collection asks the purge thread to
 * collect, half a decay later (10 ms at least), so that a program freeing
 * such blocks all along wakes it about twice a decay (collecting one
 * batch as the one before it is due), not once a free.  The other frees
 * cost a load.
 */
void ka_abandoned_block_freed(void)
{
	uint64_t none = 0;

	if (atomic_load_explicit(&ka_abandoned_freed_at, KA_RELAXED))
		return;
	uint64_t now = ka_os_now_ms() | 1;	/* never "none" */
	if (!atomic_compare_exchange_strong(&ka_abandoned_freed_at, &none, now))
		return;
	uint64_t wait = atomic_load_explicit(&ka_decay_ms, KA_RELAXED) / 2;
	ka_purge_request(now + (wait > 10 ? wait : 10));
}

void ka_segment_adopt_pages(ka_heap_t *heap, ka_segment_t *seg)
{
	ka_page_t *page;

	ka_for_each_span(seg, page)
		ka_page_adopt(heap, page);
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
 * and exited's, whose threads are not in the child, is abandoned, but
 * those of a heap whose thread was halfway through changing its pages
 * (ka_heap_change_begin): they stay that heap's, unused.  The
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
			ka_segment_t *seg = ka_region_segment(r, si);
			uintptr_t g = (uintptr_t)seg >> KA_SEGMENT_SHIFT;
			if (!(r->seg_used >> si & 1) || seg->cookie != ka_segment_cookie(seg) ||
			    atomic_load_explicit(&ka_segmap[g], KA_RELAXED) != 1)
				continue;	/* not handed out, or on its way back */
			ka_heap_t *heap = atomic_load_explicit(&seg->heap, KA_RELAXED);
			if (heap && (heap == self || heap == exited || heap->changing))
				continue;
			ka_for_each_span(seg, page) {
				atomic_fetch_and_explicit(&page->flags, (uint8_t)~KA_PAGE_FULL, KA_RELAXED);
				atomic_fetch_and_explicit(&page->xthread, ~KA_XT_DELAYED, KA_RELAXED);
			}
			seg->in_full_list = 0;
			ka_segment_set_heap(seg, NULL);
			ka_abandoned_push(seg);
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
 * the pool once empty.  They came free at the first free since the last
 * collection that told (ka_abandoned_block_freed), else now.  While some
 * hold live blocks that other threads may still free, they are also
 * looked at again after a decay, then less often
 * (twice the wait each time nothing came free, at most 64 decays): a
 * block that lives for good costs a wake-up a minute, not one a second;
 * the look catches a free that raced with the abandoning and did not tell.
 * *next becomes when to look again.  True if anything went back.
 */
bool ka_segments_collect_abandoned(uint64_t now, bool force, uint64_t *next)
{
	uint64_t decay = atomic_load_explicit(&ka_decay_ms, KA_RELAXED);
	bool any = false, freed = false;
	ka_segment_t *seg, *n;
	ka_page_t *page;

	if (!atomic_load_explicit(&ka_abandoned_count, KA_RELAXED)) {
		/* into a segment reclaimed since: no deadline left for it to start */
		if (atomic_load_explicit(&ka_abandoned_freed_at, KA_RELAXED))
			atomic_store(&ka_abandoned_freed_at, 0);
		return false;
	}
	ka_lock(&ka_abandoned_lock);
	/* Frees from here on tell again: what this pass misses is collected. */
	uint64_t since = atomic_exchange(&ka_abandoned_freed_at, 0);
	if (since == 0 || since > now)
		since = now;
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
			seg->purge_at = since + decay;
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

size_t ka_abandoned_segments(void)
{
	ka_lock(&ka_abandoned_lock);
	size_t n = ka_abandoned_count;
	ka_unlock(&ka_abandoned_lock);
	return n;
}

void ka_abandoned_fork_lock(bool lock)
{
	ka_lock_fork(&ka_abandoned_lock, lock);
}
