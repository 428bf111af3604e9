/* SPDX-License-Identifier: MIT */
/*
 * A single-threaded program that confines itself confines all of itself:
 * after prctl(PR_SET_NO_NEW_PRIVS) every task of the process has
 * NoNewPrivs set, and none appears afterwards that lacks it, however
 * much memory comes free (privileges.c).  Run under LD_PRELOAD with a
 * short decay, and without it (glibc: one task).
 *
 *   test_privileges [thread]   "thread": liballoc's purge thread must be
 *                              running before the call (else the test
 *                              proves nothing)
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Tasks of this process, and how many of them lack NoNewPrivs. */
static int tasks(int *unconfined)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	*unconfined = 0;
	while (d && (e = readdir(d))) {
		char path[300], line[256];
		int nnp = -1;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;	/* gone meanwhile */
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "NoNewPrivs: %d", &nnp) == 1)
				break;
		fclose(f);
		n++;
		*unconfined += nnp != 1;
	}
	if (d)
		closedir(d);
	return n;
}

/* Free whole pages and wait past the decay: work for a purge thread. */
static void churn(int rounds)
{
	static void *p[1000];

	for (int round = 0; round < rounds; round++) {
		for (int i = 0; i < 1000; i++) {
			p[i] = malloc(3000);
			memset(p[i], round, 3000);
		}
		for (int i = 0; i < 1000; i++)
			free(p[i]);
		usleep(150000);
	}
}

int main(int argc, char **argv)
{
	int want_thread = argc > 1 && strcmp(argv[1], "thread") == 0;
	int unconfined, before, after = 0;

	for (int i = 0; i < 4 && tasks(&unconfined) < 2 && want_thread; i++)
		churn(1);
	before = tasks(&unconfined);
	if (want_thread && before < 2) {
		printf("# the purge thread never started (tasks: %d)\n", before);
		return 1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		perror("prctl(PR_SET_NO_NEW_PRIVS)");
		return 1;
	}
	/* a joined thread may count until the kernel has reaped it */
	for (int i = 0; i < 100 && (after = tasks(&unconfined)) > 1; i++)
		usleep(2000);
	if (after != 1 || unconfined) {
		printf("# after prctl: %d tasks, %d without NoNewPrivs (before: %d tasks)\n",
		       after, unconfined, before);
		return 1;
	}
	churn(4);
	after = tasks(&unconfined);
	if (after != 1 || unconfined) {
		printf("# after more frees: %d tasks, %d without NoNewPrivs\n", after, unconfined);
		return 1;
	}
	return 0;
}
