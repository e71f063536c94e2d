#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# In-guest test suite of the FF-A bus (virtio_msg_ffa) against the fake
# partitions of tests/ffa (vmsg_ffa_fake.ko), run by tests/vm-run as the
# guest script (busybox sh).  Prints one line per check:
#   ok <name> | FAIL <name>: <why> | skip <name>: <why>
# and exits 0 only if nothing failed.
#
# The backend and the I/O are pinned to CPU 0 (see suite.sh: TCG wakeups).

BACKEND=/usr/bin/virtio-msg-backend
fails=0
B=""

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
skip() { echo "skip $1: $2"; }
check() { # name command...
	name="$1"; shift
	if "$@"; then ok "$name"; else fail "$name" "$*"; fi
}
pin() { taskset 1 "$@"; }

wait_for() { # tenths command...
	n=$1; shift
	while ! "$@"; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
	done
}

virtio_count() {
	c=0
	for d in /sys/bus/virtio/drivers/"$1"/virtio*; do
		[ -e "$d" ] && c=$((c + 1))
	done
	echo "$c"
}
count_is() { [ "$(virtio_count "$1")" -eq "$2" ]; }

start_backend() { # partition args...
	p=$1; shift
	rm -f /tmp/ready
	taskset 1 "$BACKEND" --lb-dev /dev/vmsg-ffa-lb"$p" --msg-dev /dev/vmsg-ffa-msg"$p" \
		--ready-file /tmp/ready "$@" >/tmp/backend"$p".log 2>&1 &
	B=$!
	if ! wait_for 300 test -e /tmp/ready; then
		cat /tmp/backend"$p".log
		return 1
	fi
}

stop_backend() {
	[ -n "$B" ] || return 0
	kill -TERM "$B" 2>/dev/null
	wait "$B"
	rc=$?
	B=""
	return $rc
}

rng_read() { # KiB
	pin dd if=/dev/hwrng of=/tmp/rnd bs=1024 count="$1" 2>/dev/null || return 1
	[ "$(wc -c </tmp/rnd)" -eq $(($1 * 1024)) ] || return 1
	[ "$(gzip -c /tmp/rnd | wc -c)" -gt $(($1 * 1000)) ]
}

blk_dev() {
	for d in /sys/block/vd*; do
		[ -e "$d" ] && { echo "/dev/${d##*/}"; return 0; }
	done
	return 1
}
md5_of() { md5sum | cut -d' ' -f1; }

blk_rw() { # MiB
	dev=$(blk_dev) || return 1
	dd if=/dev/urandom of=/tmp/data bs=1M count="$1" 2>/dev/null
	want=$(md5_of </tmp/data)
	pin dd if=/tmp/data of="$dev" bs=64k oflag=direct 2>/dev/null || return 1
	got=$(pin dd if="$dev" bs=64k count=$(($1 * 16)) iflag=direct 2>/dev/null | md5_of)
	rm -f /tmp/data
	[ "$got" = "$want" ]
}

knob() { # partition name value
	echo "$3" >/sys/kernel/debug/vmsg-ffa-fake/p"$1"/"$2"
}

dmesg_has() { dmesg | grep -q "$1"; }

load() { # fake args... ; driver args come from $DRV_ARGS
	dmesg -c >/dev/null
	modprobe vmsg_ffa_fake "$@" || return 1
	# shellcheck disable=SC2086
	modprobe virtio_msg_ffa $DRV_ARGS || return 1
}

unload() {
	stop_backend
	wait_for 100 count_is virtio_rng 0
	rmmod virtio_msg_ffa 2>/dev/null
	rmmod vmsg_ffa_fake
}

echo "suite: ffa, kernel ${SUITE_KERNEL:-?}"
check modprobe-ffa-core modprobe ffa-core
check modprobe-transport modprobe virtio_msg_transport
modprobe virtio_rng
modprobe virtio_blk
echo 1000 >/sys/module/virtio_msg_transport/parameters/timeout_ms
dd if=/dev/zero of=/tmp/disk.img bs=1M count=8 2>/dev/null
DRV_ARGS="bus_timeout_ms=1000"

t_alias() { modinfo virtio_msg_ffa | grep -q 'alias:.*arm_ffa:\*:c66028b5-2498-4aa1-9de7-77da6122abf0'; }
check ffa-modalias t_alias

# --- rng and blk in every transfer mode ---------------------------------------
for mode in both direct indirect poll 32bit; do
	if ! load modes="$mode"; then
		fail "$mode-load" "modprobe failed"
		continue
	fi
	case $mode in
	both) want="direct+indirect";;
	direct|poll) want="direct";;
	*) want="indirect";;
	esac
	check "$mode-probe" dmesg_has "virtio-msg-ffa.*$want"
	case $mode in
	both|indirect|32bit) check "$mode-events-by-notification" dmesg_has "events by notification";;
	*) check "$mode-events-by-polling" dmesg_has "events by polling";;
	esac
	if start_backend 0 --rng 1 --blk 2:/tmp/disk.img; then
		check "$mode-hotplug-rng" wait_for 100 count_is virtio_rng 1
		check "$mode-hotplug-blk" wait_for 100 count_is virtio_blk 1
		check "$mode-rng-read" rng_read 64
		check "$mode-blk-rw-4MiB" blk_rw 4
	else
		fail "$mode-backend" "backend not ready"
	fi
	check "$mode-backend-stop" stop_backend
	check "$mode-devices-removed" wait_for 100 count_is virtio_rng 0
	check "$mode-unload" unload
