// SPDX-License-Identifier: GPL-2.0
/*
 * kalloc_holder: holds the module in use for kalloc_module_test.sh.
 *
 *   kalloc_holder map    create a region, map it, fill it, close the fd:
 *                        only the mapping holds the module
 *   kalloc_holder fd     open /dev/kalloc and create a region, map nothing:
 *                        only the fd holds the module
 *   kalloc_holder once   use the module briefly (both backings, a fork, a
 *                        release) and exit: what a load/unload cycle runs
 *
 * map and fd print "ready" once set up, then wait: SIGUSR1 checks the
 * mapped data (exit 0 if intact, 1 if not), SIGTERM exits 0.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include "kalloc_test.h"

#define HOLD_PAGES	64UL

static unsigned char value(unsigned long i)
{
	return (unsigned char)(i * 13 + (i >> 12) + 1);
}

static int wait_for_word(unsigned char *p)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("ready %d\n", getpid());
	fflush(stdout);
	if (sigwait(&set, &sig))
		return 3;
	if (sig == SIGTERM || !p)
		return 0;
	for (unsigned long i = 0; i < HOLD_PAGES * KT_PAGE; i++) {
		if (p[i] != value(i)) {
			fprintf(stderr, "kalloc_holder: byte %lu is %#x, not %#x\n",
				i, p[i], value(i));
			return 1;
		}
	}
	return 0;
}

static int hold(bool map)
{
	struct kalloc_create c;
	unsigned char *p = NULL;
	int fd = kt_open();

	if (fd < 0) {
		perror("kalloc_holder: open " KALLOC_DEVICE);
		return 2;
	}
	if (kt_create(fd, HOLD_PAGES * KT_PAGE, KALLOC_BACKING_PAGES, 0, -1, &c)) {
		perror("kalloc_holder: create");
		return 2;
	}
	if (map) {
		p = kt_map(fd, &c, 0);
		if (p == MAP_FAILED) {
			perror("kalloc_holder: mmap");
			return 2;
		}
		for (unsigned long i = 0; i < HOLD_PAGES * KT_PAGE; i++)
			p[i] = value(i);
		close(fd);
	}
	return wait_for_word(p);
}

/* A little of everything, so that an unload after it has counters to check. */
static int once(void)
{
	struct kalloc_create v, g;
	unsigned char *pv, *pg;
	int fd = kt_open(), status;
	pid_t pid;

	if (fd < 0 ||
	    kt_create(fd, HOLD_PAGES * KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &v) ||
	    kt_create(fd, HOLD_PAGES * KT_PAGE, KALLOC_BACKING_PAGES, 2, -1, &g))
		return 2;
	pv = kt_map(fd, &v, 0);
	pg = kt_map(fd, &g, 0);
	if (pv == MAP_FAILED || pg == MAP_FAILED)
		return 2;
	memset(pv, 1, HOLD_PAGES * KT_PAGE);
	memset(pg, 2, HOLD_PAGES * KT_PAGE);
	pid = fork();
	if (pid == 0) {
		memset(pg, 3, HOLD_PAGES * KT_PAGE);
		_exit(pv[0] == 1 ? 0 : 1);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || status)
		return 3;
	if (kt_release(fd, g.id, 0, HOLD_PAGES / 2 * KT_PAGE) || pg[HOLD_PAGES * KT_PAGE - 1] != 2)
		return 4;
	/* leave the rest to exit: mapped, unreleased, one destroyed */
	return kt_destroy(fd, v.id) ? 5 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "map"))
		return hold(true);
	if (argc == 2 && !strcmp(argv[1], "fd"))
		return hold(false);
	if (argc == 2 && !strcmp(argv[1], "once"))
		return once();
	fprintf(stderr, "usage: kalloc_holder map|fd|once\n");
	return 2;
}
