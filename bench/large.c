/* SPDX-License-Identifier: MIT */
/*
 * large: large-block churn.  Each thread keeps k blocks of log-uniform
 * sizes in [s, S] (default 64 KiB to 8 MiB) and n times replaces a random
 * one, writing one byte in every 4 KiB page of the new block (a block
 * nobody touches costs nothing and shows nothing).  This is where an
 * allocator's choice between caching freed memory and returning it to the
 * kernel shows, in time, faults and RSS.  ops: malloc/free pairs.
 */
#include <pthread.h>

#include "common.h"

static const char help[] =
	"  -t threads (1)  -n replacements per thread (20k)  -k blocks (16)\n"
	"  -s/-S sizes (64k/8M)\n";

static struct bench_opts O;

static void *worker(void *arg)
{
	uint64_t rng = bench_seed(O.seed, (uintptr_t)arg);
	size_t k = (size_t)O.k;
	char **blk = calloc(k, sizeof *blk);

	if (!blk) {
		fprintf(stderr, "calloc failed\n");
		exit(1);
	}
	for (long i = 0; i < O.n; i++) {
		size_t j = (size_t)(bench_rand(&rng) % k);
		size_t sz = bench_logrange(&rng, (size_t)O.s, (size_t)O.S);
		free(blk[j]);
		char *p = malloc(sz);
		if (!p) {
			fprintf(stderr, "malloc(%zu) failed\n", sz);
			exit(1);
		}
		for (size_t off = 0; off < sz; off += 4096)
			p[off] = (char)i;
		p[sz - 1] = 1;
		blk[j] = p;
	}
	for (size_t j = 0; j < k; j++)
		free(blk[j]);
	free(blk);
	return NULL;
}

int main(int argc, char **argv)
{
	O = (struct bench_opts){ .n = 20000, .t = 1, .s = 65536, .S = 8 << 20, .k = 16,
				 .e = 1, .w = 0, .seed = 1 };
	bench_parse(argc, argv, &O, help);

	size_t t = (size_t)O.t;
	double wall = bench_run_threads(t, worker);
	bench_report("large", &O, wall, (double)O.n * (double)t, "");
	return 0;
}
