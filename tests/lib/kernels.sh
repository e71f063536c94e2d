# shellcheck shell=bash source-path=SCRIPTDIR
# tests/lib/kernels.sh - fetch and unpack Debian arm64 (or, with
# VMSG_ARCH=amd64, amd64) distro kernels.
#
# Public interface (source this file, then call):
#   vmsg_kernel_fetch <version>   e.g. 6.16.12, 7.3.4, 7.2.13 (sid)
#       Downloads (cached) the kernel Image, its modules, linux-headers
#       (arch + common) and the amd64 linux-kbuild, unpacks them once into
#       $(vmsg_cache)/kernels/<version>/root (amd64: kernels/<version>-amd64)
#       and sets the variables below.
#       Returns 77 (VMSG_EXIT_SKIP) and prints "SKIP: ..." when the mirror
#       does not have the version; returns 1 on other errors.
#   vmsg_kernel_load <version>    same variables from an already fetched
#       kernel, without any network access; non-zero if not fetched.
#   <version>-debug (e.g. 7.3.4-debug) is the debug kernel built from
#       Debian's linux-source by tests/lib/debugkernel.sh (fetch builds it,
#       ~1 h cold); same variables, same layout.
#
# Variables set by both:
#   VMSG_KVER     upstream version (6.16.12)
#   VMSG_KABI     kernel release / module dir name (6.16.12+deb13-arm64)
#   VMSG_KARCH    Debian architecture of the kernel (arm64, amd64)
#   VMSG_KDEBVER  Debian package version (6.16.12-1~bpo13+1)
#   VMSG_KSUITE   suite it came from (trixie-backports, sid)
#   VMSG_KDIR     per-kernel cache dir; VMSG_KROOT = $VMSG_KDIR/root
#   VMSG_KIMAGE   the kernel image QEMU boots (uncompressed arm64 Image,
#                 amd64 bzImage)
#   VMSG_KMODDIR  unpacked modules tree (.../modules/<abi>)
#   VMSG_KCONFIG  the kernel .config
#   VMSG_KHDRS    root/usr/src/linux-headers-<abi> (what .../build points to)
#   VMSG_KGCC     major version of the gcc that built the kernel (14, 16...)
#   VMSG_KCHROOT_SUITE  Debian suite whose (cross) gcc matches (trixie, sid)
#
# The architecture is VMSG_ARCH (common.sh: vmsg_arch), arm64 by default.
#
# Tunables: VMSG_KERNEL_SUITES (default "trixie-backports sid"),
#   VMSG_INDEX_MAX_AGE seconds a cached Packages index is trusted (86400),
#   VMSG_KEEP_DEBS=1 keeps the downloaded .debs after unpacking.

[[ -n "${_VMSG_KERNELS_SH:-}" ]] && return 0
_VMSG_KERNELS_SH=1
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=debugkernel.sh
source "$(dirname "${BASH_SOURCE[0]}")/debugkernel.sh"

# Fetch dists/<suite>/main/binary-<arch>/Packages.xz and keep only the
# paragraphs we may ever need (kernel packages, busybox, sparse).  The sid
# index is ~65 MB unpacked; the filtered copy is a few hundred KB and parses
# instantly.
# Prints the path of the filtered index.  $3 = "force" re-downloads.
vmsg_index() {
	local suite="$1" arch="$2" force="${3:-}"
	local dir out age
	dir="$(vmsg_cache)/indexes"
	out="$dir/${suite}_${arch}.pkgs"
	if [[ -s "$out" && "$force" != force ]]; then
		age=$(($(date +%s) - $(stat -c %Y "$out")))
		if ((age < ${VMSG_INDEX_MAX_AGE:-86400})); then
			printf '%s\n' "$out"
			return 0
		fi
	fi
	vmsg_log "fetching $suite/$arch Packages index"
	local xz="$dir/${suite}_${arch}.Packages.xz"
	vmsg_download "$(vmsg_mirror)/dists/$suite/main/binary-$arch/Packages.xz" "$xz" ||
		{ vmsg_log "no Packages index for $suite/$arch"; return 1; }
	xz -dc "$xz" | awk 'BEGIN { RS = ""; ORS = "\n\n" }
		/^Package: (linux-(image|binary|binary-unsigned|base|modules|headers|kbuild|source)-[0-9]|busybox-static\n|sparse\n)/' \
		>"$out.tmp" && mv -f "$out.tmp" "$out"
	rm -f "$xz"
	printf '%s\n' "$out"
}

