/* SPDX-License-Identifier: MIT */
/*
 * retain: does freed memory go back, and does freed memory of one kind
 * serve another?  Three phases, each reporting its own peak RSS (VmHWM,
 * reset between phases through /proc/self/clear_refs) and the RSS after
 * everything it allocated is freed and the program has slept w ms
 * without calling malloc (a program idle after its last free):
 *
 *   huge    k blocks of 16 MiB written and freed, then n MiB in blocks
 *           of s bytes (2000) written, then all freed.  The small blocks
 *           should reuse the memory the huge ones gave up.
 *   thread  a thread allocates n MiB in blocks of s bytes and exits; the
 *           main thread frees them all (memory of an exited thread).
 *   churn   t threads replace random blocks of 16 B..2s bytes in a shared
 *           table of n/8 MiB worth of slots (most frees cross threads),
 *           e times the table's size each; then all freed.
 *
 * ops: malloc/free calls; wall_s excludes the sleeps.
 */
#include <fcntl.h>
#include <stdatomic.h>

#include "common.h"

static const char help[] =
	"  -n MiB per phase (128)  -k 16 MiB blocks (8)  -s small block bytes (2000)\n"
	"  -t churn threads (16)  -e churn rounds (4)  -w idle ms after the frees (3000)\n";

static struct bench_opts o = { .n = 128, .t = 16, .s = 2000, .S = 2000, .k = 8,
			       .e = 4, .w = 3000, .seed = 1 };

/* VmHWM starts again from the current RSS (Linux 4.0 and later). */
static void hwm_reset(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, "5", 1) != 1)
			perror("clear_refs");
		close(fd);
	}
}

static void idle(void)
{
	struct timespec ts = { o.w / 1000, (o.w % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void *xmalloc_touch(size_t sz)
{
	char *p = bench_xmalloc(sz);

	/* one write per 4 KiB page, the way a program fills a block */
	for (size_t i = 0; i < sz; i += 4096)
		p[i] = (char)i;
	p[sz - 1] = 1;
	return p;
}

static double ops;

struct phase {
	long peak_kb, idle_kb;
	double wall;
};

static void small_fill(void **blk, size_t nb)
{
	for (size_t i = 0; i < nb; i++)
		blk[i] = xmalloc_touch((size_t)o.s);
	ops += (double)nb;
}

static void small_free(void **blk, size_t nb)
{
	for (size_t i = 0; i < nb; i++)
		free(blk[i]);
	ops += (double)nb;
}

static size_t small_count(void)
{
	return ((size_t)o.n << 20) / (size_t)o.s;
}

static void phase_huge(struct phase *ph, void **blk)
{
	void **big = bench_xmalloc((size_t)o.k * sizeof *big);
	size_t nb = small_count();
	double t0 = bench_now();

	for (long i = 0; i < o.k; i++)
		big[i] = xmalloc_touch(16UL << 20);
	for (long i = 0; i < o.k; i++)
		free(big[i]);
	ops += 2.0 * (double)o.k;
	small_fill(blk, nb);
	ph->peak_kb = bench_hwm_kb();
	small_free(blk, nb);
	ph->wall = bench_now() - t0;
	free(big);
	idle();
	ph->idle_kb = bench_rss_kb();
}

static void **thread_blk;

static void *thread_alloc(void *arg)
{
	(void)arg;
	small_fill(thread_blk, small_count());
	return NULL;
}

static void phase_thread(struct phase *ph, void **blk)
{
	pthread_t th;
	double t0 = bench_now();

	thread_blk = blk;
	bench_spawn(&th, thread_alloc, NULL);
	pthread_join(th, NULL);
	ph->peak_kb = bench_hwm_kb();
	small_free(blk, small_count());
	ph->wall = bench_now() - t0;
	idle();
	ph->idle_kb = bench_rss_kb();
}

static void *_Atomic *churn_slots;
static size_t churn_nslots;
static _Atomic long churn_ops;

static void *churn_worker(void *arg)
{
	uint64_t rng = bench_seed(o.seed, (unsigned long)(uintptr_t)arg + 1);
	size_t n = churn_nslots * (size_t)o.e / (size_t)o.t;

	for (size_t i = 0; i < n; i++) {
		size_t sz = bench_logrange(&rng, 16, 2 * (size_t)o.s);
		char *p = bench_xmalloc(sz);
		p[0] = p[sz - 1] = 1;
		void *old = atomic_exchange_explicit(&churn_slots[bench_rand(&rng) % churn_nslots],
						     p, memory_order_acq_rel);
		free(old);
	}
	atomic_fetch_add(&churn_ops, 2 * (long)n);
	return NULL;
}

static void phase_churn(struct phase *ph)
{
	/* log-uniform 16 B..2s averages about (2s - 16) / ln(2s / 16) bytes */
	churn_nslots = ((size_t)o.n << 20) / 8 / 600;
	churn_slots = bench_xmalloc(churn_nslots * sizeof *churn_slots);
	for (size_t i = 0; i < churn_nslots; i++)
		atomic_init(&churn_slots[i], NULL);
	ph->wall = bench_run_threads((size_t)o.t, churn_worker);
	ph->peak_kb = bench_hwm_kb();
	for (size_t i = 0; i < churn_nslots; i++)
		free(atomic_load(&churn_slots[i]));
	ops += (double)atomic_load(&churn_ops) + (double)churn_nslots;
	free(churn_slots);
	idle();
	ph->idle_kb = bench_rss_kb();
}

int main(int argc, char **argv)
{
	bench_parse(argc, argv, &o, help);
	o.S = o.s;

	void **blk = bench_xmalloc(small_count() * sizeof *blk);
	struct phase huge, thread, churn;
	long base = bench_rss_kb();

	hwm_reset();
	phase_huge(&huge, blk);
	hwm_reset();
	phase_thread(&thread, blk);
	hwm_reset();
	phase_churn(&churn);
	free(blk);

	long peak = huge.peak_kb;
	if (thread.peak_kb > peak)
		peak = thread.peak_kb;
	if (churn.peak_kb > peak)
		peak = churn.peak_kb;
	bench_peak_floor_kb = peak;	/* maxrss_kb: the peak of all three */
	char extra[512];
	snprintf(extra, sizeof extra,
		 ", \"base_kb\": %ld, \"peak_kb\": %ld"
		 ", \"huge_peak_kb\": %ld, \"huge_idle_kb\": %ld, \"huge_s\": %.4f"
		 ", \"thread_peak_kb\": %ld, \"thread_idle_kb\": %ld, \"thread_s\": %.4f"
		 ", \"churn_peak_kb\": %ld, \"churn_idle_kb\": %ld, \"churn_s\": %.4f",
		 base, peak, huge.peak_kb, huge.idle_kb, huge.wall,
		 thread.peak_kb, thread.idle_kb, thread.wall,
		 churn.peak_kb, churn.idle_kb, churn.wall);
	bench_report("retain", &o, huge.wall + thread.wall + churn.wall, ops, extra);
	return 0;
}
