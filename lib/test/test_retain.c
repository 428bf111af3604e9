/* SPDX-License-Identifier: MIT */
/*
 * Memory that goes back, against glibc measured in the same run.
 *
 *   test_retain check CASE MIB LIB   runs "test_retain run CASE MIB ..."
 *                                    twice, plain (glibc) and with
 *                                    LD_PRELOAD=LIB, and compares what each
 *                                    reports
 *   test_retain run CASE MIB TARGET  one run: prints "peak_kb idle_kb
 *                                    wait_ms fill_ms"; TARGET is the RSS
 *                                    (KiB) it waits for, 0: none (below)
 *
 * Cases (the patterns of issue 11, section 4):
 *   huge    MIB/16 blocks of 16 MiB written and freed, then MIB MiB of
 *           2000-byte blocks written, then all freed.  The peak may be at
 *           most 1.5x glibc's (freed huge memory serves the small blocks).
 *   thread  a thread allocates MIB MiB of 2000-byte blocks and exits; the
 *           main thread frees them all.
 *   medium  the main thread allocates MIB MiB of 16 KiB blocks (pages of
 *           8 slices) and frees them all: an owner that goes idle after
 *           emptying its pages.
 *   thread-decay  as thread, but the RSS is read 1.5 decays after the last
 *           free (KALLOC_DECAY_MS=1000, 1.5 s): an exited thread's memory
 *           goes back on the decay, like any other, not two decays later
 *           (abandon.c).  Then it must be at most 4 MiB over glibc's, or,
 *           where giving pages back is slow (the debug kernel takes
 *           seconds for 64 MiB), on its way: a quarter of the way from
 *           the RSS right after the frees to that bound (less where the
 *           fill was slow: what half a decay gives back at the fill's
 *           pace), and within the bound as in the other cases below.
 * In all, after the last free the program only sleeps: no malloc, no
 * stdio (which allocates), RSS read with open/read.  After the purge delay
 * (KALLOC_DECAY_MS=250 here) and some (8 decays), RSS may be at most 8 MiB
 * over glibc's.  The bounds are generous on purpose; bench/retain.c
 * measures.
 *
 * "Some": glibc's RSS is read 8 decays after its last free.  liballoc's
 * (but in thread-decay, whose point is the time) is read as soon as it is
 * within the bound, or at the latest 8 decays plus four times the time
 * the fill took: giving pages back costs the kernel about what faulting
 * them in did, and on the debug kernel under emulation (KASAN,
 * init_on_free, debug_pagealloc) that is seconds for 64 MiB
 * (Documentation/reliability.rst).  Memory never given back still fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DECAY_MS	250
#define IDLE_MS		(8 * DECAY_MS)
/* thread-decay: a decay long enough that 1.5 of it tells one from two,
 * even in a slow guest. */
#define PROMPT_DECAY_MS	1000
#define PROMPT_IDLE_MS	(3 * PROMPT_DECAY_MS / 2)
#define BLOCK		2000
#define MEDIUM_BLOCK	16384

static size_t mib;
static void **blk;
static size_t nblk;

static bool is_prompt(const char *what)
{
	return strcmp(what, "thread-decay") == 0;
}

static long decay_ms(const char *what)
{
	return is_prompt(what) ? PROMPT_DECAY_MS : DECAY_MS;
}

static long idle_ms(const char *what)
{
	return is_prompt(what) ? PROMPT_IDLE_MS : IDLE_MS;
}

/* KiB that liballoc's idle RSS may be over glibc's. */
static long idle_slack_kb(const char *what)
{
	return is_prompt(what) ? 4096 : 8192;
}

/* "VmHWM:" or "VmRSS:" of /proc/self/status, in KiB, without malloc. */
static long status_kb(const char *key)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *p = strstr(buf, key);
	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *touch(size_t sz)
{
	char *p = malloc(sz);

	if (!p) {
		fprintf(stderr, "malloc(%zu) failed\n", sz);
		exit(1);
	}
	for (size_t i = 0; i < sz; i += 4096)
		p[i] = 1;
	p[sz - 1] = 1;
	return p;
}

static size_t block = BLOCK;

static void fill(void)
{
	for (size_t i = 0; i < nblk; i++)
		blk[i] = touch(block);
}

static void *thread_fill(void *arg)
{
	(void)arg;
	fill();
	return NULL;
}

/*
 * One run: peak RSS, RSS once idle, how long it waited for that, how long
 * the fill took, RSS right after the frees and at the case's idle time.
 * target_kb 0 (glibc): wait the case's idle time; otherwise until RSS is
 * at most target_kb, from the idle time (thread-decay) or at once, for the
 * idle time plus four fills at most.
 */
static int run(const char *what, long target_kb)
{
	if (strcmp(what, "medium") == 0)
		block = MEDIUM_BLOCK;
	nblk = (mib << 20) / block;
	blk = touch(nblk * sizeof *blk);
	long t0 = now_ms();
	if (strcmp(what, "huge") == 0) {
		size_t nbig = mib / 16;
		void *big[64];
		if (nbig > 64)
			nbig = 64;
		for (size_t i = 0; i < nbig; i++)
			big[i] = touch(16UL << 20);
		for (size_t i = 0; i < nbig; i++)
			free(big[i]);
		fill();
	} else if (strcmp(what, "thread") == 0 || is_prompt(what)) {
		pthread_t th;
		if (pthread_create(&th, NULL, thread_fill, NULL) != 0 ||
		    pthread_join(th, NULL) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			return 1;
		}
	} else if (strcmp(what, "medium") == 0) {
		fill();
	} else {
		fprintf(stderr, "unknown case %s\n", what);
		return 2;
	}
	long fill_ms = now_ms() - t0;
	long peak = status_kb("VmHWM:");
	for (size_t i = 0; i < nblk; i++)
		free(blk[i]);
	free(blk);
	/* From here on: no allocator call at all. */
	long freed = now_ms(), idle, after_free = status_kb("VmRSS:"), at_idle_time = -1;
	if (target_kb <= 0 || is_prompt(what)) {
		sleep_ms(idle_ms(what));
		at_idle_time = status_kb("VmRSS:");
	}
	if (target_kb <= 0) {
		idle = at_idle_time;
	} else {
		while ((idle = status_kb("VmRSS:")) > target_kb &&
		       now_ms() - freed < idle_ms(what) + 4 * fill_ms)
			sleep_ms(50);
	}
	char out[128];
	int len = snprintf(out, sizeof out, "%ld %ld %ld %ld %ld %ld\n", peak, idle,
			   now_ms() - freed, fill_ms, after_free, at_idle_time);
	return write(STDOUT_FILENO, out, (size_t)len) == len ? 0 : 1;
}

