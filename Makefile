# kalloc: the module, liballoc, the tools and the tests.
#
#   make             the module for one kernel (KDIR) and the userspace
#   make modules-all the module for every installed Debian target kernel
#   make check       deps, build, host lane, a VM lane per target kernel, and
#                    the debug kernel's lane when that kernel is built
#   make debug-kernel  a 6.12 kernel with KASAN, KFENCE, lockdep, DEBUG_VM and
#                    DEBUG_PAGEALLOC, cached in .cache/debug-kernel/ (long build)
#   make check-debug the selftests, fuzz slice and stress test, liballoc's and
#                    the tools' VM tests on the debug kernel
#   make demo        deps, build, boot a VM, load the module, run the demo
#   make bench       allocator and fault-path benchmarks (QUICK=1: short; VM=0: host only;
#                    RUNS=N: runs per cell, 5 by default)
#   make deps        install what the project needs (root)
#   make install     module, liballoc, headers, tools, man pages (PREFIX, DESTDIR)
#   make install-dkms  the module's sources to /usr/src/kalloc-VERSION for dkms
#   make deb         Debian packages in build/deb/: kalloc-dkms, liballoc1,
#                    liballoc-dev, kalloc-tools (then lintian)

SHELL := /bin/bash
TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CACHE := $(TOP)/.cache
export KALLOC_CACHE := $(CACHE)

# The kernel to build for: the running kernel's build dir when it exists,
# else the newest installed Debian headers.
KDIR ?= $(shell d=/lib/modules/$$(uname -r)/build; \
	if [ -d $$d ]; then echo $$d; else \
	ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1; fi)
# Every installed Debian target kernel: one headers dir per kernel.
KDIRS = $(shell ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V)

