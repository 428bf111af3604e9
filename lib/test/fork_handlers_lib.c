/* SPDX-License-Identifier: MIT */
/*
 * A library whose constructor registers fork handlers that allocate, as
 * libraries do (a random number generator reseeding in the child, a
 * logger reopening its file).  The program that needs it
 * (test_fork_handlers.c) is linked with it, so this constructor runs
 * before the preloaded allocator's first malloc and before main: its
 * handlers are registered before any the allocator registers.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Counts the program prints: the same under any allocator. */
int lib_prepared, lib_parent_ran, lib_child_ran;
static char *lib_kept;	/* allocated in prepare, freed after the fork */

/*
 * Small, medium and huge (3 MiB: liballoc takes a lock for those) blocks,
 * written and checked; 0 when they held what was written.
 */
int lib_churn(int seed)
{
	static const size_t sizes[] = { 24, 700, 20000, 3 << 20 };
	int bad = 0;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *p = malloc(sizes[i]);

		if (!p)
			return 1;
		memset(p, seed + (int)i, sizes[i]);
		bad |= p[0] != (unsigned char)(seed + (int)i) ||
		       p[sizes[i] - 1] != (unsigned char)(seed + (int)i);
		free(p);
	}
	return bad;
}

static void lib_prepare(void)
{
	lib_kept = malloc(5000);
	if (lib_kept)
		strcpy(lib_kept, "kept across fork");
	lib_prepared += 1 + 100 * lib_churn(1);
}

static void lib_after(int *count)
{
	*count += 1 + 100 * lib_churn(2);
	if (!lib_kept || strcmp(lib_kept, "kept across fork") != 0)
		*count += 1000;
	free(lib_kept);
	lib_kept = NULL;
}

static void lib_parent(void)
{
	lib_after(&lib_parent_ran);
}

static void lib_child(void)
{
	lib_after(&lib_child_ran);
}

__attribute__((constructor)) static void lib_init(void)
{
	if (pthread_atfork(lib_prepare, lib_parent, lib_child) != 0) {
		fputs("pthread_atfork failed\n", stderr);
		exit(2);
	}
}
