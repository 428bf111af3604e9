// SPDX-License-Identifier: GPL-2.0
/*
 * Mapping regions and serving their faults.
 *
 * mmap() maps a region's window (MAP_SHARED only: a private mapping would
 * copy every written page into anonymous memory and the device would back
 * nothing).  A fault finds or allocates the pages of a whole neighbourhood
 * around the faulting address (fault_around pages, aligned) and maps them
 * in one batch with vm_insert_pages(), so touching memory in order takes
 * one fault per neighbourhood rather than one per page.
 *
 * Faults run in parallel.  What a fault does, and under which lock:
 *
 *   step                                     lock
 *   ---------------------------------------  ------------------------------
 *   find the empty slots of its window       none (the xarray under RCU)
 *   allocate, zero and charge their pages    none
 *   publish them (xa_cmpxchg per slot; a     region->lock shared
 *   slot filled meanwhile by another fault
 *   keeps that page, and this one is freed)
 *   look the window's pages up, map them     region->lock shared, and the
 *   with vm_insert_pages()                   page table's lock inside it
 *   free the pages that lost                 none
 *
 * RELEASE holds region->lock exclusive from the zap to the free, so a page
 * is never mapped once it has been handed back, and a fault never waits
 * behind another fault's allocation.  A fault waits for the lock killably:
 * a thread killed while RELEASE or a fork copy holds it leaves at once
 * (see kalloc_fault_lock()).
 *
 * The mmap_lock: on 6.1 every fault of a file vma runs under it (read).
 * 6.12 first tries a fault under the vma's own lock (lock_vma_under_rcu())
 * and calls ->fault there only for vmas whose ops have ->map_pages
 * (vmf_can_call_fault(): those are "audited not to need the mmap_lock");
 * otherwise it drops the vma lock and retries under mmap_lock, where the
 * fault contends with every mmap and munmap of the process.  kalloc's
 * fault needs no mmap_lock (vm_insert_pages() takes the page-table locks
 * itself, VM_MIXEDMAP is set at mmap, RELEASE excludes it by region->lock),
 * so it has a ->map_pages: kalloc_map_pages() maps nothing, since it runs
 * under rcu_read_lock() and may neither sleep nor allocate, and the only
 * ways a module has to set page-table entries (vm_insert_page*()) may
 * allocate a page table.  A read fault then goes on to ->fault, and
 * a write fault on a MAP_SHARED vma never calls ->map_pages.  6.1 calls
 * ->map_pages too, for read faults, at the cost of a page-table page
 * allocated and freed when the PMD was empty.
 *
 * 2 MiB mappings.  A region of order 9 (kalloc_region_maps_pmds()) keeps
 * each 2 MiB block as one compound page, and a vma of it whose address
 * lines up with its offset is mapped with one PMD entry per block: one
 * fault and one TLB entry per 2 MiB.  The kernel offers a module two ways
 * to set a PMD, and kalloc takes the second:
 *
 *   vmf_insert_pfn_pmd() from ->huge_fault: only for VM_PFNMAP vmas (a
 *   "special" entry: no struct page behind it for GUP, so no O_DIRECT,
 *   vmsplice or process_vm_readv, and no RSS) or for ZONE_DEVICE pages
 *   (pfn_t_devmap()); buddy pages are neither;
 *
 *   ->fault returns the compound page in vmf->page, and finish_fault()
 *   maps it with do_set_pmd(), the path shmem's huge pages take: the
 *   entry is a normal one, with the refcount, the file rmap and the
 *   MM_FILEPAGES count it takes, so GUP, smaps (FilePmdMapped), splits
 *   and zaps treat it as a page cache THP.  It needs a vma that is not
 *   VM_MIXEDMAP (zap_huge_pmd() and vm_normal_page_pmd() treat those as
 *   special), a PMD-suitable address (kalloc_get_unmapped_area()) and, on
 *   6.12, a file size past the block (the file's i_size is unbounded).
 *
 * In such a vma every fault goes that way (kalloc_fault_pmd()), and the
 * core mm decides per fault: a PMD where the whole block is the region's
 * compound page, inside the vma, with an empty PMD; else one 4 KiB PTE for
 * the faulting page alone (a block that fell back to single pages, the
 * vma's edges, a block whose PMD was split by a partial munmap or
 * mprotect: for a file page a split drops the whole PMD, and the pages
 * come back one fault each).  Those 4 KiB faults map one page each, not a
 * batch: a module cannot set PTEs itself in such a vma (vm_insert_pages()
 * would make it VM_MIXEDMAP).  RELEASE of a whole block frees it; of part
 * of one, zeroes those pages in place (region.c).  A vma that does not
 * line up, holds no whole block, or belongs to a process with THP
 * disabled is VM_MIXEDMAP and batched like any other.
 *
 * RELEASE zaps only the releasing process's own mappings of the region.
 * Every mapping of a file shares the file's offsets, and a forked child's
 * copy of region N (or another process's region N, with the fd passed)
 * sits at the same offsets as region N: unmap_mapping_range() over the
 * window would zap them all.  kalloc_zap_own_mappings() walks the owner's
 * vmas instead, and zaps those that map this region.
 *
 * Fork: dup_mmap() calls ->open on the child's vma and, unless the vma has
 * VM_WIPEONFORK, copies the page-table entries of a VM_MIXEDMAP mapping,
 * which would leave the child pointing at the parent's pages.  Every kalloc
 * vma carries VM_WIPEONFORK, which skips that copy, and ->open gives the
 * child its own copy of the region instead (see kalloc_region_fork()).
 * MADV_KEEPONFORK can take VM_WIPEONFORK off the parent's vma, and the
 * order of the two steps depends on the kernel: 6.12 and 6.1.191 and later
 * call ->open first (setting the flag there is in time), 6.1.95 to 6.1.190
 * copied the entries first.  So when the parent's vma lacked the flag,
 * ->open also zaps the child's vma whole: whichever order the kernel uses,
 * the child keeps no entry that maps a parent's page, and its first touch
 * faults in its own copy.  The copy zaps the parent's own mappings first,
 * so that its other threads wait for the fork rather than write to pages
 * being copied (kalloc_region_fork()).
 */
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include "kalloc.h"

