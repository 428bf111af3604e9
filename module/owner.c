// SPDX-License-Identifier: GPL-2.0
/*
 * A region's owner exits: its pages go back in exit_mmap(), before the
 * OOM killer stops counting it.
 *
 * A process's regions live as long as a space names them or a vma maps
 * them, and a space goes when the file is closed or when someone next
 * looks at the file after the process has gone (kalloc_space_find()).
 * The kernel hides a dying process from the OOM killer (MMF_OOM_SKIP) as
 * soon as exit_mmap() has unmapped its address space, which is before its
 * vmas close and long before its files do: an allocation that fails in
 * between finds another victim although the first one's kalloc pages are
 * about to come back.  And a file the process shared (with a forked
 * parent, or through a socket) keeps a dead process's regions for as long
 * as the others keep the file open and quiet.
 *
 * So a process that holds pages in a region no vma maps has its mm
 * subscribed to an mmu_notifier (one per mm, shared by all its spaces:
 * mmu_notifier_get()), whose ->release runs at the start of exit_mmap(),
 * when the last user of the mm is gone: no task can name or fault the
 * process's regions any more.  It frees the pages of every region its
 * spaces name, but for those a page table still maps: these go as their
 * region's last vma closes, once exit_mmap() has unmapped them
 * (kalloc_region_owner_gone()).  The regions themselves go as before, with
 * the vmas and spaces that hold them.
 *
 * Only such processes: a notifier costs its mm's exit an SRCU grace period
 * (mmu_notifier_release() waits for one), and subscribing takes every lock
 * of the mm (mm_take_all_locks()).  A process whose regions are all mapped
 * has them freed as exit_mmap() closes its vmas (kalloc_file_prune()), a
 * moment after the OOM killer stops counting it; liballoc destroys a
 * region before it unmaps it.  The moments a region starts to hold pages
 * unmapped are a VMALLOC CREATE (its pages come at once) and the close of
 * the last vma of a named region that holds pages.
 *
 * A worker makes the subscription while the caller waits: the close runs
 * under the mmap_lock, which subscribing takes, so it has a task_work do
 * it as the task returns to user space; and mm_take_all_locks() gives up
 * while a signal is pending, as one is whenever a task returns from a
 * syscall with a signal to take (a timer, SIGCHLD), where task_work runs
 * first.  A worker has no signals.  The syscall that made a region hold
 * pages unmapped returns with its exit covered.
 *
 * The worker never sleeps on the caller's mmap_lock: the caller's process
 * can hold that lock for as long as it likes (a fault on a FUSE file whose
 * server never answers, taken through /proc/self/mem, whose GUP cannot
 * drop the lock), and a work stuck there takes one of the works its
 * workqueue runs at once, which every user shares: when this was
 * system_unbound_wq, 512 such CREATEs held it and nobody else's work on
 * it ran, the kernel's own included.  So the worker only tries the lock,
 * and tries again later while it is taken (from 1 jiffy, doubling to
 * KALLOC_OWNER_RETRY_MAX), until the process has gone or the caller
 * stopped waiting; the caller waits killably.  The work holds its own
 * references to the file and the mm, since a caller killed meanwhile
 * leaves it behind.
 */
#include <linux/file.h>
#include <linux/mmu_notifier.h>
#include <linux/slab.h>
#include <linux/task_work.h>
#include <linux/wait_bit.h>
#include <linux/workqueue.h>

#include "kalloc.h"

#ifdef CONFIG_MMU_NOTIFIER

/* One per mm with a subscribed space: the notifier and its spaces. */
struct kalloc_owner {
	struct mmu_notifier mn;
	struct mutex lock;		/* spaces */
	struct list_head spaces;
};

/* Owners not yet freed: their free, after an SRCU grace period, is ours. */
static atomic_t kalloc_owners = ATOMIC_INIT(0);

