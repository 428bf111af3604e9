// SPDX-License-Identifier: GPL-2.0
/*
 * liballoc under load over /dev/kalloc: PROCS processes of THREADS
 * threads each do random malloc, calloc, realloc and free of mixed sizes
 * (small, medium, and a few above 1 MiB, which are liballoc's large and
 * huge blocks) for a while, and hand some blocks to another thread of the
 * same process, which frees them (cross-thread frees).
 *
 * Every block is stamped with a pattern derived from a seed and its
 * position, and every byte is checked when the block is freed or
 * reallocated; calloc()ed memory must read zero first.
 *
 * It proves that it ran over the device, not liballoc's anonymous-memory
 * fallback: each worker checks that liballoc reports the device backend,
 * samples /proc/kalloc every second for rows of its own pid with resident
 * pages, and at the end finds as many rows of its pid as liballoc counts
 * regions.  Once the workers have exited (the parent still holds the
 * /dev/kalloc file they inherited from it), /proc/kalloc must show no
 * row of any of them.
 *
 * Usage: kalloc_stress [-t SECONDS] [-p PROCS] [-n THREADS] [-s SEED]
 * Run with KALLOC_BACKEND=device.  Prints "key value" lines and exits 0
 * only if every check held; problems go to stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/kalloc.h>
#include "alloc.h"

#define MAX_PROCS	16
#define MAX_THREADS	16
#define SLOTS		128	/* live blocks a thread keeps */
#define MAILBOX		256	/* blocks handed to a thread, not yet freed */
#define LARGE_LIVE	3	/* > 1 MiB blocks a thread keeps at once */
#define MiB		(1UL << 20)

struct block {
	unsigned char *p;
	size_t size;
	uint64_t seed;
};

/* What a worker process reports to the parent, in shared memory. */
struct report {
	pid_t pid;
	bool device;			/* liballoc said "device" */
	unsigned int samples;		/* /proc/kalloc reads while running */
	unsigned int samples_with_rows;	/* ... that showed resident rows */
	long rows_min, rows_max;
	long resident_max;		/* pages, one sample */
	long rows_end;			/* rows of its pid once all was freed */
	long regions_end;		/* liballoc's regions then */
	long ops, mallocs, callocs, reallocs, frees, cross_frees, large;
	long bad_blocks;
	bool done;
};

struct mailbox {
	pthread_mutex_t lock;
	unsigned int n;
	struct block blocks[MAILBOX];
};

struct thread {
	pthread_t tid;
	int index;
	uint64_t rng;
	struct block slots[SLOTS];
	int large_live;
	struct mailbox box;
	long ops, mallocs, callocs, reallocs, frees, cross_frees, large;
	long bad_blocks;
};

static struct thread threads[MAX_THREADS];
static int nthreads = 4;
static atomic_bool stop;
static pthread_barrier_t all_stopped;

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The pattern's 8 bytes at word @k of a block stamped with @seed. */
static uint64_t pattern_word(uint64_t seed, size_t k)
{
	uint64_t x = seed + k * 0x9e3779b97f4a7c15ULL;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	return x ^ (x >> 29);
}

static unsigned char pattern_byte(uint64_t seed, size_t i)
{
	return (unsigned char)(pattern_word(seed, i / 8) >> (i % 8 * 8));
}

/* Stamp bytes [@from, b->size) of @b. */
static void stamp(const struct block *b, size_t from)
{
	size_t i = from;

	for (; i < b->size && i % 8; i++)
		b->p[i] = pattern_byte(b->seed, i);
	for (; i + 8 <= b->size; i += 8) {
		uint64_t w = pattern_word(b->seed, i / 8);

		memcpy(b->p + i, &w, 8);
	}
	for (; i < b->size; i++)
		b->p[i] = pattern_byte(b->seed, i);
}

/* The first byte of [0, @len) that is not the pattern, or @len. */
static size_t mismatch(const struct block *b, size_t len)
{
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w = pattern_word(b->seed, i / 8), got;

		memcpy(&got, b->p + i, 8);
		if (got != w)
			break;
	}
	for (; i < len; i++)
		if (b->p[i] != pattern_byte(b->seed, i))
			return i;
	return len;
}

static void report_bad(struct thread *t, const struct block *b, size_t at,
		       const char *what)
{
	if (t->bad_blocks++ < 5)
		fprintf(stderr, "pid %d thread %d: %s: block %p of %zu bytes: byte %zu is %#x, not %#x\n",
			getpid(), t->index, what, (void *)b->p, b->size, at,
			b->p[at], pattern_byte(b->seed, at));
}

