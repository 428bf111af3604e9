/* SPDX-License-Identifier: MIT */
/*
 * Huge blocks (over KA_LARGE_MAX) get a region of their own.  The region
 * starts with a segment header (so free() finds it like any other
 * segment); the block follows at 64 KiB, or at the requested alignment
 * when that is larger.  Fresh regions read zero.
 *
 * Room to grow.  A region is made larger than its first block: its size
 * rounded up to a power of two.  Only address space is spent on that (the
 * kernel backs pages as they are touched, for the device as for anonymous
 * memory), and it lets realloc() grow a huge block in place and lets one
 * cached region serve blocks of any size it can hold.  Not where address
 * space is counted (ka_os_address_space_counted(): RLIMIT_AS, or strict
 * overcommit, which charges a private writable mapping whole): there the
 * room would make malloc fail at a half or a quarter of what glibc
 * serves, so a region is what its first block needs.  huge_resident is
 * how much of the region, from its start, may be resident: what its
 * largest block so far reached.
 *
 * The huge cache.  Making a region, mapping it and faulting every page of
 * it in again costs far more than most programs spend using a huge block,
 * so a freed one keeps its region, mapped and resident, for the next huge
 * malloc that fits in it: the one whose resident part is nearest the size
 * asked for (faulting pages in costs more than having a few too many, so
 * those short of it count four times).  The pages past the new block stay
 * resident: giving them back and faulting them in again for the next
 * larger block made the bench's "large" workload twice as slow.  Bounded
 * three ways, the oldest evicted first: KA_HUGE_CACHE_SLOTS regions,
 * KA_HUGE_CACHE_BYTES resident, and the peak: the resident bytes of
 * cached and live huge regions together stay within a quarter over the
 * most ever live at once (a malloc that needs more evicts to make room).
 * On "large" that is tcmalloc's time at tcmalloc's peak RSS, 1.13x
 * glibc's; bounded by the peak itself it took 1.25x the time at 1.10x
 * glibc's RSS.
 *
 * Freed huge memory serves small blocks too: when a segment is wanted
 * (region.c), that is fresh memory the program is about to touch, so the
 * oldest cached regions give up as much first (ka_huge_cache_shrink).
 * Without it a program that freed 128 MiB of huge blocks and then
 * allocated 128 MiB of small ones peaked at twice glibc's RSS.
 *
 * A cached region goes back to the kernel after the purge delay, from
 * the purge thread or some thread's slow path (purge.c), or at once on
 * malloc_trim(0) and when a thread's heap is given back at its exit
 * (heap.c: not when parked); with a delay of 0, or
 * when the freeing thread has no heap, nothing is cached.  A reused block
 * is not zero where the previous one was: calloc asks for it to be.  The
 * block of a cached region is marked KA_PAGE_CACHED, so a second free is
 * caught.
 *
 * 2 MiB regions.  Where the device takes order 9 (KA_PMD_ORDER: one
 * allocation, and with a module that maps them so, one fault and one TLB
 * entry per 2 MiB), a block whose size rounded up to 2 MiB wastes at most
 * an eighth of it (every size from 16 MiB, and 2 MiB multiples) gets an
 * order-9 region from ka_os_region_create_pmd(): the header in a head
 * of 2 MiB (address space, but for the header's 64 KiB of anonymous
 * memory), the block right after it, on a 2 MiB boundary, in the device part.  So
 * an 8 MiB block takes exactly four 2 MiB blocks, where a header in the
 * device region would have made it five.  The bound is the size classes'
 * (12.5 %), and what it bounds is real: the module fills a 2 MiB block
 * whole on its first touch, so the block's last one is resident in full.
 * Other sizes, and every block when the device offers no order 9 or
 * refuses it, or KALLOC_ORDER pins a lower order, take the region as
 * before (header inside it, the block at 64 KiB, the regions' order).  In
 * a 2 MiB region everything that goes back goes in whole 2 MiB blocks:
 * sizes round to 2 MiB, so a shrinking realloc's tail is whole blocks, and
 * the cache gives regions back whole; releasing part of a block would
 * give nothing back (the module zeroes it in place).  A realloc that would
 * grow a block of such a region past its resident part to a size the
 * bound refuses moves it instead.  The cache serves such a size from a
 * 2 MiB region only when its resident part already holds the block
 * (nothing to touch, nothing more to waste); any block may take a cached
 * region of the other layout (4 KiB blocks waste nothing, and reuse beats
 * a fresh region and its faults).
 */
