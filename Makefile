# SPDX-License-Identifier: GPL-2.0-only
#
# virtio-msg-dkms: out-of-tree build of the virtio-msg transport, loopback
# and FF-A bus modules.
#
#   make                       build for the running kernel
#   make KDIR=<kernel build dir>   build against any other kernel tree
#   make install               modules_install (to .../updates) + depmod
#   make clean | dtbs | sparse | W1 | probes
#   make dtbs-apply BASE_DTB=<dtb>  test-apply the overlays with fdtoverlay
#
# ARCH=, CROSS_COMPILE=, CC=, LLVM=, KERNELRELEASE=, W=, C=, V= ... on the
# command line are passed through to kbuild.  DKMS runs
#   make -jN KERNELRELEASE=<kernelver> KDIR=<kernel_source_dir> modules
#
# Building is two kbuild passes:
#  1. compat probes: every compat/probes/*.c is compiled on its own
#     (make -k <probe>.o, no modpost); compat/gen-autoconf.sh writes
#     compat/generated/compat_autoconf.h with HAVE_<PROBE> for each one that
#     compiled, and logs the results to compat/probes/probes.log.  This is
#     redone whenever KDIR (or the kernel release, ARCH, compiler) changes,
#     or a probe changes.
#  2. the modules, from ./Kbuild.
#
# Nothing here inspects the build host: the only host-derived value is the
# default KERNELRELEASE (uname -r) used to find the default KDIR.

TOP := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

KERNELRELEASE ?= $(shell uname -r)
KDIR ?= /lib/modules/$(KERNELRELEASE)/build

# Release of the tree in KDIR (what modules_install/depmod use).
kdir-release = $(shell cat $(KDIR)/include/config/kernel.release 2>/dev/null)

# The oldest kernel the compat layer supports (dkms.conf's
# BUILD_EXCLUSIVE_KERNEL_MIN); older trees are refused before the probes
# run, with a clear message instead of a wall of compile errors.
MIN_KERNEL := 6.16

INSTALL_MOD_DIR ?= updates
DEPMOD ?= depmod
DTC ?= dtc

