// SPDX-License-Identifier: GPL-2.0
/*
 * Regions and their backings.
 *
 * What a region allocates, and why:
 *
 *   backing  when            what                          gfp
 *   -------  --------------  ----------------------------  --------------------------
 *   VMALLOC  at create       order-0 pages, vmap()ed into  KALLOC_FILL_GFP
 *                            one vmalloc-space area
 *   PAGES    on first touch  the fault-around window as    KALLOC_BLOCK_GFP
 *                            one block, when it is larger
 *                            than order N and all empty
 *   PAGES    on first touch  the region's order-N block    KALLOC_BLOCK_GFP
 *                            when the whole block is empty
 *   PAGES    on first touch  else (or if the block fails)  KALLOC_PAGE_GFP
 *                            a single page
 *
 * Every allocation is zeroed (a process never sees old contents), charged
 * to the memory cgroup of the region's owner (see kalloc_charge_begin()),
 * and taken from the region's node alone when one was named
 * (__GFP_THISNODE).
 *
 * Every page a region holds is claimed first against the global max_pages
 * and its user's max_user_pages (user.c).  While a vma maps the region,
 * the pages it maps count in the owner's RSS as vm_insert_page() counts
 * them (MM_FILEPAGES); while none does, all its resident pages count in
 * the owner's MM_SHMEMPAGES (kalloc_region_unmapped()): the OOM killer's
 * badness (get_mm_rss()) then sees whoever holds kalloc memory, even in
 * regions that no vma maps any more, and a mapped page is not counted
 * twice (VmRSS would read double).
 *
 * A block of order N > 0 is tried once without reclaim or retry, as the
 * dma-buf system heap does: on a fragmented machine a fault must not stall
 * compacting memory for a large block when single pages serve as well.  A
 * single page may reclaim and, under a memcg limit, OOM-kill: that is what
 * anonymous memory does too.  A VMALLOC region is filled at create, where
 * failing with ENOMEM is better than OOM-killing: it may reclaim but gives
 * up rather than invoke the OOM killer (__GFP_RETRY_MAYFAIL).
 *
 * A fault allocates before it takes region->lock, and publishes what it
 * allocated under the lock held shared, slot by slot with xa_cmpxchg():
 * faults of one region allocate and zero in parallel, and when two faults
 * race for one slot the loser frees its page (see kalloc_fill_publish()).
 *
 * Blocks are split at once so that each page carries its own reference:
 * a partial RELEASE then frees exactly the released pages, and
 * vm_insert_pages() accepts every one of them.  The one exception is the
 * order-9 block of a region of that order (kalloc_region_maps_pmds()): it
 * stays one compound page, so that one PMD entry can map it (fault.c).
 * It is the region's whole or not at all: published into its 512 slots
 * at once (kalloc_publish_compound()), freed at once when RELEASE covers
 * all of it, zeroed in place when RELEASE covers only part (a PMD maps
 * the whole block; it cannot lose single pages), copied whole by fork.
 *
 * VMALLOC builds its area from its own pages with vmap() rather than with
 * vmalloc: the exported vmalloc_node() neither charges a memcg nor binds a
 * node strictly, and __vmalloc_node() is not exported.  The area keeps the
 * region contiguous for the kernel (a fork copies it with one memcpy) and
 * the fault handler finds its pages with vmalloc_to_page().  A VMALLOC
 * region is allocated whole by definition, so RELEASE zeroes its pages in
 * place rather than freeing them.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/highmem.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/user_namespace.h>
#include <linux/vmalloc.h>
#include "kalloc.h"

#define KALLOC_PAGE_GFP		(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN)
#define KALLOC_BLOCK_GFP	(KALLOC_PAGE_GFP | __GFP_NORETRY)
#define KALLOC_FILL_GFP		(KALLOC_PAGE_GFP | __GFP_RETRY_MAYFAIL)

struct kalloc_totals kalloc_totals;

/*
 * Every published region, for /proc/kalloc, by an index handed out
 * cyclically so that a reader's cursor only moves forward.  Readers walk
 * it under RCU and pin a region with kref_get_unless_zero(): neither
 * CREATE nor the last put ever waits for a reader.
 */
static DEFINE_XARRAY_ALLOC(kalloc_regions);
static u32 kalloc_regions_next;

int kalloc_totals_init(void)
{
	kalloc_totals.node_resident = __alloc_percpu(nr_node_ids * sizeof(long),
						     __alignof__(long));
	kalloc_totals.fault_stats = alloc_percpu(struct kalloc_fault_stats);
	if (!kalloc_totals.node_resident || !kalloc_totals.fault_stats) {
		kalloc_totals_exit();
		return -ENOMEM;
	}
	return 0;
}

void kalloc_totals_exit(void)
{
	free_percpu(kalloc_totals.fault_stats);
	kalloc_totals.fault_stats = NULL;
	free_percpu(kalloc_totals.node_resident);
	kalloc_totals.node_resident = NULL;
}

/* Pages resident on node @nid, summed over the CPUs that counted them. */
long kalloc_node_resident(int nid)
{
	long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += READ_ONCE(*per_cpu_ptr(kalloc_totals.node_resident + nid, cpu));
	return sum;
}

