#!/bin/bash
# The tools' host tests (tools/check's host lane runs this).  Prints TAP,
# exits non-zero if anything failed.
#
#   kallocstat on the fixtures in tools/test/fixtures/: totals and a table
#   sorted by resident memory, -p, --sort, --json (parsed by python3),
#   a later format with added fields, unknown formats, a missing file;
#   kallocctl's usage errors and status without the module;
#   the man pages render with no groff warning, the .rst files parse;
#   make install DESTDIR=... puts every file in place;
#   dkms builds the module for every installed kernel (from make install-dkms);
#   make demo in a fresh clone, and a missing dependency's message
#   (tools/test/demo.sh);
#   make deb, and as root the packages installed, loaded in a VM per
#   kernel, and purged (tools/test/deb.sh).
#
# TOOLS_TEST_DKMS=0 skips the dkms builds (about 10 s per kernel),
# TOOLS_TEST_DEMO=0 the demo, TOOLS_TEST_DEB=0 the packages.
cd "$(dirname "$0")/../.." || exit 2
TOP=$PWD
STAT=tools/kallocstat
CTL=tools/kallocctl
FIX=tools/test/fixtures
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kalloc-tools-test.XXXXXX")
. tools/test/demo.sh
. tools/test/deb.sh
# deb_cleanup (tools/test/deb.sh): purge the packages if a test left them.
trap 'deb_cleanup; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
n=0
failed=0

ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; failed=1; }
skip() { n=$((n + 1)); echo "ok $n - $* # SKIP"; }

# check DESCRIPTION COMMAND...: one TAP line; output of a failure as comments.
check() {
	local what=$1
	shift
	if "$@" >"$TMP/out" 2>&1; then
		ok "$what"
	else
		not_ok "$what"
		sed 's/^/# /' "$TMP/out" | tail -n 25
	fi
}

stat_fixture() { # FIXTURE ARGS...
	local f=$1
	shift
	KALLOCSTAT_PROC=$FIX/$f $STAT "$@"
}

if ! make --no-print-directory tools >"$TMP/build" 2>&1; then
	echo "not ok 1 - the tools build with -Wall -Wextra -Werror"
	sed 's/^/# /' "$TMP/build"
	exit 1
fi
ok "the tools build with -Wall -Wextra -Werror"

# --- kallocstat -----------------------------------------------------------------
normal_table() {
	local out
	out=$(stat_fixture normal) || return 1
	echo "$out"
	grep -q '^kalloc 0\.1\.0 (abi 1): 5 regions, 108\.2 MiB resident (pages 106\.2 MiB, vmalloc 2\.0 MiB)$' <<<"$out" &&
		grep -q '^limits: max_pages none, max_region_pages 1\.0 GiB, fault_around 16 pages$' <<<"$out" &&
		grep -q '^resident by node: node0 78\.1 MiB, node1 30\.1 MiB$' <<<"$out" &&
		# rows by resident pages: 16384, 5696, 5120, 512, 0
		[ "$(awk '$1 ~ /^[0-9]+$/ && NF == 12 { printf "%s/%s ", $1, $3 }' <<<"$out")" = \
			"412/1 977/1 412/2 977/2 1203/1 " ] &&
		grep -qE '^ +977 kalloc_demo +1 pages +2 +1 +256\.0 MiB +22\.2 MiB +356 +2$' <<<"$out"
}
check "kallocstat: totals, and rows sorted by resident memory in human sizes" normal_table

pid_filter() {
	local out
	out=$(stat_fixture normal -p 977 -p 1203) || return 1
	echo "$out"
	[ "$(grep -cE '^ +(977|1203) ' <<<"$out")" = 3 ] && ! grep -qE '^ +412 ' <<<"$out" &&
		grep -q '^(3 of 5 regions)$' <<<"$out"
}
check "kallocstat -p PID -p PID: only those processes' regions" pid_filter

sorted_by() { # FIELD EXPECTED-ORDER-OF-PID/ID
	local out
	out=$(stat_fixture normal --sort "$1") || return 1
	echo "$out"
	[ "$(awk '$1 ~ /^[0-9]+$/ && NF == 12 { printf "%s/%s ", $1, $3 }' <<<"$out")" = "$2" ]
}
check "kallocstat --sort size" sorted_by size "977/1 412/1 412/2 1203/1 977/2 "
check "kallocstat --sort faults" sorted_by faults "412/1 977/1 412/2 977/2 1203/1 "
check "kallocstat --sort pid" sorted_by pid "412/1 412/2 977/1 977/2 1203/1 "
check "kallocstat --sort comm" sorted_by comm "1203/1 977/1 977/2 412/1 412/2 "

