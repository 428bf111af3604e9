/* SPDX-License-Identifier: MIT */
/*
 * No block goes to two threads when the threads that own the memory are
 * gone without having said so: the other threads of a process that forked,
 * and a thread that allocates again in its last round of thread-specific
 * data destructors, after liballoc's own destructor gave its heap back.
 *
 * Both cases end the same way: a thread that never allocated frees the
 * blocks the gone threads left behind (glibc hands new threads the stacks,
 * and thread pointers, of the gone ones), then 32 new threads each
 * allocate 8 blocks of 2000 bytes at once, fill them with their number,
 * wait for each other and check their blocks still hold it; no address
 * may come out twice.
 *
 * fork: the parent's other thread allocated 1024 blocks of 2000 bytes and
 * sleeps; each of 100 children (a child's exit status says what it saw)
 * runs the above on them.  tsd: 8 threads with a heap exit; a destructor
 * sets its key again each round and allocates in the last one; the blocks
 * must be distinct and keep what was written; then the above; 20 rounds.
 *
 * busy: the parent's other threads are anywhere in malloc and free when it
 * forks; each child frees blocks they passed around, and its own threads
 * take over what the gone threads' heaps may give (fork.c), allocate,
 * fill with their number and check.  200 children by default.
 *
 * Built three ways: linked with liballoc, plain and under TSan
 * (test_fork_threads), where liballoc's statistics must also show that
 * the gone threads hold no heap (in the child; after the threads exited);
 * and from plain malloc (fork_threads_prog), a program that run.sh runs
 * with and without LD_PRELOAD=liballoc.so, whose outputs must not differ.
 *
 * caught (linked build only): a thread is halfway through a change of its
 * heap, marked as liballoc marks one (ka_heap_change_begin), when the
 * process forks.  The child keeps that heap and its segments unused for
 * good and counts it in ka_stats' heaps_caught (in neither heaps_in_use
 * nor heaps_parked); its new threads' blocks come from other segments and
 * the caught heap's blocks keep what the parent wrote.  20 children.
 *
 *   test_fork_threads fork|tsd|busy|caught [children or rounds]   (or fork_threads_prog)
 */
#include <limits.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#ifdef FORK_THREADS_PLAIN_MALLOC
#define xmalloc malloc
#define xfree free
#else
#include "internal.h"		/* caught: ka_heap_change_begin */
#define xmalloc ka_malloc
#define xfree ka_free
#endif


/*
 * Under TSan (gcc's, which is older than the fix in LLVM's): it takes a
 * thread of a forked child that reuses the pthread id of one of the
 * parent's for a duplicate and exits, so there the parent's other threads
 * run on stacks of their own, which glibc does not hand on; and it
 * finishes a thread in the last destructor round, so the destructor
 * allocates one round earlier, still after liballoc's.
 */
#ifdef __SANITIZE_THREAD__
#define OWN_STACK	1
#define ALLOC_ROUND	(PTHREAD_DESTRUCTOR_ITERATIONS - 1)
#else
#define OWN_STACK	0
#define ALLOC_ROUND	PTHREAD_DESTRUCTOR_ITERATIONS
#endif

enum {
	BLOCK = 2000,		/* over 1 KiB: past heap->direct[] */
	LEFT = 1024,		/* blocks the gone thread leaves */
	THREADS = 32,		/* that then allocate at once */
	PER_THREAD = 8,
	DTOR_THREADS = 8,	/* that allocate in their last destructor round */
	DTOR_BLOCKS = 60,	/* one in 9 small (direct[]); pages not all full */
};

/* ---- the race every case ends with ---- */

static void *left[LEFT + DTOR_THREADS * DTOR_BLOCKS];
static pthread_t left_by[LEFT + DTOR_THREADS * DTOR_BLOCKS];	/* tsd: who left it */
static bool left_by_known;
static size_t left_count;
static pthread_mutex_t left_lock = PTHREAD_MUTEX_INITIALIZER;

/* Frees the left blocks: with arg, only those of a gone thread that ran on
 * this thread's stack, if any. */
static void *free_left(void *arg)
{
	pthread_t self = pthread_self();

	for (size_t i = 0; i < left_count; i++) {
		pthread_mutex_lock(&left_lock);
		void *p = left[i];
		if (arg && !pthread_equal(left_by[i], self))
			p = NULL;
		if (p)
			left[i] = NULL;
		pthread_mutex_unlock(&left_lock);
		xfree(p);
	}
	return NULL;
}

