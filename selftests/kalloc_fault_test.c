// SPDX-License-Identifier: GPL-2.0
/*
 * Faults: every fault is counted, a neighbourhood is mapped per fault,
 * and the counts in KALLOC_IOC_INFO and /proc/kalloc equal what the test
 * caused.  Touching a region in order takes at most 1/8 of the faults
 * anonymous memory takes.  On 6.4 and later, faults run under the vma's
 * own lock, and with lock_stat on each one is timed holding its region's.
 */
#include <sys/utsname.h>
#include "kalloc_test.h"
#include "kselftest_harness.h"

FIXTURE(fault) {
	int fd;
	unsigned long around;
};

FIXTURE_VARIANT(fault) {
	unsigned int backing;
	unsigned int order;
};

FIXTURE_VARIANT_ADD(fault, vmalloc) {
	.backing = KALLOC_BACKING_VMALLOC,
};

FIXTURE_VARIANT_ADD(fault, pages0) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 0,
};

FIXTURE_VARIANT_ADD(fault, pages4) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 4,
};

FIXTURE_VARIANT_ADD(fault, pages9) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 9,
};

FIXTURE_SETUP(fault)
{
	self->fd = kt_open();
	ASSERT_LE(0, self->fd);
	self->around = kt_param("fault_around");
	ASSERT_LE(1, self->around);
}

FIXTURE_TEARDOWN(fault)
{
	close(self->fd);
}

/*
 * Map @c's region one page past a 2 MiB boundary, so that no block of an
 * order-9 region lines up with a PMD: these tests are about the batches
 * of 4 KiB entries that every other mapping gets (kalloc_pmd_test covers
 * the PMD mappings).  For other orders the address changes nothing.
 */
static void *map_batched(int fd, const struct kalloc_create *c)
{
	size_t pmd = 2UL << 20, span = c->size + 2 * pmd;
	unsigned char *res, *p;

	res = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		return MAP_FAILED;
	p = (unsigned char *)(((unsigned long)res + pmd - 1) & ~(pmd - 1)) + KT_PAGE;
	if (mmap(p, c->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 fd, c->offset) != p) {
		munmap(res, span);
		return MAP_FAILED;
	}
	munmap(res, p - res);
	munmap(p + c->size, res + span - (p + c->size));
	return p;
}

static unsigned long round_up_to(unsigned long n, unsigned long to)
{
	return (n + to - 1) / to * to;
}

/* Resident pages after touching the first @touched pages of a fresh region. */
static unsigned long expect_resident(const FIXTURE_VARIANT(fault) *v,
				     unsigned long touched, unsigned long around,
				     unsigned long size_pages)
{
	unsigned long mapped = round_up_to(touched, around);

	if (v->backing == KALLOC_BACKING_VMALLOC)
		return size_pages;
	return round_up_to(mapped, 1UL << v->order);
}

TEST_F(fault, counts_equal_what_the_test_caused)
{
	unsigned long pages = 1024, touched = 200, i;
	struct kalloc_create c;
	struct kalloc_info info;
	long faults_before, faults_after;
	volatile unsigned char *p;
	struct kt_row row;

	ASSERT_EQ(0, kt_create(self->fd, pages * KT_PAGE, variant->backing,
			       variant->order, -1, &c));
	p = map_batched(self->fd, &c);
	ASSERT_NE(MAP_FAILED, p);
	faults_before = kt_proc_total("faults");
	for (i = 0; i < touched; i++)
		p[i * KT_PAGE] = 1;
	faults_after = kt_proc_total("faults");

	ASSERT_EQ(0, kt_info(self->fd, c.id, &info));
	EXPECT_EQ(round_up_to(touched, self->around) / self->around, info.faults);
	EXPECT_EQ((unsigned long)(faults_after - faults_before), info.faults);
	EXPECT_EQ(expect_resident(variant, touched, self->around, pages), info.resident);
	ASSERT_EQ(0, kt_proc_row(c.id, getpid(), &row));
	EXPECT_EQ(info.faults, row.faults);
	EXPECT_EQ(info.resident, row.resident_pages);

	/* touching them again costs nothing */
	for (i = 0; i < touched; i++)
		p[i * KT_PAGE] = 2;
	ASSERT_EQ(0, kt_info(self->fd, c.id, &info));
	EXPECT_EQ(round_up_to(touched, self->around) / self->around, info.faults);
	munmap((void *)p, pages * KT_PAGE);
}

