// SPDX-License-Identifier: GPL-2.0
/*
 * The OOM killer sees who holds kalloc memory.  A region's pages are not
 * on the LRU and cannot be swapped; while they are not mapped they would
 * be in no process's RSS, and under global pressure the OOM killer would
 * kill bystanders while the holder lives on.  The module counts every page
 * a region holds in its owner's MM_SHMEMPAGES (RssShmem in
 * /proc/PID/status), mapped or not, which oom_badness() adds up.
 *
 * The holder's RssShmem is checked directly; then the OOM killer is asked
 * for one kill (sysrq f) and must choose the holder over a bystander that
 * holds less ordinary memory; then a real pressure run must kill the
 * holder first.
 *
 * The tests start as root and make the holder uid 1000 (a member of the
 * device's group).  max_user_pages, when the module has it, is lifted for
 * the run and put back after.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include "kalloc_test.h"
#include "kselftest_harness.h"

#define MiB	(1024UL * 1024)

FIXTURE(oom) {
	long saved_user_max;	/* max_user_pages at setup, -1 if none */
	int kmsg;		/* /dev/kmsg, at its end at setup */
	pid_t holder, bystander, pressure;
	int ready[2];		/* children -> parent: "ready" */
};

FIXTURE_SETUP(oom)
{
	self->holder = self->bystander = self->pressure = 0;
	self->kmsg = -1;
	if (getuid() != 0)
		SKIP(return, "must start as root to become uid %d", KT_USER_ID);
	ASSERT_EQ(0, kt_device_group());
	self->saved_user_max = kt_param("max_user_pages");
	if (self->saved_user_max > 0)
		ASSERT_EQ(0, kt_set_param("max_user_pages", 0));
	ASSERT_EQ(0, pipe(self->ready));
	self->kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (self->kmsg >= 0)
		lseek(self->kmsg, 0, SEEK_END);
}

static void reap(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

FIXTURE_TEARDOWN(oom)
{
	reap(self->holder);
	reap(self->bystander);
	reap(self->pressure);
	if (self->saved_user_max > 0)
		EXPECT_EQ(0, kt_set_param("max_user_pages", self->saved_user_max));
}

/* A field of /proc/PID/status or /proc/meminfo, in kB; -1 if absent. */
static long kb_field(const char *path, const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	long value = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			value = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return value;
}

static long status_kb(pid_t pid, const char *key)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	return kb_field(path, key);
}

static long rss_shmem_kb(pid_t pid)
{
	return status_kb(pid, "RssShmem");
}

/*
 * The holder, uid 1000: @n PAGES regions of @each bytes, each created,
 * touched whole and unmapped (the regions stay, named, with their pages).
 * Says ready, then destroys region 1 when told to (a byte on @cmd) and
 * says ready again; then waits to be killed.  It opens the device itself,
 * or uses @fd, a file its parent keeps open, when @fd >= 0.  With
 * @vmalloc, the regions are VMALLOC ones, filled at CREATE and never
 * mapped.
 */
static bool holder_alarms;	/* the holder takes a SIGALRM every millisecond */

static void holder_alarm(int sig)
{
	(void)sig;
}

static void holder_body(int ready, int cmd, int fd, bool vmalloc, unsigned long n,
			size_t each)
{
	struct itimerval every_ms = { { 0, 1000 }, { 0, 1000 } };
	struct sigaction sa = { .sa_handler = holder_alarm, .sa_flags = SA_RESTART };
	struct kalloc_create c;
	unsigned char *p;
	char byte;

	if (kt_become(KT_USER_ID, true))
		_exit(2);
	if (holder_alarms &&
	    (sigaction(SIGALRM, &sa, NULL) || setitimer(ITIMER_REAL, &every_ms, NULL)))
		_exit(9);
	if (fd < 0)
		fd = kt_open();
	if (fd < 0)
		_exit(3);
	for (unsigned long i = 0; i < n; i++) {
		if (kt_create(fd, each, vmalloc ? KALLOC_BACKING_VMALLOC : KALLOC_BACKING_PAGES,
			      0, -1, &c))
			_exit(4);
		if (vmalloc)
			continue;
		p = kt_map(fd, &c, 0);
		if (p == MAP_FAILED)
			_exit(5);
		for (size_t off = 0; off < each; off += KT_PAGE)
			p[off] = 1;
		munmap(p, each);
	}
	if (write(ready, "h", 1) != 1)
		_exit(6);
	if (cmd >= 0) {
		if (read(cmd, &byte, 1) != 1 || kt_destroy(fd, 1))
			_exit(7);
		if (write(ready, "d", 1) != 1)
			_exit(8);
	}
	for (;;)
		pause();
}

