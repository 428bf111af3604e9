/* SPDX-License-Identifier: MIT */
/*
 * The aligned family: aligned_alloc, posix_memalign, memalign, valloc and
 * pvalloc, each with glibc's checks, all through ka_malloc_aligned.  Up to
 * a slice (64 KiB) a size rounded up to the alignment is a size class whose
 * blocks have that alignment (size_class.c); past it the block is huge,
 * placed at the alignment in a region of its own (huge.c).
 */
#include "internal.h"

/* align: a power of two.  See size_class.c for why rounding suffices. */
static void *ka_malloc_aligned(size_t align, size_t size)
{
	if (align <= 8)
		return ka_malloc(size);
	if (align <= KA_SLICE_SIZE) {
		if (size > PTRDIFF_MAX) {
			errno = ENOMEM;
			return NULL;
		}
		size_t s = (size + align - 1) & ~(align - 1);
		if (s == 0)
			s = align;
		if (s <= KA_LARGE_MAX)
			return ka_malloc(s);
		align = 0;
	}
	if (align > ((size_t)1 << 40)) {
		errno = ENOMEM;
		return NULL;
	}
	return ka_huge_malloc(size, align, false);
}

static bool ka_pow2(size_t x)
{
	return x && !(x & (x - 1));
}

void *ka_aligned_alloc(size_t align, size_t size)
{
	if (!ka_pow2(align)) {		/* glibc >= 2.38 */
		errno = EINVAL;
		return NULL;
	}
	return ka_malloc_aligned(align, size);
}

int ka_posix_memalign(void **out, size_t align, size_t size)
{
	if (align < sizeof(void *) || !ka_pow2(align))
		return EINVAL;
	int saved = errno;
	void *p = ka_malloc_aligned(align, size);
	errno = saved;
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *ka_memalign(size_t align, size_t size)
{
	/* glibc's bound: past SIZE_MAX / 2 + 1 no power of two rounds up */
	if (align > ((size_t)1 << 63)) {
		errno = EINVAL;
		return NULL;
	}
	if (!ka_pow2(align))		/* glibc rounds up to a power of two */
		align = align < 2 ? 1 : (size_t)1 << (64 - __builtin_clzl(align - 1));
	return ka_malloc_aligned(align, size);
}

void *ka_valloc(size_t size)
{
	return ka_malloc_aligned(KA_PAGE_SIZE, size);
}

void *ka_pvalloc(size_t size)
{
	if (size > PTRDIFF_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	size = (size + KA_PAGE_SIZE - 1) & ~(KA_PAGE_SIZE - 1);
	return ka_malloc_aligned(KA_PAGE_SIZE, size ? size : KA_PAGE_SIZE);
}
