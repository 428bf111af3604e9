/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the ka_ API, linked with the allocator's objects (no
 * malloc replacement), so the same file runs plain, under ASan and UBSan.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <numa.h>
#include <numaif.h>
#include <sched.h>

#include "internal.h"
#include "test/check.h"

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static size_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;
	if (f) {
		if (fscanf(f, "%lu %lu", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * 4096;
}

static void size_class_waste(void)
{
	for (unsigned c = 1; c < KA_CLASSES; c++)
		CHECK(ka_class_size[c] > ka_class_size[c - 1], "class %u", c);
	for (size_t n = 1; n <= KA_LARGE_MAX; n++) {
		unsigned c = ka_size_class(n);
		size_t cs = ka_class_size[c];
		CHECK(c < KA_CLASSES && cs >= n, "size %zu class %u", n, c);
		CHECK(c == 0 || ka_class_size[c - 1] < n, "size %zu not in the tightest class", n);
		CHECK(cs % KA_BLOCK_ALIGN == 0, "class %zu is not a multiple of 16", cs);
		if (n > 128)
			CHECK((cs - n) * 8 < n, "size %zu gets %zu: waste over 12.5%%", n, cs);
		else
			CHECK(cs - n < 16, "size %zu gets %zu", n, cs);
	}
}

/*
 * The alignment malloc promises (x86-64's max_align_t, what glibc,
 * jemalloc and tcmalloc give): a block of 16 bytes or more is 16-aligned,
 * a smaller one 8-aligned.  One block per size proves little -- half the
 * blocks of a class of 24 bytes were 16-aligned -- so many of each.
 */
static void check_contract(const char *what, const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p;

	CHECK(p, "%s(%zu) failed", what, n);
	CHECK(a % 8 == 0, "%s(%zu) = %p: not 8-aligned", what, n, p);
	CHECK(n < 16 || a % 16 == 0, "%s(%zu) = %p: not 16-aligned", what, n, p);
}

static void every_size_16_aligned(void)
{
	enum { BLOCKS = 64, DENSE = 70000 };
	static void *ps[BLOCKS];

	/* Every size to past the medium classes, 64 blocks of each. */
	for (size_t n = 1; n <= DENSE; n++) {
		for (int i = 0; i < BLOCKS; i++) {
			ps[i] = ka_malloc(n);
			check_contract("malloc", ps[i], n);
		}
		for (int i = 0; i < BLOCKS; i++)
			ka_free(ps[i]);
	}
	/* Large and huge sizes, fewer blocks. */
	for (size_t n = DENSE; n <= (3u << 20); n += 4093) {
		for (int i = 0; i < 8; i++) {
			ps[i] = ka_malloc(n);
			check_contract("malloc", ps[i], n);
		}
		for (int i = 0; i < 8; i++)
			ka_free(ps[i]);
	}
	/* calloc, and the aligned family asked for less than 16. */
	for (size_t n = 1; n <= 4096; n++) {
		for (int i = 0; i < 16; i++) {
			ps[i] = ka_calloc(1, n);
			check_contract("calloc", ps[i], n);
		}
		for (int i = 16; i < 32; i++) {
			ps[i] = ka_aligned_alloc((size_t)1 << (i % 4), n);
			check_contract("aligned_alloc", ps[i], n);
		}
		for (int i = 32; i < 48; i++) {
			ps[i] = ka_memalign(8, n);
			check_contract("memalign", ps[i], n);
		}
		for (int i = 0; i < 48; i++)
			ka_free(ps[i]);
	}
	/* realloc through every size up and down again, several chains. */
	for (int i = 0; i < 8; i++)
		ps[i] = NULL;
	for (size_t n = 1; n <= 20000; n++)
		for (int i = 0; i < 8; i++) {
			ps[i] = ka_realloc(ps[i], n);
			check_contract("realloc", ps[i], n);
		}
	for (size_t n = 20000; n >= 1; n--)
		for (int i = 0; i < 8; i++) {
			ps[i] = ka_realloc(ps[i], n);
			check_contract("realloc", ps[i], n);
		}
	for (int i = 0; i < 8; i++)
		ka_free(ps[i]);
}

/* free's one multiply (ka_page_divides): whether a pointer starts a block,
 * for every class over its whole span, 8-byte steps. */
static void block_start_is_exact(void)
{
	for (unsigned c = 0; c < KA_CLASSES; c++) {
		size_t bs = ka_class_size[c], span = (size_t)ka_class_slices(c) << KA_SLICE_SHIFT;
		ka_page_t page = { .start = (uint8_t *)(uintptr_t)(7UL << 40),
				   .div_magic = UINT64_MAX / bs + 1 };
		for (size_t off = 0; off < span; off += 8) {
			bool starts = ka_page_divides(&page, page.start + off);
			CHECK(starts == (off % bs == 0), "class %zu, offset %zu: starts %d", bs, off, starts);
		}
	}
}

static void usable_size_is_class(void)
{
	for (size_t n = 0; n <= KA_LARGE_MAX; n += n < 4096 ? 1 : n < 65536 ? 61 : 4093) {
		void *p = ka_malloc(n);
		CHECK(p, "malloc %zu", n);
		size_t u = ka_malloc_usable_size(p);
		CHECK(u == ka_class_size[ka_size_class(n)], "size %zu usable %zu", n, u);
		ka_free(p);
	}
}

/*
 * 2000 small blocks (sizes 0..1999) stay live to the end; 1000 blocks of
 * random sizes up to 3 MiB pass through a window of WINDOW live ones, each
 * checked when it leaves, so every block's content is checked after later
 * allocations (no overlap) while at most ~WINDOW * 3 MiB is live: the test
 * once held all 3000 at once, 1.5 GB, more than a 1 GiB guest has.
 */
static void malloc_alignment_and_content(void)
{
	enum { N = 3000, SMALL = 2000, WINDOW = 8 };
	static void *ptr[N];
	static size_t len[N];
	for (int i = 0; i < N; i++) {
		size_t n = i < SMALL ? (size_t)i : rnd() % (3u << 20);
		ptr[i] = ka_malloc(n);
		len[i] = n;
		CHECK(ptr[i], "malloc %zu", n);
		check_contract("malloc", ptr[i], n);
		CHECK(ka_malloc_usable_size(ptr[i]) >= n, "usable");
		memset(ptr[i], i & 0xff, n);
		int old = i - WINDOW;
		if (old >= SMALL) {
			unsigned char *p = ptr[old];
			for (size_t j = 0; j < len[old]; j += 1 + j / 8)
				CHECK(p[j] == (old & 0xff), "content of %d at %zu", old, j);
			ka_free(p);
			ptr[old] = NULL;
		}
	}
	for (int i = 0; i < N; i++) {
		unsigned char *p = ptr[i];
		if (!p)
			continue;
		for (size_t j = 0; j < len[i]; j += 1 + j / 8)
			CHECK(p[j] == (i & 0xff), "content of %d at %zu", i, j);
		ka_free(p);
	}
}

static void calloc_zeroes_and_overflows(void)
{
	void *ps[200];
	for (int i = 0; i < 200; i++) {
		ps[i] = ka_malloc(100 + i * 37);
		memset(ps[i], 0xab, 100 + i * 37);
	}
	for (int i = 0; i < 200; i++)
		ka_free(ps[i]);
	for (int i = 0; i < 200; i++) {
		size_t n = 100 + i * 37;
		unsigned char *p = ka_calloc(1, n);
		CHECK(p, "calloc");
		for (size_t j = 0; j < n; j++)
			CHECK(p[j] == 0, "calloc byte %zu of %zu", j, n);
		ps[i] = p;
	}
	for (int i = 0; i < 200; i++)
		ka_free(ps[i]);
	unsigned char *h = ka_calloc(5 << 20, 1);
	CHECK(h && h[0] == 0 && h[(5 << 20) - 1] == 0, "huge calloc");
	ka_free(h);
	errno = 0;
	CHECK(ka_calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM, "overflow");
}

static void realloc_keeps_content(void)
{
	unsigned char *p = ka_realloc(NULL, 1);
	size_t n = 1;
	p[0] = 0;
	while (n < (6u << 20)) {
		size_t m = n * 3 / 2 + 1;
		p = ka_realloc(p, m);
		CHECK(p, "realloc %zu", m);
		for (size_t j = 0; j < n; j += 1 + j / 16)
			CHECK(p[j] == (unsigned char)(j * 7), "byte %zu after growing to %zu", j, m);
		for (size_t j = n; j < m; j++)
			p[j] = (unsigned char)(j * 7);
		n = m;
	}
	while (n > 10) {
		n /= 3;
		p = ka_realloc(p, n);
		CHECK(p, "shrink");
		for (size_t j = 1; j < n; j += 1 + j / 16)
			CHECK(p[j] == (unsigned char)(j * 7), "byte %zu after shrinking", j);
	}
	CHECK(ka_realloc(p, 0) == NULL, "realloc(p, 0) frees and returns NULL");
	errno = 0;
	CHECK(ka_reallocarray(NULL, SIZE_MAX / 2, 4) == NULL && errno == ENOMEM, "reallocarray overflow");
	p = ka_reallocarray(NULL, 10, 10);
	CHECK(p && ka_malloc_usable_size(p) >= 100, "reallocarray");
	ka_free(p);
}

static void aligned_family(void)
{
	static const size_t sizes[] = { 0, 1, 7, 100, 4096, 70000, 3u << 20 };
	for (size_t a = 1; a <= (16u << 20); a <<= 1) {
		for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
			void *p = ka_aligned_alloc(a, sizes[i]);
			CHECK(p && (uintptr_t)p % a == 0, "aligned_alloc(%zu, %zu) = %p", a, sizes[i], p);
			CHECK(ka_malloc_usable_size(p) >= sizes[i], "usable");
			memset(p, 1, sizes[i]);
			void *q = NULL;
			if (a >= sizeof(void *))
				CHECK(ka_posix_memalign(&q, a, sizes[i]) == 0 && (uintptr_t)q % a == 0, "pm");
			ka_free(p);
			ka_free(q);
		}
	}
	void *q = (void *)1;
	CHECK(ka_posix_memalign(&q, 24, 10) == EINVAL && q == (void *)1, "EINVAL, out untouched");
	CHECK(ka_posix_memalign(&q, 4, 10) == EINVAL, "EINVAL below sizeof(void *)");
	errno = 0;
	CHECK(ka_aligned_alloc(24, 10) == NULL && errno == EINVAL, "aligned_alloc non-power");
	void *p = ka_memalign(24, 10);
	CHECK(p && (uintptr_t)p % 32 == 0, "memalign rounds up to 32");
	ka_free(p);
	p = ka_valloc(10);
	CHECK(p && (uintptr_t)p % 4096 == 0, "valloc");
	ka_free(p);
	p = ka_pvalloc(1);
	CHECK(p && (uintptr_t)p % 4096 == 0 && ka_malloc_usable_size(p) >= 4096, "pvalloc");
	ka_free(p);
}

/*
 * memalign's answers at the edges, against glibc's own memalign in this
 * very process (from libc.so.6's handle: liballoc.a defines memalign too).
 * glibc refuses alignments past SIZE_MAX / 2 + 1 with EINVAL and fails
 * those up to it with ENOMEM; liballoc refused from 2^62 + 1 on.
 */
static void memalign_edges_as_glibc(void)
{
	static const size_t aligns[] = {
		(size_t)1 << 40, ((size_t)1 << 40) + 1, (size_t)1 << 62,
		((size_t)1 << 62) + 1, (size_t)3 << 61, (size_t)1 << 63,
		((size_t)1 << 63) + 1, SIZE_MAX,
	};
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	void *(*glibc_memalign)(size_t, size_t) =
		libc ? (void *(*)(size_t, size_t))dlsym(libc, "memalign") : NULL;

	CHECK(glibc_memalign, "glibc's memalign: %s", dlerror());
	if (!glibc_memalign)
		return;
	for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
		errno = 0;
		void *g = glibc_memalign(aligns[i], 10);
		int g_errno = errno;
		errno = 0;
		void *k = ka_memalign(aligns[i], 10);
		int k_errno = errno;

		CHECK(!g && !k && g_errno == k_errno,
		      "memalign(%#zx, 10): glibc %p errno %d, liballoc %p errno %d",
		      aligns[i], g, g_errno, k, k_errno);
	}
	dlclose(libc);
}

static size_t peak_rss_bytes(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (size_t)ru.ru_maxrss * 1024;
}

/*
 * Freed memory is reused or given back: a loop that holds at most two
 * blocks at a time -- sizes up to 3 MiB, a third of them aligned up to
 * 16 MiB, some grown and shrunk with realloc -- must not grow the resident
 * set by more than a few blocks' worth, whatever the backend (the device's
 * pages count in RSS: vm_insert_pages maps them as file pages), besides
 * what the huge cache keeps by design (bounded on its own, see
 * huge_cache_bounded).
 */
static void freed_memory_is_reused(void)
{
	enum { ROUNDS = 1000, LIMIT = 32u << 20 };
	void *held[2] = { NULL, NULL };
	size_t held_len[2] = { 0, 0 };

	ka_malloc_trim(0);
	size_t base = rss_bytes(), peak = base;
	for (int i = 0; i < ROUNDS; i++) {
		int k = i & 1;
		if (held[k]) {
			unsigned char *q = held[k];
			CHECK(q[0] == (unsigned char)(i - 2) && q[held_len[k] - 1] == (unsigned char)(i - 2),
			      "round %d: block of %zu kept", i, held_len[k]);
			ka_free(held[k]);
		}
		uint64_t r = rnd();
		size_t n = 1 + rnd() % (r % 4 == 0 ? (3u << 20) : r % 4 == 1 ? (2u << 20) : (256u << 10));
		void *p;
		if (r % 3 == 0) {
			size_t a = (size_t)1 << (4 + rnd() % 21);	/* 16 B .. 16 MiB */
			p = ka_aligned_alloc(a, n);
			CHECK(p && (uintptr_t)p % a == 0, "aligned_alloc(%zu, %zu)", a, n);
		} else {
			p = ka_malloc(n);
			CHECK(p, "malloc %zu", n);
		}
		memset(p, i & 0xff, n);
		if (r % 7 == 0) {	/* grow or shrink, keep the prefix */
			size_t m = 1 + rnd() % (3u << 20);
			p = ka_realloc(p, m);
			CHECK(p, "realloc %zu", m);
			CHECK(((unsigned char *)p)[(m < n ? m : n) - 1] == (unsigned char)i, "realloc kept");
			memset(p, i & 0xff, m);
			n = m;
		}
		held[k] = p;
		held_len[k] = n;
		struct ka_stats st;
		ka_stats(&st);
		size_t now = rss_bytes();
		now -= now > st.huge_cached ? st.huge_cached : now;
		if (now > peak)
			peak = now;
	}
	ka_free(held[0]);
	ka_free(held[1]);
	size_t maxrss = peak_rss_bytes();
	printf("# rss at start %zu KiB, peak sampled (less the huge cache) %zu KiB, ru_maxrss %zu KiB\n",
	       base >> 10, peak >> 10, maxrss >> 10);
	CHECK(peak - base < LIMIT, "resident grew by %zu KiB holding two blocks", (peak - base) >> 10);
	CHECK(maxrss < base + LIMIT + KA_HUGE_CACHE_BYTES, "peak RSS %zu KiB, started at %zu KiB",
	      maxrss >> 10, base >> 10);
}

/*
 * A program built against an older alloc.h passes a shorter struct
 * ka_stats: ka_stats_sized() fills that much and not a byte more.
 */
static void stats_fill_only_the_callers_size(void)
{
	enum { OLD = offsetof(struct ka_stats, huge_cached) };
	union {
		struct ka_stats st;
		unsigned char b[sizeof(struct ka_stats) + 16];
	} u;
	void *p = ka_malloc(100);

	memset(&u, 0x5a, sizeof u);
	ka_stats_sized(&u.st, OLD);
	CHECK(u.st.allocated >= 100 && u.st.backend != NULL, "the old fields are filled: allocated %zu",
	      u.st.allocated);
	for (size_t i = OLD; i < sizeof u; i++)
		CHECK(u.b[i] == 0x5a, "byte %zu past the %d the caller has was written", i, (int)OLD);
	ka_stats_sized(&u.st, sizeof u.st);
	CHECK(u.b[sizeof u.st] == 0x5a, "nothing past the struct");
	struct ka_stats st;
	void (*fn)(struct ka_stats *) = ka_stats;	/* the function, not the macro */
	fn(&st);
	CHECK(st.allocated >= 100, "ka_stats() the function fills too");
	ka_free(p);
}

/*
 * malloc_trim(0) gives back the 4 KiB pages that only free blocks touch,
 * inside pages of blocks still in use (as glibc's does inside its heap):
 * 64k blocks of 1 KiB, one in ten kept, leave three 4 KiB pages in five
 * free, about 38 MiB.  The blocks allocated afterwards, from those pages
 * too, hold their data.
 */
static void trim_releases_free_pages_in_use(void)
{
	enum { N = 65536, BS = 1024 };
	unsigned char **v = ka_malloc(N * sizeof *v);
	struct ka_stats st0, st1;

	CHECK(v, "malloc");
	ka_malloc_trim(0);
	for (int i = 0; i < N; i++) {
		v[i] = ka_malloc(BS);
		CHECK(v[i], "malloc %d", i);
		memset(v[i], i & 0xff, BS);
	}
	for (int i = 0; i < N; i++)
		if (i % 10) {
			ka_free(v[i]);
			v[i] = NULL;
		}
	size_t before = rss_bytes();
	ka_stats(&st0);
	ka_malloc_trim(0);
	size_t after = rss_bytes();
	ka_stats(&st1);
	printf("# rss %zu -> %zu KiB; released %llu bytes\n", before >> 10, after >> 10,
	       (unsigned long long)(st1.released_bytes - st0.released_bytes));
	CHECK(st1.released_bytes - st0.released_bytes >= (30u << 20), "released %llu bytes",
	      (unsigned long long)(st1.released_bytes - st0.released_bytes));
	CHECK(before > after && before - after >= (30u << 20), "rss %zu -> %zu KiB", before >> 10,
	      after >> 10);
	for (int i = 0; i < N; i++)
		if (!v[i]) {
			v[i] = ka_malloc(BS);
			CHECK(v[i], "malloc %d again", i);
			memset(v[i], i & 0xff, BS);
		}
	for (int i = 0; i < N; i++) {
		CHECK(v[i][0] == (i & 0xff) && v[i][BS - 1] == (i & 0xff), "block %d kept its data", i);
		for (int j = 0; j < i % 7; j++)	/* no block handed out twice */
			CHECK(v[i] != v[(i + j * 977 + 1) % N], "block %d handed out twice", i);
	}
	for (int i = 0; i < N; i++)
		ka_free(v[i]);
	ka_free(v);
}

/*
 * Huge blocks get a region each.  Freed, one the huge cache can hold keeps
 * its region for reuse, one over the cache's bytes loses it at once, and
 * malloc_trim(0) gives back the kept one.
 */
