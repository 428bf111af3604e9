/* SPDX-License-Identifier: MIT */
/*
 * huge-touch: first touch of a large range (1 GiB) and random reads over
 * it, for a kalloc PAGES region against anonymous memory with and without
 * transparent huge pages: what 2 MiB mappings buy (issue 15, part 2).
 *
 *   huge-touch -b pages|anon-thp|anon [-o order] [-m MiB] [-n reps]
 *              [-W warm-ups] [-R reads] [-r seed]
 *
 * One repetition:
 *  1. first touch: pages: KALLOC_IOC_CREATE of a PAGES region of the given
 *     order (9 by default) and mmap(NULL, MAP_SHARED), so the device's
 *     get_unmapped_area chooses the address (whether it came back 2 MiB
 *     aligned is reported: a PMD can only map an aligned 2 MiB); anon-thp:
 *     anonymous private memory, 2 MiB-aligned, MADV_HUGEPAGE; anon: the
 *     same with MADV_NOHUGEPAGE (4 KiB pages, the baseline).  Then memset
 *     of the whole range.  Timed: create + map + memset; the minor faults
 *     over it (getrusage) and, for kalloc, the faults the region counted.
 *     Then a second memset of the range, timed apart (rewrite): the same
 *     writes with every page already mapped and zeroed, the floor under
 *     any first touch that must write the range, whatever maps it.
 *  2. how the range is mapped, from /proc/self/smaps: Rss, AnonHugePages,
 *     FilePmdMapped and ShmemPmdMapped of the vmas in the range, and from
 *     them the TLB entries the range needs per GiB (PMD-mapped kB / 2048
 *     plus the rest / 4).  Under QEMU TCG the TLB is emulated, not
 *     modelled, so that count is the figure to judge TLB reach by there.
 *  3. TLB reach: -R random 8-byte reads over the range (xorshift64* with
 *     a fixed seed, the same addresses in every case), ns per read; each
 *     read is checked against the memset pattern.
 *  4. unmap (and DESTROY), timed apart.
 * -m is the range in MiB (1024; a multiple of 2, whole 2 MiB blocks, at
 * most 32 GiB), -R
 * the reads (16M; k and M suffixes), -r the reads' seed.
 * -W repetitions run first and are not reported (the device's first use
 * in the process); -n repetitions are reported with their median.  One
 * JSON line on stdout; a failing step exits 1 naming it and errno.
 */
#include <fcntl.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <linux/kalloc.h>

#include "common.h"

#define BENCH_PROG "huge-touch"
#include "mapping.h"

#define MAX_REPS	100
#define MAX_MIB		(32L << 10)	/* the reads' index is 32 bits of 8-byte words */
#define FILL		0x5a
#define FILL_WORD	0x5a5a5a5a5a5a5a5aULL

enum source { PAGES, ANON_THP, ANON };

static const char *const names[] = {
	[PAGES] = "pages", [ANON_THP] = "anon-thp", [ANON] = "anon",
};

static void usage(void)
{
	fprintf(stderr, "usage: huge-touch -b pages|anon-thp|anon [-o order] [-m MiB] "
		"[-n reps] [-W warm-ups] [-R reads] [-r seed]\n");
	exit(2);
}

/* A count, with an optional k or M suffix (binary multiples: 16M reads). */
static long parse_count(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || v < 1)
		usage();
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end)
		usage();
	return v;
}

/* One repetition's figures; all doubles so that one median() serves them. */
struct rep {
	double alloc_s, map_s, write_s, total_s, rewrite_s, read_ns, free_s;
	double minflt, kalloc_faults, aligned;
	double vma_kb, rss_kb, anon_huge_kb, file_pmd_kb, shmem_pmd_kb, pmd_kb;
	double tlb_per_gib;
};

static enum source src;
static int dev = -1;
static long order = 9;
static long nreads = 16L << 20;
static unsigned long seed = 1;
/* Where the last repetition's range was mapped: shows how it was aligned. */
static uintptr_t last_addr;

/* The kB value of an smaps field line "Name:   123 kB", if @line is one. */
static int smaps_field(const char *line, const char *name, double *sum)
{
	size_t n = strlen(name);
	long kb;

	if (strncmp(line, name, n) || line[n] != ':')
		return 0;
	if (sscanf(line + n + 1, "%ld kB", &kb) != 1) {
		fprintf(stderr, BENCH_PROG ": /proc/self/smaps: cannot parse \"%s\"\n", line);
		exit(1);
	}
	*sum += (double)kb;
	return 1;
}