static struct kalloc_owner *kalloc_owner_of(struct mmu_notifier *mn)
{
	return container_of(mn, struct kalloc_owner, mn);
}

/*
 * The mm's last user is gone (exit_mmap()).  The regions are pinned under
 * owner->lock, which a space's free takes before it drops its own
 * references, and their pages are freed after it, so that a space's free
 * in another process sharing the file never waits for them.  This runs
 * inside the mmu_notifier SRCU read section, as every ->release does.
 */
static void kalloc_owner_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct kalloc_owner *owner = kalloc_owner_of(mn);
	struct kalloc_region *region, *next;
	struct kalloc_space *space;
	unsigned long id;
	LIST_HEAD(gone);

	mutex_lock(&owner->lock);
	list_for_each_entry(space, &owner->spaces, owner_link) {
		xa_for_each(&space->regions, id, region) {
			kalloc_region_get(region);
			list_add_tail(&region->owner_gone, &gone);
		}
	}
	mutex_unlock(&owner->lock);

	list_for_each_entry_safe(region, next, &gone, owner_gone) {
		list_del(&region->owner_gone);
		kalloc_region_owner_gone(region);
		kalloc_region_put(region);
		cond_resched();
	}
}

static struct mmu_notifier *kalloc_owner_alloc(struct mm_struct *mm)
{
	struct kalloc_owner *owner = kzalloc(sizeof(*owner), GFP_KERNEL_ACCOUNT);

	if (!owner)
		return ERR_PTR(-ENOMEM);
	mutex_init(&owner->lock);
	INIT_LIST_HEAD(&owner->spaces);
	atomic_inc(&kalloc_owners);
	return &owner->mn;
}

/* After an SRCU grace period that follows the last mmu_notifier_put(). */
static void kalloc_owner_free(struct mmu_notifier *mn)
{
	struct kalloc_owner *owner = kalloc_owner_of(mn);

	mutex_destroy(&owner->lock);
	kfree(owner);
	if (atomic_dec_and_test(&kalloc_owners))
		wake_up_var(&kalloc_owners);
}

static const struct mmu_notifier_ops kalloc_owner_ops = {
	.release = kalloc_owner_release,
	.alloc_notifier = kalloc_owner_alloc,
	.free_notifier = kalloc_owner_free,
};

/*
 * Subscribe @mm's space in @kfile, @mm's mmap_lock held for writing and a
 * user of @mm held.  The worker holds the file, and the space stays while
 * its mm has users (only the file's release or a reaping of an exited
 * mm's spaces frees it).  A failure (no memory) leaves the space as it
 * was: the next region to hold pages unmapped tries again.
 */
static void kalloc_owner_subscribe(struct kalloc_file *kfile,
				   struct mm_struct *mm)
{
	struct mmu_notifier *mn = ERR_PTR(-EEXIST);
	struct kalloc_space *space;
	struct kalloc_owner *owner;

	mmap_assert_write_locked(mm);
	mutex_lock(&kfile->lock);
	space = kalloc_file_space(kfile, mm);
	mutex_unlock(&kfile->lock);
	if (WARN_ON_ONCE(!space))	/* the work holds the file and a user of @mm */
		return;
	if (!READ_ONCE(space->owner))
		mn = mmu_notifier_get_locked(&kalloc_owner_ops, mm);

	mutex_lock(&kfile->lock);
	space->owner_queued = false;
	if (!IS_ERR(mn) && !space->owner) {
		owner = kalloc_owner_of(mn);
		mutex_lock(&owner->lock);
		list_add(&space->owner_link, &owner->spaces);
		mutex_unlock(&owner->lock);
		WRITE_ONCE(space->owner, owner);
		mn = NULL;
	}
	mutex_unlock(&kfile->lock);
	if (!IS_ERR_OR_NULL(mn))
		mmu_notifier_put(mn);
}

/*
 * @kfile's space of @mm if it has one and it has no owner yet: the one
 * lookup of both ways to subscribe.  Under @kfile's lock.
 */
