/* SPDX-License-Identifier: MIT */
/*
 * unshare() and setns() with the purge thread out of the way.
 *
 * The kernel refuses unshare(CLONE_NEWUSER), unshare(CLONE_NEWNS) or
 * CLONE_FS, and setns() into a user or mount namespace, with EINVAL in a
 * process of more than one thread.  A single-threaded program (unshare(1),
 * bwrap, a container runtime) must not find itself multi-threaded because
 * its malloc started a thread (purge.c): these two wrappers stop the purge
 * thread first and wait for it, then make the call.  A joined thread may
 * still be on its way out of the kernel for a moment (it counts until the
 * kernel has reaped it), so an EINVAL right after a stop is retried
 * briefly.  The thread starts again at the next point that has work for
 * it.  Calls made with syscall(2) directly are not covered.
 */
#include <errno.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* What a multi-threaded caller is refused (kernel/fork.c, fs/namespace.c). */
#define KA_SINGLE_THREAD_FLAGS (CLONE_NEWUSER | CLONE_NEWNS | CLONE_FS | \
				CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)

static int ka_namespace_call(long nr, long a, long b, bool stop)
{
	bool stopped = stop && ka_purge_thread_stop();

	for (int tries = 0;; tries++) {
		long rc = syscall(nr, a, b);

		if (rc == 0 || !stopped || errno != EINVAL || tries == 200)
			return (int)rc;
		struct timespec ms = { 0, 1000000 };	/* 200 ms at most */
		nanosleep(&ms, NULL);
	}
}

__attribute__((visibility("default"))) int unshare(int flags)
{
	return ka_namespace_call(SYS_unshare, flags, 0,
				 (flags & KA_SINGLE_THREAD_FLAGS) != 0);
}

__attribute__((visibility("default"))) int setns(int fd, int nstype)
{
	/* nstype 0 takes whatever fd names, a user namespace included */
	return ka_namespace_call(SYS_setns, fd, nstype,
				 nstype == 0 || (nstype & (CLONE_NEWUSER | CLONE_NEWNS)));
}
