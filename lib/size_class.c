/* SPDX-License-Identifier: MIT */
/*
 * Size classes: eight per doubling.
 *
 *   16 24 32 40 48 56 64                     (one 8-byte word apart)
 *   72 80 ... 128                            (8 apart: 8 classes in (64,128])
 *   144 160 ... 256                          (16 apart)
 *   ... and so on to 2 MiB                   (256 KiB apart in (1 MiB,2 MiB])
 *
 * Waste bound.  A request of n > 64 bytes with 2^k < n <= 2^(k+1) gets the
 * next multiple of 2^(k-3), so the block exceeds the request by at most
 * 2^(k-3) - 1 < n/8: internal waste is under 12.5 % of the request (and of
 * the block).  Below 64 bytes the step is one 8-byte word (16 the minimum),
 * so the waste is under 16 bytes.  test_api.c checks both for every size up
 * to KA_LARGE_MAX.  Above KA_LARGE_MAX a block gets its own region, rounded
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
	16, 24, 32, 40, 48, 56, 64,
	KA_C8(6), KA_C8(7), KA_C8(8), KA_C8(9), KA_C8(10),
	KA_C8(11), KA_C8(12), KA_C8(13), KA_C8(14), KA_C8(15),
	KA_C8(16), KA_C8(17), KA_C8(18), KA_C8(19), KA_C8(20),
};

_Static_assert(KA_C(20, 8) == KA_LARGE_MAX, "last class is KA_LARGE_MAX");

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
