// SPDX-License-Identifier: GPL-2.0
/*
 * Mapping regions: what mmap accepts and refuses, data that stays put
 * across partial munmap and mprotect, zeroed fresh and released pages,
 * SIGBUS past the end, and memory that outlives its fd and its id.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include "kalloc_test.h"
#include "kselftest_harness.h"

FIXTURE(map) {
	int fd;
	struct kalloc_create c;
	size_t size;
	size_t block;
};

FIXTURE_VARIANT(map) {
	unsigned int backing;
	unsigned int order;
};

FIXTURE_VARIANT_ADD(map, vmalloc) {
	.backing = KALLOC_BACKING_VMALLOC,
	.order = 0,
};

FIXTURE_VARIANT_ADD(map, pages0) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 0,
};

FIXTURE_VARIANT_ADD(map, pages4) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 4,
};

FIXTURE_VARIANT_ADD(map, pages9) {
	.backing = KALLOC_BACKING_PAGES,
	.order = 9,
};

FIXTURE_SETUP(map)
{
	self->fd = kt_open();
	ASSERT_LE(0, self->fd);
	self->block = KT_PAGE << variant->order;
	/* 64 pages, or four blocks when blocks are larger */
	self->size = 64 * KT_PAGE > 4 * self->block ? 64 * KT_PAGE : 4 * self->block;
	ASSERT_EQ(0, kt_create(self->fd, self->size, variant->backing,
			       variant->order, -1, &self->c));
}

FIXTURE_TEARDOWN(map)
{
	close(self->fd);
}

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void fill(unsigned char *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 7 + (i >> 12));
}

static int check(const unsigned char *p, size_t n, unsigned int seed, size_t from)
{
	for (size_t i = from; i < from + n; i++)
		if (p[i - from] != (unsigned char)(seed + i * 7 + (i >> 12)))
			return 0;
	return 1;
}

