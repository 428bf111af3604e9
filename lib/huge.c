/* SPDX-License-Identifier: MIT */
/*
 * Huge blocks (over KA_LARGE_MAX) get a region of their own.  The region
 * starts with a segment header (so free() finds it like any other
 * segment); the block follows at 64 KiB, or at the requested alignment
 * when that is larger.  Fresh regions read zero.
 *
 * The huge cache.  Making a region, mapping it and faulting every page of
 * it in again costs far more than most programs spend using a huge block,
 * so a freed one keeps its region, mapped and resident, for the next huge
 * malloc that needs between half of it and all of it.  That block is the
 * size asked for (page-rounded), as a fresh one would be; the rest of the
 * region stays behind it, unused, until it is freed.  Bounded three ways,
 * the oldest evicted first: KA_HUGE_CACHE_SLOTS regions,
 * KA_HUGE_CACHE_BYTES, and the peak: cached and live huge regions
 * together never exceed the most that was ever live at once (a malloc the
 * cache cannot serve evicts to make room), so the cache adds nothing to
 * the process's peak.  On the bench's "large" workload, where destroying
 * every region made liballoc ten times slower than glibc, this matches
 * glibc's time at glibc's peak RSS.
 *
 * A cached region goes back to the kernel after the purge delay, from
 * some thread's slow path (purge.c), or at once on malloc_trim(0) and when
 * a thread exits (heap.c); with a delay of 0, or when the freeing thread
 * has no heap (nothing would purge it), nothing is cached.  A reused block
 * is not zero: calloc asks for one that is.  The block of a cached region
 * is marked KA_PAGE_CACHED, so a second free is caught.
 */
#include "internal.h"

struct ka_huge_entry {
	ka_segment_t *seg;
	size_t size;			/* of the region */
	uint64_t expires;		/* ms: given back then */
	int node;
};

static _Atomic size_t ka_huge_bytes, ka_huge_count;	/* live blocks */
static _Atomic uint64_t ka_huge_reused;

/* All under ka_huge_lock. */
static struct ka_huge_entry ka_huge_cache[KA_HUGE_CACHE_SLOTS];	/* oldest first */
static _Atomic unsigned ka_huge_cached;	/* entries; peeked without the lock */
static size_t ka_huge_cache_bytes;
static size_t ka_huge_live;		/* bytes of live blocks' regions */
static size_t ka_huge_peak;		/* the most ka_huge_live has been */
static ka_lock_t ka_huge_lock;

static void ka_huge_destroy(ka_segment_t *seg)
{
	struct ka_os_region r = {
		.base = seg, .size = seg->huge_map_size, .id = seg->huge_id,
		.node = (int)seg->region,
	};

	ka_segment_unmap(seg, r.size);
	seg->cookie = 0;
	ka_os_region_destroy(&r);
}

/* KALLOC_DEBUG fills and checks a cached region from its block to its end. */
static size_t ka_huge_junk_size(const ka_segment_t *seg)
{
	return (size_t)((const uint8_t *)seg + seg->huge_map_size - (const uint8_t *)seg->huge_block);
}

/* A cached region leaves for good: the last look at its junk. */
static void ka_huge_drop(ka_segment_t *seg)
{
	if (KA_UNLIKELY(ka_debug))
		ka_debug_check_junk("block", seg->huge_block, ka_huge_junk_size(seg));
	ka_huge_destroy(seg);
}

/* Called with ka_huge_lock held. */
static void ka_huge_cache_remove(unsigned i)
{
	unsigned n = atomic_load_explicit(&ka_huge_cached, KA_RELAXED);

	ka_huge_cache_bytes -= ka_huge_cache[i].size;
	memmove(&ka_huge_cache[i], &ka_huge_cache[i + 1], (n - i - 1) * sizeof *ka_huge_cache);
	atomic_store_explicit(&ka_huge_cached, n - 1, KA_RELAXED);
}

/* Called with ka_huge_lock held: a region of size bytes goes live. */
static void ka_huge_count_live(size_t size)
{
	ka_huge_live += size;
	if (ka_huge_live > ka_huge_peak)
		ka_huge_peak = ka_huge_live;
}

/*
 * The smallest cached region that fits, the newest of equals (the oldest
 * expire first), taken out of the cache and live; or NULL.
 */
