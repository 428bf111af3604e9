/* SPDX-License-Identifier: MIT */
/*
 * A process ends when its last thread does (POSIX: pthread_exit() of the
 * last thread exits the process with status 0), whatever threads the
 * allocator keeps for itself.  Python's test_threading found liballoc's
 * purge thread keeping such a process alive: a child forked from a worker
 * thread starts a thread, joins it and returns from its thread function;
 * under glibc it exits, under liballoc it stayed, a zombie leader and the
 * purge thread, until its parent's five-minute wait killed it.
 *
 * Each case runs in a child of its own that must exit with status 0
 * within 10 s of its last thread's end; run.sh runs this program with and
 * without LD_PRELOAD=liballoc.so (glibc shows the contract):
 *
 *   main     main allocates, starts a thread that allocates (under
 *            liballoc the second heap starts the purge thread), calls
 *            pthread_exit(); the thread frees 32 MiB and returns
 *   fork     Python's case: a thread forks; the child, whose only thread
 *            it is, starts a thread that allocates, joins it, frees
 *            32 MiB and calls pthread_exit()
 *   tsd      as main, but the last thread's destructor allocates and frees
 *            32 MiB in its last round (after liballoc's own destructor)
 *   late     main joins a thread whose first malloc is in its last
 *            destructor round (a heap whose destructor glibc never runs,
 *            heap.c), then calls pthread_exit()
 *   late-slow  as late, but then a last thread, on a stack of another
 *            size (not the late one's), allocates and ends, one of its
 *            destructors sleeping 300 ms after liballoc's
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_MS	10000

static void die(const char *what)
{
	perror(what);
	_exit(2);
}

/* 8 blocks of 4 MiB written and freed: under liballoc huge blocks, whose
 * cache asks the purge thread to give them back later. */
static void churn(void)
{
	void *b[8];

	for (int i = 0; i < 8; i++) {
		b[i] = malloc(4 << 20);
		if (!b[i])
			die("malloc");
		memset(b[i], i, 4 << 20);
	}
	for (int i = 0; i < 8; i++)
		free(b[i]);
}

/* 100 ms on: a starter that does not wait for it (main's case) ends first. */
static void *allocating_thread(void *arg)
{
	(void)arg;
	usleep(100 * 1000);
	free(malloc(4000));
	churn();
	return NULL;
}

static void start(pthread_t *th, void *(*fn)(void *))
{
	int err = pthread_create(th, NULL, fn, NULL);

	if (err) {
		errno = err;
		die("pthread_create");
	}
}

/* The threads of pid, by name, into buf (the ones left when it hung). */
static void thread_names(pid_t pid, char *buf, size_t len)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	size_t used = 0;

	buf[0] = 0;
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		char comm[64] = "?", p[PATH_MAX];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s/comm", path, e->d_name);
		f = fopen(p, "r");
		if (f) {
			if (fgets(comm, sizeof comm, f))
				comm[strcspn(comm, "\n")] = 0;
			fclose(f);
		}
		used += (size_t)snprintf(buf + used, len - used, " %s(%s)", e->d_name, comm);
		if (used >= len)
			break;
	}
	closedir(d);
}

/* Wait for pid to exit within the deadline; else say what is left of it,
 * kill it and return -1.  Its wait status otherwise. */
static int wait_deadline(pid_t pid, const char *name, int deadline_ms)
{
	for (int ms = 0; ms < deadline_ms; ms += 10) {
		int status;
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0)
			die("waitpid");
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	char names[512];

	thread_names(pid, names, sizeof names);
	fprintf(stderr, "%s: process %d still there after %d ms; its threads:%s\n",
		name, (int)pid, deadline_ms, names);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* --- main: main thread's pthread_exit, a worker ends last */

static void case_main(void)
{
	pthread_t th;

	free(malloc(100));
	start(&th, allocating_thread);
	pthread_exit(NULL);
}

/* --- fork: from a thread; the child's only thread ends with pthread_exit */

static void *forking_thread(void *arg)
{
	pid_t pid;

	(void)arg;
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pthread_t th;

		start(&th, allocating_thread);
		pthread_join(th, NULL);
		churn();
		pthread_exit(NULL);
	}
	int status = wait_deadline(pid, "fork (the child of a thread)", DEADLINE_MS);

	exit(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1);
}

