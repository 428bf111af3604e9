// SPDX-License-Identifier: GPL-2.0
/*
 * Limits: the module parameters max_region_pages (largest region),
 * max_pages (most pages all regions hold at once) and max_user_pages (most
 * pages one user's regions hold).  Going past them gives ENOMEM from
 * CREATE, or SIGBUS to the process whose fault would pass a limit; the
 * kernel logs nothing, the counters come back, and memory under the limit
 * keeps working.  A user at max_user_pages leaves other users' faults
 * alone.
 *
 * The parameters are global: every test sets them relative to what is
 * resident when it starts, and the teardown (in the parent, so that it runs
 * even when the test process dies) puts them back to 0, "no limit".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include "kalloc_test.h"
#include "kselftest_harness.h"

FIXTURE(limits) {
	int fd;
	int kmsg;		/* /dev/kmsg, positioned at the end at setup */
	long resident;		/* pages resident in all regions at setup */
};

FIXTURE_VARIANT(limits) {
	unsigned int backing;
	unsigned int order;
};

FIXTURE_VARIANT_ADD(limits, vmalloc) {
	.backing = KALLOC_BACKING_VMALLOC,
};

FIXTURE_VARIANT_ADD(limits, pages0) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 0,
};

FIXTURE_VARIANT_ADD(limits, pages4) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 4,
};

static long resident_total(void)
{
	return kt_proc_total("resident_vmalloc") + kt_proc_total("resident_pages");
}

/*
 * Kernel log records written since @kmsg was opened that look like a
 * problem (a warning, a bug, an allocation failure report, a kalloc
 * message); the first is copied to @first.  -1 if /dev/kmsg is unreadable.
 */
static int kmsg_problems(int kmsg, char *first, size_t len)
{
	static const char *const bad[] = {
		"WARNING", "BUG", "Oops", "Call Trace", "page allocation failure",
		"kalloc", "general protection",
	};
	char rec[2048];
	int found = 0;
	ssize_t n;

	if (kmsg < 0)
		return -1;
	for (;;) {
		n = read(kmsg, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)	/* overwritten records */
			continue;
		if (n <= 0)
			break;
		rec[n] = '\0';
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (strstr(rec, bad[i])) {
				if (!found++)
					snprintf(first, len, "%s", rec);
				break;
			}
		}
	}
	return found;
}

FIXTURE_SETUP(limits)
{
	self->fd = kt_open();
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, kt_param("max_pages")) TH_LOG("a limit left set by someone");
	ASSERT_EQ(0, kt_param("max_region_pages"));
	self->resident = resident_total();
	ASSERT_LE(0, self->resident);
	self->kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (self->kmsg >= 0)
		lseek(self->kmsg, 0, SEEK_END);
}

FIXTURE_TEARDOWN_PARENT(limits)
{
	EXPECT_EQ(0, kt_set_param("max_pages", 0));
	EXPECT_EQ(0, kt_set_param("max_region_pages", 0));
}

/* The kernel said nothing about what the test did. */
static void expect_quiet_kernel(struct __test_metadata *_metadata, int kmsg)
{
	char first[2048] = "";

	EXPECT_EQ(0, kmsg_problems(kmsg, first, sizeof(first)))
		TH_LOG("the kernel logged: %s", first);
}

TEST_F(limits, create_bigger_than_max_region_pages_is_enomem)
{
	unsigned long max = 64 << variant->order;
	unsigned long step = 1UL << variant->order;
	long regions = kt_proc_total("regions");
	struct kalloc_create c;
	unsigned char *p;

	ASSERT_EQ(0, kt_set_param("max_region_pages", max));
	EXPECT_EQ((long)max, kt_proc_total("max_region_pages"));
	EXPECT_EQ(-ENOMEM, kt_create(self->fd, (max + step) * KT_PAGE,
				     variant->backing, variant->order, -1, &c))
		TH_LOG("%lu pages with max_region_pages %lu", max + step, max);
	EXPECT_EQ(-ENOMEM, kt_create(self->fd, 1ULL << 36, variant->backing,
				     variant->order, -1, &c));
	EXPECT_EQ(regions, kt_proc_total("regions")) TH_LOG("a refused region stayed");
	EXPECT_EQ(self->resident, resident_total());

	/* exactly the limit is allowed, and works */
	ASSERT_EQ(0, kt_create(self->fd, max * KT_PAGE, variant->backing,
			       variant->order, -1, &c));
	p = kt_map(self->fd, &c, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x33, max * KT_PAGE);
	EXPECT_EQ(0x33, p[max * KT_PAGE - 1]);
	munmap(p, max * KT_PAGE);

	/* and 0 means no limit again */
	ASSERT_EQ(0, kt_set_param("max_region_pages", 0));
	EXPECT_EQ(0, kt_create(self->fd, (max + step) * KT_PAGE,
			       variant->backing, variant->order, -1, &c));
	expect_quiet_kernel(_metadata, self->kmsg);
}

