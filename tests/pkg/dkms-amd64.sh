# shellcheck shell=bash source-path=SCRIPTDIR
# tests/pkg/dkms-amd64.sh - the Debian packages on amd64: DKMS builds the
# transport and loopback modules (never the FF-A one) for a Debian amd64
# kernel, builds them again when a second kernel's headers arrive (the
# kernel's header_postinst.d hook, as apt runs it), and the amd64
# virtio-msg-tools package installs and runs.
#
# The second kernel is checked here, natively, rather than in the arm64 VM
# of tests/pkg/run: there it cost ~7 minutes of emulated compiling to prove
# the same dkms.conf path (a kernel without FF-A gets two modules).
#
# amd64 is the host's own architecture, so no VM and no emulation: a
# cached trixie amd64 system tree (a copy of the tests' native amd64
# build chroot + dkms, openssl, libfdt1 and the linux-headers of
# VMSG_PKG_AMD64_KERNEL, default 7.3.4, from trixie-backports) is used
# through an overlay mount, so every run starts from the same tree and the
# cache is never modified.  Nothing is loaded into the host's kernel.
#
# Public interface (source, then call):
#   vmsg_pkg_amd64_root_ensure   build the tree once; prints its path (the
#       kernel release of its headers is in <path>/.vmsg-kabi)
#   vmsg_pkg_dkms_amd64 <debdir>
#       dpkg -i virtio-msg-dkms_*_all.deb (its postinst runs DKMS),
#       virtio-msg-tools_*_amd64.deb, checks, dpkg --purge.  Reports with
#       the caller's ok NAME / fail NAME WHY functions; returns non-zero if
#       any check failed.  Logs: $VMSG_LOGDIR/dkms-amd64.log.

[[ -n "${_VMSG_PKG_DKMS_AMD64_SH:-}" ]] && return 0
_VMSG_PKG_DKMS_AMD64_SH=1
# shellcheck source=../lib/chroot.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/chroot.sh"

VMSG_PKG_AMD64_KERNEL="${VMSG_PKG_AMD64_KERNEL:-7.3.4}"
# Its headers are in the tree but hidden until the test "installs" them.
VMSG_PKG_AMD64_KERNEL2="${VMSG_PKG_AMD64_KERNEL2:-6.16.12}"
# What a Debian amd64 machine with DKMS has (dkms pulls in the rest);
# libfdt1 for virtio-msg-tools, openssl for DKMS's signing key.
VMSG_PKG_AMD64_PACKAGES="dkms openssl libfdt1 kmod xz-utils"

_vmsg_pkg_amd64_dir() {
	local tag
	tag="$(echo "$VMSG_PKG_AMD64_KERNEL $VMSG_PKG_AMD64_KERNEL2 $VMSG_PKG_AMD64_PACKAGES" |
		md5sum | cut -c1-8)"
	printf '%s/pkg-amd64-root-%s\n' "$(vmsg_cache)" "$tag"
}

# Run a shell command line in <root> (chroot, private mount namespace).
_vmsg_pkg_amd64_chroot() {
	local root="$1"
	shift
	# shellcheck disable=SC2016  # the inner script expands its own $vars
	unshare --mount --propagation private -- bash -euo pipefail -c '
		root="$1"; shift
		mount -t proc proc "$root/proc"
		mount --rbind /dev "$root/dev"
		exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
			DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			sh -c "$1"
	' vmsg-pkg-amd64 "$root" "$1"
}

