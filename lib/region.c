/* SPDX-License-Identifier: MIT */
/*
 * The region table: a pool of segments.  A region (64 MiB, os.c) is cut
 * into 4 MiB segments aligned to their size, so free() finds a segment by
 * masking a pointer; a segment is handed out (ka_segment_new) and comes
 * back empty (ka_segment_to_pool), all of it given back to the kernel.
 * Each segment has a small lock, kept here (not in the header, which goes
 * back to the kernel with the segment): it covers the slice bitmaps and
 * purge_at, so that the purge thread (purge.c) can give back the dirty
 * slices of a segment whose owner sleeps while the owner carves or frees
 * spans (segment.c).
 */
#include "internal.h"

/*
 * The first 16 MiB of segments: what a small process lives in.  Past
 * them, as in glibc's heap, THP "always" may back the memory with 2 MiB
 * pages, where they cost a large heap little and save it faults and TLB
 * entries.
 */
#define KA_SMALL_PAGES_BYTES	(4 * KA_SEGMENT_SIZE)

struct ka_region ka_regions[KA_MAX_REGIONS];
unsigned ka_region_count;
ka_lock_t ka_region_lock;

static bool *ka_seg_live(const ka_segment_t *seg)
{
	return &ka_regions[seg->region].seg_live[seg->region_offset >> KA_SEGMENT_SHIFT];
}

ka_segment_t *ka_segment_new(int node)
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
		/* A small process's segments, the first ones handed out,
		 * take 4 KiB pages whatever the THP setting: see os.c. */
		if (ri == 0)
			ka_os_region_small_pages(&r->os, KA_SMALL_PAGES_BYTES);
	}
	si = (unsigned)__builtin_ctz(~r->seg_used);
	r->seg_used |= 1u << si;
	ka_unlock(&ka_region_lock);

	ka_segment_t *seg = ka_region_segment(r, si);
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
void ka_segment_release_dirty_locked(ka_segment_t *seg)
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
	ka_seg_set_dirty(seg, 0);
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
			ka_segment_t *seg = ka_region_segment(r, si);
			ka_lock_t *l = &r->seg_lock[si];
			if (!ka_trylock(l)) {
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

/* What the kernel says of the region of p (tests); false if none. */
bool ka_block_region_view(const void *p, struct ka_os_region_view *v)
{
	ka_segment_t *seg = ka_segment_lookup(p);

	if (!seg)
		return false;
	if (seg->kind == KA_SEG_HUGE)
		return ka_huge_region_view(seg, v);
	return ka_os_region_view(&ka_regions[seg->region].os, v);
}

/*
 * In a fork child (fork.c): a slot of the table taken but not live is a
 * gone thread's cut halfway through ka_segment_new() (slot taken, header
 * not yet live) or ka_segment_to_pool() (no longer live, slot not yet
 * free).  No heap holds such a segment and it holds no block, so the slot
 * goes back to the pool as to_pool would have put it; else its 4 MiB
 * stayed out of use in the child for good.  The child has one thread.
 */
void ka_segments_recover_cut(void)
{
	ka_lock(&ka_region_lock);
	for (unsigned ri = 0; ri < ka_region_count; ri++) {
		struct ka_region *r = &ka_regions[ri];
		for (unsigned si = 0; si < KA_REGION_SEGMENTS; si++) {
			if (!(r->seg_used >> si & 1) || r->seg_live[si])
				continue;
			ka_segment_t *seg = ka_region_segment(r, si);
			ka_segment_unmap(seg, KA_SEGMENT_SIZE);
			ka_os_region_release(&r->os, (size_t)si * KA_SEGMENT_SIZE, KA_SEGMENT_SIZE);
			r->seg_used &= ~(1u << si);
		}
	}
	ka_unlock(&ka_region_lock);
}

/*
 * Lock order: the table's, then a segment's (an owner holding its
 * segment's lock takes no other); fork.c has the whole order.  Every
 * segment's is taken around fork() too: in the child, no thread that does
 * not exist there holds one.
 */
void ka_regions_fork_lock(bool lock)
{
	if (lock)
		ka_lock(&ka_region_lock);
	for (unsigned ri = 0; ri < ka_region_count; ri++)
		for (unsigned si = 0; si < KA_REGION_SEGMENTS; si++) {
			ka_lock_fork(&ka_regions[ri].seg_lock[si], lock);
		}
	if (!lock)
		ka_unlock(&ka_region_lock);
}
