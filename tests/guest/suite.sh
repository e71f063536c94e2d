#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# In-guest test suite of the loopback bus, run by tests/vm-run as the guest
# script (busybox sh).  Prints one line per check:
#   ok <name> | FAIL <name>: <why> | skip <name>: <why>
# and exits 0 only if nothing failed.
#
# Environment: SUITE_POOL=dt (the vmsglb overlay is applied) or runtime (no
# device tree pool), SUITE_KERNEL=<version> (for messages only),
# SUITE_POOL_OPS=kernel when the kernel has CONFIG_DMA_RESTRICTED_POOL (the
# debug kernel; Debian's do not): with SUITE_POOL=dt the DMA must then be
# confined by the kernel's restricted-dma-pool ops, not by our own pool.
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

# vmsg-peer plays other people's peers (loose answers, one thread, stalls);
# it exits at once when an ADD fails, so wait for that too.
start_peer() {
	rm -f /tmp/ready
	taskset 1 vmsg-peer --ready-file /tmp/ready "$@" >/tmp/peer.log 2>&1 &
	B=$!
	wait_for 300 peer_settled
	[ -e /tmp/ready ] || { cat /tmp/peer.log; return 1; }
}
peer_settled() { [ -e /tmp/ready ] || ! kill -0 "$B" 2>/dev/null; }
# What a bus with no devices must look like: nothing left of the pool.
bus_empty() { [ "$(lb_field num_devices):$(lb_field pool_in_use)" = 0:0 ]; }
set_timeout() { echo "$1" >/sys/module/virtio_msg_transport/parameters/timeout_ms; }
# Reads a little from every virtio-rng, so that each has a buffer queued.
rng_read_each() {
	for r in $(cat /sys/class/misc/hw_random/rng_available); do
		case $r in virtio_rng.*) ;; *) continue ;; esac
		echo "$r" >/sys/class/misc/hw_random/rng_current
		rng_read 4 || return 1
	done
}
dmesg_count() { dmesg | grep -c "$1"; }
# A reader of /dev/hwrng in the background ($R): KiB to read.
reader_start() {
	pin dd if=/dev/hwrng of=/dev/null bs=1k count="$1" 2>/dev/null &
	R=$!
}
reader_gone() { ! kill -0 "$R" 2>/dev/null; }
reader_stop() {
	kill -KILL "$R" 2>/dev/null
	wait "$R" 2>/dev/null
}
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

# Who confines the DMA: with the device-tree region and a kernel that has
# CONFIG_DMA_RESTRICTED_POOL, the kernel's restricted-dma-pool ops (swiotlb
# bouncing into the region); otherwise our own bounce pool.  Which one is
# in use is read from the kernel log; its checks are of that path only, so
# none passes on a kernel that does not take it.  The kernel's pool is
# seen by the kernel itself: swiotlb's debugfs directory of the region.
KOPS=0
dmesg | grep -q "DMA confined to .* by the kernel's pool ops" && KOPS=1
SWIOTLB=""
for d in /sys/kernel/debug/swiotlb/vmsglb*; do
	[ -d "$d" ] && SWIOTLB=$d
done
if [ "$POOL" = dt ] && [ "$KOPS" = 1 ]; then
	t_kops_confined() {
		dmesg | grep -q "DMA confined to 0x0*7e000000+0x0*1000000 by the kernel's pool ops" &&
			[ -n "$SWIOTLB" ] && [ "$(cat "$SWIOTLB/io_tlb_nslabs")" -gt 0 ]
	}
	check pool-kernel-ops-confined t_kops_confined
elif [ "${SUITE_POOL_OPS:-}" = kernel ] && [ "$POOL" = dt ]; then
	fail pool-kernel-ops-confined "kernel has CONFIG_DMA_RESTRICTED_POOL, but: $(dmesg | grep -E 'DMA confined|kernel pool ops' | tail -1)"
else
	t_own_confined() { dmesg | grep -q "DMA confined to a [0-9]* KiB pool at bus address"; }
	check pool-own-bounce-confined t_own_confined
fi

# --- hostile peer checks (vmsg-test) -----------------------------------------
vmsg-test all >/tmp/vt.out 2>&1
sed -n 's/^ok /ok hostile-/p; s/^FAIL /FAIL hostile-/p' /tmp/vt.out
fails=$((fails + $(grep -c '^FAIL' /tmp/vt.out)))
grep -q '^ok ' /tmp/vt.out || fail hostile-ran "vmsg-test printed no result: $(cat /tmp/vt.out)"

