// SPDX-License-Identifier: GPL-2.0
/*
 * Pages a region gave up while someone else still held them.
 *
 * A pipe that a page was vmsplice()d into, an O_DIRECT read in flight, an
 * io_uring fixed buffer: each holds a reference to a region's page, taken
 * through get_user_pages() while the page was mapped, and may keep it long
 * after RELEASE or the region's end have dropped the region's own.  The
 * page stays allocated (and charged to its memcg) until the last holder
 * lets go.  Were its claim given back at once, its user could take the
 * same memory again and again: fault a page, vmsplice() 4 KiB of it into
 * a pipe, RELEASE it, and repeat, with max_user_pages and max_pages
 * counting nothing, and with a PMD block of 2 MiB held by each 4 KiB.
 *
 * So a page that is about to be freed while its count says another holder
 * has it is kept instead, with the region's reference, still claimed
 * against its user and the totals.  The region's is the only reference
 * once no page table maps the page: RELEASE zaps first, and a region whose
 * owner exits is freed only once its vmas are closed (see
 * kalloc_region_owner_gone()).
 *
 * Each user's kept pages are a list of their own.  A worker looks at up
 * to KALLOC_PINNED_BATCH pages of each user every KALLOC_PINNED_INTERVAL
 * (less often while it finds them all still held), in turn, and frees
 * those whose count has fallen to ours: a user who
 * keeps millions of pages in pipes costs the worker no more than one who
 * keeps a few, and is the one whose pages wait longest to be found.  A
 * claim that would fail first looks at all of its own user's kept pages
 * (kalloc_pinned_reap()), so that memory a holder has let go of since is
 * not refused; that walk is as long as the user made it, and the user's
 * alone.  At the global limit it looks at a batch of everyone's too.
 * Module exit frees every kept page: the region's reference goes, and the
 * holder's last put frees the page as it would any other.
 *
 * The page itself carries the bookkeeping, as a driver's page pool does:
 * it is off the LRU, not in any page cache and has no private data, so
 * its lru links it into its user's list and its private field names the
 * user and the backing.  Keeping a page thus never allocates, and never
 * fails.
 */
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include "kalloc.h"

#define KALLOC_PINNED_INTERVAL	HZ
#define KALLOC_PINNED_INTERVAL_MAX	(16 * HZ)
#define KALLOC_PINNED_BATCH	1024

/* page_private(): the user, and this bit for a VMALLOC region's page */
#define KALLOC_PINNED_VMALLOC	1UL

/* The users that have kept pages, and every user's list of them. */
static LIST_HEAD(kalloc_pinned_users);
static DEFINE_SPINLOCK(kalloc_pinned_lock);
static atomic_long_t kalloc_pinned_total = ATOMIC_LONG_INIT(0);

static void kalloc_pinned_work_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(kalloc_pinned_work, kalloc_pinned_work_fn);
/*
 * The worker's next look: KALLOC_PINNED_INTERVAL after one that freed
 * pages, twice as long (up to KALLOC_PINNED_INTERVAL_MAX) after one that
 * found every page still held, so that a buffer io_uring keeps for good
 * does not wake a CPU every second.  Only the worker writes it.
 */
static unsigned long kalloc_pinned_delay = KALLOC_PINNED_INTERVAL;

static_assert(__alignof__(struct kalloc_user) > KALLOC_PINNED_VMALLOC);

/*
 * @page (a single page, or a compound block's head) is about to leave
 * @region, which no page table maps it through any more.  If another
 * holder still has it, keep it with the region's reference and its claim
 * (true): the caller has only to forget it.  False if the caller should
 * free it now.
 */
bool kalloc_pinned_keep(struct kalloc_region *region, struct page *page)
{
	struct kalloc_user *user = region->user;
	unsigned long private = (unsigned long)user;

	if (page_count(page) == 1)
		return false;
	if (region->backing == KALLOC_BACKING_VMALLOC)
		private |= KALLOC_PINNED_VMALLOC;
	kalloc_user_hold(user);
	set_page_private(page, private);
	/* counted before a walk can find it and take it off the count */
	atomic_long_add(1L << compound_order(page), &kalloc_pinned_total);
	spin_lock(&kalloc_pinned_lock);
	if (!user->pinned_nr++)
		list_add_tail(&user->pinned_link, &kalloc_pinned_users);
	list_add_tail(&page->lru, &user->pinned);
	spin_unlock(&kalloc_pinned_lock);
	schedule_delayed_work(&kalloc_pinned_work, READ_ONCE(kalloc_pinned_delay));
	return true;
}