TEST_F(limits, vmalloc_create_past_max_pages_is_enomem)
{
	struct kalloc_create c, small;
	long regions = kt_proc_total("regions");
	unsigned char *p;

	if (variant->backing != KALLOC_BACKING_VMALLOC)
		SKIP(return, "a PAGES region allocates nothing at create");
	ASSERT_EQ(0, kt_set_param("max_pages", self->resident + 100));
	EXPECT_EQ(self->resident + 100, kt_proc_total("max_pages"));

	/* 60 pages fit, and are all claimed at create */
	ASSERT_EQ(0, kt_create(self->fd, 60 * KT_PAGE, variant->backing, 0, -1, &small));
	EXPECT_EQ(self->resident + 60, resident_total());
	/* 60 more would pass the limit: refused, and nothing of it stays */
	EXPECT_EQ(-ENOMEM, kt_create(self->fd, 60 * KT_PAGE, variant->backing, 0, -1, &c))
		TH_LOG("120 pages resident with max_pages %ld", self->resident + 100);
	EXPECT_EQ(self->resident + 60, resident_total())
		TH_LOG("a refused create kept pages it had claimed");
	EXPECT_EQ(regions + 1, kt_proc_total("regions"));
	/* what fits still fits */
	EXPECT_EQ(0, kt_create(self->fd, 40 * KT_PAGE, variant->backing, 0, -1, &c));
	EXPECT_EQ(self->resident + 100, resident_total());
	EXPECT_EQ(-ENOMEM, kt_create(self->fd, KT_PAGE, variant->backing, 0, -1, &c));

	p = kt_map(self->fd, &small, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x44, 60 * KT_PAGE);
	EXPECT_EQ(0x44, p[60 * KT_PAGE - 1]);
	munmap(p, 60 * KT_PAGE);
	close(self->fd);
	self->fd = -1;
	EXPECT_EQ(self->resident, resident_total()) TH_LOG("closing gave it all back");
	EXPECT_EQ(regions, kt_proc_total("regions"));
	expect_quiet_kernel(_metadata, self->kmsg);
}

static sigjmp_buf jump;

static void on_sigbus(int sig)
{
	siglongjmp(jump, sig);
}

/*
 * In a child: create a region of @pages, write every page in order, and
 * exit with 0 if all were written; a fault that cannot be served kills it
 * with SIGBUS.  *@touched (shared) counts the pages written.
 */
static void touch_all_in_child(unsigned int backing, unsigned int order,
			       unsigned long pages, volatile unsigned long *touched)
{
	struct kalloc_create c;
	volatile unsigned char *p;
	int fd = kt_open();

	if (fd < 0 || kt_create(fd, pages * KT_PAGE, backing, order, -1, &c))
		_exit(2);
	p = kt_map(fd, &c, 0);
	if (p == MAP_FAILED)
		_exit(3);
	for (unsigned long i = 0; i < pages; i++) {
		p[i * KT_PAGE] = 1;
		*touched = i + 1;
	}
	_exit(0);
}

