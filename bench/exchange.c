/* SPDX-License-Identifier: MIT */
/*
 * exchange: every thread allocates and every thread frees the others'
 * blocks, after rpmalloc's rptest.  Each of t threads owns a ring of k
 * slots; in each of e rounds it replaces n random slots (free the old
 * block, malloc a new one of a log-uniform size in [s, S], 16 B - 16 KiB
 * by default, write its ends), then all threads meet at a barrier and
 * pass their rings one thread on.  So each thread frees, next round, what
 * its neighbour allocated: about k / t of every thread's frees are
 * cross-thread frees while the owner is alive and allocating, over the
 * whole range of small and medium classes.  ops: malloc/free pairs.
 */
#include <pthread.h>

#include "common.h"

static const char help[] =
	"  -t threads (2)  -n replacements per thread per round (20k)\n"
	"  -k slots per ring (2000)  -s/-S sizes (16/16384, log-uniform)  -e rounds (20)\n";

static struct bench_opts O;
static void ***rings;		/* rings[i]: the ring thread i works on next */
static pthread_barrier_t round_end;

static void *worker(void *arg)
{
	size_t self = (size_t)(uintptr_t)arg, t = (size_t)O.t, k = (size_t)O.k;
	uint64_t rng = bench_seed(O.seed, self);

	for (long e = 0; e < O.e; e++) {
		void **ring = rings[(self + (size_t)e) % t];
		for (long i = 0; i < O.n; i++) {
			size_t j = (size_t)(bench_rand(&rng) % k);
			size_t sz = bench_logrange(&rng, (size_t)O.s, (size_t)O.S);
			free(ring[j]);
			char *p = malloc(sz);
			if (!p) {
				fprintf(stderr, "exchange: out of memory\n");
				exit(1);
			}
			p[0] = 1;
			p[sz - 1] = 2;
			ring[j] = p;
		}
		/* Next round the ring goes to the next thread. */
		pthread_barrier_wait(&round_end);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	O = (struct bench_opts){ .n = 20000, .t = 2, .s = 16, .S = 16384, .k = 2000,
				 .e = 20, .w = 0, .seed = 1 };
	bench_parse(argc, argv, &O, help);

	size_t t = (size_t)O.t, k = (size_t)O.k;
	pthread_t *th = bench_xmalloc(t * sizeof *th);
	rings = bench_xmalloc(t * sizeof *rings);
	for (size_t i = 0; i < t; i++) {
		rings[i] = bench_xmalloc(k * sizeof(void *));
		memset(rings[i], 0, k * sizeof(void *));
	}
	pthread_barrier_init(&round_end, NULL, (unsigned)t);

	double t0 = bench_now();
	for (size_t i = 0; i < t; i++)
		bench_spawn(&th[i], worker, (void *)(uintptr_t)i);
	for (size_t i = 0; i < t; i++)
		pthread_join(th[i], NULL);
	double wall = bench_now() - t0;
	bench_report("exchange", &O, wall, (double)O.n * (double)t * (double)O.e, "");
	for (size_t i = 0; i < t; i++) {
		for (size_t j = 0; j < k; j++)
			free(rings[i][j]);
		free(rings[i]);
	}
	free(rings);
	free(th);
	pthread_barrier_destroy(&round_end);
	return 0;
}