_vmsg_pkg_amd64_create() {
	local dir="$1" abi="$2" abi2="$3" base mirror
	[[ -f "$dir/.complete" ]] && return 0
	base="$(VMSG_ARCH=amd64 vmsg_chroot_ensure trixie 14)" || return 1
	mirror="$(vmsg_mirror)"
	vmsg_log "amd64 DKMS tree: copying $(basename "$base"), apt-get install $VMSG_PKG_AMD64_PACKAGES linux-headers-$abi linux-headers-$abi2"
	rm -rf "$dir.tmp"
	cp -a "$base" "$dir.tmp"
	cat >"$dir.tmp/etc/apt/sources.list.d/build.sources" <<-EOF
		Types: deb
		URIs: $mirror
		Suites: trixie trixie-updates trixie-backports
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	printf '#!/bin/sh\nexit 101\n' >"$dir.tmp/usr/sbin/policy-rc.d"
	chmod 755 "$dir.tmp/usr/sbin/policy-rc.d"
	# The second kernel: its .debs from the pool (older backports drop out
	# of the index), installed, then put out of sight: /lib/modules/$abi2
	# is what DKMS looks for.
	local p
	mkdir -p "$dir.tmp/tmp/k2"
	while IFS= read -r p; do
		vmsg_download "$mirror/pool/main/l/linux/$p" "$dir.tmp/tmp/k2/$p" ||
			{ vmsg_log "download of $p failed"; return 1; }
	done < <(grep -v -e '^linux-image-' -e '^linux-binary-' -e '^linux-modules-' \
		"$(vmsg_cache)/kernels/$VMSG_PKG_AMD64_KERNEL2-amd64/debs")
	_vmsg_pkg_amd64_chroot "$dir.tmp" "apt-get update -qq &&
		apt-get install -y -qq --no-install-recommends $VMSG_PKG_AMD64_PACKAGES \
			linux-headers-$abi /tmp/k2/*.deb &&
		mv /lib/modules/$abi2 /lib/modules/.hidden-$abi2" \
		>"$dir.tmp.log" 2>&1 ||
		{ sed -i "s|$mirror|MIRROR|g" "$dir.tmp.log"; tail -30 "$dir.tmp.log" >&2
		  vmsg_log "amd64 DKMS tree failed"; return 1; }
	# No mirror host name, no package lists: the test itself is offline.
	rm -rf "$dir.tmp/etc/apt/sources.list.d/build.sources" "$dir.tmp/var/lib/apt/lists/"* \
		"$dir.tmp/tmp/k2" \
		"$dir.tmp/var/cache/apt/"*.bin "$dir.tmp/var/cache/apt/archives/"*.deb \
		"$dir.tmp/usr/sbin/policy-rc.d"
	mkdir -p "$dir.tmp/var/lib/apt/lists/partial"
	sed -i "s|$mirror|MIRROR|g" "$dir.tmp.log"
	mv "$dir.tmp.log" "$dir.log"
	echo "$abi" >"$dir.tmp/.vmsg-kabi"
	echo "$abi2" >"$dir.tmp/.vmsg-kabi2"
	mv "$dir.tmp" "$dir"
	touch "$dir/.complete"
}

vmsg_pkg_amd64_root_ensure() {
	local dir rc=0 abi2
	vmsg_need_cmd unshare util-linux flock util-linux
	VMSG_ARCH=amd64 vmsg_kernel_fetch "$VMSG_PKG_AMD64_KERNEL2" >&2 || rc=$?
	((rc == 0)) || return "$rc"
	abi2="$VMSG_KABI"
	VMSG_ARCH=amd64 vmsg_kernel_fetch "$VMSG_PKG_AMD64_KERNEL" >&2 || rc=$?
	((rc == 0)) || return "$rc"
	dir="$(_vmsg_pkg_amd64_dir)"
	VMSG_ARCH=amd64 vmsg_with_lock pkg-amd64-root _vmsg_pkg_amd64_create "$dir" "$VMSG_KABI" \
		"$abi2" || return 1
	printf '%s\n' "$dir"
}

# The in-tree part: runs as /test/run.sh in the overlay, prints ok/FAIL.
_vmsg_pkg_amd64_script() {
	cat <<'EOF'
set -u
kabi=$1
kabi2=$2
n_fail=0
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; n_fail=$((n_fail + 1)); }
mods=/lib/modules/$kabi/updates/dkms
echo "--- dpkg -i virtio-msg-dkms (postinst runs DKMS for $kabi)"
if dpkg -i /test/debs/virtio-msg-dkms_*_all.deb; then
	ok dkms-amd64-install
else
	fail dkms-amd64-install "dpkg -i virtio-msg-dkms failed"
fi
echo "--- dkms status"
st=$(dkms status virtio-msg -k "$kabi" 2>&1)
echo "$st"
case "$st" in
*"$kabi, x86_64: installed"*) ok dkms-amd64-status-installed ;;
*) fail dkms-amd64-status-installed "dkms status: ${st:-nothing}" ;;
esac
ls -l "$mods" 2>&1
for m in virtio_msg_transport virtio_msg_loopback; do
	set -- "$mods/$m".ko*
	if [ -f "$1" ]; then
		vm=$(modinfo -F vermagic "$1" 2>/dev/null)
		case "$vm" in
		"$kabi "*) ok "dkms-amd64-built-$m" ;;
		*) fail "dkms-amd64-built-$m" "$1 has vermagic '$vm'" ;;
		esac
	else
		fail "dkms-amd64-built-$m" "no $mods/$m.ko*"
	fi
done
set -- "$mods"/virtio_msg_ffa.ko* /lib/modules/"$kabi"/updates/virtio_msg_ffa.ko*
if [ -e "$1" ] || [ -e "$2" ]; then
	fail dkms-amd64-no-ffa "virtio_msg_ffa built for an amd64 kernel"
else
	ok dkms-amd64-no-ffa
fi
echo "--- a second kernel's headers arrive: the hook apt runs for them"
mv /lib/modules/.hidden-"$kabi2" /lib/modules/"$kabi2"
if /etc/kernel/header_postinst.d/dkms "$kabi2"; then
	ok dkms-amd64-second-kernel-hook
else
	fail dkms-amd64-second-kernel-hook "header_postinst.d/dkms $kabi2 failed"
fi
st=$(dkms status virtio-msg -k "$kabi2" 2>&1)
echo "$st"
case "$st" in
*"$kabi2, x86_64: installed"*) ok dkms-amd64-second-kernel-installed ;;
*) fail dkms-amd64-second-kernel-installed "dkms status: ${st:-nothing}" ;;
esac
m2=/lib/modules/$kabi2/updates/dkms
if [ -f "$m2"/virtio_msg_transport.ko* ] && [ -f "$m2"/virtio_msg_loopback.ko* ] &&
	! [ -e "$m2"/virtio_msg_ffa.ko* ]; then
	ok dkms-amd64-second-kernel-two-modules
else
	fail dkms-amd64-second-kernel-two-modules "$(ls "$m2" 2>&1 | tr '\n' ' ')"
fi
if grep -rqs 'Error' /var/lib/dkms/virtio-msg/*/"$kabi2"/*/log/make.log; then
	fail dkms-amd64-second-kernel-make-log-clean "errors in its make.log"
else
	ok dkms-amd64-second-kernel-make-log-clean
fi
echo "--- dpkg -i virtio-msg-tools (amd64)"
if dpkg -i /test/debs/virtio-msg-tools_*_amd64.deb &&
	virtio-msg-backend --help >/tmp/b.txt 2>&1 && grep -q -- '--rng' /tmp/b.txt &&
	virtio-msg-dt --help >/tmp/d.txt 2>&1 && grep -q 'add-pool' /tmp/d.txt; then
	ok tools-amd64-install-run
else
	cat /tmp/b.txt /tmp/d.txt 2>/dev/null
	fail tools-amd64-install-run "dpkg -i or --help of the amd64 tools failed"
fi
echo "--- dpkg --purge virtio-msg-dkms"
dpkg --purge virtio-msg-dkms
left=$(find /lib/modules/ -name 'virtio_msg*' 2>/dev/null)
if [ -z "$left" ] && ! dkms status 2>/dev/null | grep -q virtio-msg; then
	ok dkms-amd64-purge
else
	fail dkms-amd64-purge "left behind: $left $(dkms status 2>/dev/null)"
fi
exit "$n_fail"
EOF
}

vmsg_pkg_dkms_amd64() {
	local debs="$1" root log work rc=0 line name why VMSG_PA_KABI VMSG_PA_KABI2
	log="${VMSG_LOGDIR:-$VMSG_REPO/tests/logs}/dkms-amd64.log"
	mkdir -p "$(dirname "$log")"
	if ! compgen -G "$debs/virtio-msg-dkms_*_all.deb" >/dev/null ||
		! compgen -G "$debs/virtio-msg-tools_*_amd64.deb" >/dev/null; then
		fail dkms-amd64 "no virtio-msg-dkms_*_all.deb / virtio-msg-tools_*_amd64.deb in $debs"
		return 1
	fi
	root="$(vmsg_pkg_amd64_root_ensure 2>"$log")" || rc=$?
	if ((rc)); then
		fail dkms-amd64 "no amd64 system tree (status $rc; log: $log)"
		return 1
	fi
	VMSG_PA_KABI="$(cat "$root/.vmsg-kabi")"
	VMSG_PA_KABI2="$(cat "$root/.vmsg-kabi2")"
	work="$(mktemp -d "$(vmsg_cache)/pkg-amd64.XXXXXX")"
	mkdir -p "$work/upper" "$work/work" "$work/merged" "$work/test/debs"
	cp "$debs"/virtio-msg-dkms_*_all.deb "$debs"/virtio-msg-tools_*_amd64.deb "$work/test/debs/"
	_vmsg_pkg_amd64_script >"$work/test/run.sh"
	vmsg_log "DKMS on amd64: $VMSG_PA_KABI in $(basename "$root") (overlay), log: $log"
	# The overlay and the bind mount live in a private mount namespace:
	# they vanish with it.  The host's uname -r has no headers in the tree,
	# so DKMS builds for the tree's kernel only.
	# shellcheck disable=SC2016  # the inner script expands its own $vars
	unshare --mount --propagation private -- bash -euo pipefail -c '
		root="$1" w="$2" kabi="$3" kabi2="$4"
		mount -t overlay overlay -o "lowerdir=$root,upperdir=$w/upper,workdir=$w/work" "$w/merged"
		mkdir -p "$w/merged/test"
		mount --bind "$w/test" "$w/merged/test"
		mount -t proc proc "$w/merged/proc"
		mount --rbind /dev "$w/merged/dev"
		exec chroot "$w/merged" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
			DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			sh /test/run.sh "$kabi" "$kabi2"
	' vmsg-dkms-amd64 "$root" "$work" "$VMSG_PA_KABI" "$VMSG_PA_KABI2" >>"$log" 2>&1 || rc=$?
	rm -rf "$work"
	local n=0
	while IFS= read -r line; do
		case "$line" in
		"ok "*) ok "${line#ok }"; n=$((n + 1)) ;;
		"FAIL "*)
			name="${line#FAIL }"; why="${name#*: }"; name="${name%%:*}"
			fail "$name" "$why (log: $log)"; n=$((n + 1)) ;;
		esac
	done < <(grep -E '^(ok|FAIL) ' "$log")
	if ((n == 0)); then
		fail dkms-amd64 "the check printed nothing (status $rc; log: $log)"
		return 1
	fi
	((rc == 0)) || return 1
}
