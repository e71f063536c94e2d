#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# In-guest test suite of the loopback bus, run by tests/vm-run as the guest
# script (busybox sh).  Prints one line per check:
#   ok <name> | FAIL <name>: <why> | skip <name>: <why>
# and exits 0 only if nothing failed.
#
# Environment: SUITE_POOL=dt (the vmsglb overlay is applied) or runtime (no
# device tree pool), SUITE_KERNEL=<version> (for messages only).
#
# The backend and the I/O are pinned to CPU 0 (lib.sh: TCG wakeups).

POOL="${SUITE_POOL:-runtime}"
BACKEND=/usr/bin/virtio-msg-backend
fails=0
B=""

# shellcheck source-path=SCRIPTDIR source=lib.sh
. /test/lib.sh

start_backend() { run_backend /tmp/backend.log "$@"; }
lb_field() { vmsg-test info | sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
ioctl_is() { [ "$(vmsg-test "ioctl-$1" "$2")" = "$3" ]; }
same_md5() { [ "$1" = "$2" ]; }
dev_md5() { pin dd if="$1" bs=1M count="$2" iflag=direct 2>/dev/null | md5_of; }

echo "suite: kernel ${SUITE_KERNEL:-?} pool ${POOL}"

# --- modules ---------------------------------------------------------------
check modprobe-transport modprobe virtio_msg_transport
check modprobe-loopback modprobe virtio_msg_loopback
modprobe virtio_rng
modprobe virtio_blk
t_modes() { [ "$(stat -c %a /dev/virtio-msg-lb)" = 600 ] && [ "$(stat -c %a /dev/virtio-msg-0)" = 600 ]; }
check dev-nodes-root-only t_modes

info=$(vmsg-test info)
echo "info: $info"
t_pool_dt() { [ "$(lb_field bus_addr_base)" = 0x7e000000 ] && dmesg | grep -q "using reserved memory vmsglb"; }
t_pool_rt() { [ "$(lb_field bus_addr_base)" = 0x100000000 ] && ! dmesg | grep -q "using reserved memory"; }
if [ "$POOL" = dt ]; then
	check pool-from-devicetree t_pool_dt
else
	check pool-runtime-allocated t_pool_rt
fi
t_pool_size() { [ "$(lb_field pool_size)" -ge 8388608 ]; }
check pool-at-least-8MiB t_pool_size

# --- hostile peer checks (vmsg-test) -----------------------------------------
vmsg-test all >/tmp/vt.out 2>&1
sed -n 's/^ok /ok hostile-/p; s/^FAIL /FAIL hostile-/p' /tmp/vt.out
fails=$((fails + $(grep -c '^FAIL' /tmp/vt.out)))
grep -q '^ok ' /tmp/vt.out || fail hostile-ran "vmsg-test printed no result: $(cat /tmp/vt.out)"

# --- rng and blk through the backend ----------------------------------------
dd if=/dev/zero of=/tmp/disk.img bs=1M count=72 2>/dev/null
if start_backend --rng 1 --blk 2:/tmp/disk.img; then
	ok backend-start
else
	fail backend-start "backend not ready"
fi
t_rng_bound() { grep -q virtio_rng /sys/class/misc/hw_random/rng_current; }
check rng-bound t_rng_bound
check rng-read-1MiB rng_read 1024

VDA=$(blk_dev)
check blk-present test -b "$VDA"
dd if=/dev/urandom of=/tmp/data bs=1M count=64 2>/dev/null
want=$(md5_of </tmp/data)
pin dd if=/tmp/data of="$VDA" bs=1M oflag=direct 2>/dev/null
sync
check blk-write-64MiB-backing-file same_md5 "$(head -c 67108864 /tmp/disk.img | md5_of)" "$want"
check blk-read-back-64MiB same_md5 "$(dev_md5 "$VDA" 64)" "$want"
rm -f /tmp/data

# --- add / remove -------------------------------------------------------------
check duplicate-add-eexist ioctl_is add 2 EEXIST
check remove-unknown-enodev ioctl_is remove 999 ENODEV
t_remove_rng() { ioctl_is remove 1 OK && [ "$(virtio_count virtio_rng)" -eq 0 ]; }
t_readd_rng() { ioctl_is add 1 OK && [ "$(virtio_count virtio_rng)" -eq 1 ]; }
check remove-rng t_remove_rng
check readd-rng t_readd_rng
check rng-after-readd rng_read 64

# Add and remove a device while block I/O runs on another.
pin dd if=/dev/urandom of=/tmp/data bs=1M count=16 2>/dev/null
want=$(md5_of </tmp/data)
pin dd if=/tmp/data of="$VDA" bs=64k oflag=direct 2>/dev/null &
D=$!
churn=0
for _ in 1 2 3 4 5; do
	ioctl_is remove 1 OK || churn=1
	ioctl_is add 1 OK || churn=1
done
wait $D
check add-remove-during-io same_md5 "$churn:$(dev_md5 "$VDA" 16)" "0:$want"

check backend-clean-stop stop_backend
check devices-removed-on-stop same_md5 "$(lb_field num_devices)" 0

# --- many devices -------------------------------------------------------------
args=""
for n in $(seq 10 41); do args="$args --rng $n"; done
# shellcheck disable=SC2086
if start_backend $args; then
	check 32-devices same_md5 "$(virtio_count virtio_rng)" 32
else
	fail 32-devices "backend with 32 devices not ready"
fi
stop_backend
check 32-devices-removed same_md5 "$(virtio_count virtio_rng)" 0

# --- backend killed in the middle of I/O -------------------------------------
start_backend --blk 3:/tmp/disk.img --rng 4
VDA=$(blk_dev)
pin dd if=/dev/zero of="$VDA" bs=64k count=2000 oflag=direct 2>/dev/null &
D=$!
sleep 1
kill -KILL "$B"
wait "$B" 2>/dev/null
B=""
# No timeout guard needed: a hang here makes the whole VM run time out.
wait $D
check killed-backend-io-error test $? -ne 0
t_read_fails() { ! dd if="$1" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null; }
t_killed_remove() { ioctl_is remove 3 OK && ioctl_is remove 4 OK; }
check killed-backend-read-fails t_read_fails "$VDA"
check killed-backend-remove t_killed_remove

# --- backend that stops answering ---------------------------------------------
echo 1000 >/sys/module/virtio_msg_transport/parameters/timeout_ms
start_backend --rng 5
kill -STOP "$B"
t0=$(date +%s)
r=$(vmsg-test ioctl-remove 5)
t1=$(date +%s)
t_bounded() { [ "$1" = OK ] && [ $(($3 - $2)) -le 5 ]; }
t_timeout_logged() { dmesg | grep -q "device 5: no response to"; }
check silent-backend-remove-bounded t_bounded "$r" "$t0" "$t1"
check silent-backend-timeout-logged t_timeout_logged
kill -KILL "$B"
kill -CONT "$B" 2>/dev/null
wait "$B" 2>/dev/null
B=""
echo 3000 >/sys/module/virtio_msg_transport/parameters/timeout_ms

# --- module unload with devices present ---------------------------------------
# The backend holds /dev/virtio-msg-lb (and so the module) while it runs: it
# leaves its devices behind on exit with --no-remove, then the module goes.
start_backend --rng 6 --blk 7:/tmp/disk.img --no-remove
stop_backend
t_left() { [ "$(lb_field num_devices)" = 2 ]; }
t_unload() { rmmod virtio_msg_loopback && [ "$(virtio_count virtio_rng)" -eq 0 ] &&
	[ "$(virtio_count virtio_blk)" -eq 0 ]; }
check devices-left-behind t_left
check unload-with-devices t_unload
check unload-transport rmmod virtio_msg_transport

# --- RFC v1 wire format ---------------------------------------------------------
modprobe virtio_msg_transport
t_bad_format() {
	! modprobe virtio_msg_loopback wire_format=bogus 2>/dev/null &&
		! grep -q '^virtio_msg_loopback ' /proc/modules &&
		dmesg | grep -q 'unknown wire_format "bogus"'
}
check wire-format-unknown-refused t_bad_format
modprobe virtio_msg_loopback wire_format=rfc1
t_rfc1_info() { [ "$(lb_field wire_format):$(lb_field max_msg_size)" = 1:44 ]; }
check rfc1-info t_rfc1_info
if start_backend --rng 1 --blk 2:/tmp/disk.img; then
	check rfc1-rng rng_read 64
	VDA=$(blk_dev)
	dd if=/dev/urandom of=/tmp/d bs=1M count=2 2>/dev/null
	pin dd if=/tmp/d of="$VDA" bs=1M oflag=direct 2>/dev/null
	check rfc1-blk same_md5 "$(dev_md5 "$VDA" 2)" "$(md5_of </tmp/d)"
	check rfc1-stop stop_backend
else
	fail rfc1-backend "backend not ready"
fi
rmmod virtio_msg_loopback

# --- notification data (seed bugs 1 and 2) -----------------------------------
modprobe virtio_msg_loopback
if "$BACKEND" --help 2>&1 | grep -q -- --notification-data; then
	if start_backend --notification-data --rng 1 --blk 2:/tmp/disk.img; then
		t_nd_io() { rng_read 32 && pin dd if=/dev/urandom of="$(blk_dev)" bs=64k count=64 oflag=direct 2>/dev/null; }
		t_nd_log() { ! grep -qi "notification data mismatch" /tmp/backend.log; }
		# The check below means something only if the feature is in use.
		t_nd_negotiated() {
			for f in /sys/bus/virtio/drivers/virtio_rng/virtio*/features; do
				[ "$(cut -c39 "$f")" = 1 ] && return 0
			done
			return 1
		}
		check notification-data-negotiated t_nd_negotiated
		check notification-data-io t_nd_io
		check notification-data-stop stop_backend
		check notification-data-consistent t_nd_log
	else
		fail notification-data "backend not ready"
	fi
else
	skip notification-data "backend has no --notification-data"
fi

# IDA-allocated node names come back (seed bug 14).
rmmod virtio_msg_loopback
modprobe virtio_msg_loopback
check node-name-reused same_md5 "$(lb_field msg_dev)" virtio-msg-0
rmmod virtio_msg_loopback
check final-unload rmmod virtio_msg_transport

[ -z "$B" ] || kill -KILL "$B" 2>/dev/null
echo "suite: $fails failed"
[ "$fails" -eq 0 ]