static const struct vm_operations_struct kalloc_vm_ops;

static void kalloc_vm_open(struct vm_area_struct *vma)
{
	struct kalloc_region *region = vma->vm_private_data;

	if (!region)
		return;
	if (vma->vm_mm != region->mm) {
		/*
		 * fork: the child's mm is write-locked, the parent's too, as
		 * zapping the child's entries and setting its flags require.
		 * The child's vma has the parent's flags at this point.
		 */
		if (!(vma->vm_flags & VM_WIPEONFORK))
			kalloc_zap_vma_range(vma, vma->vm_start,
					     vma->vm_end - vma->vm_start);
		kalloc_vma_set_flags(vma, VM_WIPEONFORK);
		region = kalloc_file_fork_region(vma->vm_file->private_data,
						 region, vma->vm_mm);
		vma->vm_private_data = region;
		if (!region)
			return;
	} else {
		/* a split or a move within the same process */
		kalloc_region_get(region);
	}
	kalloc_region_mapped(region);
}

static void kalloc_vm_close(struct vm_area_struct *vma)
{
	struct kalloc_region *region = vma->vm_private_data;

	if (!region)
		return;
	/* pages held unmapped: the owner's exit must free them (owner.c) */
	if (kalloc_region_unmapped(region))
		kalloc_owner_watch_unmapped(vma, region);
	kalloc_region_put(region);
	/* exit_mmap(): the process is gone, and so are the regions it named */
	if (!atomic_read(&vma->vm_mm->mm_users))
		kalloc_file_prune(vma->vm_file->private_data);
}

/*
 * Map @n pages at @addr.  An entry already present (another thread's
 * fault won the race, or RELEASE left part of a neighbourhood mapped) is
 * skipped.  Fails only if the page at @must could not be mapped.
 */