static pthread_barrier_t race_start, race_filled;
static unsigned char *race_blocks[THREADS][PER_THREAD];
static int race_bad[THREADS];

static void *race_thread(void *arg)
{
	int id = (int)(intptr_t)arg;

	pthread_barrier_wait(&race_start);
	for (int k = 0; k < PER_THREAD; k++) {
		race_blocks[id][k] = xmalloc(BLOCK);
		if (race_blocks[id][k])
			memset(race_blocks[id][k], id + 1, BLOCK);
	}
	pthread_barrier_wait(&race_filled);
	for (int k = 0; k < PER_THREAD; k++) {
		unsigned char *b = race_blocks[id][k];
		if (!b) {
			race_bad[id] = 1;
			continue;
		}
		for (int i = 0; i < BLOCK; i++)
			if (b[i] != id + 1) {
				race_bad[id] = 1;
				break;
			}
	}
	return NULL;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * A new thread frees the left blocks, then the race.  Returns 0, or 3 when
 * a block went to two threads (or two blocks overlap), 4 when a thread's
 * block lost its contents or malloc failed.
 */
static int free_left_then_race(void)
{
	pthread_t t[THREADS];
	uintptr_t all[THREADS * PER_THREAD];
	int rc = 0;

	/* glibc gives new threads the stacks of the gone ones: each frees
	 * what the thread before it on its stack left (tsd), then one more
	 * frees the rest. */
	if (left_by_known) {
		for (int i = 0; i < DTOR_THREADS; i++)
			CHECK(pthread_create(&t[i], NULL, free_left, &left_by_known) == 0, "pthread_create");
		for (int i = 0; i < DTOR_THREADS; i++)
			pthread_join(t[i], NULL);
	}
	CHECK(pthread_create(&t[0], NULL, free_left, NULL) == 0, "pthread_create");
	pthread_join(t[0], NULL);
	left_count = 0;
	pthread_barrier_init(&race_start, NULL, THREADS);
	pthread_barrier_init(&race_filled, NULL, THREADS);
	memset(race_bad, 0, sizeof race_bad);
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, race_thread, (void *)(intptr_t)i) == 0,
		      "pthread_create");
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&race_start);
	pthread_barrier_destroy(&race_filled);
	for (int i = 0; i < THREADS; i++) {
		if (race_bad[i])
			rc = 4;
		for (int k = 0; k < PER_THREAD; k++)
			all[i * PER_THREAD + k] = (uintptr_t)race_blocks[i][k];
	}
	qsort(all, THREADS * PER_THREAD, sizeof all[0], cmp_ptr);
	for (int i = 1; i < THREADS * PER_THREAD; i++)
		if (all[i] && all[i] - all[i - 1] < BLOCK)
			rc = 3;
	for (int i = 0; i < THREADS; i++)
		for (int k = 0; k < PER_THREAD; k++)
			if (rc != 3)	/* freeing a block twice would only add noise */
				xfree(race_blocks[i][k]);
	return rc;
}

/* The heaps live threads hold: those gone must not count (linked build). */
static int heaps_in_use(void)
{
#ifdef FORK_THREADS_PLAIN_MALLOC
	return -1;
#else
	struct ka_stats st;

	ka_stats(&st);
	return (int)st.heaps_in_use;
#endif
}

/* ---- fork: the parent's other thread is gone in the child ---- */

static pthread_mutex_t gone_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gone_cond = PTHREAD_COND_INITIALIZER;
static int gone_state;		/* 1: blocks allocated; 2: may finish */

/* Set gone_state to state, then wait until it is want (0: no wait). */
static void gone_step(int state, int want)
{
	pthread_mutex_lock(&gone_lock);
	if (state) {
		gone_state = state;
		pthread_cond_broadcast(&gone_cond);
	}
	while (want && gone_state != want)
		pthread_cond_wait(&gone_cond, &gone_lock);
	pthread_mutex_unlock(&gone_lock);
}