static void huge_blocks_own_regions(void)
{
	const size_t over = KA_HUGE_CACHE_BYTES + (1u << 20);
	struct ka_stats before, mid, after, trimmed;
	ka_malloc_trim(0);
	ka_stats(&before);
	unsigned char *a = ka_malloc(10u << 20), *b = ka_malloc(over);
	CHECK(a && b, "huge malloc");
	a[0] = a[(10u << 20) - 1] = 1;
	b[0] = b[over - 1] = 2;
	CHECK(ka_malloc_usable_size(b) >= over, "usable");
	ka_stats(&mid);
	CHECK(mid.huge_count == before.huge_count + 2, "two huge blocks");
	CHECK(mid.regions == before.regions + 2, "in two regions of their own");
	/* its region's used part: with the header unless it sits in a 2 MiB
	 * region's anonymous head (huge.c) */
	size_t kept = ka_malloc_usable_size(a) +
		      ((uintptr_t)a % KA_PMD_SIZE ? KA_SLICE_SIZE : 0);
	ka_free(a);
	ka_free(b);
	ka_stats(&after);
	CHECK(after.huge_count == before.huge_count, "no huge block live");
	CHECK(after.regions == before.regions + 1, "over the cache's bytes: region destroyed on "
	      "free; 10 MiB: kept (regions %zu -> %zu)", before.regions, after.regions);
	CHECK(after.huge_cached == kept, "huge_cached %zu, the block had %zu", after.huge_cached, kept);
	CHECK(after.dirty >= after.huge_cached, "dirty %zu counts the cached %zu", after.dirty,
	      after.huge_cached);
	ka_malloc_trim(0);
	ka_stats(&trimmed);
	CHECK(trimmed.regions == before.regions && trimmed.huge_cached == 0,
	      "malloc_trim(0) destroys it: regions %zu, cached %zu", trimmed.regions, trimmed.huge_cached);
}

/*
 * The cache and the live huge blocks together stay within a quarter over
 * the most ever live at once: the peak.  A block over the cache's bytes is
 * never cached but raises the peak, leaving room for the others.
 */
static void raise_huge_peak(void)
{
	ka_free(ka_malloc(KA_HUGE_CACHE_BYTES + 1));
}

/*
 * A freed huge block's region serves the next huge malloc that fits in
 * its room (its first block's size rounded up to a power of two, doubled:
 * 16 MiB for 5 MiB): same address, no new region, its pages still there,
 * a block of the size asked.  Larger requests get a region of their own.
 */
static void huge_cache_reuses_region(void)
{
	const size_t mib = 1u << 20;
	struct ka_stats st0, st1, st2, st3;
	ka_malloc_trim(0);
	raise_huge_peak();
	unsigned char *p = ka_malloc(5 * mib);
	memset(p, 1, 5 * mib);
	ka_free(p);
	ka_stats(&st0);
	CHECK(st0.huge_cached >= 5 * mib && st0.huge_cached < 6 * mib, "cached %zu", st0.huge_cached);
	unsigned char *q = ka_malloc(4 * mib);
	ka_stats(&st1);
	CHECK(q == p, "4 MiB reuses the 5 MiB block's region: %p, was %p", (void *)q, (void *)p);
	CHECK(st1.regions == st0.regions && st1.huge_reused == st0.huge_reused + 1 &&
	      st1.huge_cached == 0, "regions %zu -> %zu, reused %llu -> %llu, cached %zu",
	      st0.regions, st1.regions, (unsigned long long)st0.huge_reused,
	      (unsigned long long)st1.huge_reused, st1.huge_cached);
	CHECK(ka_malloc_usable_size(q) == 4 * mib, "usable %zu, asked 4 MiB", ka_malloc_usable_size(q));
	CHECK(q[0] == 1 && q[4 * mib - 1] == 1, "the resident pages were kept, not refaulted");
	ka_free(q);
	unsigned char *r = ka_malloc(12 * mib);
	ka_stats(&st2);
	CHECK(r == p && st2.regions == st0.regions && st2.huge_reused == st1.huge_reused + 1,
	      "12 MiB fits the region's room: %p, was %p; regions %zu -> %zu", (void *)r, (void *)p,
	      st0.regions, st2.regions);
	CHECK(ka_malloc_usable_size(r) == 12 * mib, "usable %zu, asked 12 MiB",
	      ka_malloc_usable_size(r));
	memset(r, 2, 12 * mib);
	ka_free(r);
	unsigned char *big = ka_malloc(40 * mib);
	ka_stats(&st3);
	CHECK(big != p && st3.huge_reused == st2.huge_reused && st3.regions == st2.regions + 1 &&
	      st3.huge_cached >= 12 * mib, "40 MiB (past its room) leaves the region cached");
	ka_free(big);
	ka_malloc_trim(0);
}

/*
 * Cached and live huge regions stay within a quarter over the most that
 * was live at once: a 5 MiB block freed is cached, and an 18 MiB malloc it
 * cannot serve (past its 16 MiB room) evicts it, since 5 + 18 MiB is more
 * than 1.25 x 18 MiB, the new peak.
 */
static void huge_cache_within_peak(void)
{
	struct ka_stats st0, st1, st2;
	ka_malloc_trim(0);
	ka_stats(&st0);
	void *p = ka_malloc(5u << 20);
	ka_free(p);
	ka_stats(&st1);
	CHECK(st1.huge_cached >= (5u << 20) && st1.regions == st0.regions + 1,
	      "cached %zu, regions %zu -> %zu", st1.huge_cached, st0.regions, st1.regions);
	void *q = ka_malloc(18u << 20);
	ka_stats(&st2);
	CHECK(q != p && st2.huge_cached == 0 && st2.regions == st0.regions + 1,
	      "the 5 MiB region made room: cached %zu, regions %zu", st2.huge_cached, st2.regions);
	ka_free(q);
	ka_malloc_trim(0);
}

/*
 * realloc() grows a huge block in place within its region's room and
 * shrinks it in place, giving back a long tail; past its room it moves.
 */
static void huge_realloc_in_place(void)
{
	const size_t mib = 1u << 20;
	struct ka_stats st0, st1;
	ka_malloc_trim(0);
	unsigned char *p = ka_malloc(3 * mib);
	CHECK(p, "malloc 3 MiB");
	memset(p, 3, 3 * mib);
	ka_stats(&st0);
	unsigned char *q = ka_realloc(p, 7 * mib);	/* room: 8 MiB doubled */
	CHECK(q == p, "grown in place: %p, was %p", (void *)q, (void *)p);
	CHECK(ka_malloc_usable_size(q) == 7 * mib, "usable %zu", ka_malloc_usable_size(q));
	CHECK(q[3 * mib - 1] == 3, "contents kept");
	memset(q, 7, 7 * mib);
	ka_stats(&st1);
	CHECK(st1.regions == st0.regions && st1.huge_allocated == st0.huge_allocated + 4 * mib,
	      "no new region, huge_allocated %zu -> %zu", st0.huge_allocated, st1.huge_allocated);
	q = ka_realloc(q, 3 * mib);	/* under half: in place, the tail given back */
	CHECK(q == p && ka_malloc_usable_size(q) == 3 * mib && q[3 * mib - 1] == 7,
	      "shrunk in place to %zu", ka_malloc_usable_size(q));
	ka_stats(&st1);
	CHECK(st1.released_bytes >= st0.released_bytes + 4 * mib, "the tail went back: %zu -> %zu",
	      st0.released_bytes, st1.released_bytes);
	unsigned char *r = ka_realloc(q, 40 * mib);
	CHECK(r && r != p && r[3 * mib - 1] == 7, "past its room it moves");
	ka_free(r);
	ka_malloc_trim(0);
}

/*
 * Past its room, realloc() moves a huge block's region whole, its pages
 * with it (huge.c, ka_huge_move): glibc grows a chunk of its own mapping
 * with mremap(), which copies nothing and touches no page the program
 * did not.  A block grown a MiB at a time to 1 GiB, written only at the
 * end of each MiB, stays that sparse and keeps what was written, and the
 * old places leave no region behind.  Before, each move copied the block:
 * 2.6 GB resident where glibc has 9 MB.  The device's regions do not
 * move; realloc copies there.
 */
static void huge_realloc_moves_its_pages(void)
{
	const size_t mib = 1u << 20, lim = (size_t)1 << 30;
	struct ka_stats st0, st1;
	unsigned char *p = NULL;
	size_t n = 0;
	int moves = 0;

	ka_stats(&st0);
	if (strcmp(st0.backend, "anon") != 0) {
		printf("# backend %s: its regions do not move, realloc copies\n", st0.backend);
		exit(77);
	}
	ka_malloc_trim(0);
	ka_stats(&st0);
	size_t before = rss_bytes();
	while (n < lim) {
		unsigned char *q = ka_realloc(p, n + mib);
		CHECK(q, "realloc to %zu MiB", (n + mib) / mib);
		moves += p && q != p;
		p = q;
		p[n + mib - 1] = (unsigned char)(n / mib);
		n += mib;
	}
	size_t grown = rss_bytes() - before;
	for (size_t i = 0; i < n / mib; i++)
		CHECK(p[i * mib + mib - 1] == (unsigned char)i, "MiB %zu kept", i);
	ka_stats(&st1);
	printf("# %d moves, RSS +%zu KiB for 1024 pages written, huge blocks %zu -> %zu, cached %zu -> %zu\n",
	       moves, grown >> 10, st0.huge_count, st1.huge_count, st0.huge_cached, st1.huge_cached);
	CHECK(moves >= 2, "it moved (%d times)", moves);
	CHECK(grown < 64 * mib, "RSS grew %zu KiB: pages it never wrote were touched", grown >> 10);
	CHECK(st1.huge_count == st0.huge_count + 1 && st1.huge_cached == st0.huge_cached,
	      "the old places left blocks or cached regions: %zu -> %zu, cached %zu -> %zu",
	      st0.huge_count, st1.huge_count, st0.huge_cached, st1.huge_cached);
	ka_free(p);
	ka_malloc_trim(0);
}

/*
 * The cache holds KA_HUGE_CACHE_SLOTS regions and KA_HUGE_CACHE_BYTES at
 * most, evicting the oldest: of twenty 3 MiB blocks freed, sixteen stay;
 * of six 60 MiB ones, what fits in the bytes, the last freed among them.
 */
static void huge_cache_bounded(void)
{
	enum { N = 20, M = 6 };
	const size_t three = 3u << 20, sixty = 60u << 20;
	void *v[N];
	struct ka_stats st0, st1, st2;
	ka_malloc_trim(0);
	ka_stats(&st0);
	for (int i = 0; i < N; i++) {
		v[i] = ka_malloc(three);
		memset(v[i], 1, 4096);
	}
	size_t region = ka_malloc_usable_size(v[0]) + KA_SLICE_SIZE;
	for (int i = 0; i < N; i++)
		ka_free(v[i]);
	ka_stats(&st1);
	CHECK(st1.regions == st0.regions + KA_HUGE_CACHE_SLOTS, "regions kept: %zu",
	      st1.regions - st0.regions);
	CHECK(st1.huge_cached == KA_HUGE_CACHE_SLOTS * region, "cached %zu", st1.huge_cached);
	for (int i = 0; i < M; i++)
		v[i] = ka_malloc(sixty);
	void *last = v[M - 1];
	for (int i = 0; i < M; i++)
		ka_free(v[i]);
	ka_stats(&st2);
	CHECK(st2.huge_cached <= KA_HUGE_CACHE_BYTES && st2.huge_cached >= 3 * sixty,
	      "cached %zu of at most %lu", st2.huge_cached, KA_HUGE_CACHE_BYTES);
	CHECK(st2.regions - st0.regions <= KA_HUGE_CACHE_SLOTS, "regions kept: %zu",
	      st2.regions - st0.regions);
	void *again = ka_malloc(sixty);
	CHECK(again == last, "the last freed is kept: %p, was %p", again, last);
	ka_free(again);
	ka_malloc_trim(0);
	ka_stats(&st2);
	CHECK(st2.regions == st0.regions && st2.huge_cached == 0, "trim: regions %zu, cached %zu",
	      st2.regions, st2.huge_cached);
}

/* Caches a huge block, says how much is cached, exits. */
static void *huge_free_and_exit(void *arg)
{
	struct ka_stats st;
	(void)arg;
	ka_free(ka_malloc(5u << 20));
	ka_stats(&st);
	return (void *)st.huge_cached;
}

/*
 * The statistics once the huge cache is down to regions: the purge thread
 * may have taken a due region out of the cache and be giving it back,
 * which takes a while over the device (the region counts until it is
 * gone), so wait up to 2 s.
 */
static void huge_stats_settled(struct ka_stats *st, size_t regions)
{
	for (int i = 0; i < 200; i++) {
		ka_stats(st);
		if (st->regions <= regions && st->huge_cached == 0)
			return;
		usleep(10000);
	}
}

/*
 * A cached region goes back after the purge delay, from the next slow
 * path of the thread that cached it (a free here), or when that thread
 * exits; with a delay of 0 nothing is cached at all.
 */
static void huge_cache_given_back_after_decay(void)
{
	struct ka_stats st0, st1, st2;
	ka_stats(&st0);
	uint64_t decay = st0.decay_ms;
	void *s = ka_malloc(300000);
	ka_mallopt(KA_M_DECAY_MS, 100);
	ka_malloc_trim(0);
	ka_stats(&st0);
	void *p = ka_malloc(5u << 20);
	memset(p, 1, 5u << 20);
	ka_free(p);
	ka_stats(&st1);
	CHECK(st1.regions == st0.regions + 1 && st1.huge_cached >= (5u << 20),
	      "kept at first: regions %zu -> %zu, cached %zu", st0.regions, st1.regions, st1.huge_cached);
	usleep(250000);
	ka_free(s);		/* its span goes back: the slow path purges */
	huge_stats_settled(&st2, st0.regions);
	CHECK(st2.regions == st0.regions && st2.huge_cached == 0,
	      "given back after the delay: regions %zu, cached %zu", st2.regions, st2.huge_cached);

	pthread_t t;
	void *cached;
	pthread_create(&t, NULL, huge_free_and_exit, NULL);
	pthread_join(t, &cached);
	CHECK((size_t)cached >= (5u << 20), "the thread cached its block: %zu", (size_t)cached);
	huge_stats_settled(&st2, st0.regions);
	CHECK(st2.regions == st0.regions && st2.huge_cached == 0 && st2.huge_count == 0,
	      "given back at thread exit: regions %zu, cached %zu", st2.regions, st2.huge_cached);

	ka_mallopt(KA_M_DECAY_MS, 0);
	p = ka_malloc(5u << 20);
	ka_free(p);
	ka_stats(&st2);
	CHECK(st2.regions == st0.regions && st2.huge_cached == 0,
	      "delay 0: nothing cached (regions %zu, cached %zu)", st2.regions, st2.huge_cached);
	ka_mallopt(KA_M_DECAY_MS, (int)decay);
}

/* calloc of a huge block the cache hands back is zero, like a fresh one. */
static void huge_calloc_reused_is_zero(void)
{
	const size_t n = 5u << 20;
	ka_malloc_trim(0);
	unsigned char *fresh = ka_calloc(1, n);
	CHECK(fresh, "calloc");
	memset(fresh, 0xab, n);
	ka_free(fresh);
	unsigned char *p = ka_calloc(n, 1);
	CHECK(p == fresh, "the cached region came back: %p, was %p", (void *)p, (void *)fresh);
	for (size_t i = 0; i < n; i++)
		CHECK(p[i] == 0, "byte %zu of the reused block is 0x%02x", i, p[i]);
	ka_free(p);
	ka_malloc_trim(0);
}

/*
 * calloc of large blocks (64 KiB to 2 MiB) carved from memory no block has
 * written is not written, as glibc leaves fresh memory: 50 blocks of
 * 256 KiB add less than half their 12.5 MiB to RSS (over the device a
 * touch maps a 64 KiB neighbourhood: the block's link makes one).  Blocks
 * that reuse written memory, freed and given back or not, read zero.
 */
static void calloc_large_fresh_is_not_written(void)
{
	enum { N = 50, SZ = 256 << 10 };
	static unsigned char *p[N];

	ka_malloc_trim(0);
	size_t before = rss_bytes();
	for (int i = 0; i < N; i++)
		CHECK(p[i] = ka_calloc(1, SZ), "calloc");
	size_t grew = rss_bytes() - before;
	CHECK(grew < (size_t)N * SZ / 2, "%d untouched callocs of %d KiB added %zu KiB to RSS",
	      N, SZ >> 10, grew >> 10);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			for (size_t j = 0; j < SZ; j++)
				CHECK(p[i][j] == 0, "round %d, block %d, byte %zu: 0x%02x",
				      round, i, j, p[i][j]);
			memset(p[i], 0xab, SZ);
		}
		for (int i = 0; i < N; i++)
			ka_free(p[i]);
		if (round == 1)
			ka_malloc_trim(0);	/* given back: reads zero again */
		for (int i = 0; i < N; i++)
			CHECK(p[i] = ka_calloc(SZ, 1), "calloc");
	}
	for (int i = 0; i < N; i++)
		ka_free(p[i]);
}

/*
 * A span goes on free slices still resident before fresh ones, as jemalloc
 * reuses dirty extents first: a span on fresh slices adds to RSS while the
 * freed ones stay resident beside it until the purge (bench/realloc's peak
 * was 1.28x glibc's).  Blocks of 200 KiB (4 slices) fill segments until
 * one lands in a new segment, whose other slices are fresh; M of the older
 * blocks are freed; M new blocks must take their places, not the new
 * segment's fresh slices, and leave RSS where it was.
 */
static void spans_reuse_resident_slices_first(void)
{
	enum { SZ = 200 << 10, N = 64, M = 10 };
	static unsigned char *p[N], *q[M];
	struct ka_stats st;
	int n;

	ka_stats(&st);
	ka_mallopt(KA_M_DECAY_MS, 600000);	/* freed slices stay resident */
	for (n = 0; n < N; n++) {
		CHECK(p[n] = ka_malloc(SZ), "malloc");
		memset(p[n], 1, SZ);
		if (n > 2 * M && ((uintptr_t)p[n] ^ (uintptr_t)p[n - 1]) > KA_SEGMENT_MASK)
			break;
	}
	CHECK(n < N, "%d blocks of %d KiB did not fill a segment", N, SZ >> 10);
	for (int i = 0; i < M; i++)
		ka_free(p[2 * i]);
	size_t before = rss_bytes();
	for (int i = 0; i < M; i++) {
		CHECK(q[i] = ka_malloc(SZ), "malloc");
		memset(q[i], 2, SZ);
	}
	size_t grew = rss_bytes() - before;
	for (int i = 0; i < M; i++) {
		bool hole = false;
		for (int j = 0; j < M; j++)
			hole |= q[i] == p[2 * j];
		CHECK(hole, "block %d at %p, not where a freed one was (the newest segment is at %p)",
		      i, (void *)q[i], (void *)((uintptr_t)p[n] & ~KA_SEGMENT_MASK));
	}
	CHECK(grew < (size_t)M * SZ / 4, "%d blocks of %d KiB on freed slices added %zu KiB to RSS",
	      M, SZ >> 10, grew >> 10);
	for (int i = 0; i < M; i++)
		ka_free(q[i]);
	for (int i = 0; i <= n; i++)
		if (i >= 2 * M || i % 2)
			ka_free(p[i]);
	ka_mallopt(KA_M_DECAY_MS, (int)st.decay_ms);
}

