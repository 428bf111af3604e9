/* SPDX-License-Identifier: MIT */
/*
 * liballoc internals: the path of one byte.
 *
 *   malloc (alloc.c; the aligned family: alloc-aligned.c)
 *          -> size class (size_class.c) -> the thread's heap (thread.c
 *             gives a thread one from the registry, heap.c)
 *          -> a page of that class (page.c), a span of 64 KiB slices
 *             (segment.c)
 *          -> a 4 MiB segment from the region table (region.c), carved
 *             from a 64 MiB region; blocks past KA_LARGE_MAX have a
 *             region each (huge.c)
 *          -> the kernel (os.c: /dev/kalloc or anonymous memory)
 *   free   -> mask the pointer to its segment, which the segment map
 *             vouches for (segment-map.c), index the page (free.c)
 *          -> back on the page's free list; an empty page's span back to
 *             the segment when the heap next looks (page.c)
 *          -> after the decay, KALLOC_IOC_RELEASE (purge.c, os.c).
 *   thread exit (thread.c): the heap goes back, parked whole for the
 *          next thread (heap.c) or, a decay later or without a purge
 *          thread, its segments abandoned (abandon.c) for other threads
 *          and the purge thread.
 *
 * Around it: process start (init.c), every KALLOC_* variable and mallopt
 * (options.c), fork handlers (fork.c), statistics and their printing
 * (stats.c), glibc's names for it all (glibc.c), KALLOC_DEBUG's checks
 * (debug.c), NUMA placement (numa.c), malloc_trim and the purge thread
 * (purge.c), unshare and setns stopping it (namespace.c), the lock
 * (lock.c).
 *
 * Metadata never sits in front of a block: a segment's first slice holds
 * the segment header and one page descriptor per slice.
 */
#ifndef KA_INTERNAL_H
#define KA_INTERNAL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"

#define KA_LIKELY(x)	__builtin_expect(!!(x), 1)
#define KA_UNLIKELY(x)	__builtin_expect(!!(x), 0)
#define KA_HIDDEN	__attribute__((visibility("hidden")))
#define KA_NOINLINE	__attribute__((noinline))
#define KA_RELAXED	memory_order_relaxed

/* Geometry. */
#define KA_PAGE_SIZE		4096UL
#define KA_SLICE_SHIFT		16
#define KA_SLICE_SIZE		(1UL << KA_SLICE_SHIFT)		/* 64 KiB */
#define KA_SEGMENT_SHIFT	22
#define KA_SEGMENT_SIZE		(1UL << KA_SEGMENT_SHIFT)	/* 4 MiB */
#define KA_SEGMENT_MASK		(KA_SEGMENT_SIZE - 1)
#define KA_SLICES		(KA_SEGMENT_SIZE / KA_SLICE_SIZE)	/* 64 */
#define KA_REGION_SEGMENTS	16
#define KA_REGION_SIZE		(KA_REGION_SEGMENTS * KA_SEGMENT_SIZE)	/* 64 MiB */
#define KA_MAX_REGIONS		8192				/* 512 GiB */
#define KA_PMD_ORDER		9	/* a PMD maps 2^9 pages (x86-64, arm64 4K) */
#define KA_PMD_SIZE		(KA_PAGE_SIZE << KA_PMD_ORDER)	/* 2 MiB */

/* Size tiers (see size_class.c). */
#define KA_SMALL_MAX		8192UL		/* pages of one slice */
#define KA_MEDIUM_MAX		65536UL		/* pages of 8 slices */
#define KA_MEDIUM_SLICES	8
#define KA_LARGE_MAX		(2UL << 20)	/* one block per span */
#define KA_DIRECT_MAX		1024UL		/* heap->direct[] covers these */
#define KA_DIRECT_WORDS		(KA_DIRECT_MAX / 8)
#define KA_CLASSES		120	/* 8 up to 128 B, 8 per doubling to 2 MiB */
#define KA_FOREIGN_MAX		KA_SMALL_MAX	/* blocks a heap keeps of others' (foreign.c) */
#define KA_FOREIGN_CLASSES	56	/* classes up to KA_FOREIGN_MAX (size_class.c) */
#define KA_FOREIGN_BYTES	(512UL << 10)	/* and their bytes at most, per heap */
#define KA_FOREIGN_CAP0		8	/* blocks per class before any is reused */
#ifndef KA_FOREIGN_GC_FREES	/* the TSan build sets 8, so that its stress runs it */
#define KA_FOREIGN_GC_FREES	1024	/* remote frees between two looks at what is unused */
#endif
#define KA_MIN_BLOCK		16
#define KA_BLOCK_ALIGN		16	/* every class is a multiple (size_class.c) */

/*
 * The user address space at segment granularity: 47 bits on x86-64
 * (with 5-level paging mmap goes higher only when asked to), 48 on arm64
 * and others, where mmap starts just under 2^48 (48-bit VAs).
 */
#if defined(__x86_64__)
#define KA_VA_BITS		47
#else
#define KA_VA_BITS		48
#endif
#define KA_SEGMAP_BITS		(KA_VA_BITS - KA_SEGMENT_SHIFT)
#define KA_SEGMAP_SIZE		(1UL << KA_SEGMAP_BITS)

/* ---- size_class.c ---- */
extern const uint32_t ka_class_size[KA_CLASSES];

