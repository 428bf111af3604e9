/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD shim for the fallback tests (test_api.c, huge_blocks_fall_back):
 * a device without order 9.  KALLOC_TEST_REFUSE=version: KALLOC_IOC_VERSION
 * says max_order 8; KALLOC_TEST_REFUSE=create: KALLOC_IOC_CREATE of order 9
 * fails with EINVAL.  Everything else goes to the C library's ioctl().
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kalloc.h>

int ioctl(int fd, unsigned long req, ...)
{
	static int (*real)(int, unsigned long, ...);
	const char *mode = getenv("KALLOC_TEST_REFUSE");
	va_list ap;

	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (!real)
		real = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
	if (mode && strcmp(mode, "create") == 0 && req == KALLOC_IOC_CREATE &&
	    ((struct kalloc_create *)arg)->order >= 9) {
		errno = EINVAL;
		return -1;
	}
	int r = real(fd, req, arg);
	if (r == 0 && mode && strcmp(mode, "version") == 0 && req == KALLOC_IOC_VERSION &&
	    ((struct kalloc_version *)arg)->max_order > 8)
		((struct kalloc_version *)arg)->max_order = 8;
	return r;
}