# Look a package up in a filtered index.  Prints one tab-separated line
#   Version Filename SHA256 Size Depends
# for the paragraph of <pkg> (with Version == <version> if given).
_vmsg_index_lookup() {
	local idx="$1" pkg="$2" ver="${3:-}"
	awk -v p="$pkg" -v v="$ver" 'BEGIN { RS = ""; FS = "\n" }
		{
			if (index($0, "Package: " p "\n") != 1) next
			V = F = S = Z = D = ""
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^Version: /)  V = substr($i, 10)
				if ($i ~ /^Filename: /) F = substr($i, 11)
				if ($i ~ /^SHA256: /)   S = substr($i, 9)
				if ($i ~ /^Size: /)     Z = substr($i, 7)
				if ($i ~ /^Depends: /)  D = substr($i, 10)
			}
			if (v != "" && V != v) next
			printf "%s\t%s\t%s\t%s\t%s\n", V, F, S, Z, D
			exit
		}' "$idx"
}

# Locate one .deb: first in the given index, else (older ABIs are dropped from
# the index but stay in the pool for a while) by probing the pool path that
# Debian's naming scheme gives.  Appends "relpath<TAB>sha256|-" to _VMSG_DEBS.
_vmsg_locate_deb() {
	local idx="$1" pkg="$2" ver="$3" arch="$4" line rel
	line="$(_vmsg_index_lookup "$idx" "$pkg" "$ver")"
	if [[ -n "$line" ]]; then
		IFS=$'\t' read -r _ rel sha _ _ <<<"$line"
		_VMSG_DEBS+=("$rel"$'\t'"$sha")
		return 0
	fi
	rel="pool/main/l/linux/${pkg}_${ver}_${arch}.deb"
	if vmsg_url_exists "$(vmsg_mirror)/$rel"; then
		_VMSG_DEBS+=("$rel"$'\t'"-")
		return 0
	fi
	vmsg_log "not found: $pkg $ver ($arch)"
	return 1
}

# Work out ABI, suite and the list of .debs for <version>.  Sets VMSG_KABI,
# VMSG_KDEBVER, VMSG_KSUITE and _VMSG_DEBS; returns 77 when unavailable.
_vmsg_kernel_resolve() {
	local ver="$1" suite idx idx64 pkg line deps abi debver base arch
	arch="$(vmsg_arch)" || return 1
	local re="^Package: linux-image-${ver//./\\.}\\+deb[0-9]+-$arch\$"
	local neterr=0
	_VMSG_DEBS=()
	for suite in ${VMSG_KERNEL_SUITES:-trixie-backports sid}; do
		idx="$(vmsg_index "$suite" "$arch")" || { neterr=1; continue; }
		pkg="$(grep -E -m1 "$re" "$idx" | cut -d' ' -f2)"
		if [[ -z "$pkg" ]]; then
			# A stale cached index may predate the upload: refresh once.
			idx="$(vmsg_index "$suite" "$arch" force)" || { neterr=1; continue; }
			pkg="$(grep -E -m1 "$re" "$idx" | cut -d' ' -f2)"
		fi
		[[ -n "$pkg" ]] || continue
		abi="${pkg#linux-image-}"            # 6.16.12+deb13-arm64
		base="${abi%-"$arch"}"               # 6.16.12+deb13
		line="$(_vmsg_index_lookup "$idx" "$pkg")"
		IFS=$'\t' read -r debver _ _ _ deps <<<"$line"
		# " a b c ": names only, so membership tests are exact word matches.
		deps=" $(sed 's/([^)]*)//g; s/[,|]/ /g; s/  */ /g' <<<"$deps") "
		idx64="$(vmsg_index "$suite" amd64)" || return 1

		# Image.  From 6.19 linux-image-* is a meta package depending on
		# linux-binary-* (Image), linux-modules-* and linux-base-*; before
		# that linux-image-* itself carries Image and modules.
		if [[ "$deps" == *" linux-binary-$abi "* ]]; then
			_vmsg_locate_deb "$idx" "linux-binary-$abi" "$debver" "$arch" ||
				_vmsg_locate_deb "$idx" "linux-binary-unsigned-$abi" "$debver" "$arch" || return 77
		else
			_vmsg_locate_deb "$idx" "$pkg" "$debver" "$arch" || return 77
		fi
		if [[ "$deps" == *" linux-modules-$abi "* ]]; then
			_vmsg_locate_deb "$idx" "linux-modules-$abi" "$debver" "$arch" || return 77
		fi
		# linux-base-* (config, System.map) exists from 6.18; optional.
		if [[ "$deps" == *" linux-base-$abi "* ]]; then
			_vmsg_locate_deb "$idx" "linux-base-$abi" "$debver" "$arch" || true
		fi
		_vmsg_locate_deb "$idx" "linux-headers-$abi" "$debver" "$arch" || return 77
		_vmsg_locate_deb "$idx" "linux-headers-$base-common" "$debver" all || return 77
		# kbuild host tools run in the amd64 chroot, so take the amd64 build.
		_vmsg_locate_deb "$idx64" "linux-kbuild-$base" "$debver" amd64 || return 77
		VMSG_KABI="$abi" VMSG_KDEBVER="$debver" VMSG_KSUITE="$suite" VMSG_KARCH="$arch"
		return 0
	done
	# "Not available" only when every index could be read; a network or
	# mirror failure must not turn into a silent SKIP.
	((neterr == 0)) || { vmsg_log "could not read all Packages indexes"; return 1; }
	return 77
}