static inline unsigned ka_size_class(size_t size)
{
	if (size <= 128)
		return size <= 16 ? 0 : (unsigned)((size - 1) >> 4);
	unsigned k = 63 - (unsigned)__builtin_clzl(size - 1);	/* size in (2^k, 2^k+1] */
	return 8 + (k - 7) * 8 + (unsigned)(((size - 1) - (1UL << k)) >> (k - 3));
}

KA_HIDDEN unsigned ka_class_slices(unsigned cls);

/*
 * ---- locks: tiny, no allocation, resettable after fork ----
 * 0 free, 1 held, 2 held and maybe waited for: a waiter sleeps on a futex
 * (lock.c), as glibc's locks do, rather than yield: sched_yield() gives
 * the CPU only to threads of the caller's priority, so a real-time thread
 * waiting for an ordinary one on its CPU would spin until the kernel's
 * real-time throttling let the holder run (U. Drepper, "Futexes Are
 * Tricky", mutex 2).
 */
typedef struct { atomic_int v; } ka_lock_t;
KA_HIDDEN void ka_lock_slow(ka_lock_t *l);
KA_HIDDEN void ka_lock_wake(ka_lock_t *l);
/* futex(2) WAIT or WAKE on a 32-bit word of this process; errno kept. */
struct timespec;
KA_HIDDEN void ka_futex(void *word, int op, uint32_t val, const struct timespec *ts);

/*
 * The thread inside fork() holds every allocator lock from liballoc's
 * prepare handler to its parent or child handler (fork.c), and other
 * programs' handlers may run in between and allocate: those registered
 * before liballoc's run after its prepare and before its parent and child
 * handlers.  That thread then has the allocator to itself, so its lock
 * and unlock calls pass; ka_fork_holder is its ka_tls_fork_id, 0 outside
 * that window.
 */
extern KA_HIDDEN _Atomic uintptr_t ka_fork_holder;
extern __thread char ka_tls_fork_id __attribute__((tls_model("initial-exec")));

static inline bool ka_in_fork_window(void)
{
	uintptr_t holder = atomic_load_explicit(&ka_fork_holder, KA_RELAXED);

	return KA_UNLIKELY(holder != 0) && holder == (uintptr_t)&ka_tls_fork_id;
}

static inline void ka_lock(ka_lock_t *l)
{
	int unlocked = 0;

	if (ka_in_fork_window())
		return;
	if (KA_UNLIKELY(!atomic_compare_exchange_strong_explicit(&l->v, &unlocked, 1,
								 memory_order_acquire,
								 KA_RELAXED)))
		ka_lock_slow(l);
}
/* Take it if it is free; true if taken (or passed, inside fork()). */
static inline bool ka_trylock(ka_lock_t *l)
{
	int unlocked = 0;

	if (ka_in_fork_window())
		return true;
	return atomic_compare_exchange_strong_explicit(&l->v, &unlocked, 1, memory_order_acquire,
						       KA_RELAXED);
}
static inline void ka_unlock(ka_lock_t *l)
{
	if (ka_in_fork_window())
		return;
	if (KA_UNLIKELY(atomic_exchange_explicit(&l->v, 0, memory_order_release) == 2))
		ka_lock_wake(l);
}
/* Around fork (fork.c): lock takes l, !lock lets it go. */
static inline void ka_lock_fork(ka_lock_t *l, bool lock)
{
	if (lock)
		ka_lock(l);
	else
		ka_unlock(l);
}

/* ---- blocks, pages, segments, heaps ---- */

/* A free block: the link and a key that marks it free (double-free check). */
typedef struct ka_block {
	struct ka_block *next;
	uintptr_t key;
} ka_block_t;

/* page->flags: anything set sends free() down the generic path (FULL only
 * the owner's, see ka_plain_page). */
#define KA_PAGE_UNUSED	1	/* no span starts here (also a span's later slices) */
#define KA_PAGE_HUGE	2	/* the block of a huge segment */
#define KA_PAGE_CACHED	4	/* with HUGE: the block is free, in the huge cache */
#define KA_PAGE_DEBUG	8	/* KALLOC_DEBUG: free() fills the block with junk */
#define KA_PAGE_FULL	16	/* in the heap's full queue: a free moves it back */
#define KA_PAGE_LARGE	32	/* one block: its span goes back when it is freed */
#define KA_PAGE_RELEASED 64	/* 4 KiB pages of its free blocks went back (page.c) */

/* page->xthread low bit: the page is full; the first remote free takes it
 * off and goes to the heap's delayed list (free.c). */
#define KA_XT_DELAYED	1UL

struct ka_heap;

/*
 * One per slice; only the first slice of a span describes the page.  64
 * bytes, so that free() finds a slice's descriptor with a shift and a
 * mask.  A page holds at most 64 KiB / 16 B blocks: 16 bits count them.
 */
typedef struct ka_page {
	ka_block_t *free;		/* malloc pops, the owner's free pushes */
	_Atomic uintptr_t xthread;	/* other threads' frees | KA_XT_DELAYED */
	uint64_t div_magic;		/* p - start divisible by block_size? */
	uint8_t *start;
	uint32_t block_size;
	uint32_t threaded;		/* bytes from start ever put on free */
	uint16_t used;			/* blocks out: remote frees count until collected,
					 * blocks others keep until freed again (foreign.c) */
	uint8_t slice_count;		/* span length, first slice only */
	uint8_t slice_offset;		/* slices back to the first one */
	uint8_t cls;
	_Atomic uint8_t flags;
	uint16_t released;		/* this slice's 4 KiB pages given back (page.c) */
	struct ka_page *next, *prev;	/* heap queue */
} ka_page_t;

