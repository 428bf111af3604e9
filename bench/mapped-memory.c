/* SPDX-License-Identifier: MIT */
/*
 * mapped-memory: the time to get memory that is allocated, mapped and
 * written, from each of the kernel's ways to hand out zeroed memory.
 *
 *   mapped-memory -b dmabuf|anon-thp|pages|anon|memfd [-o order] [-m MiB]
 *                 [-n reps] [-W warm-ups]
 *
 * One repetition: allocate (dmabuf: DMA_HEAP_IOCTL_ALLOC on
 * /dev/dma_heap/system, which allocates the whole buffer there; pages: a
 * kalloc PAGES region of the given order, KALLOC_IOC_CREATE; memfd:
 * memfd_create and ftruncate, shmem; anon, anon-thp: nothing), map (mmap of
 * the dma-buf fd, kalloc region or memfd, MAP_SHARED; anonymous private
 * memory 2 MiB-aligned with MADV_NOHUGEPAGE for anon, MADV_HUGEPAGE for
 * anon-thp), then memset the whole of it.  The time of those three is the
 * figure; unmapping and freeing are timed apart.  -W repetitions run first
 * and are not reported (the device's, heap's or file system's first use in
 * the process); -n repetitions are reported with their median.
 *
 * A kernel without the system heap (CONFIG_DMABUF_HEAPS_SYSTEM) has no
 * /dev/dma_heap/system: dmabuf then exits with status 77 saying so, and
 * reports no figure.
 */
#include <fcntl.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <linux/dma-heap.h>
#include <linux/kalloc.h>

#include "common.h"

#define BENCH_PROG "mapped-memory"
#include "mapping.h"

#define DMA_HEAP_SYSTEM	"/dev/dma_heap/system"
#define MAX_REPS	100
#define EXIT_UNAVAILABLE 77

enum source { DMABUF, ANON_THP, PAGES, ANON, MEMFD };

static void usage(void)
{
	fprintf(stderr, "usage: mapped-memory -b dmabuf|anon-thp|pages|anon|memfd [-o order] "
		"[-m MiB] [-n reps] [-W warm-ups]\n");
	exit(2);
}

struct rep {
	double alloc_s, map_s, write_s, total_s, free_s;
};

/* Per-process state: the device or heap opened once, before any timing. */
static enum source src;
static int dev = -1;
static long order;

