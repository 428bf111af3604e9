#!/bin/bash
# Run every selftest inside a kalloc-vm guest, with the module loaded.
# Each binary prints TAP; the shell tests (*_test.sh) print TAP too.
# Usage: selftests/run.sh [TEST...]   (names without directory)
# Exits non-zero if any test failed.
cd "$(dirname "$0")" || exit 2
status=0
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
	mapfile -t tests < <(ls build/ | grep '_test$'; ls | grep '_test\.sh$')
fi
if [ ${#tests[@]} -eq 0 ]; then
	echo 'not ok 1 - no selftests found (make selftests)'
	exit 1
fi
for t in "${tests[@]}"; do
	echo "# selftest $t"
	if [ ! -e "./build/$t" ] && [ ! -e "./$t" ]; then
		echo "not ok - $t: no such selftest (make selftests)"
		status=1
		continue
	fi
	case $t in
	*.sh) bash "./$t" ;;
	*) "./build/$t" ;;
	esac || status=1
done
exit $status
