/* SPDX-License-Identifier: MIT */
/*
 * NUMA: a thread's new segments come from regions on the node it runs on
 * (the node field of KALLOC_IOC_CREATE; mbind for anonymous memory).
 *
 * libnuma answers how many nodes the machine has.  It is loaded with
 * dlopen() only where /sys/devices/system/node/online names more than one:
 * linked, its constructor ran in every process, on every machine, and
 * added about 250 KiB to the RSS of a small one (stdio and sysfs parsing),
 * half of what liballoc cost such a process over glibc's malloc.  The
 * library constructor asks (init.c), so dlopen()'s own mallocs find the
 * process initialised.  Until then, with KALLOC_NUMA=0, and on one node,
 * every region is created with node -1 (local).
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

static atomic_int ka_numa_count;	/* 0: off */

/* More than one node online ("0" on one; "0-1", "0,2" on more)? */
static bool ka_numa_sysfs_several(void)
{
	char buf[64];
	int fd = open("/sys/devices/system/node/online", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strpbrk(buf, "-,") != NULL;
}

void ka_numa_init(void)
{
	int (*available)(void), (*configured)(void);

	if (ka_options.numa_off || !ka_numa_sysfs_several())
		return;
	void *lib = dlopen("libnuma.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		ka_message("liballoc: several NUMA nodes but no libnuma.so.1: "
			   "memory is not placed by node\n");
		return;
	}
	*(void **)&available = dlsym(lib, "numa_available");
	*(void **)&configured = dlsym(lib, "numa_num_configured_nodes");
	if (!available || !configured || available() < 0)
		return;
	int n = configured();
	if (n > 1)
		atomic_store_explicit(&ka_numa_count, n, KA_RELAXED);
}

int ka_numa_nodes(void)
{
	return atomic_load_explicit(&ka_numa_count, KA_RELAXED);
}

int ka_numa_node(void)
{
	unsigned cpu, node;

	if (atomic_load_explicit(&ka_numa_count, KA_RELAXED) == 0)
		return -1;
	if (getcpu(&cpu, &node) != 0)
		return -1;
	return (int)node;
}
