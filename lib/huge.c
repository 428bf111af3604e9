/* SPDX-License-Identifier: MIT */
/*
 * Huge blocks (over KA_LARGE_MAX) get a region of their own, destroyed and
 * unmapped on free.  The region starts with a segment header (so free()
 * finds it like any other segment); the block follows at 64 KiB, or at the
 * requested alignment when that is larger.  Fresh regions read zero.
 */
#include "internal.h"

_Atomic size_t ka_huge_bytes, ka_huge_count;

void *ka_huge_alloc(size_t size, size_t align)
{
	size_t off = align > KA_SLICE_SIZE ? align : KA_SLICE_SIZE;
	size_t gran = ka_os_granule();
	struct ka_os_region r;

	if (size == 0)
		size = 1;
	if (size > PTRDIFF_MAX - off - gran) {
		errno = ENOMEM;
		return NULL;
	}
	size_t total = (off + size + gran - 1) & ~(gran - 1);
	if (!ka_os_region_create(total, align > KA_SEGMENT_SIZE ? align : KA_SEGMENT_SIZE,
				 ka_numa_node(), &r)) {
		errno = ENOMEM;
		return NULL;
	}
	ka_segment_t *seg = r.base;
	uint8_t *block = (uint8_t *)r.base + off;
	seg->cookie = ka_segment_cookie(seg);
	seg->kind = KA_SEG_HUGE;
	seg->huge_block = block;
	seg->huge_usable = total - off;
	seg->huge_map_size = total;
	seg->huge_id = r.id;
	seg->region = (uint32_t)r.node;
	for (unsigned i = 0; i < KA_SLICES; i++)
		atomic_store_explicit(&seg->pages[i].flags, KA_PAGE_UNUSED, KA_RELAXED);
	atomic_store_explicit(&ka_page_of(seg, block)->flags, KA_PAGE_HUGE, KA_RELAXED);
	ka_segment_map(seg, total);
	atomic_fetch_add_explicit(&ka_huge_bytes, seg->huge_usable, KA_RELAXED);
	atomic_fetch_add_explicit(&ka_huge_count, 1, KA_RELAXED);
	return block;
}

void ka_huge_free(ka_segment_t *seg)
{
	struct ka_os_region r = {
		.base = seg, .size = seg->huge_map_size, .id = seg->huge_id,
		.node = (int)seg->region,
	};

	atomic_fetch_sub_explicit(&ka_huge_bytes, seg->huge_usable, KA_RELAXED);
	atomic_fetch_sub_explicit(&ka_huge_count, 1, KA_RELAXED);
	ka_segment_unmap(seg, r.size);
	seg->cookie = 0;
	ka_os_region_destroy(&r);
}