static void case_fork(void)
{
	pthread_t th;

	free(malloc(100));
	start(&th, forking_thread);
	pthread_join(th, NULL);
	exit(3);	/* not reached: the thread exits the process */
}

/* --- tsd: the last thread allocates in its last destructor round */

static pthread_key_t key;

/* In key's destructor, its value the round: true while a round is left,
 * the key set again for it; false in glibc's last. */
static bool rearm(void *arg)
{
	long round = (long)arg;

	if (round >= PTHREAD_DESTRUCTOR_ITERATIONS)
		return false;
	if (pthread_setspecific(key, (void *)(round + 1)))
		die("pthread_setspecific");
	return true;
}

static void destructor(void *arg)
{
	if (!rearm(arg))
		churn();
}

static void *tsd_thread(void *arg)
{
	(void)arg;
	usleep(100 * 1000);	/* main's pthread_exit() first */
	free(malloc(4000));
	if (pthread_setspecific(key, (void *)1L))
		die("pthread_setspecific");
	churn();
	return NULL;
}

static void case_tsd(void)
{
	pthread_t th;

	if (pthread_key_create(&key, destructor))
		die("pthread_key_create");
	free(malloc(100));
	start(&th, tsd_thread);
	pthread_exit(NULL);
}

/* --- late: a joined thread's first malloc in its last destructor round */

/* The compiler drops a malloc() whose block nobody sees, with its free(). */
static void *volatile late_block;

static void late_destructor(void *arg)
{
	if (rearm(arg))
		return;
	late_block = malloc(4000);	/* the thread's first */
	free(late_block);
}

static void *late_thread(void *arg)
{
	(void)arg;
	if (pthread_setspecific(key, (void *)1L))	/* no malloc before */
		die("pthread_setspecific");
	return NULL;
}

static void case_late(void)
{
	pthread_t th;

	/* liballoc's key first, then this one: a thread with a heap makes
	 * sure liballoc has its key. */
	free(malloc(100));
	start(&th, allocating_thread);
	pthread_join(th, NULL);
	if (pthread_key_create(&key, late_destructor))
		die("pthread_key_create");
	start(&th, late_thread);
	pthread_join(th, NULL);
	pthread_exit(NULL);
}

/* --- late-slow: the last thread is still in its destructors 100 ms on */

static pthread_key_t slow_key;

static void slow_destructor(void *arg)
{
	(void)arg;
	usleep(300 * 1000);
}

static void *slow_thread(void *arg)
{
	(void)arg;
	usleep(100 * 1000);	/* main's pthread_exit() first */
	late_block = malloc(100);
	free(late_block);
	if (pthread_setspecific(slow_key, (void *)1L))
		die("pthread_setspecific");
	return NULL;
}

static void case_late_slow(void)
{
	pthread_attr_t attr;
	pthread_t th;

	free(malloc(100));
	start(&th, allocating_thread);
	pthread_join(th, NULL);
	if (pthread_key_create(&key, late_destructor) ||
	    pthread_key_create(&slow_key, slow_destructor))
		die("pthread_key_create");
	start(&th, late_thread);
	pthread_join(th, NULL);
	/* A stack glibc cannot take from the late thread's (heap.c). */
	if (pthread_attr_init(&attr) || pthread_attr_setstacksize(&attr, 64 << 20) ||
	    pthread_create(&th, &attr, slow_thread, NULL))
		die("pthread_create");
	pthread_exit(NULL);
}

static const struct {
	const char *name;
	void (*run)(void);
} cases[] = {
	{ "main", case_main },
	{ "fork", case_fork },
	{ "tsd", case_tsd },
	{ "late", case_late },
	{ "late-slow", case_late_slow },
};

int main(int argc, char **argv)
{
	int failed = 0;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (argc > 1 && strcmp(argv[1], cases[i].name))
			continue;
		fflush(stdout);
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (pid == 0) {
			cases[i].run();
			_exit(4);	/* not reached */
		}
		int status = wait_deadline(pid, cases[i].name, 2 * DEADLINE_MS);
		bool ok = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;

		printf("%s %s: the process ended with its last thread (%s %d)\n",
		       ok ? "ok" : "FAIL", cases[i].name,
		       status < 0 ? "killed after" : WIFEXITED(status) ? "exit" : "signal",
		       status < 0 ? 2 * DEADLINE_MS : WIFEXITED(status) ? WEXITSTATUS(status) :
		       WTERMSIG(status));
		failed |= !ok;
	}
	return failed;
}
