#!/bin/sh
# Runs liballoc's tests and prints TAP.  From lib/: sh test/run.sh [vm]
# KALLOC_TEST_BACKEND (anon by default) is the backend every test runs on.
#
# vm (or KALLOC_TEST_VM=1): what proves the device path, for the QEMU guest
# (tools/kalloc-vm -- sh lib/test/run.sh vm): the plain unit tests, the
# stress test (shorter), the linking and LD_PRELOAD tests and the real
# programs, over the device by default; the ASan/UBSan/TSan builds run on
# the host only.  Each test's time follows it as a "# time" comment.
set -u
cd "$(dirname "$0")/.."
B=build
LIB=$PWD/liballoc.so
vm=0
if [ "${1:-}" = vm ] || [ "${KALLOC_TEST_VM:-0}" = 1 ]; then
	vm=1
fi
if [ $vm = 1 ]; then
	export KALLOC_BACKEND=${KALLOC_TEST_BACKEND:-device}
else
	export KALLOC_BACKEND=${KALLOC_TEST_BACKEND:-anon}
fi
export KALLOC_QUIET=1
export TLS_LIB=$PWD/$B/tls_lib.so
export REFUSE_PMD_LIB=$PWD/$B/refuse_pmd.so
n=0
failed=0

# t DESCRIPTION COMMAND...: one TAP line; the output of a failure as comments.
t() {
	desc=$1
	shift
	n=$((n + 1))
	t0=$(date +%s%N)
	"$@" 3>"$B/note.$n" >"$B/out.$n" 2>&1
	rc=$?
	t1=$(date +%s%N)
	if [ $rc = 0 ]; then
		echo "ok $n - $desc"
	elif [ $rc = 77 ]; then
		echo "ok $n - $desc # SKIP $(sed -n 's/^# //p' "$B/out.$n" | head -n 1)"
	else
		echo "not ok $n - $desc"
		sed -e 's/^/# /' "$B/out.$n" | tail -n 15
		failed=$((failed + 1))
	fi
	[ $vm = 0 ] || awk -v d=$((t1 - t0)) 'BEGIN { printf "# time %.2f s\n", d / 1e9 }'
	cat "$B/note.$n"
}

skip() {
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}

start=$(date +%s)
echo "# backend: $KALLOC_BACKEND$( [ $vm = 1 ] && echo ', vm mode: no sanitizer builds')"
if [ "$KALLOC_BACKEND" = device ] && ! [ -e /dev/kalloc ]; then
	echo "Bail out! KALLOC_BACKEND=device but there is no /dev/kalloc"
	exit 1
fi
variants="test_api test_api_asan test_api_ubsan"
[ $vm = 1 ] && variants=test_api
for variant in $variants; do
	$B/$variant list | while IFS='	' read -r name what; do
		echo "$name	$what"
	done >"$B/$variant.list"
	while IFS='	' read -r name what; do
		t "$variant: $what" timeout 120 "$B/$variant" "$name"
	done <"$B/$variant.list"
done

if [ $vm = 1 ]; then
	# The guest's THP is Debian's "always", which the host's may not be.
	t "test_api over anonymous memory: no 2 MiB page under a small heap where THP is always" \
		env KALLOC_BACKEND=anon timeout 120 $B/test_api small_process_takes_no_huge_pages
	t "stress: 8 threads, random malloc/free/realloc, cross-thread frees, contents checked" \
		timeout 60 $B/test_stress 2
else
	t "stress: 8 threads, random malloc/free/realloc, cross-thread frees, contents checked" \
		timeout 60 $B/test_stress 4
	t "stress under ASan" timeout 60 $B/test_stress_asan 2
	t "stress under KALLOC_DEBUG=1: no false use-after-free report" \
		env KALLOC_DEBUG=1 timeout 60 $B/test_stress 3
	# TSan wants a fixed layout on kernels with many mmap random bits.
	norandom=
	setarch -R true 2>/dev/null && norandom="setarch -R"
	t "stress under TSan: no data races" env TSAN_OPTIONS=halt_on_error=1 timeout 60 $norandom $B/test_stress_tsan 2
	t "stress under TSan with KALLOC_DEBUG=1: the checks race with nothing" \
		env KALLOC_DEBUG=1 TSAN_OPTIONS=halt_on_error=1 timeout 60 $norandom $B/test_stress_tsan 2