static void failure_is_enomem(void)
{
	errno = 0;
	CHECK(ka_malloc(SIZE_MAX) == NULL && errno == ENOMEM, "SIZE_MAX");
	errno = 0;
	CHECK(ka_malloc((size_t)1 << 55) == NULL && errno == ENOMEM, "2^55");
	errno = 0;
	CHECK(ka_aligned_alloc(4096, SIZE_MAX - 100) == NULL && errno == ENOMEM, "aligned");
	void *q;
	CHECK(ka_posix_memalign(&q, 64, SIZE_MAX / 2) == ENOMEM, "posix_memalign");
}

static void many_small_random_order(void)
{
	enum { N = 400000 };
	struct ka_stats st0, st1;
	void **v = ka_malloc(N * sizeof *v);
	ka_stats(&st0);
	for (int i = 0; i < N; i++) {
		size_t n = 1 + rnd() % 512;
		v[i] = ka_malloc(n);
		CHECK(v[i], "malloc");
		*(int *)v[i] = i;
	}
	for (int i = N - 1; i > 0; i--) {
		int j = (int)(rnd() % (uint64_t)(i + 1));
		void *t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
	for (int i = 0; i < N; i++)
		ka_free(v[i]);
	ka_stats(&st1);
	CHECK(st1.allocated <= st0.allocated + 65536, "allocated %zu back near %zu",
	      st1.allocated, st0.allocated);
	ka_free(v);
}

static void trim_gives_memory_back(void)
{
	enum { N = 65536 };
	void **v = ka_malloc(N * sizeof *v);
	for (int i = 0; i < N; i++) {
		v[i] = ka_malloc(1000);
		memset(v[i], 1, 1000);
	}
	struct ka_stats st, st_full;
	size_t full = rss_bytes();
	ka_stats(&st_full);
	for (int i = 0; i < N; i++)
		ka_free(v[i]);
	CHECK(ka_malloc_trim(0) == 1, "trim released something");
	ka_stats(&st);
	CHECK(st.dirty == 0, "dirty %zu after trim", st.dirty);
	size_t after = rss_bytes();
	printf("# rss %zu -> %zu, resident %zu -> %zu\n", full, after, st_full.resident, st.resident);
	/* The backend's count: with the device, RSS may not see its pages. */
	CHECK(st_full.resident - st.resident > (40u << 20), "resident %zu -> %zu",
	      st_full.resident, st.resident);
	if (strcmp(st.backend, "anon") == 0)
		CHECK(full - after > (40u << 20), "rss %zu -> %zu", full, after);
	ka_free(v);
}

static void resident_falls_after_free_and_trim(void)
{
	enum { N = 8192 };
	struct ka_stats st0, full, freed, trimmed;
	void **v = ka_malloc(N * sizeof *v);
	ka_malloc_trim(0);
	ka_stats(&st0);
	for (int i = 0; i < N; i++) {
		v[i] = ka_malloc(4000);
		memset(v[i], 1, 4000);
	}
	ka_stats(&full);
	for (int i = 0; i < N; i++)
		ka_free(v[i]);
	ka_stats(&freed);
	ka_malloc_trim(0);
	ka_stats(&trimmed);
	printf("# resident %zu -> %zu full -> %zu freed -> %zu trimmed\n",
	       st0.resident, full.resident, freed.resident, trimmed.resident);
	CHECK(full.resident >= st0.resident + (28u << 20), "resident grows with use");
	CHECK(freed.resident >= full.resident - (4u << 20), "freed pages wait for the decay");
	CHECK(trimmed.resident <= st0.resident + (1u << 20), "malloc_trim(0) gives them back");
	ka_free(v);
}

/* /proc/kalloc seen from the process: the rows with our pid. */
struct kalloc_rows {
	int keys;		/* of the totals we look for */
	int header_ok;
	int rows;		/* ours */
	int bad_rows;		/* ours but not pages/our comm */
	unsigned long resident;	/* pages, summed over ours */
	unsigned long biggest;	/* size_pages of our largest region */
};

static int read_proc_kalloc(struct kalloc_rows *k)
{
	static const char *const keys[] = { "version", "abi", "regions", "resident_vmalloc",
		"resident_pages", "faults", "releases", "high_water", "max_pages",
		"max_region_pages", "fault_around", "node0_resident" };
	char line[512], comm[64] = "", want[64];
	FILE *f = fopen("/proc/self/comm", "r");
	if (f) {
		if (!fgets(comm, sizeof comm, f))
			comm[0] = 0;
		fclose(f);
	}
	comm[strcspn(comm, "\n")] = 0;
	for (char *c = comm; *c; c++)
		if (*c <= ' ' || *c > '~')
			*c = '_';
	memset(k, 0, sizeof *k);
	f = fopen("/proc/kalloc", "r");
	if (!f)
		return -1;
	int in_rows = 0;
	while (fgets(line, sizeof line, f)) {
		if (!in_rows) {
			if (line[0] == '\n') {
				/* the ABI adds columns only at the end */
				static const char head[] = "id pid comm backing order node "
							   "size_pages resident_pages faults mappings";
				if (fgets(line, sizeof line, f))
					k->header_ok = strncmp(line, head, sizeof head - 1) == 0 &&
						       (line[sizeof head - 1] == '\n' ||
							line[sizeof head - 1] == ' ');
				in_rows = 1;
				continue;
			}
			for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
				size_t n = strlen(keys[i]);
				if (strncmp(line, keys[i], n) == 0 && line[n] == ' ')
					k->keys++;
			}
			continue;
		}
		unsigned id, order;
		int pid, node, mappings;
		char rcomm[64], backing[16];
		unsigned long size, res;
		long faults;
		if (sscanf(line, "%u %d %63s %15s %u %d %lu %lu %ld %d", &id, &pid, rcomm, backing,
			   &order, &node, &size, &res, &faults, &mappings) != 10 || pid != getpid())
			continue;
		k->rows++;
		snprintf(want, sizeof want, "%s", comm[0] ? comm : "_");
		if (strcmp(backing, "pages") != 0 || strcmp(rcomm, want) != 0 || mappings < 1)
			k->bad_rows++;
		k->resident += res;
		if (size > k->biggest)
			k->biggest = size;
	}
	fclose(f);
	return 0;
}

/*
 * In the VM: /proc/kalloc lists this process's regions (rows with its
 * pid), their resident pages grow with use; a freed huge block's region
 * stays (the huge cache) until malloc_trim(0) destroys it, and resident
 * pages fall then, and when malloc_trim(0) releases the freed spans.
 */
static void proc_kalloc_shows_regions(void)
{
	enum { N = 8192, BS = 4000, HUGE = 16u << 20 };
	struct ka_stats st;
	struct kalloc_rows k0, k1, k2, k3, k4;
	ka_stats(&st);
	if (strcmp(st.backend, "device") != 0 || access("/proc/kalloc", R_OK) != 0) {
		printf("# needs the device and /proc/kalloc (backend %s)\n", st.backend);
		exit(77);
	}
	void **v = ka_malloc(N * sizeof *v);
	ka_malloc_trim(0);
	CHECK(read_proc_kalloc(&k0) == 0, "read /proc/kalloc");
	CHECK(k0.keys == 12, "totals: %d of the 12 keys", k0.keys);
	CHECK(k0.header_ok, "the header line");
	CHECK(k0.rows >= 1 && k0.bad_rows == 0, "our rows %d (bad %d)", k0.rows, k0.bad_rows);
	for (int i = 0; i < N; i++) {
		v[i] = ka_malloc(BS);
		memset(v[i], 1, BS);
	}
	unsigned char *h = ka_malloc(HUGE);
	memset(h, 2, HUGE);
	CHECK(read_proc_kalloc(&k1) == 0, "read");
	printf("# rows %d -> %d, resident pages %lu -> %lu\n", k0.rows, k1.rows, k0.resident, k1.resident);
	CHECK(k1.rows >= k0.rows + 1 && k1.bad_rows == 0, "rows %d -> %d (bad %d)", k0.rows, k1.rows, k1.bad_rows);
	CHECK(k1.biggest >= HUGE / 4096, "the huge block's region: %lu pages", k1.biggest);
	CHECK(k1.resident >= k0.resident + (size_t)(N * BS + HUGE) / 4096,
	      "resident %lu -> %lu pages", k0.resident, k1.resident);
	ka_free(h);
	CHECK(read_proc_kalloc(&k2) == 0, "read");
	CHECK(k2.rows == k1.rows, "the freed huge block's region is cached: rows %d -> %d",
	      k1.rows, k2.rows);
	ka_malloc_trim(0);
	CHECK(read_proc_kalloc(&k2) == 0, "read");
	printf("# huge freed, trimmed: rows %d, resident %lu\n", k2.rows, k2.resident);
	CHECK(k2.rows == k1.rows - 1, "the huge block's region is gone: rows %d -> %d", k1.rows, k2.rows);
	CHECK(k2.resident <= k1.resident - HUGE / 4096, "resident %lu -> %lu", k1.resident, k2.resident);
	for (int i = 0; i < N; i++)
		ka_free(v[i]);
	CHECK(read_proc_kalloc(&k3) == 0, "read");
	ka_malloc_trim(0);
	CHECK(read_proc_kalloc(&k4) == 0, "read");
	printf("# small blocks freed: resident %lu, after malloc_trim(0): %lu\n", k3.resident, k4.resident);
	CHECK(k4.resident + (size_t)N * BS / 4096 * 9 / 10 <= k3.resident,
	      "malloc_trim(0) released the freed pages: %lu -> %lu", k3.resident, k4.resident);
	CHECK(k4.resident <= k0.resident + 256, "back near the start: %lu, started at %lu",
	      k4.resident, k0.resident);
	ka_stats(&st);
	CHECK(st.resident / 4096 <= k4.resident, "ka_stats resident %zu within /proc/kalloc's %lu pages",
	      st.resident / 4096, k4.resident);
	ka_free(v);
}