_Static_assert(sizeof(ka_page_t) == 64, "free() indexes descriptors by shifting");

/*
 * page->used is written by whoever owns the page (its heap's thread, the
 * thread giving back a parked heap, or the purge thread for an abandoned
 * one) and read from any thread by the
 * statistics (stats.c).  Relaxed atomic stores and loads: the same plain
 * moves on every target, and no data race in C11's sense.
 */
static inline void ka_page_set_used(ka_page_t *page, unsigned n)
{
	__atomic_store_n(&page->used, (uint16_t)n, __ATOMIC_RELAXED);
}

/* What another thread may read of it (the owner reads page->used). */
static inline unsigned ka_page_used(const ka_page_t *page)
{
	return __atomic_load_n(&page->used, __ATOMIC_RELAXED);
}
_Static_assert(KA_SLICE_SIZE / KA_MIN_BLOCK <= UINT16_MAX, "block counts fit 16 bits");

#define KA_SEG_NORMAL	1
#define KA_SEG_HUGE	2

typedef struct ka_segment {
	uintptr_t cookie;		/* ka_secret ^ address: a real header */
	struct ka_heap *_Atomic heap;	/* owner (ka_heap_owns); NULL when abandoned or huge */
	struct ka_segment *next, *prev;	/* heap's lists, abandoned list */
	uint32_t kind;
	uint32_t region;		/* index in the region table (NORMAL) */
	size_t region_offset;		/* from the region start (NORMAL) */
	uint64_t used;			/* slices in spans; bit 0 is this header */
	uint64_t dirty;			/* free slices still resident */
	uint64_t purge_at;		/* ms: when dirty slices go back */
	uint8_t in_full_list;
	/* HUGE only: the region is the block's own. */
	void *huge_block;
	size_t huge_usable;
	size_t huge_map_size;		/* the region's: room to grow in */
	size_t huge_resident;		/* from the start: what may be resident */
	size_t huge_head;		/* 2 MiB region: its anonymous head (os.c) */
	uint32_t huge_id;
	_Alignas(64) ka_page_t pages[KA_SLICES];
} ka_segment_t;

/*
 * seg->dirty changes under the segment's lock, also in the purge thread,
 * which gives dirty slices back.  The owner looks at it unlocked to pick
 * where a span goes (segment.c): a hint, which ka_span_take() reads again
 * under the lock.  Relaxed atomic stores and loads make that no data race.
 */
static inline void ka_seg_set_dirty(ka_segment_t *seg, uint64_t dirty)
{
	__atomic_store_n(&seg->dirty, dirty, __ATOMIC_RELAXED);
}

static inline uint64_t ka_seg_dirty_hint(const ka_segment_t *seg)
{
	return __atomic_load_n(&seg->dirty, __ATOMIC_RELAXED);
}

typedef struct ka_page_queue {
	ka_page_t *first, *last;
} ka_page_queue_t;

typedef struct ka_heap {
	ka_page_t *direct[KA_DIRECT_WORDS + 1];	/* by (size+7)/8: the page to pop */
	ka_page_queue_t queues[KA_CLASSES];	/* pages with (maybe) free blocks */
	ka_page_queue_t full;			/* pages with none */
	ka_segment_t *segs_avail;		/* segments with free slices */
	ka_segment_t *segs_full;
	ka_block_t *_Atomic delayed;		/* remote frees into full pages */
	ka_block_t *foreign[KA_FOREIGN_CLASSES];	/* other heaps' blocks this one freed */
	uint16_t foreign_count[KA_FOREIGN_CLASSES];	/* on each list */
	uint16_t foreign_cap[KA_FOREIGN_CLASSES];	/* and at most: grows with reuse */
	uint16_t foreign_low[KA_FOREIGN_CLASSES];	/* fewest on it since the last GC */
	unsigned foreign_frees;				/* of others' blocks since the last GC */
	bool foreign_on;				/* a thread's heap: it may keep */
	bool foreign_busy;				/* flushing: keeps none (foreign.c) */
	size_t foreign_room;			/* bytes it may still keep; 0: none */
	size_t pages;				/* in the class queues and full */
	size_t carved;				/* slices carved since the last sweep */
	uint64_t purge_next;			/* ms; UINT64_MAX: nothing to purge */
	unsigned purge_epoch;
	int node;
	bool in_use;
	/* Nonzero while its owner is in a path that changes its pages and
	 * segments beyond one block pushed or popped (ka_heap_change_begin):
	 * a forked child leaves such a heap's memory alone (fork.c). */
	unsigned changing;
	/* Its thread's ka_tls_heap, which no other live thread's is: a
	 * thread found where it lay proves that one gone (heap.c); NULL
	 * when no thread owns the heap.  Under the registry's lock. */
	void *thread_tls;
	/* Its thread's kernel ids, process and thread, while thread_tls is
	 * set: the purge thread asks the kernel whether that thread is
	 * still there (heap.c).  Under the registry's lock. */
	int pid, tid;
	struct ka_heap *next_heap;		/* registry: heaps are never freed */
	/* ms: parked since (heap.c); 0: not.  A line of its own: other
	 * threads' frees read it (foreign.c), the owner writes the rest. */
	_Alignas(64) _Atomic uint64_t parked_at;
} ka_heap_t;

