/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the ka_ API, linked with the allocator's objects (no
 * malloc replacement), so the same file runs plain, under ASan and UBSan.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
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
		if (n > 64)
			CHECK((cs - n) * 8 < n, "size %zu gets %zu: waste over 12.5%%", n, cs);
		else
			CHECK(cs - n < 16, "size %zu gets %zu", n, cs);
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
		CHECK((uintptr_t)ptr[i] % 8 == 0, "8-aligned");
		if (n % 16 == 0)
			CHECK((uintptr_t)ptr[i] % 16 == 0, "16-aligned for size %zu", n);
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
 * pages count in RSS: vm_insert_pages maps them as file pages).
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
		size_t now = rss_bytes();
		if (now > peak)
			peak = now;
	}
	ka_free(held[0]);
	ka_free(held[1]);
	size_t maxrss = peak_rss_bytes();
	printf("# rss at start %zu KiB, peak sampled %zu KiB, ru_maxrss %zu KiB\n",
	       base >> 10, peak >> 10, maxrss >> 10);
	CHECK(peak - base < LIMIT, "resident grew by %zu KiB holding two blocks", (peak - base) >> 10);
	CHECK(maxrss < base + LIMIT, "peak RSS %zu KiB, started at %zu KiB", maxrss >> 10, base >> 10);
}

static void huge_blocks_own_regions(void)
{
	struct ka_stats before, mid, after;
	ka_stats(&before);
	unsigned char *a = ka_malloc(10u << 20), *b = ka_malloc(100u << 20);
	CHECK(a && b, "huge malloc");
	a[0] = a[(10u << 20) - 1] = 1;
	b[0] = b[(100u << 20) - 1] = 2;
	CHECK(ka_malloc_usable_size(b) >= (100u << 20), "usable");
	ka_stats(&mid);
	CHECK(mid.huge_count == before.huge_count + 2, "two huge blocks");
	CHECK(mid.regions == before.regions + 2, "in two regions of their own");
	ka_free(a);
	ka_free(b);
	ka_stats(&after);
	CHECK(after.huge_count == before.huge_count && after.regions == before.regions,
	      "regions destroyed on free");
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
				if (fgets(line, sizeof line, f))
					k->header_ok = strcmp(line, "id pid comm backing order node "
							      "size_pages resident_pages faults mappings\n") == 0;
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
 * pid), their resident pages grow with use, fall when a huge block is
 * freed (its region is destroyed) and when malloc_trim(0) releases the
 * freed spans.
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
	printf("# huge freed: rows %d, resident %lu\n", k2.rows, k2.resident);
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
	}
	ka_stats(&st);
	CHECK(st.heaps_in_use == 1, "heaps in use %zu", st.heaps_in_use);
	CHECK(st.heaps <= 3, "exited threads' heaps reused (%zu made)", st.heaps);
	CHECK(st.abandoned > 0, "live blocks keep segments abandoned");
	for (int i = 0; i < HANDOFF; i++) {
		CHECK(((unsigned char *)handoff[i])[0] == i / (HANDOFF / 10), "content");
		ka_free(handoff[i]);
	}
	ka_malloc_trim(0);
	ka_stats(&st);
	CHECK(st.abandoned == 0, "abandoned segments emptied by trim (%zu)", st.abandoned);
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

/* Run fn in a child; it must abort with a message containing want and the pointer. */
static void expect_abort(void (*fn)(void **), const char *want)
{
	int fds[2];
	CHECK(pipe(fds) == 0, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		void *p = NULL;
		dup2(fds[1], 2);
		fn(&p);
		_exit(0);
	}
	close(fds[1]);
	char buf[512] = "";
	ssize_t n, got = 0;
	while ((n = read(fds[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0)
		got += n;
	buf[got] = 0;
	close(fds[0]);
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %x, said: %s", status, buf);
	CHECK(strstr(buf, want) && strstr(buf, "0x"), "message: %s", buf);
}

static void do_double_free(void **p) { *p = ka_malloc(40); ka_free(*p); ka_free(*p); }
static void do_double_free_big(void **p) { *p = ka_malloc(100000); ka_free(*p); ka_free(*p); }
static void do_free_stack(void **p) { int x; *p = &x; ka_free(&x); }
static void do_free_interior(void **p) { char *c = ka_malloc(64); *p = c; ka_free(c + 16); }
static void do_free_header(void **p) { char *c = ka_malloc(64); *p = c; ka_free((void *)((uintptr_t)c & ~KA_SEGMENT_MASK)); }

static void double_free_aborts(void)
{
	expect_abort(do_double_free, "double free");
	expect_abort(do_double_free_big, "double free");
}

static void invalid_free_aborts(void)
{
	expect_abort(do_free_stack, "invalid pointer");
	expect_abort(do_free_interior, "invalid pointer");
	expect_abort(do_free_header, "invalid pointer");
}

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
	{ "size_class_waste", "every size up to 2 MiB: tightest class, waste < 12.5% above 64 B", size_class_waste },
	{ "usable_size_is_class", "malloc_usable_size reports the class size", usable_size_is_class },
	{ "malloc_alignment_and_content", "sizes 0..3 MiB: aligned, usable, content kept", malloc_alignment_and_content },
	{ "calloc_zeroes_and_overflows", "calloc zeroes reused memory, ENOMEM on overflow", calloc_zeroes_and_overflows },
	{ "realloc_keeps_content", "realloc grows/shrinks keeping content; realloc(p,0) frees", realloc_keeps_content },
	{ "aligned_family", "aligned_alloc/posix_memalign/memalign/valloc/pvalloc to 16 MiB", aligned_family },
	{ "freed_memory_is_reused", "two blocks live at a time (to 3 MiB, aligned to 16 MiB): RSS stays bounded", freed_memory_is_reused },
	{ "huge_blocks_own_regions", "huge blocks get a region each, destroyed on free", huge_blocks_own_regions },
	{ "failure_is_enomem", "impossible sizes give NULL and ENOMEM", failure_is_enomem },
	{ "many_small_random_order", "400k small blocks freed in random order", many_small_random_order },
	{ "trim_gives_memory_back", "malloc_trim(0) releases freed pages at once (RSS falls)", trim_gives_memory_back },
	{ "resident_falls_after_free_and_trim", "resident memory stays after free, falls on malloc_trim(0)", resident_falls_after_free_and_trim },
	{ "proc_kalloc_shows_regions", "/proc/kalloc lists our regions; resident falls on free and malloc_trim(0)", proc_kalloc_shows_regions },
	{ "decay_purges_later", "freed spans are released after the decay", decay_purges_later },
	{ "thread_exit_returns_heap", "exiting threads return their heap; segments reclaimed", thread_exit_returns_heap },
	{ "cross_thread_frees", "blocks freed by another thread come back", cross_thread_frees },
	{ "fork_child_uses_parent_memory", "after fork the child reads and frees the parent's blocks", fork_child_uses_parent_memory },
	{ "double_free_aborts", "double free stops with a message naming the pointer", double_free_aborts },
	{ "invalid_free_aborts", "stack/interior/header pointers stop with a message", invalid_free_aborts },
	{ "stats_text_and_json", "ka_stats_print writes text and JSON", stats_text_and_json },
	{ "numa_memory_follows_the_thread", "with 2+ nodes, a thread's blocks live on its node", numa_memory_follows_the_thread },
	{ "backend_is_the_one_asked", "KALLOC_BACKEND picks the backend", backend_is_the_one_asked },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	return check_main(cases, argc, argv);
}