# --- rng and blk through the backend ----------------------------------------
dd if=/dev/zero of=/tmp/disk.img bs=1M count=72 2>/dev/null
f0=$fails
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
io_clean=0
[ "$fails" -eq "$f0" ] && io_clean=1
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
# Every buffer of that I/O was inside the region: the backend marks a queue
# broken for anything outside its mapping of it, so I/O that passed with no
# such complaint proves it; swiotlb's high-water mark (kept only with the
# kernel argument swiotlb=track_hiwater) proves the kernel bounced the
# buffers through the region.
if [ "$POOL" = dt ] && [ "$KOPS" = 1 ]; then
	hiwater=$(cat "$SWIOTLB/io_tlb_used_hiwater" 2>/dev/null)
	if [ "$io_clean" != 1 ]; then
		fail pool-kernel-ops-io-inside "the rng/blk I/O above failed"
	elif grep -E "outside the DMA pool|not inside the DMA pool" /tmp/backend.log >/tmp/outside; then
		fail pool-kernel-ops-io-inside "backend: $(head -1 /tmp/outside)"
	elif [ "${hiwater:-0}" -le 0 ]; then
		fail pool-kernel-ops-io-inside "nothing bounced through $SWIOTLB (io_tlb_used_hiwater '$hiwater'; it counts with swiotlb=track_hiwater only)"
	else
		ok pool-kernel-ops-io-inside
	fi
fi

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
# Its devices can never work again: they are removed, and whoever waits on
# them (a writer of the disk, a reader of /dev/hwrng) gets an error.
start_backend --blk 3:/tmp/disk.img --rng 4
VDA=$(blk_dev)
pin dd if=/dev/zero of="$VDA" bs=64k count=2000 oflag=direct 2>/dev/null &
D=$!
reader_start 1000000
sleep 1
kill_backend
# No timeout guard needed: a hang here makes the whole VM run time out.
wait $D
check killed-backend-io-error test $? -ne 0
check killed-backend-hwrng-reader-ends wait_for 100 reader_gone
reader_stop
check killed-backend-devices-removed wait_for 100 bus_empty
t_removal_logged() { dmesg | grep -q "device 4: removing it, its peer is gone"; }
check killed-backend-removal-logged t_removal_logged
# The number is free again: with nobody serving, ADD fails to reach a peer.
check killed-backend-dev-num-free ioctl_is add 3 ENOTCONN

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
kill_backend
echo 3000 >/sys/module/virtio_msg_transport/parameters/timeout_ms

# --- teardown: every path gives the pool back ----------------------------------
# Issue 8: a peer that REMOVEs from the thread that serves the node leaves
# the reset unanswered; the device breaks while its driver still has a
# buffer queued.  Unloading afterwards must neither crash nor leak.
set_timeout 1000
if start_peer --remove-inline --rng 20; then
	check inline-remove-rng-read rng_read 16
	t0=$(date +%s)
	stop_backend
	t1=$(date +%s)
	check inline-remove-bounded t_bounded OK "$t0" "$t1"
	t_reset_timed_out() { dmesg | grep -q "device 20: no response to SET_DEVICE_STATUS"; }
	check inline-remove-reset-timed-out t_reset_timed_out
	check inline-remove-pool-returned bus_empty
else
	fail inline-remove "peer not ready"
fi
if start_peer --remove-inline --rng 21 --rng 22 --rng 23; then
	check inline-remove-3-rng-read rng_read_each
	stop_backend
	check inline-remove-3-pool-returned bus_empty
else
	fail inline-remove-3 "peer not ready"
fi
# A source with nothing to give keeps the driver's buffer queued until the
# device goes; its bounce slot must come back all the same.
if start_peer --hold --rng 26; then
	reader_start 1
	sleep 0.5
	check held-buffer-reader-waits kill -0 "$R"
	check held-buffer-peer-exit stop_backend
	wait "$R"
	check held-buffer-pool-returned bus_empty
else
	fail held-buffer "peer not ready"
fi
# The reset answered, but after the timeout: dropped as late, device broken.
if start_peer --late SET_DEVICE_STATUS:1500 --rng 24; then
	check late-reset-rng-read rng_read 16
	check late-reset-peer-exit stop_backend
	check late-reset-pool-returned bus_empty
else
	fail late-reset "peer not ready"
fi
t_unload_lb() { rmmod virtio_msg_loopback && modprobe virtio_msg_loopback; }
check unload-after-broken-removal t_unload_lb