static void *allocate_and_sleep(void *arg)
{
	(void)arg;
	for (int i = 0; i < LEFT; i++) {
		left[i] = xmalloc(BLOCK);
		CHECK(left[i], "malloc");
		memset(left[i], 0xa5, BLOCK);
	}
	left_count = LEFT;
	gone_step(1, 2);	/* ready; wait to be let finish */
	free_left(NULL);
	left_count = 0;
	return NULL;
}

/* Fork; the child exits with fn(arg).  Its exit status, -1 if a signal
 * killed it. */
static int run_child(int (*fn)(int), int arg)
{
	int status;

	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0)
		_exit(fn(arg));
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	return WIFSIGNALED(status) ? -1 : WEXITSTATUS(status);
}

/* In the child: the race's status, else 2 when the gone thread's heap
 * still counted as in use. */
static int fork_child(int parent_heaps)
{
	int kept = parent_heaps >= 0 && heaps_in_use() != parent_heaps - 1;

	for (size_t i = 0; i < left_count; i++)
		for (int j = 0; j < BLOCK; j += 97)
			if (((unsigned char *)left[i])[j] != 0xa5)
				return 4;
	int rc = free_left_then_race();
	return rc ? rc : kept ? 2 : 0;
}

static void fork_case(int rounds)
{
	pthread_t a;
	int died = 0, twice = 0, heaps = 0, lost = 0, other = 0;

	pthread_attr_t attr;
	static char stack[1 << 20] __attribute__((aligned(4096)));

	xfree(xmalloc(100));	/* the forking thread has a heap too */
	pthread_attr_init(&attr);
	if (OWN_STACK)
		pthread_attr_setstack(&attr, stack, sizeof stack);
	CHECK(pthread_create(&a, &attr, allocate_and_sleep, NULL) == 0, "pthread_create");
	pthread_attr_destroy(&attr);
	gone_step(0, 1);
	int parent_heaps = heaps_in_use();

	for (int r = 0; r < rounds; r++) {
		int status = run_child(fork_child, parent_heaps);

		if (status < 0)
			died++;
		else if (status == 3)
			twice++;
		else if (status == 2)
			heaps++;
		else if (status == 4)
			lost++;
		else if (status != 0)
			other++;
	}
	gone_step(2, 0);
	pthread_join(a, NULL);
	if (died + twice + heaps + lost + other)
		fprintf(stderr, "of %d children: %d died of a signal, %d handed a block to two "
			"threads, %d lost a block's contents, %d kept the gone thread's heap, "
			"%d failed otherwise\n", rounds, died, twice, lost, heaps, other);
	CHECK(died + twice + heaps + lost + other == 0, "children failed");
	printf("fork: %d children, each: a new thread frees the blocks of the parent's "
	       "other thread, %d threads allocate %d blocks each at once: no block twice\n",
	       rounds, THREADS, PER_THREAD);
}

/* ---- busy: the parent's other threads were in the middle of malloc ---- */

enum {
	WORKERS = 3,		/* the parent's, allocating and freeing throughout */
	SLOTS = 256,		/* each worker's live blocks */
	RING = 512,		/* blocks passed between workers: cross-thread frees */
	CHILD_THREADS = 4,
	CHILD_OPS = 3000,
};

static _Atomic(unsigned char *) ring[RING];
static atomic_uint ring_next;
static atomic_bool workers_stop;

/* 16 B to 24 KiB: direct[] pages, class queues, one-block pages, all
 * carved, threaded, retired and collected over and over. */
static size_t busy_size(unsigned *seed)
{
	unsigned r = rand_r(seed);

	return r % 16 == 0 ? 4096 + r % 20480 : 16 + r % 3000;
}

static void *busy_worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	unsigned char *mine[SLOTS] = { 0 };

	while (!atomic_load(&workers_stop)) {
		unsigned k = (unsigned)rand_r(&seed) % SLOTS;
		xfree(mine[k]);
		size_t size = busy_size(&seed);
		mine[k] = xmalloc(size);
		CHECK(mine[k], "malloc");
		memset(mine[k], 0x5a, size < 64 ? size : 64);
		if (k % 5 == 0) {
			unsigned i = atomic_fetch_add(&ring_next, 1) % RING;
			xfree(atomic_exchange(&ring[i], mine[k]));
			mine[k] = NULL;
		}
	}
	for (unsigned k = 0; k < SLOTS; k++)
		xfree(mine[k]);
	return NULL;
}