/*
 * Run self as "run CASE MIB TARGET_KB", preloading lib (or nothing): what
 * run() prints (peak, idle, the wait for idle, the fill's time, RSS right
 * after the frees and at the case's idle time).
 */
static int measure(const char *self, const char *what, const char *lib, long target_kb,
		   long *peak, long *idle, long *wait_ms, long *fill_ms, long *after_free,
		   long *at_idle_time)
{
	int fd[2];

	if (pipe(fd) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		char arg[32], target[32];
		dup2(fd[1], STDOUT_FILENO);
		close(fd[0]);
		close(fd[1]);
		if (lib)
			setenv("LD_PRELOAD", lib, 1);
		else
			unsetenv("LD_PRELOAD");
		snprintf(arg, sizeof arg, "%ld", decay_ms(what));
		setenv("KALLOC_DECAY_MS", arg, 1);
		snprintf(arg, sizeof arg, "%zu", mib);
		snprintf(target, sizeof target, "%ld", target_kb);
		execl("/proc/self/exe", self, "run", what, arg, target, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	char buf[128] = "";
	ssize_t n = read(fd[0], buf, sizeof buf - 1);
	close(fd[0]);
	int st;
	waitpid(pid, &st, 0);
	if (n <= 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
	    sscanf(buf, "%ld %ld %ld %ld %ld %ld", peak, idle, wait_ms, fill_ms, after_free,
		   at_idle_time) != 6) {
		printf("%s run of %s failed (status %d)\n", lib ? "preloaded" : "plain", what, st);
		return -1;
	}
	return 0;
}

static int check(const char *self, const char *what, const char *lib)
{
	long gp, gi, gw, gf, ga, gt, lp, li, lw, lf, la, lt;
	char note[400];

	if (measure(self, what, NULL, 0, &gp, &gi, &gw, &gf, &ga, &gt))
		return 1;
	long bound = gi + idle_slack_kb(what);	/* liballoc's idle RSS at most */
	if (measure(self, what, lib, bound, &lp, &li, &lw, &lf, &la, &lt))
		return 1;
	char prompt[96] = "";
	if (is_prompt(what))
		snprintf(prompt, sizeof prompt, "; right after the frees %ld KiB, %ld ms after %ld KiB",
			 la, idle_ms(what), lt);
	snprintf(note, sizeof note,
		 "# %s, %zu MiB: peak glibc %ld KiB, liballoc %ld KiB (%.2fx); "
		 "idle (decay %ld ms): glibc %ld KiB %ld ms after the last free, "
		 "liballoc %ld KiB after %ld ms (its fill: %ld ms%s)\n",
		 what, mib, gp, lp, (double)lp / (double)gp, decay_ms(what), gi, gw, li, lw, lf,
		 prompt);
	fputs(note, stdout);
	if (write(3, note, strlen(note)) < 0) {
		/* fd 3 (run.sh's note) is optional */
	}
	int bad = 0;
	if (strcmp(what, "huge") == 0 && lp * 2 > gp * 3) {
		printf("peak RSS %ld KiB is over 1.5x glibc's %ld KiB\n", lp, gp);
		bad = 1;
	}
	/*
	 * On its way: the purge starts on the decay, so by the read it has
	 * had idle - decay ms (half a decay) to give pages back, which costs
	 * about what faulting them in did: a quarter of the way, or, where the
	 * fill was slow, what that window gives back at the fill's pace (the
	 * debug kernel beside a soak: 22 % of the way where 15 % was due).
	 * Memory not moving at all still fails.
	 */
	long window = idle_ms(what) - decay_ms(what);
	double due = lf > 4 * window ? (double)window / (double)lf : 0.25;
	if (is_prompt(what) && lt > bound && (double)(la - lt) < due * (double)(la - bound)) {
		printf("%ld ms after the last free RSS was %ld KiB, %ld KiB right after it: "
		       "less than %.0f %% of the way to %ld KiB\n",
		       idle_ms(what), lt, la, due * 100, bound);
		bad = 1;
	}
	if (li > bound) {
		printf("RSS after the frees and the delay, %ld KiB, is over glibc's %ld KiB + %ld MiB\n",
		       li, gi, idle_slack_kb(what) / 1024);
		bad = 1;
	}
	return bad;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "run") == 0) {
		mib = strtoul(argv[3], NULL, 10);
		return run(argv[2], strtol(argv[4], NULL, 10));
	}
	if (argc == 5 && strcmp(argv[1], "check") == 0) {
		mib = strtoul(argv[3], NULL, 10);
		return check(argv[0], argv[2], argv[4]);
	}
	fprintf(stderr, "usage: %s check CASE MIB LIB | run CASE MIB TARGET_KB\n", argv[0]);
	return 2;
}