TEST_F(limits, fault_past_max_pages_is_sigbus_for_the_toucher)
{
	unsigned long limit = 64, pages = 256;
	volatile unsigned long *touched;
	long faults = kt_proc_total("faults");
	int status;
	pid_t pid;

	if (variant->backing != KALLOC_BACKING_PAGES)
		SKIP(return, "a VMALLOC region is whole from create: no fault allocates");
	touched = mmap(NULL, sizeof(*touched), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, touched);
	*touched = 0;
	ASSERT_EQ(0, kt_set_param("max_pages", self->resident + limit));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		touch_all_in_child(variant->backing, variant->order, pages, touched);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status))
		TH_LOG("the child was not killed: exit %d after %lu pages",
		       WIFEXITED(status) ? WEXITSTATUS(status) : -1, *touched);
	if (WIFSIGNALED(status)) {
		EXPECT_EQ(SIGBUS, WTERMSIG(status)) TH_LOG("killed by signal %d",
							   WTERMSIG(status));
	}
	EXPECT_EQ(limit, *touched) TH_LOG("pages under the limit must all work");
	EXPECT_LT(faults, kt_proc_total("faults"));
	EXPECT_EQ(self->resident, resident_total())
		TH_LOG("the dead child's pages were not all given back");
	EXPECT_EQ(self->resident, kt_proc_total("resident_pages") +
				  kt_proc_total("resident_vmalloc"));
	EXPECT_LE(self->resident + (long)limit, kt_proc_total("high_water"));
	expect_quiet_kernel(_metadata, self->kmsg);

	/* the limit lifted, the same touching goes through */
	ASSERT_EQ(0, kt_set_param("max_pages", 0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		touch_all_in_child(variant->backing, variant->order, pages, touched);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(pages, *touched);
	munmap((void *)touched, sizeof(*touched));
}

TEST_F(limits, pages_under_max_pages_work_and_release_makes_room)
{
	unsigned long limit = 64, pages = 128, i;
	struct sigaction sa = { .sa_handler = on_sigbus };
	struct kalloc_create c;
	struct kalloc_info info;
	volatile unsigned char *p;
	int sig;

	if (variant->backing != KALLOC_BACKING_PAGES)
		SKIP(return, "a VMALLOC region is whole from create: no fault allocates");
	ASSERT_EQ(0, kt_set_param("max_pages", self->resident + limit));
	ASSERT_EQ(0, kt_create(self->fd, pages * KT_PAGE, variant->backing,
			       variant->order, -1, &c));
	p = kt_map(self->fd, &c, 0);
	ASSERT_NE(MAP_FAILED, p);
	sigaction(SIGBUS, &sa, NULL);

	for (i = 0; i < limit; i++)
		p[i * KT_PAGE] = (unsigned char)(i + 1);
	ASSERT_EQ(0, kt_info(self->fd, c.id, &info));
	EXPECT_EQ(limit, info.resident);
	EXPECT_EQ(self->resident + (long)limit, resident_total());

	/* one page more is SIGBUS, and leaves what is there alone */
	sig = sigsetjmp(jump, 1);
	if (!sig)
		p[limit * KT_PAGE] = 1;
	EXPECT_EQ(SIGBUS, sig) TH_LOG("page %lu fit under max_pages %lu", limit, limit);
	for (i = 0; i < limit; i++)
		ASSERT_EQ((unsigned char)(i + 1), p[i * KT_PAGE]) TH_LOG("page %lu lost", i);
	ASSERT_EQ(0, kt_info(self->fd, c.id, &info));
	EXPECT_EQ(limit, info.resident);

	/* giving back a block makes room for exactly that much */
	ASSERT_EQ(0, kt_release(self->fd, c.id, 0, 16 * KT_PAGE));
	EXPECT_EQ(self->resident + (long)limit - 16, resident_total());
	for (i = limit; i < limit + 16; i++) {
		sig = sigsetjmp(jump, 1);
		if (!sig)
			p[i * KT_PAGE] = 2;
		ASSERT_EQ(0, sig) TH_LOG("page %lu refused after a release", i);
	}
	sig = sigsetjmp(jump, 1);
	if (!sig)
		(void)p[0];
	EXPECT_EQ(SIGBUS, sig) TH_LOG("the released page came back past the limit");

	/* raising the limit lets the rest in */
	ASSERT_EQ(0, kt_set_param("max_pages", self->resident + pages));
	for (i = 0; i < pages; i++) {
		sig = sigsetjmp(jump, 1);
		if (!sig)
			p[i * KT_PAGE] = 3;
		ASSERT_EQ(0, sig) TH_LOG("page %lu refused under a raised limit", i);
	}
	ASSERT_EQ(0, kt_info(self->fd, c.id, &info));
	EXPECT_EQ(pages, info.resident);
	signal(SIGBUS, SIG_DFL);
	munmap((void *)p, pages * KT_PAGE);
	close(self->fd);
	self->fd = -1;
	EXPECT_EQ(self->resident, resident_total());
	expect_quiet_kernel(_metadata, self->kmsg);
}

TEST_F(limits, max_pages_counts_every_region_together)
{
	unsigned long limit = 96;
	struct sigaction sa = { .sa_handler = on_sigbus };
	struct kalloc_create a, b;
	volatile unsigned char *pa, *pb;
	unsigned long i;
	int sig;

	if (variant->backing != KALLOC_BACKING_PAGES)
		SKIP(return, "covered for VMALLOC by vmalloc_create_past_max_pages_is_enomem");
	ASSERT_EQ(0, kt_set_param("max_pages", self->resident + limit));
	ASSERT_EQ(0, kt_create(self->fd, 64 * KT_PAGE, variant->backing,
			       variant->order, -1, &a));
	ASSERT_EQ(0, kt_create(self->fd, 64 * KT_PAGE, variant->backing,
			       variant->order, -1, &b));
	pa = kt_map(self->fd, &a, 0);
	pb = kt_map(self->fd, &b, 0);
	ASSERT_NE(MAP_FAILED, pa);
	ASSERT_NE(MAP_FAILED, pb);
	sigaction(SIGBUS, &sa, NULL);
	for (i = 0; i < 64; i++)
		pa[i * KT_PAGE] = 1;
	for (i = 0; i < 32; i++)
		pb[i * KT_PAGE] = 1;
	sig = sigsetjmp(jump, 1);
	if (!sig)
		pb[32 * KT_PAGE] = 1;
	EXPECT_EQ(SIGBUS, sig) TH_LOG("two regions together passed max_pages");
	/* the VMALLOC create is refused as well while the limit is full */
	EXPECT_EQ(-ENOMEM, kt_create(self->fd, KT_PAGE, KALLOC_BACKING_VMALLOC, 0,
				     -1, &a));
	signal(SIGBUS, SIG_DFL);
	expect_quiet_kernel(_metadata, self->kmsg);
}

/*
 * A fork copy that max_pages forbids: the child's region holds no memory,
 * RELEASE on it says EIO (it once dereferenced the missing area), and a
 * touch raises SIGBUS.  The parent's memory is untouched.
 */
TEST_F(limits, fork_copy_past_max_pages_is_broken_not_a_crash)
{
	unsigned long pages = 64, i;
	struct kalloc_create c;
	unsigned char *p;
	int fd, status;
	pid_t pid;

	fd = kt_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kt_create(fd, pages * KT_PAGE, variant->backing, variant->order, -1, &c));
	p = kt_map(fd, &c, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x7b, pages * KT_PAGE);
	ASSERT_EQ(0, kt_set_param("max_pages", resident_total() + 1));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct sigaction sa = { .sa_handler = on_sigbus };

		if (kt_release(fd, c.id, 0, pages * KT_PAGE) != -EIO)
			_exit(1);
		sigaction(SIGBUS, &sa, NULL);
		if (!sigsetjmp(jump, 1)) {
			(void)*(volatile unsigned char *)p;
			_exit(2);
		}
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, kt_set_param("max_pages", 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child status %#x: 1 = RELEASE was not EIO, 2 = no SIGBUS", status);
	for (i = 0; i < pages * KT_PAGE; i++)
		if (p[i] != 0x7b)
			break;
	EXPECT_EQ(pages * KT_PAGE, i) TH_LOG("the parent's data changed at byte %lu", i);
	munmap(p, pages * KT_PAGE);
	close(fd);
	expect_quiet_kernel(_metadata, self->kmsg);
}

/*
 * max_user_pages: two unprivileged users (1000 and 1001), each in a child
 * of its own, against one small per-user limit.  The parameter is put back
 * as it was by the teardown.
 */
FIXTURE(user_limits) {
	long saved;		/* max_user_pages at setup */
	int kmsg;
};

FIXTURE_SETUP(user_limits)
{
	self->kmsg = -1;
	self->saved = kt_param("max_user_pages");
	ASSERT_LT(0, self->saved) TH_LOG("no max_user_pages parameter, or no default limit");
	if (getuid() != 0)
		SKIP(return, "must start as root to become uids %d and %d",
		     KT_USER_ID, KT_OTHER_USER_ID);
	ASSERT_EQ(0, kt_device_group());
	ASSERT_EQ(0, kt_param("max_pages")) TH_LOG("a limit left set by someone");
	self->kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (self->kmsg >= 0)
		lseek(self->kmsg, 0, SEEK_END);
}

FIXTURE_TEARDOWN_PARENT(user_limits)
{
	if (self->saved > 0)
		EXPECT_EQ(0, kt_set_param("max_user_pages", self->saved));
}

/* The "userUID_resident" line of /proc/kalloc, or -1 if none is shown. */
static long user_resident(unsigned int uid)
{
	char key[48];

	snprintf(key, sizeof(key), "user%u_resident", uid);
	return kt_proc_total(key);
}

/*
 * In a child: become @uid, open the device and map a new PAGES region of
 * @pages of @order whole; _exit() with 2, 3 or 4 at the step that failed.
 */
static void *user_maps_region(uid_t uid, unsigned long pages, unsigned int order,
			      int *fd, struct kalloc_create *c)
{
	void *p;

	if (kt_become(uid, true))
		_exit(2);
	*fd = kt_open();
	if (*fd < 0 || kt_create(*fd, pages * KT_PAGE, KALLOC_BACKING_PAGES, order, -1, c))
		_exit(3);
	p = kt_map(*fd, c, 0);
	if (p == MAP_FAILED)
		_exit(4);
	return p;
}

/*
 * A user's child: become @uid, create a PAGES region of @pages and touch
 * it in order until all is touched or a touch gets SIGBUS; report how many
 * pages were touched on @report, then wait for a byte on @go (holding the
 * pages) and exit.
 */
static void user_touches(uid_t uid, unsigned long pages, int report, int go)
{
	struct sigaction sa = { .sa_handler = on_sigbus };
	volatile unsigned long touched = 0;
	struct kalloc_create c;
	volatile unsigned char *p;
	char byte;
	int fd;

	p = user_maps_region(uid, pages, 0, &fd, &c);
	sigaction(SIGBUS, &sa, NULL);
	if (!sigsetjmp(jump, 1)) {
		for (touched = 0; touched < pages; touched++)
			p[touched * KT_PAGE] = 1;
	}
	if (write(report, (const void *)&touched, sizeof(touched)) != sizeof(touched))
		_exit(5);
	if (read(go, &byte, 1) != 1)
		_exit(6);
	_exit(0);
}

struct user_child {
	pid_t pid;
	int report, go;
};

static int user_start(struct user_child *u, uid_t uid, unsigned long pages,
		      unsigned long *touched)
{
	int report[2], go[2];

	if (pipe2(report, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		return -errno;
	u->pid = fork();
	if (u->pid < 0)
		return -errno;
	if (u->pid == 0)
		user_touches(uid, pages, report[1], go[0]);
	close(report[1]);
	close(go[0]);
	u->report = report[0];
	u->go = go[1];
	if (read(u->report, touched, sizeof(*touched)) != sizeof(*touched))
		return -EIO;
	return 0;
}

static int user_finish(struct user_child *u)
{
	int status;

	if (write(u->go, "x", 1) != 1 || waitpid(u->pid, &status, 0) != u->pid)
		return -1;
	close(u->go);
	close(u->report);
	return status;
}

TEST_F(user_limits, a_user_at_the_limit_leaves_other_users_alone)
{
	unsigned long limit = 64, pages = 256, touched_a = 0, touched_b = 0;
	struct user_child a, b;
	long regions = kt_proc_total("regions");
	struct kalloc_create c;
	int fd;

	ASSERT_EQ(0, kt_set_param("max_user_pages", limit));
	EXPECT_EQ((long)limit, kt_proc_total("max_user_pages"));

	/* user 1000 fills its limit and holds it */
	ASSERT_EQ(0, user_start(&a, KT_USER_ID, pages, &touched_a));
	EXPECT_EQ(limit, touched_a) TH_LOG("user %d touched %lu pages under a %lu-page limit",
					   KT_USER_ID, touched_a, limit);
	EXPECT_EQ((long)limit, user_resident(KT_USER_ID));

	/* user 1001's faults are served all the same, up to its own limit */
	ASSERT_EQ(0, user_start(&b, KT_OTHER_USER_ID, pages, &touched_b));
	EXPECT_EQ(limit, touched_b) TH_LOG("user %d touched %lu pages while user %d was at the limit",
					   KT_OTHER_USER_ID, touched_b, KT_USER_ID);
	EXPECT_EQ((long)limit, user_resident(KT_OTHER_USER_ID));
	EXPECT_EQ((long)limit, user_resident(KT_USER_ID));

	/* root (CAP_SYS_RESOURCE) is counted, not limited */
	fd = kt_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kt_create(fd, 2 * limit * KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &c))
		TH_LOG("root's VMALLOC region past max_user_pages was refused");
	EXPECT_LE((long)(2 * limit), user_resident(0));
	close(fd);

	EXPECT_EQ(0, user_finish(&a));
	EXPECT_EQ(0, user_finish(&b));
	/* users with no regions left are not shown */
	EXPECT_EQ(-1, user_resident(KT_USER_ID));
	EXPECT_EQ(-1, user_resident(KT_OTHER_USER_ID));
	EXPECT_EQ(regions, kt_proc_total("regions"));
	expect_quiet_kernel(_metadata, self->kmsg);
}

TEST_F(user_limits, vmalloc_create_past_the_user_limit_is_enomem)
{
	struct kalloc_create c;
	int fd, status;
	pid_t pid;

	ASSERT_EQ(0, kt_set_param("max_user_pages", 100));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (kt_become(KT_USER_ID, true))
			_exit(1);
		fd = kt_open();
		if (fd < 0 || kt_create(fd, 60 * KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &c))
			_exit(2);
		/* 60 more would pass 100: refused, and nothing of it stays */
		if (kt_create(fd, 60 * KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &c) != -ENOMEM)
			_exit(3);
		if (user_resident(KT_USER_ID) != 60)
			_exit(4);
		if (kt_create(fd, 40 * KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &c))
			_exit(5);
		/* the user sees its own line, and no one else's */
		if (user_resident(KT_USER_ID) != 100 || user_resident(0) != -1)
			_exit(6);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status) TH_LOG("step %d failed (see the test)", WEXITSTATUS(status));
	EXPECT_EQ(-1, user_resident(KT_USER_ID));
	expect_quiet_kernel(_metadata, self->kmsg);
}

/*
 * max_user_regions: a user's regions cost slab memory whether or not they
 * hold a page.  User 1000 under a limit of 8: 8 VMALLOC regions of one
 * page, the ninth ENOMEM, one destroyed makes room for one; a fork's
 * copies count without being refused; root is counted, not limited.
 */
TEST_F(user_limits, regions_past_the_user_limit_are_enomem)
{
	long saved = kt_param("max_user_regions");
	struct kalloc_create c;
	int fd, status;
	pid_t pid;

	ASSERT_LT(0, saved) TH_LOG("no max_user_regions parameter, or no default limit");
	ASSERT_EQ(0, kt_set_param("max_user_regions", 8));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		unsigned int ids[8];
		pid_t child;

		if (kt_become(KT_USER_ID, true))
			_exit(1);
		fd = kt_open();
		if (fd < 0)
			_exit(1);
		for (int i = 0; i < 8; i++) {
			if (kt_create(fd, KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &c))
				_exit(2);
			ids[i] = c.id;
		}
		if (kt_create(fd, KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &c) != -ENOMEM)
			_exit(3);
		if (kt_proc_total("user1000_regions") != 8)
			_exit(4);
		if (kt_destroy(fd, ids[0]) || kt_create(fd, KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &c))
			_exit(5);
		/* a child's copies: counted, 16 while it lives, and it lives */
		if (kt_map(fd, &c, 0) == MAP_FAILED)
			_exit(6);
		child = fork();
		if (child == 0)
			_exit(kt_proc_total("user1000_regions") > 8 ? 0 : 1);
		if (child < 0 || waitpid(child, &status, 0) != child || status)
			_exit(7);
		if (kt_proc_total("user1000_regions") != 8)
			_exit(8);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status) TH_LOG("step %d failed (see the test)", WEXITSTATUS(status));
	EXPECT_EQ(-1, kt_proc_total("user1000_regions"));
	/* root (CAP_SYS_RESOURCE) is counted, not limited */
	fd = kt_open();
	ASSERT_LE(0, fd);
	for (int i = 0; i < 9; i++)
		ASSERT_EQ(0, kt_create(fd, KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &c));
	EXPECT_LE(9, kt_proc_total("user0_regions"));
	close(fd);
	EXPECT_EQ(0, kt_set_param("max_user_regions", saved));
	expect_quiet_kernel(_metadata, self->kmsg);
}