static int kalloc_insert(struct vm_area_struct *vma, unsigned long addr,
			 struct page **pages, unsigned long n,
			 unsigned long must)
{
	while (n) {
		unsigned long left = n, done;
		int err = vm_insert_pages(vma, addr, pages, &left);

		if (!err)
			return 0;
		done = n - left;
		if (err != -EBUSY && addr + (done << PAGE_SHIFT) <= must)
			return err;
		if (err != -EBUSY)
			return 0;
		done++;
		pages += done;
		addr += done << PAGE_SHIFT;
		n -= done;
	}
	return 0;
}

/*
 * Take region->lock shared for a fault.  RELEASE or a fork copy may hold it
 * exclusive for a while (freeing or copying many pages); a fault that
 * may be retried waits killably and, killed, returns VM_FAULT_RETRY with
 * the fault's lock dropped, as filemap_fault() does for a page lock: the
 * arch fault handler then sees the fatal signal and returns to die.  A
 * caller that cannot retry (VM_FAULT_RETRY would break its lock protocol)
 * waits as before; one that must not sleep (RETRY_NOWAIT) gets
 * VM_FAULT_RETRY with the lock still held.  False: return VM_FAULT_RETRY,
 * after kalloc_fault_retry().
 */
static bool kalloc_fault_lock(struct vm_fault *vmf, struct kalloc_region *region)
{
	bool locked = true;
	u64 start;

	if (down_read_trylock(&region->lock))
		return true;
	if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT)
		return false;
	/* contended: the wait is counted, and timed (off the fast path) */
	start = ktime_get_ns();
	if (!(vmf->flags & FAULT_FLAG_ALLOW_RETRY) ||
	    !(vmf->flags & FAULT_FLAG_KILLABLE))
		down_read(&region->lock);
	else
		locked = !down_read_killable(&region->lock);
	this_cpu_inc(kalloc_totals.fault_stats->lock_waits);
	this_cpu_add(kalloc_totals.fault_stats->lock_wait_ns,
		     ktime_get_ns() - start);
	return locked;
}

/*
 * Before VM_FAULT_RETRY: drop the fault's lock, unless the caller asked
 * to keep it (RETRY_NOWAIT).  Last: the vma's reference may be all that
 * keeps the region alive, and once the fault's lock is gone a munmap can
 * drop it and free the region.  Nothing of the region may be touched
 * after this.
 */
static vm_fault_t kalloc_fault_retry(struct vm_fault *vmf)
{
	if (!(vmf->flags & FAULT_FLAG_RETRY_NOWAIT))
		kalloc_fault_unlock(vmf);
	return VM_FAULT_RETRY;
}

/*
 * What both faults do with the pages they allocated without the lock:
 * none for the faulting page is SIGBUS (the limit, the node, or no memory
 * at all) or, for a task being killed, VM_FAULT_OOM; then region->lock
 * is taken shared (or VM_FAULT_RETRY returned) and the pages published.
 * 0: the lock is held, *@held is the time the hold began (lock_stat) or 0.
 */
static vm_fault_t kalloc_fault_publish(struct vm_fault *vmf,
				       struct kalloc_region *region,
				       struct kalloc_fill *fill, u64 *held)
{
	if (fill->failed) {
		kalloc_fill_discard(region, fill);
		return fatal_signal_pending(current) ? VM_FAULT_OOM :
						       VM_FAULT_SIGBUS;
	}
	if (!kalloc_fault_lock(vmf, region)) {
		/* the pages go back while the region surely lives */
		kalloc_fill_discard(region, fill);
		return kalloc_fault_retry(vmf);
	}
	*held = unlikely(READ_ONCE(kalloc_lock_stat)) ? ktime_get_ns() : 0;
	kalloc_fill_publish(region, fill);
	return 0;
}

/* Drop region->lock after kalloc_fault_publish(), counting the hold. */
static void kalloc_fault_unpublish(struct kalloc_region *region, u64 held)
{
	if (held) {
		this_cpu_inc(kalloc_totals.fault_stats->lock_holds);
		this_cpu_add(kalloc_totals.fault_stats->lock_hold_ns,
			     ktime_get_ns() - held);
	}
	up_read(&region->lock);
}