static struct kalloc_space *kalloc_space_unwatched(struct kalloc_file *kfile,
						   struct mm_struct *mm)
{
	struct kalloc_space *space;

	lockdep_assert_held(&kfile->lock);
	space = kalloc_file_space(kfile, mm);
	return space && !space->owner ? space : NULL;
}

/* The longest wait between two tries of a taken mmap_lock. */
#define KALLOC_OWNER_RETRY_MAX	(HZ / 4)

/*
 * The subscriptions' own workqueue: module exit destroys it, which waits
 * for a work that a killed caller left behind to return.  Its last fput()
 * may be what lets the module go (the file holds it), and it still runs
 * module code after that.
 */
static struct workqueue_struct *kalloc_owner_wq;

/*
 * Who frees the work: the caller once the worker is done, or the worker
 * when the caller was killed before that.  Never the worker while the
 * caller waits: its fput() would be the file's last when the caller's
 * process has exited meanwhile, and a kworker's last fput() is deferred
 * (to delayed_fput), so that the process's regions outlived its exit,
 * seen by a parent right after wait() as a user still holding regions.
 */
struct kalloc_owner_work {
	struct delayed_work dwork;
	struct file *file;		/* held */
	struct mm_struct *mm;		/* grabbed */
	struct completion done;
	spinlock_t lock;		/* finished, abandoned */
	bool finished;			/* by the worker: the caller frees */
	bool abandoned;			/* by the killed caller: the worker frees */
	unsigned long delay;		/* jiffies to the next try */
};

static void kalloc_owner_work_free(struct kalloc_owner_work *work)
{
	mmdrop(work->mm);
	fput(work->file);
	kfree(work);
}

static void kalloc_owner_work_fn(struct work_struct *w)
{
	struct kalloc_owner_work *work =
		container_of(to_delayed_work(w), struct kalloc_owner_work, dwork);
	struct mm_struct *mm = work->mm;

	/* Nobody waits any more, or the process is gone: nothing to do. */
	if (!READ_ONCE(work->abandoned) && mmget_not_zero(mm)) {
		if (!kalloc_mmap_write_trylock(mm)) {
			unsigned long delay = work->delay;

			mmput(mm);
			work->delay = min(delay * 2, (unsigned long)KALLOC_OWNER_RETRY_MAX);
			queue_delayed_work(kalloc_owner_wq, &work->dwork, delay);
			return;
		}
		kalloc_owner_subscribe(work->file->private_data, mm);
		mmap_write_unlock(mm);
		mmput(mm);
	}
	spin_lock(&work->lock);
	if (work->abandoned) {
		spin_unlock(&work->lock);
		kalloc_owner_work_free(work);
		return;
	}
	/* the caller takes the lock before it frees: our unlock is the last touch */
	work->finished = true;
	complete(&work->done);
	spin_unlock(&work->lock);
}

/*
 * Have the caller's space in @file subscribed, if it is not yet, and
 * wait for it, killably.  Process context, the file held, no lock held
 * (the worker takes the caller's mmap_lock).
 */
void kalloc_owner_watch(struct file *file)
{
	struct kalloc_file *kfile = file->private_data;
	struct mm_struct *mm = current->mm;
	struct kalloc_owner_work *work;
	struct kalloc_space *space;

	if (!mm || (current->flags & (PF_EXITING | PF_KTHREAD)))
		return;
	mutex_lock(&kfile->lock);
	space = kalloc_space_unwatched(kfile, mm);
	mutex_unlock(&kfile->lock);
	if (!space)
		return;

	work = kzalloc(sizeof(*work), GFP_KERNEL_ACCOUNT);
	if (!work)
		return;		/* as a failed subscription: the next one tries */
	INIT_DELAYED_WORK(&work->dwork, kalloc_owner_work_fn);
	work->file = get_file(file);
	mmgrab(mm);
	work->mm = mm;
	init_completion(&work->done);
	spin_lock_init(&work->lock);
	work->delay = 1;
	queue_delayed_work(kalloc_owner_wq, &work->dwork, 0);
	wait_for_completion_killable(&work->done);
	spin_lock(&work->lock);
	if (!work->finished) {
		/* killed: the worker, still to finish, frees it */
		WRITE_ONCE(work->abandoned, true);
		spin_unlock(&work->lock);
		return;
	}
	spin_unlock(&work->lock);
	kalloc_owner_work_free(work);
}

