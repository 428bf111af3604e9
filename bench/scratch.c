/* SPDX-License-Identifier: MIT */
/*
 * scratch: passive false sharing, after Hoard's cache-scratch.  The main
 * thread allocates one small block (S bytes, default 8) per thread, back
 * to back, and hands each to a thread, which frees it.  Each thread then
 * n times: mallocs an S-byte block, writes every byte of it w times, frees
 * it.  An allocator that gives a thread memory freed by another thread
 * puts several threads' blocks in one cache line, and the writes bounce
 * it between cores.  ops: writes (n * w * S per thread).
 */
#include <pthread.h>

#include "common.h"

static const char help[] =
	"  -t threads (2)  -n malloc/free per thread (100k)  -S block bytes (8)\n"
	"  -w writes of each byte per block (100)\n";

static struct bench_opts O;

struct arg {
	char *first;
};

static void *worker(void *p)
{
	struct arg *a = p;
	size_t sz = (size_t)O.S;

	free(a->first);
	for (long i = 0; i < O.n; i++) {
		volatile char *b = malloc(sz);
		for (long w = 0; w < O.w; w++)
			for (size_t j = 0; j < sz; j++)
				b[j] = (char)(b[j] + 1);
		free((void *)b);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	O = (struct bench_opts){ .n = 100000, .t = 2, .s = 1, .S = 8, .k = 1, .e = 1,
				 .w = 100, .seed = 1 };
	bench_parse(argc, argv, &O, help);

	size_t t = (size_t)O.t;
	pthread_t *th = bench_xmalloc(t * sizeof *th);
	struct arg *args = bench_xmalloc(t * sizeof *args);
	for (size_t i = 0; i < t; i++)
		args[i].first = bench_xmalloc((size_t)O.S);

	double t0 = bench_now();
	for (size_t i = 0; i < t; i++)
		bench_spawn(&th[i], worker, &args[i]);
	for (size_t i = 0; i < t; i++)
		pthread_join(th[i], NULL);
	double wall = bench_now() - t0;
	bench_report("scratch", &O, wall, (double)O.n * (double)O.w * (double)O.S * (double)t, "");
	free(args);
	free(th);
	return 0;
}