void kalloc_fault_stats_sum(struct kalloc_fault_stats *sum)
{
	int cpu;

	memset(sum, 0, sizeof(*sum));
	for_each_possible_cpu(cpu) {
		struct kalloc_fault_stats *s;

		s = per_cpu_ptr(kalloc_totals.fault_stats, cpu);
		sum->faults += READ_ONCE(s->faults);
		sum->vma_locked += READ_ONCE(s->vma_locked);
		sum->lock_waits += READ_ONCE(s->lock_waits);
		sum->lock_wait_ns += READ_ONCE(s->lock_wait_ns);
		sum->lock_holds += READ_ONCE(s->lock_holds);
		sum->lock_hold_ns += READ_ONCE(s->lock_hold_ns);
	}
}

unsigned long kalloc_resident_total(void)
{
	return atomic_long_read(&kalloc_totals.resident[KALLOC_BACKING_VMALLOC]) +
	       atomic_long_read(&kalloc_totals.resident[KALLOC_BACKING_PAGES]);
}

/*
 * Claim @nr pages against max_pages and the region's user's limit before
 * allocating them.  The sum of the claims is the resident total, so the
 * check and the count are one atomic operation and racing faults cannot
 * overshoot the limit.
 */
static bool kalloc_claim(struct kalloc_region *region, unsigned long nr)
{
	atomic_long_t *counter = &kalloc_totals.resident[region->backing];
	unsigned long max = READ_ONCE(kalloc_max_pages);
	unsigned long total, high;
	bool reaped = false, everyone = false;

again:
	if (!kalloc_user_charge(region->user, nr, region->limited))
		goto full;
	atomic_long_add(nr, counter);
	total = kalloc_resident_total();
	if (max && total > max) {
		atomic_long_sub(nr, counter);
		kalloc_user_uncharge(region->user, nr);
		everyone = true;
		goto full;
	}
	high = atomic_long_read(&kalloc_totals.high_water);
	while (total > high &&
	       !atomic_long_try_cmpxchg(&kalloc_totals.high_water, &high, total))
		;
	return true;

full:
	/* the user's pages still claimed that their holders let go of since */
	if (!reaped && kalloc_pinned_reap(region->user, everyone)) {
		reaped = true;
		goto again;
	}
	return false;
}

/* Give back @nr pages that a region of @backing claimed for @user. */
void kalloc_unclaim_pages(struct kalloc_user *user, u32 backing,
			  unsigned long nr)
{
	atomic_long_sub(nr, &kalloc_totals.resident[backing]);
	kalloc_user_uncharge(user, nr);
}

static void kalloc_unclaim(struct kalloc_region *region, unsigned long nr)
{
	kalloc_unclaim_pages(region->user, region->backing, nr);
}

/* The owner's MM_SHMEMPAGES holds @nr pages more (or fewer) of @region. */
static void kalloc_rss_count(struct kalloc_region *region, long nr)
{
	if (!region->mm || !nr)
		return;
	region->rss_counted += nr;
	kalloc_mm_counter_add(region->mm, MM_SHMEMPAGES, nr);
}

/*
 * Count @nr claimed pages, all on @page's node, as the region's, and, while
 * no vma maps it, as its owner's for the OOM killer.  The region holds its
 * mm with mmgrab(): the counters live until the last mmdrop(), which checks
 * they are back to zero.  The mapping count cannot change meanwhile: it
 * changes under region->lock held exclusive, and a caller either holds the
 * lock (a fault shared: then a vma maps the region and nothing goes to
 * MM_SHMEMPAGES; RELEASE exclusive), or the region is not published yet,
 * or it is being freed (no mapping then).
 */
static void kalloc_account(struct kalloc_region *region, struct page *page,
			   long nr)
{
	int nid = page_to_nid(page);

	atomic_long_add(nr, &region->resident);
	if (nid < KALLOC_MAX_NODES)
		atomic_long_add(nr, &region->resident_node[nid]);
	this_cpu_add(*(kalloc_totals.node_resident + nid), nr);
	if (!atomic_read(&region->mappings))
		kalloc_rss_count(region, nr);
}

/*
 * A vma maps @region (mmap, a split, a fork's ->open): on the first, its
 * pages leave MM_SHMEMPAGES, since the mapped ones count in MM_FILEPAGES
 * from now on.  The mapping count changes under region->lock held
 * exclusive so that kalloc_account() sees it settled.  Process context,
 * mmap_lock held.
 */
void kalloc_region_mapped(struct kalloc_region *region)
{
	down_write(&region->lock);
	if (atomic_inc_return(&region->mappings) == 1)
		kalloc_rss_count(region, -(long)region->rss_counted);
	up_write(&region->lock);
}

static void kalloc_backing_free(struct kalloc_region *region, bool mapped_too);

/*
 * A vma of @region is gone: after the last, all its pages count again, or,
 * when its owner has exited meanwhile, go back (kalloc_region_owner_gone()).
 * True if that was the last and the region still holds pages.
 */
bool kalloc_region_unmapped(struct kalloc_region *region)
{
	bool held = false;

	down_write(&region->lock);
	if (atomic_dec_and_test(&region->mappings)) {
		kalloc_rss_count(region, atomic_long_read(&region->resident));
		if (region->owner_exited)
			kalloc_backing_free(region, true);
		held = atomic_long_read(&region->resident) > 0;
	}
	up_write(&region->lock);
	return held;
}

