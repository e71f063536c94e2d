# shellcheck shell=bash source-path=SCRIPTDIR
# tests/lib/debugkernel.sh - the debug kernel (issue #12): Debian's own
# linux-source package, cross-compiled for arm64 with a small config for
# QEMU virt plus KASAN, UBSAN, KFENCE, lockdep, DEBUG_ATOMIC_SLEEP,
# DEBUG_OBJECTS, DMA-API debugging, kmemleak, KCOV, fault injection,
# ARM_FFA_TRANSPORT=m and DMA_RESTRICTED_POOL=y
# (tests/debugkernel/debug.config).
#
# Public interface:
#   vmsg_debugkernel_dir <version>    cache dir of the debug build of
#       <version> (e.g. 7.3.4) for the current config fragment and recipe:
#       $(vmsg_cache)/debugkernel/<hash>.  Prints it; builds nothing.
#   vmsg_debugkernel_build <version>  build it unless cached (locked; cold
#       ~1 h on 2 busy cores under nice -n 19).  The result has the layout of
#       a fetched Debian kernel (tests/lib/kernels.sh): info, root/boot/
#       vmlinuz-<abi>, root/lib/modules/<abi>, root/usr/src/linux-headers-
#       <abi> (the whole build tree: out-of-tree modules build against it),
#       so vmsg_kernel_fetch/vmsg_kernel_load accept "<version>-debug" and
#       every tool (vm-run, fetch-kernel, the chroot) works unchanged.
#       Also writes build.log, build-seconds and config-check.txt there.
#
# Tunables: VMSG_DEBUGKERNEL_CONFIG (fragment; default the repo's),
#   VMSG_DEBUGKERNEL_JOBS (make -j; default nproc), VMSG_DEBUGKERNEL_NICE
#   (default 19: other engineers' VM boots keep priority).

[[ -n "${_VMSG_DEBUGKERNEL_SH:-}" ]] && return 0
_VMSG_DEBUGKERNEL_SH=1
_VMSG_DK_LIBDIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$_VMSG_DK_LIBDIR/common.sh"

# Supported debug-kernel versions: upstream version -> Debian version of the
# linux-source-<x.y> package (trixie-backports; dropped from the index once
# superseded but kept in pool/main/l/linux/, found by probing like the
# kernels in kernels.sh).
declare -A VMSG_DEBUGKERNEL_DEBVER=([7.3.4]="7.3.4-1~bpo13+1")
VMSG_DEBUGKERNEL_SUITE=trixie-backports
# Bumped when the build recipe below changes in a way that changes the result.
VMSG_DEBUGKERNEL_RECIPE=1

# A kernel build needs a native gcc, flex and bison besides the cross
# compiler: its own chroot (the package list is part of the chroot's name,
# so the module-building chroot stays untouched).
VMSG_DEBUGKERNEL_EXTRA_PACKAGES="gcc,libc6-dev,flex,bison,perl,libelf-dev,libssl-dev,cpio"

_vmsg_dk_config() {
	printf '%s\n' "${VMSG_DEBUGKERNEL_CONFIG:-$VMSG_REPO/tests/debugkernel/debug.config}"
}

vmsg_debugkernel_dir() {
	local ver="$1" debver hash
	debver="${VMSG_DEBUGKERNEL_DEBVER[$ver]:-}"
	[[ -n "$debver" ]] || { echo "no debug kernel recipe for '$ver' (have: ${!VMSG_DEBUGKERNEL_DEBVER[*]})" >&2; return 1; }
	hash="$( {
		printf 'linux-source %s recipe %s\n' "$debver" "$VMSG_DEBUGKERNEL_RECIPE"
		cat "$(_vmsg_dk_config)"
	} | sha256sum | cut -c1-16)"
	printf '%s/debugkernel/%s-%s\n' "$(vmsg_cache)" "$ver" "$hash"
}

