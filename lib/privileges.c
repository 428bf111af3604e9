/* SPDX-License-Identifier: MIT */
/*
 * prctl() and capset() calls that confine a thread, with the purge thread
 * out of the way for good.
 *
 * No-new-privs, a seccomp filter (installed without TSYNC), the capability
 * sets, the bounding set and the securebits belong to one thread, and a
 * thread created later inherits its creator's.  A program that confines
 * itself while it is single-threaded (sshd's privilege-separated child,
 * a sandbox, a daemon dropping capabilities) counts on all of it being
 * confined.  liballoc's purge thread (purge.c), running from before, would
 * not be: a way around the confinement for whoever controls the process's
 * memory.  Started afterwards it would call clone(), which the program's
 * seccomp filter may answer by killing the process.  So these wrappers
 * stop the purge thread, wait for it, and keep it from starting again in
 * this process: memory then goes back from the slow paths only, as with
 * KALLOC_PURGE_THREAD=0.  Calls made with syscall(2) directly (libseccomp
 * calls seccomp(2) so) are not covered: Documentation/liballoc.rst.
 */
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#define KA_EXPORT __attribute__((visibility("default")))

/* The options that change what this thread, and those it creates, may do. */
static bool ka_prctl_confines(int option, unsigned long arg2)
{
	switch (option) {
	case PR_SET_NO_NEW_PRIVS:
	case PR_SET_SECCOMP:
	case PR_CAPBSET_DROP:
	case PR_SET_SECUREBITS:
		return true;
	case PR_CAP_AMBIENT:
		return arg2 != PR_CAP_AMBIENT_IS_SET;
	default:
		return false;
	}
}

/* glibc's prctl reads four arguments after the option whatever it is. */
KA_EXPORT int prctl(int option, ...)
{
	unsigned long arg2, arg3, arg4, arg5;
	va_list ap;

	va_start(ap, option);
	arg2 = va_arg(ap, unsigned long);
	arg3 = va_arg(ap, unsigned long);
	arg4 = va_arg(ap, unsigned long);
	arg5 = va_arg(ap, unsigned long);
	va_end(ap);
	if (ka_prctl_confines(option, arg2))
		ka_purge_thread_disable();
	return (int)syscall(SYS_prctl, option, arg2, arg3, arg4, arg5);
}

/* libcap's header declares it with its own types: pointers, to the kernel. */
KA_EXPORT int capset(void *header, const void *data);
KA_EXPORT int capset(void *header, const void *data)
{
	ka_purge_thread_disable();
	return (int)syscall(SYS_capset, header, data);
}
