/* SPDX-License-Identifier: MIT */
/*
 * simple: one thread, malloc/free of mixed small sizes, like glibc's
 * bench-malloc-simple.  Each round allocates a batch of k blocks of sizes
 * in [s, S] (log-uniform, precomputed), writes a word into each, then
 * frees them in the order given by w: 0 = LIFO, 1 = FIFO, 2 = alternating
 * (every even block first, then the odd ones).  Rounds rotate through the
 * three orders when w is 3 (default).  ops: malloc/free pairs.
 */
#include "common.h"

static const char help[] =
	"  -n pairs (default 10M)  -k batch (100)  -s/-S sizes (16/512)  -w order 0-3 (3)\n";

int main(int argc, char **argv)
{
	struct bench_opts o = { .n = 10000000, .t = 1, .s = 16, .S = 512, .k = 100,
				.e = 1, .w = 3, .seed = 1 };
	bench_parse(argc, argv, &o, help);

	size_t k = (size_t)o.k, nsizes = 4096;
	size_t *sizes = bench_xmalloc(nsizes * sizeof *sizes);
	void **blk = bench_xmalloc(k * sizeof *blk);
	uint64_t rng = bench_seed(o.seed, 0);
	for (size_t i = 0; i < nsizes; i++)
		sizes[i] = bench_logrange(&rng, (size_t)o.s, (size_t)o.S);

	long rounds = (o.n + o.k - 1) / o.k;
	size_t si = 0;
	double t0 = bench_now();
	for (long r = 0; r < rounds; r++) {
		for (size_t i = 0; i < k; i++) {
			char *p = malloc(sizes[si]);
			si = (si + 1) & (nsizes - 1);
			*p = (char)i;
			bench_escape(p);
			blk[i] = p;
		}
		long order = o.w == 3 ? r % 3 : o.w;
		if (order == 0) {
			for (size_t i = k; i-- > 0;)
				free(blk[i]);
		} else if (order == 1) {
			for (size_t i = 0; i < k; i++)
				free(blk[i]);
		} else {
			for (size_t i = 0; i < k; i += 2)
				free(blk[i]);
			for (size_t i = 1; i < k; i += 2)
				free(blk[i]);
		}
	}
	double wall = bench_now() - t0;
	bench_report("simple", &o, wall, (double)rounds * (double)k, "");
	free(blk);
	free(sizes);
	return 0;
}
