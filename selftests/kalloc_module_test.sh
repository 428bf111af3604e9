#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Loading and unloading kalloc: rmmod is refused while a process holds a
# mapping or only an open fd, and succeeds once it is gone; an invalid
# parameter makes insmod fail cleanly; 100 load/unload cycles, each with
# some use in between, start with no regions and end with no leak.
#
# Runs in the guest as root from selftests/ with the module loaded (see
# run.sh), prints TAP, exits non-zero if anything failed, and leaves the
# module loaded for the runner's own rmmod.
cd "$(dirname "$0")" || exit 2

. ./kalloc_tap.sh
HOLDER=./build/kalloc_holder
CYCLES=${KALLOC_CYCLES:-100}
TMP=$(mktemp -d)
holder=
broken=

unloaded() {
	! loaded && [ ! -e /dev/kalloc ] && [ ! -e /proc/kalloc ]
}

cleanup() {
	if [ -n "$holder" ]; then
		kill -TERM "$holder" 2>/dev/null
		wait "$holder" 2>/dev/null
	fi
	rm -rf "$TMP"
	# the runner removes the module itself: leave it loaded
	[ -n "$broken" ] || loaded || insmod "$KO" 2>/dev/null
}
trap cleanup EXIT

# start_holder MODE: run the holder in the background until it is ready.
start_holder() {
	"$HOLDER" "$1" >"$TMP/holder.out" 2>"$TMP/holder.err" &
	holder=$!
	for _ in $(seq 200); do
		grep -q '^ready' "$TMP/holder.out" && return 0
		kill -0 "$holder" 2>/dev/null || break
		sleep 0.05
	done
	diag "holder $1 did not get ready: $(cat "$TMP/holder.err")"
	return 1
}

# stop_holder SIGNAL: signal the holder, wait, succeed if it exited 0.
stop_holder() {
	local status
	kill -"$1" "$holder"
	wait "$holder"
	status=$?
	holder=
	[ "$status" = 0 ] || diag "holder exited $status: $(cat "$TMP/holder.err")"
	[ "$status" = 0 ]
}

# rmmod must fail and leave everything in place.
rmmod_refused() {
	if rmmod kalloc 2>"$TMP/rmmod.err"; then
		diag "rmmod succeeded while the module was in use"
		return 1
	fi
	diag "rmmod said: $(cat "$TMP/rmmod.err")"
	loaded && [ -e /dev/kalloc ] && [ -e /proc/kalloc ]
}

rmmod_ok() {
	rmmod kalloc 2>"$TMP/rmmod.err" || { diag "rmmod: $(cat "$TMP/rmmod.err")"; return 1; }
	unloaded
}

insmod_ok() {
	insmod "$KO" "$@" 2>"$TMP/insmod.err" || { diag "insmod: $(cat "$TMP/insmod.err")"; return 1; }
	loaded && [ -e /dev/kalloc ] && [ "$(proc_total regions)" = 0 ]
}

if ! [ -f "$KO" ] || ! [ -x "$HOLDER" ]; then
	not_ok "$KO and $HOLDER exist (make modules-all selftests)"
	echo "1..$n"
	exit 1
fi
check "kalloc is loaded to begin with" loaded
problems_at_start=$(log_count)

# --- a mapping alone holds the module
if start_holder map; then
	ok "a holder maps a region and closes its fd"
	check "/proc/kalloc counts the held region" \
		test "$(proc_total regions)" -ge 1
	check "rmmod is refused while a process holds a mapping" rmmod_refused
	check "the held mapping kept its data through the refused rmmod" stop_holder USR1
else
	not_ok "a holder maps a region and closes its fd"
fi
check "rmmod succeeds once the mapping's process has exited" rmmod_ok

# --- an open fd alone holds the module
check "insmod loads it again, with no regions" insmod_ok
if start_holder fd; then
	ok "a holder keeps only an fd open"
	check "rmmod is refused while only an fd is open" rmmod_refused
	check "the fd holder exits cleanly" stop_holder TERM
else
	not_ok "a holder keeps only an fd open"
fi
check "rmmod succeeds once the fd is closed" rmmod_ok

# --- an invalid parameter is refused cleanly
if insmod "$KO" fault_around=3 2>"$TMP/insmod.err"; then
	not_ok "insmod with fault_around=3 is refused"
	rmmod kalloc
else
	diag "insmod said: $(cat "$TMP/insmod.err")"
	ok "insmod with fault_around=3 is refused"
fi
check "a refused insmod leaves nothing behind" unloaded
check "insmod with fault_around=32 is accepted" insmod_ok fault_around=32
check "and the parameter is what was asked" \
	test "$(cat /sys/module/kalloc/parameters/fault_around)" = 32
check "rmmod after it" rmmod_ok

# --- load/unload cycles, by the helper: it loads and unloads the module
# with the system calls insmod and rmmod make, without an exec per step
if "$HOLDER" cycles "$CYCLES" "$KO" 2>"$TMP/cycles.err"; then
	sed 's/^/# /' "$TMP/cycles.err"
	ok "$CYCLES load/unload cycles, each with regions 0 after load, counters 0 after use and no 'kalloc: leak' after unload"
else
	sed 's/^/# /' "$TMP/cycles.err"
	not_ok "$CYCLES load/unload cycles, each with regions 0 after load, counters 0 after use and no 'kalloc: leak' after unload"
fi
if dmesg | grep -qE 'BUG:|Oops|general protection fault'; then
	# a kalloc lock may be held for good: touch the module no more
	not_ok "the kernel did not oops"
	echo "1..$n"
	broken=1
	exit 1
fi
check "no warning, bug or leak in the kernel log during the test" \
	test "$(log_count)" = "$problems_at_start"

# --- leave it loaded for the runner
check "the module is loaded again at the end" insmod_ok

echo "1..$n"
exit $failed