/*
 * Around the steps where a heap's owner changes its pages so that a fork
 * child, seeing them cut halfway, could hand a block out twice or abort on
 * a check.  The child takes over the memory of the gone threads' heaps
 * except those caught marked (fork.c).  Marked: threading more blocks
 * onto a page with blocks out (the list ahead of what it says it
 * threaded: threaded again, handed out twice), putting blocks of given
 * back 4 KiB pages back on a list (a free of one would read as a double
 * free), purging, giving the heap back.  With KALLOC_DEBUG, malloc's and
 * free's whole slow paths: its checks read every block of a page that
 * goes back, and a page cut halfway fails them (a span half filled with
 * junk).  Unmarked, each step cut anywhere loses blocks or keeps a page
 * from emptying, never more: a pop or a push (the link stored before the
 * head; a compiler barrier keeps them so), carving a page (none of its
 * blocks out: the child frees it), giving a span back (under its
 * segment's lock, which fork takes), collecting remote frees, moving a
 * page between queues (the child walks no gone heap's queues).  The
 * owner's stores only: the mark before the changes, its clearing after.
 * A count, since the paths nest (a malloc's purge gives a parked heap
 * back).
 */
static inline void ka_heap_change_begin(ka_heap_t *heap)
{
	__atomic_store_n(&heap->changing, heap->changing + 1, __ATOMIC_RELAXED);
#ifdef __SANITIZE_THREAD__	/* no fences under TSan; x86 needs none */
	__atomic_signal_fence(__ATOMIC_RELEASE);
#else
	__atomic_thread_fence(__ATOMIC_RELEASE);
#endif
}
static inline void ka_heap_change_end(ka_heap_t *heap)
{
	__atomic_store_n(&heap->changing, heap->changing - 1, __ATOMIC_RELEASE);
}

extern __thread ka_heap_t *ka_tls_heap __attribute__((tls_model("initial-exec")));
extern __thread bool ka_tls_exited __attribute__((tls_model("initial-exec")));
extern __thread bool ka_tls_freeing_again __attribute__((tls_model("initial-exec")));
extern __thread bool ka_tls_heap_borrowed __attribute__((tls_model("initial-exec")));

/*
 * The heap of a thread that has none, and its pages: const, so read-only
 * memory (RELRO), shared by every such thread.  Its direct[] pages have no
 * free block and its queues are empty, so malloc always falls to
 * ka_malloc_generic(), which gives the thread a heap first; it owns no
 * segment, so the thread's frees are all remote.  A path that wrote to it
 * would fault, not hand one block to two threads.
 */
extern KA_HIDDEN const ka_heap_t ka_heap_empty;
extern KA_HIDDEN const ka_page_t ka_page_empty;
#define KA_HEAP_EMPTY	((ka_heap_t *)&ka_heap_empty)
#define KA_PAGE_EMPTY	((ka_page_t *)&ka_page_empty)

extern KA_HIDDEN uintptr_t ka_secret;
extern KA_HIDDEN _Alignas(4096) _Atomic uint8_t ka_segmap[KA_SEGMAP_SIZE];

/*
 * Ownership, the one test of it: the calling thread, whose heap is heap
 * (ka_tls_heap), owns seg when seg's heap is that heap.  Only the owner
 * touches a page's free list and its heap's queues without atomics.  Not
 * the thread pointer: glibc hands a new thread the stack, and thread
 * pointer, of one that exited, and in a forked child those of the parent's
 * other threads, whose segments would then have two owners, or one that
 * has no heap.  A heap has one thread at a time: a thread's heap comes from
 * ka_heap_acquire() and goes back when the thread exits (parked whole for
 * the next thread, or its segments abandoned: heap.c) or, in a forked
 * child, when the thread is not there.  It
 * costs free() one load more than the thread pointer did in a shared
 * object (the TLS offset, from the GOT).
 */
static inline bool ka_heap_owns(const ka_heap_t *heap, const ka_segment_t *seg)
{
	return atomic_load_explicit(&seg->heap, KA_RELAXED) == heap;
}

static inline uintptr_t ka_block_key(const void *b)
{
	return (uintptr_t)b ^ ka_secret;
}

static inline uintptr_t ka_segment_cookie(const ka_segment_t *s)
{
	return (uintptr_t)s ^ ka_secret ^ 0x6b616c6c6f63UL;
}

static inline ka_segment_t *ka_segment_of(const void *p)
{
	return (ka_segment_t *)((uintptr_t)p & ~KA_SEGMENT_MASK);
}

/* The descriptor of the slice holding p: slice number times 64, one mask. */
static inline ka_page_t *ka_slice_page(ka_segment_t *seg, const void *p)
{
	uintptr_t off = ((uintptr_t)p >> (KA_SLICE_SHIFT - 6)) & ((KA_SLICES - 1) << 6);
	return (ka_page_t *)((uint8_t *)seg->pages + off);
}

/* The page of p: the descriptor of its span's first slice. */
static inline ka_page_t *ka_page_of(ka_segment_t *seg, const void *p)
{
	ka_page_t *page = ka_slice_page(seg, p);
	return page - page->slice_offset;
}

static inline size_t ka_page_span_bytes(const ka_page_t *page)
{
	return (size_t)page->slice_count << KA_SLICE_SHIFT;
}

