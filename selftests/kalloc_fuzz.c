// SPDX-License-Identifier: GPL-2.0
/*
 * kalloc_fuzz: a seeded fuzzer for /dev/kalloc.
 *
 *   kalloc_fuzz [--seed N] [--ops N] [--procs P] [--threads T]
 *               [--time S] [--budget-mb M] [--params] [--verbose]
 *
 * P worker processes of T threads each issue N operations in all, drawn
 * from a generator seeded by (seed, process, thread): every ioctl with
 * random and edge-value fields and argsz (0, 1, page-1, page, 2^63, ~0,
 * negative nodes, random commands, bad pointers), mmap, munmap, mprotect,
 * mremap and madvise (DONTNEED, DONTFORK, DOFORK, WIPEONFORK, KEEPONFORK,
 * REMOVE, and the rest) at random offsets, touches that race RELEASE from
 * other threads, system calls that reach the mappings from the kernel side
 * (read, write, vmsplice, process_vm_writev, mlock, mbind, move_pages,
 * /proc/self/smaps and numa_maps), opening and closing the device while
 * mapped, forks whose children are SIGKILLed while they fault or exit
 * while another of their threads faults, and an integrity check (fresh
 * and released pages read zero, fork copies are private both ways).
 *
 * The sequence of operations each thread draws is reproducible from the
 * seed; how the threads and processes interleave is not.  Touches catch
 * SIGSEGV and SIGBUS (mprotect, past-the-end, limits) and carry on; risky
 * things run in forked children.  The program itself must survive.
 *
 * With --params (root) it also changes the module's max_pages,
 * max_region_pages and fault_around while the others run, and puts them
 * back at the end.  --budget-mb bounds the resident pages the workers let
 * build up (default: a quarter of MemTotal): above it they release.
 *
 * Prints a summary: operations by kind with their errors by errno,
 * signals caught, children forked and how they ended, bad inputs tried,
 * integrity failures.  Exit status 0 unless an integrity check failed or a
 * worker died (1), or the usage was wrong (2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/kalloc.h>

#define PAGE		4096UL
#define MAXFD		4
#define MAXREG		24
#define MAXMAP		48
#define MAXERR		134
#define MAXTHREADS	16
#define TOUCH_MAX	64		/* pages one touch may cover */
#define MAP_MAX		(4UL << 20)	/* longest mapping kept */

#ifndef MADV_COLD
#define MADV_COLD		20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT		21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT		1
#endif
#define MPOL_BIND_		2
#define MPOL_MF_STRICT_		(1 << 0)
#define MPOL_MF_MOVE_		(1 << 1)

enum kind {
	K_VERSION, K_CREATE, K_RELEASE, K_INFO, K_DESTROY, K_BADIOCTL,
	K_MMAP, K_MUNMAP, K_MPROTECT, K_MREMAP, K_MADVISE, K_TOUCH,
	K_OPEN, K_CLOSE, K_SYSIO, K_PROC, K_RACE, K_FORK_KILL, K_FORK_EXIT,
	K_VERIFY, K_PARAM, K_SHED, NKINDS
};

static const char *const kind_name[NKINDS] = {
	"ioctl_version", "ioctl_create", "ioctl_release", "ioctl_info",
	"ioctl_destroy", "ioctl_random", "mmap", "munmap", "mprotect",
	"mremap", "madvise", "touch", "open", "close", "syscall_io",
	"proc_read", "release_race", "fork_kill", "fork_exit", "verify",
	"param", "shed",
};

/* How often each kind is drawn, per 1000. */
static const int kind_weight[NKINDS] = {
	[K_VERSION] = 20, [K_CREATE] = 90, [K_RELEASE] = 90, [K_INFO] = 50,
	[K_DESTROY] = 35, [K_BADIOCTL] = 90, [K_MMAP] = 90, [K_MUNMAP] = 45,
	[K_MPROTECT] = 35, [K_MREMAP] = 35, [K_MADVISE] = 70, [K_TOUCH] = 200,
	[K_OPEN] = 8, [K_CLOSE] = 6, [K_SYSIO] = 30, [K_PROC] = 6,
	[K_RACE] = 10, [K_FORK_KILL] = 4, [K_FORK_EXIT] = 3, [K_VERIFY] = 3,
	[K_PARAM] = 0, [K_SHED] = 0,
};

/* What every process adds to, in shared memory. */
struct kind_stats {
	unsigned long n, ok, bad;
	unsigned long ns;	/* wall time its ops took, for the soak's budget */
	unsigned long err[MAXERR + 1];
};

struct stats {
	struct kind_stats k[NKINDS];
	unsigned long ops, drawn;
	unsigned long sigsegv, sigbus;
	unsigned long forks, killed_mid_fault, exited_mid_fault;
	unsigned long child_exit0, child_exit_other, child_sig[65];
	unsigned long verify_ok, verify_child_gone, integrity;
	unsigned long keeponfork_shared;
	int stop;
	char first_failure[1024];
};

static struct stats *S;

#define ADD(f, v)	__atomic_fetch_add(&(f), (v), __ATOMIC_RELAXED)

struct opts {
	unsigned long long seed, ops;
	int procs, threads, time_s, params, verbose;
	unsigned long budget_pages;
} O = { .seed = 1, .ops = 10000, .procs = 2, .threads = 2 };

struct reg {
	int used;
	int fd;
	unsigned int id;
	unsigned long long offset, size;
	unsigned int backing, order;
};

struct map {
	int used;
	char *addr;
	size_t len;
	int fd;
	unsigned int id;
	unsigned long long roff;	/* addr's offset in the region */
	unsigned long long rsize;	/* the region's size */
	int dontfork, keep;
};

/* One worker process's view, shared by its threads. */
struct proc {
	pthread_rwlock_t lock;	/* tables; held for reading while touching */
	int index;
	int fds[MAXFD];
	struct reg regs[MAXREG];
	struct map maps[MAXMAP];
	unsigned int max_order;
	unsigned long ram_pages;
} P;

struct thr {
	int index;
	uint64_t rng;
	unsigned long ops;
	char *argbuf;		/* a page followed by a PROT_NONE page */
	int pipefd[2];
	pthread_t tid;
};

static __thread sigjmp_buf tl_jb;
static __thread volatile sig_atomic_t tl_in_touch;
static __thread volatile int tl_kind = -1;	/* the op running, for a post-mortem */

/* --- the generator */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd(struct thr *t)
{
	return splitmix(&t->rng);
}

static uint64_t below(struct thr *t, uint64_t n)
{
	return n ? rnd(t) % n : 0;
}

static int chance(struct thr *t, int percent)
{
	return (int)below(t, 100) < percent;
}

static const unsigned long long edge64[] = {
	0, 1, PAGE - 1, PAGE, PAGE + 1, 2 * PAGE, 1ULL << 20,
	(1ULL << 40) - 1, 1ULL << 40, (1ULL << 40) + PAGE, 1ULL << 41,
	0x7fffffffULL, 0x80000000ULL, 0xffffffffULL, 1ULL << 32,
	1ULL << 62, (1ULL << 63) - 1, 1ULL << 63, ~0ULL - PAGE + 1, ~0ULL,
};

static const unsigned int edge32[] = {
	0, 1, 2, 3, 4, 7, 8, 10, 11, 31, 32, 63, 64, 255, 256, 1023, 1024,
	PAGE - 1, PAGE, PAGE + 1, 0x7fffffff, 0x80000000, 0xfffffffe,
	0xffffffff,
};

static const int edge_node[] = {
	-1, 0, 1, 2, 3, -2, -1000, INT_MIN, INT_MAX, 15, 16, 63, 64, 1023,
	1024, 4095, 4096,
};

#define PICK(t, a)	((a)[below((t), sizeof(a) / sizeof((a)[0]))])

static unsigned long long edge_or_random64(struct thr *t)
{
	return chance(t, 70) ? PICK(t, edge64) : rnd(t);
}

static unsigned int edge_or_random32(struct thr *t)
{
	return chance(t, 70) ? PICK(t, edge32) : (unsigned int)rnd(t);
}

/* --- recording */