/*
 * Sum the fields over the vmas that overlap [p, p + size).  The range is
 * one vma in practice (its madvise flags or its file keep it from merging
 * with a neighbour); vma_kb says how much the sums cover, so a merge would
 * show rather than skew the figures silently.
 */
static void read_smaps(const char *p, size_t size, struct rep *r)
{
	uintptr_t lo = (uintptr_t)p, hi = lo + size;
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[4096];
	int in = 0, vmas = 0;

	if (!f)
		die("open /proc/self/smaps");
	r->vma_kb = r->rss_kb = r->anon_huge_kb = r->file_pmd_kb = r->shmem_pmd_kb = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long start, end;

		line[strcspn(line, "\n")] = 0;
		/* A vma's header: "start-end perms offset dev inode [path]". */
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			in = start < hi && end > lo;
			vmas += in;
			continue;
		}
		if (!in)
			continue;
		if (!smaps_field(line, "Size", &r->vma_kb) &&
		    !smaps_field(line, "Rss", &r->rss_kb) &&
		    !smaps_field(line, "AnonHugePages", &r->anon_huge_kb) &&
		    !smaps_field(line, "FilePmdMapped", &r->file_pmd_kb))
			smaps_field(line, "ShmemPmdMapped", &r->shmem_pmd_kb);
	}
	if (ferror(f))
		die("read /proc/self/smaps");
	fclose(f);
	if (!vmas) {
		fprintf(stderr, BENCH_PROG ": /proc/self/smaps has no vma at %p\n", (const void *)p);
		exit(1);
	}
	r->pmd_kb = r->anon_huge_kb + r->file_pmd_kb + r->shmem_pmd_kb;
	/*
	 * Every byte of the range was written, so all of it is mapped: what a
	 * PMD does not map, 4 KiB entries do (counted from the range, not Rss,
	 * which a VM_PFNMAP mapping would leave at 0).
	 */
	double range_kb = (double)(size >> 10), pmd = r->pmd_kb < range_kb ? r->pmd_kb : range_kb;

	r->tlb_per_gib = (pmd / 2048 + (range_kb - pmd) / 4) * (1024.0 * 1024.0 / range_kb);
}

/* -R random aligned 8-byte reads over [p, p + size), ns per read. */
static double random_reads(const char *p, size_t size)
{
	uint64_t rng = bench_seed(seed, 0), sum = 0, words = size / 8;
	double t0 = bench_now(), t;

	for (long i = 0; i < nreads; i++) {
		/*
		 * Multiply-shift of the top 32 bits: uniform over the words
		 * without a division (words <= 2^32: main() caps -m at 32 GiB).
		 */
		uint64_t w = ((bench_rand(&rng) >> 32) * words) >> 32;

		sum += *(const uint64_t *)(p + w * 8);
	}
	t = bench_now() - t0;
	bench_escape(&sum);
	if (sum != (uint64_t)nreads * FILL_WORD) {
		fprintf(stderr, BENCH_PROG ": random reads: the range does not hold what "
			"memset wrote (sum %#llx)\n", (unsigned long long)sum);
		exit(1);
	}
	return t * 1e9 / (double)nreads;
}