struct kalloc_owner_task_work {
	struct callback_head head;
	struct file *file;		/* held */
};

/* On the way back to user space; or at exit, with no mm any more. */
static void kalloc_owner_task_work_fn(struct callback_head *head)
{
	struct kalloc_owner_task_work *tw =
		container_of(head, struct kalloc_owner_task_work, head);

	kalloc_owner_watch(tw->file);
	fput(tw->file);
	kfree(tw);
}

/*
 * The last vma of @region is closing in its owner's munmap() (or the
 * like), and the region keeps its pages while its id names it: subscribe
 * the space before the task returns to user space.  Called under the
 * mmap_lock; queued once per space until it has run.
 */
void kalloc_owner_watch_unmapped(struct vm_area_struct *vma,
				 struct kalloc_region *region)
{
	struct kalloc_file *kfile = vma->vm_file->private_data;
	struct kalloc_owner_task_work *tw;
	struct kalloc_space *space;
	bool queue = false;

	if (vma->vm_mm != current->mm || !atomic_read(&vma->vm_mm->mm_users) ||
	    (current->flags & (PF_EXITING | PF_KTHREAD)))
		return;
	mutex_lock(&kfile->lock);
	space = kalloc_space_unwatched(kfile, current->mm);
	if (space && region->named && !space->owner_queued) {
		space->owner_queued = true;
		queue = true;
	}
	mutex_unlock(&kfile->lock);
	if (!queue)
		return;

	tw = kmalloc(sizeof(*tw), GFP_KERNEL_ACCOUNT);
	if (tw) {
		init_task_work(&tw->head, kalloc_owner_task_work_fn);
		tw->file = get_file(vma->vm_file);
		if (!task_work_add(current, &tw->head, TWA_RESUME))
			return;
		fput(tw->file);
		kfree(tw);
	}
	mutex_lock(&kfile->lock);
	space->owner_queued = false;
	mutex_unlock(&kfile->lock);
}

/* @space is being freed: before its regions lose its references. */
void kalloc_owner_unwatch(struct kalloc_space *space)
{
	struct kalloc_owner *owner = space->owner;

	if (!owner)
		return;
	mutex_lock(&owner->lock);
	list_del(&space->owner_link);
	mutex_unlock(&owner->lock);
	space->owner = NULL;
	mmu_notifier_put(&owner->mn);
}

int kalloc_owner_init(void)
{
	kalloc_owner_wq = alloc_workqueue("kalloc_owner", WQ_UNBOUND, 0);
	return kalloc_owner_wq ? 0 : -ENOMEM;
}

/*
 * Module exit, every file closed: the works that held them have returned,
 * and the owners' frees, queued by mmu_notifier_put(), are done.
 */
void kalloc_owner_exit(void)
{
	destroy_workqueue(kalloc_owner_wq);
	mmu_notifier_synchronize();
	wait_var_event(&kalloc_owners, !atomic_read(&kalloc_owners));
}

#else /* !CONFIG_MMU_NOTIFIER: regions go with their vmas and spaces */

void kalloc_owner_watch(struct file *file)
{
}

void kalloc_owner_watch_unmapped(struct vm_area_struct *vma,
				 struct kalloc_region *region)
{
}

void kalloc_owner_unwatch(struct kalloc_space *space)
{
}

int kalloc_owner_init(void)
{
	return 0;
}

void kalloc_owner_exit(void)
{
}

#endif