/*
 * A user with /etc/subuid ranges may map many uids into a user namespace
 * of its own (newuidmap) and become each in turn: each must not bring a
 * limit of its own.  Here root writes the map a setuid newuidmap would:
 * user 1000's namespace gets uids 0 and 1 as global uids 200000 and
 * 200001.  As namespace uid 1, then 0, a VMALLOC region of 60 pages each,
 * against a limit of 100: the second is refused, and both count against
 * user 1000.  Skipped where the kernel refuses user namespaces.
 */
static void userns_creates(int fd, int report, int go, bool shared)
{
	struct kalloc_create c;
	char byte;
	int step = 0;

	if (unshare(CLONE_NEWUSER)) {
		step = errno == EPERM || errno == EINVAL || errno == ENOSPC ? 77 : 1;
		goto out;
	}
	if (write(report, &step, sizeof(step)) != sizeof(step) || read(go, &byte, 1) != 1)
		_exit(2);
	if (setresuid(1, 1, 1))
		step = 3;
	else if (kt_create(fd, 60 * KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &c))
		step = 4;
	else if (setresuid(0, 0, 0))
		step = 5;
	else if (kt_create(fd, 60 * KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &c) !=
		 (shared ? -ENOMEM : 0))
		step = 6;	/* shared: a second limit would hold 120 pages */
out:
	if (write(report, &step, sizeof(step)) != sizeof(step) || read(go, &byte, 1) != 1)
		_exit(2);
	_exit(0);
}

