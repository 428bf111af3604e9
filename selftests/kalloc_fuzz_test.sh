#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A bounded slice of kalloc_fuzz with a fixed seed (about a minute in a
# TCG guest), then: the fuzzer survived and found no integrity failure;
# once it exited, /proc/kalloc shows no region and no resident page; the
# module unloads and loads again; the kernel logged no warning, bug, oops
# or leak; and free memory (MemFree and the per-cpu lists,
# after dropping caches) is back within 1 % of what
# it was before.
#
# Runs in the guest as root from selftests/ with the module loaded (see
# run.sh), prints TAP, exits non-zero if anything failed, and leaves the
# module loaded.  The environment can change the slice:
#   KALLOC_FUZZ_SEED (42)  KALLOC_FUZZ_OPS (100000)  KALLOC_FUZZ_PROCS (4)
#   KALLOC_FUZZ_THREADS (2)  KALLOC_FUZZ_TIME (cap in seconds, 90)
#   KALLOC_FUZZ_ARGS (more options; default --params: change the limits
#   and fault_around while it runs)
# 'make soak' runs the same checks with a million operations or more.
cd "$(dirname "$0")" || exit 2

. ./kalloc_tap.sh
FUZZ=./build/kalloc_fuzz
SEED=${KALLOC_FUZZ_SEED:-42}
OPS=${KALLOC_FUZZ_OPS:-100000}
PROCS=${KALLOC_FUZZ_PROCS:-4}
THREADS=${KALLOC_FUZZ_THREADS:-2}
TIME=${KALLOC_FUZZ_TIME:-90}
TMP=$(mktemp -d)
broken=


params=(max_pages max_region_pages fault_around)
declare -A saved
for p in "${params[@]}"; do
	saved[$p]=$(cat /sys/module/kalloc/parameters/$p 2>/dev/null)
done

cleanup() {
	rm -rf "$TMP"
	[ -n "$broken" ] && return
	loaded || insmod "$KO" 2>/dev/null
	for p in "${params[@]}"; do
		[ -n "${saved[$p]}" ] &&
			echo "${saved[$p]}" >/sys/module/kalloc/parameters/$p 2>/dev/null
	done
}
trap cleanup EXIT

if ! [ -f "$KO" ] || ! [ -x "$FUZZ" ]; then
	not_ok "$KO and $FUZZ exist (make modules-all selftests)"
	echo "1..$n"
	exit 1
fi
check "kalloc is loaded to begin with" loaded
check "no region exists before the fuzzer" test -z "$(proc_nonzero)"
problems_at_start=$(log_count)
free_before=$(free_kb)
diag "free (MemFree + per-cpu lists) before: $free_before kB"

# --- the slice
args=(--seed "$SEED" --ops "$OPS" --procs "$PROCS" --threads "$THREADS"
      --time "$TIME" ${KALLOC_FUZZ_ARGS---params})
diag "kalloc_fuzz ${args[*]}"
# a kernel oops can leave a kalloc lock held and the workers stuck for
# good: never wait past the cap (no cap with KALLOC_FUZZ_TIME=0, the soak)
if [ "$TIME" -gt 0 ]; then
	timeout -s KILL $((TIME + 120)) "$FUZZ" "${args[@]}" >"$TMP/out" 2>"$TMP/err"
else
	"$FUZZ" "${args[@]}" >"$TMP/out" 2>"$TMP/err"
fi
status=$?
sed 's/^/# /' "$TMP/out"
grep -v '^$' "$TMP/err" | head -n 20 | sed 's/^/# stderr: /'
stat() { awk -v k="$1" '$1 == k { print $2; exit }' "$TMP/out"; }

ops=$(stat ops)
check "the fuzzer ran to the end and printed its summary (status $status)" \
	test -n "$ops" -a "$(stat workers_died)" = 0 -a "$status" -lt 2
check "it ran at least a tenth of the $OPS operations asked ($ops)" \
	test "${ops:-0}" -ge $((OPS / 10))
check "no integrity failure: fresh and released pages zero, fork copies private ($(stat integrity_failures))" \
	test "$(stat integrity_failures)" = 0
check "fork copies stay private after MADV_KEEPONFORK ($(stat keeponfork_shared) shared)" \
	test "$(stat keeponfork_shared)" = 0
check "children were SIGKILLed while faulting ($(stat children_killed_mid_fault))" \
	test "$(stat children_killed_mid_fault)" -gt 0

if dmesg | grep -qE 'BUG:|Oops|general protection fault'; then
	not_ok "the kernel did not oops"
	dmesg | grep -E -A 30 'BUG:|Oops|general protection fault' | head -n 60 | sed 's/^/# /'
	echo "1..$n"
	broken=1
	exit 1
fi

# --- afterwards
check "regions 0 and resident 0 in /proc/kalloc once the fuzzer exited" counters_zero
for p in "${params[@]}"; do
	echo "${saved[$p]}" >/sys/module/kalloc/parameters/$p
done
if rmmod kalloc 2>"$TMP/rmmod.err"; then
	ok "the module unloads"
else
	not_ok "the module unloads: $(cat "$TMP/rmmod.err")"
fi
if insmod "$KO" 2>"$TMP/insmod.err"; then
	ok "and loads again"
else
	not_ok "and loads again: $(cat "$TMP/insmod.err")"
fi
check "with no region" test "$(proc_total regions)" = 0
problems=$(log_count)
if [ "$problems" = "$problems_at_start" ]; then
	ok "no WARNING, BUG, Oops or 'kalloc: leak' in the kernel log"
else
	not_ok "no WARNING, BUG, Oops or 'kalloc: leak' in the kernel log"
	dmesg | grep -E -B 2 -A 25 "$PROBLEMS" | head -n 80 | sed 's/^/# /'
fi

# freed pages can sit in per-cpu lists and deferred frees for a moment
free_after=$(free_kb)
for _ in 1 2 3 4 5; do
	[ $((free_after * 100)) -ge $((free_before * 99)) ] && break
	sleep 1
	free_after=$(free_kb)
done
diag "free (MemFree + per-cpu lists) after: $free_after kB ($(( (free_after - free_before) )) kB)"
check "free memory is back within 1 % of before ($free_before -> $free_after kB)" \
	test $((free_after * 100)) -ge $((free_before * 99))

diag "figures: ops $ops, bad inputs $(stat bad_inputs), killed mid-fault $(stat children_killed_mid_fault), forks $(stat forks), leaks $([ -z "$(proc_nonzero)" ] && echo 0 || echo 1)"
echo "1..$n"
exit $failed
