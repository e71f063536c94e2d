#!/bin/bash
# shellcheck disable=SC2317  # the t_* checks are called through check()
# SPDX-License-Identifier: GPL-2.0-only
#
# In-VM part of the package end-to-end test (tests/pkg/run), run as root by
# /usr/local/sbin/vmsg-pkg-init from the test disk mounted on /test:
#   /test/debs/   virtio-msg-dkms_*_all.deb, virtio-msg-tools_*_arm64.deb
#   /test/loopback-smoke   debian/tests/loopback-smoke (the autopkgtest)
# (A second kernel's DKMS build is checked natively: tests/pkg/dkms-amd64.sh.)
# Prints ok/FAIL/info lines; exit status = number of failures (max 119).
set -u
cd /test || exit 1
KREL=$(uname -r)
fails=0
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
info() { echo "info $*"; }
# check <name> cmd...: output of the command shown only on failure
check() {
	local name=$1
	shift
	if "$@" >/tmp/check.out 2>&1; then
		ok "$name"
	else
		fail "$name" "$(tail -15 /tmp/check.out | tr '\n' '|')"
	fi
}
now() { date +%s; }
mods() { find /lib/modules/"$1" -name 'virtio_msg*' 2>/dev/null | sort; }

info "kernel $KREL, $(nproc) cpus"
info "dkms $(dpkg-query -W -f='${Version}' dkms), $(gcc-14 --version | head -1)"

# The kbuild part of a DKMS build, as DKMS timed it in make.log.
make_time() {
	sed -n 's/^# elapsed time: /make /p' /var/lib/dkms/virtio-msg/*/"$1"/*/log/make.log 2>/dev/null | head -1
}

# --- install: apt, DKMS builds for the running kernel ------------------------
t0=$(now)
check apt-install-debs apt install -y \
	./debs/virtio-msg-dkms_*_all.deb ./debs/virtio-msg-tools_*_arm64.deb
info "time apt-install+dkms-build $(($(now) - t0))s ($(make_time "$KREL"))"
# On a failed DKMS build, show why (the make.log of every failed build).
show_make_logs() {
	local f
	for f in /var/lib/dkms/virtio-msg/*/build/make.log /var/lib/dkms/virtio-msg/*/*/*/log/make.log; do
		[ -f "$f" ] || continue
		grep -q -E 'Error|error:' "$f" || continue
		echo "info --- $f (errors) ---"
		grep -E -B3 -A3 'Error|error:' "$f" | head -60 | sed 's/^/info make: /'
	done
}
grep -q 'Bad return status' /tmp/check.out && show_make_logs
t_dkms_installed() { dkms status -k "$1" virtio-msg | grep -q ': installed'; }
check "dkms-installed-$KREL" t_dkms_installed "$KREL"
info "modules for $KREL: $(mods "$KREL" | tr '\n' ' ')"
t_three() {
	local m
	for m in virtio_msg_transport virtio_msg_loopback virtio_msg_ffa; do
		mods "$KREL" | grep -q "/updates/dkms/$m.ko" || { echo "missing $m"; return 1; }
	done
}
check modules-in-updates-dkms-with-ffa t_three
t_signed() {
	local s
	s=$(modinfo -F signer virtio_msg_transport) || return 1
	echo "signer: $s" >&2
	[ -n "$s" ]
}
check module-signed-by-dkms-key t_signed
info "$(cat /tmp/check.out)"
check dkms-mok-cert-present test -s /var/lib/dkms/mok.pub

# --- load with modprobe (no insmod) ------------------------------------------
check modprobe-loopback modprobe virtio_msg_loopback
check transport-loaded-as-dependency sh -c 'grep -q "^virtio_msg_transport " /proc/modules'
udevadm settle
t_mode() { [ "$(stat -c %a:%U /dev/virtio-msg-lb)" = 600:root ]; }
check udev-dev-node-root-only t_mode
t_pool_dt() { dmesg | grep -q 'using reserved memory vmsglb'; }
check pool-from-merged-dtb t_pool_dt
check dt-tool-inspect-running-system sh -c 'virtio-msg-dt inspect | tee /dev/stderr | grep -q "usable: virtio_msg_loopback"'

# --- rng and blk through the backend -----------------------------------------
modprobe virtio_rng 2>/dev/null
modprobe virtio_blk 2>/dev/null
dd if=/dev/urandom of=/tmp/disk.img bs=1M count=16 2>/dev/null
ls /sys/block >/tmp/blk.before
rm -f /tmp/ready
taskset 1 virtio-msg-backend --ready-file /tmp/ready --rng 1 --blk 2:/tmp/disk.img \
	>/tmp/backend.log 2>&1 &
B=$!
t_ready() { local _; for _ in $(seq 300); do [ -e /tmp/ready ] && return 0; sleep 0.1; done; cat /tmp/backend.log; return 1; }
check backend-ready t_ready
udevadm settle
# shellcheck disable=SC2010  # /sys/block names are plain
VD=$(ls /sys/block | grep -vxF -f /tmp/blk.before | head -1)
check blk-device-appeared test -n "$VD"
t_rng() {
	grep -q virtio_rng /sys/class/misc/hw_random/rng_current || return 1
	taskset 1 dd if=/dev/hwrng of=/tmp/rnd bs=1024 count=256 2>/dev/null
	[ "$(wc -c </tmp/rnd)" -eq 262144 ] && [ "$(gzip -c /tmp/rnd | wc -c)" -gt 256000 ]
}
check rng-read-256KiB t_rng
t_blk_read() { [ "$(md5sum </tmp/disk.img)" = "$(taskset 1 dd if=/dev/"$VD" bs=1M count=16 iflag=direct 2>/dev/null | md5sum)" ]; }
check blk-read-md5 t_blk_read
t_blk_write() {
	dd if=/dev/urandom of=/tmp/data bs=1M count=8 2>/dev/null
	taskset 1 dd if=/tmp/data of=/dev/"$VD" bs=1M oflag=direct 2>/dev/null || return 1
	[ "$(md5sum </tmp/data)" = "$(head -c 8388608 /tmp/disk.img | md5sum)" ]
}
check blk-write-md5 t_blk_write
kill -TERM "$B" 2>/dev/null
check backend-clean-stop wait "$B"
check rmmod-modprobe-r modprobe -r virtio_msg_loopback virtio_msg_transport

# --- the package's own autopkgtest -------------------------------------------
check autopkgtest-loopback-smoke sh /test/loopback-smoke

# --- removal leaves nothing behind -------------------------------------------
check apt-remove apt remove -y virtio-msg-dkms
t_gone() { [ -z "$(find /lib/modules /usr/lib/modules -name 'virtio_msg*' 2>/dev/null)" ]; }
check no-module-left-after-remove t_gone
find /lib/modules /usr/lib/modules -name 'virtio_msg*' 2>/dev/null | sed 's/^/info left: /'
check no-dkms-tree-left sh -c '! dkms status | grep -q virtio-msg'
check usr-src-removed sh -c '! ls -d /usr/src/virtio-msg-* 2>/dev/null'
check tools-still-installed test -x /usr/bin/virtio-msg-dt

t_dmesg() { ! dmesg | grep -E 'WARNING:|BUG:|Oops|Call trace:|Kernel panic|UBSAN:|KASAN'; }
check dmesg-clean t_dmesg
[ "$fails" -le 119 ] || fails=119
exit "$fails"