/*
 * Fork a child that becomes @uid (or stays root for -1), opens the device
 * and runs userns_creates(@shared); map its namespace's uids 0 and 1 to
 * @first and @first + 1, as newuidmap would; return the step it failed at
 * (0: none), 77 if the kernel refused the namespace (the child is then
 * reaped), or -1 if the parent's part failed.  The child holds its
 * regions until user_finish().
 */
static int userns_start(struct user_child *u, int uid, unsigned int first, bool shared)
{
	int report[2], go[2], step = -1, fd, status;
	char path[64], map[64];

	if (pipe2(report, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		return -1;
	u->pid = fork();
	if (u->pid < 0)
		return -1;
	if (u->pid == 0) {
		if (uid >= 0 && kt_become(uid, true))
			_exit(1);
		fd = kt_open();
		if (fd < 0)
			_exit(1);
		userns_creates(fd, report[1], go[0], shared);
	}
	close(report[1]);
	close(go[0]);
	u->report = report[0];
	u->go = go[1];
	if (read(u->report, &step, sizeof(step)) != sizeof(step))
		return -1;
	if (step == 77) {
		if (write(u->go, "x", 1) == 1)
			waitpid(u->pid, &status, 0);
		return 77;
	}
	if (step)
		return step;
	snprintf(path, sizeof(path), "/proc/%d/uid_map", u->pid);
	snprintf(map, sizeof(map), "0 %u 2\n", first);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, map, strlen(map)) != (ssize_t)strlen(map))
		return -1;
	close(fd);
	if (write(u->go, "x", 1) != 1 ||
	    read(u->report, &step, sizeof(step)) != sizeof(step))
		return -1;
	return step;
}