static pid_t start_holder(FIXTURE_DATA(oom) *self, int cmd, int fd, bool vmalloc,
			  unsigned long n, size_t each)
{
	pid_t pid = fork();

	if (pid == 0)
		holder_body(self->ready[1], cmd, fd, vmalloc, n, each);
	return pid;
}

static char wait_ready(FIXTURE_DATA(oom) *self)
{
	char byte = 0;

	if (read(self->ready[0], &byte, 1) != 1)
		return 0;
	return byte;
}

TEST_F(oom, unmapped_region_pages_count_in_the_owners_rss)
{
	const size_t each = 8 * MiB;
	long held, destroyed;
	int cmd[2];

	ASSERT_EQ(0, pipe(cmd));
	self->holder = start_holder(self, cmd[0], -1, false, 4, each);
	ASSERT_LT(0, self->holder);
	ASSERT_EQ('h', wait_ready(self)) TH_LOG("the holder could not fill its regions");
	held = rss_shmem_kb(self->holder);
	TH_LOG("RssShmem of the holder: %ld kB with 4 x 8 MiB unmapped", held);
	EXPECT_LE((long)(4 * each / 1024), held)
		TH_LOG("32 MiB held in unmapped regions count in no RSS");
	EXPECT_GT((long)(4 * each / 1024) + 1024, held) TH_LOG("counted more than it holds");

	ASSERT_EQ(1, write(cmd[1], "x", 1));
	ASSERT_EQ('d', wait_ready(self));
	destroyed = rss_shmem_kb(self->holder);
	EXPECT_EQ(held - (long)(each / 1024), destroyed)
		TH_LOG("DESTROY of an unmapped 8 MiB region: RssShmem %ld -> %ld kB",
		       held, destroyed);
}

/*
 * A mapped page counts once in VmRSS: in RssFile as the mm counts what
 * vm_insert_page() maps, not in RssShmem as well; once unmapped the
 * region's pages move to RssShmem, and mapped again they leave it.
 */
TEST_F(oom, mapped_pages_count_once_unmapped_ones_in_rss_shmem)
{
	const size_t size = 16 * MiB;
	long rss0, rss1, shm0, shm1, shm2, shm3;
	struct kalloc_create c;
	unsigned char *p;
	int fd;

	fd = kt_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kt_create(fd, size, KALLOC_BACKING_PAGES, 0, -1, &c));
	rss0 = status_kb(getpid(), "VmRSS");
	shm0 = rss_shmem_kb(getpid());
	p = kt_map(fd, &c, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (size_t off = 0; off < size; off += KT_PAGE)
		p[off] = 1;
	rss1 = status_kb(getpid(), "VmRSS");
	shm1 = rss_shmem_kb(getpid());
	TH_LOG("16 MiB mapped and touched: VmRSS %ld -> %ld kB, RssShmem %ld -> %ld kB",
	       rss0, rss1, shm0, shm1);
	/* 6.1 folds a task's counts into the mm's in batches: some lag */
	EXPECT_LE((long)(size / 1024) * 3 / 4, rss1 - rss0) TH_LOG("mapped pages missing from VmRSS");
	EXPECT_GT((long)(size / 1024) * 5 / 4, rss1 - rss0) TH_LOG("mapped pages counted twice");
	/* the harness's own shared pages may show: a few kB, not 16 MiB */
	EXPECT_GT(1024, shm1 - shm0) TH_LOG("mapped pages in RssShmem too");

	ASSERT_EQ(0, munmap(p, size));
	shm2 = rss_shmem_kb(getpid());
	EXPECT_LE((long)(size / 1024), shm2 - shm0)
		TH_LOG("unmapped: RssShmem %ld -> %ld kB", shm0, shm2);
	EXPECT_GT((long)(size / 1024) + 1024, shm2 - shm0)
		TH_LOG("unmapped: RssShmem %ld -> %ld kB", shm0, shm2);
	p = kt_map(fd, &c, 0);
	ASSERT_NE(MAP_FAILED, p);
	shm3 = rss_shmem_kb(getpid());
	EXPECT_GT(1024, shm3 - shm0) TH_LOG("mapped again: RssShmem %ld kB", shm3);
	munmap(p, size);
	close(fd);
}