# Download linux-source-<x.y>_<debver>_all.deb (index first, else pool probe).
# Prints the local path.
_vmsg_dk_source_deb() {
	local ver="$1" debver="$2" pkg idx line rel sha dest
	pkg="linux-source-${ver%.*}"
	# kernels.sh sources this file: not followed (shellcheck -x would loop).
	# shellcheck source=/dev/null
	source "$_VMSG_DK_LIBDIR/kernels.sh"
	idx="$(vmsg_index "$VMSG_DEBUGKERNEL_SUITE" all)" || return 1
	line="$(_vmsg_index_lookup "$idx" "$pkg" "$debver")"
	if [[ -n "$line" ]]; then
		IFS=$'\t' read -r _ rel sha _ _ <<<"$line"
	else
		rel="pool/main/l/linux/${pkg}_${debver}_all.deb" sha=-
		vmsg_url_exists "$(vmsg_mirror)/$rel" ||
			{ echo "SKIP: $pkg $debver not available from the mirror" >&2; return 77; }
	fi
	dest="$(vmsg_cache)/debugkernel/src/$(basename "$rel")"
	if [[ ! -s "$dest" ]]; then
		vmsg_log "downloading $(basename "$rel") (~170 MB)"
		vmsg_download "$(vmsg_mirror)/$rel" "$dest" || { vmsg_log "download failed: $rel"; return 1; }
		if [[ "$sha" != - ]] && ! echo "$sha  $dest" | sha256sum -c --quiet - >/dev/null 2>&1; then
			rm -f "$dest"
			vmsg_log "checksum mismatch: $rel"
			return 1
		fi
	fi
	dpkg-deb --info "$dest" >/dev/null 2>&1 || { rm -f "$dest"; vmsg_log "corrupt deb: $rel"; return 1; }
	printf '%s\n' "$dest"
}

# Run a command in the kernel-building chroot (same binds as vmsg_chroot_run).
_vmsg_dk_chroot_run() {
	# chroot.sh sources kernels.sh, which sources this file: not followed.
	# shellcheck source=/dev/null
	source "$_VMSG_DK_LIBDIR/chroot.sh"
	local VMSG_CHROOT_PACKAGES="$VMSG_CHROOT_PACKAGES,$VMSG_DEBUGKERNEL_EXTRA_PACKAGES"
	vmsg_chroot_run "$@"
}

# Check that every line of the fragment survived the merge: Kconfig silently
# drops options whose dependencies are missing.  Writes the comparison to
# $2 and fails on any difference.
_vmsg_dk_config_check() {
	local frag="$1" out="$2" dotconfig="$3" line sym bad=0
	: >"$out"
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			if grep -qxF -- "$line" "$dotconfig"; then
				echo "ok   $line" >>"$out"
			else
				sym="${line%%=*}"
				echo "DIFF $line -> $(grep -E "^(# )?${sym}[= ]" "$dotconfig" || echo "absent")" >>"$out"
				bad=1
			fi ;;
		"# CONFIG_"*" is not set")
			sym="${line#\# }"
			sym="${sym%% *}"
			if grep -qE "^$sym=" "$dotconfig"; then
				echo "DIFF $line -> $(grep -E "^$sym=" "$dotconfig")" >>"$out"
				bad=1
			else
				echo "ok   $line" >>"$out"
			fi ;;
		esac
	done <"$frag"
	((bad == 0)) || { grep '^DIFF' "$out" >&2; return 1; }
}

