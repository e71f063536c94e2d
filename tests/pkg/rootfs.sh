# shellcheck shell=bash source-path=SCRIPTDIR
# tests/pkg/rootfs.sh - a cached Debian trixie arm64 system image for the
# package end-to-end test (tests/pkg/run).
#
# Public interface (source, then call):
#   vmsg_pkg_rootfs_ensure     build the image once (cached), set VMSG_PR_*:
#     VMSG_PR_DIR      cache dir $(vmsg_cache)/pkg-rootfs/trixie-<kver>-<tag>
#     VMSG_PR_DISK     raw ext4 root file system image (never modified by
#                      a test run: runs boot a qcow2 overlay on top of it)
#     VMSG_PR_KERNEL   the kernel Image inside it (copied out)
#     VMSG_PR_INITRD   its initramfs-tools initrd (copied out)
#     VMSG_PR_KABI     kernel release of the installed kernel
#
# Contents: debootstrap minbase of trixie (arm64, second stage run through
# qemu-user-static + binfmt_misc), then from the configured mirror
# (trixie + trixie-backports): linux-image + linux-headers of
# VMSG_PKG_KERNEL (default 7.3.4), dkms, gcc-14, make, udev, libfdt1, and
# the bench's fio, qemu-utils and iproute2 (tests/bench uses this image
# too).  (A second kernel's DKMS build is checked natively on amd64,
# tests/pkg/dkms-amd64.sh: under emulation it cost ~7 minutes.)  Apt
# sources, lists and caches are removed afterwards: the VM has no network
# and the image holds no mirror host name.
#
# The image boots with init=/usr/local/sbin/vmsg-pkg-init (tests/pkg/init,
# copied in): mounts, udevd, then runs /test/guest.sh from the second
# virtio disk (label VMSGTEST) and powers off.

[[ -n "${_VMSG_PKG_ROOTFS_SH:-}" ]] && return 0
_VMSG_PKG_ROOTFS_SH=1
# shellcheck source=../lib/kernels.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/kernels.sh"
# shellcheck source=../lib/chroot.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/chroot.sh"

VMSG_PKG_KERNEL="${VMSG_PKG_KERNEL:-7.3.4}"
# Everything the test needs in the VM, without network.  The packages'
# own dependencies (dkms, libfdt1) are preinstalled so that
# "apt install ./x.deb" resolves offline.
# openssl: DKMS creates its module signing key with it.
# qemu-utils (qemu-storage-daemon) and virtiofsd: the vhost-user backends
# of tests/vhost-user (fio, iproute2: the benchmark).  VMSG_PKG_PACKAGES
# overrides the list (another list is another cached image).
VMSG_PKG_PACKAGES="${VMSG_PKG_PACKAGES:-dkms gcc-14 make kmod udev initramfs-tools zstd xz-utils libfdt1 procps util-linux e2fsprogs coreutils gzip findutils openssl fio qemu-utils iproute2 virtiofsd}"
VMSG_PKG_IMAGE_SIZE="${VMSG_PKG_IMAGE_SIZE:-6G}"

# binfmt_misc handler for arm64 ELF files, "F" (fix binary): the kernel
# opens the interpreter at registration, so it also works inside chroots.
# An enabled handler of the host's is used as it is; otherwise ours is
# registered as "vmsg-qemu-aarch64" for the image build only
# (vmsg_pkg_binfmt_release removes it): the host is left as it was found.
VMSG_PKG_BINFMT=/proc/sys/fs/binfmt_misc
VMSG_PKG_BINFMT_NAME=vmsg-qemu-aarch64
vmsg_pkg_binfmt() {
	local bm="$VMSG_PKG_BINFMT" e
	vmsg_need_cmd /usr/bin/qemu-aarch64-static qemu-user-static
	[[ -e "$bm/register" ]] || mount -t binfmt_misc binfmt_misc "$bm" ||
		vmsg_die "cannot mount binfmt_misc (needs root)"
	for e in "$bm"/*; do
		[[ -f "$e" && "${e##*/}" != "$VMSG_PKG_BINFMT_NAME" ]] || continue
		grep -q 'magic 7f454c460201010000000000000000000200b700' "$e" 2>/dev/null &&
			grep -q '^enabled' "$e" && return 0
	done
	[[ -e "$bm/$VMSG_PKG_BINFMT_NAME" ]] && return 0
	vmsg_log "registering binfmt_misc handler $VMSG_PKG_BINFMT_NAME (F flag) for the image build"
	printf '%s' ":$VMSG_PKG_BINFMT_NAME:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F" \
		>"$bm/register" || vmsg_die "binfmt_misc registration failed"
}