static void decay_purges_later(void)
{
	struct ka_stats st;
	void *v[32];
	ka_mallopt(KA_M_DECAY_MS, 100);
	ka_malloc_trim(0);
	for (int i = 0; i < 32; i++) {
		v[i] = ka_malloc(300000);
		memset(v[i], 1, 300000);
	}
	for (int i = 0; i < 32; i++)
		ka_free(v[i]);
	ka_stats(&st);
	CHECK(st.dirty >= (8u << 20), "freed spans wait (dirty %zu)", st.dirty);
	usleep(250000);
	ka_free(ka_malloc(300000));	/* a slow path runs the purge */
	ka_stats(&st);
	CHECK(st.dirty <= (1u << 20), "purged after the decay (dirty %zu)", st.dirty);
	ka_mallopt(KA_M_DECAY_MS, 1000);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * free() gives an emptied page's span back to its segment at once, unless
 * it is its class's only page (page.c); the spans go back to the kernel a
 * decay later, from the purge thread (purge.c): no further call is needed.
 * "Later" allows for the kernel's time to take the pages back, which goes
 * with what faulting them in took: up to 500 ms and four times the fill's
 * time (the debug kernel under emulation, KASAN, init_on_free and
 * debug_pagealloc, took 0.7 to 1.5 s after a fill of 0.45 to 1 s).
 */
static void empty_pages_go_back_after_the_decay(void)
{
	enum { N = 20000, BS = 1000 };
	struct ka_stats st0, freed, released;
	void **v = malloc(N * sizeof *v);
	CHECK(v, "malloc");
	ka_mallopt(KA_M_DECAY_MS, 100);
	ka_malloc_trim(0);
	ka_stats(&st0);
	long t0 = now_ms();
	for (int i = 0; i < N; i++) {
		v[i] = ka_malloc(BS);
		memset(v[i], 1, BS);
	}
	long fill_ms = now_ms() - t0;
	for (int i = 0; i < N; i++)
		ka_free(v[i]);
	ka_stats(&freed);
	CHECK(freed.active <= st0.active + (1u << 20),
	      "the emptied pages went back to their segments (active %zu -> %zu)",
	      st0.active, freed.active);
	/* dirty, or already given back if the frees took longer than the decay */
	CHECK(freed.dirty + (freed.released_bytes - st0.released_bytes) >= (size_t)N * BS * 9 / 10,
	      "as dirty spans (dirty %zu)", freed.dirty);
	long freed_at = now_ms();
	do {			/* no allocator call meanwhile */
		usleep(50000);
		ka_stats(&released);
	} while (released.dirty > (1u << 20) && now_ms() - freed_at < 500 + 4 * fill_ms);
	printf("# fill %ld ms; dirty %zu bytes %ld ms after the frees\n", fill_ms,
	       released.dirty, now_ms() - freed_at);
	CHECK(released.dirty <= (1u << 20), "released a decay later (dirty %zu, after %ld ms)",
	      released.dirty, now_ms() - freed_at);
	CHECK(released.released_bytes - st0.released_bytes >= (size_t)N * BS * 9 / 10,
	      "to the kernel (%llu bytes)",
	      (unsigned long long)(released.released_bytes - st0.released_bytes));
	ka_mallopt(KA_M_DECAY_MS, 1000);
	free(v);
}

/*
 * Blocks of one size fill several segments and are freed; blocks of
 * another size then take the emptied pages' spans (the heap sweeps when
 * its segments have no room) instead of new segments.
 */
static void empty_pages_make_room_for_other_sizes(void)
{
	enum { A = 64, B = 200, BYTES = 16u << 20 };
	struct ka_stats st0, full, after;
	size_t na = BYTES / A, nb = BYTES / B;
	void **v = malloc(na * sizeof *v);
	CHECK(v, "malloc");
	ka_malloc_trim(0);
	ka_stats(&st0);
	for (size_t i = 0; i < na; i++)
		v[i] = ka_malloc(A);
	ka_stats(&full);
	for (size_t i = 0; i < na; i++)
		ka_free(v[i]);
	for (size_t i = 0; i < nb; i++)
		v[i] = ka_malloc(B);
	ka_stats(&after);
	printf("# segments %zu, %zu with %zu B blocks, %zu with %zu B blocks after\n",
	       st0.segments, full.segments, (size_t)A, after.segments, (size_t)B);
	CHECK(full.segments >= st0.segments + 4, "the first size fills segments (%zu -> %zu)",
	      st0.segments, full.segments);
	CHECK(after.segments <= full.segments + 1, "the second reuses them (%zu -> %zu)",
	      full.segments, after.segments);
	for (size_t i = 0; i < nb; i++)
		ka_free(v[i]);
	free(v);
}

/* ---- threads ---- */

enum { HANDOFF = 20000 };
static void *handoff[HANDOFF];

static void *alloc_and_exit(void *arg)
{
	int id = (int)(intptr_t)arg;
	void *mine[1000];
	for (int i = 0; i < 1000; i++)
		mine[i] = ka_malloc(16 + (size_t)i % 300);
	for (int i = 0; i < 1000; i++)
		ka_free(mine[i]);
	for (int i = 0; i < HANDOFF / 10; i++) {
		handoff[id * (HANDOFF / 10) + i] = ka_malloc(24 + (size_t)i % 500);
		memset(handoff[id * (HANDOFF / 10) + i], id, 24);
	}
	return NULL;
}

static void thread_exit_returns_heap(void)
{
	struct ka_stats st;
	ka_free(ka_malloc(1));
	for (int round = 0; round < 10; round++) {
		pthread_t t;
		pthread_create(&t, NULL, alloc_and_exit, (void *)(intptr_t)round);
		pthread_join(t, NULL);
		/* The exited thread's heap is given back, not left parked for
		 * the next (parked_heap_goes_to_the_next_thread): the next
		 * thread reclaims its segments. */
		ka_malloc_trim(0);
	}
	ka_stats(&st);
	CHECK(st.heaps_in_use == 1, "heaps in use %zu", st.heaps_in_use);
	CHECK(st.heaps <= 3, "exited threads' heaps reused (%zu made)", st.heaps);
	CHECK(st.heaps_parked == 0 && st.abandoned > 0, "live blocks keep segments abandoned");
	for (int i = 0; i < HANDOFF; i++) {
		CHECK(((unsigned char *)handoff[i])[0] == i / (HANDOFF / 10), "content");
		ka_free(handoff[i]);
	}
	ka_malloc_trim(0);
	ka_stats(&st);
	CHECK(st.heaps_parked == 0, "trim gives parked heaps back (%zu)", st.heaps_parked);
	CHECK(st.abandoned == 0, "abandoned segments emptied by trim (%zu)", st.abandoned);
}

struct park_probe {
	void *block;
	struct ka_stats st;	/* seen by the thread after its malloc */
	size_t bytes;		/* to allocate, write and free before */
};

static void *park_probe_thread(void *arg)
{
	struct park_probe *pp = arg;
	enum { BS = 1000 };
	size_t n = pp->bytes / BS;
	void **v = n ? malloc(n * sizeof *v) : NULL;

	for (size_t i = 0; i < n; i++) {
		v[i] = ka_malloc(BS);
		memset(v[i], 1, BS);
	}
	for (size_t i = 0; i < n; i++)
		ka_free(v[i]);
	free(v);
	pp->block = ka_malloc(200);
	ka_stats(&pp->st);
	ka_free(pp->block);
	return NULL;
}

enum { PARK_LEFT = 20000 };
static void *park_left[PARK_LEFT];

/* Blocks of 16 B to 4 KiB, every class among them, left live at exit. */
static void *park_leave_blocks(void *arg)
{
	(void)arg;
	for (int i = 0; i < PARK_LEFT; i++) {
		size_t n = (size_t)16 << (i % 9);
		park_left[i] = ka_malloc(n + (size_t)(i / 9) % n);
		memset(park_left[i], 1, 16);
	}
	return NULL;
}

static void park_probe_run(struct park_probe *pp, size_t bytes)
{
	pthread_t t;

	pp->bytes = bytes;
	pthread_create(&t, NULL, park_probe_thread, pp);
	pthread_join(t, NULL);
}

/*
 * A thread that frees before it allocates takes the parked heap that owns
 * the first block it frees, not the newest parked one: a server's next
 * worker, which goes on with the blocks an exited one left, then frees
 * them into its own pages, and its next block of the size is the one it
 * just freed.  Before, it took the newest parked heap (another thread's
 * here), and every free of an inherited block went to another heap.
 */
enum { INHERIT_N = 16, INHERIT_BS = 200 };
static void *inherit_blocks[2][INHERIT_N];

/* Both threads have their heaps at once (else the second would take the
 * first one's, parked); the first exits before the second. */
static pthread_barrier_t inherit_both, inherit_second;

static void *inherit_leave(void *arg)
{
	void **v = arg;

	for (int i = 0; i < INHERIT_N; i++) {
		v[i] = ka_malloc(INHERIT_BS);
		memset(v[i], 1, INHERIT_BS);
	}
	pthread_barrier_wait(&inherit_both);
	if (v == inherit_blocks[1])
		pthread_barrier_wait(&inherit_second);
	return NULL;
}

struct inherit_next {
	void **blocks;		/* to free, first thing */
	void *first;		/* its first malloc of the size */
	struct ka_stats st;	/* after it */
};

static void *inherit_go_on(void *arg)
{
	struct inherit_next *in = arg;

	ka_free(in->blocks[0]);
	in->first = ka_malloc(INHERIT_BS);
	ka_stats(&in->st);
	for (int i = 1; i < INHERIT_N; i++)
		ka_free(in->blocks[i]);
	ka_free(in->first);
	return NULL;
}

static void first_free_takes_the_heap_of_its_block(void)
{
	const char *purger = getenv("KALLOC_PURGE_THREAD");
	struct ka_stats st;
	pthread_t t;

	if (purger && strcmp(purger, "0") == 0) {
		printf("# KALLOC_PURGE_THREAD=0: no heap is parked\n");
		exit(77);
	}
	ka_free(ka_malloc(1));		/* main's heap: a thread's is another */
	ka_mallopt(KA_M_DECAY_MS, 10000);	/* parked through the test */
	ka_malloc_trim(0);
	pthread_t leave[2];
	pthread_barrier_init(&inherit_both, NULL, 3);
	pthread_barrier_init(&inherit_second, NULL, 2);
	for (int k = 0; k < 2; k++)
		CHECK(pthread_create(&leave[k], NULL, inherit_leave, inherit_blocks[k]) == 0, "thread");
	pthread_barrier_wait(&inherit_both);
	pthread_join(leave[0], NULL);	/* two parked heaps, the second's newest */
	pthread_barrier_wait(&inherit_second);
	pthread_join(leave[1], NULL);
	pthread_barrier_destroy(&inherit_both);
	pthread_barrier_destroy(&inherit_second);
	ka_stats(&st);
	CHECK(st.heaps_parked == 2, "both exited threads' heaps are parked (%zu)", st.heaps_parked);

	struct inherit_next in = { .blocks = inherit_blocks[0] };
	CHECK(pthread_create(&t, NULL, inherit_go_on, &in) == 0, "thread");
	pthread_join(t, NULL);
	CHECK(in.st.heaps_parked == 1 && in.st.heaps_in_use == 2,
	      "it took one parked heap (parked %zu, in use %zu)", in.st.heaps_parked,
	      in.st.heaps_in_use);
	CHECK(in.first == inherit_blocks[0][0],
	      "the first block's heap: its next block is the one it freed (%p, freed %p)",
	      in.first, inherit_blocks[0][0]);

	/* The first heap is the newest parked one now: the other's blocks
	 * take the other. */
	in = (struct inherit_next){ .blocks = inherit_blocks[1] };
	CHECK(pthread_create(&t, NULL, inherit_go_on, &in) == 0, "thread");
	pthread_join(t, NULL);
	CHECK(in.first == inherit_blocks[1][0], "the older one too (%p, freed %p)", in.first,
	      inherit_blocks[1][0]);
	ka_malloc_trim(0);
	ka_mallopt(KA_M_DECAY_MS, 1000);
}

/*
 * A thread's heap is parked whole at its exit and the next thread takes
 * it: its first block of a class is the one the last thread freed last,
 * with no segment reclaimed and nothing faulted in again (glibc's arenas
 * go to the next thread the same way).  Left parked, it gives its memory
 * back a decay later from the purge thread, with no allocator call.
 */
static void parked_heap_goes_to_the_next_thread(void)
{
	struct park_probe a = { 0 }, b = { 0 }, c = { 0 };
	struct ka_stats st, before, parked, back;

	ka_free(ka_malloc(1));		/* main's heap: a thread's is another */
	/* A decay long enough for the hand-off on a slow machine (a TCG
	 * guest, ASan), and for c's frees to end before it runs out. */
	ka_mallopt(KA_M_DECAY_MS, 1000);
	ka_malloc_trim(0);
	park_probe_run(&a, 0);		/* starts the purge thread too */
	ka_stats(&st);
	CHECK(st.heaps_parked == 1, "the exited thread's heap is parked (%zu)", st.heaps_parked);
	park_probe_run(&b, 0);
	CHECK(b.st.heaps_parked == 0 && b.st.heaps_in_use == 2,
	      "the next thread took it (parked %zu, in use %zu)", b.st.heaps_parked,
	      b.st.heaps_in_use);
	CHECK(b.block == a.block, "whole: its first block is the last one freed (%p, %p)",
	      b.block, a.block);

	ka_malloc_trim(0);
	ka_stats(&before);
	park_probe_run(&c, 16u << 20);	/* 16 MiB written and freed, then parked */
	ka_stats(&parked);
	long exited_at = now_ms();
	do {			/* no allocator call meanwhile */
		usleep(50000);
		ka_stats(&back);
	} while ((back.heaps_parked || back.dirty > (1u << 20)) && now_ms() - exited_at < 6000);
	printf("# parked: resident %zu -> %zu -> %zu KiB, back %ld ms after the exit\n",
	       before.resident >> 10, parked.resident >> 10, back.resident >> 10,
	       now_ms() - exited_at);
	CHECK(parked.heaps_parked == 1 && parked.resident >= before.resident + (8u << 20),
	      "parked with its memory (parked %zu, resident %zu -> %zu)", parked.heaps_parked,
	      before.resident, parked.resident);
	CHECK(back.heaps_parked == 0 && back.resident <= before.resident + (2u << 20),
	      "given back after the decay, with no call (parked %zu, resident %zu)",
	      back.heaps_parked, back.resident);

	/* Blocks of many sizes left live by a thread that exits, then freed
	 * by main: main keeps none of a parked heap's (foreign.c), so no page
	 * of it stays behind for a block main kept. */
	pthread_t t;
	ka_malloc_trim(0);
	ka_stats(&before);
	CHECK(pthread_create(&t, NULL, park_leave_blocks, NULL) == 0, "thread");
	pthread_join(t, NULL);
	for (int i = 0; i < PARK_LEFT; i++)
		ka_free(park_left[i]);
	exited_at = now_ms();
	do {			/* no allocator call meanwhile */
		usleep(50000);
		ka_stats(&back);
	} while ((back.heaps_parked || back.abandoned || back.active > before.active + (1u << 20)) &&
		 now_ms() - exited_at < 6000);
	printf("# left blocks: active %zu -> %zu KiB, abandoned %zu, %ld ms after the frees\n",
	       before.active >> 10, back.active >> 10, back.abandoned, now_ms() - exited_at);
	CHECK(back.heaps_parked == 0 && back.abandoned == 0 &&
	      back.active <= before.active + (1u << 20),
	      "freed by another thread, back after the decay (parked %zu, abandoned %zu, active %zu -> %zu)",
	      back.heaps_parked, back.abandoned, before.active, back.active);
	ka_mallopt(KA_M_DECAY_MS, 1000);
}

static _Atomic(void *) box[1024];
static atomic_int producers_done;

static void *produce(void *arg)
{
	uint64_t r = 1234567;
	(void)arg;
	for (int i = 0; i < 200000; i++) {
		r = r * 6364136223846793005ULL + 1442695040888963407ULL;
		size_t n = 32 + (size_t)((r >> 33) % 2000);
		unsigned char *p = ka_malloc(n);
		p[0] = (unsigned char)n;
		p[n - 1] = (unsigned char)(n >> 3);
		*(size_t *)(p + 8) = n;
		void *old = atomic_exchange(&box[i % 1024], p);
		if (old)
			ka_free(old);	/* a block maybe freed already by the consumer */
	}
	atomic_store(&producers_done, 1);
	return NULL;
}

static void *consume(void *arg)
{
	(void)arg;
	unsigned i = 0;
	while (!atomic_load(&producers_done)) {
		void *p = atomic_exchange(&box[i++ % 1024], NULL);
		if (p) {
			unsigned char *c = p;
			size_t n = *(size_t *)(c + 8);
			if (c[0] != (unsigned char)n || c[n - 1] != (unsigned char)(n >> 3))
				abort();
			ka_free(p);
		}
	}
	return NULL;
}

static void cross_thread_frees(void)
{
	pthread_t a, b;
	struct ka_stats st;
	pthread_create(&a, NULL, produce, NULL);
	pthread_create(&b, NULL, consume, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	for (int i = 0; i < 1024; i++)
		ka_free(atomic_exchange(&box[i], NULL));
	ka_malloc_trim(0);
	ka_stats(&st);
	CHECK(st.allocated < (1u << 20), "allocated %zu after all frees", st.allocated);
}

/*
 * A live thread fills pages of one class until they are full; another
 * frees every block; again, for several rounds.  The first remote free
 * into a full page tells the owner through its delayed list, the others
 * go on the page's xthread list: the owner must get all of them back, so
 * the spans in use stay what one round needs instead of growing by a
 * round's worth each time.
 */
#define FULL_BLOCKS 100000
#define FULL_ROUNDS 5
static void *full_blocks[FULL_BLOCKS];
static pthread_barrier_t full_turn;
static size_t full_active[FULL_ROUNDS];

static void *fill_pages(void *arg)
{
	struct ka_stats st;
	(void)arg;
	for (int r = 0; r < FULL_ROUNDS; r++) {
		for (int i = 0; i < FULL_BLOCKS; i++) {
			unsigned char *p = ka_malloc(64);
			p[0] = (unsigned char)i;
			p[63] = (unsigned char)r;
			full_blocks[i] = p;
		}
		ka_stats(&st);
		full_active[r] = st.active;
		pthread_barrier_wait(&full_turn);	/* the other thread frees */
		pthread_barrier_wait(&full_turn);
	}
	return NULL;
}

static void full_pages_freed_remotely_come_back(void)
{
	pthread_t t;
	CHECK(pthread_barrier_init(&full_turn, NULL, 2) == 0, "barrier");
	pthread_create(&t, NULL, fill_pages, NULL);
	for (int r = 0; r < FULL_ROUNDS; r++) {
		pthread_barrier_wait(&full_turn);
		for (int i = 0; i < FULL_BLOCKS; i++) {
			unsigned char *p = full_blocks[i];
			CHECK(p[0] == (unsigned char)i && p[63] == (unsigned char)r,
			      "block %d of round %d intact", i, r);
			ka_free(p);
		}
		pthread_barrier_wait(&full_turn);
	}
	pthread_join(t, NULL);
	pthread_barrier_destroy(&full_turn);
	for (int r = 1; r < FULL_ROUNDS; r++)
		CHECK(full_active[r] <= full_active[0] + (1u << 20),
		      "round %d: %zu bytes of spans in use, round 0 had %zu", r, full_active[r],
		      full_active[0]);
}

/*
 * Foreign blocks (foreign.c).  An owner thread allocates blocks of 3000 B
 * and stays; another thread, with a heap of its own and no page of that
 * class, frees them.  It keeps KA_FOREIGN_CAP0 of them, the rest go to the
 * owner's page; its next malloc of the class returns the last one it kept,
 * not new memory.  Kept blocks count as allocated until they go back.
 */
/* With several nodes a block is kept only by a thread on its node, and
 * these tests do not place their threads: they prove nothing there. */
static void kept_one_node_only(void)
{
	if (ka_numa_nodes() >= 2) {
		printf("# %d NUMA nodes: kept blocks depend on where threads run\n", ka_numa_nodes());
		exit(77);
	}
}

#define KEPT_BS	3000
#define KEPT_N	(KA_FOREIGN_CAP0 + 4)
static void *kept_blocks[KEPT_N];
static pthread_barrier_t kept_turn;

/* The owner: allocates, lets the other thread work, and waits for the end. */
static void *kept_owner(void *arg)
{
	(void)arg;
	for (int i = 0; i < KEPT_N; i++)
		kept_blocks[i] = ka_malloc(KEPT_BS);
	pthread_barrier_wait(&kept_turn);	/* the freer's turn */
	pthread_barrier_wait(&kept_turn);	/* done: the caller checked */
	return NULL;
}

static void *kept_freer(void *arg)
{
	ka_heap_t *heap;
	unsigned cls = ka_size_class(KEPT_BS);
	int bad = 0;

	(void)arg;
	ka_free(ka_malloc(16));			/* a heap, with no 3000 B page */
	heap = ka_tls_heap;
	for (int i = 0; i < KEPT_N; i++)
		ka_free(kept_blocks[i]);
	if (heap->foreign_count[cls] != KA_FOREIGN_CAP0 ||
	    heap->foreign[cls] != kept_blocks[KA_FOREIGN_CAP0 - 1])
		bad |= 1;
	void *p = ka_malloc(KEPT_BS);
	if (p != kept_blocks[KA_FOREIGN_CAP0 - 1] || heap->foreign_count[cls] != KA_FOREIGN_CAP0 - 1)
		bad |= 2;
	memset(p, 0x3c, KEPT_BS);		/* it is the caller's now */
	ka_free(p);				/* kept again */
	if (heap->foreign_count[cls] != KA_FOREIGN_CAP0)
		bad |= 4;
	return (void *)(intptr_t)bad;
}

static void foreign_blocks_serve_the_freer(void)
{
	pthread_t owner, freer;
	struct ka_stats st0, st1;
	void *bad;

	kept_one_node_only();

	ka_malloc_trim(0);
	ka_stats(&st0);
	pthread_barrier_init(&kept_turn, NULL, 2);
	pthread_create(&owner, NULL, kept_owner, NULL);
	pthread_barrier_wait(&kept_turn);
	pthread_create(&freer, NULL, kept_freer, NULL);
	pthread_join(freer, &bad);
	CHECK(bad == NULL, "kept %s", (intptr_t)bad & 1 ? "not the first KA_FOREIGN_CAP0 blocks" :
	      (intptr_t)bad & 2 ? "blocks, but malloc did not take the last one" :
	      "nothing again after the free");
	/* The freer exited: what it kept went back to the owner's page. */
	ka_malloc_trim(0);
	ka_stats(&st1);
	CHECK(st1.allocated >= st0.allocated + KEPT_N * (size_t)KEPT_BS,
	      "the owner's blocks are counted until it collects: %zu, before %zu", st1.allocated,
	      st0.allocated);
	pthread_barrier_wait(&kept_turn);
	pthread_join(owner, NULL);
	pthread_barrier_destroy(&kept_turn);
	ka_malloc_trim(0);
	ka_stats(&st1);
	CHECK(st1.allocated <= st0.allocated, "allocated %zu after both exited, %zu before",
	      st1.allocated, st0.allocated);
}

/*
 * What a thread keeps and no longer reuses goes back (foreign.c's GC).
 * The freer takes each of 400 of the owner's 3000 B blocks back at once
 * (raising the class's cap to 408), then frees them all: it keeps as many
 * as its room holds.  Then it only frees the owner's 64 B blocks, 4096 of
 * them: every KA_FOREIGN_GC_FREES of those, the 3000 B class, which never
 * went below what it keeps, gives back half.
 */
#define GC_BIG	400
#define GC_SMALL	4096
static void *gc_big[GC_BIG], *gc_small[GC_SMALL];

static void *gc_owner(void *arg)
{
	(void)arg;
	for (int i = 0; i < GC_BIG; i++)
		gc_big[i] = ka_malloc(KEPT_BS);
	for (int i = 0; i < GC_SMALL; i++)
		gc_small[i] = ka_malloc(64);
	pthread_barrier_wait(&kept_turn);
	pthread_barrier_wait(&kept_turn);
	return NULL;
}

static void *gc_freer(void *arg)
{
	unsigned cls = ka_size_class(KEPT_BS);
	unsigned *kept = arg;
	ka_heap_t *heap;

	ka_free(ka_malloc(16));
	heap = ka_tls_heap;
	for (int i = 0; i < GC_BIG; i++) {
		ka_free(gc_big[i]);
		gc_big[i] = ka_malloc(KEPT_BS);	/* the same block, kept and taken */
	}
	for (int i = 0; i < GC_BIG; i++)
		ka_free(gc_big[i]);
	kept[0] = heap->foreign_count[cls];
	for (int i = 0; i < GC_SMALL; i++)
		ka_free(gc_small[i]);
	kept[1] = heap->foreign_count[cls];
	return NULL;
}

static void foreign_blocks_not_reused_go_back(void)
{
	pthread_t owner, freer;
	unsigned kept[2];
	size_t room_blocks = KA_FOREIGN_BYTES / ka_class_size[ka_size_class(KEPT_BS)];

	kept_one_node_only();

	pthread_barrier_init(&kept_turn, NULL, 2);
	pthread_create(&owner, NULL, gc_owner, NULL);
	pthread_barrier_wait(&kept_turn);
	pthread_create(&freer, NULL, gc_freer, kept);
	pthread_join(freer, NULL);
	pthread_barrier_wait(&kept_turn);
	pthread_join(owner, NULL);
	pthread_barrier_destroy(&kept_turn);
	printf("# kept of 3000 B: %u, then %u after %d frees of 64 B\n", kept[0], kept[1], GC_SMALL);
	CHECK(kept[0] == room_blocks, "kept %u blocks of 3000 B, its room holds %zu", kept[0],
	      room_blocks);
	CHECK(kept[1] <= room_blocks / 4, "still %u kept after %d frees of another class", kept[1],
	      GC_SMALL);
}

/*
 * A thread whose first malloc comes in glibc's last destructor round
 * gets a heap whose destructor never runs (thread.c): glibc clears the
 * key set in that round without calling it.  The next thread whose
 * thread-local storage lies where that thread's lay -- on its stack,
 * which glibc hands to the next thread (here the same stack, given) --
 * proves it gone, and the heap goes back as at an exit (parked: the
 * purge thread runs).
 */
static pthread_key_t late_first_key;

static void late_first_destructor(void *v)
{
	uintptr_t round = (uintptr_t)v;

	if (round < PTHREAD_DESTRUCTOR_ITERATIONS) {
		pthread_setspecific(late_first_key, (void *)(round + 1));
		return;
	}
	void *p = ka_malloc(100);	/* the thread's first */
	memset(p, 1, 100);
	ka_free(p);
}

static void *late_first_thread(void *arg)
{
	(void)arg;
	pthread_setspecific(late_first_key, (void *)1);
	return NULL;
}

static void *first_malloc_thread(void *arg)
{
	(void)arg;
	ka_free(ka_malloc(100));
	return NULL;
}

static void late_first_malloc_heap_goes_back(void)
{
	enum { STACK = 1 << 20 };
	struct ka_stats before, left, after;
	pthread_attr_t attr;
	pthread_t t;
	void *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(stack != MAP_FAILED, "stack");
	ka_free(ka_malloc(1));		/* liballoc's key first, then the test's */
	CHECK(pthread_key_create(&late_first_key, late_first_destructor) == 0, "key");
	CHECK(pthread_attr_init(&attr) == 0 && pthread_attr_setstack(&attr, stack, STACK) == 0,
	      "attr");
	ka_stats(&before);
	CHECK(pthread_create(&t, &attr, late_first_thread, NULL) == 0, "thread");
	pthread_join(t, NULL);
	ka_stats(&left);
	printf("# heaps in use: %zu before, %zu after the late thread\n", before.heaps_in_use,
	       left.heaps_in_use);
	CHECK(pthread_create(&t, &attr, first_malloc_thread, NULL) == 0, "thread");
	pthread_join(t, NULL);
	ka_stats(&after);
	CHECK(after.heaps_in_use == before.heaps_in_use,
	      "the late thread's heap went back when the next thread took its place "
	      "(in use %zu -> %zu -> %zu)", before.heaps_in_use, left.heaps_in_use,
	      after.heaps_in_use);
	pthread_attr_destroy(&attr);
	pthread_key_delete(late_first_key);
	munmap(stack, STACK);
}

/*
 * The same late heap where no thread comes to take the gone one's place:
 * the purge thread asks the kernel a second after each new thread's heap
 * whether that thread is still there (heap.c, ka_heaps_release_vanished),
 * and the heap goes back.  Before, it counted as a live thread's for good
 * and its memory stayed out of use.  Read for up to 10 s (a TCG guest).
 * Without the purge thread nothing looks.
 */
static void late_first_malloc_heap_goes_back_alone(void)
{
	struct ka_stats before, left, after;
	const char *purger = getenv("KALLOC_PURGE_THREAD");
	pthread_t t;

	if (purger && strcmp(purger, "0") == 0) {
		printf("# KALLOC_PURGE_THREAD=0: no purge thread to look\n");
		exit(77);
	}
	ka_free(ka_malloc(1));
	CHECK(pthread_key_create(&late_first_key, late_first_destructor) == 0, "key");
	ka_stats(&before);
	CHECK(pthread_create(&t, NULL, late_first_thread, NULL) == 0, "thread");
	pthread_join(t, NULL);
	ka_stats(&left);
	long t0 = now_ms();
	do {
		usleep(20000);
		ka_stats(&after);
	} while (after.heaps_in_use > before.heaps_in_use && now_ms() - t0 < 10000);
	printf("# heaps in use: %zu before, %zu after the late thread, %zu %ld ms later\n",
	       before.heaps_in_use, left.heaps_in_use, after.heaps_in_use,
	       now_ms() - t0);
	CHECK(after.heaps_in_use <= before.heaps_in_use,
	      "the late thread's heap went back with no thread in its place "
	      "(in use %zu -> %zu -> %zu)", before.heaps_in_use, left.heaps_in_use,
	      after.heaps_in_use);
	pthread_key_delete(late_first_key);
}

/*
 * The same while new threads keep starting, one every 200 ms on a stack
 * of its own (not the late thread's, which would find its heap): each
 * start asks for a look, and the asks must not push it back for ever (an
 * outside review saw none for as long as threads came more than once a
 * second).  Within 3 s of churn the late heap is back.
 */
static void late_first_malloc_heap_goes_back_while_threads_start(void)
{
	enum { STACK = 1 << 20 };
	struct ka_stats before, after;
	const char *purger = getenv("KALLOC_PURGE_THREAD");
	pthread_attr_t attr;
	pthread_t t;
	void *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (purger && strcmp(purger, "0") == 0) {
		printf("# KALLOC_PURGE_THREAD=0: no purge thread to look\n");
		exit(77);
	}
	CHECK(stack != MAP_FAILED, "stack");
	CHECK(pthread_attr_init(&attr) == 0 && pthread_attr_setstack(&attr, stack, STACK) == 0,
	      "attr");
	ka_free(ka_malloc(1));
	CHECK(pthread_key_create(&late_first_key, late_first_destructor) == 0, "key");
	ka_stats(&before);
	CHECK(pthread_create(&t, NULL, late_first_thread, NULL) == 0, "thread");
	pthread_join(t, NULL);
	long t0 = now_ms();
	do {
		CHECK(pthread_create(&t, &attr, first_malloc_thread, NULL) == 0, "thread");
		pthread_join(t, NULL);
		usleep(200000);
		ka_stats(&after);
	} while (after.heaps_in_use > before.heaps_in_use && now_ms() - t0 < 3000);
	printf("# heaps in use: %zu before, %zu after %ld ms of a thread every 200 ms\n",
	       before.heaps_in_use, after.heaps_in_use, now_ms() - t0);
	CHECK(after.heaps_in_use <= before.heaps_in_use,
	      "the late thread's heap went back while threads kept starting (in use %zu -> %zu)",
	      before.heaps_in_use, after.heaps_in_use);
	pthread_attr_destroy(&attr);
	pthread_key_delete(late_first_key);
	munmap(stack, STACK);
}

/*
 * A fork that runs no atfork handler (glibc's _Fork()) leaves the child's
 * heap with the parent's thread id.  The purge thread's look in the child
 * must not take it for a gone thread's (an outside review saw the heap
 * released under the live main thread, which the next thread was then
 * handed too): heaps carry the process they were marked in.
 */
static int raw_fork_child(void)
{
	struct ka_stats st;
	pthread_t t;

	ka_free(ka_malloc(100));
	CHECK(pthread_create(&t, NULL, first_malloc_thread, NULL) == 0, "thread");
	pthread_join(t, NULL);		/* starts the purge thread, asks a look */
	usleep(1500000);
	ka_stats(&st);
	ka_free(ka_malloc(100));
	return st.heaps_in_use == 1 ? 0 : 3;
}

static void raw_fork_child_keeps_its_heap(void)
{
	const char *purger = getenv("KALLOC_PURGE_THREAD");
	int status;

	if (purger && strcmp(purger, "0") == 0)
		exit(77);
	ka_free(ka_malloc(100));
	pid_t pid = _Fork();
	CHECK(pid >= 0, "_Fork");
	if (pid == 0)
		_exit(raw_fork_child());
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the child's main heap went back under its live thread (status %x)", status);
}

/*
 * unshare() of something a multi-threaded process may not unshare stops
 * the purge thread (namespace.c), which would have given back the parked
 * heaps: they go back at once (an outside review found them left parked,
 * 16 MiB of them, until some thread's slow path started it again).
 * CLONE_FS needs no privilege and changes nothing a test sees.
 */
static void unshare_gives_back_parked_heaps(void)
{
	struct park_probe a = { 0 };
	struct ka_stats before, parked, after;

	ka_free(ka_malloc(1));		/* main's heap: a thread's is another */
	ka_malloc_trim(0);
	ka_stats(&before);
	park_probe_run(&a, 16u << 20);
	ka_stats(&parked);
	CHECK(parked.heaps_parked == 1, "the exited thread's heap is parked (%zu)",
	      parked.heaps_parked);
	/* Refused (a seccomp profile: EPERM) it still stops the thread first. */
	int rc = unshare(CLONE_FS);
	printf("# unshare(CLONE_FS): %s\n", rc == 0 ? "ok" : strerror(errno));
	ka_stats(&after);
	printf("# resident %zu -> %zu -> %zu KiB\n", before.resident >> 10,
	       parked.resident >> 10, after.resident >> 10);
	CHECK(after.heaps_parked == 0 && after.resident <= before.resident + (2u << 20),
	      "given back by the unshare (parked %zu, resident %zu)", after.heaps_parked,
	      after.resident);
}

/*
 * The purge thread gives a parked heap back a decay after its thread
 * exited; the huge cache stays as it is, each region until its own decay
 * (an outside review found every such give-back emptying it; a second
 * one, the give-back of a heap that missed a malloc_trim while its thread
 * lived, which forced its purges).  The thread leaves large blocks, which
 * main frees into its full pages: the give-back frees them as the owner.
 */
static pthread_barrier_t trim_missed[2];
static void *trim_missed_large[4];

static void *trim_missed_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 4; i++) {
		trim_missed_large[i] = ka_malloc(100 << 10);
		memset(trim_missed_large[i], 1, 100 << 10);
	}
	pthread_barrier_wait(&trim_missed[0]);
	pthread_barrier_wait(&trim_missed[1]);	/* main trimmed */
	return NULL;
}

