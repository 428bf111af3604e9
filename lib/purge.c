/* SPDX-License-Identifier: MIT */
/*
 * Purging with decay: a freed span stays resident for ka_decay_ms (1 s by
 * default, KALLOC_DECAY_MS, or mallopt(KA_M_DECAY_MS)) in case it is
 * wanted again, then its slices go back to the kernel (KALLOC_IOC_RELEASE
 * or MADV_DONTNEED, os.c); a segment left empty goes back to the region
 * pool.  A heap with pages also purges on a tick, every decay (100 ms at
 * least): its empty pages that free() left in their queues (page.c) go
 * back as spans then.  The owning thread does this from its slow path.
 * The huge cache (huge.c) is shared: any heap's purge gives back the
 * cached regions that are due, and a heap that cached one purges when it
 * is due.  malloc_trim(0) purges the caller's heap, the parked heaps
 * (heap.c), the abandoned segments and the huge cache at once and bumps
 * an epoch that makes every other heap purge everything on its next slow
 * path.
 *
 * The purge thread.  A program that frees everything and then sleeps, or
 * whose threads exit, never takes a slow path again, so something else
 * must give the memory back when the delay runs out.  As jemalloc's
 * background_thread, one thread per process does: it sleeps on a futex
 * until the soonest deadline anyone asked for (ka_purge_request: a span
 * came free in a segment, a huge region was cached, a thread exited), and
 * then gives back what is due of what nobody else would: the huge cache,
 * the heaps exited threads parked a decay ago (heap.c, as their owner for
 * the while), the dirty slices of every segment (under each segment's
 * lock, which the owner takes only to carve or free a span, segment.c) and
 * the abandoned segments, whose remote frees it collects (the first free
 * into one since it last looked asks it to, abandon.c).  With nothing due
 * it sleeps without a timeout: an idle process does not wake up for it.
 * It does not allocate, and blocks every signal.
 *
 * It starts lazily, never from inside the allocator's work (creating a
 * thread calls malloc): at the next purge of a heap after the first
 * request, or when a second thread gets a heap, since memory that an
 * exiting thread leaves is only collected by it.  fork(): the child has
 * no purge thread; the atfork handler forgets it, and the child starts
 * its own the same way (the allocator's locks, which it takes only under
 * those held around fork, are never held across it).  KALLOC_PURGE_THREAD=0
 * keeps it from starting: memory then goes back from the slow paths only.
 */
#include <link.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

_Atomic unsigned ka_purge_epoch;

static atomic_bool ka_purge_thread_off;	/* for good: KALLOC_PURGE_THREAD=0, privileges.c */
static _Atomic uint64_t ka_purge_due = UINT64_MAX;	/* the soonest deadline asked */
static _Atomic uint32_t ka_purge_seq;			/* futex word: bumped to wake */
static atomic_int ka_purge_state;	/* 0 none, 1 starting, 2 running */
static atomic_bool ka_purge_wanted;	/* a request came before it ran */
static _Atomic unsigned ka_purge_gen;	/* a thread started under another one ends */
static pthread_t ka_purge_th;		/* joinable: a stop waits for its end */
/* The caller is the purge thread. */
static __thread bool ka_tls_purger __attribute__((tls_model("initial-exec")));
static ka_lock_t ka_purge_start_lock;	/* starts and stops, one at a time */

void ka_purge_init(void)
{
	atomic_store_explicit(&ka_purge_thread_off, ka_options.purge_thread_off, KA_RELAXED);
}

/* When slices freed now are due to go back; 0: at once (a delay of 0). */
uint64_t ka_purge_deadline(void)
{
	uint64_t decay = atomic_load_explicit(&ka_decay_ms, KA_RELAXED);

	return decay ? ka_os_now_ms() + decay : 0;
}

/*
 * A span of seg came free (segment.c, under seg's lock no more); due is
 * the deadline ka_span_free set for its slices, 0 if it set none.
 */
