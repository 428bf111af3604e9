// SPDX-License-Identifier: GPL-2.0
/*
 * kalloc_regions: regions of known shape for tools/test/vm.sh to find in
 * kallocstat's output.
 *
 * Creates four regions and touches some of each, then prints what
 * KALLOC_IOC_INFO says of each ("region ID BACKING ORDER SIZE_PAGES
 * RESIDENT_PAGES FAULTS MAPPINGS"), then "ready PID", and holds the device
 * (fd and mappings) until SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kalloc.h>

static const struct shape {
	unsigned backing, order;
	unsigned long pages;	/* size */
	unsigned long touch;	/* pages written from the start; ~0: not mapped */
} shapes[] = {
	{ KALLOC_BACKING_PAGES, 0, 256, 64 },
	{ KALLOC_BACKING_PAGES, 2, 128, 128 },
	{ KALLOC_BACKING_VMALLOC, 0, 32, 32 },
	{ KALLOC_BACKING_PAGES, 0, 16, ~0UL },
};
#define NR_SHAPES (sizeof(shapes) / sizeof(shapes[0]))

static void die(const char *what)
{
	fprintf(stderr, "kalloc_regions: %s: %s\n", what, strerror(errno));
	_exit(2);
}

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned ids[NR_SHAPES];
	sigset_t set;
	int fd, sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fd = open(KALLOC_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open " KALLOC_DEVICE);
	for (size_t i = 0; i < NR_SHAPES; i++) {
		struct kalloc_create c = {
			.argsz = sizeof(c), .size = shapes[i].pages * page,
			.backing = shapes[i].backing, .order = shapes[i].order,
			.node = KALLOC_NODE_LOCAL,
		};
		char *p;

		if (ioctl(fd, KALLOC_IOC_CREATE, &c))
			die("KALLOC_IOC_CREATE");
		ids[i] = c.id;
		if (shapes[i].touch == ~0UL)
			continue;
		p = mmap(NULL, c.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)c.offset);
		if (p == MAP_FAILED)
			die("mmap");
		for (unsigned long pg = 0; pg < shapes[i].touch; pg++)
			p[pg * page] = 1;
	}
	for (size_t i = 0; i < NR_SHAPES; i++) {
		struct kalloc_info info = { .argsz = sizeof(info), .id = ids[i] };

		if (ioctl(fd, KALLOC_IOC_INFO, &info))
			die("KALLOC_IOC_INFO");
		printf("region %u %s %u %llu %llu %llu %u\n", info.id,
		       info.backing == KALLOC_BACKING_PAGES ? "pages" : "vmalloc", info.order,
		       (unsigned long long)(info.size / page), (unsigned long long)info.resident,
		       (unsigned long long)info.faults, info.mappings);
	}
	printf("ready %d\n", getpid());
	fflush(stdout);
	return sigwait(&set, &sig) ? 3 : 0;
}