static void parked_heap_given_back_keeps_the_huge_cache(void)
{
	enum { DECAY = 1000, HUGE = 8u << 20 };
	struct ka_stats st;
	pthread_t t;

	ka_free(ka_malloc(1));
	ka_mallopt(KA_M_DECAY_MS, DECAY);
	ka_malloc_trim(0);
	void *h = ka_malloc(HUGE);
	CHECK(h, "malloc");
	memset(h, 1, HUGE);
	pthread_barrier_init(&trim_missed[0], NULL, 2);
	pthread_barrier_init(&trim_missed[1], NULL, 2);
	CHECK(pthread_create(&t, NULL, trim_missed_thread, NULL) == 0, "thread");
	pthread_barrier_wait(&trim_missed[0]);
	ka_malloc_trim(0);	/* the thread's heap misses it, and is parked so */
	pthread_barrier_wait(&trim_missed[1]);
	pthread_join(t, NULL);
	long exited_at = now_ms();
	usleep(DECAY / 2 * 1000);
	ka_free(h);		/* cached until a decay from now */
	long freed_at = now_ms();
	for (int i = 0; i < 4; i++)
		ka_free(trim_missed_large[i]);
	ka_stats(&st);
	CHECK(st.heaps_parked == 1 && st.huge_cached >= HUGE,
	      "parked %zu, huge block cached (%zu bytes)", st.heaps_parked, st.huge_cached);
	do {			/* no allocator call meanwhile */
		usleep(10000);
		ka_stats(&st);
	} while (st.heaps_parked && now_ms() - exited_at < 5000);
	long since_free = now_ms() - freed_at;
	printf("# parked heap given back %ld ms after the exit, %ld ms after the huge free; "
	       "huge_cached %zu\n", now_ms() - exited_at, since_free, st.huge_cached);
	CHECK(st.heaps_parked == 0, "the parked heap went back (%zu)", st.heaps_parked);
	if (since_free < DECAY * 9 / 10)
		CHECK(st.huge_cached >= HUGE, "the huge block freed %ld ms ago is still cached",
		      since_free);
	else
		printf("# too slow to tell: the huge block's own decay had nearly passed\n");
	pthread_barrier_destroy(&trim_missed[0]);
	pthread_barrier_destroy(&trim_missed[1]);
	ka_malloc_trim(0);
}

/*
 * A thread that needs room takes a parked heap's memory before a new
 * segment (heap.c, ka_heaps_unpark_for_room): the exited thread's free
 * memory serves another size class in a live thread at once, not after
 * the decay.
 */
static void parked_heap_makes_room_for_others(void)
{
	enum { BYTES = 32u << 20, B = 2000 };
	struct park_probe a = { 0 };
	struct ka_stats st0, parked, after;
	size_t nb = BYTES / B;
	void **v = malloc(nb * sizeof *v);

	CHECK(v, "malloc");
	ka_free(ka_malloc(1));
	ka_mallopt(KA_M_DECAY_MS, 5000);	/* longer than the case */
	ka_malloc_trim(0);
	ka_stats(&st0);
	park_probe_run(&a, BYTES);	/* 32 MiB of 1000 B written and freed, parked */
	ka_stats(&parked);
	for (size_t i = 0; i < nb; i++)
		v[i] = ka_malloc(B);
	ka_stats(&after);
	printf("# segments %zu, %zu parked, %zu after 32 MiB of %d B blocks\n", st0.segments,
	       parked.segments, after.segments, B);
	CHECK(parked.heaps_parked == 1 && parked.segments >= st0.segments + 6,
	      "parked with its segments (parked %zu, segments %zu -> %zu)", parked.heaps_parked,
	      st0.segments, parked.segments);
	CHECK(after.heaps_parked == 0 && after.segments <= parked.segments + 2,
	      "main took the parked heap's segments, not new ones (parked %zu, segments %zu -> %zu)",
	      after.heaps_parked, parked.segments, after.segments);
	for (size_t i = 0; i < nb; i++)
		ka_free(v[i]);
	free(v);
	ka_mallopt(KA_M_DECAY_MS, 1000);
	ka_malloc_trim(0);
}

/*
 * Wait, with no allocator call, for the purge thread to give back the
 * parked heaps (heap.c): a decay after their threads exited.  Not
 * malloc_trim(0), which would also make the threads' heaps purge.
 */
static void wait_unparked(void)
{
	struct ka_stats st;
	long t0 = now_ms();

	do {
		usleep(10000);
		ka_stats(&st);
	} while (st.heaps_parked && now_ms() - t0 < 5000);
	CHECK(st.heaps_parked == 0, "%zu heaps still parked after 5 s", st.heaps_parked);
}

/*
 * A flush that runs into itself (from an outside review).  T2 keeps x (a
 * block of main's), then a2 and a1 (T1's, on two pages), then y (2048 B,
 * main's).  T1 exits (its heap parked, then given back); T2 reclaims its
 * segment; main calls malloc_trim(0);
 * T2 exits.  Its flush frees a1 as the owner, which empties a1's page and
 * makes the heap purge, as the trim asked: a flush inside the flush.
 * Before the fix the inner one left room and the outer kept x again on a
 * list it had emptied (x leaked: never handed out again), or, popping one
 * at a time, freed the outer's next block twice (an abort).
 */
#define NEST_BS 1024
static void *nest_a1, *nest_a2, *nest_x, *nest_y;
static pthread_barrier_t nest_three, nest_two;

static void *nest_t1(void *arg)
{
	void *b[200];

	(void)arg;
	for (int i = 0; i < 200; i++)
		b[i] = ka_malloc(NEST_BS);
	nest_a1 = b[0];
	b[0] = NULL;
	for (int i = 1; i < 200; i++)
		if (((uintptr_t)b[i] >> 16) != ((uintptr_t)nest_a1 >> 16)) {
			nest_a2 = b[i];
			b[i] = NULL;
			break;
		}
	for (int i = 0; i < 200; i++)
		ka_free(b[i]);
	pthread_barrier_wait(&nest_three);	/* a1, a2 out: T2 frees them */
	pthread_barrier_wait(&nest_three);	/* kept */
	return NULL;				/* its segment abandoned */
}

static void *nest_t2(void *arg)
{
	(void)arg;
	ka_free(ka_malloc(3 << 20));		/* a heap, and no segment */
	pthread_barrier_wait(&nest_three);
	ka_free(nest_x);
	ka_free(nest_a2);
	ka_free(nest_a1);
	ka_free(nest_y);
	pthread_barrier_wait(&nest_three);
	pthread_barrier_wait(&nest_two);	/* T1 is gone */
	ka_free(ka_malloc(64));			/* a span: reclaims T1's segment */
	pthread_barrier_wait(&nest_two);
	pthread_barrier_wait(&nest_two);	/* main trimmed */
	return NULL;				/* the flush */
}

static void foreign_flush_nested_in_purge(void)
{
	pthread_t p1, p2;
	int found = 0;

	kept_one_node_only();

	nest_x = ka_malloc(NEST_BS);
	nest_y = ka_malloc(2048);
	pthread_barrier_init(&nest_three, NULL, 3);
	pthread_barrier_init(&nest_two, NULL, 2);
	pthread_create(&p1, NULL, nest_t1, NULL);
	pthread_create(&p2, NULL, nest_t2, NULL);
	pthread_barrier_wait(&nest_three);
	pthread_barrier_wait(&nest_three);
	pthread_join(p1, NULL);
	wait_unparked();	/* T1's segment abandoned, for T2 to reclaim */
	pthread_barrier_wait(&nest_two);
	pthread_barrier_wait(&nest_two);
	ka_malloc_trim(0);
	pthread_barrier_wait(&nest_two);
	pthread_join(p2, NULL);
	pthread_barrier_destroy(&nest_three);
	pthread_barrier_destroy(&nest_two);
	/* x went back to main's page: a malloc of its class finds it again. */
	for (int i = 0; i < 1000 && !found; i++)
		found = ka_malloc(NEST_BS) == nest_x;
	CHECK(found, "x was never handed out again: kept by a heap that was released");
}

/*
 * fork while a thread keeps blocks of another live thread: in the child
 * both are gone, their segments abandoned, and the kept blocks must go
 * back to their pages, or those pages never empty (a leak in every child).
 * The child trims and finds what the parent had before the two started.
 */
static pthread_barrier_t freer_turn;	/* the caller and the freer */

static void *kept_freer_stays(void *arg)
{
	(void)arg;
	ka_free(ka_malloc(16));
	for (int i = 0; i < KEPT_N; i++)
		ka_free(kept_blocks[i]);
	pthread_barrier_wait(&freer_turn);	/* kept: fork now */
	pthread_barrier_wait(&freer_turn);	/* forked */
	return NULL;
}

static void fork_child_frees_gone_threads_kept_blocks(void)
{
	pthread_t owner, freer;
	struct ka_stats st0;

	kept_one_node_only();

	ka_malloc_trim(0);
	ka_stats(&st0);
	pthread_barrier_init(&kept_turn, NULL, 2);
	pthread_barrier_init(&freer_turn, NULL, 2);
	pthread_create(&owner, NULL, kept_owner, NULL);
	pthread_barrier_wait(&kept_turn);	/* allocated */
	pthread_create(&freer, NULL, kept_freer_stays, NULL);
	pthread_barrier_wait(&freer_turn);	/* the freer kept its share */
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		struct ka_stats st;

		ka_malloc_trim(0);
		ka_stats(&st);
		if (st.allocated > st0.allocated) {
			printf("# child: allocated %zu, %zu before the threads\n", st.allocated,
			       st0.allocated);
			_exit(1);
		}
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	pthread_barrier_wait(&freer_turn);	/* the freer goes */
	pthread_join(freer, NULL);
	pthread_barrier_wait(&kept_turn);	/* the owner goes */
	pthread_join(owner, NULL);
	pthread_barrier_destroy(&kept_turn);
	pthread_barrier_destroy(&freer_turn);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %x", status);
}

static void fork_child_uses_parent_memory(void)
{
	unsigned char *p = ka_malloc(5000), *h = ka_malloc(8u << 20);
	memset(p, 0x5a, 5000);
	memset(h, 0x6b, 8u << 20);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		for (int i = 0; i < 5000; i++)
			if (p[i] != 0x5a)
				_exit(3);
		ka_free(p);
		ka_free(h);
		for (int i = 0; i < 100000; i++)
			ka_free(ka_malloc((size_t)i % 3000));
		pthread_t t;
		pthread_create(&t, NULL, alloc_and_exit, (void *)0);
		pthread_join(t, NULL);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %x", status);
	CHECK(p[4999] == 0x5a && h[(8u << 20) - 1] == 0x6b, "parent's copy intact");
	ka_free(p);
	ka_free(h);
}

/*
 * Another thread cut by fork() halfway through ka_segment_new(), with a
 * slot of the region table taken and no header live yet, is left as this
 * thread leaves it here before it forks.  In the child the slot is free
 * again and new segments fill it; before the fix it stayed taken, 4 MiB
 * out of use for good.  (The other cut, in ka_segment_to_pool, leaves the
 * same state: taken, not live.)
 */
static void fork_frees_a_half_made_segment_slot(void)
{
	ka_free(ka_malloc(16));
	ka_lock(&ka_region_lock);
	struct ka_region *r = &ka_regions[0];
	CHECK(r->seg_used != (1u << KA_REGION_SEGMENTS) - 1, "region 0 has a free slot");
	unsigned si = (unsigned)__builtin_ctz(~r->seg_used);
	r->seg_used |= 1u << si;	/* what ka_segment_new does first */
	ka_unlock(&ka_region_lock);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		if (ka_regions[0].seg_used >> si & 1)
			_exit(3);
		/* 8 MiB of 64 KiB-blocks: a new segment takes the slot */
		for (int i = 0; i < 128; i++)
			memset(ka_malloc(65536), 1, 65536);
		_exit(ka_regions[0].seg_used >> si & 1 && ka_regions[0].seg_live[si] ? 0 : 4);
	}
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child: %s", WIFEXITED(status) && WEXITSTATUS(status) == 3 ?
	      "the slot stayed taken" : "failed otherwise");
	ka_lock(&ka_region_lock);
	r->seg_used &= ~(1u << si);
	ka_unlock(&ka_region_lock);
}

