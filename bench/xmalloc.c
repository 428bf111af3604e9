/* SPDX-License-Identifier: MIT */
/*
 * xmalloc: producers and consumers, after xmalloc-test.  Half the threads
 * (at least one) allocate blocks of sizes in [s, S], write them, and pass
 * them in batches of 64 through a bounded queue to the other half, which
 * read and free them: every free is a cross-thread free while the
 * allocating thread is alive and busy.  n blocks per producer.  ops:
 * blocks allocated and freed.
 */
#include <pthread.h>

#include "common.h"

static const char help[] =
	"  -t threads (2: 1 producer, 1 consumer)  -n blocks per producer (2M)\n"
	"  -s/-S sizes (8/256)  -k queue depth in batches (64)\n";

#define BATCH 64

struct batch {
	void *p[BATCH];
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t nonempty, nonfull;
	struct batch **q;
	size_t head, len, cap;
	long producers_left;
} Q = { .lock = PTHREAD_MUTEX_INITIALIZER, .nonempty = PTHREAD_COND_INITIALIZER,
	.nonfull = PTHREAD_COND_INITIALIZER };

static struct bench_opts O;

static void push(struct batch *b)
{
	pthread_mutex_lock(&Q.lock);
	while (Q.len == Q.cap)
		pthread_cond_wait(&Q.nonfull, &Q.lock);
	Q.q[(Q.head + Q.len++) % Q.cap] = b;
	pthread_cond_signal(&Q.nonempty);
	pthread_mutex_unlock(&Q.lock);
}

/* NULL when every producer is done and the queue is empty. */
static struct batch *pop(void)
{
	struct batch *b = NULL;

	pthread_mutex_lock(&Q.lock);
	while (Q.len == 0 && Q.producers_left > 0)
		pthread_cond_wait(&Q.nonempty, &Q.lock);
	if (Q.len) {
		b = Q.q[Q.head];
		Q.head = (Q.head + 1) % Q.cap;
		Q.len--;
		pthread_cond_signal(&Q.nonfull);
	}
	pthread_mutex_unlock(&Q.lock);
	return b;
}

static void *producer(void *arg)
{
	uint64_t rng = bench_seed(O.seed, (uintptr_t)arg);
	long n = O.n;

	while (n > 0) {
		struct batch *b = malloc(sizeof *b);
		for (int i = 0; i < BATCH; i++) {
			size_t sz = bench_range(&rng, (size_t)O.s, (size_t)O.S);
			char *p = i < n ? malloc(sz) : NULL;
			if (p) {
				p[0] = (char)sz;
				p[sz - 1] = (char)i;
			}
			b->p[i] = p;
		}
		n -= BATCH;
		push(b);
	}
	pthread_mutex_lock(&Q.lock);
	Q.producers_left--;
	pthread_cond_broadcast(&Q.nonempty);
	pthread_mutex_unlock(&Q.lock);
	return NULL;
}

static void *consumer(void *arg)
{
	struct batch *b;
	long sum = 0;

	(void)arg;
	while ((b = pop()) != NULL) {
		for (int i = 0; i < BATCH; i++) {
			if (b->p[i])
				sum += *(char *)b->p[i];
			free(b->p[i]);
		}
		free(b);
	}
	return (void *)(intptr_t)sum;
}

int main(int argc, char **argv)
{
	O = (struct bench_opts){ .n = 2000000, .t = 2, .s = 8, .S = 256, .k = 64,
				 .e = 1, .w = 0, .seed = 1 };
	bench_parse(argc, argv, &O, help);

	long np = O.t / 2 > 0 ? O.t / 2 : 1, nc = O.t - np > 0 ? O.t - np : 1;
	pthread_t *th = bench_xmalloc((size_t)(np + nc) * sizeof *th);
	Q.cap = (size_t)O.k;
	Q.q = bench_xmalloc(Q.cap * sizeof *Q.q);
	Q.producers_left = np;

	double t0 = bench_now();
	for (long i = 0; i < np + nc; i++)
		bench_spawn(&th[i], i < np ? producer : consumer, (void *)(uintptr_t)i);
	for (long i = 0; i < np + nc; i++)
		pthread_join(th[i], NULL);
	double wall = bench_now() - t0;
	char extra[128];
	snprintf(extra, sizeof extra, ", \"producers\": %ld, \"consumers\": %ld", np, nc);
	bench_report("xmalloc", &O, wall, (double)O.n * (double)np, extra);
	free(Q.q);
	free(th);
	return 0;
}
