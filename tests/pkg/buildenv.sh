# shellcheck shell=bash source-path=SCRIPTDIR
# tests/pkg/buildenv.sh - build the Debian packages in a trixie chroot.
#
# Public interface (source, then call):
#   vmsg_pkg_buildenv_ensure   cached amd64 trixie chroot with debhelper,
#       dh-dkms, lintian, autodep8, libfdt-dev, device-tree-compiler and the arm64
#       cross toolchain (crossbuild-essential-arm64, libfdt-dev:arm64);
#       prints its path.  A copy of the tests' cross chroot, so that one
#       stays exactly as tests/lib/chroot.sh made it.
#   vmsg_pkg_build_debs <outdir> [arch...]
#       Exports the work tree (tracked + untracked, not ignored files) to a
#       private copy, runs dpkg-buildpackage -us -uc (source + all + host
#       arch amd64) and dpkg-buildpackage -aarm64 -B for each extra arch,
#       then lintian on the results.  The .dsc/.debs/.changes, build logs
#       and lintian.txt land in <outdir>.  Returns non-zero on a build
#       failure or any lintian error/warning.

[[ -n "${_VMSG_PKG_BUILDENV_SH:-}" ]] && return 0
_VMSG_PKG_BUILDENV_SH=1
# shellcheck source=../lib/chroot.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/chroot.sh"

VMSG_PKG_BUILD_PACKAGES="build-essential debhelper dh-dkms lintian autodep8 libfdt-dev device-tree-compiler crossbuild-essential-arm64 libfdt-dev:arm64 qemu-system-arm ipxe-qemu fakeroot"
VMSG_PKG_BUILDENV_REV=1

vmsg_pkg_buildenv_dir() {
	local tag
	tag="$(echo "$VMSG_PKG_BUILDENV_REV $VMSG_PKG_BUILD_PACKAGES" | md5sum | cut -c1-8)"
	printf '%s/chroot-trixie-pkgbuild-%s\n' "$(vmsg_cache)" "$tag"
}

_vmsg_pkg_buildenv_create() {
	local dir="$1" base mirror
	[[ -f "$dir/.complete" ]] && return 0
	base="$(vmsg_chroot_ensure trixie 14)" || return 1
	mirror="$(vmsg_mirror)"
	vmsg_log "package build chroot: copying $base"
	rm -rf "$dir.tmp"
	cp -a "$base" "$dir.tmp"
	cat >"$dir.tmp/etc/apt/sources.list.d/build.sources" <<-EOF
		Types: deb
		URIs: $mirror
		Suites: trixie trixie-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	printf '#!/bin/sh\nexit 101\n' >"$dir.tmp/usr/sbin/policy-rc.d"
	chmod 755 "$dir.tmp/usr/sbin/policy-rc.d"
	vmsg_log "package build chroot: apt-get install $VMSG_PKG_BUILD_PACKAGES"
	# shellcheck disable=SC2016
	unshare --mount --propagation private -- bash -euo pipefail -c '
		root="$1"; shift
		mount -t proc proc "$root/proc"
		mount --rbind /dev "$root/dev"
		exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
			DEBIAN_FRONTEND=noninteractive PATH=/usr/bin:/bin:/usr/sbin:/sbin \
			sh -c "dpkg --add-architecture arm64 && apt-get update -qq &&
				apt-get install -y -qq --no-install-recommends $*"
	' vmsg-pkg "$dir.tmp" "$VMSG_PKG_BUILD_PACKAGES" >"$dir.tmp.log" 2>&1 ||
		{ tail -30 "$dir.tmp.log" >&2; vmsg_log "package build chroot failed"; return 1; }
	rm -rf "$dir.tmp/etc/apt/sources.list.d/build.sources" "$dir.tmp/var/lib/apt/lists/"* \
		"$dir.tmp/var/cache/apt/"*.bin "$dir.tmp/var/cache/apt/archives/"*.deb \
		"$dir.tmp/usr/sbin/policy-rc.d"
	mkdir -p "$dir.tmp/var/lib/apt/lists/partial"
	sed -i "s|$mirror|MIRROR|g" "$dir.tmp.log"
	mv "$dir.tmp.log" "$dir.log"
	mv "$dir.tmp" "$dir"
	touch "$dir/.complete"
}

