// SPDX-License-Identifier: GPL-2.0
/*
 * 2 MiB mappings: a PAGES region of order 9 mapped at a 2 MiB-aligned
 * address is mapped with one PMD entry per block, one fault each.  What
 * the kernel does with such a mapping must keep working: GUP (O_DIRECT,
 * process_vm_readv/writev, vmsplice), splits by partial munmap and
 * mprotect, RELEASE of part of a block and of whole blocks, fork, RSS in
 * /proc/PID/smaps, the pmd_pages column of /proc/kalloc, and the fallbacks
 * to 4 KiB entries (an address that does not line up, THP disabled).
 */
#define _GNU_SOURCE
#include <linux/loop.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include "kalloc_test.h"
#include "kselftest_harness.h"

#define BLOCK	(2UL << 20)
#define NBLOCKS	8
#define SIZE	(NBLOCKS * BLOCK)
#define KB(n)	((long)((n) >> 10))

FIXTURE(pmd) {
	int fd;
	struct kalloc_create c;
	unsigned char *p;
};

FIXTURE_SETUP(pmd)
{
	self->fd = kt_open();
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, kt_create(self->fd, SIZE, KALLOC_BACKING_PAGES, 9, -1,
			       &self->c));
	self->p = kt_map(self->fd, &self->c, 0);
	ASSERT_NE(MAP_FAILED, self->p);
}

FIXTURE_TEARDOWN(pmd)
{
	munmap(self->p, SIZE);
	close(self->fd);
}

/*
 * The sum of smaps field @key ("FilePmdMapped", "Rss") over this
 * process's vmas that start inside [@p, @p + @len), in bytes; -1 if
 * smaps cannot be read.
 */
static long smaps_bytes(const void *p, size_t len, const char *key)
{
	uintptr_t lo = (uintptr_t)p, hi = lo + len, start, end;
	char line[256];
	size_t n = strlen(key);
	long sum = 0, kb;
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* a vma's first line: "start-end perms ..." */
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			in = start >= lo && start < hi;
			continue;
		}
		if (in && !strncmp(line, key, n) && line[n] == ':' &&
		    sscanf(line + n + 1, "%ld", &kb) == 1)
			sum += kb << 10;
	}
	fclose(f);
	return sum;
}

static long faults_of(FIXTURE_DATA(pmd) *self)
{
	struct kalloc_info info;

	return kt_info(self->fd, self->c.id, &info) ? -1 : (long)info.faults;
}

static long resident_of(FIXTURE_DATA(pmd) *self)
{
	struct kalloc_info info;

	return kt_info(self->fd, self->c.id, &info) ? -1 : (long)info.resident;
}

static unsigned char pattern(size_t off)
{
	return (unsigned char)(off * 7 + (off >> 12) + 1);
}

static void fill(unsigned char *p, size_t from, size_t n)
{
	for (size_t i = from; i < from + n; i++)
		p[i] = pattern(i);
}