/* Check all of @b and free it. */
static void check_and_free(struct thread *t, struct block *b, const char *how)
{
	size_t at = mismatch(b, b->size);

	if (at != b->size)
		report_bad(t, b, at, how);
	ka_free(b->p);
	b->p = NULL;
	t->frees++;
}

/*
 * A size: mostly small (up to 1 KiB), some medium (up to 256 KiB), a few
 * above 1 MiB (up to 4 MiB: liballoc's large blocks, and above 2 MiB its
 * huge ones, each a region of its own) while the thread keeps fewer than
 * LARGE_LIVE of those, so that 16 threads stay well inside a 1 GiB guest.
 */
static size_t pick_size(struct thread *t)
{
	uint64_t r = next(&t->rng) % 1000;

	if (r < 15 && t->large_live < LARGE_LIVE)
		return MiB + 1 + next(&t->rng) % (3 * MiB);
	if (r < 200)
		return 1025 + next(&t->rng) % (256 * 1024 - 1024);
	return 1 + next(&t->rng) % 1024;
}

static void track_large(struct thread *t, size_t size, int sign)
{
	if (size > MiB)
		t->large_live += sign;
}

static bool alloc_block(struct thread *t, struct block *b)
{
	size_t size = pick_size(t);

	b->seed = next(&t->rng);
	if (next(&t->rng) % 4 == 0) {
		/* calloc: n elements of 1, 8 or 24 bytes, all zero */
		static const size_t elem[] = { 1, 8, 24 };
		size_t e = elem[next(&t->rng) % 3];
		size_t n = (size + e - 1) / e;

		b->size = n * e;
		b->p = ka_calloc(n, e);
		if (!b->p)
			return false;
		for (size_t i = 0; i < b->size; i++) {
			if (b->p[i]) {
				if (t->bad_blocks++ < 5)
					fprintf(stderr, "pid %d thread %d: calloc(%zu, %zu): byte %zu is %#x\n",
						getpid(), t->index, n, e, i, b->p[i]);
				break;
			}
		}
		t->callocs++;
	} else {
		b->size = size;
		b->p = ka_malloc(size);
		if (!b->p)
			return false;
		t->mallocs++;
	}
	if (ka_malloc_usable_size(b->p) < b->size && t->bad_blocks++ < 5)
		fprintf(stderr, "pid %d thread %d: usable size %zu of a %zu-byte block\n",
			getpid(), t->index, ka_malloc_usable_size(b->p), b->size);
	track_large(t, b->size, 1);
	t->large += b->size > MiB;
	stamp(b, 0);
	return true;
}

/* realloc: the common prefix must survive; the rest is stamped afresh. */
static bool realloc_block(struct thread *t, struct block *b)
{
	size_t old = b->size, size = pick_size(t), keep = old < size ? old : size;
	size_t at = mismatch(b, old);
	unsigned char *p;

	if (at != old)
		report_bad(t, b, at, "before realloc");
	p = ka_realloc(b->p, size);
	if (!p)
		return false;
	track_large(t, old, -1);
	track_large(t, size, 1);
	t->large += size > MiB;
	b->p = p;
	b->size = size;
	at = mismatch(b, keep);
	if (at != keep)
		report_bad(t, b, at, "after realloc");
	stamp(b, keep);
	t->reallocs++;
	return true;
}

/* Free what other threads handed us. */
static void drain(struct thread *t)
{
	struct block local[MAILBOX];
	unsigned int n;

	pthread_mutex_lock(&t->box.lock);
	n = t->box.n;
	memcpy(local, t->box.blocks, n * sizeof(local[0]));
	t->box.n = 0;
	pthread_mutex_unlock(&t->box.lock);
	for (unsigned int i = 0; i < n; i++) {
		check_and_free(t, &local[i], "freed by another thread");
		t->cross_frees++;
	}
}

/* Hand @b to another thread to free; false if its mailbox is full. */
static bool hand_over(struct thread *t, struct block *b)
{
	struct thread *to;
	bool done = false;

	if (nthreads < 2)
		return false;
	to = &threads[(t->index + 1 + next(&t->rng) % (nthreads - 1)) % nthreads];
	pthread_mutex_lock(&to->box.lock);
	if (to->box.n < MAILBOX) {
		to->box.blocks[to->box.n++] = *b;
		done = true;
	}
	pthread_mutex_unlock(&to->box.lock);
	if (done) {
		track_large(t, b->size, -1);
		b->p = NULL;
	}
	return done;
}

