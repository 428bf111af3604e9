// SPDX-License-Identifier: GPL-2.0
/*
 * Fork: the child gets its own copy of every kalloc mapping as it was at
 * the fork.  Writes never cross between parent and child, and region ids
 * name the caller's own region on both sides.
 */
#include <pthread.h>
#include <sys/wait.h>
#include "kalloc_test.h"
#include "kselftest_harness.h"

FIXTURE(fork) {
	int fd;
	struct kalloc_create c;
	size_t size;
	unsigned char *p;
};

FIXTURE_VARIANT(fork) {
	unsigned int backing;
	unsigned int order;
};

FIXTURE_VARIANT_ADD(fork, vmalloc) {
	.backing = KALLOC_BACKING_VMALLOC,
};

FIXTURE_VARIANT_ADD(fork, pages0) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 0,
};

FIXTURE_VARIANT_ADD(fork, pages4) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 4,
};

/* 2 MiB blocks, mapped by PMD: copied as blocks */
FIXTURE_VARIANT_ADD(fork, pages9) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 9,
};

FIXTURE_SETUP(fork)
{
	self->fd = kt_open();
	ASSERT_LE(0, self->fd);
	/* 256 pages, or two blocks when blocks are larger */
	self->size = 256 * KT_PAGE > 2 * (KT_PAGE << variant->order) ?
		     256 * KT_PAGE : 2 * (KT_PAGE << variant->order);
	ASSERT_EQ(0, kt_create(self->fd, self->size, variant->backing,
			       variant->order, -1, &self->c));
	self->p = kt_map(self->fd, &self->c, 0);
	ASSERT_NE(MAP_FAILED, self->p);
	/* half of it touched before the fork, half not */
	memset(self->p, 0x11, self->size / 2);
}

FIXTURE_TEARDOWN(fork)
{
	munmap(self->p, self->size);
	close(self->fd);
}

