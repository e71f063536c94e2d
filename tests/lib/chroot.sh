# shellcheck shell=bash source-path=SCRIPTDIR
# tests/lib/chroot.sh - Debian build chroot for cross-building arm64 modules
# against Debian's own linux-headers with exactly the kernel's compiler
# (kernel-api-drift.md §2, recipe B: no make-line overrides needed).
# With VMSG_ARCH=amd64 the chroot has the native gcc-<major> and libc6-dev
# instead (the amd64 kernels are the host's own architecture): a separate
# chroot-<suite>-amd64-<tag>, so the arm64 one stays exactly as it was.
#
# Public interface:
#   vmsg_chroot_ensure [suite] [gcc-major]
#       Create once (cached in $(vmsg_cache)/chroot-<suite>-<tag>) a minbase
#       amd64 chroot with gcc-<major>-aarch64-linux-gnu, libc6-dev-arm64-cross,
#       make, bc, kmod, file, dwarves (pahole), device-tree-compiler, python3
#       (W=1 runs scripts/kernel-doc.py on 6.16-6.18 for external modules).
#       <tag> is a hash of the package list: changing the list gives a new
#       chroot instead of rebuilding one that a parallel run may be using
#       (old ones are only ever removed by hand).  Defaults: trixie / 14.
#       Prints the chroot path.
#   vmsg_chroot_run [--kernel <version>] [--bind <dir>]... [--] <cmd> [args...]
#       Run <cmd> inside the chroot (suite picked from the kernel's compiler)
#       with the repository and every --bind dir mounted at the same path,
#       /proc and /dev available, and, with --kernel, the kernel's unpacked
#       headers + kbuild at their Debian paths so that
#       /lib/modules/<abi>/build works.  The working directory is kept when
#       it lies inside a bound dir.  Exit status is <cmd>'s.
#   vmsg_chroot_make_modules <kernel-version> <moddir> [make args...]
#       Shorthand: make -C /lib/modules/<abi>/build M=<moddir> ARCH=arm64
#       CROSS_COMPILE=aarch64-linux-gnu- modules (moddir is bound in);
#       ARCH=x86 for VMSG_ARCH=amd64.
#   vmsg_sparse
#       Prints the path of a cached sparse binary new enough for every
#       kernel (sid's; see below).  Bind its directory into the chroot and
#       pass CHECK=<path>.
#
# Mounts are made in a private mount namespace (unshare -m), so they vanish
# with the process even if it is killed; nothing is ever left mounted on the
# host and parallel runs for different kernels cannot interfere.

[[ -n "${_VMSG_CHROOT_SH:-}" ]] && return 0
_VMSG_CHROOT_SH=1
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=kernels.sh
source "$(dirname "${BASH_SOURCE[0]}")/kernels.sh"

# Packages besides the cross compiler (comma-separated, debootstrap syntax).
# libc6-dev-arm64-cross is only a Recommends of the cross gcc, and
# debootstrap installs no Recommends; libssl3t64/libelf for kbuild's host
# tools (sign-file, objtool, resolve_btfids); python3 for kernel-doc (W=1).
VMSG_CHROOT_PACKAGES="make,libc6-dev-arm64-cross,bc,kmod,file,dwarves,device-tree-compiler,xz-utils,zstd,libssl3t64,libelf1t64,python3"
# amd64 (native): libc6-dev also gives the static libc for the guest programs.
VMSG_CHROOT_PACKAGES_AMD64="make,libc6-dev,bc,kmod,file,dwarves,device-tree-compiler,xz-utils,zstd,libssl3t64,libelf1t64,python3"

# Package list (besides gcc) of the VMSG_ARCH chroot.
_vmsg_chroot_packages() {
	case "$(vmsg_arch)" in
	arm64) printf '%s\n' "$VMSG_CHROOT_PACKAGES" ;;
	amd64) printf '%s\n' "$VMSG_CHROOT_PACKAGES_AMD64" ;;
	esac
}

# The compiler package of the VMSG_ARCH chroot for gcc major <gcc>.
_vmsg_chroot_gcc_pkg() {
	case "$(vmsg_arch)" in
	arm64) printf 'gcc-%s-aarch64-linux-gnu\n' "$1" ;;
	amd64) printf 'gcc-%s\n' "$1" ;;
	esac
}

vmsg_chroot_dir() {
	local tag arch sfx=""
	arch="$(vmsg_arch)" || return 1
	[[ "$arch" == arm64 ]] || sfx="-$arch"
	tag="$(_vmsg_chroot_packages | tr -d '\n' | md5sum | cut -c1-8)"
	printf '%s/chroot-%s%s-%s\n' "$(vmsg_cache)" "${1:-trixie}" "$sfx" "$tag"
}

