// SPDX-License-Identifier: GPL-2.0
/*
 * Memory pressure: regions bigger than the machine, with max_pages off.
 *
 * A PAGES region is allocated on first touch, so a process can map twice
 * the machine's memory and touch it.  Each fault allocates single pages
 * that may reclaim and, once nothing is left to reclaim, invoke the OOM
 * killer (module/region.c); kalloc pages are mapped into the process and
 * count in its RSS, so the toucher is the process the OOM killer picks.
 * Once it has a fatal signal pending, the fault handler returns
 * VM_FAULT_OOM and the process dies of SIGKILL (module/fault.c).  The
 * tests check that this is what happens, that the pages come back when it
 * dies (the module's totals, no row of its pid, free memory), and that the
 * kernel lives and logs no warning or bug.
 *
 * A VMALLOC region is allocated whole at create: one larger than the
 * machine's memory is refused (ENOMEM) outright; one that fits the memory
 * but not what is free fails with ENOMEM after reclaim, without the OOM
 * killer (__GFP_RETRY_MAYFAIL), and gives back what it had taken.
 *
 * Under a memory cgroup's limit the same is covered by kalloc_memcg_test.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "kalloc_test.h"
#include "kselftest_harness.h"

#define MiB		(1UL << 20)
/* How far free memory may stay below where it was (see free_kb()). */
#define FREE_TOLERANCE_PERCENT	1

/* /proc/kalloc totals that return to where they were once a process's regions are gone */
static const char *const totals[] = {
	"regions", "resident_vmalloc", "resident_pages", "node0_resident",
};

/* Kernel log lines that mean a problem; an OOM report is not one. */
static const char *const problems[] = {
	"WARNING:", "BUG:", "Oops", "kalloc: leak", "general protection fault",
};

/* A /proc/meminfo field in kB, or -1. */
static long meminfo_kb(const char *key)
{
	char line[256], name[64];
	long value = -1, v;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63[^:]: %ld", name, &v) == 2 && !strcmp(name, key)) {
			value = v;
			break;
		}
	fclose(f);
	return value;
}

/* A /proc/vmstat counter, or -1. */
static long vmstat(const char *key)
{
	char name[64];
	long value = -1, v;
	FILE *f = fopen("/proc/vmstat", "re");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", name, &v) == 2)
		if (!strcmp(name, key)) {
			value = v;
			break;
		}
	fclose(f);
	return value;
}

/*
 * Free pages on the per-cpu lists, in kB: freeing a region's pages fills
 * these lists (to thousands of pages on 6.12) and MemFree does not count
 * them, though they are free; -1 if unknown.
 */
static long pcp_free_kb(void)
{
	char line[256];
	long pages = 0, count;
	FILE *f = fopen("/proc/zoneinfo", "re");

	if (!f)
		return -1;
	/* "count:" lines appear only in the zones' per-cpu pagesets */
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " count: %ld", &count) == 1)
			pages += count;
	fclose(f);
	return pages * (KT_PAGE / 1024);
}

/*
 * What is free, in kB: MemFree and the per-cpu free lists, with the page
 * cache and slab caches dropped first, so that it counts what kalloc took
 * and gave back, not what the caches did meanwhile; -1 if unknown.
 */
static long free_kb(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	long memfree, pcp;
	bool dropped;

	sync();
	if (fd < 0)
		return -1;
	dropped = write(fd, "3", 1) == 1;
	close(fd);
	memfree = meminfo_kb("MemFree");
	pcp = pcp_free_kb();
	return dropped && memfree >= 0 && pcp >= 0 ? memfree + pcp : -1;
}

/*
 * Freed pages can sit in deferred work for a moment: wait up to 5 s for
 * the free memory to come back within the tolerance.
 */
static long free_back(long before)
{
	long now = free_kb();

	for (int i = 0; i < 10 && now * 100 < before * (100 - FREE_TOLERANCE_PERCENT); i++) {
		usleep(500000);
		now = free_kb();
	}
	return now;
}

