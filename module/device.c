// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/kalloc: the misc device, its files, the per-process spaces of
 * regions, the ioctls, and the module's parameters, load and unload.
 */
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "kalloc.h"

unsigned long kalloc_max_pages;
module_param_named(max_pages, kalloc_max_pages, ulong, 0644);
MODULE_PARM_DESC(max_pages, "Most pages all regions may hold at once (0: no limit)");

unsigned long kalloc_max_region_pages;
module_param_named(max_region_pages, kalloc_max_region_pages, ulong, 0644);
MODULE_PARM_DESC(max_region_pages, "Largest region, in pages (0: no limit)");

/*
 * Pages one user's regions may hold, by real uid (see user.c).  Unless it
 * is given at load, half of the RAM the machine has then, as tmpfs sizes
 * itself: no single user can pin all of the memory, and what a user does
 * hold counts in its processes' OOM badness.
 */
#define KALLOC_MAX_USER_PAGES_UNSET	ULONG_MAX
unsigned long kalloc_max_user_pages = KALLOC_MAX_USER_PAGES_UNSET;
module_param_named(max_user_pages, kalloc_max_user_pages, ulong, 0644);
MODULE_PARM_DESC(max_user_pages,
		 "Most pages one user's regions may hold (default: half of RAM; 0: no limit)");

/*
 * Regions cost slab memory (about 0.5 KiB each, and their xarray nodes)
 * whether or not they hold a page, and every /proc/kalloc read walks them:
 * a bound per user, as for pages.  liballoc makes one per 64 MiB of small
 * blocks and one per live block over 2 MiB.
 */
unsigned long kalloc_max_user_regions = 65536;
module_param_named(max_user_regions, kalloc_max_user_regions, ulong, 0644);
MODULE_PARM_DESC(max_user_regions,
		 "Most regions one user may hold (default: 65536; 0: no limit)");

unsigned int kalloc_fault_around = 16;

static int kalloc_fault_around_set(const char *val,
				   const struct kernel_param *kp)
{
	unsigned int n;
	int err = kstrtouint(val, 0, &n);

	if (err)
		return err;
	if (!n || n > KALLOC_FAULT_AROUND_MAX || !is_power_of_2(n))
		return -EINVAL;
	WRITE_ONCE(kalloc_fault_around, n);
	return 0;
}

static const struct kernel_param_ops kalloc_fault_around_ops = {
	.set = kalloc_fault_around_set,
	.get = param_get_uint,
};
module_param_cb(fault_around, &kalloc_fault_around_ops, &kalloc_fault_around,
		0644);
MODULE_PARM_DESC(fault_around,
		 "Pages mapped per fault, a power of two from 1 to 32 (default 16)");

/*
 * Off by default: two clock reads per fault.  On, a fault also times how
 * long it holds its region's lock (fault_lock_holds, fault_lock_hold_ns in
 * /proc/kalloc); the waits are always timed, as they only happen when the
 * lock is contended.
 */
bool kalloc_lock_stat;
module_param_named(lock_stat, kalloc_lock_stat, bool, 0644);
MODULE_PARM_DESC(lock_stat,
		 "Time how long faults hold their region's lock (default N)");

/*
 * Each open file gets an inode of this pseudo filesystem, so that its
 * mappings share an address space of their own rather than the misc
 * device's, which every open of /dev/kalloc shares.
 */
#define KALLOC_FS_MAGIC	0x6b616c6c	/* "kall" */

