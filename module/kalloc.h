/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kalloc internals: what the device, the regions, the fault handler and
 * /proc/kalloc share.
 *
 * Objects and their lifetimes:
 *
 *   struct kalloc_file    one per open of /dev/kalloc.  Owns an anonymous
 *                         inode, so that the file's mappings share an
 *                         address space of their own.
 *   struct kalloc_space   the regions one process (one mm) has in one file.
 *                         After fork the child shares the file but gets a
 *                         space of its own, so a region id always names the
 *                         caller's own region.
 *   struct kalloc_region  memory served to mappings.  Referenced by its
 *                         space (until DESTROY) and by each vma mapping it.
 *
 * A vma holds its file, so a file is released only after every mapping of
 * it is gone; the file's release then drops the spaces' references and
 * every region is freed.
 *
 * Locks, outermost first:
 *
 *   mmap_lock             a fault on 6.1, RELEASE (read), fork's ->open
 *                         (write); on 6.12 a fault holds only its vma's
 *                         per-VMA lock (see fault.c)
 *   kalloc_file.lock      the spaces and their ids; never held while pages
 *                         are copied or freed in bulk
 *   kalloc_owner.lock     an mm's subscribed spaces (owner.c); its
 *                         ->release runs in the mmu_notifier SRCU read
 *                         section, without mmap_lock, and takes
 *                         region->lock only after dropping this one: so
 *                         nothing may mmput() or wait for that SRCU under
 *                         any lock here (mmdrop() is fine); subscribing
 *                         (mmu_notifier_get_locked()) takes every lock of
 *                         the mm under its mmap_lock, which a worker only
 *                         tries, while the caller, holding none of these,
 *                         waits killably
 *   kalloc_region.lock    a rw_semaphore over the backing: faults take it
 *                         shared (killably) only to publish and map pages
 *                         allocated before it; RELEASE, fork's copy and the
 *                         mapping count take it exclusive
 *   a page's lock         a fault of a vma that maps by PMD holds it from
 *                         inside region->lock (shared) until the core has
 *                         mapped the page; RELEASE takes it inside
 *                         region->lock (exclusive) to wait for those
 *   the xarray's lock     region.pages, inside xa_*() calls only
 *
 * /proc/kalloc takes none of them: it walks the regions' xarray under RCU
 * and pins one region at a time (see kalloc_region_next_listed()), and
 * looks at a region's blocks under RCU (kalloc_region_pmd_pages()).
 */
#ifndef _KALLOC_H
#define _KALLOC_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/refcount.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/uidgid.h>
#include <linux/xarray.h>
#include <linux/kalloc.h>
#include "compat.h"

#define KALLOC_VERSION_MAJOR	0
#define KALLOC_VERSION_MINOR	1
#define KALLOC_VERSION_PATCH	0
#define KALLOC_VERSION_STRING	"0.1.0"

/* Region ids fit the offset window: id << KALLOC_REGION_WINDOW_SHIFT < 2^63. */
#define KALLOC_MAX_ID		((1U << (63 - KALLOC_REGION_WINDOW_SHIFT)) - 1)
#define KALLOC_WINDOW_PAGES	(1UL << (KALLOC_REGION_WINDOW_SHIFT - PAGE_SHIFT))

/* Upper bound of the fault_around parameter: the fault handler's batch. */
#define KALLOC_FAULT_AROUND_MAX	32

struct kalloc_file {
	struct inode *inode;		/* private address space */
	struct mutex lock;		/* protects spaces */
	struct list_head spaces;
};

struct kalloc_space {
	struct list_head link;		/* in kalloc_file.spaces */
	struct mm_struct *mm;		/* mmgrab()ed: the address stays unique */
	u64 serial;			/* never reused, unlike the address */
	struct xarray regions;		/* id -> region, holds a reference */
	u32 next_id;			/* ids are not reused soon: see CREATE */
	/* the mm's exit frees the regions' pages once set: see owner.c */
	struct kalloc_owner *owner;	/* kfile->lock */
	struct list_head owner_link;	/* in owner's spaces; owner's lock */
	bool owner_queued;		/* a close's task_work will set owner; kfile->lock */
};

/* A user (real uid) that holds regions: see user.c. */
struct kalloc_user {
	struct hlist_node link;		/* in the hash of users */
	refcount_t ref;			/* one per region */
	kuid_t uid;
	atomic_long_t pages;		/* resident in its regions */
	atomic_long_t regions;		/* its regions, fork copies too */
	/* pages others still held when its regions gave them up: pinned.c */
	struct list_head pinned;	/* kalloc_pinned_lock */
	struct list_head pinned_link;	/* in the users with such pages */
	unsigned long pinned_nr;	/* entries in pinned; kalloc_pinned_lock */
	struct mutex pinned_walk;	/* one walk of pinned at a time */
};

