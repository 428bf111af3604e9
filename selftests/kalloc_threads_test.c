// SPDX-License-Identifier: GPL-2.0
/*
 * Threads: several threads fault and write one region while another
 * releases random ranges of it.  Every page a thread reads back holds its
 * own pattern or zeros (a released page comes back zeroed), never bytes of
 * another page or another thread; the process lives; the counters agree
 * with each other afterwards.  And threads that fault the very same pages
 * at once (the fault handler finds the entries already there: -EBUSY from
 * vm_insert_pages) all end up on one and the same page.
 *
 * Faults run in parallel: threads first-touching disjoint parts of one
 * region never wait for each other's allocation (the module counts every
 * wait for a region's lock).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include "kalloc_test.h"
#include "kselftest_harness.h"

#define WRITERS		4
#define REGION_PAGES	256UL
#define RUN_SECONDS	3
#define WORDS		(KT_PAGE / sizeof(uint64_t))

FIXTURE(threads) {
	int fd;
	long resident;		/* /proc/kalloc resident pages at setup */
};

FIXTURE_VARIANT(threads) {
	unsigned int backing;
	unsigned int order;
};

FIXTURE_VARIANT_ADD(threads, vmalloc) {
	.backing = KALLOC_BACKING_VMALLOC,
};

FIXTURE_VARIANT_ADD(threads, pages0) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 0,
};

FIXTURE_VARIANT_ADD(threads, pages4) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 4,
};

static long resident_total(void)
{
	return kt_proc_total("resident_vmalloc") + kt_proc_total("resident_pages");
}

FIXTURE_SETUP(threads)
{
	self->fd = kt_open();
	ASSERT_LE(0, self->fd);
	self->resident = resident_total();
	ASSERT_LE(0, self->resident);
}

FIXTURE_TEARDOWN(threads)
{
	close(self->fd);
}

struct shared {
	int fd;
	unsigned int id;
	volatile uint64_t *p;
	unsigned long pages;
	volatile int stop;
	/* what went wrong first, for the log */
	pthread_mutex_t lock;
	long bad;
	char first[256];
};

struct writer {
	struct shared *s;
	unsigned int n;		/* writes the pages whose index % WRITERS == n */
	unsigned long rounds;
	unsigned long zero_words;	/* words found released, for the log */
};