vmsg_pkg_binfmt_release() {
	local e="$VMSG_PKG_BINFMT/$VMSG_PKG_BINFMT_NAME"
	[[ -e "$e" ]] || return 0
	echo -1 >"$e" || vmsg_log "could not remove binfmt_misc handler $e"
}

# CPU model for qemu-user.  Debian's arm64 binaries carry pointer
# authentication instructions (branch protection), and QEMU's default "max"
# emulates PAuth at great cost: without it the image builds ~4x faster (a
# dpkg/gzip mix measured 7.4 s vs 1.9 s).  The qemu-user interpreter reads
# QEMU_CPU from the environment of every program it starts.
VMSG_PKG_QEMU_CPU="max,pauth=off"

# Run a command in the arm64 root (private mount namespace, like
# vmsg_chroot_run; nothing stays mounted on the host).
vmsg_pkg_chroot() {
	local root="$1"
	shift
	# shellcheck disable=SC2016
	QEMU_CPU="$VMSG_PKG_QEMU_CPU" unshare --mount --propagation private -- bash -euo pipefail -c '
		root="$1"; shift
		mount -t proc proc "$root/proc"
		mount -t sysfs sys "$root/sys"
		mount --rbind /dev "$root/dev"
		exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
			DEBIAN_FRONTEND=noninteractive QEMU_CPU="$QEMU_CPU" \
			PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$@"
	' vmsg-pkg-chroot "$root" "$@"
}

# Bump when the image recipe below changes (the cache key).
VMSG_PKG_ROOTFS_REV=3

_vmsg_pkg_rootfs_tag() {
	{
		echo "$VMSG_PKG_ROOTFS_REV $VMSG_PKG_PACKAGES $VMSG_PKG_KERNEL $VMSG_PKG_IMAGE_SIZE"
		cat "$(dirname "${BASH_SOURCE[0]}")/init"
	} | md5sum | cut -c1-8
}

_vmsg_pkg_rootfs_load() {
	local d="$1"
	[[ -f "$d/.complete" ]] || return 1
	# shellcheck source=/dev/null
	source "$d/info"
	VMSG_PR_DIR="$d"
	VMSG_PR_DISK="$d/root.img"
	VMSG_PR_KERNEL="$d/vmlinuz"
	VMSG_PR_INITRD="$d/initrd.img"
	export VMSG_PR_DIR VMSG_PR_DISK VMSG_PR_KERNEL VMSG_PR_INITRD VMSG_PR_KABI
}

