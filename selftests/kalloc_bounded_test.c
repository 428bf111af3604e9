// SPDX-License-Identifier: GPL-2.0
/*
 * Bounded work: what one process makes the module do stays bounded,
 * killable and out of other processes' way.
 *
 * - fork copies a region once per child, however many vmas map it;
 * - a process killed while fork copies a large region dies promptly, and
 *   everything it held is freed;
 * - a process killed while one thread's fault waits behind another
 *   thread's RELEASE dies, and everything it held is freed;
 * - reading /proc/kalloc over 100,000 regions never makes CREATE wait for
 *   the read;
 * - a read of /proc/kalloc costs what the regions hold, not their size.
 *
 * No wall-clock thresholds: each time or rate is compared with another
 * measured on the same machine in the same run, or the check needs no
 * clock at all.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include "kalloc_test.h"
#include "kselftest_harness.h"

FIXTURE(bounded) {
	long max_pages;		/* the parameter, as a test may change it */
};

FIXTURE_SETUP(bounded)
{
	self->max_pages = kt_param("max_pages");
	ASSERT_LE(0, self->max_pages);
}

FIXTURE_TEARDOWN(bounded)
{
	kt_set_param("max_pages", self->max_pages);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long kt_resident(void)
{
	return kt_proc_total("resident_pages") + kt_proc_total("resident_vmalloc");
}

static int bytes_are(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/*
 * A region DESTROYed while mapped, its mapping split into one vma per page
 * (every other page read-only): the child gets one copy of it, not one per
 * vma.  max_pages leaves room for a few copies only, so that a module that
 * copies per vma fails here rather than fill the guest.
 */
static void fork_split_region(struct __test_metadata *_metadata,
			      unsigned int backing)
{
	const unsigned long pages = 4096;
	const size_t size = pages * KT_PAGE;
	long regions, resident;
	int fd, to_child[2], to_parent[2], status;
	struct kalloc_create c;
	unsigned char *p;
	double t0, t_fork;
	unsigned long i;
	pid_t pid;
	char go;

	fd = kt_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kt_create(fd, size, backing, 0, KALLOC_NODE_LOCAL, &c));
	p = kt_map(fd, &c, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x5a, size);
	ASSERT_EQ(0, kt_destroy(fd, c.id));
	for (i = 0; i < pages; i += 2)
		ASSERT_EQ(0, mprotect(p + i * KT_PAGE, KT_PAGE, PROT_READ));
	regions = kt_proc_total("regions");
	resident = kt_resident();
	ASSERT_EQ(0, kt_set_param("max_pages", resident + 4 * pages));
	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(to_parent));

	t0 = now();
	pid = fork();
	if (pid == 0) {
		/* every vma shows the parent's data; the writable ones take ours */
		for (i = 0; i < pages; i++)
			if (!bytes_are(p + i * KT_PAGE, KT_PAGE, 0x5a))
				_exit(80);
		for (i = 1; i < pages; i += 2)
			memset(p + i * KT_PAGE, 0xa5, KT_PAGE);
		if (write(to_parent[1], "c", 1) != 1 ||
		    read(to_child[0], &go, 1) != 1)
			_exit(81);
		_exit(0);
	}
	t_fork = now() - t0;
	ASSERT_LE(0, pid);
	ASSERT_EQ(1, read(to_parent[0], &go, 1));
	TH_LOG("fork of %lu vmas: %.3f s; the child holds %ld regions, %ld pages",
	       pages / 2 * 2, t_fork, kt_proc_total("regions") - regions,
	       kt_resident() - resident);
	EXPECT_EQ(regions + 1, kt_proc_total("regions")) TH_LOG("one copy per child, not one per vma");
	EXPECT_EQ(resident + (long)pages, kt_resident()) TH_LOG("the child holds one copy's pages");
	ASSERT_EQ(1, write(to_child[1], "g", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) TH_LOG("child status %#x", status);
	EXPECT_TRUE(bytes_are(p, size, 0x5a)) TH_LOG("the child's writes showed in the parent");
	EXPECT_EQ(regions, kt_proc_total("regions"));
	EXPECT_EQ(resident, kt_resident());
	munmap(p, size);
	close(fd);
	close(to_child[0]);
	close(to_child[1]);
	close(to_parent[0]);
	close(to_parent[1]);
}

TEST_F_TIMEOUT(bounded, fork_copies_a_split_pages_region_once, 120)
{
	fork_split_region(_metadata, KALLOC_BACKING_PAGES);
}

TEST_F_TIMEOUT(bounded, fork_copies_a_split_vmalloc_region_once, 120)
{
	fork_split_region(_metadata, KALLOC_BACKING_VMALLOC);
}

/*
 * A holder maps and fills a large region, then forks again and again (each
 * child exits at once).  The test watches the resident total in
 * /proc/kalloc: once a fork's copy is a tenth done, it kills the holder,
 * and goes on watching until the holder is reaped.  A copy that stops at
 * the kill never brings the total much past the region plus that tenth;
 * one that goes on brings it to twice the region.  So the test needs no
 * clock: the copy must not get past three quarters of the region after
 * the kill, and once the holder is reaped every region and page is gone.
 */
#define KILL_REGION_PAGES	32768L		/* 128 MiB */

static void holder(int fd, int report)
{
	const size_t size = KILL_REGION_PAGES * KT_PAGE;
	struct kalloc_create c;
	unsigned char *p;
	int status;
	pid_t pid;

	if (kt_create(fd, size, KALLOC_BACKING_PAGES, 0, KALLOC_NODE_LOCAL, &c))
		_exit(90);
	p = kt_map(fd, &c, 0);
	if (p == MAP_FAILED)
		_exit(91);
	memset(p, 0x3c, size);
	if (write(report, "r", 1) != 1)
		_exit(92);
	for (;;) {
		pid = fork();
		if (pid == 0)
			_exit(0);
		if (pid > 0)
			waitpid(pid, &status, 0);
	}
}

TEST_F_TIMEOUT(bounded, killed_while_fork_copies_dies_promptly_and_frees_everything, 120)
{
	long regions = kt_proc_total("regions"), base = kt_resident();
	long now_res, at_kill = -1, most = -1;
	int fds[2], fd, status;
	double t_kill = 0;
	pid_t pid;
	char go;

	ASSERT_EQ(0, pipe(fds));
	fd = kt_open();
	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(fds[0]);
		holder(fd, fds[1]);
	}
	close(fd);
	close(fds[1]);
	ASSERT_EQ(1, read(fds[0], &go, 1));
	close(fds[0]);
	for (;;) {
		now_res = kt_resident() - base - KILL_REGION_PAGES;
		if (at_kill < 0 && now_res >= KILL_REGION_PAGES / 10) {
			t_kill = now();
			ASSERT_EQ(0, kill(pid, SIGKILL));
			at_kill = now_res;
		}
		if (at_kill >= 0 && now_res > most)
			most = now_res;
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
	}
	TH_LOG("%ld-page region: copied %ld pages at the kill, at most %ld after; died %.3f s after SIGKILL",
	       KILL_REGION_PAGES, at_kill, most, now() - t_kill);
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) TH_LOG("status %#x", status);
	EXPECT_LT(most, KILL_REGION_PAGES * 3 / 4) TH_LOG("the copy went on after SIGKILL");
	EXPECT_EQ(regions, kt_proc_total("regions")) TH_LOG("regions leaked");
	EXPECT_EQ(base, kt_resident()) TH_LOG("pages leaked");
}

