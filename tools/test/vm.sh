#!/bin/bash
# kallocstat and kallocctl against the real module, in a kalloc-vm guest
# with kalloc loaded (tools/vm-lane runs this).  Prints TAP, exits non-zero
# if anything failed, and leaves the module loaded for the runner's rmmod.
#
#   kallocstat shows exactly the regions a helper created (KALLOC_IOC_INFO's
#   numbers), as a table sorted by resident memory and as JSON;
#   kallocctl status, then unload refused while the helper holds the device
#   (EBUSY, naming its PID), unload, load with a parameter, bad loads.
cd "$(dirname "$0")/../.." || exit 2

STAT=tools/kallocstat
CTL=tools/kallocctl
HELPER=build/tools/kalloc_regions
TMP=$(mktemp -d)
n=0
failed=0
helper=

ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; failed=1; }
diag() { sed 's/^/# /' "$@"; }

# check DESCRIPTION COMMAND...: one TAP line; output of a failure as comments.
check() {
	local what=$1
	shift
	if "$@" >"$TMP/out" 2>&1; then
		ok "$what"
	else
		not_ok "$what"
		diag "$TMP/out" | tail -n 20
	fi
}

loaded() { grep -q '^kalloc ' /proc/modules; }

cleanup() {
	[ -z "$helper" ] || { kill -TERM "$helper" 2>/dev/null; wait "$helper" 2>/dev/null; }
	loaded || $CTL load >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT

for f in $STAT $CTL $HELPER; do
	if [ ! -x "$f" ]; then
		echo "not ok 1 - $f is not built (make tools)"
		exit 1
	fi
done

# --- kallocstat against regions of known shape -------------------------------
$HELPER >"$TMP/helper" 2>"$TMP/helper.err" &
helper=$!
for _ in $(seq 100); do
	grep -q '^ready' "$TMP/helper" && break
	sleep 0.1
done
if ! grep -q '^ready' "$TMP/helper"; then
	not_ok "kalloc_regions set up its regions"
	diag "$TMP/helper.err"
	exit 1
fi

# The JSON rows for the helper's pid equal what KALLOC_IOC_INFO said.
json_matches_info() {
	$STAT --json -p "$helper" >"$TMP/json" || return 1
	python3 - "$TMP/json" "$TMP/helper" "$helper" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
pid = int(sys.argv[3])
want = {}
for line in open(sys.argv[2]):
    w = line.split()
    if w[0] == "region":
        want[int(w[1])] = dict(backing=w[2], order=int(w[3]), size_pages=int(w[4]),
                               resident_pages=int(w[5]), faults=int(w[6]), mappings=int(w[7]))
got = {}
for r in doc["regions"]:
    assert r["pid"] == pid, r
    assert r["comm"] == "kalloc_regions", r
    assert r["size_bytes"] == r["size_pages"] * doc["page_size"], r
    got[r["id"]] = {k: r[k] for k in ("backing", "order", "size_pages", "resident_pages",
                                      "faults", "mappings")}
if got != want:
    sys.exit("kallocstat: %r\nKALLOC_IOC_INFO: %r" % (got, want))
assert doc["totals"]["regions"] >= len(want)
assert doc["regions_total"] >= len(want)
EOF
}
check "kallocstat --json -p PID parses and equals KALLOC_IOC_INFO for each region" \
	json_matches_info

# The table: one row per region, most resident first, in human sizes.
table_sorted() {
	$STAT -p "$helper" >"$TMP/table" || return 1
	cat "$TMP/table"
	grep -q '^kalloc 0\.' "$TMP/table" || return 1
	awk -v pid="$helper" '$1 == pid' "$TMP/table" >"$TMP/rows"
	[ "$(wc -l <"$TMP/rows")" = 4 ] || return 1
	# resident pages from INFO, most first, as kallocstat would sort them
	awk '$1 == "region" { print $6 }' "$TMP/helper" | sort -rn >"$TMP/want"
	python3 - "$TMP/json" >"$TMP/got" <<'EOF' || return 1
import json, sys
for r in json.load(open(sys.argv[1]))["regions"]:
    print(r["resident_pages"])
EOF
	diff "$TMP/want" "$TMP/got" || return 1
	# 128 pages of order 2 = 512.0 KiB resident, 256 pages = 1.0 MiB in size
	grep -E "^ *$helper kalloc_regions .* pages +2 .* 512\.0 KiB +512\.0 KiB" "$TMP/rows" &&
		grep -E "1\.0 MiB +256\.0 KiB" "$TMP/rows"
}
check "kallocstat -p PID lists the 4 regions by resident memory, in human sizes" table_sorted

sort_by_size() {
	$STAT --json --sort size -p "$helper" | python3 -c '
import json, sys
sizes = [r["size_pages"] for r in json.load(sys.stdin)["regions"]]
assert sizes == sorted(sizes, reverse=True) and len(sizes) == 4, sizes'
}
check "kallocstat --sort size orders the rows by size" sort_by_size

whole_file_json() {
	$STAT --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["version"].count(".") == 2 and d["totals"]["abi"] == 1, d
assert len(d["regions"]) == d["regions_total"] == d["totals"]["regions"], d'
}
check "kallocstat --json (all regions) parses with python3's json" whole_file_json

watch_frames() {
	local out
	out=$($STAT -w 0.2 -n 3 -p "$helper") || return 1
	[ "$(grep -c '^every 0.2s' <<<"$out")" = 3 ]
}
check "kallocstat -w 0.2 -n 3 prints three frames" watch_frames

# --- kallocctl -----------------------------------------------------------------
status_loaded() {
	local out
	out=$($CTL status) || return 1
	echo "$out"
	grep -q '^kalloc: loaded, version 0\.1\.0' <<<"$out" &&
		grep -qE '^parameters:.* fault_around=[0-9]+' <<<"$out" &&
		grep -qE '^regions: [0-9]+, resident ' <<<"$out" &&
		grep -q "PID $helper (kalloc_regions)" <<<"$out"
}
check "kallocctl status: loaded, version, parameters, regions, holders" status_loaded

unload_busy() {
	local out rc
	out=$($CTL unload 2>&1)
	rc=$?
	echo "$out"
	[ $rc = 1 ] && [ "$(wc -l <<<"$out")" = 1 ] && loaded &&
		grep -q "EBUSY" <<<"$out" && grep -q "PID $helper (kalloc_regions)" <<<"$out"
}
check "kallocctl unload while a process holds regions: EBUSY, one line naming its PID" \
	unload_busy

kill -TERM "$helper"
wait "$helper" 2>/dev/null
helper=

unload_ok() {
	$CTL unload && ! loaded && [ ! -e /proc/kalloc ] && [ ! -e /dev/kalloc ]
}
check "kallocctl unload once the holder exits" unload_ok

stat_unloaded() {
	local out rc
	out=$($STAT 2>&1)
	rc=$?
	echo "$out"
	[ $rc = 2 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q 'not loaded' <<<"$out"
}
check "kallocstat without the module: one line, exit 2" stat_unloaded

status_unloaded() {
	local out rc
	out=$($CTL status 2>&1)
	rc=$?
	echo "$out"
	[ $rc = 2 ] && grep -q '^kalloc: not loaded' <<<"$out" &&
		grep -q "^module: .*/build/$(uname -r)/kalloc.ko" <<<"$out"
}
check "kallocctl status without the module: not loaded, exit 2, names the .ko" status_unloaded

unload_unloaded() {
	local out
	out=$($CTL unload 2>&1)
	[ $? = 2 ] && grep -q 'not loaded' <<<"$out"
}
check "kallocctl unload without the module: exit 2" unload_unloaded

bad_param() {
	local out
	out=$($CTL load bogus=1 2>&1) && return 1
	echo "$out"
	[ "$(wc -l <<<"$out")" = 1 ] && grep -q "no parameter 'bogus'" <<<"$out" &&
		grep -q 'fault_around' <<<"$out" && ! loaded
}
check "kallocctl load bogus=1: refused before insmod, one line listing the parameters" bad_param

bad_value() {
	local out
	out=$($CTL load fault_around=3 2>&1) && return 1
	echo "$out"
	[ "$(wc -l <<<"$out")" = 1 ] && grep -q 'refused' <<<"$out" && ! loaded
}
check "kallocctl load fault_around=3 (not a power of two): refused, one line" bad_value

load_param() {
	$CTL load fault_around=8 max_pages=100000 && loaded &&
		[ "$(cat /sys/module/kalloc/parameters/fault_around)" = 8 ] &&
		[ "$(cat /sys/module/kalloc/parameters/max_pages)" = 100000 ] &&
		$CTL status | grep -q 'fault_around=8'
}
check "kallocctl load fault_around=8 max_pages=100000 sets both" load_param

load_twice() {
	local out
	out=$($CTL load 2>&1) && return 1
	echo "$out"
	[ "$(wc -l <<<"$out")" = 1 ] && grep -q 'already loaded' <<<"$out"
}
check "kallocctl load when loaded: one line, non-zero" load_twice

cycle() {
	$CTL unload && $CTL load && loaded && $STAT >/dev/null
}
check "kallocctl unload, load: the module comes back with defaults" cycle

exit $failed