/* The first offset in [from, from + n) that does not hold the pattern, or -1. */
static long bad_at(const unsigned char *p, size_t from, size_t n)
{
	for (size_t i = from; i < from + n; i++)
		if (p[i] != pattern(i))
			return (long)i;
	return -1;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

TEST_F(pmd, mappings_get_2mib_aligned_addresses)
{
	void *pad[3];
	unsigned char *q;

	EXPECT_EQ(0, (uintptr_t)self->p % BLOCK) TH_LOG("mapped at %p", self->p);
	/*
	 * Mappings of the region's inner blocks line up with their offset,
	 * even right after small mappings that leave the free space below
	 * them out of line.
	 */
	for (int k = 0; k < 3; k++) {
		pad[k] = mmap(NULL, (k + 1) * KT_PAGE, PROT_READ,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT_NE(MAP_FAILED, pad[k]);
		q = mmap(NULL, 2 * BLOCK, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->fd, self->c.offset + 3 * BLOCK);
		ASSERT_NE(MAP_FAILED, q);
		EXPECT_EQ(0, (uintptr_t)q % BLOCK) TH_LOG("inner mapping at %p", q);
		q[0] = 1;
		EXPECT_EQ(KB(BLOCK), KB(smaps_bytes(q, 2 * BLOCK, "FilePmdMapped")));
		munmap(q, 2 * BLOCK);
	}
	for (int k = 0; k < 3; k++)
		munmap(pad[k], (k + 1) * KT_PAGE);
}

TEST_F(pmd, first_touch_maps_each_block_with_one_pmd)
{
	struct kt_row row;

	memset(self->p, 0x5a, SIZE);
	EXPECT_EQ(NBLOCKS, faults_of(self));
	EXPECT_EQ(KB(SIZE), KB(smaps_bytes(self->p, SIZE, "FilePmdMapped")));
	EXPECT_EQ(KB(SIZE), KB(smaps_bytes(self->p, SIZE, "Rss")));
	ASSERT_EQ(0, kt_proc_row(self->c.id, getpid(), &row));
	EXPECT_EQ(SIZE / KT_PAGE, row.pmd_pages);
	EXPECT_EQ(SIZE / KT_PAGE, row.resident_pages);
	for (size_t i = 0; i < SIZE; i += KT_PAGE)
		ASSERT_EQ(0x5a, self->p[i]);
	munmap(self->p, SIZE);
	self->p = MAP_FAILED;
	ASSERT_EQ(0, kt_proc_row(self->c.id, getpid(), &row));
	EXPECT_EQ(0, row.pmd_pages) TH_LOG("unmapped, yet counted as PMD-mapped");
	EXPECT_EQ(SIZE / KT_PAGE, row.resident_pages);
}

TEST_F(pmd, read_faults_map_a_pmd_of_zeroes_that_takes_writes)
{
	for (size_t b = 0; b < NBLOCKS; b++)
		ASSERT_EQ(0, self->p[b * BLOCK + 12345]);
	EXPECT_EQ(NBLOCKS, faults_of(self));
	EXPECT_EQ(KB(SIZE), KB(smaps_bytes(self->p, SIZE, "FilePmdMapped")));
	ASSERT_TRUE(all_zero(self->p, SIZE));
	fill(self->p, 0, SIZE);
	EXPECT_EQ(NBLOCKS, faults_of(self)) TH_LOG("a write to a read-faulted PMD faulted again");
	EXPECT_EQ(-1, bad_at(self->p, 0, SIZE));
}

/* The kernel reading and writing the blocks through GUP, fast and slow. */
TEST_F(pmd, process_vm_readv_writev_and_vmsplice_see_the_data)
{
	size_t off = BLOCK - 32 * KT_PAGE, len = 64 * KT_PAGE;	/* across a boundary */
	unsigned char *buf = malloc(len), *mine = malloc(len);
	struct iovec local, remote;
	int pipefd[2];
	ssize_t n;

	ASSERT_TRUE(buf && mine);
	fill(self->p, 0, SIZE);
	ASSERT_EQ(KB(SIZE), KB(smaps_bytes(self->p, SIZE, "FilePmdMapped")));

	local = (struct iovec){ buf, len };
	remote = (struct iovec){ self->p + off, len };
	ASSERT_EQ((ssize_t)len, process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_EQ(-1, bad_at(buf - off, off, len)) TH_LOG("process_vm_readv");

	for (size_t i = 0; i < len; i++)
		mine[i] = (unsigned char)~pattern(off + i);
	local = (struct iovec){ mine, len };
	remote = (struct iovec){ self->p + 5 * BLOCK + off % BLOCK, len };
	ASSERT_EQ((ssize_t)len, process_vm_writev(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_EQ(0, memcmp(self->p + 5 * BLOCK + off % BLOCK, mine, len));

	/* vmsplice takes references to the pages themselves */
	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ(0, fcntl(pipefd[1], F_SETPIPE_SZ, (int)len) < 0 ? -1 : 0);
	remote = (struct iovec){ self->p + off, len };
	n = vmsplice(pipefd[1], &remote, 1, 0);
	ASSERT_EQ((ssize_t)len, n) TH_LOG("vmsplice: %s", strerror(errno));
	ASSERT_EQ((ssize_t)len, read(pipefd[0], buf, len));
	EXPECT_EQ(-1, bad_at(buf - off, off, len)) TH_LOG("vmsplice");
	close(pipefd[0]);
	close(pipefd[1]);
	free(buf);
	free(mine);
}

/* A loop device over a file in tmpfs: O_DIRECT on it pins user pages. */
static int loop_attach(const char *file, char *dev, size_t devlen)
{
	int ctl, nr, loopfd, backing;

	if (access("/dev/loop-control", F_OK) && system("modprobe loop 2>/dev/null"))
		return -ENODEV;
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -ENODEV;
	nr = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	if (nr < 0)
		return -ENODEV;
	snprintf(dev, devlen, "/dev/loop%d", nr);
	loopfd = open(dev, O_RDWR | O_CLOEXEC);
	backing = open(file, O_RDWR | O_CLOEXEC);
	if (loopfd < 0 || backing < 0 || ioctl(loopfd, LOOP_SET_FD, backing)) {
		if (loopfd >= 0)
			close(loopfd);
		if (backing >= 0)
			close(backing);
		return -ENODEV;
	}
	close(backing);
	return loopfd;
}

TEST_F(pmd, o_direct_reads_into_and_writes_from_the_blocks)
{
	const char *file = "/tmp/kalloc_pmd_test.img";
	size_t len = 3 * BLOCK, at = BLOCK + 64 * KT_PAGE;	/* two PMDs and a half */
	unsigned char *img = malloc(len);
	char dev[32];
	int backing, loopfd, dio;

	ASSERT_NE(NULL, img);
	for (size_t i = 0; i < len; i++)
		img[i] = (unsigned char)(i * 13 + (i >> 9));
	backing = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_LE(0, backing);
	ASSERT_EQ((ssize_t)len, write(backing, img, len));
	close(backing);
	loopfd = loop_attach(file, dev, sizeof(dev));
	if (loopfd < 0) {
		unlink(file);
		free(img);
		SKIP(return, "no loop device in this kernel: O_DIRECT not tested");
	}
	dio = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, dio) TH_LOG("open %s O_DIRECT: %s", dev, strerror(errno));

	/* into blocks already mapped by PMD, and into untouched ones */
	memset(self->p, 0, 2 * BLOCK);
	ASSERT_EQ((ssize_t)len, pread(dio, self->p + at, len, 0))
		TH_LOG("O_DIRECT read: %s", strerror(errno));
	EXPECT_EQ(0, memcmp(self->p + at, img, len));
	EXPECT_TRUE(all_zero(self->p, at));

	/* out of them: the device then holds what the region held */
	for (size_t i = 0; i < len; i++)
		self->p[at + i] = (unsigned char)~img[i];
	ASSERT_EQ((ssize_t)len, pwrite(dio, self->p + at, len, 0))
		TH_LOG("O_DIRECT write: %s", strerror(errno));
	ASSERT_EQ((ssize_t)len, pread(dio, self->p + 5 * BLOCK, len, 0));
	EXPECT_EQ(0, memcmp(self->p + 5 * BLOCK, self->p + at, len));
	EXPECT_LT(0, smaps_bytes(self->p, SIZE, "FilePmdMapped"));

	close(dio);
	ioctl(loopfd, LOOP_CLR_FD, 0);
	close(loopfd);
	unlink(file);
	free(img);
}

TEST_F(pmd, partial_munmap_splits_one_block_and_keeps_every_byte)
{
	unsigned char *hole = self->p + BLOCK + 8 * KT_PAGE;

	fill(self->p, 0, SIZE);
	ASSERT_EQ(0, munmap(hole, KT_PAGE));
	/* the split block's other pages come back by 4 KiB entries */
	EXPECT_EQ(-1, bad_at(self->p, 0, BLOCK + 8 * KT_PAGE));
	EXPECT_EQ(-1, bad_at(self->p, BLOCK + 9 * KT_PAGE, SIZE - BLOCK - 9 * KT_PAGE));
	EXPECT_EQ(KB(SIZE - BLOCK), KB(smaps_bytes(self->p, SIZE, "FilePmdMapped")));
	EXPECT_EQ(KB(SIZE - KT_PAGE), KB(smaps_bytes(self->p, SIZE, "Rss")));
	EXPECT_EQ(SIZE / KT_PAGE, (unsigned long)resident_of(self));
}

static sigjmp_buf segv_jump;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(segv_jump, 1);
}

TEST_F(pmd, mprotect_inside_a_block_splits_it_and_protects_one_page)
{
	unsigned char *ro = self->p + 3 * BLOCK + 100 * KT_PAGE;
	struct sigaction sa = { .sa_handler = on_segv }, old;
	volatile int faulted = 0;

	fill(self->p, 0, SIZE);
	ASSERT_EQ(0, mprotect(ro, KT_PAGE, PROT_READ));
	ASSERT_EQ(0, sigaction(SIGSEGV, &sa, &old));
	if (!sigsetjmp(segv_jump, 1))
		*(volatile unsigned char *)ro = 0;
	else
		faulted = 1;
	sigaction(SIGSEGV, &old, NULL);
	EXPECT_TRUE(faulted) TH_LOG("a write to a read-only page inside a PMD block went through");
	ro[-1] = pattern(ro - 1 - self->p);	/* neighbours stay writable */
	ro[KT_PAGE] = pattern(ro + KT_PAGE - self->p);
	EXPECT_EQ(-1, bad_at(self->p, 0, SIZE));
	EXPECT_EQ(KB(SIZE - BLOCK), KB(smaps_bytes(self->p, SIZE, "FilePmdMapped")));
}

TEST_F(pmd, release_of_part_of_a_block_zeroes_it_in_place)
{
	size_t off = 2 * BLOCK + 10 * KT_PAGE, len = 2 * KT_PAGE;

	fill(self->p, 0, SIZE);
	ASSERT_EQ(0, kt_release(self->fd, self->c.id, off, len));
	EXPECT_TRUE(all_zero(self->p + off, len));
	EXPECT_EQ(-1, bad_at(self->p, 0, off));
	EXPECT_EQ(-1, bad_at(self->p, off + len, SIZE - off - len));
	/* the block stays whole, and mapped whole again */
	EXPECT_EQ(SIZE / KT_PAGE, (unsigned long)resident_of(self));
	EXPECT_EQ(KB(SIZE), KB(smaps_bytes(self->p, SIZE, "FilePmdMapped")));
}

TEST_F(pmd, release_of_whole_blocks_frees_them_and_they_come_back_by_pmd)
{
	long faults;

	fill(self->p, 0, SIZE);
	ASSERT_EQ(0, kt_release(self->fd, self->c.id, 3 * BLOCK, 2 * BLOCK));
	EXPECT_EQ((SIZE - 2 * BLOCK) / KT_PAGE, (unsigned long)resident_of(self));
	EXPECT_EQ(KB(SIZE - 2 * BLOCK), KB(smaps_bytes(self->p, SIZE, "Rss")));
	faults = faults_of(self);
	EXPECT_TRUE(all_zero(self->p + 3 * BLOCK, 2 * BLOCK));
	EXPECT_EQ(faults + 2, faults_of(self));
	EXPECT_EQ(-1, bad_at(self->p, 0, 3 * BLOCK));
	EXPECT_EQ(-1, bad_at(self->p, 5 * BLOCK, SIZE - 5 * BLOCK));
	EXPECT_EQ(KB(SIZE), KB(smaps_bytes(self->p, SIZE, "FilePmdMapped")));
	EXPECT_EQ(SIZE / KT_PAGE, (unsigned long)resident_of(self));
}

TEST_F(pmd, fork_gives_the_child_blocks_of_its_own_mapped_by_pmd)
{
	int status;
	pid_t pid;

	fill(self->p, 0, SIZE);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (bad_at(self->p, 0, SIZE) != -1)
			_exit(71);
		if (smaps_bytes(self->p, SIZE, "FilePmdMapped") != (long)SIZE)
			_exit(72);
		memset(self->p, 0xee, SIZE);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("child: %d (71: data, 72: not mapped by PMD)",
						  WEXITSTATUS(status));
	EXPECT_EQ(-1, bad_at(self->p, 0, SIZE)) TH_LOG("the child's writes reached the parent");
}

/* An address that does not line up with the offset: 4 KiB entries, same data. */
TEST_F(pmd, an_address_out_of_line_maps_4k_entries)
{
	unsigned char *res, *q;

	res = mmap(NULL, SIZE + 2 * BLOCK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, res);
	q = (unsigned char *)(((uintptr_t)res + BLOCK - 1) & ~(BLOCK - 1)) + 16 * KT_PAGE;
	ASSERT_EQ(q, mmap(q, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			  self->fd, self->c.offset));
	fill(q, 0, SIZE);
	EXPECT_EQ(-1, bad_at(q, 0, SIZE));
	EXPECT_EQ(-1, bad_at(self->p, 0, SIZE)) TH_LOG("the two mappings disagree");
	EXPECT_EQ(0, smaps_bytes(q, SIZE, "FilePmdMapped"));
	EXPECT_EQ(KB(SIZE), KB(smaps_bytes(q, SIZE, "Rss")));
	munmap(res, SIZE + 2 * BLOCK);
}

/* mremap to an address out of line: the data follows, 4 KiB at a time. */
TEST_F(pmd, mremap_out_of_line_keeps_the_data)
{
	unsigned char *res, *q;

	fill(self->p, 0, SIZE);
	res = mmap(NULL, SIZE + 2 * BLOCK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, res);
	q = (unsigned char *)(((uintptr_t)res + BLOCK - 1) & ~(BLOCK - 1)) + KT_PAGE;
	ASSERT_EQ(q, mremap(self->p, SIZE, SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, q));
	self->p = q;
	EXPECT_EQ(-1, bad_at(q, 0, SIZE));
	EXPECT_EQ(0, smaps_bytes(q, SIZE, "FilePmdMapped"));
	ASSERT_EQ(0, kt_release(self->fd, self->c.id, BLOCK, BLOCK));
	EXPECT_TRUE(all_zero(q + BLOCK, BLOCK));
	fill(q, BLOCK, BLOCK);
	EXPECT_EQ(-1, bad_at(q, 0, SIZE));
}

/*
 * MADV_COLD and MADV_PAGEOUT over part of a block try to split it (the
 * kernel cannot: the block has no mapping, and is not on the LRU): the
 * data stays, the block stays whole.
 */
TEST_F(pmd, madv_cold_and_pageout_on_part_of_a_block_keep_the_data)
{
	fill(self->p, 0, SIZE);
	EXPECT_EQ(0, madvise(self->p + KT_PAGE, KT_PAGE, MADV_COLD));
	EXPECT_EQ(0, madvise(self->p + BLOCK + KT_PAGE, 2 * KT_PAGE, MADV_PAGEOUT));
	EXPECT_EQ(0, madvise(self->p, SIZE, MADV_COLD));
	EXPECT_EQ(-1, bad_at(self->p, 0, SIZE));
	EXPECT_EQ(SIZE / KT_PAGE, (unsigned long)resident_of(self));
}

static sigjmp_buf bus_jump;

static void on_bus(int sig)
{
	(void)sig;
	siglongjmp(bus_jump, 1);
}

/*
 * A page with a memory error (MADV_HWPOISON stands in for the hardware)
 * gets SIGBUS when touched again, as a poisoned page cache page does; the
 * kernel must not look for the mapping the page does not have.
 */
TEST_F(pmd, a_poisoned_page_gets_sigbus)
{
	unsigned char *b = self->p + 2 * BLOCK;
	struct sigaction sa = { .sa_handler = on_bus }, old;
	volatile int bus = 0;

	fill(self->p, 0, SIZE);
	/* the kernel poisons the page, then fails to split the block */
	if (madvise(b + 5 * KT_PAGE, KT_PAGE, MADV_HWPOISON) &&
	    errno != EBUSY && errno != EHWPOISON)
		SKIP(return, "MADV_HWPOISON: %s", strerror(errno));
	ASSERT_EQ(0, madvise(b, BLOCK, MADV_DONTNEED));
	/* another page of the block, mapped again (by PTE: no PMD now) */
	EXPECT_EQ(pattern(2 * BLOCK), b[0]);
	ASSERT_EQ(0, sigaction(SIGBUS, &sa, &old));
	if (!sigsetjmp(bus_jump, 1))
		(void)*(volatile unsigned char *)(b + 5 * KT_PAGE);
	else
		bus = 1;
	sigaction(SIGBUS, &old, NULL);
	EXPECT_TRUE(bus) TH_LOG("a poisoned page was read");
	EXPECT_EQ(-1, bad_at(self->p, 0, 2 * BLOCK));
	EXPECT_EQ(-1, bad_at(self->p, 2 * BLOCK, 5 * KT_PAGE));
	EXPECT_EQ(-1, bad_at(self->p, 2 * BLOCK + 6 * KT_PAGE, BLOCK - 6 * KT_PAGE));
}

/* prctl(PR_SET_THP_DISABLE) is honoured: no PMD, the same data. */
TEST_F(pmd, a_process_with_thp_disabled_gets_4k_entries)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		struct kalloc_create c;
		unsigned char *q;
		int fd = kt_open();

		if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
			_exit(70);
		if (fd < 0 || kt_create(fd, SIZE, KALLOC_BACKING_PAGES, 9, -1, &c))
			_exit(71);
		q = kt_map(fd, &c, 0);
		if (q == MAP_FAILED)
			_exit(72);
		fill(q, 0, SIZE);
		if (bad_at(q, 0, SIZE) != -1)
			_exit(73);
		if (smaps_bytes(q, SIZE, "FilePmdMapped") != 0)
			_exit(74);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("child: %d (73: data, 74: mapped by PMD)",
						  WEXITSTATUS(status));
}

TEST_HARNESS_MAIN