static ka_segment_t *ka_huge_cache_take(size_t need, size_t align, int node)
{
	ka_segment_t *seg = NULL;

	if (!atomic_load_explicit(&ka_huge_cached, KA_RELAXED))
		return NULL;
	ka_lock(&ka_huge_lock);
	unsigned n = atomic_load_explicit(&ka_huge_cached, KA_RELAXED), best = n;
	for (unsigned i = 0; i < n; i++) {
		const struct ka_huge_entry *e = &ka_huge_cache[i];
		if (e->node == node && e->size >= need && e->size / 2 <= need &&
		    !((uintptr_t)e->seg & (align - 1)) &&
		    (best == n || e->size <= ka_huge_cache[best].size))
			best = i;
	}
	if (best < n) {
		seg = ka_huge_cache[best].seg;
		ka_huge_cache_remove(best);
		ka_huge_count_live(seg->huge_map_size);	/* the sum stays under the peak */
	}
	ka_unlock(&ka_huge_lock);
	if (seg)
		atomic_fetch_add_explicit(&ka_huge_reused, 1, KA_RELAXED);
	return seg;
}

/* A fresh region goes live: the cache makes room for it under the peak. */
static void ka_huge_fresh_live(size_t size)
{
	ka_segment_t *evicted[KA_HUGE_CACHE_SLOTS];
	unsigned ne = 0;

	ka_lock(&ka_huge_lock);
	ka_huge_count_live(size);
	while (ka_huge_cache_bytes && ka_huge_cache_bytes + ka_huge_live > ka_huge_peak) {
		evicted[ne++] = ka_huge_cache[0].seg;
		ka_huge_cache_remove(0);
	}
	ka_unlock(&ka_huge_lock);
	for (unsigned i = 0; i < ne; i++)
		ka_huge_drop(evicted[i]);
}

/*
 * seg's block was freed: keep its region for reuse, evicting the oldest to
 * make room, or say no (false) and the caller destroys it.
 */
static bool ka_huge_cache_put(ka_segment_t *seg)
{
	ka_heap_t *heap = ka_tls_heap;
	uint64_t decay = atomic_load_explicit(&ka_decay_ms, KA_RELAXED);
	size_t size = seg->huge_map_size;
	ka_segment_t *evicted[KA_HUGE_CACHE_SLOTS];
	unsigned ne = 0, n;
	bool keep = heap != &ka_heap_empty && decay != 0 && size <= KA_HUGE_CACHE_BYTES;

	if (keep) {
		if (KA_UNLIKELY(ka_debug))
			memset(seg->huge_block, KA_DEBUG_JUNK, ka_huge_junk_size(seg));
		atomic_store_explicit(&ka_page_of(seg, seg->huge_block)->flags,
				      KA_PAGE_HUGE | KA_PAGE_CACHED, KA_RELAXED);
	}
	uint64_t expires = keep ? ka_os_now_ms() + decay : 0;

	ka_lock(&ka_huge_lock);
	ka_huge_live -= size;
	if (keep) {
		/* Under the peak already: it was live a moment ago. */
		while ((n = atomic_load_explicit(&ka_huge_cached, KA_RELAXED)) ==
		       KA_HUGE_CACHE_SLOTS || ka_huge_cache_bytes + size > KA_HUGE_CACHE_BYTES) {
			evicted[ne++] = ka_huge_cache[0].seg;
			ka_huge_cache_remove(0);
		}
		ka_huge_cache[n] = (struct ka_huge_entry){
			.seg = seg, .size = size, .expires = expires, .node = (int)seg->region,
		};
		ka_huge_cache_bytes += size;
		atomic_store_explicit(&ka_huge_cached, n + 1, KA_RELAXED);
	}
	ka_unlock(&ka_huge_lock);

	for (unsigned i = 0; i < ne; i++)
		ka_huge_drop(evicted[i]);
	if (keep && expires < heap->purge_next)
		heap->purge_next = expires;
	return keep;
}

/*
 * Give back the cached regions whose delay ran out by now, or all of them;
 * *next (if asked) becomes when the next one is due.  True if any went.
 */