done

# --- partitions the driver must refuse ------------------------------------------
load modes=none
check none-refused dmesg_has "cannot talk to it"
unload
load modes=badver
check badver-refused dmesg_has "bus version 0x20000.*refusing it"
unload

# --- two partitions, each its own bus -------------------------------------------
if load modes=both,direct; then
	check two-partitions-probed wait_for 20 test "$(dmesg | grep -c 'events by')" -eq 2
	start_backend 1 --rng 3
	B1=$B
	start_backend 0 --blk 4:/tmp/disk.img
	check two-partitions-rng wait_for 100 count_is virtio_rng 1
	check two-partitions-blk wait_for 100 count_is virtio_blk 1
	check two-partitions-rng-read rng_read 32
	check two-partitions-blk-rw blk_rw 2
	stop_backend
	B=$B1
	unload
	check two-partitions-unload test $? -eq 0
else
	fail two-partitions-load "modprobe failed"
fi

# --- faults ----------------------------------------------------------------------
# Each fault hits the device added by a fresh backend (--rng 7), i.e. the
# probe's requests; the device must fail cleanly or work, never hang.
fault_add() { # name knob value expect(added|failed)
	dmesg -c >/dev/null
	knob 0 "$2" "$3"
	start_backend 0 --rng 7
	if [ "$4" = added ]; then
		check "fault-$1" wait_for 100 count_is virtio_rng 1
		check "fault-$1-rng-read" rng_read 16
	elif [ "$4" = timeout ]; then
		# Which request the late answer misses depends on timing.
		check "fault-$1" wait_for 100 dmesg_has "device 7: no response to"
	else
		check "fault-$1" wait_for 100 dmesg_has "device 7 not added"
	fi
	knob 0 "$2" 0
	stop_backend
	wait_for 100 count_is virtio_rng 0
}

if load modes=both; then
	fault_add busy-5-retried busy 5 added
	fault_add busy-always-gives-up busy 4294967295 failed
	fault_add bus-busy-ignored bus_busy 3 added
	fault_add oversized-response oversize 1 failed
	fault_add truncated-response truncate 1 failed
	fault_add wrong-device-number wrong_dev 1 failed
	fault_add duplicate-responses dup 4294967295 added
	fault_add unsolicited-responses unsolicited 4294967295 added
	fault_add late-response delay_ms 1500 timeout
	sleep 2
	unload
	check fault-unload test $? -eq 0
else
	fail fault-load "modprobe failed"
fi

# BUSY on the bus messages of the probe: retried.
dmesg -c >/dev/null
modprobe vmsg_ffa_fake modes=both
knob 0 bus_busy 3
# shellcheck disable=SC2086
modprobe virtio_msg_ffa $DRV_ARGS
check bus-busy-at-probe dmesg_has "events by notification"
unload

# --- GET_DEVICES: devices present before the driver binds -------------------------
# --no-remove leaves the devices announced; without a backend their
# requests fail at once, which is what the checks look for.
if load modes=direct; then
	start_backend 0 --rng 5 --no-remove
	wait_for 100 count_is virtio_rng 1
	stop_backend
	rmmod virtio_msg_ffa
	knob 0 page_bits 64
	knob 0 bitmap_extra 1
	dmesg -c >/dev/null
	# shellcheck disable=SC2086
	modprobe virtio_msg_ffa $DRV_ARGS
	check get-devices-paged-5 wait_for 50 dmesg_has "device 5 not added"
	check get-devices-paged-777 wait_for 50 dmesg_has "device 777 not added"
	check get-devices-paged-4000 wait_for 50 dmesg_has "device 4000 not added"
	rmmod virtio_msg_ffa
	knob 0 bitmap_extra 0
	knob 0 bitmap_bad 2
	dmesg -c >/dev/null
	# shellcheck disable=SC2086
	modprobe virtio_msg_ffa $DRV_ARGS
	check get-devices-truncated-bitmap dmesg_has "GET_DEVICES answer truncated"
	check get-devices-no-advance dmesg_has "does not advance"
	unload
else
	fail get-devices-load "modprobe failed"
fi

# --- unbinding while the backend still maps the memory -----------------------------
if load modes=both; then
	start_backend 0 --rng 1
	wait_for 100 count_is virtio_rng 1
	rmmod virtio_msg_ffa
	check reclaim-refused-pool-leaked dmesg_has "partition keeps the shared pool"
	check unbind-removed-devices count_is virtio_rng 0
	unload
else
	fail reclaim-load "modprobe failed"
fi

# --- RFC v1 format -------------------------------------------------------------
if modprobe vmsg_ffa_fake modes=both wire_format=rfc1 &&
   modprobe virtio_msg_ffa wire_format=rfc1 bus_timeout_ms=1000; then
	check rfc1-probe dmesg_has "bus version 0x1 (RFC v1)"
	if start_backend 0 --rng 1 --blk 2:/tmp/disk.img; then
		check rfc1-hotplug wait_for 100 count_is virtio_rng 1
		check rfc1-rng-read rng_read 16
		check rfc1-blk-rw blk_rw 1
	else
		fail rfc1-backend "backend not ready"
	fi
	unload
	check rfc1-unload test $? -eq 0
else
	fail rfc1-load "modprobe failed"
fi

check modules-unloaded sh -c "! grep -q '^virtio_msg_ffa\|^vmsg_ffa_fake' /proc/modules"
echo "ffa-suite: $fails failed"
[ "$fails" -eq 0 ]
