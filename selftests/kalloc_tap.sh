# shellcheck shell=bash
# What kalloc's shell selftests share: TAP lines and readers of the
# module's state.  Sourced by *_test.sh; builtins only where the tests
# call them in loops, as starting a program costs much in the guest.

KO=../build/$(uname -r)/kalloc.ko
n=0
failed=0

ok() {
	n=$((n + 1))
	echo "ok $n - $*"
}

not_ok() {
	n=$((n + 1))
	echo "not ok $n - $*"
	failed=1
}

# check DESCRIPTION COMMAND...: one TAP line for whether COMMAND succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}

diag() {
	echo "# $*"
}

loaded() {
	local name rest
	while read -r name rest; do
		[ "$name" = kalloc ] && return 0
	done </proc/modules
	return 1
}

proc_total() { # KEY: a "key value" total from /proc/kalloc
	local key value
	while read -r key value; do
		[ "$key" = "$1" ] && { echo "$value"; return; }
	done </proc/kalloc 2>/dev/null
}

# The totals that must be 0 with no user: "" if they are, else what is not.
proc_nonzero() {
	local key value out=
	while read -r key value; do
		[ -z "$key" ] && break
		case $key in
		regions|resident_vmalloc|resident_pages|node*_resident)
			[ "$value" = 0 ] || out="$out $key=$value" ;;
		esac
	done </proc/kalloc
	echo "$out"
}

# The counters reach 0 once every process has gone: allow a moment.
counters_zero() {
	local left
	for _ in $(seq 50); do
		left=$(proc_nonzero)
		[ -z "$left" ] && return 0
		sleep 0.1
	done
	diag "still:$left"
	cat /proc/kalloc | sed 's/^/#   /' | head -n 40
	return 1
}

# Kernel log lines that mean a problem, and how many there are now.
PROBLEMS='kalloc: leak|WARNING:|BUG:|Oops|general protection fault'
# Free memory in kB: MemFree plus the pages on the per-cpu free lists
# (the "count:" lines of /proc/zoneinfo), which MemFree leaves out though
# they are free, and which freeing a region fills (to thousands of pages
# on 6.12); the page cache and slabs are dropped first, so that this
# counts what kalloc took and gave back, not what the caches did.
free_kb() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	awk '$1 == "MemFree:" { free = $2 }
	     $1 == "count:" { pcp += $2 }
	     END { print free + pcp * 4 }' /proc/meminfo /proc/zoneinfo
}

log_count() {
	dmesg | grep -cE "$PROBLEMS"
}