PROBE_DIR := $(TOP)/compat/probes
GEN_DIR := $(TOP)/compat/generated
AUTOCONF := $(GEN_DIR)/compat_autoconf.h
PROBE_STAMP := $(GEN_DIR)/probes.stamp
PROBE_SRCS := $(sort $(wildcard $(PROBE_DIR)/*.c))
PROBE_OBJS := $(notdir $(PROBE_SRCS:.c=.o))

# Everything the probe results depend on besides the probe sources.  ARCH,
# CROSS_COMPILE, CC and LLVM are only set if given on the command line (or
# by DKMS's environment); Debian header trees set ARCH/CROSS_COMPILE
# themselves.
probe-stamp = KDIR=$(abspath $(KDIR)) KERNELRELEASE=$(kdir-release) \
	ARCH=$(ARCH) CROSS_COMPILE=$(CROSS_COMPILE) CC=$(CC) LLVM=$(LLVM)

# The probes must not run with W=1 / C=1 meant for the real build (extra
# warnings, sparse).  KCFLAGS does reach them, like the real build.
PROBE_KBUILD_ARGS := W= KBUILD_EXTRA_WARN= C= KBUILD_CHECKSRC=0

.PHONY: all modules probes install clean dtbs dtbs-apply sparse W1 help FORCE

all: modules

modules: $(AUTOCONF)
	$(MAKE) -C $(KDIR) M=$(TOP) modules

probes: $(AUTOCONF)

# Sparse on all sources (C=2: also files that are already built).
# Kernels >= 7.0 validate the checker with scripts/checker-valid.sh (sparse
# must understand __typeof_unqual__, which Debian's sparse 0.6.4 does not)
# and silently turn C= off when it fails -- and Debian's linux-kbuild does
# not even ship that script.  So: do the same validation here, fail loudly
# if this kernel needs a newer sparse, and force the check on with
# KBUILD_CHECKSRC (which also silences kbuild's gate).
CHECK ?= sparse

sparse: $(AUTOCONF)
	@command -v $(CHECK) >/dev/null 2>&1 || \
		{ echo "ERROR: $(CHECK) not found (apt-get install sparse)" >&2; exit 1; }
	@if grep -qs checker-valid.sh $(KDIR)/Makefile \
		$$(sed -n 's/^include[[:space:]]*//p' $(KDIR)/Makefile); then \
		t=$$(mktemp --suffix=.c) && \
		printf 'static inline int u(const int *q)\n{\n\t__typeof_unqual__(*q) v = *q;\n\treturn v;\n}\n' >$$t && \
		out=$$($(CHECK) $$t 2>&1); rm -f $$t; \
		if echo "$$out" | grep -q error; then \
			echo "ERROR: $(KDIR) needs a sparse that understands __typeof_unqual__" >&2; \
			echo "ERROR: (kernel >= 7.0); $(CHECK) does not: build sparse from git or pass CHECK=" >&2; \
			exit 1; \
		fi; \
	fi
	$(MAKE) -C $(KDIR) M=$(TOP) C=2 KBUILD_CHECKSRC=2 modules

W1: $(AUTOCONF)
	$(MAKE) -C $(KDIR) M=$(TOP) W=1 modules

install: modules
	$(MAKE) -C $(KDIR) M=$(TOP) INSTALL_MOD_DIR=$(INSTALL_MOD_DIR) modules_install
	$(DEPMOD) $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) -a $(or $(kdir-release),$(KERNELRELEASE))

# Rewritten only when its content changes, so $(AUTOCONF) is regenerated
# exactly when the kernel tree / toolchain changed.
$(PROBE_STAMP): FORCE
	@if [ ! -f '$(KDIR)/Makefile' ]; then \
		echo "ERROR: KDIR=$(KDIR) is not a kernel build directory." >&2; \
		echo "ERROR: Install the kernel headers or pass KDIR=<kernel build dir>." >&2; \
		exit 1; \
	fi
	@mkdir -p $(GEN_DIR)
	@echo '$(strip $(probe-stamp))' | cmp -s - $@ 2>/dev/null || \
		echo '$(strip $(probe-stamp))' >$@

$(AUTOCONF): $(PROBE_STAMP) $(PROBE_SRCS) $(PROBE_DIR)/Kbuild $(TOP)/compat/gen-autoconf.sh
	@rel='$(kdir-release)'; [ -z "$$rel" ] || \
		printf '%s\n' $(MIN_KERNEL) "$${rel%%[-+]*}" | sort -V -C || \
		{ echo "ERROR: virtio-msg-dkms needs Linux $(MIN_KERNEL) or later; $(KDIR) is $$rel" >&2; \
		  exit 1; }
	@echo '  PROBE   $(KDIR) ($(words $(PROBE_OBJS)) probes)'
	@rm -f $(PROBE_DIR)/*.o $(PROBE_DIR)/.*.cmd $(PROBE_DIR)/.*.d \
		$(PROBE_DIR)/probes.raw
	@$(MAKE) -C $(KDIR) M=$(PROBE_DIR) $(PROBE_KBUILD_ARGS) -k $(PROBE_OBJS) \
		>$(PROBE_DIR)/probes.raw 2>&1 || true
	@$(SHELL) $(TOP)/compat/gen-autoconf.sh $(PROBE_DIR) $@ \
		$(PROBE_DIR)/probes.raw "$$(cat $(PROBE_STAMP))"

# Device-tree overlays (reserved-memory regions for the buses).
# The overlays add /reserved-memory (with its own #address-cells and
# #size-cells) under target-path "/"; dtc cannot know the cell sizes of the
# target's root and warns about the fragment's defaults, so those two
# checks are off.
DTSO := $(wildcard $(TOP)/dts/*.dtso)
DTBO := $(DTSO:.dtso=.dtbo)
DTC_FLAGS ?= -Wno-avoid_default_addr_size -Wno-ranges_format
FDTOVERLAY ?= fdtoverlay
FDTGET ?= fdtget

dtbs: $(DTBO)

$(TOP)/dts/%.dtbo: $(TOP)/dts/%.dtso
	$(DTC) -@ $(DTC_FLAGS) -I dts -O dtb -o $@ $<

# make dtbs-apply BASE_DTB=<dtb>: check that every overlay applies to a
# base DTB (e.g. qemu-system-aarch64 -M virt,dumpdtb=virt.dtb) and that
# the result has the region under /reserved-memory.  Writes nothing here.
dtbs-apply: $(DTBO)
	@if [ -z '$(BASE_DTB)' ]; then \
		echo "usage: make dtbs-apply BASE_DTB=<base.dtb>" >&2; exit 2; fi
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for o in $(DTBO); do \
		n=$$(basename $$o .dtbo); region=$${n%-dynamic}; \
		$(FDTOVERLAY) -i '$(BASE_DTB)' -o "$$tmp/$$n.dtb" $$o; \
		node=$$($(FDTGET) -l "$$tmp/$$n.dtb" /reserved-memory | \
			grep -E "^$$region(@|$$)"); \
		compat=$$($(FDTGET) "$$tmp/$$n.dtb" /reserved-memory/$$node compatible); \
		echo "  DTBO    $$n.dtbo -> /reserved-memory/$$node ($$compat)"; \
	done

# No KDIR needed: removes exactly what the build writes in this tree.
clean:
	rm -rf $(GEN_DIR)
	rm -f $(PROBE_DIR)/probes.log $(PROBE_DIR)/probes.raw $(DTBO)
	rm -f $(TOP)/Module.symvers $(TOP)/modules.order
	find $(TOP) -maxdepth 1 \( -name '*.o' -o -name '*.ko' -o -name '*.mod' \
		-o -name '*.mod.c' -o -name '.*.cmd' -o -name '.*.d' \) -type f -delete
	find $(TOP)/src $(TOP)/compat \( -name '*.o' -o -name '*.ko' \
		-o -name '*.mod' -o -name '*.mod.c' -o -name '.*.cmd' \
		-o -name '.*.d' -o -name '*.symvers' -o -name 'modules.order' \) \
		-type f -delete
	rm -rf $(TOP)/.tmp_versions

help:
	@echo 'Targets: modules (default), install, clean, dtbs, dtbs-apply BASE_DTB=,'
	@echo '  sparse, W1, probes'
	@echo 'Variables: KDIR=<kernel build dir> (default /lib/modules/$$(uname -r)/build),'
	@echo '  KERNELRELEASE=, ARCH=, CROSS_COMPILE=, INSTALL_MOD_PATH=, INSTALL_MOD_DIR='

FORCE:

# ---------------------------------------------------------------------------
# Test orchestration (tests/README.md).  This block is maintained together
# with tests/; keep it at the end of the file.
#
#   make check [KERNELS=default|all|none|"7.3.4 7.3.4-amd64 ..."] [SUITE=<guest script>]
#              compile matrix (W=1, sparse, probes) on all nine Debian arm64
#              kernels and Debian amd64 6.16.12 + 7.3.4, QEMU boots running
#              tests/guest/suite.sh (arm64 and amd64)
#   make demo [KERNEL=7.3.4] [ARCH=amd64]   boot the newest kernel and tour
#                              the loopback bus (arm64 by default)
#   make tools                 native build of tools/ (virtio-msg-backend)
#   make check-style           checkpatch.pl --strict over the C sources
#   make check-pkg             Debian packages: build + lintian, then apt install,
#                              DKMS build, modprobe and removal in a Debian trixie
#                              arm64 VM (tests/pkg/run; includes check-pkg-amd64)
#   make check-pkg-amd64       the packages on amd64, natively: DKMS builds
#                              transport + loopback for a Debian amd64 kernel
#                              (tests/pkg/dkms-amd64)
#   make check-dtool           host unit tests of tools/dtool (virtio-msg-dt)
#   make bench                 performance figures in one trixie arm64 VM
#                              (floor, control path, fio on our backend vs
#                              VDUSE; tests/bench/run, table in
#                              tests/logs/bench-latest/)
#   make bench-smoke           one short repetition of it (make check runs it)
.PHONY: check demo tools check-style
.PHONY: check-pkg check-pkg-amd64 check-dtool bench bench-smoke

# Variables given on the make command line (KERNELS=, SUITE=, KERNEL=,
# JOBS=, BOOT_TIMEOUT= ...) reach the scripts through the environment.
check:
	$(TOP)/tests/check.sh

demo:
	$(TOP)/tests/demo.sh

tools:
	$(MAKE) -C $(TOP)/tools

check-style:
	$(TOP)/tests/check-style.sh

check-pkg:
	$(TOP)/tests/pkg/run

check-pkg-amd64:
	$(TOP)/tests/pkg/dkms-amd64

check-dtool:
	$(MAKE) -C $(TOP)/tools/dtool check

bench:
	$(TOP)/tests/bench/run

bench-smoke:
	$(TOP)/tests/bench/run --smoke