TEST_F(map, fresh_memory_reads_zero_and_keeps_writes)
{
	unsigned char *p = kt_map(self->fd, &self->c, 0);

	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	EXPECT_TRUE(all_zero(p, self->size));
	fill(p, self->size, 1);
	EXPECT_TRUE(check(p, self->size, 1, 0));
	ASSERT_EQ(0, munmap(p, self->size));
	p = kt_map(self->fd, &self->c, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_TRUE(check(p, self->size, 1, 0)) TH_LOG("a second mapping sees other data");
	munmap(p, self->size);
}

TEST_F(map, map_private_is_refused)
{
	void *p = mmap(NULL, self->size, PROT_READ | PROT_WRITE, MAP_PRIVATE,
		       self->fd, self->c.offset);

	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(map, wrong_offsets_and_lengths_are_refused)
{
	void *p;

	/* no region at the next id */
	p = mmap(NULL, KT_PAGE, PROT_READ, MAP_SHARED, self->fd,
		 self->c.offset + (1ULL << KALLOC_REGION_WINDOW_SHIFT));
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	/* offset 0 names no region */
	p = mmap(NULL, KT_PAGE, PROT_READ, MAP_SHARED, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	/* starting at or past the region's end */
	p = mmap(NULL, KT_PAGE, PROT_READ, MAP_SHARED, self->fd,
		 self->c.offset + self->size);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	/* running into the next region's window */
	p = mmap(NULL, 2 * KT_PAGE, PROT_READ, MAP_SHARED, self->fd,
		 self->c.offset + (1ULL << KALLOC_REGION_WINDOW_SHIFT) - KT_PAGE);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	/* a window past what the offset space can hold */
	p = mmap(NULL, KT_PAGE, PROT_READ, MAP_SHARED, self->fd, -4096L);
	EXPECT_EQ(MAP_FAILED, p);
	/* a mapping longer than the window */
	p = mmap(NULL, (1ULL << KALLOC_REGION_WINDOW_SHIFT) + KT_PAGE, PROT_NONE,
		 MAP_SHARED | MAP_NORESERVE, self->fd, self->c.offset);
	EXPECT_EQ(MAP_FAILED, p);
}

TEST_F(map, inner_offsets_map_the_right_pages)
{
	unsigned char *whole = kt_map(self->fd, &self->c, 0), *part;

	ASSERT_NE(MAP_FAILED, whole);
	fill(whole, self->size, 3);
	part = mmap(NULL, 2 * KT_PAGE, PROT_READ, MAP_SHARED, self->fd,
		    self->c.offset + 5 * KT_PAGE);
	ASSERT_NE(MAP_FAILED, part);
	EXPECT_TRUE(check(part, 2 * KT_PAGE, 3, 5 * KT_PAGE));
	munmap(part, 2 * KT_PAGE);
	munmap(whole, self->size);
}

static sigjmp_buf jump;

static void on_sigbus(int sig)
{
	siglongjmp(jump, sig);
}

TEST_F(map, access_past_the_end_is_sigbus)
{
	struct sigaction sa = { .sa_handler = on_sigbus };
	volatile unsigned char *p;
	size_t len = self->size + 2 * KT_PAGE;
	int sig;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		 self->c.offset);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("a mapping may run past the end, like a file's");
	sigaction(SIGBUS, &sa, NULL);
	p[self->size - 1] = 1;
	sig = sigsetjmp(jump, 1);
	if (!sig)
		p[self->size] = 1;
	EXPECT_EQ(SIGBUS, sig);
	sig = sigsetjmp(jump, 1);
	if (!sig)
		(void)p[self->size + KT_PAGE + 5];
	EXPECT_EQ(SIGBUS, sig);
	EXPECT_EQ(1, p[self->size - 1]);
	munmap((void *)p, len);
}

TEST_F(map, partial_munmap_and_mprotect_keep_data)
{
	unsigned char *p = kt_map(self->fd, &self->c, 0);
	struct kalloc_info info;
	size_t q = self->size / 4;

	ASSERT_NE(MAP_FAILED, p);
	fill(p, self->size, 9);
	ASSERT_EQ(0, munmap(p + q, q)) TH_LOG("punch a hole");
	ASSERT_EQ(0, mprotect(p, q, PROT_READ)) TH_LOG("read-only head");
	ASSERT_EQ(0, kt_info(self->fd, self->c.id, &info));
	EXPECT_EQ(2, info.mappings) TH_LOG("head and tail are two vmas");
	EXPECT_TRUE(check(p, q, 9, 0));
	EXPECT_TRUE(check(p + 2 * q, 2 * q, 9, 2 * q));
	ASSERT_EQ(0, mprotect(p, q, PROT_READ | PROT_WRITE));
	p[0] ^= 0xff;
	p[0] ^= 0xff;
	EXPECT_TRUE(check(p, q, 9, 0));
	munmap(p, q);
	munmap(p + 2 * q, 2 * q);
	ASSERT_EQ(0, kt_info(self->fd, self->c.id, &info));
	EXPECT_EQ(0, info.mappings);
}

TEST_F(map, mremap_cannot_grow_but_can_move)
{
	unsigned char *p = kt_map(self->fd, &self->c, self->size / 2), *q;
	size_t half = self->size / 2;

	ASSERT_NE(MAP_FAILED, p);
	fill(p, half, 4);
	q = mremap(p, half, self->size, MREMAP_MAYMOVE);
	EXPECT_EQ(MAP_FAILED, q) TH_LOG("growth must be refused");
	q = mremap(p, half, half / 2, 0);
	ASSERT_EQ(p, q) TH_LOG("shrinking in place works: %s", strerror(errno));
	EXPECT_TRUE(check(p, half / 2, 4, 0));
	munmap(p, half / 2);
}

TEST_F(map, released_pages_read_zero_and_others_keep_data)
{
	unsigned char *p = kt_map(self->fd, &self->c, 0);
	size_t off = self->size / 4, len = self->size / 2;

	ASSERT_NE(MAP_FAILED, p);
	fill(p, self->size, 5);
	ASSERT_EQ(0, kt_release(self->fd, self->c.id, off, len));
	EXPECT_TRUE(check(p, off, 5, 0));
	EXPECT_TRUE(all_zero(p + off, len)) TH_LOG("released range must read zero");
	EXPECT_TRUE(check(p + off + len, self->size - off - len, 5, off + len));
	/* and it is usable again */
	fill(p + off, len, 6);
	EXPECT_TRUE(check(p + off, len, 6, 0));
	munmap(p, self->size);
}

TEST_F(map, release_of_part_of_a_block)
{
	unsigned char *p = kt_map(self->fd, &self->c, 0);
	struct kalloc_info before, after;

	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x5a, self->size);
	ASSERT_EQ(0, kt_info(self->fd, self->c.id, &before));
	ASSERT_EQ(0, kt_release(self->fd, self->c.id, KT_PAGE, KT_PAGE));
	ASSERT_EQ(0, kt_info(self->fd, self->c.id, &after));
	EXPECT_EQ(0x5a, p[0]);
	EXPECT_TRUE(all_zero(p + KT_PAGE, KT_PAGE));
	EXPECT_EQ(0x5a, p[2 * KT_PAGE]);
	EXPECT_EQ(before.releases + 1, after.releases);
	if (variant->backing == KALLOC_BACKING_PAGES && variant->order == 9) {
		/* a 2 MiB block (mapped by PMD) is zeroed in place, kept whole */
		EXPECT_EQ(before.resident, after.resident);
	} else if (variant->backing == KALLOC_BACKING_PAGES) {
		/* the page went back; touching it again brought a fresh one */
		EXPECT_EQ(before.resident, after.resident + 1);
	}
	munmap(p, self->size);
}

TEST_F(map, memory_outlives_fd_and_destroy)
{
	unsigned char *p = kt_map(self->fd, &self->c, 0);
	long regions;

	ASSERT_NE(MAP_FAILED, p);
	fill(p, self->size, 8);
	regions = kt_proc_total("regions");
	ASSERT_EQ(0, kt_destroy(self->fd, self->c.id));
	EXPECT_EQ(regions, kt_proc_total("regions")) TH_LOG("mapped: it stays");
	close(self->fd);
	self->fd = kt_open();
	EXPECT_TRUE(check(p, self->size, 8, 0));
	fill(p, self->size, 2);
	EXPECT_TRUE(check(p, self->size, 2, 0));
	munmap(p, self->size);
	EXPECT_EQ(regions - 1, kt_proc_total("regions")) TH_LOG("the last mapping took it");
}

TEST_F(map, proc_row_describes_the_region)
{
	struct kt_row row;
	unsigned char *p = kt_map(self->fd, &self->c, 0);

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, kt_proc_row(self->c.id, getpid(), &row));
	EXPECT_EQ(variant->order, row.order);
	EXPECT_EQ(-1, row.node);
	EXPECT_EQ(self->size / KT_PAGE, row.size_pages);
	EXPECT_EQ(1, row.mappings);
	EXPECT_STREQ(variant->backing == KALLOC_BACKING_PAGES ? "pages" : "vmalloc",
		     row.backing);
	EXPECT_STREQ("kalloc_map_test", row.comm);
	munmap(p, self->size);
}

TEST_HARNESS_MAIN