_vmsg_dk_build_locked() {
	local ver="$1" kdir debver deb tmp tree abi frag t0 secs rc=0
	kdir="$(vmsg_debugkernel_dir "$ver")" || return 1
	[[ -f "$kdir/.complete" ]] && return 0
	debver="${VMSG_DEBUGKERNEL_DEBVER[$ver]}"
	frag="$(_vmsg_dk_config)"
	vmsg_need_cmd curl curl xz xz-utils dpkg-deb dpkg
	deb="$(_vmsg_dk_source_deb "$ver" "$debver")" || return
	t0="$(date +%s)"
	tmp="$kdir.tmp"
	rm -rf "$tmp"
	# The tree's final name is decided by the kernel release, known only
	# after configuring: build under a neutral name, rename when done.
	tree="$tmp/root/usr/src/linux-build"
	mkdir -p "$tree"
	vmsg_log "debug kernel $ver: unpacking linux-source-${ver%.*} $debver"
	dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/linux-source-${ver%.*}.tar.xz" |
		xz -dc -T0 | tar -x -C "$tree" --strip-components=1 ||
		{ vmsg_log "unpacking $deb failed"; return 1; }
	cp "$frag" "$tmp/debug.config"
	local jobs="${VMSG_DEBUGKERNEL_JOBS:-$(nproc)}" nicelvl="${VMSG_DEBUGKERNEL_NICE:-19}"
	vmsg_log "debug kernel $ver: configuring and compiling (make -j$jobs, nice -n $nicelvl; log $tmp/build.log)"
	# ARCH/CROSS_COMPILE in the environment: merge_config.sh runs make
	# itself and Kconfig probes the (cross) compiler's features.
	# shellcheck disable=SC2016  # expanded inside the chroot
	_vmsg_dk_chroot_run --bind "$tmp" -- nice -n "$nicelvl" \
		env ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- bash -euo pipefail -c '
			cd "$1"
			scripts/kconfig/merge_config.sh -n "$2"
			make -s kernelrelease >"$3/kernelrelease"
			make -j"$4" Image modules
			make -s modules_install INSTALL_MOD_PATH="$3/root"
		' dk-build "$tree" "$tmp/debug.config" "$tmp" "$jobs" >"$tmp/build.log" 2>&1 || rc=$?
	if ((rc)); then
		tail -40 "$tmp/build.log" >&2
		vmsg_log "debug kernel $ver: build failed (log: $tmp/build.log)"
		return 1
	fi
	_vmsg_dk_config_check "$tmp/debug.config" "$tmp/config-check.txt" "$tree/.config" ||
		{ vmsg_log "debug kernel $ver: the fragment did not survive the merge (see $tmp/config-check.txt)"; return 1; }
	abi="$(cat "$tmp/kernelrelease")"
	[[ -d "$tmp/root/lib/modules/$abi/kernel" ]] || { vmsg_log "no modules installed for $abi"; return 1; }
	mkdir -p "$tmp/root/boot"
	cp "$tree/arch/arm64/boot/Image" "$tmp/root/boot/vmlinuz-$abi"
	# The build/source links of modules_install point at the build path;
	# the chroot maps /lib/modules/<abi>/build itself.
	rm -f "$tmp/root/lib/modules/$abi/build" "$tmp/root/lib/modules/$abi/source"
	mv "$tree" "$tmp/root/usr/src/linux-headers-$abi"
	local gcc
	gcc="$(sed -n 's/^CONFIG_GCC_VERSION=\([0-9]*\)$/\1/p' "$tmp/root/usr/src/linux-headers-$abi/.config")"
	secs=$(($(date +%s) - t0))
	echo "$secs" >"$tmp/build-seconds"
	cat >"$tmp/info" <<-EOF
		VMSG_KABI='$abi'
		VMSG_KDEBVER='$debver'
		VMSG_KSUITE='$VMSG_DEBUGKERNEL_SUITE'
		VMSG_KMODREL='lib/modules/$abi'
		VMSG_KIMAGEREL='boot/vmlinuz-$abi'
		VMSG_KGCC='$((gcc / 10000))'
		VMSG_KCHROOT_SUITE='trixie'
	EOF
	rm -rf "$kdir"
	mv "$tmp" "$kdir"
	touch "$kdir/.complete"
	vmsg_log "debug kernel $ver ($abi) built in ${secs}s: $kdir"
}

vmsg_debugkernel_build() {
	local ver="$1"
	[[ -n "${VMSG_DEBUGKERNEL_DEBVER[$ver]:-}" ]] ||
		{ echo "no debug kernel recipe for '$ver' (have: ${!VMSG_DEBUGKERNEL_DEBVER[*]})" >&2; return 1; }
	vmsg_with_lock "debugkernel-$ver" _vmsg_dk_build_locked "$ver"
}
