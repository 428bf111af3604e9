// SPDX-License-Identifier: GPL-2.0
/*
 * Memory cgroups: the pages of a region are charged to the memory cgroup
 * of the region's owner (the process that created it), whoever faults
 * them in, as anonymous memory is charged to its mm's cgroup: visible in
 * cgroup v2's memory.current, and uncharged when they are released or the
 * process exits.  Under memory.max the process that goes past it is
 * OOM-killed or gets SIGBUS, and the kernel carries on; a writer in another
 * cgroup (process_vm_writev) neither pays nor lifts the owner's limit.
 *
 * Each test makes a cgroup of its own under /sys/fs/cgroup, moves a forked
 * child into it and steps the child through the work over two pipes, reading
 * memory.current in between.  The teardown (in the parent) kills whatever is
 * left in the cgroup and removes it.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/klog.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include "kalloc_test.h"
#include "kselftest_harness.h"

#define CGROOT	"/sys/fs/cgroup"
#define MiB	(1024L * 1024)

FIXTURE(memcg) {
	char path[128];		/* the test's cgroup, "" if not made */
	long resident;		/* kalloc's resident pages at setup */
	long regions;		/* and its regions */
	pid_t child;
	int up[2], down[2];	/* child -> parent, parent -> child */
	unsigned int order;	/* of the PAGES regions the test makes */
};

FIXTURE_VARIANT(memcg) {
	unsigned int backing;
	unsigned int order;
};

FIXTURE_VARIANT_ADD(memcg, pages) {
	.backing = KALLOC_BACKING_PAGES,
};

/* 2 MiB blocks mapped by PMD: charged whole, to the owner */
FIXTURE_VARIANT_ADD(memcg, pages9) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 9,
};

FIXTURE_VARIANT_ADD(memcg, vmalloc) {
	.backing = KALLOC_BACKING_VMALLOC,
};

static int write_file(const char *dir, const char *name, const char *value)
{
	char path[256];
	int fd, ret = 0;
	ssize_t n = strlen(value);

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, n) != n)
		ret = -errno;
	close(fd);
	return ret;
}

