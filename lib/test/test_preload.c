/* SPDX-License-Identifier: MIT */
/*
 * Runs under LD_PRELOAD=liballoc.so and knows nothing of liballoc: the
 * glibc names behave as glibc documents them, libc's own allocations,
 * dlopen/dlsym and dynamic TLS work, and so do threads and fork.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test/check.h"

/* Run first thing in main: errno is 0 at program start (C11 7.5), with
 * or without liballoc, which may have failed to open the device. */
static void errno_at_start(void)
{
	CHECK(errno == 0, "errno at main is %d (%s)", errno, strerror(errno));
}

/*
 * Names and answers that only glibc defines, expected as glibc gives them
 * (run.sh runs this case with and without liballoc): mallopt's return
 * values, cfree (removed from the headers in glibc 2.26, still exported
 * for older binaries: a block of ours must not reach glibc's free), and
 * the __libc_ names of mallinfo and mallopt.
 */
void cfree(void *p);
__asm__(".symver cfree,cfree@GLIBC_2.2.5");
struct mallinfo __libc_mallinfo(void);
int __libc_mallopt(int param, int value);

static void glibc_names_and_answers(void)
{
	static const struct { int param, value, ret; } answers[] = {
		{ M_MXFAST, 64, 1 }, { M_MXFAST, 160, 1 }, { M_MXFAST, 161, 0 },
		{ M_MXFAST, -1, 0 }, { M_TRIM_THRESHOLD, 1 << 20, 1 },
		{ M_TOP_PAD, 0, 1 }, { M_MMAP_THRESHOLD, 1 << 20, 1 },
		{ M_MMAP_THRESHOLD, 64 << 20, 1 }, { M_MMAP_THRESHOLD, -1, 1 },
		{ M_MMAP_MAX, 0, 1 }, { M_CHECK_ACTION, 3, 1 },
		{ M_PERTURB, 0, 1 }, { M_ARENA_TEST, 8, 1 }, { M_ARENA_MAX, 0, 1 },
		{ 2, 1, 1 }, { 100, 1, 1 }, { -100, 1, 1 },
	};
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		int ret = mallopt(answers[i].param, answers[i].value);

		CHECK(ret == answers[i].ret, "mallopt(%d, %d) = %d, glibc's is %d",
		      answers[i].param, answers[i].value, ret, answers[i].ret);
		CHECK(__libc_mallopt(answers[i].param, answers[i].value) == ret,
		      "__libc_mallopt agrees");
	}
	void *p = malloc(100);
	CHECK(p, "malloc");
	cfree(p);
	p = malloc(200000);
	struct mallinfo a = __libc_mallinfo();
	CHECK(a.uordblks >= 200000 || a.hblkhd >= 200000, "__libc_mallinfo sees the block");
	cfree(p);
}

static void preloaded(void)
{
	void *p = malloc(10);
	CHECK(dlsym(RTLD_DEFAULT, "ka_malloc") != NULL, "liballoc is loaded");
	void *(*kam)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "ka_malloc");
	size_t (*kus)(void *) = (size_t (*)(void *))dlsym(RTLD_DEFAULT, "ka_malloc_usable_size");
	CHECK(kus(p) == 16 && malloc_usable_size(p) == 16, "malloc is liballoc's");
	free(p);
	p = kam(100);
	free(p);
}

static volatile size_t huge_size = SIZE_MAX;	/* hidden from the compiler */