/*
 * One thread RELEASEs a VMALLOC region again and again (zeroing it under
 * the region's lock), others keep touching its pages (a fault each time,
 * which waits for that lock), and two more keep the CPUs busy, so that
 * the releasing thread is preempted with the lock held and the waiting
 * faults sleep rather than spin on it: killed, the process dies and
 * leaves nothing.  A fault killed while it waits returns VM_FAULT_RETRY having
 * dropped mmap_lock itself; a mistake there (a lock dropped twice, or not
 * at all) hangs the exit or shows in the kernel log, which the VM runner
 * fails on.  This runs that path; it cannot tell a killable wait from an
 * uninterruptible one by time, as the releasing thread holds the process
 * until its RELEASE ends either way.
 */
#define RELEASE_REGION_PAGES	16384UL		/* 64 MiB */

#define TOUCHERS		3
#define SPINNERS		2

struct releaser {
	int fd;
	unsigned int id;
	volatile unsigned char *p;
};

struct toucher {
	struct releaser *r;
	unsigned long page;
};

static void *release_forever(void *arg)
{
	struct releaser *r = arg;

	for (;;)
		kt_release(r->fd, r->id, 0, RELEASE_REGION_PAGES * KT_PAGE);
	return NULL;
}

static void *touch_forever(void *arg)
{
	struct toucher *t = arg;

	for (;;)
		t->r->p[t->page * KT_PAGE]++;
	return NULL;
}

