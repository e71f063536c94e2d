# shellcheck shell=bash source-path=SCRIPTDIR
# tests/lib/build.sh - out-of-tree builds for tests/check.sh and
# tests/demo.sh: every build happens in a private clean copy of the sources,
# so parallel builds for different kernels (and the developer's own in-tree
# objects) never mix.
#
# Public interface:
#   vmsg_copy_module_sources <dst>
#       Makefile, Kbuild, VERSION, src/, include/, compat/ without build
#       outputs (objects, .ko, compat/generated) into <dst>.
#   vmsg_copy_tool_sources <dst>
#       tools/, include/, tests/guest/ without build outputs into <dst>.
#   vmsg_build_modules [--bind <d>]... <kernel-version> <dir> [make args...]
#       make -C <dir> KDIR=/lib/modules/<abi>/build ARCH=arm64
#       CROSS_COMPILE=aarch64-linux-gnu- (amd64: ARCH=x86) [args] in the
#       kernel's chroot, with
#       make -j$VMSG_MAKEJ (default: all cores); <dir> and every --bind dir
#       are visible at the same path.  Output to stdout/stderr.
#   vmsg_collect_modules <dir> <out>
#       Copy <dir>/*.ko whose vermagic is $VMSG_KABI into <out>; prints the
#       names of the others and fails if there are any.
#   vmsg_build_backend <dir> <out>
#       Static arm64 virtio-msg-backend from <dir>/tools (trixie chroot)
#       into <out>/.
#   vmsg_build_vmsg_test <dir> <out>
#       Static arm64 <out>/vmsg-test from <dir>/tests/guest/vmsg-test.c and
#       <out>/vmsg-peer from tests/guest/vmsg-peer.c with the backend's
#       device code (-Wall -Wextra).
#
# Everything is for VMSG_ARCH (arm64 by default; amd64: native gcc in the
# trixie amd64 chroot, static glibc).

[[ -n "${_VMSG_BUILD_SH:-}" ]] && return 0
_VMSG_BUILD_SH=1
# shellcheck source=chroot.sh
source "$(dirname "${BASH_SOURCE[0]}")/chroot.sh"

_vmsg_copy_tree() {
	local dst="$1"
	shift
	mkdir -p "$dst"
	tar -C "$VMSG_REPO" --exclude='*.o' --exclude='*.ko' --exclude='*.mod' \
		--exclude='*.mod.c' --exclude='.*.cmd' --exclude='.*.d' --exclude='*.d' \
		--exclude='*.symvers' --exclude='modules.order' --exclude='*.so' \
		--exclude='compat/generated' --exclude='probes.log' --exclude='probes.raw' \
		--exclude='.build-config' --exclude='tools/virtio-msg-backend' --exclude='tools/virtio-msg-vhost-user' \
		--exclude='tools/tests/test_backend' --exclude='tools/tests/test_backend-valgrind' \
		--exclude='tools/tests/test_vhost_user' \
		-cf - "$@" | tar -C "$dst" -xf -
}

vmsg_copy_module_sources() { _vmsg_copy_tree "$1" Makefile Kbuild VERSION src include compat; }

vmsg_copy_tool_sources() {
	local d=() p
	for p in tools include tests/guest; do
		[[ -e "$VMSG_REPO/$p" ]] && d+=("$p")
	done
	_vmsg_copy_tree "$1" "${d[@]}"
}

vmsg_build_modules() {
	local binds=() kver dir kb
	while [[ "${1:-}" == --bind ]]; do
		binds+=(--bind "$2")
		shift 2
	done
	kver="$1" dir="$2"
	shift 2
	vmsg_kernel_fetch "$kver" || return
	dir="$(cd "$dir" && pwd)"
	mapfile -t kb < <(vmsg_kbuild_args)
	(cd "$dir" && vmsg_chroot_run --kernel "$kver" --bind "$dir" "${binds[@]}" -- \
		make -j"${VMSG_MAKEJ:-$(nproc)}" -C "$dir" KDIR="/lib/modules/$VMSG_KABI/build" \
		"${kb[@]}" "$@")
}

vmsg_collect_modules() {
	local dir="$1" out="$2" ko vm bad=0
	vmsg_need_cmd modinfo kmod
	mkdir -p "$out"
	for ko in "$dir"/*.ko; do
		[[ -f "$ko" ]] || continue
		vm="$(modinfo -F vermagic "$ko" 2>/dev/null || true)"
		if [[ "$vm" != "$VMSG_KABI "* ]]; then
			printf '%s (vermagic %s)\n' "$(basename "$ko")" "${vm%% *}"
			bad=1
			continue
		fi
		cp "$ko" "$out/"
	done
	return "$bad"
}

vmsg_build_backend() {
	local dir out triplet
	dir="$(cd "$1" && pwd)"
	out="$2"
	triplet="$(vmsg_triplet)" || return 1
	[[ -f "$dir/tools/Makefile" ]] || { echo "no tools/Makefile" >&2; return 1; }
	mkdir -p "$out"
	(cd "$dir" && vmsg_chroot_run --bind "$dir" -- make -j"${VMSG_MAKEJ:-$(nproc)}" \
		-C "$dir/tools" CC="$triplet-gcc" STATIC=1) || return 1
	vmsg_need_cmd file file
	file -b "$dir/tools/virtio-msg-backend" | grep -q "$(vmsg_file_arch_re).*statically" ||
		{ echo "tools/virtio-msg-backend is not a static $(vmsg_arch) executable" >&2; return 1; }
	cp "$dir/tools/virtio-msg-backend" "$out/"
}

vmsg_build_vmsg_test() {
	local dir out
	dir="$(cd "$1" && pwd)"
	out="$(mkdir -p "$2" && cd "$2" && pwd)"
	[[ -f "$dir/tests/guest/vmsg-test.c" ]] || { echo "no tests/guest/vmsg-test.c" >&2; return 1; }
	(cd "$dir" && vmsg_chroot_run --bind "$dir" --bind "$out" -- "$(vmsg_triplet)-gcc" -static \
		-O2 -g -Wall -Wextra -I include/uapi -o "$out/vmsg-test" \
		tests/guest/vmsg-test.c -lpthread) || return
	(cd "$dir" && vmsg_chroot_run --bind "$dir" --bind "$out" -- "$(vmsg_triplet)-gcc" -static \
		-O2 -g -Wall -Wextra -D_GNU_SOURCE -I include/uapi -I tools/backend \
		-o "$out/vmsg-peer" tests/guest/vmsg-peer.c tools/backend/codec.c \
		tools/backend/log.c tools/backend/transport.c tools/backend/virtqueue.c \
		tools/backend/dev_rng.c -lpthread) || return
	(cd "$dir" && vmsg_chroot_run --bind "$dir" --bind "$out" -- "$(vmsg_triplet)-gcc" -static \
		-O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -I include/uapi -I tools/backend \
		-o "$out/vmsg-hostile" tests/guest/hostile/*.c tools/backend/codec.c \
		tools/backend/log.c tools/backend/transport.c tools/backend/virtqueue.c \
		tools/backend/dev_rng.c tools/backend/dev_blk.c -lpthread)
}
