# Real programs under LD_PRELOAD=liballoc.so: output identical to the run
# without it.  Sourced by run.sh (uses t, $B, $LIB).

W=$B/programs
# In the VM the scratch files live on the guest's tmpfs, not on the 9p
# share: evicting 9p inodes with many cached pages at exit has tripped the
# soft-lockup watchdog there (page_poison on a starved vCPU).
[ "${vm:-0}" = 1 ] && W=${TMPDIR:-/tmp}/liballoc-programs.$$
mkdir -p $W
# Smaller inputs in the VM (run.sh vm), where code runs 5-10x slower.
py_n=200000 sort_n=400000
[ "${vm:-0}" = 1 ] && py_n=60000 sort_n=200000

# The preloaded runs print liballoc's statistics at exit (KALLOC_STATS=1,
# JSON on stderr): proof they ran on the backend asked for.
on_backend() {
	grep -q "\"backend\": \"$KALLOC_BACKEND\"" "$1" ||
		{ echo "no statistics from the $KALLOC_BACKEND backend in $1:"; head -c 600 "$1"; return 1; }
}

# same NAME COMMAND...: run twice, compare stdout, and check both succeeded.
same() {
	name=$1
	shift
	s0=$(date +%s%N)
	"$@" >"$W/$name.plain" 2>"$W/$name.plain.err" || { cat "$W/$name.plain.err"; return 1; }
	s1=$(date +%s%N)
	LD_PRELOAD="$LIB" KALLOC_STATS=1 "$@" >"$W/$name.preload" 2>"$W/$name.preload.err" ||
		{ echo "failed under preload:"; cat "$W/$name.preload.err"; return 1; }
	s2=$(date +%s%N)
	[ "${vm:-0}" = 0 ] || echo "# plain $(((s1 - s0) / 1000000)) ms, preloaded $(((s2 - s1) / 1000000)) ms" >&3
	cmp "$W/$name.plain" "$W/$name.preload" || { diff "$W/$name.plain" "$W/$name.preload" | head; return 1; }
	[ -s "$W/$name.plain" ] && on_backend "$W/$name.preload.err"
}

cat >$W/workload.py <<'PY'
import json, subprocess, sys
n = int(sys.argv[1])
d = {}
for i in range(n):
    d["k%d" % i] = [i, str(i) * (i % 7), {"x": i % 13}]
for i in range(0, n, 3):
    del d["k%d" % i]
s = json.dumps(d, sort_keys=True)
back = json.loads(s)
assert back == d
print(len(d), len(s), sum(v[0] for v in back.values()))
out = subprocess.run([sys.executable, "-c", "print(sum(range(10**6)))"],
                     capture_output=True, text=True, check=True).stdout
print(out.strip())
print(subprocess.run(["sh", "-c", "echo from a subprocess"], capture_output=True,
                     text=True, check=True).stdout.strip())
PY
t "python3 ($((py_n / 1000))k-key dict, json round trip, subprocess) under LD_PRELOAD" same python python3 $W/workload.py $py_n

{
	echo "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL);"
	echo "BEGIN;"
	awk 'BEGIN { for (i = 1; i <= 100000; i++) printf "INSERT INTO t(name, v) VALUES (\"n%d\", %d.5);\n", (i * 7919) % 100003, i % 977 }'
	echo "COMMIT;"
	echo "CREATE INDEX t_name ON t(name);"
	echo "SELECT count(*), sum(v), min(name), max(name) FROM t;"
	echo "SELECT name, count(*) FROM t WHERE v > 900 GROUP BY name ORDER BY name LIMIT 5;"
} >$W/sqlite.sql
sqlite_run() {
	rm -f "$W/db.$1"
	sqlite3 "$W/db.$1" <$W/sqlite.sql
}
sqlite_plain() { sqlite_run plain; }
sqlite_test() {
	sqlite_run plain >"$W/sqlite.plain" &&
	LD_PRELOAD="$LIB" sqlite3 :memory: 'select 1' >/dev/null &&
	{
		export LD_PRELOAD="$LIB" KALLOC_STATS=1
		sqlite_run preload >"$W/sqlite.preload" 2>"$W/sqlite.preload.err"
		rc=$?
		unset LD_PRELOAD KALLOC_STATS
		[ $rc = 0 ] || cat "$W/sqlite.preload.err"
		[ $rc = 0 ]
	} &&
	cmp "$W/sqlite.plain" "$W/sqlite.preload" && [ -s "$W/sqlite.plain" ] &&
	on_backend "$W/sqlite.preload.err"
}
t "sqlite3 (100k inserts, index, queries) under LD_PRELOAD" sqlite_test

awk -v n=$sort_n 'BEGIN { srand(42); for (i = 0; i < n; i++) printf "%08d %s\n", int(rand() * 1e8), substr("abcdefghijklmnopqrstuvwxyz", i % 26 + 1) }' >$W/sort.in
t "sort of a $((sort_n / 1000))k-line file under LD_PRELOAD" same sort env LC_ALL=C sort -k2,2 -k1,1n $W/sort.in