void ka_span_became_dirty(ka_heap_t *heap, ka_segment_t *seg, uint64_t due)
{
	if (due == 0) {
		if (seg->used == 1 && atomic_load_explicit(&ka_decay_ms, KA_RELAXED) == 0)
			heap->purge_next = 0;	/* return it from the slow path */
		return;
	}
	if (due < heap->purge_next)
		heap->purge_next = due;
	ka_purge_request(due);
}

/* Ask the purge thread to run by when (ms). */
void ka_purge_request(uint64_t when)
{
	uint64_t cur = atomic_load_explicit(&ka_purge_due, KA_RELAXED);

	if (atomic_load_explicit(&ka_purge_thread_off, KA_RELAXED))
		return;
	do {
		if (when >= cur)
			return;
	} while (!atomic_compare_exchange_weak(&ka_purge_due, &cur, when));
	if (atomic_load_explicit(&ka_purge_state, memory_order_acquire) != 2) {
		atomic_store_explicit(&ka_purge_wanted, true, KA_RELAXED);
		return;
	}
	atomic_fetch_add(&ka_purge_seq, 1);
	ka_futex(&ka_purge_seq, FUTEX_WAKE, INT_MAX, NULL);	/* an ending one too */
}

/* One pass: what is due goes back; the soonest deadline left. */
static uint64_t ka_purge_pass(uint64_t now)
{
	uint64_t next = UINT64_MAX;

	ka_huge_cache_purge(now, false, &next);		/* sets next: first */
	ka_heaps_unpark(now, false, &next);
	ka_segments_collect_abandoned(now, false, &next);
	ka_segments_purge_owned(now, &next);
	return next;
}

/*
 * When the purge thread looks whether it is the process's only live
 * thread; 0: no look asked.  A thread with a heap exited and liballoc did
 * not take it for the last (thread.c): a heap whose thread it cannot see
 * go (a first malloc in glibc's last destructor round, heap.c) counts as
 * a live thread's.  Alone, the purge thread ends, and glibc ends the
 * process with it (exit(0)), as it would have at that thread's end but
 * for the purge thread.  A little after the exit: the thread that asked
 * is still running its destructors.  It, or a thread that never
 * allocated, may still be there then, so a look that finds another live
 * thread looks again after ten times the wait (1 s, then 10, then 100),
 * then no more until the next exit (KA_PURGE_ALONE_LOOKS).  Each exit moves the
 * look later and wakes the purge thread only when no look was due: a
 * thread-churning program pays about one wake-up, and one look, per
 * 100 ms, and no purge pass.
 */
static _Atomic uint64_t ka_purge_alone_at;
static _Atomic unsigned ka_purge_alone_looks;	/* left, with that one */
#define KA_PURGE_ALONE_MS	100
#define KA_PURGE_ALONE_LOOKS	4		/* 0.1, 1, 10, 100 s apart */

void ka_purge_thread_left_alone(void)
{
	uint64_t at = ka_os_now_ms() + KA_PURGE_ALONE_MS;

	if (!ka_purge_thread_running())
		return;
	atomic_store_explicit(&ka_purge_alone_looks, KA_PURGE_ALONE_LOOKS, KA_RELAXED);
	if (atomic_exchange(&ka_purge_alone_at, at) == 0 &&
	    at < atomic_load_explicit(&ka_purge_due, KA_RELAXED)) {
		atomic_fetch_add(&ka_purge_seq, 1);	/* its wait ends: the new wake */
		ka_futex(&ka_purge_seq, FUTEX_WAKE, INT_MAX, NULL);
	}
}

/*
 * When the purge thread looks for heaps whose thread is gone without its
 * destructor (heap.c, ka_heaps_release_vanished); 0: no look asked.  A
 * thread whose first malloc runs in glibc's last round of destructors is
 * gone a moment after it took a heap, and nothing tells liballoc: so each
 * thread's first malloc asks for a look a second later, unless one is
 * asked already.  After a look, if a thread asked in the second before
 * it (its thread may still have been running its destructors), another
 * comes a second after that ask.  A thread-churning program pays about
 * one look a second, a system call per heap in use, and the look after
 * its last new thread comes a second after it.
 */
static _Atomic uint64_t ka_purge_vanished_at;
static _Atomic uint64_t ka_purge_vanished_asked;	/* ms, the last ask */
#define KA_PURGE_VANISHED_MS	1000

