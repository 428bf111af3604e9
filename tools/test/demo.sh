# make demo as a newcomer's first command (sourced by tools/test/run.sh,
# which provides check, skip, TMP): in a fresh git clone of this tree, with
# nothing built and an empty cache, make demo checks the dependencies
# (make deps), builds, boots Debian's 6.12 kernel, loads the module with
# kallocctl, runs the demo program on /dev/kalloc and unloads.  The clone
# is of the committed tree (HEAD), as a newcomer would get it.
# TOOLS_TEST_DEMO=0 skips it.

demo_from_clone() {
	local c=$TMP/clone out rc
	git clone -q "$PWD" "$c" || return 1
	out=$(make -C "$c" --no-print-directory demo 2>&1)
	rc=$?
	echo "$out"
	[ $rc = 0 ] &&
		grep -qE "^kalloc [0-9.]+ loaded from $c/build/6\.12\.[^/]*/kalloc\.ko$" <<<"$out" &&
		grep -q '^liballoc (device backend)' <<<"$out" &&
		grep -q 'entries left, all intact$' <<<"$out" &&
		# after the program exits, every region is gone
		[ "$(grep -c ': 0 regions, 0 B resident' <<<"$out")" = 2 ] &&
		grep -q '^- after it exited, no region and no page was left' <<<"$out" &&
		grep -q '^kalloc unloaded$' <<<"$out"
}

# A target that lacks a dependency names it and says how to get it: a
# Makefile whose kernel headers are elsewhere, as on a fresh machine.
demo_missing_headers() {
	local out
	out=$(make --no-print-directory module KDIR= 2>&1) && return 1
	echo "$out"
	grep -q "no kernel headers (/usr/src/linux-headers-\*-amd64): run 'make deps'" <<<"$out" &&
		! grep -q 'no kernel build dir at' <<<"$out"
}

demo_tests() {
	check "make module with no kernel headers says what is missing and 'make deps'" \
		demo_missing_headers
	if [ "${TOOLS_TEST_DEMO:-1}" = 0 ] || ! command -v git >/dev/null; then
		skip "make demo in a fresh clone (TOOLS_TEST_DEMO=0, or no git)"
		return
	fi
	check "make demo in a fresh clone: deps, build, 6.12 guest, kallocctl load, demo on /dev/kalloc, unload" \
		demo_from_clone
}