/* Allocates, fills with its number, checks and frees; 4 when a block
 * lost its contents (went to two threads, or overlapped another). */
static void *busy_child_thread(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg, seed = id * 7919u;
	unsigned char *mine[64] = { 0 };
	size_t size[64] = { 0 };
	intptr_t rc = 0;

	for (int op = 0; op < CHILD_OPS + 64; op++) {
		unsigned k = op < CHILD_OPS ? (unsigned)rand_r(&seed) % 64 : (unsigned)(op - CHILD_OPS);
		if (mine[k]) {
			for (size_t i = 0; i < size[k]; i += 61)
				if (mine[k][i] != (unsigned char)id)
					rc = 4;
			xfree(mine[k]);
			mine[k] = NULL;
		}
		if (op >= CHILD_OPS)
			continue;
		size[k] = busy_size(&seed);
		mine[k] = xmalloc(size[k]);
		if (!mine[k])
			return (void *)(intptr_t)4;
		memset(mine[k], (int)id, size[k]);
	}
	return (void *)rc;
}

/* The child frees the blocks in the ring (into pages of gone heaps), then
 * its threads reclaim the gone threads' segments and use their pages. */
static int busy_child(int unused __attribute__((unused)))
{
	pthread_t t[CHILD_THREADS];
	int rc = 0;

	for (unsigned i = 0; i < RING; i++)
		xfree(atomic_exchange(&ring[i], NULL));
	for (int i = 0; i < CHILD_THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, busy_child_thread, (void *)(uintptr_t)(i + 1)) == 0,
		      "pthread_create");
	for (int i = 0; i < CHILD_THREADS; i++) {
		void *r;
		pthread_join(t[i], &r);
		if (r)
			rc = (int)(intptr_t)r;
	}
	return rc;
}

/*
 * Forks while other threads allocate and free.  A thread is gone from the
 * child wherever it was in malloc or free: halfway through threading a
 * page's blocks, giving a page's span back (KALLOC_DEBUG fills it with
 * junk first), collecting remote frees.  Run with KALLOC_DEBUG=1 too, whose
 * checks see a page left halfway.
 */
static void busy_case(int rounds)
{
	pthread_t w[WORKERS];
	int died = 0, lost = 0, other = 0;

	static char stacks[WORKERS][1 << 20] __attribute__((aligned(4096)));

	xfree(xmalloc(100));
	for (int i = 0; i < WORKERS; i++) {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		if (OWN_STACK)
			pthread_attr_setstack(&attr, stacks[i], sizeof stacks[i]);
		CHECK(pthread_create(&w[i], &attr, busy_worker, (void *)(uintptr_t)(i + 1)) == 0,
		      "pthread_create");
		pthread_attr_destroy(&attr);
	}
	for (int r = 0; r < rounds; r++) {
		usleep(1000 + (unsigned)r * 37 % 1000);
		int status = run_child(busy_child, 0);

		if (status < 0)
			died++;
		else if (status == 4)
			lost++;
		else if (status != 0)
			other++;
	}
	atomic_store(&workers_stop, true);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(w[i], NULL);
	for (unsigned i = 0; i < RING; i++)
		xfree(atomic_exchange(&ring[i], NULL));
	if (died + lost + other)
		fprintf(stderr, "of %d children: %d died of a signal, %d saw a block lose its "
			"contents, %d failed otherwise\n", rounds, died, lost, other);
	CHECK(died + lost + other == 0, "children failed");
	printf("busy: %d children forked while %d threads allocated and freed: no block "
	       "twice, no page left halfway taken over\n", rounds, WORKERS);
}

/* ---- tsd: allocation in the last round of destructors ---- */

static pthread_key_t late_key;
static pthread_barrier_t dtor_filled;
static pthread_mutex_t dtor_lock = PTHREAD_MUTEX_INITIALIZER;
static int dtor_last_rounds;
static unsigned char dtor_next_id;

/*
 * Sets its key again each round, so that glibc calls it every round, and
 * allocates in the last one (PTHREAD_DESTRUCTOR_ITERATIONS), when
 * liballoc's destructor has run long before (the one before under TSan).  The blocks are filled, the
 * threads wait for each other, then check them and leave them for the
 * next phase.
 */