/* Does process @pid have a row in /proc/kalloc? */
static bool has_row(pid_t pid)
{
	struct kt_row row;

	return kt_proc_row(0, pid, &row) == 0;
}

FIXTURE(pressure) {
	long mem_total_kb;
	long totals_before[ARRAY_SIZE(totals)];
	long free_kb;		/* free memory before: free_kb() */
	long oom_kills;		/* the kernel's OOM kills before */
	int kmsg;		/* the kernel log from setup on */
	long max_pages, max_region_pages;
	unsigned long *progress;	/* the toucher's pages touched */
};

/*
 * Kernel log records written since setup: whether one says the OOM killer
 * killed @victim (0: none wanted), and how many look like a problem (the
 * first goes to @first).  Reads /dev/kmsg, which numbers records: nothing
 * is missed or counted twice however much the OOM reports log.
 */
static int kmsg_scan(FIXTURE_DATA(pressure) *self, pid_t victim, bool *killed,
		     char *first, size_t len)
{
	char rec[8192], want[64];
	const char *msg;
	int found = 0;
	ssize_t n;

	snprintf(want, sizeof(want), "Killed process %d (", victim);
	*killed = false;
	while ((n = read(self->kmsg, rec, sizeof(rec) - 1)) != 0) {
		if (n < 0) {
			if (errno == EPIPE)	/* overwritten before read: go on */
				continue;
			break;			/* EAGAIN: no more */
		}
		rec[n] = '\0';
		/* "prio,seq,time,flags;message" */
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		if (victim && strstr(msg, want))
			*killed = true;
		for (size_t i = 0; i < ARRAY_SIZE(problems); i++)
			if (strstr(msg, problems[i]) && !found++)
				snprintf(first, len, "%.*s", (int)len - 1, msg);
	}
	return found;
}

FIXTURE_SETUP(pressure)
{
	if (getuid() != 0)
		SKIP(return, "root is needed to drop caches and set max_pages");
	self->mem_total_kb = meminfo_kb("MemTotal");
	ASSERT_LT(0, self->mem_total_kb);
	self->progress = mmap(NULL, KT_PAGE, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->progress);
	/* the limits off: the machine's memory is what runs out */
	self->max_pages = kt_param("max_pages");
	self->max_region_pages = kt_param("max_region_pages");
	ASSERT_LE(0, self->max_pages);
	ASSERT_EQ(0, kt_set_param("max_pages", 0));
	ASSERT_EQ(0, kt_set_param("max_region_pages", 0));
	self->kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, self->kmsg);
	ASSERT_LE(0, lseek(self->kmsg, 0, SEEK_END));
	for (size_t i = 0; i < ARRAY_SIZE(totals); i++)
		self->totals_before[i] = kt_proc_total(totals[i]);
	self->oom_kills = vmstat("oom_kill");
	ASSERT_LE(0, self->oom_kills);
	self->free_kb = free_kb();
	ASSERT_LT(0, self->free_kb);
	TH_LOG("MemTotal %ld kB, free %ld kB", self->mem_total_kb, self->free_kb);
}

FIXTURE_TEARDOWN(pressure)
{
	kt_set_param("max_pages", self->max_pages);
	kt_set_param("max_region_pages", self->max_region_pages);
	close(self->kmsg);
}

/* The module's totals are what they were at setup. */
static void expect_totals_back(struct __test_metadata *_metadata,
			       FIXTURE_DATA(pressure) *self)
{
	for (size_t i = 0; i < ARRAY_SIZE(totals); i++) {
		long now = kt_proc_total(totals[i]);

		EXPECT_EQ(self->totals_before[i], now)
			TH_LOG("/proc/kalloc %s: %ld before, %ld now", totals[i],
			       self->totals_before[i], now);
	}
}