static void *thread_main(void *arg)
{
	struct thread *t = arg;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		struct block *b = &t->slots[next(&t->rng) % SLOTS];
		unsigned int op = next(&t->rng) % 16;

		t->ops++;
		if (!b->p) {
			if (!alloc_block(t, b)) {
				fprintf(stderr, "pid %d: allocation failed: %s\n",
					getpid(), strerror(errno));
				t->bad_blocks++;
				break;
			}
		} else if (op < 7) {
			track_large(t, b->size, -1);
			check_and_free(t, b, "freed by its thread");
		} else if (op < 11) {
			if (!realloc_block(t, b)) {
				fprintf(stderr, "pid %d: realloc failed: %s\n",
					getpid(), strerror(errno));
				t->bad_blocks++;
				break;
			}
		} else if (!hand_over(t, b)) {
			track_large(t, b->size, -1);
			check_and_free(t, b, "freed by its thread");
		}
		if (t->ops % 64 == 0)
			drain(t);
	}
	for (int i = 0; i < SLOTS; i++) {
		if (t->slots[i].p) {
			track_large(t, t->slots[i].size, -1);
			check_and_free(t, &t->slots[i], "freed at the end");
		}
	}
	/* nobody hands anything over once all have passed this */
	pthread_barrier_wait(&all_stopped);
	drain(t);
	return NULL;
}

/* Rows of process @pid in /proc/kalloc, and their resident pages; -1 if unreadable. */
static long proc_rows(pid_t pid, long *resident)
{
	char line[512];
	bool in_rows = false;
	long rows = 0;
	FILE *f = fopen(KALLOC_PROC, "re");

	*resident = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long res;
		int row_pid;

		if (!in_rows) {
			in_rows = !strncmp(line, "id pid comm", 11);
			continue;
		}
		if (sscanf(line, "%*u %d %*s %*s %*u %*d %*u %lu", &row_pid, &res) == 2 &&
		    row_pid == pid) {
			rows++;
			*resident += res;
		}
	}
	fclose(f);
	return in_rows ? rows : -1;
}

static void sample(struct report *r)
{
	long resident, rows = proc_rows(getpid(), &resident);

	r->samples++;
	if (rows > 0 && resident > 0)
		r->samples_with_rows++;
	if (r->samples == 1 || rows < r->rows_min)
		r->rows_min = rows;
	if (rows > r->rows_max)
		r->rows_max = rows;
	if (resident > r->resident_max)
		r->resident_max = resident;
}

