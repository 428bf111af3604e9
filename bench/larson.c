/* SPDX-License-Identifier: MIT */
/*
 * larson: a server simulation after Larson and Krishnan's benchmark.  Each
 * of t threads owns an array of k blocks (sizes in [s, S]); it replaces a
 * random block n times (free, then malloc a new random size, write it).
 * Then it exits and a new thread takes its array over: every block the old
 * thread allocated is freed by another thread, while the allocator has to
 * cope with threads coming and going.  e generations.  ops: malloc/free
 * pairs.
 */
#include <pthread.h>

#include "common.h"

static const char help[] =
	"  -t threads (2)  -n replacements per thread per generation (200k)\n"
	"  -k blocks per thread (1000)  -s/-S sizes (8/1000)  -e generations (10)\n";

struct arr {
	void **blk;
	uint64_t rng;
	const struct bench_opts *o;
};

static void *worker(void *arg)
{
	struct arr *a = arg;
	const struct bench_opts *o = a->o;
	size_t k = (size_t)o->k;

	for (long i = 0; i < o->n; i++) {
		size_t j = (size_t)(bench_rand(&a->rng) % k);
		size_t sz = bench_range(&a->rng, (size_t)o->s, (size_t)o->S);
		free(a->blk[j]);
		char *p = malloc(sz);
		p[0] = 1;
		p[sz - 1] = 2;
		a->blk[j] = p;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct bench_opts o = { .n = 200000, .t = 2, .s = 8, .S = 1000, .k = 1000,
				.e = 10, .w = 0, .seed = 1 };
	bench_parse(argc, argv, &o, help);

	size_t t = (size_t)o.t, k = (size_t)o.k;
	struct arr *arrs = bench_xmalloc(t * sizeof *arrs);
	pthread_t *th = bench_xmalloc(t * sizeof *th);
	for (size_t i = 0; i < t; i++) {
		arrs[i].blk = bench_xmalloc(k * sizeof(void *));
		arrs[i].rng = bench_seed(o.seed, i);
		arrs[i].o = &o;
		for (size_t j = 0; j < k; j++)
			arrs[i].blk[j] = bench_xmalloc(bench_range(&arrs[i].rng,
					(size_t)o.s, (size_t)o.S));
	}

	double t0 = bench_now();
	for (long g = 0; g < o.e; g++) {
		for (size_t i = 0; i < t; i++)
			bench_spawn(&th[i], worker, &arrs[i]);
		for (size_t i = 0; i < t; i++)
			pthread_join(th[i], NULL);
	}
	double wall = bench_now() - t0;
	bench_report("larson", &o, wall, (double)o.n * (double)t * (double)o.e, "");
	for (size_t i = 0; i < t; i++) {
		for (size_t j = 0; j < k; j++)
			free(arrs[i].blk[j]);
		free(arrs[i].blk);
	}
	free(arrs);
	free(th);
	return 0;
}