/* Read fd to its end into buf, NUL-terminated. */
static void read_all(int fd, char *buf, size_t len)
{
	ssize_t n;
	size_t got = 0;
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	close(fd);
}

/* The pointer the coming message must name, said first (stderr is the pipe). */
static void *named(void *p)
{
	fprintf(stderr, "pointer %p\n", p);
	return p;
}

/*
 * Run fn in a child: it must die of SIGABRT, and say "liballoc: " want and
 * the pointer it named.
 */
static void expect_abort(void (*fn)(void), const char *want)
{
	int fds[2];
	CHECK(pipe(fds) == 0, "pipe");
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		dup2(fds[1], 2);
		fn();
		_exit(0);
	}
	close(fds[1]);
	char buf[1024], line[256];
	void *p = NULL;
	read_all(fds[0], buf, sizeof buf);
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "%s: status %x, said: %s", want,
	      status, buf);
	CHECK(sscanf(buf, "pointer %p", &p) == 1, "no pointer named: %s", buf);
	snprintf(line, sizeof line, "liballoc: %s %p\n", want, p);
	CHECK(strstr(buf, line), "wanted \"%.*s\", said: %s", (int)strlen(line) - 1, line, buf);
}

static void do_double_free(void) { void *p = named(ka_malloc(40)); ka_free(p); ka_free(p); }
static void do_double_free_large(void) { void *p = named(ka_malloc(100000)); ka_free(p); ka_free(p); }
static void do_double_free_huge(void) { void *p = named(ka_malloc(5u << 20)); ka_free(p); ka_free(p); }
/* Over the huge cache's bytes: the region is gone, the pointer no longer ours. */
static void do_double_free_huge_unmapped(void)
{
	void *p = named(ka_malloc(KA_HUGE_CACHE_BYTES + 1));
	ka_free(p);
	ka_free(p);
}
/* Freed twice by another thread while its page is full (the first free
 * goes to the owner's delayed list, the second meets the key). */
static void *free_twice_arg(void *p)
{
	ka_free(p);
	ka_free(p);
	return NULL;
}
static void *free_kept_then_twice(void *arg)
{
	void **v = arg;
	ka_free(ka_malloc(16));		/* a heap: a heapless thread keeps nothing */
	for (int i = 1; i <= KA_FOREIGN_CAP0; i++)	/* kept: the cap is full */
		ka_free(v[i]);
	return free_twice_arg(v[0]);
}
static void do_double_free_full_remote(void)
{
	void *v[KA_FOREIGN_CAP0 + 1];
	v[0] = named(ka_malloc(64));
	for (int i = 1; i <= KA_FOREIGN_CAP0; i++)
		v[i] = ka_malloc(64);
	for (int i = 0; i < 5000; i++)	/* fills their page and more */
		ka_malloc(64);
	pthread_t t;
	pthread_create(&t, NULL, free_kept_then_twice, v);
	pthread_join(t, NULL);
}
/* Freed twice by a thread that keeps it the first time (foreign.c). */
static void *keep_then_free_again(void *p)
{
	ka_free(ka_malloc(16));		/* a heap: a heapless thread keeps nothing */
	ka_free(p);
	/* kept (with several nodes, only if this thread runs on p's) */
	if (ka_numa_nodes() < 2 && ka_tls_heap->foreign_count[ka_size_class(64)] != 1) {
		fprintf(stderr, "not kept\n");
		_exit(3);
	}
	ka_free(p);
	return NULL;
}
static void do_double_free_kept(void)
{
	void *p = named(ka_malloc(64));
	pthread_t t;
	pthread_create(&t, NULL, keep_then_free_again, p);
	pthread_join(t, NULL);
}
/* A block on a free list that was never handed out cannot be told from a freed one. */
static void do_free_threaded(void) { char *c = ka_malloc(64); ka_free(named(c + 64)); }

/* A block whose 4 KiB page malloc_trim(0) gave back: its key reads zero. */
static void do_double_free_released(void)
{
	char *v[128];
	for (int i = 0; i < 128; i++)
		v[i] = ka_malloc(1024);
	/* one in eight stays, none in v[100]'s 4 KiB page: its page is less
	 * than half in use (not emptied, which would retire it) */
	for (int i = 0; i < 128; i++)
		if (i % 8 || ((uintptr_t)v[i] >> 12) == ((uintptr_t)v[100] >> 12))
			ka_free(v[i]);
	ka_malloc_trim(0);
	ka_free(named(v[100]));
}

/*
 * A block of a medium page (8-64 KiB: spans of several slices) that lies
 * past its span's first slice: free() finds the page through the slice's
 * offset, on the fast path, and must check it as it checks any other.
 * The process is fresh (expect_abort forks), so the class's first page
 * holds the blocks in order.
 */
#define MEDIUM_REQUEST	10000	/* class 10240: 51 blocks in 8 slices, 2 KiB left over */

static char *medium_past_first_slice(void)
{
	char *first = ka_malloc(MEDIUM_REQUEST);
	for (int i = 1; i < 16; i++) {
		char *c = ka_malloc(MEDIUM_REQUEST);
		if ((size_t)(c - first) >= KA_SLICE_SIZE)
			return c;
	}
	fprintf(stderr, "no block past the first slice\n");
	_exit(3);
}
static void do_double_free_medium(void) { void *p = named(medium_past_first_slice()); ka_free(p); ka_free(p); }
static void do_double_free_medium_remote(void)
{
	pthread_t t;
	pthread_create(&t, NULL, free_twice_arg, named(medium_past_first_slice()));
	pthread_join(t, NULL);
}
static void do_free_medium_interior(void) { ka_free(named(medium_past_first_slice() + 16)); }
/* Past the span's last whole block: a block start by the division alone. */
static char *medium_tail(void)
{
	char *c = medium_past_first_slice();
	size_t bs = ka_malloc_usable_size(c);
	char *start = (char *)((uintptr_t)c & ~(KA_SLICE_SIZE - 1)) - KA_SLICE_SIZE;
	return named(start + (8 * KA_SLICE_SIZE / bs) * bs);
}
/* The same in a one-slice page: 48 B blocks leave 16 bytes of 64 KiB. */
static char *small_tail(void)
{
	char *c = ka_malloc(48);
	char *start = (char *)((uintptr_t)c & ~(KA_SLICE_SIZE - 1));
	return named(start + (KA_SLICE_SIZE / 48) * 48);
}
static void do_free_medium_tail(void) { ka_free(medium_tail()); }

/* Another thread's calls: its fast path has no threaded count to go by. */
static void *free_ptr_arg(void *p) { ka_free(p); return NULL; }
static void *realloc_arg(void *p) { ka_realloc(p, 10000); return NULL; }
static void *usable_size_arg(void *p) { ka_malloc_usable_size(p); return NULL; }
static void in_thread(void *(*fn)(void *), void *p)
{
	pthread_t t;
	pthread_create(&t, NULL, fn, p);
	pthread_join(t, NULL);
}
static void do_free_medium_tail_remote(void) { in_thread(free_ptr_arg, medium_tail()); }
static void do_realloc_medium_tail_remote(void) { in_thread(realloc_arg, medium_tail()); }
static void do_realloc_small_tail_remote(void) { in_thread(realloc_arg, small_tail()); }
static void do_usable_size_medium_tail_remote(void) { in_thread(usable_size_arg, medium_tail()); }

static void double_free_aborts(void)
{
	expect_abort(do_double_free, "free(): double free detected");
	/* Its span went back at the first free. */
	expect_abort(do_double_free_large, "free(): double free or invalid pointer");
	expect_abort(do_double_free_huge, "free(): double free detected");
	expect_abort(do_double_free_huge_unmapped, "free(): invalid pointer");
	expect_abort(do_double_free_full_remote, "free(): double free detected");
	expect_abort(do_double_free_kept, "free(): double free detected");
	expect_abort(do_free_threaded, "free(): double free detected");
	expect_abort(do_double_free_released, "free(): double free detected");
	expect_abort(do_double_free_medium, "free(): double free detected");
	expect_abort(do_double_free_medium_remote, "free(): double free detected");
}

static void do_free_stack(void) { int x; ka_free(named(&x)); }
static void do_free_libc(void) { ka_free(named(malloc(100))); }
static void do_free_interior(void) { char *c = ka_malloc(64); ka_free(named(c + 16)); }
static void do_free_huge_interior(void) { char *c = ka_malloc(5u << 20); ka_free(named(c + 4096)); }
static void do_free_header(void) { char *c = ka_malloc(64); ka_free(named((void *)((uintptr_t)c & ~KA_SEGMENT_MASK))); }
static void do_free_free_span(void) { char *c = ka_malloc(64); ka_free(named(c + (4u << 16))); }
static void do_usable_size_freed_huge(void) { void *p = named(ka_malloc(5u << 20)); ka_free(p); ka_malloc_usable_size(p); }

/* A block start past what the page has threaded: never handed out. */
static char *unthreaded_block(void)
{
	char *c = ka_malloc(3000);		/* 3 KiB blocks: threaded one at a time */
	return c + 5 * ka_malloc_usable_size(c);
}

static void do_free_unthreaded(void) { ka_free(named(unthreaded_block())); }
/* Another thread's realloc() kept such a start in place, into a block the
 * owner would hand out later, and nothing ever told. */
static void do_realloc_unthreaded_remote(void) { in_thread(realloc_arg, named(unthreaded_block())); }
static void do_usable_size_unthreaded_remote(void) { in_thread(usable_size_arg, named(unthreaded_block())); }

static void *free_arg(void *p)
{
	ka_free(p);
	return NULL;
}

/* Freed by another thread: the owner finds it when it collects remote frees. */
static void do_free_unthreaded_remote(void)
{
	pthread_t t;
	pthread_create(&t, NULL, free_arg, named(unthreaded_block()));
	pthread_join(t, NULL);
	for (int i = 0; i < 100; i++)
		ka_malloc(3000);
}

/* Freed by a thread that then allocates its class: a block it kept would
 * be handed out, so it is not kept, and the owner finds it (foreign.c). */
static void *free_arg_then_allocate(void *p)
{
	ka_free(ka_malloc(16));		/* a heap first: a heapless thread keeps nothing */
	ka_free(p);
	for (int i = 0; i < 100; i++)
		ka_malloc(3000);
	return NULL;
}
static void do_free_unthreaded_remote_reused(void)
{
	pthread_t t;
	pthread_create(&t, NULL, free_arg_then_allocate, named(unthreaded_block()));
	pthread_join(t, NULL);
	for (int i = 0; i < 100; i++)
		ka_malloc(3000);
}

static void invalid_free_aborts(void)
{
	expect_abort(do_free_stack, "free(): invalid pointer");
	expect_abort(do_free_libc, "free(): invalid pointer");
	expect_abort(do_free_interior, "free(): invalid pointer");
	expect_abort(do_free_medium_interior, "free(): invalid pointer");
	expect_abort(do_free_medium_tail, "free(): invalid pointer");
	expect_abort(do_free_medium_tail_remote, "free(): invalid pointer");
	expect_abort(do_realloc_medium_tail_remote, "realloc(): invalid pointer");
	expect_abort(do_realloc_small_tail_remote, "realloc(): invalid pointer");
	expect_abort(do_usable_size_medium_tail_remote, "malloc_usable_size(): invalid pointer");
	expect_abort(do_realloc_unthreaded_remote, "realloc(): invalid pointer");
	expect_abort(do_usable_size_unthreaded_remote, "malloc_usable_size(): invalid pointer");
	expect_abort(do_free_huge_interior, "free(): invalid pointer");
	expect_abort(do_free_header, "free(): double free or invalid pointer");
	expect_abort(do_free_free_span, "free(): double free or invalid pointer");
	expect_abort(do_free_unthreaded, "free(): invalid pointer");
	expect_abort(do_free_unthreaded_remote, "free(): invalid pointer");
	expect_abort(do_free_unthreaded_remote_reused, "free(): invalid pointer");
	expect_abort(do_usable_size_freed_huge, "malloc_usable_size(): double free detected");
}

/* ---- KALLOC_DEBUG=1, read once at start: its cases run in a fresh process ---- */

/*
 * Run case name of this program in a new process (exec) with env changed:
 * each "NAME=value" is set, each bare "NAME" unset.  Its stdout and
 * stderr go to out.  Returns the wait status.
 */
static int run_case_env(const char *name, char *const *env, char *out, size_t len)
{
	int fds[2];
	CHECK(pipe(fds) == 0, "pipe");
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		for (; *env; env++) {
			if (strchr(*env, '='))
				putenv(*env);
			else
				unsetenv(*env);
		}
		execl("/proc/self/exe", "test_api", name, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	read_all(fds[0], out, len);
	int status;
	waitpid(pid, &status, 0);
	return status;
}

/* The same with KALLOC_DEBUG=1 or without it, and the default purge delay. */
static int run_case(const char *name, bool debug, char *out, size_t len)
{
	char *env[] = { debug ? "KALLOC_DEBUG=1" : "KALLOC_DEBUG", "KALLOC_DECAY_MS", NULL };

	return run_case_env(name, env, out, len);
}

static void *taken[4096];
static int ntaken;

/* malloc size until p comes back; the blocks met on the way stay in taken[]. */
static bool malloc_until(void *p, size_t size)
{
	while (ntaken < 4096) {
		void *q = ka_malloc(size);
		taken[ntaken++] = q;
		if (q == p)
			return true;
	}
	return false;
}

/* Every byte of p[0, n) is zero. */
static bool all_zero(const unsigned char *p, size_t n)
{
	static const unsigned char zero[4096];

	for (size_t off = 0; off < n; off += sizeof zero) {
		size_t len = n - off < sizeof zero ? n - off : sizeof zero;
		if (memcmp(p + off, zero, len) != 0)
			return false;
	}
	return true;
}

/* The line of the mapping holding p that starts with field ("Rss:",
 * "VmFlags:") in /proc/self/smaps, into line; false if there is none. */
static bool smaps_line(const void *p, const char *field, char *line, size_t size)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	bool in = false, found = false;
	size_t n = strlen(field);

	CHECK(f, "open /proc/self/smaps");
	while (!found && fgets(line, (int)size, f)) {
		unsigned long lo, hi;
		char c;
		if (sscanf(line, "%lx-%lx %c", &lo, &hi, &c) == 3)
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else
			found = in && strncmp(line, field, n) == 0;
	}
	fclose(f);
	return found;
}

/* A field ("Rss:", "FilePmdMapped:") of the mapping holding p, in bytes. */
static size_t smaps_field(const void *p, const char *field)
{
	char line[512];
	size_t kib = 0;

	if (smaps_line(p, field, line, sizeof line))
		sscanf(line + strlen(field), "%zu kB", &kib);
	return kib << 10;
}

/* Whether the mapping holding p has the VmFlags flag (e.g. "nh"). */
static bool smaps_vmflag(const void *p, const char *flag)
{
	char line[512];

	if (!smaps_line(p, "VmFlags:", line, sizeof line - 1))
		return false;
	line[strcspn(line, "\n")] = 0;
	strcat(line, " ");
	for (char *q = strstr(line + 8, flag); q; q = strstr(q + 1, flag))
		if (q[-1] == ' ' && q[strlen(flag)] == ' ')
			return true;
	return false;
}

/*
 * Over anonymous memory, a small process's segments take 4 KiB pages even
 * where THP is "always" (Debian's default): there a segment's first touch
 * made a 2 MiB page resident, and a git command peaked at 18 MiB against
 * glibc's 3.3 (benchmarks.md).  The first segments' mapping says "nh" in
 * smaps whatever the setting; where it is "always", 2 MiB of small blocks
 * leave no huge page under them nor in the segment map (32 MiB of bss,
 * where a 2 MiB page fell by where ASLR put it: deterministic here by
 * its flag), and the purge thread's stack is under 2 MiB (it was 8 MiB,
 * and before 6.7 the kernel does not keep stacks off THP itself).
 */