static void rec(enum kind k, long ret, int err, int bad)
{
	struct kind_stats *ks = &S->k[k];

	ADD(ks->n, 1);
	ADD(S->ops, 1);
	if (bad)
		ADD(ks->bad, 1);
	if (ret >= 0)
		ADD(ks->ok, 1);
	else
		ADD(ks->err[err > 0 && err <= MAXERR ? err : 0], 1);
}

/*
 * An integrity check failed.  Failures after MADV_KEEPONFORK are counted
 * apart (keeponfork_shared): they are one known cause, reported on its own.
 */
static void failure(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!strncmp(buf, "MADV_KEEPONFORK", 15)) {
		if (ADD(S->keeponfork_shared, 1) < 3)
			fprintf(stderr, "kalloc_fuzz: INTEGRITY: %s\n", buf);
		return;
	}
	ADD(S->integrity, 1);
	fprintf(stderr, "kalloc_fuzz: INTEGRITY: %s\n", buf);
	if (!S->first_failure[0])
		snprintf(S->first_failure, sizeof(S->first_failure), "%s", buf);
}

static int kio(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg);
}

/* --- touches, which may take SIGSEGV or SIGBUS */

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (tl_in_touch) {
		tl_in_touch = 0;
		siglongjmp(tl_jb, sig);
	}
	/*
	 * A fault outside a touch is the fuzzer's own bug, or the kernel's:
	 * say where and in which op, then die of it.
	 */
	{
		char msg[256];
		int n = snprintf(msg, sizeof(msg),
				 "kalloc_fuzz: signal %d (code %d) at %p outside a touch, in op %s\n",
				 sig, si ? si->si_code : 0, si ? si->si_addr : NULL,
				 tl_kind >= 0 && tl_kind < NKINDS ? kind_name[tl_kind] : "none");

		if (n > 0 && write(2, msg, (size_t)n) < 0)
			n = 0;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Touch @len bytes at @p: mode 0 reads, 1 writes a byte per page, 2 fills,
 * 3 reads and writes.  Returns 0, or the signal that stopped it.
 */
static int touch(char *p, size_t len, int mode, unsigned char v)
{
	volatile char *q = p;
	unsigned long sum = 0;
	int sig;

	sig = sigsetjmp(tl_jb, 1);
	if (sig) {
		if (sig == SIGSEGV)
			ADD(S->sigsegv, 1);
		else
			ADD(S->sigbus, 1);
		return sig;
	}
	tl_in_touch = 1;
	for (size_t off = 0; off < len; off += PAGE) {
		switch (mode) {
		case 0:
			sum += q[off];
			break;
		case 1:
			q[off] = v;
			break;
		case 2:
			for (size_t i = 0; i < PAGE && off + i < len; i += 64)
				q[off + i] = v;
			break;
		default:
			q[off + (v & 0xff)] += 1;
			sum += q[off];
			break;
		}
	}
	tl_in_touch = 0;
	(void)sum;
	return 0;
}

/* --- tables */

static int pick_fd(struct thr *t)
{
	int n = 0, cand[MAXFD];

	for (int i = 0; i < MAXFD; i++)
		if (P.fds[i] >= 0)
			cand[n++] = P.fds[i];
	return n ? cand[below(t, n)] : -1;
}

static struct reg *pick_reg(struct thr *t)
{
	int n = 0, cand[MAXREG];

	for (int i = 0; i < MAXREG; i++)
		if (P.regs[i].used)
			cand[n++] = i;
	return n ? &P.regs[cand[below(t, n)]] : NULL;
}

static struct map *pick_map(struct thr *t)
{
	int n = 0, cand[MAXMAP];

	for (int i = 0; i < MAXMAP; i++)
		if (P.maps[i].used)
			cand[n++] = i;
	return n ? &P.maps[cand[below(t, n)]] : NULL;
}

static struct reg *free_reg(void)
{
	for (int i = 0; i < MAXREG; i++)
		if (!P.regs[i].used)
			return &P.regs[i];
	return NULL;
}

static struct map *free_map(void)
{
	for (int i = 0; i < MAXMAP; i++)
		if (!P.maps[i].used)
			return &P.maps[i];
	return NULL;
}

/* A page-aligned sub-range [*off, *off + *len) of @len0 bytes. */
static void subrange(struct thr *t, size_t len0, size_t *off, size_t *len)
{
	size_t pages = len0 / PAGE;
	size_t first = below(t, pages);

	switch (below(t, 4)) {
	case 0:
		*off = 0;
		*len = len0;
		return;
	case 1:
		*off = 0;
		break;
	case 2:
		first = pages - 1 - below(t, pages);
		*off = first * PAGE;
		*len = len0 - *off;
		return;
	default:
		*off = first * PAGE;
		break;
	}
	*len = (1 + below(t, pages - *off / PAGE)) * PAGE;
}

/* --- the ioctls */

/*
 * Where an argument struct goes: at the start of a mapped page, or so
 * that it ends at the PROT_NONE page that follows (a larger argsz then
 * reaches unmapped memory), or a bad pointer.
 */
static void *arg_place(struct thr *t, size_t size, int *bad)
{
	switch (below(t, 50)) {
	case 0:
		*bad = 1;
		return NULL;
	case 1:
		*bad = 1;
		return (void *)1;
	case 2:
		*bad = 1;
		return (void *)0xffffffff81000000UL;	/* the kernel's */
	case 3:
		*bad = 1;
		return t->argbuf + PAGE;		/* PROT_NONE */
	case 4:
	case 5:
		return t->argbuf + PAGE - size;	/* ends at the guard */
	case 6:
		return t->argbuf + 1 + below(t, 7);	/* misaligned */
	default:
		return t->argbuf;
	}
}

/*
 * Write @size bytes of @src at @dst (which may be bad), argsz random and
 * the tail past the struct zero or not.  Returns the place, or NULL if it
 * cannot be written (bad pointers are still passed).
 */
static void *arg_build(struct thr *t, void *src, size_t size, int *bad)
{
	void *dst;
	uint32_t *argsz = src;

	if (chance(t, 8)) {
		*bad = 1;
		switch (below(t, 6)) {
		case 0: *argsz = 0; break;
		case 1: *argsz = 1; break;
		case 2: *argsz = size - 1 - below(t, size - 1); break;
		case 3: *argsz = size + 1 + below(t, 64); break;
		case 4: *argsz = PICK(t, edge32); break;
		default: *argsz = (uint32_t)rnd(t); break;
		}
	} else if (chance(t, 5)) {
		*argsz = size + 8 * (1 + below(t, 8));	/* newer, zero tail */
	} else {
		*argsz = size;
	}
	dst = arg_place(t, size, bad);
	if ((uintptr_t)dst < PAGE || (char *)dst == t->argbuf + PAGE ||
	    (uintptr_t)dst >= 0xffff800000000000UL)
		return dst;
	memset(t->argbuf, 0, PAGE);
	if ((char *)dst + size <= t->argbuf + PAGE)
		memcpy(dst, src, size);
	if (*argsz > size && chance(t, 30) &&
	    (char *)dst + size < t->argbuf + PAGE) {
		((char *)dst)[size] = 1;	/* a non-zero tail */
		*bad = 1;
	}
	return dst;
}

static void arg_fetch(void *dst, const void *src, size_t size, struct thr *t)
{
	if ((const char *)src >= t->argbuf &&
	    (const char *)src + size <= t->argbuf + PAGE)
		memcpy(dst, src, size);
}

static void op_version(struct thr *t)
{
	struct kalloc_version v = { 0 };
	int bad = 0, fd = pick_fd(t);
	void *a;
	long r;

	if (chance(t, 20)) {
		v.reserved = edge_or_random32(t);
		v.abi = chance(t, 50) ? edge_or_random32(t) : 0;
		bad = v.reserved || v.abi;
	}
	a = arg_build(t, &v, sizeof(v), &bad);
	r = kio(fd, KALLOC_IOC_VERSION, a);
	rec(K_VERSION, r, errno, bad);
}

static void op_create(struct thr *t)
{
	struct kalloc_create c = { 0 };
	int bad = 0, fd;
	struct reg *g;
	void *a;
	long r;

	c.backing = chance(t, 50) ? KALLOC_BACKING_PAGES : KALLOC_BACKING_VMALLOC;
	c.order = c.backing == KALLOC_BACKING_PAGES ? below(t, P.max_order + 1) : 0;
	if (c.order > 4 && chance(t, 70))
		c.order = below(t, 5);
	/* sane sizes up to 1 MiB (or a block), rounded to blocks */
	c.size = (1 + below(t, 256)) * PAGE;
	if (c.backing == KALLOC_BACKING_PAGES) {
		unsigned long block = PAGE << c.order;

		c.size = ((c.size + block - 1) / block) * block;
		if (chance(t, 10))	/* big and sparse: only touches allocate */
			c.size = block << (10 + below(t, 10));
		if (c.size > (1ULL << 40))
			c.size = 1ULL << 40;
	}
	c.node = chance(t, 90) ? -1 : 0;
	if (chance(t, 25)) {
		bad = 1;
		switch (below(t, 9)) {
		case 0:
			c.size = edge_or_random64(t);
			/* a VMALLOC region is allocated now: never near RAM */
			if (c.backing == KALLOC_BACKING_VMALLOC &&
			    c.size > (2UL << 20) && c.size / PAGE <= 2 * P.ram_pages)
				c.size = 2 * P.ram_pages * PAGE + PAGE;
			break;
		case 1: c.backing = edge_or_random32(t); break;
		case 2: c.order = edge_or_random32(t); break;
		case 3: c.node = PICK(t, edge_node); break;
		case 4: c.flags = edge_or_random32(t) | 1; break;
		case 5: c.id = 1 + below(t, 100); break;
		case 6: c.offset = edge_or_random64(t) | 1; break;
		case 7: c.size += 1 + below(t, PAGE - 1); bad = 0; break;
		default:
			if (c.backing == KALLOC_BACKING_PAGES)
				c.size += PAGE;	/* not whole blocks */
			break;
		}
		/* never ask for a VMALLOC region near the size of RAM */
		if (c.backing == KALLOC_BACKING_VMALLOC &&
		    c.size > (4UL << 20) && c.size / PAGE <= 2 * P.ram_pages)
			c.size = 4UL << 20;
	}
	pthread_rwlock_wrlock(&P.lock);
	fd = pick_fd(t);
	g = free_reg();
	a = arg_build(t, &c, sizeof(c), &bad);
	r = kio(fd, KALLOC_IOC_CREATE, a);
	rec(K_CREATE, r, errno, bad);
	if (r == 0) {
		int in_buf = (char *)a >= t->argbuf &&
			     (char *)a + sizeof(c) <= t->argbuf + PAGE;

		arg_fetch(&c, a, sizeof(c), t);
		if (g && in_buf) {
			*g = (struct reg){ 1, fd, c.id, c.offset, (c.size + PAGE - 1) & ~(PAGE - 1),
					   c.backing, c.order };
		} else if (in_buf) {
			struct kalloc_destroy d = { sizeof(d), c.id };

			kio(fd, KALLOC_IOC_DESTROY, &d);
		}
	}
	pthread_rwlock_unlock(&P.lock);
}

/* id and fd of a known region or mapping, or garbage, for the id ioctls. */
static void pick_target(struct thr *t, int *fd, unsigned int *id,
			unsigned long long *size, int *bad)
{
	struct reg *g;
	struct map *m;

	*fd = pick_fd(t);
	*id = 0;
	*size = PAGE;
	pthread_rwlock_rdlock(&P.lock);
	if (chance(t, 50) && (g = pick_reg(t))) {
		*fd = g->fd;
		*id = g->id;
		*size = g->size;
	} else if ((m = pick_map(t))) {
		*fd = m->fd;
		*id = m->id;
		*size = m->rsize;
	}
	pthread_rwlock_unlock(&P.lock);
	if (chance(t, 10)) {
		*bad = 1;
		*id = chance(t, 50) ? edge_or_random32(t) : *id + 1 + below(t, 3);
	}
}

static void op_release(struct thr *t)
{
	struct kalloc_release rl = { 0 };
	unsigned long long size;
	int bad = 0, fd;
	void *a;
	long r;

	pick_target(t, &fd, &rl.id, &size, &bad);
	if (size > (64ULL << 20) && chance(t, 80)) {
		/* a big sparse region: release around the start */
		size = 64ULL << 20;
	}
	{
		size_t off, len;

		subrange(t, size, &off, &len);
		rl.offset = off;
		rl.length = len;
	}
	if (chance(t, 20)) {
		bad = 1;
		switch (below(t, 6)) {
		case 0: rl.offset = edge_or_random64(t); break;
		case 1: rl.length = edge_or_random64(t); break;
		case 2: rl.offset += 1 + below(t, PAGE - 1); break;
		case 3: rl.length = 0; break;
		case 4: rl.offset = size; break;
		default: rl.length = size + PAGE; break;
		}
	}
	a = arg_build(t, &rl, sizeof(rl), &bad);
	r = kio(fd, KALLOC_IOC_RELEASE, a);
	rec(K_RELEASE, r, errno, bad);
}

static void op_info(struct thr *t)
{
	struct kalloc_info in = { 0 };
	unsigned long long size;
	int bad = 0, fd;
	void *a;
	long r;

	pick_target(t, &fd, &in.id, &size, &bad);
	if (chance(t, 10)) {
		in.resident = edge_or_random64(t);	/* outputs are ignored */
	}
	a = arg_build(t, &in, sizeof(in), &bad);
	r = kio(fd, KALLOC_IOC_INFO, a);
	rec(K_INFO, r, errno, bad);
	if (r == 0 && a == t->argbuf) {
		arg_fetch(&in, a, sizeof(in), t);
		if (in.resident > in.size / PAGE) {
			failure("INFO id %u: resident %llu pages in %llu bytes",
				in.id, (unsigned long long)in.resident,
				(unsigned long long)in.size);
		}
	}
}

static void op_destroy(struct thr *t)
{
	struct kalloc_destroy d = { 0 };
	int bad = 0, fd;
	struct reg *g = NULL;
	void *a;
	long r;

	pthread_rwlock_wrlock(&P.lock);
	fd = pick_fd(t);
	if (chance(t, 85) && (g = pick_reg(t))) {
		fd = g->fd;
		d.id = g->id;
	} else {
		bad = 1;
		d.id = chance(t, 50) ? edge_or_random32(t) : below(t, 64);
	}
	a = arg_build(t, &d, sizeof(d), &bad);
	r = kio(fd, KALLOC_IOC_DESTROY, a);
	rec(K_DESTROY, r, errno, bad);
	/* gone, or not reachable at all: forget it either way */
	if (g && (r == 0 || errno == ENOENT || errno == EBADF))
		g->used = 0;
	pthread_rwlock_unlock(&P.lock);
}

static void op_badioctl(struct thr *t)
{
	unsigned long cmd;
	char *a;
	long r;
	int fd;

	switch (below(t, 5)) {
	case 0:	/* a kalloc number with the wrong direction or size */
		cmd = _IOC(below(t, 4), KALLOC_IOC_MAGIC, below(t, 6),
			   below(t, 1 << 14));
		break;
	case 1:	/* a number past the last */
		cmd = _IOWR(KALLOC_IOC_MAGIC, 5 + below(t, 250), struct kalloc_info);
		break;
	case 2:	/* another magic */
		cmd = _IOC(_IOC_READ | _IOC_WRITE, below(t, 256), below(t, 256),
			   below(t, 1 << 14));
		break;
	case 3:	/* the real ones, sized wrongly in cmd (argsz governs) */
		cmd = _IOC(_IOC_READ | _IOC_WRITE, KALLOC_IOC_MAGIC, below(t, 5),
			   below(t, 1 << 14));
		break;
	default:
		cmd = (uint32_t)rnd(t);
		/* never the tty or file ioctls a random fd could act on */
		if (_IOC_TYPE(cmd) != KALLOC_IOC_MAGIC)
			cmd = _IOC(_IOC_DIR(cmd), KALLOC_IOC_MAGIC, _IOC_NR(cmd),
				   _IOC_SIZE(cmd));
		break;
	}
	/* random bytes in the buffer: ids, sizes and flags at random */
	for (size_t i = 0; i < PAGE; i += 8)
		*(uint64_t *)(t->argbuf + i) = chance(t, 50) ? 0 : rnd(t);
	*(uint32_t *)t->argbuf = chance(t, 50) ? edge_or_random32(t)
					       : 8 * (1 + below(t, 32));
	switch (below(t, 8)) {
	case 0: a = NULL; break;
	case 1: a = t->argbuf + PAGE; break;
	case 2: a = t->argbuf + PAGE - 4; break;
	default: a = t->argbuf; break;
	}
	pthread_rwlock_rdlock(&P.lock);
	fd = pick_fd(t);
	r = ioctl(fd, cmd, a);
	pthread_rwlock_unlock(&P.lock);
	rec(K_BADIOCTL, r, errno, 1);
	/* a create that a random buffer got through: forget it by id */
	if (r == 0 && _IOC_TYPE(cmd) == KALLOC_IOC_MAGIC &&
	    _IOC_NR(cmd) == _IOC_NR(KALLOC_IOC_CREATE) && a == t->argbuf) {
		struct kalloc_destroy d = { sizeof(d),
			((struct kalloc_create *)t->argbuf)->id };

		kio(fd, KALLOC_IOC_DESTROY, &d);
	}
}

/* --- mappings */

static void op_mmap(struct thr *t)
{
	unsigned long long off = 0, size = PAGE, roff;
	int bad = 0, fd, prot, flags = MAP_SHARED;
	unsigned int id = 0;
	struct map *m;
	struct reg *g;
	size_t len;
	char *p;

	pthread_rwlock_wrlock(&P.lock);
	fd = pick_fd(t);
	g = pick_reg(t);
	if (g) {
		fd = g->fd;
		id = g->id;
		off = g->offset;
		size = g->size;
	} else {
		bad = 1;
	}
	/* a page-aligned start inside, a length to the end or less */
	roff = below(t, size / PAGE > MAP_MAX / PAGE ? MAP_MAX / PAGE : size / PAGE) * PAGE;
	len = (1 + below(t, MAP_MAX / PAGE)) * PAGE;
	if (len > size - roff && chance(t, 80))
		len = size - roff;
	if (len > MAP_MAX)
		len = MAP_MAX;
	if (len > size - roff)
		bad = 1;	/* past the end: allowed, SIGBUS there */
	prot = chance(t, 85) ? PROT_READ | PROT_WRITE : (int)below(t, 8);
	if (chance(t, 15)) {
		bad = 1;
		switch (below(t, 8)) {
		case 0: flags = MAP_PRIVATE; break;
		case 1: roff = size + PAGE * below(t, 4); break;
		case 2: off = edge_or_random64(t) & ~(PAGE - 1); roff = 0; break;
		case 3: len = (1UL << KALLOC_REGION_WINDOW_SHIFT) + PAGE; break;
		case 4: off = (unsigned long long)(id + 1) << KALLOC_REGION_WINDOW_SHIFT; break;
		case 5: off = 0; roff = 0; break;
		case 6: flags = MAP_SHARED | MAP_POPULATE; bad = 0; break;
		default: flags = MAP_SHARED | MAP_NORESERVE | MAP_LOCKED; break;
		}
	}
	p = mmap(NULL, len, prot, flags, fd, off + roff);
	rec(K_MMAP, p == MAP_FAILED ? -1 : 0, errno, bad);
	if (p != MAP_FAILED) {
		m = free_map();
		if (!m || len > MAP_MAX) {
			munmap(p, len);
		} else {
			*m = (struct map){ 1, p, len, fd, id, roff, size, 0, 0 };
			if (!g)
				m->rsize = roff + len;
		}
	}
	pthread_rwlock_unlock(&P.lock);
}

static void map_forget_range(struct map *m, size_t off, size_t len)
{
	if (off == 0 && len >= m->len) {
		m->used = 0;
	} else if (off == 0) {
		m->addr += len;
		m->roff += len;
		m->len -= len;
	} else if (off + len >= m->len) {
		m->len = off;
	} else {
		struct map *n = free_map();

		if (n) {
			*n = *m;
			n->addr = m->addr + off + len;
			n->roff = m->roff + off + len;
			n->len = m->len - off - len;
		} else {
			/* no room to track the tail: unmap it too */
			munmap(m->addr + off + len, m->len - off - len);
		}
		m->len = off;
	}
}

static void op_munmap(struct thr *t)
{
	struct map *m;
	size_t off, len;
	long r;

	pthread_rwlock_wrlock(&P.lock);
	m = pick_map(t);
	if (!m) {
		r = munmap((void *)(rnd(t) & 0x7ffffffff000UL & ~0xffffffffUL), 0);
		rec(K_MUNMAP, r, errno, 1);
	} else {
		subrange(t, m->len, &off, &len);
		r = munmap(m->addr + off, len);
		rec(K_MUNMAP, r, errno, 0);
		if (!r)
			map_forget_range(m, off, len);
	}
	pthread_rwlock_unlock(&P.lock);
}

static void op_mprotect(struct thr *t)
{
	static const int prots[] = {
		PROT_NONE, PROT_READ, PROT_WRITE, PROT_READ | PROT_WRITE,
		PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE | PROT_EXEC,
	};
	struct map *m;
	size_t off, len;
	int prot;
	long r;

	pthread_rwlock_wrlock(&P.lock);
	m = pick_map(t);
	if (m) {
		subrange(t, m->len, &off, &len);
		/* mostly back to read-write, so that touches keep faulting */
		prot = chance(t, 50) ? PROT_READ | PROT_WRITE : PICK(t, prots);
		if (chance(t, 5))
			prot |= PROT_GROWSDOWN;
		r = mprotect(m->addr + off, len, prot);
		rec(K_MPROTECT, r, errno, !!(prot & PROT_GROWSDOWN));
	}
	pthread_rwlock_unlock(&P.lock);
}

static void op_mremap(struct thr *t)
{
	struct map *m;
	size_t nlen;
	char *p, *dst;
	long r;

	pthread_rwlock_wrlock(&P.lock);
	m = pick_map(t);
	if (!m)
		goto out;
	switch (below(t, 5)) {
	case 0:	/* grow: refused */
		nlen = m->len + PAGE * (1 + below(t, 16));
		p = mremap(m->addr, m->len, nlen, chance(t, 50) ? MREMAP_MAYMOVE : 0);
		rec(K_MREMAP, p == MAP_FAILED ? -1 : 0, errno, 1);
		if (p != MAP_FAILED) {
			failure("mremap grew a kalloc mapping from %zu to %zu",
				m->len, nlen);
			m->addr = p;
			m->len = nlen;
		}
		break;
	case 1:	/* shrink in place */
		if (m->len <= PAGE)
			break;
		nlen = (1 + below(t, m->len / PAGE - 1)) * PAGE;
		p = mremap(m->addr, m->len, nlen, 0);
		rec(K_MREMAP, p == MAP_FAILED ? -1 : 0, errno, 0);
		if (p != MAP_FAILED)
			m->len = nlen;
		break;
	case 2:	/* move to a fixed place */
	case 3:
		dst = mmap(NULL, m->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (dst == MAP_FAILED)
			break;
		p = mremap(m->addr, m->len, m->len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		rec(K_MREMAP, p == MAP_FAILED ? -1 : 0, errno, 0);
		/*
		 * On failure the kernel may have unmapped dst already (mremap_to
		 * unmaps the destination before it checks the source); no other
		 * mmap can have taken it meanwhile, as all of them hold the lock.
		 */
		if (p != MAP_FAILED)
			m->addr = p;
		else
			munmap(dst, m->len);
		break;
	default:	/* DONTUNMAP: refused for a VM_DONTEXPAND mapping */
#ifdef MREMAP_DONTUNMAP
		p = mremap(m->addr, m->len, m->len,
			   MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
		r = p == MAP_FAILED ? -1 : 0;
		rec(K_MREMAP, r, errno, 1);
		if (p != MAP_FAILED) {
			/* allowed after all: the old one stays, track the new */
			struct map *n = free_map();

			if (n) {
				*n = *m;
				n->addr = p;
			} else {
				munmap(p, m->len);
			}
		}
#endif
		break;
	}
out:
	pthread_rwlock_unlock(&P.lock);
}

static void op_madvise(struct thr *t)
{
	static const int advs[] = {
		MADV_DONTNEED, MADV_DONTNEED, MADV_DONTFORK, MADV_DOFORK,
		MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_REMOVE, MADV_FREE,
		MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE,
		MADV_WILLNEED, MADV_DONTDUMP, MADV_DODUMP, MADV_HUGEPAGE,
		MADV_NOHUGEPAGE, MADV_MERGEABLE, MADV_UNMERGEABLE,
		MADV_SEQUENTIAL, MADV_RANDOM, MADV_NORMAL, MADV_COLLAPSE, 99,
	};
	struct map *m;
	size_t off, len;
	int adv;
	long r;

	adv = PICK(t, advs);
	/* the fork flags change the table: the whole mapping, write lock */
	if (adv == MADV_DONTFORK || adv == MADV_DOFORK || adv == MADV_KEEPONFORK ||
	    adv == MADV_WIPEONFORK) {
		pthread_rwlock_wrlock(&P.lock);
		m = pick_map(t);
		if (m) {
			r = madvise(m->addr, m->len, adv);
			rec(K_MADVISE, r, errno, adv == MADV_WIPEONFORK);
			if (!r && adv == MADV_DONTFORK)
				m->dontfork = 1;
			if (!r && adv == MADV_DOFORK)
				m->dontfork = 0;
			if (!r && adv == MADV_KEEPONFORK)
				m->keep = 1;
			if (!r && adv == MADV_WIPEONFORK)
				m->keep = 0;
		}
		pthread_rwlock_unlock(&P.lock);
		return;
	}
	pthread_rwlock_rdlock(&P.lock);
	m = pick_map(t);
	if (m) {
		subrange(t, m->len, &off, &len);
		r = madvise(m->addr + off, len, adv);
		rec(K_MADVISE, r, errno, adv == 99);
	}
	pthread_rwlock_unlock(&P.lock);
}

static void op_touch(struct thr *t)
{
	struct map *m;
	size_t off, len;

	pthread_rwlock_rdlock(&P.lock);
	m = pick_map(t);
	if (m) {
		off = below(t, m->len / PAGE) * PAGE;
		len = (1 + below(t, TOUCH_MAX)) * PAGE;
		if (len > m->len - off)
			len = m->len - off;
		rec(K_TOUCH, -touch(m->addr + off, len, below(t, 4), rnd(t)), 0, 0);
	}
	pthread_rwlock_unlock(&P.lock);
}

/* --- files */

static void op_open(struct thr *t)
{
	int fd, slot = -1, bad = 0;
	int flags = O_RDWR | O_CLOEXEC;

	if (chance(t, 10)) {
		flags = O_RDONLY | O_CLOEXEC;	/* shared writable maps: EACCES */
		bad = 1;
	}
	pthread_rwlock_wrlock(&P.lock);
	for (int i = 0; i < MAXFD; i++)
		if (P.fds[i] < 0)
			slot = i;
	fd = open(KALLOC_DEVICE, flags);
	rec(K_OPEN, fd, errno, bad);
	if (fd >= 0) {
		if (slot < 0) {
			slot = below(t, MAXFD);
			close(P.fds[slot]);	/* close the old one while mapped */
		}
		P.fds[slot] = fd;
	}
	pthread_rwlock_unlock(&P.lock);
}

static void op_close(struct thr *t)
{
	int slot, n = 0;
	long r;

	pthread_rwlock_wrlock(&P.lock);
	for (int i = 0; i < MAXFD; i++)
		n += P.fds[i] >= 0;
	slot = below(t, MAXFD);
	if (n > 1 && P.fds[slot] >= 0) {
		/* mappings stay; regions of this fd can no longer be named */
		r = close(P.fds[slot]);
		rec(K_CLOSE, r, errno, 0);
		for (int i = 0; i < MAXREG; i++)
			if (P.regs[i].used && P.regs[i].fd == P.fds[slot])
				P.regs[i].used = 0;
		P.fds[slot] = -1;
	}
	pthread_rwlock_unlock(&P.lock);
}

/* --- the kernel reaching the mappings */

static void op_sysio(struct thr *t)
{
	struct map *m;
	size_t off, len;
	char buf[PAGE];
	long r = 0;
	int bad = 0;

	pthread_rwlock_rdlock(&P.lock);
	m = pick_map(t);
	if (!m)
		goto out;
	off = below(t, m->len / PAGE) * PAGE;
	len = (1 + below(t, 8)) * PAGE;
	if (len > m->len - off)
		len = m->len - off;
	switch (below(t, 10)) {
	case 0: {	/* read(2) into it: the kernel faults it in */
		int z = open("/dev/zero", O_RDONLY | O_CLOEXEC);

		r = read(z, m->addr + off, len);
		close(z);
		break;
	}
	case 1:	/* write(2) from it */
		r = write(t->pipefd[1], m->addr + off, len < PAGE ? len : PAGE);
		if (r > 0 && read(t->pipefd[0], buf, r) < 0)
			r = -1;
		break;
	case 2: {	/* vmsplice its pages into a pipe, release, read */
		struct iovec iov = { m->addr + off, PAGE };
		struct kalloc_release rl = { sizeof(rl), m->id, m->roff + off, PAGE };

		r = vmsplice(t->pipefd[1], &iov, 1, SPLICE_F_NONBLOCK);
		kio(m->fd, KALLOC_IOC_RELEASE, &rl);
		if (r > 0 && read(t->pipefd[0], buf, r) < 0)
			r = -1;
		break;
	}
	case 3: {	/* process_vm_writev/readv on itself: GUP */
		struct iovec local = { buf, len < PAGE ? len : PAGE };
		struct iovec remote = { m->addr + off, local.iov_len };

		memset(buf, (int)rnd(t), sizeof(buf));
		r = chance(t, 50) ? process_vm_writev(getpid(), &local, 1, &remote, 1, 0)
				  : process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
		break;
	}
	case 4:	/* mlock, populating it */
		r = chance(t, 50) ? mlock(m->addr + off, len)
				  : syscall(SYS_mlock2, m->addr + off, len, MLOCK_ONFAULT);
		if (!r)
			munlock(m->addr + off, len);
		break;
	case 5: {	/* mbind: the pages cannot move */
		unsigned long mask = 1;

		r = syscall(SYS_mbind, m->addr + off, len, MPOL_BIND_, &mask, 64,
			    chance(t, 50) ? MPOL_MF_MOVE_ | MPOL_MF_STRICT_ : 0);
		break;
	}
	case 6: {	/* move_pages: where, and move */
		void *pages[8];
		int status[8], nodes[8];
		unsigned long n = len / PAGE;

		for (unsigned long i = 0; i < n; i++) {
			pages[i] = m->addr + off + i * PAGE;
			nodes[i] = chance(t, 90) ? 0 : PICK(t, edge_node);
		}
		r = syscall(SYS_move_pages, 0, n, pages,
			    chance(t, 50) ? nodes : NULL, status, MPOL_MF_MOVE_);
		break;
	}
	case 7:	/* msync and mincore */
		r = msync(m->addr + off, len, chance(t, 50) ? MS_SYNC : MS_INVALIDATE);
		if (!r) {
			unsigned char vec[8];

			r = mincore(m->addr + off, len, vec);
		}
		break;
	default: {	/* the mm's walkers */
		static const char *const files[] = {
			"/proc/self/smaps", "/proc/self/numa_maps",
			"/proc/self/pagemap", "/proc/self/smaps_rollup",
		};
		const char *f = PICK(t, files);
		int fd = open(f, O_RDONLY | O_CLOEXEC);

		r = fd;
		if (fd >= 0) {
			if (!strcmp(f, "/proc/self/pagemap"))
				r = pread(fd, buf, 8 * (len / PAGE),
					  ((uintptr_t)m->addr + off) / PAGE * 8);
			else
				while ((r = read(fd, buf, sizeof(buf))) > 0)
					;
			close(fd);
		}
		bad = 0;
		break;
	}
	}
	rec(K_SYSIO, r < 0 ? -1 : 0, errno, bad);
out:
	pthread_rwlock_unlock(&P.lock);
}

static void op_proc(struct thr *t)
{
	char buf[PAGE];
	int fd = open(KALLOC_PROC, O_RDONLY | O_CLOEXEC);
	long r = fd;

	(void)t;
	if (fd >= 0) {
		while ((r = read(fd, buf, sizeof(buf))) > 0)
			;
		close(fd);
	}
	rec(K_PROC, r, errno, 0);
}

/* --- RELEASE racing touches of the same range from another thread */

struct race {
	char *addr;
	size_t len;
	volatile int stop;
	unsigned char v;
};

static void *race_toucher(void *arg)
{
	struct race *rc = arg;

	while (!rc->stop)
		touch(rc->addr, rc->len, 3, rc->v++);
	return NULL;
}

static void op_race(struct thr *t)
{
	struct kalloc_release rl = { .argsz = sizeof(rl) };
	struct race rc = { 0 };
	pthread_t tid;
	struct map *m;
	size_t off, len;
	long r = 0;

	pthread_rwlock_rdlock(&P.lock);
	m = pick_map(t);
	if (!m)
		goto out;
	off = below(t, m->len / PAGE) * PAGE;
	len = (1 + below(t, 32)) * PAGE;
	if (len > m->len - off)
		len = m->len - off;
	rc.addr = m->addr + off;
	rc.len = len;
	rl.id = m->id;
	rl.offset = m->roff + off;
	rl.length = len;
	if (pthread_create(&tid, NULL, race_toucher, &rc))
		goto out;
	for (int i = 0; i < 20; i++) {
		r = kio(m->fd, KALLOC_IOC_RELEASE, &rl);
		rec(K_RACE, r, errno, 0);
	}
	rc.stop = 1;
	pthread_join(tid, NULL);
out:
	pthread_rwlock_unlock(&P.lock);
}

/* --- forks */

/* In a child: the table as the child has it. */
static void child_fixup(void)
{
	pthread_rwlock_init(&P.lock, NULL);
	for (int i = 0; i < MAXMAP; i++)
		if (P.maps[i].used && P.maps[i].dontfork)
			P.maps[i].used = 0;
	alarm(10);	/* never outlive the run */
}

/* Fault on and on: fresh pages, releases, a touch that covers them. */
static void child_fault_loop(struct thr *t, long rounds)
{
	for (long i = 0; rounds < 0 || i < rounds; i++) {
		struct map *m = pick_map(t);
		size_t off, len;

		if (!m)
			return;
		off = below(t, m->len / PAGE) * PAGE;
		len = (1 + below(t, 16)) * PAGE;
		if (len > m->len - off)
			len = m->len - off;
		if (chance(t, 30)) {
			struct kalloc_release rl = { sizeof(rl), m->id,
						     m->roff + off, len };

			kio(m->fd, KALLOC_IOC_RELEASE, &rl);
		}
		if (chance(t, 5))
			madvise(m->addr + off, len, MADV_DONTNEED);
		touch(m->addr + off, len, 1 + below(t, 3), rnd(t));
	}
}

static void *child_toucher(void *arg)
{
	struct thr *t = arg;

	child_fault_loop(t, -1);
	return NULL;
}

static void child_wait(pid_t pid, int killed)
{
	int status;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status)) {
		if (WEXITSTATUS(status) == 0)
			ADD(S->child_exit0, 1);
		else
			ADD(S->child_exit_other, 1);
	} else if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);

		ADD(S->child_sig[sig < 65 ? sig : 0], 1);
		if (sig == SIGKILL && killed)
			ADD(S->killed_mid_fault, 1);
	}
}