static int byte_is(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* Run @fn in a child; its exit status, 0 for success. */
static int in_child(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn(arg));
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct ctx {
	int fd;
	unsigned int id;
	unsigned char *p;
	size_t size;
};

/* The child sees the parent's data, then writes its own. */
static int child_reads_then_writes(void *arg)
{
	struct ctx *x = arg;

	if (!byte_is(x->p, x->size / 2, 0x11))
		return 10;
	if (!byte_is(x->p + x->size / 2, x->size / 2, 0))
		return 11;
	memset(x->p, 0x22, x->size);
	if (!byte_is(x->p, x->size, 0x22))
		return 12;
	return 0;
}

TEST_F(fork, child_sees_a_copy_and_its_writes_stay_its_own)
{
	struct ctx x = { self->fd, self->c.id, self->p, self->size };

	EXPECT_EQ(0, in_child(child_reads_then_writes, &x));
	EXPECT_TRUE(byte_is(self->p, self->size / 2, 0x11)) TH_LOG("the child's write showed in the parent");
	EXPECT_TRUE(byte_is(self->p + self->size / 2, self->size / 2, 0));
}

/* The parent writes after the fork; the child must still see the old data. */
TEST_F(fork, parent_writes_after_fork_stay_out_of_the_child)
{
	int to_child[2], to_parent[2], status;
	char go;
	pid_t pid;

	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(to_parent));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (read(to_child[0], &go, 1) != 1)
			_exit(20);
		_exit(byte_is(self->p, self->size / 2, 0x11) &&
		      byte_is(self->p + self->size / 2, self->size / 2, 0) ? 0 : 21);
	}
	memset(self->p, 0x33, self->size);
	ASSERT_EQ(1, write(to_child[1], "g", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("the parent's write showed in the child");
	close(to_child[0]);
	close(to_child[1]);
	close(to_parent[0]);
	close(to_parent[1]);
}

/* In the child the same id names the child's copy: INFO, RELEASE, DESTROY. */
static int child_uses_its_own_ids(void *arg)
{
	struct ctx *x = arg;
	struct kalloc_info info;
	struct kt_row row;

	if (kt_info(x->fd, x->id, &info))
		return 30;
	if (info.mappings != 1)
		return 31;
	if (kt_proc_row(x->id, getpid(), &row) || row.mappings != 1)
		return 32;
	if (kt_release(x->fd, x->id, 0, x->size))
		return 33;
	if (!byte_is(x->p, x->size, 0))
		return 34;
	if (kt_destroy(x->fd, x->id))
		return 35;
	if (kt_info(x->fd, x->id, &info) != -ENOENT)
		return 36;
	return 0;
}

TEST_F(fork, ids_in_the_child_name_the_childs_copy)
{
	struct ctx x = { self->fd, self->c.id, self->p, self->size };
	struct kalloc_info info;

	EXPECT_EQ(0, in_child(child_uses_its_own_ids, &x));
	EXPECT_TRUE(byte_is(self->p, self->size / 2, 0x11)) TH_LOG("the child's RELEASE reached the parent");
	ASSERT_EQ(0, kt_info(self->fd, self->c.id, &info)) TH_LOG("the child's DESTROY reached the parent");
	EXPECT_EQ(1, info.mappings);
}

/* A region the parent created but did not map is not the child's. */
static int child_cannot_name_unmapped(void *arg)
{
	struct ctx *x = arg;
	struct kalloc_info info;
	void *p;

	if (kt_info(x->fd, x->id, &info) != -ENOENT)
		return 40;
	p = mmap(NULL, KT_PAGE, PROT_READ, MAP_SHARED, x->fd,
		 (unsigned long long)x->id << KALLOC_REGION_WINDOW_SHIFT);
	if (p != MAP_FAILED)
		return 41;
	return 0;
}

TEST_F(fork, unmapped_regions_stay_the_parents)
{
	struct kalloc_create other;
	struct ctx x = { self->fd, 0, NULL, 0 };

	ASSERT_EQ(0, kt_create(self->fd, KT_PAGE << variant->order, variant->backing,
			       variant->order, -1, &other));
	x.id = other.id;
	EXPECT_EQ(0, in_child(child_cannot_name_unmapped, &x));
}

/* Destroyed but still mapped: the child gets the data, not the id. */
static int child_of_destroyed(void *arg)
{
	struct ctx *x = arg;
	struct kalloc_info info;

	if (kt_info(x->fd, x->id, &info) != -ENOENT)
		return 60;
	if (!byte_is(x->p, x->size / 2, 0x11))
		return 61;
	memset(x->p, 0x66, x->size);
	return 0;
}

TEST_F(fork, destroyed_regions_stay_unnamed_in_the_child)
{
	struct ctx x = { self->fd, self->c.id, self->p, self->size };

	ASSERT_EQ(0, kt_destroy(self->fd, self->c.id));
	EXPECT_EQ(0, in_child(child_of_destroyed, &x));
	EXPECT_TRUE(byte_is(self->p, self->size / 2, 0x11));
}

/* Regions and pages of the child go away with it. */
TEST_F(fork, child_exit_frees_its_copy)
{
	struct ctx x = { self->fd, self->c.id, self->p, self->size };
	long regions = kt_proc_total("regions");
	long resident = kt_proc_total("resident_pages") + kt_proc_total("resident_vmalloc");

	EXPECT_EQ(0, in_child(child_reads_then_writes, &x));
	EXPECT_EQ(regions, kt_proc_total("regions"));
	EXPECT_EQ(resident, kt_proc_total("resident_pages") + kt_proc_total("resident_vmalloc"));
}

/* The grandchild sees the child's data and writes its own. */
static int grandchild_sees_44_writes_55(void *arg)
{
	struct ctx *x = arg;

	if (!byte_is(x->p, x->size, 0x44))
		return 52;
	memset(x->p, 0x55, x->size);
	return 0;
}

/* A grandchild copies the child's copy. */
static int child_forks_again(void *arg)
{
	struct ctx *x = arg;

	memset(x->p, 0x44, x->size);
	if (in_child(grandchild_sees_44_writes_55, x))
		return 50;
	return byte_is(x->p, x->size, 0x44) ? 0 : 51;
}

TEST_F(fork, grandchildren_get_their_own_copies)
{
	struct ctx x = { self->fd, self->c.id, self->p, self->size };

	EXPECT_EQ(0, in_child(child_forks_again, &x));
	EXPECT_TRUE(byte_is(self->p, self->size / 2, 0x11));
}

/*
 * MADV_KEEPONFORK takes VM_WIPEONFORK off the parent's vma, so a kernel
 * that copies page-table entries before ->open (6.1.95 to 6.1.190) would
 * give the child entries to the parent's pages: the child must still get
 * its own copy, both ways.
 */
TEST_F(fork, keeponfork_leaves_the_child_its_own_copy)
{
	struct ctx x = { self->fd, self->c.id, self->p, self->size };

	ASSERT_EQ(0, madvise(self->p, self->size, MADV_KEEPONFORK));
	EXPECT_EQ(0, in_child(child_reads_then_writes, &x));
	EXPECT_TRUE(byte_is(self->p, self->size / 2, 0x11)) TH_LOG("after KEEPONFORK the child's write showed in the parent");
	EXPECT_TRUE(byte_is(self->p + self->size / 2, self->size / 2, 0));
}

/*
 * The parent RELEASEs region N while a child maps its own region N (same
 * id, same file offsets, the file shared): the child's mappings stay as
 * they were.  Its data is intact and it takes no new fault to see it,
 * which it would if the parent's RELEASE had zapped its entries.
 */
TEST_F(fork, release_leaves_another_processs_mappings_alone)
{
	int to_child[2], to_parent[2], status;
	pid_t pid;
	char go;

	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(to_parent));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kalloc_info before, after;

		/* map every page, then let the parent release its region */
		if (!byte_is(self->p, self->size / 2, 0x11) ||
		    !byte_is(self->p + self->size / 2, self->size / 2, 0))
			_exit(70);
		if (kt_info(self->fd, self->c.id, &before))
			_exit(71);
		if (write(to_parent[1], "r", 1) != 1 ||
		    read(to_child[0], &go, 1) != 1)
			_exit(72);
		if (!byte_is(self->p, self->size / 2, 0x11) ||
		    !byte_is(self->p + self->size / 2, self->size / 2, 0))
			_exit(73);
		if (kt_info(self->fd, self->c.id, &after))
			_exit(74);
		_exit(after.faults == before.faults ? 0 : 75);
	}
	ASSERT_EQ(1, read(to_parent[0], &go, 1));
	EXPECT_EQ(0, kt_release(self->fd, self->c.id, 0, self->size));
	ASSERT_EQ(1, write(to_child[1], "g", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("child: %d (73: data lost, 75: the parent's RELEASE zapped the child's mappings)",
						 WEXITSTATUS(status));
	EXPECT_TRUE(byte_is(self->p, self->size, 0)) TH_LOG("the parent's release did not take");
	close(to_child[0]);
	close(to_child[1]);
	close(to_parent[0]);
	close(to_parent[1]);
}

struct writer {
	volatile unsigned long *region;	/* in the region's later vma */
	volatile unsigned long *after;	/* anonymous, above that vma */
	volatile int stop;
};

/* The region's word, then the anonymous one, each round one more. */
static void *write_in_order(void *arg)
{
	struct writer *w = arg;

	for (unsigned long n = 1; !w->stop; n++) {
		*w->region = n;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		*w->after = n;
	}
	return NULL;
}

static int child_sees_an_instant(void *arg)
{
	struct writer *w = arg;

	return *w->after <= *w->region ? 0 : 1;
}

/*
 * A thread writes while another forks: the child sees its writes up to a
 * point and none after, whatever vma they went through.  The region is
 * mapped as two vmas (mprotect splits it), the thread writes through the
 * second, then to anonymous memory above it, which fork copies later.
 * The region is copied when fork reaches its first vma.  Copied while
 * still mapped, or with the second vma still open to faults under its own
 * lock (6.12), the child saw the anonymous word ahead of the region's.
 */
TEST_F(fork, a_writing_thread_is_seen_at_one_instant)
{
	size_t size = self->size;
	unsigned char *base;
	struct writer w = { 0 };
	pthread_t t;
	int bad = 0, failed = 0;

	base = mmap(NULL, size + KT_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, base);
	ASSERT_EQ(base, mmap(base, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			     self->fd, self->c.offset));
	ASSERT_EQ(base + size, mmap(base + size, KT_PAGE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	ASSERT_EQ(0, mprotect(base, KT_PAGE, PROT_READ));
	w.region = (volatile unsigned long *)(base + size / 2);
	w.after = (volatile unsigned long *)(base + size);
	ASSERT_EQ(0, pthread_create(&t, NULL, write_in_order, &w));
	for (int i = 0; i < 20; i++) {
		usleep(2000);
		int rc = in_child(child_sees_an_instant, &w);

		bad += rc == 1;
		failed += rc != 0 && rc != 1;
	}
	w.stop = 1;
	pthread_join(t, NULL);
	EXPECT_EQ(0, bad) TH_LOG("%d of 20 children saw the anonymous word ahead of the region's", bad);
	EXPECT_EQ(0, failed);
	munmap(base, size + KT_PAGE);
}

TEST_HARNESS_MAIN
