/* SPDX-License-Identifier: MIT */
/*
 * A single-threaded program may unshare(CLONE_NEWUSER) after using malloc,
 * as unshare(1), bwrap and container runtimes do: the kernel refuses it
 * (EINVAL) in a process of more than one thread, so liballoc's purge
 * thread must be out of the way (namespace.c).  Run under LD_PRELOAD.
 *
 *   test_unshare [thread]   "thread": the purge thread must be running
 *                           before the call (else the test proves nothing)
 * Exit 0: unshare succeeded; 1: it failed; 77: not even glibc can, or
 * the kernel has no user namespaces (CONFIG_USER_NS, which the debug
 * kernel's defconfig base leaves out): there, unshare fails with EINVAL
 * whatever the thread count, so the call would prove nothing.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int threads(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int n = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	int want_thread = argc > 1 && strcmp(argv[1], "thread") == 0;
	void *p[1000];

	/* the kernel shows the namespace links it was built with */
	if (access("/proc/self/ns/user", F_OK) != 0) {
		printf("# the kernel has no user namespaces (no /proc/self/ns/user)\n");
		return 77;
	}

	/* Free whole pages, wait past the decay, free again: a purge request,
	 * then a slow path where the purge thread may start. */
	for (int round = 0; round < 4 && !(want_thread && threads() > 1); round++) {
		for (int i = 0; i < 1000; i++) {
			p[i] = malloc(3000);
			memset(p[i], round, 3000);
		}
		for (int i = 0; i < 1000; i++)
			free(p[i]);
		usleep(150000);
	}
	int before = threads();
	if (want_thread && before < 2) {
		printf("# the purge thread never started (threads: %d)\n", before);
		return 1;
	}
	if (unshare(CLONE_NEWUSER) != 0) {
		printf("# unshare(CLONE_NEWUSER) with %d threads: %s\n", before, strerror(errno));
		return errno == EPERM ? 77 : 1;
	}
	printf("# unshare(CLONE_NEWUSER) with %d threads before it: ok\n", before);
	return 0;
}