_vmsg_pkg_rootfs_create() {
	local d="$1" root mirror abi t0
	_vmsg_pkg_rootfs_load "$d" && return 0
	t0="$(vmsg_now)"
	vmsg_need_cmd debootstrap debootstrap unshare util-linux mkfs.ext4 e2fsprogs \
		curl curl qemu-img qemu-utils
	mirror="$(vmsg_mirror)"
	# Kernel names: the cached kernel metadata of tests/lib/kernels.sh.
	vmsg_kernel_fetch "$VMSG_PKG_KERNEL" || return
	abi="$VMSG_KABI"
	[[ "$VMSG_KSUITE" == trixie-backports ]] ||
		vmsg_die "kernel $VMSG_PKG_KERNEL is not from trixie-backports"

	root="$d.tmp/root"
	mountpoint -q "$root" && umount -l "$root"
	rm -rf "$d.tmp"
	mkdir -p "$root"
	local log="$d.tmp/build.log"
	# The root is built in RAM: dpkg syncs every file it unpacks, and
	# only the finished ext4 image is kept.  The trap is this subshell's
	# (vmsg_with_lock), so a failed build does not leave it mounted.
	mount -t tmpfs -o size=8G,mode=0755 vmsg-pkg-root "$root" ||
		vmsg_die "cannot mount a tmpfs for the image root"
	# shellcheck disable=SC2064  # $root is fixed here
	trap "umount -l '$root' 2>/dev/null; vmsg_pkg_binfmt_release" EXIT
	vmsg_pkg_binfmt
	vmsg_log "pkg rootfs: debootstrap trixie arm64 (first stage)"
	# The trixie cross chroot's keyring is newer than a bookworm host's.
	local keyring=() tk
	tk="$(vmsg_chroot_dir trixie)/usr/share/keyrings/debian-archive-keyring.gpg"
	[[ -f "$tk" ]] && keyring=(--keyring="$tk")
	debootstrap --arch=arm64 --foreign --variant=minbase "${keyring[@]}" \
		trixie "$root" "$mirror" >>"$log" 2>&1 ||
		{ tail -20 "$log" >&2; vmsg_die "debootstrap (first stage) failed"; }
	vmsg_log "pkg rootfs: second stage (qemu-user)"
	QEMU_CPU="$VMSG_PKG_QEMU_CPU" chroot "$root" /debootstrap/debootstrap --second-stage >>"$log" 2>&1 ||
		{ tail -20 "$log" >&2; vmsg_die "debootstrap (second stage) failed"; }

	# Apt sources for the build only (removed below).
	cat >"$root/etc/apt/sources.list.d/build.sources" <<-EOF
		Types: deb
		URIs: $mirror
		Suites: trixie trixie-updates trixie-backports
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	rm -f "$root/etc/apt/sources.list"
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 755 "$root/usr/sbin/policy-rc.d"
	# The initrd must be able to mount a virtio-blk root.
	mkdir -p "$root/etc/initramfs-tools/conf.d"
	printf '%s\n' virtio_pci virtio_blk ext4 >>"$root/etc/initramfs-tools/modules"
	echo 'COMPRESS=zstd' >"$root/etc/initramfs-tools/conf.d/vmsg-compress"
	# dkms builds in the chroot too (when the kernel/headers are
	# installed): with no modules registered yet that is a no-op.
	vmsg_log "pkg rootfs: apt-get install kernel $abi, dkms, gcc-14 (slow under qemu-user)"
	# shellcheck disable=SC2086
	vmsg_pkg_chroot "$root" sh -c "apt-get update -qq &&
		apt-get install -y -qq --no-install-recommends $VMSG_PKG_PACKAGES &&
		apt-get install -y -qq --no-install-recommends -t trixie-backports \
			linux-image-$abi linux-headers-$abi" >>"$log" 2>&1 ||
		{ tail -30 "$log" >&2; vmsg_die "apt-get install in the rootfs failed"; }

	# Boot plumbing.
	install -m 0755 "$(dirname "${BASH_SOURCE[0]}")/init" "$root/usr/local/sbin/vmsg-pkg-init"
	echo "vmsg-pkg" >"$root/etc/hostname"
	printf '/dev/vda / ext4 rw 0 1\n' >"$root/etc/fstab"
	# No mirror host name in the image; no network in the VM anyway.
	rm -rf "$root/etc/apt/sources.list.d/build.sources" "$root/var/lib/apt/lists/"* \
		"$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb \
		"$root/usr/sbin/policy-rc.d" "$root/var/log/"*
	mkdir -p "$root/var/lib/apt/lists/partial"

	local img
	img=""
	for f in "$root/boot/vmlinuz-$abi" "$root/usr/lib/modules/$abi/vmlinuz"; do
		[[ -f "$f" ]] && img="$f" && break
	done
	[[ -n "$img" ]] || vmsg_die "no kernel image for $abi in the rootfs"
	cp "$img" "$d.tmp/vmlinuz"
	cp "$root/boot/initrd.img-$abi" "$d.tmp/initrd.img" || vmsg_die "no initrd for $abi"
	vmsg_log "pkg rootfs: ext4 image ($VMSG_PKG_IMAGE_SIZE, sparse)"
	mkfs.ext4 -q -F -L vmsgroot -d "$root" "$d.tmp/root.img" "$VMSG_PKG_IMAGE_SIZE" >>"$log" 2>&1 ||
		{ tail -20 "$log" >&2; vmsg_die "mkfs.ext4 -d failed"; }
	sed -i "s|$mirror|MIRROR|g" "$log"
	umount "$root" && rmdir "$root"
	trap - EXIT
	vmsg_pkg_binfmt_release
	cat >"$d.tmp/info" <<-EOF
		VMSG_PR_KABI='$abi'
	EOF
	rm -rf "$d"
	mv "$d.tmp" "$d"
	touch "$d/.complete"
	vmsg_log "pkg rootfs ready in $(vmsg_elapsed "$t0")s: $d"
	_vmsg_pkg_rootfs_load "$d"
}

vmsg_pkg_rootfs_ensure() {
	local d
	d="$(vmsg_cache)/pkg-rootfs/trixie-$VMSG_PKG_KERNEL-$(_vmsg_pkg_rootfs_tag)"
	mkdir -p "$(dirname "$d")"
	_vmsg_pkg_rootfs_load "$d" && return 0
	vmsg_with_lock pkg-rootfs _vmsg_pkg_rootfs_create "$d" || return 1
	_vmsg_pkg_rootfs_load "$d"
}