/*
 * Whose memory cgroup pays: the owner's, as anonymous memory is charged
 * to the memcg of the mm it belongs to, whichever task faults it in
 * (another process through process_vm_writev(), /proc/PID/mem or ptrace).
 * Until kalloc_charge_end(), __GFP_ACCOUNT allocations of this task are
 * charged to @mm's memcg, and its limit and OOM handling apply.  A fork
 * copy is charged to the parent's, as fork charges the anonymous pages it
 * copies to the parent's mm.
 */
static void kalloc_charge_begin(struct kalloc_charge *charge,
				struct mm_struct *mm)
{
	charge->memcg = get_mem_cgroup_from_mm(mm);
	charge->old = set_active_memcg(charge->memcg);
}

static void kalloc_charge_end(struct kalloc_charge *charge)
{
	set_active_memcg(charge->old);
	mem_cgroup_put(charge->memcg);
}

/*
 * A block of @region that stays one compound page, for a PMD mapping:
 * the region's own order-9 blocks (see kalloc_region_maps_pmds()).
 */
static bool kalloc_block_is_compound(struct kalloc_region *region,
				     unsigned int order)
{
	return region->pmd && order == KALLOC_PMD_ORDER;
}

/*
 * Allocate 2^order claimed, zeroed pages for @region, not yet counted as
 * the region's: a fault counts them only once they are in their slots
 * (kalloc_fill_publish()), so that a region never shows more resident
 * pages than it has, even while racing faults hold spares.  The block is
 * split, except a PMD block, which stays one compound page whose index is
 * its offset in the file, as a page cache folio's is.
 */
static struct page *kalloc_alloc_claimed(struct kalloc_region *region, int nid,
					 unsigned int order, gfp_t gfp,
					 unsigned long first)
{
	bool compound = kalloc_block_is_compound(region, order);
	struct page *page;

	if (!kalloc_claim(region, 1UL << order))
		return NULL;
	if (region->node != KALLOC_NODE_LOCAL)
		gfp |= __GFP_THISNODE;
	if (compound)
		gfp |= __GFP_COMP;
	page = alloc_pages_node(nid, gfp, order);
	if (!page) {
		kalloc_unclaim(region, 1UL << order);
		return NULL;
	}
	if (compound)
		page->index = region->pgoff + first;
	else if (order)
		split_page(page, order);
	return page;
}

/*
 * Free a page or a compound block of kalloc_alloc_claimed() that was
 * never counted.  A mapping or a GUP pin may still hold a reference: the
 * page goes back to the buddy allocator with the last one.
 */
static void kalloc_free_claimed(struct kalloc_region *region, struct page *page)
{
	unsigned int order = compound_order(page);

	kalloc_unclaim(region, 1UL << order);
	__free_pages(page, order);
}

/* Allocate 2^order claimed, accounted, zeroed pages for @region. */
static struct page *kalloc_alloc(struct kalloc_region *region, int nid,
				 unsigned int order, gfp_t gfp,
				 unsigned long first)
{
	struct page *page = kalloc_alloc_claimed(region, nid, order, gfp, first);

	if (page)
		kalloc_account(region, page, 1L << order);
	return page;
}

/*
 * Free a page, or a compound block given by its head, of @region, which no
 * page table maps any more.  One that someone else still holds (a pipe,
 * I/O in flight) stays claimed until they let go: see pinned.c.
 */
static void kalloc_free_page(struct kalloc_region *region, struct page *page)
{
	kalloc_account(region, page, -(1L << compound_order(page)));
	if (!kalloc_pinned_keep(region, page))
		kalloc_free_claimed(region, page);
}

static int kalloc_region_nid(struct kalloc_region *region)
{
	return region->node == KALLOC_NODE_LOCAL ? numa_node_id() : region->node;
}

/* Fill a VMALLOC region whole, charged to @payer's memcg. */
static int kalloc_vmalloc_fill(struct kalloc_region *region,
			       struct mm_struct *payer)
{
	int nid = kalloc_region_nid(region);
	struct kalloc_charge charge;
	unsigned long i;
	int err = 0;

	kalloc_charge_begin(&charge, payer);
	region->vpages = kvcalloc(region->nr_pages, sizeof(*region->vpages),
				  GFP_KERNEL_ACCOUNT);
	if (!region->vpages)
		err = -ENOMEM;
	for (i = 0; !err && i < region->nr_pages; i++) {
		if (fatal_signal_pending(current)) {
			err = -EINTR;
			break;
		}
		region->vpages[i] = kalloc_alloc(region, nid, 0,
						 KALLOC_FILL_GFP, i);
		if (!region->vpages[i])
			err = -ENOMEM;
		cond_resched();
	}
	kalloc_charge_end(&charge);
	if (err)
		return err;
	region->vaddr = vmap(region->vpages, region->nr_pages, VM_MAP,
			     PAGE_KERNEL);
	return region->vaddr ? 0 : -ENOMEM;
}

/*
 * Free @region's pages; again, it finds none (see owner.c).  Without
 * @mapped_too only those that no page table maps (the region's reference
 * is their only one), for a region whose owner has exited while a vma
 * still maps it: they go now, as no fault can map them any more, while the
 * OOM killer still counts their owner, and the others as the last vma
 * closes (kalloc_region_owner_gone()).  A VMALLOC region's area goes first
 * either way: the region has no more use for it.
 */