static void late_destructor(void *v)
{
	uintptr_t round = (uintptr_t)v;
	unsigned char *mine[DTOR_BLOCKS];
	unsigned char id;

	if (round < ALLOC_ROUND) {
		pthread_setspecific(late_key, (void *)(round + 1));
		return;
	}
	pthread_mutex_lock(&dtor_lock);
	id = ++dtor_next_id;
	pthread_mutex_unlock(&dtor_lock);
	for (int k = 0; k < DTOR_BLOCKS; k++) {
		/* Blocks over 1 KiB and small ones (served from direct[]). */
		size_t size = k % 9 ? BLOCK : 48;
		mine[k] = xmalloc(size);
		if (mine[k])
			memset(mine[k], id, size);
	}
	pthread_barrier_wait(&dtor_filled);
	pthread_mutex_lock(&dtor_lock);
	dtor_last_rounds++;
	for (int k = 0; k < DTOR_BLOCKS; k++) {
		size_t size = k % 9 ? BLOCK : 48;
		int ok = mine[k] != NULL;
		for (size_t i = 0; ok && i < size; i++)
			ok = mine[k][i] == id;
		if (!ok) {
			fprintf(stderr, "a block allocated in the last destructor round was "
				"overwritten (or is NULL)\n");
			exit(4);
		}
		left_by[left_count] = pthread_self();
		left[left_count++] = mine[k];
	}
	pthread_mutex_unlock(&dtor_lock);
}

static void *start_with_heap(void *arg)
{
	(void)arg;
	xfree(xmalloc(BLOCK));
	pthread_setspecific(late_key, (void *)1);
	return NULL;
}

static void tsd_case(int rounds)
{
	pthread_t t[DTOR_THREADS];

	xfree(xmalloc(100));		/* liballoc's own key comes first */
	int heaps = heaps_in_use();
	CHECK(pthread_key_create(&late_key, late_destructor) == 0, "pthread_key_create");
	left_by_known = true;
	for (int r = 0; r < rounds; r++) {
		pthread_barrier_init(&dtor_filled, NULL, DTOR_THREADS);
		dtor_last_rounds = 0;
		for (int i = 0; i < DTOR_THREADS; i++)
			CHECK(pthread_create(&t[i], NULL, start_with_heap, NULL) == 0,
			      "pthread_create");
		for (int i = 0; i < DTOR_THREADS; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&dtor_filled);
		CHECK(dtor_last_rounds == DTOR_THREADS, "%d of %d threads reached the last round",
		      dtor_last_rounds, DTOR_THREADS);
		/* Distinct: the blocks of each round, by address. */
		uintptr_t all[DTOR_THREADS * DTOR_BLOCKS];
		for (size_t i = 0; i < left_count; i++)
			all[i] = (uintptr_t)left[i];
		qsort(all, left_count, sizeof all[0], cmp_ptr);
		for (size_t i = 1; i < left_count; i++)
			CHECK(all[i] != all[i - 1], "round %d: the last destructor round handed "
			      "%#lx to two threads", r, (unsigned long)all[i]);
		int kept = heaps_in_use();
		int rc = free_left_then_race();
		CHECK(rc == 0, "round %d: %s", r, rc == 3 ? "a block went to two threads" :
		      "a thread's block lost its contents");
		CHECK(heaps < 0 || kept == heaps, "round %d: %d heaps in use after the threads "
		      "exited, %d before they started", r, kept, heaps);
	}
	printf("tsd: %d rounds of %d threads allocating in their last destructor round, "
	       "then %d threads at once: no block twice\n", rounds, DTOR_THREADS, THREADS);
}

#ifndef FORK_THREADS_PLAIN_MALLOC
/* ---- caught: the gone thread was halfway through a change ---- */

enum { CAUGHT_BLOCKS = 256, CAUGHT_THREADS = 4, CAUGHT_PER_THREAD = 256 };
static void *caught_blocks[CAUGHT_BLOCKS];

static void *allocate_and_mark(void *arg)
{
	(void)arg;
	for (int i = 0; i < CAUGHT_BLOCKS; i++) {
		caught_blocks[i] = xmalloc(BLOCK);
		memset(caught_blocks[i], 0x5a, BLOCK);
	}
	ka_heap_t *heap = ka_tls_heap;
	ka_heap_change_begin(heap);
	gone_step(1, 2);	/* ready; wait to be let finish */
	ka_heap_change_end(heap);
	for (int i = 0; i < CAUGHT_BLOCKS; i++)
		xfree(caught_blocks[i]);
	return NULL;
}

