/* SPDX-License-Identifier: MIT */
/*
 * The OS layer: the only file that talks to the kernel.
 *
 * Memory comes in regions.  With the device, a region is a kalloc PAGES
 * region: KALLOC_IOC_CREATE, then mmap(MAP_SHARED) at the offset it returns,
 * placed on an aligned address inside a PROT_NONE reservation (segments are
 * found by masking pointers).  Purging is KALLOC_IOC_RELEASE; a region dies
 * with KALLOC_IOC_DESTROY and munmap.  Without the device the same three
 * verbs are anonymous mmap, madvise(MADV_DONTNEED) and munmap.
 *
 * Which backend, and the PAGES block order, are options (options.c:
 * KALLOC_BACKEND, KALLOC_QUIET, KALLOC_ORDER): auto takes the device when
 * it opens, else anonymous memory, saying so once on stderr.
 *
 * 2 MiB regions.  A region of order 9 (KA_PMD_ORDER) is filled a whole
 * 2 MiB block at a time, and a module that maps such blocks with PMD
 * entries does so only where the address and the region offset agree mod
 * 2 MiB.  ka_os_region_create_pmd() makes such a region for a huge block
 * (huge.c): its first head bytes (a multiple of 2 MiB) hold the segment
 * header in 64 KiB of anonymous memory, the rest of them only reserved
 * (a 2 MiB anonymous mapping would take a 2 MiB THP for the header where
 * THP is "always"), and the rest is the device region, starting on a
 * 2 MiB boundary as its offset (a multiple of 2^40) does.  Had the
 * header sat in the device region, it would have made a whole 2 MiB block
 * resident and pushed every block one 2 MiB block further.  Releasing part of a
 * 2 MiB block gives nothing back there (the module zeroes it in place),
 * so huge.c releases whole blocks only.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/kalloc.h>

#include "internal.h"

enum { KA_BACKEND_DEVICE = 1, KA_BACKEND_ANON = 2 };

static int ka_backend;
static int ka_dev_fd = -1;
static unsigned ka_order;
static unsigned ka_max_order;	/* the device's, from KALLOC_IOC_VERSION */
_Atomic uint64_t ka_os_releases, ka_os_released_bytes, ka_os_regions;

void ka_message(const char *msg)
{
	ssize_t r = write(STDERR_FILENO, msg, strlen(msg));
	(void)r;
}

void ka_fatal(const char *what, const void *p)
{
	char buf[160];

	snprintf(buf, sizeof buf, "liballoc: %s %p\n", what, p);
	ka_message(buf);
	abort();
}

/* A call liballoc cannot do without failed with err: say which, stop. */
void ka_fatal_error(const char *call, int err)
{
	char buf[160];
	const char *name = strerrorname_np(err);

	snprintf(buf, sizeof buf, "liballoc: %s failed (%s); cannot go on safely\n", call,
		 name ? name : "unknown error");
	ka_message(buf);
	abort();
}

void ka_os_init(void)
{
	const char *mode = ka_options.backend;
	char buf[256];

	ka_order = ka_options.order;
	if (mode && strcmp(mode, "anon") == 0) {
		ka_backend = KA_BACKEND_ANON;
		return;
	}
	if (mode && strcmp(mode, "device") != 0 && strcmp(mode, "auto") != 0) {
		snprintf(buf, sizeof buf,
			 "liballoc: KALLOC_BACKEND=%s: expected device, anon or auto\n", mode);
		ka_message(buf);
		_exit(1);
	}
	ka_dev_fd = open(KALLOC_DEVICE, O_RDWR | O_CLOEXEC);
	if (ka_dev_fd >= 0 && ka_dev_fd < 100) {
		/* Out of the way of programs that dup2() onto low numbers. */
		int high = fcntl(ka_dev_fd, F_DUPFD_CLOEXEC, 100);
		if (high >= 0) {
			close(ka_dev_fd);
			ka_dev_fd = high;
		}
	}
	if (ka_dev_fd >= 0) {
		struct kalloc_version v = { .argsz = sizeof v };

		if (ioctl(ka_dev_fd, KALLOC_IOC_VERSION, &v) == 0 &&
		    v.abi == KALLOC_ABI_VERSION) {
			ka_max_order = v.max_order;
			if (ka_order > v.max_order)
				ka_order = v.max_order;
			ka_backend = KA_BACKEND_DEVICE;
			return;
		}
		close(ka_dev_fd);
		ka_dev_fd = -1;
		errno = EPROTO;
	}
	if (mode && strcmp(mode, "device") == 0) {
		snprintf(buf, sizeof buf,
			 "liballoc: KALLOC_BACKEND=device but %s is not usable: %s\n",
			 KALLOC_DEVICE, strerror(errno));
		ka_message(buf);
		_exit(1);
	}
	ka_backend = KA_BACKEND_ANON;
	if (!ka_options.quiet) {
		snprintf(buf, sizeof buf,
			 "liballoc: %s unavailable (%s); using anonymous memory\n",
			 KALLOC_DEVICE, strerror(errno));
		ka_message(buf);
	}
}