vmsg_pkg_buildenv_ensure() {
	local dir
	dir="$(vmsg_pkg_buildenv_dir)"
	vmsg_with_lock chroot-trixie-pkgbuild _vmsg_pkg_buildenv_create "$dir" || return 1
	printf '%s\n' "$dir"
}

# Run a command in the build chroot with <dir> bind-mounted at /build.
vmsg_pkg_buildenv_run() {
	local root="$1" bdir="$2"
	shift 2
	# shellcheck disable=SC2016
	unshare --mount --propagation private -- bash -euo pipefail -c '
		root="$1" bdir="$2"; shift 2
		mount -t proc proc "$root/proc"
		mount --rbind /dev "$root/dev"
		mkdir -p "$root/build"
		mount --bind "$bdir" "$root/build"
		exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
			DEBIAN_FRONTEND=noninteractive PATH=/usr/bin:/bin:/usr/sbin:/sbin \
			bash -c "cd /build && exec \"\$@\"" vmsg-pkg "$@"
	' vmsg-pkg-run "$root" "$bdir" "$@"
}

vmsg_pkg_build_debs() {
	local out="$1" root src ver t0 rc=0
	shift
	root="$(vmsg_pkg_buildenv_ensure)" || return 1
	mkdir -p "$out"
	out="$(cd "$out" && pwd)"
	t0="$(vmsg_now)"
	ver="$(dpkg-parsechangelog -l "$VMSG_REPO/debian/changelog" -S Version)"
	# A private copy of the sources: kbuild and the tools build write
	# in-tree, and other work may be going on in the work tree.
	local work
	work="$(mktemp -d "$(vmsg_cache)/pkgbuild.XXXXXX")"
	src="$work/virtio-msg-${ver%%-*}"
	mkdir -p "$src"
	(cd "$VMSG_REPO" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' |
		cpio -0 -pdm --quiet "$src") || { rm -rf "$work"; return 1; }
	rm -rf "$src/tests/logs"
	vmsg_log "dpkg-buildpackage (source, all, amd64) in $(basename "$root")"
	vmsg_pkg_buildenv_run "$root" "$work" bash -c \
		"cd $(basename "$src") && dpkg-buildpackage -us -uc" >"$out/build-amd64.log" 2>&1 || rc=1
	local a
	for a in "$@"; do
		((rc == 0)) || break
		vmsg_log "dpkg-buildpackage -a$a -B"
		vmsg_pkg_buildenv_run "$root" "$work" bash -c \
			"cd $(basename "$src") && dpkg-buildpackage -us -uc -a$a -B" \
			>"$out/build-$a.log" 2>&1 || rc=1
	done
	if ((rc)); then
		tail -40 "$out"/build-*.log >&2
		rm -rf "$work"
		vmsg_log "package build failed (logs in $out)"
		return 1
	fi
	rm -f "$out"/*.deb "$out"/*.dsc "$out"/*.tar.* "$out"/*.changes "$out"/*.buildinfo
	find "$work" -maxdepth 1 -type f -exec cp {} "$out/" \;
	vmsg_log "lintian"
	vmsg_pkg_buildenv_run "$root" "$out" bash -c \
		'setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp \
			lintian --fail-on error,warning --display-info --pedantic --tag-display-limit 0 ./*.changes' \
		>"$out/lintian.txt" 2>&1 || rc=1
	rm -rf "$work"
	vmsg_log "packages built in $(vmsg_elapsed "$t0")s: $out"
	return "$rc"
}
