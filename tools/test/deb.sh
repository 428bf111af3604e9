# The Debian packages, built and installed on this machine for real
# (sourced by tools/test/run.sh, which provides check, ok, skip, TMP):
#
#   the version is said once (module/kalloc.h) and debian/changelog and
#   dkms.conf agree; make deb builds the four packages and lintian finds no
#   error and no warning in them;
#   as root: apt-get install ./...: dkms builds and installs kalloc.ko for
#   every installed kernel with headers, the group and udev rule exist;
#   each kernel boots in a VM with no module inserted, the installed
#   kallocctl loads the installed module by name, and a program linked
#   with $(pkg-config --libs liballoc) runs on the device through the
#   installed liballoc.so.1; then apt-get purge leaves nothing behind.
#
# The packages are purged on any exit (deb_cleanup in run.sh's trap), and
# the kalloc group removed if this test created it: the machine is left as
# it was.  If a kalloc package is already installed here, the test does not
# touch it and skips.  TOOLS_TEST_DEB=0 skips the whole of it.

DEB_PKGS="kalloc-dkms liballoc1 liballoc-dev kalloc-tools"
DEB_VERSION=$(sed -n 's/.*KALLOC_VERSION_STRING[[:space:]]*"\(.*\)"/\1/p' module/kalloc.h)
DEB_ARCH=$(dpkg --print-architecture 2>/dev/null)
DEB_MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
DEB_PROG=build/deb-test/kalloc_demo	# in the project: the guest sees it
deb_installed=0				# this test installed the packages
deb_group_created=0			# ... and the kalloc group came with them

deb_file() { # PACKAGE: the .deb make deb built for it
	case $1 in
	kalloc-dkms) echo "build/deb/${1}_${DEB_VERSION}_all.deb" ;;
	*) echo "build/deb/${1}_${DEB_VERSION}_${DEB_ARCH}.deb" ;;
	esac
}

deb_version_one_place() {
	local v
	v=$(dpkg-parsechangelog -l debian/changelog -S Version) || return 1
	echo "module/kalloc.h: $DEB_VERSION, debian/changelog: $v"
	[ -n "$DEB_VERSION" ] && [ "$v" = "$DEB_VERSION" ] &&
		grep -qx "PACKAGE_VERSION=\"$DEB_VERSION\"" dkms.conf
}

deb_build() {
	local p
	make --no-print-directory deb >"$TMP/deb.log" 2>&1 || { tail -n 40 "$TMP/deb.log"; return 1; }
	for p in $DEB_PKGS; do
		[ -f "$(deb_file "$p")" ] || { echo "missing: $(deb_file "$p")"; ls build/deb; return 1; }
	done
	# make deb fails on a lintian error; a warning fails this test
	if grep -E '^[EW]: ' "$TMP/deb.log"; then
		return 1
	fi
}

deb_any_installed() {
	local p
	for p in $DEB_PKGS; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -qv '^unknown ok not-installed$' &&
			return 0
	done
	[ -n "$(dkms status -m kalloc 2>/dev/null)" ]
}