void ka_purge_look_for_vanished(void)
{
	uint64_t now = ka_os_now_ms(), none = 0;

	/* Then the look: seen there unless this sees it pending. */
	atomic_store(&ka_purge_vanished_asked, now);
	if (atomic_load(&ka_purge_vanished_at) != 0 ||
	    !atomic_compare_exchange_strong(&ka_purge_vanished_at, &none, now + KA_PURGE_VANISHED_MS))
		return;
	/* Kept for a purge thread that starts later. */
	if (ka_purge_thread_running() &&
	    now + KA_PURGE_VANISHED_MS < atomic_load_explicit(&ka_purge_due, KA_RELAXED)) {
		atomic_fetch_add(&ka_purge_seq, 1);	/* its wait ends: the new wake */
		ka_futex(&ka_purge_seq, FUTEX_WAKE, INT_MAX, NULL);
	}
}

/* The look (above), and the next if a thread asked in the last second. */
static void ka_purge_vanished_look(uint64_t now)
{
	uint64_t none = 0;

	ka_heaps_release_vanished();
	uint64_t asked = atomic_load(&ka_purge_vanished_asked);
	if (asked + KA_PURGE_VANISHED_MS > now)
		atomic_compare_exchange_strong(&ka_purge_vanished_at, &none,
					       asked + KA_PURGE_VANISHED_MS);
}

/* Alone now?  If not, the next look, if one is left (see above). */
static bool ka_purge_thread_alone(uint64_t now)
{
	int live = ka_os_live_threads(2);
	unsigned left = atomic_load_explicit(&ka_purge_alone_looks, KA_RELAXED);
	uint64_t none = 0, gap = KA_PURGE_ALONE_MS;

	if (live == 1)
		return true;
	if (live > 1 && left > 1) {
		atomic_store_explicit(&ka_purge_alone_looks, left - 1, KA_RELAXED);
		for (unsigned i = left; i <= KA_PURGE_ALONE_LOOKS; i++)
			gap *= 10;
		/* unless an exit asked for its own meanwhile */
		atomic_compare_exchange_strong(&ka_purge_alone_at, &none, now + gap);
	}
	return false;
}

/*
 * The purge thread found itself alone: it ends as a retire ends it, so
 * that if it was wrong -- a thread listed in /proc started another and
 * ended between the listing and the reads (an outside review's relay of
 * threads) -- the process goes on and the next slow path that wants one
 * starts a new one.  Only tried: ka_purge_thread_end() joins under the
 * start lock.  False if it must go on (it is not its to end).
 */
static bool ka_purge_thread_quit(unsigned gen)
{
	bool quit = false;

	if (!ka_trylock(&ka_purge_start_lock))
		return false;
	if (atomic_load(&ka_purge_gen) == gen &&
	    atomic_load_explicit(&ka_purge_state, memory_order_acquire) == 2) {
		atomic_fetch_add(&ka_purge_gen, 1);
		pthread_detach(pthread_self());
		atomic_store(&ka_purge_state, 0);
		atomic_store_explicit(&ka_purge_wanted, true, KA_RELAXED);
		quit = true;
	}
	ka_unlock(&ka_purge_start_lock);
	return quit;
}