static void *spin_forever(void *arg)
{
	volatile unsigned long *n = arg;

	for (;;)
		(*n)++;
	return NULL;
}

TEST_F_TIMEOUT(bounded, killed_while_a_fault_waits_behind_a_release_dies, 120)
{
	long regions = kt_proc_total("regions"), resident = kt_resident();
	int fds[2], status;
	double t_kill;
	pid_t pid;
	char go;

	ASSERT_EQ(0, pipe(fds));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct toucher touchers[TOUCHERS];
		unsigned long spins[SPINNERS];
		struct kalloc_create c;
		struct releaser r;
		pthread_t t;
		int i;

		r.fd = kt_open();
		if (r.fd < 0 || kt_create(r.fd, RELEASE_REGION_PAGES * KT_PAGE,
					  KALLOC_BACKING_VMALLOC, 0,
					  KALLOC_NODE_LOCAL, &c))
			_exit(100);
		r.id = c.id;
		r.p = kt_map(r.fd, &c, 0);
		if (r.p == MAP_FAILED)
			_exit(101);
		if (pthread_create(&t, NULL, release_forever, &r))
			_exit(102);
		for (i = 0; i < TOUCHERS; i++) {
			touchers[i].r = &r;
			touchers[i].page = i * (RELEASE_REGION_PAGES / TOUCHERS);
			if (pthread_create(&t, NULL, touch_forever, &touchers[i]))
				_exit(102);
		}
		for (i = 0; i < SPINNERS; i++)
			if (pthread_create(&t, NULL, spin_forever, &spins[i]))
				_exit(102);
		if (write(fds[1], "r", 1) != 1)
			_exit(103);
		for (;;)
			pause();
	}
	close(fds[1]);
	ASSERT_EQ(1, read(fds[0], &go, 1));
	close(fds[0]);
	usleep(300000);
	t_kill = now();
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	TH_LOG("died %.3f s after SIGKILL", now() - t_kill);
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) TH_LOG("status %#x", status);
	EXPECT_EQ(regions, kt_proc_total("regions")) TH_LOG("regions leaked");
	EXPECT_EQ(resident, kt_resident()) TH_LOG("pages leaked");
}

/*
 * 100,000 regions; one process reads /proc/kalloc whole, again and again,
 * while another CREATEs (and DESTROYs) regions and times each CREATE.
 * CREATE must never wait for the walk.  A CREATE that waits for a
 * reader's walk waits a sizeable part of a read, and then waits again for
 * the next walk: the creates a process gets done while /proc/kalloc is
 * read collapse to a few per read.  So the test compares the rate of
 * CREATE while a reader reads with the rate, on the same machine, for as
 * long as one read takes, while a process that only burns CPU runs
 * instead of the reader (so that both phases share the CPUs alike); the
 * rate with a reader must be at least an eighth of it (the old module's
 * was a fortieth; this one's is a third or more in a loaded guest).  The latencies (median, 99th percentile,
 * slowest) of both phases and the time of one read are reported; the
 * slowest CREATE is not judged on its own: on a loaded host the guest's
 * CPU itself stalls now and then, whatever the module does.
 */