TEST_F(fault, release_counts_and_refault)
{
	unsigned long pages = 512, i;
	struct kalloc_create c;
	struct kalloc_info a, b;
	long releases_before = kt_proc_total("releases");
	long resident_before = kt_proc_total("resident_pages");
	volatile unsigned char *p;

	if (variant->order > 4)
		pages = 1024;
	ASSERT_EQ(0, kt_create(self->fd, pages * KT_PAGE, variant->backing,
			       variant->order, -1, &c));
	p = map_batched(self->fd, &c);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < pages; i++)
		p[i * KT_PAGE] = 1;
	ASSERT_EQ(0, kt_info(self->fd, c.id, &a));
	EXPECT_EQ(pages, a.resident);
	EXPECT_EQ(pages / self->around, a.faults);
	if (variant->backing == KALLOC_BACKING_PAGES) {
		EXPECT_EQ(resident_before + (long)pages, kt_proc_total("resident_pages"));
	}

	ASSERT_EQ(0, kt_release(self->fd, c.id, 0, pages / 2 * KT_PAGE));
	ASSERT_EQ(0, kt_info(self->fd, c.id, &b));
	EXPECT_EQ(pages / 2, b.releases);
	EXPECT_EQ(releases_before + (long)pages / 2, kt_proc_total("releases"));
	if (variant->backing == KALLOC_BACKING_PAGES) {
		EXPECT_EQ(pages / 2, b.resident);
		EXPECT_EQ(resident_before + (long)pages / 2, kt_proc_total("resident_pages"));
	} else {
		EXPECT_EQ(pages, b.resident) TH_LOG("a vmalloc region stays whole");
	}
	for (i = 0; i < pages / 2; i++)
		EXPECT_EQ(0, p[i * KT_PAGE]);
	ASSERT_EQ(0, kt_info(self->fd, c.id, &b));
	EXPECT_EQ(a.faults + pages / 2 / self->around, b.faults) TH_LOG("one fault per neighbourhood again");
	EXPECT_EQ(pages, b.resident);
	munmap((void *)p, pages * KT_PAGE);
	close(self->fd);
	self->fd = kt_open();
	EXPECT_EQ(resident_before, kt_proc_total("resident_pages")) TH_LOG("close gave it all back");
}

TEST_F(fault, in_order_touch_takes_an_eighth_of_anon_faults)
{
	unsigned long pages = 4096, i;
	struct kalloc_create c;
	volatile unsigned char *p, *anon;
	long before, dev_faults, anon_faults;

	ASSERT_EQ(0, kt_create(self->fd, pages * KT_PAGE, variant->backing,
			       variant->order, -1, &c));
	p = map_batched(self->fd, &c);
	ASSERT_NE(MAP_FAILED, p);
	anon = mmap(NULL, pages * KT_PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, anon);
	madvise((void *)anon, pages * KT_PAGE, MADV_NOHUGEPAGE);

	before = kt_minflt();
	for (i = 0; i < pages; i++)
		p[i * KT_PAGE] = 1;
	dev_faults = kt_minflt() - before;
	before = kt_minflt();
	for (i = 0; i < pages; i++)
		anon[i * KT_PAGE] = 1;
	anon_faults = kt_minflt() - before;

	TH_LOG("%lu pages: kalloc %ld faults, anonymous %ld", pages, dev_faults, anon_faults);
	EXPECT_LE(dev_faults * 8, anon_faults);
	munmap((void *)p, pages * KT_PAGE);
	munmap((void *)anon, pages * KT_PAGE);
}

TEST_F(fault, fault_around_is_a_live_parameter)
{
	struct kalloc_create c;
	struct kalloc_info info;
	volatile unsigned char *p;
	unsigned long i;

	ASSERT_EQ(-EINVAL, kt_set_param("fault_around", 3));
	ASSERT_EQ(-EINVAL, kt_set_param("fault_around", 0));
	ASSERT_EQ(-EINVAL, kt_set_param("fault_around", 64));
	ASSERT_EQ(0, kt_set_param("fault_around", 1));
	ASSERT_EQ(0, kt_create(self->fd, 1024 * KT_PAGE, variant->backing,
			       variant->order, -1, &c));
	p = map_batched(self->fd, &c);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < 64; i++)
		p[i * KT_PAGE] = 1;
	ASSERT_EQ(0, kt_info(self->fd, c.id, &info));
	EXPECT_EQ(0, kt_set_param("fault_around", self->around));
	EXPECT_EQ(64, info.faults);
	EXPECT_EQ(expect_resident(variant, 64, 1, 1024), info.resident);
	munmap((void *)p, 1024 * KT_PAGE);
}

/*
 * lock_stat=1 times every fault's hold of its region's lock, and only
 * while it is on: fault_lock_holds grows by the faults, then stops.
 */
TEST_F(fault, lock_stat_times_every_fault_while_on)
{
	long faults, holds, hold_ns;
	struct kalloc_create c;
	volatile unsigned char *p;
	unsigned long i, n = 64 * self->around;

	ASSERT_EQ(0, kt_create(self->fd, 2 * n * KT_PAGE, variant->backing,
			       variant->order, -1, &c));
	p = map_batched(self->fd, &c);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, kt_set_param("lock_stat", 1));
	faults = kt_proc_total("faults");
	holds = kt_proc_total("fault_lock_holds");
	hold_ns = kt_proc_total("fault_lock_hold_ns");
	ASSERT_LE(0, holds);
	for (i = 0; i < n; i++)
		p[i * KT_PAGE] = 1;
	EXPECT_EQ(0, kt_set_param("lock_stat", 0));
	faults = kt_proc_total("faults") - faults;
	holds = kt_proc_total("fault_lock_holds") - holds;
	hold_ns = kt_proc_total("fault_lock_hold_ns") - hold_ns;
	EXPECT_EQ(64, faults);
	EXPECT_EQ(faults, holds);
	EXPECT_LT(0, hold_ns);
	TH_LOG("%ld faults held their region's lock %ld ns each on average",
	       faults, holds ? hold_ns / holds : 0);

	holds = kt_proc_total("fault_lock_holds");
	for (; i < 2 * n; i++)
		p[i * KT_PAGE] = 1;
	EXPECT_EQ(holds, kt_proc_total("fault_lock_holds"));
	munmap((void *)p, 2 * n * KT_PAGE);
}