static bool in_caught_segment(const void *p)
{
	for (int i = 0; i < CAUGHT_BLOCKS; i++)
		if ((((uintptr_t)p ^ (uintptr_t)caught_blocks[i]) & ~KA_SEGMENT_MASK) == 0)
			return true;
	return false;
}

static _Atomic int caught_bad;

static void *caught_child_thread(void *arg)
{
	void *mine[CAUGHT_PER_THREAD];

	for (int i = 0; i < CAUGHT_PER_THREAD; i++) {
		mine[i] = xmalloc(BLOCK);
		if (!mine[i] || in_caught_segment(mine[i]))
			atomic_store(&caught_bad, 1);
		else
			memset(mine[i], (int)(uintptr_t)arg, BLOCK);
	}
	for (int i = 0; i < CAUGHT_PER_THREAD; i++)
		xfree(mine[i]);
	return NULL;
}

/* Exit status: 0 fine, 2 the statistics are wrong, 3 a block came from
 * the caught heap's segments, 4 its blocks lost their contents. */
static int caught_child(int unused __attribute__((unused)))
{
	struct ka_stats st;
	pthread_t t[CAUGHT_THREADS];

	ka_stats(&st);
	if (st.heaps_caught != 1 || st.heaps_in_use != 1 || st.heaps_parked != 0) {
		fprintf(stderr, "child: heaps caught %zu, in use %zu, parked %zu (want 1, 1, 0)\n",
			st.heaps_caught, st.heaps_in_use, st.heaps_parked);
		return 2;
	}
	for (int i = 0; i < CAUGHT_THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, caught_child_thread, (void *)(uintptr_t)(i + 1)) == 0,
		      "pthread_create");
	for (int i = 0; i < CAUGHT_THREADS; i++)
		pthread_join(t[i], NULL);
	ka_stats(&st);
	if (st.heaps_caught != 1)
		return 2;
	if (atomic_load(&caught_bad))
		return 3;
	for (int i = 0; i < CAUGHT_BLOCKS; i++)
		for (int j = 0; j < BLOCK; j += 97)
			if (((unsigned char *)caught_blocks[i])[j] != 0x5a)
				return 4;
	return 0;
}

static void caught_case(int rounds)
{
	pthread_t a;
	struct ka_stats st;
	int bad[5] = { 0 };

	xfree(xmalloc(100));
	CHECK(pthread_create(&a, NULL, allocate_and_mark, NULL) == 0, "pthread_create");
	gone_step(0, 1);
	for (int r = 0; r < rounds; r++) {
		int status = run_child(caught_child, 0);
		bad[status < 0 ? 1 : status >= 2 && status <= 4 ? status : status ? 1 : 0]++;
	}
	ka_stats(&st);
	CHECK(st.heaps_caught == 0, "the parent caught %zu heaps of its own", st.heaps_caught);
	gone_step(2, 0);
	pthread_join(a, NULL);
	CHECK(bad[1] + bad[2] + bad[3] + bad[4] == 0,
	      "of %d children: %d died or failed otherwise, %d counted the heaps wrong, "
	      "%d took blocks from the caught heap's segments, %d lost its blocks' contents",
	      rounds, bad[1], bad[2], bad[3], bad[4]);
	printf("caught: %d children of a fork while a thread was halfway through a change: "
	       "its heap counted caught, its segments left alone\n", rounds);
}
#endif

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s fork|tsd|busy [rounds]\n", argv[0]);
		return 2;
	}
	int rounds = argc > 2 ? atoi(argv[2]) : 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[1], "fork") == 0)
		fork_case(rounds > 0 ? rounds : 100);
	else if (strcmp(argv[1], "tsd") == 0)
		tsd_case(rounds > 0 ? rounds : 20);
	else if (strcmp(argv[1], "busy") == 0)
		busy_case(rounds > 0 ? rounds : 200);
#ifndef FORK_THREADS_PLAIN_MALLOC
	else if (strcmp(argv[1], "caught") == 0)
		caught_case(rounds > 0 ? rounds : 20);
#endif
	else
		CHECK(0, "no case %s", argv[1]);
	return 0;
}