static void *ka_purge_thread(void *arg)
{
	unsigned gen = (unsigned)(uintptr_t)arg;

	ka_tls_purger = true;
	prctl(PR_SET_NAME, "kalloc-purge", 0, 0, 0);
	for (;;) {
		uint32_t seq = atomic_load(&ka_purge_seq);

		if (atomic_load(&ka_purge_gen) != gen)
			return NULL;
		uint64_t due = atomic_load(&ka_purge_due), now = ka_os_now_ms();
		uint64_t alone = atomic_load(&ka_purge_alone_at);
		uint64_t vanished = atomic_load(&ka_purge_vanished_at);

		/* Taken only if no later exit asked again meanwhile. */
		if (alone && alone <= now &&
		    atomic_compare_exchange_strong(&ka_purge_alone_at, &alone, 0)) {
			if (ka_purge_thread_alone(now) && ka_purge_thread_quit(gen))
				return NULL;	/* the last: glibc exits */
			continue;
		}
		/* The look for vanished threads' heaps, taken once too. */
		if (vanished && vanished <= now &&
		    atomic_compare_exchange_strong(&ka_purge_vanished_at, &vanished, 0)) {
			ka_purge_vanished_look(now);
			continue;
		}
		if (due <= now) {
			atomic_store(&ka_purge_due, UINT64_MAX);
			ka_purge_request(ka_purge_pass(now));
			continue;
		}
		uint64_t wake = alone && alone < due ? alone : due;

		if (vanished && vanished < wake)
			wake = vanished;

		if (wake == UINT64_MAX) {
			ka_futex(&ka_purge_seq, FUTEX_WAIT, seq, NULL);
			continue;
		}
		/* The coarse clock lags the futex's by up to a tick: 4 ms more. */
		uint64_t ms = wake - now + 4;
		struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };
		ka_futex(&ka_purge_seq, FUTEX_WAIT, seq, &ts);
	}
	return NULL;
}

/*
 * fork() child (fork.c's handler, registered before any thread could
 * start): the thread is the parent's; the next safe point starts one.  The
 * start lock is let go whatever the state: another thread of the parent
 * may have held it, starting or ending the thread, when it forked.
 */
void ka_purge_fork_child(void)
{
	atomic_store_explicit(&ka_purge_start_lock.v, 0, KA_RELAXED);
	if (atomic_exchange_explicit(&ka_purge_state, 0, KA_RELAXED) == 0)
		return;
	atomic_store_explicit(&ka_purge_wanted, true, KA_RELAXED);
	atomic_store_explicit(&ka_purge_due, 0, KA_RELAXED);
}

#define KA_PURGE_STACK	(1UL << 20)

static int ka_tls_block(struct dl_phdr_info *info, size_t size, void *sum)
{
	(void)size;
	for (unsigned i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_TLS)
			*(size_t *)sum += info->dlpi_phdr[i].p_memsz + info->dlpi_phdr[i].p_align;
	return 0;
}

/*
 * The purge thread's stack size: KA_PURGE_STACK of stack, plus the static
 * TLS of the modules loaded, which glibc takes out of the size asked for
 * (musl adds it on top).  Well under 2 MiB for most programs.
 */
static size_t ka_purge_stack_size(void)
{
	size_t tls = 0;

	dl_iterate_phdr(ka_tls_block, &tls);
	return KA_PURGE_STACK + ((tls + 4095) & ~(size_t)4095);
}

/*
 * Start the purge thread if it is not running.  Only from a point where
 * the caller's heap is consistent and no allocator lock is held:
 * pthread_create calls malloc.  Never from a thread past its destructor,
 * which may be the process's last (thread.c), nor from the purge thread
 * itself, which runs exit() when it ends last, nor from a thread giving
 * back a parked heap (heap.c), whose ka_tls_heap is not its own, nor from
 * an atfork handler's malloc (fork.c): the forking thread holds every
 * allocator lock there, which the new thread's first steps may want.
 */