/* Fork; SIGKILL the child at a random moment while it faults. */
static void op_fork_kill(struct thr *t)
{
	uint64_t cseed = rnd(t);
	pid_t pid;

	pthread_rwlock_rdlock(&P.lock);
	pid = fork();
	if (pid == 0) {
		t->rng = cseed;
		child_fixup();
		child_fault_loop(t, -1);
		_exit(0);
	}
	pthread_rwlock_unlock(&P.lock);
	rec(K_FORK_KILL, pid, errno, 0);
	if (pid < 0)
		return;
	ADD(S->forks, 1);
	usleep(below(t, 20000));
	kill(pid, SIGKILL);
	child_wait(pid, 1);
}

/*
 * Fork; the child starts a thread that faults on and on, does a little,
 * and exits (exit_group kills the faulting thread), sometimes after
 * closing its fds while mapped, sometimes forking a grandchild first.
 */
static void op_fork_exit(struct thr *t)
{
	uint64_t cseed = rnd(t);
	pid_t pid;

	pthread_rwlock_rdlock(&P.lock);
	pid = fork();
	if (pid == 0) {
		struct thr t2 = *t;
		pthread_t tid;

		t->rng = cseed;
		t2.rng = cseed ^ 0x5555;
		child_fixup();
		if (pthread_create(&tid, NULL, child_toucher, &t2))
			_exit(3);
		child_fault_loop(t, below(t, 50));
		if (chance(t, 30))
			for (int i = 0; i < MAXFD; i++)
				if (P.fds[i] >= 0)
					close(P.fds[i]);
		if (chance(t, 20)) {
			pid_t g = fork();

			if (g == 0) {
				child_fault_loop(t, below(t, 20));
				_exit(0);
			}
			if (g > 0)
				waitpid(g, NULL, 0);
		}
		_exit(0);
	}
	pthread_rwlock_unlock(&P.lock);
	rec(K_FORK_EXIT, pid, errno, 0);
	if (pid < 0)
		return;
	ADD(S->forks, 1);
	ADD(S->exited_mid_fault, 1);
	child_wait(pid, 0);
}

