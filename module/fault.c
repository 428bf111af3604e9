// SPDX-License-Identifier: GPL-2.0
/*
 * Mapping regions and serving their faults.
 *
 * mmap() maps a region's window (MAP_SHARED only: a private mapping would
 * copy every written page into anonymous memory and the device would back
 * nothing).  A fault finds or allocates the pages of a whole neighbourhood
 * around the faulting address (fault_around pages, aligned) and maps them
 * in one batch with vm_insert_pages(), so touching memory in order takes
 * one fault per neighbourhood rather than one per page.  The pages are
 * mapped under region->lock: RELEASE holds the same lock from zap to free,
 * so a page is never mapped once it has been handed back.  A fault waits
 * for that lock killably: a thread killed while another one allocates or
 * releases under it leaves at once (see kalloc_fault_lock()).
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
 * faults in its own copy.
 */
#include <linux/log2.h>
#include <linux/mm.h>
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
	kalloc_region_unmapped(region);
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
 * Take region->lock for a fault.  Another thread may hold it for a while
 * (allocating under reclaim, or RELEASE freeing many pages); a fault that
 * may be retried waits killably and, killed, returns VM_FAULT_RETRY with
 * the fault's lock dropped, as filemap_fault() does for a page lock: the
 * arch fault handler then sees the fatal signal and returns to die.  A
 * caller that cannot retry (VM_FAULT_RETRY would break its lock protocol)
 * waits as before; one that must not sleep (RETRY_NOWAIT) gets
 * VM_FAULT_RETRY with the lock still held.  False: return VM_FAULT_RETRY.
 */
static bool kalloc_fault_lock(struct vm_fault *vmf, struct kalloc_region *region)
{
	if (mutex_trylock(&region->lock))
		return true;
	if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT)
		return false;
	if (!(vmf->flags & FAULT_FLAG_ALLOW_RETRY) ||
	    !(vmf->flags & FAULT_FLAG_KILLABLE)) {
		mutex_lock(&region->lock);
		return true;
	}
	if (!mutex_lock_killable(&region->lock))
		return true;
	kalloc_fault_unlock(vmf);
	return false;
}

static vm_fault_t kalloc_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct kalloc_region *region = vma->vm_private_data;
	struct page *pages[KALLOC_FAULT_AROUND_MAX];
	unsigned long around = READ_ONCE(kalloc_fault_around);
	unsigned long index, first, last, vma_first, i, n = 0;
	unsigned int window_order;
	int err = 0;

	if (!region || region->broken)
		return VM_FAULT_SIGBUS;
	index = vmf->pgoff - region->pgoff;
	if (index >= region->nr_pages)
		return VM_FAULT_SIGBUS;
	kalloc_region_owner_seen(region);
	atomic_long_inc(&region->faults);
	atomic_long_inc(&kalloc_totals.faults);

	/* The aligned neighbourhood of @index, within the vma and the region. */
	vma_first = vma->vm_pgoff - region->pgoff;
	first = max(round_down(index, around), vma_first);
	last = min3(round_down(index, around) + around,
		    vma_first + vma_pages(vma), region->nr_pages);

	/* a window mapped whole may be allocated as one block */
	window_order = last - first == around ? ilog2(around) : 0;

	if (!kalloc_fault_lock(vmf, region))
		return VM_FAULT_RETRY;
	for (i = first; i < last; i++) {
		pages[n] = kalloc_region_page(region, i, window_order);
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
	mutex_unlock(&region->lock);

	if (index >= last) {
		/* no memory for the faulting page: the limit, the node, or all */
		return fatal_signal_pending(current) ? VM_FAULT_OOM :
						       VM_FAULT_SIGBUS;
	}
	return err ? vmf_error(err) : VM_FAULT_NOPAGE;
}

static const struct vm_operations_struct kalloc_vm_ops = {
	.open = kalloc_vm_open,
	.close = kalloc_vm_close,
	.fault = kalloc_fault,
};

/*
 * Zap pages [@first, @first + @nr) of @region in its owner's vmas that map
 * it, and in no one else's.  The vmas are found by walking the owner's
 * address space; the walk stops once it has seen as many as the region
 * has mappings.  Called with the owner's mmap_lock held (read) and
 * region->lock.
 */
void kalloc_zap_own_mappings(struct kalloc_region *region, unsigned long first,
			     unsigned long nr)
{
	VMA_ITERATOR(vmi, region->mm, 0);
	int left = atomic_read(&region->mappings);
	struct vm_area_struct *vma;

	mmap_assert_locked(region->mm);
	for_each_vma(vmi, vma) {
		unsigned long vma_first, vma_last, from, to;

		if (left <= 0)
			break;
		if (vma->vm_ops != &kalloc_vm_ops ||
		    vma->vm_private_data != region)
			continue;
		left--;
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
	kalloc_vma_set_flags(vma, VM_MIXEDMAP | VM_DONTEXPAND | VM_WIPEONFORK);
	kalloc_region_mapped(region);
	return 0;
}