#define PROC_REGIONS	100000
#define PROC_READS	2
#define PROC_CREATES_MAX	(1 << 20)

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double read_proc_whole(void)
{
	static char buf[1 << 16];
	double t0 = now();
	int fd = open(KALLOC_PROC, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	close(fd);
	return n < 0 ? -1 : now() - t0;
}

/* One CREATE, timed, and its DESTROY; the CREATE's time, or -1. */
static double timed_create(int fd)
{
	struct kalloc_create c;
	double t0 = now(), t;

	if (kt_create(fd, KT_PAGE, KALLOC_BACKING_PAGES, 0, KALLOC_NODE_LOCAL, &c))
		return -1;
	t = now() - t0;
	return kt_destroy(fd, c.id) ? -1 : t;
}

struct latencies {
	double *t;
	long n;
	double elapsed;
};

static void latencies_log(struct __test_metadata *_metadata, const char *what,
			  struct latencies *l)
{
	long n = l->n < PROC_CREATES_MAX ? l->n : PROC_CREATES_MAX;

	qsort(l->t, n, sizeof(*l->t), cmp_double);
	TH_LOG("%s: %ld creates in %.3f s (%.0f/s): median %.6f s, 99th percentile %.6f s, slowest %.6f s",
	       what, l->n, l->elapsed, l->n / l->elapsed, l->t[n / 2],
	       l->t[n * 99 / 100], l->t[n - 1]);
}

/* Take the read times the reader has sent so far; how many there were. */
static int take_read_times(int fd, double *fastest)
{
	double t;
	int n = 0;

	while (read(fd, &t, sizeof(t)) == sizeof(t)) {
		if (t < *fastest)
			*fastest = t;
		n++;
	}
	return n;
}

TEST_F_TIMEOUT(bounded, proc_reads_never_stall_create, 300)
{
	struct latencies alone = { 0 }, read = { 0 };
	int fd, cfd, fds[2], status, reads = 0, i;
	double t_read, t0, t;
	struct kalloc_create c;
	pid_t reader;

	alone.t = malloc(PROC_CREATES_MAX * sizeof(double));
	read.t = malloc(PROC_CREATES_MAX * sizeof(double));
	ASSERT_TRUE(alone.t && read.t);
	fd = kt_open();
	ASSERT_LE(0, fd);
	for (i = 0; i < PROC_REGIONS; i++)
		ASSERT_EQ(0, kt_create(fd, KT_PAGE, KALLOC_BACKING_PAGES, 0,
				       KALLOC_NODE_LOCAL, &c));
	ASSERT_LE(PROC_REGIONS, kt_proc_total("regions"));
	cfd = kt_open();
	ASSERT_LE(0, cfd);

	/*
	 * No reader, but a process that burns a CPU as the reader will, so
	 * that both phases share the guest's CPUs alike: as long as one read
	 * takes.
	 */
	t_read = read_proc_whole();
	ASSERT_LT(0, t_read);
	reader = fork();
	ASSERT_LE(0, reader);
	if (reader == 0)
		for (;;)
			;
	t0 = now();
	do {
		t = timed_create(cfd);
		ASSERT_LE(0, t);
		alone.t[alone.n++ % PROC_CREATES_MAX] = t;
	} while (now() - t0 < t_read);
	alone.elapsed = now() - t0;
	ASSERT_EQ(0, kill(reader, SIGKILL));
	ASSERT_EQ(reader, waitpid(reader, &status, 0));

	/* a reader reads whole, PROC_READS times */
	ASSERT_EQ(0, pipe(fds));
	t0 = now();
	reader = fork();
	ASSERT_LE(0, reader);
	if (reader == 0) {
		close(fds[0]);
		for (i = 0; i < PROC_READS; i++) {
			t = read_proc_whole();
			if (t < 0 || write(fds[1], &t, sizeof(t)) != sizeof(t))
				_exit(1);
		}
		_exit(0);
	}
	close(fds[1]);
	ASSERT_EQ(0, fcntl(fds[0], F_SETFL, O_NONBLOCK));
	for (;;) {
		t = timed_create(cfd);
		ASSERT_LE(0, t);
		read.t[read.n++ % PROC_CREATES_MAX] = t;
		if (read.n % 16)
			continue;
		if (waitpid(reader, &status, WNOHANG) == reader)
			break;
		reads += take_read_times(fds[0], &t_read);
	}
	read.elapsed = now() - t0;
	reads += take_read_times(fds[0], &t_read);
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status)) TH_LOG("the reader failed: status %#x", status);
	ASSERT_EQ(PROC_READS, reads);
	close(fds[0]);
	close(cfd);
	close(fd);

	TH_LOG("%d regions: fastest whole read of /proc/kalloc %.3f s", PROC_REGIONS, t_read);
	latencies_log(_metadata, "a CPU burner, no reader", &alone);
	latencies_log(_metadata, "while reading", &read);
	EXPECT_GT(read.n / read.elapsed, alone.n / alone.elapsed / 8) TH_LOG("CREATE waited for /proc/kalloc reads");
	free(alone.t);
	free(read.t);
}

