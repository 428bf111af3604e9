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
 *   kalloc_holder cycles N KO
 *                        N times: load KO (as insmod does, finit_module),
 *                        check that /proc/kalloc shows no regions, run
 *                        "once" in a child, check that every total is back
 *                        at 0, unload (as rmmod does, delete_module) and
 *                        check that the kernel printed no "kalloc: leak".
 *                        The module must not be loaded at the start.  In a
 *                        TCG guest an exec costs a good part of a second,
 *                        so the cycles run here rather than as a script.
 *
 * map and fd print "ready" once set up, then wait: SIGUSR1 checks the
 * mapped data (exit 0 if intact, 1 if not), SIGTERM exits 0.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
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

/* The totals that must be 0 with no user that are not; 0 if all are. */
static int proc_nonzero(char *what, size_t len)
{
	char line[256], key[64];
	int bad = 0;
	long value;
	FILE *f = fopen(KALLOC_PROC, "r");

	*what = '\0';
	if (!f) {
		snprintf(what, len, "no " KALLOC_PROC);
		return 1;
	}
	while (fgets(line, sizeof(line), f) && line[0] != '\n') {
		if (sscanf(line, "%63s %ld", key, &value) != 2 || !value)
			continue;
		if (!strcmp(key, "regions") || !strcmp(key, "resident_vmalloc") ||
		    !strcmp(key, "resident_pages") ||
		    (!strncmp(key, "node", 4) && strstr(key, "_resident"))) {
			size_t used = strlen(what);

			snprintf(what + used, len - used, " %s=%ld", key, value);
			bad++;
		}
	}
	fclose(f);
	return bad;
}

/* New kernel log records that contain @needle, from @kmsg onwards. */
static int kmsg_count(int kmsg, const char *needle)
{
	char rec[2048];
	int found = 0;
	ssize_t n;

	for (;;) {
		n = read(kmsg, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			return found;
		rec[n] = '\0';
		if (strstr(rec, needle)) {
			fprintf(stderr, "kernel: %s", strchr(rec, ';') ? strchr(rec, ';') + 1 : rec);
			found++;
		}
	}
}

static int cycles(int n, const char *ko)
{
	struct timespec start, now;
	int kmsg, fd, status, bad = 0;
	char what[256];
	pid_t pid;

	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg < 0) {
		perror("kalloc_holder: /dev/kmsg");
		return 2;
	}
	lseek(kmsg, 0, SEEK_END);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int i = 1; i <= n; i++) {
		fd = open(ko, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || syscall(SYS_finit_module, fd, "", 0)) {
			fprintf(stderr, "cycle %d: loading %s: %s\n", i, ko, strerror(errno));
			return 1;
		}
		close(fd);
		if (proc_nonzero(what, sizeof(what))) {
			fprintf(stderr, "cycle %d: just loaded:%s\n", i, what);
			bad++;
		}
		pid = fork();
		if (pid == 0)
			_exit(once());
		if (pid < 0 || waitpid(pid, &status, 0) != pid || status) {
			fprintf(stderr, "cycle %d: using the module failed: status %#x\n",
				i, status);
			bad++;
		}
		if (proc_nonzero(what, sizeof(what))) {
			fprintf(stderr, "cycle %d: after every user exited:%s\n", i, what);
			bad++;
		}
		if (syscall(SYS_delete_module, "kalloc", O_NONBLOCK)) {
			fprintf(stderr, "cycle %d: unloading: %s\n", i, strerror(errno));
			return 1;
		}
		if (kmsg_count(kmsg, "kalloc: leak")) {
			fprintf(stderr, "cycle %d: the module reported a leak at unload\n", i);
			bad++;
		}
		if (i % 25 == 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			fprintf(stderr, "%d cycles in %.1f s\n", i,
				now.tv_sec - start.tv_sec + (now.tv_nsec - start.tv_nsec) / 1e9);
		}
	}
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "map"))
		return hold(true);
	if (argc == 2 && !strcmp(argv[1], "fd"))
		return hold(false);
	if (argc == 2 && !strcmp(argv[1], "once"))
		return once();
	if (argc == 4 && !strcmp(argv[1], "cycles"))
		return cycles(atoi(argv[2]), argv[3]);
	fprintf(stderr, "usage: kalloc_holder map|fd|once|cycles N KO\n");
	return 2;
}
