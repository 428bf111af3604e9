/* SPDX-License-Identifier: MIT */
/*
 * frag: fragmentation with a long-lived fraction.  e rounds; round r
 * allocates n blocks of log-uniform sizes in [s, S] scaled by 2^(r % 3)
 * (so holes left by one round fit the next one badly), keeps one block in
 * k for good and frees the rest.  Reports peak RSS (maxrss_kb), the RSS
 * right after the last round (final_rss_kb), again after sleeping w ms and
 * a little more malloc/free traffic (settled_rss_kb: allocators that
 * return memory late or on their slow path get the chance), and the bytes
 * still live (live_kb): RSS over live_kb is the fragmentation overhead.
 * ops: malloc/free calls.
 */
#include "common.h"

static const char help[] =
	"  -n blocks per round (1M)  -e rounds (6)  -k keep 1 in k (10)\n"
	"  -s/-S sizes (16/1024)  -w settle ms (0: do not wait)\n";

int main(int argc, char **argv)
{
	struct bench_opts o = { .n = 1000000, .t = 1, .s = 16, .S = 1024, .k = 10,
				.e = 6, .w = 0, .seed = 1 };
	bench_parse(argc, argv, &o, help);

	uint64_t rng = bench_seed(o.seed, 0);
	size_t n = (size_t)o.n, kept_cap = n * (size_t)o.e / (size_t)o.k + (size_t)o.e;
	void **blk = bench_xmalloc(n * sizeof *blk);
	void **kept = bench_xmalloc(kept_cap * sizeof *kept);
	size_t nkept = 0, live = 0;
	double ops = 0;

	double t0 = bench_now();
	for (long r = 0; r < o.e; r++) {
		size_t lo = (size_t)o.s << (r % 3), hi = (size_t)o.S << (r % 3);
		for (size_t i = 0; i < n; i++) {
			size_t sz = bench_logrange(&rng, lo, hi);
			char *p = malloc(sz);
			if (!p) {
				fprintf(stderr, "malloc(%zu) failed\n", sz);
				return 1;
			}
			memset(p, (int)i, sz < 128 ? sz : 128);
			blk[i] = p;
			if (i % (size_t)o.k == 0 && nkept < kept_cap) {
				kept[nkept++] = p;
				live += sz;
				blk[i] = NULL;
			}
		}
		for (size_t i = 0; i < n; i++)
			free(blk[i]);
		ops += 2.0 * (double)n;
	}
	double wall = bench_now() - t0;
	long final_rss = bench_rss_kb(), settled = final_rss;
	if (o.w > 0) {
		struct timespec ts = { o.w / 1000, (o.w % 1000) * 1000000 };
		nanosleep(&ts, NULL);
		for (int i = 0; i < 1000; i++) {
			void *p = malloc(bench_logrange(&rng, (size_t)o.s, (size_t)o.S));
			bench_escape(p);
			free(p);
		}
		settled = bench_rss_kb();
	}
	char extra[256];
	snprintf(extra, sizeof extra,
		 ", \"final_rss_kb\": %ld, \"settled_rss_kb\": %ld, \"live_kb\": %zu",
		 final_rss, settled, live / 1024);
	bench_report("frag", &o, wall, ops, extra);
	for (size_t i = 0; i < nkept; i++)
		free(kept[i]);
	free(kept);
	free(blk);
	return 0;
}
