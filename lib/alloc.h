/* SPDX-License-Identifier: MIT */
/*
 * liballoc: a malloc whose memory comes from /dev/kalloc regions.
 *
 * Every function of the malloc family exists here under a ka_ prefix with
 * glibc's semantics; liballoc.so also exports the unprefixed names, so it
 * works as a drop-in under LD_PRELOAD, and liballoc.a does the same when
 * linked with -lalloc.
 */
#ifndef KA_ALLOC_H
#define KA_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

void *ka_malloc(size_t size);
void ka_free(void *p);
void *ka_calloc(size_t n, size_t size);
void *ka_realloc(void *p, size_t size);
void *ka_reallocarray(void *p, size_t n, size_t size);
void *ka_aligned_alloc(size_t alignment, size_t size);
int ka_posix_memalign(void **out, size_t alignment, size_t size);
void *ka_memalign(size_t alignment, size_t size);
void *ka_valloc(size_t size);
void *ka_pvalloc(size_t size);
size_t ka_malloc_usable_size(void *p);
/* C23: free a block with the size (and alignment) it was asked with;
 * KALLOC_DEBUG=1 checks them against the block. */
void ka_free_sized(void *p, size_t size);
void ka_free_aligned_sized(void *p, size_t alignment, size_t size);
/* Give free memory back to the kernel now; 1 if any was given back. */
int ka_malloc_trim(size_t pad);

/* A snapshot of the whole process; approximate while other threads run. */
struct ka_stats {
	size_t allocated;	/* bytes in live blocks (their usable size), with
				 * blocks threads keep of others' to reuse */
	size_t active;		/* bytes of spans holding live blocks */
	size_t dirty;		/* bytes free, not yet given back: spans, huge_cached */
	size_t reserved;	/* bytes of address space in regions */
	size_t resident;	/* bytes of those backed by memory now */
	size_t huge_allocated;	/* bytes in huge blocks (own regions) */
	size_t huge_count;	/* live huge blocks */
	size_t regions;		/* regions alive, huge ones included */
	size_t segments;	/* segments handed to heaps */
	size_t abandoned;	/* segments of exited threads not yet reclaimed
				 * (not those of a parked heap: heaps_parked) */
	size_t heaps;		/* thread heaps ever created */
	size_t heaps_in_use;	/* of which owned by a live thread */
	uint64_t releases;	/* release calls made to the backend */
	uint64_t released_bytes;/* bytes given back in total */
	uint64_t decay_ms;	/* purge delay in effect */
	int numa_nodes;		/* nodes in use; 0 when NUMA is off */
	const char *backend;	/* "device" or "anon" */
	size_t huge_cached;	/* bytes of freed huge blocks kept for reuse */
	uint64_t huge_reused;	/* huge blocks served from those, in total */
	size_t heaps_parked;	/* of the heaps, exited threads' kept whole for the next
				 * (or giving their memory back) */
	size_t heaps_caught;	/* of the heaps, those a fork child found halfway
				 * through a change: unused for good, with their
				 * segments (fork.c); in neither count above */
};

/*
 * struct ka_stats only ever grows at its end.  ka_stats() passes the
 * caller's sizeof to ka_stats_sized(), which fills that much and no more,
 * so a program built against an older alloc.h keeps working with a newer
 * library (as the kernel's argsz does).  The function ka_stats() stays for
 * callers that take its address; it fills this header's layout.
 */
void ka_stats_sized(struct ka_stats *out, size_t size);
void ka_stats(struct ka_stats *out);
#define ka_stats(out) ka_stats_sized((out), sizeof *(out))

#define KA_STATS_TEXT 0
#define KA_STATS_JSON 1
void ka_stats_print(FILE *f, int flags);

/* mallopt() parameter of our own: the purge delay in milliseconds. */
#define KA_M_DECAY_MS (-101)
int ka_mallopt(int param, int value);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* KA_ALLOC_H */