# Download one located deb into the cache (verified when the index gave a
# checksum, structurally checked otherwise).  Prints the local path.
_vmsg_fetch_deb() {
	local rel="$1" sha="$2" dest
	dest="$(vmsg_cache)/debs/$(basename "$rel")"
	if [[ ! -s "$dest" ]]; then
		vmsg_log "downloading $(basename "$rel")"
		vmsg_download "$(vmsg_mirror)/$rel" "$dest" || { vmsg_log "download failed: $rel"; return 1; }
		if [[ "$sha" != - ]] && ! echo "$sha  $dest" | sha256sum -c --quiet - >/dev/null 2>&1; then
			rm -f "$dest"
			vmsg_log "checksum mismatch: $rel"
			return 1
		fi
		dpkg-deb --info "$dest" >/dev/null 2>&1 || { rm -f "$dest"; vmsg_log "corrupt deb: $rel"; return 1; }
	fi
	printf '%s\n' "$dest"
}

# Cache dir of one kernel: kernels/<version> for arm64 (as it always was),
# kernels/<version>-<arch> for the others.
vmsg_kernel_cachedir() {
	local arch
	arch="$(vmsg_arch)" || return 1
	if [[ "$arch" == arm64 ]]; then
		printf '%s/kernels/%s\n' "$(vmsg_cache)" "$1"
	else
		printf '%s/kernels/%s-%s\n' "$(vmsg_cache)" "$1" "$arch"
	fi
}

# Set the VMSG_K* variables from a fetched kernel's info file.
vmsg_kernel_load() {
	local ver="$1" kdir
	if [[ "$ver" == *-debug ]]; then
		kdir="$(vmsg_debugkernel_dir "${ver%-debug}")" || return 1
	else
		kdir="$(vmsg_kernel_cachedir "$ver")" || return 1
	fi
	[[ -f "$kdir/.complete" && -f "$kdir/info" ]] || return 1
	unset VMSG_KARCH
	# shellcheck source=/dev/null
	source "$kdir/info"
	# Info files written before amd64 support have no VMSG_KARCH.
	VMSG_KARCH="${VMSG_KARCH:-arm64}"
	[[ "$VMSG_KARCH" == "$(vmsg_arch)" ]] || return 1
	VMSG_KVER="$ver"
	VMSG_KDIR="$kdir"
	VMSG_KROOT="$kdir/root"
	VMSG_KIMAGE="$VMSG_KROOT/$VMSG_KIMAGEREL"
	VMSG_KMODDIR="$VMSG_KROOT/$VMSG_KMODREL"
	VMSG_KHDRS="$VMSG_KROOT/usr/src/linux-headers-$VMSG_KABI"
	VMSG_KCONFIG="$VMSG_KHDRS/.config"
	export VMSG_KVER VMSG_KABI VMSG_KARCH VMSG_KDEBVER VMSG_KSUITE VMSG_KDIR VMSG_KROOT \
		VMSG_KIMAGE VMSG_KMODDIR VMSG_KHDRS VMSG_KCONFIG VMSG_KGCC VMSG_KCHROOT_SUITE
}