static void small_process_takes_no_huge_pages(void)
{
	struct ka_stats st;
	char thp[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	ka_stats(&st);
	if (strcmp(st.backend, "anon") != 0 || !f) {
		printf("# anonymous memory and a kernel with THP only (backend %s)\n", st.backend);
		exit(77);
	}
	if (!fgets(thp, sizeof thp, f))
		thp[0] = 0;
	fclose(f);
	char *first = ka_malloc(100);
	CHECK(smaps_vmflag(first, "nh"), "the first segment's mapping is not MADV_NOHUGEPAGE");
	CHECK(smaps_vmflag((void *)ka_segmap, "nh"), "the segment map is not MADV_NOHUGEPAGE");
	for (int i = 0; i < 20000; i++)
		memset(ka_malloc(100), 1, 100);
	/* No 2 MiB page fits in the purge thread's stack (purge.c). */
	ka_purge_thread_start();
	for (int i = 0; i < 1000 && !ka_purge_thread_running(); i++)
		usleep(1000);
	size_t stack = ka_purge_thread_stack();
	CHECK(stack > 0 && stack < (2u << 20), "the purge thread's stack is %zu bytes", stack);
	if (strstr(thp, "[always]")) {
		CHECK(smaps_field(first, "AnonHugePages:") == 0,
		      "THP always: %zu bytes of huge pages under 2 MiB of small blocks",
		      smaps_field(first, "AnonHugePages:"));
		CHECK(smaps_field((void *)ka_segmap, "AnonHugePages:") == 0,
		      "THP always: %zu bytes of huge pages in the segment map",
		      smaps_field((void *)ka_segmap, "AnonHugePages:"));
	} else
		printf("# THP is not \"always\" here (%.*s): the flag alone checked\n",
		       (int)strcspn(thp, "\n"), thp);
}

/* A huge block of size: zero when fresh, writes read back, the kernel's
 * view of its region in *v (false without one). */
static unsigned char *huge_round_trip(size_t size, struct ka_os_region_view *v, bool *viewed)
{
	unsigned char *p = ka_malloc(size);

	CHECK(p, "malloc(%zu)", size);
	CHECK(all_zero(p, size), "a fresh huge block of %zu reads zero", size);
	for (size_t off = 0; off < size; off += 4096)
		p[off] = (unsigned char)(off >> 12 | 1);
	p[size - 1] = 0x5a;
	for (size_t off = 0; off < size; off += 4096)
		CHECK(p[off] == (unsigned char)(off >> 12 | 1), "byte %zu read back", off);
	CHECK(p[size - 1] == 0x5a, "last byte read back");
	*viewed = ka_block_region_view(p, v);
	return p;
}

/*
 * With the device and order 9 on offer: a huge block whose size is a
 * multiple of 2 MiB, or rounds to one wasting an eighth at most, starts an
 * order-9 device region on a 2 MiB boundary (the region offset, a multiple
 * of 2^40, agrees with the address mod 2 MiB) and makes exactly its own
 * 2 MiB blocks resident; one the bound refuses keeps the regions' order and
 * the header beside it.  Freed and trimmed, its memory goes back; a
 * realloc that shrinks it gives back whole 2 MiB blocks.
 */
static void huge_blocks_in_2mib_regions(void)
{
	const size_t mib = 1u << 20;
	struct ka_stats st0, st1, st2;
	struct ka_os_region_view v;
	bool viewed;

	ka_stats(&st0);
	if (strcmp(st0.backend, "device") != 0 || !ka_os_pmd_usable()) {
		printf("# needs the device with order %d (backend %s)\n", KA_PMD_ORDER, st0.backend);
		exit(77);
	}
	ka_malloc_trim(0);
	ka_stats(&st0);
	size_t rss0 = rss_bytes();
	unsigned char *p = huge_round_trip(8 * mib, &v, &viewed);
	CHECK(viewed, "INFO on the block's region");
	printf("# 8 MiB block %p: device part %p, %zu bytes, order %u, resident %zu, faults %llu\n",
	       (void *)p, v.device_base, v.device_size, v.order, v.resident,
	       (unsigned long long)v.faults);
	CHECK((uintptr_t)p % KA_PMD_SIZE == 0, "block %p on a 2 MiB boundary", (void *)p);
	CHECK(v.order == KA_PMD_ORDER, "region order %u", v.order);
	CHECK(v.device_base == p, "the block starts the device part %p", v.device_base);
	CHECK(v.device_size % KA_PMD_SIZE == 0, "device part %zu: whole 2 MiB blocks", v.device_size);
	CHECK(v.resident == 8 * mib, "resident %zu: the block's four 2 MiB blocks, no fifth",
	      v.resident);
	/* The module maps them with PMD entries: one fault per 2 MiB block. */
	CHECK(v.faults == 4, "%llu faults for four 2 MiB blocks", (unsigned long long)v.faults);
	CHECK(smaps_field(p, "FilePmdMapped:") == 8 * mib, "FilePmdMapped %zu",
	      smaps_field(p, "FilePmdMapped:"));
	/* The header, 2 MiB before: a few pages, not a 2 MiB THP. */
	const void *hdr = p - KA_PMD_SIZE;
	CHECK(ka_segment_lookup(p) == hdr, "header %p", (void *)ka_segment_lookup(p));
	CHECK(smaps_field(hdr, "Rss:") <= KA_SLICE_SIZE, "the header's mapping has %zu resident",
	      smaps_field(hdr, "Rss:"));
	size_t rss1 = rss_bytes();
	CHECK(rss1 >= rss0 + 8 * mib - mib, "rss %zu -> %zu counts the block", rss0, rss1);

	/* Shrunk in place to 3 MiB: the tail goes back in whole 2 MiB blocks. */
	CHECK(ka_realloc(p, 3 * mib) == p, "shrinks in place");
	CHECK(ka_block_region_view(p, &v) && v.resident == 4 * mib, "resident %zu after shrinking",
	      v.resident);
	CHECK(p[0] == 1 && p[3 * mib - 4096] == (unsigned char)((3 * mib - 4096) >> 12 | 1),
	      "the kept part keeps its contents");

	/* Freed, cached, reused by a block that fits; then given back. */
	ka_free(p);
	unsigned char *q = ka_malloc(6 * mib);
	CHECK(q == p, "the cached region serves 6 MiB: %p, was %p", (void *)q, (void *)p);
	memset(q, 3, 6 * mib);
	CHECK(ka_block_region_view(q, &v) && v.resident == 6 * mib, "resident %zu", v.resident);
	ka_free(q);
	/* Cached, still resident; RSS is read here, after the free, which may
	 * have started the purge thread (its stack takes a 2 MiB THP). */
	size_t rss_cached = rss_bytes();
	ka_malloc_trim(0);
	ka_stats(&st1);
	size_t rss2 = rss_bytes();
	printf("# rss %zu -> %zu -> cached %zu -> %zu KiB, regions %zu -> %zu\n", rss0 >> 10,
	       rss1 >> 10, rss_cached >> 10, rss2 >> 10, st0.regions, st1.regions);
	CHECK(st1.regions == st0.regions && st1.huge_cached == 0, "region destroyed: %zu -> %zu",
	      st0.regions, st1.regions);
	CHECK(rss2 + 6 * mib - mib / 2 <= rss_cached, "rss falls: %zu -> %zu", rss_cached, rss2);

	/* Aligned past 2 MiB: still a 2 MiB region, the block on its alignment. */
	p = ka_aligned_alloc(8 * mib, 16 * mib);
	CHECK(p && (uintptr_t)p % (8 * mib) == 0, "aligned %p", (void *)p);
	CHECK(ka_block_region_view(p, &v) && v.order == KA_PMD_ORDER && v.device_base <= (void *)p,
	      "order %u, device part %p", v.order, v.device_base);
	p[0] = p[16 * mib - 1] = 1;
	ka_free(p);
	ka_malloc_trim(0);	/* the next block is a fresh one */

	/* 5 MiB would waste 1 MiB of 6: the regions' order, header beside it. */
	p = huge_round_trip(5 * mib, &v, &viewed);
	CHECK(viewed && v.order != KA_PMD_ORDER, "5 MiB: order %u", v.order);
	CHECK((uintptr_t)p % KA_PMD_SIZE == KA_SLICE_SIZE, "5 MiB block %p at 64 KiB", (void *)p);
	ka_free(p);
	ka_malloc_trim(0);
	ka_stats(&st2);
	CHECK(st2.regions == st0.regions, "regions %zu -> %zu", st0.regions, st2.regions);
}

/* A "key value" total of /proc/kalloc (the module's own counts), or -1. */
static long proc_kalloc_total(const char *key)
{
	char line[256], name[64];
	long value, found = -1;
	FILE *f = fopen("/proc/kalloc", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f) && line[0] != '\n')
		if (sscanf(line, "%63s %ld", name, &value) == 2 && strcmp(name, key) == 0)
			found = value;
	fclose(f);
	return found;
}

/*
 * The layout without 2 MiB regions (run in a child by huge_blocks_fall_back,
 * under each way of falling back): the block 64 KiB into a region of
 * order 0, zero, its writes read back, its memory back after free and
 * malloc_trim(0).
 */
static void child_huge_old_layout(void)
{
	const size_t mib = 1u << 20;
	struct ka_stats st0, st1;
	struct ka_os_region_view v;
	bool viewed;

	ka_malloc_trim(0);
	ka_stats(&st0);
	unsigned char *p = huge_round_trip(8 * mib, &v, &viewed);
	CHECK((uintptr_t)p % KA_PMD_SIZE == KA_SLICE_SIZE, "block %p at 64 KiB", (void *)p);
	CHECK(viewed, "INFO on the block's region");
	printf("# order %u, resident %zu\n", v.order, v.resident);
	CHECK(v.order == 0, "order %u", v.order);
	CHECK(v.resident >= 8 * mib && v.resident <= 8 * mib + 2 * KA_SLICE_SIZE,
	      "resident %zu", v.resident);
	/*
	 * The memory as the module counts it (/proc/kalloc's resident pages;
	 * the parent only waits meanwhile), from while the block is live:
	 * once freed it may go back at any moment (the purge thread's decay
	 * can pass on a slow guest).  Not VmRSS: 6.1 keeps a task's fault
	 * counts in per-thread caches synced every 64 events, and this forked
	 * child also holds fork copies of its parent's regions, so VmRSS
	 * moves by more than this one block.
	 */
	long live = proc_kalloc_total("resident_pages");
	ka_free(p);
	ka_malloc_trim(0);
	ka_stats(&st1);
	long after = proc_kalloc_total("resident_pages");
	CHECK(st1.regions == st0.regions, "regions %zu -> %zu", st0.regions, st1.regions);
	CHECK(live >= 0 && after >= 0 && after + (long)(8 * mib / 4096) <= live,
	      "the module's resident pages fall: %ld -> %ld", live, after);
	printf("ok\n");
}

/*
 * Where 2 MiB regions are not to be had, huge blocks take the old layout:
 * KALLOC_ORDER=0 pins every region to order 0; a device whose
 * KALLOC_IOC_VERSION offers no order 9; a device that refuses an order-9
 * CREATE (the last two through refuse_pmd.so, test/refuse_pmd.c).
 */
static void huge_blocks_fall_back(void)
{
	const char *shim = getenv("REFUSE_PMD_LIB");
	static char preload[4096], order0[] = "KALLOC_ORDER=0", version[] = "KALLOC_TEST_REFUSE=version",
		    create[] = "KALLOC_TEST_REFUSE=create";
	char *const pinned[] = { order0, NULL };
	char *const no_order9[] = { preload, version, NULL };
	char *const refused[] = { preload, create, NULL };
	const struct { const char *what; char *const *env; } ways[] = {
		{ "KALLOC_ORDER=0", pinned },
		{ "max_order 8", no_order9 },
		{ "order-9 CREATE refused", refused },
	};
	struct ka_stats st;
	char out[4096];

	ka_stats(&st);
	if (strcmp(st.backend, "device") != 0 || !ka_os_pmd_usable() || !shim) {
		printf("# needs the device with order %d and REFUSE_PMD_LIB (backend %s)\n",
		       KA_PMD_ORDER, st.backend);
		exit(77);
	}
	snprintf(preload, sizeof preload, "LD_PRELOAD=%s", shim);
	for (size_t i = 0; i < sizeof ways / sizeof ways[0]; i++) {
		int status = run_case_env("child_huge_old_layout", ways[i].env, out, sizeof out);
		printf("# %s: %s", ways[i].what, out);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %d: %s",
		      ways[i].what, status, out);
	}
}

/* The use-after-free write of these cases: 0x42 at off, then reuse. */
static void write_after_free(unsigned char *p, size_t size, size_t off)
{
	printf("block %p offset %zu\n", (void *)p, off);
	fflush(stdout);
	p[off] = 0x42;
	CHECK(malloc_until(p, size), "block %p did not come back", (void *)p);
	printf("reused\n");
}

static void child_uaf_small(void)
{
	unsigned char *p = ka_malloc(200);
	ka_free(p);
	write_after_free(p, 200, 50);
}

/* One block per span: the span goes back to its segment at free. */
static void child_uaf_large(void)
{
	unsigned char *p = ka_malloc(100000);
	ka_free(p);
	write_after_free(p, 100000, 50);
}

/* Into the huge cache. */
static void child_uaf_huge(void)
{
	unsigned char *p = ka_malloc(5u << 20);
	ka_free(p);
	write_after_free(p, 5u << 20, 12345);
}

/* Freed by a thread that is not the owner. */
static void child_uaf_remote(void)
{
	unsigned char *p = ka_malloc(200);
	pthread_t t;
	pthread_create(&t, NULL, free_arg, p);
	pthread_join(t, NULL);
	write_after_free(p, 200, 60);
}

/* Two freed blocks, p's link to a overwritten with garbage. */
static void child_link_garbage(void)
{
	unsigned char *a = ka_malloc(200), *p = ka_malloc(200);
	ka_free(a);
	ka_free(p);
	printf("block %p\n", (void *)p);
	fflush(stdout);
	memset(p, 0x41, sizeof(void *));
	malloc_until(p, 200);
	printf("reused\n");
}

/*
 * p's link set to NULL: a and the 17 other blocks the page threaded behind
 * it fall off the list (p is its head), seen when the page empties.
 */
static void child_link_null(void)
{
	unsigned char *a = ka_malloc(200), *p = ka_malloc(200);
	ka_free(a);
	ka_free(p);
	memset(p, 0, sizeof(void *));
	CHECK(malloc_until(p, 200), "block %p did not come back", (void *)p);
	for (int i = 0; i < ntaken; i++)
		ka_free(taken[i]);
	ka_malloc_trim(0);	/* the empty page's span goes back */
	printf("reused\n");
}

static const size_t debug_sizes[] = { 24, 200, 5000, 100000, 5u << 20 };

/*
 * realloc() and malloc_usable_size() check a pointer as free() does: a
 * freed block, of every tier, is reported in the same words, naming the
 * function called.  (realloc of a freed small block used to return it in
 * place, and the next malloc handed it out again.)
 */
static void do_realloc_freed(void) { void *p = named(ka_malloc(40)); ka_free(p); ka_realloc(p, 30); }
static void do_realloc_freed_grow(void) { void *p = named(ka_malloc(40)); ka_free(p); ka_realloc(p, 400); }
static void do_realloc_freed_large(void) { void *p = named(ka_malloc(100000)); ka_free(p); ka_realloc(p, 90000); }
static void do_realloc_freed_huge(void) { void *p = named(ka_malloc(5u << 20)); ka_free(p); ka_realloc(p, 6u << 20); }
static void do_realloc_freed_remote(void)
{
	void *p = named(ka_malloc(200));
	pthread_t t;
	pthread_create(&t, NULL, free_arg, p);
	pthread_join(t, NULL);
	ka_realloc(p, 100);
}
static void do_realloc_interior(void) { char *c = ka_malloc(64); ka_realloc(named(c + 16), 10); }
static void do_realloc_stack(void) { int x; ka_realloc(named(&x), 10); }
static void do_usable_size_freed(void) { void *p = named(ka_malloc(40)); ka_free(p); ka_malloc_usable_size(p); }
static void do_usable_size_freed_remote(void)
{
	void *p = named(ka_malloc(3000));
	pthread_t t;
	pthread_create(&t, NULL, free_arg, p);
	pthread_join(t, NULL);
	ka_malloc_usable_size(p);
}
static void do_usable_size_interior(void) { char *c = ka_malloc(64); ka_malloc_usable_size(named(c + 8)); }

static void realloc_and_usable_size_check_like_free(void)
{
	expect_abort(do_realloc_freed, "realloc(): double free detected");
	expect_abort(do_realloc_freed_grow, "realloc(): double free detected");
	expect_abort(do_realloc_freed_large, "realloc(): double free or invalid pointer");
	expect_abort(do_realloc_freed_huge, "realloc(): double free detected");
	expect_abort(do_realloc_freed_remote, "realloc(): double free detected");
	expect_abort(do_realloc_interior, "realloc(): invalid pointer");
	expect_abort(do_realloc_stack, "realloc(): invalid pointer");
	expect_abort(do_usable_size_freed, "malloc_usable_size(): double free detected");
	expect_abort(do_usable_size_freed_remote, "malloc_usable_size(): double free detected");
	expect_abort(do_usable_size_interior, "malloc_usable_size(): invalid pointer");
	/* And the same freed block passed to free() says the same. */
	expect_abort(do_double_free, "free(): double free detected");
}

/*
 * C23's sized frees.  Run with KALLOC_DEBUG=1: every size a block could
 * have been asked with is accepted -- malloc, calloc, a realloc that kept
 * the block, aligned_alloc, every tier -- and the blocks are freed.
 */
static void child_sized_right(void)
{
	static const size_t sizes[] = { 0, 1, 8, 16, 17, 100, 1000, 5000, 70000, 1u << 20,
					(2u << 20) + 1, 5u << 20 };
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		size_t n = sizes[i];
		ka_free_sized(ka_malloc(n), n);
		ka_free_sized(ka_calloc(1, n), n);
		void *p = ka_malloc(n + n / 3);
		void *q = ka_realloc(p, n ? n : 1);
		ka_free_sized(q, n ? n : 1);
		for (size_t a = 8; a <= (1u << 22); a <<= 3) {
			p = ka_aligned_alloc(a, n);
			ka_free_aligned_sized(p, a, n);
		}
	}
	ka_free_sized(NULL, 10);
	ka_free_aligned_sized(NULL, 64, 10);
	/* The blocks went back: their frees found no block freed twice. */
	void *p = ka_malloc(100);
	ka_free_sized(p, 100);
	printf("all freed\n");
}

/* The pointer the coming report names, on stdout before the abort. */
static void say_pointer(void *p)
{
	printf("pointer %p\n", p);
	fflush(stdout);
}

static void child_sized_too_big(void) { void *p = ka_malloc(100); say_pointer(p); ka_free_sized(p, 200); }
static void child_sized_too_small(void) { void *p = ka_malloc(4000); say_pointer(p); ka_free_sized(p, 100); }
static void child_sized_huge(void) { void *p = ka_malloc(5u << 20); say_pointer(p); ka_free_sized(p, 1u << 20); }
/* A block of malloc(100) that is not 64-aligned, freed as if aligned_alloc(64, 100) gave it. */
static void child_aligned_sized_wrong_align(void)
{
	void *p;
	do
		p = ka_malloc(100);
	while ((uintptr_t)p % 64 == 0);
	say_pointer(p);
	ka_free_aligned_sized(p, 64, 100);
}
static void child_aligned_sized_wrong_size(void)
{
	void *p = ka_aligned_alloc(4096, 100);
	say_pointer(p);
	ka_free_aligned_sized(p, 4096, 10000);
}
static void child_sized_freed(void) { void *p = ka_malloc(100); say_pointer(p); ka_free(p); ka_free_sized(p, 100); }

static void expect_sized_report(const char *child, bool debug, const char *want)
{
	char out[2048], line[200];
	void *p = NULL;
	int status = run_case(child, debug, out, sizeof out);
	if (!want) {
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %x, said: %s",
		      child, status, out);
		return;
	}
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "%s: status %x, said: %s", child,
	      status, out);
	CHECK(sscanf(out, "pointer %p", &p) == 1, "%s said: %s", child, out);
	snprintf(line, sizeof line, "liballoc: %s %p\n", want, p);
	CHECK(strstr(out, line), "%s: wanted \"%s\", said: %s", child, line, out);
}

static void sized_free_checks_in_debug(void)
{
	char out[2048];
	int status = run_case("child_sized_right", true, out, sizeof out);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(out, "all freed"),
	      "right sizes: status %x, said: %s", status, out);
	expect_sized_report("child_sized_too_big", true,
			    "free_sized(): size 200 does not match the block (112 bytes)");
	expect_sized_report("child_sized_too_small", true,
			    "free_sized(): size 100 does not match the block (4096 bytes)");
	expect_sized_report("child_sized_huge", true,
			    "free_sized(): size 1048576 does not match the block (5242880 bytes)");
	expect_sized_report("child_aligned_sized_wrong_align", true,
			    "free_aligned_sized(): alignment 64 does not match the block");
	expect_sized_report("child_aligned_sized_wrong_size", true,
			    "free_aligned_sized(): size 10000 does not match the block (4096 bytes)");
	expect_sized_report("child_sized_freed", true, "free_sized(): double free detected");
	/* Without KALLOC_DEBUG the size is not looked at: the block is freed. */
	expect_sized_report("child_sized_too_big", false, NULL);
	expect_sized_report("child_sized_freed", false, "free(): double free detected");
}

/*
 * The thread-exit key liballoc registers with its first heap: when the
 * process has no key left, the first malloc stops with a message rather
 * than run without giving heaps back at thread exit.
 */