static long resident_pages(void)
{
	return kt_proc_total("resident_pages") + kt_proc_total("resident_vmalloc");
}

/* The holder of 4 x 8 MiB in @fd, killed: its pages before and after. */
static void kill_a_sharing_holder(FIXTURE_DATA(oom) *self, struct __test_metadata *_metadata,
				  bool vmalloc)
{
	const size_t each = 8 * MiB;
	long before, held, after;
	int fd, status;

	fd = kt_open();
	ASSERT_LE(0, fd);
	before = resident_pages();
	ASSERT_LE(0, before);
	self->holder = start_holder(self, -1, fd, vmalloc, 4, each);
	ASSERT_LT(0, self->holder);
	ASSERT_EQ('h', wait_ready(self)) TH_LOG("the holder could not fill its regions");
	held = resident_pages();
	EXPECT_LE(before + (long)(4 * each / KT_PAGE), held);

	ASSERT_EQ(0, kill(self->holder, SIGKILL));
	ASSERT_EQ(self->holder, waitpid(self->holder, &status, 0));
	self->holder = 0;
	after = resident_pages();
	TH_LOG("resident pages: %ld before, %ld held, %ld once the holder is reaped",
	       before, held, after);
	EXPECT_EQ(before, after) TH_LOG("a dead process's regions kept their pages");
	close(fd);
	EXPECT_EQ(before, resident_pages());
}

/*
 * A killed holder's pages come back as its address space goes, not when
 * its file is closed: here the file stays open in the parent, which
 * shares it, so before the owner's exit freed them (owner.c) the 32 MiB
 * stayed until the parent next used or closed the file.  The OOM killer
 * relies on the same: it stops counting a victim once exit_mmap() has
 * unmapped it, before its files close.
 */
TEST_F(oom, a_dead_holders_pages_come_back_while_its_file_stays_open)
{
	kill_a_sharing_holder(self, _metadata, false);
}

/*
 * The same while signals keep arriving: the holder's syscalls return with
 * a signal pending, which must not keep its exit from freeing the pages.
 */
TEST_F(oom, a_dead_holders_pages_come_back_though_signals_kept_arriving)
{
	holder_alarms = true;
	kill_a_sharing_holder(self, _metadata, false);
	holder_alarms = false;
}

/* The same with VMALLOC regions, whose pages come at CREATE, never mapped. */
TEST_F(oom, a_dead_holders_vmalloc_regions_come_back_while_its_file_stays_open)
{
	kill_a_sharing_holder(self, _metadata, true);
}

/*
 * A forked child's copy of a region, unmapped by the child (its space was
 * made inside fork, where it cannot be subscribed: the unmapping does it),
 * comes back when the child is killed, while the parent keeps the file.
 */
