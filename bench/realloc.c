/* SPDX-License-Identifier: MIT */
/*
 * realloc: random sizes with realloc growth, after alloc-test.  Each
 * thread keeps k slots.  n times it picks a random slot: an empty slot
 * gets malloc of a log-uniform size in [s, S]; a full one is grown by
 * realloc to 1.25-2x (its new tail written) while under S, else freed.
 * Sizes per doubling are even, so most blocks are small and a few grow
 * large, as strings and vectors do.  ops: malloc + realloc + free calls.
 */
#include <pthread.h>

#include "common.h"

static const char help[] =
	"  -t threads (1)  -n operations per thread (2M)  -k slots (4096)\n"
	"  -s/-S sizes (8/64k)\n";

static struct bench_opts O;

static void *worker(void *arg)
{
	uint64_t rng = bench_seed(O.seed, (uintptr_t)arg);
	size_t k = (size_t)O.k;
	char **blk = calloc(k, sizeof *blk);
	size_t *len = calloc(k, sizeof *len);

	if (!blk || !len) {
		fprintf(stderr, "calloc failed\n");
		exit(1);
	}
	for (long i = 0; i < O.n; i++) {
		size_t j = (size_t)(bench_rand(&rng) % k);
		if (!blk[j]) {
			size_t sz = bench_logrange(&rng, (size_t)O.s, (size_t)O.S);
			blk[j] = malloc(sz);
			memset(blk[j], (int)j, sz < 64 ? sz : 64);
			len[j] = sz;
		} else if (len[j] < (size_t)O.S) {
			size_t sz = len[j] + len[j] * (1 + bench_rand(&rng) % 4) / 4;
			char *p = realloc(blk[j], sz);
			if (!p) {
				fprintf(stderr, "realloc(%zu) failed\n", sz);
				exit(1);
			}
			memset(p + len[j], (int)i, sz - len[j] < 64 ? sz - len[j] : 64);
			blk[j] = p;
			len[j] = sz;
		} else {
			free(blk[j]);
			blk[j] = NULL;
		}
	}
	for (size_t j = 0; j < k; j++)
		free(blk[j]);
	free(blk);
	free(len);
	return NULL;
}

int main(int argc, char **argv)
{
	O = (struct bench_opts){ .n = 2000000, .t = 1, .s = 8, .S = 65536, .k = 4096,
				 .e = 1, .w = 0, .seed = 1 };
	bench_parse(argc, argv, &O, help);

	size_t t = (size_t)O.t;
	double wall = bench_run_threads(t, worker);
	bench_report("realloc", &O, wall, (double)O.n * (double)t, "");
	return 0;
}