#include "internal.h"

struct ka_huge_entry {
	ka_segment_t *seg;
	size_t map;			/* the region's size */
	size_t head;			/* its huge_head */
	size_t resident;		/* its huge_resident */
	uint64_t expires;		/* ms: given back then */
	int node;
};

static _Atomic size_t ka_huge_bytes, ka_huge_count;	/* live blocks */
static _Atomic uint64_t ka_huge_reused;

/* All under ka_huge_lock; bytes are resident bytes (ka_huge_bytes_of). */
static struct ka_huge_entry ka_huge_cache[KA_HUGE_CACHE_SLOTS];	/* oldest first */
static _Atomic unsigned ka_huge_cached;	/* entries; peeked without the lock */
static size_t ka_huge_cache_bytes;
static size_t ka_huge_live;		/* of live blocks' regions */
static size_t ka_huge_peak;		/* the most ka_huge_live has been */
static ka_lock_t ka_huge_lock;

static struct ka_os_region ka_huge_os(const ka_segment_t *seg)
{
	return (struct ka_os_region){
		.base = (void *)seg, .size = seg->huge_map_size, .head = seg->huge_head,
		.id = seg->huge_id, .node = (int)seg->region,
	};
}

/* The resident bytes of a region resident up to resident from its start:
 * a 2 MiB region's anonymous head holds only the header's pages. */
static size_t ka_huge_bytes_of(size_t resident, size_t head)
{
	return resident - head;
}

/* Whether a block of size bytes is worth a 2 MiB region (see above). */
static bool ka_huge_pmd_fits(size_t size)
{
	size_t body = (size + KA_PMD_SIZE - 1) & ~(KA_PMD_SIZE - 1);

	return body - size <= size / 8;
}

/* Where a block aligned to align starts in a region with that head. */
static size_t ka_huge_block_offset(size_t head, size_t align)
{
	size_t min = head ? head : KA_SLICE_SIZE;

	return align > min ? align : min;
}

/* A region's alignment for a block aligned to align: a segment's at least. */
static size_t ka_huge_region_align(size_t align)
{
	return align > KA_SEGMENT_SIZE ? align : KA_SEGMENT_SIZE;
}

/* What a block of size bytes at off makes resident, from the region start. */
static size_t ka_huge_need(size_t head, size_t off, size_t size)
{
	size_t gran = head ? KA_PMD_SIZE : ka_os_granule();

	return (off + size + gran - 1) & ~(gran - 1);
}

bool ka_huge_region_view(const ka_segment_t *seg, struct ka_os_region_view *v)
{
	struct ka_os_region r = ka_huge_os(seg);

	return ka_os_region_view(&r, v);
}

static void ka_huge_destroy(ka_segment_t *seg)
{
	struct ka_os_region r = ka_huge_os(seg);

	ka_segment_unmap(seg, r.size);
	seg->cookie = 0;
	ka_os_region_destroy(&r);
}

static size_t ka_huge_offset(const ka_segment_t *seg)
{
	return (size_t)((const uint8_t *)seg->huge_block - (const uint8_t *)seg);
}

/* KALLOC_DEBUG fills and checks a cached region from its block to the end
 * of its resident part: the rest reads zero. */
static size_t ka_huge_junk_size(const ka_segment_t *seg)
{
	return seg->huge_resident - ka_huge_offset(seg);
}