/* --- the integrity check: zero, private, both ways */

static unsigned char pat(uint64_t s, size_t i)
{
	uint64_t x = s + i * 0x9e3779b97f4a7c15ULL;

	return (unsigned char)(splitmix(&x) | 1);
}

/* -1 if all of [off, off+len) holds what it should, else the bad index. */
static long check(const unsigned char *p, size_t off, size_t len, uint64_t s,
		  int zero)
{
	for (size_t i = off; i < off + len; i++)
		if (p[i] != (zero ? 0 : pat(s, i)))
			return i;
	return -1;
}

static void op_verify(struct thr *t)
{
	struct kalloc_create c = { .argsz = sizeof(c) };
	int fd, keep, pipe_go[2] = { -1, -1 };
	size_t size, roff, rlen;
	uint64_t s = rnd(t);
	unsigned char *p;
	long bad;
	pid_t pid;
	int status;

	fd = open(KALLOC_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	/*
	 * Out of the way of the low fd numbers that other threads still name
	 * in ioctls after closing them (a region id in a fresh file is 1, so
	 * a stale number reused here would release this region's pages).
	 */
	{
		int high = fcntl(fd, F_DUPFD_CLOEXEC, 900);

		close(fd);
		fd = high;
		if (fd < 0)
			return;
	}
	c.backing = chance(t, 50) ? KALLOC_BACKING_PAGES : KALLOC_BACKING_VMALLOC;
	c.order = c.backing == KALLOC_BACKING_PAGES ? below(t, 4) : 0;
	c.node = -1;
	size = 64 * PAGE;
	c.size = size;
	if (kio(fd, KALLOC_IOC_CREATE, &c)) {
		rec(K_VERIFY, -1, errno, 0);
		close(fd);
		return;
	}
	/*
	 * Under the table lock: a failed MREMAP_FIXED may already have
	 * unmapped its destination, which op_mremap then unmaps again under
	 * the write lock; an mmap between the two could land there and lose
	 * its mapping (a 6.1 soak lost a worker to SIGSEGV so, once).
	 */
	pthread_rwlock_rdlock(&P.lock);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, c.offset);
	pthread_rwlock_unlock(&P.lock);
	if (p == MAP_FAILED) {
		rec(K_VERIFY, -1, errno, 0);
		close(fd);
		return;
	}
	/* SIGBUS from a limit another thread set is not a failure */
	if (touch((char *)p, size, 0, 0))
		goto out;
	bad = check(p, 0, size, s, 1);
	if (bad >= 0) {
		failure("fresh region (backing %u order %u) byte %ld is %#x, not 0",
			c.backing, c.order, bad, p[bad]);
		goto out;
	}
	for (size_t i = 0; i < size; i++)
		p[i] = pat(s, i);
	/* release a range: zero there, intact elsewhere */
	roff = below(t, 64) * PAGE;
	rlen = (1 + below(t, 64 - roff / PAGE)) * PAGE;
	{
		struct kalloc_release rl = { sizeof(rl), c.id, roff, rlen };

		if (kio(fd, KALLOC_IOC_RELEASE, &rl))
			failure("RELEASE of a valid range: %s", strerror(errno));
	}
	if (touch((char *)p, size, 0, 0))
		goto out;
	if ((bad = check(p, roff, rlen, s, 1)) >= 0 ||
	    (bad = check(p, 0, roff, s, 0)) >= 0 ||
	    (bad = check(p, roff + rlen, size - roff - rlen, s, 0)) >= 0) {
		failure("after RELEASE [%zu,+%zu) byte %ld is %#x", roff, rlen,
			bad, p[bad]);
		goto out;
	}
	for (size_t i = roff; i < roff + rlen; i++)
		p[i] = pat(s, i);
	madvise(p, size, MADV_DONTNEED);
	if ((bad = check(p, 0, size, s, 0)) >= 0) {
		failure("after MADV_DONTNEED byte %ld is %#x", bad, p[bad]);
		goto out;
	}

	/* fork: each side's writes and releases stay its own */
	keep = chance(t, 25);
	if (keep && madvise(p, size, MADV_KEEPONFORK))
		keep = 0;
	if (pipe2(pipe_go, O_CLOEXEC))
		goto out;
	pid = fork();
	if (pid == 0) {
		char go;

		alarm(60);
		/* a SIGBUS here is documented (see below): die of it quietly */
		signal(SIGBUS, SIG_DFL);
		signal(SIGSEGV, SIG_DFL);
		close(pipe_go[1]);
		if (check(p, 0, size, s, 0) >= 0)
			_exit(10);	/* the child's copy differs */
		/* the parent releases a range and writes: not seen here */
		if (read(pipe_go[0], &go, 1) != 1)
			_exit(11);
		if (check(p, 0, size, s, 0) >= 0)
			_exit(12);
		memset(p, 0xee, size);
		{
			struct kalloc_release rl = { sizeof(rl), c.id, 0, PAGE };

			if (kio(fd, KALLOC_IOC_RELEASE, &rl))
				_exit(13);
		}
		if (p[0] != 0 || p[PAGE] != 0xee)
			_exit(14);
		_exit(0);
	}
	close(pipe_go[0]);
	if (pid < 0) {
		close(pipe_go[1]);
		goto out;
	}
	{
		struct kalloc_release rl = { sizeof(rl), c.id, size - PAGE, PAGE };

		kio(fd, KALLOC_IOC_RELEASE, &rl);
		p[size - 2 * PAGE] ^= 0xff;
		/* a child that died early (its status says why) broke the pipe */
		if (write(pipe_go[1], "g", 1) != 1)
			ADD(S->verify_child_gone, 1);
		close(pipe_go[1]);
	}
	waitpid(pid, &status, 0);
	p[size - 2 * PAGE] ^= 0xff;
	if (WIFSIGNALED(status)) {
		/*
		 * SIGBUS: its copy could not be made, or a fresh page could not
		 * be had (a limit another thread set): documented.  SIGALRM or
		 * SIGKILL: a starved guest or the OOM killer.  Only the exit
		 * codes of its checks speak of integrity.
		 */
		goto out;
	}
	if (touch((char *)p, size, 0, 0))
		goto out;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		failure("%sfork child (backing %u order %u) saw the parent's "
			"memory: status %#x", keep ? "MADV_KEEPONFORK: " : "",
			c.backing, c.order, status);
		goto out;
	}
	if ((bad = check(p, 0, size - PAGE, s, 0)) >= 0 ||
	    (bad = check(p, size - PAGE, PAGE, s, 1)) >= 0) {
		failure("%safter the fork child wrote, the parent's byte %ld is "
			"%#x (backing %u order %u)", keep ? "MADV_KEEPONFORK: " : "",
			bad, p[bad], c.backing, c.order);
		goto out;
	}
	ADD(S->verify_ok, 1);