# A peer stalls, or dies, at each step of the device's life; every time the
# kernel gets over it, the device goes and the pool is whole again.
if [ "$POOL" = runtime ]; then
	for step in GET_DEVICE_INFO GET_DEVICE_FEATURES SET_DRIVER_FEATURES \
		SET_DEVICE_STATUS GET_VQUEUE SET_VQUEUE EVENT_AVAIL; do
		for how in stall die-at; do
			R=""
			if start_peer --"$how" "$step" --rng 25 2>/dev/null; then
				reader_start 4
				sleep 0.3
			fi
			stop_backend
			[ -z "$R" ] || wait "$R"
			check "$how-$step-pool-returned" wait_for 50 bus_empty
		done
	done
fi
set_timeout 3000

# --- module unload with devices present ---------------------------------------
# The peer lets go of /dev/virtio-msg-lb (which pins the module) and keeps
# answering on the message node (which pins only the transport).
if start_peer --release-lb --rng 6 --rng 7; then
	check devices-left-behind same_md5 "$(lb_field num_devices)" 2
	t_unload() { rmmod virtio_msg_loopback && [ "$(virtio_count virtio_rng)" -eq 0 ]; }
	check unload-with-devices t_unload
	check unload-peer-sees-bus-gone stop_backend
else
	fail unload-with-devices "peer not ready"
fi
# The same with a peer that no longer answers: bounded by the timeout.
modprobe virtio_msg_loopback
set_timeout 1000
if start_peer --release-lb --rng 6 --rng 7; then
	kill -STOP "$B"
	t0=$(date +%s)
	rmmod virtio_msg_loopback
	t1=$(date +%s)
	check unload-with-silent-peer t_bounded OK "$t0" "$t1"
	kill_backend
else
	fail unload-with-silent-peer "peer not ready"
	rmmod virtio_msg_loopback
fi
set_timeout 3000
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
set_timeout 1000
if start_peer --remove-inline --rng 20; then
	check rfc1-inline-remove-rng-read rng_read 16
	stop_backend
	check rfc1-inline-remove-pool-returned bus_empty
else
	fail rfc1-inline-remove "peer not ready"
fi
set_timeout 3000
check rfc1-unload-after-broken-removal rmmod virtio_msg_loopback

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

# --- observability: trace events and debugfs ----------------------------------
T=/sys/kernel/tracing
D=$(echo /sys/kernel/debug/virtio-msg/virtio-msg-bus*)
dbg_field() { # file dev column: the column (1-based) of device dev's line
	awk -v d="$2" -v c="$3" '$1 == d { print $c }' "$1"
}
if [ -d "$T/events/virtio_msg" ]; then
	echo >"$T/trace"
	echo 1 >"$T/events/virtio_msg/enable"
	if start_backend --rng 40; then
		rng_read 4 >/dev/null
		cat /sys/bus/virtio/drivers/virtio_rng/virtio*/status >/dev/null
		t_trace_rtt() { grep -q "virtio_msg_response: bus=[0-9]* dev=40 GET_DEVICE_STATUS token=[0-9]* latency_ns=[0-9]" "$T/trace"; }
		t_trace_kick() { grep -q "virtio_msg_event: bus=[0-9]* dev=40 EVENT_AVAIL index=0" "$T/trace" &&
			grep -q "virtio_msg_event: bus=[0-9]* dev=40 EVENT_USED index=0" "$T/trace"; }
		t_trace_request() { grep -q "virtio_msg_request: bus=[0-9]* dev=40 GET_DEVICE_INFO token=" "$T/trace"; }
		check trace-request t_trace_request
		check trace-response-latency t_trace_rtt
		check trace-kick-and-used t_trace_kick
		t_dbg_dev() { [ "$(dbg_field "$D/devices" 40 2)" -gt 0 ] && [ "$(dbg_field "$D/devices" 40 5)" -gt 0 ] &&
			[ "$(dbg_field "$D/devices" 40 6)" -gt 0 ] && [ "$(dbg_field "$D/devices" 40 9)" = registered ]; }
		check debugfs-device-counters t_dbg_dev
		if [ "$POOL" = dt ] && [ "$KOPS" = 1 ]; then
			# The kernel's pool ops bounce: ours counts nothing.
			t_dbg_kpool() { grep -q "^allocator kernel restricted-dma-pool$" "$D/pool"; }
			check debugfs-pool-kernel-ops t_dbg_kpool
		else
			t_dbg_pool() { grep -q "^in_use [1-9]" "$D/pool" && grep -q "^bounced [1-9]" "$D/pool" &&
				grep -q "^in_use_max [1-9]" "$D/pool" && grep -q "^allocator virtio-msg$" "$D/pool"; }
			check debugfs-pool t_dbg_pool
		fi
		stop_backend
	else
		fail observability "backend not ready"
	fi
	set_timeout 1000
	start_peer --stall GET_DEVICE_FEATURES --rng 41 2>/dev/null
	stop_backend
	set_timeout 3000
	t_trace_timeout() { grep -q "virtio_msg_timeout: bus=[0-9]* dev=41 GET_DEVICE_FEATURES token=[0-9]* timeout_ms=1000" "$T/trace"; }
	check trace-timeout t_trace_timeout
	echo 0 >"$T/events/virtio_msg/enable"