/* A cached region leaves for good: the last look at its junk. */
static void ka_huge_drop(ka_segment_t *seg)
{
	if (KA_UNLIKELY(ka_debug))
		ka_debug_check_junk("block", seg->huge_block, ka_huge_junk_size(seg));
	ka_huge_destroy(seg);
}

static void ka_huge_drop_all(ka_segment_t **segs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		ka_huge_drop(segs[i]);
}

/* Called with ka_huge_lock held. */
static void ka_huge_cache_remove(unsigned i)
{
	unsigned n = atomic_load_explicit(&ka_huge_cached, KA_RELAXED);

	ka_huge_cache_bytes -= ka_huge_bytes_of(ka_huge_cache[i].resident, ka_huge_cache[i].head);
	memmove(&ka_huge_cache[i], &ka_huge_cache[i + 1], (n - i - 1) * sizeof *ka_huge_cache);
	atomic_store_explicit(&ka_huge_cached, n - 1, KA_RELAXED);
}

/*
 * Called with ka_huge_lock held: bytes more go live, and the oldest cached
 * regions make room for them under the peak and a quarter, into evicted
 * (for the caller to drop once the lock is let go); how many.
 */
static unsigned ka_huge_go_live(size_t bytes, ka_segment_t **evicted)
{
	unsigned ne = 0;

	ka_huge_live += bytes;
	if (ka_huge_live > ka_huge_peak)
		ka_huge_peak = ka_huge_live;
	while (ka_huge_cache_bytes &&
	       ka_huge_cache_bytes + ka_huge_live > ka_huge_peak + ka_huge_peak / 4) {
		evicted[ne++] = ka_huge_cache[0].seg;
		ka_huge_cache_remove(0);
	}
	return ne;
}

/* What stays resident when a block shrinks to end at need: a tail of at
 * most an eighth of it (not worth a system call), else no tail. */
static size_t ka_huge_trimmed(size_t resident, size_t need)
{
	if (need >= resident)
		return need;
	return resident - need <= need / 8 ? resident : need;
}

/* Resident bytes of seg past keep go back to the kernel: they read zero. */
static void ka_huge_release_tail(ka_segment_t *seg, size_t keep)
{
	struct ka_os_region r = ka_huge_os(seg);

	ka_os_region_release(&r, keep, seg->huge_resident - keep);
	seg->huge_resident = keep;
}

/*
 * The cached region that best fits a block of size bytes aligned to align
 * (pmd: one that would get a 2 MiB region), taken out of the cache and
 * live with at least the block resident; or NULL.  *dirty is how far,
 * from the region start, the old contents reach.
 */
static ka_segment_t *ka_huge_cache_take(size_t size, size_t align, bool pmd, int node,
					size_t *dirty)
{
	ka_segment_t *seg = NULL, *evicted[KA_HUGE_CACHE_SLOTS];
	unsigned ne = 0;
	size_t resident = 0, keep = 0, head = 0, need = 0;
	size_t region_align = ka_huge_region_align(align);

	if (!atomic_load_explicit(&ka_huge_cached, KA_RELAXED))
		return NULL;
	ka_lock(&ka_huge_lock);
	unsigned n = atomic_load_explicit(&ka_huge_cached, KA_RELAXED), best = n;
	size_t best_cost = SIZE_MAX, best_need = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct ka_huge_entry *e = &ka_huge_cache[i];
		size_t e_need = ka_huge_need(e->head, ka_huge_block_offset(e->head, align), size);
		if (e->node != node || e->map < e_need || ((uintptr_t)e->seg & (region_align - 1)))
			continue;
		if (e->head && !pmd && e->resident < e_need)
			continue;	/* 2 MiB blocks for a size the bound refuses */
		size_t cost = e->resident >= e_need ? e->resident - e_need : 4 * (e_need - e->resident);
		if (cost <= best_cost) {	/* the newest of equals: the oldest expire first */
			best = i;
			best_cost = cost;
			best_need = e_need;
		}
	}
	if (best < n) {
		seg = ka_huge_cache[best].seg;
		resident = ka_huge_cache[best].resident;
		head = ka_huge_cache[best].head;
		need = best_need;
		ka_huge_cache_remove(best);
		keep = resident > need ? resident : need;
		ka_huge_live += ka_huge_bytes_of(resident, head);	/* was cached: the sum stays put */
		if (keep > resident)
			ne = ka_huge_go_live(keep - resident, evicted);
	}
	ka_unlock(&ka_huge_lock);
	ka_huge_drop_all(evicted, ne);
	if (!seg)
		return NULL;
	atomic_fetch_add_explicit(&ka_huge_reused, 1, KA_RELAXED);
	if (KA_UNLIKELY(ka_debug))
		ka_debug_check_junk("block", seg->huge_block, ka_huge_junk_size(seg));
	*dirty = resident;
	seg->huge_resident = keep;
	return seg;
}