out:
	rec(K_VERIFY, 0, 0, 0);
	close(fd);	/* closed while mapped */
	munmap(p, size);
}

/* --- module parameters, changed under the others' feet */

static const char *const param_names[] = {
	"max_pages", "max_region_pages", "fault_around",
};
static char param_saved[3][64];

static int param_rw(const char *name, char *buf, size_t len, int write_it)
{
	char path[128];
	int fd, r;

	snprintf(path, sizeof(path), "/sys/module/kalloc/parameters/%s", name);
	fd = open(path, write_it ? O_WRONLY : O_RDONLY);
	if (fd < 0)
		return -1;
	r = write_it ? write(fd, buf, strlen(buf)) : read(fd, buf, len - 1);
	if (!write_it && r >= 0)
		buf[r] = 0;
	close(fd);
	return r < 0 ? -1 : 0;
}

static void op_param(struct thr *t)
{
	static const long fa[] = { 1, 2, 4, 8, 16, 32, 0, 3, 33, 64, -1 };
	char buf[64];
	int which = below(t, 3);
	long v;

	switch (which) {
	case 0:
		v = chance(t, 50) ? 0 : (long)(O.budget_pages / 2 + below(t, O.budget_pages));
		break;
	case 1:
		v = chance(t, 60) ? 0 : (long)PICK(t, edge32);
		break;
	default:
		v = PICK(t, fa);
		break;
	}
	snprintf(buf, sizeof(buf), "%ld", v);
	rec(K_PARAM, param_rw(param_names[which], buf, 0, 1), errno,
	    which == 2 && (v <= 0 || v > 32 || (v & (v - 1))));
}