TEST_F(user_limits, uids_mapped_into_a_user_namespace_count_against_its_creator)
{
	struct user_child u;
	int step;

	if (access("/proc/self/ns/user", F_OK))
		SKIP(return, "the kernel has no user namespaces");
	ASSERT_EQ(0, kt_set_param("max_user_pages", 100));
	step = userns_start(&u, KT_USER_ID, 200000, true);
	if (step == 77)
		SKIP(return, "unshare(CLONE_NEWUSER) refused to user %d", KT_USER_ID);
	ASSERT_EQ(0, step) TH_LOG("step %d failed (see userns_creates())", step);
	/* what the namespace's uids hold is user 1000's, and only 60 pages */
	EXPECT_EQ(60, user_resident(KT_USER_ID));
	EXPECT_EQ(-1, user_resident(200000));
	EXPECT_EQ(-1, user_resident(200001));
	EXPECT_EQ(0, user_finish(&u));
	EXPECT_EQ(-1, user_resident(KT_USER_ID));
	expect_quiet_kernel(_metadata, self->kmsg);
}

/*
 * A namespace root creates (a container's, a service's PrivateUsers=)
 * maps uids root gave out: each keeps a limit of its own.  The same
 * steps as above from root's namespace: both regions are granted, and
 * each global uid holds its 60 pages.
 */