/*
 * seg's block was freed: keep its region for reuse, evicting the oldest to
 * make room, or say no (false) and the caller destroys it.
 */
static bool ka_huge_cache_put(ka_segment_t *seg)
{
	ka_heap_t *heap = ka_tls_heap;
	uint64_t decay = atomic_load_explicit(&ka_decay_ms, KA_RELAXED);
	size_t resident = seg->huge_resident;
	size_t bytes = ka_huge_bytes_of(resident, seg->huge_head);
	ka_segment_t *evicted[KA_HUGE_CACHE_SLOTS];
	unsigned ne = 0, n;
	bool keep = heap != &ka_heap_empty && decay != 0 && bytes <= KA_HUGE_CACHE_BYTES;

	if (keep) {
		if (KA_UNLIKELY(ka_debug))
			memset(seg->huge_block, KA_DEBUG_JUNK, ka_huge_junk_size(seg));
		atomic_store_explicit(&ka_page_of(seg, seg->huge_block)->flags,
				      KA_PAGE_HUGE | KA_PAGE_CACHED, KA_RELAXED);
	}
	uint64_t expires = keep ? ka_os_now_ms() + decay : 0;

	ka_lock(&ka_huge_lock);
	ka_huge_live -= bytes;
	if (keep) {
		/* Under the peak already: it was live a moment ago. */
		while ((n = atomic_load_explicit(&ka_huge_cached, KA_RELAXED)) ==
		       KA_HUGE_CACHE_SLOTS || ka_huge_cache_bytes + bytes > KA_HUGE_CACHE_BYTES) {
			evicted[ne++] = ka_huge_cache[0].seg;
			ka_huge_cache_remove(0);
		}
		ka_huge_cache[n] = (struct ka_huge_entry){
			.seg = seg, .map = seg->huge_map_size, .head = seg->huge_head,
			.resident = resident, .expires = expires, .node = (int)seg->region,
		};
		ka_huge_cache_bytes += bytes;
		atomic_store_explicit(&ka_huge_cached, n + 1, KA_RELAXED);
	}
	ka_unlock(&ka_huge_lock);

	ka_huge_drop_all(evicted, ne);
	if (keep) {
		if (expires < heap->purge_next)
			heap->purge_next = expires;
		ka_purge_request(expires);
	}
	return keep;
}

/* Fresh memory is wanted for something else: the oldest cached regions
 * go back until at least bytes of resident memory have. */
void ka_huge_cache_shrink(size_t bytes)
{
	ka_segment_t *evicted[KA_HUGE_CACHE_SLOTS];
	unsigned ne = 0;
	size_t freed = 0;

	if (!atomic_load_explicit(&ka_huge_cached, KA_RELAXED))
		return;
	ka_lock(&ka_huge_lock);
	while (freed < bytes && atomic_load_explicit(&ka_huge_cached, KA_RELAXED)) {
		freed += ka_huge_bytes_of(ka_huge_cache[0].resident, ka_huge_cache[0].head);
		evicted[ne++] = ka_huge_cache[0].seg;
		ka_huge_cache_remove(0);
	}
	ka_unlock(&ka_huge_lock);
	ka_huge_drop_all(evicted, ne);
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
	ka_huge_drop_all(gone, ng);
	if (next)
		*next = soonest;
	return ng > 0;
}