json_parses() {
	stat_fixture normal --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["version"] == "0.1.0" and d["page_size"] > 0, d
t = d["totals"]
assert t["regions"] == 5 and t["resident_pages"] == 27200 and t["node1_resident"] == 7712, t
r = d["regions"]
assert [x["resident_pages"] for x in r] == [16384, 5696, 5120, 512, 0], r
assert r[1] == dict(id=1, pid=977, comm="kalloc_demo", backing="pages", order=2, node=1,
    size_pages=65536, resident_pages=5696, faults=356, mappings=2,
    size_bytes=65536 * d["page_size"], resident_bytes=5696 * d["page_size"]), r[1]
assert d["regions_total"] == 5'
}
check "kallocstat --json parses with python3's json and carries every field" json_parses

json_pid() {
	stat_fixture normal --json -p 412 --sort id | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert [(x["pid"], x["id"]) for x in d["regions"]] == [(412, 1), (412, 2)], d["regions"]
assert d["regions_total"] == 5'
}
check "kallocstat --json -p PID --sort id" json_pid

empty() {
	local out
	out=$(stat_fixture empty) || return 1
	echo "$out"
	grep -q '^kalloc 0\.1\.0 (abi 1): 0 regions, 0 B resident' <<<"$out" &&
		[ "$(tail -n 1 <<<"$out")" = "no regions" ] &&
		stat_fixture empty --json | python3 -c '
import json, sys
assert json.load(sys.stdin)["regions"] == []'
}
check "kallocstat on a module with no regions: totals and 'no regions'; JSON too" empty

extended() {
	local out
	out=$(stat_fixture extended) || return 1
	echo "$out"
	grep -qE '^ +55 a"b\\c +4 pages' <<<"$out" &&
		stat_fixture extended --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["totals"]["compactions"] == 3 and d["regions"][0]["comm"] == "a\"b\\c", d'
}
check "kallocstat reads a later format (a new total, a new column); JSON escapes comm" extended

users() {
	local out
	out=$(stat_fixture users) || return 1
	echo "$out" | cut -c1-160
	grep -q '^max_user_pages 512\.0 MiB; resident by user: uid 0 2\.0 MiB, uid 1000 106\.2 MiB, uid 2000 0 B,' <<<"$out" &&
		grep -q '^of the resident, 4\.0 MiB let go by regions but still held by pipes or I/O$' <<<"$out" &&
		! stat_fixture normal | grep -q 'held by pipes' &&
		stat_fixture users --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
u = d["users"]
assert len(u) == 72 and u[0] == {"uid": 0, "resident_pages": 512, "regions": 1} and u[1]["uid"] == 1000, u[:3]
assert d["totals"]["max_user_pages"] == 131072 and "user0_resident" not in d["totals"], d["totals"]
assert "user0_regions" not in d["totals"], d["totals"]'
}
check "kallocstat shows max_user_pages and each user's pages (72 users: more than the totals hold)" users

# refuses FIXTURE PATTERN: exit 1, one line on stderr matching PATTERN, nothing on stdout.
refuses() {
	local err rc
	err=$(stat_fixture "$1" 2>&1 >"$TMP/stdout")
	rc=$?
	echo "exit $rc: $err"
	[ $rc = 1 ] && [ ! -s "$TMP/stdout" ] && [ "$(wc -l <<<"$err")" = 1 ] &&
		grep -qE "$2" <<<"$err"
}
check "kallocstat refuses an unknown region header: exit 1, one clear line" \
	refuses unknown-format 'unknown format at line 7: the region header does not begin'
check "kallocstat refuses a file that is not /proc/kalloc: exit 1, one clear line" \
	refuses garbage 'unknown format at line 1: expected "key value"'
check "kallocstat refuses a file cut short: exit 1, one clear line" \
	refuses truncated 'unknown format: no blank line after the totals'

