// SPDX-License-Identifier: GPL-2.0
/*
 * Users: what each user's regions hold, and the per-user limit.
 *
 * A region belongs to the real uid of the process that created it (a fork
 * copy to its parent's region's user), as RLIMIT_MEMLOCK and io_uring's
 * registered buffers count against the user rather than the process: a
 * user cannot escape the limit by opening the device from many processes.
 * Inside a user namespace that a user other than root created, it belongs
 * to that user (kalloc_user_uid()): the uids mapped into a namespace are
 * its creator's to hand out, and a user with /etc/subuid ranges could
 * otherwise get 65536 limits.
 * Every page a region claims is counted against its user, at CREATE for a
 * VMALLOC region and at fault for a PAGES region; the claim that would
 * pass max_user_pages fails (ENOMEM, SIGBUS), for that user alone.
 *
 * A region created by a process with CAP_SYS_RESOURCE is counted but not
 * limited, as CAP_IPC_LOCK frees io_uring from RLIMIT_MEMLOCK: the check
 * is made once, at CREATE, because the fault that allocates may run in
 * another task (process_vm_writev, ptrace).  As with io_uring, whose
 * io_uring_create() decides once whom a ring's buffers count against, the
 * decision travels with the region: a fork copy keeps its parent region's
 * user and limit.  A privileged process that forks and drops privileges
 * without exec thus hands its child regions that stay unlimited up to
 * their size, as it hands it its rings and its open files; what the child
 * creates itself counts against its own uid and capabilities.
 *
 * Users are kept in a small hash table while they hold a region, so that
 * /proc/kalloc can show each user's pages and regions.  The regions are
 * limited too (max_user_regions): each costs slab memory whether or not
 * it holds a page.
 */
#include <linux/cred.h>
#include <linux/hashtable.h>
#include <linux/mutex.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/user_namespace.h>
#include "kalloc.h"

static DEFINE_HASHTABLE(kalloc_users, 6);
static DEFINE_SPINLOCK(kalloc_users_lock);

static struct kalloc_user *kalloc_user_find(kuid_t uid)
{
	struct kalloc_user *user;

	hash_for_each_possible(kalloc_users, user, link, __kuid_val(uid))
		if (uid_eq(user->uid, uid))
			return user;
	return NULL;
}

/* The user @uid, with a reference for the caller; NULL without memory. */
static struct kalloc_user *kalloc_user_get(kuid_t uid)
{
	struct kalloc_user *user, *new;

	spin_lock(&kalloc_users_lock);
	user = kalloc_user_find(uid);
	if (user)
		refcount_inc(&user->ref);
	spin_unlock(&kalloc_users_lock);
	if (user)
		return user;

	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new)
		return NULL;
	refcount_set(&new->ref, 1);
	new->uid = uid;
	atomic_long_set(&new->pages, 0);
	INIT_LIST_HEAD(&new->pinned);
	mutex_init(&new->pinned_walk);

	spin_lock(&kalloc_users_lock);
	user = kalloc_user_find(uid);
	if (user) {
		refcount_inc(&user->ref);
	} else {
		hash_add(kalloc_users, &new->link, __kuid_val(uid));
		user = new;
		new = NULL;
	}
	spin_unlock(&kalloc_users_lock);
	kfree(new);
	return user;
}

/*
 * The uid the caller's regions count against: its real uid, or, in a user
 * namespace, the owner (a uid of the initial namespace) of the outermost
 * namespace around it that a user other than root created: that user's
 * mapped uids are its own to hand out.  Root's namespaces (a container's,
 * a service's PrivateUsers=) map uids root gave out deliberately, and they
 * keep their own limits.  The kernel's own per-user counts (ucounts:
 * RLIMIT_NPROC, RLIMIT_MEMLOCK's locked_vm) are charged up the same chain.
 */
static kuid_t kalloc_user_uid(const struct cred *cred)
{
	const struct user_namespace *ns;
	kuid_t uid = cred->uid;

	for (ns = cred->user_ns; ns != &init_user_ns; ns = ns->parent)
		if (!uid_eq(ns->owner, GLOBAL_ROOT_UID))
			uid = ns->owner;
	return uid;
}

/* The caller's user (see kalloc_user_uid()), as kalloc_user_get() gives it. */
struct kalloc_user *kalloc_user_current(void)
{
	return kalloc_user_get(kalloc_user_uid(current_cred()));
}

void kalloc_user_hold(struct kalloc_user *user)
{
	refcount_inc(&user->ref);
}

/* Once per region freed: the lock is taken each time, simply. */
void kalloc_user_put(struct kalloc_user *user)
{
	bool last;

	spin_lock(&kalloc_users_lock);
	last = refcount_dec_and_test(&user->ref);
	if (last)
		hash_del(&user->link);
	spin_unlock(&kalloc_users_lock);
	if (!last)
		return;
	WARN_ON_ONCE(atomic_long_read(&user->pages) ||
		     atomic_long_read(&user->regions) || user->pinned_nr);
	kfree(user);
}

/*
 * Count @nr more on @count; false (and nothing counted) if that would pass
 * @max (0: none) and @limited.  Adding first makes the check and the count
 * one atomic step: racing callers cannot overshoot.
 */
static bool kalloc_user_count(atomic_long_t *count, unsigned long nr,
			      unsigned long max, bool limited)
{
	long now = atomic_long_add_return(nr, count);

	if (limited && max && now > max) {
		atomic_long_sub(nr, count);
		return false;
	}
	return true;
}

/* @nr more pages against @user, within max_user_pages if @limited. */
bool kalloc_user_charge(struct kalloc_user *user, unsigned long nr,
			bool limited)
{
	return kalloc_user_count(&user->pages, nr,
				 READ_ONCE(kalloc_max_user_pages), limited);
}

void kalloc_user_uncharge(struct kalloc_user *user, unsigned long nr)
{
	atomic_long_sub(nr, &user->pages);
}

/*
 * One region more for @user, within max_user_regions if @limited.  A fork
 * copy is counted, never refused (as its pages are).
 */
bool kalloc_user_add_region(struct kalloc_user *user, bool limited)
{
	return kalloc_user_count(&user->regions, 1,
				 READ_ONCE(kalloc_max_user_regions), limited);
}

void kalloc_user_remove_region(struct kalloc_user *user)
{
	atomic_long_dec(&user->regions);
}

/*
 * The "userUID_resident PAGES" lines of /proc/kalloc: root sees every
 * user's, others their own (by the reader's real or effective uid).
 */
void kalloc_users_show(struct seq_file *m)
{
	const struct cred *cred = m->file->f_cred;
	struct user_namespace *ns = seq_user_ns(m);
	struct kalloc_user *user;
	int bkt;

	spin_lock(&kalloc_users_lock);
	hash_for_each(kalloc_users, bkt, user, link) {
		if (!uid_eq(cred->euid, GLOBAL_ROOT_UID) &&
		    !uid_eq(cred->euid, user->uid) &&
		    !uid_eq(cred->uid, user->uid))
			continue;
		seq_printf(m, "user%u_resident %ld\n",
			   from_kuid_munged(ns, user->uid),
			   atomic_long_read(&user->pages));
		seq_printf(m, "user%u_regions %ld\n",
			   from_kuid_munged(ns, user->uid),
			   atomic_long_read(&user->regions));
	}
	spin_unlock(&kalloc_users_lock);
}