_vmsg_chroot_create() {
	local suite="$1" gcc="$2" root tmp keyring=() triplet
	root="$(vmsg_chroot_dir "$suite")" || return 1
	triplet="$(vmsg_triplet)"
	[[ -f "$root/.complete-gcc$gcc" ]] && return 0
	vmsg_need_cmd debootstrap debootstrap unshare util-linux flock util-linux
	if [[ ! -f "$root/.complete" ]]; then
		tmp="$root.tmp"
		rm -rf "$tmp"
		# sid may be signed with a key newer than the host's keyring; the
		# trixie chroot's keyring (updated by point releases) is newer, so
		# that chroot is made first (a different lock: no deadlock).
		if [[ "$suite" != trixie ]]; then
			local tk
			VMSG_ARCH=arm64 vmsg_chroot_ensure trixie 14 >/dev/null || return 1
			tk="$(VMSG_ARCH=arm64 vmsg_chroot_dir trixie)/usr/share/keyrings/debian-archive-keyring.gpg"
			[[ -f "$tk" ]] && keyring=(--keyring="$tk")
		fi
		local dlog
		dlog="$(vmsg_cache)/debootstrap-$(basename "$root" | sed 's/^chroot-//; s/-[0-9a-f]*$//').log"
		vmsg_log "debootstrap $suite chroot for $(vmsg_arch) (once; ~1 min)"
		debootstrap --variant=minbase "${keyring[@]}" \
			--include="$(_vmsg_chroot_gcc_pkg "$gcc"),$(_vmsg_chroot_packages)" \
			"$suite" "$tmp" "$(vmsg_mirror)" >"$dlog" 2>&1 ||
			{ tail -20 "$dlog" >&2; vmsg_log "debootstrap failed"; return 1; }
		# Keep no mirror host name anywhere: apt sources, lists, logs.
		rm -rf "$tmp/etc/apt/sources.list" "$tmp/etc/apt/sources.list.d/"* \
			"$tmp/var/lib/apt/lists/"* "$tmp/var/cache/apt/"*.bin \
			"$tmp/var/cache/apt/archives/"*.deb "$tmp/var/log/"* "$tmp/debootstrap"
		sed -i "s|$(vmsg_mirror)|MIRROR|g" "$dlog"
		mv "$tmp" "$root"
		touch "$root/.complete"
	elif [[ ! -x "$root/usr/bin/$triplet-gcc-$gcc" ]]; then
		# An existing chroot of this suite lacks this compiler: that would
		# need apt sources inside the chroot again; simplest is to rebuild.
		vmsg_log "chroot-$suite lacks gcc-$gcc; recreating"
		rm -rf "$root"
		_vmsg_chroot_create "$suite" "$gcc"
		return
	fi
	# Unversioned names for Makefiles that call aarch64-linux-gnu-gcc
	# (tools/, hello-world tests); Debian ships only the -<N> names.
	local t
	for t in gcc cpp; do
		ln -sfn "$triplet-$t-$gcc" "$root/usr/bin/$triplet-$t"
	done
	touch "$root/.complete-gcc$gcc"
}

vmsg_chroot_ensure() {
	local suite="${1:-trixie}" gcc="${2:-14}" lock
	lock="$(basename "$(vmsg_chroot_dir "$suite")")" || return 1
	lock="${lock%-*}"
	vmsg_with_lock "$lock" _vmsg_chroot_create "$suite" "$gcc" || return 1
	vmsg_chroot_dir "$suite"
}