static void kalloc_backing_free(struct kalloc_region *region, bool mapped_too)
{
	unsigned long i, j, next = 0;
	struct page *page;

	if (region->backing == KALLOC_BACKING_VMALLOC) {
		if (region->vaddr)
			vunmap(region->vaddr);
		region->vaddr = NULL;
		for (i = 0; region->vpages && i < region->nr_pages; i++) {
			page = region->vpages[i];
			if (page && (mapped_too || page_count(page) == 1)) {
				kalloc_free_page(region, page);
				region->vpages[i] = NULL;
			}
			cond_resched();
		}
		if (mapped_too) {
			kvfree(region->vpages);
			region->vpages = NULL;
		}
		return;
	}
	/*
	 * A compound block fills all its slots and is freed at its head (the
	 * lowest): its tails are stepped over, as once the block is freed
	 * they are no longer tails.
	 */
	xa_for_each(&region->pages, i, page) {
		if (i < next)
			continue;
		next = i + (1UL << compound_order(page));
		if (!mapped_too) {
			if (page_count(page) != 1)
				continue;
			for (j = i; j < next; j++)
				xa_erase(&region->pages, j);
		}
		kalloc_free_page(region, page);
		cond_resched();
	}
	if (mapped_too)
		xa_destroy(&region->pages);
}

/*
 * @region's owner has exited (owner.c): no task can fault it or name it
 * any more.  Its pages go back now if no vma maps it, else those that no
 * page table maps now and the others as the last of the dying mm's vmas
 * closes (kalloc_region_unmapped()), a moment later, once exit_mmap() has
 * zapped them: a page still mapped could not be told from one that
 * someone else holds (see pinned.c), and would escape the limits with the
 * next vmsplice().  The region stays, empty and broken (a fault, were
 * there one, would get SIGBUS), until its vmas and its space let go of it.
 */
void kalloc_region_owner_gone(struct kalloc_region *region)
{
	down_write(&region->lock);
	region->broken = true;
	region->owner_exited = true;
	kalloc_backing_free(region, !atomic_read(&region->mappings));
	up_write(&region->lock);
}

static struct kalloc_region *kalloc_region_alloc(void)
{
	struct kalloc_region *region;

	region = kzalloc(sizeof(*region), GFP_KERNEL_ACCOUNT);
	if (!region)
		return NULL;
	kref_init(&region->ref);
	init_rwsem(&region->lock);
	xa_init(&region->pages);
	atomic_long_inc(&kalloc_totals.regions);
	return region;
}

/*
 * Show @region in /proc/kalloc, once its id is set.  A region that cannot
 * be listed (no memory for an xarray node) works all the same, unlisted.
 */
void kalloc_region_publish(struct kalloc_region *region)
{
	region->listed = xa_alloc_cyclic(&kalloc_regions, &region->list_index,
					 region, xa_limit_32b,
					 &kalloc_regions_next, GFP_KERNEL) >= 0;
}

/*
 * The first listed region at *@index or after, pinned for the caller (who
 * puts it), with *@index set to its index; NULL at the end.  Regions whose
 * last reference is already gone are stepped over.
 */
struct kalloc_region *kalloc_region_next_listed(unsigned long *index)
{
	struct kalloc_region *region;

	rcu_read_lock();
	for (;;) {
		region = xa_find(&kalloc_regions, index, ULONG_MAX, XA_PRESENT);
		if (!region || kref_get_unless_zero(&region->ref))
			break;
		(*index)++;
	}
	rcu_read_unlock();
	return region;
}

static void kalloc_region_free(struct kref *ref)
{
	struct kalloc_region *region = container_of(ref, struct kalloc_region, ref);

	if (region->listed)
		xa_erase(&kalloc_regions, region->list_index);
	kalloc_backing_free(region, true);
	if (region->user) {
		kalloc_user_remove_region(region->user);
		kalloc_user_put(region->user);
	}
	if (region->mm)
		mmdrop(region->mm);
	put_pid(region->owner_pid);
	atomic_long_dec(&kalloc_totals.regions);
	/* a /proc/kalloc reader may have found it just before the erase */
	kfree_rcu(region, rcu);
}

void kalloc_region_get(struct kalloc_region *region)
{
	kref_get(&region->ref);
}

void kalloc_region_put(struct kalloc_region *region)
{
	kref_put(&region->ref, kalloc_region_free);
}

