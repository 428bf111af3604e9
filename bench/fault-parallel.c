/* SPDX-License-Identifier: MIT */
/*
 * fault-parallel: first touch of one region by several threads at once,
 * optionally while another thread of the process maps and unmaps.
 *
 *   fault-parallel -b pages|anon|anon-thp [-o order] [-m MiB] [-t threads] [-C]
 *
 * pages: a kalloc PAGES region of the given block order (KALLOC_IOC_CREATE,
 * mmap MAP_SHARED); anon: anonymous private memory in 4 KiB pages
 * (MADV_NOHUGEPAGE); anon-thp: the same with MADV_HUGEPAGE.  Anonymous
 * mappings are placed 2 MiB-aligned so that every 2 MiB of them can be a
 * huge page.  Thread i of t writes one byte in every page of the i-th of t
 * equal, disjoint parts of the region, in address order.  With -C a further
 * thread maps and unmaps 16 KiB of anonymous memory in a loop from the
 * touchers' start until the last of them finishes: every mmap and munmap
 * takes the process's mmap_lock for writing, which is what a fault that
 * needs mmap_lock waits behind.
 *
 * Region setup (CREATE, mmap) is not timed.  Reported: the wall time of the
 * touch phase (first toucher's start to last toucher's end) and that per
 * page, each toucher's own time, the churn loop's mmap/munmap pairs, minor
 * faults over the touch phase (getrusage, all threads), the faults
 * kalloc counted (KALLOC_IOC_INFO), and the module's fault-lock counters
 * over the touch phase (see read_lock_stats()).
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <linux/kalloc.h>

#include "common.h"

#define BENCH_PROG "fault-parallel"
#include "mapping.h"

#define MAX_THREADS	64
#define CHURN_BYTES	(16 << 10)

/*
 * The module's fault-lock counters (/proc/kalloc totals): how many faults
 * waited for their region's lock and how long, how long faults held it
 * (only while the module parameter lock_stat is 1), and how many ran
 * under the per-VMA lock.  -1 where the module does not show one.
 */
static const char *const lock_keys[] = {
	"fault_lock_waits", "fault_lock_wait_ns", "fault_lock_holds",
	"fault_lock_hold_ns", "faults_vma_locked",
};
#define NR_LOCK_KEYS	(sizeof(lock_keys) / sizeof(lock_keys[0]))

static void read_lock_stats(long long *v)
{
	char line[256], key[64];
	long long value;
	FILE *f = fopen("/proc/kalloc", "r");

	for (size_t i = 0; i < NR_LOCK_KEYS; i++)
		v[i] = -1;
	if (!f)
		return;
	while (fgets(line, sizeof line, f) && line[0] != '\n')
		for (size_t i = 0; i < NR_LOCK_KEYS; i++)
			if (sscanf(line, "%63s %lld", key, &value) == 2 &&
			    !strcmp(key, lock_keys[i]))
				v[i] = value;
	fclose(f);
}

static void usage(void)
{
	fprintf(stderr, "usage: fault-parallel -b pages|anon|anon-thp [-o order] [-m MiB] "
		"[-t threads] [-C]\n");
	exit(2);
}

/* What every thread reads; the touchers' times are theirs alone to write. */
static struct {
	char *base;
	size_t pg, npages;
	long threads;
	pthread_barrier_t start;
	atomic_int stop;
	double begin[MAX_THREADS], end[MAX_THREADS];
	unsigned long churn_ops;
} run;

static void *toucher(void *arg)
{
	size_t i = (size_t)(uintptr_t)arg, t = (size_t)run.threads;
	size_t lo = run.npages * i / t, hi = run.npages * (i + 1) / t;

	pthread_barrier_wait(&run.start);
	run.begin[i] = bench_now();
	for (size_t p = lo; p < hi; p++)
		run.base[p * run.pg] = 1;
	run.end[i] = bench_now();
	return NULL;
}