# The release the kernel reports (uname -r), which names build/KVER/.
kver = $(shell sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' $(1)/include/generated/utsrelease.h 2>/dev/null)

CC ?= gcc
USER_CFLAGS := -std=c11 -Wall -Wextra -Werror -O2 -g -D_GNU_SOURCE \
	-I$(TOP)/module/uapi
HARNESS := $(CACHE)/linux-source/tools/testing/selftests

.PHONY: all module modules-all vm-selftest-module userspace selftests check check-host demo deps soak \
	debug-kernel check-debug \
	clean load unload checkpatch sparse lib tools install install-dkms bench deb

all: module userspace

# No headers: say which and how to get them, rather than fail in Kbuild
# (expanded only when a recipe that needs them runs).
NO_HEADERS = $(error make $@: no kernel headers (/usr/src/linux-headers-*-amd64): \
	run 'make deps' (as root) to install them)

# One kernel's build happens in build/KVER/: a tree of links to the sources,
# so that several kernels' objects never mix.
define build_module
	$(if $(1),,$(NO_HEADERS))
	@kv=$(call kver,$(1)); test -n "$$kv" || { echo "make $@: $(1) is not a kernel" \
		"build dir (no include/generated/utsrelease.h): install its headers, or" \
		"run 'make deps' (as root)" >&2; exit 1; }; \
	b=$(TOP)/build/$$kv; mkdir -p $$b/module/uapi/linux; \
	ln -sf $(TOP)/Kbuild $$b/Kbuild; \
	for f in $(TOP)/module/*.[ch] $(TOP)/module/uapi/linux/*.h; do \
		ln -sf $$f $$b/$${f#$(TOP)/}; done; \
	$(MAKE) --no-print-directory -C $(1) M=$$b W=1 $(2) modules
endef

module:
	$(call build_module,$(KDIR),$(KFLAGS))

# The fixture that proves kalloc-vm catches a WARN: build/KVER/vm-selftest/.
vm-selftest-module:
	@kv=$(call kver,$(KDIR)); b=$(TOP)/build/$$kv/vm-selftest; mkdir -p $$b; \
	ln -sf $(TOP)/tools/vm-selftest/Kbuild $(TOP)/tools/vm-selftest/warn_on_load.c $$b/; \
	$(MAKE) --no-print-directory -C $(KDIR) M=$$b modules

modules-all:
	$(if $(KDIRS),,$(NO_HEADERS))
	@for k in $(KDIRS); do $(MAKE) --no-print-directory module KDIR=$$k || exit 1; done

# C=2: run sparse on every file, built or not.
sparse:
	$(if $(KDIRS),,$(NO_HEADERS))
	@command -v sparse >/dev/null || { echo "make sparse: sparse is missing:" \
		"run 'make deps' (as root)" >&2; exit 1; }
	@for k in $(KDIRS); do $(MAKE) --no-print-directory module KDIR=$$k KFLAGS=C=2 || exit 1; done

# The compat header exists to test LINUX_VERSION_CODE, which checkpatch
# discourages everywhere: it is exempt from those two checks, and only it.
CHECKPATCH := perl $(CACHE)/linux-source/scripts/checkpatch.pl --no-tree \
	--strict --ignore FILE_PATH_CHANGES -q -f
checkpatch:
	@test -f $(CACHE)/linux-source/scripts/checkpatch.pl || { echo "make checkpatch:" \
		"$(CACHE)/linux-source/scripts/checkpatch.pl is missing: run 'make deps'" >&2; exit 1; }
	@$(CHECKPATCH) --ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON $(TOP)/module/compat.h
	@$(CHECKPATCH) $(filter-out %/compat.h,$(wildcard $(TOP)/module/*.[ch])) \
		$(TOP)/module/uapi/linux/*.h

userspace: selftests lib tools

lib:
	@$(MAKE) --no-print-directory -C lib all

selftests:
	@$(MAKE) --no-print-directory -C selftests HARNESS=$(HARNESS)

# kallocstat, kallocctl, and the demo program (linked with liballoc.a).
tools: lib
	@$(MAKE) --no-print-directory -C tools

# make install: what a machine that loads the module needs.  The module for
# KVER (default: KDIR's) goes to /lib/modules/KVER/extra, followed by depmod
# unless DESTDIR is set (a staging tree's depmod is the packager's).  The
# udev rule gives /dev/kalloc group kalloc, mode 0660; the system group is
# created and udev reloaded unless DESTDIR is set (then the package's
# maintainer scripts do it).
PREFIX ?= /usr/local
VERSION := $(shell sed -n 's/.*KALLOC_VERSION_STRING[[:space:]]*"\(.*\)"/\1/p' $(TOP)/module/kalloc.h)
KVER ?= $(call kver,$(KDIR))
INSTALL ?= install

install: module lib tools
	$(INSTALL) -D -m 644 build/$(KVER)/kalloc.ko $(DESTDIR)/lib/modules/$(KVER)/extra/kalloc.ko
	$(if $(DESTDIR),,depmod -a $(KVER))
	$(INSTALL) -D -m 644 lib/liballoc.so.1 $(DESTDIR)$(PREFIX)/lib/liballoc.so.1
	ln -sf liballoc.so.1 $(DESTDIR)$(PREFIX)/lib/liballoc.so
	$(INSTALL) -D -m 644 lib/liballoc.a $(DESTDIR)$(PREFIX)/lib/liballoc.a
	$(INSTALL) -D -m 644 lib/alloc.h $(DESTDIR)$(PREFIX)/include/kalloc/alloc.h
	$(INSTALL) -D -m 644 module/uapi/linux/kalloc.h $(DESTDIR)$(PREFIX)/include/linux/kalloc.h
	@mkdir -p $(DESTDIR)$(PREFIX)/lib/pkgconfig
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' \
		'includedir=$${prefix}/include' '' 'Name: liballoc' \
		'Description: malloc over /dev/kalloc regions' 'Version: $(VERSION)' \
		'Libs: -L$${libdir} -lalloc' 'Libs.private: -ldl -pthread' \
		'Cflags: -I$${includedir}/kalloc -I$${includedir}' \
		>$(DESTDIR)$(PREFIX)/lib/pkgconfig/liballoc.pc
	$(INSTALL) -D -m 755 tools/kallocstat $(DESTDIR)$(PREFIX)/bin/kallocstat
	$(INSTALL) -D -m 755 tools/kallocctl $(DESTDIR)$(PREFIX)/sbin/kallocctl
	$(INSTALL) -D -m 644 Documentation/man/kallocstat.8 $(DESTDIR)$(PREFIX)/share/man/man8/kallocstat.8
	$(INSTALL) -D -m 644 Documentation/man/kallocctl.8 $(DESTDIR)$(PREFIX)/share/man/man8/kallocctl.8
	$(INSTALL) -D -m 644 Documentation/man/liballoc.3 $(DESTDIR)$(PREFIX)/share/man/man3/liballoc.3
	$(INSTALL) -D -m 644 tools/udev/60-kalloc.rules $(DESTDIR)/usr/lib/udev/rules.d/60-kalloc.rules
ifeq ($(DESTDIR),)
	getent group kalloc >/dev/null || groupadd --system kalloc
	if command -v udevadm >/dev/null && [ -d /run/udev ]; then \
		udevadm control --reload && udevadm trigger --name-match=kalloc || true; fi
	ldconfig
else
	@echo "DESTDIR set: not creating group kalloc nor reloading udev (the package's scripts do)"
endif

# What dkms builds from: dkms.conf, Kbuild and the module's sources, in
# /usr/src/kalloc-VERSION.  Then: dkms install kalloc/VERSION.
DKMS_SRC = $(DESTDIR)/usr/src/kalloc-$(VERSION)
install-dkms:
	$(INSTALL) -D -m 644 dkms.conf $(DKMS_SRC)/dkms.conf
	$(INSTALL) -D -m 644 Kbuild $(DKMS_SRC)/Kbuild
	$(INSTALL) -D -m 644 -t $(DKMS_SRC)/module module/*.c module/*.h
	$(INSTALL) -D -m 644 -t $(DKMS_SRC)/module/uapi/linux module/uapi/linux/kalloc.h

deps:
	@$(TOP)/tools/deps.sh

# make deb: the Debian packages, from debian/, built in a copy of the
# sources (the files git knows, as committed or edited) under build/deb/,
# where dpkg-buildpackage also leaves the .debs; then lintian, which fails
# the target on any error.  The version is module/kalloc.h's: debian/
# changelog and dkms.conf must say the same.
DEB_OUT := $(TOP)/build/deb
deb:
	@for c in dpkg-buildpackage:dpkg-dev dh:debhelper dh_dkms:dh-dkms lintian:lintian; do \
		command -v $${c%%:*} >/dev/null || { echo "make deb: $${c%%:*} is missing" \
			"(package $${c#*:}): run 'make deps' (as root)" >&2; exit 1; }; done
	@v=$$(dpkg-parsechangelog -l $(TOP)/debian/changelog -S Version); \
	test "$$v" = "$(VERSION)" || { echo "make deb: debian/changelog says $$v," \
		"module/kalloc.h $(VERSION): add a changelog entry (dch -v $(VERSION))" >&2; exit 1; }
	@grep -qx 'PACKAGE_VERSION="$(VERSION)"' $(TOP)/dkms.conf || { echo "make deb:" \
		"dkms.conf's PACKAGE_VERSION is not $(VERSION) (module/kalloc.h)" >&2; exit 1; }
	rm -rf $(DEB_OUT)
	@mkdir -p $(DEB_OUT)/kalloc-$(VERSION)
	@cd $(TOP) && { git ls-files -co --exclude-standard 2>/dev/null || \
		find . -path ./build -prune -o -path ./.git -prune -o -path ./.cache -prune \
			-o -type f -print; } | while read -r f; do [ -f "$$f" ] && echo "$$f"; done | \
		tar -cf - -T - | tar -xf - -C $(DEB_OUT)/kalloc-$(VERSION)
	cd $(DEB_OUT)/kalloc-$(VERSION) && dpkg-buildpackage -b -us -uc
	lintian --fail-on error $(DEB_OUT)/kalloc_$(VERSION)_$$(dpkg --print-architecture).changes
	@ls $(DEB_OUT)/*.deb

check: deps
	@$(TOP)/tools/check

# make debug-kernel: tools/debug-kernel builds Debian's linux-source-6.12
# with tools/debug-kernel.config into .cache/debug-kernel/ (once; again only
# when the fragment or the source changes).  DEBUG_KDIR is its build tree,
# which the module builds against like any headers dir.
DEBUG_KDIR := $(CACHE)/debug-kernel/build
debug-kernel: deps
	@$(TOP)/tools/debug-kernel

# make check-debug: tools/check's debug lane alone (tools/vm-lane and
# tools/vm-numa-lane on the debug kernel); builds what it runs first.
check-debug: debug-kernel userspace
	@$(MAKE) --no-print-directory -s -C lib all $$($(MAKE) --no-print-directory -s -C lib \
		--eval='print-tests: ; @echo $$(TESTS)' print-tests)
	@KALLOC_CHECK_LANES=debug $(TOP)/tools/check

# make soak: selftests/kalloc_fuzz_test.sh with SOAK_OPS (default a million)
# operations and no time cap, in a VM per kernel, and on the debug kernel
# when it is built; not part of make check.
SOAK_OPS ?= 1000000
soak: modules-all selftests
	@s=0; for k in 6.1 6.12; do $(TOP)/tools/kalloc-vm --kernel $$k --timeout 7200 -- \
		env KALLOC_FUZZ_OPS=$(SOAK_OPS) KALLOC_FUZZ_TIME=0 selftests/run.sh kalloc_fuzz_test.sh || s=1; \
	done; \
	if $(TOP)/tools/debug-kernel --is-built; then \
		$(MAKE) --no-print-directory module KDIR=$(DEBUG_KDIR) && \
		$(TOP)/tools/kalloc-vm --kernel debug --timeout 28800 -- \
			env KALLOC_FUZZ_OPS=$(SOAK_OPS) KALLOC_FUZZ_TIME=0 \
			selftests/run.sh kalloc_fuzz_test.sh || s=1; \
	else \
		echo "make soak: no debug kernel (make debug-kernel): soaked on Debian's kernels only"; \
	fi; exit $$s

# The demo loads the module itself, with kallocctl.  It is the first
# command a newcomer types: it installs what is missing (make deps), builds
# quietly (the log in build/demo-build.log, its end shown on failure), then
# runs.  The module is built for the kernel the demo boots: Debian's 6.12
# in the VM, this machine's own with VM=0.
DEMO_LOG := $(TOP)/build/demo-build.log
demo: deps
	@mkdir -p $(TOP)/build
	@echo "demo: building (log: build/demo-build.log)"
ifeq ($(VM),0)
	@$(MAKE) --no-print-directory module lib tools >$(DEMO_LOG) 2>&1 || \
		{ tail -n 20 $(DEMO_LOG) >&2; echo "demo: the build failed (above)" >&2; exit 1; }
	@$(TOP)/tools/demo
else
	@k=$$(ls -d /usr/src/linux-headers-6.12.*-amd64 2>/dev/null | sort -V | tail -n 1); \
	test -n "$$k" || { echo "demo: no 6.12 kernel headers: run 'make deps' (as root)" >&2; exit 1; }; \
	$(MAKE) --no-print-directory module lib tools KDIR=$$k >$(DEMO_LOG) 2>&1 || \
		{ tail -n 20 $(DEMO_LOG) >&2; echo "demo: the build failed (above)" >&2; exit 1; }
	@echo "demo: booting Debian's 6.12 kernel in QEMU (about a minute)"
	@$(TOP)/tools/kalloc-vm --kernel 6.12 --no-module -- tools/demo
endif

# make bench [QUICK=1] [VM=0] [RUNS=N]: the workloads under glibc, jemalloc, tcmalloc,
# mimalloc and liballoc on this machine, then (unless VM=0) the fault-path
# benchmarks, the mapped-memory comparison, and real programs (xz, zstd, git)
# and the workloads under liballoc over the device and
# over anon in a 2-CPU 6.12 guest booted without the debug options (they
# would be measured too), the parallel fault and mapped-memory parts again in
# a 6.1 guest, then the results section of Documentation/benchmarks.md.
# See bench/run --help.
bench: lib
	@$(MAKE) --no-print-directory -C bench
	@$(TOP)/bench/run $(if $(filter-out 0,$(QUICK)),--quick) $(if $(RUNS),--runs $(RUNS))
ifneq ($(VM),0)
	@$(MAKE) --no-print-directory modules-all
	@$(TOP)/tools/kalloc-vm --kernel 6.12 --mem 2G --cpus 2 --no-debug \
		--timeout $(if $(filter-out 0,$(QUICK)),1800,7200) -- \
		bench/run --vm $(if $(filter-out 0,$(QUICK)),--quick) $(if $(RUNS),--runs $(RUNS))
	@$(TOP)/tools/kalloc-vm --kernel 6.1 --mem 2G --cpus 2 --no-debug \
		--timeout $(if $(filter-out 0,$(QUICK)),1800,3600) -- \
		bench/run --vm --parts fault-parallel,mapped-memory,huge-touch \
		$(if $(filter-out 0,$(QUICK)),--quick) $(if $(RUNS),--runs $(RUNS))
endif
	@$(TOP)/bench/run --doc

load: module
	insmod $(TOP)/build/$$(uname -r)/kalloc.ko

unload:
	rmmod kalloc

clean:
	rm -rf $(TOP)/build
	@$(MAKE) --no-print-directory -C selftests clean
	@$(MAKE) --no-print-directory -C tools clean
