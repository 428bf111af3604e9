/* SPDX-License-Identifier: MIT */
/*
 * KALLOC_DEBUG=1: writes to freed memory are caught when the memory is
 * handed out again.
 *
 * free() fills a block with junk (KA_DEBUG_JUNK) from byte 16 to its end;
 * the first 16 bytes hold the free-list link and the key that the
 * double-free check reads (free.c).  malloc() checks the key, that the link
 * still points into the block's page, and the junk, before it hands the
 * block out, then fills it with KA_DEBUG_FRESH so that reads of memory
 * never written show (calloc still zeroes).  Blocks threaded onto a fresh
 * page get junk too, so every block on a free list carries it.  A block
 * may never be handed out again: its page is checked whole before its span
 * goes back to the segment, which also catches a write of NULL or of
 * another free block's address into a link (the page's free lists come up
 * short).  The span is then junk through and through, and each of its
 * slices is checked when a span is carved over it (segment.c).  A huge
 * block's region in the huge cache (huge.c) is junk from the block to the
 * region's end, checked when the region is reused or given back.
 *
 * Where a block lives when freed does not matter: a thread that frees
 * another's block fills it before pushing it (release), the owner checks
 * it after collecting it (acquire).  Memory given back to the kernel after
 * the purge delay (a span's slices, a cached huge region) is not checked
 * after that: a write there is not seen.  Filling makes freed memory
 * resident until it is given back.
 *
 * Cost when off: the flag is read once, at start.  malloc's inline path is
 * untouched: with the flag on, heap->direct[] stays empty (page.c), so
 * every malloc takes the generic path, which tests the flag.  So is free's:
 * pages made with the flag on carry KA_PAGE_DEBUG, and any flag sends free
 * down its generic path.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

bool ka_debug;

void ka_debug_init(void)
{
	ka_debug = ka_options.debug;
}

static void __attribute__((noreturn))
ka_debug_bad_byte(const char *what, const void *p, size_t size, size_t off, unsigned was,
		  unsigned want)
{
	char buf[200];

	snprintf(buf, sizeof buf, "liballoc: use-after-free write detected: %s %p (size %zu) "
		 "byte at offset %zu was 0x%02x expected 0x%02x\n", what, p, size, off, was, want);
	ka_message(buf);
	abort();
}

/* The offset of the first byte in [from, to) of p that is not junk, or to. */
static size_t ka_junk_end(const uint8_t *p, size_t from, size_t to)
{
	typedef uint64_t __attribute__((may_alias)) ka_word_t;
	const uint64_t junk = 0x0101010101010101UL * KA_DEBUG_JUNK;
	size_t i = from;

	for (; i < to && ((uintptr_t)(p + i) & 7); i++)
		if (p[i] != KA_DEBUG_JUNK)
			return i;
	for (; i + 8 <= to; i += 8)
		if (*(const ka_word_t *)(p + i) != junk)
			break;
	for (; i < to; i++)
		if (p[i] != KA_DEBUG_JUNK)
			return i;
	return to;
}

void ka_debug_junk_block(ka_block_t *b, size_t size)
{
	memset(b + 1, KA_DEBUG_JUNK, size - sizeof *b);
}

/* size bytes at p are junk; what names them in the report. */
void ka_debug_check_junk(const char *what, const void *p, size_t size)
{
	const uint8_t *c = p;
	size_t off = ka_junk_end(c, 0, size);

	if (off < size)
		ka_debug_bad_byte(what, p, size, off, c[off], KA_DEBUG_JUNK);
}

/* A free block of page (owner only): key, link and junk as free() left them. */
void ka_debug_check_block(const ka_page_t *page, const ka_block_t *b)
{
	size_t size = page->block_size;
	uintptr_t key = ka_block_key(b);
	const uint8_t *p = (const uint8_t *)b;

	if (b->key != key) {
		const uint8_t *want = (const uint8_t *)&key;
		for (size_t i = 0; i < sizeof key; i++)
			if (p[offsetof(ka_block_t, key) + i] != want[i])
				ka_debug_bad_byte("block", b, size, offsetof(ka_block_t, key) + i,
						  p[offsetof(ka_block_t, key) + i], want[i]);
	}
	const uint8_t *next = (const uint8_t *)b->next;
	if (next && (next < page->start || !ka_page_divides(page, next) ||
		     !ka_page_threaded(page, next))) {
		char buf[200];
		snprintf(buf, sizeof buf, "liballoc: use-after-free write detected: block %p "
			 "(size %zu): its free-list link at offset 0 was overwritten (%p)\n",
			 (const void *)b, size, (void *)b->next);
		ka_message(buf);
		abort();
	}
	size_t off = ka_junk_end(p, sizeof *b, size);
	if (off < size)
		ka_debug_bad_byte("block", b, size, off, p[off], KA_DEBUG_JUNK);
}

/*
 * A page with no block out, before its span goes back: every block it
 * threaded is on free (remote frees are collected by now),
 * and each is intact.  A list that comes up short lost the rest at a link
 * overwritten with a pointer that looked valid; one that runs long loops.
 */
void ka_debug_check_page(const ka_page_t *page)
{
	uint32_t n = 0, capacity = page->threaded / page->block_size;

	for (const ka_block_t *b = page->free; b && n <= capacity; b = b->next) {
		ka_debug_check_block(page, b);
		n++;
	}
	if (n != capacity) {
		char buf[240];
		snprintf(buf, sizeof buf, "liballoc: use-after-free write detected: page %p "
			 "(block size %u): its free lists hold %s%u of its %u blocks (a freed "
			 "block's link at offset 0 was overwritten)\n", (const void *)page->start,
			 page->block_size, n > capacity ? "over " : "",
			 n > capacity ? capacity : n, capacity);
		ka_message(buf);
		abort();
	}
}

/*
 * free_sized(p, size) and free_aligned_sized(p, align, size): p is checked
 * as free() checks it, then the block must be one that malloc(size) or
 * aligned_alloc(align, size) could have returned, or realloc(q, size) left
 * in place: size fits in it, and it is at most twice the request rounded
 * to the alignment (a class is under 1.5 times its requests, and realloc
 * keeps a block that shrinks to half); p is a multiple of align.
 */
void ka_debug_check_sized(const char *who, void *p, size_t align, size_t size)
{
	size_t usable = ka_block_usable(who, p);
	size_t asked = size;
	char what[160];

	if (align) {
		if ((align & (align - 1)) || (uintptr_t)p % align) {
			snprintf(what, sizeof what, "%s(): alignment %zu does not match the block",
				 who, align);
			ka_fatal(what, p);
		}
		asked = size <= align ? align : (size + align - 1) & ~(align - 1);
	}
	if (asked < KA_MIN_BLOCK)
		asked = KA_MIN_BLOCK;
	if (size > usable || usable / 2 > asked) {
		snprintf(what, sizeof what, "%s(): size %zu does not match the block (%zu bytes)",
			 who, size, usable);
		ka_fatal(what, p);
	}
}
