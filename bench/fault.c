/* SPDX-License-Identifier: MIT */
/*
 * fault: the fault path and release throughput of one region.
 *
 *   fault -b pages|vmalloc|anon|anon-thp|populate [-o order] [-m MiB] [-p seq|rand]
 *         [-c release-chunk-KiB] [-r seed]
 *
 * pages, vmalloc: a kalloc region (KALLOC_IOC_CREATE, PAGES of the given
 * order or VMALLOC) mapped MAP_SHARED; anon: anonymous private memory in
 * 4 KiB pages (transparent huge pages off for the process, with
 * PR_SET_THP_DISABLE); anon-thp: the same with MADV_HUGEPAGE, huge pages
 * wherever the kernel's THP setting allows them; populate: 4 KiB anonymous
 * memory with MAP_POPULATE (its faults happen inside mmap).
 * Every page gets one write, in address order (seq) or in a random
 * permutation (rand).  Reported: ns per page for the touch alone and for
 * setup + touch (VMALLOC allocates everything at CREATE, populate in
 * mmap), minor faults over setup + touch (getrusage), the faults kalloc
 * counted (KALLOC_IOC_INFO), then the time to hand the whole region back
 * in chunks of c KiB (KALLOC_IOC_RELEASE; madvise(MADV_DONTNEED) for
 * anonymous memory) as GiB/s.  c = 0 skips the release.
 */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <linux/kalloc.h>

#include "common.h"

#define BENCH_PROG "fault"
#include "mapping.h"

static void usage(void)
{
	fprintf(stderr, "usage: fault -b pages|vmalloc|anon|anon-thp|populate [-o order] [-m MiB] "
		"[-p seq|rand] [-c release-chunk-KiB] [-r seed]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *backing = NULL, *pattern = "seq";
	long order = 0, mib = 1024, chunk_kb = 2048;
	unsigned long seed = 1;
	int c;

	while ((c = getopt(argc, argv, "b:o:m:p:c:r:h")) != -1) {
		switch (c) {
		case 'b': backing = optarg; break;
		case 'o': order = atol(optarg); break;
		case 'm': mib = atol(optarg); break;
		case 'p': pattern = optarg; break;
		case 'c': chunk_kb = atol(optarg); break;
		case 'r': seed = strtoul(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (!backing || optind != argc || mib < 1 || order < 0 || chunk_kb < 0 ||
	    (strcmp(pattern, "seq") && strcmp(pattern, "rand")))
		usage();
	int kalloc = !strcmp(backing, "pages") || !strcmp(backing, "vmalloc");
	int populate = !strcmp(backing, "populate"), thp = !strcmp(backing, "anon-thp");
	if (!kalloc && !populate && !thp && strcmp(backing, "anon"))
		usage();
	if (!kalloc && !thp && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
		die("PR_SET_THP_DISABLE");

	size_t pg = (size_t)sysconf(_SC_PAGESIZE), size = (size_t)mib << 20;
	size_t npages = size / pg;
	size_t *perm = bench_xmalloc(npages * sizeof *perm);
	for (size_t i = 0; i < npages; i++)
		perm[i] = i;
	if (!strcmp(pattern, "rand")) {
		uint64_t rng = bench_seed(seed, 0);
		for (size_t i = npages - 1; i > 0; i--) {
			size_t j = (size_t)(bench_rand(&rng) % (i + 1)), t = perm[i];
			perm[i] = perm[j];
			perm[j] = t;
		}
	}
	/* Fault the permutation in before the clock starts. */
	for (size_t i = 0; i < npages; i += pg / sizeof *perm)
		bench_escape(&perm[i]);

	int fd = -1;
	struct kalloc_version ver = { .argsz = sizeof ver };
	struct kalloc_create cr = { .argsz = sizeof cr };
	if (kalloc) {
		fd = open(KALLOC_DEVICE, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			die("open " KALLOC_DEVICE);
		if (ioctl(fd, KALLOC_IOC_VERSION, &ver))
			die("KALLOC_IOC_VERSION");
	}

	long f0 = minflt();
	double t0 = bench_now();
	char *p;
	if (kalloc) {
		cr.size = size;
		cr.backing = !strcmp(backing, "pages") ? KALLOC_BACKING_PAGES : KALLOC_BACKING_VMALLOC;
		cr.order = cr.backing == KALLOC_BACKING_PAGES ? (uint32_t)order : 0;
		cr.node = KALLOC_NODE_LOCAL;
		if (ioctl(fd, KALLOC_IOC_CREATE, &cr))
			die("KALLOC_IOC_CREATE");
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)cr.offset);
	} else {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
	}
	if (p == MAP_FAILED)
		die("mmap");
	if (thp && madvise(p, size, MADV_HUGEPAGE))
		die("MADV_HUGEPAGE");
	double t1 = bench_now();
	for (size_t i = 0; i < npages; i++)
		p[perm[i] * pg] = 1;
	double t2 = bench_now();
	long faults = minflt() - f0;

	struct kalloc_info info = { .argsz = sizeof info, .id = cr.id };
	if (kalloc && ioctl(fd, KALLOC_IOC_INFO, &info))
		die("KALLOC_IOC_INFO");

	double rel_s = 0;
	if (chunk_kb > 0) {
		size_t chunk = (size_t)chunk_kb << 10;
		double r0 = bench_now();
		for (size_t off = 0; off < size; off += chunk) {
			size_t len = size - off < chunk ? size - off : chunk;
			if (kalloc) {
				struct kalloc_release rel = { .argsz = sizeof rel, .id = cr.id,
							      .offset = off, .length = len };
				if (ioctl(fd, KALLOC_IOC_RELEASE, &rel))
					die("KALLOC_IOC_RELEASE");
			} else if (madvise(p + off, len, MADV_DONTNEED)) {
				die("madvise");
			}
		}
		rel_s = bench_now() - r0;
	}

	char thps[128];
	read_line("/sys/kernel/mm/transparent_hugepage/enabled", thps, sizeof thps);
	printf("{\"bench\": \"fault\", \"backing\": \"%s\", \"order\": %ld, \"pattern\": \"%s\", "
	       "\"mib\": %ld, \"pages\": %zu, \"setup_s\": %.6f, \"touch_s\": %.6f, "
	       "\"ns_per_page\": %.1f, \"total_ns_per_page\": %.1f, \"minflt\": %ld, "
	       "\"faults_per_page\": %.4f, \"kalloc_faults\": %llu, \"kalloc_resident\": %llu, "
	       "\"fault_around\": %u, \"release_chunk_kb\": %ld, \"release_s\": %.6f, "
	       "\"release_gib_s\": %.3f, \"thp\": \"%s\"}\n",
	       backing, kalloc && cr.backing == KALLOC_BACKING_PAGES ? order : 0, pattern,
	       mib, npages, t1 - t0, t2 - t1, (t2 - t1) * 1e9 / (double)npages,
	       (t2 - t0) * 1e9 / (double)npages, faults, (double)faults / (double)npages,
	       (unsigned long long)info.faults, (unsigned long long)info.resident,
	       ver.fault_around, chunk_kb, rel_s,
	       rel_s > 0 ? (double)size / (double)(1 << 30) / rel_s : 0.0, thps);

	munmap(p, size);
	if (kalloc) {
		struct kalloc_destroy d = { .argsz = sizeof d, .id = cr.id };
		ioctl(fd, KALLOC_IOC_DESTROY, &d);
		close(fd);
	}
	free(perm);
	return 0;
}