/*
 * Whether p, in page's span, starts a block.  div_magic is 2^64 /
 * block_size rounded up; for any p - start below 2^32 the product
 * (p - start) * div_magic, modulo 2^64, is below div_magic exactly when
 * block_size divides p - start (Lemire, Kaser, Kurz, "Faster remainder by
 * direct computation", 2019).  One multiply; test_api.c checks every
 * class over its whole span.
 */
static inline bool ka_page_divides(const ka_page_t *page, const void *p)
{
	uint64_t diff = (uint64_t)((uintptr_t)p - (uintptr_t)page->start);

	return diff * page->div_magic < page->div_magic;
}

/*
 * free()'s fast test, which realloc() shares: the page of p when p starts
 * a block of a plain page (a segment's, no flag set but KA_PAGE_FULL),
 * with its flags in *flags, else NULL, for the generic path's full checks.
 * The page is its span's first slice's descriptor, whichever slice p is
 * in: a block of a medium page (8-64 KiB, spans of 8 slices) lies past
 * the first slice seven times in eight, and those frees took the generic
 * path, each checked twice (exchange: 9 % of its frees).  A slice outside
 * any span reads offset 0 and KA_PAGE_UNUSED.  A full page is plain to
 * the threads that do not own it: their frees into it are remote frees
 * like any other (free.c); its owner's take the generic path, which moves
 * it back to its class queue (ka_block_live).
 */
static inline ka_page_t *ka_plain_page(const void *p, unsigned *flags)
{
	uintptr_t g = (uintptr_t)p >> KA_SEGMENT_SHIFT;

	if (KA_UNLIKELY(g >= KA_SEGMAP_SIZE ||
			atomic_load_explicit(&ka_segmap[g], KA_RELAXED) != 1))
		return NULL;
	ka_page_t *page = ka_page_of(ka_segment_of(p), p);
	*flags = atomic_load_explicit(&page->flags, KA_RELAXED);
	if (KA_UNLIKELY((*flags & ~(unsigned)KA_PAGE_FULL) != 0 ||
			!ka_page_divides(page, p)))
		return NULL;
	return page;
}

/* Block p of page (divides) has been threaded, so possibly handed out.
 * Owner only: threaded grows under it. */
static inline bool ka_page_threaded(const ka_page_t *page, const void *p)
{
	return (uint64_t)((uintptr_t)p - (uintptr_t)page->start) < page->threaded;
}

/* The same, asked by another thread: a yes is sure (threaded only grows
 * while the page has a live block).  A no is sure for a block the program
 * passed to this thread: the owner threaded it before malloc() returned
 * it, which happened before the pass.  It may be stale only for a pointer
 * nobody handed to this thread (foreign.c reads it so too). */
static inline bool ka_page_threaded_seen(const ka_page_t *page, const void *p)
{
	return (uint64_t)((uintptr_t)p - (uintptr_t)page->start) <
	       __atomic_load_n(&page->threaded, __ATOMIC_RELAXED);
}

/*
 * The fast half of the pointer check free(), realloc() and
 * malloc_usable_size() share: p's page when p is a live block of a plain
 * page -- not freed (no key), handed out if this thread owns it, not full
 * and threaded -- with *owner set; else NULL, and ka_block_check()
 * (free.c) looks again from the start and reports.  Threaded, for another
 * thread too: the division alone takes a start in the span's tail past
 * its last whole block (10240 B blocks leave 2 KiB of a 512 KiB span), or
 * a block never handed out, and another thread's realloc() kept such a
 * pointer in place and wrote past the span or into a block the owner
 * would hand out later.  A block the program got from malloc() and passed
 * on is threaded in what the passing thread saw, so in what this one sees
 * (ka_page_threaded_seen()).
 */
static inline ka_page_t *ka_block_live(void *p, bool *owner)
{
	unsigned flags;
	ka_page_t *page = ka_plain_page(p, &flags);

	if (KA_UNLIKELY(!page))
		return NULL;
	ka_block_t *b = p;
	if (KA_UNLIKELY(b->key == ka_block_key(b)))	/* freed */
		return NULL;
	*owner = ka_heap_owns(ka_tls_heap, ka_segment_of(p));
	if (*owner) {
		if (KA_UNLIKELY((flags != 0) | !ka_page_threaded(page, p)))
			return NULL;
	} else if (KA_UNLIKELY(!ka_page_threaded_seen(page, p))) {
		return NULL;
	}
	return page;
}

/* ---- options.c: every KALLOC_* environment variable, read once ---- */
struct ka_options {
	const char *backend;	/* KALLOC_BACKEND as given, NULL if unset */
	unsigned order;		/* KALLOC_ORDER */
	bool order_set;		/* KALLOC_ORDER was given: it pins huge blocks too */
	bool quiet;		/* KALLOC_QUIET=1 */
	bool debug;		/* KALLOC_DEBUG=1 */
	bool purge_thread_off;	/* KALLOC_PURGE_THREAD=0 */
	bool numa_off;		/* KALLOC_NUMA=0 */
	bool stats_at_exit;	/* KALLOC_STATS=1 */
};
extern KA_HIDDEN struct ka_options ka_options;
extern KA_HIDDEN _Atomic uint64_t ka_decay_ms;	/* KALLOC_DECAY_MS, mallopt */
KA_HIDDEN void ka_options_init(void);