static int kalloc_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, KALLOC_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type kalloc_fs_type = {
	.name = "kalloc",
	.init_fs_context = kalloc_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

static struct vfsmount *kalloc_mnt;

/* Names each space for fork's copy cache: see kalloc_file_fork_region(). */
static atomic64_t kalloc_space_serial = ATOMIC64_INIT(0);

/*
 * @space leaves @kfile (its lock held) for @dead, which the caller frees
 * with kalloc_spaces_free() once it has dropped the lock: freeing a dead
 * process's regions frees their pages, gigabytes maybe, and the processes
 * that share the file would wait for that on the lock.  Nobody finds the
 * space from here on, and no id names its regions.
 */
static void kalloc_space_unlink(struct kalloc_space *space,
				struct list_head *dead)
{
	struct kalloc_region *region;
	unsigned long id;

	xa_for_each(&space->regions, id, region)
		region->named = false;
	list_move(&space->link, dead);
}

/* The spaces kalloc_space_unlink() took out, with their references. */
static void kalloc_spaces_free(struct list_head *dead)
{
	struct kalloc_space *space, *next;
	struct kalloc_region *region;
	unsigned long id;

	list_for_each_entry_safe(space, next, dead, link) {
		kalloc_owner_unwatch(space);
		xa_for_each(&space->regions, id, region)
			kalloc_region_put(region);
		xa_destroy(&space->regions);
		list_del(&space->link);
		mmdrop(space->mm);
		kfree(space);
		cond_resched();
	}
}

/*
 * The space of @mm in @kfile, made on first use when @create.  Spaces of
 * processes that have exited are taken out on the way, onto @dead for the
 * caller to free after the lock (kalloc_spaces_free()): their mappings
 * are gone, and their regions can no longer be named by anyone.
 * Called with kfile->lock held.
 */
static struct kalloc_space *kalloc_space_find(struct kalloc_file *kfile,
					      struct mm_struct *mm, bool create,
					      struct list_head *dead)
{
	struct kalloc_space *space, *next, *found = NULL;

	list_for_each_entry_safe(space, next, &kfile->spaces, link) {
		if (space->mm == mm)
			found = space;
		else if (!atomic_read(&space->mm->mm_users))
			kalloc_space_unlink(space, dead);
	}
	if (found || !create)
		return found;

	space = kzalloc(sizeof(*space), GFP_KERNEL_ACCOUNT);
	if (!space)
		return NULL;
	mmgrab(mm);
	space->mm = mm;
	space->serial = atomic64_inc_return(&kalloc_space_serial);
	xa_init_flags(&space->regions, XA_FLAGS_ALLOC1);
	list_add(&space->link, &kfile->spaces);
	return space;
}

/*
 * @mm's space in @kfile, or NULL; unlike kalloc_space_find(), it frees no
 * dead process's space on the way.  Called with kfile->lock held.
 */
struct kalloc_space *kalloc_file_space(struct kalloc_file *kfile,
				       struct mm_struct *mm)
{
	struct kalloc_space *space;

	list_for_each_entry(space, &kfile->spaces, link)
		if (space->mm == mm)
			return space;
	return NULL;
}

/* @mm's region @id in @kfile, with a reference for the caller; or NULL. */
struct kalloc_region *kalloc_file_region(struct kalloc_file *kfile,
					 struct mm_struct *mm, u32 id)
{
	struct kalloc_region *region = NULL;
	struct kalloc_space *space;
	LIST_HEAD(dead);

	mutex_lock(&kfile->lock);
	space = kalloc_space_find(kfile, mm, false, &dead);
	if (space)
		region = xa_load(&space->regions, id);
	if (region) {
		kalloc_region_get(region);
		kalloc_region_owner_seen(region);
	}
	mutex_unlock(&kfile->lock);
	kalloc_spaces_free(&dead);
	return region;
}

/*
 * Drop the spaces of processes that have exited.  Called as an exiting
 * process unmaps its regions, so that a child's copies go with the child
 * rather than when the file shared with its parent is closed.
 */
void kalloc_file_prune(struct kalloc_file *kfile)
{
	LIST_HEAD(dead);

	mutex_lock(&kfile->lock);
	kalloc_space_find(kfile, NULL, false, &dead);
	mutex_unlock(&kfile->lock);
	kalloc_spaces_free(&dead);
}

/*
 * The copy of @parent that @space (a child's, being forked) already has,
 * with a reference for the caller; or NULL.  A region split into many vmas
 * is copied for the first and found here for the others, named or not.
 * The child's space is new with this fork (spaces are per mm, and the
 * child's mm is new), so a serial match can only be this fork's copy, and
 * the copy lives as long as the child's vma that took it, which outlives
 * the fork.  Called with kfile->lock held.
 */
static struct kalloc_region *kalloc_space_fork_copy(struct kalloc_space *space,
						    struct kalloc_region *parent)
{
	if (parent->fork_space != space->serial || !parent->fork_copy)
		return NULL;
	kalloc_region_get(parent->fork_copy);
	return parent->fork_copy;
}

/*
 * The child's copy of @parent, made when fork duplicates the first vma
 * that maps @parent and found again for the others: at most one copy of a
 * region per child.  The copy takes the parent's id in the child's space
 * if the id still names @parent: a region the parent has destroyed stays
 * unnamed in the child too.  The pages are copied without kfile->lock, so
 * that other processes sharing the file do not wait for the copy.  Returns
 * a reference for the child's vma, or NULL if not even a broken copy could
 * be made.
 */
struct kalloc_region *kalloc_file_fork_region(struct kalloc_file *kfile,
					      struct kalloc_region *parent,
					      struct mm_struct *child_mm)
{
	struct kalloc_region *copy = NULL;
	struct kalloc_space *space;
	LIST_HEAD(dead);

	mutex_lock(&kfile->lock);
	space = kalloc_space_find(kfile, child_mm, true, &dead);
	if (space)
		copy = kalloc_space_fork_copy(space, parent);
	mutex_unlock(&kfile->lock);
	kalloc_spaces_free(&dead);
	if (!space || copy)
		return copy;

	/*
	 * Only this fork adds to the child's space, one vma at a time, and
	 * the child's mm stays alive throughout: the space is still there.
	 */
	copy = kalloc_region_fork(parent, child_mm);
	if (!copy)
		return NULL;
	mutex_lock(&kfile->lock);
	space = kalloc_space_find(kfile, child_mm, false, &dead);
	if (space && parent->named &&
	    !xa_insert(&space->regions, parent->id, copy, GFP_KERNEL_ACCOUNT)) {
		copy->named = true;
		kalloc_region_get(copy);
	}
	if (space) {
		parent->fork_copy = copy;
		parent->fork_space = space->serial;
	}
	kalloc_region_publish(copy);
	mutex_unlock(&kfile->lock);
	kalloc_spaces_free(&dead);
	return copy;
}

static int kalloc_open(struct inode *inode, struct file *file)
{
	struct kalloc_file *kfile;

	kfile = kzalloc(sizeof(*kfile), GFP_KERNEL_ACCOUNT);
	if (!kfile)
		return -ENOMEM;
	kfile->inode = alloc_anon_inode(kalloc_mnt->mnt_sb);
	if (IS_ERR(kfile->inode)) {
		int err = PTR_ERR(kfile->inode);

		kfree(kfile);
		return err;
	}
	mutex_init(&kfile->lock);
	INIT_LIST_HEAD(&kfile->spaces);
	/*
	 * A file of unbounded size: finish_fault() maps no PMD that reaches
	 * past i_size (6.12), and a region's bounds are checked by its fault.
	 */
	i_size_write(kfile->inode, MAX_LFS_FILESIZE);
	file->f_mapping = kfile->inode->i_mapping;
	file->private_data = kfile;
	return 0;
}

/* Runs after the last mapping is gone: every vma holds the file. */
static int kalloc_release(struct inode *inode, struct file *file)
{
	struct kalloc_file *kfile = file->private_data;
	struct kalloc_space *space, *next;
	LIST_HEAD(dead);

	list_for_each_entry_safe(space, next, &kfile->spaces, link)
		kalloc_space_unlink(space, &dead);
	kalloc_spaces_free(&dead);
	iput(kfile->inode);
	mutex_destroy(&kfile->lock);
	kfree(kfile);
	return 0;
}

/*
 * Copy in an argument struct that begins with its own size: older, smaller
 * structs than ours are refused, newer, larger ones must be zero past ours.
 */
static int kalloc_args_in(void *args, size_t size, void __user *uargs)
{
	u32 argsz;
	int err;

	if (get_user(argsz, (u32 __user *)uargs))
		return -EFAULT;
	if (argsz < size)
		return -EINVAL;
	/*
	 * A struct that has grown past a page is not one of ours: refuse it
	 * rather than check up to 4 GiB of the caller's memory for zeroes.
	 */
	if (argsz > PAGE_SIZE)
		return -E2BIG;
	err = copy_struct_from_user(args, size, uargs, argsz);
	return err == -E2BIG ? -EINVAL : err;
}

static int kalloc_args_out(void __user *uargs, const void *args, size_t size)
{
	return copy_to_user(uargs, args, size) ? -EFAULT : 0;
}

static long kalloc_ioc_version(void __user *uargs)
{
	struct kalloc_version args;
	int err = kalloc_args_in(&args, sizeof(args), uargs);

	if (err)
		return err;
	if (args.abi || args.major || args.minor || args.patch ||
	    args.max_order || args.fault_around || args.reserved)
		return -EINVAL;
	args.abi = KALLOC_ABI_VERSION;
	args.major = KALLOC_VERSION_MAJOR;
	args.minor = KALLOC_VERSION_MINOR;
	args.patch = KALLOC_VERSION_PATCH;
	args.max_order = KALLOC_MAX_PAGE_ORDER;
	args.fault_around = READ_ONCE(kalloc_fault_around);
	return kalloc_args_out(uargs, &args, sizeof(args));
}

static long kalloc_ioc_create(struct file *file, void __user *uargs)
{
	struct kalloc_file *kfile = file->private_data;
	LIST_HEAD(dead);
	struct kalloc_region *region;
	struct kalloc_space *space;
	struct kalloc_create args;
	u32 id;
	int err = kalloc_args_in(&args, sizeof(args), uargs);

	if (err)
		return err;
	region = kalloc_region_create(&args);
	if (IS_ERR(region))
		return PTR_ERR(region);

	mutex_lock(&kfile->lock);
	space = kalloc_space_find(kfile, current->mm, true, &dead);
	/*
	 * Cyclic ids: a destroyed region may still be mapped, and its window
	 * of the file's offsets should not soon belong to a new region too.
	 */
	err = space ? xa_alloc_cyclic(&space->regions, &id, region,
				      XA_LIMIT(1, KALLOC_MAX_ID),
				      &space->next_id, GFP_KERNEL_ACCOUNT)
		    : -ENOMEM;
	if (err < 0) {
		mutex_unlock(&kfile->lock);
		kalloc_spaces_free(&dead);
		kalloc_region_put(region);
		return err == -EBUSY ? -ENOSPC : err;
	}
	region->id = id;
	region->named = true;
	region->pgoff = (pgoff_t)id << (KALLOC_REGION_WINDOW_SHIFT - PAGE_SHIFT);
	kalloc_region_publish(region);
	mutex_unlock(&kfile->lock);
	kalloc_spaces_free(&dead);

	/* a VMALLOC region holds its pages unmapped from now: see owner.c */
	if (args.backing == KALLOC_BACKING_VMALLOC)
		kalloc_owner_watch(file);

	args.id = id;
	args.offset = (u64)id << KALLOC_REGION_WINDOW_SHIFT;
	err = kalloc_args_out(uargs, &args, sizeof(args));
	/* The region stays: the caller can still DESTROY it by id. */
	return err;
}

static long kalloc_ioc_release(struct kalloc_file *kfile, void __user *uargs)
{
	struct kalloc_region *region;
	struct kalloc_release args;
	unsigned long first, nr;
	int err = kalloc_args_in(&args, sizeof(args), uargs);

	if (err)
		return err;
	if (!PAGE_ALIGNED(args.offset) || !PAGE_ALIGNED(args.length) ||
	    !args.length)
		return -EINVAL;
	region = kalloc_file_region(kfile, current->mm, args.id);
	if (!region)
		return -ENOENT;
	first = args.offset >> PAGE_SHIFT;
	nr = args.length >> PAGE_SHIFT;
	if (args.offset >= ((u64)region->nr_pages << PAGE_SHIFT) ||
	    nr > region->nr_pages - first)
		err = -EINVAL;
	else
		err = kalloc_region_release(region, first, nr);
	kalloc_region_put(region);
	return err;
}

static long kalloc_ioc_info(struct kalloc_file *kfile, void __user *uargs)
{
	struct kalloc_region *region;
	struct kalloc_info args;
	int err = kalloc_args_in(&args, sizeof(args), uargs);

	if (err)
		return err;
	region = kalloc_file_region(kfile, current->mm, args.id);
	if (!region)
		return -ENOENT;
	kalloc_region_info(region, &args);
	kalloc_region_put(region);
	return kalloc_args_out(uargs, &args, sizeof(args));
}

static long kalloc_ioc_destroy(struct kalloc_file *kfile, void __user *uargs)
{
	struct kalloc_region *region = NULL;
	struct kalloc_space *space;
	struct kalloc_destroy args;
	LIST_HEAD(dead);
	int err = kalloc_args_in(&args, sizeof(args), uargs);

	if (err)
		return err;
	mutex_lock(&kfile->lock);
	space = kalloc_space_find(kfile, current->mm, false, &dead);
	if (space)
		region = xa_erase(&space->regions, args.id);
	if (region)
		region->named = false;
	mutex_unlock(&kfile->lock);
	kalloc_spaces_free(&dead);
	if (!region)
		return -ENOENT;
	/* Mappings keep their own references: it goes with the last. */
	kalloc_region_put(region);
	return 0;
}

static long kalloc_ioctl(struct file *file, unsigned int cmd,
			 unsigned long arg)
{
	struct kalloc_file *kfile = file->private_data;
	void __user *uargs = (void __user *)arg;

	/* The size in cmd is the caller's; argsz inside the struct governs. */
	if (_IOC_TYPE(cmd) != KALLOC_IOC_MAGIC ||
	    _IOC_DIR(cmd) != (_IOC_READ | _IOC_WRITE))
		return -ENOTTY;
	switch (_IOC_NR(cmd)) {
	case _IOC_NR(KALLOC_IOC_VERSION):
		return kalloc_ioc_version(uargs);
	case _IOC_NR(KALLOC_IOC_CREATE):
		return kalloc_ioc_create(file, uargs);
	case _IOC_NR(KALLOC_IOC_RELEASE):
		return kalloc_ioc_release(kfile, uargs);
	case _IOC_NR(KALLOC_IOC_INFO):
		return kalloc_ioc_info(kfile, uargs);
	case _IOC_NR(KALLOC_IOC_DESTROY):
		return kalloc_ioc_destroy(kfile, uargs);
	}
	return -ENOTTY;
}

static const struct file_operations kalloc_fops = {
	.owner = THIS_MODULE,
	.open = kalloc_open,
	.release = kalloc_release,
	.unlocked_ioctl = kalloc_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = kalloc_mmap,
	.get_unmapped_area = kalloc_get_unmapped_area,
};

/*
 * Root and the group the node is given may open it, as with /dev/kvm:
 * devtmpfs creates the node root:root 0660, the udev rule the install
 * puts in place (tools/udev/60-kalloc.rules) gives it group "kalloc".
 * Pages are charged to the owner's memcg and each user's limit holds.
 */
static struct miscdevice kalloc_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kalloc",
	.fops = &kalloc_fops,
	.mode = 0660,
};