const char *ka_os_backend(void)
{
	return ka_backend == KA_BACKEND_DEVICE ? "device" : "anon";
}

size_t ka_os_granule(void)
{
	return ka_backend == KA_BACKEND_DEVICE ? KA_PAGE_SIZE << ka_order : KA_PAGE_SIZE;
}

/*
 * Map size bytes at an address aligned to align from fd at offset (all
 * anonymous without fd); with a head, the first head bytes are not fd's:
 * their first KA_SLICE_SIZE anonymous memory, the rest reserved address
 * space (PROT_NONE).
 */
/* Address space of size + align bytes, mapped PROT_NONE at *res: the
 * place in it aligned to align is returned; NULL if none. */
static uint8_t *ka_os_reserve(size_t size, size_t align, uint8_t **res)
{
	*res = mmap(NULL, size + align, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (*res == MAP_FAILED)
		return NULL;
	return (uint8_t *)(((uintptr_t)*res + align - 1) & ~(align - 1));
}

/* What of ka_os_reserve()'s reservation at res lies outside the size
 * bytes at p goes back. */
static void ka_os_reserve_trim(uint8_t *res, size_t size, size_t align, uint8_t *p)
{
	if (p > res)
		munmap(res, (size_t)(p - res));
	if (res + size + align > p + size)
		munmap(p + size, (size_t)(res + size + align - (p + size)));
}

static void *ka_os_map_aligned(size_t size, size_t align, size_t head, int fd, uint64_t offset)
{
	uint8_t *res, *p = ka_os_reserve(size, align, &res);
	if (!p)
		return NULL;
	void *m = p;
	size_t anon = head < KA_SLICE_SIZE ? head : KA_SLICE_SIZE;
	if (fd < 0)
		head = anon = size;
	if (anon)
		m = mmap(p, anon, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (m != MAP_FAILED && size > head)
		m = mmap(p + head, size - head, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 fd, (off_t)offset);
	if (m == MAP_FAILED) {
		munmap(res, size + align);
		return NULL;
	}
	ka_os_reserve_trim(res, size, align, p);
	return p;
}

/* A device region of size - head bytes and order, mapped after head bytes
 * that are not its own (ka_os_map_aligned) at an address aligned to align. */
static bool ka_os_device_region(size_t size, size_t head, size_t align, unsigned order, int node,
				struct ka_os_region *r)
{
	struct kalloc_create c = {
		.argsz = sizeof c, .size = size - head, .backing = KALLOC_BACKING_PAGES,
		.order = order, .node = node < 0 ? KALLOC_NODE_LOCAL : node,
	};
	if (ioctl(ka_dev_fd, KALLOC_IOC_CREATE, &c) != 0)
		return false;
	r->base = ka_os_map_aligned(size, align, head, ka_dev_fd, c.offset);
	if (!r->base) {
		struct kalloc_destroy d = { .argsz = sizeof d, .id = c.id };
		ioctl(ka_dev_fd, KALLOC_IOC_DESTROY, &d);
		return false;
	}
	r->id = c.id;
	return true;
}

/* The region is made: counted, and kept if the segment map covers it. */
static bool ka_os_region_made(struct ka_os_region *r)
{
	atomic_fetch_add_explicit(&ka_os_regions, 1, KA_RELAXED);
	/* Past what the segment map covers (internal.h): not ours to use. */
	if ((uintptr_t)r->base + r->size > (1UL << KA_VA_BITS)) {
		ka_os_region_destroy(r);
		return false;
	}
	return true;
}

bool ka_os_region_create(size_t size, size_t align, int node, struct ka_os_region *r)
{
	r->size = size;
	r->head = 0;
	r->node = node;
	r->id = 0;
	if (ka_backend == KA_BACKEND_DEVICE) {
		if (!ka_os_device_region(size, 0, align, ka_order, node, r))
			return false;
	} else {
		r->base = ka_os_map_aligned(size, align, 0, -1, 0);
		if (!r->base)
			return false;
		if (node >= 0 && node < 64) {
			unsigned long mask = 1UL << node;
			/* MPOL_PREFERRED: a hint, not a failure point. */
			syscall(SYS_mbind, r->base, size, 1, &mask, 64UL, 0U);
		}
	}
	return ka_os_region_made(r);
}

/*
 * Move anonymous region r to a new place of size bytes (not less than
 * it has) aligned to align, its pages with it: mremap() moves the page
 * tables, so nothing is copied and no page it never touched is touched,
 * as glibc's realloc() of a chunk of its own mapping does.  What lies past
 * the old end reads zero.  False, r as it was, where it cannot: a device
 * region (its vmas do not grow or move), or no room; the caller copies.
 */
bool ka_os_region_move(struct ka_os_region *r, size_t size, size_t align)
{
	if (r->id || r->head || size < r->size)
		return false;
	int saved = errno;
	uint8_t *res, *p = ka_os_reserve(size, align, &res);
	if (!p) {
		errno = saved;
		return false;
	}
	/* Past what the segment map covers (internal.h): not ours to use. */
	if ((uintptr_t)p + size > (1UL << KA_VA_BITS) ||
	    mremap(r->base, r->size, size, MREMAP_MAYMOVE | MREMAP_FIXED, p) == MAP_FAILED) {
		munmap(res, size + align);
		errno = saved;
		return false;
	}
	ka_os_reserve_trim(res, size, align, p);
	r->base = p;
	r->size = size;
	return true;
}

/*
 * Whether huge blocks take ka_os_region_create_pmd(): the device takes
 * order 9, and KALLOC_ORDER, when given, is not below it (a lower one
 * pins every region to itself).
 */
bool ka_os_pmd_usable(void)
{
	return ka_backend == KA_BACKEND_DEVICE && ka_max_order >= KA_PMD_ORDER &&
	       (!ka_options.order_set || ka_order >= KA_PMD_ORDER);
}

/*
 * A region of size bytes at an address aligned to align (both multiples of
 * 2 MiB, as head is): head bytes of which the first 64 KiB are anonymous
 * memory, then an order-9 device region on a 2 MiB boundary.  False
 * (nothing made) without the device or when it refuses the order: the
 * caller takes ka_os_region_create().
 */
bool ka_os_region_create_pmd(size_t size, size_t head, size_t align, int node,
			     struct ka_os_region *r)
{
	if (!ka_os_pmd_usable() || head >= size || ((size | head | align) & (KA_PMD_SIZE - 1)))
		return false;
	r->size = size;
	r->head = head;
	r->node = node;
	r->id = 0;
	if (!ka_os_device_region(size, head, align, KA_PMD_ORDER, node, r))
		return false;
	return ka_os_region_made(r);
}

/*
 * Whether address space costs more than address space (huge.c's room to
 * grow): under an RLIMIT_AS (ulimit -v, batch systems), or with
 * vm.overcommit_memory 2, where every private writable mapping is charged
 * whole against the commit limit (anonymous regions are such mappings).
 * The limit is looked at each time, a region at a time: a program may set
 * it after it started; the sysctl once, at init (ka_os_commit_init()).
 */
static bool ka_os_strict_overcommit;	/* vm.overcommit_memory is 2 */

/* At process init: not from malloc later, when a seccomp filter or a
 * chroot may keep the program from /proc. */
void ka_os_commit_init(void)
{
	int fd = open("/proc/sys/vm/overcommit_memory", O_RDONLY | O_CLOEXEC);
	char c = 0;

	if (fd >= 0) {
		if (read(fd, &c, 1) != 1)
			c = 0;
		close(fd);
	}
	ka_os_strict_overcommit = c == '2';
}

bool ka_os_address_space_counted(void)
{
	struct rlimit as;

	if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
		return true;
	/* device regions are shared mappings: not charged */
	return ka_backend != KA_BACKEND_DEVICE && ka_os_strict_overcommit;
}

/*
 * The range reads zero next time; the memory goes back to the kernel.
 * Callers count on the zeros (a span carved from slices released since
 * their last use is handed to calloc unwritten, segment.c), so where the
 * kernel refuses (madvise on mlock()ed memory, a RELEASE interrupted) the
 * range is zeroed here and stays resident.
 */
void ka_os_region_release(const struct ka_os_region *r, size_t offset, size_t len)
{
	uint8_t *base = r->base;
	int saved = errno;

	if (offset < r->head) {		/* the head, not the device's */
		size_t n = r->head - offset < len ? r->head - offset : len;
		if (madvise(base + offset, n, MADV_DONTNEED) != 0)
			memset(base + offset, 0, n);
		offset += n;
		len -= n;
	}
	bool released = true;

	if (len && ka_backend == KA_BACKEND_DEVICE) {
		struct kalloc_release rel = {
			.argsz = sizeof rel, .id = r->id, .offset = offset - r->head, .length = len,
		};
		released = ioctl(ka_dev_fd, KALLOC_IOC_RELEASE, &rel) == 0;
	} else if (len) {
		released = madvise(base + offset, len, MADV_DONTNEED) == 0;
	}
	errno = saved;
	if (!released) {
		memset(base + offset, 0, len);
		return;
	}
	atomic_fetch_add_explicit(&ka_os_releases, 1, KA_RELAXED);
	atomic_fetch_add_explicit(&ka_os_released_bytes, len, KA_RELAXED);
}

void ka_os_region_destroy(const struct ka_os_region *r)
{
	if (ka_backend == KA_BACKEND_DEVICE) {
		struct kalloc_destroy d = { .argsz = sizeof d, .id = r->id };
		ioctl(ka_dev_fd, KALLOC_IOC_DESTROY, &d);
	}
	munmap(r->base, r->size);
	atomic_fetch_sub_explicit(&ka_os_regions, 1, KA_RELAXED);
}

bool ka_os_region_view(const struct ka_os_region *r, struct ka_os_region_view *v)
{
	struct kalloc_info info = { .argsz = sizeof info, .id = r->id };

	if (ka_backend != KA_BACKEND_DEVICE || ioctl(ka_dev_fd, KALLOC_IOC_INFO, &info) != 0)
		return false;
	*v = (struct ka_os_region_view){
		.device_base = (uint8_t *)r->base + r->head, .device_size = (size_t)info.size,
		.order = info.order, .resident = (size_t)info.resident * KA_PAGE_SIZE,
		.faults = info.faults,
	};
	return true;
}

/* Bytes of the region backed by memory now (for statistics). */
size_t ka_os_region_resident(const struct ka_os_region *r)
{
	if (ka_backend == KA_BACKEND_DEVICE) {
		struct kalloc_info info = { .argsz = sizeof info, .id = r->id };
		if (ioctl(ka_dev_fd, KALLOC_IOC_INFO, &info) != 0)
			return 0;
		return (size_t)info.resident * KA_PAGE_SIZE;
	}
	unsigned char vec[4096];
	size_t pages = 0;
	for (size_t off = 0; off < r->size; off += sizeof vec * KA_PAGE_SIZE) {
		size_t len = r->size - off;
		if (len > sizeof vec * KA_PAGE_SIZE)
			len = sizeof vec * KA_PAGE_SIZE;
		if (mincore((uint8_t *)r->base + off, len, vec) != 0)
			return 0;
		for (size_t i = 0; i < len / KA_PAGE_SIZE; i++)
			pages += vec[i] & 1;
	}
	return pages * KA_PAGE_SIZE;
}

/*
 * Keep the transparent huge pages of THP "always" (Debian's default) out of
 * anonymous memory that is touched sparsely: there the first touch of any
 * 4 KiB of an aligned 2 MiB would make all 2 MiB resident.  With THP
 * "madvise" or "never" the flag changes nothing.  Best effort: a refusal
 * costs memory, not correctness.
 */
void ka_os_small_pages(void *p, size_t len)
{
	madvise(p, len, MADV_NOHUGEPAGE);
}

/*
 * The first bytes of a region: a segment's first touch is its header, so a
 * process of a few MiB would hold 2 MiB per half-segment it touched.
 * Device regions are the module's to map (its own 2 MiB mappings are for
 * order 9).
 */
void ka_os_region_small_pages(const struct ka_os_region *r, size_t len)
{
	if (ka_backend == KA_BACKEND_ANON)
		ka_os_small_pages(r->base, len < r->size ? len : r->size);
}

/* Zeroed memory for allocator metadata (heaps). */
void *ka_os_meta_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

uint64_t ka_os_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int ka_os_tid(void)
{
	return (int)syscall(SYS_gettid);
}

/*
 * Is thread tid of process pid gone?  Only the kernel's "no such thread"
 * says so: a thread it still has, a zombie leader, a refusal all count as
 * there.  tgkill() to the process itself with signal 0, which sandboxes'
 * seccomp filters let through (raise() and abort() need it); kill() to
 * another id some trap.  A tid given again since counts as there, which
 * only delays.
 */
bool ka_os_thread_gone(int pid, int tid)
{
	return syscall(SYS_tgkill, pid, tid, 0) != 0 && errno == ESRCH;
}

/*
 * The process's threads that are alive (not zombies, such as a leader
 * that called pthread_exit()), by /proc/self/task, counted up to most,
 * with no allocation: the purge thread asks whether it is alone (purge.c),
 * and the answer is most often in the first two it reads.  -1 if /proc
 * cannot tell.
 */
int ka_os_live_threads(int most)
{
	_Alignas(8) char buf[4096];	/* struct linux_dirent64 entries */
	char path[64], stat[512];
	int dir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int live = 0;
	long n = 0;

	if (dir < 0)
		return -1;
	while (live < most && (n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
		for (long off = 0; off < n && live < most;) {
			struct { uint64_t ino; int64_t off; unsigned short reclen;
				 unsigned char type; char name[]; } *d = (void *)(buf + off);

			off += d->reclen;
			if (d->name[0] < '0' || d->name[0] > '9')
				continue;
			snprintf(path, sizeof path, "/proc/self/task/%s/stat", d->name);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;	/* gone meanwhile */
			ssize_t len = read(fd, stat, sizeof stat - 1);
			close(fd);
			if (len <= 0)
				continue;
			stat[len] = 0;
			/* "tid (comm) S ...": the state after the last ')' */
			char *p = strrchr(stat, ')');
			if (p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X')
				live++;
		}
	}
	close(dir);
	return live < most && n < 0 ? -1 : live;
}

/* A fast-moving counter, to stir the secret: the CPU's where there is one. */
static uint64_t ka_os_cycles(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
	uint64_t v;

	__asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
	return v;
#else
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
#endif
}

uintptr_t ka_os_random(void)
{
	uintptr_t x = (uintptr_t)&x;
	const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
	uintptr_t a = 0;

	if (r)
		memcpy(&a, r, sizeof a);
	x ^= a ^ (uintptr_t)ka_os_cycles();
	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15UL;
	return x ^ (x >> 29);
}
