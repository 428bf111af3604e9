/* SPDX-License-Identifier: MIT */
/*
 * Linked with -lalloc (dynamically against libc, and fully static): the
 * archive's malloc replaces libc's, threads and fork work.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"

/* C23's, which this glibc does not declare yet. */
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);
#include "test/check.h"

static void *thread_main(void *arg)
{
	char *s = strdup(arg);
	void *v[1000];
	for (int i = 0; i < 1000; i++)
		v[i] = malloc((size_t)i * 3);
	for (int i = 0; i < 1000; i++)
		free(v[i]);
	return s;
}

static void malloc_is_liballoc(void)
{
	struct ka_stats a, b;
	ka_stats(&a);
	void *p = malloc(100000);
	ka_stats(&b);
	CHECK(b.allocated >= a.allocated + 100000, "malloc counted by ka_stats (%zu -> %zu)",
	      a.allocated, b.allocated);
	CHECK(malloc_usable_size(p) == ka_malloc_usable_size(p), "one allocator");
	free(p);
	char *s = strdup("hello");	/* libc's own calls land here too */
	CHECK(ka_malloc_usable_size(s) == 16, "strdup from liballoc");
	free(s);
}

static void threads_and_fork(void)
{
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, thread_main, "thread");
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		CHECK(strcmp(r, "thread") == 0, "result");
		free(r);
	}
	char *p = strdup("parent");
	pid_t pid = fork();
	if (pid == 0) {
		int ok = strcmp(p, "parent") == 0;
		free(p);
		free(malloc(1 << 20));
		_exit(ok ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child");
	free(p);
}

/* mallinfo() is liballoc's (check.h); so are the C23 sized frees. */
static void mallinfo_is_liballoc(void)
{
	check_mallinfo_counts_a_block();
	free_sized(malloc(40), 40);
	void *p = aligned_alloc(256, 1000);
	free_aligned_sized(p, 256, 1000);
}

static const struct check_case cases[] = {
	{ "malloc_is_liballoc", "malloc and libc's internal allocations come from liballoc", malloc_is_liballoc },
	{ "threads_and_fork", "threads and fork work in the linked program", threads_and_fork },
	{ "mallinfo_is_liballoc", "mallinfo, mallinfo2 report liballoc's blocks; free_sized, free_aligned_sized link", mallinfo_is_liballoc },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	return check_main(cases, argc, argv);
}
