/* SPDX-License-Identifier: MIT */
/*
 * Purging with decay: a freed span stays resident for ka_decay_ms (1 s by
 * default, KALLOC_DECAY_MS, or mallopt(KA_M_DECAY_MS)) in case it is
 * wanted again, then its slices go back to the kernel (KALLOC_IOC_RELEASE
 * or MADV_DONTNEED, os.c); a segment left empty goes back to the region
 * pool.  A heap with pages also purges on a tick, every decay (100 ms at
 * least): its empty pages, which free() leaves in their queues (page.c),
 * go back as spans then.  The owning thread does this from its slow path,
 * so no thread touches another's segments.  The huge cache (huge.c) is shared: any
 * heap's purge gives back the cached regions that are due, and a heap that
 * cached one purges when it is due.  malloc_trim(0) purges the caller's
 * heap, the abandoned segments and the huge cache at once and bumps an
 * epoch that makes every other heap purge everything on its next slow path.
 */
#include <stdlib.h>

#include "internal.h"

_Atomic uint64_t ka_decay_ms = 1000;
_Atomic unsigned ka_purge_epoch;

void ka_purge_init(void)
{
	const char *env = getenv("KALLOC_DECAY_MS");

	if (env && *env)
		atomic_store_explicit(&ka_decay_ms, strtoull(env, NULL, 10), KA_RELAXED);
}

void ka_span_became_dirty(ka_heap_t *heap, ka_segment_t *seg)
{
	uint64_t decay = atomic_load_explicit(&ka_decay_ms, KA_RELAXED);

	if (decay == 0) {
		ka_segment_release_dirty(seg);
		if (seg->used == 1)
			heap->purge_next = 0;	/* return it from the slow path */
		return;
	}
	if (seg->purge_at == 0) {
		seg->purge_at = ka_os_now_ms() + decay;
		if (seg->purge_at < heap->purge_next)
			heap->purge_next = seg->purge_at;
	}
}

/*
 * When a heap with pages looks at them next.  Its empty pages wait in
 * their queues (page.c) until then: on the tick they go back as spans,
 * which become dirty and go back to the kernel a decay later.  Not sooner
 * than 100 ms: with a decay of 0, walking every page on every slow path
 * would cost more than the memory is worth.
 */
uint64_t ka_purge_tick(ka_heap_t *heap)
{
	uint64_t d = atomic_load_explicit(&ka_decay_ms, KA_RELAXED);
	uint64_t t = ka_os_now_ms() + (d > 100 ? d : 100);

	return t < heap->purge_next ? t : heap->purge_next;
}

void ka_heap_purge(ka_heap_t *heap, bool force)
{
	unsigned epoch = atomic_load_explicit(&ka_purge_epoch, KA_RELAXED);

	if (heap->purge_epoch != epoch) {
		heap->purge_epoch = epoch;
		force = true;
	}
	uint64_t now = ka_os_now_ms();
	if (!force && now < heap->purge_next)
		return;

	ka_heap_free_empty_pages(heap);
	if (force)		/* malloc_trim(0): see page.c for why not on the tick */
		ka_heap_release_free_blocks(heap);

	uint64_t next = UINT64_MAX;
	ka_segment_t *seg, *n;
	for (seg = heap->segs_avail; seg; seg = n) {
		n = seg->next;
		if (seg->dirty & ~seg->used) {
			if (!force && seg->purge_at > now) {
				if (seg->purge_at < next)
					next = seg->purge_at;
				continue;
			}
			ka_segment_release_dirty(seg);
		}
		seg->purge_at = 0;
		if (seg->used == 1) {
			ka_seg_list_remove(&heap->segs_avail, seg);
			ka_segment_set_heap(seg, NULL);
			ka_segment_to_pool(seg);
		}
	}
	uint64_t huge_next;
	ka_huge_cache_purge(now, force, &huge_next);
	heap->purge_next = next < huge_next ? next : huge_next;
	if (heap->pages)
		heap->purge_next = ka_purge_tick(heap);
}

int ka_malloc_trim(size_t pad)
{
	ka_heap_t *heap = ka_tls_heap;
	uint64_t before = atomic_load(&ka_os_released_bytes);

	(void)pad;
	ka_process_init();
	bool huge = ka_huge_cache_purge(0, true, NULL);	/* before the heap's purge does */
	if (heap != &ka_heap_empty) {
		ka_heap_drain_delayed(heap);
		ka_heap_purge(heap, true);
	}
	ka_heaps_drain_idle();
	ka_segments_trim_abandoned();
	unsigned epoch = atomic_fetch_add(&ka_purge_epoch, 1) + 1;
	if (heap != &ka_heap_empty)
		heap->purge_epoch = epoch;
	return huge || atomic_load(&ka_os_released_bytes) > before;
}

int ka_mallopt(int param, int value)
{
	if (param == KA_M_DECAY_MS) {
		if (value < 0)
			return 0;
		atomic_store_explicit(&ka_decay_ms, (uint64_t)value, KA_RELAXED);
		return 1;
	}
	/* glibc's parameters (M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX,
	 * ...) tune a different design: accepted and ignored. */
	return param >= -8 && param <= 1;
}