static void one(size_t size, struct rep *r)
{
	struct kalloc_create cr = { .argsz = sizeof cr };
	struct kalloc_info info = { .argsz = sizeof info };
	long f0 = minflt();
	double t0 = bench_now(), t1, t2, t3, t4, t5, t6;
	char *p;

	if (src == PAGES) {
		cr.size = size;
		cr.backing = KALLOC_BACKING_PAGES;
		cr.order = (uint32_t)order;
		cr.node = KALLOC_NODE_LOCAL;
		if (ioctl(dev, KALLOC_IOC_CREATE, &cr))
			die("KALLOC_IOC_CREATE");
	}
	t1 = bench_now();
	if (src == PAGES) {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, dev, (off_t)cr.offset);
		if (p == MAP_FAILED)
			die("mmap of the kalloc region");
	} else {
		p = map_anon_aligned(size);
		if (madvise(p, size, src == ANON_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
			die(src == ANON_THP ? "madvise(MADV_HUGEPAGE)" : "madvise(MADV_NOHUGEPAGE)");
	}
	t2 = bench_now();
	memset(p, FILL, size);
	bench_escape(p);
	t3 = bench_now();
	r->minflt = (double)(minflt() - f0);
	r->aligned = ((uintptr_t)p & (HUGE_ALIGN - 1)) == 0;
	last_addr = (uintptr_t)p;
	r->kalloc_faults = -1;
	if (src == PAGES) {
		info.id = cr.id;
		if (ioctl(dev, KALLOC_IOC_INFO, &info))
			die("KALLOC_IOC_INFO");
		r->kalloc_faults = (double)info.faults;
	}
	t6 = bench_now();
	memset(p, FILL, size);
	bench_escape(p);
	r->rewrite_s = bench_now() - t6;
	read_smaps(p, size, r);
	r->read_ns = random_reads(p, size);

	t4 = bench_now();
	if (munmap(p, size))
		die("munmap");
	if (src == PAGES) {
		struct kalloc_destroy d = { .argsz = sizeof d, .id = cr.id };

		if (ioctl(dev, KALLOC_IOC_DESTROY, &d))
			die("KALLOC_IOC_DESTROY");
	}
	t5 = bench_now();
	r->alloc_s = t1 - t0;
	r->map_s = t2 - t1;
	r->write_s = t3 - t2;
	r->total_s = t3 - t0;
	r->free_s = t5 - t4;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double field(const struct rep *r, size_t off)
{
	return *(const double *)((const char *)r + off);
}

static double median(const struct rep *r, int n, size_t off)
{
	double v[MAX_REPS];

	for (int i = 0; i < n; i++)
		v[i] = field(&r[i], off);
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* "key": [each repetition's], "key_median": their median */
static void print_list(const char *key, const struct rep *r, int n, size_t off, int prec)
{
	printf(", \"%s\": [", key);
	for (int i = 0; i < n; i++)
		printf("%s%.*f", i ? ", " : "", prec, field(&r[i], off));
	printf("], \"%s_median\": %.*f", key, prec, median(r, n, off));
}

#define LIST(key, prec) print_list(#key, r, n, offsetof(struct rep, key), prec)

int main(int argc, char **argv)
{
	const char *backing = NULL;
	long mib = 1024, reps = 5, warm = 1;
	int c;

	while ((c = getopt(argc, argv, "b:o:m:n:W:R:r:h")) != -1) {
		switch (c) {
		case 'b': backing = optarg; break;
		case 'o': order = atol(optarg); break;
		case 'm': mib = atol(optarg); break;
		case 'n': reps = atol(optarg); break;
		case 'W': warm = atol(optarg); break;
		case 'R': nreads = parse_count(optarg); break;
		case 'r': seed = strtoul(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (!backing || optind != argc || mib < 2 || mib % 2 || mib > MAX_MIB || order < 0 ||
	    reps < 1 || reps > MAX_REPS || warm < 0 || nreads < 1)
		usage();
	size_t i;
	for (i = 0; i < sizeof names / sizeof *names; i++)
		if (!strcmp(backing, names[i]))
			break;
	if (i == sizeof names / sizeof *names)
		usage();
	src = (enum source)i;
	if (src == PAGES) {
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

	char thp[128], defrag[128];
	int n = (int)reps, aligned = 0;
	for (int k = 0; k < n; k++)
		aligned += r[k].aligned != 0;
	read_line("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof thp);
	read_line("/sys/kernel/mm/transparent_hugepage/defrag", defrag, sizeof defrag);
	printf("{\"bench\": \"huge-touch\", \"backing\": \"%s\", \"order\": %ld, "
	       "\"mib\": %ld, \"reps\": %d, \"warmups\": %ld, \"reads\": %ld, \"seed\": %lu, "
	       "\"aligned_2mib\": %d, \"last_addr\": \"%#lx\"",
	       backing, src == PAGES ? order : 0, mib, n, warm, nreads, seed, aligned,
	       (unsigned long)last_addr);
	LIST(total_s, 6);
	LIST(alloc_s, 6);
	LIST(map_s, 6);
	LIST(write_s, 6);
	LIST(rewrite_s, 6);
	LIST(free_s, 6);
	LIST(read_ns, 2);
	LIST(minflt, 0);
	LIST(kalloc_faults, 0);
	LIST(vma_kb, 0);
	LIST(rss_kb, 0);
	LIST(anon_huge_kb, 0);
	LIST(file_pmd_kb, 0);
	LIST(shmem_pmd_kb, 0);
	LIST(pmd_kb, 0);
	LIST(tlb_per_gib, 0);
	printf(", \"thp\": \"%s\", \"thp_defrag\": \"%s\"}\n", thp, defrag);
	if (dev >= 0 && close(dev))
		die("close " KALLOC_DEVICE);
	return 0;
}