missing() {
	local err rc
	err=$(stat_fixture no-such-file 2>&1 >"$TMP/stdout")
	rc=$?
	echo "exit $rc: $err"
	[ $rc = 2 ] && [ ! -s "$TMP/stdout" ] && [ "$(wc -l <<<"$err")" = 1 ] &&
		grep -q 'does not exist: the kalloc module is not loaded' <<<"$err" || return 1
	$STAT --proc "$FIX/no-such-file" 2>/dev/null
	[ $? = 2 ]
}
check "kallocstat with no /proc/kalloc: exit 2, one line saying the module is not loaded" missing

watch() {
	local out
	out=$(stat_fixture empty -w 0.1 -n 3) || return 1
	[ "$(grep -c '^every 0.1s, ' <<<"$out")" = 3 ] &&
		[ "$(stat_fixture empty --json -w 0.1 -n 2 | python3 -c '
import json, sys
print(sum(1 for l in sys.stdin if json.loads(l)["totals"]["regions"] == 0))')" = 2 ]
}
check "kallocstat -w 0.1 -n 3: three frames; with --json one object per line" watch

usage_errors() {
	local args out rc
	for args in "--sort bogus" "-p abc" "-w 0" "-n 2" "-x" "extra" "-p"; do
		# shellcheck disable=SC2086
		out=$(stat_fixture normal $args 2>&1)
		rc=$?
		echo "kallocstat $args: exit $rc: $out"
		[ $rc = 1 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q '^kallocstat: ' <<<"$out" ||
			return 1
	done
	$STAT --help | grep -q '^usage: kallocstat'
}
check "kallocstat usage errors: exit 1 with one line each; --help" usage_errors

# --- kallocctl (no module on this host) -------------------------------------------
ctl_usage() {
	local args out rc
	for args in "" "frobnicate" "--bogus status" "status extra" "unload extra"; do
		# shellcheck disable=SC2086
		out=$($CTL $args 2>&1)
		rc=$?
		echo "kallocctl $args: exit $rc: $out"
		[ $rc = 1 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q '^kallocctl: ' <<<"$out" ||
			return 1
	done
	$CTL --help | grep -q '^usage: kallocctl'
}
check "kallocctl usage errors: exit 1 with one line each; --help" ctl_usage

ctl_not_loaded() {
	local out rc
	if grep -q '^kalloc ' /proc/modules; then
		echo "kalloc is loaded here"
		return 0
	fi
	out=$($CTL status)
	[ $? = 2 ] && grep -q '^kalloc: not loaded$' <<<"$out" || return 1
	out=$($CTL unload 2>&1)
	[ $? = 2 ] && grep -q 'not loaded' <<<"$out" || return 1
	out=$($CTL load foo 2>&1)
	rc=$?
	echo "$out"
	[ $rc = 1 ] && grep -q "'foo': parameters are NAME=VALUE" <<<"$out" || return 1
	out=$($CTL --module /nonexistent.ko load 2>&1)
	rc=$?
	echo "$out"
	[ $rc = 1 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q '/nonexistent.ko' <<<"$out"
}
check "kallocctl without the module: status/unload exit 2; bad load arguments exit 1" ctl_not_loaded

# --- man pages ----------------------------------------------------------------------
man_clean() {
	local page err
	for page in Documentation/man/kallocstat.8 Documentation/man/kallocctl.8 \
		Documentation/man/liballoc.3; do
		[ -f "$page" ] || { echo "$page missing"; return 1; }
		err=$(MANWIDTH=80 LC_ALL=C.UTF-8 man -l --warnings=all -E UTF-8 "$page" 2>&1 >"$TMP/man")
		if [ -n "$err" ] || [ ! -s "$TMP/man" ]; then
			echo "$page:"
			echo "$err"
			return 1
		fi
	done
}
check "man -l --warnings=all renders kallocstat.8, kallocctl.8, liballoc.3 with no warning" man_clean

rst_clean() {
	local f
	for f in Documentation/*.rst; do
		python3 -m docutils --halt=info "$f" >/dev/null || return 1
	done
}
if python3 -c 'import docutils' 2>/dev/null; then
	check "Documentation/*.rst parse with docutils without a message" rst_clean
else
	skip "Documentation/*.rst parse with docutils (python3 has no docutils)"
fi

# --- make install -------------------------------------------------------------------
install_tree() {
	local d=$TMP/destdir kv f
	make --no-print-directory install DESTDIR="$d" PREFIX=/usr >"$TMP/install" 2>&1 ||
		{ cat "$TMP/install"; return 1; }
	kv=$(make --no-print-directory -s -f Makefile -f - print-kver <<<'print-kver: ; @echo $(KVER)')
	for f in "lib/modules/$kv/extra/kalloc.ko" usr/lib/liballoc.so.1 usr/lib/liballoc.so usr/lib/liballoc.a \
		usr/include/kalloc/alloc.h usr/include/linux/kalloc.h usr/lib/pkgconfig/liballoc.pc \
		usr/bin/kallocstat usr/sbin/kallocctl usr/share/man/man8/kallocstat.8 \
		usr/share/man/man8/kallocctl.8 usr/share/man/man3/liballoc.3 \
		usr/lib/udev/rules.d/60-kalloc.rules; do
		[ -f "$d/$f" ] || { echo "missing: $f"; find "$d" -type f; return 1; }
	done
	grep -q depmod "$TMP/install" && { echo "depmod ran with DESTDIR set"; return 1; }
	grep -qE 'groupadd|udevadm' "$TMP/install" && { echo "groupadd or udevadm ran with DESTDIR set"; return 1; }
	grep -qx 'KERNEL=="kalloc", GROUP="kalloc", MODE="0660"' "$d/usr/lib/udev/rules.d/60-kalloc.rules" ||
		{ echo "the udev rule does not give group kalloc, mode 0660"; return 1; }
	# a program builds against the installed tree through liballoc.pc
	PKG_CONFIG_SYSROOT_DIR=$d PKG_CONFIG_LIBDIR=$d/usr/lib/pkgconfig \
		cc -std=c11 -Wall -Wextra -Werror -o "$TMP/demo" Documentation/examples/kalloc_demo.c \
		$(PKG_CONFIG_SYSROOT_DIR=$d PKG_CONFIG_LIBDIR=$d/usr/lib/pkgconfig \
			pkg-config --cflags --libs --static liballoc) -Wl,-rpath,"$d/usr/lib" &&
		"$d/usr/bin/kallocstat" --proc "$FIX/empty" >/dev/null
}
check "make install DESTDIR=... PREFIX=/usr puts module, library, headers, .pc, tools, man pages in place" \
	install_tree

# --- dkms ---------------------------------------------------------------------------
dkms_conf_version() {
	local v
	v=$(sed -n 's/.*KALLOC_VERSION_STRING[[:space:]]*"\(.*\)"/\1/p' module/kalloc.h)
	grep -qx "PACKAGE_VERSION=\"$v\"" dkms.conf && grep -qx 'PACKAGE_NAME="kalloc"' dkms.conf
}
check "dkms.conf: PACKAGE_NAME kalloc, PACKAGE_VERSION equals the module's" dkms_conf_version

# dkms add + build in a private tree, from what make install-dkms installs.
dkms_build() {
	local kv=$1 v d=$TMP/dkms ko
	v=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' dkms.conf)
	if [ ! -d "$d/tree" ]; then
		mkdir -p "$d/tree"
		make --no-print-directory install-dkms DESTDIR="$d" >/dev/null &&
			dkms add -m kalloc -v "$v" --sourcetree "$d/usr/src" --dkmstree "$d/tree" ||
			return 1
	fi
	dkms build -m kalloc -v "$v" -k "$kv" --sourcetree "$d/usr/src" --dkmstree "$d/tree" ||
		{ cat "$d/tree/kalloc/$v/build/make.log" 2>/dev/null; return 1; }
	# kalloc.ko, or kalloc.ko.xz where the kernel compresses its modules
	ko=$(ls "$d/tree/kalloc/$v/$kv/x86_64/module/"kalloc.ko* 2>/dev/null | head -n 1)
	[ -n "$ko" ] || { ls -R "$d/tree/kalloc/$v"; return 1; }
	modinfo -F vermagic "$ko" | grep -q "^$kv "
}
for k in $(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V); do
	kv=$(sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' "$k/include/generated/utsrelease.h")
	if [ "${TOOLS_TEST_DKMS:-1}" = 0 ] || ! command -v dkms >/dev/null; then
		skip "dkms build for $kv (no dkms, or TOOLS_TEST_DKMS=0)"
	else
		check "dkms add + build of kalloc for $kv (installed headers)" dkms_build "$kv"
	fi
done

# --- make demo, make deb --------------------------------------------------------------
demo_tests
deb_tests

exit $failed