static void report(struct shared *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void report(struct shared *s, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&s->lock);
	if (!s->bad++) {
		va_start(ap, fmt);
		vsnprintf(s->first, sizeof(s->first), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&s->lock);
}

/*
 * Word @word of page @page as writer @n writes it in round @round.  No byte
 * is ever zero, and the writer, page and word are all in it: a byte from
 * anyone or anywhere else shows.
 */
static uint64_t pattern(unsigned int n, unsigned long page, unsigned long round,
			unsigned long word)
{
	return (uint64_t)(0x10 + n) |
	       (uint64_t)(0x01 + (page & 0x7f)) << 8 |
	       (uint64_t)(0x01 + ((page >> 7) & 0x7f)) << 16 |
	       (uint64_t)(0x01 + (round & 0x7f)) << 24 |
	       (uint64_t)(0x01 + (word & 0x7f)) << 32 |
	       (uint64_t)(0x01 + ((word >> 7) & 0x7f)) << 40 |
	       (uint64_t)0xa5 << 48 | (uint64_t)(0x80 | n) << 56;
}

/*
 * A word as a writer may find it: its pattern, zeros where RELEASE took the
 * page away under it, or (VMALLOC zeroes in place, byte by byte, while the
 * writer may be storing) a mix of the two byte by byte.  Anything else is
 * someone else's data.
 */
static bool word_ok(uint64_t got, uint64_t want)
{
	for (int b = 0; b < 64; b += 8) {
		uint8_t g = got >> b;

		if (g && g != (uint8_t)(want >> b))
			return false;
	}
	return true;
}

static void *writer_thread(void *arg)
{
	struct writer *w = arg;
	struct shared *s = w->s;
	unsigned long page, i;

	while (!s->stop) {
		for (page = w->n; page < s->pages && !s->stop; page += WRITERS) {
			volatile uint64_t *q = s->p + page * WORDS;

			for (i = 0; i < WORDS; i++)
				q[i] = pattern(w->n, page, w->rounds, i);
			for (i = 0; i < WORDS; i++) {
				uint64_t got = q[i], want = pattern(w->n, page, w->rounds, i);

				if (!got)
					w->zero_words++;
				else if (!word_ok(got, want))
					report(s, "writer %u, page %lu word %lu round %lu: %#llx, wanted %#llx or 0",
					       w->n, page, i, w->rounds,
					       (unsigned long long)got,
					       (unsigned long long)want);
			}
		}
		w->rounds++;
	}
	return NULL;
}

struct releaser {
	struct shared *s;
	unsigned long releases, max_resident;
};

static void *releaser_thread(void *arg)
{
	struct releaser *r = arg;
	struct shared *s = r->s;
	unsigned int seed = 12345;
	struct kalloc_info info;
	int err;

	while (!s->stop) {
		unsigned long first = rand_r(&seed) % s->pages;
		unsigned long nr = 1 + rand_r(&seed) % 32;

		if (nr > s->pages - first)
			nr = s->pages - first;
		err = kt_release(s->fd, s->id, first * KT_PAGE, nr * KT_PAGE);
		if (err)
			report(s, "RELEASE of pages %lu+%lu: %s", first, nr, strerror(-err));
		r->releases++;
		if (r->releases % 16 == 0) {
			err = kt_info(s->fd, s->id, &info);
			if (err)
				report(s, "INFO: %s", strerror(-err));
			else if (info.resident > s->pages)
				report(s, "INFO: %llu resident pages in a %lu-page region",
				       (unsigned long long)info.resident, s->pages);
			if (!err && info.resident > r->max_resident)
				r->max_resident = info.resident;
		}
		usleep(200);
	}
	return NULL;
}

static void run_for(struct shared *s, int seconds)
{
	struct timespec end, now;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += seconds;
	do {
		usleep(50000);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec ||
		 (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	s->stop = 1;
}

TEST_F_TIMEOUT(threads, writers_see_their_data_or_zeros_while_ranges_are_released, 120)
{
	struct shared s = { .fd = self->fd, .pages = REGION_PAGES };
	struct writer w[WRITERS];
	struct releaser r = { .s = &s };
	pthread_t wt[WRITERS], rt;
	struct kalloc_create c;
	struct kalloc_info info;
	unsigned long zero_words = 0;
	struct kt_row row;
	unsigned int n;

	pthread_mutex_init(&s.lock, NULL);
	ASSERT_EQ(0, kt_create(self->fd, REGION_PAGES * KT_PAGE, variant->backing,
			       variant->order, -1, &c));
	s.id = c.id;
	s.p = kt_map(self->fd, &c, 0);
	ASSERT_NE(MAP_FAILED, s.p);

	for (n = 0; n < WRITERS; n++) {
		w[n] = (struct writer){ .s = &s, .n = n };
		ASSERT_EQ(0, pthread_create(&wt[n], NULL, writer_thread, &w[n]));
	}
	ASSERT_EQ(0, pthread_create(&rt, NULL, releaser_thread, &r));
	run_for(&s, RUN_SECONDS);
	for (n = 0; n < WRITERS; n++)
		ASSERT_EQ(0, pthread_join(wt[n], NULL));
	ASSERT_EQ(0, pthread_join(rt, NULL));

	for (n = 0; n < WRITERS; n++)
		zero_words += w[n].zero_words;
	TH_LOG("%lu releases; rounds per writer %lu %lu %lu %lu; %lu words found released",
	       r.releases, w[0].rounds, w[1].rounds, w[2].rounds, w[3].rounds, zero_words);
	EXPECT_EQ(0, s.bad) TH_LOG("%ld bad words or calls; first: %s", s.bad, s.first);
	EXPECT_LT(10, r.releases) TH_LOG("the releaser barely ran");
	for (n = 0; n < WRITERS; n++)
		EXPECT_LT(0, w[n].rounds) TH_LOG("writer %u never finished a round", n);

	/* quiet now: the counts agree with each other */
	ASSERT_EQ(0, kt_info(self->fd, c.id, &info));
	EXPECT_GE(REGION_PAGES, info.resident);
	EXPECT_LT(0, info.faults);
	EXPECT_LT(0, info.releases);
	EXPECT_EQ(1, info.mappings);
	ASSERT_EQ(0, kt_proc_row(c.id, getpid(), &row));
	EXPECT_EQ(info.resident, row.resident_pages);
	EXPECT_EQ(info.faults, row.faults);
	EXPECT_EQ(self->resident + (long)info.resident, resident_total())
		TH_LOG("/proc/kalloc resident totals disagree with INFO");
	if (variant->backing == KALLOC_BACKING_VMALLOC) {
		EXPECT_EQ(REGION_PAGES, info.resident);
	}

	/* every word still is what its writer last wrote, or zero */
	for (unsigned long page = 0; page < REGION_PAGES; page++) {
		struct writer *wp = &w[page % WRITERS];
		unsigned long round = wp->rounds - 1;

		for (unsigned long i = 0; i < WORDS; i++) {
			uint64_t got = s.p[page * WORDS + i];

			/* the last round may have stopped before this page */
			if (got && !word_ok(got, pattern(wp->n, page, round, i)) &&
			    !word_ok(got, pattern(wp->n, page, round - 1, i))) {
				ASSERT_TRUE(0) TH_LOG("page %lu word %lu: %#llx", page, i,
						      (unsigned long long)got);
			}
		}
	}

	/* all of it back: resident falls to nothing (PAGES) */
	ASSERT_EQ(0, kt_release(self->fd, c.id, 0, REGION_PAGES * KT_PAGE));
	ASSERT_EQ(0, kt_info(self->fd, c.id, &info));
	if (variant->backing == KALLOC_BACKING_PAGES) {
		EXPECT_EQ(0, info.resident);
		EXPECT_EQ(self->resident, resident_total());
	}
	munmap((void *)s.p, REGION_PAGES * KT_PAGE);
	close(self->fd);
	self->fd = kt_open();
	EXPECT_EQ(self->resident, resident_total()) TH_LOG("closing left pages counted");
}

#define RACERS		8
#define RACE_PAGES	64UL
#define RACE_ROUNDS	100

struct race {
	pthread_barrier_t barrier;
	int fd;
	unsigned int id;
	volatile uint64_t *p;
	long lost;		/* pages whose count was short */
	char first[128];
};

struct racer {
	struct race *r;
	unsigned int n;
};

/*
 * Each round every racer adds one to the first word of every page,
 * starting at a page of its own, so that their faults meet on the same
 * neighbourhoods at once.  Then racer 0 checks that every page counted
 * every racer (one page per index, none lost to another) and releases it
 * all, so that the next round faults afresh.
 */
static void *racer_thread(void *arg)
{
	struct racer *t = arg;
	struct race *r = t->r;
	unsigned long i, page;

	for (int round = 0; round < RACE_ROUNDS; round++) {
		pthread_barrier_wait(&r->barrier);
		for (i = 0; i < RACE_PAGES; i++) {
			page = (i + t->n * 5) % RACE_PAGES;
			__atomic_fetch_add((uint64_t *)&r->p[page * WORDS], 1, __ATOMIC_SEQ_CST);
		}
		pthread_barrier_wait(&r->barrier);
		if (t->n)
			continue;
		for (page = 0; page < RACE_PAGES; page++) {
			uint64_t got = r->p[page * WORDS];

			if (got != RACERS && !r->lost++)
				snprintf(r->first, sizeof(r->first),
					 "round %d page %lu counted %llu of %d racers",
					 round, page, (unsigned long long)got, RACERS);
		}
		if (kt_release(r->fd, r->id, 0, RACE_PAGES * KT_PAGE) && !r->lost++)
			snprintf(r->first, sizeof(r->first), "RELEASE failed");
	}
	return NULL;
}

TEST_F_TIMEOUT(threads, simultaneous_faults_on_the_same_pages_share_one_page, 120)
{
	struct race r = { .fd = self->fd };
	struct racer t[RACERS];
	pthread_t tid[RACERS];
	struct kalloc_create c;
	struct kalloc_info info;
	unsigned int n;

	ASSERT_EQ(0, kt_create(self->fd, RACE_PAGES * KT_PAGE, variant->backing,
			       variant->order, -1, &c));
	r.id = c.id;
	r.p = kt_map(self->fd, &c, 0);
	ASSERT_NE(MAP_FAILED, r.p);
	ASSERT_EQ(0, pthread_barrier_init(&r.barrier, NULL, RACERS));
	for (n = 0; n < RACERS; n++) {
		t[n] = (struct racer){ .r = &r, .n = n };
		ASSERT_EQ(0, pthread_create(&tid[n], NULL, racer_thread, &t[n]));
	}
	for (n = 0; n < RACERS; n++)
		ASSERT_EQ(0, pthread_join(tid[n], NULL));
	EXPECT_EQ(0, r.lost) TH_LOG("%ld pages short; first: %s", r.lost, r.first);

	ASSERT_EQ(0, kt_info(self->fd, c.id, &info));
	TH_LOG("%d rounds of %d racers over %lu pages: %llu faults",
	       RACE_ROUNDS, RACERS, RACE_PAGES, (unsigned long long)info.faults);
	EXPECT_LE(RACE_ROUNDS * (RACE_PAGES / kt_param("fault_around")), info.faults)
		TH_LOG("fewer faults than neighbourhoods touched");
	EXPECT_EQ(RACE_ROUNDS * RACE_PAGES, info.releases);
	if (variant->backing == KALLOC_BACKING_PAGES) {
		EXPECT_EQ(0, info.resident);
	}
	EXPECT_EQ(self->resident + (long)info.resident, resident_total());
	pthread_barrier_destroy(&r.barrier);
	munmap((void *)r.p, RACE_PAGES * KT_PAGE);
}

#define SPLIT_THREADS	4
#define SPLIT_PAGES	16384UL		/* 64 MiB */

struct splitter {
	pthread_barrier_t *barrier;
	volatile unsigned char *p;	/* its own part of the region */
	unsigned long pages;
};

static void *splitter_thread(void *arg)
{
	struct splitter *t = arg;
	unsigned long i;

	pthread_barrier_wait(t->barrier);
	for (i = 0; i < t->pages; i++)
		t->p[i * KT_PAGE] = 1;
	return NULL;
}

/*
 * Threads that first-touch their own parts of one region allocate and
 * zero their pages at once: no fault waits for region->lock, which only
 * RELEASE, a fork copy and a mapping change take exclusive.  With one
 * region-wide lock held across allocation, some of these faults wait
 * (the module before this design: hundreds in a run).
 */
TEST_F_TIMEOUT(threads, faults_of_disjoint_parts_never_wait_for_each_other, 120)
{
	struct splitter t[SPLIT_THREADS];
	pthread_t tid[SPLIT_THREADS];
	pthread_barrier_t barrier;
	unsigned long part = SPLIT_PAGES / SPLIT_THREADS;
	struct kalloc_create c;
	struct kalloc_info info;
	volatile unsigned char *p;
	long waits;
	unsigned int n;

	ASSERT_EQ(0, kt_create(self->fd, SPLIT_PAGES * KT_PAGE, variant->backing,
			       variant->order, -1, &c));
	p = kt_map(self->fd, &c, 0);
	ASSERT_NE(MAP_FAILED, p);
	waits = kt_proc_total("fault_lock_waits");
	ASSERT_LE(0, waits) TH_LOG("no fault_lock_waits in /proc/kalloc");
	ASSERT_EQ(0, pthread_barrier_init(&barrier, NULL, SPLIT_THREADS));
	for (n = 0; n < SPLIT_THREADS; n++) {
		t[n] = (struct splitter){ .barrier = &barrier,
					  .p = p + n * part * KT_PAGE,
					  .pages = part };
		ASSERT_EQ(0, pthread_create(&tid[n], NULL, splitter_thread, &t[n]));
	}
	for (n = 0; n < SPLIT_THREADS; n++)
		ASSERT_EQ(0, pthread_join(tid[n], NULL));
	waits = kt_proc_total("fault_lock_waits") - waits;
	ASSERT_EQ(0, kt_info(self->fd, c.id, &info));
	TH_LOG("%d threads, %lu pages: %llu faults, %ld waited for the region's lock",
	       SPLIT_THREADS, SPLIT_PAGES, (unsigned long long)info.faults, waits);
	EXPECT_EQ(0, waits);
	EXPECT_EQ(SPLIT_PAGES, info.resident);
	pthread_barrier_destroy(&barrier);
	munmap((void *)p, SPLIT_PAGES * KT_PAGE);
}

TEST_HARNESS_MAIN