struct kalloc_region {
	struct kref ref;
	struct rcu_head rcu;		/* /proc/kalloc may still look at it */
	u32 list_index;			/* in the xarray /proc/kalloc walks */
	bool listed;			/* is in it */
	u32 id;
	u32 backing;			/* enum kalloc_backing */
	unsigned int order;
	bool pmd;			/* maps its blocks by PMD: see fault.c */
	int node;			/* as created; KALLOC_NODE_LOCAL or a node */
	unsigned long nr_pages;
	pgoff_t pgoff;			/* start of its window in the file */
	struct mm_struct *mm;		/* the one mm that maps it, mmgrab()ed */
	bool named;			/* its id names it (until DESTROY); kfile->lock */
	/* the copy last made by fork, for the child space of that serial; kfile->lock */
	struct kalloc_region *fork_copy;
	u64 fork_space;
	/*
	 * The owner's thread group, once known (a reference): /proc/kalloc
	 * shows its number in the reader's pid namespace.
	 */
	struct pid *owner_pid;
	kuid_t uid;			/* the creator's euid: /proc/kalloc rows */
	struct kalloc_user *user;	/* the creator's real uid: the limit */
	bool limited;			/* by max_user_pages: see user.c */
	char comm[TASK_COMM_LEN];

	struct rw_semaphore lock;	/* see "Locks" above */
	bool broken;			/* a fork copy that could not be made */
	bool owner_exited;		/* its mm is gone: lock held exclusive */
	void *vaddr;			/* VMALLOC: the area */
	struct page **vpages;		/* VMALLOC: its pages */
	struct xarray pages;		/* PAGES: page index -> struct page */

	atomic_long_t resident;		/* pages backing it now */
	atomic_long_t resident_node[KALLOC_MAX_NODES];
	atomic_long_t faults;
	atomic_long_t releases;		/* resident pages handed back by RELEASE */
	atomic_t mappings;		/* changed under lock: see kalloc_region_mapped() */
	/* in the owner's MM_SHMEMPAGES; lock held exclusive, or no mapping */
	unsigned long rss_counted;
	struct list_head owner_gone;	/* its owner's exit frees it: owner.c */
};

/*
 * A PAGES region of the PMD order keeps each of its blocks whole, one
 * compound page, so that the core mm can map it with one PMD entry (see
 * fault.c); every other region splits its blocks into single pages.
 */
#define KALLOC_PMD_ORDER	(PMD_SHIFT - PAGE_SHIFT)

static inline bool kalloc_region_maps_pmds(const struct kalloc_region *region)
{
	return IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE) &&
	       has_transparent_hugepage() &&
	       region->backing == KALLOC_BACKING_PAGES &&
	       region->order == KALLOC_PMD_ORDER;
}

/*
 * A fork copy is made before the child has a pid; the first time the
 * child itself uses the region (fault or ioctl), it is recorded.
 */
static inline void kalloc_region_owner_seen(struct kalloc_region *region)
{
	struct pid *pid;

	if (likely(READ_ONCE(region->owner_pid)) || current->mm != region->mm)
		return;
	pid = get_pid(task_tgid(current));
	if (cmpxchg(&region->owner_pid, NULL, pid))
		put_pid(pid);		/* another thread of it was first */
}

/* Module parameters. */
extern unsigned long kalloc_max_pages;
extern unsigned long kalloc_max_region_pages;
extern unsigned long kalloc_max_user_pages;
extern unsigned long kalloc_max_user_regions;
extern unsigned int kalloc_fault_around;
extern bool kalloc_lock_stat;

/*
 * What every fault counts, per CPU: a global atomic written by every fault
 * would bounce one cache line between all the CPUs that fault.  Summed
 * when /proc/kalloc is read.
 */
struct kalloc_fault_stats {
	unsigned long faults;
	unsigned long vma_locked;	/* served under the per-VMA lock */
	unsigned long lock_waits;	/* faults that found region->lock taken */
	u64 lock_wait_ns;		/* and how long they waited for it */
	unsigned long lock_holds;	/* faults timed holding it (lock_stat) */
	u64 lock_hold_ns;		/* and how long they held it */
};

/*
 * Totals over every region, shown by /proc/kalloc and checked at unload.
 * The resident counts are the limit's (max_pages), which needs an exact
 * sum: one atomic step per allocated block, not per fault, in one cache
 * line with high_water, which moves with them.
 */
struct kalloc_totals {
	atomic_long_t regions;
	atomic_long_t resident[3];	/* indexed by enum kalloc_backing */
	atomic_long_t releases;
	atomic_long_t high_water;
	/* per CPU, nr_node_ids entries: see kalloc_node_resident() */
	long __percpu *node_resident;
	struct kalloc_fault_stats __percpu *fault_stats;
} ____cacheline_aligned;

extern struct kalloc_totals kalloc_totals;

