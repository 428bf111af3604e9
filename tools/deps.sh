#!/bin/sh
# Install what kalloc needs from Debian's archive, idempotently.
#
# Prints each package it installs; skips what is present.  The 6.12 kernel
# is resolved at run time (the archive moves): the newest
# linux-image-6.12.*+deb12-amd64 and its matching headers.
set -eu

CACHE=${KALLOC_CACHE:-$(cd "$(dirname "$0")/.." && pwd)/.cache}

# debhelper, dh-dkms and lintian build and check make deb's packages; git
# clones the tree for the test of make demo on a clean clone.  xz-utils,
# zstd, git and time (its peak RSS) are what make bench's real-program part
# runs; libpython3.11-testsuite is Python's own tests, which liballoc's
# tests run under it (lib/test/programs.sh); flex, bison, bc, libelf-dev
# and libssl-dev build the debug kernel (make debug-kernel).
base_pkgs="qemu-system-x86 busybox-static cpio kmod libkmod-dev libnuma-dev \
sparse gnuplot-nox xz-utils python3 sqlite3 gcc g++ make pkg-config dkms \
debhelper dh-dkms lintian git zstd time libpython3.11-testsuite \
linux-image-amd64 linux-headers-amd64 linux-source-6.12 \
libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 \
flex bison bc libelf-dev libssl-dev"

# liballoc's real-program tests build a Rust program: Debian's rustc,
# unless a rustc is on PATH already (rustup's, say).
command -v rustc >/dev/null 2>&1 || base_pkgs="$base_pkgs rustc"

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "deps: not root; run: sudo $*" >&2
		exit 1
	fi
}

apt_updated=0
apt_update() {
	if [ $apt_updated = 0 ]; then
		apt-get update -qq
		apt_updated=1
	fi
}

newest_612() {
	apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64$' |
		awk '{print $1}' | sort -V | tail -n 1
}

missing=""
for p in $base_pkgs; do
	installed "$p" || missing="$missing $p"
done

# Is a 6.12 image with headers already here?  Then the archive need not be asked.
have612=$(dpkg-query -W -f='${Package} ${Status}\n' 'linux-image-6.12.*+deb12-amd64' 2>/dev/null |
	awk '/install ok installed/ {print $1}' | sort -V | tail -n 1)
if [ -n "$have612" ] && installed "$(echo "$have612" | sed 's/image/headers/')"; then
	img612=""
else
	need_root "make deps"
	apt_update
	img612=$(newest_612)
	if [ -z "$img612" ]; then
		echo "deps: no linux-image-6.12.*+deb12-amd64 in the archive" >&2
		exit 1
	fi
	missing="$missing $img612 $(echo "$img612" | sed 's/image/headers/')"
fi

if [ -n "$missing" ]; then
	need_root "make deps"
	apt_update
	echo "deps: installing:$missing"
	# INITRD=No: the guest boots kalloc's own busybox initramfs, so the
	# distro initramfs the kernel postinst would build is never used.
	INITRD=No DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends $missing
else
	echo "deps: all packages present"
fi

# kselftest harness and checkpatch come from linux-source, unpacked into the cache.
src=$(ls /usr/src/linux-source-6.12.tar.* 2>/dev/null | head -n 1)
if [ ! -f "$CACHE/linux-source/.done" ]; then
	echo "deps: extracting kselftest harness and checkpatch from $src into $CACHE/linux-source"
	rm -rf "$CACHE/linux-source"
	mkdir -p "$CACHE/linux-source"
	tar -xf "$src" -C "$CACHE/linux-source" --strip-components=1 --wildcards \
		'*/tools/testing/selftests/kselftest_harness.h' \
		'*/tools/testing/selftests/kselftest.h' \
		'*/scripts/checkpatch.pl' \
		'*/scripts/spelling.txt' \
		'*/scripts/const_structs.checkpatch'
	touch "$CACHE/linux-source/.done"
fi