/* --- the workers */

static long resident_total(void)
{
	char line[128], key[64];
	long v, sum = 0;
	FILE *f = fopen(KALLOC_PROC, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f) && line[0] != '\n')
		if (sscanf(line, "%63s %ld", key, &v) == 2 &&
		    (!strcmp(key, "resident_pages") || !strcmp(key, "resident_vmalloc")))
			sum += v;
	fclose(f);
	return sum;
}

/* Too much resident: release everything this process holds. */
static void shed(void)
{
	pthread_rwlock_wrlock(&P.lock);
	for (int i = 0; i < MAXREG; i++) {
		struct reg *g = &P.regs[i];
		struct kalloc_release rl = { sizeof(rl), g->id, 0, g->size };

		if (!g->used)
			continue;
		rec(K_SHED, kio(g->fd, KALLOC_IOC_RELEASE, &rl), errno, 0);
	}
	for (int i = 0; i < MAXMAP; i++) {
		struct map *m = &P.maps[i];

		/* mappings of destroyed regions hold their pages: drop them */
		if (m->used && (m->keep || (i & 1))) {
			munmap(m->addr, m->len);
			m->used = 0;
		}
	}
	for (int i = 0; i < MAXREG; i++)
		if (P.regs[i].used && (i & 1)) {
			struct kalloc_destroy d = { sizeof(d), P.regs[i].id };

			kio(P.regs[i].fd, KALLOC_IOC_DESTROY, &d);
			P.regs[i].used = 0;
		}
	pthread_rwlock_unlock(&P.lock);
}