/* ---- os.c: the only file that talks to the kernel ---- */
struct ka_os_region {
	void *base;
	size_t size;
	size_t head;		/* at base, not the device's: 64 KiB anonymous, reserved */
	uint32_t id;
	int node;
};
KA_HIDDEN void ka_os_init(void);
KA_HIDDEN bool ka_os_region_create(size_t size, size_t align, int node, struct ka_os_region *r);
KA_HIDDEN bool ka_os_region_create_pmd(size_t size, size_t head, size_t align, int node,
					struct ka_os_region *r);
KA_HIDDEN bool ka_os_pmd_usable(void);
KA_HIDDEN bool ka_os_address_space_counted(void);
KA_HIDDEN void ka_os_commit_init(void);
KA_HIDDEN void ka_os_region_release(const struct ka_os_region *r, size_t offset, size_t len);
KA_HIDDEN bool ka_os_region_move(struct ka_os_region *r, size_t size, size_t align);
KA_HIDDEN void ka_os_region_destroy(const struct ka_os_region *r);
KA_HIDDEN size_t ka_os_region_resident(const struct ka_os_region *r);
KA_HIDDEN void ka_os_small_pages(void *p, size_t len);
KA_HIDDEN void ka_os_region_small_pages(const struct ka_os_region *r, size_t len);
KA_HIDDEN void *ka_os_meta_alloc(size_t size);
KA_HIDDEN uint64_t ka_os_now_ms(void);
KA_HIDDEN int ka_os_live_threads(int most);
KA_HIDDEN int ka_os_tid(void);
KA_HIDDEN bool ka_os_thread_gone(int pid, int tid);
KA_HIDDEN const char *ka_os_backend(void);
KA_HIDDEN uintptr_t ka_os_random(void);
KA_HIDDEN size_t ka_os_granule(void);	/* region sizes round to this */
/* What the kernel says of a region (tests): where its device part starts,
 * its block order, resident bytes, faults served; false without one. */
struct ka_os_region_view {
	void *device_base;
	size_t device_size;
	unsigned order;
	size_t resident;
	uint64_t faults;
};
KA_HIDDEN bool ka_os_region_view(const struct ka_os_region *r, struct ka_os_region_view *v);
KA_HIDDEN void ka_fatal(const char *fmt, const void *p) __attribute__((noreturn));
KA_HIDDEN void ka_fatal_error(const char *call, int err) __attribute__((noreturn));
KA_HIDDEN void ka_message(const char *msg);
extern KA_HIDDEN _Atomic uint64_t ka_os_releases, ka_os_released_bytes, ka_os_regions;

/* ---- numa.c ---- */
KA_HIDDEN void ka_numa_init(void);
KA_HIDDEN int ka_numa_node(void);	/* the caller's node, or -1 */
KA_HIDDEN int ka_numa_nodes(void);	/* 0 when off */

/* ---- segment-map.c ---- */
KA_HIDDEN ka_segment_t *ka_segment_lookup(const void *p);
KA_HIDDEN void ka_segment_map(ka_segment_t *seg, size_t size);
KA_HIDDEN void ka_segment_map_init(void);
KA_HIDDEN void ka_segment_unmap(ka_segment_t *seg, size_t size);

/* ---- region.c: the region table, a pool of segments ---- */
struct ka_region {
	struct ka_os_region os;
	uint32_t seg_used;		/* segments handed out */
	ka_lock_t seg_lock[KA_REGION_SEGMENTS];	/* used, dirty, purge_at, seg_live */
	bool seg_live[KA_REGION_SEGMENTS];	/* header valid: the purge thread may look */
};
extern KA_HIDDEN struct ka_region ka_regions[KA_MAX_REGIONS];
extern KA_HIDDEN unsigned ka_region_count;
extern KA_HIDDEN ka_lock_t ka_region_lock;	/* the table: count, seg_used */
/* Slot si of region r, as a segment header (valid only while seg_live). */
static inline ka_segment_t *ka_region_segment(const struct ka_region *r, unsigned si)
{
	return (ka_segment_t *)((uint8_t *)r->os.base + (size_t)si * KA_SEGMENT_SIZE);
}

static inline ka_lock_t *ka_seg_lock(const ka_segment_t *seg)
{
	return &ka_regions[seg->region].seg_lock[seg->region_offset >> KA_SEGMENT_SHIFT];
}
KA_HIDDEN ka_segment_t *ka_segment_new(int node);
KA_HIDDEN void ka_segment_to_pool(ka_segment_t *seg);
KA_HIDDEN void ka_segment_release_dirty(ka_segment_t *seg);
KA_HIDDEN void ka_segment_release_dirty_locked(ka_segment_t *seg);
KA_HIDDEN void ka_segment_release_range(ka_segment_t *seg, size_t offset, size_t len);
KA_HIDDEN bool ka_segment_purge(ka_segment_t *seg, uint64_t now, bool force, uint64_t *next);
KA_HIDDEN void ka_segments_purge_owned(uint64_t now, uint64_t *next);
KA_HIDDEN int ka_block_region_node(const void *p);
KA_HIDDEN bool ka_block_region_view(const void *p, struct ka_os_region_view *v);
KA_HIDDEN void ka_regions_fork_lock(bool lock);
KA_HIDDEN void ka_segments_recover_cut(void);