deb_cleanup() {
	if [ $deb_installed = 1 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -q $DEB_PKGS >/dev/null 2>&1
		deb_installed=0
	fi
	if [ $deb_group_created = 1 ]; then
		groupdel kalloc 2>/dev/null
		deb_group_created=0
	fi
}

deb_install() {
	local p files=()
	getent group kalloc >/dev/null || deb_group_created=1
	for p in $DEB_PKGS; do
		files+=("./$(deb_file "$p")")
	done
	deb_installed=1
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${files[@]}" || return 1
	getent group kalloc &&
		grep -qx 'KERNEL=="kalloc", GROUP="kalloc", MODE="0660"' /usr/lib/udev/rules.d/60-kalloc.rules
}

deb_dkms_built() { # KVER
	local kv=$1 ko
	dkms status -m kalloc -v "$DEB_VERSION" -k "$kv" | tee /dev/stderr | grep -q ': installed$' ||
		return 1
	# kalloc.ko, or kalloc.ko.xz where the kernel's own modules are compressed
	ko=$(ls /lib/modules/"$kv"/updates/dkms/kalloc.ko* 2>/dev/null | head -n 1)
	[ -n "$ko" ] || { echo "no /lib/modules/$kv/updates/dkms/kalloc.ko*"; return 1; }
	modinfo -F vermagic "$ko" | grep -q "^$kv " &&
		modprobe --set-version "$kv" --show-depends kalloc | grep -q "insmod $ko"
}

# A program built as a user of the packages would: pkg-config, no rpath.
deb_program() {
	mkdir -p "$(dirname "$DEB_PROG")"
	cc -O2 -std=c11 -Wall -Wextra -Werror -o "$DEB_PROG" Documentation/examples/kalloc_demo.c \
		$(pkg-config --cflags --libs liballoc) || return 1
	readelf -d "$DEB_PROG" | grep -q 'NEEDED.*\[liballoc\.so\.1\]' &&
		! readelf -d "$DEB_PROG" | grep -qE 'RPATH|RUNPATH' &&
		# /lib is /usr/lib (merged /usr): the loader may name either
		ldd "$DEB_PROG" | grep -Eq "liballoc\.so\.1 => (/usr)?/lib/$DEB_MULTIARCH/liballoc\.so\.1 "
}

# In a guest of KVER with no module inserted: the installed kallocctl
# loads the installed module, the program runs on the device.
deb_vm() { # KVER
	local kv=$1 out
	out=$(tools/kalloc-vm --kernel "$kv" --no-module --timeout 900 -- sh -c "
		/usr/sbin/kallocctl load && /usr/sbin/kallocctl status &&
		KALLOC_BACKEND=device $DEB_PROG && /usr/sbin/kallocctl unload" 2>&1)
	local rc=$?
	echo "$out"
	[ $rc = 0 ] &&
		# a basic regex: a release such as 6.12.117+deb12 holds a '+'
		grep -qx "kalloc $DEB_VERSION loaded from /lib/modules/$kv/updates/dkms/kalloc\.ko\(\.xz\)\{0,1\}" <<<"$out" &&
		grep -q '^liballoc (device backend)' <<<"$out" &&
		grep -q 'entries left, all intact$' <<<"$out" &&
		grep -q '^kalloc unloaded$' <<<"$out"
}

deb_purged() {
	local left p
	DEBIAN_FRONTEND=noninteractive apt-get purge -y -q $DEB_PKGS || return 1
	deb_installed=0
	for p in $DEB_PKGS; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -v '^unknown ok not-installed$' &&
			{ echo "$p is still known to dpkg"; return 1; }
	done
	left=$(ls -d /lib/modules/*/updates/dkms/kalloc.ko* /usr/src/kalloc-* /var/lib/dkms/kalloc \
		/usr/lib/"$DEB_MULTIARCH"/liballoc* /usr/lib/"$DEB_MULTIARCH"/pkgconfig/liballoc.pc \
		/usr/include/kalloc /usr/include/linux/kalloc.h /usr/lib/udev/rules.d/60-kalloc.rules \
		/usr/sbin/kallocctl /usr/bin/kallocstat 2>/dev/null)
	[ -z "$left" ] || { echo "left after purge: $left"; return 1; }
	grep -l 'updates/dkms/kalloc' /lib/modules/*/modules.dep && { echo "still in modules.dep"; return 1; }
	[ -z "$(dkms status -m kalloc)" ] || { dkms status -m kalloc; return 1; }
	# the group stays, as Debian leaves system groups (files may name it)
	getent group kalloc
}

deb_tests() {
	local k kv
	check "the version is said once: debian/changelog and dkms.conf say module/kalloc.h's" \
		deb_version_one_place
	if [ "${TOOLS_TEST_DEB:-1}" = 0 ]; then
		skip "make deb, install, load in a VM, purge (TOOLS_TEST_DEB=0)"
		return
	fi
	check "make deb builds $DEB_PKGS; lintian: no error, no warning" deb_build
	if [ "$(id -u)" != 0 ]; then
		skip "apt-get install of the packages, VM loads, purge (not root)"
		return
	fi
	if deb_any_installed; then
		skip "apt-get install of the packages (a kalloc package or dkms module is installed here already: not touched)"
		return
	fi
	check "apt-get install ./...: the four packages, the kalloc group, the udev rule" deb_install
	for k in $(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V); do
		kv=$(sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' "$k/include/generated/utsrelease.h")
		check "dkms built and installed kalloc.ko for $kv, in its modules.dep" deb_dkms_built "$kv"
	done
	check "a program builds with pkg-config --libs liballoc against /usr/lib/$DEB_MULTIARCH/liballoc.so.1" \
		deb_program
	for k in $(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V); do
		kv=$(sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' "$k/include/generated/utsrelease.h")
		check "VM $kv: installed kallocctl loads the installed module; the program runs on /dev/kalloc" \
			deb_vm "$kv"
	done
	check "apt-get purge leaves no module, library, header, udev rule, tool, dkms state (the group stays)" \
		deb_purged
	deb_cleanup
}