static void glibc_semantics(void)
{
	errno = 0;
	CHECK(malloc(huge_size) == NULL && errno == ENOMEM, "malloc ENOMEM");
	void *p = malloc(0);
	CHECK(p, "malloc(0) is unique and non-NULL");
	CHECK(realloc(p, 0) == NULL, "realloc(p, 0) frees");
	p = calloc(100, 100);
	for (int i = 0; i < 10000; i++)
		CHECK(((char *)p)[i] == 0, "calloc");
	p = realloc(p, 100000);
	CHECK(p && ((char *)p)[9999] == 0, "realloc keeps");
	free(p);
	errno = 0;
	CHECK(reallocarray(NULL, huge_size, 2) == NULL && errno == ENOMEM, "reallocarray");
	CHECK((uintptr_t)(p = memalign(256, 10)) % 256 == 0, "memalign");
	free(p);
	CHECK(posix_memalign(&p, 3, 10) == EINVAL, "posix_memalign EINVAL");
	CHECK(posix_memalign(&p, 1 << 20, 10) == 0 && (uintptr_t)p % (1 << 20) == 0, "1 MiB aligned");
	free(p);
	CHECK((uintptr_t)(p = aligned_alloc(64, 640)) % 64 == 0, "aligned_alloc");
	free(p);
	CHECK((uintptr_t)(p = valloc(1)) % 4096 == 0, "valloc");
	free(p);
	CHECK((uintptr_t)(p = pvalloc(1)) % 4096 == 0 && malloc_usable_size(p) >= 4096, "pvalloc");
	free(p);
	CHECK(malloc_usable_size(NULL) == 0, "usable NULL");
	free(NULL);
	CHECK(mallopt(M_ARENA_MAX, 2) == 1, "mallopt accepts glibc's parameters");
	p = malloc(5000);
	struct mallinfo2 mi = mallinfo2();
	CHECK(mi.uordblks >= 5000, "mallinfo2 in use %zu", mi.uordblks);
	free(p);
	malloc_trim(0);
	malloc_stats();
}

static void *use_libc(void *arg)
{
	char *(*touch)(int) = arg;
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);
	for (int i = 0; i < 10000; i++)
		fprintf(f, "%d %s\n", i, "abcdefghijklmnopqrstuvwxyz");
	fclose(f);
	if (n < 10000 * 20)
		return NULL;
	free(s);
	if (touch && touch(7)[99999] != 7)
		return NULL;
	return (void *)1;
}

static void libc_dlopen_tls_threads(void)
{
	void *h = dlopen(getenv("TLS_LIB"), RTLD_NOW);
	CHECK(h, "dlopen: %s", dlerror());
	char *(*touch)(int) = (char *(*)(int))dlsym(h, "tls_lib_touch");
	CHECK(touch, "dlsym");
	CHECK(use_libc(touch), "main thread");
	pthread_t t[6];
	for (int i = 0; i < 6; i++)
		CHECK(pthread_create(&t[i], NULL, use_libc, touch) == 0, "thread");
	for (int i = 0; i < 6; i++) {
		void *r;
		pthread_join(t[i], &r);
		CHECK(r, "thread %d", i);
	}
	dlclose(h);
}

static void fork_and_exec(void)
{
	char *p = strdup("from the parent");
	pid_t pid = fork();
	if (pid == 0) {
		if (strcmp(p, "from the parent") != 0)
			_exit(1);
		free(p);
		execl("/bin/sh", "sh", "-c", "exit 0", (char *)NULL);
		_exit(2);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %x", st);
	free(p);
}

/* glibc's mallinfo would read its own, empty, arena: zeros (check.h). */
static void mallinfo_and_sized_frees(void)
{
	check_mallinfo_counts_a_block();
	void (*fs)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
	void (*fas)(void *, size_t, size_t) =
		(void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
	CHECK(fs && fas, "free_sized and free_aligned_sized are exported");
	fs(malloc(40), 40);
	fas(aligned_alloc(4096, 10), 4096, 10);
}

static const struct check_case cases[] = {
	{ "errno_at_start", "errno is 0 when main starts", errno_at_start },
	{ "glibc_names_and_answers", "mallopt answers as glibc does; cfree, __libc_mallinfo and __libc_mallopt are liballoc's", glibc_names_and_answers },
	{ "preloaded", "LD_PRELOAD puts liballoc under malloc", preloaded },
	{ "glibc_semantics", "the unprefixed family follows glibc", glibc_semantics },
	{ "libc_dlopen_tls_threads", "stdio, dlopen, dynamic TLS and threads allocate from liballoc", libc_dlopen_tls_threads },
	{ "fork_and_exec", "fork then exec under the preload", fork_and_exec },
	{ "mallinfo_and_sized_frees", "mallinfo and mallinfo2 report liballoc's blocks; free_sized, free_aligned_sized exported", mallinfo_and_sized_frees },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	return check_main(cases, argc, argv);
}