/*
 * Take a reference to @page and its lock, for the core to map it.  The
 * lock is held only by another fault mapping the same block, or by
 * RELEASE checking for such faults, so the wait is short; still, a fault
 * that may be retried waits killably and one that must not sleep does
 * not wait, as for region->lock (kalloc_fault_lock()).  False: the caller
 * drops region->lock and the fault's lock and returns VM_FAULT_RETRY.
 */
static bool kalloc_fault_lock_page(struct vm_fault *vmf, struct page *page)
{
	struct folio *folio = page_folio(page);

	folio_get(folio);
	if (folio_trylock(folio))
		return true;
	if (!(vmf->flags & FAULT_FLAG_RETRY_NOWAIT)) {
		if (!(vmf->flags & FAULT_FLAG_ALLOW_RETRY) ||
		    !(vmf->flags & FAULT_FLAG_KILLABLE)) {
			folio_lock(folio);
			return true;
		}
		if (!folio_lock_killable(folio))
			return true;
	}
	folio_put(folio);
	return false;
}

/*
 * The fault of a vma that maps by PMD (see kalloc_mmap()): find or
 * allocate the faulting page as any fault does (in a region of the PMD
 * order, the whole 2 MiB block around it when it is all empty), and hand
 * it, referenced and locked, to the core mm, which maps it after we
 * return: finish_fault() maps its whole block with one PMD entry when the
 * page is part of an order-9 compound block and the PMD is empty and
 * inside the vma (do_set_pmd()), and only this page with a PTE otherwise
 * (the block fell back to single pages, a split left a page table, the
 * vma's edge cuts the block, THP is disabled for the process).  The page
 * is locked before region->lock is dropped: RELEASE takes each page's lock
 * before it zaps, so it waits for this mapping and then removes it (see
 * kalloc_wait_for_mappers()).
 */
static vm_fault_t kalloc_fault_pmd(struct vm_fault *vmf,
				   struct kalloc_region *region,
				   unsigned long index)
{
	struct kalloc_fill fill;
	struct page *page;
	vm_fault_t ret;
	u64 held;

	kalloc_fill_alloc(region, &fill, index, index + 1, index, 0);
	ret = kalloc_fault_publish(vmf, region, &fill, &held);
	if (ret)
		return ret;
	page = kalloc_region_page(region, index);
	if (page && !kalloc_fault_lock_page(vmf, page))
		ret = VM_FAULT_RETRY;
	kalloc_fault_unpublish(region, held);
	if (ret == VM_FAULT_RETRY)
		return kalloc_fault_retry(vmf);
	/* no page: RELEASE took it back between the fill and the lock */
	if (!page)
		return VM_FAULT_NOPAGE;
	/*
	 * A page with a memory error: __do_fault() would look for its
	 * mapping (it has none) to unmap it.  SIGBUS, as for a poisoned
	 * page cache page.
	 */
	if (unlikely(PageHWPoison(page))) {
		unlock_page(page);
		put_page(page);
		return VM_FAULT_HWPOISON;
	}
	vmf->page = page;
	return VM_FAULT_LOCKED;
}

