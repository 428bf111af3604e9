/* SPDX-License-Identifier: MIT */
/*
 * The segment map: a byte per 4 MiB of address space, so that free() finds
 * the segment of any pointer, and rejects the pointers that are not ours,
 * before touching them.  1 marks a segment start, v > 1 the inside of a
 * huge segment v-1 granules (at most 254) further on.
 */
#include "internal.h"

_Alignas(4096) _Atomic uint8_t ka_segmap[KA_SEGMAP_SIZE];

/*
 * The map is 32 MiB of zero-fill memory, of which a process touches a few
 * bytes per 4 MiB it maps; THP "always" made a 2 MiB page of it resident
 * (every liballoc process 2 MiB more than its own memory, where the page
 * fell inside the map).  4 KiB pages: see ka_os_small_pages().
 */
void ka_segment_map_init(void)
{
	ka_os_small_pages((void *)ka_segmap, sizeof ka_segmap);
}

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
