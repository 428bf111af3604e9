/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kalloc: memory regions served by a misc device, /dev/kalloc.
 *
 * A process opens /dev/kalloc, creates regions with KALLOC_IOC_CREATE and
 * maps each with mmap(MAP_SHARED) at the offset the ioctl returned.  The
 * module fills a region on first touch from a vmalloc area or from buddy
 * pages, and takes memory back with KALLOC_IOC_RELEASE.
 *
 * Every argument struct begins with its own size (argsz) so it can grow:
 * the kernel accepts a larger, newer struct whose extra bytes are zero.
 * A smaller one gives EINVAL: no struct has grown since ABI 1, so there
 * is no older size to accept yet; once one grows, its size in the ABI
 * that introduced it stays accepted.  Unknown flags or non-zero reserved
 * fields give EINVAL; an argsz larger than a page gives E2BIG; an unknown
 * ioctl gives ENOTTY.
 */
#ifndef _UAPI_LINUX_KALLOC_H
#define _UAPI_LINUX_KALLOC_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define KALLOC_DEVICE		"/dev/kalloc"
#define KALLOC_PROC		"/proc/kalloc"
#define KALLOC_ABI_VERSION	1

/* What a region's memory comes from. */
enum kalloc_backing {
	/* Allocated whole (zeroed) at create, mapped page by page on fault. */
	KALLOC_BACKING_VMALLOC = 1,
	/* Buddy blocks of 2^order pages, allocated on first touch. */
	KALLOC_BACKING_PAGES = 2,
};

/* node value: the node of the CPU that faults (or creates, for VMALLOC). */
#define KALLOC_NODE_LOCAL	(-1)

/* Per-node resident counts reported by KALLOC_IOC_INFO. */
#define KALLOC_MAX_NODES	16

/*
 * Each region owns a window of this many bytes in the file's offset space;
 * the offset CREATE returns is the start of the window.
 */
#define KALLOC_REGION_WINDOW_SHIFT	40

struct kalloc_version {
	__u32 argsz;		/* in: sizeof(struct kalloc_version) */
	__u32 abi;		/* out: KALLOC_ABI_VERSION */
	__u32 major;		/* out: module version */
	__u32 minor;
	__u32 patch;
	__u32 max_order;	/* out: largest PAGES order accepted */
	__u32 fault_around;	/* out: pages mapped per fault */
	__u32 reserved;		/* out: zero */
};

struct kalloc_create {
	__u32 argsz;		/* in: sizeof(struct kalloc_create) */
	__u32 flags;		/* in: must be 0 */
	__u64 size;		/* in: bytes, rounded up to whole pages */
	__u32 backing;		/* in: enum kalloc_backing */
	__u32 order;		/* in: PAGES block order; 0 for VMALLOC */
	__s32 node;		/* in: NUMA node, or KALLOC_NODE_LOCAL */
	__u32 id;		/* out: region id, names it in later ioctls */
	__u64 offset;		/* out: pass to mmap */
};

struct kalloc_release {
	__u32 argsz;		/* in: sizeof(struct kalloc_release) */
	__u32 id;		/* in: region id */
	__u64 offset;		/* in: bytes from region start, page aligned */
	__u64 length;		/* in: bytes, page aligned, non-zero */
};

struct kalloc_info {
	__u32 argsz;		/* in: sizeof(struct kalloc_info) */
	__u32 id;		/* in: region id */
	__u64 size;		/* out: bytes */
	__u32 backing;		/* out: enum kalloc_backing */
	__u32 order;		/* out */
	__s32 node;		/* out: as created */
	__u32 mappings;		/* out: vmas that map the region */
	__u64 resident;		/* out: pages backing the region now */
	__u64 faults;		/* out: faults served */
	__u64 releases;		/* out: pages released */
	__u64 resident_node[KALLOC_MAX_NODES];	/* out: resident pages by node */
};

struct kalloc_destroy {
	__u32 argsz;		/* in: sizeof(struct kalloc_destroy) */
	__u32 id;		/* in: region id */
};

#define KALLOC_IOC_MAGIC	'K'
#define KALLOC_IOC_VERSION	_IOWR(KALLOC_IOC_MAGIC, 0, struct kalloc_version)
#define KALLOC_IOC_CREATE	_IOWR(KALLOC_IOC_MAGIC, 1, struct kalloc_create)
#define KALLOC_IOC_RELEASE	_IOWR(KALLOC_IOC_MAGIC, 2, struct kalloc_release)
#define KALLOC_IOC_INFO		_IOWR(KALLOC_IOC_MAGIC, 3, struct kalloc_info)
#define KALLOC_IOC_DESTROY	_IOWR(KALLOC_IOC_MAGIC, 4, struct kalloc_destroy)

#endif /* _UAPI_LINUX_KALLOC_H */