vmsg_chroot_run() {
	local kver="" binds=() suite=trixie gcc=14 root cwd
	while (($#)); do
		case "$1" in
		--kernel) kver="$2"; shift 2 ;;
		--bind) binds+=("$(cd "$2" && pwd)"); shift 2 ;;
		--) shift; break ;;
		*) break ;;
		esac
	done
	(($#)) || { echo "vmsg_chroot_run: no command" >&2; return 2; }
	binds+=("$VMSG_REPO")
	local kmounts=() abi=""
	if [[ -n "$kver" ]]; then
		vmsg_kernel_fetch "$kver" || return
		suite="$VMSG_KCHROOT_SUITE" gcc="$VMSG_KGCC" abi="$VMSG_KABI"
		local d
		# headers-<abi>/Makefile includes ../linux-headers-*-common by
		# absolute path and scripts/ links to /usr/lib/linux-kbuild-*: keep
		# Debian's paths inside the chroot.
		for d in "$VMSG_KROOT"/usr/src/linux-headers-* "$VMSG_KROOT"/usr/lib/linux-kbuild-*; do
			# A debug kernel (tests/lib/debugkernel.sh) has no linux-kbuild.
			[[ -e "$d" ]] || continue
			kmounts+=("${d#"$VMSG_KROOT"}")
		done
	fi
	root="$(vmsg_chroot_ensure "$suite" "$gcc")" || return 1
	cwd="/"
	local b
	for b in "${binds[@]}"; do
		[[ "$PWD/" == "$b/"* ]] && cwd="$PWD"
	done
	# The mount script runs as root in a private mount namespace; arguments
	# are passed positionally so no quoting games are needed.
	# shellcheck disable=SC2016  # the script expands its own $vars
	unshare --mount --propagation private -- bash -euo pipefail -c '
		root="$1" kroot="$2" abi="$3" cwd="$4" nb="$5" nk="$6"; shift 6
		mount -t proc proc "$root/proc"
		mount --rbind /dev "$root/dev"
		for ((i = 0; i < nb; i++)); do
			mkdir -p "$root$1"; mount --bind "$1" "$root$1"; shift
		done
		for ((i = 0; i < nk; i++)); do
			mkdir -p "$root$1"; mount --bind "$kroot$1" "$root$1"; shift
		done
		if [[ -n "$abi" ]]; then
			# /lib is a symlink to usr/lib in the merged-/usr chroot.
			mkdir -p "$root/usr/lib/modules/$abi"
			ln -sfn "/usr/src/linux-headers-$abi" "$root/usr/lib/modules/$abi/build"
		fi
		cd "$root$cwd" 2>/dev/null || cwd=/
		exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
			PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
			bash -c "cd \"\$1\" && shift && exec \"\$@\"" vmsg-chroot "$cwd" "$@"
	' vmsg-mount "$root" "${VMSG_KROOT:-}" "$abi" "$cwd" "${#binds[@]}" "${#kmounts[@]}" \
		"${binds[@]}" "${kmounts[@]}" "$@"
}

vmsg_chroot_make_modules() {
	local kver="$1" moddir="$2" kb
	shift 2
	vmsg_kernel_fetch "$kver" || return
	moddir="$(cd "$moddir" && pwd)"
	mapfile -t kb < <(vmsg_kbuild_args)
	vmsg_chroot_run --kernel "$kver" --bind "$moddir" -- \
		make -j"$(nproc)" -C "/lib/modules/$VMSG_KABI/build" M="$moddir" \
		"${kb[@]}" "$@" modules
}

# sparse for C=2 checks.  Debian trixie's sparse 0.6.4 cannot parse the
# headers of kernels >= 7.0 (they use __typeof_unqual__ whenever __CHECKER__
# is defined); sid's 0.6.5~rc1 can.  Its binary links only libc (>= 2.38),
# so the one amd64 binary, unpacked into the cache like busybox, runs in
# both the trixie and the sid chroot.  VMSG_SPARSE_SUITE picks the suite.
_vmsg_sparse_locked() {
	local dir suite idx line ver rel sha deb
	dir="$(vmsg_cache)/sparse"
	[[ -x "$dir/bin/sparse" ]] && return 0
	suite="${VMSG_SPARSE_SUITE:-sid}"
	idx="$(vmsg_index "$suite" amd64)" || return 1
	line="$(_vmsg_index_lookup "$idx" sparse)"
	if [[ -z "$line" ]]; then
		# A filtered index cached before sparse was kept in it.
		idx="$(vmsg_index "$suite" amd64 force)" || return 1
		line="$(_vmsg_index_lookup "$idx" sparse)"
	fi
	[[ -n "$line" ]] || { vmsg_log "sparse not in the $suite index"; return 1; }
	IFS=$'\t' read -r ver rel sha _ _ <<<"$line"
	deb="$(_vmsg_fetch_deb "$rel" "$sha")" || return 1
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp/bin"
	dpkg-deb -x "$deb" "$dir.tmp/x" || return 1
	mv "$dir.tmp/x/usr/bin/sparse" "$dir.tmp/bin/sparse"
	echo "$ver" >"$dir.tmp/version"
	rm -rf "$dir.tmp/x" "$dir"
	rm -f "$deb"
	mv "$dir.tmp" "$dir"
}

vmsg_sparse() {
	vmsg_need_cmd curl curl xz xz-utils dpkg-deb dpkg
	vmsg_with_lock sparse _vmsg_sparse_locked || return 1
	printf '%s/sparse/bin/sparse\n' "$(vmsg_cache)"
}