static vm_fault_t kalloc_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct kalloc_region *region = vma->vm_private_data;
	struct page *pages[KALLOC_FAULT_AROUND_MAX];
	unsigned long around = READ_ONCE(kalloc_fault_around);
	unsigned long index, first, last, vma_first, i, n = 0;
	unsigned int window_order;
	struct kalloc_fill fill;
	vm_fault_t ret;
	int err = 0;
	u64 held;

	if (!region || region->broken)
		return VM_FAULT_SIGBUS;
	index = vmf->pgoff - region->pgoff;
	if (index >= region->nr_pages)
		return VM_FAULT_SIGBUS;
	kalloc_region_owner_seen(region);
	atomic_long_inc(&region->faults);
	this_cpu_inc(kalloc_totals.fault_stats->faults);
	if (kalloc_fault_vma_locked(vmf))
		this_cpu_inc(kalloc_totals.fault_stats->vma_locked);
	if (!(vma->vm_flags & VM_MIXEDMAP))
		return kalloc_fault_pmd(vmf, region, index);

	/* The aligned neighbourhood of @index, within the vma and the region. */
	vma_first = vma->vm_pgoff - region->pgoff;
	first = max(round_down(index, around), vma_first);
	last = min3(round_down(index, around) + around,
		    vma_first + vma_pages(vma), region->nr_pages);

	/* a window mapped whole may be allocated as one block */
	window_order = last - first == around ? ilog2(around) : 0;

	/* kalloc_fill_alloc() sets these for PAGES; publish reads them all */
	fill.nr = 0;
	fill.charging = false;
	fill.failed = false;
	if (region->backing == KALLOC_BACKING_PAGES)
		kalloc_fill_alloc(region, &fill, first, last, index,
				  window_order);
	ret = kalloc_fault_publish(vmf, region, &fill, &held);
	if (ret)
		return ret;
	for (i = first; i < last; i++) {
		pages[n] = kalloc_region_page(region, i);
		if (pages[n]) {
			n++;
		} else if (i < index) {
			/* keep the run contiguous: start it after the gap */
			first = i + 1;
			n = 0;
		} else {
			last = i;
		}
	}
	if (index < last)
		err = kalloc_insert(vma, vma->vm_start +
				    ((first - vma_first) << PAGE_SHIFT),
				    pages, n, vmf->address);
	kalloc_fault_unpublish(region, held);

	/*
	 * index >= last: the faulting page was resident when the window was
	 * looked at, and a RELEASE took it back before the lock was had.
	 * Nothing is mapped there: the access faults again and allocates.
	 */
	return err ? vmf_error(err) : VM_FAULT_NOPAGE;
}

/*
 * Called before ->fault for a read fault, under rcu_read_lock(): maps
 * nothing (see the top of this file), and returning 0 sends the fault on
 * to ->fault, under the vma lock where the kernel has one.
 */
static vm_fault_t kalloc_map_pages(struct vm_fault *vmf, pgoff_t start_pgoff,
				   pgoff_t end_pgoff)
{
	return 0;
}

static const struct vm_operations_struct kalloc_vm_ops = {
	.open = kalloc_vm_open,
	.close = kalloc_vm_close,
	.fault = kalloc_fault,
	.map_pages = kalloc_map_pages,
};

/*
 * The next of the owner's vmas that map @region, walking its address
 * space with @vmi; NULL once it has seen as many as the region has
 * mappings (*@left counts them down).  The owner's mmap_lock is held.
 */
static struct vm_area_struct *kalloc_next_own_vma(struct kalloc_region *region,
						  struct vma_iterator *vmi,
						  int *left)
{
	struct vm_area_struct *vma;

	while (*left > 0 && (vma = vma_next(vmi))) {
		if (vma->vm_ops == &kalloc_vm_ops &&
		    vma->vm_private_data == region) {
			(*left)--;
			return vma;
		}
	}
	return NULL;
}

/*
 * Keep the owner's faults out of every vma that maps @region until its
 * mmap_lock, held for writing, goes (fork: kalloc_region_fork()).  On
 * 6.12 dup_mmap() write-locks the parent's vmas one at a time as it
 * reaches them, and a fault on a later vma of the region would run under
 * that vma's own lock alone.  Called before region->lock is taken: such
 * a fault may hold its vma's lock while it waits for region->lock.
 */
void kalloc_lock_own_vmas(struct kalloc_region *region)
{
	VMA_ITERATOR(vmi, region->mm, 0);
	int left = atomic_read(&region->mappings);
	struct vm_area_struct *vma;

	mmap_assert_write_locked(region->mm);
	while ((vma = kalloc_next_own_vma(region, &vmi, &left)))
		kalloc_vma_start_write(vma);
}

/*
 * Zap pages [@first, @first + @nr) of @region in its owner's vmas that map
 * it, and in no one else's (kalloc_next_own_vma()).  Called with the
 * owner's mmap_lock held (read, or write in fork) and region->lock.
 */