/* Give a kept page's claim back and drop the region's reference to it. */
static void kalloc_pinned_free(struct page *page)
{
	unsigned long private = page_private(page);
	struct kalloc_user *user = (void *)(private & ~KALLOC_PINNED_VMALLOC);
	unsigned int order = compound_order(page);

	set_page_private(page, 0);
	atomic_long_sub(1L << order, &kalloc_pinned_total);
	kalloc_unclaim_pages(user, private & KALLOC_PINNED_VMALLOC ?
			     KALLOC_BACKING_VMALLOC : KALLOC_BACKING_PAGES,
			     1UL << order);
	kalloc_user_put(user);
	__free_pages(page, order);
}

/*
 * Look at up to @budget of @user's kept pages, oldest first, and free
 * those nobody else holds any more (with @all, every one).  The caller
 * holds a reference to @user.  The list is taken whole and walked without
 * the lock, so that keeping a page never waits for a walk; the pages
 * looked at and kept go back behind the others, so that the next walk
 * starts where this one stopped.  Returns the pages freed.
 */
static unsigned long kalloc_pinned_walk(struct kalloc_user *user,
					unsigned long budget, bool all)
{
	unsigned long freed = 0, gone = 0;
	struct page *page, *next;
	LIST_HEAD(walk);
	LIST_HEAD(seen);

	mutex_lock(&user->pinned_walk);
	spin_lock(&kalloc_pinned_lock);
	list_splice_init(&user->pinned, &walk);
	spin_unlock(&kalloc_pinned_lock);
	list_for_each_entry_safe(page, next, &walk, lru) {
		if (!budget--)
			break;
		cond_resched();
		if (!all && page_count(page) != 1) {
			list_move_tail(&page->lru, &seen);
			continue;
		}
		list_del(&page->lru);
		freed += 1UL << compound_order(page);
		gone++;
		kalloc_pinned_free(page);
	}
	spin_lock(&kalloc_pinned_lock);
	list_splice(&walk, &user->pinned);
	list_splice_tail(&seen, &user->pinned);
	user->pinned_nr -= gone;
	if (gone && !user->pinned_nr)
		list_del(&user->pinned_link);
	spin_unlock(&kalloc_pinned_lock);
	mutex_unlock(&user->pinned_walk);
	return freed;
}

static unsigned long kalloc_pinned_walk_users(unsigned long budget, bool all);

/*
 * A claim of @user's is about to fail, at the user's limit, or at the
 * global one (@everyone): free what the holders have let go of since, all
 * of the user's own kept pages and, for the global limit, a batch of every
 * other user's.  True if pages were freed, here or by a walk this one
 * waited for: two walks of one user's list never run at once, so that one
 * cannot find it empty while the other has it.
 */
bool kalloc_pinned_reap(struct kalloc_user *user, bool everyone)
{
	long before = atomic_long_read(&kalloc_pinned_total);

	if (!before)
		return false;
	kalloc_pinned_walk(user, ULONG_MAX, false);
	if (everyone)
		kalloc_pinned_walk_users(KALLOC_PINNED_BATCH, false);
	return atomic_long_read(&kalloc_pinned_total) < before;
}

/*
 * Each user that has kept pages in turn, once, with @budget pages each.
 * A user is held while its pages are looked at; it stays listed while it
 * has kept pages, and each of them holds it.
 */
static unsigned long kalloc_pinned_walk_users(unsigned long budget, bool all)
{
	struct kalloc_user *user;
	unsigned long users = 0, freed = 0;

	spin_lock(&kalloc_pinned_lock);
	list_for_each_entry(user, &kalloc_pinned_users, pinned_link)
		users++;
	spin_unlock(&kalloc_pinned_lock);
	while (users--) {
		spin_lock(&kalloc_pinned_lock);
		user = list_first_entry_or_null(&kalloc_pinned_users,
						struct kalloc_user, pinned_link);
		if (user) {
			list_move_tail(&user->pinned_link, &kalloc_pinned_users);
			kalloc_user_hold(user);
		}
		spin_unlock(&kalloc_pinned_lock);
		if (!user)
			break;
		freed += kalloc_pinned_walk(user, budget, all);
		kalloc_user_put(user);
	}
	return freed;
}

static void kalloc_pinned_work_fn(struct work_struct *work)
{
	unsigned long delay = KALLOC_PINNED_INTERVAL;

	if (!kalloc_pinned_walk_users(KALLOC_PINNED_BATCH, false))
		delay = min(kalloc_pinned_delay * 2,
			    (unsigned long)KALLOC_PINNED_INTERVAL_MAX);
	WRITE_ONCE(kalloc_pinned_delay, delay);
	if (atomic_long_read(&kalloc_pinned_total))
		schedule_delayed_work(&kalloc_pinned_work, delay);
}

/* Pages kept, for /proc/kalloc. */
unsigned long kalloc_pinned_pages(void)
{
	return atomic_long_read(&kalloc_pinned_total);
}

/* Module exit: no region is left to keep a page, so the walk is the last. */
void kalloc_pinned_exit(void)
{
	cancel_delayed_work_sync(&kalloc_pinned_work);
	kalloc_pinned_walk_users(ULONG_MAX, true);
}