static void child_keys_exhausted(void)
{
	pthread_key_t k;
	int n = 0;
	while (pthread_key_create(&k, NULL) == 0)
		n++;
	printf("%d keys taken\n", n);
	fflush(stdout);
	void *p = ka_malloc(10);
	printf("malloc returned %p\n", p);
}

static void key_failure_stops(void)
{
	char out[2048];
	int status = run_case("child_keys_exhausted", false, out, sizeof out);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %x, said: %s", status, out);
	CHECK(strstr(out, "keys taken\nliballoc: pthread_key_create failed (EAGAIN); "
		      "cannot go on safely\n"), "said: %s", out);
}

/* Run with KALLOC_DEBUG=1: the patterns are there (this reads freed memory). */
static void child_debug_patterns(void)
{
	for (size_t k = 0; k < sizeof debug_sizes / sizeof *debug_sizes; k++) {
		size_t n = debug_sizes[k];
		unsigned char *p = ka_malloc(n);
		size_t u = ka_malloc_usable_size(p);
		for (size_t i = 0; i < u; i++)
			CHECK(p[i] == KA_DEBUG_FRESH, "malloc(%zu): byte %zu is 0x%02x", n, i, p[i]);
		memset(p, 1, u);
		ka_free(p);
		for (size_t i = sizeof(ka_block_t); i < u; i++)
			CHECK(p[i] == KA_DEBUG_JUNK, "freed %zu: byte %zu is 0x%02x", n, i, p[i]);
	}
}

/* Run with KALLOC_DEBUG=1: calloc zeroes reused and fresh blocks of every tier. */
static void child_debug_calloc(void)
{
	for (size_t k = 0; k < sizeof debug_sizes / sizeof *debug_sizes; k++) {
		size_t n = debug_sizes[k];
		unsigned char *p = ka_malloc(n);
		memset(p, 0x5a, n);
		ka_free(p);
		for (int round = 0; round < 2; round++) {
			unsigned char *q = ka_calloc(1, n);
			for (size_t i = 0; i < n; i++)
				CHECK(q[i] == 0, "calloc(%zu), %s: byte %zu is 0x%02x", n,
				      q == p ? "reused" : "fresh", i, q[i]);
			ka_free(q);
			ka_malloc_trim(0);	/* the next one fresh */
		}
	}
}

static void expect_uaf_report(const char *child)
{
	char out[2048], want[160];
	void *p = NULL;
	size_t off = 0;
	int status = run_case(child, true, out, sizeof out);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "%s: status %x, said: %s", child,
	      status, out);
	CHECK(sscanf(out, "block %p offset %zu", &p, &off) == 2, "%s said: %s", child, out);
	CHECK(!strstr(out, "reused"), "%s: the block was handed out: %s", child, out);
	snprintf(want, sizeof want, "%p (size ", p);
	CHECK(strstr(out, "liballoc: use-after-free write detected: ") && strstr(out, want),
	      "%s: the report names %p: %s", child, p, out);
	snprintf(want, sizeof want, "byte at offset %zu was 0x42 expected 0xdf\n", off);
	CHECK(strstr(out, want), "%s: wanted \"%s\": %s", child, want, out);
}

static void debug_write_after_free_aborts(void)
{
	expect_uaf_report("child_uaf_small");
	expect_uaf_report("child_uaf_large");
	expect_uaf_report("child_uaf_huge");
	expect_uaf_report("child_uaf_remote");
}

static void debug_link_overwrite_aborts(void)
{
	char out[2048], want[160];
	void *p = NULL;
	int status = run_case("child_link_garbage", true, out, sizeof out);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "garbage: status %x, said: %s",
	      status, out);
	CHECK(sscanf(out, "block %p", &p) == 1, "said: %s", out);
	snprintf(want, sizeof want, "block %p (size 208): its free-list link at offset 0 was "
		 "overwritten (0x4141414141414141)", p);
	CHECK(strstr(out, want), "wanted \"%s\": %s", want, out);
	status = run_case("child_link_null", true, out, sizeof out);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "NULL: status %x, said: %s",
	      status, out);
	CHECK(strstr(out, "liballoc: use-after-free write detected: page ") &&
	      strstr(out, "(block size 208): its free lists hold 1 of its 19 blocks"),
	      "NULL: %s", out);
}

/* The same programs without KALLOC_DEBUG: the block comes back, no abort. */
static void debug_off_programs_run(void)
{
	static const char *const children[] = { "child_uaf_small", "child_uaf_large",
		"child_uaf_huge", "child_uaf_remote", "child_link_null" };
	char out[2048];
	for (size_t i = 0; i < sizeof children / sizeof *children; i++) {
		int status = run_case(children[i], false, out, sizeof out);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(out, "reused\n"),
		      "%s: status %x, said: %s", children[i], status, out);
	}
}

static void debug_expect_clean(const char *child)
{
	char out[4096];
	int status = run_case(child, true, out, sizeof out);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %x, said: %s", child,
	      status, out);
}

static void debug_fills_freed_and_fresh(void) { debug_expect_clean("child_debug_patterns"); }
static void debug_calloc_still_zero(void) { debug_expect_clean("child_debug_calloc"); }

static void stats_text_and_json(void)
{
	char buf[4096];
	FILE *f = tmpfile();
	CHECK(f, "tmpfile");
	ka_stats_print(f, KA_STATS_JSON);
	rewind(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	CHECK(buf[0] == '{' && strstr(buf, "\"allocated\": ") && strstr(buf, "\"backend\": \""),
	      "json: %s", buf);
	CHECK(strchr(buf, '}'), "closed");
	rewind(f);
	CHECK(ftruncate(fileno(f), 0) == 0, "truncate");
	ka_stats_print(f, KA_STATS_TEXT);
	rewind(f);
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	CHECK(strstr(buf, "allocated") && strstr(buf, "backend"), "text: %s", buf);
	fclose(f);
}

static void backend_is_the_one_asked(void)
{
	struct ka_stats st;
	const char *want = getenv("KALLOC_BACKEND");
	ka_stats(&st);
	if (want && (strcmp(want, "anon") == 0 || strcmp(want, "device") == 0))
		CHECK(strcmp(st.backend, want) == 0, "backend %s, asked %s", st.backend, want);
}

/* A thread pinned to node arg: its blocks come from regions made for that node. */
static void *numa_worker(void *arg)
{
	int node = (int)(intptr_t)arg;
	CHECK(numa_run_on_node(node) == 0, "run on node %d", node);
	sched_yield();
	int cur = numa_node_of_cpu(sched_getcpu());
	CHECK(cur == node, "running on node %d, wanted %d", cur, node);
	static const size_t sizes[] = { 100, 20000, 500000, 8u << 20 };
	for (size_t i = 0; i < 4; i++) {
		char *p = ka_malloc(sizes[i]);
		memset(p, 1, sizes[i]);
		CHECK(ka_block_region_node(p) == node, "size %zu: region node %d, thread on %d",
		      sizes[i], ka_block_region_node(p), node);
		void *page = (void *)((uintptr_t)p & ~4095UL);
		int status = -1;
		CHECK(numa_move_pages(0, 1, &page, NULL, &status, 0) == 0, "move_pages");
		CHECK(status == node, "size %zu: page on node %d, thread on %d", sizes[i], status, node);
		ka_free(p);
	}
	return NULL;
}

static void numa_memory_follows_the_thread(void)
{
	struct ka_stats st;
	ka_stats(&st);
	if (st.numa_nodes < 2) {
		printf("# one node (or KALLOC_NUMA=0): nothing to prove here\n");
		exit(77);
	}
	for (int node = 0; node <= numa_max_node(); node++) {
		if (!numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)node))
			continue;
		pthread_t t;
		pthread_create(&t, NULL, numa_worker, (void *)(intptr_t)node);
		pthread_join(t, NULL);
	}
}

static const struct check_case cases[] = {
	{ "size_class_waste", "every size up to 2 MiB: tightest class, a multiple of 16, waste < 12.5% above 128 B, < 16 B below", size_class_waste },
	{ "every_size_16_aligned", "64 blocks of every size to 70000 B, then to 3 MiB, calloc, aligned_alloc, realloc: 16-aligned from 16 B, 8 below", every_size_16_aligned },
	{ "block_start_is_exact", "free's multiply tells block starts, every class over its span", block_start_is_exact },
	{ "usable_size_is_class", "malloc_usable_size reports the class size", usable_size_is_class },
	{ "malloc_alignment_and_content", "sizes 0..3 MiB: aligned, usable, content kept", malloc_alignment_and_content },
	{ "calloc_zeroes_and_overflows", "calloc zeroes reused memory, ENOMEM on overflow", calloc_zeroes_and_overflows },
	{ "realloc_keeps_content", "realloc grows/shrinks keeping content; realloc(p,0) frees", realloc_keeps_content },
	{ "aligned_family", "aligned_alloc/posix_memalign/memalign/valloc/pvalloc to 16 MiB", aligned_family },
	{ "memalign_edges_as_glibc", "memalign past 2^40 fails as glibc's does, errno and all", memalign_edges_as_glibc },
	{ "spans_reuse_resident_slices_first", "large blocks go where freed ones were, not on a newer segment's fresh slices; RSS stays", spans_reuse_resident_slices_first },
	{ "freed_memory_is_reused", "two blocks live at a time (to 3 MiB, aligned to 16 MiB): RSS stays bounded", freed_memory_is_reused },
	{ "stats_fill_only_the_callers_size", "ka_stats fills the caller's struct size, not a byte more (older headers)", stats_fill_only_the_callers_size },
	{ "trim_releases_free_pages_in_use", "malloc_trim(0) gives back free 4 KiB pages inside pages in use; their blocks come back", trim_releases_free_pages_in_use },
	{ "huge_blocks_own_regions", "huge blocks get a region each; freed, kept in the huge cache or destroyed; trim destroys", huge_blocks_own_regions },
	{ "huge_cache_reuses_region", "a freed huge region serves a malloc that fits in its room: same address, no new region", huge_cache_reuses_region },
	{ "huge_cache_within_peak", "cached and live huge regions stay within a quarter over the most ever live at once", huge_cache_within_peak },
	{ "huge_cache_bounded", "the huge cache keeps 16 regions and 256 MiB at most, evicting the oldest", huge_cache_bounded },
	{ "huge_realloc_in_place", "realloc grows and shrinks a huge block in place within its region's room", huge_realloc_in_place },
	{ "huge_realloc_moves_its_pages", "past its room a huge block's region moves whole with its pages: a block grown to 1 GiB but written once a MiB stays sparse", huge_realloc_moves_its_pages },
	{ "huge_cache_given_back_after_decay", "cached huge regions go back after the purge delay and at thread exit; delay 0 caches nothing", huge_cache_given_back_after_decay },
	{ "huge_blocks_in_2mib_regions", "device with order 9: an 8 MiB block starts an order-9 region on a 2 MiB boundary, PMD-mapped (4 faults), zero, round-trips, exactly 8 MiB resident; shrinking and free give whole blocks back; 5 MiB keeps the old layout", huge_blocks_in_2mib_regions },
	{ "huge_blocks_fall_back", "KALLOC_ORDER=0, a device without order 9, an order-9 CREATE refused: the old layout (order 0, block at 64 KiB), zero, round-trips, memory goes back", huge_blocks_fall_back },
	{ "child_huge_old_layout", NULL, child_huge_old_layout },
	{ "calloc_large_fresh_is_not_written", "calloc of fresh 256 KiB blocks leaves them unwritten (RSS), reused ones read zero", calloc_large_fresh_is_not_written },
	{ "huge_calloc_reused_is_zero", "calloc of a huge block reused from the cache is zero", huge_calloc_reused_is_zero },
	{ "failure_is_enomem", "impossible sizes give NULL and ENOMEM", failure_is_enomem },
	{ "many_small_random_order", "400k small blocks freed in random order", many_small_random_order },
	{ "trim_gives_memory_back", "malloc_trim(0) releases freed pages at once (RSS falls)", trim_gives_memory_back },
	{ "resident_falls_after_free_and_trim", "resident memory stays after free, falls on malloc_trim(0)", resident_falls_after_free_and_trim },
	{ "proc_kalloc_shows_regions", "/proc/kalloc lists our regions; a freed huge one stays cached until malloc_trim(0); resident falls", proc_kalloc_shows_regions },
	{ "decay_purges_later", "freed spans are released after the decay", decay_purges_later },
	{ "empty_pages_go_back_after_the_decay", "free() gives emptied pages back to their segments; the purge thread gives them to the kernel a decay later, with no call", empty_pages_go_back_after_the_decay },
	{ "empty_pages_make_room_for_other_sizes", "another size takes the spans of freed pages, not new segments", empty_pages_make_room_for_other_sizes },
	{ "thread_exit_returns_heap", "exiting threads return their heap; segments reclaimed", thread_exit_returns_heap },
	{ "late_first_malloc_heap_goes_back", "a thread whose first malloc is in the last destructor round: its heap goes back when the next thread takes its place", late_first_malloc_heap_goes_back },
	{ "late_first_malloc_heap_goes_back_alone", "a heap taken in the last destructor round goes back a second after its thread, with no thread in its place", late_first_malloc_heap_goes_back_alone },
	{ "late_first_malloc_heap_goes_back_while_threads_start", "the same while a thread starts every 200 ms: back within 3 s", late_first_malloc_heap_goes_back_while_threads_start },
	{ "raw_fork_child_keeps_its_heap", "after _Fork() (no atfork handlers) the child's heap is not taken for a gone thread's", raw_fork_child_keeps_its_heap },
	{ "unshare_gives_back_parked_heaps", "unshare() that stops the purge thread gives the parked heaps back", unshare_gives_back_parked_heaps },
	{ "parked_heap_given_back_keeps_the_huge_cache", "a parked heap the purge thread gives back leaves the huge cache to its own decay", parked_heap_given_back_keeps_the_huge_cache },
	{ "parked_heap_makes_room_for_others", "a thread that needs room takes a parked heap's memory before a new segment", parked_heap_makes_room_for_others },
	{ "small_process_takes_no_huge_pages", "over anonymous memory the first segments are MADV_NOHUGEPAGE and the purge thread's stack is under 2 MiB: no 2 MiB page in a small process where THP is always", small_process_takes_no_huge_pages },
	{ "first_free_takes_the_heap_of_its_block", "a thread that frees before it allocates takes the parked heap of the block it frees", first_free_takes_the_heap_of_its_block },
	{ "parked_heap_goes_to_the_next_thread", "an exited thread's heap goes whole to the next thread; left alone, its memory goes back a decay later with no call", parked_heap_goes_to_the_next_thread },
	{ "cross_thread_frees", "blocks freed by another thread come back", cross_thread_frees },
	{ "full_pages_freed_remotely_come_back", "a live thread's full pages, freed by another thread, are reused: spans in use do not grow round after round", full_pages_freed_remotely_come_back },
	{ "foreign_blocks_serve_the_freer", "a thread that frees another live thread's blocks keeps KA_FOREIGN_CAP0 per class and its next malloc of the class takes one; they go back at its exit", foreign_blocks_serve_the_freer },
	{ "foreign_blocks_not_reused_go_back", "a thread keeps others' blocks up to its room, and gives back half of a class it stopped reusing every KA_FOREIGN_GC_FREES frees", foreign_blocks_not_reused_go_back },
	{ "foreign_flush_nested_in_purge", "a thread's exit flush that a malloc_trim makes purge inside it keeps nothing again and frees nothing twice", foreign_flush_nested_in_purge },
	{ "fork_child_frees_gone_threads_kept_blocks", "fork while a thread keeps another's blocks: in the child they go back to their pages, and trim finds the parent's figure from before", fork_child_frees_gone_threads_kept_blocks },
	{ "fork_frees_a_half_made_segment_slot", "a region slot a gone thread took but never made live is free again in a fork child", fork_frees_a_half_made_segment_slot },
	{ "fork_child_uses_parent_memory", "after fork the child reads and frees the parent's blocks", fork_child_uses_parent_memory },
	{ "double_free_aborts", "double free (small, large, huge cached or not, in a page trim gave back, twice remotely into a full page, kept by the freeing thread, a medium block past its page's first slice) stops naming the pointer", double_free_aborts },
	{ "invalid_free_aborts", "foreign, interior (also of a medium block past its first slice), header, free-span, past a medium span's last block, never handed out (also freed remotely, by a thread that then allocates) pointers stop naming it", invalid_free_aborts },
	{ "debug_write_after_free_aborts", "KALLOC_DEBUG=1: a write after free (small, large, huge, freed remotely) aborts at reuse, naming block, offset, bytes", debug_write_after_free_aborts },
	{ "debug_link_overwrite_aborts", "KALLOC_DEBUG=1: a freed block's overwritten link aborts at reuse (garbage) or when its page empties (NULL)", debug_link_overwrite_aborts },
	{ "debug_off_programs_run", "without KALLOC_DEBUG the same programs get the block back and exit 0", debug_off_programs_run },
	{ "debug_fills_freed_and_fresh", "KALLOC_DEBUG=1: new blocks read 0xaa, freed ones 0xdf, every tier", debug_fills_freed_and_fresh },
	{ "debug_calloc_still_zero", "KALLOC_DEBUG=1: calloc returns zeros, reused and fresh, every tier", debug_calloc_still_zero },
	{ "realloc_and_usable_size_check_like_free", "realloc and malloc_usable_size of a freed (small, large, huge, remotely freed), interior or foreign block stop as free does", realloc_and_usable_size_check_like_free },
	{ "sized_free_checks_in_debug", "free_sized/free_aligned_sized: KALLOC_DEBUG=1 accepts every size a block could have, stops on a wrong size, alignment or a freed block", sized_free_checks_in_debug },
	{ "key_failure_stops", "with no pthread key left, the first malloc stops naming pthread_key_create", key_failure_stops },
	{ "child_keys_exhausted", NULL, child_keys_exhausted },
	{ "child_sized_right", NULL, child_sized_right },
	{ "child_sized_too_big", NULL, child_sized_too_big },
	{ "child_sized_too_small", NULL, child_sized_too_small },
	{ "child_sized_huge", NULL, child_sized_huge },
	{ "child_aligned_sized_wrong_align", NULL, child_aligned_sized_wrong_align },
	{ "child_aligned_sized_wrong_size", NULL, child_aligned_sized_wrong_size },
	{ "child_sized_freed", NULL, child_sized_freed },
	{ "child_uaf_small", NULL, child_uaf_small },
	{ "child_uaf_large", NULL, child_uaf_large },
	{ "child_uaf_huge", NULL, child_uaf_huge },
	{ "child_uaf_remote", NULL, child_uaf_remote },
	{ "child_link_garbage", NULL, child_link_garbage },
	{ "child_link_null", NULL, child_link_null },
	{ "child_debug_patterns", NULL, child_debug_patterns },
	{ "child_debug_calloc", NULL, child_debug_calloc },
	{ "stats_text_and_json", "ka_stats_print writes text and JSON", stats_text_and_json },
	{ "numa_memory_follows_the_thread", "with 2+ nodes, a thread's blocks live on its node", numa_memory_follows_the_thread },
	{ "backend_is_the_one_asked", "KALLOC_BACKEND picks the backend", backend_is_the_one_asked },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	return check_main(cases, argc, argv);
}