/* Free memory is back within the tolerance, and the kernel still serves a region. */
static void expect_machine_back(struct __test_metadata *_metadata,
				FIXTURE_DATA(pressure) *self, unsigned int backing)
{
	long now_kb = free_back(self->free_kb);
	struct kalloc_create c;
	unsigned char *p;
	int fd;

	TH_LOG("free memory %ld kB before, %ld kB after (%+ld kB)", self->free_kb, now_kb,
	       now_kb - self->free_kb);
	EXPECT_LE(self->free_kb * (100 - FREE_TOLERANCE_PERCENT), now_kb * 100)
		TH_LOG("free memory is %ld kB short of where it was",
		       self->free_kb - now_kb);

	fd = kt_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kt_create(fd, 4 * MiB, backing, 0, -1, &c));
	p = kt_map(fd, &c, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x5a, 4 * MiB);
	EXPECT_EQ(0x5a, p[4 * MiB - 1]);
	munmap(p, 4 * MiB);
	close(fd);
	expect_totals_back(_metadata, self);
}

static void expect_log_clean(struct __test_metadata *_metadata,
			     FIXTURE_DATA(pressure) *self)
{
	char first[512] = "";
	bool killed;

	EXPECT_EQ(0, kmsg_scan(self, 0, &killed, first, sizeof(first)))
		TH_LOG("the kernel log shows: %s", first);
}

/*
 * A process for the OOM killer to take, should it kill one it should not,
 * rather than a shell of the test run: it is small, but oom_score_adj 500
 * ranks it above every process except one holding more than half the
 * machine.
 */
static pid_t decoy_start(void)
{
	char path[64];
	pid_t pid = fork();
	int fd;

	if (pid == 0) {
		/* it goes with the test, however the test ends */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pause();
		_exit(0);
	}
	if (pid < 0)
		return pid;
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", pid);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "500", 3) != 3) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		pid = -1;
	}
	if (fd >= 0)
		close(fd);
	return pid;
}

/* The OOM killer did not take the decoy (@why it would have); it goes now. */
static void expect_decoy_alive(struct __test_metadata *_metadata, pid_t decoy,
			       const char *why)
{
	EXPECT_EQ(0, waitpid(decoy, NULL, WNOHANG)) TH_LOG("%s", why);
	kill(decoy, SIGKILL);
	waitpid(decoy, NULL, 0);
}

/*
 * The toucher: map an order-0 PAGES region of @size and write to every
 * page, counting them in the shared page.  Exits 0 only if it touched it
 * all.
 */
static void toucher(FIXTURE_DATA(pressure) *self, size_t size)
{
	struct kalloc_create c;
	volatile unsigned char *p;
	int fd = kt_open();

	/*
	 * Its own code and data are locked first: else reclaim evicts them
	 * as memory runs out, it faults them back in (from 9p, in the VM),
	 * and that progress keeps the OOM killer away for minutes.
	 */
	if (mlockall(MCL_CURRENT))
		_exit(5);
	if (fd < 0)
		_exit(2);
	if (kt_create(fd, size, KALLOC_BACKING_PAGES, 0, -1, &c))
		_exit(3);
	p = kt_map(fd, &c, 0);
	if (p == MAP_FAILED)
		_exit(4);
	for (size_t off = 0; off < size; off += KT_PAGE) {
		p[off] = 1;
		self->progress[0]++;
	}
	_exit(0);
}

