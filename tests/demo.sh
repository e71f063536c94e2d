#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/demo.sh - "make demo": build the modules and the arm64 programs for
# the newest Debian kernel (KERNEL=7.3.4), boot it under QEMU with the
# loopback bus's reserved-memory overlay (vmsglb) and run
# tests/guest/demo.sh in the guest: load the modules, start
# virtio-msg-backend with a virtio-rng and a virtio-blk device, read
# /dev/hwrng, make a file system on the disk and read it back, stop the
# backend, unload the modules.  The guest prints "DEMO OK" at the end.
# "make demo ARCH=amd64" does the same with the Debian amd64 kernel under
# qemu-system-x86_64 (no device tree: the run-time pool).
#
# Settings (environment): ARCH=arm64|amd64 (default arm64; VMSG_ARCH wins
# if set), KERNEL (default 7.3.4), TIMEOUT (default 600), KEEP=1 keeps the
# build dir, VMSG_CACHE (see tests/README.md).
# Exit status: that of tests/vm-run (0 = the demo ran and the kernel log is
# clean; 77 = kernel not available from the mirror).
set -euo pipefail
TESTS_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib/build.sh
source "$TESTS_DIR/lib/build.sh"
# shellcheck source=lib/initramfs.sh
source "$TESTS_DIR/lib/initramfs.sh"

KERNEL="${KERNEL:-7.3.4}"
TIMEOUT="${TIMEOUT:-600}"
case "${VMSG_ARCH:-${ARCH:-arm64}}" in
arm64 | aarch64) VMSG_ARCH=arm64 OVERLAY=vmsglb ;;
amd64 | x86_64) VMSG_ARCH=amd64 OVERLAY=none ;;
*) vmsg_die "ARCH=${VMSG_ARCH:-$ARCH}: the demo runs on arm64 or amd64" ;;
esac
export VMSG_ARCH

if [[ "$VMSG_ARCH" == amd64 ]]; then
	vmsg_need_cmd qemu-system-x86_64 qemu-system-x86 /usr/share/seabios/bios-256k.bin seabios
else
	vmsg_need_cmd qemu-system-aarch64 qemu-system-arm /usr/lib/ipxe/qemu/efi-virtio.rom ipxe-qemu
fi
vmsg_need_cmd debootstrap debootstrap dtc device-tree-compiler fdtoverlay device-tree-compiler \
	curl curl xz xz-utils zstd zstd cpio cpio dpkg-deb dpkg modinfo kmod file file \
	unshare util-linux flock util-linux

WORK="$(mktemp -d "${TMPDIR:-/tmp}/vmsg-demo.XXXXXX")"
if [[ "${KEEP:-0}" == 1 ]]; then
	vmsg_log "build dir kept: $WORK"
else
	trap 'rm -rf "$WORK"' EXIT
fi

rc=0
vmsg_kernel_fetch "$KERNEL" || rc=$?
((rc == 0)) || exit "$rc"

vmsg_log "building the modules for $VMSG_KABI"
vmsg_copy_module_sources "$WORK/src"
vmsg_build_modules "$KERNEL" "$WORK/src" >"$WORK/modules.log" 2>&1 ||
	{ tail -30 "$WORK/modules.log" >&2; vmsg_die "module build failed"; }
vmsg_collect_modules "$WORK/src" "$WORK/ko" >&2 || vmsg_die "modules with the wrong vermagic"

vmsg_log "building virtio-msg-backend and vmsg-test (static $VMSG_ARCH)"
vmsg_copy_tool_sources "$WORK/tools-src"
vmsg_build_backend "$WORK/tools-src" "$WORK/progs" >"$WORK/tools.log" 2>&1 ||
	{ tail -30 "$WORK/tools.log" >&2; vmsg_die "tools build failed"; }
vmsg_build_vmsg_test "$WORK/tools-src" "$WORK/progs" >>"$WORK/tools.log" 2>&1 ||
	{ tail -30 "$WORK/tools.log" >&2; vmsg_die "vmsg-test build failed"; }

# The default guest module set plus ext4 (which mounts ext2) for the disk.
VMSG_INITRAMFS_MODULES="${VMSG_INITRAMFS_MODULES:-$(vmsg_initramfs_default_modules) ext4}"
export VMSG_INITRAMFS_MODULES
vmsg_log "booting $KERNEL ($VMSG_ARCH) with OVERLAY=$OVERLAY"
rc=0
"$TESTS_DIR/vm-run" KERNEL="$KERNEL" ARCH="$VMSG_ARCH" OVERLAY="$OVERLAY" BUILD=0 MODDIR="$WORK/ko" \
	PROGS="$WORK/progs" TIMEOUT="$TIMEOUT" "$TESTS_DIR/guest/demo.sh" </dev/null || rc=$?
if ((rc == 0)); then
	echo "demo: passed (kernel $KERNEL, $VMSG_ARCH)"
else
	echo "demo: FAILED, vm-run status $rc (see tests/README.md)" >&2
fi
exit "$rc"
