/* SPDX-License-Identifier: MIT */
/*
 * Size classes: 16 bytes apart up to 128, then eight per doubling.
 *
 *   16 32 48 64 80 96 112 128                (16 apart)
 *   144 160 ... 256                          (16 apart: 8 classes in (128,256])
 *   288 320 ... 512                          (32 apart)
 *   ... and so on to 2 MiB                   (128 KiB apart in (1 MiB,2 MiB])
 *
 * Every class is a multiple of 16, so every block is 16-aligned: pages
 * start on slice (64 KiB) boundaries and a block starts a whole number of
 * blocks into its page.  That is what x86-64's max_align_t (16) asks of
 * malloc and what glibc, jemalloc and tcmalloc give for any request of 16
 * bytes or more; Rust's allocator and hashbrown's SSE2 loads rely on it
 * (a class of 24, 40 or 56 bytes hands out blocks that are 8 mod 16).
 * Blocks of 1-16 bytes share the 16-byte class: a free block holds a link
 * and a key (KA_MIN_BLOCK), so there is no 8-byte class.
 *
 * Waste bound.  A request of n > 128 bytes with 2^k < n <= 2^(k+1) gets
 * the next multiple of 2^(k-3), so the block exceeds the request by at
 * most 2^(k-3) - 1 < n/8: internal waste is under 12.5 % of the request
 * (and of the block).  Up to 128 bytes the step is 16, so the waste is
 * under 16 bytes: up to 15 bytes on a 17-byte request (47 %), under 25 %
 * of any request over 64 bytes -- jemalloc's and tcmalloc's 16-byte
 * steps cost the same.  test_api.c checks both for every size up to
 * KA_LARGE_MAX.  Above KA_LARGE_MAX a block gets its own region, rounded
 * to 4 KiB pages: under 0.2 % waste.
 *
 * Alignment.  A request rounded up to a power-of-two alignment a lands in a
 * class that is a multiple of a (the step divides a, or a divides the
 * request and the class is the request), and pages start on 64 KiB
 * boundaries, so aligned requests up to 64 KiB need no special blocks.
 *
 * Where a class lives: blocks up to 8 KiB in one-slice (64 KiB) pages,
 * up to 64 KiB in 8-slice pages (at least 8 blocks each), larger ones one
 * per span of whole slices.
 */
#include "internal.h"

#define KA_C(k, i)	((1u << (k)) + ((unsigned)(i) << ((k) - 3)))
#define KA_C8(k)	KA_C(k, 1), KA_C(k, 2), KA_C(k, 3), KA_C(k, 4), \
			KA_C(k, 5), KA_C(k, 6), KA_C(k, 7), KA_C(k, 8)

const uint32_t ka_class_size[KA_CLASSES] = {
	16, 32, 48, 64, 80, 96, 112, 128,
	KA_C8(7), KA_C8(8), KA_C8(9), KA_C8(10),
	KA_C8(11), KA_C8(12), KA_C8(13), KA_C8(14), KA_C8(15),
	KA_C8(16), KA_C8(17), KA_C8(18), KA_C8(19), KA_C8(20),
};

_Static_assert(KA_C(20, 8) == KA_LARGE_MAX, "last class is KA_LARGE_MAX");
_Static_assert(KA_C(7, 1) - 128 == KA_BLOCK_ALIGN, "past 128 B the steps are multiples of 16");
_Static_assert(KA_SLICE_SIZE % KA_BLOCK_ALIGN == 0, "pages start 16-aligned");
/* 8 classes to 128 B, then 8 per doubling: the last below KA_FOREIGN_MAX. */
_Static_assert(KA_C(12, 8) == KA_FOREIGN_MAX && 8 + 8 * (12 - 6) == KA_FOREIGN_CLASSES,
	       "heap->foreign[] covers the classes up to KA_FOREIGN_MAX");

/* Slices in a page of this class. */
unsigned ka_class_slices(unsigned cls)
{
	size_t bs = ka_class_size[cls];

	if (bs <= KA_SMALL_MAX)
		return 1;
	if (bs <= KA_MEDIUM_MAX)
		return KA_MEDIUM_SLICES;
	return (unsigned)((bs + KA_SLICE_SIZE - 1) >> KA_SLICE_SHIFT);
}