/* ---- segment.c: segments and spans ---- */
KA_HIDDEN ka_page_t *ka_span_alloc(ka_heap_t *heap, unsigned slices, bool *zeroed);
/*
 * The block of the last large page made zeroed (page.c), for calloc to
 * leave unwritten (alloc.c); calloc clears it before it allocates.
 */
extern __thread void *ka_tls_zeroed_block __attribute__((tls_model("initial-exec")));
KA_HIDDEN void ka_span_free(ka_heap_t *heap, ka_page_t *page);
KA_HIDDEN void ka_segment_set_heap(ka_segment_t *seg, ka_heap_t *heap);
KA_HIDDEN void ka_seg_list_remove(ka_segment_t **list, ka_segment_t *seg);
KA_HIDDEN void ka_seg_list_push(ka_segment_t **list, ka_segment_t *seg);
/* Walk the span heads of a segment's used slices. */
#define ka_for_each_span(seg, page)						\
	for (unsigned _i = 1; _i < KA_SLICES;					\
	     _i += (seg)->pages[_i].slice_count ? (seg)->pages[_i].slice_count : 1) \
		if (((seg)->used >> _i & 1) &&					\
		    !(atomic_load_explicit(&(seg)->pages[_i].flags, memory_order_acquire) & \
		      KA_PAGE_UNUSED) &&						\
		    ((page) = &(seg)->pages[_i]))

/* ---- abandon.c: segments of threads that exited ---- */
KA_HIDDEN void ka_segments_abandon(ka_heap_t *heap);
KA_HIDDEN bool ka_segment_reclaim(ka_heap_t *heap);
KA_HIDDEN bool ka_segments_collect_abandoned(uint64_t now, bool force, uint64_t *next);
KA_HIDDEN void ka_abandoned_block_freed(void);
KA_HIDDEN void ka_segment_adopt_pages(ka_heap_t *heap, ka_segment_t *seg);
KA_HIDDEN void ka_segments_abandon_gone(const ka_heap_t *self, const ka_heap_t *exited);
KA_HIDDEN size_t ka_abandoned_segments(void);
KA_HIDDEN void ka_abandoned_fork_lock(bool lock);

/* ---- huge.c ---- */
#define KA_HUGE_CACHE_SLOTS	16		/* freed huge blocks' regions kept */
#define KA_HUGE_CACHE_BYTES	(256UL << 20)	/* and their bytes at most */
KA_HIDDEN void *ka_huge_alloc(size_t size, size_t align, bool zero);
KA_HIDDEN void ka_huge_free(ka_segment_t *seg);
KA_HIDDEN bool ka_huge_resize(ka_segment_t *seg, size_t size);
KA_HIDDEN void *ka_huge_move(ka_segment_t *seg, size_t size);
KA_HIDDEN bool ka_huge_cache_purge(uint64_t now, bool all, uint64_t *next);
KA_HIDDEN void ka_huge_cache_shrink(size_t bytes);
KA_HIDDEN void ka_huge_stats(struct ka_stats *st);
KA_HIDDEN void ka_huge_fork_lock(bool lock);
KA_HIDDEN bool ka_huge_region_view(const ka_segment_t *seg, struct ka_os_region_view *v);

/* ---- page.c ---- */
KA_HIDDEN ka_page_t *ka_page_find(ka_heap_t *heap, unsigned cls);
KA_HIDDEN void ka_page_collect(ka_page_t *page);
KA_HIDDEN void ka_page_to_front(ka_page_t *page);
KA_HIDDEN void ka_page_unfull(ka_heap_t *heap, ka_page_t *page);
KA_HIDDEN void ka_page_retire(ka_heap_t *heap, ka_page_t *page);
KA_HIDDEN void ka_page_emptied(ka_page_t *page);
KA_HIDDEN void ka_page_adopt(ka_heap_t *heap, ka_page_t *page);
KA_HIDDEN bool ka_heap_free_empty_pages(ka_heap_t *heap);
KA_HIDDEN bool ka_heap_sweep(ka_heap_t *heap);
KA_HIDDEN void ka_heap_release_free_blocks(ka_heap_t *heap);
KA_HIDDEN bool ka_page_block_released(const ka_page_t *page, const void *p);

/* ---- foreign.c: other heaps' blocks a thread freed, kept for its reuse ---- */
KA_HIDDEN void ka_foreign_init(ka_heap_t *heap);
KA_HIDDEN bool ka_foreign_keep(ka_heap_t *heap, ka_segment_t *seg, ka_page_t *page, ka_block_t *b);
KA_HIDDEN void ka_foreign_flush(ka_heap_t *heap, bool done);
/* A block of class cls that heap keeps, taken; NULL if it keeps none. */
static inline void *ka_foreign_take(ka_heap_t *heap, unsigned cls)
{
	ka_block_t *b;

	if (cls >= KA_FOREIGN_CLASSES || !(b = heap->foreign[cls]))
		return NULL;
	heap->foreign[cls] = b->next;
	if (--heap->foreign_count[cls] < heap->foreign_low[cls])
		heap->foreign_low[cls] = heap->foreign_count[cls];
	heap->foreign_room += ka_class_size[cls];
	if (heap->foreign_cap[cls] < UINT16_MAX)
		heap->foreign_cap[cls]++;
	b->key = 0;
	return b;
}