static int cum_weight[NKINDS];

static time_t deadline;

static void *worker_thread(void *arg)
{
	struct thr *t = arg;
	struct timespec t0, t1;

	for (unsigned long i = 0; i < t->ops; i++) {
		int w = below(t, cum_weight[NKINDS - 1]), k = 0;

		if (__atomic_load_n(&S->stop, __ATOMIC_RELAXED))
			break;
		if ((i & 127) == 127) {
			long res = resident_total();

			if (res > (long)O.budget_pages)
				shed();
			if (deadline && time(NULL) >= deadline) {
				__atomic_store_n(&S->stop, 1, __ATOMIC_RELAXED);
				break;
			}
		}
		while (w >= cum_weight[k])
			k++;
		ADD(S->drawn, 1);
		if (O.params && t->index == 0 && P.index == 0 && chance(t, 1))
			k = K_PARAM;
		tl_kind = (int)k;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		switch (k) {
		case K_VERSION: op_version(t); break;
		case K_CREATE: op_create(t); break;
		case K_RELEASE: op_release(t); break;
		case K_INFO: op_info(t); break;
		case K_DESTROY: op_destroy(t); break;
		case K_BADIOCTL: op_badioctl(t); break;
		case K_MMAP: op_mmap(t); break;
		case K_MUNMAP: op_munmap(t); break;
		case K_MPROTECT: op_mprotect(t); break;
		case K_MREMAP: op_mremap(t); break;
		case K_MADVISE: op_madvise(t); break;
		case K_TOUCH: op_touch(t); break;
		case K_OPEN: op_open(t); break;
		case K_CLOSE: op_close(t); break;
		case K_SYSIO: op_sysio(t); break;
		case K_PROC: op_proc(t); break;
		case K_RACE: op_race(t); break;
		case K_FORK_KILL: op_fork_kill(t); break;
		case K_FORK_EXIT: op_fork_exit(t); break;
		case K_VERIFY: op_verify(t); break;
		case K_PARAM: op_param(t); break;
		default: break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ADD(S->k[k].ns, (t1.tv_sec - t0.tv_sec) * 1000000000UL +
			       t1.tv_nsec - t0.tv_nsec);
	}
	return NULL;
}

static int worker(int index, unsigned long ops)
{
	struct thr th[MAXTHREADS];
	struct sigaction sa = { 0 };
	int devnull = open("/dev/null", O_RDONLY);

	/* a random ioctl never reaches a terminal */
	if (devnull >= 0) {
		dup2(devnull, 0);
		close(devnull);
	}
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_rwlock_init(&P.lock, NULL);
	P.index = index;
	for (int i = 0; i < MAXFD; i++)
		P.fds[i] = -1;
	P.fds[0] = open(KALLOC_DEVICE, O_RDWR | O_CLOEXEC);
	if (P.fds[0] < 0) {
		perror(KALLOC_DEVICE);
		return 1;
	}
	{
		struct kalloc_version v = { .argsz = sizeof(v) };

		if (kio(P.fds[0], KALLOC_IOC_VERSION, &v)) {
			perror("KALLOC_IOC_VERSION");
			return 1;
		}
		P.max_order = v.max_order;
	}
	P.ram_pages = sysconf(_SC_PHYS_PAGES);
	for (int i = 0; i < O.threads; i++) {
		uint64_t s = O.seed * 1000003ULL + index * 1009ULL + i;

		th[i].index = i;
		th[i].rng = s;
		splitmix(&th[i].rng);
		th[i].ops = ops / O.threads + (i < (int)(ops % O.threads));
		th[i].argbuf = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (th[i].argbuf == MAP_FAILED ||
		    mprotect(th[i].argbuf + PAGE, PAGE, PROT_NONE) ||
		    pipe2(th[i].pipefd, O_CLOEXEC | O_NONBLOCK)) {
			perror("thread setup");
			return 1;
		}
		if (pthread_create(&th[i].tid, NULL, worker_thread, &th[i])) {
			perror("pthread_create");
			return 1;
		}
	}
	for (int i = 0; i < O.threads; i++)
		pthread_join(th[i].tid, NULL);
	/* exit with regions and mappings left: exit must free them all */
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kalloc_fuzz [--seed N] [--ops N] [--procs P] [--threads T]\n"
		"                   [--time S] [--budget-mb M] [--params] [--verbose]\n");
}