TEST_F(user_limits, uids_of_a_namespace_root_created_keep_their_own_limits)
{
	struct user_child u;
	int step;

	if (access("/proc/self/ns/user", F_OK))
		SKIP(return, "the kernel has no user namespaces");
	ASSERT_EQ(0, kt_set_param("max_user_pages", 100));
	step = userns_start(&u, -1, 300000, false);
	if (step == 77)
		SKIP(return, "unshare(CLONE_NEWUSER) refused to root");
	ASSERT_EQ(0, step) TH_LOG("step %d failed (see userns_creates())", step);
	EXPECT_EQ(60, user_resident(300000));
	EXPECT_EQ(60, user_resident(300001));
	EXPECT_EQ(0, user_finish(&u));
	EXPECT_EQ(-1, user_resident(300000));
	expect_quiet_kernel(_metadata, self->kmsg);
}

/*
 * vmsplice() puts references to the pages themselves in a pipe, which keep
 * them allocated past RELEASE and past their region's end.  Such a page is
 * still its user's memory: it stays under the limit until the pipe lets go
 * of it, or a user could take the same memory again and again (fault,
 * vmsplice, RELEASE, repeat) with the limit counting nothing.
 */

/* Fill @page with pattern @i and put a reference to it in @pipe_w. */
static int splice_page(int pipe_w, unsigned char *page, unsigned long i)
{
	struct iovec iov = { .iov_base = page, .iov_len = KT_PAGE };

	memset(page, (int)(i + 1), KT_PAGE);
	return vmsplice(pipe_w, &iov, 1, 0) == (ssize_t)KT_PAGE ? 0 : -1;
}

/* Read @nr pages from @pipe_r, each with the pattern of @first + its place. */
static int read_spliced(int pipe_r, unsigned long first, unsigned long nr)
{
	static unsigned char buf[KT_PAGE];
	unsigned long i;

	for (i = 0; i < nr; i++) {
		if (read(pipe_r, buf, KT_PAGE) != (ssize_t)KT_PAGE)
			return -1;
		if (buf[0] != (unsigned char)(first + i + 1) ||
		    buf[KT_PAGE - 1] != (unsigned char)(first + i + 1))
			return -1;
	}
	return 0;
}

/*
 * Wait for @uid's resident pages to read @want (-1: no line), as pinned.c's
 * worker, which looks once a second, frees them: up to 30 s, a bound for
 * a loaded guest, not a speed.
 */
static int wait_user_resident(unsigned int uid, long want)
{
	int i;

	for (i = 0; i < 300; i++) {
		if (user_resident(uid) == want)
			return 0;
		usleep(100 * 1000);
	}
	return -1;
}

/*
 * As uid 1000 under a 64-page limit: a one-page region faulted, spliced and
 * RELEASEd 48 times leaves 48 pages in the pipe, all still counted; a
 * second region gets the 16 pages left, and no more.  Once the pipe is
 * read, the next faults find the room at once.  Returns the failed step.
 */
static int pipe_holds_released_pages(unsigned long limit)
{
	const unsigned long held = 48;
	struct sigaction sa = { .sa_handler = on_sigbus };
	struct kalloc_create one, more;
	volatile unsigned long touched = 0;
	volatile unsigned char *q;
	unsigned char *p;
	int fd, pfd[2];
	unsigned long i;

	if (kt_become(KT_USER_ID, true))
		return 1;
	fd = kt_open();
	if (fd < 0 || kt_create(fd, KT_PAGE, KALLOC_BACKING_PAGES, 0, -1, &one) ||
	    kt_create(fd, limit * KT_PAGE, KALLOC_BACKING_PAGES, 0, -1, &more))
		return 2;
	p = kt_map(fd, &one, 0);
	q = kt_map(fd, &more, 0);
	if (p == MAP_FAILED || q == MAP_FAILED)
		return 3;
	if (pipe(pfd) || fcntl(pfd[1], F_SETPIPE_SZ, (int)(held * KT_PAGE)) < (int)(held * KT_PAGE))
		return 4;
	for (i = 0; i < held; i++) {
		if (splice_page(pfd[1], p, i))
			return 5;
		if (kt_release(fd, one.id, 0, KT_PAGE))
			return 6;
	}
	/* the pipe's pages are the user's all the same */
	if (user_resident(KT_USER_ID) != (long)held)
		return 7;
	if (kt_proc_total("pinned_pages") != (long)held)
		return 8;
	sigaction(SIGBUS, &sa, NULL);
	if (!sigsetjmp(jump, 1)) {
		for (touched = 0; touched < limit; touched++)
			q[touched * KT_PAGE] = 1;
	}
	if (touched != limit - held)
		return 9;
	/* what the pipe gives back is what was written: no one else had it */
	if (read_spliced(pfd[0], 0, held))
		return 10;
	/* read, the pages are the pipe's no more: the next faults have room */
	if (!sigsetjmp(jump, 1)) {
		for (; touched < limit; touched++)
			q[touched * KT_PAGE] = 1;
	}
	if (touched != limit)
		return 11;
	if (user_resident(KT_USER_ID) != (long)limit ||
	    kt_proc_total("pinned_pages") != 0)
		return 12;
	return 0;
}