void kalloc_zap_own_mappings(struct kalloc_region *region, unsigned long first,
			     unsigned long nr)
{
	VMA_ITERATOR(vmi, region->mm, 0);
	int left = atomic_read(&region->mappings);
	struct vm_area_struct *vma;

	mmap_assert_locked(region->mm);
	while ((vma = kalloc_next_own_vma(region, &vmi, &left))) {
		unsigned long vma_first, vma_last, from, to;

		/* the vma's pages, as indexes into the region */
		vma_first = vma->vm_pgoff - region->pgoff;
		vma_last = vma_first + vma_pages(vma);
		from = max(first, vma_first);
		to = min(first + nr, vma_last);
		if (from < to)
			kalloc_zap_vma_range(vma, vma->vm_start +
					     ((from - vma_first) << PAGE_SHIFT),
					     (to - from) << PAGE_SHIFT);
	}
}

/*
 * Whether @vma maps @region's blocks by PMD.  Such a vma is not
 * VM_MIXEDMAP: the core mm maps the pages the fault returns
 * (finish_fault()), with rmap and refcounts as for a file's page cache,
 * and treats a PMD of a VM_MIXEDMAP vma as special (zap_huge_pmd()); and
 * vm_insert_page*() may not be called on it, since they would set
 * VM_MIXEDMAP themselves.  Decided once, at mmap: the region maps by PMD,
 * the vma's address and offset agree modulo 2 MiB (kalloc's
 * get_unmapped_area sees to that unless the caller chose the address),
 * it holds at least one whole block (it can never grow: VM_DONTEXPAND),
 * and THP is not disabled for the process.  Every other vma is
 * VM_MIXEDMAP and maps 4 KiB pages in batches (kalloc_fault()).
 */
static bool kalloc_vma_maps_pmds(struct vm_area_struct *vma,
				 struct kalloc_region *region)
{
	return region->pmd &&
	       IS_ALIGNED((vma->vm_start >> PAGE_SHIFT) - vma->vm_pgoff,
			  1UL << KALLOC_PMD_ORDER) &&
	       ALIGN(vma->vm_start, PMD_SIZE) + PMD_SIZE <= vma->vm_end &&
	       !test_bit(MMF_DISABLE_THP, &vma->vm_mm->flags);
}

int kalloc_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long window = KALLOC_REGION_WINDOW_SHIFT - PAGE_SHIFT;
	unsigned long start = vma->vm_pgoff & (KALLOC_WINDOW_PAGES - 1);
	struct kalloc_region *region;

	/* VM_MAYSHARE: MAP_SHARED, writable or (on a read-only fd) not */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	region = kalloc_file_region(file->private_data, current->mm,
				    vma->vm_pgoff >> window);
	if (!region)
		return -EINVAL;
	/*
	 * Like a file: a mapping starts inside the region and may run past
	 * its end (those pages get SIGBUS), but never into the next window.
	 */
	if (start >= region->nr_pages ||
	    vma_pages(vma) > KALLOC_WINDOW_PAGES - start) {
		kalloc_region_put(region);
		return -EINVAL;
	}
	vma->vm_private_data = region;	/* the reference is the vma's */
	vma->vm_ops = &kalloc_vm_ops;
	kalloc_vma_set_flags(vma, VM_DONTEXPAND | VM_WIPEONFORK);
	if (!kalloc_vma_maps_pmds(vma, region))
		kalloc_vma_set_flags(vma, VM_MIXEDMAP);
	kalloc_region_mapped(region);
	return 0;
}

/*
 * The address for a new mapping: for a region that maps by PMD, one that
 * is congruent to the mapping's file offset modulo 2 MiB, as
 * thp_get_unmapped_area() finds for files with huge pages, so that its
 * blocks can be mapped by PMD at all; for the others, where the process's
 * layout puts it.  A MAP_FIXED address is taken as it is, as always.
 */
unsigned long kalloc_get_unmapped_area(struct file *file, unsigned long addr,
				       unsigned long len, unsigned long pgoff,
				       unsigned long flags)
{
	unsigned long window = KALLOC_REGION_WINDOW_SHIFT - PAGE_SHIFT;
	struct kalloc_region *region;
	bool pmd = false;

	region = kalloc_file_region(file->private_data, current->mm,
				    pgoff >> window);
	if (region) {
		pmd = region->pmd;
		kalloc_region_put(region);
	}
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	if (pmd)
		return thp_get_unmapped_area(file, addr, len, pgoff, flags);
#endif
	return kalloc_mm_get_unmapped_area(file, addr, len, pgoff, flags);
}