static void summary(double secs)
{
	unsigned long bad = 0, errs = 0;

	printf("kalloc_fuzz: seed %llu, %d procs x %d threads, %.1f s\n",
	       O.seed, O.procs, O.threads, secs);
	printf("%-15s %9s %9s %9s %9s  %s\n", "kind", "ops", "ok", "bad_in",
	       "thread_s", "errors by errno");
	for (int k = 0; k < NKINDS; k++) {
		struct kind_stats *ks = &S->k[k];
		char line[1024];
		int n = 0;

		if (!ks->n)
			continue;
		bad += ks->bad;
		for (int e = 0; e <= MAXERR; e++) {
			if (!ks->err[e])
				continue;
			errs += ks->err[e];
			n += snprintf(line + n, sizeof(line) - n, " %s=%lu",
				      e ? strerrorname_np(e) ? strerrorname_np(e) : "?" : k == K_TOUCH ? "signal" : "other",
				      ks->err[e]);
			if (n >= (int)sizeof(line))
				break;
		}
		line[n < (int)sizeof(line) ? n : (int)sizeof(line) - 1] = 0;
		printf("%-15s %9lu %9lu %9lu %9.1f %s\n", kind_name[k], ks->n,
		       ks->ok, ks->bad, ks->ns / 1e9, n ? line : "");
	}
	printf("ops %lu\n", S->drawn);
	printf("calls %lu\n", S->ops);
	printf("errors %lu\n", errs);
	printf("bad_inputs %lu\n", bad);
	printf("signals_caught SIGSEGV=%lu SIGBUS=%lu\n", S->sigsegv, S->sigbus);
	printf("forks %lu\n", S->forks);
	printf("children_killed_mid_fault %lu\n", S->killed_mid_fault);
	printf("children_exited_mid_fault %lu\n", S->exited_mid_fault);
	printf("children_exit0 %lu exit_other %lu", S->child_exit0, S->child_exit_other);
	for (int s = 0; s < 65; s++)
		if (S->child_sig[s])
			printf(" %s=%lu", s ? sigabbrev_np(s) ? sigabbrev_np(s) : "?" : "?",
			       S->child_sig[s]);
	printf("\n");
	printf("verify_ok %lu\n", S->verify_ok);
	printf("verify_child_gone %lu\n", S->verify_child_gone);
	printf("keeponfork_shared %lu\n", S->keeponfork_shared);
	printf("integrity_failures %lu\n", S->integrity);
	if (S->first_failure[0])
		printf("first_failure %s\n", S->first_failure);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "ops", required_argument, NULL, 'n' },
		{ "procs", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "time", required_argument, NULL, 'T' },
		{ "budget-mb", required_argument, NULL, 'b' },
		{ "params", no_argument, NULL, 'P' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct timespec t0, t1;
	pid_t pids[64];
	int c, status = 0, died = 0;

	while ((c = getopt_long(argc, argv, "s:n:p:t:T:b:Pvh", lo, NULL)) != -1) {
		switch (c) {
		case 's': O.seed = strtoull(optarg, NULL, 0); break;
		case 'n': O.ops = strtoull(optarg, NULL, 0); break;
		case 'p': O.procs = atoi(optarg); break;
		case 't': O.threads = atoi(optarg); break;
		case 'T': O.time_s = atoi(optarg); break;
		case 'b': O.budget_pages = strtoul(optarg, NULL, 0) << 8; break;
		case 'P': O.params = 1; break;
		case 'v': O.verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || O.procs < 1 || O.procs > 64 || O.threads < 1 ||
	    O.threads > MAXTHREADS || !O.ops) {
		usage(stderr);
		return 2;
	}
	if (!O.budget_pages)
		O.budget_pages = sysconf(_SC_PHYS_PAGES) / 4;
	for (int k = 0, sum = 0; k < NKINDS; k++)
		cum_weight[k] = sum += kind_weight[k];
	S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (S == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	if (O.params)
		for (int i = 0; i < 3; i++)
			if (param_rw(param_names[i], param_saved[i],
				     sizeof(param_saved[i]), 0))
				O.params = 0;
	if (O.time_s)
		deadline = time(NULL) + O.time_s;
	setvbuf(stdout, NULL, _IOLBF, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < O.procs; i++) {
		unsigned long ops = O.ops / O.procs + (i < (int)(O.ops % O.procs));

		fflush(NULL);
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(worker(i, ops));
		if (pids[i] < 0) {
			perror("fork");
			return 1;
		}
	}
	for (int i = 0; i < O.procs; i++) {
		if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			fprintf(stderr, "kalloc_fuzz: worker %d ended with status %#x\n",
				i, status);
			died++;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (O.params)
		for (int i = 0; i < 3; i++)
			param_rw(param_names[i], param_saved[i], 0, 1);
	summary(t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	printf("workers_died %d\n", died);
	return died || S->integrity || S->keeponfork_shared ? 1 : 0;
}