bool ka_huge_cache_purge(uint64_t now, bool all, uint64_t *next)
{
	ka_segment_t *gone[KA_HUGE_CACHE_SLOTS];
	unsigned ng = 0;
	uint64_t soonest = UINT64_MAX;

	if (atomic_load_explicit(&ka_huge_cached, KA_RELAXED)) {
		ka_lock(&ka_huge_lock);
		for (unsigned i = 0; i < atomic_load_explicit(&ka_huge_cached, KA_RELAXED);) {
			if (all || ka_huge_cache[i].expires <= now) {
				gone[ng++] = ka_huge_cache[i].seg;
				ka_huge_cache_remove(i);
				continue;
			}
			if (ka_huge_cache[i].expires < soonest)
				soonest = ka_huge_cache[i].expires;
			i++;
		}
		ka_unlock(&ka_huge_lock);
	}
	for (unsigned i = 0; i < ng; i++)
		ka_huge_drop(gone[i]);
	if (next)
		*next = soonest;
	return ng > 0;
}

void *ka_huge_alloc(size_t size, size_t align, bool zero)
{
	size_t off = align > KA_SLICE_SIZE ? align : KA_SLICE_SIZE;
	size_t region_align = align > KA_SEGMENT_SIZE ? align : KA_SEGMENT_SIZE;
	size_t gran = ka_os_granule();
	int node = ka_numa_node();

	if (size == 0)
		size = 1;
	if (size > PTRDIFF_MAX - off - gran) {
		errno = ENOMEM;
		return NULL;
	}
	size_t total = (off + size + gran - 1) & ~(gran - 1);
	ka_segment_t *seg = ka_huge_cache_take(total, region_align, node);
	bool fresh = !seg;
	if (seg) {
		if (KA_UNLIKELY(ka_debug))
			ka_debug_check_junk("block", seg->huge_block, ka_huge_junk_size(seg));
	} else {
		struct ka_os_region r;
		if (!ka_os_region_create(total, region_align, node, &r)) {
			errno = ENOMEM;
			return NULL;
		}
		seg = r.base;
		seg->cookie = ka_segment_cookie(seg);
		seg->kind = KA_SEG_HUGE;
		seg->huge_map_size = total;
		seg->huge_id = r.id;
		seg->region = (uint32_t)r.node;
		ka_huge_fresh_live(total);
	}
	uint8_t *block = (uint8_t *)seg + off;
	seg->huge_block = block;
	seg->huge_usable = total - off;
	for (unsigned i = 0; i < KA_SLICES; i++)
		atomic_store_explicit(&seg->pages[i].flags, KA_PAGE_UNUSED, KA_RELAXED);
	atomic_store_explicit(&ka_page_of(seg, block)->flags, KA_PAGE_HUGE, KA_RELAXED);
	if (fresh)
		ka_segment_map(seg, total);
	if (zero && !fresh)
		memset(block, 0, size);
	else if (!zero && KA_UNLIKELY(ka_debug))
		memset(block, KA_DEBUG_FRESH, seg->huge_usable);
	atomic_fetch_add_explicit(&ka_huge_bytes, seg->huge_usable, KA_RELAXED);
	atomic_fetch_add_explicit(&ka_huge_count, 1, KA_RELAXED);
	return block;
}

void ka_huge_free(ka_segment_t *seg)
{
	atomic_fetch_sub_explicit(&ka_huge_bytes, seg->huge_usable, KA_RELAXED);
	atomic_fetch_sub_explicit(&ka_huge_count, 1, KA_RELAXED);
	if (ka_huge_cache_put(seg)) {
		ka_heap_maybe_purge(ka_tls_heap);	/* threads that only free purge too */
		return;
	}
	ka_huge_destroy(seg);
}

void ka_huge_stats(struct ka_stats *st)
{
	st->huge_allocated = atomic_load_explicit(&ka_huge_bytes, KA_RELAXED);
	st->huge_count = atomic_load_explicit(&ka_huge_count, KA_RELAXED);
	st->huge_reused = atomic_load_explicit(&ka_huge_reused, KA_RELAXED);
	ka_lock(&ka_huge_lock);
	st->huge_cached = ka_huge_cache_bytes;
	ka_unlock(&ka_huge_lock);
}

void ka_huge_fork_lock(bool lock)
{
	if (lock)
		ka_lock(&ka_huge_lock);
	else
		ka_unlock(&ka_huge_lock);
}