static int worker(int proc, unsigned int seconds, uint64_t seed, struct report *r)
{
	struct ka_stats st;
	long resident;
	int i;

	r->pid = getpid();
	ka_stats(&st);
	r->device = st.backend && !strcmp(st.backend, "device");
	pthread_barrier_init(&all_stopped, NULL, nthreads);
	for (i = 0; i < nthreads; i++) {
		struct thread *t = &threads[i];

		t->index = i;
		/* a stream of its own per thread; xorshift must not start at 0 */
		t->rng = seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(proc * MAX_THREADS + i + 1));
		t->rng |= 1;
		pthread_mutex_init(&t->box.lock, NULL);
		if (pthread_create(&t->tid, NULL, thread_main, t)) {
			fprintf(stderr, "pid %d: pthread_create failed\n", getpid());
			return 1;
		}
	}
	for (unsigned int s = 0; s < seconds; s++) {
		sleep(1);
		sample(r);
	}
	atomic_store(&stop, true);
	for (i = 0; i < nthreads; i++) {
		struct thread *t = &threads[i];

		pthread_join(t->tid, NULL);
		r->ops += t->ops;
		r->mallocs += t->mallocs;
		r->callocs += t->callocs;
		r->reallocs += t->reallocs;
		r->frees += t->frees;
		r->cross_frees += t->cross_frees;
		r->large += t->large;
		r->bad_blocks += t->bad_blocks;
	}
	/*
	 * Every block is freed: liballoc's regions are exactly our rows.  Its
	 * purge thread may give a cached huge region back meanwhile (the
	 * decay runs on), so the count must read the same before and after
	 * the rows, up to 50 tries 100 ms apart.
	 */
	for (int try = 0; try < 50; try++) {
		long before;

		ka_stats(&st);
		before = (long)st.regions;
		r->rows_end = proc_rows(getpid(), &resident);
		ka_stats(&st);
		r->regions_end = (long)st.regions;
		if (r->regions_end == before)
			break;
		usleep(100 * 1000);
	}
	r->done = true;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int seconds = 60, nprocs = 4;
	uint64_t seed = 1;
	struct report *reports;
	long ops = 0, sum[7] = { 0 };
	int opt, failed = 0;
	unsigned int i;

	while ((opt = getopt(argc, argv, "t:p:n:s:")) != -1) {
		switch (opt) {
		case 't':
			seconds = strtoul(optarg, NULL, 0);
			break;
		case 'p':
			nprocs = strtoul(optarg, NULL, 0);
			break;
		case 'n':
			nthreads = strtol(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr, "usage: %s [-t SECONDS] [-p PROCS] [-n THREADS] [-s SEED]\n",
				argv[0]);
			return 2;
		}
	}
	if (!seconds || !nprocs || nprocs > MAX_PROCS || nthreads < 1 ||
	    nthreads > MAX_THREADS) {
		fprintf(stderr, "%s: 1..%d processes, 1..%d threads, seconds > 0\n",
			argv[0], MAX_PROCS, MAX_THREADS);
		return 2;
	}
	/* not from liballoc: the parent allocates nothing from it */
	reports = mmap(NULL, MAX_PROCS * sizeof(*reports), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (reports == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	fflush(NULL);
	for (i = 0; i < nprocs; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid == 0)
			_exit(worker(i, seconds, seed, &reports[i]));
		reports[i].pid = pid;
	}

	for (i = 0; i < nprocs; i++) {
		struct report *r = &reports[i];
		long resident, rows;
		int status;

		if (waitpid(r->pid, &status, 0) != r->pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) || !r->done) {
			fprintf(stderr, "worker %d: status %#x, %s\n", r->pid, status,
				r->done ? "finished" : "did not finish");
			failed = 1;
		}
		if (!r->device) {
			fprintf(stderr, "worker %d: liballoc is not on the device backend\n", r->pid);
			failed = 1;
		}
		if (!r->samples || r->samples_with_rows != r->samples) {
			fprintf(stderr, "worker %d: %u of %u samples of /proc/kalloc showed its rows\n",
				r->pid, r->samples_with_rows, r->samples);
			failed = 1;
		}
		if (r->rows_end != r->regions_end) {
			fprintf(stderr, "worker %d: %ld rows in /proc/kalloc, liballoc has %ld regions\n",
				r->pid, r->rows_end, r->regions_end);
			failed = 1;
		}
		if (r->bad_blocks)
			failed = 1;
		/* it has exited: none of its regions may be left */
		rows = proc_rows(r->pid, &resident);
		if (rows < 0) {
			fprintf(stderr, "cannot read " KALLOC_PROC "\n");
			failed = 1;
		} else if (rows) {
			fprintf(stderr, "worker %d exited, /proc/kalloc still shows %ld rows (%ld pages)\n",
				r->pid, rows, resident);
			failed = 1;
		}
		printf("worker %d device %d samples %u samples_with_rows %u rows_min %ld rows_max %ld resident_max %ld rows_end %ld regions_end %ld rows_after_exit %ld ops %ld bad_blocks %ld\n",
		       r->pid, r->device, r->samples, r->samples_with_rows, r->rows_min,
		       r->rows_max, r->resident_max, r->rows_end, r->regions_end, rows,
		       r->ops, r->bad_blocks);
		ops += r->ops;
		sum[0] += r->mallocs;
		sum[1] += r->callocs;
		sum[2] += r->reallocs;
		sum[3] += r->frees;
		sum[4] += r->cross_frees;
		sum[5] += r->large;
		sum[6] += r->bad_blocks;
	}
	printf("procs %u\nthreads %d\nseconds %u\nops %ld\nmallocs %ld\ncallocs %ld\n"
	       "reallocs %ld\nfrees %ld\ncross_thread_frees %ld\nblocks_over_1MiB %ld\n"
	       "bad_blocks %ld\nresult %s\n",
	       nprocs, nthreads, seconds, ops, sum[0], sum[1], sum[2], sum[3], sum[4],
	       sum[5], sum[6], failed ? "fail" : "pass");
	return failed;
}