void kalloc_fault_stats_sum(struct kalloc_fault_stats *sum);
long kalloc_node_resident(int nid);

/* region.c */
int kalloc_totals_init(void);
void kalloc_totals_exit(void);
unsigned long kalloc_resident_total(void);
struct kalloc_region *kalloc_region_create(const struct kalloc_create *args);
struct kalloc_region *kalloc_region_fork(struct kalloc_region *parent,
					 struct mm_struct *child_mm);
void kalloc_region_get(struct kalloc_region *region);
void kalloc_region_put(struct kalloc_region *region);
void kalloc_region_mapped(struct kalloc_region *region);
bool kalloc_region_unmapped(struct kalloc_region *region);
void kalloc_region_owner_gone(struct kalloc_region *region);
int kalloc_region_release(struct kalloc_region *region, unsigned long first,
			  unsigned long nr);
void kalloc_region_info(struct kalloc_region *region, struct kalloc_info *info);
unsigned long kalloc_region_pmd_pages(struct kalloc_region *region);
void kalloc_region_publish(struct kalloc_region *region);
struct page *kalloc_region_page(struct kalloc_region *region,
				unsigned long index);

/* Whose memcg __GFP_ACCOUNT charges meanwhile: see kalloc_charge_begin(). */
struct kalloc_charge {
	struct mem_cgroup *memcg;
	struct mem_cgroup *old;
};

/*
 * Pages a fault allocated for a PAGES region before taking region->lock:
 * up to one block per page of the fault's window.  A block is 2^order
 * pages starting at index first; it may reach past the window (the
 * region's order-N block around a smaller window).
 */
struct kalloc_fill {
	unsigned int nr;
	bool charging;			/* the owner's memcg is active */
	bool failed;			/* no memory for the faulting page */
	struct kalloc_fill_block {
		struct page *page;
		u32 first;		/* a region has under 2^32 pages */
		u32 order;
	} block[KALLOC_FAULT_AROUND_MAX];
	struct kalloc_charge charge;	/* while charging */
};

void kalloc_fill_alloc(struct kalloc_region *region, struct kalloc_fill *fill,
		       unsigned long first, unsigned long last,
		       unsigned long index, unsigned int window_order);
void kalloc_fill_publish(struct kalloc_region *region, struct kalloc_fill *fill);
void kalloc_fill_discard(struct kalloc_region *region, struct kalloc_fill *fill);
struct kalloc_region *kalloc_region_next_listed(unsigned long *index);

void kalloc_unclaim_pages(struct kalloc_user *user, u32 backing,
			  unsigned long nr);

/* pinned.c */
bool kalloc_pinned_keep(struct kalloc_region *region, struct page *page);
bool kalloc_pinned_reap(struct kalloc_user *user, bool everyone);
unsigned long kalloc_pinned_pages(void);
void kalloc_pinned_exit(void);

/* device.c */
struct kalloc_region *kalloc_file_region(struct kalloc_file *kfile,
					 struct mm_struct *mm, u32 id);
struct kalloc_region *kalloc_file_fork_region(struct kalloc_file *kfile,
					      struct kalloc_region *parent,
					      struct mm_struct *child_mm);
void kalloc_file_prune(struct kalloc_file *kfile);
struct kalloc_space *kalloc_file_space(struct kalloc_file *kfile,
				       struct mm_struct *mm);

/* owner.c */
struct kalloc_owner;
int kalloc_owner_init(void);
void kalloc_owner_watch(struct file *file);
void kalloc_owner_watch_unmapped(struct vm_area_struct *vma,
				 struct kalloc_region *region);
void kalloc_owner_unwatch(struct kalloc_space *space);
void kalloc_owner_exit(void);

/* user.c */
struct seq_file;
struct kalloc_user *kalloc_user_current(void);
bool kalloc_user_add_region(struct kalloc_user *user, bool limited);
void kalloc_user_remove_region(struct kalloc_user *user);
void kalloc_user_hold(struct kalloc_user *user);
void kalloc_user_put(struct kalloc_user *user);
bool kalloc_user_charge(struct kalloc_user *user, unsigned long nr,
			bool limited);
void kalloc_user_uncharge(struct kalloc_user *user, unsigned long nr);
void kalloc_users_show(struct seq_file *m);

/* fault.c */
int kalloc_mmap(struct file *file, struct vm_area_struct *vma);
unsigned long kalloc_get_unmapped_area(struct file *file, unsigned long addr,
				       unsigned long len, unsigned long pgoff,
				       unsigned long flags);
void kalloc_lock_own_vmas(struct kalloc_region *region);
void kalloc_zap_own_mappings(struct kalloc_region *region, unsigned long first,
			     unsigned long nr);

/* proc.c */
int kalloc_proc_init(void);
void kalloc_proc_exit(void);

#endif /* _KALLOC_H */