static int read_file(const char *dir, const char *name, char *buf, size_t len)
{
	char path[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* A number from a cgroup file, or -1. */
static long cg_long(const char *dir, const char *name)
{
	char buf[64];

	if (read_file(dir, name, buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 10);
}

/* The value of @key in a flat-keyed cgroup file such as memory.events. */
static long cg_key(const char *dir, const char *name, const char *key)
{
	char buf[4096], *line;
	size_t klen = strlen(key);

	if (read_file(dir, name, buf, sizeof(buf)))
		return -1;
	for (line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
		if (!strncmp(line, key, klen) && line[klen] == ' ')
			return strtol(line + klen + 1, NULL, 10);
	return -1;
}

static long resident_total(void)
{
	return kt_proc_total("resident_vmalloc") + kt_proc_total("resident_pages");
}

FIXTURE_SETUP(memcg)
{
	char buf[512];

	self->path[0] = '\0';
	self->child = 0;
	self->order = variant->order;
	if (read_file(CGROOT, "cgroup.controllers", buf, sizeof(buf)))
		SKIP(return, "no cgroup v2 at " CGROOT);
	if (!strstr(buf, "memory"))
		SKIP(return, "cgroup v2 has no memory controller");
	ASSERT_EQ(0, write_file(CGROOT, "cgroup.subtree_control", "+memory"));
	snprintf(self->path, sizeof(self->path), CGROOT "/kalloc_memcg_test.%d", getpid());
	ASSERT_EQ(0, mkdir(self->path, 0755)) TH_LOG("mkdir %s: %s", self->path, strerror(errno));
	ASSERT_EQ(0, cg_long(self->path, "memory.current"));
	ASSERT_EQ(0, pipe(self->up));
	ASSERT_EQ(0, pipe(self->down));
	self->resident = resident_total();
	self->regions = kt_proc_total("regions");
}

static void cg_remove(const char *path)
{
	write_file(path, "cgroup.kill", "1");
	for (int i = 0; i < 100 && rmdir(path) && errno == EBUSY; i++)
		usleep(20000);
}

FIXTURE_TEARDOWN_PARENT(memcg)
{
	char writer[160];

	if (!self->path[0])
		return;
	snprintf(writer, sizeof(writer), "%s.writer", self->path);
	if (!access(writer, F_OK))
		cg_remove(writer);
	/* anything still in the cgroup goes */
	write_file(self->path, "cgroup.kill", "1");
	if (self->child > 0)
		waitpid(self->child, NULL, 0);
	for (int i = 0; i < 100 && rmdir(self->path) && errno == EBUSY; i++)
		usleep(20000);
	EXPECT_NE(0, access(self->path, F_OK)) TH_LOG("cgroup %s left behind", self->path);
}

/* The child's side: wait for the parent's word, then say "done" back. */
static void child_step(FIXTURE_DATA(memcg) *self, char done)
{
	char go;

	if (write(self->up[1], &done, 1) != 1 || read(self->down[0], &go, 1) != 1)
		_exit(10);
}

/*
 * The child: join the cgroup, then step by step: create and map a region
 * of @size, touch all of it (reporting 'T'), release it whole ('R'), exit.
 */
static void child_work(FIXTURE_DATA(memcg) *self, unsigned int backing, size_t size)
{
	struct kalloc_create c;
	volatile unsigned char *p;
	int fd;

	close(self->up[0]);
	close(self->down[1]);
	if (write_file(self->path, "cgroup.procs", "0"))
		_exit(11);
	child_step(self, 'J');
	fd = kt_open();
	if (fd < 0)
		_exit(12);
	if (kt_create(fd, size, backing, self->order, -1, &c))
		_exit(13);	/* ENOMEM under memory.max is a clean refusal */
	p = kt_map(fd, &c, 0);
	if (p == MAP_FAILED)
		_exit(14);
	for (size_t off = 0; off < size; off += KT_PAGE)
		p[off] = 0xa5;
	for (size_t off = 0; off < size; off += KT_PAGE)
		if (p[off] != 0xa5)
			_exit(15);
	child_step(self, 'T');
	if (kt_release(fd, c.id, 0, size))
		_exit(16);
	child_step(self, 'R');
	_exit(0);
}

/* The parent's side: the child's next word, and the go for the step after. */
static char parent_step(FIXTURE_DATA(memcg) *self, bool go)
{
	char done = 0;

	if (read(self->up[0], &done, 1) != 1)
		return 0;
	if (go && write(self->down[1], "g", 1) != 1)
		return 0;
	return done;
}

static void start_child(struct __test_metadata *_metadata,
			FIXTURE_DATA(memcg) *self, unsigned int backing, size_t size)
{
	pid_t pid = fork();	/* self is shared: only the parent sets child */

	ASSERT_LE(0, pid);
	if (pid == 0)
		child_work(self, backing, size);
	self->child = pid;
	close(self->up[1]);
	close(self->down[0]);
}

TEST_F(memcg, touching_charges_memory_current_and_exit_uncharges)
{
	size_t size = 64 * MiB;
	long base, touched, released, after;
	int status;

	start_child(_metadata, self, variant->backing, size);
	ASSERT_EQ('J', parent_step(self, false)) TH_LOG("the child could not join the cgroup");
	base = cg_long(self->path, "memory.current");
	ASSERT_LE(0, base);
	ASSERT_EQ(1, write(self->down[1], "g", 1));

	ASSERT_EQ('T', parent_step(self, false)) TH_LOG("the child could not touch its region");
	touched = cg_long(self->path, "memory.current");
	TH_LOG("memory.current: %ld KiB joined, %ld KiB after 64 MiB touched",
	       base / 1024, touched / 1024);
	EXPECT_LE(base + (long)size, touched)
		TH_LOG("only %ld KiB of 65536 KiB charged", (touched - base) / 1024);
	EXPECT_EQ(self->resident + (long)(size / KT_PAGE), resident_total());
	ASSERT_EQ(1, write(self->down[1], "g", 1));

	ASSERT_EQ('R', parent_step(self, false));
	released = cg_long(self->path, "memory.current");
	TH_LOG("memory.current: %ld KiB after RELEASE", released / 1024);
	if (variant->backing == KALLOC_BACKING_PAGES) {
		EXPECT_GT(base + 4 * MiB, released)
			TH_LOG("RELEASE left %ld KiB charged", (released - base) / 1024);
		EXPECT_EQ(self->resident, resident_total());
	} else {
		/* a VMALLOC region is zeroed in place: it stays charged */
		EXPECT_LE(base + (long)size, released);
	}
	ASSERT_EQ(1, write(self->down[1], "g", 1));

	ASSERT_EQ(self->child, waitpid(self->child, &status, 0));
	self->child = 0;
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child status %#x", status);
	after = cg_long(self->path, "memory.current");
	TH_LOG("memory.current: %ld KiB after exit", after / 1024);
	EXPECT_GT(2 * MiB, after) TH_LOG("%ld KiB still charged to an empty cgroup", after / 1024);
	EXPECT_EQ(self->resident, resident_total());
}

/*
 * Kernel log lines that the run must not show (as tools/kalloc-vm checks
 * them) outside of memory cgroup OOM reports, which do show a Call Trace.
 * Reads the whole log; the first problem goes to @first.
 */
static int log_problems_outside_oom(char *first, size_t len)
{
	static const char *const bad[] = {
		"WARNING:", "BUG:", "Oops", "kalloc: leak",
		"general protection fault", "Call Trace",
	};
	int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf, *line, *next;
	bool in_oom = false;
	int found = 0, n;

	if (size <= 0)
		return -1;
	buf = malloc(size + 1);
	if (!buf)
		return -1;
	n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, size);
	if (n < 0) {
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	for (line = buf; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		/* an OOM report: from "invoked oom-killer" to the kill or "no killable" */
		if (strstr(line, "invoked oom-killer"))
			in_oom = true;
		if (!in_oom) {
			for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
				if (strstr(line, bad[i]) && !found++)
					snprintf(first, len, "%s", line);
			}
		}
		if (strstr(line, "Killed process") || strstr(line, "no killable processes"))
			in_oom = false;
	}
	free(buf);
	return found;
}

TEST_F(memcg, past_memory_max_the_toucher_dies_and_the_kernel_lives)
{
	size_t size = 64 * MiB;
	char first[512] = "", step;
	long after, oom_kills;
	int status, problems;
	struct kt_row row;
	pid_t child;

	ASSERT_EQ(0, write_file(self->path, "memory.max", "33554432"));
	start_child(_metadata, self, variant->backing, size);
	child = self->child;
	ASSERT_EQ('J', parent_step(self, true));

	step = parent_step(self, true);
	EXPECT_NE('T', step) TH_LOG("64 MiB were touched in a 32 MiB cgroup");
	ASSERT_EQ(self->child, waitpid(self->child, &status, 0));
	self->child = 0;
	oom_kills = cg_key(self->path, "memory.events", "oom_kill");
	if (WIFSIGNALED(status)) {
		TH_LOG("the child died of signal %d (%ld OOM kills)", WTERMSIG(status), oom_kills);
		EXPECT_TRUE(WTERMSIG(status) == SIGKILL || WTERMSIG(status) == SIGBUS)
			TH_LOG("signal %d is neither an OOM kill nor SIGBUS", WTERMSIG(status));
		if (WTERMSIG(status) == SIGKILL) {
			EXPECT_LE(1, oom_kills) TH_LOG("SIGKILL, but not from the OOM killer");
		}
	} else {
		/* a VMALLOC create may be refused with ENOMEM instead (exit 13) */
		EXPECT_TRUE(variant->backing == KALLOC_BACKING_VMALLOC &&
			    WIFEXITED(status) && WEXITSTATUS(status) == 13)
			TH_LOG("the child was not stopped: status %#x", status);
	}
	after = cg_long(self->path, "memory.current");
	TH_LOG("memory.current: %ld KiB after the child died", after / 1024);
	EXPECT_GT(2 * MiB, after) TH_LOG("%ld KiB still charged to an empty cgroup", after / 1024);
	EXPECT_EQ(self->resident, resident_total()) TH_LOG("kalloc kept the dead child's pages");
	EXPECT_EQ(self->resident, kt_proc_total("resident_pages") +
				  kt_proc_total("resident_vmalloc"));
	EXPECT_EQ(self->regions, kt_proc_total("regions")) TH_LOG("kalloc kept the dead child's region");
	EXPECT_NE(0, kt_proc_row(0, child, &row)) TH_LOG("/proc/kalloc still shows the dead child's row");

	/* the kernel is fine: it can still serve a region */
	{
		struct kalloc_create c;
		unsigned char *p;
		int fd = kt_open();

		ASSERT_LE(0, fd);
		ASSERT_EQ(0, kt_create(fd, 2 * MiB, variant->backing,
				       variant->order, -1, &c));
		p = kt_map(fd, &c, 0);
		ASSERT_NE(MAP_FAILED, p);
		memset(p, 1, 2 * MiB);
		munmap(p, 2 * MiB);
		close(fd);
	}

	/*
	 * A memcg OOM kill logs a report with a stack trace: expected here.
	 * Nothing outside OOM reports may look like a problem.  (The VM
	 * runner checks the whole log again after the run.)
	 */
	problems = log_problems_outside_oom(first, sizeof(first));
	EXPECT_EQ(0, problems) TH_LOG("the kernel log shows: %s", first);
}

/*
 * The owner of a region (in the test's cgroup, memory.max 32 MiB) maps
 * 64 MiB and touches none of it; a writer in a cgroup of its own fills it
 * with process_vm_writev().  The owner's cgroup pays, its limit holds (the
 * writes past it fail: the owner is exempt from the OOM killer, so the
 * charge fails and so does the fault), and the writer's cgroup pays
 * nothing.
 */
TEST_F_TIMEOUT(memcg, a_remote_writer_charges_the_owner_not_itself, 120)
{
	const size_t size = 64 * MiB, chunk = MiB, max = 32 * MiB;
	char writer[160], step;
	unsigned long addr = 0;
	long before, after, owner_current, written = 0, resident;
	int result[2], go[2], status;
	struct kt_row row;
	pid_t owner, wpid;

	if (variant->backing != KALLOC_BACKING_PAGES)
		SKIP(return, "a VMALLOC region is allocated whole by its creator");
	ASSERT_EQ(0, write_file(self->path, "memory.max", "33554432"));

	/* the owner: joins the cgroup, maps the region, sends its address */
	owner = fork();		/* self is shared: only the parent sets child */
	ASSERT_LE(0, owner);
	if (owner == 0) {
		struct kalloc_create c;
		void *p;
		int fd;

		close(self->up[0]);
		close(self->down[1]);
		if (write_file(self->path, "cgroup.procs", "0") ||
		    write_file("/proc/self", "oom_score_adj", "-1000"))
			_exit(11);
		fd = kt_open();
		if (fd < 0 || kt_create(fd, size, KALLOC_BACKING_PAGES,
					self->order, -1, &c))
			_exit(12);
		p = kt_map(fd, &c, 0);
		if (p == MAP_FAILED)
			_exit(13);
		addr = (unsigned long)p;
		if (write(self->up[1], &addr, sizeof(addr)) != sizeof(addr) ||
		    read(self->down[0], &step, 1) != 1)
			_exit(14);
		_exit(0);
	}
	self->child = owner;
	close(self->up[1]);
	close(self->down[0]);
	ASSERT_EQ(sizeof(addr), read(self->up[0], &addr, sizeof(addr)))
		TH_LOG("the owner could not map its region");

	/* the writer's cgroup, beside the owner's */
	snprintf(writer, sizeof(writer), "%s.writer", self->path);
	ASSERT_EQ(0, mkdir(writer, 0755));
	ASSERT_EQ(0, pipe(result));
	ASSERT_EQ(0, pipe(go));
	wpid = fork();
	ASSERT_LE(0, wpid);
	if (wpid == 0) {
		static char buf[1 << 20];
		struct iovec local = { .iov_base = buf, .iov_len = chunk };
		struct iovec remote = { .iov_len = chunk };
		long done = 0;
		ssize_t n;

		close(result[0]);
		close(go[1]);
		memset(buf, 0x5c, sizeof(buf));
		if (write_file(writer, "cgroup.procs", "0"))
			_exit(21);
		/* ready; then wait for the parent to have read memory.current */
		if (write(result[1], &done, sizeof(done)) != sizeof(done) ||
		    read(go[0], &step, 1) != 1)
			_exit(22);
		for (size_t off = 0; off < size; off += chunk) {
			remote.iov_base = (void *)(addr + off);
			n = process_vm_writev(owner, &local, 1, &remote, 1, 0);
			if (n > 0)
				done += n;
			if (n != (ssize_t)chunk)
				break;
		}
		if (write(result[1], &done, sizeof(done)) != sizeof(done))
			_exit(23);
		_exit(0);
	}
	close(result[1]);
	close(go[0]);
	ASSERT_EQ(sizeof(written), read(result[0], &written, sizeof(written)));
	before = cg_long(writer, "memory.current");
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(sizeof(written), read(result[0], &written, sizeof(written)))
		TH_LOG("the writer died");
	after = cg_long(writer, "memory.current");
	owner_current = cg_long(self->path, "memory.current");
	ASSERT_EQ(0, kt_proc_row(0, self->child, &row));
	resident = row.resident_pages * KT_PAGE;
	TH_LOG("written %ld KiB; owner's cgroup %ld KiB (region %ld KiB); writer's cgroup %+ld KiB",
	       written / 1024, owner_current / 1024, resident / 1024, (after - before) / 1024);

	EXPECT_GT((long)size, written) TH_LOG("all 64 MiB written past a 32 MiB limit");
	EXPECT_GE((long)max, resident) TH_LOG("the region grew past its owner's memory.max");
	EXPECT_LT((long)max / 2, resident) TH_LOG("the owner's cgroup was not what filled up");
	EXPECT_GT(2 * MiB, after - before) TH_LOG("the writer's cgroup was charged %ld KiB",
						 (after - before) / 1024);
	EXPECT_LE(resident, owner_current) TH_LOG("the owner's cgroup does not hold its region");

	ASSERT_EQ(wpid, waitpid(wpid, &status, 0));
	EXPECT_EQ(0, status);
	ASSERT_EQ(1, write(self->down[1], "g", 1));
	ASSERT_EQ(self->child, waitpid(self->child, &status, 0));
	self->child = 0;
	EXPECT_EQ(0, status) TH_LOG("the owner did not live through the writes: %#x", status);
	cg_remove(writer);
}

TEST_HARNESS_MAIN