TEST_F(user_limits, pages_a_pipe_holds_after_release_stay_claimed)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, kt_set_param("max_user_pages", 64));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(pipe_holds_released_pages(64));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status) TH_LOG("step %d failed (see the test); user %d's resident pages now %ld",
				    WEXITSTATUS(status), KT_USER_ID, user_resident(KT_USER_ID));
	EXPECT_EQ(-1, user_resident(KT_USER_ID));
	EXPECT_EQ(0, kt_proc_total("pinned_pages"));
	expect_quiet_kernel(_metadata, self->kmsg);
}

/*
 * uid 1000 writes 32 pages of a region and splices 16 of them into a pipe
 * whose reading end root holds, makes a VMALLOC region of 8 pages too (so
 * that its exit frees its regions from the mmu_notifier, owner.c), splices
 * one of those, and exits with both mapped.  The 17 pages the pipe holds
 * stay the user's until root has read them; the others go at the exit,
 * their mappings no obstacle.
 */
TEST_F(user_limits, pages_a_pipe_holds_outlive_their_owner)
{
	const unsigned long spliced = 16, touched = 32, nr = spliced + 1;
	struct kalloc_create c, v;
	int status, pfd[2], fd;
	unsigned char *p, *q;
	unsigned long i;
	pid_t pid;

	ASSERT_EQ(0, kt_set_param("max_user_pages", 1024));
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_LE((int)(nr * KT_PAGE), fcntl(pfd[1], F_SETPIPE_SZ, (int)(nr * KT_PAGE)));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(pfd[0]);
		if (kt_become(KT_USER_ID, true))
			_exit(1);
		fd = kt_open();
		if (fd < 0 || kt_create(fd, touched * KT_PAGE, KALLOC_BACKING_PAGES, 0, -1, &c) ||
		    kt_create(fd, 8 * KT_PAGE, KALLOC_BACKING_VMALLOC, 0, -1, &v))
			_exit(2);
		p = kt_map(fd, &c, 0);
		q = kt_map(fd, &v, 0);
		if (p == MAP_FAILED || q == MAP_FAILED)
			_exit(3);
		memset(p, 0xff, touched * KT_PAGE);
		for (i = 0; i < spliced; i++)
			if (splice_page(pfd[1], p + i * KT_PAGE, i))
				_exit(4);
		if (splice_page(pfd[1], q + 3 * KT_PAGE, spliced))
			_exit(5);
		_exit(0);
	}
	close(pfd[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status) TH_LOG("step %d failed (see the test)", WEXITSTATUS(status));
	EXPECT_EQ((long)nr, user_resident(KT_USER_ID))
		TH_LOG("%lu pages in the pipe, %lu more written", nr, touched - spliced);
	EXPECT_EQ((long)nr, kt_proc_total("pinned_pages"));
	EXPECT_EQ(0, read_spliced(pfd[0], 0, nr)) TH_LOG("the pipe's pages changed");
	close(pfd[0]);
	EXPECT_EQ(0, wait_user_resident(KT_USER_ID, -1))
		TH_LOG("user %d still has %ld pages 30 s after the pipe let go",
		       KT_USER_ID, user_resident(KT_USER_ID));
	EXPECT_EQ(0, kt_proc_total("pinned_pages"));
	expect_quiet_kernel(_metadata, self->kmsg);
}

/*
 * A PMD-mapped block is one compound page: 4 KiB of it in a pipe keeps all
 * 2 MiB allocated, and RELEASE of the block leaves all 512 pages claimed.
 */
TEST_F(user_limits, a_pinned_pmd_block_stays_claimed_whole)
{
	const unsigned long block = 512;
	struct kalloc_create c;
	struct kt_row row;
	int status, pfd[2], fd;
	unsigned char *p;
	pid_t pid;

	ASSERT_EQ(0, kt_set_param("max_user_pages", 4 * block));
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		p = user_maps_region(KT_USER_ID, block, 9, &fd, &c);
		p[0] = 1;
		if (kt_proc_row(c.id, getpid(), &row) || row.resident_pages != block)
			_exit(10);	/* no order-9 block to be had: nothing to test */
		if (splice_page(pfd[1], p + 5 * KT_PAGE, 5))
			_exit(5);
		if (kt_release(fd, c.id, 0, block * KT_PAGE))
			_exit(6);
		if (user_resident(KT_USER_ID) != (long)block ||
		    kt_proc_total("pinned_pages") != (long)block)
			_exit(7);
		_exit(0);
	}
	close(pfd[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 10)
		SKIP(return, "the kernel gave no order-9 block");
	EXPECT_EQ(0, status) TH_LOG("step %d failed (see the test); user %d's resident pages %ld",
				    WEXITSTATUS(status), KT_USER_ID, user_resident(KT_USER_ID));
	EXPECT_EQ(0, read_spliced(pfd[0], 5, 1));
	close(pfd[0]);
	EXPECT_EQ(0, wait_user_resident(KT_USER_ID, -1));
	EXPECT_EQ(0, kt_proc_total("pinned_pages"));
	expect_quiet_kernel(_metadata, self->kmsg);
}

TEST_HARNESS_MAIN