/* A fresh region's size for a first block ending at total: see above. */
static size_t ka_huge_reserve(size_t total)
{
	if (total > ((size_t)1 << 40) || ka_os_address_space_counted())
		return total;
	return (size_t)2 << (64 - __builtin_clzl(total - 1));
}

/*
 * A fresh region for a block of size bytes aligned to align: a 2 MiB one
 * when pmd and the device makes it, else as before.  Room to grow first,
 * then just what the block needs (room is a nicety: not at any price).
 */
static bool ka_huge_region_new(size_t size, size_t align, bool pmd, int node,
			       struct ka_os_region *r)
{
	size_t region_align = ka_huge_region_align(align);

	if (pmd) {
		size_t head = ka_huge_block_offset(KA_PMD_SIZE, align);
		size_t total = ka_huge_need(head, head, size);
		if (ka_os_region_create_pmd(ka_huge_reserve(total), head, region_align, node, r) ||
		    ka_os_region_create_pmd(total, head, region_align, node, r))
			return true;
	}
	size_t total = ka_huge_need(0, ka_huge_block_offset(0, align), size);
	return ka_os_region_create(ka_huge_reserve(total), region_align, node, r) ||
	       ka_os_region_create(total, region_align, node, r);
}

void *ka_huge_alloc(size_t size, size_t align, bool zero)
{
	size_t max_gran = ka_os_granule() > KA_PMD_SIZE ? ka_os_granule() : KA_PMD_SIZE;
	size_t max_off = ka_huge_block_offset(KA_PMD_SIZE, align);
	int node = ka_numa_node();
	size_t dirty = 0;

	if (size == 0)
		size = 1;
	if (size > PTRDIFF_MAX - max_off - max_gran) {
		errno = ENOMEM;
		return NULL;
	}
	bool pmd = ka_os_pmd_usable() && ka_huge_pmd_fits(size);
	ka_segment_t *seg = ka_huge_cache_take(size, align, pmd, node, &dirty);
	bool fresh = !seg;
	if (fresh) {
		struct ka_os_region r;
		if (!ka_huge_region_new(size, align, pmd, node, &r)) {
			errno = ENOMEM;
			return NULL;
		}
		seg = r.base;
		seg->cookie = ka_segment_cookie(seg);
		seg->kind = KA_SEG_HUGE;
		seg->huge_map_size = r.size;
		seg->huge_head = r.head;
		seg->huge_id = r.id;
		seg->region = (uint32_t)r.node;
	}
	size_t off = ka_huge_block_offset(seg->huge_head, align);
	size_t total = ka_huge_need(seg->huge_head, off, size);
	if (fresh) {
		seg->huge_resident = total;

		ka_segment_t *evicted[KA_HUGE_CACHE_SLOTS];
		ka_lock(&ka_huge_lock);
		unsigned ne = ka_huge_go_live(ka_huge_bytes_of(total, seg->huge_head), evicted);
		ka_unlock(&ka_huge_lock);
		ka_huge_drop_all(evicted, ne);
	}
	uint8_t *block = (uint8_t *)seg + off;
	seg->huge_block = block;
	seg->huge_usable = total - off;
	for (unsigned i = 0; i < KA_SLICES; i++)
		atomic_store_explicit(&seg->pages[i].flags, KA_PAGE_UNUSED, KA_RELAXED);
	atomic_store_explicit(&ka_page_of(seg, block)->flags, KA_PAGE_HUGE, KA_RELAXED);
	if (fresh)
		ka_segment_map(seg, seg->huge_map_size);
	if (zero && dirty > off)	/* past dirty it reads zero */
		memset(block, 0, dirty - off < size ? dirty - off : size);
	else if (!zero && KA_UNLIKELY(ka_debug))
		memset(block, KA_DEBUG_FRESH, seg->huge_usable);
	atomic_fetch_add_explicit(&ka_huge_bytes, seg->huge_usable, KA_RELAXED);
	atomic_fetch_add_explicit(&ka_huge_count, 1, KA_RELAXED);
	return block;
}

