/* SPDX-License-Identifier: MIT */
/*
 * fork handlers that allocate, registered before the allocator's own.
 *
 * glibc runs prepare handlers in the reverse order of their registration
 * and the parent's and child's in that order, and takes its own malloc
 * locks inside fork(), so every handler may call malloc.  An allocator
 * that registers its handlers at its first malloc comes after a
 * library's constructor (fork_handlers_lib.c) and after a main() that
 * registers before its first malloc: its prepare handler runs first, and
 * its parent and child handlers last.  The handlers in between must
 * still be able to allocate, in the parent and in the child, while
 * other threads allocate too; a deadlock is a failure (an alarm).
 *
 * Run with and without LD_PRELOAD=liballoc.so (programs.sh); the outputs
 * must be the same.  test_fork_handlers [forks]
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern int lib_prepared, lib_parent_ran, lib_child_ran;
int lib_churn(int seed);

static int main_prepared, main_parent_ran, main_child_ran;
static atomic_bool stop;

static void main_prepare(void)
{
	main_prepared += 1 + 100 * lib_churn(3);
}

static void main_parent(void)
{
	main_parent_ran += 1 + 100 * lib_churn(4);
}

static void main_child(void)
{
	main_child_ran += 1 + 100 * lib_churn(5);
}

/* Others allocate while the main thread forks: the locks are contended. */
static void *churner(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		if (lib_churn(6))
			abort();
	return NULL;
}

int main(int argc, char **argv)
{
	int forks = argc > 1 ? atoi(argv[1]) : 50;
	pthread_t th[2];

	/* Before any malloc of this program: registered before liballoc's. */
	if (pthread_atfork(main_prepare, main_parent, main_child) != 0)
		return 2;
	alarm(60);	/* a deadlock ends here, with SIGALRM */
	for (int i = 0; i < 2; i++)
		if (pthread_create(&th[i], NULL, churner, NULL) != 0)
			return 2;
	int children_ok = 0;
	for (int i = 0; i < forks; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return 2;
		if (pid == 0) {
			alarm(30);
			/* One of each, and they allocated what they kept. */
			_exit(lib_child_ran == 1 && main_child_ran == 1 && lib_churn(7) == 0 ? 0 : 1);
		}
		int status;

		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0)
			children_ok++;
		else if (WIFSIGNALED(status))
			fprintf(stderr, "child %d: signal %d\n", i, WTERMSIG(status));
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	printf("%d forks: children ok %d; handlers ran: library prepare %d, parent %d; main prepare %d, parent %d\n",
	       forks, children_ok, lib_prepared, lib_parent_ran, main_prepared, main_parent_ran);
	return children_ok == forks && lib_prepared == forks && lib_parent_ran == forks &&
	       main_prepared == forks && main_parent_ran == forks ? 0 : 1;
}