/*
 * A region's row in /proc/kalloc counts the 2 MiB blocks mapped by PMD
 * entries.  An order-9 region may be a terabyte, sparse: the row must cost
 * what the region holds, not one look per 2 MiB of its size (the old
 * module looked 524,288 times per terabyte per read, so any user could
 * make every reader's walk take seconds).  The test reads /proc/kalloc,
 * fastest of three, over PROC_BASE_REGIONS one-block order-9 regions, then
 * over the same plus PROC_BIG_REGIONS sparse terabyte ones, each holding
 * one touched block; the second read must take less than twice the first
 * (on 6.12 the old module's took 110 times as long: 0.55 s against
 * 0.005 s).  So that the cheaper walk still counts, each terabyte row must
 * show as many pages mapped by PMD as a one-block region mapped and
 * touched alike (512 where the kernel maps PMDs).
 */
#define PROC_BASE_REGIONS	1000
#define PROC_BIG_REGIONS	8
#define PROC_BIG_SIZE		(1ULL << 40)
#define PROC_BLOCK_SIZE		(2UL << 20)	/* an order-9 block */

static double read_proc_fastest(void)
{
	double best = -1, t;

	for (int i = 0; i < 3; i++) {
		t = read_proc_whole();
		if (t < 0)
			return -1;
		if (best < 0 || t < best)
			best = t;
	}
	return best;
}

TEST_F_TIMEOUT(bounded, proc_row_costs_what_the_region_holds, 300)
{
	struct kalloc_create c, big[PROC_BIG_REGIONS];
	struct kt_row row, control;
	double t_base, t_big;
	unsigned char *p;
	int fd, i;

	fd = kt_open();
	ASSERT_LE(0, fd);
	for (i = 0; i < PROC_BASE_REGIONS; i++)
		ASSERT_EQ(0, kt_create(fd, PROC_BLOCK_SIZE, KALLOC_BACKING_PAGES, 9,
				       KALLOC_NODE_LOCAL, &c));
	/* the control: the last one-block region, mapped and touched */
	p = mmap(NULL, PROC_BLOCK_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, c.offset);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	ASSERT_EQ(0, kt_proc_row(c.id, getpid(), &control));
	t_base = read_proc_fastest();
	ASSERT_LT(0, t_base);
	for (i = 0; i < PROC_BIG_REGIONS; i++) {
		ASSERT_EQ(0, kt_create(fd, PROC_BIG_SIZE, KALLOC_BACKING_PAGES, 9,
				       KALLOC_NODE_LOCAL, &big[i]));
		/* one block, in the middle, mapped at a 2 MiB-aligned address */
		p = mmap(NULL, PROC_BLOCK_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 big[i].offset + PROC_BIG_SIZE / 2);
		ASSERT_NE(MAP_FAILED, p);
		p[0] = 1;
	}
	t_big = read_proc_fastest();
	ASSERT_LT(0, t_big);
	TH_LOG("fastest whole read: %d one-block regions %.6f s; with %d sparse %llu GiB regions as well %.6f s",
	       PROC_BASE_REGIONS, t_base, PROC_BIG_REGIONS, PROC_BIG_SIZE >> 30, t_big);
	for (i = 0; i < PROC_BIG_REGIONS; i++) {
		ASSERT_EQ(0, kt_proc_row(big[i].id, getpid(), &row));
		EXPECT_EQ(512, row.resident_pages);
		EXPECT_EQ(control.pmd_pages, row.pmd_pages) TH_LOG("region %u", big[i].id);
	}
	TH_LOG("pages mapped by PMD in each row: %lu", control.pmd_pages);
	EXPECT_LT(t_big, 2 * t_base) TH_LOG("a read's cost follows the regions' size");
	close(fd);
}

TEST_HARNESS_MAIN