/* The running kernel is @major.@minor or later. */
static bool kernel_at_least(int major, int minor)
{
	struct utsname u;
	int ma = 0, mi = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return false;
	return ma > major || (ma == major && mi >= minor);
}

/*
 * 6.4 and later try a fault under the vma's own lock first, and call a
 * file vma's ->fault there only if its ops have ->map_pages; any other
 * fault is retried under the mmap_lock, where it waits for every mmap,
 * munmap and mprotect of the process (and they for it).  Every fault of
 * this quiet, single-threaded test is served under the vma lock there,
 * and none before 6.4.
 */
TEST_F(fault, faults_run_under_the_vma_lock_where_the_kernel_has_one)
{
	long faults, locked;
	struct kalloc_create c;
	volatile unsigned char *p;
	unsigned long i, n = 64 * self->around;

	ASSERT_EQ(0, kt_create(self->fd, n * KT_PAGE, variant->backing,
			       variant->order, -1, &c));
	p = map_batched(self->fd, &c);
	ASSERT_NE(MAP_FAILED, p);
	faults = kt_proc_total("faults");
	locked = kt_proc_total("faults_vma_locked");
	ASSERT_LE(0, locked) TH_LOG("no faults_vma_locked in /proc/kalloc");
	for (i = 0; i < n; i++)
		p[i * KT_PAGE] = 1;
	faults = kt_proc_total("faults") - faults;
	locked = kt_proc_total("faults_vma_locked") - locked;
	TH_LOG("%ld faults, %ld under the vma lock", faults, locked);
	EXPECT_EQ(64, faults);
	if (kernel_at_least(6, 4)) {
		EXPECT_EQ(faults, locked);
	} else {
		EXPECT_EQ(0, locked);
	}
	munmap((void *)p, n * KT_PAGE);
}

/* The page frame behind @addr, from /proc/self/pagemap (needs root); 0 if none. */
static unsigned long long pfn_of(volatile void *addr)
{
	unsigned long long entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &entry, sizeof(entry),
		  (unsigned long)addr / KT_PAGE * sizeof(entry)) != sizeof(entry))
		entry = 0;
	close(fd);
	return entry & (1ULL << 63) ? entry & ((1ULL << 55) - 1) : 0;
}

/*
 * A touch takes the larger of the region's block and the fault-around
 * window as one block when the buddy allocator has one ready, as it has
 * in a freshly booted guest: the pages are consecutive frames, aligned.
 * An order-0 region mapped in a vma narrower than the window takes single
 * pages, and only those the vma maps.
 */
TEST_F(fault, a_touch_takes_one_block_of_the_window_or_the_order)
{
	unsigned long pages = 1024, block, i;
	unsigned long long first;
	struct kalloc_create c;
	struct kalloc_info info;
	volatile unsigned char *p;

	if (variant->backing != KALLOC_BACKING_PAGES)
		SKIP(return, "a VMALLOC region is filled at create");
	block = self->around > (1UL << variant->order) ? self->around :
							  1UL << variant->order;
	ASSERT_EQ(0, kt_create(self->fd, pages * KT_PAGE, variant->backing,
			       variant->order, -1, &c));
	p = map_batched(self->fd, &c);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	first = pfn_of(p);
	ASSERT_NE(0, first) TH_LOG("no frame number in /proc/self/pagemap");
	EXPECT_EQ(0, first % block) TH_LOG("block of %lu pages at frame %llu", block, first);
	for (i = 1; i < self->around; i++)
		EXPECT_EQ(first + i, pfn_of(p + i * KT_PAGE)) TH_LOG("page %lu", i);
	munmap((void *)p, pages * KT_PAGE);

	if (variant->order || self->around < 4)
		return;
	/* a vma of half a window: the window is clipped, so single pages */
	ASSERT_EQ(0, kt_create(self->fd, pages * KT_PAGE, variant->backing, 0, -1, &c));
	p = mmap(NULL, self->around / 2 * KT_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
		 self->fd, c.offset);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	ASSERT_EQ(0, kt_info(self->fd, c.id, &info));
	EXPECT_EQ(self->around / 2, info.resident);
	munmap((void *)p, self->around / 2 * KT_PAGE);
}

TEST_HARNESS_MAIN
