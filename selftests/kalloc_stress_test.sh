#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# liballoc under load over /dev/kalloc (issue #7): kalloc_stress runs 4
# processes of 4 threads for KALLOC_STRESS_TIME seconds (default 60) doing
# random malloc/calloc/realloc/free of mixed sizes with cross-thread
# frees, every block's contents checked.  Then: it ran on the device (not
# liballoc's anonymous fallback), no block was corrupted, no row of any
# worker is left in /proc/kalloc once they exited, the totals are back to
# zero, and the kernel logged no warning, bug, oops or leak.
#
# Runs in the guest as root from selftests/ with the module loaded (see
# run.sh), prints TAP, exits non-zero if anything failed.  Also:
#   KALLOC_STRESS_PROCS (4)  KALLOC_STRESS_THREADS (4)  KALLOC_STRESS_SEED (1)
cd "$(dirname "$0")" || exit 2

. ./kalloc_tap.sh
STRESS=./build/kalloc_stress
TIME=${KALLOC_STRESS_TIME:-60}
PROCS=${KALLOC_STRESS_PROCS:-4}
THREADS=${KALLOC_STRESS_THREADS:-4}
SEED=${KALLOC_STRESS_SEED:-1}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT


if ! [ -x "$STRESS" ] || ! [ -e /dev/kalloc ]; then
	not_ok "$STRESS and /dev/kalloc exist (make selftests; module loaded)"
	echo "1..$n"
	exit 1
fi
check "no region exists before the stress" test -z "$(proc_nonzero)"
problems_at_start=$(log_count)

diag "kalloc_stress -t $TIME -p $PROCS -n $THREADS -s $SEED"
t0=$(date +%s)
# KALLOC_BACKEND=device: liballoc exits at start rather than fall back
KALLOC_BACKEND=device KALLOC_QUIET=1 timeout -s KILL $((TIME + 120)) \
	"$STRESS" -t "$TIME" -p "$PROCS" -n "$THREADS" -s "$SEED" >"$TMP/out" 2>"$TMP/err"
status=$?
took=$(($(date +%s) - t0))
sed 's/^/# /' "$TMP/out"
head -n 30 "$TMP/err" | sed 's/^/# stderr: /'
stat() { awk -v k="$1" '$1 == k { print $2; exit }' "$TMP/out"; }

ops=$(stat ops)
desc="$PROCS processes x $THREADS threads on liballoc over /dev/kalloc"
check "$desc ran $TIME s ($took s) to the end: $ops ops, $(stat cross_thread_frees) cross-thread frees, $(stat blocks_over_1MiB) blocks > 1 MiB (status $status)" \
	test "$status" = 0 -a "$(stat result)" = pass -a "${ops:-0}" -gt 0
check "every block kept its contents and every calloc read zero ($(stat bad_blocks) bad)" \
	test "$(stat bad_blocks)" = 0
# worker FIELD: that field of every worker line, one a line
worker() {
	awk -v k="$1" '$1 == "worker" { for (i = 3; i < NF; i += 2) if ($i == k) print $(i + 1) }' "$TMP/out"
}
# all_workers CONDITION: the awk CONDITION (on f[FIELD]) holds for all $PROCS workers
all_workers() {
	local prog='$1 == "worker" { for (i = 3; i < NF; i += 2) f[$i] = $(i + 1); if ('"$1"') n++ }
		END { print n + 0 }'
	test "$(awk "$prog" "$TMP/out")" = "$PROCS"
}
check "each worker was on the device: liballoc said so, and /proc/kalloc showed resident rows of its pid every second ($(worker samples_with_rows | tr '\n' ' ')seconds)" \
	all_workers 'f["device"] == 1 && f["samples"] > 0 && f["samples_with_rows"] == f["samples"]'
check "at the end each worker's rows in /proc/kalloc were liballoc's regions ($(worker rows_end | tr '\n' ' '))" \
	all_workers 'f["rows_end"] == f["regions_end"]'
check "no row of any worker is left once it exited" \
	all_workers 'f["rows_after_exit"] == 0'
check "regions 0 and resident 0 in /proc/kalloc once kalloc_stress exited" counters_zero
problems=$(log_count)
if [ "$problems" = "$problems_at_start" ]; then
	ok "no WARNING, BUG, Oops or 'kalloc: leak' in the kernel log"
else
	not_ok "no WARNING, BUG, Oops or 'kalloc: leak' in the kernel log"
	dmesg | grep -E -B 2 -A 25 "$PROBLEMS" | head -n 80 | sed 's/^/# /'
fi
diag "figures: ops $ops in $TIME s, mallocs $(stat mallocs), callocs $(stat callocs), reallocs $(stat reallocs), frees $(stat frees)"
echo "1..$n"
exit $failed