# Rust's allocator calls plain malloc for alignments up to 16 (hashbrown
# reads its tables with aligned SSE2 loads), posix_memalign above; both
# programs also check every pointer against the alignment asked for.
t "Rust: std collections, many small HashMaps, std::alloc layouts aligned 8-4096, threads, under LD_PRELOAD" \
	same rust_collections $B/prog_collections
t "C++: new of alignas(32/64/128/4096) types, operator new(size, align_val_t), 8 threads, under LD_PRELOAD" \
	same cxx_aligned_new $B/prog_aligned_new

# In the VM a small file: cc1's start-up is most of it there.
gcc_src=page.c
[ "${vm:-0}" = 1 ] && gcc_src=size_class.c
t "gcc -O2 compile of $gcc_src under LD_PRELOAD (same assembly)" \
	same gcc gcc -O2 -std=c11 -I. -I../module/uapi -S -o - $gcc_src

# Issue 11's fork scenario and its destructor twin (test_fork_threads.c),
# from plain malloc: glibc hands no block to two threads, nor may we.
t "fork with threads, $fork_n children (a gone thread's blocks, 32 threads at once) under LD_PRELOAD" \
	same fork_threads $B/fork_threads_prog fork $fork_n
t "malloc in the last destructor round ($tsd_n rounds), then 32 threads at once, under LD_PRELOAD" \
	same tsd_malloc $B/fork_threads_prog tsd $tsd_n
t "fork while 3 threads allocate and free ($fork_n children) under LD_PRELOAD" \
	same fork_busy $B/fork_threads_prog busy $fork_n

# Fork handlers that allocate, registered before liballoc's (by a
# library's constructor and by main before its first malloc), run while
# liballoc holds its locks: glibc lets them allocate, so must we
# (test_fork_handlers.c).  Before the fix the first fork deadlocked.
fork_handlers_n=50
[ "${vm:-0}" = 1 ] && fork_handlers_n=10
t "fork handlers registered before liballoc's allocate in prepare, parent and child ($fork_handlers_n forks, 2 threads allocating) under LD_PRELOAD" \
	same fork_handlers $B/fork_handlers_prog $fork_handlers_n

# Under ulimit -v as many huge blocks as glibc gives (huge.c makes no
# room to grow there): before, 5 of glibc's 10 (test_aslimit.c).
t "RLIMIT_AS 1 GiB over the start: as many untouched 100 MiB blocks as glibc, then small ones, under LD_PRELOAD" \
	same aslimit $B/test_aslimit

# A process ends when its last thread does, the purge thread or not
# (test_last_thread.c: Python's test_threading found a child forked from
# a thread living on beside it).
t "the process ends with its last thread (main's pthread_exit, a child forked from a thread, a last-round destructor, after a thread whose first malloc was in its last round, also with a slow last thread) under LD_PRELOAD" \
	same last_thread $B/last_thread_prog

# Python's own tests, every allocation through malloc (PYTHONMALLOC=
# malloc): threads, fork, gc, weak references, containers, pickling,
# mmap.  glibc's run first, which must pass (else this machine cannot
# tell), then liballoc's; a hang is a failure (--timeout).  The full suite
# under liballoc found the purge thread keeping a process alive (5 min
# 11 s for test_threading, 26 s under glibc).  Debian's
# libpython3.11-testsuite (make deps); /usr/bin/python3, which it is for.
# Host only: under TCG these take many minutes.
py_tests="test_threading test_thread test_threading_local test_fork1 test_gc test_weakref
test_dict test_list test_set test_bytes test_unicode test_json test_pickle test_re
test_mmap test_struct test_array test_deque test_itertools test_collections"
python_suite() {
	/usr/bin/python3 -c 'import test.libregrtest' 2>/dev/null ||
		{ echo "# no Python test suite here (libpython3.11-testsuite: make deps)"; return 77; }
	# shellcheck disable=SC2086
	PYTHONMALLOC=malloc /usr/bin/python3 -m test -j2 --timeout 180 $py_tests \
		>"$W/pysuite.plain" 2>&1 ||
		{ echo "# fails under glibc here: $(grep -m1 -E 'failed|crashed' "$W/pysuite.plain")"; return 77; }
	# shellcheck disable=SC2086
	PYTHONMALLOC=malloc LD_PRELOAD="$LIB" /usr/bin/python3 -m test -j2 --timeout 180 $py_tests \
		>"$W/pysuite.preload" 2>&1 ||
		{ grep -E 'failed|crashed|Timeout|^(FAIL|ERROR):' "$W/pysuite.preload" | head -n 20; return 1; }
}
[ "${vm:-0}" = 1 ] ||
	t "Python's own tests ($(echo $py_tests | wc -w): threads, fork, gc, containers) pass under LD_PRELOAD as under glibc" \
		python_suite

[ "${vm:-0}" = 0 ] || rm -rf "$W"
