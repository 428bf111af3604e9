/* SPDX-License-Identifier: MIT */
/*
 * Shared by the bench/ workloads: options, a fast RNG, the clock, and the
 * one JSON line each program prints.
 *
 * Every workload takes the same option letters (each uses the ones that
 * make sense to it):
 *   -n N   operations (per thread where the program has threads)
 *   -t N   threads
 *   -s N   smallest block, bytes          -S N   largest block, bytes
 *   -k N   live slots per thread           -e N   epochs / rounds
 *   -w N   workload-specific (writes per block, settle ms, ...)
 *   -r N   RNG seed
 * and prints one JSON object on stdout: the parameters, wall_s, ops,
 * maxrss_kb (peak RSS: VmHWM, see bench_hwm_kb), ru_maxrss_kb, minflt and
 * majflt (getrusage), and malloc_from (the
 * object that defines the malloc this process calls, to show that
 * LD_PRELOAD took).
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct bench_opts {
	long n, t, s, S, k, e, w;
	unsigned long seed;
};

static inline void bench_usage(const char *prog, const char *help)
{
	fprintf(stderr, "usage: %s [-n ops] [-t threads] [-s min] [-S max] [-k slots] "
		"[-e epochs] [-w N] [-r seed]\n%s", prog, help);
	exit(2);
}

static inline long bench_num(const char *prog, const char *help, const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || v < 0)
		bench_usage(prog, help);
	/* k, m, g suffixes: binary multiples. */
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end)
		bench_usage(prog, help);
	return v;
}

static inline void bench_parse(int argc, char **argv, struct bench_opts *o, const char *help)
{
	int c;

	while ((c = getopt(argc, argv, "n:t:s:S:k:e:w:r:h")) != -1) {
		long v = c == 'h' || c == '?' ? 0 : bench_num(argv[0], help, optarg);

		switch (c) {
		case 'n': o->n = v; break;
		case 't': o->t = v; break;
		case 's': o->s = v; break;
		case 'S': o->S = v; break;
		case 'k': o->k = v; break;
		case 'e': o->e = v; break;
		case 'w': o->w = v; break;
		case 'r': o->seed = (unsigned long)v; break;
		default: bench_usage(argv[0], help);
		}
	}
	if (optind != argc || o->t < 1 || o->s < 1 || o->S < o->s || o->k < 1 ||
	    o->e < 1 || o->n < 1)
		bench_usage(argv[0], help);
}

/* xorshift64*: cheap enough not to show up in the profile. */
static inline uint64_t bench_rand(uint64_t *st)
{
	uint64_t x = *st;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*st = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static inline uint64_t bench_seed(unsigned long seed, unsigned long stream)
{
	uint64_t s = (seed + 1) * 0x9E3779B97F4A7C15ULL + stream * 0xBF58476D1CE4E5B9ULL;

	return s ? s : 1;
}

/* Uniform in [lo, hi]. */
static inline size_t bench_range(uint64_t *st, size_t lo, size_t hi)
{
	return lo + (size_t)(bench_rand(st) % (hi - lo + 1));
}

/* Log-uniform in [lo, hi]: as many blocks per doubling, like real programs. */
static inline size_t bench_logrange(uint64_t *st, size_t lo, size_t hi)
{
	unsigned lb = 63 - (unsigned)__builtin_clzll(lo), hb = 63 - (unsigned)__builtin_clzll(hi);
	unsigned b = lb + (unsigned)(bench_rand(st) % (hb - lb + 1));
	size_t base = (size_t)1 << b;
	size_t v = base + (size_t)(bench_rand(st) % base);

	return v < lo ? lo : v > hi ? hi : v;
}

/* Keep the compiler from eliding a malloc/free pair or a store. */
static inline void bench_escape(void *p)
{
	__asm__ volatile("" : : "g"(p) : "memory");
}

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Start @fn(@arg) in a new thread, or stop the benchmark saying why. */
static inline void bench_spawn(pthread_t *th, void *(*fn)(void *), void *arg)
{
	if (pthread_create(th, NULL, fn, arg) != 0) {
		fprintf(stderr, "pthread_create failed\n");
		exit(1);
	}
}

/* Run @worker in @t threads, each given its index; the wall time taken. */
static inline double bench_run_threads(size_t t, void *(*worker)(void *))
{
	pthread_t *th = malloc(t * sizeof(*th));
	double t0 = bench_now();

	if (!th) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < t; i++)
		bench_spawn(&th[i], worker, (void *)(uintptr_t)i);
	for (size_t i = 0; i < t; i++)
		pthread_join(th[i], NULL);
	t0 = bench_now() - t0;
	free(th);
	return t0;
}

/* Resident set now, in KiB, from /proc/self/statm. */
static inline long bench_rss_kb(void)
{
	long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = -1;
	fclose(f);
	return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

/*
 * Peak resident set in KiB: VmHWM of /proc/self/status.  getrusage's
 * ru_maxrss is not used for this because Linux carries it across exec: a
 * program started by a 20 MiB Python runner would report at least 20 MiB.
 * It is printed too, as ru_maxrss_kb.
 */
static inline long bench_hwm_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* A workload that resets VmHWM between its phases sets the peak of them
 * all here: maxrss_kb reports the larger of the two. */
static long bench_peak_floor_kb;

static inline const char *bench_malloc_from(void)
{
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");

	if (sym && dladdr(sym, &info) && info.dli_fname)
		return info.dli_fname;
	return "?";
}

/*
 * The JSON line.  extra: more "key": value pairs, already formatted,
 * starting with a comma (or "").
 */
static inline void bench_report(const char *name, const struct bench_opts *o,
				double wall, double ops, const char *extra)
{
	struct rusage ru;
	long hwm = bench_hwm_kb();

	getrusage(RUSAGE_SELF, &ru);
	printf("{\"bench\": \"%s\", \"n\": %ld, \"threads\": %ld, \"min\": %ld, \"max\": %ld, "
	       "\"slots\": %ld, \"epochs\": %ld, \"w\": %ld, \"seed\": %lu, "
	       "\"wall_s\": %.6f, \"ops\": %.0f, \"ns_per_op\": %.2f, \"maxrss_kb\": %ld, "
	       "\"ru_maxrss_kb\": %ld, "
	       "\"minflt\": %ld, \"majflt\": %ld, \"utime_s\": %.4f, \"stime_s\": %.4f, "
	       "\"malloc_from\": \"%s\"%s}\n",
	       name, o->n, o->t, o->s, o->S, o->k, o->e, o->w, o->seed,
	       wall, ops, ops > 0 ? wall * 1e9 / ops : 0.0,
	       hwm > bench_peak_floor_kb ? hwm : bench_peak_floor_kb, ru.ru_maxrss,
	       ru.ru_minflt, ru.ru_majflt,
	       (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6,
	       bench_malloc_from(), extra);
	fflush(stdout);
}

static inline void *bench_xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fprintf(stderr, "malloc(%zu) failed\n", n);
		exit(1);
	}
	return p;
}

#endif /* BENCH_COMMON_H */
