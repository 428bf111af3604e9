/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What differs between the kernels kalloc supports (6.1 and 6.12 LTS),
 * behind helpers named for what they do, so that the rest of the module
 * reads as if there were one kernel.
 */
#ifndef _KALLOC_COMPAT_H
#define _KALLOC_COMPAT_H

#include <linux/mm.h>
#include <linux/version.h>

/* vma->vm_flags became read-only in 6.3; vm_flags_set() took its place. */
static inline void kalloc_vma_set_flags(struct vm_area_struct *vma,
					vm_flags_t flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, flags);
#else
	vma->vm_flags |= flags;
#endif
}

/* MAX_ORDER counted orders (exclusive) until 6.8 renamed it MAX_PAGE_ORDER. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
#define KALLOC_MAX_PAGE_ORDER	MAX_PAGE_ORDER
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define KALLOC_MAX_PAGE_ORDER	MAX_ORDER
#else
#define KALLOC_MAX_PAGE_ORDER	(MAX_ORDER - 1)
#endif

/*
 * Take @mm's mmap_lock for writing if it is free.  6.1 has
 * mmap_write_trylock(); a later kernel removed it for want of users (6.12
 * has none).  Its body there was this, and the tracepoint it fired is not
 * exported; mmap_write_unlock() undoes either.
 */
static inline bool kalloc_mmap_write_trylock(struct mm_struct *mm)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
	return down_write_trylock(&mm->mmap_lock) != 0;
#else
	return mmap_write_trylock(mm);
#endif
}

/*
 * Add to one of @mm's rss counters.  add_mm_counter() would do, but it
 * calls mm_trace_rss_stat(), which neither kernel exports; this is the
 * same addition without the tracepoint.  The counters became
 * percpu_counters in 6.2.
 */
static inline void kalloc_mm_counter_add(struct mm_struct *mm, int member,
					 long value)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
	percpu_counter_add(&mm->rss_stat[member], value);
#else
	atomic_long_add(value, &mm->rss_stat.count[member]);
#endif
}

/*
 * Remove the page-table entries of [@start, @start + @size), inside @vma,
 * whatever they map.  zap_vma_ptes() would do only for VM_PFNMAP, and
 * kalloc maps with VM_MIXEDMAP; 6.3 replaced the exported zap_page_range()
 * with zap_page_range_single().  The caller holds @vma's mmap_lock.
 */
static inline void kalloc_zap_vma_range(struct vm_area_struct *vma,
					unsigned long start, unsigned long size)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	zap_page_range_single(vma, start, size, NULL);
#else
	zap_page_range(vma, start, size);
#endif
}

/*
 * Keep faults out of @vma until the mmap_lock, held for writing, goes.
 * 6.4's per-VMA-lock faults do not take the mmap_lock; they wait for a
 * vma write-locked.  Before, every fault took the mmap_lock.
 */
static inline void kalloc_vma_start_write(struct vm_area_struct *vma)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	vma_start_write(vma);
#endif
}

/*
 * Drop the lock a fault runs under before returning VM_FAULT_RETRY.
 * release_fault_lock() (6.7) also knows the per-VMA lock; before it a
 * fault that reached ->fault always held mmap_lock.
 */
static inline void kalloc_fault_unlock(struct vm_fault *vmf)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	release_fault_lock(vmf);
#else
	mmap_read_unlock(vmf->vma->vm_mm);
#endif
}

/*
 * The fault runs under its vma's own lock, not the mmap_lock: 6.4 added
 * per-VMA-lock faults (FAULT_FLAG_VMA_LOCK); before, never.
 */
static inline bool kalloc_fault_vma_locked(const struct vm_fault *vmf)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	return vmf->flags & FAULT_FLAG_VMA_LOCK;
#else
	return false;
#endif
}

/*
 * The process's own choice of address for a mapping, as if the file had
 * no get_unmapped_area: 6.10 turned mm->get_unmapped_area() into
 * mm_get_unmapped_area().
 */
static inline unsigned long
kalloc_mm_get_unmapped_area(struct file *file, unsigned long addr,
			    unsigned long len, unsigned long pgoff,
			    unsigned long flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 10, 0)
	return mm_get_unmapped_area(current->mm, file, addr, len, pgoff, flags);
#else
	return current->mm->get_unmapped_area(file, addr, len, pgoff, flags);
#endif
}

/*
 * How many PMD-level (entire) mappings the compound page @head has, read
 * without folio_entire_mapcount()'s VM_BUG_ON: a /proc/kalloc reader
 * looks at blocks that RELEASE may be freeing.  6.2 moved the count from
 * page[1].compound_mapcount to folio->_entire_mapcount.
 */
static inline int kalloc_entire_mapcount(struct page *head)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
	return atomic_read(&((struct folio *)head)->_entire_mapcount) + 1;
#else
	return atomic_read(compound_mapcount_ptr(head)) + 1;
#endif
}

#endif /* _KALLOC_COMPAT_H */