static int kalloc_check_create(const struct kalloc_create *args)
{
	unsigned long nr_pages;

	if (args->flags || args->id || args->offset)
		return -EINVAL;
	if (!args->size || args->size > (1ULL << KALLOC_REGION_WINDOW_SHIFT))
		return -EINVAL;
	nr_pages = PAGE_ALIGN(args->size) >> PAGE_SHIFT;
	switch (args->backing) {
	case KALLOC_BACKING_VMALLOC:
		if (args->order)
			return -EINVAL;
		if (nr_pages > totalram_pages())
			return -ENOMEM;
		break;
	case KALLOC_BACKING_PAGES:
		if (args->order > KALLOC_MAX_PAGE_ORDER)
			return -EINVAL;
		if (nr_pages & ((1UL << args->order) - 1))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (args->node != KALLOC_NODE_LOCAL &&
	    (args->node < 0 || args->node >= MAX_NUMNODES ||
	     !node_state(args->node, N_MEMORY)))
		return -EINVAL;
	if (kalloc_max_region_pages && nr_pages > kalloc_max_region_pages)
		return -ENOMEM;
	return 0;
}

/*
 * A new region for the calling process, described by @args (checked here).
 * The caller gives it an id and then publishes it.
 */
struct kalloc_region *kalloc_region_create(const struct kalloc_create *args)
{
	struct kalloc_region *region;
	struct kalloc_user *user;
	int err;

	err = kalloc_check_create(args);
	if (err)
		return ERR_PTR(err);
	region = kalloc_region_alloc();
	if (!region)
		return ERR_PTR(-ENOMEM);
	region->backing = args->backing;
	region->order = args->order;
	region->pmd = kalloc_region_maps_pmds(region);
	region->node = args->node;
	region->nr_pages = PAGE_ALIGN(args->size) >> PAGE_SHIFT;
	mmgrab(current->mm);
	region->mm = current->mm;
	region->owner_pid = get_pid(task_tgid(current));
	region->uid = current_euid();
	/* noaudit: asked at every CREATE, and "no" is the common answer */
	region->limited = !ns_capable_noaudit(&init_user_ns, CAP_SYS_RESOURCE);
	user = kalloc_user_current();
	if (!user) {
		kalloc_region_put(region);
		return ERR_PTR(-ENOMEM);
	}
	if (!kalloc_user_add_region(user, region->limited)) {
		kalloc_user_put(user);
		kalloc_region_put(region);
		return ERR_PTR(-ENOMEM);
	}
	region->user = user;
	get_task_comm(region->comm, current);
	if (region->backing == KALLOC_BACKING_VMALLOC) {
		err = kalloc_vmalloc_fill(region, region->mm);
		if (err) {
			kalloc_region_put(region);
			return ERR_PTR(err);
		}
	}
	return region;
}

/*
 * Put the compound block @head in its slots from @first, all of them or
 * none: a PMD maps the whole block, so the whole block must be the
 * region's.  The xarray's nodes for the range are made first (the lock
 * is dropped to allocate them), then, in one hold of the lock, the slots
 * are checked empty and filled, so no other fault's page can land among
 * them.  0, or -EEXIST when a slot was taken meanwhile, or -ENOMEM.
 */
static int kalloc_publish_compound(struct kalloc_region *region,
				   unsigned long first, struct page *head)
{
	unsigned int order = compound_order(head);
	unsigned long last = first + (1UL << order) - 1, j;
	XA_STATE_ORDER(xas, &region->pages, first, order);
	XA_STATE(probe, &region->pages, first);
	bool taken;

	do {
		xas_lock(&xas);
		xas_set(&probe, first);
		taken = xas_find(&probe, last);
		if (!taken) {
			xas_create_range(&xas);
			for (j = 0; !xas_error(&xas) && first + j <= last; j++) {
				xas_store(&xas, head + j);
				xas_next(&xas);
			}
		}
		xas_unlock(&xas);
	} while (!taken && xas_nomem(&xas, GFP_KERNEL_ACCOUNT));
	if (taken) {
		/* frees a node allocated by an earlier round, if any */
		xas_nomem(&xas, GFP_KERNEL_ACCOUNT);
		return -EEXIST;
	}
	return xas_error(&xas);
}

/* Copy one page of a parent region into slot @index of @copy. */
static int kalloc_copy_page(struct kalloc_region *copy, unsigned long index,
			    struct page *page)
{
	struct page *new;
	int err;

	new = kalloc_alloc(copy, page_to_nid(page), 0,
			   KALLOC_PAGE_GFP & ~__GFP_ZERO, index);
	if (!new)
		return -ENOMEM;
	copy_highpage(new, page);
	err = xa_err(xa_store(&copy->pages, index, new, GFP_KERNEL_ACCOUNT));
	if (err)
		kalloc_free_page(copy, new);
	return err;
}

/*
 * Copy @page, a single page or a compound block (by its head) at slot
 * @index, into @copy.  A block is copied into a block, so that the
 * child's copy maps by PMD as the parent's did; if none can be had, it is
 * copied page by page.
 */
static int kalloc_copy_block(struct kalloc_region *copy, unsigned long index,
			     struct page *page)
{
	unsigned int order = compound_order(page);
	unsigned long j, nr = 1UL << order;
	struct page *new = NULL;
	int err = 0;

	if (order)
		new = kalloc_alloc(copy, page_to_nid(page), order,
				   KALLOC_BLOCK_GFP & ~__GFP_ZERO, index);
	if (new) {
		for (j = 0; j < nr; j++)
			copy_highpage(new + j, page + j);
		err = kalloc_publish_compound(copy, index, new);
		if (err)
			kalloc_free_page(copy, new);
		return err;
	}
	for (j = 0; !err && j < nr; j++) {
		err = kalloc_copy_page(copy, index + j, page + j);
		cond_resched();
	}
	return err;
}

/*
 * Copy @parent's pages into @copy, a page at a time: the forking task
 * yields the CPU between pages and stops at a fatal signal (the fork then
 * fails, see kalloc_region_fork()).  Called with parent->lock held.
 */
static int kalloc_region_copy(struct kalloc_region *copy,
			      struct kalloc_region *parent)
{
	struct kalloc_charge charge;
	struct page *page;
	unsigned long i;
	int err = 0;

	if (parent->backing == KALLOC_BACKING_VMALLOC) {
		err = kalloc_vmalloc_fill(copy, parent->mm);
		for (i = 0; !err && i < parent->nr_pages; i++) {
			if (fatal_signal_pending(current))
				return -EINTR;
			copy_page(copy->vaddr + (i << PAGE_SHIFT),
				  parent->vaddr + (i << PAGE_SHIFT));
			cond_resched();
		}
		return err;
	}
	kalloc_charge_begin(&charge, parent->mm);
	xa_for_each(&parent->pages, i, page) {
		if (fatal_signal_pending(current)) {
			err = -EINTR;
			break;
		}
		/* a compound block is copied whole, at its head */
		if (!PageTail(page))
			err = kalloc_copy_block(copy, i, page);
		if (err)
			break;
		cond_resched();
	}
	kalloc_charge_end(&charge);
	return err;
}

/*
 * The child's own copy of @parent, made while fork duplicates a vma that
 * maps it: a write in either process never shows in the other.  The copy
 * is eager (one page allocated and copied per resident page) because ->open
 * cannot fail; if memory runs out the copy is marked broken and the child's
 * faults on it get SIGBUS.  If the forking task is killed meanwhile the
 * copy stops, broken too: that child never runs, as copy_process() fails
 * a fork with a fatal signal pending, and its teardown frees the copy.
 * The parent's lock is held exclusive across the copy: no fault of the
 * parent's adds a page the copy would miss.  The caller publishes it.
 *
 * The parent's own mappings of the region are zapped first.  Its other
 * threads run on during fork, and a page still mapped would be copied
 * while they write to it: the child would see a thread's later writes in
 * one page and not its earlier ones in another, which no program can
 * make sense of (liballoc's children found a block free and handed out
 * at once).  Zapped, and every vma of the region write-locked first
 * (kalloc_lock_own_vmas()), the threads' next touch faults and waits for
 * the fork, as a write to its anonymous memory, write-protected for
 * copy-on-write, does: the child sees each thread's writes up to a point,
 * none after, but for pages pinned for I/O, which anonymous memory does
 * not stop either.  The parent faults its pages back in after; until
 * then its RSS does not count them.  A process with one thread (whose
 * mm no one else holds) has nobody to stop, and keeps its mappings.
 */
struct kalloc_region *kalloc_region_fork(struct kalloc_region *parent,
					 struct mm_struct *child_mm)
{
	struct kalloc_region *copy;
	bool threads;

	copy = kalloc_region_alloc();
	if (!copy)
		return NULL;
	copy->id = parent->id;
	copy->backing = parent->backing;
	copy->order = parent->order;
	copy->pmd = parent->pmd;
	copy->node = parent->node;
	copy->nr_pages = parent->nr_pages;
	copy->pgoff = parent->pgoff;
	mmgrab(child_mm);
	copy->mm = child_mm;
	/* the child has no pid yet: its first fault or ioctl records it */
	copy->owner_pid = NULL;
	copy->uid = parent->uid;
	kalloc_user_hold(parent->user);
	kalloc_user_add_region(parent->user, false);
	copy->user = parent->user;
	copy->limited = parent->limited;
	memcpy(copy->comm, parent->comm, sizeof(copy->comm));

	/* dup_mmap() holds the forking mm's mmap_lock for writing */
	threads = parent->mm == current->mm &&
		  atomic_read(&parent->mm->mm_users) > 1;
	if (threads)
		kalloc_lock_own_vmas(parent);
	if (down_write_killable(&parent->lock)) {
		copy->broken = true;
		return copy;
	}
	if (threads)
		kalloc_zap_own_mappings(parent, 0, parent->nr_pages);
	if (parent->broken || kalloc_region_copy(copy, parent)) {
		kalloc_backing_free(copy, true);
		xa_init(&copy->pages);
		copy->vpages = NULL;
		copy->vaddr = NULL;
		copy->broken = true;
	}
	up_write(&parent->lock);
	return copy;
}

/* The owner's memcg pays for what a fault allocates: see kalloc_charge_begin(). */
static void kalloc_fill_charge(struct kalloc_region *region,
			       struct kalloc_fill *fill)
{
	if (fill->charging)
		return;
	kalloc_charge_begin(&fill->charge, region->mm);
	fill->charging = true;
}

static void kalloc_fill_uncharge(struct kalloc_fill *fill)
{
	if (!fill->charging)
		return;
	kalloc_charge_end(&fill->charge);
	fill->charging = false;
}

/* No page of [@first, @last] is resident (looked up without the lock). */
static bool kalloc_range_empty(struct kalloc_region *region,
			       unsigned long first, unsigned long last)
{
	unsigned long probe = first;

	return !xa_find(&region->pages, &probe, last, XA_PRESENT);
}

/* kalloc_fill_block.first holds a page index */
static_assert(KALLOC_REGION_WINDOW_SHIFT - PAGE_SHIFT <= 32);

/*
 * Allocate the aligned block of order @order that holds @index, when it
 * lies inside the region and none of it is resident, and add it to @fill.
 */
static bool kalloc_fill_block(struct kalloc_region *region,
			      struct kalloc_fill *fill, unsigned long index,
			      unsigned int order)
{
	unsigned long first = round_down(index, 1UL << order);
	unsigned long last = first + (1UL << order) - 1;
	struct kalloc_fill_block *block;
	struct page *page;

	if (last >= region->nr_pages ||
	    (order && !kalloc_range_empty(region, first, last)))
		return false;
	kalloc_fill_charge(region, fill);
	page = kalloc_alloc_claimed(region, kalloc_region_nid(region), order,
				    order ? KALLOC_BLOCK_GFP : KALLOC_PAGE_GFP,
				    first);
	if (!page)
		return false;
	block = &fill->block[fill->nr++];
	block->page = page;
	block->first = first;
	block->order = order;
	return true;
}

/*
 * Allocate, without region->lock, the pages that the fault at @index needs
 * to map its window [@first, @last) whole: the slots found empty.  What it
 * takes, in order of preference:
 *
 *   the window as one block, when @window_order is larger than the
 *   region's order and the whole window is empty: one allocation and one
 *   memcg charge instead of one per page, most of an order-0 region's
 *   first-touch cost;
 *   for each empty slot, the region's order-N block around it, when all of
 *   the block is empty (it may reach past the window);
 *   else a single page.
 *
 * The region's order still bounds what a touch demands of the allocator:
 * a larger block is tried once, never compacted for.  The pages stay
 * single pages for RELEASE and fork.  Allocation stops at the first slot
 * after @index that gets nothing; a slot before @index that gets nothing
 * only shortens the run the fault maps.  fill->failed: nothing for @index.
 */
void kalloc_fill_alloc(struct kalloc_region *region, struct kalloc_fill *fill,
		       unsigned long first, unsigned long last,
		       unsigned long index, unsigned int window_order)
{
	unsigned long i, covered = first;

	fill->nr = 0;
	fill->charging = false;
	fill->failed = false;
	if (window_order > region->order &&
	    kalloc_fill_block(region, fill, first, window_order))
		goto out;
	for (i = first; i < last; i++) {
		if (i < covered || xa_load(&region->pages, i))
			continue;
		if ((region->order && kalloc_fill_block(region, fill, i, region->order)) ||
		    kalloc_fill_block(region, fill, i, 0)) {
			covered = fill->block[fill->nr - 1].first +
				  (1UL << fill->block[fill->nr - 1].order);
			continue;
		}
		if (i == index)
			fill->failed = true;
		if (i >= index)
			break;
	}
out:
	/* the xarray's nodes are charged with the pages, at publish */
	if (!fill->nr)
		kalloc_fill_uncharge(fill);
}

/* Slots published per hold of the xarray's lock: it is a spinlock. */
#define KALLOC_PUBLISH_BATCH	64

/*
 * Put @fill's pages in their slots, with region->lock held shared: RELEASE
 * cannot run between this and the mapping of the pages.  A slot that
 * another fault filled first keeps that fault's page, and this one's is
 * freed; so is a page whose slot needed an xarray node that could not be
 * had (the fault then maps less, or retries).  The xarray's lock is taken
 * once per batch of slots, not once per slot: it is the one lock that
 * faults of different neighbourhoods share (__xa_cmpxchg() drops it only
 * to allocate a node).
 */
void kalloc_fill_publish(struct kalloc_region *region, struct kalloc_fill *fill)
{
	unsigned long j, end, nr;
	unsigned int b;

	for (b = 0; b < fill->nr; b++) {
		struct kalloc_fill_block *block = &fill->block[b];
		long published = 0;

		nr = 1UL << block->order;
		if (PageCompound(block->page)) {
			if (kalloc_publish_compound(region, block->first,
						    block->page))
				kalloc_free_claimed(region, block->page);
			else
				kalloc_account(region, block->page, nr);
			continue;
		}
		for (j = 0; j < nr; j = end) {
			end = min(nr, j + KALLOC_PUBLISH_BATCH);
			xa_lock(&region->pages);
			for (; j < end; j++) {
				struct page *old;

				old = __xa_cmpxchg(&region->pages,
						   block->first + j, NULL,
						   block->page + j,
						   GFP_KERNEL_ACCOUNT);
				if (old)
					kalloc_free_claimed(region,
							    block->page + j);
				else
					published++;
			}
			xa_unlock(&region->pages);
			cond_resched();
		}
		/* a block's pages share a node */
		kalloc_account(region, block->page, published);
	}
	fill->nr = 0;
	kalloc_fill_uncharge(fill);
}

/* A fault that does not publish (killed while waiting) frees its pages. */
void kalloc_fill_discard(struct kalloc_region *region, struct kalloc_fill *fill)
{
	unsigned int b;
	unsigned long j;

	for (b = 0; b < fill->nr; b++) {
		struct page *page = fill->block[b].page;

		if (PageCompound(page))
			kalloc_free_claimed(region, page);
		else
			for (j = 0; j < (1UL << fill->block[b].order); j++)
				kalloc_free_claimed(region, page + j);
		cond_resched();
	}
	fill->nr = 0;
	kalloc_fill_uncharge(fill);
}

/*
 * The page that backs @index of @region now, or NULL: a PAGES slot that is
 * empty.  Called with region->lock held.
 */
struct page *kalloc_region_page(struct kalloc_region *region,
				unsigned long index)
{
	if (region->backing == KALLOC_BACKING_VMALLOC)
		return vmalloc_to_page(region->vaddr + (index << PAGE_SHIFT));
	return xa_load(&region->pages, index);
}

/*
 * A fault of a vma that maps by PMD hands its page to the core mm, which
 * maps it after the fault has dropped region->lock (see fault.c); the
 * fault holds the page's lock until then.  With region->lock held
 * exclusive no fault can find a page any more, so taking and dropping the
 * lock of each page waits for every mapping still in flight: the zap that
 * follows then sees them all.
 */
static void kalloc_wait_for_mappers(struct kalloc_region *region,
				    unsigned long first, unsigned long nr)
{
	struct page *page, *locked = NULL;
	unsigned long i;

	xa_for_each_range(&region->pages, i, page, first, first + nr - 1) {
		/* a compound block has one lock, its head's */
		if (compound_head(page) == locked)
			continue;
		locked = compound_head(page);
		lock_page(page);
		unlock_page(page);
		cond_resched();
	}
}

/*
 * RELEASE the page at slot @index, inside [@first, @last]: free it, or,
 * for a compound block, free the block at its head when the range holds
 * all of it, and zero the page in place when it holds only part (a block
 * mapped by one PMD cannot lose single pages).  Returns the pages that
 * were handed back or zeroed.
 */
static unsigned long kalloc_release_page(struct kalloc_region *region,
					 unsigned long index, struct page *page,
					 unsigned long first, unsigned long last)
{
	struct page *head = compound_head(page);
	unsigned long block, nr, j;

	if (!PageCompound(page)) {
		xa_erase(&region->pages, index);
		kalloc_free_page(region, page);
		return 1;
	}
	nr = 1UL << compound_order(head);
	block = index - (page - head);
	if (block < first || block + nr - 1 > last) {
		clear_highpage(page);
		return 1;
	}
	/* the head comes first: its slot is the lowest, and in the range */
	for (j = 0; j < nr; j++)
		xa_erase(&region->pages, block + j);
	kalloc_free_page(region, head);
	return nr;
}

/*
 * Take pages [@first, @first + @nr) back: remove them from the owner's
 * mappings, then free them (PAGES; a compound block only when the range
 * holds all of it, see kalloc_release_page()) or zero them (VMALLOC).  The next touch
 * finds fresh zeroed memory.  Faults map pages under region->lock held
 * shared and RELEASE holds it exclusive from the zap to the free, so none
 * can be mapped again in between.  Called by the owner (current->mm ==
 * region->mm); its mmap_lock is taken for reading around the zap, before
 * region->lock as a fault takes them.
 */
int kalloc_region_release(struct kalloc_region *region, unsigned long first,
			  unsigned long nr)
{
	unsigned long i, released = 0;
	struct page *page;

	/* a fork copy that could not be made has nothing to release */
	if (region->broken)
		return -EIO;
	if (mmap_read_lock_killable(region->mm))
		return -EINTR;
	if (down_write_killable(&region->lock)) {
		mmap_read_unlock(region->mm);
		return -EINTR;
	}
	if (region->pmd)
		kalloc_wait_for_mappers(region, first, nr);
	kalloc_zap_own_mappings(region, first, nr);
	mmap_read_unlock(region->mm);
	if (region->backing == KALLOC_BACKING_VMALLOC) {
		for (i = first; i < first + nr; i++) {
			clear_page(region->vaddr + (i << PAGE_SHIFT));
			cond_resched();
		}
		released = nr;
	} else {
		xa_for_each_range(&region->pages, i, page, first, first + nr - 1) {
			released += kalloc_release_page(region, i, page, first,
							first + nr - 1);
			cond_resched();
		}
	}
	up_write(&region->lock);
	atomic_long_add(released, &region->releases);
	atomic_long_add(released, &kalloc_totals.releases);
	return 0;
}

/*
 * Pages of @region that PMD entries map now: the compound blocks that
 * have an entire mapping, each counted whole.  A count for /proc/kalloc,
 * not a snapshot, taken without region->lock (a reader of a world-
 * readable file must not hold up the owner's RELEASE or fork): under RCU
 * a slot's page may be freed meanwhile, but its struct page stays, and
 * the entire mapcount is read only while it is still a compound head.
 *
 * The walk visits the blocks that hold pages, not every 2 MiB of the
 * region: a sparse order-9 region may be a terabyte, and one look per
 * block of its size made every reader's walk take seconds.  A compound
 * block fills all its slots, so the first slot found in a block is its
 * head when the block is compound; a slot found past the block's start
 * (a block of single pages, or one that RELEASE or a fault is filling or
 * emptying now) is not counted: the block's first slot holds no head.
 */
unsigned long kalloc_region_pmd_pages(struct kalloc_region *region)
{
	const unsigned long block_pages = 1UL << KALLOC_PMD_ORDER;
	unsigned long index = 0, nr = 0;
	struct page *page;

	if (!region->pmd)
		return 0;
	for (;;) {
		rcu_read_lock();
		page = xa_find(&region->pages, &index, region->nr_pages - 1,
			       XA_PRESENT);
		if (page && IS_ALIGNED(index, block_pages) && PageHead(page) &&
		    kalloc_entire_mapcount(page) > 0)
			nr += block_pages;
		rcu_read_unlock();
		if (!page)
			break;
		index = round_down(index, block_pages) + block_pages;
		if (index >= region->nr_pages)
			break;
		cond_resched();
	}
	return nr;
}

/* Counters read one by one: a snapshot only when the region is idle. */
void kalloc_region_info(struct kalloc_region *region, struct kalloc_info *info)
{
	int nid;

	info->size = (u64)region->nr_pages << PAGE_SHIFT;
	info->backing = region->backing;
	info->order = region->order;
	info->node = region->node;
	info->mappings = atomic_read(&region->mappings);
	info->resident = atomic_long_read(&region->resident);
	info->faults = atomic_long_read(&region->faults);
	info->releases = atomic_long_read(&region->releases);
	for (nid = 0; nid < KALLOC_MAX_NODES; nid++)
		info->resident_node[nid] = atomic_long_read(&region->resident_node[nid]);
}
