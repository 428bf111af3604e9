# kalloc: the module, liballoc, the tools and the tests.
#
#   make             the module for one kernel (KDIR) and the userspace
#   make modules-all the module for every installed Debian target kernel
#   make check       deps, build, host lane, a VM lane per target kernel
#   make demo        boot a VM, load the module, show /proc/kalloc
#   make deps        install what the project needs (root)

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

.PHONY: all module modules-all userspace selftests check check-host demo deps \
	clean load unload checkpatch sparse lib

all: module userspace

# One kernel's build happens in build/KVER/: a tree of links to the sources,
# so that several kernels' objects never mix.
define build_module
	@kv=$(call kver,$(1)); test -n "$$kv" || { echo "no kernel build dir at $(1)" >&2; exit 1; }; \
	b=$(TOP)/build/$$kv; mkdir -p $$b/module/uapi/linux; \
	ln -sf $(TOP)/Kbuild $$b/Kbuild; \
	for f in $(TOP)/module/*.[ch] $(TOP)/module/uapi/linux/*.h; do \
		ln -sf $$f $$b/$${f#$(TOP)/}; done; \
	$(MAKE) --no-print-directory -C $(1) M=$$b W=1 $(2) modules
endef

module:
	$(call build_module,$(KDIR),$(KFLAGS))

modules-all:
	@for k in $(KDIRS); do $(MAKE) --no-print-directory module KDIR=$$k || exit 1; done

# C=2: run sparse on every file, built or not.
sparse:
	@for k in $(KDIRS); do $(MAKE) --no-print-directory module KDIR=$$k KFLAGS=C=2 || exit 1; done

# The compat header exists to test LINUX_VERSION_CODE, which checkpatch
# discourages everywhere: it is exempt from those two checks, and only it.
CHECKPATCH := perl $(CACHE)/linux-source/scripts/checkpatch.pl --no-tree \
	--strict --ignore FILE_PATH_CHANGES -q -f
checkpatch:
	@$(CHECKPATCH) --ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON $(TOP)/module/compat.h
	@$(CHECKPATCH) $(filter-out %/compat.h,$(wildcard $(TOP)/module/*.[ch])) \
		$(TOP)/module/uapi/linux/*.h

userspace: selftests

selftests:
	@$(MAKE) --no-print-directory -C selftests HARNESS=$(HARNESS)

deps:
	@$(TOP)/tools/deps.sh

check: deps
	@$(TOP)/tools/check

demo: all
ifeq ($(VM),0)
	@$(TOP)/tools/demo
else
	@$(TOP)/tools/kalloc-vm --kernel 6.12 -- tools/demo
endif

load: module
	insmod $(TOP)/build/$$(uname -r)/kalloc.ko

unload:
	rmmod kalloc

clean:
	rm -rf $(TOP)/build
	@$(MAKE) --no-print-directory -C selftests clean