_vmsg_kernel_fetch_locked() {
	local ver="$1" kdir rc=0 d rel sha deb gcc
	kdir="$(vmsg_kernel_cachedir "$ver")" || return 1
	[[ -f "$kdir/.complete" ]] && return 0
	vmsg_need_cmd curl curl xz xz-utils dpkg-deb dpkg
	_vmsg_kernel_resolve "$ver" || rc=$?
	if ((rc)); then
		((rc == 77)) && echo "SKIP: kernel $ver ($(vmsg_arch)) not available from the mirror" >&2
		return "$rc"
	fi
	vmsg_log "kernel $ver: ABI $VMSG_KABI, $VMSG_KDEBVER from $VMSG_KSUITE"
	rm -rf "$kdir"
	mkdir -p "$kdir/root.tmp"
	for d in "${_VMSG_DEBS[@]}"; do
		IFS=$'\t' read -r rel sha <<<"$d"
		deb="$(_vmsg_fetch_deb "$rel" "$sha")" || return 1
		basename "$deb" >>"$kdir/debs"
		dpkg-deb -x "$deb" "$kdir/root.tmp" || return 1
	done
	# trixie-era packages may ship modules under /usr/lib (merged /usr).
	if [[ -d "$kdir/root.tmp/lib/modules/$VMSG_KABI/kernel" ]]; then
		rel="lib/modules/$VMSG_KABI"
	elif [[ -d "$kdir/root.tmp/usr/lib/modules/$VMSG_KABI/kernel" ]]; then
		rel="usr/lib/modules/$VMSG_KABI"
	else
		vmsg_log "no modules tree in the $VMSG_KABI packages"
		return 1
	fi
	# Image location moved with the 6.19 package split (/boot → modules dir).
	local img=""
	for d in "boot/vmlinuz-$VMSG_KABI" "$rel/vmlinuz"; do
		[[ -f "$kdir/root.tmp/$d" ]] && img="$d" && break
	done
	[[ -n "$img" ]] || { vmsg_log "no kernel image in the $VMSG_KABI packages"; return 1; }
	# The compiler that built the kernel decides which chroot builds modules
	# for it (Debian 13 kernels: gcc-14 → trixie; Debian 14 ones: newer → sid).
	gcc="$(sed -n 's/^CONFIG_GCC_VERSION=\([0-9]*\)$/\1/p' \
		"$kdir/root.tmp/usr/src/linux-headers-$VMSG_KABI/.config")"
	gcc=$((gcc / 10000))
	local csuite=trixie
	[[ "$VMSG_KABI" == *+deb13-* ]] || csuite=sid
	cat >"$kdir/info" <<-EOF
		VMSG_KABI='$VMSG_KABI'
		VMSG_KARCH='$VMSG_KARCH'
		VMSG_KDEBVER='$VMSG_KDEBVER'
		VMSG_KSUITE='$VMSG_KSUITE'
		VMSG_KMODREL='$rel'
		VMSG_KIMAGEREL='$img'
		VMSG_KGCC='$gcc'
		VMSG_KCHROOT_SUITE='$csuite'
	EOF
	mv "$kdir/root.tmp" "$kdir/root"
	touch "$kdir/.complete"
	# The unpacked tree is the cache; the ~100-200 MB of .debs would only
	# double the disk use (VMSG_KEEP_DEBS=1 keeps them).
	if [[ "${VMSG_KEEP_DEBS:-0}" != 1 ]]; then
		while IFS= read -r d; do rm -f "$(vmsg_cache)/debs/$d"; done <"$kdir/debs"
	fi
}

vmsg_kernel_fetch() {
	local ver="$1" rc=0 lock=""
	[[ "$ver" =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?(-debug)?$ ]] || { echo "bad kernel version '$ver'" >&2; return 1; }
	if [[ "$ver" == *-debug ]] && ! vmsg_kernel_load "$ver"; then
		vmsg_debugkernel_build "${ver%-debug}" || return
		vmsg_kernel_load "$ver" || return 1
	elif ! vmsg_kernel_load "$ver"; then
		[[ "$(vmsg_arch)" == arm64 ]] || lock="-$(vmsg_arch)"
		vmsg_with_lock "kernel-$ver$lock" _vmsg_kernel_fetch_locked "$ver" || rc=$?
		((rc == 0)) || return "$rc"
		vmsg_kernel_load "$ver" || return 1
	fi
}