static void one(size_t size, struct rep *r)
{
	struct kalloc_create cr = { .argsz = sizeof cr };
	int fd = -1;
	char *p;
	double t0 = bench_now(), t1, t2, t3, t4;

	switch (src) {
	case DMABUF: {
		struct dma_heap_allocation_data a = {
			.len = size, .fd_flags = O_RDWR | O_CLOEXEC,
		};

		if (ioctl(dev, DMA_HEAP_IOCTL_ALLOC, &a))
			die("DMA_HEAP_IOCTL_ALLOC");
		fd = (int)a.fd;
		break;
	}
	case PAGES:
		cr.size = size;
		cr.backing = KALLOC_BACKING_PAGES;
		cr.order = (uint32_t)order;
		cr.node = KALLOC_NODE_LOCAL;
		if (ioctl(dev, KALLOC_IOC_CREATE, &cr))
			die("KALLOC_IOC_CREATE");
		break;
	case MEMFD:
		fd = memfd_create("mapped-memory", MFD_CLOEXEC);
		if (fd < 0)
			die("memfd_create");
		if (ftruncate(fd, (off_t)size))
			die("ftruncate");
		break;
	case ANON:
	case ANON_THP:
		break;
	}
	t1 = bench_now();
	if (src == ANON || src == ANON_THP) {
		p = map_anon_aligned(size);
		if (madvise(p, size, src == ANON_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
			die("madvise");
	} else {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 src == PAGES ? dev : fd, src == PAGES ? (off_t)cr.offset : 0);
		if (p == MAP_FAILED)
			die("mmap");
	}
	t2 = bench_now();
	memset(p, 0x5a, size);
	bench_escape(p);
	t3 = bench_now();
	if (munmap(p, size))
		die("munmap");
	if (fd >= 0)
		close(fd);
	if (src == PAGES) {
		struct kalloc_destroy d = { .argsz = sizeof d, .id = cr.id };

		if (ioctl(dev, KALLOC_IOC_DESTROY, &d))
			die("KALLOC_IOC_DESTROY");
	}
	t4 = bench_now();
	*r = (struct rep){ t1 - t0, t2 - t1, t3 - t2, t3 - t0, t4 - t3 };
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const struct rep *r, int n, size_t field)
{
	double v[MAX_REPS];

	for (int i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&r[i] + field);
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void print_list(const char *key, const struct rep *r, int n, size_t field)
{
	printf(", \"%s\": [", key);
	for (int i = 0; i < n; i++)
		printf("%s%.6f", i ? ", " : "", *(const double *)((const char *)&r[i] + field));
	printf("], \"%s_median\": %.6f", key, median(r, n, field));
}

int main(int argc, char **argv)
{
	static const char *const names[] = {
		[DMABUF] = "dmabuf", [ANON_THP] = "anon-thp", [PAGES] = "pages",
		[ANON] = "anon", [MEMFD] = "memfd",
	};
	const char *backing = NULL;
	long mib = 256, reps = 5, warm = 1;
	int c;

	while ((c = getopt(argc, argv, "b:o:m:n:W:h")) != -1) {
		switch (c) {
		case 'b': backing = optarg; break;
		case 'o': order = atol(optarg); break;
		case 'm': mib = atol(optarg); break;
		case 'n': reps = atol(optarg); break;
		case 'W': warm = atol(optarg); break;
		default: usage();
		}
	}
	if (!backing || optind != argc || mib < 1 || order < 0 || reps < 1 ||
	    reps > MAX_REPS || warm < 0)
		usage();
	size_t i;
	for (i = 0; i < sizeof names / sizeof *names; i++)
		if (!strcmp(backing, names[i]))
			break;
	if (i == sizeof names / sizeof *names)
		usage();
	src = (enum source)i;

	if (src == DMABUF) {
		dev = open(DMA_HEAP_SYSTEM, O_RDONLY | O_CLOEXEC);
		if (dev < 0 && errno == ENOENT) {
			fprintf(stderr, "mapped-memory: no %s: the kernel has no dma-buf "
				"system heap (CONFIG_DMABUF_HEAPS_SYSTEM unset)\n",
				DMA_HEAP_SYSTEM);
			return EXIT_UNAVAILABLE;
		}
		if (dev < 0)
			die("open " DMA_HEAP_SYSTEM);
	} else if (src == PAGES) {
		dev = open(KALLOC_DEVICE, O_RDWR | O_CLOEXEC);
		if (dev < 0)
			die("open " KALLOC_DEVICE);
	}

	size_t size = (size_t)mib << 20;
	struct rep r[MAX_REPS], scratch;
	for (long w = 0; w < warm; w++)
		one(size, &scratch);
	for (long k = 0; k < reps; k++)
		one(size, &r[k]);

	char thp[128], shmem[128];
	int n = (int)reps;
	read_line("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof thp);
	read_line("/sys/kernel/mm/transparent_hugepage/shmem_enabled", shmem, sizeof shmem);
	printf("{\"bench\": \"mapped-memory\", \"backing\": \"%s\", \"order\": %ld, "
	       "\"mib\": %ld, \"reps\": %d, \"warmups\": %ld",
	       backing, src == PAGES ? order : 0, mib, n, warm);
	print_list("total_s", r, n, offsetof(struct rep, total_s));
	print_list("alloc_s", r, n, offsetof(struct rep, alloc_s));
	print_list("map_s", r, n, offsetof(struct rep, map_s));
	print_list("write_s", r, n, offsetof(struct rep, write_s));
	print_list("free_s", r, n, offsetof(struct rep, free_s));
	printf(", \"thp\": \"%s\", \"shmem_thp\": \"%s\"}\n", thp, shmem);
	if (dev >= 0)
		close(dev);
	return 0;
}