fi

# Threads whose memory is left behind without their destructor running:
# in a forked child, and after liballoc's destructor (test_fork_threads.c;
# programs.sh runs it under LD_PRELOAD too).  Fewer children and rounds in
# the VM, where a fork copies every resident kalloc page: 1.5 s a child.
fork_n=100 tsd_n=20
[ $vm = 1 ] && fork_n=10 tsd_n=5
t "after fork, $fork_n children: the gone thread holds no heap, and no block goes to two of 32 new threads" \
	timeout 120 $B/test_fork_threads fork $fork_n
t "threads allocating in their last destructor round ($tsd_n rounds) get distinct blocks, so do those after" \
	timeout 120 $B/test_fork_threads tsd $tsd_n
# Forks while 3 threads are in malloc and free: a child must not take
# over a page one of them left halfway.  KALLOC_DEBUG's checks see such a
# page (a span half junk); before the fix 27 of 200 children died so.
busy_n=200
[ $vm = 1 ] && busy_n=10
t "fork while 3 threads allocate and free, $busy_n children: their memory is reused, no block twice" \
	timeout 120 $B/test_fork_threads busy $busy_n
t "the same with KALLOC_DEBUG=1: no child finds a page left halfway" \
	env KALLOC_DEBUG=1 timeout 120 $B/test_fork_threads busy $busy_n
caught_n=20
[ $vm = 1 ] && caught_n=5
t "fork while a thread is halfway through a change, $caught_n children: its heap counts as caught, its segments stay unused" \
	timeout 120 $B/test_fork_threads caught $caught_n
if [ $vm = 0 ]; then
	# TSan (gcc 12) takes a child thread on a stack of a thread the
	# child lacks for a duplicate ("dup thread with used id"): the purge
	# thread would be one, so it stays off here.
	t "fork with threads under TSan (30 children): no data races" \
		env TSAN_OPTIONS="halt_on_error=1 die_after_fork=0" KALLOC_PURGE_THREAD=0 timeout 120 $norandom \
		$B/test_fork_threads_tsan fork 30
	t "allocation after the thread's destructor under TSan: no data races" \
		env TSAN_OPTIONS="halt_on_error=1" timeout 120 $norandom $B/test_fork_threads_tsan tsd
	t "fork while 3 threads allocate and free, under TSan (100 children): no data races" \
		env TSAN_OPTIONS="halt_on_error=1 die_after_fork=0" KALLOC_PURGE_THREAD=0 timeout 120 $norandom \
		$B/test_fork_threads_tsan busy 100
fi

for b in test_link test_link_static test_link_so; do
	$B/$b list >"$B/$b.list"
	while IFS='	' read -r name what; do
		t "$b: $what" timeout 60 "$B/$b" "$name"
	done <"$B/$b.list"
done

$B/test_preload list >"$B/test_preload.list"
while IFS='	' read -r name what; do
	t "LD_PRELOAD: $what" env LD_PRELOAD="$LIB" timeout 60 "$B/test_preload" "$name"
done <"$B/test_preload.list"

# The auto backend tries the device first; where there is none, the
# failed open must not leave errno set for main (glibc's run shows 0).
errno_auto() {
	$B/test_preload errno_at_start &&
	env LD_PRELOAD="$LIB" KALLOC_BACKEND=auto $B/test_preload errno_at_start
}
t "errno is 0 at main under LD_PRELOAD with the auto backend, as without it" errno_auto
glibc_names() {
	$B/test_preload glibc_names_and_answers &&
	env LD_PRELOAD="$LIB" $B/test_preload glibc_names_and_answers
}
t "mallopt's answers, cfree, __libc_mallinfo and __libc_mallopt: glibc's, and the same under LD_PRELOAD" glibc_names

