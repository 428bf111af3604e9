/* SPDX-License-Identifier: MIT */
/*
 * Stress: 8 threads doing random malloc/free/realloc of random sizes, a
 * quarter of their blocks handed to other threads through a shared array
 * and freed there.  Every block carries its size and a seed, and its bytes
 * are checked on free and realloc.  Every 8192 operations a thread calls
 * malloc_trim(0), which gives back free pages (also inside pages in use)
 * while the others work, and the main thread reads the statistics over and
 * over (they walk every thread's pages: under TSan, a read that races with
 * an owner's write is reported).  Usage: test_stress [seconds]
 *
 * Under KALLOC_DEBUG=1 every free fills junk and every malloc checks it: a
 * run with no report means no false positive, whatever the path a block
 * took (run.sh).  The run first makes sure the flag took.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "alloc.h"
#include "test/check.h"

enum { THREADS = 8, SLOTS = 512, SHARED = 4096 };

struct hdr {
	size_t size;
	uint64_t seed;
};

static _Atomic(struct hdr *) shared[SHARED];
static atomic_int stop;
static atomic_long ops_total;

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static size_t pick_size(uint64_t *s)
{
	uint64_t r = next(s) % 1000;
	if (r < 800)
		return sizeof(struct hdr) + next(s) % 256;
	if (r < 970)
		return sizeof(struct hdr) + next(s) % 65536;
	if (r < 998)
		return sizeof(struct hdr) + next(s) % (1u << 20);
	return sizeof(struct hdr) + next(s) % (6u << 20);
}

static unsigned char byte_at(uint64_t seed, size_t i)
{
	return (unsigned char)((seed >> (i % 7 * 8)) + i);
}

static void fill(struct hdr *h, size_t from)
{
	unsigned char *c = (unsigned char *)(h + 1);
	size_t n = h->size - sizeof *h;
	for (size_t i = from; i < n; i++)
		c[i] = byte_at(h->seed, i);
}

static void verify(const struct hdr *h, size_t upto)
{
	const unsigned char *c = (const unsigned char *)(h + 1);
	size_t n = h->size - sizeof *h;
	if (upto < n)
		n = upto;
	for (size_t i = 0; i < n; i += 1 + (i > 4096) * 61)
		CHECK(c[i] == byte_at(h->seed, i), "block %p (size %zu) byte %zu", (void *)h, h->size, i);
}

static struct hdr *make(uint64_t *s)
{
	size_t n = pick_size(s);
	struct hdr *h = ka_malloc(n);
	CHECK(h, "malloc %zu", n);
	CHECK(ka_malloc_usable_size(h) >= n, "usable");
	h->size = n;
	h->seed = next(s);
	fill(h, 0);
	return h;
}

static void release(struct hdr *h)
{
	if (!h)
		return;
	verify(h, SIZE_MAX);
	ka_free(h);
}

static void *worker(void *arg)
{
	uint64_t s = 0x9e3779b97f4a7c15ULL * (uint64_t)((intptr_t)arg + 1);
	struct hdr *slot[SLOTS] = { 0 };
	long ops = 0;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned i = (unsigned)(next(&s) % SLOTS);
		unsigned op = (unsigned)(next(&s) % 8);
		ops++;
		if ((ops & 0x1fff) == 0)	/* gives back free pages under the others' feet */
			ka_malloc_trim(0);
		if (!slot[i]) {
			slot[i] = make(&s);
		} else if (op < 3) {
			release(slot[i]);
			slot[i] = NULL;
		} else if (op < 5) {
			struct hdr *h = slot[i];
			size_t old = h->size, n = pick_size(&s);
			verify(h, SIZE_MAX);
			h = ka_realloc(h, n);
			CHECK(h, "realloc %zu", n);
			h->size = n;
			verify(h, old - sizeof *h);
			fill(h, old < n ? old - sizeof *h : n - sizeof *h);
			slot[i] = h;
		} else {
			/* Hand ours over; free whatever another thread left there. */
			struct hdr *other = atomic_exchange(&shared[next(&s) % SHARED], slot[i]);
			slot[i] = NULL;
			release(other);
		}
	}
	for (unsigned i = 0; i < SLOTS; i++)
		release(slot[i]);
	atomic_fetch_add(&ops_total, ops);
	return NULL;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3;
	pthread_t t[THREADS];
	const char *debug = getenv("KALLOC_DEBUG");

	if (debug && strcmp(debug, "1") == 0) {
		unsigned char *p = ka_malloc(100);
		for (int i = 0; i < 100; i++)
			CHECK(p[i] == 0xaa, "KALLOC_DEBUG=1 but a new block's byte %d is 0x%02x", i, p[i]);
		ka_free(p);
		printf("# KALLOC_DEBUG=1: new blocks read 0xaa\n");
	}

	for (intptr_t i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0, "thread");
	struct timespec now, end;
	struct ka_stats st;
	long reads = 0;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)secs;
	end.tv_nsec += (long)((secs - (time_t)secs) * 1e9);
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	do {
		struct timespec ms = { 0, 1000000 };

		ka_stats(&st);
		reads++;
		nanosleep(&ms, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	atomic_store(&stop, 1);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < SHARED; i++)
		release(atomic_exchange(&shared[i], NULL));
	ka_malloc_trim(0);
	ka_stats(&st);
	printf("# %ld statistics reads while they ran\n", reads);
	printf("# %ld operations in %.1f s; allocated after all frees: %zu bytes, abandoned %zu\n",
	       (long)atomic_load(&ops_total), secs, st.allocated, st.abandoned);
	CHECK(st.allocated == 0, "everything freed, %zu bytes still counted", st.allocated);
	CHECK(st.abandoned == 0, "abandoned segments %zu", st.abandoned);
	return 0;
}