/* ---- heap.c: the registry of heaps, delayed frees ---- */
KA_HIDDEN ka_heap_t *ka_heap_acquire(ka_heap_t *want, ka_heap_t **gone);
KA_HIDDEN bool ka_heap_release(ka_heap_t *heap);
KA_HIDDEN bool ka_heap_release_gone(ka_heap_t *gone);
KA_HIDDEN void ka_heap_mark_thread(ka_heap_t *heap);
KA_HIDDEN void ka_heaps_release_vanished(void);
KA_HIDDEN bool ka_heap_is_main(const ka_heap_t *heap);
KA_HIDDEN void ka_heap_drain_delayed(ka_heap_t *heap);
KA_HIDDEN void ka_blocks_free_again(ka_block_t *b);
KA_HIDDEN void ka_heap_release_pages(ka_heap_t *heap);
KA_HIDDEN void ka_heaps_drain_idle(void);
KA_HIDDEN void ka_heaps_unpark(uint64_t now, bool all, uint64_t *next);
KA_HIDDEN bool ka_heaps_unpark_for_room(int node);
KA_HIDDEN void ka_heaps_flush_foreign_unused(void);
KA_HIDDEN void ka_heaps_unuse_all_but(const ka_heap_t *self);
KA_HIDDEN void ka_heaps_fork_lock(bool lock);
KA_HIDDEN void ka_heaps_stats(struct ka_stats *st);

/* ---- thread.c: thread start and exit ---- */
extern KA_HIDDEN const ka_heap_t *const ka_heap_exited;	/* past their destructor */
KA_HIDDEN ka_heap_t *ka_heap_thread_init(ka_heap_t *want);
KA_HIDDEN void ka_thread_exit_init(void);
KA_HIDDEN void *ka_malloc_exited(size_t size);
KA_HIDDEN void ka_heap_exited_fork_lock(bool lock);

/* ---- fork.c ---- */
KA_HIDDEN void ka_fork_init(void);

/* ---- init.c ---- */
KA_HIDDEN void ka_process_init(void);
KA_HIDDEN void ka_late_init(void);

/* ---- stats.c ---- */
KA_HIDDEN void ka_stats_at_exit_init(void);
struct mallinfo;
struct mallinfo2;
KA_HIDDEN struct mallinfo2 ka_mallinfo2(void);
KA_HIDDEN struct mallinfo ka_mallinfo(void);
KA_HIDDEN void ka_malloc_stats(void);
KA_HIDDEN int ka_malloc_info(int options, FILE *f);

/* ---- alloc.c / free.c ---- */
KA_HIDDEN void *ka_malloc_generic(ka_heap_t *heap, size_t size);
KA_HIDDEN void *ka_huge_malloc(size_t size, size_t align, bool zero);
KA_HIDDEN void ka_free_generic(void *p);
struct ka_block_where {
	ka_segment_t *seg;
	unsigned flags;		/* the page's */
	bool owner;		/* the calling thread's heap owns seg */
};
KA_HIDDEN ka_page_t *ka_block_check(const char *who, void *p, struct ka_block_where *at);
KA_HIDDEN size_t ka_block_usable(const char *who, void *p);

/* ---- debug.c: KALLOC_DEBUG=1 ---- */
#define KA_DEBUG_JUNK	0xdf	/* freed memory */
#define KA_DEBUG_FRESH	0xaa	/* allocated, not yet written (not calloc) */
extern KA_HIDDEN bool ka_debug;
KA_HIDDEN void ka_debug_init(void);
KA_HIDDEN void ka_debug_junk_block(ka_block_t *b, size_t size);
KA_HIDDEN void ka_debug_check_block(const ka_page_t *page, const ka_block_t *b);
KA_HIDDEN void ka_debug_check_page(const ka_page_t *page);
KA_HIDDEN void ka_debug_check_junk(const char *what, const void *p, size_t size);
KA_HIDDEN void ka_debug_check_sized(const char *who, void *p, size_t align, size_t size);

/* ---- purge.c ---- */
extern KA_HIDDEN _Atomic unsigned ka_purge_epoch;
KA_HIDDEN void ka_purge_init(void);
KA_HIDDEN void ka_heap_purge(ka_heap_t *heap, bool force);
KA_HIDDEN uint64_t ka_purge_tick(ka_heap_t *heap);
KA_HIDDEN uint64_t ka_purge_deadline(void);
KA_HIDDEN void ka_span_became_dirty(ka_heap_t *heap, ka_segment_t *seg, uint64_t due);
KA_HIDDEN void ka_purge_request(uint64_t when);
KA_HIDDEN void ka_purge_thread_start(void);
KA_HIDDEN bool ka_purge_thread_stop(void);
KA_HIDDEN bool ka_purge_thread_running(void);
KA_HIDDEN size_t ka_purge_thread_stack(void);
KA_HIDDEN void ka_purge_thread_disable(void);
KA_HIDDEN void ka_purge_fork_child(void);
KA_HIDDEN void ka_purge_thread_retire(void);
KA_HIDDEN void ka_purge_thread_left_alone(void);
KA_HIDDEN void ka_purge_look_for_vanished(void);
static inline void ka_heap_maybe_purge(ka_heap_t *heap)
{
	if (KA_UNLIKELY(heap->purge_next != UINT64_MAX ||
			heap->purge_epoch != atomic_load_explicit(&ka_purge_epoch, KA_RELAXED)) &&
	    heap != KA_HEAP_EMPTY)	/* read-only: a heapless thread purges nothing */
		ka_heap_purge(heap, false);
}

#endif /* KA_INTERNAL_H */