TEST_F_TIMEOUT(pressure, pages_region_of_twice_ram_toucher_is_oom_killed, 300)
{
	size_t size = (2 * (size_t)self->mem_total_kb * 1024) & ~(2 * MiB - 1);
	char first[512] = "";
	bool named = false;
	int status, bad;
	time_t start = time(NULL);
	long kills;
	pid_t pid, decoy;

	decoy = decoy_start();
	ASSERT_LT(0, decoy);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		toucher(self, size);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	kills = vmstat("oom_kill") - self->oom_kills;
	bad = kmsg_scan(self, pid, &named, first, sizeof(first));
	TH_LOG("a %zu MiB region: the toucher touched %lu MiB in %ld s, then %s %d; %ld OOM kills; log %s",
	       size / MiB, self->progress[0] * KT_PAGE / MiB, (long)(time(NULL) - start),
	       WIFSIGNALED(status) ? "died of signal" : "exited",
	       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), kills,
	       named ? "names it" : "does not name it");

	ASSERT_TRUE(WIFSIGNALED(status)) TH_LOG("it was not killed: status %#x", status);
	EXPECT_EQ(SIGKILL, WTERMSIG(status))
		TH_LOG("signal %d, not the OOM killer's SIGKILL", WTERMSIG(status));
	EXPECT_LE(1, kills) TH_LOG("the OOM killer did not run");
	EXPECT_TRUE(named) TH_LOG("the OOM killer killed another process");
	/*
	 * No second kill: the kernel marks a victim's memory as gone
	 * (MMF_OOM_SKIP) once exit_mmap() has unmapped it, or once the OOM
	 * reaper has reaped what it can; but kalloc's pages go back only
	 * when the last vma of each region closes, and the reaper skips
	 * shared mappings.  An allocation in between finds memory still
	 * full and the victim already counted, and the OOM killer kills
	 * again.
	 */
	expect_decoy_alive(_metadata, decoy,
			   "the OOM killer killed a second process, the decoy, before the toucher's kalloc pages were back");
	EXPECT_EQ(1, kills);
	/* it got half the machine or more: the kill came when memory ran out */
	EXPECT_LE((unsigned long)self->mem_total_kb / 2 / (KT_PAGE / 1024), self->progress[0]);

	EXPECT_FALSE(has_row(pid)) TH_LOG("/proc/kalloc still has the dead toucher's rows");
	expect_totals_back(_metadata, self);
	EXPECT_EQ(0, bad) TH_LOG("the kernel log shows: %s", first);
	expect_machine_back(_metadata, self, KALLOC_BACKING_PAGES);
	expect_log_clean(_metadata, self);
}

TEST_F(pressure, vmalloc_region_larger_than_ram_is_refused)
{
	size_t size = 2 * (size_t)self->mem_total_kb * 1024;
	struct kalloc_create c;
	int fd = kt_open();

	ASSERT_LE(0, fd);
	EXPECT_EQ(-ENOMEM, kt_create(fd, size, KALLOC_BACKING_VMALLOC, 0, -1, &c));
	expect_totals_back(_metadata, self);
	EXPECT_EQ(self->oom_kills, vmstat("oom_kill"));
	close(fd);
}

/*
 * All of the machine's memory but 4 MiB, as VMALLOC: it passes the check
 * against the machine's size, but the kernel's own memory is more than
 * 4 MiB, so the fill at create must run out.
 */
TEST_F_TIMEOUT(pressure, vmalloc_region_past_free_memory_fails_with_enomem, 300)
{
	size_t size = ((size_t)self->mem_total_kb - 4096) * 1024;
	struct kalloc_create c;
	int status;
	pid_t pid, decoy;

	decoy = decoy_start();
	ASSERT_LT(0, decoy);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = kt_open(), err;

		if (fd < 0)
			_exit(2);
		err = kt_create(fd, size, KALLOC_BACKING_VMALLOC, 0, -1, &c);
		_exit(err == -ENOMEM ? 0 : err ? 3 : 4);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	TH_LOG("a %zu MiB VMALLOC create: %s %d, %ld OOM kills", size / MiB,
	       WIFSIGNALED(status) ? "killed by signal" : "exit",
	       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
	       vmstat("oom_kill") - self->oom_kills);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("CREATE did not fail with ENOMEM (exit 3: another error, 4: it succeeded)");
	EXPECT_EQ(self->oom_kills, vmstat("oom_kill"))
		TH_LOG("filling the region OOM-killed a process");
	expect_decoy_alive(_metadata, decoy,
			   "the OOM killer ran while the region filled, and killed the decoy");
	EXPECT_FALSE(has_row(pid));
	expect_totals_back(_metadata, self);
	expect_machine_back(_metadata, self, KALLOC_BACKING_VMALLOC);
	expect_log_clean(_metadata, self);
}

TEST_HARNESS_MAIN