void ka_purge_thread_start(void)
{
	int expected = 0;
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t th;

	if (atomic_load_explicit(&ka_purge_thread_off, KA_RELAXED) || ka_tls_exited ||
	    ka_tls_purger || ka_tls_heap_borrowed || ka_in_fork_window() ||
	    atomic_load_explicit(&ka_purge_state, KA_RELAXED) != 0)
		return;
	/*
	 * Before the start lock: dl_iterate_phdr() takes the loader's lock,
	 * which a thread may hold while its callback calls malloc() and
	 * comes here for the start lock.
	 */
	size_t stack = ka_purge_stack_size();

	/*
	 * Tried, not waited for: the holder may be starting the thread, and
	 * pthread_create() waits for the loader's TLS lock, which dlopen()
	 * holds while it calls malloc(), which may come here.  The want is
	 * kept for the next slow path's try.  If the holder was starting the
	 * thread, the flag stays set while it runs, and each heap purge pays
	 * the early return above: a few loads.
	 */
	if (!ka_trylock(&ka_purge_start_lock)) {
		atomic_store_explicit(&ka_purge_wanted, true, KA_RELAXED);
		return;
	}
	/* again under the lock: ka_purge_thread_disable() may have run */
	if (atomic_load_explicit(&ka_purge_thread_off, KA_RELAXED) ||
	    !atomic_compare_exchange_strong(&ka_purge_state, &expected, 1)) {
		ka_unlock(&ka_purge_start_lock);
		return;
	}
	atomic_store_explicit(&ka_purge_wanted, false, KA_RELAXED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	bool ok = pthread_attr_init(&attr) == 0;
	if (ok) {
		void *gen = (void *)(uintptr_t)atomic_load(&ka_purge_gen);
		/*
		 * 1 MiB of stack: the default (RLIMIT_STACK, 8 MiB) is an
		 * anonymous mapping where THP "always" backs the stack's first
		 * touch with a 2 MiB page, every process's 2 MiB for a thread
		 * that uses a few KiB (kernels since 6.7 mark MAP_STACK
		 * mappings VM_NOHUGEPAGE themselves; Debian 12's 6.1 does
		 * not).  1 MiB still leaves room for exit()'s handlers, which
		 * this thread runs when it ends last.  Refused: the default.
		 */
		int err = pthread_attr_setstacksize(&attr, stack);
		if (!err)
			err = pthread_create(&th, &attr, ka_purge_thread, gen);
		pthread_attr_destroy(&attr);
		if (err == EINVAL)
			err = pthread_create(&th, NULL, ka_purge_thread, gen);
		ok = err == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ok)
		ka_purge_th = th;
	/* Failed: the slow paths purge as before, and it is not tried again. */
	atomic_store_explicit(&ka_purge_state, ok ? 2 : 1, memory_order_release);
	ka_unlock(&ka_purge_start_lock);
	if (ok)
		ka_purge_request(0);	/* what was asked before it ran */
}

/*
 * End the purge thread: wait for it (namespace.c: unshare() and setns()
 * refuse a process with more than one thread), or not (the last heap went
 * back, thread.c: the caller may be the last thread, and the process must
 * end with it).  True if one was running.  It starts again at the next
 * safe point that has work for it.
 */
static bool ka_purge_thread_end(bool wait)
{
	bool was = false;

	/*
	 * Not from a handler inside fork() (fork.c): the purge thread may be
	 * waiting for a lock the forking thread holds there, and in the child
	 * it is not there at all (ka_purge_fork_child() forgets it).
	 */
	if (ka_in_fork_window())
		return false;
	ka_lock(&ka_purge_start_lock);
	if (atomic_load_explicit(&ka_purge_state, memory_order_acquire) == 2) {
		atomic_fetch_add(&ka_purge_gen, 1);
		atomic_fetch_add(&ka_purge_seq, 1);
		ka_futex(&ka_purge_seq, FUTEX_WAKE, INT_MAX, NULL);
		if (wait)
			pthread_join(ka_purge_th, NULL);
		else
			pthread_detach(ka_purge_th);
		atomic_store(&ka_purge_state, 0);
		atomic_store_explicit(&ka_purge_wanted, true, KA_RELAXED);
		was = true;
	}
	ka_unlock(&ka_purge_start_lock);
	return was;
}

/* It runs: what is left for it now comes back on the decay (heap.c). */
bool ka_purge_thread_running(void)
{
	return !atomic_load_explicit(&ka_purge_thread_off, KA_RELAXED) &&
	       atomic_load_explicit(&ka_purge_state, memory_order_acquire) == 2;
}

/* Its stack size as the thread library reports it, 0 if none runs (for
 * test_api).  pthread_getattr_np() allocates under the start lock: a start
 * that allocation may ask for only tries the lock. */
size_t ka_purge_thread_stack(void)
{
	pthread_attr_t attr;
	size_t size = 0;

	ka_lock(&ka_purge_start_lock);
	if (atomic_load_explicit(&ka_purge_state, memory_order_acquire) == 2 &&
	    pthread_getattr_np(ka_purge_th, &attr) == 0) {
		pthread_attr_getstacksize(&attr, &size);
		pthread_attr_destroy(&attr);
	}
	ka_unlock(&ka_purge_start_lock);
	return size;
}

/* End it and wait (namespace.c); the parked heaps, which it would have
 * come for, give their memory back: it starts again only when some
 * thread's slow path has work for it. */
bool ka_purge_thread_stop(void)
{
	bool was = ka_purge_thread_end(true);

	ka_heaps_unpark(0, true, NULL);
	return was;
}

/* End it, waiting, and never start it again in this process (privileges.c);
 * the parked heaps, which it would have come for, give their memory back. */
void ka_purge_thread_disable(void)
{
	atomic_store_explicit(&ka_purge_thread_off, true, KA_RELAXED);
	ka_purge_thread_stop();
}

void ka_purge_thread_retire(void)
{
	ka_purge_thread_end(false);
}

/*
 * When a heap with pages looks at them next.  Its empty pages wait in
 * their queues (page.c) until then: on the tick they go back as spans,
 * which become dirty and go back to the kernel a decay later.  Not sooner
 * than 100 ms: with a decay of 0, walking every page on every slow path
 * would cost more than the memory is worth.
 */
uint64_t ka_purge_tick(ka_heap_t *heap)
{
	uint64_t d = atomic_load_explicit(&ka_decay_ms, KA_RELAXED);
	uint64_t t = ka_os_now_ms() + (d > 100 ? d : 100);

	return t < heap->purge_next ? t : heap->purge_next;
}

void ka_heap_purge(ka_heap_t *heap, bool force)
{
	unsigned epoch = atomic_load_explicit(&ka_purge_epoch, KA_RELAXED);

	if (KA_UNLIKELY(atomic_load_explicit(&ka_purge_wanted, KA_RELAXED)))
		ka_purge_thread_start();

	/* A trim asked for, unless the heap is busy with its kept blocks
	 * (a free there emptied a page): then at its next purge, so that the
	 * flush the trim wants is not lost (foreign.c). */
	if (heap->purge_epoch != epoch && !heap->foreign_busy) {
		heap->purge_epoch = epoch;
		force = true;
	}
	uint64_t now = ka_os_now_ms();
	if (!force && now < heap->purge_next)
		return;

	ka_heap_change_begin(heap);
	if (force)		/* malloc_trim(0): kept blocks to their pages first */
		ka_foreign_flush(heap, false);
	ka_heap_free_empty_pages(heap);
	if (force)		/* see page.c for why not on the tick */
		ka_heap_release_free_blocks(heap);

	uint64_t next = UINT64_MAX;
	ka_segment_t *seg, *n;
	for (seg = heap->segs_avail; seg; seg = n) {
		n = seg->next;
		if (!ka_segment_purge(seg, now, force, &next))
			continue;
		if (seg->used == 1) {
			ka_seg_list_remove(&heap->segs_avail, seg);
			ka_segment_set_heap(seg, NULL);
			ka_segment_to_pool(seg);
		}
	}
	uint64_t huge_next;
	ka_huge_cache_purge(now, force, &huge_next);
	heap->purge_next = next < huge_next ? next : huge_next;
	if (heap->pages)
		heap->purge_next = ka_purge_tick(heap);
	ka_heap_change_end(heap);
}

int ka_malloc_trim(size_t pad)
{
	ka_heap_t *heap = ka_tls_heap;
	uint64_t before = atomic_load(&ka_os_released_bytes);

	(void)pad;
	ka_process_init();
	bool huge = ka_huge_cache_purge(0, true, NULL);	/* before the heap's purge does */
	if (heap != &ka_heap_empty) {
		ka_heap_drain_delayed(heap);
		ka_heap_purge(heap, true);
	}
	ka_heaps_unpark(0, true, NULL);
	ka_heaps_drain_idle();
	uint64_t next = UINT64_MAX;
	ka_segments_collect_abandoned(ka_os_now_ms(), true, &next);
	unsigned epoch = atomic_fetch_add(&ka_purge_epoch, 1) + 1;
	if (heap != &ka_heap_empty)
		heap->purge_epoch = epoch;
	return huge || atomic_load(&ka_os_released_bytes) > before;
}