# Memory that goes back (issue 11): against glibc in the same run, no
# malloc after the last free.  Smaller in the VM, where memory is 1 GiB.
retain_mib=128
[ $vm = 1 ] && retain_mib=64
t "retention: 16 MiB blocks freed, then small ones: peak <= 1.5x glibc's; all freed, then idle: RSS within 8 MiB of glibc's" \
	timeout 60 $B/test_retain check huge $retain_mib "$LIB"
t "retention: an exited thread's blocks freed by another thread, then idle: RSS within 8 MiB of glibc's" \
	timeout 60 $B/test_retain check thread $retain_mib "$LIB"
t "retention: 16 KiB blocks (pages of 8 slices) all freed by their owner, then idle: RSS within 8 MiB of glibc's" \
	timeout 60 $B/test_retain check medium $retain_mib "$LIB"
t "retention: an exited thread's blocks freed by another thread go back on the decay: 1.5 decays later RSS within 4 MiB of glibc's, or on its way there (a quarter, less after a slow fill) and then within it" \
	timeout 60 $B/test_retain check thread-decay $retain_mib "$LIB"

# A single-threaded program may still unshare(CLONE_NEWUSER): the purge
# thread steps aside (namespace.c).  Skipped where glibc cannot either.
unshare_after_malloc() {
	$B/test_unshare || return $?
	env LD_PRELOAD="$LIB" KALLOC_DECAY_MS=50 $B/test_unshare thread
}
t "unshare(CLONE_NEWUSER) in a single-threaded program works after its purge thread started" \
	unshare_after_malloc

# A single-threaded program that sets no-new-privs confines every task it
# has, and gets no unconfined one later (privileges.c).
no_new_privs_after_malloc() {
	$B/test_privileges || return $?
	env LD_PRELOAD="$LIB" KALLOC_DECAY_MS=50 $B/test_privileges thread
}
t "prctl(PR_SET_NO_NEW_PRIVS) after the purge thread started: every task has it, and no thread starts after" \
	no_new_privs_after_malloc

# A real-time thread waiting for an allocator lock that an ordinary
# thread on its CPU holds must let that thread run (lock.c).  Host only:
# it times rounds against a 100 ms bound, too tight under TCG.
if [ $vm = 0 ]; then
	rt_lock() {
		$B/test_rt_lock || return $?
		env LD_PRELOAD="$LIB" $B/test_rt_lock
	}
	t "a SCHED_FIFO thread and an ordinary one on one CPU, both allocating: no round of the real-time one over 100 ms" \
		rt_lock
fi

# The backend switch, seen from outside.
bad_backend() {
	out=$(LD_PRELOAD="$LIB" KALLOC_BACKEND=bogus /bin/true 2>&1)
	[ $? = 1 ] && echo "$out" | grep -q 'KALLOC_BACKEND=bogus'
}
t "KALLOC_BACKEND=bogus stops at start with a message" bad_backend
if [ -e /dev/kalloc ]; then
	skip "KALLOC_BACKEND=device without the device exits 1" "/dev/kalloc exists"
	skip "auto without the device warns once" "/dev/kalloc exists"
else
	no_device() {
		out=$(LD_PRELOAD="$LIB" KALLOC_BACKEND=device /bin/true 2>&1)
		[ $? = 1 ] && echo "$out" | grep -q 'KALLOC_BACKEND=device but /dev/kalloc'
	}
	t "KALLOC_BACKEND=device without the device exits 1 with a message" no_device
	warn_once() {
		[ "$(LD_PRELOAD="$LIB" KALLOC_QUIET=0 KALLOC_BACKEND=auto /bin/ls / 2>&1 >/dev/null |
			grep -c 'using anonymous memory')" = 1 ] &&
		[ -z "$(LD_PRELOAD="$LIB" KALLOC_QUIET=1 KALLOC_BACKEND=auto /bin/ls / 2>&1 >/dev/null)" ]
	}
	t "auto without the device: one line on stderr per process, none with KALLOC_QUIET=1" warn_once
fi

. test/programs.sh

echo "1..$n"
echo "# $(($(date +%s) - start)) s"
if [ $failed -gt 0 ]; then
	echo "# $failed of $n failed"
	exit 1
fi
echo "# all $n passed"