TEST_F(oom, a_dead_childs_unmapped_copy_comes_back_while_the_parent_lives)
{
	const size_t size = 8 * MiB;
	long before, held, after;
	struct kalloc_create c;
	unsigned char *p;
	int fd, status;
	pid_t child;

	fd = kt_open();
	ASSERT_LE(0, fd);
	before = resident_pages();
	ASSERT_EQ(0, kt_create(fd, size, KALLOC_BACKING_PAGES, 0, -1, &c));
	p = kt_map(fd, &c, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x5a, size);
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		/* the copy stays named by its id in the child, unmapped */
		if (munmap(p, size) || write(self->ready[1], "h", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	self->holder = child;
	ASSERT_EQ('h', wait_ready(self));
	held = resident_pages();
	EXPECT_EQ(before + 2 * (long)(size / KT_PAGE), held) TH_LOG("the parent's and the child's");

	ASSERT_EQ(0, kill(child, SIGKILL));
	ASSERT_EQ(child, waitpid(child, &status, 0));
	self->holder = 0;
	after = resident_pages();
	TH_LOG("resident pages: %ld before, %ld with the child's copy, %ld once it is reaped",
	       before, held, after);
	EXPECT_EQ(before + (long)(size / KT_PAGE), after)
		TH_LOG("the dead child's copy kept its pages");
	EXPECT_EQ(0x5a, p[size - 1]);
	munmap(p, size);
	close(fd);
	EXPECT_EQ(before, resident_pages());
}

/* A bystander: @size bytes of ordinary anonymous memory, touched, held. */
static pid_t start_bystander(FIXTURE_DATA(oom) *self, size_t size)
{
	pid_t pid = fork();

	if (pid == 0) {
		unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			_exit(2);
		memset(p, 0x42, size);
		if (write(self->ready[1], "b", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	return pid;
}

/*
 * The OOM kills logged since setup: their number, the first one's record
 * in @first.
 */
static int oom_kills(int kmsg, char *first, size_t len)
{
	char rec[2048];
	int kills = 0;
	ssize_t n;

	while ((n = read(kmsg, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue;
		rec[n] = '\0';
		if (strstr(rec, "Killed process") && !kills++)
			snprintf(first, len, "%s", rec);
	}
	return kills;
}

/*
 * The two processes the OOM tests weigh: a holder of @hold bytes in
 * unmapped PAGES regions of @region bytes, then a bystander of @stand
 * bytes of anonymous memory, each ready.  "" or what went wrong.
 */
static const char *start_holder_and_bystander(FIXTURE_DATA(oom) *self, size_t hold,
					      size_t region, size_t stand)
{
	self->holder = start_holder(self, -1, -1, false, hold / region, region);
	if (self->holder <= 0)
		return "fork of the holder failed";
	if (wait_ready(self) != 'h')
		return "the holder could not fill its regions";
	self->bystander = start_bystander(self, stand);
	if (self->bystander <= 0)
		return "fork of the bystander failed";
	if (wait_ready(self) != 'b')
		return "the bystander could not fill its memory";
	return "";
}

/*
 * The holder keeps 30% of the available memory in unmapped regions, a
 * bystander 15% in ordinary anonymous memory; then the OOM killer is
 * asked for one kill (sysrq f, as the kernel's own OOM path chooses).  It
 * must choose the holder, and only it.
 */
TEST_F_TIMEOUT(oom, the_oom_killer_chooses_the_holder_of_unmapped_regions, 120)
{
	long avail = kb_field("/proc/meminfo", "MemAvailable");
	size_t region = 16 * MiB, hold, stand;
	char first[2048] = "", expect[64];
	int status, fd, kills;
	pid_t holder, pid;

	ASSERT_LT(0, avail);
	ASSERT_LE(0, self->kmsg) TH_LOG("/dev/kmsg: %s", strerror(errno));
	hold = (size_t)avail * 1024 * 30 / 100 / region * region;
	stand = (size_t)avail * 1024 * 15 / 100;
	ASSERT_STREQ("", start_holder_and_bystander(self, hold, region, stand));
	holder = self->holder;
	TH_LOG("holder %zu MiB unmapped (RssShmem %ld kB), bystander %zu MiB (RssAnon %ld kB)",
	       hold / MiB, rss_shmem_kb(holder), stand / MiB,
	       status_kb(self->bystander, "RssAnon"));

	fd = open("/proc/sysrq-trigger", O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, write(fd, "f", 1));
	close(fd);

	/* the one kill is the holder's */
	pid = waitpid(self->bystander, &status, WNOHANG);
	for (int i = 0; i < 200 && !pid && waitpid(holder, &status, WNOHANG) == 0; i++) {
		usleep(50000);
		pid = waitpid(self->bystander, &status, WNOHANG);
	}
	EXPECT_EQ(0, pid) TH_LOG("the OOM killer chose the bystander");
	if (pid == self->bystander)
		self->bystander = 0;
	kills = oom_kills(self->kmsg, first, sizeof(first));
	snprintf(expect, sizeof(expect), "Killed process %d ", holder);
	EXPECT_EQ(1, kills) TH_LOG("%d OOM kills; the first: %s", kills, first);
	EXPECT_NE(NULL, strstr(first, expect)) TH_LOG("the OOM killer killed: %s", first);
}

/*
 * The same under real pressure: the holder keeps 45% of the available
 * memory in unmapped regions, a bystander 20%; then a process that the OOM
 * killer may not pick (oom_score_adj -1000) asks for 60%.  The OOM killer
 * must kill the holder, and only it, and the run must then complete.
 *
 * The kernel hides a victim from the OOM killer (MMF_OOM_SKIP) once
 * exit_mmap() has unmapped its address space, and an allocation that
 * fails after that finds another victim: the holder's pages must be back
 * by then (owner.c frees them as exit_mmap() begins).  Before, they went
 * only when its files closed, later in its exit, and the bystander could
 * be killed second (see Documentation/kalloc.rst).
 */
TEST_F_TIMEOUT(oom, global_pressure_kills_the_kalloc_holder_and_only_it, 300)
{
	long avail = kb_field("/proc/meminfo", "MemAvailable");
	size_t hold, stand, want, region = 16 * MiB;
	char first[2048] = "", expect[64];
	int status, kills;
	pid_t holder, pid;

	ASSERT_LT(0, avail);
	ASSERT_LE(0, self->kmsg) TH_LOG("/dev/kmsg: %s", strerror(errno));
	hold = (size_t)avail * 1024 * 45 / 100 / region * region;
	stand = (size_t)avail * 1024 * 20 / 100;
	want = (size_t)avail * 1024 * 60 / 100;
	TH_LOG("available %ld MiB: holder %zu MiB, bystander %zu MiB, pressure %zu MiB",
	       avail / 1024, hold / MiB, stand / MiB, want / MiB);

	ASSERT_STREQ("", start_holder_and_bystander(self, hold, region, stand));
	holder = self->holder;

	self->pressure = fork();
	ASSERT_LE(0, self->pressure);
	if (self->pressure == 0) {
		unsigned char *p;
		int fd = open("/proc/self/oom_score_adj", O_WRONLY);

		if (fd < 0 || write(fd, "-1000", 5) != 5)
			_exit(2);
		close(fd);
		p = mmap(NULL, want, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			_exit(3);
		for (size_t off = 0; off < want; off += KT_PAGE)
			p[off] = 1;
		_exit(0);
	}
	ASSERT_EQ(self->pressure, waitpid(self->pressure, &status, 0));
	self->pressure = 0;
	EXPECT_EQ(0, status) TH_LOG("the pressure run did not complete: %#x", status);

	/* killed, it may still be on its way out on a slow guest: 30 s */
	pid = waitpid(holder, &status, WNOHANG);
	for (int i = 0; i < 600 && pid == 0; i++) {
		usleep(50000);
		pid = waitpid(holder, &status, WNOHANG);
	}
	EXPECT_EQ(holder, pid) TH_LOG("the kalloc holder is still alive");
	if (pid == holder) {
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			TH_LOG("holder status %#x", status);
		self->holder = 0;
	}
	kills = oom_kills(self->kmsg, first, sizeof(first));
	snprintf(expect, sizeof(expect), "Killed process %d ", holder);
	EXPECT_NE(NULL, strstr(first, expect)) TH_LOG("the first OOM kill: %s", first);
	EXPECT_EQ(1, kills) TH_LOG("%d OOM kills, the first: %s", kills, first);
	pid = waitpid(self->bystander, &status, WNOHANG);
	EXPECT_EQ(0, pid) TH_LOG("the bystander was killed too, status %#x", status);
	if (pid == self->bystander)
		self->bystander = 0;
}

TEST_HARNESS_MAIN