static void *churner(void *arg)
{
	unsigned long ops = 0;

	(void)arg;
	pthread_barrier_wait(&run.start);
	while (!atomic_load_explicit(&run.stop, memory_order_relaxed)) {
		void *p = mmap(NULL, CHURN_BYTES, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			die("churn mmap");
		if (munmap(p, CHURN_BYTES))
			die("churn munmap");
		ops++;
	}
	run.churn_ops = ops;
	return NULL;
}

int main(int argc, char **argv)
{
	const char *backing = NULL;
	long order = 0, mib = 512, threads = 1;
	int churn = 0, c;

	while ((c = getopt(argc, argv, "b:o:m:t:Ch")) != -1) {
		switch (c) {
		case 'b': backing = optarg; break;
		case 'o': order = atol(optarg); break;
		case 'm': mib = atol(optarg); break;
		case 't': threads = atol(optarg); break;
		case 'C': churn = 1; break;
		default: usage();
		}
	}
	if (!backing || optind != argc || mib < 1 || order < 0 || threads < 1 ||
	    threads > MAX_THREADS)
		usage();
	int kalloc = !strcmp(backing, "pages"), thp = !strcmp(backing, "anon-thp");
	if (!kalloc && !thp && strcmp(backing, "anon"))
		usage();

	size_t size = (size_t)mib << 20;
	run.pg = (size_t)sysconf(_SC_PAGESIZE);
	run.npages = size / run.pg;
	run.threads = threads;

	int fd = -1;
	struct kalloc_version ver = { .argsz = sizeof ver };
	struct kalloc_create cr = { .argsz = sizeof cr };
	if (kalloc) {
		fd = open(KALLOC_DEVICE, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			die("open " KALLOC_DEVICE);
		if (ioctl(fd, KALLOC_IOC_VERSION, &ver))
			die("KALLOC_IOC_VERSION");
		cr.size = size;
		cr.backing = KALLOC_BACKING_PAGES;
		cr.order = (uint32_t)order;
		cr.node = KALLOC_NODE_LOCAL;
		if (ioctl(fd, KALLOC_IOC_CREATE, &cr))
			die("KALLOC_IOC_CREATE");
		run.base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				(off_t)cr.offset);
		if (run.base == MAP_FAILED)
			die("mmap");
	} else {
		run.base = map_anon_aligned(size);
		if (madvise(run.base, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
			die(thp ? "MADV_HUGEPAGE" : "MADV_NOHUGEPAGE");
	}

	unsigned parties = (unsigned)threads + (unsigned)churn;
	pthread_t th[MAX_THREADS + 1];
	if (pthread_barrier_init(&run.start, NULL, parties))
		die("pthread_barrier_init");
	long long locks0[NR_LOCK_KEYS], locks1[NR_LOCK_KEYS];
	read_lock_stats(locks0);
	long f0 = minflt();
	for (long i = 0; i < threads; i++)
		bench_spawn(&th[i], toucher, (void *)(uintptr_t)i);
	if (churn)
		bench_spawn(&th[threads], churner, NULL);
	for (long i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	atomic_store(&run.stop, 1);
	if (churn)
		pthread_join(th[threads], NULL);
	long faults = minflt() - f0;
	read_lock_stats(locks1);
	for (size_t i = 0; i < NR_LOCK_KEYS; i++)
		locks1[i] = kalloc && locks0[i] >= 0 ? locks1[i] - locks0[i] : -1;

	double first = run.begin[0], last = run.end[0];
	for (long i = 1; i < threads; i++) {
		first = run.begin[i] < first ? run.begin[i] : first;
		last = run.end[i] > last ? run.end[i] : last;
	}
	double wall = last - first;

	struct kalloc_info info = { .argsz = sizeof info, .id = cr.id };
	if (kalloc && ioctl(fd, KALLOC_IOC_INFO, &info))
		die("KALLOC_IOC_INFO");

	char thps[128], per[MAX_THREADS * 16] = "";
	size_t n = 0;
	read_line("/sys/kernel/mm/transparent_hugepage/enabled", thps, sizeof thps);
	for (long i = 0; i < threads; i++)
		n += (size_t)snprintf(per + n, sizeof per - n, "%s%.6f", i ? ", " : "",
				      run.end[i] - run.begin[i]);
	printf("{\"bench\": \"fault-parallel\", \"backing\": \"%s\", \"order\": %ld, "
	       "\"mib\": %ld, \"pages\": %zu, \"threads\": %ld, \"churn\": %d, "
	       "\"touch_s\": %.6f, \"ns_per_page\": %.1f, \"thread_s\": [%s], "
	       "\"churn_ops\": %lu, \"churn_ops_per_s\": %.0f, \"minflt\": %ld, "
	       "\"kalloc_faults\": %llu, \"fault_around\": %u, \"thp\": \"%s\", "
	       "\"lock_waits\": %lld, \"lock_wait_ns\": %lld, \"lock_holds\": %lld, "
	       "\"lock_hold_ns\": %lld, \"vma_locked\": %lld}\n",
	       backing, kalloc ? order : 0, mib, run.npages, threads, churn,
	       wall, wall * 1e9 / (double)run.npages, per, run.churn_ops,
	       wall > 0 ? (double)run.churn_ops / wall : 0.0, faults,
	       (unsigned long long)info.faults, ver.fault_around, thps,
	       locks1[0], locks1[1], locks1[2], locks1[3], locks1[4]);

	munmap(run.base, size);
	if (kalloc) {
		struct kalloc_destroy d = { .argsz = sizeof d, .id = cr.id };

		if (ioctl(fd, KALLOC_IOC_DESTROY, &d))
			die("KALLOC_IOC_DESTROY");
		close(fd);
	}
	pthread_barrier_destroy(&run.start);
	return 0;
}