else
	fail trace-events "no $T/events/virtio_msg"
fi

# --- notifications through eventfds ------------------------------------------
# Bound from the serving thread on SET_VQUEUE, while ADD waits for it.
t_dbg_kicks() { [ "$(dbg_field "$D/devices" 50 5)" -gt 0 ]; }
if start_peer --eventfd --rng 50; then
	check eventfd-rng-read rng_read 64
	check eventfd-kicks-counted wait_for 20 t_dbg_kicks
	kill -USR1 "$B"
	check eventfd-unbound wait_for 50 grep -q "eventfds unbound" /tmp/peer.log
	check eventfd-rng-read-after-unbind rng_read 16
	check eventfd-peer-stop stop_backend
	t_efd_used() {
		grep -q "eventfd kicks [1-9][0-9]* calls [1-9][0-9]*, message kicks on bound queues 0" /tmp/peer.log
	}
	check eventfd-path-used t_efd_used
	check eventfd-pool-returned bus_empty
else
	fail eventfd "peer not ready"
fi
# Removed while a reader keeps the queue busy.
if start_peer --eventfd --rng 51; then
	reader_start 100000
	sleep 1
	check eventfd-remove-during-io stop_backend
	wait "$R"
	check eventfd-remove-pool-returned bus_empty
else
	fail eventfd-remove "peer not ready"
fi
# Killed with the eventfds bound: the device goes, the reader returns.
if start_peer --eventfd --rng 52; then
	reader_start 100000
	sleep 1
	kill_backend
	check eventfd-killed-reader-ends wait_for 100 reader_gone
	reader_stop
	check eventfd-killed-devices-removed wait_for 100 bus_empty
else
	fail eventfd-killed "peer not ready"
fi

# --- other people's peers (README: "Peer profile") ---------------------------
# Linaro's loopback frontend: GET_DEVICE_FEATURES answered as 1 block with
# 64 bits of data, max_virtqueues 0, the pool sized with lseek(SEEK_END).
n_blocks=$(dmesg_count "names block 0, 1 blocks, but carries 2")
n_vqs=$(dmesg_count "max_virtqueues 0; asking GET_VQUEUE")
if start_peer --linaro --rng 30; then
	check linaro-peer-rng-bound t_rng_bound
	check linaro-peer-rng-read rng_read 64
	check linaro-peer-stop stop_backend
	check linaro-peer-pool-returned bus_empty
	# Logged once per device, not per message.
	check linaro-peer-blocks-logged-once same_md5 "$(dmesg_count "names block 0, 1 blocks, but carries 2")" $((n_blocks + 1))
	check linaro-peer-max-vqs-logged-once same_md5 "$(dmesg_count "max_virtqueues 0; asking GET_VQUEUE")" $((n_vqs + 1))
else
	fail linaro-peer "peer not ready"
fi
# Echo fields left unfilled, SET_* answered without payload.
if start_peer --loose --rng 31; then
	check loose-peer-rng-read rng_read 64
	check loose-peer-stop stop_backend
	t_loose_logged() { dmesg | grep -q "device 31: SET_DEVICE_STATUS answered without payload"; }
	check loose-peer-logged t_loose_logged
	check loose-peer-pool-returned bus_empty
else
	fail loose-peer "peer not ready"
fi
t_never_leaked() { ! dmesg | grep -q "still in use at teardown"; }
check pool-never-leaked t_never_leaked

# IDA-allocated node names come back (seed bug 14).
rmmod virtio_msg_loopback
modprobe virtio_msg_loopback
check node-name-reused same_md5 "$(lb_field msg_dev)" virtio-msg-0
rmmod virtio_msg_loopback
check final-unload rmmod virtio_msg_transport

kill_backend
echo "suite: $fails failed"
[ "$fails" -eq 0 ]