static void kalloc_check_leaks(void)
{
	long regions = atomic_long_read(&kalloc_totals.regions);
	unsigned long resident = kalloc_resident_total();
	long nodes = 0;
	int nid;

	for (nid = 0; nid < nr_node_ids; nid++)
		nodes |= kalloc_node_resident(nid);
	if (regions || resident || nodes)
		pr_err("kalloc: leak: %ld regions, %lu resident pages, node counts %s\n",
		       regions, resident, nodes ? "non-zero" : "zero");
}

static int __init kalloc_init(void)
{
	int err;

	if (kalloc_max_user_pages == KALLOC_MAX_USER_PAGES_UNSET)
		kalloc_max_user_pages = totalram_pages() / 2;
	err = kalloc_totals_init();
	if (err)
		return err;
	err = kalloc_owner_init();
	if (err)
		goto out_totals;
	kalloc_mnt = kern_mount(&kalloc_fs_type);
	if (IS_ERR(kalloc_mnt)) {
		err = PTR_ERR(kalloc_mnt);
		goto out_owner;
	}
	err = kalloc_proc_init();
	if (err)
		goto out_mnt;
	err = misc_register(&kalloc_misc);
	if (err)
		goto out_proc;
	pr_info("kalloc: version %s, /dev/kalloc and /proc/kalloc ready\n",
		KALLOC_VERSION_STRING);
	return 0;

out_proc:
	kalloc_proc_exit();
out_mnt:
	kern_unmount(kalloc_mnt);
out_owner:
	kalloc_owner_exit();
out_totals:
	kalloc_totals_exit();
	return err;
}

static void __exit kalloc_exit(void)
{
	misc_deregister(&kalloc_misc);
	kalloc_proc_exit();
	kalloc_owner_exit();
	kern_unmount(kalloc_mnt);
	kalloc_pinned_exit();
	kalloc_check_leaks();
	kalloc_totals_exit();
}

module_init(kalloc_init);
module_exit(kalloc_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Memory regions served by fault handlers from vmalloc and buddy pages");
MODULE_AUTHOR("The kalloc developers");
MODULE_VERSION(KALLOC_VERSION_STRING);
