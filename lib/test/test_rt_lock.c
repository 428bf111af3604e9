/* SPDX-License-Identifier: MIT */
/*
 * A real-time thread and an ordinary one share a CPU and allocate.  When
 * the real-time thread wakes while the other holds an allocator lock, it
 * must sleep until the lock is free, as on glibc's futex-based locks:
 * spinning with sched_yield() gives the CPU only to threads of its own
 * priority, so the holder would not run again until the kernel's
 * real-time throttling (sched_rt_runtime_us, 950 ms in every second)
 * let it, or never without throttling.
 *
 * Both threads are pinned to the first CPU the process may use; the
 * ordinary one allocates and frees 3 MiB blocks (liballoc takes a lock
 * for each) without a pause, the real-time one (SCHED_FIFO 1) does the
 * same after each 200 us sleep, for 2 s, timing each of its rounds.  Run
 * with and without LD_PRELOAD (run.sh); 77 without the privilege to set
 * SCHED_FIFO.  Exit 1 if a round took over 100 ms.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_bool stop;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void churn(void)
{
	char *volatile p = malloc(3 << 20);

	if (!p)
		abort();
	p[0] = 1;
	free(p);
}

static void *ordinary(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		churn();
	return NULL;
}

int main(void)
{
	struct sched_param fifo = { .sched_priority = 1 };
	cpu_set_t mask, one;
	pthread_t th;
	int cpu = 0, rounds = 0;
	double worst = 0;

	if (sched_getaffinity(0, sizeof(mask), &mask) != 0)
		return 1;
	while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &mask))
		cpu++;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one) != 0)
		return 1;
	churn();	/* liballoc set up before the real-time part */
	if (pthread_create(&th, NULL, ordinary, NULL) != 0)
		return 1;
	int err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &fifo);
	if (err) {
		atomic_store(&stop, true);
		pthread_join(th, NULL);
		printf("# SCHED_FIFO: %s\n", strerror(err));
		return err == EPERM ? 77 : 1;
	}
	double end = now() + 2;
	while (now() < end) {
		struct timespec nap = { 0, 200000 };

		nanosleep(&nap, NULL);
		double t0 = now();

		churn();
		double t = now() - t0;

		if (t > worst)
			worst = t;
		rounds++;
	}
	/* back to ordinary, so that the other thread finishes on this CPU */
	fifo.sched_priority = 0;
	pthread_setschedparam(pthread_self(), SCHED_OTHER, &fifo);
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	printf("# %d rounds of the real-time thread, the slowest %.3f ms\n", rounds, worst * 1e3);
	return worst > 0.1;
}