/*
 * realloc() of a huge block to size bytes, in place if its region has
 * room: growing makes more of it resident (the cache makes room under the
 * peak), shrinking gives a long tail back.  False if it has no room.
 */
bool ka_huge_resize(ka_segment_t *seg, size_t size)
{
	size_t off = ka_huge_offset(seg);

	if (size > seg->huge_map_size - off)
		return false;
	size_t total = ka_huge_need(seg->huge_head, off, size);
	if (seg->huge_head && total > seg->huge_resident && !ka_huge_pmd_fits(size))
		return false;	/* 2 MiB blocks for a size the bound refuses */
	size_t old_usable = seg->huge_usable, resident = seg->huge_resident;
	size_t keep = ka_huge_trimmed(resident, total);
	ka_segment_t *evicted[KA_HUGE_CACHE_SLOTS];
	unsigned ne = 0;

	ka_lock(&ka_huge_lock);
	if (keep > resident)
		ne = ka_huge_go_live(keep - resident, evicted);
	else
		ka_huge_live -= resident - keep;
	ka_unlock(&ka_huge_lock);
	ka_huge_drop_all(evicted, ne);
	if (keep < resident)
		ka_huge_release_tail(seg, keep);
	seg->huge_resident = keep;
	seg->huge_usable = total - off;
	if (KA_UNLIKELY(ka_debug) && seg->huge_usable > old_usable)
		memset((uint8_t *)seg->huge_block + old_usable, KA_DEBUG_FRESH,
		       seg->huge_usable - old_usable);
	atomic_fetch_add_explicit(&ka_huge_bytes, seg->huge_usable - old_usable, KA_RELAXED);
	return true;
}

/*
 * realloc() of a huge block past its region's room: the region moves
 * whole to a larger one, its pages with it (ka_os_region_move: nothing
 * copied, nothing untouched touched), the block at the same offset, and
 * the room then grows as ka_huge_resize() grows it.  Copying made the old
 * block and its copy resident at once and touched every page of it: a
 * buffer grown to 2 GiB a MiB at a time peaked at twice glibc's RSS and
 * took 3-5x its time, and one written only at its end 2.6 GB against
 * glibc's 9 MB (an outside tester's finding).  The segment map forgets
 * the old place before and learns the new one after, under the huge lock,
 * which fork takes: a child sees the block at one place or the other.
 * NULL where the region cannot move (a device region: the caller copies).
 */
void *ka_huge_move(ka_segment_t *seg, size_t size)
{
	size_t off = ka_huge_offset(seg);

	if (seg->huge_id || seg->huge_head || size > PTRDIFF_MAX - off - ka_os_granule())
		return NULL;
	size_t total = ka_huge_need(0, off, size);
	size_t map = ka_huge_reserve(total);
	size_t align = ka_huge_region_align(off);	/* off: the block's alignment */
	struct ka_os_region r = ka_huge_os(seg);

	ka_lock(&ka_huge_lock);
	ka_segment_unmap(seg, seg->huge_map_size);
	bool moved = ka_os_region_move(&r, map, align) ||
		     (map > total && ka_os_region_move(&r, total, align));
	if (moved) {
		seg = r.base;
		seg->cookie = ka_segment_cookie(seg);
		seg->huge_map_size = r.size;
		seg->huge_block = (uint8_t *)seg + off;
	}
	ka_segment_map(seg, seg->huge_map_size);
	ka_unlock(&ka_huge_lock);
	if (!moved)
		return NULL;
	/* Cannot fail: the new room holds size, and the region has no 2 MiB
	 * head.  The block has moved either way: never NULL from here, which
	 * would send the caller copying from where it was. */
	ka_huge_resize(seg, size);
	return seg->huge_block;
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
	ka_lock_fork(&ka_huge_lock, lock);
}
